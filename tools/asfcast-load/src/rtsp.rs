//! RTSP load client with the Windows Media extensions (RFC 2326; [MS-RTSP];
//! `shared/docs/protocols/rtsp-wmsp.md` §1 and §2): the request sequence FFmpeg sends in WMS
//! mode, one request at a time, each after the previous reply:
//!
//! ```text
//! OPTIONS  <url>                         -> 200 (Server: WMServer/…)
//! DESCRIBE <url>  Accept: application/sdp -> 200 + SDP
//! SETUP    <a=control of each audio/video section>
//!          TCP: RTP/AVP/TCP;unicast;interleaved=2k-(2k+1);mode=play
//!          UDP: RTP/AVP;unicast;client_port=P-(P+1);mode=play   (one port pair per client,
//!               shared by its streams, like FFmpeg's WMS UDP mode)
//! PLAY     <aggregate control>  Range: npt=0.000-
//! GET_PARAMETER <aggregate control> every `keepalive` (the server closes a silent session
//!          after `limits.idle_timeout`, 60 s by default)
//! ```
//!
//! The `x-wms-rtx` section is not set up (FFmpeg skips it over TCP, and nothing is sent on it).
//! Media bytes are the ASF packet bytes inside the x-asf-pf payloads (§2.2): RTP header (with
//! CSRCs, extension and padding) and payload-format headers are not counted, so the figure is
//! comparable across TCP and UDP (RTP-carried ASF packets have their padding removed, so it is
//! lower than the MMS figure for the same stream). Interleaved frames on odd channels (RTCP) are
//! skipped; replies to keep-alives are read between `$` frames.

use std::time::{Duration, Instant};

use super::core::{Fault, Frame, Tail};

/// Longest reply head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest reply body (the SDP carries the ASF header in base64).
const MAX_BODY: usize = 1 << 20;
/// What the client calls itself (FFmpeg's libavformat).
const USER_AGENT: &str = "Lavf58.76.100";

/// How RTP reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// Interleaved on the RTSP connection.
    Tcp,
    /// Datagrams to this client port (RTP) and the next one (RTCP).
    Udp { rtp_port: u16 },
}

/// One server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses a whole reply (head and body, as framed by [`frame_rtsp`]).
    pub fn parse(pdu: &[u8]) -> Result<Reply, String> {
        let end = find(pdu, b"\r\n\r\n").ok_or("reply without an end of head")?;
        let head = std::str::from_utf8(pdu.get(..end).unwrap_or_default())
            .map_err(|_| "reply head is not UTF-8".to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut words = status_line.splitn(3, ' ');
        let (Some(version), Some(code)) = (words.next(), words.next()) else {
            return Err(format!("status line {status_line:?}"));
        };
        if !version.starts_with("RTSP/") {
            return Err(format!("status line {status_line:?}"));
        }
        let status = code
            .parse::<u16>()
            .map_err(|_| format!("status line {status_line:?}"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Reply {
            status,
            headers,
            body: pdu.get(end + 4..).unwrap_or_default().to_vec(),
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `Content-Length` of a head, if given.
fn content_length(head: &[u8]) -> Result<usize, Fault> {
    for line in head.split(|&c| c == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some((n, v)) = line.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                let len = v
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| Fault::Framing(format!("Content-Length {:?}", v.trim())))?;
                if len > MAX_BODY {
                    return Err(Fault::Framing(format!(
                        "Content-Length {len} over {MAX_BODY}"
                    )));
                }
                return Ok(len);
            }
        }
    }
    Ok(0)
}

/// Frames the server's stream: `$` + channel + 16-bit length + data, a stray line end, or a
/// reply head plus its `Content-Length` body.
pub fn frame_rtsp(b: &[u8]) -> Result<Frame, Fault> {
    match b.first() {
        None => Ok(Frame::Partial),
        Some(b'$') => match b.get(2..4) {
            Some(&[hi, lo]) => {
                let total = 4 + usize::from(u16::from_be_bytes([hi, lo]));
                Ok(if b.len() >= total {
                    Frame::Whole(total)
                } else {
                    Frame::Partial
                })
            }
            _ => Ok(Frame::Partial),
        },
        Some(b'\r' | b'\n') => Ok(Frame::Whole(1)),
        Some(_) => {
            let window = b.get(..MAX_HEAD.min(b.len())).unwrap_or_default();
            let Some(end) = find(window, b"\r\n\r\n") else {
                if b.len() > MAX_HEAD {
                    return Err(Fault::Framing(format!("reply head over {MAX_HEAD} bytes")));
                }
                return Ok(Frame::Partial);
            };
            let total = end + 4 + content_length(window.get(..end).unwrap_or_default())?;
            Ok(if b.len() >= total {
                Frame::Whole(total)
            } else {
                Frame::Partial
            })
        }
    }
}

/// What DESCRIBE told: the aggregate control URL and one control URL per audio/video section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub aggregate: String,
    pub tracks: Vec<String>,
}

/// Reads the SDP the way FFmpeg resolves control URLs (rtsp-wmsp.md §1.3): a session-level
/// `a=control` is the aggregate only when absolute, else `Content-Base`, else the request URL;
/// media-level controls without a scheme are appended to that base with a `/`. Sections that
/// are not audio or video (the `x-wms-rtx` application section) are left out.
pub fn describe(sdp: &str, url: &str, content_base: Option<&str>) -> Described {
    let base = content_base
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string();
    let mut aggregate = None;
    let mut tracks = Vec::new();
    // (media type, control) of the section being read.
    let mut section: Option<(String, Option<String>)> = None;
    let close = |s: Option<(String, Option<String>)>, tracks: &mut Vec<String>| {
        if let Some((kind, Some(control))) = s {
            if kind == "audio" || kind == "video" {
                tracks.push(if control.contains("://") {
                    control
                } else {
                    format!("{base}/{control}")
                });
            }
        }
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            close(section.take(), &mut tracks);
            section = Some((m.split(' ').next().unwrap_or_default().to_string(), None));
        } else if let Some(c) = line.strip_prefix("a=control:") {
            match &mut section {
                Some((_, control)) => *control = Some(c.to_string()),
                None if c.starts_with("rtsp://") => aggregate = Some(c.to_string()),
                None => {}
            }
        }
    }
    close(section.take(), &mut tracks);
    Described {
        aggregate: aggregate
            .or_else(|| content_base.map(str::to_string))
            .unwrap_or_else(|| url.to_string()),
        tracks,
    }
}

/// ASF packet bytes in one RTP packet carrying x-asf-pf (rtsp-wmsp.md §2.2): after the RTP
/// header, each payload-format header is 4 bytes plus 4 per R/D/I flag; with L set its 24-bit
/// field is the unit length counted from the header (FFmpeg's reading, capped at what is left),
/// without L the rest of the packet is one fragment.
pub fn asf_bytes(rtp: &[u8]) -> Result<usize, String> {
    let first = *rtp.first().ok_or("empty RTP packet")?;
    if first >> 6 != 2 {
        return Err(format!("RTP version {}", first >> 6));
    }
    let mut start = 12 + 4 * usize::from(first & 0x0F);
    if first & 0x10 != 0 {
        let words = rtp
            .get(start + 2..start + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("RTP extension header cut short")?;
        start += 4 + 4 * words;
    }
    let mut end = rtp.len();
    if first & 0x20 != 0 {
        end = end.saturating_sub(usize::from(*rtp.last().unwrap_or(&0)));
    }
    let payload = rtp
        .get(start..end)
        .ok_or_else(|| format!("RTP packet of {} bytes has no payload", rtp.len()))?;
    let mut pos = 0;
    let mut total = 0;
    while pos + 4 <= payload.len() {
        let flags = payload.get(pos).copied().unwrap_or(0);
        let field = payload
            .get(pos + 1..pos + 4)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
            .unwrap_or(0);
        let head = 4 + 4 * ((flags & 0x38).count_ones() as usize);
        let left = payload
            .len()
            .checked_sub(pos + head)
            .ok_or("payload-format header cut short")?;
        if flags & 0x40 != 0 {
            if field < head {
                return Err(format!("x-asf-pf length {field} shorter than its header"));
            }
            total += (field - head).min(left);
            pos += field;
        } else {
            total += left;
            break;
        }
    }
    Ok(total)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Options,
    Describe,
    Setup(usize),
    Play,
    Playing,
}

/// One RTSP client.
#[derive(Debug)]
pub struct Rtsp {
    url: String,
    lower: Lower,
    stage: Stage,
    cseq: u32,
    session: Option<String>,
    described: Option<Described>,
    keepalive: Duration,
    next_keepalive: Option<Instant>,
    tail: Tail,
    pub media_bytes: u64,
    pub rtp_packets: u64,
    pub bad_rtp: u64,
    pub keepalives: u64,
}

impl Rtsp {
    pub fn new(url: &str, lower: Lower, keepalive: Duration) -> Self {
        Rtsp {
            url: url.to_string(),
            lower,
            stage: Stage::Options,
            cseq: 0,
            session: None,
            described: None,
            keepalive,
            next_keepalive: None,
            tail: Tail::default(),
            media_bytes: 0,
            rtp_packets: 0,
            bad_rtp: 0,
            keepalives: 0,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn playing(&self) -> bool {
        self.stage == Stage::Playing
    }

    fn request(&mut self, out: &mut Vec<u8>, method: &str, url: &str, extra: &[(&str, String)]) {
        self.cseq += 1;
        let mut r = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: {USER_AGENT}\r\n",
            self.cseq
        );
        if let Some(s) = &self.session {
            r.push_str(&format!("Session: {s}\r\n"));
        }
        for (n, v) in extra {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        r.push_str("\r\n");
        out.extend_from_slice(r.as_bytes());
    }

    /// OPTIONS, once the TCP connection is up.
    pub fn on_connected(&mut self, out: &mut Vec<u8>) {
        let url = self.url.clone();
        self.request(out, "OPTIONS", &url, &[]);
    }

    /// Server bytes of the RTSP connection in; the next request out.
    pub fn on_bytes(&mut self, data: &[u8], now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        let mut tail = std::mem::take(&mut self.tail);
        let r = tail.feed(data, frame_rtsp, |pdu| self.on_pdu(pdu, now, out));
        self.tail = tail;
        r
    }

    /// One RTP datagram on the client's RTP port (UDP).
    pub fn on_datagram(&mut self, rtp: &[u8]) {
        self.count(rtp);
    }

    /// Keep-alive, when due.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<u8>) {
        if self.next_keepalive.is_some_and(|t| now >= t) {
            let url = self.aggregate();
            self.request(out, "GET_PARAMETER", &url, &[]);
            self.keepalives += 1;
            self.next_keepalive = Some(now + self.keepalive);
        }
    }

    fn aggregate(&self) -> String {
        self.described
            .as_ref()
            .map_or_else(|| self.url.clone(), |d| d.aggregate.clone())
    }

    fn count(&mut self, rtp: &[u8]) {
        match asf_bytes(rtp) {
            Ok(n) => {
                self.media_bytes += n as u64;
                self.rtp_packets += 1;
            }
            Err(_) => self.bad_rtp += 1,
        }
    }

    fn fail(&self, what: String) -> Fault {
        if self.playing() {
            Fault::Framing(what)
        } else {
            Fault::Handshake(what)
        }
    }

    fn on_pdu(&mut self, pdu: &[u8], now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        match pdu.first() {
            Some(b'$') => {
                let channel = pdu.get(1).copied().unwrap_or(1);
                if channel % 2 == 0 {
                    self.count(pdu.get(4..).unwrap_or_default());
                }
                Ok(())
            }
            Some(b'\r' | b'\n') | None => Ok(()),
            Some(_) => {
                let reply = Reply::parse(pdu).map_err(|e| self.fail(e))?;
                self.on_reply(&reply, now, out)
            }
        }
    }

    fn setup(&mut self, i: usize, out: &mut Vec<u8>) -> Result<(), Fault> {
        let Some(url) = self
            .described
            .as_ref()
            .and_then(|d| d.tracks.get(i))
            .cloned()
        else {
            return Err(self.fail(format!("no track {i} to set up")));
        };
        let transport = match self.lower {
            Lower::Tcp => format!(
                "RTP/AVP/TCP;unicast;interleaved={}-{};mode=play",
                2 * i,
                2 * i + 1
            ),
            Lower::Udp { rtp_port } => format!(
                "RTP/AVP;unicast;client_port={rtp_port}-{};mode=play",
                rtp_port.saturating_add(1)
            ),
        };
        self.request(out, "SETUP", &url, &[("Transport", transport)]);
        self.stage = Stage::Setup(i);
        Ok(())
    }

    fn on_reply(&mut self, reply: &Reply, now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        if self.stage == Stage::Playing {
            // Keep-alive answers: FFmpeg does not check their status either.
            return Ok(());
        }
        if reply.status != 200 {
            return Err(self.fail(format!("{:?} answered {}", self.stage, reply.status)));
        }
        match self.stage {
            Stage::Options => {
                let url = self.url.clone();
                self.request(
                    out,
                    "DESCRIBE",
                    &url,
                    &[("Accept", "application/sdp".into())],
                );
                self.stage = Stage::Describe;
            }
            Stage::Describe => {
                let sdp = String::from_utf8_lossy(&reply.body);
                let d = describe(&sdp, &self.url, reply.header("Content-Base"));
                if d.tracks.is_empty() {
                    return Err(self.fail("SDP has no audio or video section".into()));
                }
                self.described = Some(d);
                self.setup(0, out)?;
            }
            Stage::Setup(i) => {
                if self.session.is_none() {
                    let id = reply
                        .header("Session")
                        .and_then(|s| s.split(';').next())
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| self.fail("SETUP reply without Session".into()))?;
                    self.session = Some(id.to_string());
                }
                let tcp_ok = reply
                    .header("Transport")
                    .is_some_and(|t| t.contains(&format!("interleaved={}-", 2 * i)));
                if self.lower == Lower::Tcp && !tcp_ok {
                    return Err(self.fail(format!(
                        "SETUP reply transport {:?}",
                        reply.header("Transport")
                    )));
                }
                let more = self
                    .described
                    .as_ref()
                    .is_some_and(|d| i + 1 < d.tracks.len());
                if more {
                    self.setup(i + 1, out)?;
                } else {
                    let url = self.aggregate();
                    self.request(out, "PLAY", &url, &[("Range", "npt=0.000-".into())]);
                    self.stage = Stage::Play;
                }
            }
            Stage::Play => {
                self.stage = Stage::Playing;
                self.next_keepalive = Some(now + self.keepalive);
            }
            Stage::Playing => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asfcast::rtsp::rtp::{fragments, rtp_header};
    use proptest::prelude::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=demo\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
        a=control:rtsp://127.0.0.1:5540/demo\r\na=range:npt=0-\r\n\
        m=audio 0 RTP/AVP 96\r\na=rtpmap:96 x-asf-pf/1000\r\n\
        a=control:rtsp://127.0.0.1:5540/demo/stream=1\r\na=stream:1\r\n\
        m=video 0 RTP/AVP 96\r\na=rtpmap:96 x-asf-pf/1000\r\n\
        a=control:rtsp://127.0.0.1:5540/demo/stream=2\r\na=stream:2\r\n\
        m=application 0 RTP/AVP 96\r\na=rtpmap:96 x-wms-rtx/1000\r\n\
        a=control:rtsp://127.0.0.1:5540/demo/rtx\r\n";

    fn reply(status: u16, headers: &str, body: &str) -> Vec<u8> {
        let len = if body.is_empty() {
            String::new()
        } else {
            format!("Content-Length: {}\r\n", body.len())
        };
        format!("RTSP/1.0 {status} X\r\nServer: WMServer/9.1.1.5001\r\n{headers}{len}\r\n{body}")
            .into_bytes()
    }

    /// An x-asf-pf RTP packet of one whole ASF packet of `len` bytes.
    fn rtp_whole(len: usize) -> Vec<u8> {
        let f = fragments(len, true, 65_000).unwrap();
        let mut p = rtp_header(true, 1, 0, 7).to_vec();
        p.extend_from_slice(&f[0].pf_header);
        p.resize(p.len() + len, 0xAB);
        p
    }

    fn interleaved(channel: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![b'$', channel];
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn requests(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .split("\r\n\r\n")
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn sdp_gives_aggregate_and_audio_video_controls_only() {
        let d = describe(SDP, "rtsp://127.0.0.1:5540/demo", None);
        assert_eq!(d.aggregate, "rtsp://127.0.0.1:5540/demo");
        assert_eq!(
            d.tracks,
            [
                "rtsp://127.0.0.1:5540/demo/stream=1",
                "rtsp://127.0.0.1:5540/demo/stream=2"
            ]
        );
        let rel = "v=0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=2\r\n";
        let d = describe(rel, "rtsp://h/s", Some("rtsp://h/s/"));
        assert_eq!(d.aggregate, "rtsp://h/s/");
        assert_eq!(d.tracks, ["rtsp://h/s/trackID=2"]);
    }

    #[test]
    fn tcp_sequence_then_interleaved_media_and_keepalives() {
        let t0 = Instant::now();
        let url = "rtsp://127.0.0.1:5540/demo";
        let mut c = Rtsp::new(url, Lower::Tcp, Duration::from_secs(20));
        let mut out = Vec::new();
        c.on_connected(&mut out);
        let replies = [
            reply(200, "CSeq: 1\r\nPublic: OPTIONS, GET_PARAMETER\r\n", ""),
            reply(200, "CSeq: 2\r\nContent-Type: application/sdp\r\n", SDP),
            reply(
                200,
                "CSeq: 3\r\nSession: 4711;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=play\r\n",
                "",
            ),
            reply(
                200,
                "CSeq: 4\r\nSession: 4711\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=play\r\n",
                "",
            ),
        ];
        for r in &replies {
            c.on_bytes(r, t0, &mut out).unwrap();
        }
        // The PLAY reply and media in one read.
        let mut last = reply(200, "CSeq: 5\r\nSession: 4711\r\nRange: npt=0.000-\r\n", "");
        last.extend(interleaved(0, &rtp_whole(1000)));
        last.extend(interleaved(1, &[0x80, 200, 0, 6, 0, 0, 0, 0]));
        last.extend(interleaved(2, &rtp_whole(3000)));
        c.on_bytes(&last, t0, &mut out).unwrap();
        assert!(c.playing());
        assert_eq!((c.media_bytes, c.rtp_packets, c.bad_rtp), (4000, 2, 0));
        let sent = requests(&out);
        let methods: Vec<&str> = sent.iter().map(|r| r.split(' ').next().unwrap()).collect();
        assert_eq!(methods, ["OPTIONS", "DESCRIBE", "SETUP", "SETUP", "PLAY"]);
        assert!(
            sent[2].starts_with("SETUP rtsp://127.0.0.1:5540/demo/stream=1 RTSP/1.0\r\nCSeq: 3")
        );
        assert!(sent[2].contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=play"));
        assert!(!sent[2].contains("Session:"));
        assert!(sent[3].contains("interleaved=2-3") && sent[3].contains("Session: 4711"));
        assert!(sent[4].starts_with("PLAY rtsp://127.0.0.1:5540/demo RTSP/1.0"));
        assert!(sent[4].contains("Range: npt=0.000-"));

        out.clear();
        c.on_tick(t0 + Duration::from_secs(19), &mut out);
        assert!(out.is_empty());
        c.on_tick(t0 + Duration::from_secs(20), &mut out);
        let ka = requests(&out);
        assert_eq!(ka.len(), 1);
        assert!(ka[0].starts_with("GET_PARAMETER rtsp://127.0.0.1:5540/demo RTSP/1.0\r\nCSeq: 6"));
        assert!(ka[0].contains("Session: 4711"));
        // Its answer arrives between frames and is not an error, whatever the status.
        let mut more = interleaved(0, &rtp_whole(10));
        more.extend(reply(454, "CSeq: 6\r\n", ""));
        more.extend(interleaved(0, &rtp_whole(10)));
        c.on_bytes(&more, t0, &mut out).unwrap();
        assert_eq!(c.media_bytes, 4020);
    }

    #[test]
    fn udp_setup_names_the_client_port_pair_and_counts_datagrams() {
        let t0 = Instant::now();
        let mut c = Rtsp::new(
            "rtsp://h/demo",
            Lower::Udp { rtp_port: 20000 },
            Duration::from_secs(20),
        );
        let mut out = Vec::new();
        c.on_connected(&mut out);
        c.on_bytes(&reply(200, "", ""), t0, &mut out).unwrap();
        c.on_bytes(&reply(200, "", SDP), t0, &mut out).unwrap();
        let udp = "Session: 9\r\nTransport: RTP/AVP;unicast;client_port=20000-20001;server_port=6970-6971\r\n";
        c.on_bytes(&reply(200, udp, ""), t0, &mut out).unwrap();
        c.on_bytes(&reply(200, udp, ""), t0, &mut out).unwrap();
        c.on_bytes(&reply(200, "Session: 9\r\n", ""), t0, &mut out)
            .unwrap();
        assert!(c.playing());
        let sent = requests(&out);
        assert_eq!(sent.len(), 5);
        for s in &sent[2..4] {
            assert!(
                s.contains("Transport: RTP/AVP;unicast;client_port=20000-20001;mode=play"),
                "{s}"
            );
        }
        c.on_datagram(&rtp_whole(1200));
        c.on_datagram(&[0x00, 1, 2]);
        assert_eq!((c.media_bytes, c.rtp_packets, c.bad_rtp), (1200, 1, 1));
    }

    #[test]
    fn refusals_fail_the_handshake() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut c = Rtsp::new("rtsp://h/nope", Lower::Tcp, Duration::from_secs(20));
        c.on_bytes(&reply(200, "", ""), t0, &mut out).unwrap();
        let e = c.on_bytes(&reply(404, "", ""), t0, &mut out).unwrap_err();
        assert_eq!(e, Fault::Handshake("Describe answered 404".into()));
        let mut c = Rtsp::new(
            "rtsp://h/demo",
            Lower::Udp { rtp_port: 2 },
            Duration::from_secs(20),
        );
        c.on_bytes(&reply(200, "", ""), t0, &mut out).unwrap();
        c.on_bytes(&reply(200, "", SDP), t0, &mut out).unwrap();
        let e = c.on_bytes(&reply(461, "", ""), t0, &mut out).unwrap_err();
        assert_eq!(e, Fault::Handshake("Setup(0) answered 461".into()));
        let mut c = Rtsp::new("rtsp://h/demo", Lower::Tcp, Duration::from_secs(20));
        let e = c
            .on_bytes(b"HTTP/1.0 200 OK\r\n\r\n", t0, &mut out)
            .unwrap_err();
        assert!(matches!(e, Fault::Handshake(_)));
        assert!(matches!(
            frame_rtsp(b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n"),
            Err(Fault::Framing(_))
        ));
    }

    #[test]
    fn asf_bytes_reads_fragments_units_and_optional_fields() {
        // Fragments (L = 0) of a 5000-byte packet at MTU 1450: the fragment bytes add up.
        let frags = fragments(5000, false, 1450).unwrap();
        let mut sum = 0;
        for f in &frags {
            let mut p = rtp_header(f.last, 1, 0, 7).to_vec();
            p.extend_from_slice(&f.pf_header);
            p.resize(p.len() + (f.end - f.start), 0);
            sum += asf_bytes(&p).unwrap();
        }
        assert_eq!(sum, 5000);
        // Two L units with R and I fields (4 + 8 header bytes each), CSRC, extension, padding.
        let mut p = vec![0x80 | 0x20 | 0x10 | 1, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        p.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0, 0, 0, 0]); // extension, 1 word
        for n in [100usize, 50] {
            let len = n + 12;
            p.extend_from_slice(&[0x40 | 0x20 | 0x08, 0, (len >> 8) as u8, len as u8]);
            p.extend_from_slice(&[0; 8]);
            p.resize(p.len() + n, 1);
        }
        p.extend_from_slice(&[0, 0, 3]); // padding of 3
        assert_eq!(asf_bytes(&p), Ok(150));
        assert!(asf_bytes(&[0x40; 20]).is_err(), "version 1");
        let mut short = rtp_header(true, 1, 0, 7).to_vec();
        short.extend_from_slice(&[0x40, 0, 0, 2]);
        assert!(asf_bytes(&short).is_err(), "length under the header size");
    }

    proptest! {
        #[test]
        fn replies_and_frames_split_anywhere_count_the_same(cut in 0usize..3000) {
            let mut all = reply(200, "Session: 1\r\n", "");
            all.extend(interleaved(0, &rtp_whole(1000)));
            all.extend(interleaved(2, &rtp_whole(700)));
            all.extend(reply(200, "CSeq: 9\r\n", "abc"));
            all.extend(interleaved(0, &rtp_whole(300)));
            let cut = cut % (all.len() + 1);
            let mut c = Rtsp::new("rtsp://h/demo", Lower::Tcp, Duration::from_secs(20));
            c.stage = Stage::Play;
            let mut out = Vec::new();
            let t0 = Instant::now();
            c.on_bytes(&all[..cut], t0, &mut out).unwrap();
            c.on_bytes(&all[cut..], t0, &mut out).unwrap();
            prop_assert!(c.playing());
            prop_assert_eq!(c.media_bytes, 2000);
            prop_assert_eq!(c.rtp_packets, 3);
        }
    }
}
