//! The WMSP client against scripted servers: asfcast's and WMS's answers, VLC's, FFmpeg's
//! one-request server, and the failures (HTTP errors, HTML, an endless header, silence).

use super::*;
use std::path::PathBuf;

fn demo() -> (Vec<u8>, Vec<Vec<u8>>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf");
    let mut r = crate::asf::AsfReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let header = r.header().to_broadcast().stream_header_bytes(r.data_head());
    let mut packets = Vec::new();
    while let Some(Ok(p)) = r.next_packet() {
        packets.push(p.bytes);
        if packets.len() == 5 {
            break;
        }
    }
    (header, packets)
}

fn chunk(kind: u8, payload: &[u8], seq: u32) -> Vec<u8> {
    let len = ((8 + payload.len()) as u16).to_le_bytes();
    let s = seq.to_le_bytes();
    let mut v = vec![
        b'$', kind, len[0], len[1], s[0], s[1], s[2], s[3], 0, 0x0C, len[0], len[1],
    ];
    v.extend_from_slice(payload);
    v
}

fn reason(kind: u8, r: u32) -> Vec<u8> {
    let r = r.to_le_bytes();
    vec![b'$', kind, 4, 0, r[0], r[1], r[2], r[3]]
}

fn config() -> ClientConfig {
    ClientConfig {
        url: PullUrl::parse("mmsh://127.0.0.1:8080/live").unwrap_or_else(|e| panic!("{e}")),
        backoff_min: Duration::from_secs(1),
        backoff_max: Duration::from_secs(8),
        stall_timeout: Duration::from_secs(10),
        client_guid: [0xAB; 16],
    }
}

/// What a scripted run saw: requests sent (as text), I/O actions, events.
#[derive(Debug, Default)]
struct Seen {
    requests: Vec<String>,
    connects: usize,
    closes: usize,
    events: Vec<ClientEvent>,
}

impl Seen {
    fn headers(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Header(_)))
            .count()
    }
    fn packets(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Packet(_)))
            .count()
    }
    fn lost(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Lost { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

fn take_io(c: &mut WmspClient, now: Instant, seen: &mut Seen) -> bool {
    let mut connected = false;
    while let Some(io) = c.io(now) {
        match io {
            Io::Connect => {
                seen.connects += 1;
                connected = true;
            }
            Io::Send(b) => seen.requests.push(String::from_utf8_lossy(&b).into_owned()),
            Io::Close => seen.closes += 1,
        }
    }
    connected
}

/// Serves each connection the client opens with the next of `answers` (the bytes, then the
/// close when `close` is set), split in `step`-byte reads.
/// Each connection's answer, and whether the server closes after it.
type Answers = Vec<(Vec<u8>, bool)>;

fn run(answers: &[(Vec<u8>, bool)], step: usize) -> (WmspClient, Seen) {
    let t0 = Instant::now();
    let mut c = WmspClient::new(config(), t0);
    let mut seen = Seen::default();
    // A connect asked for and not yet served.
    let mut pending = take_io(&mut c, t0, &mut seen);
    for (bytes, close) in answers {
        if !pending {
            break;
        }
        c.on_connected(t0);
        pending = take_io(&mut c, t0, &mut seen);
        for piece in bytes.chunks(step.max(1)) {
            if pending {
                break;
            }
            c.on_data(piece, t0);
            pending |= take_io(&mut c, t0, &mut seen);
        }
        if *close && !pending && c.connected() {
            c.on_closed(None, t0);
            pending |= take_io(&mut c, t0, &mut seen);
        }
        while let Some(e) = c.next_event() {
            seen.events.push(e);
        }
    }
    take_io(&mut c, t0, &mut seen);
    (c, seen)
}

fn play_body(header: &[u8], packets: &[Vec<u8>]) -> Vec<u8> {
    let mut b = chunk(b'H', header, 0);
    for (i, p) in packets.iter().enumerate() {
        b.extend(chunk(b'D', p, i as u32));
    }
    b
}

#[test]
fn pulls_from_every_kind_of_server() {
    let (header, packets) = demo();
    let describe_len = 12 + header.len();
    let asfcast_describe = [
        format!(
            "HTTP/1.1 200 OK\r\nServer: Cougar/9.01.01.3814\r\nContent-Type: application/vnd.ms.wms-hdr.asfv1\r\n\
             Pragma: no-cache,client-id=4242\r\nPragma: features=\"broadcast\"\r\nContent-Length: {describe_len}\r\n\r\n"
        )
        .into_bytes(),
        chunk(b'H', &header, 0),
    ]
    .concat();
    let asfcast_play = [
        b"HTTP/1.0 200 OK\r\nServer: Cougar/9.01.01.3814\r\nContent-Type: application/x-mms-framed\r\n\r\n".to_vec(),
        play_body(&header, &packets),
    ]
    .concat();
    let vlc_describe = [
        b"HTTP/1.0 200 OK\r\nContent-type: application/octet-stream\r\nServer: Cougar 4.1.0.3921\r\nPragma: no-cache\r\nPragma: client-id=21669\r\n\r\n".to_vec(),
        chunk(b'H', &header, 0),
    ]
    .concat();
    let vlc_play = [
        b"HTTP/1.0 200 OK\r\nServer: Cougar 4.1.0.3921\r\n\r\n".to_vec(),
        play_body(&header, &packets),
    ]
    .concat();
    // FFmpeg's -listen 1: one chunked answer to whatever comes first.
    let body = play_body(&header, &packets);
    let mut chunked = Vec::new();
    for piece in body.chunks(1000) {
        chunked.extend(format!("{:x}\r\n", piece.len()).into_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend(b"\r\n");
    }
    let ffmpeg = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        chunked,
    ]
    .concat();
    let cases: Vec<(&str, Answers, usize)> = vec![
        (
            "asfcast / WMS",
            vec![(asfcast_describe, false), (asfcast_play, false)],
            2,
        ),
        (
            "VLC mmsh output",
            vec![(vlc_describe, true), (vlc_play, false)],
            2,
        ),
        ("FFmpeg -listen 1", vec![(ffmpeg, false)], 1),
    ];
    for (name, answers, connections) in cases {
        for step in [1, 13, 4096, usize::MAX] {
            let (c, seen) = run(&answers, step);
            assert_eq!(seen.connects, connections, "{name} {step}: {seen:?}");
            assert_eq!(seen.headers(), 1, "{name} {step}");
            assert_eq!(seen.packets(), packets.len(), "{name} {step}");
            assert!(seen.lost().is_empty(), "{name} {step}: {:?}", seen.lost());
            assert_eq!(
                seen.events.first(),
                Some(&ClientEvent::Header(header.clone())),
                "{name}"
            );
            assert_eq!(
                seen.events.get(1),
                Some(&ClientEvent::Packet(packets[0].clone())),
                "{name}"
            );
            assert!(
                seen.requests[0].contains("User-Agent: NSServer/9.0.0.3171\r\n"),
                "{name}"
            );
            assert!(
                !seen.requests[0].contains("xPlayStrm"),
                "{name}: Describe first"
            );
            if connections == 2 {
                let play = &seen.requests[1];
                assert!(play.contains("Pragma: xPlayStrm=1\r\n"), "{name}: {play}");
                // The demo has streams 1 (audio) and 2 (video).
                assert!(
                    play.contains("stream-switch-entry=ffff:1:0 ffff:2:0\r\n"),
                    "{name}: {play}"
                );
            }
            assert_eq!(c.server.is_some(), name != "FFmpeg -listen 1", "{name}");
        }
    }
    // The client-id of asfcast's Describe answer goes into the Play.
    let (_, seen) = run(&cases_asfcast_only(&header, &packets), 7);
    assert!(
        seen.requests[1].contains("Pragma: client-id=4242\r\n"),
        "{:?}",
        seen.requests
    );
}

fn cases_asfcast_only(header: &[u8], packets: &[Vec<u8>]) -> Vec<(Vec<u8>, bool)> {
    let d = [
        b"HTTP/1.0 200 OK\r\nPragma: client-id=4242\r\n\r\n".to_vec(),
        chunk(b'H', header, 0),
    ]
    .concat();
    let p = [
        b"HTTP/1.0 200 OK\r\n\r\n".to_vec(),
        play_body(header, packets),
    ]
    .concat();
    vec![(d, true), (p, false)]
}

#[test]
fn failures_are_reported_once_and_retried_with_back_off() {
    let (header, packets) = demo();
    let mut huge = header[..24].to_vec();
    huge[16..24].copy_from_slice(&(64u64 << 20).to_le_bytes());
    let ok = |body: Vec<u8>| [b"HTTP/1.0 200 OK\r\n\r\n".to_vec(), body].concat();
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        ("404", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(), true, "HTTP 404 Not Found"),
        ("an HTML page", ok(b"<html><body>It works</body></html>".to_vec()), false, "not WMSP framing"),
        ("not HTTP at all", b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(), false, "not an HTTP response"),
        ("an endless header", ok(chunk(b'H', &huge, 0)), false, "ASF header of"),
        ("a header that is not ASF", ok(chunk(b'H', &[7u8; 40], 0)), false, "not an ASF header"),
        ("data before any header", ok(chunk(b'D', &packets[0], 0)), false, "before the header"),
        ("closed before the header", ok(Vec::new()), true, "closed before the header"),
        ("closed before answering", Vec::new(), true, "before an HTTP answer"),
        ("the stream ends with $E(0)", ok([play_body(&header, &packets[..1]), reason(b'E', 0)].concat()), false, "ended the stream"),
    ];
    for (name, answer, close, want) in cases {
        let (c, seen) = run(&[(answer, close)], 5);
        let lost = seen.lost();
        assert_eq!(lost.len(), 1, "{name}: {seen:?}");
        assert!(lost[0].contains(want), "{name}: {lost:?}");
        assert!(
            lost[0].contains("127.0.0.1:8080"),
            "{name}: names the upstream"
        );
        assert!(!c.connected(), "{name}: waits before the next attempt");
        assert!(seen.closes >= 1, "{name}: the connection is closed");
    }
}

#[test]
fn back_off_doubles_to_the_cap_and_starts_over_after_packets() {
    let (header, packets) = demo();
    let t0 = Instant::now();
    let mut c = WmspClient::new(config(), t0);
    let mut seen = Seen::default();
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..6 {
        assert!(take_io(&mut c, now, &mut seen));
        c.on_closed(Some("Connection refused"), now);
        match c.next_event() {
            Some(ClientEvent::Lost { retry_at, .. }) => {
                waits.push(retry_at.duration_since(now).as_secs());
                assert!(
                    !take_io(&mut c, now, &mut seen),
                    "no attempt before retry_at"
                );
                now = retry_at;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
    // A stream that delivers a packet resets the back-off.
    assert!(take_io(&mut c, now, &mut seen));
    c.on_connected(now);
    c.on_data(
        &[
            b"HTTP/1.0 200 OK\r\n\r\n".as_slice(),
            &play_body(&header, &packets[..1]),
        ]
        .concat(),
        now,
    );
    take_io(&mut c, now, &mut seen);
    c.on_closed(None, now);
    take_io(&mut c, now, &mut seen);
    c.on_connected(now);
    c.on_data(
        &[
            b"HTTP/1.0 200 OK\r\n\r\n".as_slice(),
            &play_body(&header, &packets),
        ]
        .concat(),
        now,
    );
    c.on_closed(None, now);
    let lost: Vec<_> = std::iter::from_fn(|| c.next_event())
        .filter_map(|e| match e {
            ClientEvent::Lost { retry_at, .. } => Some(retry_at.duration_since(now).as_secs()),
            _ => None,
        })
        .collect();
    assert_eq!(lost, [1]);
}

#[test]
fn silence_is_a_loss_after_the_stall_timeout() {
    let t0 = Instant::now();
    let mut c = WmspClient::new(config(), t0);
    let mut seen = Seen::default();
    // Connecting forever.
    take_io(&mut c, t0, &mut seen);
    assert_eq!(c.deadline(), t0 + Duration::from_secs(10));
    c.on_timeout(t0 + Duration::from_secs(9));
    assert!(c.next_event().is_none());
    c.on_timeout(t0 + Duration::from_secs(10));
    assert!(
        matches!(c.next_event(), Some(ClientEvent::Lost { reason, .. }) if reason.contains("no connection"))
    );
    // Connected, but the server never answers.
    let t1 = t0 + Duration::from_secs(11);
    take_io(&mut c, t1, &mut seen);
    c.on_connected(t1);
    c.on_timeout(t1 + Duration::from_secs(10));
    assert!(
        matches!(c.next_event(), Some(ClientEvent::Lost { reason, .. }) if reason.contains("no HTTP answer"))
    );
}

#[test]
fn change_and_next_entry_bring_the_header_again() {
    let (header, packets) = demo();
    let mut body = play_body(&header, &packets[..2]);
    // $C, then the new header in two pieces, then packets.
    body.extend(reason(b'C', 0));
    body.extend(chunk(b'H', &header[..100], 0));
    body.extend(chunk(b'H', &header[100..], 1));
    body.extend(chunk(b'D', &packets[2], 2));
    // $E(1): another entry follows: Describe and Play again at once, no loss reported.
    body.extend(reason(b'E', 1));
    let describe = [b"HTTP/1.0 200 OK\r\n\r\n".to_vec(), chunk(b'H', &header, 0)].concat();
    let play = [b"HTTP/1.0 200 OK\r\n\r\n".to_vec(), body].concat();
    let again = [
        b"HTTP/1.0 200 OK\r\n\r\n".to_vec(),
        play_body(&header, &packets[3..]),
    ]
    .concat();
    let (_, seen) = run(
        &[
            (describe.clone(), true),
            (play, false),
            (describe, true),
            (again, false),
        ],
        9,
    );
    assert!(seen.lost().is_empty(), "{:?}", seen.lost());
    assert_eq!(seen.connects, 4);
    assert_eq!(seen.headers(), 3);
    assert_eq!(seen.packets(), 5);
}
