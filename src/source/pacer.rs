//! Pacing by ASF send times (asf.md §3.3): packet *i* is due at `anchor + (send_i − send_0)`.
//!
//! The clock re-anchors when the send time goes backwards or jumps forward by more than
//! [`MAX_JUMP_MS`] (a live encoder restart, an un-retimed loop), when a packet would be more
//! than [`MAX_LATE`] late (after a stall), and at every explicit [`Pacer::reanchor`].
//! Re-anchoring puts the next packet right after the previous one (or at `now` after a stall),
//! so neither a burst nor a gap follows.
//! Send times are u32 milliseconds that wrap after 49.7 days; the difference is taken modulo
//! 2³². Pure: `now` is a parameter.

use std::time::{Duration, Instant};

/// A forward jump in send time larger than this re-anchors the clock.
pub const MAX_JUMP_MS: u32 = 5_000;
/// A packet due this long ago (the source stalled: a missing file, a slow disk) re-anchors the
/// clock at `now`, so the station resumes in real time instead of bursting to catch up.
pub const MAX_LATE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Default)]
pub struct Pacer {
    /// (instant, send time) of the anchor.
    anchor: Option<(Instant, u32)>,
    /// The last packet's send time and due instant.
    last: Option<(u32, Instant)>,
    force: bool,
}

impl Pacer {
    pub fn new() -> Self {
        Pacer::default()
    }

    /// The next packet starts a new timeline (file change): anchor it right after the last.
    pub fn reanchor(&mut self) {
        self.force = true;
    }

    /// When the packet with `send_time` is due. Call once per packet, in order.
    pub fn due(&mut self, send_time: u32, now: Instant) -> Instant {
        let continuous = match (self.anchor, self.last) {
            (Some(_), Some((last_send, _))) if !self.force => {
                let delta = send_time.wrapping_sub(last_send);
                delta <= MAX_JUMP_MS
            }
            _ => false,
        };
        if !continuous {
            let at = match self.last {
                Some((_, last_due)) => last_due.max(now),
                None => now,
            };
            self.anchor = Some((at, send_time));
            self.force = false;
        }
        let (at, base) = self.anchor.unwrap_or((now, send_time));
        let mut due = at + Duration::from_millis(u64::from(send_time.wrapping_sub(base)));
        if due + MAX_LATE < now {
            self.anchor = Some((now, send_time));
            due = now;
        }
        self.last = Some((send_time, due));
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_by_send_time_and_reanchors_on_jumps() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        assert_eq!(p.due(1000, t0), t0);
        assert_eq!(p.due(1040, t0), t0 + Duration::from_millis(40));
        assert_eq!(p.due(1040, t0), t0 + Duration::from_millis(40));
        // Backwards (loop restart): continue right after the last packet.
        let d = p.due(0, t0);
        assert_eq!(d, t0 + Duration::from_millis(40));
        assert_eq!(p.due(100, t0), d + Duration::from_millis(100));
        // Forward jump beyond 5 s: no 1-hour wait.
        let d2 = p.due(3_600_000, t0);
        assert_eq!(d2, d + Duration::from_millis(100));
        // Explicit re-anchor.
        p.reanchor();
        assert_eq!(p.due(3_600_010, t0), d2);
    }

    #[test]
    fn a_stall_resumes_in_real_time_without_a_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.due(0, t0);
        p.due(40, t0);
        // The next packet of a continuous timeline arrives 10 s late (a stalled source).
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.due(80, later), later);
        assert_eq!(p.due(120, later), later + Duration::from_millis(40));
    }

    #[test]
    fn late_start_anchors_at_now() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.due(0, t0);
        p.reanchor();
        let later = t0 + Duration::from_secs(30);
        // After a long stall (source retry), the new timeline starts now: no catch-up burst.
        assert_eq!(p.due(500, later), later);
        assert_eq!(p.due(540, later), later + Duration::from_millis(40));
    }
}
