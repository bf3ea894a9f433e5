//! The control API end to end: `asfcast run` with the demo station and `listen.api` on
//! 127.0.0.1, real clients (a raw MMSH player speaking FFmpeg's Play request, FFmpeg itself)
//! and `asfcast ctl` as the operator's tool:
//! - `ctl clients --json` lists the player; `ctl kick ID` ends its stream with `$E`;
//! - `ctl stop demo` ends a player with `$E` and makes `/demo` refuse; `ctl start demo` brings
//!   it back and a fresh FFmpeg decodes frames;
//! - `ctl reload` after adding a station file prints the plan; a broken file is refused with
//!   file:line:column errors; `ctl check FILE` prints the loader's errors and exits non-zero;
//! - credentials: the listener on 127.0.0.2 (loopback, so it binds inside the namespace)
//!   with a token file and a Basic users file: without credentials 401 with
//!   `WWW-Authenticate`, with either one 200, and the secrets never reach the log; an API on
//!   0.0.0.0 without credentials is refused by `asfcast check` with its position;
//! - bad input: traversal, odd encodings, unknown paths, oversized bodies are refused with
//!   400/404/413 and a log line, and the daemon goes on.
//!
//! Only loopback traffic; run inside tests/netns-run like the rest.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use asfcast::http::mmsh::{ChunkReader, ChunkType};
use support::{bounded, Daemon, TempDir};

/// FFmpeg's MMSH Play request for /demo (run-on last Pragma included).
const PLAY: &str = "GET /demo HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\nPragma: no-cache,rate=1.000000,request-context=2\r\n\
Pragma: xPlayStrm=1\r\nPragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\n\
Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close\r\n\r\n";

const TOKEN: &str = "t0ken-that-must-not-be-logged";
const PASSWORD: &str = "pa55word-that-must-not-be-logged";

struct Setup {
    _dir: TempDir,
    dir: PathBuf,
    daemon: Daemon,
    http: SocketAddr,
    api: String,
}

/// The daemon with the demo station (unicast only), HTTP on a free port and the API on
/// `api_ip`:free port; `server_extra` is appended to server.yaml.
fn start(tag: &str, api_ip: &str, server_extra: &str) -> Setup {
    let dir = TempDir::new(tag);
    let path = dir.path().to_path_buf();
    let (hp, ap) = (support::free_tcp_port(), support::free_tcp_port());
    std::fs::write(
        path.join("server.yaml"),
        format!(
            "listen:\n  http: 127.0.0.1:{hp}\n  mms: false\n  rtsp: false\n  api: {api_ip}:{ap}\n\
             announce_dir: {}\n{server_extra}",
            path.join("announce").display()
        ),
    )
    .unwrap();
    std::fs::write(
        path.join("demo.yaml"),
        station_yaml("demo", &support::demo_media()),
    )
    .unwrap();
    let http: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
    let api_addr: SocketAddr = format!("{api_ip}:{ap}").parse().unwrap();
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(http, Duration::from_secs(10));
    daemon.wait_for_tcp(api_addr, Duration::from_secs(10));
    assert!(
        daemon.wait_for_stderr("playing", Duration::from_secs(10)),
        "{}",
        daemon.stderr()
    );
    Setup {
        _dir: dir,
        dir: path,
        daemon,
        http,
        api: format!("http://{api_addr}"),
    }
}

fn station_yaml(name: &str, media: &Path) -> String {
    format!(
        "name: {name}\nsource:\n  type: playlist\n  files: [{}]\n",
        media.display()
    )
}

/// Runs `asfcast ctl --api URL ARGS…`.
fn ctl(api: &str, args: &[&str]) -> Output {
    let mut all = vec!["ctl", "--api", api];
    all.extend_from_slice(args);
    asfcast(&all)
}

/// Runs `asfcast ARGS…` (bounded) whatever its exit status.
fn asfcast(args: &[&str]) -> Output {
    let mut cmd = bounded(Duration::from_secs(30), support::asfcast_bin());
    cmd.args(args).stdin(std::process::Stdio::null());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("asfcast {args:?}: {e}"));
    assert!(
        !matches!(out.status.code(), Some(124 | 137)),
        "asfcast {args:?} timed out"
    );
    out
}

fn ok_json(api: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ctl(api, &all);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ctl {args:?}: {e}"))
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A raw MMSH player that has read at least 50 kB of its stream.
fn player(http: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut c = TcpStream::connect(http).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(PLAY.as_bytes()).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut all = Vec::new();
    while all.len() < 50_000 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early");
        all.extend_from_slice(&buf[..n]);
    }
    (c, all)
}

/// Reads the rest of a player's stream and asserts it ended with `$E` (end of stream).
fn assert_ends_with_e(mut c: TcpStream, mut all: Vec<u8>, log: &str) {
    let _ = c.read_to_end(&mut all);
    let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut r = ChunkReader::new();
    r.push(&all[at..]);
    let mut last = None;
    while let Some(ch) = r.next_chunk().unwrap() {
        last = Some(ch);
    }
    let last = last.unwrap();
    assert_eq!(
        (last.kind, last.location_or_reason),
        (ChunkType::End, 0),
        "{log}"
    );
}

/// One raw request to the API; the status line and the whole answer.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let host = addr.trim_start_matches("http://");
    let mut c = TcpStream::connect(host).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    // Read until the answer's head and body are complete (the connection may stay open).
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&out);
        if let Some(h) = text.find("\r\n\r\n") {
            let len = text[..h]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= h + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn ctl_lists_a_player_and_kick_ends_its_stream_with_e() {
    let s = start("api-kick", "127.0.0.1", "");
    let (c, all) = player(s.http);
    let clients = ok_json(&s.api, &["clients"]);
    let list = clients["clients"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "only the player, not the API connection: {clients}"
    );
    let p = &list[0];
    assert_eq!(p["protocol"], "mmsh");
    assert_eq!(p["station"], "demo");
    assert_eq!(p["user_agent"], "NSPlayer/4.1.0.3856");
    assert_eq!(
        p["peer"].as_str().unwrap(),
        c.local_addr().unwrap().to_string()
    );
    assert!(p["bytes"].as_u64().unwrap() >= 50_000, "{p}");
    let id = p["id"].as_u64().unwrap().to_string();

    let stations = ok_json(&s.api, &["stations"]);
    assert_eq!(stations["stations"][0]["name"], "demo");
    assert_eq!(stations["stations"][0]["state"], "playing");
    assert_eq!(stations["stations"][0]["clients"]["mmsh"], 1);
    let table = stdout_of(&ctl(&s.api, &["clients"]));
    assert!(
        table.starts_with("ID  ") && table.contains("NSPlayer/4.1.0.3856"),
        "{table}"
    );

    let out = ctl(&s.api, &["kick", &id]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), format!("client {id} disconnected\n"));
    assert_ends_with_e(c, all, &s.daemon.stderr());
    assert!(until(Duration::from_secs(5), || ok_json(
        &s.api,
        &["clients"]
    )["clients"]
        .as_array()
        .is_some_and(Vec::is_empty)));
    let out = ctl(&s.api, &["kick", &id]);
    assert_eq!(out.status.code(), Some(1), "a second kick finds nobody");
    assert!(
        stderr_of(&out).contains("404 no such client"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        s.daemon.stderr().contains("disconnect client"),
        "{}",
        s.daemon.stderr()
    );
}

/// (video, audio) frames FFmpeg decodes from the station over MMSH in `secs` seconds.
fn ffmpeg_frames(http: SocketAddr, secs: u32) -> (usize, usize) {
    let mut cmd = bounded(Duration::from_secs(60), "ffmpeg");
    cmd.args([
        "-nostdin",
        "-v",
        "error",
        "-i",
        &format!("mmsh://{http}/demo"),
    ])
    .args(["-t", &secs.to_string(), "-map", "0", "-f", "framemd5", "-"]);
    let out =
        support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |idx: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(',').next().map(str::trim) == Some(idx))
            .count()
    };
    (count("0"), count("1"))
}

#[test]
fn stop_refuses_the_station_and_start_brings_it_back() {
    let mut s = start("api-stop", "127.0.0.1", "");
    let (c, all) = player(s.http);
    let out = ctl(&s.api, &["stop", "demo"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "station demo stopped (1 clients ended)\n");
    assert_ends_with_e(c, all, &s.daemon.stderr());
    assert_eq!(
        ok_json(&s.api, &["stations"])["stations"][0]["state"],
        "stopped"
    );

    let describe = format!(
        "GET /demo HTTP/1.0\r\nHost: {}\r\nUser-Agent: NSPlayer/4.1\r\n\r\n",
        s.http
    );
    let (status, _) = raw(&format!("{}", s.http), describe.as_bytes());
    assert_eq!(status, 404, "a stopped station refuses players");
    let out = ctl(&s.api, &["stop", "demo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("409"), "{}", stderr_of(&out));

    // A reload leaves a station stopped through the API stopped, even one it restarts (its
    // stream changed: another file).
    std::fs::write(
        s.dir.join("demo.yaml"),
        station_yaml("demo", &support::demo_media_b()),
    )
    .unwrap();
    let out = ctl(&s.api, &["reload"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("1 restarted"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(
        ok_json(&s.api, &["stations"])["stations"][0]["state"],
        "stopped"
    );
    let (status, _) = raw(&format!("{}", s.http), describe.as_bytes());
    assert_eq!(status, 404, "still stopped after the reload");

    let out = ctl(&s.api, &["start", "demo"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(until(Duration::from_secs(10), || {
        ok_json(&s.api, &["stations"])["stations"][0]["state"] == "playing"
    }));
    let (video, audio) = ffmpeg_frames(s.http, 3);
    eprintln!("after start, ffmpeg -t 3 decoded video={video} audio={audio}");
    // demo-b.asf: 15 fps video, 22.05 kHz audio.
    assert!(video >= 30 && audio >= 20, "video {video} audio {audio}");
    assert!(s.daemon.is_running());
}

#[test]
fn reload_reports_the_plan_and_check_prints_positions() {
    let s = start("api-reload", "127.0.0.1", "");
    std::fs::write(
        s.dir.join("news.yaml"),
        station_yaml("news", &support::demo_media_b()),
    )
    .unwrap();
    let out = ctl(&s.api, &["reload"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out),
        "reloaded: 1 unchanged, 0 updated, 0 restarted, 0 stopped, 1 started\n"
    );
    let names: Vec<String> = ok_json(&s.api, &["stations"])["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["demo", "news"]);

    // A broken file: the reload is refused with the loader's errors, the stations stay.
    let broken = "name: news\nsource:\n  type: playlist\n  files: [a.asf]\nmulticast:\n  group: 10.0.0.1\n  port: 5000\n";
    std::fs::write(s.dir.join("news.yaml"), broken).unwrap();
    let out = ctl(&s.api, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    let news = s.dir.join("news.yaml");
    assert!(
        err.contains(&format!(
            "{}:6:10: multicast.group: 10.0.0.1 is not a multicast address",
            news.display()
        )),
        "{err}"
    );
    assert_eq!(
        ok_json(&s.api, &["stations"])["stations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // check: the same errors for a file the daemon never loads, named as given.
    let file = s.dir.join("candidate.yml.txt");
    std::fs::write(&file, broken).unwrap();
    let out = ctl(&s.api, &["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let first = stderr_of(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let want = format!(
        "{}:6:10: multicast.group: 10.0.0.1 is not a multicast address",
        file.display()
    );
    assert!(first.starts_with(&want), "{first}");
    let json = ctl(&s.api, &["--json", "check", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"][0]["file"], "<body>");
    assert_eq!(
        (
            v["errors"][0]["line"].as_u64(),
            v["errors"][0]["column"].as_u64()
        ),
        (Some(6), Some(10))
    );
    std::fs::write(&file, station_yaml("fine", Path::new("a.asf"))).unwrap();
    let out = ctl(&s.api, &["check", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // The check touched nothing that runs.
    assert_eq!(
        ok_json(&s.api, &["stations"])["stations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn credentials_are_required_when_configured_and_never_logged() {
    let dir = TempDir::new("api-auth-files");
    let token = dir.path().join("api.token");
    let users = dir.path().join("api.users");
    let pass = dir.path().join("pass");
    let wrong = dir.path().join("wrong");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::write(&users, format!("# operators\nops:{PASSWORD}\n")).unwrap();
    std::fs::write(&pass, format!("{PASSWORD}\n")).unwrap();
    std::fs::write(&wrong, "nope\n").unwrap();
    let s = start(
        "api-auth",
        "127.0.0.2",
        &format!(
            "api:\n  token_file: {}\n  credentials_file: {}\n",
            token.display(),
            users.display()
        ),
    );
    let (status, text) = raw(&s.api, b"GET /v1/stations HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("WWW-Authenticate: Bearer realm=\"asfcast\""),
        "{text}"
    );
    assert!(
        text.contains("WWW-Authenticate: Basic realm=\"asfcast\""),
        "{text}"
    );
    let out = ctl(&s.api, &["stations"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("401"), "{}", stderr_of(&out));
    let t = token.to_str().unwrap();
    assert!(ctl(&s.api, &["--token-file", t, "stations"])
        .status
        .success());
    let p = pass.to_str().unwrap();
    assert!(
        ctl(&s.api, &["--user", "ops", "--password-file", p, "clients"])
            .status
            .success()
    );
    let w = wrong.to_str().unwrap();
    assert_eq!(
        ctl(&s.api, &["--token-file", w, "stations"]).status.code(),
        Some(1)
    );
    assert_eq!(
        ctl(&s.api, &["--user", "ops", "--password-file", w, "stations"])
            .status
            .code(),
        Some(1)
    );
    let log = s.daemon.stderr();
    assert!(log.contains("control API request refused"), "{log}");
    assert!(
        !log.contains(TOKEN) && !log.contains(PASSWORD),
        "a secret reached the log:\n{log}"
    );
}

#[test]
fn an_open_api_needs_credentials_and_a_missing_token_file_refuses_the_start() {
    let dir = TempDir::new("api-open");
    std::fs::write(
        dir.path().join("demo.yaml"),
        station_yaml("demo", &support::demo_media()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("server.yaml"),
        "listen:\n  http: false\n  mms: false\n  rtsp: false\n  api: 0.0.0.0:9090\n",
    )
    .unwrap();
    let out = asfcast(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let server = dir.path().join("server.yaml");
    assert_eq!(
        stderr_of(&out).trim_end(),
        format!("{}:5:8: listen.api: 0.0.0.0:9090 is not a loopback address: the control API then needs api.token_file or api.credentials_file", server.display())
    );
    // Credentials named but unreadable: `run` refuses to start, naming the file only.
    let port = support::free_tcp_port();
    std::fs::write(
        &server,
        format!("listen:\n  http: false\n  mms: false\n  rtsp: false\n  api: 127.0.0.1:{port}\napi:\n  token_file: missing.token\n"),
    )
    .unwrap();
    let out = asfcast(&["run", "--config", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("control API: cannot read")
            && stderr_of(&out).contains("missing.token"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bad_requests_are_refused_with_a_log_line_and_the_daemon_goes_on() {
    let s = start("api-hostile", "127.0.0.1", "");
    let cases: [(&[u8], u16); 6] = [
        (
            b"GET /v1/stations/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        (b"GET /v1/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /v1/stations/de%6do HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (
            b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n",
            413,
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ];
    for (req, want) in cases {
        let (status, text) = raw(&s.api, req);
        assert_eq!(status, want, "{}: {text}", String::from_utf8_lossy(req));
        assert!(text.contains("Content-Type: application/json"), "{text}");
    }
    let log = s.daemon.stderr();
    assert!(
        log.matches("control API request refused").count() >= 6,
        "{log}"
    );
    assert_eq!(
        ok_json(&s.api, &["stations"])["stations"][0]["name"],
        "demo"
    );
}
