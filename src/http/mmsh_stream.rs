//! One MMSH client's data stream after its Play response: `$H`, then `$D` chunks from the
//! station as the shared [`Delivery`] releases them, `$E` at the end. Sans-I/O: station events
//! and `now` in, chunks into the session's [`OutQueue`] out, a deadline and a [`Step`].
//!
//! - **Join, fast start, slow clients, stream selection**: the station's per-client rules
//!   ([`crate::station::delivery`]), the same for every protocol. Station packets go out as
//!   the shared buffers (`push_shared`), never copied per client, unless stream selection
//!   rewrote them.
//! - **Header changes** (a new playlist entry). What the clients do with a mid-stream header
//!   (their sources: FFmpeg `mmsh.c` `handle_chunk_type`, VLC `mmsh.c` `GetPacket`/`Reset`,
//!   libmms `mmsh.c` `get_media_packet`):
//!   - a bare `$H` is fatal to FFmpeg ("Recv other type packet"); VLC skips it silently;
//!   - `$C` then `$H`: FFmpeg re-reads the header but its ASF demuxer keeps the first one, and a
//!     longer new header leaks its tail into the data; VLC re-reads it and restarts itself when
//!     the streams differ; libmms re-reads it;
//!   - `$E` with reason 1: FFmpeg ends; VLC (broadcast) and libmms reconnect with a new
//!     Describe and Play.
//!
//!   So: a header with the same bytes (the playlist looping over one file) is not signalled at
//!   all; a *compatible* header (the station's rule, [`crate::station::delivery::compare_headers`],
//!   plus one of MMSH's own: not longer than the header this client got first) is sent as `$C` + `$H` with the next incarnation and
//!   the client waits for the new entry's first clean point, with LocationId restarting at 0
//!   (as VLC and libmms expect after `$C`); any other header ends the stream with `$E`
//!   (reason 1: the next entry follows) and a close, which VLC and libmms answer by
//!   reconnecting and FFmpeg by ending.
//! - **End**: `$E` (reason 0) when the server or the station stops ([`MmshStream::end`]) and
//!   when the station has sent nothing for the silence timeout (the playlist ended).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::follow::{Ended, Follow};
use super::{
    data_chunk_head, header_chunks, reason_chunk, resolve_switches, ChunkType, StreamSwitch,
    END_FINISHED, END_NEXT_ENTRY, MAX_CHUNK_PAYLOAD,
};
pub use crate::station::delivery::HeaderChange;
use crate::station::delivery::{Delivery, Framer, StreamSelection};
use crate::station::feed::FeedConfig;
use crate::station::sink::{OutQueue, Step};
use crate::station::{StationHeader, StationPacket};

/// The limits of one stream (from the server's `limits`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamConfig {
    /// Join, fast start and slow-client policy.
    pub feed: FeedConfig,
    /// A station that sends nothing (no packet, no header) this long ends the stream.
    pub silence_timeout: Duration,
}

/// What one stream sent and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// `$D` chunks queued.
    pub packets: u64,
    /// ASF bytes in them.
    pub bytes: u64,
    /// Packets rewritten by stream selection.
    pub rewritten: u64,
    /// Packets not sent because stream selection left them empty.
    pub dropped_empty: u64,
    /// Packets not sent because they are unreadable or do not fit in a chunk.
    pub dropped_bad: u64,
    /// `$C` + `$H` sent for a compatible header change.
    pub header_changes: u64,
}

/// The station's header rule ([`crate::station::delivery::compare_headers`]) plus MMSH's own:
/// `$H` mid-stream may not be longer than the first header this client received (`first_len`;
/// FFmpeg keeps the first header's buffer, see the module doc).
pub fn compare_headers(
    current: &StationHeader,
    new: &StationHeader,
    first_len: usize,
) -> HeaderChange {
    match crate::station::delivery::compare_headers(current, new) {
        HeaderChange::Compatible if new.bytes.len() > first_len => HeaderChange::Incompatible(
            format!("header grows from {first_len} to {} bytes", new.bytes.len()),
        ),
        other => other,
    }
}

/// One client's stream; see the module doc.
#[derive(Debug)]
pub struct MmshStream {
    station: String,
    header: Arc<StationHeader>,
    first_header_len: usize,
    switches: Vec<StreamSwitch>,
    bandwidth: Option<u64>,
    follow: Follow,
    data: DataChunks,
}

/// The `$D` framing state of a stream: what the client receives of each packet, the chunk
/// numbering, and the counts.
#[derive(Debug)]
struct DataChunks {
    incarnation: u8,
    location: u32,
    stats: StreamStats,
}

/// [`DataChunks`] writing into the session's queue: the [`Framer`] the station's rules feed.
struct Framing<'a> {
    data: &'a mut DataChunks,
    out: &'a mut OutQueue,
}

impl Framer for Framing<'_> {
    fn frame(&mut self, p: &Arc<StationPacket>, _now: Instant) {
        self.data.frame(p, self.out);
    }

    fn queue(&mut self) -> &mut OutQueue {
        self.out
    }
}

impl MmshStream {
    /// Starts a stream at `now`: queues `$H` and the part of the join backlog that is due. The
    /// client's `stream-switch-entry` items and its `LinkBW` choose what it receives.
    pub fn start(
        station: &str,
        header: Arc<StationHeader>,
        backlog: Vec<Arc<StationPacket>>,
        (switches, bandwidth): (Vec<StreamSwitch>, Option<u64>),
        config: StreamConfig,
        now: Instant,
        out: &mut OutQueue,
    ) -> MmshStream {
        let choice = resolve_switches(&switches, bandwidth, &header.header);
        let mut delivery = Delivery::join(config.feed, Arc::clone(&header), backlog, now);
        delivery.select(StreamSelection::new(choice, &header.header));
        let mut s = MmshStream {
            station: station.to_string(),
            first_header_len: header.bytes.len(),
            switches,
            bandwidth,
            follow: Follow::new(delivery, config.silence_timeout, now),
            header,
            data: DataChunks {
                incarnation: 0,
                location: 0,
                stats: StreamStats::default(),
            },
        };
        out.push_owned(header_chunks(&s.header.bytes, s.data.incarnation));
        s.follow.start(
            &mut Framing {
                data: &mut s.data,
                out,
            },
            now,
        );
        s
    }

    /// What was sent and dropped.
    pub fn stats(&self) -> StreamStats {
        let sel = &self.follow.delivery_ref().selection().stats;
        StreamStats {
            rewritten: sel.rewritten,
            dropped_empty: sel.dropped_empty,
            dropped_bad: self.data.stats.dropped_bad + sel.dropped_bad,
            ..self.data.stats.clone()
        }
    }

    /// A mid-stream switch (SelectStream): `switches` replace the client's entries for the
    /// streams they name; new streams start at their key frame.
    pub fn switch(&mut self, switches: &[StreamSwitch]) {
        for sw in switches {
            self.switches
                .retain(|s| !(s.hex == sw.hex && s.dec == sw.dec));
            self.switches.push(*sw);
        }
        let excess = self
            .switches
            .len()
            .saturating_sub(crate::http::mmsh::MAX_SWITCHES);
        self.switches.drain(..excess);
        let choice = resolve_switches(&self.switches, self.bandwidth, &self.header.header);
        self.follow.delivery().switch(choice);
    }

    /// The station this stream plays.
    pub fn station(&self) -> &str {
        &self.station
    }

    /// Names the client in the delivery's log lines.
    pub fn set_label(&mut self, label: String) {
        self.follow.delivery().set_label(label);
    }

    /// The streams the client does not receive whole.
    pub fn selection(&self) -> &StreamSelection {
        self.follow.delivery_ref().selection()
    }

    /// Times the client skipped forward to a clean point because it was behind.
    pub fn skips(&self) -> u64 {
        self.follow.skips().0
    }

    /// Skips and packets skipped.
    pub fn skip_counts(&self) -> (u64, u64) {
        self.follow.skips()
    }

    /// A station packet.
    pub fn on_packet(&mut self, p: &Arc<StationPacket>, out: &mut OutQueue, now: Instant) -> Step {
        self.follow.packet(
            p,
            &mut Framing {
                data: &mut self.data,
                out,
            },
            now,
        )
    }

    /// The station's header changed; see the module doc.
    pub fn on_header(&mut self, h: &Arc<StationHeader>, out: &mut OutQueue, now: Instant) -> Step {
        let change = compare_headers(&self.header, h, self.first_header_len);
        let framing = &mut Framing {
            data: &mut self.data,
            out,
        };
        if self.follow.header(h, &change, framing, now).is_none() {
            return Step::Continue;
        }
        match change {
            HeaderChange::Same => {
                self.header = h.clone();
                Step::Continue
            }
            HeaderChange::Compatible => {
                let d = &mut self.data;
                d.incarnation = d.incarnation.wrapping_add(1);
                out.push_owned(reason_chunk(ChunkType::Change, 0).to_vec());
                out.push_owned(header_chunks(&h.bytes, d.incarnation));
                d.location = 0;
                let choice = resolve_switches(&self.switches, self.bandwidth, &h.header);
                self.follow
                    .delivery()
                    .reselect(StreamSelection::new(choice, &h.header));
                self.data.stats.header_changes += 1;
                self.header = h.clone();
                Step::Continue
            }
            HeaderChange::Incompatible(why) => {
                out.push_owned(reason_chunk(ChunkType::End, END_NEXT_ENTRY).to_vec());
                self.follow.end();
                Step::close(format!(
                    "new playlist entry with an incompatible header ({why}): $E sent"
                ))
            }
        }
    }

    /// The deadline passed: release due fast-start packets, check stall and silence.
    pub fn on_timeout(&mut self, out: &mut OutQueue, now: Instant) -> Step {
        let framing = &mut Framing {
            data: &mut self.data,
            out,
        };
        match self.follow.timeout(framing, now) {
            None => Step::Continue,
            Some(Ended::Stalled(reason)) => Step::close(format!("client stalled: {reason}")),
            Some(Ended::Silent(after)) => {
                out.push_owned(reason_chunk(ChunkType::End, END_FINISHED).to_vec());
                Step::close(format!(
                    "station {} sent nothing for {after:?}: $E sent",
                    self.station
                ))
            }
        }
    }

    /// When [`Self::on_timeout`] is next needed.
    pub fn deadline(&self) -> Option<Instant> {
        self.follow.deadline()
    }

    /// Ends the stream with `$E` (reason 0), once.
    pub fn end(&mut self, out: &mut OutQueue) {
        if self.follow.end() {
            out.push_owned(reason_chunk(ChunkType::End, END_FINISHED).to_vec());
        }
    }
}

impl DataChunks {
    /// One `$D` chunk for a station packet, after stream selection.
    fn frame(&mut self, p: &Arc<StationPacket>, out: &mut OutQueue) {
        let len = p.bytes.len();
        let head = match data_chunk_head(ChunkType::Data, self.location, self.incarnation, 0, len) {
            Ok(h) => h,
            Err(_) => {
                self.stats.dropped_bad += 1;
                return;
            }
        };
        debug_assert!(len <= MAX_CHUNK_PAYLOAD);
        out.push_small(&head);
        out.push_shared(p.bytes.clone());
        self.location = self.location.wrapping_add(1);
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
    }
}
