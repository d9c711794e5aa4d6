//! What a hostile but realistic user found, each over a real socket or with a
//! real signal: the trace driven from the network, a paused stdout holding up the server,
//! broadcast frames missing from the trace, `Upgrade` lists answered with silence, TLS
//! without close_notify, HTTP corners (HEAD, 426, absolute-form, `--path` with a query),
//! and SIGHUP.

// Some tests need Unix signals or Linux /proc and are gated (to Unix or to Linux);
// elsewhere, macOS included, their helpers are unused.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::process::Proc;
#[cfg(feature = "teach")]
use common::process::Stdout;
use common::*;
use tinyws::{Client, Message};

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// The body of an HTTP answer (after the blank line).
fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The head of an HTTP answer (through the blank line).
fn head_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or(answer, |(h, _)| h)
}

// ---- 1. the trace escapes what the network sends ----

/// RFC-wise these heads are malformed or odd; what matters is that the bytes the trace
/// prints cannot act on the terminal showing it: ESC (clear screen, retitle, OSC 52), BEL,
/// a bare CR (overwrite a line with a fake "ok"), NUL, DEL, and the C1 control U+009B (a
/// one-character CSI), which httparse even accepts in a header value (obs-text).
#[cfg(feature = "teach")]
#[test]
fn the_trace_escapes_control_bytes_from_the_network() {
    let mut p = Proc::start_with(BIN, &["--trace"], Stdout::Capture);

    // Refused (httparse rejects the controls), but printed first, as received.
    let mut s = tcp(p.addr);
    s.write_all(
        b"GET /x HTTP/1.1\r\nHost: localhost\r\nX: \x1b[1A\x1b[2K\x1b[32mok\x1b]0;owned\x07 a\rb \xc2\x9b c\x7f\r\nY: \x00\r\n\r\n",
    )
    .unwrap();
    let answer = read_to_end(&mut s);
    assert!(answer.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    p.stdout_until(b"#1 !! refused");

    // Accepted: a C1 control in the Upgrade list reaches the checks' lines (in Host it
    // is a 400 now: not a valid host); then a frame and a close reason with ESC.
    let mut s = tcp(p.addr);
    s.write_all(
        upgrade_request("/", "")
            .replace("Upgrade: websocket", "Upgrade: websocket, a\u{9b}31mb")
            .as_bytes(),
    )
    .unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    s.write_all(&frame(true, 0x1, b"hi\x1b[2J")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"hi\x1b[2J".to_vec()));
    s.write_all(&frame(true, 0x8, &close_payload(1000, "\x1b]0;x\x07")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);

    p.stdout_until(b"#2 -- closed");
    let mut s = tcp(p.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\xc2\x9b31mb\r\n\r\n")
        .unwrap();
    assert!(read_to_end(&mut s).starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    let out = p.stdout_until(b"#3 !! refused").to_vec();
    let text = String::from_utf8(out.clone()).expect("the trace is UTF-8");
    for needle in [
        r"#1 <-   X: \u{1b}[1A\u{1b}[2K\u{1b}[32mok\u{1b}]0;owned\u{7} a\rb \u{9b} c\u{7f}␍␊",
        r"#1 <-   Y: \0␍␊",
        r#"#2 ok  Upgrade: websocket, a\u{9b}31mb has the token "websocket""#,
        r"#3 <-   Host: a\u{9b}31mb␍␊",
        r#"#2 <-   text     "hi\u{1b}[2J""#,
        r#"#2 <-   close    code 1000 (normal closure) reason "\u{1b}]0;x\u{7}""#,
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    for bad in [0x1b, 0x07, 0x00, 0x7f, b'\r'] {
        assert!(
            !out.contains(&bad),
            "raw byte {bad:#04x} on stdout:\n{text}"
        );
    }
    assert!(!text.contains('\u{9b}'), "raw U+009B on stdout:\n{text}");
}

// ---- 2. a stdout that stops draining blocks neither the connections nor shutdown ----

/// Ctrl-S on the projector's terminal: stdout is a pipe nobody reads. Echo must go on
/// (the trace leaves blocks out and says so in the log) and SIGTERM must end the process
/// within --shutdown-timeout plus a small margin.
#[cfg(feature = "teach")]
#[cfg(target_os = "linux")]
#[test]
fn a_stdout_that_stops_draining_holds_up_neither_echo_nor_shutdown() {
    let mut p = Proc::start_with(
        BIN,
        &["--trace", "--shutdown-timeout", "1s"],
        Stdout::Unread,
    );
    let mut s = upgraded(p.addr);
    // About 600 bytes of trace per echo: 3000 fill the 64 KiB pipe and the trace's 1 MiB
    // queue, with room to spare.
    let payload = [b'x'; 40];
    for _ in 0..30 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            batch.extend_from_slice(&frame(true, 0x1, &payload));
        }
        s.write_all(&batch).unwrap();
        for _ in 0..100 {
            assert_eq!(read_frame(&mut s), (0x81, payload.to_vec()));
        }
    }
    p.wait_log("stdout is not being read");

    let others: Vec<_> = (0..3).map(|_| upgraded(p.addr)).collect();
    let started = Instant::now();
    p.signal("-TERM");
    for mut c in others.into_iter().chain([s]) {
        let (first, payload) = read_frame(&mut c);
        assert_eq!((first, &payload[..2]), (0x88, &1001u16.to_be_bytes()[..]));
    }
    // Nobody answers the close: the server waits its 1s, cuts, and exits.
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?} with --shutdown-timeout 1s"
    );
}

// ---- 3. broadcast deliveries are traced ----

#[cfg(feature = "teach")]
#[test]
fn a_broadcast_delivery_is_in_the_receivers_trace() {
    let mut p = Proc::start_with(BIN, &["--trace", "--broadcast"], Stdout::Capture);
    let mut a = upgraded(p.addr);
    p.wait_log("1 in the room");
    let mut b = upgraded(p.addr);
    p.wait_log("2 in the room");
    a.write_all(&frame(true, 0x1, b"hello-room")).unwrap();
    assert_eq!(read_frame(&mut b), (0x81, b"hello-room".to_vec()));
    assert_eq!(read_frame(&mut a), (0x81, b"hello-room".to_vec()));
    let out = p.stdout_until(b"#2 ->   text     \"hello-room\"");
    let text = String::from_utf8_lossy(out);
    assert!(
        text.contains("#1 ->   text     \"hello-room\""),
        "the sender's own copy is traced too:\n{text}"
    );
    assert!(
        text.contains("#2 -> frame: FIN=1 RSV=000 opcode=0x1 (text) MASK=0 length=10"),
        "{text}"
    );
}

// ---- 4. Upgrade (and Connection) lists: 101, never silence ----

/// RFC 9110 §7.8: Upgrade is a list; §5.3: a list may come on several lines. Each of these
/// is a valid upgrade, which tungstenite alone refused (then closed without a word).
#[test]
fn every_upgrade_list_variant_gets_101() {
    let server = start(config());
    let plain = upgrade_request("/", "");
    let variants = [
        plain.replace("Upgrade: websocket", "Upgrade: h2c, websocket"),
        plain.replace("Upgrade: websocket", "Upgrade: websocket,"),
        plain.replace("Upgrade: websocket", "Upgrade: websocket, h2c"),
        plain.replace("Upgrade: websocket", "Upgrade: h2c\r\nUpgrade: websocket"),
        plain.replace("Upgrade: websocket", "Upgrade: websocket\r\nUpgrade: h2c"),
        plain.replace("Upgrade: websocket", "Upgrade: WebSocket"),
        plain.replace(
            "Connection: Upgrade",
            "Connection: keep-alive\r\nConnection: Upgrade",
        ),
    ];
    for req in variants {
        let mut s = tcp(server.addr);
        // A frame right behind the head: it must survive the rewritten head.
        let mut bytes = req.clone().into_bytes();
        bytes.extend_from_slice(&frame(true, 0x1, b"early"));
        s.write_all(&bytes).unwrap();
        let head = read_head(&mut s);
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{req:?} got {head:?}"
        );
        assert!(head.contains(&format!("\r\nsec-websocket-accept: {RFC_ACCEPT}\r\n")));
        assert_eq!(read_frame(&mut s), (0x81, b"early".to_vec()), "{req:?}");
        s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
            .unwrap();
        assert_eq!(expect_close(&mut s), 1000);
    }
    // Without the token anywhere it is a plain GET: 426, in words.
    let a = http(
        server.addr,
        &upgrade_request("/chat", "").replace("Upgrade: websocket", "Upgrade: h2c, websocket/13"),
    );
    assert!(a.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{a}");
    assert!(!body_of(&a).is_empty(), "{a}");
}

// ---- 6. HTTP corners ----

/// RFC 9110 §9.1 (GET and HEAD must be supported) and §9.3.2 (a HEAD answer has the
/// GET's header fields and no content).
#[cfg(feature = "teach")]
#[test]
fn head_gets_the_headers_of_the_get_without_a_body() {
    let server = start(config().path("/echo"));
    let get = http(server.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = http(server.addr, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // The page shows the request that fetched it, so its length differs by the method's.
    let length = |a: &str| -> usize {
        let line = a
            .lines()
            .find(|l| l.starts_with("Content-Length: "))
            .expect("a length");
        line["Content-Length: ".len()..].parse().unwrap()
    };
    assert_eq!(
        length(&head),
        length(&get) + 1,
        "the length of the page for this request (RFC 9110 §8.6)"
    );
    assert_eq!(
        format!("{}\r\n\r\n", head_of(&get)).replace(&length(&get).to_string(), "N"),
        head.replace(&length(&head).to_string(), "N"),
        "same header fields, no body"
    );
    assert!(head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"));
    assert!(!body_of(&get).is_empty());

    // Elsewhere: the GET's 426 (or 404) without the sentence; upgrade headers ignored.
    for (target, status) in [
        ("/echo", "HTTP/1.1 426 Upgrade Required\r\n"),
        ("/other", "HTTP/1.1 404 Not Found\r\n"),
    ] {
        let get = http(
            server.addr,
            &upgrade_request(target, "").replace("Upgrade: websocket\r\n", ""),
        );
        let head = http(
            server.addr,
            &upgrade_request(target, "").replacen("GET", "HEAD", 1),
        );
        assert!(head.starts_with(status), "{head}");
        assert_eq!(format!("{}\r\n\r\n", head_of(&get)), head);
    }
}

/// RFC 9110 §15.5.22: "The server MUST send an Upgrade header field in a 426 response".
#[test]
fn the_426_for_another_websocket_version_names_the_upgrade() {
    let server = start(config());
    let a = http(
        server.addr,
        &upgrade_request("/", "").replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
    );
    assert!(a.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{a}");
    let head = format!("{}\r\n", head_of(&a));
    assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{a}");
    assert!(head.contains("\r\nConnection: Upgrade, close\r\n"), "{a}");
    assert!(head.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{a}");
    assert_eq!(
        body_of(&a),
        "This server speaks WebSocket version 13 only; the request asked for version \"8\".\n"
    );
}

/// RFC 9112 §3.2.2: a server MUST accept the absolute form; its authority is the host
/// (the Host header is ignored), and the path is taken from it.
#[test]
fn an_absolute_form_target_is_accepted_and_its_path_used() {
    let server = start_with(config().path("/echo"), |c: &Client, _: Message| {
        Some(Message::text(c.path().to_string()))
    });
    let port = server.addr.port();
    let mut s = tcp(server.addr);
    let req = upgrade_request(&format!("http://localhost:{port}/echo?room=1"), "")
        .replace("Host: localhost", "Host: proxy.invalid")
        + "";
    // Same-origin with the target's authority, not with the Host header.
    let req = req.replacen(
        "\r\n\r\n",
        &format!("\r\nOrigin: http://localhost:{port}\r\n\r\n"),
        1,
    );
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    s.write_all(&frame(true, 0x1, b"where?")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"/echo".to_vec()));

    let a = http(
        server.addr,
        &upgrade_request(&format!("HTTP://localhost:{port}/elsewhere"), ""),
    );
    assert!(a.starts_with("HTTP/1.1 404 Not Found\r\n"), "{a}");
    assert!(
        body_of(&a).contains("Nothing is served at /elsewhere"),
        "{a}"
    );
}

/// A `--path` with a query can never match (only the path is compared): refused at
/// startup, with a sentence that says what to use instead.
#[test]
fn a_path_with_a_query_is_refused_at_startup() {
    let err = match tinyws::Server::bind(config().path("/echo?room=1"), tinyws::Echo) {
        Ok(_) => panic!("path /echo?room=1 was accepted"),
        Err(e) => e.to_string(),
    };
    // The library names the field; the binary, below, its flag.
    assert!(
        err.starts_with("`path` /echo?room=1 has a query") && err.ends_with("; use /echo"),
        "{err}"
    );

    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--path", "/echo#top"])
        .output()
        .expect("run tinyws");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("tinyws: path (--path) /echo#top has a query or fragment")
            && stderr.contains("; use /echo\n"),
        "{stderr}"
    );
}

// ---- 7. SIGHUP ----

/// The teacher closes the terminal window: SIGHUP, handled like SIGTERM (close 1001 to
/// every client, exit 0).
#[cfg(unix)]
#[test]
fn sighup_closes_clients_with_1001() {
    let mut p = Proc::start(BIN, &[]);
    let mut s = upgraded(p.addr);
    p.wait_log("opened /");
    p.signal("-HUP");
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, 0x88);
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    s.write_all(&frame(true, 0x8, &payload[..2])).unwrap();
    assert!(read_to_end(&mut s).is_empty());
    assert_eq!(p.wait_exit(TIMEOUT), Some(0));
}

// ---- 5. TLS ends with close_notify ----

/// RFC 8446 §6.1: close_notify before closing the write side. A strict client (Python's
/// `ssl` with `suppress_ragged_eofs=False`) calls a bare FIN a truncation.
#[cfg(feature = "tls")]
#[test]
fn tls_connections_end_with_close_notify() {
    if !required("python3", runs("python3", &["-c", "import ssl"])) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tinyws-hostile-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = test_certificate(&dir);
    let server = start(config().tls_cert(cert.clone()).tls_key(key));
    for mode in ["close", "1002"] {
        let out = output_within(
            std::process::Command::new("python3")
                .args(["tests/tls_strict_client.py", "localhost"])
                .arg(server.addr.port().to_string())
                .arg(&cert)
                .arg(mode),
            Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "{mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let want = if mode == "close" {
            "close 1000"
        } else {
            "close 1002"
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{want}, then close_notify\n")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The log, like the trace, must not stall the server when its terminal stops reading
/// (Ctrl-S on the projector, a click that starts a Windows console selection): to a
/// terminal the binary logs through a bounded queue (src/util/spool.rs). Here its stderr is a
/// real terminal, a pseudo-terminal run by `script` (util-linux, always on Debian), that
/// nobody reads after startup: 600 connections (two log lines each, far more than a
/// terminal buffers) still echo, and SIGTERM still ends the process.
#[cfg(target_os = "linux")]
#[test]
fn a_terminal_that_stops_reading_the_log_holds_up_neither_echo_nor_shutdown() {
    use std::io::{BufRead, BufReader};
    if !required("script (util-linux)", runs("script", &["--version"])) {
        return;
    }
    /// Ends script (and so the terminal and tinyws) however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let cmd = format!("{BIN} --bind 127.0.0.1 --port 0");
    let mut script = Killed(
        std::process::Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start script"),
    );
    let mut out = BufReader::new(script.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    // Read the terminal up to the line that says where it listens, then never again.
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(at) = line.split("ws://").nth(1) {
                let _ = tx.send(at.split('/').next().unwrap_or("").to_string());
                return out; // held open, unread, until the test ends
            }
            line.clear();
        }
        out
    });
    let addr: std::net::SocketAddr = rx
        .recv_timeout(TIMEOUT)
        .expect("tinyws said where it listens")
        .parse()
        .unwrap();
    let _held = reader.join().unwrap();
    // tinyws is script's child.
    let children = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        script.0.id(),
        script.0.id()
    ))
    .unwrap();
    let pid: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    /// And tinyws itself, if the test fails while it is stuck on the terminal.
    struct KilledPid(u32);
    impl Drop for KilledPid {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
    let _tinyws = KilledPid(pid);
    for i in 0..600 {
        let mut s = upgraded(addr);
        let text = format!("client {i}");
        s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
        assert_eq!(read_frame(&mut s), (0x81, text.into_bytes()), "client {i}");
        s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
            .unwrap();
        assert_eq!(expect_close(&mut s), 1000, "client {i}");
    }
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + TIMEOUT;
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    {
        assert!(
            Instant::now() < deadline,
            "tinyws did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(script);
}
