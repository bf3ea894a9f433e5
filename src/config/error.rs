//! Config errors that point at the place to fix.
//!
//! Why: an operator reads these in `asfcast check` output or in the journal when a
//! reload is refused, so every error names the file, the line and column, the
//! field path (`multicast.ttl`) and says what is wrong in plain words:
//! `demo.yaml:7:8: multicast.ttl: 300 is out of range 0–255`.
//!
//! serde_norway prints its own path and position inside its messages; this module
//! takes the position from `Error::location`, the path from `serde_path_to_error`,
//! and strips both from the text so each appears once.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file (or directory) the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is not at a place in the file (an
    /// unreadable file, a missing directory).
    pub line: usize,
    /// 1-based column; 0 when `line` is 0.
    pub column: usize,
    /// Dotted path of the field, such as `multicast.ttl` or `source.files[1]`;
    /// empty when the problem concerns the whole file.
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl ConfigError {
    /// An error about a whole file or directory, without a position.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: message.into(),
        }
    }

    /// An error at `line:column` (1-based) about `field`.
    pub fn at(
        file: &Path,
        (line, column): (usize, usize),
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if self.line > 0 {
            out.push_str(&format!(":{}:{}", self.line, self.column));
        }
        out.push_str(": ");
        if !self.field.is_empty() {
            out.push_str(&self.field);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }

    /// Converts a deserialization error of `file` into a located error.
    pub(crate) fn from_yaml(
        file: &Path,
        err: serde_path_to_error::Error<serde_norway::Error>,
    ) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let (line, column) = inner.location().map_or((0, 0), |l| (l.line(), l.column()));
        let field = if path == "." || path == "?" {
            String::new()
        } else {
            path
        };
        let message = clean_message(&inner.to_string(), &field);
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    }
}

/// Checks that `text` is one well-formed YAML document, before any field is
/// looked at, so that a syntax error is not reported against whatever field the
/// reader happened to be in.
///
/// Aliases are refused first (see `aliases`): the syntax check itself walks every
/// node and would expand them.
pub(crate) fn syntax_check(file: &Path, text: &str) -> Result<(), ConfigError> {
    super::aliases::refuse_aliases(file, text)?;
    let Err(e) = serde_norway::from_str::<serde::de::IgnoredAny>(text) else {
        return Ok(());
    };
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let raw = e.to_string();
    let message = if raw.contains("more than one document") {
        "the file holds more than one YAML document (`---`); put each station in its own file"
            .to_owned()
    } else {
        format!("invalid YAML: {}", strip_positions(&raw))
    };
    Err(ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        field: String::new(),
        message,
    })
}

/// Removes serde_norway's " at line L column C" fragments and its leading
/// "path: " (when that path is the field path or a parent of it).
fn clean_message(raw: &str, field: &str) -> String {
    let mut text = strip_positions(raw);
    if let Some((prefix, rest)) = text.split_once(": ") {
        let is_field_path = !prefix.is_empty()
            && (field == prefix
                || field
                    .strip_prefix(prefix)
                    .is_some_and(|tail| tail.starts_with('.') || tail.starts_with('[')));
        if is_field_path {
            text = rest.to_owned();
        }
    }
    text
}

/// Removes every " at line N column M" from `raw`.
fn strip_positions(raw: &str) -> String {
    const MARK: &str = " at line ";
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(MARK) {
        let (head, tail) = rest.split_at(i);
        let after = &tail[MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let after_line = &after[digits..];
        let col = after_line.strip_prefix(" column ").map(|c| {
            let d = c.bytes().take_while(u8::is_ascii_digit).count();
            (d, &c[d..])
        });
        match col {
            Some((d, remaining)) if digits > 0 && d > 0 => {
                out.push_str(head);
                rest = remaining;
            }
            _ => {
                out.push_str(head);
                out.push_str(MARK);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every problem found in a set of config files, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// The errors, one per item.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = ConfigError::at(
            Path::new("demo.yaml"),
            (7, 8),
            "multicast.ttl",
            "300 is out of range 0–255",
        );
        assert_eq!(
            e.to_string(),
            "demo.yaml:7:8: multicast.ttl: 300 is out of range 0–255"
        );
        let e = ConfigError::file(Path::new("/etc/asfcast"), "no such directory");
        assert_eq!(e.to_string(), "/etc/asfcast: no such directory");
        let all = ConfigErrors(vec![
            ConfigError::at(Path::new("a.yaml"), (1, 1), "", "x"),
            ConfigError::at(Path::new("b.yaml"), (2, 3), "name", "y"),
        ]);
        assert_eq!(all.to_string(), "a.yaml:1:1: x\nb.yaml:2:3: name: y");
    }

    #[test]
    fn strips_positions_and_path_prefix() {
        assert_eq!(
            clean_message(
                "multicast: unknown field `foo`, expected `a` at line 5 column 3",
                "multicast.foo"
            ),
            "unknown field `foo`, expected `a`"
        );
        assert_eq!(
            clean_message(
                "multicast.ttl: 300 is out of range 0–255 at line 7 column 8",
                "multicast.ttl"
            ),
            "300 is out of range 0–255"
        );
        assert_eq!(
            clean_message("invalid type: map, expected x at line 1 column 1", ""),
            "invalid type: map, expected x"
        );
        assert_eq!(
            clean_message(
                "mapping values are not allowed in this context at line 2 column 9",
                "name"
            ),
            "mapping values are not allowed in this context"
        );
        // A prefix that is not the field path is kept.
        assert_eq!(clean_message("name: x", "other"), "name: x");
        // Text that only looks like a position is kept.
        assert_eq!(strip_positions("seen at line one"), "seen at line one");
    }
}
