//! Which session serves a new connection on each kind of listener. The loop calls
//! [`new_session`] and knows nothing else about the protocols.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::ServerConfig;
use crate::http::session::{HttpSession, SessionLimits};
use crate::mms::{MmsConfig, MmsSession};
use crate::rtsp::{RtspConfig, RtspSession};
use crate::station::sink::{Session, UdpPorts};

use super::connections::ListenerKind;

/// A fresh session for a connection accepted on a `kind` listener.
pub fn new_session(
    kind: ListenerKind,
    peer: SocketAddr,
    server: &ServerConfig,
    udp: UdpPorts,
    now: Instant,
) -> Box<dyn Session> {
    let limits = &server.limits;
    match kind {
        ListenerKind::Mms => Box::new(MmsSession::new(
            peer,
            MmsConfig::from_server(server, udp),
            now,
        )),
        ListenerKind::Rtsp => Box::new(RtspSession::new(
            RtspConfig::from_server(server),
            peer,
            udp,
            now,
        )),
        ListenerKind::Http => Box::new(HttpSession::new(
            SessionLimits::from_limits(limits),
            peer,
            now,
        )),
    }
}
