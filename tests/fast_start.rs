//! The fast-start buffer (`limits.fast_start_buffer`): a unicast joiner starts at the newest key
//! frame at least that far behind the live edge, so a player's buffer fills at the fast-start
//! rate instead of in real time (FFmpeg's RTSP client over UDP reads 5 s of media before it
//! starts; Windows Media Player buffers 5 s).
//!
//! Two daemons play the demo (10 s, a key frame every 2 s), one with the default buffer (5 s)
//! and one with `fast_start_buffer: 0`. FFmpeg joins each over MMSH about 7.5 s into the
//! station's entry and decodes one video frame; its MD5 (the demo's frames all differ) says
//! which frame of the file the join started at: with the buffer at least 4 s earlier. The
//! assertion is on what FFmpeg decoded, not on wall-clock time (the timing only places the join
//! inside the entry, and the loop count checks it stayed there).

mod support;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

fn start(dir: &Path, buffer: Option<&str>) -> (Daemon, u16) {
    start_with(dir, buffer, &support::demo_media())
}

/// [`start`] with the station playing `media` in a loop (the server as
/// [`support::outsider_config`] writes it: HTTP only, plus the buffer when given).
fn start_with(dir: &Path, buffer: Option<&str>, media: &Path) -> (Daemon, u16) {
    let limits = buffer.map_or(String::new(), |b| {
        format!("limits:\n  fast_start_buffer: {b}\n")
    });
    let (http, _api) = support::outsider_config(dir, &limits, false);
    support::playlist_station(dir, "demo", media, "unicast:\n  mmsh: true\n");
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(http, Duration::from_secs(10));
    (d, http.port())
}

/// How many playlist entry starts (one per loop) the log has.
fn loops(d: &Daemon) -> usize {
    d.stderr()
        .lines()
        .filter(|l| l.contains("playing") && l.contains("entry=0"))
        .count()
}

/// The MD5 of each video frame FFmpeg decodes from `input` (its framemd5 lines), at most
/// `frames`.
fn video_md5s(input: &str, frames: usize) -> Vec<String> {
    let out = Command::new("timeout")
        .args([
            "30",
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            input,
        ])
        .args(["-map", "0:v:0", "-frames:v", &frames.to_string()])
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|m| m.trim().to_owned()))
        .collect()
}

/// Where in the file (video frame index) the first frame FFmpeg decodes over MMSH comes from:
/// the demo's 250 frames are all different, so the MD5 names the frame.
fn first_frame_index(http: u16, file: &[String]) -> usize {
    let got = video_md5s(&format!("mmsh://127.0.0.1:{http}/demo"), 1);
    let first = got
        .first()
        .expect("FFmpeg decoded no video frame over MMSH");
    file.iter()
        .position(|m| m == first)
        .unwrap_or_else(|| panic!("decoded frame {first} is not a frame of the demo"))
}

/// Joins about 7.5 s into an entry of the station and returns the first decoded frame's index;
/// retried when a loop restart came in between.
fn join_late_in_an_entry(d: &Daemon, http: u16, file: &[String]) -> usize {
    for _ in 0..3 {
        let n = loops(d);
        let end = Instant::now() + Duration::from_secs(30);
        while loops(d) == n {
            assert!(Instant::now() < end, "no loop start within 30 s");
            thread::sleep(Duration::from_millis(5));
        }
        let entry = loops(d);
        thread::sleep(Duration::from_millis(7_500));
        let t = first_frame_index(http, file);
        if loops(d) == entry {
            return t;
        }
        eprintln!("a loop restart came during the join; again");
    }
    panic!("no join inside an entry in three tries");
}

#[test]
fn joiners_start_the_fast_start_buffer_behind_the_live_edge() {
    if !support::require_private_netns() {
        return;
    }
    let with_dir = TempDir::new("fast-start-5s");
    let without_dir = TempDir::new("fast-start-0");
    let (with, with_http) = start(with_dir.path(), None);
    let (without, without_http) = start(without_dir.path(), Some("0"));
    let file = video_md5s(support::demo_media().to_str().unwrap(), 1_000);
    assert_eq!(file.len(), 250, "the demo: 10 s at 25 frames/s");
    let with_idx = join_late_in_an_entry(&with, with_http, &file);
    let without_idx = join_late_in_an_entry(&without, without_http, &file);
    eprintln!(
        "first video frame of a join 7.5 s into the entry: frame {with_idx} with the 5 s \
         buffer, frame {without_idx} without (25 frames/s, a key frame every 50)"
    );
    assert_eq!(with_idx % 50, 0, "a join starts at a key frame");
    assert_eq!(without_idx % 50, 0, "a join starts at a key frame");
    assert!(
        without_idx >= with_idx + 100,
        "the 5 s buffer starts a joiner at least 4 s further back: frame {with_idx} vs {without_idx}"
    );
}

/// A 40 s clip like the demo (FFmpeg, key frame every 2 s) whose send times restart at zero
/// 9 s in — a capture whose encoder clock reset mid-file, with no new header. Presentation
/// times are kept, so players decode it as made.
fn send_times_reset_9s_in(dir: &Path) -> std::path::PathBuf {
    use asfcast::asf::packet::head_len;
    use asfcast::asf::{AsfReader, Packet};
    let made = dir.join("long.asf");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "40", "-c:v", "wmv2", "-b:v", "250k", "-g", "50"])
        .args([
            "-c:a",
            "wmav2",
            "-b:a",
            "64k",
            "-packet_size",
            "3200",
            "-f",
            "asf",
        ])
        .arg(&made)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg made no clip");
    let file = std::fs::read(&made).unwrap();
    let size = AsfReader::open(&made).unwrap().packet_size();
    let header_len = u64::from_le_bytes(file[16..24].try_into().unwrap()) as usize;
    let start = header_len + asfcast::asf::DATA_HEAD_LEN;
    let mut bytes = file.clone();
    let mut reset = 0;
    for i in 0..(file.len() - start) / size {
        let at = start + i * size;
        let Ok(p) = Packet::parse(&file[at..at + size]) else {
            continue;
        };
        if p.send_time >= 9_000 {
            let send_at = at + head_len(p.ecc.len(), p.length_type_flags) - 6;
            let t = p.send_time - 9_000;
            bytes[send_at..send_at + 4].copy_from_slice(&t.to_le_bytes());
            reset += 1;
        }
    }
    assert!(reset > 100, "the clip has packets after 9 s: {reset}");
    let path = dir.join("reset.asf");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A join while the fast-start buffer reaches back across a send-time reset (the station's
/// ring then holds key frames from before the reset and packets from after it): FFmpeg over
/// MMSH keeps decoding past the reset instead of waiting for packets the join's fast-start
/// schedule placed hours away (the reset's send times, taken as a 49-day step forward).
#[test]
fn a_join_across_a_send_time_reset_keeps_playing() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("fast-start-reset");
    let media = send_times_reset_9s_in(dir.path());
    let (d, http) = start_with(dir.path(), None, &media);
    // Key frames every 2 s, the reset at 9 s: a join from then until the fourth key frame
    // after it reaches back before the reset (to the key frame at 4 s for a join at 10.5 s).
    let end = Instant::now() + Duration::from_secs(20);
    while loops(&d) == 0 {
        assert!(Instant::now() < end, "the station did not start");
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(10_500));
    assert_eq!(loops(&d), 1, "still in the first of the 40 s entries");
    // 12 s of media from the key frame at 4 s: about 7 s from the join (the backlog at the
    // fast-start rate, then live); the 40 s entry's end is 30 s away.
    let out = Command::new("timeout")
        .args(["15", "ffmpeg", "-hide_banner", "-nostdin", "-v", "error"])
        .args(["-i", &format!("mmsh://127.0.0.1:{http}/demo")])
        .args(["-map", "0:v:0", "-t", "12", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    eprintln!(
        "FFmpeg over MMSH, -t 12 from a join 1.5 s after a send-time reset: {frames} video frames"
    );
    assert!(
        frames >= 250,
        "FFmpeg decoded {frames} video frames of 12 s (25 frames/s) across the reset"
    );
}
