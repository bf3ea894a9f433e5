//! Live stations fed by an encoder's push, end to end: `asfcast run` with a `push` station
//! whose fallback is the demo slate, FFmpeg pushing `demo.asf` (`-f asf_stream`, the lenient
//! one-chunked-POST form; with Basic and Digest credentials), and the real players —
//! FFmpeg over mmsh/mmst/rtsp, VLC, libmms, `asfcast recv` from the multicast — asserting on
//! what they decoded. Then the failover (the encoder killed, the slate, the encoder back)
//! under one connected FFmpeg mmsh player; a second pusher refused; an in-repo [MS-WMHTTP]
//! client (PushSetup, PushStart with the spec's 4-byte chunks, a `$C` header change, a TCP
//! drop mid-packet and a resume by push-id); hostile pushes.
//!
//! Multicast is sent (TTL 0, lo) only inside `tests/netns-run`.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::http::push::framing::{write_chunk, Layout};
use support::push::{parts, push_start, response_head, send_packets, write_push_start};
use support::{bounded, Daemon, TempDir};

const USER: &str = "enc";
const PASS: &str = "s3cret-push";
const REALM: &str = "push";

struct Box_ {
    _dir: TempDir,
    dir: PathBuf,
    daemon: Daemon,
    http: SocketAddr,
    mms: SocketAddr,
    rtsp: SocketAddr,
}

/// Starts the daemon with one station `live`: `source` is the YAML under `source:` (after
/// `type: push`), `multicast` adds the station's group on lo (netns only).
fn start(tag: &str, source: &str, multicast: bool) -> Box_ {
    let dir = TempDir::new(tag);
    let path = dir.path().to_path_buf();
    let listen = support::Listen::three().write(&path, "limits:\n  idle_timeout: 10s\n");
    let mc = if multicast {
        let port = support::free_udp_port();
        format!(
            "multicast:\n  group: 239.255.42.50\n  port: {port}\n  interface: lo\n  ttl: 0\n  \
             fec_span: 10\n  beacon_interval: 1s\n"
        )
    } else {
        String::new()
    };
    std::fs::write(
        path.join("live.yaml"),
        format!("name: live\nsource:\n  type: push\n{source}{mc}"),
    )
    .unwrap();
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(listen.http(), Duration::from_secs(10));
    Box_ {
        _dir: dir,
        dir: path,
        daemon,
        http: listen.http(),
        mms: listen.mms(),
        rtsp: listen.rtsp(),
    }
}

fn slate() -> PathBuf {
    support::repo_root().join("station-configs/media/slate.asf")
}

/// The demo station's source block: the slate as fallback and header template.
fn with_slate() -> String {
    format!(
        "  fallback: [{}]\n  stall_timeout: 2s\n  header_template: {}\n",
        slate().display(),
        slate().display()
    )
}

/// FFmpeg pushing demo.asf in a loop to `url` (`extra` before the URL).
fn pusher(name: &str, url: &str, extra: &[&str]) -> Daemon {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(support::demo_media())
        .args(["-c", "copy", "-f", "asf_stream"])
        .args(["-content_type", "application/x-wms-pushstart"])
        .args(extra)
        .arg(url);
    Daemon::spawn(name, cmd)
}

/// One FFmpeg push of the first `seconds` of demo.asf, to its end.
fn ffmpeg_push_once(url: &str, seconds: u32) -> std::process::Output {
    let mut cmd = bounded(Duration::from_secs(20), "ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-t",
    ])
    .arg(seconds.to_string())
    .arg("-i")
    .arg(support::demo_media())
    .args(["-c", "copy", "-f", "asf_stream"])
    .args(["-content_type", "application/x-wms-pushstart"])
    .arg(url);
    cmd.output().unwrap()
}

fn push_url(b: &Box_, creds: Option<&str>) -> String {
    match creds {
        Some(c) => format!("http://{c}@{}/live", b.http),
        None => format!("http://{}/live", b.http),
    }
}

fn wait_live(b: &mut Box_) {
    assert!(
        b.daemon
            .wait_for_stderr("live source back at a key frame", Duration::from_secs(15)),
        "{}",
        b.daemon.stderr()
    );
}

/// FFmpeg decodes `url` for `seconds`: frames per stream index and the dts of each, in order.
fn ffmpeg_play(url: &str, seconds: u32, extra: &[&str]) -> HashMap<String, Vec<i64>> {
    let limit = Duration::from_secs(u64::from(seconds) + 40);
    let mut cmd = bounded(limit, "ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(extra)
        .args(["-i", url, "-t"])
        .arg(seconds.to_string())
        .args(["-f", "framemd5", "-"]);
    let out = support::run_bounded(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"));
    let mut frames: HashMap<String, Vec<i64>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if let (Some(s), Some(dts)) = (f.first(), f.get(1).and_then(|d| d.parse().ok())) {
            frames.entry(s.to_string()).or_default().push(dts);
        }
    }
    frames
}

fn counts(f: &HashMap<String, Vec<i64>>) -> (usize, usize) {
    (
        f.get("0").map_or(0, Vec::len),
        f.get("1").map_or(0, Vec::len),
    )
}

fn file_frames(p: &Path) -> (u64, u64) {
    (
        support::ffprobe_count_frames(p, "v:0").unwrap_or(0),
        support::ffprobe_count_frames(p, "a:0").unwrap_or(0),
    )
}

fn nobody_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let _ = Command::new("chmod").arg("0777").arg(&d).status();
    let _ = Command::new("chmod").arg("0755").arg(parent).status();
    d
}

/// VLC (as nobody) dumps `url` for `secs` seconds into a file; returns its frames.
fn vlc_dump(b: &Box_, url: &str, secs: u64) -> (u64, u64) {
    let home = nobody_dir(&b.dir, "vlc");
    let out = home.join("out.asf");
    let mut cmd = bounded(Duration::from_secs(secs), "setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg("env")
        .arg(format!("HOME={}", home.display()))
        .args(["cvlc", "-I", "dummy", "--no-video-title-show", url])
        .arg("--demux=dump")
        .arg(format!("--demuxdump-file={}", out.display()));
    let _ = support::run_bounded(&mut cmd, Duration::from_secs(secs));
    file_frames(&out)
}

fn libmms_read(b: &Box_, url: &str, bytes: u32) -> (u64, u64) {
    let bin = support::libmms_client(&b.dir);
    let out = b.dir.join("libmms.asf");
    let mut cmd = bounded(Duration::from_secs(60), &bin);
    cmd.arg(url).arg(&out).arg(bytes.to_string());
    support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    file_frames(&out)
}

fn assert_no_panic(b: &Box_) {
    assert!(
        !b.daemon.stderr().contains("panicked"),
        "{}",
        b.daemon.stderr()
    );
}

// ---------------------------------------------------------------------------
// FFmpeg pushes; every player decodes

#[test]
fn ffmpeg_push_is_played_over_mmsh_mmst_rtsp_vlc_libmms_and_multicast() {
    if !support::require_private_netns() {
        return;
    }
    let mut b = start("push-players", &with_slate(), true);
    let nsc = b.dir.join("announce/live.nsc");
    let before = std::fs::read(&nsc).unwrap_or_default();
    assert!(
        !before.is_empty(),
        "the header template's .nsc exists before the push"
    );
    let mut enc = pusher("push-players-enc", &push_url(&b, None), &[]);
    wait_live(&mut b);

    let mut results = Vec::new();
    for (name, url, extra) in [
        ("mmsh", format!("mmsh://{}/live", b.http), vec![]),
        ("mmst", format!("mmst://{}/live", b.mms), vec![]),
        (
            "rtsp",
            format!("rtsp://{}/live", b.rtsp),
            vec!["-rtsp_transport", "tcp"],
        ),
    ] {
        let f = ffmpeg_play(&url, 5, &extra);
        let (v, a) = counts(&f);
        eprintln!("ffmpeg {name} -t 5 of the pushed station: {v} video, {a} audio frames");
        results.push((name, v, a));
    }
    for (name, v, a) in &results {
        // 5 s of 25 fps video and 44.1 kHz WMA (about 21.5 frames/s).
        assert!(*v >= 110 && *a >= 90, "{name}: video {v}, audio {a}");
    }
    let (v, a) = vlc_dump(&b, &format!("mmsh://{}/live", b.http), 8);
    eprintln!("VLC mmsh:// dump of the pushed station: {v} video, {a} audio frames");
    assert!(v >= 100 && a >= 80, "VLC: video {v}, audio {a}");
    let (v, a) = libmms_read(&b, &format!("mmsh://{}/live", b.http), 400_000);
    eprintln!("libmms mmsh:// 400000 bytes of the pushed station: {v} video, {a} audio frames");
    assert!(v >= 100 && a >= 80, "libmms: video {v}, audio {a}");

    // The multicast: the .nsc now lists the live Format too; asfcast recv joins it.
    let after = std::fs::read(&nsc).unwrap();
    assert_ne!(before, after, "the .nsc is rewritten for the pushed header");
    let out = b.dir.join("recv.asf");
    let mut cmd = bounded(Duration::from_secs(30), support::asfcast_bin());
    cmd.arg("recv")
        .arg(&nsc)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "6"]);
    let r =
        support::run_bounded(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    let (v, a) = file_frames(&out);
    eprintln!(
        "asfcast recv 6 s of the multicast: {v} video, {a} audio frames ({})",
        String::from_utf8_lossy(&r.stdout).trim()
    );
    assert!(v >= 100 && a >= 80, "recv: video {v}, audio {a}");

    // Live all along: the encoder never went away.
    let log = b.daemon.stderr();
    assert_eq!(
        log.matches("live source back at a key frame").count(),
        1,
        "{log}"
    );
    assert!(enc.is_running(), "the encoder stopped: {}", enc.stderr());
    assert_no_panic(&b);
    enc.signal("KILL").ok();
}

#[test]
fn ffmpeg_pushes_with_basic_and_digest_credentials_and_without_is_refused() {
    // The users file, written by `asfcast passwd`.
    let keys = TempDir::new("push-auth-users");
    let users = keys.path().join("pushers.digest");
    let mut child = Command::new(support::asfcast_bin())
        .arg("passwd")
        .arg(&users)
        .arg(USER)
        .args(["--realm", REALM])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASS}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let source = format!(
        "  auth:\n    realm: {REALM}\n    users_file: {}\n",
        users.display()
    );
    let mut b = start("push-auth", &source, false);

    // No credentials: 401, FFmpeg gives up.
    let out = ffmpeg_push_once(&push_url(&b, None), 2);
    eprintln!(
        "push without credentials: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        b.daemon
            .wait_for_stderr("push refused: not authorized", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    assert!(!b.daemon.stderr().contains("push started"));

    let creds = format!("{USER}:{PASS}");
    for (scheme, extra) in [("Basic", vec!["-auth_type", "basic"]), ("Digest", vec![])] {
        let enc = pusher(
            &format!("push-auth-{scheme}"),
            &push_url(&b, Some(&creds)),
            &extra,
        );
        let n = b
            .daemon
            .stderr()
            .matches("live source back at a key frame")
            .count();
        let deadline = Instant::now() + Duration::from_secs(15);
        while b
            .daemon
            .stderr()
            .matches("live source back at a key frame")
            .count()
            == n
        {
            assert!(
                Instant::now() < deadline,
                "{scheme}: {}\n{}",
                b.daemon.stderr(),
                enc.stderr()
            );
            thread::sleep(Duration::from_millis(100));
        }
        let f = ffmpeg_play(&format!("mmsh://{}/live", b.http), 4, &[]);
        let (v, a) = counts(&f);
        eprintln!("pushed with {scheme}: ffmpeg mmsh -t 4 decoded {v} video, {a} audio frames");
        assert!(v >= 85 && a >= 70, "{scheme}: video {v}, audio {a}");
        enc.signal("KILL").ok();
        let _ = enc.stop();
        assert!(
            b.daemon
                .wait_for_stderr("live feed ended", Duration::from_secs(10)),
            "{}",
            b.daemon.stderr()
        );
    }
    let log = b.daemon.stderr();
    assert!(log.contains("scheme=\"basic\""), "{log}");
    assert!(log.contains("scheme=\"digest qop=auth\""), "{log}");
    assert!(!log.contains(PASS), "a credential in the log");
    assert_no_panic(&b);
}

// ---------------------------------------------------------------------------
// Failover

#[test]
fn encoder_killed_and_back_players_stay_on_and_time_never_goes_back() {
    let mut b = start("push-failover", &with_slate(), false);
    let url = push_url(&b, None);
    let enc = pusher("push-failover-enc1", &url, &[]);
    wait_live(&mut b);
    // One player per protocol, connected through both switches.
    let players: Vec<_> = [
        ("mmsh", format!("mmsh://{}/live", b.http), vec![]),
        ("mmst", format!("mmst://{}/live", b.mms), vec![]),
        (
            "rtsp",
            format!("rtsp://{}/live", b.rtsp),
            vec!["-rtsp_transport", "tcp"],
        ),
    ]
    .into_iter()
    .map(|(name, url, extra)| (name, thread::spawn(move || ffmpeg_play(&url, 22, &extra))))
    .collect();
    thread::sleep(Duration::from_secs(6));
    // Killed mid-stream (its POST body ends wherever the kill finds it).
    enc.signal("KILL").unwrap();
    let _ = enc.stop();
    assert!(
        b.daemon
            .wait_for_stderr("playing the fallback", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    thread::sleep(Duration::from_secs(5));
    let enc2 = pusher("push-failover-enc2", &url, &[]);
    for (name, player) in players {
        let frames = player.join().unwrap();
        let (v, a) = counts(&frames);
        eprintln!(
            "ffmpeg {name} player over live → slate → live, -t 22: {v} video, {a} audio frames"
        );
        // 22 s of 25 fps video and ~21.5 audio frames/s, with no disconnect in between.
        assert!(v >= 480, "{name}: video frames {v}");
        assert!(a >= 400, "{name}: audio frames {a}");
        for (stream, dts) in &frames {
            let back = dts.windows(2).filter(|w| w[1] < w[0]).count();
            assert_eq!(
                back, 0,
                "{name} stream {stream}: {back} timestamps went back"
            );
        }
    }
    let log = b.daemon.stderr();
    assert_eq!(
        log.matches("live source back at a key frame").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("incompatible header"), "{log}");
    assert_eq!(
        log.matches("MMSH play started").count(),
        1,
        "one connection: {log}"
    );
    enc2.signal("KILL").ok();
    assert_no_panic(&b);
}

#[test]
fn a_second_pusher_is_refused_and_the_first_goes_on() {
    let mut b = start("push-second", &with_slate(), false);
    let url = push_url(&b, None);
    let mut first = pusher("push-second-1", &url, &[]);
    wait_live(&mut b);
    let out = ffmpeg_push_once(&url, 3);
    eprintln!(
        "second pusher: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        b.daemon
            .wait_for_stderr("already fed by", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    let f = ffmpeg_play(&format!("mmsh://{}/live", b.http), 4, &[]);
    let (v, a) = counts(&f);
    eprintln!("after the refused second pusher: {v} video, {a} audio frames");
    assert!(v >= 85 && a >= 70, "video {v}, audio {a}");
    let log = b.daemon.stderr();
    assert!(log.contains("status=409"), "{log}");
    assert!(
        !log.contains("live feed ended"),
        "the first pusher was touched: {log}"
    );
    assert!(first.is_running());
    first.signal("KILL").ok();
    assert_no_panic(&b);
}

// ---------------------------------------------------------------------------
// An in-repo [MS-WMHTTP] encoder

#[test]
fn wmhttp_client_setup_start_header_change_drop_and_resume() {
    let mut b = start("push-wmhttp", "", false);
    let addr = b.http;
    // The .nsc of a push station without template or fallback: 503 until a header is known.
    // (No multicast here, so the route is the .asx's sibling: a station without multicast has
    // no .nsc; the check runs against a station with multicast in the players test.)
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = "AutoDestroy: 1\r\n";
    write!(
        s,
        "POST /live HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: WMEncoder/12.0.7601.17514\r\n\
         Content-Type: application/x-wms-pushsetup\r\nX-Accept-Authentication: Negotiate, NTLM, Digest\r\n\
         Cookie: push-id=0\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let head = response_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    assert!(head.contains("Server: Cougar/9"), "{head}");
    let push_id = support::push::push_id(&head);
    assert!(push_id.len() >= 16 && push_id != "0", "{push_id}");

    // PushStart on the same connection (§3.2.5.1: it stays open): `$H` and 3 s of `$D` in
    // the spec's 4-byte layout.
    let (head_a, packets_a) = parts(&support::demo_media());
    let (head_b, packets_b) = parts(&support::demo_media_b());
    write_push_start(&mut s, addr, &push_id);
    s.write_all(&write_chunk(Layout::Spec, b'H', &head_a, 0).unwrap())
        .unwrap();
    let mut at = send_packets(&mut s, &packets_a, 0, 48);
    assert!(
        b.daemon
            .wait_for_stderr("live source back at a key frame", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    let f = ffmpeg_play_while(&b, || at = send_packets(&mut s, &packets_a, at, 64));
    eprintln!(
        "WMHTTP push, demo.asf: ffmpeg mmsh decoded {:?}",
        counts(&f)
    );
    assert!(counts(&f).0 >= 60, "{:?}", counts(&f));

    // `$E` (Reason 1) then `$C`: a header that really changed (demo-b: another size).
    s.write_all(&write_chunk(Layout::Spec, b'E', &1u32.to_le_bytes(), 0).unwrap())
        .unwrap();
    let mut change = 0u32.to_le_bytes().to_vec();
    change.extend_from_slice(&head_b);
    s.write_all(&write_chunk(Layout::Spec, b'C', &change, 0).unwrap())
        .unwrap();
    let mut at_b = send_packets(&mut s, &packets_b, 0, 48);
    let size = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(format!("mmsh://{}/live", b.http))
        .output()
        .unwrap();
    at_b = send_packets(&mut s, &packets_b, at_b, 16);
    let size = String::from_utf8_lossy(&size.stdout).trim().to_string();
    eprintln!("after $C: a new player sees {size}");
    assert_eq!(size, "176,144");

    // The TCP connection drops in the middle of a packet; the encoder resumes by push-id.
    let chunk = write_chunk(Layout::Spec, b'D', &packets_b[at_b % packets_b.len()], 0).unwrap();
    s.write_all(&chunk[..chunk.len() / 2]).unwrap();
    drop(s);
    assert!(
        b.daemon
            .wait_for_stderr("may resume with its push-id", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    // Nobody else may push meanwhile.
    let mut other = TcpStream::connect(addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        other,
        "POST /live HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-wms-pushstart\r\n\
         Content-Length: 2147483647\r\n\r\n"
    )
    .unwrap();
    let refused = response_head(&mut other);
    assert!(refused.starts_with("HTTP/1.1 409"), "{refused}");
    let mut s = push_start(addr, &push_id);
    // A resumed session may go on with `$D` (the header is known).
    at_b = send_packets(&mut s, &packets_b, at_b + 1, 8);
    assert!(
        b.daemon
            .wait_for_stderr("resumed=true", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    let f = ffmpeg_play_while(&b, || at_b = send_packets(&mut s, &packets_b, at_b, 64));
    eprintln!("after the resume: ffmpeg mmsh decoded {:?}", counts(&f));
    assert!(
        counts(&f).0 >= 30,
        "{:?}\n{}",
        counts(&f),
        b.daemon.stderr()
    );
    // `$E` Reason 0: done.
    s.write_all(&write_chunk(Layout::Spec, b'E', &0u32.to_le_bytes(), 0).unwrap())
        .unwrap();
    drop(s);
    assert!(
        b.daemon
            .wait_for_stderr("live feed ended", Duration::from_secs(10)),
        "{}",
        b.daemon.stderr()
    );
    assert_no_panic(&b);
}

/// Runs an ffmpeg mmsh player for 3 s in a thread while `feed` pushes on this one.
fn ffmpeg_play_while(b: &Box_, mut feed: impl FnMut()) -> HashMap<String, Vec<i64>> {
    let url = format!("mmsh://{}/live", b.http);
    let player = thread::spawn(move || ffmpeg_play(&url, 3, &[]));
    while !player.is_finished() {
        feed();
    }
    player.join().unwrap()
}

// ---------------------------------------------------------------------------
// Hostile pushes

#[test]
fn hostile_pushes_are_refused_and_the_station_stays_on_its_slate() {
    if !support::require_private_netns() {
        return;
    }
    let mut b = start("push-hostile", &with_slate(), false);
    let addr = b.http;
    let (head, packets) = parts(&support::demo_media());
    let h = write_chunk(Layout::Wmsp, b'H', &head, 0).unwrap();
    let mut big = packets[0].clone();
    big.resize(5000, 0);
    let mut oversized_header = head.clone();
    oversized_header.resize(40_000, 0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage framing",
            b"\x00\x01\x02 not a push at all".to_vec(),
        ),
        (
            "$D before $H",
            write_chunk(Layout::Wmsp, b'D', &packets[0], 1).unwrap(),
        ),
        ("a packet past the packet size", {
            let mut v = h.clone();
            v.extend(write_chunk(Layout::Wmsp, b'D', &big, 1).unwrap());
            v
        }),
        (
            "a header over the limit",
            write_chunk(Layout::Wmsp, b'H', &oversized_header, 0).unwrap(),
        ),
    ];
    for (name, body) in cases {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /live HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\
             Content-Type: application/x-wms-pushstart\r\n\r\n{:x}\r\n",
            body.len()
        )
        .unwrap();
        let _ = s.write_all(&body);
        let _ = s.write_all(b"\r\n");
        let answer = response_head(&mut s);
        eprintln!("{name}: {}", answer.lines().next().unwrap_or(""));
        assert!(answer.starts_with("HTTP/1.1 400"), "{name}: {answer}");
    }
    // A chunked body whose chunk-size line is garbage.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /live HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\
         Content-Type: application/x-wms-pushstart\r\n\r\nzzzz\r\n"
    )
    .unwrap();
    assert!(response_head(&mut s).starts_with("HTTP/1.1 400"));
    let log = b.daemon.stderr();
    assert!(
        log.matches("push refused station=live peer=127.0.0.1:")
            .count()
            >= 5,
        "{log}"
    );
    // The station is up on its slate: a player decodes it.
    let f = ffmpeg_play(&format!("mmsh://{}/live", b.http), 3, &[]);
    let (v, a) = counts(&f);
    eprintln!("the slate after the hostile pushes: {v} video, {a} audio frames");
    assert!(v >= 60 && a >= 50, "video {v}, audio {a}");
    // FFmpeg pushes fine afterwards.
    let enc = pusher("push-hostile-enc", &push_url(&b, None), &[]);
    wait_live(&mut b);
    enc.signal("KILL").ok();
    assert_no_panic(&b);
}

#[test]
fn nsc_is_503_until_a_header_then_lists_it() {
    if !support::require_private_netns() {
        return;
    }
    // Neither template nor fallback: nothing to announce until the encoder comes.
    let mut b = start("push-nsc", "", true);
    let get = |addr: SocketAddr| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /live.nsc HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let r = get(b.http);
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(r.contains("Retry-After:"), "{r}");
    let enc = pusher("push-nsc-enc", &push_url(&b, None), &[]);
    wait_live(&mut b);
    thread::sleep(Duration::from_millis(300));
    let r = get(b.http);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("Format1="), "{r}");
    enc.signal("KILL").ok();
    assert_no_panic(&b);
}

#[test]
fn a_stalled_encoder_gives_way_to_the_slate_and_comes_back_at_a_key_frame() {
    // stall_timeout 2 s; the encoder keeps its connection but sends nothing for 5 s.
    let mut b = start("push-stall", &with_slate(), false);
    let (head, packets) = parts(&support::demo_media());
    let mut s = push_start(b.http, "0");
    s.write_all(&write_chunk(Layout::Spec, b'H', &head, 0).unwrap())
        .unwrap();
    let mut at = send_packets(&mut s, &packets, 0, 32);
    wait_live(&mut b);
    let url = format!("mmsh://{}/live", b.http);
    let player = thread::spawn(move || ffmpeg_play(&url, 14, &[]));
    at = send_packets(&mut s, &packets, at, 48);
    // The stall: nothing for 5 s, the connection open.
    thread::sleep(Duration::from_secs(5));
    assert!(
        b.daemon
            .stderr()
            .contains("sent nothing within stall_timeout"),
        "{}",
        b.daemon.stderr()
    );
    // Back from the next loop of the file: its first packet starts a key frame.
    let next_loop = at.div_ceil(packets.len()) * packets.len();
    send_packets(&mut s, &packets, next_loop, 112);
    let frames = player.join().unwrap();
    let (v, a) = counts(&frames);
    eprintln!(
        "ffmpeg mmsh player over live → stall → slate → live, -t 14: {v} video, {a} audio frames"
    );
    assert!(v >= 300 && a >= 250, "video {v}, audio {a}");
    for (stream, dts) in &frames {
        assert!(
            dts.windows(2).all(|w| w[1] >= w[0]),
            "stream {stream}: a timestamp went back"
        );
    }
    let log = b.daemon.stderr();
    assert_eq!(
        log.matches("live source back at a key frame").count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches("MMSH play started").count(), 1, "{log}");
    assert_no_panic(&b);
}
