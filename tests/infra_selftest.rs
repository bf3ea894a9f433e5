//! Self-test of the test infrastructure: the demo media are what
//! `scripts/make-demo-media` promises (checked by a real decoder, ffprobe), the
//! `tests/support` helpers behave, and — inside `tests/netns-run` — multicast
//! really loops back over lo (IPv4) and the veth pair (IPv6), so a multicast
//! test that fails later fails because of asfcast, not because of the harness.
//!
//! Fails when ffmpeg/ffprobe is missing: the end-to-end tests need it anyway.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_media_has_wmv2_video_and_wma2_audio() {
    let streams = support::ffprobe_streams(support::demo_media());
    assert_eq!(
        streams,
        vec![
            ("video".to_owned(), "wmv2".to_owned()),
            ("audio".to_owned(), "wmav2".to_owned())
        ]
    );
    let streams_b = support::ffprobe_streams(support::demo_media_b());
    assert_eq!(streams_b, streams, "demo-b.asf: same codecs, other header");
}

#[test]
fn demo_media_frame_counts() {
    // 10 s at 25 fps and 6 s at 15 fps, every frame decodable.
    assert_eq!(
        support::ffprobe_count_frames(support::demo_media(), "v:0").unwrap(),
        250
    );
    assert_eq!(
        support::ffprobe_count_frames(support::demo_media_b(), "v:0").unwrap(),
        90
    );
    // WMA2 at 44.1 kHz stereo: 2048-sample frames, ~215 in 10 s.
    let audio = support::ffprobe_count_frames(support::demo_media(), "a:0").unwrap();
    assert!((210..=220).contains(&audio), "audio frames: {audio}");
}

#[test]
fn demo_media_is_small_and_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    for path in [support::demo_media(), support::demo_media_b()] {
        let meta = std::fs::metadata(&path).unwrap();
        assert!(
            meta.len() < 1_000_000,
            "{}: {} bytes",
            path.display(),
            meta.len()
        );
        assert_eq!(
            meta.permissions().mode() & 0o444,
            0o444,
            "{} must be world-readable (VLC runs as nobody)",
            path.display()
        );
    }
}

#[test]
fn ffprobe_errors_are_reported_not_hung() {
    let missing = support::temp_path("missing.asf");
    let err = support::ffprobe_count_frames(&missing, "v:0").unwrap_err();
    assert!(
        matches!(err, support::ToolError::Failed { .. }),
        "unexpected: {err}"
    );
}

#[test]
fn samples_dir_holds_the_shared_samples() {
    assert!(support::sample("sample-wmv2-wmav2.asf").is_file());
}

#[test]
fn free_ports_are_bindable() {
    let tcp = support::free_tcp_port();
    let udp = support::free_udp_port();
    assert_ne!(tcp, 0);
    assert_ne!(udp, 0);
    TcpListener::bind((Ipv4Addr::LOCALHOST, tcp)).unwrap();
    UdpSocket::bind((Ipv4Addr::LOCALHOST, udp)).unwrap();
}

#[test]
fn wait_for_tcp_sees_a_listener_and_times_out_without_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    support::wait_for_tcp(addr, Duration::from_secs(2)).unwrap();
    drop(listener);

    let closed = SocketAddr::from((Ipv4Addr::LOCALHOST, support::free_tcp_port()));
    let start = Instant::now();
    assert!(support::wait_for_tcp(closed, Duration::from_millis(300)).is_err());
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn daemon_guard_captures_stderr_and_terminates_the_process_group() {
    let marker = support::temp_path("grandchild.pid");
    let mut cmd = Command::new("sh");
    // A grandchild that would outlive a plain kill of the shell.
    cmd.arg("-c")
        .arg("sleep 300 & echo $! > \"$1\"; echo ready >&2; wait")
        .arg("sh")
        .arg(&marker);
    let mut daemon = support::Daemon::spawn("sleeper", cmd);
    assert!(daemon.wait_for_stderr("ready", Duration::from_secs(5)));
    assert!(daemon.is_running());
    let grandchild = std::fs::read_to_string(&marker).unwrap();
    let grandchild = grandchild.trim().to_owned();

    let status = daemon.stop();
    assert_eq!(status.signal(), Some(15), "stopped by SIGTERM: {status:?}");
    // The grandchild got SIGTERM with its group (it may linger as a zombie of
    // init for a moment, so poll its state rather than its existence).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
        match stat {
            Err(_) => break,
            Ok(s) if s.contains(") Z ") => break,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(s) => panic!("grandchild {grandchild} still alive: {s}"),
        }
    }
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn daemon_guard_kills_a_process_that_ignores_sigterm() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' TERM; echo up >&2; while :; do sleep 0.05; done");
    let mut daemon = support::Daemon::spawn("stubborn", cmd);
    assert!(daemon.wait_for_stderr("up", Duration::from_secs(5)));
    let status = daemon.stop();
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

#[test]
fn ipv4_multicast_loops_back_inside_the_namespace() {
    if !support::require_private_netns() {
        return;
    }
    let group = Ipv4Addr::new(239, 255, 42, 42);
    let rx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = rx.local_addr().unwrap().port();
    rx.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    for ttl in [0, 1] {
        tx.set_multicast_ttl_v4(ttl).unwrap();
        let payload = format!("ttl {ttl}");
        tx.send_to(payload.as_bytes(), (group, port)).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(buf.get(..n), Some(payload.as_bytes()));
    }
}

#[test]
fn ipv6_multicast_loops_back_over_the_veth_pair() {
    let Some((name, index)) = support::netns_v6_interface() else {
        return;
    };
    let group: Ipv6Addr = "ff15::4242".parse().unwrap();
    let rx = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    let port = rx.local_addr().unwrap().port();
    rx.join_multicast_v6(&group, index).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let tx = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    // No IPV6_MULTICAST_IF in std: the `ff00::/8 dev mc0 table local` route
    // that tests/netns-run adds picks the interface.
    tx.send_to(b"v6", SocketAddrV6::new(group, port, 0, 0))
        .unwrap_or_else(|e| panic!("send to {group} via {name}: {e}"));
    let mut buf = [0u8; 16];
    let (n, _) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(buf.get(..n), Some(&b"v6"[..]));
}
