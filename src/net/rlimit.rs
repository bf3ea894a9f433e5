//! The process's open-file limit: every client connection is a descriptor.

use tracing::warn;

/// Raises the soft open-file limit to the hard one (systemd's `LimitNOFILE=` sets both), so
/// `max_clients` connections fit; warns when even the hard limit is too small.
pub fn raise_open_file_limit(max_clients: u32) {
    // SAFETY: getrlimit/setrlimit on a local struct.
    let (soft, hard) = unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return;
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
        (r.rlim_cur, r.rlim_max)
    };
    let needed = u64::from(max_clients) + 64;
    if soft < needed {
        warn!(
            soft,
            hard, needed, "open-file limit below max_clients; raise LimitNOFILE"
        );
    }
}
