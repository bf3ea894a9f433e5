//! The control API's settings: `listen.api` (in [`super::server::Listen`]) and the `api:`
//! section of the server file (where its credentials are).
//!
//! Why its own file: the rule that matters lives here — a control API reachable from other
//! hosts must not be open. An `api` listener on an address that is not loopback (`0.0.0.0`
//! included) needs a `token_file` or a `credentials_file`, or `asfcast check` (and so the
//! daemon) refuses the config. Giving either file turns authentication on, whatever the
//! address, so a loopback listener can require it too.
//!
//! Uploads (`PUT /v1/config/media/<file>`, `PUT /v1/update`) are capped by `max_media_size`
//! (default 1 GiB) and `max_update_size` (default 512 MiB); updates are taken only when
//! `update_dir` is set (on the box `/var/lib/asfcast/update`, watched by the image's
//! `asfcast-update.path`).
//!
//! The config names the files; it never holds a secret. The daemon reads them when it starts
//! and again on every reload (a rotated token applies without a restart); an unreadable or
//! empty file refuses the start (a reload keeps the old credentials and says why).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;
use super::locate::{locate_nearest, Seg};
use super::values::{Bytes, FilePath};

/// The control API's settings besides its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// A file whose first line is the token clients send as `Authorization: Bearer <token>`.
    pub token_file: Option<PathBuf>,
    /// A file of `user:password` lines for `Authorization: Basic`.
    pub credentials_file: Option<PathBuf>,
    /// Largest media file `PUT /v1/config/media/<file>` takes.
    pub max_media_size: u64,
    /// Where `PUT /v1/update` writes `upload.img` (and the update service its `status.json`);
    /// None: updates are not taken through the API.
    pub update_dir: Option<PathBuf>,
    /// Largest update image `PUT /v1/update` takes.
    pub max_update_size: u64,
}

/// Default of `api.max_media_size`.
pub const DEFAULT_MAX_MEDIA: u64 = 1 << 30;
/// Default of `api.max_update_size`.
pub const DEFAULT_MAX_UPDATE: u64 = 512 << 20;

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            token_file: None,
            credentials_file: None,
            max_media_size: DEFAULT_MAX_MEDIA,
            update_dir: None,
            max_update_size: DEFAULT_MAX_UPDATE,
        }
    }
}

impl ApiSettings {
    /// Whether requests must carry credentials.
    pub fn requires_auth(&self) -> bool {
        self.token_file.is_some() || self.credentials_file.is_some()
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of control API settings (token_file, credentials_file, max_media_size, update_dir, max_update_size)"
)]
pub(super) struct ApiFile {
    token_file: Option<FilePath>,
    credentials_file: Option<FilePath>,
    max_media_size: Option<Bytes<1, { 64 << 30 }>>,
    update_dir: Option<FilePath>,
    max_update_size: Option<Bytes<1, { 64 << 30 }>>,
}

/// The settings of `file` (relative paths against the server file's directory `base`).
pub(super) fn build(base: &Path, file: Option<ApiFile>) -> ApiSettings {
    let Some(f) = file else {
        return ApiSettings::default();
    };
    ApiSettings {
        token_file: f.token_file.map(|p| base.join(p.0)),
        credentials_file: f.credentials_file.map(|p| base.join(p.0)),
        max_media_size: f.max_media_size.map_or(DEFAULT_MAX_MEDIA, |b| b.0),
        update_dir: f.update_dir.map(|p| base.join(p.0)),
        max_update_size: f.max_update_size.map_or(DEFAULT_MAX_UPDATE, |b| b.0),
    }
}

/// An `api` listener that other hosts can reach, without credentials: refused.
pub(super) fn check(
    path: &Path,
    text: &str,
    listeners: &[SocketAddr],
    api: &ApiSettings,
) -> Vec<ConfigError> {
    if api.requires_auth() {
        return Vec::new();
    }
    let open: Vec<usize> = listeners
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.ip().is_loopback())
        .map(|(i, _)| i)
        .collect();
    open.into_iter()
        .map(|i| {
            let single = listeners.len() == 1;
            let mut segs = vec![Seg::Key("listen"), Seg::Key("api")];
            let field = if single {
                "listen.api".to_string()
            } else {
                segs.push(Seg::Index(i));
                format!("listen.api[{i}]")
            };
            let addr = listeners.get(i).map_or_else(String::new, ToString::to_string);
            ConfigError::at(
                path,
                locate_nearest(text, &segs, false),
                field,
                format!(
                    "{addr} is not a loopback address: the control API then needs api.token_file or api.credentials_file"
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::server::parse;
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("server.yaml"), text) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn off_by_default_loopback_open_elsewhere_only_with_credentials() {
        let s = parse(Path::new("etc/server.yaml"), "").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(s.listen.api.is_empty());
        assert!(!s.api.requires_auth());
        let s = parse(
            Path::new("etc/server.yaml"),
            "listen:\n  api: 127.0.0.1:9090\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            s.listen.api,
            ["127.0.0.1:9090".parse().unwrap_or_else(|_| panic!())]
        );
        let s = parse(
            Path::new("etc/server.yaml"),
            "listen:\n  api: 0.0.0.0:9090\napi:\n  token_file: api.token\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.api.token_file, Some(PathBuf::from("etc/api.token")));
        assert!(s.api.requires_auth());
        let s = parse(
            Path::new("etc/server.yaml"),
            "listen:\n  api: '[::1]:9090'\napi:\n  credentials_file: /etc/asfcast/api.users\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            s.api.credentials_file,
            Some(PathBuf::from("/etc/asfcast/api.users"))
        );
    }

    #[test]
    fn an_open_listener_without_credentials_is_refused() {
        assert_eq!(
            errors("listen:\n  api: 0.0.0.0:9090\n"),
            ["server.yaml:2:8: listen.api: 0.0.0.0:9090 is not a loopback address: the control API then needs api.token_file or api.credentials_file"]
        );
        let e = errors("listen:\n  api: [127.0.0.1:9090, 192.0.2.1:9090]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("server.yaml:2:25: listen.api[1]: 192.0.2.1:9090"),
            "{e:?}"
        );
        let e = errors("listen:\n  http: 127.0.0.1:9090\n  api: 127.0.0.1:9090\n");
        assert!(
            e[0].contains("listen.api: 127.0.0.1:9090 overlaps"),
            "{e:?}"
        );
        let e = errors("api:\n  token: x\n");
        assert!(
            e[0].starts_with("server.yaml:2:3: api.token: unknown field"),
            "{e:?}"
        );
        let e = errors("api:\n  token_file: ''\n");
        assert!(
            e[0].starts_with("server.yaml:2:15: api.token_file: the path is empty"),
            "{e:?}"
        );
    }
}
