//! Reading .nsc files ([MS-MSB] §2.2.1), tolerant of what real files and hand edits contain:
//! LF or CRLF, whitespace around `=` and around keys, a leading BOM, unknown keys (Windows 2000
//! wrote Player URL, Channel Version and others, §6 note <4>), plain or encoded strings, VLC's
//! hex encoding, and wrong check bytes (the spec's own example has one).
//!
//! Nothing is dropped: every `key=value` line is kept in order with its decoded value, and every
//! problem (bad check byte, undecodable value, stray line, repeated Format ID) is listed by
//! [`ParsedNsc::bad_checks`] so `asfcast nsc decode` can exit non-zero.

use std::fmt::Write as _;

use super::encoding::{decode, decode_header, looks_hex, looks_sixbit, Decoded};
use super::format_id::MAX_FORMAT_ID;
use super::station::{Format, StationFile};
use super::NscError;

/// The GUID of the ASF Header Object, as stored.
pub const ASF_HEADER_GUID: [u8; 16] = [
    0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C,
];

/// The GUID of the ASF Data Object, as stored.
pub const ASF_DATA_GUID: [u8; 16] = [
    0x36, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C,
];

/// Size of the fixed head of the ASF Data Object that follows the Header Object in `Format<N>`.
pub const DATA_OBJECT_HEAD_LEN: u64 = 50;

/// A property value as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Nothing after `=` (the property counts as absent, §2.2.1).
    Empty,
    /// `0x` + hex digits.
    Integer(u32),
    /// A plain ASCII string.
    Plain(String),
    /// An encoded block that decoded completely (its check byte may still be wrong).
    Encoded(Decoded),
    /// A value that should be encoded or an integer but could not be read.
    Invalid(NscError),
}

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// The section it appeared in (`Address`, `Formats`, anything else), if any.
    pub section: Option<String>,
    /// The key, whitespace trimmed.
    pub key: String,
    /// The value text, whitespace trimmed.
    pub raw: String,
    /// The value as read.
    pub value: Value,
}

impl Entry {
    /// The value as a string: plain text, or an encoded UTF-16 string. `None` when empty or not
    /// a string.
    pub fn as_string(&self) -> Option<String> {
        match &self.value {
            Value::Plain(s) => Some(s.clone()),
            Value::Encoded(d) => d.as_string().ok(),
            _ => None,
        }
    }
}

/// A line that is neither a section header nor `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayLine {
    /// 1-based line number.
    pub line: usize,
    /// The line text.
    pub text: String,
}

/// One `Format<N>` read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFormat {
    /// N in `Format<N>`.
    pub n: u32,
    /// 1-based line number.
    pub line: usize,
    /// The encoded Key (the Format ID; 11 bits in a valid file).
    pub key: u32,
    /// The decoded ASF header bytes.
    pub header: Vec<u8>,
    /// Whether its check byte matched.
    pub crc_ok: bool,
    /// `Description<N>`, if present and readable.
    pub description: Option<String>,
}

/// Why an entry is listed by [`ParsedNsc::bad_checks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReason {
    /// The stored XOR check byte differs from the computed one.
    CrcMismatch {
        /// Stored in the file.
        stored: u8,
        /// Computed from Key, Length and payload.
        computed: u8,
    },
    /// The value could not be decoded.
    Undecodable(NscError),
    /// A line that is neither a section header nor `key=value`.
    StrayLine,
    /// A second `Format<N>` with a Format ID already used.
    DuplicateFormatId(u32),
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCheck {
    /// 1-based line number.
    pub line: usize,
    /// The key (or the stray line's text).
    pub key: String,
    /// What is wrong.
    pub reason: BadReason,
}

impl std::fmt::Display for BadCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: ", self.line, self.key)?;
        match &self.reason {
            BadReason::CrcMismatch { stored, computed } => write!(
                f,
                "check byte 0x{stored:02X} does not match computed 0x{computed:02X}"
            ),
            BadReason::Undecodable(e) => write!(f, "undecodable: {e}"),
            BadReason::StrayLine => write!(f, "not a section header or key=value line"),
            BadReason::DuplicateFormatId(id) => write!(f, "Format ID {id} is used twice"),
        }
    }
}

/// A parsed .nsc file: every entry in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedNsc {
    /// The `key=value` lines in order.
    pub entries: Vec<Entry>,
    /// Lines that could not be read at all.
    pub stray: Vec<StrayLine>,
}

/// `Format<N>` / `Description<N>`: the N, if `key` is `prefix` followed by digits only.
fn numbered(key: &str, prefix: &str) -> Option<u32> {
    let head = key.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let digits = key.get(prefix.len()..)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_integer(raw: &str) -> Result<u32, NscError> {
    let digits = raw
        .strip_prefix("0x")
        .or_else(|| raw.strip_prefix("0X"))
        .unwrap_or(raw);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NscError::BadInteger {
            value: raw.chars().take(32).collect(),
        });
    }
    u32::from_str_radix(digits, 16).map_err(|_| NscError::BadInteger {
        value: raw.to_string(),
    })
}

fn classify(key: &str, raw: &str) -> Value {
    if raw.is_empty() {
        return Value::Empty;
    }
    if raw.starts_with("0x") || raw.starts_with("0X") {
        return match parse_integer(raw) {
            Ok(v) => Value::Integer(v),
            Err(e) => Value::Invalid(e),
        };
    }
    if numbered(key, "Format").is_some() {
        // Binary values are always encoded.
        if raw.starts_with("02") || raw.starts_with("01") {
            return match decode(raw) {
                Ok(d) => Value::Encoded(d),
                Err(e) => Value::Invalid(e),
            };
        }
        return Value::Invalid(NscError::NotEncoded);
    }
    if looks_sixbit(raw) {
        return match decode(raw) {
            Ok(d) => Value::Encoded(d),
            Err(e) => Value::Invalid(e),
        };
    }
    if looks_hex(raw) {
        if let Ok(d) = decode(raw) {
            return Value::Encoded(d);
        }
    }
    Value::Plain(raw.to_string())
}

/// Parses .nsc text. Never fails on content: problems are recorded in the result (see
/// [`ParsedNsc::bad_checks`]); it fails only when the text has no `key=value` line at all.
pub fn parse(text: &str) -> Result<ParsedNsc, NscError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut parsed = ParsedNsc::default();
    let mut section: Option<String> = None;
    for (i, line) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            parsed.stray.push(StrayLine {
                line: line_no,
                text: trimmed.to_string(),
            });
            continue;
        };
        let key = key.trim().to_string();
        let raw = value.trim().to_string();
        let value = classify(&key, &raw);
        parsed.entries.push(Entry {
            line: line_no,
            section: section.clone(),
            key,
            raw,
            value,
        });
    }
    if parsed.entries.is_empty() {
        return Err(NscError::NotNsc);
    }
    Ok(parsed)
}

impl ParsedNsc {
    /// The first entry with this key (ASCII case-insensitive).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// A string property (plain or encoded); `None` when absent, empty or unreadable.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(Entry::as_string)
            .filter(|s| !s.is_empty())
    }

    /// An integer property; `None` when absent or not an integer.
    pub fn integer(&self, key: &str) -> Option<u32> {
        match self.get(key)?.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    /// `Name`.
    pub fn name(&self) -> Option<String> {
        self.string("Name")
    }

    /// `Multicast Adapter`.
    pub fn multicast_adapter(&self) -> Option<String> {
        self.string("Multicast Adapter")
    }

    /// `IP Address` (the multicast group).
    pub fn ip_address(&self) -> Option<String> {
        self.string("IP Address")
    }

    /// `IP Port`, if present and a valid port.
    pub fn ip_port(&self) -> Option<u16> {
        self.integer("IP Port").and_then(|p| u16::try_from(p).ok())
    }

    /// `Time To Live`, as written (a sender uses it as TTL or hop limit).
    pub fn time_to_live(&self) -> Option<u32> {
        self.integer("Time To Live")
    }

    /// `Default Ecc`.
    pub fn default_ecc(&self) -> Option<u32> {
        self.integer("Default Ecc")
    }

    /// `Log URL`.
    pub fn log_url(&self) -> Option<String> {
        self.string("Log URL")
    }

    /// `Unicast URL` (the fallback when nothing arrives on the group).
    pub fn unicast_url(&self) -> Option<String> {
        self.string("Unicast URL")
    }

    /// Every `Format<N>` that decoded, in file order, with its `Description<N>`.
    pub fn formats(&self) -> Vec<ParsedFormat> {
        self.entries
            .iter()
            .filter_map(|e| {
                let n = numbered(&e.key, "Format")?;
                let Value::Encoded(d) = &e.value else {
                    return None;
                };
                let description = self
                    .entries
                    .iter()
                    .find(|x| numbered(&x.key, "Description") == Some(n))
                    .and_then(Entry::as_string)
                    .filter(|s| !s.is_empty());
                Some(ParsedFormat {
                    n,
                    line: e.line,
                    key: d.key,
                    header: d.payload.clone(),
                    crc_ok: d.crc_ok,
                    description,
                })
            })
            .collect()
    }

    /// Everything wrong with the file: bad check bytes, undecodable values, stray lines and
    /// repeated Format IDs, in line order.
    pub fn bad_checks(&self) -> Vec<BadCheck> {
        let mut out = Vec::new();
        let mut seen_ids: Vec<u32> = Vec::new();
        for e in &self.entries {
            match &e.value {
                Value::Encoded(d) => {
                    if !d.crc_ok {
                        out.push(BadCheck {
                            line: e.line,
                            key: e.key.clone(),
                            reason: BadReason::CrcMismatch {
                                stored: d.crc,
                                computed: d.computed_crc(),
                            },
                        });
                    }
                    if numbered(&e.key, "Format").is_some() {
                        if seen_ids.contains(&d.key) {
                            out.push(BadCheck {
                                line: e.line,
                                key: e.key.clone(),
                                reason: BadReason::DuplicateFormatId(d.key),
                            });
                        }
                        seen_ids.push(d.key);
                    }
                }
                Value::Invalid(err) => out.push(BadCheck {
                    line: e.line,
                    key: e.key.clone(),
                    reason: BadReason::Undecodable(err.clone()),
                }),
                Value::Empty | Value::Integer(_) | Value::Plain(_) => {}
            }
        }
        for s in &self.stray {
            out.push(BadCheck {
                line: s.line,
                key: s.text.chars().take(40).collect(),
                reason: BadReason::StrayLine,
            });
        }
        out.sort_by_key(|b| b.line);
        out
    }

    /// The station a receiver needs: group, port, TTL and every Format. Fails when a required
    /// key is missing, a number is out of range, a `Format<N>` cannot be decoded, or the result
    /// breaks [`StationFile::validate`]. Wrong check bytes are accepted (as every known reader
    /// does); they show up in [`ParsedNsc::bad_checks`].
    pub fn to_station_file(&self) -> Result<StationFile, NscError> {
        let ip_address = self
            .ip_address()
            .ok_or(NscError::Missing { key: "IP Address" })?;
        let port = self
            .integer("IP Port")
            .ok_or(NscError::Missing { key: "IP Port" })?;
        let ip_port = u16::try_from(port).map_err(|_| NscError::OutOfRange {
            key: "IP Port",
            value: port,
        })?;
        let small = |key: &'static str| -> Result<Option<u8>, NscError> {
            self.integer(key)
                .map(|v| u8::try_from(v).map_err(|_| NscError::OutOfRange { key, value: v }))
                .transpose()
        };
        let time_to_live = small("Time To Live")?;
        let default_ecc = small("Default Ecc")?;

        for e in &self.entries {
            if numbered(&e.key, "Format").is_some() {
                if let Value::Invalid(err) = &e.value {
                    return Err(NscError::BadEntry {
                        key: e.key.clone(),
                        line: e.line,
                        cause: Box::new(err.clone()),
                    });
                }
            }
        }
        let formats = self
            .formats()
            .into_iter()
            .map(|f| {
                let id = u16::try_from(f.key)
                    .ok()
                    .filter(|&id| id <= MAX_FORMAT_ID)
                    .ok_or(NscError::FormatIdTooLarge { id: f.key })?;
                Ok(Format {
                    id,
                    header: f.header,
                    description: f.description,
                })
            })
            .collect::<Result<Vec<_>, NscError>>()?;

        let station = StationFile {
            name: self.name(),
            multicast_adapter: self.multicast_adapter(),
            ip_address,
            ip_port,
            time_to_live,
            default_ecc,
            log_url: self.log_url(),
            unicast_url: self.unicast_url(),
            formats,
        };
        station.validate()?;
        Ok(station)
    }
}

/// What `Format<N>` bytes look like as an ASF header.
fn describe_asf(header: &[u8]) -> String {
    if header.get(..16) != Some(&ASF_HEADER_GUID[..]) {
        return "does not start with the ASF Header Object GUID".to_string();
    }
    let Some(size_bytes) = header.get(16..24) else {
        return "ASF Header Object GUID, object size cut off".to_string();
    };
    let mut b = [0u8; 8];
    b.copy_from_slice(size_bytes);
    let size = u64::from_le_bytes(b);
    let len = header.len() as u64;
    let expected = size.saturating_add(DATA_OBJECT_HEAD_LEN);
    let verdict = if expected == len {
        "matches"
    } else {
        "MISMATCH"
    };
    let data = usize::try_from(size)
        .ok()
        .and_then(|s| header.get(s..s.checked_add(16)?))
        == Some(&ASF_DATA_GUID[..]);
    format!(
        "ASF Header Object GUID: yes, object size {size} + {DATA_OBJECT_HEAD_LEN} = {expected} vs length {len}: {verdict}, Data Object GUID after it: {}",
        if data { "yes" } else { "no" }
    )
}

fn hex_preview(bytes: &[u8]) -> String {
    let mut s: String = bytes
        .iter()
        .take(24)
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ");
    if bytes.len() > 24 {
        s.push_str(" ...");
    }
    s
}

fn check_text(d: &Decoded) -> String {
    if d.crc_ok {
        format!("check byte 0x{:02X} ok", d.crc)
    } else {
        format!(
            "check byte 0x{:02X} FAILED (computed 0x{:02X})",
            d.crc,
            d.computed_crc()
        )
    }
}

/// A human-readable dump for `asfcast nsc decode FILE`: every key with its decoded value, the
/// Format IDs and header sanity, each check byte's verdict, then the list of problems.
pub fn describe(parsed: &ParsedNsc) -> String {
    let mut out = String::new();
    let mut section: Option<&str> = None;
    for e in &parsed.entries {
        if e.section.as_deref() != section {
            section = e.section.as_deref();
            let _ = writeln!(out, "[{}]", section.unwrap_or(""));
        }
        let _ = write!(out, "  line {:>3}  {} = ", e.line, e.key);
        match &e.value {
            Value::Empty => out.push_str("(empty: absent)"),
            Value::Integer(v) => {
                let _ = write!(out, "0x{v:08X} ({v})");
            }
            Value::Plain(s) => {
                let _ = write!(out, "{s:?} (plain)");
            }
            Value::Encoded(d) if numbered(&e.key, "Format").is_some() => {
                let _ = write!(
                    out,
                    "format id {} (0x{:03X}), {} bytes, {}; {}",
                    d.key,
                    d.key,
                    d.payload.len(),
                    describe_asf(&d.payload),
                    check_text(d)
                );
                if d.key > u32::from(MAX_FORMAT_ID) {
                    out.push_str("; Format ID exceeds 11 bits");
                }
            }
            Value::Encoded(d) => {
                match d.as_string() {
                    Ok(s) => {
                        let _ = write!(out, "{s:?}");
                    }
                    Err(_) => {
                        let _ = write!(out, "binary [{}]", hex_preview(&d.payload));
                    }
                }
                let _ = write!(out, " (encoded, {} bytes", d.payload.len());
                if d.key != 0 {
                    let _ = write!(out, ", key {}", d.key);
                }
                let _ = write!(out, ", {})", check_text(d));
            }
            Value::Invalid(err) => {
                let _ = write!(out, "UNREADABLE: {err}");
                if let Ok(h) = decode_header(&e.raw) {
                    let _ = write!(
                        out,
                        " (header: key {}, length {}, check byte 0x{:02X})",
                        h.key, h.length, h.crc
                    );
                }
            }
        }
        out.push('\n');
    }
    for s in &parsed.stray {
        let _ = writeln!(out, "  line {:>3}  stray line: {:?}", s.line, s.text);
    }
    let bad = parsed.bad_checks();
    if bad.is_empty() {
        out.push_str("all checks passed\n");
    } else {
        let _ = writeln!(out, "{} problem(s):", bad.len());
        for b in &bad {
            let _ = writeln!(out, "  {b}");
        }
    }
    out
}
