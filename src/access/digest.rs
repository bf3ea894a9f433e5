//! HTTP Digest access authentication as RTSP and HTTP players speak it: RFC 7616 (which
//! obsoletes RFC 2617) with `algorithm=MD5` and `qop=auth`, and the RFC 2069 form without
//! `qop` that RFC 7616 §3.4.1 still lets a server accept.
//!
//! What the players send (checked with them, tests/authentication.rs):
//! - FFmpeg 5.1 (`libavformat/httpauth.c`) answers a challenge offering `qop="auth"` with
//!   `qop="auth"` (quoted, although §3.4 says token — both are accepted here), `nc` counting
//!   up per request on the connection, and a `cnonce`; MD5 only.
//! - GStreamer 1.22 (`gstrtspconnection.c`) sends the RFC 2069 form: `username, realm, nonce,
//!   uri, response` (no qop, nc nor cnonce) whatever the challenge offers.
//!
//! **Nonces** (§3.3, §5.4, §5.5) are stateless: `hex(time ‖ salt ‖ HMAC-SHA256(secret, time ‖
//! salt ‖ realm)[..16])`. The secret comes from the caller (the shell seeds it from the OS;
//! tests fix it), the time is seconds since the key was made (cores read no clock), the salt a
//! counter so two clients never share a nonce. A nonce older than the key's lifetime is
//! answered with a fresh one and `stale=true` (§3.3) when the response was otherwise right, so
//! players retry without asking for a password again. One made under another secret (the
//! daemon restarted) or for another realm is simply not ours.
//!
//! **Replay** (§5.5): with `qop=auth` the server must see each `nc` of a nonce at most once.
//! The key keeps the highest `nc` seen per nonce (bounded; entries older than the lifetime
//! are dropped first), and a request whose `nc` is not above it is refused. The RFC 2069 form
//! carries no `nc`, so within a nonce's lifetime its replays cannot be told apart: that is the
//! price of serving GStreamer, and why nonces expire.
//!
//! Hostile input: an `Authorization` header over [`MAX_HEADER`] bytes, with more than
//! [`MAX_PARAMS`] parameters, an unterminated quoted string, a duplicate or missing parameter
//! is a [`DigestError`], never a panic.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::same_secret;
use super::users::{hex, Ha1, Users};

/// Largest `Authorization` value looked at.
pub const MAX_HEADER: usize = 4096;
/// Most auth-params in one header.
pub const MAX_PARAMS: usize = 24;
/// How long a nonce is good for by default.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Most nonces whose `nc` is remembered.
pub const MAX_TRACKED_NONCES: usize = 65_536;

/// Why a Digest `Authorization` was not accepted. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("authorization header longer than {MAX_HEADER} bytes")]
    TooLong,
    #[error("malformed digest credentials: {0}")]
    Malformed(&'static str),
    #[error("digest parameter `{0}` missing")]
    Missing(&'static str),
    #[error("digest parameter given twice")]
    Duplicate,
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    #[error("unsupported qop (only `auth`)")]
    UnsupportedQop,
    #[error("credentials for another realm")]
    WrongRealm,
    #[error("digest uri does not match the request")]
    UriMismatch,
    #[error("nonce not issued here")]
    UnknownNonce,
    #[error("nonce expired")]
    Stale,
    #[error("nonce count replayed")]
    Replay,
    #[error("wrong user or password")]
    WrongResponse,
}

impl DigestError {
    /// The status a server answers: 400 for requests that are broken as such (RFC 7616
    /// §3.4.6 for a mismatched uri), 401 with a fresh challenge for the rest.
    pub fn status(&self) -> u16 {
        match self {
            DigestError::TooLong
            | DigestError::Malformed(_)
            | DigestError::Missing(_)
            | DigestError::Duplicate
            | DigestError::UriMismatch => 400,
            _ => 401,
        }
    }
}

/// The credentials of one `Authorization: Digest …` header.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    /// `auth` for RFC 7616 clients; None for the RFC 2069 form.
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .field("qop", &self.qop)
            .field("response", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Splits `name=value, name="quoted", …` (RFC 9110 §11.2 auth-params).
pub fn parse_params(text: &str) -> Result<Vec<(String, String)>, DigestError> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, String)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    loop {
        skip_ws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(DigestError::Malformed("expected a parameter name"));
        }
        let name = text[start..i].to_ascii_lowercase();
        skip_ws(&mut i);
        if b.get(i) != Some(&b'=') {
            return Err(DigestError::Malformed(
                "expected `=` after a parameter name",
            ));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err(DigestError::Malformed("unterminated quoted string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(&c) = b.get(i + 1) else {
                            return Err(DigestError::Malformed("unterminated quoted string"));
                        };
                        v.push(c);
                        i += 2;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(v).map_err(|_| DigestError::Malformed("value is not UTF-8"))?
        } else {
            let s = i;
            while i < b.len() && is_tchar(b[i]) || b.get(i) == Some(&b'/') {
                i += 1;
            }
            if i == s {
                return Err(DigestError::Malformed("empty parameter value"));
            }
            text[s..i].to_string()
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(DigestError::Duplicate);
        }
        if out.len() >= MAX_PARAMS {
            return Err(DigestError::Malformed("too many parameters"));
        }
        out.push((name, value));
        skip_ws(&mut i);
        match b.get(i) {
            None => break,
            Some(b',') => {}
            Some(_) => return Err(DigestError::Malformed("expected `,` between parameters")),
        }
    }
    Ok(out)
}

impl DigestCredentials {
    /// The credentials of an `Authorization` value whose scheme is `Digest` (the scheme
    /// already stripped: `params` is what follows it).
    pub fn parse(params: &str) -> Result<Self, DigestError> {
        if params.len() > MAX_HEADER {
            return Err(DigestError::TooLong);
        }
        let mut p = parse_params(params)?;
        let mut take = |name: &str| {
            p.iter()
                .position(|(n, _)| n == name)
                .map(|at| p.swap_remove(at).1)
        };
        let need = |v: Option<String>, name: &'static str| v.ok_or(DigestError::Missing(name));
        Ok(DigestCredentials {
            username: need(take("username"), "username")?,
            realm: need(take("realm"), "realm")?,
            nonce: need(take("nonce"), "nonce")?,
            uri: need(take("uri"), "uri")?,
            response: need(take("response"), "response")?,
            algorithm: take("algorithm"),
            qop: take("qop"),
            nc: take("nc"),
            cnonce: take("cnonce"),
        })
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex(&h.finalize())
}

/// The `response` a client with `ha1` must send for `method` (RFC 7616 §3.4.1; RFC 2069
/// §2.1.2 without qop). Errors only on a qop other than `auth` or a qop without nc/cnonce.
pub fn expected_response(
    ha1: &Ha1,
    method: &str,
    c: &DigestCredentials,
) -> Result<String, DigestError> {
    let ha1 = hex(ha1);
    let ha2 = md5_hex(&[method.as_bytes(), c.uri.as_bytes()]);
    match c.qop.as_deref() {
        None => Ok(md5_hex(&[
            ha1.as_bytes(),
            c.nonce.as_bytes(),
            ha2.as_bytes(),
        ])),
        Some(q) if q.eq_ignore_ascii_case("auth") => {
            let nc = c.nc.as_deref().ok_or(DigestError::Missing("nc"))?;
            let cnonce = c.cnonce.as_deref().ok_or(DigestError::Missing("cnonce"))?;
            Ok(md5_hex(&[
                ha1.as_bytes(),
                c.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                b"auth",
                ha2.as_bytes(),
            ]))
        }
        Some(_) => Err(DigestError::UnsupportedQop),
    }
}

/// The server's nonce key: the secret, the time base and the `nc` seen per nonce. One for the
/// whole daemon (a nonce from one connection is good on the next, as curl and players that
/// reconnect after a 401 need). `Debug` shows no secret.
pub struct NonceKey {
    secret: [u8; 32],
    epoch: Instant,
    lifetime: Duration,
    salt: AtomicU64,
    /// nonce → (issue second, highest nc seen).
    seen: Mutex<HashMap<String, (u64, u32)>>,
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceKey")
            .field("secret", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// What a nonce is, as far as the key can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    Fresh,
    Stale,
    NotOurs,
}

impl NonceKey {
    /// A key with `secret` (from the caller's generator), counting time from `epoch`.
    pub fn new(secret: [u8; 32], epoch: Instant) -> Self {
        NonceKey {
            secret,
            epoch,
            lifetime: DEFAULT_NONCE_LIFETIME,
            salt: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The same key with nonces good for `lifetime`.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn mac(&self, time: u64, salt: u64, realm: &str) -> [u8; 16] {
        // HMAC accepts keys of any length: new_from_slice cannot fail here.
        let mut m = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return [0; 16],
        };
        m.update(&time.to_be_bytes());
        m.update(&salt.to_be_bytes());
        m.update(realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A new nonce for `realm` at `now`.
    pub fn issue(&self, realm: &str, now: Instant) -> String {
        let time = self.secs(now);
        let salt = self.salt.fetch_add(1, Ordering::Relaxed);
        let mac = self.mac(time, salt, realm);
        format!(
            "{}{}{}",
            hex(&time.to_be_bytes()),
            hex(&salt.to_be_bytes()),
            hex(&mac)
        )
    }

    fn decode(nonce: &str) -> Option<(u64, u64, [u8; 16])> {
        if nonce.len() != 64 || !nonce.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let time = u64::from_str_radix(nonce.get(..16)?, 16).ok()?;
        let salt = u64::from_str_radix(nonce.get(16..32)?, 16).ok()?;
        let mut mac = [0u8; 16];
        for (i, m) in mac.iter_mut().enumerate() {
            *m = u8::from_str_radix(nonce.get(32 + 2 * i..34 + 2 * i)?, 16).ok()?;
        }
        Some((time, salt, mac))
    }

    /// Whether `nonce` was issued by this key for `realm`, and is still good at `now`.
    pub fn check(&self, nonce: &str, realm: &str, now: Instant) -> NonceState {
        let Some((time, salt, mac)) = Self::decode(nonce) else {
            return NonceState::NotOurs;
        };
        if !same_secret(&mac, &self.mac(time, salt, realm)) {
            return NonceState::NotOurs;
        }
        let age = self.secs(now).checked_sub(time);
        match age {
            None => NonceState::NotOurs,
            Some(a) if a > self.lifetime.as_secs() => NonceState::Stale,
            Some(_) => NonceState::Fresh,
        }
    }

    /// Records `nc` for `nonce`: false when it is not above the highest seen (a replay).
    fn count(&self, nonce: &str, nc: u32, now: Instant) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let today = self.secs(now);
        if seen.len() >= MAX_TRACKED_NONCES && !seen.contains_key(nonce) {
            let life = self.lifetime.as_secs();
            seen.retain(|_, (t, _)| today.saturating_sub(*t) <= life);
            if seen.len() >= MAX_TRACKED_NONCES {
                // Still full of live nonces: forget the oldest half.
                let mut times: Vec<u64> = seen.values().map(|(t, _)| *t).collect();
                times.sort_unstable();
                let cut = times.get(times.len() / 2).copied().unwrap_or(0);
                seen.retain(|_, (t, _)| *t > cut);
            }
        }
        let time = Self::decode(nonce).map_or(today, |(t, _, _)| t);
        match seen.get_mut(nonce) {
            Some((_, last)) if nc <= *last => false,
            Some((_, last)) => {
                *last = nc;
                true
            }
            None => {
                seen.insert(nonce.to_string(), (time, nc));
                true
            }
        }
    }
}

/// The `WWW-Authenticate` value that asks for Digest (RFC 7616 §3.3).
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{stale}")
}

/// Checks Digest credentials for a request with `method`; `uri_matches` says whether the
/// credentials' `uri` names the request's target (RFC 7616 §3.4.6). Returns the user.
pub fn verify(
    c: &DigestCredentials,
    users: &Users,
    realm: &str,
    method: &str,
    uri_matches: impl Fn(&str) -> bool,
    key: &NonceKey,
    now: Instant,
) -> Result<String, DigestError> {
    if let Some(a) = &c.algorithm {
        if !a.eq_ignore_ascii_case("MD5") {
            return Err(DigestError::UnsupportedAlgorithm);
        }
    }
    let nc = match (&c.qop, &c.nc) {
        (None, _) => None,
        (Some(q), _) if !q.eq_ignore_ascii_case("auth") => return Err(DigestError::UnsupportedQop),
        (Some(_), None) => return Err(DigestError::Missing("nc")),
        (Some(_), Some(nc)) => {
            if nc.len() != 8 {
                return Err(DigestError::Malformed("nc must be 8 hex digits"));
            }
            Some(
                u32::from_str_radix(nc, 16)
                    .map_err(|_| DigestError::Malformed("nc must be 8 hex digits"))?,
            )
        }
    };
    if c.realm != realm {
        return Err(DigestError::WrongRealm);
    }
    if !uri_matches(&c.uri) {
        return Err(DigestError::UriMismatch);
    }
    let state = key.check(&c.nonce, realm, now);
    if state == NonceState::NotOurs {
        return Err(DigestError::UnknownNonce);
    }
    let expected = {
        let zero = [0u8; 16];
        let ha1 = users.ha1(&c.username, realm);
        let e = expected_response(ha1.unwrap_or(&zero), method, c)?;
        ha1.map(|_| e)
    };
    let given = c.response.to_ascii_lowercase();
    let right = match &expected {
        Some(e) => same_secret(e.as_bytes(), given.as_bytes()),
        None => {
            let _ = same_secret(&[0u8; 32], given.as_bytes());
            false
        }
    };
    if !right {
        return Err(DigestError::WrongResponse);
    }
    if state == NonceState::Stale {
        return Err(DigestError::Stale);
    }
    if let Some(nc) = nc {
        if !key.count(&c.nonce, nc, now) {
            return Err(DigestError::Replay);
        }
    }
    Ok(c.username.clone())
}

#[cfg(test)]
mod tests {
    use super::super::users::{ha1, with_entry};
    use super::*;

    const MUFASA: &str = r#"username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    #[test]
    fn rfc_2617_section_3_5_example() {
        let c = DigestCredentials::parse(MUFASA).unwrap();
        assert_eq!(c.qop.as_deref(), Some("auth"));
        let h = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(
            expected_response(&h, "GET", &c).unwrap(),
            "6629fae49393a05397450978507c4ef1"
        );
        // The secret-bearing field stays out of Debug.
        assert!(!format!("{c:?}").contains("6629fae4"));
    }

    #[test]
    fn rfc_2069_form_without_qop() {
        // RFC 2069 §2.4's request (its published response was computed with another
        // password; this is MD5(HA1:nonce:HA2) for "Circle Of Life").
        let c = DigestCredentials::parse(
            r#"username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="670fd8c2df070c60b045671b8b24ff02""#,
        )
        .unwrap();
        assert_eq!(c.qop, None);
        let h = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(
            expected_response(&h, "GET", &c).unwrap(),
            "670fd8c2df070c60b045671b8b24ff02"
        );
    }

    fn users() -> Users {
        Users::parse(&with_entry("", "alice", "tv", "pw").unwrap()).unwrap()
    }

    /// Credentials as a client computes them.
    fn client(
        nonce: &str,
        method: &str,
        uri: &str,
        nc: Option<u32>,
        pw: &str,
    ) -> DigestCredentials {
        let mut c = DigestCredentials {
            username: "alice".into(),
            realm: "tv".into(),
            nonce: nonce.into(),
            uri: uri.into(),
            response: String::new(),
            algorithm: Some("MD5".into()),
            qop: nc.map(|_| "auth".into()),
            nc: nc.map(|n| format!("{n:08x}")),
            cnonce: nc.map(|_| "c0ffee".into()),
        };
        c.response = expected_response(&ha1("alice", "tv", pw), method, &c).unwrap();
        c
    }

    #[test]
    fn qop_auth_and_no_qop_accepted_wrong_password_and_uri_refused() {
        let t0 = Instant::now();
        let key = NonceKey::new([7; 32], t0);
        let n = key.issue("tv", t0);
        let uri = "rtsp://h/demo";
        let ok =
            |c: &DigestCredentials| verify(c, &users(), "tv", "DESCRIBE", |u| u == uri, &key, t0);
        assert_eq!(
            ok(&client(&n, "DESCRIBE", uri, Some(1), "pw")),
            Ok("alice".into())
        );
        assert_eq!(
            ok(&client(&n, "DESCRIBE", uri, None, "pw")),
            Ok("alice".into())
        );
        assert_eq!(
            ok(&client(&n, "DESCRIBE", uri, Some(2), "nope")),
            Err(DigestError::WrongResponse)
        );
        assert_eq!(
            ok(&client(&n, "SETUP", uri, Some(3), "pw")),
            Err(DigestError::WrongResponse)
        );
        let e = ok(&client(&n, "DESCRIBE", "rtsp://h/other", Some(4), "pw")).unwrap_err();
        assert_eq!((e.clone(), e.status()), (DigestError::UriMismatch, 400));
        let mut c = client(&n, "DESCRIBE", uri, Some(5), "pw");
        c.username = "mallory".into();
        assert_eq!(ok(&c), Err(DigestError::WrongResponse));
        let mut c = client(&n, "DESCRIBE", uri, Some(6), "pw");
        c.realm = "other".into();
        assert_eq!(ok(&c), Err(DigestError::WrongRealm));
        let mut c = client(&n, "DESCRIBE", uri, Some(7), "pw");
        c.algorithm = Some("SHA-256".into());
        assert_eq!(ok(&c), Err(DigestError::UnsupportedAlgorithm));
        let mut c = client(&n, "DESCRIBE", uri, Some(8), "pw");
        c.qop = Some("auth-int".into());
        assert_eq!(ok(&c), Err(DigestError::UnsupportedQop));
        // Upper-case hex responses are the same response.
        let mut c = client(&n, "DESCRIBE", uri, Some(9), "pw");
        c.response = c.response.to_ascii_uppercase();
        assert_eq!(ok(&c), Ok("alice".into()));
    }

    #[test]
    fn stale_foreign_and_replayed_nonces() {
        let t0 = Instant::now();
        let key = NonceKey::new([7; 32], t0).with_lifetime(Duration::from_secs(60));
        let n = key.issue("tv", t0);
        let at =
            |c: &DigestCredentials, now| verify(c, &users(), "tv", "PLAY", |_| true, &key, now);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            at(&client(&n, "PLAY", "/d", Some(1), "pw"), later),
            Err(DigestError::Stale)
        );
        // A stale nonce with a wrong password is a wrong password, not stale.
        assert_eq!(
            at(&client(&n, "PLAY", "/d", Some(1), "x"), later),
            Err(DigestError::WrongResponse)
        );
        // nc replay: once, then refused; a higher one accepted.
        assert!(at(&client(&n, "PLAY", "/d", Some(1), "pw"), t0).is_ok());
        assert_eq!(
            at(&client(&n, "PLAY", "/d", Some(1), "pw"), t0),
            Err(DigestError::Replay)
        );
        assert!(at(&client(&n, "PLAY", "/d", Some(2), "pw"), t0).is_ok());
        assert_eq!(
            at(&client(&n, "PLAY", "/d", Some(2), "pw"), t0),
            Err(DigestError::Replay)
        );
        // Another secret, another realm, a tampered or future nonce: not ours.
        let other = NonceKey::new([8; 32], t0).issue("tv", t0);
        assert_eq!(
            at(&client(&other, "PLAY", "/d", Some(1), "pw"), t0),
            Err(DigestError::UnknownNonce)
        );
        assert_eq!(
            key.check(&key.issue("radio", t0), "tv", t0),
            NonceState::NotOurs
        );
        let mut tampered = n.clone().into_bytes();
        tampered[15] = if tampered[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            key.check(std::str::from_utf8(&tampered).unwrap(), "tv", t0),
            NonceState::NotOurs
        );
        let future = key.issue("tv", t0 + Duration::from_secs(10));
        assert_eq!(key.check(&future, "tv", t0), NonceState::NotOurs);
        // Nonces differ even within one second; Debug shows no secret.
        assert_ne!(key.issue("tv", t0), key.issue("tv", t0));
        assert!(!format!("{key:?}").contains("7, 7"));
    }

    #[test]
    fn nonce_tracking_is_bounded() {
        let t0 = Instant::now();
        let key = NonceKey::new([1; 32], t0);
        for i in 0..(MAX_TRACKED_NONCES + 10) {
            let n = key.issue("tv", t0 + Duration::from_secs(i as u64 / 1000));
            assert!(key.count(&n, 1, t0 + Duration::from_secs(i as u64 / 1000)));
        }
        assert!(key.seen.lock().unwrap().len() <= MAX_TRACKED_NONCES);
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        let long = format!("username=\"{}\"", "a".repeat(MAX_HEADER));
        let many: String = (0..30).map(|i| format!("p{i}=1, ")).collect();
        let cases: Vec<(&str, DigestError)> = vec![
            (&long, DigestError::TooLong),
            (&many, DigestError::Malformed("too many parameters")),
            (
                "username=\"alice",
                DigestError::Malformed("unterminated quoted string"),
            ),
            (
                "username=\"alice\\",
                DigestError::Malformed("unterminated quoted string"),
            ),
            (
                "username",
                DigestError::Malformed("expected `=` after a parameter name"),
            ),
            ("=x", DigestError::Malformed("expected a parameter name")),
            ("username=", DigestError::Malformed("empty parameter value")),
            (
                "username=a b",
                DigestError::Malformed("expected `,` between parameters"),
            ),
            ("username=a, username=b", DigestError::Duplicate),
            ("", DigestError::Missing("username")),
            (",,,", DigestError::Missing("username")),
            (
                "username=a, realm=b, nonce=c, uri=/",
                DigestError::Missing("response"),
            ),
            (
                "username=\"\u{0}\u{ff}\", realm=\"é\"",
                DigestError::Missing("nonce"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(DigestCredentials::parse(text), Err(want), "{text:?}");
        }
        // Whatever the bytes, parsing returns.
        for s in [
            "\"",
            "\\",
            "a=\"\\\"\"",
            "a=b,,,c=\"d\",",
            "a = \"x\" , b = y",
        ] {
            let _ = DigestCredentials::parse(s);
        }
        let p = parse_params("a = \"x\\\"y\" , B=tok/en,").unwrap();
        assert_eq!(
            p,
            vec![("a".into(), "x\"y".into()), ("b".into(), "tok/en".into())]
        );
        // A qop without nc, or a bad nc, is refused before any hashing.
        let key = NonceKey::new([0; 32], Instant::now());
        let mut c = DigestCredentials::parse(MUFASA).unwrap();
        c.realm = "tv".into();
        c.nc = None;
        assert_eq!(
            verify(&c, &users(), "tv", "GET", |_| true, &key, Instant::now()),
            Err(DigestError::Missing("nc"))
        );
        c.nc = Some("zz".into());
        assert!(matches!(
            verify(&c, &users(), "tv", "GET", |_| true, &key, Instant::now()),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn challenge_names_realm_nonce_qop_and_stale() {
        assert_eq!(
            challenge("tv", "abc", false),
            "Digest realm=\"tv\", nonce=\"abc\", qop=\"auth\", algorithm=MD5"
        );
        assert!(challenge("tv", "abc", true).ends_with(", stale=true"));
    }
}
