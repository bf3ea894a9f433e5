//! Fuzzes the MMSH chunk reader (`src/http/mmsh.rs`, `ChunkReader`: `$H`/`$D`/`$E`/`$C`
//! framing as FFmpeg and VLC check it) and the chunk writers it reads back.
//!
//! Properties checked:
//! - `next_chunk` never panics; the chunks read do not depend on how the bytes are split
//!   (whole input vs. chunk splits drawn from the input), nor does the first error;
//! - the chunks read are the input's bytes: rewriting each with the server's writers
//!   (`data_chunk_head` + payload, `reason_chunk`) gives back exactly the bytes consumed;
//! - a `$H`/`$D` payload is at most `MAX_CHUNK_PAYLOAD` bytes and `buffered` accounts for the
//!   rest of the input;
//! - `header_chunks` of the input reads back as `$H` pieces that reassemble it, with the
//!   first/last flags and offsets as LocationId.
#![no_main]

mod common;

use asfcast::http::mmsh::{
    data_chunk_head, header_chunks, reason_chunk, Chunk, ChunkReader, ChunkType, FrameError,
    MAX_CHUNK_PAYLOAD,
};
use libfuzzer_sys::fuzz_target;

fn read_all(pieces: &[&[u8]]) -> (Vec<Chunk>, Option<FrameError>, usize) {
    let mut r = ChunkReader::new();
    let mut out = Vec::new();
    for p in pieces {
        r.push(p);
        loop {
            match r.next_chunk() {
                Ok(Some(c)) => out.push(c),
                Ok(None) => break,
                Err(e) => return (out, Some(e), r.buffered()),
            }
        }
    }
    (out, None, r.buffered())
}

fn rewrite(c: &Chunk) -> Vec<u8> {
    match c.kind {
        ChunkType::Header | ChunkType::Data => {
            assert!(c.payload.len() <= MAX_CHUNK_PAYLOAD);
            let mut b = data_chunk_head(
                c.kind,
                c.location_or_reason,
                c.incarnation,
                c.af_flags,
                c.payload.len(),
            )
            .expect("payload read fits a chunk")
            .to_vec();
            b.extend_from_slice(&c.payload);
            b
        }
        ChunkType::End | ChunkType::Change => {
            assert!(c.payload.is_empty());
            reason_chunk(c.kind, c.location_or_reason).to_vec()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rng = common::Rng::new(data);
    let (whole, whole_err, left) = read_all(&[data]);
    let pieces = common::chunks(data, &mut rng);
    let (split, split_err, _) = read_all(&pieces);
    assert_eq!(whole, split, "chunks depend on the split");
    assert_eq!(whole_err, split_err, "error depends on the split");
    let mut again = Vec::new();
    for c in &whole {
        again.extend_from_slice(&rewrite(c));
        let _ = c.kind.id();
    }
    assert_eq!(&data[..again.len()], &again[..], "rewritten chunks differ");
    assert_eq!(again.len() + left, data.len(), "bytes lost between chunks");
    if let Some(e) = &whole_err {
        let _ = e.to_string();
    }

    let inc = data.first().copied().unwrap_or(0);
    let framed = header_chunks(data, inc);
    let (hs, err, left) = read_all(&[&framed]);
    assert_eq!(err, None, "header_chunks output does not read back");
    assert_eq!(left, 0);
    let mut back = Vec::new();
    for (i, c) in hs.iter().enumerate() {
        assert_eq!(c.kind, ChunkType::Header);
        assert_eq!(c.incarnation, inc);
        assert_eq!(c.location_or_reason as usize, back.len());
        assert_eq!(c.af_flags & 0x04 != 0, i == 0);
        assert_eq!(c.af_flags & 0x08 != 0, i + 1 == hs.len());
        back.extend_from_slice(&c.payload);
    }
    assert_eq!(back, data);
});
