//! The last hour of each station, for the status page's chart: a ring of samples (clients
//! playing it, and the bit rate it actually produced) the shell takes every
//! [`SAMPLE_INTERVAL`]. Pure data: the shell hands it the snapshot and the instant.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::Snapshot;

/// How often the shell samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept per station: one hour at [`SAMPLE_INTERVAL`].
pub const CAPACITY: usize = 360;

/// One sample of one station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Daemon uptime at the sample.
    pub at: Duration,
    /// Clients playing the station.
    pub clients: u32,
    /// Bits per second the station's hub produced since the previous sample.
    pub bitrate: u64,
}

/// Per station: its samples, oldest first, and the hub byte count at the last sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    stations: BTreeMap<String, (VecDeque<Point>, u64)>,
    last_at: Option<Duration>,
}

impl History {
    /// Whether a sample is due at uptime `at`.
    pub fn due(&self, at: Duration) -> bool {
        self.last_at
            .map_or(true, |last| at >= last + SAMPLE_INTERVAL)
    }

    /// Takes one sample of every station in `snap` (stations gone are forgotten).
    pub fn sample(&mut self, snap: &Snapshot) {
        let at = snap.uptime;
        let elapsed = self.last_at.map(|l| at.saturating_sub(l));
        self.stations
            .retain(|name, _| snap.stations.iter().any(|s| &s.name == name));
        for s in &snap.stations {
            let clients = snap
                .clients
                .iter()
                .filter(|c| c.info.playing && c.info.station.as_deref() == Some(s.name.as_str()))
                .count();
            let (ring, last_bytes) = self
                .stations
                .entry(s.name.clone())
                .or_insert_with(|| (VecDeque::with_capacity(CAPACITY), s.counters.bytes));
            let bytes = s.counters.bytes.saturating_sub(*last_bytes);
            *last_bytes = s.counters.bytes;
            let bitrate = match elapsed {
                Some(e) if !e.is_zero() => {
                    (u128::from(bytes) * 8 * 1000 / e.as_millis().max(1)) as u64
                }
                _ => 0,
            };
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(Point {
                at,
                clients: u32::try_from(clients).unwrap_or(u32::MAX),
                bitrate,
            });
        }
        self.last_at = Some(at);
    }

    /// The samples of `station`, oldest first.
    pub fn points(&self, station: &str) -> Vec<Point> {
        self.stations
            .get(station)
            .map(|(r, _)| r.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{client, station};

    #[test]
    fn samples_clients_and_rate_and_keeps_an_hour() {
        let mut h = History::default();
        let mut snap = Snapshot {
            uptime: Duration::from_secs(0),
            stations: vec![station("demo", 1000)],
            clients: vec![client(1, "demo", "mmsh", None)],
            ..Snapshot::default()
        };
        assert!(h.due(snap.uptime));
        h.sample(&snap);
        snap.uptime = Duration::from_secs(5);
        assert!(!h.due(snap.uptime));
        snap.uptime = Duration::from_secs(10);
        snap.stations[0].counters.bytes = 1000 + 12_500; // 10 kbit/s over 10 s
        snap.clients.push(client(2, "demo", "rtsp", None));
        h.sample(&snap);
        let p = h.points("demo");
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].clients, p[0].bitrate), (1, 0));
        assert_eq!((p[1].clients, p[1].bitrate), (2, 10_000));
        for i in 2..(CAPACITY as u64 + 10) {
            snap.uptime = Duration::from_secs(10 * i);
            h.sample(&snap);
        }
        assert_eq!(h.points("demo").len(), CAPACITY);
        snap.stations.clear();
        h.sample(&snap);
        assert!(h.points("demo").is_empty());
    }
}
