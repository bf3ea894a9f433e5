//! The .nsc "encoded-block" ([MS-MSB] §2.2.1.2, §2.2.1.3): a 9-byte EncodedDataHeader
//! (XOR check byte, big-endian Key and Length) followed by the payload, packed six bits per
//! character MSB first and prefixed with `02`.
//!
//! Strings are UTF-16LE including the terminating NUL (key 0); ASF headers keep their bytes and
//! carry their 11-bit Format ID in Key.
//!
//! Real-reader quirks served here:
//! - VLC's `nscdec` also accepts an undocumented type `01`: the same header and payload written
//!   as hex pairs. We decode it (never write it).
//! - VLC and the Amlogic receiver ignore the check byte, and the spec's own example carries a
//!   wrong one on `Name`, so a mismatch is reported (`crc_ok == false`), never an error.
//! - The Length field is untrusted: the payload is only taken from bytes actually present, so
//!   allocation is bounded by the input text.

use super::NscError;

/// The 64-character alphabet of [MS-MSB] §2.2.1.3.2 (`szSixtyFour`).
const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz{}";

/// Size of the EncodedDataHeader: CRC (1), Key (4, BE), Length (4, BE).
pub const HEADER_LEN: usize = 9;

/// How an encoded value was written (the two characters before the block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `02`: the [MS-MSB] six-bit packing.
    SixBit,
    /// `01`: hex pairs, known only from VLC's decoder.
    Hex,
}

/// The EncodedDataHeader fields as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHeader {
    /// The stored check byte (XOR of Key, Length and payload bytes).
    pub crc: u8,
    /// Format ID for ASF headers, 0 otherwise.
    pub key: u32,
    /// Declared payload length in bytes.
    pub length: u32,
}

/// A fully decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Key field: Format ID for ASF headers, 0 for strings.
    pub key: u32,
    /// Exactly `Length` payload bytes.
    pub payload: Vec<u8>,
    /// The stored check byte.
    pub crc: u8,
    /// Whether the stored check byte equals the XOR of Key, Length and payload.
    pub crc_ok: bool,
    /// Which encoding the value used.
    pub encoding: Encoding,
}

impl Decoded {
    /// The XOR check byte this value should have carried.
    pub fn computed_crc(&self) -> u8 {
        check_byte(self.key, &self.payload)
    }

    /// The payload read as a UTF-16LE string without its terminating NUL ([MS-MSB] §2.2.1.2).
    pub fn as_string(&self) -> Result<String, NscError> {
        utf16le_to_string(&self.payload)
    }
}

/// A best-effort decode of a damaged or elided value, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    /// The header (always complete, or this is an error).
    pub header: EncodedHeader,
    /// The payload bytes that could be read, at most `header.length`.
    pub payload: Vec<u8>,
    /// True when all `header.length` bytes were present and valid.
    pub complete: bool,
}

/// XOR of the big-endian Key, the big-endian Length and every payload byte.
fn check_byte(key: u32, payload: &[u8]) -> u8 {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    key.to_be_bytes()
        .iter()
        .chain(len.to_be_bytes().iter())
        .chain(payload.iter())
        .fold(0u8, |acc, b| acc ^ b)
}

/// Encodes binary data (an ASF header) with the given Key (its Format ID).
///
/// Payloads longer than `u32::MAX` bytes cannot be described by the Length field; they are not
/// a realistic input (an ASF header is at most a few hundred KiB) and are truncated to
/// `u32::MAX` bytes.
pub fn encode_binary(payload: &[u8], key: u32) -> String {
    let payload = payload.get(..u32::MAX as usize).unwrap_or(payload);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut block = Vec::with_capacity(HEADER_LEN + payload.len());
    block.push(check_byte(key, payload));
    block.extend_from_slice(&key.to_be_bytes());
    block.extend_from_slice(&len.to_be_bytes());
    block.extend_from_slice(payload);

    let mut out = String::with_capacity(2 + (block.len() * 8).div_ceil(6));
    out.push_str("02");
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in &block {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(sixbit_char((acc >> bits) & 0x3F));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(sixbit_char((acc << (6 - bits)) & 0x3F));
    }
    out
}

fn sixbit_char(v: u32) -> char {
    ALPHABET
        .get(v as usize)
        .map(|&c| char::from(c))
        .unwrap_or('0')
}

/// Encodes a string as UTF-16LE with its terminating NUL, Key 0 ([MS-MSB] §2.2.1.2).
pub fn encode_string(s: &str) -> String {
    encode_binary(&string_to_utf16le(s), 0)
}

/// UTF-16LE bytes of `s` followed by a NUL code unit.
pub fn string_to_utf16le(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2 + 2);
    for unit in s.encode_utf16().chain(std::iter::once(0)) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// A UTF-16LE byte string, with one trailing NUL removed if present.
pub fn utf16le_to_string(bytes: &[u8]) -> Result<String, NscError> {
    if bytes.len() % 2 != 0 {
        return Err(NscError::OddUtf16Length { len: bytes.len() });
    }
    let mut units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    if units.last() == Some(&0) {
        units.pop();
    }
    String::from_utf16(&units).map_err(|_| NscError::InvalidUtf16)
}

/// Splits off the two-character type prefix.
fn split_type(value: &str) -> Result<(Encoding, &str), NscError> {
    let value = value.trim();
    match (value.get(..2), value.get(2..)) {
        (Some("02"), Some(rest)) => Ok((Encoding::SixBit, rest)),
        (Some("01"), Some(rest)) => Ok((Encoding::Hex, rest)),
        _ => Err(NscError::UnknownEncoding {
            prefix: value.chars().take(2).collect(),
        }),
    }
}

/// Unpacks the body into bytes. Stops at the first invalid character when `lenient`, else
/// fails there. Returns the bytes and whether the whole body was valid.
fn unpack(encoding: Encoding, body: &str, lenient: bool) -> Result<(Vec<u8>, bool), NscError> {
    let mut out = Vec::with_capacity(body.len());
    match encoding {
        Encoding::SixBit => {
            let mut acc: u32 = 0;
            let mut bits: u32 = 0;
            for (pos, ch) in body.char_indices() {
                let Some(v) = sixbit_value(ch) else {
                    if lenient {
                        return Ok((out, false));
                    }
                    return Err(NscError::InvalidChar { pos: pos + 2, ch });
                };
                acc = (acc << 6) | u32::from(v);
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    out.push(((acc >> bits) & 0xFF) as u8);
                }
                acc &= (1 << bits) - 1;
            }
        }
        Encoding::Hex => {
            let mut chars = body.char_indices();
            while let Some((pos, hi)) = chars.next() {
                let lo = chars.next();
                let pair = (hi.to_digit(16), lo.and_then(|(_, c)| c.to_digit(16)));
                match pair {
                    (Some(h), Some(l)) => out.push(((h << 4) | l) as u8),
                    _ => {
                        if lenient {
                            return Ok((out, false));
                        }
                        return match (hi.to_digit(16), lo) {
                            (None, _) => Err(NscError::InvalidChar {
                                pos: pos + 2,
                                ch: hi,
                            }),
                            (Some(_), Some((p, c))) => {
                                Err(NscError::InvalidChar { pos: p + 2, ch: c })
                            }
                            (Some(_), None) => Err(NscError::OddHexLength),
                        };
                    }
                }
            }
        }
    }
    Ok((out, true))
}

fn sixbit_value(ch: char) -> Option<u8> {
    match ch {
        '0'..='9' => Some(ch as u8 - b'0'),
        'A'..='Z' => Some(ch as u8 - b'A' + 10),
        'a'..='z' => Some(ch as u8 - b'a' + 36),
        '{' => Some(62),
        '}' => Some(63),
        _ => None,
    }
}

fn read_header(bytes: &[u8]) -> Option<EncodedHeader> {
    let h = bytes.get(..HEADER_LEN)?;
    Some(EncodedHeader {
        crc: h[0],
        key: u32::from_be_bytes([h[1], h[2], h[3], h[4]]),
        length: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
    })
}

/// Decodes only the EncodedDataHeader (the first 9 bytes; 12 characters for `02`).
/// Characters after the header are not looked at.
pub fn decode_header(value: &str) -> Result<EncodedHeader, NscError> {
    let (encoding, body) = split_type(value)?;
    let needed = match encoding {
        Encoding::SixBit => 12,
        Encoding::Hex => 2 * HEADER_LEN,
    };
    let head: String = body.chars().take(needed).collect();
    let (bytes, _) = unpack(encoding, &head, false)?;
    read_header(&bytes).ok_or(NscError::TooShort {
        chars: body.chars().count(),
    })
}

/// Strictly decodes an encoded value (`02…` or VLC's hex `01…`).
///
/// Fails on an unknown prefix, an invalid character, a header that is cut short, a payload
/// shorter than Length ([`NscError::Truncated`]) or data beyond it ([`NscError::TrailingData`]).
/// A wrong check byte is not an error: see [`Decoded::crc_ok`].
pub fn decode(value: &str) -> Result<Decoded, NscError> {
    let (encoding, body) = split_type(value)?;
    let (bytes, _) = unpack(encoding, body, false)?;
    let header = read_header(&bytes).ok_or(NscError::TooShort {
        chars: body.chars().count(),
    })?;
    let rest = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    let declared = header.length as usize;
    if rest.len() < declared {
        return Err(NscError::Truncated {
            key: header.key,
            declared: header.length,
            available: rest.len(),
        });
    }
    if rest.len() > declared {
        return Err(NscError::TrailingData {
            declared: header.length,
            extra: rest.len() - declared,
        });
    }
    let payload = rest.to_vec();
    let crc_ok = check_byte(header.key, &payload) == header.crc;
    Ok(Decoded {
        key: header.key,
        payload,
        crc: header.crc,
        crc_ok,
        encoding,
    })
}

/// Decodes as much of a damaged or elided value as possible (stops at the first invalid
/// character or the end of the text). Fails only when the header itself cannot be read.
pub fn decode_partial(value: &str) -> Result<Partial, NscError> {
    let (encoding, body) = split_type(value)?;
    let (bytes, _) = unpack(encoding, body, true)?;
    let header = read_header(&bytes).ok_or(NscError::TooShort {
        chars: body.chars().count(),
    })?;
    let rest = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    let take = rest.len().min(header.length as usize);
    let payload = rest.get(..take).unwrap_or(&[]).to_vec();
    let complete = take == header.length as usize;
    Ok(Partial {
        header,
        payload,
        complete,
    })
}

/// True when `value` has the shape of the ABNF `binary` rule: `02` then 12 or more characters
/// from the alphabet.
pub fn looks_sixbit(value: &str) -> bool {
    value
        .strip_prefix("02")
        .is_some_and(|b| b.len() >= 12 && b.chars().all(|c| sixbit_value(c).is_some()))
}

/// True when `value` has the shape of VLC's hex type: `01` then an even number (at least 18)
/// of hex digits.
pub fn looks_hex(value: &str) -> bool {
    value.strip_prefix("01").is_some_and(|b| {
        b.len() >= 2 * HEADER_LEN && b.len() % 2 == 0 && b.chars().all(|c| c.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_version_vector() {
        assert_eq!(encode_string("3.0"), "029G0000000008Cm0k0300000");
        let d = decode("029G0000000008Cm0k0300000").unwrap();
        assert_eq!(d.key, 0);
        assert_eq!(d.crc, 0x25);
        assert!(d.crc_ok);
        assert_eq!(d.payload, [0x33, 0, 0x2E, 0, 0x30, 0, 0, 0]);
        assert_eq!(d.as_string().unwrap(), "3.0");
        assert_eq!(d.encoding, Encoding::SixBit);
    }

    #[test]
    fn hi_vector() {
        assert_eq!(encode_string("Hi"), "029m0000000006I01f0000");
        let d = decode("029m0000000006I01f0000").unwrap();
        assert_eq!(d.crc, 0x27);
        assert!(d.crc_ok);
        assert_eq!(d.as_string().unwrap(), "Hi");
    }

    #[test]
    fn empty_string_vector_from_spec() {
        // "Log URL=020W0000000002000": Length 2, only the NUL.
        assert_eq!(encode_string(""), "020W0000000002000");
        let d = decode("020W0000000002000").unwrap();
        assert_eq!(d.payload, [0, 0]);
        assert_eq!(d.crc, 0x02);
        assert_eq!(d.as_string().unwrap(), "");
    }

    #[test]
    fn binary_key_is_big_endian() {
        let s = encode_binary(&[0xAB], 0x39E);
        let h = decode_header(&s).unwrap();
        assert_eq!(h.key, 0x39E);
        assert_eq!(h.length, 1);
        assert_eq!(h.crc, 0x03 ^ 0x9E ^ 0x01 ^ 0xAB);
    }

    #[test]
    fn hex_type_decodes() {
        // "Hi" in VLC's type 1: crc 27, key 0, length 6, payload.
        assert!(matches!(
            decode("012700000000000000064800690000 00"),
            Err(NscError::InvalidChar { ch: ' ', .. })
        ));
        let d = decode("01270000000000000006480069000000").unwrap();
        assert_eq!(d.encoding, Encoding::Hex);
        assert!(d.crc_ok);
        assert_eq!(d.as_string().unwrap(), "Hi");
        let lower = decode("01270000000000000006480069000000".to_lowercase().as_str()).unwrap();
        assert_eq!(lower.payload, d.payload);
        assert_eq!(decode("0127000").unwrap_err(), NscError::OddHexLength);
    }

    #[test]
    fn bad_crc_is_reported_not_rejected() {
        let mut s = encode_string("abc");
        // Flip the check byte: first char holds its top 6 bits.
        let first = s.as_bytes()[2];
        let replacement = if first == b'1' { '2' } else { '1' };
        s.replace_range(2..3, &replacement.to_string());
        let d = decode(&s).unwrap();
        assert!(!d.crc_ok);
        assert_eq!(d.as_string().unwrap(), "abc");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            decode("03abcdefghijklmn"),
            Err(NscError::UnknownEncoding { .. })
        ));
        assert!(matches!(decode(""), Err(NscError::UnknownEncoding { .. })));
        assert_eq!(
            decode("020000000").unwrap_err(),
            NscError::TooShort { chars: 7 }
        );
        assert_eq!(
            decode("02000000000000+").unwrap_err(),
            NscError::InvalidChar { pos: 14, ch: '+' }
        );
        // Header claims 0xFFFFFFFF bytes with none present: a clean error, no huge allocation.
        // Type 01 (hex): check 00, Key 0, Length FFFFFFFF, no payload.
        let fake = "010000000000FFFFFFFF";
        assert_eq!(
            decode(fake).unwrap_err(),
            NscError::Truncated {
                key: 0,
                declared: u32::MAX,
                available: 0
            }
        );
        let mut long = encode_string("x");
        long.push_str("0000");
        assert!(matches!(decode(&long), Err(NscError::TrailingData { .. })));
    }

    #[test]
    fn partial_decode_stops_at_bad_char() {
        let full = encode_binary(&[1, 2, 3, 4, 5, 6, 7, 8], 7);
        let cut = format!("{}...", &full[..20]);
        let p = decode_partial(&cut).unwrap();
        assert_eq!(p.header.key, 7);
        assert_eq!(p.header.length, 8);
        assert!(!p.complete);
        // 18 characters carry 108 bits: 13 whole bytes, 9 of them the header.
        assert_eq!(p.payload, [1, 2, 3, 4]);
        assert!(decode_partial(&full).unwrap().complete);
    }

    #[test]
    fn shapes() {
        assert!(looks_sixbit("029G0000000008Cm0k0300000"));
        assert!(!looks_sixbit("239.192.48.179"));
        assert!(!looks_sixbit("02abc"));
        assert!(looks_hex("01270000000000000006480069000000"));
        assert!(!looks_hex("0127"));
    }

    proptest! {
        #[test]
        fn binary_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2048), key in any::<u32>()) {
            let s = encode_binary(&payload, key);
            prop_assert!(s.starts_with("02"));
            prop_assert_eq!(s.len(), 2 + ((HEADER_LEN + payload.len()) * 8).div_ceil(6));
            prop_assert!(looks_sixbit(&s));
            let d = decode(&s).unwrap();
            prop_assert_eq!(d.key, key);
            prop_assert!(d.crc_ok);
            prop_assert_eq!(d.payload, payload);
        }

        #[test]
        fn string_round_trip(s in "[^\u{0}]{0,64}") {
            let d = decode(&encode_string(&s)).unwrap();
            prop_assert_eq!(d.key, 0);
            prop_assert_eq!(d.as_string().unwrap(), s);
        }

        #[test]
        fn decode_never_panics(s in ".{0,200}") {
            let _ = decode(&s);
            let _ = decode_partial(&s);
            let _ = decode_header(&s);
        }

        #[test]
        fn decode_never_panics_on_alphabet(s in "0[12][0-9A-Za-z{}]{0,200}") {
            let _ = decode(&s);
            let _ = decode_partial(&s);
        }
    }
}
