//! The shell of the network-fed station sources: the outbound TCP connection of a `pull`
//! station ([`NetPull`], around the pure [`PullSource`]) and the multicast socket of a
//! `multicast` station ([`super::mcast_source`]).
//!
//! Each station with such a source owns one poll token ([`UpstreamIo`]); the daemon makes the
//! station due when the token fires, and the station runtime polls its [`Source`] as it polls a
//! playlist. Polling does the I/O the core asks for (connect, write the request, close), reads
//! what arrived (a bounded amount per call, and only while the core's queue is short, so a
//! fast upstream cannot grow memory) and returns the core's next event. The socket is
//! edge-triggered: the source reads until `WouldBlock`, or asks to be polled again at once.
//!
//! A host name in the URL is resolved here, blocking (`getaddrinfo`); an IP address costs
//! nothing. Resolve names in `/etc/hosts` for a box whose resolver may be slow.

use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tracing::{debug, info};

use crate::config::{self, StationConfig};
use crate::pull::client::{ClientConfig, Io};
use crate::pull::PullUrl;
use crate::source::pull::PullSource;
use crate::station::source::{Source, SourceCounters, SourceEvent, SourceState};

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per poll at most (fairness with the rest of the loop).
const READS_PER_POLL: usize = 8;
/// Core events held before reading stops.
const MAX_QUEUED: usize = 512;

/// The poll registration a network source uses.
pub struct UpstreamIo {
    pub registry: Registry,
    pub token: Token,
}

/// Where a station's source may register sockets: the loop's registry and the station's
/// token. Only a network source takes a registry of its own ([`UpstreamSlot::open`]).
#[derive(Clone, Copy)]
pub struct UpstreamSlot<'a> {
    pub registry: &'a Registry,
    pub token: Token,
}

impl UpstreamSlot<'_> {
    pub fn open(&self) -> io::Result<UpstreamIo> {
        Ok(UpstreamIo {
            registry: self.registry.try_clone()?,
            token: self.token,
        })
    }
}

/// 16 random bytes (per process and station) for the `xClientGUID`.
pub fn random_guid(station: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(station.as_bytes());
        h.write_usize(i);
        h.write_u32(std::process::id());
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// The source of a `pull` station.
pub fn pull_source(
    config: &StationConfig,
    pull: &config::Pull,
    slot: UpstreamSlot<'_>,
    now: Instant,
) -> io::Result<Box<dyn Source>> {
    let io = slot.open()?;
    let url = PullUrl::parse(&pull.url)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let client = ClientConfig {
        url,
        backoff_min: pull.reconnect_min,
        backoff_max: pull.reconnect_max,
        stall_timeout: pull.timeout,
        client_guid: random_guid(&config.name),
    };
    info!(station = %config.name, upstream = %client.url, "pulling");
    Ok(Box::new(NetPull {
        station: config.name.clone(),
        core: PullSource::new(&config.name, client, now),
        io,
        stream: None,
        connecting: false,
        out: Vec::new(),
        buf: vec![0; READ_CHUNK],
        more: false,
    }))
}

/// A pull source with its connection.
pub struct NetPull {
    station: String,
    core: PullSource,
    io: UpstreamIo,
    stream: Option<TcpStream>,
    /// Connect called, not yet known to have succeeded.
    connecting: bool,
    /// Request bytes not yet written.
    out: Vec<u8>,
    buf: Vec<u8>,
    /// The last poll stopped reading before `WouldBlock`.
    more: bool,
}

impl NetPull {
    fn close(&mut self) {
        if let Some(mut s) = self.stream.take() {
            let _ = self.io.registry.deregister(&mut s);
        }
        self.connecting = false;
        self.out.clear();
    }

    fn connect(&mut self, now: Instant) {
        self.close();
        let url = self.core.client().url().clone();
        let addr: Option<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next());
        let Some(addr) = addr else {
            let why = format!("cannot resolve {}", url.host);
            self.core.client().on_closed(Some(&why), now);
            return;
        };
        match TcpStream::connect(addr) {
            Ok(mut s) => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                if let Err(e) = self.io.registry.register(&mut s, self.io.token, interest) {
                    self.core.client().on_closed(Some(&e.to_string()), now);
                    return;
                }
                debug!(station = %self.station, upstream = %addr, "connecting");
                self.stream = Some(s);
                self.connecting = true;
            }
            Err(e) => self.core.client().on_closed(Some(&e.to_string()), now),
        }
    }

    /// Does what the core asks, and notices a finished connect.
    fn do_io(&mut self, now: Instant) {
        loop {
            if self.connecting {
                let Some(s) = &self.stream else {
                    self.connecting = false;
                    continue;
                };
                match s.take_error() {
                    Ok(Some(e)) | Err(e) => {
                        self.close();
                        self.core.client().on_closed(Some(&e.to_string()), now);
                    }
                    Ok(None) => match s.peer_addr() {
                        Ok(_) => {
                            self.connecting = false;
                            self.core.client().on_connected(now);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                        Err(e) => {
                            self.close();
                            self.core.client().on_closed(Some(&e.to_string()), now);
                        }
                    },
                }
            }
            match self.core.client().io(now) {
                Some(Io::Connect) => self.connect(now),
                Some(Io::Send(b)) => self.out.extend_from_slice(&b),
                Some(Io::Close) => self.close(),
                None => break,
            }
        }
        self.write(now);
    }

    fn write(&mut self, now: Instant) {
        if self.connecting || self.out.is_empty() {
            return;
        }
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        match s.write(&self.out) {
            Ok(n) => {
                self.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.close();
                self.core.client().on_closed(Some(&e.to_string()), now);
            }
        }
    }

    /// Reads what arrived (bounded); sets `more` when it stopped before `WouldBlock`.
    fn read(&mut self, now: Instant) {
        self.more = false;
        for _ in 0..READS_PER_POLL {
            if self.connecting || self.core.client().queued() >= MAX_QUEUED {
                self.more = self.stream.is_some() && !self.connecting;
                return;
            }
            let Some(s) = self.stream.as_mut() else {
                return;
            };
            match s.read(&mut self.buf) {
                Ok(0) => {
                    self.close();
                    self.core.client().on_closed(None, now);
                    return;
                }
                Ok(n) => {
                    let bytes = &self.buf[..n];
                    self.core.client().on_data(bytes, now);
                    // The core may have moved on (Close, a new Connect).
                    self.do_io(now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close();
                    self.core.client().on_closed(Some(&e.to_string()), now);
                    return;
                }
            }
        }
        self.more = self.stream.is_some();
    }
}

impl Source for NetPull {
    fn poll(&mut self, now: Instant) -> SourceEvent {
        self.do_io(now);
        if self.core.client().queued() == 0 {
            self.read(now);
            self.do_io(now);
        }
        match self.core.next_event(now) {
            // Bytes are waiting in the socket: come back at once (edge-triggered readiness
            // will not fire again for them).
            SourceEvent::Idle(_) if self.more => SourceEvent::Idle(now),
            ev => ev,
        }
    }

    fn state(&self) -> SourceState {
        self.core.state()
    }

    fn counters(&self) -> SourceCounters {
        self.core.counters()
    }
}
