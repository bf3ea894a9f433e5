//! The HTTP listener serves the announcements (.nsc, .asx, the station list) and refuses
//! hostile requests cleanly, staying healthy. Runs inside the private namespace (the station
//! has multicast, which the .nsc describes).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{Daemon, TempDir};

fn start(dir: &std::path::Path) -> (Daemon, SocketAddr) {
    let addr = support::Listen::new()
        .with_http()
        .write(
            dir,
            "limits:\n  request_max_bytes: 8192\n  handshake_timeout: 2s\n",
        )
        .http();
    let mport = support::free_udp_port();
    std::fs::write(
        dir.join("web.yaml"),
        format!(
            "name: web\ndescription: A <b>test</b> station\nsource:\n  type: playlist\n  files: [{}]\n\
             multicast:\n  group: 239.255.43.{}\n  port: {mport}\n  interface: lo\n  ttl: 0\n",
            support::demo_media().display(),
            mport % 200 + 1
        ),
    )
    .unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.to_str().unwrap()]);
    d.wait_for_tcp(addr, Duration::from_secs(10));
    (d, addr)
}

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn announcements_are_served_and_hostile_requests_refused() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("http-announce");
    let (mut d, addr) = start(dir.path());

    let nsc = get(addr, "/web.nsc");
    assert!(nsc.starts_with("HTTP/1.1 200"), "{nsc}");
    assert!(nsc.contains("Content-Type: video/x-ms-asf\r\n"), "{nsc}");
    assert!(nsc.contains("Cache-Control: no-cache\r\n"), "{nsc}");
    assert!(nsc.contains("\r\n\r\n[Address]\r\nName=02"), "{nsc}");
    assert!(nsc.contains("\r\nFormat1=02"), "{nsc}");
    // The served file is the one written to the announce directory.
    let on_disk = std::fs::read_to_string(dir.path().join("announce/web.nsc")).unwrap();
    assert!(nsc.ends_with(&on_disk));

    let asx = get(addr, "/web.asx");
    assert!(asx.contains("\r\n\r\n<ASX VERSION=\"3.0\">"), "{asx}");
    assert!(
        asx.contains(&format!(
            "<REF HREF=\"http://127.0.0.1:{}/web.nsc\" />",
            addr.port()
        )),
        "{asx}"
    );

    let index = get(addr, "/");
    assert!(
        index.contains("A &lt;b&gt;test&lt;/b&gt; station"),
        "escaped: {index}"
    );

    assert!(get(addr, "/nope.nsc").starts_with("HTTP/1.1 404"));
    assert!(get(addr, "/../../etc/passwd").starts_with("HTTP/1.1 400"));
    assert!(get(addr, "/%2e%2e/%2e%2e/etc/passwd").starts_with("HTTP/1.1 400"));
    let big = format!(
        "GET /web.nsc HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    assert!(exchange(addr, big.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(exchange(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    let post = exchange(
        addr,
        b"POST /web.nsc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");

    // A client that never finishes its request is closed after the handshake timeout.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /web.nsc HTTP/1.1\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut buf = Vec::new();
    let started = std::time::Instant::now();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "slow client was closed"
    );

    // Healthy afterwards.
    assert!(get(addr, "/web.nsc").starts_with("HTTP/1.1 200"));
    assert!(d.is_running());
    assert!(!d.stderr().contains("panicked"));
}
