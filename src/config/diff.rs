//! What a reload changes: old and new station lists compared field by field (mediamtx style),
//! so that unchanged stations — their multicast and their connected clients — are untouched;
//! and which parts of the server settings changed, since they take effect differently
//! (limits and RTSP settings for the next connections, announcements at once, listeners and
//! logging only at a restart).
//!
//! A changed station is restarted only when its stream changes: a restart ends every client
//! and starts the MSB stream anew (new packet ids, receivers resynchronise), so a mere
//! announcement edit must not cause one. [`station_change`] sorts every [`StationConfig`]
//! field into one of three kinds:
//!
//! - **announcement only** — `description`, `announcement.{nsc, asx, unicast_url, log_url,
//!   alternates}`:
//!   what the .nsc/.asx (and the HTTP catalog) say. Applied in place: the files are rewritten
//!   (old-named ones removed), the stream and its clients are untouched.
//! - **unicast settings** — `unicast.max_clients` and the `mms`/`mmsh`/`rtsp` switches: read
//!   when a client connects, so applied in place for new clients; the switches also change the
//!   announced URLs. Clients of a protocol that is switched off are ended (the reload applies
//!   that, see `net::reload`); clients above a lowered `max_clients` stay. The station's
//!   `access` lists are the same kind: asked when a client names the station, so they apply
//!   to the next requests and connected clients stay.
//! - **stream** — `source` and everything in `multicast` (adding or removing it, group, port,
//!   interface, ttl, fec_span, beacon_interval, dscp, loopback, send_buffer, smoothing): what the stream
//!   is made of or the socket and MSB sender it goes out on, fixed when the station starts.
//!   Restart.

use std::collections::BTreeSet;

use super::{Config, StationConfig};

/// The plan a reload carries out, station names sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Equal in both: keep running as they are.
    pub unchanged: Vec<String>,
    /// In both, differing only in what applies in place (announcements, unicast settings):
    /// keep running with the new config, announcements rewritten.
    pub update: Vec<String>,
    /// In both with a different stream: stop, then start with the new config.
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

/// How one station present in both configs changed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationChange {
    /// Equal: nothing to do.
    Unchanged,
    /// Only announcement, unicast or auth settings differ: apply in place (a changed users
    /// file applies to the next request; clients already playing go on).
    InPlace,
    /// The stream differs; the field named is the first that does.
    Restart(&'static str),
}

/// Classifies the change of one station between two configs.
pub fn station_change(old: &StationConfig, new: &StationConfig) -> StationChange {
    // Destructured so that a new field has to be classified here.
    let StationConfig {
        file: _,
        name: _,
        description: _,
        source,
        multicast,
        unicast: _,
        announcement: _,
        access: _,
        auth: _,
    } = old;
    if *source != new.source {
        StationChange::Restart("source")
    } else if *multicast != new.multicast {
        StationChange::Restart("multicast")
    } else if old == new {
        StationChange::Unchanged
    } else {
        StationChange::InPlace
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
            (Some(a), Some(b)) => match station_change(a, b) {
                StationChange::Unchanged => &mut plan.unchanged,
                StationChange::InPlace => &mut plan.update,
                StationChange::Restart(_) => &mut plan.restart,
            },
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
    use crate::config::{parse_station, Interface, Multicast, ServerConfig, Source};
    use std::net::Ipv4Addr;
    use std::path::Path;
    use std::time::Duration;

    fn station(name: &str, ttl: u8, file: &str) -> StationConfig {
        let text = format!(
            "name: {name}\nsource:\n  type: playlist\n  files: [/media/{file}]\n\
             multicast:\n  group: 239.1.1.{ttl}\n  port: 1234\n  interface: lo\n  ttl: {ttl}\n"
        );
        parse_station(Path::new(&format!("/etc/asfcast/{name}.yaml")), &text).unwrap()
    }

    fn config(stations: Vec<StationConfig>) -> Config {
        Config {
            server: ServerConfig::default(),
            stations,
            network: None,
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

    /// One edit of a station and how a reload must apply it.
    type Edit = (&'static str, fn(&mut StationConfig), StationChange);

    const EDITS: &[Edit] = &[
        ("nothing", |_| {}, StationChange::Unchanged),
        (
            "yaml file",
            |s| s.file = "/elsewhere.yaml".into(),
            StationChange::Unchanged,
        ),
        (
            "description",
            |s| s.description = Some("News".into()),
            StationChange::InPlace,
        ),
        (
            "nsc name",
            |s| s.announcement.nsc = "news.nsc".into(),
            StationChange::InPlace,
        ),
        (
            "asx name",
            |s| s.announcement.asx = "news.asx".into(),
            StationChange::InPlace,
        ),
        (
            "unicast_url",
            |s| s.announcement.unicast_url = Some("mms://box/a".into()),
            StationChange::InPlace,
        ),
        (
            "log_url",
            |s| s.announcement.log_url = Some("http://box/log".into()),
            StationChange::InPlace,
        ),
        (
            "alternates",
            |s| s.announcement.alternates = vec!["http://box/news-300k.nsc".into()],
            StationChange::InPlace,
        ),
        (
            "max_clients",
            |s| s.unicast.max_clients = 3,
            StationChange::InPlace,
        ),
        ("mms off", |s| s.unicast.mms = false, StationChange::InPlace),
        (
            "mmsh off",
            |s| s.unicast.mmsh = false,
            StationChange::InPlace,
        ),
        (
            "rtsp off",
            |s| s.unicast.rtsp = false,
            StationChange::InPlace,
        ),
        (
            "playlist files",
            |s| {
                let Source::Playlist(p) = &mut s.source else {
                    unreachable!("the test station is a playlist")
                };
                p.files.push("/media/b.asf".into());
            },
            StationChange::Restart("source"),
        ),
        (
            "playlist loop",
            |s| {
                let Source::Playlist(p) = &mut s.source else {
                    unreachable!("the test station is a playlist")
                };
                p.looping = !p.looping;
            },
            StationChange::Restart("source"),
        ),
        (
            "multicast removed",
            |s| s.multicast = None,
            StationChange::Restart("multicast"),
        ),
        (
            "group",
            |s| multicast(s).group = Ipv4Addr::new(239, 9, 9, 9).into(),
            StationChange::Restart("multicast"),
        ),
        (
            "port",
            |s| multicast(s).port = 999,
            StationChange::Restart("multicast"),
        ),
        (
            "interface",
            |s| multicast(s).interface = Interface::Name("eth0".into()),
            StationChange::Restart("multicast"),
        ),
        (
            "ttl",
            |s| multicast(s).ttl = 9,
            StationChange::Restart("multicast"),
        ),
        (
            "fec_span",
            |s| multicast(s).fec_span = 0,
            StationChange::Restart("multicast"),
        ),
        (
            "beacon_interval",
            |s| multicast(s).beacon_interval = Duration::from_secs(5),
            StationChange::Restart("multicast"),
        ),
        (
            "dscp",
            |s| multicast(s).dscp = 10,
            StationChange::Restart("multicast"),
        ),
        (
            "loopback",
            |s| multicast(s).loopback = false,
            StationChange::Restart("multicast"),
        ),
        (
            "send_buffer",
            |s| multicast(s).send_buffer = Some(1 << 20),
            StationChange::Restart("multicast"),
        ),
        (
            "smoothing",
            |s| multicast(s).smoothing = Some(Duration::from_secs(1)),
            StationChange::Restart("multicast"),
        ),
        (
            "description and source",
            |s| {
                s.description = Some("News".into());
                let Source::Playlist(p) = &mut s.source else {
                    unreachable!("the test station is a playlist")
                };
                p.looping = !p.looping;
            },
            StationChange::Restart("source"),
        ),
    ];

    fn multicast(s: &mut StationConfig) -> &mut Multicast {
        match s.multicast.as_mut() {
            Some(m) => m,
            None => panic!("the test station has multicast"),
        }
    }

    #[test]
    fn each_field_is_classified() {
        let a = station("a", 1, "a.asf");
        for (what, edit, want) in EDITS {
            let mut b = a.clone();
            edit(&mut b);
            assert_eq!(station_change(&a, &b), *want, "{what}");
            let plan = diff(&config(vec![a.clone()]), &config(vec![b]));
            let list = match want {
                StationChange::Unchanged => &plan.unchanged,
                StationChange::InPlace => &plan.update,
                StationChange::Restart(_) => &plan.restart,
            };
            assert_eq!(list, &["a"], "{what}: {plan:?}");
        }
        // Adding multicast to a unicast-only station restarts it too.
        let mut unicast_only = a.clone();
        unicast_only.multicast = None;
        assert_eq!(
            station_change(&unicast_only, &a),
            StationChange::Restart("multicast")
        );
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
    fn a_stream_change_restarts_and_server_changes_are_flagged() {
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
