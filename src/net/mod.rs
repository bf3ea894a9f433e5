//! The shell: the only place with sockets, clocks and signals. One mio `Poll` owns every
//! socket, a [`timer::PacingTimer`] (timerfd) wakes the loop at the next packet's send time with
//! sub-millisecond resolution, and a [`signals::Signals`] (signalfd) turns SIGTERM/SIGINT/SIGHUP
//! into events. The protocol cores never see any of it.

pub mod multicast;
pub mod session;
pub mod signals;
pub mod timer;
pub mod udp_batch;
