//! `network.yaml`: the box's network settings on the config partition — per wired port a static
//! IPv4/IPv6 address or DHCP, gateways, DNS servers and VLANs; the NTP servers; the host name.
//!
//! Why it lives in the config loader: a person edits it next to `server.yaml` with the same
//! tools, so it is read with the same pipeline (file structs with `deny_unknown_fields`, values
//! that check themselves, errors with file:line:column and field) and refused the same way.
//! `asfcast check` and the daemon validate it with [`parse`]; `asfcast netconfig` turns it into
//! systemd-networkd files ([`super::netconfig`]), run at boot before systemd-networkd.
//!
//! The multicast interface stays a station setting (`multicast.interface`, required there):
//! network.yaml names ports, not which one multicast leaves through.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::error::{syntax_check, ConfigError};
use super::locate::{locate_nearest, Seg};
use super::values::{Host, Ranged};

/// The file's name in a config directory.
pub const FILE_NAME: &str = "network.yaml";

/// Most interfaces, VLANs, addresses or servers in one list.
const MAX_LIST: usize = 64;

/// The validated network settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The file it was read from.
    pub file: PathBuf,
    pub hostname: Option<String>,
    /// NTP servers (names or addresses); empty: the image's default.
    pub ntp: Vec<String>,
    /// The wired ports configured; empty: DHCP on every wired port.
    pub interfaces: Vec<NetInterface>,
}

/// How a port (or a VLAN on it) gets its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    pub dhcp: bool,
    /// Static addresses with their prefix length (`192.0.2.10/24`, `2001:db8::10/64`).
    pub addresses: Vec<(IpAddr, u8)>,
    pub gateways: Vec<IpAddr>,
    pub dns: Vec<IpAddr>,
}

/// One wired port, matched by name and/or MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetInterface {
    /// A kernel interface name; `*` and `?` globs as systemd-networkd's `Name=` takes them.
    pub name: Option<String>,
    /// `aa:bb:cc:dd:ee:ff`, lower case.
    pub mac: Option<String>,
    pub addressing: Addressing,
    pub vlans: Vec<Vlan>,
}

/// A VLAN on a port: the interface `vlan<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    pub id: u16,
    pub addressing: Addressing,
}

impl Vlan {
    /// The VLAN interface's name.
    pub fn name(&self) -> String {
        format!("vlan{}", self.id)
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of network settings (hostname, ntp, interfaces)"
)]
struct NetworkFile {
    hostname: Option<Hostname>,
    ntp: Option<OneOrMany<Host>>,
    interfaces: Option<Vec<InterfaceFile>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of one port's settings (name or mac, dhcp, addresses, gateway, dns, vlans)"
)]
struct InterfaceFile {
    name: Option<IfName>,
    mac: Option<Mac>,
    dhcp: Option<bool>,
    addresses: Option<OneOrMany<Cidr>>,
    gateway: Option<OneOrMany<Ip>>,
    dns: Option<OneOrMany<Ip>>,
    vlans: Option<Vec<VlanFile>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of one VLAN's settings (id, dhcp, addresses, gateway, dns)"
)]
struct VlanFile {
    id: Ranged<u16, 1, 4094>,
    dhcp: Option<bool>,
    addresses: Option<OneOrMany<Cidr>>,
    gateway: Option<OneOrMany<Ip>>,
    dns: Option<OneOrMany<Ip>>,
}

/// Reads and validates a network file; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<NetworkConfig, Vec<ConfigError>> {
    if text.trim().is_empty() {
        return Ok(NetworkConfig {
            file: path.to_path_buf(),
            ..NetworkConfig::default()
        });
    }
    syntax_check(path, text).map_err(|e| vec![e])?;
    let de = serde_norway::Deserializer::from_str(text);
    let file: NetworkFile =
        serde_path_to_error::deserialize(de).map_err(|e| vec![ConfigError::from_yaml(path, e)])?;
    build(path, text, file)
}

fn build(path: &Path, text: &str, file: NetworkFile) -> Result<NetworkConfig, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut interfaces = Vec::new();
    let mut names = BTreeSet::new();
    let mut macs = BTreeSet::new();
    let mut vlan_ids = BTreeSet::new();
    for (i, f) in file.interfaces.unwrap_or_default().into_iter().enumerate() {
        let at = |segs: &[Seg], field: String, message: String| {
            let mut all = vec![Seg::Key("interfaces"), Seg::Index(i)];
            all.extend_from_slice(segs);
            ConfigError::at(path, locate_nearest(text, &all, true), field, message)
        };
        let name = f.name.map(|n| n.0);
        let mac = f.mac.map(|m| m.0);
        if name.is_none() && mac.is_none() {
            errors.push(at(
                &[],
                format!("interfaces[{i}]"),
                "a port needs `name` (such as eth0) or `mac` (such as 52:54:00:12:34:56)".into(),
            ));
        }
        if let Some(n) = &name {
            if !names.insert(n.clone()) {
                errors.push(at(
                    &[Seg::Key("name")],
                    format!("interfaces[{i}].name"),
                    format!("{n} is configured twice"),
                ));
            }
        }
        if let Some(m) = &mac {
            if !macs.insert(m.clone()) {
                errors.push(at(
                    &[Seg::Key("mac")],
                    format!("interfaces[{i}].mac"),
                    format!("{m} is configured twice"),
                ));
            }
        }
        let addressing = build_addressing(f.dhcp, f.addresses, f.gateway, f.dns);
        if let Some(msg) = addressing_problem(&addressing) {
            errors.push(at(&[], format!("interfaces[{i}]"), msg));
        }
        let mut vlans = Vec::new();
        for (j, v) in f.vlans.unwrap_or_default().into_iter().enumerate() {
            let id = v.id.0;
            let field = format!("interfaces[{i}].vlans[{j}]");
            if !vlan_ids.insert(id) {
                errors.push(at(
                    &[Seg::Key("vlans"), Seg::Index(j), Seg::Key("id")],
                    format!("{field}.id"),
                    format!("VLAN {id} is configured twice"),
                ));
            }
            let addressing = build_addressing(v.dhcp, v.addresses, v.gateway, v.dns);
            if let Some(msg) = addressing_problem(&addressing) {
                errors.push(at(&[Seg::Key("vlans"), Seg::Index(j)], field, msg));
            }
            vlans.push(Vlan { id, addressing });
        }
        interfaces.push(NetInterface {
            name,
            mac,
            addressing,
            vlans,
        });
    }
    if interfaces.len() > MAX_LIST {
        errors.push(ConfigError::at(
            path,
            locate_nearest(text, &[Seg::Key("interfaces")], true),
            "interfaces",
            format!("more than {MAX_LIST} ports"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NetworkConfig {
        file: path.to_path_buf(),
        hostname: file.hostname.map(|h| h.0),
        ntp: file
            .ntp
            .map(|n| n.0.into_iter().map(|h| h.0).collect())
            .unwrap_or_default(),
        interfaces,
    })
}

fn build_addressing(
    dhcp: Option<bool>,
    addresses: Option<OneOrMany<Cidr>>,
    gateway: Option<OneOrMany<Ip>>,
    dns: Option<OneOrMany<Ip>>,
) -> Addressing {
    let addresses: Vec<(IpAddr, u8)> = addresses
        .map(|a| a.0.into_iter().map(|c| (c.0, c.1)).collect())
        .unwrap_or_default();
    Addressing {
        // DHCP unless static addresses are given.
        dhcp: dhcp.unwrap_or(addresses.is_empty()),
        addresses,
        gateways: gateway
            .map(|g| g.0.into_iter().map(|i| i.0).collect())
            .unwrap_or_default(),
        dns: dns
            .map(|d| d.0.into_iter().map(|i| i.0).collect())
            .unwrap_or_default(),
    }
}

/// What makes a port's addressing unusable, in words.
fn addressing_problem(a: &Addressing) -> Option<String> {
    if !a.dhcp && a.addresses.is_empty() {
        return Some("`dhcp: false` and no `addresses`: the port would have no address".into());
    }
    for g in &a.gateways {
        let family_has_address = a
            .addresses
            .iter()
            .any(|(ip, _)| ip.is_ipv4() == g.is_ipv4());
        if !a.dhcp && !family_has_address {
            return Some(format!(
                "gateway {g}: no static address of its family (IPv{}) on this port",
                if g.is_ipv4() { 4 } else { 6 }
            ));
        }
    }
    None
}

/// One value or a list of at most [`MAX_LIST`].
struct OneOrMany<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let one = T::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(OneOrMany(vec![one]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    if out.len() >= MAX_LIST {
                        return Err(de::Error::custom(format!("more than {MAX_LIST} entries")));
                    }
                    out.push(v);
                }
                Ok(OneOrMany(out))
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string value checked by `check` while read (so the error carries its position).
macro_rules! checked_str {
    ($name:ident, $what:literal, $check:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        let check: fn(&str) -> Result<$name, String> = $check;
                        check(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

struct Hostname(String);
checked_str!(Hostname, "a host name such as asfcast-1", parse_hostname);

struct IfName(String);
checked_str!(IfName, "an interface name such as eth0", parse_if_name);

struct Mac(String);
checked_str!(Mac, "a MAC address such as 52:54:00:12:34:56", parse_mac);

struct Cidr(IpAddr, u8);
checked_str!(
    Cidr,
    "an address with its prefix length such as 192.0.2.10/24",
    parse_cidr
);

struct Ip(IpAddr);
checked_str!(Ip, "an IP address", |v| v
    .parse::<IpAddr>()
    .map(Ip)
    .map_err(|_| format!("`{}` is not an IP address", v.escape_debug())));

/// A host name: one RFC 1123 label (1–63 of letters, digits, `-`, not at either end), as
/// systemd's `hostname` file takes it.
fn parse_hostname(v: &str) -> Result<Hostname, String> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && !v.starts_with('-')
        && !v.ends_with('-')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !ok {
        return Err(format!(
            "`{}` is not a host name (1–63 letters, digits or `-`, not starting or ending with `-`)",
            v.escape_debug()
        ));
    }
    Ok(Hostname(v.to_string()))
}

/// Linux `dev_valid_name` (1–15 bytes, no `/`, `:` or white space, not `.`/`..`), plus the
/// `*`/`?` globs systemd-networkd matches names with.
fn parse_if_name(v: &str) -> Result<IfName, String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if !ok {
        return Err(format!(
            "`{}` is not an interface name (1–15 characters, no `/`, `:` or spaces)",
            v.escape_debug()
        ));
    }
    Ok(IfName(v.to_string()))
}

fn parse_mac(v: &str) -> Result<Mac, String> {
    let parts: Vec<&str> = v.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(format!(
            "`{}` is not a MAC address (six hex pairs such as 52:54:00:12:34:56)",
            v.escape_debug()
        ));
    }
    Ok(Mac(parts.join(":").to_ascii_lowercase()))
}

fn parse_cidr(v: &str) -> Result<Cidr, String> {
    let bad = || {
        format!(
            "`{}` is not an address with its prefix length (such as 192.0.2.10/24 or 2001:db8::10/64)",
            v.escape_debug()
        )
    };
    let (ip, len) = v.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
    let len: u8 = len.trim().parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("{v}: the prefix length is out of range 0–{max}"));
    }
    if ip.is_multicast() || ip.is_unspecified() {
        return Err(format!("{v}: not an address a port can have"));
    }
    Ok(Cidr(ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("network.yaml"), text) {
            Ok(n) => panic!("accepted: {n:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_full_file_is_read() {
        let text = "hostname: studio-1\nntp: [ntp.example.org, 192.0.2.123]\ninterfaces:\n  - name: eth0\n    addresses: [192.0.2.10/24, '2001:db8::10/64']\n    gateway: [192.0.2.1, '2001:db8::1']\n    dns: 192.0.2.53\n    vlans:\n      - id: 100\n        dhcp: true\n  - mac: 52:54:00:AB:cd:01\n";
        let n = parse(Path::new("network.yaml"), text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(n.hostname.as_deref(), Some("studio-1"));
        assert_eq!(n.ntp, ["ntp.example.org", "192.0.2.123"]);
        assert_eq!(n.interfaces.len(), 2);
        let eth0 = &n.interfaces[0];
        assert!(!eth0.addressing.dhcp);
        assert_eq!(eth0.addressing.addresses.len(), 2);
        assert_eq!(eth0.vlans[0].name(), "vlan100");
        assert!(eth0.vlans[0].addressing.dhcp);
        assert_eq!(n.interfaces[1].mac.as_deref(), Some("52:54:00:ab:cd:01"));
        assert!(n.interfaces[1].addressing.dhcp);
    }

    #[test]
    fn bad_values_are_refused_where_they_are() {
        assert_eq!(
            errors("interfaces:\n  - name: eth0\n    addresses: [192.0.2.10/33]\n"),
            ["network.yaml:3:17: interfaces[0].addresses[0]: 192.0.2.10/33: the prefix length is out of range 0–32"]
        );
        assert_eq!(
            errors("hostname: -box\n"),
            ["network.yaml:1:11: hostname: `-box` is not a host name (1–63 letters, digits or `-`, not starting or ending with `-`)"]
        );
        let e = errors("interfaces:\n  - dhcp: false\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("network.yaml:2:5: interfaces[0]: a port needs"),
            "{e:?}"
        );
        assert!(e[1].contains("no `addresses`"), "{e:?}");
        let e = errors("interfaces:\n  - name: eth0\n    vlans: [{id: 5}]\n  - name: eth0\n    vlans: [{id: 5}]\n");
        assert!(
            e[0].starts_with("network.yaml:4:5: interfaces[1].name: eth0 is configured twice"),
            "{e:?}"
        );
        assert!(
            e[1].contains("interfaces[1].vlans[0].id: VLAN 5 is configured twice"),
            "{e:?}"
        );
        let e = errors("interfaces:\n  - name: eth0\n    mac: 12:34\n");
        assert!(
            e[0].starts_with("network.yaml:3:10: interfaces[0].mac: `12:34` is not a MAC"),
            "{e:?}"
        );
        let e = errors("dns: 1.1.1.1\n");
        assert!(
            e[0].starts_with("network.yaml:1:1: dns: unknown field"),
            "{e:?}"
        );
        let e = errors("interfaces:\n  - name: eth0\n    addresses: 192.0.2.10/24\n    gateway: '2001:db8::1'\n");
        assert!(
            e[0].contains("gateway 2001:db8::1: no static address of its family (IPv6)"),
            "{e:?}"
        );
    }
}
