//! Sender → receiver round trips: loss at every position, double loss, duplicates,
//! reordering, joining mid-cycle, id wrap, format toggles, hostile input.

use proptest::prelude::*;

use super::ecc::BEACON_ID;
use super::*;

/// An ASF-like packet: `82 00 00` + `len` body bytes derived from `seed`.
fn packet(seed: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x82, 0, 0];
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p.push(x as u8);
    }
    p
}

fn send_all(span: u8, first_id: u32, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut s = MsbSender::new(MsbSenderConfig {
        fec_span: span,
        first_packet_id: first_id,
    })
    .unwrap();
    let mut out = Vec::new();
    s.set_format(0x123, &mut out).unwrap();
    for p in packets {
        s.push(p, &mut out).unwrap();
    }
    s.flush(&mut out);
    out
}

fn receive_all(datagrams: &[Vec<u8>]) -> (Vec<Received>, MsbCounters) {
    let mut r = MsbReceiver::new();
    for d in datagrams {
        let _ = r.push(d);
    }
    r.flush();
    let mut out = Vec::new();
    r.drain(&mut out);
    (out, r.counters())
}

fn is_parity(d: &[u8]) -> bool {
    d.get(8) == Some(&0x92)
}

/// Delivered bytes equal the original, allowing trailing zeros on repaired packets.
fn same(original: &[u8], got: &[u8], repaired: bool) -> bool {
    if !repaired {
        return original == got;
    }
    got.len() >= original.len()
        && got[..original.len()] == *original
        && got[original.len()..].iter().all(|&b| b == 0)
}

/// Checks the receiver output is exactly `packets` (minus the indices in `lost`), in
/// order, with Lost events where packets were given up.
fn check(packets: &[Vec<u8>], lost: &[usize], got: &[Received]) {
    let mut it = got.iter().filter(|r| !matches!(r, Received::Beacon));
    let mut i = 0;
    while i < packets.len() {
        if lost.contains(&i) {
            let mut run = 0;
            while i < packets.len() && lost.contains(&i) {
                run += 1;
                i += 1;
            }
            assert_eq!(it.next(), Some(&Received::Lost { count: run }), "at {i}");
            continue;
        }
        match it.next() {
            Some(Received::Packet { asf, repaired, .. }) => {
                assert!(same(&packets[i], asf, *repaired), "packet {i} differs");
            }
            other => panic!("packet {i}: got {other:?}"),
        }
        i += 1;
    }
    assert_eq!(it.next(), None);
}

#[test]
fn single_loss_at_every_position_of_every_span_is_repaired() {
    for span in 1..=MAX_SPAN {
        let n = 3 * span as usize + 2; // full spans plus a short final one
        let packets: Vec<Vec<u8>> = (0..n).map(|i| packet(i as u32, 5 + (i * 7) % 23)).collect();
        let dgrams = send_all(span, 100, &packets);
        let data: Vec<usize> = (0..dgrams.len())
            .filter(|&k| !is_parity(&dgrams[k]))
            .collect();
        assert_eq!(data.len(), n);
        // The first packet is skipped: losing it looks exactly like joining later.
        for (i, &k) in data.iter().enumerate().skip(1) {
            let mut sent = dgrams.clone();
            sent.remove(k);
            let (got, c) = receive_all(&sent);
            check(&packets, &[], &got);
            assert_eq!((c.repaired, c.lost), (1, 0), "span {span} packet {i}");
            let repaired: Vec<_> = got
                .iter()
                .filter_map(|r| match r {
                    Received::Packet {
                        packet_id,
                        repaired: true,
                        format_id,
                        toggle,
                        ..
                    } => Some((*packet_id, *format_id, *toggle)),
                    _ => None,
                })
                .collect();
            assert_eq!(repaired, vec![(100 + i as u32, 0x123, false)]);
        }
    }
}

#[test]
fn two_losses_in_a_span_are_reported_not_invented() {
    let packets: Vec<Vec<u8>> = (0..20).map(|i| packet(i, 10 + i as usize)).collect();
    let dgrams = send_all(5, 0, &packets);
    // data datagram index of packet i: i + i / 5 (one parity after every 5)
    let at = |i: usize| i + i / 5;
    for (a, b) in [(5, 7), (5, 6), (8, 9), (1, 4)] {
        let sent: Vec<_> = dgrams
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != at(a) && *k != at(b))
            .map(|(_, d)| d.clone())
            .collect();
        let (got, c) = receive_all(&sent);
        check(&packets, &[a, b], &got);
        assert_eq!((c.repaired, c.lost), (0, 2));
    }
}

#[test]
fn lost_parity_is_harmless_and_lost_data_plus_parity_is_reported() {
    let packets: Vec<Vec<u8>> = (0..12).map(|i| packet(i, 30)).collect();
    let dgrams = send_all(4, 0, &packets);
    let no_parity: Vec<_> = dgrams.iter().filter(|d| !is_parity(d)).cloned().collect();
    let (got, c) = receive_all(&no_parity);
    check(&packets, &[], &got);
    assert_eq!((c.repaired, c.lost, c.parity), (0, 0, 0));

    // packet 5 (second span, index 6) and that span's parity (index 9)
    let sent: Vec<_> = dgrams
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != 6 && *k != 9)
        .map(|(_, d)| d.clone())
        .collect();
    let (got, c) = receive_all(&sent);
    check(&packets, &[5], &got);
    assert_eq!((c.repaired, c.lost), (0, 1));
}

#[test]
fn losses_without_fec_are_reported_at_once() {
    let packets: Vec<Vec<u8>> = (0..6).map(|i| packet(i, 8)).collect();
    let mut dgrams = send_all(0, 0, &packets);
    dgrams.remove(2);
    let mut r = MsbReceiver::new();
    for d in &dgrams[..3] {
        r.push(d).unwrap();
    }
    let mut got = Vec::new();
    r.drain(&mut got);
    assert_eq!(got.len(), 4, "no holding back without FEC: {got:?}");
    assert_eq!(got[2], Received::Lost { count: 1 });
}

#[test]
fn duplicates_and_reordering_within_a_span() {
    let packets: Vec<Vec<u8>> = (0..30).map(|i| packet(i, 3 + i as usize % 9)).collect();
    let dgrams = send_all(10, 7, &packets);
    // each span group (10 data + parity) reversed, and every datagram twice
    let mut sent = Vec::new();
    for group in dgrams.chunks(11) {
        for d in group.iter().rev() {
            sent.push(d.clone());
            sent.push(d.clone());
        }
    }
    let (got, c) = receive_all(&sent);
    check(&packets, &[], &got);
    // Reversed spans let the receiver rebuild each span's first packet from the parity
    // before the original arrives; the original then counts as late.
    assert_eq!((c.received, c.repaired, c.lost), (27, 3, 0));
    assert_eq!(c.duplicate_or_late, 33);

    // reordered group with one packet missing is still repaired
    let mut sent = Vec::new();
    for (g, group) in dgrams.chunks(11).enumerate() {
        for (k, d) in group.iter().enumerate().rev() {
            if g == 1 && k == 4 {
                continue;
            }
            sent.push(d.clone());
        }
    }
    let (got, c) = receive_all(&sent);
    check(&packets, &[], &got);
    // groups 0 and 2: early rebuild of their first packet; group 1: the hole (id 7 + 14)
    assert_eq!((c.repaired, c.lost), (3, 0));
    assert!(got.iter().any(|r| matches!(
        r,
        Received::Packet {
            packet_id: 21,
            repaired: true,
            ..
        }
    )));
}

#[test]
fn joining_mid_cycle() {
    let packets: Vec<Vec<u8>> = (0..25).map(|i| packet(i, 12)).collect();
    let dgrams = send_all(10, 0, &packets);
    // join at packet 4 (datagram 4), lose packet 6 (same, partial cycle) and packet 15
    let sent: Vec<_> = dgrams[4..]
        .iter()
        .enumerate()
        .filter(|(k, _)| *k + 4 != 6 && *k + 4 != 16)
        .map(|(_, d)| d.clone())
        .collect();
    let (got, c) = receive_all(&sent);
    check(&packets[4..], &[2], &got);
    assert_eq!((c.repaired, c.lost), (1, 1));
}

#[test]
fn ids_wrap_and_skip_the_beacon_value() {
    for first in [u32::MAX - 6, BEACON_ID - 6] {
        let packets: Vec<Vec<u8>> = (0..20).map(|i| packet(i, 16)).collect();
        let dgrams = send_all(5, first, &packets);
        for lose in 1..20 {
            let k = lose + lose / 5;
            let mut sent = dgrams.clone();
            sent.remove(k);
            let (got, c) = receive_all(&sent);
            check(&packets, &[], &got);
            assert_eq!((c.repaired, c.lost), (1, 0), "first {first:#x} lose {lose}");
        }
    }
}

#[test]
fn format_toggle_reaches_the_receiver() {
    let mut s = MsbSender::new(MsbSenderConfig {
        fec_span: 3,
        first_packet_id: 0,
    })
    .unwrap();
    let mut out = Vec::new();
    s.set_format(9, &mut out).unwrap();
    s.push(&packet(1, 10), &mut out).unwrap();
    s.push(&packet(2, 10), &mut out).unwrap();
    s.set_format(9, &mut out).unwrap();
    s.push(&packet(3, 10), &mut out).unwrap();
    s.push(&packet(4, 10), &mut out).unwrap();
    s.flush(&mut out);
    // lose the first packet after the toggle; it is rebuilt with the new wStreamID
    let lost_at = out.iter().position(|d| d[5] == 0x80).unwrap();
    out.remove(lost_at);
    let (got, c) = receive_all(&out);
    assert_eq!(c.repaired, 1);
    let formats: Vec<_> = got
        .iter()
        .map(|r| match r {
            Received::Packet {
                format_id,
                toggle,
                repaired,
                ..
            } => (*format_id, *toggle, *repaired),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        formats,
        vec![
            (9, false, false),
            (9, false, false),
            (9, true, true),
            (9, true, false)
        ]
    );
}

#[test]
fn beacons_and_bad_framing_are_counted() {
    let mut r = MsbReceiver::new();
    r.push(&beacon()).unwrap();
    assert!(r.push(b"MSBX").is_err());
    assert!(r.push(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
    // parity with a Type that is not 2
    let mut bad = MsbHeader {
        packet_id: 1,
        stream_id: 0,
        packet_size: 12,
    }
    .encode()
    .to_vec();
    bad.extend([0x92, 0x33, 0, 0]);
    assert!(matches!(r.push(&bad), Err(MsbError::BadParity { .. })));
    // data packet with dwPacketID "MSB " is refused quietly
    let mut magic = MsbHeader {
        packet_id: BEACON_ID,
        stream_id: 0,
        packet_size: 12,
    }
    .encode()
    .to_vec();
    magic.extend([0x82, 0, 0, 0]);
    r.push(&magic).unwrap();
    let c = r.counters();
    assert_eq!(
        (c.beacons, c.bad_framing, c.parity, c.received),
        (1, 4, 1, 0)
    );
    assert_eq!(r.poll(), Some(Received::Beacon));
    assert_eq!(r.poll(), None);
}

#[test]
fn sender_restart_resynchronises() {
    let packets: Vec<Vec<u8>> = (0..10).map(|i| packet(i, 10)).collect();
    let mut dgrams = send_all(5, 50_000, &packets[..5]);
    dgrams.extend(send_all(5, 3, &packets[5..]));
    let (got, c) = receive_all(&dgrams);
    check(&packets, &[], &got);
    assert_eq!(c.resyncs, 1);
}

#[test]
fn long_burst_loss_is_one_event_and_holding_is_bounded() {
    let packets: Vec<Vec<u8>> = (0..200).map(|i| packet(i, 10)).collect();
    let dgrams = send_all(10, 0, &packets);
    // lose packets 20..120 (datagrams 22..132)
    let sent: Vec<_> = dgrams[..22].iter().chain(&dgrams[132..]).cloned().collect();
    let mut r = MsbReceiver::new();
    let mut got = Vec::new();
    for d in &sent {
        r.push(d).unwrap();
        assert!(r.held_back() <= 16);
    }
    r.flush();
    r.drain(&mut got);
    let lost: Vec<usize> = (20..120).collect();
    check(&packets, &lost, &got);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_packets_with_one_loss_per_span_all_arrive(
        span in 1u8..=15,
        first in any::<u32>(),
        lens in prop::collection::vec(0usize..300, 1..80),
        losses in prop::collection::vec(any::<Option<u8>>(), 6..7),
    ) {
        let packets: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| packet(i as u32, l)).collect();
        let dgrams = send_all(span, first, &packets);
        // drop at most one data packet in each of the first spans
        let mut drop = Vec::new();
        for (g, loss) in losses.iter().enumerate() {
            if let Some(pos) = loss {
                let i = g * span as usize + (*pos % span) as usize;
                // packet 0 is never dropped: losing it looks exactly like joining later
                if i > 0 && i < packets.len() {
                    drop.push(i + i / span as usize);
                }
            }
        }
        let sent: Vec<_> = dgrams.iter().enumerate().filter(|(k, _)| !drop.contains(k)).map(|(_, d)| d.clone()).collect();
        let (got, c) = receive_all(&sent);
        check(&packets, &[], &got);
        prop_assert_eq!(c.repaired as usize, drop.len());
        prop_assert_eq!(c.lost, 0);
    }

    #[test]
    fn hostile_datagrams_never_panic_or_deliver_backwards(
        datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..64),
        seed_valid in any::<bool>(),
    ) {
        let mut r = MsbReceiver::new();
        if seed_valid {
            for d in send_all(3, 0, &[packet(1, 5), packet(2, 6)]) {
                let _ = r.push(&d);
            }
        }
        for mut d in datagrams {
            // make many of them pass the header checks
            if d.len() >= 8 {
                let n = d.len() as u16;
                d[6..8].copy_from_slice(&n.to_le_bytes());
                d[5] &= 0x87;
            }
            let _ = r.push(&d);
        }
        r.flush();
        let mut got = Vec::new();
        r.drain(&mut got);
        let ids: Vec<u32> = got.iter().filter_map(|g| match g {
            Received::Packet { packet_id, .. } => Some(*packet_id),
            _ => None,
        }).collect();
        // no id delivered twice in a row, and consecutive ids move forward (modulo resyncs)
        if r.counters().resyncs == 0 {
            for w in ids.windows(2) {
                prop_assert!(super::ecc::id_steps(w[0], w[1]) < 1 << 31 && w[0] != w[1]);
            }
        }
    }

    #[test]
    fn mutated_valid_streams_never_panic(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..40),
    ) {
        let packets: Vec<Vec<u8>> = (0..30).map(|i| packet(i, 20)).collect();
        let mut dgrams = send_all(4, 0, &packets);
        let n = dgrams.len();
        for (at, x) in flips {
            let d = &mut dgrams[at % n];
            let k = (at / n) % d.len();
            d[k] ^= x;
        }
        let (_got, _c) = receive_all(&dgrams);
    }
}

#[test]
fn lost_first_packet_is_rebuilt_when_its_span_has_more() {
    let packets: Vec<Vec<u8>> = (0..8).map(|i| packet(i, 9 + i as usize)).collect();
    let mut dgrams = send_all(4, 0, &packets);
    dgrams.remove(0);
    let (got, c) = receive_all(&dgrams);
    check(&packets, &[], &got);
    assert_eq!((c.repaired, c.lost), (1, 0));
}

#[test]
fn double_loss_waits_at_most_one_span() {
    let packets: Vec<Vec<u8>> = (0..40).map(|i| packet(i, 10)).collect();
    let dgrams = send_all(5, 0, &packets);
    // lose packets 6 and 8 (datagrams 7 and 9), never flush
    let mut r = MsbReceiver::new();
    let mut got = Vec::new();
    for (k, d) in dgrams.iter().enumerate() {
        if k != 7 && k != 9 {
            r.push(d).unwrap();
        }
        r.drain(&mut got);
        assert!(r.held_back() <= 16);
    }
    // everything up to the last packet came out without a flush
    let delivered = got
        .iter()
        .filter(|g| matches!(g, Received::Packet { .. }))
        .count();
    assert_eq!(delivered, 38);
    assert_eq!(r.counters().lost, 2);
}
