//! Encoder push on the HTTP listener ([MS-WMHTTP]), sans-I/O: an encoder POSTs its stream to
//! `http://<box>/<station>` and the station's live input gets the header and packets.
//!
//! Two forms are taken (facts: `docs/protocols/ingest-relay-ops.md` §a.1, `rtsp-wmsp.md` §4):
//!
//! - **[MS-WMHTTP] proper.** PushSetup (`Content-Type: application/x-wms-pushsetup`, small
//!   `Content-Length` body) is answered `204` with `Set-Cookie: push-id=<random>` and
//!   `Server: Cougar/9.x` (the encoder checks the token, §3.1.5.2); the connection stays open.
//!   PushStart (`application/x-wms-pushstart`, `Cookie: push-id=<id>`, `Content-Length:
//!   2147483647`) is acted on as soon as its head arrives; its body is consumed as it streams
//!   and the response (`204` + the cookie) goes out only when the declared body has been read
//!   (§3.2.5.2). An encoder whose connection dropped resumes with a new PushStart carrying
//!   the same push-id within the Idle timeout (§3.2.7.1); PushSetup's claim waits
//!   [`INACTIVITY_TIMEOUT`] for its PushStart, an open PushStart [`IDLE_TIMEOUT`] for its
//!   next `$H`/`$D`/`$C` (§3.2.2).
//! - **The lenient form** real Linux encoders send: FFmpeg `-f asf_stream -content_type
//!   application/x-wms-pushstart http://box/station` is one `Transfer-Encoding: chunked` POST
//!   without PushSetup or cookie. It is taken as a PushStart that cannot resume. (Without
//!   `-content_type` FFmpeg sends no type at all; such a chunked POST is not taken for a push
//!   and keeps the listener's answer to chunked uploads, 501.)
//!
//! The chunks inside the body are [`framing`]; the body's own framing is [`body`]. What the
//! HTTP session does with a push is [`ingest`]. Pushers may need credentials (the station's
//! `source.auth`: Digest or Basic, checked like players' by [`crate::access::gate`]); FFmpeg
//! with `user:pass@` in the URL sends `Expect: 100-continue` and waits: it gets `401` and
//! retries with credentials, or `100 Continue` and sends the body.

pub mod body;
pub mod framing;
pub mod ingest;

use std::time::Duration;

use super::request::Request;
use super::response::Response;

/// The `Server` token an encoder expects from a Windows Media server.
pub const SERVER_TOKEN: &str = "Cougar/9.01.01.3814";
/// [MS-WMHTTP] §3.2.2 Idle-Timeout: a PushStart that brings no `$H`/`$D`/`$C` this long, or
/// a dropped encoder that does not resume within it, ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// [MS-WMHTTP] §3.2.2 Inactivity-Timeout: between PushSetup/PushStart transactions.
pub const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(120);

/// Which push request a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRequest {
    /// PushSetup: creates the session, answered at once.
    Setup,
    /// PushStart (or FFmpeg's chunked POST): the stream itself.
    Start,
}

/// The media type of a request, lower case, without parameters.
fn media_type(request: &Request) -> Option<String> {
    request.header("content-type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

/// Whether `request` is a push, and which.
pub fn classify(request: &Request) -> Option<PushRequest> {
    if request.method != "POST" {
        return None;
    }
    match media_type(request).as_deref() {
        Some("application/x-wms-pushsetup") => Some(PushRequest::Setup),
        Some("application/x-wms-pushstart") => Some(PushRequest::Start),
        _ => None,
    }
}

/// Whether the request's body is a stream the request reader must leave unread (a PushStart:
/// its body is handed to the push session as it arrives).
pub fn streams_body(request: &Request) -> bool {
    classify(request) == Some(PushRequest::Start)
}

/// The `push-id` the request's `Cookie` carries ("0" and absent are None: a new session).
pub fn push_id(request: &Request) -> Option<String> {
    request
        .headers_named("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("push-id"))
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v != "0")
}

/// A push-id from 128 random bits (alphanumeric, never "0": §3.2.3).
pub fn new_push_id(random: u128) -> String {
    format!("{random:032x}")
}

/// A push answer: `Server: Cougar`, no caching, the push-id cookie.
pub fn answer(status: u16, push_id: Option<&str>) -> Response {
    let mut r = Response::new(status)
        .header("Server", SERVER_TOKEN)
        .header("Cache-Control", "no-cache")
        .header(
            "Pragma",
            &format!("no-cache, timeout={}", IDLE_TIMEOUT.as_millis()),
        );
    if let Some(id) = push_id {
        r = r.header("Set-Cookie", &format!("push-id={id}"));
    }
    r
}

/// A refusal: `status` with the reason as text, closing.
pub fn refusal(status: u16, reason: &str) -> Response {
    let mut r = Response::text(status, reason).header("Server", SERVER_TOKEN);
    r.keep_alive = false;
    r
}

#[cfg(test)]
mod tests;
