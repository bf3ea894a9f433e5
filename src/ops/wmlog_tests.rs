use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn facts() -> ServerFacts {
    ServerFacts {
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        server_ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        connected_unix: 1_700_000_000,
        duration_secs: 10,
        protocol: "rtsp",
        transport: Some("TCP"),
        uri: Some("rtsp://127.0.0.1:554/demo".into()),
        user_agent: Some("WMPlayer/9.0".into()),
        packets: 100,
        bytes: 125_000,
        total_clients: 3,
        status: 200,
    }
}

#[test]
fn empty_values_are_dashes_and_whitespace_becomes_underscores() {
    assert_eq!(escape(""), "-");
    assert_eq!(escape("MPEG Layer-3"), "MPEG_Layer-3");
    assert_eq!(escape("a\r\nb\tc\u{0}d\u{2028}e"), "a__b_c_d_e");
    assert_eq!(escape(&"x".repeat(5000)).len(), MAX_VALUE);
}

#[test]
fn server_record_has_the_fields_in_order() {
    let line = server_record(&facts()).to_line();
    let v: Vec<&str> = line.split(' ').collect();
    assert_eq!(v.len(), 44);
    assert_eq!(v[0], "127.0.0.1");
    assert_eq!(v[1], "2023-11-14");
    assert_eq!(v[2], "22:13:20");
    assert_eq!(v[3], "-");
    assert_eq!(v[4], "rtsp://127.0.0.1:554/demo");
    assert_eq!(v[6], "10");
    assert_eq!(v[8], "200");
    assert_eq!(v[12], "WMPlayer/9.0");
    assert_eq!(v[19..21], ["0", "0"]);
    assert_eq!(v[21], "100000");
    assert_eq!(v[22..24], ["rtsp", "TCP"]);
    assert_eq!(v[27], "125000");
    assert_eq!(v[29], "100");
    assert_eq!(v[40], "127.0.0.2");
    assert_eq!(v[42], "3");
    assert_eq!(Record::from_line(&line), Some(server_record(&facts())));
}

#[test]
fn a_user_agent_with_line_breaks_cannot_forge_a_record() {
    let mut f = facts();
    f.user_agent = Some("evil\r\n10.0.0.1 2020-01-01 00:00:00\tx y\n#Fields: z".into());
    let line = server_record(&f).to_line();
    assert!(!line.contains(['\r', '\n', '\t']));
    assert_eq!(line.split(' ').count(), 44);
    let back = Record::from_line(&line).expect("parses back");
    assert_eq!(
        back.get("cs-User-Agent"),
        Some("evil__10.0.0.1_2020-01-01_00:00:00_x_y_#Fields:_z")
    );
    assert_eq!(back.get("c-ip"), Some("127.0.0.1"));
}

#[test]
fn header_is_w3c_with_the_field_list() {
    let h = file_header(0);
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("#Software: asfcast "));
    assert_eq!(lines[1], "#Version: 4.1");
    assert_eq!(lines[2], "#Date: 1970-01-01 00:00:00");
    assert_eq!(lines[3], format!("#Fields: {}", FIELDS.join(" ")));
    assert!(lines[3].starts_with("#Fields: c-ip date time c-dns cs-uri-stem c-starttime"));
    assert!(lines[3].ends_with("s-ip s-dns s-totalclients s-cpu-util"));
}

#[test]
fn utc_dates_and_day_names() {
    assert_eq!(utc_date_time(951_782_400).0, "2000-02-29");
    assert_eq!(utc_date_time(86_399).1, "23:59:59");
    assert_eq!(file_day(1_700_000_000), "20231114");
    for day in [0u64, 59, 10_957, 11_016, 19_675, 40_000] {
        assert_eq!(days_of(&file_day(day * 86_400)), Some(day));
    }
    assert_eq!(days_of("2023131"), None);
    assert_eq!(days_of("20231301"), None);
}

#[test]
fn merge_rule() {
    let server = server_record(&facts());
    let mut client = Record::new();
    client.set("c-ip", "0.0.0.0");
    client.set("date", "2002-07-30");
    client.set("protocol", "http");
    client.set("sc-bytes", "1");
    client.set("x-duration", "8");
    client.set("c-playerid", "{3300AD50-2C39-46c0-AE0A-E1D79F6D3A4F}");
    client.set("c-os", "Windows_XP");
    client.set("cs-User-Agent", "other");
    client.set("cs-Referer", "http://example/");
    client.set("c-status", "210");
    client.set("c-pkts-lost-net", "4");
    let m = merge(&server, &client);
    // Server-owned fields stay.
    assert_eq!(m.get("c-ip"), Some("127.0.0.1"));
    assert_eq!(m.get("date"), Some("2023-11-14"));
    assert_eq!(m.get("protocol"), Some("rtsp"));
    assert_eq!(m.get("sc-bytes"), Some("125000"));
    // Client-known fields replace.
    assert_eq!(m.get("x-duration"), Some("8"));
    assert_eq!(m.get("c-os"), Some("Windows_XP"));
    assert_eq!(m.get("c-pkts-lost-net"), Some("4"));
    assert_eq!(m.get("c-status"), Some("210"));
    // Extend-only: the server's user agent stays, the referer is filled.
    assert_eq!(m.get("cs-User-Agent"), Some("WMPlayer/9.0"));
    assert_eq!(m.get("cs-Referer"), Some("http://example/"));
    // An error status is never overwritten.
    let mut f = facts();
    f.status = 404;
    assert_eq!(
        merge(&server_record(&f), &client).get("c-status"),
        Some("404")
    );
}

#[test]
fn log_url_paths() {
    assert_eq!(url_path("http://box/wmsiislog.dll"), Some("/wmsiislog.dll"));
    assert_eq!(
        url_path("http://box:8080/scripts/log?x=1"),
        Some("/scripts/log")
    );
    assert_eq!(url_path("http://box"), Some("/"));
    assert_eq!(url_path("/log"), Some("/log"));
    assert_eq!(url_path("log"), None);
}
