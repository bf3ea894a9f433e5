//! The MSB sender: turns ASF data packets (padding already stripped by the ASF core,
//! Padding Length 0, Packet Length present) into MSB datagrams with XOR parity FEC.
//!
//! Sequencing ([MS-MSB] §2.2.2, §2.2.4, §3.1.5):
//! - every data packet gets the next dwPacketID (0x2042534D, "MSB ", is skipped);
//! - under FEC its ECC bytes become `82 | Type 1, Number = position 1..span | Cycle`;
//! - after the span's last packet comes the parity packet: `92 | Type 2, Number =
//!   count+1 | Cycle`, the XOR of the span's packets without their 3 ECC bytes
//!   (shorter ones zero-extended), with the dwPacketID of the packet before it;
//! - Cycle increments by one per span (wrapping), starting at 0;
//! - a format change closes the current span (a cycle never mixes wStreamIDs), and the
//!   wStreamID either takes the new Format ID or toggles bit 15 if the id is unchanged
//!   (§3.1.5.1, §4.2: a looping stream restart counts as a new entry);
//! - [`MsbSender::flush`] closes a short final span with its parity (§3.1.5.3 SHOULD;
//!   Windows sends none there, note <8>).
//!
//! Packets without the usual `82 xx xx` field: a packet with no error-correction field
//! (flags bit 7 clear) is sent unchanged and outside FEC, and the open span is closed
//! first. We do not insert the 3 bytes: the packet may already fill the fixed packet
//! size (no padding to give up), and its Packet Length field would have to change; a
//! receiver re-padding to the fixed size would then see a packet longer than allowed.
//! A packet with some other ECC layout is treated the same way. Input packets with
//! Opaque Data Present are refused: every receiver would drop them as parity.
//!
//! Cost per packet: one datagram buffer (taken from a small pool that
//! [`MsbSender::recycle`] refills) and one XOR pass into a reused parity accumulator.

use super::ecc::{
    data_ecc, ecc_form, id_succ, neutral_ecc, parity_ecc, xor_into, EccForm, BEACON_ID, ECC_LEN,
    FLAG_OPAQUE, FLAG_PRESENT,
};
use super::header::{MsbHeader, BEACON, FORMAT_ID_MASK, HEADER_LEN, TOGGLE_BIT};
use super::{MsbError, MAX_ASF_PACKET, MAX_SPAN};

/// Buffers kept for reuse; enough for a data packet plus its parity per push.
const POOL_MAX: usize = 8;

/// The beacon datagram to send while there is no data ([MS-MSB] §3.1.3.2).
pub fn beacon() -> [u8; 4] {
    BEACON
}

/// Sender settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsbSenderConfig {
    /// Data packets per parity packet: 0 disables FEC, else 1..=15 (10 recommended,
    /// and not above the .nsc `Default Ecc`).
    pub fec_span: u8,
    /// dwPacketID of the first packet (0 recommended; 0x2042534D is skipped).
    pub first_packet_id: u32,
}

/// Sans-I/O MSB packetizer for one station.
#[derive(Debug)]
pub struct MsbSender {
    span: u8,
    next_id: u32,
    /// dwPacketID of the last data packet sent (parity repeats it).
    last_id: u32,
    /// Current wStreamID, `None` until the first `set_format`.
    stream_id: Option<u16>,
    cycle: u8,
    /// Data packets in the open span.
    in_span: u8,
    /// XOR of the open span's packets after their ECC bytes.
    parity: Vec<u8>,
    pool: Vec<Vec<u8>>,
    /// Datagrams produced: data packets and FEC parity packets (for the metrics).
    pub data_sent: u64,
    pub parity_sent: u64,
}

impl MsbSender {
    /// Creates a sender; fails if the span exceeds 15.
    pub fn new(config: MsbSenderConfig) -> Result<Self, MsbError> {
        if config.fec_span > MAX_SPAN {
            return Err(MsbError::BadSpan(config.fec_span));
        }
        let first = if config.first_packet_id == BEACON_ID {
            id_succ(BEACON_ID)
        } else {
            config.first_packet_id
        };
        Ok(MsbSender {
            span: config.fec_span,
            next_id: first,
            last_id: first,
            stream_id: None,
            cycle: 0,
            in_span: 0,
            parity: Vec::new(),
            pool: Vec::new(),
            data_sent: 0,
            parity_sent: 0,
        })
    }

    /// Starts a new stream (playlist entry, file, loop restart) using `format_id`.
    /// Closes the open span into `out`. Same id as before: toggles bit 15; new id: uses it.
    pub fn set_format(&mut self, format_id: u16, out: &mut Vec<Vec<u8>>) -> Result<(), MsbError> {
        if format_id & !FORMAT_ID_MASK != 0 {
            return Err(MsbError::BadFormatId(format_id));
        }
        self.close_span(out);
        self.stream_id = Some(next_stream_id(self.stream_id, format_id));
        Ok(())
    }

    /// The wStreamID packets are sent with now, if a format was set.
    pub fn stream_id(&self) -> Option<u16> {
        self.stream_id
    }

    /// Appends the datagram(s) to send for one ASF packet: the data packet and, when it
    /// ends a span, the parity packet.
    pub fn push(&mut self, asf_packet: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), MsbError> {
        let stream_id = self.stream_id.ok_or(MsbError::NoFormat)?;
        if asf_packet.is_empty() || asf_packet.len() > MAX_ASF_PACKET {
            return Err(MsbError::PacketSize {
                len: asf_packet.len(),
            });
        }
        let form = ecc_form(asf_packet);
        if let Some(&flags) = asf_packet.first() {
            if flags & (FLAG_PRESENT | FLAG_OPAQUE) == FLAG_PRESENT | FLAG_OPAQUE {
                return Err(MsbError::OpaqueInput { flags });
            }
        }
        let id = self.take_id();
        self.data_sent += 1;
        let body = asf_packet.get(ECC_LEN..).unwrap_or_default();
        match form {
            EccForm::Data if self.span > 0 => {
                self.in_span += 1;
                let ecc = data_ecc(self.in_span, self.cycle);
                out.push(self.datagram(id, stream_id, &ecc, body));
                xor_into(&mut self.parity, body);
                if self.in_span == self.span {
                    self.close_span(out);
                }
            }
            EccForm::Data => out.push(self.datagram(id, stream_id, &neutral_ecc(), body)),
            EccForm::Absent | EccForm::Other | EccForm::Parity => {
                // Outside FEC: close the span first so its parity directly follows it;
                // `last_id` is still the previous data packet's id, as the parity needs.
                self.close_span(out);
                out.push(self.datagram(id, stream_id, &[], asf_packet));
            }
        }
        Ok(())
    }

    /// Closes a partial span with its parity packet (call at end of stream / before beacons).
    pub fn flush(&mut self, out: &mut Vec<Vec<u8>>) {
        self.close_span(out);
    }

    /// Returns a sent datagram's buffer for reuse by later pushes.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_MAX {
            buf.clear();
            self.pool.push(buf);
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = id_succ(id);
        id
    }

    /// Emits the parity for the open span (if any), with the last data packet's id.
    fn close_span(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.in_span == 0 {
            return;
        }
        let Some(stream_id) = self.stream_id else {
            return;
        };
        let ecc = parity_ecc(self.in_span, self.cycle);
        let parity = std::mem::take(&mut self.parity);
        out.push(self.datagram(self.last_id, stream_id, &ecc, &parity));
        self.parity_sent += 1;
        self.parity = parity;
        self.parity.clear();
        self.in_span = 0;
        self.cycle = self.cycle.wrapping_add(1);
    }

    /// Builds one datagram: MSB header, ECC bytes, body. Records data ids as `last_id`.
    fn datagram(&mut self, id: u32, stream_id: u16, ecc: &[u8], body: &[u8]) -> Vec<u8> {
        let total = HEADER_LEN + ecc.len() + body.len();
        let header = MsbHeader {
            packet_id: id,
            stream_id,
            // Lengths are checked in push: ECC_LEN + body <= MAX_ASF_PACKET.
            packet_size: u16::try_from(total).unwrap_or(u16::MAX),
        };
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.reserve(total);
        buf.extend_from_slice(&header.encode());
        buf.extend_from_slice(ecc);
        buf.extend_from_slice(body);
        self.last_id = id;
        buf
    }
}

/// wStreamID for a new stream: new format id keeps the toggle, same id flips it.
fn next_stream_id(current: Option<u16>, format_id: u16) -> u16 {
    match current {
        Some(cur) if cur & FORMAT_ID_MASK == format_id => cur ^ TOGGLE_BIT,
        Some(cur) => (cur & TOGGLE_BIT) | format_id,
        None => format_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(span: u8, first: u32) -> MsbSender {
        MsbSender::new(MsbSenderConfig {
            fec_span: span,
            first_packet_id: first,
        })
        .unwrap()
    }

    fn dgram(id: u32, stream_id: u16, asf: &[u8]) -> Vec<u8> {
        let mut d = MsbHeader {
            packet_id: id,
            stream_id,
            packet_size: (8 + asf.len()) as u16,
        }
        .encode()
        .to_vec();
        d.extend_from_slice(asf);
        d
    }

    #[test]
    fn parity_by_hand() {
        let mut s = sender(2, 0);
        let mut out = Vec::new();
        s.set_format(5, &mut out).unwrap();
        assert!(out.is_empty());
        s.push(&[0x82, 0, 0, 0x01, 0x02, 0x03], &mut out).unwrap();
        s.push(&[0x82, 0, 0, 0x10, 0x20], &mut out).unwrap();
        s.push(&[0x82, 0, 0, 0xFF], &mut out).unwrap();
        s.flush(&mut out);
        assert_eq!(
            out,
            vec![
                dgram(0, 5, &[0x82, 0x11, 0, 0x01, 0x02, 0x03]),
                dgram(1, 5, &[0x82, 0x21, 0, 0x10, 0x20]),
                // parity: 01^10, 02^20, 03^00; same id as the packet before it
                dgram(1, 5, &[0x92, 0x32, 0, 0x11, 0x22, 0x03]),
                dgram(2, 5, &[0x82, 0x11, 1, 0xFF]),
                // short final span of 1: Number 2
                dgram(2, 5, &[0x92, 0x22, 1, 0xFF]),
            ]
        );
        // header bytes of the first datagram, literally
        assert_eq!(&out[0][..8], &[0, 0, 0, 0, 5, 0, 14, 0]);
        out.clear();
        s.flush(&mut out);
        assert!(out.is_empty(), "nothing open, nothing to flush");
    }

    #[test]
    fn no_fec_resets_ecc_and_sends_no_parity() {
        let mut s = sender(0, 7);
        let mut out = Vec::new();
        s.set_format(1, &mut out).unwrap();
        s.push(&[0x82, 0x31, 9, 0xAA], &mut out).unwrap();
        s.flush(&mut out);
        assert_eq!(out, vec![dgram(7, 1, &[0x82, 0, 0, 0xAA])]);
    }

    #[test]
    fn format_changes_toggle_or_switch_and_close_the_span() {
        let mut s = sender(3, 0);
        let mut out = Vec::new();
        s.set_format(5, &mut out).unwrap();
        assert_eq!(s.stream_id(), Some(0x0005));
        s.push(&[0x82, 0, 0, 0x42], &mut out).unwrap();
        s.set_format(5, &mut out).unwrap(); // loop restart: same header
        assert_eq!(s.stream_id(), Some(0x8005));
        s.push(&[0x82, 0, 0, 0x43], &mut out).unwrap();
        s.set_format(6, &mut out).unwrap();
        assert_eq!(s.stream_id(), Some(0x8006));
        s.set_format(6, &mut out).unwrap();
        assert_eq!(s.stream_id(), Some(0x0006));
        assert_eq!(
            out,
            vec![
                dgram(0, 0x0005, &[0x82, 0x11, 0, 0x42]),
                dgram(0, 0x0005, &[0x92, 0x22, 0, 0x42]),
                dgram(1, 0x8005, &[0x82, 0x11, 1, 0x43]),
                dgram(1, 0x8005, &[0x92, 0x22, 1, 0x43]),
            ]
        );
    }

    #[test]
    fn packet_without_ecc_closes_span_and_goes_as_is() {
        let mut s = sender(4, 10);
        let mut out = Vec::new();
        s.set_format(2, &mut out).unwrap();
        s.push(&[0x82, 0, 0, 1], &mut out).unwrap();
        s.push(&[0x5D, 0x01, 0x02], &mut out).unwrap();
        s.push(&[0x82, 0, 0, 2], &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                dgram(10, 2, &[0x82, 0x11, 0, 1]),
                dgram(10, 2, &[0x92, 0x22, 0, 1]),
                dgram(11, 2, &[0x5D, 0x01, 0x02]),
                dgram(12, 2, &[0x82, 0x11, 1, 2]),
            ]
        );
    }

    #[test]
    fn ids_skip_beacon_value_and_cycles_wrap() {
        let mut s = sender(1, BEACON_ID - 1);
        let mut out = Vec::new();
        s.set_format(0, &mut out).unwrap();
        for i in 0..300u32 {
            s.push(&[0x82, 0, 0, i as u8], &mut out).unwrap();
        }
        assert_eq!(out.len(), 600);
        let id = |d: &Vec<u8>| u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        assert_eq!(id(&out[0]), BEACON_ID - 1);
        assert_eq!(id(&out[1]), BEACON_ID - 1, "parity repeats the id");
        assert_eq!(id(&out[2]), BEACON_ID + 1);
        assert!(out.iter().all(|d| id(d) != BEACON_ID));
        // cycle byte: 0, 0, 1, 1, ... wrapping at 256
        assert_eq!(out[2 * 257][10], 1);
        assert_eq!(out[2 * 257 + 1][10], 1);
        let s2 = sender(0, BEACON_ID);
        assert_eq!(s2.next_id, BEACON_ID + 1);
    }

    #[test]
    fn span_15_parity_number_wraps_to_zero() {
        let mut s = sender(15, 0);
        let mut out = Vec::new();
        s.set_format(0, &mut out).unwrap();
        for i in 0..15u8 {
            s.push(&[0x82, 0, 0, i], &mut out).unwrap();
        }
        assert_eq!(out.len(), 16);
        assert_eq!(&out[14][8..11], &[0x82, 0xF1, 0]);
        assert_eq!(&out[15][8..11], &[0x92, 0x02, 0]);
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            MsbSender::new(MsbSenderConfig {
                fec_span: 16,
                first_packet_id: 0
            })
            .unwrap_err(),
            MsbError::BadSpan(16)
        );
        let mut s = sender(2, 0);
        let mut out = Vec::new();
        assert_eq!(s.push(&[0x82, 0, 0], &mut out), Err(MsbError::NoFormat));
        assert_eq!(
            s.set_format(0x800, &mut out),
            Err(MsbError::BadFormatId(0x800))
        );
        s.set_format(0x7FF, &mut out).unwrap();
        assert_eq!(s.push(&[], &mut out), Err(MsbError::PacketSize { len: 0 }));
        let big = vec![0x82; MAX_ASF_PACKET + 1];
        assert_eq!(
            s.push(&big, &mut out),
            Err(MsbError::PacketSize {
                len: MAX_ASF_PACKET + 1
            })
        );
        assert_eq!(
            s.push(&[0x92, 0, 0], &mut out),
            Err(MsbError::OpaqueInput { flags: 0x92 })
        );
        assert!(out.is_empty());
        // the largest packet still fits, and so does its parity
        let mut max = vec![0u8; MAX_ASF_PACKET];
        max[0] = 0x82;
        s.push(&max, &mut out).unwrap();
        s.flush(&mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|d| d.len() == 0xFFFF));
        assert!(out.iter().all(|d| d[6..8] == [0xFF, 0xFF]));
    }

    #[test]
    fn recycled_buffers_are_reused() {
        let mut s = sender(0, 0);
        let mut out = Vec::new();
        s.set_format(0, &mut out).unwrap();
        s.push(&[0x82, 0, 0, 1, 2, 3], &mut out).unwrap();
        let buf = out.pop().unwrap();
        let ptr = buf.as_ptr();
        s.recycle(buf);
        s.push(&[0x82, 0, 0, 4], &mut out).unwrap();
        assert_eq!(out[0].as_ptr(), ptr);
        assert_eq!(out[0], dgram(1, 0, &[0x82, 0, 0, 4]));
    }
}
