//! MS-MSB multicast, sans I/O: packet framing, beacons, XOR parity FEC (sender) and
//! framing checks, loss detection and single-loss repair (receiver).
//!
//! [MS-MSB] (v20240423, rev 13.0) carries one ASF data packet per UDP datagram to a
//! multicast group; players learn the group and the ASF headers from the .nsc file, so
//! nothing here knows about headers, sockets or clocks. Bytes in, bytes out.
//!
//! | part | file | follows |
//! |---|---|---|
//! | 8-byte MSB header, beacon, [`classify`] | `header.rs` | [MS-MSB] §2.2.3, §2.2.4 |
//! | wStreamID format id / bit-15 toggle | `sender.rs` | §2.2.4, §3.1.5.1, §4.2 |
//! | ECC field rewrite, parity XOR | `ecc.rs` | §2.2.2, \[ASF\] §5.2.1 |
//! | span/cycle sequencing, final parity | `sender.rs` | §2.2.2, §3.1.5.2, §3.1.5.3 |
//! | the station's delivery: beacons, span flush on stall ([`MsbSink`]) | `sink.rs` | §2.2.3, §3.1.5.3 |
//! | when each datagram leaves: smoothing, kernel-pacing lookahead | `departures.rs` | issue 14 |
//! | kernel pacing: the `SCM_TXTIME` cmsg, whether the qdisc honours it | `txtime.rs` | Linux `SO_TXTIME`, `sch_fq` |
//! | equal-sized datagrams as one segmented send | `gso.rs` | Linux `UDP_SEGMENT`, udp(7) |
//! | loss detection and repair | `receiver.rs` | §3.2.5.2, §3.2.5.3 |
//!
//! # Error Correction Data layout (the open question, settled here)
//!
//! The ASF packet starts with Error Correction Flags (`0x82` = present, length type 00,
//! two data bytes; `0x92` adds Opaque Data Present, which marks a parity packet) and two
//! Error Correction Data bytes. The second byte is **Cycle**. The first byte holds the
//! 4-bit **Type** (0 none, 1 data under EC, 2 parity) and the 4-bit **Number**. Sources:
//!
//! - [MS-MSB] §2.2.2 names the fields in the order "4-bit Type", "4-bit Number",
//!   "8-bit Cycle", and \[ASF\] §5.2.1 nests Type then Number inside the first byte (an
//!   open-source ASF writer's comment quotes it as "Type.Type = 0 (data is uncorrected),
//!   Type.Number = 0, Cycle = 0"). ASF field tables list the least significant bits first:
//!   the same section's Error Correction Flags table starts "Error Correction Data Length 4
//!   (LSB)" = bits 0-3 (as an open-source ASF info tool's header transcribes it). Reading:
//!   **Type = bits 0-3, Number = bits 4-7.** The ASF specification text itself was not in the
//!   stored material (only the start of its §5 page), so this rests on the convention.
//! - MediaInfoLib (`MediaArea/MediaInfoLib`, `Source/MediaInfo/Multiple/File_Wm_Elements.cpp`,
//!   `File_Wm::Data_Packet`) displays the byte the other way round: Type = `(b >> 4) & 0x0F`,
//!   Number = `b & 0x0F`. It only displays the value (every file carries `00 00`).
//!
//! The two readings conflict and no Windows capture was available. The **sender writes
//! the spec reading** (Type low nibble). The **receiver does not depend on it**: the
//! packet kind is known from the flags byte (Opaque Data Present ⇒ parity), so the
//! nibble that equals the expected Type (1 or 2) is taken as Type and the other as
//! Number; the two readings never disagree on a valid byte (`ecc.rs` has the table).
//!
//! Number is only 4 bits wide, so the parity of a 15-packet span ("Number = span + 1")
//! carries 16 mod 16 = 0; the receiver reads 0 back as span 15.
//!
//! # Real-world quirks served
//!
//! - Windows 2000-2008 R2 send no parity for a final cycle shorter than the span
//!   (note <8>). We follow the SHOULD of §3.1.5.3 instead: [`MsbSender::flush`] closes a
//!   short span with its parity, whose Number (count + 1) tells the receiver the real span.
//! - The Amlogic receiver tells beacons from data by testing the first u32 for
//!   `0x2042534D`; the sender never uses that dwPacketID (it is skipped when counting,
//!   and the receiver counts the same way). [`classify`] itself uses the length (4 bytes).
//! - Receivers (Amlogic, ffmpeg/VLC mmsh) re-pad packets with zeros to the fixed packet
//!   size, so a repaired packet may carry trailing zeros up to the longest packet of its
//!   span; its Packet Length field still tells the real length.

pub mod departures;
mod ecc;
pub mod gso;
mod header;
mod receiver;
mod sender;
mod sink;
#[cfg(test)]
mod tests;
pub mod txtime;

pub use departures::{smoothing_rate, Departures, Smoothing};
pub use header::{classify, Datagram, MsbHeader, BEACON, BEACON_U32, FORMAT_ID_MASK, TOGGLE_BIT};
pub use receiver::{MsbCounters, MsbReceiver, Received};
pub use sender::{beacon, MsbSender, MsbSenderConfig};
pub use sink::{MsbSink, FLUSH_AFTER_IDLE};

/// Largest span [MS-MSB] §2.2.2 allows.
pub const MAX_SPAN: u8 = 15;
/// Largest ASF packet that fits one MSB packet (wPacketSize is a u16 including 8 header bytes).
pub const MAX_ASF_PACKET: usize = 0xFFFF - header::HEADER_LEN;

/// Everything that can go wrong framing or sending MSB packets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsbError {
    #[error("datagram of {len} bytes is neither a 4-byte beacon nor an 8-byte MSB header")]
    TooShort { len: usize },
    #[error("4-byte datagram {found:02x?} is not the beacon \"MSB \"")]
    BadBeacon { found: [u8; 4] },
    #[error("MSB packet {packet_id}: wPacketSize {declared} but the datagram has {actual} bytes")]
    SizeMismatch {
        packet_id: u32,
        declared: u16,
        actual: usize,
    },
    #[error("MSB packet {packet_id}: wStreamID {stream_id:#06x} has reserved bits 11-14 set")]
    ReservedStreamBits { packet_id: u32, stream_id: u16 },
    #[error("MSB packet {packet_id} carries no ASF packet")]
    EmptyAsf { packet_id: u32 },
    #[error(
        "MSB packet {packet_id}: parity packet with unusable error correction bytes {ecc:02x?}"
    )]
    BadParity { packet_id: u32, ecc: Vec<u8> },
    #[error("ASF packet of {len} bytes: must be 1..={max} bytes to fit an MSB packet", max = MAX_ASF_PACKET)]
    PacketSize { len: usize },
    #[error("ASF packet has Opaque Data Present set (flags {flags:#04x}); receivers would drop it as parity")]
    OpaqueInput { flags: u8 },
    #[error("FEC span {0} is out of range 0..=15 (0 disables FEC)")]
    BadSpan(u8),
    #[error("format id {0:#x} does not fit the 11 bits of wStreamID")]
    BadFormatId(u16),
    #[error("no format id set: call MsbSender::set_format before push")]
    NoFormat,
}

/// The position (Number, 1-based) of a data packet in its FEC span, read from its Error
/// Correction Data; `None` for parity packets and packets outside FEC.
pub fn data_span_position(asf: &[u8]) -> Option<u8> {
    match (asf.first(), asf.get(1)) {
        (Some(&flags), Some(&b)) if flags & 0x90 == 0x80 => ecc::number_of(b, 1),
        _ => None,
    }
}

/// A 24-byte control message ([`gso::gso_cmsg`], [`txtime::txtime_cmsg`]) as the u64 words of
/// a control buffer: `msg_control` must be aligned for `cmsghdr`.
pub fn cmsg_words(bytes: &[u8; 24]) -> [u64; 3] {
    let mut words = [0u64; 3];
    for (w, c) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        *w = u64::from_ne_bytes(b);
    }
    words
}
