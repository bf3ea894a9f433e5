//! Operating the box: what the status page, the Prometheus metrics, the control API and the
//! client logs are made from. The shell takes a [`Snapshot`] of the running stations and
//! clients when one of them asks (`crate::net` fills it from the stations' hubs and sources and
//! from each session's [`ClientInfo`]); everything here is pure data and rendering.
//!
//! The web views on the HTTP listener: [`status`] (the HTML status pages, with the
//! [`history`] chart) and [`metrics`] (Prometheus text), routed by [`web`]. What they need
//! beyond the instant's stations and clients is in [`OpsFigures`]: cumulative [`totals`],
//! the [`history`] ring, [`histogram`]s the shell measures, and [`process`] figures.

pub mod histogram;
pub mod history;
pub mod html;
pub mod metrics;
pub mod process;
pub mod status;
pub mod totals;
pub mod web;

pub mod api;
pub mod api_session;
pub mod wmlog;
pub mod wmlog_client;
pub mod wmlog_join;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::station::sink::ClientInfo;
use crate::station::source::SourceState;
use crate::station::StationCounters;

/// The daemon as the operators' views see it at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time since the daemon started.
    pub uptime: Duration,
    pub stations: Vec<StationStatus>,
    pub clients: Vec<ClientStatus>,
    /// What the status page and the metrics need beyond the instant (filled by the shell).
    pub ops: OpsFigures,
}

/// Cumulative and measured figures the shell keeps for the web views.
#[derive(Debug, Clone)]
pub struct OpsFigures {
    /// Joins, leaves, drops and what departed clients were sent, per station and protocol.
    pub totals: totals::Totals,
    /// The last hour per station (shared: copied into every snapshot without cloning).
    pub history: Arc<history::History>,
    /// Per station: pacing lateness, source and multicast counters.
    pub stations: BTreeMap<String, StationFigures>,
    /// Time the loop spent between two waits.
    pub loop_turn: histogram::Histogram,
    /// How late the loop woke after the deadline it armed the timer for.
    pub timer_lateness: histogram::Histogram,
    /// Resident memory, descriptors, CPU time (None when not read).
    pub process: Option<process::ProcessFigures>,
    /// Which web views are on (the server's `status:` and `metrics:`).
    pub web: web::WebConfig,
    /// Which configuration runs and what is wrong with the config directory.
    pub config: ConfigState,
}

/// Which configuration the daemon runs, and the errors of the config directory that kept it
/// from running that directory as it is (shown on the status page, by `GET
/// /v1/config/errors` and as `asfcast_config_errors`).
#[derive(Debug, Clone, Default)]
pub struct ConfigState {
    pub running: ConfigOrigin,
    /// Empty when the config directory is valid.
    pub errors: Arc<Vec<crate::config::ConfigError>>,
}

/// Where the running configuration came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// The config directory as it is.
    #[default]
    Current,
    /// The last configuration that validated (the directory has errors).
    LastGood,
    /// Neither: the directory has errors and there is no last-good copy; no stations run.
    Fallback,
}

impl ConfigOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigOrigin::Current => "config",
            ConfigOrigin::LastGood => "last-good",
            ConfigOrigin::Fallback => "none",
        }
    }
}

impl Default for OpsFigures {
    fn default() -> Self {
        OpsFigures {
            totals: totals::Totals::default(),
            history: Arc::default(),
            stations: BTreeMap::new(),
            loop_turn: histogram::Histogram::new(histogram::LOOP_BOUNDS),
            timer_lateness: histogram::Histogram::new(histogram::LOOP_BOUNDS),
            process: None,
            web: web::WebConfig::default(),
            config: ConfigState::default(),
        }
    }
}

/// Figures the shell's station runtime measures.
#[derive(Debug, Clone)]
pub struct StationFigures {
    /// How late station packets went out after their due time.
    pub pacing_lateness: histogram::Histogram,
    /// Source entries (files, connections) started and failed.
    pub source_started: u64,
    pub source_failed: u64,
    /// Times the source was reported lost.
    pub source_lost: u64,
    /// MSB datagrams sent to the multicast group: data, FEC parity, beacons.
    pub msb_data: u64,
    pub msb_parity: u64,
    pub msb_beacons: u64,
    /// How the multicast datagrams are paced: "txtime" (the kernel, `SO_TXTIME`) or
    /// "timer" (the loop); None without multicast.
    pub pacing_path: Option<&'static str>,
    /// Datagrams smoothing held past their due time, and those held to the bound.
    pub smoothing_held: u64,
    pub smoothing_at_bound: u64,
    /// Sends that carried several MSB datagrams as one segmented send (`UDP_SEGMENT`).
    pub msb_segmented_sends: u64,
}

impl Default for StationFigures {
    fn default() -> Self {
        StationFigures {
            pacing_lateness: histogram::Histogram::new(histogram::LATENESS_BOUNDS),
            source_started: 0,
            source_failed: 0,
            source_lost: 0,
            msb_data: 0,
            msb_parity: 0,
            msb_beacons: 0,
            pacing_path: None,
            smoothing_held: 0,
            smoothing_at_bound: 0,
            msb_segmented_sends: 0,
        }
    }
}

/// One station.
#[derive(Debug, Clone)]
pub struct StationStatus {
    pub name: String,
    pub description: String,
    /// What its source is doing.
    pub source: SourceState,
    /// The current header's declared bit rate (File Properties maximum bit rate), bits/s.
    pub bitrate: u32,
    /// The multicast destination (`group:port`), when the station has one.
    pub multicast: Option<String>,
    /// How its multicast is paced and why (path, reason, smoothing), when it has one.
    pub pacing: Option<String>,
    /// The hub's counters (packets, bytes, header changes, bad packets).
    pub counters: StationCounters,
    /// Player URLs (mms://, rtsp://, http://) and the announcement file names.
    pub urls: Vec<String>,
    pub nsc_file: Option<String>,
    pub asx_file: String,
}

/// One connected client.
#[derive(Debug, Clone)]
pub struct ClientStatus {
    /// The connection's id (unique for the life of the process).
    pub id: u64,
    pub peer: SocketAddr,
    /// How long it has been connected.
    pub connected: Duration,
    pub info: ClientInfo,
}

impl Snapshot {
    /// Clients of `station` playing over `protocol`.
    pub fn clients_of(&self, station: &str, protocol: &str) -> usize {
        self.clients
            .iter()
            .filter(|c| c.info.station.as_deref() == Some(station) && c.info.protocol == protocol)
            .count()
    }

    /// Clients playing `station` over `protocol` (media flowing).
    pub fn playing(&self, station: &str, protocol: &str) -> usize {
        self.clients
            .iter()
            .filter(|c| {
                c.info.playing
                    && c.info.station.as_deref() == Some(station)
                    && c.info.protocol == protocol
            })
            .count()
    }
}

/// The unicast protocols a station's clients use, in the order the views list them.
pub const PROTOCOLS: [&str; 3] = ["mms", "mmsh", "rtsp"];

#[cfg(test)]
pub(crate) mod test_support {
    //! Snapshots for the views' unit tests.
    use super::*;

    pub fn station(name: &str, bytes: u64) -> StationStatus {
        StationStatus {
            name: name.into(),
            description: format!("The {name} station"),
            source: SourceState::Playing {
                origin: "/srv/media/demo.asf".into(),
            },
            bitrate: 128_000,
            multicast: Some("239.255.1.1:4000".into()),
            pacing: Some("timer (root qdisc noqueue ignores SO_TXTIME)".into()),
            counters: StationCounters {
                bytes,
                ..StationCounters::default()
            },
            urls: vec![format!("mms://box/{name}"), format!("rtsp://box/{name}")],
            nsc_file: Some(format!("{name}.nsc")),
            asx_file: format!("{name}.asx"),
        }
    }

    pub fn client(
        id: u64,
        station: &str,
        protocol: &'static str,
        ua: Option<&str>,
    ) -> ClientStatus {
        ClientStatus {
            id,
            peer: SocketAddr::from(([192, 0, 2, 1], 40_000 + id as u16)),
            connected: Duration::from_secs(65),
            info: ClientInfo {
                protocol,
                transport: "tcp",
                station: Some(station.into()),
                user_agent: ua.map(str::to_string),
                playing: true,
                packets: 10,
                bytes: 1000,
                skips: 1,
                skipped: 5,
                client_id: None,
                thin_steps: 2,
            },
        }
    }
}
