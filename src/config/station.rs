//! One station: the YAML file shape and the validated model.
//!
//! Why: a station file says what to play (`source`), how to send it (`multicast`,
//! `unicast`) and how to announce it (`announcement`: the .nsc and .asx files).
//! The pipeline is sozu's: `StationFile` mirrors the YAML with
//! `deny_unknown_fields` and self-checking value types, then `build` applies
//! defaults and the checks that involve several fields, giving a
//! [`StationConfig`].
//!
//! Protocol facts used for the defaults (see `docs/protocols/msb-nsc.md`):
//! FEC span SHOULD be 10 and MUST be 1–15 (MS-MSB 2.2.2; 0 here means no parity
//! packets); beacons every 1–10 s (MS-MSB 3.1.2); the .nsc `Time To Live` is the
//! IPv4 TTL / IPv6 hop limit. MS-MSB defines no default TTL, so 1 (one subnet)
//! is used.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::error::{syntax_check, ConfigError};
use super::locate::{locate_key, locate_nearest, locate_value, Seg};
use super::values::{
    AnnounceName, Bytes, FilePath, Interface, MulticastGroup, PlaylistFiles, Ranged, Seconds,
    StationName, Text, Url,
};

/// Default multicast TTL (one subnet; MS-MSB defines none).
pub const DEFAULT_TTL: u8 = 1;
/// Default FEC span (MS-MSB 2.2.2: SHOULD be 10).
pub const DEFAULT_FEC_SPAN: u8 = 10;
/// Default beacon interval.
pub const DEFAULT_BEACON_INTERVAL: Duration = Duration::from_secs(2);
/// Default per-station unicast client limit.
pub const DEFAULT_STATION_MAX_CLIENTS: u32 = 1000;

/// A validated station.
#[derive(Debug, Clone)]
pub struct StationConfig {
    /// The file the station was read from (not part of equality: moving a
    /// station to another file does not change what it does).
    pub file: PathBuf,
    /// The station name, also its URL path (`mms://box/<name>`).
    pub name: String,
    /// Free text for players (.nsc `Description`, .asx `<ABSTRACT>`).
    pub description: Option<String>,
    /// What the station plays.
    pub source: Source,
    /// MSB multicast delivery; `None` when the station is unicast only.
    pub multicast: Option<Multicast>,
    /// Unicast fallback delivery.
    pub unicast: Unicast,
    /// The .nsc and .asx files.
    pub announcement: Announcement,
    /// Who may watch and publish, by address (`access:`; see [`crate::access`]).
    pub access: crate::access::StationAccess,
    /// Who may watch: `None` for everyone ([`super::auth`]).
    pub auth: Option<super::auth::StationAuth>,
}

impl PartialEq for StationConfig {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let StationConfig {
            file: _,
            name,
            description,
            source,
            multicast,
            unicast,
            announcement,
            access,
            auth,
        } = self;
        *name == other.name
            && *auth == other.auth
            && *description == other.description
            && *source == other.source
            && *multicast == other.multicast
            && *unicast == other.unicast
            && *announcement == other.announcement
            && *access == other.access
    }
}

impl Eq for StationConfig {}

/// Where a station's ASF comes from. Written in YAML as a mapping tagged by
/// `type:`; live and relay sources will be added as further variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A list of ASF files played in order.
    Playlist(Playlist),
    /// An encoder pushes to the station ([`super::live`]).
    Push(super::live::Push),
    /// Pulled from a WMSP server: an encoder, VLC, FFmpeg, another station ([`Pull`]).
    Pull(Pull),
    /// Received from another station's MSB multicast ([`MulticastSource`]).
    Multicast(MulticastSource),
}

impl Source {
    /// The settings a live source shares (None for a playlist).
    pub fn live(&self) -> Option<&super::live::LiveSettings> {
        match self {
            Source::Playlist(_) => None,
            Source::Push(p) => Some(&p.live),
            Source::Pull(p) => Some(&p.live),
            Source::Multicast(m) => Some(&m.live),
        }
    }

    /// The files whose headers the station announces from the start.
    pub fn announced_files(&self) -> Vec<PathBuf> {
        match self {
            Source::Playlist(p) => p.files.clone(),
            _ => self
                .live()
                .map(super::live::LiveSettings::announced_files)
                .unwrap_or_default(),
        }
    }
}

/// Default first wait before a pull source connects again.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_secs(1);
/// Default longest wait between pull attempts.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Default silence after which a live upstream counts as lost.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pull source ([`crate::pull`]): asfcast connects to `url` as a WMSP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// `mmsh://` or `http://` URL of the upstream.
    pub url: String,
    /// Wait after the first failure; doubles per failure in a row.
    pub reconnect_min: Duration,
    /// Longest wait between attempts.
    pub reconnect_max: Duration,
    /// No data for this long (connecting, waiting for the answer, streaming): lost.
    pub timeout: Duration,
    /// The fallback slate and header template (its `stall_timeout` is `timeout`).
    pub live: super::live::LiveSettings,
}

/// Where a multicast source's `.nsc` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NscLocation {
    /// Fetched over HTTP (the upstream station's `/<name>.nsc`).
    Url(String),
    /// A file, relative paths resolved against the station file's directory.
    File(PathBuf),
}

/// A multicast relay source: another station's MSB multicast, as its `.nsc` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastSource {
    pub nsc: NscLocation,
    /// The interface to join the group on (default: the routing table's choice).
    pub interface: Option<Interface>,
    /// No data packet for this long: lost (beacons alone do not count).
    pub timeout: Duration,
    /// The fallback slate and header template (its `stall_timeout` is `timeout`).
    pub live: super::live::LiveSettings,
}

/// A playlist source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist {
    /// The files, relative paths already resolved against the directory of the
    /// station's YAML file. A missing file is not a config error: at run time it
    /// is logged, skipped and retried.
    pub files: Vec<PathBuf>,
    /// Start again at the first file after the last one.
    pub looping: bool,
}

/// MSB multicast delivery ([MS-MSB]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multicast {
    /// The multicast group (IPv4 or IPv6).
    pub group: IpAddr,
    /// The UDP destination port.
    pub port: u16,
    /// IPv4 TTL or IPv6 hop limit; 0 keeps packets on this host.
    pub ttl: u8,
    /// The interface packets leave through.
    pub interface: Interface,
    /// Data packets per XOR parity packet; 0 sends no parity.
    pub fec_span: u8,
    /// Time between beacons while no data is sent.
    pub beacon_interval: Duration,
    /// DiffServ code point (0–63) in the IP header.
    pub dscp: u8,
    /// Whether this host also receives its own multicast (IP_MULTICAST_LOOP).
    pub loopback: bool,
    /// SO_SNDBUF in bytes; `None` keeps the system default.
    pub send_buffer: Option<usize>,
    /// Spread bursts at the header's declared bit rate, holding no datagram longer than this
    /// ([`crate::msb::departures`]); `None` sends each datagram when its packet is due.
    pub smoothing: Option<Duration>,
}

impl Multicast {
    /// The group and port as a socket address.
    pub fn destination(&self) -> SocketAddr {
        SocketAddr::new(self.group, self.port)
    }
}

/// Unicast fallback delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unicast {
    /// Serve `mms://` (MMS over TCP/UDP, port 1755).
    pub mms: bool,
    /// Serve MMS over HTTP (`mmsh://`, `http://`).
    pub mmsh: bool,
    /// Serve `rtsp://` with the Windows Media extensions.
    pub rtsp: bool,
    /// Most unicast clients of this station at once.
    pub max_clients: u32,
    /// The station's own limits (`limits:` in the station file; [`crate::access::limits`]):
    /// they apply to its unicast clients, in place on reload like `max_clients`.
    pub limits: crate::access::limits::LimitSet,
}

impl Default for Unicast {
    fn default() -> Self {
        Unicast {
            mms: true,
            mmsh: true,
            rtsp: true,
            max_clients: DEFAULT_STATION_MAX_CLIENTS,
            limits: crate::access::limits::LimitSet::default(),
        }
    }
}

impl Unicast {
    /// True when at least one unicast protocol is on.
    pub fn any(&self) -> bool {
        self.mms || self.mmsh || self.rtsp
    }
}

/// The announcement files written into the server's `announce_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// File name of the .nsc station file (only written with multicast).
    pub nsc: String,
    /// File name of the .asx metafile.
    pub asx: String,
    /// Rollover URL written into the .nsc `Unicast URL` and the .asx; `None`
    /// means the server builds it from its listeners and `public_host`.
    pub unicast_url: Option<String>,
    /// Client logging URL (.nsc `Log URL`).
    pub log_url: Option<String>,
    /// Further URLs the .asx lists after the station's own (in order): the other renditions of
    /// an MBR programme offered as one multicast station each, so a player that cannot play
    /// this one rolls over to the next.
    pub alternates: Vec<String>,
}

// ---------------------------------------------------------------------------
// File shape
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a station mapping (name, source, multicast, unicast, announcement, access, auth, limits)"
)]
struct StationFile {
    name: StationName,
    description: Option<Text>,
    source: SourceFile,
    multicast: Option<MulticastFile>,
    unicast: Option<UnicastFile>,
    announcement: Option<AnnouncementFile>,
    access: Option<super::access::StationAccessFile>,
    auth: Option<super::auth::AuthFile>,
    limits: Option<super::limits::StationLimitsFile>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of multicast settings (group, port, interface, ...)"
)]
struct MulticastFile {
    group: MulticastGroup,
    port: Ranged<u16, 1, 65535>,
    ttl: Option<Ranged<u8, 0, 255>>,
    interface: Interface,
    fec_span: Option<Ranged<u8, 0, 15>>,
    beacon_interval: Option<Seconds<1000, 10_000>>,
    dscp: Option<Ranged<u8, 0, 63>>,
    loopback: Option<bool>,
    send_buffer: Option<Bytes<4096, { 256 << 20 }>>,
    smoothing: Option<Seconds<10, 10_000>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of unicast settings (mms, mmsh, rtsp, max_clients)"
)]
struct UnicastFile {
    mms: Option<bool>,
    mmsh: Option<bool>,
    rtsp: Option<bool>,
    max_clients: Option<Ranged<u32, 1, 1_000_000>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of announcement settings (nsc, asx, unicast_url, log_url, alternates)"
)]
struct AnnouncementFile {
    nsc: Option<AnnounceName<false>>,
    asx: Option<AnnounceName<true>>,
    unicast_url: Option<Url<false>>,
    log_url: Option<Url<true>>,
    alternates: Option<Vec<Url<false>>>,
}

/// The `source:` mapping. Read by hand rather than as a serde internally tagged
/// enum: serde buffers tagged enums, which loses every line number inside.
/// Fields of all source types are read (each at its own position), then the
/// `type` decides which belong.
struct SourceFile {
    kind: SourceKind,
    files: Option<PlaylistFiles>,
    looping: Option<bool>,
    live: LiveSourceFields,
    /// A field of another source type, and why it is refused.
    stray: Option<(&'static str, String)>,
}

/// The fields of the live source types (`push`, `pull`, `multicast`); which belong to which
/// is decided by `type` (see `SourceKind::fields`).
#[derive(Default)]
struct LiveSourceFields {
    url: Option<PullUrlValue>,
    reconnect_min: Option<Seconds<100, 600_000>>,
    reconnect_max: Option<Seconds<100, 3_600_000>>,
    timeout: Option<Seconds<1000, 600_000>>,
    nsc: Option<NscValue>,
    interface: Option<Interface>,
    fallback: Option<PlaylistFiles>,
    stall_timeout: Option<Seconds<1000, 120_000>>,
    header_template: Option<FilePath>,
    auth: Option<super::auth::AuthFile>,
}

/// A pull source URL, checked by [`crate::pull::PullUrl::parse`].
struct PullUrlValue(String);

impl<'de> Deserialize<'de> for PullUrlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PullUrlValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an mmsh:// or http:// URL")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PullUrlValue, E> {
                crate::pull::PullUrl::parse(v).map_err(E::custom)?;
                Ok(PullUrlValue(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// A multicast source's `.nsc`: an `http://` URL or a file path.
struct NscValue(NscLocation);

impl<'de> Deserialize<'de> for NscValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NscValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an .nsc file path or http:// URL")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NscValue, E> {
                if v.contains("://") {
                    super::values::check_url(v, &["http"]).map_err(E::custom)?;
                    return Ok(NscValue(NscLocation::Url(v.to_string())));
                }
                super::values::check_file_path(v).map_err(E::custom)?;
                Ok(NscValue(NscLocation::File(PathBuf::from(v))))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SourceKind {
    Playlist,
    Push,
    Pull,
    Multicast,
}

const SOURCE_FIELDS: &[&str] = &[
    "type",
    "files",
    "loop",
    "url",
    "reconnect_min",
    "reconnect_max",
    "timeout",
    "nsc",
    "interface",
    "fallback",
    "stall_timeout",
    "header_template",
    "auth",
];

enum SourceKey {
    Type,
    Files,
    Loop,
    Live(&'static str),
}

impl<'de> Deserialize<'de> for SourceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SourceKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source field")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SourceKey, E> {
                match v {
                    "type" => Ok(SourceKey::Type),
                    "files" => Ok(SourceKey::Files),
                    "loop" => Ok(SourceKey::Loop),
                    other => match SOURCE_FIELDS[3..].iter().find(|f| **f == other) {
                        Some(f) => Ok(SourceKey::Live(f)),
                        None => Err(E::unknown_field(other, SOURCE_FIELDS)),
                    },
                }
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for SourceFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SourceFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source mapping such as {type: playlist, files: [a.asf]}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SourceFile, A::Error> {
                let mut kind = None;
                let mut files = None;
                let mut looping = None;
                let mut live = LiveSourceFields::default();
                let mut seen_live: Vec<&'static str> = Vec::new();
                while let Some(key) = map.next_key::<SourceKey>()? {
                    match key {
                        SourceKey::Live(f) if seen_live.contains(&f) => {
                            return Err(de::Error::duplicate_field(f))
                        }
                        SourceKey::Live(f) => {
                            seen_live.push(f);
                            match f {
                                "url" => live.url = Some(map.next_value()?),
                                "reconnect_min" => live.reconnect_min = Some(map.next_value()?),
                                "reconnect_max" => live.reconnect_max = Some(map.next_value()?),
                                "timeout" => live.timeout = Some(map.next_value()?),
                                "nsc" => live.nsc = Some(map.next_value()?),
                                "interface" => live.interface = Some(map.next_value()?),
                                "fallback" => live.fallback = Some(map.next_value()?),
                                "stall_timeout" => live.stall_timeout = Some(map.next_value()?),
                                "header_template" => live.header_template = Some(map.next_value()?),
                                _ => live.auth = Some(map.next_value()?),
                            }
                        }
                        SourceKey::Type if kind.is_none() => kind = Some(map.next_value()?),
                        SourceKey::Files if files.is_none() => files = Some(map.next_value()?),
                        SourceKey::Loop if looping.is_none() => looping = Some(map.next_value()?),
                        SourceKey::Type => return Err(de::Error::duplicate_field("type")),
                        SourceKey::Files => return Err(de::Error::duplicate_field("files")),
                        SourceKey::Loop => return Err(de::Error::duplicate_field("loop")),
                    }
                }
                let kind = kind.ok_or_else(|| {
                    de::Error::custom(
                        "missing field `type` (the source type, such as `type: playlist`)",
                    )
                })?;
                // Fields that belong to another source type are refused by name.
                let (allowed, name): (&[&str], &str) = match kind {
                    SourceKind::Playlist => (&["files", "loop"], "playlist"),
                    SourceKind::Push => (
                        &["fallback", "stall_timeout", "header_template", "auth"],
                        "push",
                    ),
                    SourceKind::Pull => (
                        &[
                            "url",
                            "reconnect_min",
                            "reconnect_max",
                            "timeout",
                            "fallback",
                            "header_template",
                        ],
                        "pull",
                    ),
                    SourceKind::Multicast => (
                        &["nsc", "interface", "timeout", "fallback", "header_template"],
                        "multicast",
                    ),
                };
                let present = [("files", files.is_some()), ("loop", looping.is_some())];
                let stray = present
                    .iter()
                    .filter(|(_, p)| *p)
                    .map(|(f, _)| *f)
                    .chain(seen_live.iter().copied())
                    .find(|f| !allowed.contains(f));
                // Reported by `build`, at the field's own position.
                let stray = stray.map(|f| {
                    (
                        f,
                        format!(
                            "does not belong to a {name} source (its fields: {})",
                            allowed.join(", ")
                        ),
                    )
                });
                match kind {
                    SourceKind::Playlist if files.is_none() => Err(de::Error::custom(
                        "missing field `files` (a playlist needs a list of ASF files)",
                    )),
                    SourceKind::Pull if live.url.is_none() => Err(de::Error::custom(
                        "missing field `url` (a pull source needs the mmsh:// or http:// URL of its upstream)",
                    )),
                    SourceKind::Multicast if live.nsc.is_none() => Err(de::Error::custom(
                        "missing field `nsc` (a multicast source needs the upstream's .nsc file or http:// URL)",
                    )),
                    _ => Ok(SourceFile {
                        kind,
                        files,
                        looping,
                        live,
                        stray,
                    }),
                }
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Reads and validates one station file. `path` names the file in errors and
/// anchors relative media paths.
pub fn parse(path: &Path, text: &str) -> Result<StationConfig, Vec<ConfigError>> {
    if text.trim().is_empty() {
        return Err(vec![ConfigError::file(
            path,
            "the file is empty; a station needs at least `name` and `source`",
        )]);
    }
    syntax_check(path, text).map_err(|e| vec![e])?;
    let de = serde_norway::Deserializer::from_str(text);
    let file: StationFile =
        serde_path_to_error::deserialize(de).map_err(|e| vec![ConfigError::from_yaml(path, e)])?;
    build(path, text, file)
}

/// A relay's (pull, multicast) live settings: its fallback and template; its upstream
/// `timeout` is the silence after which the fallback plays.
fn relay_settings(
    base: &Path,
    fallback: Option<PlaylistFiles>,
    header_template: Option<FilePath>,
    timeout: Duration,
) -> super::live::LiveSettings {
    super::live::build_settings(
        base,
        fallback.map(|f| f.0),
        Some(timeout),
        header_template.map(|p| p.0),
    )
}

fn build(path: &Path, text: &str, file: StationFile) -> Result<StationConfig, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    let name = file.name.0;

    if let Some((field, why)) = &file.source.stray {
        let at = locate_key(text, &[Seg::Key("source"), Seg::Key(field)]).unwrap_or((1, 1));
        errors.push(ConfigError::at(
            path,
            at,
            format!("source.{field}"),
            why.clone(),
        ));
    }
    let source = match file.source.kind {
        SourceKind::Playlist => Source::Playlist(Playlist {
            files: file
                .source
                .files
                .map(|f| f.0)
                .unwrap_or_default()
                .into_iter()
                .map(|f| base.join(f))
                .collect(),
            looping: file.source.looping.unwrap_or(true),
        }),
        SourceKind::Push => {
            let l = file.source.live;
            Source::Push(super::live::Push {
                live: super::live::build_settings(
                    base,
                    l.fallback.map(|f| f.0),
                    l.stall_timeout.map(|v| v.0),
                    l.header_template.map(|p| p.0),
                ),
                auth: super::auth::build_push(path, text, base, l.auth, &mut errors),
            })
        }
        SourceKind::Pull => {
            let live = file.source.live;
            let reconnect_min = live.reconnect_min.map_or(DEFAULT_RECONNECT_MIN, |v| v.0);
            let reconnect_max = live.reconnect_max.map_or(DEFAULT_RECONNECT_MAX, |v| v.0);
            if reconnect_min > reconnect_max {
                let at = locate_nearest(
                    text,
                    &[Seg::Key("source"), Seg::Key("reconnect_max")],
                    false,
                );
                errors.push(ConfigError::at(
                    path,
                    at,
                    "source.reconnect_max",
                    format!(
                        "{} is shorter than reconnect_min ({})",
                        super::values::human_duration(reconnect_max),
                        super::values::human_duration(reconnect_min)
                    ),
                ));
            }
            let timeout = live.timeout.map_or(DEFAULT_SOURCE_TIMEOUT, |v| v.0);
            Source::Pull(Pull {
                url: live.url.map(|u| u.0).unwrap_or_default(),
                reconnect_min,
                reconnect_max,
                timeout,
                live: relay_settings(base, live.fallback, live.header_template, timeout),
            })
        }
        SourceKind::Multicast => {
            let live = file.source.live;
            let timeout = live.timeout.map_or(DEFAULT_SOURCE_TIMEOUT, |v| v.0);
            Source::Multicast(MulticastSource {
                nsc: match live.nsc.map(|n| n.0) {
                    Some(NscLocation::File(f)) => NscLocation::File(base.join(f)),
                    Some(u) => u,
                    None => NscLocation::File(PathBuf::new()),
                },
                interface: live.interface,
                timeout,
                live: relay_settings(base, live.fallback, live.header_template, timeout),
            })
        }
    };

    let multicast = file.multicast.map(|m| Multicast {
        group: m.group.0,
        port: m.port.0,
        ttl: m.ttl.map_or(DEFAULT_TTL, |v| v.0),
        interface: m.interface,
        fec_span: m.fec_span.map_or(DEFAULT_FEC_SPAN, |v| v.0),
        beacon_interval: m.beacon_interval.map_or(DEFAULT_BEACON_INTERVAL, |v| v.0),
        dscp: m.dscp.map_or(0, |v| v.0),
        loopback: m.loopback.unwrap_or(true),
        send_buffer: m.send_buffer.and_then(|v| usize::try_from(v.0).ok()),
        smoothing: m.smoothing.map(|v| v.0),
    });

    if let Some(m) = &multicast {
        if let Interface::Address(a) = m.interface {
            if a.is_ipv4() != m.group.is_ipv4() {
                let family = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                let at =
                    locate_nearest(text, &[Seg::Key("multicast"), Seg::Key("interface")], false);
                errors.push(ConfigError::at(
                    path,
                    at,
                    "multicast.interface",
                    format!(
                        "{a} is an {} address but the group {} is {}; give an {} address or the interface name",
                        family(a),
                        m.group,
                        family(m.group),
                        family(m.group)
                    ),
                ));
            }
        }
    }

    let limits = file.limits.map(|l| l.build()).unwrap_or_default();
    let mut unicast = file.unicast.map_or_else(Unicast::default, |u| {
        let d = Unicast::default();
        Unicast {
            mms: u.mms.unwrap_or(d.mms),
            mmsh: u.mmsh.unwrap_or(d.mmsh),
            rtsp: u.rtsp.unwrap_or(d.rtsp),
            max_clients: u.max_clients.map_or(d.max_clients, |v| v.0),
            ..d
        }
    });
    unicast.limits = limits;

    if multicast.is_none() && !unicast.any() {
        let at = locate_key(text, &[Seg::Key("unicast")]).unwrap_or((1, 1));
        errors.push(ConfigError::at(
            path,
            at,
            "unicast",
            "the station reaches nobody: add a `multicast` section or turn on mms, mmsh or rtsp",
        ));
    }

    let announcement = match file.announcement {
        None => Announcement {
            nsc: format!("{name}.nsc"),
            asx: format!("{name}.asx"),
            unicast_url: None,
            log_url: None,
            alternates: Vec::new(),
        },
        Some(a) => Announcement {
            nsc: a.nsc.map_or_else(|| format!("{name}.nsc"), |v| v.0),
            asx: a.asx.map_or_else(|| format!("{name}.asx"), |v| v.0),
            unicast_url: a.unicast_url.map(|v| v.0),
            log_url: a.log_url.map(|v| v.0),
            alternates: a
                .alternates
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.0)
                .collect(),
        },
    };

    let auth = super::auth::build_station(path, text, base, file.auth, &mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StationConfig {
        file: path.to_path_buf(),
        name,
        description: file.description.map(|d| d.0),
        source,
        multicast,
        unicast,
        announcement,
        access: super::access::station(file.access),
        auth,
    })
}

/// Position of the station's `name` value, for cross-file errors.
pub(crate) fn name_position(text: &str) -> (usize, usize) {
    locate_value(text, &[Seg::Key("name")]).unwrap_or((1, 1))
}

/// Position of the station's `multicast.group` value, for cross-file errors.
pub(crate) fn group_position(text: &str) -> (usize, usize) {
    locate_nearest(text, &[Seg::Key("multicast"), Seg::Key("group")], false)
}

/// Position of `announcement.<which>` (or the station name when defaulted).
pub(crate) fn announce_position(text: &str, which: &str) -> (usize, usize) {
    locate_value(text, &[Seg::Key("announcement"), Seg::Key(which)])
        .unwrap_or_else(|| name_position(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> StationConfig {
        match parse(Path::new("conf/s.yaml"), text) {
            Ok(s) => s,
            Err(e) => panic!("unexpected errors: {e:?}"),
        }
    }

    fn err(text: &str) -> Vec<String> {
        match parse(Path::new("s.yaml"), text) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    const MINIMAL: &str = "name: demo\nsource:\n  type: playlist\n  files: [media/a.asf]\n";

    #[test]
    fn minimal_station_gets_defaults() {
        let s = ok(MINIMAL);
        assert_eq!(s.name, "demo");
        assert_eq!(
            s.source,
            Source::Playlist(Playlist {
                files: vec![PathBuf::from("conf/media/a.asf")],
                looping: true
            })
        );
        assert_eq!(s.multicast, None);
        assert_eq!(s.unicast, Unicast::default());
        assert_eq!(s.announcement.nsc, "demo.nsc");
        assert_eq!(s.announcement.asx, "demo.asx");
    }

    #[test]
    fn absolute_media_paths_stay() {
        let s = ok("name: a\nsource: {type: playlist, files: [/srv/x.asf], loop: false}\n");
        assert_eq!(
            s.source,
            Source::Playlist(Playlist {
                files: vec![PathBuf::from("/srv/x.asf")],
                looping: false
            })
        );
    }

    #[test]
    fn multicast_defaults_and_values() {
        let s = ok(&format!(
            "{MINIMAL}multicast:\n  group: 239.255.42.42\n  port: 19009\n  interface: lo\n"
        ));
        let m = s.multicast.unwrap_or_else(|| panic!("no multicast"));
        assert_eq!(
            m.destination(),
            "239.255.42.42:19009".parse().unwrap_or_else(|_| panic!())
        );
        assert_eq!(m.ttl, DEFAULT_TTL);
        assert_eq!(m.fec_span, 10);
        assert_eq!(m.beacon_interval, Duration::from_secs(2));
        assert_eq!(m.dscp, 0);
        assert!(m.loopback);
        assert_eq!(m.send_buffer, None);
        assert_eq!(m.smoothing, None);
        assert_eq!(m.interface, Interface::Name("lo".into()));

        let s = ok(&format!(
            "{MINIMAL}multicast:\n  group: ff05::42\n  port: 5000\n  interface: eth0\n  ttl: 0\n  fec_span: 0\n  beacon_interval: 1500ms\n  dscp: 34\n  loopback: false\n  send_buffer: 1MiB\n  smoothing: 800ms\n"
        ));
        let m = s.multicast.unwrap_or_else(|| panic!("no multicast"));
        assert_eq!((m.ttl, m.fec_span, m.dscp, m.loopback), (0, 0, 34, false));
        assert_eq!(m.beacon_interval, Duration::from_millis(1500));
        assert_eq!(m.send_buffer, Some(1 << 20));
        assert_eq!(m.smoothing, Some(Duration::from_millis(800)));
    }

    #[test]
    fn range_errors_point_at_the_value() {
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: lo\n  ttl: 300\n"
        ));
        assert_eq!(e, ["s.yaml:9:8: multicast.ttl: 300 is out of range 0–255"]);
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: lo\n  dscp: 64\n"
        ));
        assert_eq!(e, ["s.yaml:9:9: multicast.dscp: 64 is out of range 0–63"]);
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: lo\n  smoothing: 20s\n"
        ));
        assert_eq!(
            e,
            ["s.yaml:9:14: multicast.smoothing: 20s is out of range 10ms–10s"]
        );
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: lo\n  fec_span: 16\n"
        ));
        assert_eq!(
            e,
            ["s.yaml:9:13: multicast.fec_span: 16 is out of range 0–15"]
        );
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 70000\n  interface: lo\n"
        ));
        assert_eq!(
            e,
            ["s.yaml:7:9: multicast.port: 70000 is out of range 1–65535"]
        );
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: lo\n  beacon_interval: 20s\n"
        ));
        assert_eq!(
            e,
            ["s.yaml:9:20: multicast.beacon_interval: 20s is out of range 1s–10s"]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = err(&format!("{MINIMAL}colour: blue\n"));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("s.yaml:5:1: colour: unknown field `colour`"),
            "{e:?}"
        );
        let e = err("name: a\nsource:\n  type: playlist\n  files: [a.asf]\n  lop: true\n");
        assert!(
            e[0].starts_with("s.yaml:5:3: source.lop: unknown field `lop`"),
            "{e:?}"
        );
        let e = err(&format!("{MINIMAL}unicast:\n  mmsx: true\n"));
        assert!(
            e[0].starts_with("s.yaml:6:3: unicast.mmsx: unknown field `mmsx`"),
            "{e:?}"
        );
    }

    #[test]
    fn live_sources_get_defaults_and_check_their_fields() {
        let c = ok("name: e\nsource:\n  type: pull\n  url: mmsh://127.0.0.1:8080/live\n");
        assert_eq!(
            c.source,
            Source::Pull(Pull {
                url: "mmsh://127.0.0.1:8080/live".into(),
                reconnect_min: DEFAULT_RECONNECT_MIN,
                reconnect_max: DEFAULT_RECONNECT_MAX,
                timeout: DEFAULT_SOURCE_TIMEOUT,
                live: crate::config::live::LiveSettings {
                    stall_timeout: DEFAULT_SOURCE_TIMEOUT,
                    ..Default::default()
                },
            })
        );
        let c = ok("name: e\nsource:\n  type: pull\n  url: http://enc:8080\n  reconnect_min: 250ms\n  reconnect_max: 1m\n  timeout: 3s\n");
        let Source::Pull(p) = &c.source else {
            panic!("{:?}", c.source)
        };
        assert_eq!(
            (p.reconnect_min, p.reconnect_max, p.timeout),
            (
                Duration::from_millis(250),
                Duration::from_secs(60),
                Duration::from_secs(3)
            )
        );
        let c = ok("name: r\nsource:\n  type: multicast\n  nsc: up/news.nsc\n  interface: lo\n");
        assert_eq!(
            c.source,
            Source::Multicast(MulticastSource {
                nsc: NscLocation::File(PathBuf::from("conf/up/news.nsc")),
                interface: Some(Interface::Name("lo".into())),
                timeout: DEFAULT_SOURCE_TIMEOUT,
                live: crate::config::live::LiveSettings {
                    stall_timeout: DEFAULT_SOURCE_TIMEOUT,
                    ..Default::default()
                },
            })
        );
        let c = ok("name: r\nsource:\n  type: multicast\n  nsc: http://origin/news.nsc\n");
        let Source::Multicast(m) = &c.source else {
            panic!("{:?}", c.source)
        };
        assert_eq!(m.nsc, NscLocation::Url("http://origin/news.nsc".into()));
        #[rustfmt::skip]
        let cases = [
            ("name: a\nsource:\n  type: pull\n", "s.yaml:3:3: source: missing field `url`"),
            ("name: a\nsource:\n  type: pull\n  url: mms://h/x\n", "s.yaml:4:8: source.url: `mms://h/x` is not an mmsh:// or http:// URL"),
            ("name: a\nsource:\n  type: pull\n  url: http://u:p@h/x\n", "s.yaml:4:8: source.url: `http://u:p@h/x` carries a user name"),
            ("name: a\nsource:\n  type: pull\n  url: http://h/x\n  files: [a.asf]\n", "s.yaml:5:3: source.files: does not belong to a pull source"),
            ("name: a\nsource:\n  type: pull\n  url: http://h/x\n  nsc: a.nsc\n", "s.yaml:5:3: source.nsc: does not belong to a pull source"),
            ("name: a\nsource:\n  type: playlist\n  files: [a.asf]\n  url: http://h/x\n", "s.yaml:5:3: source.url: does not belong to a playlist source"),
            ("name: a\nsource:\n  type: pull\n  url: http://h/x\n  url: http://h/y\n", "duplicate field `url`"),
            ("name: a\nsource:\n  type: pull\n  url: http://h/x\n  reconnect_min: 5s\n  reconnect_max: 1s\n", "s.yaml:6:18: source.reconnect_max: 1s is shorter than reconnect_min (5s)"),
            ("name: a\nsource:\n  type: pull\n  url: http://h/x\n  timeout: 50ms\n", "s.yaml:5:12: source.timeout: 50ms is out of range 1s–10m"),
            ("name: a\nsource:\n  type: multicast\n", "missing field `nsc`"),
            ("name: a\nsource:\n  type: multicast\n  nsc: ftp://h/a.nsc\n", "s.yaml:4:8: source.nsc: `ftp://h/a.nsc` has scheme `ftp`"),
            ("name: a\nsource:\n  type: multicast\n  nsc: a.nsc\n  interface: 239.1.1.1\n", "s.yaml:5:14: source.interface:"),
            ("name: a\nsource:\n  type: multicast\n  nsc: a.nsc\n  reconnect_min: 1s\n", "s.yaml:5:3: source.reconnect_min: does not belong to a multicast source"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e[0].contains(want), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn source_errors() {
        let e = err("name: a\nsource:\n  files: [a.asf]\n");
        assert!(e[0].contains("source: missing field `type`"), "{e:?}");
        let e = err("name: a\nsource:\n  type: playlist\n");
        assert!(e[0].contains("source: missing field `files`"), "{e:?}");
        let e = err("name: a\nsource:\n  type: tape\n  files: [a]\n");
        assert!(
            e[0].starts_with("s.yaml:3:9: source.type: unknown variant `tape`"),
            "{e:?}"
        );
        let e = err("name: a\nsource:\n  type: playlist\n  files: []\n");
        assert!(
            e[0].starts_with("s.yaml:4:10: source.files: the playlist is empty"),
            "{e:?}"
        );
        let e = err("name: a\nsource:\n  type: playlist\n  type: playlist\n  files: [a]\n");
        assert!(e[0].contains("duplicate field `type`"), "{e:?}");
        let e = err("name: a\n");
        assert!(e[0].contains("missing field `source`"), "{e:?}");
    }

    #[test]
    fn group_and_interface_checks() {
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 10.1.2.3\n  port: 5000\n  interface: lo\n"
        ));
        assert!(
            e[0].starts_with("s.yaml:6:10: multicast.group: 10.1.2.3 is not a multicast address"),
            "{e:?}"
        );
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: ff05::1\n  port: 5000\n  interface: 192.168.1.2\n"
        ));
        assert!(
            e[0].starts_with("s.yaml:8:14: multicast.interface: 192.168.1.2 is an IPv4 address but the group ff05::1 is IPv6"),
            "{e:?}"
        );
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: eth0/1\n"
        ));
        assert!(
            e[0].starts_with("s.yaml:8:14: multicast.interface: `eth0/1` is neither"),
            "{e:?}"
        );
        let e = err(&format!(
            "{MINIMAL}multicast:\n  group: 239.1.1.1\n  port: 5000\n"
        ));
        assert!(
            e[0].contains("multicast: missing field `interface`"),
            "{e:?}"
        );
    }

    #[test]
    fn name_checks() {
        let e = err("name: Demo Station\nsource: {type: playlist, files: [a]}\n");
        assert!(
            e[0].starts_with("s.yaml:1:7: name: `Demo Station` is not a valid station name"),
            "{e:?}"
        );
    }

    #[test]
    fn station_must_reach_someone() {
        let e = err(&format!(
            "{MINIMAL}unicast:\n  mms: false\n  mmsh: false\n  rtsp: false\n"
        ));
        assert_eq!(
            e,
            ["s.yaml:5:1: unicast: the station reaches nobody: add a `multicast` section or turn on mms, mmsh or rtsp"]
        );
    }

    #[test]
    fn announcement_fields() {
        let s = ok(&format!(
            "{MINIMAL}announcement:\n  nsc: news.nsc\n  asx: news.asx\n  unicast_url: mms://box.example/demo\n  log_url: http://box.example/log\n"
        ));
        assert_eq!(s.announcement.nsc, "news.nsc");
        assert_eq!(
            s.announcement.unicast_url.as_deref(),
            Some("mms://box.example/demo")
        );
        let e = err(&format!("{MINIMAL}announcement:\n  nsc: ../x.nsc\n"));
        assert!(
            e[0].starts_with("s.yaml:6:8: announcement.nsc: `../x.nsc` is not a plain file name"),
            "{e:?}"
        );
        let e = err(&format!(
            "{MINIMAL}announcement:\n  unicast_url: ftp://x/y\n"
        ));
        assert!(
            e[0].starts_with("s.yaml:6:16: announcement.unicast_url: `ftp://x/y` has scheme `ftp`"),
            "{e:?}"
        );
        // MBR renditions on multicast: the .asx lists the other stations after this one.
        let s = ok(&format!(
            "{MINIMAL}announcement:\n  alternates: [http://box/news-300k.nsc, mms://box/news-100k]\n"
        ));
        assert_eq!(
            s.announcement.alternates,
            ["http://box/news-300k.nsc", "mms://box/news-100k"]
        );
        let e = err(&format!(
            "{MINIMAL}announcement:\n  alternates: [ftp://x/y]\n"
        ));
        assert!(
            e[0].starts_with("s.yaml:6:16: announcement.alternates"),
            "{e:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn ttl_is_accepted_exactly_in_range(ttl in 0u32..2000, pad in 0usize..4) {
            let text = format!(
                "{MINIMAL}{}multicast:\n  group: 239.1.1.1\n  port: 5000\n  interface: lo\n  ttl: {ttl}\n",
                "\n".repeat(pad)
            );
            match parse(Path::new("s.yaml"), &text) {
                Ok(s) => {
                    proptest::prop_assert!(ttl <= 255);
                    proptest::prop_assert_eq!(s.multicast.map(|m| u32::from(m.ttl)), Some(ttl));
                }
                Err(e) => {
                    proptest::prop_assert!(ttl > 255);
                    let want = format!(
                        "s.yaml:{}:8: multicast.ttl: {ttl} is out of range 0–255",
                        9 + pad
                    );
                    proptest::prop_assert_eq!(e.iter().map(ToString::to_string).collect::<Vec<_>>(), vec![want]);
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(Path::new("s.yaml"), &text);
            let _ = super::super::server::parse(Path::new("server.yaml"), &text);
        }

        #[test]
        fn yaml_shaped_noise_never_panics(
            lines in proptest::collection::vec("( {0,4})(name|source|type|files|multicast|group|port|ttl|- |[a-z]{1,5})(: )?([0-9a-z.:\\[\\]{},]{0,12})", 0..12)
        ) {
            let text = lines.join("\n");
            let _ = parse(Path::new("s.yaml"), &text);
        }
    }

    #[test]
    fn equality_ignores_the_file() {
        let a = ok(MINIMAL);
        let mut b = a.clone();
        b.file = PathBuf::from("elsewhere.yaml");
        assert_eq!(a, b);
        b.unicast.rtsp = false;
        assert_ne!(a, b);
    }

    #[test]
    fn empty_and_broken_yaml() {
        assert_eq!(
            err("  \n"),
            ["s.yaml: the file is empty; a station needs at least `name` and `source`"]
        );
        let e = err("name: [a\n");
        assert_eq!(
            e,
            ["s.yaml:2:1: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence"]
        );
        let e = err("name: a\n\tsource: x\n");
        assert!(
            e[0].starts_with("s.yaml:2:1: invalid YAML: found a tab character"),
            "{e:?}"
        );
        let e = err("name: a\n---\nname: b\n");
        assert!(
            e[0].starts_with("s.yaml: the file holds more than one YAML document"),
            "{e:?}"
        );
        let e = err("name: a\nsource: {type: playlist, files: [a]}\nmulticast: 239.1.1.1\n");
        assert_eq!(
            e,
            ["s.yaml:3:12: multicast: invalid type: string \"239.1.1.1\", expected a mapping of multicast settings (group, port, interface, ...)"]
        );
        let e = err("- a\n- b\n");
        assert!(
            e[0].starts_with("s.yaml:1:1: invalid type: sequence"),
            "{e:?}"
        );
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    fn parse_at(text: &str) -> Result<StationConfig, Vec<String>> {
        parse(Path::new("conf/s.yaml"), text)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn push_sources_and_their_fields() {
        let s = parse_at("name: live\nsource:\n  type: push\n").unwrap();
        let Source::Push(p) = &s.source else {
            panic!("{:?}", s.source)
        };
        assert_eq!(p.live, super::super::live::LiveSettings::default());
        assert!(p.auth.is_none());
        assert!(s.source.announced_files().is_empty());

        let s = parse_at(
            "name: live\nsource:\n  type: push\n  fallback: [slate.asf, b.asf]\n  stall_timeout: 1500ms\n  \
             header_template: t.asf\n  auth:\n    realm: push\n    users_file: p.digest\n",
        )
        .unwrap();
        let Source::Push(p) = &s.source else {
            panic!("{:?}", s.source)
        };
        let conf = Path::new("conf");
        assert_eq!(
            p.live.fallback,
            [conf.join("slate.asf"), conf.join("b.asf")]
        );
        assert_eq!(p.live.stall_timeout, Duration::from_millis(1500));
        assert_eq!(p.live.header_template, Some(conf.join("t.asf")));
        let a = p.auth.as_ref().unwrap();
        assert_eq!(
            (a.realm.as_str(), a.users_file.clone()),
            ("push", Some(conf.join("p.digest")))
        );
        assert_eq!(
            s.source.announced_files(),
            [
                conf.join("t.asf"),
                conf.join("slate.asf"),
                conf.join("b.asf")
            ]
        );
    }

    #[test]
    fn live_fields_are_refused_where_they_do_not_belong() {
        let cases = [
            (
                "name: a\nsource:\n  type: playlist\n  files: [a.asf]\n  fallback: [b.asf]\n",
                "conf/s.yaml:5:3: source.fallback: does not belong to a playlist source",
            ),
            (
                "name: a\nsource:\n  type: push\n  files: [a.asf]\n",
                "conf/s.yaml:4:3: source.files: does not belong to a push source",
            ),
            (
                "name: a\nsource:\n  type: push\n  stall_timeout: 500ms\n",
                "conf/s.yaml:4:18: source.stall_timeout",
            ),
            (
                "name: a\nsource:\n  type: push\n  fallback: []\n",
                "conf/s.yaml:4:13: source.fallback",
            ),
            (
                "name: a\nsource:\n  type: push\n  auth:\n    realm: \"a\\\"b\"\n",
                "conf/s.yaml:5:12: source.auth.realm",
            ),
            (
                "name: a\nsource:\n  type: push\n  fallback: [a.asf]\n  fallback: [b.asf]\n",
                "duplicate field `fallback`",
            ),
            (
                "name: a\nsource:\n  type: pull\n  url: http://h/x\n  auth: {realm: a}\n",
                "conf/s.yaml:5:3: source.auth: does not belong to a pull source",
            ),
            (
                "name: a\nsource:\n  type: multicast\n  nsc: a.nsc\n  stall_timeout: 2s\n",
                "conf/s.yaml:5:3: source.stall_timeout: does not belong to a multicast source",
            ),
        ];
        for (yaml, want) in cases {
            let e = parse_at(yaml).expect_err(yaml);
            assert!(e.iter().any(|m| m.contains(want)), "{yaml}: {e:?}");
        }
    }
}
