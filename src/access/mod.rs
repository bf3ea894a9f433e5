//! Who may watch: the rules that decide whether a client is admitted, kept pure (no sockets,
//! no clock) so each can be tested as a table. The shell and the sessions ask; these modules
//! answer.
//!
//! - [`limits`]: the server's and each station's limits (players, distribution connections,
//!   aggregate and per-player bandwidth, connection rate, fast-start bandwidth);
//! - [`amplification`]: RTP over UDP goes to a client's port in earnest only once the client
//!   has sent something from it.

pub mod amplification;
pub mod limits;
