//! Multicast sockets (socket2): the MSB sender's socket with interface, TTL / hop limit,
//! loopback, send buffer and DSCP set, and batched sends with `sendmmsg(2)` when several
//! packets are due at once — runs of equal-sized datagrams as one segmented send
//! (`UDP_SEGMENT`, [`crate::msb::gso`]) where the kernel takes it; and the receiver's socket
//! that joins a group (for `asfcast recv`).
//!
//! `ASFCAST_GSO=off` in the environment keeps every datagram a send of its own (to compare).
//!
//! An interface is named or given by address. IPv4 uses the interface's address
//! (`IP_MULTICAST_IF`), IPv6 its index (`IPV6_MULTICAST_IF`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tracing::info;

use crate::msb::gso::{self, Run};

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
    /// The largest datagram sent as a segment of a `UDP_SEGMENT` send (the path MTU less the
    /// headers); None: every datagram is a send of its own.
    gso_segment: Option<usize>,
    /// Sends that carried more than one datagram.
    pub segmented_sends: u64,
    runs: Vec<Run>,
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
        let gso_segment = gso_segment(&socket, opts.group);
        Ok(MulticastSender {
            socket,
            group: opts.group,
            sent: 0,
            dropped: 0,
            last_error: None,
            path,
            gso_segment,
            segmented_sends: 0,
            runs: Vec::new(),
        })
    }

    /// Whether runs of equal-sized datagrams leave as one segmented send.
    pub fn segmenting(&self) -> bool {
        self.gso_segment.is_some()
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
        let mut first = 0;
        loop {
            // Without segmentation every datagram is a run of its own ([`gso::plan`]).
            let max = self.gso_segment.unwrap_or(0);
            first += self.send_segmented(datagrams.get(first..).unwrap_or_default(), max);
            if first >= datagrams.len() || max == 0 || self.gso_segment.is_some() {
                break;
            }
            // Segmentation was refused just now: the rest one by one.
        }
    }

    /// Sends `datagrams` as runs ([`gso::plan`] with segments up to `max`), up to 64 runs per
    /// `sendmmsg`; returns how many datagrams it is done with. A kernel or device that refuses
    /// segmentation turns it off for this socket, and the datagrams from the refused run on are
    /// left to the caller.
    fn send_segmented(&mut self, datagrams: &[Vec<u8>], max: usize) -> usize {
        let mut runs = std::mem::take(&mut self.runs);
        gso::plan(datagrams.iter().map(Vec::len), max, &mut runs);
        let (mut r, mut done) = (0, 0);
        let (mut sent, mut dropped, mut error) = (0u64, 0u64, None);
        while let Some(first) = runs.get(r).copied() {
            match sendmmsg_runs(&self.socket, datagrams, runs.get(r..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(k) => {
                    for run in runs.get(r..r + k).unwrap_or_default() {
                        sent += run.count as u64;
                        done += run.count;
                        self.segmented_sends += u64::from(run.count > 1);
                    }
                    r += k;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if first.count > 1 && segmentation_refused(&e) => {
                    info!(group = %self.group, error = %e,
                        "UDP segmentation refused by the kernel or device: one send per datagram");
                    self.gso_segment = None;
                    break;
                }
                Err(e) => {
                    // The refused send is dropped, the rest goes on.
                    dropped += first.count as u64;
                    done += first.count;
                    error = Some(e.to_string());
                    r += 1;
                }
            }
        }
        self.runs = runs;
        self.note(sent, dropped, error);
        done
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

/// Errors with which a segmented send says the offload itself is unavailable (no
/// `UDP_SEGMENT`, no checksum offload, a segment over the path MTU), not that this send failed.
fn segmentation_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// The largest segment of a segmented send on `socket` (connected to `group`): its path MTU
/// (`IP_MTU` / `IPV6_MTU`) less the headers; None when `ASFCAST_GSO=off` or unknown.
fn gso_segment(socket: &UdpSocket, group: SocketAddr) -> Option<usize> {
    if std::env::var("ASFCAST_GSO").is_ok_and(|v| v == "off") {
        return None;
    }
    let (level, name) = match group {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_MTU),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_MTU),
    };
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `mtu` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut mtu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    gso::max_segment(usize::try_from(mtu).ok()?, group.is_ipv6())
}

/// Up to 64 runs per `sendmmsg(2)` call: a run of several datagrams is one message whose
/// iovecs are the datagrams and whose `UDP_SEGMENT` cmsg gives the segment size; returns how
/// many runs were sent.
fn sendmmsg_runs(socket: &UdpSocket, datagrams: &[Vec<u8>], runs: &[Run]) -> io::Result<usize> {
    const MAX: usize = 64;
    let runs = runs.get(..runs.len().min(MAX)).unwrap_or_default();
    let Some(first) = runs.first() else {
        return Ok(0);
    };
    let total: usize = runs.iter().map(|r| r.count).sum();
    let Some(batch) = datagrams.get(first.start..first.start + total) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "runs outside the batch",
        ));
    };
    let mut msgs = RunMessages::new(batch, runs);
    // SAFETY: the headers point into `msgs`' own buffers and at `datagrams`, all alive for the
    // duration of the call; the socket is connected, so no addresses are needed.
    unsafe { super::udp_batch::send_headers(socket, msgs.headers()) }
}

/// `sendmmsg(2)` headers for runs of datagrams ([`gso::plan`]): one message per run, whose
/// iovecs are the run's datagrams and which, for a run of several, carries the `UDP_SEGMENT`
/// control message with the segment size. The headers point into this value's own buffers
/// (heap memory that does not move with it) and at the datagrams it was made from, which the
/// caller keeps alive and unchanged while the headers are used.
pub struct RunMessages {
    _iov: Vec<libc::iovec>,
    _control: Vec<[u64; gso::GSO_CMSG_LEN / 8]>,
    msgs: Vec<libc::mmsghdr>,
}

impl RunMessages {
    /// Messages for `runs`, consecutive runs over `datagrams` from its first one on (runs
    /// beyond `datagrams` are left out).
    pub fn new(datagrams: &[Vec<u8>], runs: &[Run]) -> RunMessages {
        let mut iov: Vec<libc::iovec> = datagrams
            .iter()
            .map(|d| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        let mut control: Vec<[u64; gso::GSO_CMSG_LEN / 8]> = runs
            .iter()
            .map(|r| gso::gso_cmsg_words(r.segment))
            .collect();
        let iov_ptr = iov.as_mut_ptr();
        let mut offset = 0;
        let mut msgs = Vec::with_capacity(runs.len());
        for (r, c) in runs.iter().zip(control.iter_mut()) {
            if offset + r.count > iov.len() {
                break;
            }
            // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            // SAFETY: `offset + r.count <= iov.len()` (checked above).
            h.msg_hdr.msg_iov = unsafe { iov_ptr.add(offset) };
            h.msg_hdr.msg_iovlen = r.count;
            offset += r.count;
            if r.count > 1 {
                h.msg_hdr.msg_control = c.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = gso::GSO_CMSG_LEN;
            }
            msgs.push(h);
        }
        RunMessages {
            _iov: iov,
            _control: control,
            msgs,
        }
    }

    /// The headers, one per run, in order.
    pub fn headers(&mut self) -> &mut [libc::mmsghdr] {
        &mut self.msgs
    }
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
        .map(|(at, _)| crate::msb::cmsg_words(&txtime_cmsg(clock.ns_of(*at))))
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

/// Receive buffer of a joined group's socket: a sender's burst (a file's front-load, 50+
/// datagrams of a send time, which arrive at once when they were one segmented send on the
/// same host) must fit while the reader is scheduled.
const RECV_BUFFER: usize = 4 << 20;

/// Sets the receive buffer to `bytes`: beyond `net.core.rmem_max` where the process may
/// (`SO_RCVBUFFORCE`, CAP_NET_ADMIN), else as far as `rmem_max` allows (`SO_RCVBUF`).
fn set_large_recv_buffer(s: &Socket, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` is a live c_int and its size is passed; the fd is the socket's own.
    let forced = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced == 0 {
        return Ok(());
    }
    s.set_recv_buffer_size(bytes)
}

/// A socket bound to `group`'s port that has joined the group on `interface` (None: the
/// interface the routing table picks).
pub fn join_group(group: SocketAddr, interface: Option<&Interface>) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(group), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    set_large_recv_buffer(&s, RECV_BUFFER)?;
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
