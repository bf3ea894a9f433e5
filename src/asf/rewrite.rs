//! Packet rewriting for delivery (§3.5, §3.6): strip padding for the wire, re-pad to the fixed
//! size for files and byte-stream consumers, and drop the payloads of unselected streams or of
//! non-key video objects.
//!
//! Every rewrite copies payload headers and data byte-for-byte and keeps Send Time, Duration,
//! the sequence and the error-correction bytes; only the length fields are rebuilt so that the
//! packet stays self-describing:
//! - a *stripped* packet carries an explicit Packet Length and no padding (MS-WMSP `$D`,
//!   MS-MSB, MS-RTSP: "Padding Length MUST be updated"). Clients that re-pad with zeros
//!   (ffmpeg, VLC) then see the zeros as padding, which decodes completely (asf.md §3.6);
//! - a *padded* packet is exactly the fixed size, with no Packet Length field and a Padding
//!   Length that covers the rest, as ffmpeg's own muxer writes them.

use super::bytes::put_var;
use super::packet::{head_len, Packet, Payload, LTF_MULTIPLE_PAYLOADS};
use super::AsfError;

/// The Length Type Flags bits a rewrite keeps (multiple payloads + sequence type).
const LTF_KEEP: u8 = LTF_MULTIPLE_PAYLOADS | 0x06;

/// Serialises a packet head followed by `body` (the payload area, Payload Flags included).
fn write_packet(
    pkt: &Packet<'_>,
    ltf: u8,
    packet_length: u32,
    padding: u32,
    body: &[u8],
) -> Vec<u8> {
    let ecc = &pkt.bytes[pkt.ecc.clone()];
    let mut out = Vec::with_capacity(head_len(ecc.len(), ltf) + body.len() + padding as usize);
    out.extend_from_slice(ecc);
    out.push(ltf);
    out.push(pkt.property_flags);
    put_var(&mut out, ltf >> 5, packet_length);
    put_var(&mut out, ltf >> 1, pkt.sequence);
    put_var(&mut out, ltf >> 3, padding);
    out.extend_from_slice(&pkt.send_time.to_le_bytes());
    out.extend_from_slice(&pkt.duration.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Builds the stripped form of a packet whose payload area is `body`: explicit Packet Length,
/// no padding.
fn stripped(pkt: &Packet<'_>, multiple: bool, body: &[u8]) -> Vec<u8> {
    let keep = (pkt.length_type_flags & 0x06) | if multiple { LTF_MULTIPLE_PAYLOADS } else { 0 };
    // The Packet Length field's own width counts in the length it states.
    let mut lt = 2u8;
    let mut total = head_len(pkt.ecc.len(), keep | (lt << 5)) + body.len();
    if total > 0xFFFF {
        lt = 3;
        total = head_len(pkt.ecc.len(), keep | (lt << 5)) + body.len();
    }
    write_packet(pkt, keep | (lt << 5), total as u32, 0, body)
}

/// The packet without its padding. A packet with no padding is returned unchanged; otherwise
/// the result is never longer than the original.
pub fn strip_padding(pkt: &Packet<'_>) -> Vec<u8> {
    if pkt.padding == 0 && pkt.length == pkt.bytes.len() {
        return pkt.bytes[..pkt.length].to_vec();
    }
    let out = stripped(
        pkt,
        pkt.has_multiple_payloads(),
        &pkt.bytes[pkt.body.clone()],
    );
    if out.len() > pkt.length {
        // Only when a DWORD Packet Length would outgrow a 64 KiB packet's tiny padding.
        return pkt.bytes[..pkt.length].to_vec();
    }
    out
}

/// The packet re-padded to exactly `packet_size` bytes (no Packet Length field; Padding
/// Length covering the rest).
pub fn repad(pkt: &Packet<'_>, packet_size: u32) -> Result<Vec<u8>, AsfError> {
    let size = packet_size as usize;
    let keep = pkt.length_type_flags & LTF_KEEP;
    let body = &pkt.bytes[pkt.body.clone()];
    let base = head_len(pkt.ecc.len(), keep) + body.len();
    if base > size {
        return Err(AsfError::invalid(
            "packet",
            0,
            format!("{base} bytes of content do not fit in a {size}-byte packet"),
        ));
    }
    let need = (size - base) as u32;
    if need == 0 {
        return Ok(write_packet(pkt, keep, 0, 0, body));
    }
    // The Padding Length field's own width comes out of the padding it states.
    let (lt, padding) = if need - 1 <= 0xFF {
        (1u8, need - 1)
    } else if need - 2 <= 0xFFFF {
        (2u8, need - 2)
    } else {
        (3u8, need - 4)
    };

    let mut out = write_packet(pkt, keep | (lt << 3), 0, padding, body);
    out.resize(size, 0);
    Ok(out)
}

/// What a payload filter did to a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Every payload was kept: send the packet as it is.
    Unchanged,
    /// No payload was kept: the packet must not be sent (MS-MMSP 3.2.5.11.1).
    Dropped,
    /// Some payloads were kept: the rebuilt packet, in stripped form.
    Rewritten(Vec<u8>),
}

/// Keeps the payloads for which `keep` is true; payloads are never split or merged, and their
/// headers and data are copied byte-for-byte. A single-payload packet is kept or dropped whole.
pub fn filter_payloads(pkt: &Packet<'_>, mut keep: impl FnMut(&Payload) -> bool) -> Filtered {
    let kept: Vec<&Payload> = pkt.payloads.iter().filter(|p| keep(p)).collect();
    if kept.len() == pkt.payloads.len() {
        return Filtered::Unchanged;
    }
    if kept.is_empty() {
        return Filtered::Dropped;
    }
    let b = pkt.bytes;
    // WORD payload lengths as encoders write them; DWORD when a payload does not fit in one
    // (only possible in a packet above 64 KiB).
    let longest = kept.iter().map(|p| p.data.len()).max().unwrap_or(0);
    let len_type = if longest > 0xFFFF { 3u8 } else { 2u8 };
    let mut body = Vec::with_capacity(pkt.body.len() + 2 * kept.len());
    body.push((len_type << 6) | kept.len() as u8);
    for p in kept {
        body.extend_from_slice(&b[p.header.clone()]);
        put_var(&mut body, len_type, p.data.len() as u32);
        body.extend_from_slice(&b[p.data.clone()]);
    }
    Filtered::Rewritten(stripped(pkt, true, &body))
}

/// Keeps only the payloads of `streams` (stream selection).
pub fn select_streams(pkt: &Packet<'_>, streams: &[u8]) -> Filtered {
    filter_payloads(pkt, |p| streams.contains(&p.stream))
}

/// Thins the listed video streams to key-frame objects (every fragment of a key frame carries
/// the key bit, so this works packet by packet); other streams are kept.
pub fn thin_to_key_frames(pkt: &Packet<'_>, video_streams: &[u8]) -> Filtered {
    filter_payloads(pkt, |p| !video_streams.contains(&p.stream) || p.key_frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multiple-payload packet like ffmpeg writes: audio (stream 2) + video key (stream 1),
    /// padded to `size`.
    pub(crate) fn two_payload_packet(size: usize) -> Vec<u8> {
        let mut p = vec![0x82, 0, 0, 0x11, 0x5D]; // multi + padding WORD
        p.extend_from_slice(&0u16.to_le_bytes()); // padding (patched below)
        p.extend_from_slice(&100u32.to_le_bytes());
        p.extend_from_slice(&46u16.to_le_bytes());
        p.push(0x82); // 2 payloads, WORD lengths
        for (sn, len, fill) in [(0x02u8, 30u16, 0xA0u8), (0x81, 40, 0xB0)] {
            p.push(sn);
            p.push(7);
            p.extend_from_slice(&0u32.to_le_bytes());
            p.push(8);
            p.extend_from_slice(&u32::from(len).to_le_bytes());
            p.extend_from_slice(&3200u32.to_le_bytes());
            p.extend_from_slice(&len.to_le_bytes());
            p.extend(std::iter::repeat_n(fill, len as usize));
        }
        let pad = (size - p.len()) as u16;
        p[5..7].copy_from_slice(&pad.to_le_bytes());
        p.resize(size, 0);
        p
    }

    fn payload_bytes(b: &[u8]) -> Vec<(u8, bool, Vec<u8>)> {
        let p = Packet::parse(b).unwrap();
        p.payloads
            .iter()
            .map(|x| (x.stream, x.key_frame, b[x.data.clone()].to_vec()))
            .collect()
    }

    #[test]
    fn strip_then_repad_keeps_every_payload() {
        let orig = two_payload_packet(400);
        let p = Packet::parse(&orig).unwrap();
        let s = strip_padding(&p);
        assert!(s.len() < orig.len());
        let sp = Packet::parse(&s).unwrap();
        assert_eq!(sp.padding, 0);
        assert_eq!(sp.packet_length_field, Some(s.len() as u32));
        assert_eq!(sp.send_time, 100);
        assert_eq!(sp.duration, 46);
        assert_eq!(payload_bytes(&s), payload_bytes(&orig));
        let r = repad(&sp, 400).unwrap();
        assert_eq!(r.len(), 400);
        assert_eq!(payload_bytes(&r), payload_bytes(&orig));
        // Zero-extension by a client (ffmpeg/VLC re-pad) also parses to the same payloads.
        let mut z = s.clone();
        z.resize(400, 0);
        assert_eq!(payload_bytes(&z), payload_bytes(&orig));
    }

    #[test]
    fn repad_covers_every_padding_width() {
        let orig = two_payload_packet(400);
        let p = Packet::parse(&orig).unwrap();
        let s = strip_padding(&p);
        let sp = Packet::parse(&s).unwrap();
        let min = s.len() - 2; // without the Packet Length WORD
        for size in min..min + 300 {
            let r = repad(&sp, size as u32).unwrap();
            assert_eq!(r.len(), size);
            assert_eq!(payload_bytes(&r), payload_bytes(&orig), "size {size}");
        }
        assert!(repad(&sp, (min - 1) as u32).is_err());
    }

    #[test]
    fn filtering_keeps_payloads_longer_than_a_word() {
        // The fuzzer's case: DWORD payload lengths, one payload of 65 536 bytes.
        let mut p = vec![0x82, 0, 0, 0x01, 0x5D];
        p.extend_from_slice(&1000u32.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p.push(0xC2); // 2 payloads, DWORD lengths
        for (sn, len) in [(1u8, 65_536u32), (2, 0)] {
            p.extend_from_slice(&[sn, 0, 0, 0, 0, 0, 8]);
            p.extend_from_slice(&len.to_le_bytes());
            p.extend_from_slice(&1000u32.to_le_bytes());
            p.extend_from_slice(&len.to_le_bytes());
            p.extend(std::iter::repeat_n(0xEEu8, len as usize));
        }
        let parsed = Packet::parse(&p).unwrap();
        let Filtered::Rewritten(v) = select_streams(&parsed, &[1]) else {
            panic!("expected a rewrite")
        };
        assert_eq!(payload_bytes(&v), vec![(1, false, vec![0xEE; 65_536])]);
    }

    #[test]
    fn select_and_thin() {
        let orig = two_payload_packet(400);
        let p = Packet::parse(&orig).unwrap();
        assert_eq!(select_streams(&p, &[1, 2]), Filtered::Unchanged);
        assert_eq!(select_streams(&p, &[3]), Filtered::Dropped);
        let Filtered::Rewritten(v) = select_streams(&p, &[1]) else {
            panic!("expected a rewrite")
        };
        assert_eq!(payload_bytes(&v), vec![(1, true, vec![0xB0; 40])]);
        // Stream 1's payload is a key frame: thinning keeps everything.
        assert_eq!(thin_to_key_frames(&p, &[1]), Filtered::Unchanged);
        // Treat stream 2 as video: its payload has no key bit and goes.
        let Filtered::Rewritten(v) = thin_to_key_frames(&p, &[2]) else {
            panic!("expected a rewrite")
        };
        assert_eq!(payload_bytes(&v).len(), 1);
    }
}
