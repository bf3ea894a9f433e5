//! RTSP with the Windows Media extensions ([MS-RTSP]; facts in
//! shared/docs/protocols/rtsp-wmsp.md): live stations as ASF over RTP (the x-asf-pf payload
//! format) to FFmpeg, GStreamer and VLC, over UDP or interleaved on the RTSP connection.
//!
//! Sans-I/O throughout: bytes and `now` in, bytes, datagrams and deadlines out.
//! - [`message`]: request framing (on `rtsp-types`), interleaved frames, response writing with
//!   the `Server: WMServer/…` identity that puts FFmpeg and GStreamer into WMS mode;
//! - [`sdp`]: the DESCRIBE answer (ASF header in `a=pgmpu`, one x-asf-pf section per stream,
//!   the x-wms-rtx section FFmpeg's UDP setup needs); [`sdp_cache`]: its header line, made
//!   once per station header for every client's DESCRIBE;
//! - [`transport`]: SETUP transport negotiation (UDP, TCP interleaved, 461 otherwise);
//! - [`rtp`]: RTP header, x-asf-pf packetizer with MTU fragmentation, RTCP sender reports;
//! - [`rtcp`]: the client's RTCP (receiver reports, BYE) parsed for liveness and loss figures;
//! - [`auth`]: Digest credentials of DESCRIBE/SETUP/PLAY on protected stations
//!   ([`crate::access`]), 401 with a challenge otherwise;
//! - [`session`]: the per-connection state machine on the session contract
//!   ([`crate::station::sink`]), delivering by the station's per-client rules
//!   ([`crate::station::delivery`]); the shell writes its TCP output and sends its RTP/RTCP
//!   datagrams, and routes the client's RTCP to it.

pub mod auth;
pub mod client_log;
pub mod message;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sdp_cache;
pub mod session;
pub mod streamswitch;
pub mod transport;

#[cfg(test)]
mod tests;

pub use session::{RtspConfig, RtspSession};
