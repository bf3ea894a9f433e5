//! Station sources: the implementations of the [`crate::station::source::Source`] contract.
//! Today a playlist of ASF files ([`playlist`]), paced by the packets' send times
//! ([`pacer`]). Their events go to the station runtime in the shell, which feeds the hub.

pub mod pacer;
pub mod playlist;

pub use pacer::Pacer;
pub use playlist::PlaylistSource;
