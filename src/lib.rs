//! asfcast: a broadcast station appliance for Windows Media (ASF) streams.
//!
//! The crate is layered as `../shared/docs/DESIGN.md` describes:
//! - protocol cores without I/O: [`asf`] (header and packet parsing and rewriting),
//!   [`msb`] (MS-MSB packetizing and XOR parity), [`nsc`] (.nsc/.asx announcements),
//!   [`config`] (the YAML station model);
//! - the shell that owns sockets and clocks (added with the event loop).

pub mod asf;
pub mod config;
pub mod http;
pub mod mms;
pub mod msb;
pub mod net;
pub mod nsc;
pub mod probe;
pub mod recv;
pub mod rtsp;
pub mod source;
pub mod station;

#[cfg(test)]
mod golden_tests;
