//! The router as a table: requests in, status (and action) out; then the auth cases.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::http::RequestReader;
use crate::ops::{ClientStatus, Snapshot, StationStatus};
use crate::station::sink::ClientInfo;

fn request(raw: &str) -> Request {
    match RequestReader::new(1 << 20).feed(raw.as_bytes()) {
        Ok(Some(r)) => r,
        other => panic!("test request did not parse: {other:?}"),
    }
}

fn get(method: &str, target: &str, extra: &str) -> Request {
    request(&format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
    ))
}

fn snapshot() -> Snapshot {
    let station = |name: &str| StationStatus {
        name: name.to_string(),
        description: format!("{name} station"),
        source: SourceState::Playing {
            origin: "a.asf".into(),
        },
        bitrate: 64_000,
        multicast: Some("239.1.1.1:5000".into()),
        pacing: None,
        counters: Default::default(),
        urls: vec![format!("http://127.0.0.1:8080/{name}")],
        nsc_file: None,
        asx_file: format!("{name}.asx"),
    };
    Snapshot {
        uptime: Duration::from_secs(10),
        stations: vec![station("demo"), station("news")],
        clients: vec![ClientStatus {
            id: 7,
            peer: "127.0.0.1:5555".parse().unwrap_or_else(|_| panic!()),
            connected: Duration::from_secs(3),
            info: ClientInfo {
                protocol: "mmsh",
                transport: "http",
                station: Some("demo".into()),
                user_agent: Some("NSPlayer/4.1".into()),
                playing: true,
                packets: 10,
                bytes: 12_345,
                skips: 1,
                skipped: 4,
                client_id: None,
                thin_steps: 2,
            },
        }],
        ops: Default::default(),
    }
}

enum Want {
    Status(u16),
    Act(Action),
}

fn run(req: &Request, creds: &Credentials, stopped: &BTreeSet<String>) -> Routed {
    let snap = snapshot();
    route(
        req,
        creds,
        &ApiView {
            snapshot: &snap,
            stopped,
        },
    )
}

fn status_of(r: &Routed) -> Option<u16> {
    match r {
        Routed::Respond(r) | Routed::Refuse { response: r, .. } => Some(r.status),
        Routed::Act(_) => None,
    }
}

fn body_of(r: &Routed) -> serde_json::Value {
    match r {
        Routed::Respond(r) | Routed::Refuse { response: r, .. } => {
            serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}"))
        }
        Routed::Act(a) => panic!("action {a:?}"),
    }
}

#[test]
fn the_route_table() {
    let table: Vec<(&str, &str, Want)> = vec![
        ("GET", "/v1/stations", Want::Status(200)),
        ("GET", "/v1/stations/demo", Want::Status(200)),
        ("GET", "/v1/stations/nope", Want::Status(404)),
        ("GET", "/v1/clients", Want::Status(200)),
        ("DELETE", "/v1/clients/7", Want::Act(Action::Disconnect(7))),
        ("DELETE", "/v1/clients/8", Want::Status(404)),
        ("DELETE", "/v1/clients/x7", Want::Status(400)),
        (
            "DELETE",
            "/v1/clients/99999999999999999999999",
            Want::Status(400),
        ),
        ("GET", "/v1/clients/7", Want::Status(405)),
        (
            "POST",
            "/v1/stations/demo/stop",
            Want::Act(Action::StopStation("demo".into())),
        ),
        (
            "POST",
            "/v1/stations/demo/start",
            Want::Act(Action::StartStation("demo".into())),
        ),
        ("POST", "/v1/stations/nope/stop", Want::Status(404)),
        ("GET", "/v1/stations/demo/stop", Want::Status(405)),
        ("POST", "/v1/stations/demo/pause", Want::Status(404)),
        ("POST", "/v1/reload", Want::Act(Action::Reload)),
        ("GET", "/v1/reload", Want::Status(405)),
        ("POST", "/v1/stations", Want::Status(405)),
        ("GET", "/", Want::Status(404)),
        ("GET", "/v2/stations", Want::Status(404)),
        ("GET", "/v1/stations/", Want::Status(400)),
        ("GET", "/v1/", Want::Status(404)),
        // Traversal and odd encodings.
        ("GET", "/v1/../v1/stations", Want::Status(400)),
        ("GET", "/v1/stations/%2e%2e", Want::Status(400)),
        ("GET", "/v1/stations/de%6do", Want::Status(400)),
        ("GET", "/v1/stations/a%2fb", Want::Status(400)),
        ("GET", "/v1/stations/a\\b", Want::Status(400)),
        ("GET", "/v1/stations/d.emo", Want::Status(400)),
    ];
    let open = Credentials::open();
    let none = BTreeSet::new();
    for (method, target, want) in table {
        let r = run(&get(method, target, ""), &open, &none);
        match (want, &r) {
            (Want::Status(s), _) => {
                assert_eq!(status_of(&r), Some(s), "{method} {target}: {r:?}")
            }
            (Want::Act(a), Routed::Act(got)) => assert_eq!(&a, got, "{method} {target}"),
            (Want::Act(a), other) => panic!("{method} {target}: wanted {a:?}, got {other:?}"),
        }
    }
}

#[test]
fn refusals_say_why_and_405_says_allow() {
    let r = run(
        &get("GET", "/v1/reload", ""),
        &Credentials::open(),
        &BTreeSet::new(),
    );
    let Routed::Refuse { response, reason } = r else {
        panic!("{r:?}")
    };
    assert_eq!(response.get_header("allow"), Some("POST"));
    assert_eq!(reason, "method not allowed");
}

#[test]
fn stations_and_clients_as_json() {
    let mut stopped = BTreeSet::new();
    stopped.insert("news".to_string());
    let b = body_of(&run(
        &get("GET", "/v1/stations", ""),
        &Credentials::open(),
        &stopped,
    ));
    let s = &b["stations"];
    assert_eq!(s[0]["name"], "demo");
    assert_eq!(s[0]["state"], "playing");
    assert_eq!(s[0]["origin"], "a.asf");
    assert_eq!(s[0]["bitrate"], 64_000);
    assert_eq!(s[0]["multicast"], "239.1.1.1:5000");
    assert_eq!(s[0]["clients"]["mmsh"], 1);
    assert_eq!(s[0]["clients"]["total"], 1);
    assert_eq!(s[0]["counters"]["packets"], 0);
    assert_eq!(s[1]["state"], "stopped");
    let b = body_of(&run(
        &get("GET", "/v1/clients", ""),
        &Credentials::open(),
        &stopped,
    ));
    let c = &b["clients"][0];
    assert_eq!(c["id"], 7);
    assert_eq!(c["peer"], "127.0.0.1:5555");
    assert_eq!(c["protocol"], "mmsh");
    assert_eq!(c["transport"], "http");
    assert_eq!(c["station"], "demo");
    assert_eq!(c["user_agent"], "NSPlayer/4.1");
    assert_eq!(c["bytes"], 12_345);
    assert_eq!(c["skips"], 1);
    assert_eq!(c["connected_seconds"], 3);
}

#[test]
fn auth_cases() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let creds = Credentials::from_texts(Some("s3cret\n"), Some("# ops\nops:pw\nalice:a:b\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cases: Vec<(String, u16)> = vec![
        (String::new(), 401),
        ("Authorization: Bearer s3cret\r\n".into(), 200),
        ("Authorization: bearer   s3cret\r\n".into(), 200),
        ("Authorization: Bearer s3cre\r\n".into(), 401),
        ("Authorization: Bearer s3cretX\r\n".into(), 401),
        ("Authorization: Bearer\r\n".into(), 401),
        (format!("Authorization: Basic {}\r\n", b64("ops:pw")), 200),
        // The password may hold a colon.
        (
            format!("Authorization: Basic {}\r\n", b64("alice:a:b")),
            200,
        ),
        (format!("Authorization: Basic {}\r\n", b64("ops:nope")), 401),
        (
            format!("Authorization: Basic {}\r\n", b64("nobody:pw")),
            401,
        ),
        ("Authorization: Basic !!!\r\n".into(), 401),
        ("Authorization: Digest x\r\n".into(), 401),
    ];
    for (header, want) in cases {
        let r = run(
            &get("GET", "/v1/stations", &header),
            &creds,
            &BTreeSet::new(),
        );
        assert_eq!(status_of(&r), Some(want), "{header:?}");
        if want == 401 {
            let Routed::Refuse { response, reason } = r else {
                panic!()
            };
            let challenges: Vec<&str> = response
                .headers
                .iter()
                .filter(|(n, _)| n == "WWW-Authenticate")
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(
                challenges,
                [
                    "Bearer realm=\"asfcast\"",
                    "Basic realm=\"asfcast\", charset=\"UTF-8\""
                ]
            );
            assert_eq!(response.reason, "Unauthorized");
            // The log reason never carries the secret that was tried.
            assert!(!reason.contains("s3cre"), "{reason}");
        }
    }
    // Credentials come before the path: an unknown path without them is 401, not 404.
    let r = run(&get("GET", "/nope/../x", ""), &creds, &BTreeSet::new());
    assert_eq!(status_of(&r), Some(401));
    // Only a token: only the Bearer challenge.
    let token_only = Credentials::from_texts(Some("t"), None).unwrap_or_else(|e| panic!("{e}"));
    let Routed::Refuse { response, .. } = run(
        &get("GET", "/v1/stations", ""),
        &token_only,
        &BTreeSet::new(),
    ) else {
        panic!()
    };
    assert_eq!(
        response.get_header("www-authenticate"),
        Some("Bearer realm=\"asfcast\"")
    );
}

#[test]
fn credentials_files_are_checked_and_never_printed() {
    assert_eq!(
        Credentials::from_texts(Some("\n"), None).err(),
        Some(CredentialsError::EmptyToken)
    );
    assert_eq!(
        Credentials::from_texts(None, Some("# nobody\n")).err(),
        Some(CredentialsError::NoUsers)
    );
    assert_eq!(
        Credentials::from_texts(None, Some("ops:pw\nbroken\n")).err(),
        Some(CredentialsError::BadLine { line: 2 })
    );
    assert!(!Credentials::open().required());
    let c =
        Credentials::from_texts(Some("s3cret"), Some("ops:pw")).unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("pw"),
        "{debug}"
    );
}

#[test]
fn check_reports_the_loaders_errors_with_positions() {
    let body = "name: demo\nsource:\n  type: playlist\n  files: [a.asf]\nmulticast:\n  group: 10.0.0.1\n  port: 5000\n";
    let req = request(&format!(
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let b = body_of(&run(&req, &Credentials::open(), &BTreeSet::new()));
    assert_eq!(b["ok"], false);
    assert_eq!(b["kind"], "station");
    let e = &b["errors"][0];
    assert_eq!(e["file"], "<body>");
    assert_eq!(e["line"], 6);
    assert_eq!(e["column"], 10);
    assert_eq!(e["field"], "multicast.group");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a multicast address")),
        "{e}"
    );

    let good = "name: ok\nsource: {type: playlist, files: [a.asf]}\n";
    let req = request(&format!(
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{good}",
        good.len()
    ));
    let b = body_of(&run(&req, &Credentials::open(), &BTreeSet::new()));
    assert_eq!(
        (b["ok"].as_bool(), b["name"].as_str()),
        (Some(true), Some("ok"))
    );

    // A server file: guessed (no `name:`), or named by ?kind=server.
    let server = "listen:\n  api: 0.0.0.0:9090\n";
    for target in ["/v1/check", "/v1/check?kind=server"] {
        let req = request(&format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{server}",
            server.len()
        ));
        let b = body_of(&run(&req, &Credentials::open(), &BTreeSet::new()));
        assert_eq!(b["kind"], "server", "{target}");
        assert_eq!(b["errors"][0]["field"], "listen.api", "{b}");
        assert_eq!(b["errors"][0]["line"], 2);
    }
    let req = request("POST /v1/check?kind=movie HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        status_of(&run(&req, &Credentials::open(), &BTreeSet::new())),
        Some(400)
    );
    let mut raw = b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n".to_vec();
    raw.extend_from_slice(&[0xff, 0xfe]);
    let req = match RequestReader::new(1 << 10).feed(&raw) {
        Ok(Some(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status_of(&run(&req, &Credentials::open(), &BTreeSet::new())),
        Some(400)
    );
}

#[test]
fn answers_to_performed_actions() {
    let r = answer(&Action::Disconnect(7), Outcome::Disconnected);
    assert_eq!(r.status, 200);
    assert_eq!(
        answer(&Action::Disconnect(7), Outcome::NoSuchClient).status,
        404
    );
    let r = answer(
        &Action::StopStation("demo".into()),
        Outcome::Stopped { clients_ended: 2 },
    );
    let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(b["clients_ended"], 2);
    assert_eq!(
        answer(&Action::StopStation("demo".into()), Outcome::AlreadyStopped).status,
        409
    );
    let plan = ReloadPlan {
        unchanged: 1,
        updated: 2,
        restarted: 0,
        stopped: 0,
        started: 1,
    };
    let r = answer(
        &Action::Reload,
        Outcome::Reloaded(ReloadReport::Applied(plan)),
    );
    let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(b["plan"]["updated"], 2);
    let errs = ConfigErrors(vec![crate::config::ConfigError::at(
        std::path::Path::new("/etc/asfcast/a.yaml"),
        (3, 4),
        "name",
        "bad",
    )]);
    let r = answer(
        &Action::Reload,
        Outcome::Reloaded(ReloadReport::Refused(errs)),
    );
    assert_eq!(r.status, 409);
    let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(b["errors"][0]["file"], "/etc/asfcast/a.yaml");
    assert_eq!(b["errors"][0]["line"], 3);
}

#[test]
fn the_config_and_upload_routes() {
    let table: Vec<(&str, &str, &str, Want)> = vec![
        ("GET", "/v1/version", "", Want::Status(200)),
        ("GET", "/v1/config/errors", "", Want::Status(200)),
        ("POST", "/v1/config/errors", "", Want::Status(405)),
        (
            "GET",
            "/v1/config/stations/news",
            "",
            Want::Act(Action::GetStation("news".into())),
        ),
        (
            "PUT",
            "/v1/config/stations/news",
            "Content-Length: 2\r\n",
            Want::Act(Action::PutStation {
                name: "news".into(),
                text: String::new(),
            }),
        ),
        (
            "DELETE",
            "/v1/config/stations/news",
            "",
            Want::Act(Action::DeleteStation("news".into())),
        ),
        ("POST", "/v1/config/stations/news", "", Want::Status(405)),
        ("PUT", "/v1/config/stations/server", "", Want::Status(400)),
        ("PUT", "/v1/config/stations/network", "", Want::Status(400)),
        ("PUT", "/v1/config/stations/a.b", "", Want::Status(400)),
        ("GET", "/v1/config/media", "", Want::Act(Action::ListMedia)),
        (
            "PUT",
            "/v1/config/media/clip.asf",
            "Content-Length: 10\r\n",
            Want::Act(Action::Upload {
                target: UploadTarget::Media("clip.asf".into()),
                length: 10,
            }),
        ),
        ("PUT", "/v1/config/media/clip.asf", "", Want::Status(411)),
        (
            "DELETE",
            "/v1/config/media/clip.asf",
            "",
            Want::Act(Action::DeleteMedia("clip.asf".into())),
        ),
        ("GET", "/v1/config/media/clip.asf", "", Want::Status(405)),
        // Names: hidden, traversal, separators, encodings, controls.
        ("PUT", "/v1/config/media/.hidden", "", Want::Status(400)),
        ("PUT", "/v1/config/media/..", "", Want::Status(400)),
        (
            "PUT",
            "/v1/config/media/../server.yaml",
            "",
            Want::Status(400),
        ),
        ("PUT", "/v1/config/media/a%2fb.asf", "", Want::Status(400)),
        ("PUT", "/v1/config/media/a%00.asf", "", Want::Status(400)),
        ("PUT", "/v1/config/media/a\\b.asf", "", Want::Status(400)),
        ("PUT", "/v1/config/media/a/b.asf", "", Want::Status(404)),
        (
            "PUT",
            "/v1/update",
            "Content-Length: 5\r\n",
            Want::Act(Action::Upload {
                target: UploadTarget::Update,
                length: 5,
            }),
        ),
        ("GET", "/v1/update", "", Want::Act(Action::UpdateStatus)),
        ("DELETE", "/v1/update", "", Want::Status(405)),
    ];
    let open = Credentials::open();
    let none = BTreeSet::new();
    for (method, target, extra, want) in table {
        let mut req = get(method, target, "");
        // Only the head matters here (the session streams uploads' bodies).
        if let Some((k, v)) = extra.trim().split_once(": ") {
            req.headers.push((k.to_string(), v.to_string()));
        }
        let r = run(&req, &open, &none);
        match (want, &r) {
            (Want::Status(s), _) => {
                assert_eq!(status_of(&r), Some(s), "{method} {target}: {r:?}")
            }
            (Want::Act(a), Routed::Act(got)) => assert_eq!(&a, got, "{method} {target}"),
            (Want::Act(a), other) => panic!("{method} {target}: wanted {a:?}, got {other:?}"),
        }
    }
    // Writes need credentials like every route when the API has them.
    let creds = Credentials::from_texts(Some("tok"), None).unwrap_or_else(|e| panic!("{e}"));
    for (method, target) in [
        ("PUT", "/v1/config/stations/news"),
        ("PUT", "/v1/config/media/a.asf"),
        ("PUT", "/v1/update"),
        ("DELETE", "/v1/config/media/a.asf"),
    ] {
        let r = run(&get(method, target, ""), &creds, &none);
        assert_eq!(status_of(&r), Some(401), "{method} {target}");
    }
    let r = run(&get("GET", "/v1/version", ""), &open, &none);
    assert_eq!(body_of(&r)["version"], crate::VERSION);
    // api.token written with Notepad: a byte order mark and CRLF.
    let notepad =
        Credentials::from_texts(Some("\u{feff}tok\r\n"), None).unwrap_or_else(|e| panic!("{e}"));
    let r = run(
        &get("GET", "/v1/version", "Authorization: Bearer tok\r\n"),
        &notepad,
        &none,
    );
    assert_eq!(status_of(&r), Some(200));
    assert_eq!(
        status_of(&run(
            &get("GET", "/v1/version", ""),
            &Credentials::locked(),
            &none
        )),
        Some(401)
    );
}

/// The config partition is FAT and edited on Windows laptops, where a file called `CON`,
/// `aux.yaml` or `com1.asf` (any case, any extension) is a device: it cannot be opened or
/// removed there, so the API does not create one.
#[test]
fn windows_device_names_are_not_written_to_the_partition() {
    // Only the head matters (as in the table above).
    let get = |method: &str, target: &str, _: &str| {
        let mut r = get(method, target, "");
        r.headers.push(("Content-Length".into(), "2".into()));
        r
    };
    let creds = Credentials::open();
    let none = BTreeSet::new();
    for name in ["CON", "aux", "Nul", "com1", "LPT9", "prn"] {
        let station = get(
            "PUT",
            &format!("/v1/config/stations/{name}"),
            "Content-Length: 2\r\n",
        );
        assert_eq!(
            status_of(&run(&station, &creds, &none)),
            Some(400),
            "{name}"
        );
        for file in [format!("{name}.asf"), name.to_string()] {
            let media = get(
                "PUT",
                &format!("/v1/config/media/{file}"),
                "Content-Length: 2\r\n",
            );
            assert_eq!(status_of(&run(&media, &creds, &none)), Some(400), "{file}");
        }
    }
    // Names that only start like one are fine.
    let ok = get(
        "PUT",
        "/v1/config/stations/console",
        "Content-Length: 2\r\n",
    );
    assert_ne!(status_of(&run(&ok, &creds, &none)), Some(400));
    let ok = get("PUT", "/v1/config/media/com10.asf", "Content-Length: 2\r\n");
    assert_ne!(status_of(&run(&ok, &creds, &none)), Some(400));
}

#[test]
fn every_status_the_api_sends_has_its_reason_phrase() {
    for s in [
        200, 201, 202, 204, 400, 401, 404, 405, 409, 411, 413, 422, 431, 500, 501, 503, 505, 507,
    ] {
        assert_ne!(crate::http::reason_phrase(s), "Unknown", "{s}");
    }
}
