//! Fuzzes the HTTP request reader (`src/http/request.rs`) behind the announcement routes
//! and MMSH.
//!
//! Properties checked:
//! - `RequestReader::feed` never panics; once it fails it stays failed;
//! - it never holds more than the limit of an unfinished head, and a request's head and
//!   body together are no longer than the input;
//! - the requests read do not depend on how the bytes are split (whole input vs. chunk
//!   splits drawn from the input), when neither feeding failed;
//! - each request is sane: a method token, HTTP/1.0 or 1.1, at most `MAX_HEADERS` fields,
//!   a body exactly as long as its `Content-Length`, a `safe_path` (if any) starting with
//!   `/` and free of `..` segments, backslashes and control characters;
//! - the accessors (`pragmas`, `pragma`, `keep_alive`, ...) never panic and agree;
//! - the error response for a failure parses as an HTTP response with the error's status.
#![no_main]

mod common;

use asfcast::http::{HttpError, Request, RequestReader, Response, MAX_HEADERS};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 2048;

struct Out {
    requests: Vec<Request>,
    error: Option<HttpError>,
}

fn read_all(pieces: &[&[u8]]) -> Out {
    let mut r = RequestReader::new(MAX);
    let mut out = Out {
        requests: Vec::new(),
        error: None,
    };
    for p in pieces {
        let mut input: &[u8] = p;
        loop {
            match r.feed(input) {
                Ok(Some(req)) => out.requests.push(req),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(r.feed(b"GET / HTTP/1.0\r\n\r\n"), Err(e.clone()));
                    out.error = Some(e);
                    return out;
                }
            }
            input = &[];
        }
        // An unfinished head is never held beyond the limit (a body may be, up to its
        // Content-Length, itself at most the limit, plus what was pipelined after it).
        if !r.in_request() {
            assert_eq!(r.buffered(), 0);
        }
    }
    out
}

fn check_request(req: &Request) {
    assert!(!req.method.is_empty(), "empty method");
    assert!(req.version <= 1, "HTTP/1.{}", req.version);
    assert!(req.headers.len() <= MAX_HEADERS);
    assert!(req.body.len() <= MAX, "body over the limit");
    match req.header("content-length") {
        Some(v) => assert_eq!(v.trim().parse::<usize>().ok(), Some(req.body.len())),
        None => assert!(req.body.is_empty()),
    }
    if let Some(p) = req.safe_path() {
        assert!(p.starts_with('/'));
        assert!(!p.split('/').any(|s| s == ".."));
        assert!(!p.chars().any(|c| c == '\\' || c.is_control()));
    }
    let pragmas = req.pragmas();
    for (k, v) in &pragmas {
        assert!(!k.contains(','), "pragma key with a comma");
        assert_eq!(k.trim(), k);
        if let Some(v) = v {
            assert_eq!(v.trim(), v);
        }
        // The last directive of a name wins.
        let last = pragmas
            .iter()
            .rev()
            .find(|(k2, _)| k2.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone());
        assert_eq!(req.pragma(k), last);
    }
    let _ = req.keep_alive();
    let _ = req.is_head();
    let _ = req.has_connection_option("close");
    let _ = req.headers_named("host").count();
}

fn check_error_response(e: &HttpError) {
    let bytes = Response::for_error(e).to_bytes();
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut fields);
    let status = resp.parse(&bytes).expect("error response parses");
    assert!(status.is_complete(), "error response head incomplete");
    assert_eq!(resp.code, Some(e.status()));
    let _ = e.to_string();
}

fuzz_target!(|data: &[u8]| {
    let mut rng = common::Rng::new(data);
    let whole = read_all(&[data]);
    let pieces = common::chunks(data, &mut rng);
    let split = read_all(&pieces);
    let total: usize = whole.requests.iter().map(|r| r.body.len()).sum();
    assert!(total <= data.len());
    for r in whole.requests.iter().chain(&split.requests) {
        check_request(r);
    }
    for e in whole.error.iter().chain(&split.error) {
        check_error_response(e);
    }
    if whole.error.is_none() && split.error.is_none() {
        assert_eq!(
            whole.requests, split.requests,
            "requests depend on the chunk split"
        );
    }
});
