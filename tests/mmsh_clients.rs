//! MMS over HTTP end to end: `asfcast run` with a unicast-only station on 127.0.0.1, and the
//! real clients — FFmpeg/ffprobe (`mmsh://`), VLC (`mmsh://`, and `mms://` rolling over to
//! HTTP), a libmms C client — each asserting on what the client decoded. Then hostile and
//! slow clients: a 1 MB header line and a traversal path are refused and the daemon keeps
//! serving; a client that stops reading is dropped after the stall timeout while another keeps
//! the station's rate; stopping the daemon ends a stream with `$E`.
//!
//! Plain HTTP on the same station URL: players that do not speak MMS over HTTP — ffprobe and
//! mpv (FFmpeg's `http://`), GStreamer (`souphttpsrc`, `playbin`), VLC `http://` — get a
//! plain ASF stream and decode it.
//!
//! No multicast: runs anywhere, only loopback traffic.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::rewrite::strip_padding;
use asfcast::asf::AsfReader;
use asfcast::http::mmsh::{ChunkReader, ChunkType};
use support::{bounded, Daemon, TempDir};

const STATION: &str = "demo";

/// FFmpeg's Play request shape (run-on last Pragma included).
const PLAY: &str = "GET /demo HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\nPragma: no-cache,rate=1.000000,request-context=2\r\n\
Pragma: xPlayStrm=1\r\nPragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\n\
Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close\r\n\r\n";

struct Setup {
    _dir: TempDir,
    dir: PathBuf,
    daemon: Daemon,
    addr: SocketAddr,
}

/// Starts the daemon with the HTTP listener on a free port (MMS and RTSP off) and the demo
/// station, unicast only. `limits` is extra YAML under `limits:`.
fn start(tag: &str, limits: &str) -> Setup {
    let dir = TempDir::new(tag);
    let path = dir.path().to_path_buf();
    let addr = support::Listen::new()
        .with_http()
        .write(
            &path,
            &format!("limits:\n  handshake_timeout: 3s\n{limits}"),
        )
        .http();
    std::fs::write(
        path.join("demo.yaml"),
        format!(
            "name: {STATION}\nsource:\n  type: playlist\n  files: [{}]\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(addr, Duration::from_secs(10));
    // The station needs its first header before a Describe can be answered.
    assert!(
        daemon.wait_for_stderr("playing", Duration::from_secs(10)),
        "{}",
        daemon.stderr()
    );
    Setup {
        _dir: dir,
        dir: path,
        daemon,
        addr,
    }
}

fn url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{addr}/{STATION}")
}

/// Frames per stream index in ffmpeg `-f framemd5` output.
fn framemd5_counts(text: &str) -> (usize, usize) {
    let count = |idx: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(',').next().map(str::trim) == Some(idx))
            .count()
    };
    (count("0"), count("1"))
}

/// (video, audio) frames ffprobe decodes from a file or URL, reading at most `secs` seconds.
fn ffprobe_frames(input: &str, secs: Option<u32>) -> (u64, u64) {
    let mut cmd = bounded(Duration::from_secs(60), "ffprobe");
    cmd.args(["-v", "error"]);
    if let Some(s) = secs {
        cmd.args(["-read_intervals", &format!("%+{s}")]);
    }
    cmd.args([
        "-count_frames",
        "-show_entries",
        "stream=codec_type,nb_read_frames",
        "-of",
        "csv=p=0",
        input,
    ]);
    let out =
        support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |kind: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{kind},")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {kind} count in {text:?}"))
    };
    (get("video"), get("audio"))
}

#[test]
fn ffmpeg_and_ffprobe_decode_the_station_over_mmsh() {
    let mut s = start("mmsh-ffmpeg", "");
    let mut cmd = bounded(Duration::from_secs(60), "ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i", &url("mmsh", s.addr)])
        .args(["-t", "5", "-map", "0", "-f", "framemd5", "-"]);
    let out = support::run_bounded(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.daemon.stderr()));
    let (video, audio) = framemd5_counts(&String::from_utf8_lossy(&out.stdout));
    eprintln!("ffmpeg -t 5 decoded video={video} audio={audio}");
    // 5 s of 25 fps video and 44.1 kHz WMA (2048 samples a frame: 21.5 frames/s).
    assert!(video >= 115, "video frames {video}");
    assert!(audio >= 95, "audio frames {audio}");

    let (video, audio) = ffprobe_frames(&url("mmsh", s.addr), Some(4));
    eprintln!("ffprobe (4 s) decoded video={video} audio={audio}");
    assert!(video >= 80, "video frames {video}");
    assert!(audio >= 60, "audio frames {audio}");

    assert!(s.daemon.is_running());
    let log = s.daemon.stderr();
    assert!(log.contains("MMSH play started"), "{log}");
    assert!(log.contains("NSPlayer/4.1.0.3856"), "{log}");
}

/// Runs cvlc as nobody for `secs` seconds, dumping `input` to `out`.
fn vlc_dump(input: &str, out: &Path, home: &Path, secs: u64) {
    let mut cmd = bounded(Duration::from_secs(secs), "setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg("env")
        .arg(format!("HOME={}", home.display()))
        .args(["cvlc", "-I", "dummy", "--no-video-title-show", input])
        .arg("--demux=dump")
        .arg(format!("--demuxdump-file={}", out.display()));
    // VLC plays a live stream until it is stopped: the timeout is the normal end.
    let _ = support::run_bounded(&mut cmd, Duration::from_secs(secs));
}

fn nobody_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let _ = Command::new("chmod").arg("0777").arg(&d).status();
    let _ = Command::new("chmod").arg("0755").arg(parent).status();
    d
}

/// VLC (as nobody) dumps `scheme://` for `secs` seconds; the dump must hold more than 100 kB.
/// Returns its size and the (video, audio) frames ffprobe decodes from it.
fn vlc_dump_and_probe(s: &Setup, scheme: &str, secs: u64) -> (u64, u64, u64) {
    let home = nobody_dir(&s.dir, "vlc");
    let out = home.join("out.asf");
    vlc_dump(&url(scheme, s.addr), &out, &home, secs);
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 100_000,
        "VLC dumped {size} bytes\n{}",
        s.daemon.stderr()
    );
    let (video, audio) = ffprobe_frames(out.to_str().unwrap(), None);
    (size, video, audio)
}

#[test]
fn vlc_dumps_the_station_over_mmsh_and_ffprobe_decodes_it() {
    let mut s = start("mmsh-vlc", "");
    let (size, video, audio) = vlc_dump_and_probe(&s, "mmsh", 8);
    eprintln!("VLC mmsh:// dump ({size} bytes) decoded video={video} audio={audio}");
    assert!(video >= 100, "video frames {video}");
    assert!(audio >= 80, "audio frames {audio}");
    assert!(s.daemon.stderr().contains("NSPlayer/7.10.0.3059"));
    assert!(s.daemon.is_running());
}

/// VLC's `mms://` tries MMS over TCP, then over UDP (both on the URL's port), then MMS over
/// HTTP on that same port (modules/access/mms/mms.c: MMSTUOpen, then MMSHOpen with the same
/// URL). With the MMS listener off and the HTTP listener on the URL's port, the MMS attempts
/// reach the HTTP listener, get a 400, and VLC rolls over to HTTP.
#[test]
fn vlc_mms_url_rolls_over_to_http() {
    let mut s = start("mmsh-vlc-rollover", "");
    let (size, video, audio) = vlc_dump_and_probe(&s, "mms", 10);
    eprintln!("VLC mms:// (rolled over) dump ({size} bytes) decoded video={video} audio={audio}");
    assert!(video >= 75, "video frames {video}");
    assert!(audio >= 60, "audio frames {audio}");
    let log = s.daemon.stderr();
    assert!(log.contains("MMSH play started"), "{log}");
    assert!(s.daemon.is_running());
}

#[test]
fn libmms_reads_the_station_and_ffprobe_decodes_it() {
    let mut s = start("mmsh-libmms", "");
    let bin = support::libmms_client(&s.dir);
    let out = s.dir.join("libmms.asf");
    let mut cmd = bounded(Duration::from_secs(60), &bin);
    cmd.arg(url("mmsh", s.addr)).arg(&out).arg("400000");
    let run = support::run_bounded(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.daemon.stderr()));
    let report = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(report.contains("packet=3200"), "{report}");
    assert!(report.contains("seekable=0"), "live: {report}");
    let (video, audio) = ffprobe_frames(out.to_str().unwrap(), None);
    eprintln!(
        "libmms: {} → ffprobe video={video} audio={audio}",
        report.trim()
    );
    assert!(video >= 100, "video frames {video}");
    assert!(audio >= 80, "audio frames {audio}");
    assert!(s.daemon.is_running());
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(request);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

/// Describe over a raw socket: the status line and the `$H` chunk.
fn describe(addr: SocketAddr) -> (String, Vec<u8>) {
    let out = exchange(
        addr,
        b"GET /demo HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Connection: Close\r\n\r\n",
    );
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    (
        String::from_utf8_lossy(&out[..at]).into_owned(),
        out[at..].to_vec(),
    )
}

#[test]
fn hostile_requests_are_refused_and_the_daemon_stays_healthy() {
    let mut s = start("mmsh-hostile", "");
    // A 1 MB header line.
    let mut big = b"GET /demo HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b"\r\n\r\n");
    let out = exchange(s.addr, &big);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 431 "),
        "{}",
        text.chars().take(200).collect::<String>()
    );
    // Path traversal.
    let out = exchange(
        s.addr,
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(!text.contains("root:"), "{text}");
    // Binary garbage (what an MMS client sends to this port).
    let out = exchange(s.addr, &[0x01, 0, 0, 0, 0xce, 0xfa, 0x0b, 0xb0, 0, 0, 0, 0]);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400 "));
    // Still serving.
    let (head, body) = describe(s.addr);
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let mut r = ChunkReader::new();
    r.push(&body);
    let c = r.next_chunk().unwrap().expect("a $H chunk");
    assert_eq!(c.kind, ChunkType::Header);
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
}

/// Stripped ASF bytes per second of the demo file: what a client that keeps up receives.
fn station_rate() -> f64 {
    let mut r = AsfReader::open(&support::demo_media()).unwrap();
    let mut bytes = 0u64;
    let mut last = 0u32;
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        last = p.send_time;
        bytes += strip_padding(&p.parse().unwrap()).len() as u64 + 12;
    }
    bytes as f64 / (f64::from(last) / 1000.0)
}

/// Plays over a raw socket with a tiny receive buffer and never reads.
fn stalled_client(addr: SocketAddr) -> socket2::Socket {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_recv_buffer_size(2048).unwrap();
    s.connect(&addr.into()).unwrap();
    let mut w: &Socket = &s;
    w.write_all(PLAY.as_bytes()).unwrap();
    s
}

#[test]
fn a_client_that_stops_reading_is_dropped_while_another_keeps_its_rate() {
    let mut s = start(
        "mmsh-slow",
        "  idle_timeout: 5s\n  client_backlog_bytes: 64KiB\n",
    );
    // The good client reads everything and counts the bytes it gets.
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let mut good = TcpStream::connect(s.addr).unwrap();
    good.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    good.write_all(PLAY.as_bytes()).unwrap();
    let reader = {
        let (stop, got) = (stop.clone(), got.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                match good.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        got.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        })
    };
    // Let the good client's fast start finish, then measure from here.
    thread::sleep(Duration::from_secs(2));
    let bad = stalled_client(s.addr);
    let t0 = Instant::now();
    let b0 = got.load(Ordering::Relaxed);
    assert!(
        s.daemon
            .wait_for_stderr("client stalled", Duration::from_secs(40)),
        "{}",
        s.daemon.stderr()
    );
    // Keep measuring a little past the drop.
    thread::sleep(Duration::from_secs(1));
    let elapsed = t0.elapsed().as_secs_f64();
    let bytes = got.load(Ordering::Relaxed) - b0;
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let ratio = bytes as f64 / (station_rate() * elapsed);
    eprintln!("good client: {bytes} bytes while the other stalled, {ratio:.2} of the station rate");
    assert!(ratio > 0.8 && ratio < 1.3, "ratio {ratio}");
    // The stalled client's connection was really closed: reading it ends (EOF or reset).
    let mut bad = TcpStream::from(bad);
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    let end = bad.read_to_end(&mut sink);
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{end:?}"
    );
    let log = s.daemon.stderr();
    assert!(log.contains("client stalled"), "{log}");
    assert!(
        log.contains("packets skipped)"),
        "skipped forward first: {log}"
    );
    assert!(s.daemon.is_running());
}

#[test]
fn stopping_the_daemon_ends_a_stream_with_e() {
    let s = start("mmsh-stop", "");
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(PLAY.as_bytes()).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut all = Vec::new();
    while all.len() < 50_000 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        all.extend_from_slice(&buf[..n]);
    }
    s.daemon.signal("TERM").unwrap();
    let _ = c.read_to_end(&mut all);
    let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut r = ChunkReader::new();
    r.push(&all[at..]);
    let mut last = None;
    while let Some(ch) = r.next_chunk().unwrap() {
        last = Some(ch);
    }
    let last = last.unwrap();
    assert_eq!(
        (last.kind, last.location_or_reason),
        (ChunkType::End, 0),
        "{}",
        s.daemon.stderr()
    );
    assert_eq!(r.buffered(), 0);
}

#[test]
fn a_station_refuses_clients_beyond_its_max_clients() {
    let dir = TempDir::new("mmsh-max");
    let path = dir.path();
    let addr = support::Listen::new().with_http().write(path, "").http();
    std::fs::write(
        path.join("demo.yaml"),
        format!(
            "name: {STATION}\nsource:\n  type: playlist\n  files: [{}]\nunicast:\n  max_clients: 1\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(addr, Duration::from_secs(10));
    assert!(daemon.wait_for_stderr("playing", Duration::from_secs(10)));
    let play = |c: &mut TcpStream| -> String {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(PLAY.as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut first = TcpStream::connect(addr).unwrap();
    assert!(play(&mut first).starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(addr).unwrap();
    let refused = play(&mut second);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // The first one's leaving frees the place.
    drop(first);
    let mut third = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let mut c = TcpStream::connect(addr).unwrap();
        if play(&mut c).starts_with("HTTP/1.1 200") {
            third = Some(c);
            break;
        }
    }
    assert!(third.is_some(), "{}", daemon.stderr());
}

#[test]
fn timestamps_stay_monotonic_across_a_playlist_loop() {
    // The demo is 10 s and loops: 14 s of play crosses the restart. The station keeps one
    // continuous timeline, so ffmpeg's timestamps never go back and `-t` ends the run.
    let s = start("mmsh-loop", "");
    let mut cmd = bounded(Duration::from_secs(90), "ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i", &url("mmsh", s.addr)])
        .args(["-t", "14", "-map", "0", "-f", "framemd5", "-"]);
    let out = support::run_bounded(&mut cmd, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.daemon.stderr()));
    let text = String::from_utf8_lossy(&out.stdout);
    let (video, audio) = framemd5_counts(&text);
    assert!(video >= 330, "video frames {video}");
    assert!(audio >= 280, "audio frames {audio}");
    for stream in ["0", "1"] {
        let pts: Vec<i64> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(',').map(str::trim).collect::<Vec<_>>())
            .filter(|f| f.first() == Some(&stream))
            .filter_map(|f| f.get(2).and_then(|p| p.parse().ok()))
            .collect();
        assert!(
            pts.windows(2).all(|w| w[1] > w[0]),
            "stream {stream} pts go back: {:?}",
            pts.windows(2).find(|w| w[1] <= w[0])
        );
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("non monotonically"), "{err}");
}

// Plain HTTP: players that fetch `http://box/<station>` (the last entry of the .asx) without
// speaking MMS over HTTP get a plain ASF stream (src/http/plain_stream.rs); which requests are
// which: src/http/dialect.rs.

/// What mpv (FFmpeg's `http` protocol) sends for `http://127.0.0.1:PORT/demo`.
const LAVF_GET: &str = "GET /demo HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\n\
Range: bytes=0-\r\nConnection: close\r\nHost: 127.0.0.1\r\nIcy-MetaData: 1\r\n\r\n";

/// Sends `request` and reads the answer for `secs` seconds (a live stream does not end).
fn read_for(addr: SocketAddr, request: &[u8], secs: u64) -> (String, Vec<u8>) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    c.write_all(request).unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < end {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
    }
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    (
        String::from_utf8_lossy(&out[..at]).into_owned(),
        out[at..].to_vec(),
    )
}

#[test]
fn a_plain_http_get_gets_an_unframed_asf_stream_that_ffprobe_decodes() {
    let mut s = start("plain-ffprobe", "");
    let (head, body) = read_for(s.addr, LAVF_GET.as_bytes(), 4);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: video/x-ms-asf\r\n"), "{head}");
    assert!(head.contains("Cache-Control: no-cache\r\n"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert!(!body.starts_with(b"$H"), "no MMSH framing");
    // A plain ASF reader takes the body as a file of fixed-size packets.
    let mut r = AsfReader::new(&body[..]).expect("a plain ASF header");
    let size = r.packet_size();
    let mut packets = 0;
    while let Some(Ok(p)) = r.next_packet() {
        assert_eq!(p.bytes.len(), size);
        packets += 1;
    }
    assert!(packets >= 50, "{packets} packets of {size} bytes in 4 s");
    let file = s.dir.join("plain.asf");
    std::fs::write(&file, &body).unwrap();
    let (video, audio) = ffprobe_frames(file.to_str().unwrap(), None);
    eprintln!(
        "4 s of plain HTTP ({} bytes): video={video} audio={audio}",
        body.len()
    );
    assert!(video >= 60, "video frames {video}");
    assert!(audio >= 50, "audio frames {audio}");

    // ffprobe on the URL itself (FFmpeg's `http` protocol, as mpv uses it).
    let (video, audio) = ffprobe_frames(&url("http", s.addr), Some(4));
    eprintln!("ffprobe http:// (4 s) decoded video={video} audio={audio}");
    assert!(video >= 80, "video frames {video}");
    assert!(audio >= 60, "audio frames {audio}");
    let log = s.daemon.stderr();
    assert!(log.contains("plain ASF play started"), "{log}");
    assert!(log.contains("Lavf/"), "{log}");
    assert!(s.daemon.is_running());
}

/// The last `status frame=N apts=HH:MM:SS` line mpv printed: (video frame number, audio pts).
fn mpv_status(text: &str) -> Option<(u64, f64)> {
    let line = text
        .split(['\r', '\n'])
        .rev()
        .filter(|l| l.contains("status frame="))
        .find(|l| !l.contains("(unavailable)"))?;
    let frame = line
        .split("frame=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let apts = line.split("apts=").nth(1)?.trim();
    let secs = apts
        .split(':')
        .try_fold(0.0, |acc, p| p.parse::<f64>().ok().map(|v| acc * 60.0 + v))?;
    Some((frame, secs))
}

#[test]
fn mpv_plays_the_station_over_plain_http() {
    let mut s = start("plain-mpv", "");
    let mut cmd = bounded(Duration::from_secs(30), "mpv");
    cmd.args(["--no-config", "--vo=null", "--ao=null", "--frames=100"])
        .arg("--term-status-msg=status frame=${estimated-frame-number} apts=${audio-pts}")
        .arg(url("http", s.addr))
        .env("HOME", &s.dir);
    let out = support::run_bounded(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.daemon.stderr()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail: String = text
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(!text.contains("Failed to recognize file format"), "{tail}");
    assert!(text.contains("VO: [null] 320x240"), "{tail}");
    assert!(text.contains("AO: [null] 44100Hz"), "{tail}");
    let (frame, apts) = mpv_status(&text).unwrap_or_else(|| panic!("no status line\n{tail}"));
    eprintln!("mpv http://: video frame {frame}, audio at {apts:.2} s");
    assert!(frame >= 90, "mpv showed {frame} frames\n{tail}");
    assert!(apts >= 3.0, "mpv played {apts} s of audio\n{tail}");
    assert!(s.daemon.is_running());
}

#[test]
fn gstreamer_plays_the_station_over_plain_http() {
    let mut s = start("plain-gst", "");
    let location = url("http", s.addr);
    let mut pipeline: Vec<String> = [
        "souphttpsrc",
        &format!("location={location}"),
        "is-live=true",
        "!",
        "decodebin",
        "name=d",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    for sink in ["x", "y"] {
        for a in ["d.", "!", "queue", "!", "fakesink"] {
            pipeline.push(a.into());
        }
        pipeline.push(format!("name={sink}"));
        pipeline.push("silent=false".into());
    }
    support::gst::gstreamer("souphttpsrc ! decodebin", &pipeline);
    support::gst::gstreamer(
        "playbin",
        &[
            "playbin".into(),
            format!("uri={location}"),
            "video-sink=fakesink name=v silent=false".into(),
            "audio-sink=fakesink name=a silent=false".into(),
        ],
    );
    let log = s.daemon.stderr();
    assert!(log.contains("GStreamer souphttpsrc"), "{log}");
    assert!(s.daemon.is_running());
}

#[test]
fn vlc_http_url_dumps_a_plain_stream_that_ffprobe_decodes() {
    let mut s = start("plain-vlc", "");
    let (size, video, audio) = vlc_dump_and_probe(&s, "http", 8);
    eprintln!("VLC http:// dump ({size} bytes) decoded video={video} audio={audio}");
    assert!(video >= 100, "video frames {video}");
    assert!(audio >= 80, "audio frames {audio}");
    let log = s.daemon.stderr();
    assert!(log.contains("plain ASF play started"), "{log}");
    assert!(log.contains("VLC/3"), "{log}");
    assert!(s.daemon.is_running());
}
