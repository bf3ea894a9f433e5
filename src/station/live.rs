//! The live input: how a network source gets its bytes from the shell.
//!
//! Why: a file playlist reads its own media, but a live station's media arrives on
//! connections the shell owns — an encoder's push on the HTTP listener today; a pull from an
//! encoder or an upstream station, or a multicast receiver, tomorrow. Those feeders parse
//! what they receive (sans-I/O, in their protocol's module) and hand the result to the
//! station's [`LiveInput`]: a header, data packets, and the end of the feed. The station's
//! source ([`crate::source::live::LiveSource`], wrapped in the fallback switch,
//! [`crate::source::fallback::Fallback`]) takes them out on its next poll. One type for every
//! live source: a new source type only writes a feeder.
//!
//! Rules it keeps:
//!
//! - **One feeder at a time.** A feeder [`LiveInput::claim`]s the input and gets a
//!   [`FeederId`]; a second claim is refused with who holds it ([`Busy`]) and the first is
//!   untouched. Everything a feeder hands in carries its id; what a former feeder sends after
//!   it lost the input is ignored.
//! - **Parking.** A feeder whose connection dropped may keep its claim for a while
//!   ([`LiveInput::park`]; [MS-WMHTTP] §3.2.7.1: an encoder resumes with the same `push-id`
//!   within the Idle timeout) and [`LiveInput::resume`] it with the key it claimed with. The
//!   claim ends at the deadline ([`LiveInput::expire`]).
//! - **Bounded memory.** At most [`MAX_QUEUED_BYTES`] wait for the source; a packet beyond
//!   that is dropped and counted (the source is polled every loop turn, so this only happens
//!   when the station cannot keep up at all). Headers are never dropped.
//!
//! Pure and single-threaded: the shell and the station share it through an `Rc` (one event
//! loop thread); `now` is a parameter.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::asf::{AsfHeader, DataHead};

/// Bytes of packets waiting for the source at most.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;

/// What a feeder handed in, in order.
#[derive(Debug)]
pub enum LiveEvent {
    /// The feed's ASF header (first, and at every header change).
    Header {
        header: Box<AsfHeader>,
        data: DataHead,
        /// Who sent it, for logs and status (`push from 127.0.0.1:4242`).
        origin: String,
    },
    /// One data packet as received (its ASF times are the feeder's own).
    Packet(Vec<u8>),
    /// The feed ended (encoder gone, end of stream, connection lost past its grace).
    Gone { reason: String },
}

/// A feeder's hold on the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeederId(u64);

/// The input is held by another feeder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("station {station} is already fed by {holder}")]
pub struct Busy {
    pub station: String,
    /// The holder's description (its peer address).
    pub holder: String,
}

#[derive(Debug)]
struct Feeder {
    id: FeederId,
    /// The key a dropped feeder resumes with (a WMHTTP `push-id`); None: it cannot resume.
    key: Option<String>,
    peer: String,
    /// Parked (its connection gone) until this instant.
    parked_until: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    station: String,
    queue: VecDeque<LiveEvent>,
    queued_bytes: usize,
    feeder: Option<Feeder>,
    next_id: u64,
    dropped: u64,
    /// Headers handed in so far (a feeder's first one included).
    headers: u64,
    /// The station stopped (removed or restarted by a reload): feeders must end.
    closed: bool,
}

/// A station's live input, shared by the shell's feeder and the station's source; see the
/// module doc.
#[derive(Debug, Clone)]
pub struct LiveInput(Rc<RefCell<Inner>>);

impl LiveInput {
    pub fn new(station: &str) -> Self {
        LiveInput(Rc::new(RefCell::new(Inner {
            station: station.to_string(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            feeder: None,
            next_id: 1,
            dropped: 0,
            headers: 0,
            closed: false,
        })))
    }

    /// The station's name.
    pub fn station(&self) -> String {
        self.0.borrow().station.clone()
    }

    /// Takes the input for a new feeder from `peer`, resumable with `key` when given.
    pub fn claim(&self, peer: &str, key: Option<String>) -> Result<FeederId, Busy> {
        let mut s = self.0.borrow_mut();
        if s.closed {
            return Err(Busy {
                station: s.station.clone(),
                holder: "nobody: the station stopped".into(),
            });
        }
        if let Some(f) = &s.feeder {
            return Err(Busy {
                station: s.station.clone(),
                holder: f.peer.clone(),
            });
        }
        let id = FeederId(s.next_id);
        s.next_id += 1;
        s.feeder = Some(Feeder {
            id,
            key,
            peer: peer.to_string(),
            parked_until: None,
        });
        Ok(id)
    }

    /// Whether `id` still holds the input.
    pub fn holds(&self, id: FeederId) -> bool {
        self.0.borrow().feeder.as_ref().is_some_and(|f| f.id == id)
    }

    /// Who holds the input (its peer), if anyone.
    pub fn holder(&self) -> Option<String> {
        self.0.borrow().feeder.as_ref().map(|f| f.peer.clone())
    }

    /// The feeder's connection is gone but it may come back with its key until `until`.
    pub fn park(&self, id: FeederId, until: Instant) {
        let mut s = self.0.borrow_mut();
        if let Some(f) = s.feeder.as_mut().filter(|f| f.id == id) {
            f.parked_until = Some(until);
        }
    }

    /// A feeder from `peer` presenting `key`: it takes over the claim made with that key
    /// (parked or not: the old connection may not have noticed its loss yet). None when no
    /// claim has that key.
    pub fn resume(&self, key: &str, peer: &str) -> Option<FeederId> {
        let mut s = self.0.borrow_mut();
        let next = s.next_id;
        let f = s
            .feeder
            .as_mut()
            .filter(|f| f.key.as_deref() == Some(key))?;
        let id = FeederId(next);
        f.id = id;
        f.peer = peer.to_string();
        f.parked_until = None;
        s.next_id += 1;
        Some(id)
    }

    /// The key the current claim resumes with.
    pub fn key_of(&self, id: FeederId) -> Option<String> {
        let s = self.0.borrow();
        s.feeder
            .as_ref()
            .filter(|f| f.id == id)
            .and_then(|f| f.key.clone())
    }

    /// Ends the claim of `id` (no-op if it no longer holds the input), telling the source.
    pub fn release(&self, id: FeederId, reason: &str) {
        let mut s = self.0.borrow_mut();
        if s.feeder.as_ref().is_some_and(|f| f.id == id) {
            s.feeder = None;
            s.queue.push_back(LiveEvent::Gone {
                reason: reason.to_string(),
            });
        }
    }

    /// Ends a parked claim whose time is up; returns the instant it will run out otherwise.
    pub fn expire(&self, now: Instant) -> Option<Instant> {
        let until = self.0.borrow().feeder.as_ref()?.parked_until?;
        if until > now {
            return Some(until);
        }
        let id = self.0.borrow().feeder.as_ref().map(|f| f.id)?;
        self.release(id, "the encoder did not come back within the idle timeout");
        None
    }

    /// A header from feeder `id`; false when `id` does not hold the input.
    pub fn header(
        &self,
        id: FeederId,
        header: Box<AsfHeader>,
        data: DataHead,
        origin: String,
    ) -> bool {
        let mut s = self.0.borrow_mut();
        if !s.feeder.as_ref().is_some_and(|f| f.id == id) {
            return false;
        }
        s.headers += 1;
        s.queue.push_back(LiveEvent::Header {
            header,
            data,
            origin,
        });
        true
    }

    /// A data packet from feeder `id`; false when it was not taken (`id` does not hold the
    /// input, or the queue is full: counted as dropped).
    pub fn packet(&self, id: FeederId, bytes: Vec<u8>) -> bool {
        let mut s = self.0.borrow_mut();
        if !s.feeder.as_ref().is_some_and(|f| f.id == id) {
            return false;
        }
        if s.queued_bytes + bytes.len() > MAX_QUEUED_BYTES {
            s.dropped += 1;
            return false;
        }
        s.queued_bytes += bytes.len();
        s.queue.push_back(LiveEvent::Packet(bytes));
        true
    }

    /// The next event for the source.
    pub fn pop(&self) -> Option<LiveEvent> {
        let mut s = self.0.borrow_mut();
        let ev = s.queue.pop_front()?;
        if let LiveEvent::Packet(b) = &ev {
            s.queued_bytes = s.queued_bytes.saturating_sub(b.len());
        }
        Some(ev)
    }

    /// Whether events wait for the source (the shell services the station then).
    pub fn has_pending(&self) -> bool {
        !self.0.borrow().queue.is_empty()
    }

    /// The station stopped: every claim ends, nothing more is taken, feeders end their
    /// connections ([`LiveInput::is_closed`]).
    pub fn close(&self) {
        let mut s = self.0.borrow_mut();
        s.closed = true;
        s.feeder = None;
        s.queue.clear();
        s.queued_bytes = 0;
    }

    /// Whether the station stopped.
    pub fn is_closed(&self) -> bool {
        self.0.borrow().closed
    }

    /// Packets dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.borrow().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_feeder_at_a_time_and_a_parked_one_resumes_by_key() {
        let input = LiveInput::new("live");
        let a = input.claim("10.0.0.1:1", Some("k1".into())).unwrap();
        let busy = input.claim("10.0.0.2:1", None).unwrap_err();
        assert_eq!(busy.holder, "10.0.0.1:1");
        assert!(input.holds(a));
        let t0 = Instant::now();
        input.park(a, t0 + Duration::from_secs(60));
        assert_eq!(input.expire(t0), Some(t0 + Duration::from_secs(60)));
        assert!(input.resume("wrong", "x").is_none());
        let b = input.resume("k1", "10.0.0.1:2").unwrap();
        assert!(!input.holds(a), "the old connection's id is void");
        assert!(input.holds(b));
        assert!(!input.packet(a, vec![1]), "ignored from a former feeder");
        assert!(input.packet(b, vec![1]));
        input.park(b, t0);
        assert_eq!(input.expire(t0), None);
        assert!(input.holder().is_none());
        assert!(matches!(input.pop(), Some(LiveEvent::Packet(_))));
        assert!(matches!(input.pop(), Some(LiveEvent::Gone { .. })));
        assert!(input.claim("10.0.0.2:1", None).is_ok());
    }

    #[test]
    fn a_closed_input_takes_nothing_and_no_feeder() {
        let input = LiveInput::new("live");
        let id = input.claim("p", None).unwrap();
        input.close();
        assert!(input.is_closed());
        assert!(!input.holds(id));
        assert!(!input.packet(id, vec![1]));
        assert!(input.claim("q", None).is_err());
        assert!(!input.has_pending());
    }

    #[test]
    fn the_queue_is_bounded() {
        let input = LiveInput::new("live");
        let id = input.claim("p", None).unwrap();
        let n = MAX_QUEUED_BYTES / 3200;
        for _ in 0..n {
            assert!(input.packet(id, vec![0; 3200]));
        }
        assert!(!input.packet(id, vec![0; 3200]));
        assert_eq!(input.dropped(), 1);
        input.pop();
        assert!(input.packet(id, vec![0; 3200]));
    }
}
