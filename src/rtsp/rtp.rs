//! RTP (RFC 3550 §5.1) with the x-asf-pf payload format ([MS-RTSP] 2.2.1.3), RTCP sender
//! reports (RFC 3550 §6.4.1, with the SDES CNAME §6.5 a compound packet needs) and the
//! interleaved frame prefix (RFC 2326 §10.12). The receiving side of the same layouts
//! ([`asf_bytes`], [`parse_interleaved`]) is here too, for the load tool and the tests.
//!
//! Packetizer rules, from what the clients' depacketizers do (rtsp-wmsp.md §2):
//! - One ASF data packet (padding stripped) per RTP packet when it fits the MTU: flags
//!   `S|L`, Length = 4 + packet size. FFmpeg counts the length from the first byte of the
//!   payload-format header; VLC and GStreamer cap it at what remains, so all three take the
//!   whole packet.
//! - Larger packets are cut into fragments with L = 0 and Offset = byte offset of the fragment,
//!   one fragment per RTP packet, consecutive sequence numbers, the same timestamp.
//! - The marker bit is set on the RTP packet that ends an ASF packet (VLC flushes its
//!   reassembly only on M; FFmpeg and GStreamer need it on the last fragment).
//! - S (key frame) is set when the ASF packet starts a key-frame object, in every fragment.
//! - The optional R/D/I fields (relative timestamp, duration, location id) are not sent: every
//!   client skips them and the ASF payloads carry their own times.
//! - The RTP clock is 1 kHz ([MS-RTSP]: "MUST be 1,000 Hz"); the timestamp is the packet's ASF
//!   send time offset by a per-session base (see `session.rs`).

/// Dynamic payload type used for every media section (FFmpeg's WMS UDP path parses all streams
/// with the first stream's RTP context, which drops other payload types).
pub const PAYLOAD_TYPE: u8 = 96;
/// RTP fixed header size (no CSRC, no extension).
pub const RTP_HEADER: usize = 12;
/// x-asf-pf payload-format header size without R/D/I.
pub const PF_HEADER: usize = 4;

const FLAG_KEY: u8 = 0x80;
const FLAG_LENGTH: u8 = 0x40;
/// Largest Length/Offset value (24 bits).
const MAX_LEN_OFF: usize = 0x00FF_FFFF;

/// The 12-byte RTP header.
pub fn rtp_header(marker: bool, seq: u16, timestamp: u32, ssrc: u32) -> [u8; RTP_HEADER] {
    let mut h = [0u8; RTP_HEADER];
    h[0] = 0x80; // V=2, no padding, no extension, no CSRC
    h[1] = (u8::from(marker) << 7) | PAYLOAD_TYPE;
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

/// One RTP payload of an ASF packet: the payload-format header and the bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub pf_header: [u8; PF_HEADER],
    /// Byte range of the ASF packet in this RTP packet.
    pub start: usize,
    pub end: usize,
    /// Last piece of the ASF packet: set the RTP marker.
    pub last: bool,
}

/// Why a packet cannot be carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketizeError {
    #[error("ASF packet of {0} bytes exceeds the 24-bit x-asf-pf length/offset")]
    TooLarge(usize),
    #[error("MTU {0} leaves no room for payload")]
    Mtu(usize),
}

/// Splits an ASF packet of `len` bytes into x-asf-pf payloads for RTP packets of at most `mtu`
/// bytes (RTP header included).
pub fn fragments(len: usize, key: bool, mtu: usize) -> Result<Vec<Fragment>, PacketizeError> {
    let room = mtu
        .checked_sub(RTP_HEADER + PF_HEADER)
        .filter(|r| *r > 0)
        .ok_or(PacketizeError::Mtu(mtu))?;
    if len + PF_HEADER > MAX_LEN_OFF {
        return Err(PacketizeError::TooLarge(len));
    }
    let s = if key { FLAG_KEY } else { 0 };
    let three = |v: usize| -> [u8; 3] {
        let b = (v as u32).to_be_bytes();
        [b[1], b[2], b[3]]
    };
    if len <= room {
        let [a, b, c] = three(len + PF_HEADER);
        return Ok(vec![Fragment {
            pf_header: [s | FLAG_LENGTH, a, b, c],
            start: 0,
            end: len,
            last: true,
        }]);
    }
    let mut out = Vec::with_capacity(len.div_ceil(room));
    let mut off = 0;
    while off < len {
        let end = (off + room).min(len);
        let [a, b, c] = three(off);
        out.push(Fragment {
            pf_header: [s, a, b, c],
            start: off,
            end,
            last: end == len,
        });
        off = end;
    }
    Ok(out)
}

/// The interleaved frame prefix for `len` bytes on `channel`.
pub fn interleaved_prefix(channel: u8, len: usize) -> Option<[u8; 4]> {
    let l = u16::try_from(len).ok()?;
    let [hi, lo] = l.to_be_bytes();
    Some([b'$', channel, hi, lo])
}

/// The channel and data length of the interleaved frame starting `b` (`$`, channel, 16-bit
/// length), `None` when `b` does not start with a whole 4-byte prefix.
pub fn parse_interleaved(b: &[u8]) -> Option<(u8, usize)> {
    match b.get(..4)? {
        &[b'$', channel, hi, lo] => Some((channel, usize::from(u16::from_be_bytes([hi, lo])))),
        _ => None,
    }
}

/// Why a received RTP packet cannot be read as x-asf-pf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    #[error("empty RTP packet")]
    Empty,
    #[error("RTP version {0}")]
    Version(u8),
    #[error("RTP extension header cut short")]
    Extension,
    #[error("RTP packet of {0} bytes has no payload")]
    NoPayload(usize),
    #[error("payload-format header cut short")]
    PfHeader,
    #[error("x-asf-pf length {0} shorter than its header")]
    PfLength(usize),
}

/// ASF packet bytes in one received RTP packet carrying x-asf-pf (rtsp-wmsp.md §2.2), the
/// receiving side of [`fragments`]: after the RTP header (CSRCs, extension and padding
/// skipped), each payload-format header is 4 bytes plus 4 per R/D/I flag; with L set its
/// 24-bit field is the unit length counted from the header (FFmpeg's reading, capped at what
/// is left), without L the rest of the packet is one fragment.
pub fn asf_bytes(rtp: &[u8]) -> Result<usize, DepacketizeError> {
    let first = *rtp.first().ok_or(DepacketizeError::Empty)?;
    if first >> 6 != 2 {
        return Err(DepacketizeError::Version(first >> 6));
    }
    let mut start = RTP_HEADER + 4 * usize::from(first & 0x0F);
    if first & 0x10 != 0 {
        let words = match rtp.get(start + 2..start + 4) {
            Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(DepacketizeError::Extension),
        };
        start += 4 + 4 * words;
    }
    let mut end = rtp.len();
    if first & 0x20 != 0 {
        end = end.saturating_sub(usize::from(rtp.last().copied().unwrap_or(0)));
    }
    let payload = rtp
        .get(start..end)
        .ok_or(DepacketizeError::NoPayload(rtp.len()))?;
    let mut pos = 0;
    let mut total = 0;
    while let Some(&[flags, a, b, c]) = payload.get(pos..pos + PF_HEADER) {
        let field = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
        // R, D and I each add a 32-bit field.
        let head = PF_HEADER + 4 * ((flags & 0x38).count_ones() as usize);
        let left = payload
            .len()
            .checked_sub(pos + head)
            .ok_or(DepacketizeError::PfHeader)?;
        if flags & FLAG_LENGTH != 0 {
            if field < head {
                return Err(DepacketizeError::PfLength(field));
            }
            total += (field - head).min(left);
            pos += field;
        } else {
            total += left;
            break;
        }
    }
    Ok(total)
}

/// Counters an RTCP sender report states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// 64-bit NTP-format time (seconds << 32 | fraction).
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// A compound RTCP packet: SR (no report blocks) + SDES with CNAME.
pub fn sender_report(info: &SenderInfo, cname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(28 + 12 + cname.len());
    // SR: V=2, RC=0, PT=200, length = 6 words after the first.
    out.extend_from_slice(&[0x80, 200, 0, 6]);
    out.extend_from_slice(&info.ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&info.packets.to_be_bytes());
    out.extend_from_slice(&info.octets.to_be_bytes());
    // SDES: one chunk, CNAME item, END, padded to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let mut chunk = Vec::with_capacity(8 + name.len());
    chunk.extend_from_slice(&info.ssrc.to_be_bytes());
    chunk.push(1);
    chunk.push(name.len() as u8);
    chunk.extend_from_slice(name);
    chunk.push(0);
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    let words = (chunk.len() / 4) as u16;
    out.extend_from_slice(&[0x81, 202]);
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&chunk);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn asf_bytes_reads_fragments_units_and_optional_fields() {
        // Fragments (L = 0) of a 5000-byte packet at MTU 1450: the fragment bytes add up.
        let frags = fragments(5000, false, 1450).unwrap();
        let mut sum = 0;
        for f in &frags {
            let mut p = rtp_header(f.last, 1, 0, 7).to_vec();
            p.extend_from_slice(&f.pf_header);
            p.resize(p.len() + (f.end - f.start), 0);
            sum += asf_bytes(&p).unwrap();
        }
        assert_eq!(sum, 5000);
        // One whole packet (L = 1).
        let f = fragments(1200, true, 65_000).unwrap();
        let mut p = rtp_header(true, 1, 0, 7).to_vec();
        p.extend_from_slice(&f[0].pf_header);
        p.resize(p.len() + 1200, 0xAB);
        assert_eq!(asf_bytes(&p), Ok(1200));
        // Two L units with R and I fields (4 + 8 header bytes each), CSRC, extension, padding.
        let mut p = vec![0x80 | 0x20 | 0x10 | 1, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        p.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0, 0, 0, 0]); // extension, 1 word
        for n in [100usize, 50] {
            let len = n + 12;
            p.extend_from_slice(&[0x40 | 0x20 | 0x08, 0, (len >> 8) as u8, len as u8]);
            p.extend_from_slice(&[0; 8]);
            p.resize(p.len() + n, 1);
        }
        p.extend_from_slice(&[0, 0, 3]); // padding of 3
        assert_eq!(asf_bytes(&p), Ok(150));
        assert_eq!(asf_bytes(&[0x40; 20]), Err(DepacketizeError::Version(1)));
        assert_eq!(asf_bytes(&[]), Err(DepacketizeError::Empty));
        assert_eq!(
            asf_bytes(&[0x90, 96, 0, 1]),
            Err(DepacketizeError::Extension)
        );
        let mut short = rtp_header(true, 1, 0, 7).to_vec();
        short.extend_from_slice(&[0x40, 0, 0, 2]);
        assert_eq!(asf_bytes(&short), Err(DepacketizeError::PfLength(2)));
    }

    #[test]
    fn interleaved_prefixes_read_back() {
        let p = interleaved_prefix(3, 1500).unwrap();
        assert_eq!(parse_interleaved(&p), Some((3, 1500)));
        assert_eq!(parse_interleaved(&p[..3]), None);
        assert_eq!(parse_interleaved(b"RTSP"), None);
    }

    /// Reassembles like FFmpeg's asfrtp_parse_packet (L=1: length counted from the header;
    /// L=0: offsets must continue, marker completes), returning the ASF packets.
    fn ffmpeg_like(rtp: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        let mut frag: Option<Vec<u8>> = None;
        for (marker, payload) in rtp {
            let flags = payload[0];
            let len_off = usize::from(payload[1]) << 16
                | usize::from(payload[2]) << 8
                | usize::from(payload[3]);
            let data = &payload[4..];
            if flags & 0x40 != 0 {
                let n = (len_off - 4).min(data.len());
                done.push(data[..n].to_vec());
            } else {
                match &mut frag {
                    Some(f) if f.len() == len_off => f.extend_from_slice(data),
                    _ if len_off == 0 => frag = Some(data.to_vec()),
                    _ => panic!("fragment at {len_off} without its start"),
                }
                if *marker {
                    done.extend(frag.take());
                }
            }
        }
        done
    }

    fn packetize(pkt: &[u8], key: bool, mtu: usize) -> Vec<(bool, Vec<u8>)> {
        fragments(pkt.len(), key, mtu)
            .unwrap()
            .into_iter()
            .map(|f| {
                let mut p = f.pf_header.to_vec();
                p.extend_from_slice(&pkt[f.start..f.end]);
                assert!(p.len() + RTP_HEADER <= mtu);
                (f.last, p)
            })
            .collect()
    }

    #[test]
    fn a_packet_that_fits_goes_whole_with_length_including_the_header() {
        let pkt: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let rtp = packetize(&pkt, true, 1450);
        assert_eq!(rtp.len(), 1);
        assert_eq!(rtp[0].1[..4], [0xC0, 0, 0x03, 0xEC]); // S|L, 1004
        assert!(rtp[0].0, "marker on the only packet");
        assert_eq!(ffmpeg_like(&rtp), [pkt]);
    }

    #[test]
    fn a_large_packet_is_fragmented_by_offset_with_the_marker_on_the_last() {
        let pkt: Vec<u8> = (0..3200u32).map(|i| (i * 7) as u8).collect();
        let rtp = packetize(&pkt, false, 1000);
        assert_eq!(rtp.len(), 4); // 984 bytes of room each
        let offsets: Vec<usize> = rtp
            .iter()
            .map(|(_, p)| usize::from(p[1]) << 16 | usize::from(p[2]) << 8 | usize::from(p[3]))
            .collect();
        assert_eq!(offsets, [0, 984, 1968, 2952]);
        assert!(rtp.iter().all(|(_, p)| p[0] == 0), "L=0, S=0");
        assert_eq!(
            rtp.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            [false, false, false, true]
        );
        assert_eq!(ffmpeg_like(&rtp), std::slice::from_ref(&pkt));
        // The key bit is in every fragment.
        assert!(packetize(&pkt, true, 1000)
            .iter()
            .all(|(_, p)| p[0] == 0x80));
    }

    #[test]
    fn impossible_sizes_are_errors() {
        assert_eq!(fragments(10, false, 16), Err(PacketizeError::Mtu(16)));
        assert!(matches!(
            fragments(1 << 24, false, 1450),
            Err(PacketizeError::TooLarge(_))
        ));
        assert_eq!(interleaved_prefix(3, 70_000), None);
        assert_eq!(interleaved_prefix(3, 258), Some([b'$', 3, 1, 2]));
    }

    #[test]
    fn rtp_header_and_sender_report_layout() {
        let h = rtp_header(true, 0x1234, 0xAABBCCDD, 0x01020304);
        assert_eq!(
            h,
            [0x80, 0xE0, 0x12, 0x34, 0xAA, 0xBB, 0xCC, 0xDD, 1, 2, 3, 4]
        );
        let sr = sender_report(
            &SenderInfo {
                ssrc: 9,
                ntp: 0x0102030405060708,
                rtp_timestamp: 77,
                packets: 3,
                octets: 4000,
            },
            "asfcast",
        );
        assert_eq!(&sr[..4], &[0x80, 200, 0, 6]);
        assert_eq!(&sr[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&sr[28..30], &[0x81, 202]);
        let words = u16::from_be_bytes([sr[30], sr[31]]) as usize;
        assert_eq!(sr.len(), 28 + 4 + words * 4);
        assert_eq!(&sr[38..45], b"asfcast");
    }

    proptest! {
        #[test]
        fn packetize_then_reassemble_is_identity(
            pkt in proptest::collection::vec(any::<u8>(), 1..9000),
            mtu in 40usize..3000,
            key in any::<bool>(),
        ) {
            let rtp = packetize(&pkt, key, mtu);
            prop_assert_eq!(ffmpeg_like(&rtp), vec![pkt]);
        }
    }
}
