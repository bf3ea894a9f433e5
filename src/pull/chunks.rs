//! The body of a WMSP response as chunks ([MS-WMSP] §2.2.3; rtsp-wmsp.md §3.3), read the way a
//! client must to pull from every real server:
//!
//! - the basic header: `$` (0x24; 0xA4 with the B bit), the PacketID, PacketLength LE16 (bytes
//!   that follow). `$H` and `$D` carry the 8-byte MMS data header (LocationId, Incarnation,
//!   AFFlags, PacketSize); the payload is what follows it within PacketLength (PacketSize is
//!   not trusted: the spec makes it equal, and it is not needed);
//! - `$E` and `$C` carry a 4-byte reason; longer bodies are accepted and the rest ignored:
//!   VLC's `asfh` mux and FFmpeg's `asf_stream` write `$E` as a 12-byte chunk (an MMS data
//!   header with a sequence number where the reason would be);
//! - `$M` (metadata), `$P` and `$T` are skipped;
//! - anything else is not WMSP (an HTML page, a plain ASF file): an error naming the bytes.
//!
//! `$H` pieces are collected into the header ([`HeaderAssembler`]): the Header Object's own
//! size says when it is complete (it and the 50-byte Data Object head), so neither the
//! AFFlags (which servers set differently) nor a following chunk are needed. A header larger
//! than [`MAX_HEADER`] is refused: an endless header costs at most that much memory.
//!
//! Memory: the reader holds at most one chunk (64 KiB) and the bytes of one push.

/// Basic header length.
pub const BASIC_LEN: usize = 4;
/// MMS data header length (`$H`, `$D`).
pub const DATA_HEADER_LEN: usize = 8;
/// Largest ASF header (Header Object + Data Object head) accepted from a source.
pub const MAX_HEADER: usize = 1 << 20;
/// Bytes of the Data Object head that follow the Header Object in `$H`.
pub const DATA_HEAD_LEN: usize = 50;

/// One chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// A piece of the ASF header.
    Header(Vec<u8>),
    /// One ASF data packet.
    Data(Vec<u8>),
    /// End of stream with its reason (0: finished; 1: a new entry follows).
    End(u32),
    /// Stream change: a new header follows.
    Change(u32),
    /// `$M`, `$P`, `$T`: not used.
    Skipped(u8),
}

/// Why the body is not WMSP chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("not WMSP framing at body byte {offset}: {b0:#04x} {b1:#04x}")]
    NotFramed { offset: u64, b0: u8, b1: u8 },
    #[error("`${kind}` chunk at body byte {offset} is {length} bytes, too short")]
    TooShort {
        offset: u64,
        kind: char,
        length: u16,
    },
    #[error("ASF header of {size} bytes (at most {MAX_HEADER} accepted)")]
    HeaderTooLarge { size: u64 },
    #[error("`$H` is not an ASF header")]
    NotAsfHeader,
}

/// Reads chunks from body bytes.
#[derive(Debug, Default)]
pub struct ChunkReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    /// Body bytes consumed before `buf[start]`.
    offset: u64,
}

impl ChunkReader {
    pub fn new() -> Self {
        ChunkReader::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet make a chunk.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole chunk (None: more bytes needed).
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, ChunkError> {
        let b = &self.buf[self.start..];
        let Some(&[b0, b1, lo, hi]) = b.get(..BASIC_LEN) else {
            return Ok(None);
        };
        if b0 & 0x7F != b'$' || !matches!(b1, b'H' | b'D' | b'E' | b'C' | b'M' | b'P' | b'T') {
            return Err(ChunkError::NotFramed {
                offset: self.offset,
                b0,
                b1,
            });
        }
        let length = u16::from_le_bytes([lo, hi]);
        let total = BASIC_LEN + usize::from(length);
        let Some(body) = b.get(BASIC_LEN..total) else {
            return Ok(None);
        };
        let short = || ChunkError::TooShort {
            offset: self.offset,
            kind: char::from(b1),
            length,
        };
        let le32 = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let chunk = match b1 {
            b'H' | b'D' => {
                let payload = body.get(DATA_HEADER_LEN..).ok_or_else(short)?.to_vec();
                if b1 == b'H' {
                    Chunk::Header(payload)
                } else {
                    Chunk::Data(payload)
                }
            }
            b'E' | b'C' => {
                let r = body.get(..4).ok_or_else(short)?;
                if b1 == b'E' {
                    Chunk::End(le32(r))
                } else {
                    Chunk::Change(le32(r))
                }
            }
            other => Chunk::Skipped(other),
        };
        self.start += total;
        self.offset += total as u64;
        Ok(Some(chunk))
    }
}

/// Collects `$H` pieces into one header.
#[derive(Debug, Default)]
pub struct HeaderAssembler {
    bytes: Vec<u8>,
}

impl HeaderAssembler {
    pub fn new() -> Self {
        HeaderAssembler::default()
    }

    /// Starts over (a `$C`, a new response).
    pub fn reset(&mut self) {
        self.bytes.clear();
    }

    /// Whether pieces are held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Adds a piece; the whole header (Header Object + Data Object head) once complete.
    pub fn push(&mut self, piece: &[u8]) -> Result<Option<Vec<u8>>, ChunkError> {
        self.bytes.extend_from_slice(piece);
        let Some(size) = self.bytes.get(16..24) else {
            return Ok(None);
        };
        const HEADER_GUID: [u8; 16] = [
            0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62,
            0xCE, 0x6C,
        ];
        if self.bytes[..16] != HEADER_GUID {
            self.bytes.clear();
            return Err(ChunkError::NotAsfHeader);
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(size);
        let object = u64::from_le_bytes(s);
        let whole = object.saturating_add(DATA_HEAD_LEN as u64);
        if whole > MAX_HEADER as u64 || object < 30 {
            self.bytes.clear();
            return Err(ChunkError::HeaderTooLarge { size: whole });
        }
        let whole = whole as usize;
        if self.bytes.len() < whole {
            return Ok(None);
        }
        // Pieces past the header (a server that repeats it) are dropped.
        let mut h = std::mem::take(&mut self.bytes);
        h.truncate(whole);
        Ok(Some(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], step: usize) -> (Vec<Chunk>, Option<ChunkError>) {
        let mut r = ChunkReader::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            r.push(piece);
            loop {
                match r.next_chunk() {
                    Ok(Some(c)) => out.push(c),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    fn data(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = ((8 + payload.len()) as u16).to_le_bytes();
        let mut v = vec![
            b'$', kind, len[0], len[1], 1, 0, 0, 0, 0, 0x0C, len[0], len[1],
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn chunks_of_every_server() {
        let mut input = data(b'H', b"head");
        input.extend(data(b'D', b"packet"));
        // $M metadata, skipped.
        input.extend([b'$', b'M', 2, 0, 9, 9]);
        // asfcast's $C and $E: 4-byte reason.
        input.extend([b'$', b'C', 4, 0, 0, 0, 0, 0]);
        // VLC's / FFmpeg's 12-byte $E: a data header with a sequence number.
        input.extend([b'$', b'E', 8, 0, 7, 0, 0, 0, 0, 0, 8, 0]);
        // The B bit set.
        input.extend(
            data(b'D', b"x")
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 0 { 0xA4 } else { b }),
        );
        let want = vec![
            Chunk::Header(b"head".to_vec()),
            Chunk::Data(b"packet".to_vec()),
            Chunk::Skipped(b'M'),
            Chunk::Change(0),
            Chunk::End(7),
            Chunk::Data(b"x".to_vec()),
        ];
        for step in [1, 3, 5, input.len()] {
            assert_eq!(read_all(&input, step), (want.clone(), None), "split {step}");
        }
    }

    #[test]
    fn what_is_not_wmsp_is_an_error() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("an HTML page", b"<html><head><title>404".to_vec()),
            ("a plain ASF file", vec![0x30, 0x26, 0xB2, 0x75, 0, 0, 0, 0]),
            (
                "a $D shorter than its data header",
                vec![b'$', b'D', 4, 0, 0, 0, 0, 0],
            ),
            ("a $E without its reason", vec![b'$', b'E', 2, 0, 0, 0]),
        ];
        for (name, input) in cases {
            assert!(read_all(&input, 2).1.is_some(), "{name}");
        }
    }

    #[test]
    fn the_header_is_complete_by_its_own_size() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media/demo.asf");
        let r = crate::asf::AsfReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let h = r.header().to_broadcast().stream_header_bytes(r.data_head());
        for piece in [1usize, 100, 4096, h.len()] {
            let mut a = HeaderAssembler::new();
            let mut got = None;
            for p in h.chunks(piece) {
                assert!(got.is_none(), "complete before its last piece");
                got = a.push(p).unwrap_or_else(|e| panic!("{e}"));
            }
            assert_eq!(got.as_deref(), Some(h.as_slice()), "pieces of {piece}");
        }
        // A header declaring 4 GB is refused at once, not collected.
        let mut huge = h[..24].to_vec();
        huge[16..24].copy_from_slice(&(4u64 << 30).to_le_bytes());
        assert!(HeaderAssembler::new().push(&huge).is_err());
        assert!(HeaderAssembler::new().push(&[0u8; 30]).is_err());
    }
}
