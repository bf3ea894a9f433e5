//! The WMSP client ([MS-WMSP] §3.1, "Pull Distribution" §4.11), sans-I/O: how asfcast pulls a
//! live stream from a Windows Media encoder or server, VLC's MMSH output, FFmpeg's `-listen 1`
//! HTTP server or another asfcast station. Facts: `docs/protocols/ingest-relay-ops.md` §a.2 and
//! `rtsp-wmsp.md` §3.
//!
//! - [`url`]: the `mmsh://` / `http://` source URL;
//! - [`response`]: an HTTP/1.x response read incrementally (status, the headers WMSP uses,
//!   the body by `Content-Length`, `chunked` transfer coding or the close);
//! - [`chunks`]: the `$H`/`$D`/`$E`/`$C` framing of the body, read leniently (the real
//!   servers differ: VLC and FFmpeg write 12-byte `$E` chunks) and with every length bounded;
//! - [`client`]: one pull — Describe, then Play — as a state machine: bytes and `now` in;
//!   requests to send, the header, data packets and deadlines out.
//!
//! The source that reconnects, retimes and feeds the station is [`crate::source::pull`]; the
//! socket is in the shell (`crate::net::upstream`).

pub mod chunks;
pub mod client;
pub mod response;
pub mod url;

pub use client::{ClientEvent, WmspClient};
pub use url::PullUrl;
