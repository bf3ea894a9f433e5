//! The station file model and the .nsc writer ([MS-MSB] §2.2.1, §2.2.1.1, §2.2.1.4).
//!
//! Output rules, all from the spec unless marked:
//! - ASCII only, CRLF after every line (the last one too), `[Address]` then `[Formats]`.
//! - Properties in the grammar's order: Name, NSC Format Version, Multicast Adapter, IP Address,
//!   IP Port, Time To Live, Default Ecc, Log URL, Unicast URL; then `Format<N>` with its optional
//!   `Description<N>`, N counting from 1. The spec ties N to nothing (its example has `Format1`
//!   with Format ID 926); the Format ID lives in the encoded Key.
//! - Integers as `0x` + 8 upper-case hex digits.
//! - No whitespace around `=`: VLC's probe looks for the literal text `NSC Format Version=`.
//! - Every string is encoded (UTF-16LE block), `NSC Format Version` included, as WMS does in the
//!   spec's second example: the Amlogic receiver rejects plain strings and VLC's decoder
//!   misreads them.
//! - An empty string means "absent" (§2.2.1), so `Some("")` is written like `None`.

use super::encoding::{encode_binary, encode_string};
use super::format_id::MAX_FORMAT_ID;
use super::NscError;

/// One announced ASF header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// 11-bit Format ID (the encoded Key; wStreamID bits 0–10 in MSB packets).
    pub id: u16,
    /// The ASF Header Object followed by the 50-byte head of the Data Object.
    pub header: Vec<u8>,
    /// Optional human-readable description (`Description<N>`).
    pub description: Option<String>,
}

/// Everything a .nsc file announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationFile {
    /// "Machine Name, Publishing Point Name"; see [`station_name`].
    pub name: Option<String>,
    /// Source address of the multicast datagrams.
    pub multicast_adapter: Option<String>,
    /// Multicast group.
    pub ip_address: String,
    /// UDP port.
    pub ip_port: u16,
    /// IPv4 TTL / IPv6 hop limit the sender uses.
    pub time_to_live: Option<u8>,
    /// Maximum data packets per FEC cycle (parity not counted).
    pub default_ecc: Option<u8>,
    /// http:// URL accepting [MS-WMLOG] POSTs.
    pub log_url: Option<String>,
    /// Unicast fallback URL, opened when the client's Open timer expires.
    pub unicast_url: Option<String>,
    /// The announced ASF headers, in file order.
    pub formats: Vec<Format>,
}

/// The `Name` value: "Machine Name, Publishing Point Name" ([MS-MSB] §2.2.1.4).
pub fn station_name(host: &str, station: &str) -> String {
    format!("{host}, {station}")
}

/// Formats an integer property value: `0x` + 8 upper-case hex digits.
pub fn integer_value(v: u32) -> String {
    format!("0x{v:08X}")
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl StationFile {
    /// Checks what the grammar and the receivers need: a non-empty IP Address, at least one
    /// Format, 11-bit and distinct Format IDs, non-empty headers and no NUL inside strings
    /// (a UTF-16 reader would stop there).
    pub fn validate(&self) -> Result<(), NscError> {
        if self.ip_address.is_empty() {
            return Err(NscError::Missing { key: "IP Address" });
        }
        if self.formats.is_empty() {
            return Err(NscError::NoFormats);
        }
        let strings = [
            ("Name", self.name.as_deref()),
            ("Multicast Adapter", self.multicast_adapter.as_deref()),
            ("IP Address", Some(self.ip_address.as_str())),
            ("Log URL", self.log_url.as_deref()),
            ("Unicast URL", self.unicast_url.as_deref()),
        ];
        for (key, value) in strings {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(NscError::NulInString {
                    key: key.to_string(),
                });
            }
        }
        for (i, f) in self.formats.iter().enumerate() {
            if f.id > MAX_FORMAT_ID {
                return Err(NscError::FormatIdTooLarge {
                    id: u32::from(f.id),
                });
            }
            if f.header.is_empty() {
                return Err(NscError::EmptyHeader { n: i + 1 });
            }
            if self.formats[..i].iter().any(|g| g.id == f.id) {
                return Err(NscError::DuplicateFormatId { id: f.id });
            }
            if f.description.as_deref().is_some_and(|d| d.contains('\0')) {
                return Err(NscError::NulInString {
                    key: format!("Description{}", i + 1),
                });
            }
        }
        Ok(())
    }

    /// Writes the .nsc text. Writes what it is given; call [`StationFile::validate`] first.
    pub fn to_nsc(&self) -> String {
        let mut w = Writer::default();
        w.section("Address");
        if let Some(name) = present(&self.name) {
            w.prop("Name", &encode_string(name));
        }
        w.prop("NSC Format Version", &encode_string("3.0"));
        if let Some(a) = present(&self.multicast_adapter) {
            w.prop("Multicast Adapter", &encode_string(a));
        }
        w.prop("IP Address", &encode_string(&self.ip_address));
        w.prop("IP Port", &integer_value(u32::from(self.ip_port)));
        if let Some(ttl) = self.time_to_live {
            w.prop("Time To Live", &integer_value(u32::from(ttl)));
        }
        if let Some(ecc) = self.default_ecc {
            w.prop("Default Ecc", &integer_value(u32::from(ecc)));
        }
        if let Some(u) = present(&self.log_url) {
            w.prop("Log URL", &encode_string(u));
        }
        if let Some(u) = present(&self.unicast_url) {
            w.prop("Unicast URL", &encode_string(u));
        }
        w.section("Formats");
        for (i, f) in self.formats.iter().enumerate() {
            let n = i + 1;
            w.prop(
                &format!("Format{n}"),
                &encode_binary(&f.header, u32::from(f.id)),
            );
            if let Some(d) = present(&f.description) {
                w.prop(&format!("Description{n}"), &encode_string(d));
            }
        }
        w.text
    }
}

/// Accumulates CRLF-terminated lines.
#[derive(Default)]
struct Writer {
    text: String,
}

impl Writer {
    fn section(&mut self, name: &str) {
        self.text.push('[');
        self.text.push_str(name);
        self.text.push_str("]\r\n");
    }

    fn prop(&mut self, key: &str, value: &str) {
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(value);
        self.text.push_str("\r\n");
    }
}
