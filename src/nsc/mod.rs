//! .nsc station files and .asx announcements.
//!
//! A multicast (MS-MSB) client learns the group, the port and the ASF headers only from the
//! .nsc ("NetShow Station Configuration", a.k.a. Windows Media Station) file: the stream itself
//! carries no header. This module writes and reads that file exactly per [MS-MSB] §2.2.1 and
//! writes the .asx that points players at it with unicast rollover. Pure code: text and bytes
//! in, text and bytes out.
//!
//! - [`encoding`]: the `02` encoded-block (§2.2.1.3) and VLC's hex variant.
//! - [`format_id`](mod@format_id): 11-bit Format IDs from a header hash (§2.2.1.4).
//! - [`station`]: the station model and the writer (§2.2.1.1 grammar order, CRLF).
//! - [`parse`](mod@parse): a tolerant reader, accessors for receivers, and the `nsc decode` dump.
//! - [`asx`](mod@asx): the announcement file.
//!
//! Content types: IIS, the web server WMS deployments published through, maps both `.nsc` and
//! `.asx` to `video/x-ms-asf` in its default MIME map (applicationHost.config), and that is the
//! type Windows Media Player is registered for, so it is what we serve. freedesktop.org's
//! shared-mime-info names the .nsc type `application/x-netshow-channel` (used by desktop
//! players to pick a handler); it is offered as [`NSC_CONTENT_TYPE_FREEDESKTOP`] but not used
//! by default. .nsc responses should also be sent uncacheable so players never keep stale
//! group or header data (Microsoft's deployment advice).

pub mod asx;
pub mod encoding;
pub mod format_id;
pub mod parse;
pub mod station;

pub use asx::{asx, xml_escape};
pub use encoding::{
    decode, decode_header, decode_partial, encode_binary, encode_string, Decoded, EncodedHeader,
    Encoding, Partial,
};
pub use format_id::{distinct_format_id, format_id, FormatIds, MAX_FORMAT_ID};
pub use parse::{
    describe, parse, BadCheck, BadReason, Entry, ParsedFormat, ParsedNsc, StrayLine, Value,
};
pub use station::{integer_value, station_name, Format, StationFile};

/// Content type for serving .nsc files (IIS's default mapping; what WMP is registered for).
pub const NSC_CONTENT_TYPE: &str = "video/x-ms-asf";

/// The freedesktop.org shared-mime-info type for .nsc ("Windows Media Station file").
pub const NSC_CONTENT_TYPE_FREEDESKTOP: &str = "application/x-netshow-channel";

/// Content type for serving .asx announcements.
pub const ASX_CONTENT_TYPE: &str = "video/x-ms-asf";

/// Errors from encoding, decoding, parsing and validating station files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NscError {
    /// The value does not start with `02` (or VLC's `01`).
    #[error("unknown encoding type {prefix:?} (expected \"02\" or \"01\")")]
    UnknownEncoding {
        /// The first two characters.
        prefix: String,
    },
    /// A character outside the encoding's alphabet.
    #[error("invalid character {ch:?} at offset {pos}")]
    InvalidChar {
        /// Character offset in the value.
        pos: usize,
        /// The character.
        ch: char,
    },
    /// A hex-encoded value with an odd number of digits.
    #[error("hex-encoded value has an odd number of digits")]
    OddHexLength,
    /// Not enough characters for the 9-byte EncodedDataHeader.
    #[error("encoded block too short for its 9-byte header ({chars} characters)")]
    TooShort {
        /// Characters after the type prefix.
        chars: usize,
    },
    /// Length declares more payload than the text carries.
    #[error("truncated: key {key} declares {declared} bytes, {available} present")]
    Truncated {
        /// The Key field.
        key: u32,
        /// The Length field.
        declared: u32,
        /// Payload bytes present.
        available: usize,
    },
    /// The text carries more bytes than Length declares.
    #[error("{extra} bytes after the declared {declared}-byte payload")]
    TrailingData {
        /// The Length field.
        declared: u32,
        /// Surplus bytes.
        extra: usize,
    },
    /// A UTF-16 payload with an odd byte count.
    #[error("UTF-16 payload has an odd length ({len} bytes)")]
    OddUtf16Length {
        /// Payload length.
        len: usize,
    },
    /// A payload that is not valid UTF-16.
    #[error("payload is not valid UTF-16")]
    InvalidUtf16,
    /// A binary property written as plain text.
    #[error("binary value is not encoded")]
    NotEncoded,
    /// An integer property that is not `0x` + 1..8 hex digits.
    #[error("not an 0x-prefixed 32-bit hex integer: {value:?}")]
    BadInteger {
        /// The value text (shortened).
        value: String,
    },
    /// A required property is missing or empty.
    #[error("required property {key:?} is missing")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// An integer too large for its property.
    #[error("{key} value {value} is out of range")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value read.
        value: u32,
    },
    /// A station file with no Format.
    #[error("a station file needs at least one Format")]
    NoFormats,
    /// A Format ID wider than 11 bits.
    #[error("Format ID {id} does not fit in 11 bits")]
    FormatIdTooLarge {
        /// The ID.
        id: u32,
    },
    /// Two Formats with one ID.
    #[error("Format ID {id} is used by two formats")]
    DuplicateFormatId {
        /// The ID.
        id: u16,
    },
    /// A Format with no header bytes.
    #[error("Format{n} has an empty header")]
    EmptyHeader {
        /// N in `Format<N>`.
        n: usize,
    },
    /// A string with an embedded NUL (readers stop at it).
    #[error("{key} contains a NUL character")]
    NulInString {
        /// The key.
        key: String,
    },
    /// All 2047 Format IDs are in use.
    #[error("all 2047 Format IDs are in use")]
    FormatIdsExhausted,
    /// The text has no `key=value` line.
    #[error("not an .nsc file: no key=value lines")]
    NotNsc,
    /// A property that could not be read.
    #[error("{key} (line {line}): {cause}")]
    BadEntry {
        /// The key.
        key: String,
        /// 1-based line number.
        line: usize,
        /// What went wrong.
        cause: Box<NscError>,
    },
}

#[cfg(test)]
mod tests;
