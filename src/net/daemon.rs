//! `asfcast run`: the daemon. One thread, one mio `Poll`: the pacing timer wakes it when the
//! next packet of any station (or the next session deadline) is due, the signalfd delivers
//! SIGTERM/SIGINT (clean stop) and SIGHUP (reload), and the listeners and connections are
//! further event sources driven through the [`Session`] contract.
//!
//! Reload is in [`super::reload`].

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, info, warn};

use crate::config::{self, Config};
use crate::net::systemd::{self, ServiceManager};
use crate::station::sink::{Datagram, Session, UdpChannel};

use super::bind_set;
use super::connections::{self, log_close, Connection, Listener, PeerCounts};
use super::fd_reserve::FdReserve;
use super::refusals::Refusals;
use super::rlimit::raise_open_file_limit;
use super::sessions::SessionFactory;
use super::signals::{SignalRequest, Signals};
use super::station_runtime::{HubEvent, StationRuntime};
use super::stations::StationsView;
use super::timer::PacingTimer;
use super::udp_routes::UdpRoutes;
use super::udp_sockets::UdpSockets;

const TIMER: Token = Token(0);
const SIGNALS: Token = Token(1);
const UDP_MMS_DATA: Token = Token(2);
const UDP_RTP: Token = Token(3);
const UDP_RTCP: Token = Token(4);
const LISTENER_BASE: usize = 16;
/// Tokens of the stations' upstream sockets (pull connections, multicast sources): one per
/// station name ([`Daemon::upstream_io`]).
const UPSTREAM_BASE: usize = 512;
pub(super) const CONN_BASE: usize = 1024;
/// SO_SNDBUF of accepted connections (the kernel doubles it for its bookkeeping).
pub(super) const SEND_BUFFER: usize = 128 * 1024;
/// Most datagrams read from one UDP data socket per readiness event (fairness with the rest
/// of the loop; the socket is re-armed when more are left).
const UDP_READ_BUDGET: usize = 256;
/// While stations read and frame, every station's due datagrams are sent again once this much
/// time has passed since the last such pass ([`Daemon::service_stations`]).
const SEND_PASS_EVERY: Duration = Duration::from_micros(100);
/// How often idle bookkeeping runs even when nothing else is due.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("configuration refused:\n{0}")]
    Config(config::ConfigErrors),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Api(#[from] super::api::ApiError),
}

pub struct Daemon {
    pub(super) paths: Vec<PathBuf>,
    pub(super) config: Config,
    pub(super) poll: Poll,
    pub(super) timer: PacingTimer,
    pub(super) signals: Signals,
    pub(super) stations: BTreeMap<String, StationRuntime>,
    /// When each station wants to be serviced next.
    pub(super) due: BTreeMap<String, Instant>,
    pub(super) listeners: Vec<Listener>,
    pub(super) conns: Vec<Option<Connection>>,
    pub(super) free: Vec<usize>,
    pub(super) peers: PeerCounts,
    pub(super) read_buf: Vec<u8>,
    pub(super) events_buf: Vec<HubEvent>,
    pub(super) udp: UdpSockets,
    /// Which connection a datagram on the UDP data sockets belongs to, by source address.
    pub(super) udp_routes: UdpRoutes,
    pub(super) datagrams: Vec<Datagram>,
    pub(super) factory: SessionFactory,
    /// The id of the last accepted connection.
    pub(super) next_conn_id: u64,
    /// When the daemon started (for uptime).
    pub(super) started: Instant,
    /// The operators' snapshot, refreshed every housekeeping tick: what sessions read
    /// (status page, metrics) without the loop walking every connection per request.
    pub(super) ops_snapshot: crate::ops::Snapshot,
    /// Totals, history and loop measurements for the operators' views.
    pub(super) ops: super::ops_state::OpsState,
    pub(super) manager: ServiceManager,
    /// Unicast clients per station: the connections whose session plays it, so a station's
    /// packets go only to its own clients.
    pub(super) clients: HashMap<String, Vec<usize>>,
    /// When station packets were first queued without being written yet.
    pub(super) unflushed: Option<Instant>,
    pub(super) write_coalesce: Duration,
    pub(super) log_level_hook: Option<LogLevelHook>,
    /// Refused connections, logged as aggregates by the housekeeping tick.
    pub(super) refusals: Refusals,
    /// Clients admitted under the limits, per station and kind ([`super::admitted`]).
    pub(super) admitted: super::admitted::Admitted,
    /// `limits.max_connection_rate`'s token bucket (None: no limit).
    pub(super) connection_rate: Option<crate::access::limits::ConnectionRate>,
    /// The spare descriptor spent to refuse connections when out of descriptors.
    pub(super) fd_reserve: FdReserve,
    /// A listener could not be drained (out of descriptors even with the spare, or an accept
    /// error): the housekeeping tick accepts again.
    pub(super) accept_starved: bool,
    /// The control API: credentials and the stations it stopped ([`super::api`]).
    pub(super) api: super::api::ApiState,
    /// The Windows Media client log (`log.clients`), when configured.
    pub(super) client_log: Option<super::client_log::ClientLog>,
    /// Station names by upstream token slot (a name keeps its slot for the daemon's life).
    pub(super) upstream_slots: Vec<String>,
    /// Which configuration runs and the config directory's errors ([`super::last_good`]).
    pub(super) config_state: crate::ops::ConfigState,
    /// `--last-good DIR`: where the last valid configuration's texts are kept.
    pub(super) last_good: Option<PathBuf>,
    /// Every connection's next deadline (session timer or linger), by slot: the loop finds
    /// the earliest and the due ones without scanning every connection.
    pub(super) deadlines: super::deadlines::Deadlines,
    /// Scratch list of the connections due this turn.
    pub(super) due_conns: Vec<usize>,
}

/// Changes the running log level (see [`Daemon::with_log_level_hook`]).
pub type LogLevelHook = Box<dyn Fn(config::LogLevel) -> Result<(), String>>;

impl Daemon {
    /// What a reload calls with a changed `log.level` (set by the binary, which owns the
    /// tracing subscriber; None: the level is fixed, e.g. by `ASFCAST_LOG`).
    pub fn with_log_level_hook(mut self, hook: Option<LogLevelHook>) -> Self {
        self.log_level_hook = hook;
        self
    }

    /// Loads and checks the config, binds the listeners, opens the signal and timer fds and
    /// starts every station.
    pub fn start(paths: Vec<PathBuf>) -> Result<Daemon, DaemonError> {
        let config = config::load(&paths).map_err(DaemonError::Config)?;
        let startup = super::last_good::Startup {
            config,
            errors: Vec::new(),
            origin: crate::ops::ConfigOrigin::Current,
            sources: Vec::new(),
        };
        Self::start_with(paths, startup, None)
    }

    /// Starts with a configuration already resolved ([`super::last_good::resolve`]). With a
    /// last-good directory the daemon never stops for the config: unreadable API credentials
    /// lock the control API (every request 401) and a station that fails to start is logged.
    pub fn start_with(
        paths: Vec<PathBuf>,
        startup: super::last_good::Startup,
        last_good: Option<PathBuf>,
    ) -> Result<Daemon, DaemonError> {
        let config = startup.config;
        let mut config_errors = startup.errors;
        let api = match super::api::ApiState::load(&config.server.api) {
            Ok(a) => a,
            Err(e) if last_good.is_some() => {
                tracing::error!("{e}; the control API refuses every request until it is fixed");
                config_errors.push(server_file_error(&config, e.to_string()));
                super::api::ApiState::locked()
            }
            Err(e) => return Err(e.into()),
        };
        raise_open_file_limit(config.server.limits.max_clients);
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
        let mut config = config;
        let mut activated = systemd::take_listen_sockets();
        let (listeners, udp) = Self::bind_listeners(
            &poll,
            &mut config,
            &mut activated,
            last_good.as_deref(),
            &paths,
            &mut config_errors,
        )?;
        for a in activated {
            warn!(name = %a.name, addr = %a.local, "socket passed by systemd matches no configured listener; closed");
        }
        // The client log: with a last-good directory an unusable directory is an error on
        // the status page and records are dropped, not a stop.
        let client_log = match &config.server.log.clients {
            None => None,
            Some(c) => match super::client_log::ClientLog::open(c) {
                Ok(l) => Some(l),
                Err(e) if last_good.is_some() => {
                    tracing::error!(error = %e, "client log records are dropped until it is fixed");
                    config_errors.push(server_file_error(
                        &config,
                        format!("{e}; client log records are dropped"),
                    ));
                    None
                }
                Err(e) => return Err(e.into()),
            },
        };
        // The copy is saved once the configuration runs as it is, listeners bound.
        if let Some(dir) = &last_good {
            if startup.origin == crate::ops::ConfigOrigin::Current && config_errors.is_empty() {
                super::last_good::store(dir, &startup.sources);
            }
        }
        let limits_cfg = config.server.limits.clone();
        let mut d = Daemon {
            paths,
            config,
            poll,
            timer,
            signals,
            stations: BTreeMap::new(),
            due: BTreeMap::new(),
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            peers: PeerCounts::default(),
            read_buf: vec![0u8; connections::READ_CHUNK],
            events_buf: Vec::new(),
            udp,
            udp_routes: UdpRoutes::default(),
            datagrams: Vec::new(),
            factory: SessionFactory::new(),
            next_conn_id: 0,
            started: Instant::now(),
            ops_snapshot: crate::ops::Snapshot::default(),
            ops: super::ops_state::OpsState::new(Instant::now()),
            manager: ServiceManager::from_env(),
            clients: HashMap::new(),
            unflushed: None,
            write_coalesce: limits_cfg.write_interval,
            log_level_hook: None,
            refusals: Refusals::default(),
            admitted: Default::default(),
            connection_rate: None,
            fd_reserve: FdReserve::open(),
            accept_starved: false,
            api,
            client_log,
            upstream_slots: Vec::new(),
            config_state: crate::ops::ConfigState {
                running: startup.origin,
                errors: std::sync::Arc::new(config_errors),
            },
            last_good,
            deadlines: Default::default(),
            due_conns: Vec::new(),
        };
        d.udp.register(d.poll.registry(), udp_token)?;
        let now = Instant::now();
        let stations = d.config.stations.clone();
        for s in &stations {
            match d.start_station(s, now) {
                Ok(()) => {}
                Err(e) if d.last_good.is_some() => {
                    tracing::error!(station = %s.name, error = %e, "station failed to start")
                }
                Err(e) => return Err(e.into()),
            }
        }
        info!(stations = d.stations.len(), "asfcast running");
        Ok(d)
    }

    /// Binds the configured listeners. With a last-good directory, listeners that cannot
    /// bind are errors on the status page and the last-good copy's listeners run instead
    /// (`config.server.listen` then says what runs); the daemon stops only when nothing
    /// binds at all. Without one, any failure stops it.
    fn bind_listeners(
        poll: &Poll,
        config: &mut Config,
        activated: &mut Vec<systemd::ActivatedSocket>,
        last_good: Option<&std::path::Path>,
        paths: &[PathBuf],
        errors: &mut Vec<config::ConfigError>,
    ) -> Result<(Vec<Listener>, UdpSockets), DaemonError> {
        let backlog = config.server.limits.listen_backlog;
        let first = bind_set::bind(
            poll,
            &config.server.listen,
            backlog,
            LISTENER_BASE,
            activated,
        );
        if first.complete() {
            return Ok((first.listeners, first.udp.unwrap_or_default()));
        }
        let Some(dir) = last_good else {
            return Err(io::Error::other(first.errors.join("; ")).into());
        };
        for e in &first.errors {
            tracing::error!("{e}");
            errors.push(server_file_error(
                config,
                format!("{e}; the last good listeners run instead"),
            ));
        }
        let saved =
            super::last_good::saved_listen(dir, paths).filter(|l| *l != config.server.listen);
        if let Some(listen) = saved {
            // The first attempt's sockets are closed (and so leave the poll) before these bind.
            let first_count = first.listeners.len();
            drop(first);
            let second = bind_set::bind(poll, &listen, backlog, LISTENER_BASE, activated);
            if second.complete() || second.listeners.len() >= first_count.max(1) {
                warn!(
                    listeners = second.listeners.len(),
                    "running the last good configuration's listeners"
                );
                for e in &second.errors {
                    tracing::error!("last good listeners: {e}");
                }
                config.server.listen = listen;
                return Ok((second.listeners, second.udp.unwrap_or_default()));
            }
            drop(second);
            let again = bind_set::bind(
                poll,
                &config.server.listen,
                backlog,
                LISTENER_BASE,
                activated,
            );
            return Self::some_bound(again);
        }
        Self::some_bound(first)
    }

    /// The listeners that bound, or the error the daemon exits with when none did.
    fn some_bound(b: bind_set::Bound) -> Result<(Vec<Listener>, UdpSockets), DaemonError> {
        if b.listeners.is_empty() {
            return Err(bind_set::fatal(&b.errors).into());
        }
        warn!(
            listeners = b.listeners.len(),
            "running with the listeners that could be bound"
        );
        Ok((b.listeners, b.udp.unwrap_or_default()))
    }

    pub(super) fn start_station(
        &mut self,
        s: &config::StationConfig,
        now: Instant,
    ) -> io::Result<()> {
        let token = self.upstream_token(&s.name)?;
        let upstream = super::upstream::UpstreamSlot {
            registry: self.poll.registry(),
            token,
        };
        let rt = StationRuntime::start(&self.config.server, s, upstream, now)?;
        self.stations.insert(s.name.clone(), rt);
        self.due.insert(s.name.clone(), now);
        Ok(())
    }

    /// The poll token of a station's upstream sockets (a name keeps its token).
    fn upstream_token(&mut self, station: &str) -> io::Result<Token> {
        let slot = match self.upstream_slots.iter().position(|n| n == station) {
            Some(i) => i,
            None if UPSTREAM_BASE + self.upstream_slots.len() < CONN_BASE => {
                self.upstream_slots.push(station.to_string());
                self.upstream_slots.len() - 1
            }
            None => {
                return Err(io::Error::other(format!(
                    "station {station}: no poll token left for its upstream (more than {} station names since start)",
                    CONN_BASE - UPSTREAM_BASE
                )))
            }
        };
        Ok(Token(UPSTREAM_BASE + slot))
    }

    /// The operators' view of the daemon now (status page, metrics, control API).
    pub fn snapshot(&self, now: Instant) -> crate::ops::Snapshot {
        let mut s = super::stations::snapshot(
            &self.stations,
            &self.conns,
            now.saturating_duration_since(self.started),
            now,
        );
        s.ops = self
            .ops
            .figures(self.stations.values(), self.config.server.web);
        s.ops.config = self.config_state.clone();
        s
    }

    /// "3 stations, 12 clients": the systemd status line.
    pub(super) fn status_line(&self) -> String {
        let clients: usize = self.clients.values().map(Vec::len).sum();
        format!("{} stations, {clients} clients", self.stations.len())
    }

    /// Runs until SIGTERM or SIGINT.
    pub fn run(mut self) -> Result<(), DaemonError> {
        let mut events = Events::with_capacity(1024);
        let status = self.status_line();
        self.manager.ready(&status);
        let mut next_status = Instant::now() + HOUSEKEEPING;
        self.ops_snapshot = self.snapshot(Instant::now());
        loop {
            let now = Instant::now();
            self.service_stations(now);
            self.service_deadlines(now);
            self.send_datagrams();
            self.manager.ping_if_due(now);
            if now >= next_status {
                self.refusals.flush(now, false);
                self.udp_routes.flush(now, false);
                self.retry_starved_listeners(now);
                self.rearm_all();
                if let Some(log) = self.client_log.as_mut() {
                    log.tick(now, super::client_log::unix_now());
                }
                self.ops_snapshot = self.snapshot(now);
                self.ops.sample(&mut self.ops_snapshot);
                let status = self.status_line();
                self.manager.status(&status);
                next_status = now + HOUSEKEEPING;
            }
            let next = self.next_deadline(now);
            self.timer.arm(next, Instant::now())?;
            self.ops.before_wait(Instant::now());
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            self.ops.woke(Instant::now(), next);
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
                                SignalRequest::Reload => {
                                    self.reload();
                                }
                            }
                        }
                    }
                    UDP_MMS_DATA => self.on_udp_readable(UdpChannel::MmsData, Instant::now()),
                    UDP_RTP => self.on_udp_readable(UdpChannel::Rtp, Instant::now()),
                    UDP_RTCP => self.on_udp_readable(UdpChannel::Rtcp, Instant::now()),
                    Token(t) if (LISTENER_BASE..UPSTREAM_BASE).contains(&t) => {
                        self.accept(t - LISTENER_BASE, Instant::now())
                    }
                    Token(t) if (UPSTREAM_BASE..CONN_BASE).contains(&t) => {
                        // A station's upstream socket is ready: its source reads now.
                        if let Some(name) = self.upstream_slots.get(t - UPSTREAM_BASE) {
                            if let Some(due) = self.due.get_mut(name) {
                                *due = Instant::now();
                            }
                        }
                    }
                    Token(t) if t >= CONN_BASE => self.on_conn_event(
                        t - CONN_BASE,
                        (ev.is_readable(), ev.is_read_closed()),
                        Instant::now(),
                    ),
                    _ => {}
                }
            }
            self.send_datagrams();
        }
    }

    /// Sends the UDP datagrams every session queued this loop turn, batched.
    fn send_datagrams(&mut self) {
        if !self.datagrams.is_empty() {
            self.udp.send_all(&mut self.datagrams);
        }
    }

    /// Reads what clients sent to a UDP data socket (up to [`UDP_READ_BUDGET`] datagrams) and
    /// hands each to the session that owns its source address; others are counted and dropped.
    fn on_udp_readable(&mut self, via: UdpChannel, now: Instant) {
        for _ in 0..UDP_READ_BUDGET {
            let (len, from) = match self.udp.recv_from(via, &mut self.read_buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A pending socket error (an ICMP report) is consumed by the read.
                    debug!(socket = ?via, error = %e, "udp data socket read error");
                    continue;
                }
            };
            let Some(idx) = self.udp_routes.route(from) else {
                self.udp_routes.note_unknown(from, via, now);
                continue;
            };
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                self.udp_routes.note_unknown(from, via, now);
                continue;
            };
            let bytes = self.read_buf.get(..len).unwrap_or_default();
            let step = c.session.on_datagram(via, from, bytes, now);
            c.apply(step);
            self.after_io(idx);
        }
        if let Err(e) = self.udp.rearm(self.poll.registry(), via, udp_token(via)) {
            warn!(socket = ?via, error = %e, "cannot re-arm a udp data socket");
        }
    }

    fn next_deadline(&mut self, now: Instant) -> Instant {
        let mut next = now + HOUSEKEEPING;
        if let Some(w) = self.manager.watchdog_due() {
            next = next.min(w);
        }
        if let Some(t) = self.unflushed {
            next = next.min(t + self.write_coalesce);
        }
        if let Some(d) = self.due.values().min() {
            next = next.min(*d);
        }
        if let Some(d) = self.deadlines.earliest() {
            next = next.min(d);
        }
        next
    }

    /// Records a connection's next deadline after the loop talked to its session: the slot
    /// fires no later than it ([`super::deadlines::Deadlines::lower`]; a deadline that moved
    /// later is found out when the earlier entry fires).
    pub(super) fn rearm(&mut self, idx: usize) {
        let d = conn_deadline(&self.conns, idx);
        self.deadlines.lower(idx, d);
    }

    /// Re-reads every connection's deadline (the housekeeping tick's safety net: a session
    /// whose deadline moved without the loop noticing is still served within a second).
    fn rearm_all(&mut self) {
        for i in 0..self.conns.len() {
            self.rearm(i);
        }
    }

    fn service_stations(&mut self, now: Instant) {
        // Datagrams due now leave first, for every station, before any station reads or frames
        // (framing is done ahead, `station_runtime::FRAME_LEAD`), and again whenever the
        // stations' work has taken [`SEND_PASS_EVERY`]: stations due together then leave
        // within the sends' own time, not after every other station's reading and framing.
        let mut stations = std::mem::take(&mut self.stations);
        let mut rts: Vec<(&String, &mut StationRuntime)> = stations.iter_mut().collect();
        for (_, rt) in rts.iter_mut() {
            rt.send_ready(now);
        }
        let mut last_pass = now;
        let mut events = std::mem::take(&mut self.events_buf);
        for i in 0..rts.len() {
            let Some((name, rt)) = rts.get_mut(i) else {
                continue;
            };
            let name: &String = name;
            let due = self.due.get(name).copied().unwrap_or(now);
            let serviced = due <= now || rt.has_input();
            if serviced {
                let next = rt.service(now);
                match self.due.get_mut(name) {
                    Some(d) => *d = next,
                    None => {
                        self.due.insert(name.clone(), next);
                    }
                }
            }
            rt.take_events(&mut events);
            if !events.is_empty() {
                if let Some(subscribers) = self.clients.get(name) {
                    fan_out(&mut self.conns, subscribers, &events, now);
                    for &i in subscribers {
                        self.deadlines.lower(i, conn_deadline(&self.conns, i));
                    }
                }
                events.clear();
                self.unflushed.get_or_insert(now);
            }
            if serviced {
                let t = Instant::now();
                if t >= last_pass + SEND_PASS_EVERY {
                    for (_, rt) in rts.iter_mut() {
                        rt.send_ready(t);
                    }
                    last_pass = t;
                }
            }
        }
        drop(rts);
        self.stations = stations;
        self.events_buf = events;
        // Station packets are written in batches: one writev per client carries every packet
        // of the last `limits.write_interval`, instead of one system call per packet per client.
        if self
            .unflushed
            .is_some_and(|t| now >= t + self.write_coalesce)
        {
            self.flush_all();
            self.unflushed = None;
        }
    }

    fn service_deadlines(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due_conns);
        // Taken before any is serviced: a session whose next deadline is again due fires next
        // turn, not in a loop here.
        self.deadlines.take_due(now, &mut due);
        for &i in &due {
            let Some(c) = self.conns.get_mut(i).and_then(|c| c.as_mut()) else {
                continue;
            };
            if c.linger_deadline().is_some_and(|d| d <= now) {
                c.force_close("client did not read its last bytes");
                self.close(i);
                continue;
            }
            if c.session.deadline().is_some_and(|d| d <= now) {
                let step = c.session.on_timeout(now);
                c.apply(step);
                self.after_io(i);
            } else {
                // Woken early (the deadline moved later since it was armed): arm the real one.
                let d = conn_deadline(&self.conns, i);
                self.deadlines.set(i, d);
            }
        }
        due.clear();
        self.due_conns = due;
    }

    /// `readable`: the event's (readable, read-closed) flags.
    fn on_conn_event(&mut self, idx: usize, (readable, read_closed): (bool, bool), now: Instant) {
        let view = StationsView(
            &self.stations,
            &self.clients,
            &self.ops_snapshot,
            &self.config.server.access,
            &self.admitted,
            &self.config.server.limits.access,
        );
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if readable {
            c.on_readable(now, &view, &mut self.read_buf, read_closed);
        }
        let select = c.session.take_select_stream();
        self.serve_api(idx, now);
        self.after_io(idx);
        if let Some(request) = select {
            self.route_select_stream(&request, now);
        }
    }

    /// Hands an MMSH SelectStream to the connection whose stream it names (by `client-id`);
    /// one naming no playing stream is logged and ignored.
    fn route_select_stream(&mut self, request: &crate::station::sink::SelectStream, now: Instant) {
        for i in 0..self.conns.len() {
            let Some(c) = self.conns.get_mut(i).and_then(|c| c.as_mut()) else {
                continue;
            };
            if c.session.select_stream(request, now) {
                self.after_io(i);
                return;
            }
        }
        info!(
            client_id = request.client_id,
            "SelectStream for an unknown client-id ignored"
        );
    }

    /// Writes what a connection has queued (stream bytes and datagrams), updates its
    /// interest, and closes it when done.
    pub(super) fn after_io(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        let station = c.session.station();
        if station != c.counted_station.as_deref() {
            let station = station.map(str::to_string);
            if let Some(old) = c.counted_station.take() {
                unsubscribe(&mut self.clients, &old, idx);
            }
            if let Some(new) = &station {
                self.clients.entry(new.clone()).or_default().push(idx);
                self.ops.joined(new, c.session.protocol());
            }
            c.counted_station = station;
        }
        self.admitted
            .update(idx, c.session.station(), c.session.admitted());
        // Sent in one batch per loop turn (`send_datagrams`).
        c.session.take_datagrams(&mut self.datagrams);
        if c.session.udp_peers() != c.udp_peers.as_slice() {
            let peers = c.session.udp_peers().to_vec();
            self.udp_routes.update(idx, &c.udp_peers, &peers);
            c.udp_peers = peers;
        }
        let ok = c.flush();
        if !ok {
            c.force_close("write failed");
        }
        if c.finished() || !ok {
            self.close(idx);
            return;
        }
        if let Err(e) = c.update_interest(self.poll.registry(), Token(CONN_BASE + idx)) {
            c.force_close(&format!("poll: {e}"));
            self.close(idx);
            return;
        }
        self.rearm(idx);
    }

    fn flush_all(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].is_some() {
                self.after_io(i);
            }
        }
    }

    pub(super) fn close(&mut self, idx: usize) {
        self.abandon_upload(idx);
        if let Some(mut c) = self.conns.get_mut(idx).and_then(|c| c.take()) {
            log_close(&c);
            self.ops.closed(&c.session.info(), c.close_reason());
            let clients = self.clients.values().map(Vec::len).sum();
            let unix = super::client_log::unix_now();
            let now = Instant::now();
            let ended = super::client_log::session_record(&mut c, clients, now, unix);
            if let (Some(log), Some(e)) = (self.client_log.as_mut(), ended) {
                log.ended(e, now, unix);
            }
            self.udp_routes.update(idx, &c.udp_peers, &[]);
            self.admitted.remove(idx);
            if let Some(station) = c.counted_station.take() {
                unsubscribe(&mut self.clients, &station, idx);
            }
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.peers.remove(c.peer);
            self.deadlines.set(idx, None);
            self.free.push(idx);
        }
    }

    fn stop(&mut self) {
        self.manager.stopping();
        let now = Instant::now();
        self.refusals.flush(now, true);
        self.udp_routes.flush(now, true);
        for rt in self.stations.values_mut() {
            rt.stop(now);
        }
        for i in 0..self.conns.len() {
            if let Some(c) = self.conns[i].as_mut() {
                let step = c.session.on_station_end(now);
                c.apply(step);
                // One last non-blocking write of the end-of-stream; then close regardless.
                let _ = c.flush();
            }
            self.close(i);
        }
        if let Some(log) = self.client_log.as_mut() {
            log.drain(super::client_log::unix_now());
        }
    }
}

/// The poll token of a UDP data socket.
fn udp_token(via: UdpChannel) -> Token {
    match via {
        UdpChannel::MmsData => UDP_MMS_DATA,
        UdpChannel::Rtp => UDP_RTP,
        UdpChannel::Rtcp => UDP_RTCP,
    }
}

/// A connection slot's next deadline (None for a free slot).
fn conn_deadline(conns: &[Option<Connection>], idx: usize) -> Option<Instant> {
    conns
        .get(idx)
        .and_then(|c| c.as_ref())
        .and_then(Connection::deadline)
}

fn unsubscribe(subscribers: &mut HashMap<String, Vec<usize>>, station: &str, idx: usize) {
    if let Some(list) = subscribers.get_mut(station) {
        list.retain(|&i| i != idx);
        if list.is_empty() {
            subscribers.remove(station);
        }
    }
}

/// Hands a station's new header and packets to the sessions that play it.
fn fan_out(
    conns: &mut [Option<Connection>],
    subscribers: &[usize],
    events: &[HubEvent],
    now: Instant,
) {
    for &i in subscribers {
        let Some(c) = conns.get_mut(i).and_then(|c| c.as_mut()) else {
            continue;
        };
        for ev in events {
            let step = match ev {
                HubEvent::Header(h) => c.session.on_header(h, now),
                HubEvent::Packet(p) => c.session.on_packet(p, now),
            };
            if !c.apply(step) {
                break;
            }
        }
    }
}

/// Sessions need this to be object-safe; checked at compile time.
#[allow(dead_code)]
fn _assert_object_safe(_: &dyn Session) {}

/// An error about the server file (the status page shows it with the config's errors).
pub(super) fn server_file_error(config: &Config, message: String) -> config::ConfigError {
    let file = config
        .server
        .file
        .as_deref()
        .unwrap_or_else(|| std::path::Path::new("server.yaml"));
    config::ConfigError::file(file, message)
}
