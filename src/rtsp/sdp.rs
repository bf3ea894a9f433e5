//! The DESCRIBE answer: an SDP (RFC 4566) for one live station in the form Windows Media
//! Services uses ([MS-RTSP] 2.2.1, rtsp-wmsp.md §1.3). It is written directly, a few `write!`s
//! per DESCRIBE, in exactly the form `sdp-types` writes (the tests and the `rtsp_sdp` fuzz
//! target parse it back with `sdp-types`); the header line, as large as the header, is made
//! once per header ([`PgmpuLine`], cached by [`super::sdp_cache`]).
//!
//! What each line is for:
//! - `a=pgmpu:data:application/vnd.ms.wms-hdr.asfv1;base64,…` at session level: the ASF header
//!   (Header Object + 50-byte Data Object head). FFmpeg (in WMS mode) opens its ASF demuxer on it
//!   and matches the prefix exactly; GStreamer's `rtspwms` takes it as the depayloader `config`.
//!   FFmpeg copies SDP lines into a 16 KiB buffer, so headers above about 12 KiB are cut there
//!   ([`Described::fits_ffmpeg`]).
//! - `a=maxps:<packet size>`: GStreamer's `rtpasfdepay` refuses its caps without it and pads
//!   packets to it.
//! - An `m=application … x-wms-rtx/1000` section with control `…/rtx`: FFmpeg's WMS UDP setup
//!   looks for a control URL ending in `/rtx` and fails the whole open without it. It comes
//!   **last**: FFmpeg 5.1's TCP setup skips it, and when it is first the next reply is compared
//!   with a transport never recorded and the open fails with "Invalid data" (rtsp.c,
//!   `ff_rtsp_make_setup_request`, the `i > 0` check). Nothing is ever sent on it.
//! - One `m=audio|video 0 RTP/AVP 96` per ASF audio/video stream, `a=rtpmap:96 x-asf-pf/1000`,
//!   `a=control:<absolute URL>` and `a=stream:<ASF stream number>` (without it FFmpeg delivers
//!   nothing). Other ASF stream kinds (script commands, images) are not offered: FFmpeg
//!   registers x-asf-pf only for audio and video.
//! - `a=range:npt=0-`: live, no duration, not seekable.
//! - Control URLs are absolute, so FFmpeg, GStreamer and VLC resolve them the same way.
//!
//! **Two layouts.** [`Layout::PerStream`] above is what Windows Media Services sends and what
//! FFmpeg and VLC need. GStreamer cannot play it live: `rtspsrc` feeds each media section to its
//! own `rtpasfdepay ! asfdemux`, every demuxer gets the whole header from `a=pgmpu`, and
//! `asfdemux` exposes no pad until *every* stream of that header has data (it only gives up
//! waiting at end of stream) — so with one stream per section nothing plays until the client
//! stops. [`Layout::Aggregate`] is the shape GStreamer's own `rtpasfpay` produces: one
//! `m=application` x-asf-pf section (control `…/all`) whose RTP session carries every stream of
//! the station, so one demuxer sees them all. The session picks it for GStreamer clients
//! (`User-Agent: GStreamer/…`, [`layout_for`]).

use base64::Engine;

use crate::asf::header::StreamKind;
use crate::station::StationHeader;

use super::rtp::PAYLOAD_TYPE;

/// FFmpeg's SDP line buffer (`SDP_MAX_SIZE`), minus the `a=pgmpu:` prefix and line end.
const FFMPEG_LINE_MAX: usize = 16_384 - 64;
const PGMPU_PREFIX: &str = "data:application/vnd.ms.wms-hdr.asfv1;base64,";

/// What a media section of the SDP stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// The x-wms-rtx section (set up, never fed).
    Rtx,
    /// An ASF audio or video stream.
    Asf { stream: u8, video: bool },
    /// Every ASF stream of the station in one RTP session ([`Layout::Aggregate`]).
    All,
}

/// How the station's streams are spread over media sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One section per ASF audio/video stream plus the RTX section (Windows Media Services).
    #[default]
    PerStream,
    /// One section carrying every stream (GStreamer).
    Aggregate,
}

/// The control path segment of the aggregate section.
pub const ALL_CONTROL: &str = "all";

/// The layout a client gets, from its `User-Agent` (GStreamer's `rtspsrc` sends
/// `GStreamer/<version>` unless an application overrides it).
pub fn layout_for(user_agent: Option<&str>) -> Layout {
    match user_agent {
        Some(ua) if ua.trim_start().starts_with("GStreamer") => Layout::Aggregate,
        _ => Layout::PerStream,
    }
}

/// The track a SETUP names by its control segment, in either layout.
pub fn find_track(header: &StationHeader, control: &str) -> Option<Track> {
    tracks(header, Layout::PerStream)
        .into_iter()
        .chain(tracks(header, Layout::Aggregate))
        .find(|t| t.control == control)
}

/// The ASF stream numbers a track carries.
pub fn track_streams(header: &StationHeader, kind: TrackKind) -> Vec<u8> {
    match kind {
        TrackKind::Rtx => Vec::new(),
        TrackKind::Asf { stream, .. } => vec![stream],
        TrackKind::All => {
            let mut n: Vec<u8> = header.header.streams.iter().map(|s| s.number).collect();
            n.sort_unstable();
            n.dedup();
            n
        }
    }
}

/// One media section and its control path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub kind: TrackKind,
    /// The last path segment of its control URL: `rtx` or `stream=<n>`.
    pub control: String,
}

/// The media sections a header is described with in `layout`, in SDP order.
pub fn tracks(header: &StationHeader, layout: Layout) -> Vec<Track> {
    if layout == Layout::Aggregate {
        return vec![Track {
            kind: TrackKind::All,
            control: ALL_CONTROL.into(),
        }];
    }
    let mut out: Vec<Track> = Vec::new();
    for s in &header.header.streams {
        let video = match s.kind {
            StreamKind::Audio => false,
            StreamKind::Video => true,
            _ => continue,
        };
        if out.iter().any(|t| {
            t.kind
                == TrackKind::Asf {
                    stream: s.number,
                    video,
                }
        }) {
            continue;
        }
        out.push(Track {
            kind: TrackKind::Asf {
                stream: s.number,
                video,
            },
            control: format!("stream={}", s.number),
        });
    }
    // Last: FFmpeg's TCP setup skips this section but compares every later reply's transport
    // with the first reply's, so a skipped first section makes it fail ("Invalid data").
    out.push(Track {
        kind: TrackKind::Rtx,
        control: "rtx".into(),
    });
    out
}

/// A DESCRIBE answer.
#[derive(Debug, Clone)]
pub struct Described {
    pub sdp: String,
    /// The `Content-Base:` (base URL with a trailing slash).
    pub content_base: String,
    /// False when FFmpeg would truncate the header line.
    pub fits_ffmpeg: bool,
}

/// The session-level `a=pgmpu:` line of a header (line end included): the ASF header in
/// base64, the one part of the SDP as large as the header itself. It depends on the header
/// bytes alone, so [`super::sdp_cache::SdpCache`] makes it once per header for every
/// client's DESCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgmpuLine {
    line: String,
    fits_ffmpeg: bool,
}

impl PgmpuLine {
    /// Encodes `header`'s bytes.
    pub fn new(header: &StationHeader) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&header.bytes);
        let fits_ffmpeg = b64.len() + PGMPU_PREFIX.len() <= FFMPEG_LINE_MAX;
        PgmpuLine {
            line: format!("a=pgmpu:{PGMPU_PREFIX}{b64}\r\n"),
            fits_ffmpeg,
        }
    }

    /// The line as written into the SDP, `\r\n` included.
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

/// Keeps only printable characters (no line breaks can reach the SDP).
fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// `s` without the characters no SDP line may hold (NUL, CR, LF: RFC 8866 §5), so a value
/// cannot add lines of its own.
fn line_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\0', '\r', '\n']) {
        s.replace(['\0', '\r', '\n'], "").into()
    } else {
        s.into()
    }
}

/// Builds the SDP for `header`, with control URLs under `base` (e.g. `rtsp://host:554/news`,
/// without a trailing slash), in `layout`. `session_id` goes into the origin line.
pub fn describe(
    header: &StationHeader,
    base: &str,
    name: &str,
    session_id: u64,
    layout: Layout,
) -> Described {
    describe_with(
        &PgmpuLine::new(header),
        header,
        base,
        name,
        session_id,
        layout,
    )
}

/// [`describe`] with the header's `a=pgmpu` line made beforehand (`pgmpu` must be
/// `header`'s: [`super::sdp_cache::SdpCache`] keeps that so). Everything else — title,
/// bandwidths, control URLs from the request's URL, the layout, the origin line — is written
/// per call.
pub fn describe_with(
    pgmpu: &PgmpuLine,
    header: &StationHeader,
    base: &str,
    name: &str,
    session_id: u64,
    layout: Layout,
) -> Described {
    use std::fmt::Write;
    let h = &header.header;
    let title = h
        .content
        .as_ref()
        .map(|c| printable(&c.title, 200))
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| printable(name, 200));
    let title = if title.trim().is_empty() { "-" } else { &title };
    let base_text = line_text(base);
    let kbps = |bps: u32| u64::from(bps).div_ceil(1000);
    let mut sdp = String::with_capacity(pgmpu.line.len() + 640);
    // Writing into a String cannot fail. The lines and their order are RFC 4566's (v o s c b
    // t a, then the media sections), as `sdp-types` writes them (the tests check that it
    // reads and writes this text back unchanged).
    let _ = write!(
        sdp,
        "v=0\r\no=- {session_id} {} IN IP4 0.0.0.0\r\ns={title}\r\nc=IN IP4 0.0.0.0\r\n",
        header.generation
    );
    if h.file.max_bitrate > 0 {
        let _ = write!(sdp, "b=AS:{}\r\n", kbps(h.file.max_bitrate));
    }
    let _ = write!(
        sdp,
        "t=0 0\r\na=control:{base_text}\r\na=range:npt=0-\r\na=maxps:{}\r\n",
        h.packet_size()
    );
    sdp.push_str(&pgmpu.line);
    for t in tracks(header, layout) {
        let (media, encoding, extra) = match t.kind {
            TrackKind::Rtx => ("application", "x-wms-rtx", None),
            TrackKind::All => ("application", "x-asf-pf", None),
            TrackKind::Asf { stream, video } => (
                if video { "video" } else { "audio" },
                "x-asf-pf",
                Some(stream),
            ),
        };
        let _ = write!(sdp, "m={media} 0 RTP/AVP {PAYLOAD_TYPE}\r\n");
        let bitrate = match t.kind {
            TrackKind::All => Some(h.file.max_bitrate),
            _ => extra.and_then(|n| h.stream_bitrate(n)),
        };
        if let Some(bps) = bitrate.filter(|b| *b > 0) {
            let _ = write!(sdp, "b=AS:{}\r\n", kbps(bps));
        }
        let _ = write!(
            sdp,
            "a=rtpmap:{PAYLOAD_TYPE} {encoding}/1000\r\na=control:{base_text}/{}\r\n",
            t.control
        );
        if let Some(n) = extra {
            let _ = write!(sdp, "a=stream:{n}\r\n");
        }
    }
    Described {
        sdp,
        content_base: format!("{base}/"),
        fits_ffmpeg: pgmpu.fits_ffmpeg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asf::{AsfHeader, DataHead};

    #[test]
    fn request_text_cannot_add_lines_to_the_sdp() {
        let path = format!(
            "{}/station-configs/media/demo.asf",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::read(path).unwrap();
        let size = u64::from_le_bytes(file[16..24].try_into().unwrap()) as usize;
        let mut h = AsfHeader::parse(&file[..size]).unwrap();
        h.content = None;
        let sh = StationHeader::live(1, &h, &DataHead::broadcast(h.file.file_id), 1);
        let base = "rtsp://h/demo\r\na=evil:1\0\n";
        let d = describe(&sh, base, "na\r\nme", 1, Layout::PerStream);
        assert!(!d.sdp.contains("\na=evil"), "{}", d.sdp);
        assert!(!d.sdp.contains('\0'), "{}", d.sdp);
        assert!(d.sdp.contains("\r\ns=name\r\n"), "{}", d.sdp);
        assert!(
            d.sdp.contains("a=control:rtsp://h/demoa=evil:1\r\n"),
            "{}",
            d.sdp
        );
        // Every line ends with CRLF, none is empty.
        let body = d.sdp.strip_suffix("\r\n").expect("ends with CRLF");
        assert!(body
            .split("\r\n")
            .all(|l| !l.is_empty() && !l.contains(['\r', '\n'])));
    }
}
