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
//!
//! The bytes are the daemon's own: requests are written and replies parsed by
//! `asfcast::rtsp::message` (on `rtsp-types`, as the server reads its requests), interleaved
//! prefixes read and x-asf-pf payloads measured by `asfcast::rtsp::rtp`, the receiving side of
//! the packetizer the server sends with. What is left here is the client's sequence and the
//! SDP control resolution.

use std::time::{Duration, Instant};

use asfcast::rtsp::message::{parse_reply, request_bytes};
use asfcast::rtsp::rtp::{asf_bytes, parse_interleaved};
use rtsp_types::{headers, HeaderName, Method, Response};

use super::core::{Continuity, Fault, Frame, Tail};

/// Longest reply accepted, head and body (the SDP carries the ASF header in base64).
const MAX_REPLY: usize = 64 * 1024 + (1 << 20);
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

/// Frames the server's stream: `$` + channel + 16-bit length + data, a stray line end, or a
/// reply (head and `Content-Length` body, bounded by [`MAX_REPLY`]).
pub fn frame_rtsp(b: &[u8]) -> Result<Frame, Fault> {
    match b.first() {
        None => Ok(Frame::Partial),
        Some(b'$') => Ok(match parse_interleaved(b) {
            Some((_, len)) if b.len() >= 4 + len => Frame::Whole(4 + len),
            _ => Frame::Partial,
        }),
        Some(b'\r' | b'\n') => Ok(Frame::Whole(1)),
        Some(_) => match parse_reply(b, MAX_REPLY) {
            Ok(Some((_, n))) => Ok(Frame::Whole(n)),
            Ok(None) => Ok(Frame::Partial),
            Err(e) => Err(Fault::Framing(format!("reply: {e}"))),
        },
    }
}

/// The ASF stream numbers of the SDP's `m=video` sections (`a=stream:N`).
pub fn video_streams(sdp: &str) -> Vec<u8> {
    let mut video = false;
    let mut out = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            video = m.starts_with("video");
        } else if let Some(n) = line.strip_prefix("a=stream:") {
            if let (true, Ok(n)) = (video, n.trim().parse::<u8>()) {
                out.push(n);
            }
        }
    }
    out
}

/// An RTP packet's payload (after CSRCs, extension and padding), marker bit and SSRC.
fn rtp_payload(rtp: &[u8]) -> Option<(&[u8], bool, u32)> {
    let first = *rtp.first()?;
    let marker = rtp.get(1)? & 0x80 != 0;
    let ssrc = u32::from_be_bytes(rtp.get(8..12)?.try_into().ok()?);
    let mut start = 12 + 4 * usize::from(first & 0x0F);
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes(rtp.get(start + 2..start + 4)?.try_into().ok()?);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = rtp.len();
    if first & 0x20 != 0 {
        end = end.checked_sub(usize::from(*rtp.last()?))?;
    }
    Some((rtp.get(start..end)?, marker, ssrc))
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
    /// Until the first video key frame (streams from the SDP).
    pub key: crate::keyframe::KeyWatch,
    /// x-asf-pf reassembly per SSRC while watching for it.
    frags: Vec<(u32, Vec<u8>)>,
    keepalive: Duration,
    next_keepalive: Option<Instant>,
    tail: Tail,
    pub media_bytes: u64,
    pub rtp_packets: u64,
    pub bad_rtp: u64,
    pub keepalives: u64,
    /// Sequence numbers per RTP session (SSRC): a jump is a packet lost on the way (UDP) or
    /// never sent.
    pub sequences: Vec<(u32, Continuity)>,
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
            key: Default::default(),
            frags: Vec::new(),
            keepalive,
            next_keepalive: None,
            tail: Tail::default(),
            media_bytes: 0,
            rtp_packets: 0,
            bad_rtp: 0,
            keepalives: 0,
            sequences: Vec::new(),
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn playing(&self) -> bool {
        self.stage == Stage::Playing
    }

    fn request(
        &mut self,
        out: &mut Vec<u8>,
        method: Method,
        url: &str,
        extra: Vec<(HeaderName, String)>,
    ) -> Result<(), Fault> {
        self.cseq += 1;
        let mut h = vec![(headers::USER_AGENT, USER_AGENT.to_string())];
        if let Some(s) = &self.session {
            h.push((headers::SESSION, s.clone()));
        }
        h.extend(extra);
        let r = request_bytes(method, url, self.cseq, &h).map_err(|e| self.fail(e.to_string()))?;
        out.extend_from_slice(&r);
        Ok(())
    }

    /// OPTIONS, once the TCP connection is up.
    pub fn on_connected(&mut self, out: &mut Vec<u8>) -> Result<(), Fault> {
        let url = self.url.clone();
        self.request(out, Method::Options, &url, Vec::new())
    }

    /// Server bytes of the RTSP connection in; the next request out. Bytes that cannot be
    /// framed fail the handshake before media, the framing after.
    pub fn on_bytes(&mut self, data: &[u8], now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        let mut tail = std::mem::take(&mut self.tail);
        let r = tail.feed(data, frame_rtsp, |pdu| self.on_pdu(pdu, now, out));
        self.tail = tail;
        r.map_err(|f| match f {
            Fault::Framing(e) => self.fail(e),
            f => f,
        })
    }

    /// One RTP datagram on the client's RTP port (UDP).
    pub fn on_datagram(&mut self, rtp: &[u8]) {
        self.count(rtp);
    }

    /// Keep-alive, when due.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<(), Fault> {
        if self.next_keepalive.is_some_and(|t| now >= t) {
            let url = self.aggregate();
            self.request(out, Method::GetParameter, &url, Vec::new())?;
            self.keepalives += 1;
            self.next_keepalive = Some(now + self.keepalive);
        }
        Ok(())
    }

    /// Hands an RTP packet's x-asf-pf payload to the key-frame watch (reassembled per SSRC).
    fn watch_key(&mut self, rtp: &[u8]) {
        let Some((payload, marker, ssrc)) = rtp_payload(rtp) else {
            return;
        };
        let i = match self.frags.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None => {
                self.frags.push((ssrc, Vec::new()));
                self.frags.len() - 1
            }
        };
        if let Some((_, frag)) = self.frags.get_mut(i) {
            self.key.pf_payload(payload, marker, frag);
        }
        if !self.key.wants() {
            self.frags = Vec::new();
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
                if self.key.wants() {
                    self.watch_key(rtp);
                }
                self.media_bytes += n as u64;
                self.rtp_packets += 1;
                if let (Some(&[s0, s1]), Some(&[a, b, c, d])) = (rtp.get(2..4), rtp.get(8..12)) {
                    let ssrc = u32::from_be_bytes([a, b, c, d]);
                    let seq = u32::from(u16::from_be_bytes([s0, s1]));
                    match self.sequences.iter_mut().find(|(s, _)| *s == ssrc) {
                        Some((_, c)) => {
                            c.next(seq);
                        }
                        None => {
                            let mut c = Continuity::new(16);
                            c.next(seq);
                            self.sequences.push((ssrc, c));
                        }
                    }
                }
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
            Some(_) => match parse_reply(pdu, MAX_REPLY) {
                Ok(Some((reply, _))) => self.on_reply(&reply, now, out),
                Ok(None) => Err(self.fail("reply cut short".into())),
                Err(e) => Err(self.fail(format!("reply: {e}"))),
            },
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
        self.request(
            out,
            Method::Setup,
            &url,
            vec![(headers::TRANSPORT, transport)],
        )?;
        self.stage = Stage::Setup(i);
        Ok(())
    }

    fn on_reply(
        &mut self,
        reply: &Response<Vec<u8>>,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if self.stage == Stage::Playing {
            // Keep-alive answers: FFmpeg does not check their status either.
            return Ok(());
        }
        let status = u16::from(reply.status());
        if status != 200 {
            return Err(self.fail(format!("{:?} answered {status}", self.stage)));
        }
        let header = |name: &HeaderName| reply.header(name).map(|v| v.as_str());
        match self.stage {
            Stage::Options => {
                let url = self.url.clone();
                let accept = vec![(headers::ACCEPT, "application/sdp".to_string())];
                self.request(out, Method::Describe, &url, accept)?;
                self.stage = Stage::Describe;
            }
            Stage::Describe => {
                let sdp = String::from_utf8_lossy(reply.body());
                let d = describe(&sdp, &self.url, header(&headers::CONTENT_BASE));
                self.key.video_streams(video_streams(&sdp));
                if d.tracks.is_empty() {
                    return Err(self.fail("SDP has no audio or video section".into()));
                }
                self.described = Some(d);
                self.setup(0, out)?;
            }
            Stage::Setup(i) => {
                if self.session.is_none() {
                    let id = header(&headers::SESSION)
                        .and_then(|s| s.split(';').next())
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| self.fail("SETUP reply without Session".into()))?;
                    self.session = Some(id.to_string());
                }
                let tcp_ok = header(&headers::TRANSPORT)
                    .is_some_and(|t| t.contains(&format!("interleaved={}-", 2 * i)));
                if self.lower == Lower::Tcp && !tcp_ok {
                    return Err(self.fail(format!(
                        "SETUP reply transport {:?}",
                        header(&headers::TRANSPORT)
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
                    let range = vec![(headers::RANGE, "npt=0.000-".to_string())];
                    self.request(out, Method::Play, &url, range)?;
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
        c.on_connected(&mut out).unwrap();
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
        c.on_tick(t0 + Duration::from_secs(19), &mut out).unwrap();
        assert!(out.is_empty());
        c.on_tick(t0 + Duration::from_secs(20), &mut out).unwrap();
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
        c.on_connected(&mut out).unwrap();
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
        // rtp_whole numbers its packets 1 on SSRC 7: a second 1 is a jump (expected 2).
        c.on_datagram(&rtp_whole(10));
        assert_eq!(c.sequences.len(), 1);
        assert_eq!(c.sequences[0].1.last_jump, Some((2, 1)));
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
        // A reply longer than the bound is refused once that much is buffered.
        let mut huge = b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n".to_vec();
        assert_eq!(frame_rtsp(&huge), Ok(Frame::Partial));
        huge.resize(MAX_REPLY + 1, b'x');
        assert!(matches!(frame_rtsp(&huge), Err(Fault::Framing(_))));
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
