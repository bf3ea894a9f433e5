//! The `Transport:` header of SETUP (RFC 2326 §12.39): what the client offers, which offer the
//! server takes, and the echo it answers with.
//!
//! Only unicast RTP/AVP is served: over UDP (`RTP/AVP` or `RTP/AVP/UDP` with `client_port`) or
//! interleaved on the RTSP connection (`RTP/AVP/TCP`). Anything else — multicast, RTP/SAVP, RDT,
//! or UDP when the server refuses it — is not taken, so the caller answers `461 Unsupported
//! Transport` and FFmpeg (WMS mode) and VLC retry over TCP on the same connection
//! (rtsp-wmsp.md §1.4, §5).
//!
//! Quirks served:
//! - FFmpeg's WMS UDP setup sends `client_port=Q` without a range and, for later streams,
//!   re-sends the value the server echoed; the echo therefore repeats the client's own spelling.
//! - FFmpeg checks that the reply's lower transport equals the requested one and that exactly
//!   one transport spec comes back.
//! - A `destination=` parameter is ignored: media goes only to the address the RTSP connection
//!   comes from (no traffic reflection to third parties).

/// The lower transport of an RTP/AVP offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    Udp,
    Tcp,
}

/// One transport spec from the client's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `RTP/AVP`, `RTP/AVP/UDP` or `RTP/AVP/TCP` as the client wrote it (echoed back).
    pub spec: String,
    /// None for profiles we do not serve.
    pub lower: Option<Lower>,
    pub multicast: bool,
    /// `client_port=a[-b]`.
    pub client_port: Option<(u16, Option<u16>)>,
    /// `interleaved=a[-b]`.
    pub interleaved: Option<(u8, Option<u8>)>,
    /// `mode=play` (or no mode) — RECORD is refused.
    pub play: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("empty Transport header")]
    Empty,
    #[error("transport parameter `{0}` is malformed")]
    Param(String),
}

fn range<T: std::str::FromStr>(v: &str, name: &str) -> Result<(T, Option<T>), TransportError> {
    let bad = || TransportError::Param(format!("{name}={v}"));
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let a = a.trim().parse().map_err(|_| bad())?;
    let b = match b {
        Some(b) => Some(b.trim().parse().map_err(|_| bad())?),
        None => None,
    };
    Ok((a, b))
}

/// Parses every comma-separated spec of a Transport header value.
pub fn parse(value: &str) -> Result<Vec<Offer>, TransportError> {
    let mut out = Vec::new();
    for spec in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut parts = spec.split(';').map(str::trim);
        let proto = parts.next().unwrap_or_default();
        let lower = match proto.to_ascii_uppercase().as_str() {
            "RTP/AVP" | "RTP/AVP/UDP" => Some(Lower::Udp),
            "RTP/AVP/TCP" => Some(Lower::Tcp),
            _ => None,
        };
        let mut o = Offer {
            spec: proto.to_string(),
            lower,
            multicast: false,
            client_port: None,
            interleaved: None,
            play: true,
        };
        for p in parts.filter(|p| !p.is_empty()) {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (p, None),
            };
            match (k.to_ascii_lowercase().as_str(), v) {
                ("multicast", _) => o.multicast = true,
                ("client_port", Some(v)) => o.client_port = Some(range(v, "client_port")?),
                ("interleaved", Some(v)) => o.interleaved = Some(range(v, "interleaved")?),
                ("mode", Some(v)) => o.play = v.eq_ignore_ascii_case("play"),
                _ => {}
            }
        }
        out.push(o);
    }
    if out.is_empty() {
        return Err(TransportError::Empty);
    }
    Ok(out)
}

/// Where one set-up stream's RTP and RTCP go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dest {
    /// Client UDP ports (RTP, RTCP) at the peer's address.
    Udp { rtp: u16, rtcp: u16 },
    /// Interleaved channels on the RTSP connection.
    Tcp { rtp: u8, rtcp: u8 },
}

/// The offer the server takes and how it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub dest: Dest,
    /// The reply's `Transport:` value, without `ssrc` (added by the caller).
    pub reply: String,
}

/// The first offer the server serves, or None (⇒ 461). `allow_udp` is false when UDP is refused
/// by config or the server's RTP sockets are not open; `server_ports` are the RTP/RTCP pair;
/// `free_channel` is the lowest even channel no other stream uses, for TCP offers without
/// `interleaved=`; `channel_taken` tells whether a channel is already used by another stream.
/// `own_ports` are the server's own UDP ports: a client port among them (or 0) is refused, so
/// a client cannot make the server send RTP to its own sockets.
pub fn choose(
    offers: &[Offer],
    allow_udp: bool,
    server_ports: Option<(u16, u16)>,
    own_ports: &[u16],
    free_channel: Option<u8>,
    channel_taken: impl Fn(u8) -> bool,
) -> Option<Chosen> {
    for o in offers {
        if o.multicast || !o.play {
            continue;
        }
        match o.lower {
            Some(Lower::Udp) => {
                let (Some((rtp, rtcp)), Some((cp, cp2))) = (server_ports, o.client_port) else {
                    continue;
                };
                let client_rtcp = cp2.unwrap_or(cp.saturating_add(1));
                if !allow_udp
                    || cp == 0
                    || client_rtcp == 0
                    || own_ports.contains(&cp)
                    || own_ports.contains(&client_rtcp)
                {
                    continue;
                }
                let echo = match cp2 {
                    Some(b) => format!("{cp}-{b}"),
                    None => format!("{cp}"),
                };
                return Some(Chosen {
                    dest: Dest::Udp {
                        rtp: cp,
                        rtcp: client_rtcp,
                    },
                    reply: format!(
                        "{};unicast;client_port={echo};server_port={rtp}-{rtcp};mode=play",
                        o.spec
                    ),
                });
            }
            Some(Lower::Tcp) => {
                let (a, b) = match o.interleaved {
                    Some((a, b)) => (a, b.unwrap_or(a.saturating_add(1))),
                    None => match free_channel {
                        Some(a) => (a, a.saturating_add(1)),
                        None => continue,
                    },
                };
                if a == b || channel_taken(a) || channel_taken(b) {
                    continue;
                }
                return Some(Chosen {
                    dest: Dest::Tcp { rtp: a, rtcp: b },
                    reply: format!("{};unicast;interleaved={a}-{b};mode=play", o.spec),
                });
            }
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: Option<(u16, u16)> = Some((6970, 6971));

    fn pick(value: &str, udp: bool) -> Option<Chosen> {
        choose(&parse(value).unwrap(), udp, PORTS, &[], Some(0), |_| false)
    }

    #[test]
    fn ffmpeg_wms_udp_offer_is_echoed_in_its_own_spelling() {
        let c = pick("RTP/AVP/UDP;unicast;client_port=5000-5001;mode=play", true).unwrap();
        assert_eq!(
            c.dest,
            Dest::Udp {
                rtp: 5000,
                rtcp: 5001
            }
        );
        assert_eq!(
            c.reply,
            "RTP/AVP/UDP;unicast;client_port=5000-5001;server_port=6970-6971;mode=play"
        );
        // The single-port form of FFmpeg's second and later WMS SETUPs.
        let c = pick("RTP/AVP/UDP;unicast;client_port=5002;mode=play", true).unwrap();
        assert_eq!(
            c.dest,
            Dest::Udp {
                rtp: 5002,
                rtcp: 5003
            }
        );
        assert!(c.reply.contains(";client_port=5002;"), "{}", c.reply);
    }

    #[test]
    fn udp_refused_or_unusable_gives_no_choice() {
        assert!(pick("RTP/AVP;unicast;client_port=5000-5001", false).is_none());
        assert!(pick("RTP/AVP;multicast;client_port=5000-5001", true).is_none());
        assert!(pick("RTP/AVP;unicast", true).is_none(), "no client_port");
        assert!(pick("RTP/SAVP;unicast;client_port=5000-5001", true).is_none());
        assert!(pick("x-real-rdt/udp;client_port=5000", true).is_none());
        assert!(pick("RTP/AVP;unicast;client_port=5000;mode=record", true).is_none());
        let o = parse("RTP/AVP;unicast;client_port=5000-5001").unwrap();
        assert!(choose(&o, true, None, &[], Some(0), |_| false).is_none());
        assert!(parse("RTP/AVP;client_port=x-1").is_err());
        assert!(parse(" , ").is_err());
    }

    #[test]
    fn client_ports_aimed_at_the_server_are_refused() {
        let own = [5000, 5001, 6000];
        for (spec, ok) in [
            ("RTP/AVP;unicast;client_port=5000-5001", false),
            ("RTP/AVP;unicast;client_port=4999", false),
            ("RTP/AVP;unicast;client_port=6000-6001", false),
            ("RTP/AVP;unicast;client_port=0-1", false),
            ("RTP/AVP;unicast;client_port=7000-7001", true),
        ] {
            let c = choose(&parse(spec).unwrap(), true, PORTS, &own, Some(0), |_| false);
            assert_eq!(c.is_some(), ok, "{spec}");
        }
        // The next offer is taken when the first aims at the server.
        let c = choose(
            &parse("RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast").unwrap(),
            true,
            PORTS,
            &own,
            Some(0),
            |_| false,
        )
        .unwrap();
        assert!(matches!(c.dest, Dest::Tcp { .. }));
    }

    #[test]
    fn tcp_interleaved_and_fallback_in_the_offer_list() {
        let c = pick("RTP/AVP/TCP;unicast;interleaved=2-3;mode=play", true).unwrap();
        assert_eq!(c.dest, Dest::Tcp { rtp: 2, rtcp: 3 });
        assert_eq!(c.reply, "RTP/AVP/TCP;unicast;interleaved=2-3;mode=play");
        // No channels given: the free pair is assigned.
        let c = choose(
            &parse("RTP/AVP/TCP;unicast").unwrap(),
            true,
            PORTS,
            &[],
            Some(4),
            |_| false,
        )
        .unwrap();
        assert_eq!(c.dest, Dest::Tcp { rtp: 4, rtcp: 5 });
        // UDP refused: the TCP alternative in the same header is taken.
        let c = pick(
            "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1",
            false,
        )
        .unwrap();
        assert_eq!(c.dest, Dest::Tcp { rtp: 0, rtcp: 1 });
        // A channel another stream uses is not taken twice.
        let o = parse("RTP/AVP/TCP;unicast;interleaved=0-1").unwrap();
        assert!(choose(&o, true, PORTS, &[], Some(2), |c| c == 1).is_none());
    }
}
