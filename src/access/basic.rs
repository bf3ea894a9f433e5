//! HTTP Basic authentication (RFC 7617) for the HTTP routes of a protected station: the user
//! and password of `Authorization: Basic base64(user:password)`, checked by recomputing the
//! Digest HA1 (see [`super::users`] for why the file keeps HA1) and comparing in constant time.
//! Basic sends the password in the clear; it is offered beside Digest on HTTP because curl
//! and scripts use it, and never on RTSP, where every player speaks Digest.

use base64::Engine;

use super::users::Users;

/// Largest `Authorization: Basic` value looked at (a user and password of a few hundred bytes).
pub const MAX_BASIC: usize = 1024;

/// Why Basic credentials were not accepted. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    #[error("basic credentials longer than {MAX_BASIC} bytes")]
    TooLong,
    #[error("basic credentials are not base64 of `user:password`")]
    Malformed,
    #[error("wrong user or password")]
    Wrong,
}

impl BasicError {
    /// 400 for a broken header, 401 (with a challenge) for wrong credentials.
    pub fn status(&self) -> u16 {
        match self {
            BasicError::TooLong | BasicError::Malformed => 400,
            BasicError::Wrong => 401,
        }
    }
}

/// `(user, password)` of the token after `Basic `.
pub fn decode(token: &str) -> Result<(String, String), BasicError> {
    let token = token.trim();
    if token.len() > MAX_BASIC {
        return Err(BasicError::TooLong);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| BasicError::Malformed)?;
    let text = String::from_utf8(bytes).map_err(|_| BasicError::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(BasicError::Malformed)?;
    Ok((user.to_string(), password.to_string()))
}

/// Checks the token after `Basic ` against `users` of `realm`; returns the user.
pub fn verify(token: &str, users: &Users, realm: &str) -> Result<String, BasicError> {
    let (user, password) = decode(token)?;
    if users.check_password(&user, realm, &password) {
        Ok(user)
    } else {
        Err(BasicError::Wrong)
    }
}

/// The `WWW-Authenticate` value that asks for Basic (RFC 7617 §2, §2.1 charset).
pub fn challenge(realm: &str) -> String {
    format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")
}

#[cfg(test)]
mod tests {
    use super::super::users::with_entry;
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_credentials_table() {
        let users = Users::parse(&with_entry("", "alice", "tv", "p:w d").unwrap()).unwrap();
        let long = "A".repeat(MAX_BASIC + 4);
        let cases: Vec<(String, Result<String, BasicError>)> = vec![
            (b64("alice:p:w d"), Ok("alice".into())),
            (format!("  {}  ", b64("alice:p:w d")), Ok("alice".into())),
            (b64("alice:wrong"), Err(BasicError::Wrong)),
            (b64("bob:p:w d"), Err(BasicError::Wrong)),
            (b64("alice"), Err(BasicError::Malformed)),
            ("!!!".into(), Err(BasicError::Malformed)),
            (
                base64::engine::general_purpose::STANDARD.encode([0xff, b':', 0xfe]),
                Err(BasicError::Malformed),
            ),
            (long, Err(BasicError::TooLong)),
        ];
        for (token, want) in cases {
            assert_eq!(verify(&token, &users, "tv"), want, "{token:?}");
        }
        assert_eq!(
            verify(&b64("alice:p:w d"), &users, "other"),
            Err(BasicError::Wrong)
        );
        assert_eq!(BasicError::Wrong.status(), 401);
        assert_eq!(BasicError::Malformed.status(), 400);
        assert_eq!(challenge("tv"), "Basic realm=\"tv\", charset=\"UTF-8\"");
    }
}
