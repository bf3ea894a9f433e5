//! The access limits in the config files ([`crate::access::limits::LimitSet`]): the keys
//! shared by `limits:` in server.yaml and `limits:` in a station file, and the bit rate value
//! they are written in (`1Mbps`, `400 kbit/s`, `250000`).
//!
//! Why a module of its own: the same keys appear in two files, and the bit rate value checks
//! itself while read so a bad one is reported at its line and column like every other value
//! ([`super::values`]). `max_connection_rate` is server-only: a connection is refused at
//! accept, before it names a station.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::Deserialize as DeriveDeserialize;

use super::values::Ranged;
use crate::access::limits::LimitSet;

/// Lowest bandwidth limit accepted (bits per second): below any ASF stream.
pub const MIN_BPS: u64 = 1_000;
/// Highest bandwidth limit accepted: 100 Gbit/s.
pub const MAX_BPS: u64 = 100_000_000_000;

/// A bit rate in bits per second, written as a number or with a decimal unit: `250000`,
/// `400kbps`, `400 kbit/s`, `1Mbps`, `1.5 Mbit/s`, `10Gbps`.
pub struct Bitrate(pub u64);

/// Parses a bit rate; None when it is not one.
pub fn parse_bitrate(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "bps" | "bit/s" => 1,
        "kbps" | "kbit/s" => 1_000,
        "mbps" | "mbit/s" => 1_000_000,
        "gbps" | "gbit/s" => 1_000_000_000,
        _ => return None,
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(scale);
    }
    let f: f64 = num.parse().ok()?;
    let bps = (f * scale as f64).round();
    (bps.is_finite() && bps >= 0.0 && bps < u64::MAX as f64).then_some(bps as u64)
}

fn check<E: de::Error>(written: &str, v: u64) -> Result<Bitrate, E> {
    if !(MIN_BPS..=MAX_BPS).contains(&v) {
        return Err(E::custom(format!(
            "{written} is out of range 1kbps–100Gbps"
        )));
    }
    Ok(Bitrate(v))
}

impl<'de> Deserialize<'de> for Bitrate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bitrate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bit rate such as 250000, 400kbps or 1Mbps")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                check(&v.to_string(), v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is negative; a bit rate is expected"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let n = parse_bitrate(v).ok_or_else(|| {
                    E::custom(format!(
                        "`{}` is not a bit rate (write 250000, 400kbps or 1Mbps)",
                        v.escape_debug()
                    ))
                })?;
                check(v, n)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Most players, distribution connections (and connections per second) accepted as a limit.
pub type Count = Ranged<u32, 1, 1_000_000>;

/// `limits:` in a station file.
#[derive(DeriveDeserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of station limits (max_players, max_distribution_connections, max_player_bandwidth, max_distribution_bandwidth, max_bandwidth_per_player, max_fast_start_bandwidth)"
)]
pub(super) struct StationLimitsFile {
    max_players: Option<Count>,
    max_distribution_connections: Option<Count>,
    max_player_bandwidth: Option<Bitrate>,
    max_distribution_bandwidth: Option<Bitrate>,
    max_bandwidth_per_player: Option<Bitrate>,
    max_fast_start_bandwidth: Option<Bitrate>,
}

impl StationLimitsFile {
    pub(super) fn build(self) -> LimitSet {
        build(AccessLimitsFile {
            max_players: self.max_players,
            max_distribution_connections: self.max_distribution_connections,
            max_player_bandwidth: self.max_player_bandwidth,
            max_distribution_bandwidth: self.max_distribution_bandwidth,
            max_bandwidth_per_player: self.max_bandwidth_per_player,
            max_connection_rate: None,
            max_fast_start_bandwidth: self.max_fast_start_bandwidth,
        })
    }
}

/// The access limit keys as read (from either file).
pub(super) struct AccessLimitsFile {
    pub max_players: Option<Count>,
    pub max_distribution_connections: Option<Count>,
    pub max_player_bandwidth: Option<Bitrate>,
    pub max_distribution_bandwidth: Option<Bitrate>,
    pub max_bandwidth_per_player: Option<Bitrate>,
    pub max_connection_rate: Option<Count>,
    pub max_fast_start_bandwidth: Option<Bitrate>,
}

pub(super) fn build(f: AccessLimitsFile) -> LimitSet {
    LimitSet {
        players: f.max_players.map(|v| v.0),
        distribution_connections: f.max_distribution_connections.map(|v| v.0),
        player_bandwidth: f.max_player_bandwidth.map(|v| v.0),
        distribution_bandwidth: f.max_distribution_bandwidth.map(|v| v.0),
        bandwidth_per_player: f.max_bandwidth_per_player.map(|v| v.0),
        connection_rate: f.max_connection_rate.map(|v| v.0),
        fast_start_bandwidth: f.max_fast_start_bandwidth.map(|v| v.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const STATION: &str = "name: demo\nsource:\n  type: playlist\n  files: [a.asf]\n";

    fn errors<T: fmt::Debug>(r: Result<T, Vec<super::super::ConfigError>>) -> Vec<String> {
        match r {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn server_and_station_keys() {
        let text = "limits:\n  max_players: 200\n  max_distribution_connections: 4\n  max_player_bandwidth: 1Mbps\n  max_distribution_bandwidth: 20 Mbit/s\n  max_bandwidth_per_player: 500kbps\n  max_connection_rate: 50\n  max_fast_start_bandwidth: 2Mbps\n";
        let s = super::super::server::parse(Path::new("server.yaml"), text).expect("valid");
        assert_eq!(
            s.limits.access,
            LimitSet {
                players: Some(200),
                distribution_connections: Some(4),
                player_bandwidth: Some(1_000_000),
                distribution_bandwidth: Some(20_000_000),
                bandwidth_per_player: Some(500_000),
                connection_rate: Some(50),
                fast_start_bandwidth: Some(2_000_000),
            }
        );
        let text = format!("{STATION}limits:\n  max_players: 2\n  max_player_bandwidth: 800kbps\n");
        let st = super::super::station::parse(Path::new("s.yaml"), &text).expect("valid");
        assert_eq!(st.unicast.limits.players, Some(2));
        assert_eq!(st.unicast.limits.player_bandwidth, Some(800_000));
        let d = super::super::station::parse(Path::new("s.yaml"), STATION).expect("valid");
        assert!(d.unicast.limits.is_empty());
    }

    #[test]
    fn errors_point_at_the_value() {
        let e = errors(super::super::server::parse(
            Path::new("server.yaml"),
            "limits:\n  max_player_bandwidth: fast\n",
        ));
        assert!(
            e[0].starts_with(
                "server.yaml:2:25: limits.max_player_bandwidth: `fast` is not a bit rate"
            ),
            "{e:?}"
        );
        let e = errors(super::super::server::parse(
            Path::new("server.yaml"),
            "limits:\n  max_players: 0\n",
        ));
        assert_eq!(
            e,
            ["server.yaml:2:16: limits.max_players: 0 is out of range 1–1000000"]
        );
        let e = errors(super::super::server::parse(
            Path::new("server.yaml"),
            "limits:\n  max_bandwidth_per_player: 10\n",
        ));
        assert!(
            e[0].starts_with(
                "server.yaml:2:29: limits.max_bandwidth_per_player: 10 is out of range"
            ),
            "{e:?}"
        );
        // The connection rate is server-only: at accept no station is named yet.
        let text = format!("{STATION}limits:\n  max_connection_rate: 5\n");
        let e = errors(super::super::station::parse(Path::new("s.yaml"), &text));
        assert!(
            e[0].starts_with("s.yaml:6:3: limits.max_connection_rate: unknown field"),
            "{e:?}"
        );
    }

    #[test]
    fn bitrates() {
        let table = [
            ("250000", Some(250_000)),
            ("400kbps", Some(400_000)),
            ("400 kbit/s", Some(400_000)),
            ("1Mbps", Some(1_000_000)),
            ("1.5 Mbit/s", Some(1_500_000)),
            ("10Gbps", Some(10_000_000_000)),
            ("1MiB", None),
            ("fast", None),
            ("", None),
        ];
        for (v, want) in table {
            assert_eq!(parse_bitrate(v), want, "{v:?}");
        }
    }
}
