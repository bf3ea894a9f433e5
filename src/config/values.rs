//! Value types that check themselves while the YAML is read.
//!
//! Why: a range or syntax error is most useful when it points at the offending
//! value. serde_norway attaches the line and column of the scalar it is reading
//! only to errors raised *inside* a visitor, so every check that belongs to a
//! single value lives in a visitor here, and the message is written in plain
//! words ("300 is out of range 0–255"). The field path is added by
//! `serde_path_to_error` one level up, in [`super::error`].
//!
//! Rules follow the config issue and the protocol notes:
//! - multicast group: IPv4 224.0.0.0/4 (without the 224.0.0.0/24 control block)
//!   or IPv6 ff00::/8 (MS-MSB sends to any multicast group);
//! - beacon interval 1–10 s (MS-MSB 3.1.2: "10 seconds or less, but not more often
//!   than once every second");
//! - interface names follow Linux `dev_valid_name` (1–15 bytes, no `/`, `:` or
//!   white space, not `.` or `..`); whether the interface exists is a run-time
//!   question, so `asfcast check` can validate a config written for another box.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// Longest accepted free-text value (descriptions, host names, URLs), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// Most listener addresses accepted for one protocol.
pub const MAX_LISTENERS: usize = 16;

/// Most files accepted in one playlist.
pub const MAX_PLAYLIST_FILES: usize = 10_000;

/// An unsigned integer that must lie in `MIN..=MAX`.
pub struct Ranged<T, const MIN: u64, const MAX: u64>(pub T);

impl<'de, T: TryFrom<u64>, const MIN: u64, const MAX: u64> Deserialize<'de>
    for Ranged<T, MIN, MAX>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T, const MIN: u64, const MAX: u64>(PhantomData<T>);
        impl<T: TryFrom<u64>, const MIN: u64, const MAX: u64> Visitor<'_> for V<T, MIN, MAX> {
            type Value = Ranged<T, MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number from {MIN} to {MAX}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                let out_of_range = || E::custom(format!("{v} is out of range {MIN}–{MAX}"));
                if !(MIN..=MAX).contains(&v) {
                    return Err(out_of_range());
                }
                T::try_from(v).map(Ranged).map_err(|_| out_of_range())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("{v} is out of range {MIN}–{MAX}"))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "{v} is not a whole number (expected {MIN}–{MAX})"
                )))
            }
        }
        deserializer.deserialize_any(V::<T, MIN, MAX>(PhantomData))
    }
}

/// A station name: 1–64 of `[A-Za-z0-9_-]`, because it is the URL path
/// (`mms://box/<name>`, `rtsp://box/<name>`).
pub struct StationName(pub String);

/// Longest station name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a station name; the error is a complete plain-words sentence.
pub fn check_station_name(v: &str) -> Result<(), String> {
    let ok_chars = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if v.is_empty() || v.len() > MAX_NAME_LEN || !ok_chars {
        return Err(format!(
            "`{}` is not a valid station name: use 1–{MAX_NAME_LEN} letters, digits, `-` or `_` (it is the URL path)",
            v.escape_debug()
        ));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for StationName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StationName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a station name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StationName, E> {
                check_station_name(v).map_err(E::custom)?;
                Ok(StationName(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StationName, E> {
                self.visit_str(&v.to_string())
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Free text without control characters, at most [`MAX_TEXT_LEN`] bytes (it is
/// written into .nsc and .asx files).
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                if v.len() > MAX_TEXT_LEN {
                    return Err(E::custom(format!(
                        "text is {} bytes long, the limit is {MAX_TEXT_LEN}",
                        v.len()
                    )));
                }
                if v.chars().any(char::is_control) {
                    return Err(E::custom(
                        "text contains a control character (such as a line break or tab)",
                    ));
                }
                Ok(Text(v.to_owned()))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A multicast group address.
pub struct MulticastGroup(pub IpAddr);

/// Checks that `ip` is a multicast group a station may send to.
pub fn check_multicast_group(ip: IpAddr) -> Result<(), String> {
    match ip {
        IpAddr::V4(v4) => {
            if !v4.is_multicast() {
                return Err(format!(
                    "{v4} is not a multicast address (IPv4 multicast is 224.0.0.0–239.255.255.255; 239.0.0.0/8 is for local use)"
                ));
            }
            if v4.octets()[..3] == [224, 0, 0] {
                return Err(format!(
                    "{v4} is in 224.0.0.0/24, which is reserved for routing protocols (use 239.0.0.0/8 for local use)"
                ));
            }
        }
        IpAddr::V6(v6) => {
            if !v6.is_multicast() {
                return Err(format!(
                    "{v6} is not a multicast address (IPv6 multicast is ff00::/8)"
                ));
            }
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for MulticastGroup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MulticastGroup;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a multicast IP address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MulticastGroup, E> {
                let ip: IpAddr = v.parse().map_err(|_| {
                    E::custom(format!("`{}` is not an IP address", v.escape_debug()))
                })?;
                check_multicast_group(ip).map_err(E::custom)?;
                Ok(MulticastGroup(ip))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The network interface multicast leaves through: a name (`eth0`) or the
/// address of the interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Interface {
    /// An interface name, checked for syntax only (it may not exist on the machine
    /// running `asfcast check`).
    Name(String),
    /// A local unicast address of the interface.
    Address(IpAddr),
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Interface::Name(n) => f.write_str(n),
            Interface::Address(a) => a.fmt(f),
        }
    }
}

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// Parses an interface name or address as the kernel would accept it.
pub fn parse_interface(v: &str) -> Result<Interface, String> {
    if let Ok(ip) = v.parse::<IpAddr>() {
        if ip.is_multicast() || ip.is_unspecified() {
            return Err(format!(
                "{ip} cannot name an interface: give the interface's own unicast address or its name"
            ));
        }
        return Ok(Interface::Address(ip));
    }
    let bad_char = v
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if v.is_empty() || v.len() > MAX_IFNAME_LEN || v == "." || v == ".." || bad_char {
        return Err(format!(
            "`{}` is neither an IP address nor a valid interface name (1–{MAX_IFNAME_LEN} characters without `/`, `:` or spaces)",
            v.escape_debug()
        ));
    }
    Ok(Interface::Name(v.to_owned()))
}

impl<'de> Deserialize<'de> for Interface {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Interface;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an interface name or address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interface, E> {
                parse_interface(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A duration in `MIN_MS..=MAX_MS` milliseconds, written as whole or fractional
/// seconds (`2`, `1.5`) or with a unit (`1500ms`, `2s`, `1m`).
pub struct Seconds<const MIN_MS: u64, const MAX_MS: u64>(pub Duration);

/// Writes a duration the way a user would ("2s", "1500ms", "1m").
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 60_000 == 0 && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses "2s", "1500ms", "1.5s", "1m" or a bare number of seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(num * scale).ok()
}

impl<const MIN_MS: u64, const MAX_MS: u64> Seconds<MIN_MS, MAX_MS> {
    fn check<E: de::Error>(written: &str, d: Duration) -> Result<Self, E> {
        let range = Duration::from_millis(MIN_MS)..=Duration::from_millis(MAX_MS);
        if !range.contains(&d) {
            return Err(E::custom(format!(
                "{written} is out of range {}–{}",
                human_duration(Duration::from_millis(MIN_MS)),
                human_duration(Duration::from_millis(MAX_MS))
            )));
        }
        Ok(Seconds(d))
    }
}

impl<'de, const MIN_MS: u64, const MAX_MS: u64> Deserialize<'de> for Seconds<MIN_MS, MAX_MS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const MIN_MS: u64, const MAX_MS: u64>;
        impl<const MIN_MS: u64, const MAX_MS: u64> Visitor<'_> for V<MIN_MS, MAX_MS> {
            type Value = Seconds<MIN_MS, MAX_MS>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 2, 2s or 1500ms")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Seconds::check(&format!("{v}s"), Duration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is negative; a duration is expected"
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                let d = Duration::try_from_secs_f64(v)
                    .map_err(|_| E::custom(format!("{v} is not a valid duration")))?;
                Seconds::check(&format!("{v}s"), d)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let d = parse_duration(v).ok_or_else(|| {
                    E::custom(format!(
                        "`{}` is not a duration (write 2, 2s, 1500ms or 1m)",
                        v.escape_debug()
                    ))
                })?;
                Seconds::check(v, d)
            }
        }
        deserializer.deserialize_any(V::<MIN_MS, MAX_MS>)
    }
}

/// A byte count in `MIN..=MAX`, written as a number of bytes or with a binary
/// unit (`64KiB`, `4 MiB`, `1GiB`).
pub struct Bytes<const MIN: u64, const MAX: u64>(pub u64);

/// Writes a byte count with the largest binary unit that divides it.
pub fn human_bytes(v: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if v >= size && v % size == 0 {
            return format!("{} {unit}", v / size);
        }
    }
    format!("{v} bytes")
}

/// Parses `4096`, `64KiB`, `4 MiB`, `1GiB` (binary units only).
pub fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: u64 = num.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    num.checked_mul(scale)
}

impl<const MIN: u64, const MAX: u64> Bytes<MIN, MAX> {
    fn check<E: de::Error>(written: &str, v: u64) -> Result<Self, E> {
        if !(MIN..=MAX).contains(&v) {
            return Err(E::custom(format!(
                "{written} is out of range {}–{}",
                human_bytes(MIN),
                human_bytes(MAX)
            )));
        }
        Ok(Bytes(v))
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bytes<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for V<MIN, MAX> {
            type Value = Bytes<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes such as 65536, 64KiB or 4MiB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Bytes::check(&v.to_string(), v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("{v} is negative; a size is expected"))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let n = parse_bytes(v).ok_or_else(|| {
                    E::custom(format!(
                        "`{}` is not a size (write 65536, 64KiB, 4MiB or 1GiB)",
                        v.escape_debug()
                    ))
                })?;
                Bytes::check(v, n)
            }
        }
        deserializer.deserialize_any(V::<MIN, MAX>)
    }
}

/// A finite decimal number in `MIN_MILLI/1000 ..= MAX_MILLI/1000`.
pub struct Decimal<const MIN_MILLI: u64, const MAX_MILLI: u64>(pub f64);

impl<'de, const MIN_MILLI: u64, const MAX_MILLI: u64> Deserialize<'de>
    for Decimal<MIN_MILLI, MAX_MILLI>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const A: u64, const B: u64>;
        impl<const A: u64, const B: u64> Visitor<'_> for V<A, B> {
            type Value = Decimal<A, B>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // Precision is not a concern: the bounds are small (at most a few thousand).
                #[allow(clippy::cast_precision_loss)]
                let (min, max) = (A as f64 / 1000.0, B as f64 / 1000.0);
                if !(min..=max).contains(&v) {
                    return Err(E::custom(format!("{v} is out of range {min}–{max}")));
                }
                Ok(Decimal(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                #[allow(clippy::cast_precision_loss)]
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                #[allow(clippy::cast_precision_loss)]
                self.visit_f64(v as f64)
            }
        }
        deserializer.deserialize_any(V::<MIN_MILLI, MAX_MILLI>)
    }
}

/// A file-system path: not empty, no NUL byte.
pub struct FilePath(pub PathBuf);

/// What every file path in a config must be: not empty, no NUL, at most 4096 bytes.
pub fn check_file_path(v: &str) -> Result<(), &'static str> {
    if v.trim().is_empty() {
        return Err("the path is empty");
    }
    if v.contains('\0') {
        return Err("the path contains a NUL character");
    }
    if v.len() > 4096 {
        return Err("the path is longer than 4096 bytes");
    }
    Ok(())
}

impl<'de> Deserialize<'de> for FilePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FilePath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a file path")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FilePath, E> {
                check_file_path(v).map_err(E::custom)?;
                Ok(FilePath(PathBuf::from(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The playlist: at least one file, at most [`MAX_PLAYLIST_FILES`].
pub struct PlaylistFiles(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for PlaylistFiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PlaylistFiles;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of ASF files")
            }
            fn visit_str<E: de::Error>(self, _v: &str) -> Result<PlaylistFiles, E> {
                Err(E::custom(
                    "a list is expected: write `files: [a.asf]` or one `- a.asf` per line",
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PlaylistFiles, A::Error> {
                let mut files = Vec::new();
                while let Some(FilePath(p)) = seq.next_element()? {
                    if files.len() == MAX_PLAYLIST_FILES {
                        return Err(de::Error::custom(format!(
                            "the playlist has more than {MAX_PLAYLIST_FILES} files"
                        )));
                    }
                    files.push(p);
                }
                if files.is_empty() {
                    return Err(de::Error::custom(
                        "the playlist is empty; list at least one ASF file",
                    ));
                }
                Ok(PlaylistFiles(files))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Checks a file name written into the announcement directory: a plain name
/// (no directory part, not hidden) with the given extension.
pub fn check_announce_name(v: &str, ext: &str) -> Result<(), String> {
    let plain = !v.is_empty()
        && v.len() <= 255
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain {
        return Err(format!(
            "`{}` is not a plain file name (letters, digits, `-`, `_` and `.`, no directory part)",
            v.escape_debug()
        ));
    }
    let has_ext = v.len() > ext.len() + 1
        && v.get(v.len() - ext.len() - 1..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(&format!(".{ext}")));
    if !has_ext {
        return Err(format!("`{}` must end in .{ext}", v.escape_debug()));
    }
    Ok(())
}

/// An announcement file name ending in `.nsc` (`EXT_NSC`) or `.asx` (`EXT_ASX`).
pub struct AnnounceName<const ASX: bool>(pub String);

impl<'de, const ASX: bool> Deserialize<'de> for AnnounceName<ASX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const ASX: bool>;
        impl<const ASX: bool> Visitor<'_> for V<ASX> {
            type Value = AnnounceName<ASX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a file name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                check_announce_name(v, if ASX { "asx" } else { "nsc" }).map_err(E::custom)?;
                Ok(AnnounceName(v.to_owned()))
            }
        }
        deserializer.deserialize_str(V::<ASX>)
    }
}

/// Checks an absolute URL: one of `schemes`, a non-empty host, no white space or
/// control characters, at most [`MAX_TEXT_LEN`] bytes.
pub fn check_url(v: &str, schemes: &[&str]) -> Result<(), String> {
    let list = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(format!(
            "`{}` is not a URL (expected {list})",
            v.escape_debug()
        ));
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(format!(
            "`{}` has scheme `{}`; expected {list}",
            v.escape_debug(),
            scheme.escape_debug()
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{}` has no host name", v.escape_debug()));
    }
    if v.len() > MAX_TEXT_LEN || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` contains spaces or control characters, or is longer than {MAX_TEXT_LEN} bytes",
            v.escape_debug()
        ));
    }
    Ok(())
}

/// Schemes accepted for the unicast rollover URL written into .nsc and .asx.
pub const UNICAST_SCHEMES: &[&str] = &[
    "mms", "mmsh", "mmst", "mmsu", "rtsp", "rtspt", "rtspu", "http",
];

/// Schemes accepted for the client logging URL.
pub const LOG_SCHEMES: &[&str] = &["http", "https"];

/// A URL whose scheme is in [`UNICAST_SCHEMES`] (`LOG == false`) or
/// [`LOG_SCHEMES`] (`LOG == true`).
pub struct Url<const LOG: bool>(pub String);

impl<'de, const LOG: bool> Deserialize<'de> for Url<LOG> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const LOG: bool>;
        impl<const LOG: bool> Visitor<'_> for V<LOG> {
            type Value = Url<LOG>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                check_url(v, if LOG { LOG_SCHEMES } else { UNICAST_SCHEMES }).map_err(E::custom)?;
                Ok(Url(v.to_owned()))
            }
        }
        deserializer.deserialize_str(V::<LOG>)
    }
}

/// Checks a host name (RFC 1123 labels) or an IP address.
pub fn check_host(v: &str) -> Result<(), String> {
    if v.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if v.is_empty() || v.len() > 253 || !v.split('.').all(label_ok) {
        return Err(format!(
            "`{}` is neither a host name nor an IP address",
            v.escape_debug()
        ));
    }
    Ok(())
}

/// A host name or IP address used in URLs.
pub struct Host(pub String);

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Host;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a host name or IP address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Host, E> {
                check_host(v).map_err(E::custom)?;
                Ok(Host(v.to_owned()))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Parses one listener: `address:port` (`[v6]:port` for IPv6) or a bare port,
/// which means every IPv4 address.
pub fn parse_listen_addr(v: &str) -> Result<SocketAddr, String> {
    let addr = if let Ok(port) = v.parse::<u16>() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    } else {
        v.parse::<SocketAddr>().map_err(|_| {
            format!(
                "`{}` is not an address:port such as 0.0.0.0:80, 127.0.0.1:8080 or [::]:80",
                v.escape_debug()
            )
        })?
    };
    if addr.port() == 0 {
        return Err(format!("{addr}: port 0 is out of range 1–65535"));
    }
    if addr.ip().is_multicast() {
        return Err(format!("{addr}: a listener cannot use a multicast address"));
    }
    Ok(addr)
}

/// One listener address.
pub struct ListenAddr(pub SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ListenAddr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address:port")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListenAddr, E> {
                parse_listen_addr(v).map(ListenAddr).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ListenAddr, E> {
                listen_port(v).map(ListenAddr)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The listeners of one protocol: one address, a list, or `false` / `[]` to
/// turn the protocol off.
pub struct Listeners(pub Vec<SocketAddr>);

impl<'de> Deserialize<'de> for Listeners {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Listeners;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address:port, a list of them, or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Listeners, E> {
                if v {
                    return Err(E::custom(
                        "`true` is not an address: give address:port, or false to turn this listener off",
                    ));
                }
                Ok(Listeners(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Listeners, E> {
                parse_listen_addr(v)
                    .map(|a| Listeners(vec![a]))
                    .map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Listeners, E> {
                listen_port(v).map(|a| Listeners(vec![a]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listeners, A::Error> {
                let mut out = Vec::new();
                while let Some(ListenAddr(a)) = seq.next_element()? {
                    if out.len() == MAX_LISTENERS {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_LISTENERS} addresses"
                        )));
                    }
                    out.push(a);
                }
                Ok(Listeners(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A bare port number as a listener on every IPv4 address.
fn listen_port<E: de::Error>(v: u64) -> Result<SocketAddr, E> {
    let port = u16::try_from(v)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| E::custom(format!("port {v} is out of range 1–65535")))?;
    Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        serde_norway::from_str::<T>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn ranged_accepts_bounds_and_refuses_outside() {
        assert_eq!(de::<Ranged<u8, 0, 255>>("255").map(|r| r.0), Ok(255));
        assert_eq!(de::<Ranged<u8, 0, 255>>("0").map(|r| r.0), Ok(0));
        let err = de::<Ranged<u8, 0, 255>>("300").err().unwrap_or_default();
        assert!(err.starts_with("300 is out of range 0–255"), "{err}");
        let err = de::<Ranged<u16, 1, 65535>>("-1").err().unwrap_or_default();
        assert!(err.starts_with("-1 is out of range 1–65535"), "{err}");
        assert!(de::<Ranged<u16, 1, 65535>>("0").is_err());
        assert!(de::<Ranged<u8, 0, 63>>("1.5").is_err());
        assert!(de::<Ranged<u8, 0, 63>>("\"16\"").is_err());
    }

    #[test]
    fn station_names() {
        for ok in ["demo", "news-1", "A_b", &"x".repeat(64)] {
            assert!(check_station_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "a.b", &"x".repeat(65)] {
            assert!(check_station_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn multicast_groups() {
        for ok in ["239.255.42.42", "224.0.1.1", "ff05::1", "ff02::1234"] {
            assert!(
                check_multicast_group(ok.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in ["10.0.0.1", "224.0.0.5", "2001:db8::1", "0.0.0.0"] {
            assert!(
                check_multicast_group(bad.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
                    .is_err(),
                "{bad}"
            );
        }
        let err = de::<MulticastGroup>("239.1.1.x").err().unwrap_or_default();
        assert!(err.starts_with("`239.1.1.x` is not an IP address"), "{err}");
    }

    #[test]
    fn interfaces() {
        assert_eq!(parse_interface("eth0"), Ok(Interface::Name("eth0".into())));
        assert_eq!(
            parse_interface("enp0s31f6"),
            Ok(Interface::Name("enp0s31f6".into()))
        );
        assert_eq!(
            parse_interface("192.168.1.10"),
            Ok(Interface::Address(IpAddr::V4(Ipv4Addr::new(
                192, 168, 1, 10
            ))))
        );
        for bad in [
            "",
            "a/b",
            "eth 0",
            "eth0:1",
            ".",
            "..",
            "a-very-long-interface",
            "239.1.1.1",
            "0.0.0.0",
        ] {
            assert!(parse_interface(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2 h"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("s"), None);
        type Beacon = Seconds<1000, 10_000>;
        assert_eq!(de::<Beacon>("2").map(|s| s.0), Ok(Duration::from_secs(2)));
        assert_eq!(
            de::<Beacon>("1500ms").map(|s| s.0),
            Ok(Duration::from_millis(1500))
        );
        let err = de::<Beacon>("12").err().unwrap_or_default();
        assert!(err.starts_with("12s is out of range 1s–10s"), "{err}");
        let err = de::<Beacon>("500ms").err().unwrap_or_default();
        assert!(err.starts_with("500ms is out of range 1s–10s"), "{err}");
        assert!(de::<Beacon>("-3").is_err());
    }

    proptest::proptest! {
        #[test]
        fn duration_text_round_trips(ms in 0u64..10_000_000) {
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(parse_duration(&human_duration(d)), Some(d));
        }

        #[test]
        fn byte_text_round_trips(n in 0u64..(1 << 40)) {
            let text = human_bytes(n).replace(" bytes", "").replace(' ', "");
            proptest::prop_assert_eq!(parse_bytes(&text), Some(n));
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("4MiB"), Some(4 << 20));
        assert_eq!(parse_bytes("64 KiB"), Some(64 << 10));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("4MB"), None);
        assert_eq!(parse_bytes("99999999999999999999GiB"), None);
        assert_eq!(human_bytes(4 << 20), "4 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        let err = de::<Bytes<1024, 1_048_576>>("2MiB")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("2MiB is out of range 1 KiB–1 MiB"), "{err}");
    }

    #[test]
    fn announce_names() {
        assert!(check_announce_name("demo.nsc", "nsc").is_ok());
        assert!(check_announce_name("Demo.NSC", "nsc").is_ok());
        assert!(check_announce_name("demo.asx", "nsc").is_err());
        assert!(check_announce_name("../x.nsc", "nsc").is_err());
        assert!(check_announce_name(".nsc", "nsc").is_err());
        assert!(check_announce_name("a/b.nsc", "nsc").is_err());
    }

    #[test]
    fn urls() {
        assert!(check_url("mms://box.example/news", UNICAST_SCHEMES).is_ok());
        assert!(check_url("RTSP://10.0.0.1:554/news", UNICAST_SCHEMES).is_ok());
        assert!(check_url("ftp://box/news", UNICAST_SCHEMES).is_err());
        assert!(check_url("mms:///news", UNICAST_SCHEMES).is_err());
        assert!(check_url("mms://box/a b", UNICAST_SCHEMES).is_err());
        assert!(check_url("box/news", UNICAST_SCHEMES).is_err());
        assert!(check_url("https://log.example/wmsl", LOG_SCHEMES).is_ok());
    }

    #[test]
    fn hosts() {
        assert!(check_host("box.example.org").is_ok());
        assert!(check_host("10.1.2.3").is_ok());
        assert!(check_host("::1").is_ok());
        assert!(check_host("bad_host").is_err());
        assert!(check_host("-a.example").is_err());
        assert!(check_host("").is_err());
    }

    #[test]
    fn listeners() {
        let l = de::<Listeners>("127.0.0.1:8080").map(|l| l.0);
        assert_eq!(
            l,
            Ok(vec!["127.0.0.1:8080"
                .parse()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 1)))])
        );
        assert_eq!(de::<Listeners>("false").map(|l| l.0.len()), Ok(0));
        assert_eq!(de::<Listeners>("[]").map(|l| l.0.len()), Ok(0));
        assert_eq!(
            de::<Listeners>("['[::]:80', 8080]").map(|l| l.0.len()),
            Ok(2)
        );
        assert!(de::<Listeners>("true").is_err());
        assert!(de::<Listeners>("127.0.0.1").is_err());
        assert!(de::<Listeners>("127.0.0.1:0").is_err());
        assert!(de::<Listeners>("70000").is_err());
        assert!(de::<Listeners>("239.1.1.1:80").is_err());
    }

    #[test]
    fn playlist_files() {
        assert_eq!(
            de::<PlaylistFiles>("[a.asf, b.asf]").map(|p| p.0.len()),
            Ok(2)
        );
        let err = de::<PlaylistFiles>("[]").err().unwrap_or_default();
        assert!(err.starts_with("the playlist is empty"), "{err}");
        assert!(de::<PlaylistFiles>("a.asf").is_err());
        assert!(de::<PlaylistFiles>("['']").is_err());
    }
}
