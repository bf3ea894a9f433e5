//! The clients admitted under the limits ([`crate::access::limits`]), counted per station and
//! kind, so [`super::stations::StationsView::admit`] answers from counts instead of walking
//! every connection. The loop updates it after every event of a connection from what the
//! session says ([`crate::station::sink::Session::admitted`]), and when it closes; a new
//! client is therefore counted before the next one asks, even within one loop turn.
//!
//! Bandwidth is counted as clients × the station's current header's bit rate (all clients of
//! a station play the same header), so a header change re-prices every client at once.

use std::collections::{BTreeMap, HashMap};

use crate::access::limits::{Kind, Load};

use super::station_runtime::StationRuntime;

/// Admitted clients: per connection slot what it was counted as, and per station the counts.
#[derive(Debug, Default)]
pub struct Admitted {
    by_conn: Vec<Option<(String, Kind)>>,
    counts: HashMap<String, [u32; 2]>,
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Player => 0,
        Kind::Distribution => 1,
    }
}

impl Admitted {
    /// Connection `idx` now holds a place as `kind` on `station` (or none).
    pub fn update(&mut self, idx: usize, station: Option<&str>, kind: Option<Kind>) {
        let now = station.zip(kind);
        let same = match (self.by_conn.get(idx).and_then(Option::as_ref), now) {
            (None, None) => true,
            (Some((s, k)), Some((s2, k2))) => s == s2 && *k == k2,
            _ => false,
        };
        if same {
            return;
        }
        self.remove(idx);
        if let Some((s, k)) = now {
            if self.by_conn.len() <= idx {
                self.by_conn.resize(idx + 1, None);
            }
            self.by_conn[idx] = Some((s.to_string(), k));
            let c = self.counts.entry(s.to_string()).or_default();
            c[slot(k)] += 1;
        }
    }

    /// Connection `idx` is gone.
    pub fn remove(&mut self, idx: usize) {
        let Some((station, kind)) = self.by_conn.get_mut(idx).and_then(Option::take) else {
            return;
        };
        if let Some(c) = self.counts.get_mut(&station) {
            c[slot(kind)] = c[slot(kind)].saturating_sub(1);
            if *c == [0, 0] {
                self.counts.remove(&station);
            }
        }
    }

    /// The load of one station at `bitrate` bits per second a client.
    pub fn station_load(&self, station: &str, bitrate: u64) -> Load {
        let mut load = Load::default();
        if let Some(c) = self.counts.get(station) {
            load.add(Kind::Player, c[0], bitrate);
            load.add(Kind::Distribution, c[1], bitrate);
        }
        load
    }

    /// The load of the whole box, each station's clients at its current bit rate.
    pub fn server_load(&self, stations: &BTreeMap<String, StationRuntime>) -> Load {
        let mut load = Load::default();
        for (name, c) in &self.counts {
            let bitrate = stations
                .get(name)
                .and_then(|rt| rt.hub.header())
                .map_or(0, |h| u64::from(h.header.file.max_bitrate));
            load.add(Kind::Player, c[0], bitrate);
            load.add(Kind::Distribution, c[1], bitrate);
        }
        load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_sessions() {
        let mut a = Admitted::default();
        a.update(3, Some("news"), Some(Kind::Player));
        a.update(3, Some("news"), Some(Kind::Player));
        a.update(7, Some("news"), Some(Kind::Distribution));
        a.update(9, Some("news"), None);
        let l = a.station_load("news", 400_000);
        assert_eq!((l.players, l.distribution, l.player_bps), (1, 1, 400_000));
        a.update(3, Some("sport"), Some(Kind::Player));
        assert_eq!(a.station_load("news", 1).players, 0);
        assert_eq!(a.station_load("sport", 1).players, 1);
        a.remove(3);
        a.remove(7);
        a.remove(42);
        assert!(a.counts.is_empty());
    }
}
