//! The server file (`server.yaml`): listeners, announcement directory, limits, logs.
//!
//! Why: settings shared by all stations live in one optional file; when it is
//! absent the defaults below apply (the appliance's standard ports on every
//! address). Same pipeline as stations: file structs with `deny_unknown_fields`
//! and self-checking values, then defaults and cross-field checks (a listener
//! address may appear only once across HTTP, MMS and RTSP, since each needs its
//! own socket).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{syntax_check, ConfigError};
use super::locate::{locate_nearest, Seg};
use super::values::{Bytes, Decimal, FilePath, Host, Listeners, Ranged, Seconds};

/// Default announcement directory on the appliance.
pub const DEFAULT_ANNOUNCE_DIR: &str = "/var/lib/asfcast/announce";

/// The validated server settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The file the settings came from; `None` when defaults are used.
    pub file: Option<PathBuf>,
    /// Listener addresses per protocol.
    pub listen: Listen,
    /// Directory where the .nsc and .asx files are written (relative paths are
    /// resolved against the server file's directory).
    pub announce_dir: PathBuf,
    /// Host name written into URLs in .nsc/.asx files; `None` means the
    /// listener's own address.
    pub public_host: Option<String>,
    /// Global limits.
    pub limits: Limits,
    /// RTSP delivery settings.
    pub rtsp: RtspSettings,
    /// Logging.
    pub log: LogConfig,
    /// The operators' web views on the HTTP listener (`status:` and `metrics:`).
    pub web: crate::ops::web::WebConfig,
    /// The control API's credentials (its listener is `listen.api`).
    pub api: super::api::ApiSettings,
    /// Who may connect, by address (`access:`; see [`crate::access`]).
    pub access: crate::access::ServerAccess,
    /// Defaults for the stations' `auth:` ([`super::auth`]).
    pub auth: super::auth::AuthDefaults,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            file: None,
            listen: Listen::default(),
            announce_dir: PathBuf::from(DEFAULT_ANNOUNCE_DIR),
            public_host: None,
            limits: Limits::default(),
            rtsp: RtspSettings::default(),
            log: LogConfig::default(),
            web: crate::ops::web::WebConfig::default(),
            api: super::api::ApiSettings::default(),
            access: crate::access::ServerAccess::default(),
            auth: super::auth::AuthDefaults::default(),
        }
    }
}

/// RTSP delivery settings (`rtsp:` in the server file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtspSettings {
    /// Offer RTP over UDP. When false, a UDP SETUP is answered `461 Unsupported Transport`
    /// and clients fall back to TCP interleaved on the same connection (default true).
    pub udp: bool,
    /// Largest RTP packet sent (RTP header included), in bytes; ASF packets that do not fit
    /// are fragmented (default 1450, 576–65000).
    pub mtu: usize,
}

impl Default for RtspSettings {
    fn default() -> Self {
        RtspSettings {
            udp: true,
            mtu: 1450,
        }
    }
}

/// Listener addresses; an empty list turns that protocol off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// HTTP: MMSH streaming, .nsc/.asx downloads, status (default 0.0.0.0:80).
    pub http: Vec<SocketAddr>,
    /// MMS over TCP (default 0.0.0.0:1755).
    pub mms: Vec<SocketAddr>,
    /// RTSP (default 0.0.0.0:554).
    pub rtsp: Vec<SocketAddr>,
    /// The control API (default off: it is opted into; see [`super::api`]).
    pub api: Vec<SocketAddr>,
}

fn any_v4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            http: vec![any_v4(80)],
            mms: vec![any_v4(1755)],
            rtsp: vec![any_v4(554)],
            api: Vec::new(),
        }
    }
}

/// Global limits that keep one client or one burst from hurting the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most unicast clients across all stations.
    pub max_clients: u32,
    /// Most unicast clients from one IP address.
    pub max_clients_per_ip: u32,
    /// Largest request head (HTTP, RTSP, MMS command) accepted, in bytes.
    pub request_max_bytes: usize,
    /// Time a new connection has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Time a connection may stay silent (no request, no keep-alive).
    pub idle_timeout: Duration,
    /// Bytes queued for one slow client before it skips to the next key frame.
    pub client_backlog_bytes: usize,
    /// Speed multiplier for the initial burst a new unicast client receives.
    pub fast_start_rate: f64,
    /// How much media a joining unicast client gets as that burst: it starts at the newest key
    /// frame at least this far behind the live edge (when the station has one), so a player's
    /// buffer fills at once (Windows Media Player buffers 5 s; FFmpeg's RTSP client reads 5 s
    /// of media before it starts). 0: the newest key frame.
    pub fast_start_buffer: Duration,
    /// How long station packets for unicast clients may wait to be written together: one
    /// write per client per interval instead of one per packet. Trades this much extra
    /// latency (players buffer seconds anyway) for far fewer system calls with many clients;
    /// 0 writes every packet at once.
    pub write_interval: Duration,
    /// Length of each listener's queue of connections not yet accepted (the `listen(2)`
    /// backlog); the kernel caps it at `net.core.somaxconn`. A long queue rides out bursts of
    /// connects instead of dropping SYNs. Sockets passed by systemd keep their unit's `Backlog=`.
    pub listen_backlog: u32,
    /// Who may watch, server-wide: players, distribution connections, bandwidths, connection
    /// rate ([`crate::access::limits`]; all off by default).
    pub access: crate::access::limits::LimitSet,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 10_000,
            max_clients_per_ip: 100,
            request_max_bytes: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            client_backlog_bytes: 4 << 20,
            fast_start_rate: 4.0,
            fast_start_buffer: Duration::from_secs(5),
            write_interval: Duration::from_millis(250),
            listen_backlog: 65_535,
            access: crate::access::limits::LimitSet::default(),
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Normal operation (default).
    #[default]
    Info,
    /// Per-session detail.
    Debug,
    /// Per-packet detail.
    Trace,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfig {
    /// Verbosity.
    pub level: LogLevel,
    /// Format.
    pub format: LogFormat,
    /// Client logs in the Windows Media format (`log.clients`); None: not written.
    pub clients: Option<ClientLogConfig>,
}

/// Where and how much of the [MS-WMLOG] client logs is kept (`log.clients`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLogConfig {
    /// Directory of the daily `WMS_YYYYMMDD.log` files (relative paths are resolved against
    /// the server file's directory).
    pub dir: PathBuf,
    /// Size cap of one day's file: records beyond it are dropped (and counted in the journal).
    pub max_bytes: u64,
    /// Files older than this many days are deleted.
    pub keep_days: u32,
}

impl ClientLogConfig {
    /// Default size cap of a day's file.
    pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;
    /// Default retention.
    pub const DEFAULT_KEEP_DAYS: u32 = 30;
}

// ---------------------------------------------------------------------------
// File shape
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of server settings (listen, announce_dir, public_host, limits, rtsp, log, status, metrics, api, access, auth)"
)]
struct ServerFile {
    listen: Option<ListenFile>,
    announce_dir: Option<FilePath>,
    public_host: Option<Host>,
    limits: Option<LimitsFile>,
    rtsp: Option<RtspFile>,
    log: Option<LogFile>,
    status: Option<StatusFile>,
    metrics: Option<MetricsFile>,
    api: Option<super::api::ApiFile>,
    access: Option<super::access::ServerAccessFile>,
    auth: Option<super::auth::AuthFile>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of status page settings (enabled, refresh_s)"
)]
struct StatusFile {
    enabled: Option<bool>,
    refresh_s: Option<Ranged<u32, 0, 3600>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of metrics settings (enabled)"
)]
struct MetricsFile {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of RTSP settings (udp, mtu)"
)]
struct RtspFile {
    udp: Option<bool>,
    mtu: Option<Ranged<usize, 576, 65_000>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of listeners (http, mms, rtsp, api)"
)]
struct ListenFile {
    http: Option<Listeners>,
    mms: Option<Listeners>,
    rtsp: Option<Listeners>,
    api: Option<Listeners>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of limits")]
struct LimitsFile {
    max_clients: Option<Ranged<u32, 1, 1_000_000>>,
    max_clients_per_ip: Option<Ranged<u32, 1, 1_000_000>>,
    request_max_bytes: Option<Bytes<1024, { 1 << 20 }>>,
    handshake_timeout: Option<Seconds<1000, 300_000>>,
    idle_timeout: Option<Seconds<5000, 3_600_000>>,
    client_backlog_bytes: Option<Bytes<{ 64 << 10 }, { 1 << 30 }>>,
    fast_start_rate: Option<Decimal<1000, 16_000>>,
    fast_start_buffer: Option<Seconds<0, 60_000>>,
    write_interval: Option<Seconds<0, 2000>>,
    listen_backlog: Option<Ranged<u32, 16, 65_535>>,
    max_players: Option<super::limits::Count>,
    max_distribution_connections: Option<super::limits::Count>,
    max_player_bandwidth: Option<super::limits::Bitrate>,
    max_distribution_bandwidth: Option<super::limits::Bitrate>,
    max_bandwidth_per_player: Option<super::limits::Bitrate>,
    max_connection_rate: Option<super::limits::Count>,
    max_fast_start_bandwidth: Option<super::limits::Bitrate>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of log settings (level, format, clients)"
)]
struct LogFile {
    level: Option<LogLevel>,
    format: Option<LogFormat>,
    clients: Option<ClientLogFile>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of client log settings (dir, max_bytes, keep_days)"
)]
struct ClientLogFile {
    dir: FilePath,
    max_bytes: Option<Bytes<{ 64 << 10 }, { 1 << 40 }>>,
    keep_days: Option<Ranged<u32, 1, 3650>>,
}

/// Reads and validates the server file.
pub fn parse(path: &Path, text: &str) -> Result<ServerConfig, Vec<ConfigError>> {
    if text.trim().is_empty() {
        // An empty server file means "all defaults", like an absent one.
        return Ok(ServerConfig {
            file: Some(path.to_path_buf()),
            ..ServerConfig::default()
        });
    }
    syntax_check(path, text).map_err(|e| vec![e])?;
    let de = serde_norway::Deserializer::from_str(text);
    let file: ServerFile =
        serde_path_to_error::deserialize(de).map_err(|e| vec![ConfigError::from_yaml(path, e)])?;
    build(path, text, file)
}

fn build(path: &Path, text: &str, file: ServerFile) -> Result<ServerConfig, Vec<ConfigError>> {
    let d = ServerConfig::default();
    let listen = match file.listen {
        None => d.listen,
        Some(l) => Listen {
            http: l.http.map_or(d.listen.http, |v| v.0),
            mms: l.mms.map_or(d.listen.mms, |v| v.0),
            rtsp: l.rtsp.map_or(d.listen.rtsp, |v| v.0),
            api: l.api.map_or(d.listen.api, |v| v.0),
        },
    };
    let mut errors = listener_conflicts(path, text, &listen);

    let base = path.parent().unwrap_or_else(|| Path::new(""));
    let api = super::api::build(base, file.api);
    errors.extend(super::api::check(path, text, &listen.api, &api));
    let announce_dir = file.announce_dir.map_or(d.announce_dir, |p| base.join(p.0));

    let limits = match file.limits {
        None => d.limits,
        Some(l) => {
            let d = d.limits;
            Limits {
                max_clients: l.max_clients.map_or(d.max_clients, |v| v.0),
                max_clients_per_ip: l.max_clients_per_ip.map_or(d.max_clients_per_ip, |v| v.0),
                request_max_bytes: l
                    .request_max_bytes
                    .and_then(|v| usize::try_from(v.0).ok())
                    .unwrap_or(d.request_max_bytes),
                handshake_timeout: l.handshake_timeout.map_or(d.handshake_timeout, |v| v.0),
                idle_timeout: l.idle_timeout.map_or(d.idle_timeout, |v| v.0),
                client_backlog_bytes: l
                    .client_backlog_bytes
                    .and_then(|v| usize::try_from(v.0).ok())
                    .unwrap_or(d.client_backlog_bytes),
                fast_start_rate: l.fast_start_rate.map_or(d.fast_start_rate, |v| v.0),
                fast_start_buffer: l.fast_start_buffer.map_or(d.fast_start_buffer, |v| v.0),
                write_interval: l.write_interval.map_or(d.write_interval, |v| v.0),
                listen_backlog: l.listen_backlog.map_or(d.listen_backlog, |v| v.0),
                access: super::limits::build(super::limits::AccessLimitsFile {
                    max_players: l.max_players,
                    max_distribution_connections: l.max_distribution_connections,
                    max_player_bandwidth: l.max_player_bandwidth,
                    max_distribution_bandwidth: l.max_distribution_bandwidth,
                    max_bandwidth_per_player: l.max_bandwidth_per_player,
                    max_connection_rate: l.max_connection_rate,
                    max_fast_start_bandwidth: l.max_fast_start_bandwidth,
                }),
            }
        }
    };
    let rtsp = file.rtsp.map_or(d.rtsp, |r| RtspSettings {
        udp: r.udp.unwrap_or(d.rtsp.udp),
        mtu: r.mtu.map_or(d.rtsp.mtu, |v| v.0),
    });
    let log = file.log.map_or(d.log, |l| LogConfig {
        level: l.level.unwrap_or_default(),
        format: l.format.unwrap_or_default(),
        clients: l.clients.map(|c| ClientLogConfig {
            dir: base.join(c.dir.0),
            max_bytes: c
                .max_bytes
                .map_or(ClientLogConfig::DEFAULT_MAX_BYTES, |v| v.0),
            keep_days: c
                .keep_days
                .map_or(ClientLogConfig::DEFAULT_KEEP_DAYS, |v| v.0),
        }),
    });
    let web = crate::ops::web::WebConfig {
        status: file
            .status
            .as_ref()
            .and_then(|s| s.enabled)
            .unwrap_or(d.web.status),
        refresh_s: file
            .status
            .as_ref()
            .and_then(|s| s.refresh_s.as_ref())
            .map_or(d.web.refresh_s, |v| v.0),
        metrics: file
            .metrics
            .and_then(|m| m.enabled)
            .unwrap_or(d.web.metrics),
    };

    let auth = super::auth::build_server(path, text, base, file.auth, &mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ServerConfig {
        file: Some(path.to_path_buf()),
        listen,
        announce_dir,
        public_host: file.public_host.map(|h| h.0),
        limits,
        rtsp,
        log,
        web,
        api,
        access: super::access::server(file.access),
        auth,
    })
}

/// Two listeners conflict when they would bind the same port on overlapping
/// addresses: the same address, or a wildcard and any address of its family.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn listener_conflicts(path: &Path, text: &str, listen: &Listen) -> Vec<ConfigError> {
    let all: Vec<(&str, usize, SocketAddr)> = [
        ("http", &listen.http),
        ("mms", &listen.mms),
        ("rtsp", &listen.rtsp),
        ("api", &listen.api),
    ]
    .into_iter()
    .flat_map(|(proto, addrs)| addrs.iter().enumerate().map(move |(i, a)| (proto, i, *a)))
    .collect();
    let mut errors = Vec::new();
    for (n, &(proto, i, addr)) in all.iter().enumerate() {
        let earlier = all.iter().take(n).find(|(_, _, a)| overlaps(*a, addr));
        if let Some(&(other, j, other_addr)) = earlier {
            let single = listen_len(listen, proto) == 1;
            let field = if single {
                format!("listen.{proto}")
            } else {
                format!("listen.{proto}[{i}]")
            };
            let mut segs = vec![Seg::Key("listen"), Seg::Key(proto)];
            if !single {
                segs.push(Seg::Index(i));
            }
            let at = locate_nearest(text, &segs, false);
            let other_field = if listen_len(listen, other) == 1 {
                format!("listen.{other}")
            } else {
                format!("listen.{other}[{j}]")
            };
            errors.push(ConfigError::at(
                path,
                at,
                field,
                format!("{addr} overlaps {other_addr} of {other_field}; each listener needs its own address:port"),
            ));
        }
    }
    errors
}

fn listen_len(listen: &Listen, proto: &str) -> usize {
    match proto {
        "http" => listen.http.len(),
        "mms" => listen.mms.len(),
        "api" => listen.api.len(),
        _ => listen.rtsp.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> ServerConfig {
        match parse(Path::new("etc/server.yaml"), text) {
            Ok(s) => s,
            Err(e) => panic!("unexpected errors: {e:?}"),
        }
    }

    fn err(text: &str) -> Vec<String> {
        match parse(Path::new("server.yaml"), text) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let s = ok("");
        assert_eq!(s.listen, Listen::default());
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.announce_dir, PathBuf::from(DEFAULT_ANNOUNCE_DIR));
        assert_eq!(s.log, LogConfig::default());
    }

    #[test]
    fn listeners_single_list_and_off() {
        let s = ok("listen:\n  http: 127.0.0.1:8080\n  mms: [127.0.0.1:1755, '[::1]:1755']\n  rtsp: false\n");
        assert_eq!(s.listen.http, [sa("127.0.0.1:8080")]);
        assert_eq!(s.listen.mms, [sa("127.0.0.1:1755"), sa("[::1]:1755")]);
        assert!(s.listen.rtsp.is_empty());
        let s = ok("listen:\n  http: 8080\n");
        assert_eq!(s.listen.http, [sa("0.0.0.0:8080")]);
        assert_eq!(s.listen.mms, Listen::default().mms);
    }

    #[test]
    fn listener_errors() {
        let e = err("listen:\n  http: 127.0.0.1:80x\n");
        assert!(
            e[0].starts_with(
                "server.yaml:2:9: listen.http: `127.0.0.1:80x` is not an address:port"
            ),
            "{e:?}"
        );
        let e = err("listen:\n  http: 0.0.0.0:8080\n  rtsp: 127.0.0.1:8080\n");
        assert_eq!(
            e,
            ["server.yaml:3:9: listen.rtsp: 127.0.0.1:8080 overlaps 0.0.0.0:8080 of listen.http; each listener needs its own address:port"]
        );
        let e = err("listen:\n  mms: [127.0.0.1:1755, 127.0.0.1:1755]\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("server.yaml:2:25: listen.mms[1]: 127.0.0.1:1755 overlaps 127.0.0.1:1755 of listen.mms[0]"), "{e:?}");
        // Different families and different addresses do not overlap.
        ok("listen:\n  http: ['0.0.0.0:80', '[::]:80']\n  mms: 127.0.0.1:1755\n  rtsp: 127.0.0.2:1755\n");
    }

    #[test]
    fn client_logs() {
        let s = ok("log:\n  clients:\n    dir: wmlogs\n    max_bytes: 1MiB\n    keep_days: 7\n");
        let c = s.log.clients.expect("client logs configured");
        assert_eq!(c.dir, Path::new("etc/wmlogs"));
        assert_eq!((c.max_bytes, c.keep_days), (1 << 20, 7));
        let d = ok("log:\n  clients: {dir: /var/log/asfcast}\n").log.clients;
        assert_eq!(
            d,
            Some(ClientLogConfig {
                dir: PathBuf::from("/var/log/asfcast"),
                max_bytes: ClientLogConfig::DEFAULT_MAX_BYTES,
                keep_days: ClientLogConfig::DEFAULT_KEEP_DAYS,
            })
        );
        assert_eq!(err("log:\n  clients: {dir: x, keep_days: 0}\n").len(), 1);
        assert_eq!(err("log:\n  clients: {max_bytes: 1MiB}\n").len(), 1);
        assert_eq!(err("log:\n  clients: {dir: x, max_bytes: 1KiB}\n").len(), 1);
    }

    #[test]
    fn limits_and_log() {
        let s = ok("limits:\n  max_clients: 50\n  request_max_bytes: 32KiB\n  handshake_timeout: 5s\n  idle_timeout: 2m\n  client_backlog_bytes: 8MiB\n  fast_start_rate: 2.5\n  write_interval: 0\n  fast_start_buffer: 2.5s\nlog:\n  level: debug\n  format: json\n");
        assert_eq!(s.limits.write_interval, Duration::ZERO);
        assert_eq!(s.limits.fast_start_buffer, Duration::from_millis(2500));
        assert_eq!(s.limits.max_clients, 50);
        assert_eq!(
            s.limits.max_clients_per_ip,
            Limits::default().max_clients_per_ip
        );
        assert_eq!(s.limits.request_max_bytes, 32 << 10);
        assert_eq!(s.limits.handshake_timeout, Duration::from_secs(5));
        assert_eq!(s.limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(s.limits.client_backlog_bytes, 8 << 20);
        assert!((s.limits.fast_start_rate - 2.5).abs() < f64::EPSILON);
        assert_eq!(
            s.log,
            LogConfig {
                level: LogLevel::Debug,
                format: LogFormat::Json,
                clients: None,
            }
        );

        assert_eq!(
            ok("limits:\n  listen_backlog: 1024\n")
                .limits
                .listen_backlog,
            1024
        );
        assert_eq!(Limits::default().listen_backlog, 65_535);
        let e = err("limits:\n  listen_backlog: 8\n");
        assert_eq!(
            e,
            ["server.yaml:2:19: limits.listen_backlog: 8 is out of range 16–65535"]
        );
        let e = err("limits:\n  fast_start_rate: 100\n");
        assert_eq!(
            e,
            ["server.yaml:2:20: limits.fast_start_rate: 100 is out of range 1–16"]
        );
        let e = err("limits:\n  idle_timeout: 1s\n");
        assert_eq!(
            e,
            ["server.yaml:2:17: limits.idle_timeout: 1s is out of range 5s–60m"]
        );
        let e = err("log:\n  level: verbose\n");
        assert!(
            e[0].starts_with("server.yaml:2:10: log.level: unknown variant `verbose`"),
            "{e:?}"
        );
        let e = err("logs: {}\n");
        assert!(
            e[0].starts_with("server.yaml:1:1: logs: unknown field `logs`"),
            "{e:?}"
        );
    }

    #[test]
    fn status_and_metrics() {
        let d = ok("");
        assert!(!d.web.status && !d.web.metrics);
        assert_eq!(d.web.refresh_s, 10);
        let s = ok("status:\n  enabled: true\n  refresh_s: 0\nmetrics:\n  enabled: true\n");
        assert!(s.web.status && s.web.metrics);
        assert_eq!(s.web.refresh_s, 0);
        assert_eq!(
            err("status:\n  refresh_s: 7200\n"),
            ["server.yaml:2:14: status.refresh_s: 7200 is out of range 0–3600"]
        );
        let e = err("metrics:\n  enable: true\n");
        assert!(
            e[0].starts_with("server.yaml:2:3: metrics.enable: unknown field `enable`"),
            "{e:?}"
        );
        let e = err("status: yes please\n");
        assert!(e[0].starts_with("server.yaml:1:9: status: "), "{e:?}");
    }

    #[test]
    fn rtsp_settings() {
        assert_eq!(
            ok("").rtsp,
            RtspSettings {
                udp: true,
                mtu: 1450
            }
        );
        let s = ok("rtsp:\n  udp: false\n  mtu: 1000\n");
        assert_eq!(
            s.rtsp,
            RtspSettings {
                udp: false,
                mtu: 1000
            }
        );
        assert_eq!(ok("rtsp:\n  mtu: 576\n").rtsp.mtu, 576);
        assert!(ok("rtsp: {}\n").rtsp.udp);
        let e = err("rtsp:\n  mtu: 100\n");
        assert_eq!(
            e,
            ["server.yaml:2:8: rtsp.mtu: 100 is out of range 576–65000"]
        );
        let e = err("rtsp:\n  udp: maybe\n");
        assert!(e[0].starts_with("server.yaml:2:8: rtsp.udp: "), "{e:?}");
        let e = err("rtsp:\n  tcp: true\n");
        assert!(
            e[0].starts_with("server.yaml:2:3: rtsp.tcp: unknown field `tcp`"),
            "{e:?}"
        );
    }

    #[test]
    fn paths_and_host() {
        let s = ok("announce_dir: www\npublic_host: box.example.org\n");
        assert_eq!(s.announce_dir, PathBuf::from("etc/www"));
        assert_eq!(s.public_host.as_deref(), Some("box.example.org"));
        let s = ok("announce_dir: /tmp/asfcast-demo\n");
        assert_eq!(s.announce_dir, PathBuf::from("/tmp/asfcast-demo"));
        let e = err("public_host: box_1\n");
        assert!(
            e[0].starts_with("server.yaml:1:14: public_host: `box_1` is neither a host name"),
            "{e:?}"
        );
        let e = err("announce_dir: ''\n");
        assert!(
            e[0].starts_with("server.yaml:1:15: announce_dir: the path is empty"),
            "{e:?}"
        );
    }
}
