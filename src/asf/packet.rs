//! ASF data packets (§3.1–§3.4): error-correction bytes, payload parsing information with every
//! length-type width, single, multiple and compressed payloads, key-frame bits and replicated
//! data.
//!
//! A [`Packet`] borrows the packet bytes and records where each field and payload sits, so the
//! rewriters in [`super::rewrite`] can copy payloads byte-for-byte. The buffer may be a full
//! fixed-size packet (from a file) or a packet whose padding was stripped (from the wire): the
//! effective length is the Packet Length field when present, else the buffer length, and the
//! padding is whatever the Padding Length field says.
//!
//! Real-world notes: ffmpeg always writes Error Correction Flags `0x82` + 2 zero bytes and
//! property flags `0x5D`; it never sets the key bit on audio (asf.md §3.4, §3.7).

use std::ops::Range;

use super::bytes::{var_width, Cursor};
use super::AsfError;

/// Error Correction Flags bits (§3.1).
pub const ECC_PRESENT: u8 = 0x80;
pub const ECC_OPAQUE: u8 = 0x10;
pub const ECC_LENGTH_TYPE_MASK: u8 = 0x60;
pub const ECC_DATA_LENGTH_MASK: u8 = 0x0F;

/// Length Type Flags bits.
pub const LTF_MULTIPLE_PAYLOADS: u8 = 0x01;

/// One payload of a packet (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Stream number, 1..=127.
    pub stream: u8,
    pub key_frame: bool,
    pub object_number: u32,
    /// Offset Into Media Object; for a compressed payload, the presentation time (ms).
    pub offset: u32,
    /// Replicated data length 1: several whole small objects, `{len u8, data}` each.
    pub compressed: bool,
    /// The payload header from the stream byte to the end of the replicated data (no length).
    pub header: Range<usize>,
    pub replicated: Range<usize>,
    pub data: Range<usize>,
}

impl Payload {
    /// Media Object Size from the replicated data (None when compressed or not present).
    pub fn object_size(&self, packet: &[u8]) -> Option<u32> {
        let r = packet.get(self.replicated.clone())?;
        (r.len() >= 8).then(|| u32::from_le_bytes([r[0], r[1], r[2], r[3]]))
    }

    /// Presentation time in ms (preroll included), from replicated data or compressed payload.
    pub fn presentation_time(&self, packet: &[u8]) -> Option<u32> {
        if self.compressed {
            return Some(self.offset);
        }
        let r = packet.get(self.replicated.clone())?;
        (r.len() >= 8).then(|| u32::from_le_bytes([r[4], r[5], r[6], r[7]]))
    }

    /// True when this payload begins a key-frame media object (a clean point for its stream).
    pub fn starts_key_frame(&self) -> bool {
        self.key_frame && (self.compressed || self.offset == 0)
    }
}

/// A parsed data packet borrowing its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub bytes: &'a [u8],
    /// The Error Correction Flags and data bytes (empty when absent).
    pub ecc: Range<usize>,
    pub length_type_flags: u8,
    pub property_flags: u8,
    /// The explicit Packet Length field, when present.
    pub packet_length_field: Option<u32>,
    pub sequence: u32,
    pub padding: u32,
    /// Send time in milliseconds.
    pub send_time: u32,
    /// Duration in milliseconds.
    pub duration: u16,
    /// The payload area: from just after Duration (Payload Flags included) to the padding.
    pub body: Range<usize>,
    /// The effective packet length (before any extra padding beyond it in the buffer).
    pub length: usize,
    pub payloads: Vec<Payload>,
}

impl<'a> Packet<'a> {
    /// Parses one packet. Every field is bounds-checked against the buffer.
    pub fn parse(bytes: &'a [u8]) -> Result<Packet<'a>, AsfError> {
        let mut c = Cursor::new(bytes);
        let first = c.u8("packet first byte")?;
        let ecc = if first & ECC_PRESENT != 0 {
            if first & ECC_LENGTH_TYPE_MASK != 0 {
                return Err(AsfError::invalid(
                    "Error Correction Flags",
                    0,
                    format!("length type must be 00 (flags 0x{first:02x})"),
                ));
            }
            c.skip(
                (first & ECC_DATA_LENGTH_MASK) as usize,
                "Error Correction Data",
            )?;
            0..c.pos()
        } else {
            // No error correction: the first byte is already the Length Type Flags.
            c = Cursor::new(bytes);
            0..0
        };
        let ltf_at = c.pos();
        let length_type_flags = c.u8("Length Type Flags")?;
        if length_type_flags & 0x80 != 0 {
            return Err(AsfError::invalid(
                "Length Type Flags",
                ltf_at,
                format!("error correction bit set in 0x{length_type_flags:02x}"),
            ));
        }
        let property_flags = c.u8("Property Flags")?;
        let pl_type = (length_type_flags >> 5) & 3;
        let packet_length_field = if pl_type != 0 {
            Some(c.var(pl_type, "Packet Length")?)
        } else {
            None
        };
        let sequence = c.var(length_type_flags >> 1, "Sequence")?;
        let padding = c.var(length_type_flags >> 3, "Padding Length")?;
        let send_time = c.u32("Send Time")?;
        let duration = c.u16("Duration")?;
        let head_end = c.pos();

        let length = match packet_length_field {
            Some(l) if l as usize > bytes.len() => {
                return Err(AsfError::invalid(
                    "Packet Length",
                    ltf_at + 2,
                    format!("{l} exceeds the {} bytes of the packet", bytes.len()),
                ))
            }
            Some(l) => l as usize,
            None => bytes.len(),
        };
        if length < head_end || padding as usize > length - head_end {
            return Err(AsfError::invalid(
                "Padding Length",
                ltf_at,
                format!(
                    "padding {padding} leaves no room in a packet of {length} bytes with a {head_end}-byte head"
                ),
            ));
        }
        let body = head_end..length - padding as usize;
        let payloads = parse_payloads(bytes, body.clone(), length_type_flags, property_flags)?;
        Ok(Packet {
            bytes,
            ecc,
            length_type_flags,
            property_flags,
            packet_length_field,
            sequence,
            padding,
            send_time,
            duration,
            body,
            length,
            payloads,
        })
    }

    pub fn has_multiple_payloads(&self) -> bool {
        self.length_type_flags & LTF_MULTIPLE_PAYLOADS != 0
    }

    /// The streams on which this packet starts a key-frame media object.
    pub fn key_frame_starts(&self) -> impl Iterator<Item = u8> + '_ {
        self.payloads
            .iter()
            .filter(|p| p.starts_key_frame())
            .map(|p| p.stream)
    }

    /// Does this packet start a key frame on `stream`?
    pub fn starts_key_frame_on(&self, stream: u8) -> bool {
        self.key_frame_starts().any(|s| s == stream)
    }
}

/// Reads the payload header fields common to single and multiple payloads; the returned
/// payload's `data` is empty, for the caller to fill in.
fn payload_head(c: &mut Cursor<'_>, property_flags: u8) -> Result<Payload, AsfError> {
    let sn_at = c.offset();
    let sn = c.u8("payload stream number")?;
    let object_number = c.var(property_flags >> 4, "Media Object Number")?;
    let offset = c.var(property_flags >> 2, "Offset Into Media Object")?;
    let rep_at = c.offset();
    let rep_len = c.var(property_flags, "Replicated Data Length")? as usize;
    if (2..8).contains(&rep_len) {
        return Err(AsfError::invalid(
            "Replicated Data Length",
            rep_at,
            format!("{rep_len} is invalid (must be 0, 1 or at least 8)"),
        ));
    }
    let rep_start = c.offset();
    c.skip(rep_len, "Replicated Data")?;
    Ok(Payload {
        stream: sn & 0x7F,
        key_frame: sn & 0x80 != 0,
        object_number,
        offset,
        compressed: rep_len == 1,
        header: sn_at..rep_start + rep_len,
        replicated: rep_start..rep_start + rep_len,
        data: 0..0,
    })
}

fn parse_payloads(
    bytes: &[u8],
    body: Range<usize>,
    ltf: u8,
    pf: u8,
) -> Result<Vec<Payload>, AsfError> {
    let area = &bytes[body.clone()];
    let mut c = Cursor::with_base(area, body.start);
    let mut out = Vec::new();
    if ltf & LTF_MULTIPLE_PAYLOADS == 0 {
        let mut p = payload_head(&mut c, pf)?;
        p.data = c.offset()..body.end;
        check_compressed(bytes, &p)?;
        out.push(p);
        return Ok(out);
    }
    let flags_at = c.offset();
    let payload_flags = c.u8("Payload Flags")?;
    let count = payload_flags & 0x3F;
    let len_type = payload_flags >> 6;
    if count == 0 || len_type == 0 {
        return Err(AsfError::invalid(
            "Payload Flags",
            flags_at,
            format!("0x{payload_flags:02x}: needs a payload count and a length type"),
        ));
    }
    for _ in 0..count {
        let mut p = payload_head(&mut c, pf)?;
        let len = c.var(len_type, "Payload Length")? as usize;
        let data_at = c.offset();
        c.skip(len, "Payload Data")?;
        p.data = data_at..data_at + len;
        check_compressed(bytes, &p)?;
        out.push(p);
    }
    Ok(out)
}

/// A compressed payload must be a whole chain of `{len u8, data}` sub-payloads.
fn check_compressed(bytes: &[u8], p: &Payload) -> Result<(), AsfError> {
    if !p.compressed {
        return Ok(());
    }
    let data = &bytes[p.data.clone()];
    let mut c = Cursor::with_base(data, p.data.start);
    while c.remaining() > 0 {
        let n = c.u8("compressed sub-payload length")?;
        c.skip(n as usize, "compressed sub-payload")?;
    }
    Ok(())
}

/// The width of the head (everything before the payload area) for given flags.
pub fn head_len(ecc_len: usize, ltf: u8) -> usize {
    ecc_len + 2 + var_width(ltf >> 5) + var_width(ltf >> 1) + var_width(ltf >> 3) + 6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packet 1 of the note's a.wmv: a single video key-frame fragment (asf.md §3.7), padded.
    fn single_payload_packet() -> Vec<u8> {
        let mut p = vec![0x82, 0, 0, 0x08, 0x5D]; // ECC, LTF: padding BYTE, PF 0x5D
        p.push(10); // padding length
        p.extend_from_slice(&46u32.to_le_bytes()); // send time
        p.extend_from_slice(&0u16.to_le_bytes()); // duration
        p.push(0x81); // stream 1 + key
        p.push(1); // object number
        p.extend_from_slice(&0u32.to_le_bytes()); // offset 0
        p.push(8); // replicated length
        p.extend_from_slice(&20u32.to_le_bytes()); // object size
        p.extend_from_slice(&3146u32.to_le_bytes()); // presentation time
        p.extend_from_slice(&[0xAB; 20]);
        p.extend_from_slice(&[0; 10]);
        p
    }

    #[test]
    fn parses_a_single_payload_packet() {
        let b = single_payload_packet();
        let p = Packet::parse(&b).unwrap();
        assert_eq!(p.ecc, 0..3);
        assert_eq!(p.send_time, 46);
        assert_eq!(p.padding, 10);
        assert_eq!(p.payloads.len(), 1);
        let pl = &p.payloads[0];
        assert_eq!((pl.stream, pl.key_frame, pl.offset), (1, true, 0));
        assert_eq!(pl.object_size(&b), Some(20));
        assert_eq!(pl.presentation_time(&b), Some(3146));
        assert_eq!(&b[pl.data.clone()], &[0xAB; 20]);
        assert_eq!(p.key_frame_starts().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn padding_past_the_packet_is_an_error() {
        let mut b = single_payload_packet();
        b[5] = 200;
        assert!(matches!(
            Packet::parse(&b),
            Err(AsfError::Invalid {
                what: "Padding Length",
                ..
            })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let b = single_payload_packet();
        for n in 0..b.len() - 30 {
            assert!(Packet::parse(&b[..n]).is_err(), "prefix {n}");
        }
    }
}
