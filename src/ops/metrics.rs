//! The Prometheus metrics page (text exposition format 0.0.4), rendered from a [`Snapshot`].
//!
//! Why hand-written: a few dozen families from data the shell already keeps; no registry
//! crate, no global state. Rules followed: one `# HELP` and `# TYPE` per family, counters end
//! in `_total`, label values escape `\\`, `"` and newline, `\n` line ends (the last line too).
//! Labels are per station and protocol only — never per client (cardinality); the client list
//! is on the status page.
//!
//! Counters of clients (bytes, packets, skips) are the departed clients' totals plus the live
//! clients' own counts, both from the same snapshot, so they never go backwards.

use std::fmt::Write;

use super::histogram::Histogram;
use super::{Snapshot, StationFigures, PROTOCOLS};
use crate::station::source::SourceState;

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The source states `asfcast_source_state` reports, one series each.
const STATES: [&str; 4] = ["starting", "playing", "lost", "ended"];

fn state_name(s: &SourceState) -> &'static str {
    match s {
        SourceState::Starting => "starting",
        SourceState::Playing { .. } => "playing",
        SourceState::Lost { .. } => "lost",
        SourceState::Ended => "ended",
    }
}

/// Escapes a label value.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family being written.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label_value(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        for (bound, n) in h.cumulative() {
            let le = if bound.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{bound}")
            };
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, n);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, h.count());
    }
}

/// What one (station, protocol) row of the client families holds.
#[derive(Default, Clone, Copy)]
struct ClientRow {
    clients: usize,
    joins: u64,
    leaves: u64,
    drops: u64,
    bytes: u64,
    packets: u64,
    skips: u64,
    thin_steps: u64,
}

fn client_rows(snap: &Snapshot) -> Vec<(&str, &'static str, ClientRow)> {
    let mut rows = Vec::new();
    for s in &snap.stations {
        for protocol in PROTOCOLS {
            let t = snap.ops.totals.get(&s.name, protocol);
            let mut row = ClientRow {
                clients: snap.playing(&s.name, protocol),
                joins: t.joins,
                leaves: t.leaves,
                drops: t.drops,
                bytes: t.bytes,
                packets: t.packets,
                skips: t.skips,
                thin_steps: t.thin_steps,
            };
            for c in snap.clients.iter().filter(|c| {
                c.info.station.as_deref() == Some(s.name.as_str()) && c.info.protocol == protocol
            }) {
                row.bytes += c.info.bytes;
                row.packets += c.info.packets;
                row.skips += c.info.skips;
                row.thin_steps += c.info.thin_steps;
            }
            rows.push((s.name.as_str(), protocol, row));
        }
    }
    rows
}

/// The whole page.
pub fn render(snap: &Snapshot) -> String {
    let mut o = Out(String::with_capacity(8192));
    o.family(
        "asfcast_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    o.sample("asfcast_uptime_seconds", &[], snap.uptime.as_secs_f64());
    o.family(
        "asfcast_config_errors",
        "gauge",
        "Errors in the config directory (0: it runs as it is).",
    );
    #[allow(clippy::cast_precision_loss)]
    o.sample(
        "asfcast_config_errors",
        &[],
        snap.ops.config.errors.len() as f64,
    );
    o.family(
        "asfcast_config_last_good",
        "gauge",
        "1 while the config directory has errors and an earlier configuration runs instead (or none).",
    );
    let fallback = snap.ops.config.running != super::ConfigOrigin::Current;
    o.sample(
        "asfcast_config_last_good",
        &[],
        if fallback { 1.0 } else { 0.0 },
    );

    let rows = client_rows(snap);
    type Pick = fn(&ClientRow) -> u64;
    let families: [(&str, &str, &str, Pick); 8] = [
        (
            "asfcast_clients",
            "gauge",
            "Unicast clients playing the station.",
            |r| r.clients as u64,
        ),
        (
            "asfcast_client_joins_total",
            "counter",
            "Clients that joined the station.",
            |r| r.joins,
        ),
        (
            "asfcast_client_leaves_total",
            "counter",
            "Clients that ended their session themselves (closed or reset the connection, RTSP TEARDOWN, MMS CloseFile).",
            |r| r.leaves,
        ),
        (
            "asfcast_client_drops_total",
            "counter",
            "Clients the server ended (timeout, stall, write error, station stop or reload).",
            |r| r.drops,
        ),
        (
            "asfcast_sent_bytes_total",
            "counter",
            "Stream bytes queued to clients (live and departed).",
            |r| r.bytes,
        ),
        (
            "asfcast_sent_packets_total",
            "counter",
            "Media packets queued to clients (live and departed).",
            |r| r.packets,
        ),
        (
            "asfcast_client_skips_total",
            "counter",
            "Times a client behind skipped to the next clean point.",
            |r| r.skips,
        ),
        (
            "asfcast_client_thinning_steps_total",
            "counter",
            "Thinning steps (lower rendition, key frames only, audio only, and back up) the server took for clients behind.",
            |r| r.thin_steps,
        ),
    ];
    for (name, kind, help, pick) in families {
        o.family(name, kind, help);
        for (station, protocol, row) in &rows {
            o.sample(
                name,
                &[("station", station), ("protocol", protocol)],
                pick(row),
            );
        }
    }

    o.family(
        "asfcast_source_state",
        "gauge",
        "The station's source state: 1 for the current one.",
    );
    for s in &snap.stations {
        let now = state_name(&s.source);
        for st in STATES {
            o.sample(
                "asfcast_source_state",
                &[("station", &s.name), ("state", st)],
                u8::from(st == now),
            );
        }
    }
    o.family(
        "asfcast_station_bitrate_bps",
        "gauge",
        "The current header's declared maximum bit rate.",
    );
    for s in &snap.stations {
        o.sample(
            "asfcast_station_bitrate_bps",
            &[("station", &s.name)],
            s.bitrate,
        );
    }
    type StationPick = fn(&super::StationStatus) -> u64;
    let hub: [(&str, &str, StationPick); 5] = [
        (
            "asfcast_station_packets_total",
            "Data packets the station's hub took from its source.",
            |s| s.counters.packets,
        ),
        (
            "asfcast_station_bytes_total",
            "Bytes of the data packets the hub took from its source.",
            |s| s.counters.bytes,
        ),
        (
            "asfcast_header_changes_total",
            "New stream headers (playlist entries, encoder header changes).",
            |s| s.counters.header_changes,
        ),
        (
            "asfcast_bad_packets_total",
            "Source packets that did not parse and were skipped.",
            |s| s.counters.bad_packets,
        ),
        (
            "asfcast_source_errors_total",
            "Errors the source reported.",
            |s| s.counters.source_errors,
        ),
    ];
    for (name, help, pick) in hub {
        o.family(name, "counter", help);
        for s in &snap.stations {
            o.sample(name, &[("station", &s.name)], pick(s));
        }
    }
    let default = StationFigures::default();
    let fig = |name: &str| snap.ops.stations.get(name).unwrap_or(&default);
    type FigPick = fn(&StationFigures) -> u64;
    let figs: [(&str, &str, FigPick); 3] = [
        (
            "asfcast_source_entries_started_total",
            "Source entries started (playlist files opened, connections made).",
            |f| f.source_started,
        ),
        (
            "asfcast_source_entries_failed_total",
            "Source entries that failed (unreadable files, refused connections).",
            |f| f.source_failed,
        ),
        (
            "asfcast_source_lost_total",
            "Times the source was lost (the station stays up and retries).",
            |f| f.source_lost,
        ),
    ];
    for (name, help, pick) in figs {
        o.family(name, "counter", help);
        for s in &snap.stations {
            o.sample(name, &[("station", &s.name)], pick(fig(&s.name)));
        }
    }
    o.family(
        "asfcast_msb_datagrams_total",
        "counter",
        "MSB datagrams sent to the multicast group, by kind (data, FEC parity, beacon).",
    );
    for s in snap.stations.iter().filter(|s| s.multicast.is_some()) {
        let f = fig(&s.name);
        for (kind, n) in [
            ("data", f.msb_data),
            ("parity", f.msb_parity),
            ("beacon", f.msb_beacons),
        ] {
            o.sample(
                "asfcast_msb_datagrams_total",
                &[("station", &s.name), ("kind", kind)],
                n,
            );
        }
    }
    o.family(
        "asfcast_msb_pacing_path",
        "gauge",
        "How a station's multicast datagrams are paced: 1 for its path, txtime (the kernel, SO_TXTIME) or timer (the event loop).",
    );
    for s in &snap.stations {
        if let Some(path) = fig(&s.name).pacing_path {
            o.sample(
                "asfcast_msb_pacing_path",
                &[("station", &s.name), ("path", path)],
                1,
            );
        }
    }
    for (name, help, pick) in [
        (
            "asfcast_msb_smoothing_held_total",
            "MSB datagrams multicast smoothing held past their due time.",
            (|f| f.smoothing_held) as fn(&StationFigures) -> u64,
        ),
        (
            "asfcast_msb_smoothing_at_bound_total",
            "MSB datagrams held to the smoothing bound (the stream exceeded the smoothing rate).",
            |f| f.smoothing_at_bound,
        ),
        (
            "asfcast_msb_segmented_sends_total",
            "Sends that carried several equal-sized MSB datagrams at once (UDP segmentation offload).",
            |f| f.msb_segmented_sends,
        ),
    ] {
        o.family(name, "counter", help);
        for s in snap.stations.iter().filter(|s| s.multicast.is_some()) {
            o.sample(name, &[("station", &s.name)], pick(fig(&s.name)));
        }
    }
    o.family(
        "asfcast_pacing_lateness_seconds",
        "histogram",
        "How late station packets went out after their due time.",
    );
    for s in &snap.stations {
        o.histogram(
            "asfcast_pacing_lateness_seconds",
            &[("station", &s.name)],
            &fig(&s.name).pacing_lateness,
        );
    }
    o.family(
        "asfcast_loop_turn_seconds",
        "histogram",
        "Time the event loop worked between two waits.",
    );
    o.histogram("asfcast_loop_turn_seconds", &[], &snap.ops.loop_turn);
    o.family(
        "asfcast_timer_lateness_seconds",
        "histogram",
        "How late the event loop woke after the deadline it armed its timer for.",
    );
    o.histogram(
        "asfcast_timer_lateness_seconds",
        &[],
        &snap.ops.timer_lateness,
    );

    if let Some(p) = &snap.ops.process {
        o.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        o.sample("process_resident_memory_bytes", &[], p.rss_bytes);
        o.family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        o.sample("process_open_fds", &[], p.open_fds);
        o.family(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        );
        o.sample("process_max_fds", &[], p.max_fds);
        o.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        o.sample("process_cpu_seconds_total", &[], p.cpu_seconds);
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{client, station};
    use crate::station::sink::ClientInfo;
    use std::time::Duration;

    #[test]
    fn families_have_help_and_type_and_count_clients() {
        let mut snap = Snapshot {
            uptime: Duration::from_secs(3),
            stations: vec![station("demo", 5000)],
            clients: vec![
                client(1, "demo", "mmsh", None),
                client(2, "demo", "mmsh", None),
                client(3, "demo", "rtsp", None),
            ],
            ..Snapshot::default()
        };
        snap.ops.totals.joined("demo", "mmsh");
        snap.ops.totals.ended(
            &ClientInfo {
                protocol: "mmsh",
                station: Some("demo".into()),
                bytes: 500,
                ..ClientInfo::default()
            },
            false,
        );
        snap.ops.loop_turn.observe(Duration::from_micros(300));
        snap.ops.stations.insert(
            "demo".into(),
            StationFigures {
                pacing_path: Some("timer"),
                smoothing_held: 7,
                msb_segmented_sends: 3,
                ..StationFigures::default()
            },
        );
        let text = render(&snap);
        assert!(text.contains("asfcast_msb_pacing_path{station=\"demo\",path=\"timer\"} 1\n"));
        assert!(text.contains("asfcast_msb_smoothing_held_total{station=\"demo\"} 7\n"));
        assert!(text.contains("asfcast_msb_segmented_sends_total{station=\"demo\"} 3\n"));
        assert!(text.contains("asfcast_msb_smoothing_at_bound_total{station=\"demo\"} 0\n"));
        assert!(text.ends_with('\n'));
        assert!(
            text.contains("asfcast_clients{station=\"demo\",protocol=\"mmsh\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("asfcast_clients{station=\"demo\",protocol=\"rtsp\"} 1\n"));
        assert!(text.contains("asfcast_clients{station=\"demo\",protocol=\"mms\"} 0\n"));
        assert!(
            text.contains("asfcast_sent_bytes_total{station=\"demo\",protocol=\"mmsh\"} 2500\n")
        );
        assert!(text.contains("asfcast_client_drops_total{station=\"demo\",protocol=\"mmsh\"} 1\n"));
        assert!(text.contains("asfcast_source_state{station=\"demo\",state=\"playing\"} 1\n"));
        assert!(text.contains("asfcast_loop_turn_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("asfcast_loop_turn_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("asfcast_pacing_lateness_seconds_count{station=\"demo\"} 0\n"));
        // One HELP and one TYPE per family, each before its samples.
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(seen.insert(name.to_string()), "TYPE twice: {name}");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| seen.contains(*f)))
                    .unwrap_or(name);
                assert!(seen.contains(family), "sample before its TYPE: {line}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let snap = Snapshot {
            stations: vec![station("x\"y", 0)],
            ..Snapshot::default()
        };
        assert!(render(&snap).contains("asfcast_station_bitrate_bps{station=\"x\\\"y\"} 128000\n"));
    }
}
