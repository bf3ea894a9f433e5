//! The ASF Header Object (§1.2–§1.12): parsing the objects a server needs, keeping every object
//! byte-for-byte, and rewriting the header for live broadcast (§2.1).
//!
//! The header is held as its list of child objects in their original bytes, plus parsed views of
//! the ones we understand. Serialising concatenates the children again, so unknown objects
//! (Extended Content Description, Metadata, DRM, …) pass through untouched. Edits patch the bytes
//! of the one object they change.
//!
//! Real-world notes: ffmpeg walks objects until the Data Object and never checks the child count;
//! VLC recurses into the Header Extension. We check every object size against its parent and
//! require min == max packet size (VLC treats a mismatch as fatal, §7).

use super::bytes::Cursor;
use super::guid::{self, Guid};
use super::{AsfError, DATA_HEAD_LEN, MAX_PACKET_SIZE};

/// The size of the Header Object's own fields before its children.
pub const HEADER_HEAD_LEN: usize = 30;
/// The largest Header Object we accept (MS-WMSP allows headers above 64 KiB; real ones are a
/// few KiB, plus album art). Bounds the buffer a reader allocates before parsing.
pub const MAX_HEADER_LEN: u64 = 16 * 1024 * 1024;
const OBJECT_HEAD_LEN: usize = 24;

/// One child object of the Header Object, kept as its exact bytes (24-byte head included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderObject {
    pub guid: Guid,
    pub bytes: Vec<u8>,
}

/// File Properties Object (§1.3). Times are in 100 ns units except `preroll_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProperties {
    pub file_id: Guid,
    pub file_size: u64,
    pub creation_date: u64,
    pub data_packets: u64,
    pub play_duration: u64,
    pub send_duration: u64,
    pub preroll_ms: u64,
    pub flags: u32,
    pub min_packet_size: u32,
    pub max_packet_size: u32,
    pub max_bitrate: u32,
}

impl FileProperties {
    pub const FLAG_BROADCAST: u32 = 0x1;
    pub const FLAG_SEEKABLE: u32 = 0x2;
    const LEN: usize = 104;

    pub fn is_broadcast(&self) -> bool {
        self.flags & Self::FLAG_BROADCAST != 0
    }

    pub fn is_seekable(&self) -> bool {
        self.flags & Self::FLAG_SEEKABLE != 0
    }

    /// Play duration without the preroll, in milliseconds (0 when unknown or broadcast).
    pub fn duration_ms(&self) -> u64 {
        if self.is_broadcast() {
            return 0;
        }
        (self.play_duration / 10_000).saturating_sub(self.preroll_ms)
    }

    fn parse(obj: &[u8], base: usize) -> Result<Self, AsfError> {
        let mut c = Cursor::with_base(obj, base);
        c.skip(OBJECT_HEAD_LEN, "File Properties head")?;
        Ok(FileProperties {
            file_id: c.guid("File Properties file id")?,
            file_size: c.u64("File Properties file size")?,
            creation_date: c.u64("File Properties creation date")?,
            data_packets: c.u64("File Properties data packets count")?,
            play_duration: c.u64("File Properties play duration")?,
            send_duration: c.u64("File Properties send duration")?,
            preroll_ms: c.u64("File Properties preroll")?,
            flags: c.u32("File Properties flags")?,
            min_packet_size: c.u32("File Properties min packet size")?,
            max_packet_size: c.u32("File Properties max packet size")?,
            max_bitrate: c.u32("File Properties max bitrate")?,
        })
    }

    /// Writes the fields back over an existing object's bytes (which are at least 104 long).
    fn patch(&self, obj: &mut [u8]) {
        let mut at = OBJECT_HEAD_LEN;
        let mut put = |b: &[u8]| {
            obj[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        put(&self.file_id.0);
        put(&self.file_size.to_le_bytes());
        put(&self.creation_date.to_le_bytes());
        put(&self.data_packets.to_le_bytes());
        put(&self.play_duration.to_le_bytes());
        put(&self.send_duration.to_le_bytes());
        put(&self.preroll_ms.to_le_bytes());
        put(&self.flags.to_le_bytes());
        put(&self.min_packet_size.to_le_bytes());
        put(&self.max_packet_size.to_le_bytes());
        put(&self.max_bitrate.to_le_bytes());
    }
}

/// What a stream carries (Stream Properties' Stream Type GUID, §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Audio,
    Video,
    Command,
    Jfif,
    /// The dvr-ms "extended stream type" header.
    Extended,
    Other(Guid),
}

impl StreamKind {
    fn from_guid(g: Guid) -> Self {
        match g {
            guid::AUDIO_MEDIA => StreamKind::Audio,
            guid::VIDEO_MEDIA => StreamKind::Video,
            guid::COMMAND_MEDIA => StreamKind::Command,
            guid::JFIF_MEDIA => StreamKind::Jfif,
            guid::EXTENDED_STREAM_TYPE_HEADER => StreamKind::Extended,
            other => StreamKind::Other(other),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            StreamKind::Audio => "audio",
            StreamKind::Video => "video",
            StreamKind::Command => "command",
            StreamKind::Jfif => "jfif",
            StreamKind::Extended => "extended",
            StreamKind::Other(_) => "other",
        }
    }
}

/// The audio format from a WAVEFORMATEX (audio type-specific data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFormat {
    pub format_tag: u16,
    pub channels: u16,
    pub sample_rate: u32,
    pub avg_bytes_per_sec: u32,
    pub block_align: u16,
    pub bits_per_sample: u16,
}

impl AudioFormat {
    /// The codec's usual short name, from the WAVE format tag.
    pub fn codec_name(&self) -> String {
        match self.format_tag {
            0x0001 => "pcm".into(),
            0x0055 => "mp3".into(),
            0x000A => "wmavoice".into(),
            0x0160 => "wmav1".into(),
            0x0161 => "wmav2".into(),
            0x0162 => "wmapro".into(),
            0x0163 => "wmalossless".into(),
            t => format!("0x{t:04x}"),
        }
    }
}

/// The video format from the video type-specific data and its BITMAPINFOHEADER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fourcc: [u8; 4],
    pub bit_count: u16,
}

impl VideoFormat {
    /// The FourCC as text (`WMV2`, `MP43`, …), non-printable bytes as `?`.
    pub fn fourcc_str(&self) -> String {
        self.fourcc
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect()
    }
}

/// Stream Properties Object (§1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamProperties {
    /// Stream number, 1..=127.
    pub number: u8,
    pub kind: StreamKind,
    pub error_correction: Guid,
    pub time_offset: u64,
    pub encrypted: bool,
    pub type_specific: Vec<u8>,
    pub error_correction_data: Vec<u8>,
    /// Declared inside an Extended Stream Properties object ("hidden" from old readers).
    pub embedded: bool,
}

impl StreamProperties {
    fn parse(obj: &[u8], base: usize, embedded: bool) -> Result<Self, AsfError> {
        let mut c = Cursor::with_base(obj, base);
        c.skip(OBJECT_HEAD_LEN, "Stream Properties head")?;
        let kind = StreamKind::from_guid(c.guid("Stream Properties stream type")?);
        let error_correction = c.guid("Stream Properties error correction type")?;
        let time_offset = c.u64("Stream Properties time offset")?;
        let ts_len = c.u32("Stream Properties type-specific length")? as usize;
        let ec_len = c.u32("Stream Properties error correction length")? as usize;
        let flags_at = c.offset();
        let flags = c.u16("Stream Properties flags")?;
        c.skip(4, "Stream Properties reserved")?;
        let type_specific = c
            .take(ts_len, "Stream Properties type-specific data")?
            .to_vec();
        let error_correction_data = c
            .take(ec_len, "Stream Properties error correction data")?
            .to_vec();
        let number = (flags & 0x7F) as u8;
        if number == 0 {
            return Err(AsfError::invalid(
                "Stream Properties",
                flags_at,
                "stream number 0 (valid: 1..127)",
            ));
        }
        Ok(StreamProperties {
            number,
            kind,
            error_correction,
            time_offset,
            encrypted: flags & 0x8000 != 0,
            type_specific,
            error_correction_data,
            embedded,
        })
    }

    /// The WAVEFORMATEX of an audio stream (None when not audio or too short).
    pub fn audio(&self) -> Option<AudioFormat> {
        if self.kind != StreamKind::Audio {
            return None;
        }
        let mut c = Cursor::new(&self.type_specific);
        Some(AudioFormat {
            format_tag: c.u16("").ok()?,
            channels: c.u16("").ok()?,
            sample_rate: c.u32("").ok()?,
            avg_bytes_per_sec: c.u32("").ok()?,
            block_align: c.u16("").ok()?,
            bits_per_sample: c.u16("").ok()?,
        })
    }

    /// The picture format of a video stream (None when not video or too short).
    pub fn video(&self) -> Option<VideoFormat> {
        if self.kind != StreamKind::Video {
            return None;
        }
        let mut c = Cursor::new(&self.type_specific);
        let width = c.u32("").ok()?;
        let height = c.u32("").ok()?;
        c.skip(1 + 2, "").ok()?; // reserved flags, format data size
        c.skip(4 + 4 + 4 + 2, "").ok()?; // biSize, biWidth, biHeight, biPlanes
        let bit_count = c.u16("").ok()?;
        let fourcc: [u8; 4] = c.take(4, "").ok()?.try_into().ok()?;
        Some(VideoFormat {
            width,
            height,
            fourcc,
            bit_count,
        })
    }

    /// A short codec name for humans (`wmv2`, `wmav2`, …).
    pub fn codec_name(&self) -> String {
        if let Some(a) = self.audio() {
            a.codec_name()
        } else if let Some(v) = self.video() {
            v.fourcc_str().to_ascii_lowercase()
        } else {
            self.kind.as_str().to_string()
        }
    }
}

/// Extended Stream Properties Object (§1.6), inside the Header Extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedStreamProperties {
    pub start_time_ms: u64,
    pub end_time_ms: u64,
    pub data_bitrate: u32,
    pub buffer_size_ms: u32,
    pub initial_buffer_fullness_ms: u32,
    pub max_object_size: u32,
    pub flags: u32,
    pub stream_number: u16,
    pub language_index: u16,
    pub avg_time_per_frame: u64,
    /// Payload extension systems: (system GUID, data size; 0xFFFF = variable).
    pub payload_extensions: Vec<(Guid, u16)>,
}

impl ExtendedStreamProperties {
    /// "No Cleanpoints": the stream has no key frames to wait for.
    pub const FLAG_NO_CLEANPOINTS: u32 = 0x4;

    /// Parses the object; also returns an embedded Stream Properties Object if one follows.
    fn parse(obj: &[u8], base: usize) -> Result<(Self, Option<StreamProperties>), AsfError> {
        let mut c = Cursor::with_base(obj, base);
        c.skip(OBJECT_HEAD_LEN, "Extended Stream Properties head")?;
        let start_time_ms = c.u64("Extended Stream Properties start time")?;
        let end_time_ms = c.u64("Extended Stream Properties end time")?;
        let data_bitrate = c.u32("Extended Stream Properties data bitrate")?;
        let buffer_size_ms = c.u32("Extended Stream Properties buffer size")?;
        let initial_buffer_fullness_ms = c.u32("Extended Stream Properties buffer fullness")?;
        c.skip(12, "Extended Stream Properties alternate values")?;
        let max_object_size = c.u32("Extended Stream Properties max object size")?;
        let flags = c.u32("Extended Stream Properties flags")?;
        let stream_number = c.u16("Extended Stream Properties stream number")?;
        let language_index = c.u16("Extended Stream Properties language index")?;
        let avg_time_per_frame = c.u64("Extended Stream Properties time per frame")?;
        let name_count = c.u16("Extended Stream Properties name count")?;
        let ext_count = c.u16("Extended Stream Properties extension count")?;
        for _ in 0..name_count {
            c.skip(2, "Extended Stream Properties name language")?;
            let len = c.u16("Extended Stream Properties name length")?;
            c.skip(len as usize, "Extended Stream Properties name")?;
        }
        let mut payload_extensions = Vec::new();
        for _ in 0..ext_count {
            let id = c.guid("payload extension system id")?;
            let size = c.u16("payload extension data size")?;
            let info_len = c.u32("payload extension info length")?;
            c.skip(info_len as usize, "payload extension info")?;
            payload_extensions.push((id, size));
        }
        let mut embedded = None;
        if c.remaining() >= OBJECT_HEAD_LEN {
            let at = c.pos();
            let rest = &obj[at..];
            let (g, size) = object_head(rest, base + at, "embedded Stream Properties")?;
            if g == guid::STREAM_PROPERTIES {
                let sp_bytes = checked_slice(rest, size, base + at, "embedded Stream Properties")?;
                embedded = Some(StreamProperties::parse(sp_bytes, base + at, true)?);
            }
        }
        Ok((
            ExtendedStreamProperties {
                start_time_ms,
                end_time_ms,
                data_bitrate,
                buffer_size_ms,
                initial_buffer_fullness_ms,
                max_object_size,
                flags,
                stream_number,
                language_index,
                avg_time_per_frame,
                payload_extensions,
            },
            embedded,
        ))
    }
}

/// Bitrate Mutual Exclusion (§1.8) or Advanced Mutual Exclusion: streams of which a client plays
/// exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualExclusion {
    pub exclusion_type: Guid,
    pub streams: Vec<u16>,
}

impl MutualExclusion {
    fn parse(obj: &[u8], base: usize) -> Result<Self, AsfError> {
        let mut c = Cursor::with_base(obj, base);
        c.skip(OBJECT_HEAD_LEN, "Mutual Exclusion head")?;
        let exclusion_type = c.guid("Mutual Exclusion type")?;
        let n = c.u16("Mutual Exclusion stream count")?;
        let mut streams = Vec::new();
        for _ in 0..n {
            streams.push(c.u16("Mutual Exclusion stream number")?);
        }
        Ok(MutualExclusion {
            exclusion_type,
            streams,
        })
    }
}

/// Content Description (§1.11): five UTF-16LE strings with byte lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentDescription {
    pub title: String,
    pub author: String,
    pub copyright: String,
    pub description: String,
    pub rating: String,
}

impl ContentDescription {
    fn parse(obj: &[u8], base: usize) -> Result<Self, AsfError> {
        let mut c = Cursor::with_base(obj, base);
        c.skip(OBJECT_HEAD_LEN, "Content Description head")?;
        let mut lens = [0usize; 5];
        for l in lens.iter_mut() {
            *l = c.u16("Content Description length")? as usize;
        }
        let mut s = [(); 5].map(|_| String::new());
        for (i, l) in lens.iter().enumerate() {
            s[i] = utf16le(c.take(*l, "Content Description string")?);
        }
        let [title, author, copyright, description, rating] = s;
        Ok(ContentDescription {
            title,
            author,
            copyright,
            description,
            rating,
        })
    }
}

/// One Codec List entry (§1.10). Lengths of name/description are in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecEntry {
    /// 1 = video, 2 = audio, 0xFFFF = unknown.
    pub codec_type: u16,
    pub name: String,
    pub description: String,
    pub information: Vec<u8>,
}

fn parse_codec_list(obj: &[u8], base: usize) -> Result<Vec<CodecEntry>, AsfError> {
    let mut c = Cursor::with_base(obj, base);
    c.skip(OBJECT_HEAD_LEN + 16, "Codec List head")?;
    let n = c.u32("Codec List entry count")?;
    let mut out = Vec::new();
    for _ in 0..n {
        let codec_type = c.u16("Codec List entry type")?;
        let name_chars = c.u16("Codec List name length")? as usize;
        let name = utf16le(c.take(name_chars * 2, "Codec List name")?);
        let desc_chars = c.u16("Codec List description length")? as usize;
        let description = utf16le(c.take(desc_chars * 2, "Codec List description")?);
        let info_len = c.u16("Codec List information length")? as usize;
        let information = c.take(info_len, "Codec List information")?.to_vec();
        out.push(CodecEntry {
            codec_type,
            name,
            description,
            information,
        });
    }
    Ok(out)
}

fn parse_stream_bitrates(obj: &[u8], base: usize) -> Result<Vec<(u8, u32)>, AsfError> {
    let mut c = Cursor::with_base(obj, base);
    c.skip(OBJECT_HEAD_LEN, "Stream Bitrate Properties head")?;
    let n = c.u16("Stream Bitrate Properties record count")?;
    let mut out = Vec::new();
    for _ in 0..n {
        let flags = c.u16("Stream Bitrate Properties flags")?;
        let bitrate = c.u32("Stream Bitrate Properties average bitrate")?;
        out.push(((flags & 0x7F) as u8, bitrate));
    }
    Ok(out)
}

/// Decodes UTF-16LE, dropping trailing NULs; an odd trailing byte is ignored.
pub fn utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches('\0')
        .to_string()
}

/// Reads an object's GUID and size, checking the size is at least the 24-byte head.
fn object_head(buf: &[u8], base: usize, what: &'static str) -> Result<(Guid, u64), AsfError> {
    let mut c = Cursor::with_base(buf, base);
    let g = c.guid(what)?;
    let size = c.u64(what)?;
    if size < OBJECT_HEAD_LEN as u64 {
        return Err(AsfError::ObjectSize {
            what,
            offset: base,
            size,
            min: OBJECT_HEAD_LEN as u64,
            room: buf.len() as u64,
        });
    }
    Ok((g, size))
}

/// The first `size` bytes of `buf`, or an error naming the object when they are not there.
fn checked_slice<'a>(
    buf: &'a [u8],
    size: u64,
    base: usize,
    what: &'static str,
) -> Result<&'a [u8], AsfError> {
    if size > buf.len() as u64 {
        return Err(AsfError::ObjectSize {
            what,
            offset: base,
            size,
            min: OBJECT_HEAD_LEN as u64,
            room: buf.len() as u64,
        });
    }
    Ok(&buf[..size as usize])
}

/// (guid, offset in the parent buffer, the object's bytes).
type ChildObject<'a> = (Guid, usize, &'a [u8]);

/// Splits a run of objects into (guid, offset-in-buf, bytes). Every size is checked against
/// the room left in the parent.
fn walk_objects<'a>(
    buf: &'a [u8],
    base: usize,
    what: &'static str,
) -> Result<Vec<ChildObject<'a>>, AsfError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let rest = &buf[at..];
        let (g, size) = object_head(rest, base + at, what)?;
        let obj = checked_slice(rest, size, base + at, what)?;
        out.push((g, at, obj));
        at += obj.len();
    }
    Ok(out)
}

/// A parsed ASF Header Object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsfHeader {
    pub reserved1: u8,
    pub reserved2: u8,
    /// Every child object in order, byte-for-byte.
    pub objects: Vec<HeaderObject>,
    pub file: FileProperties,
    /// Stream Properties, top-level first, then those embedded in Extended Stream Properties.
    pub streams: Vec<StreamProperties>,
    pub extended_streams: Vec<ExtendedStreamProperties>,
    /// (stream number, average bitrate in bps) from Stream Bitrate Properties.
    pub stream_bitrates: Vec<(u8, u32)>,
    pub mutual_exclusions: Vec<MutualExclusion>,
    pub content: Option<ContentDescription>,
    pub codecs: Vec<CodecEntry>,
}

impl AsfHeader {
    /// Parses a whole Header Object (`buf` holds exactly the object; extra bytes are an error).
    pub fn parse(buf: &[u8]) -> Result<AsfHeader, AsfError> {
        let mut c = Cursor::new(buf);
        c.expect_guid(guid::HEADER, "Header Object")?;
        let size = c.u64("Header Object size")?;
        if size < HEADER_HEAD_LEN as u64 || size != buf.len() as u64 {
            return Err(AsfError::ObjectSize {
                what: "Header Object",
                offset: 0,
                size,
                min: HEADER_HEAD_LEN as u64,
                room: buf.len() as u64,
            });
        }
        let _count = c.u32("Header Object child count")?;
        let reserved1 = c.u8("Header Object reserved1")?;
        let reserved2 = c.u8("Header Object reserved2")?;

        let mut objects = Vec::new();
        let mut file = None;
        let mut streams = Vec::new();
        let mut embedded_streams = Vec::new();
        let mut extended_streams = Vec::new();
        let mut stream_bitrates = Vec::new();
        let mut mutual_exclusions = Vec::new();
        let mut content = None;
        let mut codecs = Vec::new();

        let children = &buf[HEADER_HEAD_LEN..];
        for (g, at, obj) in walk_objects(children, HEADER_HEAD_LEN, "header child object")? {
            let base = HEADER_HEAD_LEN + at;
            match g {
                guid::FILE_PROPERTIES => {
                    if obj.len() < FileProperties::LEN {
                        return Err(AsfError::ObjectSize {
                            what: "File Properties",
                            offset: base,
                            size: obj.len() as u64,
                            min: FileProperties::LEN as u64,
                            room: obj.len() as u64,
                        });
                    }
                    file = Some(FileProperties::parse(obj, base)?);
                }
                guid::STREAM_PROPERTIES => streams.push(StreamProperties::parse(obj, base, false)?),
                guid::HEADER_EXTENSION => {
                    let (ext, embedded) = parse_header_extension(obj, base)?;
                    extended_streams.extend(ext);
                    embedded_streams.extend(embedded);
                }
                guid::STREAM_BITRATE_PROPERTIES => {
                    stream_bitrates = parse_stream_bitrates(obj, base)?
                }
                guid::BITRATE_MUTUAL_EXCLUSION => {
                    mutual_exclusions.push(MutualExclusion::parse(obj, base)?)
                }
                guid::CONTENT_DESCRIPTION => content = Some(ContentDescription::parse(obj, base)?),
                guid::CODEC_LIST => codecs = parse_codec_list(obj, base)?,
                _ => {}
            }
            objects.push(HeaderObject {
                guid: g,
                bytes: obj.to_vec(),
            });
        }
        let file =
            file.ok_or_else(|| AsfError::invalid("Header Object", 0, "no File Properties Object"))?;
        check_packet_size(&file)?;
        // An embedded Stream Properties only counts when no top-level one has that number.
        for sp in embedded_streams {
            if !streams.iter().any(|s| s.number == sp.number) {
                streams.push(sp);
            }
        }
        for (i, s) in streams.iter().enumerate() {
            if streams[..i].iter().any(|o| o.number == s.number) {
                return Err(AsfError::invalid(
                    "Stream Properties",
                    0,
                    format!("stream number {} declared twice", s.number),
                ));
            }
        }
        Ok(AsfHeader {
            reserved1,
            reserved2,
            objects,
            file,
            streams,
            extended_streams,
            stream_bitrates,
            mutual_exclusions,
            content,
            codecs,
        })
    }

    /// The fixed data packet size (min == max, checked at parse time).
    pub fn packet_size(&self) -> u32 {
        self.file.max_packet_size
    }

    pub fn stream(&self, number: u8) -> Option<&StreamProperties> {
        self.streams.iter().find(|s| s.number == number)
    }

    /// Stream numbers of the video streams.
    pub fn video_streams(&self) -> Vec<u8> {
        self.streams
            .iter()
            .filter(|s| s.kind == StreamKind::Video)
            .map(|s| s.number)
            .collect()
    }

    /// Streams a joiner must wait for a key frame on: video streams whose Extended Stream
    /// Properties do not say "No Cleanpoints". Audio and everything else is always clean
    /// (ffmpeg never marks audio payloads as key frames, asf.md §3.4).
    pub fn clean_point_streams(&self) -> Vec<u8> {
        self.streams
            .iter()
            .filter(|s| s.kind == StreamKind::Video)
            .filter(|s| {
                !self.extended_streams.iter().any(|e| {
                    e.stream_number == u16::from(s.number)
                        && e.flags & ExtendedStreamProperties::FLAG_NO_CLEANPOINTS != 0
                })
            })
            .map(|s| s.number)
            .collect()
    }

    /// The best known average bitrate of a stream in bps: Stream Bitrate Properties, then
    /// Extended Stream Properties, then (audio) the WAVEFORMATEX byte rate.
    pub fn stream_bitrate(&self, number: u8) -> Option<u32> {
        if let Some((_, b)) = self.stream_bitrates.iter().find(|(n, _)| *n == number) {
            return Some(*b);
        }
        if let Some(e) = self
            .extended_streams
            .iter()
            .find(|e| e.stream_number == u16::from(number))
        {
            if e.data_bitrate > 0 {
                return Some(e.data_bitrate);
            }
        }
        self.stream(number)
            .and_then(|s| s.audio())
            .map(|a| a.avg_bytes_per_sec.saturating_mul(8))
    }

    /// Serialises the Header Object from its children.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body: usize = self.objects.iter().map(|o| o.bytes.len()).sum();
        let mut out = Vec::with_capacity(HEADER_HEAD_LEN + body);
        out.extend_from_slice(&guid::HEADER.0);
        out.extend_from_slice(&((HEADER_HEAD_LEN + body) as u64).to_le_bytes());
        out.extend_from_slice(&(self.objects.len() as u32).to_le_bytes());
        out.push(self.reserved1);
        out.push(self.reserved2);
        for o in &self.objects {
            out.extend_from_slice(&o.bytes);
        }
        out
    }

    /// Replaces the File Properties (view and bytes).
    pub fn set_file_properties(&mut self, file: FileProperties) {
        for o in &mut self.objects {
            if o.guid == guid::FILE_PROPERTIES {
                file.patch(&mut o.bytes);
            }
        }
        self.file = file;
    }

    /// The header a live broadcast announces (§2.1): Broadcast on, Seekable off, file size,
    /// packet count and durations zeroed; preroll, packet size and max bitrate kept.
    pub fn to_broadcast(&self) -> AsfHeader {
        let mut h = self.clone();
        let mut f = h.file.clone();
        f.flags = (f.flags | FileProperties::FLAG_BROADCAST) & !FileProperties::FLAG_SEEKABLE;
        f.file_size = 0;
        f.data_packets = 0;
        f.play_duration = 0;
        f.send_duration = 0;
        h.set_file_properties(f);
        h
    }

    /// Pads the Header Object with a Padding Object (\[ASF\] §3.14) to a whole number of
    /// `step` bytes (at least one Padding Object head more when it is short of it). Headers of
    /// different sources in one format then have the same length, which MMSH clients need to
    /// take a mid-stream header change ([`crate::http::mmsh_stream`]: a new header may not be
    /// longer than the first). Padding Objects already there are dropped first.
    pub fn pad_to_step(&mut self, step: usize) {
        const OBJECT_HEAD: usize = 24;
        self.objects.retain(|o| o.guid != guid::PADDING);
        let len = self.to_bytes().len();
        let step = step.max(OBJECT_HEAD);
        let mut target = len.div_ceil(step) * step;
        if target - len < OBJECT_HEAD && target != len {
            target += step;
        }
        if target == len {
            return;
        }
        let pad = target - len;
        let mut bytes = Vec::with_capacity(pad);
        bytes.extend_from_slice(&guid::PADDING.0);
        bytes.extend_from_slice(&(pad as u64).to_le_bytes());
        bytes.resize(pad, 0);
        self.objects.push(HeaderObject {
            guid: guid::PADDING,
            bytes,
        });
    }

    /// Header Object + 50-byte Data Object head: the "ASF header" every streaming protocol
    /// sends (MS-MMSP 2.2.2, MSB .nsc Format, MMSH `$H`, RTSP `pgmpu`).
    pub fn stream_header_bytes(&self, data: &DataHead) -> Vec<u8> {
        let mut out = self.to_bytes();
        out.extend_from_slice(&data.to_bytes());
        out
    }
}

fn check_packet_size(f: &FileProperties) -> Result<(), AsfError> {
    if f.min_packet_size != f.max_packet_size {
        return Err(AsfError::invalid(
            "File Properties",
            0,
            format!(
                "min packet size {} differs from max packet size {} (variable-size packets are not supported)",
                f.min_packet_size, f.max_packet_size
            ),
        ));
    }
    // 24 bytes is the smallest packet that holds the packet head and one payload head.
    if f.max_packet_size < 24 || f.max_packet_size > MAX_PACKET_SIZE {
        return Err(AsfError::invalid(
            "File Properties",
            0,
            format!(
                "packet size {} is out of range 24..={MAX_PACKET_SIZE}",
                f.max_packet_size
            ),
        ));
    }
    Ok(())
}

type HeaderExtensionParts = (Vec<ExtendedStreamProperties>, Vec<StreamProperties>);

fn parse_header_extension(obj: &[u8], base: usize) -> Result<HeaderExtensionParts, AsfError> {
    let mut c = Cursor::with_base(obj, base);
    c.skip(OBJECT_HEAD_LEN, "Header Extension head")?;
    c.skip(16 + 2, "Header Extension reserved fields")?;
    let data_size = c.u32("Header Extension data size")? as usize;
    let data_at = c.pos();
    if data_size > c.remaining() {
        return Err(AsfError::ObjectSize {
            what: "Header Extension data",
            offset: base + data_at,
            size: data_size as u64,
            min: 0,
            room: c.remaining() as u64,
        });
    }
    let data = &obj[data_at..data_at + data_size];
    let mut ext = Vec::new();
    let mut embedded = Vec::new();
    for (g, at, o) in walk_objects(data, base + data_at, "header extension object")? {
        if g == guid::EXTENDED_STREAM_PROPERTIES {
            let (e, sp) = ExtendedStreamProperties::parse(o, base + data_at + at)?;
            ext.push(e);
            embedded.extend(sp);
        } else if g == guid::ADVANCED_MUTUAL_EXCLUSION {
            // Same layout as Bitrate Mutual Exclusion; parsed only to validate it.
            MutualExclusion::parse(o, base + data_at + at)?;
        }
    }
    Ok((ext, embedded))
}

/// The fixed 50-byte head of the Data Object (§1.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataHead {
    pub size: u64,
    pub file_id: Guid,
    pub total_packets: u64,
    pub reserved: u16,
}

impl DataHead {
    pub fn parse(buf: &[u8]) -> Result<DataHead, AsfError> {
        let mut c = Cursor::new(buf);
        c.expect_guid(guid::DATA, "Data Object")?;
        Ok(DataHead {
            size: c.u64("Data Object size")?,
            file_id: c.guid("Data Object file id")?,
            total_packets: c.u64("Data Object total packets")?,
            reserved: c.u16("Data Object reserved")?,
        })
    }

    /// The head a live broadcast sends: size 50 and no packet count, as ffmpeg's streaming
    /// muxer writes it (ffmpeg and VLC both then read to the end of the stream, asf.md §2.1).
    pub fn broadcast(file_id: Guid) -> DataHead {
        DataHead {
            size: DATA_HEAD_LEN as u64,
            file_id,
            total_packets: 0,
            reserved: 0x0101,
        }
    }

    /// A head for a file of `packets` packets of `packet_size` bytes.
    pub fn for_file(file_id: Guid, packets: u64, packet_size: u32) -> DataHead {
        DataHead {
            size: DATA_HEAD_LEN as u64 + packets * u64::from(packet_size),
            file_id,
            total_packets: packets,
            reserved: 0x0101,
        }
    }

    pub fn to_bytes(&self) -> [u8; DATA_HEAD_LEN] {
        let mut out = [0u8; DATA_HEAD_LEN];
        out[..16].copy_from_slice(&guid::DATA.0);
        out[16..24].copy_from_slice(&self.size.to_le_bytes());
        out[24..40].copy_from_slice(&self.file_id.0);
        out[40..48].copy_from_slice(&self.total_packets.to_le_bytes());
        out[48..50].copy_from_slice(&self.reserved.to_le_bytes());
        out
    }
}
