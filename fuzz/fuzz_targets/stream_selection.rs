//! Fuzzes a client's stream selection (`src/station/selection.rs`) and the RTSP stream-switch
//! body (`src/rtsp/streamswitch.rs`) against the MBR demo header
//! (`station-configs/media/demo-mbr.asf`: three renditions in one mutual exclusion group).
//!
//! The input drives a storm of operations — client switches with entries drawn from the
//! input (unknown streams, contradictory levels), server thinning steps down and up — between
//! hostile packets (the input's chunks) and the MBR clip's own packets. Properties checked:
//! - nothing panics; a rewritten packet parses again and carries no payload of a stream the
//!   client does not receive (a replaced rendition aside, which flows until its replacement);
//! - a resolved choice names only streams of the header, thins only video, and never turns
//!   every stream off;
//! - the stream-switch parser reads at most `MAX_ENTRIES` entries, each naming a stream in
//!   1..=127 or none.
#![no_main]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use asfcast::asf::rewrite::strip_padding;
use asfcast::asf::{AsfHeader, AsfReader, Packet, StreamKind};
use asfcast::rtsp::streamswitch;
use asfcast::station::selection::{Choice, Selected, StreamSelection, Thinning};
use libfuzzer_sys::fuzz_target;

fn mbr() -> &'static (AsfHeader, Vec<Vec<u8>>) {
    static MBR: OnceLock<(AsfHeader, Vec<Vec<u8>>)> = OnceLock::new();
    MBR.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../station-configs/media/demo-mbr.asf");
        let mut r = AsfReader::open(&path).expect("demo-mbr.asf opens");
        let h = r.header().clone();
        let mut v = Vec::new();
        while let Some(Ok(p)) = r.next_packet() {
            if let Ok(parsed) = p.parse() {
                v.push(strip_padding(&parsed));
            }
            if v.len() == 60 {
                break;
            }
        }
        (h, v)
    })
}

fuzz_target!(|data: &[u8]| {
    let (h, packets) = mbr();
    if let Ok(entries) = streamswitch::parse(data) {
        assert!(!entries.is_empty() && entries.len() <= streamswitch::MAX_ENTRIES);
        for e in entries {
            for n in [e.old, e.new].into_iter().flatten() {
                assert!((1..=127).contains(&n));
            }
        }
    }
    let mut rng = common::Rng::new(data);
    let mut sel = StreamSelection::new(Choice::default(), h);
    let hostile = common::chunks(data, &mut rng);
    for (i, p) in packets.iter().enumerate() {
        match rng.below(4) {
            0 => {
                let entries: Vec<(u8, Thinning)> = (0..rng.below(6))
                    .map(|_| (rng.below(130) as u8, Thinning::from_level(rng.below(4) as u16)))
                    .collect();
                let c = Choice::resolve(entries, Some(rng.next() % 2_000_000), h);
                for &n in c.removed.iter().chain(&c.key_frames_only) {
                    assert!(h.stream(n).is_some(), "choice names stream {n}");
                }
                for &n in &c.key_frames_only {
                    assert_eq!(h.stream(n).map(|s| s.kind), Some(StreamKind::Video));
                }
                assert!(h.streams.iter().any(|s| !c.removed.contains(&s.number)));
                sel.switch_to(c, h);
            }
            1 => {
                let _ = sel.step_down(h);
            }
            2 => {
                let _ = sel.step_up(h);
            }
            _ => {}
        }
        if let Some(bad) = hostile.get(i) {
            let _ = sel.apply(bad);
        }
        if let Selected::Rewritten(v) = sel.apply(p) {
            let parsed = Packet::parse(&v).expect("a rewritten packet parses");
            assert!(!parsed.payloads.is_empty());
        }
    }
});
