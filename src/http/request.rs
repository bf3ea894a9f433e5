//! The incremental request reader: bytes in as they arrive, one [`Request`] out at a time.
//!
//! The reader buffers until the blank line that ends the head (RFC 9112 §2.1; `\r\n\r\n`, or
//! `\n\n` with bare LF line ends), parses the head once with `httparse`, then reads a
//! `Content-Length` body if there is one (§6.3). Bytes after the request stay buffered for the
//! next one (keep-alive, pipelining: §9.3).
//!
//! Bounds, so a hostile peer costs at most `max_bytes` per connection:
//! - the head must end within `max_bytes`; the reader never copies more than `max_bytes` of an
//!   unfinished head, whatever one `feed` brings (→ 431);
//! - at most [`MAX_HEADERS`] fields (→ 431); a body at most `max_bytes` (→ 413);
//! - the end-of-head scan looks at every byte once, and the request line is checked as soon as
//!   it is complete (binary garbage or a TLS hello gets 400 at once, not after the timeout).
//!
//! Quirks: FFmpeg's run-on `Pragma … stream-time=0Connection: Close` line is split back into two
//! fields; see the module doc of [`crate::http`] for the rest.

use super::{quote, HttpError};

/// The most header fields a request may carry (RFC 9112 sets no limit; MMSH Play requests
/// carry about 10, browsers about 20).
pub const MAX_HEADERS: usize = 64;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method token, case preserved (methods are case-sensitive: RFC 9110 §9.1).
    pub method: String,
    /// The request target as received.
    pub target: String,
    /// The target's path, percent-decoded, without query or fragment. `*` for the
    /// asterisk-form.
    pub path: String,
    /// The raw query (after `?`), not decoded.
    pub query: Option<String>,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in order, names as sent; values lossily decoded as UTF-8 and trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (only `Content-Length` bodies are read).
    pub body: Vec<u8>,
}

impl Request {
    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field named `name` (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All `Pragma` directives, in order: every `Pragma` field split on commas into
    /// `(key, value)`; keys and values are trimmed, empty items skipped.
    ///
    /// `Pragma: no-cache,rate=1.000000,stream-time=0` gives `("no-cache", None)`,
    /// `("rate", Some("1.000000"))`, `("stream-time", Some("0"))`.
    pub fn pragmas(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for value in self.headers_named("pragma") {
            for item in value.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                match item.split_once('=') {
                    Some((k, v)) => out.push((k.trim().to_string(), Some(v.trim().to_string()))),
                    None => out.push((item.to_string(), None)),
                }
            }
        }
        out
    }

    /// The last `Pragma` directive named `key` (case-insensitive): `None` when absent,
    /// `Some(None)` for a bare key, `Some(Some(value))` otherwise. Later directives win, as a
    /// client repeating one means the later value.
    pub fn pragma(&self, key: &str) -> Option<Option<String>> {
        self.pragmas()
            .into_iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// Whether a `Connection` field lists `option` (case-insensitive; RFC 9110 §7.6.1).
    pub fn has_connection_option(&self, option: &str) -> bool {
        self.headers_named("connection")
            .flat_map(|v| v.split(','))
            .any(|o| o.trim().eq_ignore_ascii_case(option))
    }

    /// Whether the client wants the connection kept after the response (RFC 9112 §9.3):
    /// HTTP/1.1 unless `close`, HTTP/1.0 only with `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        if self.has_connection_option("close") {
            return false;
        }
        self.version >= 1 || self.has_connection_option("keep-alive")
    }

    /// Whether this is a `HEAD` request (the response carries no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The decoded path if it is safe to match against names: it starts with `/` and has no
    /// `..` segment, no NUL or other control character and no backslash (which some file
    /// systems and players treat as a separator). Checked after percent-decoding, so `%2e%2e`
    /// and `%2f` cannot sneak a traversal through.
    pub fn safe_path(&self) -> Option<&str> {
        let p = self.path.as_str();
        if !p.starts_with('/') {
            return None;
        }
        if p.chars().any(|c| c == '\\' || c.is_control()) {
            return None;
        }
        if p.split('/').any(|seg| seg == "..") {
            return None;
        }
        Some(p)
    }
}

/// A head parsed, its body not yet complete.
#[derive(Debug)]
struct Pending {
    request: Request,
    body_len: usize,
}

/// Reads requests from a byte stream; see the module doc.
#[derive(Debug)]
pub struct RequestReader {
    max_bytes: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for the end of the head.
    scanned: usize,
    /// Where the request line ends (its LF), once seen.
    first_lf: Option<usize>,
    /// The request line was checked (once, not on every feed).
    line_checked: bool,
    /// A request line was seen (leading empty lines are skipped until then).
    started: bool,
    pending: Option<Pending>,
    failed: Option<HttpError>,
    /// Requests whose body the caller streams itself (see [`Self::with_streamed_bodies`]).
    streamed: Option<fn(&Request) -> bool>,
}

impl RequestReader {
    /// Requests `streamed` picks are returned as soon as their head is read, with an empty
    /// body and no body limit (a valid `Content-Length` is still required to be well formed);
    /// the body bytes that follow stay buffered for [`Self::take_buffered`], and the caller
    /// reads the body itself (the control API's uploads, streamed to a file).
    pub fn with_streamed_bodies(mut self, streamed: fn(&Request) -> bool) -> Self {
        self.streamed = Some(streamed);
        self
    }

    /// A reader that accepts heads (and bodies) of at most `max_bytes` each.
    pub fn new(max_bytes: usize) -> Self {
        RequestReader {
            max_bytes,
            buf: Vec::new(),
            scanned: 0,
            first_lf: None,
            line_checked: false,
            started: false,
            pending: None,
            failed: None,
            streamed: None,
        }
    }

    /// Bytes held: an unfinished request, or what followed the last request.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether part of a request (more than skipped empty lines) has arrived and is unfinished.
    pub fn in_request(&self) -> bool {
        self.pending.is_some() || !self.buf.is_empty()
    }

    /// Takes the bytes held after the last request (for a protocol taking over the stream).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.scanned = 0;
        self.first_lf = None;
        self.line_checked = false;
        self.started = false;
        std::mem::take(&mut self.buf)
    }

    /// Appends bytes without parsing them, for a connection that was handed over and whose
    /// later bytes belong to the new owner ([`Self::take_buffered`]).
    pub(crate) fn append_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Feeds bytes; returns the next complete request, if one is ready. Call again with an
    /// empty slice to get further pipelined requests already buffered. After an error the
    /// reader stays failed and the connection must be closed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Request>, HttpError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.feed_inner(bytes);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
            self.pending = None;
        }
        result
    }

    fn feed_inner(&mut self, bytes: &[u8]) -> Result<Option<Request>, HttpError> {
        let mut rest = bytes;
        if self.pending.is_none() {
            // Never hold more than `max_bytes` of an unfinished head.
            let room = self.max_bytes.saturating_sub(self.buf.len());
            let take = room.min(rest.len());
            let (now, later) = rest.split_at(take);
            self.buf.extend_from_slice(now);
            rest = later;
            self.skip_leading_empty_lines();
            match self.scan_head()? {
                None => {
                    if self.buf.len() >= self.max_bytes || !rest.is_empty() {
                        return Err(HttpError::HeadTooLarge {
                            limit: self.max_bytes,
                        });
                    }
                    self.check_request_line()?;
                    return Ok(None);
                }
                Some(end) => {
                    let pending = self.parse_head(end)?;
                    self.buf.drain(..end);
                    self.scanned = 0;
                    self.first_lf = None;
                    self.line_checked = false;
                    self.started = false;
                    self.pending = Some(pending);
                }
            }
        }
        // Body bytes and anything pipelined after them.
        self.buf.extend_from_slice(rest);
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        if self.buf.len() < pending.body_len {
            self.pending = Some(pending);
            return Ok(None);
        }
        let mut request = pending.request;
        request.body = self.buf.drain(..pending.body_len).collect();
        Ok(Some(request))
    }

    /// RFC 9112 §2.2: ignore empty lines received before the request line.
    fn skip_leading_empty_lines(&mut self) {
        if self.started {
            return;
        }
        let skip = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if skip > 0 {
            self.buf.drain(..skip);
            self.scanned = 0;
        }
        self.started = !self.buf.is_empty();
    }

    /// Scans new bytes (within the limit) for the blank line ending the head; returns the
    /// head's length including that line. Rejects control bytes in the request line early.
    fn scan_head(&mut self) -> Result<Option<usize>, HttpError> {
        let limit = self.buf.len().min(self.max_bytes);
        let mut i = self.scanned;
        while i < limit {
            let Some(&b) = self.buf.get(i) else { break };
            if self.first_lf.is_none() {
                if i == 0 && !is_tchar(b) {
                    return Err(HttpError::Malformed {
                        reason: "request line does not start with a method token",
                    });
                }
                if b == b'\n' {
                    self.first_lf = Some(i);
                } else if (b < 0x20 && b != b'\r' && b != b'\t') || b == 0x7f {
                    return Err(HttpError::Malformed {
                        reason: "control character in the request line",
                    });
                }
            } else if b == b'\n' {
                let prev = i.checked_sub(1).and_then(|j| self.buf.get(j)).copied();
                let prev2 = i.checked_sub(2).and_then(|j| self.buf.get(j)).copied();
                if prev == Some(b'\n') || (prev == Some(b'\r') && prev2 == Some(b'\n')) {
                    self.scanned = i + 1;
                    return Ok(Some(i + 1));
                }
            }
            i += 1;
        }
        self.scanned = i;
        Ok(None)
    }

    /// Once the request line is complete, lets httparse judge it without waiting for the rest.
    fn check_request_line(&mut self) -> Result<(), HttpError> {
        let Some(lf) = self.first_lf.filter(|_| !self.line_checked) else {
            return Ok(());
        };
        self.line_checked = true;
        let line = self.buf.get(..=lf).unwrap_or_default();
        let mut no_headers: [httparse::Header<'_>; 0] = [];
        let mut req = httparse::Request::new(&mut no_headers);
        match parser_config().parse_request(&mut req, line) {
            Ok(_) => Ok(()),
            Err(e) => Err(map_httparse(e)),
        }
    }

    /// Parses `buf[..end]` (a complete head) into a request waiting for its body.
    fn parse_head(&self, end: usize) -> Result<Pending, HttpError> {
        let head = self.buf.get(..end).unwrap_or_default();
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        match parser_config().parse_request(&mut req, head) {
            Ok(httparse::Status::Complete(n)) if n == end => {}
            Ok(_) => {
                return Err(HttpError::Malformed {
                    reason: "request head did not end where expected",
                })
            }
            Err(e) => return Err(map_httparse(e)),
        }
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
        else {
            return Err(HttpError::Malformed {
                reason: "incomplete request line",
            });
        };
        let mut headers = Vec::with_capacity(req.headers.len());
        for f in req.headers.iter() {
            let value = String::from_utf8_lossy(f.value).trim().to_string();
            push_field(&mut headers, f.name, value);
        }
        // FFmpeg's run-on lines are split into two fields: the split ones count too.
        if headers.len() > MAX_HEADERS {
            return Err(HttpError::TooManyHeaders { limit: MAX_HEADERS });
        }
        let (path, query) = split_target(target)?;
        let request = Request {
            method: method.to_string(),
            target: target.to_string(),
            path,
            query,
            version,
            headers,
            body: Vec::new(),
        };
        if version >= 1 {
            let hosts = request.headers_named("host").count();
            if hosts != 1 {
                return Err(HttpError::BadHost { count: hosts });
            }
        }
        let body_len = self.body_length(&request)?;
        Ok(Pending { request, body_len })
    }

    /// The body length from `Content-Length` (RFC 9112 §6.3), refusing chunked bodies.
    fn body_length(&self, request: &Request) -> Result<usize, HttpError> {
        let te = request.header("transfer-encoding");
        let mut lengths = request
            .headers_named("content-length")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .peekable();
        if te.is_some() && lengths.peek().is_some() {
            return Err(HttpError::AmbiguousLength);
        }
        // A push's body streams for as long as the encoder runs: the push session reads it
        // (`super::push`), not this reader.
        if super::push::streams_body(request) {
            return Ok(0);
        }
        if let Some(coding) = te {
            return Err(HttpError::UnsupportedTransferCoding {
                coding: quote(coding),
            });
        }
        let mut length: Option<u64> = None;
        for v in lengths {
            let bad = || HttpError::BadContentLength { value: quote(v) };
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            // All digits: a parse failure can only be an overflow, i.e. too large.
            let n: u64 = v.parse().unwrap_or(u64::MAX);
            if length.is_some_and(|l| l != n) {
                return Err(bad());
            }
            length = Some(n);
        }
        let length = length.unwrap_or(0);
        if self.streamed.is_some_and(|f| f(request)) {
            return Ok(0);
        }
        match usize::try_from(length) {
            Ok(n) if n <= self.max_bytes => Ok(n),
            _ => Err(HttpError::BodyTooLarge {
                length,
                limit: self.max_bytes,
            }),
        }
    }
}

/// The httparse settings: RFC 9112 §3 lets a server accept runs of whitespace in the request
/// line; everything else stays strict.
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config.allow_multiple_spaces_in_request_line_delimiters(true);
    config
}

fn map_httparse(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders { limit: MAX_HEADERS },
        httparse::Error::Version => HttpError::UnsupportedVersion,
        httparse::Error::HeaderName => HttpError::Malformed {
            reason: "invalid header field name",
        },
        httparse::Error::HeaderValue => HttpError::Malformed {
            reason: "invalid header field value",
        },
        httparse::Error::NewLine => HttpError::Malformed {
            reason: "invalid line ending",
        },
        httparse::Error::Token => HttpError::Malformed {
            reason: "invalid token in the request line",
        },
        _ => HttpError::Malformed {
            reason: "invalid request head",
        },
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Adds a field, undoing FFmpeg's run-on line: its mmsh Play request ends the last `Pragma`
/// line without CRLF, so `Connection: Close` is glued to the value
/// (`stream-time=0Connection: Close`). Such a value is split back into two fields.
fn push_field(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    const GLUED: &str = "connection:";
    if name.eq_ignore_ascii_case("pragma") {
        let lower = value.to_ascii_lowercase();
        if let Some(at) = lower.find(GLUED).filter(|&at| at > 0) {
            let (pragma, glued) = value.split_at(at);
            let connection = glued.get(GLUED.len()..).unwrap_or_default().trim();
            headers.push((name.to_string(), pragma.trim().to_string()));
            headers.push(("Connection".to_string(), connection.to_string()));
            return;
        }
    }
    headers.push((name.to_string(), value));
}

/// Splits a request target into the decoded path and the raw query (RFC 9112 §3.2).
fn split_target(target: &str) -> Result<(String, Option<String>), HttpError> {
    let bad = |reason| HttpError::BadTarget {
        target: quote(target),
        reason,
    };
    if target == "*" {
        return Ok(("*".to_string(), None));
    }
    let origin = if target.starts_with('/') {
        target
    } else if let Some((scheme, after)) = target.split_once("://") {
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(bad("not origin-form or absolute-form"));
        }
        // The authority ends at the first '/', '?' or '#'; its host is not ours to judge.
        match after.find(['/', '?', '#']) {
            Some(at) => after.get(at..).unwrap_or_default(),
            None => "",
        }
    } else {
        return Err(bad("not origin-form or absolute-form"));
    };
    // A fragment never belongs in a request; drop it rather than refuse the client.
    let origin = origin.split('#').next().unwrap_or_default();
    let (raw_path, query) = match origin.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (origin, None),
    };
    let raw_path = if raw_path.is_empty() { "/" } else { raw_path };
    if !raw_path.starts_with('/') {
        return Err(bad("path does not start with '/'"));
    }
    let decoded = percent_decode(raw_path).ok_or_else(|| bad("invalid percent-encoding"))?;
    let path = String::from_utf8(decoded).map_err(|_| bad("path is not UTF-8"))?;
    Ok((path, query))
}

/// Decodes `%XX` escapes; `None` on a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Option<Request>, HttpError> {
        RequestReader::new(8192).feed(bytes)
    }

    fn parse(bytes: &[u8]) -> Request {
        match one(bytes) {
            Ok(Some(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn curl_request() {
        let r = parse(
            b"GET /demo.nsc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\n\
              Accept: */*\r\n\r\n",
        );
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/demo.nsc");
        assert_eq!(r.path, "/demo.nsc");
        assert_eq!(r.query, None);
        assert_eq!(r.version, 1);
        assert_eq!(r.header("host"), Some("127.0.0.1:8080"));
        assert_eq!(r.header("USER-AGENT"), Some("curl/8.5.0"));
        assert!(r.keep_alive());
        assert!(r.body.is_empty());
    }

    #[test]
    fn bare_lf_line_ends() {
        let r = parse(b"GET /a HTTP/1.0\nUser-Agent: x\n\n");
        assert_eq!(r.path, "/a");
        assert_eq!(r.header("user-agent"), Some("x"));
        assert!(!r.keep_alive());
    }

    #[test]
    fn mixed_line_ends() {
        let r = parse(b"GET /a HTTP/1.0\r\nA: 1\n\r\n");
        assert_eq!(r.header("a"), Some("1"));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let r = parse(b"\r\n\r\n\nGET /a HTTP/1.0\r\n\r\n");
        assert_eq!(r.path, "/a");
    }

    #[test]
    fn partial_head_waits() {
        let mut rd = RequestReader::new(8192);
        assert_eq!(rd.feed(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert!(rd.in_request());
        let r = rd.feed(b"\r\n").unwrap().unwrap();
        assert_eq!(r.path, "/");
        assert!(!rd.in_request());
    }

    #[test]
    fn query_and_percent_decoding() {
        let r = parse(b"GET /a%20b/c%2Fd?x=1&y=%20 HTTP/1.0\r\n\r\n");
        assert_eq!(r.path, "/a b/c/d");
        assert_eq!(r.query.as_deref(), Some("x=1&y=%20"));
    }

    #[test]
    fn absolute_form_uses_path() {
        let r = parse(b"GET http://example.org:8080/demo?q HTTP/1.0\r\n\r\n");
        assert_eq!(r.path, "/demo");
        assert_eq!(r.query.as_deref(), Some("q"));
        let r = parse(b"GET http://example.org HTTP/1.0\r\n\r\n");
        assert_eq!(r.path, "/");
        let r = parse(b"GET mmsh://example.org?x HTTP/1.0\r\n\r\n");
        assert_eq!(r.path, "/");
        assert_eq!(r.query.as_deref(), Some("x"));
    }

    #[test]
    fn fragment_is_dropped() {
        let r = parse(b"GET /a#frag HTTP/1.0\r\n\r\n");
        assert_eq!(r.path, "/a");
    }

    #[test]
    fn asterisk_form() {
        let r = parse(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.path, "*");
        assert_eq!(r.safe_path(), None);
    }

    #[test]
    fn bad_targets() {
        for t in [
            &b"CONNECT host:443 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /a%zz HTTP/1.0\r\n\r\n",
            b"GET /a%2 HTTP/1.0\r\n\r\n",
            b"GET /%ff%fe HTTP/1.0\r\n\r\n",
            b"GET 1http://x/ HTTP/1.0\r\n\r\n",
        ] {
            let e = one(t).unwrap_err();
            assert!(matches!(e, HttpError::BadTarget { .. }), "{e:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn safe_path_rules() {
        let path_of = |t: &str| parse(format!("GET {t} HTTP/1.0\r\n\r\n").as_bytes());
        assert_eq!(path_of("/demo.nsc").safe_path(), Some("/demo.nsc"));
        assert_eq!(path_of("/a/..b/c..").safe_path(), Some("/a/..b/c.."));
        for t in [
            "/../../etc/passwd",
            "/a/..",
            "/%2e%2e/etc/passwd",
            "/a%2f..%2fb",
            "/a%00b",
            "/a%5cb",
            "/a%0d%0ab",
            "http://evil/../x",
        ] {
            assert_eq!(path_of(t).safe_path(), None, "{t}");
        }
    }

    #[test]
    fn host_rules_for_http11() {
        assert_eq!(
            one(b"GET / HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadHost { count: 0 })
        );
        assert_eq!(
            one(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(HttpError::BadHost { count: 2 })
        );
        assert!(one(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn garbage_is_refused_early() {
        // A TLS ClientHello: refused at the first byte, without waiting for a blank line.
        let mut rd = RequestReader::new(8192);
        let e = rd.feed(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap_err();
        assert_eq!(e.status(), 400);
        // Control bytes in what looks like a request line.
        let e = one(b"GET /\x01abc").unwrap_err();
        assert_eq!(e.status(), 400);
        // A bad request line is refused as soon as it ends.
        let e = one(b"GET / HTTP/1.1 junk\r\nHost: a\r\n").unwrap_err();
        assert_eq!(e.status(), 400);
        // After an error the reader stays failed.
        assert!(rd.feed(b"GET / HTTP/1.0\r\n\r\n").is_err());
    }

    #[test]
    fn version_other_than_1x() {
        let e = one(b"GET / HTTP/2.0\r\n\r\n").unwrap_err();
        assert_eq!(e, HttpError::UnsupportedVersion);
        assert_eq!(e.status(), 505);
    }

    #[test]
    fn strict_field_syntax() {
        assert_eq!(
            one(b"GET / HTTP/1.0\r\nFoo : bar\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            one(b"GET / HTTP/1.0\r\nFoo: bar\r\n baz\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn too_many_headers() {
        let mut head = b"GET / HTTP/1.0\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let e = one(&head).unwrap_err();
        assert_eq!(e, HttpError::TooManyHeaders { limit: MAX_HEADERS });
        assert_eq!(e.status(), 431);
    }

    #[test]
    fn run_on_lines_split_past_the_field_limit_are_refused() {
        // Found by fuzzing (http_request): 64 fields, each a run-on `…=0Connection: x`, became
        // 128 fields after the quirk split them.
        let mut head = b"GET / HTTP/1.0\r\n".to_vec();
        for _ in 0..MAX_HEADERS {
            head.extend_from_slice(b"Pragma: stream-time=0Connection: Close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let e = one(&head).unwrap_err();
        assert_eq!(e, HttpError::TooManyHeaders { limit: MAX_HEADERS });
    }

    #[test]
    fn huge_header_line_in_one_feed() {
        let max = 4096;
        let mut rd = RequestReader::new(max);
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
        head.resize(1 << 20, b'a');
        let e = rd.feed(&head).unwrap_err();
        assert_eq!(e, HttpError::HeadTooLarge { limit: max });
        assert_eq!(e.status(), 431);
        assert!(rd.buffered() <= max);
    }

    #[test]
    fn huge_header_line_in_small_feeds() {
        let max = 4096;
        let mut rd = RequestReader::new(max);
        assert_eq!(rd.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: "), Ok(None));
        let chunk = [b'a'; 1000];
        let mut fed = 0;
        let err = loop {
            match rd.feed(&chunk) {
                Ok(None) => {
                    assert!(rd.buffered() <= max);
                    fed += chunk.len();
                    assert!(fed <= 1 << 20, "no error after a megabyte");
                }
                Ok(Some(r)) => panic!("unexpected request {r:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.status(), 431);
        assert!(fed < max);
    }

    #[test]
    fn head_exactly_at_the_limit() {
        let head = b"GET / HTTP/1.0\r\nA: 1\r\n\r\n";
        assert!(RequestReader::new(head.len()).feed(head).unwrap().is_some());
        assert_eq!(
            RequestReader::new(head.len() - 1).feed(head).unwrap_err(),
            HttpError::HeadTooLarge {
                limit: head.len() - 1
            }
        );
    }

    #[test]
    fn content_length_body() {
        let mut rd = RequestReader::new(8192);
        assert_eq!(
            rd.feed(b"POST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhel"),
            Ok(None)
        );
        assert!(rd.in_request());
        let r = rd.feed(b"loGET").unwrap().unwrap();
        assert_eq!(r.body, b"hello");
        assert_eq!(rd.buffered(), 3);
        assert_eq!(rd.take_buffered(), b"GET");
    }

    #[test]
    fn content_length_rules() {
        let with = |cl: &str| {
            RequestReader::new(100)
                .feed(format!("POST / HTTP/1.0\r\nContent-Length: {cl}\r\n\r\n").as_bytes())
        };
        assert_eq!(with("0").unwrap().unwrap().body, b"");
        assert_eq!(with("3, 3"), Ok(None));
        for bad in ["-1", "abc", "3, 4", "", "+3", "0x10"] {
            assert_eq!(with(bad).unwrap_err().status(), 400, "{bad:?}");
        }
        let e = with("101").unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(with("99999999999999999999999").unwrap_err().status(), 413);
    }

    #[test]
    fn transfer_encoding_is_refused() {
        let e =
            one(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 501);
        let e = one(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap_err();
        assert_eq!(e, HttpError::AmbiguousLength);
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn pipelined_requests_come_out_one_by_one() {
        let mut rd = RequestReader::new(8192);
        let r1 = rd
            .feed(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3")
            .unwrap()
            .unwrap();
        assert_eq!(r1.path, "/1");
        let r2 = rd.feed(b"").unwrap().unwrap();
        assert_eq!(r2.path, "/2");
        assert_eq!(rd.feed(b""), Ok(None));
        let r3 = rd.feed(b" HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().unwrap();
        assert_eq!(r3.path, "/3");
        assert_eq!(rd.buffered(), 0);
    }

    #[test]
    fn connection_semantics() {
        let r = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(r.keep_alive());
        let r = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, close\r\n\r\n");
        assert!(!r.keep_alive());
        let r = parse(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(r.is_head());
    }

    #[test]
    fn pragmas_are_flattened_in_order() {
        let r = parse(
            b"GET /demo HTTP/1.0\r\n\
              Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=2,max-duration=0\r\n\
              Pragma: xPlayStrm=1\r\n\
              Pragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\r\n",
        );
        let p = r.pragmas();
        let s = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(
            p,
            vec![
                s("no-cache", None),
                s("rate", Some("1.000000")),
                s("stream-time", Some("0")),
                s("stream-offset", Some("0:0")),
                s("request-context", Some("2")),
                s("max-duration", Some("0")),
                s("xPlayStrm", Some("1")),
                s("stream-switch-entry", Some("ffff:1:0 ffff:2:0")),
            ]
        );
        assert_eq!(r.pragma("xplaystrm"), Some(Some("1".to_string())));
        assert_eq!(r.pragma("no-cache"), Some(None));
        assert_eq!(r.pragma("xClientGUID"), None);
    }

    #[test]
    fn ffmpeg_run_on_pragma_is_split() {
        let r = parse(
            b"GET /demo HTTP/1.1\r\nHost: h\r\n\
              Pragma: no-cache,rate=1.000000,stream-time=1500Connection: Close\r\n\r\n",
        );
        assert_eq!(r.pragma("stream-time"), Some(Some("1500".to_string())));
        assert_eq!(r.header("connection"), Some("Close"));
        assert!(!r.keep_alive());
        // A value merely starting with the word is left alone.
        let r = parse(b"GET / HTTP/1.0\r\nPragma: connection: x\r\n\r\n");
        assert_eq!(r.header("pragma"), Some("connection: x"));
    }

    #[test]
    fn non_utf8_field_value_is_lossy() {
        let r = parse(b"GET / HTTP/1.0\r\nX: caf\xe9\r\n\r\n");
        assert_eq!(r.header("x"), Some("caf\u{fffd}"));
    }
}
