//! The running stations as unicast sessions see them ([`StationView`]): header, join backlog,
//! which protocols a station serves, whether it has room for one more client, and the
//! announcement catalog the HTTP routes serve.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::station::catalog::{AnnouncementCatalog, StationEntry};
use crate::station::sink::{Protocol, StationView};
use crate::station::{StationHeader, StationPacket};

use super::station_runtime::StationRuntime;

/// The stations as unicast sessions see them, with the number of clients each has.
pub struct StationsView<'a>(
    pub &'a BTreeMap<String, StationRuntime>,
    pub &'a HashMap<String, Vec<usize>>,
    /// The operators' snapshot as of the last housekeeping tick.
    pub &'a crate::ops::Snapshot,
    /// The server's IP rules (`access:`).
    pub &'a crate::access::ServerAccess,
    /// The clients admitted under the limits, and the server's limits.
    pub &'a super::admitted::Admitted,
    pub &'a crate::access::limits::LimitSet,
);

impl StationView for StationsView<'_> {
    fn snapshot(&self) -> Option<&crate::ops::Snapshot> {
        Some(self.2)
    }

    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        self.0.get(station).and_then(|s| s.hub.header().cloned())
    }

    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        self.0
            .get(station)
            .map(|s| s.hub.join_backlog().cloned().collect())
            .unwrap_or_default()
    }

    fn catalog(&self) -> &dyn AnnouncementCatalog {
        self
    }

    fn has_room(&self, station: &str) -> bool {
        let max = self
            .0
            .get(station)
            .map_or(0, |s| s.config.unicast.max_clients as usize);
        self.1.get(station).map_or(0, Vec::len) < max
    }

    fn may_watch(&self, station: &str, ip: std::net::IpAddr) -> bool {
        self.0
            .get(station)
            .map_or(true, |s| s.config.access.watch.allows(ip))
    }

    fn may_send_logs(&self, ip: std::net::IpAddr) -> bool {
        self.3.log_agent.allows(ip)
    }

    fn protection(&self, station: &str) -> Option<crate::access::gate::Protection> {
        let s = self.0.get(station)?;
        s.config.auth.as_ref().map(|a| a.protection())
    }

    fn live_input(&self, station: &str) -> Option<crate::station::live::LiveInput> {
        self.0.get(station)?.live_input().cloned()
    }

    fn push_protection(&self, station: &str) -> Option<crate::access::gate::Protection> {
        match &self.0.get(station)?.config.source {
            crate::config::Source::Push(p) => p.auth.as_ref().map(|a| a.protection()),
            _ => None,
        }
    }

    fn may_publish(&self, station: &str, ip: std::net::IpAddr) -> bool {
        self.0
            .get(station)
            .is_some_and(|s| crate::access::may_publish(self.3, &s.config.access, ip))
    }

    fn admit(
        &self,
        station: &str,
        admission: &crate::access::limits::Admission,
    ) -> Result<crate::access::limits::Grant, crate::access::limits::Refusal> {
        let rt = self.0.get(station);
        let bitrate = rt
            .and_then(|s| s.hub.header())
            .map_or(0, |h| u64::from(h.header.file.max_bitrate));
        let station_limits = rt.map(|s| s.config.unicast.limits).unwrap_or_default();
        let server_load = if self.5.is_empty() {
            crate::access::limits::Load::default()
        } else {
            self.4.server_load(self.0)
        };
        crate::access::limits::admit(
            (self.5, &server_load),
            (&station_limits, &self.4.station_load(station, bitrate)),
            bitrate,
            admission,
        )
    }

    fn serves(&self, station: &str, protocol: Protocol) -> bool {
        self.0.get(station).is_some_and(|s| {
            let u = &s.config.unicast;
            match protocol {
                // MMS carries no HTTP authentication: a protected station is not served on it.
                Protocol::Mms => u.mms && s.config.auth.is_none(),
                Protocol::Mmsh => u.mmsh,
                Protocol::Rtsp => u.rtsp,
            }
        })
    }
}

impl AnnouncementCatalog for StationsView<'_> {
    fn is_protected(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|s| s.config.auth.is_some())
    }

    fn is_ops_path(&self, path: &str) -> bool {
        crate::ops::web::route(path, &self.2.ops.web).is_some()
    }

    fn is_log_path(&self, path: &str) -> bool {
        use crate::ops::wmlog::url_path;
        path.eq_ignore_ascii_case(crate::ops::wmlog_client::ISAPI_LOG_PATH)
            || self.0.values().any(|rt| {
                rt.config.announcement.log_url.as_deref().and_then(url_path) == Some(path)
            })
    }

    fn stations(&self) -> Vec<StationEntry> {
        self.0
            .values()
            .map(|rt| {
                let a = &rt.config.announcement;
                let mut urls = rt.announcer.unicast_urls();
                // Players that speak MMS over HTTP take it as mmsh:// too.
                if let Some(http) = urls.iter().find(|u| u.starts_with("http://")) {
                    urls.push(http.replacen("http://", "mmsh://", 1));
                }
                StationEntry {
                    name: rt.config.name.clone(),
                    description: rt.config.description.clone().unwrap_or_default(),
                    nsc: rt.announcer.current.nsc.clone(),
                    asx: rt.announcer.current.asx.clone(),
                    nsc_file: a.nsc.clone(),
                    asx_file: a.asx.clone(),
                    urls,
                }
            })
            .collect()
    }
}

/// The operators' view of the running daemon ([`crate::ops::Snapshot`]), taken at `now`.
pub fn snapshot(
    stations: &BTreeMap<String, StationRuntime>,
    conns: &[Option<super::connections::Connection>],
    uptime: std::time::Duration,
    now: std::time::Instant,
) -> crate::ops::Snapshot {
    use crate::ops::{ClientStatus, Snapshot, StationStatus};
    let stations = stations
        .values()
        .map(|rt| {
            let c = &rt.config;
            StationStatus {
                name: c.name.clone(),
                description: c.description.clone().unwrap_or_default(),
                source: rt.source_state(),
                bitrate: rt.hub.header().map_or(0, |h| h.header.file.max_bitrate),
                multicast: c.multicast.as_ref().map(|m| m.destination().to_string()),
                pacing: rt.pacing_text(),
                counters: rt.hub.counters.clone(),
                urls: rt.announcer.unicast_urls(),
                nsc_file: c.multicast.as_ref().map(|_| c.announcement.nsc.clone()),
                asx_file: c.announcement.asx.clone(),
            }
        })
        .collect();
    let clients = conns
        .iter()
        .flatten()
        // Control API connections are operators, not clients.
        .filter(|conn| conn.session.protocol() != "api")
        .map(|conn| ClientStatus {
            id: conn.id,
            peer: conn.peer,
            connected: now.saturating_duration_since(conn.since),
            info: conn.session.info(),
        })
        .collect();
    Snapshot {
        uptime,
        stations,
        clients,
        ops: crate::ops::OpsFigures::default(),
    }
}
