//! The `asfcast` command line: run stations, check configs, inspect ASF and .nsc files, and
//! receive a multicast station into a file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  asfcast run --config station-configs/               run every station in a directory
  asfcast check station-configs/                      validate configs (exit 1 on errors)
  asfcast probe station-configs/media/demo.asf        summary of an ASF file
  asfcast probe --json clip.wmv                       the same as JSON
  asfcast nsc decode /tmp/asfcast-demo/demo.nsc       every .nsc key decoded and checked
  asfcast recv http://127.0.0.1:8080/demo.nsc -o out.asf --seconds 10
  asfcast ctl clients                                 clients of the running daemon (listen.api)
  asfcast passwd /etc/asfcast/users alice --realm tv  set a viewer's password (read from stdin)
";

#[derive(Parser)]
#[command(
    name = "asfcast",
    version = asfcast::VERSION,
    about = "Windows Media (ASF) broadcast station: MSB multicast, .nsc announcements, MMS/MMSH/RTSP fallback",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the stations of a config directory (or files) until SIGTERM; SIGHUP reloads.
    Run {
        /// Config directory or files (server.yaml + one YAML per station).
        #[arg(long, short, required = true, num_args = 1..)]
        config: Vec<PathBuf>,
        /// Keep the last valid configuration here and run it when the config has errors
        /// (shown on the status page, `GET /v1/config/errors` and `asfcast_config_errors`)
        /// instead of refusing to start.
        #[arg(long, value_name = "DIR")]
        last_good: Option<PathBuf>,
    },
    /// Validate config directories or files; every error is listed with file:line:column.
    Check {
        #[arg(default_value = "/etc/asfcast")]
        paths: Vec<PathBuf>,
    },
    /// Summarise an ASF file: streams, codecs, bitrates, packet size and count, preroll,
    /// duration, flags and the clean-point interval.
    Probe {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn an FFmpeg multi-rendition ASF (`-map 0:v -map 0:v …`) into a multiple-bit-rate file:
    /// adds Bitrate Mutual Exclusion (the renditions a player chooses one of) and Stream Bitrate
    /// Properties (each stream's measured rate).
    Mbr {
        input: PathBuf,
        output: PathBuf,
        /// A group of streams a player chooses one of, as comma-separated stream numbers
        /// (repeatable). Default: every video stream, and every audio stream when several.
        #[arg(long, value_delimiter = ';')]
        group: Vec<String>,
    },
    /// .nsc station files.
    Nsc {
        #[command(subcommand)]
        command: NscCommand,
    },
    /// Join a station's multicast group from its .nsc and write what arrives as an ASF file.
    Recv {
        /// A .nsc file or its http:// URL.
        nsc: String,
        #[arg(short, long)]
        output: PathBuf,
        /// How long to receive.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Interface name or address to join on (default: the route's).
        #[arg(long)]
        interface: Option<String>,
        /// Test aid: drop one data packet per FEC span before repair.
        #[arg(long)]
        drop_one_per_span: bool,
    },
    /// Operate the running daemon through its control API (`listen.api` in server.yaml).
    Ctl(asfcast::ctl::CtlArgs),
    /// Write systemd-networkd, timesyncd and hostname files from the config's network.yaml
    /// (DHCP on every wired port without one); nothing is written when it is invalid (exit 1).
    Netconfig(asfcast::netconfig::NetconfigArgs),
    /// Set a user's password in a users file (`auth.users_file`); the password is read from
    /// stdin, or asked for without echo on a terminal, never taken from the arguments.
    Passwd(asfcast::passwd::PasswdArgs),
}

#[derive(Subcommand)]
enum NscCommand {
    /// Print every key decoded, check each XOR byte, and say which entries fail it.
    Decode { file: PathBuf },
}

/// The tracing filter of a configured level.
fn level_filter(level: asfcast::config::LogLevel) -> tracing_subscriber::EnvFilter {
    use asfcast::config::LogLevel;
    tracing_subscriber::EnvFilter::new(match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    })
}

/// Logs go to the journal (structured fields: STATION, PEER, PROTOCOL, …) when systemd runs
/// us with a journal stream, else to stderr as text or JSON lines. `ASFCAST_LOG` (a tracing
/// filter such as `debug` or `asfcast::daemon=trace`) overrides the configured level. Returns
/// what a reload calls to change the level (None when `ASFCAST_LOG` rules).
fn init_logging(log: &asfcast::config::LogConfig) -> Option<asfcast::net::LogLevelHook> {
    use asfcast::config::LogFormat;
    use tracing_subscriber::prelude::*;
    let from_env = tracing_subscriber::EnvFilter::try_from_env("ASFCAST_LOG").ok();
    let fixed = from_env.is_some();
    let (filter, handle) =
        tracing_subscriber::reload::Layer::new(from_env.unwrap_or_else(|| level_filter(log.level)));
    let hook: Option<asfcast::net::LogLevelHook> = (!fixed).then(|| {
        Box::new(move |level| {
            handle
                .reload(level_filter(level))
                .map_err(|e| e.to_string())
        }) as asfcast::net::LogLevelHook
    });
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journal) = tracing_journald::layer() {
            registry
                .with(journal.with_syslog_identifier("asfcast".into()))
                .init();
            return hook;
        }
    }
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match log.format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Text => registry.with(fmt).init(),
    }
    hook
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, last_good } => run(config, last_good),
        Command::Check { paths } => check(&paths),
        Command::Probe { file, json } => probe(file, json),
        Command::Mbr {
            input,
            output,
            group,
        } => mbr(&input, &output, &group),
        Command::Nsc {
            command: NscCommand::Decode { file },
        } => nsc_decode(&file),
        Command::Recv {
            nsc,
            output,
            seconds,
            interface,
            drop_one_per_span,
        } => recv(nsc, output, seconds, interface, drop_one_per_span),
        Command::Ctl(args) => asfcast::ctl::run(&args),
        Command::Passwd(args) => asfcast::passwd::run(&args),
        Command::Netconfig(args) => asfcast::netconfig::run(&args),
    }
}

fn run(config: Vec<PathBuf>, last_good: Option<PathBuf>) -> ExitCode {
    let started = match last_good {
        Some(dir) => {
            // Logging first (with the defaults' settings when the server file is broken), so
            // the config's errors reach the journal.
            let log = asfcast::config::load(&config)
                .map(|c| c.server.log)
                .unwrap_or_default();
            let hook = init_logging(&log);
            let startup = asfcast::net::last_good::resolve(&config, &dir);
            asfcast::net::Daemon::start_with(config, startup, Some(dir))
                .map(|d| d.with_log_level_hook(hook))
        }
        None => {
            let hook = match asfcast::config::load(&config) {
                Ok(c) => init_logging(&c.server.log),
                Err(errs) => {
                    eprintln!("asfcast: configuration refused:\n{errs}");
                    return ExitCode::FAILURE;
                }
            };
            asfcast::net::Daemon::start(config).map(|d| d.with_log_level_hook(hook))
        }
    };
    let daemon = match started {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match daemon.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check(paths: &[PathBuf]) -> ExitCode {
    match asfcast::config::load(paths) {
        Ok(c) => {
            println!(
                "ok: {} station(s): {}{}",
                c.stations.len(),
                c.stations
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                match &c.network {
                    Some(n) => format!("; network: {}", n.file.display()),
                    None => String::new(),
                }
            );
            ExitCode::SUCCESS
        }
        Err(errs) => {
            eprintln!("{errs}");
            ExitCode::FAILURE
        }
    }
}

fn mbr(input: &std::path::Path, output: &std::path::Path, groups: &[String]) -> ExitCode {
    use asfcast::asf::mbr::{convert, Group};
    let mut parsed = Vec::new();
    for g in groups {
        let streams: Result<Vec<u8>, _> = g.split(',').map(|n| n.trim().parse::<u8>()).collect();
        match streams {
            Ok(streams) => parsed.push(Group {
                kind: asfcast::asf::guid::MUTEX_BITRATE,
                streams,
            }),
            Err(e) => {
                eprintln!("asfcast: --group {g:?}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match convert(input, output, (!parsed.is_empty()).then_some(parsed)) {
        Ok(r) => {
            for g in &r.groups {
                println!("mutual exclusion (bitrate): streams {:?}", g.streams);
            }
            for (n, bps) in &r.bitrates {
                println!("stream {n}: {} kbps", bps / 1000);
            }
            println!(
                "{}: header grew by {} bytes",
                output.display(),
                r.header_growth
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("asfcast: {}: {e}", input.display());
            ExitCode::FAILURE
        }
    }
}

fn probe(file: PathBuf, json: bool) -> ExitCode {
    let r = match asfcast::probe::probe(&file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("asfcast: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&r) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("asfcast: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{r}");
    }
    if r.read_error.is_some() || r.bad_packets > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn nsc_decode(file: &PathBuf) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            eprintln!("asfcast: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match asfcast::nsc::parse(&text) {
        Ok(parsed) => {
            print!("{}", asfcast::nsc::describe(&parsed));
            if parsed.bad_checks().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("asfcast: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn recv(
    nsc: String,
    output: PathBuf,
    seconds: f64,
    interface: Option<String>,
    drop_one_per_span: bool,
) -> ExitCode {
    use asfcast::net::multicast::Interface;
    let interface = interface.map(|i| match i.parse() {
        Ok(a) => Interface::Address(a),
        Err(_) => Interface::Name(i),
    });
    let opts = asfcast::recv::RecvOptions {
        source: nsc,
        output,
        duration: Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0)),
        interface,
        drop_one_per_span,
    };
    match asfcast::recv::recv(&opts) {
        Ok(report) => {
            match serde_json::to_string(&report) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("asfcast: {e}"),
            }
            if report.packets_written > 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("asfcast: no packets received");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("asfcast: {e}");
            ExitCode::FAILURE
        }
    }
}
