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

    /// Takes new server settings on a reload (`announce_dir`, `public_host`, listener
    /// addresses) while keeping the Format IDs the station's stream already uses: the files
    /// leave the old directory and are written anew.
    pub fn reconfigure(&mut self, server: &ServerConfig) -> io::Result<()> {
        let fresh = Announcer::new(server, &self.station);
        if fresh.dir != self.dir {
            self.withdraw();
        }
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
