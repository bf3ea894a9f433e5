//! The control API's router: one HTTP request plus the operators' [`Snapshot`] in, a JSON
//! response or an [`Action`] for the shell out. Pure — no sockets, no clock, no config files —
//! so every request, auth case and refusal is a table row in the tests below.
//!
//! | Method   | Path                        | Answer                                            |
//! |----------|-----------------------------|---------------------------------------------------|
//! | `GET`    | `/v1/stations`              | every station (stopped ones too)                  |
//! | `GET`    | `/v1/stations/{name}`       | one station, 404 if unknown                       |
//! | `GET`    | `/v1/clients`               | every connected client (API connections excluded) |
//! | `DELETE` | `/v1/clients/{id}`          | [`Action::Disconnect`]; 404 if no such client     |
//! | `POST`   | `/v1/stations/{name}/stop`  | [`Action::StopStation`]                           |
//! | `POST`   | `/v1/stations/{name}/start` | [`Action::StartStation`]                          |
//! | `POST`   | `/v1/reload`                | [`Action::Reload`] (what SIGHUP does)             |
//! | `POST`   | `/v1/check`                 | the config loader's errors for the YAML body      |
//! | `GET`    | `/v1/version`               | the running `asfcast --version`                   |
//! | `GET`    | `/v1/config/errors`         | which config runs and the config dir's errors     |
//! | `GET`    | `/v1/config/stations/{name}`| the station's YAML file ([`Action::GetStation`])  |
//! | `PUT`    | `/v1/config/stations/{name}`| validate with the whole config, write, reload     |
//! | `DELETE` | `/v1/config/stations/{name}`| validate without it, remove, reload               |
//! | `GET`    | `/v1/config/media`          | the media files ([`Action::ListMedia`])           |
//! | `PUT`    | `/v1/config/media/{file}`   | body streamed to `media/.{file}.part`, renamed    |
//! | `DELETE` | `/v1/config/media/{file}`   | remove the media file                             |
//! | `PUT`    | `/v1/update`                | body streamed to `<update_dir>/upload.part` → `upload.img` (202) |
//! | `GET`    | `/v1/update`                | the update service's `status.json` and the version|
//!
//! The `PUT`s of media and updates are uploads: [`super::api_session`] hands the shell the
//! request's head at once and the body as it arrives ([`Action::Upload`]); the shell writes
//! it to the file and answers when the last byte is on disk.
//!
//! Why the split: reading state needs only the snapshot, so it is answered here; changing
//! state (ending a session, stopping a source, reloading) is the shell's, which performs the
//! action and hands the [`Outcome`] back to [`answer`] for the JSON. `check` is answered here
//! too: it parses the body with the same functions `asfcast check` uses, under the file name
//! `<body>`, and never sees the running config.
//!
//! Order of checks, each refusal with a reason for the shell's log line: credentials (401 with
//! `WWW-Authenticate`, before anything about the path is revealed) → the target (400 for
//! percent-encoding, `..`, backslashes or control characters: names and ids never need them) →
//! the route (404, or 405 with `Allow`). Bodies over the reader's limit (413) and unreadable
//! requests (400/431) never reach the router (see [`super::api_session`]).

use std::collections::BTreeSet;

use base64::Engine;
use serde::Serialize;

use crate::config::ConfigErrors;
use crate::http::{Request, Response};
use crate::station::source::SourceState;

use super::{ClientStatus, Snapshot, StationStatus};

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "asfcast";

/// What requests must present. Holds secrets: its `Debug` prints none of them.
#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<String>,
    basic: Vec<(String, String)>,
    /// Nothing is accepted (the credentials files could not be read).
    locked: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("basic_users", &self.basic.len())
            .finish()
    }
}

/// Why a credentials file's text is unusable (the text itself is never quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("the token file is empty")]
    EmptyToken,
    #[error("the credentials file has no `user:password` line")]
    NoUsers,
    #[error("line {line} of the credentials file is not `user:password`")]
    BadLine { line: usize },
}

impl Credentials {
    /// No credentials: every request is let in (a loopback listener without files).
    pub fn open() -> Self {
        Credentials::default()
    }

    /// From the texts of the token file (its first line) and the credentials file
    /// (`user:password` lines; empty lines and `#` comments skipped).
    pub fn from_texts(
        token: Option<&str>,
        credentials: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        let token = match token {
            None => None,
            Some(t) => {
                let t = t.strip_prefix('\u{feff}').unwrap_or(t);
                let first = t.lines().next().unwrap_or_default().trim();
                if first.is_empty() {
                    return Err(CredentialsError::EmptyToken);
                }
                Some(first.to_string())
            }
        };
        let mut basic = Vec::new();
        if let Some(text) = credentials {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match line.split_once(':') {
                    Some((u, p)) if !u.is_empty() && !p.is_empty() => {
                        basic.push((u.to_string(), p.to_string()))
                    }
                    _ => return Err(CredentialsError::BadLine { line: i + 1 }),
                }
            }
            if basic.is_empty() {
                return Err(CredentialsError::NoUsers);
            }
        }
        Ok(Credentials {
            token,
            basic,
            locked: false,
        })
    }

    /// Credentials nothing matches: every request gets 401.
    pub fn locked() -> Self {
        Credentials {
            locked: true,
            ..Credentials::default()
        }
    }

    /// Whether requests must authenticate.
    pub fn required(&self) -> bool {
        self.locked || self.token.is_some() || !self.basic.is_empty()
    }

    /// Whether `authorization` (the header value) is accepted.
    fn accepts(&self, authorization: Option<&str>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(value) = authorization else {
            return false;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .token
                .as_deref()
                .is_some_and(|t| same_bytes(t.as_bytes(), rest.as_bytes()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return false;
            };
            let Ok(text) = String::from_utf8(raw) else {
                return false;
            };
            let Some((user, pass)) = text.split_once(':') else {
                return false;
            };
            // Every entry is compared, so the time taken does not say which user exists.
            return self.basic.iter().fold(false, |ok, (u, p)| {
                ok | (same_bytes(u.as_bytes(), user.as_bytes())
                    & same_bytes(p.as_bytes(), pass.as_bytes()))
            });
        }
        false
    }

    /// The `WWW-Authenticate` challenges of a 401: one per configured scheme.
    fn challenges(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.token.is_some() {
            out.push(format!("Bearer realm=\"{REALM}\""));
        }
        if !self.basic.is_empty() {
            out.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        }
        out
    }
}

/// Compares without stopping at the first difference.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// What the router reads: the snapshot (with stopped stations listed among its stations)
/// and which stations are stopped by the API.
pub struct ApiView<'a> {
    pub snapshot: &'a Snapshot,
    pub stopped: &'a BTreeSet<String>,
}

/// A state change the shell performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// End a client's session the protocol's clean way, then close its connection.
    Disconnect(u64),
    /// Stop a station's source, multicast and clients; keep it in the config.
    StopStation(String),
    /// Start a station stopped by [`Action::StopStation`].
    StartStation(String),
    /// What SIGHUP does.
    Reload,
    /// The YAML of `<config dir>/<name>.yaml`.
    GetStation(String),
    /// Validate the config as it would be with this text as `<name>.yaml`; write it
    /// atomically and reload, or answer 422 with the errors.
    PutStation { name: String, text: String },
    /// Validate the config without `<name>.yaml`; remove it and reload.
    DeleteStation(String),
    /// The files in `<config dir>/media/`.
    ListMedia,
    /// Remove `<config dir>/media/<file>`.
    DeleteMedia(String),
    /// `<update_dir>/status.json` and the running version.
    UpdateStatus,
    /// A body to stream to a file (see the module doc).
    Upload { target: UploadTarget, length: u64 },
}

/// Where an upload goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadTarget {
    /// `<config dir>/media/<file>`.
    Media(String),
    /// `<update_dir>/upload.img`.
    Update,
}

impl Action {
    /// For the shell's log line.
    pub fn describe(&self) -> String {
        match self {
            Action::Disconnect(id) => format!("disconnect client {id}"),
            Action::StopStation(s) => format!("stop station {s}"),
            Action::StartStation(s) => format!("start station {s}"),
            Action::Reload => "reload".to_string(),
            Action::GetStation(n) => format!("read station file {n}"),
            Action::PutStation { name, .. } => format!("write station file {name}"),
            Action::DeleteStation(n) => format!("remove station file {n}"),
            Action::ListMedia => "list media".to_string(),
            Action::DeleteMedia(f) => format!("remove media {f}"),
            Action::UpdateStatus => "update status".to_string(),
            Action::Upload {
                target: UploadTarget::Media(f),
                length,
            } => format!("upload media {f} ({length} bytes)"),
            Action::Upload {
                target: UploadTarget::Update,
                length,
            } => format!("upload update ({length} bytes)"),
        }
    }
}

/// What performing an [`Action`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Disconnected,
    NoSuchClient,
    Stopped {
        clients_ended: usize,
    },
    AlreadyStopped,
    Started,
    AlreadyRunning,
    NoSuchStation,
    StartFailed(String),
    Reloaded(ReloadReport),
    /// Answered by the shell (file operations).
    Answer(Response),
}

/// A reload's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadReport {
    /// The new config is broken; the running one stays.
    Refused(ConfigErrors),
    /// Applied by diff.
    Applied(ReloadPlan),
}

/// How many stations a reload left, updated in place, restarted, stopped and started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReloadPlan {
    pub unchanged: usize,
    pub updated: usize,
    pub restarted: usize,
    pub stopped: usize,
    pub started: usize,
}

/// The router's decision.
#[derive(Debug)]
pub enum Routed {
    /// Answered from the snapshot.
    Respond(Response),
    /// Refused; `reason` is for the log (it never holds a secret).
    Refuse { response: Response, reason: String },
    /// The shell performs it, then calls [`answer`].
    Act(Action),
}

/// Routes one request; see the module doc.
pub fn route(req: &Request, creds: &Credentials, view: &ApiView) -> Routed {
    if !creds.accepts(req.header("authorization")) {
        let reason = match req.header("authorization") {
            None => "no credentials",
            Some(_) => "wrong credentials",
        };
        let mut r = error(401, "authentication required");
        for c in creds.challenges() {
            r = r.header("WWW-Authenticate", &c);
        }
        return refuse(r, reason);
    }
    let raw_path = req.target.split(['?', '#']).next().unwrap_or_default();
    if raw_path.contains('%') || req.safe_path().is_none() {
        return refuse(
            error(400, "bad path"),
            "odd path (encoding, `..` or control characters)",
        );
    }
    let segs: Vec<&str> = req
        .path
        .strip_prefix("/v1/")
        .map(|p| p.split('/').collect())
        .unwrap_or_default();
    let method = req.method.as_str();
    match segs.as_slice() {
        ["stations"] => only(method, "GET", || {
            let list: Vec<StationJson> = view
                .snapshot
                .stations
                .iter()
                .map(|s| StationJson::new(s, view))
                .collect();
            Routed::Respond(json(200, &serde_json::json!({ "stations": list })))
        }),
        ["stations", name] => {
            if let Some(r) = check_name(name) {
                return r;
            }
            only(method, "GET", || {
                match view.snapshot.stations.iter().find(|s| s.name == *name) {
                    Some(s) => Routed::Respond(json(200, &StationJson::new(s, view))),
                    None => refuse(error(404, "no such station"), "unknown station"),
                }
            })
        }
        ["stations", name, verb @ ("stop" | "start")] => {
            if let Some(r) = check_name(name) {
                return r;
            }
            only(method, "POST", || {
                if !view.snapshot.stations.iter().any(|s| s.name == *name) {
                    return refuse(error(404, "no such station"), "unknown station");
                }
                let name = name.to_string();
                Routed::Act(match *verb {
                    "stop" => Action::StopStation(name),
                    _ => Action::StartStation(name),
                })
            })
        }
        ["clients"] => only(method, "GET", || {
            let list: Vec<ClientJson> = view.snapshot.clients.iter().map(ClientJson::new).collect();
            Routed::Respond(json(200, &serde_json::json!({ "clients": list })))
        }),
        ["clients", id] => {
            let Some(id) = parse_id(id) else {
                return refuse(
                    error(400, "a client id is a decimal number"),
                    "bad client id",
                );
            };
            only(method, "DELETE", || {
                if view.snapshot.clients.iter().any(|c| c.id == id) {
                    Routed::Act(Action::Disconnect(id))
                } else {
                    refuse(error(404, "no such client"), "unknown client")
                }
            })
        }
        ["reload"] => only(method, "POST", || Routed::Act(Action::Reload)),
        ["check"] => only(method, "POST", || check(req)),
        ["version"] => only(method, "GET", || {
            Routed::Respond(json_value(200, version_json()))
        }),
        ["config", "errors"] => only(method, "GET", || {
            let c = &view.snapshot.ops.config;
            let errs = ConfigErrors(c.errors.as_ref().clone());
            Routed::Respond(json_value(
                200,
                serde_json::json!({
                    "running": c.running.as_str(),
                    "errors": errors_json(&errs, None),
                }),
            ))
        }),
        ["config", "stations", name] => {
            if let Some(r) = check_station_file(name) {
                return r;
            }
            let name = name.to_string();
            methods(method, &["GET", "PUT", "DELETE"], || match method {
                "GET" => Routed::Act(Action::GetStation(name)),
                "DELETE" => Routed::Act(Action::DeleteStation(name)),
                _ => match String::from_utf8(req.body.clone()) {
                    Ok(text) => Routed::Act(Action::PutStation { name, text }),
                    Err(_) => refuse(
                        error(400, "the body is not UTF-8 text"),
                        "station body not UTF-8",
                    ),
                },
            })
        }
        ["config", "media"] => only(method, "GET", || Routed::Act(Action::ListMedia)),
        ["config", "media", file] => {
            if !check_media_name(file) {
                return refuse(
                    error(
                        400,
                        "a media file name is 1–128 of A-Z a-z 0-9 . _ - and does not start with a dot",
                    ),
                    "bad media file name",
                );
            }
            let file = file.to_string();
            methods(method, &["PUT", "DELETE"], || match method {
                "PUT" => upload(req, UploadTarget::Media(file)),
                _ => Routed::Act(Action::DeleteMedia(file)),
            })
        }
        ["update"] => methods(method, &["GET", "PUT"], || match method {
            "PUT" => upload(req, UploadTarget::Update),
            _ => Routed::Act(Action::UpdateStatus),
        }),
        _ => refuse(error(404, "not found"), "unknown path"),
    }
}

/// The JSON answer to a performed action.
pub fn answer(action: &Action, outcome: Outcome) -> Response {
    use serde_json::json;
    match outcome {
        Outcome::Disconnected => {
            let id = match action {
                Action::Disconnect(id) => *id,
                _ => 0,
            };
            json_value(200, json!({ "disconnected": id }))
        }
        Outcome::NoSuchClient => error(404, "no such client"),
        Outcome::NoSuchStation => error(404, "no such station"),
        Outcome::Stopped { clients_ended } => json_value(
            200,
            json!({ "station": station_of(action), "state": "stopped", "clients_ended": clients_ended }),
        ),
        Outcome::AlreadyStopped => error(409, "the station is already stopped"),
        Outcome::Started => json_value(
            200,
            json!({ "station": station_of(action), "state": "started" }),
        ),
        Outcome::AlreadyRunning => error(409, "the station is running"),
        Outcome::StartFailed(why) => error(500, &format!("the station failed to start: {why}")),
        Outcome::Reloaded(ReloadReport::Refused(errs)) => json_value(
            409,
            json!({ "ok": false, "refused": true, "errors": errors_json(&errs, None) }),
        ),
        Outcome::Reloaded(ReloadReport::Applied(plan)) => {
            json_value(200, json!({ "ok": true, "plan": plan }))
        }
        Outcome::Answer(r) => r,
    }
}

/// A reload's result as JSON (the `reload` member of a station write's answer).
pub fn reload_json(report: &ReloadReport) -> serde_json::Value {
    match report {
        ReloadReport::Refused(errs) => {
            serde_json::json!({ "ok": false, "refused": true, "errors": errors_json(errs, None) })
        }
        ReloadReport::Applied(plan) => serde_json::json!({ "ok": true, "plan": plan }),
    }
}

/// 422 with the config's errors (a station write or removal that would break it).
pub fn refused_config(errs: &ConfigErrors) -> Response {
    json_value(
        422,
        serde_json::json!({ "ok": false, "errors": errors_json(errs, None) }),
    )
}

/// The version `asfcast --version` prints.
pub fn version_json() -> serde_json::Value {
    serde_json::json!({ "name": "asfcast", "version": crate::VERSION })
}

/// Whether `name` may be a media file's name: 1–128 of `[A-Za-z0-9._-]`, not starting with
/// `.` (no hidden files, no `..`, no separators, no control characters, nothing a URL would
/// have to encode), not a Windows device name ([`windows_device`]).
pub fn check_media_name(name: &str) -> bool {
    !windows_device(name)
        && !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A station file's name in `/v1/config/stations/{name}`: a station name, but not one that
/// would be `server.yaml` or `network.yaml`.
fn check_station_file(name: &str) -> Option<Routed> {
    if let Some(r) = check_name(name) {
        return Some(r);
    }
    if windows_device(name) {
        return Some(refuse(
            error(
                400,
                "a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9) cannot be a file on the config partition",
            ),
            "Windows device name",
        ));
    }
    matches!(name, "server" | "network").then(|| {
        refuse(
            error(400, "server and network are not station names"),
            "reserved station file name",
        )
    })
}

/// Whether a file called `name` is a device on Windows (whatever its case and extension):
/// the config partition is FAT and edited on Windows, where such a file can be neither
/// opened nor removed.
fn windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    match stem.as_bytes() {
        b"CON" | b"PRN" | b"AUX" | b"NUL" => true,
        [b'C', b'O', b'M', d] | [b'L', b'P', b'T', d] => (b'1'..=b'9').contains(d),
        _ => false,
    }
}

/// The `Content-Length` of an upload (the reader has checked it is well formed).
fn upload_length(req: &Request) -> Option<u64> {
    req.header("content-length")
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
}

fn upload(req: &Request, target: UploadTarget) -> Routed {
    match upload_length(req) {
        Some(length) => Routed::Act(Action::Upload { target, length }),
        None => refuse(
            error(411, "an upload needs Content-Length"),
            "upload without Content-Length",
        ),
    }
}

/// `handler` for the method among `allowed`, else 405 with `Allow`.
fn methods(method: &str, allowed: &[&str], handler: impl FnOnce() -> Routed) -> Routed {
    if allowed.contains(&method) {
        handler()
    } else {
        let r = error(405, "method not allowed").header("Allow", &allowed.join(", "));
        refuse(r, "method not allowed")
    }
}

fn station_of(action: &Action) -> &str {
    match action {
        Action::StopStation(s) | Action::StartStation(s) => s,
        _ => "",
    }
}

/// `POST /v1/check`: the body as a station file (or a server file with `?kind=server`, or
/// when it has no `name:` key), checked like `asfcast check` checks a file.
fn check(req: &Request) -> Routed {
    let Ok(text) = std::str::from_utf8(&req.body) else {
        return refuse(
            error(400, "the body is not UTF-8 text"),
            "check body not UTF-8",
        );
    };
    let kind = match req.query.as_deref() {
        Some("kind=server") => "server",
        Some("kind=station") => "station",
        Some(_) => return refuse(error(400, "kind is station or server"), "bad check query"),
        None if looks_like_server(text) => "server",
        None => "station",
    };
    let file = std::path::Path::new(BODY_FILE);
    let result = match kind {
        "server" => crate::config::parse_server(file, text).map(|_| None),
        _ => crate::config::parse_station(file, text).map(|s| Some(s.name)),
    };
    let body = match result {
        Ok(name) => serde_json::json!({ "ok": true, "kind": kind, "name": name }),
        Err(errs) => serde_json::json!({
            "ok": false,
            "kind": kind,
            "errors": errors_json(&errs, Some(BODY_FILE)),
        }),
    };
    Routed::Respond(json_value(200, body))
}

/// The file name check errors carry.
pub const BODY_FILE: &str = "<body>";

/// A mapping without a `name` key is taken for a server file.
fn looks_like_server(text: &str) -> bool {
    // Only a text the loader would read is parsed here: an alias-laden body goes on to
    // the station parse, which refuses it with its place, before anything expands.
    if crate::config::syntax_check(std::path::Path::new(BODY_FILE), text).is_err() {
        return false;
    }
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(serde_norway::Value::Mapping(m)) => !m.contains_key("name"),
        Ok(serde_norway::Value::Null) => false,
        _ => false,
    }
}

fn errors_json(errs: &ConfigErrors, file: Option<&str>) -> Vec<serde_json::Value> {
    errs.iter()
        .map(|e| {
            serde_json::json!({
                "file": file.map_or_else(|| e.file.display().to_string(), str::to_string),
                "line": e.line,
                "column": e.column,
                "field": e.field,
                "message": e.message,
            })
        })
        .collect()
}

/// A station name in a path: the config's rule, else 400.
fn check_name(name: &str) -> Option<Routed> {
    crate::config::values::check_station_name(name)
        .err()
        .map(|_| refuse(error(400, "not a station name"), "bad station name"))
}

fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `handler` for `method`, else 405 with `Allow`.
fn only(method: &str, allowed: &str, handler: impl FnOnce() -> Routed) -> Routed {
    if method == allowed {
        handler()
    } else {
        let r = error(405, "method not allowed").header("Allow", allowed);
        refuse(r, "method not allowed")
    }
}

fn refuse(response: Response, reason: &str) -> Routed {
    Routed::Refuse {
        response,
        reason: reason.to_string(),
    }
}

/// A JSON answer.
pub fn json_value(status: u16, value: serde_json::Value) -> Response {
    json(status, &value)
}

/// `{"error": message}` with `status`.
pub fn error(status: u16, message: &str) -> Response {
    json_value(status, serde_json::json!({ "error": message }))
}

fn json<T: Serialize>(status: u16, value: &T) -> Response {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    Response::new(status)
        .body("application/json", body)
        .header("Cache-Control", "no-store")
}

#[derive(Serialize)]
struct StationJson<'a> {
    name: &'a str,
    description: &'a str,
    /// "playing", "starting", "lost", "ended", or "stopped" (by the API).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    bitrate: u32,
    multicast: Option<&'a str>,
    clients: ClientsPerProtocol,
    counters: CountersJson,
    urls: &'a [String],
}

#[derive(Serialize)]
struct ClientsPerProtocol {
    mms: usize,
    mmsh: usize,
    rtsp: usize,
    http: usize,
    total: usize,
}

#[derive(Serialize)]
struct CountersJson {
    packets: u64,
    bytes: u64,
    header_changes: u64,
    bad_packets: u64,
    source_errors: u64,
}

impl<'a> StationJson<'a> {
    fn new(s: &'a StationStatus, view: &ApiView) -> Self {
        let snap = view.snapshot;
        let (state, origin, reason) = if view.stopped.contains(&s.name) {
            ("stopped", None, None)
        } else {
            match &s.source {
                SourceState::Starting => ("starting", None, None),
                SourceState::Playing { origin } => ("playing", Some(origin.as_str()), None),
                SourceState::Lost { reason } => ("lost", None, Some(reason.as_str())),
                SourceState::Ended => ("ended", None, None),
            }
        };
        let per = |p| snap.clients_of(&s.name, p);
        let c = &s.counters;
        StationJson {
            name: &s.name,
            description: &s.description,
            state,
            origin,
            reason,
            bitrate: s.bitrate,
            multicast: s.multicast.as_deref(),
            clients: ClientsPerProtocol {
                mms: per("mms"),
                mmsh: per("mmsh"),
                rtsp: per("rtsp"),
                http: per("http"),
                total: snap
                    .clients
                    .iter()
                    .filter(|c| c.info.station.as_deref() == Some(s.name.as_str()))
                    .count(),
            },
            counters: CountersJson {
                packets: c.packets,
                bytes: c.bytes,
                header_changes: c.header_changes,
                bad_packets: c.bad_packets,
                source_errors: c.source_errors,
            },
            urls: &s.urls,
        }
    }
}

#[derive(Serialize)]
struct ClientJson<'a> {
    id: u64,
    peer: String,
    protocol: &'static str,
    transport: &'static str,
    station: Option<&'a str>,
    user_agent: Option<&'a str>,
    playing: bool,
    packets: u64,
    bytes: u64,
    skips: u64,
    skipped: u64,
    connected_seconds: u64,
}

impl<'a> ClientJson<'a> {
    fn new(c: &'a ClientStatus) -> Self {
        let i = &c.info;
        ClientJson {
            id: c.id,
            peer: c.peer.to_string(),
            protocol: i.protocol,
            transport: i.transport,
            station: i.station.as_deref(),
            user_agent: i.user_agent.as_deref(),
            playing: i.playing,
            packets: i.packets,
            bytes: i.bytes,
            skips: i.skips,
            skipped: i.skipped,
            connected_seconds: c.connected.as_secs(),
        }
    }
}

/// The session side of the API, for the shell: requests read and waiting, and the answers.
/// Only the control API's sessions have one ([`crate::station::sink::Session::api`]).
pub trait ApiPort {
    /// The next complete request, in arrival order.
    fn take_request(&mut self) -> Option<Request>;
    /// Queues the answer to the request taken last.
    fn answer(&mut self, response: Response, now: std::time::Instant)
        -> crate::station::sink::Step;
    /// Moves the upload body received so far into `out`; None when no upload is arriving.
    fn take_upload(&mut self, out: &mut Vec<u8>) -> Option<super::api_session::UploadProgress>;
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
