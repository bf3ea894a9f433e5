//! The client log writer: the shell half of [MS-WMLOG] client logging (the record, the
//! client forms and the merge rule are pure, in [`crate::ops::wmlog`]). When a connection
//! ends, [`session_record`] builds the server's record from what it knows (the session's
//! `ClientInfo`, the socket addresses, the connect time and duration) and merges in every log
//! the player sent on that connection; [`ClientLog`] appends it to the day's file.
//!
//! Files: `WMS_YYYYMMDD.log` (UTC day) in `log.clients.dir`, each starting with the W3C header
//! ([`crate::ops::wmlog::file_header`]). A day's file is capped at `max_bytes`: records beyond
//! the cap are dropped and counted (one warning per day, the count when the day changes), so
//! the directory holds at most `keep_days` × `max_bytes`. When the day changes, files older
//! than `keep_days` are deleted. Write errors are logged once until writing works again.
//!
//! Sessions that never played and sent no log (announcement fetches, refused requests,
//! describes) get no record; the journal gets one summary line per recorded session.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::config::ClientLogConfig;
use crate::ops::wmlog::{
    days_of, file_day, file_header, merge, server_record, Record, ServerFacts,
};
use crate::ops::wmlog_client::{ClientForm, ClientReport};
use crate::ops::wmlog_join::{Ended, LogJoiner};

use super::connections::Connection;

/// The open day file.
struct DayFile {
    day: String,
    file: File,
    size: u64,
    /// Records dropped today for the size cap.
    dropped: u64,
}

/// Appends client log records to the daily files.
pub struct ClientLog {
    cfg: ClientLogConfig,
    current: Option<DayFile>,
    /// The last write failed (logged once until one succeeds).
    failing: bool,
    /// MMSH sessions waiting for their player's log from another connection.
    joiner: LogJoiner,
}

impl ClientLog {
    /// Creates the directory if needed; files are opened on the first record.
    pub fn open(cfg: &ClientLogConfig) -> io::Result<ClientLog> {
        fs::create_dir_all(&cfg.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("client log directory {}: {e}", cfg.dir.display()),
            )
        })?;
        Ok(ClientLog {
            cfg: cfg.clone(),
            current: None,
            failing: false,
            joiner: LogJoiner::default(),
        })
    }

    /// A connection ended at `now`: writes its record, or holds it for its player's log.
    pub fn ended(&mut self, ended: Ended, now: Instant, now_unix: u64) {
        for r in self.joiner.on_end(ended, now) {
            self.write(&r, now_unix);
        }
    }

    /// Writes the held records whose wait is over (the housekeeping tick).
    pub fn tick(&mut self, now: Instant, now_unix: u64) {
        for r in self.joiner.expire(now) {
            self.write(&r, now_unix);
        }
    }

    /// Writes every held record (shutdown).
    pub fn drain(&mut self, now_unix: u64) {
        for r in self.joiner.drain() {
            self.write(&r, now_unix);
        }
    }

    pub fn config(&self) -> &ClientLogConfig {
        &self.cfg
    }

    /// Appends `record` to the file of `now_unix`'s day.
    pub fn write(&mut self, record: &Record, now_unix: u64) {
        match self.try_write(record, now_unix) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    warn!(dir = %self.cfg.dir.display(), error = %e, "cannot write the client log");
                }
                self.failing = true;
                self.current = None;
            }
        }
    }

    fn try_write(&mut self, record: &Record, now_unix: u64) -> io::Result<()> {
        let day = file_day(now_unix);
        if self.current.as_ref().map_or(true, |f| f.day != day) {
            if let Some(old) = self.current.take() {
                if old.dropped > 0 {
                    warn!(day = %old.day, dropped = old.dropped, max_bytes = self.cfg.max_bytes, "client log records dropped for the size cap");
                }
            }
            self.prune(&day);
            self.current = Some(self.open_day(&day, now_unix)?);
        }
        let Some(f) = self.current.as_mut() else {
            return Ok(());
        };
        let mut line = record.to_line();
        line.push('\n');
        let len = line.len() as u64;
        if f.size + len > self.cfg.max_bytes {
            f.dropped += 1;
            if f.dropped == 1 {
                warn!(day = %f.day, max_bytes = self.cfg.max_bytes, "client log reached its size cap; records are dropped until tomorrow");
            }
            return Ok(());
        }
        f.file.write_all(line.as_bytes())?;
        f.size += len;
        Ok(())
    }

    fn path(&self, day: &str) -> PathBuf {
        self.cfg.dir.join(format!("WMS_{day}.log"))
    }

    fn open_day(&self, day: &str, now_unix: u64) -> io::Result<DayFile> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(day))?;
        let mut size = file.metadata()?.len();
        if size == 0 {
            let header = file_header(now_unix);
            file.write_all(header.as_bytes())?;
            size = header.len() as u64;
        }
        Ok(DayFile {
            day: day.to_string(),
            file,
            size,
            dropped: 0,
        })
    }

    /// Deletes `WMS_YYYYMMDD.log` files more than `keep_days` before `today`.
    fn prune(&self, today: &str) {
        let Some(today) = days_of(today) else { return };
        let Ok(entries) = fs::read_dir(&self.cfg.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(day) = name
                .to_str()
                .and_then(|n| n.strip_prefix("WMS_"))
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(days_of)
            else {
                continue;
            };
            if day + u64::from(self.cfg.keep_days) < today {
                match fs::remove_file(entry.path()) {
                    Ok(()) => info!(file = %entry.path().display(), "old client log deleted"),
                    Err(e) => {
                        warn!(file = %entry.path().display(), error = %e, "cannot delete an old client log")
                    }
                }
            }
        }
    }
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The record of a connection that ends at `now` (None when there is nothing to log), and a
/// journal summary line. `total_clients`: clients connected at that moment. An MMSH session
/// that played without a log of its own, and a connection that only carried a player's log
/// for a client-id, are marked so the [`LogJoiner`] can make them one record.
pub fn session_record(
    conn: &mut Connection,
    total_clients: usize,
    now: Instant,
    now_unix: u64,
) -> Option<Ended> {
    let info = conn.session.info();
    let mut reports: Vec<ClientReport> = Vec::new();
    conn.session.take_client_logs(&mut reports);
    if !info.playing && info.bytes == 0 && reports.is_empty() {
        return None;
    }
    let multicast = reports.iter().any(|r| r.form == ClientForm::Multicast);
    let protocol = match info.protocol {
        _ if multicast => "asfm",
        "mms" => "mms",
        "rtsp" => "rtsp",
        _ => "http",
    };
    let transport = match info.transport {
        _ if multicast => Some("UDP"),
        "udp" => Some("UDP"),
        "tcp" | "http" => Some("TCP"),
        _ => None,
    };
    let station = info
        .station
        .clone()
        .or_else(|| reports.iter().find_map(|r| r.station.clone()));
    let local = conn.stream.local_addr().ok();
    let uri = match (&station, local) {
        (Some(s), Some(l)) if !multicast => Some(format!("{protocol}://{l}/{s}")),
        _ => None,
    };
    let lasted = now.saturating_duration_since(conn.since);
    let duration_secs = lasted.as_millis().div_ceil(1000) as u64;
    let facts = ServerFacts {
        client_ip: conn.peer.ip(),
        server_ip: local.map(|l| l.ip()),
        connected_unix: now_unix.saturating_sub(lasted.as_secs()),
        duration_secs,
        protocol,
        transport,
        uri,
        user_agent: info.user_agent.clone(),
        packets: info.packets,
        bytes: info.bytes,
        total_clients,
        status: 200,
    };
    let server = server_record(&facts);
    let record = reports
        .iter()
        .fold(server.clone(), |r, c| merge(&r, &c.record));
    info!(
        peer = %conn.peer,
        protocol,
        station = station.as_deref().unwrap_or("-"),
        bytes = info.bytes,
        duration_secs,
        client_logs = reports.len(),
        reason = conn.close_reason().unwrap_or("dropped"),
        "client session ended"
    );
    let log_for = reports.first().and_then(|r| r.client_id).filter(|id| {
        !info.playing && info.bytes == 0 && reports.iter().all(|r| r.client_id == Some(*id))
    });
    Some(match (info.client_id, log_for) {
        (Some(client_id), _) if reports.is_empty() => Ended::Played { client_id, record },
        (_, Some(client_id)) => Ended::LogFor {
            client_id,
            record,
            reports: reports.into_iter().map(|r| r.record).collect(),
        },
        _ => Ended::Complete(record),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &std::path::Path, max_bytes: u64) -> ClientLogConfig {
        ClientLogConfig {
            dir: dir.to_path_buf(),
            max_bytes,
            keep_days: 2,
        }
    }

    fn record(ip: &str) -> Record {
        let mut r = Record::new();
        r.set("c-ip", ip);
        r
    }

    #[test]
    fn daily_files_with_header_cap_and_pruning() {
        let dir = std::env::temp_dir().join(format!("asfcast-wmlog-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let day0 = 1_700_000_000; // 2023-11-14
        let mut log = ClientLog::open(&cfg(&dir, 1000)).expect("dir");
        fs::write(dir.join("WMS_20231110.log"), "old").expect("old file");
        fs::write(dir.join("WMS_20231113.log"), "recent").expect("recent file");
        fs::write(dir.join("other.log"), "kept").expect("other file");
        log.write(&record("10.0.0.1"), day0);
        log.write(&record("10.0.0.2"), day0 + 60);
        let text = fs::read_to_string(dir.join("WMS_20231114.log")).expect("day file");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].starts_with("#Software: "));
        assert!(lines[3].starts_with("#Fields: c-ip date time"));
        assert!(lines[4].starts_with("10.0.0.1 - -"));
        assert!(lines[5].starts_with("10.0.0.2 - -"));
        // Pruned: older than keep_days (2) before 2023-11-14.
        assert!(!dir.join("WMS_20231110.log").exists());
        assert!(dir.join("WMS_20231113.log").exists());
        assert!(dir.join("other.log").exists());
        // The cap: a record that would pass max_bytes is dropped.
        for _ in 0..20 {
            log.write(&record("10.0.0.3"), day0 + 120);
        }
        let size = fs::metadata(dir.join("WMS_20231114.log"))
            .expect("size")
            .len();
        assert!(size <= 1000, "{size}");
        // The next day starts a new file with its header.
        log.write(&record("10.0.0.4"), day0 + 86_400);
        let next = fs::read_to_string(dir.join("WMS_20231115.log")).expect("next day");
        assert!(next.starts_with("#Software: "));
        assert!(next.ends_with(&format!("{}\n", record("10.0.0.4").to_line())));
        let _ = fs::remove_dir_all(&dir);
    }
}
