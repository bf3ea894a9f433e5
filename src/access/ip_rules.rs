//! IP rules: who may connect, by address. An ordered list of `allow`/`deny` rules, each an
//! address or a CIDR subnet (IPv4 or IPv6), and a default for addresses no rule matches. The
//! first rule that matches decides, so a narrow `deny` goes before the wider `allow` it cuts a
//! hole in (`[{deny: 10.1.0.0/16}, {allow: 10.0.0.0/8}]`, default deny).
//!
//! Why every address is compared as IPv6: a dual-stack listener (`[::]:80`) reports an IPv4
//! client as `::ffff:10.0.0.1`, and an operator writes `10.0.0.0/8`. Both the client and the
//! rule are put in the IPv6 space (an IPv4 address as its IPv4-mapped form, an IPv4 prefix
//! `/n` as `/96+n`), so `::ffff:10.0.0.1` matches `10.0.0.0/8`, `10.0.0.1` matches
//! `::ffff:10.0.0.0/104`, and `::/0` matches every client, IPv4 ones included.
//!
//! Pure: parsing and matching, no sockets, no config file (its shape is
//! [`crate::config::access`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a text is not an address or subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error(
        "`{0}` is not an IP address or a subnet (address/prefix, e.g. 10.0.0.0/8, 2001:db8::/32)"
    )]
    NotAnAddress(String),
    #[error("`{text}`: the prefix length must be 0–{max} for an {family} address")]
    PrefixTooLong {
        text: String,
        family: &'static str,
        max: u8,
    },
    #[error("`{text}` has address bits set past its prefix; the subnet is {subnet}")]
    HostBits { text: String, subnet: Cidr },
}

/// An address (a `/32` or `/128`) or a subnet, as written (IPv4 or IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// `ip` in the IPv6 space: an IPv4 address as its IPv4-mapped form.
fn as_v6(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The mask of a `/prefix` in 128 bits.
fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

impl Cidr {
    /// The subnet `addr/prefix`; None when the prefix is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        (prefix <= max_prefix(addr)).then_some(Cidr { addr, prefix })
    }

    /// The address as written.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length as written.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The prefix length in the IPv6 space.
    fn prefix_v6(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 96 + self.prefix,
            IpAddr::V6(_) => self.prefix,
        }
    }

    /// Does the subnet hold `ip` (IPv4-mapped IPv6 and IPv4 alike)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let m = mask(self.prefix_v6());
        as_v6(ip) & m == as_v6(self.addr) & m
    }

    /// The subnet with the bits past the prefix cleared.
    fn network(&self) -> Cidr {
        let m = mask(self.prefix_v6());
        let bits = as_v6(self.addr) & m;
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((bits & 0xffff_ffff) as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
        };
        Cidr { addr, ..*self }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (`10.0.0.1`, `::1`: one host). A
    /// subnet with bits set past its prefix (`10.0.0.1/8`) is refused: it is most likely a
    /// typo, and the error names the subnet it would be.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError::NotAnAddress(s.escape_debug().to_string());
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = max_prefix(addr);
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                // Digits only: a value past u8 is as wrong as one past the family's maximum.
                let n = p.parse::<u8>().unwrap_or(u8::MAX);
                if n > max {
                    return Err(CidrError::PrefixTooLong {
                        text: text.to_string(),
                        family: if max == 32 { "IPv4" } else { "IPv6" },
                        max,
                    });
                }
                n
            }
        };
        let cidr = Cidr { addr, prefix };
        let net = cidr.network();
        if net != cidr {
            return Err(CidrError::HostBits {
                text: text.to_string(),
                subnet: net,
            });
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What a rule (or the default) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Allow,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// One rule: allow or deny the addresses of a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub net: Cidr,
}

/// An ordered rule list with its default; the empty list with default allow lets everyone in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRules {
    /// For addresses no rule matches.
    pub default: Action,
    /// Tried in order; the first that matches decides.
    pub rules: Vec<Rule>,
}

impl IpRules {
    /// What the rules decide for `ip`: the first matching rule's action, else the default.
    pub fn decide(&self, ip: IpAddr) -> Action {
        self.rules
            .iter()
            .find(|r| r.net.contains(ip))
            .map_or(self.default, |r| r.action)
    }

    /// May `ip` in?
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.decide(ip) == Action::Allow
    }

    /// Whether the list lets everyone in whatever the address (nothing to check).
    pub fn is_open(&self) -> bool {
        self.default == Action::Allow && self.rules.iter().all(|r| r.action == Action::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        match s.parse() {
            Ok(c) => c,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        match s.parse() {
            Ok(ip) => ip,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn rules(default: Action, list: &[(Action, &str)]) -> IpRules {
        IpRules {
            default,
            rules: list
                .iter()
                .map(|&(action, net)| Rule {
                    action,
                    net: cidr(net),
                })
                .collect(),
        }
    }

    #[test]
    fn contains_table() {
        // (subnet, address, contained)
        let table: &[(&str, &str, bool)] = &[
            // IPv4
            ("10.0.0.0/8", "10.0.0.1", true),
            ("10.0.0.0/8", "10.255.255.255", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("10.1.0.0/16", "10.1.2.3", true),
            ("10.1.0.0/16", "10.2.0.1", false),
            // prefix edges
            ("0.0.0.0/0", "1.2.3.4", true),
            ("0.0.0.0/0", "255.255.255.255", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("192.0.2.7/32", "192.0.2.7", true),
            ("192.0.2.7/32", "192.0.2.6", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("192.0.2.6/31", "192.0.2.7", true),
            ("192.0.2.6/31", "192.0.2.8", false),
            ("128.0.0.0/1", "127.255.255.255", false),
            ("128.0.0.0/1", "128.0.0.0", true),
            // IPv6
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8::/32", "10.0.0.1", false),
            ("::1/128", "::1", true),
            ("::1/128", "::2", false),
            ("::1", "::1", true),
            ("::/0", "2001:db8::1", true),
            ("fe80::/10", "febf::1", true),
            ("fe80::/10", "fec0::1", false),
            // IPv4-mapped IPv6 clients against IPv4 rules, and back
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("10.0.0.0/8", "::ffff:11.0.0.1", false),
            ("127.0.0.2/32", "::ffff:127.0.0.2", true),
            ("::ffff:10.0.0.0/104", "10.3.2.1", true),
            ("::ffff:10.0.0.0/104", "11.3.2.1", false),
            ("::ffff:0:0/96", "192.0.2.1", true),
            ("::ffff:0:0/96", "2001:db8::1", false),
            ("::/0", "192.0.2.1", true),
            // an IPv4-compatible (not mapped) address is an IPv6 one
            ("10.0.0.0/8", "::10.0.0.1", false),
        ];
        for &(net, addr, want) in table {
            assert_eq!(cidr(net).contains(ip(addr)), want, "{net} ∋ {addr}");
        }
    }

    #[test]
    fn parse_refusals() {
        for bad in [
            "",
            "garbage",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "10.0.0.0 /8",
            "::1%eth0",
            "/8",
        ] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(CidrError::NotAnAddress(_))),
                "{bad:?}"
            );
        }
        for (bad, max) in [
            ("10.0.0.0/33", 32),
            ("10.0.0.0/999", 32),
            ("::ffff:0:0/200", 128),
            ("::/129", 128),
        ] {
            match bad.parse::<Cidr>() {
                Err(CidrError::PrefixTooLong { max: m, .. }) => assert_eq!(m, max, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let e = "10.0.0.1/8".parse::<Cidr>().err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("`10.0.0.1/8` has address bits set past its prefix; the subnet is 10.0.0.0/8")
        );
        assert!(matches!(
            "2001:db8::1/32".parse::<Cidr>(),
            Err(CidrError::HostBits { .. })
        ));
        assert_eq!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("`10.0.0.0/33`: the prefix length must be 0–32 for an IPv4 address")
        );
    }

    #[test]
    fn parse_accepts_and_displays() {
        for (text, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.0.0.1", "10.0.0.1/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"),
        ] {
            assert_eq!(cidr(text).to_string(), shown);
        }
    }

    #[test]
    fn first_match_wins_and_defaults() {
        use Action::{Allow, Deny};
        let r = rules(Deny, &[(Deny, "10.1.0.0/16"), (Allow, "10.0.0.0/8")]);
        let table: &[(&str, Action)] = &[
            ("10.1.0.1", Deny),
            ("::ffff:10.1.0.1", Deny),
            ("10.2.0.1", Allow),
            ("::ffff:10.2.0.1", Allow),
            ("192.0.2.1", Deny),
            ("2001:db8::1", Deny),
        ];
        for &(addr, want) in table {
            assert_eq!(r.decide(ip(addr)), want, "{addr}");
        }
        // The same rules the other way round: the wide allow shadows the deny.
        let r = rules(Deny, &[(Allow, "10.0.0.0/8"), (Deny, "10.1.0.0/16")]);
        assert!(r.allows(ip("10.1.0.1")));
        // Default allow with one denied host.
        let r = rules(Allow, &[(Deny, "127.0.0.2")]);
        assert!(!r.allows(ip("127.0.0.2")));
        assert!(!r.allows(ip("::ffff:127.0.0.2")));
        assert!(r.allows(ip("127.0.0.1")));
        assert!(r.allows(ip("::1")));
        assert!(!r.is_open());
        // The empty list: its default.
        assert!(IpRules::default().allows(ip("203.0.113.9")));
        assert!(IpRules::default().is_open());
        assert!(!rules(Deny, &[]).allows(ip("::1")));
        assert!(rules(Deny, &[(Allow, "::/0")]).allows(ip("10.0.0.1")));
    }
}
