//! Who may watch and who may publish: the rules applied when a client connects or names a
//! station, pure (no sockets, no clock); the shell (`crate::net`) and the sessions ask.
//!
//! - [`ip_rules`]: allow/deny lists of addresses and subnets, first match wins.
//!
//! Authentication of players (`asfcast passwd` ([`crate::passwd`]) writes the users file):
//! - [`users`]: the users file (`user:realm:HA1` lines, RFC 7616 §3.4.2 A1) and HA1 itself;
//! - [`digest`]: HTTP Digest (RFC 7616 / RFC 2617, MD5, `qop=auth` and the RFC 2069 form),
//!   server nonces (an HMAC of the issue time under a secret from the caller), `nc` replay;
//! - [`basic`]: HTTP Basic (RFC 7617), checked against the same HA1;
//! - [`gate`]: one decision per request for a protected station (which scheme, which status,
//!   which challenges), shared by RTSP and the HTTP routes.
//!
//! Where the lists apply (the config shape is [`crate::config::access`]):
//! - the server's `watch` list at accept on the HTTP, MMS and RTSP listeners, before a byte is
//!   read (a denied connection is closed at once and counted in the refusal log);
//! - a station's `watch` list when a client names the station (MMS OpenFile, MMSH and plain
//!   HTTP, `.nsc`/`.asx`, RTSP DESCRIBE/SETUP), refused the protocol's way;
//! - the server's `api` list at accept on the control API listener, and `log_agent` on the
//!   multicast logging agent route;
//! - `publish` (server and station) for pushing a live stream: [`may_publish`], for the ingest
//!   path to call.
//!
//! Limits (who may still come in once the box is busy):
//! - [`limits`]: the server's and each station's limits (players, distribution connections,
//!   aggregate and per-player bandwidth, connection rate, fast-start bandwidth);
//! - [`amplification`]: RTP over UDP goes to a client's port in earnest only once the client
//!   has sent something from it.

pub mod amplification;
pub mod basic;
pub mod digest;
pub mod gate;
pub mod ip_rules;
pub mod limits;
pub mod users;

use std::net::IpAddr;

pub use ip_rules::{Action, Cidr, CidrError, IpRules, Rule};

/// Compares two secrets in time that depends only on their lengths (RFC 7616 §5.x: response
/// comparison must not leak how many leading bytes match).
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The server's lists (`access:` in the server file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerAccess {
    /// Who may connect to the HTTP, MMS and RTSP listeners.
    pub watch: IpRules,
    /// Who may publish a live stream to any station.
    pub publish: IpRules,
    /// Who may connect to the control API listener.
    pub api: IpRules,
    /// Who may send logs to the multicast logging agent route.
    pub log_agent: IpRules,
}

/// A station's lists (`access:` in a station file), checked after the server's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StationAccess {
    /// Who may play the station.
    pub watch: IpRules,
    /// Who may publish to the station.
    pub publish: IpRules,
}

/// May `ip` publish to the station? Both the server's and the station's `publish` lists must
/// allow it.
pub fn may_publish(server: &ServerAccess, station: &StationAccess, ip: IpAddr) -> bool {
    server.publish.allows(ip) && station.publish.allows(ip)
}

/// May `ip` watch the station? Both `watch` lists must allow it (the server's is also checked
/// at accept; this is for callers that have not).
pub fn may_watch(server: &ServerAccess, station: &StationAccess, ip: IpAddr) -> bool {
    server.watch.allows(ip) && station.watch.allows(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(net: &str) -> IpRules {
        let net = net.parse().unwrap_or_else(|e| panic!("{net}: {e}"));
        IpRules {
            default: Action::Allow,
            rules: vec![Rule {
                action: Action::Deny,
                net,
            }],
        }
    }

    #[test]
    fn both_levels_must_allow() {
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let server = ServerAccess {
            publish: deny("10.0.0.1"),
            ..ServerAccess::default()
        };
        let station = StationAccess {
            publish: deny("10.0.0.2"),
            watch: deny("10.0.0.2"),
        };
        assert!(!may_publish(&server, &station, a));
        assert!(!may_publish(&server, &station, b));
        assert!(may_publish(&server, &StationAccess::default(), b));
        assert!(may_watch(&server, &station, a));
        assert!(!may_watch(&server, &station, b));
    }
}
