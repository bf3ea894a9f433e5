//! Station configuration: YAML files → validated [`Config`].
//!
//! Why: the box is configured by one YAML file per station plus an optional
//! `server.yaml`, in a directory (`station-configs/` for the documented
//! examples, `/etc/asfcast/` on the box). `asfcast check` runs [`load`] before
//! the daemon starts (systemd `ExecStartPre`) and on reload, so a bad file is
//! refused with file, line, column and field, and the running config stays in
//! force.
//!
//! Layout of a directory: `server.yaml` (optional) plus every other `*.yaml` /
//! `*.yml` file directly inside it (not in subdirectories, not hidden files) is
//! one station. [`load`] also accepts single files; one named `server.yaml` (or
//! `server.yml`) is the server file.
//!
//! Pipeline (after sozu): file structs with `deny_unknown_fields` and values
//! that check themselves while read (so errors carry the value's position) →
//! defaults and per-file checks ([`station`], [`server`]) → cross-file checks
//! here: station names and multicast group:port pairs must be unique, and so
//! must .nsc/.asx file names, since they share one directory. Errors from every
//! file are collected; a file stops at its first YAML/type error (serde reads a
//! file in one pass) but every later check still reports all it finds.
//!
//! The YAML library is serde_norway (a maintained serde_yaml fork, since
//! serde_yaml is archived). This module reads files but touches nothing else.

pub mod access;
mod aliases;
pub mod api;
pub mod auth;
pub mod diff;
pub mod error;
pub mod limits;
pub mod live;
pub mod locate;
pub mod network;
pub mod server;
pub mod station;
pub mod values;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(crate) use error::syntax_check;
pub use error::{ConfigError, ConfigErrors};
pub use server::{ClientLogConfig, Limits, Listen, LogConfig, LogFormat, LogLevel, ServerConfig};
pub use station::{
    Announcement, Multicast, MulticastSource, NscLocation, Playlist, Pull, Source, StationConfig,
    Unicast,
};
pub use values::Interface;

/// Largest config file read, in bytes (a station file is a few hundred bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Most station files in one configuration.
pub const MAX_STATIONS: usize = 4096;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Server-wide settings (defaults when no server file was given).
    pub server: ServerConfig,
    /// The stations, in the order their files were read (sorted by file name
    /// within a directory).
    pub stations: Vec<StationConfig>,
    /// `network.yaml`, when the configuration has one.
    pub network: Option<network::NetworkConfig>,
}

impl Config {
    /// The station called `name`.
    pub fn station(&self, name: &str) -> Option<&StationConfig> {
        self.stations.iter().find(|s| s.name == name)
    }
}

/// Reads and validates one station file. `path` names the file in errors and is
/// the base for relative media paths.
pub fn parse_station(path: &Path, text: &str) -> Result<StationConfig, ConfigErrors> {
    station::parse(path, text).map_err(ConfigErrors)
}

/// Reads and validates the server file.
pub fn parse_server(path: &Path, text: &str) -> Result<ServerConfig, ConfigErrors> {
    server::parse(path, text).map_err(ConfigErrors)
}

/// True when `path` names a server file rather than a station.
fn is_server_file(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("server.yaml" | "server.yml")
    )
}

/// True when `path` names the network file (`network.yaml`), which is no station either.
fn is_network_file(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("network.yaml" | "network.yml")
    )
}

/// Whether a file of a config directory is read as config: `*.yaml`/`*.yml`, not hidden.
/// Everything else on the config partition is left alone: README.txt, authorized_keys,
/// api.token, media/, FAT's `System Volume Information`, macOS `._*` and `.DS_Store`,
/// editors' `*.bak`/`*~`, and the `.<name>.part` files of writes in progress.
fn is_yaml(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .map_or(true, |n| n.starts_with('.'));
    let ext = path.extension().and_then(|e| e.to_str());
    !hidden && matches!(ext, Some("yaml" | "yml"))
}

/// Lists the config files named by `paths`: directories are expanded to their
/// YAML files (sorted), files are taken as they are.
fn collect_files(paths: &[PathBuf], errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                errors.push(ConfigError::file(p, io_words(&e)));
                continue;
            }
        };
        if !meta.is_dir() {
            files.push(p.clone());
            continue;
        }
        let entries = match std::fs::read_dir(p) {
            Ok(r) => r,
            Err(e) => {
                errors.push(ConfigError::file(p, io_words(&e)));
                continue;
            }
        };
        let mut found = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    let is_file = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
                    if is_file && is_yaml(&path) {
                        found.push(path);
                    }
                }
                Err(e) => errors.push(ConfigError::file(p, io_words(&e))),
            }
        }
        found.sort();
        files.extend(found);
    }
    files
}

fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => format!("cannot read: {e}"),
    }
}

/// Reads a file of at most [`MAX_FILE_BYTES`] as UTF-8.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let file = std::fs::File::open(path).map_err(|e| ConfigError::file(path, io_words(&e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigError::file(path, io_words(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::file(
            path,
            format!("the file is larger than {MAX_FILE_BYTES} bytes; is it a config file?"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        ConfigError::file(
            path,
            format!(
                "the file is not UTF-8 text (bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A station that parsed, with its text kept for locating cross-file errors.
struct Loaded {
    station: StationConfig,
    text: String,
}

/// One config file as read: the name it is known by (errors, relative paths) and its text.
pub type SourceText = (PathBuf, String);

/// Loads the configuration from directories and/or files, collecting every
/// error from every file.
pub fn load(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    load_with_sources(paths).map(|(c, _)| c)
}

/// [`load`], also returning the texts of the files it read (what the last-good copy keeps).
pub fn load_with_sources(paths: &[PathBuf]) -> Result<(Config, Vec<SourceText>), ConfigErrors> {
    let mut errors = Vec::new();
    if paths.is_empty() {
        return Err(ConfigErrors(vec![ConfigError::file(
            Path::new("."),
            "no configuration directory or file given",
        )]));
    }
    let files = collect_files(paths, &mut errors);
    let missing_paths = !errors.is_empty();
    let read: Vec<(PathBuf, Result<String, ConfigError>)> = files
        .into_iter()
        .map(|p| {
            let t = read_text(&p);
            (p, t)
        })
        .collect();
    let place = paths
        .first()
        .map_or_else(|| PathBuf::from("."), Clone::clone);
    load_texts(read, errors, missing_paths, &place)
}

/// [`load`] as it would be with `edit` holding `text` (None: without `edit`): what a station
/// written or removed through the control API is validated with before anything is written.
pub fn load_edited(
    paths: &[PathBuf],
    edit: &Path,
    text: Option<&str>,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut files = collect_files(paths, &mut errors);
    let missing = !errors.is_empty();
    files.retain(|p| p != edit);
    let mut read: Vec<(PathBuf, Result<String, ConfigError>)> = files
        .into_iter()
        .map(|p| {
            let t = read_text(&p);
            (p, t)
        })
        .collect();
    if let Some(t) = text {
        read.push((edit.to_path_buf(), Ok(t.to_string())));
        read.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let place = paths
        .first()
        .map_or_else(|| PathBuf::from("."), Clone::clone);
    load_texts(read, errors, missing, &place).map(|(c, _)| c)
}

/// Loads the YAML files of `texts_dir` as if they were in `named_dir`: errors name
/// `named_dir/<file>` and relative paths (media, users files) resolve against `named_dir`.
/// The daemon's last-good copy is read this way, so its stations still find the media of the
/// real config directory.
pub fn load_as(
    texts_dir: &Path,
    named_dir: &Path,
) -> Result<(Config, Vec<SourceText>), ConfigErrors> {
    let mut errors = Vec::new();
    let files = collect_files(&[texts_dir.to_path_buf()], &mut errors);
    let missing = !errors.is_empty();
    let read = files
        .into_iter()
        .map(|p| {
            let t = read_text(&p);
            let name = named_dir.join(p.file_name().unwrap_or_default());
            (name, t)
        })
        .collect();
    load_texts(read, errors, missing, named_dir)
}

/// The network file of a config directory, if there is one ([`network::parse`]).
pub fn load_network(file: &Path) -> Result<Option<network::NetworkConfig>, ConfigErrors> {
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let text = read_text(file).map_err(|e| ConfigErrors(vec![e]))?;
    network::parse(file, &text).map(Some).map_err(ConfigErrors)
}

fn load_texts(
    files: Vec<(PathBuf, Result<String, ConfigError>)>,
    mut errors: Vec<ConfigError>,
    missing_paths: bool,
    place: &Path,
) -> Result<(Config, Vec<SourceText>), ConfigErrors> {
    let mut server: Option<ServerConfig> = None;
    let mut server_file: Option<PathBuf> = None;
    let mut net: Option<network::NetworkConfig> = None;
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut sources: Vec<SourceText> = Vec::new();
    let mut station_files = 0usize;
    for (path, text) in files {
        let path = &path;
        let text = match text {
            // Windows Notepad may start a UTF-8 file with a byte order mark.
            Ok(t) => match t.strip_prefix('\u{feff}') {
                Some(rest) => rest.to_string(),
                None => t,
            },
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if is_network_file(path) {
            if net.is_some() {
                errors.push(ConfigError::file(path, "a second network file"));
                continue;
            }
            match network::parse(path, &text) {
                Ok(n) => net = Some(n),
                Err(e) => errors.extend(e),
            }
            sources.push((path.clone(), text));
            continue;
        }
        if is_server_file(path) {
            if let Some(first) = &server_file {
                errors.push(ConfigError::file(
                    path,
                    format!(
                        "a second server file; {} is already the server file",
                        first.display()
                    ),
                ));
                continue;
            }
            server_file = Some(path.clone());
            match server::parse(path, &text) {
                Ok(s) => server = Some(s),
                Err(e) => errors.extend(e),
            }
            sources.push((path.clone(), text));
            continue;
        }
        station_files += 1;
        if station_files > MAX_STATIONS {
            errors.push(ConfigError::file(
                path,
                format!("more than {MAX_STATIONS} station files"),
            ));
            break;
        }
        sources.push((path.clone(), text.clone()));
        match station::parse(path, &text) {
            Ok(station) => loaded.push(Loaded { station, text }),
            Err(e) => errors.extend(e),
        }
    }

    // When a path could not be read, "no station files" would only repeat that.
    if station_files == 0 && !missing_paths {
        errors.push(ConfigError::file(
            place,
            "no station files found (expected one *.yaml file per station next to server.yaml)",
        ));
    }

    let auth_defaults = server.as_ref().map(|s| s.auth.clone()).unwrap_or_default();
    for l in &mut loaded {
        if let Some(a) = l.station.auth.as_mut() {
            let read = |p: &Path| read_text(p).map_err(|e| e.message);
            errors.extend(auth::resolve(
                &l.station.file,
                &l.text,
                a,
                &auth_defaults,
                read,
            ));
        }
        errors.extend(resolve_live(l, &auth_defaults));
    }
    errors.extend(cross_checks(&loaded));
    if server.as_ref().is_some_and(|s| s.web.metrics) {
        errors.extend(metrics_path_check(&loaded));
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok((
        Config {
            server: server.unwrap_or_default(),
            stations: loaded.into_iter().map(|l| l.station).collect(),
            network: net,
        },
        sources,
    ))
}

/// A push station's `source.auth` users file, and its `source.header_template` (which must be
/// an ASF file: the `.nsc` lists its Format before the encoder connects).
fn resolve_live(l: &mut Loaded, defaults: &auth::AuthDefaults) -> Vec<ConfigError> {
    use locate::{locate_value, Seg};
    let mut errors = Vec::new();
    if let Source::Push(p) = &mut l.station.source {
        if let Some(a) = p.auth.as_mut() {
            let read = |p: &Path| read_text(p).map_err(|e| e.message);
            errors.extend(auth::resolve_at(
                &l.station.file,
                &l.text,
                a,
                defaults,
                auth::AuthAt::Source,
                read,
            ));
        }
    }
    if let Some(t) = l
        .station
        .source
        .live()
        .and_then(|s| s.header_template.clone())
    {
        if let Err(e) = crate::asf::AsfReader::open(&t) {
            let at = locate_value(&l.text, &[Seg::Key("source"), Seg::Key("header_template")])
                .unwrap_or((1, 1));
            errors.push(ConfigError::at(
                &l.station.file,
                at,
                "source.header_template",
                format!("{}: {e}", t.display()),
            ));
        }
    }
    errors
}

/// With `metrics.enabled`, `/metrics` is the metrics page: no station may be named `metrics`
/// (its MMSH stream path would be the same).
fn metrics_path_check(loaded: &[Loaded]) -> Vec<ConfigError> {
    loaded
        .iter()
        .filter(|l| l.station.name == "metrics")
        .map(|l| {
            ConfigError::at(
                &l.station.file,
                station::name_position(&l.text),
                "name",
                "`metrics` is the path of the metrics page (metrics.enabled in server.yaml); \
                 choose another station name"
                    .to_string(),
            )
        })
        .collect()
}

/// Where an earlier station claimed something, for "already used by" messages.
fn place(l: &Loaded, at: (usize, usize)) -> String {
    format!("{}:{}:{}", l.station.file.display(), at.0, at.1)
}

/// Checks that involve more than one station.
fn cross_checks(loaded: &[Loaded]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut names: HashMap<&str, &Loaded> = HashMap::new();
    let mut groups: HashMap<SocketAddr, &Loaded> = HashMap::new();
    let mut nsc: HashMap<String, &Loaded> = HashMap::new();
    let mut asx: HashMap<String, &Loaded> = HashMap::new();

    for l in loaded {
        let s = &l.station;
        if let Some(first) = names.get(s.name.as_str()) {
            let at = station::name_position(&l.text);
            errors.push(ConfigError::at(
                &s.file,
                at,
                "name",
                format!(
                    "station `{}` is already defined at {}",
                    s.name,
                    place(first, station::name_position(&first.text))
                ),
            ));
            // The later files' other clashes would only repeat this one.
            continue;
        }
        names.insert(&s.name, l);

        if let Some(m) = &s.multicast {
            let dest = m.destination();
            if let Some(first) = groups.get(&dest) {
                errors.push(ConfigError::at(
                    &s.file,
                    station::group_position(&l.text),
                    "multicast.group",
                    format!(
                        "{dest} is already used by station `{}` ({}); each station needs its own group:port",
                        first.station.name,
                        place(first, station::group_position(&first.text))
                    ),
                ));
            } else {
                groups.insert(dest, l);
            }
            // The .nsc file is only written for multicast stations.
            check_announce(&mut errors, &mut nsc, l, "nsc", &s.announcement.nsc);
        }
        check_announce(&mut errors, &mut asx, l, "asx", &s.announcement.asx);
    }
    errors
}

fn check_announce<'a>(
    errors: &mut Vec<ConfigError>,
    seen: &mut HashMap<String, &'a Loaded>,
    l: &'a Loaded,
    which: &str,
    file_name: &str,
) {
    let key = file_name.to_ascii_lowercase();
    if let Some(first) = seen.get(&key) {
        errors.push(ConfigError::at(
            &l.station.file,
            station::announce_position(&l.text, which),
            format!("announcement.{which}"),
            format!(
                "{file_name} is already written for station `{}`; give this station another announcement.{which}",
                first.station.name
            ),
        ));
    } else {
        seen.insert(key, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("asfcast-config-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            TempDir(dir)
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn station(name: &str, group: &str) -> String {
        format!(
            "name: {name}\nsource: {{type: playlist, files: [a.asf]}}\nmulticast:\n  group: {group}\n  port: 5000\n  interface: lo\n"
        )
    }

    fn messages(r: Result<Config, ConfigErrors>) -> Vec<String> {
        match r {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn loads_directory_with_server_and_stations() {
        let d = TempDir::new("ok");
        d.write("server.yaml", "listen:\n  http: 127.0.0.1:8080\n");
        d.write("b.yaml", &station("b", "239.1.1.2"));
        d.write("a.yml", &station("a", "239.1.1.1"));
        d.write("notes.txt", "not yaml");
        d.write(".hidden.yaml", "garbage: [");
        std::fs::create_dir_all(d.0.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        d.write("sub/c.yaml", "garbage: [");
        let c = load(std::slice::from_ref(&d.0)).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = c.stations.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            c.server.listen.http,
            ["127.0.0.1:8080".parse().unwrap_or_else(|_| panic!())]
        );
        assert!(c.station("b").is_some());
    }

    /// What a FAT config partition holds besides config is left alone; network.yaml is read
    /// as the network file, not as a station.
    #[test]
    fn a_config_partition_reads_only_its_config() {
        let d = TempDir::new("partition");
        d.write("news.yaml", &station("news", "239.1.1.1"));
        d.write("network.yaml", "hostname: box\n");
        for junk in [
            "README.txt",
            "authorized_keys",
            "api.token",
            "._news.yaml",
            ".DS_Store",
            "news.yaml.bak",
            "news.yaml~",
            ".news.yaml.part",
        ] {
            d.write(junk, "\u{0}\u{1} not yaml: [");
        }
        for dir in ["media", "System Volume Information", ".Trashes"] {
            std::fs::create_dir_all(d.0.join(dir)).unwrap_or_else(|e| panic!("{e}"));
        }
        d.write("media/clip.yaml", "not: [a station");
        // Notepad's byte order mark and CRLF line ends.
        d.write(
            "news.yaml",
            &format!(
                "\u{feff}{}",
                station("news", "239.1.1.1").replace('\n', "\r\n")
            ),
        );
        let c = load(std::slice::from_ref(&d.0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.stations.len(), 1);
        assert_eq!(c.network.and_then(|n| n.hostname).as_deref(), Some("box"));
        d.write("network.yaml", "hostname: [box\n");
        let e = messages(load(std::slice::from_ref(&d.0)));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("network.yaml:2:1: invalid YAML"), "{e:?}");
    }

    #[test]
    fn server_defaults_when_absent_and_single_files() {
        let d = TempDir::new("single");
        let a = d.write("a.yaml", &station("a", "239.1.1.1"));
        let c = load(&[a]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server, ServerConfig::default());
    }

    #[test]
    fn collects_errors_from_every_file() {
        let d = TempDir::new("many");
        d.write(
            "a.yaml",
            "name: a\nsource: {type: playlist, files: [a.asf]}\nfoo: 1\n",
        );
        d.write("b.yaml", &station("b", "10.0.0.1"));
        d.write("server.yaml", "listen:\n  http: nope\n");
        let e = messages(load(std::slice::from_ref(&d.0)));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].contains("a.yaml:3:1: foo: unknown field `foo`"),
            "{e:?}"
        );
        assert!(
            e[1].contains("b.yaml:4:10: multicast.group: 10.0.0.1 is not a multicast address"),
            "{e:?}"
        );
        assert!(
            e[2].contains("server.yaml:2:9: listen.http: `nope` is not an address:port"),
            "{e:?}"
        );
    }

    #[test]
    fn duplicate_names_and_groups() {
        let d = TempDir::new("dup");
        d.write("a.yaml", &station("news", "239.1.1.1"));
        let b = d.write("b.yaml", &station("news", "239.1.1.2"));
        let c = d.write("c.yaml", &station("sport", "239.1.1.1"));
        let a = d.0.join("a.yaml");
        let e = messages(load(std::slice::from_ref(&d.0)));
        assert_eq!(
            e,
            [
                format!("{}:1:7: name: station `news` is already defined at {}:1:7", b.display(), a.display()),
                format!(
                    "{}:4:10: multicast.group: 239.1.1.1:5000 is already used by station `news` ({}:4:10); each station needs its own group:port",
                    c.display(),
                    a.display()
                ),
            ]
        );
    }

    #[test]
    fn a_station_named_metrics_clashes_with_the_metrics_page() {
        let d = TempDir::new("metricsname");
        let m = d.write("m.yaml", &station("metrics", "239.1.1.1"));
        assert!(load(std::slice::from_ref(&d.0)).is_ok());
        d.write("server.yaml", "metrics:\n  enabled: true\n");
        let e = messages(load(std::slice::from_ref(&d.0)));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!("{}:1:7: name: `metrics` is the path", m.display())),
            "{e:?}"
        );
    }

    #[test]
    fn announcement_names_must_differ() {
        let d = TempDir::new("ann");
        d.write("a.yaml", &station("a", "239.1.1.1"));
        d.write(
            "b.yaml",
            &format!("{}announcement:\n  nsc: a.nsc\n", station("b", "239.1.1.2")),
        );
        let e = messages(load(std::slice::from_ref(&d.0)));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("b.yaml:8:8: announcement.nsc: a.nsc is already written for station `a`"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_empty_and_unreadable() {
        let d = TempDir::new("empty");
        let e = messages(load(std::slice::from_ref(&d.0)));
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("no station files found"), "{e:?}");

        let missing = d.0.join("nope");
        let e = messages(load(std::slice::from_ref(&missing)));
        assert_eq!(
            e[0],
            format!("{}: no such file or directory", missing.display())
        );

        let bin = d.write("bin.yaml", "");
        std::fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap_or_else(|e| panic!("{e}"));
        let e = messages(load(&[bin]));
        assert!(e[0].contains("is not UTF-8 text"), "{e:?}");

        let e = messages(load(&[]));
        assert!(e[0].contains("no configuration directory"), "{e:?}");
    }

    #[test]
    fn two_server_files_are_refused() {
        let d = TempDir::new("twoserver");
        std::fs::create_dir_all(d.0.join("x")).unwrap_or_else(|e| panic!("{e}"));
        d.write("server.yaml", "");
        d.write("x/server.yaml", "");
        d.write("a.yaml", &station("a", "239.1.1.1"));
        let e = messages(load(&[d.0.clone(), d.0.join("x")]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("a second server file"), "{e:?}");
    }
}
