//! The config and upload routes of the control API attacked from outside (issue 15): a client
//! with nothing but a TCP connection to the API on 127.0.0.1 tries to stop the box, fill its
//! disk or hold its resources; the real daemon runs (`asfcast run --last-good`) and FFmpeg
//! decoding the station after each attack is the judge that the box still serves.
//! - a station file naming a FIFO (valid YAML, a path the daemon can open): the daemon's one
//!   thread must not block on it (it used to, for good, and the file was saved as last good);
//! - deleting the media file a station plays: 409 naming the station, the file stays;
//! - an upload over the media file a station plays that is not ASF: 422, the file stays;
//!   an ASF one replaces it and the station plays on;
//! - more parallel uploads than the daemon takes: the extra ones get 503 with Retry-After and
//!   no file, those in progress finish.
//!
//! Only loopback traffic; run inside tests/netns-run like the rest.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use support::partition::*;

/// O_NONBLOCK on Linux (the test opens the FIFO's other end without waiting).
const O_NONBLOCK: i32 = 0o4000;

/// Sends `head` and `body` on a new connection and returns the connection (for more).
fn send(addr: SocketAddr, head: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

/// The status code of the answer on `s` (read to its end).
fn status_of(mut s: TcpStream) -> (u16, String) {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let t = text(&out);
    let code = t
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, t)
}

fn demo_plays(s: &Setup, what: &str) {
    let (video, audio) = ffmpeg_frames(s.http, "demo", 2);
    eprintln!("{what}: ffmpeg -t 2 decoded video={video} audio={audio}");
    assert!(
        video >= 20 && audio >= 20,
        "{what}: video={video} audio={audio}"
    );
}

#[test]
fn a_station_naming_a_fifo_does_not_stop_the_daemon() {
    let mut s = start("oc-fifo");
    let fifo = s._dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|st| st.success()));
    let yaml = format!(
        "name: pipe\nsource:\n  type: playlist\n  files: [{}]\n  loop: true\n",
        fifo.display()
    );
    let (code, body) = http(
        s.api,
        "PUT",
        "/v1/config/stations/pipe",
        "",
        yaml.as_bytes(),
    );
    // Unblock a daemon stuck in open(2) so the test ends either way.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(&fifo);
    assert_eq!(code, 201, "{body}");
    let (code, _) = http(s.api, "GET", "/v1/version", "", b"");
    assert_eq!(code, 200);
    demo_plays(&s, "after a station naming a FIFO");
    assert!(
        s.daemon
            .wait_for_stderr("not a regular file", Duration::from_secs(5)),
        "{}",
        s.daemon.stderr()
    );
}

#[test]
fn parallel_uploads_beyond_the_limit_are_refused_and_the_rest_finish() {
    let s = start("oc-parallel");
    let head = |name: &str, len: usize| {
        format!("PUT /v1/config/media/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    // Four clients announce 1 MiB and send 1 byte (a slow client keeps going at a byte per
    // idle timeout).
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(send(s.api, &head(&format!("slow{i}.asf"), 1 << 20), b"x"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (code, answer) = status_of(send(s.api, &head("fifth.asf", 3), b"abc"));
    assert_eq!(code, 503, "{answer}");
    assert!(answer.contains("Retry-After: 10"), "{answer}");
    let media = s.etc.join("media");
    assert!(!files_in(&media).iter().any(|f| f.contains("fifth")));
    // The ones in progress finish.
    for mut c in held.drain(..) {
        c.write_all(&vec![b'y'; (1 << 20) - 1]).unwrap();
        let (code, answer) = status_of(c);
        assert_eq!(code, 201, "{answer}");
    }
    let names = files_in(&media);
    assert!(
        names.iter().filter(|n| n.starts_with("slow")).count() == 4,
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".part")), "{names:?}");
    let (code, answer) = status_of(send(s.api, &head("fifth.asf", 3), b"abc"));
    assert_eq!(code, 201, "{answer}");
    demo_plays(&s, "after parallel uploads");
}

#[test]
fn the_media_file_a_station_plays_cannot_be_deleted() {
    let s = start("oc-delete-playing");
    let (code, body) = http(s.api, "DELETE", "/v1/config/media/demo.asf", "", b"");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("demo"), "{body}");
    assert!(s.etc.join("media/demo.asf").is_file());
    // A file no station plays goes.
    std::fs::write(s.etc.join("media/spare.asf"), b"x").unwrap();
    let (code, body) = http(s.api, "DELETE", "/v1/config/media/spare.asf", "", b"");
    assert_eq!(code, 200, "{body}");
    demo_plays(&s, "after an attempt to delete its file");
}

#[test]
fn an_upload_over_a_playing_file_must_be_asf() {
    let s = start("oc-replace-playing");
    let demo = s.etc.join("media/demo.asf");
    let before = std::fs::read(&demo).unwrap();
    let (code, body) = http(s.api, "PUT", "/v1/config/media/demo.asf", "", &[0u8; 4096]);
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        std::fs::read(&demo).unwrap(),
        before,
        "the played file was replaced"
    );
    assert!(!files_in(&s.etc.join("media"))
        .iter()
        .any(|f| f.ends_with(".part")));
    demo_plays(&s, "after a non-ASF upload over its file");
    let other = std::fs::read(support::demo_media_b()).unwrap();
    let (code, body) = http(s.api, "PUT", "/v1/config/media/demo.asf", "", &other);
    assert_eq!(code, 201, "{body}");
    assert_eq!(std::fs::read(&demo).unwrap(), other);
    demo_plays(&s, "after an ASF upload over its file");
}
