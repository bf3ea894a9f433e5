//! Plain HTTP load client: what mpv, `ffmpeg http://` or GStreamer's `souphttpsrc` send for
//! the `http://box/<station>` entry of the `.asx` — an ordinary GET with a non-WMSP
//! `User-Agent` (`Lavf/…`) and no WMSP `Pragma`, which the daemon answers with a progressive
//! ASF body (`asfcast::http::dialect`, `asfcast::http::plain_stream`).
//!
//! The body is the station's header (Header Object, whose size is at bytes 16..24, then the
//! 50-byte Data Object head) and then fixed-size packets; media bytes are the bytes after that
//! header, so the figure is comparable with MMSH (packets re-padded to the packet size). A
//! plain body has no packet numbering, so the only gap this client can see is a stall.

use super::core::Fault;

/// Longest response head accepted before the body starts.
const MAX_HEAD: usize = 64 * 1024;
/// The Data Object head a live stream sends after the Header Object (GUID, size, file id,
/// packet count, reserved).
const DATA_HEAD_LEN: u64 = 50;
/// Largest Header Object believed (the daemon's own bound, `asf::header::MAX_HEADER_LEN`).
const MAX_HEADER: u64 = 16 * 1024 * 1024;

/// The GET of a plain HTTP player.
pub fn get_request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Lavf/58.76.100\r\nAccept: */*\r\n\
         Icy-MetaData: 1\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

#[derive(Debug)]
enum Stage {
    Head(Vec<u8>),
    /// Body bytes of the ASF header still to pass: unknown until 24 of them arrived.
    Header {
        seen: Vec<u8>,
        left: Option<u64>,
    },
    Media,
}

/// One plain HTTP client.
#[derive(Debug)]
pub struct Plain {
    request: Vec<u8>,
    stage: Stage,
    pub media_bytes: u64,
}

impl Plain {
    pub fn new(host: &str, path: &str) -> Self {
        Plain {
            request: get_request(host, path),
            stage: Stage::Head(Vec::new()),
            media_bytes: 0,
        }
    }

    /// The request, once the TCP connection is up.
    pub fn on_connected(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    /// The response head was 200.
    pub fn playing(&self) -> bool {
        !matches!(self.stage, Stage::Head(_))
    }

    /// Where the client is, for failure reasons.
    pub fn stage(&self) -> &'static str {
        match self.stage {
            Stage::Head(_) => "response head",
            Stage::Header { .. } => "ASF header",
            Stage::Media => "body",
        }
    }

    pub fn on_bytes(&mut self, mut data: &[u8]) -> Result<(), Fault> {
        while !data.is_empty() {
            match &mut self.stage {
                Stage::Head(h) => {
                    h.extend_from_slice(data);
                    let Some(i) = h.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if h.len() > MAX_HEAD {
                            return Err(Fault::Handshake(format!(
                                "response head over {MAX_HEAD} bytes"
                            )));
                        }
                        return Ok(());
                    };
                    let status = h
                        .split(|&c| c == b'\r')
                        .next()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .unwrap_or_default();
                    if !matches!(status.split(' ').nth(1), Some("200")) {
                        return Err(Fault::Handshake(format!("status line {status:?}")));
                    }
                    let head = String::from_utf8_lossy(h.get(..i).unwrap_or_default())
                        .to_ascii_lowercase();
                    if !head.contains("video/x-ms-asf") {
                        return Err(Fault::Handshake(
                            "200 without Content-Type video/x-ms-asf (served as MMSH?)".into(),
                        ));
                    }
                    let body = h.split_off(i + 4);
                    self.stage = Stage::Header {
                        seen: Vec::new(),
                        left: None,
                    };
                    return self.on_bytes(&body);
                }
                Stage::Header { seen, left } => {
                    if left.is_none() {
                        let n = (24 - seen.len()).min(data.len());
                        seen.extend_from_slice(data.get(..n).unwrap_or_default());
                        data = data.get(n..).unwrap_or_default();
                        let Some(size) = seen
                            .get(16..24)
                            .and_then(|b| b.try_into().ok())
                            .map(u64::from_le_bytes)
                        else {
                            continue;
                        };
                        if !(24..=MAX_HEADER).contains(&size) {
                            return Err(Fault::Framing(format!("Header Object size {size}")));
                        }
                        *left = Some(size + DATA_HEAD_LEN - 24);
                    }
                    let rest = left.unwrap_or(0);
                    let n = usize::try_from(rest).unwrap_or(usize::MAX).min(data.len());
                    data = data.get(n..).unwrap_or_default();
                    let rest = rest - n as u64;
                    if rest == 0 {
                        self.stage = Stage::Media;
                    } else {
                        *left = Some(rest);
                    }
                }
                Stage::Media => {
                    self.media_bytes += data.len() as u64;
                    data = &[];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_packets_are_counted_at_any_split() {
        let mut s = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-ms-asf\r\nConnection: close\r\n\r\n"
            .to_vec();
        let mut header = vec![0u8; 100];
        header[16..24].copy_from_slice(&100u64.to_le_bytes());
        s.extend(header);
        s.extend([0u8; 50]);
        s.extend([7u8; 3000]);
        for cut in 0..s.len() {
            let mut c = Plain::new("h", "/s");
            c.on_bytes(&s[..cut]).unwrap();
            c.on_bytes(&s[cut..]).unwrap();
            assert!(c.playing());
            assert_eq!(c.media_bytes, 3000, "cut at {cut}");
        }
    }

    #[test]
    fn refusals_and_mmsh_answers_are_handshake_faults() {
        let mut c = Plain::new("h", "/s");
        assert!(matches!(
            c.on_bytes(b"HTTP/1.0 404 Not Found\r\n\r\n"),
            Err(Fault::Handshake(_))
        ));
        let mut c = Plain::new("h", "/s");
        assert!(matches!(
            c.on_bytes(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-mms-framed\r\n\r\n"),
            Err(Fault::Handshake(_))
        ));
        let r = String::from_utf8(get_request("127.0.0.1:8080", "/demo")).unwrap();
        assert!(r.contains("User-Agent: Lavf/") && !r.contains("Pragma"));
    }
}
