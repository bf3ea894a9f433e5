//! The station hub: what every delivery of one station shares — the current ASF header with a
//! generation number, a ring of recent packets that always reaches back to a clean point — the
//! newest one at least the fast-start buffer behind the live edge — so a unicast joiner starts
//! on a key frame with its player's buffer's worth, and the counters.
//!
//! Packets are immutable shared buffers ([`StationPacket`] behind an `Arc`): N sinks cost N
//! socket writes, not N copies. Pure code: the shell pushes packets in and sinks read them out.
//!
//! Beside the hub live the contracts the rest of the crate is built on, all pure:
//! - [`source`]: what a source yields (header, timed packets, lost / back, end);
//! - [`sink`]: what every delivery implements (`Sink`: the MSB sender and each unicast
//!   session; `Session`: a unicast client with a connection), with the output queue and
//!   datagram types the shell writes;
//! - [`delivery`]: the per-client rules every unicast protocol uses (join, fast start, behind,
//!   stall, header changes, stream selection), over the packet schedule of [`feed`];
//! - [`catalog`]: the announcement data the HTTP routes serve.
//!
//! Where the data goes next: the shell (`crate::net`) hands each new header and packet to the
//! station's sinks; what they queue, the shell writes to sockets.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub mod catalog;
pub mod delivery;
pub mod feed;
pub mod live;
pub mod selection;
pub mod sink;
pub mod source;

use crate::asf::rewrite::{filter_payloads, select_streams, Filtered};
use crate::asf::{AsfHeader, DataHead, Packet};

/// The ASF header a station currently announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationHeader {
    /// Increments whenever the header (or the playlist entry) changes.
    pub generation: u64,
    /// The 11-bit MSB Format ID of this header (the .nsc `Format<N>` key).
    pub format_id: u16,
    /// The broadcast-rewritten header as parsed.
    pub header: AsfHeader,
    /// Header Object + 50-byte Data Object head, as every protocol sends it.
    pub bytes: Arc<[u8]>,
}

impl StationHeader {
    /// Builds the live announcement of a file header: broadcast flags, broadcast Data head.
    pub fn live(generation: u64, file_header: &AsfHeader, data: &DataHead, format_id: u16) -> Self {
        let header = file_header.to_broadcast();
        let bytes: Arc<[u8]> = header
            .stream_header_bytes(&DataHead::broadcast(data.file_id))
            .into();
        StationHeader {
            generation,
            format_id,
            header,
            bytes,
        }
    }
}

/// One data packet of the station, padding stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationPacket {
    /// Station-wide packet sequence number, from 0, never reused.
    pub seq: u64,
    /// Header generation the packet belongs to.
    pub generation: u64,
    /// ASF send time (ms).
    pub send_time: u32,
    /// True when a joiner may start here: every clean-point stream starts a key frame at or
    /// before this packet within the current run (see [`Station::push`]).
    pub clean: bool,
    /// The packet with its padding stripped.
    pub bytes: Arc<[u8]>,
    /// The packet split by stream, made on first use ([`StationPacket::only_stream`]).
    pub by_stream: OnceLock<Vec<StreamPart>>,
    /// For a clean point whose packet also carries the end of an earlier frame of the stream
    /// joiners wait for: the packet without those payloads, so a joiner's first video frame is
    /// the key frame ([`StationPacket::as_join_point`]). None when nothing precedes it.
    pub join_bytes: Option<Arc<[u8]>>,
}

/// The packet reduced to one stream's payloads, shared by every session that sends that
/// stream alone (RTSP's one RTP session per stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPart {
    pub stream: u8,
    /// The packet with only this stream's payloads (the packet itself when it has no other).
    pub bytes: Arc<[u8]>,
    /// One of them starts a key frame.
    pub key: bool,
}

impl StationPacket {
    pub fn new(seq: u64, generation: u64, send_time: u32, clean: bool, bytes: Arc<[u8]>) -> Self {
        StationPacket {
            seq,
            generation,
            send_time,
            clean,
            bytes,
            by_stream: OnceLock::new(),
            join_bytes: None,
        }
    }

    /// The packet as the first one a client receives when it starts (or resumes) here: a
    /// clean point without the payloads of an earlier frame of the joiners' stream.
    pub fn as_join_point(self: &Arc<Self>) -> Arc<StationPacket> {
        match &self.join_bytes {
            Some(b) => Arc::new(StationPacket::new(
                self.seq,
                self.generation,
                self.send_time,
                self.clean,
                Arc::clone(b),
            )),
            None => Arc::clone(self),
        }
    }

    /// The packet split by stream: one part per stream it carries, in stream order (empty when
    /// it does not parse). Computed once per packet, however many clients ask.
    pub fn parts(&self) -> &[StreamPart] {
        self.by_stream.get_or_init(|| split_by_stream(&self.bytes))
    }

    /// The packet reduced to the payloads of `stream`, or None when it has none.
    pub fn only_stream(&self, stream: u8) -> Option<&StreamPart> {
        self.parts().iter().find(|p| p.stream == stream)
    }
}

fn split_by_stream(bytes: &Arc<[u8]>) -> Vec<StreamPart> {
    let Ok(pkt) = Packet::parse(bytes) else {
        return Vec::new();
    };
    let mut streams: Vec<u8> = pkt.payloads.iter().map(|p| p.stream).collect();
    streams.sort_unstable();
    streams.dedup();
    streams
        .into_iter()
        .filter_map(|n| {
            let part = match select_streams(&pkt, &[n]) {
                Filtered::Unchanged => Arc::clone(bytes),
                Filtered::Rewritten(v) => v.into(),
                Filtered::Dropped => return None,
            };
            let key = pkt
                .payloads
                .iter()
                .any(|p| p.stream == n && p.starts_key_frame());
            Some(StreamPart {
                stream: n,
                bytes: part,
                key,
            })
        })
        .collect()
}

/// The packet without the payloads of `stream` that come before its first key-frame start
/// (the end of an earlier frame); None when there are none, or the packet does not parse.
fn trim_before_key_frame(bytes: &[u8], stream: u8) -> Option<Arc<[u8]>> {
    let pkt = Packet::parse(bytes).ok()?;
    let key = pkt
        .payloads
        .iter()
        .position(|p| p.stream == stream && p.starts_key_frame())?;
    if !pkt.payloads[..key].iter().any(|p| p.stream == stream) {
        return None;
    }
    let mut index = 0;
    match filter_payloads(&pkt, |p| {
        let keep = index >= key || p.stream != stream;
        index += 1;
        keep
    }) {
        Filtered::Rewritten(v) => Some(v.into()),
        _ => None,
    }
}

/// Counters a station exposes for status and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StationCounters {
    pub packets: u64,
    pub bytes: u64,
    pub header_changes: u64,
    pub bad_packets: u64,
    pub source_errors: u64,
}

/// Upper bound on the ring, in bytes: a long fast-start buffer on a high-rate station (or a
/// stream without key frames) drops its oldest packets beyond this; joiners then start at the
/// ring's first clean point.
pub const MAX_RING_BYTES: usize = 32 << 20;

/// The hub of one station.
#[derive(Debug)]
pub struct Station {
    pub name: String,
    header: Option<Arc<StationHeader>>,
    ring: VecDeque<Arc<StationPacket>>,
    next_seq: u64,
    /// Upper bound on the ring, in packets, so a stream without key frames cannot grow it.
    max_ring: usize,
    /// Bytes of the packets in the ring (bounded by [`MAX_RING_BYTES`]).
    ring_bytes: usize,
    /// Clean-point streams of the current header.
    clean_streams: Vec<u8>,
    /// How far behind the newest packet (in send-time ms) the ring's first clean point may
    /// reach: joiners start there ([`Station::set_join_reach_back`]); 0 keeps only the newest.
    reach_back_ms: u32,
    pub counters: StationCounters,
}

impl Station {
    pub fn new(name: impl Into<String>, max_ring: usize) -> Self {
        Station {
            name: name.into(),
            header: None,
            ring: VecDeque::new(),
            ring_bytes: 0,
            next_seq: 0,
            max_ring: max_ring.max(1),
            clean_streams: Vec::new(),
            reach_back_ms: 0,
            counters: StationCounters::default(),
        }
    }

    /// Joiners start at the newest clean point at least `d` (of send time) behind the newest
    /// packet, when the ring has one (else at its oldest): the fast-start buffer
    /// (`limits.fast_start_buffer`). Zero: at the newest clean point.
    pub fn set_join_reach_back(&mut self, d: Duration) {
        self.reach_back_ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    }

    pub fn header(&self) -> Option<&Arc<StationHeader>> {
        self.header.as_ref()
    }

    /// Installs a new header (a new playlist entry or a live header change). The ring is
    /// cleared: packets of the old header are useless to a joiner of the new one.
    pub fn set_header(&mut self, header: StationHeader) -> Arc<StationHeader> {
        self.clean_streams = header.header.clean_point_streams();
        self.ring.clear();
        self.ring_bytes = 0;
        self.counters.header_changes += 1;
        let h = Arc::new(header);
        self.header = Some(h.clone());
        h
    }

    /// The generation the next header should carry.
    pub fn next_generation(&self) -> u64 {
        self.header.as_ref().map_or(1, |h| h.generation + 1)
    }

    /// Adds a stripped packet and returns it as shared. A packet is a clean point when it
    /// starts a key frame on the first clean-point stream (the stream joiners wait for), or
    /// always when the header has none (audio-only stations).
    pub fn push(&mut self, stripped: Vec<u8>) -> Option<Arc<StationPacket>> {
        match Packet::parse(&stripped) {
            Ok(p) => {
                let (send_time, clean) = (p.send_time, self.is_clean(&p));
                self.push_parsed(stripped, send_time, clean)
            }
            Err(_) => {
                self.counters.bad_packets += 1;
                None
            }
        }
    }

    /// Does this packet start a key frame on the stream joiners wait for (always true for a
    /// header without clean-point streams)?
    pub fn is_clean(&self, p: &Packet<'_>) -> bool {
        match self.clean_streams.first() {
            Some(&s) => p.starts_key_frame_on(s),
            None => true,
        }
    }

    /// [`Station::push`] for a caller that has already parsed the packet (the station runtime
    /// parses once, before stripping the padding).
    pub fn push_parsed(
        &mut self,
        stripped: Vec<u8>,
        send_time: u32,
        clean: bool,
    ) -> Option<Arc<StationPacket>> {
        let header = self.header.as_ref()?;
        let join_bytes = if clean {
            self.clean_streams
                .first()
                .and_then(|&s| trim_before_key_frame(&stripped, s))
        } else {
            None
        };
        let mut pkt = StationPacket::new(
            self.next_seq,
            header.generation,
            send_time,
            clean,
            stripped.into(),
        );
        pkt.join_bytes = join_bytes;
        let pkt = Arc::new(pkt);
        self.next_seq += 1;
        self.counters.packets += 1;
        self.counters.bytes += pkt.bytes.len() as u64;
        if clean {
            // Everything before the newest clean point at least the reach-back behind this
            // one is no longer needed by joiners.
            let limit = send_time.saturating_sub(self.reach_back_ms);
            let keep = if self.reach_back_ms == 0 {
                self.ring.len()
            } else {
                self.ring
                    .iter()
                    .rposition(|p| p.clean && p.send_time <= limit)
                    .unwrap_or(0)
            };
            for p in self.ring.drain(..keep) {
                self.ring_bytes -= p.bytes.len();
            }
        }
        self.ring_bytes += pkt.bytes.len();
        self.ring.push_back(pkt.clone());
        while self.ring.len() > self.max_ring || self.ring_bytes > MAX_RING_BYTES {
            match self.ring.pop_front() {
                Some(p) => self.ring_bytes -= p.bytes.len(),
                None => break,
            }
        }
        Some(pkt)
    }

    /// Packets from the ring's first clean point (the newest, or the newest at least the
    /// reach-back behind) to now: what a joiner receives first.
    pub fn join_backlog(&self) -> impl Iterator<Item = &Arc<StationPacket>> {
        let start = self
            .ring
            .iter()
            .position(|p| p.clean)
            .unwrap_or(self.ring.len());
        self.ring.iter().skip(start)
    }

    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::rewrite::strip_padding;
    use crate::asf::AsfReader;
    use std::path::PathBuf;

    fn sample() -> PathBuf {
        // The repository's own demo clip: 10 s, a key frame every 2 s, 155 packets.
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf")
    }

    #[test]
    fn per_stream_split_is_made_once_and_matches_select_streams() {
        let mut r = AsfReader::open(&sample()).unwrap();
        let mut mixed = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            let stripped: Arc<[u8]> = strip_padding(&p.parse().unwrap()).into();
            let sp = StationPacket::new(0, 1, 0, false, Arc::clone(&stripped));
            let parsed = Packet::parse(&stripped).unwrap();
            let has = |n: u8| parsed.payloads.iter().any(|pl| pl.stream == n);
            for n in [1u8, 2, 3] {
                let part = sp.only_stream(n);
                assert_eq!(part.is_some(), has(n), "stream {n}");
                let Some(part) = part else { continue };
                let want = match select_streams(&parsed, &[n]) {
                    Filtered::Unchanged => stripped.to_vec(),
                    Filtered::Rewritten(v) => v,
                    Filtered::Dropped => unreachable!(),
                };
                assert_eq!(&part.bytes[..], &want[..]);
                if !(has(1) && has(2)) {
                    // A single-stream packet is shared, not copied.
                    assert!(Arc::ptr_eq(&part.bytes, &stripped));
                }
                let key = parsed
                    .payloads
                    .iter()
                    .any(|pl| pl.stream == n && pl.starts_key_frame());
                assert_eq!(part.key, key);
            }
            mixed += usize::from(has(1) && has(2));
            // Asked again: the same buffers.
            let a = sp.only_stream(1).map(|p| Arc::as_ptr(&p.bytes));
            assert_eq!(a, sp.only_stream(1).map(|p| Arc::as_ptr(&p.bytes)));
        }
        assert!(mixed > 10, "the demo clip mixes audio and video in packets");
    }

    #[test]
    fn ring_reaches_back_to_the_last_clean_point() {
        let mut r = AsfReader::open(&sample()).unwrap();
        let mut st = Station::new("t", 10_000);
        assert!(st.push(vec![0; 10]).is_none(), "no header yet");
        let h = StationHeader::live(st.next_generation(), r.header(), r.data_head(), 7);
        st.set_header(h);
        let mut cleans = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            let s = strip_padding(&p.parse().unwrap());
            let sp = st.push(s).unwrap();
            cleans += usize::from(sp.clean);
            let first = st.join_backlog().next().unwrap();
            assert!(first.clean, "joiners start at a clean point");
            let parsed = Packet::parse(&first.bytes).unwrap();
            assert!(parsed.starts_key_frame_on(1));
        }
        assert_eq!(cleans, 5, "one clean point per 2 s GOP");
        assert!(
            st.ring_len() < 40,
            "ring holds only the last GOP: {}",
            st.ring_len()
        );
        assert_eq!(st.counters.packets, 155);
    }

    /// The ring never holds more than [`MAX_RING_BYTES`], whatever the buffer and the rate.
    #[test]
    fn ring_bytes_are_bounded() {
        let r = AsfReader::open(&sample()).unwrap();
        let mut st = Station::new("t", 10_000);
        st.set_join_reach_back(Duration::from_secs(60));
        st.set_header(StationHeader::live(
            st.next_generation(),
            r.header(),
            r.data_head(),
            7,
        ));
        for i in 0..100u32 {
            st.push_parsed(vec![0; 1 << 20], i * 10, i % 10 == 0)
                .unwrap();
            assert!(st.ring_bytes <= MAX_RING_BYTES);
            assert_eq!(
                st.ring_bytes,
                st.ring.iter().map(|p| p.bytes.len()).sum::<usize>()
            );
        }
        assert_eq!(st.ring_len(), MAX_RING_BYTES >> 20);
    }

    /// With a fast-start buffer, joiners start at the newest clean point at least that far
    /// behind the newest clean point (the ring is trimmed when one arrives): 5 s of reach-back
    /// over the sample's 2 s GOPs, never at a packet that is not a clean point.
    #[test]
    fn ring_reaches_back_the_fast_start_buffer() {
        let mut r = AsfReader::open(&sample()).unwrap();
        let mut st = Station::new("t", 10_000);
        st.set_join_reach_back(Duration::from_secs(5));
        let h = StationHeader::live(st.next_generation(), r.header(), r.data_head(), 7);
        st.set_header(h);
        let mut clean_times: Vec<u32> = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            let s = strip_padding(&p.parse().unwrap());
            let sp = st.push(s).unwrap();
            if sp.clean {
                clean_times.push(sp.send_time);
            }
            let newest = *clean_times.last().unwrap();
            let want = clean_times
                .iter()
                .rev()
                .find(|&&t| t + 5_000 <= newest)
                .copied()
                .unwrap_or(clean_times[0]);
            let first = st.join_backlog().next().unwrap();
            assert!(first.clean, "joiners start at a clean point");
            assert_eq!(first.send_time, want, "newest packet at {}", sp.send_time);
        }
        assert_eq!(clean_times.len(), 5);
        let first = st.join_backlog().next().unwrap().send_time;
        assert!(
            clean_times[4] - first >= 5_000,
            "{first} → {}",
            clean_times[4]
        );
        assert!(first > clean_times[0], "older GOPs were dropped");
    }

    #[test]
    fn a_join_point_starts_with_the_key_frame() {
        let mut r = AsfReader::open(&sample()).unwrap();
        let mut st = Station::new("t", 10_000);
        st.set_header(StationHeader::live(
            st.next_generation(),
            r.header(),
            r.data_head(),
            1,
        ));
        let (mut cleans, mut trimmed) = (0, 0);
        while let Some(p) = r.next_packet() {
            let sp = st
                .push(strip_padding(&p.unwrap().parse().unwrap()))
                .unwrap();
            if !sp.clean {
                assert!(sp.join_bytes.is_none());
                continue;
            }
            cleans += 1;
            trimmed += usize::from(sp.join_bytes.is_some());
            let j = sp.as_join_point();
            let parsed = Packet::parse(&j.bytes).unwrap();
            let first_video = parsed.payloads.iter().find(|pl| pl.stream == 1).unwrap();
            assert!(first_video.starts_key_frame(), "packet {}", sp.seq);
            assert_eq!((j.seq, j.send_time, j.clean), (sp.seq, sp.send_time, true));
            // Nothing but the earlier frame's payloads is removed.
            let before = Packet::parse(&sp.bytes).unwrap();
            let others = |p: &Packet<'_>| p.payloads.iter().filter(|pl| pl.stream != 1).count();
            assert_eq!(others(&parsed), others(&before));
        }
        assert_eq!(cleans, 5);
        assert!(
            trimmed > 0,
            "demo.asf has clean points that carry an earlier frame's end"
        );
    }

    #[test]
    fn header_change_clears_the_ring_and_bumps_the_generation() {
        let r = AsfReader::open(&sample()).unwrap();
        let mut st = Station::new("t", 16);
        let g1 = st.next_generation();
        st.set_header(StationHeader::live(g1, r.header(), r.data_head(), 1));
        let g2 = st.next_generation();
        assert_eq!(g2, g1 + 1);
        let h = st.set_header(StationHeader::live(g2, r.header(), r.data_head(), 1));
        assert!(h.header.file.is_broadcast());
        assert_eq!(st.ring_len(), 0);
    }
}
