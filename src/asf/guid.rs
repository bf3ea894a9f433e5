//! ASF GUIDs as they are stored on disk (ASF spec §10; shared/docs/protocols/asf.md §1.1).
//!
//! A GUID is stored as a Windows `GUID` struct: Data1 is a little-endian u32, Data2 and Data3 are
//! little-endian u16, Data4 is 8 raw bytes. We keep the 16 on-disk bytes and compare those; the
//! text form is only for humans (`Display`).

use std::fmt;

/// A GUID in its 16 on-disk bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Builds the on-disk bytes from the usual text form's parts.
    pub const fn from_parts(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The human name of a GUID the crate knows, for diagnostics.
    pub fn name(&self) -> Option<&'static str> {
        KNOWN.iter().find(|(g, _)| g == self).map(|(_, n)| *n)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({self})"),
            None => write!(f, "Guid({self})"),
        }
    }
}

const A6D9: [u8; 8] = [0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C];
const C0C: [u8; 8] = [0x8E, 0xE4, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65];
const C0C_E6: [u8; 8] = [0x8E, 0xE6, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65];
const C0C_E3: [u8; 8] = [0x8E, 0xE3, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65];
const A0C9_48F6: [u8; 8] = [0xA3, 0xA4, 0x00, 0xA0, 0xC9, 0x03, 0x48, 0xF6];
const MEDIA: [u8; 8] = [0xA8, 0xFD, 0x00, 0x80, 0x5F, 0x5C, 0x44, 0x2B];
const IDX: [u8; 8] = [0x90, 0x34, 0x00, 0xA0, 0xC9, 0x03, 0x49, 0xBE];

pub const HEADER: Guid = Guid::from_parts(0x75B22630, 0x668E, 0x11CF, A6D9);
pub const DATA: Guid = Guid::from_parts(0x75B22636, 0x668E, 0x11CF, A6D9);
pub const SIMPLE_INDEX: Guid = Guid::from_parts(
    0x33000890,
    0xE5B1,
    0x11CF,
    [0x89, 0xF4, 0x00, 0xA0, 0xC9, 0x03, 0x49, 0xCB],
);
pub const FILE_PROPERTIES: Guid = Guid::from_parts(0x8CABDCA1, 0xA947, 0x11CF, C0C);
pub const STREAM_PROPERTIES: Guid = Guid::from_parts(0xB7DC0791, 0xA9B7, 0x11CF, C0C_E6);
pub const HEADER_EXTENSION: Guid = Guid::from_parts(0x5FBF03B5, 0xA92E, 0x11CF, C0C_E3);
pub const HEADER_EXTENSION_RESERVED1: Guid = Guid::from_parts(0xABD3D211, 0xA9BA, 0x11CF, C0C_E6);
pub const CODEC_LIST: Guid = Guid::from_parts(0x86D15240, 0x311D, 0x11D0, A0C9_48F6);
pub const CONTENT_DESCRIPTION: Guid = Guid::from_parts(0x75B22633, 0x668E, 0x11CF, A6D9);
pub const EXTENDED_CONTENT_DESCRIPTION: Guid = Guid::from_parts(
    0xD2D0A440,
    0xE307,
    0x11D2,
    [0x97, 0xF0, 0x00, 0xA0, 0xC9, 0x5E, 0xA8, 0x50],
);
pub const STREAM_BITRATE_PROPERTIES: Guid = Guid::from_parts(
    0x7BF875CE,
    0x468D,
    0x11D1,
    [0x8D, 0x82, 0x00, 0x60, 0x97, 0xC9, 0xA2, 0xB2],
);
pub const BITRATE_MUTUAL_EXCLUSION: Guid = Guid::from_parts(0xD6E229DC, 0x35DA, 0x11D1, IDX);
/// Exclusion types of a Bitrate Mutual Exclusion (ASF spec §10.7; asf.md §1.8).
pub const MUTEX_LANGUAGE: Guid = Guid::from_parts(0xD6E22A00, 0x35DA, 0x11D1, IDX);
pub const MUTEX_BITRATE: Guid = Guid::from_parts(0xD6E22A01, 0x35DA, 0x11D1, IDX);
pub const MUTEX_UNKNOWN: Guid = Guid::from_parts(0xD6E22A02, 0x35DA, 0x11D1, IDX);
pub const EXTENDED_STREAM_PROPERTIES: Guid = Guid::from_parts(
    0x14E6A5CB,
    0xC672,
    0x4332,
    [0x83, 0x99, 0xA9, 0x69, 0x52, 0x06, 0x5B, 0x5A],
);
pub const ADVANCED_MUTUAL_EXCLUSION: Guid = Guid::from_parts(
    0xA08649CF,
    0x4775,
    0x4670,
    [0x8A, 0x16, 0x6E, 0x35, 0x35, 0x75, 0x66, 0xCD],
);
pub const PADDING: Guid = Guid::from_parts(
    0x1806D474,
    0xCADF,
    0x4509,
    [0xA4, 0xBA, 0x9A, 0xAB, 0xCB, 0x96, 0xAA, 0xE8],
);

pub const AUDIO_MEDIA: Guid = Guid::from_parts(0xF8699E40, 0x5B4D, 0x11CF, MEDIA);
pub const VIDEO_MEDIA: Guid = Guid::from_parts(0xBC19EFC0, 0x5B4D, 0x11CF, MEDIA);
pub const COMMAND_MEDIA: Guid = Guid::from_parts(
    0x59DACFC0,
    0x59E6,
    0x11D0,
    [0xA3, 0xAC, 0x00, 0xA0, 0xC9, 0x03, 0x48, 0xF6],
);
pub const JFIF_MEDIA: Guid = Guid::from_parts(0xB61BE100, 0x5B4E, 0x11CF, MEDIA);
pub const EXTENDED_STREAM_TYPE_HEADER: Guid = Guid::from_parts(
    0x3AFB65E2,
    0x47EF,
    0x40F2,
    [0xAC, 0x2C, 0x70, 0xA9, 0x0D, 0x71, 0xD3, 0x43],
);

const KNOWN: &[(Guid, &str)] = &[
    (HEADER, "Header"),
    (DATA, "Data"),
    (SIMPLE_INDEX, "SimpleIndex"),
    (FILE_PROPERTIES, "FileProperties"),
    (STREAM_PROPERTIES, "StreamProperties"),
    (HEADER_EXTENSION, "HeaderExtension"),
    (CODEC_LIST, "CodecList"),
    (CONTENT_DESCRIPTION, "ContentDescription"),
    (EXTENDED_CONTENT_DESCRIPTION, "ExtendedContentDescription"),
    (STREAM_BITRATE_PROPERTIES, "StreamBitrateProperties"),
    (BITRATE_MUTUAL_EXCLUSION, "BitrateMutualExclusion"),
    (MUTEX_LANGUAGE, "MutexLanguage"),
    (MUTEX_BITRATE, "MutexBitrate"),
    (MUTEX_UNKNOWN, "MutexUnknown"),
    (EXTENDED_STREAM_PROPERTIES, "ExtendedStreamProperties"),
    (ADVANCED_MUTUAL_EXCLUSION, "AdvancedMutualExclusion"),
    (PADDING, "Padding"),
    (AUDIO_MEDIA, "AudioMedia"),
    (VIDEO_MEDIA, "VideoMedia"),
    (COMMAND_MEDIA, "CommandMedia"),
    (JFIF_MEDIA, "JfifMedia"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_disk_bytes_match_the_spec_table() {
        assert_eq!(
            HEADER.0,
            [
                0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62,
                0xCE, 0x6C
            ]
        );
        assert_eq!(
            FILE_PROPERTIES.0,
            [
                0xA1, 0xDC, 0xAB, 0x8C, 0x47, 0xA9, 0xCF, 0x11, 0x8E, 0xE4, 0x00, 0xC0, 0x0C, 0x20,
                0x53, 0x65
            ]
        );
        assert_eq!(
            EXTENDED_STREAM_PROPERTIES.0,
            [
                0xCB, 0xA5, 0xE6, 0x14, 0x72, 0xC6, 0x32, 0x43, 0x83, 0x99, 0xA9, 0x69, 0x52, 0x06,
                0x5B, 0x5A
            ]
        );
        assert_eq!(
            VIDEO_MEDIA.to_string(),
            "BC19EFC0-5B4D-11CF-A8FD-00805F5C442B"
        );
    }
}
