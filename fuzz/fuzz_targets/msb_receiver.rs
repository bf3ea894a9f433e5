//! Fuzzes the MS-MSB multicast receiver (`src/msb/receiver.rs`, `MsbReceiver`) and the
//! datagram classifier (`msb::classify`).
//!
//! The first input byte picks a mode; the rest is split into datagrams (a 16-bit
//! little-endian length before each).
//! - Mode even, raw datagrams: `classify` and `push` never panic; a classified packet's
//!   header re-encodes to the datagram's first 8 bytes and its ASF bytes are the rest;
//!   beacons and refused datagrams are counted exactly; at most 16 packets are held back;
//!   after `flush` nothing is held; every delivered packet is no longer than the longest
//!   datagram; no more packets are delivered than data datagrams pushed, and the losses
//!   reported stay within 1 024 per datagram.
//! - Mode odd, round trip: the datagrams are ASF packets sent through `MsbSender` (FEC span
//!   from the mode byte) and every datagram it writes goes to the receiver: each packet the
//!   sender took comes out once, in order, not repaired, nothing is lost, and it equals the
//!   packet sent (ECC bytes reset to `82 00 00` when the sender rewrote them).
#![no_main]

mod common;

use asfcast::msb::{classify, Datagram, MsbReceiver, MsbSender, MsbSenderConfig, Received};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let grams = common::length_prefixed(rest);
    if mode % 2 == 0 {
        raw(&grams);
    } else {
        round_trip(mode, &grams);
    }
});

fn raw(grams: &[&[u8]]) {
    let mut rx = MsbReceiver::new();
    let (mut beacons, mut refused, mut data_grams) = (0u64, 0u64, 0u64);
    let longest = grams.iter().map(|g| g.len()).max().unwrap_or(0);
    let mut got = Vec::new();
    for g in grams {
        match classify(g) {
            Ok(Datagram::Beacon) => beacons += 1,
            Ok(Datagram::Packet {
                header,
                asf,
                is_parity,
            }) => {
                assert_eq!(&header.encode()[..], &g[..8]);
                assert_eq!(asf, &g[8..]);
                assert!(!asf.is_empty());
                assert_eq!(usize::from(header.packet_size), g.len());
                let _ = (header.format_id(), header.toggle());
                if !is_parity {
                    data_grams += 1;
                }
            }
            Err(e) => {
                refused += 1;
                let _ = e.to_string();
            }
        }
        if rx.push(g).is_err() {
            // classify errors and unusable parity packets.
        }
        assert!(rx.held_back() <= 16, "{} packets held back", rx.held_back());
        rx.drain(&mut got);
    }
    rx.flush();
    assert_eq!(rx.held_back(), 0, "packets held after flush");
    rx.drain(&mut got);
    assert_eq!(rx.poll(), None);
    let c = rx.counters();
    assert_eq!(c.beacons, beacons);
    assert!(c.bad_framing >= refused);
    let (mut packets, mut lost) = (0u64, 0u64);
    for r in &got {
        match r {
            Received::Packet { asf, .. } => {
                packets += 1;
                assert!(
                    asf.len() <= longest,
                    "delivered packet longer than any datagram"
                );
            }
            Received::Lost { count } => lost += u64::from(*count),
            Received::Beacon => {}
        }
    }
    assert!(
        packets <= data_grams + c.repaired,
        "{packets} packets from {data_grams} data datagrams"
    );
    assert!(lost <= 1024 * (grams.len() as u64 + 1), "{lost} lost");
}

fn round_trip(mode: u8, packets: &[&[u8]]) {
    let span = (mode >> 1) % 16;
    let mut tx = MsbSender::new(MsbSenderConfig {
        fec_span: span,
        first_packet_id: u32::from(mode) << 24,
    })
    .expect("span within 0..=15");
    let mut out = Vec::new();
    tx.set_format(u16::from(mode) & 0x7FF, &mut out)
        .expect("format id fits");
    let mut sent = Vec::new();
    for p in packets {
        if tx.push(p, &mut out).is_ok() {
            sent.push(*p);
        }
    }
    tx.flush(&mut out);
    let mut rx = MsbReceiver::new();
    for g in &out {
        rx.push(g)
            .unwrap_or_else(|e| panic!("receiver refused the sender's datagram: {e}"));
    }
    rx.flush();
    let mut got = Vec::new();
    rx.drain(&mut got);
    let got: Vec<Vec<u8>> = got
        .into_iter()
        .map(|r| match r {
            Received::Packet { asf, repaired, .. } => {
                assert!(!repaired, "nothing was lost, yet a packet was repaired");
                asf
            }
            other => panic!("unexpected {other:?} with no loss"),
        })
        .collect();
    assert_eq!(got.len(), sent.len(), "packets in != packets out");
    for (g, s) in got.iter().zip(&sent) {
        let same = g[..] == s[..]
            || (g.len() == s.len() && g.len() >= 3 && g[..3] == [0x82, 0, 0] && g[3..] == s[3..]);
        assert!(same, "packet changed: sent {s:02x?} got {g:02x?}");
    }
}
