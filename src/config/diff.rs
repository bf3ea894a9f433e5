//! What a reload changes: old and new station lists compared field by field (mediamtx style),
//! so that unchanged stations — their multicast and their connected clients — are untouched;
//! and which parts of the server settings changed, since they take effect differently
//! (limits and RTSP settings for the next connections, announcements at once, listeners and
//! logging only at a restart).

use std::collections::BTreeSet;

use super::Config;

/// The plan a reload carries out, station names sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Equal in both: keep running as they are.
    pub unchanged: Vec<String>,
    /// In both but different: stop, then start with the new config.
    pub restart: Vec<String>,
    /// Only in the old config: stop.
    pub stop: Vec<String>,
    /// Only in the new config: start.
    pub start: Vec<String>,
    /// Which parts of the server settings differ.
    pub server: ServerChanges,
}

/// The parts of the server file a reload changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerChanges {
    /// Listener addresses.
    pub listen: bool,
    /// `announce_dir` or `public_host` (what the .nsc/.asx files say and where they go).
    pub announce: bool,
    /// `limits`.
    pub limits: bool,
    /// `rtsp` delivery settings.
    pub rtsp: bool,
    /// `log`.
    pub log: bool,
}

impl ServerChanges {
    pub fn any(&self) -> bool {
        self.listen || self.announce || self.limits || self.rtsp || self.log
    }
}

/// Compares two configs.
pub fn diff(old: &Config, new: &Config) -> ReloadPlan {
    let names: BTreeSet<&str> = old
        .stations
        .iter()
        .chain(new.stations.iter())
        .map(|s| s.name.as_str())
        .collect();
    let (a, b) = (&old.server, &new.server);
    let mut plan = ReloadPlan {
        server: ServerChanges {
            listen: a.listen != b.listen,
            announce: a.announce_dir != b.announce_dir || a.public_host != b.public_host,
            limits: a.limits != b.limits,
            rtsp: a.rtsp != b.rtsp,
            log: a.log != b.log,
        },
        ..ReloadPlan::default()
    };
    for name in names {
        let list = match (old.station(name), new.station(name)) {
            (Some(a), Some(b)) if a == b => &mut plan.unchanged,
            (Some(_), Some(_)) => &mut plan.restart,
            (Some(_), None) => &mut plan.stop,
            (None, Some(_)) => &mut plan.start,
            (None, None) => continue,
        };
        list.push(name.to_string());
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_station, ServerConfig};
    use std::path::Path;

    fn station(name: &str, ttl: u8, file: &str) -> crate::config::StationConfig {
        let text = format!(
            "name: {name}\nsource:\n  type: playlist\n  files: [/media/{file}]\n\
             multicast:\n  group: 239.1.1.{ttl}\n  port: 1234\n  interface: lo\n  ttl: {ttl}\n"
        );
        parse_station(Path::new(&format!("/etc/asfcast/{name}.yaml")), &text).unwrap()
    }

    fn config(stations: Vec<crate::config::StationConfig>) -> Config {
        Config {
            server: ServerConfig::default(),
            stations,
        }
    }

    #[test]
    fn sorts_stations_into_unchanged_restart_stop_start() {
        let old = config(vec![
            station("a", 1, "a.asf"),
            station("b", 2, "b.asf"),
            station("c", 3, "c.asf"),
        ]);
        let new = config(vec![
            station("a", 1, "a.asf"),
            station("b", 2, "other.asf"),
            station("d", 4, "d.asf"),
        ]);
        let plan = diff(&old, &new);
        assert_eq!(plan.unchanged, ["a"]);
        assert_eq!(plan.restart, ["b"]);
        assert_eq!(plan.stop, ["c"]);
        assert_eq!(plan.start, ["d"]);
        assert!(!plan.server.any());
    }

    #[test]
    fn moving_a_station_to_another_file_is_not_a_change() {
        let a = station("a", 1, "a.asf");
        let mut moved = a.clone();
        moved.file = "/etc/asfcast/renamed.yaml".into();
        let plan = diff(&config(vec![a]), &config(vec![moved]));
        assert_eq!(plan.unchanged, ["a"]);
    }

    #[test]
    fn any_field_change_restarts_and_server_changes_are_flagged() {
        let a = station("a", 1, "a.asf");
        let mut ttl = a.clone();
        if let Some(m) = ttl.multicast.as_mut() {
            m.ttl = 9;
        }
        let mut new = config(vec![ttl]);
        new.server.limits.max_clients = 5;
        let plan = diff(&config(vec![a]), &new);
        assert_eq!(plan.restart, ["a"]);
        assert_eq!(
            plan.server,
            ServerChanges {
                limits: true,
                ..ServerChanges::default()
            }
        );
    }

    #[test]
    fn each_part_of_the_server_file_is_told_apart() {
        let old = config(vec![station("a", 1, "a.asf")]);
        let mut new = old.clone();
        new.server.announce_dir = "/srv/other".into();
        new.server.rtsp.mtu = 1000;
        let plan = diff(&old, &new);
        assert_eq!(plan.unchanged, ["a"], "server changes restart no station");
        assert_eq!(
            plan.server,
            ServerChanges {
                announce: true,
                rtsp: true,
                ..ServerChanges::default()
            }
        );
        let mut new = old.clone();
        new.server.listen.http.clear();
        new.server.public_host = Some("box.example".into());
        let plan = diff(&old, &new);
        assert!(plan.server.listen && plan.server.announce && !plan.server.limits);
    }
}
