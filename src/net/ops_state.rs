//! The shell's side of the operators' views ([`crate::ops`]): what only the loop can measure
//! or see happen — joins and closes (cumulative totals), its own turn time and timer
//! lateness, the history samples, and the process figures read from `/proc/self` — kept here
//! and copied into the snapshot the sessions read.

use std::sync::Arc;
use std::time::Instant;

use crate::ops::histogram::{Histogram, LOOP_BOUNDS};
use crate::ops::history::History;
use crate::ops::process::{self, ProcessFigures};
use crate::ops::totals::Totals;
use crate::ops::{OpsFigures, Snapshot};
use crate::station::sink::ClientInfo;

use super::station_runtime::StationRuntime;

pub struct OpsState {
    totals: Totals,
    history: Arc<History>,
    loop_turn: Histogram,
    timer_lateness: Histogram,
    /// When the loop last came back from waiting.
    woke: Instant,
}

impl OpsState {
    pub fn new(now: Instant) -> Self {
        OpsState {
            totals: Totals::default(),
            history: Arc::default(),
            loop_turn: Histogram::new(LOOP_BOUNDS),
            timer_lateness: Histogram::new(LOOP_BOUNDS),
            woke: now,
        }
    }

    /// A session started playing `station`.
    pub fn joined(&mut self, station: &str, protocol: &'static str) {
        self.totals.joined(station, protocol);
    }

    /// A connection closed; `close_reason` as the connection recorded it (None: dropped).
    pub fn closed(&mut self, info: &ClientInfo, close_reason: Option<&str>) {
        let by_peer = close_reason.is_some_and(crate::station::sink::ended_by_peer);
        self.totals.ended(info, by_peer);
    }

    /// The loop is about to wait: its turn since it woke is over.
    pub fn before_wait(&mut self, now: Instant) {
        self.loop_turn
            .observe(now.saturating_duration_since(self.woke));
    }

    /// The loop woke at `now` having armed its timer for `armed`; a wake at or after the
    /// deadline counts toward the timer lateness.
    pub fn woke(&mut self, now: Instant, armed: Instant) {
        self.woke = now;
        if now >= armed {
            self.timer_lateness.observe(now - armed);
        }
    }

    /// The figures for a snapshot of `stations`.
    pub fn figures<'a>(
        &self,
        stations: impl Iterator<Item = &'a StationRuntime>,
        web: crate::ops::web::WebConfig,
    ) -> OpsFigures {
        OpsFigures {
            totals: self.totals.clone(),
            history: self.history.clone(),
            stations: stations
                .map(|rt| (rt.config.name.clone(), rt.figures()))
                .collect(),
            loop_turn: self.loop_turn.clone(),
            timer_lateness: self.timer_lateness.clone(),
            process: if web.metrics { read_process() } else { None },
            web,
            config: crate::ops::ConfigState::default(),
        }
    }

    /// Samples the history from a fresh snapshot when a sample is due (and hands the
    /// snapshot the updated ring).
    pub fn sample(&mut self, snap: &mut Snapshot) {
        if self.history.due(snap.uptime) {
            // Drop the snapshot's reference first so the ring is updated in place.
            snap.ops.history = Arc::default();
            Arc::make_mut(&mut self.history).sample(snap);
            snap.ops.history = self.history.clone();
        }
    }
}

/// Reads `/proc/self`; None (and a debug line) when it cannot.
fn read_process() -> Option<ProcessFigures> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    let cpu = read("/proc/self/stat").map(|s| process::cpu_seconds(&s, ticks));
    let rss = read("/proc/self/status").map(|s| process::rss_bytes(&s));
    match (cpu, rss) {
        (Some(Ok(cpu_seconds)), Some(Ok(rss_bytes))) => Some(ProcessFigures {
            rss_bytes,
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
            max_fds: max_fds(),
            cpu_seconds,
        }),
        (cpu, rss) => {
            tracing::debug!(?cpu, ?rss, "cannot read /proc/self");
            None
        }
    }
}

fn max_fds() -> u64 {
    // SAFETY: getrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        r.rlim_cur
    }
}
