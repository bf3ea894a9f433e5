//! `asfcast ctl`: the control API's command-line client (see [`crate::ops::api`] for the API).
//!
//! A CLI tool with a small shell of its own, like [`crate::probe`] and [`crate::recv`]: a
//! blocking `std::net::TcpStream`, one HTTP/1.1 request per run, the answer read up to its
//! `Content-Length`. Plain `http://` only: the API is meant for loopback or a trusted network
//! (put a TLS proxy in front of it otherwise). Secrets come from files, never from the command
//! line (where `ps` would show them), and are never printed.
//!
//! Exit status: 0 on success; 1 when the daemon refused (an HTTP error, a `check` with
//! errors, a refused reload); 2 when it could not be asked (connection, URL, files).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_ANSWER: u64 = 64 << 20;

/// `asfcast ctl` options.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The control API's URL (`listen.api` in server.yaml).
    #[arg(long, default_value = "http://127.0.0.1:9090", global = true)]
    pub api: String,
    /// A file holding the API token (sent as `Authorization: Bearer`).
    #[arg(long, global = true, conflicts_with = "user")]
    pub token_file: Option<PathBuf>,
    /// User for Basic authentication (with --password-file).
    #[arg(long, global = true, requires = "password_file")]
    pub user: Option<String>,
    /// A file holding the password for --user.
    #[arg(long, global = true, requires = "user")]
    pub password_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// What to ask.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// List the stations: state, bit rate, multicast, clients per protocol.
    Stations,
    /// List the connected clients.
    Clients,
    /// Disconnect a client (its protocol's clean end of stream).
    Kick { id: u64 },
    /// Stop a station (source, multicast, clients) until `start` or a restart.
    Stop { name: String },
    /// Start a station stopped by `stop`.
    Start { name: String },
    /// Reload the configuration (as SIGHUP does) and print the plan.
    Reload,
    /// Check a station (or server) YAML file with the daemon's config loader.
    Check {
        file: PathBuf,
        /// The file is a server file (default: guessed from the `name:` key).
        #[arg(long)]
        server: bool,
    },
}

/// Why the API could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("--api {0}: expected http://HOST:PORT")]
    Url(String),
    #[error("cannot read {file}: {error}")]
    File { file: String, error: std::io::Error },
    #[error("{file} is empty")]
    EmptySecret { file: String },
    #[error("cannot reach the control API at {url}: {error} (is listen.api set in server.yaml?)")]
    Connect { url: String, error: std::io::Error },
    #[error("control API at {url}: {error}")]
    Io { url: String, error: std::io::Error },
    #[error("control API at {url}: {what}")]
    Protocol { url: String, what: String },
}

/// One answer.
struct Answer {
    status: u16,
    body: Value,
}

/// Runs `asfcast ctl`.
pub fn run(args: &CtlArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("asfcast ctl: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: &CtlArgs) -> Result<ExitCode, CtlError> {
    let auth = authorization(args)?;
    let (method, path, body) = match &args.command {
        CtlCommand::Stations => ("GET", "/v1/stations".to_string(), None),
        CtlCommand::Clients => ("GET", "/v1/clients".to_string(), None),
        CtlCommand::Kick { id } => ("DELETE", format!("/v1/clients/{id}"), None),
        CtlCommand::Stop { name } => ("POST", format!("/v1/stations/{name}/stop"), None),
        CtlCommand::Start { name } => ("POST", format!("/v1/stations/{name}/start"), None),
        CtlCommand::Reload => ("POST", "/v1/reload".to_string(), None),
        CtlCommand::Check { file, server } => {
            let text = std::fs::read(file).map_err(|error| CtlError::File {
                file: file.display().to_string(),
                error,
            })?;
            let path = match server {
                true => "/v1/check?kind=server",
                false => "/v1/check",
            };
            ("POST", path.to_string(), Some(text))
        }
    };
    let answer = request(&args.api, method, &path, auth.as_deref(), body.as_deref())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
    }
    let ok = (200..300).contains(&answer.status);
    if !ok {
        let message = answer.body["error"].as_str().unwrap_or("request refused");
        if !args.json {
            eprintln!("asfcast ctl: {} {message}", answer.status);
        }
        if let Some(errs) = answer.body["errors"].as_array() {
            // A refused reload: the daemon's files are named as they are.
            print_errors(errs, None);
        }
        return Ok(ExitCode::FAILURE);
    }
    let b = &answer.body;
    match &args.command {
        CtlCommand::Check { file, .. } => {
            if b["ok"].as_bool() == Some(true) {
                if !args.json {
                    println!("{}: ok", file.display());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let errs = b["errors"].as_array().cloned().unwrap_or_default();
            print_errors(&errs, Some(&file.display().to_string()));
            return Ok(ExitCode::FAILURE);
        }
        _ if args.json => {}
        CtlCommand::Stations => print!("{}", stations_table(b)),
        CtlCommand::Clients => print!("{}", clients_table(b)),
        CtlCommand::Kick { id } => println!("client {id} disconnected"),
        CtlCommand::Stop { name } => println!(
            "station {name} stopped ({} clients ended)",
            b["clients_ended"].as_u64().unwrap_or(0)
        ),
        CtlCommand::Start { name } => println!("station {name} started"),
        CtlCommand::Reload => {
            let p = &b["plan"];
            let n = |k: &str| p[k].as_u64().unwrap_or(0);
            println!(
                "reloaded: {} unchanged, {} updated, {} restarted, {} stopped, {} started",
                n("unchanged"),
                n("updated"),
                n("restarted"),
                n("stopped"),
                n("started")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `file:line:column: field: message` lines on stderr; `file` replaces the `<body>` name.
fn print_errors(errs: &[Value], file: Option<&str>) {
    for e in errs {
        let name = file.unwrap_or_else(|| e["file"].as_str().unwrap_or("?"));
        let mut line = name.to_string();
        let (l, c) = (
            e["line"].as_u64().unwrap_or(0),
            e["column"].as_u64().unwrap_or(0),
        );
        if l > 0 {
            line.push_str(&format!(":{l}:{c}"));
        }
        line.push_str(": ");
        if let Some(f) = e["field"].as_str().filter(|f| !f.is_empty()) {
            line.push_str(f);
            line.push_str(": ");
        }
        line.push_str(e["message"].as_str().unwrap_or(""));
        eprintln!("{line}");
    }
}

fn read_secret(path: &PathBuf) -> Result<String, CtlError> {
    let text = std::fs::read_to_string(path).map_err(|error| CtlError::File {
        file: path.display().to_string(),
        error,
    })?;
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    if first.is_empty() {
        return Err(CtlError::EmptySecret {
            file: path.display().to_string(),
        });
    }
    Ok(first)
}

/// The `Authorization` value from the options, if any.
fn authorization(args: &CtlArgs) -> Result<Option<String>, CtlError> {
    if let Some(f) = &args.token_file {
        return Ok(Some(format!("Bearer {}", read_secret(f)?)));
    }
    if let (Some(user), Some(f)) = (&args.user, &args.password_file) {
        let pass = read_secret(f)?;
        let raw = format!("{user}:{pass}");
        let enc = base64::engine::general_purpose::STANDARD.encode(raw);
        return Ok(Some(format!("Basic {enc}")));
    }
    Ok(None)
}

/// `http://host:port[/]` → (`host:port`).
fn authority(url: &str) -> Result<&str, CtlError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| CtlError::Url(url.to_string()))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(CtlError::Url(url.to_string()));
    }
    Ok(host)
}

fn request(
    url: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Answer, CtlError> {
    let host = authority(url)?;
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let connect_err = |error| CtlError::Connect {
        url: url.to_string(),
        error,
    };
    let io_err = |error| CtlError::Io {
        url: url.to_string(),
        error,
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(connect_err)?
        .next()
        .ok_or_else(|| CtlError::Url(url.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(connect_err)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_err)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_err)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: asfcast-ctl/{}\r\nAccept: application/json\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    let body = body.unwrap_or_default();
    if method != "GET" {
        head.push_str(&format!(
            "Content-Type: application/yaml\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out).map_err(io_err)?;
    read_answer(&mut stream).map_err(|what| match what {
        ReadError::Io(error) => io_err(error),
        ReadError::Protocol(what) => CtlError::Protocol {
            url: url.to_string(),
            what,
        },
    })
}

enum ReadError {
    Io(std::io::Error),
    Protocol(String),
}

/// Reads the status line, the head, and the body up to `Content-Length` (or to the close).
fn read_answer(stream: &mut impl Read) -> Result<Answer, ReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(ReadError::Protocol("answer head too long".into()));
        }
        let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Protocol(
                "connection closed before an answer".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ReadError::Protocol("not an HTTP answer".into()))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    let mut body = buf.split_off(head_end);
    match length {
        Some(len) if len <= MAX_ANSWER => {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            while body.len() < len {
                let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
                if n == 0 {
                    return Err(ReadError::Protocol("answer cut short".into()));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        Some(_) => return Err(ReadError::Protocol("answer too large".into())),
        None => {
            stream
                .take(MAX_ANSWER)
                .read_to_end(&mut body)
                .map_err(ReadError::Io)?;
        }
    }
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(
            |_| serde_json::json!({ "error": String::from_utf8_lossy(&body).trim().to_string() }),
        )
    };
    Ok(Answer { status, body })
}

/// Pads the columns of `rows` (the first is the header).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn stations_table(b: &Value) -> String {
    let mut rows = vec![[
        "STATION",
        "STATE",
        "KBIT/S",
        "MULTICAST",
        "MMS",
        "MMSH",
        "RTSP",
        "HTTP",
        "PACKETS",
    ]
    .map(String::from)
    .to_vec()];
    for s in b["stations"].as_array().into_iter().flatten() {
        let c = &s["clients"];
        rows.push(vec![
            text(&s["name"]),
            text(&s["state"]),
            (s["bitrate"].as_u64().unwrap_or(0) / 1000).to_string(),
            text(&s["multicast"]),
            text(&c["mms"]),
            text(&c["mmsh"]),
            text(&c["rtsp"]),
            text(&c["http"]),
            text(&s["counters"]["packets"]),
        ]);
    }
    table(&rows)
}

fn clients_table(b: &Value) -> String {
    let mut rows = vec![[
        "ID",
        "PEER",
        "PROTOCOL",
        "TRANSPORT",
        "STATION",
        "BYTES",
        "SKIPS",
        "SECONDS",
        "USER AGENT",
    ]
    .map(String::from)
    .to_vec()];
    for c in b["clients"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&c["id"]),
            text(&c["peer"]),
            text(&c["protocol"]),
            text(&c["transport"]),
            text(&c["station"]),
            text(&c["bytes"]),
            text(&c["skips"]),
            text(&c["connected_seconds"]),
            text(&c["user_agent"]),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_answer_with_and_without_length() {
        let raw =
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 20\r\n\r\n{\"error\":\"no such\"}\nXX";
        let a = read_answer(&mut &raw[..]).unwrap_or_else(|_| panic!("read"));
        assert_eq!(a.status, 404);
        assert_eq!(a.body["error"], "no such");
        let raw = b"HTTP/1.1 200 OK\r\n\r\n[1,2]";
        let a = read_answer(&mut &raw[..]).unwrap_or_else(|_| panic!("read"));
        assert_eq!(a.body, serde_json::json!([1, 2]));
        assert!(read_answer(&mut &b"HTTP/1.1 200 OK\r\n"[..]).is_err());
    }

    #[test]
    fn urls_and_tables() {
        assert_eq!(
            authority("http://127.0.0.1:9090").ok(),
            Some("127.0.0.1:9090")
        );
        assert_eq!(
            authority("http://127.0.0.1:9090/").ok(),
            Some("127.0.0.1:9090")
        );
        assert!(authority("https://x").is_err());
        assert!(authority("http://u:p@x/").is_err());
        let t = table(&[
            vec!["A".into(), "BB".into()],
            vec!["ccc".into(), "d".into()],
        ]);
        assert_eq!(t, "A    BB\nccc  d\n");
    }
}
