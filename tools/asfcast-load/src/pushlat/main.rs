//! `asfcast-pushlat`: what a live station adds to an encoder's stream, measured end to end.
//!
//! An in-process encoder pushes an ASF file to a `push` station ([MS-WMHTTP] PushStart with
//! the spec's 4-byte chunks, `Content-Length: 2147483647`), packet by packet at the file's
//! send times, looping, and notes when it wrote each packet; one MMSH player reads the station
//! and notes when each packet arrives. A packet is recognised by a hash of its payload data
//! (the station rewrites times and strips padding, never the media bytes).
//!
//! Reported (JSON on stdout):
//! - `latency_ms`: p50/p99/max of encoder write → MMSH client receive over the run;
//! - with `--switch`: after `--seconds` the encoder closes its connection (live lost) and
//!   comes back `--off` seconds later; `to_slate_ms` is live lost → the first packet at the
//!   client that the encoder did not send (the fallback), `to_live_ms` is the encoder's
//!   reconnect → the first of its packets at the client (the station waits for a key frame).
//!
//! Loopback only; a measurement tool, not a test.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::{AsfReader, Packet};
use asfcast::http::mmsh::{ChunkReader, ChunkType};
use asfcast::http::push::framing::{write_chunk, Layout};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Latency and switch time of a push station, encoder write to MMSH receive")]
struct Args {
    /// The station's HTTP listener (push and MMSH on the same port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The station name.
    #[arg(long, default_value = "live")]
    station: String,
    /// The ASF file the encoder pushes.
    #[arg(long)]
    file: PathBuf,
    /// Seconds of pushing (before the switch, with --switch).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Also measure the switch to the fallback and back.
    #[arg(long)]
    switch: bool,
    /// Seconds the encoder stays away with --switch.
    #[arg(long, default_value_t = 6)]
    off: u64,
}

type Written = Arc<Mutex<HashMap<u64, Instant>>>;

fn key(packet: &[u8]) -> Option<u64> {
    let p = Packet::parse(packet).ok()?;
    let mut h = DefaultHasher::new();
    for pl in &p.payloads {
        packet.get(pl.data.clone())?.hash(&mut h);
    }
    Some(h.finish())
}

/// The encoder: pushes the file for `seconds`, looping, noting each packet's write instant.
fn push(args: &Args, written: &Written, seconds: u64) -> std::io::Result<()> {
    let mut r = AsfReader::open(&args.file).map_err(std::io::Error::other)?;
    let mut head = r.header_bytes().to_vec();
    head.extend_from_slice(&r.data_head().to_bytes());
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.map_err(std::io::Error::other)?;
        let send = Packet::parse(&p.bytes).map_or(0, |x| x.send_time);
        packets.push((send, p.bytes));
    }
    let mut s = TcpStream::connect(args.http)?;
    s.set_nodelay(true)?;
    write!(
        s,
        "POST /{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: WMEncoder/12.0.7601.17514\r\n\
         Content-Type: application/x-wms-pushstart\r\nCookie: push-id=0\r\n\
         Content-Length: 2147483647\r\n\r\n",
        args.station, args.http
    )?;
    s.write_all(&write_chunk(Layout::Spec, b'H', &head, 0).unwrap_or_default())?;
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut loop_base = 0u64;
    'outer: loop {
        let first = packets.first().map_or(0, |p| p.0);
        let mut last = 0u64;
        for (send, bytes) in &packets {
            let at = loop_base + u64::from(send.saturating_sub(first));
            last = at;
            let due = start + Duration::from_millis(at);
            if due >= end {
                break 'outer;
            }
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                thread::sleep(d);
            }
            let chunk = write_chunk(Layout::Spec, b'D', bytes, 0).unwrap_or_default();
            if let (Some(k), Ok(mut w)) = (key(bytes), written.lock()) {
                w.insert(k, Instant::now());
            }
            s.write_all(&chunk)?;
        }
        loop_base = last + 100;
    }
    // Live lost: the connection closes without `$E`.
    drop(s);
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args = Arc::new(Args::parse());
    let written: Written = Arc::new(Mutex::new(HashMap::new()));
    // The player first (it plays the slate), then the encoder.
    let mut player = TcpStream::connect(args.http).expect("connect the player");
    let req =
        asfcast_load::mmsh::play_request(&args.http.to_string(), &format!("/{}", args.station), 1);
    player.write_all(&req).expect("play request");
    player
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    thread::sleep(Duration::from_millis(500));
    let lost_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let back_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let encoder = {
        let (args, written, lost_at, back_at) = (
            args.clone(),
            written.clone(),
            lost_at.clone(),
            back_at.clone(),
        );
        thread::spawn(move || {
            push(&args, &written, args.seconds).expect("push");
            if args.switch {
                if let Ok(mut l) = lost_at.lock() {
                    *l = Some(Instant::now());
                }
                thread::sleep(Duration::from_secs(args.off));
                if let Ok(mut b) = back_at.lock() {
                    *b = Some(Instant::now());
                }
                push(&args, &written, 8).expect("push again");
            }
        })
    };
    let total = Duration::from_secs(args.seconds + if args.switch { args.off + 8 } else { 0 });
    let deadline = Instant::now() + total + Duration::from_secs(1);
    let mut reader = ChunkReader::new();
    let mut head_done = false;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut latencies = Vec::new();
    let (mut to_slate, mut to_live) = (None, None);
    let (mut packets, mut unknown) = (0u64, 0u64);
    while Instant::now() < deadline {
        let n = match player.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => panic!("player read: {e}"),
        };
        let now = Instant::now();
        let mut data = &buf[..n];
        if !head_done {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            head_done = true;
            reader.push(&head[end + 4..]);
            data = &[];
        }
        reader.push(data);
        while let Ok(Some(c)) = reader.next_chunk() {
            if c.kind != ChunkType::Data {
                continue;
            }
            packets += 1;
            let wrote = key(&c.payload).and_then(|k| written.lock().ok()?.get(&k).copied());
            let lost = lost_at.lock().ok().and_then(|l| *l);
            let back = back_at.lock().ok().and_then(|b| *b);
            match wrote {
                Some(w) if now.duration_since(w) < Duration::from_secs(5) => {
                    let back_live = back.is_some_and(|b| w >= b);
                    if back_live && to_live.is_none() {
                        to_live = back.map(|b| now.duration_since(b));
                    }
                    if lost.is_none() || back_live {
                        latencies.push(now.duration_since(w).as_secs_f64() * 1000.0);
                    }
                }
                _ => {
                    unknown += 1;
                    if let (Some(l), None, None) = (lost, to_slate, back) {
                        to_slate = Some(now.duration_since(l));
                    }
                }
            }
        }
    }
    let _ = encoder.join();
    latencies.sort_by(f64::total_cmp);
    let ms = |d: Option<Duration>| {
        d.map_or(serde_json::Value::Null, |d| {
            (d.as_secs_f64() * 1000.0).into()
        })
    };
    let report = serde_json::json!({
        "packets": packets,
        "not_from_the_encoder": unknown,
        "latency_ms": {
            "samples": latencies.len(),
            "p50": percentile(&latencies, 0.5),
            "p99": percentile(&latencies, 0.99),
            "max": latencies.last().copied().unwrap_or(0.0),
        },
        "to_slate_ms": ms(to_slate),
        "to_live_ms": ms(to_live),
    });
    println!("{report}");
}
