//! The MSB receiver: validates framing, puts data packets back in dwPacketID order,
//! detects loss and rebuilds one lost packet per span from its parity packet
//! ([MS-MSB] §3.2.5.2, §3.2.5.3; the spec gives no loss rule, so this is ours).
//!
//! - Order: packets are delivered by dwPacketID (wrapping, 0x2042534D skipped as the
//!   sender skips it). In the loss-free case each packet is delivered as it arrives.
//! - Loss: a gap is repaired as soon as the missing packet's cycle has its parity and
//!   every other packet (even before a later packet shows the gap, so a lost last
//!   packet of a stream is rebuilt too). It is given up (a [`Received::Lost`]) when
//!   waiting would hold back more than one span: more than 15 packets held, or a held
//!   packet more than 31 ids past the gap. A cycle with two holes waits the same way,
//!   since reordered packets may still fill one; a gap followed by a packet outside
//!   FEC, in a cycle we know nothing of, is given up at once.
//! - Cycles: each data packet's Cycle and Number give its span's first id
//!   (`id - (Number - 1)`); the parity's dwPacketID is the span's last id and its Number
//!   (`span + 1`, mod 16) the span. Each cycle keeps a running XOR of every packet seen
//!   (data and parity) after the 3 ECC bytes; with one hole that XOR *is* the hole.
//!   At most 4 cycles are tracked; older ones are forgotten.
//! - Joining: delivery starts at the first id of the span of the first data packet seen,
//!   so that span's packets may still arrive out of order. Holes before the first
//!   delivery are join artefacts: rebuilt if the parity allows, else skipped without a
//!   `Lost`. (Losing a stream's very first packet with span 1 looks like joining later.)
//! - Duplicates and reordering within a span are absorbed; packets for ids already
//!   delivered or given up are dropped. A jump of more than 1024 ids either way is a
//!   sender restart: held packets are delivered and tracking restarts at the new id.
//! - Delivered packets get ECC bytes `82 00 00` (as the Amlogic receiver does), so a
//!   plain ASF demuxer accepts them; a rebuilt packet may end with zeros up to the
//!   longest packet of its span (its Packet Length field still holds the real length).
//! - Servers that put Number = 1 in every packet (a MAY of §2.2.2) give no positions:
//!   their losses are reported, never repaired. A foreign packet with dwPacketID
//!   0x2042534D is dropped (counted in `bad_framing`).
//!
//! Memory is bounded: at most 16 held packets and 4 cycle accumulators of at most
//! 64 KiB each. The caller drains [`Received`] items with [`MsbReceiver::drain`] or
//! [`MsbReceiver::poll`].

use std::collections::VecDeque;

use super::ecc::{
    id_back, id_steps, id_succ, neutral_ecc, number_of, span_from_parity_number, xor_into,
    BEACON_ID, ECC_LEN, FLAGS_DATA, FLAGS_PARITY, TYPE_DATA, TYPE_PARITY,
};
use super::header::{classify, Datagram, MsbHeader, FORMAT_ID_MASK, TOGGLE_BIT};
use super::{MsbError, MAX_SPAN};

/// Held packets beyond a gap before the gap is given up.
const HOLD_LIMIT: usize = MAX_SPAN as usize;
/// Largest distance (in ids) from a gap to the newest held packet before giving up.
const REACH_LIMIT: u32 = 2 * MAX_SPAN as u32 + 1;
/// A jump larger than this (either way) is a sender restart, not loss.
const FAR: u32 = 1024;
/// Cycles tracked at once.
const MAX_CYCLES: usize = 4;
/// `id_steps` results above this are "behind".
const HALF: u32 = 1 << 31;

/// What the receiver hands on, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// One ASF data packet, ECC bytes reset to `82 00 00` when it had them.
    Packet {
        format_id: u16,
        toggle: bool,
        packet_id: u32,
        asf: Vec<u8>,
        /// Rebuilt from the parity packet (may carry trailing zeros).
        repaired: bool,
    },
    /// A beacon arrived (the server is alive).
    Beacon,
    /// `count` consecutive packets were lost and could not be rebuilt.
    Lost { count: u32 },
}

/// Receiver statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MsbCounters {
    /// Data packets accepted (first copy of each id).
    pub received: u64,
    /// Packets rebuilt from parity.
    pub repaired: u64,
    /// Packets given up.
    pub lost: u64,
    /// Parity packets seen.
    pub parity: u64,
    /// Beacons seen.
    pub beacons: u64,
    /// Datagrams refused: bad header, bad beacon, empty or unusable parity, id "MSB ".
    pub bad_framing: u64,
    /// Data packets for ids already delivered, given up or held.
    pub duplicate_or_late: u64,
    /// Sender restarts detected (id jumps beyond 1024).
    pub resyncs: u64,
}

#[derive(Debug)]
struct Held {
    id: u32,
    stream_id: u16,
    asf: Vec<u8>,
    under_fec: bool,
}

/// Running state of one error-correction cycle.
#[derive(Debug)]
struct Cycle {
    stream_id: u16,
    cycle: u8,
    first_id: u32,
    /// Bit `n - 1` set when position `n` was seen.
    seen: u16,
    /// Span from the parity packet; 0 until it arrives.
    span: u8,
    /// The hole was rebuilt; `acc` is spent.
    done: bool,
    /// XOR of every packet of the cycle seen so far, after the ECC bytes.
    acc: Vec<u8>,
    age: u64,
}

impl Cycle {
    fn reset(&mut self, stream_id: u16, cycle: u8, first_id: u32, age: u64) {
        self.stream_id = stream_id;
        self.cycle = cycle;
        self.first_id = first_id;
        self.seen = 0;
        self.span = 0;
        self.done = false;
        self.acc.clear();
        self.age = age;
    }

    /// Highest position known to belong to the cycle.
    fn known_last(&self) -> u8 {
        if self.span != 0 {
            self.span
        } else {
            // 16 - leading zeros of a u16 is at most 16.
            u8::try_from(16 - self.seen.leading_zeros()).unwrap_or(0)
        }
    }
}

enum Repair {
    Done(Received),
    Impossible,
    /// The cycle is known but not complete enough yet (no parity, or 2+ holes).
    Wait,
    Unknown,
}

/// Sans-I/O MSB receiver for one multicast group.
#[derive(Debug, Default)]
pub struct MsbReceiver {
    expected: Option<u32>,
    /// Packets ahead of `expected`, sorted by distance from it.
    held: Vec<Held>,
    cycles: Vec<Cycle>,
    ready: VecDeque<Received>,
    pending_lost: u32,
    /// Something was delivered since the start (or the last resync).
    started: bool,
    age: u64,
    counters: MsbCounters,
}

impl MsbReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one datagram. Errors describe refused datagrams; the receiver stays usable.
    pub fn push(&mut self, datagram: &[u8]) -> Result<(), MsbError> {
        let parsed = classify(datagram).inspect_err(|_| self.counters.bad_framing += 1)?;
        match parsed {
            Datagram::Beacon => {
                self.counters.beacons += 1;
                self.ready.push_back(Received::Beacon);
            }
            Datagram::Packet {
                header,
                asf,
                is_parity: true,
            } => self.on_parity(header, asf)?,
            Datagram::Packet { header, asf, .. } => self.on_data(header, asf),
        }
        self.resolve(false);
        Ok(())
    }

    /// Gives up every open gap and delivers everything held (end of stream).
    pub fn flush(&mut self) {
        self.resolve(true);
        self.flush_lost();
    }

    /// Moves everything ready, in order, into `out`.
    pub fn drain(&mut self, out: &mut Vec<Received>) {
        out.extend(self.ready.drain(..));
    }

    /// Takes the next ready item.
    pub fn poll(&mut self) -> Option<Received> {
        self.ready.pop_front()
    }

    pub fn counters(&self) -> MsbCounters {
        self.counters
    }

    /// Packets currently held back behind a gap (at most 16).
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    fn on_data(&mut self, header: MsbHeader, asf: &[u8]) {
        let id = header.packet_id;
        if id == BEACON_ID {
            self.counters.bad_framing += 1;
            return;
        }
        let position = data_position(asf);
        if !self.admit(id, position.map(|(number, _, _)| number)) {
            return;
        }
        self.counters.received += 1;
        if let Some((number, cycle, body)) = position {
            self.absorb_data(header.stream_id, id, number, cycle, body);
        }
        let held = Held {
            id,
            stream_id: header.stream_id,
            asf: restore_ecc(asf),
            under_fec: position.is_some(),
        };
        let expected = self.expected.unwrap_or(id);
        let dist = id_steps(expected, id);
        let at = self
            .held
            .partition_point(|h| id_steps(expected, h.id) < dist);
        self.held.insert(at, held);
    }

    /// Decides whether a data packet with `id` (at span position `number`) takes part:
    /// sets the start, drops late and duplicate ids, resynchronises on far jumps.
    fn admit(&mut self, id: u32, number: Option<u8>) -> bool {
        let Some(expected) = self.expected else {
            self.start_at(id, number);
            return true;
        };
        let ahead = id_steps(expected, id);
        if ahead >= HALF {
            if id_steps(id, expected) > FAR {
                self.resync(id, number);
                return true;
            }
            self.counters.duplicate_or_late += 1;
            return false;
        }
        if ahead > FAR {
            self.resync(id, number);
            return true;
        }
        if self.held.iter().any(|h| h.id == id) {
            self.counters.duplicate_or_late += 1;
            return false;
        }
        true
    }

    /// Starts delivering at the first id of the span `id` belongs to, so packets of that
    /// span arriving out of order are kept; holes before the first delivery are join
    /// artefacts and are skipped silently (or rebuilt, if the parity allows).
    fn start_at(&mut self, id: u32, number: Option<u8>) {
        let first = match number {
            Some(n) => id_back(id, n - 1),
            None => id,
        };
        self.expected = Some(first);
        self.started = false;
    }

    fn resync(&mut self, id: u32, number: Option<u8>) {
        self.resolve(true);
        self.flush_lost();
        self.cycles.clear();
        self.start_at(id, number);
        self.counters.resyncs += 1;
    }

    fn on_parity(&mut self, header: MsbHeader, asf: &[u8]) -> Result<(), MsbError> {
        self.counters.parity += 1;
        let Some((number, cycle, body)) = parity_fields(asf) else {
            self.counters.bad_framing += 1;
            return Err(MsbError::BadParity {
                packet_id: header.packet_id,
                ecc: asf.iter().take(ECC_LEN).copied().collect(),
            });
        };
        // Number 1 ("Number = 1 in all packets"): no span, nothing to repair with.
        let Some(span) = span_from_parity_number(number) else {
            return Ok(());
        };
        let last = header.packet_id;
        if let Some(expected) = self.expected {
            if id_steps(expected, last) > FAR && id_steps(last, expected) > FAR {
                return Ok(());
            }
        }
        let first = id_back(last, span - 1);
        let Some(rec) = self.cycle_for(header.stream_id, cycle, first) else {
            return Ok(());
        };
        if rec.span == 0 {
            rec.span = span;
            if !rec.done {
                xor_into(&mut rec.acc, body);
            }
        }
        Ok(())
    }

    /// Adds a data packet under FEC to its cycle's XOR.
    fn absorb_data(&mut self, stream_id: u16, id: u32, number: u8, cycle: u8, body: &[u8]) {
        let first = id_back(id, number - 1);
        let Some(rec) = self.cycle_for(stream_id, cycle, first) else {
            return;
        };
        let bit = 1u16 << (number - 1);
        if rec.seen & bit != 0 {
            return;
        }
        rec.seen |= bit;
        if !rec.done {
            xor_into(&mut rec.acc, body);
        }
    }

    /// The cycle record for (`stream_id`, `cycle`) starting at `first`; a record with the
    /// same key but another start is stale (Cycle wrapped) and is restarted.
    fn cycle_for(&mut self, stream_id: u16, cycle: u8, first: u32) -> Option<&mut Cycle> {
        let age = self.age;
        self.age += 1;
        let found = self
            .cycles
            .iter()
            .position(|c| c.stream_id == stream_id && c.cycle == cycle);
        let index = match found {
            Some(i) => {
                if let Some(c) = self.cycles.get_mut(i) {
                    if c.first_id != first {
                        c.reset(stream_id, cycle, first, age);
                    }
                }
                i
            }
            None if self.cycles.len() < MAX_CYCLES => {
                self.cycles.push(Cycle {
                    stream_id,
                    cycle,
                    first_id: first,
                    seen: 0,
                    span: 0,
                    done: false,
                    acc: Vec::new(),
                    age,
                });
                self.cycles.len() - 1
            }
            None => {
                let oldest = self
                    .cycles
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, c)| c.age)
                    .map(|(i, _)| i)?;
                if let Some(c) = self.cycles.get_mut(oldest) {
                    c.reset(stream_id, cycle, first, age);
                }
                oldest
            }
        };
        self.cycles.get_mut(index)
    }

    /// Delivers, repairs or gives up until the next gap must wait (or, with `force`,
    /// until nothing is held). A repair is tried even with nothing held, so the last
    /// packet of a stream is rebuilt as soon as its parity arrives.
    fn resolve(&mut self, force: bool) {
        loop {
            self.deliver_in_order();
            let Some(m) = self.expected else {
                break;
            };
            let front_under_fec = self.held.first().map(|h| h.under_fec);
            match self.try_repair(m) {
                Repair::Done(packet) => {
                    self.flush_lost();
                    self.counters.repaired += 1;
                    self.started = true;
                    self.ready.push_back(packet);
                    self.expected = Some(id_succ(m));
                }
                _ if front_under_fec.is_none() => break,
                Repair::Impossible => self.give_up(m),
                Repair::Wait if force || self.must_give_up(m) => self.give_up(m),
                Repair::Unknown
                    if force || front_under_fec == Some(false) || self.must_give_up(m) =>
                {
                    self.give_up(m)
                }
                Repair::Wait | Repair::Unknown => break,
            }
        }
    }

    /// Delivers held packets while the first one is the expected id.
    fn deliver_in_order(&mut self) {
        while let Some(front) = self.held.first() {
            let Some(expected) = self.expected else {
                return;
            };
            if id_steps(expected, front.id) >= HALF {
                // Defensive: cannot happen with admitted ids; never deliver backwards.
                self.held.remove(0);
                continue;
            }
            if front.id != expected {
                return;
            }
            let h = self.held.remove(0);
            self.flush_lost();
            self.started = true;
            self.expected = Some(id_succ(h.id));
            self.ready.push_back(Received::Packet {
                format_id: h.stream_id & FORMAT_ID_MASK,
                toggle: h.stream_id & TOGGLE_BIT != 0,
                packet_id: h.id,
                asf: h.asf,
                repaired: false,
            });
        }
    }

    /// Rebuilds the missing packet `m` if its cycle allows it.
    fn try_repair(&mut self, m: u32) -> Repair {
        for rec in &mut self.cycles {
            let steps = id_steps(rec.first_id, m);
            if steps >= u32::from(MAX_SPAN) {
                continue;
            }
            let pos = u8::try_from(steps).unwrap_or(MAX_SPAN) + 1;
            if pos > rec.known_last() {
                continue;
            }
            let bit = 1u16 << (pos - 1);
            if rec.seen & bit != 0 || rec.done {
                return Repair::Impossible;
            }
            if rec.span == 0 {
                return Repair::Wait;
            }
            let in_span = (1u16 << rec.span) - 1;
            if rec.seen & !in_span != 0 {
                return Repair::Impossible;
            }
            if u32::from(rec.span) != rec.seen.count_ones() + 1 {
                // Two or more holes: late (reordered) packets may still fill them.
                return Repair::Wait;
            }
            rec.seen |= bit;
            rec.done = true;
            let mut asf = Vec::with_capacity(ECC_LEN + rec.acc.len());
            asf.extend_from_slice(&neutral_ecc());
            asf.extend_from_slice(&rec.acc);
            return Repair::Done(Received::Packet {
                format_id: rec.stream_id & FORMAT_ID_MASK,
                toggle: rec.stream_id & TOGGLE_BIT != 0,
                packet_id: m,
                asf,
                repaired: true,
            });
        }
        Repair::Unknown
    }

    /// Waiting for `m` would hold back more than one span.
    fn must_give_up(&self, m: u32) -> bool {
        let Some(newest) = self.held.last() else {
            return false;
        };
        self.held.len() > HOLD_LIMIT || id_steps(m, newest.id) > REACH_LIMIT
    }

    /// Moves past the missing `m`; reported as lost unless nothing was delivered yet.
    fn give_up(&mut self, m: u32) {
        if self.started {
            self.pending_lost = self.pending_lost.saturating_add(1);
            self.counters.lost += 1;
        }
        self.expected = Some(id_succ(m));
    }

    fn flush_lost(&mut self) {
        if self.pending_lost > 0 {
            self.ready.push_back(Received::Lost {
                count: self.pending_lost,
            });
            self.pending_lost = 0;
        }
    }
}

/// (Number, Cycle, body) of a data packet under EC: flags `0x82`, Type 1, Number 1..=15.
fn data_position(asf: &[u8]) -> Option<(u8, u8, &[u8])> {
    let [FLAGS_DATA, type_number, cycle, body @ ..] = asf else {
        return None;
    };
    let number = number_of(*type_number, TYPE_DATA)?;
    (1..=MAX_SPAN)
        .contains(&number)
        .then_some((number, *cycle, body))
}

/// (Number, Cycle, body) of a parity packet: flags `0x92`, Type 2.
fn parity_fields(asf: &[u8]) -> Option<(u8, u8, &[u8])> {
    let [FLAGS_PARITY, type_number, cycle, body @ ..] = asf else {
        return None;
    };
    let number = number_of(*type_number, TYPE_PARITY)?;
    Some((number, *cycle, body))
}

/// The packet as a demuxer wants it: a `82 xx xx` field becomes `82 00 00`.
fn restore_ecc(asf: &[u8]) -> Vec<u8> {
    match asf {
        [FLAGS_DATA, _, _, body @ ..] => {
            let mut out = Vec::with_capacity(asf.len());
            out.extend_from_slice(&neutral_ecc());
            out.extend_from_slice(body);
            out
        }
        _ => asf.to_vec(),
    }
}
