//! Which connection a datagram on the server's UDP data sockets belongs to. Clients send to
//! the shared MMSU/RTP/RTCP sockets (RTCP receiver reports, RFC 3550 §6.4.2; NAT punch
//! packets), and the only thing that names the session is the source address: the client
//! port a session set up. Sessions say which addresses are theirs
//! ([`crate::station::sink::Session::udp_peers`]); the loop keeps this map in step after every
//! event and on close. Datagrams from any other address are dropped and counted, and the
//! housekeeping tick logs them as one line per [`WINDOW`], never one line per datagram.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::station::sink::UdpChannel;

/// How long datagrams from unknown addresses are counted before they are logged.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Client address → connection index, plus the count of datagrams nobody owns.
#[derive(Debug, Default)]
pub struct UdpRoutes {
    by_peer: HashMap<SocketAddr, usize>,
    /// Dropped in the current window, and the last source seen.
    unknown: u64,
    last_unknown: Option<(SocketAddr, UdpChannel)>,
    window_start: Option<Instant>,
    /// Dropped since the start.
    pub unknown_total: u64,
}

impl UdpRoutes {
    /// Connection `idx` now expects datagrams from `new` instead of `old`. An address another
    /// connection had is taken over (the newest SETUP wins: the older one is stale).
    pub fn update(&mut self, idx: usize, old: &[SocketAddr], new: &[SocketAddr]) {
        for a in old.iter().filter(|a| !new.contains(a)) {
            if self.by_peer.get(a) == Some(&idx) {
                self.by_peer.remove(a);
            }
        }
        for a in new {
            if let Some(prev) = self.by_peer.insert(*a, idx) {
                if prev != idx {
                    debug!(peer = %a, "udp peer address moved to a newer session");
                }
            }
        }
    }

    /// The connection a datagram from `from` belongs to.
    pub fn route(&self, from: SocketAddr) -> Option<usize> {
        self.by_peer.get(&from).copied()
    }

    /// Counts a datagram from an address no session owns (dropped).
    pub fn note_unknown(&mut self, from: SocketAddr, via: UdpChannel, now: Instant) {
        self.unknown += 1;
        self.unknown_total += 1;
        self.last_unknown = Some((from, via));
        self.window_start.get_or_insert(now);
    }

    /// Logs the window's count once it is [`WINDOW`] old (or at once with `force`).
    pub fn flush(&mut self, now: Instant, force: bool) {
        let Some(start) = self.window_start else {
            return;
        };
        if !force && now < start + WINDOW {
            return;
        }
        if let Some((from, via)) = self.last_unknown.take() {
            info!(
                dropped = self.unknown,
                last_from = %from,
                last_socket = ?via,
                window = ?now.saturating_duration_since(start),
                "udp datagrams from addresses of no session dropped"
            );
        }
        self.unknown = 0;
        self.window_start = None;
    }

    /// Addresses routed (tests, diagnostics).
    pub fn len(&self) -> usize {
        self.by_peer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn routes_follow_sessions_and_a_closed_session_leaves_none() {
        let mut r = UdpRoutes::default();
        r.update(1, &[], &[a(5000), a(5001)]);
        r.update(2, &[], &[a(6000), a(6001)]);
        assert_eq!(r.route(a(5001)), Some(1));
        assert_eq!(r.route(a(6000)), Some(2));
        assert_eq!(r.route(a(7000)), None);
        // Session 1 sets up another pair: the old one is released.
        r.update(1, &[a(5000), a(5001)], &[a(5002), a(5003)]);
        assert_eq!(r.route(a(5000)), None);
        assert_eq!(r.route(a(5003)), Some(1));
        // Session 2 takes an address of session 1; when 1 closes, 2 keeps it.
        r.update(2, &[a(6000), a(6001)], &[a(5003)]);
        r.update(1, &[a(5002), a(5003)], &[]);
        assert_eq!(r.route(a(5003)), Some(2));
        assert_eq!(r.len(), 1);
        r.update(2, &[a(5003)], &[]);
        assert!(r.is_empty());
    }

    #[test]
    fn unknown_datagrams_are_counted_per_window() {
        let mut r = UdpRoutes::default();
        let t = Instant::now();
        r.note_unknown(a(9), UdpChannel::Rtcp, t);
        r.note_unknown(a(9), UdpChannel::Rtcp, t);
        r.flush(t + Duration::from_secs(1), false);
        assert_eq!(r.unknown, 2, "not logged before the window ends");
        r.flush(t + WINDOW, false);
        assert_eq!((r.unknown, r.unknown_total), (0, 2));
        assert!(r.window_start.is_none());
    }
}
