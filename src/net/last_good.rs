//! `asfcast run --last-good DIR`: a bad file on the config partition never takes the box down.
//!
//! At start ([`resolve`]) and on every reload the config directory is loaded; when it is
//! valid it runs and the texts of the YAML files it was read from (not media) are saved in
//! `DIR` ([`save`]) — once its listeners are bound (a server file whose listener cannot bind
//! is an error too: the copy's listeners run, [`saved_listen`], see [`super::bind_set`]). When it is not, every error is logged and kept for the status page, the
//! control API and the metrics, and the daemon runs the last-good texts instead — read as if
//! they were in the config directory ([`crate::config::load_as`]), so relative media paths
//! still resolve there. With neither (first boot with a broken file) it runs no station, with
//! the server file alone if that one is valid (else the defaults) and the status page on, and
//! stays up to show the errors: never a crash loop.
//!
//! The copy is replaced atomically: each save writes a new `gen-<n>/` directory (files
//! fsynced), points a new symlink at it and renames that over `current`; readers follow
//! `current`, so a power cut leaves the old copy or the new one.

use std::io;
use std::path::{Path, PathBuf};

use tracing::{error, info, warn};

use crate::config::{self, Config, ConfigError, SourceText};
use crate::ops::ConfigOrigin;

/// What the daemon starts with.
#[derive(Debug)]
pub struct Startup {
    pub config: Config,
    /// The config directory's errors (empty when it runs as it is).
    pub errors: Vec<ConfigError>,
    pub origin: ConfigOrigin,
    /// The texts `config` was read from when it is the config directory's (saved as the
    /// last good copy once the daemon runs it with its listeners bound).
    pub sources: Vec<SourceText>,
}

/// The directory the config's files are named in: the first path, or its parent for a file.
pub fn config_dir(paths: &[PathBuf]) -> PathBuf {
    let first = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    if first.is_dir() {
        first
    } else {
        first
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

/// Loads `paths`; on errors falls back to the last-good copy in `dir`, then to no stations.
pub fn resolve(paths: &[PathBuf], dir: &Path) -> Startup {
    match config::load_with_sources(paths) {
        Ok((config, sources)) => Startup {
            config,
            errors: Vec::new(),
            origin: ConfigOrigin::Current,
            sources,
        },
        Err(errs) => {
            error!("configuration refused:\n{errs}");
            let named = config_dir(paths);
            let current = dir.join("current");
            if current.is_dir() {
                match config::load_as(&current, &named) {
                    Ok((config, _)) => {
                        warn!(
                            stations = config.stations.len(),
                            "running the last good configuration"
                        );
                        return Startup {
                            config,
                            errors: errs.0,
                            origin: ConfigOrigin::LastGood,
                            sources: Vec::new(),
                        };
                    }
                    Err(e) => error!("the last good configuration is unusable too:\n{e}"),
                }
            }
            warn!("no usable configuration: running no station until the errors are fixed");
            Startup {
                config: fallback(&named),
                errors: errs.0,
                origin: ConfigOrigin::Fallback,
                sources: Vec::new(),
            }
        }
    }
}

/// The listeners of the last good copy in `dir` (None: no usable copy).
pub fn saved_listen(dir: &Path, paths: &[PathBuf]) -> Option<config::Listen> {
    let current = dir.join("current");
    if !current.is_dir() {
        return None;
    }
    config::load_as(&current, &config_dir(paths))
        .ok()
        .map(|(c, _)| c.server.listen)
}

/// No station; the server file of `dir` when it is valid on its own, else the defaults; the
/// status page on either way (it is where the errors are shown).
fn fallback(dir: &Path) -> Config {
    let mut server: config::ServerConfig = ["server.yaml", "server.yml"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .and_then(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            config::parse_server(&p, &text).ok()
        })
        .unwrap_or_default();
    server.web.status = true;
    Config {
        server,
        stations: Vec::new(),
        network: None,
    }
}

/// [`save`], logging a failure (the daemon runs on; the previous copy stays).
pub fn store(dir: &Path, sources: &[SourceText]) {
    match save(dir, sources) {
        Ok(()) => {
            info!(dir = %dir.display(), files = sources.len(), "last good configuration saved")
        }
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot save the last good configuration")
        }
    }
}

/// Saves the texts as the new last-good copy (see the module doc).
pub fn save(dir: &Path, sources: &[SourceText]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let gen_name = format!("gen-{stamp}");
    let gen = dir.join(&gen_name);
    std::fs::create_dir(&gen)?;
    for (path, text) in sources {
        let Some(name) = path.file_name() else {
            continue;
        };
        crate::fsutil::write_atomic(&gen.join(name), text.as_bytes())?;
    }
    crate::fsutil::sync_dir(&gen.join("x"))?;
    let link = dir.join("current.new");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&gen_name, &link)?;
    std::fs::rename(&link, dir.join("current"))?;
    crate::fsutil::sync_dir(&link)?;
    // Older copies are no longer pointed at.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("gen-") && name != gen_name.as_str() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_replaces_the_copy_and_a_broken_dir_runs_it() {
        let root = std::env::temp_dir().join(format!("asfcast-lastgood-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let etc = root.join("etc");
        let lg = root.join("lg");
        std::fs::create_dir_all(etc.join("media")).unwrap_or_else(|e| panic!("{e}"));
        let station =
            "name: a\nsource:\n  type: playlist\n  files: [media/a.asf]\nunicast: {mms: true}\n";
        std::fs::write(etc.join("a.yaml"), station).unwrap_or_else(|e| panic!("{e}"));
        let s = resolve(std::slice::from_ref(&etc), &lg);
        assert_eq!(s.origin, ConfigOrigin::Current, "{:?}", s.errors);
        assert!(!lg.join("current").exists(), "saved only once it runs");
        store(&lg, &s.sources);
        assert!(lg.join("current/a.yaml").is_file());
        // Broken now: the copy runs, named in the real directory.
        std::fs::write(etc.join("a.yaml"), "name: a\nsource: [\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let s = resolve(std::slice::from_ref(&etc), &lg);
        assert_eq!(s.origin, ConfigOrigin::LastGood);
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].file, etc.join("a.yaml"));
        assert_eq!(s.config.stations[0].file, etc.join("a.yaml"));
        // No copy: no station.
        let s = resolve(std::slice::from_ref(&etc), &root.join("none"));
        assert_eq!(s.origin, ConfigOrigin::Fallback);
        assert!(s.config.stations.is_empty());
        let gens = std::fs::read_dir(&lg).map(|r| r.count()).unwrap_or(0);
        assert_eq!(gens, 2, "one gen-* directory and `current`");
        let _ = std::fs::remove_dir_all(&root);
    }
}
