//! Pacing by ASF send times (asf.md §3.3): packet *i* is due at `anchor + (send_i − send_0)`.
//!
//! The clock re-anchors when the send time goes backwards or jumps forward by more than
//! [`MAX_JUMP_MS`] (a loop restart, a new playlist entry, a live encoder restart), and at every
//! explicit [`Pacer::reanchor`] (the shell calls it on a file change). Re-anchoring puts the next
//! packet right after the previous one, so a file change causes neither a burst nor a gap.
//! Send times are u32 milliseconds that wrap after 49.7 days; the difference is taken modulo
//! 2³². Pure: `now` is a parameter.

use std::time::{Duration, Instant};

/// A forward jump in send time larger than this re-anchors the clock.
pub const MAX_JUMP_MS: u32 = 5_000;

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
        let due = at + Duration::from_millis(u64::from(send_time.wrapping_sub(base)));
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
