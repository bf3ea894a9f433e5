//! Fuzzes the WMSP pull client (`src/pull/`: the HTTP response reader, the lenient chunk
//! reader, the header assembler and the Describe/Play state machine of `WmspClient`) with
//! hostile upstream bytes.
//!
//! The input is what the upstream sends on each connection the client opens (split into
//! connections by `0xFF 0x00`-free length-prefixed items, each fed in pieces drawn from the
//! input; an odd first byte of an item closes the connection after it).
//! Properties checked:
//! - nothing panics, in any split;
//! - every header handed on is a complete ASF header no larger than `MAX_HEADER`, and every
//!   packet fits in one chunk (at most 65 535 bytes);
//! - headers and packets stay bounded by the bytes fed, losses by the connections (no event
//!   out of nothing);
//! - after a loss the client waits (no connection open) and each loss names the upstream.
#![no_main]

mod common;

use std::time::{Duration, Instant};

use asfcast::pull::chunks::MAX_HEADER;
use asfcast::pull::client::{ClientConfig, ClientEvent, Io, WmspClient};
use asfcast::pull::PullUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rng = common::Rng::new(data);
    let Ok(url) = PullUrl::parse("mmsh://127.0.0.1:8080/live") else {
        return;
    };
    let config = ClientConfig {
        url,
        backoff_min: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
        stall_timeout: Duration::from_secs(10),
        client_guid: [1; 16],
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut c = WmspClient::new(config, now);
    let mut fed = 0usize;
    let mut events = 0usize;
    let mut losses = 0usize;
    let mut connections = 0usize;
    for item in common::length_prefixed(data) {
        // Wait until the client connects (after a loss, at its retry time).
        let mut connect = false;
        while let Some(io) = c.io(now) {
            connect |= io == Io::Connect;
        }
        if !connect {
            now = c.deadline().max(now);
            while let Some(io) = c.io(now) {
                connect |= io == Io::Connect;
            }
        }
        if !connect {
            continue;
        }
        connections += 1;
        c.on_connected(now);
        let close = item.first().is_some_and(|b| b % 2 == 1);
        for piece in common::chunks(item, &mut rng) {
            fed += piece.len();
            c.on_data(piece, now);
            while c.io(now).is_some() {}
            if !c.connected() {
                break;
            }
        }
        if close && c.connected() {
            c.on_closed(None, now);
        }
        if rng.below(4) == 0 {
            now += Duration::from_secs(11);
            c.on_timeout(now);
        }
        while let Some(ev) = c.next_event() {
            match ev {
                ClientEvent::Header(h) => {
                    events += 1;
                    assert!(h.len() <= MAX_HEADER);
                    assert!(h.len() >= 80, "a header is at least its objects' heads");
                }
                ClientEvent::Packet(p) => {
                    events += 1;
                    assert!(p.len() <= 65_535);
                }
                ClientEvent::Lost { reason, retry_at } => {
                    losses += 1;
                    assert!(reason.contains("127.0.0.1:8080"));
                    assert!(retry_at > t0);
                    assert!(!c.connected());
                }
            }
        }
    }
    // A packet per 12 bytes at most (a `$D` chunk is at least 12) and a header per connection
    // (a Play may repeat the Describe's header), at most one loss per connection (plus one
    // for a stall timeout after the last).
    assert!(events <= fed / 12 + connections, "{events} events from {fed} bytes");
    assert!(losses <= connections + 1, "{losses} losses from {connections} connections");
});
