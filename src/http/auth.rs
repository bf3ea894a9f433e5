//! Credentials on the HTTP listener for protected stations: the MMSH describe and play, the
//! plain stream (`GET /<station>`) and the station's `.nsc`/`.asx` all need them.
//!
//! Both Digest (RFC 7616, MD5, `qop=auth`; the uri checked against the request target as
//! §3.4.6 asks) and Basic (RFC 7617) are offered: no open-source player sends MMSH
//! credentials (ingest-relay-ops.md §e), so the clients here are curl (`--digest`,
//! `--basic`) and scripts. A refusal is **401** with both challenges (Digest first, the one to
//! prefer) and `Connection: close`: curl and WMP retry on a new connection, and the nonce is
//! good there because the daemon has one nonce key. A broken header is **400**.

use std::time::Instant;

use super::request::Request;
use super::response::Response;
use crate::access::digest::NonceKey;
use crate::access::gate::{self, Attempt, Schemes};
use crate::station::sink::StationView;

/// What the gate makes of a request on the HTTP listener.
#[derive(Debug)]
pub enum Checked {
    /// Not about a protected station: go on as before.
    Open,
    /// Credentials valid for a protected station; `file` when it asked for its .nsc/.asx.
    Passed { station: String, file: bool },
    /// The answer to send (401/400/503), with the reason for the log (no secret).
    Refused(Response, String),
}

/// The protected station a path names (`/<station>`, or one of its announcement files).
fn protected_station(request: &Request, stations: &dyn StationView) -> Option<(String, bool)> {
    let name = request.safe_path()?.strip_prefix('/')?;
    if stations.protection(name).is_some() {
        return Some((name.to_string(), false));
    }
    let catalog = stations.catalog();
    catalog
        .stations()
        .into_iter()
        .find(|s| {
            (!s.nsc_file.is_empty() && s.nsc_file == name)
                || (!s.asx_file.is_empty() && s.asx_file == name)
        })
        .filter(|s| catalog.is_protected(&s.name))
        .map(|s| (s.name, true))
}

/// Checks `request` when it is about a protected station.
pub fn check(
    request: &Request,
    key: Option<&NonceKey>,
    now: Instant,
    stations: &dyn StationView,
) -> Checked {
    let Some((station, file)) = protected_station(request, stations) else {
        return Checked::Open;
    };
    let Some(protection) = stations.protection(&station) else {
        return Checked::Open;
    };
    match authorize(request, &protection, key, now) {
        Ok((user, scheme)) => {
            tracing::debug!(station = %station, user = %user, scheme, "http request authorized");
            Checked::Passed { station, file }
        }
        Err(refused) => Checked::Refused(refused.0, refused.1),
    }
}

/// Checks `request`'s credentials against `protection` (Digest or Basic): the user, or the
/// answer to send (401 with both challenges, 400, or 503 without a nonce key) and the reason
/// for the log (no secret). Also what a pusher's request is checked with
/// ([`super::push`]).
pub fn authorize(
    request: &Request,
    protection: &crate::access::gate::Protection,
    key: Option<&NonceKey>,
    now: Instant,
) -> Result<(String, &'static str), Box<(Response, String)>> {
    let Some(key) = key else {
        let r = Response::text(503, "authentication is not available");
        return Err(Box::new((r, "no nonce key".into())));
    };
    let attempt = Attempt {
        method: &request.method,
        authorization: request.header("authorization"),
        now,
    };
    let target = &request.target;
    match gate::authorize(protection, Schemes::DigestOrBasic, key, attempt, |u| {
        u == target.as_str()
    }) {
        Ok(a) => Ok((a.user.to_string(), a.scheme)),
        Err(refusal) => {
            let mut r = if refusal.status == 401 {
                Response::text(401, "credentials required")
            } else {
                Response::bad_request()
            };
            for c in &refusal.challenges {
                r = r.header("WWW-Authenticate", c);
            }
            let mut r = r.for_request(request);
            r.keep_alive = false;
            Err(Box::new((r, refusal.reason)))
        }
    }
}
