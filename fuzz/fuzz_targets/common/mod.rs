//! Helpers shared by the fuzz targets: deterministic input splitting and a demo station built
//! once from `station-configs/media/demo.asf`. Each target includes this file with
//! `mod common;` and uses only what it needs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use asfcast::asf::rewrite::strip_padding;
use asfcast::asf::AsfReader;
use asfcast::station::catalog::{AnnouncementCatalog, StationEntry};
use asfcast::station::feed::FeedConfig;
use asfcast::station::sink::{OutQueue, Protocol, StationView};
use asfcast::station::{Station, StationHeader, StationPacket};

/// A small deterministic generator (xorshift64*) seeded from input bytes (targets pass the
/// whole input, so every input has its own splits), so the same input always gives the same
/// chunk splits and clock steps.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: &[u8]) -> Rng {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for &b in seed {
            s = (s ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        Rng(s | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Splits `data` into consecutive non-empty pieces whose lengths come from `rng`: mostly short
/// (1..=16 bytes), sometimes up to 512, sometimes everything left.
pub fn chunks<'a>(data: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = match rng.below(8) {
            0 => rest.len(),
            1 | 2 => 1 + rng.below(512),
            _ => 1 + rng.below(16),
        }
        .min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// Splits `data` into the items of a `0xFF 0x00`-free framing: a little-endian 16-bit length
/// then that many bytes, as long as the input lasts (the last item takes what is left).
pub fn length_prefixed(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        out.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    out
}

/// Splits a text input on a separator line, for targets that take several strings.
pub fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut parts: Vec<String> = text.splitn(n, '\u{1}').map(str::to_string).collect();
    parts.resize(n, String::new());
    parts
}

pub fn demo_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../station-configs/media/demo.asf")
}

/// The demo station: its live header and its first packets (stripped), built once.
pub struct Demo {
    pub header: Arc<StationHeader>,
    pub packets: Vec<Arc<StationPacket>>,
    pub base: Instant,
}

pub fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let mut r = AsfReader::open(&demo_path()).expect("demo.asf opens");
        let mut st = Station::new("demo", 10_000);
        let header = st.set_header(StationHeader::live(1, r.header(), r.data_head(), 1));
        let mut packets = Vec::new();
        while let Some(p) = r.next_packet() {
            let s = strip_padding(&p.expect("demo packet").parse().expect("demo parses"));
            if let Some(sp) = st.push(s) {
                packets.push(sp);
            }
            if packets.len() == 40 {
                break;
            }
        }
        Demo {
            header,
            packets,
            base: Instant::now(),
        }
    })
}

/// Bytes of the demo header plus every demo packet: what one client can be sent without any
/// request repeating it.
pub fn demo_bytes() -> usize {
    let d = demo();
    d.header.bytes.len() + d.packets.iter().map(|p| p.bytes.len()).sum::<usize>()
}

pub fn feed() -> FeedConfig {
    FeedConfig {
        backlog_limit: 256 * 1024,
        fast_start_rate: 4.0,
        stall_timeout: Duration::from_secs(30),
    }
}

/// A station view serving the demo station under the name `demo` for `protocol`, with a
/// catalog entry (`demo.nsc`, `demo.asx`) for the HTTP routes.
pub struct View {
    pub protocol: Protocol,
    pub entries: Vec<StationEntry>,
    pub backlog: usize,
}

impl View {
    pub fn new(protocol: Protocol) -> View {
        View {
            protocol,
            entries: catalog(),
            backlog: 3,
        }
    }
}

pub fn catalog() -> Vec<StationEntry> {
    vec![
        StationEntry {
            name: "demo".into(),
            description: "Demo <station> & co".into(),
            nsc: Some("[Address]\r\nName=demo\r\n".into()),
            asx: Some(
                "<ASX version=\"3.0\"><Entry><Ref href=\"mms://h/demo\"/></Entry></ASX>".into(),
            ),
            nsc_file: "demo.nsc".into(),
            asx_file: "demo.asx".into(),
            urls: vec!["mms://127.0.0.1/demo".into()],
        },
        StationEntry {
            name: "later".into(),
            nsc_file: "later.nsc".into(),
            asx_file: "later.asx".into(),
            ..StationEntry::default()
        },
    ]
}

impl StationView for View {
    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        (station == "demo").then(|| demo().header.clone())
    }
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        if station == "demo" {
            demo().packets.iter().take(self.backlog).cloned().collect()
        } else {
            Vec::new()
        }
    }
    fn serves(&self, station: &str, protocol: Protocol) -> bool {
        station == "demo" && protocol == self.protocol
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        &self.entries
    }
}

/// Takes everything queued (as written by the shell) and returns its length.
pub fn drain(q: &mut OutQueue) -> usize {
    let n = q.queued_bytes();
    let got: usize = q.io_slices(usize::MAX).iter().map(|s| s.len()).sum();
    assert_eq!(got, n, "io_slices disagrees with queued_bytes");
    q.advance(n);
    assert!(
        q.is_empty(),
        "queue not empty after advancing by its length"
    );
    n
}

/// Marks a random part of the queue as written, as a slow socket would (sometimes all of it,
/// sometimes a few bytes, sometimes nothing). Returns the bytes taken.
pub fn drain_some(q: &mut OutQueue, rng: &mut Rng) -> usize {
    let queued = q.queued_bytes();
    let n = match rng.below(4) {
        0 => 0,
        1 => rng.below(queued + 1),
        _ => queued,
    };
    q.advance(n);
    n
}

/// Drives a unicast session with a client's bytes in chunk splits drawn from `rng`, with the
/// clock moving on, timeouts, station packets (once the session names the demo station),
/// header changes and partial writes in between, the way the shell would. Asserts that
/// nothing panics and that the output (stream bytes and datagrams) stays bounded: each
/// request the input could hold (one per 16 bytes) may cost the demo header and backlog plus
/// 16 KiB, each station packet twice its size plus 1 KiB, each other event 1 KiB.
/// Returns the output bytes.
pub fn drive(
    s: &mut dyn asfcast::station::sink::Session,
    view: &View,
    data: &[u8],
    rng: &mut Rng,
) -> usize {
    use asfcast::station::sink::{Datagram, Step};

    let d = demo();
    let mut now = d.base;
    let per_request = demo_bytes() + 16 * 1024;
    let mut bound = per_request;
    let mut out = 0usize;
    let mut grams: Vec<Datagram> = Vec::new();
    let mut next_packet = view.backlog;
    let mut closed = false;
    let _ = s.protocol();
    for piece in chunks(data, rng) {
        bound += (piece.len() / 16 + 1) * per_request;
        let mut step = s.on_bytes(piece, now, view);
        for _ in 0..rng.below(3) {
            if step != Step::Continue {
                break;
            }
            bound += 1024;
            step = match rng.below(4) {
                0 => {
                    now += std::time::Duration::from_millis(rng.below(20_000) as u64);
                    match s.deadline() {
                        Some(t) if t <= now => s.on_timeout(now),
                        _ => Step::Continue,
                    }
                }
                1 if s.station() == Some("demo") => {
                    let p = &d.packets[next_packet % d.packets.len()];
                    next_packet += 1;
                    bound += 2 * p.bytes.len();
                    s.on_packet(p, now)
                }
                2 if s.station() == Some("demo") && rng.below(4) == 0 => {
                    bound += per_request;
                    s.on_header(&d.header, now)
                }
                _ => {
                    now += std::time::Duration::from_millis(rng.below(500) as u64);
                    Step::Continue
                }
            };
        }
        out += drain_some(s.output(), rng);
        s.take_datagrams(&mut grams);
        out += grams.iter().map(|g| g.len()).sum::<usize>();
        grams.clear();
        assert!(
            out + s.output().queued_bytes() <= bound,
            "{} bytes out for {} bytes in",
            out + s.output().queued_bytes(),
            data.len()
        );
        if let Step::Close { reason } = step {
            assert!(!reason.is_empty());
            closed = true;
            break;
        }
    }
    if !closed {
        let _ = if rng.below(2) == 0 {
            s.on_peer_closed(now)
        } else {
            s.on_station_end(now)
        };
    }
    out += drain(s.output());
    s.take_datagrams(&mut grams);
    out += grams.iter().map(|g| g.len()).sum::<usize>();
    assert!(
        out <= bound + per_request,
        "{out} bytes out for {} bytes in",
        data.len()
    );
    out
}
