//! The HTTP listener's session on the [`Session`] contract: it answers the announcement routes
//! (`/`, `/<station>.nsc`, `/<station>.asx`) through [`HttpConn`], and closes connections that
//! are slow to send a request (handshake timeout) or idle on keep-alive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{ConnAction, HttpConn};
use super::response::Response;
use crate::net::session::{OutQueue, Session, StationView, Step};
use crate::station::{StationHeader, StationPacket};

pub struct HttpSession {
    conn: HttpConn,
    out: OutQueue,
}

impl HttpSession {
    pub fn new(max_request_bytes: usize, handshake_timeout: Duration, now: Instant) -> Self {
        HttpSession {
            conn: HttpConn::new(max_request_bytes, handshake_timeout, now),
            out: OutQueue::new(),
        }
    }

    fn apply(&mut self, action: ConnAction) -> Step {
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
                // A GET of a station path: MMS over HTTP, served by the MMSH session.
                let r = Response::text(404, "no such station over HTTP").for_request(&request);
                self.out.push_owned(r.until_close().to_bytes());
                Step::close(format!("no HTTP route for {}", request.path))
            }
            ConnAction::Close { reason } => Step::close(format!("{reason:?}")),
        }
    }
}

impl Session for HttpSession {
    fn protocol(&self) -> &'static str {
        "http"
    }

    fn station(&self) -> Option<&str> {
        None
    }

    fn on_bytes(&mut self, input: &[u8], now: Instant, stations: &dyn StationView) -> Step {
        let action = self.conn.on_bytes(input, now, stations.catalog());
        let mut step = self.apply(action);
        // Pipelined requests the connection still holds are answered in order.
        while step == Step::Continue && self.conn.has_pending() {
            let action = self.conn.on_bytes(&[], now, stations.catalog());
            step = self.apply(action);
        }
        step
    }

    fn on_header(&mut self, _header: &Arc<StationHeader>, _now: Instant) -> Step {
        Step::Continue
    }

    fn on_packet(&mut self, _packet: &Arc<StationPacket>, _now: Instant) -> Step {
        Step::Continue
    }

    fn on_timeout(&mut self, now: Instant) -> Step {
        match self.conn.on_timeout(now) {
            Some(a) => self.apply(a),
            None => Step::Continue,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.conn.deadline())
    }

    fn output(&mut self) -> &mut OutQueue {
        &mut self.out
    }
}
