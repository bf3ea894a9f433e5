//! Binding a TCP listener with a chosen `listen(2)` backlog. mio's `TcpListener::bind` always
//! asks for 128, which a burst of connects overflows (the kernel then drops SYNs and clients
//! wait seconds for their retransmission); this binds the same way (non-blocking,
//! close-on-exec, `SO_REUSEADDR`) through socket2 with the configured backlog.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Socket, Type};

/// Where Linux keeps the cap it silently applies to every backlog.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// A non-blocking listener on `addr` with a queue of `backlog` (capped by the kernel).
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Sets the options every accepted connection gets (`TCP_NODELAY`, a fixed `SO_SNDBUF` of
/// `send_buffer` bytes) on the listener itself. Linux copies a listener's socket state,
/// including both options and the send buffer's lock against autotuning, into each
/// connection it accepts, so a join then costs no `setsockopt` calls. True when the
/// connections inherit them (Linux, both set); otherwise each accepted connection must set
/// them itself.
pub fn set_inherited_options(listener: &TcpListener, send_buffer: usize) -> bool {
    let sock = socket2::SockRef::from(listener);
    let set = sock.set_tcp_nodelay(true).is_ok() && sock.set_send_buffer_size(send_buffer).is_ok();
    set && cfg!(target_os = "linux")
}

/// The backlog the kernel grants for `requested`: the smaller of it and `net.core.somaxconn`
/// (for the log; unknown cap: the request).
pub fn effective_backlog(requested: u32) -> u32 {
    std::fs::read_to_string(SOMAXCONN)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map_or(requested, |cap| requested.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_a_listener_that_accepts() -> io::Result<()> {
        let l = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 4096)?;
        let addr = l.local_addr()?;
        let _c = std::net::TcpStream::connect(addr)?;
        // Non-blocking: the connection is there at once on loopback, or WouldBlock.
        for _ in 0..100 {
            match l.accept() {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("connection never accepted"))
    }

    /// The join path skips its per-connection `setsockopt` calls on this being true.
    #[test]
    fn accepted_connections_inherit_the_listener_options() -> io::Result<()> {
        let l = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 16)?;
        if !set_inherited_options(&l, 128 * 1024) {
            return Ok(());
        }
        let _c = std::net::TcpStream::connect(l.local_addr()?)?;
        for _ in 0..100 {
            match l.accept() {
                Ok((s, _)) => {
                    let sock = socket2::SockRef::from(&s);
                    assert!(sock.tcp_nodelay()?);
                    // Linux doubles the requested size for its bookkeeping.
                    assert_eq!(sock.send_buffer_size()?, 2 * 128 * 1024);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("connection never accepted"))
    }

    #[test]
    fn effective_backlog_never_exceeds_the_request() {
        assert!(effective_backlog(16) <= 16);
        assert!(effective_backlog(65_535) >= 1);
    }
}
