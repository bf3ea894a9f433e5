//! TCP listeners and the connections the loop drives through the [`Session`] contract: accept,
//! read until the socket would block, feed the session, write its queue with `writev`, keep the
//! poll interest in step with the queue, and close on request, error or deadline.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};

use crate::station::sink::{Session, StationView, Step};

/// Which protocol a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Http,
    Mms,
    Rtsp,
}

impl ListenerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ListenerKind::Http => "http",
            ListenerKind::Mms => "mms",
            ListenerKind::Rtsp => "rtsp",
        }
    }
}

pub struct Listener {
    pub kind: ListenerKind,
    pub addr: SocketAddr,
    pub socket: TcpListener,
}

/// One accepted connection and its session.
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub session: Box<dyn Session>,
    /// The station this connection is counted against (see the daemon's client counts).
    pub counted_station: Option<String>,
    writable_interest: bool,
    closing: Option<String>,
    /// When the session asked to close: output still queued after [`LINGER`] is abandoned, so
    /// a client that stopped reading cannot hold a closing connection open.
    closing_since: Option<Instant>,
}

/// How long a closing connection may take to write out what it has queued.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Read buffer size per readiness event.
pub const READ_CHUNK: usize = 64 * 1024;
/// Most bytes read from one connection per readiness event (fairness between clients).
const READ_BUDGET: usize = 256 * 1024;

impl Connection {
    pub fn new(stream: TcpStream, peer: SocketAddr, session: Box<dyn Session>) -> Self {
        Connection {
            stream,
            peer,
            session,
            counted_station: None,
            writable_interest: false,
            closing: None,
            closing_since: None,
        }
    }

    /// Reads what is there and feeds the session. Returns false when the connection is done.
    pub fn on_readable(
        &mut self,
        now: Instant,
        stations: &dyn StationView,
        buf: &mut [u8],
    ) -> bool {
        let mut total = 0;
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    let step = self.session.on_peer_closed(now);
                    return self.apply(step);
                }
                Ok(n) => {
                    total += n;
                    let step = self.session.on_bytes(&buf[..n], now, stations);
                    if !self.apply(step) || total >= READ_BUDGET {
                        return self.closing.is_none();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.mark_closing(format!("read error: {e}"));
                    return false;
                }
            }
        }
    }

    /// Records a session's step; false once the session asked to close.
    pub fn apply(&mut self, step: Step) -> bool {
        if let Step::Close { reason } = step {
            self.mark_closing(reason);
        }
        self.closing.is_none()
    }

    fn mark_closing(&mut self, reason: String) {
        if self.closing.is_none() {
            self.closing = Some(reason);
            self.closing_since = Some(Instant::now());
        }
    }

    /// When a closing connection is given up on, if it is closing.
    pub fn linger_deadline(&self) -> Option<Instant> {
        self.closing_since.map(|t| t + LINGER)
    }

    /// Writes as much of the session's queue as the socket takes. Returns false on error.
    pub fn flush(&mut self) -> bool {
        loop {
            let q = self.session.output();
            if q.is_empty() {
                return true;
            }
            let slices = q.io_slices(64);
            match self.stream.write_vectored(&slices) {
                Ok(0) => return false,
                Ok(n) => {
                    drop(slices);
                    self.session.output().advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.closing
                        .get_or_insert_with(|| format!("write error: {e}"));
                    return false;
                }
            }
        }
    }

    /// Keeps WRITABLE interest only while output is queued.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = !self.session.output().is_empty();
        if want != self.writable_interest {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, token, interest)?;
            self.writable_interest = want;
        }
        Ok(())
    }

    /// True when the session asked to close and everything queued has been written (or the
    /// connection broke).
    pub fn finished(&mut self) -> bool {
        self.closing.is_some() && self.session.output().is_empty()
    }

    pub fn close_reason(&self) -> Option<&str> {
        self.closing.as_deref()
    }

    pub fn force_close(&mut self, reason: &str) {
        self.mark_closing(reason.to_string());
        let _ = self.session.output().drop_unstarted();
    }
}

/// Per-IP connection counts, for `max_clients_per_ip`.
#[derive(Debug, Default)]
pub struct PeerCounts(HashMap<std::net::IpAddr, u32>);

impl PeerCounts {
    pub fn try_add(&mut self, peer: SocketAddr, limit: u32) -> bool {
        let c = self.0.entry(peer.ip()).or_insert(0);
        if *c >= limit {
            return false;
        }
        *c += 1;
        true
    }

    pub fn remove(&mut self, peer: SocketAddr) {
        if let Some(c) = self.0.get_mut(&peer.ip()) {
            *c -= 1;
            if *c == 0 {
                self.0.remove(&peer.ip());
            }
        }
    }
}

pub fn log_close(conn: &Connection) {
    let proto = conn.session.protocol();
    match conn.close_reason() {
        Some(r) if r.starts_with("peer closed") => {
            debug!(peer = %conn.peer, protocol = proto, "connection closed")
        }
        Some(r) => info!(peer = %conn.peer, protocol = proto, reason = r, "connection closed"),
        None => warn!(peer = %conn.peer, protocol = proto, "connection dropped"),
    }
}
