//! The announcement catalog as one client sees it: the stations' catalog with the station
//! `access.watch` rules applied for the client's address ([`StationView::may_watch`]).
//!
//! Why a wrapper: the announcement routes ([`super::announce`]) are pure over a catalog and
//! know nothing of clients; the session knows its peer. Wrapping keeps the routes and the
//! shell's catalog unchanged.

use std::net::IpAddr;

use crate::station::catalog::{AnnouncementCatalog, StationEntry};
use crate::station::sink::StationView;

/// [`StationView::catalog`] for the client at `ip`.
pub struct PeerCatalog<'a> {
    pub stations: &'a dyn StationView,
    pub ip: IpAddr,
}

impl AnnouncementCatalog for PeerCatalog<'_> {
    fn stations(&self) -> Vec<StationEntry> {
        self.stations.catalog().stations()
    }

    fn is_ops_path(&self, path: &str) -> bool {
        self.stations.catalog().is_ops_path(path)
    }

    fn is_log_path(&self, path: &str) -> bool {
        self.stations.catalog().is_log_path(path)
    }

    fn may_serve(&self, station: &str) -> bool {
        self.stations.may_watch(station, self.ip)
    }
}
