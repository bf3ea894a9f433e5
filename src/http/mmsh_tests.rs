//! Tests of the MMSH wire format, request classification, responses and the per-client stream,
//! with the requests FFmpeg, VLC and libmms send (their sources: FFmpeg `mmsh.c`, VLC
//! `access/mms/mmsh.c`, libmms `mmsh.c`) and the demo station's real header and packets.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::stream::{compare_headers, HeaderChange, MmshStream, StreamConfig};
use super::*;
use crate::asf::rewrite::strip_padding;
use crate::asf::{AsfReader, Packet};
use crate::http::RequestReader;
use crate::station::feed::FeedConfig;
use crate::station::sink::{OutQueue, Step};
use crate::station::{Station, StationHeader, StationPacket};

pub(crate) fn media(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("station-configs/media")
        .join(name)
}

/// The demo station after `packets` packets: its header and the packets as the hub made them.
pub(crate) fn demo_station(
    file: &str,
    packets: usize,
) -> (Arc<StationHeader>, Vec<Arc<StationPacket>>, Station) {
    let mut r = AsfReader::open(&media(file)).unwrap();
    let mut st = Station::new("demo", 10_000);
    let h = st.set_header(StationHeader::live(1, r.header(), r.data_head(), 1));
    let mut out = Vec::new();
    while out.len() < packets {
        let Some(p) = r.next_packet() else { break };
        let p = p.unwrap();
        let s = strip_padding(&p.parse().unwrap());
        out.push(st.push(s).unwrap());
    }
    (h, out, st)
}

fn req(bytes: &[u8]) -> Request {
    RequestReader::new(8192).feed(bytes).unwrap().unwrap()
}

fn drain(q: &mut OutQueue) -> Vec<u8> {
    let v: Vec<u8> = q
        .io_slices(usize::MAX)
        .iter()
        .flat_map(|s| s.to_vec())
        .collect();
    q.advance(v.len());
    v
}

fn chunks(bytes: &[u8]) -> Vec<Chunk> {
    let mut r = ChunkReader::new();
    r.push(bytes);
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk().unwrap() {
        out.push(c);
    }
    assert_eq!(r.buffered(), 0, "trailing bytes");
    out
}

const FFMPEG_DESCRIBE: &[u8] = b"GET /demo HTTP/1.1\r\nRange: bytes=0-\r\nIcy-MetaData: 1\r\n\
Accept: */*\r\nUser-Agent: NSPlayer/4.1.0.3856\r\nHost: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\nConnection: Close\r\n\r\n";

/// FFmpeg's Play: the last Pragma runs into `Connection: Close`.
pub(crate) const FFMPEG_PLAY: &[u8] =
    b"GET /demo HTTP/1.1\r\nRange: bytes=0-\r\nConnection: close\r\n\
Icy-MetaData: 1\r\nAccept: */*\r\nUser-Agent: NSPlayer/4.1.0.3856\r\nHost: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,request-context=2\r\nPragma: xPlayStrm=1\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\nPragma: stream-switch-count=2\r\n\
Pragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close\r\n\r\n";

/// VLC 3's Play (HTTP/1.0, audio switched off with level 2).
const VLC_PLAY_NO_AUDIO: &[u8] = b"GET /demo HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\
User-Agent: NSPlayer/7.10.0.3059\r\nPragma: no-cache,rate=1.000000,request-context=2\r\n\
Pragma: xPlayStrm=1\r\nPragma: xClientGUID={12345678-1234-1234-1234-123456789abc}\r\n\
Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:2 \r\n\
Connection: Close\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Framing

#[test]
fn chunk_heads_have_exact_bytes() {
    assert_eq!(
        data_chunk_head(ChunkType::Data, 5, 1, 0, 100).unwrap(),
        [0x24, 0x44, 108, 0, 5, 0, 0, 0, 1, 0, 108, 0]
    );
    assert_eq!(
        data_chunk_head(ChunkType::Header, 0x0102_0304, 2, 0x0C, 0x1234).unwrap(),
        [0x24, 0x48, 0x3C, 0x12, 4, 3, 2, 1, 2, 0x0C, 0x3C, 0x12]
    );
    assert_eq!(
        reason_chunk(ChunkType::End, 0),
        [0x24, 0x45, 4, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        reason_chunk(ChunkType::End, END_NEXT_ENTRY),
        [0x24, 0x45, 4, 0, 1, 0, 0, 0]
    );
    assert_eq!(
        reason_chunk(ChunkType::Change, 0),
        *b"$C\x04\x00\x00\x00\x00\x00"
    );
    assert!(data_chunk_head(ChunkType::Data, 0, 0, 0, MAX_CHUNK_PAYLOAD).is_ok());
    assert_eq!(
        data_chunk_head(ChunkType::Data, 0, 0, 0, MAX_CHUNK_PAYLOAD + 1),
        Err(FrameError::TooLong {
            len: MAX_CHUNK_PAYLOAD + 1
        })
    );
}

#[test]
fn a_small_header_is_one_chunk_a_large_one_is_split() {
    let h = header_chunks(b"abc", 3);
    assert_eq!(h, b"$H\x0b\x00\x00\x00\x00\x00\x03\x0c\x0b\x00abc");
    let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let cs = chunks(&header_chunks(&big, 0));
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].payload.len(), MAX_CHUNK_PAYLOAD);
    assert_eq!((cs[0].location_or_reason, cs[0].af_flags), (0, AF_FIRST));
    assert_eq!(
        (cs[1].location_or_reason, cs[1].af_flags),
        (MAX_CHUNK_PAYLOAD as u32, AF_LAST)
    );
    let joined: Vec<u8> = cs.iter().flat_map(|c| c.payload.clone()).collect();
    assert_eq!(joined, big);
}

#[test]
fn the_reader_is_as_strict_as_ffmpeg_and_vlc() {
    let bad = |bytes: &[u8]| {
        let mut r = ChunkReader::new();
        r.push(bytes);
        r.next_chunk()
    };
    // The B bit set: FFmpeg's "Strange chunk type".
    assert!(matches!(
        bad(b"\xa4D\x08\x00\x00\x00\x00\x00\x00\x00\x08\x00"),
        Err(FrameError::BadType { .. })
    ));
    assert!(matches!(
        bad(b"$M\x08\x00\x00\x00\x00\x00\x00\x00\x08\x00"),
        Err(FrameError::BadType { .. })
    ));
    // PacketSize differing from PacketLength: VLC and FFmpeg would disagree on the length.
    assert!(matches!(
        bad(b"$D\x09\x00\x00\x00\x00\x00\x00\x00\x08\x00x"),
        Err(FrameError::BadLength { .. })
    ));
    // $E with a data header (libmms and FFmpeg read 4 bytes after it).
    assert!(matches!(
        bad(b"$E\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
        Err(FrameError::BadLength { .. })
    ));
    // Incomplete: wait.
    assert_eq!(bad(b"$D\x09\x00\x00"), Ok(None));
}

#[test]
fn basic_headers_read_back_what_the_writers_write() {
    let d = data_chunk_head(ChunkType::Data, 7, 1, 0, 300).unwrap();
    assert_eq!(
        basic_header([d[0], d[1], d[2], d[3]], 0),
        Ok((ChunkType::Data, 308))
    );
    let e = reason_chunk(ChunkType::End, END_FINISHED);
    assert_eq!(
        basic_header([e[0], e[1], e[2], e[3]], 0),
        Ok((ChunkType::End, 4))
    );
    assert_eq!(
        basic_header(*b"XXXX", 12),
        Err(FrameError::BadType {
            offset: 12,
            b0: b'X',
            b1: b'X'
        })
    );
}

proptest! {
    #[test]
    fn data_chunks_round_trip(
        payload in proptest::collection::vec(any::<u8>(), 0..2000),
        location in any::<u32>(),
        incarnation in any::<u8>(),
        split in 0usize..2100,
    ) {
        let mut bytes = data_chunk_head(ChunkType::Data, location, incarnation, 0, payload.len())
            .unwrap()
            .to_vec();
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&reason_chunk(ChunkType::End, 7));
        let mut r = ChunkReader::new();
        let at = split.min(bytes.len());
        r.push(&bytes[..at]);
        let mut got = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() { got.push(c); }
        r.push(&bytes[at..]);
        while let Some(c) = r.next_chunk().unwrap() { got.push(c); }
        prop_assert_eq!(got.len(), 2);
        prop_assert_eq!(got[0].kind, ChunkType::Data);
        prop_assert_eq!(got[0].location_or_reason, location);
        prop_assert_eq!(got[0].incarnation, incarnation);
        prop_assert_eq!(&got[0].payload, &payload);
        prop_assert_eq!(got[1].kind, ChunkType::End);
        prop_assert_eq!(got[1].location_or_reason, 7);
    }

    #[test]
    fn the_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut r = ChunkReader::new();
        r.push(&bytes);
        for _ in 0..300 {
            match r.next_chunk() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }

    #[test]
    fn stream_switch_parsing_never_panics(s in "\\PC{0,200}") {
        let v = parse_stream_switches(&[s.as_str()]);
        prop_assert!(v.len() <= MAX_SWITCHES);
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and responses

#[test]
fn stream_switch_entries_parse_as_the_clients_write_them() {
    let s = parse_stream_switches(&["ffff:1:0 ffff:2:2 "]);
    assert_eq!(
        s,
        [
            StreamSwitch {
                hex: Some(1),
                dec: Some(1),
                level: Thinning::All
            },
            StreamSwitch {
                hex: Some(2),
                dec: Some(2),
                level: Thinning::Off
            }
        ]
    );
    let s = parse_stream_switches(&[
        "ffff:a:1",
        "ffff:10:0 junk ffff:3:9 ffff::0 1:2:0:4 ffff:12345:0",
    ]);
    assert_eq!(
        s,
        [
            StreamSwitch {
                hex: Some(10),
                dec: None,
                level: Thinning::KeyFrames
            },
            StreamSwitch {
                hex: Some(16),
                dec: Some(10),
                level: Thinning::All
            }
        ]
    );
    let many = "ffff:1:0 ".repeat(1000);
    assert_eq!(parse_stream_switches(&[many.as_str()]).len(), MAX_SWITCHES);
}

#[test]
fn selection_resolves_hex_or_decimal_against_the_header() {
    let (h, _, _) = demo_station("demo.asf", 0);
    let mut header = h.header.clone();
    let video = header.video_streams()[0];
    let audio = header
        .streams
        .iter()
        .find(|s| s.kind == crate::asf::StreamKind::Audio)
        .unwrap()
        .number;
    let sw = |text: &str| parse_stream_switches(&[text]);
    // Audio off, video thinned.
    let sel = resolve_switches(
        &sw(&format!("ffff:{video}:1 ffff:{audio}:2")),
        None,
        &header,
    );
    assert_eq!(sel.removed, [audio]);
    assert_eq!(sel.key_frames_only, [video]);
    assert!(!sel.keeps(audio, true));
    assert!(sel.keeps(video, true) && !sel.keeps(video, false));
    // Level 1 on audio is not applied (no key-frame bits on audio).
    let sel = resolve_switches(&sw(&format!("ffff:{audio}:1")), None, &header);
    assert!(sel.is_all());
    // Renumber the streams 10 and 16: "10" names stream 16 in hex and 10 in decimal.
    for s in &mut header.streams {
        s.number = if s.number == video { 10 } else { 16 };
    }
    // FFmpeg/libmms style (decimal): "ffff:10:0 ffff:16:2" — hex would read 16 and 22 (no such
    // stream), so decimal wins and stream 16 (audio) is removed.
    let sel = resolve_switches(&sw("ffff:10:0 ffff:16:2"), None, &header);
    assert_eq!(sel.removed, [16]);
    // Spec style (hex): "ffff:a:0 ffff:10:2" — hex names 10 and 16.
    let sel = resolve_switches(&sw("ffff:a:0 ffff:10:2"), None, &header);
    assert_eq!(sel.removed, [16]);
    // Unknown streams are ignored.
    assert!(resolve_switches(&sw("ffff:7f:2"), None, &header).is_all());
}

#[test]
fn requests_are_classified_like_the_spec_says() {
    assert_eq!(classify(&req(FFMPEG_DESCRIBE)), MmshRequest::Describe);
    match classify(&req(FFMPEG_PLAY)) {
        MmshRequest::Play {
            switches,
            client_id,
        } => {
            assert_eq!(switches.len(), 2);
            assert_eq!(client_id, None);
        }
        other => panic!("{other:?}"),
    }
    match classify(&req(
        b"GET /demo HTTP/1.1\r\nHost: a\r\nPragma: xPlayStrm=1\r\nPragma: client-id=42\r\n\r\n",
    )) {
        MmshRequest::Play { client_id, .. } => assert_eq!(client_id.as_deref(), Some("42")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        classify(&req(b"POST /demo HTTP/1.0\r\nContent-Length: 2\r\n\r\nab")),
        MmshRequest::Post
    );
    for pipelined in [
        &b"GET /demo HTTP/1.1\r\nHost: a\r\nPragma: xPlayNextEntry=1\r\n\r\n"[..],
        b"GET /demo HTTP/1.1\r\nHost: a\r\nPragma: pipeline-request=1\r\n\r\n",
        b"GET /demo HTTP/1.1\r\nHost: a\r\nPragma: stream-switch-entry=ffff:1:0\r\n\r\n",
    ] {
        assert!(matches!(
            classify(&req(pipelined)),
            MmshRequest::Unsupported(501, _)
        ));
    }
    assert!(matches!(
        classify(&req(b"DELETE /demo HTTP/1.1\r\nHost: a\r\n\r\n")),
        MmshRequest::Unsupported(405, _)
    ));
}

#[test]
fn describe_response_has_the_exact_head_and_one_header_chunk() {
    let r = describe_response(&req(FFMPEG_DESCRIBE), b"HDR", 77);
    let bytes = r.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nServer: Cougar/9.01.01.3814\r\nCache-Control: no-cache\r\n\
         Pragma: no-cache\r\nPragma: client-id=77\r\nPragma: features=\"broadcast\"\r\nSupported: com.microsoft.wm.sswitch\r\n\
         Content-Type: application/vnd.ms.wms-hdr.asfv1\r\nContent-Length: 15\r\n\
         Connection: close\r\n\r\n$H\x0b\x00\x00\x00\x00\x00\x00\x0c\x0b\x00HDR"
    );
    // A keep-alive client (HTTP/1.1, no `Connection: close`) keeps the connection.
    let r = describe_response(&req(b"GET /demo HTTP/1.1\r\nHost: a\r\n\r\n"), b"HDR", 1);
    assert!(!r.closes());
}

#[test]
fn play_response_head_is_exact() {
    let head = play_response_head(&req(VLC_PLAY_NO_AUDIO), 9);
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "HTTP/1.0 200 OK\r\nServer: Cougar/9.01.01.3814\r\nCache-Control: no-cache\r\n\
         Pragma: no-cache\r\nPragma: client-id=9\r\nPragma: features=\"broadcast\"\r\n\
         Supported: com.microsoft.wm.sswitch\r\nContent-Type: application/x-mms-framed\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn errors_carry_the_server_token_and_close() {
    let r = error_response(
        &req(b"GET /demo HTTP/1.1\r\nHost: a\r\n\r\n"),
        503,
        "not ready",
    );
    let t = String::from_utf8(r.to_bytes()).unwrap();
    assert!(t.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{t}");
    assert!(t.contains("Server: Cougar/9.01.01.3814\r\n"), "{t}");
    assert!(t.contains("Retry-After: 2\r\n"), "{t}");
    assert!(t.contains("Connection: close\r\n"), "{t}");
    let r = error_response(&req(b"PUT /demo HTTP/1.1\r\nHost: a\r\n\r\n"), 405, "no");
    assert_eq!(r.get_header("allow"), Some(ALLOW));
}

// ---------------------------------------------------------------------------------------------
// The stream

const CFG: StreamConfig = StreamConfig {
    feed: FeedConfig {
        backlog_limit: 64 << 10,
        fast_start_rate: 4.0,
        stall_timeout: Duration::from_secs(5),
    },
    silence_timeout: Duration::from_secs(5),
};

fn start(
    h: &Arc<StationHeader>,
    backlog: Vec<Arc<StationPacket>>,
    switches: &str,
    t0: Instant,
    out: &mut OutQueue,
) -> MmshStream {
    MmshStream::start(
        "demo",
        h.clone(),
        backlog,
        (parse_stream_switches(&[switches]), None),
        CFG,
        t0,
        out,
    )
}

#[test]
fn a_joiner_gets_the_header_then_the_backlog_from_the_clean_point_at_fast_start_rate() {
    let (h, packets, st) = demo_station("demo.asf", 60);
    let backlog: Vec<_> = st.join_backlog().cloned().collect();
    assert!(backlog.len() > 3 && backlog[0].clean);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = start(&h, backlog.clone(), "", t0, &mut out);
    let first = chunks(&drain(&mut out));
    assert_eq!(first[0].kind, ChunkType::Header);
    assert_eq!(first[0].payload, &h.bytes[..]);
    assert!(first[1..].iter().all(|c| c.kind == ChunkType::Data));
    // The clean point, starting at its key frame.
    assert_eq!(first[1].payload, &backlog[0].as_join_point().bytes[..]);
    assert!(
        first.len() - 1 < backlog.len(),
        "fast start paces the backlog"
    );
    // The rest is released by the deadline, at the fast-start rate.
    let mut got = first.len() - 1;
    let mut now = t0;
    while let Some(d) = s.deadline().filter(|d| *d < t0 + Duration::from_secs(4)) {
        now = d;
        assert_eq!(s.on_timeout(&mut out, now), Step::Continue);
        got += chunks(&drain(&mut out)).len();
    }
    assert_eq!(got, backlog.len());
    let span = backlog.last().unwrap().send_time - backlog[0].send_time;
    let elapsed = now.duration_since(t0).as_millis() as u32;
    assert!(
        elapsed <= span / 4 + 1,
        "{elapsed} ms for {span} ms of backlog"
    );
    // Then live packets straight through, LocationId counting on.
    let live = &packets[packets.len() - 1];
    let _ = live;
    let (_, more, _) = demo_station("demo.asf", 80);
    s.on_packet(&more[70], &mut out, now);
    let c = chunks(&drain(&mut out));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].location_or_reason, backlog.len() as u32);
    assert_eq!(c[0].payload, &more[70].bytes[..]);
}

#[test]
fn packets_are_shared_not_copied() {
    let (h, packets, _) = demo_station("demo.asf", 1);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let _s = start(&h, packets.clone(), "", t0, &mut out);
    // $H (owned), $D head (owned), the packet (the hub's buffer).
    let slices = out.io_slices(16);
    assert_eq!(slices.len(), 3);
    assert_eq!(slices[2].as_ptr(), packets[0].bytes.as_ptr());
}

#[test]
fn removed_streams_are_filtered_and_empty_packets_dropped() {
    let (h, packets, _) = demo_station("demo.asf", 200);
    let video = h.header.video_streams()[0];
    let audio = h
        .header
        .streams
        .iter()
        .find(|s| s.number != video)
        .unwrap()
        .number;
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    // Video off (VLC's `--no-video`): audio only.
    let mut s = start(
        &h,
        vec![packets[0].clone()],
        &format!("ffff:{video}:2 ffff:{audio}:0 "),
        t0,
        &mut out,
    );
    let mut bytes = drain(&mut out);
    for p in &packets[1..] {
        s.on_packet(p, &mut out, t0);
        bytes.extend(drain(&mut out));
    }
    let cs = chunks(&bytes);
    assert!(cs.len() > 10);
    for c in &cs[1..] {
        let p = Packet::parse(&c.payload).unwrap();
        assert!(!p.payloads.is_empty());
        assert!(p.payloads.iter().all(|pl| pl.stream == audio));
    }
    assert!(
        s.stats().dropped_empty > 0,
        "video-only packets are not sent"
    );
    assert!(s.stats().rewritten > 0, "mixed packets are rewritten");
    assert_eq!(
        s.stats().packets as usize + s.stats().dropped_empty as usize,
        packets.len()
    );
    // LocationId counts the chunks sent, without gaps.
    for (i, c) in cs[1..].iter().enumerate() {
        assert_eq!(c.location_or_reason, i as u32);
    }
}

#[test]
fn header_changes_same_compatible_incompatible() {
    let (h, packets, _) = demo_station("demo.asf", 3);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = start(&h, vec![packets[0].clone()], "", t0, &mut out);
    drain(&mut out);

    // The playlist looping over the same file: same bytes, nothing sent.
    let same = Arc::new(StationHeader {
        generation: 2,
        ..(*h).clone()
    });
    assert_eq!(
        compare_headers(&h, &same, h.bytes.len()),
        HeaderChange::Same
    );
    assert_eq!(s.on_header(&same, &mut out, t0), Step::Continue);
    assert!(out.is_empty());

    // A compatible header (one byte of the Data head's file id differs): $C, then $H with the
    // next incarnation; LocationId restarts after the next clean point.
    let mut bytes = h.bytes.to_vec();
    let last = bytes.len() - 40;
    bytes[last] ^= 0xFF;
    let compatible = Arc::new(StationHeader {
        generation: 3,
        bytes: bytes.into(),
        ..(*h).clone()
    });
    assert_eq!(s.on_header(&compatible, &mut out, t0), Step::Continue);
    s.on_packet(&packets[1], &mut out, t0); // not clean: waits
    let cs = chunks(&drain(&mut out));
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].kind, ChunkType::Change);
    assert_eq!(cs[1].kind, ChunkType::Header);
    assert_eq!(cs[1].incarnation, 1);
    assert_eq!(cs[1].payload, &compatible.bytes[..]);
    let clean = Arc::new(StationPacket {
        seq: 100,
        generation: 3,
        ..(*packets[0]).clone()
    });
    s.on_packet(&clean, &mut out, t0);
    let cs = chunks(&drain(&mut out));
    assert_eq!(
        (cs[0].kind, cs[0].location_or_reason, cs[0].incarnation),
        (ChunkType::Data, 0, 1)
    );

    // Another file's header: $E (reason 1) and close.
    let (other, _, _) = demo_station("demo-b.asf", 0);
    assert!(matches!(
        compare_headers(&compatible, &other, h.bytes.len()),
        HeaderChange::Incompatible(_)
    ));
    assert!(matches!(
        s.on_header(&other, &mut out, t0),
        Step::Close { .. }
    ));
    let cs = chunks(&drain(&mut out));
    assert_eq!(cs.len(), 1);
    assert_eq!(
        (cs[0].kind, cs[0].location_or_reason),
        (ChunkType::End, END_NEXT_ENTRY)
    );
    assert_eq!(s.deadline(), None);
}

#[test]
fn a_client_that_stops_reading_skips_then_is_closed_with_its_queue_dropped() {
    let (h, packets, _) = demo_station("demo.asf", 250);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = start(&h, vec![packets[0].clone()], "", t0, &mut out);
    // Nothing is ever written: the server thins, the queue still grows to the limit, then packets are skipped. The clip is replayed with fresh sequence numbers.
    let mut now = t0;
    let mut closed = None;
    let replayed = (0..20u64).flat_map(|round| {
        packets[1..].iter().map(move |p| {
            let mut q = (**p).clone();
            q.seq += round * 10_000;
            Arc::new(q)
        })
    });
    for (i, p) in replayed.enumerate() {
        now = t0 + Duration::from_millis(40 * i as u64);
        let p = &p;
        if let Step::Close { reason } = s.on_packet(p, &mut out, now) {
            closed = Some(reason);
            break;
        }
        assert!(
            out.queued_bytes() <= CFG.feed.backlog_limit + 4096,
            "bounded"
        );
    }
    let reason = closed.expect("closed as stalled");
    assert!(reason.contains("stalled"), "{reason}");
    assert!(s.skips() >= 1);
    let st = &s.selection().stats;
    assert!(st.steps_down >= 1, "thinned before skipping: {st:?}");
    assert!(
        out.is_empty(),
        "the queue is dropped so the connection can close"
    );
    assert!(now.duration_since(t0) >= CFG.feed.stall_timeout);
}

#[test]
fn a_behind_client_is_closed_by_the_deadline_even_when_the_station_is_quiet() {
    let (h, packets, _) = demo_station("demo.asf", 250);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = start(&h, vec![packets[0].clone()], "", t0, &mut out);
    let mut i = 1;
    while out.queued_bytes() <= CFG.feed.backlog_limit {
        s.on_packet(&packets[i], &mut out, t0);
        i += 1;
    }
    s.on_packet(&packets[i], &mut out, t0);
    let d = s.deadline().unwrap();
    assert!(d <= t0 + Duration::from_secs(1), "checked while behind");
    let mut now = d;
    loop {
        match s.on_timeout(&mut out, now) {
            Step::Continue => now = s.deadline().unwrap(),
            Step::Close { reason } => {
                assert!(reason.contains("stalled"), "{reason}");
                break;
            }
        }
        assert!(now < t0 + Duration::from_secs(6));
    }
}

#[test]
fn a_silent_station_and_a_stop_end_the_stream_with_e() {
    let (h, packets, _) = demo_station("demo.asf", 2);
    let t0 = Instant::now();
    let mut out = OutQueue::new();
    let mut s = start(&h, vec![packets[0].clone()], "", t0, &mut out);
    drain(&mut out);
    assert_eq!(s.deadline(), Some(t0 + CFG.silence_timeout));
    assert!(matches!(
        s.on_timeout(&mut out, t0 + CFG.silence_timeout),
        Step::Close { .. }
    ));
    let cs = chunks(&drain(&mut out));
    assert_eq!((cs[0].kind, cs[0].location_or_reason), (ChunkType::End, 0));

    let mut s = start(&h, vec![packets[0].clone()], "", t0, &mut out);
    drain(&mut out);
    s.end(&mut out);
    s.end(&mut out);
    assert_eq!(drain(&mut out), reason_chunk(ChunkType::End, END_FINISHED));
}

#[test]
fn a_post_with_switch_entries_is_a_select_stream() {
    let post = |pragmas: &str| {
        classify(&req(format!(
            "POST /mbr HTTP/1.1\r\nHost: a\r\n{pragmas}Content-Length: 0\r\n\r\n"
        )
        .as_bytes()))
    };
    assert_eq!(
        post("Pragma: client-id=42\r\nPragma: stream-switch-entry=ffff:1:2 ffff:3:0\r\n"),
        MmshRequest::SelectStream {
            client_id: 42,
            entries: vec!["ffff:1:2 ffff:3:0".into()]
        }
    );
    // Without (or with a garbled) client-id: refused, not guessed.
    for p in [
        "Pragma: stream-switch-entry=ffff:1:2\r\n",
        "Pragma: client-id=x\r\nPragma: stream-switch-entry=ffff:1:2\r\n",
    ] {
        assert!(matches!(post(p), MmshRequest::Unsupported(400, _)), "{p}");
    }
    // A POST without entries stays a log/event POST.
    assert_eq!(post("Pragma: client-id=42\r\n"), MmshRequest::Post);
}
