//! The RTSP session driven through whole exchanges shaped like FFmpeg's, GStreamer's and hostile
//! clients' (rtsp-wmsp.md §1), against the demo station: every response is checked for the
//! fields FFmpeg requires, and the RTP it sends is reassembled back into the station's packets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::asf::rewrite::strip_padding;
use crate::asf::{AsfReader, Packet};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::station::catalog::{AnnouncementCatalog, StationEntry};
use crate::station::feed::FeedConfig;
use crate::station::sink::{
    Datagram, Protocol, Session, Sink, StationView, Step, UdpChannel, UdpPorts,
};
use crate::station::{Station, StationHeader, StationPacket};

use super::session::{RtspConfig, RtspSession};

const URL: &str = "rtsp://127.0.0.1:8554/demo";

struct Fake {
    header: Arc<StationHeader>,
    backlog: Vec<Arc<StationPacket>>,
}

impl AnnouncementCatalog for Fake {
    fn stations(&self) -> Vec<StationEntry> {
        Vec::new()
    }
}

impl StationView for Fake {
    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        (station == "demo").then(|| self.header.clone())
    }
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        if station == "demo" {
            self.backlog.clone()
        } else {
            Vec::new()
        }
    }
    fn serves(&self, station: &str, protocol: Protocol) -> bool {
        station == "demo" && protocol == Protocol::Rtsp
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        self
    }
}

/// The demo station's header and all its packets (stripped, with clean flags).
fn demo() -> (Arc<StationHeader>, Vec<Arc<StationPacket>>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf");
    let mut r = AsfReader::open(&path).unwrap();
    let mut st = Station::new("demo", 10_000);
    let h = st.set_header(StationHeader::live(1, r.header(), r.data_head(), 1));
    let mut pkts = Vec::new();
    while let Some(p) = r.next_packet() {
        let s = strip_padding(&p.unwrap().parse().unwrap());
        pkts.push(st.push(s).unwrap());
    }
    (h, pkts)
}

fn cfg(allow_udp: bool, mtu: usize) -> RtspConfig {
    RtspConfig {
        allow_udp,
        mtu,
        request_max_bytes: 8192,
        handshake_timeout: Duration::from_secs(10),
        session_timeout: Duration::from_secs(60),
        feed: FeedConfig {
            backlog_limit: 4 << 20,
            fast_start_rate: 4.0,
            stall_timeout: Duration::from_secs(60),
        },
    }
}

const PORTS: UdpPorts = UdpPorts {
    mms_data: None,
    rtp: Some(6970),
    rtcp: Some(6971),
};

struct Client {
    s: RtspSession,
    view: Fake,
    now: Instant,
    cseq: u32,
    session: Option<String>,
    user_agent: &'static str,
}

impl Client {
    fn new(cfg: RtspConfig) -> Client {
        Client::seeded(cfg, 7, Instant::now())
    }

    /// A client whose session draws its ids from `seed`, at `now`.
    fn seeded(cfg: RtspConfig, seed: u64, now: Instant) -> Client {
        let (header, pkts) = demo();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        Client {
            s: RtspSession::new(cfg, peer, PORTS, StdRng::seed_from_u64(seed), now),
            // Join backlog: the first clean point's packets.
            view: Fake {
                header,
                backlog: pkts.into_iter().take(3).collect(),
            },
            now,
            cseq: 0,
            session: None,
            user_agent: "Lavf59.27.100",
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Step {
        self.s.on_bytes(bytes, self.now, &self.view)
    }

    fn take_out(&mut self) -> Vec<u8> {
        let q = self.s.output();
        let b: Vec<u8> = q
            .io_slices(usize::MAX)
            .iter()
            .flat_map(|s| s.to_vec())
            .collect();
        q.advance(b.len());
        b
    }

    /// Sends a request with CSeq (and Session once known); returns the step and the reply text
    /// (everything up to the end of the response; interleaved data after it stays returned).
    fn request(&mut self, method: &str, url: &str, headers: &str) -> (Step, String, Vec<u8>) {
        self.cseq += 1;
        let session = self
            .session
            .as_ref()
            .map(|s| format!("Session: {s}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: {}\r\n{session}{headers}\r\n",
            self.cseq, self.user_agent
        );
        let step = self.send_raw(req.as_bytes());
        let out = self.take_out();
        let (text, rest) = split_response(&out);
        assert!(
            text.contains(&format!("\r\nCSeq: {}\r\n", self.cseq)),
            "CSeq echoed: {text}"
        );
        assert!(text.contains("\r\nServer: WMServer/"), "{text}");
        if let Some(id) = header_value(&text, "Session") {
            let id = id.split(';').next().unwrap().to_string();
            self.session.get_or_insert(id);
        }
        (step, text, rest)
    }
}

/// Splits the first response (head + Content-Length body) from what follows it.
fn split_response(out: &[u8]) -> (String, Vec<u8>) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let body_len: usize = header_value(&head, "Content-Length")
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let total = (end + body_len).min(out.len());
    (
        String::from_utf8_lossy(&out[..total]).into_owned(),
        out[total..].to_vec(),
    )
}

fn header_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn status(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The RTP packets of one interleaved channel, in order.
fn on_channel(frames: &[(u8, Vec<u8>)], channel: u8) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|f| f.0 == channel)
        .map(|f| f.1.clone())
        .collect()
}

/// Interleaved frames as (channel, RTP packet).
fn frames(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        assert_eq!(b[0], b'$', "only interleaved frames after the reply");
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        out.push((b[1], b[4..4 + len].to_vec()));
        b = &b[4 + len..];
    }
    assert!(b.is_empty());
    out
}

/// Reassembles x-asf-pf RTP packets (one RTP session) as FFmpeg does; checks RTP basics.
fn reassemble(rtp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut done = Vec::new();
    let mut frag: Option<Vec<u8>> = None;
    let mut last_seq: Option<u16> = None;
    for p in rtp {
        assert_eq!(p[0], 0x80, "RTP v2");
        assert_eq!(p[1] & 0x7F, 96, "payload type");
        let marker = p[1] & 0x80 != 0;
        let seq = u16::from_be_bytes([p[2], p[3]]);
        if let Some(l) = last_seq {
            assert_eq!(seq, l.wrapping_add(1), "consecutive sequence numbers");
        }
        last_seq = Some(seq);
        let pl = &p[12..];
        let len_off = usize::from(pl[1]) << 16 | usize::from(pl[2]) << 8 | usize::from(pl[3]);
        let data = &pl[4..];
        if pl[0] & 0x40 != 0 {
            assert!(marker, "a whole packet ends an ASF packet");
            assert_eq!(len_off, data.len() + 4, "length counts the header");
            done.push(data.to_vec());
        } else {
            match &mut frag {
                Some(f) if f.len() == len_off => f.extend_from_slice(data),
                _ => {
                    assert_eq!(len_off, 0, "a fragment run starts at offset 0");
                    frag = Some(data.to_vec());
                }
            }
            if marker {
                done.extend(frag.take());
            }
        }
    }
    done
}

fn payload_streams(pkt: &[u8]) -> Vec<u8> {
    let mut s: Vec<u8> = Packet::parse(pkt)
        .unwrap()
        .payloads
        .iter()
        .map(|p| p.stream)
        .collect();
    s.sort();
    s.dedup();
    s
}

#[test]
fn options_and_describe_give_ffmpeg_what_it_needs() {
    let mut c = Client::new(cfg(true, 1450));
    let (step, r, _) = c.request("OPTIONS", URL, "");
    assert_eq!(step, Step::Continue);
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    let public = header_value(&r, "Public").unwrap();
    assert!(
        public.contains("GET_PARAMETER") && public.contains("SETUP"),
        "{r}"
    );
    assert!(header_value(&r, "Server").unwrap().starts_with("WMServer/"));

    let (_, r, _) = c.request("DESCRIBE", URL, "Accept: application/sdp\r\n");
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        header_value(&r, "Content-Type").as_deref(),
        Some("application/sdp")
    );
    assert_eq!(
        header_value(&r, "Content-Base").as_deref(),
        Some("rtsp://127.0.0.1:8554/demo/")
    );
    let body = &r[r.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        header_value(&r, "Content-Length").unwrap(),
        body.len().to_string()
    );
    // Parsed back with sdp-types, then the fields FFmpeg reads.
    let sdp = sdp_types::Session::parse(body.as_bytes()).unwrap();
    let pgmpu = sdp.get_first_attribute_value("pgmpu").unwrap().unwrap();
    let b64 = pgmpu
        .strip_prefix("data:application/vnd.ms.wms-hdr.asfv1;base64,")
        .expect("exact pgmpu prefix");
    use base64::Engine;
    let hdr = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        hdr, &*c.view.header.bytes,
        "the station header, Data head included"
    );
    assert_eq!(
        sdp.get_first_attribute_value("maxps").unwrap(),
        Some("3200")
    );
    assert_eq!(
        sdp.get_first_attribute_value("range").unwrap(),
        Some("npt=0-")
    );
    assert!(
        body.find("a=pgmpu").unwrap() < body.find("m=").unwrap(),
        "pgmpu at session level, before the media"
    );
    type Section<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let kinds: Vec<Section> = sdp
        .medias
        .iter()
        .map(|m| {
            (
                m.media.as_str(),
                m.get_first_attribute_value("rtpmap").flatten(),
                m.get_first_attribute_value("stream").flatten(),
                m.get_first_attribute_value("control").flatten(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "video",
                Some("96 x-asf-pf/1000"),
                Some("1"),
                Some("rtsp://127.0.0.1:8554/demo/stream=1")
            ),
            (
                "audio",
                Some("96 x-asf-pf/1000"),
                Some("2"),
                Some("rtsp://127.0.0.1:8554/demo/stream=2")
            ),
            (
                "application",
                Some("96 x-wms-rtx/1000"),
                None,
                Some("rtsp://127.0.0.1:8554/demo/rtx")
            ),
        ]
    );
    assert!(sdp
        .medias
        .iter()
        .all(|m| m.proto == "RTP/AVP" && m.fmt == "96"));
    assert!(
        body.lines().all(|l| l.len() < 16_000),
        "FFmpeg's SDP line buffer"
    );
}

#[test]
fn ffmpeg_tcp_session_delivers_each_stream_on_its_channel() {
    let mut c = Client::new(cfg(true, 1450));
    c.request("OPTIONS", URL, "");
    c.request("DESCRIBE", URL, "Accept: application/sdp\r\n");
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=play\r\n",
    );
    assert_eq!(status(&r), 200, "{r}");
    let t = header_value(&r, "Transport").unwrap();
    assert!(t.starts_with("RTP/AVP/TCP;unicast;interleaved=0-1"), "{t}");
    assert!(!t.contains(','), "exactly one transport");
    let session = header_value(&r, "Session").unwrap();
    assert!(session.ends_with(";timeout=60"), "{session}");
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=2"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=play\r\n",
    );
    assert_eq!(status(&r), 200, "{r}");
    assert!(header_value(&r, "Transport")
        .unwrap()
        .contains("interleaved=2-3"));

    let (_, r, rest) = c.request("PLAY", &format!("{URL}/"), "Range: npt=0.000-\r\n");
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(header_value(&r, "Range").as_deref(), Some("npt=0.000-"));
    let info = header_value(&r, "RTP-Info").unwrap();
    assert!(
        info.starts_with(&format!("url={URL}/stream=1;seq=")),
        "{info}"
    );
    assert!(
        info.contains(&format!(",url={URL}/stream=2;seq=")),
        "{info}"
    );
    let rtptime: u32 = info
        .split(';')
        .find_map(|kv| kv.strip_prefix("rtptime="))
        .and_then(|v| v.split(',').next())
        .unwrap()
        .parse()
        .unwrap();

    // The clean point goes at once; the rest of the backlog at the fast-start rate.
    let mut out = rest;
    c.now += Duration::from_secs(5);
    assert_eq!(c.s.on_timeout(c.now), Step::Continue);
    out.extend(c.take_out());
    let fr = frames(&out);
    let ch0 = on_channel(&fr, 0);
    let ch2 = on_channel(&fr, 2);
    assert!(fr.iter().all(|f| [0, 1, 2, 3].contains(&f.0)));
    // The first packet's timestamp is the one RTP-Info promised.
    assert_eq!(
        u32::from_be_bytes(ch0[0][4..8].try_into().unwrap()),
        rtptime
    );
    let video = reassemble(&ch0);
    let audio = reassemble(&ch2);
    assert!(!video.is_empty() && !audio.is_empty());
    assert!(
        video.iter().all(|p| payload_streams(p) == [1]),
        "channel 0 carries stream 1 only"
    );
    assert!(
        audio.iter().all(|p| payload_streams(p) == [2]),
        "channel 2 carries stream 2 only"
    );
    // Every payload of the backlog arrives exactly once across the two channels.
    let sent: usize = c
        .view
        .backlog
        .iter()
        .map(|p| Packet::parse(&p.bytes).unwrap().payloads.len())
        .sum();
    let got: usize = video
        .iter()
        .chain(&audio)
        .map(|p| Packet::parse(p).unwrap().payloads.len())
        .sum();
    assert_eq!(got, sent);
    // The key bit is set on the first video packet (the clean point).
    assert_eq!(ch0[0][12] & 0x80, 0x80);
    // RTCP sender reports went on the odd channels.
    assert!(fr.iter().any(|f| f.0 == 1 && f.1[1] == 200));

    // Keep-alive, then TEARDOWN closes.
    let (step, r, _) = c.request("GET_PARAMETER", &format!("{URL}/"), "");
    assert_eq!((step, status(&r)), (Step::Continue, 200));
    let (step, r, _) = c.request("TEARDOWN", &format!("{URL}/"), "");
    assert_eq!(status(&r), 200);
    assert!(matches!(step, Step::Close { .. }));
}

#[test]
fn ffmpeg_wms_udp_shares_one_rtp_session_and_fragments_by_mtu() {
    let mut c = Client::new(cfg(true, 1000));
    c.request("DESCRIBE", URL, "");
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/rtx"),
        "Transport: RTP/AVP/UDP;unicast;client_port=5000-5001;mode=play\r\n",
    );
    assert_eq!(status(&r), 200, "{r}");
    let t = header_value(&r, "Transport").unwrap();
    assert!(
        t.starts_with("RTP/AVP/UDP;unicast;client_port=5000-5001;server_port=6970-6971"),
        "{t}"
    );
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/UDP;unicast;client_port=5002;mode=play\r\n",
    );
    let t1 = header_value(&r, "Transport").unwrap();
    assert!(t1.contains(";client_port=5002;"), "echoed as sent: {t1}");
    // FFmpeg re-sends the echoed port for the next stream.
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=2"),
        "Transport: RTP/AVP/UDP;unicast;client_port=5002;mode=play\r\n",
    );
    let t2 = header_value(&r, "Transport").unwrap();
    let ssrc = |t: &str| {
        t.split(';')
            .find_map(|p| p.strip_prefix("ssrc="))
            .map(str::to_string)
    };
    assert_eq!(ssrc(&t1), ssrc(&t2), "one RTP session for both streams");
    let (_, r, rest) = c.request("PLAY", &format!("{URL}/"), "Range: npt=0.000-\r\n");
    assert_eq!(status(&r), 200);
    assert!(rest.is_empty(), "no media on the RTSP connection over UDP");
    c.now += Duration::from_secs(5);
    c.s.on_timeout(c.now);
    let mut dg: Vec<Datagram> = Vec::new();
    c.s.take_datagrams(&mut dg);
    let rtp: Vec<Vec<u8>> = dg
        .iter()
        .filter(|d| d.via == UdpChannel::Rtp)
        .map(|d| {
            assert_eq!(
                d.to,
                "127.0.0.1:5002".parse().unwrap(),
                "to the peer's address only"
            );
            d.to_vec()
        })
        .collect();
    assert!(rtp.iter().all(|p| p.len() <= 1000), "MTU respected");
    assert!(
        rtp.iter().any(|p| p[12] & 0x40 == 0),
        "3200-byte packets were fragmented"
    );
    let pkts = reassemble(&rtp);
    let expect: Vec<Vec<u8>> = c.view.backlog.iter().map(|p| p.bytes.to_vec()).collect();
    assert_eq!(pkts, expect, "the station's packets, whole and in order");
    let rtcp: Vec<&Datagram> = dg.iter().filter(|d| d.via == UdpChannel::Rtcp).collect();
    assert!(!rtcp.is_empty());
    assert!(rtcp
        .iter()
        .all(|d| d.to == "127.0.0.1:5003".parse().unwrap() && d.to_vec()[1] == 200));
    // Nothing goes to the RTX ports.
    assert!(dg
        .iter()
        .all(|d| d.to.port() != 5000 && d.to.port() != 5001));
}

#[test]
fn udp_refused_gets_461_then_tcp_on_the_same_connection() {
    let mut c = Client::new(cfg(false, 1450));
    c.request("DESCRIBE", URL, "");
    let (step, r, _) = c.request(
        "SETUP",
        &format!("{URL}/rtx"),
        "Transport: RTP/AVP/UDP;unicast;client_port=5000-5001;mode=play\r\n",
    );
    assert_eq!(step, Step::Continue);
    assert!(r.starts_with("RTSP/1.0 461 "), "{r}");
    assert!(header_value(&r, "Session").is_none(), "no session on 461");
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=play\r\n",
    );
    assert_eq!(status(&r), 200, "{r}");
    // Multicast and unknown profiles are refused the same way.
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=2"),
        "Transport: RTP/AVP;multicast;port=5000-5001\r\n",
    );
    assert_eq!(status(&r), 461);
}

#[test]
fn hostile_and_out_of_order_requests_get_clean_errors() {
    let mut c = Client::new(cfg(true, 1450));
    // No CSeq: 400 without CSeq, connection kept.
    let step = c.send_raw(b"OPTIONS rtsp://127.0.0.1/demo RTSP/1.0\r\n\r\n");
    assert_eq!(step, Step::Continue);
    let r = String::from_utf8(c.take_out()).unwrap();
    assert!(r.starts_with("RTSP/1.0 400 "), "{r}");
    assert!(!r.contains("\r\nCSeq:"), "{r}");
    // Unknown station, unknown stream, aggregate SETUP, PLAY before SETUP, bad session.
    let (_, r, _) = c.request("DESCRIBE", "rtsp://127.0.0.1:8554/nope", "");
    assert_eq!(status(&r), 404);
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=9"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    assert_eq!(status(&r), 404, "{r}");
    let (_, r, _) = c.request("SETUP", URL, "Transport: RTP/AVP/TCP;unicast\r\n");
    assert_eq!(status(&r), 459);
    let (_, r, _) = c.request("SETUP", &format!("{URL}/stream=1"), "");
    assert_eq!(status(&r), 400, "missing Transport: {r}");
    let (_, r, _) = c.request("PLAY", URL, "");
    assert_eq!(status(&r), 455);
    let (_, r, _) = c.request("PLAY", URL, "Session: 12345\r\n");
    assert_eq!(status(&r), 454);
    let (_, r, _) = c.request("RECORD", URL, "");
    assert_eq!(status(&r), 405);
    let (_, r, _) = c.request("FROB", URL, "");
    assert_eq!(status(&r), 501);
    let (_, r, _) = c.request("OPTIONS", URL, "Require: com.example.magic\r\n");
    assert_eq!(status(&r), 551);
    // An interleaved frame on a channel nobody set up is ignored.
    assert_eq!(c.send_raw(b"$\x07\x00\x04abcd"), Step::Continue);
    assert!(c.take_out().is_empty());
    let (_, r, _) = c.request("OPTIONS", URL, "");
    assert_eq!(status(&r), 200, "still serving after all that");

    // Garbage: 400 and close.
    let mut c = Client::new(cfg(true, 1450));
    let step = c.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n");
    assert!(matches!(step, Step::Close { .. }));
    assert!(String::from_utf8_lossy(&c.take_out()).starts_with("RTSP/1.0 400 "));
    // A 1 MB header: refused once past the bound, not buffered.
    let mut c = Client::new(cfg(true, 1450));
    let mut step = c.send_raw(b"DESCRIBE rtsp://127.0.0.1/demo RTSP/1.0\r\nCSeq: 1\r\nX-Big: ");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        if step != Step::Continue {
            break;
        }
        step = c.send_raw(&chunk);
    }
    assert!(matches!(step, Step::Close { .. }));
    assert!(String::from_utf8_lossy(&c.take_out()).starts_with("RTSP/1.0 413 "));
}

#[test]
fn silent_sessions_time_out_and_header_changes_are_judged() {
    let mut c = Client::new(cfg(true, 1450));
    // No request within the handshake timeout.
    let d = c.s.deadline().unwrap();
    assert_eq!(d, c.now + Duration::from_secs(10));
    assert!(matches!(c.s.on_timeout(d), Step::Close { .. }));

    let mut c = Client::new(cfg(true, 1450));
    c.request("DESCRIBE", URL, "");
    c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    c.request("PLAY", URL, "");
    // Keep-alives push the deadline; silence past the session timeout closes.
    c.now += Duration::from_secs(50);
    c.request("GET_PARAMETER", URL, "");
    assert_eq!(
        c.s.on_timeout(c.now + Duration::from_secs(59)),
        Step::Continue
    );
    assert!(matches!(
        c.s.on_timeout(c.now + Duration::from_secs(61)),
        Step::Close { .. }
    ));

    // The same header again (a playlist loop) continues; another layout closes.
    let mut c = Client::new(cfg(true, 1450));
    c.request("DESCRIBE", URL, "");
    let same = Arc::new(StationHeader {
        generation: 2,
        ..(*c.view.header).clone()
    });
    assert_eq!(c.s.on_header(&same, c.now), Step::Continue);
    let mut other = (*c.view.header).clone();
    other.header.streams.retain(|s| s.number != 2);
    other.bytes = Arc::from(other.header.to_bytes());
    assert!(matches!(
        c.s.on_header(&Arc::new(other), c.now),
        Step::Close { .. }
    ));
}

#[test]
fn gstreamer_gets_one_section_carrying_every_stream() {
    let mut c = Client::new(cfg(true, 1450));
    c.user_agent = "GStreamer/1.22.0";
    let (_, r, _) = c.request("DESCRIBE", URL, "Accept: application/sdp\r\n");
    assert_eq!(status(&r), 200, "{r}");
    let sdp = r.split("\r\n\r\n").nth(1).unwrap();
    let medias: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(medias, ["m=application 0 RTP/AVP 96"], "{sdp}");
    assert!(sdp.contains("a=rtpmap:96 x-asf-pf/1000\r\n"), "{sdp}");
    assert!(sdp.contains(&format!("a=control:{URL}/all\r\n")), "{sdp}");
    assert!(sdp.contains("a=pgmpu:data:application/vnd.ms.wms-hdr.asfv1;base64,"));
    assert!(sdp.contains("a=maxps:"), "{sdp}");
    assert!(!sdp.contains("x-wms-rtx"), "{sdp}");

    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/all"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    assert_eq!(status(&r), 200, "{r}");
    let (_, r, mut out) = c.request("PLAY", URL, "");
    assert_eq!(status(&r), 200, "{r}");
    assert!(header_value(&r, "RTP-Info")
        .unwrap()
        .starts_with(&format!("url={URL}/all;seq=")));
    c.now += Duration::from_secs(5);
    c.s.on_timeout(c.now);
    out.extend(c.take_out());
    let pkts = reassemble(&on_channel(&frames(&out), 0));
    // The backlog goes out whole, every stream in the one session.
    assert_eq!(pkts.len(), c.view.backlog.len());
    let mut streams: Vec<u8> = pkts.iter().flat_map(|p| payload_streams(p)).collect();
    streams.sort_unstable();
    streams.dedup();
    assert_eq!(streams, [1, 2]);
}

#[test]
fn only_the_streams_set_up_are_sent() {
    let mut c = Client::new(cfg(true, 1450));
    c.request("DESCRIBE", URL, "");
    c.request(
        "SETUP",
        &format!("{URL}/stream=2"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    let (_, r, mut out) = c.request("PLAY", URL, "");
    assert_eq!(status(&r), 200);
    c.now += Duration::from_secs(5);
    c.s.on_timeout(c.now);
    out.extend(c.take_out());
    let pkts = reassemble(&on_channel(&frames(&out), 0));
    assert!(!pkts.is_empty());
    assert!(pkts.iter().all(|p| payload_streams(p) == [2]), "audio only");
}

#[test]
fn a_tcp_client_that_stops_reading_skips_then_is_closed() {
    let mut config = cfg(true, 1450);
    config.feed.backlog_limit = 16 * 1024;
    config.feed.stall_timeout = Duration::from_secs(10);
    config.session_timeout = Duration::from_secs(600);
    let (_, all) = demo();
    let mut c = Client::new(config);
    c.request("DESCRIBE", URL, "");
    c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    c.request("PLAY", URL, "");
    // Live packets arrive every 40 ms; the client never reads, so the queue only grows.
    let mut closed = None;
    for (i, p) in all.iter().cycle().skip(3).take(2000).enumerate() {
        let p = Arc::new(StationPacket {
            seq: 10_000 + i as u64,
            ..(**p).clone()
        });
        c.now += Duration::from_millis(40);
        if let Step::Close { reason } = c.s.on_packet(&p, c.now) {
            closed = Some((i, reason));
            break;
        }
    }
    let (i, reason) = closed.expect("a stalled client is closed");
    assert!(reason.contains("stalled"), "{reason}");
    // Bounded: it queued little more than the backlog limit before skipping.
    assert!(
        c.s.output().queued_bytes() < 64 * 1024,
        "{}",
        c.s.output().queued_bytes()
    );
    assert!(i * 40 >= 10_000, "not before the stall timeout");
}

/// The same seed, clock and requests give the same bytes (session id, SSRC, first sequence
/// numbers included): a session can be replayed; another seed gives other ids.
#[test]
fn a_seeded_session_replays_byte_for_byte() {
    let t0 = Instant::now();
    let run = |seed: u64| {
        let mut c = Client::seeded(cfg(true, 1400), seed, t0);
        let url = "rtsp://127.0.0.1:8554/demo";
        let mut all = Vec::new();
        for (m, u, h) in [
            ("OPTIONS", url.to_string(), String::new()),
            ("DESCRIBE", url.to_string(), String::new()),
            (
                "SETUP",
                format!("{url}/stream=1"),
                "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n".to_string(),
            ),
            ("PLAY", url.to_string(), String::new()),
        ] {
            let (_, text, rest) = c.request(m, &u, &h);
            all.extend_from_slice(text.as_bytes());
            all.extend_from_slice(&rest);
        }
        (all, c.session.clone())
    };
    let (a, id_a) = run(1);
    let (b, _) = run(1);
    assert_eq!(a, b);
    assert!(id_a.is_some());
    let (_, id_c) = run(2);
    assert_ne!(id_a, id_c);
}

/// What `f` logs at INFO and above, as text lines (the daemon's format, without colours).
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    text
}

/// A receiver report from `receiver` about `ssrc` (RR with one block, then SDES), as FFmpeg
/// sends: `fraction`/256 lost, `lost` in all, `jitter` in RTP units.
fn receiver_report(ssrc: u32, fraction: u8, lost: u32, jitter: u32) -> Vec<u8> {
    let mut b = vec![0x81, 201, 0, 7, 0x12, 0x34, 0x56, 0x78];
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&((u32::from(fraction) << 24) | (lost & 0xFF_FFFF)).to_be_bytes());
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend_from_slice(&jitter.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&[0x81, 202, 0, 2, 0x12, 0x34, 0x56, 0x78, 1, 1, b'x', 0]);
    b
}

/// A client playing stream 1 over UDP to ports 5002-5003; returns it and the SSRC.
fn udp_player() -> (Client, u32) {
    let mut c = Client::new(cfg(true, 1450));
    c.request("DESCRIBE", URL, "");
    let (_, r, _) = c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/UDP;unicast;client_port=5002-5003;mode=play\r\n",
    );
    let t = header_value(&r, "Transport").unwrap();
    let ssrc = t
        .split(';')
        .find_map(|p| p.strip_prefix("ssrc="))
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .unwrap();
    let (_, r, _) = c.request("PLAY", URL, "");
    assert_eq!(status(&r), 200, "{r}");
    (c, ssrc)
}

const RTCP_FROM: &str = "127.0.0.1:5003";

#[test]
fn udp_receiver_reports_keep_the_session_alive_and_their_figures_end_it() {
    let (mut c, ssrc) = udp_player();
    let rtcp_from: SocketAddr = RTCP_FROM.parse().unwrap();
    assert_eq!(
        c.s.udp_peers(),
        ["127.0.0.1:5002".parse().unwrap(), rtcp_from],
        "the client's RTP and RTCP ports are routed to the session"
    );
    let played = c.now;
    c.now += Duration::from_secs(5);
    assert_eq!(c.s.on_timeout(c.now), Step::Continue);
    // A receiver report 50 s in counts as a keep-alive: no RTSP request for 61 s is fine.
    c.now = played + Duration::from_secs(50);
    let rr = receiver_report(ssrc, 64, 3, 12);
    assert_eq!(
        c.s.on_datagram(UdpChannel::Rtcp, rtcp_from, &rr, c.now),
        Step::Continue
    );
    assert_eq!(
        c.s.on_timeout(played + Duration::from_secs(61)),
        Step::Continue
    );
    // Garbage and a truncated report are counted; a report about another source (still
    // proof of life) leaves the figures alone.
    for junk in [
        &b"\x16\x03\x01junk"[..],
        &rr[..20],
        &receiver_report(ssrc ^ 1, 255, 999, 1),
    ] {
        assert_eq!(
            c.s.on_datagram(UdpChannel::Rtcp, rtcp_from, junk, c.now),
            Step::Continue
        );
    }
    // Garbage is no proof of life.
    let late = played + Duration::from_secs(80);
    c.s.on_datagram(UdpChannel::Rtcp, rtcp_from, b"\x80\xc9\x00", late);
    // Without more reports the session times out 60 s after the last one…
    let step = c.s.on_timeout(played + Duration::from_secs(111));
    assert!(matches!(step, Step::Close { .. }), "{step:?}");
    // …and its end line carries the last report's figures.
    let log = logged(|| drop(c));
    let line = log
        .lines()
        .find(|l| l.contains("rtsp session ended"))
        .unwrap_or_else(|| panic!("no end line in {log:?}"));
    for want in [
        "transport=\"udp\"",
        "end=\"timeout\"",
        "receiver_reports=1",
        "fraction_lost=0.250",
        "cumulative_lost=3",
        "jitter_ms=12",
        "bad_rtcp=3",
    ] {
        assert!(line.contains(want), "{want} in {line}");
    }
    let packets: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("packets="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(packets > 0, "{line}");
}

#[test]
fn an_rtcp_bye_ends_delivery_and_a_session_that_never_played_logs_no_end() {
    let (mut c, ssrc) = udp_player();
    let rtcp_from: SocketAddr = RTCP_FROM.parse().unwrap();
    c.now += Duration::from_secs(2);
    c.s.on_timeout(c.now);
    let mut dg = Vec::new();
    c.s.take_datagrams(&mut dg);
    assert!(!dg.is_empty(), "playing");
    let mut bye = receiver_report(ssrc, 0, 0, 0);
    bye.extend_from_slice(&[0x81, 203, 0, 1, 0x12, 0x34, 0x56, 0x78]);
    assert_eq!(
        c.s.on_datagram(UdpChannel::Rtcp, rtcp_from, &bye, c.now),
        Step::Continue
    );
    for p in c.view.backlog.clone() {
        assert_eq!(c.s.on_packet(&p, c.now), Step::Continue);
    }
    c.now += Duration::from_secs(10);
    c.s.on_timeout(c.now);
    dg.clear();
    c.s.take_datagrams(&mut dg);
    assert!(
        dg.is_empty(),
        "nothing sent after BYE: {} datagrams",
        dg.len()
    );
    let log = logged(|| drop(c));
    assert!(log.contains("end=\"rtcp bye\""), "{log}");

    let mut c = Client::new(cfg(true, 1450));
    c.request("DESCRIBE", URL, "");
    let log = logged(|| drop(c));
    assert!(!log.contains("rtsp session ended"), "{log}");
}

#[test]
fn set_parameter_stream_switch_thins_and_refuses_bad_entries() {
    let mut c = Client::new(cfg(true, 1450));
    c.request("DESCRIBE", URL, "");
    c.request(
        "SETUP",
        &format!("{URL}/stream=1"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    c.request(
        "SETUP",
        &format!("{URL}/stream=2"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n",
    );
    let (_, r, _) = c.request("PLAY", URL, "");
    assert_eq!(status(&r), 200);
    let mut switch = |body: &str| -> u16 {
        c.cseq += 1;
        let req = format!(
            "SET_PARAMETER {URL}/stream=1 RTSP/1.0\r\nCSeq: {}\r\nSession: {}\r\n\
             Content-Type: application/x-wms-streamswitch\r\nContent-Length: {}\r\n\r\n{body}",
            c.cseq,
            c.session.clone().unwrap(),
            body.len()
        );
        c.send_raw(req.as_bytes());
        let out = c.take_out();
        let text = String::from_utf8_lossy(&out);
        let at = text.find("RTSP/1.0 ").expect("a reply");
        text[at + 9..at + 12].parse().unwrap()
    };
    // Unknown streams, garbage, out-of-range numbers: 400, the session goes on.
    for bad in [
        "SSEntry: 1 9 0\r\n",
        "SSEntry: x\r\n",
        "nothing",
        "SSEntry: 1 1 5\r\n",
    ] {
        assert_eq!(switch(bad), 400, "{bad:?}");
    }
    // Thinning asked on audio: applied to nothing (audio is never thinned).
    assert_eq!(switch("SSEntry: 2 2 1\r\n"), 200);
    // Video to key frames only.
    assert_eq!(
        switch("SSEntry: 1 1 1 rtsp://127.0.0.1/demo/stream=1\r\n"),
        200
    );
    c.take_out();
    let (_, pkts) = demo();
    for p in &pkts {
        let mut q = (**p).clone();
        q.seq += 100_000;
        c.s.on_packet(&Arc::new(q), c.now);
        c.now += Duration::from_millis(40);
    }
    let out = c.take_out();
    let video = reassemble(&on_channel(&frames(&out), 0));
    let audio = reassemble(&on_channel(&frames(&out), 2));
    let keys: Vec<bool> = video
        .iter()
        .flat_map(|p| {
            Packet::parse(p)
                .unwrap()
                .payloads
                .iter()
                .filter(|pl| pl.stream == 1)
                .map(|pl| pl.key_frame)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|&k| k),
        "video thinned to key frames"
    );
    assert!(audio.len() > 50, "audio flows whole: {}", audio.len());
}

#[test]
fn sessions_sharing_the_daemon_cache_encode_a_header_once_and_a_new_header_anew() {
    use super::sdp_cache::SdpCache;
    use base64::Engine;
    let pgmpu_of = |r: &str| {
        let sdp = r.split("\r\n\r\n").nth(1).unwrap();
        let b64 = sdp
            .lines()
            .find_map(|l| l.strip_prefix("a=pgmpu:data:application/vnd.ms.wms-hdr.asfv1;base64,"))
            .unwrap_or_else(|| panic!("no pgmpu in {sdp}"));
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let cache = SdpCache::shared();
    // A client of the station as it is now, its session on the shared cache.
    let client = |header: &Arc<StationHeader>, seed: u64| {
        let mut c = Client::seeded(cfg(true, 1450), seed, Instant::now());
        c.view.header = header.clone();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        c.s = RtspSession::new(
            cfg(true, 1450),
            peer,
            PORTS,
            StdRng::seed_from_u64(seed),
            c.now,
        )
        .with_sdp_cache(cache.clone());
        c
    };
    let old = demo().0;
    for seed in 0..3 {
        let mut c = client(&old, seed);
        let (_, r, _) = c.request("DESCRIBE", URL, "");
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(pgmpu_of(&r), old.bytes.to_vec());
    }
    assert_eq!(cache.borrow().encoded(), 1);

    // The station's header changes (one stream fewer: new bytes, next generation); the old
    // one is still alive.
    let mut new = (*old).clone();
    new.generation = 2;
    new.header.streams.retain(|s| s.number != 2);
    new.bytes = Arc::from(new.header.to_bytes());
    let new = Arc::new(new);
    let mut c = client(&new, 9);
    let (_, r, _) = c.request("DESCRIBE", URL, "");
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(pgmpu_of(&r), new.bytes.to_vec());
    assert_ne!(pgmpu_of(&r), old.bytes.to_vec());
    assert!(!r.contains("a=stream:2\r\n"), "{r}");
    assert_eq!(cache.borrow().encoded(), 2);
}
