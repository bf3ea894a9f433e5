//! Station sources: the implementations of the [`crate::station::source::Source`] contract.
//! A playlist of ASF files ([`playlist`]), paced by the packets' send times and a rate
//! floor from the header's bit rate ([`pacer`]), its bad packets counted and logged at a
//! bounded rate ([`bad_packets`]); a live feed ([`live`]: whatever the shell hands the
//! station's [`crate::station::live::LiveInput`]) behind the switch to a slate while it is
//! absent ([`fallback`]). Their events go to the station runtime in the shell, which feeds the
//! hub.

pub mod bad_packets;
pub mod fallback;
pub mod live;
pub mod pacer;
pub mod playlist;

pub use pacer::Pacer;
pub use playlist::PlaylistSource;
