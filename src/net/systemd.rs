//! systemd integration: `Type=notify` readiness, status and watchdog messages, socket
//! activation of the listeners, and (in `main`) logging to the journal with structured fields.
//!
//! We use the pure-Rust `sd-notify` and `tracing-journald` crates rather than the `systemd`
//! crate: they speak the same documented protocols (sd_notify(3), sd_listen_fds(3), the
//! journal's native socket protocol) without linking libsystemd (LGPL, a C dependency the
//! appliance image would have to carry in lockstep with the binary), and they are no-ops when
//! the daemon runs outside systemd (no `NOTIFY_SOCKET`, no `LISTEN_FDS`).

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};

use nix::sys::socket::{getsockopt, sockopt};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::{debug, warn};

/// The service manager, as far as the daemon talks to it.
#[derive(Debug)]
pub struct ServiceManager {
    watchdog: Option<Duration>,
    next_ping: Option<Instant>,
    last_status: String,
}

impl ServiceManager {
    /// Reads `NOTIFY_SOCKET` / `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        ServiceManager {
            watchdog: sd_notify::watchdog_enabled(),
            next_ping: None,
            last_status: String::new(),
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            debug!(error = %e, "sd_notify failed");
        }
    }

    /// Every listener is bound and every station started. Starts the watchdog pings.
    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_string();
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        if self.watchdog.is_some() && self.next_ping.is_none() {
            self.next_ping = Some(Instant::now());
        }
    }

    /// Updates the `STATUS=` line when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.last_status = status.to_string();
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// A reload starts (systemd ≥ 253 wants the monotonic time with it).
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(t) => self.send(&[NotifyState::Reloading, t]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// When the loop must ping the watchdog next (every half of the configured interval).
    pub fn watchdog_due(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Pings the watchdog if it is due. Called from the event loop itself, so a stuck loop
    /// stops the pings and systemd restarts the daemon.
    pub fn ping_if_due(&mut self, now: Instant) {
        if let (Some(due), Some(every)) = (self.next_ping, self.watchdog) {
            if due <= now {
                self.send(&[NotifyState::Watchdog]);
                self.next_ping = Some(now + every / 2);
            }
        }
    }
}

/// A listening socket passed by systemd (`LISTEN_FDS`), with its `FileDescriptorName=`.
#[derive(Debug)]
pub struct ActivatedSocket {
    pub name: String,
    pub local: SocketAddr,
    pub listener: std::net::TcpListener,
}

/// Takes the TCP listening sockets systemd passed. Sockets that are not TCP listeners are
/// closed and logged. Empty when not socket-activated.
pub fn take_listen_sockets() -> Vec<ActivatedSocket> {
    let fds: Vec<(RawFd, String)> = match sd_notify::listen_fds_with_names() {
        Ok(f) => f.collect(),
        Err(e) => {
            warn!(error = %e, "ignoring malformed LISTEN_FDS");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (fd, name) in fds {
        // Only take ownership of a descriptor that really is a listening socket: closing a
        // descriptor we were wrongly told about could close one the process uses.
        // SAFETY: borrowed for the duration of the check only; systemd says the fd is open.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        match getsockopt(&borrowed, sockopt::AcceptConn) {
            Ok(true) => {}
            _ => {
                warn!(fd, name = %name, "passed descriptor is not a listening socket; ignored");
                continue;
            }
        }
        // SAFETY: a listening socket systemd passed to us (LISTEN_PID matched); nothing else in
        // the process owns it: ownership moves into the TcpListener here, once.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        match (listener.local_addr(), listener.set_nonblocking(true)) {
            (Ok(local), Ok(())) => out.push(ActivatedSocket {
                name,
                local,
                listener,
            }),
            (Err(e), _) | (_, Err(e)) => {
                warn!(fd, name = %name, error = %e, "passed socket unusable; closed")
            }
        }
    }
    out
}
