//! The MMS message codec ([MS-MMSP] 2.2), sans-I/O: framing of client commands out of a TCP
//! byte stream, decoding of the client messages a live server handles, encoding of the server
//! replies with the exact sizes and fields real clients read, and the 8-byte Data packet head
//! (2.2.2) that carries header fragments and ASF data packets.
//!
//! The client side is here too, so that tools and tests speak MMS through the same layouts
//! instead of re-typing them: [`ClientMessage::encode`] writes the commands as FFmpeg sends
//! them, [`server_pdu_len`] frames the server's stream (commands and Data packets mixed), and
//! [`ServerMessage::decode`] reads the reports back.
//!
//! Layouts and the client requirements behind every size come from
//! `shared/docs/protocols/mmsp.md` (§1 framing, §2 messages, §3 Data packets, §5 clients).
//! Offsets below are from the start of the TCP message, as in that note:
//!
//! ```text
//!  0 rep 0x01 | version | versionMinor | padding
//!  4 sessionId 0xB00BFACE          <- how every client tells a command from a Data packet
//!  8 messageLength (= total − 16)
//! 12 seal "MMS "                   <- libmms rejects anything else
//! 16 chunkCount (= (total − 16)/8) | 20 seq u16 | 22 MBZ | 24 timeSent f64
//! 32 chunkLen (= (total − 32)/8)   | 36 MID (low 16 = command, high 16 = direction)
//! 40 message fields (server reports start with hr, which ffmpeg and libmms check)
//! ```
//!
//! Quirks served here: one message per TcpMessageHeader (no client splits several), 8-byte
//! aligned messages, hr = 0 in every report (ffmpeg checks hr in any command of ≥ 56 bytes),
//! ReportConnectedEX ≥ 96 bytes and ReportOpenFile ≥ 112 bytes (VLC), mplayer's and VLC's odd
//! funnel strings, paths with or without the leading '/'. Every length read from the client is
//! checked; a command longer than the configured limit is refused before it is buffered.

use std::fmt;

/// sessionId at offset 4 of every command.
pub const SESSION_ID: u32 = 0xB00B_FACE;
/// seal at offset 12: "MMS ".
pub const SEAL: u32 = 0x2053_4D4D;
/// Bytes of a command up to and including the MID.
pub const COMMAND_HEAD_LEN: usize = 40;
/// High half of the MID on server→client messages.
pub const TO_CLIENT: u32 = 0x0004_0000;
/// High half of the MID on client→server messages.
pub const TO_SERVER: u32 = 0x0003_0000;
/// Size of a Data packet head.
pub const DATA_HEAD_LEN: usize = 8;
/// Largest Data packet payload: PacketSize is 16 bits and counts the head.
pub const MAX_DATA_PAYLOAD: usize = u16::MAX as usize - DATA_HEAD_LEN;
/// Longest UTF-16 string (in code units) taken from a client message.
const MAX_STRING_UNITS: usize = 1024;

/// Client→server command numbers (low 16 bits of the MID).
pub mod cmd {
    pub const CONNECT: u16 = 0x01;
    pub const CONNECT_FUNNEL: u16 = 0x02;
    pub const OPEN_FILE: u16 = 0x05;
    pub const START_PLAYING: u16 = 0x07;
    pub const STOP_PLAYING: u16 = 0x09;
    pub const CLOSE_FILE: u16 = 0x0D;
    pub const READ_BLOCK: u16 = 0x15;
    pub const FUNNEL_INFO: u16 = 0x18;
    pub const SECURITY_RESPONSE: u16 = 0x1A;
    pub const PONG: u16 = 0x1B;
    pub const START_STRIDING: u16 = 0x28;
    pub const LOGGING: u16 = 0x32;
    pub const STREAM_SWITCH: u16 = 0x33;
}

/// Server→client report numbers (low 16 bits of the MID).
pub mod report {
    pub const CONNECTED_EX: u16 = 0x01;
    pub const CONNECTED_FUNNEL: u16 = 0x02;
    pub const DISCONNECTED_FUNNEL: u16 = 0x03;
    pub const STARTED_PLAYING: u16 = 0x05;
    pub const OPEN_FILE: u16 = 0x06;
    pub const READ_BLOCK: u16 = 0x11;
    pub const FUNNEL_INFO: u16 = 0x15;
    pub const PING: u16 = 0x1B;
    pub const END_OF_STREAM: u16 = 0x1E;
    pub const STREAM_SWITCH: u16 = 0x21;
}

/// HRESULTs the server reports.
pub mod hr {
    pub const OK: u32 = 0;
    /// "Path not found" (libmms prints it by name).
    pub const PATH_NOT_FOUND: u32 = 0x8007_0003;
    /// "Access Denied" (libmms prints it by name): used when a station is full.
    pub const ACCESS_DENIED: u32 = 0x8007_0005;
    /// ERROR_NOT_READY: the station has no header yet.
    pub const NOT_READY: u32 = 0x8007_0015;
    /// E_NOTIMPL: a transport the server does not offer.
    pub const NOT_IMPLEMENTED: u32 = 0x8000_4001;
}

/// fileAttributes of a live broadcast (VLC tests the top byte, libmms bytes 62/63).
pub const ATTR_BROADCAST: u32 = 0x0200_0000;
/// playIncarnation "no packet pair" ([MS-MMSP] 3.2.5.3).
pub const NO_PACKET_PAIR: u32 = 0xF0F0_F0EF;
/// AFFlags of a header fragment that is not the last one (ffmpeg, libmms).
pub const AF_HEADER_MORE: u8 = 0x04;
/// AFFlags of the last header fragment (ffmpeg accepts 0x08 or 0x0C, libmms too).
pub const AF_HEADER_LAST: u8 = 0x0C;

/// Why client bytes could not be framed or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("not an MMS command: sessionId 0x{found:08x} (expected 0xb00bface)")]
    BadSessionId { found: u32 },
    #[error("bad seal 0x{found:08x} (expected \"MMS \")")]
    BadSeal { found: u32 },
    #[error("command length {length} is over the limit of {max} bytes")]
    TooLong { length: u64, max: usize },
    #[error("command length {length} is shorter than the {min}-byte command head")]
    TooShort { length: u64, min: usize },
    #[error("{what}: needs {needed} bytes, command has {available}")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("report 0x{command:02x} is not one a server sends")]
    UnknownReport { command: u16 },
    #[error("Data packet size {size} is shorter than its {DATA_HEAD_LEN}-byte head")]
    BadPacketSize { size: u16 },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn f64_at(b: &[u8], at: usize) -> Option<f64> {
    Some(f64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A NUL-terminated (or buffer-terminated) UTF-16LE string at `at`, bounded.
fn utf16_at(b: &[u8], at: usize) -> String {
    let units: Vec<u16> = b
        .get(at..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .take(MAX_STRING_UNITS)
        .collect();
    String::from_utf16_lossy(&units)
}

fn need(msg: &[u8], what: &'static str, needed: usize) -> Result<(), CodecError> {
    if msg.len() < needed {
        return Err(CodecError::Truncated {
            what,
            needed,
            available: msg.len(),
        });
    }
    Ok(())
}

/// Cuts whole commands out of the client's TCP byte stream.
#[derive(Debug)]
pub struct CommandReader {
    buf: Vec<u8>,
    max: usize,
}

impl CommandReader {
    /// `max` bounds one command (the server's `request_max_bytes`).
    pub fn new(max: usize) -> Self {
        CommandReader {
            buf: Vec::new(),
            max: max.max(COMMAND_HEAD_LEN),
        }
    }

    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// Bytes held that do not yet make a whole command.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole command, `Ok(None)` when more bytes are needed. After an error the
    /// stream cannot be resynchronised: the caller closes the connection.
    pub fn next_command(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        if let Some(id) = u32_at(&self.buf, 4) {
            if id != SESSION_ID {
                return Err(CodecError::BadSessionId { found: id });
            }
        }
        let Some(len) = u32_at(&self.buf, 8) else {
            return Ok(None);
        };
        let total = u64::from(len) + 16;
        if total > self.max as u64 {
            return Err(CodecError::TooLong {
                length: total,
                max: self.max,
            });
        }
        if total < COMMAND_HEAD_LEN as u64 {
            return Err(CodecError::TooShort {
                length: total,
                min: COMMAND_HEAD_LEN,
            });
        }
        if let Some(seal) = u32_at(&self.buf, 12) {
            if seal != SEAL {
                return Err(CodecError::BadSeal { found: seal });
            }
        }
        let total = total as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

/// The command number (low half of the MID) of a framed command.
pub fn command_number(msg: &[u8]) -> Option<u16> {
    u16_at(msg, 36)
}

/// How the client wants Data packets delivered (ConnectFunnel funnelName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    /// MMSU: Data packets by UDP to this port of the client (VLC: 7000).
    Udp {
        port: u16,
    },
}

/// One STREAM_SWITCH_ENTRY ([MS-MMSP] 2.2.4.28.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSwitchEntry {
    pub src: u16,
    /// The ASF stream number.
    pub stream: u16,
    /// 0 = everything, 1 = key frames only, 2 = off.
    pub thinning: u16,
}

/// A client message, decoded by MID.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Connect {
        subscriber: String,
    },
    FunnelInfo,
    ConnectFunnel {
        funnel: String,
        transport: Transport,
    },
    OpenFile {
        play_incarnation: u32,
        path: String,
    },
    ReadBlock {
        open_file_id: u32,
        play_incarnation: u32,
    },
    StreamSwitch {
        entries: Vec<StreamSwitchEntry>,
    },
    StartPlaying {
        open_file_id: u32,
        position: f64,
        location_id: u32,
        play_incarnation: u32,
    },
    StopPlaying {
        play_incarnation: u32,
    },
    CloseFile,
    Pong,
    Logging,
    /// Messages no live client needs (security response, striding, ...): the number.
    Unsupported {
        command: u16,
    },
}

/// Reads the funnelName: `\\<ip>\TCP\<port>` or `\\<ip>\UDP\<port>`. Clients put it at
/// offset 60 (ffmpeg, VLC, libmms); mplayer adds 8 bytes before it, so the first `\\` from
/// offset 48 on is taken.
fn funnel_name(msg: &[u8]) -> String {
    let mut at = 48;
    while at + 4 <= msg.len() {
        if msg.get(at..at + 4) == Some(b"\\\0\\\0") {
            return utf16_at(msg, at);
        }
        at += 2;
    }
    String::new()
}

fn transport_of(funnel: &str) -> Transport {
    let mut parts = funnel.trim_start_matches('\\').split('\\');
    let _host = parts.next();
    let proto = parts.next().unwrap_or("");
    let port = parts
        .next()
        .map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok());
    match (proto.eq_ignore_ascii_case("UDP"), port) {
        (true, Some(port)) if port != 0 => Transport::Udp { port },
        _ => Transport::Tcp,
    }
}

impl ClientMessage {
    /// Decodes a framed command (as returned by [`CommandReader::next_command`]).
    pub fn decode(msg: &[u8]) -> Result<ClientMessage, CodecError> {
        need(msg, "command head", COMMAND_HEAD_LEN)?;
        let command = command_number(msg).unwrap_or(0);
        Ok(match command {
            cmd::CONNECT => ClientMessage::Connect {
                subscriber: utf16_at(msg, 52),
            },
            cmd::FUNNEL_INFO => ClientMessage::FunnelInfo,
            cmd::CONNECT_FUNNEL => {
                let funnel = funnel_name(msg);
                let transport = transport_of(&funnel);
                ClientMessage::ConnectFunnel { funnel, transport }
            }
            cmd::OPEN_FILE => {
                need(msg, "LinkViewerToMacOpenFile", 56)?;
                ClientMessage::OpenFile {
                    play_incarnation: u32_at(msg, 40).unwrap_or(0),
                    path: utf16_at(msg, 56),
                }
            }
            cmd::READ_BLOCK => {
                need(msg, "LinkViewerToMacReadBlock", 84)?;
                ClientMessage::ReadBlock {
                    open_file_id: u32_at(msg, 40).unwrap_or(0),
                    play_incarnation: u32_at(msg, 80).unwrap_or(0),
                }
            }
            cmd::STREAM_SWITCH => {
                need(msg, "LinkViewerToMacStreamSwitch", 44)?;
                let count = u32_at(msg, 40).unwrap_or(0) as usize;
                // mplayer announces more entries than it sends: take what is there.
                let entries = msg
                    .get(44..)
                    .unwrap_or_default()
                    .chunks_exact(6)
                    .take(count.min(128))
                    .map(|e| StreamSwitchEntry {
                        src: u16::from_le_bytes([e[0], e[1]]),
                        stream: u16::from_le_bytes([e[2], e[3]]),
                        thinning: u16::from_le_bytes([e[4], e[5]]),
                    })
                    .collect();
                ClientMessage::StreamSwitch { entries }
            }
            cmd::START_PLAYING => {
                need(msg, "LinkViewerToMacStartPlaying", 72)?;
                ClientMessage::StartPlaying {
                    open_file_id: u32_at(msg, 40).unwrap_or(0),
                    position: f64_at(msg, 48).unwrap_or(0.0),
                    location_id: u32_at(msg, 60).unwrap_or(u32::MAX),
                    play_incarnation: u32_at(msg, 68).unwrap_or(0),
                }
            }
            cmd::STOP_PLAYING => ClientMessage::StopPlaying {
                play_incarnation: u32_at(msg, 44).unwrap_or(0),
            },
            cmd::CLOSE_FILE => ClientMessage::CloseFile,
            cmd::PONG => ClientMessage::Pong,
            cmd::LOGGING => ClientMessage::Logging,
            other => ClientMessage::Unsupported { command: other },
        })
    }

    /// The command number (low half of the MID).
    pub fn number(&self) -> u16 {
        match self {
            ClientMessage::Connect { .. } => cmd::CONNECT,
            ClientMessage::FunnelInfo => cmd::FUNNEL_INFO,
            ClientMessage::ConnectFunnel { .. } => cmd::CONNECT_FUNNEL,
            ClientMessage::OpenFile { .. } => cmd::OPEN_FILE,
            ClientMessage::ReadBlock { .. } => cmd::READ_BLOCK,
            ClientMessage::StreamSwitch { .. } => cmd::STREAM_SWITCH,
            ClientMessage::StartPlaying { .. } => cmd::START_PLAYING,
            ClientMessage::StopPlaying { .. } => cmd::STOP_PLAYING,
            ClientMessage::CloseFile => cmd::CLOSE_FILE,
            ClientMessage::Pong => cmd::PONG,
            ClientMessage::Logging => cmd::LOGGING,
            ClientMessage::Unsupported { command } => *command,
        }
    }

    /// The whole TCP message as a client sends it, with `seq` as the client's message counter:
    /// the layouts FFmpeg writes (mmsp.md §2, §5.1), with FFmpeg's values in the fields this
    /// enum does not carry. [`ClientMessage::decode`] reads every message back as it was,
    /// except that a `ConnectFunnel`'s transport is the one its funnel name says.
    pub fn encode(&self, seq: u16) -> Vec<u8> {
        let mut f = Fields::default();
        match self {
            ClientMessage::Connect { subscriber } => {
                f.u32(0); // playIncarnation
                f.u32(0x0004_000B); // MacToViewerProtocolRevision
                f.u32(0x0003_001C); // ViewerToMacProtocolRevision
                f.utf16z(subscriber);
            }
            ClientMessage::FunnelInfo => {
                f.u32(0x00F0_F0F0); // playIncarnation: packet-pair probing off
                f.u32(0x0004_000B);
            }
            ClientMessage::ConnectFunnel { funnel, .. } => {
                f.u32(0); // playIncarnation
                f.u32(0xFFFF_FFFF); // maxBlockBytes
                f.u32(0); // maxFunnelBytes
                f.u32(0x0098_9680); // maxBitRate
                f.u32(2); // funnelMode
                f.utf16z(funnel); // at offset 60, where the clients put it
            }
            ClientMessage::OpenFile {
                play_incarnation,
                path,
            } => {
                f.u32(*play_incarnation);
                f.u32(0xFFFF_FFFF); // spare
                f.u32(0); // token
                f.u32(0); // cbtoken
                f.utf16z(path);
            }
            ClientMessage::ReadBlock {
                open_file_id,
                play_incarnation,
            } => {
                f.u32(*open_file_id);
                f.u32(0); // fileBlockId
                f.u32(0); // offset
                f.u32(0x0080_0000); // length
                f.u32(0xFFFF_FFFF); // flags
                f.u32(0); // padding
                f.f64(0.0); // tEarliest
                f.f64(3600.0); // tDeadline
                f.u32(*play_incarnation);
                f.u32(0); // playSequence
            }
            ClientMessage::StreamSwitch { entries } => {
                f.u32(entries.len() as u32);
                for e in entries {
                    f.u16(e.src);
                    f.u16(e.stream);
                    f.u16(e.thinning);
                }
            }
            ClientMessage::StartPlaying {
                open_file_id,
                position,
                location_id,
                play_incarnation,
            } => {
                f.u32(*open_file_id);
                f.u32(0x0001_FFFF); // padding
                f.f64(*position);
                f.u32(0xFFFF_FFFF); // asfOffset
                f.u32(*location_id);
                f.u32(0x00FF_FFFF); // frameOffset
                f.u32(*play_incarnation);
            }
            ClientMessage::StopPlaying { play_incarnation } => {
                f.u32(1); // openFileId
                f.u32(*play_incarnation);
            }
            ClientMessage::CloseFile => {
                f.u32(1); // playIncarnation
                f.u32(1); // openFileId
            }
            ClientMessage::Pong => {
                f.u32(1); // dwParam1
                f.u32(0x0100_FFFF); // dwParam2
            }
            ClientMessage::Logging | ClientMessage::Unsupported { .. } => {}
        }
        frame(TO_SERVER | u32::from(self.number()), seq, &f.0)
    }
}

/// Frames one MMS message: TcpMessageHeader, chunkLen, MID and `fields` (from offset 40),
/// zero-padded so the message from offset 32 is a multiple of 8 bytes.
pub fn frame(mid: u32, seq: u16, fields: &[u8]) -> Vec<u8> {
    let body = fields.len().div_ceil(8) * 8;
    let total = COMMAND_HEAD_LEN + body;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    m.extend_from_slice(&SESSION_ID.to_le_bytes());
    m.extend_from_slice(&((total - 16) as u32).to_le_bytes());
    m.extend_from_slice(&SEAL.to_le_bytes());
    m.extend_from_slice(&(((total - 16) / 8) as u32).to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&0f64.to_le_bytes());
    m.extend_from_slice(&(((total - 32) / 8) as u32).to_le_bytes());
    m.extend_from_slice(&mid.to_le_bytes());
    m.extend_from_slice(fields);
    m.resize(total, 0);
    m
}

/// The fields of LinkMacToViewerReportOpenFile ([MS-MMSP] 2.2.4.7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenFileReport {
    pub hr: u32,
    pub play_incarnation: u32,
    /// Must be 1 on success (VLC accepts 1 or 2; ffmpeg, VLC and mplayer hard-code 1).
    pub open_file_id: u32,
    pub attributes: u32,
    pub duration_s: f64,
    pub blocks: u32,
    pub packet_size: u32,
    pub packet_count: u64,
    pub bit_rate: u32,
    /// Exact byte length of the header blob sent after ReadBlock (VLC reads until it has it).
    pub header_size: u32,
}

impl OpenFileReport {
    /// A refusal: error hr and openFileId 0, so VLC (which ignores hr here) refuses too.
    pub fn error(hr: u32, play_incarnation: u32) -> Self {
        OpenFileReport {
            hr,
            play_incarnation,
            open_file_id: 0,
            attributes: 0,
            duration_s: 0.0,
            blocks: 0,
            packet_size: 0,
            packet_count: 0,
            bit_rate: 0,
            header_size: 0,
        }
    }
}

/// A server→client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// LinkMacToViewerReportConnectedEX: 96 bytes, no strings (VLC reads four UTF-16 counts
    /// at 80..96, so they are zero).
    ConnectedEx,
    /// LinkMacToViewerReportFunnelInfo (ffmpeg requires it after 0x18): 80 bytes.
    FunnelInfo {
        client_id: u32,
    },
    ConnectedFunnel {
        play_incarnation: u32,
    },
    /// Refuses the funnel (VLC then gives up on this transport).
    DisconnectedFunnel {
        hr: u32,
        play_incarnation: u32,
    },
    OpenFile(OpenFileReport),
    ReadBlock {
        play_incarnation: u32,
    },
    StreamSwitch {
        play_incarnation: u32,
    },
    StartedPlaying {
        play_incarnation: u32,
        file_id: u32,
    },
    EndOfStream {
        hr: u32,
        play_incarnation: u32,
    },
    /// LinkMacToViewerPing, 48 bytes (under 56, so ffmpeg never reads an hr in it).
    Ping,
}

impl ServerMessage {
    pub fn number(&self) -> u16 {
        match self {
            ServerMessage::ConnectedEx => report::CONNECTED_EX,
            ServerMessage::FunnelInfo { .. } => report::FUNNEL_INFO,
            ServerMessage::ConnectedFunnel { .. } => report::CONNECTED_FUNNEL,
            ServerMessage::DisconnectedFunnel { .. } => report::DISCONNECTED_FUNNEL,
            ServerMessage::OpenFile(_) => report::OPEN_FILE,
            ServerMessage::ReadBlock { .. } => report::READ_BLOCK,
            ServerMessage::StreamSwitch { .. } => report::STREAM_SWITCH,
            ServerMessage::StartedPlaying { .. } => report::STARTED_PLAYING,
            ServerMessage::EndOfStream { .. } => report::END_OF_STREAM,
            ServerMessage::Ping => report::PING,
        }
    }

    /// The whole TCP message, with `seq` as the server's message counter.
    pub fn encode(&self, seq: u16) -> Vec<u8> {
        let mut f = Fields::default();
        match self {
            ServerMessage::ConnectedEx => {
                f.u32(hr::OK);
                f.u32(NO_PACKET_PAIR);
                f.u32(0x0004_000B); // MacToViewerProtocolRevision
                f.u32(0x0003_001C); // ViewerToMacProtocolRevision
                f.f64(1.0); // blockGroupPlayTime
                f.u32(1); // blockGroupBlocks
                f.u32(1); // nMaxOpenFiles
                f.u32(0x8000); // nBlockMaxBytes
                f.u32(0x00FF_FFFF); // maxBitRate
                f.u32(0); // cbServerVersionInfo
                f.u32(0); // cbVersionInfo
                f.u32(0); // cbVersionUrl
                f.u32(0); // cbAuthenPackage
            }
            ServerMessage::FunnelInfo { client_id } => {
                f.u32(hr::OK);
                f.u32(NO_PACKET_PAIR);
                f.u32(0x0000_0001); // transportMask
                f.u32(1); // nBlockFragments
                f.u32(0x8000); // fragmentBytes
                f.u32(*client_id); // nCubs = client id
                f.u32(0); // failedCubs
                f.u32(1); // nDisks
                f.u32(0); // decluster
                f.u32(0); // cubddDatagramSize
            }
            ServerMessage::ConnectedFunnel { play_incarnation } => {
                f.u32(hr::OK);
                f.u32(*play_incarnation);
                f.u32(0); // packetPayloadSize
                f.u32(0); // funnelName: empty string (NUL) + padding
            }
            ServerMessage::DisconnectedFunnel {
                hr,
                play_incarnation,
            } => {
                f.u32(*hr);
                f.u32(*play_incarnation);
            }
            ServerMessage::OpenFile(r) => {
                f.u32(r.hr);
                f.u32(r.play_incarnation);
                f.u32(r.open_file_id);
                f.u32(0); // padding
                f.u32(0); // fileName
                f.u32(r.attributes);
                f.f64(r.duration_s);
                f.u32(r.blocks);
                f.zeros(16); // unused1
                f.u32(r.packet_size);
                f.u64(r.packet_count);
                f.u32(r.bit_rate);
                f.u32(r.header_size);
                f.zeros(36); // unused2
            }
            ServerMessage::ReadBlock { play_incarnation } => {
                f.u32(hr::OK);
                f.u32(*play_incarnation);
                f.u32(0); // playSequence
            }
            ServerMessage::StreamSwitch { play_incarnation } => {
                f.u32(hr::OK);
                f.u32(*play_incarnation);
            }
            ServerMessage::StartedPlaying {
                play_incarnation,
                file_id,
            } => {
                f.u32(hr::OK);
                f.u32(*play_incarnation);
                f.u32(*file_id); // tigerFileId
                f.u32(0);
            }
            ServerMessage::EndOfStream {
                hr,
                play_incarnation,
            } => {
                f.u32(*hr);
                f.u32(*play_incarnation);
            }
            ServerMessage::Ping => {
                f.u32(0); // dwParam1
                f.u32(0); // dwParam2
            }
        }
        frame(TO_CLIENT | u32::from(self.number()), seq, &f.0)
    }

    /// Reads a framed report back (as cut by [`server_pdu_len`]): the client-side inverse of
    /// [`ServerMessage::encode`]. Fields the enum does not carry are not checked; the hr of
    /// reports whose variant has none is [`report_hr`]'s.
    pub fn decode(msg: &[u8]) -> Result<ServerMessage, CodecError> {
        need(msg, "report head", COMMAND_HEAD_LEN)?;
        let number = command_number(msg).unwrap_or(0);
        let at = |what: &'static str, off: usize| -> Result<u32, CodecError> {
            u32_at(msg, off).ok_or(CodecError::Truncated {
                what,
                needed: off + 4,
                available: msg.len(),
            })
        };
        Ok(match number {
            report::CONNECTED_EX => ServerMessage::ConnectedEx,
            report::FUNNEL_INFO => ServerMessage::FunnelInfo {
                client_id: at("LinkMacToViewerReportFunnelInfo", 60)?,
            },
            report::CONNECTED_FUNNEL => ServerMessage::ConnectedFunnel {
                play_incarnation: at("LinkMacToViewerReportConnectedFunnel", 44)?,
            },
            report::DISCONNECTED_FUNNEL => ServerMessage::DisconnectedFunnel {
                hr: at("LinkMacToViewerReportDisconnectedFunnel", 40)?,
                play_incarnation: at("LinkMacToViewerReportDisconnectedFunnel", 44)?,
            },
            report::OPEN_FILE => {
                let what = "LinkMacToViewerReportOpenFile";
                need(msg, what, 112)?;
                ServerMessage::OpenFile(OpenFileReport {
                    hr: at(what, 40)?,
                    play_incarnation: at(what, 44)?,
                    open_file_id: at(what, 48)?,
                    attributes: at(what, 60)?,
                    duration_s: f64_at(msg, 64).unwrap_or(0.0),
                    blocks: at(what, 72)?,
                    packet_size: at(what, 92)?,
                    packet_count: u64::from(at(what, 96)?) | (u64::from(at(what, 100)?) << 32),
                    bit_rate: at(what, 104)?,
                    header_size: at(what, 108)?,
                })
            }
            report::READ_BLOCK => ServerMessage::ReadBlock {
                play_incarnation: at("LinkMacToViewerReportReadBlock", 44)?,
            },
            report::STREAM_SWITCH => ServerMessage::StreamSwitch {
                play_incarnation: at("LinkMacToViewerReportStreamSwitch", 44)?,
            },
            report::STARTED_PLAYING => ServerMessage::StartedPlaying {
                play_incarnation: at("LinkMacToViewerReportStartedPlaying", 44)?,
                file_id: at("LinkMacToViewerReportStartedPlaying", 48)?,
            },
            report::END_OF_STREAM => ServerMessage::EndOfStream {
                hr: at("LinkMacToViewerReportEndOfStream", 40)?,
                play_incarnation: at("LinkMacToViewerReportEndOfStream", 44)?,
            },
            report::PING => ServerMessage::Ping,
            command => return Err(CodecError::UnknownReport { command }),
        })
    }
}

/// The hr of a framed report (offset 40), which every report but Ping starts with; `None` when
/// the message is too short to hold one.
pub fn report_hr(msg: &[u8]) -> Option<u32> {
    u32_at(msg, COMMAND_HEAD_LEN)
}

/// Whether a PDU of the server's stream is a command (the sessionId at offset 4, §1.1) rather
/// than a Data packet.
pub fn is_command(pdu: &[u8]) -> bool {
    u32_at(pdu, 4) == Some(SESSION_ID)
}

/// Frames the server→client stream as a client does: the length of the whole PDU at the front
/// of `b` (a command by its messageLength, at most `max` bytes; a Data packet by its
/// PacketSize), `Ok(None)` while more bytes are needed. After an error the stream cannot be
/// resynchronised.
pub fn server_pdu_len(b: &[u8], max: usize) -> Result<Option<usize>, CodecError> {
    let Some(id) = u32_at(b, 4) else {
        return Ok(None);
    };
    let total = if id == SESSION_ID {
        let Some(len) = u32_at(b, 8) else {
            return Ok(None);
        };
        let total = u64::from(len) + 16;
        if total > max as u64 {
            return Err(CodecError::TooLong { length: total, max });
        }
        if total < COMMAND_HEAD_LEN as u64 {
            return Err(CodecError::TooShort {
                length: total,
                min: COMMAND_HEAD_LEN,
            });
        }
        if let Some(seal) = u32_at(b, 12) {
            if seal != SEAL {
                return Err(CodecError::BadSeal { found: seal });
            }
        }
        total as usize
    } else {
        let size = u16_at(b, 6).unwrap_or(0);
        if usize::from(size) < DATA_HEAD_LEN {
            return Err(CodecError::BadPacketSize { size });
        }
        usize::from(size)
    };
    Ok((b.len() >= total).then_some(total))
}

/// Little-endian field writer.
#[derive(Default)]
struct Fields(Vec<u8>);

impl Fields {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    /// A UTF-16LE string and its NUL terminator.
    fn utf16z(&mut self, s: &str) {
        self.0
            .extend(s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    }
}

/// The 8-byte head of a Data packet ([MS-MMSP] 2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHead {
    /// Header fragment index, or the (virtual) ASF data packet number.
    pub location_id: u32,
    /// Low 8 bits of the ReadBlock (header) or StartPlaying (media) playIncarnation.
    pub incarnation: u8,
    /// Header: 0x04 more follow / 0x0C last. Media: low 8 bits of the packet sequence.
    pub af_flags: u8,
    /// 8 + payload length.
    pub packet_size: u16,
}

impl DataHead {
    pub fn encode(&self) -> [u8; DATA_HEAD_LEN] {
        let mut b = [0u8; DATA_HEAD_LEN];
        b[..4].copy_from_slice(&self.location_id.to_le_bytes());
        b[4] = self.incarnation;
        b[5] = self.af_flags;
        b[6..].copy_from_slice(&self.packet_size.to_le_bytes());
        b
    }

    pub fn parse(b: &[u8]) -> Option<DataHead> {
        Some(DataHead {
            location_id: u32_at(b, 0)?,
            incarnation: *b.get(4)?,
            af_flags: *b.get(5)?,
            packet_size: u16_at(b, 6)?,
        })
    }
}

/// The header blob as Data packets of at most `max_payload` bytes each: LocationId 0, 1, …,
/// AFFlags 0x04 on all but the last, 0x0C on the last ([MS-MMSP] 3.2.5.8.1; ffmpeg, libmms).
pub fn header_packets(blob: &[u8], max_payload: usize, incarnation: u8) -> Vec<Vec<u8>> {
    let max = max_payload.clamp(1, MAX_DATA_PAYLOAD);
    let n = blob.len().div_ceil(max).max(1);
    let mut out = Vec::with_capacity(n);
    for (i, part) in blob.chunks(max).enumerate() {
        let head = DataHead {
            location_id: i as u32,
            incarnation,
            af_flags: if i + 1 == n {
                AF_HEADER_LAST
            } else {
                AF_HEADER_MORE
            },
            packet_size: (DATA_HEAD_LEN + part.len()) as u16,
        };
        let mut p = Vec::with_capacity(DATA_HEAD_LEN + part.len());
        p.extend_from_slice(&head.encode());
        p.extend_from_slice(part);
        out.push(p);
    }
    out
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp => write!(f, "tcp"),
            Transport::Udp { port } => write!(f, "udp:{port}"),
        }
    }
}
