//! The source contract: where a station's header and packets come from. A file playlist
//! implements it today ([`crate::source::PlaylistSource`]); live sources (encoder push, pull
//! from an encoder or an upstream station, multicast relay) implement the same trait.
//!
//! The shell's station runtime calls [`Source::poll`] with `now` whenever the last answer's
//! deadline has passed, and keeps calling while it gets something to do:
//!
//! - [`SourceEvent::Header`]: a new ASF header (a playlist entry starts, an encoder connects or
//!   changes its header); the packets that follow belong to it;
//! - [`SourceEvent::Packet`]: a data packet due now, with its send time on the station's
//!   continuous timeline;
//! - [`SourceEvent::Idle`]: nothing before this instant;
//! - [`SourceEvent::Lost`]: the source is gone for now (no playable entry, encoder
//!   disconnected); the station stays up (beacons on multicast, keep-alives on unicast) and asks
//!   again at `retry_at`. The next `Header` means it is back;
//! - [`SourceEvent::Ended`]: it will never produce anything again (a playlist without loop).
//!
//! Pure in time: a source takes `now` and never sleeps or reads the clock. (A file source reads
//! files, one packet per call; a network source gets its bytes from the shell.)

use std::time::Instant;

use crate::asf::{AsfHeader, DataHead};

/// One data packet from a source, full size as the source had it (padding included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePacket {
    pub bytes: Vec<u8>,
    /// Send time (ms) on the station's continuous timeline.
    pub send_time: u32,
}

/// What a source has for the station now.
#[derive(Debug)]
pub enum SourceEvent {
    /// A new header: packets that follow belong to it.
    Header {
        header: Box<AsfHeader>,
        data: DataHead,
        /// Where it comes from, for logs and status (a file path, an encoder's address).
        origin: String,
    },
    /// A packet that is due now.
    Packet(SourcePacket),
    /// Nothing to do before this instant.
    Idle(Instant),
    /// The source is gone for now; ask again at `retry_at`.
    Lost { reason: String, retry_at: Instant },
    /// Nothing more, ever.
    Ended,
}

/// What a source is doing, for status pages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Not started yet.
    Starting,
    /// Producing packets from `origin`.
    Playing { origin: String },
    /// Lost, retrying.
    Lost { reason: String },
    /// Ended.
    Ended,
}

/// Entries a source started (a file opened, an encoder connected) and failed, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    pub started: u64,
    pub failed: u64,
}

/// The contract every station source implements.
pub trait Source {
    /// The next thing to do at `now`. Bounded work per call: at most one packet read or one
    /// entry opened.
    fn poll(&mut self, now: Instant) -> SourceEvent;
    /// What the source is doing.
    fn state(&self) -> SourceState;
    /// Entries started and failed so far (none, for a source that does not count them).
    fn counters(&self) -> SourceCounters {
        SourceCounters::default()
    }
    /// Whether the source knows its timeline ahead (a file): polling it at an instant that
    /// has not come yet only hands out what is due by then, with no other effect. A live or
    /// relayed source says no (its stall timers would fire early).
    fn timeline_known(&self) -> bool {
        false
    }
}
