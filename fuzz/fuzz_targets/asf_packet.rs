//! Fuzzes the ASF data packet parser and the delivery rewrites (asf.md §3.1–§3.6).
//!
//! For every input that `Packet::parse` accepts:
//! - `strip_padding` gives a packet that parses, is no longer than the original, has no padding
//!   and carries the same payloads (stream, key bit, data bytes), Send Time and Duration;
//! - `repad` of the stripped packet to a size at or above the stripped length gives exactly
//!   that many bytes, parses, and carries the same payloads (the size comes from the input's
//!   last two bytes so every Padding Length width is reached);
//! - zero-extending a stripped packet that states its length, as ffmpeg's and VLC's clients
//!   do, keeps the payloads;
//! - `select_streams` and `thin_to_key_frames` results parse and keep exactly the payloads
//!   the filter selected.
#![no_main]

use asfcast::asf::rewrite::{self, Filtered};
use asfcast::asf::{Packet, Payload, MAX_PACKET_SIZE};
use libfuzzer_sys::fuzz_target;

/// What a rewrite must keep of each payload.
type Kept = Vec<(u8, bool, Vec<u8>)>;

fn kept(p: &Packet<'_>) -> Kept {
    kept_where(p, |_| true)
}

fn kept_where(p: &Packet<'_>, keep: impl Fn(&Payload) -> bool) -> Kept {
    p.payloads
        .iter()
        .filter(|x| keep(x))
        .map(|x| (x.stream, x.key_frame, p.bytes[x.data.clone()].to_vec()))
        .collect()
}

fn parse_or_die<'a>(what: &str, bytes: &'a [u8], from: &[u8]) -> Packet<'a> {
    match Packet::parse(bytes) {
        Ok(p) => p,
        Err(e) => panic!(
            "{what} does not parse: {e}\n  from  {}\n  gave  {}",
            hex(from),
            hex(bytes)
        ),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(pkt) = Packet::parse(data) else {
        return;
    };
    let orig = kept(&pkt);
    let _ = pkt.key_frame_starts().count();
    for p in &pkt.payloads {
        let _ = p.object_size(data);
        let _ = p.presentation_time(data);
    }

    // Strip.
    let s = rewrite::strip_padding(&pkt);
    assert!(s.len() <= pkt.length, "strip_padding grew the packet");
    let sp = parse_or_die("strip_padding", &s, data);
    assert_eq!(kept(&sp), orig, "strip_padding changed the payloads");
    assert_eq!(sp.send_time, pkt.send_time);
    assert_eq!(sp.duration, pkt.duration);

    // Zero-extension by a client, for a packet that states its length (one that does not was
    // left unchanged at its full size, and a client has nothing to re-pad).
    if sp.packet_length_field.is_some() {
        let mut z = s.clone();
        z.resize(s.len() + 64, 0);
        let zp = parse_or_die("zero-extended stripped packet", &z, data);
        assert_eq!(
            kept(&zp),
            orig,
            "zero-extended stripped packet changed the payloads"
        );
    }

    // Re-pad to a size >= the stripped length (bounded by the largest packet size).
    let extra = match data {
        [.., a, b] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    let size = (s.len() + extra).min(MAX_PACKET_SIZE as usize).max(s.len());
    if let Ok(size32) = u32::try_from(size) {
        match rewrite::repad(&sp, size32) {
            Ok(r) => {
                assert_eq!(r.len(), size, "repad gave the wrong size");
                let rp = parse_or_die("repad", &r, &s);
                assert_eq!(kept(&rp), orig, "repad changed the payloads");
                assert_eq!(rp.send_time, pkt.send_time);
                assert_eq!(rp.duration, pkt.duration);
            }
            Err(e) => panic!(
                "repad to {size} (stripped length {}) failed: {e}\n  stripped {}",
                s.len(),
                hex(&s)
            ),
        }
    }

    // Stream selection: keep the streams whose bit is set in a mask from the input.
    let mask = data.first().copied().unwrap_or(0);
    let streams: Vec<u8> = (0u8..=127).filter(|n| mask & (1 << (n % 8)) != 0).collect();
    check_filter(
        "select_streams",
        &pkt,
        rewrite::select_streams(&pkt, &streams),
        |p| streams.contains(&p.stream),
    );
    let video: Vec<u8> = pkt.payloads.iter().map(|p| p.stream).take(1).collect();
    check_filter(
        "thin_to_key_frames",
        &pkt,
        rewrite::thin_to_key_frames(&pkt, &video),
        |p| !video.contains(&p.stream) || p.key_frame,
    );
});

fn check_filter(what: &str, pkt: &Packet<'_>, f: Filtered, keep: impl Fn(&Payload) -> bool) {
    let want = kept_where(pkt, &keep);
    match f {
        Filtered::Unchanged => assert_eq!(want.len(), pkt.payloads.len(), "{what}: Unchanged"),
        Filtered::Dropped => assert!(want.is_empty(), "{what}: Dropped but payloads kept"),
        Filtered::Rewritten(v) => {
            let p = parse_or_die(what, &v, pkt.bytes);
            assert_eq!(kept(&p), want, "{what} kept the wrong payloads");
            assert_eq!(p.send_time, pkt.send_time);
            assert_eq!(p.duration, pkt.duration);
        }
    }
}
