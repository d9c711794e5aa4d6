//! Test helpers: a real server on a real socket (port 0), raw clients with timeouts, and
//! a byte-level frame codec for what well-behaved clients never send.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tinyws::{Config, Echo, Handler, Running, Server};

pub mod process;
#[cfg(feature = "tls")]
pub mod tls;

/// Every socket a test opens gives up after this long, so no test can hang.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The RFC 6455 §1.3 sample key and the accept value it must produce.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A server started in-process on 127.0.0.1 and an OS-chosen port, stopped on drop.
pub struct TestServer {
    running: Option<Running>,
    pub addr: SocketAddr,
}

impl TestServer {
    pub fn connections(&self) -> usize {
        self.running
            .as_ref()
            .map_or(0, |r| r.handle().connections())
    }

    /// Waits (bounded) until the server's connection count is `n`.
    pub fn wait_connections(&self, n: usize) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        while self.connections() != n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.connections()
    }

    pub fn handle(&self) -> &tinyws::ServerHandle {
        self.running.as_ref().unwrap().handle()
    }

    /// Stops the server: how it ended.
    pub fn stop(mut self) -> tinyws::Stopped {
        self.running.take().expect("running").stop()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

pub fn config() -> Config {
    Config::default().bind("127.0.0.1".parse().unwrap()).port(0)
}

pub fn start(config: Config) -> TestServer {
    start_with(config, Echo)
}

pub fn start_with(config: Config, handler: impl Handler) -> TestServer {
    let _ = env_logger::builder().is_test(true).try_init();
    let running = Server::bind(config, handler)
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = running.local_addr();
    TestServer {
        running: Some(running),
        addr,
    }
}

/// A plain TCP connection with read and write timeouts.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Reads until the server closes the connection (or the timeout fails the test).
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match retried(|| s.read(&mut buf)) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("reading until close failed after {} bytes: {e}", out.len()),
        }
    }
}

/// Sends `request` and returns the whole answer, as the server closes after it.
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = tcp(addr);
    s.write_all(request.as_bytes()).unwrap();
    String::from_utf8(read_to_end(&mut s)).expect("utf-8 answer")
}

/// A well-formed upgrade request for `path` with the RFC sample key and extra headers.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Runs a socket call again while a signal interrupts it, as `read_exact` does: a
/// socket call with a timeout returns EINTR after a signal or when the process is stopped
/// and continued (signal(7)), which a loaded CI machine does. (The server's own is
/// client/transport.rs `retry`.)
pub fn retried<T>(mut call: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

/// Reads one HTTP response head (through the blank line), byte by byte so nothing after
/// it is consumed.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = retried(|| s.read(&mut b)).expect("reading the response head");
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A raw client past the opening handshake.
pub fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut s = tcp(addr);
    s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

/// A tungstenite client.
pub type Ws = tungstenite::WebSocket<Patient>;

/// A socket whose reads and writes are [`retried`]: tungstenite hands an EINTR back as
/// an error, which a test would take for the server's fault.
pub struct Patient(pub TcpStream);

impl Read for Patient {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        retried(|| self.0.read(buf))
    }
}

impl Write for Patient {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        retried(|| self.0.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        retried(|| self.0.flush())
    }
}

impl std::ops::Deref for Patient {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl std::ops::DerefMut for Patient {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.0
    }
}

pub fn ws(addr: SocketAddr, path: &str) -> Ws {
    let (ws, resp) =
        tungstenite::client(format!("ws://{addr}{path}"), Patient(tcp(addr))).expect("handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// A client frame: FIN bit, opcode, masked with `mask` as RFC 6455 §5.3 requires.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(
        (fin as u8 * 0x80) | opcode,
        payload,
        Some([0x37, 0xfa, 0x21, 0x3d]),
    )
}

/// Any first byte (so reserved bits can be set), optionally unmasked.
pub fn frame_with(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![first];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65536 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            f.extend_from_slice(&key);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// One server frame: (first byte, payload). Server frames must be unmasked (§5.1).
pub fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames must not be masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            s.read_exact(&mut n).unwrap();
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            s.read_exact(&mut n).unwrap();
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("frame payload");
    (h[0], payload)
}

/// Reads the server's close frame and returns its code; then the server must close TCP.
pub fn expect_close(s: &mut TcpStream) -> u16 {
    let (first, payload) = read_frame(s);
    assert_eq!(
        first, 0x88,
        "expected a close frame, got {first:#x} {payload:?}"
    );
    assert!(payload.len() >= 2, "close frame without a code");
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    let rest = read_to_end(s);
    assert!(rest.is_empty(), "bytes after the close frame: {rest:?}");
    code
}

/// A close frame payload: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made with `openssl` in `dir`:
/// (certificate, private key). Valid for a day; clients verify it by trusting the
/// certificate itself as their CA.
pub fn test_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl")
        .success();
    assert!(ok, "openssl could not make a test certificate");
    (cert, key)
}

/// Whether a tool the test needs is there. Without it the test is skipped with a loud
/// message, except under CI (`CI` set), where `.ci/run` must have installed it. A skip
/// is also appended to the file `TINYWS_SKIPPED` names, if set: the harness captures a
/// passing test's messages, and `.ci/run` lists (and fails on) what that file holds.
pub fn required(what: &str, present: bool) -> bool {
    if !present {
        assert!(std::env::var_os("CI").is_none(), "CI must have {what}");
        eprintln!("\n*** SKIPPED: {what} is not installed ***\n");
        if let Some(path) = std::env::var_os("TINYWS_SKIPPED") {
            let line = format!(
                "{}: {what} is not installed\n",
                std::thread::current().name().unwrap_or("a test")
            );
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
            appended.expect("record the skip in TINYWS_SKIPPED");
        }
    }
    present
}

/// Whether `cmd args` runs and succeeds (to probe for a tool).
pub fn runs(cmd: &str, args: &[&str]) -> bool {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Echoes over `url` (wss://) with Python `websockets`, which verifies the server's
/// certificate against `ca`; sends `Origin: origin`. Skips (or fails under CI) without
/// Python `websockets`.
pub fn python_wss_echo(url: &str, ca: &std::path::Path, origin: &str) {
    let have = runs("python3", &["-c", "import websockets.asyncio.client"]);
    if !required("python3 with `websockets`", have) {
        return;
    }
    let out = output_within(
        std::process::Command::new("python3")
            .args(["tests/wss_client.py", url])
            .arg(ca)
            .arg(origin),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "wss echo to {url} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "wss ok\n");
}

/// Runs a Python `websockets` client script of tests/ against `url` (at most 20 s) and
/// returns its stdout, after asserting that it succeeded; `None` when Python or
/// `websockets` is missing and the skip is recorded (`required`: a failure under CI).
#[allow(dead_code)] // not every test binary runs a Python client
pub fn python_client(script: &str, url: &str) -> Option<String> {
    let have = runs("python3", &["-c", "import websockets.asyncio.client"]);
    if !required("python3 with `websockets` (pip install websockets)", have) {
        return None;
    }
    let out = output_within(
        std::process::Command::new("python3").arg(script).arg(url),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client {script} failed:\n{stdout}\n{stderr}"
    );
    Some(stdout)
}

/// Runs `cmd` to completion like `Command::output`, but kills it after `limit` (then its
/// status is not success): GNU `timeout` without needing it (macOS and Windows lack it).
pub fn output_within(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().expect("wait for the killed command");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A slowloris client: a thread that writes `byte` to the socket every 50 ms, for up to
/// 10 s, until a write fails because the server cut the connection. Each byte comes well
/// within any per-read timeout, so only a total deadline cuts it off, and long before the
/// drip runs out: [`Drip::still_dripping`] tells the two apart.
pub struct Drip {
    dripping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drip {
    pub fn start(s: &TcpStream, byte: u8) -> Drip {
        let dripping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut s = s.try_clone().expect("clone the socket");
        let flag = dripping.clone();
        let thread = std::thread::spawn(move || {
            for _ in 0..200 {
                if s.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            flag.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        Drip {
            dripping,
            thread: Some(thread),
        }
    }

    /// Whether the drip was still going (it has not run out).
    pub fn still_dripping(&self) -> bool {
        self.dripping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Reads everything the server sends until it closes, with a read timeout longer
    /// than the whole drip.
    pub fn read_until_cut(s: &mut TcpStream) -> Vec<u8> {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        read_to_end(s)
    }
}

impl Drop for Drip {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every `.rs` file under `dir`, its folders included (for the tests that read the
/// source: tests/layout.rs, tests/portable.rs).
pub fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
