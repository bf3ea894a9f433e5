//! Cumulative client figures per station and protocol: joins, leaves, drops, and what clients
//! that already left were sent. A live client's own bytes are in the snapshot's client list;
//! once it closes they move here, so the metrics' counters never go backwards. The shell
//! updates this registry when a session joins a station and when its connection closes.

use std::collections::BTreeMap;

use crate::station::sink::ClientInfo;

/// Figures for one (station, protocol).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtocolTotals {
    /// Sessions that joined the station.
    pub joins: u64,
    /// Sessions that ended because the client closed its connection.
    pub leaves: u64,
    /// Sessions the server ended (timeouts, stalls, write errors, station stop).
    pub drops: u64,
    /// Bytes, packets and skips of the sessions that ended.
    pub bytes: u64,
    pub packets: u64,
    pub skips: u64,
    /// Thinning steps of the sessions that ended.
    pub thin_steps: u64,
}

/// The registry, keyed by (station, protocol).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    by: BTreeMap<(String, &'static str), ProtocolTotals>,
}

impl Totals {
    fn entry(&mut self, station: &str, protocol: &'static str) -> &mut ProtocolTotals {
        self.by.entry((station.to_string(), protocol)).or_default()
    }

    /// A session started playing `station` over `protocol`.
    pub fn joined(&mut self, station: &str, protocol: &'static str) {
        self.entry(station, protocol).joins += 1;
    }

    /// A session that played a station ended; `by_peer`: the client closed it.
    pub fn ended(&mut self, info: &ClientInfo, by_peer: bool) {
        let Some(station) = info.station.as_deref() else {
            return;
        };
        let t = self.entry(station, info.protocol);
        if by_peer {
            t.leaves += 1;
        } else {
            t.drops += 1;
        }
        t.bytes += info.bytes;
        t.packets += info.packets;
        t.skips += info.skips;
        t.thin_steps += info.thin_steps;
    }

    /// The figures of one (station, protocol); zero when nothing happened yet.
    pub fn get(&self, station: &str, protocol: &str) -> ProtocolTotals {
        self.by
            .iter()
            .find(|((s, p), _)| s == station && *p == protocol)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }

    /// Every (station, protocol) with figures.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'static str, &ProtocolTotals)> {
        self.by.iter().map(|((s, p), t)| (s.as_str(), *p, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(station: Option<&str>, bytes: u64) -> ClientInfo {
        ClientInfo {
            protocol: "mmsh",
            transport: "http",
            station: station.map(str::to_string),
            user_agent: None,
            playing: true,
            packets: 3,
            bytes,
            skips: 1,
            skipped: 4,
            client_id: None,
            thin_steps: 2,
        }
    }

    #[test]
    fn joins_leaves_drops_and_bytes() {
        let mut t = Totals::default();
        t.joined("demo", "mmsh");
        t.joined("demo", "mmsh");
        t.ended(&info(Some("demo"), 100), true);
        t.ended(&info(Some("demo"), 50), false);
        t.ended(&info(None, 999), true);
        let d = t.get("demo", "mmsh");
        assert_eq!(
            d,
            ProtocolTotals {
                joins: 2,
                leaves: 1,
                drops: 1,
                bytes: 150,
                packets: 6,
                skips: 2,
                thin_steps: 4
            }
        );
        assert_eq!(t.get("demo", "rtsp"), ProtocolTotals::default());
        assert_eq!(t.iter().count(), 1);
    }
}
