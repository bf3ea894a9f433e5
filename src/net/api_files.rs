//! The control API's file operations, shell side: station files in the config directory
//! (validated with the whole config before anything is written — refused when the edit adds
//! an error, so a file can be fixed while another one is still broken — written atomically,
//! then the daemon reloads), media files in `<config dir>/media/`, and update images in
//! `api.update_dir` — the last two as uploads streamed to a hidden `.part` file while they
//! arrive ([`crate::ops::api_session`] hands over the body a read at a time), fsynced and
//! renamed when the last byte is there, removed when the client goes away first.
//!
//! The daemon never installs an update: the image's `asfcast-update.path` sees
//! `<update_dir>/upload.img` and starts the root service that checks and installs it, and
//! writes `<update_dir>/status.json`, which `GET /v1/update` returns.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use tracing::{info, warn};

use crate::config::{ConfigError, ConfigErrors};
use crate::http::{Request, Response};
use crate::ops::api::{self, Action, Outcome, UploadTarget};
use crate::ops::api_session::UploadProgress;

use super::daemon::Daemon;

/// Largest station file or status.json read back.
const MAX_READ: u64 = 1 << 20;
/// Room kept free on a file system an upload goes to.
const FREE_MARGIN: u64 = 4 << 20;
/// Most uploads in progress at once (each holds a connection and a file; a slow client can
/// hold its own for as long as it sends a byte per idle timeout).
pub const MAX_UPLOADS: usize = 4;
/// An upload slower than [`MIN_RATE`] bytes per second on average after [`RATE_GRACE`] is
/// ended (408): the idle timeout alone lets a client keep a slot with a byte now and then.
const MIN_RATE: u64 = 1024;
const RATE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// An upload being written, per connection index.
#[derive(Debug)]
pub struct OpenUpload {
    file: File,
    part: PathBuf,
    target: PathBuf,
    kind: UploadTarget,
    length: u64,
    received: u64,
    /// The request's head, for the answer's framing.
    request: Request,
    buf: Vec<u8>,
    started: Instant,
}

/// The uploads in progress.
pub type Uploads = HashMap<usize, OpenUpload>;

impl Daemon {
    /// The config directory station files and media are written to.
    fn config_dir(&self) -> PathBuf {
        super::last_good::config_dir(&self.paths)
    }

    fn station_path(&self, name: &str) -> PathBuf {
        self.config_dir().join(format!("{name}.yaml"))
    }

    /// The file operations among the API's actions (None: not one of them).
    pub(super) fn perform_file(&mut self, action: &Action) -> Option<Outcome> {
        let r = match action {
            Action::GetStation(name) => self.get_station(name),
            Action::PutStation { name, text } => self.put_station(name, text),
            Action::DeleteStation(name) => self.delete_station(name),
            Action::ListMedia => self.list_media(),
            Action::DeleteMedia(file) => self.delete_media(file),
            Action::UpdateStatus => self.update_status(),
            _ => return None,
        };
        Some(Outcome::Answer(r))
    }

    fn get_station(&self, name: &str) -> Response {
        match read_limited(&self.station_path(name)) {
            Ok(bytes) => Response::new(200)
                .body("application/yaml", bytes)
                .header("Cache-Control", "no-store"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                api::error(404, "no such station file")
            }
            Err(e) => api::error(500, &format!("cannot read the station file: {e}")),
        }
    }

    /// Whether the config as it would be after editing `path` is acceptable: valid, or its
    /// errors all already there before and none in `path` itself — so that with two broken
    /// files each can be fixed on its own (the reload then says what is still wrong).
    fn edit_refused(&self, path: &Path, after: Result<(), ConfigErrors>) -> Option<Response> {
        let Err(after) = after else {
            return None;
        };
        let before: HashSet<String> = match crate::config::load(&self.paths) {
            Ok(_) => HashSet::new(),
            Err(e) => e
                .iter()
                .filter(|e| e.file != path)
                .map(ToString::to_string)
                .collect(),
        };
        let worse = after
            .iter()
            .any(|e| e.file == path || !before.contains(&e.to_string()));
        worse.then(|| api::refused_config(&after))
    }

    fn put_station(&mut self, name: &str, text: &str) -> Response {
        let path = self.station_path(name);
        // The file's station must be the one its name says.
        match crate::config::parse_station(&path, text) {
            Err(errs) => return api::refused_config(&errs),
            Ok(s) if s.name != name => {
                let e = ConfigError::at(
                    &path,
                    crate::config::station::name_position(text),
                    "name",
                    format!(
                        "the station is called `{}`; the file's name must match: {}.yaml",
                        s.name, s.name
                    ),
                );
                return api::refused_config(&ConfigErrors(vec![e]));
            }
            Ok(_) => {}
        }
        let after = crate::config::load_edited(&self.paths, &path, Some(text)).map(|_| ());
        if let Some(refusal) = self.edit_refused(&path, after) {
            return refusal;
        }
        let created = !path.exists();
        if let Err(e) = crate::fsutil::write_atomic(&path, text.as_bytes()) {
            warn!(file = %path.display(), error = %e, "cannot write a station file");
            return api::error(507, &format!("cannot write {}: {e}", path.display()));
        }
        info!(file = %path.display(), created, "station file written through the control API");
        let report = self.reload();
        api::json_value(
            if created { 201 } else { 200 },
            json!({
                "ok": true,
                "file": path.display().to_string(),
                "created": created,
                "reload": api::reload_json(&report),
            }),
        )
    }

    fn delete_station(&mut self, name: &str) -> Response {
        let path = self.station_path(name);
        if !path.is_file() {
            return api::error(404, "no such station file");
        }
        let after = crate::config::load_edited(&self.paths, &path, None).map(|_| ());
        if let Some(refusal) = self.edit_refused(&path, after) {
            return refusal;
        }
        if let Err(e) = std::fs::remove_file(&path) {
            return api::error(500, &format!("cannot remove {}: {e}", path.display()));
        }
        let _ = crate::fsutil::sync_dir(&path);
        info!(file = %path.display(), "station file removed through the control API");
        let report = self.reload();
        api::json_value(
            200,
            json!({ "ok": true, "removed": path.display().to_string(), "reload": api::reload_json(&report) }),
        )
    }

    fn media_dir(&self) -> PathBuf {
        self.config_dir().join("media")
    }

    fn list_media(&self) -> Response {
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.media_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Ok(meta) = e.metadata() else { continue };
                if name.starts_with('.') || !meta.is_file() {
                    continue;
                }
                files.push((name, meta.len()));
            }
        }
        files.sort();
        let list: Vec<_> = files
            .iter()
            .map(|(n, size)| json!({ "name": n, "size": size }))
            .collect();
        api::json_value(200, json!({ "media": list }))
    }

    fn delete_media(&self, file: &str) -> Response {
        let path = self.media_dir().join(file);
        let users = self.stations_playing(&path);
        if !users.is_empty() {
            return api::error(
                409,
                &format!(
                    "{file} is in the playlist of {}: change or remove the station first",
                    users.join(", ")
                ),
            );
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                let _ = crate::fsutil::sync_dir(&path);
                info!(file = %path.display(), "media file removed through the control API");
                api::json_value(200, json!({ "removed": file }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                api::error(404, "no such media file")
            }
            Err(e) => api::error(500, &format!("cannot remove {file}: {e}")),
        }
    }

    /// The configured stations whose files (playlist, fallback) include `path` (the same
    /// file, however it is named).
    fn stations_playing(&self, path: &Path) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let Ok(target) = std::fs::metadata(path) else {
            return Vec::new();
        };
        let same = |p: &PathBuf| {
            std::fs::metadata(p).is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        };
        self.config
            .stations
            .iter()
            .filter(|s| s.source.announced_files().iter().any(same))
            .map(|s| s.name.clone())
            .collect()
    }

    /// A complete upload that would replace a file a station plays must be a readable ASF
    /// file: else 422 and the station keeps its file (other media are stored as they come).
    fn unplayable_replacement(&self, target: &Path, part: &Path) -> Option<Response> {
        let users = self.stations_playing(target);
        if users.is_empty() {
            return None;
        }
        let e = crate::asf::reader::AsfReader::open(part).err()?;
        Some(api::error(
            422,
            &format!(
                "{} is played by {} and the upload is not a playable ASF file ({e}); the file was kept",
                target.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                users.join(", ")
            ),
        ))
    }

    fn update_status(&self) -> Response {
        let Some(dir) = self.config.server.api.update_dir.clone() else {
            return updates_off();
        };
        let status = read_limited(&dir.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        api::json_value(
            200,
            json!({
                "version": crate::VERSION,
                "pending": dir.join("upload.img").exists(),
                "status": status,
            }),
        )
    }

    /// Opens the `.part` file of an upload, or answers why not.
    pub(super) fn begin_upload(
        &mut self,
        idx: usize,
        target: &UploadTarget,
        length: u64,
        request: &Request,
    ) -> Result<(), Response> {
        let settings = &self.config.server.api;
        let (dir, final_path, part, cap) = match target {
            UploadTarget::Media(file) => {
                let dir = self.media_dir();
                let target = dir.join(file);
                let part = crate::fsutil::part_path(&target);
                (dir, target, part, settings.max_media_size)
            }
            UploadTarget::Update => {
                let Some(dir) = settings.update_dir.clone() else {
                    return Err(updates_off());
                };
                if dir.join("upload.img").exists() {
                    return Err(api::error(
                        409,
                        "an update is waiting to be installed (upload.img); see GET /v1/update",
                    ));
                }
                let img = dir.join("upload.img");
                let part = dir.join("upload.part");
                (dir, img, part, settings.max_update_size)
            }
        };
        if length > cap {
            return Err(api::error(
                413,
                &format!("{length} bytes is over the limit of {cap} bytes"),
            ));
        }
        if self.api.uploads.values().any(|u| u.part == part) {
            return Err(api::error(409, "the same file is being uploaded already"));
        }
        if self.api.uploads.len() >= MAX_UPLOADS {
            return Err(api::error(
                503,
                &format!("{MAX_UPLOADS} uploads are in progress already; try again later"),
            )
            .header("Retry-After", "10"));
        }
        // The bytes the uploads in progress have announced and not sent yet are spoken for:
        // each upload's check alone would let parallel ones fill the disk together.
        let pending: u64 = self
            .api
            .uploads
            .values()
            .map(|u| u.length.saturating_sub(u.received))
            .sum();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Err(api::error(
                500,
                &format!("cannot create {}: {e}", dir.display()),
            ));
        }
        if let Some(free) = free_bytes(&dir) {
            if !fits(length, pending, free) {
                return Err(api::error(
                    507,
                    &format!("{length} bytes do not fit: {free} bytes free, {pending} of them promised to uploads in progress"),
                ));
            }
        }
        let file = File::create(&part)
            .map_err(|e| api::error(500, &format!("cannot create {}: {e}", part.display())))?;
        info!(file = %final_path.display(), length, "upload started");
        let mut head = request.clone();
        head.body = Vec::new();
        self.api.uploads.insert(
            idx,
            OpenUpload {
                file,
                part,
                target: final_path,
                kind: target.clone(),
                length,
                received: 0,
                request: head,
                buf: Vec::new(),
                started: Instant::now(),
            },
        );
        Ok(())
    }

    /// Writes what connection `idx` received of its upload; answers once it is complete (or
    /// failed). Returns true when the upload was answered.
    pub(super) fn pump_upload(&mut self, idx: usize, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return false;
        };
        let Some(u) = self.api.uploads.get_mut(&idx) else {
            return false;
        };
        let Some(progress) = c.session.api().and_then(|p| p.take_upload(&mut u.buf)) else {
            return false;
        };
        let mut failed = None;
        if !u.buf.is_empty() {
            match u.file.write_all(&u.buf) {
                Ok(()) => u.received += u.buf.len() as u64,
                Err(e) => failed = Some(api::error(507, &format!("cannot write the upload: {e}"))),
            }
            u.buf.clear();
        }
        if failed.is_none()
            && progress == UploadProgress::Receiving
            && too_slow(u.received, now.saturating_duration_since(u.started))
        {
            warn!(file = %u.target.display(), received = u.received, "upload too slow; ended");
            failed = Some(api::error(
                408,
                &format!("the upload is slower than {MIN_RATE} bytes per second"),
            ));
        }
        if failed.is_none() && progress == UploadProgress::Receiving {
            return false;
        }
        let Some(u) = self.api.uploads.remove(&idx) else {
            return false;
        };
        if failed.is_none() && matches!(u.kind, UploadTarget::Media(_)) {
            failed = self.unplayable_replacement(&u.target, &u.part);
        }
        let response = match failed {
            Some(r) => {
                let _ = std::fs::remove_file(&u.part);
                r
            }
            None => finish(u.file, &u.part, &u.target).map_or_else(
                |e| {
                    let _ = std::fs::remove_file(&u.part);
                    api::error(507, &format!("cannot store the upload: {e}"))
                },
                |()| {
                    info!(file = %u.target.display(), bytes = u.received, "upload stored");
                    let status = match u.kind {
                        UploadTarget::Media(_) => 201,
                        UploadTarget::Update => 202,
                    };
                    api::json_value(
                        status,
                        json!({ "file": u.target.display().to_string(), "bytes": u.received, "length": u.length }),
                    )
                },
            ),
        };
        let response = response.for_request(&u.request);
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return true;
        };
        if let Some(port) = c.session.api() {
            let step = port.answer(response, now);
            c.apply(step);
        }
        true
    }

    /// A connection closed: an upload it had not finished is removed.
    pub(super) fn abandon_upload(&mut self, idx: usize) {
        if let Some(u) = self.api.uploads.remove(&idx) {
            drop(u.file);
            let _ = std::fs::remove_file(&u.part);
            info!(file = %u.target.display(), received = u.received, length = u.length, "upload abandoned: the client went away; partial file removed");
        }
    }
}

fn updates_off() -> Response {
    api::error(
        404,
        "updates are not taken through this API (api.update_dir is not set in server.yaml)",
    )
}

/// fsync, rename over the target, fsync the directory.
fn finish(file: File, part: &Path, target: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(part, target)?;
    crate::fsutil::sync_dir(target)
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path)?.take(MAX_READ).read_to_end(&mut out)?;
    Ok(out)
}

/// Whether an upload of `length` bytes fits in `free` bytes with `pending` bytes still to
/// come for the uploads in progress and the margin kept free.
fn fits(length: u64, pending: u64, free: u64) -> bool {
    length.saturating_add(pending).saturating_add(FREE_MARGIN) <= free
}

/// Whether an upload that got `received` bytes in `elapsed` is below the minimum rate.
fn too_slow(received: u64, elapsed: std::time::Duration) -> bool {
    elapsed > RATE_GRACE && u128::from(received) < elapsed.as_millis() * u128::from(MIN_RATE) / 1000
}

/// Bytes an unprivileged writer may still use on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(s.blocks_available().saturating_mul(s.fragment_size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uploads_in_progress_are_counted_against_the_free_space() {
        let free = 100 << 20;
        assert!(fits(60 << 20, 0, free));
        // A second 60 MiB upload while the first has 50 MiB to come does not fit.
        assert!(!fits(60 << 20, 50 << 20, free));
        assert!(fits(30 << 20, 50 << 20, free));
        assert!(!fits(u64::MAX, 1, free));
    }

    #[test]
    fn a_byte_now_and_then_is_too_slow_after_the_grace() {
        use std::time::Duration;
        assert!(!too_slow(5, Duration::from_secs(10)), "in the grace");
        assert!(too_slow(40, Duration::from_secs(40)), "a byte per second");
        assert!(!too_slow(64 * 1024, Duration::from_secs(40)));
    }
}
