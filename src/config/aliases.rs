//! Refuses YAML aliases before any deserializer sees the text.
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

/// Refuses `text` when it holds an alias, or when it holds a `*` and cannot be
/// scanned; the error carries the 1-based line and column of the alias.
pub(crate) fn refuse_aliases(file: &Path, text: &str) -> Result<(), ConfigError> {
    if !text.contains('*') {
        return Ok(());
    }
    for item in Parser::new_from_str(text) {
        match item {
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
    fn unreadable_text_with_a_star_is_refused() {
        let e = check("name: [*a\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
    }
}
