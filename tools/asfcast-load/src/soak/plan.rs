//! The soak's decisions, kept pure so they can be tested without a daemon: which protocol and
//! station a newcomer gets and how long it stays ([`Rng`], [`Kind`]), when the faults and
//! reloads fall ([`Cadence`]), and whether a stall or failure on a station is explained by
//! its source being away ([`Outages`]). Times are seconds since the run began.

/// The client protocols of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Mmsh,
    Mmst,
    RtspTcp,
    RtspUdp,
    Http,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Mmsh,
        Kind::Mmst,
        Kind::RtspTcp,
        Kind::RtspUdp,
        Kind::Http,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Mmsh => "mmsh",
            Kind::Mmst => "mmst",
            Kind::RtspTcp => "rtsp-tcp",
            Kind::RtspUdp => "rtsp-udp",
            Kind::Http => "http",
        }
    }
}

/// splitmix64: a seeded generator, so a run's join pattern can be replayed with `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// A client lifetime: log-uniform between `min` and `max` seconds, so there are many short
    /// visits (churn every second) and some that stay for minutes (long-run delivery).
    pub fn lifetime(&mut self, min: f64, max: f64) -> f64 {
        let (lo, hi) = (min.max(0.1), max.max(min.max(0.1)));
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
}

/// A periodic event: the first at `every`, then every `every` seconds (never when 0).
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    every: f64,
    done: u32,
}

impl Cadence {
    pub fn new(every: f64) -> Self {
        Cadence { every, done: 0 }
    }

    /// The ordinal (1, 2, …) of the event due at `t`, if one is due and not yet taken.
    pub fn due(&mut self, t: f64) -> Option<u32> {
        if self.every <= 0.0 || t < self.every * f64::from(self.done + 1) {
            return None;
        }
        self.done += 1;
        Some(self.done)
    }
}

/// One time the faulty station's file was away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    pub away: f64,
    /// When the file came back (None: still away).
    pub back: Option<f64>,
}

/// The outages of the faulty station, and the grace after each during which the station is
/// still coming back (the file it had open plays to its end, the playlist retries every 5 s,
/// a joiner waits for the next clean point).
#[derive(Debug, Clone, Default)]
pub struct Outages {
    pub list: Vec<Outage>,
    pub grace: f64,
}

impl Outages {
    pub fn new(grace: f64) -> Self {
        Outages {
            list: Vec::new(),
            grace,
        }
    }

    pub fn begin(&mut self, t: f64) {
        self.list.push(Outage {
            away: t,
            back: None,
        });
    }

    pub fn end(&mut self, t: f64) {
        if let Some(o) = self.list.last_mut().filter(|o| o.back.is_none()) {
            o.back = Some(t);
        }
    }

    /// Whether an outage explains something wrong seen over `[from, to]` on the station: it
    /// lies inside one outage and its grace (it began after the file went away and ended
    /// before the grace after its return ran out). A stall that outlasts the grace is the
    /// station not coming back, and is not explained.
    pub fn explains(&self, from: f64, to: f64) -> bool {
        self.list
            .iter()
            .any(|o| from >= o.away && to <= o.back.map_or(f64::INFINITY, |b| b + self.grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_stay_in_range_and_spread_over_it() {
        let mut r = Rng::new(7);
        let v: Vec<f64> = (0..10_000).map(|_| r.lifetime(2.0, 300.0)).collect();
        assert!(v.iter().all(|&x| (2.0..=300.0).contains(&x)));
        let short = v.iter().filter(|&&x| x < 20.0).count();
        let long = v.iter().filter(|&&x| x > 60.0).count();
        assert!(short > 3000 && long > 2000, "{short} {long}");
        assert!((0..1000).all(|_| r.below(5) < 5));
        // Same seed, same run.
        assert_eq!(Rng::new(3).next_u64(), Rng::new(3).next_u64());
    }

    #[test]
    fn cadence_fires_once_per_period_and_never_when_off() {
        let mut c = Cadence::new(60.0);
        assert_eq!(c.due(59.9), None);
        assert_eq!(c.due(60.0), Some(1));
        assert_eq!(c.due(61.0), None);
        assert_eq!(c.due(125.0), Some(2));
        let mut off = Cadence::new(0.0);
        assert_eq!(off.due(1e9), None);
    }

    #[test]
    fn only_what_lies_inside_an_outage_and_its_grace_is_explained() {
        let mut o = Outages::new(15.0);
        assert!(!o.explains(0.0, 100.0));
        o.begin(60.0);
        assert!(o.explains(61.0, 200.0), "still away");
        assert!(!o.explains(58.0, 61.0), "began before the file went away");
        o.end(80.0);
        assert!(o.explains(70.0, 93.0), "inside the grace");
        assert!(
            !o.explains(70.0, 96.0),
            "outlasts the grace: the station did not come back"
        );
        assert!(!o.explains(96.0, 99.0));
    }
}
