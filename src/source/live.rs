//! The live source: a station's [`LiveInput`] as a [`Source`].
//!
//! Whatever feeds the input (an encoder's push today, a pull or a multicast relay tomorrow)
//! hands in a header, packets and the end of the feed; this source passes them on as they
//! come — live media arrives paced by its encoder, so nothing is held back — with the
//! packets' own send times. Putting them on the station's timeline, and playing something
//! else while the feed is absent, is the job of the [`super::fallback::Fallback`] switch that
//! every live station wraps around it ([`station_source`]).
//!
//! The input's parked claims (an encoder that may resume) run out here: the source is polled
//! every loop turn the input has something, and at least every [`POLL_IDLE`].

use std::time::{Duration, Instant};

use tracing::info;

use crate::asf::Packet;
use crate::config::live::LiveSettings;
use crate::station::live::{LiveEvent, LiveInput};
use crate::station::source::{Source, SourceCounters, SourceEvent, SourcePacket, SourceState};

/// How long the source sleeps when the input is empty (the shell wakes the station as soon as
/// the input has something; this is only for the parked-claim deadline and the stall check).
pub const POLL_IDLE: Duration = Duration::from_secs(1);

pub struct LiveSource {
    input: LiveInput,
    state: SourceState,
    counters: SourceCounters,
    /// Send time of the last packet, for a packet that does not parse.
    last_send: u32,
}

impl LiveSource {
    pub fn new(input: LiveInput) -> Self {
        LiveSource {
            input,
            state: SourceState::Starting,
            counters: SourceCounters::default(),
            last_send: 0,
        }
    }
}

impl Source for LiveSource {
    fn poll(&mut self, now: Instant) -> SourceEvent {
        let parked = self.input.expire(now);
        match self.input.pop() {
            Some(LiveEvent::Header {
                header,
                data,
                origin,
            }) => {
                self.counters.started += 1;
                self.state = SourceState::Playing {
                    origin: origin.clone(),
                };
                SourceEvent::Header {
                    header,
                    data,
                    origin,
                }
            }
            Some(LiveEvent::Packet(bytes)) => {
                let send_time = Packet::parse(&bytes).map_or(self.last_send, |p| p.send_time);
                self.last_send = send_time;
                SourceEvent::Packet(SourcePacket { bytes, send_time })
            }
            Some(LiveEvent::Gone { reason }) => {
                info!(station = %self.input.station(), %reason, "live feed ended");
                self.state = SourceState::Lost {
                    reason: reason.clone(),
                };
                SourceEvent::Lost {
                    reason,
                    retry_at: now + POLL_IDLE,
                }
            }
            None => {
                let at = now + POLL_IDLE;
                SourceEvent::Idle(parked.map_or(at, |p| p.min(at)))
            }
        }
    }

    fn state(&self) -> SourceState {
        self.state.clone()
    }

    fn counters(&self) -> SourceCounters {
        self.counters
    }
}

/// The source of a live station: `input` behind the fallback switch its settings describe.
pub fn station_source(station: &str, input: LiveInput, settings: &LiveSettings) -> Box<dyn Source> {
    Box::new(super::fallback::Fallback::new(
        station,
        Box::new(LiveSource::new(input)),
        settings,
    ))
}
