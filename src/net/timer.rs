//! A timerfd (CLOCK_MONOTONIC, the clock `std::time::Instant` reads on Linux) registered in the
//! mio poll: the loop sleeps in `epoll_wait` until the earliest deadline of any station or
//! session, with nanosecond resolution, and never busy-waits.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

pub struct PacingTimer {
    fd: TimerFd,
    armed_for: Option<Instant>,
}

impl PacingTimer {
    pub fn new() -> std::io::Result<Self> {
        // Timer wake-ups are rounded up by the thread's timer slack (50 µs by default); the
        // pacing loop wants them exact.
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        }
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(PacingTimer {
            fd,
            armed_for: None,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Arms the timer for `deadline` (re-arming only when it changes). A deadline in the past
    /// fires at once.
    pub fn arm(&mut self, deadline: Instant, now: Instant) -> std::io::Result<()> {
        if self.armed_for == Some(deadline) {
            return Ok(());
        }
        let wait = deadline
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        self.fd.set(
            Expiration::OneShot(TimeSpec::from_duration(wait)),
            TimerSetTimeFlags::empty(),
        )?;
        self.armed_for = Some(deadline);
        Ok(())
    }

    /// Consumes the expiration count after the fd became readable.
    pub fn acknowledge(&mut self) {
        let mut buf = [0u8; 8];
        // Non-blocking read; EAGAIN just means a spurious wake-up.
        let _ = nix::unistd::read(&self.fd, &mut buf);
        self.armed_for = None;
    }
}
