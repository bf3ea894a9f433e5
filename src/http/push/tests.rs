//! The push parser and ingest against both chunk layouts and hostile bodies.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::body::Body;
use super::framing::{write_chunk, Chunk, Framing, FramingError, Layout, MAX_HEADER};
use super::ingest::{Ingest, IngestStep};
use super::*;
use crate::asf::AsfReader;
use crate::station::live::{LiveEvent, LiveInput};

fn media(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("station-configs/media")
        .join(name)
}

/// The `$H` payload (Header Object + Data Object head) and the packets of a file.
fn file_parts(name: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut r = AsfReader::open(&media(name)).unwrap_or_else(|e| panic!("{e}"));
    let mut head = r.header_bytes().to_vec();
    head.extend_from_slice(&r.data_head().to_bytes());
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet() {
        packets.push(p.unwrap_or_else(|e| panic!("{e}")).bytes);
    }
    (head, packets)
}

/// A push body: `$H`, `n` packets, `$E`.
fn body(layout: Layout, name: &str, n: usize) -> Vec<u8> {
    let (head, packets) = file_parts(name);
    let mut out = write_chunk(layout, b'H', &head, 0).unwrap();
    for (i, p) in packets.iter().take(n).enumerate() {
        out.extend(write_chunk(layout, b'D', p, i as u32 + 1).unwrap());
    }
    out.extend(write_chunk(layout, b'E', &0u32.to_le_bytes(), 0).unwrap());
    out
}

#[derive(Debug, Default)]
struct Seen {
    headers: usize,
    packets: usize,
    ends: usize,
}

fn parse_all(bytes: &[u8], step: usize) -> (Result<(), FramingError>, Seen, Framing) {
    let mut f = Framing::new(MAX_HEADER);
    let mut seen = Seen::default();
    let mut r = Ok(());
    for piece in bytes.chunks(step.max(1)) {
        r = f.feed(piece, &mut |c| match c {
            Chunk::Header { .. } => seen.headers += 1,
            Chunk::Data(_) => seen.packets += 1,
            Chunk::End { .. } => seen.ends += 1,
        });
        if r.is_err() {
            break;
        }
    }
    (r, seen, f)
}

#[test]
fn both_layouts_parse_in_any_split() {
    for layout in [Layout::Spec, Layout::Wmsp] {
        let b = body(layout, "demo.asf", 20);
        for step in [1, 7, 3200, b.len()] {
            let (r, seen, f) = parse_all(&b, step);
            assert_eq!(r, Ok(()), "{layout:?} step {step}");
            assert_eq!(
                (seen.headers, seen.packets, seen.ends),
                (1, 20, 1),
                "{layout:?}"
            );
            assert_eq!(f.layout(), Some(layout));
            assert_eq!(f.buffered(), 0);
        }
    }
}

#[test]
fn ffmpeg_end_chunk_and_filler_are_taken() {
    // FFmpeg's `$E`: 12 bytes, PacketLength 8, no Reason; `$F` filler is skipped.
    let mut b = body(Layout::Wmsp, "demo.asf", 2);
    b.truncate(b.len() - 16);
    b.extend(write_chunk(Layout::Spec, b'F', &[0; 100], 0).unwrap());
    b.extend([0x24, 0x45, 0x08, 0x00, 3, 0, 0, 0, 0, 0, 0x08, 0x00]);
    let (r, seen, f) = parse_all(&b, 5);
    assert_eq!(r, Ok(()));
    assert_eq!((seen.headers, seen.packets, seen.ends), (1, 2, 1));
    assert_eq!(f.skipped, 1);
}

/// (name, body, the error it must get).
type HostileCase = (&'static str, Vec<u8>, fn(&FramingError) -> bool);

#[test]
fn hostile_bodies_are_refused_with_bounded_memory() {
    let (head, packets) = file_parts("demo.asf");
    let h = write_chunk(Layout::Spec, b'H', &head, 0).unwrap();
    let d = write_chunk(Layout::Spec, b'D', &packets[0], 0).unwrap();
    let mut too_big = packets[0].clone();
    too_big.resize(4000, 0);
    let cases: Vec<HostileCase> = vec![
        ("garbage framing", b"GET / HTTP/1.1\r\n".to_vec(), |e| {
            matches!(e, FramingError::Garbage { .. })
        }),
        ("B bit set", vec![0xA4, b'H', 4, 0, 1, 2, 3, 4], |e| {
            matches!(e, FramingError::Garbage { .. })
        }),
        ("$D before $H", d.clone(), |e| {
            matches!(e, FramingError::DataBeforeHeader { .. })
        }),
        (
            "a packet past the header's packet size",
            {
                let mut b = h.clone();
                b.extend(write_chunk(Layout::Spec, b'D', &too_big, 0).unwrap());
                b
            },
            |e| matches!(e, FramingError::PacketTooLarge { .. }),
        ),
        (
            "a header that does not parse",
            write_chunk(Layout::Spec, b'H', &[0x30, 0x26, 0xB2, 0x75, 9, 9, 9], 0).unwrap(),
            |e| matches!(e, FramingError::BadHeader { .. }),
        ),
        (
            "a header whose size field is 2^64-1",
            {
                let mut bad = head.clone();
                bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
                write_chunk(Layout::Spec, b'H', &bad, 0).unwrap()
            },
            |e| matches!(e, FramingError::BadHeader { .. }),
        ),
        (
            "a header whose size overruns the chunk",
            {
                let mut bad = head.clone();
                bad[16..24].copy_from_slice(&60_000u64.to_le_bytes());
                write_chunk(Layout::Spec, b'H', &bad, 0).unwrap()
            },
            |e| matches!(e, FramingError::BadHeader { .. }),
        ),
    ];
    for (name, bytes, want) in cases {
        let (r, _, f) = parse_all(&bytes, 3);
        let e = r.expect_err(name);
        assert!(want(&e), "{name}: {e}");
        assert_eq!(f.buffered(), 0, "{name}: nothing held after an error");
    }
    // A header over the configured limit.
    let mut f = Framing::new(500);
    let e = f.feed(&h, &mut |_| {}).expect_err("header over the limit");
    assert!(e.to_string().contains("more than the limit of 500"), "{e}");
    // Endless chunk lengths: at most one chunk (64 KiB) is ever held.
    let mut f = Framing::new(MAX_HEADER);
    let mut huge = vec![0x24, b'D', 0xFF, 0xFF];
    huge.extend(vec![0u8; 70_000]);
    let _ = f.feed(&h, &mut |_| {});
    let _ = f.feed(&huge[..40_000], &mut |_| {});
    assert!(f.buffered() <= 4 + 65_535);
}

fn peer() -> SocketAddr {
    "127.0.0.1:4242".parse().unwrap()
}

fn ingest(input: &LiveInput, push_id: Option<String>, body_kind: Body, t0: Instant) -> Ingest {
    let id = input.claim("127.0.0.1:4242", push_id.clone()).unwrap();
    Ingest::new(
        "live",
        peer(),
        input.clone(),
        id,
        push_id,
        body_kind,
        Framing::new(MAX_HEADER),
        true,
        t0,
    )
}

fn drain(input: &LiveInput) -> (usize, usize, usize) {
    let (mut h, mut p, mut g) = (0, 0, 0);
    while let Some(ev) = input.pop() {
        match ev {
            LiveEvent::Header { .. } => h += 1,
            LiveEvent::Packet(_) => p += 1,
            LiveEvent::Gone { .. } => g += 1,
        }
    }
    (h, p, g)
}

#[test]
fn ffmpeg_chunked_push_feeds_the_input_and_answers_at_the_end() {
    let input = LiveInput::new("live");
    let t0 = Instant::now();
    let mut ing = ingest(&input, None, Body::chunked(), t0);
    let b = body(Layout::Wmsp, "demo.asf", 30);
    let mut wire = Vec::new();
    for piece in b.chunks(1000) {
        wire.extend(format!("{:x}\r\n", piece.len()).bytes());
        wire.extend_from_slice(piece);
        wire.extend(b"\r\n");
    }
    wire.extend(b"0\r\n\r\n");
    let (body_part, last) = wire.split_at(wire.len() - 5);
    assert_eq!(ing.on_bytes(body_part, t0), IngestStep::Continue);
    assert_eq!(drain(&input), (1, 30, 0));
    match ing.on_bytes(last, t0) {
        IngestStep::Done { response, .. } => {
            let r = String::from_utf8_lossy(&response);
            assert!(r.starts_with("HTTP/1.1 204"), "{r}");
            assert!(r.contains("Server: Cougar/9"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(drain(&input), (0, 0, 1), "the feed ended");
    assert!(input.holder().is_none());
}

#[test]
fn a_dropped_wmhttp_push_is_parked_and_a_lenient_one_released() {
    let t0 = Instant::now();
    let input = LiveInput::new("live");
    let mut ing = ingest(&input, Some("abc".into()), Body::Length(2_147_483_647), t0);
    let b = body(Layout::Spec, "demo.asf", 5);
    assert_eq!(ing.on_bytes(&b[..b.len() - 8], t0), IngestStep::Continue);
    ing.on_closed(t0);
    assert_eq!(input.holder().as_deref(), Some("127.0.0.1:4242"));
    assert!(
        input.claim("10.0.0.9:1", None).is_err(),
        "a second pusher is refused"
    );
    assert!(input.resume("abc", "127.0.0.1:4243").is_some());
    assert_eq!(
        input.expire(t0 + IDLE_TIMEOUT + Duration::from_secs(1)),
        None
    );

    let input = LiveInput::new("live");
    let mut ing = ingest(&input, None, Body::chunked(), t0);
    ing.on_closed(t0);
    assert!(input.holder().is_none());
}

#[test]
fn garbage_ends_the_push_with_400_and_frees_the_station() {
    let t0 = Instant::now();
    let input = LiveInput::new("live");
    let mut ing = ingest(&input, None, Body::Length(100), t0);
    match ing.on_bytes(b"this is not a push", t0) {
        IngestStep::Done {
            response, close, ..
        } => {
            assert!(close);
            assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 400"));
        }
        other => panic!("{other:?}"),
    }
    assert!(input.holder().is_none());
    assert_eq!(drain(&input), (0, 0, 1));
}

#[test]
fn a_stalled_push_times_out_with_408() {
    let t0 = Instant::now();
    let input = LiveInput::new("live");
    let mut ing = ingest(&input, None, Body::chunked(), t0);
    // A trickle: bytes, but never a whole chunk.
    assert_eq!(
        ing.on_bytes(b"1\r\n$\r\n", t0 + Duration::from_secs(30)),
        IngestStep::Continue
    );
    assert_eq!(ing.deadline(), t0 + IDLE_TIMEOUT);
    match ing.on_timeout(t0 + IDLE_TIMEOUT) {
        IngestStep::Done { response, .. } => {
            assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 408"))
        }
        other => panic!("{other:?}"),
    }
    assert!(input.holder().is_none());
}

#[test]
fn classify_and_cookies() {
    let mut rd = crate::http::RequestReader::new(16 * 1024);
    let r = rd
        .feed(b"POST /live HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-wms-pushstart\r\nTransfer-Encoding: chunked\r\nCookie: a=b; push-id=77\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(classify(&r), Some(PushRequest::Start));
    assert_eq!(push_id(&r).as_deref(), Some("77"));
    let mut rd = crate::http::RequestReader::new(16 * 1024);
    let r = rd
        .feed(b"POST /live HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-wms-pushsetup;charset=UTF-8\r\nCookie: push-id=0\r\nContent-Length: 16\r\n\r\nAutoDestroy: 1\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(classify(&r), Some(PushRequest::Setup));
    assert_eq!(push_id(&r), None);
    assert_eq!(r.body, b"AutoDestroy: 1\r\n");
    assert_ne!(new_push_id(1), "0");
    assert_eq!(new_push_id(u128::MAX).len(), 32);
}

#[test]
fn a_stopped_station_ends_its_push_with_503() {
    let t0 = Instant::now();
    let input = LiveInput::new("live");
    let mut ing = ingest(&input, None, Body::Length(u64::MAX), t0);
    let b = body(Layout::Wmsp, "demo.asf", 5);
    assert_eq!(ing.on_bytes(&b[..2000], t0), IngestStep::Continue);
    // A reload restarted the station (or it was stopped).
    input.close();
    match ing.on_bytes(&b[2000..], t0) {
        IngestStep::Done {
            response, close, ..
        } => {
            assert!(close);
            assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 503"));
        }
        other => panic!("{other:?}"),
    }
}
