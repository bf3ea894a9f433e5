//! The status pages for a person: `/` lists the stations (source state, bit rate, clients per
//! protocol, multicast group), `/status/<station>` shows one station with its clients, its
//! announcement links and player URLs, and a chart of the last hour.
//!
//! Server-rendered HTML from a [`Snapshot`], no JavaScript (so it works in any browser and in
//! `curl`); it may reload itself (`<meta http-equiv="refresh">`). Everything that came from a
//! client (user agents) or from the configuration (names, descriptions, paths) is escaped
//! ([`escape`]); only player and web URLs become links. Elements carry stable ids
//! (`clients-<station>-<protocol>`, `client-count`) so tests and scrapers can read them.

use std::fmt::Write;
use std::time::Duration;

use super::history::{Point, CAPACITY};
use super::html::{escape, is_player_url, path_segment};
use super::{Snapshot, StationStatus, PROTOCOLS};
use crate::station::source::SourceState;

/// The `Content-Type` of the pages.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;padding:.25em .6em;\
text-align:left}td.n{text-align:right}svg{border:1px solid #bbb;background:#fafafa}\
.lost{color:#b00}.playing{color:#070}";

fn head(h: &mut String, title: &str, refresh_s: u32) {
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    if refresh_s > 0 {
        let _ = writeln!(h, "<meta http-equiv=\"refresh\" content=\"{refresh_s}\">");
    }
    let _ = writeln!(
        h,
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(title)
    );
}

/// "1h 02m 05s", "3m 10s", "42s".
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// "128 kbit/s", "1.50 Mbit/s".
pub fn bitrate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.2} Mbit/s", bps as f64 / 1e6)
    } else {
        format!("{} kbit/s", bps / 1000)
    }
}

/// What the source is doing, in words (escaped).
fn source_text(s: &SourceState) -> (&'static str, String) {
    match s {
        SourceState::Starting => ("starting", "starting".into()),
        SourceState::Playing { origin } => ("playing", format!("playing {}", escape(origin))),
        SourceState::Lost { reason } => ("lost", format!("lost: {}", escape(reason))),
        SourceState::Ended => ("ended", "ended".into()),
    }
}

fn station_link(name: &str) -> String {
    format!("/status/{}", path_segment(name))
}

fn files_and_urls(h: &mut String, s: &StationStatus) {
    h.push_str("<ul class=\"links\">\n");
    let files = s
        .nsc_file
        .iter()
        .map(|f| (f, "multicast station file"))
        .chain(std::iter::once((&s.asx_file, "announcement")));
    for (file, label) in files.filter(|(f, _)| !f.is_empty()) {
        let _ = writeln!(
            h,
            "<li><a href=\"/{}\">{}</a> — {label}</li>",
            escape(&path_segment(file)),
            escape(file)
        );
    }
    for url in &s.urls {
        if is_player_url(url) {
            let u = escape(url);
            let _ = writeln!(h, "<li><a href=\"{u}\">{u}</a></li>");
        } else {
            let _ = writeln!(h, "<li>{}</li>", escape(url));
        }
    }
    h.push_str("</ul>\n");
}

/// The station list at `/`.
pub fn index(snap: &Snapshot, refresh_s: u32) -> String {
    let mut h = String::with_capacity(4096);
    head(&mut h, "asfcast status", refresh_s);
    let playing = snap.clients.iter().filter(|c| c.info.playing).count();
    let _ = writeln!(
        h,
        "<h1>Stations</h1>\n<p>Up {}; <span id=\"client-count\">{playing}</span> clients playing.</p>",
        duration(snap.uptime)
    );
    if snap.stations.is_empty() {
        h.push_str("<p>No stations are configured.</p>\n");
    } else {
        h.push_str("<table id=\"stations\">\n<tr><th>Station</th><th>Source</th><th>Bit rate</th>");
        for p in PROTOCOLS {
            let _ = write!(h, "<th>{}</th>", p.to_uppercase());
        }
        h.push_str("<th>Multicast</th><th>Announcements</th></tr>\n");
        for s in &snap.stations {
            let name = escape(&s.name);
            let (class, source) = source_text(&s.source);
            let _ = write!(
                h,
                "<tr id=\"station-{name}\"><td><a href=\"{}\">{name}</a></td>\
                 <td class=\"{class}\">{source}</td><td class=\"n\">{}</td>",
                escape(&station_link(&s.name)),
                bitrate(u64::from(s.bitrate))
            );
            for p in PROTOCOLS {
                let _ = write!(
                    h,
                    "<td class=\"n\" id=\"clients-{name}-{p}\">{}</td>",
                    snap.playing(&s.name, p)
                );
            }
            let _ = write!(
                h,
                "<td>{}</td><td>",
                s.multicast.as_deref().map_or("—".into(), escape)
            );
            for file in s.nsc_file.iter().chain(std::iter::once(&s.asx_file)) {
                if !file.is_empty() {
                    let _ = write!(
                        h,
                        "<a href=\"/{}\">{}</a> ",
                        escape(&path_segment(file)),
                        escape(file)
                    );
                }
            }
            h.push_str("</td></tr>\n");
        }
        h.push_str("</table>\n");
    }
    config_section(&mut h, &snap.ops.config);
    h.push_str("<p><a href=\"/metrics\">metrics</a></p>\n</body>\n</html>\n");
    h
}

/// The "Configuration" section: shown when the config directory has errors, with which
/// configuration runs instead and every error's file, line, column, field and message.
fn config_section(h: &mut String, c: &super::ConfigState) {
    use super::ConfigOrigin;
    if c.errors.is_empty() {
        return;
    }
    let running = match c.running {
        ConfigOrigin::Current => "The configuration in force is the config directory's.",
        ConfigOrigin::LastGood => {
            "The config directory has errors: the last configuration that was valid runs instead."
        }
        ConfigOrigin::Fallback => {
            "The config directory has errors and there is no earlier valid configuration: no station runs."
        }
    };
    let _ = writeln!(
        h,
        "<h2 id=\"configuration\">Configuration</h2>\n<p class=\"bad\" id=\"config-running\" data-running=\"{}\">{running}</p>",
        c.running.as_str()
    );
    h.push_str("<table id=\"config-errors\">\n<tr><th>File</th><th>Line</th><th>Column</th><th>Field</th><th>Error</th></tr>\n");
    for e in c.errors.iter() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.file.display().to_string()),
            e.line,
            e.column,
            escape(&e.field),
            escape(&e.message)
        );
    }
    h.push_str("</table>\n");
}

/// One station's page, or None when there is no such station.
pub fn station(snap: &Snapshot, name: &str, refresh_s: u32) -> Option<String> {
    let s = snap.stations.iter().find(|s| s.name == name)?;
    let mut h = String::with_capacity(8192);
    head(&mut h, &format!("{} — asfcast", s.name), refresh_s);
    let n = escape(&s.name);
    let _ = writeln!(
        h,
        "<p><a href=\"/\">All stations</a></p>\n<h1 id=\"station\">{n}</h1>"
    );
    if !s.description.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", escape(&s.description));
    }
    let (class, source) = source_text(&s.source);
    let _ = writeln!(
        h,
        "<table><tr><th>Source</th><td class=\"{class}\" id=\"source\">{source}</td></tr>\n\
         <tr><th>Bit rate</th><td>{}</td></tr>\n<tr><th>Multicast</th><td>{}</td></tr>\n\
         <tr><th>Multicast pacing</th><td id=\"pacing\">{}</td></tr>\n\
         <tr><th>Packets / bytes from source</th><td>{} / {}</td></tr>\n\
         <tr><th>Header changes / bad packets</th><td>{} / {}</td></tr>",
        bitrate(u64::from(s.bitrate)),
        s.multicast.as_deref().map_or("—".into(), escape),
        s.pacing.as_deref().map_or("—".into(), escape),
        s.counters.packets,
        s.counters.bytes,
        s.counters.header_changes,
        s.counters.bad_packets
    );
    for p in PROTOCOLS {
        let _ = writeln!(
            h,
            "<tr><th>{} clients</th><td id=\"clients-{n}-{p}\">{}</td></tr>",
            p.to_uppercase(),
            snap.playing(&s.name, p)
        );
    }
    h.push_str("</table>\n<h2>Links</h2>\n");
    files_and_urls(&mut h, s);
    h.push_str("<h2>Last hour</h2>\n");
    let points = snap.ops.history.points(&s.name);
    chart(
        &mut h,
        "chart-clients",
        "Clients",
        &points,
        |p| u64::from(p.clients),
        |v| v.to_string(),
    );
    chart(
        &mut h,
        "chart-bitrate",
        "Bit rate",
        &points,
        |p| p.bitrate,
        bitrate,
    );
    h.push_str("<h2>Clients</h2>\n");
    let clients: Vec<_> = snap
        .clients
        .iter()
        .filter(|c| c.info.station.as_deref() == Some(s.name.as_str()))
        .collect();
    if clients.is_empty() {
        h.push_str("<p>No clients.</p>\n");
    } else {
        h.push_str(
            "<table id=\"clients\">\n<tr><th>Address</th><th>Protocol</th><th>Transport</th>\
             <th>User agent</th><th>Bytes</th><th>Skips</th><th>Connected for</th></tr>\n",
        );
        for c in clients {
            let _ = writeln!(
                h,
                "<tr class=\"client\" data-protocol=\"{}\"><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(c.info.protocol),
                escape(&c.peer.to_string()),
                escape(c.info.protocol),
                escape(c.info.transport),
                c.info.user_agent.as_deref().map_or("—".into(), escape),
                c.info.bytes,
                c.info.skips,
                duration(c.connected)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body>\n</html>\n");
    Some(h)
}

/// A small line chart (inline SVG) of one figure over the history's hour; the newest sample
/// is at the right edge.
fn chart(
    h: &mut String,
    id: &str,
    title: &str,
    points: &[Point],
    value: fn(&Point) -> u64,
    label: fn(u64) -> String,
) {
    const W: usize = CAPACITY;
    const HGT: u64 = 80;
    let max = points.iter().map(value).max().unwrap_or(0);
    let _ = writeln!(
        h,
        "<figure><figcaption>{title} (max {})</figcaption>\n\
         <svg id=\"{id}\" role=\"img\" aria-label=\"{title} over the last hour\" width=\"{W}\" \
         height=\"{HGT}\" viewBox=\"0 0 {W} {HGT}\">",
        escape(&label(max))
    );
    if points.is_empty() {
        let _ = writeln!(
            h,
            "<text x=\"8\" y=\"44\" font-size=\"12\">no samples yet</text>"
        );
    } else {
        let offset = W.saturating_sub(points.len());
        let scale = max.max(1) as f64;
        let mut coords = String::new();
        for (i, p) in points.iter().enumerate() {
            let y = HGT as f64 - 4.0 - (value(p) as f64 / scale) * (HGT as f64 - 8.0);
            let _ = write!(coords, "{},{y:.1} ", offset + i);
        }
        let _ = writeln!(
            h,
            "<polyline fill=\"none\" stroke=\"#2a6\" stroke-width=\"1.5\" points=\"{}\"/>",
            coords.trim_end()
        );
        // The newest sample as a dot, so a single sample shows too.
        if let Some((x, y)) = coords
            .split_whitespace()
            .last()
            .and_then(|p| p.split_once(','))
        {
            let _ = writeln!(h, "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"#2a6\"/>");
        }
    }
    h.push_str("</svg></figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{client, station as entry};

    fn snap() -> Snapshot {
        let mut evil = entry("b&w", 0);
        evil.description = "<img src=x onerror=alert(1)>".into();
        evil.urls.push("javascript:alert(1)".into());
        evil.source = SourceState::Lost {
            reason: "<b>gone</b>".into(),
        };
        Snapshot {
            uptime: Duration::from_secs(3725),
            stations: vec![entry("demo", 0), evil],
            clients: vec![
                client(1, "demo", "mmsh", Some("<script>alert(1)</script>")),
                client(2, "demo", "mmsh", Some("NSPlayer/12.0")),
                client(3, "demo", "rtsp", None),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn index_counts_per_protocol_and_escapes() {
        let html = index(&snap(), 5);
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(html.contains("Up 1h 02m 05s"), "{html}");
        assert!(html.contains("<span id=\"client-count\">3</span>"));
        assert!(html.contains("id=\"clients-demo-mmsh\">2</td>"));
        assert!(html.contains("id=\"clients-demo-rtsp\">1</td>"));
        assert!(html.contains("id=\"clients-demo-mms\">0</td>"));
        assert!(html.contains("<a href=\"/status/demo\">demo</a>"));
        assert!(html.contains("<a href=\"/status/b%26w\">b&amp;w</a>"));
        assert!(html.contains("playing /srv/media/demo.asf"));
        assert!(html.contains("lost: &lt;b&gt;gone&lt;/b&gt;"));
        assert!(html.contains("<a href=\"/demo.nsc\">demo.nsc</a>"));
        assert!(!html.contains("<b>"));
        assert!(!index(&snap(), 0).contains("refresh"));
    }

    #[test]
    fn station_page_lists_clients_with_escaped_user_agents() {
        let html = station(&snap(), "demo", 0).unwrap_or_default();
        assert!(html.contains("<h1 id=\"station\">demo</h1>"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert_eq!(html.matches("<tr class=\"client\"").count(), 3);
        assert!(html.contains("<td>192.0.2.1:40001</td><td>mmsh</td><td>tcp</td>"));
        assert!(html.contains("<td class=\"n\">1m 05s</td>"));
        assert!(html.contains("<a href=\"rtsp://box/demo\">rtsp://box/demo</a>"));
        assert!(html.contains("<a href=\"/demo.asx\">demo.asx</a>"));
        assert!(html.contains("id=\"chart-clients\""));
        assert!(html.contains("no samples yet"));
        let evil = station(&snap(), "b&w", 0).unwrap_or_default();
        assert!(!evil.contains("<img"), "{evil}");
        assert!(!evil.contains("href=\"javascript:"));
        assert!(evil.contains("<li>javascript:alert(1)</li>"));
        assert!(station(&snap(), "nope", 0).is_none());
    }

    #[test]
    fn chart_draws_the_history() {
        let mut s = snap();
        let mut hist = crate::ops::history::History::default();
        for i in 0..3u64 {
            s.uptime = Duration::from_secs(10 * i);
            hist.sample(&s);
        }
        s.ops.history = std::sync::Arc::new(hist);
        let html = station(&s, "demo", 0).unwrap_or_default();
        assert!(html.contains("<polyline"), "{html}");
        assert!(
            html.contains("points=\"357,4.0 358,4.0 359,4.0\""),
            "{html}"
        );
        assert!(html.contains("Clients (max 3)"));
        assert!(html.contains("<circle cx=\"359\" cy=\"4.0\""), "{html}");
    }

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(190)), "3m 10s");
        assert_eq!(bitrate(128_000), "128 kbit/s");
        assert_eq!(bitrate(1_500_000), "1.50 Mbit/s");
    }
}
