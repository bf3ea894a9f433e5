//! End-to-end MSB multicast, inside the private network namespace only (tests/netns-run):
//! `asfcast run` sends a station, `asfcast recv` joins it from the .nsc, and ffprobe — the
//! judge — decodes the rebuilt file.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Daemon, TempDir};

/// Writes a server file (no listeners: multicast only) and one station file into `dir`.
fn write_config(dir: &Path, station: &str, files: &[PathBuf], port: u16, fec_span: u8) {
    let group = format!("239.255.42.{}", (port % 200) + 1);
    write_config_on(dir, station, files, port, fec_span, &group, "lo");
}

fn write_config_on(
    dir: &Path,
    station: &str,
    files: &[PathBuf],
    port: u16,
    fec_span: u8,
    group: &str,
    interface: &str,
) {
    support::Listen::new().write(dir, "");
    let list: String = files
        .iter()
        .map(|f| format!("    - {}\n", f.display()))
        .collect();
    std::fs::write(
        dir.join(format!("{station}.yaml")),
        format!(
            "name: {station}\nsource:\n  type: playlist\n  files:\n{list}  loop: true\n\
             multicast:\n  group: {group}\n  port: {port}\n  interface: {interface}\n  ttl: 0\n  \
             fec_span: {fec_span}\n  beacon_interval: 1s\nunicast:\n  mms: false\n  mmsh: false\n  rtsp: false\n"
        ),
    )
    .unwrap();
}

fn nsc_path(dir: &Path, station: &str) -> PathBuf {
    dir.join("announce").join(format!("{station}.nsc"))
}

fn wait_for_file(p: &Path, daemon: &mut Daemon) {
    for _ in 0..100 {
        if p.exists() {
            return;
        }
        assert!(daemon.is_running(), "daemon died:\n{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared:\n{}", p.display(), daemon.stderr());
}

#[derive(Debug)]
struct Recv {
    json: String,
}

impl Recv {
    fn num(&self, key: &str) -> u64 {
        let pat = format!("\"{key}\":");
        let at = self
            .json
            .find(&pat)
            .unwrap_or_else(|| panic!("{key} in {}", self.json))
            + pat.len();
        self.json[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    }

    fn list(&self, key: &str) -> Vec<u64> {
        let pat = format!("\"{key}\":[");
        let at = self.json.find(&pat).unwrap() + pat.len();
        let end = self.json[at..].find(']').unwrap() + at;
        self.json[at..end]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect()
    }
}

fn recv(nsc: &Path, out: &Path, seconds: u32, drop: bool) -> Recv {
    recv_on(nsc, out, seconds, drop, None)
}

fn recv_on(nsc: &Path, out: &Path, seconds: u32, drop: bool, interface: Option<&str>) -> Recv {
    let mut cmd = support::bounded(
        Duration::from_secs(u64::from(seconds) + 20),
        support::asfcast_bin(),
    );
    cmd.arg("recv")
        .arg(nsc)
        .arg("-o")
        .arg(out)
        .arg("--seconds")
        .arg(seconds.to_string());
    if drop {
        cmd.arg("--drop-one-per-span");
    }
    if let Some(i) = interface {
        cmd.args(["--interface", i]);
    }
    let o = support::run_bounded(&mut cmd, Duration::from_secs(u64::from(seconds) + 20))
        .unwrap_or_else(|e| panic!("{e}"));
    Recv {
        json: String::from_utf8_lossy(&o.stdout).trim().to_string(),
    }
}

fn frames(p: &Path, sel: &str) -> u64 {
    support::ffprobe_count_frames(p, sel).unwrap_or_else(|e| panic!("{e}"))
}

fn probe_json(p: &Path) -> String {
    let o = Command::new(support::asfcast_bin())
        .args(["probe", "--json"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// 10 s of the demo (25 fps video, ~21.5 audio frames/s) received and decoded.
fn assert_ten_seconds_decoded(out: &Path) {
    let v = frames(out, "v:0");
    let a = frames(out, "a:0");
    // The receiver joins mid-GOP and stops after 10 s: the count is the source's rate times
    // the time received, give or take the first partial GOP and the preroll lead.
    assert!((180..=330).contains(&v), "video frames {v}");
    assert!((150..=290).contains(&a), "audio frames {a}");
}

#[test]
fn station_received_from_the_nsc_decodes_with_the_broadcast_flag() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("msb-basic");
    let port = support::free_udp_port();
    write_config(dir.path(), "basic", &[support::demo_media()], port, 10);
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = nsc_path(dir.path(), "basic");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("basic.asf");
    let r = recv(&nsc, &out, 10, false);
    assert_eq!(r.num("lost"), 0, "{}", r.json);
    assert!(r.num("parity") > 10, "FEC parity arrives: {}", r.json);
    assert!(r.num("packets_written") > 100, "{}", r.json);
    assert_ten_seconds_decoded(&out);
    let p = probe_json(&out);
    assert!(p.contains("\"broadcast\": true"), "{p}");
    assert!(p.contains("\"seekable\": false"), "{p}");
    let status = d.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

#[test]
fn one_lost_packet_per_span_is_repaired_from_parity() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("msb-loss");
    let port = support::free_udp_port();
    write_config(dir.path(), "lossy", &[support::demo_media()], port, 10);
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = nsc_path(dir.path(), "lossy");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("lossy.asf");
    let r = recv(&nsc, &out, 10, true);
    let dropped = r.num("dropped_on_purpose");
    assert!(dropped >= 10, "{}", r.json);
    // Every dropped packet comes back (recv waits for the last span's parity). One more may be
    // repaired: when the receiver joins just after a span's first packet, that span lacks
    // exactly one packet (never dropped on purpose, as the span was not seen from its start)
    // and its parity restores it too.
    let repaired = r.num("repaired");
    assert!(
        (dropped..=dropped + 1).contains(&repaired),
        "{repaired} repaired for {dropped} dropped: {}",
        r.json
    );
    assert_eq!(r.num("lost"), 0, "{}", r.json);
    assert_ten_seconds_decoded(&out);
}

#[test]
fn a_playlist_of_two_headers_announces_and_sends_two_format_ids() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("msb-two");
    let port = support::free_udp_port();
    // demo-b (6 s) first, so 8 s of reception spans the change to the second entry.
    write_config(
        dir.path(),
        "two",
        &[support::demo_media_b(), support::demo_media()],
        port,
        10,
    );
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = nsc_path(dir.path(), "two");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("two.asf");
    let r = recv(&nsc, &out, 9, false);
    let announced = r.list("formats_announced");
    let seen = r.list("formats_seen");
    assert_eq!(announced.len(), 2, "{}", r.json);
    assert_ne!(announced[0], announced[1]);
    assert_eq!(seen.len(), 2, "both formats arrive: {}", r.json);
    for id in &seen {
        assert!(announced.contains(id), "{}", r.json);
    }
    // The first entry's part of the file decodes (demo-b: 15 fps).
    assert!(frames(&out, "v:0") > 40);
    // `asfcast nsc decode` shows both Format keys with good check bytes.
    let o = Command::new(support::asfcast_bin())
        .args(["nsc", "decode"])
        .arg(&nsc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("Format1") && text.contains("Format2"),
        "{text}"
    );
}

#[test]
fn missing_and_corrupt_playlist_entries_are_skipped_and_the_station_stays_up() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("msb-bad");
    let port = support::free_udp_port();
    let missing = dir.path().join("missing.asf");
    let corrupt = dir.path().join("corrupt.asf");
    let mut bytes = std::fs::read(support::demo_media()).unwrap();
    bytes.truncate(5000); // header and one packet, then cut inside the next
    std::fs::write(&corrupt, &bytes).unwrap();
    let garbage = dir.path().join("garbage.asf");
    std::fs::write(&garbage, b"this is not an ASF file at all").unwrap();
    write_config(
        dir.path(),
        "bad",
        &[
            missing.clone(),
            corrupt.clone(),
            garbage,
            support::demo_media_b(),
        ],
        port,
        10,
    );
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = nsc_path(dir.path(), "bad");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("bad.asf");
    let r = recv(&nsc, &out, 5, false);
    assert!(r.num("packets_written") > 20, "{}", r.json);
    assert!(frames(&out, "v:0") > 20);
    assert!(d.is_running());
    let log = d.stderr();
    assert!(log.contains("missing.asf"), "{log}");
    assert!(log.contains("file ended early"), "{log}");
    assert!(log.contains("skipping playlist entry"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let status = d.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn an_ipv6_station_is_received_and_decodes() {
    let Some((ifname, _)) = support::netns_v6_interface() else {
        return;
    };
    let dir = TempDir::new("msb-v6");
    let port = support::free_udp_port();
    let group = format!("ff15::42:{:x}", port);
    write_config_on(
        dir.path(),
        "six",
        &[support::demo_media()],
        port,
        10,
        &group,
        &ifname,
    );
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = nsc_path(dir.path(), "six");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("six.asf");
    // 8 s: the file starts at the first key frame after the join, up to one 2 s GOP in.
    let r = recv_on(&nsc, &out, 8, false, Some(&ifname));
    assert!(
        r.json.contains(&format!("\"group\":\"[{group}]:{port}\"")),
        "{}",
        r.json
    );
    assert_eq!(r.num("lost"), 0, "{}", r.json);
    assert!(r.num("packets_written") > 60, "{}", r.json);
    assert!(frames(&out, "v:0") > 100);
}

/// Per stream, the packets' presentation times as ffprobe reads them from `p`.
fn packet_times(p: &Path) -> Vec<(u32, f64)> {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (s, t) = l.split_once(',')?;
            Some((s.trim().parse().ok()?, t.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn a_smoothed_station_decodes_across_a_loop_restart_with_timestamps_forward_and_nothing_lost() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("msb-smooth");
    let port = support::free_udp_port();
    write_config(dir.path(), "smooth", &[support::demo_media()], port, 10);
    // The demo (10 s, FFmpeg-made) front-loads its preroll at every loop restart; smoothing
    // spreads it at the declared bit rate, holding no datagram more than 3 s.
    let station = dir.path().join("smooth.yaml");
    let yaml = std::fs::read_to_string(&station).unwrap();
    let yaml = yaml.replace(
        "  beacon_interval: 1s\n",
        "  beacon_interval: 1s\n  smoothing: 3s\n",
    );
    std::fs::write(&station, yaml).unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = nsc_path(dir.path(), "smooth");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("smooth.asf");
    // 14 s: at least one loop restart of the 10 s file.
    let r = recv(&nsc, &out, 14, false);
    assert_eq!(r.num("lost"), 0, "{}", r.json);
    assert!(r.num("packets_written") > 140, "{}", r.json);
    let v = frames(&out, "v:0");
    let a = frames(&out, "a:0");
    // 14 s of 25 fps video and ~21.5 audio frames/s, less the join (the .nsc, the first
    // partial GOP) and the hold; a loaded machine joins seconds late.
    assert!((150..=450).contains(&v), "video frames {v}");
    assert!((120..=400).contains(&a), "audio frames {a}");
    let times = packet_times(&out);
    for stream in [0u32, 1] {
        let ts: Vec<f64> = times
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, t)| *t)
            .collect();
        assert!(ts.len() > 100, "stream {stream}: {} packets", ts.len());
        let back = ts.windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(back, 0, "stream {stream}: timestamps go back {back} times");
        let span = ts.last().unwrap() - ts.first().unwrap();
        assert!(span > 5.0, "stream {stream}: {span} s of timestamps");
        eprintln!(
            "stream {stream}: {} packets over {span:.2} s, none back",
            ts.len()
        );
    }
    eprintln!("decoded: {v} video, {a} audio frames; recv: {}", r.json);
    let (status, log) = d.stop_with_log();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    // The daemon did hold datagrams (the loop restart's front-load), none past the bound.
    let held = log_number(&log, "smoothing_held=");
    assert!(held > 10, "smoothing held {held} datagrams:\n{log}");
    assert_eq!(log_number(&log, "smoothing_at_bound="), 0, "{log}");
    // Loopback has no qdisc that honours SO_TXTIME: the station takes the timer path.
    let pacing = log
        .lines()
        .find(|l| l.contains("multicast pacing"))
        .unwrap_or_default();
    assert!(
        pacing.contains("timer") && pacing.contains("noqueue"),
        "{log}"
    );
    eprintln!(
        "held {held} datagrams, longest {} ms",
        log_number(&log, "smoothing_max_hold_ms=")
    );
}

/// The number after `key` in the daemon's log.
fn log_number(log: &str, key: &str) -> u64 {
    let at = log.find(key).unwrap_or_else(|| panic!("{key} in:\n{log}")) + key.len();
    log[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} in:\n{log}"))
}

#[test]
fn the_txtime_path_stamps_each_datagram_and_the_station_still_decodes() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("msb-txtime");
    let port = support::free_udp_port();
    write_config(dir.path(), "stamped", &[support::demo_media()], port, 10);
    // lo's noqueue ignores the stamps, so `force` only proves the mechanism: every datagram
    // goes out through sendmmsg with an SCM_TXTIME cmsg, handed over up to the lookahead
    // ahead of its due time, and the kernel takes them all.
    let mut cmd = Command::new(support::asfcast_bin());
    cmd.args(["run", "--config", dir.path().to_str().unwrap()])
        .env("ASFCAST_TXTIME", "force");
    let mut d = Daemon::spawn("asfcast", cmd);
    let nsc = nsc_path(dir.path(), "stamped");
    wait_for_file(&nsc, &mut d);
    let out = dir.path().join("stamped.asf");
    let r = recv(&nsc, &out, 10, false);
    assert_eq!(r.num("lost"), 0, "{}", r.json);
    assert_ten_seconds_decoded(&out);
    eprintln!(
        "decoded {} video, {} audio frames; recv: {}",
        frames(&out, "v:0"),
        frames(&out, "a:0"),
        r.json
    );
    let (status, log) = d.stop_with_log();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let pacing = log
        .lines()
        .find(|l| l.contains("multicast pacing"))
        .unwrap_or_default();
    assert!(pacing.contains("txtime"), "{log}");
    assert_eq!(log_number(&log, "dropped="), 0, "{log}");
    assert!(log_number(&log, "sent=") > 100, "{log}");
}

/// Runs of equal-sized datagrams due together (the demo front-loads its first seconds, as
/// FFmpeg-made files do) leave as one `UDP_SEGMENT` send each; what the group receives is
/// still one MSB datagram per packet, and the file the receiver writes decodes. With
/// `ASFCAST_GSO=off` every datagram is a send of its own: the same decode, no segmented send.
#[test]
fn equal_datagrams_leave_as_segmented_sends_and_the_station_still_decodes() {
    if !support::require_private_netns() {
        return;
    }
    for gso in ["on", "off"] {
        let dir = TempDir::new(&format!("msb-gso-{gso}"));
        let port = support::free_udp_port();
        write_config(dir.path(), "seg", &[support::demo_media()], port, 10);
        let mut cmd = Command::new(support::asfcast_bin());
        cmd.args(["run", "--config", dir.path().to_str().unwrap()])
            .env("ASFCAST_GSO", gso);
        let mut d = Daemon::spawn("asfcast", cmd);
        let nsc = nsc_path(dir.path(), "seg");
        wait_for_file(&nsc, &mut d);
        let out = dir.path().join("seg.asf");
        let r = recv(&nsc, &out, 10, false);
        assert_eq!(r.num("lost"), 0, "{gso}: {}", r.json);
        assert_ten_seconds_decoded(&out);
        let (status, log) = d.stop_with_log();
        assert!(status.success(), "clean exit on SIGTERM: {status}");
        let segmented = log_number(&log, "segmented_sends=");
        eprintln!(
            "GSO {gso}: {segmented} segmented sends; decoded {} video, {} audio frames; recv: {}",
            frames(&out, "v:0"),
            frames(&out, "a:0"),
            r.json
        );
        assert_eq!(log_number(&log, "dropped="), 0, "{log}");
        if gso == "on" {
            assert!(segmented > 0, "no segmented send with GSO on:\n{log}");
        } else {
            assert_eq!(segmented, 0, "{log}");
        }
    }
}

/// An IPv6 station over the namespace's veth (MTU 1500: segments of 1452 bytes at most) whose
/// packets fit a segment: its datagrams leave as `UDP_SEGMENT` sends and what `asfcast recv`
/// writes decodes in FFmpeg. Packets of 1444 bytes make full datagrams of exactly 1452 (the
/// largest segment); 1445 one byte over (each goes alone, fragmented, as before).
#[test]
fn an_ipv6_station_with_segment_sized_packets_is_segmented_and_decodes() {
    let Some((ifname, _)) = support::netns_v6_interface() else {
        return;
    };
    for packet_size in [1444u32, 1445] {
        let dir = TempDir::new(&format!("msb-v6-gso-{packet_size}"));
        let media = dir.path().join("small.asf");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", "10", "-c:v", "wmv2", "-b:v", "250k", "-g", "50"])
            .args(["-c:a", "wmav2", "-b:a", "64k"])
            .args(["-packet_size", &packet_size.to_string(), "-f", "asf"])
            .arg(&media)
            .status()
            .expect("ffmpeg");
        assert!(status.success());
        let port = support::free_udp_port();
        let group = format!("ff15::43:{:x}", port);
        write_config_on(dir.path(), "six", &[media], port, 10, &group, &ifname);
        let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
        let nsc = nsc_path(dir.path(), "six");
        wait_for_file(&nsc, &mut d);
        let out = dir.path().join("six.asf");
        let r = recv_on(&nsc, &out, 8, false, Some(&ifname));
        let (status, log) = d.stop_with_log();
        assert!(status.success(), "{status}");
        let segmented = log_number(&log, "segmented_sends=");
        let (v, a) = (frames(&out, "v:0"), frames(&out, "a:0"));
        eprintln!(
            "IPv6, {packet_size}-byte packets: {segmented} segmented sends, dropped {}; \
             decoded {v} video, {a} audio frames; recv: {}",
            log_number(&log, "dropped="),
            r.json
        );
        assert_eq!(r.num("lost"), 0, "{}", r.json);
        assert_eq!(log_number(&log, "dropped="), 0, "{log}");
        assert!(v > 100, "video frames {v}");
        if packet_size == 1444 {
            assert!(segmented > 0, "no segmented send:\n{log}");
        }
    }
}
