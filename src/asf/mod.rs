//! The ASF engine every protocol uses: header objects, data packets, clean points, rewriting for
//! live broadcast, and a streaming file reader.
//!
//! Everything here is sans-I/O except [`reader`], which pulls from any `std::io::Read`. Facts
//! come from the ASF specification rev 01.20.05 as gathered in `shared/docs/protocols/asf.md`;
//! section numbers below refer to that note. Every length read from input is checked against
//! the bytes that are really there: hostile input gets an [`AsfError`], never a panic, and no
//! allocation is sized by an input field alone.

pub mod bytes;
pub mod guid;
pub mod header;
pub mod mbr;
pub mod packet;
pub mod reader;
pub mod retime;
pub mod rewrite;
pub mod writer;

pub use guid::Guid;
pub use header::{AsfHeader, DataHead, StreamKind, StreamProperties};
pub use packet::{Packet, Payload};
pub use reader::{AsfReader, ReadError, ReaderPacket};

/// The largest ASF data packet size we accept (ffmpeg's muxer range is 100..=65 536).
pub const MAX_PACKET_SIZE: u32 = 65_536;

/// The size of the fixed Data Object head that follows the Header Object (§1.12).
pub const DATA_HEAD_LEN: usize = 50;

/// Errors from parsing or rewriting ASF bytes. Offsets are relative to the start of the buffer
/// being parsed (the Header Object, or the data packet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsfError {
    #[error("{what} at offset {offset}: needs {needed} bytes, only {available} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{what} at offset {offset}: expected GUID {expected}, found {found}")]
    BadGuid {
        what: &'static str,
        offset: usize,
        expected: Guid,
        found: Guid,
    },
    #[error("{what} at offset {offset}: object size {size} does not fit (min {min}, room {room})")]
    ObjectSize {
        what: &'static str,
        offset: usize,
        size: u64,
        min: u64,
        room: u64,
    },
    #[error("{what} at offset {offset}: {detail}")]
    Invalid {
        what: &'static str,
        offset: usize,
        detail: String,
    },
}

impl AsfError {
    pub(crate) fn invalid(what: &'static str, offset: usize, detail: impl Into<String>) -> Self {
        AsfError::Invalid {
            what,
            offset,
            detail: detail.into(),
        }
    }
}
