//! The plain stream's framing (a plain ASF body: header, then fixed-size packets, no `$`),
//! its response head, and the shared delivery rules as a plain client sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::asf::AsfReader;
use crate::http::mmsh::tests::demo_station;
use crate::http::RequestReader;
use crate::station::feed::FeedConfig;

const CFG: StreamConfig = StreamConfig {
    feed: FeedConfig {
        backlog_limit: 64 << 10,
        fast_start_rate: 4.0,
        stall_timeout: Duration::from_secs(5),
    },
    silence_timeout: Duration::from_secs(5),
};

fn drain(q: &mut OutQueue) -> Vec<u8> {
    let v: Vec<u8> = q
        .io_slices(usize::MAX)
        .iter()
        .flat_map(|s| s.to_vec())
        .collect();
    q.advance(v.len());
    v
}

fn req(bytes: &[u8]) -> Request {
    RequestReader::new(8192)
        .feed(bytes)
        .expect("a valid request")
        .expect("a complete request")
}

fn start(h: &Arc<StationHeader>, backlog: Vec<Arc<StationPacket>>, t0: Instant) -> PlainStream {
    let mut out = OutQueue::new();
    let s = PlainStream::start("demo", h.clone(), backlog, CFG, t0, &mut out);
    drain(&mut out);
    s
}

#[test]
fn the_body_is_a_plain_asf_stream_of_fixed_size_packets_from_a_key_frame() {
    let (h, packets, st) = demo_station("demo.asf", 80);
    let backlog: Vec<_> = st.join_backlog().cloned().collect();
    assert!(backlog.len() > 3 && backlog[0].clean && backlog[0].seq > 0);
    let size = h.header.packet_size() as usize;
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = PlainStream::start("demo", h.clone(), backlog.clone(), CFG, t0, &mut out);
    // Fast start: the backlog (under 2 s of media from the clean point) is all due within
    // 3 s, before the silence timeout.
    assert_eq!(
        s.on_timeout(&mut out, t0 + Duration::from_secs(3)),
        Step::Continue
    );
    let body = drain(&mut out);

    // The header first, byte for byte, then packets of exactly the packet size.
    assert!(
        body.starts_with(&h.bytes),
        "the station header opens the body"
    );
    let rest = &body[h.bytes.len()..];
    assert_ne!(rest.get(..2), Some(&b"$D"[..]), "no MMSH framing");
    assert_eq!(rest.len() % size, 0, "packets of {size} bytes");
    assert_eq!(rest.len() / size, backlog.len());

    // A plain ASF reader takes it as a file: the same packets, in order, from the clean point
    // (which starts at its key frame).
    let mut r = AsfReader::new(&body[..]).expect("a plain ASF header");
    assert_eq!(r.packet_size(), size);
    let joined: Vec<_> = std::iter::once(backlog[0].as_join_point())
        .chain(backlog[1..].iter().cloned())
        .collect();
    for want in &joined {
        let got = r
            .next_packet()
            .expect("a packet")
            .expect("a readable packet");
        assert_eq!(got.bytes.len(), size);
        assert_eq!(got.send_time, want.send_time);
        let (got, want_pkt) = (got.parse().unwrap(), Packet::parse(&want.bytes).unwrap());
        assert_eq!(got.payloads.len(), want_pkt.payloads.len());
        assert_eq!(
            &got.bytes[got.body.clone()],
            &want_pkt.bytes[want_pkt.body.clone()]
        );
    }
    assert!(r.next_packet().is_none());
    let first = Packet::parse(&joined[0].bytes).unwrap();
    let first_video = first.payloads.iter().find(|p| p.stream == 1).unwrap();
    assert!(first_video.starts_key_frame(), "joins at a key frame");
    assert_eq!(s.stats().packets, backlog.len() as u64);
    assert_eq!(s.stats().bytes, body.len() as u64);

    // A live packet after the backlog goes out the same way.
    let next = packets.last().unwrap();
    let live = Arc::new(StationPacket::new(
        next.seq + 1,
        next.generation,
        next.send_time,
        false,
        next.bytes.clone(),
    ));
    assert_eq!(s.on_packet(&live, &mut out, t0), Step::Continue);
    assert_eq!(drain(&mut out).len(), size);
}

#[test]
fn padded_packets_parse_and_a_bad_one_is_a_typed_error() {
    let (h, packets, _) = demo_station("demo.asf", 10);
    let size = h.header.packet_size();
    for p in &packets {
        let full = padded_packet(p, size).unwrap();
        assert_eq!(full.len(), size as usize);
        let parsed = Packet::parse(&full).unwrap();
        assert_eq!(parsed.send_time, p.send_time);
    }
    let bad = StationPacket::new(7, 1, 0, true, Arc::from(&b"\x82\0\0garbage"[..]));
    assert!(matches!(
        padded_packet(&bad, size),
        Err(PlainError::Repad { seq: 7, .. })
    ));
    let too_big = packets[0].clone();
    assert!(matches!(
        padded_packet(&too_big, 64),
        Err(PlainError::Repad { .. })
    ));

    // The stream skips it (counted) and goes on.
    let t0 = Instant::now();
    let mut s = start(&h, vec![packets[0].clone()], t0);
    let mut out = OutQueue::new();
    let bad = Arc::new(StationPacket::new(
        packets[0].seq + 1,
        1,
        packets[0].send_time,
        false,
        Arc::from(&b"\x82\0\0garbage"[..]),
    ));
    assert_eq!(s.on_packet(&bad, &mut out, t0), Step::Continue);
    assert!(out.is_empty());
    assert_eq!(s.stats().dropped_bad, 1);
}

#[test]
fn the_response_head_is_an_asf_body_delimited_by_the_close() {
    let head = response_head(&req(
        b"GET /demo HTTP/1.1\r\nHost: a\r\nUser-Agent: Lavf/59.27.100\r\n\r\n",
    ));
    let text = String::from_utf8(head).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: video/x-ms-asf\r\n"), "{text}");
    assert!(text.contains("Cache-Control: no-cache\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("content-length"),
        "{text}"
    );
    assert!(!text.contains("Cougar"), "not an MMSH answer: {text}");
    assert!(!text.contains("features"), "not an MMSH answer: {text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");

    let head = response_head(&req(b"GET /demo HTTP/1.0\r\n\r\n"));
    assert!(String::from_utf8(head)
        .unwrap()
        .starts_with("HTTP/1.0 200 OK\r\n"));
}

#[test]
fn header_changes_continue_silently_or_end_the_stream() {
    let (h, packets, _) = demo_station("demo.asf", 3);
    let t0 = Instant::now();
    let mut s = start(&h, vec![packets[0].clone()], t0);
    let mut out = OutQueue::new();

    // The playlist looping over the same file: nothing sent, the stream goes on.
    let same = Arc::new(StationHeader {
        generation: 2,
        ..(*h).clone()
    });
    assert_eq!(s.on_header(&same, &mut out, t0), Step::Continue);
    assert!(out.is_empty());

    // A compatible header: no bytes (a plain body has one header), the client waits for the
    // next clean point of the new entry.
    let mut bytes = h.bytes.to_vec();
    let last = bytes.len() - 40;
    bytes[last] ^= 0xFF;
    let compatible = Arc::new(StationHeader {
        generation: 3,
        bytes: bytes.into(),
        ..(*h).clone()
    });
    assert_eq!(s.on_header(&compatible, &mut out, t0), Step::Continue);
    assert!(out.is_empty());
    let not_clean = Arc::new(StationPacket::new(
        200,
        3,
        packets[1].send_time,
        false,
        packets[1].bytes.clone(),
    ));
    s.on_packet(&not_clean, &mut out, t0);
    assert!(out.is_empty(), "waits for a clean point");
    let clean = Arc::new(StationPacket::new(
        201,
        3,
        packets[0].send_time,
        true,
        packets[0].bytes.clone(),
    ));
    s.on_packet(&clean, &mut out, t0);
    assert_eq!(drain(&mut out).len(), h.header.packet_size() as usize);
    assert_eq!(s.stats().header_changes, 1);

    // Another file's header: the stream ends with a close, nothing more is sent.
    let (other, _, _) = demo_station("demo-b.asf", 0);
    assert!(matches!(
        s.on_header(&other, &mut out, t0),
        Step::Close { .. }
    ));
    assert!(out.is_empty());
    assert_eq!(s.deadline(), None);
    assert_eq!(s.on_packet(&clean, &mut out, t0), Step::Continue);
    assert!(out.is_empty());
}

#[test]
fn a_client_that_does_not_read_skips_then_is_dropped_with_its_queue() {
    let (h, packets, _) = demo_station("demo.asf", 200);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = PlainStream::start(
        "demo",
        h.clone(),
        vec![packets[0].clone()],
        CFG,
        t0,
        &mut out,
    );
    let mut step = Step::Continue;
    let mut t = t0;
    for (i, p) in packets.iter().enumerate().skip(1) {
        t = t0 + Duration::from_millis(50 * i as u64);
        step = s.on_packet(p, &mut out, t);
        if step != Step::Continue {
            break;
        }
    }
    if step == Step::Continue {
        step = s.on_timeout(&mut out, t + CFG.feed.stall_timeout);
    }
    assert!(matches!(step, Step::Close { .. }), "{step:?}");
    assert!(s.skips() >= 1);
    assert!(out.is_empty(), "the queue of a dropped client is discarded");
}

#[test]
fn a_silent_station_ends_the_stream() {
    let (h, packets, _) = demo_station("demo.asf", 1);
    let t0 = Instant::now();
    let mut s = start(&h, packets, t0);
    let mut out = OutQueue::new();
    let deadline = s.deadline().unwrap();
    assert!(deadline <= t0 + CFG.silence_timeout);
    assert_eq!(
        s.on_timeout(&mut out, t0 + Duration::from_secs(1)),
        Step::Continue
    );
    assert!(matches!(
        s.on_timeout(&mut out, t0 + CFG.silence_timeout),
        Step::Close { .. }
    ));
    assert!(out.is_empty(), "no trailer: the close ends the body");
    s.end();
    assert_eq!(s.deadline(), None);
}
