//! The config directory of a test daemon, written one way for every test: `server.yaml` with
//! the listeners the test asks for on free loopback ports, `announce_dir` inside the
//! directory and then the test's own lines (limits, log, auth, ...); and playlist stations
//! looping a media file (the demo media unless the test names another).
//!
//! Why it exists: the integration tests each wrote this by hand ("three listeners + demo
//! station"), so a change to the shape of server.yaml meant a dozen edits.

use std::net::SocketAddr;
use std::path::Path;

use super::{demo_media, free_tcp_port};

/// The `listen:` section of a test's server.yaml. Each listener asked for gets a free port on
/// 127.0.0.1 (from [`free_tcp_port`]); HTTP, MMS and RTSP not asked for are written `false`,
/// the control API is left out. After [`Listen::write`], the accessors give the addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Listen {
    http: Option<SocketAddr>,
    mms: Option<SocketAddr>,
    rtsp: Option<SocketAddr>,
    api: Option<SocketAddr>,
}

fn loopback_port() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], free_tcp_port())))
}

impl Listen {
    /// No listener yet.
    pub fn new() -> Listen {
        Listen::default()
    }

    /// HTTP, MMS and RTSP (no API).
    pub fn three() -> Listen {
        Listen::new().with_http().with_mms().with_rtsp()
    }

    pub fn with_http(mut self) -> Listen {
        self.http = loopback_port();
        self
    }

    pub fn with_mms(mut self) -> Listen {
        self.mms = loopback_port();
        self
    }

    pub fn with_rtsp(mut self) -> Listen {
        self.rtsp = loopback_port();
        self
    }

    pub fn with_api(mut self) -> Listen {
        self.api = loopback_port();
        self
    }

    /// Writes `dir/server.yaml`: these listeners, `announce_dir: dir/announce`, then `extra`
    /// (more server.yaml lines, each ending in a newline).
    pub fn write(self, dir: &Path, extra: &str) -> Listen {
        let addr = |a: Option<SocketAddr>| a.map_or("false".to_string(), |a| a.to_string());
        let api = self.api.map_or(String::new(), |a| format!("  api: {a}\n"));
        let yaml = format!(
            "listen:\n  http: {}\n  mms: {}\n  rtsp: {}\n{api}announce_dir: {}\n{extra}",
            addr(self.http),
            addr(self.mms),
            addr(self.rtsp),
            dir.join("announce").display()
        );
        std::fs::write(dir.join("server.yaml"), yaml)
            .unwrap_or_else(|e| panic!("{}/server.yaml: {e}", dir.display()));
        self
    }

    pub fn http(&self) -> SocketAddr {
        self.http.expect("this config has no HTTP listener")
    }

    pub fn mms(&self) -> SocketAddr {
        self.mms.expect("this config has no MMS listener")
    }

    pub fn rtsp(&self) -> SocketAddr {
        self.rtsp.expect("this config has no RTSP listener")
    }

    pub fn api(&self) -> SocketAddr {
        self.api.expect("this config has no API listener")
    }

    /// Every listener asked for (HTTP, MMS, RTSP, API order), e.g. to wait for them all.
    pub fn all(&self) -> Vec<SocketAddr> {
        [self.http, self.mms, self.rtsp, self.api]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Writes `dir/<name>.yaml`: station `name` playing `media` in a loop, then `extra` (more
/// station lines: unicast, multicast, limits, ...).
pub fn playlist_station(dir: &Path, name: &str, media: &Path, extra: &str) {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\nsource:\n  type: playlist\n  files: [{}]\n  loop: true\n{extra}",
            media.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// [`playlist_station`] `demo` on the demo media.
pub fn demo_station(dir: &Path, extra: &str) {
    playlist_station(dir, "demo", &demo_media(), extra);
}
