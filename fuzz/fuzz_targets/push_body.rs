//! Fuzzes an encoder's push body ([MS-WMHTTP] §2.2.3, both chunk layouts; FFmpeg's chunked
//! POST): the chunked transfer decoder and the chunk parser, fed in the pieces the first input
//! byte chooses.
//!
//! Properties checked on every input:
//! - neither `Body::decode` nor `Framing::feed` panics;
//! - the parser never holds more than one chunk (4 + 65 535 bytes): memory is bounded;
//! - a data packet handed out is never empty nor larger than a chunk;
//! - after an error the parser refuses everything that follows.
#![no_main]

use asfcast::http::push::body::Body;
use asfcast::http::push::framing::{Chunk, Framing, MAX_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(mode >> 1).max(1);
    let mut body = if mode & 1 == 1 {
        Body::chunked()
    } else {
        Body::Length(u64::MAX)
    };
    let mut framing = Framing::new(MAX_HEADER);
    let mut failed = false;
    let mut decoded = Vec::new();
    for piece in rest.chunks(step) {
        decoded.clear();
        if body.decode(piece, &mut decoded).is_err() {
            break;
        }
        let r = framing.feed(&decoded, &mut |c| {
            if let Chunk::Data(p) = c {
                assert!(!p.is_empty(), "empty data packet");
                assert!(p.len() <= 65_535, "a data packet larger than a chunk");
            }
        });
        if let Some(m) = framing.packet_size() {
            assert!(m > 0);
        }
        assert!(framing.buffered() <= 4 + 65_535, "more than one chunk held");
        if failed {
            assert!(r.is_err(), "a failed parser took more input");
        }
        if r.is_err() {
            failed = true;
        }
        if body.done() {
            break;
        }
    }
});
