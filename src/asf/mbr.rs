//! Multiple-bit-rate (MBR) headers: the Bitrate Mutual Exclusion object that says "a player
//! plays exactly one of these streams" and the Stream Bitrate Properties object that gives each
//! stream's average rate (asf.md §1.7, §1.8). No encoder on Linux writes them: FFmpeg muxes
//! several renditions of one programme (`-map 0:v -map 0:v …`) as independent streams with
//! neither object (asf.md §6), so `asfcast mbr` adds them to such a file ([`convert`]).
//!
//! The rewrite touches only the Header Object: the existing Stream Bitrate Properties and
//! Bitrate Mutual Exclusion objects are replaced, the new ones go right after the last Stream
//! Properties object, the child count and sizes are recomputed and the File Properties file
//! size follows the header's growth. Data packets and indexes are copied byte for byte (they
//! hold packet numbers, not byte offsets).
//!
//! Groups: by default every video stream of the file forms one group (the renditions), and so
//! do the audio streams when there are several; a caller can name the groups instead.
//! Bitrates are measured from the data (payload bytes per stream over the file's duration),
//! because FFmpeg records no per-stream rate for video.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::guid;
use super::header::{HeaderObject, StreamKind};
use super::{AsfError, AsfHeader, AsfReader, ReadError};

/// Why a file could not be made MBR.
#[derive(Debug, thiserror::Error)]
pub enum MbrError {
    #[error("{0}")]
    Read(#[from] ReadError),
    #[error("header: {0}")]
    Header(#[from] AsfError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Groups(String),
}

/// One mutual exclusion group: the streams a player chooses one of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Exclusion type ([`guid::MUTEX_BITRATE`] for renditions).
    pub kind: super::Guid,
    pub streams: Vec<u8>,
}

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrReport {
    pub groups: Vec<Group>,
    /// (stream, measured average bps).
    pub bitrates: Vec<(u8, u32)>,
    pub header_growth: usize,
}

/// A Stream Bitrate Properties object (§1.7) for `rates`.
pub fn stream_bitrate_object(rates: &[(u8, u32)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + 6 * rates.len());
    body.extend_from_slice(&(rates.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    for &(n, bps) in rates.iter().take(usize::from(u16::MAX)) {
        body.extend_from_slice(&u16::from(n & 0x7F).to_le_bytes());
        body.extend_from_slice(&bps.to_le_bytes());
    }
    object(guid::STREAM_BITRATE_PROPERTIES, &body)
}

/// A Bitrate Mutual Exclusion object (§1.8) for `group`.
pub fn mutual_exclusion_object(group: &Group) -> Vec<u8> {
    let mut body = Vec::with_capacity(18 + 2 * group.streams.len());
    body.extend_from_slice(&group.kind.0);
    body.extend_from_slice(&(group.streams.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    for &n in group.streams.iter().take(usize::from(u16::MAX)) {
        body.extend_from_slice(&u16::from(n).to_le_bytes());
    }
    object(guid::BITRATE_MUTUAL_EXCLUSION, &body)
}

fn object(g: super::Guid, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + body.len());
    out.extend_from_slice(&g.0);
    out.extend_from_slice(&((24 + body.len()) as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The default groups of a header: its video streams when there are at least two, and its
/// audio streams when there are at least two.
pub fn default_groups(h: &AsfHeader) -> Vec<Group> {
    [StreamKind::Video, StreamKind::Audio]
        .into_iter()
        .filter_map(|kind| {
            let streams: Vec<u8> = h
                .streams
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.number)
                .collect();
            (streams.len() >= 2).then_some(Group {
                kind: guid::MUTEX_BITRATE,
                streams,
            })
        })
        .collect()
}

/// `h` with `groups` and `rates` declared: earlier Stream Bitrate Properties and Bitrate Mutual
/// Exclusion objects are replaced. Every group needs two or more streams of the header, and a
/// stream may be in one group only.
pub fn with_mbr(
    h: &AsfHeader,
    groups: &[Group],
    rates: &[(u8, u32)],
) -> Result<AsfHeader, MbrError> {
    let mut seen = Vec::new();
    for g in groups {
        if g.streams.len() < 2 {
            return Err(MbrError::Groups(format!(
                "group {:?} needs at least two streams",
                g.streams
            )));
        }
        for &n in &g.streams {
            if h.stream(n).is_none() {
                return Err(MbrError::Groups(format!("the file has no stream {n}")));
            }
            if seen.contains(&n) {
                return Err(MbrError::Groups(format!("stream {n} is in two groups")));
            }
            seen.push(n);
        }
    }
    let mut objects: Vec<HeaderObject> = h
        .objects
        .iter()
        .filter(|o| {
            o.guid != guid::STREAM_BITRATE_PROPERTIES && o.guid != guid::BITRATE_MUTUAL_EXCLUSION
        })
        .cloned()
        .collect();
    let at = objects
        .iter()
        .rposition(|o| o.guid == guid::STREAM_PROPERTIES)
        .map_or(objects.len(), |i| i + 1);
    let mut new = vec![HeaderObject {
        guid: guid::STREAM_BITRATE_PROPERTIES,
        bytes: stream_bitrate_object(rates),
    }];
    new.extend(groups.iter().map(|g| HeaderObject {
        guid: guid::BITRATE_MUTUAL_EXCLUSION,
        bytes: mutual_exclusion_object(g),
    }));
    objects.splice(at..at, new);
    let mut out = h.clone();
    out.objects = objects;
    Ok(AsfHeader::parse(&out.to_bytes())?)
}

/// Average bitrate of every stream of a file, from its payload bytes over its duration.
pub fn measure_bitrates(path: &Path) -> Result<Vec<(u8, u32)>, MbrError> {
    let mut r = AsfReader::open(path)?;
    let h = r.header().clone();
    let mut bytes = [0u64; 128];
    let (mut first, mut last) = (None, 0u32);
    while let Some(p) = r.next_packet() {
        let p = p?;
        let Ok(parsed) = p.parse() else { continue };
        first.get_or_insert(parsed.send_time);
        last = last.max(parsed.send_time.saturating_add(u32::from(parsed.duration)));
        for pl in &parsed.payloads {
            bytes[usize::from(pl.stream & 0x7F)] += pl.data.len() as u64;
        }
    }
    let span = u64::from(last.saturating_sub(first.unwrap_or(0)));
    let ms = h.file.duration_ms().max(span).max(1);
    Ok(h.streams
        .iter()
        .map(|s| {
            let bps = bytes[usize::from(s.number & 0x7F)] * 8 * 1000 / ms;
            (s.number, u32::try_from(bps).unwrap_or(u32::MAX))
        })
        .collect())
}

/// Writes `output`: `input` with MBR objects for `groups` (the default groups when None) and
/// the measured stream bitrates.
pub fn convert(
    input: &Path,
    output: &Path,
    groups: Option<Vec<Group>>,
) -> Result<MbrReport, MbrError> {
    let reader = AsfReader::open(input)?;
    let old_len = reader.header_bytes().len();
    let header = reader.header().clone();
    drop(reader);
    let groups = groups.unwrap_or_else(|| default_groups(&header));
    if groups.is_empty() {
        return Err(MbrError::Groups(
            "the file has fewer than two video (or audio) streams: nothing to choose between"
                .into(),
        ));
    }
    let bitrates = measure_bitrates(input)?;
    let mut mbr = with_mbr(&header, &groups, &bitrates)?;
    let growth = mbr.to_bytes().len().saturating_sub(old_len);
    if mbr.file.file_size != 0 {
        let mut f = mbr.file.clone();
        f.file_size = f.file_size.saturating_add(growth as u64);
        mbr.set_file_properties(f);
    }
    let mut src = File::open(input)?;
    src.seek(SeekFrom::Start(old_len as u64))?;
    let tmp = output.with_extension("mbr-tmp");
    {
        let mut out = BufWriter::new(File::create(&tmp)?);
        out.write_all(&mbr.to_bytes())?;
        io::copy(&mut src, &mut out)?;
        out.flush()?;
    }
    std::fs::rename(&tmp, output)?;
    Ok(MbrReport {
        groups,
        bitrates,
        header_growth: growth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("station-configs/media/demo.asf")
    }

    #[test]
    fn objects_round_trip_through_the_header_parser() {
        let r = AsfReader::open(&demo()).unwrap();
        let h = r.header();
        let (v, a) = (h.video_streams()[0], 2u8);
        let g = Group {
            kind: guid::MUTEX_BITRATE,
            streams: vec![v, a],
        };
        let m = with_mbr(h, std::slice::from_ref(&g), &[(v, 250_000), (a, 64_000)]).unwrap();
        assert_eq!(m.mutual_exclusions.len(), 1);
        assert_eq!(m.mutual_exclusions[0].exclusion_type, guid::MUTEX_BITRATE);
        assert_eq!(m.mutual_exclusions[0].streams, [u16::from(v), u16::from(a)]);
        assert_eq!(m.stream_bitrate(v), Some(250_000));
        assert_eq!(m.objects.len(), h.objects.len() + 2);
        // Applied twice: replaced, not added again.
        let again = with_mbr(&m, &[g], &[(v, 1)]).unwrap();
        assert_eq!(again.objects.len(), m.objects.len());
        assert_eq!(again.stream_bitrate(v), Some(1));
    }

    #[test]
    fn bad_groups_are_refused() {
        let r = AsfReader::open(&demo()).unwrap();
        let h = r.header();
        let bad = |streams: Vec<u8>| {
            with_mbr(
                h,
                &[Group {
                    kind: guid::MUTEX_BITRATE,
                    streams,
                }],
                &[],
            )
            .is_err()
        };
        assert!(bad(vec![1]), "one stream");
        assert!(bad(vec![1, 9]), "unknown stream");
        assert!(
            default_groups(h).is_empty(),
            "demo.asf has one video stream"
        );
        let dir = std::env::temp_dir().join(format!("asfcast-mbr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            convert(&demo(), &dir.join("x.asf"), None),
            Err(MbrError::Groups(_))
        ));
    }

    #[test]
    fn measured_bitrates_are_near_the_encoder_settings() {
        // demo.asf: wmv2 at 250 kbps, wmav2 at 64 kbps.
        let rates = measure_bitrates(&demo()).unwrap();
        let v = rates.iter().find(|(n, _)| *n == 1).unwrap().1;
        let a = rates.iter().find(|(n, _)| *n == 2).unwrap().1;
        assert!((150_000..400_000).contains(&v), "video {v}");
        assert!((50_000..80_000).contains(&a), "audio {a}");
    }
}
