//! Fuzzes the MMSH request parsing (`src/http/mmsh.rs`: `classify`, `Pragma` directives,
//! `parse_stream_switches`, `resolve_switches`) on requests read by the HTTP reader.
//!
//! The input is a request's bytes (read by `RequestReader`); when it does not read as one,
//! a GET of `/demo` is built with the input as its `Pragma` value instead, so the directive
//! parsing is reached either way. Properties checked:
//! - nothing panics, and `classify` is deterministic;
//! - a Play request carries at most 128 stream-switch entries, each with a hexadecimal or
//!   decimal reading, and its `client_id` is the last `client-id` directive;
//! - `resolve_switches` against the demo header only names streams of the header, thins
//!   only video streams, never both removes and thins a stream, and `keeps` agrees;
//! - the Describe/Play/error responses for the request write well-formed HTTP heads.
#![no_main]

mod common;

use asfcast::asf::StreamKind;
use asfcast::http::mmsh::{
    classify, describe_response, error_response, parse_stream_switches, play_response_head,
    resolve_switches, MmshRequest,
};
use asfcast::http::{Request, RequestReader};
use libfuzzer_sys::fuzz_target;

fn check_head(bytes: &[u8]) {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut fields);
    match resp.parse(bytes) {
        Ok(s) => assert!(s.is_complete(), "response head incomplete"),
        Err(e) => panic!(
            "response does not parse ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn request_of(data: &[u8]) -> Request {
    let mut r = RequestReader::new(8192);
    if let Ok(Some(req)) = r.feed(data) {
        return req;
    }
    let value = String::from_utf8_lossy(data);
    let mut headers = vec![("Host".to_string(), "h".to_string())];
    for line in value.split(['\r', '\n']) {
        headers.push(("Pragma".to_string(), line.trim().to_string()));
    }
    Request {
        method: "GET".into(),
        target: "/demo".into(),
        path: "/demo".into(),
        query: None,
        version: 1,
        headers,
        body: Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let d = common::demo();
    let req = request_of(data);
    let kind = classify(&req);
    assert_eq!(classify(&req), kind, "classify is not deterministic");
    let header = &d.header.header;
    match &kind {
        MmshRequest::Play {
            switches,
            client_id,
        } => {
            assert!(switches.len() <= 128);
            for s in switches {
                assert!(s.hex.is_some() || s.dec.is_some());
            }
            assert_eq!(client_id, &req.pragma("client-id").flatten());
            let sel = resolve_switches(switches, None, header);
            for &n in sel.removed.iter().chain(&sel.key_frames_only) {
                assert!(header.stream(n).is_some(), "selection names stream {n}");
            }
            for &n in &sel.key_frames_only {
                assert_eq!(header.stream(n).map(|s| s.kind), Some(StreamKind::Video));
                assert!(!sel.removed.contains(&n), "stream {n} removed and thinned");
                assert!(sel.keeps(n, true) && !sel.keeps(n, false));
            }
            for &n in &sel.removed {
                assert!(!sel.keeps(n, true) && !sel.keeps(n, false));
            }
            assert_eq!(
                sel.is_all(),
                sel.removed.is_empty() && sel.key_frames_only.is_empty()
            );
            check_head(&play_response_head(&req, 7));
        }
        MmshRequest::Describe => {
            check_head(&describe_response(&req, &d.header.bytes, 7).to_bytes());
        }
        MmshRequest::Post => {}
        MmshRequest::SelectStream { entries, .. } => {
            assert!(!entries.is_empty() && entries.len() <= 128);
            let values: Vec<&str> = entries.iter().map(String::as_str).collect();
            let _ = resolve_switches(&parse_stream_switches(&values), None, header);
        }
        MmshRequest::Unsupported(status, message) => {
            assert!((400..600).contains(status));
            check_head(&error_response(&req, *status, message).to_bytes());
        }
    }
    // The directive parser alone, on every Pragma value and on the raw text.
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    let switches = parse_stream_switches(&values);
    assert!(switches.len() <= 128);
    let _ = resolve_switches(&switches, None, header);
});
