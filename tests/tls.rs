//! `wss://` and HTTPS served by tinyws itself (cargo feature `tls`), with a certificate
//! made at test time and clients that verify it: Python `websockets` for the WebSocket,
//! `curl` for the page. Run with `cargo test --all-features`.
#![cfg(feature = "tls")]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::tls_client;
use common::*;
use tinyws::Config;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// A fresh directory with a test certificate; removed on drop.
struct Certs {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn new(name: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("tinyws-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = test_certificate(&dir);
        Certs { dir, cert, key }
    }

    fn config(&self) -> Config {
        config()
            .tls_cert(self.cert.clone())
            .tls_key(self.key.clone())
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn wss_echo_with_a_client_that_verifies_the_certificate() {
    let certs = Certs::new("echo");
    let server = start(certs.config());
    let port = server.addr.port();
    python_wss_echo(
        &format!("wss://localhost:{port}/echo"),
        &certs.cert,
        &format!("https://localhost:{port}"),
    );
}

#[test]
fn the_page_is_served_over_https() {
    if !required("curl", runs("curl", &["--version"])) {
        return;
    }
    let certs = Certs::new("page");
    let server = start(certs.config());
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "--cacert"])
        .arg(&certs.cert)
        .arg(format!("https://localhost:{}/", server.addr.port()))
        .output()
        .expect("run curl");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("<!doctype html>"), "{answer}");
}

#[cfg(feature = "static")]
/// `--static` over TLS: the file goes through the TLS session in chunks, whole, and the
/// connection ends with close_notify (RFC 8446 §6.1): Python's `ssl` with
/// `suppress_ragged_eofs=False` reads to the end and fails on a bare TCP FIN.
#[test]
fn static_files_are_served_over_https_and_end_with_close_notify() {
    if !required("python3", runs("python3", &["--version"])) {
        return;
    }
    let certs = Certs::new("static");
    let site = certs.dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    let content: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
    std::fs::write(site.join("big.bin"), &content).unwrap();
    let server = start(certs.config().static_dir(&site));
    const CLIENT: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("localhost", port), timeout=10),
                    server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data.split(b"\r\n\r\n", 1)[1])
"#;
    let out = output_within(
        Command::new("python3")
            .args(["-c", CLIENT])
            .arg(server.addr.port().to_string())
            .arg(&certs.cert),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "the TLS client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == content, "{} bytes differ", out.stdout.len());
}

#[test]
fn plain_http_on_the_tls_port_gets_a_plain_400() {
    let certs = Certs::new("plain");
    let server = start(certs.config());
    let answer = http(server.addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("use https:// or wss://"), "{answer}");
    assert_eq!(server.wait_connections(0), 0);
}

#[test]
fn a_tls_handshake_that_never_completes_is_cut_at_the_handshake_timeout() {
    let certs = Certs::new("stall");
    let server = start(certs.config().handshake_timeout(Duration::from_millis(400)));
    let mut s = tcp(server.addr);
    let started = Instant::now();
    // The start of a TLS record header (handshake, TLS 1.0 record version), then nothing.
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    assert!(
        read_to_end(&mut s).is_empty(),
        "nothing is sent to a half handshake"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(server.wait_connections(0), 0, "its thread is freed");
    // And a client that sends nothing at all.
    let mut idle = tcp(server.addr);
    assert!(read_to_end(&mut idle).is_empty());
    assert_eq!(server.wait_connections(0), 0);
}

#[test]
fn a_tls_record_dripped_byte_by_byte_is_cut_at_the_handshake_deadline() {
    // Each byte arrives well within any per-read timeout; only a total deadline that
    // reaches into the TLS reads stops this slowloris.
    let certs = Certs::new("drip");
    let server = start(certs.config().handshake_timeout(Duration::from_millis(500)));
    let mut s = tcp(server.addr);
    s.set_nodelay(true).unwrap();
    // A handshake record header announcing 16 KiB, then its body one byte every 50 ms
    // for up to 10 s: the cut must come while the client is still dripping (a per-read
    // timeout would only cut it after the drip ran out).
    s.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00]).unwrap();
    let drip = Drip::start(&s, 0x01);
    assert!(Drip::read_until_cut(&mut s).is_empty());
    assert!(
        drip.still_dripping(),
        "cut off only after the client stopped: no total deadline"
    );
    assert_eq!(server.wait_connections(0), 0);
    drop(s);
    drop(drip);
}

#[test]
fn bad_certificate_files_give_a_one_line_startup_error() {
    let certs = Certs::new("bad");
    let other = Certs::new("other");
    let garbage = certs.dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let cert = certs.cert.to_str().unwrap();
    let key = certs.key.to_str().unwrap();
    let missing = "/nonexistent/tinyws.pem";
    let cases = [
        ([cert, missing], "cannot read it"),
        ([garbage.to_str().unwrap(), key], "no CERTIFICATE"),
        ([cert, garbage.to_str().unwrap()], "no PEM block"),
        ([cert, other.key.to_str().unwrap()], "do not fit together"),
    ];
    for ([c, k], says) in cases {
        let out = Command::new(BIN)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-cert",
                c,
                "--tls-key",
                k,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{c} {k}: {err}");
        assert!(
            err.starts_with("tinyws: ") && err.contains(says),
            "{c} {k}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let out = Command::new(BIN)
        .args(["--tls-cert", cert])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("tls_cert (--tls-cert) needs tls_key (--tls-key)")
    );
}

/// Whether `s` is still open: nothing to read within a short wait, no end, no reset.
fn still_open(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(n) => {
            eprintln!("{n} bytes, or the end (0): not waiting for more");
            false
        }
    }
}

/// A client in the middle of its TLS handshake has sent bytes, though no plaintext yet:
/// when the slots are full, admission pushes out a socket that really sent nothing, not
/// it (the oldest). It used to count as silent, so slow phones on wss:// were pushed
/// out first under a hoarding attack.
#[test]
fn a_tls_handshake_under_way_is_not_pushed_out_as_silent() {
    let certs = Certs::new("hoard");
    let server = start(
        certs
            .config()
            .max_connections(4)
            .handshake_timeout(Duration::from_secs(3)),
    );
    // The oldest: the start of a TLS record (the server reads it and waits for more).
    let mut tls = tcp(server.addr);
    tls.write_all(&[0x16, 0x03, 0x01]).unwrap();
    assert_eq!(server.wait_connections(1), 1);
    // Then sockets that send nothing, until every slot is taken.
    let mut silent: Vec<_> = (0..3).map(|_| tcp(server.addr)).collect();
    assert_eq!(server.wait_connections(4), 4);
    // A newcomer: the slots are full, so the oldest silent one makes room for it.
    let _newcomer = tcp(server.addr);
    let started = Instant::now();
    assert!(
        read_to_end(&mut silent[0]).is_empty(),
        "pushed out: no answer"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the silent socket was not pushed out, it timed out"
    );
    assert!(still_open(&mut tls), "the TLS handshake was pushed out");
}

/// While slots are free, connections that have waited less than a second for their
/// request head are not pushed out, even past the waiting half of the slots: a reconnect
/// storm of slow phones (a TLS handshake takes a few hundred milliseconds on a poor
/// link) all get in. They used to push each other out as soon as half the slots waited.
#[test]
fn a_burst_of_new_connections_is_not_pushed_out_while_slots_are_free() {
    let certs = Certs::new("burst");
    let server = start(certs.config().max_connections(8));
    let started = Instant::now();
    let mut burst: Vec<_> = (0..6).map(|_| tcp(server.addr)).collect();
    assert_eq!(server.wait_connections(6), 6);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "too slow a machine for this test: the grace of 1 s ran out"
    );
    for (k, s) in burst.iter_mut().enumerate() {
        assert!(still_open(s), "connection {k} was pushed out");
    }
}

/// The inspector over wss:// and https://, on the same port: a connection with an inspector
/// token is recorded, and its page reads the record back over HTTPS.
#[test]
fn the_inspector_works_over_wss() {
    use std::io::Read;
    let certs = Certs::new("inspect");
    let server = start(certs.config());
    let token = "0123456789abcdef0123456789abcdef";
    let mut ws = tls_client(server.addr);
    ws.write_all(upgrade_request(&format!("/?inspect_token={token}"), "").as_bytes())
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(ws.read(&mut byte).unwrap(), 1, "the server closed");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    ws.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    let mut echo = [0u8; 7];
    ws.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x05Hello");
    let mut poll = tls_client(server.addr);
    write!(
        poll,
        "GET /.inspect?inspect_token={token} HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = poll.read_to_end(&mut answer); // the server ends with close_notify
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("opcode=0x1 (text) MASK=1 length=5 mask key=37 fa 21 3d"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("base64(SHA-1)  {RFC_ACCEPT}")),
        "{answer}"
    );
}

/// A wss:// client's TLS and WebSocket handshakes (rustls): how long until
/// `101 Switching Protocols`.
fn wss_handshake(addr: std::net::SocketAddr) -> Duration {
    let start = Instant::now();
    let mut tls = tls_client(addr);
    tls.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        use std::io::Read;
        assert_eq!(tls.read(&mut byte).unwrap(), 1, "the server closed");
        head.push(byte[0]);
    }
    let took = start.elapsed();
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    took
}

/// Hoarding the handshake slots, against wss://: while hundreds of sockets that never send are
/// held open and reopened, a fresh wss:// client's TLS handshake and upgrade still
/// complete (target 1 s; a generous 2 s asserted), its handshake counting as sending.
#[test]
fn a_wss_handshake_completes_while_silent_sockets_hoard() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const HOARDERS: usize = 400;
    let certs = Certs::new("hoarders");
    let server = start(certs.config().max_connections(256));
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let holders: Vec<_> = (0..4)
        .map(|_| {
            let (stop, opened) = (stop.clone(), opened.clone());
            std::thread::spawn(move || {
                use std::io::Read;
                let mut held: Vec<std::net::TcpStream> = Vec::new();
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Acquire) {
                    while held.len() < HOARDERS / 4 {
                        let s = std::net::TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
                        s.set_nonblocking(true).unwrap();
                        held.push(s);
                        opened.fetch_add(1, Ordering::Relaxed);
                    }
                    held.retain_mut(|s| match s.read(&mut buf) {
                        Ok(_) => false,
                        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                    });
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let deadline = Instant::now() + 4 * TIMEOUT;
    while opened.load(Ordering::Relaxed) < 2 * HOARDERS {
        assert!(Instant::now() < deadline, "the hoarders could not connect");
        std::thread::sleep(Duration::from_millis(10));
    }
    let times: Vec<Duration> = (0..5).map(|_| wss_handshake(addr)).collect();
    stop.store(true, Ordering::Release);
    for h in holders {
        h.join().unwrap();
    }
    let worst = times.iter().max().copied().unwrap();
    eprintln!(
        "{} hoarding connections opened; wss:// handshakes took {times:?}",
        opened.load(Ordering::Relaxed)
    );
    assert!(
        worst < Duration::from_secs(2),
        "a wss:// handshake took {worst:?}"
    );
}
