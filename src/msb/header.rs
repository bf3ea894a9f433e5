//! The two datagram types of [MS-MSB]: the 4-byte beacon (§2.2.3) and the MSB packet,
//! an 8-byte little-endian header followed by exactly one ASF packet (§2.2.4).
//!
//! A datagram of 4 bytes is a beacon. Some receivers (Amlogic) instead test the first
//! u32 for "MSB ", which is why the sender never uses that dwPacketID. Every field of a
//! received header is checked: wPacketSize must equal the datagram length and the unused
//! wStreamID bits 11-14 must be zero (§2.2.4; §5.1 asks clients to length-check all).

use super::ecc::{FLAG_OPAQUE, FLAG_PRESENT};
use super::MsbError;

/// The beacon datagram, "MSB " ([MS-MSB] §2.2.3).
pub const BEACON: [u8; 4] = *b"MSB ";
/// The beacon read as a little-endian u32.
pub const BEACON_U32: u32 = 0x2042_534D;
/// wStreamID bits 0-10: the Format ID of the .nsc header needed to parse the packet.
pub const FORMAT_ID_MASK: u16 = 0x07FF;
/// wStreamID bit 15: toggled whenever the server-side playlist entry changes.
pub const TOGGLE_BIT: u16 = 0x8000;
/// wStreamID bits 11-14: unused, MUST be zero.
const RESERVED_MASK: u16 = 0x7800;
/// Size of the MSB header.
pub(crate) const HEADER_LEN: usize = 8;

/// The 8-byte MSB packet header ([MS-MSB] §2.2.4), all fields little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsbHeader {
    /// dwPacketID: sequence number; a parity packet repeats the previous packet's id.
    pub packet_id: u32,
    /// wStreamID: 11-bit format id | toggle bit 15.
    pub stream_id: u16,
    /// wPacketSize: the whole MSB packet, header included.
    pub packet_size: u16,
}

impl MsbHeader {
    /// Encodes the header as it goes on the wire.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.packet_id.to_le_bytes());
        b[4..6].copy_from_slice(&self.stream_id.to_le_bytes());
        b[6..].copy_from_slice(&self.packet_size.to_le_bytes());
        b
    }

    /// Parses and validates the header of a whole datagram.
    pub fn parse(datagram: &[u8]) -> Result<Self, MsbError> {
        let Some((head, _)) = datagram.split_first_chunk::<HEADER_LEN>() else {
            return Err(MsbError::TooShort {
                len: datagram.len(),
            });
        };
        let [i0, i1, i2, i3, s0, s1, p0, p1] = *head;
        let header = MsbHeader {
            packet_id: u32::from_le_bytes([i0, i1, i2, i3]),
            stream_id: u16::from_le_bytes([s0, s1]),
            packet_size: u16::from_le_bytes([p0, p1]),
        };
        if usize::from(header.packet_size) != datagram.len() {
            return Err(MsbError::SizeMismatch {
                packet_id: header.packet_id,
                declared: header.packet_size,
                actual: datagram.len(),
            });
        }
        if header.stream_id & RESERVED_MASK != 0 {
            return Err(MsbError::ReservedStreamBits {
                packet_id: header.packet_id,
                stream_id: header.stream_id,
            });
        }
        Ok(header)
    }

    /// The Format ID (wStreamID bits 0-10).
    pub fn format_id(&self) -> u16 {
        self.stream_id & FORMAT_ID_MASK
    }

    /// The playlist-entry toggle (wStreamID bit 15).
    pub fn toggle(&self) -> bool {
        self.stream_id & TOGGLE_BIT != 0
    }
}

/// One received datagram, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// The "MSB " keep-alive.
    Beacon,
    /// An MSB packet and the ASF packet it carries.
    Packet {
        header: MsbHeader,
        asf: &'a [u8],
        /// Error Correction Present and Opaque Data Present both set ([MS-MSB] §2.2.2).
        is_parity: bool,
    },
}

/// Tells a beacon from an MSB packet (by length) and validates the framing.
pub fn classify(datagram: &[u8]) -> Result<Datagram<'_>, MsbError> {
    if let Ok(found) = <[u8; 4]>::try_from(datagram) {
        return if found == BEACON {
            Ok(Datagram::Beacon)
        } else {
            Err(MsbError::BadBeacon { found })
        };
    }
    let header = MsbHeader::parse(datagram)?;
    let asf = datagram.get(HEADER_LEN..).unwrap_or_default();
    let Some(&flags) = asf.first() else {
        return Err(MsbError::EmptyAsf {
            packet_id: header.packet_id,
        });
    };
    let opaque = FLAG_PRESENT | FLAG_OPAQUE;
    Ok(Datagram::Packet {
        header,
        asf,
        is_parity: flags & opaque == opaque,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_vectors() {
        let h = MsbHeader {
            packet_id: 0x0403_0201,
            stream_id: 0x839E,
            packet_size: 0x0C88,
        };
        assert_eq!(h.encode(), [0x01, 0x02, 0x03, 0x04, 0x9E, 0x83, 0x88, 0x0C]);
        assert_eq!(h.format_id(), 0x39E);
        assert!(h.toggle());
        let mut dgram = h.encode().to_vec();
        dgram.resize(0x0C88, 0);
        assert_eq!(MsbHeader::parse(&dgram), Ok(h));
    }

    #[test]
    fn header_checks_size_and_reserved_bits() {
        let mut d = MsbHeader {
            packet_id: 9,
            stream_id: 1,
            packet_size: 11,
        }
        .encode()
        .to_vec();
        d.extend([0x82, 0, 0]);
        assert!(MsbHeader::parse(&d).is_ok());
        assert_eq!(
            MsbHeader::parse(&d[..10]),
            Err(MsbError::SizeMismatch {
                packet_id: 9,
                declared: 11,
                actual: 10
            })
        );
        assert_eq!(
            MsbHeader::parse(&d[..7]),
            Err(MsbError::TooShort { len: 7 })
        );
        d[5] = 0x08; // bit 11
        assert_eq!(
            MsbHeader::parse(&d),
            Err(MsbError::ReservedStreamBits {
                packet_id: 9,
                stream_id: 0x0801
            })
        );
    }

    #[test]
    fn classify_datagrams() {
        assert_eq!(classify(b"MSB "), Ok(Datagram::Beacon));
        assert_eq!(BEACON_U32.to_le_bytes(), BEACON);
        assert!(matches!(classify(b"MSBX"), Err(MsbError::BadBeacon { .. })));
        assert!(matches!(
            classify(&[0; 5]),
            Err(MsbError::TooShort { len: 5 })
        ));
        let h = MsbHeader {
            packet_id: 1,
            stream_id: 2,
            packet_size: 8,
        };
        assert_eq!(
            classify(&h.encode()),
            Err(MsbError::EmptyAsf { packet_id: 1 })
        );
        let mut d = MsbHeader {
            packet_size: 12,
            ..h
        }
        .encode()
        .to_vec();
        d.extend([0x92, 0xB2, 0, 0xAA]);
        match classify(&d) {
            Ok(Datagram::Packet { asf, is_parity, .. }) => {
                assert!(is_parity);
                assert_eq!(asf, [0x92, 0xB2, 0, 0xAA]);
            }
            other => panic!("unexpected {other:?}"),
        }
        d[8] = 0x82;
        assert!(matches!(
            classify(&d),
            Ok(Datagram::Packet {
                is_parity: false,
                ..
            })
        ));
    }

    #[test]
    fn classify_never_panics_on_short_garbage() {
        for len in 0..64usize {
            let d: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let _ = classify(&d);
        }
    }
}
