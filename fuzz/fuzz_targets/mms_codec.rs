//! Fuzzes the MMS command codec ([MS-MMSP] TCP messages, `src/mms/codec.rs`).
//!
//! The input is a client's byte stream. It is framed by `CommandReader` twice: whole, and
//! in chunk splits drawn from the input; properties checked:
//! - framing never panics, and the two feedings yield the same commands and the same error
//!   (framing does not depend on how TCP splits the bytes);
//! - every command is at least the 40-byte command head, at most the reader's limit, its
//!   length field agrees with its size, and together the commands are a prefix of the input;
//! - `ClientMessage::decode` never panics, and decoding is deterministic;
//! - what the codec writes is read back: `frame` of the decoded command's fields frames to
//!   the same command number and decodes to the same message (for the fields-only messages),
//!   every `ServerMessage` frames through `CommandReader` unchanged with its number, and
//!   `DataHead` / `header_packets` round trip.
#![no_main]

mod common;

use asfcast::mms::codec::{
    command_number, frame, header_packets, ClientMessage, CodecError, CommandReader, DataHead,
    OpenFileReport, ServerMessage, COMMAND_HEAD_LEN, DATA_HEAD_LEN, TO_SERVER,
};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fn read_all(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Option<CodecError>) {
    let mut r = CommandReader::new(MAX);
    let mut out = Vec::new();
    for p in pieces {
        r.push(p);
        loop {
            match r.next_command() {
                Ok(Some(c)) => out.push(c),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let mut rng = common::Rng::new(data);
    let (whole, whole_err) = read_all(&[data]);
    let pieces = common::chunks(data, &mut rng);
    let (split, split_err) = read_all(&pieces);
    assert_eq!(whole, split, "commands depend on the chunk split");
    // An error is reported as soon as the bytes that show it are in; with the whole input in
    // at once the error may be the same one or show earlier. Both see an error or neither.
    assert_eq!(
        whole_err.is_some(),
        split_err.is_some(),
        "error depends on the chunk split: {whole_err:?} vs {split_err:?}"
    );

    let mut at = 0;
    for c in &whole {
        assert!(c.len() >= COMMAND_HEAD_LEN, "command shorter than its head");
        assert!(c.len() <= MAX, "command over the limit");
        assert_eq!(
            u32_at(c, 8) as usize + 16,
            c.len(),
            "length field disagrees"
        );
        assert_eq!(
            &data[at..at + c.len()],
            &c[..],
            "command is not the next input bytes"
        );
        at += c.len();
        check_message(c);
    }
    // The raw input as one command too (decode must not rely on the reader's checks).
    check_message(data);

    check_server_messages(data);
    check_data_heads(data);
});

fn check_message(c: &[u8]) {
    let Ok(m) = ClientMessage::decode(c) else {
        // Only the length checks fail a decode, and the longest is LinkViewerToMacReadBlock's.
        assert!(c.len() < 84, "decode failed on an {}-byte command", c.len());
        return;
    };
    // Deterministic (compared as text: a StartPlaying position may be NaN).
    let text = format!("{m:?}");
    assert_eq!(format!("{:?}", ClientMessage::decode(c).unwrap()), text);
    if let ClientMessage::ConnectFunnel { transport, .. } = &m {
        let _ = transport.to_string();
    }
    // Re-frame the fields (from offset 40) under the same MID: the command number is kept
    // and messages that depend only on the fields decode the same.
    let mid = TO_SERVER | u32::from(command_number(c).unwrap_or(0));
    let again = frame(mid, 0, &c[COMMAND_HEAD_LEN..]);
    assert_eq!(command_number(&again), command_number(c));
    let mut r = CommandReader::new(again.len());
    r.push(&again);
    assert_eq!(
        r.next_command().expect("frame() output frames"),
        Some(again.clone())
    );
    assert_eq!(r.buffered(), 0);
    if let Ok(m2) = ClientMessage::decode(&again) {
        match (&m, &m2) {
            // Padding to 8 bytes may add a NUL after an unterminated string; and StreamSwitch
            // may read one more (zero) entry. Compare what cannot change.
            (
                ClientMessage::StreamSwitch { entries: a },
                ClientMessage::StreamSwitch { entries: b },
            ) => {
                assert!(
                    b.starts_with(a),
                    "StreamSwitch entries changed: {a:?} vs {b:?}"
                );
            }
            _ => assert_eq!(
                std::mem::discriminant(&m),
                std::mem::discriminant(&m2),
                "re-framed command decodes to another message"
            ),
        }
    }
}

fn check_server_messages(data: &[u8]) {
    let w = |i: usize| {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .unwrap_or(0)
    };
    let mut report = OpenFileReport::error(w(0), w(1));
    report.open_file_id = w(2);
    report.attributes = w(3);
    report.duration_s = f64::from(w(4));
    report.packet_size = w(5);
    report.bit_rate = w(6);
    let msgs = [
        ServerMessage::ConnectedEx,
        ServerMessage::FunnelInfo { client_id: w(0) },
        ServerMessage::ConnectedFunnel {
            play_incarnation: w(1),
        },
        ServerMessage::DisconnectedFunnel {
            hr: w(2),
            play_incarnation: w(3),
        },
        ServerMessage::OpenFile(report),
        ServerMessage::ReadBlock {
            play_incarnation: w(4),
        },
        ServerMessage::StreamSwitch {
            play_incarnation: w(5),
        },
        ServerMessage::StartedPlaying {
            play_incarnation: w(6),
            file_id: w(7),
        },
        ServerMessage::EndOfStream {
            hr: w(8),
            play_incarnation: w(9),
        },
        ServerMessage::Ping,
    ];
    let seq = w(10) as u16;
    let mut stream = Vec::new();
    for m in &msgs {
        let b = m.encode(seq);
        assert_eq!((b.len() - 32) % 8, 0, "message not padded to 8 bytes");
        assert_eq!(command_number(&b), Some(m.number()));
        stream.extend_from_slice(&b);
    }
    let mut r = CommandReader::new(1 << 16);
    r.push(&stream);
    for m in &msgs {
        let c = r
            .next_command()
            .expect("server message frames")
            .expect("whole");
        assert_eq!(c, m.encode(seq));
    }
    assert_eq!(r.buffered(), 0);
}

fn check_data_heads(data: &[u8]) {
    if let Some(h) = DataHead::parse(data) {
        assert_eq!(DataHead::parse(&h.encode()), Some(h));
        assert_eq!(&h.encode()[..], &data[..DATA_HEAD_LEN]);
    }
    let max = data.first().map_or(1, |&b| usize::from(b) * 37 + 1);
    let inc = data.get(1).copied().unwrap_or(0);
    let parts = header_packets(data, max, inc);
    let mut back = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let h = DataHead::parse(p).expect("header packet has a data head");
        assert_eq!(h.location_id as usize, i);
        assert_eq!(h.incarnation, inc);
        assert_eq!(usize::from(h.packet_size), p.len());
        assert!(p.len() - DATA_HEAD_LEN <= max.max(1));
        let last = i + 1 == parts.len();
        assert_eq!(h.af_flags, if last { 0x0C } else { 0x04 });
        back.extend_from_slice(&p[DATA_HEAD_LEN..]);
    }
    assert_eq!(back, data, "header packets do not reassemble the blob");
}
