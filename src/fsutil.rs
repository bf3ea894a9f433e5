//! Writing files so that a reader (or a power cut) sees the old content or the new, never
//! half of one: a temporary file beside the target, `fsync`, `rename` over the target, then
//! `fsync` of the directory. Works on vfat (the config partition): rename within one
//! directory replaces the target there too.
//!
//! Used by the shell for the config partition's station files, the last-good copy and
//! `asfcast netconfig`'s output.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary name used for `target`: `.<name>.part` beside it (hidden, so the config
/// loader never reads it as a station).
pub fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.part"))
}

/// Writes `bytes` to `target` atomically (see the module doc).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let part = part_path(target);
    let result = (|| {
        let mut f = File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&part, target)?;
        sync_dir(target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// `fsync` of the directory holding `path` (so a rename or removal is durable). Errors from
/// file systems that cannot sync a directory are ignored.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_part() {
        let dir = std::env::temp_dir().join(format!("asfcast-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let t = dir.join("a.yaml");
        write_atomic(&t, b"one").unwrap_or_else(|e| panic!("{e}"));
        write_atomic(&t, b"two").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&t).unwrap_or_default(), b"two");
        assert!(!part_path(&t).exists());
        assert_eq!(part_path(&t), dir.join(".a.yaml.part"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
