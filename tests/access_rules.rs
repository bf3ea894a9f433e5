//! IP rules end to end ([`asfcast::access`]): the server's `access.watch` list closes a denied
//! address's connections at accept on every listener, before any byte is answered, and counts
//! them in the aggregate refusal log; a station's `access.watch` list refuses the protocol's
//! way when the client names the station (HTTP 403, RTSP 403, MMS OpenFile access denied) and
//! keeps its .nsc/.asx from that address; the control API and the logging agent route have
//! lists of their own; `asfcast check` refuses subnets that cannot be right, with
//! file:line:column.
//!
//! Addresses (inside tests/netns-run all of 127/8 is on lo): 127.0.0.1 is allowed and plays
//! with FFmpeg, 127.0.0.2 is denied by the server, 127.0.0.3 only by the station.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::mms::codec::{cmd, frame, SESSION_ID, TO_SERVER};
use support::{Daemon, TempDir};

const DENIED: &str = "127.0.0.2";
const STATION_DENIED: &str = "127.0.0.3";

struct Box_ {
    d: Daemon,
    http: SocketAddr,
    mms: SocketAddr,
    rtsp: SocketAddr,
    api: SocketAddr,
}

/// The daemon with HTTP, MMS, RTSP and the control API on 127.0.0.1, the server denying
/// 127.0.0.2 (watch and api), the logging agent open to 127.0.0.1 only, and station `demo`
/// (with multicast, so it has a .nsc) closed to 127.0.0.3.
fn start(dir: &Path) -> Box_ {
    let listen = support::Listen::three().with_api().write(
        dir,
        &format!(
            "access:\n\
             \x20 watch:\n    default: allow\n    rules:\n      - deny: {DENIED}/32\n      - allow: 127.0.0.0/8\n\
             \x20 api:\n    default: deny\n    rules:\n      - deny: \"::ffff:{DENIED}\"\n      - allow: 127.0.0.0/8\n\
             \x20 log_agent:\n    default: deny\n    rules:\n      - allow: 127.0.0.1\n"
        ),
    );
    let mport = support::free_udp_port();
    std::fs::write(
        dir.join("demo.yaml"),
        format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\n\
             multicast:\n  group: 239.255.45.{}\n  port: {mport}\n  interface: lo\n  ttl: 0\n\
             unicast:\n  mms: true\n  mmsh: true\n  rtsp: true\n\
             access:\n  watch:\n    rules:\n      - deny: {STATION_DENIED}\n",
            support::demo_media().display(),
            mport % 200 + 1
        ),
    )
    .unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    for a in listen.all() {
        d.wait_for_tcp(a, Duration::from_secs(10));
    }
    // The first GOP, so joiners have a clean point and the .nsc exists.
    thread::sleep(Duration::from_millis(700));
    Box_ {
        d,
        http: listen.http(),
        mms: listen.mms(),
        rtsp: listen.rtsp(),
        api: listen.api(),
    }
}

/// A TCP connection to `to` from the local address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&local.into()).unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends `request` from `from` and reads to the end: the bytes the server answered, or Err
/// when the server kept the connection open (read timed out).
fn exchange(from: &str, to: SocketAddr, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = connect_from(from, to);
    // The server may already have closed it: a failed write is an answer too.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 256 << 10 {
                    return Ok(out);
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(out),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "connection still open after {} bytes: {:?}",
                    out.len(),
                    String::from_utf8_lossy(&out[..out.len().min(200)])
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn http_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

fn mms_connect() -> Vec<u8> {
    mms_commands("demo").remove(0)
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

/// Connect, ConnectFunnel and OpenFile of `station`, framed.
fn mms_commands(station: &str) -> Vec<Vec<u8>> {
    let mut connect = words(&[0, 0x0004_000B, 0x0003_001C]);
    connect.extend(utf16z(
        "NSPlayer/7.0.0.1956; {00000000-0000-0000-0000-000000000000}; Host: x",
    ));
    let mut funnel = words(&[0, 0xFFFF_FFFF, 0, 0x0098_9680, 2]);
    funnel.extend(utf16z("\\\\192.168.0.129\\TCP\\1037"));
    let mut open = words(&[1, 0xFFFF_FFFF, 0, 0]);
    open.extend(utf16z(station));
    [
        (cmd::CONNECT, connect),
        (cmd::CONNECT_FUNNEL, funnel),
        (cmd::OPEN_FILE, open),
    ]
    .into_iter()
    .map(|(n, f)| frame(TO_SERVER | u32::from(n), 0, &f))
    .collect()
}

/// The next MMS command reply: its number and its first field (the hr of a report).
fn mms_reply(s: &mut TcpStream) -> std::io::Result<(u16, u32)> {
    loop {
        let mut head = [0u8; 8];
        s.read_exact(&mut head)?;
        if u32::from_le_bytes([head[4], head[5], head[6], head[7]]) == SESSION_ID {
            let mut len = [0u8; 4];
            s.read_exact(&mut len)?;
            let mut rest = vec![0u8; u32::from_le_bytes(len) as usize + 4];
            s.read_exact(&mut rest)?;
            let number = u16::from_le_bytes([rest[24], rest[25]]);
            let hr = u32::from_le_bytes([rest[28], rest[29], rest[30], rest[31]]);
            return Ok((number, hr));
        }
        // A data packet: its length is in the head (bytes 4..6 are the packet length).
        let len = u16::from_le_bytes([head[6], head[7]]) as usize;
        let mut skip = vec![0u8; len.saturating_sub(8)];
        s.read_exact(&mut skip)?;
    }
}

/// The hr of OpenFile for `demo` from `from` (the Connect and ConnectFunnel replies first).
fn mms_open_hr(from: &str, to: SocketAddr) -> u32 {
    let mut s = connect_from(from, to);
    let mut hr = None;
    for (c, want) in mms_commands("demo").into_iter().zip([0x01u16, 0x02, 0x06]) {
        s.write_all(&c).unwrap();
        let (n, h) = mms_reply(&mut s).unwrap_or_else(|e| panic!("reply to 0x{want:02x}: {e}"));
        assert_eq!(n, want);
        hr = Some(h);
    }
    hr.unwrap()
}

fn rtsp_request(method: &str, url: &str, cseq: u32, extra: &str) -> String {
    format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: test\r\n{extra}\r\n")
}

/// One RTSP request on a fresh connection from `from`; the status line.
fn rtsp_status(from: &str, to: SocketAddr, request: &str) -> String {
    let out = exchange_one(from, to, request.as_bytes());
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

/// Sends `request` and reads what comes within a second (the connection may stay open).
fn exchange_one(from: &str, to: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = connect_from(from, to);
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn status_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Decoded (video, audio) frames of `ffmpeg [args] -i URL -t SECS`.
fn ffmpeg_frames(url: &str, pre: &[&str], seconds: u32) -> (u64, u64) {
    let limit = Duration::from_secs(60);
    let mut cmd = support::bounded(limit, "ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(pre)
        .args(["-i", url, "-t"])
        .arg(seconds.to_string())
        .args(["-f", "framemd5", "-"]);
    let out = support::run_bounded(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut v, mut a) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split(',').next().map(str::trim) {
            Some("0") => v += 1,
            Some("1") => a += 1,
            _ => {}
        }
    }
    (v, a)
}

fn assert_plays(what: &str, (v, a): (u64, u64)) {
    eprintln!("{what}: {v} video and {a} audio frames");
    assert!(v >= 40 && a >= 30, "{what}: video {v}, audio {a} frames");
}

#[test]
fn server_rules_close_denied_connections_at_accept_on_every_listener() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("access-accept");
    let mut b = start(dir.path());

    // From the denied address: every listener closes without a byte of answer.
    let mms_connect = mms_connect();
    let http = http_get("/demo.nsc");
    let rtsp = rtsp_request("OPTIONS", "rtsp://127.0.0.1/demo", 1, "");
    let api = http_get("/v1/stations");
    for (what, to, request) in [
        ("http", b.http, http.as_slice()),
        ("mms", b.mms, mms_connect.as_slice()),
        ("rtsp", b.rtsp, rtsp.as_bytes()),
        ("api", b.api, api.as_slice()),
    ] {
        let got = exchange(DENIED, to, request);
        assert_eq!(got, Ok(Vec::new()), "{what} from {DENIED}");
    }

    // The same requests from an allowed address are answered.
    assert!(status_line(&exchange(support_local(), b.http, &http).unwrap()).contains(" 200"));
    assert!(rtsp_status(support_local(), b.rtsp, &rtsp).contains(" 200"));
    assert!(!exchange_one(support_local(), b.api, &api).is_empty());
    assert_eq!(mms_open_hr(support_local(), b.mms), 0);

    // Real clients from 127.0.0.1 decode frames over every protocol.
    assert_plays(
        "ffmpeg mmsh",
        ffmpeg_frames(&format!("mmsh://{}/demo", b.http), &[], 3),
    );
    assert_plays(
        "ffmpeg rtsp",
        ffmpeg_frames(
            &format!("rtsp://{}/demo", b.rtsp),
            &["-rtsp_transport", "tcp"],
            3,
        ),
    );
    assert_plays(
        "ffmpeg mmst",
        ffmpeg_frames(&format!("mmst://{}/demo", b.mms), &[], 3),
    );

    // Counted in the aggregate refusal log, with the reason.
    assert!(
        b.d.wait_for_stderr("(access rules)", Duration::from_secs(15)),
        "{}",
        b.d.stderr()
    );
    let log = b.d.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("(access rules)"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("refused 4 connections from {DENIED}")),
        "{line}"
    );
    assert!(b.d.is_running());
    assert!(!log.contains("panicked"));
}

/// 127.0.0.1 as the "allowed" source address.
fn support_local() -> &'static str {
    "127.0.0.1"
}

#[test]
fn station_rules_refuse_the_protocols_way_and_hide_the_station_files() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("access-station");
    let mut b = start(dir.path());
    let from = STATION_DENIED;

    // HTTP: MMSH describe, plain GET, .nsc, .asx: 403; the list page leaves the station off.
    let mmsh = b"GET /demo HTTP/1.0\r\nHost: x\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
                 Pragma: xClientGUID={00000000-0000-0000-0000-000000000000}\r\n\r\n";
    for (what, request) in [
        ("mmsh describe", mmsh.to_vec()),
        ("plain GET", http_get("/demo")),
        (".nsc", http_get("/demo.nsc")),
        (".asx", http_get("/demo.asx")),
    ] {
        let got = exchange(from, b.http, &request).unwrap();
        assert!(
            status_line(&got).contains(" 403"),
            "{what} from {from}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let index =
        String::from_utf8_lossy(&exchange(from, b.http, &http_get("/")).unwrap()).into_owned();
    assert!(
        index.contains(" 200") && !index.contains("demo.nsc"),
        "{index}"
    );
    // The same files from an allowed address.
    let nsc = exchange("127.0.0.1", b.http, &http_get("/demo.nsc")).unwrap();
    assert!(status_line(&nsc).contains(" 200"), "{nsc:?}");
    let index = String::from_utf8_lossy(&exchange("127.0.0.1", b.http, &http_get("/")).unwrap())
        .into_owned();
    assert!(index.contains("demo.nsc"));

    // RTSP: DESCRIBE and SETUP 403.
    let url = format!("rtsp://{}/demo", b.rtsp);
    let describe = rtsp_request("DESCRIBE", &url, 1, "Accept: application/sdp\r\n");
    assert!(rtsp_status(from, b.rtsp, &describe).contains(" 403"));
    let setup = rtsp_request(
        "SETUP",
        &format!("{url}/audio"),
        2,
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    assert!(rtsp_status(from, b.rtsp, &setup).contains(" 403"));
    assert!(rtsp_status("127.0.0.1", b.rtsp, &describe).contains(" 200"));

    // MMS: OpenFile reports access denied (E_ACCESSDENIED).
    assert_eq!(mms_open_hr(from, b.mms), 0x8007_0005);

    // The logging agent route has its own list: 127.0.0.3 may watch other stations but not
    // send logs; 127.0.0.1 may.
    let post = b"POST /wmsiislog.dll HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
                 Connection: close\r\n\r\nx y";
    let got = exchange(from, b.http, post).unwrap();
    assert!(status_line(&got).contains(" 403"), "{got:?}");
    let got = exchange("127.0.0.1", b.http, post).unwrap();
    assert!(!status_line(&got).contains(" 403"), "{got:?}");

    assert!(b.d.is_running());
    assert!(!b.d.stderr().contains("panicked"));
}

#[test]
fn a_flood_from_a_denied_address_leaves_other_clients_unaffected() {
    if !support::require_private_netns() {
        return;
    }
    const FLOOD: usize = 2000;
    let dir = TempDir::new("access-flood");
    let mut b = start(dir.path());
    let url = format!("mmsh://{}/demo", b.http);
    let player = thread::spawn(move || ffmpeg_frames(&url, &[], 4));
    let http = b.http;
    let flood = thread::spawn(move || {
        let mut closed = 0;
        for _ in 0..FLOOD {
            if exchange(DENIED, http, b"GET /demo.nsc HTTP/1.0\r\n\r\n") == Ok(Vec::new()) {
                closed += 1;
            }
        }
        closed
    });
    // Others are served during the flood.
    for _ in 0..5 {
        let nsc = exchange("127.0.0.1", b.http, &http_get("/demo.nsc")).unwrap();
        assert!(status_line(&nsc).contains(" 200"));
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        flood.join().unwrap(),
        FLOOD,
        "every flood connection closed unanswered"
    );
    assert_plays("ffmpeg mmsh during the flood", player.join().unwrap());
    // The refusals come as aggregate lines, one per 10 s window (the flood may span two).
    let deadline = Instant::now() + Duration::from_secs(25);
    let (lines, counted) = loop {
        let log = b.d.stderr();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("refused"))
            .map(str::to_string)
            .collect();
        let counted: u64 = lines
            .iter()
            .filter_map(|l| {
                let rest = &l[l.find("refused ")? + "refused ".len()..];
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum();
        if counted >= FLOOD as u64 || Instant::now() > deadline {
            break (lines, counted);
        }
        thread::sleep(Duration::from_millis(300));
    };
    assert!(
        !lines.is_empty() && lines.len() <= 3,
        "a few aggregate lines, not one per connection: {lines:#?}"
    );
    for l in &lines {
        assert!(
            l.contains(&format!("from {DENIED}")) && l.contains("(access rules)"),
            "{l}"
        );
    }
    assert_eq!(counted, FLOOD as u64);
    assert!(b.d.is_running());
}

#[test]
fn check_refuses_bad_subnets_with_file_line_column() {
    let dir = TempDir::new("access-check");
    let station = |extra: &str| {
        format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\n{extra}",
            support::demo_media().display()
        )
    };
    let cases: [(&str, String, String, &str); 4] = [
        (
            "v4 prefix",
            "access:\n  watch:\n    rules:\n      - allow: 10.0.0.0/8\n      - deny: 10.0.0.0/33\n"
                .into(),
            station(""),
            "server.yaml:5:15: access.watch.rules[1].deny: `10.0.0.0/33`",
        ),
        (
            "v6 prefix",
            "access:\n  api:\n    rules:\n      - deny: \"::ffff:0:0/200\"\n".into(),
            station(""),
            "server.yaml:4:15: access.api.rules[0].deny: `::ffff:0:0/200`",
        ),
        (
            "garbage in a station",
            String::new(),
            station(
                "access:\n  watch:\n    default: deny\n    rules:\n      - allow: ten.0.0.0/8\n",
            ),
            "demo.yaml:9:16: access.watch.rules[0].allow: `ten.0.0.0/8` is not an IP address",
        ),
        (
            "unknown action",
            "access:\n  log_agent:\n    rules:\n      - permit: 10.0.0.0/8\n".into(),
            station(""),
            "server.yaml:4:9: access.log_agent.rules[0]: unknown variant `permit`",
        ),
    ];
    for (what, server, st, want) in cases {
        std::fs::write(dir.path().join("server.yaml"), server).unwrap();
        std::fs::write(dir.path().join("demo.yaml"), st).unwrap();
        let out = Command::new(support::asfcast_bin())
            .arg("check")
            .arg(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(err.contains(want), "{what}: want {want:?} in:\n{err}");
    }
    // And the good shape passes.
    std::fs::write(
        dir.path().join("server.yaml"),
        "access:\n  watch:\n    default: deny\n    rules:\n      - deny: 10.1.0.0/16\n      \
         - allow: 10.0.0.0/8\n      - allow: \"::ffff:127.0.0.0/104\"\n      - allow: ::1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("demo.yaml"),
        station("access:\n  watch:\n    rules: []\n"),
    )
    .unwrap();
    let out = Command::new(support::asfcast_bin())
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
