//! Hostile and broken ASF input: every case is an error with a message, never a panic, and no
//! allocation sized by an input field (asf.md §7).

use std::io::Cursor;

use asfcast::asf::header::AsfHeader;
use asfcast::asf::{AsfError, AsfReader, Packet, ReadError};
use proptest::prelude::*;

mod support;

fn sample_bytes() -> Vec<u8> {
    let p = support::sample("sample-wmv2-wmav2.asf");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn header_len(b: &[u8]) -> usize {
    u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize
}

/// Offset of the first child object with this GUID's first 4 bytes (LE Data1).
fn find_child(b: &[u8], data1: u32) -> usize {
    let mut at = 30;
    while at + 24 <= header_len(b) {
        if b[at..at + 4] == data1.to_le_bytes() {
            return at;
        }
        at += u64::from_le_bytes(b[at + 16..at + 24].try_into().unwrap()) as usize;
    }
    panic!("object {data1:08x} not found")
}

fn open(bytes: Vec<u8>) -> Result<AsfReader<Cursor<Vec<u8>>>, ReadError> {
    AsfReader::new(Cursor::new(bytes))
}

#[test]
fn truncated_header_is_reported() {
    let b = sample_bytes();
    for cut in [
        0,
        10,
        24,
        29,
        30,
        100,
        500,
        header_len(&b) - 1,
        header_len(&b) + 20,
    ] {
        match open(b[..cut].to_vec()) {
            Err(ReadError::Truncated { .. }) | Err(ReadError::NotAsf(_)) => {}
            Err(e) => panic!("cut {cut}: unexpected error {e}"),
            Ok(_) => panic!("cut {cut}: accepted a truncated header"),
        }
    }
}

#[test]
fn child_object_size_overflowing_the_header_is_an_error() {
    let b = sample_bytes();
    let hl = header_len(&b);
    let fp = find_child(&b, 0x8CABDCA1);
    for bad in [u64::MAX, 1 << 48, hl as u64, 23, 0] {
        let mut h = b[..hl].to_vec();
        h[fp + 16..fp + 24].copy_from_slice(&bad.to_le_bytes());
        let e = AsfHeader::parse(&h).unwrap_err();
        assert!(
            matches!(e, AsfError::ObjectSize { .. } | AsfError::Truncated { .. }),
            "size {bad}: {e}"
        );
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn huge_header_size_is_refused_before_allocating() {
    let mut b = sample_bytes();
    b[16..24].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let e = open(b).err().expect("must fail");
    assert!(
        matches!(e, ReadError::Header(AsfError::ObjectSize { .. })),
        "{e}"
    );
}

#[test]
fn zero_huge_and_mismatched_packet_sizes_are_refused() {
    let b = sample_bytes();
    let hl = header_len(&b);
    let fp = find_child(&b, 0x8CABDCA1);
    for (min, max) in [
        (0u32, 0u32),
        (u32::MAX, u32::MAX),
        (1 << 29, 1 << 29),
        (3000, 3200),
        (10, 10),
    ] {
        let mut h = b[..hl].to_vec();
        h[fp + 92..fp + 96].copy_from_slice(&min.to_le_bytes());
        h[fp + 96..fp + 100].copy_from_slice(&max.to_le_bytes());
        let e = AsfHeader::parse(&h).unwrap_err();
        assert!(e.to_string().contains("packet size"), "{min}/{max}: {e}");
    }
}

#[test]
fn bad_guids_are_refused() {
    let b = sample_bytes();
    let mut h = b.clone();
    h[0] ^= 0xFF;
    assert!(matches!(open(h), Err(ReadError::NotAsf(_))));
    // A corrupted Data Object GUID.
    let hl = header_len(&b);
    let mut d = b.clone();
    d[hl] ^= 0xFF;
    // The reader then treats it as an unknown object and skips by its size: either way it
    // must end in an error, not in packets read from the wrong place.
    assert!(open(d).is_err());
    // An unknown stream type GUID is kept as "other", not a crash.
    let sp = find_child(&b, 0xB7DC0791);
    let mut s = b[..hl].to_vec();
    s[sp + 24] ^= 0xFF;
    let h = AsfHeader::parse(&s).unwrap();
    assert!(matches!(
        h.streams[0].kind,
        asfcast::asf::StreamKind::Other(_)
    ));
}

#[test]
fn payload_length_past_the_packet_is_an_error_at_that_packet() {
    let b = sample_bytes();
    let data_start = header_len(&b) + 50;
    let mut m = b.clone();
    // Packet 0 of the sample is a multiple-payload packet (`82 00 00 11 5D ...`): give its
    // first payload a length far past the packet.
    let p0 = data_start;
    assert_eq!(&m[p0..p0 + 3], &[0x82, 0, 0]);
    let parsed = Packet::parse(&b[p0..p0 + 3200]).unwrap();
    assert!(parsed.has_multiple_payloads());
    let first = &parsed.payloads[0];
    let len_at = p0 + first.data.start - 2;
    m[len_at..len_at + 2].copy_from_slice(&0xFFF0u16.to_le_bytes());
    let mut r = open(m).unwrap();
    match r.next_packet() {
        Some(Err(ReadError::Packet {
            index: 0,
            offset,
            source,
        })) => {
            assert_eq!(offset as usize, data_start);
            assert!(source.to_string().contains("Payload Data"), "{source}");
        }
        other => panic!("expected an error at packet 0, got {other:?}"),
    }
    // Reading goes on with the next packet.
    assert!(matches!(r.next_packet(), Some(Ok(p)) if p.index == 1));
}

#[test]
fn file_cut_inside_a_packet_ends_with_a_truncation_at_that_packet() {
    let b = sample_bytes();
    let data_start = header_len(&b) + 50;
    let cut = data_start + 3200 * 7 + 1000;
    let mut r = open(b[..cut].to_vec()).unwrap();
    let mut ok = 0;
    let mut last = None;
    while let Some(p) = r.next_packet() {
        match p {
            Ok(_) => ok += 1,
            Err(e) => last = Some(e),
        }
    }
    assert_eq!(ok, 7);
    match last {
        Some(ReadError::Truncated {
            what, got, need, ..
        }) => {
            assert_eq!(what, "data packet 7");
            assert_eq!((got, need), (1000, 3200));
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_the_packet_parser(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Packet::parse(&bytes);
    }

    #[test]
    fn mutated_packets_never_panic(pos in 0usize..3200, val in any::<u8>(), pkt in 0usize..100) {
        let b = sample_bytes();
        let start = header_len(&b) + 50 + pkt * 3200;
        let mut p = b[start..start + 3200].to_vec();
        p[pos] = val;
        if let Ok(parsed) = Packet::parse(&p) {
            let s = asfcast::asf::rewrite::strip_padding(&parsed);
            let sp = Packet::parse(&s).expect("a stripped packet parses");
            prop_assert_eq!(sp.payloads.len(), parsed.payloads.len());
            prop_assert!(asfcast::asf::rewrite::repad(&sp, 3200).is_ok());
        }
    }

    #[test]
    fn mutated_headers_never_panic(pos in 0usize..800, val in any::<u8>()) {
        let b = sample_bytes();
        let hl = header_len(&b);
        let mut h = b[..hl].to_vec();
        let pos = pos % hl;
        h[pos] = val;
        let _ = AsfHeader::parse(&h);
        let _ = open([h.as_slice(), &b[hl..]].concat()).map(|r| r.count());
    }
}
