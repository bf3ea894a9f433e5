//! Unit tests of the MMS codec (byte layouts of mmsp.md §1–§3) and of the session state
//! machine (scripted client commands, as ffmpeg, VLC and libmms send them → exact replies).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::codec::*;
use super::session::{MmsConfig, MmsSession};
use crate::asf::rewrite::strip_padding;
use crate::asf::{AsfReader, Packet};
use crate::station::catalog::{AnnouncementCatalog, StationEntry};
use crate::station::feed::FeedConfig;
use crate::station::sink::{Datagram, Protocol, Session, Sink, StationView, Step, UdpChannel};
use crate::station::{Station, StationHeader, StationPacket};

// ---------------------------------------------------------------------------
// Helpers

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

/// A client command as the clients build it: MID 0x0003xxxx, fields from offset 40.
fn client(command: u16, fields: &[u8]) -> Vec<u8> {
    frame(TO_SERVER | u32::from(command), 0, fields)
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn connect() -> Vec<u8> {
    let mut f = words(&[0, 0x0004_000B, 0x0003_001C]);
    f.extend(utf16z(
        "NSPlayer/7.0.0.1956; {7E667F5D-A661-495E-A512-F55686DDA178}; Host: 127.0.0.1",
    ));
    client(cmd::CONNECT, &f)
}

fn funnel_info() -> Vec<u8> {
    client(cmd::FUNNEL_INFO, &words(&[0x00F0_F0F0, 0x0004_000B]))
}

fn connect_funnel(name: &str) -> Vec<u8> {
    let mut f = words(&[0, 0xFFFF_FFFF, 0, 0x0098_9680, 2]);
    f.extend(utf16z(name));
    client(cmd::CONNECT_FUNNEL, &f)
}

fn open_file(path: &str) -> Vec<u8> {
    let mut f = words(&[1, 0xFFFF_FFFF, 0, 0]);
    f.extend(utf16z(path));
    client(cmd::OPEN_FILE, &f)
}

fn read_block(incarnation: u32) -> Vec<u8> {
    let mut f = words(&[1, 0, 0, 0x8000, 0xFFFF_FFFF, 0]);
    f.extend(0f64.to_le_bytes());
    f.extend(3600f64.to_le_bytes());
    f.extend(words(&[incarnation, 0]));
    client(cmd::READ_BLOCK, &f)
}

fn stream_switch(entries: &[(u16, u16)]) -> Vec<u8> {
    let mut f = words(&[entries.len() as u32]);
    for &(stream, thinning) in entries {
        f.extend(0xFFFFu16.to_le_bytes());
        f.extend(stream.to_le_bytes());
        f.extend(thinning.to_le_bytes());
    }
    client(cmd::STREAM_SWITCH, &f)
}

fn start_playing(incarnation: u32) -> Vec<u8> {
    let mut f = words(&[1, 0x0001_FFFF]);
    f.extend(0f64.to_le_bytes());
    f.extend(words(&[0xFFFF_FFFF, 0xFFFF_FFFF]));
    f.extend([0xFF, 0xFF, 0xFF, 0x00]);
    f.extend(words(&[incarnation]));
    client(cmd::START_PLAYING, &f)
}

fn stop_playing() -> Vec<u8> {
    client(cmd::STOP_PLAYING, &words(&[1, 0x001F_FFFF]))
}

/// One PDU of the server's TCP stream.
#[derive(Debug, Clone, PartialEq)]
enum Pdu {
    Command { number: u16, bytes: Vec<u8> },
    Data { head: DataHead, payload: Vec<u8> },
}

/// Splits the server's byte stream the way every client does (bytes 4..8 decide).
fn split(mut b: &[u8]) -> Vec<Pdu> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if u32_at(b, 4) == SESSION_ID {
            let total = u32_at(b, 8) as usize + 16;
            out.push(Pdu::Command {
                number: u16_at(b, 36),
                bytes: b[..total].to_vec(),
            });
            b = &b[total..];
        } else {
            let head = DataHead::parse(b).unwrap();
            let n = head.packet_size as usize;
            out.push(Pdu::Data {
                head,
                payload: b[8..n].to_vec(),
            });
            b = &b[n..];
        }
    }
    out
}

fn numbers(pdus: &[Pdu]) -> Vec<u16> {
    pdus.iter()
        .filter_map(|p| match p {
            Pdu::Command { number, .. } => Some(*number),
            Pdu::Data { .. } => None,
        })
        .collect()
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf")
}

/// A station fed with the demo file's packets.
struct View {
    station: Station,
    packets: Vec<Arc<StationPacket>>,
    serves: bool,
    clients: usize,
    max: Option<usize>,
}

impl View {
    /// The demo station after `n` packets.
    fn new(n: usize) -> View {
        let mut r = AsfReader::open(&demo()).unwrap();
        let mut station = Station::new("demo", 4096);
        let h = StationHeader::live(station.next_generation(), r.header(), r.data_head(), 1);
        station.set_header(h);
        let mut packets = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            let s = strip_padding(&p.parse().unwrap());
            packets.push(station.push(s).unwrap());
            if packets.len() == n {
                break;
            }
        }
        View {
            station,
            packets,
            serves: true,
            clients: 0,
            max: Some(10),
        }
    }

    fn header(&self) -> Arc<StationHeader> {
        self.station.header().unwrap().clone()
    }

    /// The next packet of the file (looping the demo's packets from the start).
    fn more(&mut self) -> Arc<StationPacket> {
        let i = self.packets.len() % 155;
        let mut r = AsfReader::open(&demo()).unwrap();
        let mut p = None;
        for _ in 0..=i {
            p = r.next_packet();
        }
        let p = p.unwrap().unwrap();
        let s = strip_padding(&p.parse().unwrap());
        let sp = self.station.push(s).unwrap();
        self.packets.push(sp.clone());
        sp
    }
}

impl AnnouncementCatalog for View {
    fn stations(&self) -> Vec<StationEntry> {
        Vec::new()
    }
}

impl StationView for View {
    fn header(&self, station: &str) -> Option<Arc<StationHeader>> {
        (station == "demo").then(|| self.header())
    }
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>> {
        if station != "demo" {
            return Vec::new();
        }
        self.station.join_backlog().cloned().collect()
    }
    fn serves(&self, station: &str, protocol: Protocol) -> bool {
        self.serves && station == "demo" && protocol == Protocol::Mms
    }
    fn catalog(&self) -> &dyn AnnouncementCatalog {
        self
    }
    fn has_room(&self, _station: &str) -> bool {
        self.max.is_none_or(|m| self.clients < m)
    }
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn config(udp: Option<u16>) -> MmsConfig {
    MmsConfig {
        feed: FeedConfig {
            backlog_limit: 64 * 1024,
            fast_start_rate: 1000.0,
            stall_timeout: Duration::from_secs(5),
        },
        request_max_bytes: 16 * 1024,
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(3),
        udp_port: udp,
        own_udp_ports: udp.into_iter().chain([5004, 5005]).collect(),
    }
}

/// Everything the session queued, marked as written.
fn drain(s: &mut MmsSession) -> Vec<u8> {
    let q = s.output();
    let bytes: Vec<u8> = q
        .io_slices(usize::MAX)
        .iter()
        .flat_map(|s| s.to_vec())
        .collect();
    q.advance(bytes.len());
    bytes
}

fn exchange(s: &mut MmsSession, msg: &[u8], now: Instant, v: &View) -> (Step, Vec<Pdu>) {
    let step = s.on_bytes(msg, now, v);
    (step, split(&drain(s)))
}

/// Runs ffmpeg's handshake up to (not including) StartPlaying.
fn handshake(s: &mut MmsSession, now: Instant, v: &View) -> Vec<Pdu> {
    let mut all = Vec::new();
    for m in [
        connect(),
        funnel_info(),
        connect_funnel("\\\\192.168.0.129\\TCP\\1037"),
        open_file("demo"),
        read_block(2),
        stream_switch(&[(1, 0), (2, 0)]),
    ] {
        let (step, pdus) = exchange(s, &m, now, v);
        assert_eq!(step, Step::Continue);
        all.extend(pdus);
    }
    all
}

// ---------------------------------------------------------------------------
// Codec: server messages

#[test]
fn every_server_message_has_the_documented_size_and_head() {
    let cases: Vec<(ServerMessage, usize, u16)> = vec![
        (ServerMessage::ConnectedEx, 96, 0x01),
        (ServerMessage::FunnelInfo { client_id: 7 }, 80, 0x15),
        (
            ServerMessage::ConnectedFunnel {
                play_incarnation: 0,
            },
            56,
            0x02,
        ),
        (
            ServerMessage::DisconnectedFunnel {
                hr: hr::NOT_IMPLEMENTED,
                play_incarnation: 0,
            },
            48,
            0x03,
        ),
        (
            ServerMessage::OpenFile(OpenFileReport::error(hr::PATH_NOT_FOUND, 1)),
            152,
            0x06,
        ),
        (
            ServerMessage::ReadBlock {
                play_incarnation: 2,
            },
            56,
            0x11,
        ),
        (
            ServerMessage::StreamSwitch {
                play_incarnation: 0,
            },
            48,
            0x21,
        ),
        (
            ServerMessage::StartedPlaying {
                play_incarnation: 4,
                file_id: 1,
            },
            56,
            0x05,
        ),
        (
            ServerMessage::EndOfStream {
                hr: 0,
                play_incarnation: 4,
            },
            48,
            0x1E,
        ),
        (ServerMessage::Ping, 48, 0x1B),
    ];
    for (m, size, number) in cases {
        let b = m.encode(9);
        assert_eq!(b.len(), size, "{m:?}");
        assert_eq!(&b[..4], &[1, 0, 0, 0]);
        assert_eq!(u32_at(&b, 4), 0xB00B_FACE);
        assert_eq!(u32_at(&b, 8) as usize, size - 16, "messageLength");
        assert_eq!(&b[12..16], b"MMS ");
        assert_eq!(u32_at(&b, 16) as usize, (size - 16) / 8, "chunkCount");
        assert_eq!(u16_at(&b, 20), 9, "seq");
        assert_eq!(u32_at(&b, 32) as usize, (size - 32) / 8, "chunkLen");
        assert_eq!(u32_at(&b, 36), 0x0004_0000 | u32::from(number), "MID");
        assert_eq!((size - 32) % 8, 0);
    }
}

#[test]
fn report_fields_sit_where_clients_read_them() {
    let b = ServerMessage::ConnectedEx.encode(0);
    assert_eq!(u32_at(&b, 40), 0, "hr");
    assert_eq!(u32_at(&b, 44), 0xF0F0_F0EF, "no packet pair");
    assert_eq!(&b[80..96], &[0; 16], "VLC's four UTF-16 counts");

    let b = ServerMessage::FunnelInfo { client_id: 77 }.encode(0);
    assert_eq!(u32_at(&b, 40), 0);
    assert_eq!(u32_at(&b, 60), 77, "nCubs = client id");

    let r = OpenFileReport {
        hr: 0,
        play_incarnation: 1,
        open_file_id: 1,
        attributes: ATTR_BROADCAST,
        duration_s: 0.0,
        blocks: 0,
        packet_size: 3200,
        packet_count: 0,
        bit_rate: 314_000,
        header_size: 943,
    };
    let b = ServerMessage::OpenFile(r).encode(0);
    assert_eq!(u32_at(&b, 40), 0, "hr");
    assert_eq!(u32_at(&b, 44), 1, "playIncarnation echo");
    assert_eq!(u32_at(&b, 48), 1, "openFileId");
    assert_eq!(u32_at(&b, 60), 0x0200_0000, "fileAttributes: broadcast");
    assert_eq!(b[63], 0x02, "VLC: attr >> 24 == 2");
    assert_eq!((b[62], b[63] & 0x0F), (0, 2), "libmms live flag");
    assert_eq!(&b[64..72], &0f64.to_le_bytes(), "fileDuration");
    assert_eq!(u32_at(&b, 92), 3200, "filePacketSize");
    assert_eq!(&b[96..104], &[0; 8], "filePacketCount");
    assert_eq!(u32_at(&b, 104), 314_000, "fileBitRate");
    assert_eq!(u32_at(&b, 108), 943, "fileHeaderSize");

    let e = ServerMessage::OpenFile(OpenFileReport::error(hr::PATH_NOT_FOUND, 1)).encode(0);
    assert_eq!(u32_at(&e, 40), 0x8007_0003);
    assert_eq!(u32_at(&e, 48), 0, "VLC refuses openFileId 0");

    let b = ServerMessage::ReadBlock {
        play_incarnation: 2,
    }
    .encode(0);
    assert_eq!((u32_at(&b, 40), u32_at(&b, 44), u32_at(&b, 48)), (0, 2, 0));
    let b = ServerMessage::EndOfStream {
        hr: 0,
        play_incarnation: 4,
    }
    .encode(0);
    assert_eq!((u32_at(&b, 40), u32_at(&b, 44)), (0, 4));
}

// ---------------------------------------------------------------------------
// Codec: client messages and framing

#[test]
fn client_messages_decode_as_each_client_sends_them() {
    let d = |m: Vec<u8>| ClientMessage::decode(&m).unwrap();
    assert!(matches!(
        d(connect()),
        ClientMessage::Connect { subscriber } if subscriber.starts_with("NSPlayer/7.0.0.1956; {")
    ));
    assert_eq!(d(funnel_info()), ClientMessage::FunnelInfo);
    assert!(matches!(
        d(connect_funnel("\\\\192.168.0.129\\TCP\\1037")),
        ClientMessage::ConnectFunnel {
            transport: Transport::Tcp,
            ..
        }
    ));
    // VLC's UDP funnel, with its extra UTF-16 '0' after the terminator.
    let mut f = words(&[0, 0xFFFF_FFFF, 0, 0x000A_0000, 2]);
    f.extend(utf16z("\\\\127.0.0.1\\UDP\\7000"));
    f.extend(b"0\0");
    assert!(matches!(
        d(client(cmd::CONNECT_FUNNEL, &f)),
        ClientMessage::ConnectFunnel {
            transport: Transport::Udp { port: 7000 },
            ..
        }
    ));
    // mplayer: (0, 0) prefixes and 8 zero bytes before the string.
    let mut f = words(&[0, 0, 0, 0, 0, 0]);
    f.extend(utf16z("\\\\192.168.0.1\\TCP\\1037"));
    assert!(matches!(
        d(client(cmd::CONNECT_FUNNEL, &f)),
        ClientMessage::ConnectFunnel { funnel, transport: Transport::Tcp } if funnel == "\\\\192.168.0.1\\TCP\\1037"
    ));
    assert_eq!(
        d(open_file("demo")),
        ClientMessage::OpenFile {
            play_incarnation: 1,
            path: "demo".into()
        }
    );
    assert_eq!(
        d(read_block(2)),
        ClientMessage::ReadBlock {
            open_file_id: 1,
            play_incarnation: 2
        }
    );
    assert_eq!(
        d(stream_switch(&[(1, 0), (2, 2)])),
        ClientMessage::StreamSwitch {
            entries: vec![
                StreamSwitchEntry {
                    src: 0xFFFF,
                    stream: 1,
                    thinning: 0
                },
                StreamSwitchEntry {
                    src: 0xFFFF,
                    stream: 2,
                    thinning: 2
                }
            ]
        }
    );
    assert_eq!(
        d(start_playing(4)),
        ClientMessage::StartPlaying {
            open_file_id: 1,
            position: 0.0,
            location_id: 0xFFFF_FFFF,
            play_incarnation: 4
        }
    );
    assert_eq!(
        d(stop_playing()),
        ClientMessage::StopPlaying {
            play_incarnation: 0x001F_FFFF
        }
    );
    assert_eq!(
        d(client(cmd::CLOSE_FILE, &words(&[1, 1]))),
        ClientMessage::CloseFile
    );
    assert_eq!(d(client(cmd::PONG, &words(&[0, 0]))), ClientMessage::Pong);
    assert_eq!(
        d(client(cmd::SECURITY_RESPONSE, &[])),
        ClientMessage::Unsupported { command: 0x1A }
    );
    // A StartPlaying cut short of its playIncarnation is refused, not guessed.
    let short = client(cmd::START_PLAYING, &words(&[1, 0x0001_FFFF]));
    assert!(matches!(
        ClientMessage::decode(&short),
        Err(CodecError::Truncated { needed: 72, .. })
    ));
}

#[test]
fn the_reader_frames_commands_and_refuses_bad_heads() {
    let mut r = CommandReader::new(1024);
    let a = connect();
    let b = funnel_info();
    let mut both = a.clone();
    both.extend(&b);
    for chunk in both.chunks(7) {
        r.push(chunk);
    }
    assert_eq!(r.next_command().unwrap(), Some(a));
    assert_eq!(r.next_command().unwrap(), Some(b));
    assert_eq!(r.next_command().unwrap(), None);
    assert_eq!(r.buffered(), 0);

    let mut wrong = connect();
    wrong[4] = 0xCD;
    let mut r = CommandReader::new(1024);
    r.push(&wrong);
    assert!(matches!(
        r.next_command(),
        Err(CodecError::BadSessionId { .. })
    ));

    let mut seal = connect();
    seal[12..16].copy_from_slice(b"HTTP");
    let mut r = CommandReader::new(1024);
    r.push(&seal);
    assert!(matches!(r.next_command(), Err(CodecError::BadSeal { .. })));

    // A huge length is refused from the first 16 bytes, before anything is buffered.
    let mut huge = connect();
    huge[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let mut r = CommandReader::new(1024);
    r.push(&huge[..16]);
    assert!(matches!(r.next_command(), Err(CodecError::TooLong { .. })));

    let mut tiny = connect();
    tiny[8..12].copy_from_slice(&4u32.to_le_bytes());
    let mut r = CommandReader::new(1024);
    r.push(&tiny);
    assert!(matches!(r.next_command(), Err(CodecError::TooShort { .. })));

    // Truncated: waits for the rest.
    let mut r = CommandReader::new(1024);
    r.push(&connect()[..50]);
    assert_eq!(r.next_command().unwrap(), None);
}

// ---------------------------------------------------------------------------
// Codec: the client side (commands encoded, server stream framed, reports decoded)

fn ffmpeg_subscriber() -> String {
    "NSPlayer/7.0.0.1956; {7E667F5D-A661-495E-A512-F55686DDA178}; Host: 127.0.0.1".into()
}

#[test]
fn client_commands_encode_as_the_clients_send_them() {
    let cases = [
        (
            ClientMessage::Connect {
                subscriber: ffmpeg_subscriber(),
            },
            connect(),
        ),
        (ClientMessage::FunnelInfo, funnel_info()),
        (
            ClientMessage::ConnectFunnel {
                funnel: "\\\\192.168.0.129\\TCP\\1037".into(),
                transport: Transport::Tcp,
            },
            connect_funnel("\\\\192.168.0.129\\TCP\\1037"),
        ),
        (
            ClientMessage::OpenFile {
                play_incarnation: 1,
                path: "demo".into(),
            },
            open_file("demo"),
        ),
        (
            ClientMessage::StreamSwitch {
                entries: vec![
                    StreamSwitchEntry {
                        src: 0xFFFF,
                        stream: 1,
                        thinning: 0,
                    },
                    StreamSwitchEntry {
                        src: 0xFFFF,
                        stream: 2,
                        thinning: 2,
                    },
                ],
            },
            stream_switch(&[(1, 0), (2, 2)]),
        ),
        (
            ClientMessage::StartPlaying {
                open_file_id: 1,
                position: 0.0,
                location_id: u32::MAX,
                play_incarnation: 4,
            },
            start_playing(4),
        ),
        (
            ClientMessage::StopPlaying {
                play_incarnation: 0x001F_FFFF,
            },
            stop_playing(),
        ),
    ];
    for (m, bytes) in cases {
        assert_eq!(m.encode(0), bytes, "{m:?}");
    }
    // ReadBlock: FFmpeg's length field (0x00800000), the incarnation at offset 80.
    let rb = ClientMessage::ReadBlock {
        open_file_id: 1,
        play_incarnation: 2,
    }
    .encode(5);
    assert_eq!(rb.len(), read_block(2).len());
    assert_eq!(
        (u16_at(&rb, 20), u32_at(&rb, 52), u32_at(&rb, 80)),
        (5, 0x0080_0000, 2)
    );
    let pong = ClientMessage::Pong.encode(9);
    assert_eq!((u16_at(&pong, 36), u32_at(&pong, 36) >> 16), (cmd::PONG, 3));
    assert_eq!((u32_at(&pong, 40), u32_at(&pong, 44)), (1, 0x0100_FFFF));
}

#[test]
fn every_client_message_round_trips_through_the_decoder() {
    let all = [
        ClientMessage::Connect {
            subscriber: ffmpeg_subscriber(),
        },
        ClientMessage::FunnelInfo,
        ClientMessage::ConnectFunnel {
            funnel: "\\\\127.0.0.1\\TCP\\1755".into(),
            transport: Transport::Tcp,
        },
        ClientMessage::ConnectFunnel {
            funnel: "\\\\10.0.0.2\\UDP\\7000".into(),
            transport: Transport::Udp { port: 7000 },
        },
        ClientMessage::OpenFile {
            play_incarnation: 3,
            path: "/news".into(),
        },
        ClientMessage::ReadBlock {
            open_file_id: 1,
            play_incarnation: 2,
        },
        ClientMessage::StreamSwitch {
            entries: (1..=5)
                .map(|n| StreamSwitchEntry {
                    src: 0xFFFF,
                    stream: n,
                    thinning: n % 3,
                })
                .collect(),
        },
        ClientMessage::StreamSwitch { entries: vec![] },
        ClientMessage::StartPlaying {
            open_file_id: 1,
            position: 12.5,
            location_id: 77,
            play_incarnation: 4,
        },
        ClientMessage::StopPlaying {
            play_incarnation: 5,
        },
        ClientMessage::CloseFile,
        ClientMessage::Pong,
        ClientMessage::Logging,
        ClientMessage::Unsupported {
            command: cmd::SECURITY_RESPONSE,
        },
    ];
    let mut r = CommandReader::new(4096);
    for (seq, m) in all.iter().enumerate() {
        r.push(&m.encode(seq as u16));
    }
    for m in &all {
        let framed = r.next_command().unwrap().unwrap();
        assert_eq!(framed.len() % 8, 0, "{m:?}");
        assert_eq!(&ClientMessage::decode(&framed).unwrap(), m);
    }
    assert_eq!(r.buffered(), 0);
}

#[test]
fn every_server_message_round_trips_through_the_client_decoder() {
    let all = [
        ServerMessage::ConnectedEx,
        ServerMessage::FunnelInfo { client_id: 7 },
        ServerMessage::ConnectedFunnel {
            play_incarnation: 1,
        },
        ServerMessage::DisconnectedFunnel {
            hr: hr::NOT_IMPLEMENTED,
            play_incarnation: 1,
        },
        ServerMessage::OpenFile(OpenFileReport {
            hr: 0,
            play_incarnation: 1,
            open_file_id: 1,
            attributes: ATTR_BROADCAST,
            duration_s: 0.5,
            blocks: 3,
            packet_size: 3200,
            packet_count: 0x1_0000_0002,
            bit_rate: 364_000,
            header_size: 5000,
        }),
        ServerMessage::OpenFile(OpenFileReport::error(hr::PATH_NOT_FOUND, 1)),
        ServerMessage::ReadBlock {
            play_incarnation: 2,
        },
        ServerMessage::StreamSwitch {
            play_incarnation: 2,
        },
        ServerMessage::StartedPlaying {
            play_incarnation: 4,
            file_id: 1,
        },
        ServerMessage::EndOfStream {
            hr: 0,
            play_incarnation: 4,
        },
        ServerMessage::Ping,
    ];
    // The server's stream: every report, a Data packet between them.
    let mut stream = Vec::new();
    for (seq, m) in all.iter().enumerate() {
        stream.extend(m.encode(seq as u16));
        stream.extend(
            DataHead {
                location_id: seq as u32,
                incarnation: 4,
                af_flags: 0,
                packet_size: 8 + 3,
            }
            .encode(),
        );
        stream.extend([1, 2, 3]);
    }
    let mut at = 0;
    for m in &all {
        let n = server_pdu_len(&stream[at..], 4096).unwrap().unwrap();
        let pdu = &stream[at..at + n];
        assert!(is_command(pdu));
        assert_eq!(&ServerMessage::decode(pdu).unwrap(), m);
        let hr_field = match m {
            ServerMessage::OpenFile(r) => r.hr,
            ServerMessage::DisconnectedFunnel { hr, .. }
            | ServerMessage::EndOfStream { hr, .. } => *hr,
            _ => 0,
        };
        assert_eq!(report_hr(pdu), Some(hr_field), "{m:?}");
        at += n;
        let n = server_pdu_len(&stream[at..], 4096).unwrap().unwrap();
        assert!(!is_command(&stream[at..at + n]));
        assert_eq!(n, 11);
        at += n;
    }
    assert_eq!(at, stream.len());
}

#[test]
fn the_server_stream_framer_waits_and_refuses() {
    let ping = ServerMessage::Ping.encode(0);
    for cut in 0..ping.len() {
        assert_eq!(server_pdu_len(&ping[..cut], 4096), Ok(None), "cut {cut}");
    }
    assert_eq!(
        server_pdu_len(&ping, 40),
        Err(CodecError::TooLong {
            length: 48,
            max: 40
        })
    );
    let mut tiny = ping.clone();
    tiny[8..12].copy_from_slice(&4u32.to_le_bytes());
    assert!(matches!(
        server_pdu_len(&tiny, 4096),
        Err(CodecError::TooShort { .. })
    ));
    let mut seal = ping.clone();
    seal[12..16].copy_from_slice(b"HTTP");
    assert!(matches!(
        server_pdu_len(&seal, 4096),
        Err(CodecError::BadSeal { .. })
    ));
    assert_eq!(
        server_pdu_len(&[0, 0, 0, 0, 4, 0, 3, 0], 4096),
        Err(CodecError::BadPacketSize { size: 3 })
    );
    let mut unknown = ping.clone();
    unknown[36] = 0x77;
    assert_eq!(
        ServerMessage::decode(&unknown),
        Err(CodecError::UnknownReport { command: 0x77 })
    );
    let open = ServerMessage::OpenFile(OpenFileReport::error(hr::ACCESS_DENIED, 1)).encode(0);
    assert!(matches!(
        ServerMessage::decode(&open[..100]),
        Err(CodecError::Truncated { needed: 112, .. })
    ));
}

#[test]
fn data_heads_and_header_fragments() {
    let h = DataHead {
        location_id: 0x0102_0304,
        incarnation: 4,
        af_flags: 0x17,
        packet_size: 3208,
    };
    let b = h.encode();
    assert_eq!(b, [4, 3, 2, 1, 4, 0x17, 0x88, 0x0C]);
    assert_eq!(DataHead::parse(&b), Some(h));
    assert_eq!(DataHead::parse(&b[..7]), None);

    let blob: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    let frags = header_packets(&blob, 1000, 2);
    assert_eq!(frags.len(), 3);
    let mut joined = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let h = DataHead::parse(f).unwrap();
        assert_eq!(h.location_id, i as u32);
        assert_eq!(h.incarnation, 2);
        assert_eq!(h.af_flags, if i == 2 { 0x0C } else { 0x04 });
        assert_eq!(h.packet_size as usize, f.len());
        joined.extend_from_slice(&f[8..]);
    }
    assert_eq!(joined, blob);
    let one = header_packets(&blob, 3200, 2);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0][5], 0x0C, "a single fragment is the last one");
}

proptest! {
    #[test]
    fn framing_survives_any_split(cuts in proptest::collection::vec(1usize..60, 1..20)) {
        let msgs = [connect(), funnel_info(), open_file("demo"), read_block(2), start_playing(4)];
        let stream: Vec<u8> = msgs.concat();
        let mut r = CommandReader::new(4096);
        let mut got = Vec::new();
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= stream.len() { break; }
            let end = (at + c).min(stream.len());
            r.push(&stream[at..end]);
            at = end;
            while let Some(m) = r.next_command().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs.to_vec());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut r = CommandReader::new(512);
        r.push(&bytes);
        while let Ok(Some(m)) = r.next_command() {
            let _ = ClientMessage::decode(&m);
        }
        let v = View::new(0);
        let mut s = MmsSession::new(peer(), config(Some(9000)), Instant::now());
        let _ = s.on_bytes(&bytes, Instant::now(), &v);
    }

    #[test]
    fn random_fields_in_valid_frames_never_panic(
        number in any::<u16>(),
        fields in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let m = client(number, &fields);
        let _ = ClientMessage::decode(&m);
        let v = View::new(4);
        let mut s = MmsSession::new(peer(), config(Some(9000)), Instant::now());
        let now = Instant::now();
        let _ = s.on_bytes(&connect(), now, &v);
        let _ = s.on_bytes(&m, now, &v);
    }
}

// ---------------------------------------------------------------------------
// Session

#[test]
fn ffmpeg_sequence_gets_one_reply_per_request_then_header_then_media() {
    let v = View::new(40);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(None), now);
    let pdus = handshake(&mut s, now, &v);
    assert_eq!(numbers(&pdus), [0x01, 0x15, 0x02, 0x06, 0x11, 0x21]);
    // 0x11 comes before the header Data packets, which carry incarnation 2 and end with 0x0C.
    let rb = pdus
        .iter()
        .position(|p| matches!(p, Pdu::Command { number: 0x11, .. }))
        .unwrap();
    let header: Vec<&Pdu> = pdus[rb + 1..]
        .iter()
        .take_while(|p| matches!(p, Pdu::Data { .. }))
        .collect();
    let mut blob: Vec<u8> = Vec::new();
    for (i, p) in header.iter().enumerate() {
        let Pdu::Data { head, payload } = p else {
            unreachable!()
        };
        assert_eq!(head.incarnation, 2);
        assert_eq!(head.location_id, i as u32);
        assert!(payload.len() <= 3200);
        blob.extend_from_slice(payload);
    }
    let Pdu::Data { head: last, .. } = header.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(last.af_flags, 0x0C);
    assert_eq!(&blob[..], &v.header().bytes[..], "the exact header blob");
    assert_eq!(
        &blob[blob.len() - 2..],
        &[1u8, 1],
        "ends with the Data Object head"
    );

    // StartPlaying: 0x05 first, then media packets of exactly 3200 bytes, incarnation 4,
    // LocationId 0, 1, 2… starting at the newest clean point.
    let (step, pdus) = exchange(&mut s, &start_playing(4), now, &v);
    assert_eq!(step, Step::Continue);
    assert!(s.is_playing());
    assert!(matches!(pdus[0], Pdu::Command { number: 0x05, .. }));
    let media: Vec<(DataHead, Vec<u8>)> = pdus[1..]
        .iter()
        .map(|p| match p {
            Pdu::Data { head, payload } => (*head, payload.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(!media.is_empty(), "the clean point goes out at once");
    // The clean point, starting at its key frame.
    let first_clean = v.station.join_backlog().next().unwrap().as_join_point();
    assert!(
        media[0].1[..first_clean.bytes.len()] == first_clean.bytes[..],
        "the first media packet is the join point"
    );
    for (i, (head, payload)) in media.iter().enumerate() {
        assert_eq!(head.incarnation, 4);
        assert_eq!(head.location_id, i as u32);
        assert_eq!(head.af_flags, i as u8);
        assert_eq!(head.packet_size, 3208);
        assert_eq!(payload.len(), 3200);
        Packet::parse(payload).expect("a re-padded packet parses");
    }
    // The fast-start rate (1000x here) releases the rest of the backlog on the next timeout.
    let backlog = v.station.join_backlog().count();
    let later = now + Duration::from_secs(1);
    assert_eq!(s.on_timeout(later), Step::Continue);
    let rest = split(&drain(&mut s));
    assert_eq!(media.len() + rest.len(), backlog);
}

#[test]
fn live_packets_follow_and_stop_gives_end_of_stream() {
    let mut v = View::new(30);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(None), now);
    handshake(&mut s, now, &v);
    exchange(&mut s, &start_playing(4), now, &v);
    let t = now + Duration::from_secs(2);
    s.on_timeout(t);
    drain(&mut s);
    let p = v.more();
    assert_eq!(s.on_packet(&p, t), Step::Continue);
    let pdus = split(&drain(&mut s));
    assert_eq!(pdus.len(), 1);
    let Pdu::Data { payload, .. } = &pdus[0] else {
        panic!()
    };
    assert_eq!(&payload[..p.bytes.len()], &p.bytes[..]);

    // VLC's pause/seek: 0x09 → 0x1E (hr 0); no media while stopped; 0x07 → 0x05 + media.
    let (step, pdus) = exchange(&mut s, &stop_playing(), t, &v);
    assert_eq!(step, Step::Continue);
    assert_eq!(numbers(&pdus), [0x1E]);
    let Pdu::Command { bytes, .. } = &pdus[0] else {
        panic!()
    };
    assert_eq!(u32_at(bytes, 40), 0);
    let p = v.more();
    s.on_packet(&p, t);
    assert!(drain(&mut s).is_empty());
    let (_, pdus) = exchange(&mut s, &start_playing(5), t, &v);
    assert_eq!(numbers(&pdus)[0], 0x05);
    assert!(pdus.len() > 1, "rejoined at the clean point");
    assert!(pdus[1..]
        .iter()
        .all(|p| matches!(p, Pdu::Data { head, .. } if head.incarnation == 5)));

    // Pongs are accepted silently; CloseFile closes.
    let (step, pdus) = exchange(&mut s, &client(cmd::PONG, &words(&[0, 0])), t, &v);
    assert_eq!((step, pdus.len()), (Step::Continue, 0));
    let (step, _) = exchange(&mut s, &client(cmd::CLOSE_FILE, &words(&[1, 1])), t, &v);
    assert!(matches!(step, Step::Close { .. }));
}

#[test]
fn refusals_use_the_open_file_error_and_close() {
    let now = Instant::now();
    let v = View::new(5);
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &v);
    exchange(&mut s, &connect_funnel("\\\\1.2.3.4\\TCP\\1037"), now, &v);
    let (step, pdus) = exchange(&mut s, &open_file("nope"), now, &v);
    assert!(matches!(step, Step::Close { reason } if reason.contains("nope")));
    let Pdu::Command { number, bytes } = &pdus[0] else {
        panic!()
    };
    assert_eq!(*number, 0x06);
    assert_eq!(u32_at(bytes, 40), 0x8007_0003);
    assert_eq!(u32_at(bytes, 48), 0);

    // A full station.
    let mut full = View::new(5);
    full.clients = 10;
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &full);
    exchange(
        &mut s,
        &connect_funnel("\\\\1.2.3.4\\TCP\\1037"),
        now,
        &full,
    );
    let (step, pdus) = exchange(&mut s, &open_file("/demo"), now, &full);
    assert!(matches!(step, Step::Close { reason } if reason.contains("full")));
    let Pdu::Command { bytes, .. } = &pdus[0] else {
        panic!()
    };
    assert_eq!(u32_at(bytes, 40), 0x8007_0005);

    // The leading '/' (libmms) and a query are accepted.
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &v);
    exchange(&mut s, &connect_funnel("\\\\1.2.3.4\\TCP\\1037"), now, &v);
    let (step, pdus) = exchange(&mut s, &open_file("/demo?x=1"), now, &v);
    assert_eq!(step, Step::Continue);
    let Pdu::Command { bytes, .. } = &pdus[0] else {
        panic!()
    };
    assert_eq!((u32_at(bytes, 40), u32_at(bytes, 48)), (0, 1));
    assert_eq!(s.station(), Some("demo"));
}

#[test]
fn out_of_order_and_hostile_commands_close() {
    let now = Instant::now();
    let v = View::new(5);
    // StartPlaying before anything.
    let mut s = MmsSession::new(peer(), config(None), now);
    let (step, pdus) = exchange(&mut s, &start_playing(4), now, &v);
    assert!(matches!(step, Step::Close { reason } if reason.contains("unexpected")));
    assert!(pdus.is_empty());
    // A second Connect.
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &v);
    let (step, _) = exchange(&mut s, &connect(), now, &v);
    assert!(matches!(step, Step::Close { .. }));
    // Garbage (an HTTP request on 1755).
    let mut s = MmsSession::new(peer(), config(None), now);
    let (step, pdus) = exchange(&mut s, b"GET /demo HTTP/1.0\r\n\r\n", now, &v);
    assert!(matches!(step, Step::Close { reason } if reason.contains("sessionId")));
    assert!(pdus.is_empty());
    // The security response nobody should send.
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &v);
    let (step, _) = exchange(&mut s, &client(cmd::SECURITY_RESPONSE, &[0; 8]), now, &v);
    assert!(matches!(step, Step::Close { reason } if reason.contains("0x1a")));
    // A command over request_max_bytes.
    let mut s = MmsSession::new(peer(), config(None), now);
    let big = client(cmd::LOGGING, &vec![0u8; 20_000]);
    let (step, _) = exchange(&mut s, &big[..16], now, &v);
    assert!(matches!(step, Step::Close { reason } if reason.contains("over the limit")));
}

#[test]
fn handshake_timeout_and_idle_timeout() {
    let now = Instant::now();
    let v = View::new(5);
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &v);
    assert_eq!(s.deadline(), Some(now + Duration::from_secs(10)));
    assert_eq!(s.on_timeout(now + Duration::from_secs(9)), Step::Continue);
    assert!(matches!(
        s.on_timeout(now + Duration::from_secs(10)),
        Step::Close { reason } if reason.contains("handshake")
    ));

    // Paused after playing: idle timeout since the last command.
    let mut s = MmsSession::new(peer(), config(None), now);
    handshake(&mut s, now, &v);
    exchange(&mut s, &start_playing(4), now, &v);
    let t = now + Duration::from_secs(1);
    exchange(&mut s, &stop_playing(), t, &v);
    assert_eq!(s.deadline(), Some(t + Duration::from_secs(5)));
    assert!(matches!(
        s.on_timeout(t + Duration::from_secs(5)),
        Step::Close { reason } if reason.contains("idle")
    ));
}

#[test]
fn a_silent_station_gets_pings_while_playing() {
    let now = Instant::now();
    let v = View::new(1);
    let mut s = MmsSession::new(peer(), config(None), now);
    handshake(&mut s, now, &v);
    exchange(&mut s, &start_playing(4), now, &v);
    drain(&mut s);
    let t = now + Duration::from_secs(3);
    assert!(s.deadline().unwrap() <= t);
    assert_eq!(s.on_timeout(t), Step::Continue);
    let pdus = split(&drain(&mut s));
    assert_eq!(numbers(&pdus), [0x1B]);
    let Pdu::Command { bytes, .. } = &pdus[0] else {
        panic!()
    };
    assert_eq!(bytes.len(), 48);
}

#[test]
fn stream_selection_filters_unselected_payloads() {
    let mut v = View::new(20);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(None), now);
    for m in [
        connect(),
        connect_funnel("\\\\1.2.3.4\\TCP\\1037"),
        open_file("demo"),
        read_block(2),
    ] {
        exchange(&mut s, &m, now, &v);
    }
    // Audio (stream 2) off, as VLC's --no-audio would send it.
    let (_, pdus) = exchange(&mut s, &stream_switch(&[(1, 0), (2, 2)]), now, &v);
    assert_eq!(numbers(&pdus), [0x21]);
    exchange(&mut s, &start_playing(4), now, &v);
    s.on_timeout(now + Duration::from_secs(1));
    drain(&mut s);
    let mut media = 0;
    let mut next_location = None;
    for _ in 0..60 {
        let p = v.more();
        s.on_packet(&p, now + Duration::from_secs(1));
        for pdu in split(&drain(&mut s)) {
            let Pdu::Data { head, payload } = pdu else {
                panic!("command in the data phase")
            };
            assert_eq!(payload.len(), 3200);
            if let Some(n) = next_location {
                assert_eq!(
                    head.location_id, n,
                    "no gaps: dropped packets take no number"
                );
            }
            next_location = Some(head.location_id + 1);
            let pkt = Packet::parse(&payload).unwrap();
            assert!(
                pkt.payloads.iter().all(|pl| pl.stream == 1),
                "audio filtered"
            );
            media += 1;
        }
    }
    assert!(media > 10, "video packets still flow: {media}");
}

#[test]
fn mmsu_sends_header_and_media_by_udp_and_commands_by_tcp() {
    let v = View::new(30);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(Some(5005)), now);
    exchange(&mut s, &connect(), now, &v);
    let (_, pdus) = exchange(&mut s, &connect_funnel("\\\\10.9.9.9\\UDP\\7000"), now, &v);
    assert_eq!(numbers(&pdus), [0x02]);
    exchange(&mut s, &open_file("demo"), now, &v);
    let (step, pdus) = exchange(&mut s, &read_block(2), now, &v);
    assert_eq!(step, Step::Continue);
    assert!(
        pdus.is_empty(),
        "no 0x11 for VLC's UDP mode, no data on TCP"
    );
    let mut dg: Vec<Datagram> = Vec::new();
    s.take_datagrams(&mut dg);
    assert!(!dg.is_empty());
    let to: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    for d in &dg {
        assert_eq!(d.via, UdpChannel::MmsData);
        assert_eq!(d.to, to, "to the TCP peer's address, not the announced one");
        assert_eq!(DataHead::parse(&d.to_vec()).unwrap().incarnation, 2);
    }
    exchange(&mut s, &stream_switch(&[(1, 0), (2, 0)]), now, &v);
    let (_, pdus) = exchange(&mut s, &start_playing(4), now, &v);
    assert_eq!(numbers(&pdus), [0x05]);
    assert_eq!(pdus.len(), 1);
    dg.clear();
    s.take_datagrams(&mut dg);
    assert!(!dg.is_empty());
    for (i, d) in dg.iter().enumerate() {
        let h = DataHead::parse(&d.to_vec()).unwrap();
        assert_eq!((h.incarnation, h.location_id), (4, i as u32));
        assert_eq!(d.to_vec().len(), 3208);
    }

    // Without a UDP data socket, MMSU is refused with 0x03.
    let mut s = MmsSession::new(peer(), config(None), now);
    exchange(&mut s, &connect(), now, &v);
    let (step, pdus) = exchange(&mut s, &connect_funnel("\\\\10.9.9.9\\UDP\\7000"), now, &v);
    assert_eq!(numbers(&pdus), [0x03]);
    assert!(matches!(step, Step::Close { .. }));

    // One of the server's own UDP ports is refused with 0x03: the server never sends to
    // itself. (A port of 0 is read as no UDP at all: data then goes over TCP.)
    for port in [5005, 5004] {
        let mut s = MmsSession::new(peer(), config(Some(5005)), now);
        exchange(&mut s, &connect(), now, &v);
        let funnel = format!("\\\\127.0.0.1\\UDP\\{port}");
        let (step, pdus) = exchange(&mut s, &connect_funnel(&funnel), now, &v);
        assert_eq!(numbers(&pdus), [0x03], "port {port}");
        assert!(matches!(step, Step::Close { .. }), "port {port}");
        let mut dg = Vec::new();
        s.take_datagrams(&mut dg);
        assert!(dg.is_empty());
    }
}

#[test]
fn a_client_that_stops_reading_skips_then_is_closed() {
    let mut v = View::new(20);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(None), now);
    handshake(&mut s, now, &v);
    exchange(&mut s, &start_playing(4), now, &v);
    s.on_timeout(now + Duration::from_secs(1));
    // Nothing is drained from here on: the queue only grows up to the backlog limit.
    let mut t = now + Duration::from_secs(1);
    let mut closed = None;
    for _ in 0..400 {
        t += Duration::from_millis(65);
        let p = v.more();
        let step = s.on_packet(&p, t);
        assert!(
            s.output().queued_bytes() < 64 * 1024 + 2 * 3208,
            "bounded backlog"
        );
        if let Step::Close { reason } = step {
            closed = Some((t, reason));
            break;
        }
    }
    let (_, reason) = closed.expect("closed after the stall timeout");
    assert!(reason.contains("fell behind"), "{reason}");
    assert!(
        s.output().is_empty(),
        "nothing left to write to a dead client"
    );
}

#[test]
fn a_playlist_loop_continues_and_a_new_layout_ends_the_stream() {
    let mut v = View::new(20);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(None), now);
    handshake(&mut s, now, &v);
    exchange(&mut s, &start_playing(4), now, &v);
    s.on_timeout(now + Duration::from_secs(1));
    drain(&mut s);

    // The same file again: a new generation with the same streams.
    let r = AsfReader::open(&demo()).unwrap();
    let g = v.station.next_generation();
    let h = v
        .station
        .set_header(StationHeader::live(g, r.header(), r.data_head(), 1));
    assert_eq!(s.on_header(&h, now), Step::Continue);
    let mut sent = 0;
    for _ in 0..40 {
        let p = v.more();
        assert_eq!(p.generation, g);
        s.on_packet(&p, now + Duration::from_secs(2));
        sent += split(&drain(&mut s)).len();
    }
    assert!(sent > 0, "continues after the loop");

    // A header with other streams: 0x1E then close (never 0x20).
    let mut other = (*h).clone();
    other.generation += 1;
    other.header.streams.truncate(1);
    other.bytes = Arc::from(vec![0u8; 10]);
    let step = s.on_header(&Arc::new(other), now);
    assert!(matches!(step, Step::Close { .. }));
    assert_eq!(numbers(&split(&drain(&mut s))), [0x1E]);
}

#[test]
fn a_stream_switch_while_playing_is_answered_and_applied_at_a_key_frame() {
    let mut v = View::new(20);
    let now = Instant::now();
    let mut s = MmsSession::new(peer(), config(None), now);
    for m in [
        connect(),
        connect_funnel("\\\\1.2.3.4\\TCP\\1037"),
        open_file("demo"),
        read_block(2),
        stream_switch(&[(1, 0), (2, 0)]),
        start_playing(4),
    ] {
        exchange(&mut s, &m, now, &v);
    }
    s.on_timeout(now + Duration::from_secs(1));
    drain(&mut s);
    // Video off while playing ([MS-MMSP] 3.2.5.10): answered with 0x21, then audio only.
    let (step, pdus) = exchange(&mut s, &stream_switch(&[(1, 2), (2, 0)]), now, &v);
    assert_eq!(step, Step::Continue);
    assert_eq!(numbers(&pdus), [0x21]);
    // A storm of contradictory and unknown entries: answered, never a panic.
    for i in 0..200u16 {
        let (_, pdus) = exchange(
            &mut s,
            &stream_switch(&[(1, i % 3), (1, 2), (99, 0)]),
            now,
            &v,
        );
        assert_eq!(numbers(&pdus), [0x21]);
    }
    let streams_of = |s: &mut MmsSession, v: &mut View, n: usize| -> Vec<(u8, bool, u32)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let p = v.more();
            s.on_packet(&p, now + Duration::from_secs(1));
            for pdu in split(&drain(s)) {
                if let Pdu::Data { payload, .. } = pdu {
                    let pkt = Packet::parse(&payload).unwrap();
                    out.extend(
                        pkt.payloads
                            .iter()
                            .map(|pl| (pl.stream, pl.key_frame, pl.offset)),
                    );
                }
            }
        }
        out
    };
    // The storm ended on "1 off".
    let got = streams_of(&mut s, &mut v, 30);
    assert!(got.iter().all(|p| p.0 == 2), "audio only");
    // Video back on: it starts at a key-frame object's first fragment.
    exchange(&mut s, &stream_switch(&[(1, 0), (2, 0)]), now, &v);
    let got = streams_of(&mut s, &mut v, 120);
    let first_video = got.iter().find(|p| p.0 == 1).expect("video again");
    assert!(first_video.1 && first_video.2 == 0, "{first_video:?}");
}
