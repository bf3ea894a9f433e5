//! The `access:` sections: IP rule lists in the server file (`watch`, `publish`, `api`,
//! `log_agent`) and in a station file (`watch`, `publish`). The rules themselves and how they
//! match are [`crate::access`]; this is their file shape.
//!
//! Why a self-checking value for each address: a subnet that cannot be right (`10.0.0.0/33`,
//! `::ffff:0:0/200`, `10.0.0.1/8`, garbage) is refused by `asfcast check` at its own
//! file:line:column, like every other value, instead of silently matching nothing.
//!
//! ```yaml
//! access:
//!   watch:
//!     default: deny            # for addresses no rule matches; allow when left out
//!     rules:                   # tried in order, the first match decides
//!       - deny: 10.1.0.0/16
//!       - allow: 10.0.0.0/8
//!       - allow: "2001:db8::/32"
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::access::{Action, Cidr, IpRules, Rule, ServerAccess, StationAccess};

/// Most rules in one list: enough for any site, small enough to check per connection.
pub const MAX_RULES: usize = 4096;

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of access lists (watch, publish, api, log_agent)"
)]
pub(super) struct ServerAccessFile {
    watch: Option<RulesFile>,
    publish: Option<RulesFile>,
    api: Option<RulesFile>,
    log_agent: Option<RulesFile>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of access lists (watch, publish)"
)]
pub(super) struct StationAccessFile {
    watch: Option<RulesFile>,
    publish: Option<RulesFile>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an access list: a mapping of default (allow or deny) and rules"
)]
struct RulesFile {
    default: Option<ActionFile>,
    rules: Option<RuleList>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ActionFile {
    Allow,
    Deny,
}

/// One rule: a mapping with a single key, `allow` or `deny`, whose value is an address or
/// subnet (`- deny: 10.1.0.0/16`).
enum RuleFile {
    Allow(CidrValue),
    Deny(CidrValue),
}

impl<'de> Deserialize<'de> for RuleFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RuleFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rule: `allow: <address or subnet>` or `deny: <address or subnet>`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RuleFile, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "an empty rule; write `allow: <address or subnet>` or `deny: <address or subnet>`",
                    ));
                };
                let rule = match key.as_str() {
                    "allow" => RuleFile::Allow(map.next_value()?),
                    "deny" => RuleFile::Deny(map.next_value()?),
                    other => return Err(de::Error::unknown_variant(other, &["allow", "deny"])),
                };
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "one rule per list entry: either `allow` or `deny`",
                    ));
                }
                Ok(rule)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// The rules of a list, at most [`MAX_RULES`].
struct RuleList(Vec<RuleFile>);

impl<'de> Deserialize<'de> for RuleList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Vec::<RuleFile>::deserialize(deserializer)?;
        if v.len() > MAX_RULES {
            return Err(de::Error::custom(format!(
                "{} rules; a list holds at most {MAX_RULES} (use wider subnets)",
                v.len()
            )));
        }
        Ok(RuleList(v))
    }
}

/// An address or subnet, checked as it is read.
struct CidrValue(Cidr);

impl<'de> Deserialize<'de> for CidrValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CidrValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an IP address or a subnet (10.0.0.0/8, 2001:db8::/32)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CidrValue, E> {
                v.parse().map(CidrValue).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

fn rules(file: Option<RulesFile>) -> IpRules {
    let Some(f) = file else {
        return IpRules::default();
    };
    IpRules {
        default: match f.default {
            None | Some(ActionFile::Allow) => Action::Allow,
            Some(ActionFile::Deny) => Action::Deny,
        },
        rules: f
            .rules
            .map(|l| l.0)
            .unwrap_or_default()
            .into_iter()
            .map(|r| match r {
                RuleFile::Allow(c) => Rule {
                    action: Action::Allow,
                    net: c.0,
                },
                RuleFile::Deny(c) => Rule {
                    action: Action::Deny,
                    net: c.0,
                },
            })
            .collect(),
    }
}

/// The server's lists (every list open when the section is left out).
pub(super) fn server(file: Option<ServerAccessFile>) -> ServerAccess {
    let Some(f) = file else {
        return ServerAccess::default();
    };
    ServerAccess {
        watch: rules(f.watch),
        publish: rules(f.publish),
        api: rules(f.api),
        log_agent: rules(f.log_agent),
    }
}

/// A station's lists (open when the section is left out).
pub(super) fn station(file: Option<StationAccessFile>) -> StationAccess {
    let Some(f) = file else {
        return StationAccess::default();
    };
    StationAccess {
        watch: rules(f.watch),
        publish: rules(f.publish),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use crate::access::Action;
    use crate::config::server::parse;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn server_lists_are_read_in_order_with_defaults() {
        let text = "access:\n  watch:\n    default: deny\n    rules:\n      - deny: 10.1.0.0/16\n      - allow: 10.0.0.0/8\n  api: {rules: [{deny: \"::1\"}]}\n";
        let c = match parse(Path::new("server.yaml"), text) {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        };
        let w = &c.access.watch;
        assert_eq!(w.default, Action::Deny);
        assert_eq!(w.rules.len(), 2);
        assert!(!w.allows(ip("10.1.2.3")));
        assert!(w.allows(ip("::ffff:10.2.0.1")));
        assert!(!w.allows(ip("192.0.2.1")));
        assert_eq!(c.access.api.default, Action::Allow);
        assert!(!c.access.api.allows(ip("::1")));
        assert!(c.access.publish.is_open() && c.access.log_agent.is_open());
    }

    #[test]
    fn bad_entries_point_at_their_place() {
        for (text, want) in [
            (
                "access:\n  watch:\n    rules:\n      - deny: 10.0.0.0/33\n",
                "server.yaml:4:15: access.watch.rules[0].deny: `10.0.0.0/33`: the prefix length must be 0–32",
            ),
            (
                "access:\n  publish:\n    rules:\n      - {allow: 10.0.0.0/8, deny: 10.0.0.0/8}\n",
                "server.yaml:4:9: access.publish.rules[0]: one rule per list entry",
            ),
            (
                "access:\n  watch:\n    rules:\n      - {}\n",
                "server.yaml:4:9: access.watch.rules[0]: an empty rule",
            ),
            (
                "access:\n  watch:\n    default: maybe\n",
                "server.yaml:3:14: access.watch.default: unknown variant `maybe`",
            ),
            (
                "access:\n  play: {}\n",
                "server.yaml:2:3: access.play: unknown field `play`",
            ),
        ] {
            let errors = match parse(Path::new("server.yaml"), text) {
                Ok(c) => panic!("accepted: {c:?}"),
                Err(e) => e.iter().map(ToString::to_string).collect::<Vec<_>>(),
            };
            assert!(errors.iter().any(|e| e.starts_with(want)), "want {want:?}: {errors:?}");
        }
    }
}
