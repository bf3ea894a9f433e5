//! The HTTP side of client logging ([MS-WMLOG]): what a player POSTs about its playback, and
//! the multicast logging agent. Pure: a request in, a response and maybe a
//! [`ClientReport`] out; the session keeps the reports and the shell writes them
//! (`crate::net::client_log`). Facts: `docs/protocols/ingest-relay-ops.md` §d.2.
//!
//! - **WMSP Log request** ([MS-WMSP] §2.2.2.4, §3.2.5.11): a `POST` to the station path with
//!   `Content-Type: application/x-wms-LogStats` and an XML body, or with a
//!   `Pragma: log-line=<line>` field (alone on its `Pragma` line) and no body; answered
//!   `204 No Content` with `Pragma: no-cache` (the spec example). Other POSTs
//!   (`x-wms-sendevent`) are acknowledged the same way and not logged.
//! - **Multicast logging agent** ([MS-WMLOG] §2.3, §3.6): the `.nsc` `Log URL`. A player first
//!   `GET`s it and only posts when the body carries the ISAPI banner
//!   ([`ISAPI_BANNER`]); then `POST`s `MX_STATS_LogLine: <TAB><line>` (`text/plain`). The
//!   notes give `200 OK` for the post; a `204` is answered here, like the WMSP log (a 2xx
//!   without a body either way).
//!
//! A body that is refused (too large, XML markup beyond the subset, malformed, non-numeric
//! counters, a second line) gets 4xx ([`LogError::status`]) and one log line.

use tracing::warn;

use super::mmsh;
use super::request::Request;
use super::response::Response;
use crate::ops::wmlog_client::{
    is_content_type, parse_log_line, parse_log_stats, parse_mx_stats, ClientForm, ClientReport,
    LogError, ISAPI_BANNER, LOG_STATS,
};

/// The agent's methods.
const AGENT_ALLOW: &str = "GET, HEAD, POST";

/// The answer to a log request and what it reported.
#[derive(Debug)]
pub struct Logged {
    pub response: Response,
    pub report: Option<ClientReport>,
}

/// A `POST` to a station path (MMS over HTTP).
pub fn station_post(request: &Request, station: &str) -> Logged {
    let parsed = if request
        .header("content-type")
        .is_some_and(|t| is_content_type(t, LOG_STATS))
    {
        Some(parse_log_stats(&request.body).map(|r| (ClientForm::LogStats, r)))
    } else {
        log_line(request).map(|l| parse_log_line(l).map(|r| (ClientForm::LogLine, r)))
    };
    match parsed {
        None => Logged {
            response: acknowledge(request),
            report: None,
        },
        Some(Ok((form, record))) => Logged {
            response: acknowledge(request),
            report: Some(ClientReport {
                form,
                record,
                station: Some(station.to_string()),
                client_id: request
                    .pragma("client-id")
                    .flatten()
                    .and_then(|id| id.parse().ok()),
            }),
        },
        Some(Err(e)) => refused(request, &e),
    }
}

/// A request for the multicast logging agent's path.
pub fn agent(request: &Request) -> Logged {
    match request.method.as_str() {
        "GET" | "HEAD" => Logged {
            response: Response::new(200)
                .body("text/html", ISAPI_BANNER)
                .header("Cache-Control", "no-cache")
                .for_request(request),
            report: None,
        },
        "POST" => match parse_mx_stats(&request.body) {
            Ok(record) => Logged {
                response: acknowledge(request),
                report: Some(ClientReport {
                    form: ClientForm::Multicast,
                    record,
                    station: None,
                    client_id: None,
                }),
            },
            Err(e) => refused(request, &e),
        },
        _ => Logged {
            response: Response::method_not_allowed(AGENT_ALLOW).for_request(request),
            report: None,
        },
    }
}

/// The `Pragma: log-line=` value, from the raw field (the line may hold commas).
fn log_line(request: &Request) -> Option<&str> {
    request.headers_named("pragma").find_map(|v| {
        let v = v.trim();
        v.get(..9)
            .filter(|p| p.eq_ignore_ascii_case("log-line="))
            .and_then(|_| v.get(9..))
    })
}

fn acknowledge(request: &Request) -> Response {
    Response::new(204)
        .header("Server", mmsh::SERVER)
        .header("Cache-Control", "no-cache")
        .header("Pragma", "no-cache")
        .for_request(request)
}

fn refused(request: &Request, e: &LogError) -> Logged {
    warn!(path = %request.path, error = %e, status = e.status(), "client log refused");
    Logged {
        response: Response::text(e.status(), &e.to_string()).for_request(request),
        report: None,
    }
}
