//! Shared helpers for the integration tests (`mod support;` in each `tests/*.rs`).
//!
//! Why it exists: every end-to-end test needs the same few things — a guard that
//! keeps multicast inside the private network namespace made by `tests/netns-run`
//! (DESIGN.md, "Network safety in tests"), free loopback ports, the daemon binary,
//! the sample and demo media, ffprobe wrapped in `timeout` (ffprobe against a port
//! that does not speak its protocol hangs forever: shared/docs/machines.md), and a
//! guard that never leaves a daemon or a real client running after a test.
//!
//! Only the standard library is used, so the helpers cost no dependencies; signals
//! are sent with bash's `kill` builtin (dash's cannot signal a process group).

#![allow(dead_code)]

pub mod config;
pub mod gst;
pub mod partition;
pub mod push;
pub mod raw;

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

// Not every test file uses every writer.
#[allow(unused_imports)]
pub use config::{demo_station, playlist_station, Listen};

/// Interfaces `tests/netns-run` leaves in its namespace: lo and its IPv6 veth pair.
const NETNS_INTERFACES: [&str; 3] = ["lo", "mc0", "mc1"];

/// Default bound for one ffprobe run.
pub const FFPROBE_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Network safety

/// Interface names of the calling thread's network namespace.
fn visible_interfaces() -> Vec<String> {
    // /proc/self/net/dev follows the namespace of the reader; /sys/class/net does
    // not (it still shows the host's interfaces), so it must not be used here.
    let text = fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

fn test_name() -> String {
    thread::current().name().unwrap_or("test").to_owned()
}

/// True when it is safe to send multicast: this process sees no interface but lo
/// (and the veth pair `tests/netns-run` makes).
///
/// Otherwise: panics when `ASFCAST_REQUIRE_NETNS=1` (CI must never skip silently),
/// else prints a skip note and returns false, and the test returns early:
///
/// ```ignore
/// if !support::require_private_netns() { return; }
/// ```
pub fn require_private_netns() -> bool {
    let ifaces = visible_interfaces();
    let foreign: Vec<&String> = ifaces
        .iter()
        .filter(|i| !NETNS_INTERFACES.contains(&i.as_str()))
        .collect();
    if !ifaces.is_empty() && foreign.is_empty() {
        return true;
    }
    if std::env::var("ASFCAST_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!(
            "{}: ASFCAST_REQUIRE_NETNS=1 but this is not a private network namespace \
             (interfaces: {ifaces:?}); run the tests via tests/netns-run",
            test_name()
        );
    }
    eprintln!(
        "{}: skipped: multicast tests run only inside tests/netns-run",
        test_name()
    );
    false
}

/// The interface for IPv6 multicast inside `tests/netns-run`, as (name, index).
///
/// None (with a skip note) outside the namespace or when the veth pair could not
/// be made there; IPv6 multicast does not arrive over lo.
pub fn netns_v6_interface() -> Option<(String, u32)> {
    if !require_private_netns() {
        return None;
    }
    let found = std::env::var("ASFCAST_NETNS_V6_IF")
        .ok()
        .and_then(|name| interface_index_v6(&name).map(|index| (name, index)));
    if found.is_none() {
        eprintln!(
            "{}: skipped: no IPv6 multicast interface in this namespace",
            test_name()
        );
    }
    found
}

/// The index of an interface with an IPv6 address, from /proc/self/net/if_inet6
/// (namespace-aware, unlike /sys/class/net).
fn interface_index_v6(name: &str) -> Option<u32> {
    let text = fs::read_to_string("/proc/self/net/if_inet6").ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, index, _, _, _, iface] if *iface == name => u32::from_str_radix(index, 16).ok(),
            _ => None,
        }
    })
}

// ---------------------------------------------------------------------------
// Ports

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    free_port(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    free_port(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// A random port above Linux's default ephemeral range (32768–60999) that `free` could bind
/// and that no other live test process holds: a port the kernel handed out for `bind(0)`
/// could meanwhile become another test's client source port (a daemon or HAProxy then fails
/// with "address already in use"), and a multicast group:port two tests pick at once mixes
/// their stations' datagrams (a bind check cannot see that: group sockets share ports). Each
/// pick is claimed with a file `/tmp/asfcast-test-ports/PORT` holding the test's pid; a
/// claim whose process is gone is taken over.
fn free_port(free: impl Fn(u16) -> bool) -> u16 {
    use rand::Rng;
    let dir = Path::new("/tmp/asfcast-test-ports");
    let _ = std::fs::create_dir_all(dir);
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let p = rng.random_range(61_000..=65_535);
        if free(p) && claim_port(dir, p) {
            return p;
        }
    }
    panic!("no free port in 61000–65535 after 1000 tries");
}

/// Claims `port` for this process (see [`free_port`]).
fn claim_port(dir: &Path, port: u16) -> bool {
    let path = dir.join(port.to_string());
    let me = std::process::id();
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write as _;
                return f.write_all(me.to_string().as_bytes()).is_ok();
            }
            Err(_) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let alive = holder
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| pid == me || Path::new(&format!("/proc/{pid}")).exists());
                if alive || holder.is_empty() {
                    // Held by a live test (or being written right now).
                    return false;
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    false
}

/// Waits until a TCP connect to `addr` succeeds; the last connect error after `timeout`.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let err = match TcpStream::connect_timeout(&addr, Duration::from_millis(250)) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                err.kind(),
                format!("{addr} not accepting after {timeout:?}: {err}"),
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// Paths

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The daemon binary cargo built for this test run.
pub fn asfcast_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_asfcast"))
}

/// The shared sample ASF files: `$ASFCAST_SAMPLES_DIR`, else `shared/samples`
/// beside the repository (CI clones `shared/` next to it) or beside one of its
/// parents (git worktrees).
pub fn samples_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ASFCAST_SAMPLES_DIR") {
        return PathBuf::from(dir);
    }
    let root = repo_root();
    root.ancestors()
        .skip(1)
        .map(|parent| parent.join("shared/samples"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/samples beside {} or its parents; set ASFCAST_SAMPLES_DIR",
                root.display()
            )
        })
}

/// One file from [`samples_dir`], e.g. `sample("sample-wmv2-wmav2.asf")`.
pub fn sample(name: &str) -> PathBuf {
    samples_dir().join(name)
}

/// `station-configs/media/demo.asf`: 10 s, 320x240@25 WMV2 (250 frames, key
/// frame every 2 s), 44.1 kHz stereo WMA2. Made by `scripts/make-demo-media`.
pub fn demo_media() -> PathBuf {
    repo_root().join("station-configs/media/demo.asf")
}

/// `station-configs/media/demo-b.asf`: 6 s, 176x144@15 WMV2 (90 frames),
/// 22.05 kHz mono WMA2 — a different ASF header than [`demo_media`].
pub fn demo_media_b() -> PathBuf {
    repo_root().join("station-configs/media/demo-b.asf")
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh path in the temp dir, unique per process and call (nothing is created).
pub fn temp_path(tag: &str) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("asfcast-test-{}-{n}-{tag}", std::process::id()))
}

/// A temporary directory removed (with its contents) on drop, world-readable so
/// clients run as `nobody` (VLC refuses root) can read what tests put in it.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_path(tag);
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// External tools

/// Why running an external tool did not give an answer.
#[derive(Debug)]
pub enum ToolError {
    /// The program could not be started (missing?).
    Spawn { command: String, source: io::Error },
    /// `timeout` killed it.
    TimedOut { command: String, after: Duration },
    /// It exited unsuccessfully.
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// It succeeded but printed something we could not read.
    Parse { command: String, output: String },
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Spawn { command, source } => write!(f, "cannot run `{command}`: {source}"),
            ToolError::TimedOut { command, after } => {
                write!(f, "`{command}` timed out after {after:?}")
            }
            ToolError::Failed {
                command,
                status,
                stderr,
            } => write!(f, "`{command}` failed ({status}): {}", stderr.trim()),
            ToolError::Parse { command, output } => {
                write!(f, "`{command}` printed unexpected output: {output:?}")
            }
        }
    }
}

impl std::error::Error for ToolError {}

/// `timeout -k 5 SECS program`: a command that cannot hang the test run.
pub fn bounded(limit: Duration, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("-k")
        .arg("5")
        .arg(format!("{}", limit.as_secs().max(1)))
        .arg(program);
    cmd
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs a command built with [`bounded`] to completion; stdout on success.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, ToolError> {
    let command = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn {
            command: command.clone(),
            source,
        })?;
    match out.status.code() {
        Some(0) => Ok(out),
        // timeout(1): 124 after TERM, 137 after the -k KILL.
        Some(124) | Some(137) => Err(ToolError::TimedOut {
            command,
            after: limit,
        }),
        _ => Err(ToolError::Failed {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

/// Compiles the libmms test client (`tests/clients/libmms_read.c`) into `dir`; its path.
pub fn libmms_client(dir: &Path) -> PathBuf {
    let src = repo_root().join("tests/clients/libmms_read.c");
    let bin = dir.join("libmms_read");
    let cc = Command::new("gcc")
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .arg("-lmms")
        .output()
        .expect("gcc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    bin
}

/// Frames ffprobe decodes from one stream of a file or URL, e.g.
/// `ffprobe_count_frames(&demo_media(), "v:0")` or `("mmsh://127.0.0.1:8080/demo", "a:0")`.
pub fn ffprobe_count_frames(
    path_or_url: impl AsRef<OsStr>,
    stream_selector: &str,
) -> Result<u64, ToolError> {
    let mut cmd = bounded(FFPROBE_TIMEOUT, "ffprobe");
    cmd.args(["-v", "error", "-count_frames", "-select_streams"])
        .arg(stream_selector)
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path_or_url.as_ref());
    let command = describe(&cmd);
    let out = run_bounded(&mut cmd, FFPROBE_TIMEOUT)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .and_then(|l| l.parse().ok())
        .ok_or(ToolError::Parse {
            command,
            output: text,
        })
}

/// The streams ffprobe finds, as (codec_type, codec_name) in stream order,
/// e.g. `[("video", "wmv2"), ("audio", "wmav2")]`. Panics if ffprobe fails.
pub fn ffprobe_streams(path_or_url: impl AsRef<OsStr>) -> Vec<(String, String)> {
    let mut cmd = bounded(FFPROBE_TIMEOUT, "ffprobe");
    cmd.args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,codec_name",
        "-of",
        "compact=p=0",
    ])
    .arg(path_or_url.as_ref());
    let out = run_bounded(&mut cmd, FFPROBE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let field = |key: &str| {
                line.split('|')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("")
                    .to_owned()
            };
            (field("codec_type"), field("codec_name"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Daemons

/// A child process (the daemon, or a real client/server such as VLC) that is
/// stopped when the guard drops: SIGTERM to its whole process group, SIGKILL
/// after a grace period. Its stdout and stderr go to temp files readable at any
/// time; on a panicking test the stderr is printed so the failure explains itself.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

/// How long a daemon gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

impl Daemon {
    /// Spawns `cmd` in its own process group (so helpers it starts die with it).
    pub fn spawn(name: &str, mut cmd: Command) -> Daemon {
        let stdout_path = temp_path(&format!("{name}.stdout"));
        let stderr_path = temp_path(&format!("{name}.stderr"));
        let stdout = fs::File::create(&stdout_path).expect("create daemon stdout file");
        let stderr = fs::File::create(&stderr_path).expect("create daemon stderr file");
        let command = describe(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (`{command}`): {e}"));
        Daemon {
            name: name.to_owned(),
            child: Some(child),
            stdout_path,
            stderr_path,
        }
    }

    /// Spawns the asfcast binary with `args`.
    pub fn asfcast<I, S>(args: I) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(asfcast_bin());
        cmd.args(args);
        Daemon::spawn("asfcast", cmd)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// The exit status if the process has exited (reaps it), else None.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_status().is_none()
    }

    /// Sends a signal by name ("HUP", "TERM", "KILL", …) to the process group.
    pub fn signal(&self, sig: &str) -> io::Result<()> {
        match &self.child {
            Some(child) => signal_group(child.id(), sig),
            None => Ok(()),
        }
    }

    /// Waits until stderr contains `needle`; false after `timeout` or if the
    /// process exits first.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if !self.is_running() || Instant::now() >= deadline {
                return self.stderr().contains(needle);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the process accepts TCP on `addr`; panics with its stderr if
    /// it exits first or does not listen in time.
    pub fn wait_for_tcp(&mut self, addr: SocketAddr, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok() {
                return;
            }
            if let Some(status) = self.try_status() {
                panic!(
                    "{} exited ({status}) before listening on {addr}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} not listening on {addr} after {timeout:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL; the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.shutdown().expect("daemon already reaped")
    }

    /// [`Daemon::stop`], and everything it wrote to stderr (its last lines come at the stop).
    pub fn stop_with_log(mut self) -> (ExitStatus, String) {
        let status = self.shutdown().expect("daemon already reaped");
        (status, self.stderr())
    }

    fn shutdown(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let pid = child.id();
        let _ = signal_group(pid, "TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} (pid {pid}) ignored SIGTERM for {STOP_GRACE:?}; killing",
            self.name
        );
        let _ = signal_group(pid, "KILL");
        let _ = child.kill();
        child.wait().ok()
    }
}

/// `kill -s SIG -- -PGID` via bash's builtin (dash's cannot address a group).
fn signal_group(pgid: u32, sig: &str) -> io::Result<()> {
    let status = Command::new("bash")
        .args(["-c", "kill -s \"$1\" -- \"-$2\" 2>/dev/null", "bash", sig])
        .arg(pgid.to_string())
        .stdin(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -s {sig} -- -{pgid} failed")))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let status = self.shutdown();
        if thread::panicking() {
            eprintln!(
                "--- {} (exit: {status:?}) stderr, kept at {} ---\n{}\n--- end of {} stderr ---",
                self.name,
                self.stderr_path.display(),
                self.stderr(),
                self.name
            );
        } else {
            let _ = fs::remove_file(&self.stdout_path);
            let _ = fs::remove_file(&self.stderr_path);
        }
    }
}

/// Headless Chromium on `url` with a profile dir of its own and `args` (e.g. `--dump-dom`):
/// what it printed.
pub fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let mut cmd = bounded(Duration::from_secs(90), "chromium");
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url);
    let out = run_bounded(&mut cmd, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("chromium on {url}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A config directory for a test that reaches the daemon as an outsider: `server.yaml` with
/// HTTP and the control API on free loopback ports (MMS and RTSP off), the announce dir inside
/// `dir`, then `extra` (more server.yaml lines); with `demo`, a `demo` station looping the demo
/// media. Returns the HTTP and API addresses.
pub fn outsider_config(dir: &Path, extra: &str, demo: bool) -> (SocketAddr, SocketAddr) {
    let listen = Listen::new().with_http().with_api().write(dir, extra);
    if demo {
        demo_station(dir, "");
    }
    (listen.http(), listen.api())
}
