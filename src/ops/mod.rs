//! Operating the box: what the status page, the Prometheus metrics, the control API and the
//! client logs are made from. The shell takes a [`Snapshot`] of the running stations and
//! clients when one of them asks (`crate::net` fills it from the stations' hubs and sources and
//! from each session's [`ClientInfo`]); everything here is pure data and rendering.

pub mod wmlog;
pub mod wmlog_client;

use std::net::SocketAddr;
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
}
