//! Outsider attacks on the stream path's load mechanisms (framing 50 ms ahead + a send pass
//! every turn, MSB as UDP_SEGMENT runs, the RTSP DESCRIBE cache, the 5 s fast-start buffer): a station
//! whose data packets are garbage, multicast and unicast at once, next to a good station that
//! FFmpeg decodes; and clients that pipeline requests (RTSP DESCRIBE, MMSH GET) and never read.
//! FFmpeg is the judge; the daemon's CPU time, RSS and fds are probes. Inside tests/netns-run
//! only (multicast on lo, TTL 0).

mod support;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use support::raw::{self, CountingReader, RssWatch, MIB};
use support::{Daemon, TempDir};

/// The demo's header and Data Object head, then zeros (`zeros`) or xorshift bytes.
fn bad_media(dir: &Path, zeros: bool) -> PathBuf {
    let demo = std::fs::read(support::demo_media()).unwrap();
    let header_len = u64::from_le_bytes(demo[16..24].try_into().unwrap()) as usize;
    let head = header_len + 50;
    let mut bytes = demo[..head].to_vec();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    bytes.extend((head..demo.len()).map(|_| {
        if zeros {
            0
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        }
    }));
    let path = dir.join(if zeros { "zeros.asf" } else { "random.asf" });
    std::fs::write(&path, bytes).unwrap();
    path
}

/// CPU time (user + system) of `pid` from /proc/PID/stat (fields 14 and 15).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

struct Setup {
    _dir: TempDir,
    daemon: Daemon,
    http: SocketAddr,
    rtsp: SocketAddr,
}

/// The daemon with HTTP, MMS and RTSP on loopback, station `demo` (the demo media) and
/// `extra` station files.
fn start(tag: &str, extra: &dyn Fn(&Path) -> Vec<(String, String)>) -> Setup {
    let dir = TempDir::new(tag);
    let listen =
        support::Listen::three().write(dir.path(), "limits:\n  max_clients_per_ip: 2000\n");
    support::demo_station(dir.path(), "");
    for (file, yaml) in extra(dir.path()) {
        std::fs::write(dir.path().join(file), yaml).unwrap();
    }
    let mut daemon = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    for a in listen.all() {
        daemon.wait_for_tcp(a, Duration::from_secs(10));
    }
    assert!(
        daemon.wait_for_stderr("station started", Duration::from_secs(10)),
        "{}",
        daemon.stderr()
    );
    thread::sleep(Duration::from_millis(700));
    Setup {
        _dir: dir,
        daemon,
        http: listen.http(),
        rtsp: listen.rtsp(),
    }
}

impl Setup {
    fn control_frames(&self, secs: u32) -> Result<u64, String> {
        raw::ffmpeg_frames(&format!("mmsh://{}/demo", self.http), secs)
    }
}

/// Attack 1: garbage data packets multicast (GSO runs) and unicast (a raw MMSH reader) while
/// FFmpeg decodes the good station: FFmpeg gets its frames, the daemon's CPU stays far from a
/// busy loop, multicast no faster than 3× the declared rate, RSS and fds bounded.
fn garbage_station(zeros: bool) {
    if !support::require_private_netns() {
        return;
    }
    let port = support::free_udp_port();
    let group = Ipv4Addr::new(239, 255, 46, (port % 200) as u8 + 1);
    let receiver = UdpSocket::bind((group, port)).unwrap();
    receiver
        .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let s = start(&format!("a17-garbage-{zeros}"), &|dir: &Path| {
        let media = bad_media(dir, zeros);
        vec![(
            "bad.yaml".to_string(),
            format!(
                "name: bad\nsource:\n  type: playlist\n  files: [{}]\n  loop: true\n\
                 multicast:\n  group: {group}\n  port: {port}\n  interface: lo\n  ttl: 0\n\
                 unicast:\n  mms: true\n",
                media.display()
            ),
        )]
    });
    let pid = s.daemon.pid();
    let rss = RssWatch::start(pid);
    let readers: Vec<CountingReader> = (0..4)
        .map(|_| CountingReader::mmsh(s.http, "bad"))
        .collect();
    let cpu0 = cpu_time(pid);
    let t0 = Instant::now();
    let control = {
        let http = s.http;
        thread::spawn(move || raw::ffmpeg_frames(&format!("mmsh://{http}/demo"), 5))
    };
    let mut multicast_bytes = 0u64;
    let mut buf = vec![0u8; 65_536];
    while !control.is_finished() && t0.elapsed() < Duration::from_secs(40) {
        if let Ok(n) = receiver.recv(&mut buf) {
            multicast_bytes += n as u64;
        }
    }
    let wall = t0.elapsed();
    let cpu = cpu_time(pid) - cpu0;
    let frames = control.join().unwrap();
    let fds = fd_count(pid);
    let unicast: Vec<u64> = readers.iter().map(|r| r.bytes()).collect();
    let peak = rss.finish();
    let mut d = s.daemon;
    let log = d.stderr();
    eprintln!(
        "garbage zeros={zeros}: control frames {frames:?}, daemon CPU {cpu:?} over {wall:?}, \
         multicast {multicast_bytes} B, unicast readers {unicast:?} B, fds {fds}, RSS peak {} KiB, \
         log lines {}",
        peak / 1024,
        log.lines().count()
    );
    assert!(d.is_running(), "daemon died\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        matches!(frames, Ok(n) if n > 100),
        "control {frames:?}\n{log}"
    );
    // A busy loop burns the whole wall time; the daemon serving FFmpeg and the garbage takes
    // a small share of it.
    assert!(
        cpu.as_millis() * 4 < wall.as_millis(),
        "CPU {cpu:?} over {wall:?}"
    );
    // The demo header declares 314 kbit/s; 3× leaves room for MSB framing, FEC, beacons.
    let allowed = 314_000 / 8 * (wall.as_secs() + 1) * 3;
    assert!(
        multicast_bytes <= allowed,
        "{multicast_bytes} B multicast > {allowed}"
    );
    assert!(peak <= 64 * MIB, "RSS {} MiB", peak / MIB);
    assert!(fds < 200, "{fds} fds");
    assert!(log.lines().count() < 200, "log flood\n{log}");
}

#[test]
fn garbage_random_packets_multicast_and_unicast_leave_ffmpeg_decoding() {
    garbage_station(false);
}

#[test]
fn garbage_zero_packets_multicast_and_unicast_leave_ffmpeg_decoding() {
    garbage_station(true);
}

/// Attack 2: 1000 pipelined requests on one connection, never read, ten such connections
/// per protocol: memory and fds bounded, FFmpeg still decodes.
#[test]
fn pipelined_describes_and_gets_never_read_stay_bounded() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("a17-pipeline", &|_: &Path| Vec::new());
    let pid = s.daemon.pid();
    let rss = RssWatch::start(pid);
    let fds0 = fd_count(pid);
    let describe = format!(
        "DESCRIBE rtsp://{}/demo RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\
         User-Agent: WMPlayer/11.0.5721.5145 guid/3300AD50-2C39-46C0-AE0A-AA3D6B0B2D79\r\n\r\n",
        s.rtsp
    );
    let get = raw::mmsh_play_request("demo");
    let mut conns = Vec::new();
    let mut written = 0usize;
    for (addr, req) in [(s.rtsp, describe.as_bytes()), (s.http, get.as_bytes())] {
        for _ in 0..10 {
            let Ok(sock) = raw::tiny_socket(addr) else {
                continue;
            };
            let mut c: TcpStream = sock.into();
            c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            for _ in 0..1000 {
                match c.write(req) {
                    Ok(n) => written += n,
                    Err(_) => break,
                }
            }
            conns.push(c);
        }
    }
    thread::sleep(Duration::from_secs(2));
    let frames = s.control_frames(3);
    let fds = fd_count(pid);
    let peak = rss.finish();
    let mut d = s.daemon;
    let log = d.stderr();
    eprintln!(
        "pipeline: {written} B written on {} connections, control frames {frames:?}, fds {fds0} -> {fds}, \
         RSS peak {} KiB",
        conns.len(),
        peak / 1024
    );
    assert!(d.is_running(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        matches!(frames, Ok(n) if n > 50),
        "control {frames:?}\n{log}"
    );
    assert!(peak <= 64 * MIB, "RSS {} MiB", peak / MIB);
    assert!(fds < fds0 + 40, "fds {fds0} -> {fds}");
    drop(conns);
}

/// Attack 3: the daemon's fd limit lowered to 96 (prlimit), then 150 MMSH players that read
/// (each join is served the 5 s fast-start backlog) and 150 that never read: the daemon runs
/// out of fds, stays up without spinning, and once the flood leaves FFmpeg plays again.
#[test]
fn connection_flood_to_fd_exhaustion_with_fast_start_then_ffmpeg_plays() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("a17-fdflood", &|_: &Path| Vec::new());
    let pid = s.daemon.pid();
    let out = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg("--nofile=96:96")
        .output()
        .unwrap();
    assert!(out.status.success(), "prlimit: {out:?}");
    let rss = RssWatch::start(pid);
    let mut readers = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..150 {
        readers.push(CountingReader::mmsh(s.http, "demo"));
        if let Ok(c) = raw::mmsh_non_reader(s.http, "demo") {
            idle.push(c);
        }
    }
    thread::sleep(Duration::from_secs(1));
    let cpu0 = cpu_time(pid);
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(3));
    let (cpu, wall) = (cpu_time(pid) - cpu0, t0.elapsed());
    let fds_at_flood = fd_count(pid);
    let served = readers.iter().filter(|r| r.bytes() > 100_000).count();
    let total: u64 = readers.iter().map(|r| r.bytes()).sum();
    drop(idle);
    for r in readers {
        r.finish();
    }
    thread::sleep(Duration::from_secs(1));
    let mut frames = s.control_frames(3);
    if !matches!(frames, Ok(n) if n > 50) {
        // One retry: slots may take a turn to come back.
        thread::sleep(Duration::from_secs(2));
        frames = s.control_frames(3);
    }
    let peak = rss.finish();
    let fds_after = fd_count(pid);
    let mut d = s.daemon;
    let log = d.stderr();
    let emfile = log
        .lines()
        .filter(|l| l.contains("Too many open files") || l.contains("EMFILE"))
        .count();
    eprintln!(
        "fd flood: readers served >100 kB {served}/150 ({total} B), daemon CPU {cpu:?} over {wall:?} at \
         exhaustion, fds {fds_at_flood} at flood -> {fds_after} after, control frames {frames:?}, \
         RSS peak {} KiB, EMFILE log lines {emfile}, log lines {}",
        peak / 1024,
        log.lines().count()
    );
    assert!(d.is_running(), "{}", &log[log.len().saturating_sub(4000)..]);
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        matches!(frames, Ok(n) if n > 50),
        "control {frames:?}\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    assert!(
        cpu.as_millis() * 2 < wall.as_millis(),
        "CPU {cpu:?} over {wall:?}: a busy accept loop?"
    );
    assert!(peak <= 128 * MIB, "RSS {} MiB", peak / MIB);
    assert!(
        log.lines().count() < 2000,
        "log flood: {} lines",
        log.lines().count()
    );
}

/// Attack 2b: 1000 DESCRIBEs pipelined in one write (distinct CSeq) and then read: every one
/// is answered, in order, with its own CSeq and the same SDP (the DESCRIBE cache must not mix
/// answers up), and FFmpeg then plays the station over RTSP.
#[test]
fn a_thousand_pipelined_describes_are_answered_in_order_from_the_cache() {
    if !support::require_private_netns() {
        return;
    }
    let s = start("a17-describe-order", &|_: &Path| Vec::new());
    let mut c = TcpStream::connect(s.rtsp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = String::new();
    for seq in 1..=1000 {
        all.push_str(&format!(
            "DESCRIBE rtsp://{}/demo RTSP/1.0\r\nCSeq: {seq}\r\nAccept: application/sdp\r\n\r\n",
            s.rtsp
        ));
    }
    let writer = {
        let mut w = c.try_clone().unwrap();
        thread::spawn(move || w.write_all(all.as_bytes()).is_ok())
    };
    let mut bodies = std::collections::HashSet::new();
    let mut answered = 0;
    for seq in 1..=1000 {
        let Ok(resp) = raw::rtsp_read_response(&mut c) else {
            break;
        };
        let cseq = raw::rtsp_header(&resp, "CSeq");
        assert_eq!(
            cseq.as_deref(),
            Some(seq.to_string().as_str()),
            "answer {seq}: {resp}"
        );
        assert!(resp.starts_with("RTSP/1.0 200"), "answer {seq}: {resp}");
        let body = resp
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        bodies.insert(body);
        answered += 1;
    }
    assert!(writer.join().unwrap(), "the pipelined write failed");
    let frames = raw::ffmpeg_frames(&format!("rtsp://{}/demo", s.rtsp), 3);
    eprintln!(
        "pipelined DESCRIBE: {answered}/1000 answered in order, {} distinct SDP bodies, \
         FFmpeg over RTSP then {frames:?} frames",
        bodies.len()
    );
    assert_eq!(answered, 1000);
    assert_eq!(bodies.len(), 1, "the cached SDP differed between answers");
    assert!(matches!(frames, Ok(n) if n > 50), "{frames:?}");
}
