//! `asfcast-load`: opens N streaming clients against a station and checks that each receives at
//! the stream's rate, reporting the server's CPU and RSS per client. The same tool measures
//! asfcast and a peer server (VLC's MMSH output) in one run, so the figures are comparable.
//!
//! Clients are plain sockets in one mio loop (one process, no threads), speaking just enough of
//! each protocol to reach the media and count its bytes; the URL scheme picks the protocol:
//! - `mmsh://` or `http://`: MMS over HTTP, one Play request, `$D` chunks (`mmsh.rs`);
//! - `mmst://` or `mms://`: MMS over TCP, FFmpeg's command sequence, Data packets with the
//!   StartPlaying incarnation, pings answered (`mmst.rs`, mmsp.md §2, §5.1);
//! - `rtsp://` with `--transport tcp|udp`: RTSP with the Windows Media extensions, x-asf-pf over
//!   interleaved `$` frames or UDP datagrams, GET_PARAMETER keep-alives
//!   (`rtsp.rs`, rtsp-wmsp.md §1, §2).
//!
//! Media bytes are ASF packet bytes in every mode (MMS data headers, RTP and payload-format
//! headers are not counted). RTP carries ASF packets without their padding, so RTSP figures are
//! lower than MMS ones for the same stream; the rate check compares each client with the
//! median client of the same run, or with `--expect-bps`.
//!
//! File descriptors: one per TCP client; a UDP RTSP client holds three (its RTSP connection and
//! its own RTP/RTCP socket pair on 127.0.0.1, all in the same poll). The tool raises
//! RLIMIT_NOFILE to its hard limit and refuses a run that cannot fit: with a hard limit of
//! 20 000, UDP mode reaches about 6 600 clients in one process (TCP modes about 19 900).
//!
//! The report is four lines per run:
//! - `LABEL: clients=N at_rate=K (P%) closed=… bad_framing=… connect_errors=… expected=…kbps
//!   median=…kbps min=…kbps` — a client is at rate when it reached media and received at least
//!   `--at-rate` × the expected rate over the window; the median is taken over the clients
//!   that reached media (failed clients are counted below, not folded into the median);
//! - `LABEL: server pid=… cpu=…% of one core, …% per client; rss=… KiB, … KiB per client`;
//! - `LABEL: startup connect→first media byte p50=… p99=… max=… (of N); connect→first video
//!   key-frame payload …` — per client, from starting its TCP connect (`--ramp 1e9` opens
//!   them all at once: simultaneous joins) to the first ASF byte, and to the first payload
//!   that starts a key frame on a video stream (`keyframe.rs`);
//! - `LABEL: failures connect_errors=… handshake_failed=… closed=… bad_framing=…
//!   never_played=… playing=… load=<loadavg> tool_cpu=…% reasons: …` — the same counts in every
//!   mode (a connection lost before media is a handshake failure, after it "closed"), the
//!   machine's load average and this tool's own CPU over the window (to tell a saturated
//!   client from a saturated server), and the most frequent reasons, including the stage
//!   clients still waiting in are stuck at.
//!
//! Traffic goes to the URL given — use 127.0.0.1. `--bind 127.0.0.2,127.0.0.3,…` makes the
//! clients connect from those local addresses in turn (every 127.0.0.0/8 address is on lo),
//! so that a balancer hashing the source address spreads them.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token};

use asfcast_load::core::Fault;
use asfcast_load::mmsh::Mmsh;
use asfcast_load::mmst::Mmst;
use asfcast_load::procfs;
use asfcast_load::rtsp::{Lower, Rtsp};

#[derive(Parser, Debug)]
#[command(
    about = "Open N MMSH, MMST or RTSP clients against a station and measure delivery and server cost"
)]
struct Args {
    /// Station URL: mmsh://HOST:PORT/PATH (or http://), mmst://HOST:PORT/PATH (or mms://),
    /// rtsp://HOST:PORT/PATH.
    url: String,
    /// Number of clients.
    #[arg(long, short = 'n', default_value_t = 100)]
    clients: usize,
    /// Measurement window after every client has connected and warmed up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up before the window (fast start, buffers filling).
    #[arg(long, default_value_t = 4.0)]
    warmup: f64,
    /// Connections opened per second.
    #[arg(long, default_value_t = 2000.0)]
    ramp: f64,
    /// PID of the server process, for CPU and RSS (default: found by the listening port).
    #[arg(long)]
    pid: Option<u32>,
    /// The expected media rate in bit/s of ASF packet bytes (default: the median playing
    /// client's rate).
    #[arg(long)]
    expect_bps: Option<f64>,
    /// A client is "at rate" when it receives at least this share of the expected rate.
    #[arg(long, default_value_t = 0.9)]
    at_rate: f64,
    /// Label for the report lines.
    #[arg(long, default_value = "server")]
    label: String,
    /// RTP delivery for rtsp:// URLs.
    #[arg(long, value_enum, default_value_t = TransportArg::Tcp)]
    transport: TransportArg,
    /// RTSP keep-alive (GET_PARAMETER) interval, seconds.
    #[arg(long, default_value_t = 20.0)]
    keepalive: f64,
    /// First UDP port tried for the clients' RTP/RTCP pairs (UDP mode).
    #[arg(long, default_value_t = 20000)]
    udp_base_port: u16,
    /// Local addresses the clients connect from, in turn (comma-separated, e.g.
    /// 127.0.0.2,127.0.0.3): so that a balancer that hashes the source address (HAProxy
    /// `balance source`) sees several clients. Default: the system's choice.
    #[arg(long, value_delimiter = ',')]
    bind: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportArg {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mmsh,
    Mmst,
    Rtsp(TransportArg),
}

impl Mode {
    /// Sockets one client holds.
    fn fds_per_client(self) -> usize {
        match self {
            Mode::Rtsp(TransportArg::Udp) => 3,
            _ => 1,
        }
    }
}

/// The station URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    mode: Mode,
    /// `host:port` as written (with the scheme's default port when none was given).
    host: String,
    path: String,
}

fn parse_url(url: &str, transport: TransportArg) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url}: no scheme (mmsh://, mmst://, rtsp://)"))?;
    let (mode, port) = match scheme.to_ascii_lowercase().as_str() {
        "mmsh" | "http" => (Mode::Mmsh, 80),
        "mmst" | "mms" => (Mode::Mmst, 1755),
        "rtsp" => (Mode::Rtsp(transport), 554),
        other => return Err(format!("{url}: unsupported scheme {other}://")),
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok() && !host.ends_with(']'));
    let host = if has_port {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    Ok(Target {
        mode,
        host,
        path: if path.is_empty() { "/" } else { path }.to_string(),
    })
}

/// One client's protocol core.
#[derive(Debug)]
enum Proto {
    Mmsh(Mmsh),
    Mmst(Mmst),
    Rtsp(Rtsp),
}

impl Proto {
    fn on_connected(&mut self, out: &mut Vec<u8>) -> Result<(), Fault> {
        match self {
            Proto::Mmsh(c) => c.on_connected(out),
            Proto::Mmst(c) => c.on_connected(out),
            Proto::Rtsp(c) => return c.on_connected(out),
        }
        Ok(())
    }

    fn on_bytes(&mut self, data: &[u8], now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        match self {
            Proto::Mmsh(c) => c.on_bytes(data),
            Proto::Mmst(c) => c.on_bytes(data, out),
            Proto::Rtsp(c) => c.on_bytes(data, now, out),
        }
    }

    fn playing(&self) -> bool {
        match self {
            Proto::Mmsh(c) => c.playing(),
            Proto::Mmst(c) => c.playing(),
            Proto::Rtsp(c) => c.playing(),
        }
    }

    fn media_bytes(&self) -> u64 {
        match self {
            Proto::Mmsh(c) => c.media_bytes(),
            Proto::Mmst(c) => c.media_bytes,
            Proto::Rtsp(c) => c.media_bytes,
        }
    }

    /// Has the client seen its first video key-frame payload?
    fn key_found(&self) -> bool {
        match self {
            Proto::Mmsh(c) => c.chunks.key.found,
            Proto::Mmst(c) => c.key.found,
            Proto::Rtsp(c) => c.key.found,
        }
    }

    fn stage(&self) -> String {
        match self {
            Proto::Mmsh(c) if c.playing() => "body".into(),
            Proto::Mmsh(_) => "response head".into(),
            Proto::Mmst(c) => format!("{:?}", c.stage()),
            Proto::Rtsp(c) => format!("{:?}", c.stage()),
        }
    }
}

/// How a client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    ConnectError,
    Handshake,
    Closed,
    Framing,
}

struct Client {
    tcp: Option<TcpStream>,
    udp: Option<(UdpSocket, UdpSocket)>,
    connected: bool,
    out: Vec<u8>,
    proto: Proto,
    end: Option<End>,
    ever_played: bool,
    bytes_at_window_start: u64,
    /// When the connect was started.
    opened: Instant,
    /// Connect → first media byte, connect → first video key-frame payload.
    first_media: Option<Duration>,
    first_key: Option<Duration>,
}

impl Client {
    /// Notes the startup moments after the client took bytes in.
    fn note_startup(&mut self, now: Instant) {
        if self.first_media.is_none() && self.proto.media_bytes() > 0 {
            self.first_media = Some(now.saturating_duration_since(self.opened));
        }
        if self.first_key.is_none() && self.proto.key_found() {
            self.first_key = Some(now.saturating_duration_since(self.opened));
        }
    }
}

/// Failures by kind, with the reasons behind them.
#[derive(Debug, Default)]
struct Failures {
    reasons: HashMap<String, usize>,
}

impl Failures {
    fn note(&mut self, what: String) {
        *self.reasons.entry(what).or_default() += 1;
    }

    /// The most frequent reasons, most frequent first.
    fn top(&self, n: usize) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> =
            self.reasons.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

const TCP: usize = 0;
const RTP: usize = 1;
const RTCP: usize = 2;

fn token(idx: usize, kind: usize) -> Token {
    Token(idx * 3 + kind)
}

/// Ends a client: its sockets are closed at once (their fds go back to the budget).
fn finish(c: &mut Client, end: End, reason: String, registry: &Registry, failures: &mut Failures) {
    if c.end.is_some() {
        return;
    }
    if let Some(mut s) = c.tcp.take() {
        let _ = registry.deregister(&mut s);
    }
    if let Some((mut a, mut b)) = c.udp.take() {
        let _ = registry.deregister(&mut a);
        let _ = registry.deregister(&mut b);
    }
    c.end = Some(end);
    c.out = Vec::new();
    let kind = match end {
        End::ConnectError => "connect",
        End::Handshake => "handshake",
        End::Closed => "closed",
        End::Framing => "framing",
    };
    failures.note(format!("{kind}: {reason}"));
}

fn fault_end(c: &mut Client, f: Fault, registry: &Registry, failures: &mut Failures) {
    let end = match &f {
        Fault::Handshake(_) => End::Handshake,
        Fault::Framing(_) => End::Framing,
        Fault::Ended(_) => End::Closed,
    };
    let reason = match f {
        Fault::Handshake(r) | Fault::Framing(r) => r,
        Fault::Ended(r) => format!("server ended the stream ({r})"),
    };
    finish(c, end, reason, registry, failures);
}

/// A lost connection: a handshake failure before media, "closed" after.
fn lost(c: &mut Client, why: &str, registry: &Registry, failures: &mut Failures) {
    if c.proto.playing() {
        finish(c, End::Closed, why.to_string(), registry, failures);
    } else {
        let reason = format!("{why} in {}", c.proto.stage());
        finish(c, End::Handshake, reason, registry, failures);
    }
}

fn flush(c: &mut Client, registry: &Registry, failures: &mut Failures) {
    while !c.out.is_empty() {
        let Some(s) = c.tcp.as_mut() else { return };
        match s.write(&c.out) {
            Ok(0) => {
                lost(c, "write returned 0", registry, failures);
                return;
            }
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                lost(c, &format!("write: {}", e.kind()), registry, failures);
                return;
            }
        }
    }
}

/// A free RTP/RTCP port pair on 127.0.0.1 (RTP even, RTCP the next port), from `*next` on.
fn udp_pair(next: &mut u32) -> io::Result<(UdpSocket, UdpSocket, u16)> {
    while *next < 65_535 {
        let p = *next as u16;
        *next += 2;
        let Ok(rtp) = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], p))) else {
            continue;
        };
        let Ok(rtcp) = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], p + 1))) else {
            continue;
        };
        return Ok((rtp, rtcp, p));
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        "no free UDP port pair",
    ))
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let limit = procfs::raise_nofile();
    let target = parse_url(&args.url, args.transport)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let per = target.mode.fds_per_client();
    let spare = 64;
    let most = (limit as usize).saturating_sub(spare) / per;
    if args.clients > most {
        return Err(io::Error::other(format!(
            "{} clients need {} file descriptors ({per} each) but RLIMIT_NOFILE is {limit}: \
             at most {most} clients in this mode",
            args.clients,
            args.clients * per + spare
        )));
    }
    let addr: SocketAddr = target
        .host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let pid = args.pid.or_else(|| procfs::pid_listening_on(addr.port()));
    let keepalive = Duration::from_secs_f64(args.keepalive.max(0.1));

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut clients: Vec<Client> = Vec::with_capacity(args.clients);
    let mut failures = Failures::default();
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let ramp_every = Duration::from_secs_f64(1.0 / args.ramp.max(1.0));
    let mut next_udp = u32::from(args.udp_base_port & !1);
    let mut window: Option<Window> = None;
    let mut all_open_at: Option<Instant> = None;
    let mut report_at: Option<Instant> = None;
    let mut next_tick = start;
    loop {
        let now = Instant::now();
        // Open clients on the ramp schedule.
        while clients.len() < args.clients
            && start + ramp_every.mul_f64(clients.len() as f64) <= now
        {
            let idx = clients.len();
            let (proto, udp) = match target.mode {
                Mode::Mmsh => (
                    Proto::Mmsh(Mmsh::new(&target.host, &target.path, idx)),
                    Ok(None),
                ),
                Mode::Mmst => (
                    Proto::Mmst(Mmst::new(&target.host, &target.path, idx)),
                    Ok(None),
                ),
                Mode::Rtsp(TransportArg::Tcp) => (
                    Proto::Rtsp(Rtsp::new(&args.url, Lower::Tcp, keepalive)),
                    Ok(None),
                ),
                Mode::Rtsp(TransportArg::Udp) => match udp_pair(&mut next_udp) {
                    Ok((rtp, rtcp, port)) => (
                        Proto::Rtsp(Rtsp::new(
                            &args.url,
                            Lower::Udp { rtp_port: port },
                            keepalive,
                        )),
                        Ok(Some((rtp, rtcp))),
                    ),
                    Err(e) => (
                        Proto::Rtsp(Rtsp::new(&args.url, Lower::Udp { rtp_port: 0 }, keepalive)),
                        Err(e),
                    ),
                },
            };
            let mut c = Client {
                tcp: None,
                udp: None,
                connected: false,
                out: Vec::new(),
                proto,
                end: None,
                ever_played: false,
                bytes_at_window_start: 0,
                opened: Instant::now(),
                first_media: None,
                first_key: None,
            };
            let opened = udp.and_then(|mut udp| {
                if let Some((rtp, rtcp)) = udp.as_mut() {
                    poll.registry()
                        .register(rtp, token(idx, RTP), Interest::READABLE)?;
                    poll.registry()
                        .register(rtcp, token(idx, RTCP), Interest::READABLE)?;
                }
                c.udp = udp;
                let mut s = match args.bind.get(idx % args.bind.len().max(1)) {
                    Some(ip) => connect_from(*ip, addr)?,
                    None => TcpStream::connect(addr)?,
                };
                poll.registry().register(
                    &mut s,
                    token(idx, TCP),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                c.tcp = Some(s);
                Ok(())
            });
            if let Err(e) = opened {
                finish(
                    &mut c,
                    End::ConnectError,
                    e.to_string(),
                    poll.registry(),
                    &mut failures,
                );
            }
            clients.push(c);
        }
        if clients.len() == args.clients && all_open_at.is_none() {
            all_open_at = Some(now);
        }
        if let (Some(t), None) = (all_open_at, window) {
            if now >= t + Duration::from_secs_f64(args.warmup) {
                for c in clients.iter_mut() {
                    c.bytes_at_window_start = c.proto.media_bytes();
                }
                window = Some(Window {
                    start: now,
                    server: pid.and_then(procfs::proc_usage),
                    tool: procfs::proc_usage(std::process::id()),
                });
                report_at = Some(now + Duration::from_secs_f64(args.seconds));
            }
        }
        if report_at.is_some_and(|r| now >= r) {
            break;
        }
        if now >= next_tick {
            next_tick = now + Duration::from_millis(250);
            for c in clients.iter_mut().filter(|c| c.end.is_none()) {
                if let Proto::Rtsp(r) = &mut c.proto {
                    if let Err(f) = r.on_tick(now, &mut c.out) {
                        fault_end(c, f, poll.registry(), &mut failures);
                        continue;
                    }
                    if !c.out.is_empty() {
                        flush(c, poll.registry(), &mut failures);
                    }
                }
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        let now = Instant::now();
        for ev in events.iter() {
            let idx = ev.token().0 / 3;
            let kind = ev.token().0 % 3;
            let Some(c) = clients.get_mut(idx) else {
                continue;
            };
            if c.end.is_some() {
                continue;
            }
            if kind != TCP {
                let Some((rtp, rtcp)) = c.udp.as_ref() else {
                    continue;
                };
                let sock = if kind == RTP { rtp } else { rtcp };
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => {
                            if let (RTP, Proto::Rtsp(r)) = (kind, &mut c.proto) {
                                r.on_datagram(buf.get(..n).unwrap_or_default());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                c.note_startup(now);
                continue;
            }
            if !c.connected {
                let Some(s) = c.tcp.as_ref() else { continue };
                let failed = match s.take_error() {
                    Ok(Some(e)) | Err(e) => Some(e.to_string()),
                    Ok(None) => match s.peer_addr() {
                        Ok(_) => None,
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                        Err(e) => Some(e.to_string()),
                    },
                };
                if let Some(e) = failed {
                    finish(c, End::ConnectError, e, poll.registry(), &mut failures);
                    continue;
                }
                c.connected = true;
                if let Err(f) = c.proto.on_connected(&mut c.out) {
                    fault_end(c, f, poll.registry(), &mut failures);
                    continue;
                }
            }
            while let Some(s) = c.tcp.as_mut() {
                match s.read(&mut buf) {
                    Ok(0) => {
                        lost(
                            c,
                            "server closed the connection",
                            poll.registry(),
                            &mut failures,
                        );
                        break;
                    }
                    Ok(n) => {
                        let r = c
                            .proto
                            .on_bytes(buf.get(..n).unwrap_or_default(), now, &mut c.out);
                        c.ever_played |= c.proto.playing();
                        c.note_startup(now);
                        if let Err(f) = r {
                            fault_end(c, f, poll.registry(), &mut failures);
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        lost(
                            c,
                            &format!("read: {}", e.kind()),
                            poll.registry(),
                            &mut failures,
                        );
                        break;
                    }
                }
            }
            flush(c, poll.registry(), &mut failures);
        }
    }
    report(&args, &clients, failures, window, pid)
}

/// The measurement window: when it began, and the server's and this tool's (CPU ticks, RSS)
/// then.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    server: Option<(u64, u64)>,
    tool: Option<(u64, u64)>,
}

/// A non-blocking connect from a chosen local address (any port).
fn connect_from(local: std::net::IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    s.bind(&SockAddr::from(SocketAddr::new(local, 0)))?;
    match s.connect(&SockAddr::from(to)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

fn report(
    args: &Args,
    clients: &[Client],
    mut failures: Failures,
    window: Option<Window>,
    pid: Option<u32>,
) -> io::Result<()> {
    let w = window.ok_or_else(|| io::Error::other("no measurement window"))?;
    let elapsed = w.start.elapsed().as_secs_f64();
    let usage0 = w.server;
    let usage1 = pid.and_then(procfs::proc_usage);
    let ticks = 100.0; // USER_HZ on Linux
    let tool_cpu = match (w.tool, procfs::proc_usage(std::process::id())) {
        (Some((t0, _)), Some((t1, _))) => {
            format!(
                "{:.1}%",
                t1.saturating_sub(t0) as f64 / ticks / elapsed * 100.0
            )
        }
        _ => "unknown".into(),
    };
    let load = procfs::loadavg();
    let rate = |c: &Client| {
        c.proto
            .media_bytes()
            .saturating_sub(c.bytes_at_window_start) as f64
            * 8.0
            / elapsed
    };
    // The median of the clients that got media: failed clients are counted as failures, not
    // as a lower median.
    let mut rates: Vec<f64> = clients.iter().filter(|c| c.ever_played).map(rate).collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let expect = args.expect_bps.unwrap_or(median);
    let at_rate = clients
        .iter()
        .filter(|c| c.ever_played && expect > 0.0 && rate(c) >= expect * args.at_rate)
        .count();
    let count = |e: End| clients.iter().filter(|c| c.end == Some(e)).count();
    let (connect_errors, handshake, closed, framing) = (
        count(End::ConnectError),
        count(End::Handshake),
        count(End::Closed),
        count(End::Framing),
    );
    let playing = clients
        .iter()
        .filter(|c| c.end.is_none() && c.proto.playing())
        .count();
    let mut never_played = 0;
    for c in clients
        .iter()
        .filter(|c| c.end.is_none() && !c.proto.playing())
    {
        never_played += 1;
        failures.note(format!("still waiting in {}", c.proto.stage()));
    }
    let min_rate = clients.iter().map(rate).fold(f64::INFINITY, f64::min);
    let (cpu, rss) = match (usage0, usage1) {
        (Some((t0, _)), Some((t1, rss))) => (
            Some(t1.saturating_sub(t0) as f64 / ticks / elapsed * 100.0),
            Some(rss),
        ),
        _ => (None, None),
    };
    let n = clients.len().max(1) as f64;
    let label = &args.label;
    println!(
        "{label}: clients={} at_rate={} ({:.1}%) closed={} bad_framing={} connect_errors={} \
         expected={:.0}kbps median={:.0}kbps min={:.0}kbps",
        clients.len(),
        at_rate,
        at_rate as f64 * 100.0 / n,
        handshake + closed,
        framing,
        connect_errors,
        expect / 1000.0,
        median / 1000.0,
        if min_rate.is_finite() { min_rate } else { 0.0 } / 1000.0,
    );
    match (cpu, rss) {
        (Some(cpu), Some(rss)) => println!(
            "{label}: server pid={} cpu={cpu:.1}% of one core, {:.4}% per client; rss={rss} KiB, {:.1} KiB per client",
            pid.unwrap_or(0),
            cpu / n,
            rss as f64 / n,
        ),
        _ => println!("{label}: server CPU/RSS unknown (no --pid and no process found listening)"),
    }
    let startup = |f: fn(&Client) -> Option<Duration>| {
        let mut v: Vec<Duration> = clients.iter().filter_map(f).collect();
        v.sort_unstable();
        let pct = |p: f64| {
            let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len().max(1)) - 1;
            v.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        format!(
            "p50={:.1}ms p99={:.1}ms max={:.1}ms (of {})",
            pct(0.50),
            pct(0.99),
            pct(1.0),
            v.len()
        )
    };
    println!(
        "{label}: startup connect→first media byte {}; connect→first video key-frame payload {}",
        startup(|c| c.first_media),
        startup(|c| c.first_key),
    );
    let reasons: Vec<String> = failures
        .top(4)
        .into_iter()
        .map(|(r, k)| format!("{k}x {r}"))
        .collect();
    println!(
        "{label}: failures connect_errors={connect_errors} handshake_failed={handshake} \
         closed={closed} bad_framing={framing} never_played={never_played} playing={playing} \
         load={load} tool_cpu={tool_cpu}{}",
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" reasons: {}", reasons.join("; "))
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_mode_and_default_port() {
        let t = parse_url("mmst://127.0.0.1/news", TransportArg::Tcp).unwrap();
        assert_eq!(
            t,
            Target {
                mode: Mode::Mmst,
                host: "127.0.0.1:1755".into(),
                path: "/news".into()
            }
        );
        let t = parse_url("rtsp://127.0.0.1:5540/demo", TransportArg::Udp).unwrap();
        assert_eq!(t.mode, Mode::Rtsp(TransportArg::Udp));
        assert_eq!(t.host, "127.0.0.1:5540");
        assert_eq!(t.mode.fds_per_client(), 3);
        let t = parse_url("http://localhost:8080", TransportArg::Tcp).unwrap();
        assert_eq!((t.mode, t.path.as_str()), (Mode::Mmsh, "/"));
        assert!(parse_url("ftp://h/x", TransportArg::Tcp).is_err());
        assert!(parse_url("127.0.0.1/x", TransportArg::Tcp).is_err());
    }

    #[test]
    fn failure_reasons_are_ranked_by_count() {
        let mut f = Failures::default();
        for r in ["a", "b", "b", "c", "b", "c"] {
            f.note(r.into());
        }
        assert_eq!(f.top(2), [("b", 3), ("c", 2)]);
    }

    #[test]
    fn udp_pairs_are_even_odd_and_skip_taken_ports() {
        let mut next = 41_000;
        let (a, b, p) = udp_pair(&mut next).unwrap();
        assert_eq!(p % 2, 0);
        assert_eq!(a.local_addr().unwrap().port(), p);
        assert_eq!(b.local_addr().unwrap().port(), p + 1);
        // The pair is taken: the next one starts after it.
        let mut again = u32::from(p);
        let (_, _, q) = udp_pair(&mut again).unwrap();
        assert!(q > p);
    }
}
