//! SIGTERM, SIGINT and SIGHUP as readable events (signalfd): blocked for the whole process and
//! read from the loop, so a signal never interrupts a send half-way and reload/stop happen
//! between two loop turns.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRequest {
    Stop(Signal),
    Reload,
}

pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the signals in the calling thread (call before spawning threads) and opens the fd.
    pub fn new() -> std::io::Result<Self> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGHUP);
        mask.thread_block()?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Every pending signal, in arrival order.
    pub fn drain(&mut self) -> Vec<SignalRequest> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGHUP) => out.push(SignalRequest::Reload),
                Ok(s) => out.push(SignalRequest::Stop(s)),
                Err(_) => {}
            }
        }
        out
    }
}
