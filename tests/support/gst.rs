//! GStreamer as a real client: runs `gst-launch-1.0 -v` pipelines ending in fakesinks and
//! counts the buffers they decoded live (shared by the RTSP and plain-HTTP tests).

use std::process::Command;
use std::time::Duration;

/// Decoded buffers a GStreamer run must reach: about 4 s of 25 fps video and of WMA2 audio
/// (2048-sample buffers, 21.5 per second).
pub const GST_VIDEO: u64 = 100;
pub const GST_AUDIO: u64 = 80;
/// How long GStreamer gets to reach them (a slow machine is slow, not wrong).
pub const GST_LIMIT: Duration = Duration::from_secs(45);

/// Decoded (video, audio) buffers so far in `gst-launch-1.0 -v` output, from the fakesinks'
/// `last-message = chain` lines: a 320x240 I420 frame is 115200 bytes; a decoded WMA2 frame
/// lasts 2048 samples at 44.1 kHz. (By content, not by sink: which sink gets which decoded pad
/// is decodebin's choice.)
pub fn gst_counts(text: &str) -> (u64, u64) {
    let chains = || {
        text.lines()
            .filter(|l| l.contains(": last-message = chain"))
    };
    let video = chains().filter(|l| l.contains("(115200 bytes")).count() as u64;
    let audio = chains()
        .filter(|l| l.contains("duration: 0:00:00.046439909"))
        .count() as u64;
    (video, audio)
}

/// Runs `gst-launch-1.0 -v ARGS` until its fakesinks have decoded [`GST_VIDEO`] video and
/// [`GST_AUDIO`] audio buffers (or [`GST_LIMIT`] passes, or it exits), then kills it — no
/// end-of-stream, so every counted buffer was played live, not flushed at the end.
pub fn gstreamer(what: &str, args: &[String]) -> (u64, u64) {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-v").args(args).env("HOME", std::env::temp_dir());
    let mut gst = super::Daemon::spawn("gst-launch", cmd);
    let deadline = std::time::Instant::now() + GST_LIMIT;
    let (video, audio) = loop {
        let (v, a) = gst_counts(&gst.stdout());
        if (v >= GST_VIDEO && a >= GST_AUDIO)
            || !gst.is_running()
            || std::time::Instant::now() >= deadline
        {
            break gst_counts(&gst.stdout());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = gst.signal("KILL");
    if video < GST_VIDEO || audio < GST_AUDIO {
        let text = gst.stdout();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("stats = ")).collect();
        panic!(
            "GStreamer ({what}) decoded {video} video / {audio} audio buffers live \
             (wanted {GST_VIDEO} / {GST_AUDIO} within {GST_LIMIT:?}); first and last lines:\n{}\n…\n{}\nstderr:\n{}",
            lines.iter().take(40).copied().collect::<Vec<_>>().join("\n"),
            lines[lines.len().saturating_sub(40)..].join("\n"),
            gst.stderr()
        );
    }
    eprintln!("GStreamer ({what}): {video} video and {audio} audio buffers decoded live");
    (video, audio)
}
