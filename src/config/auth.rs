//! Who may watch a station: the `auth:` section of a station file, and the server file's
//! `auth:` that gives its defaults.
//!
//! ```yaml
//! # station file
//! auth:
//!   realm: asfcast            # optional: the server's realm, else "asfcast"
//!   users_file: users.digest  # optional: the server's users_file; relative to this file
//! ```
//!
//! A protected station is served on RTSP (Digest) and HTTP (Digest or Basic) only: MMS has no
//! HTTP authentication, so the shell does not serve it there whatever `unicast.mms` says.
//! Its multicast (if any) stays open to whoever joins the group.
//!
//! A station is protected when its file has an `auth:` mapping (`auth: {}` takes both values
//! from the server file). The server file's `auth: {realm, users_file}` only supplies
//! defaults; it protects nothing by itself, so adding it never locks players out of stations
//! that did not ask for it.
//!
//! The config names the users file and never holds a secret in YAML. [`super::load`] (what
//! `asfcast check`, the start and every reload run) reads the file and refuses the config
//! when it is missing, unreadable or not `user:realm:HA1` lines, with the file:line:column of
//! the `users_file` that named it; a realm that no entry of the file has is refused too (a
//! typo there would lock everyone out). [`crate::access::users`] has the format and why it
//! keeps HA1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::access::gate::Protection;
use crate::access::users::{valid_realm, Users};

use super::error::ConfigError;
use super::locate::{locate_key, locate_nearest, locate_value, Seg};
use super::values::FilePath;

/// The realm when neither file names one.
pub const DEFAULT_REALM: &str = "asfcast";

/// A protected station's settings, resolved: its realm, users file and the file's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationAuth {
    /// The realm, or empty until [`super::load`] applies the server's default.
    pub realm: String,
    /// The users file, or None until [`super::load`] applies the server's default.
    pub users_file: Option<PathBuf>,
    /// The users, read by [`super::load`] (empty when only parsed: nobody gets in).
    pub users: Arc<Users>,
}

impl StationAuth {
    /// What the sessions check requests against.
    pub fn protection(&self) -> Protection {
        Protection {
            realm: self.realm.clone(),
            users: self.users.clone(),
        }
    }
}

/// The server file's defaults for stations' `auth:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthDefaults {
    pub realm: Option<String>,
    pub users_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of authentication settings (realm, users_file)"
)]
pub(super) struct AuthFile {
    realm: Option<String>,
    users_file: Option<FilePath>,
}

/// Where an `auth:` mapping sits in its file: `auth` (a station's players, the server's
/// defaults) or `source.auth` (a push station's pushers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthAt {
    Top,
    Source,
}

impl AuthAt {
    fn keys(self, last: Option<&'static str>) -> Vec<Seg<'static>> {
        let mut v = match self {
            AuthAt::Top => vec![Seg::Key("auth")],
            AuthAt::Source => vec![Seg::Key("source"), Seg::Key("auth")],
        };
        v.extend(last.map(Seg::Key));
        v
    }

    fn field(self, last: &str) -> String {
        match self {
            AuthAt::Top => format!("auth.{last}"),
            AuthAt::Source => format!("source.auth.{last}"),
        }
    }
}

fn check_realm(path: &Path, text: &str, realm: &Option<String>, errors: &mut Vec<ConfigError>) {
    check_realm_at(path, text, realm, AuthAt::Top, errors)
}

fn check_realm_at(
    path: &Path,
    text: &str,
    realm: &Option<String>,
    at: AuthAt,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(r) = realm {
        if !valid_realm(r) {
            errors.push(ConfigError::at(
                path,
                locate_nearest(text, &at.keys(Some("realm")), false),
                at.field("realm"),
                "a realm must be 1–255 characters without `\"`, `\\` or control characters",
            ));
        }
    }
}

/// A station's `auth:` (relative paths against the station file's directory `base`).
pub(super) fn build_station(
    path: &Path,
    text: &str,
    base: &Path,
    file: Option<AuthFile>,
    errors: &mut Vec<ConfigError>,
) -> Option<StationAuth> {
    build_at(path, text, base, file, AuthAt::Top, errors)
}

/// A push station's `source.auth:` (who may push).
pub(super) fn build_push(
    path: &Path,
    text: &str,
    base: &Path,
    file: Option<AuthFile>,
    errors: &mut Vec<ConfigError>,
) -> Option<StationAuth> {
    build_at(path, text, base, file, AuthAt::Source, errors)
}

fn build_at(
    path: &Path,
    text: &str,
    base: &Path,
    file: Option<AuthFile>,
    at: AuthAt,
    errors: &mut Vec<ConfigError>,
) -> Option<StationAuth> {
    let f = file?;
    check_realm_at(path, text, &f.realm, at, errors);
    Some(StationAuth {
        realm: f.realm.unwrap_or_default(),
        users_file: f.users_file.map(|p| base.join(p.0)),
        users: Arc::new(Users::default()),
    })
}

/// The server file's `auth:`.
pub(super) fn build_server(
    path: &Path,
    text: &str,
    base: &Path,
    file: Option<AuthFile>,
    errors: &mut Vec<ConfigError>,
) -> AuthDefaults {
    let Some(f) = file else {
        return AuthDefaults::default();
    };
    check_realm(path, text, &f.realm, errors);
    AuthDefaults {
        realm: f.realm,
        users_file: f.users_file.map(|p| base.join(p.0)),
    }
}

/// Applies the server's defaults to a station's `auth` and reads its users file. `read`
/// reads a file (the loader's bounded reader). Errors point at the station's `users_file`
/// (or its `auth` key when the file came from the server's default).
pub(super) fn resolve(
    station_file: &Path,
    text: &str,
    auth: &mut StationAuth,
    defaults: &AuthDefaults,
    read: impl Fn(&Path) -> Result<String, String>,
) -> Vec<ConfigError> {
    resolve_at(station_file, text, auth, defaults, AuthAt::Top, read)
}

/// [`resolve`] for the `auth:` mapping at `place`.
pub(super) fn resolve_at(
    station_file: &Path,
    text: &str,
    auth: &mut StationAuth,
    defaults: &AuthDefaults,
    place: AuthAt,
    read: impl Fn(&Path) -> Result<String, String>,
) -> Vec<ConfigError> {
    if auth.realm.is_empty() {
        auth.realm = defaults
            .realm
            .clone()
            .unwrap_or_else(|| DEFAULT_REALM.to_string());
    }
    let own = locate_value(text, &place.keys(Some("users_file")));
    let at = own.unwrap_or_else(|| locate_key(text, &place.keys(None)).unwrap_or((1, 1)));
    let field = place.field("users_file");
    let Some(users_file) = auth
        .users_file
        .clone()
        .or_else(|| defaults.users_file.clone())
    else {
        return vec![ConfigError::at(
            station_file,
            at,
            &field,
            format!("a protected station needs a users file: give {field} here or auth.users_file in server.yaml"),
        )];
    };
    auth.users_file = Some(users_file.clone());
    let err = |message: String| vec![ConfigError::at(station_file, at, &field, message)];
    let content = match read(&users_file) {
        Ok(t) => t,
        Err(e) => return err(format!("{}: {e}", users_file.display())),
    };
    let users = match Users::parse(&content) {
        Ok(u) => u,
        Err(e) => return err(format!("{}: {e}", users_file.display())),
    };
    if !users.has_realm(&auth.realm) {
        return err(format!(
            "{} has no user of realm {:?} (write one with `asfcast passwd {} USER --realm {}`)",
            users_file.display(),
            auth.realm,
            users_file.display(),
            auth.realm
        ));
    }
    auth.users = Arc::new(users);
    Vec::new()
}
