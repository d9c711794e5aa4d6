//! The live inspector (issue 15) over real sockets: a connection that brings a token is
//! recorded as `--trace` would narrate it, only that token reads it back, the projector
//! view is off unless asked for, and a poller that never reads holds up nobody.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use common::process::Proc;
use common::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210";

/// The JSON answer with its string escapes undone, enough to search it as text.
fn unjson(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\u003c", "<")
        .replace("\\u003e", ">")
        .replace("\\u0026", "&")
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}

/// `GET target`: (status, body).
fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    let a = http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    );
    let status = a[9..12].parse().expect("a status");
    let body = a.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

/// A raw client upgraded on `path` (the RFC sample key), having echoed "Hello" with the
/// RFC 6455 §5.7 mask.
fn hello(addr: SocketAddr, path: &str) -> std::net::TcpStream {
    let mut s = tcp(addr);
    s.write_all(upgrade_request(path, "Cookie: session=secret\r\n").as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    s
}

#[test]
fn a_connection_with_a_token_is_recorded_and_only_that_token_reads_it() {
    let server = start(config().path("/echo"));
    let mut s = hello(server.addr, &format!("/echo?inspect_token={TOKEN}"));
    let (status, body) = get(server.addr, &format!("/.inspect?inspect_token={TOKEN}"));
    assert_eq!(status, 200, "{body}");
    let record = unjson(&body);
    // The request head as received, the token and the cookie hidden.
    assert!(
        record.contains("GET /echo?inspect_token=<hidden: 32 bytes> HTTP/1.1␍␊"),
        "{record}"
    );
    assert!(record.contains("Cookie: <hidden: 14 bytes>"), "{record}");
    assert!(!record.contains(TOKEN) && !record.contains("secret"));
    // The checks, the accept computation, the exact 101.
    assert!(record.contains("ok  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="));
    assert!(record.contains(&format!(
        "== base64(SHA-1)  {RFC_ACCEPT}  -> Sec-WebSocket-Accept"
    )));
    assert!(
        record.contains("->   HTTP/1.1 101 Switching Protocols␍␊"),
        "{record}"
    );
    assert!(record.contains(&format!("->   sec-websocket-accept: {RFC_ACCEPT}␍␊")));
    // The frame as it came, and the echo as it went.
    assert!(record.contains(
        "<- frame: FIN=1 RSV=000 opcode=0x1 (text) MASK=1 length=5 mask key=37 fa 21 3d"
    ));
    assert!(
        record.contains("<-   masked   7f 9f 4d 51 58\n"),
        "{record}"
    );
    assert!(record.contains("<-   unmasked 48 65 6c 6c 6f\n"));
    // The XOR table, which only the inspector shows (a terminal line has no room).
    assert!(
        record.contains("<-   XOR      7f^37=48 9f^fa=65 4d^21=6c 51^3d=6c 58^37=6f  (byte i"),
        "{record}"
    );
    assert!(record.contains("-> frame: FIN=1 RSV=000 opcode=0x1 (text) MASK=0 length=5"));

    // Anyone else: another token, a malformed one, the projector view (off).
    let (status, _) = get(server.addr, &format!("/.inspect?inspect_token={OTHER}"));
    assert_eq!(status, 404);
    let (status, _) = get(server.addr, "/.inspect?inspect_token=0123");
    assert_eq!(status, 404);
    let (status, body) = get(server.addr, "/.inspect?all");
    assert_eq!(status, 404);
    assert!(body.contains("--inspect"), "{body}");
    let (status, _) = get(server.addr, "/inspect");
    assert_eq!(status, 404);
    // A refused request is not kept, token or not.
    let refused = http(
        server.addr,
        &upgrade_request(&format!("/elsewhere?inspect_token={OTHER}"), ""),
    );
    assert!(refused.starts_with("HTTP/1.1 404 "), "{refused}");
    let (status, _) = get(server.addr, &format!("/.inspect?inspect_token={OTHER}"));
    assert_eq!(status, 404);

    // The end is recorded too: a poll after the last event waits for it.
    let next: u64 = body_next(&get(server.addr, &format!("/.inspect?inspect_token={TOKEN}")).1);
    s.write_all(&frame(true, 0x8, &close_payload(1000, "bye")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    let (status, body) = get(
        server.addr,
        &format!("/.inspect?inspect_token={TOKEN}&since={next}"),
    );
    assert_eq!(status, 200);
    let end = unjson(&body);
    assert!(end.contains("\"ended\":true"), "{end}");
    assert!(end.contains("-- closed, code 1000 (bye)"), "{end}");
    assert!(
        !end.contains("request head"),
        "only what came after {next}: {end}"
    );
}

fn body_next(body: &str) -> u64 {
    body.strip_prefix("{\"next\":")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no next in {body}"))
}

#[test]
fn without_a_token_nothing_is_recorded() {
    let server = start(config());
    let _s = hello(server.addr, "/");
    // The projector view is off, and nothing holds a record of that connection.
    let (status, _) = get(server.addr, "/.inspect?all");
    assert_eq!(status, 404);
    let _t = hello(server.addr, &format!("/?inspect_token={TOKEN}"));
    let (status, body) = get(server.addr, &format!("/.inspect?inspect_token={TOKEN}"));
    assert_eq!(status, 200);
    assert_eq!(unjson(&body).matches("\"id\":").count(), 1, "{body}");
}

#[test]
fn the_projector_view_lists_every_connection_newest_first_in_broadcast_mode() {
    let server = start(config().inspect(true).broadcast(true));
    let _a = hello(server.addr, "/");
    let _b = hello(server.addr, "/chat");
    let (status, body) = get(server.addr, "/.inspect?all");
    assert_eq!(status, 200, "{body}");
    let record = unjson(&body);
    let first = record.find("\"id\":").expect("a record");
    let ids: Vec<u64> = record
        .match_indices("\"id\":")
        .map(|(at, _)| record[at + 5..].split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{record}");
    assert!(ids[0] > ids[1], "newest first: {ids:?}");
    assert!(record[first..].contains("GET /chat HTTP/1.1"));
    // The broadcast went out through the member's writer: recorded as sent.
    assert!(record.contains("-> frame: FIN=1 RSV=000 opcode=0x1 (text) MASK=0 length=5"));
    let (status, body) = get(server.addr, "/inspect");
    assert_eq!(status, 200);
    assert!(body.contains("const PROJECTOR = true;"));
    let (_, page) = get(server.addr, "/");
    assert!(page.contains("const PROJECTOR = false;"));
    // Page loads, the view and the polls themselves are not connections to record.
    let (_, body) = get(server.addr, "/.inspect?all");
    assert_eq!(body.matches("\"id\":").count(), 2, "{body}");
}

#[test]
fn the_startup_log_says_the_projector_view_is_on() {
    let mut p = Proc::start(env!("CARGO_BIN_EXE_tinyws"), &["--inspect"]);
    let line = p.wait_log("inspect: the projector view is on at http://");
    assert!(line.contains("/inspect"), "{line}");
}

/// A poller that asks and then never reads its answers (nor closes) costs only its own
/// thread: the watched connection's echoes keep coming.
#[test]
fn a_stuck_inspector_does_not_delay_echoes() {
    let server = start(config());
    let mut s = hello(server.addr, &format!("/?inspect_token={TOKEN}"));
    let mut stuck = Vec::new();
    for since in [0, 1_000_000] {
        let mut p = tcp(server.addr);
        write!(
            p,
            "GET /.inspect?inspect_token={TOKEN}&since={since} HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        .unwrap();
        stuck.push(p);
    }
    // One reads its first answer, to prove the poll was served, then never again.
    let mut first = [0u8; 15];
    stuck[0].read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");
    let started = Instant::now();
    for i in 0..200 {
        let text = format!("message {i} {}", "x".repeat(i));
        s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
        assert_eq!(read_frame(&mut s), (0x81, text.into_bytes()));
    }
    // Generous: 200 echoes on loopback take milliseconds.
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    drop(stuck);
}
