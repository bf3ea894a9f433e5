//! The MSB multicast delivery of a station, on the [`Sink`] contract: station headers and
//! packets in, MSB datagrams out ([MS-MSB] §3.1.5), with the timers a sender needs:
//!
//! - a **beacon** (`"MSB "`, §2.2.3) whenever the group has been silent for the beacon
//!   interval (source stalled, playlist retrying), so receivers know the station is alive;
//! - the open **FEC span** is closed with its parity (§3.1.5.3) when no packet has come for
//!   [`FLUSH_AFTER_IDLE`], so the last packets before a stall are protected without waiting
//!   for the stream to resume, and when the station stops.
//!
//! Pure: `now` comes from the caller; the shell sends what [`MsbSink::take_datagrams`] hands
//! over on the station's multicast socket and gives the buffers back with
//! [`MsbSink::recycle`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{beacon, MsbError, MsbSender, MsbSenderConfig};
use crate::station::sink::{Sink, Step};
use crate::station::{StationHeader, StationPacket};

/// A source stall longer than this closes the open FEC span.
pub const FLUSH_AFTER_IDLE: Duration = Duration::from_millis(500);

/// One station's MSB sender with its beacon and span timers.
#[derive(Debug)]
pub struct MsbSink {
    station: String,
    sender: MsbSender,
    beacon_interval: Duration,
    /// Last time anything (data or beacon) was handed out for the group.
    last_sent: Instant,
    /// When the last data packet came, while a span is open.
    span_open_since: Option<Instant>,
    out: Vec<Vec<u8>>,
    beacons_sent: u64,
}

/// Datagrams an [`MsbSink`] handed out, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsbCounters {
    pub data: u64,
    pub parity: u64,
    pub beacons: u64,
}

impl MsbSink {
    /// A sink that sends its first beacon at once (the group has been silent "forever").
    pub fn new(
        station: &str,
        fec_span: u8,
        beacon_interval: Duration,
        now: Instant,
    ) -> Result<Self, MsbError> {
        let sender = MsbSender::new(MsbSenderConfig {
            fec_span,
            first_packet_id: 0,
        })?;
        Ok(MsbSink {
            station: station.to_string(),
            sender,
            beacon_interval,
            last_sent: now.checked_sub(beacon_interval).unwrap_or(now),
            span_open_since: None,
            out: Vec::new(),
            beacons_sent: 0,
        })
    }

    /// Datagrams handed out so far, by kind.
    pub fn counters(&self) -> MsbCounters {
        MsbCounters {
            data: self.sender.data_sent,
            parity: self.sender.parity_sent,
            beacons: self.beacons_sent,
        }
    }

    /// Datagrams ready to send, in order.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Moves the datagrams ready to send into `into`.
    pub fn take_datagrams(&mut self, into: &mut Vec<Vec<u8>>) {
        into.append(&mut self.out);
    }

    /// Gives a sent datagram's buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.sender.recycle(buf);
    }

    fn close_span(&mut self, now: Instant) {
        if self.span_open_since.take().is_some() {
            let before = self.out.len();
            self.sender.flush(&mut self.out);
            if self.out.len() > before {
                self.last_sent = now;
            }
        }
    }
}

impl Sink for MsbSink {
    fn on_header(&mut self, header: &Arc<StationHeader>, now: Instant) -> Step {
        if let Err(e) = self.sender.set_format(header.format_id, &mut self.out) {
            warn!(station = %self.station, error = %e, "MSB format change failed");
        }
        // set_format closes the open span itself.
        self.span_open_since = None;
        self.last_sent = now;
        Step::Continue
    }

    fn on_packet(&mut self, packet: &Arc<StationPacket>, now: Instant) -> Step {
        match self.sender.push(&packet.bytes, &mut self.out) {
            Ok(()) => {
                self.span_open_since = Some(now);
                self.last_sent = now;
            }
            Err(e) => debug!(station = %self.station, error = %e, "MSB push failed"),
        }
        Step::Continue
    }

    fn on_timeout(&mut self, now: Instant) -> Step {
        if self
            .span_open_since
            .is_some_and(|t| now >= t + FLUSH_AFTER_IDLE)
        {
            self.close_span(now);
        }
        if now >= self.last_sent + self.beacon_interval {
            self.out.push(beacon().to_vec());
            self.beacons_sent += 1;
            self.last_sent = now;
        }
        Step::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        let beacon = self.last_sent + self.beacon_interval;
        Some(match self.span_open_since {
            Some(t) => beacon.min(t + FLUSH_AFTER_IDLE),
            None => beacon,
        })
    }

    fn on_station_end(&mut self, now: Instant) -> Step {
        self.close_span(now);
        Step::close("station stopped")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msb::{classify, Datagram};

    fn header(format_id: u16) -> Arc<StationHeader> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media/demo.asf");
        let r = crate::asf::AsfReader::open(&path).unwrap();
        Arc::new(StationHeader::live(1, r.header(), r.data_head(), format_id))
    }

    fn demo_packets(n: usize) -> Vec<Arc<StationPacket>> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media/demo.asf");
        let mut r = crate::asf::AsfReader::open(&path).unwrap();
        let mut v = Vec::new();
        while let Some(Ok(p)) = r.next_packet() {
            let s = crate::asf::rewrite::strip_padding(&p.parse().unwrap());
            v.push(Arc::new(StationPacket::new(
                v.len() as u64,
                1,
                p.send_time,
                false,
                s.into(),
            )));
            if v.len() == n {
                break;
            }
        }
        v
    }

    fn kinds(d: &[Vec<u8>]) -> Vec<&'static str> {
        d.iter()
            .map(|b| match classify(b) {
                Ok(Datagram::Beacon) => "beacon",
                Ok(Datagram::Packet { .. }) => "packet",
                Err(_) => "bad",
            })
            .collect()
    }

    #[test]
    fn beacons_while_silent_data_otherwise() {
        let t0 = Instant::now();
        let mut s = MsbSink::new("t", 4, Duration::from_secs(2), t0).unwrap();
        assert_eq!(s.deadline(), Some(t0), "first beacon at once");
        s.on_timeout(t0);
        let mut out = Vec::new();
        s.take_datagrams(&mut out);
        assert_eq!(kinds(&out), ["beacon"]);
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(2)));
        // Data flowing: no beacon.
        s.on_header(&header(1), t0 + Duration::from_millis(100));
        for p in demo_packets(3) {
            s.on_packet(&p, t0 + Duration::from_millis(200));
        }
        s.take_datagrams(&mut out);
        assert!(
            !out[1..].iter().any(|d| d.len() == 4),
            "no beacon among data"
        );
        // The source stalls: the span is closed with its parity after FLUSH_AFTER_IDLE...
        let n = out.len();
        let flush_at = t0 + Duration::from_millis(200) + FLUSH_AFTER_IDLE;
        assert_eq!(s.deadline(), Some(flush_at));
        s.on_timeout(flush_at);
        s.take_datagrams(&mut out);
        assert_eq!(out.len(), n + 1, "one parity packet for the short span");
        // ...then a beacon once the group was silent for the interval.
        let quiet = flush_at + Duration::from_secs(2);
        assert_eq!(s.deadline(), Some(quiet));
        s.on_timeout(quiet);
        s.take_datagrams(&mut out);
        assert_eq!(kinds(&out[n + 1..]), ["beacon"]);
    }

    #[test]
    fn station_end_closes_the_span() {
        let t0 = Instant::now();
        let mut s = MsbSink::new("t", 10, Duration::from_secs(2), t0).unwrap();
        s.on_header(&header(1), t0);
        for p in demo_packets(2) {
            s.on_packet(&p, t0);
        }
        let mut out = Vec::new();
        s.take_datagrams(&mut out);
        let n = out.len();
        assert!(matches!(s.on_station_end(t0), Step::Close { .. }));
        s.take_datagrams(&mut out);
        assert_eq!(out.len(), n + 1, "parity of the open span");
    }
}
