//! The ASF rewrites judged by ffprobe: files written from rewritten packets must decode, with
//! the frame counts each rewrite promises (asf.md §2.1, §3.5, §3.6).

mod support;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use asfcast::asf::rewrite::{self, Filtered};
use asfcast::asf::writer::AsfFileWriter;
use asfcast::asf::{AsfHeader, AsfReader, DataHead, Packet};
use asfcast::probe::probe;

/// Rewrites `src` into `dst`: broadcast header, every packet stripped and then passed through
/// `filter` and re-padded by the writer.
fn rewrite_file(src: &Path, dst: &Path, filter: impl Fn(&AsfHeader, &Packet<'_>) -> Filtered) {
    let mut reader = AsfReader::open(src).unwrap();
    let header = reader.header().clone();
    let live = header.to_broadcast();
    let data = DataHead::broadcast(reader.data_head().file_id);
    let out = BufWriter::new(File::create(dst).unwrap());
    let mut w = AsfFileWriter::new(out, &live, &data).unwrap();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        let parsed = p.parse().unwrap();
        let stripped = rewrite::strip_padding(&parsed);
        assert!(stripped.len() <= p.bytes.len());
        let sp = Packet::parse(&stripped).unwrap();
        assert_eq!(sp.padding, 0);
        match filter(&header, &sp) {
            Filtered::Unchanged => w.write_packet(&stripped).unwrap(),
            Filtered::Rewritten(b) => w.write_packet(&b).unwrap(),
            Filtered::Dropped => {}
        }
    }
    w.finish().unwrap();
}

fn frames(path: &Path, sel: &str) -> u64 {
    support::ffprobe_count_frames(path, sel).unwrap_or_else(|e| panic!("{e}"))
}

fn out(name: &str) -> PathBuf {
    support::temp_path(name)
}

#[test]
fn broadcast_header_with_stripped_then_repadded_packets_decodes_completely() {
    for name in ["sample-wmv2-wmav2.asf", "sample-mbr-2video.asf"] {
        let src = support::sample(name);
        let dst = out(&format!("live-{name}"));
        rewrite_file(&src, &dst, |_, _| Filtered::Unchanged);
        let r = probe(&dst).unwrap();
        assert!(r.broadcast && !r.seekable, "{name}: broadcast flags");
        assert_eq!(r.bad_packets, 0);
        assert_eq!(frames(&dst, "v:0"), frames(&src, "v:0"), "{name} video");
        assert_eq!(frames(&dst, "a:0"), frames(&src, "a:0"), "{name} audio");
        let _ = std::fs::remove_file(dst);
    }
}

#[test]
fn removing_the_audio_stream_keeps_every_video_frame() {
    let src = support::sample("sample-wmv2-wmav2.asf");
    let dst = out("no-audio.asf");
    rewrite_file(&src, &dst, |h, p| {
        rewrite::select_streams(p, &h.video_streams())
    });
    assert_eq!(frames(&dst, "v:0"), 250);
    // The audio stream stays in the header (as WMS does) but has no packets.
    let audio = support::ffprobe_count_frames(&dst, "a:0").unwrap_or(0);
    assert_eq!(audio, 0);
    let _ = std::fs::remove_file(dst);
}

#[test]
fn thinning_to_key_frames_keeps_only_key_frames_and_all_audio() {
    let src = support::sample("sample-wmv2-wmav2.asf");
    let dst = out("thinned.asf");
    rewrite_file(&src, &dst, |h, p| {
        rewrite::thin_to_key_frames(p, &h.video_streams())
    });
    // 10 s at 25 fps with a GOP of 50: 5 key frames.
    assert_eq!(frames(&dst, "v:0"), 5);
    assert_eq!(frames(&dst, "a:0"), frames(&src, "a:0"));
    let _ = std::fs::remove_file(dst);
}

#[test]
fn probe_agrees_with_ffprobe_on_every_sample() {
    for name in [
        "sample-wmv2-wmav2.asf",
        "sample-mbr-2video.asf",
        "sample-asf_stream.asf",
    ] {
        let src = support::sample(name);
        let r = probe(&src).unwrap();
        assert_eq!(r.packet_size, 3200, "{name}");
        assert_eq!(r.bad_packets, 0, "{name}");
        assert!(r.read_error.is_none(), "{name}");
        let ours: Vec<&str> = r.streams.iter().map(|s| s.kind).collect();
        if name == "sample-asf_stream.asf" {
            // ffprobe cannot open MMSH framing; the content is the plain sample's.
            assert_eq!(ours, ["video", "audio"]);
            continue;
        }
        let theirs = support::ffprobe_streams(&src);
        let theirs: Vec<&str> = theirs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(ours, theirs, "{name}");
        let codecs: Vec<String> = r.streams.iter().map(|s| s.codec.clone()).collect();
        let theirs_codecs: Vec<String> = support::ffprobe_streams(&src)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(codecs, theirs_codecs, "{name}");
    }
}
