//! Who may watch, judged by real clients on 127.0.0.1 against a station that requires
//! credentials (`auth:` with a users file written by `asfcast passwd`):
//! - FFmpeg (`rtsp://user:pass@…`) decodes frames over RTSP Digest; with a wrong password or
//!   none it gets 401 and decodes nothing;
//! - GStreamer's rtspsrc (`user-id`/`user-pw`) decodes buffers; with a wrong password it stops
//!   with an error;
//! - curl `--digest` and `--basic` get the .nsc, the .asx and the plain stream; without
//!   credentials, or with wrong ones, 401 with a Digest and a Basic challenge;
//! - raw RTSP: the 401 carries `WWW-Authenticate: Digest realm, nonce, qop="auth",
//!   algorithm=MD5` and no SDP; a huge Authorization header gets 400 and the daemon serves on;
//! - `asfcast passwd` reads the password from stdin, writes mode 0600, keeps no password in the
//!   file; `asfcast check` names the missing users file with file:line:column;
//! - the daemon's log (at debug level) holds neither the password nor its hash.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55";
const REALM: &str = "tv";
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// `asfcast passwd FILE USER --realm REALM` with `password` on stdin.
fn passwd(file: &Path, user: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(support::asfcast_bin())
        .args(["passwd", file.to_str().unwrap(), user, "--realm", REALM])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run asfcast passwd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

struct Station {
    daemon: Daemon,
    http: SocketAddr,
    rtsp_port: u16,
    mms: SocketAddr,
    users_hash: String,
}

/// A protected station `demo` (users file from `asfcast passwd`) on HTTP and RTSP, with
/// multicast (so it has a .nsc) when `multicast`; the daemon logs at debug level.
fn start(dir: &Path, multicast: bool) -> Station {
    let users = dir.join("users.digest");
    let out = passwd(&users, USER, PASSWORD);
    assert!(out.status.success(), "asfcast passwd: {out:?}");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "users file mode");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        !text.contains(PASSWORD),
        "the password is in the users file"
    );
    let users_hash = text.trim().rsplit(':').next().unwrap().to_string();
    assert_eq!(users_hash.len(), 32, "{text}");

    let listen = support::Listen::three().write(
        dir,
        &format!("limits:\n  request_max_bytes: 16384\nauth:\n  realm: {REALM}\n"),
    );
    let mcast = if multicast {
        let port = support::free_udp_port();
        format!("multicast:\n  group: 239.255.44.1\n  port: {port}\n  interface: lo\n  ttl: 0\n")
    } else {
        String::new()
    };
    support::demo_station(
        dir,
        &format!(
            "{mcast}unicast:\n  mms: true\n  mmsh: true\n  rtsp: true\n\
             auth:\n  users_file: users.digest\n"
        ),
    );
    let mut cmd = Command::new(support::asfcast_bin());
    cmd.args(["run", "--config", dir.to_str().unwrap()])
        .env("ASFCAST_LOG", "debug");
    let mut daemon = Daemon::spawn("asfcast", cmd);
    daemon.wait_for_tcp(listen.http(), Duration::from_secs(10));
    daemon.wait_for_tcp(listen.rtsp(), Duration::from_secs(10));
    daemon.wait_for_tcp(listen.mms(), Duration::from_secs(10));
    Station {
        daemon,
        http: listen.http(),
        rtsp_port: listen.rtsp().port(),
        mms: listen.mms(),
        users_hash,
    }
}

impl Station {
    fn rtsp_url(&self, credentials: Option<(&str, &str)>) -> String {
        let auth = credentials.map_or(String::new(), |(u, p)| format!("{u}:{p}@"));
        format!("rtsp://{auth}127.0.0.1:{}/demo", self.rtsp_port)
    }

    /// The daemon's "authorized" debug lines: which scheme each client used.
    fn schemes(&self) -> Vec<String> {
        self.daemon
            .stderr()
            .lines()
            .filter(|l| l.contains("request authorized"))
            .filter_map(|l| l.split("scheme=").nth(1))
            .map(|s| s.split(" method").next().unwrap_or(s).to_string())
            .collect()
    }

    /// Nothing secret in what the daemon logged.
    fn assert_log_clean(&self) {
        let log = self.daemon.stderr();
        assert!(
            !log.contains(PASSWORD),
            "password in the daemon log:\n{log}"
        );
        assert!(
            !log.contains(&self.users_hash),
            "HA1 in the daemon log:\n{log}"
        );
        assert!(
            !log.contains("response=") && !log.contains("Authorization"),
            "credentials in the daemon log:\n{log}"
        );
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// FFmpeg over TCP for 5 s: decoded (video, audio) frames, or its stderr when it failed.
fn ffmpeg(url: &str) -> Result<(u64, u64), String> {
    let mut cmd = support::bounded(CLIENT_LIMIT, "ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "verbose"])
        .args([
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-t",
            "5",
            "-f",
            "null",
            "-",
        ]);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(err);
    }
    let decoded = |kind: &str| {
        err.lines()
            .find(|l| l.contains("Input stream #") && l.contains(&format!("({kind}):")))
            .and_then(|l| l.split("; ").nth(1))
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    match (decoded("video"), decoded("audio")) {
        (Some(v), Some(a)) => Ok((v, a)),
        _ => Err(format!("no decode counts in ffmpeg's output:\n{err}")),
    }
}

#[test]
fn ffmpeg_plays_with_digest_credentials_and_gets_401_without() {
    let dir = TempDir::new("auth-ffmpeg");
    let s = start(dir.path(), false);
    let (v, a) = ffmpeg(&s.rtsp_url(Some((USER, PASSWORD))))
        .unwrap_or_else(|e| panic!("ffmpeg with the right password: {e}"));
    assert!(v >= 100 && a >= 80, "{v} video / {a} audio frames in 5 s");
    eprintln!("ffmpeg with credentials: {v} video and {a} audio frames decoded");
    // FFmpeg 5.1 answers qop="auth" with qop, nc and cnonce on each request.
    let schemes = s.schemes();
    eprintln!("ffmpeg's authorizations: {schemes:?}");
    assert!(
        !schemes.is_empty() && schemes.iter().all(|x| x == "\"digest qop=auth\""),
        "{schemes:?}"
    );
    for (what, creds) in [
        ("wrong password", Some((USER, "wrong"))),
        ("unknown user", Some(("mallory", PASSWORD))),
        ("no credentials", None),
    ] {
        let err = match ffmpeg(&s.rtsp_url(creds)) {
            Ok(counts) => panic!("ffmpeg with {what} decoded {counts:?}"),
            Err(e) => e,
        };
        assert!(
            err.contains("401"),
            "ffmpeg with {what}: no 401 seen:\n{err}"
        );
        assert!(!err.contains("frames decoded"), "{what}: {err}");
    }
    s.assert_log_clean();
    assert!(s.daemon.stderr().contains("not authorized"));
}

/// Decoded (video, audio) buffers in `gst-launch-1.0 -v` output (see tests/rtsp_clients.rs).
fn gst_counts(text: &str) -> (u64, u64) {
    let chains = || {
        text.lines()
            .filter(|l| l.contains(": last-message = chain"))
    };
    let video = chains().filter(|l| l.contains("(115200 bytes")).count() as u64;
    let audio = chains()
        .filter(|l| l.contains("duration: 0:00:00.046439909"))
        .count() as u64;
    (video, audio)
}

/// rtspsrc with `user-id`/`user-pw` → rtpasfdepay → decodebin → two fakesinks, run until
/// `want` buffers of each kind are decoded, it exits, or `limit` passes; then killed. Returns
/// the counts and everything it printed.
fn gst_rtspsrc(
    url: &str,
    user: &str,
    pw: &str,
    want: u64,
    limit: Duration,
) -> ((u64, u64), String) {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-v")
        .args([
            "rtspsrc",
            &format!("location={url}"),
            &format!("user-id={user}"),
            &format!("user-pw={pw}"),
            "protocols=tcp",
            "latency=200",
            "!",
            "rtpasfdepay",
            "!",
            "decodebin",
            "name=d",
        ])
        .env("HOME", std::env::temp_dir());
    for sink in ["x", "y"] {
        cmd.args([
            "d.",
            "!",
            "queue",
            "!",
            "fakesink",
            &format!("name={sink}"),
            "silent=false",
        ]);
    }
    let mut gst = Daemon::spawn("gst-launch", cmd);
    let deadline = Instant::now() + limit;
    loop {
        let (v, a) = gst_counts(&gst.stdout());
        if (v >= want && a >= want) || !gst.is_running() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let exited = !gst.is_running();
    let _ = gst.signal("KILL");
    let text = format!("exited: {exited}\n{}\n{}", gst.stdout(), gst.stderr());
    (gst_counts(&gst.stdout()), text)
}

#[test]
fn gstreamer_plays_with_user_id_and_user_pw_and_fails_with_a_wrong_one() {
    let dir = TempDir::new("auth-gst");
    let s = start(dir.path(), false);
    let url = s.rtsp_url(None);
    let ((v, a), text) = gst_rtspsrc(&url, USER, PASSWORD, 80, Duration::from_secs(45));
    assert!(
        v >= 80 && a >= 80,
        "GStreamer with the right password decoded {v} video / {a} audio buffers:\n{}",
        text.lines()
            .filter(|l| !l.contains("last-message"))
            .take(60)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("GStreamer with credentials: {v} video and {a} audio buffers decoded");
    // GStreamer 1.22 sends the RFC 2069 form (no qop) whatever the challenge offers.
    let schemes = s.schemes();
    eprintln!("GStreamer's authorizations: {schemes:?}");
    assert!(
        !schemes.is_empty() && schemes.iter().all(|x| x == "\"digest rfc2069\""),
        "{schemes:?}"
    );

    let ((v, a), text) = gst_rtspsrc(&url, USER, "wrong", 1, Duration::from_secs(20));
    assert_eq!(
        (v, a),
        (0, 0),
        "GStreamer with a wrong password decoded buffers"
    );
    assert!(
        text.starts_with("exited: true"),
        "GStreamer kept running:\n{text}"
    );
    assert!(
        text.contains("Unauthorized"),
        "no Unauthorized error:\n{text}"
    );
    s.assert_log_clean();
}

/// curl with `args` for `path`: (status, headers, body).
fn curl(http: SocketAddr, path: &str, args: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = std::env::temp_dir();
    let head = dir.join(format!("auth-curl-{}-head", std::process::id()));
    let out = support::bounded(Duration::from_secs(20), "curl")
        .args(["-s", "-D", head.to_str().unwrap(), "--max-time", "3"])
        .args(args)
        .arg(format!("http://{http}{path}"))
        .output()
        .expect("run curl");
    let headers = std::fs::read_to_string(&head).unwrap_or_default();
    let _ = std::fs::remove_file(&head);
    // With --digest curl prints the 401 head, then the final one: take the last status.
    let status = headers
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, headers, out.stdout)
}

#[test]
fn curl_digest_and_basic_get_the_nsc_asx_and_stream_and_401_without() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("auth-curl");
    let s = start(dir.path(), true);
    let good = format!("{USER}:{PASSWORD}");
    let bad = format!("{USER}:wrong");
    // The .nsc exists once the station has its header.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, headers, body) = loop {
        let r = curl(s.http, "/demo.nsc", &["--digest", "-u", &good]);
        if r.0 != 503 || Instant::now() >= deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 200, "{headers}");
    assert!(
        headers.contains("WWW-Authenticate: Digest"),
        "no challenge first:\n{headers}"
    );
    let nsc = String::from_utf8_lossy(&body);
    assert!(
        nsc.contains("[Address]") || nsc.contains("[Formats]"),
        "not a .nsc: {nsc}"
    );

    let (status, headers, body) = curl(s.http, "/demo.nsc", &[]);
    assert_eq!(status, 401, "{headers}");
    assert!(headers.contains(&format!(
        "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\""
    )));
    assert!(headers.contains("qop=\"auth\", algorithm=MD5"), "{headers}");
    assert!(
        headers.contains(&format!("WWW-Authenticate: Basic realm=\"{REALM}\"")),
        "{headers}"
    );
    assert!(!String::from_utf8_lossy(&body).contains("[Address]"));

    for (path, args, want) in [
        ("/demo.nsc", vec!["--basic", "-u", good.as_str()], 200),
        ("/demo.nsc", vec!["--basic", "-u", bad.as_str()], 401),
        ("/demo.nsc", vec!["--digest", "-u", bad.as_str()], 401),
        ("/demo.asx", vec!["--digest", "-u", good.as_str()], 200),
        ("/demo.asx", vec![], 401),
        ("/demo", vec![], 401),
        (
            "/demo",
            vec!["-H", "Authorization: Digest username=\"alice"],
            400,
        ),
    ] {
        let (status, headers, _) = curl(s.http, path, &args);
        assert_eq!(status, want, "{path} {args:?}:\n{headers}");
    }
    // The plain stream: the ASF header object comes first.
    let (status, headers, body) = curl(s.http, "/demo", &["--digest", "-u", &good]);
    assert_eq!(status, 200, "{headers}");
    assert!(
        body.starts_with(&[0x30, 0x26, 0xB2, 0x75]),
        "no ASF header in the plain stream ({} bytes)",
        body.len()
    );
    // An open page stays open.
    assert_eq!(curl(s.http, "/", &[]).0, 200);
    s.assert_log_clean();
}

/// Reads one RTSP response head (and body) from `s`.
fn rtsp_exchange(s: &mut TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn raw_rtsp_gets_a_digest_challenge_and_huge_headers_get_400() {
    let dir = TempDir::new("auth-raw");
    let mut s = start(dir.path(), false);
    let addr = format!("127.0.0.1:{}", s.rtsp_port);
    let url = s.rtsp_url(None);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let r = rtsp_exchange(
        &mut c,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 401"), "{r}");
    assert!(
        r.contains(&format!(
            "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\""
        )),
        "{r}"
    );
    assert!(r.contains("qop=\"auth\", algorithm=MD5"), "{r}");
    assert!(
        !r.contains("application/sdp") && !r.contains("Session:"),
        "{r}"
    );
    // SETUP and PLAY without credentials: 401 too, no session.
    let r = rtsp_exchange(
        &mut c,
        &format!("SETUP {url}/stream=1 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
    );
    assert!(
        r.starts_with("RTSP/1.0 401") && !r.contains("Session:"),
        "{r}"
    );
    // A made-up nonce: 401; a huge header: 400; the daemon serves on.
    let r = rtsp_exchange(
        &mut c,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Digest username=\"alice\", realm=\"tv\", nonce=\"00\", uri=\"{url}\", response=\"00000000000000000000000000000000\"\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 401"), "{r}");
    let huge = "x".repeat(10_000);
    let r = rtsp_exchange(
        &mut c,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 4\r\nAuthorization: Digest username=\"{huge}\"\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 400"), "{:.200}", r);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let r = rtsp_exchange(
        &mut c,
        &format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    // mms:// cannot ask for credentials: the protected station is not served there.
    let mut m = TcpStream::connect(s.mms).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let played = support::raw::mms_play_tcp(&mut m, "demo");
    assert!(played.is_err(), "MMS played a protected station");
    assert!(s.daemon.is_running());
    s.assert_log_clean();
}

#[test]
fn check_names_a_missing_users_file_with_its_position() {
    let dir = TempDir::new("auth-check");
    std::fs::write(
        dir.path().join("demo.yaml"),
        format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\nauth:\n  realm: tv\n  users_file: nowhere.digest\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
    let out = Command::new(support::asfcast_bin())
        .args(["check", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("demo.yaml:7:15"), "{err}");
    assert!(
        err.contains("auth.users_file") && err.contains("nowhere.digest"),
        "{err}"
    );

    // Written by passwd for another realm: refused with the same position.
    let users = dir.path().join("nowhere.digest");
    let out = passwd(&users, USER, PASSWORD);
    assert!(out.status.success());
    std::fs::write(
        dir.path().join("demo.yaml"),
        format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\nauth:\n  realm: radio\n  users_file: nowhere.digest\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
    let out = Command::new(support::asfcast_bin())
        .args(["check", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("demo.yaml:7:15") && err.contains("realm"),
        "{err}"
    );
    // A password never comes from the arguments: an empty stdin is refused.
    let out = Command::new(support::asfcast_bin())
        .args(["passwd", users.to_str().unwrap(), "bob"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_documented_example_is_a_protected_station() {
    let c = asfcast::config::load(&[support::repo_root().join("station-configs/examples")])
        .unwrap_or_else(|e| panic!("{e}"));
    let news = c.station("news").expect("news");
    let auth = news.auth.as_ref().expect("news has auth");
    assert_eq!(auth.realm, "news");
    assert!(auth.users.check_password("viewer", "news", "change-me"));
    assert_eq!(c.server.auth.realm.as_deref(), Some("asfcast"));
    // Debug output of the whole config names no hash.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("6ee2083a"), "{dbg}");
}
