//! Fuzzes the YAML configuration loader at its text-level entry points
//! (`config::parse_station`, `config::parse_server`: what `config::load` calls per file).
//!
//! The first input byte picks the file kind (even: a station file, odd: the server file);
//! the rest is the file text (lossy UTF-8). Properties checked:
//! - neither parser panics (serde_norway, the value parsers and the validation);
//! - parsing is deterministic (same text, same result);
//! - a station that validates forms a configuration with the default server, and so does a
//!   server that validates; comparing such a configuration with itself (`config::diff`, as a
//!   reload does) plans nothing; error lists render as text.
#![no_main]

use std::path::Path;

use asfcast::config::{diff::diff, parse_server, parse_station, Config, ServerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let config = if kind % 2 == 0 {
        let path = Path::new("/etc/asfcast/stations/fuzz.yaml");
        let r = parse_station(path, &text);
        assert_eq!(
            format!("{r:?}"),
            format!("{:?}", parse_station(path, &text)),
            "station parse is not deterministic"
        );
        match r {
            Ok(s) => Config {
                server: ServerConfig::default(),
                stations: vec![s],
                network: None,
            },
            Err(e) => {
                assert!(!e.0.is_empty(), "an error without a message");
                let _ = e.to_string();
                return;
            }
        }
    } else {
        let path = Path::new("/etc/asfcast/server.yaml");
        let r = parse_server(path, &text);
        assert_eq!(
            format!("{r:?}"),
            format!("{:?}", parse_server(path, &text)),
            "server parse is not deterministic"
        );
        match r {
            Ok(server) => Config {
                server,
                stations: Vec::new(),
                network: None,
            },
            Err(e) => {
                assert!(!e.0.is_empty(), "an error without a message");
                let _ = e.to_string();
                return;
            }
        }
    };
    let plan = diff(&config, &config);
    assert!(
        !plan.server.any()
            && plan.restart.is_empty()
            && plan.stop.is_empty()
            && plan.start.is_empty(),
        "a configuration differs from itself: {plan:?}"
    );
    assert_eq!(plan.unchanged.len(), config.stations.len());
    let _ = config.station("fuzz");
});
