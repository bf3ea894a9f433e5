//! Joins an MMSH player's log to the session it reports on when the two arrive on different
//! connections, so one client session is one [MS-WMLOG] record.
//!
//! Why: Windows Media Player posts its `application/x-wms-LogStats` (or `Pragma: log-line`)
//! log after the stream stops, often on a new connection that carries the stream's
//! `Pragma: client-id=<n>` ([MS-WMSP] 2.2.1.4.1, the client-id the server gave). Writing the
//! server's record when the stream's connection closes and the player's as another record
//! would count the session twice in billing and reporting tools. So the record of an MMSH
//! session that played and sent no log on its own connection is held for [`HOLD`]; a log that
//! names its client-id within that time is merged into it ([`super::wmlog::merge`]: the
//! server's counts stay, the player's fields are added) and written once; otherwise it is
//! written alone when the hold expires, or at shutdown.
//!
//! Pure: records and `now` in, records to write out. At most [`MAX_HELD`] records are held;
//! beyond that the oldest is written at once (memory stays bounded whatever clients do).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::wmlog::{merge, Record};

/// How long a finished session's record waits for its player's log.
pub const HOLD: Duration = Duration::from_secs(5);
/// Records held at most.
pub const MAX_HELD: usize = 4096;

/// How a connection that ended relates to logs on other connections.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// An MMSH session that played under `client_id` and sent no log itself: its server
    /// record may still get the player's log.
    Played { client_id: u32, record: Record },
    /// A connection that only carried player logs for `client_id` (no media): `record` is
    /// what it logs alone; `reports` are the player's records to merge into a held session.
    LogFor {
        client_id: u32,
        record: Record,
        reports: Vec<Record>,
    },
    /// Anything else: written as it is.
    Complete(Record),
}

/// Held records, keyed by client-id, in arrival order.
#[derive(Debug, Default)]
pub struct LogJoiner {
    held: HashMap<u32, (Record, Instant)>,
    order: VecDeque<(u32, Instant)>,
}

impl LogJoiner {
    /// Takes a connection's end at `now`; returns the records to write now.
    pub fn on_end(&mut self, ended: Ended, now: Instant) -> Vec<Record> {
        match ended {
            Ended::Complete(r) => vec![r],
            Ended::Played { client_id, record } => {
                let mut out = Vec::new();
                // A reused client-id (a restarted daemon's counter) flushes the older record.
                if let Some((old, _)) = self.held.remove(&client_id) {
                    out.push(old);
                }
                if self.held.len() >= MAX_HELD {
                    out.extend(self.pop_oldest());
                }
                self.held.insert(client_id, (record, now));
                self.order.push_back((client_id, now));
                out
            }
            Ended::LogFor {
                client_id,
                record,
                reports,
            } => match self.held.remove(&client_id) {
                Some((held, _)) => vec![reports.iter().fold(held, |r, c| merge(&r, c))],
                None => vec![record],
            },
        }
    }

    /// Records whose hold expired by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(&(id, at)) = self.order.front() {
            if now.saturating_duration_since(at) < HOLD {
                break;
            }
            self.order.pop_front();
            if self.held.get(&id).is_some_and(|(_, t)| *t == at) {
                if let Some((r, _)) = self.held.remove(&id) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Every held record (shutdown).
    pub fn drain(&mut self) -> Vec<Record> {
        self.order.clear();
        let mut all: Vec<(Record, Instant)> = self.held.drain().map(|(_, v)| v).collect();
        all.sort_by_key(|(_, t)| *t);
        all.into_iter().map(|(r, _)| r).collect()
    }

    /// Records held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn pop_oldest(&mut self) -> Option<Record> {
        while let Some((id, at)) = self.order.pop_front() {
            if self.held.get(&id).is_some_and(|(_, t)| *t == at) {
                return self.held.remove(&id).map(|(r, _)| r);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Record {
        let mut r = Record::new();
        for (k, v) in pairs {
            r.set(k, *v);
        }
        r
    }

    #[test]
    fn a_log_on_a_later_connection_joins_the_held_session() {
        let t0 = Instant::now();
        let mut j = LogJoiner::default();
        let server = rec(&[("c-ip", "127.0.0.1"), ("sc-bytes", "150000")]);
        let played = Ended::Played {
            client_id: 7,
            record: server.clone(),
        };
        assert!(j.on_end(played, t0).is_empty());
        let player = rec(&[("c-playerid", "{ID}"), ("sc-bytes", "1")]);
        let out = j.on_end(
            Ended::LogFor {
                client_id: 7,
                record: rec(&[("c-ip", "127.0.0.1")]),
                reports: vec![player],
            },
            t0 + Duration::from_secs(2),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].get("c-playerid"), Some("{ID}"));
        assert_eq!(out[0].get("sc-bytes"), Some("150000"), "server counts stay");
        assert_eq!(j.held(), 0);
        assert!(j.expire(t0 + HOLD * 2).is_empty(), "written once");
    }

    #[test]
    fn a_log_for_an_unknown_session_is_written_alone() {
        let mut j = LogJoiner::default();
        let alone = rec(&[("c-playerid", "{X}")]);
        let out = j.on_end(
            Ended::LogFor {
                client_id: 99,
                record: alone.clone(),
                reports: vec![rec(&[])],
            },
            Instant::now(),
        );
        assert_eq!(out, vec![alone]);
    }

    #[test]
    fn held_records_expire_drain_and_stay_bounded() {
        let t0 = Instant::now();
        let mut j = LogJoiner::default();
        for id in 0..3 {
            let r = rec(&[("c-ip", &format!("10.0.0.{id}"))]);
            let at = t0 + Duration::from_secs(u64::from(id));
            assert!(j
                .on_end(
                    Ended::Played {
                        client_id: id,
                        record: r
                    },
                    at
                )
                .is_empty());
        }
        assert!(j.expire(t0 + HOLD - Duration::from_millis(1)).is_empty());
        assert_eq!(j.expire(t0 + HOLD + Duration::from_secs(1)).len(), 2);
        assert_eq!(j.drain().len(), 1);

        let mut written = 0;
        for id in 0..(MAX_HELD as u32 + 10) {
            written += j
                .on_end(
                    Ended::Played {
                        client_id: id,
                        record: rec(&[]),
                    },
                    t0,
                )
                .len();
        }
        assert_eq!(written, 10);
        assert_eq!(j.held(), MAX_HELD);
    }

    #[test]
    fn a_reused_client_id_flushes_the_older_record() {
        let t0 = Instant::now();
        let mut j = LogJoiner::default();
        let first = rec(&[("c-ip", "10.0.0.1")]);
        j.on_end(
            Ended::Played {
                client_id: 1,
                record: first.clone(),
            },
            t0,
        );
        let out = j.on_end(
            Ended::Played {
                client_id: 1,
                record: rec(&[]),
            },
            t0,
        );
        assert_eq!(out, vec![first]);
        // The stale queue entry of the first record does not expire the second early.
        assert!(j.expire(t0 + HOLD - Duration::from_millis(1)).is_empty());
        assert_eq!(j.held(), 1);
    }
}
