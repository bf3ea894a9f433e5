//! A fixed-bucket histogram of durations, the shape Prometheus histograms have: the shell
//! observes (pacing lateness, loop turn time, timer lateness) and the metrics page renders
//! cumulative buckets from it. Fixed bounds keep it allocation-free per observation and
//! cheap to copy into the operators' snapshot every second.

use std::time::Duration;

/// Bucket upper bounds for how late a station packet went out (seconds). 0.5 s is the WMS
/// "late send" threshold.
pub const LATENESS_BOUNDS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Bucket upper bounds for loop turns and timer wake-up lateness (seconds).
pub const LOOP_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/// Observations counted per bucket (not cumulative), with their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the overflow (`+Inf`) at the end.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these (ascending) upper bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += s;
        self.count += 1;
    }

    /// `(upper bound, observations <= bound)`, ascending, ending with `+Inf` (f64::INFINITY).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c;
                (b, acc)
            })
            .collect()
    }

    /// Sum of the observations, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::new(&[0.01, 0.1]);
        for ms in [1, 10, 50, 500] {
            h.observe(Duration::from_millis(ms));
        }
        assert_eq!(
            h.cumulative(),
            vec![(0.01, 2), (0.1, 3), (f64::INFINITY, 4)]
        );
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 0.561).abs() < 1e-9);
    }
}
