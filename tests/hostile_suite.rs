//! The hostile-client suite: one daemon per case with every listener on (HTTP, MMS, RTSP), a
//! hostile load or fault, and four checks each time: the daemon is alive, a control client
//! still plays (FFmpeg over MMSH decodes frames, or a raw MMSH client keeps the stream's rate),
//! the daemon's RSS stays under a stated bound, and the case's log line is there.
//!
//! Rates are compared as ratios of bytes to the stream's own rate; no wall-clock time is
//! asserted, only bounded waits. Runs inside `tests/netns-run` (unicast on 127.0.0.1/127.0.0.2
//! only; the stations have no multicast).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use support::raw::{self, CountingReader, RssWatch, MIB};
use support::{Daemon, TempDir};

/// RSS bound for every case: the daemon idles at a few MiB; 64 MiB leaves room for the
/// per-client queues the limits allow, and is far below what an unbounded queue reaches.
const RSS_BOUND: u64 = 64 * MIB;

struct Setup {
    dir: TempDir,
    daemon: Daemon,
    http: SocketAddr,
    mms: SocketAddr,
    rtsp: SocketAddr,
    /// The media file the stations play (a copy in the temp dir when asked for).
    media: PathBuf,
}

/// One station's YAML: `name`, playing `media`, with `unicast` extra lines (indented by 2).
fn station_yaml(name: &str, media: &Path, unicast: &str) -> String {
    format!(
        "name: {name}\nsource:\n  type: playlist\n  files: [{}]\nunicast:\n  mms: true\n{unicast}",
        media.display()
    )
}

/// Starts the daemon with HTTP, MMS and RTSP on free ports, `limits` lines under `limits:`
/// and station `demo` (plus `extra` stations as (file name, YAML)). With `copy_media`, the
/// demo media is copied into the temp dir first (the source-fault case edits it).
fn start(tag: &str, limits: &str, copy_media: bool, extra: &[(&str, String)]) -> Setup {
    let dir = TempDir::new(tag);
    let media = if copy_media {
        let m = dir.path().join("media.asf");
        std::fs::copy(support::demo_media(), &m).unwrap();
        m
    } else {
        support::demo_media()
    };
    let listen = support::Listen::three().write(
        dir.path(),
        &format!("limits:\n  max_clients_per_ip: 2000\n{limits}"),
    );
    std::fs::write(
        dir.path().join("demo.yaml"),
        station_yaml("demo", &media, ""),
    )
    .unwrap();
    for (file, yaml) in extra {
        std::fs::write(dir.path().join(file), yaml).unwrap();
    }
    let mut daemon = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    for a in listen.all() {
        daemon.wait_for_tcp(a, Duration::from_secs(10));
    }
    assert!(
        daemon.wait_for_stderr("station started", Duration::from_secs(10)),
        "{}",
        daemon.stderr()
    );
    // Let the station produce its first key frame, so joiners have a clean point, and the
    // readiness probes' connections be seen closed.
    thread::sleep(Duration::from_millis(700));
    Setup {
        dir,
        daemon,
        http: listen.http(),
        mms: listen.mms(),
        rtsp: listen.rtsp(),
        media,
    }
}

impl Setup {
    fn mmsh_url(&self, station: &str) -> String {
        format!("mmsh://{}/{station}", self.http)
    }

    fn rtsp_url(&self, station: &str) -> String {
        format!("rtsp://{}/{station}", self.rtsp)
    }

    /// The control client: FFmpeg decodes frames from 3 s of `demo` over MMSH.
    fn assert_control_plays(&mut self, when: &str) {
        let frames = raw::ffmpeg_frames(&self.mmsh_url("demo"), 3);
        eprintln!("control client {when}: {frames:?} frames");
        assert!(
            matches!(frames, Ok(n) if n > 50),
            "control client {when}: {frames:?}\n{}",
            self.daemon.stderr()
        );
    }

    /// Alive, no panic, RSS peak under the bound, `needles` in the log.
    fn assert_healthy(&mut self, case: &str, rss_peak: u64, needles: &[&str]) {
        eprintln!(
            "{case}: daemon RSS peak {} KiB (bound {} MiB)",
            rss_peak / 1024,
            RSS_BOUND / MIB
        );
        let log = self.daemon.stderr();
        assert!(self.daemon.is_running(), "{case}: daemon exited\n{log}");
        assert!(!log.contains("panicked"), "{case}: panic\n{log}");
        assert!(
            rss_peak <= RSS_BOUND,
            "{case}: RSS peaked at {} MiB, bound {} MiB",
            rss_peak / MIB,
            RSS_BOUND / MIB
        );
        for n in needles {
            assert!(log.contains(n), "{case}: no `{n}` in the log\n{log}");
        }
    }
}

fn log_count(d: &Daemon, needle: &str) -> usize {
    d.stderr().lines().filter(|l| l.contains(needle)).count()
}

/// True when the peer closed `s` (EOF or reset); reads and drops whatever is waiting.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

// ---------------------------------------------------------------------------
// Slowloris

#[test]
fn slowloris_on_every_listener_is_closed_at_the_handshake_timeout() {
    if !support::require_private_netns() {
        return;
    }
    const PER_LISTENER: usize = 40;
    let mut s = start("hs-slowloris", "  handshake_timeout: 2s\n", false, &[]);
    let watch = RssWatch::start(s.daemon.pid());
    let url = s.rtsp_url("demo");
    // What each slow client trickles: a request head (HTTP, RTSP) or a Connect command (MMS)
    // long enough never to complete at one byte per second before the timeout.
    let http_head = format!(
        "GET /demo HTTP/1.1\r\nHost: x\r\nX-Slow: {}",
        "a".repeat(100)
    );
    let rtsp_head = format!(
        "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Slow: {}",
        "a".repeat(100)
    );
    let mms_connect = raw::mms_commands("\\\\127.0.0.1\\TCP\\1", "demo")[0]
        .1
        .clone();
    let mms_connect = raw::mms_command(asfcast::mms::codec::cmd::CONNECT, &mms_connect);
    let mut slow: Vec<(&str, TcpStream, &[u8])> = Vec::new();
    for (proto, addr, bytes) in [
        ("http", s.http, http_head.as_bytes()),
        ("mms", s.mms, &mms_connect[..]),
        ("rtsp", s.rtsp, rtsp_head.as_bytes()),
    ] {
        for _ in 0..PER_LISTENER {
            slow.push((proto, TcpStream::connect(addr).unwrap(), bytes));
        }
    }
    // One byte per second on every open connection, until all are closed (bounded).
    let mut open: Vec<bool> = vec![true; slow.len()];
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while open.iter().any(|o| *o) && Instant::now() < deadline {
        for (i, (_, sock, bytes)) in slow.iter_mut().enumerate() {
            if !open[i] {
                continue;
            }
            if closed_by_peer(sock) {
                open[i] = false;
                continue;
            }
            if sent < bytes.len() {
                sock.set_nonblocking(false).unwrap();
                if sock.write_all(&bytes[sent..sent + 1]).is_err() {
                    open[i] = false;
                }
            }
        }
        sent += 1;
        thread::sleep(Duration::from_secs(1));
    }
    let still: Vec<&str> = slow
        .iter()
        .zip(&open)
        .filter(|(_, o)| **o)
        .map(|((p, _, _), _)| *p)
        .collect();
    eprintln!("slowloris: {sent} bytes trickled per connection; still open: {still:?}");
    assert!(
        still.is_empty(),
        "slow connections not closed: {still:?}\n{}",
        s.daemon.stderr()
    );
    assert!(
        sent < 30,
        "a slow client got further than the timeout allows"
    );
    // Each listener logged its own timeouts, one per connection.
    let http = log_count(&s.daemon, "request not complete within the timeout");
    let mms = log_count(&s.daemon, "handshake not completed within");
    let rtsp = log_count(&s.daemon, "rtsp session timed out");
    eprintln!("slowloris log lines: http {http}, mms {mms}, rtsp {rtsp}");
    assert!(
        http >= PER_LISTENER && mms >= PER_LISTENER && rtsp >= PER_LISTENER,
        "timeout lines http {http}, mms {mms}, rtsp {rtsp}\n{}",
        s.daemon.stderr()
    );
    s.assert_control_plays("after the slowloris");
    let peak = watch.finish();
    s.assert_healthy("slowloris", peak, &["handshake not completed within 2s"]);
}

// ---------------------------------------------------------------------------
// Floods past max_clients

/// Sends an MMSH Play for `station`; the status line of the answer.
fn mmsh_status(addr: SocketAddr, station: &str) -> String {
    let Ok(mut c) = TcpStream::connect(addr) else {
        return "connect failed".into();
    };
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if c.write_all(raw::mmsh_play_request(station).as_bytes())
        .is_err()
    {
        return "write failed".into();
    }
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn connection_floods_past_max_clients_are_refused_and_slots_come_back() {
    if !support::require_private_netns() {
        return;
    }
    const SERVER_MAX: usize = 30;
    const STATION_MAX: usize = 3;
    const FLOOD: usize = 300;
    let busy = support::demo_media();
    let mut s = start(
        "hs-flood",
        &format!("  max_clients: {SERVER_MAX}\n  handshake_timeout: 2s\n"),
        false,
        &[(
            "busy.yaml",
            station_yaml("busy", &busy, &format!("  max_clients: {STATION_MAX}\n")),
        )],
    );
    let watch = RssWatch::start(s.daemon.pid());

    // Station level: `busy` takes its three players and answers 503 to the rest.
    let players: Vec<CountingReader> = (0..STATION_MAX)
        .map(|_| CountingReader::mmsh(s.http, "busy"))
        .collect();
    thread::sleep(Duration::from_millis(500));
    let answers: Vec<String> = (0..40).map(|_| mmsh_status(s.http, "busy")).collect();
    let refused = answers.iter().filter(|a| a.contains(" 503 ")).count();
    eprintln!(
        "station flood: {refused} of {} answered 503 ({:?})",
        answers.len(),
        answers[0]
    );
    assert_eq!(refused, answers.len(), "{answers:?}");
    assert!(players.iter().all(|p| !p.ended() && p.bytes() > 0));

    // Server level: idle connects on every listener, far past max_clients.
    let addrs = [s.http, s.mms, s.rtsp];
    let flood: Vec<TcpStream> = (0..FLOOD)
        .filter_map(|i| TcpStream::connect(addrs[i % 3]).ok())
        .collect();
    assert_eq!(flood.len(), FLOOD, "the kernel answers every connect");
    // The refusals are counted in one aggregate line per window.
    assert!(
        s.daemon
            .wait_for_stderr("client limit", Duration::from_secs(15)),
        "{}",
        s.daemon.stderr()
    );
    // The flood's accepted connections reach the handshake timeout and free their slots:
    // the control client plays while the flood's sockets are still open.
    thread::sleep(Duration::from_secs(3));
    s.assert_control_plays("beside the flood");
    assert!(
        players.iter().all(|p| !p.ended()),
        "a station player was dropped by the flood"
    );
    drop(flood);
    let peak = watch.finish();
    s.assert_healthy(
        "max_clients flood",
        peak,
        &["station has its maximum of clients", "client limit"],
    );
}

// ---------------------------------------------------------------------------
// Clients that never read

#[test]
fn clients_that_never_read_are_dropped_while_a_reader_keeps_its_rate() {
    if !support::require_private_netns() {
        return;
    }
    const EACH: usize = 3;
    let mut s = start(
        "hs-nonreaders",
        "  idle_timeout: 5s\n  client_backlog_bytes: 64KiB\n",
        false,
        &[],
    );
    let watch = RssWatch::start(s.daemon.pid());
    let good = CountingReader::mmsh(s.http, "demo");
    // Past the good client's fast start; measure from here.
    thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    let b0 = good.bytes();
    let url = s.rtsp_url("demo");
    let mut bad = Vec::new();
    for _ in 0..EACH {
        bad.push(("mmsh", raw::mmsh_non_reader(s.http, "demo").unwrap()));
        bad.push(("mmst", raw::mms_non_reader(s.mms, "demo").unwrap()));
        let mut r = TcpStream::connect(s.rtsp).unwrap();
        r.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw::rtsp_play(&mut r, &url, |i| {
            format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * i, 2 * i + 1)
        })
        .unwrap();
        let r: socket2::Socket = r.into();
        let _ = r.set_recv_buffer_size(2048);
        bad.push(("rtsp-tcp", r.into()));
    }
    // Every non-reader is dropped with a stalled / fell-behind line.
    let drop_lines = || {
        let log = s.daemon.stderr();
        let mmsh = log
            .lines()
            .filter(|l| l.contains("client stalled") && !l.contains("rtsp"))
            .count();
        // An RTSP client that reads nothing sends no keep-alive either: the session timeout
        // (idle_timeout, the same span as the stall timeout) may close it first.
        let rtsp = log
            .lines()
            .filter(|l| l.contains("rtsp client stalled") || l.contains("rtsp session timed out"))
            .count();
        let mms = log
            .lines()
            .filter(|l| {
                l.contains("mms client dropped")
                    && (l.contains("fell behind") || l.contains("stall"))
            })
            .count();
        (mmsh, mms, rtsp)
    };
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut counts = drop_lines();
    while (counts.0 < EACH || counts.1 < EACH || counts.2 < EACH) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        counts = drop_lines();
    }
    thread::sleep(Duration::from_secs(1));
    let elapsed = t0.elapsed().as_secs_f64();
    let bytes = good.bytes() - b0;
    let ratio = bytes as f64 / (raw::stream_rate(&s.media, 12) * elapsed);
    eprintln!(
        "non-readers dropped (mmsh, mmst, rtsp-tcp): {counts:?}; the reader got {bytes} bytes, \
         {ratio:.2} of the stream rate"
    );
    assert!(
        counts.0 >= EACH && counts.1 >= EACH && counts.2 >= EACH,
        "drops (mmsh, mmst, rtsp-tcp) {counts:?}\n{}",
        s.daemon.stderr()
    );
    assert!(!good.ended(), "the reading client was dropped");
    assert!(ratio > 0.8 && ratio < 1.3, "reader's rate ratio {ratio:.2}");
    // Their connections are really closed: the daemon holds none of them any more. (Reading
    // them to the end is no proof either way: the kernel's persist timer may hold the last
    // queued bytes of an orphaned socket for a long time after a zero window.)
    let peers = raw::tcp_peers(s.daemon.pid());
    for (proto, b) in &bad {
        let local = b.local_addr().unwrap();
        assert!(
            !peers.contains(&local),
            "{proto} non-reader {local} still held by the daemon"
        );
    }
    drop(bad);
    drop(good);
    let peak = watch.finish();
    s.assert_healthy("non-readers", peak, &["stalled"]);
}

// ---------------------------------------------------------------------------
// Malformed input

/// Sends `bytes` on a fresh connection to `addr` (then half-closes); what came back before
/// the server closed, or None when it kept the connection open past 10 s.
/// With `half_close`, the client shuts its sending side after the bytes (RTSP connections are
/// persistent: an answered request does not close them).
fn answer(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Option<String> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(bytes);
    if half_close {
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    match c.read_to_end(&mut out) {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Some(String::from_utf8_lossy(&out).into_owned())
        }
        Err(_) => None,
    }
}

#[test]
fn malformed_input_per_protocol_is_refused_and_closed() {
    if !support::require_private_netns() {
        return;
    }
    use asfcast::mms::codec::cmd;
    let mut s = start("hs-malformed", "  handshake_timeout: 5s\n", false, &[]);
    let watch = RssWatch::start(s.daemon.pid());
    let big = "a".repeat(64 << 10);
    let url = s.rtsp_url("demo");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    // HTTP: oversized head, bad lengths, garbage after a valid request.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "http oversized head",
            format!("GET /demo HTTP/1.1\r\nX: {big}\r\n\r\n").into_bytes(),
            "HTTP/1.1 4",
        ),
        (
            "http negative length",
            b"POST /demo HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(),
            "HTTP/1.1 4",
        ),
        (
            "http huge length",
            b"POST /demo HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
            "HTTP/1.1 4",
        ),
        (
            "http two lengths",
            b"POST /demo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
            "HTTP/1.1 4",
        ),
        ("http garbage", garbage.clone(), "HTTP/1.1 4"),
        (
            "http garbage after a valid request",
            {
                let mut v = b"GET /demo.nsc HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
                v.extend(&garbage);
                v
            },
            "HTTP/1.1 ",
        ),
    ];
    for (what, bytes, want) in &cases {
        let a = answer(s.http, bytes, false);
        eprintln!(
            "{what}: {:?}",
            a.as_deref().map(|t| t.lines().next().unwrap_or(""))
        );
        let a = a.unwrap_or_else(|| panic!("{what}: connection left open"));
        assert!(a.starts_with(want), "{what}: {a:?}");
        if what.contains("after a valid request") {
            // The valid request is answered, then the garbage gets a 400 and the close.
            assert_eq!(a.matches("HTTP/1.1 ").count(), 2, "{what}: {a:?}");
            assert!(a.contains("HTTP/1.1 400 "), "{what}: {a:?}");
        }
    }

    // RTSP: no CSeq, oversized head, bad Content-Length, garbage after a valid request. (A
    // huge Content-Length is waited for like any body, then closed silently at the client's
    // EOF: no answer is expected, only the close.)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "rtsp without CSeq",
            format!("OPTIONS {url} RTSP/1.0\r\n\r\n").into_bytes(),
            "RTSP/1.0 400",
        ),
        (
            "rtsp oversized head",
            format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nX: {big}\r\n\r\n").into_bytes(),
            "RTSP/1.0 413",
        ),
        (
            "rtsp huge length",
            format!(
                "SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n"
            )
            .into_bytes(),
            "",
        ),
        (
            "rtsp garbage after a valid request",
            {
                let mut v = format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 7\r\n\r\n").into_bytes();
                v.extend(&garbage);
                v
            },
            "RTSP/1.0 200",
        ),
    ];
    for (what, bytes, want) in &cases {
        let a = answer(s.rtsp, bytes, true);
        eprintln!(
            "{what}: {:?}",
            a.as_deref().map(|t| t.lines().next().unwrap_or(""))
        );
        let a = a.unwrap_or_else(|| panic!("{what}: connection left open"));
        assert!(a.starts_with(want), "{what}: {a:?}");
    }

    // MMS: commands out of order, a bad length, an oversized command, garbage.
    let c = raw::mms_commands("\\\\127.0.0.1\\TCP\\1", "demo");
    let frame = |i: usize| raw::mms_command(c[i].0, &c[i].1);
    let mut bad_len = frame(0);
    bad_len[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let oversized = raw::mms_command(cmd::CONNECT, big.as_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("mms OpenFile first", frame(2)),
        ("mms StartPlaying first", frame(5)),
        (
            "mms ReadBlock before OpenFile",
            [frame(0), frame(1), frame(3)].concat(),
        ),
        ("mms bad length", bad_len),
        ("mms oversized command", oversized),
        ("mms garbage", garbage.clone()),
    ];
    for (what, bytes) in &cases {
        let a = answer(s.mms, bytes, false);
        eprintln!(
            "{what}: {} bytes back, closed: {}",
            a.as_ref().map_or(0, |t| t.len()),
            a.is_some()
        );
        assert!(a.is_some(), "{what}: connection left open");
    }
    let refusals = log_count(&s.daemon, "mms: refused malformed");
    let order = log_count(&s.daemon, "unexpected ");
    eprintln!("mms lines: {refusals} malformed, {order} out of order");
    assert!(refusals >= 3 && order >= 3, "{}", s.daemon.stderr());

    s.assert_control_plays("after malformed input");
    let peak = watch.finish();
    s.assert_healthy("malformed input", peak, &["mms: refused malformed"]);
}

// ---------------------------------------------------------------------------
// UDP destinations: third parties and the daemon's own ports

/// A UDP socket on `ip:port` that counts what arrives.
fn udp_probe(ip: &str, port: u16) -> Option<UdpSocket> {
    let s = UdpSocket::bind(format!("{ip}:{port}")).ok()?;
    s.set_nonblocking(true).unwrap();
    Some(s)
}

fn drain(s: &UdpSocket) -> usize {
    let mut buf = [0u8; 65536];
    let mut n = 0;
    while s.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// An even port P with P and P+1 free on both 127.0.0.1 and 127.0.0.2; the four probes
/// (127.0.0.1:P, :P+1, 127.0.0.2:P, :P+1).
fn probe_pairs() -> (u16, [UdpSocket; 4]) {
    for _ in 0..200 {
        let p = support::free_udp_port() & !1;
        if let (Some(a), Some(b), Some(c), Some(d)) = (
            udp_probe("127.0.0.1", p),
            udp_probe("127.0.0.1", p + 1),
            udp_probe("127.0.0.2", p),
            udp_probe("127.0.0.2", p + 1),
        ) {
            return (p, [a, b, c, d]);
        }
    }
    panic!("no free port pair on 127.0.0.1 and 127.0.0.2");
}

/// The daemon's UDP sockets that received something (someone sent to them).
fn daemon_udp_hit(d: &Daemon) -> Vec<raw::UdpSocketInfo> {
    raw::udp_sockets(d.pid())
        .into_iter()
        .filter(|s| s.rx_queue > 0 || s.drops > 0)
        .collect()
}

#[test]
fn rtsp_setup_cannot_aim_rtp_at_another_address() {
    rtsp_reflection(false);
}

#[test]

fn rtsp_setup_cannot_aim_rtp_at_the_daemon() {
    rtsp_reflection(true);
}

fn rtsp_reflection(own_ports: bool) {
    if !support::require_private_netns() {
        return;
    }
    let mut s = start("hs-rtsp-reflect", "", false, &[]);
    let watch = RssWatch::start(s.daemon.pid());
    let own = raw::udp_sockets(s.daemon.pid());
    eprintln!("daemon UDP sockets: {own:?}");
    assert!(own.len() >= 3, "MMS data, RTP and RTCP sockets: {own:?}");
    let url = s.rtsp_url("demo");

    // destination= names 127.0.0.2: media goes to the peer's address (127.0.0.1) only.
    let (p, probes) = probe_pairs();
    let mut third = TcpStream::connect(s.rtsp).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    raw::rtsp_play(&mut third, &url, |_| {
        format!(
            "RTP/AVP;unicast;client_port={p}-{};destination=127.0.0.2",
            p + 1
        )
    })
    .unwrap();

    // client_port aimed at each of the daemon's own UDP ports and its listeners' ports.
    let mut targets: Vec<u16> = own.iter().map(|u| u.local.port()).collect();
    targets.extend([s.http.port(), s.mms.port(), s.rtsp.port()]);
    if !own_ports {
        targets.clear();
    }
    let mut own_sessions = Vec::new();
    for port in &targets {
        let mut c = TcpStream::connect(s.rtsp).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = raw::rtsp_play(&mut c, &url, |_| {
            format!("RTP/AVP;unicast;client_port={port}-{}", port + 1)
        });
        eprintln!(
            "SETUP client_port={port}: {:?}",
            r.as_ref().map(|_| "played").map_err(|e| e
                .to_string()
                .lines()
                .next()
                .map(str::to_owned))
        );
        own_sessions.push(c);
    }
    thread::sleep(Duration::from_secs(3));
    let got: Vec<usize> = probes.iter().map(drain).collect();
    let hit = daemon_udp_hit(&s.daemon);
    eprintln!(
        "datagrams at 127.0.0.1:{p}/+1 {:?}, at 127.0.0.2:{p}/+1 {:?}; daemon sockets hit: {hit:?}",
        &got[..2],
        &got[2..]
    );
    assert!(
        got[0] > 0,
        "no RTP at the peer's own address: the check proves nothing"
    );
    assert_eq!(
        got[2] + got[3],
        0,
        "RTP/RTCP sent to the destination= address"
    );
    assert!(
        hit.is_empty(),
        "the daemon sent to its own UDP sockets: {hit:?}"
    );
    s.assert_control_plays("beside the reflection attempts");
    drop(own_sessions);
    let peak = watch.finish();
    s.assert_healthy("rtsp destinations", peak, &["rtsp play"]);
}

#[test]

fn mms_udp_funnel_cannot_aim_data_at_the_daemon_or_port_zero() {
    if !support::require_private_netns() {
        return;
    }
    let mut s = start("hs-mmsu-reflect", "", false, &[]);
    let watch = RssWatch::start(s.daemon.pid());
    let own = raw::udp_sockets(s.daemon.pid());
    let mut targets: Vec<u16> = own.iter().map(|u| u.local.port()).collect();
    targets.extend([s.http.port(), s.mms.port(), s.rtsp.port(), 0]);
    // A positive control: a UDP funnel to a port of ours receives data.
    let mine = udp_probe("127.0.0.1", 0).unwrap();
    let mine_port = mine.local_addr().unwrap().port();
    let mut conns = Vec::new();
    for port in targets.iter().copied().chain([mine_port]) {
        let mut c = TcpStream::connect(s.mms).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // The whole handshake at once (over UDP the header travels as datagrams), then
        // whatever replies come.
        let all: Vec<u8> = raw::mms_commands(&format!("\\\\127.0.0.1\\UDP\\{port}"), "demo")
            .into_iter()
            .flat_map(|(number, fields)| raw::mms_command(number, &fields))
            .collect();
        let _ = c.write_all(&all);
        // Bounded: with port 0 the data comes over TCP and never stops.
        let mut replies = Vec::new();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match raw::mms_read_pdu(&mut c) {
                Ok(raw::Pdu::Command(n)) => replies.push(n),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        eprintln!("UDP funnel to port {port}: replies {replies:02x?}");
        conns.push(c);
    }
    thread::sleep(Duration::from_secs(3));
    let hit = daemon_udp_hit(&s.daemon);
    let arrived = drain(&mine);
    eprintln!("datagrams at our own funnel port: {arrived}; daemon sockets hit: {hit:?}");
    assert!(
        arrived > 0,
        "MMSU delivers nothing at all: the check proves nothing"
    );
    assert!(
        hit.is_empty(),
        "the daemon sent MMS data to its own UDP sockets: {hit:?}"
    );
    s.assert_control_plays("beside the UDP funnels");
    drop(conns);
    let peak = watch.finish();
    s.assert_healthy("mms udp funnels", peak, &["mms playing"]);
}

// ---------------------------------------------------------------------------
// Source faults

/// Waits until `reader` got more bytes than `since` (it is still being fed); whether it did.
fn grows(reader: &CountingReader, limit: Duration) -> bool {
    let b0 = reader.bytes();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if reader.bytes() > b0 {
            return true;
        }
        if reader.ended() {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The control client, retried while the station recovers (a put-back file plays again
/// from the next playlist turn): frames decoded at the first success.
fn control_eventually(s: &mut Setup, limit: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + limit;
    loop {
        let r = raw::ffmpeg_frames(&s.mmsh_url("demo"), 3);
        match r {
            Ok(n) if n > 50 => return Ok(n),
            _ if Instant::now() >= deadline => return r,
            _ => thread::sleep(Duration::from_secs(1)),
        }
    }
}

#[test]
fn source_faults_while_playing_keep_the_station_up() {
    if !support::require_private_netns() {
        return;
    }
    let mut s = start("hs-source", "", true, &[]);
    let watch = RssWatch::start(s.daemon.pid());
    let media = s.media.clone();
    let original = std::fs::read(&media).unwrap();
    let listener = CountingReader::mmsh(s.http, "demo");
    assert!(grows(&listener, Duration::from_secs(5)), "no stream at all");

    // Truncated to a third while it plays: the cut shows at the next read or turn.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&media)
        .unwrap()
        .set_len(original.len() as u64 / 3)
        .unwrap();
    thread::sleep(Duration::from_secs(12));
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
    eprintln!(
        "truncated: listener ended {}, {} bytes",
        listener.ended(),
        listener.bytes()
    );

    // Replaced by garbage in place.
    let garbage: Vec<u8> = (0..original.len() as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&media, &garbage).unwrap();
    thread::sleep(Duration::from_secs(12));
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());

    // Deleted.
    std::fs::remove_file(&media).unwrap();
    thread::sleep(Duration::from_secs(6));
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
    let log = s.daemon.stderr();
    let lost = log
        .lines()
        .filter(|l| l.contains("source lost") || l.contains("not readable"))
        .count();
    eprintln!(
        "faults: {lost} source-lost lines; listener ended {} ({} bytes)",
        listener.ended(),
        listener.bytes()
    );
    // The listener got a clean end or is still connected (keep-alives while silent).
    if listener.ended() {
        let tail = listener.finish();
        assert!(
            tail.windows(2).any(|w| w == b"$E") || tail.is_empty(),
            "ended without $E"
        );
    } else {
        drop(listener);
    }

    // Put back: a fresh client decodes frames again.
    std::fs::write(&media, &original).unwrap();
    let frames = control_eventually(&mut s, Duration::from_secs(30));
    eprintln!("after the file came back: {frames:?} frames");
    assert!(
        matches!(frames, Ok(n) if n > 50),
        "{frames:?}\n{}",
        s.daemon.stderr()
    );
    let peak = watch.finish();
    s.assert_healthy(
        "source faults",
        peak,
        &["source lost; the station stays up"],
    );
}

// ---------------------------------------------------------------------------
// Reload faults

#[test]
fn reload_faults_keep_the_old_config_and_end_removed_stations_cleanly() {
    if !support::require_private_netns() {
        return;
    }
    let other = station_yaml("other", &support::demo_media(), "");
    let mut s = start("hs-reload", "", false, &[("other.yaml", other)]);
    let watch = RssWatch::start(s.daemon.pid());
    let demo_listener = CountingReader::mmsh(s.http, "demo");
    let other_listener = CountingReader::mmsh(s.http, "other");
    assert!(grows(&demo_listener, Duration::from_secs(5)));
    assert!(grows(&other_listener, Duration::from_secs(5)));

    // A broken YAML: refused, the old config runs on, the clients continue.
    let demo_yaml = s.dir.path().join("demo.yaml");
    let good = std::fs::read_to_string(&demo_yaml).unwrap();
    std::fs::write(&demo_yaml, "name: demo\nsource: [unclosed\n").unwrap();
    s.daemon.signal("HUP").unwrap();
    assert!(
        s.daemon
            .wait_for_stderr("reload refused", Duration::from_secs(10)),
        "{}",
        s.daemon.stderr()
    );
    assert!(
        grows(&demo_listener, Duration::from_secs(5)),
        "demo stopped after a broken reload"
    );
    assert!(
        grows(&other_listener, Duration::from_secs(5)),
        "other stopped after a broken reload"
    );
    std::fs::write(&demo_yaml, good).unwrap();

    // A station removed: its client gets the clean end ($E), the other plays on.
    std::fs::remove_file(s.dir.path().join("other.yaml")).unwrap();
    s.daemon.signal("HUP").unwrap();
    assert!(
        raw::wait_ended(&other_listener, Duration::from_secs(15)),
        "the removed station's client was not ended\n{}",
        s.daemon.stderr()
    );
    let tail = other_listener.finish();
    assert!(
        tail.windows(2).any(|w| w == b"$E"),
        "the removed station's stream ended without $E"
    );
    assert!(grows(&demo_listener, Duration::from_secs(5)));

    // Quick successive SIGHUPs.
    let reloads_before = log_count(&s.daemon, "reload");
    for _ in 0..20 {
        s.daemon.signal("HUP").unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_secs(2));
    assert!(
        grows(&demo_listener, Duration::from_secs(5)),
        "demo stopped after a SIGHUP burst"
    );
    assert!(!demo_listener.ended());
    let reloads = log_count(&s.daemon, "reload") - reloads_before;
    eprintln!("SIGHUP burst: {reloads} reload lines");
    s.assert_control_plays("after the reload faults");
    drop(demo_listener);
    let peak = watch.finish();
    s.assert_healthy(
        "reload faults",
        peak,
        &["reload refused", "station stopped by reload"],
    );
}

// ---------------------------------------------------------------------------
// SIGTERM under load

#[test]
fn sigterm_under_load_exits_zero_and_ends_streams_cleanly() {
    if !support::require_private_netns() {
        return;
    }
    const EACH: usize = 100;
    let mut s = start("hs-sigterm", "", false, &[]);
    let watch = RssWatch::start(s.daemon.pid());
    let url = s.rtsp_url("demo");
    let mut load: Vec<TcpStream> = Vec::new();
    for i in 0..EACH {
        // MMSH players and MMS players that do not read, RTSP connections mid-handshake.
        load.push(raw::mmsh_non_reader(s.http, "demo").unwrap());
        load.push(raw::mms_non_reader(s.mms, "demo").unwrap());
        let mut r = TcpStream::connect(s.rtsp).unwrap();
        r.write_all(format!("OPTIONS {url} RTSP/1.0\r\nCSeq: {i}\r\n\r\n").as_bytes())
            .unwrap();
        load.push(r);
    }
    let listener = CountingReader::mmsh(s.http, "demo");
    assert!(grows(&listener, Duration::from_secs(5)));
    let rss = watch.finish();
    eprintln!(
        "{} raw clients connected; RSS {} KiB",
        load.len(),
        rss / 1024
    );
    assert!(s.daemon.is_running());
    assert!(rss <= RSS_BOUND, "RSS {} MiB", rss / MIB);

    s.daemon.signal("TERM").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = s.daemon.try_status() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let log = s.daemon.stderr();
    assert!(status.is_some(), "not stopped 20 s after SIGTERM\n{log}");
    assert_eq!(status.unwrap().code(), Some(0), "{log}");
    assert!(log.contains("stopping"), "{log}");
    assert!(raw::wait_ended(&listener, Duration::from_secs(5)));
    let tail = listener.finish();
    assert!(
        tail.windows(2).any(|w| w == b"$E"),
        "the reader's stream ended without $E"
    );
    eprintln!("SIGTERM under load: exit {status:?}, the reader got $E");
    drop(load);
}
