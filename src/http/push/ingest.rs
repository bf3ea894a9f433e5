//! One PushStart being received: the request's body bytes in (with `now`), the station's live
//! input fed, the response out when the body ends, fails or goes idle. Sans-I/O: the HTTP
//! session hands it bytes and asks for its deadline; it never touches a socket or a clock.
//!
//! The feeder's claim on the input ([`crate::station::live`]) ends with the push: at `$E`
//! (Reason 0), on an error, at the Idle timeout, or when the connection closes — except for a
//! [MS-WMHTTP] session (one with a `push-id`) whose connection dropped before its `$E`: its
//! claim is parked for [`super::IDLE_TIMEOUT`] so the encoder can resume with the same
//! push-id. Errors are logged once with the station and the peer; the station stays up (its
//! fallback plays) and nothing else is touched.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{info, warn};

use super::body::Body;
use super::framing::{Chunk, Framing};
use super::{answer, IDLE_TIMEOUT, INACTIVITY_TIMEOUT};
use crate::station::live::{FeederId, LiveInput};

/// What the HTTP session does after feeding the push.
#[derive(Debug, PartialEq, Eq)]
pub enum IngestStep {
    /// Keep reading.
    Continue,
    /// The push is over: write `response`, then close if `close` (else back to HTTP, with
    /// the `leftover` bytes that followed the body).
    Done {
        response: Vec<u8>,
        close: bool,
        leftover: Vec<u8>,
        why: String,
    },
}

/// Figures of one push, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    pub body_bytes: u64,
    pub headers: u64,
    pub packets: u64,
}

pub struct Ingest {
    station: String,
    peer: SocketAddr,
    input: LiveInput,
    id: FeederId,
    push_id: Option<String>,
    body: Body,
    framing: Framing,
    /// HTTP/1.1 keep-alive allowed after the response.
    keep_alive: bool,
    deadline: Instant,
    /// `$E` with Reason 0 seen: the encoder is done.
    ended: bool,
    finished: bool,
    pub counts: IngestCounts,
    scratch: Vec<u8>,
}

impl Ingest {
    /// A push from `peer` holding `id` on `input`, its body framed by `body`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        station: &str,
        peer: SocketAddr,
        input: LiveInput,
        id: FeederId,
        push_id: Option<String>,
        body: Body,
        framing: Framing,
        keep_alive: bool,
        now: Instant,
    ) -> Self {
        Ingest {
            station: station.to_string(),
            peer,
            input,
            id,
            push_id,
            body,
            framing,
            keep_alive,
            deadline: now + IDLE_TIMEOUT,
            ended: false,
            finished: false,
            counts: IngestCounts::default(),
            scratch: Vec::new(),
        }
    }

    /// When the Idle timeout runs out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The chunk parser's state, for a later resume.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// Feeds bytes the encoder sent at `now`.
    pub fn on_bytes(&mut self, input: &[u8], now: Instant) -> IngestStep {
        if self.finished {
            return IngestStep::Continue;
        }
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        let used = match self.body.decode(input, &mut body) {
            Ok(n) => n,
            Err(e) => return self.fail(400, &e.to_string()),
        };
        self.counts.body_bytes += body.len() as u64;
        let (input_ref, id, origin) = (&self.input, self.id, self.origin());
        let mut counts = self.counts;
        let mut lost_claim = false;
        let mut ended = self.ended;
        let mut activity = false;
        let r = self.framing.feed(&body, &mut |chunk| match chunk {
            Chunk::Header { header, data, .. } => {
                activity = true;
                counts.headers += 1;
                lost_claim |= !input_ref.header(id, header, data, origin.clone());
            }
            Chunk::Data(p) => {
                activity = true;
                counts.packets += 1;
                if !input_ref.packet(id, p) && !input_ref.holds(id) {
                    lost_claim = true;
                }
            }
            Chunk::End { more } => ended = !more,
        });
        self.counts = counts;
        self.ended = ended;
        self.scratch = body;
        if activity {
            self.deadline = now + IDLE_TIMEOUT;
        }
        if let Err(e) = r {
            return self.fail(400, &e.to_string());
        }
        if self.input.is_closed() {
            return self.finish(503, "the station stopped", true, Vec::new(), now);
        }
        if lost_claim {
            return self.finish(
                409,
                "another connection took over this push",
                true,
                Vec::new(),
                now,
            );
        }
        if self.body.done() {
            let leftover = input.get(used..).unwrap_or_default().to_vec();
            return self.finish(204, "push body complete", !self.keep_alive, leftover, now);
        }
        IngestStep::Continue
    }

    /// The Idle timeout ran out at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> IngestStep {
        if self.finished || now < self.deadline {
            return IngestStep::Continue;
        }
        self.fail(408, "no header or data chunk within the idle timeout")
    }

    /// The connection closed (or broke) at `now`.
    pub fn on_closed(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.push_id.is_some() && !self.ended {
            info!(station = %self.station, peer = %self.peer, "push connection dropped; the encoder may resume with its push-id");
            self.input.park(self.id, now + IDLE_TIMEOUT);
        } else {
            info!(station = %self.station, peer = %self.peer, packets = self.counts.packets, "push ended");
            self.input
                .release(self.id, "the encoder closed its connection");
        }
    }

    fn origin(&self) -> String {
        format!("push from {}", self.peer)
    }

    fn fail(&mut self, status: u16, why: &str) -> IngestStep {
        warn!(station = %self.station, peer = %self.peer, status, error = why, "push refused");
        self.input.release(self.id, why);
        self.finished = true;
        IngestStep::Done {
            response: super::refusal(status, why).to_bytes(),
            close: true,
            leftover: Vec::new(),
            why: format!("push refused: {why}"),
        }
    }

    fn finish(
        &mut self,
        status: u16,
        why: &str,
        close: bool,
        leftover: Vec<u8>,
        now: Instant,
    ) -> IngestStep {
        self.finished = true;
        if status >= 400 {
            warn!(station = %self.station, peer = %self.peer, status, reason = why, "push ended");
        }
        let keep = self.push_id.is_some() && !self.ended && status < 400;
        if keep {
            // A WMHTTP encoder may send its next PushStart (behind a proxy: every ~60 s).
            self.input.park(self.id, now + INACTIVITY_TIMEOUT);
        } else {
            self.input.release(self.id, why);
        }
        info!(station = %self.station, peer = %self.peer, packets = self.counts.packets, headers = self.counts.headers, reason = why, "push finished");
        let mut r = answer(status, self.push_id.as_deref());
        r.keep_alive = !close;
        IngestStep::Done {
            response: r.to_bytes(),
            close,
            leftover,
            why: why.to_string(),
        }
    }
}
