//! A client that joins just before the playlist loops keeps its join backlog: FFmpeg players
//! connect over MMST, RTSP (TCP and UDP) and MMSH a few hundred milliseconds before a loop
//! boundary of the demo station, and the presentation times of the video they decode must
//! have no gap. Before the delivery rules were unified, MMST and RTSP clients joining in the
//! last ~0.2 s before the boundary lost 1–1.8 s of media there (the fast-start backlog was
//! dropped at the header change, while RTP sequence numbers stayed contiguous).
//!
//! The loop boundaries are found from the daemon's own log ("playing … entry=0" at each
//! loop): the period is measured between two of them and the clients are started before the
//! next. The assertion is on what FFmpeg decoded (frame times), not on wall-clock time.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

fn start(dir: &Path) -> (Daemon, [u16; 3]) {
    let listen = support::Listen::three().write(dir, "");
    support::demo_station(dir, "unicast:\n  mms: true\n  mmsh: true\n  rtsp: true\n");
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(listen.rtsp(), Duration::from_secs(10));
    (
        d,
        [listen.http(), listen.mms(), listen.rtsp()].map(|a| a.port()),
    )
}

/// How many "playing" lines (one per playlist entry start, i.e. per loop) the log has.
fn loops(d: &Daemon) -> usize {
    d.stderr()
        .lines()
        .filter(|l| l.contains("playing") && l.contains("entry=0"))
        .count()
}

/// Waits for the next loop start and returns when it was seen.
fn wait_next_loop(d: &Daemon, limit: Duration) -> Instant {
    let n = loops(d);
    let end = Instant::now() + limit;
    while loops(d) == n {
        assert!(Instant::now() < end, "no loop within {limit:?}");
        thread::sleep(Duration::from_millis(5));
    }
    Instant::now()
}

fn ffmpeg(url: &str, transport: Option<&str>, secs: u32) -> Child {
    let mut cmd = Command::new("timeout");
    cmd.args(["40", "ffmpeg", "-hide_banner", "-nostdin", "-v", "error"]);
    if let Some(t) = transport {
        cmd.args(["-rtsp_transport", t]);
    }
    cmd.args(["-i", url, "-map", "0:v:0", "-t"])
        .arg(secs.to_string())
        .args(["-f", "framemd5", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg")
}

/// The video presentation times (seconds) FFmpeg decoded, from its framemd5 output.
fn video_times(out: &str) -> Vec<f64> {
    let mut tb = 0.001;
    let mut times = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("#tb 0:") {
            if let Some((n, d)) = rest.trim().split_once('/') {
                if let (Ok(n), Ok(d)) = (n.trim().parse::<f64>(), d.trim().parse::<f64>()) {
                    tb = n / d;
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() > 2 && cols[0] == "0" {
            if let Ok(pts) = cols[2].parse::<i64>() {
                times.push(pts as f64 * tb);
            }
        }
    }
    times
}

fn largest_gap(times: &[f64]) -> f64 {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    t.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

#[test]
fn clients_joining_just_before_a_loop_lose_no_media() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("loop-join");
    let (d, [http, mms, rtsp]) = start(dir.path());
    let t1 = wait_next_loop(&d, Duration::from_secs(30));
    let t2 = wait_next_loop(&d, Duration::from_secs(30));
    let period = t2 - t1;
    assert!(period > Duration::from_secs(5), "loop period {period:?}");
    // Joins at several offsets before the next boundary: each protocol gets one join in the
    // last 0.2 s (where the old code lost media) and one earlier.
    let plan: [(Duration, &str, String, Option<&str>); 6] = [
        (
            Duration::from_millis(450),
            "mmst",
            format!("mmst://127.0.0.1:{mms}/demo"),
            None,
        ),
        (
            Duration::from_millis(150),
            "mmst",
            format!("mmst://127.0.0.1:{mms}/demo"),
            None,
        ),
        (
            Duration::from_millis(350),
            "rtsp-tcp",
            format!("rtsp://127.0.0.1:{rtsp}/demo"),
            Some("tcp"),
        ),
        (
            Duration::from_millis(120),
            "rtsp-tcp",
            format!("rtsp://127.0.0.1:{rtsp}/demo"),
            Some("tcp"),
        ),
        (
            Duration::from_millis(180),
            "rtsp-udp",
            format!("rtsp://127.0.0.1:{rtsp}/demo"),
            Some("udp"),
        ),
        (
            Duration::from_millis(100),
            "mmsh",
            format!("mmsh://127.0.0.1:{http}/demo"),
            None,
        ),
    ];
    let boundary = t2 + period;
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plan[i].0));
    let mut children: Vec<(usize, Child)> = Vec::new();
    for i in order {
        let (before, _, url, transport) = &plan[i];
        if let Some(wait) = (boundary - *before).checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        children.push((i, ffmpeg(url, *transport, 4)));
    }
    let mut failures = Vec::new();
    for (i, child) in children {
        let (before, name, _, _) = &plan[i];
        let out = child.wait_with_output().expect("ffmpeg output");
        let times = video_times(&String::from_utf8_lossy(&out.stdout));
        let gap = largest_gap(&times);
        eprintln!(
            "{name} joined {before:?} before the loop: {} video frames, largest gap {gap:.3} s",
            times.len()
        );
        if times.len() < 50 {
            failures.push(format!(
                "{name} ({before:?} before): only {} video frames: {}",
                times.len(),
                String::from_utf8_lossy(&out.stderr)
            ));
        } else if gap > 0.3 {
            failures.push(format!(
                "{name} ({before:?} before): a gap of {gap:.3} s in the decoded video"
            ));
        }
    }
    assert!(
        loops(&d) >= 3,
        "the station looped while the clients played"
    );
    assert!(failures.is_empty(), "{failures:#?}\n{}", d.stderr());
}

/// With the 5 s fast-start buffer a joiner starts ≥ 5 s back, so 4 s of decoded media never
/// reach the loop boundary it joined before. Here FFmpeg decodes 9 s, joining just before and
/// just after a boundary (the backlog then spans the previous loop's tail and the header
/// change): the boundary lies inside what every player decodes, and no gap may be there.
#[test]
fn players_spanning_a_loop_boundary_with_the_fast_start_backlog_see_no_gap() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("loop-span");
    let (d, [http, mms, rtsp]) = start(dir.path());
    let t1 = wait_next_loop(&d, Duration::from_secs(30));
    let t2 = wait_next_loop(&d, Duration::from_secs(30));
    let period = t2 - t1;
    assert!(period > Duration::from_secs(5), "loop period {period:?}");
    let mmst = format!("mmst://127.0.0.1:{mms}/demo");
    let rtsp = format!("rtsp://127.0.0.1:{rtsp}/demo");
    let mmsh = format!("mmsh://127.0.0.1:{http}/demo");
    // (ms relative to the next boundary: negative before it, name, url, transport)
    let plan: [(i64, &str, &str, Option<&str>); 8] = [
        (-400, "mmsh", &mmsh, None),
        (-300, "mmst", &mmst, None),
        (-200, "rtsp-tcp", &rtsp, Some("tcp")),
        (-100, "rtsp-udp", &rtsp, Some("udp")),
        (300, "mmsh", &mmsh, None),
        (400, "mmst", &mmst, None),
        (500, "rtsp-tcp", &rtsp, Some("tcp")),
        (600, "rtsp-udp", &rtsp, Some("udp")),
    ];
    let boundary = t2 + period;
    let mut children = Vec::new();
    for (offset, name, url, transport) in plan {
        let at = if offset < 0 {
            boundary - Duration::from_millis(offset.unsigned_abs())
        } else {
            boundary + Duration::from_millis(offset as u64)
        };
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        children.push((offset, name, ffmpeg(url, transport, 9)));
    }
    let mut failures = Vec::new();
    for (offset, name, child) in children {
        let out = child.wait_with_output().expect("ffmpeg output");
        let times = video_times(&String::from_utf8_lossy(&out.stdout));
        let gap = largest_gap(&times);
        let span = times.iter().cloned().fold(0.0, f64::max)
            - times.iter().cloned().fold(f64::MAX, f64::min);
        eprintln!(
            "{name} joined {offset} ms from the loop: {} video frames over {span:.3} s, largest gap {gap:.3} s",
            times.len()
        );
        if times.len() < 100 {
            failures.push(format!(
                "{name} ({offset} ms): only {} video frames: {}",
                times.len(),
                String::from_utf8_lossy(&out.stderr)
            ));
        } else if gap > 0.3 {
            failures.push(format!(
                "{name} ({offset} ms): a gap of {gap:.3} s in the decoded video"
            ));
        }
    }
    assert!(
        loops(&d) >= 3,
        "the station looped while the clients played"
    );
    assert!(failures.is_empty(), "{failures:#?}\n{}", d.stderr());
}
