//! asfcast: a broadcast station appliance for Windows Media (ASF) streams.
//!
//! Layout (docs/architecture.md has the data path from source to every sink):
//! - [`station`]: the hub of a station (current header, join ring, counters) and the pure
//!   contracts beside it: [`station::source`] (what a source yields), [`station::sink`] (what
//!   every delivery implements: the MSB sender and each unicast session), and
//!   [`station::delivery`] (the per-client rules every unicast protocol shares);
//! - protocol cores without I/O, each readable in its own folder: [`asf`] (headers, packets,
//!   rewriting), [`source`] (file playlist, pacing, the pull and multicast relay sources),
//!   [`pull`] (the WMSP client), [`msb`] (MS-MSB framing, FEC, beacons; a sink), [`nsc`]
//!   (.nsc/.asx), [`mms`], [`http`] (announcements and MMSH), [`rtsp`]; no protocol imports
//!   another;
//! - [`access`]: who may watch and publish (IP rules), pure;
//! - [`config`]: the YAML model, validation and reload diff;
//! - [`ops`]: what operators see (a snapshot of stations and clients, rendered by the status
//!   page, metrics, control API and client logs);
//! - [`net`]: the shell, the only place with sockets and clocks: the mio loop, listeners,
//!   connections, UDP and multicast sockets, timers, signals, systemd;
//! - command-line tools with a small shell of their own: [`probe`], [`recv`], [`ctl`] (the
//!   control API's client), [`passwd`] (the users file of protected stations);
//! - [`access`]: who may watch: Digest and Basic authentication, pure.

/// The version `asfcast --version` prints and `GET /v1/version` answers: the crate's, or
/// `ASFCAST_VERSION` when set at build time (the image build stamps its builds with it).
pub const VERSION: &str = env!("ASFCAST_BUILD_VERSION");

pub mod access;
pub mod asf;
pub mod config;
pub mod ctl;
pub mod fsutil;
pub mod http;
pub mod mms;
pub mod msb;
pub mod net;
pub mod netconfig;
pub mod nsc;
pub mod ops;
pub mod passwd;
pub mod probe;
pub mod pull;
pub mod recv;
pub mod rtsp;
pub mod source;
pub mod station;

#[cfg(test)]
mod golden_tests;
