//! The chunks inside a push body ([MS-WMHTTP] §2.2.3), sans-I/O: body bytes in, the feed's
//! header, packets and end out.
//!
//! Every chunk starts `24 <type> <PacketLength u16 LE>`. Two layouts are in use:
//!
//! - the spec's: the payload follows the 4 bytes directly (`$H`: ASF Header Object + 50-byte
//!   Data Object head; `$D`: one ASF data packet; `$C`: Reason u32 + the new header; `$E`:
//!   Reason u32; `$F`: filler);
//! - the [MS-WMSP] one FFmpeg's `asf_stream` and VLC's `asfh` muxers write: an 8-byte
//!   pre-header (LocationId u32, Incarnation u8, AFFlags u8, PacketSize u16 = PacketLength)
//!   before the payload, and `$E` as 12 bytes with PacketLength 8 and no Reason.
//!
//! The layout is decided once per session from its first chunk (`docs/protocols/
//! ingest-relay-ops.md` §a.1): a `$H` whose Header Object GUID sits right after the framing is
//! the spec's, one whose GUID sits after 8 more bytes with PacketSize = PacketLength is
//! WMSP's; a session resumed with `$D` first is WMSP when its PacketSize field repeats
//! PacketLength. `$C` may carry the Reason or not (both are seen as a header by its GUID).
//!
//! Hostile input: a first byte other than `$` (the B bit set included), a `$D` before any
//! `$H`, a header that does not parse or is larger than [`MAX_HEADER`], a data packet larger
//! than the header's packet size: each is a [`FramingError`] and ends the session; the
//! parser holds at most one chunk (PacketLength is 16 bits), so memory is bounded whatever
//! arrives. Unknown chunk types are skipped and counted.

use crate::asf::{AsfHeader, DataHead, DATA_HEAD_LEN};

/// The spec's largest `$H` payload (PacketLength − nothing: 65 531 bytes, §2.2.3.1.1).
pub const MAX_HEADER: usize = 65_531;
const GUID_HEADER: [u8; 4] = [0x30, 0x26, 0xB2, 0x75];
const PRE_HEADER: usize = 8;

/// Which chunk layout the session's encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// [MS-WMHTTP]: the payload right after the 4-byte framing.
    Spec,
    /// [MS-WMSP]: an 8-byte pre-header first (FFmpeg, VLC).
    Wmsp,
}

/// One chunk as an encoder writes it (`kind` b'H', b'D', b'C', b'E' or b'F'): the framing,
/// under [`Layout::Wmsp`] the pre-header with `location`, then `payload`. For tests and
/// in-repo encoders; None when the payload does not fit the 16-bit length.
pub fn write_chunk(layout: Layout, kind: u8, payload: &[u8], location: u32) -> Option<Vec<u8>> {
    let extra = match layout {
        Layout::Spec => 0,
        Layout::Wmsp => PRE_HEADER,
    };
    let len = u16::try_from(payload.len() + extra).ok()?;
    let mut out = Vec::with_capacity(4 + usize::from(len));
    out.extend_from_slice(&[0x24, kind]);
    out.extend_from_slice(&len.to_le_bytes());
    if layout == Layout::Wmsp {
        out.extend_from_slice(&location.to_le_bytes());
        out.push(0);
        out.push(if kind == b'H' { 0x0C } else { 0 });
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(payload);
    Some(out)
}

/// What a chunk meant.
#[derive(Debug)]
pub enum Chunk {
    /// The feed's header (`$H`, or `$C` for a change).
    Header {
        header: Box<AsfHeader>,
        data: DataHead,
        change: bool,
    },
    /// One data packet.
    Data(Vec<u8>),
    /// `$E`: the feed ends (`more` when Reason 1: a `$C` follows).
    End { more: bool },
}

/// Why a push body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error(
        "not a push chunk at body offset {offset}: first byte {byte:#04x}, expected 0x24 ('$')"
    )]
    Garbage { offset: u64, byte: u8 },
    #[error("a data chunk before any header chunk at body offset {offset}")]
    DataBeforeHeader { offset: u64 },
    #[error("header chunk at body offset {offset}: {reason}")]
    BadHeader { offset: u64, reason: String },
    #[error("data packet of {len} bytes at body offset {offset} is larger than the header's packet size {max}")]
    PacketTooLarge { offset: u64, len: usize, max: usize },
    #[error("chunk of type {kind:?} at body offset {offset} is too short ({len} bytes)")]
    TooShort { offset: u64, kind: char, len: usize },
}

/// The chunk parser of one push session; see the module doc.
#[derive(Debug)]
pub struct Framing {
    buf: Vec<u8>,
    /// Body bytes consumed before `buf`.
    offset: u64,
    layout: Option<Layout>,
    /// The current header's packet size (None before the first header).
    packet_size: Option<usize>,
    /// Header limit (at most [`MAX_HEADER`]).
    max_header: usize,
    failed: bool,
    /// Filler and unknown chunks skipped.
    pub skipped: u64,
}

impl Framing {
    /// A parser for a new session, refusing headers above `max_header` bytes.
    pub fn new(max_header: usize) -> Self {
        Framing {
            buf: Vec::new(),
            offset: 0,
            layout: None,
            packet_size: None,
            max_header: max_header.min(MAX_HEADER),
            failed: false,
            skipped: 0,
        }
    }

    /// A parser for a resumed session whose header (packet size) and layout are known.
    pub fn resumed(max_header: usize, layout: Option<Layout>, packet_size: Option<usize>) -> Self {
        Framing {
            layout,
            packet_size,
            ..Framing::new(max_header)
        }
    }

    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    pub fn packet_size(&self) -> Option<usize> {
        self.packet_size
    }

    /// Bytes held waiting for the rest of a chunk.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds body bytes; calls `out` with each complete chunk. After an error the parser
    /// refuses everything.
    pub fn feed(&mut self, bytes: &[u8], out: &mut dyn FnMut(Chunk)) -> Result<(), FramingError> {
        if self.failed {
            return Err(FramingError::Garbage {
                offset: self.offset,
                byte: 0,
            });
        }
        let r = self.feed_inner(bytes, out);
        if r.is_err() {
            self.failed = true;
            self.buf = Vec::new();
        }
        r
    }

    fn feed_inner(
        &mut self,
        mut bytes: &[u8],
        out: &mut dyn FnMut(Chunk),
    ) -> Result<(), FramingError> {
        loop {
            // Complete the 4-byte framing, then the chunk, from `bytes` into `buf`.
            if self.buf.len() < 4 {
                let take = (4 - self.buf.len()).min(bytes.len());
                self.buf.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if let Some(&b) = self.buf.first() {
                    if b != 0x24 {
                        return Err(FramingError::Garbage {
                            offset: self.offset,
                            byte: b,
                        });
                    }
                }
                if self.buf.len() < 4 {
                    return Ok(());
                }
            }
            let len = usize::from(u16::from_le_bytes([self.buf[2], self.buf[3]]));
            let need = (4 + len).saturating_sub(self.buf.len());
            let take = need.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() < 4 + len {
                return Ok(());
            }
            let chunk = std::mem::take(&mut self.buf);
            let at = self.offset;
            self.offset += chunk.len() as u64;
            self.chunk(chunk, at, out)?;
            if bytes.is_empty() {
                return Ok(());
            }
        }
    }

    /// The payload of a `$H`/`$D`/`$C` chunk under the session's layout, deciding it first.
    fn payload<'a>(&mut self, kind: u8, chunk: &'a [u8]) -> &'a [u8] {
        let len = chunk.len() - 4;
        let body = &chunk[4..];
        let wmsp_shaped =
            len >= PRE_HEADER && usize::from(u16::from_le_bytes([body[6], body[7]])) == len;
        if self.layout.is_none() {
            self.layout = Some(match kind {
                b'H' if body.starts_with(&GUID_HEADER) => Layout::Spec,
                _ if wmsp_shaped => Layout::Wmsp,
                _ => Layout::Spec,
            });
        }
        match self.layout {
            Some(Layout::Wmsp) if len >= PRE_HEADER => &body[PRE_HEADER..],
            _ => body,
        }
    }

    fn chunk(
        &mut self,
        chunk: Vec<u8>,
        offset: u64,
        out: &mut dyn FnMut(Chunk),
    ) -> Result<(), FramingError> {
        let kind = chunk[1];
        match kind {
            b'H' | b'C' => {
                let payload = self.payload(kind, &chunk);
                // `$C` carries a Reason before the header in the spec; find the header by its GUID.
                let payload = if kind == b'C' && !payload.starts_with(&GUID_HEADER) {
                    payload.get(4..).unwrap_or_default()
                } else {
                    payload
                };
                let (header, data) = self.parse_header(payload, offset)?;
                self.packet_size = Some(header.packet_size() as usize);
                out(Chunk::Header {
                    header: Box::new(header),
                    data,
                    change: kind == b'C',
                });
            }
            b'D' => {
                let payload = self.payload(kind, &chunk);
                let Some(max) = self.packet_size else {
                    return Err(FramingError::DataBeforeHeader { offset });
                };
                if payload.len() > max {
                    return Err(FramingError::PacketTooLarge {
                        offset,
                        len: payload.len(),
                        max,
                    });
                }
                if payload.is_empty() {
                    return Err(FramingError::TooShort {
                        offset,
                        kind: 'D',
                        len: 0,
                    });
                }
                out(Chunk::Data(payload.to_vec()));
            }
            b'E' => {
                // Spec: Reason u32 (PacketLength 4); WMSP-shaped: 8-byte pre-header, maybe a Reason.
                let body = &chunk[4..];
                let reason = match body.len() {
                    4 => Some(&body[..4]),
                    12.. => Some(&body[8..12]),
                    _ => None,
                };
                let more =
                    reason.is_some_and(|r| u32::from_le_bytes([r[0], r[1], r[2], r[3]]) == 1);
                out(Chunk::End { more });
            }
            _ => self.skipped += 1,
        }
        Ok(())
    }

    fn parse_header(
        &self,
        payload: &[u8],
        offset: u64,
    ) -> Result<(AsfHeader, DataHead), FramingError> {
        let bad = |reason: String| FramingError::BadHeader { offset, reason };
        if payload.len() > self.max_header {
            return Err(bad(format!(
                "{} bytes, more than the limit of {}",
                payload.len(),
                self.max_header
            )));
        }
        let size = payload
            .get(16..24)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .ok_or_else(|| bad("shorter than a Header Object".into()))?;
        let split = usize::try_from(size)
            .ok()
            .filter(|&s| s.checked_add(DATA_HEAD_LEN).is_some_and(|end| end <= payload.len()))
            .ok_or_else(|| {
                bad(format!(
                    "Header Object of {size} bytes does not fit the {}-byte chunk with its Data Object head",
                    payload.len()
                ))
            })?;
        let header = AsfHeader::parse(&payload[..split]).map_err(|e| bad(e.to_string()))?;
        let data = DataHead::parse(&payload[split..split + DATA_HEAD_LEN])
            .map_err(|e| bad(e.to_string()))?;
        let ps = header.packet_size() as usize;
        if ps == 0 {
            return Err(bad("the header declares no packet size".into()));
        }
        Ok((header, data))
    }
}
