//! The station's announcements: the .nsc station file (MS-MSB §2.2.1) with one `Format<N>` per
//! distinct header the playlist plays, and the .asx metafile that lists the .nsc first and then
//! the unicast rollover URLs. Both are written atomically (temporary file + rename) into the
//! server's announce directory whenever they change, and kept as text for the HTTP listener.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{ServerConfig, StationConfig};
use crate::nsc::{self, Format, FormatIds, StationFile};

/// The texts of one station's announcements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcements {
    pub nsc: Option<String>,
    pub asx: Option<String>,
}

/// Builds and writes one station's announcement files.
#[derive(Debug)]
pub struct Announcer {
    station: StationConfig,
    host: String,
    http: Option<SocketAddr>,
    mms: Option<SocketAddr>,
    rtsp: Option<SocketAddr>,
    dir: PathBuf,
    ids: FormatIds,
    formats: Vec<Format>,
    pub current: Announcements,
}

/// The host name to put in URLs: the configured public host, else the listener's address
/// (an unspecified listener address becomes the machine's host name).
pub fn url_host(server: &ServerConfig, listener: Option<SocketAddr>) -> String {
    if let Some(h) = &server.public_host {
        return h.clone();
    }
    match listener {
        Some(a) if !a.ip().is_unspecified() => match a {
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
            SocketAddr::V4(v4) => v4.ip().to_string(),
        },
        _ => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into()),
    }
}

fn with_port(host: &str, port: u16, default: u16) -> String {
    if port == default {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

impl Announcer {
    pub fn new(server: &ServerConfig, station: &StationConfig) -> Self {
        let http = server.listen.http.first().copied();
        let host = url_host(server, http.or(server.listen.mms.first().copied()));
        Announcer {
            station: station.clone(),
            host,
            http,
            mms: server.listen.mms.first().copied(),
            rtsp: server.listen.rtsp.first().copied(),
            dir: server.announce_dir.clone(),
            ids: FormatIds::new(),
            formats: Vec::new(),
            current: Announcements::default(),
        }
    }

    /// The unicast URLs in players' rollover order (mms, rtsp, http), for the enabled
    /// protocols that have a listener.
    pub fn unicast_urls(&self) -> Vec<String> {
        let u = &self.station.unicast;
        let name = &self.station.name;
        let mut out = Vec::new();
        if let (true, Some(a)) = (u.mms, self.mms) {
            out.push(format!(
                "mms://{}/{name}",
                with_port(&self.host, a.port(), 1755)
            ));
        }
        if let (true, Some(a)) = (u.rtsp, self.rtsp) {
            out.push(format!(
                "rtsp://{}/{name}",
                with_port(&self.host, a.port(), 554)
            ));
        }
        if let (true, Some(a)) = (u.mmsh, self.http) {
            out.push(format!(
                "http://{}/{name}",
                with_port(&self.host, a.port(), 80)
            ));
        }
        out
    }

    /// The URL of the .nsc on the HTTP listener.
    pub fn nsc_url(&self) -> Option<String> {
        self.http.map(|a| {
            format!(
                "http://{}/{}",
                with_port(&self.host, a.port(), 80),
                self.station.announcement.nsc
            )
        })
    }

    /// The Format ID of a stream header (Header Object + Data head), adding it to the .nsc
    /// when it is new. Returns (id, whether the announcement changed).
    pub fn format_for(&mut self, header: &[u8]) -> Result<(u16, bool), nsc::NscError> {
        let id = self.ids.id_for(header)?;
        if self.formats.iter().any(|f| f.id == id) {
            return Ok((id, false));
        }
        self.formats.push(Format {
            id,
            header: header.to_vec(),
            description: self.station.description.clone(),
        });
        Ok((id, true))
    }

    /// Rebuilds the texts and writes the files. Errors are returned for logging; the texts are
    /// still served over HTTP.
    pub fn publish(&mut self) -> io::Result<()> {
        let a = &self.station.announcement;
        let nsc = match (&self.station.multicast, self.formats.is_empty()) {
            (Some(m), false) => {
                let unicast_url = a
                    .unicast_url
                    .clone()
                    .or_else(|| self.unicast_urls().into_iter().next());
                let file = StationFile {
                    name: Some(nsc::station_name(&self.host, &self.station.name)),
                    multicast_adapter: None,
                    ip_address: m.group.to_string(),
                    ip_port: m.port,
                    time_to_live: Some(m.ttl),
                    default_ecc: (m.fec_span > 0).then_some(m.fec_span),
                    log_url: a.log_url.clone(),
                    unicast_url,
                    formats: self.formats.clone(),
                };
                Some(file.to_nsc())
            }
            _ => None,
        };
        let mut refs = Vec::new();
        if let Some(u) = &a.unicast_url {
            refs.push(u.clone());
        }
        refs.extend(
            self.unicast_urls()
                .into_iter()
                .filter(|u| Some(u) != a.unicast_url.as_ref()),
        );
        // Other renditions (one station each on multicast), after this station's own URLs.
        refs.extend(
            a.alternates
                .iter()
                .filter(|u| !refs.contains(u))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let title = self
            .station
            .description
            .clone()
            .unwrap_or_else(|| self.station.name.clone());
        // The .asx lists the .nsc first when there is multicast, then the unicast URLs.
        let nsc_url = if nsc.is_some() { self.nsc_url() } else { None };
        let asx = match (nsc_url, refs.split_first()) {
            (Some(u), _) => Some(nsc::asx(&title, &u, &refs)),
            (None, Some((first, rest))) => Some(nsc::asx(&title, first, rest)),
            (None, None) => None,
        };
        let next = Announcements { nsc, asx };
        if next == self.current {
            return Ok(());
        }
        self.current = next;
        std::fs::create_dir_all(&self.dir)?;
        if let Some(text) = &self.current.nsc {
            write_atomically(&self.dir.join(&a.nsc), text)?;
        }
        if let Some(text) = &self.current.asx {
            write_atomically(&self.dir.join(&a.asx), text)?;
        }
        Ok(())
    }

    /// Takes new settings on a reload — the server's (`announce_dir`, `public_host`, listener
    /// addresses) and the station's announcement-only ones (description, file names, unicast
    /// and log URLs, the unicast switches behind the announced URLs) — while keeping the Format
    /// IDs the station's stream already uses. Files in an old directory or under an old name
    /// are removed and the files written anew.
    pub fn reconfigure(
        &mut self,
        server: &ServerConfig,
        station: &StationConfig,
    ) -> io::Result<()> {
        let fresh = Announcer::new(server, station);
        let (old, new) = (&self.station.announcement, &station.announcement);
        if fresh.dir != self.dir || old.nsc != new.nsc || old.asx != new.asx {
            self.withdraw();
            // Written at the new place even when the texts stay the same.
            self.current = Announcements::default();
        }
        for f in &mut self.formats {
            f.description = station.description.clone();
        }
        self.station = fresh.station;
        self.host = fresh.host;
        self.http = fresh.http;
        self.mms = fresh.mms;
        self.rtsp = fresh.rtsp;
        self.dir = fresh.dir;
        self.publish()
    }

    /// Removes the station's files (station removed or daemon stopping).
    pub fn withdraw(&self) {
        let a = &self.station.announcement;
        let _ = std::fs::remove_file(self.dir.join(&a.nsc));
        let _ = std::fs::remove_file(self.dir.join(&a.asx));
    }
}

fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_station;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("asfcast-announce-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn station(extra: &str) -> StationConfig {
        let text = format!(
            "name: alpha\nsource: {{type: playlist, files: [/m/a.asf]}}\n\
             multicast: {{group: 239.1.1.1, port: 5000, interface: lo}}\n{extra}"
        );
        match parse_station(Path::new("/etc/asfcast/alpha.yaml"), &text) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn server_at(dir: &Path) -> ServerConfig {
        ServerConfig {
            announce_dir: dir.to_path_buf(),
            listen: crate::config::Listen {
                http: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
                ..crate::config::Listen::default()
            },
            ..ServerConfig::default()
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn descriptions(nsc_text: &str) -> Vec<(u32, Option<String>)> {
        match nsc::parse(nsc_text) {
            Ok(p) => p
                .formats()
                .into_iter()
                .map(|f| (f.key, f.description))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_announcement_change_rewrites_the_files_and_keeps_the_format_ids() {
        let dir = Dir::new("update");
        let server = server_at(&dir.0);
        let mut a = Announcer::new(&server, &station("description: Old\n"));
        let (id, _) = a
            .format_for(b"header one")
            .unwrap_or_else(|e| panic!("{e}"));
        a.publish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            descriptions(&read(&dir.0.join("alpha.nsc"))),
            [(u32::from(id), Some("Old".into()))]
        );

        let new = station(
            "description: New\nannouncement: {nsc: news.nsc, asx: news.asx, log_url: http://box/log}\n",
        );
        a.reconfigure(&server, &new)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!dir.0.join("alpha.nsc").exists() && !dir.0.join("alpha.asx").exists());
        let nsc_text = read(&dir.0.join("news.nsc"));
        assert_eq!(
            descriptions(&nsc_text),
            [(u32::from(id), Some("New".into()))]
        );
        assert_eq!(
            nsc::parse(&nsc_text)
                .ok()
                .and_then(|p| p.log_url())
                .as_deref(),
            Some("http://box/log")
        );
        let asx = read(&dir.0.join("news.asx"));
        assert!(asx.contains("New") && asx.contains("news.nsc"), "{asx}");
        assert_eq!(a.format_for(b"header one").ok(), Some((id, false)));
    }

    #[test]
    fn the_asx_lists_the_other_renditions_after_the_station_itself() {
        let dir = Dir::new("alternates");
        let server = server_at(&dir.0);
        let mut a = Announcer::new(
            &server,
            &station(
                "announcement: {alternates: [http://box/news-300k.nsc, http://box/news-100k.nsc]}\n",
            ),
        );
        a.format_for(b"header").unwrap_or_else(|e| panic!("{e}"));
        a.publish().unwrap_or_else(|e| panic!("{e}"));
        let asx = read(&dir.0.join("alpha.asx"));
        let at = |u: &str| asx.find(u).unwrap_or_else(|| panic!("{u} missing: {asx}"));
        assert!(at("alpha.nsc") < at("news-300k.nsc"), "{asx}");
        assert!(at("news-300k.nsc") < at("news-100k.nsc"), "{asx}");
    }

    #[test]
    fn a_rename_alone_writes_the_same_texts_under_the_new_names() {
        let dir = Dir::new("rename");
        let server = server_at(&dir.0);
        let mut a = Announcer::new(&server, &station(""));
        a.format_for(b"header").unwrap_or_else(|e| panic!("{e}"));
        a.publish().unwrap_or_else(|e| panic!("{e}"));
        let before = read(&dir.0.join("alpha.nsc"));
        let renamed = station("announcement: {nsc: other.nsc}\n");
        a.reconfigure(&server, &renamed)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!dir.0.join("alpha.nsc").exists());
        assert_eq!(read(&dir.0.join("other.nsc")), before);
        assert!(
            dir.0.join("alpha.asx").exists(),
            "the .asx is rewritten in place"
        );

        // A new directory alone: the same texts, written there.
        let moved = Dir::new("rename-moved");
        a.reconfigure(&server_at(&moved.0), &renamed)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&moved.0.join("other.nsc")), before);
        assert!(moved.0.join("alpha.asx").exists());
        assert!(!dir.0.join("other.nsc").exists());
    }
}
