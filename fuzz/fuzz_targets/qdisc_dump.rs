//! Fuzzes the rtnetlink qdisc dump parser that decides kernel pacing (`msb::txtime`).
//!
//! Properties checked on every input:
//! - `parse_qdisc_dump` never panics and keeps no more qdiscs than the input can hold (each
//!   takes a 16-byte netlink header and a 20-byte tcmsg at least), each kind bounded;
//! - `decide` never panics for any interface the dump names, nor for one it does not.
#![no_main]

use asfcast::msb::txtime::{decide, parse_qdisc_dump};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let part = parse_qdisc_dump(data);
    assert!(part.qdiscs.len() <= data.len() / 36, "more qdiscs than bytes allow");
    for q in &part.qdiscs {
        assert!(q.kind.len() <= 32 * 3, "kind too long: {}", q.kind.len());
        let _ = decide(&part.qdiscs, q.ifindex);
    }
    let _ = decide(&part.qdiscs, -1);
});
