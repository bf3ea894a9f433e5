//! The connections' deadlines (session timers, linger) in a min-heap, so that a loop turn finds
//! the earliest deadline and the connections that are due without scanning every connection.
//!
//! Pure: deadlines are `Instant`s handed in by the shell, nothing here reads the clock. Each
//! entry is keyed by (deadline, slot, generation). Moving or clearing a slot's deadline does
//! not search the heap: the slot's current deadline and generation are kept beside it, and an
//! entry whose generation is not its slot's current one is stale and skipped when it reaches
//! the top (lazy cancellation). A slot reused by a new connection gets a new generation, so an
//! entry left by the previous connection never fires for the new one. When stale entries
//! outnumber live ones the heap is rebuilt from the slots, so its size stays within a constant
//! factor of the number of connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Slots (connection indices) with an optional deadline each.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Per slot: its current deadline and the generation of its live heap entry.
    armed: Vec<Option<(Instant, u64)>>,
    /// Slots with a deadline.
    live: usize,
    next_generation: u64,
}

/// Stale entries tolerated beyond the live ones before the heap is rebuilt.
const SLACK: usize = 64;

impl Deadlines {
    /// Sets (or moves, or clears with `None`) a slot's deadline. Setting the deadline it
    /// already has costs nothing.
    pub fn set(&mut self, slot: usize, deadline: Option<Instant>) {
        if self.armed.len() <= slot {
            if deadline.is_none() {
                return;
            }
            self.armed.resize(slot + 1, None);
        }
        let Some(current) = self.armed.get_mut(slot) else {
            return;
        };
        if current.map(|(d, _)| d) == deadline {
            return;
        }
        match (current.is_some(), deadline.is_some()) {
            (false, true) => self.live += 1,
            (true, false) => self.live -= 1,
            _ => {}
        }
        *current = match deadline {
            Some(d) => {
                self.next_generation += 1;
                self.heap.push(Reverse((d, slot, self.next_generation)));
                Some((d, self.next_generation))
            }
            None => None,
        };
        if self.heap.len() > 2 * self.live + SLACK {
            self.rebuild();
        }
    }

    /// Makes the slot fire no later than `deadline`, and otherwise leaves it alone: a
    /// deadline that moved later (or went away) keeps the earlier entry, and the caller
    /// re-checks when that fires and [`Deadlines::set`]s the real one. A session whose
    /// deadline moves forward with every packet (a silence timer) then costs nothing per
    /// packet, one early wake-up per timeout instead.
    pub fn lower(&mut self, slot: usize, deadline: Option<Instant>) {
        let Some(d) = deadline else {
            return;
        };
        if self.get(slot).is_some_and(|armed| armed <= d) {
            return;
        }
        self.set(slot, Some(d));
    }

    /// The slot's deadline as last set.
    pub fn get(&self, slot: usize) -> Option<Instant> {
        self.armed.get(slot).copied().flatten().map(|(d, _)| d)
    }

    /// The earliest deadline of any slot.
    pub fn earliest(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Takes every slot whose deadline is at or before `now` (earliest first) into `due`, and
    /// clears their deadlines: the caller services them and sets their next ones.
    pub fn take_due(&mut self, now: Instant, due: &mut Vec<usize>) {
        loop {
            self.drop_stale();
            match self.heap.peek() {
                Some(Reverse((d, slot, _))) if *d <= now => {
                    let slot = *slot;
                    self.heap.pop();
                    if let Some(a) = self.armed.get_mut(slot) {
                        *a = None;
                        self.live -= 1;
                    }
                    due.push(slot);
                }
                _ => return,
            }
        }
    }

    /// Entries in the heap, stale ones included (for tests and the size bound).
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Pops stale entries off the top.
    fn drop_stale(&mut self) {
        while let Some(Reverse((_, slot, generation))) = self.heap.peek() {
            let live = self
                .armed
                .get(*slot)
                .copied()
                .flatten()
                .is_some_and(|(_, g)| g == *generation);
            if live {
                return;
            }
            self.heap.pop();
        }
    }

    fn rebuild(&mut self) {
        self.heap = self
            .armed
            .iter()
            .enumerate()
            .filter_map(|(slot, a)| a.map(|(d, g)| Reverse((d, slot, g))))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn due(d: &mut Deadlines, now: Instant) -> Vec<usize> {
        let mut v = Vec::new();
        d.take_due(now, &mut v);
        v
    }

    #[test]
    fn due_slots_come_earliest_first_and_only_when_due() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.set(3, Some(at(t, 30)));
        d.set(1, Some(at(t, 10)));
        d.set(2, Some(at(t, 20)));
        d.set(7, Some(at(t, 70)));
        assert_eq!(d.earliest(), Some(at(t, 10)));
        assert_eq!(due(&mut d, at(t, 5)), Vec::<usize>::new());
        assert_eq!(due(&mut d, at(t, 30)), vec![1, 2, 3]);
        // Taken slots are disarmed until set again.
        assert_eq!(d.get(1), None);
        assert_eq!(d.earliest(), Some(at(t, 70)));
        assert_eq!(due(&mut d, at(t, 100)), vec![7]);
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn a_moved_deadline_fires_once_at_its_new_time() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.set(0, Some(at(t, 10)));
        // Later: the old entry is stale.
        d.set(0, Some(at(t, 50)));
        assert_eq!(d.earliest(), Some(at(t, 50)));
        assert_eq!(due(&mut d, at(t, 20)), Vec::<usize>::new());
        // Earlier again.
        d.set(0, Some(at(t, 5)));
        assert_eq!(due(&mut d, at(t, 60)), vec![0]);
        assert_eq!(due(&mut d, at(t, 60)), Vec::<usize>::new());
    }

    #[test]
    fn lowering_only_moves_a_deadline_earlier() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.lower(2, None);
        assert_eq!(d.earliest(), None);
        d.lower(2, Some(at(t, 100)));
        // A silence timer moving forward with every packet: no new entries.
        for ms in 101..200 {
            d.lower(2, Some(at(t, ms)));
        }
        d.lower(2, None);
        assert_eq!(d.heap_len(), 1);
        assert_eq!(d.get(2), Some(at(t, 100)));
        // Earlier does move it.
        d.lower(2, Some(at(t, 50)));
        assert_eq!(d.earliest(), Some(at(t, 50)));
        // It fires at the early time; the caller finds the session not due and sets the
        // real deadline, which then fires.
        assert_eq!(due(&mut d, at(t, 60)), vec![2]);
        d.set(2, Some(at(t, 199)));
        assert_eq!(due(&mut d, at(t, 150)), Vec::<usize>::new());
        assert_eq!(due(&mut d, at(t, 199)), vec![2]);
    }

    #[test]
    fn setting_the_same_deadline_adds_nothing() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        for _ in 0..100 {
            d.set(4, Some(at(t, 10)));
        }
        assert_eq!(d.heap_len(), 1);
    }

    #[test]
    fn a_cleared_deadline_never_fires() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.set(0, Some(at(t, 10)));
        d.set(1, Some(at(t, 20)));
        d.set(0, None);
        assert_eq!(d.earliest(), Some(at(t, 20)));
        assert_eq!(due(&mut d, at(t, 100)), vec![1]);
        // Clearing a slot never seen is harmless.
        d.set(99, None);
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn a_reused_slot_does_not_inherit_the_closed_connections_deadline() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.set(5, Some(at(t, 10)));
        // The connection closes; a new one takes slot 5 with a later deadline.
        d.set(5, None);
        d.set(5, Some(at(t, 40)));
        assert_eq!(due(&mut d, at(t, 20)), Vec::<usize>::new());
        assert_eq!(due(&mut d, at(t, 40)), vec![5]);
        // Same deadline as the closed one had: still one firing, not two.
        d.set(5, Some(at(t, 10)));
        d.set(5, None);
        d.set(5, Some(at(t, 10)));
        assert_eq!(due(&mut d, at(t, 50)), vec![5]);
    }

    #[test]
    fn no_deadline_is_lost_under_churn_and_the_heap_stays_bounded() {
        // A deterministic pseudo-random walk of sets and clears over 200 slots, checked
        // against a plain table scanned the old way.
        let t = Instant::now();
        let mut d = Deadlines::default();
        let mut model: Vec<Option<Instant>> = vec![None; 200];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut now_ms = 0;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = (x % 200) as usize;
            let v = if x % 7 == 0 {
                None
            } else {
                Some(at(t, now_ms + (x >> 8) % 500))
            };
            d.set(slot, v);
            model[slot] = v;
            if step % 50 == 0 {
                now_ms += 37;
                let now = at(t, now_ms);
                let mut got = due(&mut d, now);
                let mut want: Vec<usize> = (0..200)
                    .filter(|&i| model[i].is_some_and(|m| m <= now))
                    .collect();
                for &i in &want {
                    model[i] = None;
                }
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "step {step}");
                assert_eq!(d.earliest(), model.iter().flatten().min().copied());
            }
            assert!(d.heap_len() <= 2 * 200 + SLACK + 1);
        }
    }
}
