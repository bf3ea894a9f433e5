//! Fuzzes `network.yaml` (`config::network::parse`, what `config::load` and `asfcast
//! netconfig` read it with) and the systemd-networkd files generated from it
//! (`netconfig::generate`).
//!
//! Properties checked:
//! - the parser does not panic and is deterministic; errors are non-empty and render;
//! - a valid file generates files under `network/`, `timesyncd.conf.d/` or `hostname` only
//!   (no `..`, no absolute path), and every line of every file is a comment, a `[Section]`,
//!   `Key=Value` or empty: no value can inject a line or a section into a unit file;
//!   `hostname` is one line.
#![no_main]

use std::path::Path;

use asfcast::config::network::parse;
use asfcast::netconfig::generate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/asfcast/network.yaml");
    let r = parse(path, &text);
    assert_eq!(
        format!("{r:?}"),
        format!("{:?}", parse(path, &text)),
        "network parse is not deterministic"
    );
    let net = match r {
        Ok(n) => n,
        Err(e) => {
            assert!(!e.is_empty(), "an error without a message");
            for err in &e {
                let _ = err.to_string();
            }
            return;
        }
    };
    for f in generate(Some(&net)) {
        assert!(
            (f.path.starts_with("network/")
                || f.path.starts_with("timesyncd.conf.d/")
                || f.path == "hostname")
                && !f.path.contains(".."),
            "odd output path {}",
            f.path
        );
        if f.path == "hostname" {
            assert_eq!(f.text.lines().count(), 1, "{:?}", f.text);
            continue;
        }
        for line in f.text.lines() {
            let ok = line.is_empty()
                || line.starts_with('#')
                || (line.starts_with('[') && line.ends_with(']'))
                || line.split_once('=').is_some_and(|(k, v)| {
                    !k.is_empty()
                        && k.bytes().all(|b| b.is_ascii_alphanumeric())
                        && !v.contains(['\r', '\0'])
                });
            assert!(ok, "line {line:?} in {}", f.path);
        }
    }
});
