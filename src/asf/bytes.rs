//! A bounds-checked little-endian cursor over a byte slice: the only way the ASF parsers read
//! input, so that every read is checked once, here (the `ASF_HAVE` habit of VLC's libasf).

use super::{AsfError, Guid};

/// Reads little-endian fields from a slice; every read fails with [`AsfError::Truncated`]
/// instead of panicking when the bytes are not there.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Added to `pos` in error messages, so errors point into the enclosing buffer.
    base: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A cursor whose error offsets are reported relative to `base`.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Cursor { buf, pos: 0, base }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The absolute offset (base + pos) for error messages.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AsfError> {
        if n > self.remaining() {
            return Err(AsfError::Truncated {
                what,
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), AsfError> {
        self.take(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], AsfError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, AsfError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, AsfError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, AsfError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, AsfError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn guid(&mut self, what: &'static str) -> Result<Guid, AsfError> {
        Ok(Guid(self.array(what)?))
    }

    /// Reads a GUID that must be `expected` (an object's identity).
    pub fn expect_guid(&mut self, expected: Guid, what: &'static str) -> Result<(), AsfError> {
        let offset = self.offset();
        let found = self.guid(what)?;
        if found != expected {
            return Err(AsfError::BadGuid {
                what,
                offset,
                expected,
                found,
            });
        }
        Ok(())
    }

    /// Reads a field whose width is given by a 2-bit ASF length type: 0 = absent (value 0),
    /// 1 = BYTE, 2 = WORD, 3 = DWORD (§3.1).
    pub fn var(&mut self, length_type: u8, what: &'static str) -> Result<u32, AsfError> {
        match length_type & 3 {
            0 => Ok(0),
            1 => Ok(u32::from(self.u8(what)?)),
            2 => Ok(u32::from(self.u16(what)?)),
            _ => self.u32(what),
        }
    }
}

/// The width in bytes of a field with the given 2-bit length type.
pub fn var_width(length_type: u8) -> usize {
    match length_type & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    }
}

/// Appends `value` with the width of `length_type` (truncating is the caller's bug: callers
/// choose a type wide enough, see [`length_type_for`]).
pub fn put_var(out: &mut Vec<u8>, length_type: u8, value: u32) {
    match length_type & 3 {
        0 => {}
        1 => out.push(value as u8),
        2 => out.extend_from_slice(&(value as u16).to_le_bytes()),
        _ => out.extend_from_slice(&value.to_le_bytes()),
    }
}

/// The narrowest non-absent length type that holds `value` (BYTE, WORD or DWORD).
pub fn length_type_for(value: u32) -> u8 {
    if value <= 0xFF {
        1
    } else if value <= 0xFFFF {
        2
    } else {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut c = Cursor::with_base(&[1, 2, 3], 100);
        assert_eq!(c.u16("a").unwrap(), 0x0201);
        let e = c.u16("b").unwrap_err();
        assert_eq!(
            e,
            AsfError::Truncated {
                what: "b",
                offset: 102,
                needed: 2,
                available: 1
            }
        );
        assert_eq!(c.u8("c").unwrap(), 3);
        assert!(c.take(usize::MAX, "d").is_err());
    }

    #[test]
    fn variable_width_fields() {
        let data = [0xAA, 0x01, 0x02, 0x01, 0x02, 0x03, 0x04];
        let mut c = Cursor::new(&data);
        assert_eq!(c.var(0, "x").unwrap(), 0);
        assert_eq!(c.var(1, "x").unwrap(), 0xAA);
        assert_eq!(c.var(2, "x").unwrap(), 0x0201);
        assert_eq!(c.var(3, "x").unwrap(), 0x04030201);
        let mut out = Vec::new();
        put_var(&mut out, 2, 0x0201);
        assert_eq!(out, [1, 2]);
        assert_eq!(length_type_for(255), 1);
        assert_eq!(length_type_for(256), 2);
        assert_eq!(length_type_for(70_000), 3);
    }
}
