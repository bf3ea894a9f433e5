//! Outsider attacks on the live sources (push ingest, pull). Only loopback traffic; run inside
//! tests/netns-run.
//!
//! A pull upstream that repeats its `$H` (same header every time, one packet after each) made
//! the daemon log "pull stream started" once per header, unthrottled: ~100,000 INFO lines a
//! second (1.6 M lines, 250 MB of log in 12 s) from a single upstream connection, with the
//! daemon near 100 % CPU. Bad packets from the upstream are rate-limited; headers were not.
//! Fixed: the line is written once per stream (src/source/pull.rs), repeats go to debug.
//!
//! A `POST /v1/check` of 100,000 `[` blocked the daemon's one thread ~0.4–1.3 s per request.
//! Fixed: the config loader refuses nesting past 64 levels at the first level past it, before
//! the full parse (src/config/aliases.rs).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::http::push::framing::{write_chunk, Layout};
use support::{Daemon, TempDir};

#[test]
fn pull_upstream_header_storm_does_not_flood_the_log() {
    if !support::require_private_netns() {
        return;
    }
    let (head, packets) = support::push::parts(&support::demo_media());
    let h = write_chunk(Layout::Wmsp, b'H', &head, 0).unwrap();
    let d = write_chunk(Layout::Wmsp, b'D', &packets[0], 0).unwrap();

    // The fake upstream: every connection gets a 200, then `$H` + `$D` over and over, for at
    // most 4 s.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    thread::spawn(move || {
        up.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && !stop2.load(Ordering::Relaxed) {
            let Ok((mut c, _)) = up.accept() else {
                thread::sleep(Duration::from_millis(20));
                continue;
            };
            let (h, d, stop3) = (h.clone(), d.clone(), stop2.clone());
            thread::spawn(move || {
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(n) if n > 0 => req.extend_from_slice(&b[..n]),
                        _ => return,
                    }
                }
                let _ = c.write_all(
                    b"HTTP/1.0 200 OK\r\nContent-Type: application/x-mms-framed\r\n\
                      Server: Cougar/9.01.01.3814\r\nPragma: client-id=1234\r\n\r\n",
                );
                let mut burst = Vec::new();
                for _ in 0..64 {
                    burst.extend_from_slice(&h);
                    burst.extend_from_slice(&d);
                }
                let end = Instant::now() + Duration::from_secs(4);
                while Instant::now() < end && !stop3.load(Ordering::Relaxed) {
                    if c.write_all(&burst).is_err() {
                        return;
                    }
                }
            });
        }
    });

    let dir = TempDir::new("outsider-pull-storm");
    let path = dir.path().to_path_buf();
    let (http, _api) =
        support::outsider_config(&path, "log:\n  level: info\n  format: text\n", false);
    std::fs::write(
        path.join("pull.yaml"),
        format!(
            "name: pull\nsource:\n  type: pull\n  url: http://127.0.0.1:{up_port}/up\n  \
             reconnect_min: 100ms\n  reconnect_max: 1s\n  timeout: 2s\n"
        ),
    )
    .unwrap();
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(http, Duration::from_secs(10));
    thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let log = daemon.stderr();
    drop(daemon);
    let lines = log.lines().count();
    let started = log.matches("pull stream started").count();
    // An upstream that repeats its header a few thousand times in 4 s deserves a few lines,
    // not one per header.
    assert!(
        lines < 1000,
        "{lines} log lines in ~5 s ({started} of them \"pull stream started\") from one upstream"
    );
}

/// POST /v1/check with a body of only `[` is parsed on the daemon's only thread (one mio
/// Poll): 100,000 `[` take ~0.45 s, 250,000 ~1.1 s, and every station, player and listener
/// stalls meanwhile. Four back-to-back 100k posts kept the player-facing HTTP listener from
/// answering for ~2.5 s; 64 posts (32 at a time) took 49 s, GET /demo.nsc timing out (3 s).
#[test]
fn deeply_nested_check_body_does_not_freeze_the_daemon() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("outsider-nested");
    let path = dir.path().to_path_buf();
    let (http, api) = support::outsider_config(&path, "", true);
    let mut daemon = Daemon::asfcast(["run", "--config", path.to_str().unwrap()]);
    daemon.wait_for_tcp(api, Duration::from_secs(10));
    daemon.wait_for_tcp(http, Duration::from_secs(10));

    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let attacker = thread::spawn(move || {
        let body = "[".repeat(100_000);
        for _ in 0..4 {
            if stop2.load(Ordering::Relaxed) {
                break;
            }
            let Ok(mut s) = std::net::TcpStream::connect(api) else {
                break;
            };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = write!(
                s,
                "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
    });
    // A plain HTTP request to the player-facing listener, repeatedly, while the posts run.
    let mut worst = Duration::ZERO;
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut b = [0u8; 12];
        let _ = s.read(&mut b);
        worst = worst.max(t.elapsed());
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = attacker.join();
    drop(daemon);
    assert!(
        worst < Duration::from_millis(500),
        "the HTTP listener took {worst:?} to answer while /v1/check parsed 100k '['"
    );
}
