//! Fuzzes one HTTP connection of the announcement listener (`src/http/conn.rs`,
//! `HttpConn::on_bytes` with `route`) against a two-station catalog.
//!
//! The client's bytes arrive in chunk splits drawn from the input, with the clock moving on
//! between them. Properties checked:
//! - `on_bytes` / `on_timeout` never panic;
//! - once a connection answered with `close`, handed a request off or timed out, it only
//!   answers `Close { Finished }` (or nothing, for timeouts);
//! - a hand-off is a request the routes do not take (a station name or an unknown path):
//!   never `demo.nsc`, `demo.asx` or `/`;
//! - every `Respond` starts with a well-formed HTTP/1.x status line and head;
//! - the output is bounded: at most 16 KiB per request the input can hold (the smallest
//!   request is 16 bytes), so a response loop or amplification is caught.
#![no_main]

mod common;

use std::time::Duration;

use asfcast::http::{CloseReason, ConnAction, HttpConn};
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

fuzz_target!(|data: &[u8]| {
    let d = common::demo();
    let catalog = common::catalog();
    let mut rng = common::Rng::new(data);
    let mut now = d.base;
    let timeout = Duration::from_secs(10);
    let mut conn = HttpConn::new(1024, timeout, now);
    let mut finished = false;
    let mut out = 0usize;
    let bound = (data.len() / 16 + 1) * 16 * 1024;
    for piece in common::chunks(data, &mut rng) {
        now += Duration::from_millis(rng.below(4000) as u64);
        if rng.below(8) == 0 {
            if let Some(a) = conn.on_timeout(now) {
                assert!(!finished, "timeout after the connection finished");
                assert!(now >= conn.deadline());
                assert!(matches!(a, ConnAction::Close { .. }));
                finished = true;
            }
        }
        let action = conn.on_bytes(piece, now, &catalog);
        if finished {
            assert_eq!(
                action,
                ConnAction::Close {
                    reason: CloseReason::Finished
                },
                "a finished connection answered"
            );
            continue;
        }
        match action {
            ConnAction::Respond { bytes, close } => {
                assert!(!bytes.is_empty());
                check_head(&bytes);
                out += bytes.len();
                if close {
                    finished = true;
                }
            }
            ConnAction::NeedMore => {}
            ConnAction::Handoff(req) => {
                let p = req
                    .safe_path()
                    .expect("handed off a path the routes refuse");
                assert!(!matches!(p, "/" | "/demo.nsc" | "/demo.asx" | "/later.nsc"));
                let _ = conn.take_leftover();
                finished = true;
            }
            ConnAction::Close { reason } => panic!("open connection closed: {reason}"),
        }
        // A hand-off held back behind responses comes with the next call.
        if !finished && conn.has_pending() {
            match conn.on_bytes(&[], now, &catalog) {
                ConnAction::Handoff(_) => finished = true,
                other => panic!("pending hand-off gave {other:?}"),
            }
        }
        assert!(
            out <= bound,
            "{out} bytes of responses to {} input bytes",
            data.len()
        );
    }
});
