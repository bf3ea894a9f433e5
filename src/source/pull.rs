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
//! A packet or header that does not parse is counted and logged at a bounded rate; a header
//! that does not parse fails the connection (the back-off then applies).
//!
//! Pure: the shell (`crate::net::upstream`) owns the socket and drives [`PullSource::client`].

use std::time::Instant;

use tracing::{info, warn};

use crate::asf::retime::Retimer;
use crate::asf::{AsfHeader, DataHead, Packet};
use crate::pull::chunks::DATA_HEAD_LEN;
use crate::pull::client::{ClientConfig, ClientEvent, WmspClient};
use crate::station::source::{SourceCounters, SourceEvent, SourcePacket, SourceState};

use super::bad_packets::BadPacketLog;

/// The pull source's pure core.
#[derive(Debug)]
pub struct PullSource {
    station: String,
    client: WmspClient,
    retimer: Retimer,
    state: SourceState,
    counters: SourceCounters,
    bad_log: BadPacketLog,
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
            bad_packets: 0,
        }
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
                        self.retimer.new_entry();
                        let origin = self.client.url().to_string();
                        self.counters.started += 1;
                        info!(station = %self.station, upstream = %origin, server = self.client.server.as_deref().unwrap_or("-"), "pull stream started");
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
