//! Every setting of a tinyws server, with its default, unit and trade-off.
//!
//! The defaults are chosen for a small device (a board with a few hundred MiB of RAM)
//! serving a classroom: a few hundred clients, chat-sized messages, and a hard bound on
//! what any one client can make the server allocate. Raise the caps when you need more;
//! the worst-case memory is roughly
//! `max_connections × (2 × max_message_size + read_buffer_size + write_buffer_size + 21 KiB)`
//! plus one thread stack per connection. [`Server::bind`](crate::Server::bind) compares it
//! with the address-space and cgroup memory limits (budget.rs); past what fits, clients
//! get `503`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings for a [`Server`](crate::Server). Start from `Config::default()` and change
/// what you care about with the setters, which are named like the fields:
///
/// ```
/// let config = tinyws::Config::default().port(9001).broadcast(true);
/// assert_eq!(config.port, 9001);
/// ```
///
/// Every field says its default, unit and trade-off. `#[non_exhaustive]`: a minor release
/// may add settings, so build a `Config` from `Config::default()`, not from a struct
/// literal (which does not compile outside tinyws).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on. Default `0.0.0.0` (every IPv4 interface), so students on the
    /// same network can connect; use `127.0.0.1` to accept only local clients.
    pub bind: IpAddr,
    /// TCP port. Default `8080`, the port of the classic gorilla/websocket echo example.
    /// `0` asks the OS for a free port (tests use this; read it back with
    /// [`Server::local_addr`](crate::Server::local_addr)).
    pub port: u16,
    /// The only request path that may upgrade to WebSocket, e.g. `/echo`. Default `None`:
    /// any path upgrades. Requests for other paths get `404 Not Found`. The query string
    /// is ignored when matching, so a path with `?` or `#` is refused by
    /// [`validate`](Self::validate). With [`rooms`](Self::rooms) it is a prefix: `/chat`
    /// accepts `/chat` and every path under `/chat/` (each its own room), not `/chatter`.
    pub path: Option<String>,
    /// Connections served at once (each one is an OS thread, from the TCP accept until the
    /// socket closes, handshake included). Default `256`. A client over the cap gets
    /// `503 Service Unavailable`. This is the bound on threads, sockets and memory: raise it
    /// only as far as `max_connections × stack_size` and the message caps fit your RAM.
    pub max_connections: usize,
    /// Largest message a client may send, in bytes, after reassembling fragments.
    /// Default 64 KiB (upstream tungstenite allows 64 MiB, which lets 8 clients push a
    /// server up by 800 MiB). Larger messages close the connection with 1009. It also
    /// caps [`max_frame_size`](Self::max_frame_size): lowering only this lowers the frame
    /// limit with it (see there).
    pub max_message_size: usize,
    /// Largest single frame payload a client may send, in bytes. Default 64 KiB. A frame
    /// header announcing more is refused with 1009 before anything is allocated. At most
    /// [`max_message_size`](Self::max_message_size): a larger value is clamped to it (a
    /// frame is part of a message, so it could never carry more), and
    /// [`Server::bind`](crate::Server::bind) logs that at `info`. [`effective`](Self::effective)
    /// gives the clamped settings.
    pub max_frame_size: usize,
    /// Largest HTTP request head (request line + headers), in bytes. Default 8 KiB, like
    /// common HTTP servers. Larger heads get `431 Request Header Fields Too Large`. At
    /// most 64 KiB: tungstenite's handshake refuses a longer head.
    pub max_head_size: usize,
    /// Largest single read from the socket, per connection, while data streams in.
    /// Default 64 KiB. This buffer exists only while a client is sending (a large message
    /// or a pipelined burst) and is freed once the connection has been quiet for a second
    /// (reallocating it for every message zero-filled 64 KiB each time); an idle connection
    /// keeps only a 1 KiB buffer. Measured (docs/performance.md): with 4 KiB reads, echoing
    /// 64 KiB messages reached about 0.4 × a raw TCP echo; with 64 KiB reads about 0.7 ×,
    /// at no cost to idle connections.
    pub read_buffer_size: usize,
    /// Outgoing bytes collected before a write is forced, per connection. Default 4 KiB.
    /// Replies are otherwise sent in one `write` when the connection has nothing more to
    /// read, so a burst of small messages costs one syscall, not one per message.
    pub write_buffer_size: usize,
    /// Stack size of each connection thread, in bytes. Default 128 KiB (Rust's default is
    /// 2 MiB). Only touched pages use RAM: the handshake goes about 13 KiB deep, and a
    /// connection quiet for a second gives back all but the top 8 KiB (two pages, most of
    /// it the thread's own control block; measured in docs/performance.md). The whole
    /// size is reserved address space, which matters on 32-bit boards:
    /// `(max_connections + 8) × stack_size` must fit (docs/embedded.md): up to 8 threads
    /// whose client has left wait 2 s for the next one, so a burst of connections does
    /// not pay for starting a thread each.
    pub stack_size: usize,
    /// Total time a client has to deliver its complete request head, from the TCP accept.
    /// Default 5 s. A deadline for the whole head, not per read: a client trickling one byte
    /// at a time (slowloris) is cut off when it expires and gets `408 Request Timeout`.
    pub handshake_timeout: Duration,
    /// How long a connection may stay silent before the server sends a ping
    /// (RFC 6455 §5.5.2). Default 30 s. Each ping is the only wake-up an idle connection
    /// costs, besides one after the first second of quiet that follows the handshake or a
    /// burst of messages over half a KiB, when it gives back the stack and the buffers
    /// they used (so the first ping comes after 1 s + this interval of silence). Without that, a connection
    /// that once echoed a 60 KB message kept about 194 KiB while idle instead of 14 KiB.
    /// `Duration::ZERO` disables keepalive: then a half-open connection (a client
    /// that vanished without FIN/RST) holds its thread until the OS notices, which may be
    /// hours.
    pub ping_interval: Duration,
    /// How long to wait for any frame (normally the pong) after a keepalive ping before
    /// the connection is considered dead and closed. Default 10 s.
    pub ping_timeout: Duration,
    /// How long writes may wait for a client per 16 KiB it takes: the write floor, the
    /// rate below which even a client that still reads is cut. Default 10 s, so 16 KiB
    /// per 10 s (1.6 KiB/s). The time every write to the client (echo replies, HTTP and
    /// static answers, the room's frames, `stdin` lines) waits for it is summed; once it
    /// reaches this before the client took another 16 KiB, or everything sent to it, the
    /// client is disconnected and its buffers are freed. So a client that never reads
    /// costs at most its socket buffers for this long, once, and one that reads a trickle
    /// no longer (a timeout per write call let it hold a reply, a file or, in echo mode,
    /// everyone's `stdin` lines as long as it liked). "Taken" means acknowledged by its
    /// TCP on Linux, written elsewhere (there the sum also starts again with each
    /// message). Shorter values cut clients on slow links sooner (16 KiB per second
    /// needs about 130 kbit/s); longer ones let a stuck client hold its share longer. In
    /// broadcast mode [`stall_timeout`](Self::stall_timeout) acts first on a member that
    /// makes no progress at all while the room waits for it.
    pub write_timeout: Duration,
    /// On shutdown, how long to wait for clients to answer the 1001 close frame before
    /// the remaining sockets are cut. Default 2 s.
    pub shutdown_timeout: Duration,
    /// Extra origins allowed to open WebSocket connections from a browser, besides the
    /// page's own origin (same host and port as the request's `Host`) and clients that send
    /// no `Origin` (non-browser tools). Default: none. Entries are full origins like
    /// `http://example.com:3000`; `*` allows every origin; `null` allows pages opened from
    /// `file://`, which browsers send as `Origin: null`. Other origins get `403 Forbidden`:
    /// this stops cross-site WebSocket hijacking (RFC 6455 §10.2).
    pub allow_origins: Vec<String>,
    /// The only host names (or addresses) this server answers to. Default: empty, every
    /// name (a request must still carry one valid `Host`, RFC 9112 §3.2). Entries are
    /// names like `pi.local` or addresses like `192.168.1.10` or `::1`, without a port;
    /// `Host` is compared without case, without its port and without a trailing dot.
    /// When set, every request (upgrades, the page, static files, the inspector) whose
    /// `Host` names anything else gets `421 Misdirected Request`. This stops DNS
    /// rebinding, which the Origin check cannot: a page on a name whose DNS its owner
    /// pointed at this server's address sends a matching `Origin` and `Host`. Set it when
    /// the server is reachable by name on a network where a browser could be pointed at
    /// such a rebound name (a board's dashboard at home, a lab server); in class, where
    /// everyone who could rebind a name can reach the port anyway, it is not needed. The
    /// trade-off: list every name and address clients use (`localhost` too), or they are
    /// refused.
    pub allow_hosts: Vec<String>,
    /// `wss://`: a PEM file with the server's certificate chain. With `tls_key`, tinyws
    /// speaks TLS on its port (WebSocket over TLS and the page over HTTPS); plain `ws://`
    /// clients get a `400` that says to use `wss://`. Default `None` (plain `ws://`). Needs
    /// a build with the cargo feature `tls`, which adds rustls and ring (about 1.2 MiB
    /// to the stripped binary) and about 22 KiB per idle connection for its session; see
    /// docs/deployment.md. The TLS handshake counts against `handshake_timeout`.
    pub tls_cert: Option<PathBuf>,
    /// `wss://`: a PEM file with the private key of `tls_cert`. Default `None`.
    pub tls_key: Option<PathBuf>,
    /// Narrate every connection on stdout for study: the request head, each check, the
    /// `Sec-WebSocket-Accept` computation, the 101 bytes, then every frame in both
    /// directions (see `trace.rs`). Default `false`; when off it costs one branch per read
    /// and write.
    pub trace: bool,
    /// With `trace`: show credential values in the traced request heads. Default `false`:
    /// the values of `Cookie`, `Authorization`, `Proxy-Authorization` and headers or
    /// query parameters named like a token, key, secret, password or session are printed
    /// as `<hidden: N bytes>`. The trace is meant for a projector, and a browser sends all
    /// of a host's cookies to every port on it, so a teacher's `localhost` cookies from
    /// other development servers would otherwise go up on the wall. The trade-off: with
    /// it off you cannot read those values off the trace (the log at `debug` still has
    /// the headers).
    pub trace_secrets: bool,
    /// With `trace`: the quieter level for a full room. Handshakes and closes are shown
    /// in full, each data frame as one line (direction, kind, FIN, length, the start of
    /// the text), and keepalive pings and pongs not at all. Default `false` (every frame
    /// decoded byte by byte, about 6 lines per frame). The trade-off: the masking and the
    /// header bytes are not shown, so use the full trace while teaching frames.
    pub trace_quiet: bool,
    /// With `trace`: narrate only the connections this selects: `#7` or `7` (a
    /// connection id, as the log and the trace print it), an IP address (every
    /// connection from that machine) or `ip:port` (one connection). Default `None`
    /// (every connection). For following one student's connection in a full room.
    pub trace_only: Option<String>,
    /// The projector view of the live inspector: `GET /inspect` shows every connection
    /// (newest first, each one's request head, checks, accept computation, 101 and
    /// decoded frames, as `--trace` would print them), to anyone who can reach the port.
    /// Default `false`: then only the page that opened a connection can read that
    /// connection's record (with the random token it made), and only connections that
    /// brought a token are recorded (inspect.rs). The trade-off: on, every upgrade is
    /// recorded (at most 64 connections × 48 KiB of handshake and frames, 3 MiB) and
    /// everyone in the room sees everyone's traffic (credentials stay hidden).
    pub inspect: bool,
    /// Broadcast mode (a chat room): every text or binary message the handler returns is
    /// sent to every connected client, the sender included, instead of back to the sender
    /// alone. Default `false` (echo). Each client then gets a second, small thread that
    /// writes its queued frames, so `max_connections` bounds twice as many threads.
    pub broadcast: bool,
    /// Broadcast mode: how many bytes may wait for one client, counted as frame bytes
    /// plus 16 bytes of bookkeeping per frame. Default 256 KiB (four messages of the
    /// default maximum size, or a few thousand chat lines). When a member's backlog is
    /// full, the room waits for it: the sender's thread stops reading its socket (TCP
    /// then slows the sender down) until the member has taken enough, so a member that
    /// keeps reading gets every message and is not closed for it, as long as it frees
    /// some of its socket buffer within each [`stall_timeout`](Self::stall_timeout)
    /// (see there; one that reads nothing is closed after it). Every
    /// member queues the same shared frames, so the frames waiting in all backlogs
    /// together take at most about twice this (the queued frames of the slowest member
    /// plus the batch its writer is writing); per member add 16 bytes per queued frame.
    /// Larger: longer bursts go through without pacing, more memory. Must be at least
    /// `max_message_size + 32`, so that one message of the largest size and its header
    /// fit.
    pub max_backlog: usize,
    /// Broadcast mode: how long the room waits for a member whose backlog is full and
    /// that makes no progress before that member is closed with 1008 and the room goes
    /// on without it. Progress: its writer wrote bytes (at most 16 KiB per write, so a
    /// write finishes as soon as the system takes that much more; when it does depends
    /// on the send buffer: Linux waits until half of it is free) and, on Linux, the
    /// kernel saw bytes acknowledged. The limit is this, or twice the connection's
    /// retransmission timeout if that is longer (Linux, where that is at least 200 ms:
    /// so never less than 400 ms there). Default 1 s. While it waits,
    /// every member's next message waits too, so this is the longest pause one stuck
    /// member (a frozen tab, a client that stopped reading) causes the room. The
    /// trade-off: a receiver's kernel acknowledges in steps of about one segment (up to
    /// 64 KiB on loopback, about 1.5 KiB on Ethernet), so a reader is only seen to
    /// progress as often as it frees that much; shorter values cut slow but steady
    /// readers (at 50 ms a reader pausing 20 ms per 16 KiB message on loopback was cut),
    /// longer values make a stuck member pause the room longer. Only under load: a
    /// member is never cut while its backlog has room.
    pub stall_timeout: Duration,
    /// A name for this server in its log lines: "sensors: listening on …",
    /// "sensors #3 192.168.1.23:50712: opened /", so that two servers in one process (or
    /// one journal) are told apart. Default `None`: no prefix, lines start as before
    /// ("listening on …", "#3 …"). The trade-off: longer log lines; nothing is kept per
    /// connection (the name is written into each line as it is formatted).
    pub name: Option<String>,
    /// Serve the files under this directory on the same port: a plain `GET` or `HEAD`
    /// that is not an upgrade gets the file its path names (`/` → `index.html`, or the
    /// built-in page when there is none; the built-in page is also always at
    /// `/.tinyws`). Default `None`: only the built-in page, on `/`. Nothing outside the
    /// directory is served (no `..`, encoded or not, no hidden names, no symlink out of
    /// it): such requests get `404`, like a missing file. Each answer runs on its
    /// connection's thread and counts against
    /// [`max_connections`](Self::max_connections); a file goes out in 16 KiB chunks
    /// whatever its size, under the write floor of
    /// [`write_timeout`](Self::write_timeout). [`Server::bind`](crate::Server::bind)
    /// fails if it is not a readable directory, or if this build lacks the cargo feature
    /// `static` (a default one).
    pub static_dir: Option<PathBuf>,
    /// Send each line of the process's standard input as a text message: to the room in
    /// broadcast mode (as [`ServerHandle::broadcast`](crate::ServerHandle::broadcast)
    /// does, so a room that is full waits, and so does the reading), and to every open
    /// connection in echo mode, one after the other, under the write floor of
    /// [`write_timeout`](Self::write_timeout): a client that stops reading delays the lines
    /// for the others at most that long, once, then it is disconnected; one that reads
    /// slowly sets the pace of the lines, but never below 16 KiB per `write_timeout`.
    /// Default `false`. One thread reads, started by
    /// [`Server::run`](crate::Server::run). A line (without its `\n` or `\r\n`) longer
    /// than [`max_message_size`](Self::max_message_size) is dropped whole, counted and
    /// logged; invalid UTF-8 is sent as U+FFFD, counted and logged. At the end of input
    /// the server keeps serving and logs it once. For `sensor-script | tinyws --broadcast
    /// --stdin`; a program of your own calls `ServerHandle::broadcast` instead. Needs the
    /// cargo feature `pipes` (a default one), as [`stdout`](Self::stdout) does.
    pub stdin: bool,
    /// Write each text message a client sends as one line on the process's standard
    /// output (a CR or LF inside it written as `\r`, `\n`), before the handler sees it
    /// (the echo or the broadcast still happens). Binary messages are skipped and
    /// counted. Default `false`. The lines wait in a bounded queue (1 MiB) that one
    /// thread writes out, so a stdout that is not read never stalls a connection: past
    /// the bound lines are left out, counted where they were (a `--` line on stdout), in
    /// a warning and at shutdown. Not with [`trace`](Self::trace), which also writes to
    /// stdout.
    pub stdout: bool,
    /// Subprotocols this server speaks (RFC 6455 §1.9), in its order of preference, e.g.
    /// `["chat"]`. Default: none. A client that offers some in `Sec-WebSocket-Protocol`
    /// gets the first of these that it offered, in the `101`'s `Sec-WebSocket-Protocol`
    /// (§4.2.2 item 5.5), and the handler sees it in
    /// [`Client::protocol`](crate::Client::protocol). The server's order wins over the
    /// client's. Names compare exactly, case included: RFC 6455 says nothing of case for
    /// them, the client must fail a connection whose answer it did not offer (§4.1), and
    /// browsers check that byte for byte. A client that offers only other names still
    /// gets its `101`, without the header (§4.2.2 /subprotocol/: the only acceptable
    /// value is then null), and the log says at `info` what it offered; a browser then
    /// fails the connection itself, as `new WebSocket(url, "chat")` does. Each name must
    /// be an HTTP token (§4.1 item 10: `!`…`~` without separators), listed once.
    pub protocols: Vec<String>,
    /// Broadcast mode with one room per request path (implies
    /// [`broadcast`](Self::broadcast)): clients of `/chat/lobby` and of `/chat/42` are in
    /// two rooms, each with the guarantees of the one room (one order, bounded
    /// backlogs, pacing), and a message never crosses from one to another. The room is
    /// the path exactly as sent, without the query: `/chat/a` and `/chat/a/` are two
    /// rooms. With [`path`](Self::path) `/chat`, `/chat` and every path under `/chat/`
    /// may upgrade (not `/chatter`). Default `false`. A room exists while it has members:
    /// an empty room costs nothing, so at most `max_connections` rooms exist. The
    /// trade-off: none beyond broadcast mode's, but a sender is paced only by the members
    /// of its own room.
    pub rooms: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 8080,
            path: None,
            max_connections: 256,
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            max_head_size: 8 * 1024,
            read_buffer_size: 64 * 1024,
            write_buffer_size: 4 * 1024,
            stack_size: 128 * 1024,
            handshake_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(2),
            allow_origins: Vec::new(),
            allow_hosts: Vec::new(),
            tls_cert: None,
            tls_key: None,
            trace: false,
            trace_secrets: false,
            trace_quiet: false,
            trace_only: None,
            inspect: false,
            broadcast: false,
            max_backlog: 256 * 1024,
            stall_timeout: Duration::from_secs(1),
            name: None,
            static_dir: None,
            stdin: false,
            stdout: false,
            protocols: Vec::new(),
            rooms: false,
        }
    }
}

/// Chainable setters, one per field and named like it:
/// `Config::default().port(9001).broadcast(true)`. Each field's own doc says its default,
/// unit and trade-off. The fields stay public to read (and to assign, e.g.
/// `config.path = None`), but [`Config`] is `#[non_exhaustive]` so that a new setting is
/// not a breaking change: outside tinyws a struct literal (`Config { port: 1, ..Config::default() }`)
/// does not compile; use these.
impl Config {
    /// How tungstenite reads and writes frames: every connection's settings, and the
    /// frame lab's, so it gives the same verdicts. The limits (RFC 6455 §10.4), and no
    /// write buffer: tungstenite hands every frame straight on (a connection's stream
    /// batches them, ws/stream.rs; the lab collects them).
    pub(crate) fn limits(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .write_buffer_size(0)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

/// A chainable setter named like its field, which it sets to the argument, or to `Some`
/// of it for an optional field (`setter!(name: Some(String))`).
macro_rules! setter {
    ($field:ident: Some($ty:ty)) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self#structfield.", stringify!($field), ") (wraps it in `Some`).")]
        pub fn $field(mut self, $field: impl Into<$ty>) -> Self {
            self.$field = Some($field.into());
            self
        }
    };
    ($field:ident: $ty:ty) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self#structfield.", stringify!($field), ").")]
        pub fn $field(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
    };
}

impl Config {
    setter!(bind: IpAddr);
    setter!(port: u16);
    setter!(path: Some(String));
    setter!(max_connections: usize);
    setter!(max_message_size: usize);
    setter!(max_frame_size: usize);
    setter!(max_head_size: usize);
    setter!(read_buffer_size: usize);
    setter!(write_buffer_size: usize);
    setter!(stack_size: usize);
    setter!(handshake_timeout: Duration);
    setter!(ping_interval: Duration);
    setter!(ping_timeout: Duration);
    setter!(write_timeout: Duration);
    setter!(shutdown_timeout: Duration);
    setter!(tls_cert: Some(PathBuf));
    setter!(tls_key: Some(PathBuf));
    setter!(trace: bool);
    setter!(trace_secrets: bool);
    setter!(trace_quiet: bool);
    setter!(trace_only: Some(String));
    setter!(inspect: bool);
    setter!(broadcast: bool);
    setter!(max_backlog: usize);
    setter!(stall_timeout: Duration);
    setter!(name: Some(String));
    setter!(static_dir: Some(PathBuf));
    setter!(stdin: bool);
    setter!(stdout: bool);

    /// Sets [`allow_origins`](Self#structfield.allow_origins), replacing the list.
    pub fn allow_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allow_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`allow_hosts`](Self#structfield.allow_hosts), replacing the list.
    pub fn allow_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allow_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`protocols`](Self#structfield.protocols), replacing the list (the server's
    /// order of preference).
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`rooms`](Self#structfield.rooms) (`true` implies broadcast mode).
    pub fn rooms(mut self, rooms: bool) -> Self {
        self.rooms = rooms;
        self
    }
}

impl Config {
    /// The sizes and durations [`validate`](Self::validate) bounds: a stack a thread can
    /// run on, timeouts above zero, and none beyond 24 hours.
    fn check_durations(&self) -> Result<(), String> {
        if self.stack_size < 64 * 1024 {
            return Err("`stack_size` must be at least 64KiB".into());
        }
        for (field, d) in [
            ("handshake_timeout", self.handshake_timeout),
            ("write_timeout", self.write_timeout),
            ("stall_timeout", self.stall_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("`{field}` must be greater than 0"));
            }
        }
        // Far beyond any sensible setting, and it keeps `Instant + duration` from
        // overflowing (which would panic) however large a number was typed.
        for (field, d) in [
            ("handshake_timeout", self.handshake_timeout),
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
            ("write_timeout", self.write_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
            ("stall_timeout", self.stall_timeout),
        ] {
            if d > Duration::from_secs(24 * 3600) {
                return Err(format!("`{field}` must be at most 24h"));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Checks the combination of values. The message is one line that names the field to
    /// fix in backticks, e.g. "`max_frame_size` must be greater than 0" (the `tinyws`
    /// binary adds the flag: "max_frame_size (--max-frame-size)").
    ///
    /// A `max_frame_size` above `max_message_size` is not an error: it is clamped (see
    /// [`effective`](Self::effective)), and [`Server::bind`](crate::Server::bind) logs
    /// that at `info`.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_connections", self.max_connections),
            ("max_message_size", self.max_message_size),
            ("max_frame_size", self.max_frame_size),
            ("max_head_size", self.max_head_size),
            ("read_buffer_size", self.read_buffer_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(format!("`{field}` must be greater than 0"));
            }
        }
        if self.max_head_size > MAX_HEAD_SIZE {
            return Err(format!(
                "`max_head_size` must be at most {}: tungstenite's WebSocket handshake refuses a longer request head",
                format_size(MAX_HEAD_SIZE)
            ));
        }
        self.check_durations()?;
        if !self.ping_interval.is_zero() && self.ping_timeout.is_zero() {
            return Err(
                "`ping_timeout` must be greater than 0 while keepalive is on (`ping_interval` above 0)"
                    .into(),
            );
        }
        if (self.broadcast || self.rooms) && self.max_backlog < self.max_message_size + 32 {
            // One message of the largest size must fit: its frame header (up to 10 bytes)
            // and the 16 bytes of bookkeeping the backlog counts per frame.
            return Err(format!(
                "`max_backlog` ({}) is smaller than `max_message_size` ({}) plus a frame header; every large message would disconnect every client, so raise it",
                format_size(self.max_backlog),
                format_size(self.max_message_size)
            ));
        }
        if let Some(p) = self.path.as_ref().filter(|p| !p.starts_with('/')) {
            return Err(format!("`path` must start with '/', e.g. /{p}"));
        }
        if let Some(p) = self.path.as_ref().filter(|p| p.contains(['?', '#'])) {
            // Requests are matched on their path alone (the query is the handler's, and a
            // fragment is never sent: RFC 6455 §3), so this could never match anything.
            let bare = p.split(['?', '#']).next().unwrap_or("/");
            return Err(format!(
                "`path` {p} has a query or fragment, which tinyws does not compare (only the path is); use {bare}"
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err("`tls_cert` needs `tls_key` (the certificate's private key)".into());
            }
            (None, Some(_)) => {
                return Err("`tls_key` needs `tls_cert` (the certificate for that key)".into());
            }
            _ => {}
        }
        if let Some(only) = self.trace_only.as_deref().filter(|o| !valid_trace_only(o)) {
            return Err(format!(
                "`trace_only` {only:?} is not a connection id (#7), an IP address (192.168.1.23) or ip:port"
            ));
        }
        for o in &self.allow_origins {
            if o != "*" && o != "null" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(format!(
                    "`allow_origins` entry {o:?} is not an origin; write it like http://example.com:3000, or use * or null"
                ));
            }
        }
        for h in &self.allow_hosts {
            crate::host::entry(h)?;
        }
        if self.trace && self.stdout {
            return Err(
                "`trace` and `stdout` both write to standard output, and their lines would mix; use one of them"
                    .into(),
            );
        }
        for (i, name) in self.protocols.iter().enumerate() {
            if !is_token(name) {
                return Err(format!(
                    "`protocols` entry {name:?} is not a subprotocol name: it must be an HTTP token (letters, digits and any of !#$%&'*+-.^_|~, no spaces or commas; RFC 6455 §4.1)"
                ));
            }
            if self.protocols[..i].contains(name) {
                return Err(format!("`protocols` lists {name:?} twice"));
            }
        }
        Ok(())
    }

    /// The settings the server applies: these, with
    /// [`max_frame_size`](Self#structfield.max_frame_size) lowered to
    /// [`max_message_size`](Self#structfield.max_message_size) if it is larger (a frame is
    /// part of a message, so it could never carry more). `Config::default().max_message_size(4096)`
    /// therefore serves frames of up to 4096 bytes, not the default 64 KiB. And
    /// [`broadcast`](Self#structfield.broadcast) is on when
    /// [`rooms`](Self#structfield.rooms) is (a room per path is broadcast mode).
    ///
    /// ```
    /// let c = tinyws::Config::default().max_message_size(4096);
    /// assert_eq!(c.max_frame_size, 64 * 1024);
    /// assert_eq!(c.effective().max_frame_size, 4096);
    /// ```
    pub fn effective(&self) -> Config {
        let mut c = self.clone();
        c.max_frame_size = c.max_frame_size.min(c.max_message_size);
        // A room per path is broadcast mode (see `rooms`).
        c.broadcast |= c.rooms;
        c
    }

    /// The info line for a clamped frame limit, or `None` when nothing is clamped.
    pub(crate) fn clamp_note(&self) -> Option<String> {
        (self.max_frame_size > self.max_message_size).then(|| {
            format!(
                "`max_frame_size` ({}) is larger than `max_message_size` ({}); frames are limited to {} as well",
                format_size(self.max_frame_size),
                format_size(self.max_message_size),
                format_size(self.max_message_size)
            )
        })
    }
}

/// An HTTP token (RFC 2616 §2.2, which RFC 6455 §4.1 item 10 names for subprotocols):
/// one or more of U+0021…U+007E but the separators.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Whether `--trace-only` names something a connection could match (trace.rs matches
/// it): a connection id (`7`, `#7`), an `ip:port` or an IP address.
fn valid_trace_only(only: &str) -> bool {
    let only = only.trim();
    only.trim_start_matches('#').parse::<u64>().is_ok()
        || only.parse::<std::net::SocketAddr>().is_ok()
        || only.parse::<IpAddr>().is_ok()
}

/// The effective settings, on one line, as printed at startup.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins = if self.allow_origins.is_empty() {
            "same-origin".to_string()
        } else {
            format!("same-origin,{}", self.allow_origins.join(","))
        };
        let ping = if self.ping_interval.is_zero() {
            "off".to_string()
        } else {
            format_duration(self.ping_interval)
        };
        write!(
            f,
            "path={} max-connections={} max-message-size={} max-frame-size={} max-head-size={} \
             read-buffer-size={} write-buffer-size={} stack-size={} handshake-timeout={} \
             ping-interval={} ping-timeout={} write-timeout={} shutdown-timeout={} allow-origin={} mode={} tls={}",
            self.path.as_deref().unwrap_or("*"),
            self.max_connections,
            format_size(self.max_message_size),
            // What is applied (see `effective`), not what was asked for.
            format_size(self.max_frame_size.min(self.max_message_size)),
            format_size(self.max_head_size),
            format_size(self.read_buffer_size),
            format_size(self.write_buffer_size),
            format_size(self.stack_size),
            format_duration(self.handshake_timeout),
            ping,
            format_duration(self.ping_timeout),
            format_duration(self.write_timeout),
            format_duration(self.shutdown_timeout),
            origins,
            if self.broadcast || self.rooms {
                format!(
                    "{} max-backlog={} stall-timeout={}",
                    if self.rooms { "rooms" } else { "broadcast" },
                    format_size(self.max_backlog),
                    format_duration(self.stall_timeout)
                )
            } else {
                "echo".to_string()
            },
            if self.tls_cert.is_some() { "on" } else { "off" },
        )?;
        // Only when set, so the usual line stays as it was.
        if let Some(dir) = &self.static_dir {
            write!(f, " static={}", dir.display())?;
        }
        if self.stdin {
            f.write_str(" stdin=on")?;
        }
        if self.stdout {
            f.write_str(" stdout=on")?;
        }
        if !self.protocols.is_empty() {
            write!(f, " protocol={}", self.protocols.join(","))?;
        }
        if !self.allow_hosts.is_empty() {
            write!(f, " allow-host={}", self.allow_hosts.join(","))?;
        }
        Ok(())
    }
}

/// Parses a byte size: `512`, `512B`, `64KiB`, `1MiB`, `1GiB` (powers of 1024) or
/// `64KB`, `1MB` (powers of 1000). Units are case-insensitive; `k`, `m`, `g` mean KiB, MiB, GiB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a size; write e.g. 65536, 64KiB or 1MiB"
        ));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{s:?} is too large for this machine"))
}

/// Parses a duration: `30s`, `500ms`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. 30s, 500ms or 2m"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {s:?}; use ms, s, m or h"
            ));
        }
    };
    Ok(d)
}

/// The inverse of [`parse_size`] for round numbers: `65536` → `64KiB`.
pub fn format_size(n: usize) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

/// The inverse of [`parse_duration`] for round numbers: 30 s → `30s`.
pub fn format_duration(d: Duration) -> String {
    // Seconds and milliseconds apart, not `as_millis`: printing its u128 would bring
    // u128 formatting into the binary for this alone.
    let (s, ms) = (d.as_secs(), d.subsec_millis());
    match (s, ms) {
        (_, 0) => format!("{s}s"),
        (0, _) => format!("{ms}ms"),
        _ => format!("{s}{ms:03}ms"),
    }
}

/// The longest request head [`Config::max_head_size`] may allow: tungstenite 0.30's
/// handshake fails on more than 64 KiB of head as an "attack attempt" (`AttackCheck`
/// in its handshake/machine.rs), which would reach a client as a puzzling `400`. The
/// stream hands it exactly the head (ws/stream.rs), so a head of this size upgrades.
pub(crate) const MAX_HEAD_SIZE: usize = 64 * 1024;

/// The stack of each of tinyws's own small threads: a broadcast member's writer, the
/// threads that answer `503`, the trace and log writers, the binary's signal thread. They
/// hold a few pointers and call no handler, so 64 KiB (reserved, mostly untouched) is
/// plenty; the memory budget (budget.rs) counts them.
pub(crate) const HELPER_STACK: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("64kib"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert!(parse_size("").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("64 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("18446744073709551615GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        for s in ["64KiB", "1MiB", "4KiB", "1000B", "3GiB"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
        for s in ["30s", "500ms", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn defaults_are_valid_and_checks_name_the_field() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(
            Config::default().max_frame_size(0).validate(),
            Err("`max_frame_size` must be greater than 0".into())
        );
        assert_eq!(
            Config::default().max_head_size(64 * 1024 + 1).validate(),
            Err("`max_head_size` must be at most 64KiB: tungstenite's WebSocket handshake refuses a longer request head".into())
        );
        assert_eq!(
            Config::default().max_head_size(64 * 1024).validate(),
            Ok(())
        );
        let e = Config::default().path("echo").validate().unwrap_err();
        assert_eq!(e, "`path` must start with '/', e.g. /echo");
        let e = Config::default()
            .path("/echo?room=1")
            .validate()
            .unwrap_err();
        assert!(
            e.starts_with("`path` /echo?room=1 has a query") && e.ends_with("use /echo"),
            "{e}"
        );
        let e = Config::default()
            .allow_origins(["example.com"])
            .validate()
            .unwrap_err();
        assert!(
            e.starts_with("`allow_origins` entry") && e.contains("http://"),
            "{e}"
        );
        for ok in [&["pi.local", "192.168.1.10", "::1", "[fe80::1]"][..], &[]] {
            assert_eq!(
                Config::default().allow_hosts(ok.iter().copied()).validate(),
                Ok(()),
                "{ok:?}"
            );
        }
        let e = Config::default()
            .allow_hosts(["pi.local", "pi.local:8080"])
            .validate()
            .unwrap_err();
        assert!(
            e.starts_with("`allow_hosts` entry \"pi.local:8080\" has a port"),
            "{e}"
        );
        let c = Config::default().write_timeout(parse_duration("99999999999999999h").unwrap());
        assert_eq!(
            c.validate(),
            Err("`write_timeout` must be at most 24h".into())
        );
        let c = Config::default().broadcast(true).max_backlog(64 * 1024);
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("`max_backlog` (64KiB) is smaller than `max_message_size` (64KiB)")
        );
        let c = Config::default()
            .broadcast(true)
            .max_backlog(64 * 1024 + 32);
        assert_eq!(c.validate(), Ok(()));
        let e = Config::default().tls_key("k.pem").validate().unwrap_err();
        assert!(e.starts_with("`tls_key` needs `tls_cert`"), "{e}");
        // No message names a flag: the binary adds those (main.rs).
        for c in [
            Config::default().max_connections(0),
            Config::default().stack_size(4096),
            Config::default().ping_timeout(Duration::ZERO),
            Config::default().trace_only("alice"),
            Config::default().tls_cert("c.pem"),
            Config::default().trace(true).stdout(true),
            Config::default().allow_hosts(["*.local"]),
        ] {
            let e = c.validate().unwrap_err();
            assert!(!e.contains("--") && e.starts_with('`'), "{e}");
        }
        assert!(!valid_trace_only("alice") && valid_trace_only("#3") && valid_trace_only("::1"));
        for ok in ["chat", "v2.chat", "a!#$%&'*+-.^_`|~9"] {
            assert_eq!(Config::default().protocols([ok]).validate(), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a,b", "a\"", "a/b", "é"] {
            let e = Config::default().protocols([bad]).validate().unwrap_err();
            assert!(e.starts_with("`protocols` entry"), "{bad:?}: {e}");
        }
        let e = Config::default()
            .protocols(["a", "b", "a"])
            .validate()
            .unwrap_err();
        assert_eq!(e, "`protocols` lists \"a\" twice");
    }

    #[test]
    fn setters_set_the_field_of_their_name() {
        let c = Config::default()
            .bind(IpAddr::from([127, 0, 0, 1]))
            .port(9001)
            .path("/echo")
            .max_connections(3)
            .allow_origins(vec!["*".to_string()])
            .allow_hosts(["pi.local", "::1"])
            .tls_cert("c.pem")
            .trace_only("#7")
            .inspect(true)
            .broadcast(true)
            .stall_timeout(Duration::from_millis(500))
            .static_dir("www")
            .stdin(true)
            .stdout(true);
        // Inside tinyws a struct literal still compiles: it checks each setter's field.
        let want = Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 9001,
            path: Some("/echo".into()),
            max_connections: 3,
            allow_origins: vec!["*".into()],
            allow_hosts: vec!["pi.local".into(), "::1".into()],
            tls_cert: Some("c.pem".into()),
            trace_only: Some("#7".into()),
            inspect: true,
            broadcast: true,
            stall_timeout: Duration::from_millis(500),
            static_dir: Some("www".into()),
            stdin: true,
            stdout: true,
            ..Config::default()
        };
        assert_eq!(c, want);
        // The settings line names them only when set.
        assert!(
            c.to_string()
                .ends_with(" static=www stdin=on stdout=on allow-host=pi.local,::1"),
            "{c}"
        );
        assert!(!Config::default().to_string().contains("std"));
        assert!(!Config::default().to_string().contains("allow-host"));
    }

    #[test]
    fn a_frame_limit_over_the_message_limit_is_clamped_not_refused() {
        let c = Config::default().max_message_size(4096);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.effective().max_frame_size, 4096);
        assert_eq!(c.effective().max_message_size, 4096);
        assert!(
            c.to_string()
                .contains("max-message-size=4KiB max-frame-size=4KiB"),
            "{c}"
        );
        assert_eq!(
            c.clamp_note().as_deref(),
            Some(
                "`max_frame_size` (64KiB) is larger than `max_message_size` (4KiB); frames are limited to 4KiB as well"
            )
        );
        // A smaller frame limit is kept, and nothing is said.
        let c = Config::default().max_frame_size(1024);
        assert_eq!(c.effective(), c);
        assert_eq!(c.clamp_note(), None);
        assert_eq!(Config::default().effective(), Config::default());
    }

    proptest! {
        /// The flag parsers (`--max-message-size 16MiB`, `--ping-interval 30s`) never panic,
        /// and what they accept is exactly the number times the unit, or an error on overflow.
        #[test]
        fn sizes_parse_exactly_or_fail(
            n in prop_oneof![0u64..4096, any::<u64>()],
            unit in prop::sample::select(vec![
                ("", 1u64), ("B", 1), ("k", 1 << 10), ("KiB", 1 << 10), ("kib", 1 << 10),
                ("MiB", 1 << 20), ("m", 1 << 20), ("GiB", 1 << 30), ("KB", 1_000),
                ("MB", 1_000_000), ("gb", 1_000_000_000),
            ]),
            space in prop_oneof![Just(""), Just(" ")],
            junk in ".{0,12}",
        ) {
            let want = n.checked_mul(unit.1).and_then(|v| usize::try_from(v).ok());
            let got = crate::config::parse_size(&format!("{n}{space}{}", unit.0));
            prop_assert_eq!(got.ok(), want);
            let _ = crate::config::parse_size(&junk);
            let _ = crate::config::parse_size(&format!("{n}{junk}"));
        }

        #[test]
        fn formatted_sizes_parse_back(n in any::<usize>()) {
            prop_assert_eq!(crate::config::parse_size(&crate::config::format_size(n)), Ok(n));
        }

        #[test]
        fn durations_parse_exactly_or_fail(
            n in any::<u64>(),
            unit in prop::sample::select(vec!["", "s", "ms", "m", "min", "h"]),
            junk in ".{0,12}",
        ) {
            let want = match unit {
                "" | "s" => Duration::from_secs(n),
                "ms" => Duration::from_millis(n),
                "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
                _ => Duration::from_secs(n.saturating_mul(3600)),
            };
            prop_assert_eq!(crate::config::parse_duration(&format!("{n}{unit}")), Ok(want));
            let _ = crate::config::parse_duration(&junk);
            let _ = crate::config::parse_duration(&format!("{n}{junk}"));
        }

        #[test]
        fn formatted_durations_parse_back(ms in any::<u64>()) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(crate::config::parse_duration(&crate::config::format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn rooms_are_broadcast_mode() {
        let c = Config::default().rooms(true);
        assert!(!c.broadcast && c.effective().broadcast);
        assert!(
            c.to_string().contains("mode=rooms max-backlog=256KiB"),
            "{c}"
        );
        // Like broadcast mode, rooms need one message to fit a backlog.
        let e = c.max_backlog(1024).validate().unwrap_err();
        assert!(e.starts_with("`max_backlog`"), "{e}");
    }

    #[test]
    fn the_settings_line_lists_the_subprotocols() {
        let c = Config::default().protocols(["chat", "v2"]);
        assert!(c.to_string().ends_with(" protocol=chat,v2"), "{c}");
    }
}
