//! A push request's body, read as it streams: `Content-Length` (a WMHTTP PushStart says
//! 2147483647 and keeps sending) or `Transfer-Encoding: chunked` (FFmpeg's default POST,
//! RFC 9112 §7.1), decoded incrementally into the body bytes. Sans-I/O, bounded: a chunk-size
//! line longer than [`MAX_LINE`] or not hex is an error; nothing but that line is buffered.

/// Longest chunk-size or trailer line (with extensions).
pub const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("bad chunk-size line in the chunked body")]
    BadChunkSize,
    #[error("chunked body: missing CRLF after a chunk")]
    MissingCrlf,
    #[error("chunked body: a line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunked {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    /// In chunk data, this many bytes left.
    Data(u64),
    /// The CRLF after chunk data (bytes of it seen).
    DataEnd(u8),
    /// Trailer lines after the last chunk.
    Trailer(Vec<u8>),
    Done,
}

/// How the body is framed, and where the reader is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `Content-Length`: bytes left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedState),
}

/// The chunked decoder's state (opaque).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedState(Chunked);

impl Body {
    pub fn chunked() -> Body {
        Body::Chunked(ChunkedState(Chunked::Size(Vec::new())))
    }

    /// Whether the whole body has been read.
    pub fn done(&self) -> bool {
        matches!(
            self,
            Body::Length(0) | Body::Chunked(ChunkedState(Chunked::Done))
        )
    }

    /// Decodes `input`, appending body bytes to `out`; returns how many input bytes were
    /// used (the rest follows the body: a next request).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, BodyError> {
        match self {
            Body::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                out.extend_from_slice(&input[..n]);
                *left -= n as u64;
                Ok(n)
            }
            Body::Chunked(ChunkedState(state)) => decode_chunked(state, input, out),
        }
    }
}

fn decode_chunked(
    state: &mut Chunked,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, BodyError> {
    let mut i = 0;
    while i < input.len() {
        match state {
            Chunked::Done => return Ok(i),
            Chunked::Size(line) | Chunked::Trailer(line) => {
                let b = input[i];
                i += 1;
                if b != b'\n' {
                    if line.len() >= MAX_LINE {
                        return Err(BodyError::LineTooLong);
                    }
                    line.push(b);
                    continue;
                }
                let is_empty = line.is_empty() || line.as_slice() == b"\r";
                if let Chunked::Trailer(line) = state {
                    if is_empty {
                        *state = Chunked::Done;
                    } else {
                        line.clear();
                    }
                    continue;
                }
                let Chunked::Size(line) = state else {
                    continue;
                };
                let text = line.strip_suffix(b"\r").unwrap_or(line);
                let hex = text.split(|&c| c == b';').next().unwrap_or_default();
                let hex = std::str::from_utf8(hex)
                    .map_err(|_| BodyError::BadChunkSize)?
                    .trim();
                if hex.is_empty() || hex.len() > 15 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(BodyError::BadChunkSize);
                }
                let size = u64::from_str_radix(hex, 16).map_err(|_| BodyError::BadChunkSize)?;
                *state = if size == 0 {
                    Chunked::Trailer(Vec::new())
                } else {
                    Chunked::Data(size)
                };
            }
            Chunked::Data(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                *left -= n as u64;
                if *left == 0 {
                    *state = Chunked::DataEnd(0);
                }
            }
            Chunked::DataEnd(seen) => {
                let want = if *seen == 0 { b'\r' } else { b'\n' };
                let b = input[i];
                i += 1;
                if b == want {
                    *seen += 1;
                } else if *seen == 0 && b == b'\n' {
                    // A bare LF (RFC 9112 §2.2 lets a recipient accept it).
                    *seen = 2;
                } else {
                    return Err(BodyError::MissingCrlf);
                }
                if *seen == 2 {
                    *state = Chunked::Size(Vec::new());
                }
            }
        }
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &mut Body, input: &[u8], step: usize) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            let used = body.decode(piece, &mut out)?;
            assert!(used == piece.len() || body.done());
        }
        Ok(out)
    }

    #[test]
    fn chunked_bodies_in_any_split() {
        let wire =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let mut b = Body::chunked();
            assert_eq!(
                all(&mut b, wire, step).unwrap(),
                b"Wikipedia in\r\n\r\nchunks."
            );
            assert!(b.done());
        }
    }

    #[test]
    fn hostile_chunked_bodies_are_refused() {
        for wire in [
            &b"zz\r\n"[..],
            b"-1\r\n",
            b"ffffffffffffffffff\r\n",
            b"4\r\nWikiXX",
            b"\r\n",
        ] {
            assert!(all(&mut Body::chunked(), wire, 1).is_err(), "{wire:?}");
        }
        let long = vec![b'1'; MAX_LINE + 1];
        assert_eq!(
            all(&mut Body::chunked(), &long, 100),
            Err(BodyError::LineTooLong)
        );
    }

    #[test]
    fn content_length_stops_at_its_end() {
        let mut b = Body::Length(3);
        let mut out = Vec::new();
        assert_eq!(b.decode(b"abcdef", &mut out), Ok(3));
        assert_eq!(out, b"abc");
        assert!(b.done());
    }
}
