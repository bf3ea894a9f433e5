//! The `asfcast` command line: run stations, check configs, inspect ASF and .nsc files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  asfcast probe station-configs/media/demo.asf        summary of an ASF file
  asfcast probe --json clip.wmv                       the same as JSON
  asfcast check station-configs/                      validate a config directory
  asfcast run --config station-configs/               run every station in it
";

#[derive(Parser)]
#[command(name = "asfcast", version, about = "Windows Media (ASF) broadcast station: MSB multicast, .nsc announcements, MMS/MMSH/RTSP fallback", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise an ASF file: streams, codecs, bitrates, packet size and count, preroll,
    /// duration, flags and the clean-point interval.
    Probe {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Probe { file, json } => match asfcast::probe::probe(&file) {
            Ok(r) => {
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
            Err(e) => {
                eprintln!("asfcast: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}
