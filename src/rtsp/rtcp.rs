//! Inbound RTCP (RFC 3550 §6): what a client's compound packet tells the server. Clients
//! answer our sender reports with receiver reports (§6.4.2: RR, or SR when they also send),
//! usually followed by SDES (§6.5) and, when they leave, BYE (§6.6). The session uses them
//! for liveness of UDP delivery and for the loss figures of its end-of-session line.
//!
//! The bytes come from the network and are trusted for nothing: every length is checked
//! against what is there (§6.4.1 header: V=2, count, PT, length in 32-bit words minus one),
//! report blocks must fit their packet, and anything malformed is a typed [`RtcpError`],
//! never a panic. Packet types other than SR/RR/BYE (SDES, APP, XR, …) are stepped over by
//! their length; their contents are not needed.

/// SR (RFC 3550 §6.4.1).
const PT_SR: u8 = 200;
/// RR (§6.4.2).
const PT_RR: u8 = 201;
/// BYE (§6.6).
const PT_BYE: u8 = 203;
/// Common header size.
const HEADER: usize = 4;
/// Sender info after the SR's SSRC (NTP, RTP timestamp, packet and octet counts).
const SENDER_INFO: usize = 20;
/// One report block (§6.4.1).
const REPORT_BLOCK: usize = 24;

/// Why a datagram is not a usable RTCP compound packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("empty datagram")]
    Empty,
    #[error("RTCP packet at byte {offset} is truncated")]
    Truncated { offset: usize },
    #[error("RTCP version {version} at byte {offset} (expected 2)")]
    Version { version: u8, offset: usize },
    #[error("RTCP packet type {pt} at byte {offset} has {count} report blocks that do not fit")]
    Blocks { pt: u8, count: u8, offset: usize },
}

/// One report block: how a receiver hears one of our RTP sources (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on (our SSRC).
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
}

/// What a compound packet carried that the server uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compound {
    /// SR or RR packets seen (a receiver report without blocks still proves the peer is there).
    pub reports: usize,
    /// Every report block of every SR/RR.
    pub blocks: Vec<ReportBlock>,
    /// A BYE was present: the sender of the compound leaves.
    pub bye: bool,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn block(b: &[u8]) -> Option<ReportBlock> {
    let lost = be32(b, 4)?;
    // 24-bit two's complement.
    let cumulative_lost = ((lost << 8) as i32) >> 8;
    Some(ReportBlock {
        ssrc: be32(b, 0)?,
        fraction_lost: (lost >> 24) as u8,
        cumulative_lost,
        highest_seq: be32(b, 8)?,
        jitter: be32(b, 12)?,
    })
}

/// Parses one datagram (or interleaved frame) as a compound RTCP packet.
pub fn parse(bytes: &[u8]) -> Result<Compound, RtcpError> {
    if bytes.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut out = Compound::default();
    let mut offset = 0;
    while offset < bytes.len() {
        let Some(&[first, pt, hi, lo]) = bytes.get(offset..offset + HEADER) else {
            return Err(RtcpError::Truncated { offset });
        };
        let version = first >> 6;
        if version != 2 {
            return Err(RtcpError::Version { version, offset });
        }
        let count = first & 0x1F;
        let len = (usize::from(u16::from_be_bytes([hi, lo])) + 1) * 4;
        let Some(packet) = bytes.get(offset..offset + len) else {
            return Err(RtcpError::Truncated { offset });
        };
        let blocks_at = match pt {
            PT_SR => Some(HEADER + 4 + SENDER_INFO),
            PT_RR => Some(HEADER + 4),
            _ => None,
        };
        if let Some(at) = blocks_at {
            let need = at + usize::from(count) * REPORT_BLOCK;
            let Some(blocks) = packet.get(at..need) else {
                return Err(RtcpError::Blocks { pt, count, offset });
            };
            out.reports += 1;
            out.blocks
                .extend(blocks.chunks_exact(REPORT_BLOCK).filter_map(block));
        } else if pt == PT_BYE {
            out.bye = true;
        }
        offset += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// FFmpeg's receiver report: RR with one block, then SDES CNAME.
    fn ffmpeg_rr() -> Vec<u8> {
        let mut b = vec![0x81, PT_RR, 0, 7];
        b.extend_from_slice(&0x1111_2222u32.to_be_bytes()); // receiver SSRC
        b.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes()); // our SSRC
        b.extend_from_slice(&[64, 0xFF, 0xFF, 0xFE]); // 25 % lost, cumulative -2
        b.extend_from_slice(&70_000u32.to_be_bytes());
        b.extend_from_slice(&12u32.to_be_bytes()); // jitter
        b.extend_from_slice(&[0; 8]); // LSR, DLSR
        b.extend_from_slice(&[0x81, 202, 0, 3]);
        b.extend_from_slice(&0x1111_2222u32.to_be_bytes());
        b.extend_from_slice(&[1, 4, b'h', b'o', b's', b't', 0, 0]);
        b
    }

    #[test]
    fn a_receiver_report_with_sdes_gives_its_block() {
        let c = parse(&ffmpeg_rr()).unwrap();
        assert_eq!(c.reports, 1);
        assert!(!c.bye);
        assert_eq!(
            c.blocks,
            [ReportBlock {
                ssrc: 0xAABB_CCDD,
                fraction_lost: 64,
                cumulative_lost: -2,
                highest_seq: 70_000,
                jitter: 12,
            }]
        );
    }

    #[test]
    fn an_empty_rr_a_sender_report_and_a_bye_are_understood() {
        // FFmpeg's NAT punch: RR without blocks.
        let punch = [0x80, PT_RR, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            parse(&punch).unwrap(),
            Compound {
                reports: 1,
                blocks: vec![],
                bye: false
            }
        );
        // SR with one block, then BYE with one SSRC and a reason.
        let mut b = vec![0x81, PT_SR, 0, 12];
        b.extend_from_slice(&[0; 4 + SENDER_INFO]);
        b.extend_from_slice(&7u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 5]);
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[0x81, PT_BYE, 0, 2, 0, 0, 0, 1, 3, b'b', b'y', b'e']);
        let c = parse(&b).unwrap();
        assert_eq!(c.reports, 1);
        assert!(c.bye);
        assert_eq!(c.blocks.len(), 1);
        assert_eq!((c.blocks[0].ssrc, c.blocks[0].cumulative_lost), (7, 5));
    }

    #[test]
    fn truncated_and_garbage_input_is_refused() {
        assert_eq!(parse(&[]), Err(RtcpError::Empty));
        let rr = ffmpeg_rr();
        // Cut inside the first packet, inside the second, inside a header.
        assert_eq!(parse(&rr[..20]), Err(RtcpError::Truncated { offset: 0 }));
        assert_eq!(parse(&rr[..34]), Err(RtcpError::Truncated { offset: 32 }));
        assert_eq!(parse(&rr[..2]), Err(RtcpError::Truncated { offset: 0 }));
        // A TLS hello is not version 2.
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00"),
            Err(RtcpError::Version { version: 0, .. })
        ));
        // More report blocks than the length allows.
        let lying = [0x9F, PT_RR, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            parse(&lying),
            Err(RtcpError::Blocks {
                pt: PT_RR,
                count: 31,
                offset: 0
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn any_cut_of_a_valid_report_is_an_error_or_a_prefix(cut in 0usize..64) {
            let rr = ffmpeg_rr();
            let cut = cut.min(rr.len());
            match parse(&rr[..cut]) {
                Ok(c) => prop_assert!(cut == 32 || cut == rr.len(), "cut {cut}: {c:?}"),
                Err(_) => prop_assert!(cut != 32 && cut != rr.len()),
            }
        }
    }
}
