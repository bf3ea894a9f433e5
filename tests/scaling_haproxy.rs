//! Across boxes in one site, an L4 balancer spreads players over edges (docs/scaling.md):
//! HAProxy (TCP mode, `balance source`) in front of two asfcast edges that pull the same origin,
//! and `asfcast-load` with 400 MMSH clients through it. The clients come from 16 loopback
//! addresses (127.0.0.2–127.0.0.17, `asfcast-load --bind`) so that the source hash has
//! something to spread; every client must reach the media at the stream's rate, and each
//! edge's `/metrics` must show it got clients.
//!
//! Needs `haproxy` (Debian package; scripts/install-deps). Unicast on 127.0.0.0/8 only.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{bounded, Daemon, TempDir};

const CLIENTS: usize = 400;

fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", support::free_tcp_port())
        .parse()
        .unwrap()
}

/// Starts an asfcast daemon in `dir` with metrics on, serving `station_yaml` as `demo`. Every
/// connection through HAProxy comes from HAProxy's own address, so the per-address limit
/// (100 by default) is raised, as docs/scaling.md says an edge behind a balancer needs.
fn start(dir: &Path, station_yaml: &str) -> (Daemon, SocketAddr) {
    std::fs::create_dir_all(dir).unwrap();
    let http = free_addr();
    std::fs::write(
        dir.join("server.yaml"),
        format!(
            "listen:\n  http: {http}\n  mms: false\n  rtsp: false\nannounce_dir: {}\nmetrics:\n  enabled: true\n\
             limits:\n  max_clients_per_ip: 2000\n",
            dir.join("announce").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("demo.yaml"), station_yaml).unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(http, Duration::from_secs(10));
    (d, http)
}

/// A sample of the edge's Prometheus page.
fn metric(http: SocketAddr, line_prefix: &str) -> u64 {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn haproxy_spreads_400_mmsh_clients_over_two_edges() {
    let dir = TempDir::new("haproxy");
    let (_origin, origin_http) = start(
        &dir.path().join("origin"),
        &format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\n",
            support::demo_media().display()
        ),
    );
    let pull = format!("name: demo\nsource:\n  type: pull\n  url: mmsh://{origin_http}/demo\n");
    let (mut e1, e1_http) = start(&dir.path().join("edge1"), &pull);
    let (mut e2, e2_http) = start(&dir.path().join("edge2"), &pull);
    for e in [&mut e1, &mut e2] {
        assert!(
            e.wait_for_stderr("pull stream started", Duration::from_secs(20)),
            "{}",
            e.stderr()
        );
    }
    let front = free_addr();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  \
             timeout server 60s\nfrontend players\n  bind {front}\n  default_backend edges\n\
             backend edges\n  balance source\n  server edge1 {e1_http}\n  server edge2 {e2_http}\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&cfg);
    let mut haproxy = Daemon::spawn("haproxy", cmd);
    haproxy.wait_for_tcp(front, Duration::from_secs(10));

    let bind: Vec<String> = (2..18).map(|i| format!("127.0.0.{i}")).collect();
    let mut load = bounded(
        Duration::from_secs(120),
        support::repo_root().join("target/debug/asfcast-load"),
    );
    load.arg(format!("mmsh://{front}/demo"))
        .args([
            "-n",
            &CLIENTS.to_string(),
            "--seconds",
            "8",
            "--warmup",
            "5",
            "--ramp",
            "400",
        ])
        .args(["--label", "haproxy", "--bind", &bind.join(",")])
        .args(["--pid", &e1.pid().to_string()]);
    let out =
        support::run_bounded(&mut load, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{report}");
    let field = |name: &str| -> usize {
        report
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {report}"))
    };
    assert_eq!(field("clients"), CLIENTS, "{report}");
    assert_eq!(field("never_played"), 0, "{report}");
    assert_eq!(field("connect_errors"), 0, "{report}");
    assert_eq!(field("at_rate"), CLIENTS, "{report}");
    let joins = |http| {
        metric(
            http,
            "asfcast_client_joins_total{station=\"demo\",protocol=\"mmsh\"}",
        )
    };
    let (j1, j2) = (joins(e1_http), joins(e2_http));
    eprintln!("MMSH clients that joined: edge1={j1} edge2={j2}");
    assert!(
        j1 > 0 && j2 > 0,
        "one edge got every client: edge1={j1} edge2={j2}"
    );
    assert!(j1 + j2 >= CLIENTS as u64, "edge1={j1} edge2={j2}");
    for e in [&e1, &e2] {
        assert!(!e.stderr().contains("panicked"));
    }
    drop(haproxy);
}
