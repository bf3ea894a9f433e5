//! An HTTP/1.x response read incrementally by the pull client: the status line and the headers
//! WMSP uses ([MS-WMSP] §2.2.1: `Pragma: client-id=…`, `Server`), then the body framed by
//! `Transfer-Encoding: chunked` (FFmpeg's `-listen 1` server), `Content-Length` (a Describe
//! answered with keep-alive) or the close (VLC, Windows Media servers, asfcast's Play).
//!
//! Bounded: the head is at most [`MAX_HEAD`] bytes and a chunk-size line at most
//! [`MAX_CHUNK_LINE`]; body bytes are handed on as they arrive, never collected here.

/// Longest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest chunk-size line (hex size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;
/// Headers kept at most.
const MAX_HEADERS: usize = 64;

/// Why a response cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("response head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    #[error("not an HTTP response: {0:?}")]
    NotHttp(String),
    #[error("bad chunked transfer coding: {0}")]
    BadChunking(String),
}

/// The status line and headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    /// (lower-case name, value), in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Every value of a header (name in lower case).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }

    /// The `client-id` a WMSP server assigns in a `Pragma` ([MS-WMSP] §2.2.1.4.6).
    pub fn client_id(&self) -> Option<u32> {
        self.values("pragma")
            .flat_map(|v| v.split(','))
            .filter_map(|d| d.trim().strip_prefix("client-id="))
            .find_map(|v| v.trim().parse().ok())
    }

    fn content_length(&self) -> Option<u64> {
        self.get("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    fn chunked(&self) -> bool {
        self.values("transfer-encoding")
            .any(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    /// Until the close.
    Close,
    /// This many bytes left.
    Length(u64),
    /// Chunked: reading a size line (bytes so far).
    ChunkSize(Vec<u8>),
    /// Chunked: this many data bytes left in the chunk.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data (bytes of it seen).
    ChunkEnd(u8),
    /// The body is complete.
    Done,
}

/// What [`ResponseReader::push`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Read {
    /// The head, the first time it is complete.
    pub head: Option<Head>,
    /// Body bytes, de-chunked.
    pub body: Vec<u8>,
    /// The body ended (Content-Length reached or the last chunk); later bytes are not read.
    pub done: bool,
}

/// Reads one response.
#[derive(Debug)]
pub struct ResponseReader {
    head_buf: Vec<u8>,
    body: Option<Body>,
}

impl Default for ResponseReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseReader {
    pub fn new() -> Self {
        ResponseReader {
            head_buf: Vec::new(),
            body: None,
        }
    }

    /// Whether the body is complete.
    pub fn done(&self) -> bool {
        self.body == Some(Body::Done)
    }

    /// Feeds bytes from the connection.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Read, ResponseError> {
        let mut out = Read::default();
        if self.body.is_none() {
            let before = self.head_buf.len();
            let take = bytes.len().min(MAX_HEAD + 4 - before.min(MAX_HEAD + 4));
            self.head_buf.extend_from_slice(&bytes[..take]);
            let Some(end) = find_head_end(&self.head_buf) else {
                if self.head_buf.len() > MAX_HEAD {
                    return Err(ResponseError::HeadTooLong);
                }
                return Ok(out);
            };
            if end > MAX_HEAD {
                return Err(ResponseError::HeadTooLong);
            }
            let head = parse_head(&self.head_buf[..end])?;
            // Bytes of this push past the head are body.
            let used = end - before;
            bytes = &bytes[used.min(bytes.len())..];
            self.body = Some(if head.chunked() {
                Body::ChunkSize(Vec::new())
            } else {
                match head.content_length() {
                    Some(0) => Body::Done,
                    Some(n) => Body::Length(n),
                    None => Body::Close,
                }
            });
            self.head_buf = Vec::new();
            out.head = Some(head);
        }
        self.body_bytes(bytes, &mut out.body)?;
        out.done = self.done();
        Ok(out)
    }

    fn body_bytes(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) -> Result<(), ResponseError> {
        while !bytes.is_empty() {
            let Some(state) = self.body.as_mut() else {
                return Ok(());
            };
            match state {
                Body::Done => return Ok(()),
                Body::Close => {
                    out.extend_from_slice(bytes);
                    return Ok(());
                }
                Body::Length(left) | Body::ChunkData(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    out.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    *left -= n as u64;
                    if *left == 0 {
                        let next = match state {
                            Body::Length(_) => Body::Done,
                            _ => Body::ChunkEnd(0),
                        };
                        self.body = Some(next);
                    }
                }
                Body::ChunkEnd(seen) => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if bytes[0] != want {
                        return Err(ResponseError::BadChunking(
                            "chunk data not followed by CRLF".into(),
                        ));
                    }
                    bytes = &bytes[1..];
                    *seen += 1;
                    if *seen == 2 {
                        self.body = Some(Body::ChunkSize(Vec::new()));
                    }
                }
                Body::ChunkSize(line) => {
                    let nl = bytes.iter().position(|&b| b == b'\n');
                    let take = nl.map_or(bytes.len(), |i| i + 1);
                    line.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if line.len() > MAX_CHUNK_LINE {
                        return Err(ResponseError::BadChunking(
                            "chunk-size line too long".into(),
                        ));
                    }
                    if nl.is_none() {
                        continue;
                    }
                    let text = String::from_utf8_lossy(line);
                    let hex = text.trim().split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| ResponseError::BadChunking(format!("chunk size {:?}", hex)))?;
                    // The last chunk: trailers are not read (the body is complete).
                    self.body = Some(if size == 0 {
                        Body::Done
                    } else {
                        Body::ChunkData(size)
                    });
                }
            }
        }
        Ok(())
    }
}

/// The end of the head (after the blank line), accepting bare LF line ends.
fn find_head_end(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_head(b: &[u8]) -> Result<Head, ResponseError> {
    let text = String::from_utf8_lossy(b);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let short = || status_line.chars().take(80).collect::<String>();
    if !version.starts_with("HTTP/1.") {
        return Err(ResponseError::NotHttp(short()));
    }
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| ResponseError::NotHttp(short()))?;
    let reason = parts.next().unwrap_or("").trim().to_string();
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok(Head {
        status,
        reason,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every `step` bytes; (head, body, done).
    fn read(input: &[u8], step: usize) -> Result<(Option<Head>, Vec<u8>, bool), ResponseError> {
        let mut r = ResponseReader::new();
        let (mut head, mut body, mut done) = (None, Vec::new(), false);
        for piece in input.chunks(step.max(1)) {
            let out = r.push(piece)?;
            head = head.or(out.head);
            body.extend(out.body);
            done |= out.done;
        }
        Ok((head, body, done))
    }

    #[test]
    fn bodies_by_close_length_and_chunks_in_any_split() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &[u8], &[u8], bool)> = vec![
            ("until close (VLC, WMS)",
                b"HTTP/1.0 200 OK\r\nServer: Cougar 4.1.0.3921\r\nPragma: client-id=77\r\n\r\n$H..",
                b"$H..", false),
            ("content-length (a keep-alive Describe)",
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", b"abc", true),
            ("chunked (FFmpeg -listen 1)",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                b"abcde", true),
            ("bare LF line ends",
                b"HTTP/1.0 200 OK\nPragma: no-cache, client-id=5\n\nxyz", b"xyz", false),
        ];
        for (name, input, body, done) in cases {
            for step in [1, 2, 7, input.len()] {
                let (head, got, d) = read(input, step).unwrap_or_else(|e| panic!("{name}: {e}"));
                let head = head.unwrap_or_else(|| panic!("{name}: no head"));
                assert_eq!(head.status, 200, "{name}");
                assert_eq!(got, body, "{name} split {step}");
                assert_eq!(d, done, "{name} split {step}");
            }
        }
        let (head, _, _) = read(
            b"HTTP/1.0 200 OK\r\nPragma: no-cache,client-id=1543854732\r\n\r\n",
            5,
        )
        .unwrap();
        assert_eq!(head.and_then(|h| h.client_id()), Some(1_543_854_732));
    }

    #[test]
    fn bad_responses_are_refused() {
        let long = [
            b"HTTP/1.0 200 OK\r\nX: ".as_slice(),
            &vec![b'a'; MAX_HEAD + 10],
        ]
        .concat();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "HTML without a status line",
                b"<html><body>hello</body></html>\n\n".to_vec(),
            ),
            ("an endless head", long),
            (
                "bad chunk size",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            ),
            (
                "chunk without CRLF",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab".to_vec(),
            ),
            ("status out of range", b"HTTP/1.1 20 OK\r\n\r\n".to_vec()),
        ];
        for (name, input) in cases {
            assert!(read(&input, 3).is_err(), "{name}");
        }
    }
}
