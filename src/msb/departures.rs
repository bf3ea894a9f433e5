//! When each MSB datagram of a station leaves: the station's send schedule, between the
//! [`super::MsbSink`] (which frames datagrams when the source makes packets due) and the shell
//! (which sends them). Pure: `now` and instants come from the caller.
//!
//! Two jobs (issue 14):
//!
//! - **Smoothing** (per station, `multicast.smoothing`): muxers front-load packets (FFmpeg's
//!   ASF muxer stamps the first ~3 s of data with send times 0, 40 and 80 ms; 25–45 % of
//!   packets share their millisecond), and bursts are what multicast switches and Wi-Fi drop.
//!   A leaky bucket spreads datagrams at the header's declared bit rate, raised so that a
//!   front-load of one preroll drains within the bound ([`smoothing_rate`]): datagram *i*
//!   leaves at
//!   `max(ready_i, leave_{i−1} + bytes_{i−1} / rate)`, but never later than
//!   `ready_i + max_delay` — the bound a smoothed packet can be delayed by. Departures never
//!   decrease (`ready` never does, so neither does `ready + max_delay`), so nothing is
//!   reordered, and nothing is dropped: past the bound a datagram leaves at its bound, which
//!   lets a stream that really exceeds the rate through late rather than losing it.
//! - **Lookahead** for kernel pacing (`SO_TXTIME`, [`super::super::net`]'s txtime path): the
//!   shell asks for every datagram leaving before `now + lookahead` and hands it to the kernel
//!   with its departure instant, so the kernel, not the loop's wake-up, times it. On the timer
//!   path the lookahead is zero.
//!
//! Without smoothing a datagram leaves when it is ready: the schedule is a pass-through.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Headroom of the smoothing rate over the declared bit rate: real files exceed their
/// declaration a little (the bench's file: 1.03 Mbit/s declared as 964 kbit/s); a bucket
/// slower than the stream would sit at its delay bound for good.
const RATE_HEADROOM: f64 = 1.25;
/// The largest preroll believed (a header may declare any u64).
const MAX_PREROLL: Duration = Duration::from_secs(10);
/// The bit rate assumed when the header declares none.
const FALLBACK_BITRATE: u64 = 20_000_000;

/// The wire rate (bytes per second) a smoothed station's datagrams are spread at: the
/// header's declared bit rate (`max_bitrate`, [`FALLBACK_BITRATE`] when 0) with the MSB
/// overhead — an 8-byte header per `packet_size` ASF bytes and one parity datagram per
/// `fec_span` data datagrams — times [`RATE_HEADROOM`] × (1 + `preroll` / `max_delay`).
///
/// Why the last factor: a muxer front-loads about one preroll of data, and the stream goes
/// on at its own rate meanwhile, so the bucket drains the front-load only at the rate it has
/// over the stream's. To clear a preroll `P` of backlog within the bound `B` it needs
/// `rate ≥ stream × (1 + P / B)` (the bench measured a 3 s bound at 1.25 × the declared rate
/// holding its front-load to the bound, bursting there).
pub fn smoothing_rate(
    max_bitrate: u32,
    packet_size: u32,
    fec_span: u8,
    preroll: Duration,
    max_delay: Duration,
) -> u64 {
    let bits = match u64::from(max_bitrate) {
        0 => FALLBACK_BITRATE,
        b => b.min(FALLBACK_BITRATE),
    };
    let framing = (f64::from(packet_size.max(1)) + 8.0) / f64::from(packet_size.max(1));
    let parity = match fec_span {
        0 => 1.0,
        s => 1.0 + 1.0 / f64::from(s),
    };
    let catch_up =
        1.0 + preroll.min(MAX_PREROLL).as_secs_f64() / max_delay.as_secs_f64().max(0.001);
    let bytes = bits as f64 / 8.0 * framing * parity * RATE_HEADROOM * catch_up;
    (bytes as u64).max(1)
}

/// What smoothing needs: the bound and the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smoothing {
    /// The most a datagram is held past the moment it is ready.
    pub max_delay: Duration,
    /// Bytes per second; set from each header ([`smoothing_rate`]).
    pub rate: u64,
}

/// A datagram waiting for its departure.
#[derive(Debug)]
struct Waiting {
    leave: Instant,
    ready: Instant,
    bytes: Vec<u8>,
}

/// Figures for the operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepartureCounters {
    /// Datagrams that left later than they were ready (smoothing held them).
    pub held: u64,
    /// Datagrams that left at their delay bound (the stream exceeded the smoothing rate).
    pub at_bound: u64,
    /// The largest hold so far.
    pub max_hold: Duration,
}

/// One station's send schedule.
#[derive(Debug, Default)]
pub struct Departures {
    queue: VecDeque<Waiting>,
    smoothing: Option<Smoothing>,
    /// When the bucket has drained the last datagram (the earliest the next may leave).
    free_at: Option<Instant>,
    counters: DepartureCounters,
}

impl Departures {
    /// A schedule that smooths when `smoothing` is given.
    pub fn new(smoothing: Option<Smoothing>) -> Self {
        Departures {
            smoothing,
            ..Departures::default()
        }
    }

    /// Whether this schedule smooths.
    pub fn smoothing(&self) -> Option<Smoothing> {
        self.smoothing
    }

    /// Sets the smoothing rate (bytes per second) from a new header; no effect unsmoothed.
    pub fn set_rate(&mut self, rate: u64) {
        if let Some(s) = &mut self.smoothing {
            s.rate = rate.max(1);
        }
    }

    /// Queues a datagram that is ready at `ready`; returns when it will leave.
    pub fn push(&mut self, bytes: Vec<u8>, ready: Instant) -> Instant {
        let leave = match self.smoothing {
            None => ready,
            Some(s) => {
                let earliest = self.free_at.map_or(ready, |f| f.max(ready));
                let bound = ready + s.max_delay;
                let leave = earliest.min(bound);
                let hold = leave.saturating_duration_since(ready);
                if hold > Duration::ZERO {
                    self.counters.held += 1;
                    self.counters.max_hold = self.counters.max_hold.max(hold);
                }
                if earliest > bound {
                    self.counters.at_bound += 1;
                }
                let drain = Duration::from_nanos(
                    (bytes.len() as u64).saturating_mul(1_000_000_000) / s.rate.max(1),
                );
                self.free_at = Some(leave + drain);
                leave
            }
        };
        // Departures never decrease (see the module doc); the max only guards the invariant.
        let leave = self.queue.back().map_or(leave, |w| w.leave.max(leave));
        self.queue.push_back(Waiting {
            leave,
            ready,
            bytes,
        });
        leave
    }

    /// Moves every datagram leaving at or before `until` (`now` on the timer path,
    /// `now + lookahead` on the txtime path) into `into`, in order, with its departure.
    pub fn take_until(&mut self, until: Instant, into: &mut Vec<(Instant, Vec<u8>)>) {
        while self.queue.front().is_some_and(|w| w.leave <= until) {
            if let Some(w) = self.queue.pop_front() {
                into.push((w.leave, w.bytes));
            }
        }
    }

    /// Moves everything queued into `into` (the station stops: nothing is dropped).
    pub fn take_all(&mut self, into: &mut Vec<(Instant, Vec<u8>)>) {
        into.extend(self.queue.drain(..).map(|w| (w.leave, w.bytes)));
    }

    /// When the next queued datagram leaves.
    pub fn next_departure(&self) -> Option<Instant> {
        self.queue.front().map(|w| w.leave)
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How long the oldest waiting datagram has been ready at `now`.
    pub fn oldest_wait(&self, now: Instant) -> Duration {
        self.queue
            .front()
            .map_or(Duration::ZERO, |w| now.saturating_duration_since(w.ready))
    }

    pub fn counters(&self) -> DepartureCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Pushes (ready offset ms, bytes) and takes everything at the end: the departures in ms.
    fn leaves(s: Option<Smoothing>, input: &[(u64, usize)]) -> Vec<u64> {
        let t0 = Instant::now();
        let mut d = Departures::new(s);
        for &(at, len) in input {
            d.push(vec![0; len], t0 + ms(at));
        }
        let mut out = Vec::new();
        d.take_all(&mut out);
        out.iter()
            .map(|(t, _)| t.duration_since(t0).as_millis() as u64)
            .collect()
    }

    #[test]
    fn unsmoothed_is_a_pass_through() {
        assert_eq!(
            leaves(None, &[(0, 1000), (0, 1000), (5, 1000)]),
            vec![0, 0, 5]
        );
    }

    /// (name, (ready ms, bytes) in, departures ms out).
    type Case = (&'static str, Vec<(u64, usize)>, Vec<u64>);

    #[test]
    fn a_burst_is_spread_at_the_rate_within_the_bound_and_in_order() {
        // 100 kB/s: a 1000-byte datagram drains in 10 ms.
        let s = Some(Smoothing {
            max_delay: ms(45),
            rate: 100_000,
        });
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("spaced input is untouched", vec![(0, 1000), (20, 1000), (40, 1000)], vec![0, 20, 40]),
            ("a burst is spread", vec![(0, 1000); 4], vec![0, 10, 20, 30]),
            ("past the bound a datagram leaves at its bound, never dropped",
                vec![(0, 1000); 7], vec![0, 10, 20, 30, 40, 45, 45]),
            ("the bucket drains while idle", vec![(0, 1000), (0, 1000), (100, 1000)], vec![0, 10, 100]),
            ("a later burst queues behind the earlier one", vec![(0, 1000), (0, 1000), (5, 1000)], vec![0, 10, 20]),
        ];
        for (name, input, want) in cases {
            let got = leaves(s, &input);
            assert_eq!(got, want, "{name}");
            assert!(
                got.windows(2).all(|w| w[0] <= w[1]),
                "{name}: never reordered"
            );
            for (&(ready, _), &leave) in input.iter().zip(&got) {
                assert!(
                    leave >= ready && leave - ready <= 45,
                    "{name}: bounded delay"
                );
            }
        }
    }

    #[test]
    fn take_until_hands_over_what_leaves_by_then_and_counts_holds() {
        let t0 = Instant::now();
        let mut d = Departures::new(Some(Smoothing {
            max_delay: ms(25),
            rate: 100_000,
        }));
        for _ in 0..4 {
            d.push(vec![0; 1000], t0);
        }
        let mut out = Vec::new();
        d.take_until(t0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(d.next_departure(), Some(t0 + ms(10)));
        // A 15 ms lookahead takes the second too.
        d.take_until(t0 + ms(15), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(d.oldest_wait(t0 + ms(20)), ms(20));
        d.take_until(t0 + ms(100), &mut out);
        assert_eq!(out.len(), 4);
        assert!(d.is_empty());
        let c = d.counters();
        assert_eq!((c.held, c.at_bound, c.max_hold), (3, 1, ms(25)));
    }

    #[test]
    fn the_rate_follows_the_header_with_msb_overhead_and_headroom() {
        let none = Duration::ZERO;
        let b = ms(3000);
        // 964 kbit/s, 3200-byte packets, one parity per 10: 120 500 B/s × 1.0025 × 1.1 × 1.25.
        assert_eq!(smoothing_rate(964_000, 3200, 10, none, b), 166_101);
        assert_eq!(smoothing_rate(964_000, 3200, 0, none, b), 151_001);
        // A 3 s preroll under a 3 s bound: twice that, to drain a preroll within the bound.
        assert_eq!(smoothing_rate(964_000, 3200, 0, ms(3000), b), 302_003);
        // No declared rate: the fallback; an absurd one is capped the same way; so is an
        // absurd preroll.
        assert_eq!(
            smoothing_rate(0, 3200, 0, none, b),
            smoothing_rate(u32::MAX, 3200, 0, none, b)
        );
        assert_eq!(
            smoothing_rate(964_000, 3200, 0, Duration::from_secs(1 << 40), b),
            smoothing_rate(964_000, 3200, 0, ms(10_000), b)
        );
        assert!(smoothing_rate(1, 0, 0, none, none) >= 1);
    }
}
