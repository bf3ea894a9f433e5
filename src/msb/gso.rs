//! UDP segmentation offload for a station's MSB datagrams (Linux `UDP_SEGMENT`, udp(7), since
//! 4.18): consecutive datagrams of one size leave as **one** send — one system call, one route
//! lookup, one socket buffer charge, segmented by the NIC or once by the kernel — instead of one
//! each. Issue 14: files made by common muxers front-load 40+ packets at one send time, and at
//! 50 stations in lock-step thousands of datagrams are due at once; sent one by one the last of
//! them leave milliseconds late.
//!
//! MSB datagrams suit it: the ASF core strips padding, but most packets of a stream are full
//! (a 1 Mbit/s FFmpeg file: 774 of 806 packets at the 3200-byte packet size), so a send-time
//! burst is a few runs of equal-sized datagrams. The kernel's rules for one segmented send
//! (`udp_send_skb`, `__ip_append_data`): every segment `gso_size` bytes except the last, which
//! may be shorter; at most [`MAX_SEGMENTS`]; the whole payload within one IP datagram
//! ([`MAX_PAYLOAD`]); `gso_size` plus the headers within the path MTU (larger datagrams are IP
//! fragments and are sent alone, as before).
//!
//! Pure: [`plan`] cuts a batch into runs, [`gso_cmsg`] is the control message; the shell
//! (`net::multicast`) sends them and turns the offload off for a socket whose kernel or device
//! refuses it.

/// `SOL_UDP` (= `IPPROTO_UDP`).
pub const SOL_UDP: i32 = 17;
/// `UDP_SEGMENT`, the socket option and control message type.
pub const UDP_SEGMENT: i32 = 103;
/// `UDP_MAX_SEGMENTS`: segments one send may carry.
pub const MAX_SEGMENTS: usize = 64;
/// UDP payload bytes one IPv4 datagram carries (65535 − 20 − 8); the same bound is kept for
/// IPv6 (whose limit, 65527, is higher).
pub const MAX_PAYLOAD: usize = 65_507;
/// `CMSG_SPACE(sizeof(u16))` on 64-bit Linux: the control buffer of one segmented send.
pub const GSO_CMSG_LEN: usize = 24;

/// The control message that segments one send into `segment`-byte datagrams: `cmsghdr { len:
/// CMSG_LEN(2) = 18, level: SOL_UDP, type: UDP_SEGMENT }` in native byte order, then the u16,
/// padded to [`GSO_CMSG_LEN`].
pub fn gso_cmsg(segment: u16) -> [u8; GSO_CMSG_LEN] {
    let mut b = [0u8; GSO_CMSG_LEN];
    // cmsg_len is a size_t on 64-bit Linux.
    b[..8].copy_from_slice(&18u64.to_ne_bytes());
    b[8..12].copy_from_slice(&SOL_UDP.to_ne_bytes());
    b[12..16].copy_from_slice(&UDP_SEGMENT.to_ne_bytes());
    b[16..18].copy_from_slice(&segment.to_ne_bytes());
    b
}

/// [`gso_cmsg`] for a run's segment size as the u64 words of a control buffer (aligned for
/// `cmsghdr`, as `msg_control` needs).
pub fn gso_cmsg_words(segment: usize) -> [u64; GSO_CMSG_LEN / 8] {
    super::cmsg_words(&gso_cmsg(u16::try_from(segment).unwrap_or(u16::MAX)))
}

/// The largest segment a path of `mtu` bytes carries unfragmented: the MTU less the IP and
/// UDP headers (IPv6: 40 + 8, IPv4: 20 + 8), capped at [`MAX_PAYLOAD`]; None when nothing fits.
pub fn max_segment(mtu: usize, ipv6: bool) -> Option<usize> {
    let headers = if ipv6 { 48 } else { 28 };
    let room = mtu.checked_sub(headers)?.min(MAX_PAYLOAD);
    (room > 0).then_some(room)
}

/// Consecutive datagrams `start..start + count` of a batch that leave as one send of
/// `segment`-byte segments (the last may be shorter). A run of one is a plain datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: usize,
    pub count: usize,
    pub segment: usize,
}

/// Cuts datagrams of lengths `lens` (in order, order kept) into runs the kernel takes as one
/// segmented send each: equal lengths up to `max_segment`, optionally closed by one shorter
/// datagram, within [`MAX_SEGMENTS`] and [`MAX_PAYLOAD`]. Anything longer than `max_segment`
/// (or empty) is a run of one. `out` is cleared first.
pub fn plan(lens: impl IntoIterator<Item = usize>, max_segment: usize, out: &mut Vec<Run>) {
    out.clear();
    let mut open: Option<(Run, usize)> = None; // the run and its payload so far
    for (i, len) in lens.into_iter().enumerate() {
        if let Some((run, total)) = open.as_mut() {
            let fits = run.count < MAX_SEGMENTS && *total + len <= MAX_PAYLOAD && len > 0;
            if fits && len == run.segment {
                run.count += 1;
                *total += len;
                continue;
            }
            if fits && len < run.segment {
                // A shorter datagram may close the run as its last segment.
                run.count += 1;
                out.push(*run);
                open = None;
                continue;
            }
            out.push(*run);
            open = None;
        }
        let run = Run {
            start: i,
            count: 1,
            segment: len,
        };
        if len == 0 || len > max_segment {
            out.push(run);
        } else {
            open = Some((run, len));
        }
    }
    if let Some((run, _)) = open {
        out.push(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn runs(lens: &[usize], max: usize) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        plan(lens.iter().copied(), max, &mut out);
        out.iter().map(|r| (r.start, r.count, r.segment)).collect()
    }

    #[test]
    fn equal_sizes_go_together_and_a_shorter_one_closes_the_run() {
        assert_eq!(
            runs(&[3208, 3208, 3208, 2900, 3208, 3208], 65_000),
            vec![(0, 4, 3208), (4, 2, 3208)]
        );
        // A longer datagram cannot follow: it starts its own run.
        assert_eq!(
            runs(&[1000, 3208, 3208], 65_000),
            vec![(0, 1, 1000), (1, 2, 3208)]
        );
        // Beacons (4 bytes) between data close a run or stand alone.
        assert_eq!(
            runs(&[4, 3208, 3208, 4, 4], 65_000),
            vec![(0, 1, 4), (1, 3, 3208), (4, 1, 4)]
        );
    }

    #[test]
    fn runs_respect_the_kernel_limits() {
        // 64 segments at most.
        let lens = vec![100; 130];
        assert_eq!(
            runs(&lens, 65_000),
            vec![(0, 64, 100), (64, 64, 100), (128, 2, 100)]
        );
        // One IP datagram of payload at most: 20 × 3208 = 64,160 fits, 21 do not.
        let lens = vec![3208; 45];
        assert_eq!(
            runs(&lens, 65_000),
            vec![(0, 20, 3208), (20, 20, 3208), (40, 5, 3208)]
        );
        // Larger than the path's segment: alone (IP-fragmented as before).
        assert_eq!(
            runs(&[3208, 3208, 1400, 1400], 1472),
            vec![(0, 1, 3208), (1, 1, 3208), (2, 2, 1400)]
        );
        assert_eq!(runs(&[0, 0], 1472), vec![(0, 1, 0), (1, 1, 0)]);
        assert!(runs(&[], 1472).is_empty());
    }

    #[test]
    fn segment_room_follows_the_mtu() {
        assert_eq!(max_segment(1500, false), Some(1472));
        assert_eq!(max_segment(1500, true), Some(1452));
        assert_eq!(max_segment(65_536, false), Some(MAX_PAYLOAD));
        assert_eq!(max_segment(20, false), None);
        assert_eq!(max_segment(28, false), None);
    }

    #[test]
    fn cmsg_layout() {
        let c = gso_cmsg(3208);
        assert_eq!(u64::from_ne_bytes(c[..8].try_into().unwrap()), 18);
        assert_eq!(i32::from_ne_bytes(c[8..12].try_into().unwrap()), SOL_UDP);
        assert_eq!(
            i32::from_ne_bytes(c[12..16].try_into().unwrap()),
            UDP_SEGMENT
        );
        assert_eq!(u16::from_ne_bytes(c[16..18].try_into().unwrap()), 3208);
        assert!(c[18..].iter().all(|&b| b == 0));
        let w = gso_cmsg_words(3208);
        let bytes: Vec<u8> = w.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(bytes, c);
    }

    proptest! {
        /// Every datagram is in exactly one run, in order; every run is one the kernel takes.
        #[test]
        fn plans_cover_the_batch_within_the_rules(
            lens in proptest::collection::vec(
                prop_oneof![Just(3208usize), Just(1400), Just(4), 0usize..70_000], 0..300),
            max in prop_oneof![Just(1472usize), Just(MAX_PAYLOAD), 1usize..70_000],
        ) {
            let mut out = Vec::new();
            plan(lens.iter().copied(), max, &mut out);
            let mut next = 0;
            for r in &out {
                prop_assert_eq!(r.start, next);
                prop_assert!(r.count >= 1);
                next += r.count;
                let seg = &lens[r.start..r.start + r.count];
                prop_assert_eq!(seg[0], r.segment);
                if r.count > 1 {
                    prop_assert!(r.count <= MAX_SEGMENTS);
                    prop_assert!(r.segment > 0 && r.segment <= max);
                    prop_assert!(seg.iter().sum::<usize>() <= MAX_PAYLOAD);
                    let (last, body) = seg.split_last().unwrap();
                    prop_assert!(body.iter().all(|&l| l == r.segment));
                    prop_assert!(*last > 0 && *last <= r.segment);
                }
            }
            prop_assert_eq!(next, lens.len());
        }
    }
}
