//! `asfcast probe`: a summary of an ASF file as a station operator needs it — streams with
//! codec and bitrate, packet size and count, preroll, duration, broadcast/seekable, and how far
//! apart the clean points (video key frames) are, which bounds how long a joiner waits.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::asf::{AsfReader, ReadError, StreamKind};

#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    pub number: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub codec: String,
    pub bitrate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    /// Key-frame starts seen on this stream (video only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_frames: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExclusionSummary {
    /// `bitrate`, `language` or `unknown`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub streams: Vec<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub file: String,
    pub streams: Vec<StreamSummary>,
    pub packet_size: u32,
    /// Packets the header declares (0 for broadcast headers).
    pub declared_packets: u64,
    /// Packets actually read.
    pub packets: u64,
    /// Packets that failed to parse.
    pub bad_packets: u64,
    pub preroll_ms: u64,
    pub duration_ms: u64,
    /// Send time of the last packet, ms.
    pub last_send_time_ms: u32,
    pub max_bitrate: u32,
    pub broadcast: bool,
    pub seekable: bool,
    /// Mean and longest distance between clean points in ms (None without video key frames).
    pub clean_point_interval_ms: Option<f64>,
    pub clean_point_max_interval_ms: Option<u32>,
    pub title: Option<String>,
    /// Mutual exclusion groups (MBR renditions): the streams a player chooses one of.
    pub mutual_exclusions: Vec<ExclusionSummary>,
    /// The error that ended reading early, if any.
    pub read_error: Option<String>,
}

/// Reads the whole file once, packet by packet.
pub fn probe(path: &Path) -> Result<ProbeReport, ReadError> {
    let mut reader = AsfReader::open(path)?;
    let h = reader.header().clone();
    let clean_streams = h.clean_point_streams();
    let mut key_frames = vec![0u64; 128];
    let mut packets = 0u64;
    let mut bad_packets = 0u64;
    let mut last_send = 0u32;
    let mut read_error = None;
    // Clean points are packets where the first clean-point stream starts a key frame.
    let primary = clean_streams.first().copied();
    let mut last_clean: Option<u32> = None;
    let mut intervals: Vec<u32> = Vec::new();
    while let Some(item) = reader.next_packet() {
        match item {
            Ok(p) => {
                packets += 1;
                last_send = p.send_time;
                if let Ok(parsed) = p.parse() {
                    for s in parsed.key_frame_starts() {
                        if let Some(k) = key_frames.get_mut(s as usize) {
                            *k += 1;
                        }
                    }
                    if primary.is_some_and(|s| parsed.starts_key_frame_on(s)) {
                        if let Some(prev) = last_clean {
                            intervals.push(p.send_time.saturating_sub(prev));
                        }
                        last_clean = Some(p.send_time);
                    }
                }
            }
            Err(ReadError::Packet { .. }) => bad_packets += 1,
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
    }
    let streams = h
        .streams
        .iter()
        .map(|s| {
            let a = s.audio();
            let v = s.video();
            StreamSummary {
                number: s.number,
                kind: s.kind.as_str(),
                codec: s.codec_name(),
                bitrate: h.stream_bitrate(s.number),
                width: v.as_ref().map(|v| v.width),
                height: v.as_ref().map(|v| v.height),
                sample_rate: a.as_ref().map(|a| a.sample_rate),
                channels: a.as_ref().map(|a| a.channels),
                key_frames: (s.kind == StreamKind::Video)
                    .then(|| key_frames[s.number as usize & 0x7F]),
            }
        })
        .collect();
    let mean = (!intervals.is_empty())
        .then(|| intervals.iter().map(|&i| f64::from(i)).sum::<f64>() / intervals.len() as f64);
    Ok(ProbeReport {
        file: path.display().to_string(),
        streams,
        packet_size: h.packet_size(),
        declared_packets: h.file.data_packets,
        packets,
        bad_packets,
        preroll_ms: h.file.preroll_ms,
        duration_ms: h.file.duration_ms(),
        last_send_time_ms: last_send,
        max_bitrate: h.file.max_bitrate,
        broadcast: h.file.is_broadcast(),
        seekable: h.file.is_seekable(),
        clean_point_interval_ms: mean,
        clean_point_max_interval_ms: intervals.iter().copied().max(),
        title: h
            .content
            .as_ref()
            .map(|c| c.title.clone())
            .filter(|t| !t.is_empty()),
        mutual_exclusions: h
            .mutual_exclusions
            .iter()
            .map(|m| ExclusionSummary {
                kind: match m.exclusion_type {
                    crate::asf::guid::MUTEX_BITRATE => "bitrate",
                    crate::asf::guid::MUTEX_LANGUAGE => "language",
                    _ => "unknown",
                },
                streams: m.streams.clone(),
            })
            .collect(),
        read_error,
    })
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.file)?;
        if let Some(t) = &self.title {
            writeln!(f, "  title:        {t}")?;
        }
        writeln!(
            f,
            "  packets:      {} x {} bytes (header declares {}){}",
            self.packets,
            self.packet_size,
            self.declared_packets,
            if self.bad_packets > 0 {
                format!(", {} bad", self.bad_packets)
            } else {
                String::new()
            }
        )?;
        writeln!(f, "  preroll:      {} ms", self.preroll_ms)?;
        writeln!(
            f,
            "  duration:     {} ms (last send time {} ms)",
            self.duration_ms, self.last_send_time_ms
        )?;
        writeln!(f, "  max bitrate:  {} bps", self.max_bitrate)?;
        writeln!(
            f,
            "  flags:        broadcast={} seekable={}",
            self.broadcast, self.seekable
        )?;
        match (
            self.clean_point_interval_ms,
            self.clean_point_max_interval_ms,
        ) {
            (Some(mean), Some(max)) => writeln!(
                f,
                "  clean points: every {mean:.0} ms on average, at most {max} ms apart"
            )?,
            _ => writeln!(
                f,
                "  clean points: every packet (no video key frames to wait for)"
            )?,
        }
        writeln!(f, "  streams:      {}", self.streams.len())?;
        for s in &self.streams {
            write!(f, "    #{} {} {}", s.number, s.kind, s.codec)?;
            if let Some(b) = s.bitrate {
                write!(f, " {} kbps", b / 1000)?;
            }
            if let (Some(w), Some(h)) = (s.width, s.height) {
                write!(f, " {w}x{h}")?;
            }
            if let (Some(r), Some(c)) = (s.sample_rate, s.channels) {
                write!(f, " {r} Hz {c} ch")?;
            }
            if let Some(k) = s.key_frames {
                write!(f, " ({k} key frames)")?;
            }
            writeln!(f)?;
        }
        for m in &self.mutual_exclusions {
            let list: Vec<String> = m.streams.iter().map(|n| format!("#{n}")).collect();
            writeln!(
                f,
                "  mutual exclusion ({}): {} (a player receives one)",
                m.kind,
                list.join(" ")
            )?;
        }
        if let Some(e) = &self.read_error {
            writeln!(f, "  stopped early: {e}")?;
        }
        Ok(())
    }
}
