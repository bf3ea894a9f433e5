//! What every load-client core shares: how a client can fail ([`Fault`]), and [`Tail`], the
//! bounded remainder of a byte stream that did not yet make a whole PDU.
//!
//! The cores (`mmsh.rs`, `mmst.rs`, `rtsp.rs`) are sans-I/O: bytes (and `now` where time
//! matters) in, bytes to send out, counters read by the report. The event loop in
//! `main.rs` owns the sockets; it maps a [`Fault`] and a closed socket onto the
//! failure summary (connect errors, handshake failures, closed, bad framing).

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
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
