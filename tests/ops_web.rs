//! Operating the box, decided by real peers: the daemon plays the demo station to real
//! clients (two FFmpeg over MMSH, one FFmpeg over RTSP, one plain-HTTP client whose user
//! agent is markup), then
//!
//! - headless Chromium renders `/` and `/status/demo`: the DOM shows the station and the
//!   client counts per protocol the test connected, the hostile user agent as text;
//! - `promtool check metrics` accepts `/metrics`;
//! - a real Prometheus server scrapes `/metrics` and its query API returns those counts.
//!
//! Runs inside tests/netns-run (multicast on lo; 127.0.0.1 only).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

const HOSTILE_AGENT: &str = "<script>alert(1)</script>";

fn start(dir: &Path) -> (Daemon, SocketAddr, SocketAddr) {
    let listen = support::Listen::new().with_http().with_rtsp().write(
        dir,
        "status:\n  enabled: true\n  refresh_s: 0\nmetrics:\n  enabled: true\n",
    );
    let mport = support::free_udp_port();
    std::fs::write(
        dir.join("demo.yaml"),
        format!(
            "name: demo\ndescription: The <b>demo</b> station\nsource:\n  type: playlist\n  files: [{}]\n  loop: true\n\
             multicast:\n  group: 239.255.44.{}\n  port: {mport}\n  interface: lo\n  ttl: 0\n",
            support::demo_media().display(),
            mport % 200 + 1
        ),
    )
    .unwrap();
    let (http, rtsp) = (listen.http(), listen.rtsp());
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(http, Duration::from_secs(10));
    d.wait_for_tcp(rtsp, Duration::from_secs(10));
    (d, http, rtsp)
}

/// GET `path` (Connection: close); the body, or None on any failure or a non-200 answer.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn ffmpeg(name: &str, args: &[&str]) -> Daemon {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(args)
        .args(["-f", "null", "-"]);
    Daemon::spawn(name, cmd)
}

/// A plain-HTTP player with a markup user agent, reading the stream on a thread until told
/// to stop.
fn plain_client(http: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(http) else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let req =
            format!("GET /demo HTTP/1.1\r\nHost: {http}\r\nUser-Agent: {HOSTILE_AGENT}\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return 0;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        total
    })
}

/// The value of one sample line `name{labels} value` in a metrics text.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// An instant query against Prometheus's HTTP API: the first result's value.
fn prom_query(prom: SocketAddr, query: &str) -> Option<f64> {
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let body = get(prom, &format!("/api/v1/query?query={encoded}"))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn status_pages_and_metrics_show_the_clients_real_peers_made() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("ops-web");
    let (mut d, http, rtsp) = start(dir.path());
    let mmsh_url = format!("mmsh://{http}/demo");
    let rtsp_url = format!("rtsp://{rtsp}/demo");
    let _ff1 = ffmpeg("ffmpeg-mmsh-1", &["-i", &mmsh_url]);
    let _ff2 = ffmpeg("ffmpeg-mmsh-2", &["-i", &mmsh_url]);
    let _ff3 = ffmpeg("ffmpeg-rtsp", &["-rtsp_transport", "tcp", "-i", &rtsp_url]);
    let stop = Arc::new(AtomicBool::new(false));
    let plain = plain_client(http, stop.clone());
    // Expected: 2 FFmpeg + 1 plain client over HTTP delivery (mmsh), 1 FFmpeg over RTSP.
    let (want_mmsh, want_rtsp) = (3.0, 1.0);

    // The snapshot is refreshed every second: wait until the metrics show every client.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let m = get(http, "/metrics").unwrap_or_default();
        let mmsh = sample(&m, "asfcast_clients{station=\"demo\",protocol=\"mmsh\"}");
        let rtsp = sample(&m, "asfcast_clients{station=\"demo\",protocol=\"rtsp\"}");
        if mmsh == Some(want_mmsh) && rtsp == Some(want_rtsp) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "clients never all showed: mmsh={mmsh:?} rtsp={rtsp:?}\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!(
        "metrics: {} lines, {} bytes",
        metrics.lines().count(),
        metrics.len()
    );
    for series in [
        "asfcast_client_joins_total{station=\"demo\",protocol=\"mmsh\"}",
        "asfcast_sent_bytes_total{station=\"demo\",protocol=\"mmsh\"}",
        "asfcast_msb_datagrams_total{station=\"demo\",kind=\"parity\"}",
        "asfcast_pacing_lateness_seconds_count{station=\"demo\"}",
        "asfcast_loop_turn_seconds_count",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        let v = sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"));
        eprintln!("{series} = {v}");
        assert!(v > 0.0, "{series} = {v}");
    }
    assert_eq!(
        sample(
            &metrics,
            "asfcast_source_state{station=\"demo\",state=\"playing\"}"
        ),
        Some(1.0)
    );

    // (a) Headless Chromium renders the pages; the DOM has the counts.
    let profile = dir.path().join("chromium-profile");
    let dom = support::chromium(&profile, &["--dump-dom"], &format!("http://{http}/"));
    for (protocol, want) in [("mmsh", want_mmsh), ("rtsp", want_rtsp), ("mms", 0.0)] {
        let cell = format!("id=\"clients-demo-{protocol}\">{want}<");
        assert!(
            dom.contains(&cell),
            "no {cell} in the rendered index:\n{dom}"
        );
    }
    assert!(dom.contains(">demo</a>"), "{dom}");
    assert!(dom.contains("<span id=\"client-count\">4</span>"), "{dom}");
    let page = support::chromium(
        &profile,
        &["--dump-dom"],
        &format!("http://{http}/status/demo"),
    );
    assert!(page.contains("<h1 id=\"station\">demo</h1>"), "{page}");
    assert_eq!(page.matches("data-protocol=\"mmsh\"").count(), 3, "{page}");
    assert_eq!(page.matches("data-protocol=\"rtsp\"").count(), 1, "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        !page.contains(HOSTILE_AGENT),
        "the user agent became markup:\n{page}"
    );
    assert!(
        page.contains("The &lt;b&gt;demo&lt;/b&gt; station"),
        "{page}"
    );
    assert!(page.contains("href=\"/demo.nsc\""), "{page}");
    assert!(page.contains("id=\"chart-clients\""), "{page}");
    for (name, url) in [
        ("index.png", format!("http://{http}/")),
        ("station.png", format!("http://{http}/status/demo")),
    ] {
        let shot = dir.path().join(name);
        support::chromium(
            &profile,
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1200,900",
            ],
            &url,
        );
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
        eprintln!("screenshot {} ({} bytes)", shot.display(), png.len());
        // To look at them: ASFCAST_SCREENSHOT_DIR=/some/dir keeps a copy.
        if let Some(keep) = std::env::var_os("ASFCAST_SCREENSHOT_DIR") {
            let _ = std::fs::copy(&shot, Path::new(&keep).join(name));
        }
    }

    // (b) promtool accepts the exposition.
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // (c) A real Prometheus scrapes the daemon; its query API returns the counts.
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", support::free_tcp_port())
        .parse()
        .unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: asfcast\n    static_configs:\n      - targets: ['{http}']\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"));
    let mut prom = Daemon::spawn("prometheus", cmd);
    prom.wait_for_tcp(prom_addr, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mmsh, rtsp, total) = loop {
        let got = (
            prom_query(
                prom_addr,
                "asfcast_clients{station=\"demo\",protocol=\"mmsh\"}",
            ),
            prom_query(
                prom_addr,
                "asfcast_clients{station=\"demo\",protocol=\"rtsp\"}",
            ),
            prom_query(prom_addr, "sum(asfcast_clients{station=\"demo\"})"),
        );
        if got.0.is_some() && got.1.is_some() && got.2.is_some() {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the series: {got:?}\n{}",
            prom.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("prometheus: mmsh={mmsh:?} rtsp={rtsp:?} sum={total:?}");
    assert_eq!(mmsh, Some(want_mmsh));
    assert_eq!(rtsp, Some(want_rtsp));
    assert_eq!(total, Some(want_mmsh + want_rtsp));
    let up = prom_query(prom_addr, "up{job=\"asfcast\"}");
    assert_eq!(up, Some(1.0), "scrape target not up");

    stop.store(true, Ordering::Relaxed);
    let read = plain.join().unwrap_or(0);
    assert!(read > 0, "the plain client received nothing");
    assert!(d.is_running(), "daemon died:\n{}", d.stderr());
}
