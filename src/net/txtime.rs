//! Kernel pacing for a station's multicast socket (`SO_TXTIME`), the shell part: ask the
//! kernel for the qdisc tree over rtnetlink, set the socket option, and turn a departure
//! `Instant` into CLOCK_MONOTONIC nanoseconds. The pure decisions and the cmsg bytes are in
//! [`crate::msb::txtime`], whose doc says why the qdisc must be read (a `sendmsg` with
//! `SCM_TXTIME` succeeds on every qdisc, and all but `fq`/`etf` ignore the stamp).
//!
//! `ASFCAST_TXTIME` overrides the probe: `off` always takes the timer path, `force` takes the
//! txtime path whatever the qdisc (for tests and diagnosis: on a qdisc that ignores the stamp
//! the datagrams then leave up to [`LOOKAHEAD`] early); anything else, or unset, probes.

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::msb::txtime::{decide, dump_request, parse_qdisc_dump, Support, LOOKAHEAD};

/// Which path a station's multicast datagrams take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacingPath {
    /// Handed to the kernel up to [`LOOKAHEAD`] ahead with their departure stamp.
    Txtime(String),
    /// Sent by the loop when due.
    Timer(String),
}

impl PacingPath {
    /// "txtime" or "timer" (metrics label, status page).
    pub fn name(&self) -> &'static str {
        match self {
            PacingPath::Txtime(_) => "txtime",
            PacingPath::Timer(_) => "timer",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            PacingPath::Txtime(r) | PacingPath::Timer(r) => r,
        }
    }

    /// How far ahead of their departure datagrams are handed over on this path.
    pub fn lookahead(&self) -> Duration {
        match self {
            PacingPath::Txtime(_) => LOOKAHEAD,
            PacingPath::Timer(_) => Duration::ZERO,
        }
    }
}

/// Chooses the path for `socket`, whose datagrams leave by interface `ifindex` (None: not
/// known), and sets `SO_TXTIME` when it is the txtime path.
pub fn choose(socket: &UdpSocket, ifindex: Option<u32>) -> PacingPath {
    let mode = std::env::var("ASFCAST_TXTIME").unwrap_or_default();
    if mode == "off" {
        return PacingPath::Timer("ASFCAST_TXTIME=off".into());
    }
    let support = match ifindex {
        _ if mode == "force" => Support::Yes("ASFCAST_TXTIME=force".into()),
        None => Support::No("the interface's index is not known".into()),
        Some(i) => match qdiscs() {
            Ok(q) => decide(&q, i32::try_from(i).unwrap_or(-1)),
            Err(e) => Support::No(format!("cannot read the qdiscs: {e}")),
        },
    };
    match support {
        Support::No(why) => PacingPath::Timer(why),
        Support::Yes(why) => match enable(socket) {
            Ok(()) => PacingPath::Txtime(why),
            Err(e) => PacingPath::Timer(format!("{why}, but SO_TXTIME failed: {e}")),
        },
    }
}

/// `SO_TXTIME` with CLOCK_MONOTONIC (what `fq` uses), no flags.
fn enable(socket: &UdpSocket) -> io::Result<()> {
    let v = libc::sock_txtime {
        clockid: libc::CLOCK_MONOTONIC,
        flags: 0,
    };
    // SAFETY: `v` is a valid sock_txtime that outlives the call; its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TXTIME,
            (&v as *const libc::sock_txtime).cast(),
            std::mem::size_of::<libc::sock_txtime>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Every qdisc of this network namespace (one rtnetlink dump, bounded in reads and time).
fn qdiscs() -> io::Result<Vec<crate::msb::txtime::Qdisc>> {
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor this function owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: a valid timeval with its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let req = dump_request(1);
    // SAFETY: `req` is a live buffer of that length; the kernel is the default destination.
    let r = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut all = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    // A dump of a few hundred qdiscs takes a handful of reads; bound it anyway.
    for _ in 0..256 {
        // SAFETY: `buf` is a live, writable buffer of that length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let part = parse_qdisc_dump(buf.get(..n as usize).unwrap_or_default());
        all.extend(part.qdiscs);
        if let Some(e) = part.error {
            if e != 0 {
                return Err(io::Error::from_raw_os_error(-e));
            }
        }
        if part.done || n == 0 {
            return Ok(all);
        }
    }
    Err(io::Error::other("the qdisc dump did not end"))
}

/// A pairing of `Instant` and CLOCK_MONOTONIC read together, to stamp departures.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    at: Instant,
    ns: u64,
}

impl MonotonicClock {
    pub fn now() -> Self {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write into.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let at = Instant::now();
        let ns = (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64);
        MonotonicClock { at, ns }
    }

    /// `when` in CLOCK_MONOTONIC ns (a past instant maps to the past: the kernel sends it
    /// at once).
    pub fn ns_of(&self, when: Instant) -> u64 {
        match when.checked_duration_since(self.at) {
            Some(ahead) => self.ns.saturating_add(ahead.as_nanos() as u64),
            None => self
                .ns
                .saturating_sub(self.at.duration_since(when).as_nanos() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departures_map_onto_the_monotonic_clock() {
        let c = MonotonicClock::now();
        let later = c.at + Duration::from_millis(3);
        assert_eq!(c.ns_of(later), c.ns + 3_000_000);
        assert_eq!(c.ns_of(c.at), c.ns);
        if let Some(earlier) = c.at.checked_sub(Duration::from_micros(5)) {
            assert_eq!(c.ns_of(earlier), c.ns - 5_000);
        }
    }

    #[test]
    fn this_kernel_answers_the_qdisc_dump() {
        // Whatever the namespace holds, the dump parses and ends (lo is at least there, with
        // noqueue, which ignores SO_TXTIME).
        let q = qdiscs().unwrap_or_else(|e| panic!("{e}"));
        assert!(q.iter().all(|x| !x.kind.is_empty()), "{q:?}");
    }
}
