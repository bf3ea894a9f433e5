//! `asfcast recv`: an MSB multicast receiver for tests and field checks. It reads a .nsc
//! (file or http:// URL), joins the group, validates the MSB framing, repairs one lost packet
//! per FEC span from parity, and writes a standard ASF file (the .nsc's header for the first
//! Format ID seen, packets re-padded to the packet size) that players open.
//!
//! It is our own tool, not the judge: tests hand its file to ffprobe.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::asf::writer::{AsfFileWriter, WriteError};
use crate::asf::{AsfHeader, DataHead, Packet, DATA_HEAD_LEN};
use crate::msb::{self, MsbReceiver, Received};
use crate::net::multicast::{join_group, Interface};
use crate::nsc;

#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bad station file: {0}")]
    Nsc(String),
    #[error("bad header in Format {id}: {detail}")]
    Header { id: u16, detail: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: WriteError,
    },
}

#[derive(Debug, Clone)]
pub struct RecvOptions {
    /// A .nsc file path or an http:// URL.
    pub source: String,
    pub output: PathBuf,
    pub duration: Duration,
    /// Interface to join on (default: the routing table's choice).
    pub interface: Option<Interface>,
    /// Test aid: drop one data packet per FEC span before the receiver sees it.
    pub drop_one_per_span: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RecvReport {
    pub group: String,
    pub datagrams: u64,
    pub beacons: u64,
    pub parity: u64,
    pub packets_written: u64,
    pub repaired: u64,
    pub lost: u64,
    pub dropped_on_purpose: u64,
    pub bad_framing: u64,
    /// Format IDs seen in packets, in order of first appearance.
    pub formats_seen: Vec<u16>,
    /// Format IDs announced in the .nsc.
    pub formats_announced: Vec<u16>,
    /// Stream changes seen (bit 15 toggles and Format ID changes).
    pub stream_changes: u64,
    /// Packets not written because their Format ID differs from the file's.
    pub other_format_packets: u64,
    /// Packets not written because they came before the first key frame.
    pub skipped_before_key_frame: u64,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RecvError {
    let what = what.into();
    move |source| RecvError::Io { what, source }
}

/// Fetches an http:// URL's body (HTTP/1.0, no redirects, bounded to 4 MiB).
fn http_get(url: &str) -> Result<String, RecvError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| RecvError::Nsc(format!("{url}: only http:// URLs are supported")))?;
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut s = TcpStream::connect(&addr).map_err(io_err(url))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io_err(url))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: asfcast-recv\r\n\r\n"
    )
    .map_err(io_err(url))?;
    let mut buf = Vec::new();
    s.take(4 << 20).read_to_end(&mut buf).map_err(io_err(url))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| RecvError::Nsc(format!("{url}: no HTTP response")))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(RecvError::Nsc(format!("{url}: HTTP status {status}")));
    }
    Ok(body.to_string())
}

pub fn recv(opts: &RecvOptions) -> Result<RecvReport, RecvError> {
    let text = if opts.source.starts_with("http://") {
        http_get(&opts.source)?
    } else {
        std::fs::read_to_string(&opts.source).map_err(io_err(opts.source.clone()))?
    };
    let parsed = nsc::parse(&text).map_err(|e| RecvError::Nsc(e.to_string()))?;
    let station = parsed
        .to_station_file()
        .map_err(|e| RecvError::Nsc(e.to_string()))?;
    let ip: IpAddr = station
        .ip_address
        .parse()
        .map_err(|_| RecvError::Nsc(format!("IP Address {:?}", station.ip_address)))?;
    let group = SocketAddr::new(ip, station.ip_port);
    let drop_position = station.default_ecc.unwrap_or(10).clamp(1, 3);
    let mut seen_span_start = false;
    let socket =
        join_group(group, opts.interface.as_ref()).map_err(io_err(format!("group {group}")))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io_err("socket"))?;

    let mut report = RecvReport {
        group: group.to_string(),
        formats_announced: station.formats.iter().map(|f| f.id).collect(),
        ..RecvReport::default()
    };
    let mut rx = MsbReceiver::new();
    let mut writer: Option<(u16, FileWriter, Option<u8>)> = None;
    let mut last_stream: Option<u16> = None;
    let mut buf = vec![0u8; 65_536];
    let mut drained = Vec::new();
    let deadline = Instant::now() + opts.duration;
    // After the deadline, reception goes on until the open FEC span closes (its parity or a
    // beacon arrives), for at most this long, so the last span can still be repaired.
    let grace = deadline + Duration::from_secs(2);
    let mut span_closed = true;
    let mut finishing = false;
    loop {
        let now = Instant::now();
        if !finishing && ((now >= deadline && span_closed) || now >= grace) {
            rx.flush();
            finishing = true;
        } else if !finishing {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    report.datagrams += 1;
                    let d = &buf[..n];
                    span_closed = match msb::classify(d) {
                        Ok(msb::Datagram::Packet { is_parity, .. }) => is_parity,
                        _ => true,
                    };
                    if opts.drop_one_per_span {
                        // Drop the packet at one fixed position of every span.
                        // (Only in whole spans: a span joined in its middle cannot be
                        // repaired, since the packets before the join were never received.)
                        if let Ok(msb::Datagram::Packet {
                            is_parity: false,
                            asf,
                            ..
                        }) = msb::classify(d)
                        {
                            let position = msb::data_span_position(asf);
                            seen_span_start |= position == Some(1);
                            if seen_span_start && position == Some(drop_position) {
                                report.dropped_on_purpose += 1;
                                continue;
                            }
                        }
                    }
                    if rx.push(d).is_err() {
                        report.bad_framing += 1;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(io_err("socket")(e)),
            }
        }
        rx.drain(&mut drained);
        for r in drained.drain(..) {
            match r {
                Received::Beacon => report.beacons += 1,
                Received::Lost { count } => report.lost += u64::from(count),
                Received::Packet {
                    format_id,
                    toggle,
                    asf,
                    repaired,
                    ..
                } => {
                    let sid = format_id | if toggle { 0x8000 } else { 0 };
                    if last_stream.is_some_and(|l| l != sid) {
                        report.stream_changes += 1;
                    }
                    last_stream = Some(sid);
                    if !report.formats_seen.contains(&format_id) {
                        report.formats_seen.push(format_id);
                    }
                    if writer.is_none() {
                        let (w, key_stream) = open_writer(&station, format_id, &opts.output)?;
                        writer = Some((format_id, w, key_stream));
                    }
                    if let Some((id, w, key_stream)) = writer.as_mut() {
                        if *id != format_id {
                            report.other_format_packets += 1;
                            continue;
                        }
                        if repaired {
                            report.repaired += 1;
                        }
                        // The file starts at a key frame, as a player joining would.
                        if let Some(s) = *key_stream {
                            let starts =
                                Packet::parse(&asf).is_ok_and(|p| p.starts_key_frame_on(s));
                            if !starts {
                                report.skipped_before_key_frame += 1;
                                continue;
                            }
                            *key_stream = None;
                        }
                        // A packet that does not fit the header's packet size is skipped.
                        if w.write_packet(&asf).is_ok() {
                            report.packets_written += 1;
                        }
                    }
                }
            }
        }
        if finishing {
            break;
        }
    }
    let c = rx.counters();
    report.parity = c.parity;
    report.lost = report.lost.max(c.lost);
    if let Some((_, w, _)) = writer {
        w.finish().map_err(|source| RecvError::Write {
            path: opts.output.clone(),
            source,
        })?;
    }
    Ok(report)
}

type FileWriter = AsfFileWriter<std::io::BufWriter<std::fs::File>>;

/// Opens the output file with the Format's header; also returns the stream whose key frame
/// the file must start on (None for audio-only headers).
fn open_writer(
    station: &nsc::StationFile,
    format_id: u16,
    path: &PathBuf,
) -> Result<(FileWriter, Option<u8>), RecvError> {
    let f = station
        .formats
        .iter()
        .find(|f| f.id == format_id)
        .ok_or_else(|| RecvError::Header {
            id: format_id,
            detail: "not announced in the .nsc".into(),
        })?;
    let bad = |detail: String| RecvError::Header {
        id: format_id,
        detail,
    };
    if f.header.len() < DATA_HEAD_LEN + 30 {
        return Err(bad("shorter than a header".into()));
    }
    let split = f.header.len() - DATA_HEAD_LEN;
    let header = AsfHeader::parse(&f.header[..split]).map_err(|e| bad(e.to_string()))?;
    let data = DataHead::parse(&f.header[split..]).map_err(|e| bad(e.to_string()))?;
    let key_stream = header.clean_point_streams().first().copied();
    let file = std::fs::File::create(path).map_err(io_err(path.display().to_string()))?;
    let w =
        AsfFileWriter::new(std::io::BufWriter::new(file), &header, &data).map_err(|source| {
            RecvError::Write {
                path: path.clone(),
                source,
            }
        })?;
    Ok((w, key_stream))
}
