//! Writes a standard ASF file from a stream header and packets in any form (stripped or full):
//! every packet is re-padded to the fixed size, because players reading a file read exactly one
//! packet size per packet (asf.md §3.6). Used by `asfcast recv` and the rewrite tests.

use std::io::{self, Write};

use super::packet::Packet;
use super::rewrite::repad;
use super::{AsfError, AsfHeader, DataHead};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
    #[error("packet {index}: {source}")]
    Packet {
        index: u64,
        #[source]
        source: AsfError,
    },
}

/// An ASF file being written: the header goes out first, then packets.
pub struct AsfFileWriter<W: Write> {
    out: W,
    packet_size: u32,
    packets: u64,
}

impl<W: Write> AsfFileWriter<W> {
    /// Writes `header` with `data` as its Data Object head.
    pub fn new(mut out: W, header: &AsfHeader, data: &DataHead) -> Result<Self, WriteError> {
        out.write_all(&header.stream_header_bytes(data))?;
        Ok(AsfFileWriter {
            out,
            packet_size: header.packet_size(),
            packets: 0,
        })
    }

    /// Writes one packet, re-padded to the packet size.
    pub fn write_packet(&mut self, packet: &[u8]) -> Result<(), WriteError> {
        let index = self.packets;
        let err = |source| WriteError::Packet { index, source };
        let p = Packet::parse(packet).map_err(err)?;
        let full = repad(&p, self.packet_size).map_err(err)?;
        self.out.write_all(&full)?;
        self.packets += 1;
        Ok(())
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn finish(mut self) -> Result<W, WriteError> {
        self.out.flush()?;
        Ok(self.out)
    }
}
