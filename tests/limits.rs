//! The limits on who may watch, against the real daemon with every listener on: the third
//! player past an aggregate player bandwidth limit is refused with each protocol's own answer
//! (MMSH `503` + `Retry-After`, RTSP `453`, MMS an OpenFile report with an error HRESULT)
//! while the first two keep the stream's full rate; a burst past the connection rate is
//! refused at accept with an aggregated log line; a distribution connection (`NSServer/9.0`)
//! is counted apart from players, under its own limit; a station whose bit rate is over the
//! per-player limit refuses players.
//!
//! Rates are ratios of bytes to the stream's own rate measured here from the file; no
//! wall-clock time is asserted, only bounded waits. Runs inside `tests/netns-run`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::AsfReader;
use asfcast::mms::codec::SESSION_ID;
use support::raw::{self, CountingReader};
use support::{Daemon, TempDir};

struct Setup {
    _dir: TempDir,
    daemon: Daemon,
    http: SocketAddr,
    mms: SocketAddr,
    rtsp: SocketAddr,
}

/// The demo file's header bit rate (what one client costs under the limits).
fn header_bitrate() -> u64 {
    let r = AsfReader::open(&support::demo_media()).expect("demo media");
    u64::from(r.header().file.max_bitrate)
}

/// A daemon with HTTP, MMS and RTSP on free ports, `server_limits` lines under `limits:` in
/// server.yaml and one station `web` with `station_limits` lines under its `limits:`.
fn start(tag: &str, server_limits: &str, station_limits: &str) -> Setup {
    let dir = TempDir::new(tag);
    let listen = support::Listen::three().write(
        dir.path(),
        &format!("limits:\n  handshake_timeout: 30s\n{server_limits}"),
    );
    let station_limits = if station_limits.is_empty() {
        String::new()
    } else {
        format!("limits:\n{station_limits}")
    };
    support::playlist_station(dir.path(), "web", &support::demo_media(), &station_limits);
    let mut daemon = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    for a in listen.all() {
        daemon.wait_for_tcp(a, Duration::from_secs(10));
    }
    assert!(
        daemon.wait_for_stderr("station started", Duration::from_secs(10)),
        "{}",
        daemon.stderr()
    );
    // Let the station produce its header and first key frame.
    thread::sleep(Duration::from_millis(700));
    Setup {
        _dir: dir,
        daemon,
        http: listen.http(),
        mms: listen.mms(),
        rtsp: listen.rtsp(),
    }
}

/// An MMSH Play request with `agent` as the User-Agent.
fn mmsh_play(agent: &str) -> String {
    raw::mmsh_play_request("web").replace("NSPlayer/4.1.0.3856", agent)
}

/// Sends an MMSH Play and reads the response head; the stream (positioned after the head) and
/// the head.
fn mmsh_head(addr: SocketAddr, agent: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(mmsh_play(agent).as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// Starts an MMSH player that counts what it reads; panics unless it is answered 200.
fn mmsh_player(addr: SocketAddr, agent: &str) -> CountingReader {
    let (s, head) = mmsh_head(addr, agent);
    assert!(head.starts_with("HTTP/1.1 200"), "{agent} play: {head}");
    CountingReader::spawn(s, 1 << 16)
}

/// The MMS handshake (FFmpeg's commands, TCP data) up to OpenFile: the OpenFile report's
/// HRESULT and openFileId.
fn mms_open(addr: SocketAddr) -> (u32, u32) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let commands = raw::mms_commands("\\\\192.168.0.129\\TCP\\1037", "web");
    for (number, fields) in commands.into_iter().take(3) {
        s.write_all(&raw::mms_command(number, &fields)).unwrap();
        // Command replies only (no data before OpenFile): 8-byte head, length, the rest.
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(
            u32::from_le_bytes(head[4..8].try_into().unwrap()),
            SESSION_ID
        );
        let len = u32::from_le_bytes(head[8..12].try_into().unwrap()) as usize;
        let mut rest = vec![0u8; len + 4];
        s.read_exact(&mut rest).unwrap();
        let mid = u16::from_le_bytes([rest[24], rest[25]]);
        if mid == 0x06 {
            // `rest` starts at message offset 12: hr at offset 40, openFileId at 48.
            let word = |at: usize| u32::from_le_bytes(rest[at - 12..at - 8].try_into().unwrap());
            return (word(40), word(48));
        }
    }
    panic!("no OpenFile report");
}

/// DESCRIBE, SETUP (TCP interleaved) and PLAY with `extra` request lines on PLAY; the PLAY
/// answer's status line.
fn rtsp_play_status(addr: SocketAddr, extra: &str) -> String {
    let (_s, _setup, status) = rtsp_session(addr, "RTP/AVP/TCP;unicast;interleaved=0-1", extra);
    status
}

/// DESCRIBE, SETUP of the first stream with `transport`, PLAY with `extra` request lines: the
/// connection, the SETUP answer and the PLAY answer's status line.
fn rtsp_session(addr: SocketAddr, transport: &str, extra: &str) -> (TcpStream, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = format!("rtsp://{addr}/web");
    let d = raw::rtsp_exchange(
        &mut s,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"),
    )
    .unwrap();
    assert!(d.starts_with("RTSP/1.0 200"), "{d}");
    let c = d
        .lines()
        .filter_map(|l| l.strip_prefix("a=control:"))
        .map(str::trim)
        .filter(|c| *c != "*" && !c.is_empty())
        .map(|c| {
            if c.starts_with("rtsp://") {
                c.to_owned()
            } else {
                format!("{url}/{c}")
            }
        })
        .find(|c| c.trim_end_matches('/') != url.trim_end_matches('/'))
        .expect("a stream control");
    let r = raw::rtsp_exchange(
        &mut s,
        &format!("SETUP {c} RTSP/1.0\r\nCSeq: 2\r\nTransport: {transport}\r\n\r\n"),
    )
    .unwrap();
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    let session = raw::rtsp_header(&r, "Session")
        .and_then(|v| v.split(';').next().map(str::to_owned))
        .unwrap_or_default();
    let p = raw::rtsp_exchange(
        &mut s,
        &format!(
            "PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\nRange: npt=0-\r\n{extra}\r\n"
        ),
    )
    .unwrap();
    let status = p.lines().next().unwrap_or_default().to_owned();
    (s, r, status)
}

/// Waits until `r` has read `bytes` or `limit` passed.
fn wait_bytes(r: &CountingReader, bytes: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while r.bytes() < bytes && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn aggregate_player_bandwidth_refuses_the_third_player_on_each_protocol() {
    if !support::require_private_netns() {
        return;
    }
    // The demo's header says 314 kbit/s: 2.5 of it lets two players in and not a third.
    let rate = header_bitrate();
    let limit = rate * 5 / 2;
    let s = start(
        "limits-bw",
        "",
        &format!("  max_player_bandwidth: {limit}\n"),
    );
    let a = mmsh_player(s.http, "NSPlayer/12.0");
    let b = mmsh_player(s.http, "NSPlayer/12.0");
    wait_bytes(&a, 1, Duration::from_secs(10));
    wait_bytes(&b, 1, Duration::from_secs(10));

    // MMSH: 503 with Retry-After.
    let (_c, head) = mmsh_head(s.http, "NSPlayer/12.0");
    assert!(
        head.starts_with("HTTP/1.1 503"),
        "third MMSH player: {head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: "),
        "no Retry-After: {head}"
    );
    // RTSP: 453 Not Enough Bandwidth at PLAY.
    let status = rtsp_play_status(s.rtsp, "");
    assert!(
        status.starts_with("RTSP/1.0 453"),
        "third RTSP player: {status}"
    );
    // MMS: the OpenFile report fails (Access Denied) with no file id.
    let (hr, file_id) = mms_open(s.mms);
    assert_eq!(
        (hr, file_id),
        (0x8007_0005, 0),
        "third MMS player's OpenFile"
    );

    // The first two keep the stream's full rate: past their fast start, over a window.
    let stream = raw::stream_rate(&support::demo_media(), 12);
    thread::sleep(Duration::from_secs(3));
    let (a0, b0, t0) = (a.bytes(), b.bytes(), Instant::now());
    thread::sleep(Duration::from_secs(5));
    let elapsed = t0.elapsed().as_secs_f64();
    for (name, r, r0) in [("first", &a, a0), ("second", &b, b0)] {
        let ratio = (r.bytes() - r0) as f64 / (stream * elapsed);
        eprintln!("{name} player: {ratio:.2} of the stream rate");
        assert!(!r.ended(), "the {name} player was dropped");
        assert!(
            ratio > 0.8 && ratio < 1.3,
            "{name} player's rate ratio {ratio:.2}"
        );
    }
    let log = s.daemon.stderr();
    let lines = log
        .lines()
        .filter(|l| {
            l.contains("refused by limits") || l.contains("refused by max_player_bandwidth")
        })
        .filter(|l| l.contains("max_player_bandwidth"))
        .count();
    assert!(
        lines >= 3,
        "want a line naming the rule per protocol:\n{log}"
    );
    let _ = s.daemon.stop();
}

#[test]
fn connection_rate_refuses_a_burst_at_accept() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("limits-rate", "  max_connection_rate: 2\n", "");
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..60 {
        let mut c = TcpStream::connect(s.http).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"GET /web.asx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        // Refused at accept: closed before any answer.
        if out.starts_with(b"HTTP/1.1 ") {
            answered += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("burst of 60: {answered} answered, {refused} refused at accept");
    // The bucket holds two; the burst is far faster than two a second.
    assert!(
        (1..=10).contains(&answered) && refused >= 50,
        "{answered} answered, {refused} refused"
    );
    // The refusal log is aggregated: one line per source, reason and window, flushed at stop.
    let mut d = s.daemon;
    d.signal("TERM").unwrap();
    assert!(
        d.wait_for_stderr("(connection rate limit)", Duration::from_secs(10)),
        "{}",
        d.stderr()
    );
    let log = d.stderr();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("(connection rate limit)"))
        .collect();
    assert!(
        !lines.is_empty() && lines.len() <= 2,
        "want one aggregate line per window: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("from 127.0.0.1")),
        "{lines:#?}"
    );
}

#[test]
fn distribution_connections_are_counted_apart() {
    if !support::require_private_netns() {
        return;
    }
    let s = start(
        "limits-dist",
        "  max_players: 1\n  max_distribution_connections: 1\n",
        "",
    );
    let player = mmsh_player(s.http, "NSPlayer/12.0");
    // Players are full; a distribution connection is counted apart.
    let relay = mmsh_player(s.http, "NSServer/9.0");
    let (_p2, head) = mmsh_head(s.http, "NSPlayer/12.0");
    assert!(head.starts_with("HTTP/1.1 503"), "second player: {head}");
    let (_r2, head) = mmsh_head(s.http, "NSServer/9.0");
    assert!(head.starts_with("HTTP/1.1 503"), "second relay: {head}");
    let status = rtsp_play_status(s.rtsp, "");
    assert!(
        status.starts_with("RTSP/1.0 503"),
        "RTSP player over max_players: {status}"
    );
    wait_bytes(&player, 1, Duration::from_secs(10));
    wait_bytes(&relay, 1, Duration::from_secs(10));
    assert!(player.bytes() > 0 && relay.bytes() > 0);
    let log = s.daemon.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("refused by limits") && l.contains("max_players")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("refused by limits") && l.contains("max_distribution_connections")),
        "{log}"
    );
    let _ = s.daemon.stop();
}

#[test]
fn bandwidth_per_player_refuses_players() {
    if !support::require_private_netns() {
        return;
    }
    // The station's bit rate is over the per-player limit: no player fits, on any protocol.
    let limit = header_bitrate() * 2 / 3;
    let s = start(
        "limits-per",
        "",
        &format!("  max_bandwidth_per_player: {limit}\n"),
    );
    let (_c, head) = mmsh_head(s.http, "NSPlayer/12.0");
    assert!(head.starts_with("HTTP/1.1 503"), "MMSH: {head}");
    let status = rtsp_play_status(s.rtsp, "");
    assert!(status.starts_with("RTSP/1.0 453"), "RTSP: {status}");
    let (hr, _) = mms_open(s.mms);
    assert_eq!(hr, 0x8007_0005, "MMS OpenFile hr");
    // A distribution connection is not a player.
    let relay = mmsh_player(s.http, "NSServer/9.0");
    wait_bytes(&relay, 1, Duration::from_secs(10));
    assert!(relay.bytes() > 0);
    let log = s.daemon.stderr();
    assert!(
        log.lines()
            .filter(|l| l.contains("refused by limits") && l.contains("max_bandwidth_per_player"))
            .count()
            >= 2,
        "{log}"
    );
    let _ = s.daemon.stop();
}

#[test]
fn a_player_announcing_too_little_bandwidth_is_refused() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("limits-announced", "", "");
    let status = rtsp_play_status(s.rtsp, "Bandwidth: 56000\r\n");
    assert!(
        status.starts_with("RTSP/1.0 453"),
        "RTSP with 56 kbit/s: {status}"
    );
    let status = rtsp_play_status(s.rtsp, "Bandwidth: 2147483647\r\n");
    assert!(
        status.starts_with("RTSP/1.0 200"),
        "RTSP with plenty: {status}"
    );
    let log = s.daemon.stderr();
    assert!(log.contains("client_bandwidth"), "{log}");
    let _ = s.daemon.stop();
}

/// Two UDP sockets on 127.0.0.1 at an even port and the next one (an RTP/RTCP pair).
fn udp_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
}

/// Bytes that arrive on `socks` over `window`.
fn udp_bytes(socks: &[&UdpSocket], window: Duration) -> u64 {
    let end = Instant::now() + window;
    let mut total = 0;
    let mut buf = vec![0u8; 65536];
    for s in socks {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    }
    while Instant::now() < end {
        for s in socks {
            while let Ok(n) = s.recv(&mut buf) {
                total += n as u64;
            }
        }
    }
    total
}

#[test]
fn rtp_over_udp_waits_for_the_client_to_speak_from_its_port() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("limits-amp", "", "");
    let (rtp, rtcp) = udp_pair();
    let port = rtp.local_addr().unwrap().port();
    let (_c, setup, status) = rtsp_session(
        s.rtsp,
        &format!("RTP/AVP;unicast;client_port={port}-{}", port + 1),
        "",
    );
    assert!(status.starts_with("RTSP/1.0 200"), "PLAY: {status}");
    // A client that never sends from its ports gets the unverified budget and no more.
    let quiet = udp_bytes(&[&rtp, &rtcp], Duration::from_secs(3));
    eprintln!("unverified: {quiet} bytes");
    assert!(quiet > 0, "nothing sent at all");
    assert!(
        quiet <= 64 << 10,
        "{quiet} bytes sent to a port that never spoke"
    );
    // One datagram from its RTP port to the server's: the stream flows.
    let server_rtp: u16 = raw::rtsp_header(&setup, "Transport")
        .and_then(|t| {
            t.split(';')
                .find_map(|p| p.trim().strip_prefix("server_port=").map(str::to_owned))
        })
        .and_then(|p| p.split('-').next().and_then(|n| n.parse().ok()))
        .expect("server_port in the SETUP answer");
    rtp.send_to(&[0x80, 0, 0, 0], ("127.0.0.1", server_rtp))
        .unwrap();
    let window = Duration::from_secs(3);
    let heard = udp_bytes(&[&rtp, &rtcp], window);
    let stream = raw::stream_rate(&support::demo_media(), 12) * window.as_secs_f64();
    eprintln!(
        "verified: {heard} bytes, {:.2} of the stream",
        heard as f64 / stream
    );
    assert!(
        heard as f64 > 0.5 * stream,
        "{heard} bytes after the client spoke; the stream is {stream:.0} in the window"
    );
    let _ = s.daemon.stop();
}
