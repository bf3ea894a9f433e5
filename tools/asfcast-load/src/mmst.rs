//! MMS over TCP load client ([MS-MMSP]; `shared/docs/protocols/mmsp.md` §2 and §5.1): the
//! live sequence FFmpeg's `mmst.c` drives, one request at a time, each sent only after the
//! reply to the previous one has arrived:
//!
//! ```text
//! 0x01 Connect        -> 0x01 ReportConnectedEX
//! 0x18 FunnelInfo     -> 0x15 ReportFunnelInfo
//! 0x02 ConnectFunnel  -> 0x02 ReportConnectedFunnel   (funnel \\192.168.0.129\TCP\1037)
//! 0x05 OpenFile       -> 0x06 ReportOpenFile          (path without the leading '/')
//! 0x15 ReadBlock      -> 0x11 ReportReadBlock, header Data packets (incarnation 2,
//!                        AFFlags 0x04 ... last 0x08/0x0C)
//! 0x33 StreamSwitch   -> 0x21 ReportStreamSwitch      (every stream of the header, thinning 0)
//! 0x07 StartPlaying   -> 0x05 ReportStartedPlaying, then media Data packets (incarnation 4)
//! ```
//!
//! Every reply must carry hr = 0 (FFmpeg checks it). Pings (0x1B) are answered with a Pong
//! 0x1B at any point; 0x1E ends the stream. Media bytes are the payloads of Data packets
//! (PacketSize less the 8-byte head) with the StartPlaying incarnation.
//!
//! Nothing here lays out bytes: commands are the daemon's own [`ClientMessage::encode`] (FFmpeg's
//! layouts), the server's stream is framed by [`codec::server_pdu_len`] (commands told from
//! Data packets by the 0xB00BFACE sessionId, §1.1) and reports read by
//! [`ServerMessage::decode`], so the client and the server cannot drift apart.

use asfcast::asf::AsfHeader;
use asfcast::mms::codec::{
    self, report, ClientMessage, DataHead, ServerMessage, StreamSwitchEntry, DATA_HEAD_LEN,
};

use super::core::{Continuity, Fault, Frame, Tail};

/// Longest server command accepted (FFmpeg's input buffer).
const MAX_COMMAND: usize = 64 * 1024;
/// Largest header blob collected before StreamSwitch.
const MAX_HEADER_BLOB: usize = 1 << 20;
/// playIncarnation of ReadBlock: header Data packets carry it (all clients hard-code 2).
const HEADER_INCARNATION: u8 = 2;
/// playIncarnation of StartPlaying: media Data packets carry it (FFmpeg: 4).
const MEDIA_INCARNATION: u8 = 4;
/// The funnel FFmpeg names in ConnectFunnel (any `TCP` funnel means "Data on this connection").
const FUNNEL: &str = "\\\\192.168.0.129\\TCP\\1037";
/// The openFileId every client uses (the server answers 1).
const OPEN_FILE_ID: u32 = 1;

/// Where the handshake is: which reply the client waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    FunnelInfo,
    Funnel,
    Open,
    ReadBlock,
    Header,
    Switch,
    Start,
    Playing,
}

impl Stage {
    /// The report that moves this stage on.
    fn awaits(self) -> Option<u16> {
        Some(match self {
            Stage::Connect => report::CONNECTED_EX,
            Stage::FunnelInfo => report::FUNNEL_INFO,
            Stage::Funnel => report::CONNECTED_FUNNEL,
            Stage::Open => report::OPEN_FILE,
            Stage::ReadBlock => report::READ_BLOCK,
            Stage::Switch => report::STREAM_SWITCH,
            Stage::Start => report::STARTED_PLAYING,
            Stage::Header | Stage::Playing => return None,
        })
    }
}

/// How the front of the server's stream is framed.
fn frame_pdu(b: &[u8]) -> Result<Frame, Fault> {
    match codec::server_pdu_len(b, MAX_COMMAND) {
        Ok(Some(n)) => Ok(Frame::Whole(n)),
        Ok(None) => Ok(Frame::Partial),
        Err(e) => Err(Fault::Framing(e.to_string())),
    }
}

/// One MMST client.
#[derive(Debug)]
pub struct Mmst {
    subscriber: String,
    /// The OpenFile path: the URL path without its leading '/'.
    path: String,
    stage: Stage,
    seq: u16,
    tail: Tail,
    header: Vec<u8>,
    pub media_bytes: u64,
    pub packets: u64,
    pub pings: u64,
    /// Data packets of another incarnation after StartPlaying (FFmpeg drops them).
    pub stale: u64,
    /// LocationIds of the media Data packets (per client, from 0: a jump is a lost packet).
    pub locations: Continuity,
    /// Until the first video key frame.
    pub key: super::keyframe::KeyWatch,
}

impl Mmst {
    /// Client number `n` of `host`'s station at `path`.
    pub fn new(host: &str, path: &str, n: usize) -> Self {
        Mmst {
            subscriber: format!(
                "NSPlayer/7.0.0.1956; {{7E667F5D-A661-495E-A512-{n:012X}}}; Host: {host}"
            ),
            path: path.trim_start_matches('/').to_string(),
            stage: Stage::Connect,
            seq: 0,
            tail: Tail::default(),
            header: Vec::new(),
            media_bytes: 0,
            packets: 0,
            pings: 0,
            stale: 0,
            locations: Continuity::new(32),
            key: Default::default(),
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn playing(&self) -> bool {
        self.stage == Stage::Playing
    }

    fn send(&mut self, out: &mut Vec<u8>, message: &ClientMessage) {
        out.extend_from_slice(&message.encode(self.seq));
        self.seq = self.seq.wrapping_add(1);
    }

    /// Connect (0x01), once the TCP connection is up.
    pub fn on_connected(&mut self, out: &mut Vec<u8>) {
        let connect = ClientMessage::Connect {
            subscriber: self.subscriber.clone(),
        };
        self.send(out, &connect);
    }

    /// Server bytes in; requests and pongs out.
    pub fn on_bytes(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        let mut tail = std::mem::take(&mut self.tail);
        let r = tail.feed(data, frame_pdu, |pdu| self.on_pdu(pdu, out));
        self.tail = tail;
        r
    }

    fn fail(&self, what: String) -> Fault {
        if self.playing() {
            Fault::Framing(what)
        } else {
            Fault::Handshake(what)
        }
    }

    fn on_pdu(&mut self, pdu: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        if codec::is_command(pdu) {
            return self.on_command(pdu, out);
        }
        let head = DataHead::parse(pdu).ok_or_else(|| self.fail("short Data packet".into()))?;
        let payload = pdu.get(DATA_HEAD_LEN..).unwrap_or_default();
        match self.stage {
            Stage::Playing if head.incarnation == MEDIA_INCARNATION => {
                self.media_bytes += payload.len() as u64;
                self.packets += 1;
                if self.key.wants() {
                    self.key.packet(payload);
                }
                self.locations.next(head.location_id);
            }
            Stage::Playing => self.stale += 1,
            Stage::Header if head.incarnation == HEADER_INCARNATION => {
                if self.header.len() + payload.len() > MAX_HEADER_BLOB {
                    return Err(self.fail(format!("header blob over {MAX_HEADER_BLOB} bytes")));
                }
                self.header.extend_from_slice(payload);
                match head.af_flags {
                    0x04 => {}
                    0x08 | 0x0C => {
                        self.key.header(&self.header);
                        let switch = self.stream_switch()?;
                        self.header = Vec::new();
                        self.send(out, &switch);
                        self.stage = Stage::Switch;
                    }
                    other => {
                        return Err(self.fail(format!("header fragment AFFlags 0x{other:02x}")))
                    }
                }
            }
            stage => {
                return Err(self.fail(format!(
                    "Data packet (incarnation {}) while waiting in {stage:?}",
                    head.incarnation
                )))
            }
        }
        Ok(())
    }

    /// StreamSwitch selecting every stream of the header blob (FFmpeg: thinning 0).
    fn stream_switch(&self) -> Result<ClientMessage, Fault> {
        let size = self
            .header
            .get(16..24)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| s <= self.header.len())
            .ok_or_else(|| self.fail("header blob shorter than its Header Object".into()))?;
        let h = AsfHeader::parse(self.header.get(..size).unwrap_or_default())
            .map_err(|e| self.fail(format!("header blob: {e}")))?;
        let mut numbers: Vec<u16> = h.streams.iter().map(|s| u16::from(s.number)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        if numbers.is_empty() {
            return Err(self.fail("header has no streams".into()));
        }
        let entries = numbers
            .into_iter()
            .map(|stream| StreamSwitchEntry {
                src: 0xFFFF,
                stream,
                thinning: 0,
            })
            .collect();
        Ok(ClientMessage::StreamSwitch { entries })
    }

    fn on_command(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        let number = codec::command_number(msg).unwrap_or(0);
        // A report the codec cannot read is refused by number below unless it is awaited.
        let decoded = ServerMessage::decode(msg);
        match decoded {
            Ok(ServerMessage::Ping) => {
                self.pings += 1;
                self.send(out, &ClientMessage::Pong);
                return Ok(());
            }
            Ok(ServerMessage::EndOfStream { hr, .. }) => {
                return Err(Fault::Ended(format!("0x1E hr=0x{hr:08x}")));
            }
            _ => {}
        }
        let Some(expected) = self.stage.awaits() else {
            if self.playing() {
                // FFmpeg ignores nothing here, but a load client need not die of a stray
                // report: it is counted as framing only when it cannot be framed.
                return Ok(());
            }
            return Err(self.fail(format!("command 0x{number:02x} inside the header")));
        };
        if number != expected {
            return Err(self.fail(format!(
                "command 0x{number:02x} where 0x{expected:02x} was expected"
            )));
        }
        if let Some(hr) = codec::report_hr(msg).filter(|&hr| hr != 0) {
            return Err(self.fail(format!("reply 0x{number:02x} hr=0x{hr:08x}")));
        }
        if let Err(e) = decoded {
            return Err(self.fail(format!("reply 0x{number:02x}: {e}")));
        }
        self.stage = match self.stage {
            Stage::Connect => {
                self.send(out, &ClientMessage::FunnelInfo);
                Stage::FunnelInfo
            }
            Stage::FunnelInfo => {
                let funnel = ClientMessage::ConnectFunnel {
                    funnel: FUNNEL.into(),
                    transport: codec::Transport::Tcp,
                };
                self.send(out, &funnel);
                Stage::Funnel
            }
            Stage::Funnel => {
                let open = ClientMessage::OpenFile {
                    play_incarnation: 1,
                    path: self.path.clone(),
                };
                self.send(out, &open);
                Stage::Open
            }
            Stage::Open => {
                let read = ClientMessage::ReadBlock {
                    open_file_id: OPEN_FILE_ID,
                    play_incarnation: u32::from(HEADER_INCARNATION),
                };
                self.send(out, &read);
                Stage::ReadBlock
            }
            Stage::ReadBlock => Stage::Header,
            Stage::Switch => {
                let start = ClientMessage::StartPlaying {
                    open_file_id: OPEN_FILE_ID,
                    position: 0.0,
                    location_id: u32::MAX,
                    play_incarnation: u32::from(MEDIA_INCARNATION),
                };
                self.send(out, &start);
                Stage::Start
            }
            Stage::Start => Stage::Playing,
            s @ (Stage::Header | Stage::Playing) => s,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asfcast::mms::codec::{header_packets, OpenFileReport, ServerMessage, ATTR_BROADCAST};
    use asfcast::mms::{ClientMessage, CommandReader};
    use proptest::prelude::*;

    /// A real header blob: the demo station's Header Object + Data Object head.
    fn blob() -> Vec<u8> {
        let file = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../station-configs/media/demo.asf"
        ))
        .unwrap_or_default();
        let size = file
            .get(16..24)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
            .unwrap_or(0);
        file.get(..size + 50)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }

    fn decode_all(bytes: &[u8]) -> Vec<ClientMessage> {
        let mut r = CommandReader::new(65536);
        r.push(bytes);
        let mut v = Vec::new();
        while let Some(m) = r.next_command().unwrap() {
            v.push(ClientMessage::decode(&m).unwrap());
        }
        v
    }

    fn open_report() -> ServerMessage {
        ServerMessage::OpenFile(OpenFileReport {
            hr: 0,
            play_incarnation: 1,
            open_file_id: 1,
            attributes: ATTR_BROADCAST,
            duration_s: 0.0,
            blocks: 0,
            packet_size: 3200,
            packet_count: 0,
            bit_rate: 364_000,
            header_size: 0,
        })
    }

    fn media(loc: u32, inc: u8, len: usize) -> Vec<u8> {
        let mut p = DataHead {
            location_id: loc,
            incarnation: inc,
            af_flags: loc as u8,
            packet_size: (8 + len) as u16,
        }
        .encode()
        .to_vec();
        p.resize(8 + len, 0x5A);
        p
    }

    /// The whole server side of a session, as one byte stream, in reply order.
    fn server_stream(blob: &[u8]) -> Vec<Vec<u8>> {
        let mut hdr = ServerMessage::ReadBlock {
            play_incarnation: 2,
        }
        .encode(4);
        for p in header_packets(blob, 1000, 2) {
            hdr.extend(p);
        }
        let mut play = ServerMessage::StartedPlaying {
            play_incarnation: 4,
            file_id: 1,
        }
        .encode(6);
        play.extend(media(0, 4, 3200));
        play.extend(ServerMessage::Ping.encode(7));
        play.extend(media(1, 4, 3200));
        play.extend(media(2, 3, 3200));
        vec![
            ServerMessage::ConnectedEx.encode(0),
            ServerMessage::FunnelInfo { client_id: 7 }.encode(1),
            ServerMessage::ConnectedFunnel {
                play_incarnation: 0,
            }
            .encode(2),
            open_report().encode(3),
            hdr,
            ServerMessage::StreamSwitch {
                play_incarnation: 2,
            }
            .encode(5),
            play,
        ]
    }

    #[test]
    fn ffmpeg_sequence_one_request_per_reply_then_media_and_pongs() {
        let blob = blob();
        assert!(!blob.is_empty(), "a sample ASF file");
        let mut c = Mmst::new("127.0.0.1", "/demo", 3);
        let mut out = Vec::new();
        c.on_connected(&mut out);
        let mut sent = decode_all(&out);
        for reply in server_stream(&blob) {
            out.clear();
            c.on_bytes(&reply, &mut out).unwrap();
            sent.extend(decode_all(&out));
        }
        assert!(c.playing());
        assert_eq!(c.media_bytes, 6400);
        assert_eq!((c.packets, c.stale, c.pings), (2, 1, 1));
        assert_eq!(c.locations.jumps, 0);
        c.on_bytes(&media(5, 4, 100), &mut out).unwrap();
        assert_eq!(c.locations.last_jump, Some((2, 5)));
        let kinds: Vec<String> = sent
            .iter()
            .map(|m| {
                format!("{m:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "Connect",
                "FunnelInfo",
                "ConnectFunnel",
                "OpenFile",
                "ReadBlock",
                "StreamSwitch",
                "StartPlaying",
                "Pong"
            ]
        );
        match &sent[2] {
            ClientMessage::ConnectFunnel { transport, .. } => {
                assert_eq!(*transport, asfcast::mms::Transport::Tcp)
            }
            m => panic!("{m:?}"),
        }
        match &sent[3] {
            ClientMessage::OpenFile { path, .. } => assert_eq!(path, "demo"),
            m => panic!("{m:?}"),
        }
        match &sent[4] {
            ClientMessage::ReadBlock {
                open_file_id,
                play_incarnation,
            } => assert_eq!((*open_file_id, *play_incarnation), (1, 2)),
            m => panic!("{m:?}"),
        }
        match &sent[5] {
            ClientMessage::StreamSwitch { entries } => {
                assert!(!entries.is_empty());
                assert!(entries.iter().all(|e| e.src == 0xFFFF && e.thinning == 0));
            }
            m => panic!("{m:?}"),
        }
        match &sent[6] {
            ClientMessage::StartPlaying {
                open_file_id,
                location_id,
                play_incarnation,
                ..
            } => assert_eq!((*open_file_id, *location_id, *play_incarnation), (1, !0, 4)),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn errors_and_out_of_order_replies_fail_the_handshake() {
        let mut c = Mmst::new("h", "/demo", 0);
        let mut out = Vec::new();
        c.on_connected(&mut out);
        c.on_bytes(&ServerMessage::ConnectedEx.encode(0), &mut out)
            .unwrap();
        assert_eq!(c.stage(), Stage::FunnelInfo);
        let e = c.on_bytes(&open_report().encode(1), &mut out).unwrap_err();
        assert!(
            matches!(e, Fault::Handshake(ref s) if s.contains("0x06 where 0x15")),
            "{e}"
        );

        let mut c = Mmst::new("h", "/demo", 0);
        c.stage = Stage::Open;
        let refused = ServerMessage::OpenFile(OpenFileReport::error(0x8007_0003, 1)).encode(3);
        let e = c.on_bytes(&refused, &mut out).unwrap_err();
        assert!(
            matches!(e, Fault::Handshake(ref s) if s.contains("80070003")),
            "{e}"
        );

        let mut c = Mmst::new("h", "/demo", 0);
        c.stage = Stage::Start;
        let e = c.on_bytes(&media(0, 4, 100), &mut out).unwrap_err();
        assert!(matches!(e, Fault::Handshake(_)), "{e}");

        let mut c = Mmst::new("h", "/demo", 0);
        c.stage = Stage::Playing;
        let eos = ServerMessage::EndOfStream {
            hr: 0,
            play_incarnation: 4,
        }
        .encode(9);
        assert!(matches!(c.on_bytes(&eos, &mut out), Err(Fault::Ended(_))));
        let mut c = Mmst::new("h", "/demo", 0);
        c.stage = Stage::Playing;
        let e = c.on_bytes(&[0, 0, 0, 0, 4, 0, 3, 0], &mut out).unwrap_err();
        assert!(matches!(e, Fault::Framing(_)), "{e}");
    }

    proptest! {
        #[test]
        fn any_split_of_the_server_stream_gives_the_same_result(cuts in proptest::collection::vec(0usize..20_000, 0..12)) {
            let blob = blob();
            let all: Vec<u8> = server_stream(&blob).concat();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (all.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(all.len());
            // A client that ignores reply timing still frames the same stream.
            let mut c = Mmst::new("h", "/demo", 0);
            let mut out = Vec::new();
            c.on_connected(&mut out);
            let mut from = 0;
            for cut in cuts {
                c.on_bytes(&all[from..cut], &mut out).unwrap();
                from = cut;
            }
            prop_assert!(c.playing());
            prop_assert_eq!(c.media_bytes, 6400);
            prop_assert_eq!(decode_all(&out).len(), 8);
        }
    }
}
