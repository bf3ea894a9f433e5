//! Continuous ASF times across a station's playlist entries.
//!
//! Why: every playlist entry (and every loop of a looping playlist) restarts its ASF send and
//! presentation times at zero. A live broadcast's clients see one endless stream: passing the
//! reset through makes FFmpeg's timestamps jump backwards (over MMS, MMSH and RTSP alike: its
//! `-t` limit is then never reached and its muxers complain), and GStreamer's demuxer drops
//! what looks late. So the station shifts every entry's times past the last times it sent,
//! once, for every delivery (the station runtime applies it before packets are shared).
//!
//! The shift rewrites a copy of the packet (\[ASF\] §5.2): the Send Time field and each payload's
//! presentation time (bytes 4..8 of the replicated data, or the Presentation Time field of a
//! compressed payload). Until the first entry change nothing is copied — the station's shared
//! buffer goes out as it is.

use crate::asf::packet::head_len;
use crate::asf::Packet;

/// Gap left between the last presentation time of an entry and the first of the next (ms).
const ENTRY_GAP_MS: i64 = 40;

fn width(bits: u8) -> usize {
    match bits & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    }
}

/// Time shifting for one station's timeline.
#[derive(Debug, Clone, Default)]
pub struct Retimer {
    offset: u32,
    pending: bool,
    max_send: Option<u32>,
    max_pres: Option<u32>,
}

impl Retimer {
    pub fn new() -> Self {
        Retimer::default()
    }

    /// A new playlist entry starts: its first packet sets a new shift.
    pub fn new_entry(&mut self) {
        if self.max_send.is_some() {
            self.pending = true;
        }
    }

    /// The packet's shifted send time, and the rewritten packet when a shift applies.
    pub fn apply(&mut self, pkt: &Packet<'_>) -> (u32, Option<Vec<u8>>) {
        let pres: Vec<u32> = pkt
            .payloads
            .iter()
            .filter_map(|p| p.presentation_time(pkt.bytes))
            .collect();
        if self.pending {
            self.pending = false;
            let min_pres = pres.iter().copied().min().unwrap_or(pkt.send_time);
            let by_send = self.max_send.map_or(0, |m| i64::from(m) + 1) - i64::from(pkt.send_time);
            let by_pres = self
                .max_pres
                .map_or(0, |m| i64::from(m) + ENTRY_GAP_MS - i64::from(min_pres));
            self.offset = by_send.max(by_pres).clamp(0, i64::from(u32::MAX)) as u32;
        }
        let send = pkt.send_time.wrapping_add(self.offset);
        self.max_send = Some(self.max_send.map_or(send, |m| m.max(send)));
        if let Some(p) = pres.iter().map(|p| p.wrapping_add(self.offset)).max() {
            self.max_pres = Some(self.max_pres.map_or(p, |m| m.max(p)));
        }
        if self.offset == 0 {
            return (send, None);
        }
        (send, Some(shift(pkt, self.offset)))
    }
}

fn add_le32(b: &mut [u8], at: usize, by: u32) {
    if let Some(f) = b.get_mut(at..at + 4) {
        let v = u32::from_le_bytes([f[0], f[1], f[2], f[3]]).wrapping_add(by);
        f.copy_from_slice(&v.to_le_bytes());
    }
}

/// A copy of the packet with its send time and presentation times moved by `by` ms.
fn shift(pkt: &Packet<'_>, by: u32) -> Vec<u8> {
    let mut b = pkt.bytes.to_vec();
    let send_at = head_len(pkt.ecc.len(), pkt.length_type_flags) - 6;
    add_le32(&mut b, send_at, by);
    let pf = pkt.property_flags;
    for p in &pkt.payloads {
        if p.compressed {
            // Stream byte, Media Object Number, then the Presentation Time (a DWORD in every
            // stream we have seen; narrower fields cannot take the shift and stay as they are).
            if width(pf >> 2) == 4 {
                add_le32(&mut b, p.header.start + 1 + width(pf >> 4), by);
            }
        } else if p.replicated.len() >= 8 {
            add_le32(&mut b, p.replicated.start + 4, by);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::rewrite::strip_padding;
    use crate::asf::AsfReader;
    use std::path::PathBuf;

    fn demo_packets() -> Vec<Vec<u8>> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf");
        let mut r = AsfReader::open(&path).unwrap();
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            out.push(strip_padding(&p.unwrap().parse().unwrap()));
        }
        out
    }

    fn times(b: &[u8]) -> (u32, Vec<u32>) {
        let p = Packet::parse(b).unwrap();
        let pres = p
            .payloads
            .iter()
            .filter_map(|x| x.presentation_time(b))
            .collect();
        (p.send_time, pres)
    }

    #[test]
    fn times_continue_across_a_loop_and_nothing_is_copied_before_it() {
        let pkts = demo_packets();
        let mut r = Retimer::new();
        let mut last_send = 0;
        let mut max_pres = 0;
        for p in &pkts {
            let (send, copy) = r.apply(&Packet::parse(p).unwrap());
            assert!(copy.is_none(), "first entry goes out unchanged");
            last_send = send;
            max_pres = max_pres.max(times(p).1.into_iter().max().unwrap_or(0));
        }
        r.new_entry();
        let mut prev_send = last_send;
        for (i, p) in pkts.iter().enumerate() {
            let (send, copy) = r.apply(&Packet::parse(p).unwrap());
            let copy = copy.expect("second entry is shifted");
            let (s, pres) = times(&copy);
            assert_eq!(s, send);
            if i == 0 {
                assert!(send > prev_send, "the new entry starts after the old one");
            }
            assert!(send >= prev_send, "send times never go back");
            if i == 0 {
                assert!(
                    pres.iter().all(|t| *t > max_pres),
                    "{pres:?} after {max_pres}"
                );
            }
            // Same length, same payloads; only times moved.
            assert_eq!(copy.len(), p.len());
            let (os, opres) = times(p);
            let d = send - os;
            assert!(pres.iter().zip(&opres).all(|(a, b)| a - b == d));
            prev_send = send;
        }
    }
}
