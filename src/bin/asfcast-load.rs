//! `asfcast-load`: opens N streaming clients against a station and checks that each receives at
//! the stream's rate, reporting the server's CPU and RSS per client. The same tool measures
//! asfcast and a peer server (VLC's MMSH output) in one run, so the figures are comparable.
//!
//! Clients are plain sockets in one mio loop (one process, no threads), speaking just enough of
//! the protocol to count media bytes: MMS over HTTP (a Play request, then `$H`/`$D`/`$E`/`$C`
//! chunks, rtsp-wmsp.md §3). Traffic goes to the URL given — use 127.0.0.1.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

#[derive(Parser, Debug)]
#[command(about = "Open N MMSH clients against a station and measure delivery and server cost")]
struct Args {
    /// mmsh://HOST:PORT/PATH (or http://) of the station.
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
    /// The stream's bitrate in bit/s, if known (default: the median client's rate).
    #[arg(long)]
    expect_bps: Option<f64>,
    /// A client is "at rate" when it receives at least this share of the expected rate.
    #[arg(long, default_value_t = 0.9)]
    at_rate: f64,
    /// Label for the report line.
    #[arg(long, default_value = "server")]
    label: String,
}

/// Incremental MMSH chunk counter.
#[derive(Debug, Default)]
struct Chunks {
    head: Vec<u8>,
    /// Bytes of the current chunk's body still to skip.
    skip: usize,
    counting: bool,
    media_bytes: u64,
    packets: u64,
    ended: bool,
    bad: bool,
}

impl Chunks {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.bad && !self.ended {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                if self.counting {
                    self.media_bytes += n as u64;
                }
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let need = 4 - self.head.len().min(4);
            let n = need.min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.head.len() < 4 {
                return;
            }
            let len = u16::from_le_bytes([self.head[2], self.head[3]]) as usize;
            match (self.head[0], self.head[1]) {
                (0x24, b'D') => {
                    self.packets += 1;
                    self.counting = true;
                    // 8-byte MMS data header, then the packet.
                    self.media_bytes = self.media_bytes.saturating_sub(8);
                }
                (0x24, b'H') | (0x24, b'C') => self.counting = false,
                (0x24, b'E') => self.ended = true,
                _ => self.bad = true,
            }
            self.skip = len;
            self.head.clear();
        }
    }
}

#[derive(Debug)]
enum Stage {
    Request(usize),
    Head(Vec<u8>),
    Body,
    Closed,
}

struct Client {
    stream: TcpStream,
    stage: Stage,
    chunks: Chunks,
    bytes_at_window_start: u64,
}

fn play_request(host: &str, path: &str, n: usize) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\nHost: {host}\r\n\
         Pragma: no-cache,rate=1.000000,request-context=2\r\nPragma: xPlayStrm=1\r\n\
         Pragma: xClientGUID={{3300AD50-2C39-46c0-AE0A-{n:012X}}}\r\n\
         Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
         Connection: Close\r\n\r\n"
    )
    .into_bytes()
}

/// (utime + stime in clock ticks, RSS in KiB) of a process.
fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks, rss))
}

/// The PID of the process listening on `port` (via /proc/net/tcp inodes).
fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let p = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) && *state == "0A" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.to_string_lossy() == *i) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a stack struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    raise_nofile();
    let rest = args
        .url
        .strip_prefix("mmsh://")
        .or_else(|| args.url.strip_prefix("http://"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "URL must be mmsh:// or http://",
            )
        })?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let pid = args.pid.or_else(|| pid_listening_on(addr.port()));

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let ramp_every = Duration::from_secs_f64(1.0 / args.ramp.max(1.0));
    let mut opened = 0usize;
    let mut connect_errors = 0usize;
    let mut window: Option<(Instant, Option<(u64, u64)>)> = None;
    let mut all_open_at: Option<Instant> = None;
    let mut report_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // Open clients on the ramp schedule.
        while opened < args.clients && start + ramp_every.mul_f64(opened as f64) <= now {
            match TcpStream::connect(addr) {
                Ok(mut s) => {
                    poll.registry().register(
                        &mut s,
                        Token(opened),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    clients.insert(
                        opened,
                        Client {
                            stream: s,
                            stage: Stage::Request(0),
                            chunks: Chunks::default(),
                            bytes_at_window_start: 0,
                        },
                    );
                }
                Err(_) => connect_errors += 1,
            }
            opened += 1;
        }
        if opened == args.clients && all_open_at.is_none() {
            all_open_at = Some(now);
        }
        if let (Some(t), None) = (all_open_at, window) {
            if now >= t + Duration::from_secs_f64(args.warmup) {
                for c in clients.values_mut() {
                    c.bytes_at_window_start = c.chunks.media_bytes;
                }
                window = Some((now, pid.and_then(proc_usage)));
                report_at = Some(now + Duration::from_secs_f64(args.seconds));
            }
        }
        if report_at.is_some_and(|r| now >= r) {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        for ev in events.iter() {
            let Some(c) = clients.get_mut(&ev.token().0) else {
                continue;
            };
            if let Stage::Request(off) = c.stage {
                let req = play_request(host, path, ev.token().0);
                match c.stream.write(&req[off..]) {
                    Ok(n) if off + n == req.len() => c.stage = Stage::Head(Vec::new()),
                    Ok(n) => c.stage = Stage::Request(off + n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => c.stage = Stage::Closed,
                }
            }
            loop {
                if matches!(c.stage, Stage::Request(_) | Stage::Closed) {
                    break;
                }
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        c.stage = Stage::Closed;
                        break;
                    }
                    Ok(n) => match &mut c.stage {
                        Stage::Head(h) => {
                            h.extend_from_slice(&buf[..n]);
                            if let Some(i) = h.windows(4).position(|w| w == b"\r\n\r\n") {
                                let body = h.split_off(i + 4);
                                c.chunks.feed(&body);
                                c.stage = Stage::Body;
                            } else if h.len() > 65_536 {
                                c.stage = Stage::Closed;
                            }
                        }
                        Stage::Body => c.chunks.feed(&buf[..n]),
                        _ => {}
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.stage = Stage::Closed;
                        break;
                    }
                }
            }
        }
    }
    let (w_start, usage0) = window.ok_or_else(|| io::Error::other("no measurement window"))?;
    let elapsed = w_start.elapsed().as_secs_f64();
    let usage1 = pid.and_then(proc_usage);
    let mut rates: Vec<f64> = clients
        .values()
        .map(|c| (c.chunks.media_bytes - c.bytes_at_window_start) as f64 * 8.0 / elapsed)
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let expect = args.expect_bps.unwrap_or(median);
    let at_rate = rates
        .iter()
        .filter(|&&r| r >= expect * args.at_rate)
        .count();
    let closed = clients
        .values()
        .filter(|c| matches!(c.stage, Stage::Closed))
        .count();
    let bad = clients.values().filter(|c| c.chunks.bad).count();
    let ticks = 100.0; // USER_HZ on Linux
    let (cpu, rss) = match (usage0, usage1) {
        (Some((t0, _)), Some((t1, rss))) => {
            (Some((t1 - t0) as f64 / ticks / elapsed * 100.0), Some(rss))
        }
        _ => (None, None),
    };
    let n = clients.len().max(1) as f64;
    println!(
        "{label}: clients={} at_rate={} ({:.1}%) closed={} bad_framing={} connect_errors={} \
         expected={:.0}kbps median={:.0}kbps min={:.0}kbps",
        clients.len(),
        at_rate,
        at_rate as f64 * 100.0 / n,
        closed,
        bad,
        connect_errors,
        expect / 1000.0,
        median / 1000.0,
        rates.first().copied().unwrap_or(0.0) / 1000.0,
        label = args.label,
    );
    match (cpu, rss) {
        (Some(cpu), Some(rss)) => println!(
            "{label}: server pid={} cpu={cpu:.1}% of one core, {:.4}% per client; rss={rss} KiB, {:.1} KiB per client",
            pid.unwrap_or(0),
            cpu / n,
            rss as f64 / n,
            label = args.label,
        ),
        _ => println!("{}: server CPU/RSS unknown (no --pid and no process found listening)", args.label),
    }
    Ok(())
}
