//! The shell of a `multicast` station source: reads the upstream's `.nsc` (a file, or an
//! `http://` URL fetched without blocking the loop), joins the group it announces, and feeds
//! the datagrams to the pure [`McastSource`]. The group's socket and the fetch connection use
//! the station's upstream token ([`UpstreamIo`]); readiness makes the station due.
//!
//! Until the `.nsc` is read and the group joined the source is lost (one [`SourceEvent::Lost`]
//! per attempt, every [`RETRY`]); a station that would receive its own multicast (the `.nsc`'s
//! group and port are the station's own `multicast:` destination) is refused the same way.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::Interest;
use tracing::info;

use crate::config::{self, NscLocation, ServerConfig, StationConfig};
use crate::pull::response::ResponseReader;
use crate::source::mcast::{read_nsc, Announced, McastSource, MAX_QUEUED};
use crate::station::source::{Source, SourceCounters, SourceEvent, SourceState};

use super::upstream::{UpstreamIo, UpstreamSlot};

/// Wait between attempts to read the `.nsc` and join the group.
pub const RETRY: Duration = Duration::from_secs(5);
/// Largest `.nsc` read.
const MAX_NSC: usize = 4 << 20;
/// A fetch that takes longer is given up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams read per poll at most.
const READ_BUDGET: usize = 256;

/// The source of a `multicast` station.
pub fn multicast_source(
    _server: &ServerConfig,
    config: &StationConfig,
    m: &config::MulticastSource,
    slot: UpstreamSlot<'_>,
    now: Instant,
) -> io::Result<Box<dyn Source>> {
    let io = slot.open()?;
    let origin = match &m.nsc {
        NscLocation::Url(u) => u.clone(),
        NscLocation::File(f) => f.display().to_string(),
    };
    info!(station = %config.name, nsc = %origin, "relaying a multicast");
    Ok(Box::new(NetMcast {
        station: config.name.clone(),
        location: m.nsc.clone(),
        origin,
        interface: m.interface.clone(),
        timeout: m.timeout,
        own: config.multicast.as_ref().map(|o| o.destination()),
        io,
        core: None,
        socket: None,
        fetch: None,
        retry_at: now,
        state: SourceState::Starting,
        failures: 0,
        buf: vec![0; 65_536],
        more: false,
    }))
}

/// An HTTP GET of the `.nsc` in progress.
struct Fetch {
    stream: TcpStream,
    request: Vec<u8>,
    connected: bool,
    response: ResponseReader,
    status: Option<u16>,
    body: Vec<u8>,
    deadline: Instant,
}

enum FetchStep {
    Pending,
    Done(String),
    Failed(String),
}

impl Fetch {
    fn start(url: &str, io: &UpstreamIo, now: Instant) -> Result<Fetch, String> {
        let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
        let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let target = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let addr: SocketAddr = target
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("cannot resolve {hostport}"))?;
        let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        io.registry
            .register(
                &mut stream,
                io.token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        Ok(Fetch {
            stream,
            request: format!(
                "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: asfcast\r\n\r\n"
            )
            .into_bytes(),
            connected: false,
            response: ResponseReader::new(),
            status: None,
            body: Vec::new(),
            deadline: now + FETCH_TIMEOUT,
        })
    }

    fn step(&mut self, now: Instant) -> FetchStep {
        if now >= self.deadline {
            return FetchStep::Failed(format!("no answer within {FETCH_TIMEOUT:?}"));
        }
        if !self.connected {
            match self.stream.take_error() {
                Ok(Some(e)) | Err(e) => return FetchStep::Failed(e.to_string()),
                Ok(None) => {}
            }
            match self.stream.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return FetchStep::Pending,
                Err(e) => return FetchStep::Failed(e.to_string()),
            }
        }
        if !self.request.is_empty() {
            match self.stream.write(&self.request) {
                Ok(n) => {
                    self.request.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return FetchStep::Pending,
                Err(e) => return FetchStep::Failed(e.to_string()),
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => match self.response.push(&buf[..n]) {
                    Ok(r) => {
                        if let Some(h) = r.head {
                            self.status = Some(h.status);
                        }
                        self.body.extend_from_slice(&r.body);
                        if self.body.len() > MAX_NSC {
                            return FetchStep::Failed(format!("longer than {MAX_NSC} bytes"));
                        }
                        if r.done {
                            break;
                        }
                    }
                    Err(e) => return FetchStep::Failed(e.to_string()),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return FetchStep::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return FetchStep::Failed(e.to_string()),
            }
        }
        match self.status {
            Some(200) => FetchStep::Done(String::from_utf8_lossy(&self.body).into_owned()),
            Some(s) => FetchStep::Failed(format!("HTTP status {s}")),
            None => FetchStep::Failed("closed without an HTTP answer".into()),
        }
    }
}

struct NetMcast {
    station: String,
    location: NscLocation,
    origin: String,
    interface: Option<config::Interface>,
    timeout: Duration,
    /// The station's own multicast destination, never received from.
    own: Option<SocketAddr>,
    io: UpstreamIo,
    core: Option<McastSource>,
    socket: Option<UdpSocket>,
    fetch: Option<Fetch>,
    retry_at: Instant,
    state: SourceState,
    failures: u64,
    buf: Vec<u8>,
    more: bool,
}

impl NetMcast {
    /// The `.nsc` text, `Ok(None)` while a fetch is under way.
    fn nsc_text(&mut self, now: Instant) -> Result<Option<String>, String> {
        match &self.location {
            NscLocation::File(f) => {
                let meta = std::fs::metadata(f).map_err(|e| e.to_string())?;
                if meta.len() > MAX_NSC as u64 {
                    return Err(format!("longer than {MAX_NSC} bytes"));
                }
                std::fs::read_to_string(f)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            NscLocation::Url(u) => {
                if self.fetch.is_none() {
                    self.fetch = Some(Fetch::start(u, &self.io, now)?);
                }
                let Some(f) = self.fetch.as_mut() else {
                    return Ok(None);
                };
                match f.step(now) {
                    FetchStep::Pending => Ok(None),
                    FetchStep::Done(t) => {
                        self.end_fetch();
                        Ok(Some(t))
                    }
                    FetchStep::Failed(e) => {
                        self.end_fetch();
                        Err(e)
                    }
                }
            }
        }
    }

    fn end_fetch(&mut self) {
        if let Some(mut f) = self.fetch.take() {
            let _ = self.io.registry.deregister(&mut f.stream);
        }
    }

    fn join(&mut self, a: &Announced) -> Result<(), String> {
        if self.own == Some(a.group) {
            return Err(format!(
                "the .nsc announces {}, the station's own multicast destination",
                a.group
            ));
        }
        let std_socket = super::multicast::join_group(a.group, self.interface.as_ref())
            .map_err(|e| format!("join {}: {e}", a.group))?;
        std_socket
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let mut socket = UdpSocket::from_std(std_socket);
        self.io
            .registry
            .register(&mut socket, self.io.token, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        self.socket = Some(socket);
        Ok(())
    }

    /// Reads the `.nsc` and joins: `Some(event)` to return (a loss), None when ready or waiting.
    fn start(&mut self, now: Instant) -> Option<SourceEvent> {
        if now < self.retry_at {
            return Some(SourceEvent::Idle(self.retry_at));
        }
        let result = match self.nsc_text(now) {
            Ok(None) => {
                let at = self.fetch.as_ref().map_or(now + RETRY, |f| f.deadline);
                return Some(SourceEvent::Idle(at));
            }
            Ok(Some(text)) => read_nsc(&text).map_err(|e| e.to_string()).and_then(|a| {
                self.join(&a)?;
                Ok(a)
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(a) => {
                info!(station = %self.station, group = %a.group, formats = a.formats.len(), "joined the upstream multicast");
                self.core = Some(McastSource::new(
                    &self.station,
                    &self.origin,
                    a,
                    self.timeout,
                    now,
                ));
                None
            }
            Err(e) => {
                self.failures += 1;
                self.retry_at = now + RETRY;
                let reason = format!("{}: {e}", self.origin);
                self.state = SourceState::Lost {
                    reason: reason.clone(),
                };
                Some(SourceEvent::Lost {
                    reason,
                    retry_at: self.retry_at,
                })
            }
        }
    }

    fn refresh_nsc(&mut self, now: Instant) {
        let Some(core) = self.core.as_mut() else {
            return;
        };
        if !core.wants_nsc(now) && self.fetch.is_none() {
            return;
        }
        match self.nsc_text(now) {
            Ok(None) => {}
            Ok(Some(text)) => match read_nsc(&text) {
                Ok(a) => {
                    if let Some(c) = self.core.as_mut() {
                        c.update_formats(a.formats, now);
                    }
                }
                Err(_) => {
                    if let Some(c) = self.core.as_mut() {
                        c.nsc_failed(now);
                    }
                }
            },
            Err(_) => {
                if let Some(c) = self.core.as_mut() {
                    c.nsc_failed(now);
                }
            }
        }
    }

    fn read(&mut self, now: Instant) {
        self.more = false;
        let (Some(socket), Some(core)) = (self.socket.as_ref(), self.core.as_mut()) else {
            return;
        };
        for _ in 0..READ_BUDGET {
            if core.queued() >= MAX_QUEUED {
                self.more = true;
                return;
            }
            match socket.recv_from(&mut self.buf) {
                Ok((n, from)) => core.on_datagram(&self.buf[..n], from, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP report consumed by the read: go on.
                Err(_) => {}
            }
        }
        self.more = true;
    }
}

impl Source for NetMcast {
    fn poll(&mut self, now: Instant) -> SourceEvent {
        if self.core.is_none() {
            if let Some(ev) = self.start(now) {
                return ev;
            }
        }
        self.refresh_nsc(now);
        if self.core.as_ref().is_some_and(|c| c.queued() == 0) {
            self.read(now);
        }
        let Some(core) = self.core.as_mut() else {
            return SourceEvent::Idle(now + RETRY);
        };
        let mut ev = core.next_event(now);
        if let SourceEvent::Idle(at) = &mut ev {
            if self.more {
                *at = now;
            } else if let Some(f) = &self.fetch {
                *at = (*at).min(f.deadline);
            }
        }
        ev
    }

    fn state(&self) -> SourceState {
        match &self.core {
            Some(c) => c.state(),
            None => self.state.clone(),
        }
    }

    fn counters(&self) -> SourceCounters {
        let mut c = self.core.as_ref().map(|c| c.counters()).unwrap_or_default();
        c.failed += self.failures;
        c
    }
}
