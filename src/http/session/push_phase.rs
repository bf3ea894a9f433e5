//! The HTTP session's push phase: a request [`crate::http::push::classify`] calls a push is
//! checked (the station takes pushes, `access.publish`, the station's pusher credentials, one
//! pusher at a time) and its body handed to an [`Ingest`] as it streams. Kept apart from the
//! player phases in `session.rs`: they share only the connection.

use std::time::Instant;

use tracing::{info, warn};

use super::{HttpSession, Phase};
use crate::http::conn::HttpConn;
use crate::http::push::body::Body;
use crate::http::push::framing::Framing;
use crate::http::push::ingest::{Ingest, IngestStep};
use crate::http::push::{self, PushRequest, INACTIVITY_TIMEOUT};
use crate::http::request::Request;
use crate::station::sink::{StationView, Step};

impl HttpSession {
    /// Answers a push request for station `name`.
    pub(super) fn push(
        &mut self,
        kind: PushRequest,
        request: &Request,
        name: &str,
        now: Instant,
        stations: &dyn StationView,
    ) -> Step {
        let Some(input) = stations.live_input(name) else {
            return self.push_refused(request, name, 405, "this station does not take pushes");
        };
        if !stations.may_publish(name, self.peer.ip()) {
            return self.push_refused(request, name, 403, "publishing closed to this address");
        }
        if let Some(p) = stations.push_protection(name) {
            match crate::http::auth::authorize(request, &p, self.nonce_key.as_deref(), now) {
                Ok((user, scheme)) => {
                    info!(station = %name, peer = %self.peer, %user, scheme, "push authorized")
                }
                Err(refused) => {
                    let (r, why) = *refused;
                    info!(station = %name, peer = %self.peer, status = r.status, reason = %why, "push refused: not authorized");
                    self.out.push_owned(r.to_bytes());
                    return Step::close(format!("{} for push to {name}: {why}", r.status));
                }
            }
        }
        let peer = self.peer.to_string();
        let cookie = push::push_id(request);
        let resumed = cookie.as_deref().and_then(|id| input.resume(id, &peer));
        let (id, push_id) = match (resumed, kind, cookie) {
            (Some(id), _, cookie) => (id, cookie),
            (None, PushRequest::Setup, _) => {
                let key = push::new_push_id(self.push_token);
                match input.claim(&peer, Some(key.clone())) {
                    Ok(id) => (id, Some(key)),
                    Err(busy) => return self.push_refused(request, name, 409, &busy.to_string()),
                }
            }
            // WMS creates a session for an unknown push-id (WMHTTP note <13>); FFmpeg sends none.
            (None, PushRequest::Start, cookie) => match input.claim(&peer, cookie.clone()) {
                Ok(id) => (id, cookie),
                Err(busy) => return self.push_refused(request, name, 409, &busy.to_string()),
            },
        };
        if kind == PushRequest::Setup {
            info!(station = %name, peer = %self.peer, user_agent = request.header("user-agent").unwrap_or("-"), "push setup");
            input.park(id, now + INACTIVITY_TIMEOUT);
            let mut r = push::answer(204, push_id.as_deref()).for_request(request);
            r.keep_alive = request.keep_alive();
            return self.answer(r, now);
        }
        let body = match request.header("transfer-encoding") {
            Some(te) if te.trim().eq_ignore_ascii_case("chunked") => Body::chunked(),
            Some(_) => {
                input.release(id, "unsupported transfer coding");
                return self.push_refused(
                    request,
                    name,
                    501,
                    "only chunked transfer coding is taken",
                );
            }
            None => match request
                .header("content-length")
                .map(|v| v.trim().parse::<u64>())
            {
                Some(Ok(n)) => Body::Length(n),
                Some(Err(_)) => {
                    input.release(id, "bad Content-Length");
                    return self.push_refused(request, name, 400, "bad Content-Length");
                }
                // HTTP/1.0 without a length: the body ends with the connection.
                None => Body::Length(u64::MAX),
            },
        };
        // A resumed encoder may go on with `$D`: the station's header gives the packet size.
        let packet_size = resumed
            .and(stations.header(name))
            .map(|h| h.header.packet_size() as usize);
        // A pushed header is held to the request limit (and the chunk's 65 531 bytes).
        let framing = Framing::resumed(self.limits.max_request_bytes, None, packet_size);
        if request
            .header("expect")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"))
        {
            self.out
                .push_owned(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
        }
        info!(
            station = %name,
            peer = %self.peer,
            user_agent = request.header("user-agent").unwrap_or("-"),
            wmhttp = push_id.is_some(),
            resumed = resumed.is_some(),
            "push started"
        );
        let ingest = Ingest::new(
            name,
            self.peer,
            input,
            id,
            push_id,
            body,
            framing,
            request.keep_alive(),
            now,
        );
        self.phase = Phase::Push(Box::new(ingest));
        let carry = std::mem::take(&mut self.carry);
        self.feed_push(&carry, now)
    }

    /// Feeds a push's body bytes.
    pub(super) fn feed_push(&mut self, bytes: &[u8], now: Instant) -> Step {
        let Phase::Push(ingest) = &mut self.phase else {
            return Step::Continue;
        };
        let step = ingest.on_bytes(bytes, now);
        self.after_push(step, now)
    }

    /// The push's Idle timeout.
    pub(super) fn push_timeout(&mut self, now: Instant) -> Step {
        let Phase::Push(ingest) = &mut self.phase else {
            return Step::Continue;
        };
        let step = ingest.on_timeout(now);
        self.after_push(step, now)
    }

    fn after_push(&mut self, step: IngestStep, now: Instant) -> Step {
        match step {
            IngestStep::Continue => Step::Continue,
            IngestStep::Done {
                response,
                close,
                leftover,
                why,
            } => {
                self.out.push_owned(response);
                if close {
                    return Step::close(why);
                }
                self.carry = leftover;
                self.phase = Phase::Http(Box::new(HttpConn::new(
                    self.limits.max_request_bytes,
                    self.limits.handshake_timeout,
                    now,
                )));
                Step::Continue
            }
        }
    }

    fn push_refused(&mut self, request: &Request, name: &str, status: u16, why: &str) -> Step {
        warn!(station = %name, peer = %self.peer, status, reason = why, "push refused");
        let r = push::refusal(status, why).for_request(request);
        self.out.push_owned(r.to_bytes());
        Step::close(format!("{status} for push to {}: {why}", request.path))
    }
}
