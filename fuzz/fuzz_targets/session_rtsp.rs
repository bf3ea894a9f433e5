//! Fuzzes a whole RTSP (with interleaved frames, TCP and UDP transports) session (`RtspSession`, src/rtsp/session.rs) as the shell drives it: a client's
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

use asfcast::rtsp::{RtspConfig, RtspSession};
use asfcast::station::sink::Protocol;
use asfcast::station::sink::UdpPorts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = common::demo();
    let view = common::View::new(Protocol::Rtsp);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut rng = common::Rng::new(data);
    let cfg = RtspConfig {
        allow_udp: data.first().is_some_and(|b| b & 1 == 0),
        mtu: 1400,
        request_max_bytes: 8192,
        handshake_timeout: Duration::from_secs(10),
        session_timeout: Duration::from_secs(60),
        feed: common::feed(),
    };
    let ports = UdpPorts {
        mms_data: None,
        rtp: Some(6970),
        rtcp: Some(6971),
    };
    let mut s = RtspSession::new(
        cfg,
        peer,
        ports,
        rand::SeedableRng::seed_from_u64(7),
        d.base,
    );
    common::drive(&mut s, &view, data, &mut rng);
});
