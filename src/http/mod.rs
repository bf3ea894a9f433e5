//! The HTTP front, sans-I/O: request heads in, responses (or a hand-off) out.
//!
//! One TCP listener (port 80 on the appliance) serves the station announcements (the station
//! list, `.nsc` and `.asx` files) and MMS over HTTP ([MS-WMSP], "mmsh") on the same port. The
//! shell (`crate::net`) owns the sockets and the clock; it drives one [`session::HttpSession`]
//! per accepted connection through the `Session` contract ([`crate::station::sink`]): bytes
//! and `now` in, output queued for the shell to write. Station packets reach an MMSH client
//! through [`mmsh::stream::MmshStream`], which frames what the station's per-client rules
//! ([`crate::station::delivery`]) release.
//!
//! - [`request`]: the incremental request-head reader (RFC 9112 §2–§7, on `httparse`) and the
//!   [`Request`] model with the MMSH accessors (`Pragma` lists).
//! - [`response`]: the response builder and the short error responses.
//! - [`announce`]: the announcement routes (`/`, `/<station>.nsc`, `/<station>.asx`).
//! - [`conn`]: the per-connection state machine (keep-alive, pipelining, slowloris deadline).
//! - [`dialect`]: whether a client on a station path speaks MMS over HTTP or plain HTTP.
//! - [`mmsh`]: MMS over HTTP ([MS-WMSP]); [`plain_stream`]: the plain ASF stream for players
//!   that fetch `http://box/<station>` without it (mpv, GStreamer, VLC `http://`).
//! - [`push`]: an encoder pushing a live station's stream ([MS-WMHTTP], FFmpeg's POST).
//!
//! HTTP rules followed (RFC 9112 unless said otherwise):
//! - §2.2: empty lines before a request line are ignored; a bare LF is accepted as a line
//!   terminator (the RFC allows a recipient to); request-line whitespace may be runs of SP/HTAB
//!   (§3).
//! - §3.2: the origin-form and the absolute-form are accepted (the latter is what VLC sends
//!   through a proxy: `GET http://host:port/path HTTP/1.0`; its host is ignored, only its path
//!   is used); the asterisk-form is parsed but not routed; the authority-form is refused (400).
//! - §3.2: an HTTP/1.1 request without exactly one `Host` field gets 400.
//! - §5.1/§5.2: whitespace before the colon and obs-fold line folding are refused (400), as
//!   httparse does for requests.
//! - §6.1/§6.3: a push's body (a PushStart, or FFmpeg's chunked POST: [`push`]) is left to
//!   the push session, which reads it as it streams, chunked or not; other request bodies are
//!   read only when framed by `Content-Length` (at most the
//!   reader's byte limit, else 413); a `Transfer-Encoding` gets 501 (400 when it comes with a
//!   `Content-Length`: a smuggling shape), and the connection is closed after either.
//! - §9.3: persistence: HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0
//!   only with `Connection: keep-alive`. Pipelined requests are answered in order (§9.3.2).
//! - RFC 6585 §5: a head over the limit or with too many fields gets 431 and a close; RFC 9110
//!   §15.6.6: a version other than 1.0/1.1 gets 505.
//!
//! Client quirks tolerated (facts: `docs/protocols/rtsp-wmsp.md` §3.1):
//! - FFmpeg's mmsh Play request glues its last `Pragma` line to `Connection: Close` with no CRLF
//!   between them (`Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close`). The reader
//!   splits such a value back into the `Pragma` part and a `Connection` field.
//! - MMSH clients send several `Pragma` fields, each a comma list of `key[=value]`, with values
//!   that contain colons and spaces (`stream-switch-entry=ffff:1:0 ffff:2:0 `, trailing space
//!   included); [`Request::pragmas`] flattens them in order.
//! - VLC writes its request in several small writes (split TCP segments) and speaks HTTP/1.0
//!   with a `Host` field; FFmpeg's `http` layer adds `Range: bytes=0-` and `Icy-MetaData: 1`,
//!   which are ignored.

pub mod announce;
pub mod auth;
pub mod client_log;
pub mod conn;
pub mod dialect;
pub mod follow;
pub mod mmsh;
pub mod peer_catalog;
pub mod plain_stream;
pub mod push;
pub mod request;
pub mod response;
pub mod session;

#[cfg(test)]
mod tests;

pub use announce::{route, AnnouncementCatalog, Routed, StationEntry};
pub use conn::{CloseReason, ConnAction, HttpConn};
pub use request::{Request, RequestReader, MAX_HEADERS};
pub use response::{reason_phrase, Response, SERVER};

/// The longest piece of client input an error message quotes.
const QUOTE_MAX: usize = 64;

/// Why a request could not be read. Each maps to the status sent back ([`HttpError::status`]);
/// after any of them the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request head did not end within the byte limit.
    #[error("request head exceeds the {limit}-byte limit")]
    HeadTooLarge {
        /// The reader's limit.
        limit: usize,
    },
    /// More header fields than [`MAX_HEADERS`].
    #[error("request has more than {limit} header fields")]
    TooManyHeaders {
        /// The field limit.
        limit: usize,
    },
    /// The request line or a header field is not HTTP/1.x syntax.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What was wrong (httparse's description or ours).
        reason: &'static str,
    },
    /// An HTTP version other than 1.0 or 1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// The request target is not origin-form or absolute-form, or does not decode.
    #[error("bad request target {target:?}: {reason}")]
    BadTarget {
        /// The target as received (shortened).
        target: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// An HTTP/1.1 request without exactly one `Host` field.
    #[error("HTTP/1.1 request with {count} Host fields (exactly one required)")]
    BadHost {
        /// How many `Host` fields were present.
        count: usize,
    },
    /// A `Content-Length` that is not one decimal number (or several that differ).
    #[error("bad Content-Length {value:?}")]
    BadContentLength {
        /// The field value (shortened).
        value: String,
    },
    /// A body longer than the reader accepts.
    #[error("request body of {length} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The declared length.
        length: u64,
        /// The reader's limit.
        limit: usize,
    },
    /// A `Transfer-Encoding` field: request bodies are only read with `Content-Length`.
    #[error("unsupported transfer coding {coding:?}")]
    UnsupportedTransferCoding {
        /// The field value (shortened).
        coding: String,
    },
    /// Both `Transfer-Encoding` and `Content-Length`: refused as a smuggling attempt.
    #[error("request has both Transfer-Encoding and Content-Length")]
    AmbiguousLength,
}

impl HttpError {
    /// The status code that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::Malformed { .. }
            | HttpError::BadTarget { .. }
            | HttpError::BadHost { .. }
            | HttpError::BadContentLength { .. }
            | HttpError::AmbiguousLength => 400,
            HttpError::UnsupportedVersion => 505,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::UnsupportedTransferCoding { .. } => 501,
        }
    }
}

/// Shortens client input for an error message (at most [`QUOTE_MAX`] characters).
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_string(),
    }
}
