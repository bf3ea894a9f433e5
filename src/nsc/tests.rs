//! Cross-module tests: the [MS-MSB] §4.3 example files, the exact text of a small station,
//! and writer/reader round trips.

use super::*;
use proptest::prelude::*;

/// [MS-MSB] §4.3, first example: every string plain ASCII. `Format1` is a placeholder in the
/// spec and is kept as such.
const SPEC_PLAIN: &str = "[Address]\r\n\
Name=MY_COMPUTER, bpp\r\n\
NSC Format Version=3.0\r\n\
Multicast Adapter=157.55.149.102\r\n\
IP Address=239.192.48.179\r\n\
IP Port=0x00004A41\r\n\
Time To Live=0x00000020\r\n\
Default Ecc=0x0000000A\r\n\
Log URL=\r\n\
Unicast URL=\r\n\
Allow Splitting=0x00000001\r\n\
Allow Caching=0x00000001\r\n\
Cache Expiration Time=0x00015180\r\n\
Network Buffer Time=0x000001F4\r\n\
[Formats]\r\n\
Format1=<ASF header 1>\r\n\
Description1=Windows Media Audio Stream\r\n";

/// [MS-MSB] §4.3, second example: the same file with every string encoded. The spec elides
/// the end of `Format1` with "..."; that elision is kept, so Format1 is undecodable here.
/// (The published text wraps `Multicast Adapter` over two lines; it is one value.)
const SPEC_ENCODED: &str = "[Address]\r\n\
Name=029W000000000YJG1P05y0Gm1F04q0K01L05G0HG1I02m0801Y0700S00000\r\n\
NSC Format Version=029G0000000008Cm0k0300000\r\n\
Multicast Adapter=0230000000000UCG0r03S0BW0r03K0BW0n03G0EG0k0340C00o0000\r\n\
IP Address=020G000000000UCW0p03a0BW0n03a0CW0k03G0E00k0340Dm0v0000\r\n\
IP Port=0x00004A41\r\n\
Time To Live=0x00000020\r\n\
Default Ecc=0x0000000A\r\n\
Log URL=020W0000000002000\r\n\
Unicast URL=020W0000000002000\r\n\
Allow Splitting=0x00000001\r\n\
Allow Caching=0x00000001\r\n\
Cache Expiration Time=0x00015180\r\n\
Network Buffer Time=0x000001F4\r\n\
[Formats]\r\n\
Format1=02X0000vu000EfC2QoTOvcpn6csG2g06BER7S30000000020000042pdNu...\r\n\
Description1=029m000000000SLm1f06u0P01l07S0Sm0W04q0PG1a06a0OG0000\r\n";

const SPEC_FORMAT1: &str = "02X0000vu000EfC2QoTOvcpn6csG2g06BER7S30000000020000042pdNu...";

/// A minimal well-formed ASF header: a Header Object with no children (30 bytes) followed by
/// the 50-byte Data Object head.
fn synthetic_asf_header() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&parse::ASF_HEADER_GUID);
    h.extend_from_slice(&30u64.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&[0x01, 0x02]);
    h.extend_from_slice(&parse::ASF_DATA_GUID);
    h.extend_from_slice(&50u64.to_le_bytes());
    h.extend_from_slice(&[0xAA; 16]); // File ID
    h.extend_from_slice(&0u64.to_le_bytes()); // Total Data Packets
    h.extend_from_slice(&[0x01, 0x01]); // Reserved
    assert_eq!(h.len(), 80);
    h
}

#[test]
fn spec_encoded_values_decode() {
    let p = parse(SPEC_ENCODED).unwrap();
    assert_eq!(p.ip_address().as_deref(), Some("239.192.48.179"));
    assert_eq!(p.multicast_adapter().as_deref(), Some("157.55.149.102"));
    assert_eq!(p.ip_port(), Some(19009));
    assert_eq!(p.time_to_live(), Some(32));
    assert_eq!(p.default_ecc(), Some(10));
    assert_eq!(p.integer("Cache Expiration Time"), Some(86400));
    assert_eq!(p.integer("Network Buffer Time"), Some(500));
    assert_eq!(p.string("NSC Format Version").as_deref(), Some("3.0"));
    // Encoded empty strings mean "absent".
    assert_eq!(p.log_url(), None);
    assert_eq!(p.unicast_url(), None);
    assert_eq!(p.get("Log URL").unwrap().as_string().as_deref(), Some(""));

    // The spec's Name carries a wrong check byte: reported, not rejected.
    let name = p.get("Name").unwrap();
    let Value::Encoded(d) = &name.value else {
        panic!("Name should decode: {:?}", name.value)
    };
    assert!(!d.crc_ok);
    assert_eq!(d.crc, 0x26);
    assert_eq!(d.computed_crc(), 0x00);
    assert_eq!(p.name().as_deref(), Some("MY_COMPUTER, bpp"));

    let desc = p.get("Description1").unwrap();
    let Value::Encoded(d) = &desc.value else {
        panic!("Description1 should decode")
    };
    assert!(d.crc_ok);
    assert_eq!(d.as_string().unwrap(), "Windows Media");
}

#[test]
fn spec_format1_header_fields() {
    let h = decode_header(SPEC_FORMAT1).unwrap();
    assert_eq!(h.key, 926);
    assert_eq!(h.length, 937);
    assert_eq!(h.crc, 0x84);
    assert!(matches!(
        decode(SPEC_FORMAT1),
        Err(NscError::InvalidChar { ch: '.', .. })
    ));
    let partial = decode_partial(SPEC_FORMAT1).unwrap();
    assert!(!partial.complete);
    assert_eq!(partial.payload.get(..16), Some(&parse::ASF_HEADER_GUID[..]));
    let size = u64::from_le_bytes(partial.payload[16..24].try_into().unwrap());
    assert_eq!(size, 887);
    assert_eq!(size + 50, u64::from(h.length));
}

#[test]
fn spec_encoded_bad_checks_and_description() {
    let p = parse(SPEC_ENCODED).unwrap();
    let bad = p.bad_checks();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].key, "Name");
    assert_eq!(bad[0].line, 2);
    assert_eq!(
        bad[0].reason,
        BadReason::CrcMismatch {
            stored: 0x26,
            computed: 0
        }
    );
    assert_eq!(bad[1].key, "Format1");
    assert!(matches!(bad[1].reason, BadReason::Undecodable(_)));
    // A receiver cannot use a file whose only Format is broken.
    assert!(matches!(
        p.to_station_file(),
        Err(NscError::BadEntry { line: 16, .. })
    ));

    let text = describe(&p);
    assert!(text.contains("[Address]\n"));
    assert!(text.contains("[Formats]\n"));
    assert!(text.contains("Name = \"MY_COMPUTER, bpp\""));
    assert!(text.contains("check byte 0x26 FAILED (computed 0x00)"));
    assert!(text.contains("IP Address = \"239.192.48.179\""));
    assert!(text.contains("IP Port = 0x00004A41 (19009)"));
    assert!(text.contains("Format1 = UNREADABLE: invalid character '.' at offset 58 (header: key 926, length 937, check byte 0x84)"), "{text}");
    assert!(text.contains("2 problem(s):"));
}

#[test]
fn spec_plain_file_is_read_tolerantly() {
    let p = parse(SPEC_PLAIN).unwrap();
    assert_eq!(p.entries.len(), 15);
    assert_eq!(p.ip_address().as_deref(), Some("239.192.48.179"));
    assert_eq!(p.name().as_deref(), Some("MY_COMPUTER, bpp"));
    assert_eq!(p.string("NSC Format Version").as_deref(), Some("3.0"));
    assert_eq!(p.get("Log URL").unwrap().value, Value::Empty);
    assert_eq!(
        p.get("Format1").unwrap().value,
        Value::Invalid(NscError::NotEncoded)
    );
    assert_eq!(
        p.get("description1").unwrap().value,
        Value::Plain("Windows Media Audio Stream".into())
    );
    // Unknown-to-the-model keys are kept, in order, with their section.
    let keys: Vec<&str> = p.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys[9], "Allow Splitting");
    assert_eq!(p.entries[14].section.as_deref(), Some("Formats"));
}

fn small_station() -> StationFile {
    StationFile {
        name: Some(station_name("studio", "radio")),
        multicast_adapter: None,
        ip_address: "239.192.48.179".into(),
        ip_port: 19009,
        time_to_live: Some(32),
        default_ecc: Some(10),
        log_url: None,
        unicast_url: Some("mms://10.0.0.1/radio".into()),
        formats: vec![Format {
            id: 5,
            header: vec![1, 2, 3],
            description: Some("Audio".into()),
        }],
    }
}

#[test]
fn small_station_exact_text() {
    // Encoded values cross-checked with an independent implementation of §2.2.1.3.
    let want = "[Address]\r\n\
Name=02SG000000000SSm1q07K0P01f06y0B00W0780OG1a06a0Rm0000\r\n\
NSC Format Version=029G0000000008Cm0k0300000\r\n\
IP Address=020G000000000UCW0p03a0BW0n03a0CW0k03G0E00k0340Dm0v0000\r\n\
IP Port=0x00004A41\r\n\
Time To Live=0x00000020\r\n\
Default Ecc=0x0000000A\r\n\
Unicast URL=028m000000000gRG1j07C0EW0l02y0CG0m02u0C00k0300BW0n02y0SW1X06G0QG1l0000\r\n\
[Formats]\r\n\
Format1=021W0000K000030G83\r\n\
Description1=02MW000000000CGG1r06G0QG1l0000\r\n";
    let s = small_station();
    s.validate().unwrap();
    assert_eq!(s.to_nsc(), want);
    assert!(want.is_ascii());
}

#[test]
fn empty_strings_are_absent_and_optional_keys_omitted() {
    let mut s = small_station();
    s.name = Some(String::new());
    s.unicast_url = None;
    s.time_to_live = None;
    s.default_ecc = None;
    s.formats[0].description = None;
    let text = s.to_nsc();
    assert!(!text.contains("Name="));
    assert!(!text.contains("Unicast URL="));
    assert!(!text.contains("Time To Live="));
    assert!(!text.contains("Description1="));
    assert!(text.contains("NSC Format Version=029G0000000008Cm0k0300000\r\n"));
}

#[test]
fn validate_rejects() {
    let mut s = small_station();
    s.formats.clear();
    assert_eq!(s.validate(), Err(NscError::NoFormats));
    let mut s = small_station();
    s.formats[0].id = 0x800;
    assert_eq!(s.validate(), Err(NscError::FormatIdTooLarge { id: 0x800 }));
    let mut s = small_station();
    s.formats.push(s.formats[0].clone());
    assert_eq!(s.validate(), Err(NscError::DuplicateFormatId { id: 5 }));
    let mut s = small_station();
    s.ip_address.clear();
    assert_eq!(s.validate(), Err(NscError::Missing { key: "IP Address" }));
    let mut s = small_station();
    s.log_url = Some("a\0b".into());
    assert!(matches!(s.validate(), Err(NscError::NulInString { .. })));
    let mut s = small_station();
    s.formats[0].header.clear();
    assert_eq!(s.validate(), Err(NscError::EmptyHeader { n: 1 }));
}

#[test]
fn round_trip_small_station() {
    let s = small_station();
    let p = parse(&s.to_nsc()).unwrap();
    assert!(p.bad_checks().is_empty());
    assert_eq!(p.to_station_file().unwrap(), s);
    let f = p.formats();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].key, 5);
    assert_eq!(f[0].n, 1);
    assert_eq!(f[0].description.as_deref(), Some("Audio"));
}

#[test]
fn tolerant_reader() {
    let s = small_station();
    // LF only, spaces around '=' and keys, a BOM, an unknown key, a stray line.
    let text = s
        .to_nsc()
        .replace("\r\n", "\n")
        .replace("IP Port=", "  IP Port \t=  ")
        .replace("[Formats]", "Player URL=http://x/\nthis is junk\n[Formats]");
    let text = format!("\u{FEFF}{text}");
    let p = parse(&text).unwrap();
    assert_eq!(p.ip_port(), Some(19009));
    assert_eq!(p.string("player url").as_deref(), Some("http://x/"));
    assert_eq!(p.to_station_file().unwrap(), s);
    let bad = p.bad_checks();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].reason, BadReason::StrayLine);
    assert!(describe(&p).contains("stray line: \"this is junk\""));
}

#[test]
fn to_station_file_errors() {
    assert_eq!(parse("nothing here"), Err(NscError::NotNsc));
    let p = parse("[Address]\r\nIP Port=0x00000001\r\n").unwrap();
    assert_eq!(
        p.to_station_file(),
        Err(NscError::Missing { key: "IP Address" })
    );
    let p = parse("[Address]\r\nIP Address=1.2.3.4\r\nIP Port=0x00010000\r\n").unwrap();
    assert_eq!(
        p.to_station_file(),
        Err(NscError::OutOfRange {
            key: "IP Port",
            value: 0x10000
        })
    );
    let text = format!(
        "[Address]\r\nIP Address=1.2.3.4\r\nIP Port=0x00000001\r\nTime To Live=0x00000100\r\n[Formats]\r\nFormat1={}\r\n",
        encode_binary(&[1], 1)
    );
    assert!(matches!(
        parse(&text).unwrap().to_station_file(),
        Err(NscError::OutOfRange {
            key: "Time To Live",
            ..
        })
    ));
    let text = format!(
        "[Address]\r\nIP Address=1.2.3.4\r\nIP Port=0x00000001\r\n[Formats]\r\nFormat1={}\r\n",
        encode_binary(&[1], 0x800)
    );
    assert_eq!(
        parse(&text).unwrap().to_station_file(),
        Err(NscError::FormatIdTooLarge { id: 0x800 })
    );
    let p =
        parse("[Address]\r\nIP Address=1.2.3.4\r\nIP Port=0x00000001\r\n[Formats]\r\n").unwrap();
    assert_eq!(p.to_station_file(), Err(NscError::NoFormats));
}

#[test]
fn duplicate_format_ids_are_flagged() {
    let f = encode_binary(&[1, 2], 9);
    let g = encode_binary(&[3, 4], 9);
    let text = format!(
        "[Address]\r\nIP Address=1.2.3.4\r\nIP Port=0x00000001\r\n[Formats]\r\nFormat1={f}\r\nFormat2={g}\r\n"
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.bad_checks()[0].reason, BadReason::DuplicateFormatId(9));
    assert_eq!(
        p.to_station_file(),
        Err(NscError::DuplicateFormatId { id: 9 })
    );
}

#[test]
fn describe_asf_format() {
    let header = synthetic_asf_header();
    let mut s = small_station();
    s.formats[0].id = format_id(&header);
    s.formats[0].header = header;
    let p = parse(&s.to_nsc()).unwrap();
    let text = describe(&p);
    let id = s.formats[0].id;
    assert!(
        text.contains(&format!("Format1 = format id {id} (0x{id:03X}), 80 bytes, ASF Header Object GUID: yes, object size 30 + 50 = 80 vs length 80: matches, Data Object GUID after it: yes; check byte")),
        "{text}"
    );
    assert!(text.ends_with("all checks passed\n"));

    s.formats[0].header.truncate(70);
    let text = describe(&parse(&s.to_nsc()).unwrap());
    assert!(
        text.contains("30 + 50 = 80 vs length 70: MISMATCH"),
        "{text}"
    );

    s.formats[0].header = vec![0; 40];
    let text = describe(&parse(&s.to_nsc()).unwrap());
    assert!(text.contains("does not start with the ASF Header Object GUID"));
}

#[test]
fn content_types() {
    assert_eq!(NSC_CONTENT_TYPE, "video/x-ms-asf");
    assert_eq!(ASX_CONTENT_TYPE, "video/x-ms-asf");
    assert_eq!(
        NSC_CONTENT_TYPE_FREEDESKTOP,
        "application/x-netshow-channel"
    );
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[^\u{0}]{1,40}")
}

prop_compose! {
    fn station()(
        name in opt_text(),
        multicast_adapter in opt_text(),
        ip_address in "[^\u{0}]{1,40}",
        ip_port in any::<u16>(),
        time_to_live in any::<Option<u8>>(),
        default_ecc in any::<Option<u8>>(),
        log_url in opt_text(),
        unicast_url in opt_text(),
        headers in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..300), opt_text()), 1..4),
    ) -> StationFile {
        let mut ids = FormatIds::new();
        let mut formats: Vec<Format> = Vec::new();
        for (header, description) in headers {
            let id = ids.id_for(&header).unwrap();
            if formats.iter().all(|f| f.id != id) {
                formats.push(Format { id, header, description });
            }
        }
        StationFile {
            name, multicast_adapter, ip_address, ip_port, time_to_live, default_ecc,
            log_url, unicast_url, formats,
        }
    }
}

proptest! {
    #[test]
    fn parse_to_nsc_round_trip(s in station()) {
        prop_assert!(s.validate().is_ok());
        let text = s.to_nsc();
        prop_assert!(text.is_ascii());
        prop_assert!(text.starts_with("[Address]\r\n"));
        prop_assert!(text.ends_with("\r\n"));
        prop_assert!(!text.replace("\r\n", "").contains('\n'));
        let p = parse(&text).unwrap();
        prop_assert!(p.bad_checks().is_empty());
        prop_assert_eq!(p.to_station_file().unwrap(), s);
    }

    #[test]
    fn parse_never_panics(text in "(?s).{0,400}") {
        if let Ok(p) = parse(&text) {
            let _ = p.bad_checks();
            let _ = p.to_station_file();
            let _ = describe(&p);
        }
    }

    #[test]
    fn parse_never_panics_on_nsc_like(lines in proptest::collection::vec(
        "(\\[Address\\]|\\[Formats\\]|(Format|Description)[0-9]{1,3}=0[12][0-9A-Za-z{}]{0,60}|IP (Port|Address)=0x[0-9A-F]{0,10}|[A-Za-z ]{1,10}= *0[12][0-9a-f{}]{0,40})", 0..20)) {
        let text = lines.join("\r\n");
        if let Ok(p) = parse(&text) {
            let _ = p.bad_checks();
            let _ = p.to_station_file();
            let _ = describe(&p);
        }
    }
}
