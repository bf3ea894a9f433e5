//! The source URL of a pull station: `mmsh://host[:port]/path` or `http://host[:port]/path`
//! (both are MMS over HTTP; port 80 when none is given). `mms://` is refused: asfcast pulls
//! over HTTP only.

use std::fmt;

/// Longest URL accepted.
const MAX_URL: usize = 2048;

/// Why a pull URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not an mmsh:// or http:// URL")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` has a bad port")]
    Port(String),
    #[error("`{0}` contains spaces or control characters, or is longer than {MAX_URL} bytes")]
    Characters(String),
    #[error("`{0}` carries a user name or password; pull sources take none")]
    UserInfo(String),
}

/// A parsed pull URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl PullUrl {
    pub fn parse(url: &str) -> Result<PullUrl, UrlError> {
        if url.len() > MAX_URL || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Characters(url.escape_debug().to_string()));
        }
        let rest = ["mmsh://", "http://"]
            .iter()
            .find_map(|s| {
                url.get(..s.len())
                    .filter(|p| p.eq_ignore_ascii_case(s))
                    .map(|_| &url[s.len()..])
            })
            .ok_or_else(|| UrlError::Scheme(url.to_string()))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(UrlError::UserInfo(url.to_string()));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::NoHost(url.to_string()))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_string()));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| UrlError::Port(url.to_string()))?,
        };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(PullUrl {
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host:port` as the `Host` header and the connect call want it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for PullUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = |u: &str| PullUrl::parse(u).unwrap_or_else(|e| panic!("{u}: {e}"));
        let u = ok("mmsh://127.0.0.1:8080/live");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/live")
        );
        let u = ok("HTTP://encoder");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("encoder", 80, "/")
        );
        let u = ok("http://[::1]:81/a?b=c");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 81, "/a?b=c")
        );
        assert_eq!(u.authority(), "[::1]:81");
        assert_eq!(ok("http://h?x").path, "/?x");
        for bad in [
            "mms://h/x",
            "rtsp://h/x",
            "http:///x",
            "http://h:0/x",
            "http://h:99999/x",
            "http://u:p@h/x",
            "http://h/a b",
            "http://[::1/x",
        ] {
            assert!(PullUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
