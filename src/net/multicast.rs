//! Multicast sockets (socket2): the MSB sender's socket with interface, TTL / hop limit,
//! loopback, send buffer and DSCP set, and batched sends with `sendmmsg(2)` when several
//! packets are due at once; and the receiver's socket that joins a group (for `asfcast recv`).
//!
//! An interface is named or given by address. IPv4 uses the interface's address
//! (`IP_MULTICAST_IF`), IPv6 its index (`IPV6_MULTICAST_IF`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Which interface multicast leaves by (or is received on): the config's own type.
pub use crate::config::Interface;

/// The options of one station's multicast output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastOptions {
    pub group: SocketAddr,
    pub interface: Interface,
    pub ttl: u32,
    pub loopback: bool,
    /// DSCP code point (0..=63), written as the upper six bits of TOS / traffic class.
    pub dscp: u8,
    pub send_buffer: Option<usize>,
}

fn not_found(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, what)
}

/// The IPv4 address of a named interface.
pub fn interface_ipv4(name: &str) -> io::Result<Ipv4Addr> {
    let addrs = nix::ifaddrs::getifaddrs()?;
    for a in addrs {
        if a.interface_name != name {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Ok(sin.ip());
        }
    }
    Err(not_found(format!("interface {name} has no IPv4 address")))
}

/// The index of a named interface.
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| not_found(format!("interface {name}: {e}")))
}

/// The index of an interface, named or given by address.
pub fn index_of(i: &Interface) -> io::Result<u32> {
    match i {
        Interface::Name(n) => interface_index(n),
        Interface::Address(a) => index_of_address(*a),
    }
}

/// The index of the interface that holds `addr`.
fn index_of_address(addr: IpAddr) -> io::Result<u32> {
    let addrs = nix::ifaddrs::getifaddrs()?;
    for a in addrs {
        let Some(s) = a.address.as_ref() else {
            continue;
        };
        let matches = match addr {
            IpAddr::V4(v4) => s.as_sockaddr_in().is_some_and(|x| x.ip() == v4),
            IpAddr::V6(v6) => s.as_sockaddr_in6().is_some_and(|x| x.ip() == v6),
        };
        if matches {
            return interface_index(&a.interface_name);
        }
    }
    Err(not_found(format!("no interface has address {addr}")))
}

fn v4_interface(i: &Interface) -> io::Result<Ipv4Addr> {
    match i {
        Interface::Name(n) => interface_ipv4(n),
        Interface::Address(IpAddr::V4(a)) => Ok(*a),
        Interface::Address(a) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("IPv4 group with IPv6 interface address {a}"),
        )),
    }
}

fn v6_interface(i: &Interface) -> io::Result<u32> {
    index_of(i)
}

/// A connected, non-blocking UDP socket that sends to one multicast group.
pub struct MulticastSender {
    socket: UdpSocket,
    pub group: SocketAddr,
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Datagrams dropped because the socket buffer was full or the send failed.
    pub dropped: u64,
    pub last_error: Option<String>,
    /// Kernel pacing or the loop's timer ([`super::txtime`]).
    pub path: super::txtime::PacingPath,
}

impl MulticastSender {
    pub fn open(opts: &MulticastOptions) -> io::Result<Self> {
        let domain = Domain::for_address(opts.group);
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        match opts.group.ip() {
            IpAddr::V4(_) => {
                s.set_multicast_if_v4(&v4_interface(&opts.interface)?)?;
                s.set_multicast_ttl_v4(opts.ttl)?;
                s.set_multicast_loop_v4(opts.loopback)?;
                s.set_tos_v4(u32::from(opts.dscp) << 2)?;
                s.bind(&SockAddr::from(SocketAddr::new(
                    Ipv4Addr::UNSPECIFIED.into(),
                    0,
                )))?;
            }
            IpAddr::V6(_) => {
                s.set_multicast_if_v6(v6_interface(&opts.interface)?)?;
                s.set_multicast_hops_v6(opts.ttl)?;
                s.set_multicast_loop_v6(opts.loopback)?;
                s.set_tclass_v6(u32::from(opts.dscp) << 2)?;
                s.bind(&SockAddr::from(SocketAddr::new(
                    Ipv6Addr::UNSPECIFIED.into(),
                    0,
                )))?;
            }
        }
        if let Some(n) = opts.send_buffer {
            s.set_send_buffer_size(n)?;
        }
        s.connect(&SockAddr::from(opts.group))?;
        s.set_nonblocking(true)?;
        let socket: UdpSocket = s.into();
        let path = super::txtime::choose(&socket, index_of(&opts.interface).ok());
        Ok(MulticastSender {
            socket,
            group: opts.group,
            sent: 0,
            dropped: 0,
            last_error: None,
            path,
        })
    }

    /// Sends `datagrams`, each stamped with its departure (`SCM_TXTIME`, the txtime path),
    /// as [`MulticastSender::send_batch`] does.
    pub fn send_stamped(&mut self, datagrams: &[(Instant, Vec<u8>)]) {
        let clock = super::txtime::MonotonicClock::now();
        let socket = &self.socket;
        let n = datagrams.len();
        let (sent, dropped, error) = count_sends(n, |done| {
            sendmmsg_stamped(socket, datagrams.get(done..).unwrap_or_default(), &clock)
        });
        self.note(sent, dropped, error);
    }

    /// Sends every datagram in one `sendmmsg` call where possible. Never blocks: what the
    /// kernel does not take is counted as dropped (UDP has no backlog worth keeping: a late
    /// multicast packet is a useless one).
    pub fn send_batch(&mut self, datagrams: &[Vec<u8>]) {
        let socket = &self.socket;
        let n = datagrams.len();
        let (sent, dropped, error) = count_sends(n, |done| {
            sendmmsg(socket, datagrams.get(done..).unwrap_or_default())
        });
        self.note(sent, dropped, error);
    }

    fn note(&mut self, sent: u64, dropped: u64, error: Option<String>) {
        self.sent += sent;
        self.dropped += dropped;
        if error.is_some() {
            self.last_error = error;
        }
    }
}

/// Calls `send` from each first unsent index until `n` datagrams are sent or dropped: (sent,
/// dropped, the last error). A failed call drops its first datagram and goes on with the rest.
fn count_sends(
    n: usize,
    mut send: impl FnMut(usize) -> io::Result<usize>,
) -> (u64, u64, Option<String>) {
    let (mut done, mut sent, mut dropped, mut error) = (0, 0u64, 0u64, None);
    while done < n {
        match send(done) {
            Ok(0) => break,
            Ok(k) => {
                sent += k as u64;
                done += k;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                dropped += 1;
                error = Some(e.to_string());
                done += 1;
            }
        }
    }
    (sent, dropped, error)
}

/// Up to 64 datagrams per `sendmmsg(2)` call on a connected socket.
fn sendmmsg(socket: &UdpSocket, datagrams: &[Vec<u8>]) -> io::Result<usize> {
    const MAX: usize = 64;
    let n = datagrams.len().min(MAX);
    let mut iov: Vec<libc::iovec> = datagrams[..n]
        .iter()
        .map(|d| libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = v as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: `msgs` holds `n` headers whose iovecs borrow `datagrams`, all alive for the
    // duration of the call; the socket is connected, so no addresses are needed.
    unsafe { super::udp_batch::send_headers(socket, &mut msgs) }
}

/// Up to 64 datagrams per `sendmmsg(2)` call, each with its `SCM_TXTIME` cmsg.
fn sendmmsg_stamped(
    socket: &UdpSocket,
    datagrams: &[(Instant, Vec<u8>)],
    clock: &super::txtime::MonotonicClock,
) -> io::Result<usize> {
    use crate::msb::txtime::{txtime_cmsg, TXTIME_CMSG_LEN};
    const MAX: usize = 64;
    let n = datagrams.len().min(MAX);
    // u64 words: the cmsg buffers must be aligned for cmsghdr.
    let mut control: Vec<[u64; TXTIME_CMSG_LEN / 8]> = datagrams[..n]
        .iter()
        .map(|(at, _)| {
            let bytes = txtime_cmsg(clock.ns_of(*at));
            let mut words = [0u64; TXTIME_CMSG_LEN / 8];
            for (w, c) in words.iter_mut().zip(bytes.chunks_exact(8)) {
                *w = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
            }
            words
        })
        .collect();
    let mut iov: Vec<libc::iovec> = datagrams[..n]
        .iter()
        .map(|(_, d)| libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(control.iter_mut())
        .map(|(v, c)| {
            // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = v as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = c.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = TXTIME_CMSG_LEN;
            h
        })
        .collect();
    // SAFETY: `msgs` holds `n` headers whose iovecs borrow `datagrams` and whose control
    // buffers borrow `control`, all alive for the duration of the call; the socket is
    // connected, so no addresses are needed.
    unsafe { super::udp_batch::send_headers(socket, &mut msgs) }
}

/// A socket bound to `group`'s port that has joined the group on `interface` (None: the
/// interface the routing table picks).
pub fn join_group(group: SocketAddr, interface: Option<&Interface>) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(group), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_recv_buffer_size(4 * 1024 * 1024)?;
    match group.ip() {
        IpAddr::V4(g) => {
            s.bind(&SockAddr::from(SocketAddr::new(g.into(), group.port())))?;
            let ifaddr = match interface {
                Some(i) => v4_interface(i)?,
                None => Ipv4Addr::UNSPECIFIED,
            };
            s.join_multicast_v4(&g, &ifaddr)?;
        }
        IpAddr::V6(g) => {
            s.set_only_v6(true)?;
            s.bind(&SockAddr::from(SocketAddr::new(g.into(), group.port())))?;
            let index = match interface {
                Some(i) => v6_interface(i)?,
                None => 0,
            };
            s.join_multicast_v6(&g, index)?;
        }
    }
    Ok(s.into())
}
