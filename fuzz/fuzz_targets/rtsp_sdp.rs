//! Fuzzes the DESCRIBE answer (`src/rtsp/sdp.rs`): the SDP asfcast writes for a station
//! header, read back with an SDP parser, as FFmpeg, VLC and GStreamer read it.
//!
//! Input: one flags byte (layout, generation), then an ASF Header Object (its size field
//! says where it ends); bytes after it are the station name and the control base URL
//! (split at the first `\x01`). The base keeps only graphic ASCII: the session builds it from
//! a parsed `url::Url` (scheme, host, port, first path segment), which percent-encodes
//! everything else, so no other character reaches `describe` there. Properties checked
//! for every header that parses:
//! - `describe` never panics and writes an SDP that parses (`sdp-types`);
//! - the session carries `a=control:<base>`, `a=maxps:<packet size>` and `a=pgmpu` whose
//!   base64 decodes to the station header bytes exactly;
//! - there is one media section per track of the layout, in order, each with
//!   `a=control:<base>/<control>`; every control resolves with `find_track` to a track of the
//!   same kind, and `track_streams` names only streams of the header.
#![no_main]

use asfcast::asf::{AsfHeader, DataHead};
use asfcast::rtsp::sdp::{describe, find_track, layout_for, track_streams, tracks, Layout};
use asfcast::station::StationHeader;
use base64::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let size = rest
        .get(16..24)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= rest.len())
        .unwrap_or(rest.len());
    let (head, tail) = rest.split_at(size);
    let Ok(h) = AsfHeader::parse(head) else {
        return;
    };
    let tail = String::from_utf8_lossy(tail).replace(['\r', '\n'], "");
    let (name, base) = tail.split_once('\u{1}').unwrap_or((&tail, ""));
    let base: String = base.chars().filter(char::is_ascii_graphic).collect();
    let base = if base.is_empty() {
        "rtsp://127.0.0.1:554/demo".to_string()
    } else {
        base.to_string()
    };
    let station = StationHeader::live(
        u64::from(flags >> 2),
        &h,
        &DataHead::broadcast(h.file.file_id),
        u16::from(flags),
    );
    let layout = if flags & 1 != 0 {
        Layout::Aggregate
    } else {
        layout_for(Some(name))
    };
    let d = describe(&station, &base, name, u64::from(flags), layout);
    assert_eq!(d.content_base, format!("{base}/"));
    let sdp = sdp_types::Session::parse(d.sdp.as_bytes())
        .unwrap_or_else(|e| panic!("SDP does not parse ({e:?}):\n{}", d.sdp));
    let attr = |name: &str| {
        sdp.attributes
            .iter()
            .find(|a| a.attribute == name)
            .and_then(|a| a.value.clone())
    };
    assert_eq!(attr("control").as_deref().map(str::trim), Some(base.trim()));
    assert_eq!(
        attr("maxps").map(|v| v.trim().to_string()),
        Some(station.header.packet_size().to_string())
    );
    let pgmpu = attr("pgmpu").expect("a=pgmpu");
    let b64 = pgmpu
        .trim()
        .strip_prefix("data:application/vnd.ms.wms-hdr.asfv1;base64,")
        .expect("pgmpu prefix");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("pgmpu is base64");
    assert_eq!(&bytes[..], &station.bytes[..], "pgmpu is not the header");

    let ts = tracks(&station, layout);
    assert_eq!(sdp.medias.len(), ts.len(), "one media section per track");
    for (m, t) in sdp.medias.iter().zip(&ts) {
        let control = m
            .attributes
            .iter()
            .find(|a| a.attribute == "control")
            .and_then(|a| a.value.clone())
            .expect("media control");
        assert_eq!(control.trim(), format!("{base}/{}", t.control).trim());
        let found = find_track(&station, &t.control).expect("track control resolves");
        assert_eq!(found.kind, t.kind);
        for n in track_streams(&station, t.kind) {
            assert!(station.header.stream(n).is_some());
        }
    }
});
