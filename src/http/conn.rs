//! One HTTP connection as a sans-I/O state machine the shell drives.
//!
//! Inputs: the bytes read from the socket with `now` ([`HttpConn::on_bytes`]) and the passing
//! of the deadline ([`HttpConn::on_timeout`]). Outputs: a [`ConnAction`]: bytes to write (and
//! whether to close after them), nothing yet, a request to hand to another handler (MMSH), or
//! close now. No sockets, no clock.
//!
//! Timers: one deadline, [`HttpConn::deadline`]. It is set when the connection opens and again
//! after each response on a kept connection, and is *not* moved by arriving bytes: a request
//! must be complete (head and body) within the timeout of its start, so a client trickling one
//! byte at a time (slowloris) is closed when the timeout runs out, as is an idle kept
//! connection.
//!
//! Keep-alive and pipelining (RFC 9112 §9.3): requests that arrive together are answered in
//! order in one [`ConnAction::Respond`]; answering stops at the first response that closes.
//! A request the announcement routes do not take ends the HTTP phase: it is returned as
//! [`ConnAction::Handoff`] (after the responses before it, if any; [`HttpConn::has_pending`]
//! then says a call to `on_bytes(&[], ..)` will return it). Bytes after a handed-off request
//! are kept for the new owner ([`HttpConn::take_leftover`]).

use std::time::{Duration, Instant};

use super::announce::{route, AnnouncementCatalog, Routed};
use super::request::{Request, RequestReader};
use super::response::Response;

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnAction {
    /// Write `bytes`; then close the connection if `close`, else keep reading.
    Respond {
        /// Responses to write, in order.
        bytes: Vec<u8>,
        /// Close after writing.
        close: bool,
    },
    /// Nothing to write; read more.
    NeedMore,
    /// Give this request (and [`HttpConn::take_leftover`]) to another handler (MMSH).
    Handoff(Request),
    /// Close now without writing.
    Close {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a connection is closed without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// A request was started but not completed within the timeout (slowloris defence).
    #[error("request not complete within the timeout")]
    RequestTimeout,
    /// A kept-alive connection sent nothing within the timeout.
    #[error("idle keep-alive connection")]
    IdleTimeout,
    /// The connection already ended (closed after a response, or handed off).
    #[error("connection already finished")]
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Finished,
}

/// Per-connection state; see the module doc.
#[derive(Debug)]
pub struct HttpConn {
    reader: RequestReader,
    timeout: Duration,
    deadline: Instant,
    state: State,
    /// A request to hand off after the responses already returned.
    handoff: Option<Request>,
}

impl HttpConn {
    /// A new connection accepted at `now`, allowing requests of `max_request_bytes` (head,
    /// and body separately) that must arrive within `handshake_timeout`.
    pub fn new(max_request_bytes: usize, handshake_timeout: Duration, now: Instant) -> Self {
        HttpConn {
            reader: RequestReader::new(max_request_bytes),
            timeout: handshake_timeout,
            deadline: now + handshake_timeout,
            state: State::Open,
            handoff: None,
        }
    }

    /// When [`Self::on_timeout`] will close the connection.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether `on_bytes(&[], ..)` has something to return (a hand-off held back behind
    /// earlier responses).
    pub fn has_pending(&self) -> bool {
        self.handoff.is_some()
    }

    /// Bytes received after the last request (for the handler taking over after a hand-off).
    pub fn take_leftover(&mut self) -> Vec<u8> {
        self.reader.take_buffered()
    }

    /// Feeds bytes read at `now` and answers every complete request among them.
    pub fn on_bytes(
        &mut self,
        data: &[u8],
        now: Instant,
        catalog: &dyn AnnouncementCatalog,
    ) -> ConnAction {
        if self.state != State::Open {
            return ConnAction::Close {
                reason: CloseReason::Finished,
            };
        }
        if let Some(request) = self.handoff.take() {
            self.reader.append_raw(data);
            self.state = State::Finished;
            return ConnAction::Handoff(request);
        }
        let mut out = Vec::new();
        let mut input = data;
        loop {
            let request = match self.reader.feed(input) {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, status = e.status(), "bad HTTP request");
                    out.extend_from_slice(&Response::for_error(&e).to_bytes());
                    self.state = State::Finished;
                    return ConnAction::Respond {
                        bytes: out,
                        close: true,
                    };
                }
            };
            input = &[];
            match route(&request, catalog) {
                Routed::Response(response) => {
                    let response = response.for_request(&request);
                    out.extend_from_slice(&response.to_bytes());
                    if response.closes() {
                        self.state = State::Finished;
                        return ConnAction::Respond {
                            bytes: out,
                            close: true,
                        };
                    }
                    self.deadline = now + self.timeout;
                }
                Routed::NotAnnouncement => {
                    if out.is_empty() {
                        self.state = State::Finished;
                        return ConnAction::Handoff(request);
                    }
                    self.handoff = Some(request);
                    break;
                }
            }
        }
        if out.is_empty() {
            ConnAction::NeedMore
        } else {
            ConnAction::Respond {
                bytes: out,
                close: false,
            }
        }
    }

    /// Checks the deadline at `now`: `Some(Close)` once it has passed, `None` before it (and
    /// after the connection finished).
    pub fn on_timeout(&mut self, now: Instant) -> Option<ConnAction> {
        if self.state != State::Open || self.handoff.is_some() || now < self.deadline {
            return None;
        }
        self.state = State::Finished;
        let reason = if self.reader.in_request() {
            CloseReason::RequestTimeout
        } else {
            CloseReason::IdleTimeout
        };
        Some(ConnAction::Close { reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::announce::StationEntry;

    const T: Duration = Duration::from_secs(10);

    fn catalog() -> Vec<StationEntry> {
        vec![StationEntry {
            name: "demo".into(),
            nsc: Some("[Address]\r\n".into()),
            asx: Some("<ASX VERSION=\"3.0\">\r\n</ASX>\r\n".into()),
            nsc_file: "demo.nsc".into(),
            asx_file: "demo.asx".into(),
            ..StationEntry::default()
        }]
    }

    fn respond(action: ConnAction) -> (String, bool) {
        match action {
            ConnAction::Respond { bytes, close } => (String::from_utf8(bytes).unwrap(), close),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn slowloris_is_closed_at_the_deadline() {
        let t0 = Instant::now();
        let cat = catalog();
        let mut c = HttpConn::new(8192, T, t0);
        assert_eq!(c.deadline(), t0 + T);
        let head = b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n";
        for (i, b) in head.iter().enumerate() {
            let now = t0 + Duration::from_millis(100 * i as u64);
            assert_eq!(c.on_bytes(&[*b], now, &cat), ConnAction::NeedMore);
            // Trickled bytes do not move the deadline.
            assert_eq!(c.deadline(), t0 + T);
        }
        assert_eq!(c.on_timeout(t0 + T - Duration::from_millis(1)), None);
        assert_eq!(
            c.on_timeout(t0 + T),
            Some(ConnAction::Close {
                reason: CloseReason::RequestTimeout
            })
        );
        assert_eq!(
            c.on_bytes(b"\r\n", t0 + T, &cat),
            ConnAction::Close {
                reason: CloseReason::Finished
            }
        );
        assert_eq!(c.on_timeout(t0 + T * 2), None);
    }

    #[test]
    fn keep_alive_resets_the_deadline_and_idles_out() {
        let t0 = Instant::now();
        let cat = catalog();
        let mut c = HttpConn::new(8192, T, t0);
        let t1 = t0 + Duration::from_secs(3);
        let (text, close) =
            respond(c.on_bytes(b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n", t1, &cat));
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(!close);
        assert_eq!(c.deadline(), t1 + T);
        let (text, _) = respond(c.on_bytes(
            b"GET /demo.asx HTTP/1.1\r\nHost: a\r\n\r\n",
            t1 + Duration::from_secs(1),
            &cat,
        ));
        assert!(text.ends_with("</ASX>\r\n"));
        assert_eq!(c.on_timeout(t1 + T), None);
        assert_eq!(
            c.on_timeout(t1 + Duration::from_secs(1) + T),
            Some(ConnAction::Close {
                reason: CloseReason::IdleTimeout
            })
        );
    }

    #[test]
    fn errors_close() {
        let t0 = Instant::now();
        let mut c = HttpConn::new(8192, T, t0);
        let (text, close) = respond(c.on_bytes(b"\x00\x01garbage\r\n\r\n", t0, &catalog()));
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(close);
    }
}
