//! RTSP/1.0 message framing on the server side (RFC 2326 §4–§7, §10.12 interleaving), on top of
//! the `rtsp-types` parser: a bounded input buffer that yields client requests and interleaved
//! `$` frames, and a response writer that always carries the `Server: WMServer/…` identity.
//!
//! Real-client quirks served here:
//! - FFmpeg switches into its Windows Media mode only when the OPTIONS reply's `Server:` starts
//!   with `WMServer/` (rtsp-wmsp.md §1.1); GStreamer's `rtspwms` extension checks the same prefix.
//!   Every response therefore carries [`SERVER`].
//! - Clients interleave RTCP receiver reports (`$` + channel + length) between requests on the
//!   same connection; they are framed here and handed up, never parsed as text.
//! - A request head larger than the configured bound is refused without waiting for its end
//!   (no unbounded buffering of hostile input).
//!
//! The client side of the same framing ([`request_bytes`], [`parse_reply`]) serves the load
//! tool and the tests, so that they speak RTSP through the parser the server uses.

use rtsp_types::headers::{self, HeaderName};
use rtsp_types::{Message, Method, ParseError, Request, Response, StatusCode, Url, Version};

use super::rtp::parse_interleaved;

/// The identity every response carries. FFmpeg and GStreamer compare the `WMServer/` prefix.
pub const SERVER: &str = "WMServer/9.1.1.5001 (asfcast)";

/// Methods the server answers, for `Public:` (lists GET_PARAMETER so VLC and FFmpeg use it for
/// keep-alive).
pub const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// Largest interleaved frame: `$`, channel, 16-bit length, data.
const MAX_INTERLEAVED: usize = 4 + 0xFFFF;

/// One complete thing the client sent.
#[derive(Debug)]
pub enum Incoming {
    Request(Box<Request<Vec<u8>>>),
    /// An interleaved binary frame (RTCP from the client, or junk on an unknown channel).
    Interleaved {
        channel: u8,
        len: usize,
    },
    /// A response to a request we never send; ignored.
    Response,
}

/// Why the input cannot be read further. Both end the connection after an error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("request head larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed RTSP message at byte {offset} of the connection")]
    Malformed { offset: u64 },
}

/// The bounded input buffer of one connection.
#[derive(Debug)]
pub struct Reader {
    buf: Vec<u8>,
    max: usize,
    /// Bytes consumed so far (for error positions).
    consumed: u64,
}

impl Reader {
    /// `max` bounds a request (head and body); interleaved frames may be up to 64 KiB.
    pub fn new(max: usize) -> Self {
        Reader {
            buf: Vec::new(),
            max,
            consumed: 0,
        }
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends input. Fails once more is buffered than any acceptable message could need.
    pub fn push(&mut self, input: &[u8]) -> Result<(), ReadError> {
        let limit = self.max.max(MAX_INTERLEAVED);
        if self.buf.len() + input.len() > limit {
            // Keep what fits so `next` can still frame complete messages before it.
            let room = limit.saturating_sub(self.buf.len());
            self.buf
                .extend_from_slice(input.get(..room).unwrap_or(input));
            return Err(ReadError::TooLarge { limit: self.max });
        }
        self.buf.extend_from_slice(input);
        Ok(())
    }

    /// The next complete message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, ReadError> {
        // Whitespace between messages (some clients send a bare CRLF as a ping) is skipped.
        let skip = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.drain(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.buf.first() == Some(&b'$') {
            return Ok(self.interleaved());
        }
        match Message::<Vec<u8>>::parse(&self.buf) {
            Ok((msg, n)) => {
                self.drain(n);
                Ok(Some(match msg {
                    Message::Request(r) => Incoming::Request(Box::new(r)),
                    Message::Response(_) => Incoming::Response,
                    Message::Data(d) => Incoming::Interleaved {
                        channel: d.channel_id(),
                        len: d.len(),
                    },
                }))
            }
            Err(ParseError::Incomplete(_)) => {
                if self.buf.len() > self.max {
                    Err(ReadError::TooLarge { limit: self.max })
                } else {
                    Ok(None)
                }
            }
            Err(ParseError::Error) => Err(ReadError::Malformed {
                offset: self.consumed,
            }),
        }
    }

    fn interleaved(&mut self) -> Option<Incoming> {
        let (channel, len) = parse_interleaved(&self.buf)?;
        if self.buf.len() < 4 + len {
            return None;
        }
        self.drain(4 + len);
        Some(Incoming::Interleaved { channel, len })
    }

    fn drain(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.consumed += n as u64;
    }
}

/// A response being built: status, CSeq echo, Server identity, optional Session.
#[derive(Debug)]
pub struct Reply {
    status: u16,
    reason: Option<&'static str>,
    headers: Vec<(HeaderName, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            reason: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// A reason phrase other than the standard one.
    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push((headers::CONTENT_TYPE, content_type.to_string()));
        self.body = body;
        self
    }

    /// The response bytes, with `CSeq` echoed when the request had one.
    pub fn to_bytes(&self, cseq: Option<&str>, session: Option<&str>) -> Vec<u8> {
        let mut b = Response::builder(Version::V1_0, StatusCode::from(self.status));
        match (self.reason, self.status) {
            (Some(r), _) => b = b.reason_phrase(r),
            (None, 200) => b = b.reason_phrase("OK"),
            _ => {}
        }
        if let Some(c) = cseq {
            b = b.header(headers::CSEQ, c);
        }
        b = b.header(headers::SERVER, SERVER);
        if let Some(s) = session {
            b = b.header(headers::SESSION, s);
        }
        for (n, v) in &self.headers {
            b = b.header(n.clone(), v.as_str());
        }
        let resp = b.build(self.body.as_slice());
        let mut out = Vec::with_capacity(256 + self.body.len());
        // Writing into a Vec cannot fail; an error would only drop this response.
        let _ = resp.write(&mut out);
        out
    }
}

/// Why a client request could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request URL {0:?} is not a URL")]
    BadUrl(String),
}

/// A client request (load tool, tests): request line, `CSeq` and `headers`, no body.
pub fn request_bytes(
    method: Method,
    url: &str,
    cseq: u32,
    headers: &[(HeaderName, String)],
) -> Result<Vec<u8>, RequestError> {
    let uri = Url::parse(url).map_err(|_| RequestError::BadUrl(url.to_string()))?;
    let mut b = Request::builder(method, Version::V1_0)
        .request_uri(uri)
        .header(headers::CSEQ, cseq.to_string());
    for (n, v) in headers {
        b = b.header(n.clone(), v.as_str());
    }
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail.
    let _ = b.empty().write(&mut out);
    Ok(out)
}

/// A reply read by a client: the response and the bytes it took.
pub type ParsedReply = (Response<Vec<u8>>, usize);

/// A server's reply at the front of `b`, as a client reads it (load tool, tests): the reply and
/// the bytes it took (head and `Content-Length` body), `Ok(None)` while incomplete. More than
/// `max` bytes without a whole reply is [`ReadError::TooLarge`]; anything but a reply is
/// [`ReadError::Malformed`].
pub fn parse_reply(b: &[u8], max: usize) -> Result<Option<ParsedReply>, ReadError> {
    match Message::<Vec<u8>>::parse(b) {
        Ok((Message::Response(r), n)) => Ok(Some((r, n))),
        Ok(_) | Err(ParseError::Error) => Err(ReadError::Malformed { offset: 0 }),
        Err(ParseError::Incomplete(_)) if b.len() > max => Err(ReadError::TooLarge { limit: max }),
        Err(ParseError::Incomplete(_)) => Ok(None),
    }
}

/// A header's value as text, if present.
pub fn header<'a>(req: &'a Request<Vec<u8>>, name: &HeaderName) -> Option<&'a str> {
    req.header(name).map(|v| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn frames_requests_and_interleaved_data_split_anywhere() {
        let input = b"OPTIONS rtsp://h/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n$\x01\x00\x03abc\r\n\
            SET_PARAMETER rtsp://h/demo RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nx: y";
        for split in 0..input.len() {
            let mut r = Reader::new(4096);
            let mut got = Vec::new();
            for part in [&input[..split], &input[split..]] {
                r.push(part).unwrap();
                while let Some(m) = r.next_message().unwrap() {
                    got.push(match m {
                        Incoming::Request(q) => format!("{:?} {}", q.method(), q.body().len()),
                        Incoming::Interleaved { channel, len } => format!("${channel}/{len}"),
                        Incoming::Response => "response".into(),
                    });
                }
            }
            assert_eq!(
                got,
                ["Options 0", "$1/3", "SetParameter 4"],
                "split {split}"
            );
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn oversized_and_malformed_input_is_refused() {
        let mut r = Reader::new(1024);
        r.push(b"DESCRIBE rtsp://h/demo RTSP/1.0\r\nX: ").unwrap();
        let big = vec![b'a'; 2000];
        // Still below the interleaved bound: the head is incomplete but already too large.
        r.push(&big).unwrap();
        assert_eq!(
            r.next_message().unwrap_err(),
            ReadError::TooLarge { limit: 1024 }
        );
        let mut r = Reader::new(1024);
        assert!(r.push(&vec![b'a'; 70_000]).is_err());

        let mut r = Reader::new(1024);
        r.push(b"\x16\x03\x01\x02\x00garbage\r\n\r\n").unwrap();
        assert!(matches!(
            r.next_message(),
            Err(ReadError::Malformed { offset: 0 })
        ));
    }

    #[test]
    fn client_requests_and_server_replies_round_trip() {
        let req = request_bytes(
            Method::Setup,
            "rtsp://127.0.0.1:5540/demo/stream=1",
            3,
            &[(
                headers::TRANSPORT,
                "RTP/AVP/TCP;unicast;interleaved=0-1;mode=play".into(),
            )],
        )
        .unwrap();
        let t = text(&req);
        assert!(
            t.starts_with("SETUP rtsp://127.0.0.1:5540/demo/stream=1 RTSP/1.0\r\nCSeq: 3\r\n"),
            "{t}"
        );
        // The server's reader takes it as sent.
        let mut r = Reader::new(4096);
        r.push(&req).unwrap();
        match r.next_message().unwrap() {
            Some(Incoming::Request(q)) => {
                assert_eq!(q.method(), &Method::Setup);
                assert_eq!(
                    header(&q, &headers::TRANSPORT),
                    Some("RTP/AVP/TCP;unicast;interleaved=0-1;mode=play")
                );
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            request_bytes(Method::Options, "not a url", 1, &[]),
            Err(RequestError::BadUrl("not a url".into()))
        );

        let mut reply = Reply::new(200)
            .body("application/sdp", b"v=0\r\n".to_vec())
            .to_bytes(Some("2"), Some("77"));
        let whole = reply.len();
        reply.extend_from_slice(b"$\x00\x00\x01x");
        for cut in 0..whole {
            assert!(
                parse_reply(&reply[..cut], 4096).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let (resp, n) = parse_reply(&reply, 4096).unwrap().unwrap();
        assert_eq!((u16::from(resp.status()), n), (200, whole));
        assert_eq!(resp.body().as_slice(), b"v=0\r\n");
        assert_eq!(
            resp.header(&headers::SESSION).map(|v| v.as_str()),
            Some("77")
        );
        assert!(parse_reply(b"HTTP/1.0 200 OK\r\n\r\n", 4096).is_err());
        assert!(matches!(
            parse_reply(b"RTSP/1.0 200 OK\r\nContent-Length: 9999\r\n\r\nabc", 40),
            Err(ReadError::TooLarge { limit: 40 })
        ));
    }

    #[test]
    fn replies_carry_the_wms_identity_and_echo_cseq() {
        let b = Reply::new(200)
            .header(headers::PUBLIC, PUBLIC)
            .to_bytes(Some("7"), Some("abc;timeout=60"));
        let t = text(&b);
        assert!(t.starts_with("RTSP/1.0 200 OK\r\n"), "{t}");
        assert!(t.contains("\r\nCSeq: 7\r\n"), "{t}");
        assert!(t.contains("\r\nServer: WMServer/"), "{t}");
        assert!(t.contains("\r\nSession: abc;timeout=60\r\n"), "{t}");
        assert!(t.ends_with("\r\n\r\n"), "{t}");
        let b = Reply::new(461).to_bytes(None, None);
        let t = text(&b);
        assert!(
            t.starts_with("RTSP/1.0 461 Unsupported Transport\r\n"),
            "{t}"
        );
        assert!(!t.contains("CSeq") && !t.contains("Session"), "{t}");
        let b = Reply::new(200)
            .body("application/sdp", b"v=0\r\n".to_vec())
            .to_bytes(Some("2"), None);
        let t = text(&b);
        assert!(t.contains("Content-Length: 5\r\n"), "{t}");
        assert!(t.contains("Content-Type: application/sdp\r\n"), "{t}");
        assert!(t.ends_with("\r\n\r\nv=0\r\n"), "{t}");
    }
}
