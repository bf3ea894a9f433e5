//! Live stations fed over the network, end to end with real peers (issue 10): `source.type:
//! pull` from VLC's MMSH output, from FFmpeg's `-listen 1` server and from another asfcast
//! station; `source.type: multicast` from another station's MSB multicast; origin → edge
//! chains whose last edge FFmpeg decodes, with the header byte-identical to the origin's; an
//! upstream restart that a connected FFmpeg player rides through; and bad upstreams (HTML, 404,
//! an endless head, an endless header, silence) that cost a log line each and nothing else.
//!
//! Several daemons run side by side, each on its own ports on 127.0.0.1; the multicast chain
//! runs only inside tests/netns-run (TTL 0, interface lo).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::http::mmsh::{ChunkReader, ChunkType};
use support::{bounded, Daemon, TempDir};

/// One asfcast daemon with its own ports.
struct Box_ {
    daemon: Daemon,
    http: SocketAddr,
    rtsp: Option<SocketAddr>,
    dir: PathBuf,
}

/// Starts a daemon in `dir/name` with an HTTP listener (and RTSP when `rtsp`), serving the
/// given station files (name, YAML).
fn start_box(dir: &Path, name: &str, rtsp: bool, stations: &[(&str, String)]) -> Box_ {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", support::free_tcp_port())
        .parse()
        .unwrap();
    let rtsp_addr: Option<SocketAddr> = rtsp.then(|| {
        format!("127.0.0.1:{}", support::free_tcp_port())
            .parse()
            .unwrap()
    });
    let rtsp_line = rtsp_addr.map_or("false".to_string(), |a| a.to_string());
    std::fs::write(
        d.join("server.yaml"),
        format!(
            "listen:\n  http: {http}\n  mms: false\n  rtsp: {rtsp_line}\nannounce_dir: {}\n",
            d.join("announce").display()
        ),
    )
    .unwrap();
    for (station, yaml) in stations {
        std::fs::write(d.join(format!("{station}.yaml")), yaml).unwrap();
    }
    let mut daemon = Daemon::asfcast(["run", "--config", d.to_str().unwrap()]);
    daemon.wait_for_tcp(http, Duration::from_secs(10));
    Box_ {
        daemon,
        http,
        rtsp: rtsp_addr,
        dir: d,
    }
}

fn playlist(name: &str) -> String {
    format!(
        "name: {name}\nsource:\n  type: playlist\n  files: [{}]\n",
        support::demo_media().display()
    )
}

fn pull(name: &str, url: &str, extra: &str) -> String {
    format!("name: {name}\nsource:\n  type: pull\n  url: {url}\n{extra}")
}

/// (video, audio) frames FFmpeg decodes from `url` in `secs` seconds of stream, and whether
/// every stream's timestamps only went forward.
fn ffmpeg_frames(url: &str, secs: u32) -> (usize, usize, bool) {
    let mut cmd = bounded(Duration::from_secs(u64::from(secs) + 40), "ffmpeg");
    cmd.args(["-nostdin", "-v", "error"]);
    if url.starts_with("rtsp") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    cmd.args([
        "-i",
        url,
        "-t",
        &secs.to_string(),
        "-map",
        "0",
        "-f",
        "framemd5",
        "-",
    ]);
    let out = support::run_bounded(&mut cmd, Duration::from_secs(u64::from(secs) + 40))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut last: [Option<i64>; 2] = [None, None];
    let (mut counts, mut forward) = ([0usize; 2], true);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(idx), Some(dts)) = (
            f.first().and_then(|s| s.parse::<usize>().ok()),
            f.get(1).and_then(|s| s.parse::<i64>().ok()),
        ) else {
            continue;
        };
        if idx < 2 {
            counts[idx] += 1;
            if last[idx].is_some_and(|l| dts < l) {
                forward = false;
            }
            last[idx] = Some(dts);
        }
    }
    (counts[0], counts[1], forward)
}

/// FFmpeg decodes 5 s of `station` from box `b` over MMSH and over RTSP: at least `min`
/// (video, audio) frames each time (25 fps video and ~21.5 audio frames/s in the demo), with
/// timestamps that only go forward.
fn assert_decodes(b: &Box_, station: &str, label: &str, min: (usize, usize)) {
    for scheme in ["mmsh", "rtsp"] {
        let addr = match scheme {
            "rtsp" => b
                .rtsp
                .unwrap_or_else(|| panic!("{label}: no RTSP listener")),
            _ => b.http,
        };
        let (video, audio, forward) = ffmpeg_frames(&format!("{scheme}://{addr}/{station}"), 5);
        eprintln!("{label} → FFmpeg {scheme}: video={video} audio={audio}");
        assert!(video >= min.0, "{label} {scheme}: video frames {video}");
        assert!(audio >= min.1, "{label} {scheme}: audio frames {audio}");
        assert!(forward, "{label} {scheme}: timestamps went back");
    }
}

/// The header a station's MMSH Describe answers with (the `$H` payloads joined).
fn describe_header(http: SocketAddr, station: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /{station} HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
         Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
         Pragma: xClientGUID={{c77e7400-738a-11d2-9add-0020af0a3278}}\r\nConnection: Close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let Some(i) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!(
            "no HTTP answer from {station}: {:?}",
            String::from_utf8_lossy(&all)
        );
    };
    assert!(
        all.starts_with(b"HTTP/1.1 200") || all.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&all[..i])
    );
    let mut r = ChunkReader::new();
    r.push(&all[i + 4..]);
    let mut header = Vec::new();
    while let Ok(Some(c)) = r.next_chunk() {
        if c.kind == ChunkType::Header {
            header.extend_from_slice(&c.payload);
        }
    }
    header
}

/// Waits until `daemon`'s log holds `needle` at least `n` times.
fn wait_count(daemon: &mut Daemon, needle: &str, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if daemon.stderr().matches(needle).count() >= n {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    daemon.stderr().matches(needle).count() >= n
}

/// The daemon's pull station is streaming from its upstream within 20 s (`name` for the message).
fn assert_pulling(d: &mut Daemon, name: &str) {
    assert!(
        d.wait_for_stderr("pull stream started", Duration::from_secs(20)),
        "{name}: {}",
        d.stderr()
    );
}

fn assert_no_panic(d: &Daemon) {
    let e = d.stderr();
    assert!(!e.contains("panicked"), "{e}");
}

/// A copy of the demo media that VLC (running as nobody) may read.
/// The demo media played twice in one 20 s file (so that a player's 10 s of decoding does not
/// straddle one of VLC's loops), readable by VLC running as nobody.
fn world_readable_media(dir: &Path) -> PathBuf {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let f = media.join("demo-twice.asf");
    let mut cmd = bounded(Duration::from_secs(60), "ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-stream_loop", "1", "-i"])
        .arg(support::demo_media())
        .args(["-c", "copy", "-f", "asf"])
        .arg(&f);
    support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(dir, 0o755), (&media, 0o755), (&f, 0o644)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    f
}

#[test]
fn vlc_mmsh_output_as_a_pull_source() {
    let dir = TempDir::new("pull-vlc");
    let media = world_readable_media(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = support::free_tcp_port();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"])
        .arg(format!("HOME={}", home.display()))
        .args(["cvlc", "-I", "dummy", "--loop"])
        .arg(&media)
        .arg(format!(
            "--sout=#std{{access=mmsh,mux=asfh,dst=127.0.0.1:{port}}}"
        ));
    let mut vlc = Daemon::spawn("vlc-mmsh", cmd);
    vlc.wait_for_tcp(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(20),
    );
    let mut b = start_box(
        dir.path(),
        "edge",
        true,
        &[(
            "fromvlc",
            pull("fromvlc", &format!("mmsh://127.0.0.1:{port}/"), ""),
        )],
    );
    assert_pulling(&mut b.daemon, "edge");
    assert!(
        b.daemon.stderr().contains("server=\"Cougar 4.1.0.3921\""),
        "{}",
        b.daemon.stderr()
    );
    // VLC with --loop drops its clients at every loop (every 20 s): the edge reconnects.
    // VLC's mux writes a header when its first track starts and again, with both, when the
    // second does: an edge that connected in between has a one-stream header at first (a
    // real layout change follows, which ends RTSP clients). Players start once both are in.
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let h = describe_header_or_empty(b.http, "fromvlc");
        let streams = h
            .len()
            .checked_sub(50)
            .and_then(|split| asfcast::asf::AsfHeader::parse(&h[..split]).ok())
            .map_or(0, |p| p.streams.len());
        if streams == 2 {
            break h;
        }
        assert!(Instant::now() < deadline, "no two-stream header from VLC");
        thread::sleep(Duration::from_millis(200));
    };
    let started = b.daemon.stderr().matches("pull stream started").count();
    assert_decodes(&b, "fromvlc", "VLC → asfcast", (100, 80));
    // VLC drops its clients at every loop of its input: the edge connects again and serves a
    // header again. (Whether that header is the same depends on VLC: its File ID is new every
    // time, which the edge absorbs, but it also numbers the two streams in the order their
    // decoders start, which may swap them — a real layout change that players are told of.)
    assert!(
        wait_count(
            &mut b.daemon,
            "pull stream started",
            started + 1,
            Duration::from_secs(25)
        ),
        "{}",
        b.daemon.stderr()
    );
    // (VLC may serve its one-track header for a moment after the reconnect.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = Vec::new();
    while after.len() != before.len() && Instant::now() < deadline {
        after = describe_header_or_empty(b.http, "fromvlc");
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        after.len(),
        before.len(),
        "no two-stream header after the reconnect"
    );
    assert_no_panic(&b.daemon);
    drop(vlc);
}

#[test]
fn ffmpeg_listen_server_as_a_pull_source() {
    let dir = TempDir::new("pull-ffmpeg");
    let port = support::free_tcp_port();
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-nostdin",
        "-v",
        "warning",
        "-re",
        "-stream_loop",
        "-1",
        "-i",
    ])
    .arg(support::demo_media())
    .args(["-c", "copy", "-f", "asf_stream", "-listen", "1"])
    .arg(format!("http://127.0.0.1:{port}/live"));
    let _ffmpeg = Daemon::spawn("ffmpeg-listen", cmd);
    let mut b = start_box(
        dir.path(),
        "edge",
        true,
        &[(
            "fromff",
            pull(
                "fromff",
                &format!("http://127.0.0.1:{port}/live"),
                "  reconnect_min: 200ms\n",
            ),
        )],
    );
    assert_pulling(&mut b.daemon, "edge");
    assert_decodes(&b, "fromff", "FFmpeg -listen 1 → asfcast", (110, 90));
    // One request was all FFmpeg's server answers: no Play was needed, and no loss was
    // logged but refused connects while FFmpeg was starting.
    let log = b.daemon.stderr();
    let losses: Vec<&str> = log.lines().filter(|l| l.contains("source lost")).collect();
    assert!(
        losses.iter().all(|l| l.contains("cannot connect")),
        "{losses:?}"
    );
    assert_eq!(log.matches("pull stream started").count(), 1, "{log}");
    assert_no_panic(&b.daemon);
}

#[test]
fn origin_to_edge_to_edge_by_pull_serves_the_origins_header() {
    let dir = TempDir::new("pull-chain");
    let origin = start_box(dir.path(), "origin", false, &[("demo", playlist("demo"))]);
    let mut a = start_box(
        dir.path(),
        "edge-a",
        false,
        &[(
            "demo",
            pull("demo", &format!("mmsh://{}/demo", origin.http), ""),
        )],
    );
    let mut b = start_box(
        dir.path(),
        "edge-b",
        true,
        &[("demo", pull("demo", &format!("http://{}/demo", a.http), ""))],
    );
    for (name, d) in [("edge A", &mut a.daemon), ("edge B", &mut b.daemon)] {
        assert_pulling(d, name);
    }
    let want = describe_header(origin.http, "demo");
    assert!(want.len() > 500, "origin header {} bytes", want.len());
    assert_eq!(
        describe_header(a.http, "demo"),
        want,
        "edge A's header differs from the origin's"
    );
    assert_eq!(
        describe_header(b.http, "demo"),
        want,
        "edge B's header differs from the origin's"
    );
    assert_decodes(&b, "demo", "origin → A → B", (110, 90));
    for d in [&origin.daemon, &a.daemon, &b.daemon] {
        assert_no_panic(d);
    }
}

#[test]
fn origin_to_edge_by_pull_to_edge_by_multicast() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("mcast-chain");
    let origin = start_box(dir.path(), "origin", false, &[("demo", playlist("demo"))]);
    let port = support::free_udp_port();
    let a_yaml = format!(
        "{}multicast:\n  group: 239.255.42.7\n  port: {port}\n  interface: lo\n  ttl: 0\n  \
         fec_span: 10\n  beacon_interval: 1s\n",
        pull("demo", &format!("mmsh://{}/demo", origin.http), "")
    );
    let mut a = start_box(dir.path(), "edge-a", false, &[("demo", a_yaml)]);
    assert_pulling(&mut a.daemon, "edge");
    // Edge B: from edge A's .nsc over HTTP; served by unicast and sent again on another group.
    let b_port = support::free_udp_port();
    let b_yaml = format!(
        "name: relay\nsource:\n  type: multicast\n  nsc: http://{}/demo.nsc\n  interface: lo\n  timeout: 5s\n\
         multicast:\n  group: 239.255.42.8\n  port: {b_port}\n  interface: lo\n  ttl: 0\n",
        a.http
    );
    let mut b = start_box(dir.path(), "edge-b", true, &[("relay", b_yaml)]);
    assert!(
        b.daemon
            .wait_for_stderr("joined the upstream multicast", Duration::from_secs(20)),
        "{}",
        b.daemon.stderr()
    );
    // The first data packet brings the header.
    let want = describe_header(origin.http, "demo");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got = describe_header_or_empty(b.http, "relay");
        if !got.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(got, want, "edge B's header differs from the origin's");
    assert_decodes(&b, "relay", "origin → A (pull) → multicast → B", (110, 90));
    // Edge B sends it on again: `asfcast recv` on B's own .nsc writes a file FFmpeg decodes.
    let nsc = b.dir.join("announce").join("relay.nsc");
    assert!(nsc.exists(), "edge B wrote no .nsc");
    let out = dir.path().join("rebroadcast.asf");
    let mut cmd = bounded(Duration::from_secs(30), support::asfcast_bin());
    cmd.arg("recv")
        .arg(&nsc)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "6", "--interface", "lo"]);
    let r =
        support::run_bounded(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("recv: {}", String::from_utf8_lossy(&r.stdout));
    let video = support::ffprobe_count_frames(&out, "v:0").unwrap_or_else(|e| panic!("{e}"));
    eprintln!("edge B's multicast, received and decoded: video={video}");
    assert!(video >= 75, "video frames {video}");
    for d in [&origin.daemon, &a.daemon, &b.daemon] {
        assert_no_panic(d);
    }
}

/// A player's request to `station` gets an HTTP answer (the station is up, with or without a
/// header).
fn assert_answers(http: SocketAddr, station: &str) {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /{station} HTTP/1.0\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1."),
        "{station}: {:?}",
        String::from_utf8_lossy(&head)
    );
}

/// Like [`describe_header`], but empty when the station has no header yet (503).
fn describe_header_or_empty(http: SocketAddr, station: &str) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(http) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /{station} HTTP/1.0\r\nUser-Agent: NSPlayer/7.10.0.3059\r\nPragma: no-cache,rate=1.000000,request-context=1\r\n\r\n"
    );
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    if !all.starts_with(b"HTTP/1.1 200") && !all.starts_with(b"HTTP/1.0 200") {
        return Vec::new();
    }
    drop(s);
    describe_header(http, station)
}

#[test]
fn an_upstream_restart_is_ridden_through_by_a_connected_player() {
    let dir = TempDir::new("pull-restart");
    let origin = start_box(dir.path(), "origin", false, &[("demo", playlist("demo"))]);
    let origin_http = origin.http;
    let origin_dir = origin.dir.clone();
    let mut edge = start_box(
        dir.path(),
        "edge",
        false,
        &[(
            "demo",
            pull(
                "demo",
                &format!("mmsh://{origin_http}/demo"),
                "  reconnect_min: 500ms\n  reconnect_max: 2s\n",
            ),
        )],
    );
    assert_pulling(&mut edge.daemon, "edge");
    let edge_http = edge.http;
    let player = thread::spawn(move || ffmpeg_frames(&format!("mmsh://{edge_http}/demo"), 20));
    thread::sleep(Duration::from_secs(5));
    // The origin is killed (no clean end: the kernel closes its sockets), then comes back on
    // the same port.
    let mut origin = origin;
    origin.daemon.signal("KILL").unwrap();
    let dead = Instant::now() + Duration::from_secs(10);
    while origin.daemon.is_running() && Instant::now() < dead {
        thread::sleep(Duration::from_millis(20));
    }
    drop(origin);
    assert!(
        wait_count(&mut edge.daemon, "source lost", 1, Duration::from_secs(10)),
        "{}",
        edge.daemon.stderr()
    );
    thread::sleep(Duration::from_secs(2));
    let restarted = Instant::now();
    let mut again = Daemon::asfcast(["run", "--config", origin_dir.to_str().unwrap()]);
    again.wait_for_tcp(origin_http, Duration::from_secs(10));
    assert!(
        wait_count(
            &mut edge.daemon,
            "pull stream started",
            2,
            Duration::from_secs(15)
        ),
        "{}",
        edge.daemon.stderr()
    );
    eprintln!(
        "edge pulling again {:?} after the origin was restarted",
        restarted.elapsed()
    );
    let (video, audio, forward) = player.join().unwrap();
    eprintln!("player across the restart, 20 s of stream: video={video} audio={audio}");
    // 20 s at 25 fps is 500 frames; the outage (~3 s) is skipped, not ended.
    assert!(video >= 350, "video frames {video}");
    assert!(audio >= 280, "audio frames {audio}");
    assert!(forward, "timestamps went back");
    // Same header, so the player was never sent a stream change.
    let log = edge.daemon.stderr();
    assert!(log.contains("MMSH play ended"), "{log}");
    assert!(!log.contains("header_changes=1"), "{log}");
    assert_no_panic(&edge.daemon);
    drop(again);
}

/// A fake upstream: answers every connection with `answer(stop)` until stopped.
fn fake_upstream(answer: fn(&mut TcpStream, &AtomicBool)) -> (SocketAddr, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    l.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
                    let s2 = s.clone();
                    thread::spawn(move || answer(&mut c, &s2));
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, stop)
}

fn read_request(c: &mut TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    let _ = c.read(&mut buf);
}

#[test]
fn bad_upstreams_cost_a_log_line_and_nothing_else() {
    let html: fn(&mut TcpStream, &AtomicBool) = |c, _| {
        read_request(c);
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>It works!</body></html>");
    };
    let not_found: fn(&mut TcpStream, &AtomicBool) = |c, _| {
        read_request(c);
        let _ = c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
    };
    // A response head that never ends.
    let endless_head: fn(&mut TcpStream, &AtomicBool) = |c, stop| {
        read_request(c);
        let _ = c.write_all(b"HTTP/1.0 200 OK\r\nX-Padding: ");
        while !stop.load(Ordering::Relaxed) && c.write_all(&[b'a'; 4096]).is_ok() {}
    };
    // `$H` pieces that never make a header: a Header Object that claims 2 GB.
    let endless_header: fn(&mut TcpStream, &AtomicBool) = |c, stop| {
        read_request(c);
        let _ = c.write_all(b"HTTP/1.0 200 OK\r\nServer: Cougar/9.01.01.3814\r\n\r\n");
        let mut piece = vec![b'$', b'H', 0x08, 0x10, 0, 0, 0, 0, 0, 0x04, 0x08, 0x10];
        piece.extend([
            0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62,
            0xCE, 0x6C,
        ]);
        piece.extend((2u64 << 30).to_le_bytes());
        piece.resize(4 + 0x1008, 0);
        while !stop.load(Ordering::Relaxed) && c.write_all(&piece).is_ok() {}
    };
    // Accepts and says nothing.
    let silent: fn(&mut TcpStream, &AtomicBool) = |c, stop| {
        read_request(c);
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(100));
        }
        let _ = c.shutdown(std::net::Shutdown::Both);
    };
    let fakes = [
        ("html", html, "not WMSP framing"),
        ("notfound", not_found, "HTTP 404 Not Found"),
        ("endlesshead", endless_head, "response head longer than"),
        ("endlessheader", endless_header, "ASF header of"),
        ("silent", silent, "no HTTP answer for 2s"),
    ];
    let dir = TempDir::new("pull-bad");
    let mut stations = vec![("good", playlist("good"))];
    let mut stops = Vec::new();
    let mut expect = Vec::new();
    for (name, f, why) in fakes {
        let (addr, stop) = fake_upstream(f);
        stops.push(stop);
        stations.push((
            name,
            pull(
                name,
                &format!("mmsh://{addr}/x"),
                "  timeout: 2s\n  reconnect_min: 500ms\n",
            ),
        ));
        expect.push((name, addr, why));
    }
    let mut b = start_box(dir.path(), "edge", false, &stations);
    for (name, addr, why) in &expect {
        let needle = format!("station={name} reason=http://{addr}/x: ");
        assert!(
            wait_count(&mut b.daemon, &needle, 2, Duration::from_secs(20)),
            "{name}: no loss logged: {}",
            b.daemon.stderr()
        );
        let line = b
            .daemon
            .stderr()
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_default()
            .to_string();
        assert!(line.contains(why), "{name}: {line}");
    }
    // The other station plays on, and each bad station still answers (no header yet).
    let (video, audio, _) = ffmpeg_frames(&format!("mmsh://{}/good", b.http), 5);
    eprintln!("good station beside five bad upstreams: video={video} audio={audio}");
    assert!(video >= 110 && audio >= 90, "video {video} audio {audio}");
    for (name, _, _) in &expect {
        assert_answers(b.http, name);
    }
    // Memory stayed bounded while two upstreams streamed garbage as fast as they could.
    let rss = std::fs::read_to_string(format!("/proc/{}/status", b.daemon.pid()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    eprintln!("daemon RSS {rss} kB");
    assert!(rss < 64 * 1024, "RSS {rss} kB");
    assert!(b.daemon.is_running());
    assert_no_panic(&b.daemon);
    for s in stops {
        s.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_multicast_with_formats_the_nsc_does_not_announce_costs_a_log_line() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("mcast-unknown");
    let port = support::free_udp_port();
    // The sender: a playlist station multicasting the demo.
    let sender_yaml = format!(
        "{}multicast:\n  group: 239.255.42.9\n  port: {port}\n  interface: lo\n  ttl: 0\n  beacon_interval: 1s\n",
        playlist("demo")
    );
    let sender = start_box(dir.path(), "sender", false, &[("demo", sender_yaml)]);
    // A .nsc for that group whose only Format is another header (demo-b's) under an ID the
    // sender does not use.
    let other = asfcast::asf::AsfReader::open(&support::demo_media_b()).unwrap();
    let other_header = other
        .header()
        .to_broadcast()
        .stream_header_bytes(other.data_head());
    let sent_id = asfcast::nsc::format_id(&describe_header(sender.http, "demo"));
    let nsc = asfcast::nsc::StationFile {
        name: Some("test, demo".into()),
        multicast_adapter: None,
        ip_address: "239.255.42.9".into(),
        ip_port: port,
        time_to_live: Some(0),
        default_ecc: Some(10),
        log_url: None,
        unicast_url: None,
        formats: vec![asfcast::nsc::Format {
            id: sent_id % 0x7FF + 1,
            header: other_header,
            description: None,
        }],
    };
    let nsc_path = dir.path().join("stale.nsc");
    std::fs::write(&nsc_path, nsc.to_nsc()).unwrap();
    let relay_yaml = format!(
        "name: relay\nsource:\n  type: multicast\n  nsc: {}\n  interface: lo\n  timeout: 3s\n",
        nsc_path.display()
    );
    let mut b = start_box(
        dir.path(),
        "relay",
        false,
        &[("relay", relay_yaml), ("good", playlist("good"))],
    );
    assert!(
        b.daemon
            .wait_for_stderr("does not announce", Duration::from_secs(20)),
        "{}",
        b.daemon.stderr()
    );
    let log = b.daemon.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("does not announce"))
        .unwrap_or_default();
    assert!(line.contains("station=relay"), "{line}");
    assert!(line.contains("sender=127.0.0.1:"), "{line}");
    assert!(line.contains(&format!("format_id={sent_id}")), "{line}");
    // One line per unknown Format ID, however many packets carry it.
    thread::sleep(Duration::from_secs(4));
    let log = b.daemon.stderr();
    assert_eq!(log.matches("does not announce").count(), 1, "{log}");
    // The relay station is lost, not gone: it answers; the other station plays.
    assert!(log.contains("station=relay reason="), "{log}");
    assert_answers(b.http, "relay");
    let (video, audio, _) = ffmpeg_frames(&format!("mmsh://{}/good", b.http), 5);
    assert!(video >= 110 && audio >= 90, "video {video} audio {audio}");
    assert!(b.daemon.is_running());
    assert_no_panic(&b.daemon);
    assert_no_panic(&sender.daemon);
}

/// The Format IDs a station's `.nsc` lists.
fn nsc_format_ids(path: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    asfcast::nsc::parse(&text)
        .map(|p| p.formats().iter().map(|f| f.key).collect())
        .unwrap_or_default()
}

#[test]
fn the_format_id_follows_the_upstream_header() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("pull-format");
    let mut origin = start_box(dir.path(), "origin", false, &[("demo", playlist("demo"))]);
    let port = support::free_udp_port();
    let edge_yaml = format!(
        "{}multicast:\n  group: 239.255.42.10\n  port: {port}\n  interface: lo\n  ttl: 0\n",
        pull(
            "demo",
            &format!("mmsh://{}/demo", origin.http),
            "  reconnect_min: 200ms\n  reconnect_max: 1s\n"
        )
    );
    let mut edge = start_box(dir.path(), "edge", false, &[("demo", edge_yaml)]);
    let nsc = edge.dir.join("announce").join("demo.nsc");
    let restart = |origin: &mut Box_, edge: &mut Box_, media: PathBuf, round: usize| {
        origin.daemon.signal("KILL").unwrap();
        let dead = Instant::now() + Duration::from_secs(10);
        while origin.daemon.is_running() && Instant::now() < dead {
            thread::sleep(Duration::from_millis(20));
        }
        std::fs::write(
            origin.dir.join("demo.yaml"),
            format!(
                "name: demo\nsource:\n  type: playlist\n  files: [{}]\n",
                media.display()
            ),
        )
        .unwrap();
        origin.daemon = Daemon::asfcast(["run", "--config", origin.dir.to_str().unwrap()]);
        origin
            .daemon
            .wait_for_tcp(origin.http, Duration::from_secs(10));
        assert!(
            wait_count(
                &mut edge.daemon,
                "pull stream started",
                round,
                Duration::from_secs(15)
            ),
            "{}",
            edge.daemon.stderr()
        );
    };
    assert!(wait_count(
        &mut edge.daemon,
        "pull stream started",
        1,
        Duration::from_secs(20)
    ));
    let first = nsc_format_ids(&nsc);
    assert_eq!(first.len(), 1, "{first:?}");
    // The same header again: the same Format ID, nothing added.
    restart(&mut origin, &mut edge, support::demo_media(), 2);
    assert_eq!(nsc_format_ids(&nsc), first);
    assert_eq!(
        describe_header(edge.http, "demo"),
        describe_header(origin.http, "demo")
    );
    // Another header: a new Format ID beside the first, and the edge serves the new header.
    restart(&mut origin, &mut edge, support::demo_media_b(), 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while nsc_format_ids(&nsc).len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let ids = nsc_format_ids(&nsc);
    eprintln!("Format IDs in the edge's .nsc: {first:?}, then {ids:?}");
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], first[0]);
    assert_ne!(ids[1], first[0]);
    assert_eq!(
        describe_header(edge.http, "demo"),
        describe_header(origin.http, "demo")
    );
    assert_no_panic(&edge.daemon);
}

/// A pull station with a fallback slate (in the demo's format): a player that joins before
/// the upstream exists gets the slate, stays connected when the upstream comes, and goes on
/// with it; timestamps never go back.
#[test]
fn a_pull_station_plays_its_fallback_until_the_upstream_comes() {
    let dir = TempDir::new("pull-fallback");
    let origin_port = support::free_tcp_port();
    let slate = support::repo_root().join("station-configs/media/slate.asf");
    let mut edge = start_box(
        dir.path(),
        "edge",
        false,
        &[(
            "demo",
            pull(
                "demo",
                &format!("mmsh://127.0.0.1:{origin_port}/demo"),
                &format!(
                    "  reconnect_min: 500ms\n  reconnect_max: 1s\n  timeout: 2s\n  fallback: [{}]\n",
                    slate.display()
                ),
            ),
        )],
    );
    assert!(
        edge.daemon.wait_for_stderr(
            "live source absent; playing the fallback",
            Duration::from_secs(15)
        ),
        "{}",
        edge.daemon.stderr()
    );
    let edge_http = edge.http;
    let player = thread::spawn(move || ffmpeg_frames(&format!("mmsh://{edge_http}/demo"), 16));
    thread::sleep(Duration::from_secs(5));
    let origin_dir = dir.path().join("origin");
    std::fs::create_dir_all(&origin_dir).unwrap();
    std::fs::write(
        origin_dir.join("server.yaml"),
        format!(
            "listen:\n  http: 127.0.0.1:{origin_port}\n  mms: false\n  rtsp: false\nannounce_dir: {}\n",
            origin_dir.join("announce").display()
        ),
    )
    .unwrap();
    std::fs::write(origin_dir.join("demo.yaml"), playlist("demo")).unwrap();
    let origin = Daemon::asfcast(["run", "--config", origin_dir.to_str().unwrap()]);
    assert!(
        edge.daemon
            .wait_for_stderr("live source back at a key frame", Duration::from_secs(15)),
        "{}",
        edge.daemon.stderr()
    );
    let (video, audio, forward) = player.join().unwrap();
    eprintln!("player on slate then upstream, 16 s of stream: video={video} audio={audio}");
    // 16 s at 25 fps is 400 frames: one player, one connection, slate then live.
    assert!(video >= 300, "video frames {video}");
    assert!(audio >= 240, "audio frames {audio}");
    assert!(forward, "timestamps went back");
    let log = edge.daemon.stderr();
    // The slate and the upstream are in one format: the switch is a compatible header change
    // (`$C` and the new header), never an end.
    assert!(!log.contains("incompatible header"), "{log}");
    assert!(log.contains("header_changes=1"), "{log}");
    assert_no_panic(&edge.daemon);
    drop(origin);
}
