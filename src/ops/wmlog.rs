//! Client logs in the Windows Media format ([MS-WMLOG] §2.2): one W3C extended line per client
//! session, the line the WMS Client Logging plug-in writes. Why here: the record is pure data
//! the shell fills from what it knows (`crate::net::client_log` writes the files); what players
//! send about themselves is parsed in [`super::wmlog_client`] and merged in with [`merge`].
//!
//! Facts followed (`docs/protocols/ingest-relay-ops.md` §d.1):
//! - the 44 fields in the order of [`FIELDS`] ([MS-WMLOG] §2.2.1–2.2.2), single spaces;
//! - `-` for an empty value, spaces inside a value become `_` ([MS-WMLOG] §2.2), `date`/`time`
//!   in UTC; `protocol` is `http`, `rtsp`, `mms` or `asfm` (MSB multicast), `transport` `TCP` or
//!   `UDP`; `filelength`/`filesize` are 0 for live; `c-status` is 200 (210 = reconnected);
//! - the file header is the WMS 4.1 one: `#Software`, `#Version`, `#Date`, `#Fields`.
//!
//! Record safety: every value goes through [`escape`] on the way out, which turns every
//! whitespace and control character (CR, LF, TAB, …) into `_` and caps its length, so no
//! client-supplied value can split a record, start a forged one or fake a `#` header line
//! (the first field, `c-ip`, always comes from the socket).
//!
//! The merge rule ([`merge`]): the server owns what only it can know — `c-ip` (the socket),
//! `date`/`time` (its clock), `protocol`, `transport`, `sc-bytes`, `s-pkts-sent`, `s-ip`,
//! `s-dns`, `s-totalclients`, `s-cpu-util` — a client never changes them. The client knows
//! better how it played: `c-starttime`, `x-duration` (its play time replaces the server's
//! connection time), `c-rate`, the player and host fields, `c-os*`, `c-cpu`, `filelength`,
//! `filesize`, `avgbandwidth`, the codecs, `c-channelURL`, `c-bytes` and the `c-pkts-*`,
//! `c-resendreqs`, `c-buffer*`, `c-quality`, `c-dns` — its values replace the server's.
//! `c-status` moves from the server's 200 to the client's 210 (a reconnect only the client
//! sees), never from an error status. Everything else (`cs-uri-stem`, `cs-User-Agent`,
//! `cs-Referer`) is extended only: the client fills what the server left `-`.

use std::net::IpAddr;

/// The [MS-WMLOG] legacy field order (44 fields).
pub const FIELDS: [&str; 44] = [
    "c-ip",
    "date",
    "time",
    "c-dns",
    "cs-uri-stem",
    "c-starttime",
    "x-duration",
    "c-rate",
    "c-status",
    "c-playerid",
    "c-playerversion",
    "c-playerlanguage",
    "cs-User-Agent",
    "cs-Referer",
    "c-hostexe",
    "c-hostexever",
    "c-os",
    "c-osversion",
    "c-cpu",
    "filelength",
    "filesize",
    "avgbandwidth",
    "protocol",
    "transport",
    "audiocodec",
    "videocodec",
    "c-channelURL",
    "sc-bytes",
    "c-bytes",
    "s-pkts-sent",
    "c-pkts-received",
    "c-pkts-lost-client",
    "c-pkts-lost-net",
    "c-pkts-lost-cont-net",
    "c-resendreqs",
    "c-pkts-recovered-ECC",
    "c-pkts-recovered-resent",
    "c-buffercount",
    "c-totalbuffertime",
    "c-quality",
    "s-ip",
    "s-dns",
    "s-totalclients",
    "s-cpu-util",
];

/// Fields only the server fills (see the module doc).
const SERVER_OWNED: [&str; 11] = [
    "c-ip",
    "date",
    "time",
    "protocol",
    "transport",
    "sc-bytes",
    "s-pkts-sent",
    "s-ip",
    "s-dns",
    "s-totalclients",
    "s-cpu-util",
];

/// Fields a client's report only fills when the server left them empty.
const EXTEND_ONLY: [&str; 3] = ["cs-uri-stem", "cs-User-Agent", "cs-Referer"];

/// Fields that hold a number (`-` allowed); client values are checked ([MS-WMLOG] §4).
pub const NUMERIC: [&str; 22] = [
    "c-starttime",
    "x-duration",
    "c-rate",
    "c-status",
    "filelength",
    "filesize",
    "avgbandwidth",
    "sc-bytes",
    "c-bytes",
    "s-pkts-sent",
    "c-pkts-received",
    "c-pkts-lost-client",
    "c-pkts-lost-net",
    "c-pkts-lost-cont-net",
    "c-resendreqs",
    "c-pkts-recovered-ECC",
    "c-pkts-recovered-resent",
    "c-buffercount",
    "c-totalbuffertime",
    "c-quality",
    "s-totalclients",
    "s-cpu-util",
];

/// Longest value written (characters); longer values are cut.
pub const MAX_VALUE: usize = 1024;

/// What the software line says.
pub const SOFTWARE: &str = concat!("asfcast ", env!("ASFCAST_BUILD_VERSION"));

/// The position of a field name in [`FIELDS`] (ASCII case-insensitive; the WMS 4.1 spelling
/// `cs(User-Agent)` is accepted for `cs-User-Agent`, likewise `cs(Referer)`).
pub fn field_index(name: &str) -> Option<usize> {
    let name = match name {
        n if n.eq_ignore_ascii_case("cs(User-Agent)") => "cs-User-Agent",
        n if n.eq_ignore_ascii_case("cs(Referer)") => "cs-Referer",
        n => n,
    };
    FIELDS.iter().position(|f| f.eq_ignore_ascii_case(name))
}

/// Is `field` one of [`NUMERIC`]?
pub fn is_numeric(field: &str) -> bool {
    NUMERIC.iter().any(|f| f.eq_ignore_ascii_case(field))
}

/// One log record: a value (or nothing, written `-`) per field of [`FIELDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    values: [Option<String>; 44],
}

impl Default for Record {
    fn default() -> Self {
        Record {
            values: std::array::from_fn(|_| None),
        }
    }
}

impl Record {
    pub fn new() -> Self {
        Record::default()
    }

    /// Sets `field` (an empty value or `-` clears it). Returns false for an unknown field.
    pub fn set(&mut self, field: &str, value: impl Into<String>) -> bool {
        let Some(i) = field_index(field) else {
            return false;
        };
        let v = value.into();
        self.values[i] = (!v.is_empty() && v != "-").then_some(v);
        true
    }

    /// The value of `field`, if set.
    pub fn get(&self, field: &str) -> Option<&str> {
        field_index(field).and_then(|i| self.values[i].as_deref())
    }

    /// How many fields are set.
    pub fn count_set(&self) -> usize {
        self.values.iter().filter(|v| v.is_some()).count()
    }

    /// The record as one log line (no line terminator), every value escaped.
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(256);
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&escape(v.as_deref().unwrap_or("")));
        }
        line
    }

    /// Reads a line written by [`Record::to_line`] (or a client's legacy line): the first 44
    /// whitespace-separated values in [`FIELDS`] order. None unless there are at least 44.
    pub fn from_line(line: &str) -> Option<Record> {
        let values: Vec<&str> = line.split_ascii_whitespace().collect();
        if values.len() < FIELDS.len() {
            return None;
        }
        let mut r = Record::new();
        for (f, v) in FIELDS.iter().zip(values) {
            r.set(f, v);
        }
        Some(r)
    }
}

/// A value as written: `-` when empty, whitespace and control characters as `_`, at most
/// [`MAX_VALUE`] characters.
pub fn escape(value: &str) -> String {
    if value.is_empty() {
        return "-".to_string();
    }
    value
        .chars()
        .take(MAX_VALUE)
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Merges a client's report into the server's record (the rule is in the module doc).
pub fn merge(server: &Record, client: &Record) -> Record {
    let mut out = server.clone();
    for (i, field) in FIELDS.iter().enumerate() {
        let Some(value) = client.values[i].as_ref() else {
            continue;
        };
        if SERVER_OWNED.contains(field) {
            continue;
        }
        if *field == "c-status" {
            if out.values[i].as_deref().map_or(true, |s| s == "200") && value == "210" {
                out.values[i] = Some(value.clone());
            }
            continue;
        }
        if EXTEND_ONLY.contains(field) {
            if out.values[i].is_none() {
                out.values[i] = Some(value.clone());
            }
            continue;
        }
        out.values[i] = Some(value.clone());
    }
    out
}

/// What the server knows about a session when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFacts {
    /// The client's address (from the socket).
    pub client_ip: IpAddr,
    /// The server's address on the connection.
    pub server_ip: Option<IpAddr>,
    /// When the client connected, seconds since the Unix epoch (UTC).
    pub connected_unix: u64,
    /// How long the connection lasted, seconds.
    pub duration_secs: u64,
    /// `http`, `rtsp`, `mms` or `asfm`.
    pub protocol: &'static str,
    /// `TCP` or `UDP` (None: not set up).
    pub transport: Option<&'static str>,
    /// The requested URI (e.g. `rtsp://127.0.0.1:554/demo`), when there is one.
    pub uri: Option<String>,
    pub user_agent: Option<String>,
    /// Media packets and bytes sent.
    pub packets: u64,
    pub bytes: u64,
    /// Clients connected when the session ended.
    pub total_clients: usize,
    /// 200, or another status when the session failed.
    pub status: u16,
}

/// The record the server writes from its own facts ([MS-WMLOG] §2.2; client fields `-`).
pub fn server_record(f: &ServerFacts) -> Record {
    let mut r = Record::new();
    let (date, time) = utc_date_time(f.connected_unix);
    r.set("c-ip", f.client_ip.to_string());
    r.set("date", date);
    r.set("time", time);
    if let Some(uri) = &f.uri {
        r.set("cs-uri-stem", uri.clone());
    }
    r.set("c-starttime", "0");
    r.set("x-duration", f.duration_secs.to_string());
    r.set("c-rate", "1");
    r.set("c-status", f.status.to_string());
    if let Some(ua) = &f.user_agent {
        r.set("cs-User-Agent", ua.clone());
    }
    // Live: no length, no size ([MS-WMLOG] §2.1).
    r.set("filelength", "0");
    r.set("filesize", "0");
    if let Some(bw) = f.bytes.saturating_mul(8).checked_div(f.duration_secs) {
        r.set("avgbandwidth", bw.to_string());
    }
    r.set("protocol", f.protocol);
    if let Some(t) = f.transport {
        r.set("transport", t);
    }
    r.set("sc-bytes", f.bytes.to_string());
    r.set("s-pkts-sent", f.packets.to_string());
    if let Some(ip) = f.server_ip {
        r.set("s-ip", ip.to_string());
    }
    r.set("s-totalclients", f.total_clients.to_string());
    r
}

/// The W3C header at the top of each file ([MS-WMLOG] §2.2, WMS 4.1 shape), CRLF-free lines
/// each ending in `\n`.
pub fn file_header(now_unix: u64) -> String {
    let (date, time) = utc_date_time(now_unix);
    format!(
        "#Software: {SOFTWARE}\n#Version: 4.1\n#Date: {date} {time}\n#Fields: {}\n",
        FIELDS.join(" ")
    )
}

/// `YYYYMMDD` of a Unix time (UTC), for the file name `WMS_YYYYMMDD.log`.
pub fn file_day(unix: u64) -> String {
    let (y, m, d) = civil_from_days(unix / 86_400);
    format!("{y:04}{m:02}{d:02}")
}

/// `YYYY-MM-DD` and `HH:MM:SS` of a Unix time (UTC).
pub fn utc_date_time(unix: u64) -> (String, String) {
    let (y, m, d) = civil_from_days(unix / 86_400);
    let s = unix % 86_400;
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    )
}

/// The days since 1970-01-01 of a `YYYYMMDD` day (inverse of [`file_day`]).
pub fn days_of(day: &str) -> Option<u64> {
    if day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = day.get(..4)?.parse().ok()?;
    let m: i64 = day.get(4..6)?.parse().ok()?;
    let d: i64 = day.get(6..)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

/// Howard Hinnant's civil_from_days, for days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The path of a log URL (`http://box/wmsiislog.dll` → `/wmsiislog.dll`); a bare path is
/// its own path.
pub fn url_path(url: &str) -> Option<&str> {
    let rest = match url.find("://") {
        Some(i) => url.get(i + 3..)?,
        None => return url.starts_with('/').then_some(url),
    };
    let path = rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/");
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

#[cfg(test)]
#[path = "wmlog_tests.rs"]
mod tests;
