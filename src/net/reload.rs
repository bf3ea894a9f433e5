//! Reload (SIGHUP) by diff: the new config is loaded and checked first (a broken one is
//! refused with its errors logged and the running config stays); stations whose config is
//! equal keep running untouched with their clients, changed ones restart, removed ones stop,
//! new ones start; server settings apply as far as they can without a restart.

use std::time::Instant;

use tracing::{error, info, warn};

use crate::config;

use super::daemon::Daemon;
use super::rlimit::raise_open_file_limit;

impl Daemon {
    /// SIGHUP: re-read the config; apply it by diff, or keep the running one if it is broken.
    pub(super) fn reload(&mut self) {
        self.manager.reloading();
        self.apply_reload();
        let status = self.status_line();
        self.manager.ready(&status);
    }

    fn apply_reload(&mut self) {
        let new = match config::load(&self.paths) {
            Ok(c) => c,
            Err(errs) => {
                error!("reload refused, keeping the running configuration:\n{errs}");
                return;
            }
        };
        let mut new = new;
        let plan = config::diff::diff(&self.config, &new);
        let changes = plan.server;
        if changes.listen {
            // The running listeners stay (they may also come from systemd): the config keeps
            // saying so, and the next reload warns again until the daemon restarts.
            warn!("listener changes apply at the next restart; the running listeners stay");
            new.server.listen = self.config.server.listen.clone();
        }
        if changes.log {
            let old = &self.config.server.log;
            let level = new.server.log.level;
            if level != old.level {
                match &self.log_level_hook {
                    Some(set) => match set(level) {
                        Ok(()) => info!(level = ?level, "log level changed"),
                        Err(e) => warn!(error = %e, "cannot change the log level"),
                    },
                    None => warn!("log level fixed by ASFCAST_LOG; the new level is not applied"),
                }
            }
            if new.server.log.format != old.format {
                warn!("log format changes apply at the next restart");
            }
        }
        if changes.limits {
            self.write_coalesce = new.server.limits.write_interval;
            raise_open_file_limit(new.server.limits.max_clients);
            info!("limits changed: they apply to new connections (and the write interval at once); connected sessions keep theirs");
        }
        if changes.rtsp {
            info!("rtsp settings changed: they apply to new RTSP sessions");
        }
        // Stations (re)started below and new connections use the new server settings.
        self.config.server = new.server.clone();
        if changes.announce {
            for name in &plan.unchanged {
                if let Some(rt) = self.stations.get_mut(name) {
                    if let Err(e) = rt.announcer.reconfigure(&new.server, &rt.config) {
                        warn!(station = %name, error = %e, "cannot write the announcement files");
                    }
                }
            }
            info!(dir = %new.server.announce_dir.display(), "announcements rewritten");
        }
        let now = Instant::now();
        for name in plan.stop.iter().chain(plan.restart.iter()) {
            if let Some(mut rt) = self.stations.remove(name) {
                rt.stop(now);
                // A restarted station writes its files anew, in the new directory if it moved.
                if plan.stop.contains(name) || changes.announce {
                    rt.announcer.withdraw();
                }
                info!(station = %name, "station stopped by reload");
            }
            self.due.remove(name);
            // Its clients get the protocol's clean end; a restarted station is joined anew.
            for i in 0..self.conns.len() {
                if let Some(c) = self.conns[i].as_mut() {
                    if c.session.station() == Some(name.as_str()) {
                        let step = c.session.on_station_end(now);
                        c.apply(step);
                        self.after_io(i);
                    }
                }
            }
        }
        for name in plan.restart.iter().chain(plan.start.iter()) {
            if let Some(s) = new.station(name) {
                if let Err(e) = self.start_station(&s.clone(), now) {
                    error!(station = %name, error = %e, "station failed to start");
                }
            }
        }
        info!(
            unchanged = plan.unchanged.len(),
            restarted = plan.restart.len(),
            stopped = plan.stop.len(),
            started = plan.start.len(),
            "configuration reloaded"
        );
        self.config = new;
    }
}
