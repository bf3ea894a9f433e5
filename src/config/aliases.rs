//! Refuses YAML aliases, and nesting deeper than any config needs, before any deserializer
//! sees the text.
//!
//! Why: serde_norway expands every alias (`*name`) by replaying the anchored
//! node, so a 42 kB "billion laughs" file — six levels, each a list of 2000
//! aliases of the level before — grows into gigabytes before a single field is
//! looked at (its own guard allows 100 alias jumps per event, which is still
//! gigabytes). Station and server files never need anchors, and the same loader
//! reads files from disk, the config partition and the control API's
//! `POST /v1/check` body, so the refusal lives here, at the loader's depth.
//!
//! The scan uses an event parser (saphyr-parser) that never builds a tree and never
//! expands anything: memory and time are linear in the text. A text without a `*`
//! cannot hold an alias (YAML 1.2 §6.9.2, `c-ns-alias-node` starts with `*`), so
//! the scan is skipped for it. When the text has a `*` and the scanner cannot read
//! it, the text is refused with the scanner's words rather than handed to a
//! parser that might expand what the scan did not see.

use std::path::Path;

use saphyr_parser::{Event, Parser};

use super::error::ConfigError;

/// The deepest nesting of sequences and mappings accepted (station and server files use 4).
/// The event scan stops at the first node past it, so a body of 100,000 `[` costs as much as
/// 65: before this bound the loader's parse walked all of it on the daemon's one thread
/// (~4.4 µs per level, 0.43 s for a 100 kB `POST /v1/check`, every station stalled meanwhile).
const MAX_DEPTH: usize = 64;

/// Refuses `text` when it holds an alias, or when it holds a `*` and cannot be
/// scanned; the error carries the 1-based line and column of the alias.
pub(crate) fn refuse_aliases(file: &Path, text: &str) -> Result<(), ConfigError> {
    let may_alias = text.contains('*');
    let mut depth = 0usize;
    for item in Parser::new_from_str(text) {
        match item {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), span)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ConfigError::at(
                        file,
                        (span.start.line(), span.start.col() + 1),
                        "",
                        format!(
                            "nested more than {MAX_DEPTH} levels deep; a config file needs a few"
                        ),
                    ));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok((Event::Alias(_), span)) => {
                return Err(ConfigError::at(
                    file,
                    (span.start.line(), span.start.col() + 1),
                    "",
                    "YAML aliases (`*name`) are not accepted in asfcast config files; \
                     write the value out in full",
                ));
            }
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok(_) => {}
            // Without a `*` nothing can expand: the loader's own parse reports the error in its
            // words (and stops at the same place, so nesting beyond it costs nothing).
            // The scanner's own bound on flow nesting (it looks ahead, so a long run of `[`
            // stops there before any event): the same refusal.
            Err(e) if e.info().contains("recursion limit") => {
                let at = e.marker();
                return Err(ConfigError::at(
                    file,
                    (at.line(), at.col() + 1),
                    "",
                    format!("nested more than {MAX_DEPTH} levels deep; a config file needs a few"),
                ));
            }
            Err(_) if !may_alias => return Ok(()),
            Err(e) => {
                let at = e.marker();
                return Err(ConfigError::at(
                    file,
                    (at.line(), at.col() + 1),
                    "",
                    format!("invalid YAML: {}", e.info()),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), ConfigError> {
        refuse_aliases(Path::new("s.yaml"), text)
    }

    #[test]
    fn plain_files_pass() {
        check("name: demo\nsource:\n  type: playlist\n  files: [a.asf]\n").unwrap();
        // A `*` inside quoted, plain and block scalars and in comments is not an alias.
        check("name: demo # a * comment\ndescription: \"5 * 3\"\nnote: a*b\ntext: |\n  *not*\n")
            .unwrap();
        // An anchor alone expands nothing.
        check("name: &n demo\n").unwrap();
    }

    #[test]
    fn an_alias_is_refused_with_its_place() {
        let e = check("name: &n demo\ndescription: *n\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 14), "{e}");
        assert!(e.message.contains("aliases"), "{e}");
        let e = check("base: &b {ttl: 1}\nmulticast:\n  <<: *b\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn a_billion_laughs_is_refused_at_its_first_alias() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let prev = (b'a' + level - 1) as char;
            let this = (b'a' + level) as char;
            let items = vec![format!("*{prev}"); 2000].join(", ");
            text.push_str(&format!("{this}: &{this} [{items}]\n"));
        }
        let e = check(&text).unwrap_err();
        assert_eq!((e.line, e.column), (2, 8), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_at_the_first_level_past_the_bound() {
        let text = format!("name: {}\n", "[".repeat(100_000));
        let e = check(&text).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("nested more than 64"), "{e}");
        // Block nesting counts too (a list in a list in a list …).
        let deep: String = (0..100)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        let e = check(&deep).unwrap_err();
        assert!(e.message.contains("nested more than 64"), "{e}");
        // Within the bound it passes on to the loader.
        check(&format!(
            "a: {}{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        ))
        .unwrap();
    }

    #[test]
    fn unreadable_text_with_a_star_is_refused() {
        let e = check("name: [*a\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
    }
}
