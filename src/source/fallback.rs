//! The fallback switch every live station plays through: its live source when present, a
//! playlist (the "slate") when not — before the encoder first connects, after it left, or
//! while it sends nothing for `stall_timeout` — and back to live at the live feed's first key
//! frame.
//!
//! Any live [`Source`] can be wrapped (the push source today; pull and multicast relays the
//! same way): it yields a `Header` when its feed (re)starts, packets with the feed's own ASF
//! times, `Lost` when the feed ended. This switch
//!
//! - puts every packet on the station's one continuous timeline ([`Retimer`]: a new entry at
//!   every header and every switch), so clients never see time go back across an encoder's
//!   restart or a switch;
//! - after a live header, drops live packets until one starts a key frame on the header's
//!   first clean-point stream (every packet when it has none, audio only), and only then
//!   emits the header and switches: a player never gets a picture it cannot decode;
//! - starts the slate at its first entry's beginning on every switch to it (a file starts
//!   with a key frame), so the slate is clean from its first packet too.
//!
//! Whether players stay connected across a switch is the header rule's business
//! ([`crate::station::delivery::compare_headers`]): a slate made in the live feed's format
//! (same streams, codecs and packet size) is a compatible header and players just continue;
//! any other gets each protocol's clean stream change.
//!
//! Pure in time like every source: `now` in, events and deadlines out.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::asf::retime::Retimer;
use crate::asf::{AsfHeader, DataHead, Packet};
use crate::config::live::LiveSettings;
use crate::station::source::{Source, SourceCounters, SourceEvent, SourcePacket, SourceState};

use super::PlaylistSource;

/// Live events handled in one poll at most before returning (bounded work per call).
const MAX_LIVE_STEPS: usize = 64;
/// Every header the switch emits is padded to a multiple of this (see [`pad`]).
pub const HEADER_STEP: usize = 2048;

/// The header padded to a multiple of [`HEADER_STEP`]: a live feed and a slate in one format
/// rarely have headers of the same length (metadata differs), and MMSH players cannot take a
/// longer header mid-stream, so both are made the same length.
fn pad(mut header: Box<AsfHeader>) -> Box<AsfHeader> {
    header.pad_to_step(HEADER_STEP);
    header
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing has played yet.
    Starting,
    /// The live feed goes out.
    Live,
    /// The slate goes out (or nothing, without one) while the live feed is absent.
    Slate,
}

/// A header as a source yields it, kept to be emitted again.
#[derive(Debug, Clone)]
struct KeptHeader {
    header: Box<AsfHeader>,
    data: DataHead,
    origin: String,
}

impl KeptHeader {
    fn event(&self) -> SourceEvent {
        SourceEvent::Header {
            header: self.header.clone(),
            data: self.data.clone(),
            origin: self.origin.clone(),
        }
    }
}

pub struct Fallback {
    station: String,
    live: Box<dyn Source>,
    slate_files: Vec<PathBuf>,
    slate: Option<PlaylistSource>,
    stall_timeout: Duration,
    mode: Mode,
    /// The live feed's current header, until its first key frame has gone out.
    live_header: Option<KeptHeader>,
    /// Live packets wait for a key frame (after a live header or a stall).
    awaiting_key: bool,
    /// The stream whose key frame ends the wait (None: any packet does).
    key_stream: Option<u8>,
    /// When the live feed last sent a packet.
    last_live: Option<Instant>,
    /// When the live source said it has something next.
    live_next: Option<Instant>,
    retimer: Retimer,
    /// Events ready to go out, in order (a header and the packet that followed it).
    ready: VecDeque<SourceEvent>,
    /// Without a slate, `Lost` was reported for the current absence.
    absence_reported: bool,
    state: SourceState,
    /// Switches to live and to the slate, for metrics and tests.
    pub to_live: u64,
    pub to_slate: u64,
}

impl Fallback {
    pub fn new(station: &str, live: Box<dyn Source>, settings: &LiveSettings) -> Self {
        Fallback {
            station: station.to_string(),
            live,
            slate_files: settings.fallback.clone(),
            slate: None,
            stall_timeout: settings.stall_timeout,
            mode: Mode::Starting,
            live_header: None,
            awaiting_key: true,
            key_stream: None,
            last_live: None,
            live_next: None,
            retimer: Retimer::new(),
            ready: VecDeque::new(),
            absence_reported: false,
            state: SourceState::Starting,
            to_live: 0,
            to_slate: 0,
        }
    }

    /// A packet on the station timeline.
    fn retimed(&mut self, p: SourcePacket) -> SourceEvent {
        match Packet::parse(&p.bytes) {
            Ok(parsed) => {
                let (send_time, shifted) = self.retimer.apply(&parsed);
                SourceEvent::Packet(SourcePacket {
                    bytes: shifted.unwrap_or(p.bytes),
                    send_time,
                })
            }
            // The runtime counts it as a bad packet.
            Err(_) => SourceEvent::Packet(p),
        }
    }

    fn is_key(&self, bytes: &[u8]) -> bool {
        match (Packet::parse(bytes), self.key_stream) {
            (Ok(p), Some(s)) => p.starts_key_frame_on(s),
            (Ok(_), None) => true,
            (Err(_), _) => false,
        }
    }

    fn switch_to_slate(&mut self, why: &str) {
        if self.mode == Mode::Slate {
            return;
        }
        if self.slate_files.is_empty() {
            warn!(station = %self.station, reason = why, "live source absent; no fallback configured");
        } else {
            info!(station = %self.station, reason = why, "live source absent; playing the fallback");
        }
        self.mode = Mode::Slate;
        self.to_slate += 1;
        self.absence_reported = false;
        // From its first entry's start: a clean key frame on a fresh timeline entry.
        self.slate = (!self.slate_files.is_empty())
            .then(|| PlaylistSource::new(&self.station, self.slate_files.clone(), true));
        self.retimer.new_entry();
    }

    /// Handles what the live source has; returns when it has nothing more now.
    fn drain_live(&mut self, now: Instant) {
        for _ in 0..MAX_LIVE_STEPS {
            if !self.ready.is_empty() {
                return;
            }
            match self.live.poll(now) {
                SourceEvent::Header {
                    header,
                    data,
                    origin,
                } => {
                    self.key_stream = header.clean_point_streams().first().copied();
                    self.live_header = Some(KeptHeader {
                        header: pad(header),
                        data,
                        origin,
                    });
                    self.awaiting_key = true;
                    self.last_live = Some(now);
                }
                SourceEvent::Packet(p) => {
                    self.last_live = Some(now);
                    if self.awaiting_key {
                        if !self.is_key(&p.bytes) {
                            continue;
                        }
                        let Some(h) = self.live_header.clone() else {
                            // A packet without a header: nothing can play it.
                            continue;
                        };
                        self.awaiting_key = false;
                        if self.mode != Mode::Live {
                            info!(station = %self.station, origin = %h.origin, "live source back at a key frame");
                            self.to_live += 1;
                        }
                        self.mode = Mode::Live;
                        self.slate = None;
                        self.state = SourceState::Playing {
                            origin: h.origin.clone(),
                        };
                        self.retimer.new_entry();
                        self.ready.push_back(h.event());
                    }
                    if self.mode == Mode::Live {
                        let ev = self.retimed(p);
                        self.ready.push_back(ev);
                    }
                }
                SourceEvent::Lost { reason, retry_at } => {
                    self.live_next = Some(retry_at);
                    self.live_header = None;
                    self.awaiting_key = true;
                    self.last_live = None;
                    if self.mode != Mode::Slate {
                        self.switch_to_slate(&reason);
                    }
                    return;
                }
                SourceEvent::Idle(at) => {
                    self.live_next = Some(at);
                    return;
                }
                SourceEvent::Ended => {
                    self.live_next = Some(now + Duration::from_secs(3600));
                    if self.mode != Mode::Slate {
                        self.switch_to_slate("the live source ended");
                    }
                    return;
                }
            }
        }
        // More live events wait: come back at once.
        self.live_next = Some(now);
    }

    /// The earliest instant something is due for the live side.
    fn live_deadline(&self, now: Instant) -> Instant {
        let mut at = self.live_next.unwrap_or(now + super::live::POLL_IDLE);
        if self.mode == Mode::Live {
            if let Some(last) = self.last_live {
                at = at.min(last + self.stall_timeout);
            }
        }
        at.max(now)
    }
}

impl Source for Fallback {
    fn poll(&mut self, now: Instant) -> SourceEvent {
        if let Some(ev) = self.ready.pop_front() {
            return ev;
        }
        self.drain_live(now);
        if let Some(ev) = self.ready.pop_front() {
            return ev;
        }
        if self.mode == Mode::Live
            && self
                .last_live
                .is_some_and(|t| now >= t + self.stall_timeout)
        {
            self.awaiting_key = true;
            self.switch_to_slate("the live source sent nothing within stall_timeout");
        }
        if self.mode == Mode::Starting {
            self.switch_to_slate("the live source has not connected yet");
        }
        if self.mode == Mode::Live {
            return SourceEvent::Idle(self.live_deadline(now));
        }
        let live_at = self.live_deadline(now);
        let Some(slate) = self.slate.as_mut() else {
            if !self.absence_reported {
                self.absence_reported = true;
                self.state = SourceState::Lost {
                    reason: "live source absent".into(),
                };
                return SourceEvent::Lost {
                    reason: "live source absent and no fallback".into(),
                    retry_at: live_at,
                };
            }
            return SourceEvent::Idle(live_at);
        };
        match slate.poll(now) {
            SourceEvent::Header {
                header,
                data,
                origin,
            } => {
                self.retimer.new_entry();
                self.state = SourceState::Playing {
                    origin: format!("fallback {origin}"),
                };
                SourceEvent::Header {
                    header: pad(header),
                    data,
                    origin,
                }
            }
            SourceEvent::Packet(p) => self.retimed(p),
            SourceEvent::Idle(at) => SourceEvent::Idle(at.min(live_at)),
            SourceEvent::Lost { reason, retry_at } => {
                self.state = SourceState::Lost {
                    reason: reason.clone(),
                };
                SourceEvent::Lost {
                    reason,
                    retry_at: retry_at.min(live_at),
                }
            }
            SourceEvent::Ended => SourceEvent::Idle(live_at),
        }
    }

    fn state(&self) -> SourceState {
        self.state.clone()
    }

    fn counters(&self) -> SourceCounters {
        let live = self.live.counters();
        let slate = self
            .slate
            .as_ref()
            .map(Source::counters)
            .unwrap_or_default();
        SourceCounters {
            started: live.started + slate.started,
            failed: live.failed + slate.failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::AsfReader;
    use crate::source::live::LiveSource;
    use crate::station::live::LiveInput;

    fn media(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media")
            .join(name)
    }

    #[test]
    fn padding_keeps_an_mbr_header_mbr() {
        // A pushed MBR header goes through `pad`: its Bitrate Mutual Exclusion and stream bit
        // rates must survive, as players choose their rendition from them.
        use crate::station::selection::rendition_groups;
        let h = AsfReader::open(&media("demo-mbr.asf"))
            .unwrap()
            .header()
            .clone();
        let padded = pad(Box::new(h.clone()));
        let bytes = padded.to_bytes();
        assert_eq!(bytes.len() % HEADER_STEP, 0);
        let back = AsfHeader::parse(&bytes).unwrap();
        assert_eq!(rendition_groups(&back), [vec![1, 2, 3]]);
        for n in 1..=4 {
            assert_eq!(back.stream_bitrate(n), h.stream_bitrate(n), "stream {n}");
        }
    }

    #[derive(Debug, PartialEq)]
    enum Out {
        Header(String),
        Packet { send: u32, key: bool },
    }

    /// Runs the switch over simulated time; the encoder (demo.asf, from its 11th packet: not
    /// a key frame) feeds the input between `live_from` and `live_until` seconds.
    fn run(live_from: u64, live_until: u64, seconds: u64) -> Vec<(Duration, Out)> {
        let input = LiveInput::new("t");
        let settings = LiveSettings {
            fallback: vec![media("slate.asf")],
            stall_timeout: Duration::from_secs(3),
            header_template: None,
        };
        let mut f = Fallback::new("t", Box::new(LiveSource::new(input.clone())), &settings);
        let mut r = AsfReader::open(&media("demo.asf")).unwrap();
        let header = Box::new(r.header().clone());
        let data = r.data_head().clone();
        let video = header.clean_point_streams()[0];
        let mut packets = Vec::new();
        while let Some(p) = r.next_packet() {
            packets.push(p.unwrap().bytes);
        }
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut feeder = None;
        let mut next_live = 10usize;
        let mut now = t0;
        let end = t0 + Duration::from_secs(seconds);
        while now < end {
            let el = now - t0;
            if el >= Duration::from_secs(live_from) && el < Duration::from_secs(live_until) {
                let id = *feeder.get_or_insert_with(|| {
                    let id = input.claim("enc", None).unwrap();
                    input.header(id, header.clone(), data.clone(), "enc".into());
                    id
                });
                // 15.5 packets per second, like the file.
                let due = (el.as_millis() as u64 - live_from * 1000) * 155 / 10_000 + 10;
                while (next_live as u64) <= due && next_live < packets.len() {
                    input.packet(id, packets[next_live].clone());
                    next_live += 1;
                }
            }
            let mut polls = 0;
            let next = loop {
                polls += 1;
                assert!(polls < 1000, "tight loop");
                match f.poll(now) {
                    SourceEvent::Header { origin, .. } => out.push((el, Out::Header(origin))),
                    SourceEvent::Packet(p) => {
                        let key = Packet::parse(&p.bytes).unwrap().starts_key_frame_on(video);
                        out.push((
                            el,
                            Out::Packet {
                                send: p.send_time,
                                key,
                            },
                        ));
                    }
                    SourceEvent::Idle(at) => break at,
                    SourceEvent::Lost { retry_at, .. } => break retry_at,
                    SourceEvent::Ended => panic!("ended"),
                }
            };
            now = next
                .min(now + Duration::from_millis(20))
                .max(now + Duration::from_millis(1));
        }
        out
    }

    #[test]
    fn slate_then_live_at_a_key_frame_then_slate_after_a_stall() {
        let out = run(2, 6, 12);
        let headers: Vec<_> = out
            .iter()
            .filter_map(|(t, o)| match o {
                Out::Header(origin) => Some((t.as_secs(), origin.contains("slate"))),
                _ => None,
            })
            .collect();
        // Slate from the start; live once its key frame came (demo.asf: every 2 s); the slate
        // again 3 s after the last live packet.
        assert_eq!(headers.first(), Some(&(0, true)), "{headers:?}");
        let live_at = headers
            .iter()
            .position(|h| !h.1)
            .expect("live never played");
        assert!((2..=5).contains(&headers[live_at].0), "{headers:?}");
        let back = headers[live_at..]
            .iter()
            .find(|h| h.1)
            .expect("no slate after the stall");
        assert!((8..=10).contains(&back.0), "{headers:?}");
        // The first packet after each header starts a key frame; time never goes back.
        let mut last = 0;
        let mut after_header = false;
        for (t, o) in &out {
            match o {
                Out::Header(_) => after_header = true,
                Out::Packet { send, key } => {
                    if after_header {
                        assert!(key, "a switch at {t:?} not at a key frame");
                        after_header = false;
                    }
                    assert!(*send >= last, "send time back at {t:?}: {send} < {last}");
                    last = *send;
                }
            }
        }
    }
}
