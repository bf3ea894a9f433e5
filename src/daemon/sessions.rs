//! Which session serves a new connection on each kind of listener. The loop calls
//! [`new_session`] and knows nothing else about the protocols.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::ServerConfig;
use crate::http::session::HttpSession;
use crate::net::session::{Session, UdpPorts};

use super::connections::ListenerKind;

/// Whether a listener kind has a session implementation yet (others are not bound).
pub fn implemented(kind: ListenerKind) -> bool {
    match kind {
        ListenerKind::Http => true,
        ListenerKind::Mms => false,
        ListenerKind::Rtsp => false,
    }
}

/// A fresh session for a connection accepted on a `kind` listener.
pub fn new_session(
    kind: ListenerKind,
    peer: SocketAddr,
    server: &ServerConfig,
    udp: UdpPorts,
    now: Instant,
) -> Box<dyn Session> {
    let _ = (peer, udp);
    let limits = &server.limits;
    match kind {
        // MMS and RTSP listeners are not bound until their sessions exist (`implemented`);
        // should one be, its connections get the HTTP session, which answers 400 and closes.
        ListenerKind::Http | ListenerKind::Mms | ListenerKind::Rtsp => Box::new(HttpSession::new(
            limits.request_max_bytes,
            limits.handshake_timeout,
            now,
        )),
    }
}
