//! One WMSP pull, as a state machine ([MS-WMSP] §3.1.5, §4.11; ingest-relay-ops.md §a.2):
//!
//! 1. **Describe**: `GET <path>` with `User-Agent: NSServer/9.0.0.3171` (the distribution
//!    server's token) and no `xPlayStrm`; the answer is the header in `$H` chunks, delimited by
//!    `Content-Length` or the close.
//! 2. **Play**: a new connection, `GET <path>` with `Pragma: xPlayStrm=1`, the `client-id` the
//!    Describe answer assigned, and every stream of the header switched on
//!    (`stream-switch-entry=ffff:<n>:0`, numbers in hexadecimal as the spec writes them); the
//!    answer is `$H`, then `$D` packets; `$C` announces a new `$H`; `$E` ends the stream.
//!
//! Real servers it meets:
//! - **asfcast** and **Windows Media** answer both requests as above.
//! - **VLC**'s MMSH output (`Server: Cougar 4.1.0.3921`) answers a Describe with the `$H` and
//!   the close, and a Play with `$H` and `$D`s; its header says 0xFFFFFFFF data packets and a
//!   file size (the station's broadcast rewrite clears both).
//! - **FFmpeg**'s `-listen 1` HTTP server answers exactly one request, whatever it is, with the
//!   whole stream (`chunked`): when `$D` follows `$H` on the Describe connection, that
//!   connection *is* the stream and no Play is sent.
//!
//! After a failure (refused, HTTP error, not WMSP, closed, silent past the stall timeout, `$E`
//! with reason 0) the client reports it once ([`ClientEvent::Lost`]) and connects again after a
//! back-off that doubles from `backoff_min` to `backoff_max` and starts over once a packet
//! arrives. `$E` with a non-zero reason (the server's "another entry follows") reconnects at
//! once. Everything is bounded: the response head ([`super::response::MAX_HEAD`]), the header
//! ([`super::chunks::MAX_HEADER`]), one chunk; the caller stops feeding bytes while events are
//! queued.
//!
//! Pure: the shell connects, writes, reads and closes when told ([`Io`]), and calls
//! [`WmspClient::on_timeout`] at [`WmspClient::deadline`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::chunks::{Chunk, ChunkReader, HeaderAssembler};
use super::response::{Head, ResponseReader};
use super::url::PullUrl;

/// The client token and version of a Windows Media distribution server ([MS-WMSP] §2.2.1.8).
pub const USER_AGENT: &str = "NSServer/9.0.0.3171";

/// Settings of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub url: PullUrl,
    /// First wait after a failure.
    pub backoff_min: Duration,
    /// Longest wait after failures in a row.
    pub backoff_max: Duration,
    /// A connection that produces no body byte for this long is given up (connect, response
    /// and stream alike).
    pub stall_timeout: Duration,
    /// The `xClientGUID` sent (random per station, chosen by the caller).
    pub client_guid: [u8; 16],
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Open a TCP connection to the URL's host and port (closing any open one first).
    Connect,
    /// Write these bytes on the open connection.
    Send(Vec<u8>),
    /// Close the connection.
    Close,
}

/// What the pull produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The ASF header (Header Object + Data Object head), at the start of every stream and
    /// after every `$C`.
    Header(Vec<u8>),
    /// One ASF data packet.
    Packet(Vec<u8>),
    /// The stream is gone; the client connects again at `retry_at`.
    Lost { reason: String, retry_at: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Describe,
    Play,
}

#[derive(Debug)]
enum State {
    /// Waiting to connect.
    Waiting { until: Instant },
    /// Connect asked for; the request goes out once connected.
    Connecting { phase: Phase, deadline: Instant },
    /// Request sent; reading the answer.
    Reading {
        phase: Phase,
        deadline: Instant,
        response: ResponseReader,
        head: Option<Head>,
        chunks: ChunkReader,
        /// The stream flows on this connection (Play, or a one-request server).
        streaming: bool,
    },
}

/// The pull client.
#[derive(Debug)]
pub struct WmspClient {
    config: ClientConfig,
    state: State,
    io: VecDeque<Io>,
    events: VecDeque<ClientEvent>,
    assembler: HeaderAssembler,
    /// The header from the last Describe (or stream), for the Play's stream switches.
    header: Option<Vec<u8>>,
    /// Whether the current connection has delivered its header.
    header_sent: bool,
    client_id: Option<u32>,
    backoff: Duration,
    /// Failures in a row.
    pub failures: u64,
    /// Connections that delivered packets.
    pub streams: u64,
    /// Server header of the last answer, for logs.
    pub server: Option<String>,
}

impl WmspClient {
    /// A client that connects at `now`.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let backoff = config.backoff_min;
        WmspClient {
            config,
            state: State::Waiting { until: now },
            io: VecDeque::new(),
            events: VecDeque::new(),
            assembler: HeaderAssembler::new(),
            header: None,
            header_sent: false,
            client_id: None,
            backoff,
            failures: 0,
            streams: 0,
            server: None,
        }
    }

    pub fn url(&self) -> &PullUrl {
        &self.config.url
    }

    /// The next thing the shell must do, if any.
    pub fn io(&mut self, now: Instant) -> Option<Io> {
        if let State::Waiting { until } = self.state {
            if until <= now {
                self.connect(Phase::Describe, now);
            }
        }
        self.io.pop_front()
    }

    /// The next event, if any.
    pub fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Events held.
    pub fn queued(&self) -> usize {
        self.events.len()
    }

    /// Whether a connection is open or being opened (the shell reads only then).
    pub fn connected(&self) -> bool {
        !matches!(self.state, State::Waiting { .. })
    }

    /// When [`WmspClient::on_timeout`] (or [`WmspClient::io`], to connect) is due.
    pub fn deadline(&self) -> Instant {
        match &self.state {
            State::Waiting { until } => *until,
            State::Connecting { deadline, .. } | State::Reading { deadline, .. } => *deadline,
        }
    }

    /// The connection is open: the request goes out.
    pub fn on_connected(&mut self, now: Instant) {
        let State::Connecting { phase, .. } = self.state else {
            return;
        };
        let request = self.request(phase);
        self.io.push_back(Io::Send(request));
        self.state = State::Reading {
            phase,
            deadline: now + self.config.stall_timeout,
            response: ResponseReader::new(),
            head: None,
            chunks: ChunkReader::new(),
            streaming: phase == Phase::Play,
        };
    }

    /// Bytes read from the connection.
    pub fn on_data(&mut self, bytes: &[u8], now: Instant) {
        if let Err(reason) = self.read(bytes, now) {
            self.fail(reason, now);
        }
    }

    /// The connection closed (or failed: `error`).
    pub fn on_closed(&mut self, error: Option<&str>, now: Instant) {
        let why = |what: &str| match error {
            Some(e) => format!("{what}: {e}"),
            None => what.to_string(),
        };
        match &self.state {
            State::Waiting { .. } => {}
            State::Connecting { .. } => self.fail(why("cannot connect"), now),
            State::Reading {
                phase: Phase::Describe,
                streaming: false,
                ..
            } if error.is_none() && self.header.is_some() => self.connect(Phase::Play, now),
            State::Reading { head: None, .. } => {
                self.fail(why("connection closed before an HTTP answer"), now)
            }
            State::Reading {
                phase: Phase::Describe,
                streaming: false,
                ..
            } => self.fail(why("connection closed before the header"), now),
            State::Reading { .. } => self.fail(why("connection closed"), now),
        }
    }

    /// Time passed: a connection silent past the stall timeout is given up.
    pub fn on_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Connecting { deadline, .. } if *deadline <= now => self.fail(
                format!("no connection within {:?}", self.config.stall_timeout),
                now,
            ),
            State::Reading { deadline, head, .. } if *deadline <= now => {
                let what = if head.is_none() {
                    "no HTTP answer"
                } else {
                    "no data"
                };
                self.fail(format!("{what} for {:?}", self.config.stall_timeout), now)
            }
            _ => {}
        }
    }

    /// The stream's header or data cannot be used (the caller found it invalid): the same as
    /// a failure of the connection.
    pub fn reject(&mut self, reason: String, now: Instant) {
        // What the connection queued after the rejected header is not played either.
        self.events.clear();
        self.fail(reason, now);
    }

    fn connect(&mut self, phase: Phase, now: Instant) {
        if phase == Phase::Describe {
            self.header = None;
        }
        self.assembler.reset();
        self.header_sent = false;
        self.io.push_back(Io::Connect);
        self.state = State::Connecting {
            phase,
            deadline: now + self.config.stall_timeout,
        };
    }

    fn fail(&mut self, reason: String, now: Instant) {
        let retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.backoff_max);
        self.failures += 1;
        self.io.push_back(Io::Close);
        self.state = State::Waiting { until: retry_at };
        self.assembler.reset();
        self.events.push_back(ClientEvent::Lost {
            reason: format!("{}: {reason}", self.config.url),
            retry_at,
        });
    }

    fn read(&mut self, bytes: &[u8], now: Instant) -> Result<(), String> {
        let stall = self.config.stall_timeout;
        let State::Reading {
            phase,
            deadline,
            response,
            head,
            chunks,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        let phase = *phase;
        let read = response.push(bytes).map_err(|e| e.to_string())?;
        if let Some(h) = read.head {
            if h.status != 200 {
                return Err(format!("HTTP {} {}", h.status, h.reason));
            }
            if phase == Phase::Describe {
                self.client_id = h.client_id();
            }
            self.server = h.get("server").map(str::to_string);
            *head = Some(h);
        }
        if !read.body.is_empty() {
            *deadline = now + stall;
            chunks.push(&read.body);
        }
        let done = read.done;
        self.drain_chunks(now)?;
        // (A `$E` may have moved on to a new connection already.)
        if done && matches!(self.state, State::Reading { .. }) {
            // Content-Length reached: the same as the close.
            self.io.push_back(Io::Close);
            self.on_closed(None, now);
        }
        Ok(())
    }

    fn drain_chunks(&mut self, now: Instant) -> Result<(), String> {
        loop {
            let State::Reading {
                chunks, streaming, ..
            } = &mut self.state
            else {
                return Ok(());
            };
            let chunk = match chunks.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            match chunk {
                Chunk::Header(piece) => {
                    if let Some(h) = self.assembler.push(&piece).map_err(|e| e.to_string())? {
                        self.header = Some(h.clone());
                        if *streaming {
                            self.header_sent = true;
                            self.events.push_back(ClientEvent::Header(h));
                        }
                    }
                }
                Chunk::Data(p) => {
                    if !*streaming {
                        // A one-request server: this Describe connection is the stream.
                        *streaming = true;
                    }
                    if !self.header_sent {
                        let Some(h) = self.header.clone() else {
                            return Err("a data packet before the header".into());
                        };
                        self.header_sent = true;
                        self.events.push_back(ClientEvent::Header(h));
                    }
                    self.events.push_back(ClientEvent::Packet(p));
                    if self.backoff != self.config.backoff_min || self.failures > 0 {
                        self.backoff = self.config.backoff_min;
                        self.failures = 0;
                    }
                }
                Chunk::Change(_) => {
                    self.assembler.reset();
                    self.header_sent = false;
                }
                Chunk::End(reason) => {
                    if !*streaming {
                        continue;
                    }
                    if reason == 0 {
                        return Err("the server ended the stream ($E)".into());
                    }
                    // Another entry follows: Describe and Play again, at once.
                    self.io.push_back(Io::Close);
                    self.connect(Phase::Describe, now);
                    return Ok(());
                }
                Chunk::Skipped(_) => {}
            }
        }
    }

    fn request(&self, phase: Phase) -> Vec<u8> {
        let u = &self.config.url;
        let g = &self.config.client_guid;
        let guid = format!(
            "{{{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
            g[14], g[15]
        );
        let mut r = format!(
            "GET {} HTTP/1.0\r\nAccept: */*\r\nUser-Agent: {USER_AGENT}\r\nHost: {}\r\n",
            u.path,
            u.authority()
        );
        match phase {
            Phase::Describe => r.push_str(
                "Pragma: no-cache,rate=1.000,stream-time=0,stream-offset=0:0,packet-num=4294967295,max-duration=0\r\n",
            ),
            Phase::Play => {
                r.push_str("Pragma: no-cache,rate=1.000,stream-time=0,stream-offset=4294967295:4294967295,packet-num=4294967295,max-duration=0\r\n");
                r.push_str("Pragma: xPlayStrm=1\r\n");
                if let Some(id) = self.client_id {
                    r.push_str(&format!("Pragma: client-id={id}\r\n"));
                }
                let streams = self.header.as_deref().map(stream_numbers).unwrap_or_default();
                if !streams.is_empty() {
                    let entries: Vec<String> =
                        streams.iter().map(|n| format!("ffff:{n:x}:0")).collect();
                    r.push_str(&format!(
                        "Pragma: stream-switch-count={}\r\nPragma: stream-switch-entry={}\r\n",
                        streams.len(),
                        entries.join(" ")
                    ));
                }
            }
        }
        r.push_str(&format!(
            "Pragma: xClientGUID={guid}\r\nConnection: Close\r\n\r\n"
        ));
        r.into_bytes()
    }
}

/// The stream numbers of a header (Header Object + Data head); none when it does not parse.
fn stream_numbers(header: &[u8]) -> Vec<u8> {
    let Some(split) = header.len().checked_sub(super::chunks::DATA_HEAD_LEN) else {
        return Vec::new();
    };
    crate::asf::AsfHeader::parse(&header[..split])
        .map(|h| h.streams.iter().map(|s| s.number).collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
