//! How an HTTP data stream (MMSH `$D` chunks or a plain ASF body) follows its station: the
//! station's per-client rules ([`Delivery`]) release packets to the stream's [`Framer`], and
//! on top of them the one rule both HTTP streams share — an HTTP stream has no keep-alive of its
//! own, so a station that sends nothing (no packet, no header) for the silence timeout ends it
//! (the playlist ended), and a stalled client ends it too. Both streams then stop queueing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::station::delivery::{Delivery, Framer, HeaderChange, Verdict};
use crate::station::sink::Step;
use crate::station::{StationHeader, StationPacket};

/// Why a stream ended on a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The client stalled; why.
    Stalled(String),
    /// The station sent nothing for the silence timeout.
    Silent(Duration),
}

/// The delivery and lifetime of one HTTP data stream.
#[derive(Debug)]
pub struct Follow {
    feed: Delivery,
    silence_timeout: Duration,
    last_station_event: Instant,
    ended: bool,
}

impl Follow {
    pub fn new(feed: Delivery, silence_timeout: Duration, now: Instant) -> Follow {
        Follow {
            feed,
            silence_timeout,
            last_station_event: now,
            ended: false,
        }
    }

    /// Times the client skipped forward to a clean point, and packets skipped.
    pub fn skips(&self) -> (u64, u64) {
        self.feed.skips()
    }

    /// The client's delivery (its selection, mid-stream switches).
    pub fn delivery(&mut self) -> &mut Delivery {
        &mut self.feed
    }

    /// The client's delivery, read-only.
    pub fn delivery_ref(&self) -> &Delivery {
        &self.feed
    }

    /// The header the client plays.
    pub fn header_playing(&self) -> &Arc<StationHeader> {
        self.feed.header()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Marks the stream ended; true the first time (the caller then queues its end marker).
    pub fn end(&mut self) -> bool {
        !std::mem::replace(&mut self.ended, true)
    }

    /// Releases what is due now to `framer` (the stream's start).
    pub fn start(&mut self, framer: &mut impl Framer, now: Instant) {
        let _ = self.feed.release_to(framer, now);
    }

    /// A station packet.
    pub fn packet(
        &mut self,
        p: &Arc<StationPacket>,
        framer: &mut impl Framer,
        now: Instant,
    ) -> Step {
        self.last_station_event = now;
        if self.ended {
            return Step::Continue;
        }
        let verdict = self.feed.offer_to(p, framer, now);
        self.check(verdict)
    }

    /// A new station header, judged by the stream's own rule (`change`): when the client
    /// continues, the old header's held-back packets go to `framer` first. None when the
    /// stream has already ended.
    pub fn header(
        &mut self,
        h: &Arc<StationHeader>,
        change: &HeaderChange,
        framer: &mut impl Framer,
        now: Instant,
    ) -> Option<()> {
        self.last_station_event = now;
        if self.ended {
            return None;
        }
        if change.continues() {
            let _ = self.feed.header_to(h, framer, now);
        }
        Some(())
    }

    /// The deadline passed: release what is due; the stream's end if it ended now.
    pub fn timeout(&mut self, framer: &mut impl Framer, now: Instant) -> Option<Ended> {
        if self.ended {
            return None;
        }
        if let Verdict::Drop(reason) = self.feed.release_to(framer, now) {
            self.ended = true;
            return Some(Ended::Stalled(reason));
        }
        if now.saturating_duration_since(self.last_station_event) >= self.silence_timeout {
            self.ended = true;
            return Some(Ended::Silent(self.silence_timeout));
        }
        None
    }

    /// When [`Follow::timeout`] is next needed.
    pub fn deadline(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let silence = self.last_station_event + self.silence_timeout;
        Some(self.feed.deadline().map_or(silence, |d| d.min(silence)))
    }

    fn check(&mut self, verdict: Verdict) -> Step {
        match verdict {
            Verdict::Drop(reason) => {
                self.ended = true;
                Step::close(format!("client stalled: {reason}"))
            }
            _ => Step::Continue,
        }
    }
}
