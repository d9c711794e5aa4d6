//! The load generator of the tinyws benchmark. One scenario per run, over loopback, with
//! its own minimal client (hand-made masked frames, RFC 6455 §5.2/§5.3) so that the
//! client's cost is the same whatever server it talks to. Every echoed byte is checked.
//!
//! ```text
//! cargo run --release --example loadgen -- --scenario echo --addr 127.0.0.1:8080 \
//!     --conns 16 --size 32 --secs 2 --pid $(pidof tinyws)
//! ```
//!
//! Scenarios: `echo` (closed loop, one message in flight per connection), `pipeline`
//! (`--window` messages in flight), `handshake` (connect → handshake → close handshake →
//! the server's FIN), `idle` (open `--conns` and hold them `--secs`, then a new client's
//! echo latency), `broadcast` (one sender, `--conns` receivers, for `tinyws --broadcast`),
//! `raw` (the `echo` scenario over plain TCP, for `tools/raw_echo.rs`),
//! `raw_broadcast` (the `broadcast` scenario over plain TCP, for `raw_echo ADDR broadcast`),
//! `flood` (for `tinyws --broadcast`: one member sends `--size` messages back to back,
//! `--conns` members read as fast as they can, one member never reads, and one more sends
//! a short chat line every 100 ms: deliveries per second, the longest gap between two
//! messages at a reader, the sender's rate, and how long the chat lines took).
//!
//! With `--pid`, the server's CPU time (`/proc/PID/stat`, and the sum of its threads'
//! `/proc/PID/task/*/schedstat` for nanosecond precision), memory and thread count are
//! sampled exactly around the measured window. The result is one line of `key=value`
//! pairs on stdout, which `tools/bench.rs` parses. Errors go to stderr, exit code 1.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use argh::FromArgs;

/// Every socket gives up after this long: a stuck server fails the run, it never hangs it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The RFC 6455 §1.3 sample key and the accept value the server must answer with.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The masking key of every client frame (RFC 6455 §5.3 requires one; any value works).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Load generator for the tinyws benchmark (loopback only).
#[derive(FromArgs)]
struct Args {
    /// echo | pipeline | handshake | idle | broadcast | raw | raw_broadcast | flood
    #[argh(option)]
    scenario: String,
    /// server address, e.g. 127.0.0.1:8080
    #[argh(option)]
    addr: SocketAddr,
    /// connections (receivers for broadcast; held connections for idle)
    #[argh(option, default = "1")]
    conns: usize,
    /// payload bytes per message
    #[argh(option, default = "32")]
    size: usize,
    /// messages in flight per connection (pipeline)
    #[argh(option, default = "32")]
    window: usize,
    /// seconds to measure (idle: seconds to hold)
    #[argh(option, default = "2.0")]
    secs: f64,
    /// upper bound on messages (or handshakes) per connection, so every run ends
    #[argh(option, default = "10000000")]
    max_count: u64,
    /// idle: each held connection first echoes one message of this many bytes (0: none)
    #[argh(option, default = "0")]
    first_message: usize,
    /// server process id, to sample its CPU time and memory around the measurement
    #[argh(option)]
    pid: Option<u32>,
}

fn main() {
    let args: Args = argh::from_env();
    let result = match args.scenario.as_str() {
        "echo" => echo(&args, false),
        "raw" => echo(&args, true),
        "pipeline" => pipeline(&args),
        "handshake" => handshake(&args),
        "idle" => idle(&args),
        "broadcast" => broadcast(&args, false),
        "raw_broadcast" => broadcast(&args, true),
        "flood" => flood(&args),
        other => Err(io::Error::other(format!("unknown scenario {other:?}"))),
    };
    match result {
        Ok(report) => println!("{}", report.join(" ")),
        Err(e) => {
            eprintln!("loadgen {}: {e}", args.scenario);
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------- the client side

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Connects and completes the opening handshake (RFC 6455 §4.1), checking the 101 and the
/// `Sec-WebSocket-Accept` value. Returns the bytes that arrived after the head, if any.
fn ws_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut s = connect(addr)?;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    // Take exactly the head: peek at what arrived, read up to the blank line if it is in
    // view, else all of it (it is all head) and peek again. A frame right behind the 101
    // (a broadcast) stays in the socket for read_frame. Reading one byte per recv, as
    // this did before, cost ~130 syscalls per handshake and made the load generator the
    // limit of the handshake scenario.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        // Blocks (up to the read timeout) while nothing is there.
        let n = s.peek(&mut buf)?;
        if n == 0 || head.len() > 4096 {
            return Err(io::Error::other("handshake: no complete response head"));
        }
        // The blank line may have begun in what was already taken.
        let kept = head.len().min(3);
        let mut view = head[head.len() - kept..].to_vec();
        view.extend_from_slice(&buf[..n]);
        let take = match view.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => at + 4 - kept,
            None => n,
        };
        s.read_exact(&mut buf[..take])?;
        head.extend_from_slice(&buf[..take]);
    }
    let text = String::from_utf8_lossy(&head);
    if !text.starts_with("HTTP/1.1 101") || !text.contains(ACCEPT) {
        return Err(io::Error::other(format!(
            "handshake refused: {}",
            text.lines().next().unwrap_or("")
        )));
    }
    Ok(s)
}

/// Appends one masked client frame (FIN set) with `payload` to `out`.
fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    // Eight bytes at a time (the compiler vectorizes this), so that masking 64 KiB does
    // not make the load generator the bottleneck.
    let m = [MASK, MASK].concat();
    let m64 = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]);
    let mut chunks = out[start..].chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ m64;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= MASK[i & 3];
    }
}

/// Reads one whole server frame into `buf`; returns its opcode. Server frames must be
/// unmasked (RFC 6455 §5.1) and, here, unfragmented: both are checked.
fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<u8> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    if h[1] & 0x80 != 0 {
        return Err(io::Error::other(
            "the server masked a frame (RFC 6455 §5.1)",
        ));
    }
    if h[0] & 0x80 == 0 {
        return Err(io::Error::other(
            "fragmented reply: this client expects whole frames",
        ));
    }
    let len = match h[1] & 0x7f {
        126 => {
            let mut e = [0u8; 2];
            s.read_exact(&mut e)?;
            u16::from_be_bytes(e) as usize
        }
        127 => {
            let mut e = [0u8; 8];
            s.read_exact(&mut e)?;
            usize::try_from(u64::from_be_bytes(e)).map_err(io::Error::other)?
        }
        n => n as usize,
    };
    if len > 64 << 20 {
        return Err(io::Error::other("reply frame over 64 MiB"));
    }
    buf.resize(len, 0);
    s.read_exact(buf)?;
    Ok(h[0] & 0x0f)
}

/// The close handshake from the client side: send 1000, read the server's close, then
/// wait for the server to close TCP first (RFC 6455 §7.1.1).
fn ws_close(mut s: TcpStream) -> io::Result<()> {
    let mut f = Vec::with_capacity(8);
    put_frame(&mut f, 0x8, &1000u16.to_be_bytes());
    s.write_all(&f)?;
    let mut buf = Vec::new();
    loop {
        match read_frame(&mut s, &mut buf)? {
            0x8 => break,
            0x9 | 0xA | 0x1 | 0x2 => continue,
            op => return Err(io::Error::other(format!("unexpected opcode {op}"))),
        }
    }
    let mut rest = [0u8; 64];
    match s.read(&mut rest) {
        Ok(0) => Ok(()),
        Ok(_) => Err(io::Error::other("data after the close frame")),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sends message `seq` as one binary frame and checks that its echo comes back byte for
/// byte. `frame` and `got` are reused buffers.
fn round_trip(
    s: &mut TcpStream,
    payloads: &mut Payloads,
    seq: u64,
    frame: &mut Vec<u8>,
    got: &mut Vec<u8>,
) -> io::Result<()> {
    frame.clear();
    put_frame(frame, 0x2, payloads.stamp(seq));
    s.write_all(frame)?;
    if read_frame(s, got)? != 0x2 || *got != payloads.pattern {
        return Err(io::Error::other("echo differs"));
    }
    Ok(())
}

/// The payload of message `seq`: a fixed pattern with the sequence number in front, so a
/// lost, repeated or reordered echo fails the byte comparison.
struct Payloads {
    pattern: Vec<u8>,
}

impl Payloads {
    fn new(size: usize, salt: u8) -> Payloads {
        Payloads {
            pattern: (0..size)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
                .collect(),
        }
    }
    fn stamp(&mut self, seq: u64) -> &[u8] {
        let n = self.pattern.len().min(8);
        self.pattern[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
        &self.pattern
    }
}

// ---------------------------------------------------------------- server sampling

/// A snapshot of the server process and the machine's kernel memory.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// utime + stime, in clock ticks (1/100 s here), including threads that ended.
    ticks: u64,
    /// Sum of the live threads' run time from schedstat, nanoseconds.
    run_ns: u64,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    kstack_kib: u64,
    ptables_kib: u64,
}

fn sample(pid: Option<u32>) -> Sample {
    let Some(pid) = pid else {
        return Sample::default();
    };
    let mut s = Sample::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the command name (which may hold spaces) start at ") ".
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] is field 3 (state); utime is field 14, stime field 15.
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            s.ticks = num(11) + num(12);
        }
    }
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(ss) = std::fs::read_to_string(t.path().join("schedstat")) {
                s.run_ns += ss
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        s.rss_kib = field(&status, "VmRSS:");
        s.hwm_kib = field(&status, "VmHWM:");
        s.threads = field(&status, "Threads:");
    }
    if let Ok(mem) = std::fs::read_to_string("/proc/meminfo") {
        s.kstack_kib = field(&mem, "KernelStack:");
        s.ptables_kib = field(&mem, "PageTables:");
    }
    s
}

/// The `key=value` pairs that describe the server between two samples.
fn server_report(a: &Sample, b: &Sample, pid: Option<u32>) -> Vec<String> {
    if pid.is_none() {
        return Vec::new();
    }
    vec![
        format!("srv_cpu_s={:.4}", (b.ticks - a.ticks) as f64 / 100.0),
        format!(
            "srv_run_s={:.6}",
            b.run_ns.saturating_sub(a.run_ns) as f64 / 1e9
        ),
        format!("rss_before_kib={}", a.rss_kib),
        format!("rss_kib={}", b.rss_kib),
        format!("hwm_kib={}", b.hwm_kib),
        format!("threads={}", b.threads),
        format!(
            "kmem_delta_kib={}",
            (b.kstack_kib + b.ptables_kib) as i64 - (a.kstack_kib + a.ptables_kib) as i64
        ),
    ]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency_report(prefix: &str, mut lat_us: Vec<f64>) -> Vec<String> {
    lat_us.sort_by(f64::total_cmp);
    vec![
        format!("{prefix}p50_us={:.1}", percentile(&lat_us, 0.5)),
        format!("{prefix}p99_us={:.1}", percentile(&lat_us, 0.99)),
    ]
}

/// Runs `f` on `n` threads at once, started together; collects their results.
fn on_threads<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> io::Result<T> + Send + Sync + 'static,
) -> io::Result<Vec<T>> {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || f(i))
        })
        .collect::<io::Result<_>>()?;
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| io::Error::other("a client thread panicked"))?
        })
        .collect()
}

/// A start line all threads wait at, so the measured window holds every connection open.
struct Gate {
    ready: Mutex<usize>,
    cv: Condvar,
    start: OnceLock<Instant>,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            ready: Mutex::new(0),
            cv: Condvar::new(),
            start: OnceLock::new(),
        })
    }
    /// Called by each of `n` threads once connected; the last one opens the gate and takes
    /// the first server sample. Bounded: gives up after `IO_TIMEOUT`.
    fn arrive(&self, n: usize, on_open: impl FnOnce()) -> io::Result<Instant> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        *ready += 1;
        if *ready == n {
            on_open();
            let _ = self.start.set(Instant::now());
            self.cv.notify_all();
        }
        let (_g, t) = self
            .cv
            .wait_timeout_while(ready, IO_TIMEOUT, |_| self.start.get().is_none())
            .unwrap_or_else(|p| p.into_inner());
        if t.timed_out() {
            return Err(io::Error::other("not every connection opened in time"));
        }
        self.start
            .get()
            .copied()
            .ok_or_else(|| io::Error::other("gate"))
    }
}

// ---------------------------------------------------------------- scenarios

/// Closed loop: each connection sends one message and waits for its echo, repeatedly.
fn echo(args: &Args, raw: bool) -> io::Result<Vec<String>> {
    let (addr, size, conns, pid, max) =
        (args.addr, args.size, args.conns, args.pid, args.max_count);
    let window = Duration::from_secs_f64(args.secs);
    let gate = Gate::new();
    let before = Arc::new(Mutex::new(Sample::default()));
    let b2 = before.clone();
    let results = on_threads(conns, move |i| {
        let mut s = if raw {
            connect(addr)?
        } else {
            ws_connect(addr)?
        };
        let mut payloads = Payloads::new(size, i as u8);
        let mut frame = Vec::with_capacity(size + 14);
        let mut got = Vec::with_capacity(size);
        let start = gate.arrive(conns, || {
            *b2.lock().unwrap_or_else(|p| p.into_inner()) = sample(pid)
        })?;
        let mut lat = Vec::new();
        let mut count = 0u64;
        while start.elapsed() < window && count < max {
            let t = Instant::now();
            let p = payloads.stamp(count);
            if raw && size > 256 * 1024 {
                // The raw echo answers while the message is still arriving: writing it all
                // before reading would fill both directions' socket buffers and deadlock.
                got.resize(size, 0);
                let mut w = s.try_clone()?;
                thread::scope(|sc| {
                    let writer = sc.spawn(move || w.write_all(p));
                    let read = s.read_exact(&mut got);
                    writer
                        .join()
                        .map_err(|_| io::Error::other("writer panicked"))??;
                    read
                })?;
            } else if raw {
                s.write_all(p)?;
                got.resize(size, 0);
                s.read_exact(&mut got)?;
            } else {
                frame.clear();
                put_frame(&mut frame, 0x2, p);
                s.write_all(&frame)?;
                if read_frame(&mut s, &mut got)? != 0x2 {
                    return Err(io::Error::other("the echo is not a binary message"));
                }
            }
            if got != payloads.pattern {
                return Err(io::Error::other(format!(
                    "echo {count} differs from what was sent"
                )));
            }
            if lat.len() < 100_000 {
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            count += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let end = sample(pid);
        if !raw {
            ws_close(s)?;
        }
        Ok((count, secs, lat, end))
    })?;
    let msgs: u64 = results.iter().map(|r| r.0).sum();
    let secs = results.iter().map(|r| r.1).fold(0.0, f64::max);
    let end = results
        .iter()
        .map(|r| r.3)
        .max_by_key(|s| s.run_ns)
        .unwrap_or_default();
    let lat: Vec<f64> = results.into_iter().flat_map(|r| r.2).collect();
    let before = *before.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = vec![
        format!("msgs={msgs}"),
        format!("secs={secs:.4}"),
        format!("msg_per_s={:.1}", msgs as f64 / secs),
        format!("mb_per_s={:.3}", (msgs as f64 * size as f64) / secs / 1e6),
    ];
    out.extend(latency_report("", lat));
    out.extend(server_report(&before, &end, pid));
    Ok(out)
}

/// Pipelined: each connection keeps `window` messages in flight.
fn pipeline(args: &Args) -> io::Result<Vec<String>> {
    let (addr, size, conns, pid, w, max) = (
        args.addr,
        args.size,
        args.conns,
        args.pid,
        args.window.max(1),
        args.max_count,
    );
    let window = Duration::from_secs_f64(args.secs);
    let gate = Gate::new();
    let before = Arc::new(Mutex::new(Sample::default()));
    let b2 = before.clone();
    let results = on_threads(conns, move |i| {
        let mut s = ws_connect(addr)?;
        let mut payloads = Payloads::new(size, i as u8);
        let mut expect = Payloads::new(size, i as u8);
        let mut frame = Vec::with_capacity(w * (size + 14));
        let mut got = Vec::with_capacity(size);
        let start = gate.arrive(conns, || {
            *b2.lock().unwrap_or_else(|p| p.into_inner()) = sample(pid)
        })?;
        let (mut sent, mut recv) = (0u64, 0u64);
        for _ in 0..w {
            put_frame(&mut frame, 0x2, payloads.stamp(sent));
            sent += 1;
        }
        s.write_all(&frame)?;
        while recv < sent {
            if read_frame(&mut s, &mut got)? != 0x2 || got != expect.stamp(recv) {
                return Err(io::Error::other(format!(
                    "echo {recv} differs from what was sent"
                )));
            }
            recv += 1;
            if start.elapsed() < window && sent < max {
                frame.clear();
                put_frame(&mut frame, 0x2, payloads.stamp(sent));
                s.write_all(&frame)?;
                sent += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let end = sample(pid);
        ws_close(s)?;
        Ok((recv, secs, end))
    })?;
    let msgs: u64 = results.iter().map(|r| r.0).sum();
    let secs = results.iter().map(|r| r.1).fold(0.0, f64::max);
    let end = results
        .iter()
        .map(|r| r.2)
        .max_by_key(|s| s.run_ns)
        .unwrap_or_default();
    let before = *before.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = vec![
        format!("msgs={msgs}"),
        format!("secs={secs:.4}"),
        format!("msg_per_s={:.1}", msgs as f64 / secs),
        format!("mb_per_s={:.3}", (msgs as f64 * size as f64) / secs / 1e6),
    ];
    out.extend(server_report(&before, &end, pid));
    Ok(out)
}

/// Handshake rate: each connection thread repeatedly connects, upgrades, and closes.
fn handshake(args: &Args) -> io::Result<Vec<String>> {
    let (addr, pid, max) = (args.addr, args.pid, args.max_count);
    let window = Duration::from_secs_f64(args.secs);
    let before = sample(pid);
    let start = Instant::now();
    let results = on_threads(args.conns, move |_| {
        let mut n = 0u64;
        let mut lat = Vec::new();
        while start.elapsed() < window && n < max {
            let t = Instant::now();
            ws_close(ws_connect(addr)?)?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            n += 1;
        }
        Ok((n, lat))
    })?;
    let secs = start.elapsed().as_secs_f64();
    let end = sample(pid);
    let n: u64 = results.iter().map(|r| r.0).sum();
    let mut out = vec![
        format!("handshakes={n}"),
        format!("secs={secs:.4}"),
        format!("hs_per_s={:.1}", n as f64 / secs),
    ];
    out.extend(latency_report(
        "",
        results.into_iter().flat_map(|r| r.1).collect(),
    ));
    out.extend(server_report(&before, &end, pid));
    Ok(out)
}

/// Idle connections: open `conns`, then measure a new client's echo latency (200 round
/// trips of 32 bytes) and the server's memory, then hold them `secs` and report the
/// server's CPU time over the hold.
fn idle(args: &Args) -> io::Result<Vec<String>> {
    let before = sample(args.pid);
    let opened_at = Instant::now();
    let mut held = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        held.push(ws_connect(args.addr)?);
        if opened_at.elapsed() > Duration::from_secs(120) {
            return Err(io::Error::other("opening the connections took over 120 s"));
        }
    }
    let open_secs = opened_at.elapsed().as_secs_f64();
    if args.first_message > 0 {
        // What a connection keeps after its largest message, not only after its handshake.
        let mut payloads = Payloads::new(args.first_message, 3);
        let (mut frame, mut got) = (Vec::new(), Vec::new());
        for (seq, s) in (0u64..).zip(held.iter_mut()) {
            round_trip(s, &mut payloads, seq, &mut frame, &mut got)
                .map_err(|e| io::Error::new(e.kind(), format!("first message: {e}")))?;
        }
    }
    // Let the server's threads reach their blocking read, and pass the second after
    // which a quiet connection gives back the stack pages and buffers its handshake and
    // messages used (a one-time cost, src/ws/connection.rs), before measuring memory and the CPU
    // of holding them.
    thread::sleep(Duration::from_millis(1500));
    let mut probe = ws_connect(args.addr)?;
    let mut payloads = Payloads::new(32, 7);
    let (mut frame, mut got, mut lat) = (Vec::new(), Vec::new(), Vec::new());
    for seq in 0..200u64 {
        let t = Instant::now();
        round_trip(&mut probe, &mut payloads, seq, &mut frame, &mut got)
            .map_err(|e| io::Error::new(e.kind(), format!("probe: {e}")))?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    ws_close(probe)?;
    thread::sleep(Duration::from_millis(100));
    let opened = sample(args.pid);
    thread::sleep(Duration::from_secs_f64(args.secs));
    let held_end = sample(args.pid);
    let mut out = vec![
        format!("conns={}", held.len()),
        format!("open_secs={open_secs:.3}"),
        format!("rss_start_kib={}", before.rss_kib),
        format!(
            "rss_per_conn_kib={:.2}",
            (opened.rss_kib as f64 - before.rss_kib as f64) / args.conns.max(1) as f64
        ),
        format!(
            "kmem_per_conn_kib={:.2}",
            ((opened.kstack_kib + opened.ptables_kib) as f64
                - (before.kstack_kib + before.ptables_kib) as f64)
                / args.conns.max(1) as f64
        ),
        // The same after the hold: tinyws gives back stack pages once a connection has
        // been quiet for a second (src/tune/stack.rs).
        format!(
            "rss_held_per_conn_kib={:.2}",
            (held_end.rss_kib as f64 - before.rss_kib as f64) / args.conns.max(1) as f64
        ),
        format!("hold_secs={:.2}", args.secs),
        format!(
            "hold_cpu_pct={:.4}",
            (held_end.run_ns.saturating_sub(opened.run_ns)) as f64 / 1e9 / args.secs * 100.0
        ),
    ];
    out.extend(latency_report("probe_", lat));
    out.extend(server_report(&before, &opened, args.pid));
    drop(held);
    Ok(out)
}

/// A thread that reads and drops whatever arrives on `s` with `receive` until `stop` (a
/// sender's own copies in a room: its socket must never fill).
fn drain(
    s: &TcpStream,
    stop: Arc<AtomicBool>,
    receive: impl Fn(&mut TcpStream, &mut Vec<u8>) -> io::Result<u8> + Send + 'static,
) -> io::Result<thread::JoinHandle<()>> {
    let mut d = s.try_clone()?;
    thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = d.set_read_timeout(Some(Duration::from_millis(2000)));
            while !stop.load(Ordering::Relaxed) {
                match receive(&mut d, &mut buf) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        })
}

/// Broadcast fan-out: `conns` receivers and one sender; the sender sends one message at a
/// time and waits until every receiver has it. The payload carries the send time, so each
/// receiver measures its own delivery latency; the fan-out time is the slowest one's.
/// One sender, `--conns` receivers. `raw`: plain TCP, every message exactly `--size`
/// bytes, for the raw fan-out server (the floor of a server's cost per delivery).
fn broadcast(args: &Args, raw: bool) -> io::Result<Vec<String>> {
    let (addr, size, n, pid) = (args.addr, args.size.max(16), args.conns, args.pid);
    let open = |addr| if raw { connect(addr) } else { ws_connect(addr) };
    // One message: (WebSocket opcode, or 0x2 for a raw one) into `got`.
    let receive = move |s: &mut TcpStream, got: &mut Vec<u8>| -> io::Result<u8> {
        if raw {
            got.resize(size, 0);
            s.read_exact(got)?;
            Ok(0x2)
        } else {
            read_frame(s, got)
        }
    };
    let base = Instant::now();
    // (sequence number being waited for, receivers that still have to get it)
    let state = Arc::new((Mutex::new((0u64, 0usize)), Condvar::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = open(addr)?;
        let (state, stop, failed) = (state.clone(), stop.clone(), failed.clone());
        receivers.push(thread::Builder::new().stack_size(128 * 1024).spawn(
            move || -> Vec<f64> {
                let mut lat = Vec::new();
                let mut got = Vec::new();
                let _ = s.set_read_timeout(Some(Duration::from_millis(2000)));
                while !stop.load(Ordering::Relaxed) {
                    match receive(&mut s, &mut got) {
                        Ok(0x2) if got.len() >= 16 => {
                            let seq = u64::from_le_bytes(got[..8].try_into().unwrap_or_default());
                            let sent =
                                u64::from_le_bytes(got[8..16].try_into().unwrap_or_default());
                            let now = base.elapsed().as_nanos() as u64;
                            lat.push(now.saturating_sub(sent) as f64 / 1e3);
                            let (m, cv) = &*state;
                            let mut st = m.lock().unwrap_or_else(|p| p.into_inner());
                            if st.0 == seq && st.1 > 0 {
                                st.1 -= 1;
                                if st.1 == 0 {
                                    cv.notify_all();
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                if !raw {
                    let _ = ws_close(s);
                }
                lat
            },
        )?);
    }
    // The sender also gets its own message back (the room includes the sender); a
    // separate thread drains it so its socket never fills.
    let sender = open(addr)?;
    let drainer = drain(&sender, stop.clone(), receive)?;
    thread::sleep(Duration::from_millis(200));
    let before = sample(pid);
    let window = Duration::from_secs_f64(args.secs);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut fanout = Vec::new();
    let mut payload = vec![0x5au8; size];
    let mut frame = Vec::new();
    let mut out_sock = &sender;
    while start.elapsed() < window && sent < args.max_count {
        let (m, cv) = &*state;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = (sent, n);
        let t = base.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&sent.to_le_bytes());
        payload[8..16].copy_from_slice(&t.to_le_bytes());
        if raw {
            out_sock.write_all(&payload)?;
        } else {
            frame.clear();
            put_frame(&mut frame, 0x2, &payload);
            out_sock.write_all(&frame)?;
        }
        let st = m.lock().unwrap_or_else(|p| p.into_inner());
        let (st, to) = cv
            .wait_timeout_while(st, IO_TIMEOUT, |st| st.1 > 0)
            .unwrap_or_else(|p| p.into_inner());
        if to.timed_out() {
            return Err(io::Error::other(format!(
                "message {sent}: {} of {n} receivers did not get it within {IO_TIMEOUT:?}",
                st.1
            )));
        }
        fanout.push((base.elapsed().as_nanos() as u64 - t) as f64 / 1e3);
        sent += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let end = sample(pid);
    stop.store(true, Ordering::Relaxed);
    let _ = sender.shutdown(std::net::Shutdown::Both);
    let _ = drainer.join();
    let lat: Vec<f64> = receivers
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect();
    if failed.load(Ordering::Relaxed) > 0 {
        return Err(io::Error::other("a receiver's connection failed"));
    }
    let deliveries = sent * (n as u64 + 1);
    let mut out = vec![
        format!("msgs={sent}"),
        format!("deliveries={deliveries}"),
        format!("secs={secs:.4}"),
    ];
    out.extend(latency_report("delivery_", lat));
    out.extend(latency_report("fanout_", fanout));
    out.extend(server_report(&before, &end, pid));
    Ok(out)
}

/// A flooding sender in the room: one member writes `size`-byte messages back to
/// back for the whole window, `conns` members read everything as fast as they can, one
/// member never reads (the server must cut it, 1008, pausing the others at most
/// `--stall-timeout`), and a chatting member sends a short text every 100 ms. Reported:
/// flood messages delivered per second to the readers, the longest gap between two
/// messages at any reader, the sender's rate, and the chat lines' latency to the readers.
fn flood(args: &Args) -> io::Result<Vec<String>> {
    let (addr, size, n, pid) = (args.addr, args.size.max(16), args.conns, args.pid);
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = ws_connect(addr)?;
        let stop = stop.clone();
        // (flood messages, longest gap in µs, chat latencies in µs)
        readers.push(thread::Builder::new().stack_size(128 * 1024).spawn(
            move || -> io::Result<(u64, f64, Vec<f64>)> {
                let (mut count, mut gap, mut chat) = (0u64, 0f64, Vec::new());
                let mut last: Option<Instant> = None;
                let mut got = Vec::new();
                let _ = s.set_read_timeout(Some(Duration::from_millis(2000)));
                while !stop.load(Ordering::Relaxed) {
                    match read_frame(&mut s, &mut got) {
                        Ok(op) if got.len() >= 16 => {
                            let now = Instant::now();
                            if op == 0x1 {
                                // A chat line: its send time in hex, bytes 8..24.
                                let sent = std::str::from_utf8(&got[8..got.len().min(24)])
                                    .ok()
                                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                                    .unwrap_or(0);
                                chat.push(
                                    (base.elapsed().as_nanos() as u64).saturating_sub(sent) as f64
                                        / 1e3,
                                );
                                continue;
                            }
                            count += 1;
                            if let Some(l) = last {
                                gap = gap.max((now - l).as_secs_f64() * 1e6);
                            }
                            last = Some(now);
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok((count, gap, chat))
            },
        )?);
    }
    // Never reads; the server closes it (its reads are left to the kernel's buffers).
    let stuck = ws_connect(addr)?;
    // The sender and the chatter get their own copies: drained, not measured.
    let sender = ws_connect(addr)?;
    let chatter = ws_connect(addr)?;
    let mut drainers = Vec::new();
    for s in [&sender, &chatter] {
        drainers.push(drain(s, stop.clone(), read_frame)?);
    }
    thread::sleep(Duration::from_millis(200));
    let before = sample(pid);
    let window = Duration::from_secs_f64(args.secs);
    let start = Instant::now();
    let chat_stop = stop.clone();
    let mut chat_sock = chatter.try_clone()?;
    let chat = thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut frame = Vec::new();
            let mut k = 0u64;
            while !chat_stop.load(Ordering::Relaxed) && start.elapsed() < window {
                let mut line = [b' '; 24];
                line[..8].copy_from_slice(b"chat....");
                let t = base.elapsed().as_nanos() as u64;
                // A text message must be UTF-8: the send time goes in as 16 hex digits.
                let hex = format!("{t:016x}");
                line[8..24].copy_from_slice(hex.as_bytes());
                frame.clear();
                put_frame(&mut frame, 0x1, &line);
                if chat_sock.write_all(&frame).is_err() {
                    break;
                }
                k += 1;
                thread::sleep(Duration::from_millis(100));
            }
            k
        })?;
    let mut sent = 0u64;
    let mut payload = vec![0x5au8; size];
    let mut frame = Vec::new();
    let mut out_sock = &sender;
    while start.elapsed() < window && sent < args.max_count {
        payload[..8].copy_from_slice(&sent.to_le_bytes());
        let t = base.elapsed().as_nanos() as u64;
        payload[8..16].copy_from_slice(&t.to_le_bytes());
        frame.clear();
        put_frame(&mut frame, 0x2, &payload);
        out_sock.write_all(&frame)?;
        sent += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let end = sample(pid);
    stop.store(true, Ordering::Relaxed);
    let chats = chat.join().unwrap_or(0);
    let _ = sender.shutdown(std::net::Shutdown::Both);
    let _ = chatter.shutdown(std::net::Shutdown::Both);
    for d in drainers {
        let _ = d.join();
    }
    drop(stuck);
    let (mut delivered, mut gap, mut chat_lat) = (0u64, 0f64, Vec::new());
    for h in readers {
        let (c, g, l) = h
            .join()
            .map_err(|_| io::Error::other("a reader thread panicked"))??;
        delivered += c;
        gap = gap.max(g);
        chat_lat.extend(l);
    }
    chat_lat.sort_by(f64::total_cmp);
    let mut out = vec![
        format!("msgs={sent}"),
        format!("secs={secs:.4}"),
        format!("sender_msg_per_s={:.1}", sent as f64 / secs),
        format!("deliveries_per_s={:.1}", delivered as f64 / secs),
        format!("longest_gap_ms={:.2}", gap / 1e3),
        format!("chats={chats}"),
        format!("chat_heard={}", chat_lat.len()),
        format!("chat_p50_ms={:.2}", percentile(&chat_lat, 0.5) / 1e3),
        format!(
            "chat_max_ms={:.2}",
            chat_lat.last().copied().unwrap_or(f64::NAN) / 1e3
        ),
    ];
    out.extend(server_report(&before, &end, pid));
    Ok(out)
}
