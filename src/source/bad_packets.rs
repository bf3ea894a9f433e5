//! Rate-limited accounting of bad data packets.
//!
//! Why: a corrupt file can hold millions of bad packets, and a looping playlist reads it again
//! and again; one log line per packet filled disks with gigabytes of warnings. So a source
//! counts its bad packets and logs at most one line per [`REPORT_WINDOW`]: the first bad packet
//! after a quiet window is reported at once (with its error, so the cause is visible), the
//! rest are counted and reported as one aggregate ("skipped N bad packets in `<file>` in the
//! last 10 s") when the window has passed or the file ends. Pure: `now` is a parameter.

use std::time::{Duration, Instant};

/// At most one report per this long (plus one when a file with unreported packets ends).
pub const REPORT_WINDOW: Duration = Duration::from_secs(10);

/// Counts bad packets and says when to report them.
#[derive(Debug, Clone, Default)]
pub struct BadPacketLog {
    /// When the last report was made.
    last_report: Option<Instant>,
    /// Bad packets counted since the last report.
    unreported: u64,
}

impl BadPacketLog {
    pub fn new() -> Self {
        BadPacketLog::default()
    }

    /// Counts one bad packet at `now`; `Some(n)` when a report is due: `n` bad packets since
    /// the last report, this one included.
    pub fn record(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self.last_report.map_or(true, |at| {
            now.saturating_duration_since(at) >= REPORT_WINDOW
        });
        due.then(|| self.report(now))
    }

    /// The file ended: `Some(n)` when `n` bad packets of it were not reported yet.
    pub fn finish(&mut self, now: Instant) -> Option<u64> {
        (self.unreported > 0).then(|| self.report(now))
    }

    fn report(&mut self, now: Instant) -> u64 {
        self.last_report = Some(now);
        std::mem::take(&mut self.unreported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One input: a bad packet, or the end of the file, at a time in ms.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Bad(u64),
        End(u64),
    }
    use Op::{Bad, End};

    /// (name, inputs, reports as (ms, count)).
    type Case = (&'static str, Vec<Op>, Vec<(u64, u64)>);

    #[test]
    fn at_most_one_report_per_window() {
        let every_ms = |step: u64, n: u64| -> Vec<Op> { (0..n).map(|i| Bad(i * step)).collect() };
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("the first bad packet is reported at once", vec![Bad(0)], vec![(0, 1)]),
            ("a flood: the first, then one aggregate per 10 s",
                every_ms(1, 25_001), vec![(0, 1), (10_000, 10_000), (20_000, 10_000)]),
            ("the file's end reports what was not reported yet",
                vec![Bad(0), Bad(5), Bad(6), End(7)], vec![(0, 1), (7, 2)]),
            ("nothing to report at the end of a clean file", vec![End(3)], vec![]),
            ("the end does not open a burst: the next file's packets wait for the window",
                vec![Bad(0), Bad(1), End(2), Bad(3), Bad(10_002)], vec![(0, 1), (2, 1), (10_002, 2)]),
            ("after a quiet window the next bad packet is reported at once",
                vec![Bad(0), Bad(60_000)], vec![(0, 1), (60_000, 1)]),
        ];
        for (name, ops, want) in cases {
            let t0 = Instant::now();
            let mut log = BadPacketLog::new();
            let mut got = Vec::new();
            for op in ops {
                let (ms, n) = match op {
                    Bad(ms) => (ms, log.record(t0 + Duration::from_millis(ms))),
                    End(ms) => (ms, log.finish(t0 + Duration::from_millis(ms))),
                };
                if let Some(n) = n {
                    got.push((ms, n));
                }
            }
            assert_eq!(got, want, "{name}");
        }
    }
}
