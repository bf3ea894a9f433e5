//! An encoder's push ([MS-WMHTTP]) from the test side: a file's `$H` payload and packets,
//! PushStart on `/live`, `$D` chunks in real time (the spec's 4-byte chunk layout). Shared by
//! the live push tests and the MBR push test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use asfcast::asf::AsfReader;
use asfcast::http::push::framing::{write_chunk, Layout};

/// `$H` payload and packets of a file.
pub fn parts(path: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut r = AsfReader::open(path).unwrap();
    let mut head = r.header_bytes().to_vec();
    head.extend_from_slice(&r.data_head().to_bytes());
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet() {
        packets.push(p.unwrap().bytes);
    }
    (head, packets)
}

pub fn response_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The push-id a PushSetup answer sets (`Set-Cookie: push-id=…`, [MS-WMHTTP] 2.2.3.1).
pub fn push_id(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: push-id="))
        .unwrap_or_else(|| panic!("no push-id: {head}"))
        .trim()
        .to_string()
}

pub fn push_start(addr: SocketAddr, push_id: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write_push_start(&mut s, addr, push_id);
    s
}

pub fn write_push_start(s: &mut TcpStream, addr: SocketAddr, push_id: &str) {
    write!(
        s,
        "POST /live HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: WMEncoder/12.0.7601.17514\r\n\
         Content-Type: application/x-wms-pushstart\r\nCookie: push-id={push_id}\r\n\
         Content-Length: 2147483647\r\nCache-Control: no-cache\r\n\r\n"
    )
    .unwrap();
}

/// Writes packets `from..from + n` (looping) in real time for demo.asf (15.5 a second); the
/// next index.
pub fn send_packets(s: &mut TcpStream, packets: &[Vec<u8>], from: usize, n: usize) -> usize {
    send_packets_at(s, packets, from, n, 16)
}

/// Writes packets `from..from + n` (looping) as `$D` chunks, `per_sec` a second; the next
/// index.
pub fn send_packets_at(
    s: &mut TcpStream,
    packets: &[Vec<u8>],
    from: usize,
    n: usize,
    per_sec: u64,
) -> usize {
    let start = Instant::now();
    for i in 0..n {
        let p = &packets[(from + i) % packets.len()];
        s.write_all(&write_chunk(Layout::Spec, b'D', p, 0).unwrap())
            .unwrap();
        let due = start + Duration::from_millis((i as u64 + 1) * 1000 / per_sec.max(1));
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            thread::sleep(d);
        }
    }
    from + n
}
