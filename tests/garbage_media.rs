//! A playlist entry with a valid ASF header and garbage data packets must not take the daemon
//! down: no core spun at 100 %, no flood of log lines, no multicast beyond the header's
//! declared bit rate, and SIGTERM still honoured. Two files, both the demo's header and Data
//! Object head followed by its data area replaced: random bytes (packets that almost never
//! parse), and zeros (a preallocated file: packets that parse, all with send time 0).
//! Inside the private namespace only (tests/netns-run): the station multicasts on lo, TTL 0.

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

/// How long the daemon plays the bad file before it is measured.
const WATCH: Duration = Duration::from_secs(5);
/// The demo header's File Properties max bitrate (`asfcast probe` prints it).
const DECLARED_BITRATE: u64 = 314_000;

/// What replaces the demo's data packets.
#[derive(Debug, Clone, Copy)]
enum Data {
    Random,
    Zeros,
}

/// The demo's bytes up to and including the 50-byte Data Object head (asf.md §1), then `data`
/// for the rest of the file.
fn bad_media(dir: &Path, data: Data) -> PathBuf {
    let demo = std::fs::read(support::demo_media()).unwrap();
    // The Header Object's size is at bytes 16..24; the Data Object head follows it.
    let header_len = u64::from_le_bytes(demo[16..24].try_into().unwrap()) as usize;
    let head = header_len + 50;
    assert_eq!(&demo[header_len..header_len + 4], &[0x36, 0x26, 0xB2, 0x75]);
    let mut bytes = demo[..head].to_vec();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    bytes.extend((head..demo.len()).map(|_| match data {
        Data::Zeros => 0,
        Data::Random => {
            // xorshift64: the same "random" file on every run.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        }
    }));
    let path = dir.join(format!("{data:?}.asf"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn write_config(dir: &Path, media: &Path, group: Ipv4Addr, port: u16) {
    support::Listen::new().write(dir, "");
    support::playlist_station(
        dir,
        "bad",
        media,
        &format!(
            "multicast:\n  group: {group}\n  port: {port}\n  interface: lo\n  ttl: 0\n\
             unicast:\n  mms: false\n  mmsh: false\n  rtsp: false\n"
        ),
    );
}

/// CPU time (user + system) the process has used, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15 (proc(5)).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> u64 { fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0) };
    let ticks = field(14) + field(15);
    Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// What one bad file did to the daemon over [`WATCH`].
#[derive(Debug)]
struct Figures {
    cpu: Duration,
    log_lines: usize,
    log_bytes: usize,
    multicast_bytes: u64,
    running: bool,
    stop_took: Duration,
    stop_ok: bool,
}

fn watch(data: Data) -> (Figures, String) {
    let dir = TempDir::new(&format!("garbage-{data:?}"));
    let media = bad_media(dir.path(), data);
    let port = support::free_udp_port();
    let group = Ipv4Addr::new(239, 255, 45, (port % 200) as u8 + 1);
    write_config(dir.path(), &media, group, port);

    let receiver = UdpSocket::bind((group, port)).unwrap();
    receiver
        .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();

    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let start = Instant::now();
    let mut multicast_bytes = 0u64;
    let mut buf = vec![0u8; 65_536];
    while start.elapsed() < WATCH {
        if let Ok(n) = receiver.recv(&mut buf) {
            multicast_bytes += n as u64;
        }
    }
    let cpu = cpu_time(d.pid());
    let running = d.is_running();
    let log = d.stderr();
    let stopping = Instant::now();
    let status = d.stop();
    let figures = Figures {
        cpu,
        log_lines: log.lines().count(),
        log_bytes: log.len(),
        multicast_bytes,
        running,
        stop_took: stopping.elapsed(),
        stop_ok: status.success(),
    };
    // The head of the log explains a failure; a flood of it would not.
    let head: String = log.lines().take(40).collect::<Vec<_>>().join("\n");
    (figures, head)
}

fn assert_harmless(data: Data) {
    if !support::require_private_netns() {
        return;
    }
    let (f, log) = watch(data);
    eprintln!("{data:?}: {f:?}");
    let secs = WATCH.as_secs();
    assert!(f.running, "the daemon died: {f:?}\n{log}");
    assert!(
        f.cpu < Duration::from_secs(1),
        "{:?} of CPU in {secs} s: {f:?}\n{log}",
        f.cpu
    );
    assert!(
        f.log_lines < 100 && f.log_bytes < 64 * 1024,
        "log flood: {f:?}\n{log}"
    );
    // The declared bit rate, with room for the MSB framing, FEC parity and beacons.
    let allowed = DECLARED_BITRATE / 8 * secs * 3;
    assert!(
        f.multicast_bytes <= allowed,
        "{} bytes multicast in {secs} s (allowed {allowed}): {f:?}\n{log}",
        f.multicast_bytes
    );
    assert!(
        f.stop_ok && f.stop_took < Duration::from_secs(3),
        "SIGTERM: {f:?}\n{log}"
    );
}

#[test]
fn random_data_packets_cost_neither_cpu_nor_log() {
    assert_harmless(Data::Random);
}

#[test]
fn zero_filled_data_packets_go_no_faster_than_the_declared_bit_rate() {
    assert_harmless(Data::Zeros);
}
