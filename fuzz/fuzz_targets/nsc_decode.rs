//! Fuzzes the .nsc reader and the encoded-block codec ([MS-MSB] §2.2.1, §2.2.1.3).
//!
//! - Any input read as UTF-8 text (lossily, so every input reaches the parser) goes through
//!   `decode`, `decode_header`, `decode_partial`, `parse`, every accessor, `bad_checks`,
//!   `to_station_file` and `describe`; none may panic. A strict decode that succeeds must agree
//!   with the header-only and partial decodes.
//! - A station file that `to_station_file` accepts must survive `to_nsc` → `parse` →
//!   `to_station_file` unchanged (the writer and the reader agree).
//! - The raw bytes, as a binary payload with a Key from the first four bytes, and as a string,
//!   survive `encode_binary`/`encode_string` → `decode` with a matching check byte.
#![no_main]

use asfcast::nsc::{self, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_text(&text);

    // Encode → decode on arbitrary bytes.
    let key = match data {
        [a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => 0,
    };
    let enc = nsc::encode_binary(data, key);
    assert!(enc.is_ascii(), "encoded value is not ASCII");
    let d = nsc::decode(&enc).expect("encode_binary output must decode");
    assert_eq!(d.payload, data, "binary round trip changed the payload");
    assert_eq!(d.key, key);
    assert!(d.crc_ok, "encode_binary wrote a wrong check byte");
    assert_eq!(d.encoding, Encoding::SixBit);

    // Strings (NUL-free, since the NUL terminates a UTF-16 value).
    if !text.contains('\0') {
        let enc = nsc::encode_string(&text);
        let d = nsc::decode(&enc).expect("encode_string output must decode");
        assert_eq!(d.key, 0);
        assert!(d.crc_ok);
        assert_eq!(
            d.as_string().as_deref(),
            Ok(&*text),
            "string round trip changed it"
        );
    }
});

fn check_text(text: &str) {
    // The whole input as one value, and each line's value part.
    check_value(text);
    for line in text.lines().take(64) {
        if let Some((_, v)) = line.split_once('=') {
            check_value(v);
        }
    }

    let Ok(p) = nsc::parse(text) else {
        return;
    };
    let _ = p.name();
    let _ = p.multicast_adapter();
    let _ = p.ip_address();
    let _ = p.ip_port();
    let _ = p.time_to_live();
    let _ = p.default_ecc();
    let _ = p.log_url();
    let _ = p.unicast_url();
    let _ = p.formats();
    for b in p.bad_checks() {
        let _ = b.to_string();
    }
    let _ = nsc::describe(&p);

    if let Ok(station) = p.to_station_file() {
        let written = station.to_nsc();
        let reread = nsc::parse(&written).expect("to_nsc output must parse");
        assert!(
            reread.bad_checks().is_empty(),
            "to_nsc output has problems: {:?}\n{written}",
            reread.bad_checks()
        );
        let again = reread
            .to_station_file()
            .expect("to_nsc output must give a station file");
        assert_eq!(
            again, station,
            "station file round trip changed it\n{written}"
        );
    }
}

fn check_value(v: &str) {
    let strict = nsc::decode(v);
    let head = nsc::decode_header(v);
    let partial = nsc::decode_partial(v);
    if let Ok(d) = strict {
        let h = head.expect("decode succeeded but decode_header failed");
        assert_eq!(h.key, d.key);
        assert_eq!(h.crc, d.crc);
        assert_eq!(h.length as usize, d.payload.len());
        let p = partial.expect("decode succeeded but decode_partial failed");
        assert!(
            p.complete,
            "decode succeeded but decode_partial is incomplete"
        );
        assert_eq!(p.payload, d.payload);
        let _ = d.as_string();
    }
}
