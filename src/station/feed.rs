//! The schedule of one unicast client's packets: where it joins, how fast it catches up, and
//! when it is behind. [`super::delivery::Delivery`] wraps it with the rest of the per-client
//! rules; protocols use that, not this.
//!
//! - **Join:** a new client gets the packets from the station's join point (a video key-frame
//!   start: the newest one at least `limits.fast_start_buffer` back, see
//!   [`super::Station::set_join_reach_back`]) to now, so its decoder starts on a key frame and
//!   its player's buffer fills at once.
//! - **Fast start:** that backlog is released at `fast_start_rate` × real time (by send time),
//!   not all at once, and the live packets that come meanwhile continue the same schedule
//!   behind it until the client has caught up (at rate 1 it never does: the client stays the
//!   buffer behind the live edge, a steady delay, never a burst).
//! - **Slow clients:** the sink reports how many bytes it still has queued for the socket. Above
//!   `backlog_limit` (or with more live bytes held behind the fast-start backlog than that
//!   limit plus the backlog's own bytes) the feed stops handing out packets and waits for the
//!   next clean point, where the client resumes cleanly (counted in `skips`). A client that
//!   stays behind longer than `stall_timeout` is reported stalled, and the sink closes it.
//!
//! Pure: the sink passes `now` and its queue size; the feed returns packets and a deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::StationPacket;

/// Limits of a live feed (from the server's `limits`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedConfig {
    /// Bytes queued for the socket above which the client skips to the next clean point.
    pub backlog_limit: usize,
    /// How much faster than real time the join backlog is released (≥ 1).
    pub fast_start_rate: f64,
    /// How long a client may stay behind before it is closed.
    pub stall_timeout: Duration,
}

/// What the feed says about a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedState {
    /// Packets flow.
    Flowing,
    /// The client fell behind and waits for the next clean point.
    Skipping,
    /// Behind for longer than the stall timeout: close it.
    Stalled,
}

/// The largest step forward in send time between consecutive backlog packets that the
/// fast-start schedule keeps (the source pacer's bound, `source::pacer`); anything larger, or
/// backwards, re-anchors it.
const MAX_STEP_MS: u32 = 5_000;

#[derive(Debug)]
pub struct LiveFeed {
    config: FeedConfig,
    /// Packets held back by fast start: (release instant, packet); the join backlog first,
    /// then the live packets that came while it was still being released.
    pending: VecDeque<(Instant, Arc<StationPacket>)>,
    /// How many of `pending`'s front entries are the join backlog.
    backlog_held: usize,
    /// Bytes of the live packets in `pending`. A source whose send times run ahead of real
    /// time (a hostile pusher's steps just under [`MAX_STEP_MS`]) stretches the fast-start
    /// schedule, and the live packets behind it must not pile up without bound: above
    /// `held_allowance` the client is behind, as with a full socket queue.
    held_live_bytes: usize,
    /// `backlog_limit` plus the join backlog's bytes: the most live bytes held behind the
    /// backlog before the client is behind. At `fast_start_rate` 1 a backlog's span of live
    /// packets is held for good, and its bytes vary around the backlog's own.
    held_allowance: usize,
    /// Anchor of the fast-start schedule: (release instant, send time) of its first packet,
    /// and the send time of the last packet scheduled.
    anchor: Option<(Instant, u32, u32)>,
    skipping: bool,
    behind_since: Option<Instant>,
    /// Times the client skipped forward to a clean point.
    pub skips: u64,
    /// Packets not delivered because the client was behind.
    pub skipped_packets: u64,
    /// Last packet sequence handed out (so a packet is never delivered twice).
    last_seq: Option<u64>,
}

impl LiveFeed {
    /// A feed for a client joining with the station's join backlog.
    pub fn join(config: FeedConfig, backlog: Vec<Arc<StationPacket>>, now: Instant) -> Self {
        let mut f = LiveFeed {
            config,
            pending: VecDeque::new(),
            backlog_held: 0,
            held_live_bytes: 0,
            held_allowance: config.backlog_limit,
            anchor: None,
            skipping: false,
            behind_since: None,
            skips: 0,
            skipped_packets: 0,
            last_seq: None,
        };
        if backlog.is_empty() {
            // Nothing to start from yet: wait for the first clean point.
            f.skipping = true;
        }
        for (i, p) in backlog.into_iter().enumerate() {
            // The first packet starts at the key frame (see StationPacket::as_join_point).
            let p = if i == 0 { p.as_join_point() } else { p };
            f.schedule(p, now);
        }
        f.backlog_held = f.pending.len();
        let backlog_bytes = f.pending.iter().map(|(_, p)| p.bytes.len()).sum::<usize>();
        f.held_allowance = f.held_allowance.saturating_add(backlog_bytes);
        f
    }

    /// Places a backlog packet on the fast-start schedule: at its send time's distance from
    /// the anchor's, divided by the rate. A send time going backwards or jumping ahead by more
    /// than [`MAX_STEP_MS`] (an encoder's clock reset, a hostile file: the station's ring can
    /// hold both sides of it) re-anchors the schedule at the previous packet's release, as the
    /// source's pacer does; taken as a step it would hold this packet and everything behind it
    /// for hours.
    fn schedule(&mut self, p: Arc<StationPacket>, now: Instant) {
        let rate = self.config.fast_start_rate.max(1.0);
        let t = p.send_time;
        let at = match self.anchor {
            Some((t0, s0, last)) if t.wrapping_sub(last) <= MAX_STEP_MS => {
                let ms = f64::from(t.wrapping_sub(s0)).min(86_400_000.0) / rate;
                t0 + Duration::from_micros((ms * 1000.0) as u64)
            }
            _ => {
                let at = self.pending.back().map_or(now, |(at, _)| *at).max(now);
                self.anchor = Some((at, t, t));
                at
            }
        };
        if let Some(a) = self.anchor.as_mut() {
            a.2 = t;
        }
        self.pending.push_back((at, p));
    }

    /// Offers a live packet from the station. `queued` is what the sink still has queued for
    /// the socket. Returns the packets to send now (possibly none).
    pub fn offer(
        &mut self,
        p: &Arc<StationPacket>,
        queued: usize,
        now: Instant,
        out: &mut Vec<Arc<StationPacket>>,
    ) -> FeedState {
        if self.last_seq.is_some_and(|s| p.seq <= s) {
            return self.state(now);
        }
        let behind =
            queued > self.config.backlog_limit || self.held_live_bytes > self.held_allowance;
        if behind && !self.skipping {
            self.skipping = true;
            self.skips += 1;
            self.behind_since.get_or_insert(now);
            self.drop_held();
        }
        let mut resumed = false;
        if self.skipping {
            if p.clean && queued <= self.config.backlog_limit {
                self.skipping = false;
                self.behind_since = None;
                self.anchor = None;
                resumed = true;
            } else {
                self.skipped_packets += 1;
                return self.state(now);
            }
        }
        // Resuming at a clean point: start at its key frame.
        let p = &if resumed {
            p.as_join_point()
        } else {
            Arc::clone(p)
        };
        if self.pending.is_empty() {
            self.last_seq = Some(p.seq);
            out.push(p.clone());
        } else {
            // Still catching up: the live packet continues the fast-start schedule behind the
            // backlog (released at once when the schedule has reached it: caught up).
            self.held_live_bytes += p.bytes.len();
            self.schedule(p.clone(), now);
            return self.release(now, out);
        }
        self.state(now)
    }

    /// Releases fast-start packets that are due; returns the client's state at `now`.
    pub fn release(&mut self, now: Instant, out: &mut Vec<Arc<StationPacket>>) -> FeedState {
        while let Some((at, _)) = self.pending.front() {
            if *at > now {
                break;
            }
            if let Some((_, p)) = self.pending.pop_front() {
                self.note_released(&p);
                out.push(p);
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            // Caught up: the queue is not used again (only a join fills it), so its room for
            // a whole fast-start backlog goes back, for every client of a big audience.
            self.pending = VecDeque::new();
        }
        self.state(now)
    }

    /// Bookkeeping for a packet leaving `pending`.
    fn note_released(&mut self, p: &StationPacket) {
        self.last_seq = Some(p.seq);
        if self.backlog_held > 0 {
            self.backlog_held -= 1;
        } else {
            self.held_live_bytes = self.held_live_bytes.saturating_sub(p.bytes.len());
        }
    }

    /// Drops everything held back (the client skips to the next clean point).
    fn drop_held(&mut self) {
        self.pending.clear();
        self.backlog_held = 0;
        self.held_live_bytes = 0;
    }

    /// When the next fast-start packet is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.front().map(|(at, _)| *at)
    }

    /// The client's state at `now`.
    pub fn state(&self, now: Instant) -> FeedState {
        match self.behind_since {
            Some(t) if now.duration_since(t) >= self.config.stall_timeout => FeedState::Stalled,
            _ if self.skipping => FeedState::Skipping,
            _ => FeedState::Flowing,
        }
    }

    /// The header changed and the client continues on it: the packets of the old header still
    /// held back by fast start go to `out` at once (they come before anything of the new
    /// header, and are never dropped), and the client waits for a clean point of the new one.
    pub fn on_header_change(&mut self, out: &mut Vec<Arc<StationPacket>>) {
        while let Some((_, p)) = self.pending.pop_front() {
            self.note_released(&p);
            out.push(p);
        }
        self.anchor = None;
        self.skipping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u64, send_time: u32, clean: bool) -> Arc<StationPacket> {
        Arc::new(StationPacket::new(
            seq,
            1,
            send_time,
            clean,
            Arc::from(vec![0u8; 100]),
        ))
    }

    const CFG: FeedConfig = FeedConfig {
        backlog_limit: 1000,
        fast_start_rate: 4.0,
        stall_timeout: Duration::from_secs(10),
    };

    #[test]
    fn fast_start_releases_the_backlog_at_the_configured_rate() {
        let t0 = Instant::now();
        let backlog: Vec<_> = (0..5)
            .map(|i| pkt(i, 1000 + i as u32 * 400, i == 0))
            .collect();
        let mut f = LiveFeed::join(CFG, backlog, t0);
        let mut out = Vec::new();
        f.release(t0, &mut out);
        assert_eq!(out.len(), 1, "the clean point goes at once");
        // 400 ms of send time at 4x = 100 ms.
        assert_eq!(f.deadline(), Some(t0 + Duration::from_millis(100)));
        f.release(t0 + Duration::from_millis(250), &mut out);
        assert_eq!(out.len(), 3);
        // A live packet queues behind the backlog.
        let st = f.offer(
            &pkt(5, 3000, false),
            0,
            t0 + Duration::from_millis(300),
            &mut out,
        );
        assert_eq!(st, FeedState::Flowing);
        assert_eq!(out.len(), 4);
        // It continues the schedule: 2000 ms of send time after the anchor at 4x = 500 ms.
        f.release(t0 + Duration::from_millis(400), &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(f.deadline(), Some(t0 + Duration::from_millis(500)));
        f.release(t0 + Duration::from_millis(500), &mut out);
        assert_eq!(
            out.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        // Caught up: the backlog's room is given back; live packets go straight through;
        // duplicates never.
        assert_eq!(f.pending.capacity(), 0);
        f.offer(
            &pkt(6, 3040, false),
            0,
            t0 + Duration::from_millis(500),
            &mut out,
        );
        f.offer(
            &pkt(6, 3040, false),
            0,
            t0 + Duration::from_millis(500),
            &mut out,
        );
        assert_eq!(out.len(), 7);
    }

    /// A backlog across a send-time reset (or a jump of an hour) is released at the fast-start
    /// rate on both sides of it, not held for hours behind the step.
    #[test]
    fn a_backlog_across_a_send_time_reset_or_jump_keeps_flowing() {
        let t0 = Instant::now();
        let backlog = vec![
            pkt(0, 2000, true),
            pkt(1, 4000, false),
            pkt(2, 100, false),
            pkt(3, 500, false),
            pkt(4, 3_600_500, false),
            pkt(5, 3_600_900, false),
        ];
        let mut f = LiveFeed::join(CFG, backlog, t0);
        let mut out = Vec::new();
        f.release(t0 + Duration::from_millis(499), &mut out);
        assert_eq!(out.len(), 1);
        // 2000 → 4000 at 4×: 500 ms; the reset goes right after it, 100 → 500 takes 100 ms.
        f.release(t0 + Duration::from_millis(500), &mut out);
        assert_eq!(out.len(), 3);
        f.release(t0 + Duration::from_millis(600), &mut out);
        assert_eq!(
            out.len(),
            5,
            "the hour's jump goes right after its predecessor"
        );
        f.release(t0 + Duration::from_millis(700), &mut out);
        assert_eq!(
            out.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        assert_eq!(f.deadline(), None);
        // Live packets then go straight through.
        f.offer(
            &pkt(6, 3_601_000, false),
            0,
            t0 + Duration::from_millis(700),
            &mut out,
        );
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn a_slow_client_skips_to_the_next_clean_point_then_stalls() {
        let t0 = Instant::now();
        let mut f = LiveFeed::join(CFG, vec![pkt(0, 0, true)], t0);
        let mut out = Vec::new();
        f.release(t0, &mut out);
        assert_eq!(
            f.offer(&pkt(1, 40, false), 5000, t0, &mut out),
            FeedState::Skipping
        );
        assert_eq!(
            f.offer(&pkt(2, 80, false), 0, t0, &mut out),
            FeedState::Skipping
        );
        assert_eq!(out.len(), 1);
        // Clean point with the queue drained: resumes.
        assert_eq!(
            f.offer(&pkt(3, 120, true), 0, t0, &mut out),
            FeedState::Flowing
        );
        assert_eq!(out.len(), 2);
        assert_eq!((f.skips, f.skipped_packets), (1, 2));
        // Behind again and never drains: stalled after the timeout.
        let later = t0 + Duration::from_secs(11);
        f.offer(
            &pkt(4, 160, false),
            5000,
            t0 + Duration::from_secs(1),
            &mut out,
        );
        assert_eq!(
            f.offer(&pkt(5, 200, true), 5000, later, &mut out),
            FeedState::Stalled
        );
    }

    #[test]
    fn joining_an_empty_station_waits_for_a_clean_point() {
        let t0 = Instant::now();
        let mut f = LiveFeed::join(CFG, Vec::new(), t0);
        let mut out = Vec::new();
        f.offer(&pkt(0, 0, false), 0, t0, &mut out);
        assert!(out.is_empty());
        f.offer(&pkt(1, 40, true), 0, t0, &mut out);
        assert_eq!(out.len(), 1);
        // Not stalled: it was never behind.
        assert_eq!(f.state(t0 + Duration::from_secs(60)), FeedState::Flowing);
    }

    /// A source whose send times step ahead just under the re-anchoring bound stretches the
    /// fast-start schedule far past real time; the live packets that arrive meanwhile are held
    /// behind it, and their bytes are bounded: past the limit the client skips to the next
    /// clean point like any client that is behind, and nothing held is kept.
    #[test]
    fn live_packets_held_behind_a_stretched_backlog_are_bounded() {
        let t0 = Instant::now();
        let step = MAX_STEP_MS - 1;
        let backlog: Vec<_> = (0..4).map(|i| pkt(i, i as u32 * step, i == 0)).collect();
        let mut f = LiveFeed::join(CFG, backlog, t0);
        let mut out = Vec::new();
        f.release(t0, &mut out);
        assert_eq!(out.len(), 1);
        // Each live packet is 100 bytes; the limit is 1000 (CFG): the 11th goes over it.
        let mut state = FeedState::Flowing;
        for i in 4..40u64 {
            state = f.offer(&pkt(i, i as u32 * step, false), 0, t0, &mut out);
            if state != FeedState::Flowing {
                break;
            }
        }
        assert_eq!(state, FeedState::Skipping);
        assert_eq!(f.skips, 1);
        assert_eq!(f.deadline(), None, "nothing is held while skipping");
        assert!(f.held_live_bytes <= CFG.backlog_limit);
        // The next clean point resumes it at once.
        let n = out.len();
        assert_eq!(
            f.offer(&pkt(100, 500_000, true), 0, t0, &mut out),
            FeedState::Flowing
        );
        assert_eq!(out.len(), n + 1);
    }

    /// At rate 1 the live packets continue the backlog's schedule: the client stays the
    /// backlog's span behind the live edge, each packet held for the same time, and nothing
    /// comes out in a burst when the backlog is out (a burst of the whole span made every
    /// FFmpeg on a 6 Mbit/s station skip: 4.5–5.7 MB against the default 4 MiB).
    #[test]
    fn at_real_time_the_live_packets_keep_a_steady_delay_without_a_burst() {
        let t0 = Instant::now();
        let cfg = FeedConfig {
            fast_start_rate: 1.0,
            ..CFG
        };
        // 30 packets of 100 bytes 40 ms apart (3000 bytes, three times the limit): a span of
        // 1200 ms from the first to the first live packet.
        let backlog: Vec<_> = (0..30).map(|i| pkt(i, i as u32 * 40, i == 0)).collect();
        let mut f = LiveFeed::join(cfg, backlog, t0);
        let mut out = Vec::new();
        let mut released_at = std::collections::HashMap::new();
        for step in 0..500u64 {
            let now = t0 + Duration::from_millis(step * 20);
            out.clear();
            if step % 2 == 0 {
                // A live packet every 40 ms; what was released is written at once (queued 0).
                let i = 30 + step / 2;
                assert_eq!(
                    f.offer(&pkt(i, i as u32 * 40, false), 0, now, &mut out),
                    FeedState::Flowing
                );
            }
            f.release(now, &mut out);
            assert!(out.len() <= 2, "a burst of {} at {step}", out.len());
            for p in &out {
                released_at.insert(p.seq, step * 20);
            }
        }
        assert_eq!(f.skips, 0);
        // Every live packet left 1200 ms after it came.
        for i in 30..250u64 {
            assert_eq!(
                released_at.get(&i),
                Some(&((i - 30) * 40 + 1200)),
                "packet {i}"
            );
        }
    }
}
