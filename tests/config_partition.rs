//! The config partition and uploads end to end (issue 15): `asfcast run --last-good` on a
//! config directory in a temp dir, the control API on 127.0.0.1, FFmpeg as the judge.
//! - a station YAML and a media file uploaded through the API (`asfcast ctl put-media`,
//!   `put-station`) play without a restart: FFmpeg decodes frames from the new station and
//!   the daemon's pid is the same;
//! - a broken station upload is refused 422 with line and column, nothing is written, and
//!   the old station still plays;
//! - a daemon started on a directory with a broken file runs the last-good config (FFmpeg
//!   decodes from it) and the status page shows the error with file and line (fetched, and
//!   rendered by headless Chromium); with no last-good copy it runs no station but stays up
//!   with the errors shown (no crash loop);
//! - an oversized media upload gets 413 and leaves no file; traversal and hidden names are
//!   refused; a client vanishing mid-upload leaves no partial file.
//!
//! Only loopback traffic; run inside tests/netns-run like the rest.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use support::partition::*;

#[test]
fn an_uploaded_station_and_media_play_without_a_restart() {
    let mut s = start("cp-upload");
    let pid = s.daemon.pid();
    let clip = s._dir.path().join("clip.asf");
    std::fs::copy(support::demo_media_b(), &clip).unwrap();
    let out = ctl(s.api, &["put-media", clip.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stderr),
        s.daemon.stderr()
    );
    assert_eq!(
        std::fs::read(s.etc.join("media/clip.asf")).unwrap(),
        std::fs::read(support::demo_media_b()).unwrap()
    );
    let news = s._dir.path().join("news.yaml");
    std::fs::write(&news, station_yaml("news", "media/clip.asf")).unwrap();
    let out = ctl(s.api, &["put-station", news.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stderr),
        s.daemon.stderr()
    );
    let said = text(&out.stdout);
    assert!(said.contains("1 started"), "{said}");
    let (video, audio) = ffmpeg_frames(s.http, "news", 3);
    eprintln!("uploaded station news: ffmpeg -t 3 decoded video={video} audio={audio}");
    assert!(video >= 30 && audio >= 30, "video={video} audio={audio}");
    assert!(s.daemon.is_running());
    assert_eq!(s.daemon.pid(), pid);
    // The new files are the last good copy too.
    assert!(s.last_good.join("current/news.yaml").is_file());
    let out = ctl(s.api, &["--json", "media"]);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("\"clip.asf\"") && listed.contains("\"demo.asf\""),
        "{listed}"
    );

    // A broken station: 422 with line and column, nothing written, news plays on.
    let (status, body) = http(
        s.api,
        "PUT",
        "/v1/config/stations/news",
        "",
        b"name: news\nsource:\n  type: playlist\n  files: [media/clip.asf]\n  loop: sometimes\n",
    );
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let e = &v["errors"][0];
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(5), Some(9)),
        "{body}"
    );
    assert_eq!(e["field"], "source.loop");
    assert!(
        e["file"].as_str().unwrap_or("").ends_with("etc/news.yaml"),
        "{body}"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc.join("news.yaml")).unwrap(),
        station_yaml("news", "media/clip.asf")
    );
    let (video, audio) = ffmpeg_frames(s.http, "news", 2);
    eprintln!("after the refused upload: ffmpeg -t 2 decoded video={video} audio={audio}");
    assert!(video >= 20 && audio >= 20, "video={video} audio={audio}");
    // A station named unlike its file is refused too.
    let (status, body) = http(
        s.api,
        "PUT",
        "/v1/config/stations/other",
        "",
        station_yaml("news2", "media/clip.asf").as_bytes(),
    );
    assert_eq!(status, 422, "{body}");
    assert!(!s.etc.join("other.yaml").exists());
    assert_eq!(s.daemon.pid(), pid);
}

#[test]
fn media_uploads_are_capped_named_and_never_left_partial() {
    let s = start("cp-media");
    let media = s.etc.join("media");
    // Over the cap: 413 from the Content-Length, before any byte is stored.
    let mut c = TcpStream::connect(s.api).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "PUT /v1/config/media/big.asf HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        MEDIA_CAP + 1
    );
    c.write_all(head.as_bytes()).unwrap();
    let _ = c.write_all(&[0u8; 4096]);
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = text(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert_eq!(files_in(&media), ["demo.asf"]);

    // Names that would leave media/ or hide a file.
    for path in [
        "/v1/config/media/..",
        "/v1/config/media/%2e%2e%2fserver.yaml",
        "/v1/config/media/..%2fserver.yaml",
        "/v1/config/media/.hidden.asf",
        "/v1/config/media/a%00b.asf",
        "/v1/config/media/a%20b.asf",
        "/v1/config/media/../demo.yaml",
    ] {
        let (status, body) = http(s.api, "PUT", path, "", b"hello");
        assert_eq!(status, 400, "{path}: {body}");
    }
    assert_eq!(files_in(&media), ["demo.asf"]);
    assert_eq!(
        std::fs::read_to_string(s.etc.join("server.yaml")).unwrap(),
        server_yaml(&s.etc, s.http.port(), s.api.port())
    );

    // A client that goes away mid-upload: the part file is there while it sends, gone after.
    let mut c = TcpStream::connect(s.api).unwrap();
    let len = 3u64 << 20;
    let head = format!(
        "PUT /v1/config/media/cut.asf HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&vec![1u8; 1 << 20]).unwrap();
    let part = media.join(".cut.asf.part");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(
            Instant::now() < deadline,
            "no part file growing: {:?}",
            files_in(&media)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while part.exists() {
        assert!(Instant::now() < deadline, "the part file stayed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(files_in(&media), ["demo.asf"]);

    // A whole one is stored; its bytes are the sent ones.
    let body: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (status, answer) = http(s.api, "PUT", "/v1/config/media/ok.bin", "", &body);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(std::fs::read(media.join("ok.bin")).unwrap(), body);
    assert_eq!(files_in(&media), ["demo.asf", "ok.bin"]);
    // Updates are off without api.update_dir.
    let (status, _) = http(s.api, "PUT", "/v1/update", "", b"img");
    assert_eq!(status, 404);
}

/// The rendered status page (headless Chromium) when it is installed, else the raw HTML.
fn status_dom(dir: &Path, http_addr: SocketAddr) -> String {
    let url = format!("http://{http_addr}/");
    let have_chromium = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_chromium {
        support::chromium(&dir.join("chromium-profile"), &["--dump-dom"], &url)
    } else {
        http(http_addr, "GET", "/", "", b"").1
    }
}

#[test]
fn a_broken_file_at_start_runs_the_last_good_config_and_shows_the_error() {
    // First boot: valid, so it is saved as the last good copy.
    let s = start("cp-lastgood");
    let (dir, etc, hp, ap) = (s._dir, s.etc, s.http.port(), s.api.port());
    assert!(s.last_good.join("current/demo.yaml").is_file());
    s.daemon.stop();
    // A person breaks demo.yaml on the partition; the box restarts.
    std::fs::write(
        etc.join("demo.yaml"),
        "name: demo\nsource:\n  type: playlist\n  files: [media/demo.asf\n",
    )
    .unwrap();
    let mut s = run_daemon(dir, etc, hp, ap, true);
    let (video, audio) = ffmpeg_frames(s.http, "demo", 3);
    eprintln!("last-good demo: ffmpeg -t 3 decoded video={video} audio={audio}");
    assert!(video >= 30 && audio >= 30, "video={video} audio={audio}");
    let dom = status_dom(s._dir.path(), s.http);
    assert!(dom.contains("data-running=\"last-good\""), "{dom}");
    let file = s.etc.join("demo.yaml").display().to_string();
    let row = format!("<tr><td>{file}</td><td class=\"n\">5</td>");
    assert!(dom.contains(&row), "no {row} in\n{dom}");
    let out = ctl(s.api, &["errors"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("running: last-good"));
    assert!(
        text(&out.stderr).contains(&format!("{file}:5:")),
        "{}",
        text(&out.stderr)
    );
    let (_, metrics) = http(s.http, "GET", "/metrics", "", b"");
    assert!(metrics.contains("\nasfcast_config_errors 1\n"), "{metrics}");
    assert!(
        metrics.contains("\nasfcast_config_last_good 1\n"),
        "{metrics}"
    );

    // A second broken file: each can be fixed through the API on its own.
    std::fs::write(
        s.etc.join("other.yaml"),
        "name: other
source: 7
",
    )
    .unwrap();
    let out = ctl(s.api, &["put-station", "--name", "demo", "/dev/stdin"]);
    assert_eq!(out.status.code(), Some(1), "an empty body is refused");
    let fixed = s._dir.path().join("demo.yaml");
    std::fs::write(&fixed, station_yaml("demo", "media/demo.asf")).unwrap();
    let out = ctl(s.api, &["put-station", fixed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("the reload was refused"), "{said}");
    assert!(
        text(&out.stderr).contains("other.yaml:2:"),
        "{}",
        text(&out.stderr)
    );
    let out = ctl(s.api, &["delete-station", "other"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Fixed: the error is gone, the copy refreshed, and the box never restarted.
    let out = ctl(s.api, &["errors"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("running: config"));
    let (_, metrics) = http(s.http, "GET", "/metrics", "", b"");
    assert!(metrics.contains("\nasfcast_config_errors 0\n"), "{metrics}");
    assert_eq!(
        std::fs::read_to_string(s.last_good.join("current/demo.yaml")).unwrap(),
        station_yaml("demo", "media/demo.asf")
    );
    assert!(s.daemon.is_running());
}

#[test]
fn a_first_boot_with_a_broken_file_stays_up_with_no_station() {
    let (dir, etc, hp, ap) = partition("cp-firstboot");
    std::fs::write(etc.join("demo.yaml"), "name: demo\nsource: 7\n").unwrap();
    let mut s = run_daemon(dir, etc, hp, ap, false);
    assert!(
        s.daemon
            .wait_for_stderr("no usable configuration", Duration::from_secs(10)),
        "{}",
        s.daemon.stderr()
    );
    let (status, page) = http(s.http, "GET", "/", "", b"");
    assert_eq!(status, 200);
    assert!(page.contains("data-running=\"none\""), "{page}");
    assert!(page.contains("No stations are configured."), "{page}");
    let file = s.etc.join("demo.yaml").display().to_string();
    assert!(
        page.contains(&format!("<tr><td>{file}</td><td class=\"n\">2</td>")),
        "{page}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
}

/// Restarts the daemon of `s` after `edit` changed its config directory; waits for the old
/// listeners (those of the last-good copy) and for a station playing.
fn restart_with(s: Setup, edit: impl FnOnce(&Path)) -> Setup {
    let (dir, etc, hp, ap) = (s._dir, s.etc, s.http.port(), s.api.port());
    s.daemon.stop();
    edit(&etc);
    run_daemon(dir, etc, hp, ap, true)
}

#[test]
fn a_listener_that_cannot_bind_at_start_runs_the_last_good_listeners() {
    let s = start("cp-bind-start");
    let (hp, ap) = (s.http.port(), s.api.port());
    // Another program holds a port; server.yaml now wants it.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let server = s.etc.join("server.yaml");
    let s = restart_with(s, |etc| {
        let text = server_yaml(etc, taken, ap);
        std::fs::write(etc.join("server.yaml"), text).unwrap();
    });
    let (video, audio) = ffmpeg_frames(s.http, "demo", 2);
    eprintln!(
        "port taken: ffmpeg -t 2 on the last-good listener decoded video={video} audio={audio}"
    );
    assert!(video >= 20 && audio >= 20, "video={video} audio={audio}");
    let (_, page) = http(s.http, "GET", "/", "", b"");
    let file = server.display().to_string();
    assert!(page.contains(&format!("<tr><td>{file}</td>")), "{page}");
    assert!(page.contains(&format!("127.0.0.1:{taken}")), "{page}");
    let (_, metrics) = http(s.http, "GET", "/metrics", "", b"");
    assert!(metrics.contains("\nasfcast_config_errors 1\n"), "{metrics}");
    // The copy still holds the listeners that bound, not the file that did not.
    let saved = std::fs::read_to_string(s.last_good.join("current/server.yaml")).unwrap();
    assert!(saved.contains(&format!("127.0.0.1:{hp}")), "{saved}");

    // An address that is not on the box, same story.
    let mut s = restart_with(s, |etc| {
        let text = server_yaml(etc, hp, ap).replace(
            &format!("http: 127.0.0.1:{hp}"),
            &format!("http: 192.0.2.7:{hp}"),
        );
        std::fs::write(etc.join("server.yaml"), text).unwrap();
    });
    let (video, _) = ffmpeg_frames(s.http, "demo", 2);
    eprintln!("address not on the box: ffmpeg -t 2 decoded video={video}");
    assert!(video >= 20, "video={video}");
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
    drop(squatter);
}

#[test]
fn a_listener_that_cannot_bind_at_reload_keeps_the_old_ones_across_a_restart() {
    let s = start("cp-bind-reload");
    let (hp, ap) = (s.http.port(), s.api.port());
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    std::fs::write(s.etc.join("server.yaml"), server_yaml(&s.etc, taken, ap)).unwrap();
    let out = ctl(s.api, &["reload"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, page) = http(s.http, "GET", "/", "", b"");
    assert!(page.contains(&format!("127.0.0.1:{taken}")), "{page}");
    let saved = std::fs::read_to_string(s.last_good.join("current/server.yaml")).unwrap();
    assert!(saved.contains(&format!("127.0.0.1:{hp}")), "{saved}");
    // The box restarts with that file: the last-good listeners, not a crash loop.
    let mut s = restart_with(s, |_| {});
    let (video, audio) = ffmpeg_frames(s.http, "demo", 2);
    eprintln!("after a reload with a taken port and a restart: ffmpeg -t 2 decoded video={video} audio={audio}");
    assert!(video >= 20 && audio >= 20, "video={video} audio={audio}");
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
    drop(squatter);
}

#[test]
fn a_client_log_directory_that_cannot_be_opened_leaves_the_box_serving() {
    let (dir, etc, hp, ap) = partition("cp-clientlog");
    // Under a regular file: no one, root included, can create it.
    let bad = etc.join("README.txt").join("logs");
    let text = format!(
        "{}log:\n  clients:\n    dir: {}\n",
        server_yaml(&etc, hp, ap),
        bad.display()
    );
    std::fs::write(etc.join("server.yaml"), text).unwrap();
    let mut s = run_daemon(dir, etc, hp, ap, true);
    let (video, audio) = ffmpeg_frames(s.http, "demo", 2);
    eprintln!("client log dir unusable: ffmpeg -t 2 decoded video={video} audio={audio}");
    assert!(video >= 20 && audio >= 20, "video={video} audio={audio}");
    let (_, page) = http(s.http, "GET", "/", "", b"");
    assert!(page.contains("client log"), "{page}");
    let (_, metrics) = http(s.http, "GET", "/metrics", "", b"");
    assert!(metrics.contains("\nasfcast_config_errors 1\n"), "{metrics}");
    assert!(s.daemon.is_running(), "{}", s.daemon.stderr());
}
