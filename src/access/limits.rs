//! The limits on who may watch, modelled on the Windows Media Services limit set
//! (`ConnectedPlayers`, `OutgoingDistributionConnections`, `PlayerBandwidth`,
//! `OutgoingDistributionBandwidth`, `PerPlayerConnectionBandwidth`, `ConnectionRate`;
//! ingest-relay-ops.md §e), set server-wide (`limits:` in server.yaml) and per station
//! (`limits:` in the station file). Both apply: the server's against the whole box, the
//! station's against that station, so the lower value wins.
//!
//! Why pure: whether the third player fits is arithmetic on counts and bit rates; keeping it
//! apart from the sessions (which only ask, [`crate::station::sink::StationView::admit`]) and
//! the shell (which keeps the counts) lets one table of tests cover every rule, and every
//! protocol refuses for the same reasons.
//!
//! Distribution connections are other servers and caches pulling the stream (their
//! User-Agent says `NSServer` or `WMCacheProxy`): they are counted apart from players and have
//! limits of their own, so a relay is not refused because the players filled the box (or the
//! reverse).
//!
//! A station has one rendition, so "bandwidth per player" is a yes/no question: a station
//! whose bit rate exceeds the per-player limit refuses players (there is no thinner rendition
//! to give them), and a player announcing less bandwidth than the station's bit rate is
//! refused rather than left to stall.

use std::fmt;
use std::time::Instant;

/// One set of limits (all off by default). Bandwidths are in bits per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitSet {
    /// Most players at once (`max_players`).
    pub players: Option<u32>,
    /// Most distribution connections at once (`max_distribution_connections`).
    pub distribution_connections: Option<u32>,
    /// Most bandwidth all players together may take (`max_player_bandwidth`).
    pub player_bandwidth: Option<u64>,
    /// Most bandwidth all distribution connections together may take
    /// (`max_distribution_bandwidth`).
    pub distribution_bandwidth: Option<u64>,
    /// Most bandwidth one player may take (`max_bandwidth_per_player`).
    pub bandwidth_per_player: Option<u64>,
    /// Most new connections per second, refused at accept (`max_connection_rate`; server
    /// only: at accept no station is named yet).
    pub connection_rate: Option<u32>,
    /// Most bandwidth one player's fast start may take (`max_fast_start_bandwidth`): the
    /// fast-start rate is capped to this over the station's bit rate.
    pub fast_start_bandwidth: Option<u64>,
}

impl LimitSet {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == LimitSet::default()
    }
}

/// What kind of client asks to be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Player,
    /// Another server or a cache pulling the stream.
    Distribution,
}

impl Kind {
    /// A distribution connection names itself in its User-Agent (`NSServer/9.0`,
    /// `WMCacheProxy/9.0`); everything else is a player.
    pub fn of_user_agent(agent: Option<&str>) -> Kind {
        let Some(a) = agent else {
            return Kind::Player;
        };
        let a = a.to_ascii_lowercase();
        if a.contains("nsserver") || a.contains("wmcacheproxy") {
            Kind::Distribution
        } else {
            Kind::Player
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Player => "player",
            Kind::Distribution => "distribution",
        }
    }
}

/// A client that names a station and wants its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub kind: Kind,
    /// The bandwidth the client says it has (RTSP `Bandwidth:`, MMSH `Pragma: LinkBW=`), in
    /// bits per second, when it said.
    pub announced_bps: Option<u64>,
}

impl Admission {
    /// From the client's User-Agent and announced bandwidth.
    pub fn new(user_agent: Option<&str>, announced_bps: Option<u64>) -> Admission {
        Admission {
            kind: Kind::of_user_agent(user_agent),
            announced_bps,
        }
    }
}

/// The clients admitted so far (on one station, or on the whole box), by kind, with the
/// bandwidth they take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub players: u32,
    pub distribution: u32,
    pub player_bps: u64,
    pub distribution_bps: u64,
}

impl Load {
    /// Adds `n` clients of `kind` at `bps` each.
    pub fn add(&mut self, kind: Kind, n: u32, bps: u64) {
        let bw = bps.saturating_mul(u64::from(n));
        match kind {
            Kind::Player => {
                self.players = self.players.saturating_add(n);
                self.player_bps = self.player_bps.saturating_add(bw);
            }
            Kind::Distribution => {
                self.distribution = self.distribution.saturating_add(n);
                self.distribution_bps = self.distribution_bps.saturating_add(bw);
            }
        }
    }
}

/// Whose limit refused a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Server,
    Station,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Server => "server",
            Scope::Station => "station",
        })
    }
}

/// Why a client was refused: the rule, whose it is, and the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{scope} limits.max_players reached ({limit} players)")]
    Players { scope: Scope, limit: u32 },
    #[error("{scope} limits.max_distribution_connections reached ({limit} connections)")]
    DistributionConnections { scope: Scope, limit: u32 },
    #[error(
        "{scope} limits.max_player_bandwidth: {would} bit/s with this player is over {limit} bit/s"
    )]
    PlayerBandwidth {
        scope: Scope,
        limit: u64,
        would: u64,
    },
    #[error("{scope} limits.max_distribution_bandwidth: {would} bit/s with this connection is over {limit} bit/s")]
    DistributionBandwidth {
        scope: Scope,
        limit: u64,
        would: u64,
    },
    #[error("{scope} limits.max_bandwidth_per_player: the station's {bitrate} bit/s is over {limit} bit/s")]
    BandwidthPerPlayer {
        scope: Scope,
        limit: u64,
        bitrate: u64,
    },
    #[error("the client announced {announced} bit/s, less than the station's {bitrate} bit/s")]
    ClientBandwidth { announced: u64, bitrate: u64 },
}

impl Refusal {
    /// The rule's config key, for logs and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::Players { .. } => "max_players",
            Refusal::DistributionConnections { .. } => "max_distribution_connections",
            Refusal::PlayerBandwidth { .. } => "max_player_bandwidth",
            Refusal::DistributionBandwidth { .. } => "max_distribution_bandwidth",
            Refusal::BandwidthPerPlayer { .. } => "max_bandwidth_per_player",
            Refusal::ClientBandwidth { .. } => "client_bandwidth",
        }
    }

    /// A bandwidth rule (RTSP answers `453 Not Enough Bandwidth`) rather than a count
    /// (`503 Service Unavailable`).
    pub fn is_bandwidth(&self) -> bool {
        !matches!(
            self,
            Refusal::Players { .. } | Refusal::DistributionConnections { .. }
        )
    }
}

/// What an admitted client is granted beyond its admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// The most its fast start may run above real time (from `max_fast_start_bandwidth`);
    /// None: the configured `fast_start_rate` applies.
    pub fast_start_cap: Option<f64>,
}

impl Grant {
    /// The fast-start rate to use given the configured one: never above the cap, never below
    /// real time.
    pub fn fast_start_rate(&self, configured: f64) -> f64 {
        match self.fast_start_cap {
            Some(cap) => configured.min(cap).max(1.0),
            None => configured,
        }
    }
}

/// Decides whether one more client of `admission`'s kind fits, against the server's limits
/// with the whole box's load and the station's limits with the station's load; `bitrate` is
/// the station's current header's bit rate (what one more client adds).
pub fn admit(
    server: (&LimitSet, &Load),
    station: (&LimitSet, &Load),
    bitrate: u64,
    admission: &Admission,
) -> Result<Grant, Refusal> {
    if let Some(announced) = admission.announced_bps {
        if admission.kind == Kind::Player && announced > 0 && announced < bitrate {
            return Err(Refusal::ClientBandwidth { announced, bitrate });
        }
    }
    for (scope, (limits, load)) in [(Scope::Server, server), (Scope::Station, station)] {
        check(scope, limits, load, bitrate, admission.kind)?;
    }
    let cap = [server.0, station.0]
        .iter()
        .filter_map(|l| l.fast_start_bandwidth)
        .min();
    Ok(Grant {
        fast_start_cap: match cap {
            Some(c) if bitrate > 0 => Some(c as f64 / bitrate as f64),
            _ => None,
        },
    })
}

fn check(scope: Scope, l: &LimitSet, load: &Load, bitrate: u64, kind: Kind) -> Result<(), Refusal> {
    match kind {
        Kind::Player => {
            if let Some(limit) = l.bandwidth_per_player {
                if bitrate > limit {
                    return Err(Refusal::BandwidthPerPlayer {
                        scope,
                        limit,
                        bitrate,
                    });
                }
            }
            if let Some(limit) = l.players {
                if load.players >= limit {
                    return Err(Refusal::Players { scope, limit });
                }
            }
            if let Some(limit) = l.player_bandwidth {
                let would = load.player_bps.saturating_add(bitrate);
                if would > limit {
                    return Err(Refusal::PlayerBandwidth {
                        scope,
                        limit,
                        would,
                    });
                }
            }
        }
        Kind::Distribution => {
            if let Some(limit) = l.distribution_connections {
                if load.distribution >= limit {
                    return Err(Refusal::DistributionConnections { scope, limit });
                }
            }
            if let Some(limit) = l.distribution_bandwidth {
                let would = load.distribution_bps.saturating_add(bitrate);
                if would > limit {
                    return Err(Refusal::DistributionBandwidth {
                        scope,
                        limit,
                        would,
                    });
                }
            }
        }
    }
    Ok(())
}

/// `max_connection_rate`: a token bucket holding one second's worth of connections, refilled
/// at the rate. A burst beyond it is refused at accept, before any session is made.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRate {
    rate: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl ConnectionRate {
    pub fn new(per_second: u32) -> ConnectionRate {
        let rate = f64::from(per_second.max(1));
        ConnectionRate {
            rate,
            tokens: rate,
            last: None,
        }
    }

    /// The configured rate, per second.
    pub fn per_second(&self) -> u32 {
        self.rate as u32
    }

    /// Takes a token for one new connection at `now`; false: over the rate, refuse it.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Parses a bandwidth a client announces: RTSP `Bandwidth: 2147483647`, or the `LinkBW=`
/// directive of an MMSH `Pragma` (bits per second). None when absent or not a number.
pub fn announced_bandwidth(value: &str) -> Option<u64> {
    let v = value.trim();
    if let Ok(n) = v.parse() {
        return Some(n);
    }
    v.split(',').find_map(|d| {
        let (k, n) = d.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("linkbw") {
            n.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RATE: u64 = 400_000;

    fn player() -> Admission {
        Admission::new(Some("NSPlayer/12.0"), None)
    }
    fn relay() -> Admission {
        Admission::new(Some("NSServer/9.0"), None)
    }
    fn load(players: u32, distribution: u32) -> Load {
        let mut l = Load::default();
        l.add(Kind::Player, players, RATE);
        l.add(Kind::Distribution, distribution, RATE);
        l
    }

    #[test]
    fn kinds_from_user_agents() {
        let table = [
            (None, Kind::Player),
            (Some("NSPlayer/12.0.7601.17514"), Kind::Player),
            (Some("VLC/3.0.24 LibVLC/3.0.24"), Kind::Player),
            (Some("NSServer/9.0"), Kind::Distribution),
            (Some("nsserver/4.1.0.3928"), Kind::Distribution),
            (Some("WMCacheProxy/9.0"), Kind::Distribution),
        ];
        for (agent, kind) in table {
            assert_eq!(Kind::of_user_agent(agent), kind, "{agent:?}");
        }
    }

    /// Server limits and load, station limits and load, who asks, the rule expected to refuse.
    type Row<'a> = (
        &'a LimitSet,
        Load,
        &'a LimitSet,
        Load,
        Admission,
        Option<&'a str>,
    );

    #[test]
    fn rules_table() {
        let none = LimitSet::default();
        let bw = LimitSet {
            player_bandwidth: Some(1_000_000),
            ..none
        };
        let two = LimitSet {
            players: Some(2),
            ..none
        };
        let one_relay = LimitSet {
            distribution_connections: Some(1),
            distribution_bandwidth: Some(500_000),
            ..none
        };
        let per = LimitSet {
            bandwidth_per_player: Some(300_000),
            ..none
        };
        let eighty = |announced| Admission::new(Some("NSPlayer/9.0"), Some(announced));
        // (server limits, server load, station limits, station load, admission, expected rule)
        let table: Vec<Row> = vec![
            (&none, load(100, 100), &none, load(100, 100), player(), None),
            // 1 Mbit/s over 400 kbit/s players: two fit, the third is refused.
            (&none, load(1, 0), &bw, load(1, 0), player(), None),
            (
                &none,
                load(2, 0),
                &bw,
                load(2, 0),
                player(),
                Some("max_player_bandwidth"),
            ),
            (
                &bw,
                load(2, 0),
                &none,
                load(0, 0),
                player(),
                Some("max_player_bandwidth"),
            ),
            // Distribution connections do not take players' bandwidth, nor the reverse.
            (&none, load(0, 5), &bw, load(0, 5), player(), None),
            (&none, load(9, 0), &one_relay, load(9, 0), relay(), None),
            (
                &none,
                load(0, 1),
                &one_relay,
                load(0, 1),
                relay(),
                Some("max_distribution_connections"),
            ),
            (
                &one_relay,
                load(0, 1),
                &none,
                load(0, 0),
                relay(),
                Some("max_distribution_connections"),
            ),
            (
                &two,
                load(2, 0),
                &none,
                load(0, 0),
                player(),
                Some("max_players"),
            ),
            (
                &none,
                load(2, 0),
                &two,
                load(2, 0),
                player(),
                Some("max_players"),
            ),
            (&none, load(0, 7), &two, load(0, 7), player(), None),
            (&two, load(5, 0), &none, load(0, 0), relay(), None),
            // Lower value wins: the station's limit is lower than the server's.
            (
                &bw,
                load(1, 0),
                &two,
                load(2, 0),
                player(),
                Some("max_players"),
            ),
            (
                &none,
                load(0, 0),
                &per,
                load(0, 0),
                player(),
                Some("max_bandwidth_per_player"),
            ),
            (
                &per,
                load(0, 0),
                &none,
                load(0, 0),
                player(),
                Some("max_bandwidth_per_player"),
            ),
            (&per, load(0, 0), &none, load(0, 0), relay(), None),
            (
                &none,
                load(0, 0),
                &none,
                load(0, 0),
                eighty(80_000),
                Some("client_bandwidth"),
            ),
            (
                &none,
                load(0, 0),
                &none,
                load(0, 0),
                eighty(2_147_483_647),
                None,
            ),
        ];
        for (i, (sl, sload, tl, tload, adm, want)) in table.into_iter().enumerate() {
            let got = admit((sl, &sload), (tl, &tload), RATE, &adm);
            assert_eq!(got.err().map(|r| r.rule()), want, "row {i}");
        }
    }

    #[test]
    fn refusal_lines_and_bandwidth_kind() {
        let bw = LimitSet {
            player_bandwidth: Some(1_000_000),
            ..LimitSet::default()
        };
        let Err(r) = admit(
            (&LimitSet::default(), &load(2, 0)),
            (&bw, &load(2, 0)),
            RATE,
            &player(),
        ) else {
            panic!("admitted");
        };
        assert!(r.is_bandwidth());
        assert_eq!(
            r.to_string(),
            "station limits.max_player_bandwidth: 1200000 bit/s with this player is over 1000000 bit/s"
        );
        let two = LimitSet {
            players: Some(2),
            ..LimitSet::default()
        };
        let Err(r) = admit(
            (&two, &load(2, 0)),
            (&LimitSet::default(), &load(0, 0)),
            RATE,
            &player(),
        ) else {
            panic!("admitted");
        };
        assert!(!r.is_bandwidth());
        assert_eq!(
            r.to_string(),
            "server limits.max_players reached (2 players)"
        );
    }

    #[test]
    fn fast_start_cap() {
        let cap = LimitSet {
            fast_start_bandwidth: Some(1_000_000),
            ..LimitSet::default()
        };
        let low = LimitSet {
            fast_start_bandwidth: Some(200_000),
            ..LimitSet::default()
        };
        let g = admit(
            (&cap, &load(0, 0)),
            (&LimitSet::default(), &load(0, 0)),
            RATE,
            &player(),
        )
        .expect("admitted");
        assert!((g.fast_start_rate(4.0) - 2.5).abs() < 1e-9);
        assert!((g.fast_start_rate(2.0) - 2.0).abs() < 1e-9);
        // The lower of the two caps; never below real time.
        let g = admit((&cap, &load(0, 0)), (&low, &load(0, 0)), RATE, &player()).expect("admitted");
        assert!((g.fast_start_rate(4.0) - 1.0).abs() < 1e-9);
        let g = admit(
            (&LimitSet::default(), &load(0, 0)),
            (&LimitSet::default(), &load(0, 0)),
            RATE,
            &player(),
        )
        .expect("admitted");
        assert_eq!(g.fast_start_cap, None);
    }

    #[test]
    fn connection_rate_bucket() {
        let t0 = Instant::now();
        let mut b = ConnectionRate::new(5);
        let burst = (0..20).filter(|_| b.allow(t0)).count();
        assert_eq!(burst, 5);
        // A fifth of a second buys one more.
        assert!(b.allow(t0 + Duration::from_millis(200)));
        assert!(!b.allow(t0 + Duration::from_millis(200)));
        // A long pause fills the bucket, no more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| b.allow(later)).count(), 5);
    }

    #[test]
    fn announced_bandwidths() {
        let table = [
            ("2147483647", Some(2_147_483_647)),
            (" 56000 ", Some(56_000)),
            (
                "LinkBW=2147483647, AccelBW=1048576, AccelDuration=18000",
                Some(2_147_483_647),
            ),
            ("no-cache, linkbw=80000", Some(80_000)),
            ("xPlayStrm=1", None),
            ("LinkBW=lots", None),
            ("", None),
        ];
        for (v, want) in table {
            assert_eq!(announced_bandwidth(v), want, "{v:?}");
        }
    }
}
