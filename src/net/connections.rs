//! TCP listeners and the connections the loop drives through the [`Session`] contract: accept,
//! read until the socket would block, feed the session, write its queue with `writev`, keep the
//! poll interest in step with the queue, and close on request, error or deadline.
//!
//! Input is throttled by output, for every protocol alike: while a connection has more than its
//! read limit queued (the client does not read what it asked for, e.g. pipelined requests),
//! the loop stops reading from it — READABLE interest is dropped and the kernel's buffers push
//! back on the client — and resumes once the queue is written out. So a connection holds at
//! most its limit plus the answers to one read of input.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};

use crate::station::sink::{Session, StationView, Step, PEER_CLOSED_CONNECTION, PEER_ENDED};

/// Which protocol a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Http,
    Mms,
    Rtsp,
    /// The control API ([`crate::ops::api`]).
    Api,
}

impl ListenerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ListenerKind::Http => "http",
            ListenerKind::Mms => "mms",
            ListenerKind::Rtsp => "rtsp",
            ListenerKind::Api => "api",
        }
    }
}

pub struct Listener {
    pub kind: ListenerKind,
    pub addr: SocketAddr,
    pub socket: TcpListener,
    /// Accepted connections inherit `TCP_NODELAY` and the send buffer from the listener
    /// ([`super::listen::set_inherited_options`]); false: the accept path sets them.
    pub options_inherited: bool,
}

/// One accepted connection and its session.
pub struct Connection {
    pub stream: TcpStream,
    /// Unique for the life of the process (connection slots are reused, ids are not).
    pub id: u64,
    /// When it was accepted.
    pub since: Instant,
    pub peer: SocketAddr,
    pub session: Box<dyn Session>,
    /// The station this connection is counted against (see the daemon's client counts).
    pub counted_station: Option<String>,
    /// The client UDP addresses routed to this connection (its session's `udp_peers` as the
    /// loop last saw them).
    pub udp_peers: Vec<SocketAddr>,
    /// The interest registered with the poll.
    interest: Interest,
    /// Queued output above which the connection is not read (see the module doc).
    read_limit: usize,
    /// Reading stopped before the socket would block (read budget or read limit): the next
    /// interest update re-registers READABLE, which makes the poll report what is left.
    rearm_read: bool,
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
    /// A connection registered with READABLE interest; it stops reading while more than
    /// `read_limit` bytes are queued for it.
    pub fn new(
        stream: TcpStream,
        (id, since): (u64, Instant),
        peer: SocketAddr,
        session: Box<dyn Session>,
        read_limit: usize,
    ) -> Self {
        Connection {
            stream,
            id,
            since,
            peer,
            session,
            counted_station: None,
            udp_peers: Vec::new(),
            interest: Interest::READABLE,
            read_limit,
            rearm_read: false,
            closing: None,
            closing_since: None,
        }
    }

    /// Reads what is there and feeds the session. Returns false when the connection is done.
    ///
    /// Readiness is edge-triggered: a read shorter than `buf` emptied the socket's receive
    /// queue (a TCP read returns less than asked only then), and whatever arrives after it
    /// raises a new event, so the loop stops there instead of paying one more read for
    /// `EAGAIN` (one per request of a handshake). `read_closed` is the event's hang-up flag:
    /// with it set the peer's FIN may already be queued behind the data and raises no new
    /// event, so the loop reads on until it sees the end (0) or `EAGAIN`.
    pub fn on_readable(
        &mut self,
        now: Instant,
        stations: &dyn StationView,
        buf: &mut [u8],
        read_closed: bool,
    ) -> bool {
        let mut total = 0;
        loop {
            if self.session.output().queued_bytes() > self.read_limit {
                self.rearm_read = true;
                return true;
            }
            match self.stream.read(buf) {
                Ok(0) => {
                    let step = self.session.on_peer_closed(now);
                    return self.apply(step);
                }
                Ok(n) => {
                    total += n;
                    let step = self.session.on_bytes(&buf[..n], now, stations);
                    if !self.apply(step) {
                        return false;
                    }
                    if total >= READ_BUDGET {
                        self.rearm_read = true;
                        return true;
                    }
                    if n < buf.len() && !read_closed {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.mark_closing(io_close_reason("read", &e));
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

    /// The connection's next deadline: its session's timer, or the linger limit once closing.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        match (self.session.deadline(), self.linger_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
                        .get_or_insert_with(|| io_close_reason("write", &e));
                    return false;
                }
            }
        }
    }

    /// Keeps WRITABLE interest only while output is queued, and READABLE only while the queue
    /// is within the read limit.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = wanted_interest(self.session.output().queued_bytes(), self.read_limit);
        let rearm = self.rearm_read && want.is_readable();
        if want != self.interest || rearm {
            registry.reregister(&mut self.stream, token, want)?;
            self.interest = want;
            if want.is_readable() {
                self.rearm_read = false;
            }
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

/// The poll interest for a connection with `queued` bytes of output: READABLE unless more than
/// `read_limit` is queued, WRITABLE while anything is.
fn wanted_interest(queued: usize, read_limit: usize) -> Interest {
    match (queued, queued > read_limit) {
        (0, _) => Interest::READABLE,
        (_, false) => Interest::READABLE | Interest::WRITABLE,
        (_, true) => Interest::WRITABLE,
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

/// Why a read or write error closed a connection. A reset or a broken pipe is the client
/// hanging up (a player that quits with data in flight resets), as a clean close is: the
/// metrics count it among the clients that left, not those dropped.
fn io_close_reason(op: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => format!("{PEER_ENDED}: {op}: {e}"),
        _ => format!("{op} error: {e}"),
    }
}

pub fn log_close(conn: &Connection) {
    let proto = conn.session.protocol();
    match conn.close_reason() {
        Some(r) if r == PEER_CLOSED_CONNECTION => {
            debug!(peer = %conn.peer, protocol = proto, "connection closed")
        }
        Some(r) => info!(peer = %conn.peer, protocol = proto, reason = r, "connection closed"),
        None => warn!(peer = %conn.peer, protocol = proto, "connection dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_stops_above_the_read_limit_and_writing_only_while_queued() {
        assert_eq!(wanted_interest(0, 100), Interest::READABLE);
        assert_eq!(
            wanted_interest(100, 100),
            Interest::READABLE | Interest::WRITABLE
        );
        assert_eq!(wanted_interest(101, 100), Interest::WRITABLE);
        // A limit of 0 still reads an idle connection.
        assert_eq!(wanted_interest(0, 0), Interest::READABLE);
    }

    #[test]
    fn a_reset_or_broken_pipe_is_the_peer_closing() {
        use crate::station::sink::ended_by_peer;
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(ended_by_peer(&io_close_reason("read", &reset)));
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(ended_by_peer(&io_close_reason("write", &pipe)));
        let other = io::Error::from(io::ErrorKind::InvalidData);
        assert!(!ended_by_peer(&io_close_reason("read", &other)));
    }
}
