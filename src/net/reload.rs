//! Reload (SIGHUP) by diff: the new config is loaded and checked first (a broken one is
//! refused with its errors logged and kept for the status page, the API and the metrics, and
//! the running config stays; a valid one clears them and, with `--last-good`, is saved as the
//! last good copy); stations whose config is
//! equal keep running untouched with their clients, stations whose stream changed restart,
//! removed ones stop, new ones start; server settings apply as far as they can without a
//! restart.
//!
//! A station whose change leaves its stream alone (announcements, unicast settings; see
//! [`config::diff`]) is updated in place: its stream, its MSB packet ids and its clients go
//! on, its .nsc/.asx are rewritten. One exception ends clients: a unicast protocol switched
//! off ends that protocol's sessions of the station with the protocol's clean end, so that
//! the running service matches what the config says rather than until those clients leave
//! (for a 24/7 stream, possibly never). A lowered `max_clients` ends nobody: it applies to
//! the next connections.

use std::time::Instant;

use tracing::{error, info, warn};

use crate::config::{self, Unicast};
use crate::ops::api::{ReloadPlan, ReloadReport};
use crate::ops::ConfigOrigin;
use crate::station::sink::Protocol;

use super::daemon::Daemon;
use super::rlimit::raise_open_file_limit;

impl Daemon {
    /// SIGHUP: re-read the config; apply it by diff, or keep the running one if it is broken.
    /// Returns what came of it (for the control API).
    pub(super) fn reload(&mut self) -> ReloadReport {
        self.manager.reloading();
        let report = self.apply_reload();
        // The status page and metrics show the config's errors (or their end) at once.
        self.ops_snapshot.ops.config = self.config_state.clone();
        let status = self.status_line();
        self.manager.ready(&status);
        report
    }

    fn apply_reload(&mut self) -> ReloadReport {
        let new = match config::load_with_sources(&self.paths) {
            Ok((c, sources)) => {
                self.config_state = crate::ops::ConfigState::default();
                // Listeners apply at the next start: one that would not bind then is an
                // error now, and the file is not saved as the last good copy (the restart
                // would otherwise have nothing to fall back to).
                let running: Vec<_> = self.listeners.iter().map(|l| l.addr).collect();
                let unbindable = match c.server.listen != self.config.server.listen {
                    true => super::bind_set::probe(
                        &c.server.listen,
                        &running,
                        c.server.limits.listen_backlog,
                    ),
                    false => Vec::new(),
                };
                for e in &unbindable {
                    error!("{e}: this listener would not bind at the next start");
                }
                let errors: Vec<_> = unbindable
                    .into_iter()
                    .map(|e| {
                        super::daemon::server_file_error(
                            &c,
                            format!("{e}; the last good listeners run at the next start"),
                        )
                    })
                    .collect();
                match (&self.last_good, errors.is_empty()) {
                    (Some(dir), true) => super::last_good::store(dir, &sources),
                    (Some(_), false) => {
                        self.config_state.errors = std::sync::Arc::new(errors);
                    }
                    (None, _) => {}
                }
                c
            }
            Err(errs) => {
                error!("reload refused, keeping the running configuration:\n{errs}");
                // The running config is now an earlier one (unless none ran).
                if self.config_state.running == ConfigOrigin::Current {
                    self.config_state.running = ConfigOrigin::LastGood;
                }
                self.config_state.errors = std::sync::Arc::new(errs.0.clone());
                return ReloadReport::Refused(errs);
            }
        };
        self.reload_api(&new);
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
            if new.server.log.clients != old.clients {
                self.client_log = None;
                info!("client log settings changed");
            }
        }
        // (Re)opened when it changed or could not be opened before.
        if let (Some(c), None) = (&new.server.log.clients, &self.client_log) {
            match super::client_log::ClientLog::open(c) {
                Ok(l) => self.client_log = Some(l),
                Err(e) => {
                    error!(error = %e, "client log records are dropped until it is fixed");
                    let err = super::daemon::server_file_error(
                        &new,
                        format!("{e}; client log records are dropped"),
                    );
                    let mut errors = self.config_state.errors.as_ref().clone();
                    errors.push(err);
                    self.config_state.errors = std::sync::Arc::new(errors);
                }
            }
        }
        if changes.limits {
            self.write_coalesce = new.server.limits.write_interval;
            raise_open_file_limit(new.server.limits.max_clients);
            for rt in self.stations.values_mut() {
                rt.hub
                    .set_join_reach_back(new.server.limits.fast_start_buffer);
            }
            info!("limits changed: they apply to new connections (and the write interval and fast-start buffer at once); connected sessions keep theirs");
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
        for name in &plan.update {
            let (Some(rt), Some(s)) = (self.stations.get_mut(name), new.station(name)) else {
                continue;
            };
            let off = switched_off(&rt.config.unicast, &s.unicast);
            rt.update(&new.server, s);
            info!(station = %name, "station updated in place by reload");
            for p in off {
                let ended = self.end_clients(name, Some(p), now);
                info!(station = %name, protocol = p.as_str(), ended, "protocol switched off; its clients ended");
            }
        }
        for name in plan.stop.iter().chain(plan.restart.iter()) {
            if let Some(mut rt) = self.stations.remove(name) {
                rt.stop(now);
                // A restarted station writes its files anew, in the new directory or under
                // the new names if they changed.
                let (was, next) = (&rt.config.announcement, new.station(name));
                let moved = match next.map(|s| &s.announcement) {
                    Some(a) => a.nsc != was.nsc || a.asx != was.asx,
                    None => true,
                };
                if moved || changes.announce {
                    rt.announcer.withdraw();
                }
                let why = match (self.config.station(name), new.station(name)) {
                    (Some(a), Some(b)) => match config::diff::station_change(a, b) {
                        config::diff::StationChange::Restart(field) => field,
                        _ => "reload",
                    },
                    _ => "removed",
                };
                info!(station = %name, changed = why, "station stopped by reload");
            }
            self.due.remove(name);
            // Its clients get the protocol's clean end; a restarted station is joined anew.
            self.end_clients(name, None, now);
        }
        for name in plan.restart.iter().chain(plan.start.iter()) {
            // A station stopped through the control API stays stopped.
            if self.api.stopped.contains(name) {
                continue;
            }
            if let Some(s) = new.station(name) {
                if let Err(e) = self.start_station(&s.clone(), now) {
                    error!(station = %name, error = %e, "station failed to start");
                }
            }
        }
        info!(
            unchanged = plan.unchanged.len(),
            updated = plan.update.len(),
            restarted = plan.restart.len(),
            stopped = plan.stop.len(),
            started = plan.start.len(),
            "configuration reloaded"
        );
        self.config = new;
        ReloadReport::Applied(ReloadPlan {
            unchanged: plan.unchanged.len(),
            updated: plan.update.len(),
            restarted: plan.restart.len(),
            stopped: plan.stop.len(),
            started: plan.start.len(),
        })
    }
}

impl Daemon {
    /// Ends the station's unicast sessions (of one protocol, or all) with the protocol's clean
    /// end; returns how many.
    pub(super) fn end_clients(
        &mut self,
        station: &str,
        protocol: Option<Protocol>,
        now: Instant,
    ) -> usize {
        let mut ended = 0;
        for i in 0..self.conns.len() {
            if let Some(c) = self.conns[i].as_mut() {
                let matches = c.session.station() == Some(station)
                    && match protocol {
                        Some(p) => c.session.protocol() == p.as_str(),
                        None => true,
                    };
                if matches {
                    let step = c.session.on_station_end(now);
                    c.apply(step);
                    self.after_io(i);
                    ended += 1;
                }
            }
        }
        ended
    }
}

/// The unicast protocols on in `old` and off in `new`.
fn switched_off(old: &Unicast, new: &Unicast) -> Vec<Protocol> {
    [
        (Protocol::Mms, old.mms && !new.mms),
        (Protocol::Mmsh, old.mmsh && !new.mmsh),
        (Protocol::Rtsp, old.rtsp && !new.rtsp),
    ]
    .into_iter()
    .filter_map(|(p, off)| off.then_some(p))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_protocols_turned_off_are_listed() {
        let all = Unicast::default();
        let mut some = all.clone();
        some.mms = false;
        some.rtsp = false;
        assert_eq!(switched_off(&all, &some), [Protocol::Mms, Protocol::Rtsp]);
        assert!(switched_off(&some, &all).is_empty());
        assert!(switched_off(&all, &all).is_empty());
    }
}
