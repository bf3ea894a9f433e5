//! A streaming ASF file reader: the header first, then one fixed-size data packet at a time with
//! its send time, never the whole file in memory.
//!
//! It reads the Header Object (bounded by [`MAX_HEADER_LEN`]), skips any other top-level
//! objects up to the Data Object, reads the 50-byte Data Object head, and then yields packets of
//! the header's packet size. It stops at the end of the Data Object when the header states a
//! usable size (so index objects are never read as packets) and otherwise at end of file, as
//! ffmpeg does for broadcast dumps (asf.md §7). A packet that does not parse is reported with its
//! index and file offset, and reading goes on with the next one; a file cut inside a packet ends
//! with a [`ReadError::Truncated`].
//!
//! It also reads files in MMS-over-HTTP framing (ffmpeg's `asf_stream` muxer, or a capture of an
//! MMSH session): `$H` chunks carry the header, each `$D` chunk one packet, which is zero-padded
//! back to the packet size as ffmpeg's and VLC's MMSH clients do (rtsp-wmsp.md §3.3).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::guid;
use super::header::{AsfHeader, DataHead, HEADER_HEAD_LEN, MAX_HEADER_LEN};
use super::packet::Packet;
use super::{AsfError, DATA_HEAD_LEN};

/// Errors while reading an ASF file, each with where in the file it happened.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read error at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not an ASF file: {0}")]
    NotAsf(String),
    #[error("bad ASF header: {0}")]
    Header(#[source] AsfError),
    #[error("file ends inside {what} at byte {offset}: got {got} of {need} bytes")]
    Truncated {
        what: String,
        offset: u64,
        got: usize,
        need: usize,
    },
    #[error("bad data packet {index} at byte {offset}: {source}")]
    Packet {
        index: u64,
        offset: u64,
        #[source]
        source: AsfError,
    },
}

/// One data packet as read from the file (full fixed size, padding included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderPacket {
    /// Packet number in the Data Object, from 0.
    pub index: u64,
    /// Byte offset of the packet in the file.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Send time in ms.
    pub send_time: u32,
    /// Duration in ms.
    pub duration: u16,
}

impl ReaderPacket {
    pub fn parse(&self) -> Result<Packet<'_>, AsfError> {
        Packet::parse(&self.bytes)
    }
}

/// Reads an ASF stream packet by packet.
pub struct AsfReader<R> {
    inner: R,
    header: AsfHeader,
    header_bytes: Vec<u8>,
    data: DataHead,
    packet_size: usize,
    next_index: u64,
    offset: u64,
    /// Number of packets the Data Object holds, when its size can be trusted.
    limit: Option<u64>,
    /// The file is in MMSH chunk framing.
    chunked: bool,
    done: bool,
}

/// MMSH chunk types (`$H`, `$D`, `$E` as little-endian u16).
const CHUNK_HEADER: u16 = 0x4824;
const CHUNK_DATA: u16 = 0x4424;
const CHUNK_END: u16 = 0x4524;

/// Reads one MMSH chunk: 4-byte framing, then (for `$H`/`$D`) the 8-byte MMS data header, then
/// the body. Returns None at a clean end of file. The body is bounded by the 16-bit length.
fn read_chunk<R: Read>(r: &mut R, offset: u64) -> Result<Option<(u16, Vec<u8>)>, ReadError> {
    let mut head = [0u8; 4];
    let got = read_full(r, &mut head, offset)?;
    if got == 0 {
        return Ok(None);
    }
    if got < 4 {
        return Err(ReadError::Truncated {
            what: "an MMSH chunk head".into(),
            offset,
            got,
            need: 4,
        });
    }
    let kind = u16::from_le_bytes([head[0], head[1]]);
    let len = u16::from_le_bytes([head[2], head[3]]) as usize;
    let mut body = vec![0u8; len];
    read_exact_or_truncated(r, &mut body, offset + 4, "an MMSH chunk")?;
    if kind == CHUNK_HEADER || kind == CHUNK_DATA {
        if len < 8 {
            return Err(ReadError::NotAsf(format!(
                "MMSH chunk at byte {offset} is {len} bytes, shorter than its 8-byte data header"
            )));
        }
        body.drain(..8);
    }
    Ok(Some((kind, body)))
}

impl AsfReader<BufReader<File>> {
    /// Opens a regular file and reads its header. Anything else (a FIFO, a device such as
    /// `/dev/zero`, a directory) is refused without blocking: the open is non-blocking (it
    /// changes nothing for a regular file) and the type is checked on the open file.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| ReadError::Io { offset: 0, source };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io)?;
        if !f.metadata().map_err(io)?.is_file() {
            return Err(ReadError::NotAsf(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        AsfReader::new(BufReader::with_capacity(64 * 1024, f))
    }
}

/// Reads up to `buf.len()` bytes; returns how many were read before end of file.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], offset: u64) -> Result<usize, ReadError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ReadError::Io {
                    offset: offset + got as u64,
                    source,
                })
            }
        }
    }
    Ok(got)
}

/// The Object Size of a Header Object whose first 24 bytes start `head` (at file offset
/// `offset`), refused before anything is allocated when it is below the head or above
/// [`MAX_HEADER_LEN`].
fn header_object_size(head: &[u8], offset: usize) -> Result<u64, ReadError> {
    let size = head
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    if size < HEADER_HEAD_LEN as u64 || size > MAX_HEADER_LEN {
        return Err(ReadError::Header(AsfError::ObjectSize {
            what: "Header Object",
            offset,
            size,
            min: HEADER_HEAD_LEN as u64,
            room: MAX_HEADER_LEN,
        }));
    }
    Ok(size)
}

fn read_exact_or_truncated<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    offset: u64,
    what: &str,
) -> Result<(), ReadError> {
    let got = read_full(r, buf, offset)?;
    if got < buf.len() {
        return Err(ReadError::Truncated {
            what: what.to_string(),
            offset,
            got,
            need: buf.len(),
        });
    }
    Ok(())
}

impl<R: Read> AsfReader<R> {
    /// Reads the Header Object and the Data Object head from `inner`.
    pub fn new(mut inner: R) -> Result<Self, ReadError> {
        let mut head = [0u8; HEADER_HEAD_LEN];
        let got = read_full(&mut inner, &mut head[..2], 0)?;
        if got == 2 && head[..2] == *b"$H" {
            return Self::new_chunked(inner);
        }
        let got = got + read_full(&mut inner, &mut head[2..], 2)?;
        if got < 24 || head[..16] != guid::HEADER.0 {
            return Err(ReadError::NotAsf(
                "the file does not start with an ASF Header Object".into(),
            ));
        }
        let size = header_object_size(&head, 0)?;
        if got < HEADER_HEAD_LEN {
            return Err(ReadError::Truncated {
                what: "the Header Object".into(),
                offset: 0,
                got,
                need: size as usize,
            });
        }
        let mut header_bytes = vec![0u8; size as usize];
        header_bytes[..HEADER_HEAD_LEN].copy_from_slice(&head);
        read_exact_or_truncated(
            &mut inner,
            &mut header_bytes[HEADER_HEAD_LEN..],
            HEADER_HEAD_LEN as u64,
            "the Header Object",
        )?;
        let header = AsfHeader::parse(&header_bytes).map_err(ReadError::Header)?;
        let mut offset = size;

        // Skip any top-level objects before the Data Object (there are normally none).
        let data = loop {
            let mut obj = [0u8; DATA_HEAD_LEN];
            read_exact_or_truncated(&mut inner, &mut obj[..24], offset, "an object head")?;
            let obj_size = u64::from_le_bytes(obj[16..24].try_into().unwrap_or([0; 8]));
            if obj[..16] == guid::DATA.0 {
                read_exact_or_truncated(
                    &mut inner,
                    &mut obj[24..],
                    offset + 24,
                    "the Data Object head",
                )?;
                break DataHead::parse(&obj).map_err(ReadError::Header)?;
            }
            if obj_size < 24 {
                return Err(ReadError::NotAsf(format!(
                    "object at byte {offset} has size {obj_size}"
                )));
            }
            let skip = obj_size - 24;
            let skipped = io::copy(&mut (&mut inner).take(skip), &mut io::sink())
                .map_err(|source| ReadError::Io { offset, source })?;
            if skipped < skip {
                return Err(ReadError::Truncated {
                    what: "an object before the Data Object".into(),
                    offset,
                    got: skipped as usize,
                    need: skip as usize,
                });
            }
            offset += obj_size;
        };
        offset += DATA_HEAD_LEN as u64;
        let packet_size = header.packet_size() as usize;
        let limit = (!header.file.is_broadcast()
            && data.size >= (DATA_HEAD_LEN + packet_size) as u64)
            .then(|| (data.size - DATA_HEAD_LEN as u64) / packet_size as u64);
        Ok(Self::ready(
            inner,
            header,
            header_bytes,
            data,
            offset,
            limit,
            false,
        ))
    }

    /// A reader positioned at the first data packet.
    fn ready(
        inner: R,
        header: AsfHeader,
        header_bytes: Vec<u8>,
        data: DataHead,
        offset: u64,
        limit: Option<u64>,
        chunked: bool,
    ) -> Self {
        let packet_size = header.packet_size() as usize;
        AsfReader {
            inner,
            header,
            header_bytes,
            data,
            packet_size,
            next_index: 0,
            offset,
            limit,
            chunked,
            done: false,
        }
    }

    /// Reads the header from `$H` chunks (the 2 bytes `$H` are already consumed).
    fn new_chunked(mut inner: R) -> Result<Self, ReadError> {
        let mut rest = [0u8; 2];
        read_exact_or_truncated(&mut inner, &mut rest, 2, "an MMSH chunk head")?;
        let len = u16::from_le_bytes(rest) as usize;
        let mut body = vec![0u8; len];
        read_exact_or_truncated(&mut inner, &mut body, 4, "an MMSH header chunk")?;
        if len < 8 + HEADER_HEAD_LEN + DATA_HEAD_LEN {
            return Err(ReadError::NotAsf("MMSH header chunk too short".into()));
        }
        let mut blob = body.split_off(8);
        let mut offset = 4 + len as u64;
        let size = header_object_size(&blob, 12)?;
        // A header above 64 KiB continues in further `$H` chunks.
        while (blob.len() as u64) < size + DATA_HEAD_LEN as u64 {
            match read_chunk(&mut inner, offset)? {
                Some((CHUNK_HEADER, more)) => {
                    offset += 12 + more.len() as u64;
                    blob.extend_from_slice(&more);
                }
                _ => {
                    return Err(ReadError::Truncated {
                        what: "the MMSH header".into(),
                        offset,
                        got: blob.len(),
                        need: (size as usize) + DATA_HEAD_LEN,
                    })
                }
            }
        }
        let header_bytes = blob[..size as usize].to_vec();
        let header = AsfHeader::parse(&header_bytes).map_err(ReadError::Header)?;
        let data = DataHead::parse(&blob[size as usize..]).map_err(ReadError::Header)?;
        Ok(Self::ready(
            inner,
            header,
            header_bytes,
            data,
            offset,
            None,
            true,
        ))
    }

    /// The next `$D` chunk's packet, re-padded to the packet size.
    fn next_chunked(&mut self) -> Option<Result<ReaderPacket, ReadError>> {
        loop {
            let offset = self.offset;
            let (kind, mut bytes) = match read_chunk(&mut self.inner, offset) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let framing = if kind == CHUNK_DATA { 12 } else { 4 };
            self.offset += framing + bytes.len() as u64;
            match kind {
                CHUNK_END => {
                    self.done = true;
                    return None;
                }
                CHUNK_DATA => {}
                _ => continue,
            }
            let index = self.next_index;
            self.next_index += 1;
            if bytes.len() > self.packet_size {
                return Some(Err(ReadError::Packet {
                    index,
                    offset,
                    source: AsfError::invalid(
                        "MMSH $D chunk",
                        0,
                        format!(
                            "{} bytes exceed the packet size {}",
                            bytes.len(),
                            self.packet_size
                        ),
                    ),
                }));
            }
            bytes.resize(self.packet_size, 0);
            return Some(self.finish_packet(index, offset, bytes));
        }
    }

    fn finish_packet(
        &self,
        index: u64,
        offset: u64,
        bytes: Vec<u8>,
    ) -> Result<ReaderPacket, ReadError> {
        let p = Packet::parse(&bytes).map_err(|source| ReadError::Packet {
            index,
            offset,
            source,
        })?;
        let (send_time, duration) = (p.send_time, p.duration);
        Ok(ReaderPacket {
            index,
            offset,
            bytes,
            send_time,
            duration,
        })
    }

    pub fn header(&self) -> &AsfHeader {
        &self.header
    }

    /// The Header Object exactly as it is in the file.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    pub fn data_head(&self) -> &DataHead {
        &self.data
    }

    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// The next packet; `None` at the end of the data. After a truncation error, `None`.
    pub fn next_packet(&mut self) -> Option<Result<ReaderPacket, ReadError>> {
        if self.done || self.limit.is_some_and(|l| self.next_index >= l) {
            return None;
        }
        if self.chunked {
            return self.next_chunked();
        }
        let mut bytes = vec![0u8; self.packet_size];
        let offset = self.offset;
        let got = match read_full(&mut self.inner, &mut bytes, offset) {
            Ok(g) => g,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if got == 0 {
            self.done = true;
            return None;
        }
        let index = self.next_index;
        self.next_index += 1;
        self.offset += got as u64;
        if got < self.packet_size {
            self.done = true;
            return Some(Err(ReadError::Truncated {
                what: format!("data packet {index}"),
                offset,
                got,
                need: self.packet_size,
            }));
        }
        Some(self.finish_packet(index, offset, bytes))
    }
}

impl<R: Read> Iterator for AsfReader<R> {
    type Item = Result<ReaderPacket, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A playlist entry that is a FIFO or a device (a station file can name any path) must
    /// be refused at once: a blocking open or read would stop the daemon's one thread.
    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("asfcast-reader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        for path in [fifo.clone(), std::path::PathBuf::from("/dev/zero")] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(
                    AsfReader::open(&path)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                );
            });
        }
        for _ in 0..2 {
            let got = rx.recv_timeout(std::time::Duration::from_secs(5));
            // Unblock a stuck opener before failing, so the test process can end.
            if got.is_err() {
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            }
            let err = got.unwrap_or_else(|_| panic!("open blocked")).err();
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("not a regular file")),
                "{err:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
