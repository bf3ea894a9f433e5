//! One running station in the daemon: its playlist source, hub, MSB multicast output (with
//! beacons while no data flows) and announcements, serviced by the event loop whenever the
//! pacing timer fires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::asf::rewrite::strip_padding;
use crate::asf::{AsfReader, Packet};
use crate::config::{ServerConfig, Source, StationConfig};
use crate::msb::{self, MsbSender, MsbSenderConfig};
use crate::net::multicast::{MulticastOptions, MulticastSender};
use crate::source::{PlaylistSource, SourceEvent};
use crate::station::{Station, StationHeader, StationPacket};

use super::announce::Announcer;

/// A source stall longer than this closes the open FEC span, so the last packets before the
/// stall are protected without waiting for the stream to resume.
const FLUSH_AFTER_IDLE: Duration = Duration::from_millis(500);
/// Packets kept in the join ring at most (bounded memory per station).
const MAX_RING_PACKETS: usize = 8192;
/// How many datagrams are collected before a batched send.
const BATCH: usize = 64;

struct MulticastOut {
    sender: MsbSender,
    socket: MulticastSender,
    beacon_interval: Duration,
    /// Last time anything (data or beacon) went to the group.
    last_sent: Instant,
    span_open: bool,
}

pub struct StationRuntime {
    pub config: StationConfig,
    pub hub: Station,
    source: PlaylistSource,
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
        let Source::Playlist(pl) = &config.source;
        let source = PlaylistSource::new(&config.name, pl.files.clone(), pl.looping);
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
                let sender = MsbSender::new(MsbSenderConfig {
                    fec_span: m.fec_span,
                    first_packet_id: 0,
                })
                .map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
                Some(MulticastOut {
                    sender,
                    socket,
                    beacon_interval: m.beacon_interval,
                    last_sent: now.checked_sub(m.beacon_interval).unwrap_or(now),
                    span_open: false,
                })
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

    /// Does everything due at `now`; returns when to call again.
    pub fn service(&mut self, now: Instant) -> Instant {
        let next = loop {
            match self.source.poll(now) {
                SourceEvent::Header { header, data, .. } => {
                    self.on_header(&header, &data);
                }
                SourceEvent::Packet(p) => {
                    self.on_packet(&p.bytes);
                    if self.out.len() >= BATCH {
                        self.send_out(now);
                    }
                }
                SourceEvent::Idle(at) => break at,
                SourceEvent::Ended => break now + Duration::from_secs(3600),
            }
        };
        self.send_out(now);
        self.beacon_or_flush(now, next)
    }

    fn on_header(&mut self, header: &crate::asf::AsfHeader, data: &crate::asf::DataHead) {
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
        self.events.push(HubEvent::Header(h));
        if changed {
            if let Err(e) = self.announcer.publish() {
                warn!(station = %self.config.name, error = %e, "cannot write announcement files");
            }
        }
        if let Some(m) = &mut self.msb {
            if let Err(e) = m.sender.set_format(format_id, &mut self.out) {
                warn!(station = %self.config.name, error = %e, "MSB format change failed");
            }
            m.span_open = false;
        }
    }

    fn on_packet(&mut self, bytes: &[u8]) {
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
        self.events.push(HubEvent::Packet(pkt.clone()));
        if let Some(m) = &mut self.msb {
            match m.sender.push(&pkt.bytes, &mut self.out) {
                Ok(()) => m.span_open = true,
                Err(e) => debug!(station = %self.config.name, error = %e, "MSB push failed"),
            }
        }
    }

    fn send_out(&mut self, now: Instant) {
        if self.out.is_empty() {
            return;
        }
        if let Some(m) = &mut self.msb {
            m.socket.send_batch(&self.out);
            m.last_sent = now;
            for b in self.out.drain(..) {
                m.sender.recycle(b);
            }
        } else {
            self.out.clear();
        }
    }

    /// Sends a beacon when the group has been silent for the beacon interval, and closes the
    /// FEC span when the source stalls. Returns the earlier of `next` and the next beacon.
    fn beacon_or_flush(&mut self, now: Instant, next: Instant) -> Instant {
        let Some(m) = &mut self.msb else {
            return next;
        };
        if m.span_open && next > now + FLUSH_AFTER_IDLE {
            m.sender.flush(&mut self.out);
            m.span_open = false;
            m.socket.send_batch(&self.out);
            for b in self.out.drain(..) {
                m.sender.recycle(b);
            }
        }
        if now.duration_since(m.last_sent) >= m.beacon_interval {
            m.socket.send_batch(&[msb::beacon().to_vec()]);
            m.last_sent = now;
        }
        next.min(m.last_sent + m.beacon_interval)
    }

    /// Takes what the hub produced since the last call.
    pub fn take_events(&mut self, into: &mut Vec<HubEvent>) {
        into.append(&mut self.events);
    }

    /// Stops the station: closes the open span so the last packets are protected.
    pub fn stop(&mut self) {
        if let Some(m) = &mut self.msb {
            m.sender.flush(&mut self.out);
            m.socket.send_batch(&self.out);
            self.out.clear();
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
