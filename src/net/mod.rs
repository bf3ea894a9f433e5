//! The shell: the only place with sockets and clocks. One thread, one mio `Poll`
//! ([`daemon::Daemon`]) owns every socket — the TCP listeners (bound here or passed by systemd
//! socket activation), the accepted connections and their write queues
//! ([`connections`]), the unicast UDP data sockets ([`udp_sockets`], sent in batches by
//! [`udp_batch`], read and routed to sessions by client address through [`udp_routes`]) and each station's multicast socket ([`multicast`]) — plus a timerfd
//! ([`timer::PacingTimer`]) armed for the earliest deadline of anything (the connections'
//! deadlines kept in a heap, [`deadlines`], so a turn does not scan every connection), and a signalfd
//! ([`signals::Signals`]) for SIGTERM/SIGINT (stop) and SIGHUP ([`reload`]), and the
//! systemd side ([`systemd`]: readiness, status, watchdog, sockets passed by socket activation).
//!
//! Against floods: listeners get a long accept queue ([`listen`]); [`accept`] refuses past the
//! limits and counts refusals for an aggregate log line ([`refusals`]), and spends a spare
//! descriptor ([`fd_reserve`]) to keep the queue moving when the process is out of them; a
//! connection is not read while its output queue is over its limit ([`connections`]).
//!
//! Where the data goes: a station's [`crate::station::source::Source`] is polled by its
//! [`station_runtime::StationRuntime`] when due; packets go into the station hub
//! ([`crate::station::Station`]), then to every sink of the station through the
//! [`crate::station::sink`] contract: the MSB sender ([`crate::msb::MsbSink`]) whose datagrams
//! this shell sends to the group, and each unicast session (MMS, MMSH, RTSP) whose output this
//! shell writes to its connection. The cores never see a socket or read the clock: the shell
//! passes `now` to every call.

pub mod accept;
pub mod admitted;
pub mod announce;
pub mod api;
pub mod api_files;
pub mod bind_set;
pub mod client_log;
pub mod connections;
pub mod daemon;
pub mod deadlines;
pub mod fd_reserve;
pub mod last_good;
pub mod listen;
pub mod mcast_source;
pub mod multicast;
pub mod ops_state;
pub mod refusals;
pub mod reload;
pub mod rlimit;
pub mod sessions;
pub mod signals;
pub mod station_runtime;
pub mod stations;
pub mod systemd;
pub mod timer;
pub mod txtime;
pub mod udp_batch;
pub mod udp_routes;
pub mod udp_sockets;
pub mod upstream;

pub use daemon::{Daemon, DaemonError, LogLevelHook};
