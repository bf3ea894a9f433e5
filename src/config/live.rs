//! The settings every live source shares (`fallback`, `stall_timeout`, `header_template`) and
//! the `push` source's own (`auth`), read from the station file's `source:` mapping.
//!
//! ```yaml
//! source:
//!   type: push                      # an encoder pushes to http://<box>/<station>
//!   fallback: [media/slate.asf]     # optional: played while the encoder is absent
//!   stall_timeout: 5s               # optional: silence that counts as absent (1s–120s)
//!   header_template: media/slate.asf # optional: the Format the .nsc lists before a push
//!   auth:                           # optional: pushers need credentials (Digest or Basic)
//!     realm: asfcast-push
//!     users_file: pushers.digest
//! ```
//!
//! Why here and not in `station.rs`: the live source types (push, pull, multicast) each add a
//! variant to [`super::Source`] and share [`LiveSettings`]; keeping their settings apart keeps
//! the station file's model small. Relative paths are resolved against the station file's
//! directory like a playlist's; a missing media file is not a config error (it is logged and
//! retried at run time) — the header template is the exception, read by [`super::load`]
//! because the `.nsc` depends on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::auth::StationAuth;

/// Default silence after which a live source counts as absent and the fallback plays.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What every live source type shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// Played (looping) while the live source is absent; empty: nothing (the station
    /// sends beacons and keep-alives).
    pub fallback: Vec<PathBuf>,
    /// No packet for this long: the live source is absent.
    pub stall_timeout: Duration,
    /// An ASF file whose header the `.nsc` lists before the live source first sends one.
    pub header_template: Option<PathBuf>,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            fallback: Vec::new(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            header_template: None,
        }
    }
}

impl LiveSettings {
    /// The files whose headers the station announces from the start (fallback entries and
    /// the template), so multicast players know their Format IDs.
    pub fn announced_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.header_template.iter().cloned().collect();
        for f in &self.fallback {
            if !v.contains(f) {
                v.push(f.clone());
            }
        }
        v
    }
}

/// An encoder pushes to the station ([MS-WMHTTP], or FFmpeg's one chunked POST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub live: LiveSettings,
    /// Pushers need credentials from this users file (Digest or Basic); None: anyone the
    /// station's `access.publish` lets in may push.
    pub auth: Option<StationAuth>,
}

/// Resolves paths relative to the station file's directory.
pub(super) fn build_settings(
    base: &Path,
    fallback: Option<Vec<PathBuf>>,
    stall_timeout: Option<Duration>,
    header_template: Option<PathBuf>,
) -> LiveSettings {
    LiveSettings {
        fallback: fallback
            .unwrap_or_default()
            .into_iter()
            .map(|f| base.join(f))
            .collect(),
        stall_timeout: stall_timeout.unwrap_or(DEFAULT_STALL_TIMEOUT),
        header_template: header_template.map(|p| base.join(p)),
    }
}
