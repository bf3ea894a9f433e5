//! Format IDs: the 11-bit number that names an ASF header in the .nsc (`Format<N>` Key) and in
//! every MSB packet (wStreamID bits 0–10) ([MS-MSB] §2.2.1.4, §2.2.4).
//!
//! The spec allows any 11-bit value as long as each header in one file has its own, and suggests
//! a hash of the header so that identical headers are listed once. We use:
//! - 32-bit FNV-1a over the header bytes (byte-oriented, so the same on every platform and run),
//! - folded to 11 bits by XOR: `(h ^ (h >> 11) ^ (h >> 22)) & 0x7FF`,
//! - with 0 replaced by 1. 0 is a legal Format ID, but Key 0 is what every non-header value
//!   carries ([MS-MSB] §2.2.1.3.1), so keeping it out makes a Format with Key 0 in a file a
//!   visible sign of a foreign or broken writer.
//!
//! Two different headers can still fold to the same ID; [`FormatIds`] resolves that by probing
//! upwards (wrapping within 1..=0x7FF) while keeping identical headers on one ID.

use super::NscError;

/// Largest Format ID (11 bits).
pub const MAX_FORMAT_ID: u16 = 0x7FF;

/// 32-bit FNV-1a.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The Format ID for an ASF header (Header Object plus the 50-byte Data Object head):
/// FNV-1a folded to 11 bits, never 0. Stable across runs and platforms.
pub fn format_id(header: &[u8]) -> u16 {
    let h = fnv1a32(header);
    let folded = ((h ^ (h >> 11) ^ (h >> 22)) & u32::from(MAX_FORMAT_ID)) as u16;
    if folded == 0 {
        1
    } else {
        folded
    }
}

/// The next ID after `id` in the cycle 1..=0x7FF.
fn next_id(id: u16) -> u16 {
    if id >= MAX_FORMAT_ID {
        1
    } else {
        id + 1
    }
}

/// A distinct Format ID for `header` given IDs already `taken`: its hash ID if free, else the
/// next free one upwards (wrapping, skipping 0). `None` when all 2047 IDs are taken.
pub fn distinct_format_id(header: &[u8], taken: &[u16]) -> Option<u16> {
    let mut id = format_id(header);
    for _ in 0..MAX_FORMAT_ID {
        if !taken.contains(&id) {
            return Some(id);
        }
        id = next_id(id);
    }
    None
}

/// Assigns Format IDs to the headers of one station file: identical headers share one ID,
/// different headers always get different IDs.
#[derive(Debug, Default, Clone)]
pub struct FormatIds {
    assigned: Vec<(u16, Vec<u8>)>,
}

impl FormatIds {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ID for `header`, assigning a new one if this header was not seen before.
    pub fn id_for(&mut self, header: &[u8]) -> Result<u16, NscError> {
        if let Some((id, _)) = self.assigned.iter().find(|(_, h)| h == header) {
            return Ok(*id);
        }
        let taken: Vec<u16> = self.assigned.iter().map(|(id, _)| *id).collect();
        let id = distinct_format_id(header, &taken).ok_or(NscError::FormatIdsExhausted)?;
        self.assigned.push((id, header.to_vec()));
        Ok(id)
    }

    /// The (ID, header) pairs in assignment order.
    pub fn assigned(&self) -> impl Iterator<Item = (u16, &[u8])> {
        self.assigned.iter().map(|(id, h)| (*id, h.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pinned_values() {
        // Cross-checked with an independent script; a change here breaks every published
        // .nsc whose receivers cached the old IDs, so these values are part of the contract.
        assert_eq!(fnv1a32(b""), 0x811C_9DC5);
        assert_eq!(format_id(b""), 1106);
        assert_eq!(format_id(b"a"), 825);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(format_id(&all), 1548);
    }

    #[test]
    fn collision_is_resolved() {
        // Find two different inputs with the same hash ID.
        let base = format_id(&[0]);
        let other = (1u32..)
            .map(|i| i.to_le_bytes().to_vec())
            .find(|h| format_id(h) == base)
            .unwrap();
        let mut ids = FormatIds::new();
        let a = ids.id_for(&[0]).unwrap();
        let b = ids.id_for(&other).unwrap();
        assert_eq!(a, base);
        assert_eq!(b, next_id(base));
        assert_eq!(
            ids.id_for(&[0]).unwrap(),
            a,
            "identical header keeps its ID"
        );
        assert_eq!(ids.assigned().count(), 2);
    }

    #[test]
    fn probing_wraps_and_exhausts() {
        let h = b"x";
        assert!(format_id(h) > 1);
        // Everything from the hash ID upwards is taken: the search wraps to 1.
        let taken: Vec<u16> = (2..=MAX_FORMAT_ID).collect();
        assert_eq!(distinct_format_id(h, &taken), Some(1));
        let all: Vec<u16> = (1..=MAX_FORMAT_ID).collect();
        assert_eq!(distinct_format_id(h, &all), None);
    }

    proptest! {
        #[test]
        fn always_eleven_bits_nonzero(h in proptest::collection::vec(any::<u8>(), 0..512)) {
            let id = format_id(&h);
            prop_assert!((1..=MAX_FORMAT_ID).contains(&id));
        }

        #[test]
        fn distinct_headers_distinct_ids(hs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 1..64)) {
            let mut ids = FormatIds::new();
            let got: Vec<u16> = hs.iter().map(|h| ids.id_for(h).unwrap()).collect();
            for (i, a) in hs.iter().enumerate() {
                for (j, b) in hs.iter().enumerate() {
                    prop_assert_eq!(a == b, got[i] == got[j]);
                }
            }
        }
    }
}
