//! Responses: a small builder and its serialization (RFC 9112 §4, §6, §9.6).
//!
//! - The status line echoes the request's minor version (`HTTP/1.0` to a 1.0 client such as
//!   VLC's mmsh, which only checks the `HTTP/1.` prefix; RFC 9110 §6.2 would also allow 1.1).
//! - Every response says `Connection: close` or `Connection: keep-alive`, so that 1.0 and 1.1
//!   clients read persistence the same way, and carries `Content-Length` (RFC 9110 §8.6; also
//!   on HEAD, where it is the length the GET would have sent) unless the body is delimited by
//!   closing the connection ([`Response::until_close`], for the later MMSH data stream) or the
//!   status has no content (1xx, 204, 304).
//! - `Server: asfcast/<version>` unless the caller set its own `Server` (MMSH will send the
//!   `Cougar/…` token [MS-WMSP] requires). `Date` only when the caller passes one: the core has
//!   no clock.
//! - Field values are sanitized (CR, LF and NUL become spaces) so no value can split the head.

use super::request::Request;
use super::HttpError;

/// The `Server` field value.
pub const SERVER: &str = concat!("asfcast/", env!("ASFCAST_BUILD_VERSION"));

/// A response to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields besides the ones [`Response::to_bytes`] writes itself
    /// (`Content-Length`, `Connection`, default `Server`, `Date`).
    pub headers: Vec<(String, String)>,
    /// The body (not sent for HEAD).
    pub body: Vec<u8>,
    /// The minor HTTP version of the status line (0 or 1).
    pub version: u8,
    /// Keep the connection open after this response.
    pub keep_alive: bool,
    /// Send the head only (HEAD request).
    pub head_only: bool,
    /// An HTTP-date for the `Date` field, supplied by the shell.
    pub date: Option<String>,
    /// The body is delimited by closing the connection instead of `Content-Length`.
    pub until_close: bool,
}

impl Response {
    /// A bodiless response with the standard reason phrase, for HTTP/1.1, closing.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            reason: reason_phrase(status).to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            version: 1,
            keep_alive: false,
            head_only: false,
            date: None,
            until_close: false,
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".to_string(), content_type.to_string()));
        self.body = body.into();
        self
    }

    /// Sets the `Date` field value (an IMF-fixdate from the shell's clock).
    pub fn date(mut self, date: &str) -> Self {
        self.date = Some(date.to_string());
        self
    }

    /// Delimits the body by closing the connection (no `Content-Length`, `Connection: close`).
    pub fn until_close(mut self) -> Self {
        self.until_close = true;
        self.keep_alive = false;
        self
    }

    /// Answers `request`: its version, its persistence wish, HEAD → head only.
    pub fn for_request(mut self, request: &Request) -> Self {
        self.version = request.version.min(1);
        self.keep_alive = request.keep_alive() && !self.until_close;
        self.head_only = request.is_head();
        self
    }

    /// The first field named `name` (case-insensitive) among the caller's fields.
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection closes after this response.
    pub fn closes(&self) -> bool {
        !self.keep_alive || self.until_close
    }

    /// A short `text/plain` response.
    pub fn text(status: u16, message: &str) -> Self {
        let mut body = message.to_string();
        body.push('\n');
        Response::new(status).body("text/plain; charset=utf-8", body)
    }

    /// 400 Bad Request.
    pub fn bad_request() -> Self {
        Response::text(400, "bad request")
    }

    /// 404 Not Found.
    pub fn not_found() -> Self {
        Response::text(404, "not found")
    }

    /// 405 Method Not Allowed with the `Allow` list (RFC 9110 §15.5.6 requires it).
    pub fn method_not_allowed(allow: &str) -> Self {
        Response::text(405, "method not allowed").header("Allow", allow)
    }

    /// 431 Request Header Fields Too Large (RFC 6585 §5).
    pub fn header_fields_too_large() -> Self {
        Response::text(431, "request header fields too large")
    }

    /// 500 Internal Server Error.
    pub fn internal_error() -> Self {
        Response::text(500, "internal server error")
    }

    /// 503 Service Unavailable with `Retry-After` in seconds.
    pub fn service_unavailable(retry_after_secs: u32, message: &str) -> Self {
        Response::text(503, message)
            .header("Retry-After", &retry_after_secs.to_string())
            .header("Cache-Control", "no-cache")
    }

    /// The response to a request that could not be read; always closes.
    pub fn for_error(error: &HttpError) -> Self {
        let status = error.status();
        let mut r = match status {
            431 => Response::header_fields_too_large(),
            400 => Response::bad_request(),
            s => Response::text(s, &reason_phrase(s).to_ascii_lowercase()),
        };
        r.keep_alive = false;
        r
    }

    /// Serializes the head and (unless HEAD) the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.body.len());
        let reason = sanitize(&self.reason);
        out.extend_from_slice(
            format!(
                "HTTP/1.{} {} {}\r\n",
                self.version.min(1),
                self.status,
                reason
            )
            .as_bytes(),
        );
        let own = |name: &str| {
            ["content-length", "connection"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        };
        if self.get_header("server").is_none() {
            push_field(&mut out, "Server", SERVER);
        }
        if let Some(date) = &self.date {
            if self.get_header("date").is_none() {
                push_field(&mut out, "Date", date);
            }
        }
        for (name, value) in self.headers.iter().filter(|(n, _)| !own(n)) {
            push_field(&mut out, name, value);
        }
        let no_content = self.status < 200 || self.status == 204 || self.status == 304;
        if !self.until_close && !no_content {
            push_field(&mut out, "Content-Length", &self.body.len().to_string());
        }
        let connection = if self.closes() { "close" } else { "keep-alive" };
        push_field(&mut out, "Connection", connection);
        out.extend_from_slice(b"\r\n");
        if !self.head_only && !no_content {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ':')
        .collect();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(sanitize(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Replaces characters that could end a line early.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The standard reason phrase (RFC 9110 §15) for the codes this server sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestReader;

    fn req(bytes: &[u8]) -> Request {
        RequestReader::new(8192).feed(bytes).unwrap().unwrap()
    }

    fn text(r: &Response) -> String {
        String::from_utf8(r.to_bytes()).unwrap()
    }

    #[test]
    fn exact_bytes_http11_keep_alive() {
        let r = Response::new(200)
            .body("text/plain", "hi")
            .for_request(&req(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(
            text(&r),
            format!(
                "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nContent-Type: text/plain\r\n\
                 Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
            )
        );
        assert!(!r.closes());
    }

    #[test]
    fn http10_closes_by_default() {
        let r = Response::new(200)
            .body("text/plain", "hi")
            .for_request(&req(b"GET / HTTP/1.0\r\n\r\n"));
        let t = text(&r);
        assert!(t.starts_with("HTTP/1.0 200 OK\r\n"), "{t}");
        assert!(t.contains("\r\nConnection: close\r\n"), "{t}");
        assert!(r.closes());
        let r = Response::new(200)
            .for_request(&req(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(text(&r).contains("\r\nConnection: keep-alive\r\n"));
    }

    #[test]
    fn head_has_length_but_no_body() {
        let r = Response::new(200)
            .body("text/plain", "hello")
            .for_request(&req(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"));
        let t = text(&r);
        assert!(t.contains("\r\nContent-Length: 5\r\n"), "{t}");
        assert!(t.ends_with("\r\n\r\n"), "{t}");
    }

    #[test]
    fn date_and_server_override() {
        let r = Response::new(200)
            .header("Server", "Cougar/9.01.01.3814")
            .date("Sun, 06 Nov 1994 08:49:37 GMT");
        let t = text(&r);
        assert!(!t.contains("asfcast/"), "{t}");
        assert!(t.contains("\r\nServer: Cougar/9.01.01.3814\r\n"));
        assert!(t.contains("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
    }

    #[test]
    fn caller_framing_fields_are_ignored() {
        let r = Response::new(200)
            .header("Content-Length", "999")
            .header("connection", "keep-alive")
            .body("text/plain", "x");
        let t = text(&r);
        assert_eq!(t.matches("Content-Length").count(), 1, "{t}");
        assert!(t.contains("Content-Length: 1\r\n"));
        assert!(t.contains("Connection: close\r\n"));
        assert!(!t.contains("connection: keep-alive"));
    }

    #[test]
    fn until_close_has_no_length() {
        let r = Response::new(200)
            .body("application/x-mms-framed", vec![0x24, 0x48])
            .until_close()
            .for_request(&req(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        let t = r.to_bytes();
        let s = String::from_utf8_lossy(&t);
        assert!(!s.contains("Content-Length"), "{s}");
        assert!(s.contains("Connection: close\r\n"));
        assert!(t.ends_with(b"\r\n\r\n\x24\x48"));
    }

    #[test]
    fn no_content_statuses() {
        let t = text(&Response::new(204).body("text/plain", "x"));
        assert!(!t.contains("Content-Length"), "{t}");
        assert!(t.ends_with("\r\n\r\n"));
    }

    #[test]
    fn values_cannot_inject_lines() {
        let r = Response::new(200).header("X-Evil\r\nSet", "a\r\nSet-Cookie: b\0");
        let t = text(&r);
        assert!(t.contains("\r\nX-EvilSet: a  Set-Cookie: b \r\n"), "{t}");
        assert_eq!(t.matches("\r\n").count(), 6, "{t}");
    }

    #[test]
    fn error_helpers() {
        let r = Response::method_not_allowed("GET, HEAD");
        assert_eq!(r.status, 405);
        assert_eq!(r.get_header("allow"), Some("GET, HEAD"));
        let r = Response::service_unavailable(2, "not ready");
        assert_eq!(r.status, 503);
        assert_eq!(r.get_header("retry-after"), Some("2"));
        for (r, s) in [
            (Response::bad_request(), 400),
            (Response::not_found(), 404),
            (Response::header_fields_too_large(), 431),
            (Response::internal_error(), 500),
        ] {
            assert_eq!(r.status, s);
            assert!(!r.body.is_empty());
            assert!(text(&r).starts_with(&format!("HTTP/1.1 {s} {}\r\n", reason_phrase(s))));
        }
        let r = Response::for_error(&HttpError::BodyTooLarge {
            length: 10,
            limit: 1,
        });
        assert_eq!(r.status, 413);
        assert!(r.closes());
    }
}
