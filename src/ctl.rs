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
    /// Print the daemon's version (`asfcast --version` of the running binary).
    Version,
    /// The config directory's errors and which configuration runs (config, last-good, none).
    Errors,
    /// Upload a station file (validated with the whole config, written, reloaded); the
    /// station's name is the file's name without `.yaml` unless --name says otherwise.
    PutStation {
        file: PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a station's YAML file.
    GetStation { name: String },
    /// Remove a station's file and reload.
    DeleteStation { name: String },
    /// Upload a media file into the config directory's media/ (streamed from disk).
    PutMedia {
        file: PathBuf,
        /// The name on the box (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the media files.
    Media,
    /// Remove a media file.
    DeleteMedia { name: String },
    /// Upload an update image (image/build's artefact); the box installs it and reboots.
    Update { file: PathBuf },
    /// The update service's status and the running version.
    UpdateStatus,
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

/// A request's body: bytes in memory, or a file streamed from disk.
enum Body {
    None,
    Bytes(Vec<u8>),
    File(PathBuf),
}

fn read_file(file: &PathBuf) -> Result<Vec<u8>, CtlError> {
    std::fs::read(file).map_err(|error| CtlError::File {
        file: file.display().to_string(),
        error,
    })
}

/// The file's name without its extension (a station's name), or its whole name (media).
fn file_name(file: &std::path::Path, stem: bool) -> String {
    let n = if stem {
        file.file_stem()
    } else {
        file.file_name()
    };
    n.map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn run_inner(args: &CtlArgs) -> Result<ExitCode, CtlError> {
    let auth = authorization(args)?;
    let (method, path, body) = match &args.command {
        CtlCommand::Version => ("GET", "/v1/version".to_string(), Body::None),
        CtlCommand::Errors => ("GET", "/v1/config/errors".to_string(), Body::None),
        CtlCommand::PutStation { file, name } => {
            let name = name.clone().unwrap_or_else(|| file_name(file, true));
            (
                "PUT",
                format!("/v1/config/stations/{name}"),
                Body::Bytes(read_file(file)?),
            )
        }
        CtlCommand::GetStation { name } => {
            ("GET", format!("/v1/config/stations/{name}"), Body::None)
        }
        CtlCommand::DeleteStation { name } => {
            ("DELETE", format!("/v1/config/stations/{name}"), Body::None)
        }
        CtlCommand::PutMedia { file, name } => {
            let name = name.clone().unwrap_or_else(|| file_name(file, false));
            (
                "PUT",
                format!("/v1/config/media/{name}"),
                Body::File(file.clone()),
            )
        }
        CtlCommand::Media => ("GET", "/v1/config/media".to_string(), Body::None),
        CtlCommand::DeleteMedia { name } => {
            ("DELETE", format!("/v1/config/media/{name}"), Body::None)
        }
        CtlCommand::Update { file } => ("PUT", "/v1/update".to_string(), Body::File(file.clone())),
        CtlCommand::UpdateStatus => ("GET", "/v1/update".to_string(), Body::None),
        CtlCommand::Stations => ("GET", "/v1/stations".to_string(), Body::None),
        CtlCommand::Clients => ("GET", "/v1/clients".to_string(), Body::None),
        CtlCommand::Kick { id } => ("DELETE", format!("/v1/clients/{id}"), Body::None),
        CtlCommand::Stop { name } => ("POST", format!("/v1/stations/{name}/stop"), Body::None),
        CtlCommand::Start { name } => ("POST", format!("/v1/stations/{name}/start"), Body::None),
        CtlCommand::Reload => ("POST", "/v1/reload".to_string(), Body::None),
        CtlCommand::Check { file, server } => {
            let text = std::fs::read(file).map_err(|error| CtlError::File {
                file: file.display().to_string(),
                error,
            })?;
            let path = match server {
                true => "/v1/check?kind=server",
                false => "/v1/check",
            };
            ("POST", path.to_string(), Body::Bytes(text))
        }
    };
    let answer = request(&args.api, method, &path, auth.as_deref(), &body)?;
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
        CtlCommand::Version => println!("asfcast {}", text(&b["version"])),
        CtlCommand::Errors => {
            println!("running: {}", text(&b["running"]));
            let errs = b["errors"].as_array().cloned().unwrap_or_default();
            print_errors(&errs, None);
            if !errs.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        CtlCommand::PutStation { .. } | CtlCommand::DeleteStation { .. } => {
            let what = if b["removed"].is_string() {
                format!("removed {}", text(&b["removed"]))
            } else {
                format!("wrote {}", text(&b["file"]))
            };
            let r = &b["reload"];
            if r["ok"].as_bool() == Some(true) {
                let p = &r["plan"];
                let n = |k: &str| p[k].as_u64().unwrap_or(0);
                println!(
                    "{what}; reloaded: {} unchanged, {} updated, {} restarted, {} stopped, {} started",
                    n("unchanged"),
                    n("updated"),
                    n("restarted"),
                    n("stopped"),
                    n("started")
                );
            } else {
                println!("{what}; the reload was refused:");
                print_errors(r["errors"].as_array().map_or(&[][..], Vec::as_slice), None);
            }
        }
        CtlCommand::GetStation { .. } => print!("{}", text(&b["text"])),
        CtlCommand::PutMedia { .. } | CtlCommand::Update { .. } => {
            println!("stored {} ({} bytes)", text(&b["file"]), text(&b["bytes"]));
        }
        CtlCommand::Media => {
            for m in b["media"].as_array().into_iter().flatten() {
                println!("{:>12}  {}", text(&m["size"]), text(&m["name"]));
            }
        }
        CtlCommand::DeleteMedia { name } => println!("removed {name}"),
        CtlCommand::UpdateStatus => {
            println!("version: {}", text(&b["version"]));
            println!("pending: {}", text(&b["pending"]));
            println!(
                "status: {}",
                serde_json::to_string_pretty(&b["status"]).unwrap_or_default()
            );
        }
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
    body: &Body,
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
        crate::VERSION
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    let file_err = |file: &PathBuf, error| CtlError::File {
        file: file.display().to_string(),
        error,
    };
    let (kind, length, file) = match body {
        Body::None => ("application/yaml", 0, None),
        Body::Bytes(b) => ("application/yaml", b.len() as u64, None),
        Body::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| file_err(p, e))?;
            let len = f.metadata().map_err(|e| file_err(p, e))?.len();
            ("application/octet-stream", len, Some(f))
        }
    };
    if method != "GET" {
        head.push_str(&format!(
            "Content-Type: {kind}\r\nContent-Length: {length}\r\n"
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Body::Bytes(b) = body {
        out.extend_from_slice(b);
    }
    stream.write_all(&out).map_err(io_err)?;
    if let Some(mut f) = file {
        // Streamed from disk; a refusal (413, 401) closes the connection early, and its
        // answer is still read below.
        if let Err(e) = std::io::copy(&mut (&mut f).take(length), &mut stream) {
            if !matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) {
                return Err(io_err(e));
            }
        }
    }
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
        let yaml = head
            .to_ascii_lowercase()
            .contains("content-type: application/yaml");
        match serde_json::from_slice(&body) {
            Ok(v) if !yaml => v,
            _ if yaml => serde_json::json!({ "text": String::from_utf8_lossy(&body) }),
            _ => serde_json::json!({ "error": String::from_utf8_lossy(&body).trim().to_string() }),
        }
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
