//! `asfcast passwd FILE USER [--realm R]`: sets a user's password in a users file (the
//! `user:realm:HA1` lines of [`crate::access::users`], which explains the hash form).
//!
//! The password is never an argument (argv is visible to every user in `ps` and lands in
//! shell histories): it is read from standard input, one line, or — when standard input is a
//! terminal — asked for twice with echo off. The file is rewritten whole through a temporary
//! file in the same directory, created mode 0600 and renamed over the old one, so a reader
//! (the daemon's reload) sees the old or the new file, never half of one, and nobody but the
//! owner can read the hashes. Other lines of the file are kept.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::access::users::{with_entry, UsersError};
use crate::config::auth::DEFAULT_REALM;

/// Largest users file rewritten.
const MAX_FILE: u64 = 1 << 20;
/// Longest password read.
const MAX_PASSWORD: usize = 1024;

/// Arguments of `asfcast passwd`.
#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    /// The users file (created mode 0600 when missing).
    pub file: PathBuf,
    /// The user whose password is set.
    pub user: String,
    /// The realm (the station's `auth.realm`).
    #[arg(long, default_value = DEFAULT_REALM)]
    pub realm: String,
}

/// Why the password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("{0}")]
    Entry(#[from] UsersError),
    #[error("{path}: {error}")]
    File { path: PathBuf, error: io::Error },
    #[error("{0} is larger than 1 MiB; is it a users file?")]
    TooLarge(PathBuf),
    #[error("reading the password: {0}")]
    Input(io::Error),
    #[error("no password given (an empty line)")]
    Empty,
    #[error("the password is longer than {MAX_PASSWORD} bytes")]
    TooLong,
    #[error("the passwords differ")]
    Mismatch,
}

/// Runs the command.
pub fn run(args: &PasswdArgs) -> ExitCode {
    match set(args) {
        Ok(()) => {
            eprintln!(
                "asfcast: password of {} (realm {}) set in {}",
                args.user,
                args.realm,
                args.file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("asfcast passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn set(args: &PasswdArgs) -> Result<(), PasswdError> {
    // Refuse a bad user or realm before asking for anything.
    with_entry("", &args.user, &args.realm, "")?;
    let password = read_password()?;
    write_entry(&args.file, &args.user, &args.realm, &password)
}

/// Sets `user`'s password for `realm` in the users file at `path`.
pub fn write_entry(
    path: &Path,
    user: &str,
    realm: &str,
    password: &str,
) -> Result<(), PasswdError> {
    let file_err = |error| PasswdError::File {
        path: path.to_path_buf(),
        error,
    };
    let old = match fs::File::open(path) {
        Ok(f) => {
            let mut text = String::new();
            f.take(MAX_FILE + 1)
                .read_to_string(&mut text)
                .map_err(file_err)?;
            if text.len() as u64 > MAX_FILE {
                return Err(PasswdError::TooLarge(path.to_path_buf()));
            }
            text
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_err(e)),
    };
    let new = with_entry(&old, user, realm, password)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users".into());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        file_err(e)
    })
}

fn check(password: String) -> Result<String, PasswdError> {
    if password.is_empty() {
        return Err(PasswdError::Empty);
    }
    if password.len() > MAX_PASSWORD {
        return Err(PasswdError::TooLong);
    }
    Ok(password)
}

fn trim_line(mut line: String) -> String {
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    line
}

/// One line of stdin, or twice from the terminal without echo.
fn read_password() -> Result<String, PasswdError> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .take(MAX_PASSWORD as u64 + 2)
            .read_line(&mut line)
            .map_err(PasswdError::Input)?;
        return check(trim_line(line));
    }
    let first = check(prompt("Password: ")?)?;
    let second = prompt("Again: ")?;
    if first != second {
        return Err(PasswdError::Mismatch);
    }
    Ok(first)
}

/// Asks on stderr and reads a line from the terminal with echo off (termios, restored after).
fn prompt(text: &str) -> Result<String, PasswdError> {
    eprint!("{text}");
    let fd = libc::STDIN_FILENO;
    // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios that tcgetattr fills.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if got {
        let mut quiet = old;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let r = io::stdin().lock().read_line(&mut line);
    if got {
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    }
    r.map_err(PasswdError::Input)?;
    Ok(trim_line(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::users::Users;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_mode_0600_and_keeps_other_entries() {
        let dir = std::env::temp_dir().join(format!("asfcast-passwd-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("users");
        let _ = fs::remove_file(&path);
        write_entry(&path, "alice", "tv", "one").unwrap();
        write_entry(&path, "bob", "tv", "two").unwrap();
        write_entry(&path, "alice", "tv", "three").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("three") && !text.contains("two"));
        let u = Users::parse(&text).unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.check_password("alice", "tv", "three"));
        assert!(u.check_password("bob", "tv", "two"));
        assert!(matches!(
            write_entry(&path, "a:b", "tv", "x"),
            Err(PasswdError::Entry(_))
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
