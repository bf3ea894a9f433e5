//! One running station in the shell: its source (polled when due), its hub, its MSB
//! multicast delivery ([`MsbSink`], whose datagrams go out on the station's multicast socket)
//! and its announcements. The event loop services it whenever its deadline passes and fans
//! the hub's events out to the station's unicast sessions.
//!
//! A station's turn is bounded ([`MAX_EVENTS_PER_SERVICE`]): however much its source has due
//! (a burst after a stall, a file whose send times do not advance), the loop gets back to
//! poll — signals, other stations, clients — after a slice of work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::asf::rewrite::strip_padding;
use crate::asf::{AsfReader, Packet};
use crate::config::{self, ServerConfig, StationConfig};
use crate::msb::{smoothing_rate, Departures, MsbSink, Smoothing};
use crate::source::PlaylistSource;
use crate::station::live::LiveInput;
use crate::station::sink::Sink;
use crate::station::source::{Source, SourceEvent, SourceState};
use crate::station::{Station, StationHeader, StationPacket};

use super::announce::Announcer;
use super::multicast::{MulticastOptions, MulticastSender};

/// Packets kept in the join ring at most (bounded memory per station).
const MAX_RING_PACKETS: usize = 8192;
/// How many datagrams are collected before a batched send.
const BATCH: usize = 64;
/// Source events handled in one [`StationRuntime::service`] call at most; the rest waits for
/// the next loop turn.
pub const MAX_EVENTS_PER_SERVICE: usize = 256;
/// How far ahead of their due instant a file station's packets are read, framed into MSB
/// datagrams (and handed to its unicast sessions) on the timer path, so that at the instant
/// only the sends are left: with many stations due together, the last station's datagrams
/// would otherwise wait for every other station's reading and framing (issue 14).
pub const FRAME_LEAD: Duration = Duration::from_millis(50);

struct MulticastOut {
    sink: MsbSink,
    socket: MulticastSender,
    /// When each datagram leaves (smoothing; the txtime lookahead).
    departures: Departures,
    fec_span: u8,
}

pub struct StationRuntime {
    pub config: StationConfig,
    pub hub: Station,
    source: Box<dyn Source>,
    msb: Option<MulticastOut>,
    pub announcer: Announcer,
    out: Vec<Vec<u8>>,
    /// Datagrams leaving now, with their departure.
    leaving: Vec<(Instant, Vec<u8>)>,
    /// What the hub produced since the daemon last took it (for unicast sessions).
    events: Vec<HubEvent>,
    /// When the source said its next packet is due (its last `Idle`), to measure how late
    /// that packet goes out.
    idle_until: Option<Instant>,
    pacing_lateness: crate::ops::histogram::Histogram,
    /// Times the source reported itself lost.
    source_lost: u64,
    /// A live station's input, fed by the shell ([`crate::station::live`]).
    live: Option<LiveInput>,
}

/// Something new at a station, fanned out to its unicast sessions.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Header(Arc<StationHeader>),
    Packet(Arc<StationPacket>),
}

/// A relay source (pull, multicast) behind the fallback switch when the station names a
/// slate or a header template; without either it plays as it is, so the header it serves
/// stays byte for byte the upstream's (the switch pads headers for its slate).
fn with_fallback(
    config: &StationConfig,
    relay: Box<dyn Source>,
    live: &crate::config::live::LiveSettings,
) -> Box<dyn Source> {
    if live.fallback.is_empty() && live.header_template.is_none() {
        return relay;
    }
    Box::new(crate::source::fallback::Fallback::new(
        &config.name,
        relay,
        live,
    ))
}

impl StationRuntime {
    pub fn start(
        server: &ServerConfig,
        config: &StationConfig,
        upstream: super::upstream::UpstreamSlot<'_>,
        now: Instant,
    ) -> std::io::Result<Self> {
        let mut live = None;
        let source: Box<dyn Source> = match &config.source {
            config::Source::Playlist(pl) => Box::new(PlaylistSource::new(
                &config.name,
                pl.files.clone(),
                pl.looping,
            )),
            config::Source::Push(p) => {
                let input = LiveInput::new(&config.name);
                live = Some(input.clone());
                crate::source::live::station_source(&config.name, input, &p.live)
            }
            config::Source::Pull(p) => with_fallback(
                config,
                super::upstream::pull_source(config, p, upstream, now)?,
                &p.live,
            ),
            config::Source::Multicast(m) => with_fallback(
                config,
                super::mcast_source::multicast_source(server, config, m, upstream, now)?,
                &m.live,
            ),
        };
        let mut rt = Self::with_source(server, config, source, now)?;
        rt.live = live;
        Ok(rt)
    }

    /// The live input the shell feeds (a live station's).
    pub fn live_input(&self) -> Option<&LiveInput> {
        self.live.as_ref()
    }

    /// Whether the station has work now although its deadline is later (its live input has
    /// something).
    pub fn has_input(&self) -> bool {
        self.live.as_ref().is_some_and(LiveInput::has_pending)
    }

    /// A station playing `source` (the config's own source in [`StationRuntime::start`]).
    pub fn with_source(
        server: &ServerConfig,
        config: &StationConfig,
        source: Box<dyn Source>,
        now: Instant,
    ) -> std::io::Result<Self> {
        let msb = match &config.multicast {
            Some(m) => {
                let opts = MulticastOptions {
                    group: m.destination(),
                    interface: m.interface.clone(),
                    ttl: u32::from(m.ttl),
                    loopback: m.loopback,
                    dscp: m.dscp,
                    send_buffer: m.send_buffer,
                };
                let socket = MulticastSender::open(&opts).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "station {}: multicast {} on {}: {e}",
                            config.name, opts.group, opts.interface
                        ),
                    )
                })?;
                let sink = MsbSink::new(&config.name, m.fec_span, m.beacon_interval, now).map_err(
                    |e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
                )?;
                let smoothing = m.smoothing.map(|max_delay| Smoothing {
                    max_delay,
                    // Until the first header says otherwise.
                    rate: smoothing_rate(0, 0, m.fec_span, Duration::ZERO, max_delay),
                });
                info!(
                    station = %config.name,
                    path = socket.path.name(),
                    reason = socket.path.reason(),
                    smoothing_max_delay_ms = smoothing.map(|s| s.max_delay.as_millis() as u64),
                    "multicast pacing"
                );
                Some(MulticastOut {
                    sink,
                    socket,
                    departures: Departures::new(smoothing),
                    fec_span: m.fec_span,
                })
            }
            None => None,
        };
        let mut announcer = Announcer::new(server, config);
        // Announce every header the playlist will play (a live station: its header template
        // and fallback), so receivers accept each Format ID from the first minute on (MS-MSB
        // §3.2.5.2: unknown Format IDs are ignored).
        for file in &config.source.announced_files() {
            match AsfReader::open(file) {
                Ok(r) => {
                    let mut header = r.header().clone();
                    if config.source.live().is_some() {
                        // As the fallback switch emits it.
                        header.pad_to_step(crate::source::fallback::HEADER_STEP);
                    }
                    let h = StationHeader::live(0, &header, r.data_head(), 0);
                    if let Err(e) = announcer.format_for(&h.bytes) {
                        warn!(station = %config.name, error = %e, "cannot assign a format id");
                    }
                }
                Err(e) => {
                    warn!(station = %config.name, file = %file.display(), error = %e, "playlist entry not readable yet")
                }
            }
        }
        if let Err(e) = announcer.publish() {
            warn!(station = %config.name, error = %e, "cannot write announcement files");
        }
        info!(station = %config.name, multicast = ?config.multicast.as_ref().map(|m| m.destination()), "station started");
        let mut hub = Station::new(&config.name, MAX_RING_PACKETS);
        hub.set_join_reach_back(server.limits.fast_start_buffer);
        Ok(StationRuntime {
            config: config.clone(),
            hub,
            source,
            msb,
            announcer,
            out: Vec::with_capacity(BATCH * 2),
            leaving: Vec::with_capacity(BATCH * 2),
            events: Vec::new(),
            idle_until: None,
            pacing_lateness: crate::ops::histogram::Histogram::new(
                crate::ops::histogram::LATENESS_BOUNDS,
            ),
            source_lost: 0,
            live: None,
        })
    }

    /// Takes a changed config that leaves the stream as it is (see
    /// [`config::diff::StationChange::InPlace`]): the source, hub and multicast go on; new
    /// clients see the new unicast settings and the announcements are rewritten.
    pub fn update(&mut self, server: &ServerConfig, config: &StationConfig) {
        debug_assert_eq!(
            config::diff::station_change(&self.config, config),
            config::diff::StationChange::InPlace
        );
        if let Err(e) = self.announcer.reconfigure(server, config) {
            warn!(station = %config.name, error = %e, "cannot write announcement files");
        }
        self.config = config.clone();
    }

    /// Does what is due at `now`, at most [`MAX_EVENTS_PER_SERVICE`] source events; returns
    /// when to call again (`now` when it stopped with work left).
    ///
    /// A file station's source is asked up to [`StationRuntime::frame_lead`] ahead: it is
    /// polled at each instant it names (`Idle(at)` with `at` within the lead), so every packet
    /// is framed with its own due instant as its departure and waits in the departures; the
    /// call returns the lead before the next packet is due, or the next departure (less the
    /// txtime path's lookahead, [`super::txtime`]), whichever comes first.
    pub fn service(&mut self, now: Instant) -> Instant {
        let lookahead = self.lookahead();
        let lead = self.frame_lead();
        let horizon = now + lead;
        // The instant the source is polled at: `now`, then each due instant up to the horizon.
        let mut at_time = now;
        let mut handled = 0;
        let next = loop {
            if handled >= MAX_EVENTS_PER_SERVICE {
                break now;
            }
            handled += 1;
            match self.source.poll(at_time) {
                SourceEvent::Header { header, data, .. } => {
                    self.idle_until = None;
                    self.on_header(&header, &data, at_time);
                    self.schedule(at_time);
                }
                SourceEvent::Packet(p) => {
                    // The packet the source was waiting for: it was due at the last `Idle`.
                    // (With multicast, lateness is measured when its datagrams leave.)
                    if let Some(due) = self.idle_until.take() {
                        if self.msb.is_none() {
                            self.pacing_lateness
                                .observe(now.saturating_duration_since(due));
                        }
                    }
                    self.on_packet(&p.bytes, at_time);
                    self.schedule(at_time);
                    if self
                        .msb
                        .as_ref()
                        .is_some_and(|m| m.departures.len() >= BATCH)
                    {
                        // The clock, not the turn's start: reading and framing take time, and
                        // lateness is measured against when the datagrams really leave.
                        let t = Instant::now().max(now);
                        self.send_due(t, t + lookahead);
                    }
                }
                SourceEvent::Idle(at) if at <= horizon && at > at_time => {
                    // Within the lead: frame it now, stamped with its due instant.
                    self.idle_until = Some(at);
                    at_time = at;
                }
                SourceEvent::Idle(at) => {
                    self.idle_until = Some(at);
                    break at.checked_sub(lead).unwrap_or(at).max(now);
                }
                SourceEvent::Lost { reason, retry_at } => {
                    self.idle_until = None;
                    self.source_lost += 1;
                    warn!(station = %self.config.name, %reason, "source lost; the station stays up");
                    break retry_at;
                }
                SourceEvent::Ended => break now + Duration::from_secs(3600),
            }
        };
        let mut next = next;
        if let Some(m) = &mut self.msb {
            if m.sink.deadline().is_some_and(|d| d <= now) {
                m.sink.on_timeout(now);
            }
            if let Some(d) = m.sink.deadline() {
                next = next.min(d);
            }
        }
        self.schedule(at_time.max(now));
        let t = Instant::now().max(now);
        self.send_due(t, t + lookahead);
        if let Some(d) = self
            .msb
            .as_ref()
            .and_then(|m| m.departures.next_departure())
        {
            next = next.min(d.checked_sub(lookahead).unwrap_or(d));
        }
        next
    }

    /// How far ahead of their departure this station's datagrams are handed to the kernel
    /// (zero on the timer path and without multicast).
    fn lookahead(&self) -> Duration {
        self.msb
            .as_ref()
            .map_or(Duration::ZERO, |m| m.socket.path.lookahead())
    }

    /// How far ahead of their due instant packets are framed: [`FRAME_LEAD`] for a multicast
    /// station whose source knows its timeline (a file), else the kernel's lookahead. A live
    /// or relayed source is never polled at a future instant (its stall timers would fire
    /// early).
    fn frame_lead(&self) -> Duration {
        let kernel = self.lookahead();
        if self.msb.is_some() && self.source.timeline_known() {
            kernel.max(FRAME_LEAD)
        } else {
            kernel
        }
    }

    /// Sends the multicast datagrams due by `now` (plus the kernel's lookahead): the first
    /// thing the loop does for every station in a turn, before any station reads or frames.
    pub fn send_ready(&mut self, now: Instant) {
        let until = now + self.lookahead();
        if self
            .msb
            .as_ref()
            .and_then(|m| m.departures.next_departure())
            .is_some_and(|d| d <= until)
        {
            self.send_due(now, until);
        }
    }

    /// How the multicast is paced, for the status page: "txtime (root qdisc fq); smoothing ≤ 3s".
    pub fn pacing_text(&self) -> Option<String> {
        let m = self.msb.as_ref()?;
        let smoothing = m.departures.smoothing().map_or(String::new(), |s| {
            format!(
                "; smoothing ≤ {}",
                crate::config::values::human_duration(s.max_delay)
            )
        });
        Some(format!(
            "{} ({}){smoothing}",
            m.socket.path.name(),
            m.socket.path.reason()
        ))
    }

    /// The station's multicast path: "txtime" or "timer" (None: no multicast).
    pub fn pacing_path(&self) -> Option<&super::txtime::PacingPath> {
        self.msb.as_ref().map(|m| &m.socket.path)
    }

    /// What the source is doing.
    pub fn source_state(&self) -> SourceState {
        self.source.state()
    }

    /// The figures the metrics report for this station.
    pub fn figures(&self) -> crate::ops::StationFigures {
        let src = self.source.counters();
        let msb = self
            .msb
            .as_ref()
            .map(|m| m.sink.counters())
            .unwrap_or_default();
        let held = self
            .msb
            .as_ref()
            .map(|m| m.departures.counters())
            .unwrap_or_default();
        crate::ops::StationFigures {
            pacing_lateness: self.pacing_lateness.clone(),
            source_started: src.started,
            source_failed: src.failed,
            source_lost: self.source_lost,
            msb_data: msb.data,
            msb_parity: msb.parity,
            msb_beacons: msb.beacons,
            pacing_path: self.pacing_path().map(|p| p.name()),
            smoothing_held: held.held,
            smoothing_at_bound: held.at_bound,
            msb_segmented_sends: self.msb.as_ref().map_or(0, |m| m.socket.segmented_sends),
        }
    }

    fn on_header(
        &mut self,
        header: &crate::asf::AsfHeader,
        data: &crate::asf::DataHead,
        now: Instant,
    ) {
        let live = StationHeader::live(0, header, data, 0);
        let (format_id, changed) = match self.announcer.format_for(&live.bytes) {
            Ok(x) => x,
            Err(e) => {
                warn!(station = %self.config.name, error = %e, "no format id left; keeping the previous one");
                (self.hub.header().map_or(1, |h| h.format_id), false)
            }
        };
        let h = StationHeader {
            generation: self.hub.next_generation(),
            format_id,
            ..live
        };
        debug!(station = %self.config.name, format_id, generation = h.generation, "new header");
        let h = self.hub.set_header(h);
        if let Some(m) = &mut self.msb {
            m.sink.on_header(&h, now);
            if let Some(s) = m.departures.smoothing() {
                m.departures.set_rate(smoothing_rate(
                    header.file.max_bitrate,
                    header.packet_size(),
                    m.fec_span,
                    Duration::from_millis(header.file.preroll_ms),
                    s.max_delay,
                ));
            }
        }
        self.events.push(HubEvent::Header(h));
        if changed {
            if let Err(e) = self.announcer.publish() {
                warn!(station = %self.config.name, error = %e, "cannot write announcement files");
            }
        }
    }

    fn on_packet(&mut self, bytes: &[u8], now: Instant) {
        let parsed = match Packet::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.hub.counters.bad_packets += 1;
                debug!(station = %self.config.name, error = %e, "bad packet");
                return;
            }
        };
        // Every protocol sends packets without their padding.
        let clean = self.hub.is_clean(&parsed);
        let stripped = strip_padding(&parsed);
        let Some(pkt) = self.hub.push_parsed(stripped, parsed.send_time, clean) else {
            return;
        };
        if let Some(m) = &mut self.msb {
            m.sink.on_packet(&pkt, now);
        }
        self.events.push(HubEvent::Packet(pkt));
    }

    /// Moves the datagrams the sink has ready into the send schedule ([`Departures`]), ready
    /// at `ready`.
    fn schedule(&mut self, ready: Instant) {
        let Some(m) = &mut self.msb else {
            return;
        };
        if m.sink.pending() > 0 {
            m.sink.take_datagrams(&mut self.out);
            for b in self.out.drain(..) {
                m.departures.push(b, ready);
            }
        }
    }

    /// Sends the datagrams leaving by `until` (`now` plus the path's lookahead); how late each
    /// leaves after its departure goes into the pacing histogram.
    fn send_due(&mut self, now: Instant, until: Instant) {
        let Some(m) = &mut self.msb else {
            return;
        };
        m.departures.take_until(until, &mut self.leaving);
        for (leave, _) in &self.leaving {
            self.pacing_lateness
                .observe(now.saturating_duration_since(*leave));
        }
        Self::send_leaving(m, &mut self.leaving, &mut self.out);
    }

    /// Sends `leaving` on the station's socket and recycles the buffers.
    fn send_leaving(
        m: &mut MulticastOut,
        leaving: &mut Vec<(Instant, Vec<u8>)>,
        batch: &mut Vec<Vec<u8>>,
    ) {
        if leaving.is_empty() {
            return;
        }
        if matches!(m.socket.path, super::txtime::PacingPath::Txtime(_)) {
            m.socket.send_stamped(leaving);
            batch.extend(leaving.drain(..).map(|(_, b)| b));
        } else {
            batch.extend(leaving.drain(..).map(|(_, b)| b));
            m.socket.send_batch(batch);
        }
        for b in batch.drain(..) {
            m.sink.recycle(b);
        }
    }

    /// Takes what the hub produced since the last call.
    pub fn take_events(&mut self, into: &mut Vec<HubEvent>) {
        into.append(&mut self.events);
    }

    /// Stops the station: closes the open span so the last packets are protected.
    pub fn stop(&mut self, now: Instant) {
        if let Some(input) = &self.live {
            input.close();
        }
        if let Some(m) = &mut self.msb {
            m.sink.on_station_end(now);
        }
        self.schedule(now);
        self.send_due(now, now);
        if let Some(m) = &mut self.msb {
            // What smoothing still holds leaves now: nothing is dropped.
            m.departures.take_all(&mut self.leaving);
            Self::send_leaving(m, &mut self.leaving, &mut self.out);
        }
        if let Some(m) = &self.msb {
            let held = m.departures.counters();
            info!(
                station = %self.config.name,
                sent = m.socket.sent,
                dropped = m.socket.dropped,
                segmented_sends = m.socket.segmented_sends,
                packets = self.hub.counters.packets,
                smoothing_held = held.held,
                smoothing_at_bound = held.at_bound,
                smoothing_max_hold_ms = held.max_hold.as_millis() as u64,
                "station stopped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A source with `remaining` packets due now, then idle until `idle_at`.
    struct Burst {
        remaining: usize,
        idle_at: Instant,
        polls: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Source for Burst {
        fn poll(&mut self, _now: Instant) -> SourceEvent {
            self.polls.set(self.polls.get() + 1);
            if self.remaining == 0 {
                return SourceEvent::Idle(self.idle_at);
            }
            self.remaining -= 1;
            // A zero-filled packet: it parses (stream 0, send time 0).
            SourceEvent::Packet(crate::station::source::SourcePacket {
                bytes: vec![0; 100],
                send_time: 0,
            })
        }

        fn state(&self) -> SourceState {
            SourceState::Starting
        }
    }

    #[test]
    fn a_turn_handles_a_bounded_slice_of_work() {
        let dir = std::env::temp_dir().join(format!("asfcast-runtime-{}", std::process::id()));
        let server = ServerConfig {
            announce_dir: dir.clone(),
            ..ServerConfig::default()
        };
        let yaml = "name: burst\nsource:\n  type: playlist\n  files: [/nonexistent/a.asf]\n\
                    unicast:\n  mms: false\n  mmsh: true\n  rtsp: false\n";
        let config =
            config::parse_station(Path::new("burst.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let m = MAX_EVENTS_PER_SERVICE;
        // (packets due now, expected next deadline, expected polls in the first turn)
        let cases = [
            (10, later, 11),
            (m - 1, later, m),
            (m, t0, m),
            (usize::MAX, t0, m),
        ];
        for (due_now, want_next, want_polls) in cases {
            let polls = std::rc::Rc::new(std::cell::Cell::new(0));
            let source = Box::new(Burst {
                remaining: due_now,
                idle_at: later,
                polls: polls.clone(),
            });
            let mut rt = StationRuntime::with_source(&server, &config, source, t0)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(rt.service(t0), want_next, "{due_now} packets due");
            assert_eq!(polls.get(), want_polls, "{due_now} packets due");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
