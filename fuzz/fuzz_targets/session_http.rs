//! Fuzzes a whole HTTP (announcement routes, then MMSH Describe/Play) session (`HttpSession`, src/http/session.rs) as the shell drives it: a client's
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

use asfcast::http::mmsh::stream::StreamConfig;
use asfcast::http::session::{HttpSession, SessionLimits};
use asfcast::station::sink::Protocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = common::demo();
    let view = common::View::new(Protocol::Mmsh);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut rng = common::Rng::new(data);
    let limits = SessionLimits {
        max_request_bytes: 8192,
        handshake_timeout: Duration::from_secs(10),
        stream: StreamConfig {
            feed: common::feed(),
            silence_timeout: Duration::from_secs(30),
        },
    };
    let mut s = HttpSession::new(limits, peer, 1, d.base);
    common::drive(&mut s, &view, data, &mut rng);
});
