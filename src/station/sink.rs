//! The sink contract: how station output reaches a delivery. Every delivery of a station —
//! the MSB multicast sender and each unicast session (MMS, MMSH, RTSP) — is a [`Sink`]: the
//! station hands it the current header and each new packet, and the sink answers with a
//! [`Step`] and a deadline. Unicast sessions are also [`Session`]s: the client's bytes come in
//! through [`Session::on_bytes`], and the shell writes their [`OutQueue`] (stream bytes,
//! `writev`, shared packet buffers never copied) and their [`Datagram`]s (UDP data channels).
//!
//! In the style of sozu's `ProxySession` and quiche's `recv/send/timeout`: the shell
//! (`crate::net`) owns the sockets and the clock, a sink is pure state. The calls:
//! - [`Sink::on_header`] / [`Sink::on_packet`] when its station has something new;
//! - [`Sink::on_timeout`] when [`Sink::deadline`] has passed;
//! - [`Sink::on_station_end`] when the station stops (reload, shutdown);
//! - for sessions, [`Session::on_bytes`] and [`Session::on_peer_closed`];
//! - for sessions with UDP channels, [`Session::on_datagram`] with what a client sent to the
//!   server's data sockets. The shell routes a datagram by its source address to the session
//!   whose [`Session::udp_peers`] names it, so a session only ever hears its own client.
//!
//! A sink returns [`Step::Close`] to be dropped. This module imports no protocol: the catalog
//! sessions may read ([`StationView::catalog`]) is station data ([`super::catalog`]).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::catalog::AnnouncementCatalog;
use super::{StationHeader, StationPacket};

/// What a session wants after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Flush what is queued, then close the connection. The reason is logged.
    Close {
        reason: String,
    },
}

/// How the reason of a close the client asked for begins (its connection closed or reset, an
/// RTSP TEARDOWN, an MMS CloseFile): the metrics count those clients as having left, not as
/// dropped by the server ([`ended_by_peer`]).
pub const PEER_ENDED: &str = "peer closed";

/// The reason of the commonest close of all, the client closing its connection (logged
/// quietly).
pub const PEER_CLOSED_CONNECTION: &str = "peer closed: the connection";

/// Did the client end it (a close reason made by [`Step::ended_by_peer`])?
pub fn ended_by_peer(reason: &str) -> bool {
    reason.starts_with(PEER_ENDED)
}

impl Step {
    pub fn close(reason: impl Into<String>) -> Step {
        Step::Close {
            reason: reason.into(),
        }
    }

    /// The client ended its session (`how`: what it did).
    pub fn ended_by_peer(how: &str) -> Step {
        Step::close(format!("{PEER_ENDED}: {how}"))
    }
}

/// One chunk of stream output: bytes the session made, a short per-packet head kept inline
/// (the framing in front of a shared packet: no allocation per packet per client), a station
/// packet shared by all sessions (never copied per client), or a piece of one (an RTP
/// fragment of it: shared too).
#[derive(Debug, Clone)]
pub enum Chunk {
    Owned(Vec<u8>),
    Small { len: u8, bytes: [u8; SMALL_CHUNK] },
    Shared(Arc<[u8]>),
    Piece { of: Arc<[u8]>, start: u32, end: u32 },
}

/// Longest head kept inline: an RTSP interleaved prefix + RTP header + x-asf-pf header (20
/// bytes), an MMSH `$D` head (12), an MMS Data packet head (8).
pub const SMALL_CHUNK: usize = 22;

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Small { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Chunk::Shared(a) => a,
            Chunk::Piece { of, start, end } => {
                of.get(*start as usize..*end as usize).unwrap_or_default()
            }
        }
    }
}

/// A session's queue of stream output with its byte count, so a session can bound its backlog
/// and tell when a client has fallen behind.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_done: usize,
    queued: usize,
}

impl OutQueue {
    pub fn new() -> Self {
        OutQueue::default()
    }

    pub fn push_owned(&mut self, b: Vec<u8>) {
        if !b.is_empty() {
            self.queued += b.len();
            self.chunks.push_back(Chunk::Owned(b));
        }
    }

    /// Queues a short head (up to [`SMALL_CHUNK`] bytes) without allocating; a longer one
    /// is copied into an owned chunk.
    pub fn push_small(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if b.len() > SMALL_CHUNK {
            self.push_owned(b.to_vec());
            return;
        }
        let mut bytes = [0u8; SMALL_CHUNK];
        bytes[..b.len()].copy_from_slice(b);
        self.queued += b.len();
        self.chunks.push_back(Chunk::Small {
            len: b.len() as u8,
            bytes,
        });
    }

    pub fn push_shared(&mut self, b: Arc<[u8]>) {
        if !b.is_empty() {
            self.queued += b.len();
            self.chunks.push_back(Chunk::Shared(b));
        }
    }

    /// Queues `n` zero bytes (padding) from one buffer shared by every session: no allocation
    /// per packet per client.
    pub fn push_zeros(&mut self, mut n: usize) {
        static ZEROS: OnceLock<Arc<[u8]>> = OnceLock::new();
        let zeros = ZEROS.get_or_init(|| Arc::from(vec![0u8; 1 << 16]));
        while n > 0 {
            let k = n.min(zeros.len());
            self.push_piece(zeros, 0..k);
            n -= k;
        }
    }

    /// Queues `range` of a shared buffer without copying it (an empty or out-of-bounds range
    /// queues nothing).
    pub fn push_piece(&mut self, of: &Arc<[u8]>, range: std::ops::Range<usize>) {
        let (Ok(start), Ok(end)) = (u32::try_from(range.start), u32::try_from(range.end)) else {
            return;
        };
        if range.start >= range.end || range.end > of.len() {
            return;
        }
        self.queued += range.end - range.start;
        self.chunks.push_back(Chunk::Piece {
            of: Arc::clone(of),
            start,
            end,
        });
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Drops everything not yet started (the front chunk, if partly written, is kept so the
    /// byte stream stays well-formed). Returns the bytes dropped.
    pub fn drop_unstarted(&mut self) -> usize {
        let keep = if self.front_done > 0 { 1 } else { 0 };
        let mut dropped = 0;
        while self.chunks.len() > keep {
            if let Some(c) = self.chunks.pop_back() {
                dropped += c.bytes().len();
            }
        }
        self.queued -= dropped;
        dropped
    }

    /// Discards everything, a partly written chunk included (the connection is about to be
    /// closed and will never write it). Returns the bytes discarded.
    pub fn discard_all(&mut self) -> usize {
        let n = self.queued;
        self.chunks.clear();
        self.front_done = 0;
        self.queued = 0;
        n
    }

    /// Up to `max` slices of pending output for `writev`.
    pub fn io_slices(&self, max: usize) -> Vec<IoSlice<'_>> {
        let mut out = Vec::with_capacity(max.min(self.chunks.len()));
        for (i, c) in self.chunks.iter().take(max).enumerate() {
            let b = c.bytes();
            out.push(IoSlice::new(if i == 0 { &b[self.front_done..] } else { b }));
        }
        out
    }

    /// Marks `n` bytes as written.
    pub fn advance(&mut self, mut n: usize) {
        self.queued = self.queued.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_done;
            if n >= left {
                n -= left;
                self.front_done = 0;
                self.chunks.pop_front();
            } else {
                self.front_done += n;
                n = 0;
            }
        }
    }
}

/// The server's UDP data sockets a session may send from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpChannel {
    /// MMS data over UDP (MMSU).
    MmsData,
    /// RTP media (even port of the server's RTP/RTCP pair).
    Rtp,
    /// RTCP (odd port).
    Rtcp,
}

/// The local ports of the server's UDP data sockets, for sessions that announce them to
/// clients (RTSP `server_port=`, MMS transport info). `None` when that socket is not open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpPorts {
    pub mms_data: Option<u16>,
    pub rtp: Option<u16>,
    pub rtcp: Option<u16>,
}

impl UdpPorts {
    /// Every open port: what no client may name as its own data port (the server would send
    /// to itself).
    pub fn all(&self) -> Vec<u16> {
        [self.mms_data, self.rtp, self.rtcp]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A UDP datagram a session wants sent from one of the server's data sockets, in up to three
/// parts so a station packet is never copied per client: the session's own protocol headers,
/// a slice of the station's shared packet buffer, and zero padding. The loop sends many of
/// them in one `sendmmsg(2)` with one iovec per part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub via: UdpChannel,
    pub to: SocketAddr,
    /// Protocol headers (or the whole datagram when it has no shared body).
    pub head: Vec<u8>,
    /// A slice of a shared station buffer, sent after `head`.
    pub body: Option<(Arc<[u8]>, Range<usize>)>,
    /// Zero bytes sent after the body (MMS re-pads packets to the fixed size).
    pub zeros: usize,
}

impl Datagram {
    /// A datagram held in one owned buffer.
    pub fn owned(via: UdpChannel, to: SocketAddr, bytes: Vec<u8>) -> Datagram {
        Datagram {
            via,
            to,
            head: bytes,
            body: None,
            zeros: 0,
        }
    }

    /// `head` then `shared[range]` (clamped to the buffer) then `zeros` zero bytes.
    pub fn split(
        via: UdpChannel,
        to: SocketAddr,
        head: Vec<u8>,
        shared: Arc<[u8]>,
        range: Range<usize>,
        zeros: usize,
    ) -> Datagram {
        let end = range.end.min(shared.len());
        let start = range.start.min(end);
        Datagram {
            via,
            to,
            head,
            body: Some((shared, start..end)),
            zeros,
        }
    }

    /// The shared body bytes (empty when there is none).
    pub fn body(&self) -> &[u8] {
        match &self.body {
            Some((b, r)) => b.get(r.clone()).unwrap_or_default(),
            None => &[],
        }
    }

    /// Total size in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.body().len() + self.zeros
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The datagram as one buffer (tests, diagnostics).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.head);
        v.extend_from_slice(self.body());
        v.resize(self.len(), 0);
        v
    }
}

/// The unicast protocols a station may serve (its `unicast:` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// MMS over TCP, with UDP data (MMSU).
    Mms,
    /// MMS over HTTP ([MS-WMSP]).
    Mmsh,
    /// RTSP with the Windows Media extensions.
    Rtsp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Mms => "mms",
            Protocol::Mmsh => "mmsh",
            Protocol::Rtsp => "rtsp",
        }
    }
}

/// What a session may ask about stations.
pub trait StationView {
    /// The station's current header, if it has one yet.
    fn header(&self, station: &str) -> Option<Arc<StationHeader>>;
    /// The packets from the station's newest clean point to now (what a joiner gets first).
    fn join_backlog(&self, station: &str) -> Vec<Arc<StationPacket>>;
    /// Does the station exist and serve this protocol?
    fn serves(&self, station: &str, protocol: Protocol) -> bool;
    /// Is there room for one more unicast client on the station (its `unicast.max_clients`)?
    fn has_room(&self, _station: &str) -> bool {
        true
    }
    /// May a client from `ip` watch the station (its `access.watch` rules; the server's were
    /// applied at accept)? Asked when a client names the station.
    fn may_watch(&self, _station: &str, _ip: IpAddr) -> bool {
        true
    }
    /// May `ip` send logs to the multicast logging agent route (the server's
    /// `access.log_agent`)?
    fn may_send_logs(&self, _ip: IpAddr) -> bool {
        true
    }
    /// May one more client of this kind play the station, under the server's and the station's
    /// limits ([`crate::access::limits`])? Sessions ask when a client names a station, after
    /// [`StationView::has_room`]; the refusal names the rule. Default: admitted, no caps.
    fn admit(
        &self,
        _station: &str,
        _admission: &crate::access::limits::Admission,
    ) -> Result<crate::access::limits::Grant, crate::access::limits::Refusal> {
        Ok(crate::access::limits::Grant {
            fast_start_cap: None,
        })
    }
    /// The stations' announcements, for the HTTP listener's routes.
    fn catalog(&self) -> &dyn AnnouncementCatalog;
    /// Who may watch the station: None when everyone may ([`crate::access`]).
    fn protection(&self, _station: &str) -> Option<crate::access::gate::Protection> {
        None
    }
    /// The operators' view of stations and clients (status page, metrics), as of the shell's
    /// last housekeeping tick; None where there is none (tests).
    fn snapshot(&self) -> Option<&crate::ops::Snapshot> {
        None
    }
    /// A live station's input, for a feeder the shell hands a connection to (an encoder's
    /// push); None for a station that takes no live feed.
    fn live_input(&self, _station: &str) -> Option<super::live::LiveInput> {
        None
    }
    /// Who may push to the station: None when no credentials are needed.
    fn push_protection(&self, _station: &str) -> Option<crate::access::gate::Protection> {
        None
    }
    /// May `ip` publish to the station (the server's and the station's `access.publish`)?
    fn may_publish(&self, _station: &str, _ip: IpAddr) -> bool {
        false
    }
}

/// What every delivery of a station implements: the station's side of the contract.
pub trait Sink {
    /// The station's header changed (new playlist entry, live header change).
    fn on_header(&mut self, header: &Arc<StationHeader>, now: Instant) -> Step;
    /// The station produced a packet.
    fn on_packet(&mut self, packet: &Arc<StationPacket>, now: Instant) -> Step;
    /// [`Sink::deadline`] has passed.
    fn on_timeout(&mut self, now: Instant) -> Step;
    /// When the sink next needs [`Sink::on_timeout`].
    fn deadline(&self) -> Option<Instant>;
    /// The station stopped (removed or reconfigured by a reload, or the daemon is stopping):
    /// drop the output not yet started, queue the protocol's end of stream (MMSH `$E`, …) and
    /// close. The default just closes.
    fn on_station_end(&mut self, _now: Instant) -> Step {
        Step::close("station stopped")
    }
}

/// A stream switch for the stream of `client_id` (MS-WMSP SelectStream), carried between two
/// connections by the shell; `entries` are the request's `stream-switch-entry` values as sent
/// (the receiving protocol parses them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectStream {
    pub client_id: u32,
    pub entries: Vec<String>,
}

/// What a session tells the status page, the metrics, the control API and the client logs
/// about its client. Counts are since the session started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// "mms", "mmsh", "rtsp", "http" (see [`Session::protocol`]).
    pub protocol: &'static str,
    /// How media travels: "tcp", "udp", "http" (or "-" before it is set up).
    pub transport: &'static str,
    /// The station it plays, once known.
    pub station: Option<String>,
    /// The player's own name for itself (User-Agent, MMS subscriber string), if it sent one.
    pub user_agent: Option<String>,
    /// Media is flowing (the client has started playing).
    pub playing: bool,
    /// Media packets (or RTP packets) and their bytes queued or sent to the client.
    pub packets: u64,
    pub bytes: u64,
    /// Times the client skipped to a clean point because it was behind, and packets skipped.
    pub skips: u64,
    pub skipped: u64,
    /// The MMSH `client-id` the server gave a session that played, so a log the player posts
    /// later on another connection (`Pragma: client-id=<n>`) joins this session's record.
    pub client_id: Option<u32>,
    /// Thinning steps (down and up) the server took for the client (Intelligent Streaming).
    pub thin_steps: u64,
}

/// A unicast client: a [`Sink`] with a connection the shell reads and writes.
pub trait Session: Sink {
    /// "mms", "mmsh", "rtsp", "http" — for logs.
    fn protocol(&self) -> &'static str;
    /// The station this session plays, once it is known (for packet delivery).
    fn station(&self) -> Option<&str>;
    /// Bytes from the client.
    fn on_bytes(&mut self, input: &[u8], now: Instant, stations: &dyn StationView) -> Step;
    /// Stream output to write.
    fn output(&mut self) -> &mut OutQueue;
    /// Datagrams to send (UDP data channels); default none.
    fn take_datagrams(&mut self, _out: &mut Vec<Datagram>) {}
    /// The client addresses (IP and port) this session expects datagrams from on the server's
    /// UDP data sockets: the ports the client set up. The shell reads it after every event
    /// and routes datagrams from these addresses to [`Session::on_datagram`]. Default none.
    fn udp_peers(&self) -> &[SocketAddr] {
        &[]
    }
    /// A datagram from one of [`Session::udp_peers`], received on the server's `via` socket.
    /// Default: ignored.
    fn on_datagram(
        &mut self,
        _via: UdpChannel,
        _from: SocketAddr,
        _bytes: &[u8],
        _now: Instant,
    ) -> Step {
        Step::Continue
    }
    /// The peer closed its side: default is to close.
    fn on_peer_closed(&mut self, _now: Instant) -> Step {
        Step::close(PEER_CLOSED_CONNECTION)
    }
    /// The logs the player sent about itself ([MS-WMLOG]: an MMSH log POST, an RTSP
    /// SET_PARAMETER log, the multicast logging agent), taken by the shell when the connection
    /// ends and merged into its client log line. Default: none.
    fn take_client_logs(&mut self, _out: &mut Vec<crate::ops::wmlog_client::ClientReport>) {}
    /// The kind of client the session was admitted as ([`StationView::admit`]), while it holds
    /// its place on [`Session::station`]: the shell counts it against the limits. Default none.
    fn admitted(&self) -> Option<crate::access::limits::Kind> {
        None
    }
    /// What the session knows about its client, for status, metrics and logs.
    fn info(&self) -> ClientInfo {
        ClientInfo {
            protocol: self.protocol(),
            transport: "-",
            station: self.station().map(str::to_string),
            ..ClientInfo::default()
        }
    }
    /// A mid-stream stream switch this session received for another connection's stream (MMSH
    /// SelectStream: a POST naming the playing connection's `client-id`), for the shell to
    /// route with [`Session::select_stream`]. Default none.
    fn take_select_stream(&mut self) -> Option<SelectStream> {
        None
    }
    /// Applies a routed [`SelectStream`] when it is for this session's stream; true when it was.
    fn select_stream(&mut self, _request: &SelectStream, _now: Instant) -> bool {
        false
    }
    /// The control API's side of a session (requests for the shell to route, answers back);
    /// only the control API's sessions have one ([`crate::ops::api_session`]). Default none.
    fn api(&mut self) -> Option<&mut dyn crate::ops::api::ApiPort> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_heads_are_inline_and_written_in_order() {
        let mut q = OutQueue::new();
        q.push_small(&[1, 2]);
        q.push_shared(Arc::from(vec![3u8, 4, 5]));
        q.push_small(&[6; SMALL_CHUNK + 1]);
        q.push_small(&[]);
        assert_eq!(q.queued_bytes(), 2 + 3 + SMALL_CHUNK + 1);
        let flat: Vec<u8> = q.io_slices(16).iter().flat_map(|s| s.to_vec()).collect();
        let mut want = vec![1, 2, 3, 4, 5];
        want.extend([6; SMALL_CHUNK + 1]);
        assert_eq!(flat, want);
        q.advance(1);
        let flat: Vec<u8> = q.io_slices(16).iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(flat.first(), Some(&2));
    }

    #[test]
    fn queue_tracks_partial_writes_and_drops_only_unstarted_chunks() {
        let mut q = OutQueue::new();
        q.push_owned(vec![1, 2, 3]);
        q.push_shared(Arc::from(vec![4, 5, 6, 7]));
        q.push_owned(vec![8]);
        assert_eq!(q.queued_bytes(), 8);
        q.advance(2);
        let s: Vec<u8> = q.io_slices(8).iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(s, [3, 4, 5, 6, 7, 8]);
        assert_eq!(q.drop_unstarted(), 5);
        assert_eq!(q.queued_bytes(), 1);
        q.advance(1);
        assert!(q.is_empty());
        q.push_owned(vec![9]);
        assert_eq!(q.drop_unstarted(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn pieces_of_a_shared_buffer_are_queued_without_copies() {
        let packet: Arc<[u8]> = Arc::from((0u8..10).collect::<Vec<_>>());
        let mut q = OutQueue::new();
        q.push_small(&[0xff]);
        q.push_piece(&packet, 0..4);
        q.push_small(&[0xfe]);
        q.push_piece(&packet, 4..10);
        q.push_piece(&packet, 7..7);
        q.push_piece(&packet, 8..11);
        assert_eq!(q.queued_bytes(), 12);
        assert_eq!(Arc::strong_count(&packet), 3, "shared, not copied");
        let flat: Vec<u8> = q.io_slices(16).iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(flat, [0xff, 0, 1, 2, 3, 0xfe, 4, 5, 6, 7, 8, 9]);
        q.advance(3);
        let flat: Vec<u8> = q.io_slices(16).iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(flat, [2, 3, 0xfe, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn padding_comes_from_one_shared_buffer() {
        let mut q = OutQueue::new();
        q.push_zeros(0);
        assert!(q.is_empty());
        q.push_zeros(3);
        q.push_zeros((1 << 16) + 5);
        assert_eq!(q.queued_bytes(), 3 + (1 << 16) + 5);
        let flat: Vec<u8> = q.io_slices(16).iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(flat.len(), q.queued_bytes());
        assert!(flat.iter().all(|&b| b == 0));
    }
}
