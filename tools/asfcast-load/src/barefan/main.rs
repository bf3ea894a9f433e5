//! `asfcast-barefan`: the floor of MMSH fan-out on this machine, for the fan-out benchmark.
//!
//! It serves one ASF file over MMS-over-HTTP the barest way there is: every `$D` chunk of the
//! whole file is framed once at start (padding stripped, as a station does), and then, every
//! `--interval`, each client gets the next interval's bytes (by send time) with one `write()`,
//! the same bytes for everyone: no station, no per-client queue, no fast start, no limits, no
//! logs. What asfcast spends above this at the same `write_interval` is what its protocol and
//! delivery logic cost; what this spends is what the kernel charges for the writes (on
//! loopback that includes the reading side of every TCP segment and waking the reader).
//!
//! A client's request is read once and answered with the MMSH play head and the `$H` header
//! (what `asfcast-load` asks: one GET with `xPlayStrm=1`); it then joins wherever the timeline
//! is (its first bytes need not start a key frame). A write that does not complete drops the
//! rest of that interval for that client, and the count is printed at the end.
//!
//! Loopback benchmarking only; not a server anyone should run.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use asfcast::asf::rewrite::strip_padding;
use asfcast::asf::AsfReader;
use asfcast::http::mmsh::{data_chunk_head, header_chunks, ChunkType};
use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

#[derive(Parser)]
#[command(about = "A bare MMSH fan-out server: one write per client per interval (a floor)")]
struct Args {
    /// The ASF file to serve (looped).
    file: PathBuf,
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:9500")]
    listen: SocketAddr,
    /// How often each client is written to, in ms (asfcast's `limits.write_interval`).
    #[arg(long, default_value_t = 250)]
    interval: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 3600)]
    seconds: u64,
}

/// The file framed once: the HTTP play head and `$H`, then the `$D` bytes of each interval.
struct Framed {
    head: Vec<u8>,
    slices: Vec<Vec<u8>>,
}

fn frame(args: &Args) -> Result<Framed, String> {
    let mut r = AsfReader::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut head = b"HTTP/1.0 200 OK\r\nContent-Type: application/x-mms-framed\r\n\
        Server: asfcast-barefan\r\nPragma: no-cache,client-id=1,features=\"broadcast\"\r\n\r\n"
        .to_vec();
    head.extend(header_chunks(r.header_bytes(), 0));
    let interval = u32::try_from(args.interval.max(1)).map_err(|_| "interval too long")?;
    let mut slices: Vec<Vec<u8>> = Vec::new();
    let mut location = 0u32;
    while let Some(p) = r.next_packet() {
        let p = p.map_err(|e| format!("{}: {e}", args.file.display()))?;
        let Ok(parsed) = p.parse() else { continue };
        let bytes = strip_padding(&parsed);
        let slot = usize::try_from(p.send_time / interval).map_err(|_| "send time")?;
        if slices.len() <= slot {
            slices.resize_with(slot + 1, Vec::new);
        }
        let chunk_head = data_chunk_head(ChunkType::Data, location, 0, 0, bytes.len())
            .map_err(|e| format!("packet {}: {e}", p.index))?;
        location = location.wrapping_add(1);
        if let Some(s) = slices.get_mut(slot) {
            s.extend_from_slice(&chunk_head);
            s.extend_from_slice(&bytes);
        }
    }
    if slices.is_empty() {
        return Err(format!("{}: no data packets", args.file.display()));
    }
    Ok(Framed { head, slices })
}

struct Client {
    stream: TcpStream,
    playing: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("asfcast-barefan: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let framed = frame(args)?;
    let io = |e: std::io::Error| e.to_string();
    let mut poll = Poll::new().map_err(io)?;
    let mut listener = TcpListener::bind(args.listen).map_err(io)?;
    const LISTENER: Token = Token(usize::MAX);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(io)?;
    let mut clients: Vec<Option<Client>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let interval = Duration::from_millis(args.interval.max(1));
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let mut next_tick = start + interval;
    let mut tick = 0usize;
    let (mut writes, mut short) = (0u64, 0u64);
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let wait = next_tick.saturating_duration_since(Instant::now());
        poll.poll(&mut events, Some(wait)).map_err(io)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let slot = clients.iter().position(Option::is_none).unwrap_or_else(|| {
                        clients.push(None);
                        clients.len() - 1
                    });
                    poll.registry()
                        .register(&mut stream, Token(slot), Interest::READABLE)
                        .map_err(io)?;
                    if let Some(c) = clients.get_mut(slot) {
                        *c = Some(Client {
                            stream,
                            playing: false,
                        });
                    }
                }
                continue;
            }
            let Some(entry) = clients.get_mut(ev.token().0) else {
                continue;
            };
            let Some(c) = entry.as_mut() else { continue };
            let mut closed = false;
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(_) => {
                        if !c.playing {
                            // The whole request came in one read (a loopback client's GET).
                            c.playing = true;
                            if c.stream.write_all(&framed.head).is_err() {
                                closed = true;
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed {
                if let Some(mut c) = entry.take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
            }
        }
        if Instant::now() >= next_tick {
            let slice = &framed.slices[tick % framed.slices.len()];
            tick += 1;
            next_tick += interval;
            if slice.is_empty() {
                continue;
            }
            for c in clients.iter_mut().flatten().filter(|c| c.playing) {
                writes += 1;
                match c.stream.write(slice) {
                    Ok(n) if n == slice.len() => {}
                    _ => short += 1,
                }
            }
        }
    }
    let live = clients.iter().flatten().count();
    println!(
        "asfcast-barefan: {} intervals, {writes} writes to {live} clients, {short} short or failed",
        tick
    );
    Ok(())
}
