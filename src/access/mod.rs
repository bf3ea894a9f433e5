//! Who may watch: the pure parts of access control, without sockets or clocks.
//!
//! Authentication of players (the shell and the protocol sessions call in; nothing here does
//! I/O; `asfcast passwd` ([`crate::passwd`]) writes the users file):
//! - [`users`]: the users file (`user:realm:HA1` lines, RFC 7616 §3.4.2 A1) and HA1 itself;
//! - [`digest`]: HTTP Digest (RFC 7616 / RFC 2617, MD5, `qop=auth` and the RFC 2069 form),
//!   server nonces (an HMAC of the issue time under a secret from the caller), `nc` replay;
//! - [`basic`]: HTTP Basic (RFC 7617), checked against the same HA1;
//! - [`gate`]: one decision per request for a protected station (which scheme, which status,
//!   which challenges), shared by RTSP and the HTTP routes.

pub mod basic;
pub mod digest;
pub mod gate;
pub mod users;

/// Compares two secrets in time that depends only on their lengths (RFC 7616 §5.x: response
/// comparison must not leak how many leading bytes match).
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
