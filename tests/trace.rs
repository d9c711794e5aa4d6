//! `--trace` on a projector: credentials hidden unless asked for, the
//! quiet level for a full room, and following one connection. Against the real binary,
//! its stdout read as a student would see it. (The bound on a paused stdout and the
//! escaping of control bytes: tests/hostile.rs.)

mod common;

use std::io::Write;

use common::process::{Proc, Stdout};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

const COOKIE: &str = "sid=c00k1e-from-another-dev-server";
const BEARER: &str = "Bearer s3cr3t-bearer-t0ken";
const PROXY: &str = "Basic cHJveHk6cGFzcw==";
const QUERY_TOKEN: &str = "qu3ry-t0ken";

/// An upgrade carrying every kind of credential a browser or tool might send.
fn with_credentials(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let mut s = tcp(addr);
    let request = upgrade_request(
        &format!("/chat?room=1&token={QUERY_TOKEN}"),
        &format!("Cookie: {COOKIE}\r\nAuthorization: {BEARER}\r\nProxy-Authorization: {PROXY}\r\n"),
    );
    s.write_all(request.as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    s
}

#[test]
fn credentials_never_reach_the_trace_unless_asked_for() {
    let mut p = Proc::start_with(BIN, &["--trace"], Stdout::Capture);
    with_credentials(p.addr);
    let text = String::from_utf8_lossy(p.stdout_until(b"#1 -- closed")).into_owned();
    for secret in [
        COOKIE,
        "s3cr3t-bearer-t0ken",
        "cHJveHk6cGFzcw==",
        QUERY_TOKEN,
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} on the projector:\n{text}"
        );
    }
    for shown in [
        format!("#1 <-   Cookie: <hidden: {} bytes>␍␊", COOKIE.len()),
        format!("#1 <-   Authorization: <hidden: {} bytes>␍␊", BEARER.len()),
        format!("#1 <-   Proxy-Authorization: <hidden: {} bytes>␍␊", PROXY.len()),
        format!(
            "#1 <-   GET /chat?room=1&token=<hidden: {} bytes> HTTP/1.1␍␊",
            QUERY_TOKEN.len()
        ),
        "#1 -- 4 credential value(s) hidden (cookies, authorization, tokens); --trace-secrets shows them".into(),
    ] {
        assert!(text.contains(&shown), "{shown:?} missing from:\n{text}");
    }
    // What is not a credential is shown as sent: the handshake is still all there.
    assert!(text.contains("#1 <-   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==␍␊"));
    drop(p);

    let mut p = Proc::start_with(BIN, &["--trace", "--trace-secrets"], Stdout::Capture);
    with_credentials(p.addr);
    let text = String::from_utf8_lossy(p.stdout_until(b"#1 -- closed")).into_owned();
    for secret in [COOKIE, BEARER, PROXY, QUERY_TOKEN] {
        assert!(
            text.contains(secret),
            "--trace-secrets hides {secret:?}:\n{text}"
        );
    }
    assert!(!text.contains("hidden"));
}

/// `--trace-quiet`: one line per data frame, keepalive silent, the handshake and the
/// close in full.
#[test]
fn the_quiet_trace_has_one_line_per_message_and_no_keepalive() {
    let mut p = Proc::start_with(
        BIN,
        &["--trace-quiet", "--ping-interval", "1s"],
        Stdout::Capture,
    );
    let mut s = upgraded(p.addr);
    s.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    // Keepalive: the server pings after a second of silence; answer it.
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, 0x89);
    s.write_all(&frame(true, 0xa, &payload)).unwrap();
    s.write_all(&frame(true, 0x1, b"again")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"again".to_vec()));
    s.write_all(&frame(true, 0x8, &close_payload(1000, "bye")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    let text = String::from_utf8_lossy(p.stdout_until(b"#1 -- closed")).into_owned();
    for line in [
        "#1 ok  Sec-WebSocket-Version: 13 (§4.2.1 item 6)",
        "#1 == base64(SHA-1)  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  -> Sec-WebSocket-Accept",
        "#1 <- text FIN=1 masked 5 bytes \"Hello\"\n",
        "#1 -> text FIN=1 unmasked 5 bytes \"Hello\"\n",
        "#1 <- text FIN=1 masked 5 bytes \"again\"\n",
        "#1 <-   close    code 1000 (normal closure) reason \"bye\"",
        "#1 ->   close    code 1000 (normal closure) reason \"bye\"",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    for absent in ["ping", "pong", "#1 <-   unmasked 48 65 6c 6c 6f"] {
        assert!(
            !text.contains(absent),
            "{absent:?} in the quiet trace:\n{text}"
        );
    }
}

/// `--trace-only 2`: the second connection is narrated, the first not at all (its
/// log lines stay on stderr as always).
#[test]
fn trace_only_follows_one_connection() {
    let mut p = Proc::start_with(BIN, &["--trace-only", "#2"], Stdout::Capture);
    for text in ["first", "second", "third"] {
        let mut s = upgraded(p.addr);
        s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
        assert_eq!(read_frame(&mut s), (0x81, text.as_bytes().to_vec()));
        s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
            .unwrap();
        assert_eq!(expect_close(&mut s), 1000);
        p.wait_log("closed");
    }
    let out = p.stdout_until(b"#2 -- closed").to_vec();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("#2 <-   text     \"second\""), "{text}");
    let others: Vec<&str> = text.lines().filter(|l| !l.starts_with("#2 ")).collect();
    assert!(others.is_empty(), "lines of other connections: {others:#?}");

    // By address: 127.0.0.1 is every client here.
    let mut p = Proc::start_with(BIN, &["--trace-only", "127.0.0.1"], Stdout::Capture);
    drop(upgraded(p.addr));
    p.stdout_until(b"#1 -- connection from 127.0.0.1:");
}

#[test]
fn trace_only_with_something_that_is_not_a_connection_says_what_it_takes() {
    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--trace-only", "alice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "trace_only (--trace-only) \"alice\" is not a connection id (#7), an IP address"
        ),
        "{err}"
    );
}

/// `--static` under `--trace`: the checks, then the answer's head (not the file's bytes).
#[cfg(feature = "static")]
#[test]
fn a_static_file_answer_is_narrated_with_its_head() {
    let dir = std::env::temp_dir().join(format!("tinyws-trace-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "file body\n").unwrap();
    let mut p = Proc::start_with(
        BIN,
        &["--trace", "--static", dir.to_str().unwrap()],
        Stdout::Capture,
    );
    let answer = http(p.addr, "GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(answer.ends_with("\r\n\r\nfile body\n"), "{answer}");
    let text = String::from_utf8_lossy(p.stdout_until(b"#1 ->   Connection: close")).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    for line in [
        "#1 ok  a plain GET (no Upgrade) with --static: a file, then close",
        "#1 -- GET /a.txt: answered from the --static directory, then close",
        "#1 ->   HTTP/1.1 200 OK␍␊",
        "#1 ->   Content-Length: 10␍␊",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(!text.contains("file body"), "{text}");
}
