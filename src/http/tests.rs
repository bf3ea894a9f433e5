//! Connection-level tests with the requests real clients send (shapes from
//! `docs/protocols/rtsp-wmsp.md` §3.1 and the clients' sources: FFmpeg `mmsh.c` + `http.c`,
//! VLC `access/mms/mmsh.c`, curl).

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::nsc::NSC_CONTENT_TYPE;

const MAX: usize = 8192;
const T: Duration = Duration::from_secs(10);
const NSC: &str = "[Address]\r\nName=demo\r\n";

/// curl 8: `curl http://127.0.0.1:8080/demo.nsc`.
const CURL: &[u8] = b"GET /demo.nsc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\r\n";

/// FFmpeg `mmsh://127.0.0.1:8080/demo` Describe: FFmpeg's http layer writes its defaults
/// (Range, Icy-MetaData) and then mmsh's custom headers, which suppress its own
/// User-Agent/Accept/Host/Connection.
const FFMPEG_DESCRIBE: &[u8] = b"GET /demo HTTP/1.1\r\n\
Range: bytes=0-\r\n\
Icy-MetaData: 1\r\n\
Accept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\n\
Host: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\n\
Connection: Close\r\n\
\r\n";

/// FFmpeg Play: the last Pragma runs into `Connection: Close` (no CRLF). Because the custom
/// headers then lack `\r\nConnection: `, FFmpeg's http layer adds its own `Connection: close`.
const FFMPEG_PLAY: &[u8] = b"GET /demo HTTP/1.1\r\n\
Range: bytes=0-\r\n\
Connection: close\r\n\
Icy-MetaData: 1\r\n\
Accept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\n\
Host: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,request-context=2\r\n\
Pragma: xPlayStrm=1\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\n\
Pragma: stream-switch-count=2\r\n\
Pragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close\r\n\
\r\n";

/// VLC Describe, written in separate `net_Printf` calls (three segments).
const VLC_DESCRIBE: [&[u8]; 3] = [
    b"GET /demo HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n",
    b"Accept: */*\r\n\
User-Agent: NSPlayer/7.10.0.3059\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Pragma: xClientGUID={3300ad50-2c39-46c0-ae0a-1a2b3c4d5e6f}\r\n\
Connection: Close\r\n",
    b"\r\n",
];

/// VLC Play for a broadcast, stream numbers in hex, one stream deselected.
const VLC_PLAY: &[&[u8]] = &[
    b"GET /demo HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n",
    b"Accept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n",
    b"Pragma: no-cache,rate=1.000000,request-context=2\r\n",
    b"Pragma: xPlayStrm=1\r\n\
Pragma: xClientGUID={3300ad50-2c39-46c0-ae0a-1a2b3c4d5e6f}\r\n\
Pragma: stream-switch-count=2\r\n\
Pragma: stream-switch-entry=",
    b"ffff:1:0 ",
    b"ffff:a:2 ",
    b"\r\n",
    b"Connection: Close\r\n",
    b"\r\n",
];

fn catalog(ready: bool) -> Vec<StationEntry> {
    vec![StationEntry {
        name: "demo".into(),
        description: "Demo".into(),
        nsc: ready.then(|| NSC.into()),
        asx: ready.then(|| "<ASX VERSION=\"3.0\">\r\n</ASX>\r\n".into()),
        nsc_file: "demo.nsc".into(),
        asx_file: "demo.asx".into(),
        urls: vec!["mms://127.0.0.1/demo".into()],
    }]
}

fn conn() -> (HttpConn, Instant) {
    let now = Instant::now();
    (HttpConn::new(MAX, T, now), now)
}

fn respond(action: ConnAction) -> (String, bool) {
    match action {
        ConnAction::Respond { bytes, close } => (String::from_utf8(bytes).unwrap(), close),
        other => panic!("expected a response, got {other:?}"),
    }
}

fn handoff(action: ConnAction) -> Request {
    match action {
        ConnAction::Handoff(r) => r,
        other => panic!("expected a hand-off, got {other:?}"),
    }
}

/// Feeds `parts` one call each; all but the last must return NeedMore.
fn feed_parts(c: &mut HttpConn, now: Instant, parts: &[&[u8]], cat: &[StationEntry]) -> ConnAction {
    let cat: Vec<StationEntry> = cat.to_vec();
    let (last, init) = parts.split_last().unwrap();
    for p in init {
        assert_eq!(c.on_bytes(p, now, &cat), ConnAction::NeedMore);
    }
    c.on_bytes(last, now, &cat)
}

#[test]
fn curl_gets_the_nsc_with_exact_headers() {
    let (mut c, now) = conn();
    let (text, close) = respond(c.on_bytes(CURL, now, &catalog(true)));
    assert_eq!(
        text,
        format!(
            "HTTP/1.1 200 OK\r\n\
             Server: asfcast/{}\r\n\
             Content-Type: {NSC_CONTENT_TYPE}\r\n\
             Cache-Control: no-cache\r\n\
             Content-Length: {}\r\n\
             Connection: keep-alive\r\n\
             \r\n{NSC}",
            crate::VERSION,
            NSC.len()
        )
    );
    assert!(!close);
}

#[test]
fn ffmpeg_describe_is_handed_off() {
    let (mut c, now) = conn();
    let r = handoff(c.on_bytes(FFMPEG_DESCRIBE, now, &catalog(true)));
    assert_eq!(r.path, "/demo");
    assert_eq!(r.version, 1);
    assert_eq!(r.header("user-agent"), Some("NSPlayer/4.1.0.3856"));
    assert_eq!(r.pragma("request-context"), Some(Some("1".into())));
    assert_eq!(
        r.pragma("xClientGUID"),
        Some(Some("{c77e7400-738a-11d2-9add-0020af0a3278}".into()))
    );
    assert_eq!(r.pragma("xPlayStrm"), None);
    assert!(!r.keep_alive());
    assert!(c.take_leftover().is_empty());
    assert_eq!(
        c.on_bytes(b"x", now, &catalog(true)),
        ConnAction::Close {
            reason: CloseReason::Finished
        }
    );
}

#[test]
fn ffmpeg_play_with_run_on_line() {
    let (mut c, now) = conn();
    let r = handoff(c.on_bytes(FFMPEG_PLAY, now, &catalog(true)));
    assert_eq!(r.path, "/demo");
    assert_eq!(r.pragma("xPlayStrm"), Some(Some("1".into())));
    assert_eq!(r.pragma("stream-switch-count"), Some(Some("2".into())));
    assert_eq!(
        r.pragma("stream-switch-entry"),
        Some(Some("ffff:1:0 ffff:2:0".into()))
    );
    assert_eq!(r.pragma("stream-time"), Some(Some("0".into())));
    assert_eq!(r.pragma("request-context"), Some(Some("2".into())));
    assert_eq!(r.headers_named("connection").count(), 2);
    assert!(!r.keep_alive());
    assert!(r.headers.iter().all(|(_, v)| !v.contains("Connection")));
}

#[test]
fn vlc_describe_in_segments() {
    let (mut c, now) = conn();
    let r = handoff(feed_parts(&mut c, now, &VLC_DESCRIBE, &catalog(true)));
    assert_eq!(r.version, 0);
    assert_eq!(r.path, "/demo");
    assert_eq!(r.header("host"), Some("127.0.0.1:8080"));
    assert_eq!(r.pragma("max-duration"), Some(Some("0".into())));
}

#[test]
fn vlc_play_in_segments() {
    let (mut c, now) = conn();
    let r = handoff(feed_parts(&mut c, now, VLC_PLAY, &catalog(true)));
    assert_eq!(
        r.pragma("stream-switch-entry"),
        Some(Some("ffff:1:0 ffff:a:2".into()))
    );
    assert_eq!(r.pragma("xPlayStrm"), Some(Some("1".into())));
}

#[test]
fn vlc_through_a_proxy_uses_absolute_form() {
    let (mut c, now) = conn();
    let r = handoff(c.on_bytes(
        b"GET http://127.0.0.1:8080/demo HTTP/1.0\r\nAccept: */*\r\n\
          User-Agent: NSPlayer/7.10.0.3059\r\nPragma: xClientGUID={0}\r\nConnection: Close\r\n\r\n",
        now,
        &catalog(true),
    ));
    assert_eq!(r.path, "/demo");
}

#[test]
fn bare_lf_request() {
    let (mut c, now) = conn();
    let (text, close) = respond(c.on_bytes(
        b"GET /demo.nsc HTTP/1.0\nUser-Agent: nc\n\n",
        now,
        &catalog(true),
    ));
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(text.ends_with(NSC));
    assert!(close);
}

#[test]
fn pipelined_requests_in_one_feed() {
    let (mut c, now) = conn();
    let mut input = Vec::new();
    input.extend_from_slice(b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n");
    input.extend_from_slice(b"HEAD /demo.asx HTTP/1.1\r\nHost: a\r\n\r\n");
    input.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    input.extend_from_slice(b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    input.extend_from_slice(b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n");
    let (text, close) = respond(c.on_bytes(&input, now, &catalog(true)));
    let statuses: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 200 OK"
        ]
    );
    assert!(close, "answering stops at Connection: close");
    assert!(text.ends_with(NSC));
}

#[test]
fn pipelined_handoff_waits_behind_responses() {
    let (mut c, now) = conn();
    let mut input = b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    input.extend_from_slice(FFMPEG_DESCRIBE);
    input.extend_from_slice(b"tail");
    let (text, close) = respond(c.on_bytes(&input, now, &catalog(true)));
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(!close);
    assert!(c.has_pending());
    assert_eq!(
        c.on_timeout(now + T * 2),
        None,
        "no timeout while a hand-off waits"
    );
    let r = handoff(c.on_bytes(b"more", now, &catalog(true)));
    assert_eq!(r.path, "/demo");
    assert_eq!(c.take_leftover(), b"tailmore");
}

#[test]
fn request_split_byte_by_byte() {
    for request in [CURL, FFMPEG_PLAY] {
        let (mut c, now) = conn();
        let cat = catalog(true);
        let (last, init) = request.split_last().unwrap();
        for b in init {
            assert_eq!(c.on_bytes(&[*b], now, &cat), ConnAction::NeedMore);
        }
        match c.on_bytes(&[*last], now, &cat) {
            ConnAction::Respond { bytes, .. } => assert!(bytes.starts_with(b"HTTP/1.1 200 OK")),
            ConnAction::Handoff(r) => assert_eq!(r.pragma("stream-time"), Some(Some("0".into()))),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn megabyte_header_line_is_431() {
    let (mut c, now) = conn();
    let mut input = b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\nCookie: ".to_vec();
    input.resize(1 << 20, b'x');
    let (text, close) = respond(c.on_bytes(&input, now, &catalog(true)));
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
    assert!(close);
    assert!(c.take_leftover().len() <= MAX);
}

#[test]
fn traversal_never_reaches_a_file() {
    struct Counting(std::cell::Cell<usize>);
    impl AnnouncementCatalog for Counting {
        fn stations(&self) -> Vec<StationEntry> {
            self.0.set(self.0.get() + 1);
            catalog(true)
        }
    }
    let cat = Counting(std::cell::Cell::new(0));
    for target in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/demo.nsc/../../x",
    ] {
        let (mut c, now) = conn();
        let input = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let (text, _) = respond(c.on_bytes(input.as_bytes(), now, &cat));
        assert!(text.starts_with("HTTP/1.1 400 "), "{target}: {text}");
        assert!(!text.contains("root:"));
    }
    assert_eq!(cat.0.get(), 0, "unsafe paths are refused before any lookup");
}

#[test]
fn garbage_is_400() {
    for garbage in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"[..],
        b"hello there\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET\r\n\r\n",
        b"\x00\x00\x00\x00",
    ] {
        let (mut c, now) = conn();
        let (text, close) = respond(c.on_bytes(garbage, now, &catalog(true)));
        assert!(
            text.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{garbage:?}: {text}"
        );
        assert!(close);
    }
}

#[test]
fn head_has_no_body() {
    let (mut c, now) = conn();
    let (text, _) = respond(c.on_bytes(
        b"HEAD /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
        &catalog(true),
    ));
    assert!(text.contains(&format!("\r\nContent-Length: {}\r\n", NSC.len())));
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    let (text, _) = respond(c.on_bytes(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", now, &catalog(true)));
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert!(!text.contains("<html"));
}

#[test]
fn post_is_405_and_its_body_is_consumed() {
    let (mut c, now) = conn();
    let (text, close) = respond(c.on_bytes(
        b"POST /demo.nsc HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcdGET /demo.asx HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
        &catalog(true),
    ));
    assert!(
        text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nAllow: GET, HEAD\r\n"));
    assert!(
        text.contains("\r\n\r\nmethod not allowed\nHTTP/1.1 200 OK\r\n"),
        "{text}"
    );
    assert!(!close);
}

#[test]
fn nsc_before_the_header_is_503() {
    let (mut c, now) = conn();
    let (text, close) = respond(c.on_bytes(CURL, now, &catalog(false)));
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nRetry-After: 2\r\n"));
    assert!(!close);
}

#[test]
fn chunked_upload_is_501_and_closes() {
    let (mut c, now) = conn();
    let (text, close) = respond(c.on_bytes(
        b"POST /push HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        now,
        &catalog(true),
    ));
    assert!(
        text.starts_with("HTTP/1.1 501 Not Implemented\r\n"),
        "{text}"
    );
    assert!(close);
}

/// A stream of requests answered whole or cut at arbitrary points gives the same bytes.
fn pipeline() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(CURL);
    v.extend_from_slice(b"\r\nHEAD /demo.asx HTTP/1.1\nHost: a\n\n");
    v.extend_from_slice(b"GET /x%20y HTTP/1.1\r\nHost: a\r\n\r\n");
    v.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    v
}

fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let (mut c, now) = conn();
    let cat = catalog(true);
    let mut out = Vec::new();
    for chunk in chunks {
        match c.on_bytes(chunk, now, &cat) {
            ConnAction::Respond { bytes, close } => {
                out.extend_from_slice(&bytes);
                if close {
                    return (out, true);
                }
            }
            ConnAction::NeedMore => {}
            other => panic!("{other:?}"),
        }
    }
    (out, false)
}

proptest! {
    #[test]
    fn split_points_do_not_matter(mut cuts in proptest::collection::vec(0usize..200, 0..12)) {
        let input = pipeline();
        let whole = run(&[&input]);
        prop_assert!(whole.1);
        cuts.iter_mut().for_each(|c| *c = (*c * input.len()) / 200);
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&input[at..c]);
            at = c;
        }
        chunks.push(&input[at..]);
        prop_assert_eq!(run(&chunks), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        split in 0usize..600,
    ) {
        let (mut c, now) = conn();
        let cat = catalog(true);
        let split = split.min(data.len());
        let (a, b) = data.split_at(split);
        for part in [a, b] {
            if let ConnAction::Respond { bytes, .. } = c.on_bytes(part, now, &cat) {
                prop_assert!(bytes.starts_with(b"HTTP/1."));
            }
        }
        prop_assert!(c.take_leftover().len() <= MAX + data.len());
    }

    #[test]
    fn request_like_bytes_never_panic(
        path in "[ -~]{0,40}",
        fields in proptest::collection::vec(("[!-9;-~]{1,12}", "[ -~]{0,30}"), 0..8),
        lf_only in any::<bool>(),
    ) {
        let eol = if lf_only { "\n" } else { "\r\n" };
        let mut s = format!("GET {path} HTTP/1.1{eol}");
        for (n, v) in &fields {
            s.push_str(&format!("{n}: {v}{eol}"));
        }
        s.push_str(eol);
        let mut rd = RequestReader::new(MAX);
        if let Ok(Some(r)) = rd.feed(s.as_bytes()) {
            let _ = r.pragmas();
            let _ = r.safe_path();
            let _ = route(&r, &catalog(true));
        }
    }
}
