//! One plain-HTTP client's stream: a live ASF "file" sent as the response body to players that
//! do not speak MMS over HTTP (mpv and ffmpeg `http://`, GStreamer's `souphttpsrc`, VLC's
//! `http://`, browser plug-ins; which clients these are: [`super::dialect`]). Sans-I/O like
//! [`super::mmsh::stream::MmshStream`]: station events and `now` in, bytes into the session's
//! [`OutQueue`] out, a deadline and a [`Step`].
//!
//! - **Response**: `200`, `Content-Type: video/x-ms-asf` (what WMS answers non-WMSP clients and
//!   what the players' MIME tables map to their ASF demuxer), `Cache-Control: no-cache`, no
//!   `Content-Length`, the body delimited by the close ([`response_head`]).
//! - **Body**: the station's broadcast header (Header Object + Data Object head, the bytes
//!   every protocol sends), then the packets **re-padded to the header's fixed packet size**
//!   ([`crate::asf::rewrite::repad`]): a plain ASF reader (FFmpeg's asfdec, GStreamer's
//!   asfdemux, VLC's es_out) reads exactly one packet size per packet and has nothing like
//!   MMSH's `$D` length to re-pad by (asf.md §3.6). No `$`-framing.
//! - **Join, fast start, slow clients**: the station's per-client rules ([`Delivery`]), the
//!   same as every protocol: the client starts at the newest clean point (a key frame, asf.md
//!   §5), the join backlog goes out at the fast-start rate, a client that falls behind skips
//!   to the next clean point and one that stays behind is dropped with its queue discarded.
//!   No stream selection: a plain client cannot ask for one, so every stream is sent.
//! - **Header changes**: a plain ASF body has one header and no way to announce another. The
//!   same header (the playlist looping over one file) and a compatible one (same streams,
//!   formats and packet size: [`crate::station::delivery::compare_headers`]) continue without
//!   a signal — the client's demuxer keeps reading packets that fit the header it has; any
//!   other header ends the stream with a close (the player sees the end of the file).
//! - **End**: a close, when the server or the station stops and when the station sent
//!   nothing for the silence timeout.
//!
//! Cost: each packet is re-padded per client (one packet-size copy); plain clients are
//! expected to be few next to the MMSH, MMS and RTSP clients that share the station buffers.

use std::sync::Arc;
use std::time::Instant;

use super::follow::{Ended, Follow};
use super::mmsh::stream::StreamConfig;
use super::request::Request;
use super::response::{Response, SERVER};
use crate::asf::rewrite::repad;
use crate::asf::{AsfError, Packet};
use crate::station::delivery::{compare_headers, Delivery, Framer, HeaderChange};
use crate::station::sink::{OutQueue, Step};
use crate::station::{StationHeader, StationPacket};

/// The content type of the plain stream.
pub const CONTENT_TYPE: &str = "video/x-ms-asf";

/// The response head of a plain stream (the body follows, delimited by the close).
pub fn response_head(request: &Request) -> Vec<u8> {
    Response::new(200)
        .header("Server", SERVER)
        .header("Cache-Control", "no-cache")
        .header("Pragma", "no-cache")
        .body(CONTENT_TYPE, Vec::new())
        .until_close()
        .for_request(request)
        .to_bytes()
}

/// Why a station packet could not go into the plain stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    /// The packet does not parse, or does not fit in the packet size.
    #[error("station packet {seq} cannot be re-padded: {source}")]
    Repad {
        /// The station sequence number.
        seq: u64,
        #[source]
        source: AsfError,
    },
}

/// The station packet as a fixed-size packet of `packet_size` bytes.
pub fn padded_packet(p: &StationPacket, packet_size: u32) -> Result<Vec<u8>, PlainError> {
    let err = |source| PlainError::Repad { seq: p.seq, source };
    let parsed = Packet::parse(&p.bytes).map_err(err)?;
    repad(&parsed, packet_size).map_err(err)
}

/// What one plain stream sent and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainStats {
    /// Packets queued.
    pub packets: u64,
    /// Bytes queued (header included).
    pub bytes: u64,
    /// Packets not sent because they cannot be re-padded.
    pub dropped_bad: u64,
    /// Compatible header changes continued through.
    pub header_changes: u64,
}

/// One client's plain stream; see the module doc.
#[derive(Debug)]
pub struct PlainStream {
    station: String,
    follow: Follow,
    body: Body,
}

/// The body's framing: station packets re-padded to the packet size, and the counts.
#[derive(Debug)]
struct Body {
    packet_size: u32,
    stats: PlainStats,
}

/// [`Body`] writing into the session's queue: the [`Framer`] the station's rules feed.
struct Framing<'a> {
    body: &'a mut Body,
    out: &'a mut OutQueue,
}

impl Framer for Framing<'_> {
    fn frame(&mut self, p: &Arc<StationPacket>, _now: Instant) {
        match padded_packet(p, self.body.packet_size) {
            Ok(bytes) => {
                self.body.stats.packets += 1;
                self.body.stats.bytes += bytes.len() as u64;
                self.out.push_owned(bytes);
            }
            Err(_) => self.body.stats.dropped_bad += 1,
        }
    }

    fn queue(&mut self) -> &mut OutQueue {
        self.out
    }
}

impl PlainStream {
    /// Starts a stream at `now`: queues the header and the part of the join backlog that is
    /// due.
    pub fn start(
        station: &str,
        header: Arc<StationHeader>,
        backlog: Vec<Arc<StationPacket>>,
        config: StreamConfig,
        now: Instant,
        out: &mut OutQueue,
    ) -> PlainStream {
        let mut s = PlainStream {
            station: station.to_string(),
            follow: Follow::new(
                Delivery::join(config.feed, Arc::clone(&header), backlog, now),
                config.silence_timeout,
                now,
            ),
            body: Body {
                packet_size: header.header.packet_size(),
                stats: PlainStats::default(),
            },
        };
        s.body.stats.bytes += header.bytes.len() as u64;
        out.push_shared(Arc::clone(&header.bytes));
        s.follow.start(
            &mut Framing {
                body: &mut s.body,
                out,
            },
            now,
        );
        s
    }

    /// The station this stream plays.
    pub fn station(&self) -> &str {
        &self.station
    }

    /// What was sent and dropped.
    pub fn stats(&self) -> &PlainStats {
        &self.body.stats
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
        let framing = &mut Framing {
            body: &mut self.body,
            out,
        };
        self.follow.packet(p, framing, now)
    }

    /// The station's header changed; see the module doc.
    pub fn on_header(&mut self, h: &Arc<StationHeader>, out: &mut OutQueue, now: Instant) -> Step {
        // The station's rule alone: a plain body has no header signal, so any header the
        // client's demuxer can go on with continues.
        let change = compare_headers(self.follow.header_playing(), h);
        let framing = &mut Framing {
            body: &mut self.body,
            out,
        };
        if self.follow.header(h, &change, framing, now).is_none() {
            return Step::Continue;
        }
        match change {
            HeaderChange::Same => Step::Continue,
            HeaderChange::Compatible => {
                self.body.stats.header_changes += 1;
                Step::Continue
            }
            HeaderChange::Incompatible(why) => {
                self.follow.end();
                Step::close(format!(
                    "new playlist entry with an incompatible header ({why}): plain stream ended"
                ))
            }
        }
    }

    /// The deadline passed: release due fast-start packets, check stall and silence.
    pub fn on_timeout(&mut self, out: &mut OutQueue, now: Instant) -> Step {
        let framing = &mut Framing {
            body: &mut self.body,
            out,
        };
        match self.follow.timeout(framing, now) {
            None => Step::Continue,
            Some(Ended::Stalled(reason)) => Step::close(format!("client stalled: {reason}")),
            Some(Ended::Silent(after)) => Step::close(format!(
                "station {} sent nothing for {after:?}: plain stream ended",
                self.station
            )),
        }
    }

    /// When [`Self::on_timeout`] is next needed.
    pub fn deadline(&self) -> Option<Instant> {
        self.follow.deadline()
    }

    /// Ends the stream: nothing more is queued (the close is the end of the body).
    pub fn end(&mut self) {
        self.follow.end();
    }
}

#[cfg(test)]
#[path = "plain_stream_tests.rs"]
mod tests;
