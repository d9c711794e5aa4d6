//! Subprotocols (RFC 6455 §1.9, §4.2.2, §11.3.4), over real sockets: the server's
//! `protocols` in its order of preference, the client's `Sec-WebSocket-Protocol` offer,
//! and the `101` that answers it, byte for byte.

mod common;

use std::io::Write;
use std::process::Command;

use common::process::Proc;
#[cfg(feature = "teach")]
use common::process::Stdout;
use common::*;
use tinyws::{Client, Message};

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// The `101` for the RFC sample key, with `Sec-WebSocket-Protocol: chosen` if any.
fn switching(chosen: Option<&str>) -> String {
    let protocol = chosen.map_or(String::new(), |p| {
        format!("sec-websocket-protocol: {p}\r\n")
    });
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-accept: {RFC_ACCEPT}\r\n{protocol}\r\n"
    )
}

/// A server whose handler answers every message with `Client::protocol()` ("none").
fn protocol_reporter(protocols: &[&str]) -> TestServer {
    start_with(
        config().protocols(protocols.iter().copied()),
        |c: &Client, _: Message| Some(Message::text(c.protocol().unwrap_or("none").to_string())),
    )
}

/// Upgrades with `extra` headers; returns the `101` head and what the handler says the
/// subprotocol is.
fn offer(server: &TestServer, extra: &str) -> (String, String) {
    let mut s = tcp(server.addr);
    s.write_all(upgrade_request("/", extra).as_bytes()).unwrap();
    let head = read_head(&mut s);
    s.write_all(&frame(true, 0x1, b"which?")).unwrap();
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, 0x81, "a text reply");
    (head, String::from_utf8(payload).unwrap())
}

#[test]
fn the_first_of_the_servers_names_that_the_client_offered_is_answered() {
    let server = protocol_reporter(&["chat", "superchat"]);
    // The client prefers superchat; the server's order wins (§4.2.2 /subprotocol/: the
    // server selects one of the client's values, any it is willing to use).
    let (head, seen) = offer(&server, "Sec-WebSocket-Protocol: superchat, chat\r\n");
    assert_eq!(head, switching(Some("chat")));
    assert_eq!(seen, "chat", "the handler sees the answer");
    // Only superchat offered: that is the one.
    let (head, seen) = offer(&server, "Sec-WebSocket-Protocol: superchat\r\n");
    assert_eq!(head, switching(Some("superchat")));
    assert_eq!(seen, "superchat");
    // §11.3.4: several header lines are one list; empty list elements are skipped.
    let (head, seen) = offer(
        &server,
        "Sec-WebSocket-Protocol: x-other,\r\nSec-WebSocket-Protocol: , superchat\r\n",
    );
    assert_eq!(head, switching(Some("superchat")));
    assert_eq!(seen, "superchat");
}

#[test]
fn a_client_that_offers_only_other_names_gets_a_101_without_the_header() {
    let server = protocol_reporter(&["chat"]);
    // §4.2.2: the only acceptable value is then null: no header at all.
    let (head, seen) = offer(&server, "Sec-WebSocket-Protocol: soap, wamp\r\n");
    assert_eq!(head, switching(None));
    assert_eq!(seen, "none");
    // Names compare exactly: "Chat" is not "chat" (the answer must be a value the client
    // sent, and browsers compare it byte for byte).
    let (head, seen) = offer(&server, "Sec-WebSocket-Protocol: Chat\r\n");
    assert_eq!(head, switching(None));
    assert_eq!(seen, "none");
}

#[test]
fn a_client_that_offers_nothing_gets_no_subprotocol() {
    let server = protocol_reporter(&["chat"]);
    let (head, seen) = offer(&server, "");
    assert_eq!(head, switching(None));
    assert_eq!(seen, "none");
}

#[test]
fn the_log_says_once_what_was_offered_and_the_flag_that_would_accept_it() {
    let mut p = Proc::start(BIN, &["--protocol", "chat,superchat"]);
    let mut s = tcp(p.addr);
    s.write_all(
        upgrade_request(
            "/",
            "Sec-WebSocket-Protocol: soap\r\nSec-WebSocket-Protocol: wamp\r\n",
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_head(&mut s), switching(None));
    let line = p.wait_log("offered subprotocols");
    assert!(
        line.contains(
            ": offered subprotocols soap, wamp, none of which this server speaks (protocols (--protocol): chat,superchat); answered 101 without Sec-WebSocket-Protocol; to accept one, add it to protocols (--protocol)"
        ),
        "{line}"
    );
    let opened = p.wait_log("opened /");
    assert!(!opened.contains("subprotocol"), "{opened}");
    // A chosen one is in the line that says the connection opened, and nothing else is
    // said about it.
    let mut s2 = tcp(p.addr);
    s2.write_all(upgrade_request("/", "Sec-WebSocket-Protocol: superchat\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_head(&mut s2), switching(Some("superchat")));
    let opened = p.wait_log("opened /");
    assert!(
        opened.ends_with("opened /, subprotocol superchat"),
        "{opened}"
    );
    let rest = p.drain_log();
    assert!(
        rest.iter().all(|l| !l.contains("offered subprotocols")),
        "once per connection: {rest:#?}"
    );
}

#[cfg(feature = "teach")]
#[test]
fn the_trace_shows_the_offer_and_the_choice() {
    let mut p = Proc::start_with(BIN, &["--trace", "--protocol", "chat"], Stdout::Capture);
    let mut s = tcp(p.addr);
    s.write_all(upgrade_request("/", "Sec-WebSocket-Protocol: v2.chat, chat\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_head(&mut s), switching(Some("chat")));
    let out = String::from_utf8_lossy(p.stdout_until(b"sec-websocket-protocol: chat")).to_string();
    assert!(
        out.contains(
            "ok  Sec-WebSocket-Protocol: v2.chat, chat offered; answered \"chat\", the first of --protocol chat the client offered"
        ),
        "{out}"
    );
    let mut s = tcp(p.addr);
    s.write_all(upgrade_request("/", "Sec-WebSocket-Protocol: soap\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_head(&mut s), switching(None));
    p.stdout_until(
        b"--  Sec-WebSocket-Protocol: soap offered; none is in --protocol chat: the 101 has no Sec-WebSocket-Protocol",
    );
}

#[test]
fn names_that_are_not_tokens_are_refused_at_startup() {
    for (bad, why) in [
        ("a b", "not a subprotocol name"),
        ("", "not a subprotocol name"),
    ] {
        let e = tinyws::Server::bind(config().protocols([bad]), tinyws::Echo)
            .err()
            .expect("refused");
        assert!(e.to_string().contains(why), "{e}");
    }
    let e = tinyws::Server::bind(config().protocols(["chat", "chat"]), tinyws::Echo)
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("`protocols` lists \"chat\" twice"),
        "{e}"
    );
    // The binary names the flag.
    let out = Command::new(BIN)
        .args(["--port", "0", "--protocol", "a(b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tinyws: protocols (--protocol) entry \"a(b\" is not a subprotocol name"),
        "{err}"
    );
}

#[test]
fn python_websockets_gets_the_subprotocol_it_offered() {
    let server = protocol_reporter(&["chat", "superchat"]);
    let Some(stdout) = python_client(
        "tests/subprotocol_client.py",
        &format!("ws://{}/", server.addr),
    ) else {
        return;
    };
    assert_eq!(stdout, "subprotocols ok\n");
}
