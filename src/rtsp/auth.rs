//! Digest authentication of RTSP requests for protected stations (RFC 2326 §14.3/§15 use
//! HTTP authentication as is; RFC 7616 for Digest; [MS-RTSP] 3.2.7.11 decides at DESCRIBE).
//!
//! DESCRIBE, SETUP and PLAY of a protected station must each carry valid Digest credentials
//! (FFmpeg and GStreamer resend `Authorization` on every request once challenged); without
//! them the answer is **401** with `WWW-Authenticate: Digest realm, nonce, qop="auth",
//! algorithm=MD5` (and `stale=true` for an expired nonce) and nothing of the station: no SDP,
//! no session, no media. A broken header gets **400**. Keep-alives (OPTIONS, GET_PARAMETER)
//! and TEARDOWN need none: they reveal nothing and play nothing. RTSP offers no Basic.

use std::time::Instant;

use rtsp_types::{headers, Request, Url};

use crate::access::digest::NonceKey;
use crate::access::gate::{self, Attempt, Schemes};
use crate::station::sink::StationView;

use super::message::{header, Reply};

/// The URL without user information, for logs.
pub fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() || !u.username().is_empty() {
        let _ = u.set_password(None);
        let _ = u.set_username("");
    }
    u.to_string()
}

/// The station a request is about: its URL's first path segment, else the session's.
fn station_of<'a>(req: &'a Request<Vec<u8>>, session_station: Option<&'a str>) -> Option<String> {
    let from_url = req
        .request_uri()
        .and_then(|u| u.path_segments())
        .and_then(|mut s| s.find(|p| !p.is_empty()).map(str::to_string));
    from_url.or_else(|| session_station.map(str::to_string))
}

/// Whether a Digest `uri` names the request's target: the same URL (compared parsed, so
/// case of scheme and host and default forms do not matter) or its path.
fn uri_matches(req: &Request<Vec<u8>>, uri: &str) -> bool {
    let Some(target) = req.request_uri() else {
        return uri == "*";
    };
    if uri == target.as_str() || uri == target.path() {
        return true;
    }
    Url::parse(uri).is_ok_and(|u| {
        u.scheme() == target.scheme()
            && u.host_str() == target.host_str()
            && u.port() == target.port()
            && u.path().trim_end_matches('/') == target.path().trim_end_matches('/')
    })
}

/// Checks a DESCRIBE/SETUP/PLAY: Ok for an open station or valid credentials, else the reply.
pub fn authorize_request(
    req: &Request<Vec<u8>>,
    session_station: Option<&str>,
    key: Option<&NonceKey>,
    now: Instant,
    stations: &dyn StationView,
) -> Result<(), Reply> {
    let Some(station) = station_of(req, session_station) else {
        return Ok(());
    };
    let Some(protection) = stations.protection(&station) else {
        return Ok(());
    };
    let Some(key) = key else {
        // No nonce key handed in: the station cannot be checked, so it is not served.
        return Err(Reply::new(503).reason("Authentication Unavailable"));
    };
    let method: &str = req.method().into();
    let attempt = Attempt {
        method,
        authorization: header(req, &headers::AUTHORIZATION),
        now,
    };
    match gate::authorize(&protection, Schemes::Digest, key, attempt, |u| {
        uri_matches(req, u)
    }) {
        Ok(a) => {
            tracing::debug!(station = %station, user = %a.user, scheme = a.scheme, method, "rtsp request authorized");
            Ok(())
        }
        Err(refusal) => {
            tracing::debug!(station = %station, reason = %refusal.reason, "rtsp credentials refused");
            let mut r = Reply::new(refusal.status);
            for c in refusal.challenges {
                r = r.header(headers::WWW_AUTHENTICATE, c);
            }
            Err(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtsp_types::{Method, Version};

    fn req(uri: &str) -> Request<Vec<u8>> {
        Request::builder(Method::Describe, Version::V1_0)
            .request_uri(Url::parse(uri).unwrap())
            .build(Vec::new())
    }

    #[test]
    fn digest_uri_must_name_the_request_target() {
        let r = req("rtsp://127.0.0.1:5540/demo");
        for (uri, ok) in [
            ("rtsp://127.0.0.1:5540/demo", true),
            ("RTSP://127.0.0.1:5540/demo/", true),
            ("/demo", true),
            ("rtsp://127.0.0.1:5540/other", false),
            ("rtsp://127.0.0.1:554/demo", false),
            ("rtsp://10.0.0.1:5540/demo", false),
            ("", false),
            ("not a url", false),
        ] {
            assert_eq!(uri_matches(&r, uri), ok, "{uri}");
        }
        assert_eq!(station_of(&r, None).as_deref(), Some("demo"));
    }

    #[test]
    fn logged_urls_carry_no_user_information() {
        let u = Url::parse("rtsp://alice:s3cret@127.0.0.1:5540/demo").unwrap();
        let t = redacted(&u);
        assert!(!t.contains("s3cret") && !t.contains("alice"), "{t}");
        assert_eq!(t, "rtsp://127.0.0.1:5540/demo");
    }
}
