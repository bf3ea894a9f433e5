//! Refused connections, counted instead of logged one by one: a flood of connects past a limit
//! would otherwise write one WARN line per connection (and cost more than the refusal). Each
//! refusal is counted per source address and reason; the housekeeping tick writes one line per
//! address and reason per window: "refused 3412 connections from 127.0.0.1 in the last 10 s
//! (client limit)".

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::warn;

/// How long refusals are counted before they are logged.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Most source addresses tracked in one window; refusals from further addresses are counted
/// together, so a flood from many addresses cannot grow the table.
const MAX_SOURCES: usize = 1024;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// `limits.max_clients` reached.
    ClientLimit,
    /// `limits.max_clients_per_ip` reached for the source address.
    PerIpLimit,
    /// The process is out of file descriptors.
    NoDescriptors,
    /// The listener's IP rules (`access.watch`, `access.api`) deny the address.
    AccessRule,
    /// `limits.max_connection_rate` exceeded (new connections per second).
    ConnectionRate,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ClientLimit => "client limit",
            Reason::PerIpLimit => "per-IP limit",
            Reason::NoDescriptors => "out of file descriptors",
            Reason::AccessRule => "access rules",
            Reason::ConnectionRate => "connection rate limit",
        }
    }
}

/// Where refused connections came from: one address, or all those past `MAX_SOURCES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Addr(IpAddr),
    Others,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Addr(ip) => write!(f, "{ip}"),
            Source::Others => f.write_str("other addresses"),
        }
    }
}

/// One line to log: `count` connections from `source` refused for `reason` over `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub source: Source,
    pub reason: Reason,
    pub count: u64,
    pub window: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.count == 1 {
            "connection"
        } else {
            "connections"
        };
        write!(
            f,
            "refused {} {what} from {} in the last {} s ({})",
            self.count,
            self.source,
            self.window.as_secs().max(1),
            self.reason.as_str()
        )
    }
}

/// The refusals counted in the current window.
#[derive(Debug, Default)]
pub struct Refusals {
    since: Option<Instant>,
    counts: HashMap<(Source, Reason), u64>,
}

impl Refusals {
    /// Counts one refused connection from `ip`.
    pub fn note(&mut self, ip: IpAddr, reason: Reason, now: Instant) {
        self.since.get_or_insert(now);
        let mut source = Source::Addr(ip);
        if !self.counts.contains_key(&(source, reason)) && self.counts.len() >= MAX_SOURCES {
            source = Source::Others;
        }
        *self.counts.entry((source, reason)).or_insert(0) += 1;
    }

    /// The window's summaries once it is [`WINDOW`] old (or at once with `force`, at shutdown),
    /// sorted by source and reason; the counts start again.
    pub fn take_due(&mut self, now: Instant, force: bool) -> Vec<Summary> {
        let Some(since) = self.since else {
            return Vec::new();
        };
        let window = now.saturating_duration_since(since);
        if window < WINDOW && !force {
            return Vec::new();
        }
        self.since = None;
        let mut out: Vec<Summary> = self
            .counts
            .drain()
            .map(|((source, reason), count)| Summary {
                source,
                reason,
                count,
                window,
            })
            .collect();
        out.sort_by_key(|s| (s.source, s.reason));
        out
    }

    /// Logs the window's summaries when due (the housekeeping tick; `force` at shutdown).
    pub fn flush(&mut self, now: Instant, force: bool) {
        for s in self.take_due(now, force) {
            warn!(source = %s.source, reason = s.reason.as_str(), count = s.count, "{s}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn counts_per_source_and_reason_and_logs_once_per_window() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        for _ in 0..3412 {
            r.note(ip(1), Reason::ClientLimit, t0);
        }
        r.note(ip(1), Reason::PerIpLimit, t0);
        r.note(ip(2), Reason::PerIpLimit, t0 + Duration::from_secs(1));
        assert!(r.take_due(t0 + Duration::from_secs(9), false).is_empty());
        let lines: Vec<String> = r
            .take_due(t0 + WINDOW, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "refused 3412 connections from 127.0.0.1 in the last 10 s (client limit)",
                "refused 1 connection from 127.0.0.1 in the last 10 s (per-IP limit)",
                "refused 1 connection from 127.0.0.2 in the last 10 s (per-IP limit)",
            ]
        );
        // The next window starts with the next refusal.
        assert!(r.take_due(t0 + 3 * WINDOW, false).is_empty());
        r.note(ip(1), Reason::NoDescriptors, t0 + 3 * WINDOW);
        let s = r.take_due(t0 + 3 * WINDOW, true);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].count, 1);
    }

    #[test]
    fn many_sources_share_one_entry() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        for i in 0..(MAX_SOURCES as u32 + 500) {
            r.note(
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                Reason::ClientLimit,
                t0,
            );
        }
        let s = r.take_due(t0 + WINDOW, false);
        assert_eq!(s.len(), MAX_SOURCES + 1);
        let others = s.iter().find(|s| s.source == Source::Others);
        assert_eq!(others.map(|s| s.count), Some(500));
    }
}
