//! One control API connection as a [`Session`]: HTTP/1.1 framing only (the request reader the
//! HTTP listener uses, keep-alive, pipelining, the idle timeout). It answers nothing itself:
//! complete requests wait in [`ApiPort::take_request`] until the shell routes them
//! ([`super::api::route`]) with a fresh snapshot and, for actions, performs them.
//!
//! Why a `Session` and not a separate path in the shell: the connection then gets everything
//! every other connection has — accept, reads throttled by queued output, `writev`, the linger
//! on close, the per-IP limit — and the shell only adds one step after each read event:
//! drain [`crate::station::sink::Session::api`]'s requests. API sessions never play a station
//! and are left out of the operators' snapshot.
//!
//! Refused here (each with a log line, then the connection closes): requests the reader cannot
//! read (400, 431, 505), bodies over [`MAX_BODY`] (413), more than [`MAX_PIPELINED`] requests
//! in flight.
//!
//! Uploads ([`streams_upload`]: `PUT /v1/config/media/…`, `PUT /v1/update`) are not read
//! whole: the request is handed over as soon as its head is read, and the body bytes, as they
//! arrive, wait in a small buffer the shell drains ([`ApiPort::take_upload`]) into the file
//! after every read event — so at most one read budget of the body is ever in memory, and the
//! socket is not read again until the shell has written what was read (back-pressure is TCP's
//! own window). The idle timeout runs between the body's reads too. The answer comes once the
//! last byte is on disk; an answer given before that (a refusal) closes the connection, since
//! the rest of the body is never read. Bytes after the body (a pipelined request) are read
//! once the upload is answered.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use crate::http::{Request, RequestReader, Response};
use crate::station::sink::{OutQueue, Session, Sink, StationView, Step};
use crate::station::{StationHeader, StationPacket};

use super::api::ApiPort;

/// Largest request (head, and body on its own) read: a config file is a few KiB.
pub const MAX_BODY: usize = 256 * 1024;
/// Requests read ahead of their answers.
pub const MAX_PIPELINED: usize = 8;
/// Most upload bytes held for the shell (the shell drains them after every read event, so
/// this is only reached if it stops doing so).
pub const MAX_UPLOAD_BUFFER: usize = 4 << 20;

/// Whether a request's body is an upload the shell streams to a file (see the module doc).
pub fn streams_upload(req: &Request) -> bool {
    req.method == "PUT" && (req.path == "/v1/update" || req.path.starts_with("/v1/config/media/"))
}

/// An upload's body as it arrives.
#[derive(Debug, Default)]
struct Upload {
    /// Body bytes not received yet.
    remaining: u64,
    /// Received and not yet taken by the shell.
    chunk: Vec<u8>,
    /// What came after the body, for the request reader once the upload is answered.
    after: Vec<u8>,
}

impl Upload {
    fn push(&mut self, input: &[u8]) {
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let (body, rest) = input.split_at(take);
        self.chunk.extend_from_slice(body);
        self.remaining -= take as u64;
        self.after.extend_from_slice(rest);
    }
}

/// What [`ApiPort::take_upload`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadProgress {
    /// More of the body is to come.
    Receiving,
    /// The whole body has been taken.
    Complete,
}

/// A control API connection; see the module doc.
pub struct ApiSession {
    peer: SocketAddr,
    reader: RequestReader,
    waiting: VecDeque<Request>,
    out: OutQueue,
    idle: Duration,
    deadline: Instant,
    closing: bool,
    /// The upload whose body is arriving, if any.
    upload: Option<Upload>,
}

impl ApiSession {
    /// A session that closes after `idle` without a request.
    pub fn new(peer: SocketAddr, idle: Duration, now: Instant) -> Self {
        ApiSession {
            peer,
            reader: RequestReader::new(MAX_BODY).with_streamed_bodies(streams_upload),
            waiting: VecDeque::new(),
            out: OutQueue::new(),
            idle,
            deadline: now + idle,
            closing: false,
            upload: None,
        }
    }

    /// Reads every complete request buffered.
    fn read_requests(&mut self, mut input: &[u8]) -> Step {
        loop {
            match self.reader.feed(input) {
                Ok(Some(req)) => {
                    if self.waiting.len() >= MAX_PIPELINED {
                        info!(peer = %self.peer, "control API: too many pipelined requests");
                        return self.fail(Response::text(503, "too many requests in flight"));
                    }
                    let upload = streams_upload(&req);
                    self.waiting.push_back(req);
                    input = &[];
                    if upload {
                        // The body is read by `on_bytes` from here on.
                        let buffered = self.reader.take_buffered();
                        let mut u = Upload {
                            remaining: self
                                .waiting
                                .back()
                                .and_then(|r| r.header("content-length"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0),
                            ..Upload::default()
                        };
                        u.push(&buffered);
                        self.upload = Some(u);
                        return Step::Continue;
                    }
                }
                Ok(None) => return Step::Continue,
                Err(e) => {
                    info!(peer = %self.peer, status = e.status(), error = %e, "control API request refused");
                    let mut r = super::api::error(e.status(), &e.to_string());
                    r.keep_alive = false;
                    return self.fail(r);
                }
            }
        }
    }

    fn fail(&mut self, response: Response) -> Step {
        self.waiting.clear();
        self.out.push_owned(response.to_bytes());
        self.closing = true;
        Step::close("control API request refused")
    }
}

impl Sink for ApiSession {
    fn on_header(&mut self, _header: &Arc<StationHeader>, _now: Instant) -> Step {
        Step::Continue
    }

    fn on_packet(&mut self, _packet: &Arc<StationPacket>, _now: Instant) -> Step {
        Step::Continue
    }

    fn on_timeout(&mut self, _now: Instant) -> Step {
        Step::close("control API connection idle")
    }

    fn deadline(&self) -> Option<Instant> {
        (!self.closing).then_some(self.deadline)
    }
}

impl Session for ApiSession {
    fn protocol(&self) -> &'static str {
        "api"
    }

    fn station(&self) -> Option<&str> {
        None
    }

    fn on_bytes(&mut self, input: &[u8], now: Instant, _stations: &dyn StationView) -> Step {
        if self.closing {
            return Step::Continue;
        }
        self.deadline = now + self.idle;
        if let Some(u) = self.upload.as_mut() {
            u.push(input);
            if u.chunk.len() + u.after.len() > MAX_UPLOAD_BUFFER {
                info!(peer = %self.peer, "control API: upload bytes not taken");
                return self.fail(Response::text(503, "upload not consumed"));
            }
            return Step::Continue;
        }
        self.read_requests(input)
    }

    fn output(&mut self) -> &mut OutQueue {
        &mut self.out
    }

    fn api(&mut self) -> Option<&mut dyn ApiPort> {
        Some(self)
    }
}

impl ApiPort for ApiSession {
    fn take_request(&mut self) -> Option<Request> {
        if self.closing {
            return None;
        }
        self.waiting.pop_front()
    }

    fn answer(&mut self, mut response: Response, now: Instant) -> Step {
        self.deadline = now + self.idle;
        // The upload's request is the last one read: its answer comes when none waits.
        let upload = match self.waiting.is_empty() {
            true => self.upload.take(),
            false => None,
        };
        if upload.as_ref().is_some_and(|u| u.remaining > 0) {
            // Answered before its body was read (a refusal): the rest is never read.
            response.keep_alive = false;
        }
        self.out.push_owned(response.to_bytes());
        if response.closes() {
            self.closing = true;
            self.waiting.clear();
            return Step::close("control API: answered, closing");
        }
        match upload {
            Some(u) if !u.after.is_empty() => self.read_requests(&u.after),
            _ => Step::Continue,
        }
    }

    fn take_upload(&mut self, out: &mut Vec<u8>) -> Option<UploadProgress> {
        let u = self.upload.as_mut()?;
        out.append(&mut u.chunk);
        Some(match u.remaining {
            0 => UploadProgress::Complete,
            _ => UploadProgress::Receiving,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::catalog::{AnnouncementCatalog, StationEntry};
    use crate::station::sink::Protocol;

    struct NoStations;

    impl AnnouncementCatalog for NoStations {
        fn stations(&self) -> Vec<StationEntry> {
            Vec::new()
        }
    }

    impl StationView for NoStations {
        fn header(&self, _: &str) -> Option<Arc<StationHeader>> {
            None
        }
        fn join_backlog(&self, _: &str) -> Vec<Arc<StationPacket>> {
            Vec::new()
        }
        fn serves(&self, _: &str, _: Protocol) -> bool {
            false
        }
        fn catalog(&self) -> &dyn AnnouncementCatalog {
            self
        }
    }

    fn bytes(s: &mut ApiSession) -> String {
        let q = s.output();
        let out: Vec<u8> = q.io_slices(64).iter().flat_map(|s| s.to_vec()).collect();
        let n = out.len();
        q.advance(n);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn session() -> (ApiSession, Instant) {
        let now = Instant::now();
        let peer = SocketAddr::from(([127, 0, 0, 1], 4000));
        (ApiSession::new(peer, Duration::from_secs(5), now), now)
    }

    #[test]
    fn pipelined_requests_wait_in_order_and_answers_keep_alive() {
        let (mut s, now) = session();
        let step = s.on_bytes(
            b"GET /v1/stations HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/clients HTTP/1.1\r\nHost: x\r\n\r\n",
            now,
            &NoStations,
        );
        assert_eq!(step, Step::Continue);
        let a = s.take_request().unwrap_or_else(|| panic!("first"));
        let b = s.take_request().map(|r| r.path);
        assert_eq!(
            (a.path.as_str(), b.as_deref()),
            ("/v1/stations", Some("/v1/clients"))
        );
        assert!(s.take_request().is_none());
        let r = Response::new(200).for_request(&a);
        assert_eq!(s.answer(r, now), Step::Continue);
        assert!(bytes(&mut s).starts_with("HTTP/1.1 200 OK\r\n"));
        // A request that asks to close gets its answer, then the session closes.
        s.on_bytes(
            b"GET /v1/clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            now,
            &NoStations,
        );
        let c = s.take_request().unwrap_or_else(|| panic!("third"));
        let step = s.answer(Response::new(200).for_request(&c), now);
        assert!(matches!(step, Step::Close { .. }));
        assert!(s.take_request().is_none());
    }

    #[test]
    fn an_oversized_body_gets_413_and_closes() {
        let (mut s, now) = session();
        let head = format!(
            "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let step = s.on_bytes(head.as_bytes(), now, &NoStations);
        assert!(matches!(step, Step::Close { .. }), "{step:?}");
        assert!(s.take_request().is_none());
        assert!(bytes(&mut s).starts_with("HTTP/1.1 413 "));
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn garbage_gets_400_and_idle_connections_close() {
        let (mut s, now) = session();
        let step = s.on_bytes(b"\x16\x03\x01 hello\r\n\r\n", now, &NoStations);
        assert!(matches!(step, Step::Close { .. }));
        assert!(bytes(&mut s).contains(" 400 "));
        let (s, now) = session();
        assert_eq!(s.deadline(), Some(now + Duration::from_secs(5)));
    }

    fn upload_head(len: usize) -> String {
        format!("PUT /v1/config/media/a.asf HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n")
    }

    #[test]
    fn an_upload_is_handed_over_at_its_head_and_its_body_as_it_arrives() {
        let (mut s, now) = session();
        // A body far over MAX_BODY is fine: it is never held whole.
        let len = MAX_BODY * 4;
        let head = upload_head(len);
        let mut first = head.into_bytes();
        first.extend_from_slice(&[7u8; 1000]);
        assert_eq!(s.on_bytes(&first, now, &NoStations), Step::Continue);
        let req = s.take_request().unwrap_or_else(|| panic!("head"));
        assert_eq!(req.path, "/v1/config/media/a.asf");
        assert!(req.body.is_empty());
        let mut got = Vec::new();
        assert_eq!(s.take_upload(&mut got), Some(UploadProgress::Receiving));
        assert_eq!(got.len(), 1000);
        let mut total = got.len();
        got.clear();
        // The rest, then a pipelined request right after the body.
        let rest = vec![9u8; len - 1000];
        for chunk in rest.chunks(64 * 1024) {
            s.on_bytes(chunk, now, &NoStations);
            s.take_upload(&mut got);
            total += got.len();
            got.clear();
        }
        s.on_bytes(
            b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n",
            now,
            &NoStations,
        );
        assert_eq!(s.take_upload(&mut got), Some(UploadProgress::Complete));
        assert_eq!(total, len);
        assert!(got.is_empty());
        // No request is handed out before the upload is answered; then the pipelined one.
        assert!(s.take_request().is_none());
        let step = s.answer(Response::new(201).for_request(&req), now);
        assert_eq!(step, Step::Continue);
        assert_eq!(
            s.take_request().map(|r| r.path).as_deref(),
            Some("/v1/version")
        );
        assert_eq!(s.take_upload(&mut got), None);
    }

    #[test]
    fn an_upload_refused_before_its_body_closes_the_connection() {
        let (mut s, now) = session();
        s.on_bytes(upload_head(10).as_bytes(), now, &NoStations);
        let req = s.take_request().unwrap_or_else(|| panic!("head"));
        let step = s.answer(Response::new(413).for_request(&req), now);
        assert!(matches!(step, Step::Close { .. }), "{step:?}");
        assert!(bytes(&mut s).contains("Connection: close"));
    }
}
