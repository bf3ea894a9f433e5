//! Pacing by ASF send times (asf.md §3.3): packet *i* is due at `anchor + (send_i − send_0)`.
//!
//! The clock re-anchors when the send time goes backwards or jumps forward by more than
//! [`MAX_JUMP_MS`] (a live encoder restart, an un-retimed loop), when a packet would be more
//! than [`MAX_LATE`] late (after a stall), and at every explicit [`Pacer::reanchor`].
//! Re-anchoring puts the next packet right after the previous one (or at `now` after a stall),
//! so neither a burst nor a gap follows.
//! Send times are u32 milliseconds that wrap after 49.7 days; the difference is taken modulo
//! 2³². Pure: `now` is a parameter.
//!
//! Why a rate floor as well: send times alone cannot pace a file whose send times do not
//! advance (a zero-filled, preallocated file; a broken muxer writing one constant): every
//! packet would be due at once and the station would send as fast as the machine can. So a
//! packet that does not advance the send time (the same send time, a re-anchor, or a bad packet
//! that was skipped, [`Pacer::skip`]) costs its share of the header's declared bit rate,
//! [`min_spacing`] (`packet size × 8 / max bitrate`). A run of them up to twice the header's
//! preroll worth of data (at least [`STALL_BURST`] packets: the several packets of one key
//! frame) goes out on time; after that they are spaced by that share. Packets whose send time advances
//! are not held back: real files exceed their declared bit rate a little.
//!
//! Why the preroll: muxers front-load. FFmpeg's ASF muxer stamps the first preroll of data
//! (~3 s) with send times 0, 40 and 80 ms — runs of 40+ packets sharing one send time. With a
//! tolerance of only [`STALL_BURST`] packets the floor spread that front-load over 3 s, so the
//! rest of the file went out up to 3 s after its send times (the pacing bench measured a 5 s
//! p99 at 1 station). A player buffers the preroll anyway, so a preroll of data ahead of the
//! declared rate is what a correct file may send at once — at the file's *actual* rate, which
//! exceeds the declared one (the bench's file: 1.03 Mbit/s declared as 964 kbit/s, so its
//! front-load is 3.3 s of declared-rate data for a 3.1 s preroll); twice the preroll leaves room
//! for that. A file whose send times never advance still cannot beat the rate by more. Smoothing such bursts on the wire is
//! a separate, per-station choice (`multicast.smoothing`).

use std::time::{Duration, Instant};

/// A forward jump in send time larger than this re-anchors the clock.
pub const MAX_JUMP_MS: u32 = 5_000;
/// A packet due this long ago (the source stalled: a missing file, a slow disk) re-anchors the
/// clock at `now`, so the station resumes in real time instead of bursting to catch up.
pub const MAX_LATE: Duration = Duration::from_millis(500);
/// Packets that do not advance the send time that may go out back to back before the rate
/// floor spaces them.
pub const STALL_BURST: u32 = 8;
/// The bit rate assumed when the header declares none (File Properties max bitrate 0), and the
/// highest one believed: no Windows Media stream comes near it.
pub const FALLBACK_BITRATE: u32 = 20_000_000;
/// The largest preroll believed for the rate floor's tolerance (a header may declare any u64).
pub const MAX_PREROLL: Duration = Duration::from_secs(5);
/// The rate floor's tolerance in prerolls (see the module doc).
const PREROLLS_AHEAD: u32 = 2;

/// The time one packet of `packet_size` bytes takes at `max_bitrate` bits per second
/// ([`FALLBACK_BITRATE`] when it is 0 or above it); at least 1 µs.
pub fn min_spacing(packet_size: u32, max_bitrate: u32) -> Duration {
    let rate = match max_bitrate {
        0 => FALLBACK_BITRATE,
        r => r.min(FALLBACK_BITRATE),
    };
    let micros = u64::from(packet_size) * 8 * 1_000_000 / u64::from(rate);
    Duration::from_micros(micros.max(1))
}

/// How a packet's send time moves the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Forward by at most [`MAX_JUMP_MS`]: due by its send time.
    Advance,
    /// Same send time as the last packet: due by its send time, but charged to the rate floor.
    Stall,
    /// Backwards, a big jump, the first packet, or a forced re-anchor.
    Reanchor,
}

#[derive(Debug, Clone, Default)]
pub struct Pacer {
    /// (instant, send time) of the anchor.
    anchor: Option<(Instant, u32)>,
    /// The last packet's send time (bad packets have none).
    last_send: Option<u32>,
    /// The last packet's (or skipped bad packet's) due instant.
    last_due: Option<Instant>,
    force: bool,
    /// One packet's share of the declared bit rate; zero: no rate floor.
    spacing: Duration,
    /// How far ahead of the rate floor non-advancing packets may run: twice the header's
    /// preroll, at least [`STALL_BURST`] × `spacing`.
    tolerance: Duration,
    /// Theoretical arrival time of the rate floor (GCRA): a non-advancing packet is not due
    /// before `floor_at − STALL_BURST × spacing`, and each one pushes it by `spacing`.
    floor_at: Option<Instant>,
}

impl Pacer {
    pub fn new() -> Self {
        Pacer::default()
    }

    /// Sets the rate floor from a header: `packet_size` bytes per packet at `max_bitrate`
    /// (see [`min_spacing`]), with twice the header's preroll (capped at [`MAX_PREROLL`]) as
    /// the burst tolerance.
    pub fn set_rate(&mut self, packet_size: u32, max_bitrate: u32, preroll: Duration) {
        self.spacing = min_spacing(packet_size, max_bitrate);
        self.tolerance =
            (self.spacing * STALL_BURST).max(preroll.min(MAX_PREROLL) * PREROLLS_AHEAD);
    }

    /// How many non-advancing packets may go out back to back before the floor spaces them.
    pub fn burst_packets(&self) -> u32 {
        match self.spacing.as_nanos() {
            0 => u32::MAX,
            s => u32::try_from(self.tolerance.as_nanos() / s).unwrap_or(u32::MAX),
        }
    }

    /// The next packet starts a new timeline (file change): anchor it right after the last.
    pub fn reanchor(&mut self) {
        self.force = true;
    }

    /// When the packet with `send_time` is due. Call once per packet, in order.
    pub fn due(&mut self, send_time: u32, now: Instant) -> Instant {
        let step = match (self.anchor, self.last_send) {
            (Some(_), Some(last_send)) if !self.force => match send_time.wrapping_sub(last_send) {
                0 => Step::Stall,
                d if d <= MAX_JUMP_MS => Step::Advance,
                _ => Step::Reanchor,
            },
            _ => Step::Reanchor,
        };
        if step == Step::Reanchor {
            let at = self.last_due.map_or(now, |d| d.max(now));
            self.anchor = Some((at, send_time));
            self.force = false;
        }
        let (at, base) = self.anchor.unwrap_or((now, send_time));
        let mut due = at + Duration::from_millis(u64::from(send_time.wrapping_sub(base)));
        if let Some(last) = self.last_due {
            // Never before the previous packet (it may have been held by the rate floor).
            due = due.max(last);
        }
        if step != Step::Advance {
            due = self.floor().map_or(due, |f| due.max(f));
        }
        if due + MAX_LATE < now {
            self.anchor = Some((now, send_time));
            due = now;
        }
        self.charge(due, step != Step::Advance);
        self.last_send = Some(send_time);
        self.last_due = Some(due);
        due
    }

    /// When the slot of a bad packet (skipped, never sent) ends: it takes its share of the bit
    /// rate like a packet that does not advance the send time, so a file of bad packets is
    /// skipped at the pace of the file and not read in a tight loop.
    pub fn skip(&mut self, now: Instant) -> Instant {
        let last = self.last_due.unwrap_or(now);
        let mut due = self.floor().map_or(last, |f| last.max(f));
        if due + MAX_LATE < now {
            due = now;
        }
        self.charge(due, true);
        self.last_due = Some(due);
        due
    }

    /// The earliest instant the rate floor allows a non-advancing packet (None: no floor yet).
    fn floor(&self) -> Option<Instant> {
        self.floor_at.and_then(|t| t.checked_sub(self.tolerance))
    }

    fn charge(&mut self, due: Instant, stalled: bool) {
        let base = self.floor_at.map_or(due, |t| t.max(due));
        self.floor_at = Some(if stalled { base + self.spacing } else { base });
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

    #[test]
    fn min_spacing_is_the_packet_share_of_the_bit_rate() {
        let cases: [(u32, u32, Duration); 5] = [
            // The demo's header: 3200-byte packets at 314 kbit/s.
            (3200, 314_000, Duration::from_micros(81_528)),
            (1000, 80_000, Duration::from_millis(100)),
            // No declared bit rate: the fallback cap.
            (3200, 0, Duration::from_micros(1_280)),
            // An absurd one is capped the same way.
            (3200, u32::MAX, Duration::from_micros(1_280)),
            // Never zero.
            (0, 80_000, Duration::from_micros(1)),
        ];
        for (size, rate, want) in cases {
            assert_eq!(
                min_spacing(size, rate),
                want,
                "{size} bytes at {rate} bit/s"
            );
        }
    }

    /// One input to the pacer: a packet with its send time, or a skipped bad packet.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Send(u32),
        Bad,
    }
    use Op::{Bad, Send};

    /// Runs `ops` as a source would (asking at `now` = the previous packet's due instant) with
    /// a 100 ms spacing (1000-byte packets at 80 kbit/s); the due offsets in ms.
    fn run(ops: &[Op], rated: bool) -> Vec<u64> {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        if rated {
            p.set_rate(1000, 80_000, Duration::ZERO);
        }
        let mut now = t0;
        ops.iter()
            .map(|op| {
                let due = match *op {
                    Send(t) => p.due(t, now),
                    Bad => p.skip(now),
                };
                now = now.max(due);
                due.duration_since(t0).as_millis() as u64
            })
            .collect()
    }

    /// (name, inputs, with a rate, due offsets in ms).
    type Case = (&'static str, Vec<Op>, bool, Vec<u64>);

    #[test]
    fn packets_that_do_not_advance_never_beat_the_bit_rate() {
        let burst = STALL_BURST as usize + 1;
        let then_spaced = |n: u64| -> Vec<u64> {
            let mut v = vec![0; burst];
            v.extend((1..=n).map(|i| i * 100));
            v
        };
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("advancing send times go by send time, even faster than the floor",
                vec![Send(0), Send(40), Send(80), Send(120)], true, vec![0, 40, 80, 120]),
            ("a key frame's packets sharing a send time go out on time",
                vec![Send(0), Send(46), Send(46), Send(46), Send(86)], true,
                vec![0, 46, 46, 46, 86]),
            ("all-zero send times: a short burst, then one packet per spacing",
                vec![Send(0); burst + 3], true, then_spaced(3)),
            ("a constant send time is the same",
                vec![Send(7777); burst + 3], true, then_spaced(3)),
            ("send times jumping back and forth re-anchor onto the floor",
                (0..burst + 3).map(|i| Send(if i % 2 == 0 { 0 } else { 60_000 })).collect(),
                true, then_spaced(3)),
            ("bad packets take a slot each",
                vec![Bad; burst + 3], true, then_spaced(3)),
            ("a bad packet between good ones costs nothing when send times carry the pace",
                vec![Send(0), Bad, Send(80), Bad, Send(160)], true, vec![0, 0, 80, 80, 160]),
            ("a packet after a held run is not due before it",
                { let mut v = vec![Send(0); burst + 2]; v.push(Send(40)); v }, true,
                { let mut v = then_spaced(2); v.push(200); v }),
            ("without a rate (no header yet), send times alone",
                vec![Send(0); burst + 3], false, vec![0; burst + 3]),
        ];
        for (name, ops, rated, want) in cases {
            assert_eq!(run(&ops, rated), want, "{name}");
        }
    }

    #[test]
    fn all_zero_send_times_hold_the_rate_over_a_long_run() {
        // 10 000 zero-filled packets of the demo's size at its declared 314 kbit/s.
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.set_rate(3200, 314_000, Duration::ZERO);
        let mut now = t0;
        for _ in 0..10_000 {
            now = now.max(p.due(0, now));
        }
        let secs = now.duration_since(t0).as_secs_f64();
        let bits_per_s = 10_000.0 * 3200.0 * 8.0 / secs;
        assert!(
            bits_per_s <= 314_000.0 * 1.01,
            "{bits_per_s} bit/s over {secs} s"
        );
    }

    #[test]
    fn a_front_loaded_preroll_goes_by_send_time_and_a_stuck_file_gets_two_prerolls_ahead() {
        // FFmpeg's ASF muxer: 3.1 s of data at the file's actual 1.03 Mbit/s (125 packets of
        // 3200 bytes, 3.3 s at the declared 964 kbit/s) stamped 0, 40 and 80 ms, then one packet
        // every ~26 ms.
        let t0 = Instant::now();
        let preroll = Duration::from_millis(3100);
        let mut p = Pacer::new();
        p.set_rate(3200, 964_000, preroll);
        assert_eq!(p.burst_packets(), 233);
        let mut sends: Vec<u32> = [0u32, 40, 80].iter().flat_map(|&t| [t; 42]).collect();
        sends.extend((1..200).map(|i| 80 + i * 26));
        let mut now = t0;
        for &s in &sends {
            let due = p.due(s, now);
            assert_eq!(due, t0 + Duration::from_millis(u64::from(s)), "send {s}");
            now = now.max(due);
        }
        // Send times that never advance: two prerolls at once, then the declared rate.
        let mut p = Pacer::new();
        p.set_rate(3200, 964_000, preroll);
        let dues: Vec<Instant> = (0..400).map(|_| p.due(7, t0)).collect();
        let at_once = dues.iter().filter(|d| **d == t0).count();
        assert_eq!(at_once, 234);
        let last = dues.last().copied().unwrap_or(t0);
        let secs = last.duration_since(t0).as_secs_f64();
        let expected = (400.0 - 234.0) * 3200.0 * 8.0 / 964_000.0;
        assert!(
            (secs - expected).abs() < 0.05,
            "{secs} s, expected {expected} s"
        );
        // A hostile preroll is capped.
        p.set_rate(3200, 964_000, Duration::from_secs(1 << 40));
        assert!(p.burst_packets() <= 377, "{}", p.burst_packets());
    }
}
