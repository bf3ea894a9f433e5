//! What a soak run found, kept as it happens and printed at the end: the daemon's RSS and fd
//! count at start, middle and end (a leak shows as growth at a steady population), every join
//! with its outcome (served = reached media), failures by kind (split into those an outage of
//! the station's source explains and the rest), every gap a client saw (a stall in media
//! arrival, a LocationId or RTP sequence jump) with its time and protocol, each outage with
//! how the station came back, and the reloads. The same figures go to stdout as text and to a
//! JSON file.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::plan::{Kind, Outages};

/// The daemon at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: f64,
    pub rss_kib: Option<u64>,
    pub fds: Option<usize>,
    pub cpu_ticks: Option<u64>,
    pub clients: usize,
}

/// How a client's visit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It stayed its lifetime and left.
    Left,
    /// Still connected when the run ended.
    Running,
    /// It failed: "kind: reason"; `excused` when its station's source was away.
    Failed { what: String, excused: bool },
}

/// One client's visit.
#[derive(Debug, Clone)]
pub struct Join {
    pub kind: Kind,
    pub station: usize,
    pub joined: f64,
    pub first_media: Option<f64>,
    pub outcome: Outcome,
}

/// A gap a client saw.
#[derive(Debug, Clone)]
pub struct Gap {
    /// When it began (a stall: the last media before it; a jump: when it was seen).
    pub at: f64,
    pub id: usize,
    pub kind: Kind,
    pub station: usize,
    pub what: String,
    /// Explained by an outage of the station's source.
    pub excused: bool,
}

/// A SIGHUP sent.
#[derive(Debug, Clone)]
pub struct Reload {
    pub at: f64,
    pub changed: bool,
}

/// Everything a run collects.
#[derive(Debug, Default)]
pub struct Tally {
    pub snapshots: Vec<(&'static str, Snapshot)>,
    pub peak_rss_kib: u64,
    pub peak_fds: usize,
    pub joins: Vec<Join>,
    pub gaps: Vec<Gap>,
    pub reloads: Vec<Reload>,
    pub peak_clients: usize,
    /// When media resumed for a client of the faulty station after a stall.
    pub resumed: Vec<f64>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

/// The run's setting, for the report's header.
#[derive(Debug, Clone)]
pub struct Setting {
    pub seconds: f64,
    pub elapsed: f64,
    pub pid: u32,
    pub stations: [String; 2],
    pub population: usize,
    pub stall: f64,
    pub seed: u64,
}

fn p50_max(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn count_map<'a>(it: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for k in it {
        *m.entry(k.to_string()).or_insert(0) += 1;
    }
    m
}

fn ranked(m: &BTreeMap<String, usize>) -> Vec<(&str, usize)> {
    let mut v: Vec<(&str, usize)> = m.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

impl Tally {
    pub fn snapshot(&mut self, label: &'static str, s: Snapshot) {
        self.observe(&s);
        self.snapshots.push((label, s));
    }

    pub fn observe(&mut self, s: &Snapshot) {
        self.peak_rss_kib = self.peak_rss_kib.max(s.rss_kib.unwrap_or(0));
        self.peak_fds = self.peak_fds.max(s.fds.unwrap_or(0));
    }

    fn failures(&self, excused: bool) -> BTreeMap<String, usize> {
        count_map(self.joins.iter().filter_map(|j| match &j.outcome {
            Outcome::Failed { what, excused: e } if *e == excused => Some(what.as_str()),
            _ => None,
        }))
    }

    /// Whether the run found nothing wrong: no unexplained failure or gap, the daemon up to
    /// the end, and the faulty station serving new joins after every outage.
    pub fn clean(&self, outages: &Outages, faulty: usize) -> bool {
        self.aborted.is_none()
            && self.failures(false).is_empty()
            && self.gaps.iter().all(|g| g.excused)
            && self
                .recoveries(outages, faulty)
                .iter()
                .all(|r| r.1.is_some())
    }

    /// Per outage: (index, seconds from the file's return until the station came back, joins
    /// after the return that reached media, joins after it that failed). The station is back
    /// when media resumes for a client that had stalled (the join backlog a newcomer gets at
    /// once is no proof of a live source), or else when a client that joined after the grace
    /// gets media.
    fn recoveries(
        &self,
        outages: &Outages,
        faulty: usize,
    ) -> Vec<(usize, Option<f64>, usize, usize)> {
        outages
            .list
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let back = o.back?;
                let until = outages.list.get(i + 1).map_or(f64::INFINITY, |n| n.away);
                let after: Vec<&Join> = self
                    .joins
                    .iter()
                    .filter(|j| j.station == faulty && j.joined >= back && j.joined < until)
                    .collect();
                let resumed = self
                    .resumed
                    .iter()
                    .copied()
                    .filter(|&r| r >= back && r < until)
                    .min_by(f64::total_cmp);
                let fresh = after
                    .iter()
                    .filter(|j| j.joined >= back + outages.grace)
                    .filter_map(|j| j.first_media)
                    .min_by(f64::total_cmp);
                let first = resumed.or(fresh).map(|r| r - back);
                let served = after.iter().filter(|j| j.first_media.is_some()).count();
                let failed = after
                    .iter()
                    .filter(|j| matches!(j.outcome, Outcome::Failed { .. }))
                    .count();
                // Nothing on the station after the return (the run ended at once) tells nothing.
                (first.is_some() || !after.is_empty()).then_some((i, first, served, failed))
            })
            .collect()
    }

    pub fn to_json(&self, s: &Setting, outages: &Outages, faulty: usize) -> Value {
        let served = self
            .joins
            .iter()
            .filter(|j| j.first_media.is_some())
            .count();
        let by_protocol: Vec<Value> = Kind::ALL
            .iter()
            .map(|&k| {
                let js: Vec<&Join> = self.joins.iter().filter(|j| j.kind == k).collect();
                let (p50, max) =
                    p50_max(js.iter().filter_map(|j| Some(j.first_media? - j.joined)).collect());
                json!({
                    "protocol": k.name(),
                    "joins": js.len(),
                    "served": js.iter().filter(|j| j.first_media.is_some()).count(),
                    "failed": js.iter().filter(|j| matches!(j.outcome, Outcome::Failed { excused: false, .. })).count(),
                    "failed_during_outage": js.iter().filter(|j| matches!(j.outcome, Outcome::Failed { excused: true, .. })).count(),
                    "gaps": self.gaps.iter().filter(|g| g.kind == k && !g.excused).count(),
                    "time_to_media_p50_s": p50,
                    "time_to_media_max_s": max,
                })
            })
            .collect();
        let snap = |s: &Snapshot| json!({"at_s": s.at, "rss_kib": s.rss_kib, "fds": s.fds, "clients": s.clients});
        let cpu = match (self.snapshots.first(), self.snapshots.last()) {
            (Some((_, a)), Some((_, b))) if b.at > a.at => match (a.cpu_ticks, b.cpu_ticks) {
                (Some(x), Some(y)) => {
                    Some(y.saturating_sub(x) as f64 / 100.0 / (b.at - a.at) * 100.0)
                }
                _ => None,
            },
            _ => None,
        };
        json!({
            "seconds": s.seconds,
            "elapsed_s": s.elapsed,
            "seed": s.seed,
            "stations": {"stable": s.stations[0], "faulty": s.stations[1]},
            "population_target": s.population,
            "population_peak": self.peak_clients,
            "stall_threshold_s": s.stall,
            "daemon": {
                "pid": s.pid,
                "snapshots": self.snapshots.iter().map(|(l, v)| {
                    let mut o = snap(v);
                    o["label"] = json!(l);
                    o
                }).collect::<Vec<_>>(),
                "peak_rss_kib": self.peak_rss_kib,
                "peak_fds": self.peak_fds,
                "cpu_percent_of_one_core": cpu,
            },
            "joins": self.joins.len(),
            "served": served,
            "by_protocol": by_protocol,
            "failures": self.failures(false),
            "failures_during_outage": self.failures(true),
            "gaps": self.gaps.iter().filter(|g| !g.excused).map(|g| json!({
                "at_s": g.at, "protocol": g.kind.name(), "station": s.stations[g.station],
                "client": g.id, "what": g.what,
            })).collect::<Vec<_>>(),
            "stalls_during_outage": self.gaps.iter().filter(|g| g.excused).count(),
            "outages": outages.list.iter().enumerate().map(|(i, o)| {
                let r = self.recoveries(outages, faulty).into_iter().find(|r| r.0 == i);
                json!({
                    "away_at_s": o.away, "back_at_s": o.back,
                    "station_back_after_s": r.and_then(|r| r.1),
                    "joins_after_back_served": r.map(|r| r.2),
                    "joins_after_back_failed": r.map(|r| r.3),
                })
            }).collect::<Vec<_>>(),
            "reloads": self.reloads.iter().map(|r| json!({"at_s": r.at, "description_changed": r.changed})).collect::<Vec<_>>(),
            "aborted": self.aborted,
            "clean": self.clean(outages, faulty),
        })
    }

    /// The report for a reader.
    pub fn to_text(&self, s: &Setting, outages: &Outages, faulty: usize) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let served = self
            .joins
            .iter()
            .filter(|j| j.first_media.is_some())
            .count();
        let n = self.joins.len();
        let _ =
            writeln!(
            o,
            "soak: {:.0} s of {:.0}; stations {} (stable) and {} (source fails); population {} \
             (peak {}); seed {}",
            s.elapsed, s.seconds, s.stations[0], s.stations[1], s.population, self.peak_clients,
            s.seed
        );
        let _ = writeln!(
            o,
            "joins: {n}, served (reached media) {served} ({:.1}%)",
            if n == 0 {
                0.0
            } else {
                served as f64 * 100.0 / n as f64
            }
        );
        let mut d = format!("daemon pid {}:", s.pid);
        for (l, v) in &self.snapshots {
            let rss = v
                .rss_kib
                .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
            let fds = v.fds.map_or("?".into(), |f| f.to_string());
            let _ = write!(
                d,
                " {l} (t={:.0}s, {} clients) rss={rss} fds={fds};",
                v.at, v.clients
            );
        }
        let _ = writeln!(
            o,
            "{d} peak rss={:.1} MiB fds={}",
            self.peak_rss_kib as f64 / 1024.0,
            self.peak_fds
        );
        for &k in &Kind::ALL {
            let js: Vec<&Join> = self.joins.iter().filter(|j| j.kind == k).collect();
            let (p50, max) = p50_max(
                js.iter()
                    .filter_map(|j| Some(j.first_media? - j.joined))
                    .collect(),
            );
            let _ = writeln!(
                o,
                "  {:9} joins={:5} served={:5} failed={:3} (+{} during outage) gaps={} \
                 time-to-media p50={p50:.2}s max={max:.2}s",
                k.name(),
                js.len(),
                js.iter().filter(|j| j.first_media.is_some()).count(),
                js.iter()
                    .filter(|j| matches!(j.outcome, Outcome::Failed { excused: false, .. }))
                    .count(),
                js.iter()
                    .filter(|j| matches!(j.outcome, Outcome::Failed { excused: true, .. }))
                    .count(),
                self.gaps
                    .iter()
                    .filter(|g| g.kind == k && !g.excused)
                    .count(),
            );
        }
        for (title, m) in [
            ("failures by kind", self.failures(false)),
            (
                "failures while the source was away (expected)",
                self.failures(true),
            ),
        ] {
            if m.is_empty() {
                let _ = writeln!(o, "{title}: none");
                continue;
            }
            let _ = writeln!(o, "{title}:");
            for (k, c) in ranked(&m) {
                let _ = writeln!(o, "  {c:5}x {k}");
            }
        }
        let gaps: Vec<&Gap> = self.gaps.iter().filter(|g| !g.excused).collect();
        let _ = writeln!(
            o,
            "gaps while the source was up: {} (stalls during outages, not counted: {})",
            gaps.len(),
            self.gaps.len() - gaps.len()
        );
        for g in gaps.iter().take(50) {
            let _ = writeln!(
                o,
                "  t={:7.1}s {:9} {} client#{}: {}",
                g.at,
                g.kind.name(),
                s.stations[g.station],
                g.id,
                g.what
            );
        }
        if gaps.len() > 50 {
            let _ = writeln!(o, "  … {} more in the JSON report", gaps.len() - 50);
        }
        let rec = self.recoveries(outages, faulty);
        for (i, out) in outages.list.iter().enumerate() {
            let back = out
                .back
                .map_or("still away".into(), |b| format!("back at {b:.0}s"));
            let r = rec.iter().find(|r| r.0 == i);
            let how = match r {
                Some((_, Some(first), ok, bad)) => format!(
                    "media flowed again {first:.1}s after the return; joins after it: {ok} \
                     served, {bad} failed"
                ),
                Some((_, None, _, bad)) => {
                    format!("the station did NOT come back ({bad} joins after it failed)")
                }
                None => "no join after the return to tell".into(),
            };
            let _ = writeln!(
                o,
                "outage {}: file away at {:.0}s, {back}: {how}",
                i + 1,
                out.away
            );
        }
        let reloads: Vec<String> = self
            .reloads
            .iter()
            .map(|r| {
                format!(
                    "{:.0}s ({})",
                    r.at,
                    if r.changed {
                        "description"
                    } else {
                        "no change"
                    }
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "reloads (SIGHUP): {}",
            if reloads.is_empty() {
                "none".into()
            } else {
                reloads.join(", ")
            }
        );
        if let Some(a) = &self.aborted {
            let _ = writeln!(o, "ABORTED: {a}");
        }
        let _ = writeln!(
            o,
            "verdict: {}",
            if self.clean(outages, faulty) {
                "clean"
            } else {
                "NOT clean (see failures, gaps, outages above)"
            }
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(station: usize, joined: f64, media: Option<f64>, outcome: Outcome) -> Join {
        Join {
            kind: Kind::Mmsh,
            station,
            joined,
            first_media: media,
            outcome,
        }
    }

    #[test]
    fn a_station_that_comes_back_serving_new_joins_is_clean() {
        let mut o = Outages::new(15.0);
        o.begin(60.0);
        o.end(80.0);
        let mut t = Tally::default();
        t.joins.push(join(
            1,
            70.0,
            None,
            Outcome::Failed {
                what: "handshake: x".into(),
                excused: true,
            },
        ));
        t.joins.push(join(1, 85.0, Some(85.1), Outcome::Left));
        t.resumed.push(91.0);
        t.joins.push(join(0, 85.0, Some(85.5), Outcome::Running));
        assert!(t.clean(&o, 1));
        assert_eq!(t.recoveries(&o, 1), [(0, Some(11.0), 1, 0)]);
        let text = t.to_text(
            &Setting {
                seconds: 100.0,
                elapsed: 100.0,
                pid: 1,
                stations: ["a".into(), "b".into()],
                population: 10,
                stall: 2.0,
                seed: 1,
            },
            &o,
            1,
        );
        assert!(
            text.contains("media flowed again 11.0s after the return"),
            "{text}"
        );
        assert!(text.contains("verdict: clean"), "{text}");

        // A join after the return that never plays, or a gap while up, is not clean.
        t.joins.push(join(
            1,
            90.0,
            None,
            Outcome::Failed {
                what: "no media".into(),
                excused: false,
            },
        ));
        assert!(!t.clean(&o, 1));
        let mut t2 = Tally::default();
        t2.gaps.push(Gap {
            at: 5.0,
            id: 2,
            kind: Kind::RtspUdp,
            station: 0,
            what: "RTP seq".into(),
            excused: false,
        });
        assert!(!t2.clean(&Outages::new(15.0), 1));
    }
}
