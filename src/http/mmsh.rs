//! MMS over HTTP ([MS-WMSP], "mmsh"), sans-I/O: what a station path request means, the
//! responses, and the chunk framing of the data stream. The per-client streaming state machine
//! (join, fast start, slow clients, header changes) is [`stream`]; the HTTP listener's session
//! ([`super::session`]) hands a `GET /<station>` to `answer` and then drives the stream.
//!
//! Requests ([MS-WMSP] §2.2.2, facts: `docs/protocols/rtsp-wmsp.md` §3.1):
//! - **Describe**: a GET without `xPlayStrm=1`: answered with the station header in one `$H`
//!   chunk (`Content-Type: application/vnd.ms.wms-hdr.asfv1`, with `Content-Length`, so a
//!   keep-alive client can send its Play on the same connection). No `$E` after it: libmms
//!   takes any chunk but `$H`/`$D` after the header as an error, VLC and FFmpeg stop at the
//!   close.
//! - **Play**: a GET with `Pragma: xPlayStrm=1`: `application/x-mms-framed`, the body delimited
//!   by the close: `$H`, then `$D` chunks, `$E` at the end.
//! - `stream-switch-entry=ffff:<n>:<level> …` selects streams (§2.2.1.4.27): level 0 = all,
//!   1 = key frames only, 2 = none. The spec says hexadecimal; FFmpeg, VLC and libmms all write
//!   the number with `%d`. Both agree below 10; above, the reading that names streams of the
//!   header wins (hex first, as the spec says). Streams the client does not list are sent.
//! - Other station-path requests: POST (WMP's `x-wms-LogStats` / `x-wms-sendevent`) gets 204;
//!   pipelined-mode requests (`xPlayNextEntry`, `pipeline-request`, a `stream-switch-entry`
//!   without `xPlayStrm`) get 501; other methods 405.
//!
//! Responses carry what the clients look at (§3.2): `Server: Cougar/9.01.01.3814` (the spec
//! requires the Cougar token), `Pragma: client-id=<n>` and `Pragma: features="broadcast"` (VLC
//! and libmms read `features`: `broadcast` = live, not seekable; libmms would take `seekable`
//! anywhere in the value as on-demand, so it never appears), `Cache-Control: no-cache`.
//!
//! Framing (§2.2.3, rtsp-wmsp.md §3.3): a 4-byte basic header (`$`, type, PacketLength LE16 =
//! bytes that follow), then for `$H`/`$D` the 8-byte MMS data header (LocationId LE32,
//! Incarnation, AFFlags, PacketSize LE16 = 8 + payload). Client quirks served:
//! - FFmpeg and VLC compare the first two bytes to `$H`/`$D`/`$E`/`$C` exactly: the B bit is
//!   never set, and `$M`/`$P`/`$T` are never sent (fatal to both).
//! - VLC takes the data length from PacketSize, FFmpeg from PacketLength: both are equal.
//! - FFmpeg parses the first `$H` as the whole header: the header goes in one chunk when it
//!   fits (up to 65 527 bytes; larger headers are split as the spec requires, which only
//!   clients that collect `$H` pieces, VLC and libmms, can read).
//! - `$D` carries the packet with its padding stripped (asf.md §3.6); every client re-pads.
//! - `$E` and `$C` carry a 4-byte reason and no MMS data header (FFmpeg reads 4 bytes after
//!   them, libmms refuses a `$C` with more).
//! - AFFlags: `$H` pieces carry 0x04 (first) | 0x08 (last), `$D` 0 (INFERRED: no client reads
//!   it).

use super::request::Request;
use super::response::Response;
use crate::asf::AsfHeader;

#[path = "mmsh_stream.rs"]
pub mod stream;

/// The `Server` token [MS-WMSP] requires of a server (Windows Media Services 9).
pub const SERVER: &str = "Cougar/9.01.01.3814";
/// The Describe response's content type.
pub const HEADER_CONTENT_TYPE: &str = "application/vnd.ms.wms-hdr.asfv1";
/// The Play response's content type.
pub const FRAMED_CONTENT_TYPE: &str = "application/x-mms-framed";
/// The `Pragma` that marks a live broadcast.
pub const FEATURES_BROADCAST: &str = "features=\"broadcast\"";
/// The methods a station path answers.
pub const ALLOW: &str = "GET, HEAD, POST";

/// Basic header: `$`, type, PacketLength.
pub const BASIC_HEADER_LEN: usize = 4;
/// MMS data packet header: LocationId, Incarnation, AFFlags, PacketSize.
pub const DATA_HEADER_LEN: usize = 8;
/// The most payload one `$H`/`$D` chunk carries (PacketSize is 16 bits and counts the 8-byte
/// data header).
pub const MAX_CHUNK_PAYLOAD: usize = 0xFFFF - DATA_HEADER_LEN;
/// `$E` reason: the stream is finished.
pub const END_FINISHED: u32 = 0;
/// `$E` reason: this playlist entry ended and another follows (VLC and libmms then reconnect;
/// FFmpeg ends).
pub const END_NEXT_ENTRY: u32 = 1;

/// AFFlags of the first piece of a `$H` object.
const AF_FIRST: u8 = 0x04;
/// AFFlags of the last piece of a `$H` object.
const AF_LAST: u8 = 0x08;
/// Stream-switch entries read from one request at most (streams are numbered 1..=127).
pub const MAX_SWITCHES: usize = 128;

/// The chunk types this server sends (and [`ChunkReader`] reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkType {
    /// `$H`: (a piece of) the ASF header.
    Header,
    /// `$D`: one ASF data packet.
    Data,
    /// `$E`: end of stream, with a reason.
    End,
    /// `$C`: stream change; a new `$H` follows.
    Change,
}

impl ChunkType {
    /// The PacketID byte.
    pub fn id(self) -> u8 {
        match self {
            ChunkType::Header => b'H',
            ChunkType::Data => b'D',
            ChunkType::End => b'E',
            ChunkType::Change => b'C',
        }
    }

    fn from_id(id: u8) -> Option<ChunkType> {
        match id {
            b'H' => Some(ChunkType::Header),
            b'D' => Some(ChunkType::Data),
            b'E' => Some(ChunkType::End),
            b'C' => Some(ChunkType::Change),
            _ => None,
        }
    }

    /// Whether the chunk carries the 8-byte MMS data header.
    pub fn has_data_header(self) -> bool {
        matches!(self, ChunkType::Header | ChunkType::Data)
    }
}

/// Why bytes could not be framed or read as chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A payload longer than one chunk holds.
    #[error("{len}-byte payload does not fit in one chunk (at most {MAX_CHUNK_PAYLOAD})")]
    TooLong {
        /// The payload length.
        len: usize,
    },
    /// The first byte is not `$` (0x24) or the type is not one of `H`, `D`, `E`, `C`.
    #[error("not an MMSH chunk at byte {offset}: {b0:#04x} {b1:#04x}")]
    BadType {
        /// Offset of the chunk in the input.
        offset: usize,
        /// Frame byte.
        b0: u8,
        /// PacketID byte.
        b1: u8,
    },
    /// PacketLength too short for the chunk type, or PacketSize differs from it.
    #[error("{kind:?} chunk at byte {offset}: PacketLength {length}, PacketSize {size:?}")]
    BadLength {
        /// Offset of the chunk in the input.
        offset: usize,
        /// The chunk type.
        kind: ChunkType,
        /// PacketLength.
        length: u16,
        /// PacketSize, for `$H`/`$D`.
        size: Option<u16>,
    },
}

/// The 12-byte head of a `$H` or `$D` chunk with a `payload_len`-byte payload.
pub fn data_chunk_head(
    kind: ChunkType,
    location_id: u32,
    incarnation: u8,
    af_flags: u8,
    payload_len: usize,
) -> Result<[u8; BASIC_HEADER_LEN + DATA_HEADER_LEN], FrameError> {
    if payload_len > MAX_CHUNK_PAYLOAD {
        return Err(FrameError::TooLong { len: payload_len });
    }
    // Both length fields count the data header and the payload: equal by construction.
    let size = ((DATA_HEADER_LEN + payload_len) as u16).to_le_bytes();
    let loc = location_id.to_le_bytes();
    Ok([
        b'$',
        kind.id(),
        size[0],
        size[1],
        loc[0],
        loc[1],
        loc[2],
        loc[3],
        incarnation,
        af_flags,
        size[0],
        size[1],
    ])
}

/// A `$E` (end) or `$C` (change) chunk: basic header and a 4-byte reason.
pub fn reason_chunk(kind: ChunkType, reason: u32) -> [u8; 8] {
    let r = reason.to_le_bytes();
    [b'$', kind.id(), 4, 0, r[0], r[1], r[2], r[3]]
}

/// The header as `$H` chunks: one when it fits in [`MAX_CHUNK_PAYLOAD`] bytes, else pieces
/// whose LocationId is their offset in the header.
pub fn header_chunks(header: &[u8], incarnation: u8) -> Vec<u8> {
    let mut pieces: Vec<&[u8]> = header.chunks(MAX_CHUNK_PAYLOAD).collect();
    if pieces.is_empty() {
        pieces.push(&[]);
    }
    let count = pieces.len();
    let mut out = Vec::with_capacity(header.len() + count * (BASIC_HEADER_LEN + DATA_HEADER_LEN));
    let mut offset = 0usize;
    for (i, piece) in pieces.into_iter().enumerate() {
        let mut flags = 0;
        if i == 0 {
            flags |= AF_FIRST;
        }
        if i + 1 == count {
            flags |= AF_LAST;
        }
        // A piece is at most MAX_CHUNK_PAYLOAD bytes by construction.
        if let Ok(head) = data_chunk_head(
            ChunkType::Header,
            offset as u32,
            incarnation,
            flags,
            piece.len(),
        ) {
            out.extend_from_slice(&head);
            out.extend_from_slice(piece);
        }
        offset += piece.len();
    }
    out
}

/// Reads a chunk's 4-byte basic header (at byte `offset` of the stream, for the error): its
/// type and PacketLength, the bytes that follow. [`ChunkReader`] builds on it; a client that
/// only counts media (the load tool) uses it alone and skips bodies without buffering them.
pub fn basic_header(
    head: [u8; BASIC_HEADER_LEN],
    offset: usize,
) -> Result<(ChunkType, u16), FrameError> {
    let [b0, b1, lo, hi] = head;
    match ChunkType::from_id(b1) {
        Some(kind) if b0 == b'$' => Ok((kind, u16::from_le_bytes([lo, hi]))),
        _ => Err(FrameError::BadType { offset, b0, b1 }),
    }
}

/// One chunk read back by [`ChunkReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub kind: ChunkType,
    /// LocationId for `$H`/`$D`; the reason for `$E`/`$C`.
    pub location_or_reason: u32,
    /// Incarnation (`$H`/`$D`; 0 otherwise).
    pub incarnation: u8,
    /// AFFlags (`$H`/`$D`; 0 otherwise).
    pub af_flags: u8,
    /// The payload (`$H`/`$D`).
    pub payload: Vec<u8>,
}

/// Reads chunks back from a byte stream, checking the framing as strictly as FFmpeg and VLC
/// do (for tests and tools; the server only writes chunks).
#[derive(Debug, Default)]
pub struct ChunkReader {
    buf: Vec<u8>,
    consumed: usize,
}

impl ChunkReader {
    pub fn new() -> Self {
        ChunkReader::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet make a whole chunk.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete chunk, `None` when more bytes are needed.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, FrameError> {
        let Some(&[b0, b1, lo, hi]) = self.buf.get(..BASIC_HEADER_LEN) else {
            return Ok(None);
        };
        let offset = self.consumed;
        let (kind, length) = basic_header([b0, b1, lo, hi], offset)?;
        let total = BASIC_HEADER_LEN + usize::from(length);
        let Some(body) = self.buf.get(BASIC_HEADER_LEN..total) else {
            return Ok(None);
        };
        let bad = |size| FrameError::BadLength {
            offset,
            kind,
            length,
            size,
        };
        let chunk = if kind.has_data_header() {
            let Some(h) = body.get(..DATA_HEADER_LEN) else {
                return Err(bad(None));
            };
            let size = u16::from_le_bytes([h[6], h[7]]);
            if size != length {
                return Err(bad(Some(size)));
            }
            Chunk {
                kind,
                location_or_reason: u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
                incarnation: h[4],
                af_flags: h[5],
                payload: body.get(DATA_HEADER_LEN..).unwrap_or_default().to_vec(),
            }
        } else {
            let Some(r) = body.get(..4).filter(|_| body.len() == 4) else {
                return Err(bad(None));
            };
            Chunk {
                kind,
                location_or_reason: u32::from_le_bytes([r[0], r[1], r[2], r[3]]),
                incarnation: 0,
                af_flags: 0,
                payload: Vec::new(),
            }
        };
        self.buf.drain(..total);
        self.consumed += total;
        Ok(Some(chunk))
    }
}

pub use crate::station::delivery::{Choice, StreamSelection, Thinning};

/// One `stream-switch-entry` item with the destination stream number kept in both readings
/// (hexadecimal per the spec, decimal as FFmpeg, VLC and libmms write it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSwitch {
    /// The number read as hexadecimal.
    pub hex: Option<u16>,
    /// The number read as decimal.
    pub dec: Option<u16>,
    pub level: Thinning,
}

/// Parses the `stream-switch-entry` values: space-separated `src:dst:level` triples. Malformed
/// items are skipped; at most 128 are read.
pub fn parse_stream_switches(values: &[&str]) -> Vec<StreamSwitch> {
    values
        .iter()
        .flat_map(|v| v.split_ascii_whitespace())
        .filter_map(|item| {
            let mut parts = item.split(':');
            let (_src, dst, level) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || dst.is_empty() || dst.len() > 4 {
                return None;
            }
            let level = match level {
                "0" => Thinning::All,
                "1" => Thinning::KeyFrames,
                "2" => Thinning::Off,
                _ => return None,
            };
            let hex = u16::from_str_radix(dst, 16).ok();
            let dec = dst.parse::<u16>().ok();
            hex.or(dec)?;
            Some(StreamSwitch { hex, dec, level })
        })
        .take(MAX_SWITCHES)
        .collect()
}

/// Resolves a client's `stream-switch-entry` items against `header`: the stream number is read
/// as hexadecimal (the spec) when every entry names a stream of the header that way, else as
/// decimal (FFmpeg, VLC and libmms write decimal); entries naming no stream are ignored. The
/// selection rules themselves are the station's ([`Choice::resolve`]; `bandwidth` is the
/// `LinkBW` the client announced, for MBR renditions it names none of).
pub fn resolve_switches(
    switches: &[StreamSwitch],
    bandwidth: Option<u64>,
    header: &AsfHeader,
) -> Choice {
    let known = |n: Option<u16>| {
        n.and_then(|n| u8::try_from(n).ok())
            .filter(|n| header.stream(*n).is_some())
    };
    let use_hex = switches.iter().all(|s| known(s.hex).is_some())
        || !switches.iter().all(|s| known(s.dec).is_some());
    let requests = switches
        .iter()
        .filter_map(|s| Some((known(if use_hex { s.hex } else { s.dec })?, s.level)));
    Choice::resolve(requests, bandwidth, header)
}

/// What a station-path request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MmshRequest {
    /// GET without `xPlayStrm=1`: the header.
    Describe,
    /// GET with `xPlayStrm=1`: the stream.
    Play {
        /// The stream-switch entries, unresolved.
        switches: Vec<StreamSwitch>,
        /// A `client-id` the client sent back, if any.
        client_id: Option<String>,
    },
    /// POST (logging, events): acknowledged and ignored.
    Post,
    /// SelectStream ([MS-WMSP] 2.2.2.8, non-pipelined mode): a POST with `client-id` and
    /// `stream-switch-entry` items for the stream that connection plays.
    SelectStream {
        client_id: u32,
        /// The `stream-switch-entry` values as sent.
        entries: Vec<String>,
    },
    /// A request this server does not implement (status, reason).
    Unsupported(u16, &'static str),
}

/// Classifies a request for a station path ([MS-WMSP] §2.2.2).
pub fn classify(request: &Request) -> MmshRequest {
    match request.method.as_str() {
        "GET" | "HEAD" => {}
        "POST" => {
            let pragmas = request.pragmas();
            let entries: Vec<String> = pragmas
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("stream-switch-entry"))
                .filter_map(|(_, v)| v.clone())
                .take(MAX_SWITCHES)
                .collect();
            if entries.is_empty() {
                return MmshRequest::Post;
            }
            return match request
                .pragma("client-id")
                .flatten()
                .and_then(|v| v.trim().parse::<u32>().ok())
            {
                Some(client_id) => MmshRequest::SelectStream { client_id, entries },
                None => MmshRequest::Unsupported(400, "SelectStream without a client-id"),
            };
        }
        _ => return MmshRequest::Unsupported(405, "method not allowed"),
    }
    let pragmas = request.pragmas();
    let has = |key: &str| pragmas.iter().any(|(k, _)| k.eq_ignore_ascii_case(key));
    let play = pragmas
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("xPlayStrm") && v.as_deref() == Some("1"));
    let switch_values: Vec<&str> = pragmas
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("stream-switch-entry"))
        .filter_map(|(_, v)| v.as_deref())
        .collect();
    if play {
        return MmshRequest::Play {
            switches: parse_stream_switches(&switch_values),
            client_id: request.pragma("client-id").flatten(),
        };
    }
    if has("xPlayNextEntry") || has("pipeline-request") || has("stream-switch-entry") {
        return MmshRequest::Unsupported(501, "pipelined MMSH requests are not supported");
    }
    MmshRequest::Describe
}

/// The headers every MMSH response carries.
fn mmsh_headers(r: Response, client_id: u32) -> Response {
    r.header("Server", SERVER)
        .header("Cache-Control", "no-cache")
        .header("Pragma", "no-cache")
        .header("Pragma", &format!("client-id={client_id}"))
        .header("Pragma", FEATURES_BROADCAST)
        // Mid-stream SelectStream is understood ([MS-WMSP] 2.2.2.8; clients SHOULD NOT send
        // it otherwise).
        .header("Supported", "com.microsoft.wm.sswitch")
}

/// The Describe response: the header in `$H` chunks, with `Content-Length`; kept alive when
/// the client asks for it.
pub fn describe_response(request: &Request, header: &[u8], client_id: u32) -> Response {
    mmsh_headers(Response::new(200), client_id)
        .body(HEADER_CONTENT_TYPE, header_chunks(header, 0))
        .for_request(request)
}

/// The Play response head (the chunks follow it, delimited by the close).
pub fn play_response_head(request: &Request, client_id: u32) -> Vec<u8> {
    mmsh_headers(Response::new(200), client_id)
        .body(FRAMED_CONTENT_TYPE, Vec::new())
        .until_close()
        .for_request(request)
        .to_bytes()
}

/// The answer to a SelectStream POST: 200, no body (the switch itself shows on the stream).
pub fn select_stream_response(request: &Request, client_id: u32) -> Response {
    mmsh_headers(Response::new(200), client_id)
        .body(HEADER_CONTENT_TYPE, Vec::new())
        .for_request(request)
}

/// An error answer on a station path (with the Cougar `Server` token); closes.
pub fn error_response(request: &Request, status: u16, message: &str) -> Response {
    let mut r = Response::text(status, message).header("Server", SERVER);
    if status == 405 {
        r = r.header("Allow", ALLOW);
    }
    if status == 503 {
        r = r
            .header(
                "Retry-After",
                &super::announce::RETRY_AFTER_SECS.to_string(),
            )
            .header("Cache-Control", "no-cache");
    }
    let mut r = r.for_request(request);
    r.keep_alive = false;
    r
}

#[cfg(test)]
#[path = "mmsh_tests.rs"]
pub(crate) mod tests;
