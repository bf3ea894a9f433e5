//! Scripted request → response sequences through the HTTP listener's session: the announcement
//! routes still answer, a station path becomes MMSH, keep-alive Describe then Play on one
//! connection, errors, and the deadlines of each phase.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::http::mmsh::tests::{demo_station, FFMPEG_PLAY};
use crate::http::mmsh::{ChunkReader, ChunkType};
use crate::station::catalog::{AnnouncementCatalog, StationEntry};
use crate::station::{StationHeader, StationPacket};

struct View {
    header: Option<Arc<StationHeader>>,
    backlog: Vec<Arc<StationPacket>>,
    mmsh: bool,
    entries: Vec<StationEntry>,
}

impl StationView for View {
    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        (station == "demo").then(|| self.header.clone()).flatten()
    }
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        if station == "demo" {
            self.backlog.clone()
        } else {
            Vec::new()
        }
    }
    fn serves(&self, station: &str, protocol: Protocol) -> bool {
        station == "demo" && protocol == Protocol::Mmsh && self.mmsh
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        &self.entries
    }
}

fn view() -> View {
    let (h, _, st) = demo_station("demo.asf", 40);
    View {
        header: Some(h),
        backlog: st.join_backlog().cloned().collect(),
        mmsh: true,
        entries: vec![StationEntry {
            name: "demo".into(),
            nsc: Some("[Address]\r\n".into()),
            asx: Some("<ASX/>".into()),
            nsc_file: "demo.nsc".into(),
            asx_file: "demo.asx".into(),
            ..StationEntry::default()
        }],
    }
}

const LIMITS: SessionLimits = SessionLimits {
    max_request_bytes: 8192,
    handshake_timeout: Duration::from_secs(10),
    stream: StreamConfig {
        feed: FeedConfig {
            backlog_limit: 1 << 20,
            fast_start_rate: 4.0,
            stall_timeout: Duration::from_secs(30),
        },
        silence_timeout: Duration::from_secs(30),
    },
};

fn session(now: Instant) -> HttpSession {
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    HttpSession::new(LIMITS, peer, 1, now)
}

fn drain(s: &mut HttpSession) -> Vec<u8> {
    let q = s.output();
    let v: Vec<u8> = q
        .io_slices(usize::MAX)
        .iter()
        .flat_map(|s| s.to_vec())
        .collect();
    q.advance(v.len());
    v
}

/// Splits a response into its head (text) and body.
fn split(bytes: &[u8]) -> (String, Vec<u8>) {
    let at = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    (
        String::from_utf8_lossy(&bytes[..at]).into_owned(),
        bytes[at..].to_vec(),
    )
}

fn chunk_kinds(body: &[u8]) -> Vec<ChunkType> {
    let mut r = ChunkReader::new();
    r.push(body);
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk().unwrap() {
        out.push(c.kind);
    }
    out
}

/// VLC 3's Describe (HTTP/1.0, split over several writes as VLC sends it).
const VLC_DESCRIBE: [&[u8]; 3] = [
    b"GET /demo HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n",
    b"Accept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n",
    b"Pragma: xClientGUID={12345678-1234-1234-1234-123456789abc}\r\nConnection: Close\r\n\r\n",
];

#[test]
fn vlc_describe_gets_the_header_and_a_close() {
    let t0 = Instant::now();
    let v = view();
    let mut s = session(t0);
    assert_eq!(s.on_bytes(VLC_DESCRIBE[0], t0, &v), Step::Continue);
    assert_eq!(s.on_bytes(VLC_DESCRIBE[1], t0, &v), Step::Continue);
    assert!(matches!(
        s.on_bytes(VLC_DESCRIBE[2], t0, &v),
        Step::Close { .. }
    ));
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/vnd.ms.wms-hdr.asfv1\r\n"));
    assert!(head.contains(&format!("Pragma: client-id={}\r\n", s.client_id())));
    assert!(head.contains("Pragma: features=\"broadcast\"\r\n"));
    assert!(head.contains("Connection: close\r\n"));
    assert_eq!(chunk_kinds(&body), [ChunkType::Header]);
    assert_eq!(body.len(), 12 + v.header.as_ref().unwrap().bytes.len());
    assert_eq!(s.station(), None);
}

#[test]
fn ffmpeg_play_becomes_a_stream_with_its_own_deadlines() {
    let t0 = Instant::now();
    let v = view();
    let mut s = session(t0);
    assert_eq!(s.deadline(), Some(t0 + LIMITS.handshake_timeout));
    assert_eq!(s.on_bytes(FFMPEG_PLAY, t0, &v), Step::Continue);
    assert_eq!(s.protocol(), "mmsh");
    assert_eq!(s.station(), Some("demo"));
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/x-mms-framed\r\n"));
    assert!(!head.contains("Content-Length"));
    let kinds = chunk_kinds(&body);
    assert_eq!(kinds[0], ChunkType::Header);
    assert!(kinds.len() >= 2 && kinds[1..].iter().all(|k| *k == ChunkType::Data));
    // The request timeout no longer applies: the fast-start deadline does.
    let d = s.deadline().unwrap();
    assert!(d < t0 + Duration::from_secs(2), "{d:?}");
    // Bytes the client sends while streaming are ignored.
    assert_eq!(s.on_bytes(b"garbage\r\n\r\n", t0, &v), Step::Continue);
    // The handshake deadline passing does not close a stream.
    let later = t0 + LIMITS.handshake_timeout + Duration::from_secs(1);
    assert_eq!(s.on_timeout(later), Step::Continue);
    // The server stopping: `$E`.
    let _ = drain(&mut s);
    assert_eq!(s.on_station_end(later), Step::close("station stopped"));
    assert_eq!(drain(&mut s), b"$E\x04\x00\x00\x00\x00\x00");
}

#[test]
fn keep_alive_describe_then_play_on_one_connection() {
    let t0 = Instant::now();
    let v = view();
    let mut s = session(t0);
    // WMP-style: HTTP/1.1 keep-alive Describe, the Play pipelined right behind it.
    let mut bytes = b"GET /demo HTTP/1.1\r\nHost: a\r\nUser-Agent: NSPlayer/12.0\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\r\n"
        .to_vec();
    bytes.extend_from_slice(
        b"GET /demo HTTP/1.1\r\nHost: a\r\nPragma: client-id=5\r\nPragma: xPlayStrm=1\r\n\
Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0\r\n\r\n",
    );
    let t1 = t0 + Duration::from_secs(3);
    assert_eq!(s.on_bytes(&bytes, t1, &v), Step::Continue);
    let out = drain(&mut s);
    let (head1, rest) = split(&out);
    assert!(head1.contains("Connection: keep-alive\r\n"), "{head1}");
    let len: usize = head1
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let (head2, body2) = split(&rest[len..]);
    assert!(head2.contains("application/x-mms-framed"), "{head2}");
    assert_eq!(chunk_kinds(&body2)[0], ChunkType::Header);
    assert_eq!(s.station(), Some("demo"));
}

#[test]
fn a_kept_connection_idles_out_and_announcements_still_work() {
    let t0 = Instant::now();
    let v = view();
    let mut s = session(t0);
    let t1 = t0 + Duration::from_secs(4);
    // A kept-alive MMSH Describe (an MMSH client: NSPlayer; a bare GET is a plain stream).
    s.on_bytes(
        b"GET /demo HTTP/1.1\r\nHost: a\r\nUser-Agent: NSPlayer/12.0\r\n\r\n",
        t1,
        &v,
    );
    assert_eq!(s.deadline(), Some(t1 + LIMITS.handshake_timeout));
    let _ = drain(&mut s);
    s.on_bytes(b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n", t1, &v);
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body, b"[Address]\r\n");
    assert!(matches!(
        s.on_timeout(t1 + LIMITS.handshake_timeout),
        Step::Close { .. }
    ));
}

#[test]
fn refusals() {
    let t0 = Instant::now();
    let get = |v: &View, req: &[u8]| {
        let mut s = session(t0);
        let step = s.on_bytes(req, t0, v);
        let (head, _) = split(&drain(&mut s));
        (step, head)
    };
    let mut v = view();
    let (_, head) = get(&v, b"GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let (_, head) = get(&v, b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    let (_, head) = get(
        &v,
        b"PUT /demo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert!(head.contains("Allow: GET, HEAD, POST\r\n"), "{head}");
    let (step, head) = get(&v, b"POST /demo HTTP/1.0\r\nContent-Length: 3\r\n\r\nlog");
    assert!(head.starts_with("HTTP/1.0 204 "), "{head}");
    assert!(matches!(step, Step::Close { .. }));
    v.header = None;
    let (_, head) = get(&v, FFMPEG_PLAY);
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Server: Cougar/9.01.01.3814\r\n"), "{head}");
    v.mmsh = false;
    let (_, head) = get(&v, FFMPEG_PLAY);
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
}

/// mpv's (FFmpeg `http://`) request for the station URL.
const MPV_GET: &[u8] = b"GET /demo HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\n\
Range: bytes=0-\r\nConnection: close\r\nHost: 127.0.0.1:8080\r\nIcy-MetaData: 1\r\n\r\n";

#[test]
fn a_plain_http_get_becomes_a_plain_asf_stream() {
    let t0 = Instant::now();
    let v = view();
    let mut s = session(t0);
    assert_eq!(s.on_bytes(MPV_GET, t0, &v), Step::Continue);
    assert_eq!(s.protocol(), "mmsh", "the station's HTTP delivery");
    assert_eq!(s.station(), Some("demo"));
    assert!(s.plain_stream().is_some() && s.stream().is_none());
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: video/x-ms-asf\r\n"), "{head}");
    assert!(head.contains("Cache-Control: no-cache\r\n"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    let header = v.header.as_ref().unwrap();
    assert!(body.starts_with(&header.bytes), "the ASF header, unframed");
    let size = header.header.packet_size() as usize;
    let packets = &body[header.bytes.len()..];
    assert!(
        !packets.is_empty() && packets.len() % size == 0,
        "{}",
        packets.len()
    );
    // The stream's deadlines apply, not the request timeout; bytes sent are ignored.
    assert!(s.deadline().unwrap() < t0 + Duration::from_secs(2));
    assert_eq!(s.on_bytes(b"more\r\n\r\n", t0, &v), Step::Continue);
    let later = t0 + LIMITS.handshake_timeout + Duration::from_secs(1);
    assert_eq!(s.on_timeout(later), Step::Continue);
    // The server stopping: a close, no `$E`.
    let _ = drain(&mut s);
    assert_eq!(s.on_station_end(later), Step::close("station stopped"));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn plain_head_not_ready_and_refused_plain_clients() {
    let t0 = Instant::now();
    let mut v = view();
    let mut s = session(t0);
    let step = s.on_bytes(b"HEAD /demo HTTP/1.1\r\nHost: a\r\n\r\n", t0, &v);
    assert!(matches!(step, Step::Close { .. }));
    let out = drain(&mut s);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("video/x-ms-asf") && text.ends_with("\r\n\r\n"),
        "{text}"
    );
    assert_eq!(s.station(), None);

    v.header = None;
    let mut s = session(t0);
    assert!(matches!(s.on_bytes(MPV_GET, t0, &v), Step::Close { .. }));
    let (head, _) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    v.mmsh = false;
    let mut s = session(t0);
    assert!(matches!(s.on_bytes(MPV_GET, t0, &v), Step::Close { .. }));
    let (head, _) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
}

#[test]
fn the_session_uses_the_client_id_it_is_given() {
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let s = HttpSession::new(LIMITS, peer, 4242, Instant::now());
    assert_eq!(s.client_id(), 4242);
}

#[test]
fn info_reports_what_the_client_plays() {
    let t0 = Instant::now();
    let v = view();
    let mut s = session(t0);
    let before = s.info();
    assert_eq!((before.protocol, before.playing), ("http", false));
    assert_eq!(s.on_bytes(FFMPEG_PLAY, t0, &v), Step::Continue);
    let body = drain(&mut s);
    let i = s.info();
    assert_eq!((i.protocol, i.transport, i.playing), ("mmsh", "http", true));
    assert_eq!(i.station.as_deref(), Some("demo"));
    assert!(i
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.starts_with("NSPlayer")));
    assert!(i.packets > 0 && i.bytes > 0 && (i.bytes as usize) < body.len());
}

/// A view with the operators' snapshot and web views on.
struct OpsView {
    inner: View,
    snap: crate::ops::Snapshot,
}

impl StationView for OpsView {
    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        self.inner.header(station)
    }
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        self.inner.join_backlog(station)
    }
    fn serves(&self, station: &str, protocol: Protocol) -> bool {
        self.inner.serves(station, protocol)
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        self
    }
    fn snapshot(&self) -> Option<&crate::ops::Snapshot> {
        Some(&self.snap)
    }
}

impl AnnouncementCatalog for OpsView {
    fn stations(&self) -> Vec<StationEntry> {
        self.inner.entries.clone()
    }
    fn is_ops_path(&self, path: &str) -> bool {
        crate::ops::web::route(path, &self.snap.ops.web).is_some()
    }
}

#[test]
fn status_pages_and_metrics_are_answered_on_a_kept_connection_when_on() {
    let t0 = Instant::now();
    let mut snap = crate::ops::Snapshot::default();
    snap.ops.web = crate::ops::web::WebConfig {
        status: true,
        refresh_s: 5,
        metrics: true,
    };
    let v = OpsView {
        inner: view(),
        snap,
    };
    let mut s = session(t0);
    s.on_bytes(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", t0, &v);
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(String::from_utf8_lossy(&body).contains("# TYPE asfcast_clients gauge"));
    // Kept alive: the next request on the same connection.
    s.on_bytes(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", t0, &v);
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("<h1>Stations</h1>"));
    s.on_bytes(b"GET /status/nope HTTP/1.1\r\nHost: a\r\n\r\n", t0, &v);
    assert!(split(&drain(&mut s)).0.starts_with("HTTP/1.1 404"));
    s.on_bytes(
        b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        t0,
        &v,
    );
    assert!(split(&drain(&mut s)).0.starts_with("HTTP/1.1 405"));
    // The announcements still work, and the station path is still the stream.
    s.on_bytes(b"GET /demo.nsc HTTP/1.1\r\nHost: a\r\n\r\n", t0, &v);
    assert_eq!(split(&drain(&mut s)).1, b"[Address]\r\n");
    assert_eq!(s.station(), None);

    // Off: `/` is the plain station list and /metrics is not found.
    let off = OpsView {
        inner: view(),
        snap: crate::ops::Snapshot::default(),
    };
    let mut s = session(t0);
    s.on_bytes(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", t0, &off);
    assert!(split(&drain(&mut s)).0.starts_with("HTTP/1.1 404"));
    let mut s = session(t0);
    s.on_bytes(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", t0, &off);
    let (head, body) = split(&drain(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(!String::from_utf8_lossy(&body).contains("client-count"));
}
