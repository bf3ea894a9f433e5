//! RTSP with the Windows Media extensions, judged by real clients on 127.0.0.1: FFmpeg (WMS
//! mode: UDP, TCP interleaved, its default UDP-first order, and the 461 fallback when UDP is
//! refused by config) and GStreamer (rtspsrc → rtpasfdepay → decodebin, and playbin) play the
//! live demo station — buffers counted while it runs, never flushed at an end of stream; a
//! small MTU forces x-asf-pf fragmentation; hostile input gets clean errors and the daemon
//! keeps serving. Stations are unicast only, so these tests run anywhere.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::gst::gstreamer;
use support::{Daemon, TempDir};

const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// Writes a server file (RTSP only, with `rtsp_section` appended) and the unicast-only demo
/// station, starts the daemon and waits for the RTSP listener.
fn start(dir: &Path, rtsp_section: &str) -> (Daemon, String) {
    let extra = format!("limits:\n  request_max_bytes: 8192\n{rtsp_section}");
    let rtsp = support::Listen::new().with_rtsp().write(dir, &extra).rtsp();
    support::demo_station(dir, "unicast:\n  mms: false\n  mmsh: false\n  rtsp: true\n");
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(rtsp, Duration::from_secs(10));
    (d, format!("rtsp://{rtsp}/demo"))
}

/// Frames FFmpeg decoded in `-t 5 -f null`, as (video, audio), or its stderr on failure.
fn ffmpeg(url: &str, transport: Option<&str>) -> Result<(u64, u64), String> {
    let mut cmd = support::bounded(CLIENT_LIMIT, "ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "verbose"]);
    if let Some(t) = transport {
        cmd.args(["-rtsp_transport", t]);
    }
    cmd.args(["-i", url, "-t", "5", "-f", "null", "-"]);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("ffmpeg failed ({}):\n{err}", out.status));
    }
    // "Input stream #0:0 (video): 126 packets read (219630 bytes); 126 frames decoded;"
    let decoded = |kind: &str| {
        err.lines()
            .find(|l| l.contains("Input stream #") && l.contains(&format!("({kind}):")))
            .and_then(|l| l.split("; ").nth(1))
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    match (decoded("video"), decoded("audio")) {
        (Some(v), Some(a)) => Ok((v, a)),
        _ => Err(format!("no decode counts in ffmpeg's output:\n{err}")),
    }
}

fn assert_five_seconds(what: &str, counts: Result<(u64, u64), String>) {
    let (v, a) = counts.unwrap_or_else(|e| panic!("{what}: {e}"));
    // 25 fps video; WMA2 at 44.1 kHz has 2048-sample frames (21.5 per second).
    assert!((100..=160).contains(&v), "{what}: {v} video frames in 5 s");
    assert!((80..=140).contains(&a), "{what}: {a} audio frames in 5 s");
    eprintln!("{what}: {v} video and {a} audio frames decoded");
}

/// `rtspsrc ! rtpasfdepay ! decodebin` with the decoded video and audio in two fakesinks: the
/// pipeline the issue names, over `protocols` (udp or tcp).
fn gst_rtspsrc(url: &str, protocols: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "rtspsrc",
        &format!("location={url}"),
        &format!("protocols={protocols}"),
        "latency=200",
        "!",
        "rtpasfdepay",
        "!",
        "decodebin",
        "name=d",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for sink in ["x", "y"] {
        for s in ["d.", "!", "queue", "!", "fakesink"] {
            a.push(s.into());
        }
        a.push(format!("name={sink}"));
        a.push("silent=false".into());
    }
    a
}

/// `playbin` (what gst-play and GStreamer desktop players run) with fakesinks.
fn gst_playbin(url: &str) -> Vec<String> {
    vec![
        "playbin".into(),
        format!("uri={url}"),
        "video-sink=fakesink name=v silent=false".into(),
        "audio-sink=fakesink name=a silent=false".into(),
    ]
}

/// One raw exchange on a fresh connection: what the server answered before closing (or
/// before the read timeout).
fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn ffmpeg_decodes_over_udp_tcp_and_its_default_order() {
    let dir = TempDir::new("rtsp-ffmpeg");
    let (mut d, url) = start(dir.path(), "");
    assert_five_seconds("ffmpeg udp", ffmpeg(&url, Some("udp")));
    assert_five_seconds("ffmpeg tcp", ffmpeg(&url, Some("tcp")));
    assert_five_seconds("ffmpeg default", ffmpeg(&url, None));
    assert!(d.is_running());
}

#[test]
fn udp_refused_by_config_falls_back_to_tcp_through_461() {
    let dir = TempDir::new("rtsp-461");
    let (mut d, url) = start(dir.path(), "rtsp:\n  udp: false\n");
    // UDP alone cannot work: the server answers 461 and there is nothing to fall back to.
    let only_udp = ffmpeg(&url, Some("udp"));
    assert!(only_udp.is_err(), "UDP was served: {only_udp:?}");
    // The default order (UDP, then TCP) gets 461 and retries over TCP on the same connection.
    assert_five_seconds("ffmpeg default with UDP refused", ffmpeg(&url, None));
    assert!(d.is_running());
}

#[test]
fn gstreamer_plays_live_over_udp_and_tcp() {
    let dir = TempDir::new("rtsp-gst");
    let (mut d, url) = start(dir.path(), "");
    for proto in ["udp", "tcp"] {
        gstreamer(&format!("rtspsrc over {proto}"), &gst_rtspsrc(&url, proto));
    }
    gstreamer("playbin", &gst_playbin(&url));
    assert!(d.is_running());
    assert!(
        d.stderr().contains("rtsp play") && !d.stderr().contains("panicked"),
        "{}",
        d.stderr()
    );
}

#[test]
fn a_small_mtu_fragments_packets_and_clients_still_decode() {
    let dir = TempDir::new("rtsp-mtu");
    // 3200-byte ASF packets do not fit 1000-byte RTP packets: every one is fragmented.
    let (mut d, url) = start(dir.path(), "rtsp:\n  mtu: 1000\n");
    assert_five_seconds("ffmpeg udp, mtu 1000", ffmpeg(&url, Some("udp")));
    assert_five_seconds("ffmpeg tcp, mtu 1000", ffmpeg(&url, Some("tcp")));
    gstreamer("rtspsrc over udp, mtu 1000", &gst_rtspsrc(&url, "udp"));
    assert!(d.is_running());
}

#[test]
fn hostile_input_gets_clean_errors_and_the_daemon_keeps_serving() {
    let dir = TempDir::new("rtsp-hostile");
    let (mut d, url) = start(dir.path(), "");
    let addr = url
        .trim_start_matches("rtsp://")
        .trim_end_matches("/demo")
        .to_string();

    let r = raw(
        &addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 400 "), "garbage: {r:?}");

    let r = raw(
        &addr,
        format!("OPTIONS {url} RTSP/1.0\r\nUser-Agent: x\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("RTSP/1.0 400 "), "no CSeq: {r:?}");
    assert!(!r.contains("\r\nCSeq:"), "{r}");

    let big = format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let r = raw(&addr, big.as_bytes());
    assert!(r.starts_with("RTSP/1.0 413 "), "1 MB header: {r:?}");

    // A bogus interleaved channel is ignored; the connection still answers.
    let mut req = b"$\x2a\x00\x08rtcpjunk".to_vec();
    req.extend_from_slice(format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n").as_bytes());
    let r = raw(&addr, &req);
    assert!(r.starts_with("RTSP/1.0 200 "), "after a bogus frame: {r:?}");

    let r = raw(
        &addr,
        format!(
            "SETUP {url}/stream=77 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(r.starts_with("RTSP/1.0 404 "), "unknown stream: {r:?}");
    assert!(r.contains("\r\nCSeq: 3\r\n"), "{r}");

    let r = raw(
        &addr,
        format!(
            "DESCRIBE {}/nope RTSP/1.0\r\nCSeq: 4\r\n\r\n",
            url.trim_end_matches("/demo")
        )
        .as_bytes(),
    );
    assert!(r.starts_with("RTSP/1.0 404 "), "unknown station: {r:?}");

    // A real client still plays.
    assert_five_seconds("ffmpeg tcp after hostile input", ffmpeg(&url, Some("tcp")));
    assert!(d.is_running());
    assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
}

/// The daemon's UDP sockets as (local port, rx_queue bytes), from /proc/net/udp (this network
/// namespace) matched by socket inode against the daemon's descriptors.
fn udp_sockets_of(pid: u32) -> Vec<(u16, u64)> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            // sl local rem st tx_queue:rx_queue tr tm->when retrnsmt uid timeout inode …
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.split(':').nth(1)?, 16).ok()?;
            let rx = u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()?;
            inodes
                .contains(&f.get(9)?.to_string())
                .then_some((port, rx))
        })
        .collect()
}

/// The Recv-Q of the daemon's RTCP socket: the odd port of its RTP/RTCP pair.
fn rtcp_rx_queue(pid: u32) -> Option<(u16, u64)> {
    let socks = udp_sockets_of(pid);
    socks
        .iter()
        .find(|(p, _)| p % 2 == 1 && socks.iter().any(|(q, _)| *q == p - 1))
        .copied()
}

/// A `key=value` field of a log line, as a number.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim_matches('"').parse().ok())
}

#[test]
fn receiver_reports_are_read_and_a_dropped_udp_session_logs_its_end() {
    let dir = TempDir::new("rtsp-rtcp");
    let (mut d, url) = start(dir.path(), "");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "verbose"])
        .args(["-rtsp_transport", "udp", "-i", &url, "-f", "null", "-"]);
    let ff = Daemon::spawn("ffmpeg-rtcp", cmd);
    // FFmpeg answers sender reports (every 5 s) with receiver reports; its punch packets land
    // on the RTCP socket at once. Sample the RTCP socket's Recv-Q for 8 s of playing.
    let start = std::time::Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(250));
        if let Some((_, rx)) = rtcp_rx_queue(d.pid()) {
            samples.push(rx);
        }
    }
    let (port, _) = rtcp_rx_queue(d.pid()).expect("the daemon has an RTP/RTCP socket pair");
    let max = samples.iter().copied().max().unwrap_or(0);
    eprintln!("RTCP socket 127.0.0.1:{port} Recv-Q over 8 s: max {max} bytes, samples {samples:?}");
    assert!(
        d.stderr().contains("rtsp play"),
        "FFmpeg never played: {}\n{}",
        d.stderr(),
        ff.stderr()
    );
    // An unread socket holds every report since the start (a few KiB after 8 s); a read one
    // holds at most the datagram that arrived since the last loop turn.
    assert!(
        samples.iter().filter(|&&rx| rx > 0).count() <= 2 && max < 4096,
        "RTCP Recv-Q not drained: {samples:?}"
    );
    // No TEARDOWN: SIGKILL drops the TCP connection and the UDP reports stop.
    ff.signal("KILL").unwrap();
    assert!(
        d.wait_for_stderr("rtsp session ended", Duration::from_secs(10)),
        "no end line for the dropped session:\n{}",
        d.stderr()
    );
    let log = d.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("rtsp session ended"))
        .unwrap_or_default();
    eprintln!("{line}");
    assert!(line.contains("transport=\"udp\""), "{line}");
    assert!(line.contains("end=\"peer closed\""), "no TEARDOWN: {line}");
    assert!(field(line, "packets").unwrap_or(0.0) > 0.0, "{line}");
    assert!(field(line, "bytes").unwrap_or(0.0) > 0.0, "{line}");
    assert!(
        field(line, "receiver_reports").unwrap_or(0.0) >= 1.0,
        "receiver reports counted: {line}"
    );
    for key in ["fraction_lost", "cumulative_lost", "jitter_ms"] {
        assert!(field(line, key).is_some(), "{key} in {line}");
    }
    assert!(d.is_running());
    assert!(!log.contains("panicked"), "{log}");
}
