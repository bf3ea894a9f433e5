//! Which session serves a new connection on each kind of listener. The loop calls
//! [`new_session`] and knows nothing else about the protocols.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::ServerConfig;
use crate::net::session::Session;

use super::connections::ListenerKind;

/// Whether a listener kind has a session implementation yet (others are not bound).
pub fn implemented(kind: ListenerKind) -> bool {
    match kind {
        ListenerKind::Http => false,
        ListenerKind::Mms => false,
        ListenerKind::Rtsp => false,
    }
}

/// A fresh session for a connection accepted on a `kind` listener.
pub fn new_session(
    kind: ListenerKind,
    peer: SocketAddr,
    server: &ServerConfig,
    now: Instant,
) -> Box<dyn Session> {
    let _ = (kind, peer, server, now);
    unreachable!("listeners are bound only for implemented kinds")
}
