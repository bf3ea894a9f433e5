//! MMS: the Microsoft Media Server protocol ([MS-MMSP]) for `mms://HOST:1755/<station>`,
//! over TCP with optional UDP data (MMSU), serving live stations.
//!
//! - [`codec`]: framing of client commands, decoding of client messages, encoding of the
//!   server reports and of the Data packet head; pure byte layouts.
//! - [`session`]: the per-client state machine on the [`crate::station::sink::Session`]
//!   contract; join, fast start, slow clients, header changes and stream selection follow the
//!   station's per-client rules ([`crate::station::delivery`]). The shell writes its TCP
//!   output and sends its UDP data datagrams.
//!
//! Facts, and the quirks of the four clients that still speak it (ffmpeg, VLC, libmms,
//! mplayer), are in `shared/docs/protocols/mmsp.md`.

pub mod codec;
pub mod session;

#[cfg(test)]
mod tests;

pub use codec::{ClientMessage, CommandReader, DataHead, ServerMessage, Transport};
pub use session::{MmsConfig, MmsSession};
