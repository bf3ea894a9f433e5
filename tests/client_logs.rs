//! Client logs in the Windows Media format ([MS-WMLOG]), end to end on 127.0.0.1: the daemon
//! with `log.clients` writes one W3C line per client session into `WMS_YYYYMMDD.log`.
//! Real FFmpeg sessions (`mmsh://`, `mmst://`, `rtsp://`) get server-side lines; an in-repo
//! client replays what Windows Media Player sends (no Debian player sends logs): an MMSH
//! `application/x-wms-LogStats` POST, an RTSP `SET_PARAMETER` Logplaystats inside a session,
//! and the multicast logging agent (GET for the ISAPI banner, then `MX_STATS_LogLine`). The
//! written lines are read back field by field; forged bodies with CR/LF add no record.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Daemon, TempDir};

const FIELDS: &str = "c-ip date time c-dns cs-uri-stem c-starttime x-duration c-rate c-status c-playerid c-playerversion c-playerlanguage cs-User-Agent cs-Referer c-hostexe c-hostexever c-os c-osversion c-cpu filelength filesize avgbandwidth protocol transport audiocodec videocodec c-channelURL sc-bytes c-bytes s-pkts-sent c-pkts-received c-pkts-lost-client c-pkts-lost-net c-pkts-lost-cont-net c-resendreqs c-pkts-recovered-ECC c-pkts-recovered-resent c-buffercount c-totalbuffertime c-quality s-ip s-dns s-totalclients s-cpu-util";

/// A WMP legacy line with a recognizable player id (`{ID}` replaced).
fn wmp_line(id: &str, protocol: &str, transport: &str) -> String {
    format!(
        "0.0.0.0 2002-07-30 15:42:30 - mms://server/demo 0 42 1 200 {id} 9.0.0.2980 en-US - - \
         wmplayer.exe 9.0.0.2980 Windows_XP 5.1.0.2600 Pentium 0 0 38000 {protocol} {transport} \
         Windows_Media_Audio_9 Windows_Media_Video_9 http://127.0.0.1/demo.nsc 150000 140000 200 \
         180 0 0 0 0 0 0 1 3 100 - - - -"
    )
}

struct Setup {
    _dir: TempDir,
    logs: PathBuf,
    daemon: Daemon,
    http: SocketAddr,
    mms: SocketAddr,
    rtsp: SocketAddr,
}

fn start() -> Setup {
    let dir = TempDir::new("client-logs");
    let p = dir.path();
    let logs = p.join("wmlogs");
    let listen = support::Listen::three().write(
        p,
        &format!(
            "log:\n  clients:\n    dir: {}\n    max_bytes: 1MiB\n    keep_days: 3\n",
            logs.display()
        ),
    );
    support::demo_station(
        p,
        &format!(
            "announcement:\n  log_url: http://{}/scripts/wmslog.dll\n",
            listen.http()
        ),
    );
    let mut daemon = Daemon::asfcast(["run", "--config", p.to_str().unwrap()]);
    for a in listen.all() {
        daemon.wait_for_tcp(a, Duration::from_secs(10));
    }
    Setup {
        _dir: dir,
        logs,
        daemon,
        http: listen.http(),
        mms: listen.mms(),
        rtsp: listen.rtsp(),
    }
}

/// Every record line of every `WMS_*.log` (after checking each file's header).
fn records(dir: &Path) -> Vec<HashMap<&'static str, String>> {
    let mut out = Vec::new();
    let names: Vec<&'static str> = FIELDS.split(' ').collect();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with("WMS_") && name.ends_with(".log") && name.len() == 16,
            "{name}"
        );
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(lines[0].starts_with("#Software: asfcast "), "{text}");
        assert_eq!(lines[1], "#Version: 4.1");
        assert!(lines[2].starts_with("#Date: "));
        assert_eq!(lines[3], format!("#Fields: {FIELDS}"));
        assert_eq!(lines.last(), Some(&""), "the file ends with a line end");
        for line in &lines[4..lines.len() - 1] {
            assert!(
                !line.starts_with('#') && !line.contains(['\r', '\t']),
                "{line:?}"
            );
            let values: Vec<&str> = line.split(' ').collect();
            assert_eq!(values.len(), 44, "{line}");
            out.push(
                names
                    .iter()
                    .zip(values)
                    .map(|(n, v)| (*n, v.to_string()))
                    .collect(),
            );
        }
    }
    out
}

/// Waits until `pred` holds for the written records.
fn wait_records(
    dir: &Path,
    what: &str,
    pred: impl Fn(&[HashMap<&'static str, String>]) -> bool,
) -> Vec<HashMap<&'static str, String>> {
    // Generous: an MMSH session's record waits up to wmlog_join::HOLD for its player's log.
    let until = Instant::now() + Duration::from_secs(25);
    loop {
        let r = if dir.exists() {
            records(dir)
        } else {
            Vec::new()
        };
        if pred(&r) {
            return r;
        }
        assert!(Instant::now() < until, "{what}: not found in {r:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ffmpeg(url: &str, extra: &[&str]) {
    let mut cmd = support::bounded(Duration::from_secs(60), "ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
    cmd.args(extra);
    cmd.args(["-i", url, "-t", "3", "-f", "null", "-"]);
    let out = cmd.output().expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP request on its own connection; the response as text.
fn http(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{head}Host: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends one RTSP request and reads its response (head and Content-Length body).
fn rtsp(s: &mut TcpStream, req: &str) -> String {
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed: {}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

fn session_of(response: &str) -> String {
    response
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("a Session header")
        .trim()
        .to_string()
}

#[test]
fn client_logs_server_lines_and_player_reports() {
    if !support::require_private_netns() {
        return;
    }
    let mut s = start();

    // --- Real players: server-side lines. ---
    ffmpeg(&format!("mmsh://{}/demo", s.http), &[]);
    ffmpeg(&format!("mmst://{}/demo", s.mms), &[]);
    ffmpeg(
        &format!("rtsp://{}/demo", s.rtsp),
        &["-rtsp_transport", "tcp"],
    );
    let recs = wait_records(&s.logs, "three ffmpeg sessions", |r| {
        ["http", "mms", "rtsp"].iter().all(|p| {
            r.iter()
                .any(|x| x["protocol"] == *p && x["sc-bytes"] != "0")
        })
    });
    for (protocol, addr) in [("http", s.http), ("mms", s.mms), ("rtsp", s.rtsp)] {
        let r = recs
            .iter()
            .find(|x| x["protocol"] == protocol && x["c-playerid"] == "-")
            .unwrap_or_else(|| panic!("{protocol}: {recs:#?}"));
        assert_eq!(r["c-ip"], "127.0.0.1", "{protocol}");
        assert_eq!(r["cs-uri-stem"], format!("{protocol}://{addr}/demo"));
        assert!(r["sc-bytes"].parse::<u64>().unwrap() > 0, "{r:?}");
        assert!(r["s-pkts-sent"].parse::<u64>().unwrap() > 0, "{r:?}");
        assert!(r["x-duration"].parse::<u64>().unwrap() > 0, "{r:?}");
        assert!(r["avgbandwidth"].parse::<u64>().unwrap() > 0, "{r:?}");
        assert_eq!(r["c-status"], "200");
        assert_eq!(r["transport"], "TCP");
        assert_eq!(
            (r["filelength"].as_str(), r["filesize"].as_str()),
            ("0", "0")
        );
        assert!(r["cs-User-Agent"] != "-", "{r:?}");
        assert!(!r["cs-User-Agent"].contains(' '));
        assert_eq!(r["s-ip"], "127.0.0.1");
        assert!(r["date"].len() == 10 && r["time"].len() == 8, "{r:?}");
    }

    // --- MMSH log POST (application/x-wms-LogStats), answered 204. ---
    let body = format!(
        "<XML><Summary>{}</Summary><c-playerlanguage>de-DE</c-playerlanguage></XML>",
        wmp_line("{MMSH-LOG}", "http", "TCP")
    );
    let resp = http(
        s.http,
        "POST /demo HTTP/1.1\r\nUser-Agent: NSPlayer/12.0.7724.0\r\nPragma: client-id=7\r\n\
         Pragma: no-cache\r\nContent-Type: application/x-wms-LogStats;charset=UTF-8\r\n",
        body.as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");

    // --- RTSP SET_PARAMETER Logplaystats inside a session, answered 200. ---
    let mut c = TcpStream::connect(s.rtsp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = format!("rtsp://{}/demo", s.rtsp);
    let ua = "User-Agent: WMPlayer/9.0.0.2980 guid/3300AD50-2C39-46C0-AE0A-E1D79F6D3A4F\r\n";
    let d = rtsp(
        &mut c,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n{ua}Accept: application/sdp\r\n\r\n"),
    );
    assert!(d.starts_with("RTSP/1.0 200"), "{d}");
    let control = d
        .lines()
        .filter_map(|l| l.strip_prefix("a=control:"))
        .find(|c| c.starts_with("rtsp://") && c.contains("stream="))
        .unwrap_or_else(|| panic!("a stream control URL in {d}"))
        .trim()
        .to_string();
    let setup = rtsp(
        &mut c,
        &format!(
            "SETUP {control} RTSP/1.0\r\nCSeq: 2\r\n{ua}Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert!(setup.starts_with("RTSP/1.0 200"), "{setup}");
    let session = session_of(&setup);
    let connect = "<XML><Summary></Summary><c-dns>-</c-dns><c-ip>0.0.0.0</c-ip><c-os>Windows_XP</c-os><c-osversion>5.1.0.2600</c-osversion><date>2002-07-30</date><time>15:42:30</time><c-cpu>Pentium</c-cpu><transport>TCP</transport></XML>";
    let r = rtsp(
        &mut c,
        &format!(
            "SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n{ua}\
             Content-Type: application/x-wms-Logconnectstats;charset=UTF-8\r\n\
             Content-Length: {}\r\n\r\n{connect}",
            connect.len()
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    let play = format!(
        "<XML><Summary>{}</Summary></XML>",
        wmp_line("{RTSP-LOG}", "rtsp", "TCP")
    );
    let r = rtsp(
        &mut c,
        &format!(
            "SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n{ua}\
             Content-Type: application/x-wms-Logplaystats;charset=UTF-8\r\n\
             Content-Length: {}\r\n\r\n{play}",
            play.len()
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    let r = rtsp(
        &mut c,
        &format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\n{ua}\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    drop(c);

    // --- The multicast logging agent at the station's Log URL and the well-known path. ---
    for path in ["/scripts/wmslog.dll", "/wmsiislog.dll"] {
        let banner = http(
            s.http,
            &format!(
                "GET {path} HTTP/1.1\r\nUser-Agent: NSPlayer/9.0.0.2980\r\nCache-Control: no-cache\r\n"
            ),
            b"",
        );
        assert!(banner.starts_with("HTTP/1.1 200"), "{banner}");
        assert!(banner.contains("<body><h1>WMS ISAPI Log Dll/"), "{banner}");
    }
    let body = format!(
        "MX_STATS_LogLine: \t{}\r\n",
        wmp_line("{MCAST-LOG}", "asfm", "UDP")
    );
    let resp = http(
        s.http,
        "POST /scripts/wmslog.dll HTTP/1.1\r\nUser-Agent: NSPlayer/9.0.0.2980\r\n\
         Content-Type: text/plain;charset=UTF-8\r\n",
        body.as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");

    // --- Forged bodies: a CR/LF second record is refused, never written. ---
    let forged = format!(
        "MX_STATS_LogLine:\t{}\r\n{}\r\n",
        wmp_line("{FORGED-1}", "asfm", "UDP"),
        wmp_line("{FORGED-2}", "asfm", "UDP")
    );
    let resp = http(
        s.http,
        "POST /wmsiislog.dll HTTP/1.1\r\nUser-Agent: NSPlayer/9.0\r\n",
        forged.as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let forged = format!(
        "<XML><Summary>{}\r\n{}</Summary></XML>",
        wmp_line("{FORGED-3}", "http", "TCP"),
        wmp_line("{FORGED-4}", "http", "TCP")
    );
    let resp = http(
        s.http,
        "POST /demo HTTP/1.1\r\nUser-Agent: NSPlayer/9.0\r\n\
         Content-Type: application/x-wms-LogStats\r\n",
        forged.as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let bomb = "<!DOCTYPE x [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><XML><c-os>&b;</c-os></XML>";
    let resp = http(
        s.http,
        "POST /demo HTTP/1.1\r\nUser-Agent: NSPlayer/9.0\r\n\
         Content-Type: application/x-wms-LogStats\r\n",
        bomb.as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");

    // --- Read back. ---
    let recs = wait_records(&s.logs, "three player reports", |r| {
        ["{MMSH-LOG}", "{RTSP-LOG}", "{MCAST-LOG}"]
            .iter()
            .all(|id| r.iter().any(|x| x["c-playerid"] == *id))
    });
    let by_id = |id: &str| {
        let found: Vec<_> = recs.iter().filter(|x| x["c-playerid"] == id).collect();
        assert_eq!(found.len(), 1, "{id}: {recs:#?}");
        found[0].clone()
    };

    let m = by_id("{MMSH-LOG}");
    assert_eq!(
        m["c-ip"], "127.0.0.1",
        "server-owned: the socket, not the client's 0.0.0.0"
    );
    assert_eq!(m["protocol"], "http");
    assert_eq!(m["cs-uri-stem"], format!("http://{}/demo", s.http));
    assert_eq!(m["x-duration"], "42", "the player's play time");
    assert_eq!(
        m["c-playerlanguage"], "de-DE",
        "an XML element overrides the summary"
    );
    assert_eq!(m["c-bytes"], "140000");
    assert_eq!(m["audiocodec"], "Windows_Media_Audio_9");
    assert_eq!(m["cs-User-Agent"], "NSPlayer/12.0.7724.0");
    assert_eq!(m["c-status"], "200");
    assert_ne!(m["date"], "2002-07-30", "the server's clock");

    let r = by_id("{RTSP-LOG}");
    assert_eq!(r["protocol"], "rtsp");
    assert_eq!(r["c-ip"], "127.0.0.1");
    assert_eq!(r["cs-uri-stem"], format!("rtsp://{}/demo", s.rtsp));
    assert_eq!(r["c-os"], "Windows_XP");
    assert_eq!(r["c-cpu"], "Pentium");
    assert_eq!(r["x-duration"], "42");
    assert_eq!(
        r["cs-User-Agent"],
        "WMPlayer/9.0.0.2980_guid/3300AD50-2C39-46C0-AE0A-E1D79F6D3A4F"
    );
    assert_eq!(r["s-ip"], "127.0.0.1");

    let c = by_id("{MCAST-LOG}");
    assert_eq!(c["protocol"], "asfm");
    assert_eq!(c["transport"], "UDP");
    assert_eq!(c["c-ip"], "127.0.0.1");
    assert_eq!(c["cs-uri-stem"], "mms://server/demo");
    assert_eq!(c["c-channelURL"], "http://127.0.0.1/demo.nsc");
    assert_eq!(c["c-quality"], "100");

    // No forged record, and no line for the banner GETs or the refused POSTs.
    assert!(recs.iter().all(|x| !x["c-playerid"].contains("FORGED")));
    assert!(recs.iter().all(|x| x["c-os"] != "aaaa"));
    let player_lines = recs.iter().filter(|x| x["c-playerid"] != "-").count();
    assert_eq!(player_lines, 3, "{recs:#?}");
    assert!(s.daemon.is_running());
    let status = s.daemon.stop();
    assert!(status.success(), "{status}");
}

/// Plays MMSH on its own connection until `bytes` arrived and returns the `client-id` the
/// server gave it (from the play response's `Pragma: client-id=<n>`).
fn mmsh_play(addr: SocketAddr, bytes: usize) -> u32 {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(support::raw::mmsh_play_request("demo").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    while got.len() < bytes {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got[..got.len().min(2048)]).into_owned();
    head.lines()
        .find_map(|l| l.strip_prefix("Pragma: client-id="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("a client-id in {head}"))
}

/// Windows Media Player posts its log after the stream stops, on a new connection that names
/// the stream's client-id: the session is one record (the server's counts, the player's
/// fields), not two. A session whose player posts nothing is written alone after the hold.
#[test]
fn a_player_log_on_a_new_connection_joins_its_session() {
    if !support::require_private_netns() {
        return;
    }
    let s = start();
    let id = mmsh_play(s.http, 60_000);
    let body = format!(
        "<XML><Summary>{}</Summary></XML>",
        wmp_line("{JOINED}", "http", "TCP")
    );
    let resp = http(
        s.http,
        &format!(
            "POST /demo HTTP/1.1\r\nUser-Agent: NSPlayer/12.0.7724.0\r\nPragma: client-id={id}\r\n\
             Content-Type: application/x-wms-LogStats;charset=UTF-8\r\n"
        ),
        body.as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    let alone = mmsh_play(s.http, 60_000);
    assert_ne!(alone, id);

    let recs = wait_records(&s.logs, "the joined record and the lone session", |r| {
        r.iter().any(|x| x["c-playerid"] == "{JOINED}") && r.iter().any(|x| x["c-playerid"] == "-")
    });
    // Past the hold, nothing more is written for either session.
    std::thread::sleep(asfcast::ops::wmlog_join::HOLD + Duration::from_secs(1));
    let recs_after = records(&s.logs);
    assert_eq!(recs_after, recs, "no late second record");
    assert_eq!(recs.len(), 2, "one record per session: {recs:#?}");
    let joined = recs.iter().find(|x| x["c-playerid"] == "{JOINED}").unwrap();
    let sent: u64 = joined["sc-bytes"].parse().unwrap();
    assert!(
        sent >= 50_000,
        "the server's count of the stream: {joined:?}"
    );
    assert_eq!(joined["c-bytes"], "140000", "the player's count");
    assert_eq!(joined["c-os"], "Windows_XP");
    let lone = recs.iter().find(|x| x["c-playerid"] == "-").unwrap();
    assert!(
        lone["sc-bytes"].parse::<u64>().unwrap() >= 50_000,
        "{lone:?}"
    );
}
