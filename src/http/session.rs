//! The HTTP listener's session on the [`Session`] contract. It starts in the HTTP phase: the
//! announcement routes (`/`, `/<station>.nsc`, `/<station>.asx`) are answered through
//! [`HttpConn`], which also closes connections that are slow to send a request (handshake
//! timeout) or idle on keep-alive. A request for a station path (`/<station>`) is handed over
//! to MMS over HTTP ([`super::mmsh`]) when the client speaks it, and otherwise becomes a plain
//! ASF stream ([`super::plain_stream`]); which clients are which: [`super::dialect`].
//!
//! MMS over HTTP:
//!
//! - Describe (and POST, and errors) are answered here; after a kept-alive answer the
//!   connection goes back to the HTTP phase with a fresh request deadline (WMP sends its Play
//!   on the same connection), with any bytes that followed the request;
//! - Play turns the session into an [`MmshStream`]: from then on the request deadline no longer
//!   applies; the stream's own deadlines (fast start, stall, station silence) do, and bytes the
//!   client sends are ignored.
//!
//! Plain HTTP (mpv, GStreamer, VLC `http://`): a GET turns the session into a
//! [`PlainStream`] with the same deadlines; a HEAD gets the response head and a close.
//! Both streams are the station's HTTP delivery (its `mmsh` protocol switch), so
//! [`Session::protocol`] says `mmsh` for both — a reload that turns HTTP delivery off ends
//! them alike; the logs tell them apart with `framing`.
//!
//! Each session has a `client-id` (`Pragma: client-id=<n>`) the shell hands it, unique within
//! the process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::client_log;
use super::conn::{ConnAction, HttpConn};
use super::dialect::{dialect, Dialect};
use super::mmsh::stream::{MmshStream, StreamConfig};
use super::mmsh::{self, MmshRequest};
use super::plain_stream::{self, PlainStream};
use super::request::Request;
use super::response::Response;
use crate::access::digest::NonceKey;
use crate::config::Limits;
use crate::ops::wmlog_client::ClientReport;
use crate::station::feed::FeedConfig;
use crate::station::sink::{
    ClientInfo, OutQueue, Protocol, SelectStream, Session, Sink, StationView, Step,
    PEER_CLOSED_CONNECTION,
};
use crate::station::{StationHeader, StationPacket};

/// The limits an HTTP session works with (from the server's `limits`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionLimits {
    /// Largest request head (and body).
    pub max_request_bytes: usize,
    /// Time to send a complete request; also the keep-alive idle time.
    pub handshake_timeout: Duration,
    /// The MMSH data stream's limits.
    pub stream: StreamConfig,
}

impl SessionLimits {
    /// From the server's limits: the stall timeout and the station-silence timeout are the
    /// idle timeout.
    pub fn from_limits(l: &Limits) -> Self {
        SessionLimits {
            max_request_bytes: l.request_max_bytes,
            handshake_timeout: l.handshake_timeout,
            stream: StreamConfig {
                feed: FeedConfig {
                    backlog_limit: l.client_backlog_bytes,
                    fast_start_rate: l.fast_start_rate,
                    stall_timeout: l.idle_timeout,
                },
                silence_timeout: l.idle_timeout,
            },
        }
    }
}

enum Phase {
    Http(Box<HttpConn>),
    Streaming(Box<MmshStream>),
    Plain(Box<PlainStream>),
    /// An encoder pushing to a live station ([`super::push`], `session/push_phase.rs`).
    Push(Box<super::push::ingest::Ingest>),
}

mod push_phase;
#[cfg(test)]
mod push_tests;

pub struct HttpSession {
    phase: Phase,
    out: OutQueue,
    limits: SessionLimits,
    peer: SocketAddr,
    client_id: u32,
    /// The player's User-Agent, from its last request.
    user_agent: Option<String>,
    /// Bytes that followed a request answered in the MMSH phase, for the next HTTP phase.
    carry: Vec<u8>,
    /// Logs the player sent on this connection (at most [`MAX_CLIENT_LOGS`]).
    client_logs: Vec<ClientReport>,
    /// The daemon's Digest nonce key ([`super::auth`]); None: protected stations refused.
    nonce_key: Option<Arc<NonceKey>>,
    /// What the client was admitted as under the limits, once it streams.
    admitted: Option<crate::access::limits::Kind>,
    /// Random bits for a push-id, should this connection be an encoder's PushSetup.
    push_token: u128,
    /// A SelectStream received here for another connection's stream, for the shell.
    select: Option<SelectStream>,
}

/// Most client logs one connection keeps (later ones are dropped).
const MAX_CLIENT_LOGS: usize = 16;

impl HttpSession {
    pub fn new(limits: SessionLimits, peer: SocketAddr, client_id: u32, now: Instant) -> Self {
        HttpSession {
            phase: Phase::Http(Box::new(HttpConn::new(
                limits.max_request_bytes,
                limits.handshake_timeout,
                now,
            ))),
            out: OutQueue::new(),
            limits,
            peer,
            client_id,
            user_agent: None,
            carry: Vec::new(),
            client_logs: Vec::new(),
            nonce_key: None,
            admitted: None,
            push_token: 0,
            select: None,
        }
    }

    /// The random bits this session makes a push-id of (drawn by the shell: a push-id must be
    /// unguessable, [MS-WMHTTP] §5.1).
    pub fn with_push_token(mut self, token: u128) -> Self {
        self.push_token = token;
        self
    }

    /// The same session checking credentials with the daemon's nonce `key`, for stations
    /// that require them.
    pub fn with_nonce_key(mut self, key: Arc<NonceKey>) -> Self {
        self.nonce_key = Some(key);
        self
    }

    /// The `client-id` this session announces.
    pub fn client_id(&self) -> u32 {
        self.client_id
    }

    /// The MMSH stream, once playing.
    pub fn stream(&self) -> Option<&MmshStream> {
        match &self.phase {
            Phase::Streaming(s) => Some(s),
            Phase::Http(_) | Phase::Plain(_) | Phase::Push(_) => None,
        }
    }

    /// The plain ASF stream, once playing.
    pub fn plain_stream(&self) -> Option<&PlainStream> {
        match &self.phase {
            Phase::Plain(s) => Some(s),
            Phase::Http(_) | Phase::Streaming(_) | Phase::Push(_) => None,
        }
    }

    /// Feeds bytes to the HTTP phase (ignored while streaming).
    fn feed_http(&mut self, input: &[u8], now: Instant, stations: &dyn StationView) -> Step {
        let Phase::Http(conn) = &mut self.phase else {
            return Step::Continue;
        };
        let catalog = super::peer_catalog::PeerCatalog {
            stations,
            ip: self.peer.ip(),
        };
        let action = conn.on_bytes(input, now, &catalog);
        self.apply(action, now, stations)
    }

    fn apply(&mut self, action: ConnAction, now: Instant, stations: &dyn StationView) -> Step {
        match action {
            ConnAction::NeedMore => Step::Continue,
            ConnAction::Respond { bytes, close } => {
                self.out.push_owned(bytes);
                if close {
                    Step::close("response sent")
                } else {
                    Step::Continue
                }
            }
            ConnAction::Handoff(request) => {
                if let Phase::Http(conn) = &mut self.phase {
                    let mut leftover = conn.take_leftover();
                    leftover.append(&mut self.carry);
                    self.carry = leftover;
                }
                self.handoff(&request, now, stations)
            }
            ConnAction::Close { reason } => Step::close(format!("{reason}")),
        }
    }

    /// Answers a request for a station path (MMS over HTTP), or for an operators' view.
    fn handoff(&mut self, request: &Request, now: Instant, stations: &dyn StationView) -> Step {
        if let Some(step) = self.ops_view(request, now, stations) {
            return step;
        }
        let name = request
            .safe_path()
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or_default()
            .to_string();
        if let Some(kind) = super::push::classify(request) {
            return self.push(kind, request, &name, now, stations);
        }
        if stations
            .catalog()
            .is_log_path(request.safe_path().unwrap_or_default())
        {
            if !stations.may_send_logs(self.peer.ip()) {
                return self.refuse(request, 403, "logging agent closed to this address");
            }
            let logged = client_log::agent(request);
            return self.logged(logged, request, now);
        }
        match super::auth::check(request, self.nonce_key.as_deref(), now, stations) {
            super::auth::Checked::Open => {}
            super::auth::Checked::Passed { file: false, .. } => {}
            super::auth::Checked::Passed { file: true, .. } => {
                return match super::announce::route_authorized(request, stations.catalog()) {
                    super::announce::Routed::Response(r) => {
                        self.answer(r.for_request(request), now)
                    }
                    super::announce::Routed::NotAnnouncement => {
                        self.refuse(request, 404, "not found")
                    }
                };
            }
            super::auth::Checked::Refused(r, why) => {
                info!(peer = %self.peer, path = %request.path, status = r.status, reason = %why, "http request refused: not authorized");
                self.out.push_owned(r.to_bytes());
                return Step::close(format!("{} for {}: {why}", r.status, request.path));
            }
        }
        if !stations.serves(&name, Protocol::Mmsh) {
            return self.refuse(request, 404, "station not served over HTTP");
        }
        if !stations.may_watch(&name, self.peer.ip()) {
            return self.refuse(request, 403, "station closed to this address");
        }
        if matches!(request.method.as_str(), "GET" | "HEAD") && dialect(request) == Dialect::Plain {
            return self.play_plain(request, &name, now, stations);
        }
        match mmsh::classify(request) {
            MmshRequest::Describe => {
                let Some(header) = stations.header(&name) else {
                    return self.refuse(request, 503, "station not ready");
                };
                debug!(station = %name, peer = %self.peer, client_id = self.client_id, "MMSH describe");
                let r = mmsh::describe_response(request, &header.bytes, self.client_id);
                self.answer(r, now)
            }
            MmshRequest::Post => {
                let logged = client_log::station_post(request, &name);
                self.logged(logged, request, now)
            }
            MmshRequest::SelectStream { client_id, entries } => {
                info!(station = %name, peer = %self.peer, client_id, entries = ?entries, "MMSH SelectStream");
                self.select = Some(SelectStream { client_id, entries });
                let r = mmsh::select_stream_response(request, self.client_id);
                self.answer(r, now)
            }
            MmshRequest::Unsupported(status, why) => self.refuse(request, status, why),
            MmshRequest::Play {
                switches,
                client_id,
            } => {
                let Some(header) = stations.header(&name) else {
                    return self.refuse(request, 503, "station not ready");
                };
                if !stations.has_room(&name) {
                    return self.refuse(request, 503, "station has its maximum of clients");
                }
                let config = match self.admit(request, &name, stations) {
                    Ok(c) => c,
                    Err(step) => return step,
                };
                self.out
                    .push_owned(mmsh::play_response_head(request, self.client_id));
                let bandwidth = request
                    .pragma("LinkBW")
                    .flatten()
                    .and_then(|v| crate::access::limits::announced_bandwidth(&v));
                let mut stream = MmshStream::start(
                    &name,
                    header,
                    stations.join_backlog(&name),
                    (switches, bandwidth),
                    config,
                    now,
                    &mut self.out,
                );
                info!(
                    station = %name,
                    peer = %self.peer,
                    protocol = "mmsh",
                    client_id = self.client_id,
                    sent_client_id = client_id.as_deref().unwrap_or("-"),
                    user_agent = request.header("user-agent").unwrap_or("-"),
                    link_bw = ?bandwidth,
                    selection = ?stream.selection().current,
                    "MMSH play started"
                );
                stream.set_label(format!("{} mmsh", self.peer));
                self.carry = Vec::new();
                self.user_agent = request.header("user-agent").map(clip_agent);
                self.phase = Phase::Streaming(Box::new(stream));
                Step::Continue
            }
        }
    }

    /// The status pages and metrics ([`crate::ops::web`]) rendered from the shell's snapshot;
    /// None when the path is not one of the views that are on.
    fn ops_view(
        &mut self,
        request: &Request,
        now: Instant,
        stations: &dyn StationView,
    ) -> Option<Step> {
        let snap = stations.snapshot()?;
        let route = crate::ops::web::route(request.safe_path()?, &snap.ops.web)?;
        let r = if matches!(request.method.as_str(), "GET" | "HEAD") {
            let page = crate::ops::web::page(&route, snap, &snap.ops.web);
            Response::new(page.status)
                .body(page.content_type, page.body)
                .header("Cache-Control", "no-cache")
        } else {
            Response::method_not_allowed("GET, HEAD")
        };
        Some(self.answer(r.for_request(request), now))
    }

    /// Starts a plain ASF stream (a GET from a client that does not speak MMSH); a HEAD gets
    /// the response head only.
    fn play_plain(
        &mut self,
        request: &Request,
        name: &str,
        now: Instant,
        stations: &dyn StationView,
    ) -> Step {
        let Some(header) = stations.header(name) else {
            return self.refuse(request, 503, "station not ready");
        };
        if request.is_head() {
            self.out.push_owned(plain_stream::response_head(request));
            return Step::close("response sent");
        }
        if !stations.has_room(name) {
            return self.refuse(request, 503, "station has its maximum of clients");
        }
        let config = match self.admit(request, name, stations) {
            Ok(c) => c,
            Err(step) => return step,
        };
        self.out.push_owned(plain_stream::response_head(request));
        let stream = PlainStream::start(
            name,
            header,
            stations.join_backlog(name),
            config,
            now,
            &mut self.out,
        );
        info!(
            station = %name,
            peer = %self.peer,
            protocol = "mmsh",
            framing = "plain",
            client_id = self.client_id,
            user_agent = request.header("user-agent").unwrap_or("-"),
            "plain ASF play started"
        );
        self.carry = Vec::new();
        self.user_agent = request.header("user-agent").map(clip_agent);
        self.phase = Phase::Plain(Box::new(stream));
        Step::Continue
    }

    /// Queues a response; a kept connection returns to the HTTP phase.
    fn answer(&mut self, r: Response, now: Instant) -> Step {
        self.out.push_owned(r.to_bytes());
        if r.closes() {
            return Step::close("response sent");
        }
        self.phase = Phase::Http(Box::new(HttpConn::new(
            self.limits.max_request_bytes,
            self.limits.handshake_timeout,
            now,
        )));
        Step::Continue
    }

    /// Keeps a client log and answers its request.
    fn logged(&mut self, logged: client_log::Logged, request: &Request, now: Instant) -> Step {
        if let Some(mut report) = logged.report {
            if self.client_logs.len() < MAX_CLIENT_LOGS {
                if report.record.get("cs-User-Agent").is_none() {
                    report.record.set(
                        "cs-User-Agent",
                        request
                            .header("user-agent")
                            .map(clip_agent)
                            .unwrap_or_default(),
                    );
                }
                self.client_logs.push(report);
            }
        }
        self.answer(logged.response, now)
    }

    /// Asks the limits whether the client may stream `name` (its User-Agent tells a
    /// distribution connection from a player; `Pragma: LinkBW=` is the bandwidth it
    /// announces). Admitted: the stream settings with the fast start capped as granted.
    /// Refused: `503` with `Retry-After`, and a line naming the rule.
    fn admit(
        &mut self,
        request: &Request,
        name: &str,
        stations: &dyn StationView,
    ) -> Result<StreamConfig, Step> {
        use crate::access::limits::{announced_bandwidth, Admission};
        let announced = request
            .pragma("LinkBW")
            .flatten()
            .and_then(|v| announced_bandwidth(&v));
        let admission = Admission::new(request.header("user-agent"), announced);
        match stations.admit(name, &admission) {
            Ok(grant) => {
                let mut config = self.limits.stream;
                config.feed.fast_start_rate = grant.fast_start_rate(config.feed.fast_start_rate);
                self.admitted = Some(admission.kind);
                Ok(config)
            }
            Err(r) => {
                info!(station = %name, peer = %self.peer, protocol = "mmsh", client = admission.kind.as_str(), rule = r.rule(), reason = %r, "refused by limits");
                Err(self.refuse(request, 503, &format!("refused by {}: {r}", r.rule())))
            }
        }
    }

    fn refuse(&mut self, request: &Request, status: u16, why: &str) -> Step {
        let r = mmsh::error_response(request, status, why);
        self.out.push_owned(r.to_bytes());
        Step::close(format!("{status} for {}: {why}", request.path))
    }
}

impl Sink for HttpSession {
    fn on_header(&mut self, header: &Arc<StationHeader>, now: Instant) -> Step {
        match &mut self.phase {
            Phase::Streaming(s) => s.on_header(header, &mut self.out, now),
            Phase::Plain(s) => s.on_header(header, &mut self.out, now),
            Phase::Http(_) | Phase::Push(_) => Step::Continue,
        }
    }

    fn on_packet(&mut self, packet: &Arc<StationPacket>, now: Instant) -> Step {
        match &mut self.phase {
            Phase::Streaming(s) => s.on_packet(packet, &mut self.out, now),
            Phase::Plain(s) => s.on_packet(packet, &mut self.out, now),
            Phase::Http(_) | Phase::Push(_) => Step::Continue,
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Step {
        match &mut self.phase {
            Phase::Streaming(s) => s.on_timeout(&mut self.out, now),
            Phase::Plain(s) => s.on_timeout(&mut self.out, now),
            Phase::Push(_) => self.push_timeout(now),
            Phase::Http(conn) => match conn.on_timeout(now) {
                Some(ConnAction::Close { reason }) => Step::close(format!("{reason}")),
                Some(_) | None => Step::Continue,
            },
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Streaming(s) => s.deadline(),
            Phase::Plain(s) => s.deadline(),
            Phase::Push(i) => Some(i.deadline()),
            Phase::Http(conn) => Some(conn.deadline()),
        }
    }

    fn on_station_end(&mut self, _now: Instant) -> Step {
        self.out.drop_unstarted();
        match &mut self.phase {
            Phase::Streaming(s) => s.end(&mut self.out),
            Phase::Plain(s) => s.end(),
            Phase::Http(_) | Phase::Push(_) => {}
        }
        Step::close("station stopped")
    }
}

impl Session for HttpSession {
    fn protocol(&self) -> &'static str {
        match self.phase {
            Phase::Http(_) => "http",
            Phase::Streaming(_) | Phase::Plain(_) => "mmsh",
            Phase::Push(_) => "push",
        }
    }

    fn station(&self) -> Option<&str> {
        match &self.phase {
            Phase::Streaming(s) => Some(s.station()),
            Phase::Plain(s) => Some(s.station()),
            Phase::Http(_) | Phase::Push(_) => None,
        }
    }

    fn on_bytes(&mut self, input: &[u8], now: Instant, stations: &dyn StationView) -> Step {
        let mut step = if matches!(self.phase, Phase::Push(_)) {
            self.feed_push(input, now)
        } else {
            self.feed_http(input, now, stations)
        };
        // Pipelined requests held back, and bytes that followed an MMSH answer, in order.
        while step == Step::Continue {
            let pending = matches!(&self.phase, Phase::Http(c) if c.has_pending());
            if pending {
                step = self.feed_http(&[], now, stations);
            } else if !self.carry.is_empty() && matches!(self.phase, Phase::Http(_)) {
                let carry = std::mem::take(&mut self.carry);
                step = self.feed_http(&carry, now, stations);
            } else {
                break;
            }
        }
        step
    }

    fn output(&mut self) -> &mut OutQueue {
        &mut self.out
    }

    fn on_peer_closed(&mut self, now: Instant) -> Step {
        if let Phase::Push(i) = &mut self.phase {
            i.on_closed(now);
            return Step::close("the encoder closed its connection");
        }
        Step::close(PEER_CLOSED_CONNECTION)
    }

    fn take_client_logs(&mut self, out: &mut Vec<ClientReport>) {
        out.append(&mut self.client_logs);
    }

    fn take_select_stream(&mut self) -> Option<SelectStream> {
        self.select.take()
    }

    fn select_stream(&mut self, request: &SelectStream, _now: Instant) -> bool {
        if request.client_id != self.client_id {
            return false;
        }
        let Phase::Streaming(s) = &mut self.phase else {
            return false;
        };
        let values: Vec<&str> = request.entries.iter().map(String::as_str).collect();
        s.switch(&mmsh::parse_stream_switches(&values));
        info!(peer = %self.peer, client_id = self.client_id, receives = ?s.selection().current, "MMSH stream switched");
        true
    }

    fn admitted(&self) -> Option<crate::access::limits::Kind> {
        self.station().and(self.admitted)
    }

    fn info(&self) -> ClientInfo {
        let (transport, packets, bytes, (skips, skipped)) = match &self.phase {
            Phase::Http(_) => ("-", 0, 0, (0, 0)),
            Phase::Push(i) => ("push", i.counts.packets, i.counts.body_bytes, (0, 0)),
            Phase::Streaming(s) => ("http", s.stats().packets, s.stats().bytes, s.skip_counts()),
            Phase::Plain(s) => ("http", s.stats().packets, s.stats().bytes, s.skip_counts()),
        };
        ClientInfo {
            protocol: self.protocol(),
            transport,
            station: self.station().map(str::to_string),
            user_agent: self.user_agent.clone(),
            playing: !matches!(self.phase, Phase::Http(_)),
            packets,
            bytes,
            skips,
            skipped,
            client_id: matches!(self.phase, Phase::Streaming(_)).then_some(self.client_id),
            thin_steps: self.stream().map_or(0, |s| {
                s.selection().stats.steps_down + s.selection().stats.steps_up
            }),
        }
    }
}

/// A client's User-Agent, at most 200 characters.
fn clip_agent(ua: &str) -> String {
    ua.chars().take(200).collect()
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        if let Phase::Push(i) = &mut self.phase {
            // Closed without the peer's FIN (an error, the daemon stopping): as a drop, at the
            // push's last activity.
            let last = i.deadline().checked_sub(super::push::IDLE_TIMEOUT);
            i.on_closed(last.unwrap_or_else(|| i.deadline()));
        }
        if let Phase::Streaming(s) = &self.phase {
            info!(
                station = %s.station(),
                peer = %self.peer,
                protocol = "mmsh",
                client_id = self.client_id,
                packets = s.stats().packets,
                bytes = s.stats().bytes,
                skips = s.skips(),
                header_changes = s.stats().header_changes,
                dropped_empty = s.stats().dropped_empty,
                "MMSH play ended"
            );
        }
        if let Phase::Plain(s) = &self.phase {
            info!(
                station = %s.station(),
                peer = %self.peer,
                protocol = "mmsh",
                framing = "plain",
                client_id = self.client_id,
                packets = s.stats().packets,
                bytes = s.stats().bytes,
                skips = s.skips(),
                header_changes = s.stats().header_changes,
                dropped_bad = s.stats().dropped_bad,
                "plain ASF play ended"
            );
        }
    }
}

#[cfg(test)]
#[path = "mmsh_session_tests.rs"]
mod tests;
