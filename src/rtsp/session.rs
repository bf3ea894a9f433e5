//! One RTSP connection on the [`Session`] contract: the RTSP/1.0 method state machine
//! (RFC 2326 §10) with the Windows Media extensions clients look for ([MS-RTSP];
//! rtsp-wmsp.md §1), feeding live station packets as x-asf-pf RTP over UDP or interleaved TCP.
//!
//! - **OPTIONS** answers with `Server: WMServer/…` (FFmpeg's and GStreamer's WMS switch) and
//!   `Public:` listing GET_PARAMETER (the keep-alive FFmpeg and VLC then use).
//! - **DESCRIBE** `rtsp://host/<station>` answers the SDP of `sdp.rs`, its header line from the
//!   cache the daemon's RTSP sessions share (`sdp_cache.rs`: one base64 encoding per header).
//! - **SETUP** `…/<station>/rtx | …/stream=<n>` takes the first acceptable transport
//!   (`transport.rs`), or answers **461** so FFmpeg and VLC retry over TCP at once (UDP refused
//!   by config or no server RTP sockets). Unknown tracks get 404, aggregate SETUP 459.
//! - **PLAY** joins the station through [`Delivery`] (the per-client rules every unicast
//!   protocol shares: newest clean point, fast start, slow-client skips, stall close) and answers `Range: npt=0.000-` and `RTP-Info` (seq and
//!   rtptime of the first packet). **PAUSE** stops delivery; PLAY again rejoins live.
//! - **GET_PARAMETER / SET_PARAMETER / OPTIONS** are keep-alives; **TEARDOWN** answers and closes.
//! - A session that hears no request, interleaved RTCP nor UDP RTCP for the session timeout is
//!   closed. Over UDP the client's receiver reports (RFC 3550 §6.4.2, parsed by [`rtcp`]) count
//!   as keep-alives like its RTSP GET_PARAMETERs; the shell routes them here by the client
//!   ports the session set up ([`Session::udp_peers`]). Their loss figures (fraction lost,
//!   cumulative lost, jitter) are kept for the end line, and a BYE (§6.6) ends delivery.
//! - When the session goes (TEARDOWN, dropped connection, timeout) it logs one
//!   "rtsp session ended" line: peer, station, transport, packets, bytes, skips and the
//!   figures of the last receiver report.
//!
//! **Stream selection and RTP sessions.** Each set-up ASF stream has a destination (client UDP
//! port pair, or interleaved channel pair). Streams with the same destination share one RTP
//! session (SSRC, sequence space) — this is exactly FFmpeg's WMS UDP mode, which sends the
//! second and later SETUPs with the client port the server echoed and parses every stream with
//! one RTP context. Each RTP session carries the station's ASF packets reduced to its own
//! streams (`asf::rewrite::select_streams`; packets with none of them are not sent), and
//! streams not set up are not sent at all. GStreamer clients are described the aggregate
//! layout instead (`sdp.rs`): one section, one RTP session with every stream. The per-stream
//! packets come from the station's split ([`StationPacket::only_stream`], made once per packet
//! for all clients); a packet that needs no fragmenting goes out over TCP as a shared buffer,
//! and over UDP as a slice of one, never copied per client.
//!
//! **Timestamps.** ASF times are continuous across playlist entries (the station shifts them,
//! `asf::retime`). RTP time is 1 kHz media time: the ASF send times from a random per-session
//! base. RTCP sender
//! reports go every few seconds on every RTP session, with an NTP timestamp counted from the
//! session's start (the core reads no wall clock; receivers need it only to relate streams).
//!
//! **Header changes.** When the station's header changes to one with the same packet size and
//! the same audio/video streams (a looping playlist), delivery continues from the next clean
//! point. Any other change closes the session: the client's SDP no longer describes the stream,
//! and a reconnect gets the new one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use rtsp_types::headers;
use rtsp_types::{Method, Request, Url, Version};
use tracing::{debug, info, warn};

use crate::asf::rewrite::{select_streams, Filtered};
use crate::asf::Packet;
use crate::config::ServerConfig;
use crate::station::delivery::{
    compare_headers, Choice, Delivery, Framer, StreamSelection, Verdict,
};
use crate::station::feed::FeedConfig;
use crate::station::sink::{
    ClientInfo, Datagram, OutQueue, Protocol, Session, Sink, StationView, Step, UdpChannel,
    UdpPorts, PEER_CLOSED_CONNECTION,
};
use crate::station::{StationHeader, StationPacket};

use super::auth::authorize_request;
use super::message::{header, Incoming, ReadError, Reader, Reply, PUBLIC};
use super::rtcp::{self, ReportBlock};
use super::rtp::{self, SenderInfo};
use super::sdp::{self, Layout, Track};
use super::sdp_cache::{SdpCache, SharedSdpCache};
use super::transport::{self, Dest};
use crate::access::digest::NonceKey;

/// How often RTCP sender reports go out on each RTP session.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// CNAME of every RTCP report.
const CNAME: &str = "asfcast";
/// NTP seconds of the session start in sender reports (2020-01-01; only differences matter).
const NTP_BASE_SECS: u64 = 3_786_825_600;

/// Settings of RTSP sessions (from the server file).
#[derive(Debug, Clone, PartialEq)]
pub struct RtspConfig {
    /// Offer RTP over UDP; when false a UDP SETUP gets 461.
    pub allow_udp: bool,
    /// Largest RTP packet, RTP header included.
    pub mtu: usize,
    /// Largest request (head and body).
    pub request_max_bytes: usize,
    /// Time to send the first complete request.
    pub handshake_timeout: Duration,
    /// Silence after which a session is closed (also announced as `Session: …;timeout=`).
    pub session_timeout: Duration,
    /// Join, fast start and slow-client policy.
    pub feed: FeedConfig,
}

impl RtspConfig {
    pub fn from_server(server: &ServerConfig) -> Self {
        let l = &server.limits;
        RtspConfig {
            allow_udp: server.rtsp.udp,
            mtu: server.rtsp.mtu,
            request_max_bytes: l.request_max_bytes,
            handshake_timeout: l.handshake_timeout,
            session_timeout: l.idle_timeout,
            feed: FeedConfig {
                backlog_limit: l.client_backlog_bytes,
                fast_start_rate: l.fast_start_rate,
                stall_timeout: l.idle_timeout,
            },
        }
    }
}

/// A stream the client set up.
#[derive(Debug, Clone)]
struct SetUp {
    track: Track,
    dest: Dest,
    /// Streams this section carried before a stream switch replaced them: still in its RTP
    /// session, since a replaced rendition flows until its replacement starts (the client's
    /// selection decides which payloads pass).
    replaced: Vec<u8>,
}

/// One RTP session: the set-up ASF streams that share a destination.
#[derive(Debug, Clone)]
struct RtpSession {
    dest: Dest,
    streams: Vec<u8>,
    ssrc: u32,
    seq: u16,
    packets: u32,
    octets: u32,
}

/// Maps ASF send times to the 1 kHz RTP clock.
#[derive(Debug, Clone)]
struct MediaClock {
    base: u32,
    last: Option<(u32, u32, Instant)>, // (rtp ts, send time, when)
    /// The timestamp promised in RTP-Info for the next packet.
    declared: Option<u32>,
}

impl MediaClock {
    /// The RTP time at `now` (for RTP-Info and sender reports).
    fn at(&self, now: Instant) -> u32 {
        match self.last {
            Some((ts, _, when)) => {
                let ms = now.saturating_duration_since(when).as_millis();
                ts.wrapping_add(u32::try_from(ms).unwrap_or(u32::MAX))
            }
            None => self.base,
        }
    }

    fn declare(&mut self, now: Instant) -> u32 {
        let v = self.at(now);
        self.declared = Some(v);
        v
    }

    fn stamp(&mut self, send_time: u32, now: Instant) -> u32 {
        let ts = match (self.declared.take(), self.last) {
            (Some(d), _) => d,
            (None, Some((ts, prev, _))) => {
                let delta = send_time.wrapping_sub(prev);
                ts.wrapping_add(if delta <= 60_000 { delta } else { 0 })
            }
            (None, None) => self.base,
        };
        self.last = Some((ts, send_time, now));
        ts
    }
}

/// `rtsp://host[:port]/<station>[/<control>]` → (station, control, base URL of the station).
fn split_url(url: &Url) -> Option<(String, Option<String>, String)> {
    let mut segs = url.path_segments()?.filter(|s| !s.is_empty());
    let station = segs.next()?.to_string();
    let control = segs.next().map(str::to_string);
    if segs.next().is_some() {
        return None;
    }
    let host = url.host()?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let base = format!("{}://{host}{port}/{station}", url.scheme());
    Some((station, control, base))
}

/// The data of one ASF packet to send: the station's shared buffer or a rewritten copy (made
/// once per RTP session and shared by its fragments and datagrams).
enum Data<'a> {
    Shared(&'a Arc<[u8]>),
    Owned(Arc<[u8]>),
}

impl Data<'_> {
    /// The buffer, shared: the station's or this session's rewrite of it.
    fn arc(&self) -> &Arc<[u8]> {
        match self {
            Data::Shared(a) => a,
            Data::Owned(v) => v,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.arc()
    }
}

/// The RTSP session of one connection.
pub struct RtspSession {
    cfg: RtspConfig,
    peer: SocketAddr,
    server_ports: Option<(u16, u16)>,
    /// Every UDP port of the server (RTP, RTCP, MMS data): never a client port.
    own_udp_ports: Vec<u16>,
    reader: Reader,
    station: Option<String>,
    header: Option<Arc<StationHeader>>,
    base: Option<String>,
    session_id: Option<String>,
    /// Where session ids, SSRCs and first sequence numbers come from: seeded by the caller
    /// (from the OS in the daemon, fixed in tests, so a session can be replayed).
    rng: StdRng,
    seed: u64,
    setups: Vec<SetUp>,
    /// Streams the client thinned (SSEntry with the same old and new stream).
    thinned: Vec<(u8, crate::station::delivery::Thinning)>,
    playing: bool,
    feed: Option<Delivery>,
    media: RtpOut,
    created: Instant,
    last_heard: Option<Instant>,
    next_report: Option<Instant>,
    warned_header_size: bool,
    /// The player's User-Agent, from its first request.
    user_agent: Option<String>,
    /// The bandwidth the player announced (`Bandwidth:`), from its latest request with one.
    announced_bps: Option<u64>,
    /// What the client was admitted as under the limits, from its first PLAY on.
    admitted: Option<crate::access::limits::Kind>,
    /// Anti-amplification: UDP sends are capped until a datagram comes from the client.
    udp_gate: crate::access::amplification::ReturnGate,
    /// The client UDP addresses of the set-up streams (RTP and RTCP ports), for routing.
    udp_peers: Vec<SocketAddr>,
    stats: EndStats,
    /// The daemon's Digest nonce key ([`crate::access`]); None: protected stations refused.
    nonce_key: Option<Arc<NonceKey>>,
    /// The DESCRIBE answers' header lines, shared by every session of the daemon.
    sdp_cache: SharedSdpCache,
}

/// What the end-of-session line reports.
#[derive(Debug, Default)]
struct EndStats {
    /// Logs the player sent (SET_PARAMETER, [`super::client_log`]), at most 16.
    client_logs: Vec<crate::ops::wmlog_client::ClientReport>,
    /// Delivery started at least once (a session that never played logs no end line).
    played: bool,
    /// Skips and skipped packets of feeds already stopped (PAUSE, BYE).
    skips: u64,
    skipped: u64,
    thin_steps: u64,
    /// Report blocks about our sources, and the last one.
    receiver_reports: u64,
    last_report: Option<ReportBlock>,
    /// RTCP datagrams that did not parse.
    bad_rtcp: u64,
    /// How the session ended, when the session itself knows.
    end: &'static str,
}

/// Everything the session sends: RTSP replies and interleaved frames on its TCP output, RTP
/// and RTCP datagrams, and the RTP framing of station packets per RTP session (the
/// [`Framer`] the station's per-client rules feed).
struct RtpOut {
    peer: SocketAddr,
    mtu: usize,
    out: OutQueue,
    datagrams: Vec<Datagram>,
    rtp: Vec<RtpSession>,
    clock: MediaClock,
    /// RTP packets and their bytes (RTP header included) sent, over UDP or TCP.
    packets: u64,
    bytes: u64,
}

impl RtspSession {
    pub fn new(
        cfg: RtspConfig,
        peer: SocketAddr,
        udp: UdpPorts,
        mut rng: StdRng,
        now: Instant,
    ) -> Self {
        let seed: u64 = rng.random();
        let mtu = cfg.mtu;
        RtspSession {
            reader: Reader::new(cfg.request_max_bytes),
            cfg,
            peer,
            server_ports: udp.rtp.zip(udp.rtcp),
            own_udp_ports: udp.all(),
            media: RtpOut {
                peer,
                mtu,
                out: OutQueue::new(),
                datagrams: Vec::new(),
                rtp: Vec::new(),
                clock: MediaClock {
                    base: (seed >> 32) as u32,
                    last: None,
                    declared: None,
                },
                packets: 0,
                bytes: 0,
            },
            station: None,
            header: None,
            base: None,
            session_id: None,
            rng,
            seed,
            setups: Vec::new(),
            thinned: Vec::new(),
            playing: false,
            feed: None,
            created: now,
            last_heard: None,
            next_report: None,
            warned_header_size: false,
            user_agent: None,
            announced_bps: None,
            admitted: None,
            udp_gate: Default::default(),
            udp_peers: Vec::new(),
            stats: EndStats {
                end: "connection closed",
                ..EndStats::default()
            },
            nonce_key: None,
            sdp_cache: SdpCache::shared(),
        }
    }

    /// The same session checking Digest credentials with the daemon's nonce `key` (its
    /// secret from the shell's generator), for stations that require them.
    pub fn with_nonce_key(mut self, key: Arc<NonceKey>) -> Self {
        self.nonce_key = Some(key);
        self
    }

    /// The same session describing stations with the header lines of `cache` (the daemon's
    /// one cache, so a header is encoded once for all its clients).
    pub fn with_sdp_cache(mut self, cache: SharedSdpCache) -> Self {
        self.sdp_cache = cache;
        self
    }

    /// Stops delivery, keeping the feed's skip counts for the end line.
    fn stop_feed(&mut self) {
        if let Some(f) = self.feed.take() {
            let (skips, skipped) = f.skips();
            self.stats.skips += skips;
            self.stats.skipped += skipped;
            self.stats.thin_steps += f.thin_steps();
        }
    }

    /// "udp", "tcp" or "udp+tcp": the lower transports of the RTP sessions.
    fn transport(&self) -> &'static str {
        let udp = self
            .media
            .rtp
            .iter()
            .any(|g| matches!(g.dest, Dest::Udp { .. }));
        let tcp = self
            .media
            .rtp
            .iter()
            .any(|g| matches!(g.dest, Dest::Tcp { .. }));
        match (udp, tcp) {
            (true, true) => "udp+tcp",
            (true, false) => "udp",
            (false, true) => "tcp",
            (false, false) => "none",
        }
    }

    /// Recomputes the client addresses the shell routes to this session.
    fn update_udp_peers(&mut self) {
        let mut peers = Vec::new();
        for s in &self.setups {
            if let Dest::Udp { rtp, rtcp } = s.dest {
                for port in [rtp, rtcp] {
                    let a = SocketAddr::new(self.peer.ip(), port);
                    if !peers.contains(&a) {
                        peers.push(a);
                    }
                }
            }
        }
        self.udp_peers = peers;
    }

    /// A compound RTCP packet from the client (UDP or interleaved): proof of life, loss
    /// figures, and BYE.
    fn on_rtcp(&mut self, bytes: &[u8], now: Instant) -> Step {
        let c = match rtcp::parse(bytes) {
            Ok(c) => c,
            Err(e) => {
                self.stats.bad_rtcp += 1;
                debug!(peer = %self.peer, error = %e, "client RTCP ignored");
                return Step::Continue;
            }
        };
        if c.reports > 0 {
            self.last_heard = Some(now);
        }
        for b in c.blocks {
            if self.media.rtp.iter().any(|g| g.ssrc == b.ssrc) {
                self.stats.receiver_reports += 1;
                self.stats.last_report = Some(b);
            } else {
                debug!(peer = %self.peer, ssrc = b.ssrc, "receiver report about an unknown source");
            }
        }
        if c.bye && self.playing {
            info!(peer = %self.peer, station = self.station.as_deref().unwrap_or(""), "rtsp client sent RTCP BYE; delivery ended");
            self.playing = false;
            self.stop_feed();
            self.next_report = None;
            self.stats.end = "rtcp bye";
        }
        Step::Continue
    }

    fn idle_deadline(&self) -> Instant {
        match self.last_heard {
            None => self.created + self.cfg.handshake_timeout,
            Some(t) => t + self.cfg.session_timeout,
        }
    }

    fn session_header(&self) -> Option<String> {
        self.session_id
            .as_ref()
            .map(|id| format!("{id};timeout={}", self.cfg.session_timeout.as_secs().max(1)))
    }

    fn reply(&mut self, r: Reply, cseq: Option<&str>, with_session: bool) {
        let session = if with_session {
            self.session_header()
        } else {
            None
        };
        debug!(peer = %self.peer, status = r.status(), "rtsp reply");
        self.media
            .out
            .push_owned(r.to_bytes(cseq, session.as_deref()));
    }

    fn read_error(&mut self, e: ReadError) -> Step {
        let r = match e {
            ReadError::TooLarge { .. } => Reply::new(413).reason("Request Too Large"),
            ReadError::Malformed { .. } => Reply::new(400),
        };
        self.reply(r, None, false);
        Step::close(format!("rtsp: {e}"))
    }

    fn on_request(
        &mut self,
        req: Request<Vec<u8>>,
        now: Instant,
        stations: &dyn StationView,
    ) -> Step {
        self.last_heard = Some(now);
        if self.user_agent.is_none() {
            self.user_agent = header(&req, &headers::USER_AGENT).map(|ua| clip(ua, 200));
        }
        if let Some(bw) = header(&req, &headers::BANDWIDTH) {
            self.announced_bps = crate::access::limits::announced_bandwidth(bw);
        }
        let method = req.method().clone();
        debug!(peer = %self.peer, method = ?method, uri = ?req.request_uri().map(super::auth::redacted), "rtsp request");
        let Some(cseq) = header(&req, &headers::CSEQ).map(|c| c.trim().to_string()) else {
            self.reply(Reply::new(400).reason("Missing CSeq"), None, false);
            return Step::Continue;
        };
        let cseq = Some(cseq.as_str());
        if req.version() != Version::V1_0 {
            self.reply(Reply::new(505), cseq, false);
            return Step::Continue;
        }
        if let Some(req_opts) = header(&req, &headers::REQUIRE) {
            let r = Reply::new(551).header(headers::UNSUPPORTED, req_opts.to_string());
            self.reply(r, cseq, false);
            return Step::Continue;
        }
        // A Session header must name this connection's session.
        let session_ok = match header(&req, &headers::SESSION) {
            None => true,
            Some(v) => {
                let id = v.split(';').next().unwrap_or_default().trim();
                self.session_id.as_deref() == Some(id)
            }
        };
        if !session_ok && !matches!(method, Method::Options) {
            self.reply(Reply::new(454), cseq, false);
            return Step::Continue;
        }
        if matches!(method, Method::Describe | Method::Setup | Method::Play) {
            let played = self.station.as_deref();
            if let Err(r) =
                authorize_request(&req, played, self.nonce_key.as_deref(), now, stations)
            {
                info!(peer = %self.peer, method = ?method, status = r.status(), "rtsp request refused: not authorized");
                self.reply(r, cseq, false);
                return Step::Continue;
            }
        }
        match method {
            Method::Options => {
                let r = Reply::new(200).header(headers::PUBLIC, PUBLIC);
                self.reply(r, cseq, session_ok);
                Step::Continue
            }
            Method::Describe => {
                let r = self.describe(&req, stations);
                self.reply(r, cseq, false);
                Step::Continue
            }
            Method::Setup => {
                let r = self.setup(&req, stations);
                let with_session = r.status() == 200;
                self.reply(r, cseq, with_session);
                Step::Continue
            }
            Method::Play => self.play(cseq, now, stations),
            Method::Pause => {
                let r = if self.session_id.is_none() {
                    Reply::new(454)
                } else {
                    if self.playing {
                        info!(peer = %self.peer, station = self.station.as_deref().unwrap_or(""), "rtsp pause");
                    }
                    self.playing = false;
                    self.stop_feed();
                    self.next_report = None;
                    Reply::new(200)
                };
                let with_session = r.status() == 200;
                self.reply(r, cseq, with_session);
                Step::Continue
            }
            Method::SetParameter
                if header(&req, &headers::CONTENT_TYPE).is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-wms-streamswitch")
                }) =>
            {
                let r = self.stream_switch(req.body());
                self.reply(r, cseq, true);
                Step::Continue
            }
            Method::SetParameter => {
                use super::client_log::{set_parameter, SetParameter};
                let content_type = header(&req, &headers::CONTENT_TYPE);
                let r = match set_parameter(content_type, req.body()) {
                    SetParameter::NotALog => Reply::new(200),
                    SetParameter::Log(report) => {
                        if self.stats.client_logs.len() < 16 {
                            self.stats.client_logs.push(*report);
                        }
                        Reply::new(200)
                    }
                    SetParameter::Refused(e) => {
                        warn!(peer = %self.peer, error = %e, "client log refused");
                        Reply::new(e.status())
                    }
                };
                self.reply(r, cseq, true);
                Step::Continue
            }
            Method::GetParameter => {
                self.reply(Reply::new(200), cseq, true);
                Step::Continue
            }
            Method::Teardown => {
                self.reply(Reply::new(200), cseq, true);
                self.playing = false;
                self.stats.end = "teardown";
                Step::ended_by_peer("rtsp teardown")
            }
            Method::Announce | Method::Record | Method::Redirect | Method::PlayNotify => {
                let r = Reply::new(405).header(headers::ALLOW, PUBLIC);
                self.reply(r, cseq, false);
                Step::Continue
            }
            Method::Extension(_) => {
                self.reply(Reply::new(501), cseq, false);
                Step::Continue
            }
        }
    }

    /// Resolves the station of a request URL, checking it may be served on this connection.
    fn station_of(
        &mut self,
        req: &Request<Vec<u8>>,
        stations: &dyn StationView,
    ) -> Result<(String, Option<String>, String), Reply> {
        let Some((station, control, base)) = req.request_uri().and_then(split_url) else {
            return Err(Reply::new(404).reason("No Such Station"));
        };
        if !stations.serves(&station, Protocol::Rtsp) {
            return Err(Reply::new(404).reason("No Such Station"));
        }
        if !stations.may_watch(&station, self.peer.ip()) {
            return Err(Reply::new(403));
        }
        if self.session_id.is_some() && self.station.as_deref() != Some(station.as_str()) {
            // One station per session.
            return Err(Reply::new(455));
        }
        Ok((station, control, base))
    }

    fn describe(&mut self, req: &Request<Vec<u8>>, stations: &dyn StationView) -> Reply {
        let (station, control, base) = match self.station_of(req, stations) {
            Ok(x) => x,
            Err(r) => return r,
        };
        if control.is_some() {
            return Reply::new(404).reason("No Such Station");
        }
        let Some(h) = stations.header(&station) else {
            return Reply::new(503).reason("Station Not Started");
        };
        let layout = sdp::layout_for(header(req, &headers::USER_AGENT));
        let pgmpu = self.sdp_cache.borrow_mut().pgmpu(&h);
        let d = sdp::describe_with(&pgmpu, &h, &base, &station, self.seed >> 1, layout);
        if layout != Layout::PerStream {
            debug!(peer = %self.peer, ?layout, "rtsp describe layout");
        }
        if !d.fits_ffmpeg && !self.warned_header_size {
            self.warned_header_size = true;
            warn!(station = %station, bytes = h.bytes.len(), "ASF header too large for FFmpeg's SDP line buffer; FFmpeg clients will fail");
        }
        self.station = Some(station);
        self.header = Some(h);
        self.base = Some(base);
        Reply::new(200)
            .header(headers::CONTENT_BASE, d.content_base)
            .header(headers::CACHE_CONTROL, "no-cache")
            .body("application/sdp", d.sdp.into_bytes())
    }

    fn setup(&mut self, req: &Request<Vec<u8>>, stations: &dyn StationView) -> Reply {
        if self.playing {
            return Reply::new(455);
        }
        let (station, control, base) = match self.station_of(req, stations) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let Some(control) = control else {
            return Reply::new(459);
        };
        if self.station.as_deref() != Some(station.as_str()) || self.header.is_none() {
            // SETUP without DESCRIBE (or after describing another station).
            let Some(h) = stations.header(&station) else {
                return Reply::new(503).reason("Station Not Started");
            };
            self.station = Some(station);
            self.header = Some(h);
            self.base = Some(base);
        }
        let Some(h) = self.header.clone() else {
            return Reply::new(503).reason("Station Not Started");
        };
        let Some(track) = sdp::find_track(&h, &control) else {
            return Reply::new(404).reason("Stream Not Found");
        };
        let Some(value) = header(req, &headers::TRANSPORT) else {
            return Reply::new(400).reason("Missing Transport");
        };
        let offers = match transport::parse(value) {
            Ok(o) => o,
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "bad Transport");
                return Reply::new(400).reason("Bad Transport");
            }
        };
        let others: Vec<Dest> = self
            .setups
            .iter()
            .filter(|s| s.track.control != track.control)
            .map(|s| s.dest)
            .collect();
        let taken = |c: u8| {
            others
                .iter()
                .any(|d| matches!(d, Dest::Tcp { rtp, rtcp } if *rtp == c || *rtcp == c))
        };
        let free = (0..=252u8).step_by(2).find(|c| !taken(*c) && !taken(c + 1));
        let allow_udp = self.cfg.allow_udp && self.server_ports.is_some();
        let Some(chosen) = transport::choose(
            &offers,
            allow_udp,
            self.server_ports,
            &self.own_udp_ports,
            free,
            taken,
        ) else {
            debug!(peer = %self.peer, transport = value, allow_udp, "no acceptable transport: 461");
            return Reply::new(461);
        };
        if self.session_id.is_none() {
            self.session_id = Some(format!("{:016X}", self.rng.random::<u64>()));
        }
        self.setups.retain(|s| s.track.control != track.control);
        self.setups.push(SetUp {
            replaced: Vec::new(),
            track,
            dest: chosen.dest,
        });
        self.regroup();
        self.update_udp_peers();
        let mut reply = chosen.reply;
        if let Some(g) = self.media.rtp.iter().find(|g| g.dest == chosen.dest) {
            reply.push_str(&format!(";ssrc={:08X}", g.ssrc));
        }
        Reply::new(200).header(headers::TRANSPORT, reply)
    }

    /// Rebuilds the RTP sessions from the set-up streams, keeping existing SSRCs and sequences.
    fn regroup(&mut self) {
        let Some(header) = self.header.clone() else {
            self.media.rtp.clear();
            return;
        };
        let mut groups: Vec<RtpSession> = Vec::new();
        for s in &self.setups {
            let mut streams = sdp::track_streams(&header, s.track.kind);
            for &n in &s.replaced {
                if !streams.contains(&n) {
                    streams.push(n);
                }
            }
            if streams.is_empty() {
                continue;
            }
            if let Some(g) = groups.iter_mut().find(|g| g.dest == s.dest) {
                for n in streams {
                    if !g.streams.contains(&n) {
                        g.streams.push(n);
                    }
                }
                continue;
            }
            let g = match self.media.rtp.iter().find(|g| g.dest == s.dest) {
                Some(old) => RtpSession {
                    streams,
                    ..old.clone()
                },
                None => {
                    let r: u64 = self.rng.random();
                    RtpSession {
                        dest: s.dest,
                        streams,
                        ssrc: r as u32,
                        seq: (r >> 32) as u16 & 0x7FFF,
                        packets: 0,
                        octets: 0,
                    }
                }
            };
            groups.push(g);
        }
        self.media.rtp = groups;
    }

    /// A SelectStream (SET_PARAMETER `application/x-wms-streamswitch`, [`super::streamswitch`]):
    /// a set-up stream replaced by another (in the same RTP session), thinned, or turned off.
    /// Streams not set up, unknown streams and bodies that do not parse are answered 400 with
    /// a log line; adding a stream needs a SETUP.
    fn stream_switch(&mut self, body: &[u8]) -> Reply {
        use super::streamswitch::parse;
        use crate::station::delivery::Thinning;
        let Some(header) = self.header.clone() else {
            return Reply::new(455);
        };
        let entries = match parse(body) {
            Ok(e) => e,
            Err(e) => {
                info!(peer = %self.peer, error = %e, "rtsp stream switch refused");
                return Reply::new(400);
            }
        };
        for e in &entries {
            let known = |n: Option<u8>| n.map_or(true, |n| header.header.stream(n).is_some());
            if !known(e.old) || !known(e.new) {
                info!(peer = %self.peer, entry = ?e, "rtsp stream switch names a stream the station does not have");
                return Reply::new(400);
            }
            let carried = |n: u8, setups: &[SetUp]| {
                setups
                    .iter()
                    .position(|s| sdp::track_streams(&header, s.track.kind).contains(&n))
            };
            match (e.old, e.new) {
                (Some(old), Some(new)) if old == new => {
                    if carried(old, &self.setups).is_none() {
                        info!(peer = %self.peer, stream = old, "rtsp thinning for a stream not set up ignored");
                        continue;
                    }
                    self.thinned.retain(|(n, _)| *n != old);
                    if e.level != Thinning::All {
                        self.thinned.push((old, e.level));
                    }
                }
                (Some(old), Some(new)) => {
                    let Some(i) = carried(old, &self.setups) else {
                        info!(peer = %self.peer, stream = old, "rtsp switch from a stream not set up ignored");
                        continue;
                    };
                    let Some(track) = sdp::find_track(&header, &format!("stream={new}")) else {
                        return Reply::new(400);
                    };
                    let s = &mut self.setups[i];
                    if !s.replaced.contains(&old) && s.replaced.len() < 8 {
                        s.replaced.push(old);
                    }
                    s.replaced.retain(|&n| n != new);
                    s.track = track;
                    self.thinned.retain(|(n, _)| *n != old && *n != new);
                    if e.level != Thinning::All {
                        self.thinned.push((new, e.level));
                    }
                }
                (Some(old), None) => {
                    if let Some(i) = carried(old, &self.setups) {
                        if self.setups.len() > 1 {
                            self.setups.remove(i);
                        }
                    }
                }
                (None, _) => {
                    info!(peer = %self.peer, entry = ?e, "rtsp switch adding a stream ignored (needs a SETUP)");
                }
            }
        }
        self.regroup();
        if let (Some(choice), Some(feed)) = (self.setup_choice(), self.feed.as_mut()) {
            feed.switch(choice);
        }
        Reply::new(200)
    }

    /// What the client receives: the streams it set up (each rendition of an MBR station is a
    /// section of its own, so a client chooses by SETUP).
    fn setup_choice(&self) -> Option<Choice> {
        let header = self.header.as_ref()?;
        let set_up: Vec<u8> = self
            .media
            .rtp
            .iter()
            .flat_map(|g| g.streams.iter().copied())
            .collect();
        if set_up.is_empty() {
            return None;
        }
        let current: Vec<u8> = self
            .setups
            .iter()
            .flat_map(|s| sdp::track_streams(header, s.track.kind))
            .collect();
        let set_up: Vec<u8> = set_up.into_iter().filter(|n| current.contains(n)).collect();
        Some(Choice {
            removed: header
                .header
                .streams
                .iter()
                .map(|s| s.number)
                .filter(|n| {
                    !set_up.contains(n)
                        || self
                            .thinned
                            .iter()
                            .any(|(m, l)| m == n && *l == crate::station::delivery::Thinning::Off)
                })
                .collect(),
            key_frames_only: self
                .thinned
                .iter()
                .filter(|(_, l)| *l == crate::station::delivery::Thinning::KeyFrames)
                .map(|(n, _)| *n)
                .collect(),
        })
    }

    fn play(&mut self, cseq: Option<&str>, now: Instant, stations: &dyn StationView) -> Step {
        let (Some(station), Some(base), true) = (
            self.station.clone(),
            self.base.clone(),
            self.session_id.is_some() && !self.setups.is_empty(),
        ) else {
            self.reply(Reply::new(455), cseq, false);
            return Step::Continue;
        };
        if self.admitted.is_none() {
            if let Err(reply) = self.admit(&station, stations) {
                self.reply(reply, cseq, true);
                return Step::Continue;
            }
        }
        let rtptime = self.media.clock.declare(now);
        let info: Vec<String> = self
            .setups
            .iter()
            .filter_map(|s| {
                let g = self.media.rtp.iter().find(|g| g.dest == s.dest)?;
                Some(format!(
                    "url={base}/{};seq={};rtptime={rtptime}",
                    s.track.control, g.seq
                ))
            })
            .collect();
        let mut r = Reply::new(200).header(headers::RANGE, "npt=0.000-");
        if !info.is_empty() {
            r = r.header(headers::RTP_INFO, info.join(","));
        }
        self.reply(r, cseq, true);
        if !self.playing {
            self.playing = true;
            self.stats.played = true;
            let header = self.header.clone().or_else(|| stations.header(&station));
            let choice = self.setup_choice();
            let label = format!("{} rtsp", self.peer);
            self.feed = header.map(|h| {
                let mut d = Delivery::join(
                    self.cfg.feed,
                    Arc::clone(&h),
                    stations.join_backlog(&station),
                    now,
                );
                if let Some(c) = choice {
                    d.select(StreamSelection::new(c, &h.header));
                }
                d.set_label(label);
                d
            });
            self.next_report = Some(now + Duration::from_secs(1));
            let transports: Vec<&str> = self
                .media
                .rtp
                .iter()
                .map(|g| match g.dest {
                    Dest::Udp { .. } => "udp",
                    Dest::Tcp { .. } => "tcp",
                })
                .collect();
            let streams: Vec<u8> = self
                .media
                .rtp
                .iter()
                .flat_map(|g| g.streams.clone())
                .collect();
            info!(peer = %self.peer, station = %station, transport = ?transports, streams = ?streams, "rtsp play");
        }
        self.pump(now)
    }

    /// Asks the limits whether the client may play `station` (first PLAY only). Refused:
    /// `453 Not Enough Bandwidth` for a bandwidth rule, `503` with `Retry-After` for a count,
    /// and a line naming the rule.
    fn admit(&mut self, station: &str, stations: &dyn StationView) -> Result<(), Reply> {
        use crate::access::limits::Admission;
        let admission = Admission::new(self.user_agent.as_deref(), self.announced_bps);
        match stations.admit(station, &admission) {
            Ok(grant) => {
                self.cfg.feed.fast_start_rate =
                    grant.fast_start_rate(self.cfg.feed.fast_start_rate);
                self.admitted = Some(admission.kind);
                Ok(())
            }
            Err(r) => {
                info!(peer = %self.peer, station = %station, protocol = "rtsp", client = admission.kind.as_str(), rule = r.rule(), reason = %r, "refused by limits");
                Err(if r.is_bandwidth() {
                    Reply::new(453)
                } else {
                    Reply::new(503).header(headers::RETRY_AFTER, "30")
                })
            }
        }
    }

    /// Releases due fast-start packets and sends them; closes a stalled client.
    fn pump(&mut self, now: Instant) -> Step {
        let Some(feed) = self.feed.as_mut() else {
            return Step::Continue;
        };
        let verdict = feed.release_to(&mut self.media, now);
        self.check_feed(verdict)
    }

    fn check_feed(&mut self, verdict: Verdict) -> Step {
        let Verdict::Drop(reason) = verdict else {
            return Step::Continue;
        };
        self.stop_feed();
        self.stats.end = "stalled";
        Step::close(format!("rtsp client stalled: {reason}"))
    }

    fn send_reports(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.created);
        let secs = NTP_BASE_SECS + elapsed.as_secs();
        let frac = (u64::from(elapsed.subsec_nanos()) << 32) / 1_000_000_000;
        let ntp = (secs << 32) | frac;
        let ts = self.media.clock.at(now);
        for g in &self.media.rtp {
            let sr = rtp::sender_report(
                &SenderInfo {
                    ssrc: g.ssrc,
                    ntp,
                    rtp_timestamp: ts,
                    packets: g.packets,
                    octets: g.octets,
                },
                CNAME,
            );
            match g.dest {
                Dest::Udp { rtcp, .. } => self.media.datagrams.push(Datagram::owned(
                    UdpChannel::Rtcp,
                    SocketAddr::new(self.peer.ip(), rtcp),
                    sr,
                )),
                Dest::Tcp { rtcp, .. } => {
                    if let Some(prefix) = rtp::interleaved_prefix(rtcp, sr.len()) {
                        let mut b = prefix.to_vec();
                        b.extend_from_slice(&sr);
                        self.media.out.push_owned(b);
                    }
                }
            }
        }
    }

    fn on_interleaved(&mut self, channel: u8, len: usize, now: Instant) {
        let known = self.setups.iter().any(
            |s| matches!(s.dest, Dest::Tcp { rtp, rtcp } if rtp == channel || rtcp == channel),
        );
        if known {
            // RTCP receiver reports: proof of life; their contents are not used.
            self.last_heard = Some(now);
        } else {
            debug!(peer = %self.peer, channel, len, "interleaved frame on an unknown channel ignored");
        }
    }
}

/// Packetizes one ASF packet for one RTP session and queues it (UDP datagrams or interleaved
/// frames). Returns the RTP packets and bytes queued.
#[allow(clippy::too_many_arguments)]
fn emit(
    g: Option<&mut RtpSession>,
    out: &mut OutQueue,
    datagrams: &mut Vec<Datagram>,
    peer: SocketAddr,
    mtu: usize,
    data: &Data<'_>,
    key: bool,
    ts: u32,
) -> (u64, u64) {
    let Some(g) = g else {
        return (0, 0);
    };
    let bytes = data.bytes();
    let frags = match rtp::fragments(bytes.len(), key, mtu) {
        Ok(f) => f,
        Err(e) => {
            debug!(%peer, error = %e, "packet not sent");
            return (0, 0);
        }
    };
    let mut sent = (0u64, 0u64);
    let whole = frags.len() == 1;
    for f in frags {
        let Some(piece) = bytes.get(f.start..f.end) else {
            continue;
        };
        let seq = g.seq;
        g.seq = g.seq.wrapping_add(1);
        g.packets = g.packets.wrapping_add(1);
        g.octets = g.octets.wrapping_add((rtp::PF_HEADER + piece.len()) as u32);
        let head = rtp::rtp_header(f.last, seq, ts, g.ssrc);
        let size = rtp::RTP_HEADER + rtp::PF_HEADER + piece.len();
        match g.dest {
            Dest::Udp { rtp: port, .. } => {
                let mut b = Vec::with_capacity(rtp::RTP_HEADER + rtp::PF_HEADER);
                b.extend_from_slice(&head);
                b.extend_from_slice(&f.pf_header);
                datagrams.push(Datagram::split(
                    UdpChannel::Rtp,
                    SocketAddr::new(peer.ip(), port),
                    b,
                    Arc::clone(data.arc()),
                    f.start..f.end,
                    0,
                ));
            }
            Dest::Tcp { rtp: ch, .. } => {
                let Some(prefix) = rtp::interleaved_prefix(ch, size) else {
                    continue;
                };
                // Prefix, RTP header, payload-format header: inline, not allocated; then the
                // packet or its fragment, shared with every other session, never copied.
                let mut b = [0u8; 4 + rtp::RTP_HEADER + rtp::PF_HEADER];
                b[..4].copy_from_slice(&prefix);
                b[4..4 + rtp::RTP_HEADER].copy_from_slice(&head);
                b[4 + rtp::RTP_HEADER..].copy_from_slice(&f.pf_header);
                out.push_small(&b);
                if whole {
                    out.push_shared(Arc::clone(data.arc()));
                } else {
                    out.push_piece(data.arc(), f.start..f.end);
                }
            }
        }
        sent.0 += 1;
        sent.1 += size as u64;
    }
    sent
}

impl Framer for RtpOut {
    fn frame(&mut self, p: &Arc<StationPacket>, now: Instant) {
        let ts = self.clock.stamp(p.send_time, now);
        // The station's shared per-stream split answers the usual cases (one stream per
        // session, or every stream of the packet); only a session with some but not all of a
        // packet's streams parses and rewrites it.
        let mut parsed: Option<Option<Packet<'_>>> = None;
        for gi in 0..self.rtp.len() {
            let Some(g) = self.rtp.get(gi) else {
                continue;
            };
            let parts = p.parts();
            let mine = || parts.iter().filter(|part| g.streams.contains(&part.stream));
            let (data, key) = if let [only] = g.streams[..] {
                match p.only_stream(only) {
                    Some(part) => (Data::Shared(&part.bytes), part.key),
                    None => continue,
                }
            } else if mine().count() == parts.len() && !parts.is_empty() {
                // Every stream of the packet is wanted (FFmpeg's shared UDP session, GStreamer's
                // aggregate): the station buffer itself.
                (Data::Shared(&p.bytes), mine().any(|part| part.key))
            } else if mine().next().is_none() && !parts.is_empty() {
                continue;
            } else {
                let pkt = parsed.get_or_insert_with(|| match Packet::parse(&p.bytes) {
                    Ok(x) => Some(x),
                    Err(e) => {
                        debug!(peer = %self.peer, error = %e, "unparsable station packet skipped");
                        None
                    }
                });
                let Some(pkt) = pkt.as_ref() else {
                    return;
                };
                let data = match select_streams(pkt, &g.streams) {
                    Filtered::Unchanged => Data::Shared(&p.bytes),
                    Filtered::Dropped => continue,
                    Filtered::Rewritten(v) => Data::Owned(v.into()),
                };
                let key = pkt
                    .payloads
                    .iter()
                    .any(|pl| g.streams.contains(&pl.stream) && pl.starts_key_frame());
                (data, key)
            };
            let (packets, bytes) = emit(
                self.rtp.get_mut(gi),
                &mut self.out,
                &mut self.datagrams,
                self.peer,
                self.mtu,
                &data,
                key,
                ts,
            );
            self.packets += packets;
            self.bytes += bytes;
        }
    }

    fn queue(&mut self) -> &mut OutQueue {
        &mut self.out
    }
}

impl Sink for RtspSession {
    fn on_header(&mut self, header: &Arc<StationHeader>, now: Instant) -> Step {
        let Some(old) = &self.header else {
            return Step::Continue;
        };
        let change = match self.feed.as_mut() {
            // The old header's packets still held back go out first.
            Some(f) => f.header_to(header, &mut self.media, now),
            None => compare_headers(old, header),
        };
        if change.continues() {
            self.header = Some(header.clone());
            return Step::Continue;
        }
        Step::close("station header changed (new stream layout); RTSP clients must reconnect")
    }

    fn on_packet(&mut self, packet: &Arc<StationPacket>, now: Instant) -> Step {
        if !self.playing {
            return Step::Continue;
        }
        let Some(feed) = self.feed.as_mut() else {
            return Step::Continue;
        };
        let verdict = feed.offer_to(packet, &mut self.media, now);
        self.check_feed(verdict)
    }

    fn on_timeout(&mut self, now: Instant) -> Step {
        if now >= self.idle_deadline() {
            let what = if self.last_heard.is_none() {
                "no request"
            } else {
                "no request or keep-alive"
            };
            let after = if self.last_heard.is_none() {
                self.cfg.handshake_timeout
            } else {
                self.cfg.session_timeout
            };
            self.stats.end = "timeout";
            return Step::close(format!("rtsp session timed out: {what} for {after:?}"));
        }
        if !self.playing {
            return Step::Continue;
        }
        if self.next_report.is_some_and(|t| t <= now) {
            self.send_reports(now);
            self.next_report = Some(now + RTCP_INTERVAL);
        }
        self.pump(now)
    }

    fn deadline(&self) -> Option<Instant> {
        let mut d = self.idle_deadline();
        if self.playing {
            for t in [
                self.next_report,
                self.feed.as_ref().and_then(|f| f.deadline()),
            ]
            .into_iter()
            .flatten()
            {
                d = d.min(t);
            }
        }
        Some(d)
    }
}

impl Session for RtspSession {
    fn protocol(&self) -> &'static str {
        "rtsp"
    }

    fn take_client_logs(&mut self, out: &mut Vec<crate::ops::wmlog_client::ClientReport>) {
        out.append(&mut self.stats.client_logs);
    }

    fn info(&self) -> ClientInfo {
        let (skips, skipped) = self.feed.as_ref().map_or((0, 0), Delivery::skips);
        ClientInfo {
            protocol: "rtsp",
            transport: if self.media.rtp.is_empty() {
                "-"
            } else {
                self.transport()
            },
            station: self.station.clone(),
            user_agent: self.user_agent.clone(),
            playing: self.playing,
            packets: self.media.packets,
            bytes: self.media.bytes,
            skips: self.stats.skips + skips,
            skipped: self.stats.skipped + skipped,
            client_id: None,
            thin_steps: self.stats.thin_steps + self.feed.as_ref().map_or(0, Delivery::thin_steps),
        }
    }

    fn station(&self) -> Option<&str> {
        self.station.as_deref()
    }

    fn on_bytes(&mut self, input: &[u8], now: Instant, stations: &dyn StationView) -> Step {
        let pushed = self.reader.push(input);
        loop {
            match self.reader.next_message() {
                Ok(Some(Incoming::Request(req))) => {
                    let step = self.on_request(*req, now, stations);
                    if step != Step::Continue {
                        return step;
                    }
                }
                Ok(Some(Incoming::Interleaved { channel, len })) => {
                    self.on_interleaved(channel, len, now)
                }
                Ok(Some(Incoming::Response)) => {}
                Ok(None) => break,
                Err(e) => return self.read_error(e),
            }
        }
        match pushed {
            Ok(()) => Step::Continue,
            Err(e) => self.read_error(e),
        }
    }

    fn output(&mut self) -> &mut OutQueue {
        &mut self.media.out
    }

    fn take_datagrams(&mut self, out: &mut Vec<Datagram>) {
        let before = self.udp_gate.dropped();
        let gate = &mut self.udp_gate;
        out.extend(
            self.media
                .datagrams
                .drain(..)
                .filter(|d| gate.pass(d.len())),
        );
        if before == 0 && self.udp_gate.dropped() > 0 {
            info!(peer = %self.peer, "nothing heard from the client's UDP ports yet: RTP over UDP held back until it sends (anti-amplification)");
        }
    }

    fn admitted(&self) -> Option<crate::access::limits::Kind> {
        self.admitted
    }

    fn udp_peers(&self) -> &[SocketAddr] {
        &self.udp_peers
    }

    fn on_datagram(
        &mut self,
        via: UdpChannel,
        from: SocketAddr,
        bytes: &[u8],
        now: Instant,
    ) -> Step {
        if !self.udp_gate.is_verified() {
            debug!(peer = %self.peer, %from, "client UDP port verified");
            self.udp_gate.heard();
        }
        match via {
            UdpChannel::Rtcp => self.on_rtcp(bytes, now),
            // NAT punch packets to the RTP socket (FFmpeg sends one per stream) carry nothing.
            UdpChannel::Rtp | UdpChannel::MmsData => {
                debug!(peer = %self.peer, %from, len = bytes.len(), "datagram to the RTP socket ignored");
                Step::Continue
            }
        }
    }

    fn on_peer_closed(&mut self, _now: Instant) -> Step {
        if self.stats.end == "connection closed" {
            self.stats.end = "peer closed";
        }
        Step::close(PEER_CLOSED_CONNECTION)
    }
}

/// An optional figure in a log line: the value, or `none`.
struct Figure<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Figure<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("none"),
        }
    }
}

impl Drop for RtspSession {
    fn drop(&mut self) {
        if !self.stats.played {
            return;
        }
        let (skips, skipped) = self.feed.as_ref().map_or((0, 0), Delivery::skips);
        let st = &self.stats;
        let rr = st.last_report;
        info!(
            peer = %self.peer,
            protocol = "rtsp",
            station = self.station.as_deref().unwrap_or(""),
            transport = self.transport(),
            end = st.end,
            packets = self.media.packets,
            bytes = self.media.bytes,
            skips = st.skips + skips,
            skipped = st.skipped + skipped,
            receiver_reports = st.receiver_reports,
            fraction_lost = %Figure(rr.map(|r| format!("{:.3}", f64::from(r.fraction_lost) / 256.0))),
            cumulative_lost = %Figure(rr.map(|r| r.cumulative_lost)),
            // The RTP clock is 1 kHz: jitter units are milliseconds.
            jitter_ms = %Figure(rr.map(|r| r.jitter)),
            bad_rtcp = st.bad_rtcp,
            "rtsp session ended"
        );
    }
}

/// At most `max` bytes of a client-supplied text, cut at a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
