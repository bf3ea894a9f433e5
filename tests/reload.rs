//! SIGHUP reloads by diff: a receiver of station A keeps receiving, without a restart of A's
//! stream, across a reload that changes station B and one that carries a broken YAML (refused,
//! old config kept). Inside the private namespace (multicast).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Daemon, TempDir};

fn station_yaml(name: &str, media: &Path, group: u8, port: u16) -> String {
    format!(
        "name: {name}\nsource:\n  type: playlist\n  files: [{}]\n\
         multicast:\n  group: 239.255.44.{group}\n  port: {port}\n  interface: lo\n  ttl: 0\n\
         unicast:\n  mms: false\n  mmsh: false\n  rtsp: false\n",
        media.display()
    )
}

fn json_num(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("{key} in {json}")) + pat.len();
    json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn a_receiver_of_an_unchanged_station_is_untouched_by_reloads() {
    if !support::require_private_netns() {
        return;
    }
    let dir = TempDir::new("reload");
    let port = support::free_udp_port();
    std::fs::write(
        dir.path().join("server.yaml"),
        format!(
            "listen:\n  http: false\n  mms: false\n  rtsp: false\nannounce_dir: {}\n",
            dir.path().join("announce").display()
        ),
    )
    .unwrap();
    let a = station_yaml("alpha", &support::demo_media(), 1, port);
    let b_path = dir.path().join("beta.yaml");
    std::fs::write(dir.path().join("alpha.yaml"), &a).unwrap();
    std::fs::write(
        &b_path,
        station_yaml("beta", &support::demo_media_b(), 2, port),
    )
    .unwrap();
    let mut d = Daemon::asfcast(["run", "--config", dir.path().to_str().unwrap()]);
    let nsc = dir.path().join("announce/alpha.nsc");
    for _ in 0..100 {
        if nsc.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.path().join("alpha.asf");
    let mut recv = Command::new("timeout");
    recv.args(["30", support::asfcast_bin().to_str().unwrap(), "recv"])
        .arg(&nsc)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "8"]);
    let child = recv.stdout(std::process::Stdio::piped()).spawn().unwrap();

    std::thread::sleep(Duration::from_secs(2));
    // Change B: another file.
    std::fs::write(
        &b_path,
        station_yaml("beta", &support::demo_media(), 2, port),
    )
    .unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr("restarted=1", Duration::from_secs(10)),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    // A broken YAML: refused, everything keeps running.
    std::fs::write(&b_path, "name: beta\nsource: [oops\n").unwrap();
    d.signal("HUP").unwrap();
    assert!(
        d.wait_for_stderr(
            "reload refused, keeping the running configuration",
            Duration::from_secs(10)
        ),
        "{}",
        d.stderr()
    );
    assert!(
        d.stderr().contains("beta.yaml:"),
        "the error names the file: {}",
        d.stderr()
    );

    let o = child.wait_with_output().unwrap();
    let json = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{json}");
    // A's stream never restarted (no Format ID / toggle change) and nothing was lost.
    assert_eq!(json_num(&json, "stream_changes"), 0, "{json}");
    assert_eq!(json_num(&json, "lost"), 0, "{json}");
    assert!(json_num(&json, "packets_written") > 100, "{json}");
    let v = support::ffprobe_count_frames(&out, "v:0").unwrap();
    assert!(v > 150, "video frames {v}");
    assert!(d.is_running());
    assert!(d.stderr().contains("unchanged=1"));
}
