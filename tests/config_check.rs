//! What `asfcast check` relies on: the shipped configs load, and broken configs
//! are refused with `file:line:column: field: plain words`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use asfcast::config::{self, Config, Interface, LogFormat, LogLevel, Source};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/configs")
}

fn load_ok(path: &Path) -> Config {
    match config::load(&[path.to_path_buf()]) {
        Ok(c) => c,
        Err(e) => panic!("{} should load:\n{e}", path.display()),
    }
}

/// Loads paths under the fixture directory and returns the messages with the
/// fixture directory stripped, so they read `dir/file.yaml:L:C: field: ...`.
fn errors(paths: &[&str]) -> Vec<String> {
    let base = fixtures();
    let full: Vec<PathBuf> = paths.iter().map(|p| base.join(p)).collect();
    match config::load(&full) {
        Ok(c) => panic!("{paths:?} should be refused, got {c:?}"),
        Err(e) => {
            let prefix = format!("{}/", base.display());
            e.iter()
                .map(|e| e.to_string().replacen(&prefix, "", 1))
                .collect()
        }
    }
}

#[test]
fn demo_directory_passes() {
    let c = load_ok(&root().join("station-configs"));
    let local = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    assert_eq!(c.server.listen.http, [local(8080)]);
    assert_eq!(c.server.listen.mms, [local(1755)]);
    assert_eq!(c.server.listen.rtsp, [local(8554)]);
    assert_eq!(c.server.announce_dir, PathBuf::from("/tmp/asfcast-demo"));

    assert_eq!(c.stations.len(), 2);
    let live = c
        .station("live")
        .unwrap_or_else(|| panic!("no live station"));
    let Source::Push(push) = &live.source else {
        panic!("live is not a push station: {:?}", live.source)
    };
    let slate = root().join("station-configs/media/slate.asf");
    assert_eq!(push.live.fallback, std::slice::from_ref(&slate));
    assert_eq!(push.live.header_template, Some(slate));
    assert_eq!(push.live.stall_timeout, Duration::from_secs(3));
    assert!(push.auth.is_none());
    let demo = c
        .station("demo")
        .unwrap_or_else(|| panic!("no demo station"));
    let Source::Playlist(p) = &demo.source else {
        panic!("demo is not a playlist")
    };
    assert_eq!(p.files, [root().join("station-configs/media/demo.asf")]);
    assert!(p.looping);
    let m = demo
        .multicast
        .as_ref()
        .unwrap_or_else(|| panic!("demo has no multicast"));
    assert_eq!(
        m.destination(),
        SocketAddr::from(([239, 255, 42, 42], 19009))
    );
    assert_eq!(m.interface, Interface::Name("lo".into()));
    assert_eq!(m.ttl, 0);
    assert_eq!(m.fec_span, 10);
    assert_eq!(m.beacon_interval, Duration::from_secs(2));
    assert!(demo.unicast.mms && demo.unicast.mmsh && demo.unicast.rtsp);
    assert_eq!(demo.announcement.nsc, "demo.nsc");
    assert_eq!(demo.announcement.asx, "demo.asx");
}

#[test]
fn box_example_passes() {
    let c = load_ok(&root().join("station-configs/examples"));
    assert_eq!(c.server.listen.http.len(), 2);
    assert_eq!(
        c.server.listen.rtsp,
        [SocketAddr::from(([0, 0, 0, 0], 554))]
    );
    assert_eq!(c.server.public_host.as_deref(), Some("media.example.org"));
    assert_eq!(c.server.log.level, LogLevel::Info);
    assert_eq!(c.server.log.format, LogFormat::Text);
    assert!(c.server.web.status && c.server.web.metrics);
    assert_eq!(c.server.web.refresh_s, 10);
    let news = c
        .station("news")
        .unwrap_or_else(|| panic!("no news station"));
    let m = news
        .multicast
        .as_ref()
        .unwrap_or_else(|| panic!("news has no multicast"));
    // eth0 need not exist on the machine running the check.
    assert_eq!(m.interface, Interface::Name("eth0".into()));
    assert_eq!((m.ttl, m.dscp, m.loopback), (16, 34, false));
    assert_eq!(m.send_buffer, Some(1 << 20));
    let Source::Playlist(p) = &news.source else {
        panic!("news is not a playlist")
    };
    assert!(p.files.iter().all(|f| f.starts_with("/srv/asfcast/media")));
    assert_eq!(news.unicast.max_clients, 500);
    assert_eq!(
        news.announcement.unicast_url.as_deref(),
        Some("mms://media.example.org/news")
    );
}

#[test]
fn unknown_key() {
    let e = errors(&["unknown_key.yaml"]);
    assert_eq!(
        e,
        ["unknown_key.yaml:9:3: multicast.tll: unknown field `tll`, expected one of `group`, `port`, `ttl`, `interface`, `fec_span`, `beacon_interval`, `dscp`, `loopback`, `send_buffer`, `smoothing`"]
    );
}

#[test]
fn bad_address() {
    let e = errors(&["bad_address.yaml"]);
    assert_eq!(
        e,
        ["bad_address.yaml:6:10: multicast.group: `239.255.1.300` is not an IP address"]
    );
}

#[test]
fn ttl_out_of_range() {
    let e = errors(&["ttl_range.yaml"]);
    assert_eq!(
        e,
        ["ttl_range.yaml:9:8: multicast.ttl: 300 is out of range 0–255"]
    );
}

#[test]
fn group_not_multicast() {
    let e = errors(&["not_multicast.yaml"]);
    assert_eq!(
        e,
        ["not_multicast.yaml:6:10: multicast.group: 192.168.1.20 is not a multicast address (IPv4 multicast is 224.0.0.0–239.255.255.255; 239.0.0.0/8 is for local use)"]
    );
}

#[test]
fn bad_name() {
    let e = errors(&["bad_name.yaml"]);
    assert_eq!(
        e,
        ["bad_name.yaml:1:7: name: `my station` is not a valid station name: use 1–64 letters, digits, `-` or `_` (it is the URL path)"]
    );
}

#[test]
fn duplicate_station_across_files() {
    let e = errors(&["duplicate"]);
    let first = fixtures().join("duplicate/first.yaml");
    assert_eq!(
        e,
        [format!(
            "duplicate/second.yaml:2:7: name: station `news` is already defined at {}:1:7",
            first.display()
        )]
    );
}

#[test]
fn colliding_group_and_port() {
    let e = errors(&["collision"]);
    let music = fixtures().join("collision/music.yaml");
    assert_eq!(
        e,
        [format!(
            "collision/talk.yaml:8:10: multicast.group: 239.255.3.1:6000 is already used by station `music` ({}:6:10); each station needs its own group:port",
            music.display()
        )]
    );
}

#[test]
fn listener_reused_in_server_file() {
    let e = errors(&["bad_server"]);
    assert_eq!(
        e,
        ["bad_server/server.yaml:4:9: listen.rtsp: 127.0.0.1:8080 overlaps 127.0.0.1:8080 of listen.http; each listener needs its own address:port"]
    );
}

#[test]
fn every_broken_file_is_reported_at_once() {
    let e = errors(&[
        "unknown_key.yaml",
        "bad_address.yaml",
        "ttl_range.yaml",
        "not_multicast.yaml",
        "bad_name.yaml",
        "duplicate",
        "collision",
    ]);
    let located: Vec<&str> = e
        .iter()
        .map(|m| m.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        located,
        [
            "unknown_key.yaml:9:3",
            "bad_address.yaml:6:10",
            "ttl_range.yaml:9:8",
            "not_multicast.yaml:6:10",
            "bad_name.yaml:1:7",
            "duplicate/second.yaml:2:7",
            "collision/talk.yaml:8:10",
        ]
    );
}

#[test]
fn missing_directory_is_an_error() {
    let e = errors(&["no-such-dir"]);
    assert_eq!(e, ["no-such-dir: no such file or directory"]);
}

/// A "billion laughs" station and server file (each 42 kB; expanded they would be
/// gigabytes) are refused by `asfcast check` at their first alias, under a 256 MiB
/// address-space cap that the expansion would blow through.
#[test]
fn alias_bombs_in_files_are_refused_at_the_first_alias() {
    let dir = std::env::temp_dir().join(format!("asfcast-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bomb = format!("a: &a [{}]\n", vec!["x"; 2000].join(","));
    let mut prev = "a".to_string();
    for i in 0..5 {
        let refs = vec![format!("*{prev}"); 2000].join(",");
        bomb.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        prev = format!("l{i}");
    }
    std::fs::write(dir.join("server.yaml"), &bomb).unwrap();
    std::fs::write(dir.join("bomb.yaml"), format!("name: bomb\n{bomb}")).unwrap();
    let out = std::process::Command::new("prlimit")
        .arg("--as=268435456")
        .arg(env!("CARGO_BIN_EXE_asfcast"))
        .arg("check")
        .arg(&dir)
        .output()
        .expect("prlimit runs asfcast check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("server.yaml:2:10: YAML aliases"),
        "the server file is refused at line 2: {text}"
    );
    assert!(
        text.contains("bomb.yaml:3:10: YAML aliases"),
        "the station file is refused at line 3: {text}"
    );
}

#[test]
fn push_station_template_and_users_file_are_checked() {
    let e = errors(&["bad_push.yaml"]);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("bad_push.yaml:7:17: source.auth.users_file: ")
            && e[0].ends_with("no-such.digest: no such file or directory"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("bad_push.yaml:5:20: source.header_template: ")
            && e[1].contains("not an ASF file"),
        "{e:?}"
    );
}
