//! One running station in the shell: its source (polled when due), its hub, its MSB
//! multicast delivery ([`MsbSink`], whose datagrams go out on the station's multicast socket)
//! and its announcements. The event loop services it whenever its deadline passes and fans
//! the hub's events out to the station's unicast sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::asf::rewrite::strip_padding;
use crate::asf::{AsfReader, Packet};
use crate::config::{self, ServerConfig, StationConfig};
use crate::msb::MsbSink;
use crate::source::PlaylistSource;
use crate::station::sink::Sink;
use crate::station::source::{Source, SourceEvent, SourceState};
use crate::station::{Station, StationHeader, StationPacket};

use super::announce::Announcer;
use super::multicast::{MulticastOptions, MulticastSender};

/// Packets kept in the join ring at most (bounded memory per station).
const MAX_RING_PACKETS: usize = 8192;
/// How many datagrams are collected before a batched send.
const BATCH: usize = 64;

struct MulticastOut {
    sink: MsbSink,
    socket: MulticastSender,
}

pub struct StationRuntime {
    pub config: StationConfig,
    pub hub: Station,
    source: Box<dyn Source>,
    msb: Option<MulticastOut>,
    pub announcer: Announcer,
    out: Vec<Vec<u8>>,
    /// What the hub produced since the daemon last took it (for unicast sessions).
    events: Vec<HubEvent>,
}

/// Something new at a station, fanned out to its unicast sessions.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Header(Arc<StationHeader>),
    Packet(Arc<StationPacket>),
}

impl StationRuntime {
    pub fn start(
        server: &ServerConfig,
        config: &StationConfig,
        now: Instant,
    ) -> std::io::Result<Self> {
        let config::Source::Playlist(pl) = &config.source;
        let source: Box<dyn Source> = Box::new(PlaylistSource::new(
            &config.name,
            pl.files.clone(),
            pl.looping,
        ));
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
                Some(MulticastOut { sink, socket })
            }
            None => None,
        };
        let mut announcer = Announcer::new(server, config);
        // Announce every header the playlist will play, so receivers accept each Format ID
        // from the first minute on (MS-MSB §3.2.5.2: unknown Format IDs are ignored).
        for file in &pl.files {
            match AsfReader::open(file) {
                Ok(r) => {
                    let h = StationHeader::live(0, r.header(), r.data_head(), 0);
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
        Ok(StationRuntime {
            config: config.clone(),
            hub: Station::new(&config.name, MAX_RING_PACKETS),
            source,
            msb,
            announcer,
            out: Vec::with_capacity(BATCH * 2),
            events: Vec::new(),
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

    /// Does everything due at `now`; returns when to call again.
    pub fn service(&mut self, now: Instant) -> Instant {
        let next = loop {
            match self.source.poll(now) {
                SourceEvent::Header { header, data, .. } => {
                    self.on_header(&header, &data, now);
                }
                SourceEvent::Packet(p) => {
                    self.on_packet(&p.bytes, now);
                    if self.msb.as_ref().is_some_and(|m| m.sink.pending() >= BATCH) {
                        self.send_out();
                    }
                }
                SourceEvent::Idle(at) => break at,
                SourceEvent::Lost { reason, retry_at } => {
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
        self.send_out();
        next
    }

    /// What the source is doing.
    pub fn source_state(&self) -> SourceState {
        self.source.state()
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

    /// Sends the multicast datagrams the sink has ready.
    fn send_out(&mut self) {
        let Some(m) = &mut self.msb else {
            return;
        };
        if m.sink.pending() == 0 {
            return;
        }
        m.sink.take_datagrams(&mut self.out);
        m.socket.send_batch(&self.out);
        for b in self.out.drain(..) {
            m.sink.recycle(b);
        }
    }

    /// Takes what the hub produced since the last call.
    pub fn take_events(&mut self, into: &mut Vec<HubEvent>) {
        into.append(&mut self.events);
    }

    /// Stops the station: closes the open span so the last packets are protected.
    pub fn stop(&mut self, now: Instant) {
        if let Some(m) = &mut self.msb {
            m.sink.on_station_end(now);
        }
        self.send_out();
        if let Some(m) = &self.msb {
            info!(
                station = %self.config.name,
                sent = m.socket.sent,
                dropped = m.socket.dropped,
                packets = self.hub.counters.packets,
                "station stopped"
            );
        }
    }
}
