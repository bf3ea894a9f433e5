//! One decision per request for a protected station, shared by RTSP and the HTTP routes: read
//! the `Authorization` header (RFC 9110 §11.6.2), check it with the scheme it names, and say
//! what to answer when it does not pass: the status (400 for a broken header, 401 otherwise)
//! and the `WWW-Authenticate` challenges (RFC 9110 §11.6.1) with a fresh nonce, `stale=true`
//! when only the nonce's age was wrong (RFC 7616 §3.3).
//!
//! RTSP offers Digest only (every RTSP player speaks it, and Basic would put the password on
//! the wire); the HTTP routes offer Digest and Basic (curl, scripts).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::basic;
use super::digest::{self, DigestCredentials, DigestError, NonceKey};
use super::users::Users;

/// Largest `Authorization` value looked at; longer ones get 400 unread.
pub const MAX_AUTHORIZATION: usize = digest::MAX_HEADER;

/// Who may watch one station: its realm and the users file's entries.
#[derive(Clone, PartialEq, Eq)]
pub struct Protection {
    pub realm: String,
    pub users: Arc<Users>,
}

impl fmt::Debug for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protection")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish()
    }
}

/// Which schemes a listener accepts and offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// RTSP: Digest.
    Digest,
    /// HTTP routes: Digest, and Basic.
    DigestOrBasic,
}

/// A request that did not pass: what to answer and why (for the log; no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// `WWW-Authenticate` values, one header each (only with 401).
    pub challenges: Vec<String>,
    pub reason: String,
}

/// A request that passed: who, and how (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub user: String,
    /// `digest qop=auth`, `digest rfc2069` or `basic`.
    pub scheme: &'static str,
}

/// The request being authorized.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub method: &'a str,
    pub authorization: Option<&'a str>,
    pub now: Instant,
}

/// Checks `attempt` against `p`; the user on success. `uri_matches` says whether a Digest
/// `uri` names this request's target.
pub fn authorize(
    p: &Protection,
    schemes: Schemes,
    key: &NonceKey,
    attempt: Attempt<'_>,
    uri_matches: impl Fn(&str) -> bool,
) -> Result<Authorized, Refusal> {
    let now = attempt.now;
    let refuse = |status: u16, stale: bool, reason: String| {
        let challenges = if status == 401 {
            let mut c = vec![digest::challenge(
                &p.realm,
                &key.issue(&p.realm, now),
                stale,
            )];
            if schemes == Schemes::DigestOrBasic {
                c.push(basic::challenge(&p.realm));
            }
            c
        } else {
            Vec::new()
        };
        Refusal {
            status,
            challenges,
            reason,
        }
    };
    let Some(value) = attempt.authorization else {
        return Err(refuse(401, false, "no credentials".into()));
    };
    if value.len() > MAX_AUTHORIZATION {
        return Err(refuse(400, false, "authorization header too long".into()));
    }
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("digest") {
        let result = DigestCredentials::parse(rest).and_then(|c| {
            let scheme = if c.qop.is_some() {
                "digest qop=auth"
            } else {
                "digest rfc2069"
            };
            let realm = &p.realm;
            digest::verify(&c, &p.users, realm, attempt.method, &uri_matches, key, now)
                .map(|user| Authorized { user, scheme })
        });
        return result.map_err(|e| {
            let stale = e == DigestError::Stale;
            refuse(e.status(), stale, format!("digest: {e}"))
        });
    }
    if scheme.eq_ignore_ascii_case("basic") && schemes == Schemes::DigestOrBasic {
        return basic::verify(rest, &p.users, &p.realm)
            .map(|user| Authorized {
                user,
                scheme: "basic",
            })
            .map_err(|e| refuse(e.status(), false, format!("basic: {e}")));
    }
    Err(refuse(
        401,
        false,
        "unsupported authorization scheme".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::digest::expected_response;
    use super::super::users::{ha1, with_entry};
    use super::*;
    use base64::Engine;

    fn protection() -> Protection {
        Protection {
            realm: "tv".into(),
            users: Arc::new(Users::parse(&with_entry("", "alice", "tv", "pw").unwrap()).unwrap()),
        }
    }

    #[test]
    fn refusals_carry_challenges_and_statuses() {
        let t0 = Instant::now();
        let key = NonceKey::new([3; 32], t0);
        let p = protection();
        let run = |schemes, auth: Option<&str>| {
            authorize(
                &p,
                schemes,
                &key,
                Attempt {
                    method: "GET",
                    authorization: auth,
                    now: t0,
                },
                |_| true,
            )
        };
        let r = run(Schemes::Digest, None).unwrap_err();
        assert_eq!(r.status, 401);
        assert_eq!(r.challenges.len(), 1);
        assert!(
            r.challenges[0].starts_with("Digest realm=\"tv\", nonce=\""),
            "{r:?}"
        );
        assert!(r.challenges[0].contains("qop=\"auth\", algorithm=MD5"));
        let r = run(Schemes::DigestOrBasic, None).unwrap_err();
        assert_eq!(r.challenges.len(), 2);
        assert!(r.challenges[1].starts_with("Basic realm=\"tv\""));

        let basic_ok = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pw")
        );
        assert_eq!(
            run(Schemes::DigestOrBasic, Some(&basic_ok)).map(|a| (a.user, a.scheme)),
            Ok(("alice".into(), "basic"))
        );
        // RTSP takes no Basic.
        assert_eq!(
            run(Schemes::Digest, Some(&basic_ok)).unwrap_err().status,
            401
        );
        let huge = format!("Digest {}", "x".repeat(MAX_AUTHORIZATION));
        let table = [
            ("Digest username=\"a", 400),
            ("Digest", 400),
            ("Bearer abc", 401),
            ("", 401),
            ("Basic !!", 400),
            (huge.as_str(), 400),
        ];
        for (auth, status) in table {
            let r = run(Schemes::DigestOrBasic, Some(auth)).unwrap_err();
            assert_eq!(r.status, status, "{auth:.40}");
            assert_eq!(r.challenges.is_empty(), status == 400);
            assert!(!r.reason.contains("pw"));
        }

        // A good Digest answer to the challenge passes.
        let nonce = key.issue("tv", t0);
        let mut c = DigestCredentials {
            username: "alice".into(),
            realm: "tv".into(),
            nonce: nonce.clone(),
            uri: "/x".into(),
            response: String::new(),
            algorithm: None,
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("ab".into()),
        };
        c.response = expected_response(&ha1("alice", "tv", "pw"), "GET", &c).unwrap();
        let header = format!(
            "Digest username=\"alice\", realm=\"tv\", nonce=\"{nonce}\", uri=\"/x\", qop=\"auth\", nc=00000001, cnonce=\"ab\", response=\"{}\"",
            c.response
        );
        assert_eq!(
            run(Schemes::Digest, Some(&header)).map(|a| (a.user, a.scheme)),
            Ok(("alice".into(), "digest qop=auth"))
        );
        // The same again is a replay: 401 with a fresh, not stale, nonce.
        let r = run(Schemes::Digest, Some(&header)).unwrap_err();
        assert_eq!(r.status, 401);
        assert!(!r.challenges[0].contains("stale"));
        assert!(!format!("{p:?}").contains("a1"));
    }

    #[test]
    fn an_expired_nonce_with_a_right_response_is_stale() {
        let t0 = Instant::now();
        let key = NonceKey::new([4; 32], t0).with_lifetime(std::time::Duration::from_secs(30));
        let p = protection();
        let nonce = key.issue("tv", t0);
        let mut c = DigestCredentials {
            username: "alice".into(),
            realm: "tv".into(),
            nonce: nonce.clone(),
            uri: "/x".into(),
            response: String::new(),
            algorithm: None,
            qop: None,
            nc: None,
            cnonce: None,
        };
        c.response = expected_response(&ha1("alice", "tv", "pw"), "PLAY", &c).unwrap();
        let header = format!(
            "Digest username=\"alice\", realm=\"tv\", nonce=\"{nonce}\", uri=\"/x\", response=\"{}\"",
            c.response
        );
        let at = |now| {
            let a = Attempt {
                method: "PLAY",
                authorization: Some(header.as_str()),
                now,
            };
            authorize(&p, Schemes::Digest, &key, a, |u| u == "/x")
        };
        assert_eq!(at(t0).map(|a| a.scheme), Ok("digest rfc2069"));
        let r = at(t0 + std::time::Duration::from_secs(31)).unwrap_err();
        assert_eq!(r.status, 401);
        assert!(r.challenges[0].ends_with(", stale=true"), "{r:?}");
        assert!(
            !r.challenges[0].contains(&nonce),
            "the stale nonce was reissued"
        );
    }
}
