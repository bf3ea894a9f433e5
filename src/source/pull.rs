//! The pull source: a station fed by a WMSP server it connects to (an encoder, VLC's MMSH
//! output, FFmpeg's `-listen 1` server, another asfcast station). It turns what the
//! [`WmspClient`] produces into [`SourceEvent`]s:
//!
//! - every header the upstream sends (each connection starts with one; `$C` brings a new one)
//!   is a [`SourceEvent::Header`]: the station gives it a Format ID by its bytes, so a
//!   reconnect to an upstream whose header did not change keeps the Format ID and the players
//!   (the station's header comparison finds the same bytes); one that really changed gets a
//!   new Format ID;
//! - packets are [`SourceEvent::Packet`]s as they arrive (the upstream paces them), moved onto
//!   the station's continuous timeline ([`Retimer`]; every connection is a new entry, so an
//!   upstream that restarted at time zero does not send the station's clients back in time);
//! - a failure is one [`SourceEvent::Lost`] naming the upstream and why, with the time of the
//!   next attempt (the fallback wrapper switches to its slate on it).
//!
//! A header that differs from an earlier one (of the last [`KEPT_HEADERS`]) only in its
//! identity — the File ID (File Properties and Data Object) and the creation date — is the
//! same format: it is handed on with that identity, so its bytes and Format ID are the earlier
//! ones. VLC's MMSH output makes a new File ID at every loop of its input (and may serve a
//! one-track header for a moment while its tracks start again); without this each loop would
//! add a Format to the `.nsc` (2047 at most) for a stream that did not change. (VLC may also
//! swap its stream numbers at a loop: a real change, handed on as such.)
//!
//! A packet or header that does not parse is counted and logged at a bounded rate; a header
//! that does not parse fails the connection (the back-off then applies).
//!
//! Pure: the shell (`crate::net::upstream`) owns the socket and drives [`PullSource::client`].

use std::time::Instant;

use tracing::{debug, info, warn};

use crate::asf::retime::Retimer;
use crate::asf::{AsfHeader, DataHead, Packet};
use crate::pull::chunks::DATA_HEAD_LEN;
use crate::pull::client::{ClientConfig, ClientEvent, WmspClient};
use crate::station::source::{SourceCounters, SourceEvent, SourcePacket, SourceState};

use super::bad_packets::BadPacketLog;

/// Earlier headers whose identity a new header may take back.
const KEPT_HEADERS: usize = 8;

/// The pull source's pure core.
#[derive(Debug)]
pub struct PullSource {
    station: String,
    client: WmspClient,
    retimer: Retimer,
    state: SourceState,
    counters: SourceCounters,
    bad_log: BadPacketLog,
    /// The last headers handed on (distinct, newest last, at most [`KEPT_HEADERS`]).
    kept: Vec<(AsfHeader, DataHead)>,
    /// Packets that did not parse.
    pub bad_packets: u64,
}

impl PullSource {
    /// A source that connects at `now`.
    pub fn new(station: &str, config: ClientConfig, now: Instant) -> Self {
        PullSource {
            station: station.to_string(),
            client: WmspClient::new(config, now),
            retimer: Retimer::new(),
            state: SourceState::Starting,
            counters: SourceCounters::default(),
            bad_log: BadPacketLog::new(),
            kept: Vec::new(),
            bad_packets: 0,
        }
    }

    /// `header` with the identity of an earlier header when that makes it that header; and
    /// remembers the result.
    fn keep_identity(&mut self, header: AsfHeader, data: DataHead) -> (AsfHeader, DataHead) {
        let bytes = |h: &AsfHeader, d: &DataHead| {
            h.to_broadcast()
                .stream_header_bytes(&DataHead::broadcast(d.file_id))
        };
        let earlier = self.kept.iter().rev().find_map(|(prev, prev_data)| {
            let mut file = header.file.clone();
            file.file_id = prev.file.file_id;
            file.creation_date = prev.file.creation_date;
            let mut same = header.clone();
            same.set_file_properties(file);
            let same_data = DataHead {
                file_id: prev_data.file_id,
                ..data.clone()
            };
            (bytes(&same, &same_data) == bytes(prev, prev_data)).then_some((same, same_data))
        });
        let (header, data) = earlier.unwrap_or((header, data));
        let new = bytes(&header, &data);
        self.kept.retain(|(h, d)| bytes(h, d) != new);
        self.kept.push((header.clone(), data.clone()));
        if self.kept.len() > KEPT_HEADERS {
            self.kept.remove(0);
        }
        (header, data)
    }

    /// The WMSP client, for the shell to connect, write and feed.
    pub fn client(&mut self) -> &mut WmspClient {
        &mut self.client
    }

    pub fn state(&self) -> SourceState {
        self.state.clone()
    }

    pub fn counters(&self) -> SourceCounters {
        self.counters
    }

    /// The next event: a header, a packet, a loss, or Idle until the client's deadline (bytes
    /// arriving earlier wake the station).
    pub fn next_event(&mut self, now: Instant) -> SourceEvent {
        self.client.on_timeout(now);
        while let Some(ev) = self.client.next_event() {
            match ev {
                ClientEvent::Header(bytes) => match split_header(&bytes) {
                    Ok((header, data)) => {
                        let (header, data) = self.keep_identity(header, data);
                        self.retimer.new_entry();
                        let origin = self.client.url().to_string();
                        // Once per stream: an upstream that repeats its header on one connection
                        // (a header storm) must not write a line per header.
                        if matches!(self.state, SourceState::Playing { .. }) {
                            debug!(station = %self.station, upstream = %origin, "upstream header again");
                        } else {
                            self.counters.started += 1;
                            info!(station = %self.station, upstream = %origin, server = self.client.server.as_deref().unwrap_or("-"), "pull stream started");
                        }
                        self.state = SourceState::Playing {
                            origin: origin.clone(),
                        };
                        return SourceEvent::Header {
                            header: Box::new(header),
                            data,
                            origin,
                        };
                    }
                    Err(e) => self.client.reject(format!("bad ASF header: {e}"), now),
                },
                ClientEvent::Packet(bytes) => {
                    let parsed = match Packet::parse(&bytes) {
                        Ok(p) => p,
                        Err(e) => {
                            self.bad_packets += 1;
                            if let Some(n) = self.bad_log.record(now) {
                                warn!(station = %self.station, upstream = %self.client.url(), error = %e, skipped = n, "bad packets from the upstream");
                            }
                            continue;
                        }
                    };
                    let (send_time, moved) = self.retimer.apply(&parsed);
                    return SourceEvent::Packet(SourcePacket {
                        bytes: moved.unwrap_or(bytes),
                        send_time,
                    });
                }
                ClientEvent::Lost { reason, retry_at } => {
                    self.counters.failed += 1;
                    self.state = SourceState::Lost {
                        reason: reason.clone(),
                    };
                    return SourceEvent::Lost {
                        reason: format!(
                            "{reason}; next attempt in {:?}",
                            retry_at.saturating_duration_since(now)
                        ),
                        retry_at,
                    };
                }
            }
        }
        SourceEvent::Idle(self.client.deadline())
    }
}

/// Header Object and Data Object head of a header as every protocol sends it.
pub fn split_header(bytes: &[u8]) -> Result<(AsfHeader, DataHead), String> {
    let split = bytes
        .len()
        .checked_sub(DATA_HEAD_LEN)
        .ok_or_else(|| format!("{} bytes is shorter than a header", bytes.len()))?;
    let header = AsfHeader::parse(&bytes[..split]).map_err(|e| e.to_string())?;
    let data = DataHead::parse(&bytes[split..]).map_err(|e| e.to_string())?;
    Ok((header, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::client::Io;
    use crate::pull::PullUrl;
    use std::time::Duration;

    fn demo() -> (AsfHeader, DataHead, Vec<u8>) {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("station-configs/media/demo.asf");
        let mut r = crate::asf::AsfReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let packet = match r.next_packet() {
            Some(Ok(p)) => p.bytes,
            other => panic!("{other:?}"),
        };
        (r.header().clone(), r.data_head().clone(), packet)
    }

    fn chunk(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = ((8 + payload.len()) as u16).to_le_bytes();
        let mut v = vec![
            b'$', kind, len[0], len[1], 0, 0, 0, 0, 0, 0x0C, len[0], len[1],
        ];
        v.extend_from_slice(payload);
        v
    }

    /// One single-request stream (FFmpeg's kind) of `header` and `packet`, then the close;
    /// the events the source hands on.
    fn stream(
        src: &mut PullSource,
        header: &[u8],
        packet: &[u8],
        now: Instant,
    ) -> Vec<SourceEvent> {
        let mut connect = false;
        while let Some(io) = src.client().io(now) {
            connect |= io == Io::Connect;
        }
        assert!(connect, "the source connects (again)");
        src.client().on_connected(now);
        while src.client().io(now).is_some() {}
        let body = [
            b"HTTP/1.0 200 OK\r\n\r\n".to_vec(),
            chunk(b'H', header),
            chunk(b'D', packet),
        ]
        .concat();
        src.client().on_data(&body, now);
        src.client().on_closed(None, now);
        let mut out = Vec::new();
        loop {
            match src.next_event(now) {
                SourceEvent::Idle(_) => return out,
                ev => out.push(ev),
            }
        }
    }

    fn header_bytes(ev: &SourceEvent) -> Vec<u8> {
        match ev {
            SourceEvent::Header { header, data, .. } => header
                .to_broadcast()
                .stream_header_bytes(&DataHead::broadcast(data.file_id)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_file_id_alone_keeps_the_header_and_a_real_change_does_not() {
        let (header, data, packet) = demo();
        let t0 = Instant::now();
        let config = ClientConfig {
            url: PullUrl::parse("http://127.0.0.1:9/x").unwrap_or_else(|e| panic!("{e}")),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(100),
            stall_timeout: Duration::from_secs(10),
            client_guid: [0; 16],
        };
        let mut src = PullSource::new("edge", config, t0);
        let wire = |h: &AsfHeader, d: &DataHead| h.to_broadcast().stream_header_bytes(d);
        let first = stream(&mut src, &wire(&header, &data), &packet, t0);
        assert_eq!(first.len(), 3, "header, packet, loss: {first:?}");
        let original = header_bytes(&first[0]);
        // The same stream with a new File ID and creation date (VLC after a loop).
        let mut file = header.file.clone();
        file.file_id.0[0] ^= 0xFF;
        file.creation_date += 1;
        let mut renamed = header.clone();
        renamed.set_file_properties(file);
        let mut renamed_data = data.clone();
        renamed_data.file_id = renamed.file.file_id;
        let t1 = t0 + Duration::from_millis(100);
        let second = stream(&mut src, &wire(&renamed, &renamed_data), &packet, t1);
        assert_eq!(
            header_bytes(&second[0]),
            original,
            "same format, same bytes"
        );
        // Another bit rate is another header: handed on as it is.
        let mut file = header.file.clone();
        file.max_bitrate += 1000;
        let mut changed = header.clone();
        changed.set_file_properties(file);
        let t2 = t1 + Duration::from_millis(100);
        let third = stream(&mut src, &wire(&changed, &data), &packet, t2);
        assert_ne!(header_bytes(&third[0]), original);
        assert_eq!(
            header_bytes(&third[0]),
            wire(&changed, &DataHead::broadcast(data.file_id))
        );
        // The first format again, under yet another File ID (VLC's one-track header came in
        // between): the first bytes again.
        let mut file = header.file.clone();
        file.file_id.0[1] ^= 0xFF;
        let mut again = header.clone();
        again.set_file_properties(file);
        let mut again_data = data.clone();
        again_data.file_id = again.file.file_id;
        let t3 = t2 + Duration::from_millis(100);
        let fourth = stream(&mut src, &wire(&again, &again_data), &packet, t3);
        assert_eq!(header_bytes(&fourth[0]), original);
    }
}
