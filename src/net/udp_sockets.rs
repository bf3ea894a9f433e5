//! The UDP sockets unicast sessions send data from: MMS data (MMSU) and the RTP/RTCP pair.
//! Sessions queue [`Datagram`]s naming a [`UdpChannel`]; the loop sends a turn's datagrams
//! here, one `sendmmsg` per run of datagrams from the same socket ([`super::udp_batch`]).
//!
//! Clients also send to these sockets — RTCP receiver reports every few seconds (RFC 3550
//! §6.4.2), NAT punch packets, MMSU resend requests — so they are registered with the poll
//! and read until they would block ([`UdpSockets::recv_from`]); an unread socket would hold
//! every report ever sent to it in its receive queue.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::config;
use crate::station::sink::{Datagram, UdpChannel, UdpPorts};

use super::udp_batch;

/// Send buffer asked for the unicast UDP data sockets.
const UDP_SEND_BUFFER: usize = 4 << 20;

/// The UDP sockets unicast sessions send data from (MMSU, RTP, RTCP). Sends never block: a
/// datagram the kernel does not take is dropped, as UDP media is useless late.
#[derive(Default)]
pub struct UdpSockets {
    mms_data: Option<std::net::UdpSocket>,
    rtp: Option<std::net::UdpSocket>,
    rtcp: Option<std::net::UdpSocket>,
    /// Their local ports, read once at open (every accepted connection's session gets them).
    ports: UdpPorts,
    pub dropped: u64,
}

impl UdpSockets {
    /// Opens the sockets the configured listeners need, on the listeners' addresses.
    pub fn open(listen: &config::Listen) -> io::Result<UdpSockets> {
        let bind = |addr: std::net::SocketAddr| -> io::Result<std::net::UdpSocket> {
            let s = std::net::UdpSocket::bind(addr)?;
            s.set_nonblocking(true)?;
            // Room for a turn's burst to many clients (best effort: the kernel caps it at
            // net.core.wmem_max).
            let _ = socket2::SockRef::from(&s).set_send_buffer_size(UDP_SEND_BUFFER);
            Ok(s)
        };
        let mut u = UdpSockets::default();
        if let Some(a) = listen.mms.first() {
            u.mms_data = Some(bind(std::net::SocketAddr::new(a.ip(), 0))?);
        }
        if let Some(a) = listen.rtsp.first() {
            // An even/odd RTP/RTCP pair: try a few even ports the kernel hands out.
            for _ in 0..32 {
                let rtp = bind(std::net::SocketAddr::new(a.ip(), 0))?;
                let port = rtp.local_addr()?.port();
                if port % 2 != 0 || port == u16::MAX {
                    continue;
                }
                if let Ok(rtcp) = bind(std::net::SocketAddr::new(a.ip(), port + 1)) {
                    u.rtp = Some(rtp);
                    u.rtcp = Some(rtcp);
                    break;
                }
            }
        }
        u.ports = u.read_ports();
        Ok(u)
    }

    fn socket(&self, via: UdpChannel) -> Option<&std::net::UdpSocket> {
        match via {
            UdpChannel::MmsData => self.mms_data.as_ref(),
            UdpChannel::Rtp => self.rtp.as_ref(),
            UdpChannel::Rtcp => self.rtcp.as_ref(),
        }
    }

    /// Registers every open socket for READABLE under the token `token(channel)` names.
    pub fn register(&self, registry: &Registry, token: fn(UdpChannel) -> Token) -> io::Result<()> {
        for via in [UdpChannel::MmsData, UdpChannel::Rtp, UdpChannel::Rtcp] {
            if let Some(s) = self.socket(via) {
                registry.register(
                    &mut SourceFd(&s.as_raw_fd()),
                    token(via),
                    Interest::READABLE,
                )?;
            }
        }
        Ok(())
    }

    /// Asks the poll to report `via` again if datagrams are left (reading stopped at a budget
    /// before the socket would block; the registration is edge-triggered).
    pub fn rearm(&self, registry: &Registry, via: UdpChannel, token: Token) -> io::Result<()> {
        match self.socket(via) {
            Some(s) => {
                registry.reregister(&mut SourceFd(&s.as_raw_fd()), token, Interest::READABLE)
            }
            None => Ok(()),
        }
    }

    /// One datagram from the `via` socket (non-blocking: `WouldBlock` when there is none).
    pub fn recv_from(&self, via: UdpChannel, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self.socket(via) {
            Some(s) => s.recv_from(buf),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    pub fn ports(&self) -> UdpPorts {
        self.ports
    }

    fn read_ports(&self) -> UdpPorts {
        let port = |s: &Option<std::net::UdpSocket>| {
            s.as_ref()
                .and_then(|s| s.local_addr().ok())
                .map(|a| a.port())
        };
        UdpPorts {
            mms_data: port(&self.mms_data),
            rtp: port(&self.rtp),
            rtcp: port(&self.rtcp),
        }
    }

    /// Sends every queued datagram, one `sendmmsg` per run of datagrams from the same socket,
    /// and empties the queue.
    pub fn send_all(&mut self, datagrams: &mut Vec<Datagram>) {
        let mut rest: &[Datagram] = datagrams;
        while let Some(first) = rest.first() {
            let via = first.via;
            let run = rest.iter().take_while(|d| d.via == via).count();
            let (batch, tail) = rest.split_at(run);
            let socket = match via {
                UdpChannel::MmsData => &self.mms_data,
                UdpChannel::Rtp => &self.rtp,
                UdpChannel::Rtcp => &self.rtcp,
            };
            match socket {
                Some(s) => self.dropped += udp_batch::send(s, batch).dropped,
                None => self.dropped += batch.len() as u64,
            }
            rest = tail;
        }
        datagrams.clear();
    }
}
