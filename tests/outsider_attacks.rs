//! Outsider attacks on the control API. A small YAML "billion laughs" body (42 kB, under
//! MAX_BODY) posted to /v1/check used to make the daemon expand every alias: RSS grew by GBs
//! per second, the API stopped answering and MMSH players stalled. The loader now refuses
//! aliases before any deserializer runs (src/config/aliases.rs). Bounded: the request gets
//! 2 s. Only loopback traffic; run inside tests/netns-run.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{Daemon, TempDir};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn yaml_alias_bomb_to_check_is_bounded() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("outsider-bomb");
    let path = dir.path().to_path_buf();
    let (_http, api) = support::outsider_config(&path, "", true);
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(api, Duration::from_secs(10));

    let mut y = format!("a: &a [{}]\n", vec!["x"; 2000].join(","));
    let mut prev = "a".to_string();
    for i in 0..5 {
        let refs = vec![format!("*{prev}"); 2000].join(",");
        y.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        prev = format!("l{i}");
    }
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(
        s,
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{y}",
        y.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    let answered = s.read_to_end(&mut answer).is_ok();
    let rss = rss_kb(daemon.pid());
    drop(daemon);
    assert!(answered, "no answer within 2 s; daemon RSS {rss} kB");
    assert!(rss < 512 * 1024, "daemon RSS {rss} kB after the bomb");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer: String = answer.split_whitespace().collect();
    assert!(
        answer.contains("\"ok\":false")
            && answer.contains("YAMLaliases")
            && answer.contains("\"line\":2"),
        "the check names the first alias: {answer}"
    );
}
