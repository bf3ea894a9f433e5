//! Station sources: where a station's header and packets come from. Today: a playlist of ASF
//! files ([`playlist`]); live push and relay sources plug in as further kinds yielding the same
//! [`SourceEvent`]s.

pub mod pacer;
pub mod playlist;

pub use pacer::Pacer;
pub use playlist::{PlaylistSource, SourceEvent};
