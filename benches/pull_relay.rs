//! Pull relay benchmark (issue 10): what a `pull` edge adds between an origin station and a
//! player, and how long an edge takes to stream again after its origin restarts.
//!
//! ```text
//! cargo bench --bench pull_relay            # unicast on 127.0.0.1 only; no namespace needed
//! ```
//!
//! # Method
//!
//! - An origin (`asfcast run`, playlist of the demo media) and an edge (`source.type: pull`
//!   from the origin's `mmsh://`), each its own daemon on its own ports.
//! - Added latency: two MMSH players read at the same time, one from the origin and one from
//!   the edge (plain sockets in two threads doing only `read`); each `$D` chunk's arrival
//!   instant is taken when its last byte is read, and the packet is matched across the two by
//!   its bytes (the edge passes packets through unchanged on its first connection). The figure
//!   is edge arrival − origin arrival per packet, p50/p99/max over the window: what the extra
//!   hop (origin → edge socket, the edge's station runtime, edge → player) costs a player.
//!   Both daemons run with `limits.write_interval: 0` (each packet written at once) and with
//!   the default (250 ms write batching); with batching both the origin's write to the edge
//!   and the edge's write to the player wait for their batch.
//! - Reconnect: the origin is stopped (SIGTERM: its clients get `$E`), started again at once
//!   on the same port, and the edge's player keeps reading. Printed: origin listening again →
//!   first packet at the edge's player, and the whole gap the player saw (last packet before
//!   the stop → first packet after). With the default back-off the edge's first retry is 1 s
//!   after the loss, so the gap is the origin's restart time plus up to that.
//!
//! Knobs (environment): `PULL_SECONDS` (latency window per configuration, default 20).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use asfcast::http::mmsh::{ChunkReader, ChunkType};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_asfcast"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn wait_tcp(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("{addr} not listening");
}

struct Node {
    child: Child,
    dir: PathBuf,
    http: SocketAddr,
}

impl Node {
    fn start(dir: &Path, write_interval: &str, station: &str) -> Node {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        let http: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.join("server.yaml"),
            format!(
                "listen:\n  http: {http}\n  mms: false\n  rtsp: false\nannounce_dir: {}\nlimits:\n  write_interval: {write_interval}\n",
                dir.join("announce").display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("demo.yaml"), station).unwrap_or_else(|e| panic!("{e}"));
        let node = Node::spawn(dir, http);
        wait_tcp(http);
        node
    }

    fn spawn(dir: &Path, http: SocketAddr) -> Node {
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap_or_else(|e| panic!("{e}")))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        Node {
            child,
            dir: dir.to_path_buf(),
            http,
        }
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads `$D` chunks from a station's MMSH Play until `stop`; (arrival, packet hash) each.
fn player(http: SocketAddr, stop: Arc<AtomicBool>, out: Arc<Mutex<Vec<(Instant, u64)>>>) {
    let Ok(mut s) = TcpStream::connect(http) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = write!(
        s,
        "GET /demo HTTP/1.0\r\nUser-Agent: NSPlayer/7.10.0.3059\r\nPragma: xPlayStrm=1\r\n\
         Pragma: xClientGUID={{c77e7400-738a-11d2-9add-0020af0a3278}}\r\n\
         Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0\r\n\r\n"
    );
    let mut head = Vec::new();
    let mut r = ChunkReader::new();
    let mut buf = vec![0u8; 65536];
    let mut in_body = false;
    while !stop.load(Ordering::Relaxed) {
        let n = match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(_) => continue,
        };
        let now = Instant::now();
        let mut bytes = &buf[..n];
        if !in_body {
            head.extend_from_slice(bytes);
            let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            r.push(&head[i + 4..]);
            in_body = true;
            bytes = &[];
        }
        r.push(bytes);
        while let Ok(Some(c)) = r.next_chunk() {
            if c.kind == ChunkType::Data {
                let mut h = DefaultHasher::new();
                c.payload.hash(&mut h);
                if let Ok(mut o) = out.lock() {
                    o.push((now, h.finish()));
                }
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency(base: &Path, write_interval: &str, secs: u64) {
    let media = root().join("station-configs/media/demo.asf");
    let origin = Node::start(
        &base.join(format!("origin-{write_interval}")),
        write_interval,
        &format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\n",
            media.display()
        ),
    );
    let edge = Node::start(
        &base.join(format!("edge-{write_interval}")),
        write_interval,
        &format!(
            "name: demo\nsource:\n  type: pull\n  url: mmsh://{}/demo\n",
            origin.http
        ),
    );
    thread::sleep(Duration::from_secs(2));
    let stop = Arc::new(AtomicBool::new(false));
    let o = Arc::new(Mutex::new(Vec::new()));
    let e = Arc::new(Mutex::new(Vec::new()));
    let threads = [(origin.http, o.clone()), (edge.http, e.clone())].map(|(addr, out)| {
        let stop = stop.clone();
        thread::spawn(move || player(addr, stop, out))
    });
    thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let o = o.lock().map(|v| v.clone()).unwrap_or_default();
    let e = e.lock().map(|v| v.clone()).unwrap_or_default();
    // A looping playlist sends the same packet bytes once per loop: match the nearest copy.
    let mut at: HashMap<u64, Vec<Instant>> = HashMap::new();
    for (t, h) in &o {
        at.entry(*h).or_default().push(*t);
    }
    let mut ms: Vec<f64> = e
        .iter()
        .filter_map(|(t, h)| {
            at.get(h)?
                .iter()
                .filter(|ot| **ot <= *t + Duration::from_secs(2))
                .map(|ot| {
                    t.saturating_duration_since(*ot).as_secs_f64() * 1000.0
                        - ot.saturating_duration_since(*t).as_secs_f64() * 1000.0
                })
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let steady = ms;
    println!(
        "write_interval={write_interval}: origin player {} packets, edge player {} packets, matched {}; \
         edge − origin arrival: p50={:.1} ms p99={:.1} ms max={:.1} ms",
        o.len(),
        e.len(),
        steady.len(),
        percentile(&steady, 0.5),
        percentile(&steady, 0.99),
        steady.last().copied().unwrap_or(f64::NAN),
    );
}

fn reconnect(base: &Path) {
    let media = root().join("station-configs/media/demo.asf");
    let mut origin = Node::start(
        &base.join("origin-restart"),
        "0",
        &format!(
            "name: demo\nsource:\n  type: playlist\n  files: [{}]\n",
            media.display()
        ),
    );
    let edge = Node::start(
        &base.join("edge-restart"),
        "0",
        &format!(
            "name: demo\nsource:\n  type: pull\n  url: mmsh://{}/demo\n",
            origin.http
        ),
    );
    thread::sleep(Duration::from_secs(2));
    let stop = Arc::new(AtomicBool::new(false));
    let e = Arc::new(Mutex::new(Vec::new()));
    let t = {
        let (stop, e, addr) = (stop.clone(), e.clone(), edge.http);
        thread::spawn(move || player(addr, stop, e))
    };
    for round in 1..=3 {
        thread::sleep(Duration::from_secs(4));
        let stopping = Instant::now();
        origin.stop();
        let http = origin.http;
        let dir = origin.dir.clone();
        origin = Node::spawn(&dir, http);
        wait_tcp(http);
        let listening = Instant::now();
        thread::sleep(Duration::from_secs(5));
        let seen = e.lock().map(|v| v.clone()).unwrap_or_default();
        let before = seen
            .iter()
            .rev()
            .find(|(t, _)| *t < stopping)
            .map(|(t, _)| *t);
        let after = seen.iter().find(|(t, _)| *t > listening).map(|(t, _)| *t);
        match (before, after) {
            (Some(b), Some(a)) => println!(
                "restart {round}: origin down and up again in {:.0} ms; edge's player: first packet {:.0} ms after the origin listened, gap {:.0} ms",
                listening.duration_since(stopping).as_secs_f64() * 1000.0,
                a.duration_since(listening).as_secs_f64() * 1000.0,
                a.duration_since(b).as_secs_f64() * 1000.0,
            ),
            _ => println!("restart {round}: the edge's player got no packet after the restart"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = std::env::var("PULL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let base = std::env::temp_dir().join(format!("asfcast-pull-bench-{}", std::process::id()));
    latency(&base, "0", secs);
    latency(&base, "250ms", secs);
    reconnect(&base);
    let _ = std::fs::remove_dir_all(&base);
}
