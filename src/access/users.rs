//! The users file of protected stations: one `user:realm:HA1` line per user and realm, the
//! format of Apache's `htdigest`, written by `asfcast passwd`.
//!
//! Why HA1 and not a slow password hash: Digest (RFC 7616 §3.4.2, RFC 2617 §3.2.2.2) needs
//! `HA1 = MD5(user ":" realm ":" password)` on the server to check a response, and MD5 is the
//! only Digest algorithm the players speak (FFmpeg 5.1 and GStreamer 1.22 implement MD5 only).
//! A server that kept a bcrypt/argon2 hash could not check Digest at all; one that kept the
//! password itself would hold more than it needs. HA1 is password-equivalent *for this realm
//! only*, so the file is written mode 0600 and its contents never leave the process (the
//! [`Users`] `Debug` prints counts, not hashes). Basic (RFC 7617) is served from the same
//! entry: the server recomputes HA1 from the password the client sent and compares.
//!
//! Format: empty lines and lines starting with `#` are skipped; the user is everything before
//! the first `:`, the HA1 (32 hex digits) everything after the last one, the realm what lies
//! between (so a realm may contain `:`). A user may not be empty nor contain `:`.

use std::fmt;

use md5::{Digest as _, Md5};

use super::same_secret;

/// An MD5 digest (HA1).
pub type Ha1 = [u8; 16];

/// `MD5(user:realm:password)` (RFC 7616 §3.4.2, A1 for `algorithm=MD5`).
pub fn ha1(user: &str, realm: &str, password: &str) -> Ha1 {
    let mut h = Md5::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex16(text: &str) -> Option<Ha1> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Why a users file (or a new entry) is unusable. The file's text is never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    #[error("line {line}, column {column}: {what}")]
    BadLine {
        line: usize,
        column: usize,
        what: &'static str,
    },
    #[error("the users file has no `user:realm:HA1` line")]
    Empty,
    #[error("a user name must be 1–255 characters without `:` or control characters")]
    BadUser,
    #[error("a realm must be 1–255 characters without `\"`, `\\` or control characters")]
    BadRealm,
}

/// One user of one realm.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    user: String,
    realm: String,
    ha1: Ha1,
}

/// The users of a users file. Holds password equivalents: `Debug` shows only how many.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Users {
    entries: Vec<Entry>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("entries", &self.entries.len())
            .field("ha1", &"<redacted>")
            .finish()
    }
}

/// A user name the file and the headers can carry.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 255
        && !user.contains(':')
        && !user.chars().any(char::is_control)
}

/// A realm that can be written inside a quoted-string without escapes.
pub fn valid_realm(realm: &str) -> bool {
    !realm.is_empty()
        && realm.len() <= 255
        && !realm.contains(['"', '\\'])
        && !realm.chars().any(char::is_control)
}

impl Users {
    /// Parses a users file's text.
    pub fn parse(text: &str) -> Result<Users, UsersError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_end_matches('\r');
            let trimmed = l.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let bad = |column: usize, what| UsersError::BadLine { line, column, what };
            let (Some(first), Some(last)) = (l.find(':'), l.rfind(':')) else {
                return Err(bad(1, "expected `user:realm:HA1`"));
            };
            if first == last {
                return Err(bad(
                    first + 1,
                    "expected `user:realm:HA1` (one `:` missing)",
                ));
            }
            let user = l.get(..first).unwrap_or_default();
            let realm = l.get(first + 1..last).unwrap_or_default();
            let hash = l.get(last + 1..).unwrap_or_default().trim();
            if !valid_user(user) {
                return Err(bad(1, "empty or unusable user name"));
            }
            if !valid_realm(realm) {
                return Err(bad(first + 2, "empty or unusable realm"));
            }
            let Some(ha1) = unhex16(hash) else {
                return Err(bad(last + 2, "the HA1 must be 32 hex digits"));
            };
            entries.push(Entry {
                user: user.to_string(),
                realm: realm.to_string(),
                ha1,
            });
        }
        if entries.is_empty() {
            return Err(UsersError::Empty);
        }
        Ok(Users { entries })
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none (never, for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any entry is of `realm` (a config whose realm no user has is likely a typo).
    pub fn has_realm(&self, realm: &str) -> bool {
        self.entries.iter().any(|e| e.realm == realm)
    }

    /// The HA1 of `user` in `realm`.
    pub fn ha1(&self, user: &str, realm: &str) -> Option<&Ha1> {
        self.entries
            .iter()
            .find(|e| e.user == user && e.realm == realm)
            .map(|e| &e.ha1)
    }

    /// Whether `password` is `user`'s in `realm` (Basic): HA1 recomputed, compared in
    /// constant time. An unknown user costs the same MD5 as a known one.
    pub fn check_password(&self, user: &str, realm: &str, password: &str) -> bool {
        let given = ha1(user, realm, password);
        match self.ha1(user, realm) {
            Some(stored) => same_secret(stored, &given),
            None => {
                let _ = same_secret(&[0u8; 16], &given);
                false
            }
        }
    }
}

/// The file `text` with `user`'s entry for `realm` set to `password` (replaced in place, or
/// appended); other lines are kept as they are.
pub fn with_entry(
    text: &str,
    user: &str,
    realm: &str,
    password: &str,
) -> Result<String, UsersError> {
    if !valid_user(user) {
        return Err(UsersError::BadUser);
    }
    if !valid_realm(realm) {
        return Err(UsersError::BadRealm);
    }
    let new_line = format!("{user}:{realm}:{}", hex(&ha1(user, realm, password)));
    let prefix = format!("{user}:{realm}:");
    let mut out = String::with_capacity(text.len() + new_line.len() + 1);
    let mut replaced = false;
    for l in text.lines() {
        let is_it = l.starts_with(&prefix) && !l[prefix.len()..].contains(':');
        if is_it && !replaced {
            out.push_str(&new_line);
            replaced = true;
        } else if !is_it {
            out.push_str(l);
        } else {
            continue;
        }
        out.push('\n');
    }
    if !replaced {
        out.push_str(&new_line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_is_the_rfc_2617_a1_digest() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / Circle Of Life.
        assert_eq!(
            hex(&ha1("Mufasa", "testrealm@host.com", "Circle Of Life")),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn parses_entries_and_refuses_bad_lines_with_positions() {
        let u = Users::parse(
            "# users\n\nalice:asfcast:939e7578ed9e3c518a452acee763bce9\nbob:a:b:c:00000000000000000000000000000000\r\n",
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.ha1("alice", "asfcast").is_some());
        assert!(u.ha1("bob", "a:b:c").is_some());
        assert!(u.ha1("alice", "other").is_none());
        assert!(u.has_realm("asfcast"));
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("939e"), "{dbg}");

        for (text, want) in [
            ("", UsersError::Empty),
            ("# only\n", UsersError::Empty),
            (
                "alice\n",
                UsersError::BadLine {
                    line: 1,
                    column: 1,
                    what: "expected `user:realm:HA1`",
                },
            ),
            (
                "x:y:z:00\n",
                UsersError::BadLine {
                    line: 1,
                    column: 7,
                    what: "the HA1 must be 32 hex digits",
                },
            ),
            (
                ":r:00000000000000000000000000000000",
                UsersError::BadLine {
                    line: 1,
                    column: 1,
                    what: "empty or unusable user name",
                },
            ),
            (
                "u::00000000000000000000000000000000",
                UsersError::BadLine {
                    line: 1,
                    column: 3,
                    what: "empty or unusable realm",
                },
            ),
            (
                "u:r:0000000000000000000000000000000g",
                UsersError::BadLine {
                    line: 1,
                    column: 5,
                    what: "the HA1 must be 32 hex digits",
                },
            ),
            (
                "u:r:é00000000000000000000000000000",
                UsersError::BadLine {
                    line: 1,
                    column: 5,
                    what: "the HA1 must be 32 hex digits",
                },
            ),
        ] {
            assert_eq!(Users::parse(text), Err(want), "{text:?}");
        }
        assert!(matches!(
            Users::parse("a:r:00000000000000000000000000000000\nbad\n"),
            Err(UsersError::BadLine { line: 2, .. })
        ));
    }

    #[test]
    fn basic_passwords_are_checked_against_ha1() {
        let text = with_entry("", "alice", "asfcast", "s3cret").unwrap();
        let u = Users::parse(&text).unwrap();
        assert!(u.check_password("alice", "asfcast", "s3cret"));
        assert!(!u.check_password("alice", "asfcast", "s3cret "));
        assert!(!u.check_password("alice", "other", "s3cret"));
        assert!(!u.check_password("mallory", "asfcast", "s3cret"));
    }

    #[test]
    fn entries_are_replaced_or_appended_and_other_lines_kept() {
        let t = with_entry(
            "# keep\nbob:r:00000000000000000000000000000000\n",
            "alice",
            "r",
            "1",
        )
        .unwrap();
        let t = with_entry(&t, "alice", "r", "2").unwrap();
        let t = with_entry(&t, "alice", "r2", "3").unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(lines[0], "# keep");
        let u = Users::parse(&t).unwrap();
        assert!(u.check_password("alice", "r", "2"));
        assert!(!u.check_password("alice", "r", "1"));
        assert!(u.check_password("alice", "r2", "3"));
        assert_eq!(with_entry("", "a:b", "r", "p"), Err(UsersError::BadUser));
        assert_eq!(with_entry("", "", "r", "p"), Err(UsersError::BadUser));
        assert_eq!(with_entry("", "a", "r\"", "p"), Err(UsersError::BadRealm));
    }
}
