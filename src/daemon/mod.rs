//! `asfcast run`: the daemon. One thread, one mio `Poll`: the pacing timer wakes it when the
//! next packet of any station is due, the signalfd delivers SIGTERM/SIGINT (clean stop) and
//! SIGHUP (reload), and the listeners and connections are further event sources.
//!
//! Reload keeps what did not change: the new config is loaded and checked first (a broken one
//! is refused with its errors logged and the running config stays); stations whose config is
//! equal keep running untouched, changed ones restart, removed ones stop, new ones start.

pub mod announce;
pub mod connections;
pub mod station_runtime;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::net::signals::{SignalRequest, Signals};
use crate::net::timer::PacingTimer;

use station_runtime::StationRuntime;

const TIMER: Token = Token(0);
const SIGNALS: Token = Token(1);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("configuration refused:\n{0}")]
    Config(config::ConfigErrors),
    #[error("{0}")]
    Io(#[from] io::Error),
}

pub struct Daemon {
    paths: Vec<PathBuf>,
    config: Config,
    poll: Poll,
    timer: PacingTimer,
    signals: Signals,
    stations: BTreeMap<String, StationRuntime>,
    /// When each station wants to be serviced next.
    due: BTreeMap<String, Instant>,
}

impl Daemon {
    /// Loads and checks the config, opens the signal and timer fds, starts every station.
    pub fn start(paths: Vec<PathBuf>) -> Result<Daemon, DaemonError> {
        let config = config::load(&paths).map_err(DaemonError::Config)?;
        let signals = Signals::new()?;
        let timer = PacingTimer::new()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
        poll.registry().register(
            &mut SourceFd(&signals.raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        let mut d = Daemon {
            paths,
            config,
            poll,
            timer,
            signals,
            stations: BTreeMap::new(),
            due: BTreeMap::new(),
        };
        let now = Instant::now();
        let stations = d.config.stations.clone();
        for s in &stations {
            d.start_station(s, now)?;
        }
        info!(stations = d.stations.len(), "asfcast running");
        Ok(d)
    }

    fn start_station(&mut self, s: &config::StationConfig, now: Instant) -> io::Result<()> {
        let rt = StationRuntime::start(&self.config.server, s, now)?;
        self.stations.insert(s.name.clone(), rt);
        self.due.insert(s.name.clone(), now);
        Ok(())
    }

    /// Runs until SIGTERM or SIGINT.
    pub fn run(mut self) -> Result<(), DaemonError> {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            self.service_due(now);
            if let Some(next) = self.due.values().min().copied() {
                self.timer.arm(next, Instant::now())?;
            }
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            for ev in events.iter() {
                match ev.token() {
                    TIMER => self.timer.acknowledge(),
                    SIGNALS => {
                        for req in self.signals.drain() {
                            match req {
                                SignalRequest::Stop(sig) => {
                                    info!(signal = %sig, "stopping");
                                    self.stop();
                                    return Ok(());
                                }
                                SignalRequest::Reload => self.reload(),
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn service_due(&mut self, now: Instant) {
        for (name, rt) in self.stations.iter_mut() {
            let due = self.due.get(name).copied().unwrap_or(now);
            if due <= now {
                let next = rt.service(now);
                self.due.insert(name.clone(), next);
            }
        }
    }

    fn stop(&mut self) {
        for rt in self.stations.values_mut() {
            rt.stop();
        }
    }

    /// SIGHUP: re-read the config; apply it by diff, or keep the running one if it is broken.
    fn reload(&mut self) {
        let new = match config::load(&self.paths) {
            Ok(c) => c,
            Err(errs) => {
                error!("reload refused, keeping the running configuration:\n{errs}");
                return;
            }
        };
        if new.server != self.config.server {
            warn!("server settings changed; listeners and limits apply at the next restart");
        }
        let now = Instant::now();
        let old_names: Vec<String> = self.stations.keys().cloned().collect();
        for name in old_names {
            let keep = new
                .stations
                .iter()
                .any(|s| s.name == name && Some(s) == self.config.station(&name));
            if !keep {
                if let Some(mut rt) = self.stations.remove(&name) {
                    rt.stop();
                    rt.announcer.withdraw();
                    info!(station = %name, "station stopped by reload");
                }
                self.due.remove(&name);
            }
        }
        for s in &new.stations {
            if !self.stations.contains_key(&s.name) {
                if let Err(e) = self.start_station(s, now) {
                    error!(station = %s.name, error = %e, "station failed to start");
                }
            }
        }
        info!(stations = self.stations.len(), "configuration reloaded");
        self.config = new;
        let _ = Duration::ZERO;
    }
}
