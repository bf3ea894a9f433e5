//! The DESCRIBE answers' shared part, made once per station header: the `a=pgmpu` line
//! ([`PgmpuLine`], the ASF header in base64, as large as the header itself), so that 1,000
//! players describing a station at once encode its header once instead of 1,000 times.
//!
//! The rest of an SDP depends on the request (control URLs from its URL and host, the
//! layout its User-Agent picks, the session's own origin id) and is written per DESCRIBE
//! by [`super::sdp::describe_with`]; only what depends on the header bytes alone is kept
//! here.
//!
//! **Keyed by the header's identity.** A new header (a new playlist entry, a live encoder's
//! new header, a restarted station) always comes with a new allocation of its bytes
//! ([`StationHeader::bytes`]), so an entry is matched by that allocation, held weakly: while
//! the entry exists the allocation cannot be reused for another header, and a header whose
//! last user is gone leaves a dead entry that the next miss clears. At most
//! [`MAX_ENTRIES`] live entries are kept (the oldest goes first), so hostile or many-station
//! use cannot grow it beyond that. Pure: no clock, no I/O; the shell hands one cache to
//! every RTSP session ([`SharedSdpCache`]).

use std::cell::RefCell;
use std::rc::Rc;

use crate::station::StationHeader;

use super::sdp::PgmpuLine;

/// Most headers kept (one per station in use; a miss beyond it drops the oldest).
pub const MAX_ENTRIES: usize = 64;

/// The cache every RTSP session of the daemon shares (the loop is single-threaded).
pub type SharedSdpCache = Rc<RefCell<SdpCache>>;

struct Entry {
    /// The header bytes' allocation this line was made from.
    bytes: std::sync::Weak<[u8]>,
    line: Rc<PgmpuLine>,
}

/// `a=pgmpu` lines by header.
#[derive(Default)]
pub struct SdpCache {
    entries: Vec<Entry>,
    /// Lines made (misses), for tests and benchmarks.
    encoded: u64,
}

impl SdpCache {
    /// A cache to share between sessions.
    pub fn shared() -> SharedSdpCache {
        Rc::new(RefCell::new(SdpCache::default()))
    }

    /// The `a=pgmpu` line of `header`: the one made for the same header bytes before, or a
    /// new one.
    pub fn pgmpu(&mut self, header: &StationHeader) -> Rc<PgmpuLine> {
        let key = std::sync::Arc::downgrade(&header.bytes);
        if let Some(e) = self.entries.iter().find(|e| e.bytes.ptr_eq(&key)) {
            return Rc::clone(&e.line);
        }
        self.entries.retain(|e| e.bytes.strong_count() > 0);
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.remove(0);
        }
        let line = Rc::new(PgmpuLine::new(header));
        self.entries.push(Entry {
            bytes: key,
            line: Rc::clone(&line),
        });
        self.encoded += 1;
        line
    }

    /// How many lines were encoded so far (one per header described, when the cache works).
    pub fn encoded(&self) -> u64 {
        self.encoded
    }

    /// Headers kept now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no header is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a weak handle, for tests that check an entry does not outlive its header.
    #[cfg(test)]
    fn lines(&self) -> Vec<std::rc::Weak<PgmpuLine>> {
        self.entries
            .iter()
            .map(|e| Rc::downgrade(&e.line))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine;

    use super::*;
    use crate::asf::{AsfHeader, DataHead};
    use crate::rtsp::sdp::{describe, describe_with, Layout};

    fn header(generation: u64, file: &[u8]) -> Arc<StationHeader> {
        let h = AsfHeader::parse(file).expect("fixture header");
        Arc::new(StationHeader::live(
            generation,
            &h,
            &DataHead::broadcast(h.file.file_id),
            1,
        ))
    }

    /// The Header Object of a file in station-configs/media.
    fn media_header(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/station-configs/media/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::read(path).expect("demo media");
        let size = u64::from_le_bytes(file[16..24].try_into().unwrap()) as usize;
        file[..size].to_vec()
    }

    /// The pgmpu payload of an SDP, decoded.
    fn pgmpu_bytes(sdp: &str) -> Vec<u8> {
        let line = sdp
            .lines()
            .find_map(|l| l.strip_prefix("a=pgmpu:data:application/vnd.ms.wms-hdr.asfv1;base64,"))
            .expect("pgmpu line");
        base64::engine::general_purpose::STANDARD
            .decode(line)
            .expect("base64")
    }

    fn cached_describe(cache: &mut SdpCache, h: &StationHeader, base: &str, id: u64) -> String {
        let line = cache.pgmpu(h);
        describe_with(&line, h, base, "demo", id, Layout::PerStream).sdp
    }

    #[test]
    fn a_thousand_describes_of_one_header_encode_it_once_and_match_the_uncached_sdp() {
        let h = header(3, &media_header("demo.asf"));
        let mut cache = SdpCache::default();
        for id in 0..1000u64 {
            let base = if id % 2 == 0 {
                "rtsp://127.0.0.1:554/demo"
            } else {
                "rtsp://box.example:8554/demo"
            };
            let sdp = cached_describe(&mut cache, &h, base, id);
            // Byte for byte what the uncached writer makes for this request.
            assert_eq!(sdp, describe(&h, base, "demo", id, Layout::PerStream).sdp);
            assert!(sdp.contains(&format!("a=control:{base}/rtx\r\n")), "{sdp}");
            assert!(sdp.contains(&format!("\r\no=- {id} 3 IN IP4")), "{sdp}");
        }
        assert_eq!(cache.encoded(), 1);
        assert_eq!(cache.len(), 1);
        // The spliced header line sits where the SDP writer puts the last session attribute:
        // parsed and written again, the text is unchanged.
        let sdp = cached_describe(&mut cache, &h, "rtsp://127.0.0.1:554/demo", 7);
        let mut again = Vec::new();
        sdp_types::Session::parse(sdp.as_bytes())
            .expect("SDP parses")
            .write(&mut again)
            .unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), sdp);
        let at = |what: &str| sdp.find(what).unwrap_or_else(|| panic!("{what} in {sdp}"));
        assert!(
            at("a=maxps:") < at("a=pgmpu:") && at("a=pgmpu:") < at("m="),
            "{sdp}"
        );
        let sdp = cached_describe(&mut cache, &h, "rtsp://127.0.0.1:554/demo", 7);
        assert_eq!(pgmpu_bytes(&sdp), h.bytes.to_vec());
    }

    #[test]
    fn a_new_header_generation_is_never_described_with_the_previous_header() {
        let file = media_header("demo.asf");
        let mut cache = SdpCache::default();
        let first = header(1, &file);
        let sdp1 = cached_describe(&mut cache, &first, "rtsp://h/demo", 1);
        assert_eq!(pgmpu_bytes(&sdp1), first.bytes.to_vec());
        // The next playlist entry: the same file (identical bytes, a new generation)...
        let same = header(2, &file);
        let sdp2 = cached_describe(&mut cache, &same, "rtsp://h/demo", 1);
        assert_eq!(pgmpu_bytes(&sdp2), same.bytes.to_vec());
        assert!(sdp2.contains("\r\no=- 1 2 IN IP4"), "{sdp2}");
        // ...and another file's header while the first is alive.
        let other = media_header("demo-b.asf");
        let changed = header(3, &other);
        assert_ne!(changed.bytes.to_vec(), first.bytes.to_vec());
        let sdp3 = cached_describe(&mut cache, &changed, "rtsp://h/demo", 1);
        assert_eq!(pgmpu_bytes(&sdp3), changed.bytes.to_vec());
        assert!(sdp3.contains("\r\no=- 1 3 IN IP4"), "{sdp3}");
        // A header with a generation number seen before (another station's, or a restarted
        // station counting from 1 again) and other bytes.
        let restarted = header(1, &other);
        let sdp4 = cached_describe(&mut cache, &restarted, "rtsp://h/demo", 1);
        assert_eq!(pgmpu_bytes(&sdp4), restarted.bytes.to_vec());
        assert_eq!(cache.encoded(), 4);
        // The first header is still described with its own bytes.
        let again = cached_describe(&mut cache, &first, "rtsp://h/demo", 1);
        assert_eq!(pgmpu_bytes(&again), first.bytes.to_vec());
        assert_eq!(cache.encoded(), 4);
    }

    #[test]
    fn entries_of_dropped_headers_go_and_the_cache_stays_bounded() {
        let file = media_header("demo.asf");
        let mut cache = SdpCache::default();
        let old = header(1, &file);
        cache.pgmpu(&old);
        let weak = cache.lines();
        drop(old);
        // The next miss clears the dead entry.
        let new = header(2, &file);
        cache.pgmpu(&new);
        assert_eq!(cache.len(), 1);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
        // Live headers beyond the bound: the oldest entries go.
        let alive: Vec<_> = (0..MAX_ENTRIES as u64 + 10)
            .map(|g| header(10 + g, &file))
            .collect();
        for h in &alive {
            cache.pgmpu(h);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        // The newest is still a hit, the oldest a miss again.
        let before = cache.encoded();
        cache.pgmpu(alive.last().unwrap());
        assert_eq!(cache.encoded(), before);
        cache.pgmpu(&alive[0]);
        assert_eq!(cache.encoded(), before + 1);
    }
}
