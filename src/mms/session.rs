//! One MMS client on the [`Session`] contract: the live-broadcast sequence of [MS-MMSP] 3.2
//! as the four open-source clients drive it (ffmpeg `mmst.c`, VLC `mmstu.c`, libmms, mplayer;
//! `shared/docs/protocols/mmsp.md` §2 and §5), over TCP with optional UDP data (MMSU).
//!
//! ```text
//! Greeting --0x01--> Connected --0x18/0x02--> Connected --0x05 (station)--> Open
//! Open --0x15--> 0x11 + header Data packets      Open --0x33--> 0x21 (stream selection)
//! Open --0x07--> 0x05, then media (join at the newest clean point) --> Playing
//! Playing --0x09--> 0x1E (Open again)   any --0x0D--> close   0x1B pongs are ignored
//! ```
//!
//! The invariants of mmsp.md §5.5: exactly one reply per request, in order; nothing
//! unsolicited before StartPlaying (pings only while playing, when the station is silent);
//! 0x11 before the header packets (TCP only, see [`MmsSession`]'s `send_header`) and 0x05
//! before the media packets; header fragments carry
//! the ReadBlock incarnation and AFFlags 0x04…0x0C; media packets carry the StartPlaying
//! incarnation, a per-client LocationId counting from 0 and are exactly `filePacketSize` bytes
//! (the station's stripped packets are re-padded with zeros: mplayer pads with stale bytes
//! otherwise); never 0x20 (only libmms copes) and never 0x1A.
//!
//! A live station's playlist may move on to a new entry. With the same stream layout the
//! client simply continues ([`compare_headers`]); with a different one the session ends with
//! 0x1E, since only libmms understands ReportStreamChange.
//!
//! Join, fast start, slow clients, header changes and stream selection follow the station's
//! per-client rules ([`Delivery`], [`StreamSelection`]): a client whose TCP backlog passes
//! `client_backlog_bytes` skips to the next clean point, and one that stays behind for
//! `idle_timeout` is closed with its reason logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::codec::{
    self, hr, ClientMessage, CommandReader, DataHead, OpenFileReport, ServerMessage, Transport,
    ATTR_BROADCAST, DATA_HEAD_LEN, MAX_DATA_PAYLOAD,
};
use crate::config::ServerConfig;
use crate::station::delivery::{
    compare_headers, Choice, Delivery, Framer, StreamSelection, Thinning, Verdict,
};
use crate::station::feed::FeedConfig;
use crate::station::sink::{
    ClientInfo, Datagram, OutQueue, Protocol, Session, Sink, StationView, Step, UdpChannel,
    UdpPorts,
};
use crate::station::{StationHeader, StationPacket};

/// How long a playing client may go without any output before it gets a Ping.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(3);
/// How often a playing session re-checks its feed when nothing else is due.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The limits one MMS session works with.
#[derive(Debug, Clone, PartialEq)]
pub struct MmsConfig {
    pub feed: FeedConfig,
    /// Longest command accepted.
    pub request_max_bytes: usize,
    /// Time from connect to the first StartPlaying.
    pub handshake_timeout: Duration,
    /// Time a connected but not playing client may stay silent.
    pub idle_timeout: Duration,
    /// Silence (no data, no command) after which a playing client is pinged.
    pub ping_interval: Duration,
    /// The server's MMS UDP data socket port; `None` refuses MMSU.
    pub udp_port: Option<u16>,
    /// Every UDP port of the server: a client may not name one as its data port.
    pub own_udp_ports: Vec<u16>,
}

impl MmsConfig {
    pub fn from_server(server: &ServerConfig, udp: UdpPorts) -> Self {
        let l = &server.limits;
        MmsConfig {
            feed: FeedConfig {
                backlog_limit: l.client_backlog_bytes,
                fast_start_rate: l.fast_start_rate,
                stall_timeout: l.idle_timeout,
            },
            request_max_bytes: l.request_max_bytes,
            handshake_timeout: l.handshake_timeout,
            idle_timeout: l.idle_timeout,
            ping_interval: DEFAULT_PING_INTERVAL,
            udp_port: udp.mms_data,
            own_udp_ports: udp.all(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for LinkViewerToMacConnect.
    Greeting,
    /// Connected; funnel and OpenFile expected.
    Connected,
    /// A station is open: header, stream selection, StartPlaying.
    Open,
    /// Media flows.
    Playing,
}

/// An MMS (MMST/MMSU) session.
pub struct MmsSession {
    peer: SocketAddr,
    cfg: MmsConfig,
    reader: CommandReader,
    /// Server message counter.
    seq: u16,
    phase: Phase,
    station: Option<String>,
    header: Option<Arc<StationHeader>>,
    feed: Option<Delivery>,
    /// The client's StreamSwitch (0x33) choice, kept for every StartPlaying.
    choice: Option<Choice>,
    media: Media,
    started: Instant,
    ever_played: bool,
    last_input: Instant,
    next_check: Instant,
    /// The player's subscriber string (e.g. `NSPlayer/7.0.0.1956; {guid}; Host: …`).
    user_agent: Option<String>,
    /// What the client was admitted as under the limits, once it opened a station.
    admitted: Option<crate::access::limits::Kind>,
    /// Skips to a clean point and packets skipped by feeds that ended, for the end-of-session
    /// log line.
    skips: u64,
    skipped: u64,
    thin_steps: u64,
}

/// Everything the session sends: its TCP output, its UDP data datagrams, and the Data packet
/// framing of media (the [`Framer`] the station's per-client rules feed).
struct Media {
    peer: SocketAddr,
    out: OutQueue,
    datagrams: Vec<Datagram>,
    /// MMSU: where Data packets go.
    udp_to: Option<SocketAddr>,
    /// The open station's fixed packet size (media packets are re-padded to it).
    packet_size: usize,
    /// StartPlaying playIncarnation (byte 4 of media packets).
    incarnation: u8,
    /// Next media LocationId (virtual packet number, per client).
    location: u32,
    /// Media AFFlags sequence ([MS-MMSP] 3.2.5.11.1).
    af_seq: u8,
    last_output: Instant,
    /// Media packets and bytes sent.
    packets_sent: u64,
    bytes_sent: u64,
}

impl MmsSession {
    pub fn new(peer: SocketAddr, cfg: MmsConfig, now: Instant) -> Self {
        MmsSession {
            peer,
            reader: CommandReader::new(cfg.request_max_bytes),
            cfg,
            seq: 0,
            phase: Phase::Greeting,
            station: None,
            header: None,
            feed: None,
            choice: None,
            media: Media {
                peer,
                out: OutQueue::new(),
                datagrams: Vec::new(),
                udp_to: None,
                packet_size: 0,
                incarnation: 0,
                location: 0,
                af_seq: 0,
                last_output: now,
                packets_sent: 0,
                bytes_sent: 0,
            },
            started: now,
            ever_played: false,
            last_input: now,
            next_check: now + CHECK_INTERVAL,
            user_agent: None,
            admitted: None,
            skips: 0,
            skipped: 0,
            thin_steps: 0,
        }
    }

    /// True once the client has started playing (for tests and status).
    pub fn is_playing(&self) -> bool {
        self.phase == Phase::Playing
    }

    fn send(&mut self, m: ServerMessage, now: Instant) {
        let bytes = m.encode(self.seq);
        self.seq = self.seq.wrapping_add(1);
        self.media.out.push_owned(bytes);
        self.media.last_output = now;
    }

    fn transport(&self) -> &'static str {
        if self.media.udp_to.is_some() {
            "udp"
        } else {
            "tcp"
        }
    }

    fn unexpected(&self, what: &str) -> Step {
        Step::close(format!(
            "unexpected {what} in state {:?} (station {})",
            self.phase,
            self.station.as_deref().unwrap_or("-")
        ))
    }

    fn handle(&mut self, msg: ClientMessage, now: Instant, stations: &dyn StationView) -> Step {
        debug!(peer = %self.peer, ?msg, "mms command");
        match msg {
            ClientMessage::Connect { subscriber } => {
                if self.phase != Phase::Greeting {
                    return self.unexpected("second Connect");
                }
                debug!(peer = %self.peer, %subscriber, "mms client connected");
                self.user_agent = Some(subscriber.chars().take(200).collect());
                self.send(ServerMessage::ConnectedEx, now);
                self.phase = Phase::Connected;
            }
            ClientMessage::FunnelInfo => {
                if self.phase == Phase::Greeting {
                    return self.unexpected("FunnelInfo");
                }
                let client_id = u32::from(self.peer.port()).max(1);
                self.send(ServerMessage::FunnelInfo { client_id }, now);
            }
            ClientMessage::ConnectFunnel { funnel, transport } => {
                if self.phase != Phase::Connected {
                    return self.unexpected("ConnectFunnel");
                }
                match transport {
                    Transport::Tcp => self.send(
                        ServerMessage::ConnectedFunnel {
                            play_incarnation: 0,
                        },
                        now,
                    ),
                    Transport::Udp { port } => {
                        if port == 0 || self.cfg.own_udp_ports.contains(&port) {
                            info!(peer = %self.peer, %funnel, port, "mms: UDP data port refused (0 or the server's own)");
                            self.send(
                                ServerMessage::DisconnectedFunnel {
                                    hr: hr::NOT_IMPLEMENTED,
                                    play_incarnation: 0,
                                },
                                now,
                            );
                            return Step::close(format!("MMSU data port {port} refused"));
                        }
                        if self.cfg.udp_port.is_none() {
                            info!(peer = %self.peer, %funnel, "mms: UDP data refused (no UDP data socket)");
                            self.send(
                                ServerMessage::DisconnectedFunnel {
                                    hr: hr::NOT_IMPLEMENTED,
                                    play_incarnation: 0,
                                },
                                now,
                            );
                            return Step::close("MMSU requested but no UDP data socket");
                        }
                        // Data goes to the address the TCP connection comes from, never to
                        // an address the client names (no reflection to third parties).
                        self.media.udp_to = Some(SocketAddr::new(self.peer.ip(), port));
                        self.send(
                            ServerMessage::ConnectedFunnel {
                                play_incarnation: 0,
                            },
                            now,
                        );
                    }
                }
            }
            ClientMessage::OpenFile {
                play_incarnation,
                path,
            } => {
                if self.phase != Phase::Connected {
                    return self.unexpected("OpenFile");
                }
                return self.open(play_incarnation, &path, now, stations);
            }
            ClientMessage::ReadBlock {
                play_incarnation, ..
            } => {
                if !matches!(self.phase, Phase::Open | Phase::Playing) {
                    return self.unexpected("ReadBlock");
                }
                self.send_header(play_incarnation, now);
            }
            ClientMessage::StreamSwitch { entries } => {
                let Some(h) = self.header.clone() else {
                    return self.unexpected("StreamSwitch");
                };
                let requests = entries.iter().filter_map(|e| {
                    let n = u8::try_from(e.stream).ok()?;
                    Some((n, Thinning::from_level(e.thinning)))
                });
                // MMS clients announce no bandwidth: an MBR group they name nothing of gets its
                // highest rendition.
                let choice = Choice::resolve(requests, None, &h.header);
                debug!(peer = %self.peer, entries = entries.len(), choice = ?choice, "mms stream selection");
                if let Some(feed) = self.feed.as_mut() {
                    // While streaming ([MS-MMSP] 3.2.5.10): a switch, answered with 0x21.
                    feed.switch(choice.clone());
                }
                self.choice = Some(choice);
                self.send(
                    ServerMessage::StreamSwitch {
                        play_incarnation: 0,
                    },
                    now,
                );
            }
            ClientMessage::StartPlaying {
                play_incarnation, ..
            } => {
                if !matches!(self.phase, Phase::Open | Phase::Playing) {
                    return self.unexpected("StartPlaying");
                }
                return self.start_playing(play_incarnation, now, stations);
            }
            ClientMessage::StopPlaying { play_incarnation } => {
                if !matches!(self.phase, Phase::Open | Phase::Playing) {
                    return self.unexpected("StopPlaying");
                }
                self.stop_feed();
                self.phase = Phase::Open;
                self.send(
                    ServerMessage::EndOfStream {
                        hr: hr::OK,
                        play_incarnation,
                    },
                    now,
                );
            }
            ClientMessage::CloseFile => return Step::ended_by_peer("client closed the file"),
            ClientMessage::Pong | ClientMessage::Logging => {}
            ClientMessage::Unsupported { command } => {
                return self.unexpected(&format!("command 0x{command:02x}"));
            }
        }
        Step::Continue
    }

    fn open(
        &mut self,
        play_incarnation: u32,
        path: &str,
        now: Instant,
        stations: &dyn StationView,
    ) -> Step {
        let name = path
            .trim_start_matches('/')
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        let refuse = |s: &mut Self, code: u32, why: String| {
            s.send(
                ServerMessage::OpenFile(OpenFileReport::error(code, play_incarnation)),
                now,
            );
            info!(peer = %s.peer, protocol = "mms", station = name, reason = %why, "mms open refused");
            Step::close(why)
        };
        if !stations.serves(name, Protocol::Mms) {
            return refuse(self, hr::PATH_NOT_FOUND, format!("no MMS station {name:?}"));
        }
        if !stations.may_watch(name, self.peer.ip()) {
            return refuse(
                self,
                hr::ACCESS_DENIED,
                format!("station {name} is closed to this address (access.watch)"),
            );
        }
        if !stations.has_room(name) {
            return refuse(
                self,
                hr::ACCESS_DENIED,
                format!("station {name} is full: it has its maximum of clients"),
            );
        }
        let Some(h) = stations.header(name) else {
            return refuse(
                self,
                hr::NOT_READY,
                format!("station {name} has no header yet"),
            );
        };
        let admission = crate::access::limits::Admission::new(self.user_agent.as_deref(), None);
        match stations.admit(name, &admission) {
            // MMS has no busy answer of its own: the OpenFile report fails with Access Denied,
            // as for a full station.
            Err(r) => {
                return refuse(
                    self,
                    hr::ACCESS_DENIED,
                    format!("refused by {}: {r}", r.rule()),
                )
            }
            Ok(grant) => {
                self.cfg.feed.fast_start_rate =
                    grant.fast_start_rate(self.cfg.feed.fast_start_rate);
                self.admitted = Some(admission.kind);
            }
        }
        let packet_size = h.header.packet_size();
        if packet_size as usize > MAX_DATA_PAYLOAD {
            return refuse(
                self,
                hr::NOT_IMPLEMENTED,
                format!("packet size {packet_size} does not fit an MMS Data packet"),
            );
        }
        let header_size = u32::try_from(h.bytes.len()).unwrap_or(u32::MAX);
        self.send(
            ServerMessage::OpenFile(OpenFileReport {
                hr: hr::OK,
                play_incarnation,
                open_file_id: 1,
                attributes: ATTR_BROADCAST,
                duration_s: 0.0,
                blocks: 0,
                packet_size,
                packet_count: 0,
                bit_rate: h.header.file.max_bitrate,
                header_size,
            }),
            now,
        );
        // One info line per join is "mms playing"; a client that opens and never plays still
        // gets the "mms session ended" line (packets=0).
        debug!(peer = %self.peer, protocol = "mms", station = name, transport = self.transport(), "mms station opened");
        self.station = Some(name.to_string());
        self.media.packet_size = packet_size as usize;
        self.header = Some(h);
        self.phase = Phase::Open;
        Step::Continue
    }

    /// ReadBlock: 0x11 first, then the header blob in fragments of at most one ASF packet.
    ///
    /// With UDP data the 0x11 is left out: only VLC speaks MMSU, it does not wait for 0x11,
    /// and since its header then arrives by UDP the stray 0x11 stays in its TCP buffer where
    /// its command reader (which polls for new bytes before parsing buffered ones) stalls on
    /// it when the 0x21 arrives behind it, until its 5 s timeouts run out.
    fn send_header(&mut self, play_incarnation: u32, now: Instant) {
        if self.media.udp_to.is_none() {
            self.send(ServerMessage::ReadBlock { play_incarnation }, now);
        }
        let Some(h) = self.header.clone() else {
            return;
        };
        let max = h.header.packet_size() as usize;
        for p in codec::header_packets(&h.bytes, max, play_incarnation as u8) {
            self.emit_data(p, now);
        }
    }

    fn start_playing(
        &mut self,
        play_incarnation: u32,
        now: Instant,
        stations: &dyn StationView,
    ) -> Step {
        self.media.incarnation = play_incarnation as u8;
        self.send(
            ServerMessage::StartedPlaying {
                play_incarnation,
                file_id: 1,
            },
            now,
        );
        if self.phase == Phase::Playing {
            // libmms re-issues StartPlaying with a new incarnation to seek: a live stream
            // just continues under the new incarnation.
            return Step::Continue;
        }
        let (Some(name), Some(h)) = (self.station.clone(), self.header.clone()) else {
            return self.unexpected("StartPlaying");
        };
        let backlog = stations.join_backlog(&name);
        info!(
            peer = %self.peer,
            protocol = "mms",
            station = %name,
            transport = self.transport(),
            incarnation = play_incarnation,
            backlog = backlog.len(),
            "mms playing"
        );
        let mut feed = Delivery::join(self.cfg.feed, Arc::clone(&h), backlog, now);
        let choice = self
            .choice
            .clone()
            .unwrap_or_else(|| Choice::resolve(std::iter::empty(), None, &h.header));
        feed.select(StreamSelection::new(choice, &h.header));
        feed.set_label(format!("{} mms", self.peer));
        self.feed = Some(feed);
        self.phase = Phase::Playing;
        self.ever_played = true;
        self.release(now)
    }

    fn stop_feed(&mut self) {
        if let Some(f) = self.feed.take() {
            let (skips, skipped) = f.skips();
            self.skips += skips;
            self.skipped += skipped;
            self.thin_steps += f.thin_steps();
        }
    }

    /// Skips and skipped packets so far, the running feed included.
    fn skip_counts(&self) -> (u64, u64) {
        let (a, b) = self.feed.as_ref().map_or((0, 0), Delivery::skips);
        (self.skips + a, self.skipped + b)
    }

    /// Ends playing with EndOfStream (0x1E, hr 0), which every client takes as a clean end.
    fn end_playing(&mut self, now: Instant) {
        if self.phase == Phase::Playing {
            self.stop_feed();
            let play_incarnation = u32::from(self.media.incarnation);
            self.send(
                ServerMessage::EndOfStream {
                    hr: hr::OK,
                    play_incarnation,
                },
                now,
            );
        }
    }

    /// Releases due fast-start packets and checks the client is keeping up.
    fn release(&mut self, now: Instant) -> Step {
        let Some(feed) = self.feed.as_mut() else {
            return Step::Continue;
        };
        let verdict = feed.release_to(&mut self.media, now);
        self.check(verdict)
    }

    fn check(&mut self, verdict: Verdict) -> Step {
        let Verdict::Drop(reason) = verdict else {
            return Step::Continue;
        };
        self.stop_feed();
        info!(peer = %self.peer, protocol = "mms", station = self.station.as_deref().unwrap_or("-"), %reason, "mms client dropped");
        Step::close(reason)
    }

    /// A Data packet (header fragment) over the negotiated transport.
    fn emit_data(&mut self, bytes: Vec<u8>, now: Instant) {
        self.media.last_output = now;
        match self.media.udp_to {
            Some(to) => {
                self.media
                    .datagrams
                    .push(Datagram::owned(UdpChannel::MmsData, to, bytes));
            }
            None => self.media.out.push_owned(bytes),
        }
    }
}

impl Framer for Media {
    /// One station packet to the client: filtered by the stream selection, framed as a Data
    /// packet with this client's LocationId and incarnation, re-padded to the packet size.
    fn frame(&mut self, p: &Arc<StationPacket>, now: Instant) {
        let size = self.packet_size;
        if size == 0 {
            return;
        }
        let len = p.bytes.len();
        if len > size {
            debug!(peer = %self.peer, len, size, "mms: packet larger than the packet size skipped");
            return;
        }
        let head = DataHead {
            location_id: self.location,
            incarnation: self.incarnation,
            af_flags: self.af_seq,
            packet_size: (DATA_HEAD_LEN + size) as u16,
        };
        self.location = self.location.wrapping_add(1);
        self.af_seq = self.af_seq.wrapping_add(1);
        self.packets_sent += 1;
        self.bytes_sent += (DATA_HEAD_LEN + size) as u64;
        self.last_output = now;
        let pad = size - len;
        if let Some(to) = self.udp_to {
            let body: Arc<[u8]> = Arc::clone(&p.bytes);
            self.datagrams.push(Datagram::split(
                UdpChannel::MmsData,
                to,
                head.encode().to_vec(),
                body,
                0..len,
                pad,
            ));
            return;
        }
        self.out.push_small(&head.encode());
        self.out.push_shared(p.bytes.clone());
        self.out.push_zeros(pad);
    }

    fn queue(&mut self) -> &mut OutQueue {
        &mut self.out
    }
}

impl Sink for MmsSession {
    fn on_header(&mut self, header: &Arc<StationHeader>, now: Instant) -> Step {
        let Some(mine) = self.header.as_ref() else {
            return Step::Continue;
        };
        if mine.generation == header.generation {
            return Step::Continue;
        }
        let change = match self.feed.as_mut() {
            // The old header's packets still held back go out first.
            Some(f) => f.header_to(header, &mut self.media, now),
            None => compare_headers(mine, header),
        };
        if change.continues() {
            // Same streams (typically the playlist looping): continue at the next clean point.
            self.header = Some(header.clone());
            return Step::Continue;
        }
        // Only libmms handles ReportStreamChange (0x20): end the stream cleanly instead.
        self.end_playing(now);
        Step::close("station changed to a header with other streams")
    }

    fn on_station_end(&mut self, now: Instant) -> Step {
        // The station stopped: what is queued is dropped and the client is told the stream
        // ended (0x1E), which every client takes as a clean end.
        self.media.out.drop_unstarted();
        self.end_playing(now);
        Step::close("station stopped")
    }

    fn on_packet(&mut self, packet: &Arc<StationPacket>, now: Instant) -> Step {
        let Some(feed) = self.feed.as_mut() else {
            return Step::Continue;
        };
        let verdict = feed.offer_to(packet, &mut self.media, now);
        if verdict == Verdict::Behind {
            debug!(peer = %self.peer, queued = self.media.out.queued_bytes(), "mms client behind: skipping to the next clean point");
        }
        self.check(verdict)
    }

    fn on_timeout(&mut self, now: Instant) -> Step {
        if self.phase != Phase::Playing {
            if !self.ever_played && now >= self.started + self.cfg.handshake_timeout {
                return Step::close(format!(
                    "handshake not completed within {:?}",
                    self.cfg.handshake_timeout
                ));
            }
            if self.ever_played && now >= self.last_input + self.cfg.idle_timeout {
                return Step::close(format!("idle for {:?}", self.cfg.idle_timeout));
            }
            return Step::Continue;
        }
        let step = self.release(now);
        if step != Step::Continue {
            return step;
        }
        if now >= self.media.last_output + self.cfg.ping_interval {
            // The station is silent: keep the client (VLC gives up after ~50 s of nothing).
            self.send(ServerMessage::Ping, now);
        }
        if now >= self.next_check {
            self.next_check = now + CHECK_INTERVAL;
        }
        Step::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Playing {
            return Some(if self.ever_played {
                self.last_input + self.cfg.idle_timeout
            } else {
                self.started + self.cfg.handshake_timeout
            });
        }
        let mut d = self
            .next_check
            .min(self.media.last_output + self.cfg.ping_interval);
        if let Some(f) = self.feed.as_ref().and_then(|f| f.deadline()) {
            d = d.min(f);
        }
        Some(d)
    }
}

impl Session for MmsSession {
    fn protocol(&self) -> &'static str {
        "mms"
    }

    fn info(&self) -> ClientInfo {
        let (skips, skipped) = self.skip_counts();
        ClientInfo {
            protocol: "mms",
            transport: self.transport(),
            station: self.station.clone(),
            user_agent: self.user_agent.clone(),
            playing: self.is_playing(),
            packets: self.media.packets_sent,
            bytes: self.media.bytes_sent,
            skips,
            skipped,
            client_id: None,
            thin_steps: self.thin_steps + self.feed.as_ref().map_or(0, Delivery::thin_steps),
        }
    }

    /// The client's MMSU port: what it sends there (resend requests, punch packets) is
    /// routed here and ignored, so the shared data socket is drained.
    fn admitted(&self) -> Option<crate::access::limits::Kind> {
        self.admitted
    }

    fn udp_peers(&self) -> &[SocketAddr] {
        self.media.udp_to.as_slice()
    }

    fn station(&self) -> Option<&str> {
        self.station.as_deref()
    }

    fn on_bytes(&mut self, input: &[u8], now: Instant, stations: &dyn StationView) -> Step {
        self.last_input = now;
        self.reader.push(input);
        loop {
            let msg = match self.reader.next_command() {
                Ok(Some(m)) => m,
                Ok(None) => return Step::Continue,
                Err(e) => {
                    info!(peer = %self.peer, protocol = "mms", error = %e, "mms: refused malformed input");
                    return Step::close(format!("malformed MMS input: {e}"));
                }
            };
            let decoded = match ClientMessage::decode(&msg) {
                Ok(d) => d,
                Err(e) => {
                    info!(peer = %self.peer, protocol = "mms", error = %e, "mms: refused malformed command");
                    return Step::close(format!("malformed MMS command: {e}"));
                }
            };
            let step = self.handle(decoded, now, stations);
            if step != Step::Continue {
                return step;
            }
        }
    }

    fn output(&mut self) -> &mut OutQueue {
        &mut self.media.out
    }

    fn take_datagrams(&mut self, out: &mut Vec<Datagram>) {
        out.append(&mut self.media.datagrams);
    }
}

impl Drop for MmsSession {
    fn drop(&mut self) {
        if let Some(station) = &self.station {
            let (skips, skipped) = self.skip_counts();
            info!(
                peer = %self.peer,
                protocol = "mms",
                station = %station,
                transport = self.transport(),
                packets = self.media.packets_sent,
                bytes = self.media.bytes_sent,
                skips,
                skipped,
                "mms session ended"
            );
        }
    }
}
