use super::*;

/// A WMP 9 legacy line (44 fields), in the shape of the [MS-WMLOG] examples.
const LINE: &str = "0.0.0.0 2002-07-30 15:42:30 - mms://server/demo 0 30 1 200 {3300AD50-2C39-46c0-AE0A-E1D79F6D3A4F} 9.0.0.2980 en-US - - wmplayer.exe 9.0.0.2980 Windows_XP 5.1.0.2600 Pentium 0 0 38000 mms TCP Windows_Media_Audio_9 Windows_Media_Video_9 - 150000 140000 200 180 0 0 0 0 0 0 1 3 100 - - - -";

/// The Connect-Time log of [MS-RTSP] §4.5.1.
const CONNECT: &str = "<XML><Summary></Summary><c-dns>-</c-dns><c-ip>0.0.0.0</c-ip><c-os>Windows_XP</c-os><c-osversion>5.1.0.2600</c-osversion><date>2002-07-30</date><time>15:42:30</time><c-cpu>Pentium</c-cpu><transport>TCP</transport></XML>";

#[test]
fn legacy_line() {
    assert_eq!(LINE.split(' ').count(), 44);
    let r = parse_log_line(LINE).expect("parses");
    assert_eq!(r.get("c-ip"), Some("0.0.0.0"));
    assert_eq!(r.get("cs-uri-stem"), Some("mms://server/demo"));
    assert_eq!(r.get("x-duration"), Some("30"));
    assert_eq!(r.get("c-playerversion"), Some("9.0.0.2980"));
    assert_eq!(r.get("audiocodec"), Some("Windows_Media_Audio_9"));
    assert_eq!(r.get("c-bytes"), Some("140000"));
    assert_eq!(r.get("c-quality"), Some("100"));
    assert_eq!(r.get("s-ip"), None);
    // The 47-field form (cs-url cs-media-name cs-media-role) is accepted, extras dropped.
    assert!(parse_log_line(&format!("{LINE} - - -")).is_ok());
}

#[test]
fn connect_time_xml() {
    let r = parse_log_stats(CONNECT.as_bytes()).expect("parses");
    assert_eq!(r.get("c-os"), Some("Windows_XP"));
    assert_eq!(r.get("c-osversion"), Some("5.1.0.2600"));
    assert_eq!(r.get("c-cpu"), Some("Pentium"));
    assert_eq!(r.get("transport"), Some("TCP"));
    assert_eq!(r.get("c-dns"), None);
    assert_eq!(r.count_set(), 7);
}

#[test]
fn log_stats_with_summary_and_overrides() {
    let body = format!(
        "<?xml version=\"1.0\"?>\r\n<XML>\r\n<Summary>{LINE}</Summary>\r\n<c-playerlanguage>de-DE</c-playerlanguage>\r\n<cs-User-Agent>NSPlayer/9.0 &amp; more</cs-User-Agent>\r\n<ContentDescription><c-ip>9.9.9.9</c-ip><title>x</title></ContentDescription>\r\n<custom a=\"1\"/>\r\n</XML>\r\n"
    );
    let r = parse_log_stats(body.as_bytes()).expect("parses");
    assert_eq!(r.get("x-duration"), Some("30"));
    assert_eq!(r.get("c-playerlanguage"), Some("de-DE"));
    assert_eq!(r.get("cs-User-Agent"), Some("NSPlayer/9.0_&_more"));
    // Only the root's direct children count.
    assert_eq!(r.get("c-ip"), Some("0.0.0.0"));
}

#[test]
fn multicast_agent_line() {
    let body = format!(
        "MX_STATS_LogLine: \t{}\r\n",
        LINE.replace("mms TCP", "asfm UDP")
    );
    let r = parse_mx_stats(body.as_bytes()).expect("parses");
    assert_eq!(r.get("protocol"), Some("asfm"));
    assert_eq!(r.get("transport"), Some("UDP"));
    assert_eq!(
        parse_mx_stats(LINE.as_bytes()),
        Err(LogError::Malformed("no MX_STATS_LogLine prefix"))
    );
}

#[test]
fn a_forged_second_line_is_refused() {
    let body = format!("MX_STATS_LogLine:\t{LINE}\r\n{LINE}\r\n");
    assert_eq!(parse_mx_stats(body.as_bytes()), Err(LogError::ControlChar));
    let body = format!("MX_STATS_LogLine:\t{LINE}\r{LINE}");
    assert_eq!(parse_mx_stats(body.as_bytes()), Err(LogError::ControlChar));
    // In XML too, the summary is one line.
    let body = format!("<XML><Summary>{LINE}\n{LINE}</Summary></XML>");
    assert_eq!(parse_log_stats(body.as_bytes()), Err(LogError::ControlChar));
    // A character reference cannot smuggle one into a value either.
    let r = parse_log_stats(b"<XML><c-os>a&#13;&#10;b</c-os></XML>").expect("parses");
    assert_eq!(r.get("c-os"), Some("a__b"));
}

#[test]
fn xml_bombs_and_oversize_bodies_are_refused() {
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><XML><c-os>&lol2;</c-os></XML>";
    assert!(matches!(
        parse_log_stats(bomb.as_bytes()),
        Err(LogError::Markup(_))
    ));
    assert!(matches!(
        parse_log_stats(b"<XML><c-os>&lol;</c-os></XML>"),
        Err(LogError::Markup(_))
    ));
    let big = vec![b'a'; MAX_LOG_BODY + 1];
    let e = parse_log_stats(&big).expect_err("refused");
    assert_eq!(e.status(), 413);
    let deep = format!("{}{}", "<a>".repeat(20), "</a>".repeat(20));
    assert_eq!(parse_log_stats(deep.as_bytes()), Err(LogError::TooDeep(8)));
    let many = format!("<XML>{}</XML>", "<x/>".repeat(300));
    assert_eq!(
        parse_log_stats(many.as_bytes()),
        Err(LogError::TooManyElements(256))
    );
}

#[test]
fn malformed_bodies_are_refused() {
    for body in [
        "",
        "<XML>",
        "<XML></xml>",
        "<XML></XML><XML></XML>",
        "text<XML></XML>",
        "<Other></Other>",
        "<XML><c-os>a</XML>",
        "<XML><!-- c --></XML>",
        "<XML><?pi x?></XML>",
        "<XML><x-duration>ten</x-duration></XML>",
        "<XML><Summary>a b c</Summary></XML>",
    ] {
        let e = parse_log_stats(body.as_bytes()).expect_err(body);
        assert_eq!(e.status(), 400, "{body}");
    }
    assert_eq!(parse_log_stats(&[0xff, 0xfe]), Err(LogError::NotUtf8));
    assert_eq!(
        parse_log_line(&LINE.replace(" 30 1 200 ", " 30 1 OK ")),
        Err(LogError::NotNumber("c-status"))
    );
}

#[test]
fn content_types() {
    assert!(is_content_type(
        "application/x-wms-LogStats;charset=UTF-8",
        LOG_STATS
    ));
    assert!(is_content_type(
        "Application/X-WMS-Logplaystats ; charset=UTF-8",
        LOG_PLAY_STATS
    ));
    assert!(!is_content_type("text/plain", LOG_STATS));
}
