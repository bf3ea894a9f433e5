//! Raw protocol clients and process probes for the hostile-client tests: the daemon's RSS and
//! UDP sockets from /proc, an MMSH player that counts what it reads (or never reads), the MMS
//! handshake up to StartPlaying, RTSP requests, and FFmpeg as the control client.
//!
//! Everything here measures ratios and counts, never wall-clock durations: the machine is shared.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::rewrite::strip_padding;
use asfcast::asf::AsfReader;
use asfcast::mms::codec::{cmd, frame, DataHead, SESSION_ID, TO_SERVER};

pub const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// /proc probes

/// The resident set size of `pid` in bytes (VmRSS in /proc/PID/status); 0 once it is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// A UDP socket of a process, from /proc/PID/net/udp joined with its descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketInfo {
    pub local: SocketAddr,
    /// Bytes waiting in its receive queue: more than 0 means someone sent to it.
    pub rx_queue: u64,
    /// Datagrams the kernel dropped on it (full receive buffer).
    pub drops: u64,
}

fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The IPv4 UDP sockets `pid` holds.
pub fn udp_sockets(pid: u32) -> Vec<UdpSocketInfo> {
    let inodes = socket_inodes(pid);
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            let inode: u64 = f.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            let (ip, port) = f.get(1)?.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = std::net::Ipv4Addr::from(u32::from_be(ip));
            let (_, rx) = f.get(4)?.split_once(':')?;
            Some(UdpSocketInfo {
                local: SocketAddr::new(ip.into(), port),
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
                drops: f.get(12).and_then(|d| d.parse().ok()).unwrap_or(0),
            })
        })
        .collect()
}

/// The remote addresses of the IPv4 TCP connections `pid` holds (listeners excluded).
pub fn tcp_peers(pid: u32) -> Vec<SocketAddr> {
    let inodes = socket_inodes(pid);
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = f.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) || *f.get(3)? == "0A" {
                return None;
            }
            let (ip, port) = f.get(2)?.split_once(':')?;
            let ip = std::net::Ipv4Addr::from(u32::from_be(u32::from_str_radix(ip, 16).ok()?));
            Some(SocketAddr::new(
                ip.into(),
                u16::from_str_radix(port, 16).ok()?,
            ))
        })
        .collect()
}

/// Samples the RSS of `pid` every 50 ms in a thread; the peak when stopped.
pub struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<thread::JoinHandle<()>>,
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
        let handle = {
            let (stop, peak) = (stop.clone(), peak.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(50));
                }
            })
        };
        RssWatch {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// The peak so far.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Stops sampling; the peak.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak()
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// MMSH

/// FFmpeg's MMSH Play request for `station` (run-on last Pragma included).
pub fn mmsh_play_request(station: &str) -> String {
    format!(
        "GET /{station} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\nPragma: no-cache,rate=1.000000,request-context=2\r\n\
Pragma: xPlayStrm=1\r\nPragma: xClientGUID={{c77e7400-738a-11d2-9add-0020af0a3278}}\r\n\
Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close\r\n\r\n"
    )
}

/// Stripped ASF bytes per second of `media` plus `per_packet` framing bytes per packet: what
/// a client that keeps up receives (12 for MMSH's `$D` chunk head, 8 for MMS data).
pub fn stream_rate(media: &Path, per_packet: u64) -> f64 {
    let mut r = AsfReader::open(media).unwrap();
    let mut bytes = 0u64;
    let mut last = 0u32;
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        last = p.send_time;
        bytes += strip_padding(&p.parse().unwrap()).len() as u64 + per_packet;
    }
    bytes as f64 / (f64::from(last) / 1000.0)
}

/// A socket with a tiny receive buffer (so the daemon's sends back up at once).
pub fn tiny_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_recv_buffer_size(2048)?;
    s.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(s)
}

/// Plays `station` over MMSH and never reads.
pub fn mmsh_non_reader(addr: SocketAddr, station: &str) -> io::Result<TcpStream> {
    let s: TcpStream = tiny_socket(addr)?.into();
    (&s).write_all(mmsh_play_request(station).as_bytes())?;
    Ok(s)
}

/// A client that reads everything from a stream in a thread and counts the bytes; the
/// count is sampled by the test, which compares it with the stream's own rate.
pub struct CountingReader {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    ended: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<Vec<u8>>>,
}

impl CountingReader {
    /// Reads `s` until EOF or [`Self::finish`]; keeps the last `keep` bytes.
    pub fn spawn(mut s: TcpStream, keep: usize) -> CountingReader {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicBool::new(false));
        let handle = {
            let (stop, bytes, ended) = (stop.clone(), bytes.clone(), ended.clone());
            thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            kept.extend_from_slice(&buf[..n]);
                            if kept.len() > 2 * keep {
                                kept.drain(..kept.len() - keep);
                            }
                            bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
                ended.store(true, Ordering::Relaxed);
                kept
            })
        };
        CountingReader {
            stop,
            bytes,
            ended,
            handle: Some(handle),
        }
    }

    /// Plays `station` over MMSH and counts.
    pub fn mmsh(addr: SocketAddr, station: &str) -> CountingReader {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(mmsh_play_request(station).as_bytes()).unwrap();
        CountingReader::spawn(s, 1 << 20)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// True once the server closed the stream (EOF or reset).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// Stops reading; the last bytes read (at least `keep` of them when there were that many).
    pub fn finish(mut self) -> Vec<u8> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for CountingReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits until `ended()` or `limit`; whether it ended.
pub fn wait_ended(r: &CountingReader, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !r.ended() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    r.ended()
}

// ---------------------------------------------------------------------------
// MMS (TCP)

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

/// A client command with its fields.
pub fn mms_command(number: u16, fields: &[u8]) -> Vec<u8> {
    frame(TO_SERVER | u32::from(number), 0, fields)
}

/// What the server sent: a command reply (its number) or a data packet.
pub enum Pdu {
    Command(u16),
    Data(DataHead, Vec<u8>),
}

pub fn mms_read_pdu(s: &mut TcpStream) -> io::Result<Pdu> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head)?;
    if u32::from_le_bytes(head[4..8].try_into().unwrap()) == SESSION_ID {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut rest = vec![0u8; u32::from_le_bytes(len) as usize + 4];
        s.read_exact(&mut rest)?;
        return Ok(Pdu::Command(u16::from_le_bytes([rest[24], rest[25]])));
    }
    let h = DataHead::parse(&head)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad data head"))?;
    let mut payload = vec![0u8; (h.packet_size as usize).saturating_sub(8)];
    s.read_exact(&mut payload)?;
    Ok(Pdu::Data(h, payload))
}

/// The next command reply, skipping data packets; its number.
pub fn mms_next_reply(s: &mut TcpStream) -> io::Result<u16> {
    loop {
        if let Pdu::Command(n) = mms_read_pdu(s)? {
            return Ok(n);
        }
    }
}

/// The MMS commands FFmpeg sends, in order, with `funnel` as the ConnectFunnel name
/// (`\\192.168.0.129\TCP\1037` for TCP data, `\\127.0.0.1\UDP\<port>` for UDP data):
/// Connect, ConnectFunnel, OpenFile, ReadBlock, StreamSwitch, StartPlaying.
pub fn mms_commands(funnel: &str, station: &str) -> Vec<(u16, Vec<u8>)> {
    let mut connect = words(&[0, 0x0004_000B, 0x0003_001C]);
    connect.extend(utf16z(
        "NSPlayer/7.0.0.1956; {00000000-0000-0000-0000-000000000000}; Host: x",
    ));
    let mut funnel_f = words(&[0, 0xFFFF_FFFF, 0, 0x0098_9680, 2]);
    funnel_f.extend(utf16z(funnel));
    let mut open = words(&[1, 0xFFFF_FFFF, 0, 0]);
    open.extend(utf16z(station));
    let mut read = words(&[1, 0, 0, 0x8000, 0xFFFF_FFFF, 0]);
    read.extend(0f64.to_le_bytes());
    read.extend(3600f64.to_le_bytes());
    read.extend(words(&[2, 0]));
    let mut switch = words(&[2]);
    for stream in [1u16, 2] {
        switch.extend(0xFFFFu16.to_le_bytes());
        switch.extend(stream.to_le_bytes());
        switch.extend(0u16.to_le_bytes());
    }
    let mut start = words(&[1, 0x0001_FFFF]);
    start.extend(0f64.to_le_bytes());
    start.extend(words(&[0xFFFF_FFFF, 0xFFFF_FFFF]));
    start.extend([0xFF, 0xFF, 0xFF, 0x00]);
    start.extend(words(&[4]));
    vec![
        (cmd::CONNECT, connect),
        (cmd::CONNECT_FUNNEL, funnel_f),
        (cmd::OPEN_FILE, open),
        (cmd::READ_BLOCK, read),
        (cmd::STREAM_SWITCH, switch),
        (cmd::START_PLAYING, start),
    ]
}

/// The TCP-data handshake up to StartPlaying on `s`, checking each reply; data packets (the
/// header) in between are skipped.
pub fn mms_play_tcp(s: &mut TcpStream, station: &str) -> io::Result<()> {
    let replies = [0x01u16, 0x02, 0x06, 0x11, 0x21, 0x05];
    for ((number, fields), want) in mms_commands("\\\\192.168.0.129\\TCP\\1037", station)
        .into_iter()
        .zip(replies)
    {
        s.write_all(&mms_command(number, &fields))?;
        let got = mms_next_reply(s)?;
        if got != want {
            return Err(io::Error::other(format!(
                "reply 0x{got:02x} to command 0x{number:02x}, want 0x{want:02x}"
            )));
        }
    }
    Ok(())
}

/// An MMS client that plays `station` over TCP and then never reads.
pub fn mms_non_reader(addr: SocketAddr, station: &str) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    mms_play_tcp(&mut s, station)?;
    let s: socket2::Socket = s.into();
    // Shrink the buffer now that the handshake is through (it mostly applies to new data).
    let _ = s.set_recv_buffer_size(2048);
    Ok(s.into())
}

// ---------------------------------------------------------------------------
// RTSP

/// Sends one RTSP request and reads one response head (and its body, by Content-Length),
/// skipping interleaved `$` frames; the whole response as text.
pub fn rtsp_exchange(s: &mut TcpStream, request: &str) -> io::Result<String> {
    s.write_all(request.as_bytes())?;
    rtsp_read_response(s)
}

pub fn rtsp_read_response(s: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        s.read_exact(&mut byte)?;
        if head.is_empty() && byte[0] == b'$' {
            let mut h = [0u8; 3];
            s.read_exact(&mut h)?;
            let mut skip = vec![0u8; u16::from_be_bytes([h[1], h[2]]) as usize];
            s.read_exact(&mut skip)?;
            continue;
        }
        head.push(byte[0]);
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > 65536 {
            return Err(io::Error::other("response head too long"));
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let len = rtsp_header(&text, "Content-Length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(text + &String::from_utf8_lossy(&body))
}

/// The value of the first header `name` (case-insensitive) in a response.
pub fn rtsp_header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// DESCRIBE, then SETUP of every `a=control:` stream with `transport(i)`, then PLAY, on `s`;
/// the SETUP replies. Fails on a non-200 answer.
pub fn rtsp_play(
    s: &mut TcpStream,
    url: &str,
    transport: impl Fn(usize) -> String,
) -> io::Result<Vec<String>> {
    let d = rtsp_exchange(
        s,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"),
    )?;
    if !d.starts_with("RTSP/1.0 200") {
        return Err(io::Error::other(format!("DESCRIBE: {d}")));
    }
    let controls: Vec<String> = d
        .lines()
        .filter_map(|l| l.strip_prefix("a=control:"))
        .map(str::trim)
        .filter(|c| *c != "*" && !c.is_empty())
        .map(|c| {
            if c.starts_with("rtsp://") {
                c.to_owned()
            } else {
                format!("{url}/{c}")
            }
        })
        .filter(|c| c.trim_end_matches('/') != url.trim_end_matches('/') && !c.ends_with("/rtx"))
        .collect();
    let mut session: Option<String> = None;
    let mut replies = Vec::new();
    for (i, c) in controls.iter().enumerate() {
        let sess = session
            .as_ref()
            .map(|v| format!("Session: {v}\r\n"))
            .unwrap_or_default();
        let r = rtsp_exchange(
            s,
            &format!(
                "SETUP {c} RTSP/1.0\r\nCSeq: {}\r\n{sess}Transport: {}\r\n\r\n",
                i + 2,
                transport(i)
            ),
        )?;
        if !r.starts_with("RTSP/1.0 200") {
            return Err(io::Error::other(format!("SETUP {c}: {r}")));
        }
        if session.is_none() {
            session = rtsp_header(&r, "Session").map(|v| v.split(';').next().unwrap().to_owned());
        }
        replies.push(r);
    }
    let p = rtsp_exchange(
        s,
        &format!(
            "PLAY {url} RTSP/1.0\r\nCSeq: 99\r\nSession: {}\r\nRange: npt=0-\r\n\r\n",
            session.unwrap_or_default()
        ),
    )?;
    if !p.starts_with("RTSP/1.0 200") {
        return Err(io::Error::other(format!("PLAY: {p}")));
    }
    Ok(replies)
}

// ---------------------------------------------------------------------------
// FFmpeg, the control client

/// Frames FFmpeg decodes from `url` in `seconds` of stream time (`ffmpeg -i URL -t SECS -f
/// framemd5 -`, bounded by `timeout 30`); every stream's frames together.
pub fn ffmpeg_frames(url: &str, seconds: u32) -> Result<u64, String> {
    let limit = Duration::from_secs(30);
    let mut cmd = super::bounded(limit, "ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i", url, "-t"])
        .arg(seconds.to_string())
        .args(["-f", "framemd5", "-"]);
    let out = super::run_bounded(&mut cmd, limit).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().filter(|l| !l.starts_with('#')).count() as u64)
}
