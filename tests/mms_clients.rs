//! MMS end to end: `asfcast run` serves a unicast-only station on 127.0.0.1 and the real
//! clients play it — ffmpeg (`mmst://`), VLC (`mms://` over TCP and `mmsu://` with UDP data),
//! and a small C client on libmms (`tests/clients/libmms_read.c`). Each test asserts on what
//! the client decoded (frame counts from ffmpeg/ffprobe). Load and hostile-input tests use a
//! raw MMS client built from the crate's codec and check the daemon's log and health.
//!
//! No test asserts a wall-clock time: clients are bounded with `timeout`, and rates are
//! compared as ratios of what the test itself counted.

mod support;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::mms::codec::{cmd, frame, DataHead, SESSION_ID, TO_SERVER};
use support::{Daemon, TempDir};

/// demo.asf: 155 packets of 3200 bytes per ~10 s loop; on the wire each is 3208 bytes.
const WIRE_PACKET: usize = 3208;

fn start(dir: &Path, limits: &str) -> (Daemon, SocketAddr) {
    let addr = support::Listen::new()
        .with_mms()
        .write(dir, &format!("limits:\n{limits}"))
        .mms();
    std::fs::write(
        dir.join("demo.yaml"),
        format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\nunicast:\n  mms: true\n  max_clients: 40\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    // Let the station produce its first GOP, so joiners have a clean point.
    thread::sleep(Duration::from_millis(500));
    (d, addr)
}

/// Decoded frames per stream type of `ffmpeg -i URL -t SECS -f framemd5 -`.
fn ffmpeg_frames(url: &str, seconds: u32) -> (u64, u64) {
    let limit = Duration::from_secs(60);
    let mut cmd = support::bounded(limit, "ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i", url, "-t"])
        .arg(seconds.to_string())
        .args(["-f", "framemd5", "-"]);
    let out = support::run_bounded(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(idx) = line.split(',').next() {
            *counts.entry(idx.trim().to_string()).or_insert(0u64) += 1;
        }
    }
    (
        counts.get("0").copied().unwrap_or(0),
        counts.get("1").copied().unwrap_or(0),
    )
}

fn file_frames(p: &Path) -> (u64, u64) {
    let v = support::ffprobe_count_frames(p, "v:0").unwrap_or(0);
    let a = support::ffprobe_count_frames(p, "a:0").unwrap_or(0);
    (v, a)
}

fn assert_no_panic(d: &Daemon) {
    assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
}

// ---------------------------------------------------------------------------
// Real clients

#[test]
fn ffmpeg_decodes_video_and_audio_over_mmst() {
    let dir = TempDir::new("mms-ffmpeg");
    let (mut d, addr) = start(dir.path(), "  idle_timeout: 10s\n");
    let url = format!("mmst://{addr}/demo");
    let (video, audio) = ffmpeg_frames(&url, 5);
    eprintln!("ffmpeg mmst:// -t 5 decoded {video} video and {audio} audio frames");
    // 5 s of 25 fps video and 44.1 kHz WMA (2048 samples a frame).
    assert!(video >= 110, "video frames {video}");
    assert!(audio >= 90, "audio frames {audio}");
    assert!(d.wait_for_stderr("client closed the file", Duration::from_secs(5)));
    assert!(d.stderr().contains("mms playing"));
    assert!(d.is_running());
    assert_no_panic(&d);
}

/// Runs VLC as nobody on `url`, dumping the stream to `out`; VLC never ends a live stream by
/// itself, so it gets `--run-time` and is bounded with `timeout`.
fn vlc_dump(url: &str, out: &Path, home: &Path) -> String {
    let log = out.with_extension("log");
    let status = Command::new("timeout")
        .args(["-k", "3", "25", "setpriv", "--reuid=65534", "--regid=65534"])
        .arg("--clear-groups")
        .arg("env")
        .arg(format!("HOME={}", home.display()))
        .args(["cvlc", "-I", "dummy", "-vv", url, "--demux=dump"])
        .arg(format!("--demuxdump-file={}", out.display()))
        .args(["--run-time=7", "--play-and-exit", "vlc://quit"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .status()
        .expect("run cvlc");
    eprintln!("cvlc {url}: {status}");
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn vlc_dumps_a_decodable_stream_over_tcp_and_over_udp() {
    let dir = TempDir::new("mms-vlc");
    let (mut d, addr) = start(dir.path(), "  idle_timeout: 10s\n");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();

    // mms:// — VLC tries MMS over TCP first.
    let tcp = dir.path().join("tcp.asf");
    let log = vlc_dump(&format!("mms://{addr}/demo"), &tcp, &home);
    assert!(log.contains("connection(tcp)"), "{log}");
    let (v, a) = file_frames(&tcp);
    eprintln!("VLC mms:// (TCP) dump: {v} video, {a} audio frames");
    assert!(v >= 100 && a >= 80, "VLC over TCP: video {v}, audio {a}");

    // mmsu:// — Data packets by UDP to VLC's port 7000, commands on TCP.
    let udp = dir.path().join("udp.asf");
    let log = vlc_dump(&format!("mmsu://{addr}/demo"), &udp, &home);
    assert!(log.contains("connection(udp)"), "{log}");
    let (v, a) = file_frames(&udp);
    eprintln!("VLC mmsu:// (UDP data) dump: {v} video, {a} audio frames");
    assert!(v >= 100 && a >= 80, "VLC over UDP: video {v}, audio {a}");
    assert!(
        d.wait_for_stderr("\"udp\"", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );
    assert!(d.is_running());
    assert_no_panic(&d);
}

#[test]
fn libmms_client_reads_a_decodable_stream() {
    let dir = TempDir::new("mms-libmms");
    let (mut d, addr) = start(dir.path(), "  idle_timeout: 10s\n");
    let bin = dir.path().join("libmms_read");
    let src = support::repo_root().join("tests/clients/libmms_read.c");
    let status = Command::new("gcc")
        .arg("-Wall")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .arg("-lmms")
        .status()
        .expect("run gcc");
    assert!(status.success(), "gcc {}", src.display());
    let out = dir.path().join("libmms.asf");
    // Header + ~93 packets: about 6 s of the station.
    let limit = Duration::from_secs(60);
    let mut cmd = support::bounded(limit, &bin);
    cmd.arg(format!("mms://{addr}/demo"))
        .arg(&out)
        .arg("300000");
    let res = support::run_bounded(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"));
    let report = String::from_utf8_lossy(&res.stdout);
    assert!(
        report.contains("packet=3200 ") && report.contains("seekable=0"),
        "{report}"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 300_000);
    let (v, a) = file_frames(&out);
    eprintln!("libmms 300000 bytes: {v} video, {a} audio frames");
    assert!(v >= 90 && a >= 70, "libmms: video {v}, audio {a}");
    assert!(d.wait_for_stderr("mms session ended", Duration::from_secs(5)));
    assert_no_panic(&d);
}

// ---------------------------------------------------------------------------
// A raw MMS client (the handshake ffmpeg does), for load and slow-client tests

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

fn command(number: u16, fields: &[u8]) -> Vec<u8> {
    frame(TO_SERVER | u32::from(number), 0, fields)
}

enum Pdu {
    Command(u16),
    Data(DataHead, Vec<u8>),
}

fn read_pdu(s: &mut TcpStream) -> io::Result<Pdu> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head)?;
    if u32::from_le_bytes(head[4..8].try_into().unwrap()) == SESSION_ID {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut rest = vec![0u8; u32::from_le_bytes(len) as usize + 4];
        s.read_exact(&mut rest)?;
        return Ok(Pdu::Command(u16::from_le_bytes([rest[24], rest[25]])));
    }
    let h = DataHead::parse(&head).unwrap();
    let mut payload = vec![0u8; (h.packet_size as usize).saturating_sub(8)];
    s.read_exact(&mut payload)?;
    Ok(Pdu::Data(h, payload))
}

fn expect(s: &mut TcpStream, number: u16) {
    match read_pdu(s).unwrap() {
        Pdu::Command(n) => assert_eq!(n, number, "reply"),
        Pdu::Data(..) => panic!("data where command 0x{number:02x} was expected"),
    }
}

/// Handshake up to StartPlaying; returns the header blob.
fn raw_play(s: &mut TcpStream) -> Vec<u8> {
    let mut f = words(&[0, 0x0004_000B, 0x0003_001C]);
    f.extend(utf16z(
        "NSPlayer/7.0.0.1956; {00000000-0000-0000-0000-000000000000}; Host: x",
    ));
    s.write_all(&command(cmd::CONNECT, &f)).unwrap();
    expect(s, 0x01);
    let mut f = words(&[0, 0xFFFF_FFFF, 0, 0x0098_9680, 2]);
    f.extend(utf16z("\\\\192.168.0.129\\TCP\\1037"));
    s.write_all(&command(cmd::CONNECT_FUNNEL, &f)).unwrap();
    expect(s, 0x02);
    let mut f = words(&[1, 0xFFFF_FFFF, 0, 0]);
    f.extend(utf16z("demo"));
    s.write_all(&command(cmd::OPEN_FILE, &f)).unwrap();
    expect(s, 0x06);
    let mut f = words(&[1, 0, 0, 0x8000, 0xFFFF_FFFF, 0]);
    f.extend(0f64.to_le_bytes());
    f.extend(3600f64.to_le_bytes());
    f.extend(words(&[2, 0]));
    s.write_all(&command(cmd::READ_BLOCK, &f)).unwrap();
    expect(s, 0x11);
    let mut blob = Vec::new();
    loop {
        match read_pdu(s).unwrap() {
            Pdu::Data(h, p) => {
                assert_eq!(h.incarnation, 2);
                blob.extend(p);
                if h.af_flags != 0x04 {
                    break;
                }
            }
            Pdu::Command(n) => panic!("command 0x{n:02x} inside the header"),
        }
    }
    let mut f = words(&[2]);
    for (stream, thin) in [(1u16, 0u16), (2, 0)] {
        f.extend(0xFFFFu16.to_le_bytes());
        f.extend(stream.to_le_bytes());
        f.extend(thin.to_le_bytes());
    }
    s.write_all(&command(cmd::STREAM_SWITCH, &f)).unwrap();
    expect(s, 0x21);
    let mut f = words(&[1, 0x0001_FFFF]);
    f.extend(0f64.to_le_bytes());
    f.extend(words(&[0xFFFF_FFFF, 0xFFFF_FFFF]));
    f.extend([0xFF, 0xFF, 0xFF, 0x00]);
    f.extend(words(&[4]));
    s.write_all(&command(cmd::START_PLAYING, &f)).unwrap();
    expect(s, 0x05);
    blob
}

struct Received {
    /// Media packets (payloads), in order.
    packets: Vec<Vec<u8>>,
    /// (arrival, cumulative media bytes on the wire).
    arrivals: Vec<(Instant, usize)>,
    file: PathBuf,
}

fn raw_client(addr: SocketAddr, n: usize, file: PathBuf) -> Received {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let header = raw_play(&mut s);
    let mut packets = Vec::new();
    let mut arrivals = Vec::new();
    let mut total = 0;
    while packets.len() < n {
        match read_pdu(&mut s).unwrap() {
            Pdu::Data(h, p) => {
                assert_eq!(h.incarnation, 4);
                assert_eq!(p.len(), 3200);
                total += WIRE_PACKET;
                arrivals.push((Instant::now(), total));
                packets.push(p);
            }
            Pdu::Command(n) => assert_eq!(n, 0x1B, "only pings in the data phase"),
        }
    }
    let mut f = header;
    for p in &packets {
        f.extend(p);
    }
    std::fs::write(&file, f).unwrap();
    let _ = s.write_all(&command(cmd::CLOSE_FILE, &words(&[1, 1])));
    Received {
        packets,
        arrivals,
        file,
    }
}

/// Bytes per second between `from` and the last arrival.
fn rate_after(r: &Received, from: Instant) -> f64 {
    let start = r.arrivals.iter().find(|(t, _)| *t >= from).copied();
    let end = r.arrivals.last().copied();
    match (start, end) {
        (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
            (b1 - b0) as f64 / t1.duration_since(t0).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// Both lists are windows of one station sequence: where they overlap they are equal.
fn same_frames(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let overlap = |x: &[Vec<u8>], y: &[Vec<u8>]| -> Option<bool> {
        let at = x.iter().position(|p| *p == y[0])?;
        Some(x[at..].iter().zip(y).all(|(p, q)| p == q))
    };
    overlap(a, b).or_else(|| overlap(b, a)).unwrap_or(false)
}

#[test]
fn twenty_clients_get_the_same_frames_and_a_stalled_client_is_dropped() {
    let dir = TempDir::new("mms-load");
    let (mut d, addr) = start(
        dir.path(),
        "  idle_timeout: 5s\n  client_backlog_bytes: 64KiB\n  fast_start_rate: 4\n",
    );

    // A client that plays and then never reads again, with a small receive buffer.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut stalled: TcpStream = sock.into();
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    raw_play(&mut stalled);

    let started = Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let file = dir.path().join(format!("client{i}.asf"));
            thread::spawn(move || raw_client(addr, 130, file))
        })
        .collect();
    let got: Vec<Received> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    // Stream rate: 155 packets per 10 s loop of demo.asf. After the fast start (≤ 2 s of
    // backlog at 4x), every client receives at that rate although one client is stalled.
    let nominal = 155.0 * WIRE_PACKET as f64 / 10.0;
    let from = started + Duration::from_secs(3);
    for (i, r) in got.iter().enumerate() {
        let ratio = rate_after(r, from) / nominal;
        eprintln!("client {i}: delivered/nominal rate {ratio:.3}");
        assert!(
            (0.8..1.25).contains(&ratio),
            "client {i}: delivered/nominal = {ratio:.2}"
        );
    }
    for (i, r) in got.iter().enumerate().skip(1) {
        assert!(
            same_frames(&got[0].packets, &r.packets),
            "client {i} got other packets than client 0"
        );
    }
    for r in got.iter().step_by(5) {
        let (v, a) = file_frames(&r.file);
        eprintln!("{}: {v} video, {a} audio frames", r.file.display());
        assert!(
            v >= 150 && a >= 100,
            "{}: video {v}, audio {a}",
            r.file.display()
        );
    }

    // The stalled client is dropped with its reason logged, and its socket ends. Its backlog
    // only grows once the kernel's socket buffers are full: the server's send buffer
    // autotunes up to tcp_wmem's maximum (≈ 55 s of this stream measured on loopback), so
    // the drop comes that long plus idle_timeout after the client stopped reading.
    assert!(
        d.wait_for_stderr("client fell behind", Duration::from_secs(150)),
        "{}",
        d.stderr()
    );
    eprintln!(
        "stalled client dropped {:?} after the others started",
        started.elapsed()
    );
    for line in d.stderr().lines().filter(|l| l.contains("fell behind")) {
        eprintln!("{line}");
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = Vec::new();
    let end = stalled.read_to_end(&mut sink);
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
        "stalled socket closed by the server: {end:?}"
    );
    assert!(d.is_running());
    assert_no_panic(&d);
}

// ---------------------------------------------------------------------------
// Hostile input

/// Sends `bytes` on a fresh connection and waits for the server to close it.
fn refused(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn hostile_input_is_refused_cleanly_and_a_real_client_still_plays() {
    let dir = TempDir::new("mms-hostile");
    let (mut d, addr) = start(
        dir.path(),
        "  idle_timeout: 10s\n  handshake_timeout: 2s\n  request_max_bytes: 4096\n",
    );
    let mut connect = words(&[0, 0x0004_000B, 0x0003_001C]);
    connect.extend(utf16z("NSPlayer/7.0.0.1956; {x}; Host: x"));
    let good = command(cmd::CONNECT, &connect);

    let mut wrong_id = good.clone();
    wrong_id[4..8].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    let mut wrong_seal = good.clone();
    wrong_seal[12..16].copy_from_slice(b"XMS ");
    let mut huge = good.clone();
    huge[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let mut garbage = vec![0u8; 100_000];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let mut unknown = good.clone();
    unknown.extend(command(0x77, &[0; 16]));
    let mut out_of_order = good.clone();
    out_of_order.extend(command(cmd::START_PLAYING, &[0; 40]));

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", garbage),
        ("http", b"GET /demo HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("wrong sessionId", wrong_id),
        ("wrong seal", wrong_seal),
        ("huge length", huge),
        ("truncated", good[..30].to_vec()),
        ("unknown command", unknown),
        ("out of order", out_of_order),
        ("short StartPlaying", {
            let mut v = good.clone();
            v.extend(command(cmd::START_PLAYING, &[0; 8]));
            v
        }),
    ];
    for (what, bytes) in &cases {
        assert!(refused(addr, bytes), "{what}: not closed");
    }
    assert!(d.stderr().contains("refused malformed input"));
    assert!(d.stderr().contains("handshake not completed"));
    assert!(d.stderr().contains("unexpected command 0x77"));

    // Healthy afterwards: a real client still decodes the station.
    let (video, audio) = ffmpeg_frames(&format!("mmst://{addr}/demo"), 3);
    eprintln!("after hostile input, ffmpeg -t 3 decoded {video} video, {audio} audio frames");
    assert!(video >= 60 && audio >= 50, "video {video}, audio {audio}");
    assert!(d.is_running());
    assert_no_panic(&d);
}

// ---------------------------------------------------------------------------
// Wireshark's dissector

#[test]
fn tshark_dissects_a_captured_session() {
    let dir = TempDir::new("mms-tshark");
    let (d, addr) = start(dir.path(), "  idle_timeout: 10s\n");
    let pcap = dir.path().join("mms.pcapng");
    let mut cap = Command::new("tshark");
    cap.args(["-i", "lo", "-f"])
        .arg(format!("tcp port {}", addr.port()))
        .args(["-a", "duration:60", "-w"])
        .arg(&pcap);
    let mut tshark = Daemon::spawn("tshark", cap);
    if !tshark.wait_for_stderr("Capturing on", Duration::from_secs(10)) {
        eprintln!(
            "tshark_dissects_a_captured_session: skipped: cannot capture on lo: {}",
            tshark.stderr()
        );
        return;
    }
    thread::sleep(Duration::from_millis(500));
    let (video, _) = ffmpeg_frames(&format!("mmst://{addr}/demo"), 2);
    assert!(video > 0);
    thread::sleep(Duration::from_millis(500));
    tshark.stop();
    let limit = Duration::from_secs(60);
    let mut cmd = support::bounded(limit, "tshark");
    cmd.arg("-r")
        .arg(&pcap)
        .arg("-d")
        .arg(format!("tcp.port=={},msmms", addr.port()))
        .args(["-Y", "msmms"]);
    let out = support::run_bounded(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    // Each request and its reply, in order, as Wireshark's msmms dissector names them.
    let expected = [
        "--> Connect info",
        "<-- Server info",
        "--> Timing test data request",
        "<-- Timing test data response",
        "--> Transport info",
        "<-- Transport info ack",
        "--> Request server file (demo)",
        "<-- Media details",
        "--> Header request",
        "<-- Sending header response",
        "--> Media Stream MBR selector",
        "<-- Stream selection indicator",
        "--> Start sending from",
        "<-- Sending media file now",
    ];
    let mut at = 0;
    for e in expected {
        let found = text[at..]
            .find(e)
            .unwrap_or_else(|| panic!("{e:?} not in\n{text}"));
        at += found + e.len();
    }
    // Data packets are labelled ("Data: seq=…, len=03208") only when a TCP segment holds exactly
    // one: the dissector does not split the several packets one coalesced write carries, so
    // whether any is labelled depends on timing. Those that are must have the right length.
    for l in text.lines().filter(|l| l.contains("Data: seq=")) {
        assert!(l.contains("len=03208"), "{l}");
    }
    assert!(!text.contains("Malformed"), "{text}");
    drop(d);
}
