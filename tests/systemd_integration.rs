//! The daemon speaks sd_notify(3) to a socket the test owns (READY=1 once listening, STATUS=,
//! WATCHDOG=1 from the loop, RELOADING=1 on SIGHUP, STOPPING=1), and uses listening sockets
//! passed with LISTEN_FDS instead of binding its own.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

/// A unicast-only station (no multicast: runs anywhere) and an HTTP listener on `http_port`.
fn write_config(dir: &Path, http_port: u16) {
    std::fs::write(
        dir.join("server.yaml"),
        format!(
            "listen:\n  http: 127.0.0.1:{http_port}\n  mms: false\n  rtsp: false\nannounce_dir: {}\n",
            dir.join("announce").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("sd.yaml"),
        format!(
            "name: sd\nsource:\n  type: playlist\n  files: [{}]\n",
            support::demo_media().display()
        ),
    )
    .unwrap();
}

/// Collects notify messages until `want` are all seen or `limit` passes.
fn collect(sock: &UnixDatagram, want: &[&str], limit: Duration) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end
        && !want
            .iter()
            .all(|w| got.iter().any(|g: &String| g.contains(w)))
    {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[test]
fn notifies_ready_status_watchdog_reload_and_stop() {
    let dir = TempDir::new("sd-notify");
    let port = support::free_tcp_port();
    write_config(dir.path(), port);
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut cmd = Command::new(support::asfcast_bin());
    cmd.args(["run", "--config", dir.path().to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000");
    let d = Daemon::spawn("asfcast-notify", cmd);
    let got = collect(&sock, &["READY=1", "WATCHDOG=1"], Duration::from_secs(20));
    let ready = got
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {got:?}; daemon log:\n{}", d.stderr()));
    assert!(ready.contains("STATUS=1 stations, 0 clients"), "{ready}");
    // READY=1 comes only once the listener accepts.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(got.iter().any(|m| m == "WATCHDOG=1\n"), "{got:?}");

    d.signal("HUP").unwrap();
    let got = collect(&sock, &["RELOADING=1", "READY=1"], Duration::from_secs(20));
    let reload = got.iter().position(|m| m.contains("RELOADING=1"));
    let ready = got.iter().rposition(|m| m.contains("READY=1"));
    assert!(
        matches!((reload, ready), (Some(a), Some(b)) if a < b),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m.contains("MONOTONIC_USEC=")), "{got:?}");

    d.signal("TERM").unwrap();
    let got = collect(&sock, &["STOPPING=1"], Duration::from_secs(20));
    assert!(got.iter().any(|m| m.contains("STOPPING=1")), "{got:?}");
}

#[test]
fn uses_listening_sockets_passed_by_systemd() {
    let dir = TempDir::new("sd-listen");
    // The test holds the port: the daemon could not bind it itself, so serving on it proves
    // the passed socket is used.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    write_config(dir.path(), port);
    let fd = listener.as_raw_fd();
    // LISTEN_PID must be the daemon's own pid: a shell sets it to $$ and execs the daemon.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
        .arg(support::asfcast_bin())
        .args(["run", "--config", dir.path().to_str().unwrap()])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "http");
    // SAFETY: only dup2/fcntl between fork and exec (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps FD_CLOEXEC, so clear it explicitly.
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut d = Daemon::spawn("asfcast-listen", cmd);
    assert!(
        d.wait_for_stderr("using socket passed by systemd", Duration::from_secs(20)),
        "{}",
        d.stderr()
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("<h2>sd</h2>"), "{out}");
    assert!(d.is_running());
}
