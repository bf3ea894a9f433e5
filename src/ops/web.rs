//! Which paths of the HTTP listener are the operators' web views, and what they answer — as
//! plain data ([`Page`]) the HTTP session turns into a response.
//!
//! Paths: `/` (the status index, or the plain station list when the status page is off),
//! `/status/<station>` and `/metrics`. None of them can be a station's stream path
//! (`/<station>`): station names are one segment of `[A-Za-z0-9_-]` and `asfcast check`
//! refuses a station named `metrics` while the metrics are on (see `crate::config`); nor an
//! announcement file (`<name>.nsc`, `<name>.asx`), which has a dot.

use super::{metrics, status, Snapshot};

/// The `status:` and `metrics:` settings of the server file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebConfig {
    /// Serve the status pages (`/`, `/status/<station>`).
    pub status: bool,
    /// Seconds after which a status page reloads itself; 0: never.
    pub refresh_s: u32,
    /// Serve `/metrics`.
    pub metrics: bool,
}

impl Default for WebConfig {
    /// Both off: the pages show client addresses and user agents, so an operator turns them
    /// on knowingly (the HTTP listener usually faces the public).
    fn default() -> Self {
        WebConfig {
            status: false,
            refresh_s: 10,
            metrics: false,
        }
    }
}

/// An operators' route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Index,
    Station(String),
    Metrics,
}

/// The route of a (decoded, traversal-checked) path, if it is one of the views that is on.
pub fn route(path: &str, cfg: &WebConfig) -> Option<Route> {
    if cfg.metrics && path == "/metrics" {
        return Some(Route::Metrics);
    }
    if !cfg.status {
        return None;
    }
    if path == "/" {
        return Some(Route::Index);
    }
    path.strip_prefix("/status/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .map(|n| Route::Station(n.to_string()))
}

/// A page to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// Renders `route` from `snap`.
pub fn page(route: &Route, snap: &Snapshot, cfg: &WebConfig) -> Page {
    match route {
        Route::Index => Page {
            status: 200,
            content_type: status::CONTENT_TYPE,
            body: status::index(snap, cfg.refresh_s),
        },
        Route::Station(name) => match status::station(snap, name, cfg.refresh_s) {
            Some(body) => Page {
                status: 200,
                content_type: status::CONTENT_TYPE,
                body,
            },
            None => Page {
                status: 404,
                content_type: "text/plain; charset=utf-8",
                body: "no such station\n".into(),
            },
        },
        Route::Metrics => Page {
            status: 200,
            content_type: metrics::CONTENT_TYPE,
            body: metrics::render(snap),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_what_is_on() {
        let on = WebConfig {
            status: true,
            refresh_s: 0,
            metrics: true,
        };
        assert_eq!(route("/", &on), Some(Route::Index));
        assert_eq!(route("/metrics", &on), Some(Route::Metrics));
        assert_eq!(
            route("/status/demo", &on),
            Some(Route::Station("demo".into()))
        );
        for p in [
            "/demo",
            "/demo.nsc",
            "/status/",
            "/status/a/b",
            "/status",
            "/metrics/x",
        ] {
            assert_eq!(route(p, &on), None, "{p}");
        }
        let off = WebConfig::default();
        assert_eq!(route("/", &off), None);
        assert_eq!(route("/metrics", &off), None);
        let metrics_only = WebConfig {
            metrics: true,
            ..off
        };
        assert_eq!(route("/metrics", &metrics_only), Some(Route::Metrics));
        assert_eq!(route("/status/demo", &metrics_only), None);
    }

    #[test]
    fn unknown_station_is_404() {
        let p = page(
            &Route::Station("x".into()),
            &Snapshot::default(),
            &WebConfig::default(),
        );
        assert_eq!(p.status, 404);
    }
}
