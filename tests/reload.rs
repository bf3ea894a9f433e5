//! SIGHUP reloads by diff: a receiver of station A keeps receiving, without a restart of A's
//! stream, across a reload that changes station B and one that carries a broken YAML (refused,
//! old config kept) — inside the private namespace (multicast); and server settings applied
//! on reload (announcements moved and rewritten, a new request limit for new connections, the
//! log level, a listener change deferred with a warning) while an FFmpeg player plays on; and
//! a change of a station's description only, applied in place: the .nsc/.asx are rewritten
//! while its MMSH player and MSB receiver go on without a break.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Daemon, TempDir};

fn station_yaml(name: &str, media: &Path, group: u8, port: u16) -> String {
    format!(
        "name: {name}\nsource:\n  type: playlist\n  files: [{}]\n\
         multicast:\n  group: 239.255.44.{group}\n  port: {port}\n  interface: lo\n  ttl: 0\n\
         unicast:\n  mms: false\n  mmsh: false\n  rtsp: false\n",
        media.display()
    )
}

fn json_num(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("{key} in {json}")) + pat.len();
    json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn a_receiver_of_an_unchanged_station_is_untouched_by_reloads() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("reload");
    let port = support::free_udp_port();
    support::Listen::new().write(dir.path(), "");
    let a = station_yaml("alpha", &support::demo_media(), 1, port);
    let b_path = dir.path().join("beta.yaml");
    std::fs::write(dir.path().join("alpha.yaml"), &a).unwrap();
    std::fs::write(
        &b_path,
        station_yaml("beta", &support::demo_media_b(), 2, port),
    )
    .unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = dir.path().join("announce/alpha.nsc");
    for _ in 0..100 {
        if nsc.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.path().join("alpha.asf");
    let mut recv = Command::new("timeout");
    recv.args(["30", support::asfcast_bin().to_str().unwrap(), "recv"])
        .arg(&nsc)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "8"]);
    let child = recv.stdout(std::process::Stdio::piped()).spawn().unwrap();

    std::thread::sleep(Duration::from_secs(2));
    // Change B: another file.
    std::fs::write(
        &b_path,
        station_yaml("beta", &support::demo_media(), 2, port),
    )
    .unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr("restarted=1", Duration::from_secs(10)),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    // A broken YAML: refused, everything keeps running.
    std::fs::write(&b_path, "name: beta\nsource: [oops\n").unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr(
            "reload refused, keeping the running configuration",
            Duration::from_secs(10)
        ),
        "{}",
        d.stderr()
    );
    assert!(
        d.stderr().contains("beta.yaml:"),
        "the error names the file: {}",
        d.stderr()
    );

    let o = child.wait_with_output().unwrap();
    let json = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{json}");
    // A's stream never restarted (no Format ID / toggle change) and nothing was lost.
    assert_eq!(json_num(&json, "stream_changes"), 0, "{json}");
    assert_eq!(json_num(&json, "lost"), 0, "{json}");
    // 8 s at ~15.5 packets/s, every one received: the file starts at the first key frame
    // after the join (up to one 2 s GOP later), the rest is written.
    let received = json_num(&json, "packets_written") + json_num(&json, "skipped_before_key_frame");
    assert!(received > 110, "{json}");
    assert!(json_num(&json, "packets_written") > 80, "{json}");
    let v = support::ffprobe_count_frames(&out, "v:0").unwrap();
    assert!(v > 120, "video frames {v}");
    assert!(d.is_running());
    assert!(d.stderr().contains("unchanged=1"));
}

/// One HTTP exchange with `Connection: close`, `pad` bytes of extra header: the reply.
fn http_get(addr: std::net::SocketAddr, path: &str, pad: usize) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(pad)
    );
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn server_settings_apply_on_reload_and_a_player_keeps_playing() {
    let dir = TempDir::new("reload-server");
    let port = support::free_tcp_port();
    let other_port = support::free_tcp_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = |announce: &str, http_port: u16, extra: &str| {
        format!(
            "listen:\n  http: 127.0.0.1:{http_port}\n  mms: false\n  rtsp: false\n\
             announce_dir: {}\nlimits:\n  request_max_bytes: {extra}\n",
            dir.path().join(announce).display()
        )
    };
    let server_path = dir.path().join("server.yaml");
    std::fs::write(&server_path, server("first", port, "16KiB")).unwrap();
    std::fs::write(
        dir.path().join("alpha.yaml"),
        format!(
            "name: alpha\nsource:\n  type: playlist\n  files: [{}]\n  loop: true\n\
             unicast:\n  mms: false\n  mmsh: true\n  rtsp: false\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    assert!(http_get(addr, "/alpha.asx", 4000).starts_with("HTTP/1.1 200"));
    // At the default info level a refused request leaves no debug line.
    assert!(http_get(addr, "/alpha.asx", 20_000).starts_with("HTTP/1.1 431"));

    // A player for the whole reload.
    let mut ff = support::bounded(Duration::from_secs(60), "ffmpeg");
    ff.args(["-nostdin", "-hide_banner", "-i"])
        .arg(format!("mmsh://{addr}/alpha"))
        .args(["-t", "8", "-f", "framemd5", "-"]);
    let player = ff
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));

    // New announce directory and public host, a smaller request limit, another HTTP port.
    let first_asx = dir.path().join("first/alpha.asx");
    assert!(first_asx.exists());
    let server2 = server("second", other_port, "1KiB").replace(
        "announce_dir:",
        "public_host: box.example\nlog:\n  level: debug\nannounce_dir:",
    );
    std::fs::write(&server_path, server2).unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr("configuration reloaded", Duration::from_secs(10)),
        "{}",
        d.stderr()
    );
    assert!(d.stderr().contains("unchanged=1"), "{}", d.stderr());
    assert!(
        d.stderr()
            .contains("listener changes apply at the next restart"),
        "{}",
        d.stderr()
    );
    // Announcements moved and name the public host; the running listener still serves them.
    assert!(dir.path().join("second/alpha.asx").exists());
    assert!(!first_asx.exists(), "old files withdrawn");
    let asx = http_get(addr, "/alpha.asx", 0);
    assert!(asx.starts_with("HTTP/1.1 200"), "{asx}");
    assert!(asx.contains("box.example"), "{asx}");
    // The new request limit holds for new connections.
    let big = http_get(addr, "/alpha.asx", 4000);
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");
    // And the log level is debug now.
    assert!(d.stderr().contains("log level changed"), "{}", d.stderr());
    assert!(
        d.wait_for_stderr("bad HTTP request", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );
    assert_eq!(
        d.stderr().matches("bad HTTP request").count(),
        1,
        "only the request after the reload is logged at debug"
    );

    // The player never noticed: it decoded its 8 s to the end.
    let out = player.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let md5 = String::from_utf8_lossy(&out.stdout);
    let video = md5.lines().filter(|l| l.starts_with("0,")).count();
    assert!(video >= 190, "{video} video frames in 8 s:\n{err}");
    assert!(d.is_running());
}

/// Alpha with multicast (TTL 0 on lo) and MMSH, described as `description`.
fn alpha_yaml(description: &str, group_port: u16) -> String {
    format!(
        "name: alpha\ndescription: {description}\nsource:\n  type: playlist\n  files: [{}]\n  loop: true\n\
         multicast:\n  group: 239.255.44.3\n  port: {group_port}\n  interface: lo\n  ttl: 0\n\
         unicast:\n  mms: false\n  mmsh: true\n  rtsp: false\n",
        support::demo_media().display()
    )
}

/// The body of an HTTP reply.
fn body(reply: &str) -> &str {
    reply.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn a_description_change_rewrites_the_announcements_and_touches_no_client() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("reload-describe");
    let port = support::free_tcp_port();
    let group_port = support::free_udp_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    std::fs::write(
        dir.path().join("server.yaml"),
        format!(
            "listen:\n  http: {addr}\n  mms: false\n  rtsp: false\nannounce_dir: {}\n",
            dir.path().join("announce").display()
        ),
    )
    .unwrap();
    let alpha = dir.path().join("alpha.yaml");
    std::fs::write(&alpha, alpha_yaml("Old news", group_port)).unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    let nsc_file = dir.path().join("announce/alpha.nsc");
    // Written once the station has its header, a moment after the listener is up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !nsc_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(nsc_file.exists());

    // An MMSH player for 12 s, and an MSB receiver for 7 s: it ends before the playlist loops
    // (about 10 s in), which starts a new stream on its own.
    let mut ff = support::bounded(Duration::from_secs(60), "ffmpeg");
    ff.args(["-nostdin", "-hide_banner", "-i"])
        .arg(format!("mmsh://{addr}/alpha"))
        .args(["-t", "12", "-f", "framemd5", "-"]);
    let player = ff
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = dir.path().join("alpha.asf");
    let mut recv = support::bounded(Duration::from_secs(30), support::asfcast_bin());
    recv.arg("recv")
        .arg(&nsc_file)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "7"]);
    let receiver = recv.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));

    // Only the description changes.
    std::fs::write(&alpha, alpha_yaml("Late news", group_port)).unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr("configuration reloaded", Duration::from_secs(10)),
        "{}",
        d.stderr()
    );

    // The player decoded its 12 s without a break (a restart would end it with `$E`).
    let played = player.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&played.stderr);
    assert!(played.status.success(), "{err}");
    let md5 = String::from_utf8_lossy(&played.stdout);
    let video = md5.lines().filter(|l| l.starts_with("0,")).count();
    assert!(video >= 280, "{video} video frames in 12 s:\n{err}");
    // The MSB stream went on: same Format ID, nothing lost.
    let o = receiver.wait_with_output().unwrap();
    let json = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{json}");
    assert_eq!(json_num(&json, "stream_changes"), 0, "{json}");
    assert_eq!(json_num(&json, "lost"), 0, "{json}");
    assert!(json_num(&json, "packets_written") > 65, "{json}");

    let log = d.stderr();
    assert!(log.contains("station updated in place"), "{log}");
    assert!(
        log.contains("updated=1") && log.contains("restarted=0"),
        "{log}"
    );
    // The served .nsc and .asx carry the new description.
    let nsc = http_get(addr, "/alpha.nsc", 0);
    assert!(nsc.starts_with("HTTP/1.1 200"), "{nsc}");
    let parsed = asfcast::nsc::parse(body(&nsc)).unwrap();
    let formats = parsed.formats();
    assert!(!formats.is_empty(), "{nsc}");
    for f in &formats {
        assert_eq!(f.description.as_deref(), Some("Late news"), "{nsc}");
    }
    let asx = http_get(addr, "/alpha.asx", 0);
    assert!(asx.contains("<TITLE>Late news</TITLE>"), "{asx}");
    assert_eq!(
        std::fs::read_to_string(&nsc_file).unwrap(),
        body(&nsc),
        "the file says what is served"
    );

    assert!(!log.contains("station stopped"), "{log}");
    assert_eq!(log.matches("station started").count(), 1, "{log}");
    assert!(d.is_running());
}

/// FFmpeg's MMSH Play request for `/alpha`.
const PLAY_ALPHA: &str = "GET /alpha HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\nPragma: no-cache,rate=1.000000,request-context=2\r\n\
Pragma: xPlayStrm=1\r\nPragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\n\
Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0\r\nConnection: Close\r\n\r\n";

#[test]
fn switching_mmsh_off_ends_its_clients_with_e_and_restarts_nothing() {
    use asfcast::http::mmsh::{ChunkReader, ChunkType};
    use std::io::{Read, Write};

    let dir = TempDir::new("reload-protocol-off");
    let port = support::free_tcp_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    std::fs::write(
        dir.path().join("server.yaml"),
        format!(
            "listen:\n  http: {addr}\n  mms: false\n  rtsp: false\nannounce_dir: {}\n",
            dir.path().join("announce").display()
        ),
    )
    .unwrap();
    let alpha = |mmsh: bool| {
        format!(
            "name: alpha\nsource:\n  type: playlist\n  files: [{}]\n\
             unicast:\n  mms: true\n  mmsh: {mmsh}\n  rtsp: false\n",
            support::demo_media().display()
        )
    };
    let alpha_path = dir.path().join("alpha.yaml");
    std::fs::write(&alpha_path, alpha(true)).unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));

    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(PLAY_ALPHA.as_bytes()).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut all = Vec::new();
    while all.len() < 20_000 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "{}", d.stderr());
        all.extend_from_slice(&buf[..n]);
    }

    std::fs::write(&alpha_path, alpha(false)).unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr("configuration reloaded", Duration::from_secs(10)),
        "{}",
        d.stderr()
    );
    // The MMSH client gets the protocol's clean end.
    let _ = c.read_to_end(&mut all);
    let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut r = ChunkReader::new();
    r.push(&all[at..]);
    let mut last = None;
    while let Some(ch) = r.next_chunk().unwrap() {
        last = Some(ch);
    }
    let last = last.unwrap();
    assert_eq!((last.kind, last.location_or_reason), (ChunkType::End, 0));
    let log = d.stderr();
    assert!(
        log.contains("protocol switched off") && log.contains("ended=1"),
        "{log}"
    );
    assert!(
        log.contains("updated=1") && log.contains("restarted=0"),
        "{log}"
    );
    // (The session's own close reason for its `$E` end reads "station stopped".)
    assert!(!log.contains("station stopped by reload"), "{log}");
    assert_eq!(log.matches("station started").count(), 1, "{log}");
    // New MMSH clients are refused.
    let again = http_get(addr, "/alpha", 0);
    assert!(!again.starts_with("HTTP/1.1 200"), "{again}");
    assert!(d.is_running());
}
