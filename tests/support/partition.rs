//! The config partition's daemon for tests: a config directory like the appliance's
//! (server.yaml, a station, media, the files other systems leave), `asfcast run --last-good`
//! on it, and the clients the tests judge it with (FFmpeg, raw HTTP, `asfcast ctl`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use super as support;
use super::{bounded, Daemon, TempDir};

pub struct Setup {
    pub _dir: TempDir,
    pub etc: PathBuf,
    pub last_good: PathBuf,
    pub daemon: Daemon,
    pub http: SocketAddr,
    pub api: SocketAddr,
}

pub const MEDIA_CAP: u64 = 4 << 20;

pub fn server_yaml(etc: &Path, hp: u16, ap: u16) -> String {
    format!(
        "listen:\n  http: 127.0.0.1:{hp}\n  mms: false\n  rtsp: false\n  api: 127.0.0.1:{ap}\n\
         announce_dir: {}\nstatus:\n  enabled: true\nmetrics:\n  enabled: true\n\
         api:\n  max_media_size: {MEDIA_CAP}\n",
        etc.parent().unwrap_or(etc).join("announce").display()
    )
}

pub fn station_yaml(name: &str, media: &str) -> String {
    format!("name: {name}\nsource:\n  type: playlist\n  files: [{media}]\n  loop: true\n")
}

/// A config dir like the partition's: server.yaml, demo.yaml, media/demo.asf, and the files
/// a person or another OS leaves there.
pub fn partition(tag: &str) -> (TempDir, PathBuf, u16, u16) {
    let dir = TempDir::new(tag);
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("media")).unwrap();
    std::fs::create_dir_all(etc.join("System Volume Information")).unwrap();
    std::fs::copy(support::demo_media(), etc.join("media/demo.asf")).unwrap();
    let (hp, ap) = (support::free_tcp_port(), support::free_tcp_port());
    std::fs::write(etc.join("server.yaml"), server_yaml(&etc, hp, ap)).unwrap();
    std::fs::write(
        etc.join("demo.yaml"),
        station_yaml("demo", "media/demo.asf"),
    )
    .unwrap();
    std::fs::write(etc.join("README.txt"), "Edit the YAML files.\r\n").unwrap();
    std::fs::write(etc.join("._demo.yaml"), [0u8, 5, 22, 7]).unwrap();
    std::fs::write(etc.join("demo.yaml.bak"), "name: [").unwrap();
    (dir, etc, hp, ap)
}

pub fn run_daemon(dir: TempDir, etc: PathBuf, hp: u16, ap: u16, wait_playing: bool) -> Setup {
    let last_good = dir.path().join("last-good");
    let mut daemon = Daemon::asfcast([
        "run",
        "--config",
        etc.to_str().unwrap(),
        "--last-good",
        last_good.to_str().unwrap(),
    ]);
    let http: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{ap}").parse().unwrap();
    daemon.wait_for_tcp(http, Duration::from_secs(10));
    daemon.wait_for_tcp(api, Duration::from_secs(10));
    if wait_playing {
        assert!(
            daemon.wait_for_stderr("playing", Duration::from_secs(10)),
            "{}",
            daemon.stderr()
        );
    }
    Setup {
        _dir: dir,
        etc,
        last_good,
        daemon,
        http,
        api,
    }
}

pub fn start(tag: &str) -> Setup {
    let (dir, etc, hp, ap) = partition(tag);
    run_daemon(dir, etc, hp, ap, true)
}

/// Runs `asfcast ctl --api URL ARGS…` (bounded).
pub fn ctl(api: SocketAddr, args: &[&str]) -> Output {
    let url = format!("http://{api}");
    let mut cmd = bounded(Duration::from_secs(60), support::asfcast_bin());
    cmd.args(["ctl", "--api", &url])
        .args(args)
        .stdin(std::process::Stdio::null());
    cmd.output()
        .unwrap_or_else(|e| panic!("asfcast ctl {args:?}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (video, audio) frames FFmpeg decodes from `station` over MMSH in `secs` seconds.
pub fn ffmpeg_frames(http: SocketAddr, station: &str, secs: u32) -> (usize, usize) {
    let mut cmd = bounded(Duration::from_secs(60), "ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i"])
        .arg(format!("mmsh://{http}/{station}"))
        .args(["-t", &secs.to_string(), "-map", "0", "-f", "framemd5", "-"]);
    let out =
        support::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let t = text(&out.stdout);
    let count = |idx: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(',').next().map(str::trim) == Some(idx))
            .count()
    };
    (count("0"), count("1"))
}

/// One raw HTTP exchange: the status and the body of the answer.
pub fn http(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let t = text(&out);
    let status = t
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = t
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
