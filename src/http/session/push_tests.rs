//! The push phase through the HTTP session: who may push (a live station, `access.publish`,
//! one pusher), PushSetup's answer and its kept connection, a PushStart's body reaching the
//! station's input, the end of the connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::http::push::framing::{write_chunk, Layout};
use crate::station::catalog::AnnouncementCatalog;
use crate::station::live::{LiveEvent, LiveInput};
use crate::station::sink::Protocol;
use crate::station::{StationHeader, StationPacket};

struct View {
    input: LiveInput,
    publish: bool,
    entries: Vec<crate::station::catalog::StationEntry>,
}

impl StationView for View {
    fn header(&self, _station: &str) -> Option<Arc<StationHeader>> {
        None
    }
    fn join_backlog(&self, _station: &str) -> Vec<Arc<StationPacket>> {
        Vec::new()
    }
    fn serves(&self, _station: &str, _protocol: Protocol) -> bool {
        true
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        &self.entries
    }
    fn live_input(&self, station: &str) -> Option<LiveInput> {
        (station == "live").then(|| self.input.clone())
    }
    fn may_publish(&self, _station: &str, _ip: std::net::IpAddr) -> bool {
        self.publish
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

fn entries() -> Vec<crate::station::catalog::StationEntry> {
    ["live", "demo"]
        .into_iter()
        .map(|n| crate::station::catalog::StationEntry {
            name: n.into(),
            ..Default::default()
        })
        .collect()
}

fn session(port: u16, now: Instant) -> HttpSession {
    let peer: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    HttpSession::new(LIMITS, peer, 1, now).with_push_token(0xABCDEF)
}

fn out(s: &mut HttpSession) -> String {
    let q = s.output();
    let v: Vec<u8> = q
        .io_slices(usize::MAX)
        .iter()
        .flat_map(|s| s.to_vec())
        .collect();
    let n = v.len();
    q.advance(n);
    String::from_utf8_lossy(&v).into_owned()
}

const SETUP: &[u8] = b"POST /live HTTP/1.1\r\nHost: box\r\nUser-Agent: WMEncoder/12.0\r\n\
Content-Type: application/x-wms-pushsetup\r\nCookie: push-id=0\r\nContent-Length: 16\r\n\r\nAutoDestroy: 1\r\n";

fn start(path: &str, cookie: &str) -> Vec<u8> {
    format!(
        "POST /{path} HTTP/1.1\r\nHost: box\r\nContent-Type: application/x-wms-pushstart\r\n\
         Cookie: push-id={cookie}\r\nContent-Length: 2147483647\r\n\r\n"
    )
    .into_bytes()
}

fn demo_head() -> Vec<u8> {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf");
    let r = crate::asf::AsfReader::open(&path).unwrap();
    let mut head = r.header_bytes().to_vec();
    head.extend_from_slice(&r.data_head().to_bytes());
    head
}

#[test]
fn setup_then_start_on_one_connection_feeds_the_input() {
    let t0 = Instant::now();
    let view = View {
        input: LiveInput::new("live"),
        publish: true,
        entries: entries(),
    };
    let mut s = session(5000, t0);
    assert_eq!(s.on_bytes(SETUP, t0, &view), Step::Continue);
    let r = out(&mut s);
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert!(
        r.contains("Set-Cookie: push-id=00000000000000000000000000abcdef"),
        "{r}"
    );
    assert!(r.contains("Server: Cougar/9"), "{r}");
    assert!(r.contains("Connection: keep-alive"), "{r}");
    let mut bytes = start("live", "00000000000000000000000000abcdef");
    bytes.extend(write_chunk(Layout::Spec, b'H', &demo_head(), 0).unwrap());
    assert_eq!(s.on_bytes(&bytes, t0, &view), Step::Continue);
    assert_eq!(s.protocol(), "push");
    assert!(matches!(view.input.pop(), Some(LiveEvent::Header { .. })));
    assert_eq!(out(&mut s), "", "no answer before the body ends");
    // A drop: the WMHTTP session is parked, nobody else may push meanwhile.
    assert!(matches!(s.on_peer_closed(t0), Step::Close { .. }));
    assert!(view.input.holder().is_some());
    let mut other = session(5001, t0);
    assert!(matches!(
        other.on_bytes(&start("live", "0"), t0, &view),
        Step::Close { .. }
    ));
    assert!(out(&mut other).starts_with("HTTP/1.1 409"));
}

#[test]
fn refusals_name_their_reason() {
    let t0 = Instant::now();
    let cases = [
        ("not a live station", "demo", true, "HTTP/1.1 405"),
        ("publish denied", "live", false, "HTTP/1.1 403"),
    ];
    for (name, path, publish, want) in cases {
        let view = View {
            input: LiveInput::new("live"),
            publish,
            entries: entries(),
        };
        let mut s = session(5000, t0);
        let step = s.on_bytes(&start(path, "0"), t0, &view);
        assert!(matches!(step, Step::Close { .. }), "{name}");
        let r = out(&mut s);
        assert!(r.starts_with(want), "{name}: {r}");
        assert!(view.input.holder().is_none(), "{name}");
    }
}
