//! The per-client delivery rules, in one place for every unicast protocol (MMS, MMSH, RTSP):
//! where a client joins, how fast it catches up, what happens when it falls behind or the
//! station's header changes, and which payloads of each packet it receives. A protocol frames
//! the packets [`Delivery`] hands it and signals header changes its own way; it decides none
//! of the rules below.
//!
//! # The rules
//!
//! - **Join.** A client starts at the station's join point (the newest clean point at least
//!   `limits.fast_start_buffer` back) with the packets since
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
//! - **Stream selection** ([`StreamSelection`], `super::selection`): every packet released
//!   goes through the client's selection (streams off, key frames only, MBR renditions,
//!   mid-stream switches; a packet left empty is not sent); every video stream starts at its
//!   own key frame at the join, after a skip and after a header change.
//! - **Thinning before skipping** (Intelligent Streaming): a client whose queue holds more than
//!   [`THIN_AFTER`] of what it reads (the bytes that left its queue per second, measured over
//!   [`RATE_WINDOW`] and smoothed: the wait a new byte has before the client reads it; at least
//!   [`THIN_MIN_BYTES`], at most half the backlog limit) for [`THIN_HOLD`] steps down its selection's ladder — a lower rendition, then key frames only, then
//!   audio only — straight to the first rung whose nominal rate fits what it reads, and one
//!   rung further after [`THIN_SETTLE`] while the queue still grows; after its queue has
//!   stayed under an eighth of that for the recovery time (from [`RECOVER_MIN`], doubled each
//!   time a step up had to be taken back soon after, up to [`RECOVER_MAX`]) it steps back up.
//!   Skipping to the next clean point and, after the stall timeout, dropping the client stay
//!   the last resort above the backlog limit. Each step is logged and counted.
//!
//! Pure: the session passes `now` and its queue; the rules return packets, verdicts and
//! deadlines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::feed::{FeedConfig, FeedState, LiveFeed};
pub use super::selection::{Choice, Selected, SelectionStats, StreamSelection, Thinning};
use super::sink::OutQueue;
use super::{StationHeader, StationPacket};
use crate::asf::AsfHeader;

/// How much of what a client receives (in time) may wait in its queue before the server thins.
pub const THIN_AFTER: Duration = Duration::from_secs(2);
/// The smallest queue that counts as "behind" for thinning.
pub const THIN_MIN_BYTES: usize = 24 * 1024;
/// Least time between two thinning steps down (a new rendition starts at its next key frame).
pub const THIN_SETTLE: Duration = Duration::from_secs(4);
/// How long a thinned client's queue must stay drained before it steps back up, at first.
pub const RECOVER_MIN: Duration = Duration::from_secs(10);
/// How long the queue must stay above the threshold before a step down (a burst of the
/// source, a playlist's loop, drains quickly at a healthy client).
pub const THIN_HOLD: Duration = Duration::from_millis(1000);
/// How long the rate of what a client is sent is measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// The longest recovery wait (after repeated failed climbs).
pub const RECOVER_MAX: Duration = Duration::from_secs(80);

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
    selection: StreamSelection,
    adapt: Adapt,
    /// The feed was skipping at the last step (a resume restarts the selection's key frames).
    was_skipping: bool,
    /// Who the client is, for the thinning log lines.
    label: String,
}

/// The thinning policy's memory (see the module doc).
#[derive(Debug, Clone)]
struct Adapt {
    /// Bytes framed into the queue since `window` (when the queue held `window_queued`), and
    /// the rate (bytes/s) at which the client read its queue, smoothed.
    window: Option<Instant>,
    window_queued: usize,
    window_bytes: u64,
    measured: bool,
    rate: f64,
    /// Since when the queue has been above the thinning threshold.
    over_since: Option<Instant>,
    last_down: Option<(Instant, usize)>,
    last_up: Option<Instant>,
    calm_since: Option<Instant>,
    recover: Duration,
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
            selection: StreamSelection::all(&header.header),
            header,
            config,
            behind_check: None,
            due: Vec::new(),
            adapt: Adapt {
                window: None,
                window_queued: 0,
                window_bytes: 0,
                measured: false,
                rate: 0.0,
                over_since: None,
                last_down: None,
                last_up: None,
                calm_since: None,
                recover: RECOVER_MIN,
            },
            was_skipping: false,
            label: String::new(),
        }
    }

    /// Names the client in the thinning log lines (peer, protocol).
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    /// Sets the client's selection at its start (before anything was framed).
    pub fn select(&mut self, mut selection: StreamSelection) {
        selection.stats = std::mem::take(&mut self.selection.stats);
        self.selection = selection;
    }

    /// A client's mid-stream switch: new streams start at their key frame, the ones they
    /// replace flow until then.
    pub fn switch(&mut self, choice: Choice) {
        info!(client = %self.label, from = ?self.selection.current, to = ?choice, "stream switch");
        self.selection.switch_to(choice, &self.header.header);
    }

    /// The client's selection (what it receives now, its counters).
    pub fn selection(&self) -> &StreamSelection {
        &self.selection
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
        self.frame_all(&mut due, framer, now);
        self.due = due;
        verdict
    }

    /// The deadline passed: the fast-start packets now due go to `framer`.
    pub fn release_to(&mut self, framer: &mut impl Framer, now: Instant) -> Verdict {
        let mut due = std::mem::take(&mut self.due);
        let verdict = self.release(framer.queue(), now, &mut due);
        self.frame_all(&mut due, framer, now);
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
        self.frame_all(&mut due, framer, now);
        self.due = due;
        if change.continues() {
            // The new header's streams start again at their key frames.
            self.selection.restart();
        }
        change
    }

    /// Re-resolves the client's selection against a new header it continues on.
    pub fn reselect(&mut self, selection: StreamSelection) {
        self.select(selection);
    }

    fn frame_all(
        &mut self,
        due: &mut Vec<Arc<StationPacket>>,
        framer: &mut impl Framer,
        now: Instant,
    ) {
        let before = framer.queue().queued_bytes();
        self.frame_each(due, framer, now);
        let after = framer.queue().queued_bytes();
        let framed = after.saturating_sub(before);
        let a = &mut self.adapt;
        if a.window.is_none() {
            a.window = Some(now);
            a.window_queued = before;
        }
        let start = a.window.unwrap_or(now);
        a.window_bytes += framed as u64;
        let span = now.saturating_duration_since(start);
        if span >= RATE_WINDOW {
            // What left the queue (the client read it) in the window, per second, smoothed over
            // several windows: a playlist's loop comes in bursts.
            let drained = (a.window_bytes + a.window_queued as u64).saturating_sub(after as u64);
            let r = drained as f64 / span.as_secs_f64();
            a.rate = if a.measured {
                a.rate * 0.5 + r * 0.5
            } else {
                r
            };
            a.measured = true;
            a.window = Some(now);
            a.window_queued = after;
            a.window_bytes = 0;
        }
    }

    fn frame_each(
        &mut self,
        due: &mut Vec<Arc<StationPacket>>,
        framer: &mut impl Framer,
        now: Instant,
    ) {
        for p in due.drain(..) {
            match self.selection.apply(&p.bytes) {
                Selected::Whole => framer.frame(&p, now),
                Selected::Rewritten(v) => {
                    let q = Arc::new(StationPacket::new(
                        p.seq,
                        p.generation,
                        p.send_time,
                        p.clean,
                        v.into(),
                    ));
                    framer.frame(&q, now);
                }
                Selected::Nothing | Selected::Unreadable => {}
            }
        }
    }

    /// Server thinning (see the module doc): one step down or up when the queue says so.
    fn adapt(&mut self, queued: usize, now: Instant) {
        let h: &AsfHeader = &self.header.header;
        // Nothing is judged before one window of what the client reads was measured (its
        // start is the fast-start burst).
        if !self.adapt.measured {
            return;
        }
        let rate = self.adapt.rate;
        let limit = (rate * THIN_AFTER.as_secs_f64()) as usize;
        let down_at = limit
            .max(THIN_MIN_BYTES)
            .min((self.config.backlog_limit / 2).max(1));
        let a = &mut self.adapt;
        if queued > down_at {
            a.calm_since = None;
            let over = *a.over_since.get_or_insert(now);
            let may = now.saturating_duration_since(over) >= THIN_HOLD
                && match a.last_down {
                    None => true,
                    Some((t, q)) => now.saturating_duration_since(t) >= THIN_SETTLE && queued > q,
                };
            // Straight to the first step whose nominal rate fits what the client reads (framing
            // overhead is not counted: MMS pads, so a further step may follow after the
            // settling time).
            let step = self.selection.step();
            let k = 1.0;
            let budget = 0.8 * a.rate;
            let mut target = step + 1;
            while target < self.selection.steps()
                && self
                    .selection
                    .step_bitrate(target, h)
                    .is_some_and(|b| b as f64 / 8.0 * k > budget)
            {
                target += 1;
            }
            if may && self.selection.step_down_to(target, h) {
                if a.last_up
                    .is_some_and(|t| now.saturating_duration_since(t) < a.recover * 2)
                {
                    a.recover = (a.recover * 2).min(RECOVER_MAX);
                }
                a.last_down = Some((now, queued));
                info!(
                    client = %self.label,
                    step = self.selection.step(),
                    of = self.selection.steps(),
                    queued,
                    rate = self.adapt.rate as u64,
                    receives = ?self.selection.current,
                    "thinning: step down"
                );
            }
        } else if queued <= down_at / 8 {
            a.over_since = None;
            let since = *a.calm_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= a.recover && self.selection.step_up(h) {
                a.calm_since = Some(now);
                a.last_up = Some(now);
                a.last_down = None;
                info!(
                    client = %self.label,
                    step = self.selection.step(),
                    of = self.selection.steps(),
                    receives = ?self.selection.current,
                    "thinning: step up"
                );
            }
        } else {
            a.over_since = None;
            a.calm_since = None;
        }
    }

    /// The header the client plays.
    pub fn header(&self) -> &Arc<StationHeader> {
        &self.header
    }

    /// Thinning steps (down and up) taken for this client.
    pub fn thin_steps(&self) -> u64 {
        self.selection.stats.steps_down + self.selection.stats.steps_up
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
        self.adapt(queue.queued_bytes(), now);
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
        self.adapt(queue.queued_bytes(), now);
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
        let was_skipping = std::mem::replace(&mut self.was_skipping, state != FeedState::Flowing);
        match state {
            FeedState::Flowing => {
                if was_skipping {
                    // Resumed at a clean point: every video stream starts at its key frame.
                    self.selection.restart();
                }
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
}
