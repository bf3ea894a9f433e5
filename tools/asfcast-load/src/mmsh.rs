//! MMS over HTTP load client ([MS-WMSP], rtsp-wmsp.md §3): one Play request as Windows Media
//! Player 9 sends it (`xPlayStrm=1`, a client GUID, both streams switched on), then the
//! response's `$H`/`$D`/`$C`/`$E` chunks. Media bytes are the ASF packets of `$D` chunks
//! (the chunk body less the 8-byte MMS data header); `$E` ends the stream.
//!
//! The chunk counter skips bodies without copying them, so ten thousand clients cost little
//! more than their socket reads: it reads each chunk's basic header with the daemon's own
//! [`mmsh::basic_header`] (the framing its `ChunkReader` checks) instead of buffering chunks.
//! Only the 8-byte MMS data header of each `$D` is kept, for its LocationId: the daemon numbers
//! a client's packets from 0 (again from 0 after `$C`), so a jump is a packet lost on the way.

use asfcast::http::mmsh::{self, ChunkType, FrameError, BASIC_HEADER_LEN, DATA_HEADER_LEN};

use super::core::{Continuity, Fault};
use super::keyframe::KeyWatch;

/// Longest response head accepted before the chunks start.
const MAX_HEAD: usize = 64 * 1024;

/// The Play request of client number `n` (its GUID differs per client).
pub fn play_request(host: &str, path: &str, n: usize) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\nHost: {host}\r\n\
         Pragma: no-cache,rate=1.000000,request-context=2\r\nPragma: xPlayStrm=1\r\n\
         Pragma: xClientGUID={{3300AD50-2C39-46c0-AE0A-{n:012X}}}\r\n\
         Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
         Connection: Close\r\n\r\n"
    )
    .into_bytes()
}

/// Incremental MMSH chunk counter.
#[derive(Debug)]
pub struct Chunks {
    head: Vec<u8>,
    /// Bytes of the current chunk's body still to skip.
    skip: usize,
    /// Bytes of the MMS data header at the start of a `$D` body still to pass uncounted.
    uncounted: usize,
    counting: bool,
    /// The MMS data header of the current `$D`, as far as it has arrived.
    data_head: Vec<u8>,
    /// Stream bytes framed so far (for the error's offset).
    offset: usize,
    pub media_bytes: u64,
    pub packets: u64,
    pub ended: bool,
    pub bad: Option<FrameError>,
    /// LocationIds of the `$D` chunks.
    pub locations: Continuity,
    /// Until the first video key frame: `$H` and `$D` bodies are kept whole for it.
    pub key: KeyWatch,
    /// The current chunk's body while kept (None: not kept).
    capture: Option<(ChunkType, Vec<u8>)>,
}

impl Default for Chunks {
    fn default() -> Self {
        Chunks {
            head: Vec::new(),
            skip: 0,
            uncounted: 0,
            counting: false,
            data_head: Vec::new(),
            offset: 0,
            media_bytes: 0,
            packets: 0,
            ended: false,
            bad: None,
            locations: Continuity::new(32),
            key: KeyWatch::default(),
            capture: None,
        }
    }
}

impl Chunks {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.bad.is_none() && !self.ended {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                if let Some((_, body)) = self.capture.as_mut() {
                    body.extend_from_slice(data.get(..n).unwrap_or_default());
                }
                if self.counting {
                    let head = self.uncounted.min(n);
                    if head > 0 {
                        let before = self.data_head.len();
                        self.data_head
                            .extend_from_slice(data.get(..head).unwrap_or_default());
                        // The LocationId is complete: check it once.
                        if let (true, Some(&[a, b, c, d])) = (before < 4, self.data_head.get(..4)) {
                            self.locations.next(u32::from_le_bytes([a, b, c, d]));
                        }
                    }
                    self.uncounted -= head;
                    self.media_bytes += (n - head) as u64;
                }
                self.skip -= n;
                self.offset += n;
                data = data.get(n..).unwrap_or_default();
                if self.skip == 0 {
                    self.chunk_done();
                }
                continue;
            }
            let need = BASIC_HEADER_LEN - self.head.len().min(BASIC_HEADER_LEN);
            let n = need.min(data.len());
            self.head
                .extend_from_slice(data.get(..n).unwrap_or_default());
            data = data.get(n..).unwrap_or_default();
            let &[a, b, lo, hi] = self.head.as_slice() else {
                return;
            };
            self.head.clear();
            let len = match mmsh::basic_header([a, b, lo, hi], self.offset) {
                Ok((kind, len)) => {
                    match kind {
                        ChunkType::Data => {
                            self.start_capture(kind);
                            self.packets += 1;
                            self.counting = true;
                            // The MMS data header, then the packet.
                            self.uncounted = DATA_HEADER_LEN;
                            self.data_head.clear();
                        }
                        ChunkType::Header => {
                            self.start_capture(kind);
                            self.counting = false
                        }
                        ChunkType::Change => {
                            self.counting = false;
                            self.locations.restart();
                        }
                        ChunkType::End => self.ended = true,
                    }
                    len
                }
                Err(e) => {
                    self.bad = Some(e);
                    return;
                }
            };
            self.offset += BASIC_HEADER_LEN;
            self.skip = usize::from(len);
            if self.skip == 0 {
                self.chunk_done();
            }
        }
    }

    /// Keeps the body of a `$H` or `$D` chunk that starts now while no key frame was seen.
    fn start_capture(&mut self, kind: ChunkType) {
        self.capture = self.key.wants().then(|| (kind, Vec::new()));
    }

    /// A chunk's body is complete: a kept one goes to the key-frame watch (after its MMS data
    /// header).
    fn chunk_done(&mut self) {
        if let Some((kind, body)) = self.capture.take() {
            let inner = body.get(DATA_HEADER_LEN..).unwrap_or_default();
            match kind {
                ChunkType::Header => self.key.header(inner),
                ChunkType::Data => {
                    self.key.packet(inner);
                }
                _ => {}
            }
        }
    }
}

#[derive(Debug)]
enum Stage {
    Head(Vec<u8>),
    Body,
}

/// One MMSH client.
#[derive(Debug)]
pub struct Mmsh {
    request: Vec<u8>,
    stage: Stage,
    pub chunks: Chunks,
}

impl Mmsh {
    pub fn new(host: &str, path: &str, n: usize) -> Self {
        Mmsh {
            request: play_request(host, path, n),
            stage: Stage::Head(Vec::new()),
            chunks: Chunks::default(),
        }
    }

    /// The request, once the TCP connection is up.
    pub fn on_connected(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    pub fn on_bytes(&mut self, data: &[u8]) -> Result<(), Fault> {
        match &mut self.stage {
            Stage::Head(h) => {
                h.extend_from_slice(data);
                if let Some(i) = h.windows(4).position(|w| w == b"\r\n\r\n") {
                    let status = h
                        .split(|&c| c == b'\r')
                        .next()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .unwrap_or_default();
                    if !matches!(status.split(' ').nth(1), Some("200")) {
                        return Err(Fault::Handshake(format!("status line {status:?}")));
                    }
                    let body = h.split_off(i + 4);
                    self.stage = Stage::Body;
                    self.chunks.feed(&body);
                } else if h.len() > MAX_HEAD {
                    return Err(Fault::Handshake(format!(
                        "response head over {MAX_HEAD} bytes"
                    )));
                }
            }
            Stage::Body => self.chunks.feed(data),
        }
        if let Some(e) = &self.chunks.bad {
            return Err(Fault::Framing(e.to_string()));
        }
        if self.chunks.ended {
            return Err(Fault::Ended("$E".into()));
        }
        Ok(())
    }

    /// Media has started (the response head was 200).
    pub fn playing(&self) -> bool {
        matches!(self.stage, Stage::Body)
    }

    pub fn media_bytes(&self) -> u64 {
        self.chunks.media_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x24, kind];
        v.extend_from_slice(&(body.len() as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn counts_data_chunk_packets_without_their_mms_header_at_any_split() {
        let mut stream =
            b"HTTP/1.0 200 OK\r\nContent-Type: application/x-mms-framed\r\n\r\n".to_vec();
        stream.extend(chunk(b'H', &[0u8; 100]));
        stream.extend(chunk(b'D', &[1u8; 8 + 3200]));
        stream.extend(chunk(b'C', &[0u8; 4]));
        stream.extend(chunk(b'D', &[2u8; 8 + 500]));
        for cut in [1, 30, 70, 75, 200, 3300, stream.len() - 1] {
            let mut c = Mmsh::new("h", "/s", 1);
            c.on_bytes(&stream[..cut]).unwrap();
            c.on_bytes(&stream[cut..]).unwrap();
            assert!(c.playing());
            assert_eq!(c.media_bytes(), 3700, "cut at {cut}");
            assert_eq!(c.chunks.packets, 2);
        }
    }

    fn data(loc: u32, len: usize) -> Vec<u8> {
        let mut body = loc.to_le_bytes().to_vec();
        body.extend_from_slice(&[4, 0, 0, 0]);
        body.resize(8 + len, 0x11);
        chunk(b'D', &body)
    }

    #[test]
    fn location_id_jumps_are_counted_and_change_restarts_them() {
        let mut s = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        for loc in [0, 1, 2, 5, 6] {
            s.extend(data(loc, 30));
        }
        s.extend(chunk(b'C', &[0u8; 4]));
        s.extend(chunk(b'H', &[0u8; 10]));
        s.extend(data(0, 30));
        s.extend(data(1, 30));
        for cut in 0..s.len() {
            let mut c = Mmsh::new("h", "/s", 1);
            for b in [&s[..cut], &s[cut..]] {
                c.on_bytes(b).unwrap();
            }
            assert_eq!(c.chunks.locations.jumps, 1, "cut at {cut}");
            assert_eq!(c.chunks.locations.last_jump, Some((3, 5)));
            assert_eq!(c.media_bytes(), 7 * 30);
        }
    }

    #[test]
    fn refusal_junk_and_end_are_faults() {
        let mut c = Mmsh::new("h", "/s", 1);
        assert!(matches!(
            c.on_bytes(b"HTTP/1.0 503 Service Unavailable\r\n\r\n"),
            Err(Fault::Handshake(_))
        ));
        let mut c = Mmsh::new("h", "/s", 1);
        assert!(matches!(
            c.on_bytes(b"HTTP/1.0 200 OK\r\n\r\nXXXX"),
            Err(Fault::Framing(_))
        ));
        let mut c = Mmsh::new("h", "/s", 1);
        let mut s = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        s.extend(chunk(b'E', &[]));
        assert!(matches!(c.on_bytes(&s), Err(Fault::Ended(_))));
    }

    #[test]
    fn request_names_the_client_and_both_streams() {
        let r = String::from_utf8(play_request("127.0.0.1:80", "/news", 255)).unwrap();
        assert!(r.starts_with("GET /news HTTP/1.0\r\n"));
        assert!(r.contains("xClientGUID={3300AD50-2C39-46c0-AE0A-0000000000FF}"));
        assert!(r.contains("stream-switch-entry=ffff:1:0 ffff:2:0"));
        assert!(r.ends_with("\r\n\r\n"));
    }
}
