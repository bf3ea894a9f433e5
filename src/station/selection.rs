//! Which payloads of the station's packets one client receives, and how that changes while it
//! plays: stream selection, multiple-bit-rate renditions, mid-stream switches and the
//! server's thinning steps (Intelligent Streaming; ingest-relay-ops.md §c, asf.md §1.8, §2.2,
//! §3.5, mmsp.md §2.6). One implementation for MMS, MMSH and RTSP; [`super::delivery`] owns
//! one per client and applies it to every packet it releases.
//!
//! # What a client asks, and what it gets ([`Choice::resolve`])
//!
//! - Entries `(stream, level)`: level 0 everything, 1 key-frame objects only, 2 off (MMS 0x33,
//!   MMSH `stream-switch-entry`, RTSP by the streams it sets up). Later entries win; streams the
//!   header does not have are ignored (logged); thinning is for **video only** — audio payloads
//!   carry no key-frame bit in the files we play (asf.md §3.4), so thinning them would silence
//!   the client; a choice that turns every stream off is ignored (the client would stall).
//! - An MBR header ([`rendition_groups`]: Bitrate Mutual Exclusion groups): a client that turns
//!   some streams of a group on gets those (FFmpeg turns them all on and plays them all); one
//!   that names none of them gets the best rendition that fits the bandwidth it announced, and
//!   the highest when it announced none; the lowest when nothing fits.
//!
//! # Starting at a key frame, switching without a gap
//!
//! Payloads are kept or dropped **per media object** (a frame): the decision is taken on an
//! object's first fragment and its other fragments follow it, so a client never gets the tail
//! of a frame it did not get the start of. A video stream that starts (join, resume after a
//! skip, a new rendition, full frames after key-frames-only) starts at its next **key-frame**
//! object — the first frame every decoder sees is a key frame, on every video stream, not only
//! on the stream the station's clean points follow (an MBR join used to start renditions 2 and
//! 3 on a P frame: FFmpeg "first frame is no keyframe"). A rendition being replaced keeps
//! flowing until its replacement has started, then stops at its first object at or after the
//! replacement's start time (or at its own next key frame): no gap, no frame twice.
//!
//! # Server thinning ([`StreamSelection::step_down`], [`StreamSelection::step_up`])
//!
//! The ladder from the client's own choice down: each MBR rendition it receives steps to the
//! next lower one, then every video stream goes to key frames only, then video is turned off
//! (audio only). Audio is never thinned. The delivery rules decide when to step.
//!
//! Pure: bytes in, a verdict out; nothing reads a clock.

use tracing::debug;

use crate::asf::header::StreamKind;
use crate::asf::rewrite::{filter_payloads, Filtered};
use crate::asf::{AsfHeader, Packet};

/// How a client asks to receive one stream (MMS StreamSwitch, MMSH `stream-switch-entry`,
/// RTSP SSEntry).
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

/// The most entries a client's request is read for (a longer one is cut).
pub const MAX_ENTRIES: usize = 256;

/// The MBR rendition groups of a header: each Bitrate Mutual Exclusion group's streams that
/// exist, highest bit rate first; groups with fewer than two such streams are left out.
pub fn rendition_groups(h: &AsfHeader) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for m in h.mutual_exclusions.iter().take(16) {
        let mut g: Vec<u8> = Vec::new();
        for &n in m.streams.iter().take(128) {
            if let Ok(n) = u8::try_from(n) {
                if h.stream(n).is_some() && !g.contains(&n) && !out.iter().any(|o| o.contains(&n)) {
                    g.push(n);
                }
            }
        }
        if g.len() >= 2 {
            g.sort_by_key(|&n| std::cmp::Reverse(h.stream_bitrate(n).unwrap_or(0)));
            out.push(g);
        }
    }
    out
}

fn is_video(h: &AsfHeader, n: u8) -> bool {
    h.stream(n).is_some_and(|s| s.kind == StreamKind::Video)
}

/// What a client receives: the streams turned off and the video streams thinned to key frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// Streams turned off.
    pub removed: Vec<u8>,
    /// Video streams thinned to key frames.
    pub key_frames_only: Vec<u8>,
}

impl Choice {
    /// Resolves a client's entries (stream, level; later entries win) and the bandwidth it
    /// announced (bits/s) against `header`; see the module doc.
    pub fn resolve(
        requests: impl IntoIterator<Item = (u8, Thinning)>,
        bandwidth: Option<u64>,
        header: &AsfHeader,
    ) -> Choice {
        let mut levels: Vec<(u8, Thinning)> = Vec::new();
        for (n, level) in requests.into_iter().take(MAX_ENTRIES) {
            if header.stream(n).is_none() {
                debug!(
                    stream = n,
                    "stream selection: no such stream, entry ignored"
                );
                continue;
            }
            if level == Thinning::KeyFrames && !is_video(header, n) {
                debug!(
                    stream = n,
                    "stream selection: thinning asked for a non-video stream, ignored"
                );
            }
            levels.retain(|(m, _)| *m != n);
            levels.push((n, level));
        }
        let level_of = |n: u8| levels.iter().find(|(m, _)| *m == n).map(|(_, l)| *l);
        let mut c = Choice::default();
        for &(n, level) in &levels {
            match level {
                Thinning::All => {}
                Thinning::Off => c.removed.push(n),
                Thinning::KeyFrames => {
                    if is_video(header, n) {
                        c.key_frames_only.push(n);
                    }
                }
            }
        }
        for g in rendition_groups(header) {
            let on: Vec<u8> = g
                .iter()
                .copied()
                .filter(|&n| matches!(level_of(n), Some(Thinning::All | Thinning::KeyFrames)))
                .collect();
            let keep = if on.is_empty() {
                let candidates: Vec<u8> = g
                    .iter()
                    .copied()
                    .filter(|&n| level_of(n) != Some(Thinning::Off))
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                vec![pick_rendition(&candidates, bandwidth, &g, &c, header)]
            } else {
                on
            };
            for &n in &g {
                if !keep.contains(&n) && !c.removed.contains(&n) {
                    c.removed.push(n);
                }
            }
        }
        if !header.streams.is_empty()
            && header.streams.iter().all(|s| c.removed.contains(&s.number))
        {
            debug!("stream selection: every stream turned off, ignored");
            return if levels.is_empty() {
                Choice::default()
            } else {
                Choice::resolve(std::iter::empty(), bandwidth, header)
            };
        }
        c
    }

    /// True when every payload is sent as it is.
    pub fn is_all(&self) -> bool {
        self.removed.is_empty() && self.key_frames_only.is_empty()
    }

    /// Whether a payload of `stream` (with its key-frame bit) is sent under this choice.
    pub fn keeps(&self, stream: u8, key_frame: bool) -> bool {
        self.receives(stream) && (key_frame || !self.key_frames_only.contains(&stream))
    }

    /// Does the client receive `n` at all?
    pub fn receives(&self, n: u8) -> bool {
        !self.removed.contains(&n)
    }

    /// Does the client receive every object of `n`?
    fn full(&self, n: u8) -> bool {
        self.receives(n) && !self.key_frames_only.contains(&n)
    }

    /// The average bit rate of what this choice receives, from the header's stream rates
    /// (key-frames-only video counted at a quarter).
    pub fn bitrate(&self, h: &AsfHeader) -> u64 {
        h.streams
            .iter()
            .filter(|s| self.receives(s.number))
            .map(|s| {
                let b = u64::from(h.stream_bitrate(s.number).unwrap_or(0));
                if self.key_frames_only.contains(&s.number) {
                    b / 4
                } else {
                    b
                }
            })
            .sum()
    }
}

/// The best of `candidates` (highest first) that fits `bandwidth` with the streams outside the
/// group; the highest without a bandwidth, the lowest when none fits.
fn pick_rendition(
    candidates: &[u8],
    bandwidth: Option<u64>,
    group: &[u8],
    c: &Choice,
    h: &AsfHeader,
) -> u8 {
    let Some(bw) = bandwidth else {
        return candidates[0];
    };
    let others: u64 = h
        .streams
        .iter()
        .filter(|s| !group.contains(&s.number) && c.receives(s.number))
        .filter(|s| s.kind != StreamKind::Video || !is_in_any_group(h, s.number))
        .map(|s| u64::from(h.stream_bitrate(s.number).unwrap_or(0)))
        .sum();
    candidates
        .iter()
        .copied()
        .find(|&n| u64::from(h.stream_bitrate(n).unwrap_or(0)) + others <= bw)
        .unwrap_or(candidates[candidates.len() - 1])
}

fn is_in_any_group(h: &AsfHeader, n: u8) -> bool {
    rendition_groups(h).iter().any(|g| g.contains(&n))
}

/// The server's thinning ladder from `asked` down (see the module doc); `[0]` is `asked`.
fn ladder(asked: &Choice, h: &AsfHeader) -> Vec<Choice> {
    let groups = rendition_groups(h);
    let mut steps = vec![asked.clone()];
    let mut cur = asked.clone();
    loop {
        let mut next = cur.clone();
        let mut moved = false;
        for g in &groups {
            let received: Vec<u8> = g.iter().copied().filter(|&n| cur.receives(n)).collect();
            let [r] = received[..] else { continue };
            let Some(i) = g.iter().position(|&n| n == r) else {
                continue;
            };
            if let Some(&lower) = g.get(i + 1) {
                next.removed.retain(|&n| n != lower);
                next.removed.push(r);
                if next.key_frames_only.contains(&r) {
                    next.key_frames_only.retain(|&n| n != r);
                    next.key_frames_only.push(lower);
                }
                moved = true;
            }
        }
        if !moved {
            break;
        }
        steps.push(next.clone());
        cur = next;
    }
    let videos: Vec<u8> = h
        .video_streams()
        .into_iter()
        .filter(|&n| cur.receives(n))
        .collect();
    if videos.iter().any(|&n| cur.full(n)) {
        let mut next = cur.clone();
        for &n in &videos {
            if !next.key_frames_only.contains(&n) {
                next.key_frames_only.push(n);
            }
        }
        steps.push(next.clone());
        cur = next;
    }
    let audio = h
        .streams
        .iter()
        .any(|s| s.kind != StreamKind::Video && cur.receives(s.number));
    if audio && !videos.is_empty() {
        let mut next = cur.clone();
        next.key_frames_only.clear();
        next.removed.extend(videos);
        steps.push(next);
    }
    steps
}

/// A replaced stream still flowing until its replacement has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ending {
    old: u8,
    new: u8,
    /// Presentation time of the replacement's first object, once it started.
    new_start: Option<u32>,
    /// Presentation time of the last object of `old` sent before the switch: a replacement
    /// key frame at or before it would show that instant twice, so the replacement waits for
    /// its next one.
    old_last: Option<u32>,
}

/// What a selection did, for the client's log line and the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionStats {
    /// Packets sent rewritten (some payloads removed).
    pub rewritten: u64,
    /// Packets not sent: selection left them empty.
    pub dropped_empty: u64,
    /// Packets not sent: they do not parse.
    pub dropped_bad: u64,
    /// Client-driven switches applied.
    pub switches: u64,
    /// Server thinning steps down and up.
    pub steps_down: u64,
    pub steps_up: u64,
}

/// One client's stream selection with its state; see the module doc.
#[derive(Debug, Clone)]
pub struct StreamSelection {
    /// What the client receives now.
    pub current: Choice,
    /// What the client asked for (the top of the ladder).
    asked: Choice,
    ladder: Vec<Choice>,
    step: usize,
    /// Video streams of the header (gated to start at a key frame).
    video: Vec<u8>,
    /// Video streams that start at their next key-frame object.
    waiting: Vec<u8>,
    endings: Vec<Ending>,
    /// Per stream: the object being sent or dropped now (object number, kept).
    objects: Vec<Option<(u32, bool)>>,
    /// Per stream: the presentation time of the last object sent (when parsed).
    last_sent: Vec<Option<u32>>,
    /// Streams whose objects were all sent unparsed (the fast path): an object's tail with no
    /// recorded decision belongs to an object that was sent.
    sent_unparsed: u128,
    pub stats: SelectionStats,
}

impl StreamSelection {
    /// The selection for `choice` on `header`; every video stream received waits for its key
    /// frame.
    pub fn new(choice: Choice, header: &AsfHeader) -> StreamSelection {
        let mut s = StreamSelection {
            ladder: ladder(&choice, header),
            current: choice.clone(),
            asked: choice,
            step: 0,
            video: header.video_streams(),
            waiting: Vec::new(),
            endings: Vec::new(),
            objects: vec![None; 128],
            last_sent: vec![None; 128],
            sent_unparsed: 0,
            stats: SelectionStats::default(),
        };
        s.restart();
        s
    }

    /// [`Choice::resolve`] then [`StreamSelection::new`].
    pub fn resolve(
        requests: impl IntoIterator<Item = (u8, Thinning)>,
        bandwidth: Option<u64>,
        header: &AsfHeader,
    ) -> StreamSelection {
        StreamSelection::new(Choice::resolve(requests, bandwidth, header), header)
    }

    /// Everything as it comes, from the key frames on.
    pub fn all(header: &AsfHeader) -> StreamSelection {
        StreamSelection::resolve(std::iter::empty(), None, header)
    }

    /// The client's stream continues after a gap (join, resume after a skip, a new header):
    /// every video stream it receives starts again at its next key frame.
    pub fn restart(&mut self) {
        self.waiting = self
            .video
            .iter()
            .copied()
            .filter(|&n| self.current.receives(n))
            .collect();
        self.endings.clear();
        self.objects.iter_mut().for_each(|o| *o = None);
        self.last_sent.iter_mut().for_each(|t| *t = None);
        self.sent_unparsed = 0;
    }

    /// The server's thinning step (0 = as the client asked).
    pub fn step(&self) -> usize {
        self.step
    }

    /// The number of thinning steps below the client's choice.
    pub fn steps(&self) -> usize {
        self.ladder.len().saturating_sub(1)
    }

    /// What the client asked for.
    pub fn asked(&self) -> &Choice {
        &self.asked
    }

    /// A client's switch (mid-stream): its new choice replaces its old one; the server's
    /// thinning starts again from the top. Streams that start wait for their key frame; the
    /// ones they replace flow until then.
    pub fn switch_to(&mut self, choice: Choice, header: &AsfHeader) {
        self.stats.switches += 1;
        self.ladder = ladder(&choice, header);
        self.asked = choice.clone();
        self.step = 0;
        self.change_to(choice, header);
    }

    /// One thinning step down; false at the bottom.
    pub fn step_down(&mut self, header: &AsfHeader) -> bool {
        let Some(next) = self.ladder.get(self.step + 1).cloned() else {
            return false;
        };
        self.step += 1;
        self.stats.steps_down += 1;
        self.change_to(next, header);
        true
    }

    /// The nominal bit rate (bits/s) of thinning step `i` ([`Choice::bitrate`]).
    pub fn step_bitrate(&self, i: usize, header: &AsfHeader) -> Option<u64> {
        self.ladder.get(i).map(|c| c.bitrate(header))
    }

    /// Thinning straight down to step `target` (several rungs at once for a client far behind);
    /// false when that is not below the current step.
    pub fn step_down_to(&mut self, target: usize, header: &AsfHeader) -> bool {
        let target = target.min(self.ladder.len().saturating_sub(1));
        if target <= self.step {
            return false;
        }
        self.step = target;
        self.stats.steps_down += 1;
        let next = self.ladder[target].clone();
        self.change_to(next, header);
        true
    }

    /// One thinning step up; false at the top.
    pub fn step_up(&mut self, header: &AsfHeader) -> bool {
        if self.step == 0 {
            return false;
        }
        self.step -= 1;
        self.stats.steps_up += 1;
        let next = self.ladder[self.step].clone();
        self.change_to(next, header);
        true
    }

    fn flowing(&self, n: u8) -> bool {
        !self.waiting.contains(&n)
            && (self.objects[usize::from(n & 0x7F)].is_some_and(|(_, kept)| kept)
                || self.sent_unparsed & (1u128 << (n & 0x7F)) != 0)
    }

    fn change_to(&mut self, to: Choice, header: &AsfHeader) {
        let from = std::mem::replace(&mut self.current, to);
        let to = self.current.clone();
        // Streams no longer received stop waiting.
        self.waiting.retain(|&n| to.receives(n));
        // Video streams that now receive every object start at a key frame.
        for &n in &self.video {
            if to.full(n) && !from.full(n) && !self.waiting.contains(&n) {
                self.waiting.push(n);
            }
        }
        // A rendition replaced by another of its group flows until the new one has started.
        for g in rendition_groups(header) {
            let new = g
                .iter()
                .copied()
                .find(|&n| to.receives(n) && !from.receives(n));
            for &old in &g {
                if from.receives(old) && !to.receives(old) && self.flowing(old) {
                    if let Some(new) = new {
                        self.endings.retain(|e| e.old != old);
                        self.endings.push(Ending {
                            old,
                            new,
                            new_start: None,
                            old_last: self.last_sent[usize::from(old & 0x7F)],
                        });
                    }
                }
            }
        }
        // Endings whose replacement is itself gone now follow the group's new stream, or end.
        let endings = std::mem::take(&mut self.endings);
        for mut e in endings {
            if to.receives(e.old) {
                continue;
            }
            if !to.receives(e.new) {
                match rendition_groups(header)
                    .into_iter()
                    .find(|g| g.contains(&e.old))
                    .and_then(|g| g.into_iter().find(|&n| to.receives(n)))
                {
                    Some(n) => {
                        e.new = n;
                        e.new_start = None;
                    }
                    None => continue,
                }
            }
            self.endings.push(e);
        }
        self.endings.truncate(128);
    }

    /// Is every payload sent as it is, with no state to keep?
    fn settled(&self) -> bool {
        self.current.is_all() && self.waiting.is_empty() && self.endings.is_empty()
    }

    /// The decision for an object's first fragment of stream `n`.
    fn admit(&mut self, n: u8, key: bool, pts: Option<u32>) -> bool {
        if !self.current.receives(n) {
            let Some(i) = self.endings.iter().position(|e| e.old == n) else {
                return false;
            };
            let e = self.endings[i];
            let stop = match e.new_start {
                Some(t) => key || pts.map_or(true, |p| p >= t),
                None => key,
            };
            if stop {
                self.endings.remove(i);
                return false;
            }
            return true;
        }
        if self.waiting.contains(&n) {
            if !key {
                return false;
            }
            // The rendition it replaces already showed this instant: wait for the next key
            // frame (the old one flows until then).
            let shown = |e: &Ending| e.new == n && e.new_start.is_none() && e.old_last >= pts;
            if pts.is_some() && self.endings.iter().any(shown) {
                return false;
            }
            self.waiting.retain(|&m| m != n);
            for e in self.endings.iter_mut().filter(|e| e.new == n) {
                e.new_start = pts.or(Some(0));
            }
            return true;
        }
        if self.current.key_frames_only.contains(&n) {
            return key;
        }
        true
    }

    /// What of `packet` this client receives.
    pub fn apply(&mut self, packet: &[u8]) -> Selected {
        if self.settled() {
            if self.sent_unparsed != u128::MAX {
                self.objects.iter_mut().for_each(|o| *o = None);
                self.sent_unparsed = u128::MAX;
            }
            return Selected::Whole;
        }
        let Ok(pkt) = Packet::parse(packet) else {
            self.stats.dropped_bad += 1;
            return Selected::Unreadable;
        };
        let mut keep = Vec::with_capacity(pkt.payloads.len());
        for pl in &pkt.payloads {
            let n = pl.stream & 0x7F;
            let slot = usize::from(n);
            let start = pl.compressed || pl.offset == 0;
            let kept = if start {
                let pts = pl.presentation_time(packet);
                let k = self.admit(n, pl.key_frame, pts);
                self.objects[slot] = Some((pl.object_number, k));
                if k {
                    self.last_sent[slot] = pts;
                }
                self.sent_unparsed &= !(1u128 << n);
                k
            } else {
                match self.objects[slot] {
                    Some((obj, k)) if obj == pl.object_number => k,
                    Some(_) => false,
                    None => {
                        self.sent_unparsed & (1u128 << n) != 0
                            && (self.current.receives(n) || self.endings.iter().any(|e| e.old == n))
                    }
                }
            };
            keep.push(kept);
        }
        let mut i = 0;
        match filter_payloads(&pkt, |_| {
            let k = keep.get(i).copied().unwrap_or(false);
            i += 1;
            k
        }) {
            Filtered::Unchanged => Selected::Whole,
            Filtered::Rewritten(v) => {
                self.stats.rewritten += 1;
                Selected::Rewritten(v)
            }
            Filtered::Dropped => {
                self.stats.dropped_empty += 1;
                Selected::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::rewrite::strip_padding;
    use crate::asf::AsfReader;

    fn media(name: &str) -> (AsfHeader, Vec<Vec<u8>>) {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media")
            .join(name);
        let mut r = AsfReader::open(&path).unwrap();
        let h = r.header().clone();
        let mut v = Vec::new();
        while let Some(Ok(p)) = r.next_packet() {
            v.push(strip_padding(&p.parse().unwrap()));
        }
        (h, v)
    }

    fn choice(removed: &[u8], key: &[u8]) -> Choice {
        Choice {
            removed: removed.to_vec(),
            key_frames_only: key.to_vec(),
        }
    }

    /// One kept payload: (stream, object, offset, key, presentation time).
    type Kept = (u8, u32, u32, bool, u32);

    /// Runs `packets` through `sel`, calling `at(i, sel)` before packet i; the kept payloads.
    fn run(
        sel: &mut StreamSelection,
        packets: &[Vec<u8>],
        mut at: impl FnMut(usize, &mut StreamSelection),
    ) -> Vec<Kept> {
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            at(i, sel);
            let bytes = match sel.apply(p) {
                Selected::Whole => p.clone(),
                Selected::Rewritten(v) => v,
                Selected::Nothing => continue,
                Selected::Unreadable => panic!("packet {i} unreadable"),
            };
            let pkt = Packet::parse(&bytes).unwrap();
            for pl in &pkt.payloads {
                out.push((
                    pl.stream,
                    pl.object_number,
                    pl.offset,
                    pl.key_frame,
                    pl.presentation_time(&bytes).unwrap_or(0),
                ));
            }
        }
        out
    }

    /// The presentation times of stream `n`'s kept objects, in order.
    fn object_times(kept: &[Kept], n: u8) -> Vec<u32> {
        let mut t: Vec<u32> = kept
            .iter()
            .filter(|k| k.0 == n && k.2 == 0)
            .map(|k| k.4)
            .collect();
        t.dedup();
        t
    }

    /// Every stream's first kept payload of each object is its start (offset 0), and every
    /// video stream's first kept object is a key frame.
    fn assert_whole_objects_from_a_key_frame(kept: &[Kept], h: &AsfHeader) {
        let mut current: Vec<Option<u32>> = vec![None; 128];
        let mut started = [false; 128];
        for &(n, obj, off, key, _) in kept {
            let i = usize::from(n);
            if current[i] != Some(obj) {
                assert_eq!(off, 0, "stream {n} object {obj} starts mid-object");
                current[i] = Some(obj);
                if !started[i] && is_video(h, n) {
                    assert!(key, "stream {n} starts on a non-key object {obj}");
                }
                started[i] = true;
            }
        }
    }

    #[test]
    fn mbr_choice_table() {
        let (h, _) = media("demo-mbr.asf");
        assert_eq!(rendition_groups(&h), [vec![1, 2, 3]]);
        use Thinning::*;
        // (entries, bandwidth, removed)
        type Case = (Vec<(u8, Thinning)>, Option<u64>, Vec<u8>);
        let cases: Vec<Case> = vec![
            // Nothing named: the highest, or the best that fits.
            (vec![], None, vec![2, 3]),
            (vec![], Some(2_000_000), vec![2, 3]),
            (vec![], Some(500_000), vec![1, 3]),
            (vec![], Some(250_000), vec![1, 2]),
            // Nothing fits: the lowest.
            (vec![], Some(10_000), vec![1, 2]),
            // VLC/libmms: one on, the others off.
            (
                vec![(1, Off), (2, All), (3, Off), (4, All)],
                None,
                vec![1, 3],
            ),
            // FFmpeg: every stream on.
            (
                vec![(1, All), (2, All), (3, All), (4, All)],
                Some(100_000),
                vec![],
            ),
            // Only audio named: the video group is chosen by bandwidth.
            (vec![(4, All)], Some(250_000), vec![1, 2]),
            // Contradictory entries: the later wins.
            (vec![(3, All), (3, Off), (2, All)], None, vec![1, 3]),
            // Unknown streams are ignored.
            (vec![(9, All), (200, Off)], None, vec![2, 3]),
            // The whole group off: audio only, as asked.
            (vec![(1, Off), (2, Off), (3, Off)], None, vec![1, 2, 3]),
            // Everything off: ignored.
            (
                vec![(1, Off), (2, Off), (3, Off), (4, Off)],
                None,
                vec![2, 3],
            ),
        ];
        for (req, bw, removed) in cases {
            let mut c = Choice::resolve(req.clone(), bw, &h);
            c.removed.sort_unstable();
            assert_eq!(c.removed, removed, "{req:?} {bw:?}");
        }
        // Thinning asked on audio: ignored.
        let c = Choice::resolve([(4, KeyFrames)], None, &h);
        assert!(c.key_frames_only.is_empty());
    }

    #[test]
    fn single_rate_selection_table() {
        let (h, _) = media("demo.asf");
        use Thinning::*;
        type Case = (Vec<(u8, Thinning)>, Vec<u8>, Vec<u8>);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![]),
            (vec![(1, Off)], vec![1], vec![]),
            (vec![(1, KeyFrames)], vec![], vec![1]),
            (vec![(2, KeyFrames)], vec![], vec![]),
            (vec![(9, Off)], vec![], vec![]),
            (vec![(1, Off), (2, Off)], vec![], vec![]),
            (vec![(1, Off), (1, All)], vec![], vec![]),
        ];
        for (req, removed, key) in cases {
            let c = Choice::resolve(req.clone(), None, &h);
            assert_eq!((c.removed, c.key_frames_only), (removed, key), "{req:?}");
        }
    }

    #[test]
    fn ladders_step_down_renditions_then_key_frames_then_audio() {
        let (h, _) = media("demo-mbr.asf");
        let l = ladder(&choice(&[2, 3], &[]), &h);
        let shape: Vec<(Vec<u8>, Vec<u8>)> = l
            .iter()
            .map(|c| {
                let mut r = c.removed.clone();
                r.sort_unstable();
                (r, c.key_frames_only.clone())
            })
            .collect();
        assert_eq!(
            shape,
            [
                (vec![2, 3], vec![]),
                (vec![1, 3], vec![]),
                (vec![1, 2], vec![]),
                (vec![1, 2], vec![3]),
                (vec![1, 2, 3], vec![]),
            ]
        );
        let (h1, _) = media("demo.asf");
        let l = ladder(&Choice::default(), &h1);
        assert_eq!(
            l,
            [choice(&[], &[]), choice(&[], &[1]), choice(&[1], &[])],
            "single rate: key frames only, then audio only"
        );
    }

    #[test]
    fn every_video_stream_starts_at_its_own_key_frame_from_any_join_point() {
        let (h, packets) = media("demo-mbr.asf");
        for c in [choice(&[], &[]), choice(&[1, 3], &[]), choice(&[1, 2], &[])] {
            for start in (0..packets.len()).step_by(7) {
                let mut sel = StreamSelection::new(c.clone(), &h);
                let kept = run(&mut sel, &packets[start..], |_, _| {});
                assert_whole_objects_from_a_key_frame(&kept, &h);
                if packets.len() - start > 30 {
                    assert!(kept.iter().any(|k| k.0 == 4), "audio flows");
                }
            }
        }
    }

    #[test]
    fn a_switch_starts_the_new_rendition_at_its_key_frame_without_gap_or_double() {
        let (h, packets) = media("demo-mbr.asf");
        let mut sel = StreamSelection::new(choice(&[2, 3], &[]), &h);
        let kept = run(&mut sel, &packets, |i, s| {
            if i == 60 {
                s.switch_to(choice(&[1, 2], &[]), &h);
            }
        });
        assert_whole_objects_from_a_key_frame(&kept, &h);
        let (old, new) = (object_times(&kept, 1), object_times(&kept, 3));
        let last_old = *old.last().unwrap();
        let first_new = new[0];
        assert!(
            last_old < first_new,
            "no frame twice: {last_old} {first_new}"
        );
        // 25 fps: the next frame time after the old rendition's last is the new one's first.
        assert!(
            first_new - last_old <= 40,
            "no gap: {last_old} → {first_new}"
        );
        assert!(object_times(&kept, 2).is_empty());
        assert_eq!(sel.stats.switches, 1);
        assert_eq!(sel.current, choice(&[1, 2], &[]));
    }

    #[test]
    fn a_switch_at_any_packet_never_shows_an_instant_twice() {
        // Renditions have their key frames at the same instants; a switch that lands after
        // the old rendition's key frame went out but before the new one's (same time) must
        // not start the new rendition there (the MMS end-to-end test caught 8.092 sent twice).
        let (h, packets) = media("demo-mbr.asf");
        let mut doubled_before = 0;
        for at in 30..200 {
            let mut sel = StreamSelection::new(choice(&[2, 3], &[]), &h);
            let kept = run(&mut sel, &packets, |i, s| {
                if i == at {
                    s.switch_to(choice(&[1, 2], &[]), &h);
                }
            });
            assert_whole_objects_from_a_key_frame(&kept, &h);
            let (old, new) = (object_times(&kept, 1), object_times(&kept, 3));
            let (last_old, first_new) = (*old.last().unwrap(), new[0]);
            if last_old >= first_new {
                doubled_before += 1;
            }
            assert!(
                last_old < first_new,
                "switch before packet {at}: {last_old} shown by both renditions ({first_new})"
            );
            assert!(
                first_new - last_old <= 40,
                "switch before packet {at}: gap {last_old} → {first_new}"
            );
        }
        assert_eq!(doubled_before, 0);
    }

    #[test]
    fn thinning_steps_and_storms_keep_objects_whole() {
        let (h, packets) = media("demo-mbr.asf");
        let mut sel = StreamSelection::new(choice(&[2, 3], &[]), &h);
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let kept = run(&mut sel, &packets, |_, s| {
            // Several switches and steps per packet: hundreds over the clip.
            for _ in 0..3 {
                match rnd() % 5 {
                    0 => {
                        let _ = s.step_down(&h);
                    }
                    1 => {
                        let _ = s.step_up(&h);
                    }
                    _ => {
                        let entries: Vec<(u8, Thinning)> = (0..(rnd() % 6))
                            .map(|_| ((rnd() % 7) as u8, Thinning::from_level((rnd() % 4) as u16)))
                            .collect();
                        s.switch_to(Choice::resolve(entries, None, &h), &h);
                    }
                }
            }
        });
        assert_whole_objects_from_a_key_frame(&kept, &h);
        assert!(sel.stats.switches > 300, "{:?}", sel.stats);
        assert!(kept.iter().any(|k| k.0 == 4), "audio never thinned away");
    }

    #[test]
    fn garbage_is_unreadable_not_a_panic() {
        let (h, _) = media("demo-mbr.asf");
        let mut sel = StreamSelection::new(choice(&[2, 3], &[]), &h);
        assert_eq!(sel.apply(&[1, 2, 3]), Selected::Unreadable);
        assert_eq!(sel.stats.dropped_bad, 1);
        let mut all =
            StreamSelection::new(Choice::default(), &AsfHeader::parse(&h.to_bytes()).unwrap());
        all.waiting.clear();
        assert_eq!(all.apply(&[1, 2, 3]), Selected::Whole, "settled: no parse");
    }
}
