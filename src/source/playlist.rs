//! The file playlist source: plays a list of ASF files in order, optionally looping, paced by
//! the packets' send times.
//!
//! A file that is missing or corrupt is logged and skipped; when every entry has failed in a
//! row the source waits [`RETRY_DELAY`] before trying again, so a station whose media is not
//! there yet stays up (its multicast keeps sending beacons) and starts playing once it appears.
//! A file with a header but not one good packet is such a failed entry too. A file cut short
//! ends there.
//!
//! A bad packet inside a file is skipped, but not for free: it takes its slot of time
//! ([`Pacer::skip`]), so a file of garbage is skipped at the pace of the file instead of being
//! read (and, looping, re-read) in a tight loop; and it is counted, not logged one by one
//! ([`BadPacketLog`]: at most one line per 10 s).
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

use super::bad_packets::{BadPacketLog, REPORT_WINDOW};
use super::Pacer;

/// How long to wait after every playlist entry failed in a row.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

type FileReader = AsfReader<std::io::BufReader<std::fs::File>>;

/// What the source holds until it is due.
#[derive(Debug)]
enum Pending {
    /// The next packet.
    Packet(ReaderPacket, Instant),
    /// The slot of a skipped bad packet: nothing is read before it ends.
    Gap(Instant),
}

impl Pending {
    fn due(&self) -> Instant {
        match self {
            Pending::Packet(_, due) | Pending::Gap(due) => *due,
        }
    }
}

pub struct PlaylistSource {
    station: String,
    files: Vec<PathBuf>,
    looping: bool,
    current: Option<FileReader>,
    /// The path of the entry being played.
    current_path: PathBuf,
    /// Good and bad packets read from the current entry.
    current_packets: u64,
    current_bad: u64,
    next_entry: usize,
    /// The next packet (or bad packet's slot) and when it is due.
    pending: Option<Pending>,
    pacer: Pacer,
    bad_log: BadPacketLog,
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
            current_path: PathBuf::new(),
            current_packets: 0,
            current_bad: 0,
            next_entry: 0,
            pending: None,
            pacer: Pacer::new(),
            bad_log: BadPacketLog::new(),
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
        // Bounded: each turn either returns or consumes a packet or a playlist entry, a bad
        // packet's slot ends after the last one (the pacer's rate floor), and a full round of
        // failed entries sets `retry_at`.
        loop {
            if self.ended {
                self.state = SourceState::Ended;
                return SourceEvent::Ended;
            }
            if let Some(pending) = &self.pending {
                let due = pending.due();
                if due > now {
                    return SourceEvent::Idle(due);
                }
                if let Some(Pending::Packet(p, _)) = self.pending.take() {
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
                self.pacer.set_rate(
                    header.packet_size(),
                    header.file.max_bitrate,
                    Duration::from_millis(header.file.preroll_ms),
                );
                self.current = Some(r);
                self.current_path = path.clone();
                self.current_packets = 0;
                self.current_bad = 0;
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
                self.pending = Some(Pending::Packet(p, due));
            }
            Some(Err(e @ ReadError::Packet { .. })) => {
                self.bad_packets += 1;
                self.current_bad += 1;
                if let Some(n) = self.bad_log.record(now) {
                    self.report_bad_packets(n, Some(&e));
                }
                let slot_end = self.pacer.skip(now);
                self.pending = Some(Pending::Gap(slot_end));
            }
            Some(Err(e)) => {
                warn!(station = %self.station, file = %self.current_path.display(), error = %e, "file ended early");
                self.close_current(Some(e), now);
            }
            None => self.close_current(None, now),
        }
    }

    /// One aggregate line for `n` bad packets of the current file.
    fn report_bad_packets(&self, n: u64, last_error: Option<&ReadError>) {
        let file = self.current_path.display();
        let window = REPORT_WINDOW.as_secs();
        match last_error {
            Some(e) => warn!(
                station = %self.station, skipped = n, error = %e,
                "skipped {n} bad packets in {file} in the last {window} s"
            ),
            None => warn!(
                station = %self.station, skipped = n,
                "skipped {n} bad packets in {file} in the last {window} s"
            ),
        }
    }

    /// Closes the current file; one without a single good packet is a failed entry.
    fn close_current(&mut self, err: Option<ReadError>, now: Instant) {
        self.current = None;
        if let Some(n) = self.bad_log.finish(now) {
            self.report_bad_packets(n, None);
        }
        let path = std::mem::take(&mut self.current_path);
        if self.current_packets == 0 {
            let e = err.unwrap_or_else(|| {
                ReadError::NotAsf(match self.current_bad {
                    0 => "the file has no data packets".into(),
                    n => format!("the file has no good data packet ({n} bad)"),
                })
            });
            self.entry_failed(&path, &e, now);
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

    fn counters(&self) -> crate::station::source::SourceCounters {
        crate::station::source::SourceCounters {
            started: self.entries_started,
            failed: self.entries_failed,
        }
    }

    /// A file's packets are due at their send times from the entry's anchor: polling ahead
    /// only reads what is due by then (entry changes and retries are timed from that instant).
    fn timeline_known(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pacer::STALL_BURST;

    fn demo_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf")
    }

    /// What replaces the demo's data packets.
    #[derive(Debug, Clone, Copy)]
    enum Data {
        /// The demo as it is.
        Demo,
        /// Zero-filled packets (a preallocated file): they parse, all with send time 0.
        Zeros,
        /// Packets that never parse (random bytes behind a first byte that is always refused:
        /// error correction present with a non-zero length type).
        Garbage,
    }

    /// The demo's header and Data Object head, then `Data` in place of its 155 packets.
    fn media(dir: &Path, data: Data) -> PathBuf {
        let demo = std::fs::read(demo_path()).unwrap_or_else(|e| panic!("{e}"));
        let r = AsfReader::open(&demo_path()).unwrap_or_else(|e| panic!("{e}"));
        let head = r.header_bytes().len() + crate::asf::DATA_HEAD_LEN;
        let path = dir.join(format!("{data:?}.asf"));
        let mut bytes = demo[..head].to_vec();
        let packets = demo.len() - head;
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        match data {
            Data::Demo => return demo_path(),
            Data::Zeros => bytes.resize(head + packets, 0),
            Data::Garbage => {
                for i in 0..packets {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let b = if i % r.packet_size() == 0 {
                        0xE0
                    } else {
                        seed as u8
                    };
                    bytes.push(b);
                }
            }
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// What a source did over a stretch of simulated time, polled the way the runtime does.
    #[derive(Debug, Default)]
    struct Run {
        headers: u64,
        packets: u64,
        bytes: u64,
        lost: Vec<Duration>,
        /// The most polls answered at one instant.
        polls_at_one_instant: u64,
    }

    fn run(source: &mut PlaylistSource, t0: Instant, seconds: u64) -> Run {
        let end = t0 + Duration::from_secs(seconds);
        let mut out = Run::default();
        let mut now = t0;
        let mut at_now = 0;
        while now < end {
            at_now += 1;
            out.polls_at_one_instant = out.polls_at_one_instant.max(at_now);
            assert!(at_now < 10_000, "a tight loop at {:?}", now - t0);
            let next = match source.poll(now) {
                SourceEvent::Header { .. } => {
                    out.headers += 1;
                    now
                }
                SourceEvent::Packet(p) => {
                    out.packets += 1;
                    out.bytes += p.bytes.len() as u64;
                    now
                }
                SourceEvent::Idle(at) => at,
                SourceEvent::Lost { retry_at, .. } => {
                    out.lost.push(retry_at - now);
                    retry_at
                }
                SourceEvent::Ended => break,
            };
            assert!(next >= now, "time goes back");
            if next > now {
                now = next;
                at_now = 0;
            }
        }
        out
    }

    /// (name, the data, what the run must show).
    type Case = (&'static str, Data, Box<dyn Fn(&Run)>);

    #[test]
    fn bad_data_is_played_or_skipped_at_the_pace_of_the_file() {
        let dir = std::env::temp_dir().join(format!("asfcast-playlist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        // The demo's header: 3200-byte packets at 314 kbit/s = 39 250 B/s at most; the file
        // itself plays at 155 packets per 10 s (49 600 B/s: a little over its declaration).
        let declared = 314_000 / 8;
        // Non-advancing packets may run two prerolls (3.1 s) ahead of the declared rate.
        let mut pacer = Pacer::new();
        pacer.set_rate(3200, 314_000, Duration::from_millis(3100));
        let burst = u64::from(pacer.burst_packets().max(STALL_BURST)) + 1;
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("a good file plays by its send times", Data::Demo, Box::new(|r: &Run| {
                assert!((440..=470).contains(&r.packets), "{r:?}");
                assert!(r.lost.is_empty(), "{r:?}");
                assert!(r.polls_at_one_instant <= 8, "{r:?}");
            })),
            ("zero-filled packets never beat the declared bit rate", Data::Zeros, Box::new(move |r: &Run| {
                assert!(r.packets > 100, "they are played: {r:?}");
                // 30 s at the declared rate, plus the first burst and the first packet of
                // each pass (a loop advances the retimed send time by 1 ms).
                assert!(r.bytes <= declared * 30 + (burst + r.headers) * 3200, "{r:?}");
                assert!(r.polls_at_one_instant <= burst + 2, "{r:?}");
            })),
            ("a file without one good packet is a failed entry, retried after the back-off",
                Data::Garbage, Box::new(move |r: &Run| {
                assert_eq!(r.packets, 0, "{r:?}");
                // Each pass skips 155 packet slots (the first two prerolls of them at once,
                // the rest at the declared rate: ~6.3 s), then waits RETRY_DELAY.
                assert_eq!(r.headers, 3, "{r:?}");
                assert_eq!(r.lost, vec![RETRY_DELAY; 2], "{r:?}");
                assert!(r.polls_at_one_instant <= burst + 3, "{r:?}");
            })),
        ];
        for (name, data, check) in cases {
            let file = media(&dir, data);
            let mut source = PlaylistSource::new("t", vec![file], true);
            let r = run(&mut source, Instant::now(), 30);
            eprintln!("{name}: {r:?}");
            check(&r);
            if let Data::Garbage = data {
                assert!(source.bad_packets >= 155, "{name}: {}", source.bad_packets);
                assert!(source.entries_failed >= 1, "{name}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
