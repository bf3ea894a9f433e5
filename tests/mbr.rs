//! Intelligent Streaming end to end (issue 11): a multiple-bit-rate station
//! (`station-configs/media/demo-mbr.asf`: streams 1/2/3 = 320x240 / 240x180 / 160x120 video
//! renditions in one Bitrate Mutual Exclusion group, stream 4 audio) and the single-rate demo
//! station, played by real clients.
//!
//! - Every join starts on a key frame: many FFmpeg joins over MMST, MMSH and RTSP, and FFmpeg
//!   never warns "first frame is no keyframe" (before, MBR joins started renditions 2 and 3 on
//!   a P frame nearly every time).
//! - Each real peer receives the rendition that fits the bandwidth it was given — VLC
//!   `--mms-maxbitrate`, libmms's bandwidth argument, MPlayer `-bandwidth` — judged by the
//!   picture size of the one video stream ffprobe finds packets for in what the client dumped.
//!   MPlayer's MMST client puts no bandwidth on the wire and asks for every stream (its
//!   `asf_mmst_streaming_start` sends level 0 for each), so it gets every rendition, as FFmpeg
//!   does, and both still decode.
//! - An in-repo client switches from 320x240 to 160x120 mid-stream on each protocol — MMSH
//!   SelectStream, MMS 0x33 StreamSwitch while playing (answered 0x21), RTSP `SET_PARAMETER`
//!   `application/x-wms-streamswitch` over TCP interleaved (x-asf-pf reassembled into ASF
//!   packets) — and what it received, written as an ASF file, is judged by ffprobe: each
//!   rendition starts at a key frame, the new one right after the old one's last frame (no
//!   instant twice, no gap), timestamps only go forward, both picture sizes decode.
//! - The same MBR programme pushed live by an encoder ([MS-WMHTTP] `$H` with the file's own
//!   header, then `$D` packets in real time, to a push station with no fallback) gives VLC
//!   and libmms the rendition that fits their bandwidth, as the file station does.
//! - A reader throttled to 150 kbit/s keeps playing for 60 s: it is thinned (a lower rendition,
//!   key frames only) with its audio intact, and not dropped.
//!
//! `ASFCAST_MBR_DAEMON=/path/to/asfcast` runs another daemon build (to measure the behaviour
//! of an older one with the same clients); the assertions are for this build.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::writer::AsfFileWriter;
use asfcast::asf::AsfReader;
use support::{Daemon, TempDir};

struct Setup {
    daemon: Daemon,
    dir: TempDir,
    http: SocketAddr,
    mms: SocketAddr,
    rtsp: SocketAddr,
}

fn mbr_media() -> PathBuf {
    support::repo_root().join("station-configs/media/demo-mbr.asf")
}

fn start(tag: &str) -> Setup {
    start_with(tag, "")
}

/// [`start`] with more server.yaml lines.
fn start_with(tag: &str, extra: &str) -> Setup {
    let dir = TempDir::new(tag);
    let listen =
        support::Listen::three().write(dir.path(), &format!("log:\n  level: info\n{extra}"));
    for (name, media) in [("demo", support::demo_media()), ("mbr", mbr_media())] {
        support::playlist_station(
            dir.path(),
            name,
            &media,
            "unicast:\n  mms: true\n  mmsh: true\n  rtsp: true\n  max_clients: 100\n",
        );
    }
    // A push station with no fallback: what an encoder pushes is all it plays.
    std::fs::write(
        dir.path().join("live.yaml"),
        "name: live\nsource:\n  type: push\n\
         unicast:\n  mms: true\n  mmsh: true\n  rtsp: true\n  max_clients: 100\n",
    )
    .unwrap();
    let config = dir.path().to_str().unwrap().to_string();
    let mut daemon = match std::env::var_os("ASFCAST_MBR_DAEMON") {
        Some(bin) => {
            let mut cmd = Command::new(bin);
            cmd.args(["run", "--config", &config]);
            Daemon::spawn("asfcast", cmd)
        }
        None => Daemon::asfcast(["run", "--config", &config]),
    };
    daemon.wait_for_tcp(listen.rtsp(), Duration::from_secs(10));
    // A first GOP for joiners.
    thread::sleep(Duration::from_millis(2500));
    Setup {
        daemon,
        dir,
        http: listen.http(),
        mms: listen.mms(),
        rtsp: listen.rtsp(),
    }
}

/// ffprobe's `-of csv=p=0` rows for `args` on `path`, each split into trimmed fields.
fn ffprobe_rows(path: &Path, args: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = support::bounded(Duration::from_secs(60), "ffprobe");
    cmd.args(["-v", "error"])
        .args(args)
        .args(["-of", "csv=p=0"])
        .arg(path);
    let out =
        support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(',').map(|f| f.trim().to_owned()).collect())
        .collect()
}

/// Per stream of a dump: (width, height) for video and how many packets ffprobe reads.
fn stream_packets(path: &Path) -> Vec<(Option<(u32, u32)>, u64)> {
    let args = [
        "-count_packets",
        "-show_entries",
        "stream=codec_type,width,height,nb_read_packets",
    ];
    ffprobe_rows(path, &args)
        .into_iter()
        .map(|f| {
            let n = f.last().and_then(|v| v.parse().ok()).unwrap_or(0);
            let size = match f.first().map(String::as_str) {
                Some("video") => Some((
                    f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
                    f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                )),
                _ => None,
            };
            (size, n)
        })
        .collect()
}

/// The picture sizes of the video streams a dump has packets for, and its audio packets.
fn received(path: &Path) -> (Vec<(u32, u32)>, u64) {
    let s = stream_packets(path);
    let video = s
        .iter()
        .filter_map(|(size, n)| size.filter(|_| *n > 0))
        .collect();
    let audio = s
        .iter()
        .filter(|(size, _)| size.is_none())
        .map(|(_, n)| n)
        .sum();
    (video, audio)
}

fn nobody_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let _ = Command::new("chmod").arg("0777").arg(&d).status();
    let _ = Command::new("chmod").arg("0755").arg(parent).status();
    d
}

#[test]
fn the_first_frame_of_every_join_is_a_key_frame() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("mbr-keyframe");
    let urls: Vec<String> = ["demo", "mbr"]
        .iter()
        .flat_map(|st| {
            [
                format!("mmst://{}/{st}", s.mms),
                format!("mmsh://{}/{st}", s.http),
                format!("rtsp://{}/{st}", s.rtsp),
            ]
        })
        .collect();
    let mut joins = 0;
    let mut warned = Vec::new();
    // Joins spread over the GOP (2 s) and the loop: 8 rounds, 6 clients each, at staggered
    // offsets.
    for round in 0..8u64 {
        let children: Vec<_> = urls
            .iter()
            .map(|u| {
                let mut cmd = support::bounded(Duration::from_secs(40), "ffmpeg");
                cmd.args(["-hide_banner", "-nostdin", "-v", "warning", "-i", u])
                    .args(["-map", "0", "-t", "1", "-f", "framemd5", "-"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                (u.clone(), cmd.spawn().expect("ffmpeg"))
            })
            .collect();
        for (u, child) in children {
            let out = child.wait_with_output().expect("ffmpeg");
            let (stdout, stderr) = (out.stdout, out.stderr);
            let err = String::from_utf8_lossy(&stderr);
            let frames = String::from_utf8_lossy(&stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count();
            assert!(frames > 10, "{u}: {frames} frames\n{err}");
            joins += 1;
            if err.contains("first frame is no keyframe") {
                warned.push(u);
            }
        }
        thread::sleep(Duration::from_millis(130 * (round % 5)));
    }
    eprintln!("{joins} joins, {} warned: {warned:?}", warned.len());
    assert!(warned.is_empty(), "joins on a non-key frame: {warned:?}");
}

/// VLC (as nobody) dumps `url` with `--mms-maxbitrate=bw`.
fn vlc_dump(url: &str, bw: u64, out: &Path, home: &Path) {
    let mut cmd = support::bounded(Duration::from_secs(25), "setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"])
        .arg(format!("HOME={}", home.display()))
        .args(["cvlc", "-I", "dummy", "-q", url])
        .arg(format!("--mms-maxbitrate={bw}"))
        .arg("--demux=dump")
        .arg(format!("--demuxdump-file={}", out.display()))
        .args(["--run-time=5", "--play-and-exit", "vlc://quit"]);
    let _ = support::run_bounded(&mut cmd, Duration::from_secs(25));
}

/// Every (client, URL) of `runs` dumps at every (bandwidth, expected picture size) of `table`,
/// all at once in their own threads (they only dump, nothing decodes). The client is the first
/// word of its name: `vlc`, `libmms` (the `libmms` binary) or `mplayer`. Returns (client,
/// bandwidth, expected size, dump file) for each, the files named `{prefix}{client}-{bw}.asf`.
fn dump_at_bandwidths(
    prefix: &str,
    runs: &[(&'static str, String)],
    table: &[(u64, (u32, u32))],
    home: &Path,
    libmms: &Path,
) -> Vec<(&'static str, u64, (u32, u32), PathBuf)> {
    let mut jobs = Vec::new();
    for &(bw, want) in table {
        for (who, url) in runs {
            let (who, url) = (*who, url.clone());
            let out = home.join(format!("{prefix}{}-{bw}.asf", who.replace(' ', "-")));
            let (home, libmms) = (home.to_path_buf(), libmms.to_path_buf());
            jobs.push(thread::spawn(move || {
                match who.split(' ').next() {
                    Some("vlc") => vlc_dump(&url, bw, &out, &home),
                    Some("libmms") => libmms_dump(&libmms, &url, bw, &out),
                    _ => mplayer_dump(&url, bw, &out),
                }
                (who, bw, want, out)
            }));
        }
    }
    jobs.into_iter().map(|j| j.join().unwrap()).collect()
}

fn libmms_dump(bin: &Path, url: &str, bw: u64, out: &Path) {
    let mut cmd = support::bounded(Duration::from_secs(30), bin);
    cmd.arg(url).arg(out).arg("1500000").arg(bw.to_string());
    let _ = support::run_bounded(&mut cmd, Duration::from_secs(30));
}

fn mplayer_dump(url: &str, bw: u64, out: &Path) {
    // MPlayer dumps until stopped: SIGINT after 8 s ends it cleanly.
    let mut cmd = Command::new("timeout");
    cmd.args([
        "-s",
        "INT",
        "-k",
        "5",
        "8",
        "mplayer",
        "-really-quiet",
        "-noconfig",
        "all",
    ])
    .arg("-bandwidth")
    .arg(bw.to_string())
    .args(["-dumpstream", "-dumpfile"])
    .arg(out)
    .arg(url);
    let _ = cmd.output();
}

#[test]
fn each_player_receives_the_rendition_that_fits_its_bandwidth() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("mbr-peers");
    let libmms = support::libmms_client(s.dir.path());
    let home = nobody_dir(s.dir.path(), "dumps");
    // (bandwidth, the picture size that fits it): renditions ~760/400/150 kbps + 31 kbps audio.
    let table = [
        (2_000_000u64, (320u32, 240u32)),
        (500_000, (240, 180)),
        (250_000, (160, 120)),
    ];
    let runs = [
        ("vlc mms", format!("mms://{}/mbr", s.mms)),
        ("vlc mmsh", format!("mmsh://{}/mbr", s.http)),
        ("libmms mms", format!("mms://{}/mbr", s.mms)),
        ("libmms mmsh", format!("mmsh://{}/mbr", s.http)),
        ("mplayer mmsh", format!("mmsh://{}/mbr", s.http)),
        ("mplayer mmst", format!("mmst://{}/mbr", s.mms)),
    ];
    for (who, bw, want, out) in dump_at_bandwidths("", &runs, &table, &home, &libmms) {
        let (video, audio) = received(&out);
        eprintln!("{who} bandwidth {bw}: video {video:?}, audio packets {audio}");
        assert!(audio > 50, "{who} {bw}: audio packets {audio}");
        if who == "mplayer mmst" {
            // No bandwidth on the wire, every stream asked for: every rendition.
            assert_eq!(video, [(320, 240), (240, 180), (160, 120)], "{who} {bw}");
        } else {
            assert_eq!(video, [want], "{who} {bw}");
        }
    }
    // FFmpeg asks for every stream and decodes all three renditions and the audio.
    for url in [
        format!("mmst://{}/mbr", s.mms),
        format!("mmsh://{}/mbr", s.http),
        format!("rtsp://{}/mbr", s.rtsp),
    ] {
        let mut cmd = support::bounded(Duration::from_secs(40), "ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i", &url])
            .args(["-map", "0", "-t", "3", "-f", "framemd5", "-"]);
        let out = cmd.output().expect("ffmpeg");
        let text = String::from_utf8_lossy(&out.stdout);
        let count = |i: &str| {
            text.lines()
                .filter(|l| l.split(',').next().map(str::trim) == Some(i))
                .count()
        };
        let counts = [count("0"), count("1"), count("2"), count("3")];
        eprintln!("ffmpeg {url}: frames per stream {counts:?}");
        assert!(counts.iter().all(|&c| c >= 25), "{url}: {counts:?}");
    }
    assert!(
        s.daemon.stderr().contains("NSPlayer/7.10.0.3059"),
        "VLC played"
    );
}

/// Reads an MMSH play of `station` at `bits_per_sec` for `secs`; the body bytes, and whether
/// the stream was still open at the end.
fn throttled_mmsh(
    addr: SocketAddr,
    station: &str,
    bits_per_sec: u64,
    secs: u64,
) -> (Vec<u8>, bool) {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut s: TcpStream = sock.into();
    // A player that names no stream and announces no bandwidth: the highest rendition.
    let req = format!(
        "GET /{station} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: NSPlayer/4.1.0.3856\r\n\
         Pragma: no-cache,rate=1.000000,request-context=2\r\nPragma: xPlayStrm=1\r\n\
         Pragma: xClientGUID={{c77e7400-738a-11d2-9add-0020af0a3279}}\r\nConnection: Close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t0 = Instant::now();
    let mut data = Vec::new();
    let mut open = true;
    let per_tick = (bits_per_sec / 8 / 10) as usize;
    let mut buf = vec![0u8; per_tick];
    let mut tick = t0;
    while t0.elapsed() < Duration::from_secs(secs) {
        let mut got = 0;
        while got < per_tick {
            match s.read(&mut buf[got..]) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(_) => {
                    open = false;
                    break;
                }
            }
        }
        data.extend_from_slice(&buf[..got]);
        if !open {
            break;
        }
        tick += Duration::from_millis(100);
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    let body = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => data[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (body, open)
}

fn audio_span_of(t: &[f64]) -> f64 {
    t.last().unwrap_or(&0.0) - t.first().unwrap_or(&0.0)
}

/// Writes an MMSH body as an ASF file; the number of data packets.
fn mmsh_body_to_asf(body: &[u8], out: &Path) -> u64 {
    let raw = out.with_extension("mmsh");
    std::fs::write(&raw, body).unwrap();
    let mut r = AsfReader::open(&raw).expect("MMSH body");
    let header = r.header().clone();
    let data = r.data_head().clone();
    let mut w = AsfFileWriter::new(std::fs::File::create(out).unwrap(), &header, &data).unwrap();
    while let Some(Ok(p)) = r.next_packet() {
        let _ = w.write_packet(&p.bytes);
    }
    let n = w.packets();
    w.finish().unwrap();
    n
}

/// Per stream index: the packets' (pts seconds, key) from ffprobe.
fn packets(path: &Path) -> Vec<(usize, f64, bool)> {
    let mut cmd = support::bounded(Duration::from_secs(60), "ffprobe");
    cmd.args([
        "-v",
        "error",
        "-show_entries",
        "packet=stream_index,pts_time,flags",
    ])
    .args(["-of", "csv=p=0"])
    .arg(path);
    let out =
        support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.first()?.trim().parse().ok()?,
                f.get(1)?.trim().parse().ok()?,
                f.get(2)?.contains('K'),
            ))
        })
        .collect()
}

#[test]
fn a_throttled_reader_is_thinned_and_keeps_its_audio() {
    if !support::require_private_netns() {
        return;
    }
    // Joins start at the newest key frame: the fast-start buffer's 5 s of the full-rate
    // station go out before any thinning (the join backlog is not thinned), and at 150 kbit/s
    // they alone take up to half of the window; this test is about thinning the live stream.
    let s = start_with("mbr-throttle", "limits:\n  fast_start_buffer: 0\n");
    const SECS: u64 = 60;
    let readers: Vec<_> = ["mbr", "demo"]
        .into_iter()
        .map(|station| {
            let http = s.http;
            thread::spawn(move || (station, throttled_mmsh(http, station, 150_000, SECS)))
        })
        .collect();
    let dumps = s.dir.path().join("dumps");
    std::fs::create_dir_all(&dumps).unwrap();
    let results: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    for l in s
        .daemon
        .stderr()
        .lines()
        .filter(|l| l.contains("thinning") || l.contains("stalled"))
    {
        eprintln!("{l}");
    }
    type Check = (&'static str, bool, f64, f64, Vec<usize>, usize, usize);
    let mut checks: Vec<Check> = Vec::new();
    for (station, (body, open)) in results {
        let file = dumps.join(format!("{station}.asf"));
        let n = mmsh_body_to_asf(&body, &file);
        let pk = packets(&file);
        let audio_index = if station == "mbr" { 3 } else { 1 };
        let audio: Vec<f64> = pk
            .iter()
            .filter(|p| p.0 == audio_index)
            .map(|p| p.1)
            .collect();
        let largest_audio_gap = audio.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let video: Vec<&(usize, f64, bool)> = pk.iter().filter(|p| p.0 != audio_index).collect();
        // The second half of what the reader got (by presentation time).
        let middle = audio.first().unwrap_or(&0.0) + (audio_span_of(&audio) / 2.0);
        let late_video: Vec<_> = video.iter().filter(|p| p.1 > middle).collect();
        let late_streams: Vec<usize> = {
            let mut v: Vec<usize> = late_video.iter().map(|p| p.0).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let late_keys = late_video.iter().filter(|p| p.2).count();
        let audio_span = audio.last().unwrap_or(&0.0) - audio.first().unwrap_or(&0.0);
        eprintln!(
            "{station}: open after {SECS} s: {open}; {} body bytes, {n} packets; audio {} packets over {audio_span:.1} s, largest gap {largest_audio_gap:.2} s; video {} packets; second half: streams {late_streams:?}, {} packets, {late_keys} key",
            body.len(),
            audio.len(),
            video.len(),
            late_video.len()
        );
        checks.push((
            station,
            open,
            audio_span,
            largest_audio_gap,
            late_streams,
            late_keys,
            late_video.len(),
        ));
    }
    for (station, open, audio_span, gap, late_streams, late_keys, late_video) in checks {
        assert!(open, "{station}: the reader was dropped");
        assert!(audio_span > 20.0, "{station}: audio over {audio_span} s");
        assert!(gap < 1.0, "{station}: audio gap {gap} s");
        if station == "mbr" {
            // Thinned: the lower renditions (or key frames only), not the 320x240 one.
            assert!(!late_streams.contains(&0), "{station}: {late_streams:?}");
        } else {
            // Single rate: key frames only (or none) once thinned.
            assert_eq!(late_keys, late_video, "{station}: key frames only");
        }
    }
    let log = s.daemon.stderr();
    let downs = log.matches("thinning: step down").count();
    eprintln!(
        "thinning steps down: {downs}, up: {}",
        log.matches("thinning: step up").count()
    );
    assert!(downs >= 2, "{log}");
    assert!(!log.contains("client stalled"), "nobody dropped");
}

/// Reads from `s` for `d` (a fast reader), appending to `data`.
fn read_for(s: &mut TcpStream, d: Duration, data: &mut Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + d;
    let mut buf = [0u8; 65536];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
}

#[test]
fn an_mmsh_client_switches_renditions_mid_stream_with_select_stream() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("mbr-switch");
    // Play the 320x240 rendition and the audio.
    let mut play = TcpStream::connect(s.http).unwrap();
    let req = "GET /mbr HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: NSPlayer/9.0.0.2980\r\n\
               Pragma: xPlayStrm=1\r\nPragma: stream-switch-count=4\r\n\
               Pragma: stream-switch-entry=ffff:1:0 ffff:2:2 ffff:3:2 ffff:4:0\r\n\r\n";
    play.write_all(req.as_bytes()).unwrap();
    let mut data = Vec::new();
    read_for(&mut play, Duration::from_secs(4), &mut data);
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    assert!(head.contains("com.microsoft.wm.sswitch"), "{head}");
    let client_id: u32 = head
        .split("client-id=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("client-id");
    // SelectStream on a second connection: 160x120 instead, hex as the spec writes it; then a
    // storm of contradictory switches for an unknown client, and garbage entries.
    let select = |id: u32, entries: &str| {
        let mut c = TcpStream::connect(s.http).unwrap();
        let r = format!(
            "POST /mbr HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: NSPlayer/9.0.0.2980\r\n\
             Pragma: client-id={id}\r\nPragma: no-cache\r\nPragma: stream-switch-count=2\r\n\
             Pragma: stream-switch-entry={entries}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        c.write_all(r.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = c.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_string()
    };
    for _ in 0..50 {
        assert!(select(client_id + 1000, "ffff:2:0 ffff:2:2 ffff:99:0").starts_with("HTTP/1.1 200"));
    }
    assert!(select(client_id, "ffff:1:2 ffff:3:0").starts_with("HTTP/1.1 200"));
    read_for(&mut play, Duration::from_secs(6), &mut data);
    let file = s.dir.path().join("switched.asf");
    mmsh_body_to_asf(&data[head_end..], &file);
    judge_switch(&file, "mmsh");
    let log = s.daemon.stderr();
    assert!(log.contains("SelectStream for an unknown client-id ignored"));
    assert!(log.contains("MMSH stream switched"));
}

/// Judges a dump in which the client played the 320x240 rendition (stream 1, ffprobe index 0)
/// and the audio, then switched to 160x120 (stream 3, index 2): both renditions played, each
/// starts at a key frame, the new one begins right after the old one's last frame (no frame
/// twice, no gap longer than a frame at 12.5 fps), timestamps only go forward, 240x180 never
/// arrived, and the audio went on.
fn judge_switch(file: &Path, who: &str) {
    let pk = packets(file);
    let times = |i: usize| -> Vec<(f64, bool)> {
        pk.iter().filter(|p| p.0 == i).map(|p| (p.1, p.2)).collect()
    };
    let (hi, mid, lo, audio) = (times(0), times(1), times(2), times(3));
    eprintln!(
        "{who}: before: {} packets of 320x240 (last at {:?}); after: {} of 160x120 (first at {:?}); 240x180: {}; audio: {}",
        hi.len(),
        hi.last(),
        lo.len(),
        lo.first(),
        mid.len(),
        audio.len()
    );
    assert!(
        hi.len() > 50 && lo.len() > 50,
        "{who}: both renditions played"
    );
    assert!(mid.is_empty(), "{who}: 240x180 never asked for");
    assert!(audio.len() > 50, "{who}: audio played");
    assert!(
        hi[0].1 && lo[0].1,
        "{who}: each rendition starts at a key frame"
    );
    let (last_hi, first_lo) = (hi[hi.len() - 1].0, lo[0].0);
    assert!(
        last_hi < first_lo,
        "{who}: no frame twice: {last_hi} / {first_lo}"
    );
    assert!(
        first_lo - last_hi <= 0.081,
        "{who}: no gap: {last_hi} → {first_lo}"
    );
    for t in [&hi, &lo, &audio] {
        assert!(
            t.windows(2).all(|w| w[1].0 > w[0].0),
            "{who}: timestamps go forward"
        );
    }
    // What decodes: the 320x240 pictures, then the 160x120 ones.
    let decoded = decoded_frames(file);
    eprintln!("{who}: decoded video frames per stream (width, height, frames): {decoded:?}");
    let frames_of = |w: u32, h: u32| {
        decoded
            .iter()
            .find(|d| (d.0, d.1) == (w, h))
            .map_or(0, |d| d.2)
    };
    assert!(
        frames_of(320, 240) > 50 && frames_of(160, 120) > 50,
        "{who}: both sizes decode: {decoded:?}"
    );
}

/// Per video stream of a dump: (width, height, frames ffprobe decoded).
fn decoded_frames(path: &Path) -> Vec<(u32, u32, u64)> {
    let args = [
        "-count_frames",
        "-select_streams",
        "v",
        "-show_entries",
        "stream=width,height,nb_read_frames",
    ];
    ffprobe_rows(path, &args)
        .into_iter()
        .filter_map(|f| {
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().unwrap_or(0),
            ))
        })
        .collect()
}

/// Writes a stream header blob (Header Object + Data Object head, as MMS and RTSP carry it)
/// and stripped packets as an ASF file; how many packets it holds.
fn parts_to_asf(header: &[u8], packets: &[Vec<u8>], out: &Path) -> u64 {
    let r = AsfReader::new(std::io::Cursor::new(header)).expect("stream header");
    let mut w = AsfFileWriter::new(
        std::fs::File::create(out).unwrap(),
        r.header(),
        r.data_head(),
    )
    .unwrap();
    for p in packets {
        w.write_packet(p).expect("an ASF packet");
    }
    let n = w.packets();
    w.finish().unwrap();
    n
}

/// A 0x33 StreamSwitch's fields: (stream, thinning level) entries.
fn mms_switch_fields(entries: &[(u16, u16)]) -> Vec<u8> {
    let mut f = (entries.len() as u32).to_le_bytes().to_vec();
    for &(stream, level) in entries {
        f.extend(0xFFFFu16.to_le_bytes());
        f.extend(stream.to_le_bytes());
        f.extend(level.to_le_bytes());
    }
    f
}

/// What an MMS (TCP) server sent, split offline: command replies by number, data packets.
enum MmsPdu {
    Reply(u16),
    Data(asfcast::mms::codec::DataHead, Vec<u8>),
}

fn mms_pdus(mut b: &[u8]) -> Vec<MmsPdu> {
    use asfcast::mms::codec::{DataHead, SESSION_ID};
    let mut out = Vec::new();
    while b.len() >= 8 {
        if u32::from_le_bytes(b[4..8].try_into().unwrap()) == SESSION_ID {
            let Some(len) = b.get(8..12) else { break };
            let total = 16 + u32::from_le_bytes(len.try_into().unwrap()) as usize;
            let Some(msg) = b.get(..total) else { break };
            out.push(MmsPdu::Reply(u16::from_le_bytes([msg[36], msg[37]])));
            b = &b[total..];
        } else {
            let h = DataHead::parse(&b[..8]).expect("a data head");
            let Some(p) = b.get(8..usize::from(h.packet_size)) else {
                break;
            };
            out.push(MmsPdu::Data(h, p.to_vec()));
            b = &b[usize::from(h.packet_size)..];
        }
    }
    out
}

#[test]
fn an_mms_client_switches_renditions_mid_stream_with_stream_switch() {
    use asfcast::mms::codec::cmd;
    use support::raw::{mms_command, mms_commands};
    if !support::require_private_netns() {
        return;
    }
    let s = start("mbr-mms-switch");
    let mut c = TcpStream::connect(s.mms).unwrap();
    // The handshake FFmpeg makes, asking for the 320x240 rendition and the audio.
    let mut commands = mms_commands("\\\\192.168.0.129\\TCP\\1037", "mbr");
    for (number, fields) in &mut commands {
        if *number == cmd::STREAM_SWITCH {
            *fields = mms_switch_fields(&[(1, 0), (2, 2), (3, 2), (4, 0)]);
        }
    }
    let mut data = Vec::new();
    for (number, fields) in &commands {
        c.write_all(&mms_command(*number, fields)).unwrap();
        read_for(&mut c, Duration::from_millis(300), &mut data);
    }
    read_for(&mut c, Duration::from_secs(4), &mut data);
    let before = data.len();
    // While playing: 160x120 instead (0x33, answered 0x21).
    let switch = mms_switch_fields(&[(1, 2), (2, 2), (3, 0), (4, 0)]);
    c.write_all(&mms_command(cmd::STREAM_SWITCH, &switch))
        .unwrap();
    read_for(&mut c, Duration::from_secs(6), &mut data);
    let pdus = mms_pdus(&data);
    let replies: Vec<u16> = pdus
        .iter()
        .filter_map(|p| match p {
            MmsPdu::Reply(n) => Some(*n),
            MmsPdu::Data(..) => None,
        })
        .collect();
    assert_eq!(
        replies,
        [0x01, 0x02, 0x06, 0x11, 0x21, 0x05, 0x21],
        "every command answered, the switch while playing with 0x21"
    );
    assert!(before < data.len());
    // Header packets (LocationId 0, 1, …; AFFlags 0x04, the last 0x0C) come before
    // StartPlaying's reply; media packets after.
    let mut header = Vec::new();
    let mut media = Vec::new();
    let mut started = false;
    for p in pdus {
        match p {
            MmsPdu::Reply(0x05) => started = true,
            MmsPdu::Reply(_) => {}
            MmsPdu::Data(h, bytes) if !started => {
                assert!(matches!(h.af_flags, 0x04 | 0x0C), "{h:?}");
                header.extend(bytes);
            }
            MmsPdu::Data(_, bytes) => media.push(bytes),
        }
    }
    let file = s.dir.path().join("mms-switched.asf");
    let n = parts_to_asf(&header, &media, &file);
    eprintln!("mms: {} header bytes, {n} packets", header.len());
    judge_switch(&file, "mms");
}

/// What an RTSP server sent over one TCP connection, split offline: responses (their status
/// line and CSeq) and interleaved frames (channel, bytes), in order.
enum RtspUnit {
    Response(String),
    Frame(u8, Vec<u8>),
}

fn rtsp_units(mut b: &[u8]) -> Vec<RtspUnit> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b[0] == b'$' {
            let Some(&[_, ch, hi, lo]) = b.get(..4) else {
                break;
            };
            let end = 4 + usize::from(u16::from_be_bytes([hi, lo]));
            let Some(f) = b.get(4..end) else { break };
            out.push(RtspUnit::Frame(ch, f.to_vec()));
            b = &b[end..];
        } else {
            let Some(head) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let text = String::from_utf8_lossy(&b[..head + 4]).into_owned();
            let body = support::raw::rtsp_header(&text, "Content-Length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let end = (head + 4 + body).min(b.len());
            out.push(RtspUnit::Response(text));
            b = &b[end..];
        }
    }
    out
}

/// The ASF packets of one channel's x-asf-pf RTP packets (rtsp-wmsp.md §2.2): a unit with L
/// is a whole packet (Length counted from its header), fragments (no L, Offset) run until the
/// marker bit. Each packet with whether its RTP packet had S (key frame) set.
fn x_asf_pf_packets(rtp: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
    let mut done = Vec::new();
    let mut frag: Option<Vec<u8>> = None;
    for p in rtp {
        assert!(p.len() > 16 && p[0] == 0x80, "RTP v2, no CSRC");
        let marker = p[1] & 0x80 != 0;
        let pl = &p[12..];
        let (flags, field) = (
            pl[0],
            usize::from(pl[1]) << 16 | usize::from(pl[2]) << 8 | usize::from(pl[3]),
        );
        let head = 4 + 4 * (flags & 0x38).count_ones() as usize;
        let data = &pl[head..];
        let key = flags & 0x80 != 0;
        if flags & 0x40 != 0 {
            assert_eq!(field, data.len() + head, "one whole packet per RTP packet");
            done.push((data.to_vec(), key));
        } else {
            match &mut frag {
                Some(f) if f.len() == field => f.extend_from_slice(data),
                _ => {
                    assert_eq!(field, 0, "a fragment run starts at offset 0");
                    frag = Some(data.to_vec());
                }
            }
            if marker {
                done.extend(frag.take().map(|f| (f, key)));
            }
        }
    }
    done
}

#[test]
fn an_rtsp_client_switches_renditions_mid_stream_with_set_parameter() {
    use base64::Engine as _;
    use support::raw::{rtsp_exchange, rtsp_header};
    if !support::require_private_netns() {
        return;
    }
    let s = start("mbr-rtsp-switch");
    let url = format!("rtsp://{}/mbr", s.rtsp);
    let mut c = TcpStream::connect(s.rtsp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let d = rtsp_exchange(
        &mut c,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"),
    )
    .unwrap();
    assert!(d.starts_with("RTSP/1.0 200"), "{d}");
    let header = d
        .lines()
        .find_map(|l| l.strip_prefix("a=pgmpu:data:application/vnd.ms.wms-hdr.asfv1;base64,"))
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap()
        })
        .expect("the ASF header in the SDP");
    // One section per rendition: the client sets up 320x240 (stream 1) and the audio.
    for n in 1..=4 {
        assert!(d.contains(&format!("a=stream:{n}")), "{d}");
    }
    let mut session = String::new();
    for (cseq, (stream, channels)) in [(1, "0-1"), (4, "2-3")].into_iter().enumerate() {
        let sess = if session.is_empty() {
            String::new()
        } else {
            format!("Session: {session}\r\n")
        };
        let r = rtsp_exchange(
            &mut c,
            &format!(
                "SETUP {url}/stream={stream} RTSP/1.0\r\nCSeq: {}\r\n{sess}\
                 Transport: RTP/AVP/TCP;unicast;interleaved={channels};mode=play\r\n\r\n",
                cseq + 2
            ),
        )
        .unwrap();
        assert!(r.starts_with("RTSP/1.0 200"), "{r}");
        if session.is_empty() {
            session = rtsp_header(&r, "Session")
                .and_then(|v| v.split(';').next().map(str::to_owned))
                .unwrap();
        }
    }
    c.write_all(
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\nRange: npt=0-\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut data = Vec::new();
    read_for(&mut c, Duration::from_secs(4), &mut data);
    // While playing: 160x120 (stream 3) in place of stream 1, on the same channel.
    let body = format!("SSEntry: 1 3 0 {url}/stream=1 {url}/stream=3\r\n");
    c.write_all(
        format!(
            "SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\n\
             Content-Type: application/x-wms-streamswitch\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    read_for(&mut c, Duration::from_secs(6), &mut data);
    let units = rtsp_units(&data);
    let responses: Vec<(String, String)> = units
        .iter()
        .filter_map(|u| match u {
            RtspUnit::Response(t) => Some((
                t.lines().next().unwrap_or("").to_owned(),
                rtsp_header(t, "CSeq").unwrap_or_default(),
            )),
            RtspUnit::Frame(..) => None,
        })
        .collect();
    let status = |cseq: &str| {
        responses
            .iter()
            .find(|r| r.1 == cseq)
            .map(|r| r.0.clone())
            .unwrap_or_default()
    };
    assert!(
        status("4").starts_with("RTSP/1.0 200"),
        "PLAY: {responses:?}"
    );
    assert!(
        status("5").starts_with("RTSP/1.0 200"),
        "SET_PARAMETER: {responses:?}"
    );
    let channel = |ch: u8| -> Vec<&[u8]> {
        units
            .iter()
            .filter_map(|u| match u {
                RtspUnit::Frame(c, f) if *c == ch => Some(f.as_slice()),
                _ => None,
            })
            .collect()
    };
    let (video, audio) = (x_asf_pf_packets(&channel(0)), x_asf_pf_packets(&channel(2)));
    // At the RTP level: stream 1's payloads, then stream 3's, the first of them a key frame
    // with S set.
    let streams_of = |p: &[u8]| -> Vec<(u8, bool)> {
        asfcast::asf::packet::Packet::parse(p)
            .expect("an ASF packet")
            .payloads
            .iter()
            .map(|pl| (pl.stream, pl.key_frame))
            .collect()
    };
    let order: Vec<u8> = {
        let mut v: Vec<u8> = video
            .iter()
            .flat_map(|(p, _)| streams_of(p))
            .map(|s| s.0)
            .collect();
        v.dedup();
        v
    };
    assert_eq!(order, [1, 3], "stream 1, then stream 3 on channel 0");
    let first_new = video
        .iter()
        .find(|(p, _)| streams_of(p).iter().any(|s| s.0 == 3))
        .unwrap();
    assert!(first_new.1, "S set on the new rendition's first packet");
    assert!(
        streams_of(&first_new.0)
            .iter()
            .find(|s| s.0 == 3)
            .is_some_and(|s| s.1),
        "the new rendition starts with a key frame"
    );
    // The reassembled packets, in arrival order, as a file ffprobe judges.
    let mut packets = Vec::new();
    let (mut v, mut a) = (0, 0);
    for u in &units {
        if let RtspUnit::Frame(ch, f) = u {
            // Each channel's packet completes on its marker.
            if f[1] & 0x80 != 0 {
                match ch {
                    0 if v < video.len() => {
                        packets.push(video[v].0.clone());
                        v += 1;
                    }
                    2 if a < audio.len() => {
                        packets.push(audio[a].0.clone());
                        a += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let file = s.dir.path().join("rtsp-switched.asf");
    let n = parts_to_asf(&header, &packets, &file);
    eprintln!(
        "rtsp: {n} packets ({} video, {} audio), video streams in order {order:?}",
        video.len(),
        audio.len()
    );
    judge_switch(&file, "rtsp");
}

#[test]
fn a_pushed_mbr_programme_gives_each_player_the_rendition_that_fits() {
    use asfcast::http::push::framing::{write_chunk, Layout};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use support::push::{parts, push_start, send_packets_at};
    if !support::require_private_netns() {
        return;
    }
    let mut s = start("mbr-push");
    // The encoder: demo-mbr.asf's own header (with its Bitrate Mutual Exclusion and Stream
    // Bitrate Properties objects) and its packets, looped in real time.
    let (head, packets) = parts(&mbr_media());
    let duration_ms = AsfReader::open(&mbr_media())
        .unwrap()
        .header()
        .file
        .duration_ms();
    let per_sec = (packets.len() as u64 * 1000).div_ceil(duration_ms.max(1));
    let mut push = push_start(s.http, "0");
    push.write_all(&write_chunk(Layout::Spec, b'H', &head, 0).unwrap())
        .unwrap();
    let mut at = send_packets_at(&mut push, &packets, 0, 3 * per_sec as usize, per_sec);
    assert!(
        s.daemon
            .wait_for_stderr("live source back at a key frame", Duration::from_secs(15)),
        "{}",
        s.daemon.stderr()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let encoder = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                at = send_packets_at(&mut push, &packets, at, per_sec as usize, per_sec);
            }
        })
    };
    let libmms = support::libmms_client(s.dir.path());
    let home = nobody_dir(s.dir.path(), "dumps");
    let table = [(2_000_000u64, (320u32, 240u32)), (250_000, (160, 120))];
    let runs = [
        ("vlc mms", format!("mms://{}/live", s.mms)),
        ("vlc mmsh", format!("mmsh://{}/live", s.http)),
        ("libmms mms", format!("mms://{}/live", s.mms)),
        ("libmms mmsh", format!("mmsh://{}/live", s.http)),
    ];
    let results = dump_at_bandwidths("push-", &runs, &table, &home, &libmms);
    stop.store(true, Ordering::Relaxed);
    encoder.join().unwrap();
    for (who, bw, want, out) in results {
        let (video, audio) = received(&out);
        // The header the player got still has the Bitrate Mutual Exclusion of the push.
        let groups = AsfReader::open(&out)
            .map(|r| asfcast::station::selection::rendition_groups(r.header()))
            .unwrap_or_default()
            .into_iter()
            .map(|mut g| {
                // libmms lists the streams in its own order.
                g.sort_unstable();
                g
            })
            .collect::<Vec<_>>();
        eprintln!(
            "pushed: {who} bandwidth {bw}: rendition groups in its header {groups:?}, video {video:?}, audio packets {audio}"
        );
        assert_eq!(groups, [vec![1, 2, 3]], "{who} {bw}");
        assert!(audio > 50, "{who} {bw}: audio packets {audio}");
        assert_eq!(video, [want], "{who} {bw}");
    }
}
