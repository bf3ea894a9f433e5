//! Fast start attacked from outside: a hostile live source whose send times step ahead just
//! under the fast-start schedule's re-anchoring bound (5 s), pushing as fast as it can with no
//! clean point after its first. A client that joined while the join backlog reached back to
//! that clean point has its backlog released at `fast_start_rate` × send time — one packet
//! every 1.25 s at rate 4 — and every live packet arriving meanwhile is held behind it. Those
//! must stay bounded (`limits.client_backlog_bytes`): the joined clients skip, the daemon's
//! memory stays flat, and FFmpeg on another, normal station keeps decoding.
//!
//! Real clients: FFmpeg over MMSH and RTSP/TCP join the hostile station, FFmpeg over MMSH
//! decodes the normal one (frames counted). The skips are read from `/metrics`. Over loopback
//! the push reaches PushStart's 2 GiB Content-Length in seconds; the flood stops at 1.8 GiB
//! (before the bound, the daemon grew by as much: +1,903 MiB; with it, +26 MiB).
//!
//! And the other side of the bound: on an honest 6 Mbit/s station the default limits must
//! not make a joiner skip at any `fast_start_rate` — at rate 1 the live packets held behind
//! the join backlog are the backlog's whole span of media (4.5–5.7 MB), for good (they follow
//! the backlog's schedule; when they were handed to the socket at once as the backlog ended,
//! every joiner skipped).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::packet::head_len;
use asfcast::asf::Packet;
use asfcast::http::push::framing::{write_chunk, Layout};
use support::push::{parts, response_head, write_push_start};
use support::{bounded, Daemon, TempDir};

const MIB: u64 = 1 << 20;

/// The hostile step between consecutive send times: just under the schedule's 5 s bound.
const STEP_MS: u32 = 4_999;

/// The daemon's resident set size in bytes (VmRSS in /proc/PID/status).
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// `GET path` on the HTTP listener: the body, or "" when it does not answer.
fn get(addr: SocketAddr, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned())
}

/// Sum of a metric's samples for one station (over its protocols).
fn station_metric(metrics: &str, name: &str, station: &str) -> f64 {
    let prefix = format!("{name}{{station=\"{station}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A daemon with a push station `live` (no fallback) and a playlist station `demo` looping
/// the demo, over HTTP (MMSH, `/metrics`) and RTSP, with `limits` in server.yaml.
fn start(dir: &Path, limits: &str) -> (Daemon, SocketAddr, SocketAddr) {
    let listen = support::Listen::new().with_http().with_rtsp().write(
        dir,
        &format!("metrics:\n  enabled: true\nlimits:\n  idle_timeout: 30s\n{limits}"),
    );
    std::fs::write(dir.join("live.yaml"), "name: live\nsource:\n  type: push\n").unwrap();
    support::demo_station(dir, "");
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(listen.http(), Duration::from_secs(10));
    (d, listen.http(), listen.rtsp())
}

/// `packet` with its Send Time field set to `t` (\[ASF\] §5.2.2).
fn with_send_time(packet: &[u8], t: u32) -> Vec<u8> {
    let p = Packet::parse(packet).expect("a demo packet");
    let at = head_len(p.ecc.len(), p.length_type_flags) - 6;
    let mut b = packet.to_vec();
    b[at..at + 4].copy_from_slice(&t.to_le_bytes());
    b
}

/// The demo's header, its first packet starting a video key frame, and its packets that start
/// no key frame on any stream (the hostile stream's body: no clean point ever again).
fn hostile_parts() -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let (head, packets) = parts(&support::demo_media());
    let key = packets
        .iter()
        .find(|p| Packet::parse(p).is_ok_and(|p| p.starts_key_frame_on(1)))
        .expect("the demo has a key frame")
        .clone();
    let plain: Vec<_> = packets
        .into_iter()
        .filter(|p| {
            Packet::parse(p).is_ok_and(|p| p.payloads.iter().all(|pl| !pl.starts_key_frame()))
        })
        .collect();
    assert!(
        plain.len() > 100,
        "{} packets without a key frame",
        plain.len()
    );
    (head, key, plain)
}

/// [MS-WMHTTP] PushSetup then PushStart on `/live`; the connection, ready for `$H`.
fn push_session(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = "AutoDestroy: 1\r\n";
    write!(
        s,
        "POST /live HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: WMEncoder/12.0.7601.17514\r\n\
         Content-Type: application/x-wms-pushsetup\r\nCookie: push-id=0\r\n\
         Content-Length: {}\r\nCache-Control: no-cache\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let head = response_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    let push_id = support::push::push_id(&head);
    write_push_start(&mut s, addr, &push_id);
    s
}

/// FFmpeg decoding `url` for `seconds` of media (video frames counted from its framemd5), in
/// the background; killed after `limit`.
fn ffmpeg(url: &str, seconds: u32, extra: &[&str], limit: Duration) -> Child {
    ffmpeg_with(url, seconds, extra, &[], limit)
}

/// [`ffmpeg`] with `out` before the output (e.g. `-c:v copy`: the frames FFmpeg's demuxer
/// takes from the stream, hashed without decoding them).
fn ffmpeg_with(url: &str, seconds: u32, extra: &[&str], out: &[&str], limit: Duration) -> Child {
    let mut cmd = bounded(limit, "ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(extra)
        .args(["-i", url, "-map", "0:v:0", "-t"])
        .arg(seconds.to_string())
        .args(out)
        .args(["-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd.spawn().expect("ffmpeg")
}

fn video_frames(child: Child) -> usize {
    let out = child.wait_with_output().expect("ffmpeg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

#[test]
fn live_packets_behind_a_stretched_fast_start_stay_bounded() {
    if !support::require_private_netns() {
        return;
    }
    const BLAST: Duration = Duration::from_secs(10);
    const MAX_PUSH: usize = 1_800 << 20;
    const RSS_GROWTH_BOUND: u64 = 96 * MIB;
    let dir = TempDir::new("outsider-fast-start");
    let (d, http, rtsp) = start(dir.path(), "  client_backlog_bytes: 256KiB\n");
    let pid = d.pid();

    // FFmpeg on the normal station for the whole attack: 20 s of media.
    let normal = ffmpeg(
        &format!("mmsh://{http}/demo"),
        20,
        &[],
        Duration::from_secs(60),
    );

    // The hostile encoder: a valid header, one key-frame packet, then stepping send times.
    let (head, key, plain) = hostile_parts();
    let mut s = push_session(http);
    s.write_all(&write_chunk(Layout::Spec, b'H', &head, 0).unwrap())
        .unwrap();
    let t0 = 1_000u32;
    s.write_all(&write_chunk(Layout::Spec, b'D', &with_send_time(&key, t0), 0).unwrap())
        .unwrap();
    let mut n = 0u32;
    let mut step = |s: &mut TcpStream| -> usize {
        n += 1;
        let p = with_send_time(
            &plain[n as usize % plain.len()],
            t0.wrapping_add(n.wrapping_mul(STEP_MS)),
        );
        let chunk = write_chunk(Layout::Spec, b'D', &p, 0).unwrap();
        match s.write_all(&chunk) {
            Ok(()) => chunk.len(),
            Err(_) => 0,
        }
    };
    eprintln!("pushed the header and the key frame");
    for _ in 0..8 {
        step(&mut s);
        thread::sleep(Duration::from_millis(100));
    }

    // Players join the hostile station before the flood: their join backlog reaches back to
    // the key frame, and its schedule is stretched (4,999 ms of send time per packet).
    let live_mmsh = format!("mmsh://{http}/live");
    let live_rtsp = format!("rtsp://{rtsp}/live");
    let tcp = ["-rtsp_transport", "tcp"];
    let limit = Duration::from_secs(25);
    let mut joiners = vec![
        ffmpeg(&live_mmsh, 5, &[], limit),
        ffmpeg(&live_mmsh, 5, &[], limit),
        ffmpeg(&live_rtsp, 5, &tcp, limit),
    ];
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        step(&mut s);
        thread::sleep(Duration::from_millis(100));
        let m = get(http, "/metrics");
        if station_metric(&m, "asfcast_clients", "live") >= 3.0 || Instant::now() > end {
            break;
        }
    }
    let joined = station_metric(&get(http, "/metrics"), "asfcast_clients", "live");
    eprintln!("{joined} players joined; the flood starts");

    // The flood: as fast as the socket takes it, for 10 s or 1.8 GiB; more players join
    // meanwhile.
    let before = rss_bytes(pid);
    let mut peak = before;
    let mut pushed = 0usize;
    let start = Instant::now();
    let mut last_sample = start;
    let mut more = 0;
    // PushStart's Content-Length (2 GiB) bounds one push's body.
    while start.elapsed() < BLAST && pushed < MAX_PUSH {
        pushed += step(&mut s);
        if last_sample.elapsed() >= Duration::from_millis(100) {
            last_sample = Instant::now();
            peak = peak.max(rss_bytes(pid));
            let due = start.elapsed().as_secs() / 3;
            if due > more {
                more = due;
                joiners.push(ffmpeg(&live_mmsh, 5, &[], limit));
                joiners.push(ffmpeg(&live_rtsp, 5, &tcp, limit));
            }
        }
    }
    let took = start.elapsed();
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(100));
        peak = peak.max(rss_bytes(pid));
    }
    eprintln!("the flood ended");
    let metrics = get(http, "/metrics");
    let skips = station_metric(&metrics, "asfcast_client_skips_total", "live");
    let clients = station_metric(&metrics, "asfcast_clients", "live");
    drop(s);
    let frames = video_frames(normal);
    for j in joiners {
        let _ = video_frames(j);
    }
    eprintln!(
        "hostile push: {} MiB in {:?} ({} packets stepping {STEP_MS} ms); {joined} players \
         joined before, {clients} connected after; skips on the hostile station: {skips}; \
         daemon RSS {} MiB before the flood, peak {} MiB (+{} MiB); FFmpeg over MMSH on the \
         normal station decoded {frames} video frames of 20 s",
        pushed as u64 / MIB,
        took,
        n,
        before / MIB,
        peak / MIB,
        peak.saturating_sub(before) / MIB
    );
    assert!(joined >= 1.0, "no player joined the hostile station");
    assert!(
        peak.saturating_sub(before) <= RSS_GROWTH_BOUND,
        "the daemon grew by {} MiB while a hostile source pushed {} MiB",
        peak.saturating_sub(before) / MIB,
        pushed as u64 / MIB
    );
    assert!(skips >= 1.0, "no client skipped:\n{metrics}");
    assert!(
        frames >= 450,
        "FFmpeg decoded {frames} video frames of 20 s (25 frames/s) on the normal station"
    );
}

/// A 30 s 1280x720 WMV2 clip at about 6 Mbit/s (noise keeps the encoder at its rate), a key
/// frame every 2 s, 64 kbit/s WMA2.
fn six_mbit_clip(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("hd.asf");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "30", "-vf", "noise=alls=12:allf=t"])
        .args([
            "-c:v", "wmv2", "-b:v", "6M", "-maxrate", "6M", "-bufsize", "6M",
        ])
        .args(["-g", "50", "-c:a", "wmav2", "-b:a", "64k"])
        .args(["-packet_size", "3200", "-f", "asf"])
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg made no clip");
    path
}

/// The daemon's session-start and session-end lines for station `hd`'s players.
fn session_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("station=hd") || l.contains("station=\"hd\""))
        .filter(|l| {
            [
                "MMSH play started",
                "MMSH play ended",
                "rtsp play",
                "rtsp session ended",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .collect()
}

/// FFmpeg over MMSH and RTSP/TCP joins a 6 Mbit/s station (the default 5 s fast-start
/// buffer and client_backlog_bytes) at `rate` twice, 3.3 s apart (other places between key
/// frames), and takes 8 s of video each time; the daemon's log says whether the clients
/// skipped. At rate 1 a client stays the whole join backlog (5–7 s, about 4–5 MB here) behind
/// for good: the live packets held behind it are no fault and must not make it skip.
fn six_mbit_station_at_rate(rate: &str) {
    let dir = TempDir::new("outsider-fast-start-hd");
    let clip = six_mbit_clip(dir.path());
    let listen = support::Listen::new().with_http().with_rtsp().write(
        dir.path(),
        &format!("metrics:\n  enabled: true\nlimits:\n  fast_start_rate: {rate}\n"),
    );
    support::playlist_station(dir.path(), "hd", &clip, "");
    let (http, rtsp_addr) = (listen.http(), listen.rtsp());
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    d.wait_for_tcp(http, Duration::from_secs(10));
    // The buffer reaches back 5 s once the station has played that long.
    thread::sleep(Duration::from_millis(7_000));
    let limit = Duration::from_secs(40);
    let mut decoded = Vec::new();
    // The video is hashed as it comes (`-c:v copy`): four 720p decoders on a shared test box
    // can read slower than real time, and such a client is rightly behind.
    let copy = ["-c:v", "copy"];
    for round in 0..2 {
        let mmsh = ffmpeg_with(&format!("mmsh://{http}/hd"), 8, &[], &copy, limit);
        let rtsp = ffmpeg_with(
            &format!("rtsp://{rtsp_addr}/hd"),
            8,
            &["-rtsp_transport", "tcp"],
            &copy,
            limit,
        );
        decoded.push((round, video_frames(mmsh), video_frames(rtsp)));
        thread::sleep(Duration::from_millis(3_300));
    }
    // The session-end lines come when the players hang up.
    thread::sleep(Duration::from_millis(1_000));
    let metrics = get(http, "/metrics");
    let skips = station_metric(&metrics, "asfcast_client_skips_total", "hd");
    let leaves = station_metric(&metrics, "asfcast_client_leaves_total", "hd");
    let drops = station_metric(&metrics, "asfcast_client_drops_total", "hd");
    let (_, log) = d.stop_with_log();
    let sessions = session_lines(&log).join("\n");
    eprintln!(
        "6 Mbit/s station, fast_start_rate {rate}: video frames of -t 8 (round, MMSH, RTSP/TCP) \
         {decoded:?}; skips in /metrics: {skips}\n{sessions}"
    );
    for (round, m, r) in &decoded {
        assert!(
            *m >= 195 && *r >= 195,
            "round {round}: FFmpeg decoded {m} (MMSH) and {r} (RTSP/TCP) video frames of 8 s \
             at 25 frames/s"
        );
    }
    assert_eq!(skips, 0.0, "clients skipped at fast_start_rate {rate}");
    // Each FFmpeg hung up by itself after its 8 s (resetting, with data in flight): those are
    // clients that left, not clients the server dropped.
    assert_eq!(
        (leaves, drops),
        (4.0, 0.0),
        "leaves and drops in /metrics\n{metrics}"
    );
}

#[test]
fn a_6_mbit_station_at_fast_start_rate_1_plays_without_skips() {
    if !support::require_private_netns() {
        return;
    }
    six_mbit_station_at_rate("1");
}

#[test]
fn a_6_mbit_station_at_fast_start_rate_16_plays_without_skips() {
    if !support::require_private_netns() {
        return;
    }
    six_mbit_station_at_rate("16");
}
