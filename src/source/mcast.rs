//! The multicast relay source: a station fed by another station's MSB multicast, as its
//! `.nsc` describes it ([MS-MSB] §3.2; WMS's "rebroadcast a multicast stream to a network
//! segment that is not multicast-enabled", ingest-relay-ops.md §b). The station serves it by
//! unicast and, with its own `multicast:` section, sends it again on another group or
//! interface.
//!
//! - Datagrams go through the [`MsbReceiver`]: order restored, one lost packet per FEC span
//!   rebuilt from parity, the rest reported as lost.
//! - Each data packet's Format ID names its header among the `.nsc`'s Formats: the first
//!   packet, and every packet whose Format ID differs from the last one's, starts with that
//!   header ([`SourceEvent::Header`]; the same bytes keep the players, see
//!   [`crate::station::delivery::compare_headers`]).
//! - A Format ID the `.nsc` does not announce cannot be played ([MS-MSB] §3.2.5.2: receivers
//!   ignore it): its packets are dropped, one log line names the station, the Format ID and
//!   the sender, and the `.nsc` is fetched again (at most every [`NSC_REFRESH`]: the upstream
//!   rewrites it when its header changes).
//! - No data packet for `timeout` (beacons alone mean the sender is up but silent): one
//!   [`SourceEvent::Lost`]; the next data packet brings the header again.
//!
//! Pure: the shell (`crate::net::mcast_source`) reads the `.nsc` and the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::asf::retime::Retimer;
use crate::asf::Packet;
use crate::msb::{MsbReceiver, Received};
use crate::nsc::{self, Format, StationFile};
use crate::station::source::{SourceCounters, SourceEvent, SourcePacket, SourceState};

use super::bad_packets::BadPacketLog;
use super::pull::split_header;

/// Shortest time between two fetches of the `.nsc` for unknown Format IDs.
pub const NSC_REFRESH: Duration = Duration::from_secs(10);
/// Unknown Format IDs remembered (each logged once).
const MAX_UNKNOWN: usize = 64;
/// Events held at most; the shell stops reading above it.
pub const MAX_QUEUED: usize = 512;

/// Why a `.nsc` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McastError {
    #[error("bad .nsc: {0}")]
    Nsc(String),
    #[error(".nsc group address {0:?} is not a multicast address")]
    Group(String),
    #[error(".nsc announces no Format")]
    NoFormats,
}

/// The group and Formats a `.nsc` announces.
#[derive(Debug, Clone)]
pub struct Announced {
    pub group: SocketAddr,
    pub formats: Vec<Format>,
}

/// Reads a `.nsc` text.
pub fn read_nsc(text: &str) -> Result<Announced, McastError> {
    let parsed = nsc::parse(text).map_err(|e| McastError::Nsc(e.to_string()))?;
    let file: StationFile = parsed
        .to_station_file()
        .map_err(|e| McastError::Nsc(e.to_string()))?;
    let ip = file
        .ip_address
        .parse::<std::net::IpAddr>()
        .ok()
        .filter(|ip| ip.is_multicast())
        .ok_or_else(|| McastError::Group(file.ip_address.clone()))?;
    if file.formats.is_empty() {
        return Err(McastError::NoFormats);
    }
    Ok(Announced {
        group: SocketAddr::new(ip, file.ip_port),
        formats: file.formats,
    })
}

/// The multicast source's pure core.
#[derive(Debug)]
pub struct McastSource {
    station: String,
    /// Where the `.nsc` comes from, for logs.
    nsc_origin: String,
    formats: Vec<Format>,
    rx: MsbReceiver,
    retimer: Retimer,
    events: std::collections::VecDeque<SourceEvent>,
    /// Format ID of the header last handed on.
    current: Option<u16>,
    unknown: Vec<u16>,
    last_data: Instant,
    timeout: Duration,
    lost: bool,
    wants_nsc: bool,
    last_nsc: Instant,
    state: SourceState,
    counters: SourceCounters,
    bad_log: BadPacketLog,
    /// Packets dropped for an unknown Format ID.
    pub unknown_format_packets: u64,
    pub bad_packets: u64,
}

impl McastSource {
    pub fn new(
        station: &str,
        nsc_origin: &str,
        announced: Announced,
        timeout: Duration,
        now: Instant,
    ) -> Self {
        McastSource {
            station: station.to_string(),
            nsc_origin: nsc_origin.to_string(),
            formats: announced.formats,
            rx: MsbReceiver::new(),
            retimer: Retimer::new(),
            events: Default::default(),
            current: None,
            unknown: Vec::new(),
            last_data: now,
            timeout,
            lost: false,
            wants_nsc: false,
            last_nsc: now,
            state: SourceState::Starting,
            counters: SourceCounters::default(),
            bad_log: BadPacketLog::new(),
            unknown_format_packets: 0,
            bad_packets: 0,
        }
    }

    /// New Formats from a fetched `.nsc` (the group stays as it is).
    pub fn update_formats(&mut self, formats: Vec<Format>, now: Instant) {
        self.last_nsc = now;
        self.wants_nsc = false;
        let known: Vec<u16> = formats.iter().map(|f| f.id).collect();
        self.unknown.retain(|id| !known.contains(id));
        self.formats = formats;
    }

    /// Whether the `.nsc` should be fetched again now.
    pub fn wants_nsc(&self, now: Instant) -> bool {
        self.wants_nsc && now.saturating_duration_since(self.last_nsc) >= NSC_REFRESH
    }

    /// A failed fetch counts as one (the next waits [`NSC_REFRESH`]).
    pub fn nsc_failed(&mut self, now: Instant) {
        self.last_nsc = now;
    }

    pub fn queued(&self) -> usize {
        self.events.len()
    }

    pub fn state(&self) -> SourceState {
        self.state.clone()
    }

    pub fn counters(&self) -> SourceCounters {
        self.counters
    }

    pub fn receiver(&self) -> &MsbReceiver {
        &self.rx
    }

    /// One datagram from `from`.
    pub fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        if self.rx.push(datagram).is_err() {
            if let Some(n) = self.bad_log.record(now) {
                warn!(station = %self.station, sender = %from, skipped = n, "datagrams that are not MSB");
            }
        }
        while let Some(r) = self.rx.poll() {
            if let Received::Packet { format_id, asf, .. } = r {
                self.on_packet(format_id, asf, from, now);
            }
        }
    }

    fn on_packet(&mut self, format_id: u16, asf: Vec<u8>, from: SocketAddr, now: Instant) {
        if self.current != Some(format_id) {
            let Some(f) = self.formats.iter().find(|f| f.id == format_id) else {
                self.unknown_format_packets += 1;
                if !self.unknown.contains(&format_id) && self.unknown.len() < MAX_UNKNOWN {
                    self.unknown.push(format_id);
                    warn!(station = %self.station, sender = %from, format_id, nsc = %self.nsc_origin, "multicast packets with a Format ID the .nsc does not announce are dropped");
                }
                self.wants_nsc = true;
                return;
            };
            match split_header(&f.header) {
                Ok((header, data)) => {
                    self.retimer.new_entry();
                    self.current = Some(format_id);
                    self.counters.started += 1;
                    self.state = SourceState::Playing {
                        origin: format!("{} (Format {format_id})", self.nsc_origin),
                    };
                    if self.lost {
                        info!(station = %self.station, sender = %from, "multicast source is back");
                    }
                    self.events.push_back(SourceEvent::Header {
                        header: Box::new(header),
                        data,
                        origin: format!("multicast from {from}"),
                    });
                }
                Err(e) => {
                    self.unknown_format_packets += 1;
                    if !self.unknown.contains(&format_id) && self.unknown.len() < MAX_UNKNOWN {
                        self.unknown.push(format_id);
                        warn!(station = %self.station, sender = %from, format_id, error = %e, "the .nsc's header for this Format does not parse; its packets are dropped");
                    }
                    return;
                }
            }
        }
        self.last_data = now;
        self.lost = false;
        let parsed = match Packet::parse(&asf) {
            Ok(p) => p,
            Err(e) => {
                self.bad_packets += 1;
                if let Some(n) = self.bad_log.record(now) {
                    warn!(station = %self.station, sender = %from, error = %e, skipped = n, "bad packets in the multicast");
                }
                return;
            }
        };
        let (send_time, moved) = self.retimer.apply(&parsed);
        self.events.push_back(SourceEvent::Packet(SourcePacket {
            bytes: moved.unwrap_or(asf),
            send_time,
        }));
    }

    /// The next event, or Idle until the data timeout.
    pub fn next_event(&mut self, now: Instant) -> SourceEvent {
        if let Some(ev) = self.events.pop_front() {
            return ev;
        }
        let silent_until = self.last_data + self.timeout;
        if !self.lost && now >= silent_until {
            self.lost = true;
            self.current = None;
            self.counters.failed += 1;
            let reason = format!(
                "no multicast data from {} for {:?} ({} beacons so far)",
                self.nsc_origin,
                self.timeout,
                self.rx.counters().beacons
            );
            self.state = SourceState::Lost {
                reason: reason.clone(),
            };
            return SourceEvent::Lost {
                reason,
                retry_at: now + self.timeout,
            };
        }
        if self.lost {
            // Waiting for data; readiness wakes the station before this.
            return SourceEvent::Idle(now + self.timeout);
        }
        SourceEvent::Idle(silent_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::rewrite::strip_padding;
    use crate::asf::AsfReader;
    use crate::msb::{MsbSender, MsbSenderConfig};
    use crate::nsc::StationFile;

    fn demo() -> (Vec<u8>, Vec<Vec<u8>>) {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media/demo.asf");
        let mut r = AsfReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let header = r.header().to_broadcast().stream_header_bytes(r.data_head());
        let mut packets = Vec::new();
        while let Some(Ok(p)) = r.next_packet() {
            let parsed = p.parse().unwrap_or_else(|e| panic!("{e}"));
            packets.push(strip_padding(&parsed));
        }
        (header, packets)
    }

    fn nsc_text(formats: Vec<Format>) -> String {
        StationFile {
            name: Some("box, news".into()),
            multicast_adapter: None,
            ip_address: "239.255.1.2".into(),
            ip_port: 5000,
            time_to_live: Some(1),
            default_ecc: Some(10),
            log_url: None,
            unicast_url: None,
            formats,
        }
        .to_nsc()
    }

    /// Datagrams of `packets` sent as Format `id` (one sender for the whole test: packet ids
    /// go on across format changes, as a station's do).
    fn datagrams(s: &mut MsbSender, id: u16, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        s.set_format(id, &mut out).unwrap_or_else(|e| panic!("{e}"));
        for p in packets {
            s.push(p, &mut out).unwrap_or_else(|e| panic!("{e}"));
        }
        s.flush(&mut out);
        out
    }

    fn events(src: &mut McastSource, now: Instant) -> (usize, usize, Vec<String>) {
        let (mut headers, mut packets, mut lost) = (0, 0, Vec::new());
        loop {
            match src.next_event(now) {
                SourceEvent::Header { .. } => headers += 1,
                SourceEvent::Packet(_) => packets += 1,
                SourceEvent::Lost { reason, .. } => lost.push(reason),
                SourceEvent::Idle(_) | SourceEvent::Ended => return (headers, packets, lost),
            }
        }
    }

    #[test]
    fn relays_announced_formats_drops_unknown_ones_and_reports_silence() {
        let (header, packets) = demo();
        let from: SocketAddr = "127.0.0.1:5000".parse().unwrap_or_else(|e| panic!("{e}"));
        let text = nsc_text(vec![Format {
            id: 77,
            header: header.clone(),
            description: None,
        }]);
        let announced = read_nsc(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            announced.group,
            "239.255.1.2:5000".parse().unwrap_or_else(|e| panic!("{e}"))
        );
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut src = McastSource::new("relay", "news.nsc", announced, timeout, t0);
        let mut tx = MsbSender::new(MsbSenderConfig {
            fec_span: 10,
            first_packet_id: 0,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        // An announced Format: its header, then every packet, one of each span lost and rebuilt.
        for (i, d) in datagrams(&mut tx, 77, &packets[..40]).iter().enumerate() {
            if i % 11 != 3 {
                src.on_datagram(d, from, t0);
            }
        }
        assert_eq!(events(&mut src, t0), (1, 40, vec![]));
        assert!(src.receiver().counters().repaired >= 3);
        // A Format the .nsc does not announce: dropped, the station asks for the .nsc again.
        for d in datagrams(&mut tx, 78, &packets[40..50]) {
            src.on_datagram(&d, from, t0);
        }
        assert_eq!(events(&mut src, t0), (0, 0, vec![]));
        assert_eq!(src.unknown_format_packets, 10);
        assert!(!src.wants_nsc(t0));
        assert!(src.wants_nsc(t0 + NSC_REFRESH));
        // Silence past the timeout: one loss; data again brings the header again.
        let later = t0 + timeout;
        let (_, _, lost) = events(&mut src, later);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(
            lost[0].contains("no multicast data from news.nsc"),
            "{lost:?}"
        );
        assert_eq!(
            events(&mut src, later + timeout),
            (0, 0, vec![]),
            "reported once"
        );
        let back = later + timeout;
        src.update_formats(
            read_nsc(&nsc_text(vec![Format {
                id: 78,
                header,
                description: None,
            }]))
            .unwrap_or_else(|e| panic!("{e}"))
            .formats,
            back,
        );
        for d in datagrams(&mut tx, 78, &packets[50..60]) {
            src.on_datagram(&d, from, back);
        }
        assert_eq!(events(&mut src, back), (1, 10, vec![]));
    }

    #[test]
    fn a_bad_nsc_is_refused() {
        let (header, _) = demo();
        assert!(read_nsc("not an nsc").is_err());
        assert!(read_nsc(&nsc_text(vec![])).is_err());
        let unicast_group = StationFile {
            name: None,
            multicast_adapter: None,
            ip_address: "10.0.0.1".into(),
            ip_port: 5000,
            time_to_live: None,
            default_ecc: None,
            log_url: None,
            unicast_url: None,
            formats: vec![Format {
                id: 1,
                header,
                description: None,
            }],
        };
        assert!(matches!(
            read_nsc(&unicast_group.to_nsc()),
            Err(McastError::Group(_))
        ));
    }
}
