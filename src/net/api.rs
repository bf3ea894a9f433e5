//! The control API's shell side: the credentials read from the files the config names, the
//! stations stopped through the API, and the one step the loop adds after a read event on a
//! connection — [`Daemon::serve_api`] drains the requests its session read
//! ([`crate::station::sink::Session::api`]), routes each with a fresh snapshot
//! ([`crate::ops::api::route`]) and performs the actions: disconnect a client (the protocol's
//! clean end, like a station end, then close), stop or start a station, reload.
//!
//! A stopped station keeps its config but has no runtime: no source, no multicast, no
//! announcement files, no clients (its URLs refuse). Nothing about it survives a restart: the
//! daemon starts every configured station. A reload leaves a stopped station stopped while its
//! file remains (and forgets it when the file goes).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use tracing::{info, warn};

use crate::config::api::ApiSettings;
use crate::ops::api::{self, Action, ApiView, Credentials, Outcome, Routed};
use crate::ops::StationStatus;
use crate::station::source::SourceState;
use crate::station::StationCounters;

use super::daemon::Daemon;

/// The control API's state in the daemon.
#[derive(Debug, Default)]
pub struct ApiState {
    pub credentials: Credentials,
    /// Stations stopped through the API.
    pub stopped: BTreeSet<String>,
    /// Uploads being written, by connection index ([`super::api_files`]).
    pub uploads: super::api_files::Uploads,
}

/// A credentials file that cannot be used. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("control API: cannot read {file}: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("control API: {file}: {error}")]
    Bad {
        file: String,
        error: api::CredentialsError,
    },
}

impl ApiState {
    /// Credentials no request has: the API is on but refuses everything (its credentials
    /// files could not be read).
    pub fn locked() -> ApiState {
        ApiState {
            credentials: Credentials::locked(),
            ..ApiState::default()
        }
    }

    /// Reads the credentials files `settings` names.
    pub fn load(settings: &ApiSettings) -> Result<ApiState, ApiError> {
        Ok(ApiState {
            credentials: read_credentials(settings)?,
            ..ApiState::default()
        })
    }
}

/// Limit on a credentials file (a token or a few users).
const MAX_SECRET_FILE: u64 = 64 * 1024;

fn read_secret(path: &Path) -> Result<String, ApiError> {
    use std::io::Read;
    let err = |error| ApiError::Read {
        file: path.display().to_string(),
        error,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_SECRET_FILE)
        .read_to_string(&mut text)
        .map_err(err)?;
    Ok(text)
}

fn read_credentials(settings: &ApiSettings) -> Result<Credentials, ApiError> {
    let token = settings
        .token_file
        .as_deref()
        .map(read_secret)
        .transpose()?;
    let users = settings
        .credentials_file
        .as_deref()
        .map(read_secret)
        .transpose()?;
    Credentials::from_texts(token.as_deref(), users.as_deref()).map_err(|error| {
        let file = match error {
            api::CredentialsError::EmptyToken => settings.token_file.as_deref(),
            _ => settings.credentials_file.as_deref(),
        };
        ApiError::Bad {
            file: file.map_or_else(String::new, |p| p.display().to_string()),
            error,
        }
    })
}

impl Daemon {
    /// Answers the control API requests connection `idx` has read (none for other sessions).
    pub(super) fn serve_api(&mut self, idx: usize, now: Instant) {
        loop {
            if self.api.uploads.contains_key(&idx) {
                if self.pump_upload(idx, now) {
                    continue;
                }
                return;
            }
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                return;
            };
            let peer = c.peer;
            let Some(req) = c.session.api().and_then(|p| p.take_request()) else {
                return;
            };
            let snapshot = self.api_snapshot(now);
            let view = ApiView {
                snapshot: &snapshot,
                stopped: &self.api.stopped,
            };
            let response = match api::route(&req, &self.api.credentials, &view) {
                Routed::Respond(r) => r,
                Routed::Refuse { response, reason } => {
                    info!(%peer, method = %req.method, path = %printable(&req.path), status = response.status, reason, "control API request refused");
                    response
                }
                Routed::Act(Action::Upload { target, length }) => {
                    match self.begin_upload(idx, &target, length, &req) {
                        // Its body is written as it arrives; the answer comes at its end.
                        Ok(()) => continue,
                        Err(response) => {
                            info!(%peer, path = %printable(&req.path), status = response.status, "control API upload refused");
                            response
                        }
                    }
                }
                Routed::Act(action) => {
                    let outcome = self.perform(&action, now);
                    info!(%peer, action = %action.describe(), outcome = ?outcome_word(&outcome), "control API");
                    api::answer(&action, outcome)
                }
            };
            let response = response.for_request(&req);
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                return;
            };
            let Some(port) = c.session.api() else {
                return;
            };
            let step = port.answer(response, now);
            if !c.apply(step) {
                return;
            }
        }
    }

    /// The snapshot the API reads: now, with the stopped stations listed too.
    fn api_snapshot(&self, now: Instant) -> crate::ops::Snapshot {
        let mut snap = self.snapshot(now);
        for name in &self.api.stopped {
            if let Some(s) = self.config.station(name) {
                snap.stations.push(StationStatus {
                    name: s.name.clone(),
                    description: s.description.clone().unwrap_or_default(),
                    source: SourceState::Ended,
                    bitrate: 0,
                    multicast: s.multicast.as_ref().map(|m| m.destination().to_string()),
                    pacing: None,
                    counters: StationCounters::default(),
                    urls: Vec::new(),
                    nsc_file: None,
                    asx_file: s.announcement.asx.clone(),
                });
            }
        }
        snap.stations.sort_by(|a, b| a.name.cmp(&b.name));
        snap
    }

    fn perform(&mut self, action: &Action, now: Instant) -> Outcome {
        if let Some(outcome) = self.perform_file(action) {
            return outcome;
        }
        match action {
            Action::Disconnect(id) => self.disconnect(*id, now),
            Action::StopStation(name) => self.stop_by_api(name, now),
            Action::StartStation(name) => self.start_by_api(name, now),
            Action::Reload => Outcome::Reloaded(self.reload()),
            // Answered by `perform_file` and `serve_api`.
            _ => Outcome::Answer(api::error(500, "not performed")),
        }
    }

    /// The protocol's clean end (MMSH `$E`, …), then close once it is written.
    fn disconnect(&mut self, id: u64, now: Instant) -> Outcome {
        let found = self.conns.iter().position(|c| {
            c.as_ref()
                .is_some_and(|c| c.id == id && c.session.protocol() != "api")
        });
        let Some(i) = found else {
            return Outcome::NoSuchClient;
        };
        if let Some(c) = self.conns.get_mut(i).and_then(|c| c.as_mut()) {
            let step = c.session.on_station_end(now);
            if c.apply(step) {
                c.apply(crate::station::sink::Step::close(
                    "disconnected through the control API",
                ));
            }
        }
        self.after_io(i);
        Outcome::Disconnected
    }

    fn stop_by_api(&mut self, name: &str, now: Instant) -> Outcome {
        if self.api.stopped.contains(name) {
            return Outcome::AlreadyStopped;
        }
        let Some(mut rt) = self.stations.remove(name) else {
            return Outcome::NoSuchStation;
        };
        rt.stop(now);
        rt.announcer.withdraw();
        self.due.remove(name);
        let clients_ended = self.end_clients(name, None, now);
        self.api.stopped.insert(name.to_string());
        info!(station = %name, clients_ended, "station stopped through the control API");
        Outcome::Stopped { clients_ended }
    }

    fn start_by_api(&mut self, name: &str, now: Instant) -> Outcome {
        if !self.api.stopped.contains(name) {
            return match self.stations.contains_key(name) {
                true => Outcome::AlreadyRunning,
                false => Outcome::NoSuchStation,
            };
        }
        let Some(s) = self.config.station(name).cloned() else {
            self.api.stopped.remove(name);
            return Outcome::NoSuchStation;
        };
        match self.start_station(&s, now) {
            Ok(()) => {
                self.api.stopped.remove(name);
                info!(station = %name, "station started through the control API");
                Outcome::Started
            }
            Err(e) => {
                warn!(station = %name, error = %e, "station failed to start");
                Outcome::StartFailed(e.to_string())
            }
        }
    }

    /// On reload: re-reads the credentials (a rotated token applies at once; an unusable file
    /// keeps the old ones) and forgets stopped stations whose file is gone.
    pub(super) fn reload_api(&mut self, new: &crate::config::Config) {
        match read_credentials(&new.server.api) {
            Ok(c) => self.api.credentials = c,
            Err(e) => warn!("{e}; the control API keeps its previous credentials"),
        }
        self.api.stopped.retain(|n| new.station(n).is_some());
    }
}

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Disconnected => "disconnected",
        Outcome::NoSuchClient => "no such client",
        Outcome::Stopped { .. } => "stopped",
        Outcome::AlreadyStopped => "already stopped",
        Outcome::Started => "started",
        Outcome::AlreadyRunning => "already running",
        Outcome::NoSuchStation => "no such station",
        Outcome::StartFailed(_) => "start failed",
        Outcome::Reloaded(api::ReloadReport::Applied(_)) => "reloaded",
        Outcome::Reloaded(api::ReloadReport::Refused(_)) => "reload refused",
        Outcome::Answer(r) if r.status < 300 => "done",
        Outcome::Answer(_) => "refused",
    }
}

/// A client's path for a log line: control characters escaped, at most 128 characters.
fn printable(path: &str) -> String {
    path.chars()
        .take(128)
        .flat_map(char::escape_debug)
        .collect()
}
