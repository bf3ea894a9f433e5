//! What every load-client core shares: how a client can fail ([`Fault`]), and [`Tail`], the
//! bounded remainder of a byte stream that did not yet make a whole PDU.
//!
//! The cores (`mmsh.rs`, `mmst.rs`, `rtsp.rs`) are sans-I/O: bytes (and `now` where time
//! matters) in, bytes to send out, counters read by the report. The event loop in
//! `main.rs` owns the sockets; it maps a [`Fault`] and a closed socket onto the
//! failure summary (connect errors, handshake failures, closed, bad framing).
//!
//! [`Continuity`] follows the per-packet counters a client can check without decoding media
//! (MMS LocationId, RTP sequence numbers): a jump is a packet the server numbered but the
//! client never saw, which the soak benchmark reports as a gap.

use std::fmt;

/// Why a client core gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The server refused or answered out of order before media started.
    Handshake(String),
    /// The server's byte stream cannot be framed (after media started).
    Framing(String),
    /// The server ended the stream cleanly ($E, MMS 0x1E).
    Ended(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Handshake(r) => write!(f, "handshake: {r}"),
            Fault::Framing(r) => write!(f, "framing: {r}"),
            Fault::Ended(r) => write!(f, "ended: {r}"),
        }
    }
}

/// What a framer says about the front of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole PDU of this many bytes starts the input.
    Whole(usize),
    /// More bytes are needed.
    Partial,
}

/// The unframed remainder of a stream. Input is framed in place from the read buffer; only an
/// incomplete last PDU is kept, so a client holds at most one PDU (bounded by the framer).
#[derive(Debug, Default)]
pub struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    /// Frames `input` (after any kept remainder) with `frame`, hands each whole PDU to `on_pdu`
    /// and keeps the incomplete rest. Stops at the first error of either callback.
    pub fn feed<F, P>(&mut self, input: &[u8], mut frame: F, mut on_pdu: P) -> Result<(), Fault>
    where
        F: FnMut(&[u8]) -> Result<Frame, Fault>,
        P: FnMut(&[u8]) -> Result<(), Fault>,
    {
        let kept = std::mem::take(&mut self.bytes);
        let joined;
        let data: &[u8] = if kept.is_empty() {
            input
        } else {
            let mut k = kept;
            k.extend_from_slice(input);
            joined = k;
            &joined
        };
        let mut at = 0;
        while at < data.len() {
            let rest = data.get(at..).unwrap_or_default();
            match frame(rest)? {
                Frame::Whole(n) if n > 0 && n <= rest.len() => {
                    on_pdu(rest.get(..n).unwrap_or_default())?;
                    at += n;
                }
                Frame::Whole(n) => {
                    return Err(Fault::Framing(format!(
                        "framer claimed {n} bytes of {}",
                        rest.len()
                    )))
                }
                Frame::Partial => break,
            }
        }
        self.bytes = data.get(at..).unwrap_or_default().to_vec();
        Ok(())
    }

    /// Bytes kept from an incomplete PDU.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// A counter that must go up by exactly one per packet, modulo `2^bits` (32 for MMS LocationId,
/// 16 for RTP sequence numbers). The first value after [`Continuity::new`] or
/// [`Continuity::restart`] is taken as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuity {
    mask: u32,
    last: Option<u32>,
    /// Values that were not the expected successor.
    pub jumps: u64,
    /// The most recent jump: (expected, got).
    pub last_jump: Option<(u32, u32)>,
}

impl Continuity {
    /// A counter of `bits` bits (1..=32).
    pub fn new(bits: u32) -> Self {
        Continuity {
            mask: u32::MAX >> (32 - bits.clamp(1, 32)),
            last: None,
            jumps: 0,
            last_jump: None,
        }
    }

    /// The next value seen; true when it was the expected one (or the first).
    pub fn next(&mut self, v: u32) -> bool {
        let v = v & self.mask;
        let ok = match self.last {
            None => true,
            Some(l) => {
                let expected = l.wrapping_add(1) & self.mask;
                if v != expected {
                    self.jumps += 1;
                    self.last_jump = Some((expected, v));
                }
                v == expected
            }
        };
        self.last = Some(v);
        ok
    }

    /// The sender restarts its numbering (MMSH after `$C`): the next value is not checked.
    pub fn restart(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuity_counts_jumps_and_wraps() {
        let mut c = Continuity::new(16);
        assert!(c.next(65_534));
        assert!(c.next(65_535));
        assert!(c.next(0));
        assert!(!c.next(3));
        assert_eq!((c.jumps, c.last_jump), (1, Some((1, 3))));
        assert!(c.next(4));
        c.restart();
        assert!(c.next(0));
        let mut c = Continuity::new(32);
        assert!(c.next(u32::MAX) && c.next(0));
        assert!(!c.next(0));
        assert_eq!(c.jumps, 1);
    }

    /// Length-prefixed test PDUs: one length byte, then that many bytes.
    fn lp(b: &[u8]) -> Result<Frame, Fault> {
        match b.first() {
            Some(&n) if b.len() > usize::from(n) => Ok(Frame::Whole(usize::from(n) + 1)),
            _ => Ok(Frame::Partial),
        }
    }

    #[test]
    fn pdus_split_anywhere_come_out_whole_and_in_order() {
        let stream = [2u8, b'a', b'b', 0, 3, b'c', b'd', b'e', 1, b'f'];
        for cut in 0..=stream.len() {
            let mut t = Tail::default();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                t.feed(part, lp, |p| {
                    got.push(p.to_vec());
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(got.len(), 4, "cut at {cut}");
            assert_eq!(got[2], [3, b'c', b'd', b'e']);
            assert_eq!(t.len(), 0);
        }
    }

    #[test]
    fn an_incomplete_pdu_is_kept_and_errors_stop_the_feed() {
        let mut t = Tail::default();
        t.feed(&[5, 1, 2], lp, |_| Ok(())).unwrap();
        assert_eq!(t.len(), 3);
        let e = t
            .feed(&[3, 4, 5, 1, 9], lp, |p| {
                Err(Fault::Framing(format!("{} bytes", p.len())))
            })
            .unwrap_err();
        assert_eq!(e, Fault::Framing("6 bytes".into()));
        let bad = |_: &[u8]| Ok(Frame::Whole(100));
        assert!(matches!(
            Tail::default().feed(&[1, 2], bad, |_| Ok(())),
            Err(Fault::Framing(_))
        ));
    }
}
