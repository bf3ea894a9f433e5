//! Fuzzes a whole MMS (TCP commands, MMSU data) session (`MmsSession`, src/mms/session.rs) as the shell drives it: a client's
//! bytes in chunk splits drawn from the input, against a station view serving the demo
//! station (`station-configs/media/demo.asf`, 40 packets) under `/demo`.
//!
//! Between chunks the clock moves on, due timeouts fire, station packets and header changes
//! arrive once the session plays `demo`, and the socket takes only part of the output
//! (see `common::drive`). Properties checked: nothing panics; output and datagrams stay
//! bounded by what the input could ask for; the output queue's accounting agrees with its
//! slices; a closed session is not driven further.
#![no_main]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use asfcast::mms::{MmsConfig, MmsSession};
use asfcast::station::sink::Protocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = common::demo();
    let view = common::View::new(Protocol::Mms);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut rng = common::Rng::new(data);
    let cfg = MmsConfig {
        feed: common::feed(),
        request_max_bytes: 16 * 1024,
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(3),
        udp_port: Some(7007),
        own_udp_ports: vec![7007],
    };
    let mut s = MmsSession::new(peer, cfg, d.base);
    common::drive(&mut s, &view, data, &mut rng);
});
