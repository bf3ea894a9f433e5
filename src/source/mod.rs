//! Station sources: the implementations of the [`crate::station::source::Source`] contract.
//! A playlist of ASF files ([`playlist`]), paced by the packets' send times and a rate floor
//! from the header's bit rate ([`pacer`]), its bad packets counted and logged at a bounded
//! rate ([`bad_packets`]); the live sources: a pushed feed ([`live`]: whatever the shell hands
//! the station's [`crate::station::live::LiveInput`]) and the network-fed cores whose sockets
//! the shell owns, [`pull`] (a WMSP server upstream, through [`crate::pull`]) and [`mcast`]
//! (another station's MSB multicast); each plays behind the switch to a slate while it is
//! absent ([`fallback`]). Their events go to the station runtime in the shell, which feeds the
//! hub.

pub mod bad_packets;
pub mod fallback;
pub mod live;
pub mod mcast;
pub mod pacer;
pub mod playlist;
pub mod pull;

pub use pacer::Pacer;
pub use playlist::PlaylistSource;
