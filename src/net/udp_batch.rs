//! Addressed, scattered UDP sends in batches: up to 64 [`Datagram`]s per `sendmmsg(2)` on an
//! unconnected socket, each with its own destination (`msg_name`) and one iovec per part
//! (session headers, the station's shared packet slice, zero padding). One system call per
//! batch instead of one per client per packet, and no per-client copy of the packet.
//!
//! Never blocks: a datagram the kernel refuses is dropped and counted (late UDP media is
//! useless); when the socket buffer is full the rest of the batch is dropped at once instead of
//! being refused one call at a time.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

use crate::station::sink::Datagram;

/// Datagrams per `sendmmsg` call.
const BATCH: usize = 64;
/// Zero padding is sent from this buffer; longer padding is split over several iovecs.
static ZEROS: [u8; 4096] = [0; 4096];
/// Iovecs one datagram may use: head, body, and padding chunks.
const MAX_IOV: usize = 2 + 16;

/// What one [`send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sent: u64,
    pub dropped: u64,
}

/// Sends every datagram from `socket` (non-blocking); returns how many went and how many were
/// dropped.
pub fn send(socket: &UdpSocket, datagrams: &[Datagram]) -> Sent {
    let mut out = Sent::default();
    let mut done = 0;
    while done < datagrams.len() {
        let chunk = &datagrams[done..datagrams.len().min(done + BATCH)];
        match sendmmsg(socket, chunk) {
            Ok(0) => {
                out.dropped += (datagrams.len() - done) as u64;
                break;
            }
            Ok(n) => {
                out.sent += n as u64;
                done += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.dropped += (datagrams.len() - done) as u64;
                break;
            }
            Err(_) => {
                // The first datagram failed (e.g. an unreachable address): drop it, go on.
                out.dropped += 1;
                done += 1;
            }
        }
    }
    out
}

/// The iovecs of one datagram (at most [`MAX_IOV`]; padding beyond that is cut).
fn iovecs(d: &Datagram, out: &mut Vec<libc::iovec>) {
    let mut push = |b: &[u8]| {
        if !b.is_empty() && out.len() < MAX_IOV {
            out.push(libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            });
        }
    };
    push(&d.head);
    push(d.body());
    let mut zeros = d.zeros;
    while zeros > 0 {
        let n = zeros.min(ZEROS.len());
        push(&ZEROS[..n]);
        zeros -= n;
    }
}

fn sendmmsg(socket: &UdpSocket, datagrams: &[Datagram]) -> io::Result<usize> {
    let n = datagrams.len().min(BATCH);
    let addrs: Vec<SockAddr> = datagrams[..n].iter().map(|d| d.to.into()).collect();
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(n * 3);
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(n);
    for d in &datagrams[..n] {
        let start = iov.len();
        let mut one = Vec::new();
        iovecs(d, &mut one);
        iov.extend(one);
        spans.push((start, iov.len() - start));
    }
    let mut msgs: Vec<libc::mmsghdr> = spans
        .iter()
        .zip(&addrs)
        .map(|(&(start, len), a)| {
            // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = a.len();
            // `iov` is not resized after this point, so the pointer stays valid.
            h.msg_hdr.msg_iov = iov[start..].as_ptr() as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = len;
            h
        })
        .collect();
    // SAFETY: `msgs` holds `n` headers whose names borrow `addrs` and whose iovecs borrow `iov`
    // (which borrows the datagrams and `ZEROS`); all of them outlive the call.
    unsafe { send_headers(socket, &mut msgs) }
}

/// One non-blocking `sendmmsg(2)` of prepared headers; how many were sent.
///
/// # Safety
/// Every header's name and iovecs must point at memory that stays valid during the call.
pub(crate) unsafe fn send_headers(
    socket: &UdpSocket,
    msgs: &mut [libc::mmsghdr],
) -> io::Result<usize> {
    // SAFETY: the caller vouches for the headers; `msgs` is a live slice of that length.
    let r = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::sink::UdpChannel;
    use std::sync::Arc;

    #[test]
    fn scattered_datagrams_arrive_whole_at_their_own_addresses() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let shared: Arc<[u8]> = (0..=255u8).cycle().take(3000).collect::<Vec<_>>().into();
        let mut ds = Vec::new();
        for (i, r) in rx.iter().enumerate() {
            let to = r.local_addr().unwrap();
            ds.push(Datagram::split(
                UdpChannel::Rtp,
                to,
                vec![i as u8; 12],
                Arc::clone(&shared),
                100..2100,
                i * 5000,
            ));
        }
        ds.push(Datagram::owned(
            UdpChannel::Rtp,
            rx[0].local_addr().unwrap(),
            b"plain".to_vec(),
        ));
        let sent = send(&tx, &ds);
        assert_eq!(
            sent,
            Sent {
                sent: 4,
                dropped: 0
            }
        );
        let mut buf = vec![0u8; 65536];
        for (i, r) in rx.iter().enumerate() {
            let n = r.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &ds[i].to_vec()[..], "datagram {i}");
            assert_eq!(n, 12 + 2000 + i * 5000);
        }
        let n = rx[0].recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"plain");
    }

    #[test]
    fn more_than_one_batch_and_a_refused_address() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let to = rx.local_addr().unwrap();
        let mut ds: Vec<Datagram> = (0..150u8)
            .map(|i| Datagram::owned(UdpChannel::Rtp, to, vec![i]))
            .collect();
        // An IPv6 destination cannot be reached from an IPv4 socket: dropped, the rest go.
        ds.insert(
            70,
            Datagram::owned(UdpChannel::Rtp, "[::1]:9".parse().unwrap(), vec![0]),
        );
        let sent = send(&tx, &ds);
        assert_eq!(
            sent,
            Sent {
                sent: 150,
                dropped: 1
            }
        );
        let mut buf = [0u8; 8];
        let got: Vec<u8> = (0..150)
            .map(|_| {
                let n = rx.recv(&mut buf).unwrap();
                assert_eq!(n, 1);
                buf[0]
            })
            .collect();
        assert_eq!(got, (0..150u8).collect::<Vec<_>>());
    }
}
