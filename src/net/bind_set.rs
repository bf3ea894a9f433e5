//! Binding the configured listeners as a set, so that with `--last-good` a server file whose
//! listener cannot bind (an address not on the box, a port another program holds) never
//! takes the daemon down: [`bind`] binds what it can and reports the rest; the daemon then
//! runs the last-good copy's listeners instead (see [`super::last_good`]), and exits only
//! when nothing at all can bind. At reload the running listeners stay; [`probe`] says which
//! new addresses would not bind at the next start, so such a file is shown as an error and
//! not saved as the last good copy.

use std::io;
use std::net::SocketAddr;

use mio::{Interest, Poll, Token};
use tracing::info;

use crate::config::Listen;

use super::connections::{Listener, ListenerKind};
use super::systemd::ActivatedSocket;
use super::udp_sockets::UdpSockets;

/// `FileDescriptorName=`s of the socket unit, one per listener kind.
const KNOWN_NAMES: [&str; 4] = ["http", "mms", "rtsp", "api"];

/// What [`bind`] got.
pub struct Bound {
    pub listeners: Vec<Listener>,
    /// None when the UDP sockets could not be opened (an error is in `errors`).
    pub udp: Option<UdpSockets>,
    /// "http listener 192.0.2.7:80: Cannot assign requested address", one per failure.
    pub errors: Vec<String>,
}

impl Bound {
    /// Every listener bound and the UDP sockets open.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The listeners of `listen` by kind.
pub fn addresses(listen: &Listen) -> Vec<(ListenerKind, SocketAddr)> {
    [
        (ListenerKind::Http, &listen.http),
        (ListenerKind::Mms, &listen.mms),
        (ListenerKind::Rtsp, &listen.rtsp),
        (ListenerKind::Api, &listen.api),
    ]
    .into_iter()
    .flat_map(|(k, addrs)| addrs.iter().map(move |a| (k, *a)))
    .collect()
}

/// Binds (or takes from systemd) every listener of `listen` and registers it with `poll`
/// under `token_base + i`; a listener that fails is left out and its error reported.
pub fn bind(
    poll: &Poll,
    listen: &Listen,
    backlog: u32,
    token_base: usize,
    activated: &mut Vec<ActivatedSocket>,
) -> Bound {
    let mut listeners = Vec::new();
    let mut errors = Vec::new();
    for (kind, addr) in addresses(listen) {
        let passed = activated.iter().position(|a| {
            a.local == addr && (a.name == kind.as_str() || !KNOWN_NAMES.contains(&a.name.as_str()))
        });
        let bound = match passed {
            Some(i) => {
                let a = activated.swap_remove(i);
                info!(protocol = kind.as_str(), %addr, name = %a.name, "using socket passed by systemd");
                Ok(mio::net::TcpListener::from_std(a.listener))
            }
            None => super::listen::bind(addr, backlog),
        };
        let registered = bound.and_then(|mut socket| {
            let token = Token(token_base + listeners.len());
            poll.registry()
                .register(&mut socket, token, Interest::READABLE)?;
            Ok(socket)
        });
        match registered {
            Ok(socket) => {
                match passed {
                    Some(_) => info!(protocol = kind.as_str(), %addr, "listening"),
                    None => info!(
                        protocol = kind.as_str(),
                        %addr,
                        backlog = super::listen::effective_backlog(backlog),
                        "listening"
                    ),
                }
                let options_inherited =
                    super::listen::set_inherited_options(&socket, super::daemon::SEND_BUFFER);
                listeners.push(Listener {
                    kind,
                    addr,
                    socket,
                    options_inherited,
                });
            }
            Err(e) => errors.push(format!("{} listener {addr}: {e}", kind.as_str())),
        }
    }
    let udp = match UdpSockets::open(listen) {
        Ok(u) => Some(u),
        Err(e) => {
            errors.push(format!("UDP data sockets: {e}"));
            None
        }
    };
    Bound {
        listeners,
        udp,
        errors,
    }
}

/// The addresses of `listen` not among `running` that cannot be bound now (each bound and
/// closed at once), with their errors.
pub fn probe(listen: &Listen, running: &[SocketAddr], backlog: u32) -> Vec<String> {
    addresses(listen)
        .into_iter()
        .filter(|(_, a)| !running.contains(a))
        .filter_map(|(kind, addr)| {
            super::listen::bind(addr, backlog)
                .err()
                .map(|e| format!("{} listener {addr}: {e}", kind.as_str()))
        })
        .collect::<Vec<_>>()
}

/// Turns a failed bind into the error the daemon exits with.
pub fn fatal(errors: &[String]) -> io::Error {
    io::Error::other(format!("no listener could be bound: {}", errors.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_reported_and_the_rest_binds() -> io::Result<()> {
        let poll = Poll::new()?;
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let free = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let listen = Listen {
            http: vec![taken.local_addr()?],
            mms: Vec::new(),
            rtsp: Vec::new(),
            api: vec![free],
        };
        let b = bind(&poll, &listen, 16, 16, &mut Vec::new());
        assert_eq!(b.listeners.len(), 1);
        assert_eq!(b.listeners[0].addr, free);
        assert_eq!(b.errors.len(), 1, "{:?}", b.errors);
        assert!(b.errors[0].starts_with("http listener 127.0.0.1:"));
        // The probe skips what already runs and reports what cannot bind.
        assert_eq!(probe(&listen, &[free], 16).len(), 1);
        assert!(probe(&listen, &[taken.local_addr()?, free], 16).is_empty());
        Ok(())
    }
}
