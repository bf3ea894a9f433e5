//! Golden captures: what real players sent to asfcast, recorded once with tshark by
//! `tests/golden/record`, replayed here against the sans-I/O session cores.
//!
//! Why: the integration tests in `tests/` need the players installed and take seconds each, so
//! they run rarely; these run in milliseconds under `cargo nextest run --lib` and fail as soon
//! as a change breaks the exact byte sequence a real client sends or needs answered.
//!
//! Each recorded connection (`tests/golden/<client>.<n>.client.bin`, its segments and their
//! times in `<client>.json`) is fed to a fresh session core with a fake station of demo.asf
//! whose packets arrive at the file's rate:
//! - segment by segment at the recorded times: every request is answered, in order, with what
//!   [MS-MMSP], [MS-WMSP] and RTSP require; the session does not close before the client's last
//!   segment; media flows after the play command;
//! - the same segments byte by byte at the same times: exactly the same output;
//! - the whole connection in one read: the same replies in the same order.
//!
//! The control part of the server's output in the first replay (every MMS command PDU and the
//! 8-byte head of each data PDU; every HTTP and RTSP response whole; the framing heads of MMSH
//! chunks and of interleaved RTP/RTCP) is deterministic given the recording, the RNG seed and
//! the fake clock, and must equal `tests/golden/<client>.<n>.server-expected.bin`. Run with
//! `ASFCAST_BLESS=1` to rewrite those files after an intended change (tests/golden/README.md).
//!
//! RTSP: the recorded client echoes the session id the recording daemon drew; the replay swaps
//! it for the id the seeded session drew (same length, so segment sizes hold).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Deserialize;

use crate::asf::rewrite::strip_padding;
use crate::asf::AsfReader;
use crate::http::mmsh::stream::StreamConfig;
use crate::http::mmsh::{ChunkReader, ChunkType};
use crate::http::session::{HttpSession, SessionLimits};
use crate::mms::codec::{cmd, report, SESSION_ID};
use crate::mms::session::{MmsConfig, MmsSession};
use crate::rtsp::session::{RtspConfig, RtspSession};
use crate::station::catalog::{AnnouncementCatalog, StationEntry};
use crate::station::feed::FeedConfig;
use crate::station::sink::{Datagram, Protocol, Session, StationView, Step, UdpPorts};
use crate::station::{Station, StationHeader, StationPacket};

/// Packets of demo.asf the station has produced when the client connects (a clean point and
/// a fast-start backlog are in the ring).
const JOINED_AT: usize = 40;
/// How long the replay goes on after the client's last segment, for media to flow.
const TAIL_MS: u64 = 1500;
/// Seed of every RTSP session's RNG.
const SEED: u64 = 7;
const UDP_PORTS: UdpPorts = UdpPorts {
    mms_data: Some(1755),
    rtp: Some(6970),
    rtcp: Some(6971),
};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

// ---------------------------------------------------------------------------
// Recordings

#[derive(Debug, Deserialize)]
struct Recording {
    client: String,
    version: String,
    command: String,
    connections: Vec<ConnMeta>,
}

#[derive(Debug, Deserialize)]
struct ConnMeta {
    file: String,
    server_port: u16,
    /// `[ms since the connection's first segment, bytes]` per segment, in order.
    segments: Vec<(u64, usize)>,
}

/// One recorded connection: its segments with their times.
struct Conn {
    file: String,
    server_port: u16,
    segments: Vec<(u64, Vec<u8>)>,
}

impl Conn {
    fn bytes(&self) -> Vec<u8> {
        self.segments.iter().flat_map(|(_, b)| b.clone()).collect()
    }
}

fn load(client: &str) -> (Recording, Vec<Conn>) {
    let dir = golden_dir();
    let meta = std::fs::read_to_string(dir.join(format!("{client}.json")))
        .unwrap_or_else(|e| panic!("{client}.json: {e} (record it with tests/golden/record)"));
    let rec: Recording = serde_json::from_str(&meta).unwrap();
    assert_eq!(rec.client, client);
    assert!(
        !rec.connections.is_empty(),
        "{client}: no connection recorded"
    );
    let conns = rec
        .connections
        .iter()
        .map(|c| {
            let bytes = std::fs::read(dir.join(&c.file)).unwrap();
            let total: usize = c.segments.iter().map(|s| s.1).sum();
            assert_eq!(total, bytes.len(), "{}: segments vs file size", c.file);
            let mut at = 0;
            let segments = c
                .segments
                .iter()
                .map(|&(ms, len)| {
                    at += len;
                    (ms, bytes[at - len..at].to_vec())
                })
                .collect();
            Conn {
                file: c.file.clone(),
                server_port: c.server_port,
                segments,
            }
        })
        .collect();
    (rec, conns)
}

// ---------------------------------------------------------------------------
// The fake station: demo.asf at the file's rate

struct Fake {
    station: Station,
    /// Every packet of the file, stripped, with its send time.
    file: Vec<(u32, Vec<u8>)>,
    /// Index of the next packet to produce.
    next: usize,
}

impl Fake {
    fn new() -> Fake {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf");
        let mut r = AsfReader::open(&path).unwrap();
        let mut station = Station::new("demo", 4096);
        let h = StationHeader::live(station.next_generation(), r.header(), r.data_head(), 1);
        station.set_header(h);
        let mut file = Vec::new();
        while let Some(p) = r.next_packet() {
            let parsed = p.unwrap();
            let parsed = parsed.parse().unwrap();
            file.push((parsed.send_time, strip_padding(&parsed)));
        }
        let mut f = Fake {
            station,
            file,
            next: 0,
        };
        while f.next < JOINED_AT {
            f.produce();
        }
        f
    }

    /// When the next packet is due, in ms after the client's first segment (`None` at the end
    /// of the file: a replay is far shorter than the file).
    fn next_due(&self) -> Option<u64> {
        let last = self.file[JOINED_AT - 1].0;
        self.file
            .get(self.next)
            .map(|(t, _)| u64::from(t.saturating_sub(last)))
    }

    fn produce(&mut self) -> Arc<StationPacket> {
        let bytes = self.file[self.next].1.clone();
        self.next += 1;
        self.station.push(bytes).unwrap()
    }
}

impl AnnouncementCatalog for Fake {
    fn stations(&self) -> Vec<StationEntry> {
        vec![StationEntry {
            name: "demo".into(),
            ..StationEntry::default()
        }]
    }
}

impl StationView for Fake {
    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        (station == "demo")
            .then(|| self.station.header().cloned())
            .flatten()
    }
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        if station != "demo" {
            return Vec::new();
        }
        self.station.join_backlog().cloned().collect()
    }
    fn serves(&self, station: &str, _protocol: Protocol) -> bool {
        station == "demo"
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        self
    }
}

// ---------------------------------------------------------------------------
// Session cores as the shell configures them

fn feed() -> FeedConfig {
    FeedConfig {
        backlog_limit: 4 << 20,
        fast_start_rate: 4.0,
        stall_timeout: Duration::from_secs(30),
    }
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mms,
    Mmsh,
    Rtsp,
}

impl Kind {
    fn of_port(port: u16) -> Kind {
        match port {
            1755 => Kind::Mms,
            8080 => Kind::Mmsh,
            8554 => Kind::Rtsp,
            p => panic!("recorded server port {p} is none of 1755, 8080, 8554"),
        }
    }
}

fn new_session(kind: Kind, conn: &Conn, now: Instant) -> Box<dyn Session> {
    match kind {
        Kind::Mms => Box::new(MmsSession::new(
            peer(),
            MmsConfig {
                feed: feed(),
                request_max_bytes: 16 * 1024,
                handshake_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(20),
                ping_interval: Duration::from_secs(3),
                udp_port: UDP_PORTS.mms_data,
                own_udp_ports: UDP_PORTS.all(),
            },
            now,
        )),
        Kind::Mmsh => {
            let limits = SessionLimits {
                max_request_bytes: 8192,
                handshake_timeout: Duration::from_secs(10),
                stream: StreamConfig {
                    feed: feed(),
                    silence_timeout: Duration::from_secs(20),
                },
            };
            Box::new(HttpSession::new(limits, peer(), client_id(conn), now))
        }
        Kind::Rtsp => Box::new(RtspSession::new(
            RtspConfig {
                allow_udp: true,
                mtu: 1450,
                request_max_bytes: 8192,
                handshake_timeout: Duration::from_secs(10),
                session_timeout: Duration::from_secs(60),
                feed: feed(),
            },
            peer(),
            UDP_PORTS,
            StdRng::seed_from_u64(SEED),
            now,
        )),
    }
}

/// The `client-id` the recorded client echoes (MMSH Play after Describe), so the session is
/// given the one the recording daemon handed out.
fn client_id(conn: &Conn) -> u32 {
    let text = String::from_utf8_lossy(&conn.bytes()).into_owned();
    text.split("client-id=")
        .nth(1)
        .and_then(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1)
}

// ---------------------------------------------------------------------------
// The replay

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each segment in one read, at its recorded time.
    Segments,
    /// Each segment byte by byte, at its recorded time.
    Bytewise,
    /// The whole connection in one read, at the first segment's time.
    Whole,
}

/// What the session sent, in order.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Tcp(Vec<u8>),
    Udp(Datagram),
}

struct Replay {
    out: Vec<Out>,
    /// The close and the index of the segment being fed (or `None`: after the last one).
    closed: Option<(String, Option<usize>)>,
}

struct Driver<'a> {
    s: Box<dyn Session>,
    fake: &'a mut Fake,
    t0: Instant,
    now: u64,
    out: Vec<Out>,
    closed: Option<String>,
    /// RTSP: (recorded session id, the replayed session's id).
    session_ids: Option<(Vec<u8>, Vec<u8>)>,
    recorded_id: Option<Vec<u8>>,
}

impl Driver<'_> {
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn collect(&mut self, step: Step) {
        let q = self.s.output();
        let bytes: Vec<u8> = q
            .io_slices(usize::MAX)
            .iter()
            .flat_map(|s| s.to_vec())
            .collect();
        q.advance(bytes.len());
        if !bytes.is_empty() {
            if self.session_ids.is_none() {
                if let (Some(rec), Some(id)) = (&self.recorded_id, session_id(&bytes)) {
                    self.session_ids = Some((rec.clone(), id));
                }
            }
            self.out.push(Out::Tcp(bytes));
        }
        let mut d = Vec::new();
        self.s.take_datagrams(&mut d);
        self.out.extend(d.into_iter().map(Out::Udp));
        if let Step::Close { reason } = step {
            self.closed = Some(reason);
        }
    }

    /// Runs the station and the session's deadlines up to `ms`.
    fn advance(&mut self, ms: u64) {
        for _ in 0..100_000 {
            if self.closed.is_some() {
                return;
            }
            let due = self.fake.next_due().filter(|&t| t <= ms);
            let deadline = self
                .s
                .deadline()
                .map(|d| d.saturating_duration_since(self.t0).as_millis() as u64)
                .filter(|&t| t <= ms);
            match (due, deadline) {
                (None, None) => break,
                (Some(p), d) if d.is_none_or(|d| p <= d) => {
                    self.now = self.now.max(p);
                    let packet = self.fake.produce();
                    if self.s.station() == Some("demo") {
                        let step = self.s.on_packet(&packet, self.at(self.now));
                        self.collect(step);
                    }
                }
                (_, Some(d)) => {
                    self.now = self.now.max(d);
                    let step = self.s.on_timeout(self.at(self.now));
                    self.collect(step);
                }
                (Some(_), None) => unreachable!(),
            }
        }
        self.now = self.now.max(ms);
    }

    /// The client's bytes with the recorded RTSP session id swapped for this session's.
    fn swapped(&self, bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        if let Some((rec, id)) = &self.session_ids {
            replace_all(&mut b, rec, id);
        }
        b
    }

    fn feed(&mut self, bytes: &[u8]) {
        let step = self.s.on_bytes(bytes, self.at(self.now), &*self.fake);
        self.collect(step);
    }
}

fn replay(kind: Kind, conn: &Conn, mode: Mode) -> Replay {
    let t0 = Instant::now();
    let mut fake = Fake::new();
    let all = conn.bytes();
    let mut d = Driver {
        s: new_session(kind, conn, t0),
        fake: &mut fake,
        t0,
        now: 0,
        out: Vec::new(),
        closed: None,
        session_ids: None,
        recorded_id: (kind == Kind::Rtsp).then(|| session_id(&all)).flatten(),
    };
    let mut closed_at = None;
    match mode {
        Mode::Whole => {
            d.advance(conn.segments[0].0);
            // The session id swap needs the SETUP reply first: feed up to the first request
            // that carries a Session header, then the rest in one read.
            match (&d.recorded_id, find(&all, b"\r\nSession: ")) {
                (Some(_), Some(at)) => {
                    let start = rfind(&all[..at], b"\r\n\r\n").map_or(0, |p| p + 4);
                    d.feed(&all[..start]);
                    let rest = d.swapped(&all[start..]);
                    d.feed(&rest);
                }
                _ => d.feed(&all),
            }
            if d.closed.is_some() {
                closed_at = Some(conn.segments.len() - 1);
            }
        }
        Mode::Segments | Mode::Bytewise => {
            for (i, (ms, seg)) in conn.segments.iter().enumerate() {
                d.advance(*ms);
                let seg = d.swapped(seg);
                if mode == Mode::Segments {
                    d.feed(&seg);
                } else {
                    for b in &seg {
                        d.feed(std::slice::from_ref(b));
                        if d.closed.is_some() {
                            break;
                        }
                    }
                }
                if d.closed.is_some() {
                    closed_at = Some(i);
                    break;
                }
            }
        }
    }
    let last = conn.segments.last().map_or(0, |s| s.0);
    d.advance(last + TAIL_MS);
    let closed = d.closed.clone().map(|r| (r, closed_at));
    Replay { out: d.out, closed }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn replace_all(b: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len(), "session ids of different lengths");
    let mut i = 0;
    while let Some(p) = find(&b[i..], from) {
        b[i + p..i + p + to.len()].copy_from_slice(to);
        i += p + to.len();
    }
}

/// The value of the first `Session:` header (up to `;`) in a message stream.
fn session_id(b: &[u8]) -> Option<Vec<u8>> {
    let at = find(b, b"\r\nSession: ")? + 11;
    let end = b[at..]
        .iter()
        .position(|&c| c == b';' || c == b'\r')
        .map_or(b.len(), |e| at + e);
    Some(b[at..end].to_vec())
}

// ---------------------------------------------------------------------------
// Reading the output back

/// One thing the session said, as the client reads it.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    /// A reply: MMS command number, HTTP/RTSP status line and CSeq.
    Reply(String),
    /// A piece of the stream header (MMS header data packet, MMSH `$H`).
    Header,
    /// Media: an MMS data packet, `$D`, an interleaved RTP packet, a UDP datagram.
    Media,
    /// Other framing (`$E`, `$C`, interleaved RTCP, MMS ping).
    Other(String),
}

/// The reading of one replay: what was said, in order, and the deterministic skeleton.
struct Reading {
    said: Vec<Said>,
    skeleton: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn read_mms(out: &[Out]) -> Reading {
    let mut r = Reading {
        said: Vec::new(),
        skeleton: Vec::new(),
    };
    for o in out {
        match o {
            Out::Tcp(bytes) => {
                let mut b = &bytes[..];
                while !b.is_empty() {
                    if u32_at(b, 4) == SESSION_ID {
                        let total = u32_at(b, 8) as usize + 16;
                        let number = u16_at(b, 36);
                        r.skeleton.extend_from_slice(&b[..total]);
                        r.said.push(if number == report::PING {
                            Said::Other("ping".into())
                        } else {
                            Said::Reply(format!("0x{number:02X}"))
                        });
                        b = &b[total..];
                    } else {
                        let n = u16_at(b, 6) as usize;
                        let flags = b[5];
                        r.skeleton.extend_from_slice(&b[..8]);
                        // AFFlags 0x04/0x0C: a piece of the header.
                        r.said.push(if flags & 0x04 != 0 {
                            Said::Header
                        } else {
                            Said::Media
                        });
                        assert!(n >= 8 && n <= b.len(), "MMS data PDU of {n} bytes");
                        b = &b[n..];
                    }
                }
            }
            Out::Udp(d) => {
                let v = d.to_vec();
                r.said.push(if v.len() > 5 && v[5] & 0x04 != 0 {
                    Said::Header
                } else {
                    Said::Media
                });
            }
        }
    }
    r
}

/// The HTTP/RTSP response at the start of `b`: (head, status line, body length).
fn response_head(b: &[u8]) -> (usize, String, Option<usize>) {
    let end = find(b, b"\r\n\r\n").expect("a whole response head") + 4;
    let head = String::from_utf8_lossy(&b[..end]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    let length = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().parse().unwrap())
    });
    let cseq = head
        .lines()
        .find_map(|l| l.strip_prefix("CSeq: ").map(str::to_string));
    let label = match cseq {
        Some(c) => format!("{status} CSeq={c}"),
        None => status,
    };
    (end, label, length)
}

fn read_mmsh(out: &[Out]) -> Reading {
    let mut r = Reading {
        said: Vec::new(),
        skeleton: Vec::new(),
    };
    let bytes: Vec<u8> = out
        .iter()
        .flat_map(|o| match o {
            Out::Tcp(b) => b.clone(),
            Out::Udp(_) => panic!("MMSH sent a datagram"),
        })
        .collect();
    let mut b = &bytes[..];
    let chunks = |body: &[u8], r: &mut Reading| {
        let mut cr = ChunkReader::new();
        cr.push(body);
        let mut at = 0;
        while let Some(c) = cr.next_chunk().unwrap() {
            let len = 4 + u16_at(body, at + 2) as usize;
            r.skeleton.extend_from_slice(&body[at..at + len.min(12)]);
            at += len;
            r.said.push(match c.kind {
                ChunkType::Header => Said::Header,
                ChunkType::Data => Said::Media,
                k => Said::Other(format!("{k:?}")),
            });
        }
        assert_eq!(cr.buffered(), 0, "a partial chunk");
    };
    while !b.is_empty() {
        let (end, label, length) = response_head(b);
        r.skeleton.extend_from_slice(&b[..end]);
        r.said.push(Said::Reply(label));
        b = &b[end..];
        match length {
            Some(n) => {
                chunks(&b[..n], &mut r);
                b = &b[n..];
            }
            None => {
                chunks(b, &mut r);
                b = &[];
            }
        }
    }
    r
}

fn read_rtsp(out: &[Out]) -> Reading {
    let mut r = Reading {
        said: Vec::new(),
        skeleton: Vec::new(),
    };
    for o in out {
        match o {
            Out::Tcp(bytes) => {
                let mut b = &bytes[..];
                while !b.is_empty() {
                    if b[0] == b'$' {
                        let n = 4 + u16::from_be_bytes([b[2], b[3]]) as usize;
                        r.skeleton.extend_from_slice(&b[..n.min(16)]);
                        r.said.push(if b[1] % 2 == 0 {
                            Said::Media
                        } else {
                            Said::Other("rtcp".into())
                        });
                        b = &b[n..];
                    } else {
                        let (end, label, length) = response_head(b);
                        let n = end + length.unwrap_or(0);
                        r.skeleton.extend_from_slice(&b[..n]);
                        r.said.push(Said::Reply(label));
                        b = &b[n..];
                    }
                }
            }
            Out::Udp(d) => r
                .said
                .push(if d.via == crate::station::sink::UdpChannel::Rtp {
                    Said::Media
                } else {
                    Said::Other("rtcp".into())
                }),
        }
    }
    r
}

fn read(kind: Kind, out: &[Out]) -> Reading {
    match kind {
        Kind::Mms => read_mms(out),
        Kind::Mmsh => read_mmsh(out),
        Kind::Rtsp => read_rtsp(out),
    }
}

fn replies(said: &[Said]) -> Vec<String> {
    said.iter()
        .filter_map(|s| match s {
            Said::Reply(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// What each client's requests need

/// A client request and the reply it needs (`None`: no reply is due).
#[derive(Debug)]
struct Need {
    request: String,
    reply: Option<String>,
    /// After this reply, media must follow.
    plays: bool,
}

/// [MS-MMSP] 2.2.4: the reply to each client command. With UDP data (the ConnectFunnel
/// names `\\UDP\\`) ReadBlock gets no 0x11: the session leaves it out on purpose, since
/// VLC's MMSU reader stalls on it (`MmsSession::send_header`).
fn mms_needs(client: &[u8]) -> Vec<Need> {
    let text: String = char::decode_utf16(
        client
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]])),
    )
    .map(|c| c.unwrap_or('?'))
    .collect();
    let odd: String = char::decode_utf16(
        client[1..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]])),
    )
    .map(|c| c.unwrap_or('?'))
    .collect();
    let udp = text.contains("\\UDP\\") || odd.contains("\\UDP\\");
    let mut b = client;
    let mut needs = Vec::new();
    while b.len() >= 40 {
        assert_eq!(u32_at(b, 4), SESSION_ID, "client bytes are MMS commands");
        let total = u32_at(b, 8) as usize + 16;
        let number = u16_at(b, 36);
        let reply = match number {
            cmd::CONNECT => Some(report::CONNECTED_EX),
            cmd::FUNNEL_INFO => Some(report::FUNNEL_INFO),
            cmd::CONNECT_FUNNEL => Some(report::CONNECTED_FUNNEL),
            cmd::OPEN_FILE => Some(report::OPEN_FILE),
            cmd::READ_BLOCK if udp => None,
            cmd::READ_BLOCK => Some(report::READ_BLOCK),
            cmd::STREAM_SWITCH => Some(report::STREAM_SWITCH),
            cmd::START_PLAYING => Some(report::STARTED_PLAYING),
            cmd::PONG | cmd::LOGGING | cmd::CLOSE_FILE => None,
            n => panic!("recorded client command 0x{n:02X}: add its reply to mms_needs"),
        };
        needs.push(Need {
            request: format!("0x{number:02X}"),
            reply: reply.map(|n| format!("0x{n:02X}")),
            plays: number == cmd::START_PLAYING,
        });
        b = &b[total.min(b.len())..];
    }
    needs
}

/// HTTP requests (and bodies) of the connection; a Play (`xPlayStrm=1`) gets `$H` then `$D`.
fn http_like_requests(client: &[u8]) -> Vec<(String, String)> {
    let mut b = client;
    let mut out = Vec::new();
    while !b.is_empty() {
        if b[0] == b'$' && b.len() >= 4 {
            // RTSP interleaved data from the client (RTCP receiver reports).
            let n = 4 + u16::from_be_bytes([b[2], b[3]]) as usize;
            b = &b[n.min(b.len())..];
            continue;
        }
        let Some(end) = find(b, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&b[..end + 4]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let line = head.lines().next().unwrap_or_default().to_string();
        out.push((line, head));
        b = &b[(end + 4 + length).min(b.len())..];
    }
    out
}

fn mmsh_needs(client: &[u8]) -> Vec<Need> {
    http_like_requests(client)
        .into_iter()
        .map(|(line, head)| Need {
            request: line,
            reply: Some("HTTP/1.x 200 OK".into()),
            plays: head.contains("xPlayStrm=1"),
        })
        .collect()
}

fn rtsp_needs(client: &[u8]) -> Vec<Need> {
    http_like_requests(client)
        .into_iter()
        .map(|(line, head)| {
            let cseq = head
                .lines()
                .find_map(|l| l.strip_prefix("CSeq: ").map(str::to_string))
                .expect("an RTSP request with a CSeq");
            Need {
                plays: line.starts_with("PLAY "),
                request: line,
                reply: Some(format!("RTSP/1.0 200 OK CSeq={cseq}")),
            }
        })
        .collect()
}

fn needs(kind: Kind, client: &[u8]) -> Vec<Need> {
    match kind {
        Kind::Mms => mms_needs(client),
        Kind::Mmsh => mmsh_needs(client),
        Kind::Rtsp => rtsp_needs(client),
    }
}

fn same_reply(want: &str, got: &str) -> bool {
    match want.strip_prefix("HTTP/1.x ") {
        Some(rest) => got.starts_with("HTTP/1.") && got[8..].trim_start() == rest,
        None => want == got,
    }
}

// ---------------------------------------------------------------------------
// The checks

/// Replays every connection of `client` and checks it (see the module docs).
fn check(client: &str) {
    let (rec, conns) = load(client);
    eprintln!("{client}: {} ({})", rec.version, rec.command);
    for conn in &conns {
        let kind = Kind::of_port(conn.server_port);
        let what = format!("{client} {}", conn.file);
        let client_bytes = conn.bytes();
        let needs = needs(kind, &client_bytes);
        assert!(!needs.is_empty(), "{what}: no request recorded");

        let seg = replay(kind, conn, Mode::Segments);
        let reading = read(kind, &seg.out);
        let got = replies(&reading.said);

        let media = reading.said.iter().filter(|s| **s == Said::Media).count();
        eprintln!(
            "{what}: {} segments, replies {got:?}, {media} media packets, closed {:?}",
            conn.segments.len(),
            seg.closed
        );

        // Every request answered, in order, with what the client needs.
        let wanted: Vec<&Need> = needs.iter().filter(|n| n.reply.is_some()).collect();
        assert_eq!(
            got.len(),
            wanted.len(),
            "{what}: replies {got:?} to requests {:?}",
            needs.iter().map(|n| &n.request).collect::<Vec<_>>()
        );
        for (n, g) in wanted.iter().zip(&got) {
            let want = n.reply.as_deref().unwrap_or_default();
            assert!(
                same_reply(want, g),
                "{what}: {} answered with {g:?}, the client needs {want:?} (all: {got:?})",
                n.request
            );
        }

        // The session stays open while the client talks.
        if let Some((reason, at)) = &seg.closed {
            assert!(
                *at == Some(conn.segments.len() - 1),
                "{what}: closed ({reason}) at segment {at:?} of {}",
                conn.segments.len()
            );
        }

        // The header before the play reply's media; media after it.
        if let Some(play) = wanted.iter().position(|n| n.plays) {
            let at = reading
                .said
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, Said::Reply(_)))
                .nth(play)
                .map(|(i, _)| i)
                .unwrap();
            let after = &reading.said[at..];
            let media = after.iter().filter(|s| **s == Said::Media).count();
            assert!(
                media >= 10,
                "{what}: {media} media packets after the play reply"
            );
            if kind != Kind::Rtsp {
                let header = reading.said.iter().position(|s| *s == Said::Header);
                let first_media = reading.said.iter().position(|s| *s == Said::Media);
                assert!(
                    header.is_some() && header < first_media,
                    "{what}: no header before media: {:?}",
                    &reading.said[..reading.said.len().min(20)]
                );
            }
        }

        // MMS: the header data packets follow the ReadBlock report (mmsp.md §5.5: ffmpeg,
        // libmms and mplayer read the 0x11 first and then expect the header).
        let report = reading
            .said
            .iter()
            .position(|s| *s == Said::Reply("0x11".into()));
        let header = reading.said.iter().position(|s| *s == Said::Header);
        if let (Some(r), Some(h)) = (report, header) {
            assert!(r < h, "{what}: header data before the 0x11 report");
        }

        // Byte by byte at the same times: the same output, byte for byte.
        let bytewise = replay(kind, conn, Mode::Bytewise);
        let flat = |out: &[Out]| -> (Vec<u8>, Vec<Vec<u8>>) {
            let mut tcp = Vec::new();
            let mut udp = Vec::new();
            for o in out {
                match o {
                    Out::Tcp(b) => tcp.extend_from_slice(b),
                    Out::Udp(d) => udp.push(d.to_vec()),
                }
            }
            (tcp, udp)
        };
        assert!(
            flat(&bytewise.out) == flat(&seg.out),
            "{what}: byte-by-byte input changed the output"
        );
        assert_eq!(
            bytewise.closed.as_ref().map(|c| &c.0),
            seg.closed.as_ref().map(|c| &c.0),
            "{what}: byte by byte"
        );

        // All at once: the same replies in the same order.
        let whole = replay(kind, conn, Mode::Whole);
        assert_eq!(
            replies(&read(kind, &whole.out).said),
            got,
            "{what}: the whole connection in one read"
        );

        golden(&what, &conn.file, &reading.skeleton);
    }
}

/// Compares the skeleton with `<conn>.server-expected.bin`, or writes it with ASFCAST_BLESS=1.
fn golden(what: &str, client_file: &str, skeleton: &[u8]) {
    let name = client_file.replace(".client.bin", ".server-expected.bin");
    let path: PathBuf = golden_dir().join(&name);
    if std::env::var_os("ASFCAST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, skeleton).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{what}: {}: {e} (run with ASFCAST_BLESS=1 to write it)",
            path.display()
        )
    });
    if want != skeleton {
        let at = want
            .iter()
            .zip(skeleton)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(skeleton.len()));
        let show = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(32)..(at + 64).min(b.len())]).into_owned()
        };
        panic!(
            "{what}: the server's control bytes differ from {name} at byte {at} \
             (expected {} bytes, got {}):\n expected …{:?}…\n got      …{:?}…\n\
             If the change is intended, rerun with ASFCAST_BLESS=1 (tests/golden/README.md).",
            want.len(),
            skeleton.len(),
            show(&want),
            show(skeleton)
        );
    }
}

macro_rules! golden_client {
    ($($test:ident => $client:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($client);
            }
        )*
    };
}

golden_client! {
    ffmpeg_mmst => "ffmpeg-mmst",
    ffmpeg_mmsh => "ffmpeg-mmsh",
    ffmpeg_rtsp_tcp => "ffmpeg-rtsp-tcp",
    ffmpeg_rtsp_udp => "ffmpeg-rtsp-udp",
    vlc_mms_tcp => "vlc-mms-tcp",
    vlc_mmsu => "vlc-mmsu",
    mplayer_mms => "mplayer-mms",
    mplayer_mmsh => "mplayer-mmsh",
    gst_rtspsrc_tcp => "gst-rtspsrc-tcp",
    gst_rtspsrc_udp => "gst-rtspsrc-udp",
    libmms => "libmms",
}

/// Every recording in tests/golden has a test above (a new recording is not silently unused).
#[test]
fn every_recording_is_replayed() {
    let known = [
        "ffmpeg-mmst",
        "ffmpeg-mmsh",
        "ffmpeg-rtsp-tcp",
        "ffmpeg-rtsp-udp",
        "vlc-mms-tcp",
        "vlc-mmsu",
        "mplayer-mms",
        "mplayer-mmsh",
        "gst-rtspsrc-tcp",
        "gst-rtspsrc-udp",
        "libmms",
    ];
    for e in std::fs::read_dir(golden_dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(client) = name.strip_suffix(".json") {
            assert!(
                known.contains(&client),
                "{name} has no test in src/golden_tests.rs"
            );
        }
    }
}
