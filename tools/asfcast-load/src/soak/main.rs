//! `asfcast-soak`: a long run against a live daemon, to find what only time shows — leaks
//! (RSS and fd count at start, middle and end), clients that stop getting media, stations that
//! do not come back after their source failed, reloads that disturb playing clients.
//!
//! Why a separate tool from `asfcast-load`: the load tool opens N clients of one protocol at
//! once and measures rate and cost; a soak needs the opposite shape — a mixed population
//! (MMSH, MMST, RTSP over TCP and UDP, plain HTTP) that churns every second around a target
//! size, with lifetimes from seconds to minutes (log-uniform), while the tool itself breaks
//! things on a schedule:
//! - **source failure**: the faulty station's playlist file is renamed away for `--fault-down`
//!   seconds every `--fault-every` seconds and back; the station must stay up and new joins
//!   must play again after the return;
//! - **reload**: SIGHUP every `--reload-every` seconds, alternating a harmless description
//!   change of the stable station and no change at all.
//!
//! A **gap** is a stall longer than `--stall` seconds in a client's media arrival, or a
//! discontinuity it can see (MMSH/MMST LocationId jumps, RTP sequence jumps per SSRC). Stalls
//! and failures on the faulty station that overlap an outage (plus `--recovery-grace`) are
//! reported apart as expected. Every client is a sans-I/O core from the `asfcast_load` library
//! in one mio loop, as in `asfcast-load`.
//!
//! The daemon runs elsewhere (`scripts/soak` starts it in a private network namespace); this
//! tool only connects to 127.0.0.1, renames the one file it is given, edits the one station
//! file it is given and signals the one PID it is given.

mod plan;
mod report;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use asfcast_load::core::Fault;
use asfcast_load::mmsh::Mmsh;
use asfcast_load::mmst::Mmst;
use asfcast_load::plain::Plain;
use asfcast_load::procfs;
use asfcast_load::rtsp::{Lower, Rtsp};
use clap::Parser;
use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token};

use crate::plan::{Cadence, Kind, Outages, Rng};
use crate::report::{Gap, Join, Outcome, Reload, Setting, Snapshot, Tally};

#[derive(Parser, Debug)]
#[command(
    about = "Soak an asfcast daemon: a churning mixed-protocol population, source failures and reloads"
)]
struct Args {
    /// Run time in seconds.
    #[arg(long, default_value_t = 3600.0)]
    seconds: f64,
    /// PID of the daemon (RSS, fds, SIGHUP).
    #[arg(long)]
    pid: u32,
    /// The station whose source stays up (its description is changed by reloads).
    #[arg(long, default_value = "steady")]
    stable: String,
    /// The station whose source fails.
    #[arg(long, default_value = "flaky")]
    faulty: String,
    /// Port of the HTTP listener (MMSH and plain HTTP) on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// Port of the MMS listener.
    #[arg(long, default_value_t = 1755)]
    mms_port: u16,
    /// Port of the RTSP listener.
    #[arg(long, default_value_t = 8554)]
    rtsp_port: u16,
    /// Clients kept connected (the population churns around it).
    #[arg(long, default_value_t = 100)]
    population: usize,
    /// Most joins per second (also the ramp at the start).
    #[arg(long, default_value_t = 10)]
    join_rate: usize,
    /// Shortest client lifetime, seconds.
    #[arg(long, default_value_t = 2.0)]
    min_life: f64,
    /// Longest client lifetime, seconds (lifetimes are log-uniform in between).
    #[arg(long, default_value_t = 300.0)]
    max_life: f64,
    /// The faulty station's playlist file, renamed away and back (no faults without it).
    #[arg(long)]
    fault_file: Option<PathBuf>,
    /// Seconds between source failures.
    #[arg(long, default_value_t = 180.0)]
    fault_every: f64,
    /// Seconds the file stays away.
    #[arg(long, default_value_t = 20.0)]
    fault_down: f64,
    /// Seconds after the file's return during which the station may still be coming back.
    #[arg(long, default_value_t = 20.0)]
    recovery_grace: f64,
    /// The stable station's YAML file, whose `description:` line alternate reloads change
    /// (without it every reload is a no-change reload).
    #[arg(long)]
    reload_file: Option<PathBuf>,
    /// Seconds between reloads (SIGHUP); 0: none.
    #[arg(long, default_value_t = 300.0)]
    reload_every: f64,
    /// A stall longer than this (seconds) in a playing client's media is a gap.
    #[arg(long, default_value_t = 2.0)]
    stall: f64,
    /// A client without media this long after joining fails ("no media").
    #[arg(long, default_value_t = 15.0)]
    join_timeout: f64,
    /// RTSP keep-alive interval, seconds.
    #[arg(long, default_value_t = 20.0)]
    keepalive: f64,
    /// First UDP port for RTSP UDP clients' RTP/RTCP pairs.
    #[arg(long, default_value_t = 20000)]
    udp_base_port: u16,
    /// Seed of the join pattern.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
enum SoakError {
    #[error("{0}")]
    Args(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SoakError {
    let what = what.into();
    move |source| SoakError::Io { what, source }
}

/// Set by SIGINT/SIGTERM: end the run early, still with a report (and the file put back).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// One client's protocol core.
#[derive(Debug)]
enum Proto {
    Mmsh(Mmsh),
    Mmst(Mmst),
    Rtsp(Rtsp),
    Plain(Plain),
}

impl Proto {
    fn on_connected(&mut self, out: &mut Vec<u8>) -> Result<(), Fault> {
        match self {
            Proto::Mmsh(c) => c.on_connected(out),
            Proto::Mmst(c) => c.on_connected(out),
            Proto::Rtsp(c) => return c.on_connected(out),
            Proto::Plain(c) => c.on_connected(out),
        }
        Ok(())
    }

    fn on_bytes(&mut self, data: &[u8], now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        match self {
            Proto::Mmsh(c) => c.on_bytes(data),
            Proto::Mmst(c) => c.on_bytes(data, out),
            Proto::Rtsp(c) => c.on_bytes(data, now, out),
            Proto::Plain(c) => c.on_bytes(data),
        }
    }

    fn media_bytes(&self) -> u64 {
        match self {
            Proto::Mmsh(c) => c.media_bytes(),
            Proto::Mmst(c) => c.media_bytes,
            Proto::Rtsp(c) => c.media_bytes,
            Proto::Plain(c) => c.media_bytes,
        }
    }

    fn stage(&self) -> String {
        match self {
            Proto::Mmsh(c) if c.playing() => "body".into(),
            Proto::Mmsh(_) => "response head".into(),
            Proto::Mmst(c) => format!("{:?}", c.stage()),
            Proto::Rtsp(c) => format!("{:?}", c.stage()),
            Proto::Plain(c) => c.stage().into(),
        }
    }

    /// Packet-numbering jumps seen so far, and the latest as text.
    fn jumps(&self) -> (u64, String) {
        match self {
            Proto::Mmsh(c) => (
                c.chunks.locations.jumps,
                jump_text("LocationId", c.chunks.locations.last_jump),
            ),
            Proto::Mmst(c) => (
                c.locations.jumps,
                jump_text("LocationId", c.locations.last_jump),
            ),
            Proto::Rtsp(c) => {
                let total = c.sequences.iter().map(|(_, s)| s.jumps).sum();
                let last = c
                    .sequences
                    .iter()
                    .filter_map(|(ssrc, s)| Some((*ssrc, s.last_jump?)))
                    .next_back()
                    .map_or(String::new(), |(ssrc, j)| {
                        jump_text(&format!("RTP seq (SSRC {ssrc:08x})"), Some(j))
                    });
                (total, last)
            }
            Proto::Plain(_) => (0, String::new()),
        }
    }
}

fn jump_text(what: &str, j: Option<(u32, u32)>) -> String {
    j.map_or(String::new(), |(e, g)| {
        format!("{what} jump: expected {e}, got {g}")
    })
}

struct Client {
    id: usize,
    kind: Kind,
    station: usize,
    tcp: Option<TcpStream>,
    udp: Option<(UdpSocket, UdpSocket)>,
    connected: bool,
    out: Vec<u8>,
    proto: Proto,
    joined: f64,
    leave_at: f64,
    first_media: Option<f64>,
    last_media: f64,
    last_bytes: u64,
    jumps_seen: u64,
}

const TCP: usize = 0;
const RTP: usize = 1;
const RTCP: usize = 2;

fn token(id: usize, kind: usize) -> Token {
    Token(id * 3 + kind)
}

/// The run's state beside the clients.
struct Run {
    start: Instant,
    stall: f64,
    faulty: usize,
    outages: Outages,
    tally: Tally,
}

impl Run {
    fn t(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.start).as_secs_f64()
    }

    /// New media or a new numbering jump on `c` (after a read).
    fn observe(&mut self, c: &mut Client, t: f64) {
        let bytes = c.proto.media_bytes();
        if bytes > c.last_bytes {
            if c.first_media.is_none() {
                c.first_media = Some(t);
            } else if t - c.last_media > self.stall {
                self.stall_gap(c, t, "");
            }
            c.last_media = t;
            c.last_bytes = bytes;
        }
        let (jumps, what) = c.proto.jumps();
        if jumps > c.jumps_seen {
            let excused = c.station == self.faulty && self.outages.explains(t, t);
            self.tally.gaps.push(Gap {
                at: t,
                id: c.id,
                kind: c.kind,
                station: c.station,
                what: format!("{what} ({} new)", jumps - c.jumps_seen),
                excused,
            });
            c.jumps_seen = jumps;
        }
    }

    /// A stall of `c` from its last media to `t`; `note` is empty when media resumed at `t`.
    fn stall_gap(&mut self, c: &Client, t: f64, note: &str) {
        let excused = c.station == self.faulty && self.outages.explains(c.last_media, t);
        if c.station == self.faulty && note.is_empty() {
            self.tally.resumed.push(t);
        }
        self.tally.gaps.push(Gap {
            at: c.last_media,
            id: c.id,
            kind: c.kind,
            station: c.station,
            what: format!("stall {:.1}s{note}", t - c.last_media),
            excused,
        });
    }

    /// Ends a client: sockets closed, an ongoing stall recorded, its visit kept.
    fn end(&mut self, mut c: Client, t: f64, outcome: Outcome, registry: &Registry) {
        if c.first_media.is_some() && t - c.last_media > self.stall {
            self.stall_gap(&c, t, " (until the client ended)");
        }
        if let Some(mut s) = c.tcp.take() {
            let _ = registry.deregister(&mut s);
        }
        if let Some((mut a, mut b)) = c.udp.take() {
            let _ = registry.deregister(&mut a);
            let _ = registry.deregister(&mut b);
        }
        self.tally.joins.push(Join {
            kind: c.kind,
            station: c.station,
            joined: c.joined,
            first_media: c.first_media,
            outcome,
        });
    }

    /// A failure of `c` at `t`: excused when its station's source was away then (or within
    /// the grace after its return).
    fn failed(&self, c: &Client, t: f64, what: String) -> Outcome {
        Outcome::Failed {
            what,
            excused: c.station == self.faulty && self.outages.explains(t, t),
        }
    }
}

fn fault_text(f: Fault) -> String {
    match f {
        Fault::Handshake(r) => format!("handshake: {r}"),
        Fault::Framing(r) => format!("framing: {r}"),
        Fault::Ended(r) => format!("server ended the stream: {r}"),
    }
}

/// A lost connection, named by where the client was.
fn lost_text(c: &Client, why: &str) -> String {
    if c.first_media.is_some() {
        format!("closed: {why}")
    } else {
        format!("handshake: {why} in {}", c.proto.stage())
    }
}

/// Writes what the client has queued; Err is the failure text.
fn flush(c: &mut Client) -> Result<(), String> {
    while !c.out.is_empty() {
        let Some(s) = c.tcp.as_mut() else {
            return Ok(());
        };
        match s.write(&c.out) {
            Ok(0) => return Err(lost_text(c, "write returned 0")),
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(lost_text(c, &format!("write: {}", e.kind()))),
        }
    }
    Ok(())
}

/// A free RTP/RTCP port pair on 127.0.0.1, from `*next` on (wrapping to `base`).
fn udp_pair(next: &mut u32, base: u32) -> io::Result<(UdpSocket, UdpSocket, u16)> {
    for _ in 0..20_000 {
        if *next >= 65_534 {
            *next = base;
        }
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

/// The daemon now.
fn snapshot(pid: u32, t: f64, clients: usize) -> Snapshot {
    let usage = procfs::proc_usage(pid);
    Snapshot {
        at: t,
        rss_kib: usage.map(|u| u.1),
        fds: procfs::fd_count(pid),
        cpu_ticks: usage.map(|u| u.0),
        clients,
    }
}

/// The faulty station's file, renamed away and back; put back when dropped, whatever happens.
struct Flaky {
    path: PathBuf,
    away: PathBuf,
    is_away: bool,
}

impl Flaky {
    fn new(path: &Path) -> Self {
        let mut away = path.as_os_str().to_owned();
        away.push(".away");
        Flaky {
            path: path.to_path_buf(),
            away: away.into(),
            is_away: false,
        }
    }

    fn take_away(&mut self) -> Result<(), SoakError> {
        std::fs::rename(&self.path, &self.away)
            .map_err(io_err(format!("renaming {} away", self.path.display())))?;
        self.is_away = true;
        Ok(())
    }

    fn bring_back(&mut self) -> Result<(), SoakError> {
        if self.is_away {
            std::fs::rename(&self.away, &self.path)
                .map_err(io_err(format!("renaming {} back", self.path.display())))?;
            self.is_away = false;
        }
        Ok(())
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        let _ = self.bring_back();
    }
}

/// The station file with its `description:` line set to `text` (the line is added at the end
/// when the file has none).
fn with_description(yaml: &str, text: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = yaml
        .lines()
        .map(|l| {
            if !found && l.starts_with("description:") {
                found = true;
                format!("description: {text}")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        out.push(format!("description: {text}"));
    }
    out.join("\n") + "\n"
}

/// Reload number `n`: odd ones change the stable station's description, even ones change
/// nothing; then SIGHUP.
fn reload(args: &Args, n: u32) -> Result<bool, SoakError> {
    let mut changed = false;
    if let (Some(path), true) = (&args.reload_file, n % 2 == 1) {
        let yaml =
            std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
        let text = format!("soak reload {n}, a harmless description change");
        std::fs::write(path, with_description(&yaml, &text))
            .map_err(io_err(format!("writing {}", path.display())))?;
        changed = true;
    }
    let pid = libc::pid_t::try_from(args.pid)
        .map_err(|_| SoakError::Args(format!("pid {} out of range", args.pid)))?;
    // SAFETY: kill(2) with a plain pid and signal number.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(SoakError::Io {
            what: format!("SIGHUP to {pid}"),
            source: io::Error::last_os_error(),
        });
    }
    Ok(changed)
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("asfcast-soak: {e}");
            std::process::exit(1);
        }
    }
}

/// The run; Ok(clean).
fn run(args: &Args) -> Result<bool, SoakError> {
    if args.population == 0 || args.seconds <= 0.0 {
        return Err(SoakError::Args(
            "--population and --seconds must be positive".into(),
        ));
    }
    if !procfs::alive(args.pid) {
        return Err(SoakError::Args(format!("no daemon with pid {}", args.pid)));
    }
    procfs::raise_nofile();
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
    }
    let stations = [args.stable.clone(), args.faulty.clone()];
    let localhost = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let keepalive = Duration::from_secs_f64(args.keepalive.max(0.1));
    let mut flaky = args.fault_file.as_deref().map(Flaky::new);
    let mut poll = Poll::new().map_err(io_err("poll"))?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut rng = Rng::new(args.seed);
    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut next_id = 0usize;
    let udp_base = u32::from(args.udp_base_port & !1);
    let mut next_udp = udp_base;
    let mut run = Run {
        start: Instant::now(),
        stall: args.stall,
        faulty: 1,
        outages: Outages::new(args.recovery_grace),
        tally: Tally::default(),
    };
    let mut faults = Cadence::new(if flaky.is_some() {
        args.fault_every
    } else {
        0.0
    });
    let mut reloads = Cadence::new(args.reload_every);
    let mut back_at: Option<f64> = None;
    let mut next_second = 0.0;
    let mut next_tick = 0.0;
    let mut next_sample = 5.0;
    let mut middle_taken = false;
    run.tally.snapshot("start", snapshot(args.pid, 0.0, 0));

    loop {
        let now = Instant::now();
        let t = run.t(now);
        if t >= args.seconds || STOP.load(Ordering::Relaxed) {
            if t < args.seconds {
                run.tally.aborted = Some(format!("stopped by a signal at {t:.0}s"));
            }
            break;
        }
        if !procfs::alive(args.pid) {
            run.tally.aborted = Some(format!("the daemon exited at {t:.0}s"));
            break;
        }
        // The faulty station's source: away, then back.
        if let Some(f) = flaky.as_mut() {
            if faults.due(t).is_some() && !f.is_away {
                f.take_away()?;
                run.outages.begin(t);
                back_at = Some(t + args.fault_down);
            }
            if back_at.is_some_and(|b| t >= b) {
                f.bring_back()?;
                run.outages.end(t);
                back_at = None;
            }
        }
        if let Some(n) = reloads.due(t) {
            let changed = reload(args, n)?;
            run.tally.reloads.push(Reload { at: t, changed });
        }
        if !middle_taken && t >= args.seconds / 2.0 {
            middle_taken = true;
            run.tally
                .snapshot("middle", snapshot(args.pid, t, clients.len()));
        }
        if t >= next_sample {
            next_sample = t + 5.0;
            let s = snapshot(args.pid, t, clients.len());
            run.tally.observe(&s);
        }
        // Once a second: the population is topped up towards its target.
        if t >= next_second {
            next_second = t.floor() + 1.0;
            let joins = args
                .population
                .saturating_sub(clients.len())
                .min(args.join_rate);
            for _ in 0..joins {
                let id = next_id;
                next_id += 1;
                let kind = Kind::ALL[rng.below(Kind::ALL.len())];
                let station = rng.below(2);
                let name = &stations[station];
                let life = rng.lifetime(args.min_life, args.max_life);
                let (proto, port) = match kind {
                    Kind::Mmsh => (
                        Proto::Mmsh(Mmsh::new(
                            &format!("127.0.0.1:{}", args.http_port),
                            &format!("/{name}"),
                            id,
                        )),
                        args.http_port,
                    ),
                    Kind::Http => (
                        Proto::Plain(Plain::new(
                            &format!("127.0.0.1:{}", args.http_port),
                            &format!("/{name}"),
                        )),
                        args.http_port,
                    ),
                    Kind::Mmst => (
                        Proto::Mmst(Mmst::new(
                            &format!("127.0.0.1:{}", args.mms_port),
                            &format!("/{name}"),
                            id,
                        )),
                        args.mms_port,
                    ),
                    Kind::RtspTcp | Kind::RtspUdp => (
                        Proto::Rtsp(Rtsp::new(
                            &format!("rtsp://127.0.0.1:{}/{name}", args.rtsp_port),
                            Lower::Tcp,
                            keepalive,
                        )),
                        args.rtsp_port,
                    ),
                };
                let mut c = Client {
                    id,
                    kind,
                    station,
                    tcp: None,
                    udp: None,
                    connected: false,
                    out: Vec::new(),
                    proto,
                    joined: t,
                    leave_at: t + life,
                    first_media: None,
                    last_media: t,
                    last_bytes: 0,
                    jumps_seen: 0,
                };
                let registry = poll.registry();
                let opened = (|| -> io::Result<()> {
                    if kind == Kind::RtspUdp {
                        let (mut rtp, mut rtcp, p) = udp_pair(&mut next_udp, udp_base)?;
                        registry.register(&mut rtp, token(id, RTP), Interest::READABLE)?;
                        registry.register(&mut rtcp, token(id, RTCP), Interest::READABLE)?;
                        c.udp = Some((rtp, rtcp));
                        c.proto = Proto::Rtsp(Rtsp::new(
                            &format!("rtsp://127.0.0.1:{}/{name}", args.rtsp_port),
                            Lower::Udp { rtp_port: p },
                            keepalive,
                        ));
                    }
                    let mut s = TcpStream::connect(localhost(port))?;
                    registry.register(
                        &mut s,
                        token(id, TCP),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    c.tcp = Some(s);
                    Ok(())
                })();
                match opened {
                    Ok(()) => {
                        clients.insert(id, c);
                    }
                    Err(e) => {
                        let o = run.failed(&c, t, format!("connect: {}", e.kind()));
                        run.end(c, t, o, registry);
                    }
                }
            }
            run.tally.peak_clients = run.tally.peak_clients.max(clients.len());
        }
        // Four times a second: lifetimes, join timeouts, keep-alives.
        if t >= next_tick {
            next_tick = t + 0.25;
            let ids: Vec<usize> = clients.keys().copied().collect();
            for id in ids {
                let Some(mut c) = clients.remove(&id) else {
                    continue;
                };
                if t >= c.leave_at {
                    run.end(c, t, Outcome::Left, poll.registry());
                    continue;
                }
                if c.first_media.is_none() && t - c.joined > args.join_timeout {
                    let what = format!(
                        "no media within {:.0}s (in {})",
                        args.join_timeout,
                        c.proto.stage()
                    );
                    let o = run.failed(&c, t, what);
                    run.end(c, t, o, poll.registry());
                    continue;
                }
                if let Proto::Rtsp(r) = &mut c.proto {
                    if let Err(f) = r.on_tick(now, &mut c.out) {
                        let o = run.failed(&c, t, fault_text(f));
                        run.end(c, t, o, poll.registry());
                        continue;
                    }
                }
                if let Err(what) = flush(&mut c) {
                    let o = run.failed(&c, t, what);
                    run.end(c, t, o, poll.registry());
                    continue;
                }
                clients.insert(id, c);
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(20))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(SoakError::Io {
                    what: "poll".into(),
                    source: e,
                });
            }
        }
        let now = Instant::now();
        let t = run.t(now);
        for ev in events.iter() {
            let id = ev.token().0 / 3;
            let kind = ev.token().0 % 3;
            let Some(mut c) = clients.remove(&id) else {
                continue;
            };
            match serve(&mut c, kind, now, &mut buf) {
                Ok(()) => {
                    run.observe(&mut c, t);
                    clients.insert(id, c);
                }
                Err(what) => {
                    run.observe(&mut c, t);
                    let o = run.failed(&c, t, what);
                    run.end(c, t, o, poll.registry());
                }
            }
        }
    }

    let end_t = run.t(Instant::now());
    run.tally
        .snapshot("end", snapshot(args.pid, end_t, clients.len()));
    let registry = poll.registry();
    let mut rest: Vec<Client> = clients.into_values().collect();
    rest.sort_by_key(|c| c.id);
    for c in rest {
        run.end(c, end_t, Outcome::Running, registry);
    }
    if let Some(f) = flaky.as_mut() {
        f.bring_back()?;
        run.outages.end(end_t);
    }
    let setting = Setting {
        seconds: args.seconds,
        elapsed: end_t,
        pid: args.pid,
        stations,
        population: args.population,
        stall: args.stall,
        seed: args.seed,
    };
    print!("{}", run.tally.to_text(&setting, &run.outages, run.faulty));
    if let Some(path) = &args.json {
        let json = run.tally.to_json(&setting, &run.outages, run.faulty);
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| SoakError::Args(format!("JSON report: {e}")))?;
        std::fs::write(path, text + "\n").map_err(io_err(format!("writing {}", path.display())))?;
    }
    Ok(run.tally.clean(&run.outages, run.faulty))
}

/// One readiness event of client `c` on socket `kind`; Err is the failure text.
fn serve(c: &mut Client, kind: usize, now: Instant, buf: &mut [u8]) -> Result<(), String> {
    if kind != TCP {
        let Some((rtp, rtcp)) = c.udp.as_ref() else {
            return Ok(());
        };
        let sock = if kind == RTP { rtp } else { rtcp };
        loop {
            match sock.recv(buf) {
                Ok(n) => {
                    if let (RTP, Proto::Rtsp(r)) = (kind, &mut c.proto) {
                        r.on_datagram(buf.get(..n).unwrap_or_default());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(()),
            }
        }
    }
    if !c.connected {
        let Some(s) = c.tcp.as_ref() else {
            return Ok(());
        };
        match s.take_error() {
            Ok(Some(e)) | Err(e) => return Err(format!("connect: {}", e.kind())),
            Ok(None) => match s.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(format!("connect: {}", e.kind())),
            },
        }
        c.connected = true;
        c.proto.on_connected(&mut c.out).map_err(fault_text)?;
    }
    loop {
        let Some(s) = c.tcp.as_mut() else {
            return Ok(());
        };
        match s.read(buf) {
            Ok(0) => return Err(lost_text(c, "server closed the connection")),
            Ok(n) => c
                .proto
                .on_bytes(buf.get(..n).unwrap_or_default(), now, &mut c.out)
                .map_err(fault_text)?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(lost_text(c, &format!("read: {}", e.kind()))),
        }
    }
    flush(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_line_is_replaced_or_added() {
        let y = "name: a\ndescription: old\nsource:\n  type: playlist\n";
        assert_eq!(
            with_description(y, "new"),
            "name: a\ndescription: new\nsource:\n  type: playlist\n"
        );
        assert_eq!(
            with_description("name: a", "x"),
            "name: a\ndescription: x\n"
        );
    }

    #[test]
    fn the_flaky_file_goes_away_and_always_comes_back() {
        let dir = std::env::temp_dir().join(format!("asfcast-soak-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flaky.asf");
        std::fs::write(&f, b"x").unwrap();
        {
            let mut flaky = Flaky::new(&f);
            flaky.take_away().unwrap();
            assert!(!f.exists());
        }
        assert!(f.exists(), "put back on drop");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
