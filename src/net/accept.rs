//! Accepting connections: the limits (`max_clients`, `max_clients_per_ip`) refuse at once, and
//! every refusal is counted for the aggregate log ([`super::refusals`]) instead of a line each.
//! Out of file descriptors, the spare ([`super::fd_reserve`]) is spent to accept and close the
//! pending connection, so the listener's queue keeps moving; when even that fails the listener
//! is marked starved and the housekeeping tick tries it again, since an edge-triggered poll
//! would not report it again by itself.
//!
//! Before the limits, the server's IP rules ([`crate::access`]: `access.watch`, `access.api`
//! for the control API) close a denied connection unread, counted like the limits' refusals.

use std::io;
use std::time::Instant;

use mio::{Interest, Token};
use tracing::warn;

use super::connections::{Connection, ListenerKind};
use super::daemon::{Daemon, CONN_BASE, SEND_BUFFER};
use super::fd_reserve;
use super::refusals::Reason;

/// What refusing one connection while out of descriptors came to.
enum Refused {
    /// One pending connection was accepted and closed: look for more.
    One,
    /// The queue is empty.
    Drained,
    /// Not even the spare helped: try again at the next housekeeping tick.
    Starved,
}

impl Daemon {
    /// Accepts every pending connection of listener `li`.
    pub(super) fn accept(&mut self, li: usize, now: Instant) {
        loop {
            let Some(l) = self.listeners.get(li) else {
                return;
            };
            let kind = l.kind;
            let options_inherited = l.options_inherited;
            let (stream, peer) = match l.socket.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) if fd_reserve::is_exhaustion(&e) => match self.refuse_pending(li, now) {
                    Refused::One => continue,
                    Refused::Drained => return,
                    Refused::Starved => {
                        self.accept_starved = true;
                        return;
                    }
                },
                Err(e) => {
                    warn!(protocol = kind.as_str(), error = %e, "accept failed");
                    self.accept_starved = true;
                    return;
                }
            };
            // IP rules first: a denied address is closed before a byte is read, and counts
            // towards no limit.
            if !self.may_connect(kind, peer.ip()) {
                self.refusals.note(peer.ip(), Reason::AccessRule, now);
                continue;
            }
            let limits = &self.config.server.limits;
            let open = self.conns.len() - self.free.len();
            // Operators reach the control API even when the clients fill the box.
            if kind != ListenerKind::Api && open >= limits.max_clients as usize {
                self.refusals.note(peer.ip(), Reason::ClientLimit, now);
                continue;
            }
            if kind != ListenerKind::Api && !self.connection_rate_allows(now) {
                self.refusals.note(peer.ip(), Reason::ConnectionRate, now);
                continue;
            }
            let limits = &self.config.server.limits;
            if !self.peers.try_add(peer, limits.max_clients_per_ip) {
                self.refusals.note(peer.ip(), Reason::PerIpLimit, now);
                continue;
            }
            // A fixed send buffer instead of autotuning (up to tcp_wmem's 4 MiB): a client that
            // stops reading then holds little kernel memory and falls behind in the session's
            // queue, where the slow-client policy sees it. Usually set once on the listener.
            if !options_inherited {
                let _ = stream.set_nodelay(true);
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
            }
            let read_limit = limits.client_backlog_bytes;
            let session =
                self.factory
                    .new_session(kind, peer, &self.config.server, self.udp.ports(), now);
            let idx = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            self.next_conn_id += 1;
            let mut conn =
                Connection::new(stream, (self.next_conn_id, now), peer, session, read_limit);
            if let Err(e) = self.poll.registry().register(
                &mut conn.stream,
                Token(CONN_BASE + idx),
                Interest::READABLE,
            ) {
                warn!(%peer, error = %e, "cannot register connection");
                self.peers.remove(peer);
                self.free.push(idx);
                continue;
            }
            self.conns[idx] = Some(conn);
            self.rearm(idx);
        }
    }

    /// Do the server's IP rules for this listener (`access.watch`, or `access.api` for the
    /// control API) let `ip` in?
    fn may_connect(&self, kind: ListenerKind, ip: std::net::IpAddr) -> bool {
        let access = &self.config.server.access;
        match kind {
            ListenerKind::Http | ListenerKind::Mms | ListenerKind::Rtsp => access.watch.allows(ip),
            ListenerKind::Api => access.api.allows(ip),
        }
    }

    /// `limits.max_connection_rate`: takes a token from the bucket (made anew when the limit
    /// is set or changed by a reload); true when there is no limit.
    fn connection_rate_allows(&mut self, now: Instant) -> bool {
        use crate::access::limits::ConnectionRate;
        let Some(rate) = self.config.server.limits.access.connection_rate else {
            self.connection_rate = None;
            return true;
        };
        let bucket = match &mut self.connection_rate {
            Some(b) if b.per_second() == rate => b,
            slot => slot.insert(ConnectionRate::new(rate)),
        };
        bucket.allow(now)
    }

    /// Out of descriptors: closes the spare, accepts one pending connection and closes it (the
    /// client sees a clean close instead of a connect that hangs), takes the spare back.
    fn refuse_pending(&mut self, li: usize, now: Instant) -> Refused {
        if !self.fd_reserve.release() {
            return Refused::Starved;
        }
        let Some(l) = self.listeners.get(li) else {
            self.fd_reserve.restore();
            return Refused::Drained;
        };
        let outcome = match l.socket.accept() {
            Ok((stream, peer)) => {
                drop(stream);
                self.refusals.note(peer.ip(), Reason::NoDescriptors, now);
                Refused::One
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Refused::Drained,
            Err(_) => Refused::Starved,
        };
        if !self.fd_reserve.restore() {
            return Refused::Starved;
        }
        outcome
    }

    /// The housekeeping tick's retry: after running out of descriptors, takes the spare back and
    /// accepts what the listeners hold (their readiness is not reported again by itself).
    pub(super) fn retry_starved_listeners(&mut self, now: Instant) {
        if !self.accept_starved && self.fd_reserve.is_held() {
            return;
        }
        self.accept_starved = !self.fd_reserve.restore();
        for li in 0..self.listeners.len() {
            self.accept(li, now);
        }
    }
}
