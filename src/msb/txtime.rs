//! Kernel pacing of MSB datagrams with `SO_TXTIME`, the pure part: the `SCM_TXTIME` control
//! message each datagram carries, and whether an interface's queueing discipline honours it,
//! decided from the kernel's qdisc dump (rtnetlink `RTM_GETQDISC`). The shell
//! (`net::txtime`) opens the sockets and asks the kernel.
//!
//! How it works (Linux `include/uapi/linux/net_tstamp.h`, `net/sched/sch_fq.c`): a socket
//! with `SO_TXTIME` set (`struct sock_txtime { clockid, flags }`) may pass each datagram's
//! earliest departure time, in ns of that clock, in an `SCM_TXTIME` cmsg (level
//! `SOL_SOCKET`, a u64). The stamp rides on the skb; only a qdisc that reads it acts on it:
//!
//! - `fq` (the appliance image's `net.core.default_qdisc`) holds each packet until its
//!   time, in CLOCK_MONOTONIC — the clock `std::time::Instant` reads — and drops packets
//!   stamped beyond its horizon (10 s by default); the lookahead here is milliseconds.
//!   On a multi-queue NIC the default qdisc becomes an `mq` root with one `fq` per queue.
//! - `etf` honours it too but in its own configured clock (usually CLOCK_TAI) and drops
//!   packets whose stamp is in the past or in the wrong clock: it is not used (TSN setups
//!   configure it on purpose; the timer path is the safe choice there).
//! - Every other qdisc (`noqueue` — loopback, `pfifo_fast`, `fq_codel`, …) **ignores** the
//!   stamp and sends at once: `setsockopt` and every `sendmsg` with `SCM_TXTIME` succeed
//!   anyway, so success proves nothing. Hence the probe reads the qdisc tree.
//!
//! A datagram handed over ahead of time with its departure stamp leaves on time however
//! late the loop wakes up, as long as it wakes within the lookahead.

use std::time::Duration;

/// `SO_TXTIME` / `SCM_TXTIME` (asm-generic/socket.h); the libc crate spells it the same.
pub const SCM_TXTIME: i32 = 61;
/// How far ahead of its departure a datagram is handed to the kernel on the txtime path.
pub const LOOKAHEAD: Duration = Duration::from_millis(4);

/// Bytes of one `SCM_TXTIME` control message: `CMSG_SPACE(8)` on 64-bit Linux (a 16-byte
/// `cmsghdr`, then the u64).
pub const TXTIME_CMSG_LEN: usize = 24;

/// The control message that stamps a datagram with its earliest departure, `at_ns`
/// nanoseconds of the socket's `SO_TXTIME` clock: `cmsghdr { len: CMSG_LEN(8) = 24,
/// level: SOL_SOCKET, type: SCM_TXTIME }` in native byte order, then the u64.
pub fn txtime_cmsg(at_ns: u64) -> [u8; TXTIME_CMSG_LEN] {
    let mut b = [0u8; TXTIME_CMSG_LEN];
    // cmsg_len is a size_t on 64-bit Linux.
    b[..8].copy_from_slice(&(TXTIME_CMSG_LEN as u64).to_ne_bytes());
    b[8..12].copy_from_slice(&1i32.to_ne_bytes()); // SOL_SOCKET
    b[12..16].copy_from_slice(&SCM_TXTIME.to_ne_bytes());
    b[16..24].copy_from_slice(&at_ns.to_ne_bytes());
    b
}

/// One qdisc of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    pub ifindex: i32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
}

/// `TC_H_ROOT`: the parent of a root qdisc.
pub const TC_H_ROOT: u32 = 0xFFFF_FFFF;
const NLMSG_HDR: usize = 16;
const TCMSG: usize = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWQDISC: u16 = 36;
const TCA_KIND: u16 = 1;
/// Longest qdisc kind kept (the kernel's IFNAMSIZ-like bound is 16).
const MAX_KIND: usize = 32;

/// What one receive of the dump held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DumpPart {
    pub qdiscs: Vec<Qdisc>,
    /// NLMSG_DONE was seen: the dump is complete.
    pub done: bool,
    /// An NLMSG_ERROR's errno (negative), if one came.
    pub error: Option<i32>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Parses the netlink messages of one `recv` of an `RTM_GETQDISC` dump (native byte order,
/// as the kernel writes them). Every length is checked; a truncated or malformed message
/// ends the parse with what was read so far.
pub fn parse_qdisc_dump(buf: &[u8]) -> DumpPart {
    let mut out = DumpPart::default();
    let mut at = 0usize;
    while let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
        let len = len as usize;
        if len < NLMSG_HDR || at.saturating_add(len) > buf.len() {
            break;
        }
        let body = &buf[at + NLMSG_HDR..at + len];
        match kind {
            NLMSG_DONE => out.done = true,
            NLMSG_ERROR => {
                out.error = u32_at(body, 0).map(|e| e as i32);
                out.done = true;
            }
            RTM_NEWQDISC => {
                if let Some(q) = parse_tcmsg(body) {
                    out.qdiscs.push(q);
                }
            }
            _ => {}
        }
        at = at.saturating_add(align4(len));
    }
    out
}

fn parse_tcmsg(body: &[u8]) -> Option<Qdisc> {
    let ifindex = u32_at(body, 4)? as i32;
    let handle = u32_at(body, 8)?;
    let parent = u32_at(body, 12)?;
    let mut kind = None;
    let mut at = TCMSG;
    while let (Some(len), Some(ty)) = (u16_at(body, at), u16_at(body, at + 2)) {
        let len = usize::from(len);
        if len < 4 || at + len > body.len() {
            break;
        }
        if ty & 0x3FFF == TCA_KIND {
            let v = &body[at + 4..at + len];
            let v = v.split(|b| *b == 0).next().unwrap_or_default();
            if v.len() <= MAX_KIND {
                kind = Some(String::from_utf8_lossy(v).into_owned());
            }
        }
        at += align4(len);
    }
    Some(Qdisc {
        ifindex,
        handle,
        parent,
        kind: kind?,
    })
}

/// Whether datagrams leaving by `ifindex` are paced by their `SCM_TXTIME` stamp, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// The root qdisc is `fq`, or a multi-queue root whose every child is `fq`.
    Yes(String),
    No(String),
}

/// Decides from the whole dump (every interface) for the interface `ifindex`.
pub fn decide(qdiscs: &[Qdisc], ifindex: i32) -> Support {
    let mine: Vec<&Qdisc> = qdiscs.iter().filter(|q| q.ifindex == ifindex).collect();
    let Some(root) = mine.iter().find(|q| q.parent == TC_H_ROOT) else {
        return Support::No("the interface has no root qdisc in the dump".into());
    };
    match root.kind.as_str() {
        "fq" => Support::Yes("root qdisc fq".into()),
        "mq" | "mqprio" => {
            let major = root.handle & 0xFFFF_0000;
            let kids: Vec<&&Qdisc> = mine
                .iter()
                .filter(|q| q.parent != TC_H_ROOT && q.parent & 0xFFFF_0000 == major)
                .collect();
            let not_fq: Vec<&str> = kids
                .iter()
                .filter(|q| q.kind != "fq")
                .map(|q| q.kind.as_str())
                .collect();
            if kids.is_empty() {
                Support::No(format!("root qdisc {} without child qdiscs", root.kind))
            } else if not_fq.is_empty() {
                Support::Yes(format!(
                    "root qdisc {} with {} fq queues",
                    root.kind,
                    kids.len()
                ))
            } else {
                Support::No(format!(
                    "root qdisc {} has queues without fq ({})",
                    root.kind,
                    not_fq.join(", ")
                ))
            }
        }
        "etf" => Support::No(
            "root qdisc etf (its own clock, usually TAI, drops other stamps; not used)".into(),
        ),
        other => Support::No(format!("root qdisc {other} ignores SO_TXTIME")),
    }
}

/// An `RTM_GETQDISC` dump request (`NLM_F_REQUEST | NLM_F_DUMP`) with sequence `seq`.
pub fn dump_request(seq: u32) -> [u8; NLMSG_HDR + TCMSG] {
    const RTM_GETQDISC: u16 = 38;
    const FLAGS: u16 = 0x1 | 0x300; // NLM_F_REQUEST | NLM_F_DUMP
    let mut b = [0u8; NLMSG_HDR + TCMSG];
    b[..4].copy_from_slice(&((NLMSG_HDR + TCMSG) as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&RTM_GETQDISC.to_ne_bytes());
    b[6..8].copy_from_slice(&FLAGS.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0 (the kernel), tcmsg all zero: every family, every interface.
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One RTM_NEWQDISC message as the kernel writes it.
    fn qdisc_msg(ifindex: i32, handle: u32, parent: u32, kind: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let kind_len = 4 + kind.len() + 1;
        attr.extend((kind_len as u16).to_ne_bytes());
        attr.extend(TCA_KIND.to_ne_bytes());
        attr.extend(kind.as_bytes());
        attr.push(0);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // Another attribute after the kind (TCA_OPTIONS, empty) is skipped.
        attr.extend(4u16.to_ne_bytes());
        attr.extend(2u16.to_ne_bytes());
        let mut body = vec![0u8; 4];
        body.extend(ifindex.to_ne_bytes());
        body.extend(handle.to_ne_bytes());
        body.extend(parent.to_ne_bytes());
        body.extend(0u32.to_ne_bytes());
        body.extend(attr);
        let mut m = Vec::new();
        m.extend(((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        m.extend(RTM_NEWQDISC.to_ne_bytes());
        m.extend(2u16.to_ne_bytes());
        m.extend(1u32.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(body);
        m
    }

    fn done() -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(20u32.to_ne_bytes());
        m.extend(NLMSG_DONE.to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend(0u32.to_ne_bytes());
        m
    }

    #[test]
    fn the_cmsg_is_what_the_kernel_reads() {
        let b = txtime_cmsg(0x0102_0304_0506_0708);
        // CMSG_SPACE / CMSG_LEN of the libc crate agree with the layout.
        // SAFETY: CMSG_SPACE / CMSG_LEN only compute sizes.
        let (space, len) = unsafe { (libc::CMSG_SPACE(8), libc::CMSG_LEN(8)) };
        assert_eq!(space as usize, TXTIME_CMSG_LEN);
        assert_eq!(u64::from_ne_bytes(b[..8].try_into().unwrap()), len as u64);
        assert_eq!(
            i32::from_ne_bytes(b[8..12].try_into().unwrap()),
            libc::SOL_SOCKET
        );
        assert_eq!(
            i32::from_ne_bytes(b[12..16].try_into().unwrap()),
            libc::SCM_TXTIME
        );
        assert_eq!(
            u64::from_ne_bytes(b[16..24].try_into().unwrap()),
            0x0102_0304_0506_0708
        );
    }

    #[test]
    fn the_dump_decides_per_interface() {
        let mut dump = Vec::new();
        dump.extend(qdisc_msg(1, 0, TC_H_ROOT, "noqueue"));
        dump.extend(qdisc_msg(2, 0x8000_0000, TC_H_ROOT, "mq"));
        for q in 1..=4u32 {
            dump.extend(qdisc_msg(2, 0, 0x8000_0000 | q, "fq"));
        }
        dump.extend(qdisc_msg(3, 0x8000_0000, TC_H_ROOT, "mq"));
        dump.extend(qdisc_msg(3, 0, 0x8000_0001, "fq"));
        dump.extend(qdisc_msg(3, 0, 0x8000_0002, "fq_codel"));
        dump.extend(qdisc_msg(4, 0x1_0000, TC_H_ROOT, "fq"));
        dump.extend(qdisc_msg(5, 0x1_0000, TC_H_ROOT, "etf"));
        dump.extend(qdisc_msg(6, 0x8000_0000, TC_H_ROOT, "mq"));
        dump.extend(done());
        let part = parse_qdisc_dump(&dump);
        assert!(part.done);
        assert_eq!(part.error, None);
        assert_eq!(part.qdiscs.len(), 12);
        let yes = |i| matches!(decide(&part.qdiscs, i), Support::Yes(_));
        let cases = [
            (1, false, "loopback: noqueue"),
            (
                2,
                true,
                "mq with fq on every queue (default_qdisc=fq on a multi-queue NIC)",
            ),
            (3, false, "mq with one fq_codel queue"),
            (4, true, "fq root"),
            (5, false, "etf: its own clock"),
            (6, false, "mq without children"),
            (7, false, "an interface not in the dump"),
        ];
        for (ifindex, want, name) in cases {
            assert_eq!(
                yes(ifindex),
                want,
                "{name}: {:?}",
                decide(&part.qdiscs, ifindex)
            );
        }
    }

    #[test]
    fn truncated_and_hostile_dumps_end_the_parse_without_panicking() {
        let full = qdisc_msg(2, 0x1_0000, TC_H_ROOT, "fq");
        for cut in 0..full.len() {
            let part = parse_qdisc_dump(&full[..cut]);
            assert!(part.qdiscs.is_empty(), "cut at {cut}");
        }
        // A message length past the buffer, and a zero length, stop the parse.
        let mut bad = full.clone();
        bad[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_qdisc_dump(&bad), DumpPart::default());
        bad[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(parse_qdisc_dump(&bad), DumpPart::default());
        // An error message reports its errno.
        let mut err = Vec::new();
        err.extend(20u32.to_ne_bytes());
        err.extend(NLMSG_ERROR.to_ne_bytes());
        err.extend([0u8; 10]);
        err.extend((-1i32).to_ne_bytes());
        assert_eq!(parse_qdisc_dump(&err).error, Some(-1));
    }

    #[test]
    fn the_request_is_a_dump_of_every_qdisc() {
        let r = dump_request(7);
        assert_eq!(u32::from_ne_bytes(r[..4].try_into().unwrap()), 36);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 38);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
    }
}
