//! One MMSH client's data stream after its Play response: `$H`, then `$D` chunks from the
//! station as the shared [`LiveFeed`] releases them, `$E` at the end. Sans-I/O: station events
//! and `now` in, chunks into the session's [`OutQueue`] out, a deadline and a [`Step`].
//!
//! - **Join, fast start, slow clients**: the [`LiveFeed`] policy (DESIGN.md, "The data path"):
//!   the client starts at the station's newest clean point, the backlog is released at the
//!   fast-start rate, a client whose queue passes the backlog limit skips to the next clean
//!   point, and one that stays behind for the stall timeout is closed. Its queue is then thrown
//!   away whole (the connection closes mid-chunk: nothing readable was coming anyway), so the
//!   connection really closes even when the peer never reads again. Station packets go out as
//!   the shared buffers (`push_shared`), never copied per client, unless stream selection
//!   rewrote them.
//! - **Stream selection** ([`Selection`]): payloads of removed streams are dropped and thinned
//!   video streams keep key frames only ([`filter_payloads`]); a packet left empty is not sent.
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
//!   all; a *compatible* header (same packet size, same streams with the same formats, not
//!   longer than the one this client got first) is sent as `$C` + `$H` with the next incarnation and
//!   the client waits for the new entry's first clean point, with LocationId restarting at 0
//!   (as VLC and libmms expect after `$C`); any other header ends the stream with `$E`
//!   (reason 1: the next entry follows) and a close, which VLC and libmms answer by
//!   reconnecting and FFmpeg by ending.
//! - **End**: `$E` (reason 0) when the server or the station stops ([`MmshStream::end`]) and
//!   when the station has sent nothing for the silence timeout (the playlist ended).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    data_chunk_head, header_chunks, reason_chunk, ChunkType, Selection, StreamSwitch, END_FINISHED,
    END_NEXT_ENTRY, MAX_CHUNK_PAYLOAD,
};
use crate::asf::rewrite::{filter_payloads, Filtered};
use crate::asf::{AsfHeader, Packet};
use crate::station::feed::{FeedConfig, FeedState, LiveFeed};
use crate::station::sink::{OutQueue, Step};
use crate::station::{StationHeader, StationPacket};

/// How often a client that is behind is checked against the stall timeout when no station
/// packet arrives to check it.
const BEHIND_CHECK: Duration = Duration::from_millis(500);

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

/// How a new station header relates to the one a client plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderChange {
    /// The same bytes: nothing to tell the client.
    Same,
    /// Different, but the client can switch with `$C` + `$H`.
    Compatible,
    /// The client must reconnect; why.
    Incompatible(String),
}

/// Compares a new header with the current one; `first_len` is the length of the first header
/// this client received (FFmpeg's limit, see the module doc).
pub fn compare_headers(
    current: &StationHeader,
    new: &StationHeader,
    first_len: usize,
) -> HeaderChange {
    if current.bytes == new.bytes {
        return HeaderChange::Same;
    }
    let (a, b): (&AsfHeader, &AsfHeader) = (&current.header, &new.header);
    if a.packet_size() != b.packet_size() {
        return HeaderChange::Incompatible(format!(
            "packet size {} → {}",
            a.packet_size(),
            b.packet_size()
        ));
    }
    // The clients' demuxers keep the first header's stream formats: only a header whose
    // streams are the same (number, type and format data) can be switched to in place.
    let layout = |h: &AsfHeader| -> Vec<(u8, &'static str, Vec<u8>)> {
        let mut v: Vec<_> = h
            .streams
            .iter()
            .map(|s| (s.number, s.kind.as_str(), s.type_specific.clone()))
            .collect();
        v.sort();
        v
    };
    if layout(a) != layout(b) {
        return HeaderChange::Incompatible("different streams or stream formats".to_string());
    }
    if new.bytes.len() > first_len {
        return HeaderChange::Incompatible(format!(
            "header grows from {first_len} to {} bytes",
            new.bytes.len()
        ));
    }
    HeaderChange::Compatible
}

/// One client's stream; see the module doc.
#[derive(Debug)]
pub struct MmshStream {
    station: String,
    header: Arc<StationHeader>,
    first_header_len: usize,
    switches: Vec<StreamSwitch>,
    selection: Selection,
    incarnation: u8,
    location: u32,
    feed: LiveFeed,
    ready: Vec<Arc<StationPacket>>,
    config: StreamConfig,
    last_station_event: Instant,
    behind_check: Option<Instant>,
    ended: bool,
    /// What was sent and dropped.
    pub stats: StreamStats,
}

impl MmshStream {
    /// Starts a stream at `now`: queues `$H` and the part of the join backlog that is due.
    pub fn start(
        station: &str,
        header: Arc<StationHeader>,
        backlog: Vec<Arc<StationPacket>>,
        switches: Vec<StreamSwitch>,
        config: StreamConfig,
        now: Instant,
        out: &mut OutQueue,
    ) -> MmshStream {
        let selection = Selection::resolve(&switches, &header.header);
        let mut s = MmshStream {
            station: station.to_string(),
            first_header_len: header.bytes.len(),
            header,
            switches,
            selection,
            incarnation: 0,
            location: 0,
            feed: LiveFeed::join(config.feed, backlog, now),
            ready: Vec::new(),
            config,
            last_station_event: now,
            behind_check: None,
            ended: false,
            stats: StreamStats::default(),
        };
        out.push_owned(header_chunks(&s.header.bytes, s.incarnation));
        s.feed.release(now, &mut s.ready);
        s.send_ready(out);
        s
    }

    /// The station this stream plays.
    pub fn station(&self) -> &str {
        &self.station
    }

    /// The streams the client does not receive whole.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// Times the client skipped forward to a clean point because it was behind.
    pub fn skips(&self) -> u64 {
        self.feed.skips
    }

    /// A station packet.
    pub fn on_packet(&mut self, p: &Arc<StationPacket>, out: &mut OutQueue, now: Instant) -> Step {
        self.last_station_event = now;
        if self.ended {
            return Step::Continue;
        }
        let state = self.feed.offer(p, out.queued_bytes(), now, &mut self.ready);
        self.send_ready(out);
        self.check(state, out, now)
    }

    /// The station's header changed; see the module doc.
    pub fn on_header(&mut self, h: &Arc<StationHeader>, out: &mut OutQueue, now: Instant) -> Step {
        self.last_station_event = now;
        if self.ended {
            return Step::Continue;
        }
        match compare_headers(&self.header, h, self.first_header_len) {
            HeaderChange::Same => {
                self.header = h.clone();
                Step::Continue
            }
            HeaderChange::Compatible => {
                self.incarnation = self.incarnation.wrapping_add(1);
                out.push_owned(reason_chunk(ChunkType::Change, 0).to_vec());
                out.push_owned(header_chunks(&h.bytes, self.incarnation));
                self.location = 0;
                self.header = h.clone();
                self.selection = Selection::resolve(&self.switches, &h.header);
                self.feed.on_header_change();
                self.stats.header_changes += 1;
                Step::Continue
            }
            HeaderChange::Incompatible(why) => {
                out.push_owned(reason_chunk(ChunkType::End, END_NEXT_ENTRY).to_vec());
                self.ended = true;
                Step::close(format!(
                    "new playlist entry with an incompatible header ({why}): $E sent"
                ))
            }
        }
    }

    /// The deadline passed: release due fast-start packets, check stall and silence.
    pub fn on_timeout(&mut self, out: &mut OutQueue, now: Instant) -> Step {
        if self.ended {
            return Step::Continue;
        }
        self.feed.release(now, &mut self.ready);
        self.send_ready(out);
        let state = self.feed.state(now);
        if state == FeedState::Stalled {
            return self.check(state, out, now);
        }
        if now.saturating_duration_since(self.last_station_event) >= self.config.silence_timeout {
            self.end(out);
            return Step::close(format!(
                "station {} sent nothing for {:?}: $E sent",
                self.station, self.config.silence_timeout
            ));
        }
        self.check(state, out, now)
    }

    /// When [`Self::on_timeout`] is next needed.
    pub fn deadline(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let silence = self.last_station_event + self.config.silence_timeout;
        [self.feed.deadline(), self.behind_check]
            .into_iter()
            .flatten()
            .chain(std::iter::once(silence))
            .min()
    }

    /// Ends the stream with `$E` (reason 0), once.
    pub fn end(&mut self, out: &mut OutQueue) {
        if !self.ended {
            out.push_owned(reason_chunk(ChunkType::End, END_FINISHED).to_vec());
            self.ended = true;
        }
    }

    fn check(&mut self, state: FeedState, out: &mut OutQueue, now: Instant) -> Step {
        match state {
            FeedState::Flowing => {
                self.behind_check = None;
                Step::Continue
            }
            FeedState::Skipping => {
                self.behind_check = Some(now + BEHIND_CHECK);
                Step::Continue
            }
            FeedState::Stalled => {
                // Nothing queued will be read: drop it all so the close is not held up.
                let _ = out.drop_unstarted();
                out.advance(out.queued_bytes());
                self.ended = true;
                Step::close(format!(
                    "client stalled: more than {} bytes behind for {:?} ({} skips, {} packets skipped)",
                    self.config.feed.backlog_limit,
                    self.config.feed.stall_timeout,
                    self.feed.skips,
                    self.feed.skipped_packets
                ))
            }
        }
    }

    /// Frames the packets the feed released.
    fn send_ready(&mut self, out: &mut OutQueue) {
        let ready = std::mem::take(&mut self.ready);
        for p in &ready {
            self.send_packet(p, out);
        }
        self.ready = ready;
        self.ready.clear();
    }

    fn send_packet(&mut self, p: &Arc<StationPacket>, out: &mut OutQueue) {
        let rewritten = if self.selection.is_all() {
            None
        } else {
            let sel = &self.selection;
            match Packet::parse(&p.bytes) {
                Ok(pkt) => match filter_payloads(&pkt, |pl| sel.keeps(pl.stream, pl.key_frame)) {
                    Filtered::Unchanged => None,
                    Filtered::Dropped => {
                        self.stats.dropped_empty += 1;
                        return;
                    }
                    Filtered::Rewritten(v) => Some(v),
                },
                Err(_) => {
                    self.stats.dropped_bad += 1;
                    return;
                }
            }
        };
        let len = rewritten.as_ref().map_or(p.bytes.len(), Vec::len);
        let head = match data_chunk_head(ChunkType::Data, self.location, self.incarnation, 0, len) {
            Ok(h) => h,
            Err(_) => {
                self.stats.dropped_bad += 1;
                return;
            }
        };
        debug_assert!(len <= MAX_CHUNK_PAYLOAD);
        match rewritten {
            Some(v) => {
                let mut chunk = Vec::with_capacity(head.len() + v.len());
                chunk.extend_from_slice(&head);
                chunk.extend_from_slice(&v);
                out.push_owned(chunk);
                self.stats.rewritten += 1;
            }
            None => {
                out.push_owned(head.to_vec());
                out.push_shared(p.bytes.clone());
            }
        }
        self.location = self.location.wrapping_add(1);
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
    }
}
