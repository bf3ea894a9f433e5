//! A spare file descriptor held for the day the process runs out of them. When `accept`
//! fails with EMFILE/ENFILE the pending connection stays in the listener's queue; with
//! edge-triggered polling nothing wakes the listener again, and a full queue drops every new
//! SYN, so the listener would be dead for good. Releasing the spare lets the loop accept the
//! pending connection and close it at once (a clean refusal), then take the spare back.

use std::fs::File;
use std::io;

/// The spare descriptor: `/dev/null`, opened at start.
#[derive(Debug)]
pub struct FdReserve {
    spare: Option<File>,
}

impl FdReserve {
    /// Opens the spare; without one (already out of descriptors) the reserve starts empty and
    /// [`FdReserve::restore`] tries again later.
    pub fn open() -> FdReserve {
        FdReserve {
            spare: File::open("/dev/null").ok(),
        }
    }

    /// Closes the spare so the next descriptor-creating call can succeed. False when there
    /// was none to close.
    pub fn release(&mut self) -> bool {
        self.spare.take().is_some()
    }

    /// Takes the spare back if it was released; false when there is still no descriptor for it.
    pub fn restore(&mut self) -> bool {
        if self.spare.is_none() {
            self.spare = File::open("/dev/null").ok();
        }
        self.spare.is_some()
    }

    pub fn is_held(&self) -> bool {
        self.spare.is_some()
    }
}

/// True for the accept errors that mean "out of descriptors (or kernel memory)", after which
/// the pending connection is still queued.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_and_restore() {
        let mut r = FdReserve::open();
        assert!(r.is_held());
        assert!(r.release());
        assert!(!r.is_held());
        assert!(!r.release());
        assert!(r.restore());
        assert!(r.is_held());
    }

    #[test]
    fn exhaustion_errors() {
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        assert!(!is_exhaustion(&io::Error::from(io::ErrorKind::WouldBlock)));
    }
}
