//! Fuzzes the RTSP connection reader (`src/rtsp/message.rs`): requests, responses and
//! interleaved `$` frames from one client byte stream, and the reply writer.
//!
//! Properties checked:
//! - `Reader::push` / `next_message` never panic, and never hold more than the larger of
//!   the request limit and one interleaved frame;
//! - what is framed does not depend on how the bytes are split (whole input vs. chunk
//!   splits drawn from the input), when neither feeding hit an error;
//! - an interleaved frame's reported length is at most 65 535 and within the input;
//! - a reply echoing a request's `CSeq` and `Session` (as the session does) parses back as
//!   an RTSP response with that status and those values.
#![no_main]

mod common;

use asfcast::rtsp::message::{header, Incoming, Reader, Reply};
use libfuzzer_sys::fuzz_target;
use rtsp_types::headers;
use rtsp_types::Message;

const MAX: usize = 8192;

struct Out {
    items: Vec<String>,
    error: bool,
    framed_bytes: usize,
}

fn read_all(pieces: &[&[u8]], total: usize) -> Out {
    let mut r = Reader::new(MAX);
    let mut out = Out {
        items: Vec::new(),
        error: false,
        framed_bytes: 0,
    };
    for p in pieces {
        if r.push(p).is_err() {
            out.error = true;
        }
        assert!(
            r.buffered() <= MAX.max(4 + 0xFFFF),
            "reader holds {} bytes",
            r.buffered()
        );
        loop {
            match r.next_message() {
                Ok(Some(m)) => {
                    if let Incoming::Interleaved { len, .. } = &m {
                        assert!(*len <= 0xFFFF);
                        out.framed_bytes += 4 + len;
                        assert!(out.framed_bytes <= total, "frames longer than the input");
                    }
                    if let Incoming::Request(req) = &m {
                        check_reply(req);
                    }
                    out.items.push(format!("{m:?}"));
                }
                Ok(None) => break,
                Err(_) => {
                    out.error = true;
                    return out;
                }
            }
        }
        if out.error {
            return out;
        }
    }
    out
}

fn check_reply(req: &rtsp_types::Request<Vec<u8>>) {
    let cseq = header(req, &headers::CSEQ);
    let session = header(req, &headers::SESSION);
    let reply = Reply::new(200)
        .header(headers::PUBLIC, "OPTIONS")
        .body("text/plain", b"ok".to_vec());
    let bytes = reply.to_bytes(cseq, session);
    let (msg, n) = Message::<Vec<u8>>::parse(&bytes).unwrap_or_else(|e| {
        panic!(
            "reply does not parse ({e:?}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(n, bytes.len(), "reply has trailing bytes");
    let Message::Response(resp) = msg else {
        panic!("reply parses as something else");
    };
    assert_eq!(u16::from(resp.status()), 200);
    // Header values are trimmed by the parser; compare trimmed.
    assert_eq!(
        resp.header(&headers::CSEQ).map(|v| v.as_str().trim()),
        cseq.map(str::trim)
    );
    assert_eq!(
        resp.header(&headers::SESSION).map(|v| v.as_str().trim()),
        session.map(str::trim)
    );
    assert_eq!(resp.body(), b"ok");
}

fuzz_target!(|data: &[u8]| {
    let mut rng = common::Rng::new(data);
    let whole = read_all(&[data], data.len());
    let pieces = common::chunks(data, &mut rng);
    let split = read_all(&pieces, data.len());
    if !whole.error && !split.error {
        assert_eq!(
            whole.items, split.items,
            "framing depends on the chunk split"
        );
    }
});
