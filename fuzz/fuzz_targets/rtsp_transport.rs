//! Fuzzes the RTSP `Transport:` header parser and the server's choice among the offers
//! (`src/rtsp/transport.rs`).
//!
//! The input is the header value (lossy UTF-8, without line breaks, as the request parser
//! hands it over); the first byte also picks the server's settings. Properties checked:
//! - `parse` and `choose` never panic; `parse` is `Err(Empty)` exactly when there is no
//!   non-empty spec, and each offer's spec is trimmed and free of `,` and `;`;
//! - a chosen offer is a served one (unicast, `mode=play`, a known lower transport), UDP
//!   only when allowed, with a non-zero client port, and TCP channels distinct and free;
//! - the reply's `Transport:` value parses back to one offer with the same lower transport,
//!   ports or channels, and `mode=play`.
#![no_main]

use asfcast::rtsp::transport::{choose, parse, Dest, Lower, TransportError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let flags = data.first().copied().unwrap_or(0);
    let text =
        String::from_utf8_lossy(data.get(1..).unwrap_or_default()).replace(['\r', '\n'], " ");
    let offers = match parse(&text) {
        Ok(o) => o,
        Err(e) => {
            let _ = e.to_string();
            if e == TransportError::Empty {
                assert!(text.split(',').all(|s| s.trim().is_empty()));
            }
            return;
        }
    };
    assert!(!offers.is_empty());
    for o in &offers {
        assert_eq!(o.spec.trim(), o.spec);
        assert!(!o.spec.contains([',', ';']));
    }
    let allow_udp = flags & 1 != 0;
    let ports = (flags & 2 != 0).then_some((6970, 6971));
    let free = (flags & 4 != 0).then_some(flags & 0xF0);
    let taken = |c: u8| flags & 8 != 0 && c % 4 == 0;
    let Some(chosen) = choose(&offers, allow_udp, ports, &[5000, 5001], free, taken) else {
        return;
    };
    let back = parse(&chosen.reply).expect("reply parses");
    assert_eq!(back.len(), 1, "reply is one spec: {}", chosen.reply);
    let b = &back[0];
    assert!(b.play && !b.multicast);
    match chosen.dest {
        Dest::Udp { rtp, rtcp } => {
            assert!(allow_udp && ports.is_some() && rtp != 0);
            assert_eq!(b.lower, Some(Lower::Udp));
            assert_eq!(b.client_port.map(|(a, _)| a), Some(rtp));
            let _ = rtcp;
        }
        Dest::Tcp { rtp, rtcp } => {
            assert_ne!(rtp, rtcp);
            assert!(!taken(rtp) && !taken(rtcp));
            assert_eq!(b.lower, Some(Lower::Tcp));
            assert_eq!(b.interleaved, Some((rtp, Some(rtcp))));
        }
    }
    assert!(offers
        .iter()
        .any(|o| o.spec == b.spec && o.lower == b.lower));
});
