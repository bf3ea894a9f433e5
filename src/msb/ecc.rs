//! The ASF Error Correction field as [MS-MSB] §2.2.2 uses it, the parity XOR, and the
//! dwPacketID sequence. Each function does one job so sender and receiver share them.
//!
//! Error Correction Flags (\[ASF\] §5.2.1): bit 7 present, bits 5-6 length type (00),
//! bit 4 Opaque Data Present (parity), bits 0-3 data length (2). Data byte 1 = Type and
//! Number nibbles (see the module doc of `msb` for the layout and its sources), byte 2 =
//! Cycle.
//!
//! Reading the Type/Number byte without trusting either nibble order, given the Type the
//! flags imply (1 for data, 2 for parity): take the nibble equal to that Type as Type and
//! the other as Number. Spec layout `N<<4|T`, MediaInfo layout `T<<4|N`:
//!
//! | byte | spec reading | MediaInfo reading | we read (expect T=1) |
//! |---|---|---|---|
//! | 0x31 | T1 N3 | T3 N1 (invalid for data) | N3 |
//! | 0x13 | T3 N1 (invalid) | T1 N3 | N3 |
//! | 0x11 | T1 N1 | T1 N1 | N1 |
//!
//! A byte where only one reading yields the expected Type is unambiguous; where both do,
//! both nibbles are equal and so is Number.

/// dwPacketID that, read as a u32, equals the beacon "MSB " ([MS-MSB] §2.2.3).
pub(crate) const BEACON_ID: u32 = 0x2042_534D;

/// Error Correction Flags of a data packet: present, length type 00, 2 data bytes.
pub(crate) const FLAGS_DATA: u8 = 0x82;
/// Error Correction Flags of a parity packet: as data plus Opaque Data Present.
pub(crate) const FLAGS_PARITY: u8 = 0x92;
/// Error Correction Present bit.
pub(crate) const FLAG_PRESENT: u8 = 0x80;
/// Opaque Data Present bit.
pub(crate) const FLAG_OPAQUE: u8 = 0x10;
/// Length of Error Correction Flags + Error Correction Data in the usual form.
pub(crate) const ECC_LEN: usize = 3;

/// Error Correction Data Type values ([MS-MSB] §2.2.2).
pub(crate) const TYPE_DATA: u8 = 1;
pub(crate) const TYPE_PARITY: u8 = 2;

/// How an ASF packet starts, as far as FEC is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EccForm {
    /// First byte bit 7 clear: no error-correction field at all.
    Absent,
    /// `0x82 tt cc`: the usual two-byte field, data packet.
    Data,
    /// `0x92 tt cc`: the two-byte field with Opaque Data Present, parity packet.
    Parity,
    /// Present but some other length / length type; layout unknown.
    Other,
}

/// Classifies the Error Correction Flags of an ASF packet (empty packets are `Absent`).
pub(crate) fn ecc_form(asf: &[u8]) -> EccForm {
    match asf.first() {
        None => EccForm::Absent,
        Some(&f) if f & FLAG_PRESENT == 0 => EccForm::Absent,
        Some(&FLAGS_DATA) if asf.len() >= ECC_LEN => EccForm::Data,
        Some(&FLAGS_PARITY) if asf.len() >= ECC_LEN => EccForm::Parity,
        Some(_) => EccForm::Other,
    }
}

/// Packs Type and Number into the first Error Correction Data byte (Type in bits 0-3).
pub(crate) fn type_number_byte(ty: u8, number: u8) -> u8 {
    ((number & 0x0F) << 4) | (ty & 0x0F)
}

/// Reads Number from the first Error Correction Data byte when it carries `expected_type`,
/// accepting either nibble order (see the module doc). `None` if neither nibble matches.
pub(crate) fn number_of(byte: u8, expected_type: u8) -> Option<u8> {
    let (lo, hi) = (byte & 0x0F, byte >> 4);
    if lo == expected_type {
        Some(hi)
    } else if hi == expected_type {
        Some(lo)
    } else {
        None
    }
}

/// ECC bytes of a data packet under EC at `number` (1-based) of its span in `cycle`.
pub(crate) fn data_ecc(number: u8, cycle: u8) -> [u8; ECC_LEN] {
    [FLAGS_DATA, type_number_byte(TYPE_DATA, number), cycle]
}

/// ECC bytes of the parity packet closing a span of `count` data packets in `cycle`.
/// Number is `count + 1` in 4 bits, so a 15-packet span carries 0.
pub(crate) fn parity_ecc(count: u8, cycle: u8) -> [u8; ECC_LEN] {
    [
        FLAGS_PARITY,
        type_number_byte(TYPE_PARITY, count.wrapping_add(1)),
        cycle,
    ]
}

/// ECC bytes of a packet not under EC, and of every packet handed to a demuxer.
pub(crate) fn neutral_ecc() -> [u8; ECC_LEN] {
    [FLAGS_DATA, 0, 0]
}

/// Span announced by a parity packet's Number (`span + 1`, mod 16); `None` for Number 1
/// (a server using "Number = 1 everywhere" gives no positions).
pub(crate) fn span_from_parity_number(number: u8) -> Option<u8> {
    match number {
        0 => Some(15),
        1 => None,
        n => Some(n - 1),
    }
}

/// XORs `body` into `acc`, zero-extending `acc` to the longer of the two.
pub(crate) fn xor_into(acc: &mut Vec<u8>, body: &[u8]) {
    if acc.len() < body.len() {
        acc.resize(body.len(), 0);
    }
    for (a, b) in acc.iter_mut().zip(body) {
        *a ^= b;
    }
}

/// The dwPacketID after `id`, skipping [`BEACON_ID`].
pub(crate) fn id_succ(id: u32) -> u32 {
    let next = id.wrapping_add(1);
    if next == BEACON_ID {
        next.wrapping_add(1)
    } else {
        next
    }
}

/// The dwPacketID `k` steps before `id`, skipping [`BEACON_ID`].
pub(crate) fn id_back(mut id: u32, k: u8) -> u32 {
    for _ in 0..k {
        id = id.wrapping_sub(1);
        if id == BEACON_ID {
            id = id.wrapping_sub(1);
        }
    }
    id
}

/// Number of [`id_succ`] steps from `from` to `to` (wrapping; huge means "behind").
pub(crate) fn id_steps(from: u32, to: u32) -> u32 {
    let d = to.wrapping_sub(from);
    let to_beacon = BEACON_ID.wrapping_sub(from);
    if to_beacon != 0 && to_beacon < d {
        d - 1
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_number_layout_is_type_in_low_nibble() {
        assert_eq!(type_number_byte(TYPE_DATA, 3), 0x31);
        assert_eq!(type_number_byte(TYPE_PARITY, 11), 0xB2);
        assert_eq!(data_ecc(10, 7), [0x82, 0xA1, 7]);
        assert_eq!(parity_ecc(10, 7), [0x92, 0xB2, 7]);
        // span 15: Number 16 wraps to 0
        assert_eq!(parity_ecc(15, 0), [0x92, 0x02, 0]);
        assert_eq!(neutral_ecc(), [0x82, 0, 0]);
    }

    #[test]
    fn number_reading_accepts_both_nibble_orders() {
        assert_eq!(number_of(0x31, TYPE_DATA), Some(3));
        assert_eq!(number_of(0x13, TYPE_DATA), Some(3));
        assert_eq!(number_of(0x11, TYPE_DATA), Some(1));
        assert_eq!(number_of(0xB2, TYPE_PARITY), Some(11));
        assert_eq!(number_of(0x2B, TYPE_PARITY), Some(11));
        assert_eq!(number_of(0x02, TYPE_PARITY), Some(0));
        assert_eq!(number_of(0x20, TYPE_PARITY), Some(0));
        assert_eq!(number_of(0x00, TYPE_DATA), None);
        assert_eq!(number_of(0x34, TYPE_DATA), None);
        // every valid spec-layout byte reads back its Number
        for n in 0..16 {
            assert_eq!(
                number_of(type_number_byte(TYPE_DATA, n), TYPE_DATA),
                Some(n)
            );
            assert_eq!(
                number_of(type_number_byte(TYPE_PARITY, n), TYPE_PARITY),
                Some(n)
            );
        }
    }

    #[test]
    fn parity_number_to_span() {
        assert_eq!(span_from_parity_number(11), Some(10));
        assert_eq!(span_from_parity_number(2), Some(1));
        assert_eq!(span_from_parity_number(0), Some(15));
        assert_eq!(span_from_parity_number(1), None);
    }

    #[test]
    fn ecc_forms() {
        assert_eq!(ecc_form(&[]), EccForm::Absent);
        assert_eq!(ecc_form(&[0x5D, 0, 0]), EccForm::Absent);
        assert_eq!(ecc_form(&[0x82, 0, 0, 1]), EccForm::Data);
        assert_eq!(ecc_form(&[0x92, 0xB2, 0]), EccForm::Parity);
        assert_eq!(ecc_form(&[0x82, 0]), EccForm::Other);
        assert_eq!(ecc_form(&[0x84, 0, 0, 0, 0]), EccForm::Other);
    }

    #[test]
    fn xor_zero_extends() {
        let mut acc = vec![0x0F, 0xF0];
        xor_into(&mut acc, &[0xFF, 0xFF, 0x55]);
        assert_eq!(acc, [0xF0, 0x0F, 0x55]);
        xor_into(&mut acc, &[0xF0]);
        assert_eq!(acc, [0x00, 0x0F, 0x55]);
    }

    #[test]
    fn ids_skip_the_beacon_value() {
        assert_eq!(id_succ(5), 6);
        assert_eq!(id_succ(u32::MAX), 0);
        assert_eq!(id_succ(BEACON_ID - 1), BEACON_ID + 1);
        assert_eq!(id_back(BEACON_ID + 1, 1), BEACON_ID - 1);
        assert_eq!(id_back(1, 2), u32::MAX);
        assert_eq!(id_steps(BEACON_ID - 1, BEACON_ID + 1), 1);
        assert_eq!(id_steps(u32::MAX, 1), 2);
        assert_eq!(id_steps(7, 7), 0);
        assert!(id_steps(8, 7) > 1 << 31);
        for start in [0u32, BEACON_ID - 3, u32::MAX - 2] {
            let mut id = start;
            for k in 0..20u8 {
                assert_eq!(id_steps(start, id), u32::from(k));
                assert_eq!(id_back(id, k), start);
                id = id_succ(id);
            }
        }
    }
}
