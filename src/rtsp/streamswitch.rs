//! The body of a `SET_PARAMETER` with `Content-Type: application/x-wms-streamswitch`: the
//! client's SelectStream ([MS-RTSP] 2.2.6.3.9, 3.2.5.6; ingest-relay-ops.md §c).
//!
//! One `SSEntry: <OldStream> <NewStream> <ThinLevel> [<OldStreamURI>] [<NewStreamURI>]` line per
//! change, stream numbers in decimal, `4294967295` meaning "none". The same old and new stream
//! (un)thins it: level 0 everything, 1 key frames only, 2 off. Other lines are ignored. Pure:
//! bytes in, entries out; at most [`MAX_ENTRIES`] lines are read.

use crate::station::selection::Thinning;

/// "No stream" in an SSEntry.
pub const NONE: u64 = 4_294_967_295;
/// The most entries one request is read for.
pub const MAX_ENTRIES: usize = 64;

/// One SSEntry line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsEntry {
    pub old: Option<u8>,
    pub new: Option<u8>,
    pub level: Thinning,
}

/// Why a stream-switch body was refused (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    #[error("SSEntry line {0}: {1}")]
    Bad(usize, &'static str),
    #[error("no SSEntry line")]
    Empty,
}

fn stream(field: &str, line: usize) -> Result<Option<u8>, SwitchError> {
    let n: u64 = field
        .parse()
        .map_err(|_| SwitchError::Bad(line, "stream number is not a number"))?;
    if n == NONE {
        return Ok(None);
    }
    match u8::try_from(n) {
        Ok(n) if (1..=127).contains(&n) => Ok(Some(n)),
        _ => Err(SwitchError::Bad(line, "stream number out of range 1..=127")),
    }
}

/// Parses the SSEntry lines of `body`.
pub fn parse(body: &[u8]) -> Result<Vec<SsEntry>, SwitchError> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().take(4 * MAX_ENTRIES) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("SSEntry") {
            continue;
        }
        let f: Vec<&str> = value.split_ascii_whitespace().take(5).collect();
        let [old, new, level, ..] = f[..] else {
            return Err(SwitchError::Bad(
                i + 1,
                "needs OldStream NewStream ThinLevel",
            ));
        };
        let level = match level {
            "0" => Thinning::All,
            "1" => Thinning::KeyFrames,
            "2" => Thinning::Off,
            _ => return Err(SwitchError::Bad(i + 1, "ThinLevel is not 0, 1 or 2")),
        };
        let entry = SsEntry {
            old: stream(old, i + 1)?,
            new: stream(new, i + 1)?,
            level,
        };
        if entry.old.is_none() && entry.new.is_none() {
            return Err(SwitchError::Bad(i + 1, "neither stream named"));
        }
        out.push(entry);
        if out.len() >= MAX_ENTRIES {
            break;
        }
    }
    if out.is_empty() {
        return Err(SwitchError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_table() {
        let ok = |b: &str| parse(b.as_bytes()).unwrap();
        assert_eq!(
            ok("SSEntry: 1 3 0 rtsp://h/mbr/stream=1 rtsp://h/mbr/stream=3\r\n"),
            [SsEntry {
                old: Some(1),
                new: Some(3),
                level: Thinning::All
            }]
        );
        assert_eq!(
            ok("ssentry: 4294967295 2 1 rtsp://h/x\r\nOther: x\r\nSSEntry: 2 2 0\r\n"),
            [
                SsEntry {
                    old: None,
                    new: Some(2),
                    level: Thinning::KeyFrames
                },
                SsEntry {
                    old: Some(2),
                    new: Some(2),
                    level: Thinning::All
                }
            ]
        );
        for bad in [
            "",
            "Nothing: here",
            "SSEntry: 1",
            "SSEntry: 1 2 7",
            "SSEntry: x 2 0",
            "SSEntry: 1 300 0",
            "SSEntry: 0 2 0",
            "SSEntry: 4294967295 4294967295 0",
            "SSEntry: 99999999999999999999 1 0",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let storm = "SSEntry: 1 2 0\r\n".repeat(10_000);
        assert_eq!(parse(storm.as_bytes()).unwrap().len(), MAX_ENTRIES);
    }
}
