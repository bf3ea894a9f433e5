//! Anti-amplification for RTP over UDP: a client makes the server send datagrams to a port it
//! names in its SETUP, so until the client has shown it receives there (a datagram from one of
//! its RTP/RTCP ports: FFmpeg's and GStreamer's punch packets, an RTCP receiver report) only a
//! small budget is sent. A TCP connection whose SETUP names another program's port then yields
//! a few datagrams, not a stream. Measured: FFmpeg 5.1 punches before PLAY, GStreamer 1.22
//! within a millisecond of it, so neither loses a packet.
//!
//! The address itself is already the client's own: the sessions send only to the IP the
//! control connection came from, never to an RTSP `destination=` or another MMS host.
//!
//! MMSU (MMS data over UDP) is not gated: its only client, VLC, never sends anything from its
//! data port (measured: with this gate on MMSU, VLC's `mmsu://` dump in tests/mms_clients.rs
//! got 28 of 250 video frames and the test failed), and MMS has no echo to prove it by. What
//! bounds MMSU instead: the IP is the one that completed the TCP handshake, one connection
//! gets one stream at the station's bit rate, and connections per IP are limited
//! (`limits.max_clients_per_ip`).
//!
//! Pure: the session calls [`ReturnGate::heard`] from `Session::on_datagram` and
//! [`ReturnGate::pass`] for each datagram it hands the shell.

/// Bytes sent to an unverified UDP destination before the gate closes (about 45 datagrams of
/// 1450 bytes): the header and first packets reach a client that has not spoken yet.
pub const UNVERIFIED_BYTES: u64 = 64 << 10;

/// What one client's UDP destination has been sent while unverified, and what was held back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnGate {
    verified: bool,
    /// Bytes sent while unverified.
    sent: u64,
    /// Datagrams dropped because the budget was spent.
    dropped: u64,
}

impl ReturnGate {
    pub fn new() -> ReturnGate {
        ReturnGate::default()
    }

    /// A datagram arrived from the client's UDP port: it receives there.
    pub fn heard(&mut self) {
        self.verified = true;
    }

    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// May a datagram of `len` bytes go out? Counts it either way.
    pub fn pass(&mut self, len: usize) -> bool {
        if self.verified {
            return true;
        }
        let len = len as u64;
        if self.sent + len <= UNVERIFIED_BYTES {
            self.sent += len;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Datagrams held back so far (for the session's end line).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_until_heard() {
        let mut g = ReturnGate::new();
        let n = (0..1000).filter(|_| g.pass(1400)).count() as u64;
        assert_eq!(n, UNVERIFIED_BYTES / 1400);
        assert_eq!(g.dropped(), 1000 - n);
        assert!(!g.is_verified());
        g.heard();
        assert!((0..1000).all(|_| g.pass(1400)));
        assert_eq!(g.dropped(), 1000 - n);
    }
}
