//! Finding the line and column of a field after parsing.
//!
//! Why: checks that look at more than one value (duplicate station names across
//! files, colliding multicast group:port pairs, a reused listener address) run
//! after deserialization, when serde no longer knows where a value came from.
//! serde_norway has no spanned values, but it does attach the position of the
//! node being read to any error raised while reading it. So to find
//! `multicast.group`, the text is read once more with a probe that walks the
//! path, skips everything else, and deliberately fails at the target; the
//! position of that failure is the position of the value (or of the key, for
//! [`locate_key`]). This uses the real YAML parser, so flow style, quoting and
//! anchors are handled the same way as in the real parse.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// The text of the deliberate failure; no real message contains it.
const MARKER: &str = "\u{1}asfcast-config-probe\u{1}";

/// Position (1-based line, column) of the value at `path`, if it exists.
pub fn locate_value(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    probe(text, path, false)
}

/// Position of the key that ends `path` (a [`Seg::Key`]), or of the value when
/// the last step is an index.
pub fn locate_key(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    probe(text, path, true)
}

/// Position of `path`, or of its longest existing prefix, or line 1 column 1.
pub fn locate_nearest(text: &str, path: &[Seg], key: bool) -> (usize, usize) {
    (0..=path.len())
        .rev()
        .find_map(|n| {
            let prefix = path.get(..n)?;
            if n == 0 {
                return None;
            }
            probe(text, prefix, key)
        })
        .unwrap_or((1, 1))
}

fn probe(text: &str, path: &[Seg], key: bool) -> Option<(usize, usize)> {
    let de = serde_norway::Deserializer::from_str(text);
    match (Probe { path, key }).deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(MARKER) => e.location().map(|l| (l.line(), l.column())),
        Err(_) => None,
    }
}

struct Probe<'p> {
    path: &'p [Seg<'p>],
    key: bool,
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            d.deserialize_any(Hit)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping or sequence")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom("not a sequence"));
        };
        let fail_on_key = self.key && rest.is_empty();
        while let Some(found) = map.next_key_seed(KeyProbe {
            want,
            fail: fail_on_key,
        })? {
            if found {
                return map.next_value_seed(Probe {
                    path: rest,
                    key: self.key,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom("not a mapping"));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Probe {
            path: rest,
            key: self.key,
        })?;
        Ok(())
    }
}

/// Reads a key; reports whether it is the wanted one, or fails there if `fail`.
struct KeyProbe<'p> {
    want: &'p str,
    fail: bool,
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for KeyProbe<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if v == self.want && self.fail {
            return Err(E::custom(MARKER));
        }
        Ok(v == self.want)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.visit_str(if v { "true" } else { "false" })
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Fails on whatever node it is given, so the error carries that node's position.
struct Hit;

impl Visitor<'_> for Hit {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(MARKER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: demo\nmulticast:\n  group: 239.1.2.3\n  port: 19009\nlisten:\n  http: [127.0.0.1:80, '[::1]:80']\nflow: {a: 1, b: 2}\n";

    #[test]
    fn finds_values_and_keys() {
        assert_eq!(locate_value(TEXT, &[Seg::Key("name")]), Some((1, 7)));
        assert_eq!(locate_key(TEXT, &[Seg::Key("name")]), Some((1, 1)));
        assert_eq!(
            locate_value(TEXT, &[Seg::Key("multicast"), Seg::Key("group")]),
            Some((3, 10))
        );
        assert_eq!(
            locate_key(TEXT, &[Seg::Key("multicast"), Seg::Key("port")]),
            Some((4, 3))
        );
        assert_eq!(locate_key(TEXT, &[Seg::Key("multicast")]), Some((2, 1)));
        assert_eq!(
            locate_value(TEXT, &[Seg::Key("listen"), Seg::Key("http"), Seg::Index(1)]),
            Some((6, 24))
        );
        assert_eq!(
            locate_value(TEXT, &[Seg::Key("flow"), Seg::Key("b")]),
            Some((7, 17))
        );
    }

    #[test]
    fn missing_paths() {
        assert_eq!(locate_value(TEXT, &[Seg::Key("nothing")]), None);
        assert_eq!(locate_value(TEXT, &[Seg::Key("name"), Seg::Key("x")]), None);
        assert_eq!(
            locate_value(TEXT, &[Seg::Key("listen"), Seg::Key("http"), Seg::Index(5)]),
            None
        );
        assert_eq!(locate_value("a: [", &[Seg::Key("b")]), None);
        assert_eq!(
            locate_nearest(TEXT, &[Seg::Key("multicast"), Seg::Key("ttl")], true),
            (2, 1)
        );
        assert_eq!(locate_nearest(TEXT, &[Seg::Key("zzz")], true), (1, 1));
    }
}
