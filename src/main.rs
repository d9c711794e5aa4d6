//! The `tinyws` command: maps flags onto [`tinyws::Config`], starts the server, and turns
//! SIGINT/SIGTERM/SIGHUP into a graceful shutdown.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use tinyws::{Config, Echo, Server, parse_duration, parse_size};

/// A tiny WebSocket echo server (or, with --broadcast, a chat room): one thread per
/// client, HTTP answers on the same port.
/// Logging: RUST_LOG=debug shows handshake headers, RUST_LOG=trace shows frames.
#[derive(FromArgs)]
struct Flags {
    /// address to listen on (default 0.0.0.0, every interface)
    #[argh(option)]
    bind: Option<IpAddr>,

    /// TCP port (default 8080; 0 picks a free one)
    #[argh(option)]
    port: Option<u16>,

    /// the only path that may upgrade, e.g. /echo (default: any path)
    #[argh(option)]
    path: Option<String>,

    /// connections served at once; more get 503 (default 256)
    #[argh(option)]
    max_connections: Option<usize>,

    /// largest message a client may send, e.g. 64KiB or 1MiB (default 64KiB)
    #[argh(option, from_str_fn(parse_size))]
    max_message_size: Option<usize>,

    /// largest single frame a client may send (default 64KiB)
    #[argh(option, from_str_fn(parse_size))]
    max_frame_size: Option<usize>,

    /// largest HTTP request head; more gets 431 (default 8KiB, at most 64KiB)
    #[argh(option, from_str_fn(parse_size))]
    max_head_size: Option<usize>,

    /// largest read from the socket at once, per connection (default 64KiB)
    #[argh(option, from_str_fn(parse_size))]
    read_buffer_size: Option<usize>,

    /// outgoing bytes collected before a write is forced (default 4KiB)
    #[argh(option, from_str_fn(parse_size))]
    write_buffer_size: Option<usize>,

    /// stack size of each connection thread (default 128KiB)
    #[argh(option, from_str_fn(parse_size))]
    stack_size: Option<usize>,

    /// time a client has to send its whole request head, e.g. 5s (default 5s)
    #[argh(option, from_str_fn(parse_duration))]
    handshake_timeout: Option<Duration>,

    /// silence before a keepalive ping; 0 turns keepalive off (default 30s)
    #[argh(option, from_str_fn(parse_duration))]
    ping_interval: Option<Duration>,

    /// wait for the pong before closing a dead connection (default 10s)
    #[argh(option, from_str_fn(parse_duration))]
    ping_timeout: Option<Duration>,

    /// how long writes may wait for a client per 16 KiB it takes; slower readers are cut (default 10s)
    #[argh(option, from_str_fn(parse_duration))]
    write_timeout: Option<Duration>,

    /// on SIGINT/SIGTERM/SIGHUP, wait this long for clients to close (default 2s)
    #[argh(option, from_str_fn(parse_duration))]
    shutdown_timeout: Option<Duration>,

    /// also accept browsers from this origin, e.g. http://example.com:3000; repeat or
    /// separate with commas; * allows all, null allows file:// pages (default:
    /// same-origin only)
    #[argh(option)]
    allow_origin: Vec<String>,

    /// answer only requests for this name or address, e.g. pi.local (no port: Host is
    /// compared without it); repeat or separate with commas; others get 421. Against DNS
    /// rebinding: use it when browsers on the server's network could visit a page whose
    /// name is pointed at the server; in class not needed (default: any name)
    #[argh(option)]
    allow_host: Vec<String>,

    /// narrate each connection on stdout: request head, checks, the accept key step by
    /// step, the 101 bytes, and every frame decoded (for learning; off by default)
    #[argh(switch)]
    trace: bool,

    /// with --trace: show cookie, authorization and token values instead of hiding
    /// them (off by default: the trace is for a projector)
    #[argh(switch)]
    trace_secrets: bool,

    /// a quieter --trace for a full room: handshakes and closes in full, one line per
    /// data frame, no keepalive pings (implies --trace; off by default)
    #[argh(switch)]
    trace_quiet: bool,

    /// trace only this connection: #7 (an id), 192.168.1.23 (a machine) or ip:port
    /// (implies --trace) (default: every connection)
    #[argh(option)]
    trace_only: Option<String>,

    /// the projector view: /inspect shows every connection's handshake and frames,
    /// live, to anyone who opens it (off by default: each page sees only its own)
    #[argh(switch)]
    inspect: bool,

    /// chat room: every message goes to every client, the sender included (default: echo)
    #[argh(switch)]
    broadcast: bool,

    /// broadcast mode: bytes that may wait for one client; when a member's backlog is
    /// full, senders wait for it (default 256KiB)
    #[argh(option, from_str_fn(parse_size))]
    max_backlog: Option<usize>,

    /// broadcast mode: how long the room waits for a member with a full backlog that
    /// makes no progress before closing it with 1008 (default 1s; shorter cuts slow
    /// readers, longer pauses the room longer for a stuck one)
    #[argh(option, from_str_fn(parse_duration))]
    stall_timeout: Option<Duration>,

    /// a subprotocol this server speaks, e.g. chat; repeat or separate with commas, in
    /// the server's order of preference: the first one the client offers is answered
    /// (default: none)
    #[argh(option)]
    protocol: Vec<String>,

    /// broadcast mode with one room per request path: /chat/a and /chat/b are separate
    /// rooms; with --path /chat, every path under /chat/ (implies --broadcast; off by
    /// default)
    #[argh(switch)]
    rooms: bool,

    /// serve wss:// and https:// with this PEM certificate chain (with --tls-key; needs
    /// a build with `--features tls`)
    #[argh(option)]
    tls_cert: Option<PathBuf>,

    /// the PEM private key of --tls-cert
    #[argh(option)]
    tls_key: Option<PathBuf>,

    /// a name for this server at the start of its log lines, e.g. sensors (default: none)
    #[argh(option)]
    name: Option<String>,
    /// serve the files in this directory to plain GET/HEAD requests on the same port
    /// (/ is DIR/index.html if there is one; the built-in page stays at /.tinyws)
    /// (default: off, only the built-in page)
    #[argh(option, long = "static", arg_name = "DIR")]
    static_dir: Option<PathBuf>,

    /// send each line read on standard input as a text message: to the room with
    /// --broadcast, to every room with --rooms, else to every client (default: off)
    #[argh(switch)]
    stdin: bool,

    /// write each text message clients send as one line on standard output: printable
    /// text as sent, a backslash as \\\\, tab/LF/CR/NUL as \t \n \r \0, other control and
    /// bidi characters as \u{1b} (docs/reference.md, "Static files and pipes"); not with
    /// --trace (default: off)
    #[argh(switch)]
    stdout: bool,

    /// print the version and the optional layers built in (teach, static, pipes, rooms,
    /// tls), then exit
    #[argh(switch)]
    version: bool,
}

impl Flags {
    fn into_config(self) -> Config {
        let d = Config::default();
        let mut config = Config::default()
            .port(self.port.unwrap_or(d.port))
            .bind(self.bind.unwrap_or(d.bind))
            .max_connections(self.max_connections.unwrap_or(d.max_connections))
            .max_message_size(self.max_message_size.unwrap_or(d.max_message_size))
            .max_frame_size(self.max_frame_size.unwrap_or(d.max_frame_size))
            .max_head_size(self.max_head_size.unwrap_or(d.max_head_size))
            .read_buffer_size(self.read_buffer_size.unwrap_or(d.read_buffer_size))
            .write_buffer_size(self.write_buffer_size.unwrap_or(d.write_buffer_size))
            .stack_size(self.stack_size.unwrap_or(d.stack_size))
            .handshake_timeout(self.handshake_timeout.unwrap_or(d.handshake_timeout))
            .ping_interval(self.ping_interval.unwrap_or(d.ping_interval))
            .ping_timeout(self.ping_timeout.unwrap_or(d.ping_timeout))
            .write_timeout(self.write_timeout.unwrap_or(d.write_timeout))
            .shutdown_timeout(self.shutdown_timeout.unwrap_or(d.shutdown_timeout))
            .allow_origins(items(&self.allow_origin))
            .allow_hosts(items(&self.allow_host))
            // Asking for a kind of trace is asking for the trace.
            .trace(self.trace || self.trace_quiet || self.trace_only.is_some())
            .trace_secrets(self.trace_secrets)
            .trace_quiet(self.trace_quiet)
            .inspect(self.inspect)
            .broadcast(self.broadcast)
            .max_backlog(self.max_backlog.unwrap_or(d.max_backlog))
            .stall_timeout(self.stall_timeout.unwrap_or(d.stall_timeout))
            .stdin(self.stdin)
            .stdout(self.stdout)
            .protocols(items(&self.protocol))
            .rooms(self.rooms);
        // The settings that are off unless given (their setters take a value, not `None`).
        config.path = self.path;
        config.trace_only = self.trace_only;
        config.tls_cert = self.tls_cert;
        config.tls_key = self.tls_key;
        config.name = self.name;
        config.static_dir = self.static_dir;
        config
    }
}

/// The values of a repeatable flag, each of which may be a comma list.
fn items(values: &[String]) -> impl Iterator<Item = &str> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The flag that sets a `Config` field: the one place that maps one to the other. argh
/// names each flag after its `Flags` field (`max_frame_size` → `--max-frame-size`), and
/// the `Flags` fields are named like `Config`'s, except the repeatable `--allow-origin`,
/// `--allow-host` and `--protocol`, which fill `allow_origins`, `allow_hosts` and
/// `protocols`, and `--static` (a Rust
/// keyword, so the field is `static_dir`). `tests/defaults.rs` checks every field has
/// its flag.
fn flag_for(field: &str) -> String {
    let field = match field {
        "allow_origins" => "allow_origin",
        "allow_hosts" => "allow_host",
        "protocols" => "protocol",
        "static_dir" => "static",
        other => other,
    };
    format!("--{}", field.replace('_', "-"))
}

/// A library message for the command line: the library names the `Config` field to
/// change in backticks (`` `max_frame_size` must be greater than 0 ``); someone who typed
/// flags reads "max_frame_size (--max-frame-size) must be greater than 0". Backticked text
/// that is not a field name (a command to run, e.g. `cargo build --features tls`) stays.
/// Only the library's own backticks reach this: it writes a client's as `\u{60}`, with
/// the rest of client text escaped (the library's escape.rs), so a client cannot have
/// its text rewritten.
fn with_flags(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 32);
    let mut parts = message.split('`');
    out.push_str(parts.next().unwrap_or(""));
    // Odd parts were between backticks.
    while let Some(quoted) = parts.next() {
        let after = parts.next();
        let is_field = !quoted.is_empty()
            && quoted
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
        let _ = match after {
            Some(after) if is_field => write!(out, "{quoted} ({}){after}", flag_for(quoted)),
            Some(after) => write!(out, "`{quoted}`{after}"),
            // An unpaired backtick: keep the text as it was.
            None => write!(out, "`{quoted}"),
        };
    }
    out
}

/// The log, with the flag next to each `Config` field tinyws's lines name, as for its
/// errors ([`with_flags`]): "add it to protocols (--protocol)".
struct WithFlags(env_logger::Logger);

impl log::Log for WithFlags {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.0.matches(record) {
            return;
        }
        // Only tinyws's own lines name fields, and escape the client text they quote.
        if !record.target().starts_with("tinyws") {
            return self.foreign(record);
        }
        let text = record.args().to_string();
        if !text.contains('`') {
            return self.0.log(record);
        }
        rewritten(&self.0, record, format_args!("{}", with_flags(&text)));
    }

    fn flush(&self) {
        self.0.flush();
    }
}

impl WithFlags {
    /// Another crate's line. tungstenite's, at debug and trace, quote what clients send
    /// (a close reason, a whole text message), unescaped: such a line is written as a
    /// Rust string literal (`{:?}`, which escapes control, bidirectional-text and line
    /// separator characters) when it holds a character that needs it.
    fn foreign(&self, record: &log::Record<'_>) {
        let text = record.args().to_string();
        let plain = |c: char| matches!(c, '"' | '\'' | '\\') || c.escape_debug().len() == 1;
        if text.chars().all(plain) {
            return log::Log::log(&self.0, record);
        }
        rewritten(&self.0, record, format_args!("{text:?}"));
    }
}

/// A time as the log shows it, in UTC to the second: `2026-12-07T04:55:08Z` (RFC 3339).
struct Utc(std::time::SystemTime);

impl std::fmt::Display for Utc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self
            .0
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // The proleptic Gregorian date of a day number (H. Hinnant, "chrono-Compatible
        // Low-Level Date Algorithms", civil_from_days), in unsigned arithmetic: from 1970 on.
        let z = days + 719_468;
        let (era, doe) = (z / 146_097, z % 146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3_600,
            rest / 60 % 60,
            rest % 60
        )
    }
}

/// `record` with its text replaced by `text`.
fn rewritten(logger: &env_logger::Logger, record: &log::Record<'_>, text: std::fmt::Arguments<'_>) {
    log::Log::log(
        logger,
        &log::Record::builder()
            .args(text)
            .level(record.level())
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build(),
    );
}

/// The command line's flags; or, for `--help`, a bad flag or a bad value, the exit
/// code once the text is printed. Like `argh::from_env`, but a closed stdout
/// (`tinyws --help | head -1`) is no panic.
fn flags() -> Result<Flags, ExitCode> {
    let args: Vec<String> = match std::env::args_os().map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!(
                "tinyws: an argument is not valid UTF-8: {}",
                bad.to_string_lossy()
            );
            return Err(ExitCode::FAILURE);
        }
    };
    let cmd = (args.first())
        .and_then(|a| std::path::Path::new(a).file_name()?.to_str())
        .unwrap_or("tinyws");
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match Flags::from_args(&[cmd], &rest) {
        Ok(flags) => Ok(flags),
        Err(argh::EarlyExit {
            output,
            status: Ok(()),
        }) => {
            print_or_leave(&output);
            Err(ExitCode::SUCCESS)
        }
        Err(argh::EarlyExit { output, .. }) => {
            eprintln!("{output}\nRun {cmd} --help for more information.");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Prints `text` to stdout; if the reader has gone (a closed pipe), there is no one to
/// tell, so the error is dropped (`println!` would panic).
fn print_or_leave(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn main() -> ExitCode {
    let flags = match flags() {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    if flags.version {
        // The build's optional layers too: a board owner can tell whether this binary
        // speaks wss:// (`tls`) or serves files without reading its build log.
        print_or_leave(&format!(
            "tinyws {} (features: {})",
            env!("CARGO_PKG_VERSION"),
            tinyws::layers_built()
        ));
        return ExitCode::SUCCESS;
    }
    // A terminal can be paused (Ctrl-S, a console selection on a projector), and a paused
    // one would stop every connection at its next log line: to a terminal, the log goes
    // through tinyws's bounded queue (spool.rs). A file, a pipe or the journal does not
    // pause, and is written directly: under heavy churn the queue's allocations, made by
    // every connection thread and freed by its writer, cost resident memory (the soak:
    // 47 MiB instead of 13 after a wave of 5,000 clients).
    let spooled = std::io::stderr().is_terminal();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if spooled {
        logger.target(env_logger::Target::Pipe(Box::new(tinyws::Stderr)));
    }
    // env_logger's default layout, written here: its own timestamp needs its `humantime`
    // feature, which brings in jiff (10 KB of the binary) for this one field.
    logger.format(|out, record| {
        writeln!(
            out,
            "[{} {:<5} {}] {}",
            Utc(std::time::SystemTime::now()),
            record.level(),
            record.target(),
            record.args()
        )
    });
    // env_logger's own layout, with each of tinyws's messages given its flags: the
    // library's lines name `Config` fields ("`stall_timeout`"), the operator typed flags.
    let logger = WithFlags(logger.build());
    log::set_max_level(logger.0.filter());
    if let Err(e) = log::set_boxed_logger(Box::new(logger)) {
        eprintln!("tinyws: cannot start the log: {e}");
    }

    let server = match Server::bind(flags.into_config(), Echo) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("tinyws: {}", with_flags(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    // The log's writer thread now, after bind (which wants to be the only thread) and
    // before the first line, so the server's thread count is the same all its life.
    if spooled {
        tinyws::Stderr::start();
    }
    // SIGINT/SIGTERM/SIGHUP (Ctrl-C on Windows): 1001 to every client; a second one
    // exits at once (the library's signals.rs, shared with library users).
    if let Err(e) = server.handle().shutdown_on_signals() {
        eprintln!("tinyws: {}", with_flags(&e.to_string()));
        return ExitCode::FAILURE;
    }
    server.run();
    tinyws::Stderr::drain(LOG_DRAIN);
    ExitCode::SUCCESS
}

/// How long the last log lines may take to reach stderr before the process exits.
const LOG_DRAIN: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's timestamps, as env_logger's `humantime` wrote them; leap days and the
    /// century rule included (2000 has a 29 February, 2100 does not).
    #[test]
    fn log_times_are_rfc3339_utc_seconds() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (946_684_799, "1999-12-31T23:59:59Z"),
            (951_827_696, "2000-02-29T12:34:56Z"),
            (1_796_619_308, "2026-12-07T04:55:08Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ] {
            let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(Utc(t).to_string(), want);
        }
    }

    #[test]
    fn library_messages_get_the_flag_next_to_the_field() {
        assert_eq!(
            with_flags("`max_frame_size` must be greater than 0"),
            "max_frame_size (--max-frame-size) must be greater than 0"
        );
        assert_eq!(
            with_flags("`allow_origins` entry \"x\" is not an origin"),
            "allow_origins (--allow-origin) entry \"x\" is not an origin"
        );
        assert_eq!(
            with_flags("`allow_hosts` entry \"a:1\" has a port"),
            "allow_hosts (--allow-host) entry \"a:1\" has a port"
        );
        assert_eq!(
            with_flags("`tls_cert`/`tls_key`: a.pem: cannot read it"),
            "tls_cert (--tls-cert)/tls_key (--tls-key): a.pem: cannot read it"
        );
        assert_eq!(
            with_flags("`static_dir` www: not found"),
            "static_dir (--static) www: not found"
        );
        assert_eq!(
            with_flags("to accept one, add it to `protocols`"),
            "to accept one, add it to protocols (--protocol)"
        );
        let cmd = "rebuild it with `cargo build --release --features tls`";
        assert_eq!(with_flags(cmd), cmd);
        assert_eq!(with_flags("odd ` tick"), "odd ` tick");
        assert_eq!(with_flags("no fields"), "no fields");
    }
}
