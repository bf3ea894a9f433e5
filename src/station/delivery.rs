//! The per-client delivery rules, in one place for every unicast protocol (MMS, MMSH, RTSP):
//! where a client joins, how fast it catches up, what happens when it falls behind or the
//! station's header changes, and which payloads of each packet it receives. A protocol frames
//! the packets [`Delivery`] hands it and signals header changes its own way; it decides none
//! of the rules below.
//!
//! # The rules
//!
//! - **Join.** A client starts at the station's newest clean point with the packets since
//!   ([`crate::station::Station::join_backlog`]), keeping only those of the header it was
//!   given; that backlog is released at `fast_start_rate` × real time ([`LiveFeed`]).
//! - **Behind.** Above `backlog_limit` bytes queued for the socket the client skips to the
//!   next clean point (counted); it is re-checked every [`BEHIND_CHECK`] even when the station
//!   is silent.
//! - **Stall and drop.** Behind for longer than `stall_timeout`: the client is dropped, and
//!   **everything it has queued is discarded**, a partly written chunk included — a client that
//!   has not read for that long will not read it, and the connection must close now instead of
//!   lingering. (Of the three earlier copies one kept the queue, one dropped only what had not
//!   started; both let a dead client hold its connection for the linger time.)
//! - **Header change** ([`compare_headers`]): the same bytes (a playlist looping over one
//!   file) or the same streams with the same formats and packet size (a compatible next
//!   entry) continue; anything else ends the client's stream. On a change that continues,
//!   the packets still held back by fast start belong to the old header and are **released at
//!   once, before anything of the new header** — never dropped: a client that joined just
//!   before a loop boundary used to lose its whole join backlog (1–2 s of media, invisible to
//!   the player since sequence numbers stayed contiguous). The client then waits for the new
//!   header's first clean point.
//! - **Stream selection and thinning** ([`StreamSelection`]): streams turned off lose their
//!   payloads; thinning to key frames applies to **video streams only** — audio payloads carry
//!   no key-frame bit in the files we play (asf.md §3.4), so thinning them would silence the
//!   client (the MMS copy thinned any stream); a selection that would turn every stream off is
//!   ignored (the client would receive nothing and stall); a packet left empty is not sent.
//!
//! Pure: the session passes `now` and its queue; the rules return packets, verdicts and
//! deadlines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::feed::{FeedConfig, FeedState, LiveFeed};
use super::sink::OutQueue;
use super::{StationHeader, StationPacket};
use crate::asf::header::StreamKind;
use crate::asf::rewrite::{filter_payloads, Filtered};
use crate::asf::{AsfHeader, Packet};

/// How often a client that is behind is re-checked against the stall timeout when no station
/// packet arrives to check it.
pub const BEHIND_CHECK: Duration = Duration::from_millis(500);

/// What a client should do after a delivery step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Packets flow.
    Flowing,
    /// Behind: skipping to the next clean point.
    Behind,
    /// Stalled: close the client (its queue is already discarded); why.
    Drop(String),
}

/// What a protocol does with the packets the rules release: frame each for its client
/// (MMS Data packets, MMSH `$D` chunks, RTP). The rules measure the client's backlog on
/// [`Framer::queue`].
pub trait Framer {
    /// Frame one station packet for the client.
    fn frame(&mut self, packet: &Arc<StationPacket>, now: Instant);
    /// The client's stream output queue.
    fn queue(&mut self) -> &mut OutQueue;
}

/// One client's live delivery; see the module doc.
#[derive(Debug)]
pub struct Delivery {
    feed: LiveFeed,
    header: Arc<StationHeader>,
    config: FeedConfig,
    behind_check: Option<Instant>,
    /// Packets released by the last step, handed to the framer (kept to reuse its allocation).
    due: Vec<Arc<StationPacket>>,
}

impl Delivery {
    /// A client joining with `header` (the one it was told about) and the station's join
    /// backlog; packets of another header are left out.
    pub fn join(
        config: FeedConfig,
        header: Arc<StationHeader>,
        backlog: Vec<Arc<StationPacket>>,
        now: Instant,
    ) -> Delivery {
        let backlog = backlog
            .into_iter()
            .filter(|p| p.generation == header.generation)
            .collect();
        Delivery {
            feed: LiveFeed::join(config, backlog, now),
            header,
            config,
            behind_check: None,
            due: Vec::new(),
        }
    }

    /// A station packet: what is due goes to `framer` at once.
    pub fn offer_to(
        &mut self,
        p: &Arc<StationPacket>,
        framer: &mut impl Framer,
        now: Instant,
    ) -> Verdict {
        let mut due = std::mem::take(&mut self.due);
        let verdict = self.offer(p, framer.queue(), now, &mut due);
        Self::frame_all(&mut due, framer, now);
        self.due = due;
        verdict
    }

    /// The deadline passed: the fast-start packets now due go to `framer`.
    pub fn release_to(&mut self, framer: &mut impl Framer, now: Instant) -> Verdict {
        let mut due = std::mem::take(&mut self.due);
        let verdict = self.release(framer.queue(), now, &mut due);
        Self::frame_all(&mut due, framer, now);
        self.due = due;
        verdict
    }

    /// The station's header changed ([`Delivery::on_header`]): the old header's packets still
    /// held back go to `framer` before the caller signals the new header.
    pub fn header_to(
        &mut self,
        new: &Arc<StationHeader>,
        framer: &mut impl Framer,
        now: Instant,
    ) -> HeaderChange {
        let mut due = std::mem::take(&mut self.due);
        let change = self.on_header(new, &mut due);
        Self::frame_all(&mut due, framer, now);
        self.due = due;
        change
    }

    fn frame_all(due: &mut Vec<Arc<StationPacket>>, framer: &mut impl Framer, now: Instant) {
        for p in due.drain(..) {
            framer.frame(&p, now);
        }
    }

    /// The header the client plays.
    pub fn header(&self) -> &Arc<StationHeader> {
        &self.header
    }

    /// Times the client skipped to a clean point, and packets it did not get because of it.
    pub fn skips(&self) -> (u64, u64) {
        (self.feed.skips, self.feed.skipped_packets)
    }

    /// A station packet: `due` gets the packets to send now, in order.
    pub fn offer(
        &mut self,
        p: &Arc<StationPacket>,
        queue: &mut OutQueue,
        now: Instant,
        due: &mut Vec<Arc<StationPacket>>,
    ) -> Verdict {
        let state = self.feed.offer(p, queue.queued_bytes(), now, due);
        self.verdict(state, queue, now, due)
    }

    /// The deadline passed: `due` gets the fast-start packets now due.
    pub fn release(
        &mut self,
        queue: &mut OutQueue,
        now: Instant,
        due: &mut Vec<Arc<StationPacket>>,
    ) -> Verdict {
        let state = self.feed.release(now, due);
        self.verdict(state, queue, now, due)
    }

    /// When [`Delivery::release`] is next needed.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.feed.deadline(), self.behind_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The station's header changed. On [`HeaderChange::Same`] and
    /// [`HeaderChange::Compatible`] the client continues: `due` gets the old header's packets
    /// still held back (send them before signalling the new header), and the client waits for
    /// the new header's first clean point. On [`HeaderChange::Incompatible`] nothing changes:
    /// the session ends the stream its protocol's way.
    pub fn on_header(
        &mut self,
        new: &Arc<StationHeader>,
        due: &mut Vec<Arc<StationPacket>>,
    ) -> HeaderChange {
        let change = compare_headers(&self.header, new);
        if change.continues() {
            self.feed.on_header_change(due);
            self.header = Arc::clone(new);
        }
        change
    }

    fn verdict(
        &mut self,
        state: FeedState,
        queue: &mut OutQueue,
        now: Instant,
        due: &mut Vec<Arc<StationPacket>>,
    ) -> Verdict {
        match state {
            FeedState::Flowing => {
                self.behind_check = None;
                Verdict::Flowing
            }
            FeedState::Skipping => {
                self.behind_check = Some(now + BEHIND_CHECK);
                Verdict::Behind
            }
            FeedState::Stalled => {
                due.clear();
                let queued = queue.queued_bytes();
                queue.discard_all();
                let (skips, skipped) = self.skips();
                Verdict::Drop(format!(
                    "client fell behind for {:?} ({queued} bytes queued, {skips} skips, {skipped} packets skipped)",
                    self.config.stall_timeout
                ))
            }
        }
    }
}

/// How a new station header relates to the one a client plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderChange {
    /// The same bytes (the playlist looping over one file).
    Same,
    /// Different bytes, same packet size and streams: the client can continue.
    Compatible,
    /// The client cannot continue; why.
    Incompatible(String),
}

impl HeaderChange {
    /// Can the client continue on the new header?
    pub fn continues(&self) -> bool {
        !matches!(self, HeaderChange::Incompatible(_))
    }
}

/// The one rule for "can this client continue on the new header?": the same packet size and
/// the same streams (number, kind and format data, in any order). The clients' demuxers keep
/// the first header's stream formats, so nothing else can be switched to in place.
pub fn compare_headers(current: &StationHeader, new: &StationHeader) -> HeaderChange {
    if current.bytes == new.bytes {
        return HeaderChange::Same;
    }
    let (a, b): (&AsfHeader, &AsfHeader) = (&current.header, &new.header);
    if a.packet_size() != b.packet_size() {
        return HeaderChange::Incompatible(format!(
            "packet size {} → {}",
            a.packet_size(),
            b.packet_size()
        ));
    }
    let layout = |h: &AsfHeader| -> Vec<(u8, &'static str, Vec<u8>)> {
        let mut v: Vec<_> = h
            .streams
            .iter()
            .map(|s| (s.number, s.kind.as_str(), s.type_specific.clone()))
            .collect();
        v.sort();
        v
    };
    if layout(a) != layout(b) {
        return HeaderChange::Incompatible("different streams or stream formats".to_string());
    }
    HeaderChange::Compatible
}

/// How a client asks to receive one stream (MMS StreamSwitch, MMSH `stream-switch-entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinning {
    /// Level 0: everything.
    All,
    /// Level 1: key-frame objects only (video streams only; see the module doc).
    KeyFrames,
    /// Level 2: nothing.
    Off,
}

impl Thinning {
    /// The wire level 0/1/2; anything above 2 means off.
    pub fn from_level(level: u16) -> Thinning {
        match level {
            0 => Thinning::All,
            1 => Thinning::KeyFrames,
            _ => Thinning::Off,
        }
    }
}

/// Which payloads of the station's packets a client receives; see the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSelection {
    /// Streams turned off.
    pub removed: Vec<u8>,
    /// Video streams thinned to key frames.
    pub key_frames_only: Vec<u8>,
}

/// A packet after stream selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// Send the station's shared packet as it is.
    Whole,
    /// Send this rewritten packet.
    Rewritten(Vec<u8>),
    /// Nothing of it is for this client.
    Nothing,
    /// The packet does not parse (cannot be filtered).
    Unreadable,
}

impl StreamSelection {
    /// Resolves a client's requests (stream number, level; later entries win) against
    /// `header`. Streams the header does not have are ignored.
    pub fn resolve(
        requests: impl IntoIterator<Item = (u8, Thinning)>,
        header: &AsfHeader,
    ) -> StreamSelection {
        let mut sel = StreamSelection::default();
        for (n, level) in requests {
            let Some(stream) = header.stream(n) else {
                continue;
            };
            sel.removed.retain(|&r| r != n);
            sel.key_frames_only.retain(|&r| r != n);
            match level {
                Thinning::All => {}
                Thinning::Off => sel.removed.push(n),
                Thinning::KeyFrames => {
                    if stream.kind == StreamKind::Video {
                        sel.key_frames_only.push(n);
                    }
                }
            }
        }
        if !header.streams.is_empty()
            && header
                .streams
                .iter()
                .all(|s| sel.removed.contains(&s.number))
        {
            sel.removed.clear();
        }
        sel
    }

    /// True when every payload is sent as it is.
    pub fn is_all(&self) -> bool {
        self.removed.is_empty() && self.key_frames_only.is_empty()
    }

    /// Whether a payload of `stream` (with its key-frame bit) is sent.
    pub fn keeps(&self, stream: u8, key_frame: bool) -> bool {
        !self.removed.contains(&stream) && (key_frame || !self.key_frames_only.contains(&stream))
    }

    /// What of `packet` this client receives.
    pub fn apply(&self, packet: &[u8]) -> Selected {
        if self.is_all() {
            return Selected::Whole;
        }
        match Packet::parse(packet) {
            Ok(pkt) => match filter_payloads(&pkt, |pl| self.keeps(pl.stream, pl.key_frame)) {
                Filtered::Unchanged => Selected::Whole,
                Filtered::Rewritten(v) => Selected::Rewritten(v),
                Filtered::Dropped => Selected::Nothing,
            },
            Err(_) => Selected::Unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::rewrite::strip_padding;
    use crate::asf::AsfReader;
    use crate::station::Station;

    fn media(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media")
            .join(name)
    }

    /// A station fed with `file`'s header (generation g) and packets.
    fn station_of(file: &str) -> (Station, Vec<Arc<StationPacket>>) {
        let mut r = AsfReader::open(&media(file)).unwrap();
        let mut st = Station::new("t", 10_000);
        st.set_header(StationHeader::live(
            st.next_generation(),
            r.header(),
            r.data_head(),
            1,
        ));
        let mut v = Vec::new();
        while let Some(Ok(p)) = r.next_packet() {
            if let Some(sp) = st.push(strip_padding(&p.parse().unwrap())) {
                v.push(sp);
            }
        }
        (st, v)
    }

    fn header_of(file: &str, generation: u64) -> Arc<StationHeader> {
        let r = AsfReader::open(&media(file)).unwrap();
        Arc::new(StationHeader::live(
            generation,
            r.header(),
            r.data_head(),
            1,
        ))
    }

    const CFG: FeedConfig = FeedConfig {
        backlog_limit: 10_000,
        fast_start_rate: 4.0,
        stall_timeout: Duration::from_secs(10),
    };

    #[test]
    fn header_changes_table() {
        let a1 = header_of("demo.asf", 1);
        let a2 = header_of("demo.asf", 2);
        let b = header_of("demo-b.asf", 3);
        // (current, new, expected)
        let cases: [(&StationHeader, &StationHeader, &str); 4] = [
            (&a1, &a2, "same"),
            (&a1, &a1, "same"),
            (&a1, &b, "incompatible"),
            (&b, &a1, "incompatible"),
        ];
        for (cur, new, want) in cases {
            let got = match compare_headers(cur, new) {
                HeaderChange::Same => "same",
                HeaderChange::Compatible => "compatible",
                HeaderChange::Incompatible(_) => "incompatible",
            };
            assert_eq!(got, want);
        }
        // Other bytes (a changed title), same streams: compatible.
        let mut c = (*a1).clone();
        let mut bytes = c.bytes.to_vec();
        bytes.push(0);
        c.bytes = bytes.into();
        assert_eq!(compare_headers(&a1, &c), HeaderChange::Compatible);
        // Another packet size: incompatible.
        let mut d = c.clone();
        d.header.file.min_packet_size += 1;
        d.header.file.max_packet_size += 1;
        assert!(!compare_headers(&a1, &d).continues());
    }

    #[test]
    fn a_join_just_before_the_loop_keeps_its_backlog() {
        let (st, pkts) = station_of("demo.asf");
        let t0 = Instant::now();
        let header = st.header().unwrap().clone();
        let backlog: Vec<_> = st.join_backlog().cloned().collect();
        let n = backlog.len();
        assert!(n > 5, "a GOP of backlog: {n}");
        let mut d = Delivery::join(CFG, header, backlog, t0);
        let mut q = OutQueue::new();
        let mut due = Vec::new();
        d.release(&mut q, t0, &mut due);
        let first = due.len();
        assert!(first < n, "fast start holds some back");
        // The playlist loops (same bytes, next generation) before the backlog is out.
        let looped = header_of("demo.asf", header_of_gen(&d) + 1);
        let change = d.on_header(&looped, &mut due);
        assert_eq!(change, HeaderChange::Same);
        assert_eq!(due.len(), n, "the whole backlog is released, none dropped");
        // The next entry's packets flow from its first clean point on.
        let next_first = Arc::new(StationPacket::new(
            pkts.last().unwrap().seq + 1,
            looped.generation,
            pkts[0].send_time + 10_000,
            true,
            pkts[0].bytes.clone(),
        ));
        d.offer(&next_first, &mut q, t0, &mut due);
        assert_eq!(due.len(), n + 1);
    }

    fn header_of_gen(d: &Delivery) -> u64 {
        d.header().generation
    }

    #[test]
    fn join_keeps_only_the_packets_of_the_given_header() {
        let (st, _) = station_of("demo.asf");
        let t0 = Instant::now();
        let backlog: Vec<_> = st.join_backlog().cloned().collect();
        let other = header_of("demo.asf", 99);
        let d = Delivery::join(CFG, other, backlog, t0);
        assert_eq!(
            d.deadline(),
            None,
            "nothing to release: waits for a clean point"
        );
    }

    #[test]
    fn a_stalled_client_is_dropped_with_its_queue_discarded() {
        let (st, pkts) = station_of("demo.asf");
        let t0 = Instant::now();
        let mut d = Delivery::join(
            CFG,
            st.header().unwrap().clone(),
            st.join_backlog().cloned().collect(),
            t0,
        );
        let mut q = OutQueue::new();
        q.push_owned(vec![0; 20_000]);
        q.advance(10); // partly written
        let mut due = Vec::new();
        assert_eq!(d.offer(&pkts[1], &mut q, t0, &mut due), Verdict::Behind);
        assert_eq!(d.deadline(), Some(t0 + BEHIND_CHECK));
        let later = t0 + Duration::from_secs(11);
        match d.release(&mut q, later, &mut due) {
            Verdict::Drop(why) => assert!(why.contains("fell behind"), "{why}"),
            v => panic!("{v:?}"),
        }
        assert!(q.is_empty(), "the partly written chunk goes too");
        assert!(due.is_empty());
    }

    #[test]
    fn selection_table() {
        let h = header_of("demo.asf", 1);
        let video = h
            .header
            .streams
            .iter()
            .find(|s| s.kind == StreamKind::Video)
            .unwrap()
            .number;
        let audio = h
            .header
            .streams
            .iter()
            .find(|s| s.kind == StreamKind::Audio)
            .unwrap()
            .number;
        use Thinning::*;
        // (requests, removed, key_frames_only)
        type Case = (Vec<(u8, Thinning)>, Vec<u8>, Vec<u8>);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![]),
            (vec![(video, Off)], vec![video], vec![]),
            (vec![(video, KeyFrames)], vec![], vec![video]),
            // Audio is never thinned to key frames.
            (vec![(audio, KeyFrames)], vec![], vec![]),
            // Unknown streams are ignored.
            (vec![(9, Off)], vec![], vec![]),
            // Everything off: ignored.
            (vec![(video, Off), (audio, Off)], vec![], vec![]),
            // Later entries win.
            (vec![(video, Off), (video, All)], vec![], vec![]),
        ];
        for (req, removed, key) in cases {
            let s = StreamSelection::resolve(req.clone(), &h.header);
            assert_eq!((s.removed, s.key_frames_only), (removed, key), "{req:?}");
        }
        let (_, pkts) = station_of("demo.asf");
        let audio_off = StreamSelection::resolve([(audio, Off)], &h.header);
        let mut kinds = [0usize; 4];
        for p in &pkts {
            kinds[match audio_off.apply(&p.bytes) {
                Selected::Whole => 0,
                Selected::Rewritten(_) => 1,
                Selected::Nothing => 2,
                Selected::Unreadable => 3,
            }] += 1;
        }
        // Video-only packets go whole, mixed ones are rewritten (demo.asf has no audio-only one).
        assert!(kinds[0] > 0 && kinds[1] > 0, "{kinds:?}");
        assert_eq!(kinds[3], 0);
        assert_eq!(
            StreamSelection::default().apply(&[1, 2, 3]),
            Selected::Whole,
            "no selection: no parse"
        );
    }
}
