//! When a client has the first key frame it can decode: the startup figure "connect → first
//! key-frame payload" of `asfcast-load`. A player decodes nothing before a key frame of its
//! video stream, so that — not the first media byte — is when a picture can appear.
//!
//! Pure: the protocol cores hand it the ASF header (MMSH `$H`, the MMS header blob, the RTSP
//! SDP's video sections) and ASF data packets (MMSH `$D` bodies, MMS media Data packets,
//! x-asf-pf payloads reassembled from their fragments, [MS-RTSP] §2.2.2 / rtsp-wmsp.md §2)
//! until it has seen a payload that starts a key-frame object ([MS-ASF] 5.2.3.1, Stream
//! Number bit 7) on a video stream. A station without video counts its first key-frame
//! payload on any stream. Packets are parsed with the daemon's bounded `asf::Packet`; a
//! packet it cannot parse is skipped, never a failure of the client.

use asfcast::asf::{AsfHeader, Packet};

/// Longest header or reassembled packet kept.
const MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct KeyWatch {
    /// The video stream numbers, once the header is known (empty: none, any stream counts).
    video: Option<Vec<u8>>,
    pub found: bool,
}

impl KeyWatch {
    /// Still watching (no key frame yet): the cores skip the work once it is found.
    pub fn wants(&self) -> bool {
        !self.found
    }

    /// The ASF header (Header Object first; trailing bytes are ignored).
    pub fn header(&mut self, bytes: &[u8]) {
        let size = bytes
            .get(16..24)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| s <= bytes.len())
            .unwrap_or(bytes.len());
        if let Ok(h) = AsfHeader::parse(bytes.get(..size).unwrap_or_default()) {
            self.video = Some(h.video_streams());
        }
    }

    /// The video stream numbers when they come from elsewhere (the SDP's `m=video` sections).
    pub fn video_streams(&mut self, streams: Vec<u8>) {
        self.video = Some(streams);
    }

    /// One whole ASF data packet; true when it is the first with a video key frame.
    pub fn packet(&mut self, bytes: &[u8]) -> bool {
        if self.found {
            return false;
        }
        let Ok(p) = Packet::parse(bytes) else {
            return false;
        };
        let video = self.video.as_deref().unwrap_or_default();
        let hit = p
            .key_frame_starts()
            .any(|s| video.is_empty() || video.contains(&s));
        self.found = hit;
        hit
    }

    /// One x-asf-pf RTP payload (after the RTP header): its packets, whole or fragmented
    /// (the fragments of one packet end with the RTP marker bit; `frag` is the RTP session's
    /// reassembly buffer). True when a key frame was found.
    pub fn pf_payload(&mut self, payload: &[u8], marker: bool, frag: &mut Vec<u8>) -> bool {
        let mut pos = 0;
        while let Some(&[flags, a, b, c]) = payload.get(pos..pos + 4) {
            let field = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
            let head = 4 + 4 * ((flags & 0x38).count_ones() as usize);
            let Some(rest) = payload.get(pos + head..) else {
                return false;
            };
            if flags & 0x40 != 0 {
                // L: the field is this packet's length (from the payload-format header on).
                let len = field.saturating_sub(head);
                let Some(pkt) = rest.get(..len) else {
                    return false;
                };
                if self.packet(pkt) {
                    return true;
                }
                pos += head + len;
            } else {
                // A fragment at offset `field`: the rest of the RTP payload.
                if field == 0 {
                    frag.clear();
                }
                if field == frag.len() && frag.len() + rest.len() <= MAX_BYTES {
                    frag.extend_from_slice(rest);
                } else {
                    frag.clear();
                    return false;
                }
                if marker && !frag.is_empty() {
                    let whole = std::mem::take(frag);
                    return self.packet(&whole);
                }
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A single-payload packet of `stream` (bit 7: key frame) with `data` bytes, no padding.
    fn packet(stream: u8, key: bool, data: usize) -> Vec<u8> {
        // Error correction present (2 bytes), length type flags 0 (single payload, no
        // lengths), property flags 0x5D (the common layout: BYTE replicated length, DWORD
        // offset, BYTE media number, WORD... as asfcast writes them).
        let mut p = vec![0x82, 0x00, 0x00, 0x00, 0x5D];
        p.extend_from_slice(&1000u32.to_le_bytes()); // send time
        p.extend_from_slice(&40u16.to_le_bytes()); // duration
        p.push(stream | if key { 0x80 } else { 0 });
        p.push(1); // media object number
        p.extend_from_slice(&0u32.to_le_bytes()); // offset into the object
        p.push(8); // replicated data length
        p.extend_from_slice(&(data as u32).to_le_bytes()); // object size
        p.extend_from_slice(&1000u32.to_le_bytes()); // presentation time
        p.extend(std::iter::repeat(7u8).take(data));
        p
    }

    #[test]
    fn only_a_video_key_frame_counts() {
        let mut w = KeyWatch::default();
        w.video_streams(vec![1]);
        let audio = packet(2, true, 100);
        assert!(Packet::parse(&audio).is_ok(), "test packet parses");
        assert!(!w.packet(&audio));
        assert!(!w.packet(&packet(1, false, 100)));
        assert!(w.packet(&packet(1, true, 100)));
        assert!(w.found && !w.wants());
        // Without video streams any key frame counts.
        let mut w = KeyWatch::default();
        w.video_streams(Vec::new());
        assert!(w.packet(&packet(2, true, 10)));
    }

    #[test]
    fn fragments_are_reassembled_up_to_the_marker() {
        let pkt = packet(1, true, 3000);
        let mut w = KeyWatch::default();
        w.video_streams(vec![1]);
        let mut frag = Vec::new();
        let mut off = 0;
        let mut found = false;
        while off < pkt.len() {
            let end = (off + 1400).min(pkt.len());
            let b = (off as u32).to_be_bytes();
            let mut pl = vec![0x80, b[1], b[2], b[3]];
            pl.extend_from_slice(&pkt[off..end]);
            found = w.pf_payload(&pl, end == pkt.len(), &mut frag);
            assert_eq!(found, end == pkt.len());
            off = end;
        }
        assert!(found);
        // A whole packet (L set, length from the payload-format header on).
        let mut w = KeyWatch::default();
        w.video_streams(vec![1]);
        let small = packet(1, true, 50);
        let b = ((small.len() + 4) as u32).to_be_bytes();
        let mut pl = vec![0xC0, b[1], b[2], b[3]];
        pl.extend_from_slice(&small);
        assert!(w.pf_payload(&pl, true, &mut Vec::new()));
        // A fragment out of place is dropped, not misread.
        let mut w = KeyWatch::default();
        let mut frag = Vec::new();
        assert!(!w.pf_payload(&[0x80, 0, 0, 9, 1, 2, 3], true, &mut frag));
        assert!(frag.is_empty());
    }

    proptest::proptest! {
        /// Hostile bytes anywhere (header, packet, x-asf-pf payload) never panic and never
        /// grow the reassembly past its bound.
        #[test]
        fn arbitrary_bytes_are_refused_quietly(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4000),
            marker in proptest::bool::ANY,
        ) {
            let mut w = KeyWatch::default();
            w.header(&bytes);
            w.packet(&bytes);
            let mut frag = Vec::new();
            for _ in 0..3 {
                w.pf_payload(&bytes, marker, &mut frag);
            }
            proptest::prop_assert!(frag.len() <= MAX_BYTES);
        }
    }
}
