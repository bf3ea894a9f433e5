//! What the HTTP announcement routes and the status pages know about the stations: one
//! [`StationEntry`] per station (its .nsc and .asx texts, file names and player URLs), read
//! through [`AnnouncementCatalog`]. The shell keeps the entries current; protocols only read
//! them. Pure data: it lives beside the station so the sink contract ([`super::sink`]) can
//! offer it without importing a protocol.

/// One station as the announcement routes see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StationEntry {
    /// The station name (also its MMSH path: `/<name>`).
    pub name: String,
    /// A human description for the list page.
    pub description: String,
    /// The .nsc text, once the station has a header.
    pub nsc: Option<String>,
    /// The .asx text, once it can be written.
    pub asx: Option<String>,
    /// The .nsc file name, e.g. `demo.nsc` (served at `/<nsc_file>`).
    pub nsc_file: String,
    /// The .asx file name, e.g. `demo.asx`.
    pub asx_file: String,
    /// Unicast URLs for humans (`mms://`, `rtsp://`, `mmsh://`).
    pub urls: Vec<String>,
}

/// A snapshot of the stations, provided by the shell.
pub trait AnnouncementCatalog {
    /// The stations, in display order.
    fn stations(&self) -> Vec<StationEntry>;
    /// Whether `path` belongs to the operators' web views (status pages, metrics) that are
    /// on, which the announcement routes leave to the next handler. Default: none.
    fn is_ops_path(&self, _path: &str) -> bool {
        false
    }
    /// Is `path` the multicast logging agent (the `.nsc` `Log URL`, [MS-WMLOG] §2.3)? The
    /// well-known `/wmsiislog.dll` always is; the shell adds the stations' `log_url` paths.
    fn is_log_path(&self, path: &str) -> bool {
        path.eq_ignore_ascii_case(crate::ops::wmlog_client::ISAPI_LOG_PATH)
    }
    /// May the station's .nsc and .asx be served to the client asking (its `access.watch`
    /// rules)? A station closed to the client is also left off the list page. Default: yes.
    fn may_serve(&self, _station: &str) -> bool {
        true
    }
    /// Does station `name` require credentials? Its .nsc/.asx are then left to the session,
    /// which checks them ([`crate::access`]). Default: no.
    fn is_protected(&self, _name: &str) -> bool {
        false
    }
}

impl AnnouncementCatalog for [StationEntry] {
    fn stations(&self) -> Vec<StationEntry> {
        self.to_vec()
    }
}

impl AnnouncementCatalog for Vec<StationEntry> {
    fn stations(&self) -> Vec<StationEntry> {
        self.clone()
    }
}
