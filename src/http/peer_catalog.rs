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

    fn is_protected(&self, name: &str) -> bool {
        self.stations.catalog().is_protected(name)
    }

    fn may_serve(&self, station: &str) -> bool {
        self.stations.may_watch(station, self.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::catalog::AnnouncementCatalog;

    /// Every question the routes ask goes through the wrapper to the shell's catalog (a
    /// forgotten method silently answers its default: the .nsc of a protected station was
    /// served without a challenge that way).
    #[test]
    fn the_wrapper_forwards_every_catalog_question() {
        struct Inner;
        impl AnnouncementCatalog for Inner {
            fn stations(&self) -> Vec<StationEntry> {
                Vec::new()
            }
            fn is_ops_path(&self, _: &str) -> bool {
                true
            }
            fn is_log_path(&self, _: &str) -> bool {
                true
            }
            fn is_protected(&self, _: &str) -> bool {
                true
            }
        }
        struct View(Inner);
        impl StationView for View {
            fn header(&self, _: &str) -> Option<std::sync::Arc<crate::station::StationHeader>> {
                None
            }
            fn join_backlog(&self, _: &str) -> Vec<std::sync::Arc<crate::station::StationPacket>> {
                Vec::new()
            }
            fn serves(&self, _: &str, _: crate::station::sink::Protocol) -> bool {
                true
            }
            fn catalog(&self) -> &dyn AnnouncementCatalog {
                &self.0
            }
        }
        let v = View(Inner);
        let c = PeerCatalog {
            stations: &v,
            ip: [127, 0, 0, 1].into(),
        };
        assert!(c.is_ops_path("/x") && c.is_log_path("/x") && c.is_protected("demo"));
        assert!(c.may_serve("demo"));
    }
}
