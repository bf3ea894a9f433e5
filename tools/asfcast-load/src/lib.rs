//! The client cores behind the load tools, as a library so that more than one binary can drive
//! them: `asfcast-load` (N clients of one protocol, delivery rate and server cost) and
//! `asfcast-soak` (a mixed, churning population for hours, with faults and reloads).
//!
//! Every core is sans-I/O: bytes (and `now` where time matters) in, bytes to send out, counters
//! read by the report. The binaries own the sockets and the clock.
//! - [`mmsh`]: MMS over HTTP; [`plain`]: a plain HTTP ASF stream; [`mmst`]: MMS over TCP;
//!   [`rtsp`]: RTSP with the Windows Media extensions (TCP interleaved or UDP);
//! - [`core`]: what they share (the [`core::Fault`] kinds and the framing remainder);
//! - [`keyframe`]: when a client has its first video key frame (the startup figure);
//! - [`procfs`]: the server's cost and the tool's fd budget from `/proc`.

pub mod core;
pub mod keyframe;
pub mod mmsh;
pub mod mmst;
pub mod plain;
pub mod procfs;
pub mod rtsp;
