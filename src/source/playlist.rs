//! The file playlist source: plays a list of ASF files in order, optionally looping, paced by
//! the packets' send times.
//!
//! A file that is missing or corrupt is logged and skipped; when every entry has failed in a
//! row the source waits [`RETRY_DELAY`] before trying again, so a station whose media is not
//! there yet stays up (its multicast keeps sending beacons) and starts playing once it appears.
//! A bad packet inside a file is skipped with a log line; a file cut short ends there.
//!
//! Every entry (and every loop) restarts its ASF times at zero; the source shifts them onto one
//! continuous station timeline ([`Retimer`]) before pacing, so the packets go out exactly on
//! the send times they carry, and no client ever sees time go back.
//!
//! The source reads files but takes `now` as a parameter, never sleeps and never reads the
//! clock: [`Source::poll`] says what to do now or when to ask again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::asf::retime::Retimer;
use crate::asf::{AsfReader, Packet, ReadError, ReaderPacket};
use crate::station::source::{Source, SourceEvent, SourcePacket, SourceState};

use super::Pacer;

/// How long to wait after every playlist entry failed in a row.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

type FileReader = AsfReader<std::io::BufReader<std::fs::File>>;

pub struct PlaylistSource {
    station: String,
    files: Vec<PathBuf>,
    looping: bool,
    current: Option<FileReader>,
    current_packets: u64,
    next_entry: usize,
    /// The next packet and when it is due.
    pending: Option<(ReaderPacket, Instant)>,
    pacer: Pacer,
    retimer: Retimer,
    failures_in_row: usize,
    retry_at: Option<Instant>,
    /// Why the source is lost, not yet reported as [`SourceEvent::Lost`].
    lost_unreported: Option<String>,
    state: SourceState,
    ended: bool,
    /// Counters: entries started, entries failed, bad packets skipped.
    pub entries_started: u64,
    pub entries_failed: u64,
    pub bad_packets: u64,
}

impl PlaylistSource {
    pub fn new(station: &str, files: Vec<PathBuf>, looping: bool) -> Self {
        PlaylistSource {
            station: station.to_string(),
            files,
            looping,
            current: None,
            current_packets: 0,
            next_entry: 0,
            pending: None,
            pacer: Pacer::new(),
            retimer: Retimer::new(),
            failures_in_row: 0,
            retry_at: None,
            lost_unreported: None,
            state: SourceState::Starting,
            ended: false,
            entries_started: 0,
            entries_failed: 0,
            bad_packets: 0,
        }
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn next_event(&mut self, now: Instant) -> SourceEvent {
        // Bounded: each turn either returns or consumes a packet or a playlist entry, and a
        // full round of failed entries sets `retry_at`.
        loop {
            if self.ended {
                self.state = SourceState::Ended;
                return SourceEvent::Ended;
            }
            if let Some((_, due)) = &self.pending {
                if *due > now {
                    return SourceEvent::Idle(*due);
                }
                if let Some((p, _)) = self.pending.take() {
                    return SourceEvent::Packet(SourcePacket {
                        bytes: p.bytes,
                        send_time: p.send_time,
                    });
                }
            }
            if self.current.is_none() {
                if let Some(at) = self.retry_at {
                    if let Some(reason) = self.lost_unreported.take() {
                        self.state = SourceState::Lost {
                            reason: reason.clone(),
                        };
                        return SourceEvent::Lost {
                            reason,
                            retry_at: at,
                        };
                    }
                    if at > now {
                        return SourceEvent::Idle(at);
                    }
                    self.retry_at = None;
                }
                match self.open_next(now) {
                    Some(ev) => return ev,
                    None => continue,
                }
            }
            self.read_next(now);
        }
    }

    /// Opens the next playlist entry; None when it failed (the caller loops).
    fn open_next(&mut self, now: Instant) -> Option<SourceEvent> {
        if self.files.is_empty() {
            self.ended = true;
            return Some(SourceEvent::Ended);
        }
        if self.next_entry >= self.files.len() {
            if !self.looping {
                self.ended = true;
                info!(station = %self.station, "playlist ended");
                return Some(SourceEvent::Ended);
            }
            self.next_entry = 0;
        }
        let entry = self.next_entry;
        self.next_entry += 1;
        let path = self.files[entry].clone();
        match AsfReader::open(&path) {
            Ok(r) => {
                let header = Box::new(r.header().clone());
                let data = r.data_head().clone();
                self.current = Some(r);
                self.current_packets = 0;
                self.retimer.new_entry();
                self.entries_started += 1;
                info!(station = %self.station, file = %path.display(), entry, "playing");
                let origin = path.display().to_string();
                self.state = SourceState::Playing {
                    origin: origin.clone(),
                };
                Some(SourceEvent::Header {
                    header,
                    data,
                    origin,
                })
            }
            Err(e) => {
                self.entry_failed(&path, &e, now);
                None
            }
        }
    }

    fn entry_failed(&mut self, path: &Path, e: &ReadError, now: Instant) {
        warn!(station = %self.station, file = %path.display(), error = %e, "skipping playlist entry");
        self.entries_failed += 1;
        self.failures_in_row += 1;
        if self.failures_in_row >= self.files.len() {
            self.failures_in_row = 0;
            self.retry_at = Some(now + RETRY_DELAY);
            self.lost_unreported = Some("no playable entry in the playlist".into());
            warn!(
                station = %self.station,
                retry_in_s = RETRY_DELAY.as_secs(),
                "no playable entry in the playlist; retrying"
            );
        }
    }

    /// Reads the next packet of the current file into `pending`, or closes the file.
    fn read_next(&mut self, now: Instant) {
        let Some(reader) = self.current.as_mut() else {
            return;
        };
        match reader.next_packet() {
            Some(Ok(mut p)) => {
                self.current_packets += 1;
                self.failures_in_row = 0;
                if let Ok(parsed) = Packet::parse(&p.bytes) {
                    let (send_time, shifted) = self.retimer.apply(&parsed);
                    if let Some(bytes) = shifted {
                        p.bytes = bytes;
                    }
                    p.send_time = send_time;
                }
                let due = self.pacer.due(p.send_time, now);
                self.pending = Some((p, due));
            }
            Some(Err(e @ ReadError::Packet { .. })) => {
                self.bad_packets += 1;
                warn!(station = %self.station, error = %e, "skipping bad packet");
            }
            Some(Err(e)) => {
                let path = self
                    .files
                    .get(self.next_entry - 1)
                    .cloned()
                    .unwrap_or_default();
                warn!(station = %self.station, file = %path.display(), error = %e, "file ended early");
                self.close_current(&path, Some(e), now);
            }
            None => {
                let path = self
                    .files
                    .get(self.next_entry - 1)
                    .cloned()
                    .unwrap_or_default();
                self.close_current(&path, None, now);
            }
        }
    }

    fn close_current(&mut self, path: &Path, err: Option<ReadError>, now: Instant) {
        self.current = None;
        if self.current_packets == 0 {
            let e = err.unwrap_or_else(|| ReadError::NotAsf("the file has no data packets".into()));
            self.entry_failed(path, &e, now);
        }
    }
}

impl Source for PlaylistSource {
    fn poll(&mut self, now: Instant) -> SourceEvent {
        self.next_event(now)
    }

    fn state(&self) -> SourceState {
        self.state.clone()
    }
}
