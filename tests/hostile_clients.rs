//! Hostile clients against the real daemon: pipelined requests from clients that never read
//! (memory must stay bounded), a flood that exhausts the descriptors (the listener must
//! recover by itself), and a flood past the per-IP limit (refusals are logged as a few
//! aggregate lines, not one line each). Runs inside the private namespace (the station has
//! multicast, which the .nsc describes).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

/// Writes server.yaml (HTTP only, on a free port, with `limits` lines added) and one station
/// with multicast; the HTTP address.
fn write_config(dir: &std::path::Path, limits: &str) -> SocketAddr {
    let listen = support::Listen::new().with_http().write(
        dir,
        &format!("limits:\n  handshake_timeout: 30s\n  idle_timeout: 60s\n{limits}"),
    );
    let mport = support::free_udp_port();
    std::fs::write(
        dir.join("web.yaml"),
        format!(
            "name: web\nsource:\n  type: playlist\n  files: [{}]\n\
             multicast:\n  group: 239.255.44.{}\n  port: {mport}\n  interface: lo\n  ttl: 0\n",
            support::demo_media().display(),
            mport % 200 + 1
        ),
    )
    .unwrap();
    listen.http()
}

/// GET /web.nsc on a fresh connection from `from` (None: any local address); the answer, or
/// what went wrong.
fn get_nsc(addr: SocketAddr, from: Option<&str>, timeout: Duration) -> Result<String, String> {
    let mut s = match from {
        None => TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?,
        Some(ip) => {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .map_err(|e| e.to_string())?;
            let local: SocketAddr = format!("{ip}:0").parse().map_err(|_| "bad ip")?;
            sock.bind(&local.into()).map_err(|e| e.to_string())?;
            sock.connect_timeout(&addr.into(), timeout)
                .map_err(|e| e.to_string())?;
            sock.into()
        }
    };
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /web.nsc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    if text.starts_with("HTTP/1.1 200") {
        Ok(text)
    } else {
        Err(format!("answer: {text:?}"))
    }
}

/// The daemon's resident set size in bytes (VmRSS in /proc/PID/status).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

const MIB: u64 = 1 << 20;

#[test]
fn pipelined_requests_from_clients_that_never_read_keep_memory_bounded() {
    if !support::require_private_netns() {
        return;
    }
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 8 << 20;
    const RSS_BOUND: u64 = 64 * MIB;
    let dir = TempDir::new("hostile-pipeline");
    let addr = write_config(dir.path(), "");
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    get_nsc(addr, None, Duration::from_secs(5)).expect("served before the flood");
    let before = rss_bytes(d.pid());

    let request = b"GET /web.nsc HTTP/1.1\r\nHost: x\r\n\r\n";
    let chunk: Arc<Vec<u8>> = Arc::new(request.repeat(64 * 1024 / request.len()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let chunk = chunk.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                // A daemon that stops reading leaves this writer blocked: give up then.
                s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut sent = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while sent < PER_CLIENT
                    && !stop.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                {
                    match s.write(&chunk) {
                        Ok(n) if n > 0 => sent += n,
                        _ => break,
                    }
                }
                (s, sent)
            })
        })
        .collect();
    // Watch the daemon while the clients write; stop them early once it is over the bound, so
    // a daemon that does not bound its queues does not eat the machine's memory.
    let mut peak = before;
    while !writers.iter().all(|w| w.is_finished()) {
        peak = peak.max(rss_bytes(d.pid()));
        if peak > RSS_BOUND {
            stop.store(true, Ordering::Relaxed);
        }
        thread::sleep(Duration::from_millis(50));
    }
    let results: Vec<(TcpStream, usize)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    // Let the daemon read whatever it still will, then measure again.
    thread::sleep(Duration::from_secs(1));
    peak = peak.max(rss_bytes(d.pid()));
    let sent: Vec<usize> = results.iter().map(|(_, n)| *n).collect();
    eprintln!(
        "pipelined: sent {sent:?} bytes; daemon RSS {} KiB before, peak {} KiB",
        before / 1024,
        peak / 1024
    );
    assert!(
        peak <= RSS_BOUND,
        "daemon RSS peaked at {} MiB (bound {} MiB) with {CLIENTS} clients pipelining requests \
         without reading (sent {sent:?})",
        peak / MIB,
        RSS_BOUND / MIB
    );
    // The flooders are still connected; a fresh client is served all the same.
    let nsc = get_nsc(addr, None, Duration::from_secs(5));
    assert!(nsc.is_ok(), "fresh client during the flood: {nsc:?}");
    drop(results);
    assert!(d.is_running());
    assert!(!d.stderr().contains("panicked"));
}

#[test]
fn listener_recovers_after_descriptor_exhaustion() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("hostile-emfile");
    // A short accept queue, so the flood fills it whatever the kernel's somaxconn: a listener
    // that is not drained then drops every new SYN and nothing ever wakes it.
    let addr = write_config(dir.path(), "  listen_backlog: 16\n");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=64:64")
        .arg("--")
        .arg(support::asfcast_bin())
        .args(["run", "--config", dir.path().to_str().unwrap()]);
    let mut d = Daemon::spawn("asfcast", cmd);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    get_nsc(addr, None, Duration::from_secs(5)).expect("served before the flood");

    // Idle connections past the descriptor limit (64) and past the accept queue; a
    // connect the kernel no longer answers (the queue is full) times out.
    let mut flood = Vec::new();
    let mut timeouts = 0;
    for _ in 0..400 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => {
                flood.push(s);
                timeouts = 0;
            }
            Err(_) => {
                timeouts += 1;
                if timeouts >= 5 {
                    break;
                }
            }
        }
    }
    eprintln!("descriptor flood: {} connections open", flood.len());
    assert!(
        flood.len() > 64,
        "the flood did not pass the descriptor limit"
    );
    thread::sleep(Duration::from_millis(500));
    drop(flood);
    thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    let mut last = Err("not tried".to_string());
    while Instant::now() < deadline {
        last = get_nsc(addr, None, Duration::from_secs(1));
        if last.is_ok() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        last.is_ok(),
        "no answer {:?} after the flood closed: {last:?}",
        started.elapsed()
    );
    eprintln!("answered {:?} after the flood closed", started.elapsed());
    let log = d.stderr();
    let failures = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(failures <= 3, "{failures} `accept failed` lines");
    assert!(d.is_running());
    assert!(!d.stderr().contains("panicked"));
}

#[test]
fn refusals_are_logged_as_a_few_aggregate_lines() {
    if !support::require_private_netns() {
        return;
    }
    const PER_IP: usize = 5;
    const FLOOD: usize = 500;
    let dir = TempDir::new("hostile-refusals");
    let addr = write_config(dir.path(), &format!("  max_clients_per_ip: {PER_IP}\n"));
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    // Let the daemon see the readiness probe's connection closed before the flood.
    thread::sleep(Duration::from_millis(300));

    let flood: Vec<TcpStream> = (0..FLOOD)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok())
        .collect();
    assert_eq!(flood.len(), FLOOD, "the kernel answers every connect");

    // A client from another address is served while the flood holds its slots.
    let nsc = get_nsc(addr, Some("127.0.0.2"), Duration::from_secs(5));
    assert!(nsc.is_ok(), "control client during the flood: {nsc:?}");

    // The aggregate lines come within one 10 s window (flushed by the housekeeping tick).
    d.wait_for_stderr("refused", Duration::from_secs(15));
    thread::sleep(Duration::from_millis(500));
    let log = d.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    eprintln!("refusal lines ({}):\n{}", lines.len(), lines.join("\n"));
    assert!(
        !lines.is_empty() && lines.len() <= 3,
        "{} refusal lines for {} refused connections; want a few aggregate lines",
        lines.len(),
        FLOOD - PER_IP
    );
    let counted: u64 = lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("refused ")? + "refused ".len()..];
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    for l in &lines {
        assert!(
            l.contains("from 127.0.0.1") && l.contains("per-IP limit"),
            "line names the source and the reason: {l}"
        );
    }
    let expected = (FLOOD - PER_IP) as u64;
    assert!(
        (expected - 5..=expected).contains(&counted),
        "the lines count {counted} refusals, want about {expected}"
    );
    drop(flood);
    assert!(d.is_running());
    assert!(!d.stderr().contains("panicked"));
}
