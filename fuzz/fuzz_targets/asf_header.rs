//! Fuzzes the ASF Header Object parser and the streaming file reader (asf.md §1, §7).
//!
//! Properties checked on every input:
//! - `AsfHeader::parse` never panics;
//! - a header that parses re-serialises (`to_bytes`) to bytes that parse to an equal header,
//!   and to the same bytes again (serialisation is a fixed point);
//! - its broadcast form (`to_broadcast`, §2.1) parses, keeps Broadcast on and Seekable off, and
//!   keeps the streams and packet size;
//! - `AsfReader` over the same bytes never panics and yields a bounded number of packets (the
//!   input size bounds the loop, so a reader that stops advancing is caught as a hang).
#![no_main]

use std::io::Cursor;

use asfcast::asf::header::AsfHeader;
use asfcast::asf::AsfReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = AsfHeader::parse(data) {
        check_header(&h);
    }
    // The Header Object alone inside a longer input: take the size field at face value.
    if let Some(size) = data.get(16..24) {
        let mut b = [0u8; 8];
        b.copy_from_slice(size);
        if let Some(head) = usize::try_from(u64::from_le_bytes(b))
            .ok()
            .and_then(|n| data.get(..n))
        {
            if head.len() != data.len() {
                if let Ok(h) = AsfHeader::parse(head) {
                    check_header(&h);
                }
            }
        }
    }
    read_all(data);
});

fn check_header(h: &AsfHeader) {
    let bytes = h.to_bytes();
    let again = AsfHeader::parse(&bytes).expect("to_bytes() of a parsed header must parse");
    assert_eq!(&again, h, "to_bytes() round trip changed the header");
    assert_eq!(again.to_bytes(), bytes, "to_bytes() is not a fixed point");

    let b = h.to_broadcast();
    let bb = b.to_bytes();
    let bp = AsfHeader::parse(&bb).expect("to_broadcast() must parse");
    assert_eq!(bp, b, "broadcast header round trip changed it");
    assert!(
        bp.file.is_broadcast(),
        "broadcast header without the Broadcast flag"
    );
    assert!(!bp.file.is_seekable(), "broadcast header still seekable");
    assert_eq!(bp.packet_size(), h.packet_size());
    assert_eq!(bp.streams, h.streams);

    // Accessors must not panic on anything parse accepted.
    let _ = h.video_streams();
    let _ = h.clean_point_streams();
    for s in &h.streams {
        let _ = h.stream_bitrate(s.number);
        let _ = s.codec_name();
        let _ = s.audio();
        let _ = s.video();
    }
    let _ = h.file.duration_ms();
}

fn read_all(data: &[u8]) {
    let Ok(mut r) = AsfReader::new(Cursor::new(data)) else {
        return;
    };
    let _ = r.header().packet_size();
    let _ = r.header_bytes().len();
    let _ = r.data_head();
    // Every packet consumes at least one input byte (or an MMSH chunk head), so a reader that
    // yields more items than there are bytes is not advancing.
    let bound = data.len() + 1;
    let mut n = 0usize;
    while let Some(item) = r.next_packet() {
        n += 1;
        assert!(
            n <= bound,
            "AsfReader yielded more than {bound} packets from {bound} bytes"
        );
        if let Ok(p) = item {
            assert_eq!(p.bytes.len(), r.packet_size(), "packet of the wrong size");
            let _ = p.parse();
        }
    }
}
