//! The announcement routes: the station list page, the `.nsc` station files and the `.asx`
//! announcements, served from a snapshot the station side keeps current.
//!
//! Facts followed (`docs/protocols/msb-nsc.md`, and [`crate::nsc`]'s module doc): .nsc and .asx
//! are served as `video/x-ms-asf` (IIS's default mapping, what Windows Media Player is registered
//! for) and marked `Cache-Control: no-cache` so a player never keeps a stale group or header.
//! A station whose .nsc cannot be written yet (no ASF header received) answers 503 with
//! `Retry-After: 2` rather than 404: the file will exist in a moment.
//!
//! Names are matched exactly against the percent-decoded, traversal-checked path
//! ([`Request::safe_path`]); nothing here touches a file system. A path equal to a station's
//! *name* (not one of its file names) is left to the next handler ([`Routed::NotAnnouncement`]):
//! that is how MMSH clients ask for a station (`GET /<station>` with `Pragma` directives).
//!
//! A station closed to the client ([`AnnouncementCatalog::may_serve`], its `access.watch`)
//! answers 403 for its .nsc and .asx and is left off the list page.

use super::request::Request;
use super::response::Response;
use crate::nsc::{xml_escape, ASX_CONTENT_TYPE, NSC_CONTENT_TYPE};

/// The methods the announcement routes answer.
pub const ALLOW: &str = "GET, HEAD";

/// Seconds a client should wait before asking again for a station file that is not ready.
pub const RETRY_AFTER_SECS: u32 = 2;

pub use crate::station::catalog::{AnnouncementCatalog, StationEntry};

/// What the announcement routes make of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// The answer (not yet tied to the request's version: see [`Response::for_request`]).
    Response(Response),
    /// Not an announcement path: the caller hands the request to the next handler (MMSH).
    NotAnnouncement,
}

/// Routes one request. The .nsc/.asx of a protected station are left to the session, which
/// checks credentials first ([`super::auth`]) and then calls [`route_authorized`].
pub fn route(request: &Request, catalog: &dyn AnnouncementCatalog) -> Routed {
    route_files(request, catalog, true)
}

/// Routes a request whose credentials the session has checked.
pub fn route_authorized(request: &Request, catalog: &dyn AnnouncementCatalog) -> Routed {
    route_files(request, catalog, false)
}

fn route_files(request: &Request, catalog: &dyn AnnouncementCatalog, guard: bool) -> Routed {
    let guarded = |station: &str| guard && catalog.is_protected(station);
    if request.path == "*" {
        // OPTIONS * (RFC 9110 §9.3.7) and anything else in asterisk-form.
        return Routed::Response(Response::method_not_allowed(ALLOW));
    }
    let Some(path) = request.safe_path() else {
        return Routed::Response(Response::bad_request());
    };
    if catalog.is_ops_path(path) {
        // The status pages and metrics (crate::ops::web), answered by the session.
        return Routed::NotAnnouncement;
    }
    let stations = catalog.stations();
    let readable = request.method == "GET" || request.method == "HEAD";
    let answer = |r: Response| {
        Routed::Response(if readable {
            r
        } else {
            Response::method_not_allowed(ALLOW)
        })
    };
    if path == "/" {
        let mut open = stations;
        open.retain(|s| catalog.may_serve(&s.name));
        return answer(index_page(&open));
    }
    let name = path.strip_prefix('/').unwrap_or(path);
    if let Some(s) = stations
        .iter()
        .find(|s| !s.nsc_file.is_empty() && s.nsc_file == name)
    {
        if !catalog.may_serve(&s.name) {
            return answer(forbidden());
        }
        if guarded(&s.name) {
            return Routed::NotAnnouncement;
        }
        return answer(station_file(
            s.nsc.as_deref(),
            NSC_CONTENT_TYPE,
            "station file",
        ));
    }
    if let Some(s) = stations
        .iter()
        .find(|s| !s.asx_file.is_empty() && s.asx_file == name)
    {
        if !catalog.may_serve(&s.name) {
            return answer(forbidden());
        }
        if guarded(&s.name) {
            return Routed::NotAnnouncement;
        }
        return answer(station_file(
            s.asx.as_deref(),
            ASX_CONTENT_TYPE,
            "announcement",
        ));
    }
    if stations
        .iter()
        .any(|s| !s.name.is_empty() && s.name == name)
    {
        return Routed::NotAnnouncement;
    }
    // The multicast logging agent is answered by the session (crate::http::client_log).
    if catalog.is_log_path(path) {
        return Routed::NotAnnouncement;
    }
    Routed::Response(Response::not_found())
}

/// A station file of a station closed to the client (its `access.watch`).
fn forbidden() -> Response {
    Response::text(403, "forbidden").header("Cache-Control", "no-cache")
}

fn station_file(text: Option<&str>, content_type: &str, what: &str) -> Response {
    match text {
        Some(text) => Response::new(200)
            .body(content_type, text.as_bytes())
            .header("Cache-Control", "no-cache"),
        None => Response::service_unavailable(
            RETRY_AFTER_SECS,
            &format!("the {what} is not ready yet (no stream header received)"),
        ),
    }
}

/// The station list: names, descriptions, file links and unicast URLs, all escaped.
fn index_page(stations: &[StationEntry]) -> Response {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>asfcast stations</title>\n</head>\n<body>\n<h1>Stations</h1>\n");
    if stations.is_empty() {
        h.push_str("<p>No stations are configured.</p>\n");
    }
    for s in stations {
        h.push_str("<section>\n<h2>");
        h.push_str(&xml_escape(&s.name));
        h.push_str("</h2>\n");
        if !s.description.is_empty() {
            h.push_str("<p>");
            h.push_str(&xml_escape(&s.description));
            h.push_str("</p>\n");
        }
        h.push_str("<ul>\n");
        for (file, ready, label) in [
            (&s.nsc_file, s.nsc.is_some(), "multicast station file"),
            (
                &s.asx_file,
                s.asx.is_some(),
                "announcement (multicast, then unicast)",
            ),
        ] {
            if file.is_empty() {
                continue;
            }
            h.push_str("<li><a href=\"/");
            h.push_str(&xml_escape(&crate::ops::html::path_segment(file)));
            h.push_str("\">");
            h.push_str(&xml_escape(file));
            h.push_str("</a> — ");
            h.push_str(label);
            if !ready {
                h.push_str(" (not ready yet)");
            }
            h.push_str("</li>\n");
        }
        for url in &s.urls {
            h.push_str("<li>");
            if is_player_url(url) {
                h.push_str("<a href=\"");
                h.push_str(&xml_escape(url));
                h.push_str("\">");
                h.push_str(&xml_escape(url));
                h.push_str("</a>");
            } else {
                h.push_str(&xml_escape(url));
            }
            h.push_str("</li>\n");
        }
        h.push_str("</ul>\n</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    Response::new(200)
        .body("text/html; charset=utf-8", h)
        .header("Cache-Control", "no-cache")
}

/// Only player and web URLs become links (never `javascript:` or `data:`).
fn is_player_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    [
        "mms://", "mmsh://", "mmst://", "mmsu://", "rtsp://", "rtspt://", "rtspu://", "http://",
        "https://",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestReader;

    fn demo(ready: bool) -> StationEntry {
        StationEntry {
            name: "demo".into(),
            description: "Demo <station> & \"friends\"".into(),
            nsc: ready.then(|| "[Address]\r\nName=demo\r\n".into()),
            asx: ready.then(|| "<ASX VERSION=\"3.0\">\r\n</ASX>\r\n".into()),
            nsc_file: "demo.nsc".into(),
            asx_file: "demo.asx".into(),
            urls: vec![
                "mms://10.0.0.1/demo".into(),
                "rtsp://10.0.0.1/demo".into(),
                "javascript:alert(1)".into(),
            ],
        }
    }

    fn req(line: &str) -> Request {
        RequestReader::new(8192)
            .feed(format!("{line}\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap()
            .unwrap()
    }

    fn respond(line: &str, catalog: &dyn AnnouncementCatalog) -> Response {
        match route(&req(line), catalog) {
            Routed::Response(r) => r,
            Routed::NotAnnouncement => panic!("{line}: not an announcement"),
        }
    }

    #[test]
    fn nsc_and_asx() {
        let cat = vec![demo(true)];
        let r = respond("GET /demo.nsc HTTP/1.1", &cat);
        assert_eq!(r.status, 200);
        assert_eq!(r.get_header("content-type"), Some(NSC_CONTENT_TYPE));
        assert_eq!(r.get_header("cache-control"), Some("no-cache"));
        assert_eq!(r.body, b"[Address]\r\nName=demo\r\n");
        let r = respond("GET /demo.asx HTTP/1.1", &cat);
        assert_eq!(r.status, 200);
        assert_eq!(r.get_header("content-type"), Some(ASX_CONTENT_TYPE));
        assert_eq!(r.get_header("cache-control"), Some("no-cache"));
        assert!(r.body.starts_with(b"<ASX"));
    }

    /// A catalog whose station is closed to the client asking.
    struct Closed(Vec<StationEntry>);

    impl AnnouncementCatalog for Closed {
        fn stations(&self) -> Vec<StationEntry> {
            self.0.clone()
        }
        fn may_serve(&self, station: &str) -> bool {
            station != "demo"
        }
    }

    #[test]
    fn a_closed_station_is_403_and_off_the_list() {
        let cat = Closed(vec![demo(true)]);
        for line in ["GET /demo.nsc HTTP/1.1", "GET /demo.asx HTTP/1.1"] {
            let r = respond(line, &cat);
            assert_eq!(r.status, 403, "{line}");
            assert!(!r.body.starts_with(b"[Address]") && !r.body.starts_with(b"<ASX"));
        }
        let r = respond("GET / HTTP/1.1", &cat);
        assert_eq!(r.status, 200);
        assert!(!String::from_utf8_lossy(&r.body).contains("demo.nsc"));
        // The station path itself goes on to MMSH, which refuses it its own way.
        assert_eq!(
            route(&req("GET /demo HTTP/1.1"), &cat),
            Routed::NotAnnouncement
        );
    }

    #[test]
    fn not_ready_is_503() {
        let cat = vec![demo(false)];
        for path in ["/demo.nsc", "/demo.asx"] {
            let r = respond(&format!("GET {path} HTTP/1.1"), &cat);
            assert_eq!(r.status, 503, "{path}");
            assert_eq!(r.get_header("retry-after"), Some("2"));
        }
    }

    #[test]
    fn station_name_is_left_to_mmsh() {
        let cat = vec![demo(true)];
        assert_eq!(
            route(&req("GET /demo HTTP/1.1"), &cat),
            Routed::NotAnnouncement
        );
        assert_eq!(
            route(&req("POST /demo HTTP/1.1"), &cat),
            Routed::NotAnnouncement
        );
        // A file name wins over a station name.
        let mut odd = demo(true);
        odd.name = "demo.nsc".into();
        let r = respond("GET /demo.nsc HTTP/1.1", &vec![odd]);
        assert_eq!(r.status, 200);
    }

    #[test]
    fn unknown_and_unsafe_paths() {
        let cat = vec![demo(true)];
        assert_eq!(respond("GET /other.nsc HTTP/1.1", &cat).status, 404);
        assert_eq!(respond("GET /demo.nsc/ HTTP/1.1", &cat).status, 404);
        assert_eq!(respond("GET /DEMO.NSC HTTP/1.1", &cat).status, 404);
        assert_eq!(respond("GET /../../etc/passwd HTTP/1.1", &cat).status, 400);
        assert_eq!(respond("GET /%2e%2e/demo.nsc HTTP/1.1", &cat).status, 400);
        // A catalog entry cannot be reached through a traversal either.
        let mut evil = demo(true);
        evil.nsc_file = "../../etc/passwd".into();
        let r = respond("GET /../../etc/passwd HTTP/1.1", &vec![evil]);
        assert_eq!(r.status, 400);
    }

    #[test]
    fn methods() {
        let cat = vec![demo(true)];
        for line in [
            "POST /demo.nsc HTTP/1.1",
            "PUT / HTTP/1.1",
            "DELETE /demo.asx HTTP/1.1",
            "OPTIONS * HTTP/1.1",
            "get /demo.nsc HTTP/1.1",
        ] {
            let r = respond(line, &cat);
            assert_eq!(r.status, 405, "{line}");
            assert_eq!(r.get_header("allow"), Some(ALLOW));
        }
        assert_eq!(respond("HEAD /demo.nsc HTTP/1.1", &cat).status, 200);
    }

    #[test]
    fn index_lists_and_escapes() {
        let mut second = demo(false);
        second.name = "b&w".into();
        second.nsc_file = "b&w 1.nsc".into();
        second.asx_file = String::new();
        second.urls = vec!["mms://h/b&w\"><script>".into()];
        let cat = vec![demo(true), second];
        let r = respond("GET / HTTP/1.1", &cat);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.get_header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let html = String::from_utf8(r.body).unwrap();
        assert!(html.contains("<h2>demo</h2>"), "{html}");
        assert!(html.contains("Demo &lt;station&gt; &amp; &quot;friends&quot;"));
        assert!(html.contains("<a href=\"/demo.nsc\">demo.nsc</a>"));
        assert!(html.contains("<a href=\"/demo.asx\">demo.asx</a>"));
        assert!(html.contains("<a href=\"mms://10.0.0.1/demo\">mms://10.0.0.1/demo</a>"));
        assert!(html.contains("<a href=\"rtsp://10.0.0.1/demo\">"));
        assert!(!html.contains("href=\"javascript:"), "{html}");
        assert!(html.contains("<li>javascript:alert(1)</li>"));
        assert!(html.contains("<h2>b&amp;w</h2>"));
        assert!(html.contains("<a href=\"/b%26w%201.nsc\">b&amp;w 1.nsc</a>"));
        assert!(html.contains("(not ready yet)"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("mms://h/b&amp;w&quot;&gt;&lt;script&gt;"));
        // The link the page gives resolves to the file.
        let r = respond("GET /b%26w%201.nsc HTTP/1.1", &cat);
        assert_eq!(r.status, 503);
    }

    #[test]
    fn empty_catalog_index() {
        let cat: Vec<StationEntry> = Vec::new();
        let r = respond("GET / HTTP/1.1", &cat);
        assert_eq!(r.status, 200);
        assert!(String::from_utf8(r.body)
            .unwrap()
            .contains("No stations are configured."));
        assert_eq!(respond("GET /demo HTTP/1.1", &cat).status, 404);
    }

    #[test]
    fn encode_segment() {
        assert_eq!(crate::ops::html::path_segment("a-b_c.~d"), "a-b_c.~d");
        assert_eq!(crate::ops::html::path_segment("a b/é"), "a%20b%2F%C3%A9");
    }
}
