//! Which session serves a new connection on each kind of listener, and the inputs the shell
//! hands every session that a pure core may not make itself: MMSH `client-id`s (a counter)
//! and RTSP's randomness (session ids, SSRCs), a generator seeded here from the OS so ids stay
//! unguessable, while tests seed the cores themselves and replay them. The loop calls
//! [`SessionFactory::new_session`] and knows nothing else about the protocols.

use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

use crate::access::digest::NonceKey;

use crate::config::ServerConfig;
use crate::http::session::{HttpSession, SessionLimits};
use crate::mms::{MmsConfig, MmsSession};
use crate::rtsp::sdp_cache::{SdpCache, SharedSdpCache};
use crate::rtsp::{RtspConfig, RtspSession};
use crate::station::sink::{Session, UdpPorts};

use super::connections::ListenerKind;

/// Makes sessions for accepted connections.
pub struct SessionFactory {
    rng: StdRng,
    next_client_id: u32,
    /// The Digest nonce key of every RTSP and HTTP session (one, so a nonce from one
    /// connection is good on the next); its secret drawn from `rng`.
    nonce_key: Arc<NonceKey>,
    /// The RTSP DESCRIBE answers' header lines: one base64 encoding per station header for
    /// every RTSP session.
    sdp_cache: SharedSdpCache,
}

impl SessionFactory {
    pub fn new() -> Self {
        let mut rng = StdRng::from_os_rng();
        let secret: [u8; 32] = rng.random();
        SessionFactory {
            rng,
            next_client_id: 1,
            nonce_key: Arc::new(NonceKey::new(secret, Instant::now())),
            sdp_cache: SdpCache::shared(),
        }
    }

    /// A fresh session for a connection accepted on a `kind` listener.
    pub fn new_session(
        &mut self,
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
            ListenerKind::Rtsp => Box::new(
                RtspSession::new(
                    RtspConfig::from_server(server),
                    peer,
                    udp,
                    StdRng::from_rng(&mut self.rng),
                    now,
                )
                .with_nonce_key(self.nonce_key.clone())
                .with_sdp_cache(self.sdp_cache.clone()),
            ),
            ListenerKind::Http => {
                let id = self.next_client_id;
                self.next_client_id = self.next_client_id.checked_add(1).unwrap_or(1);
                Box::new(
                    HttpSession::new(SessionLimits::from_limits(limits), peer, id, now)
                        .with_nonce_key(self.nonce_key.clone())
                        .with_push_token(self.rng.random()),
                )
            }
            ListenerKind::Api => Box::new(crate::ops::api_session::ApiSession::new(
                peer,
                limits.idle_timeout,
                now,
            )),
        }
    }
}

impl Default for SessionFactory {
    fn default() -> Self {
        SessionFactory::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_http_session_gets_its_own_client_id() {
        let mut f = SessionFactory::new();
        let server = ServerConfig::default();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let now = Instant::now();
        let mut ids = std::collections::HashSet::new();
        for _ in 0..100 {
            let s = f.new_session(ListenerKind::Http, peer, &server, UdpPorts::default(), now);
            assert_eq!(s.protocol(), "http");
            ids.insert(f.next_client_id);
        }
        assert_eq!(ids.len(), 100);
        assert_eq!(f.next_client_id, 101);
    }
}
