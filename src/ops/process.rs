//! The process figures the metrics page reports (resident memory, open descriptors, CPU
//! time), parsed from `/proc/self` text the shell reads. Parsing is here, pure; reading the
//! files is the shell's (`crate::net`).

/// What `/proc/self` says about the daemon.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
}

/// Why a `/proc` text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcError {
    #[error("/proc/self/stat: {0}")]
    Stat(&'static str),
    #[error("/proc/self/status: no VmRSS line")]
    NoRss,
}

/// CPU seconds (utime + stime) from `/proc/self/stat`, with `ticks` clock ticks per second.
pub fn cpu_seconds(stat: &str, ticks: u64) -> Result<f64, ProcError> {
    // The command name (field 2) is in parentheses and may contain spaces: fields after the
    // last ')' start with field 3 (state); utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or(ProcError::Stat("no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, ProcError> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or(ProcError::Stat("utime/stime missing"))
    };
    let ticks = ticks.max(1) as f64;
    Ok((field(14)? + field(15)?) as f64 / ticks)
}

/// Resident bytes from `/proc/self/status` (`VmRSS:  1234 kB`).
pub fn rss_bytes(status: &str) -> Result<u64, ProcError> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or(ProcError::NoRss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "1234 (asf cast) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 1 0 100 \
                    1000000 300 18446744073709551615";
        assert_eq!(cpu_seconds(stat, 100), Ok(3.0));
        assert!(cpu_seconds("garbage", 100).is_err());
        assert!(cpu_seconds("1 (x) S 1", 100).is_err());
        assert_eq!(rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\n"), Ok(2048 * 1024));
        assert_eq!(rss_bytes("Name:\tx\n"), Err(ProcError::NoRss));
    }
}
