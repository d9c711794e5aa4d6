//! What a handler can do besides returning a message: send to its own client
//! only (`Client::send`), in echo and broadcast mode, in order with everything else the
//! client is sent; reach the server's handle (`Client::server`); and what happens to a
//! returned control frame (dropped in both modes, never written).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use tinyws::{Client, CloseFrame, Message};

/// A handler with commands: `ask` is answered to the asker only, `count` too (the
/// room's size, from the handle), `stop` shuts the server down, `ping`/`pong`/`close`/
/// `frame` return control frames, anything else goes back (echo) or to the room.
fn handler(client: &Client, msg: Message) -> Option<Message> {
    let text = msg.to_text().unwrap_or("").to_string();
    match text.as_str() {
        "ask" => {
            assert!(client.send(Message::text("only you")));
            Some(Message::text("after"))
        }
        "count" => {
            let s = client.server();
            let n = format!("members {} connections {}", s.members(), s.connections());
            client.send(Message::text(n));
            None
        }
        "stop" => {
            client.server().shutdown();
            None
        }
        "ping" => Some(Message::Ping(vec![7; 200].into())),
        "pong" => Some(Message::Pong(b"p".to_vec().into())),
        // 1005 must never be on the wire (RFC 6455 §7.4.1).
        "close" => Some(Message::Close(Some(CloseFrame {
            code: 1005.into(),
            reason: "".into(),
        }))),
        "send-ping" => {
            assert!(!client.send(Message::Ping(b"x".to_vec().into())));
            None
        }
        _ => Some(msg),
    }
}

/// Waits (bounded) until both clients are members: the 101 goes out just before a
/// client joins the room.
fn wait_members(server: &TestServer, n: usize) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while server.handle().members() != n {
        assert!(std::time::Instant::now() < deadline, "never {n} members");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn say(s: &mut TcpStream, text: &str) {
    s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
}

fn next_text(s: &mut TcpStream) -> String {
    let (first, payload) = read_frame(s);
    assert_eq!(first, 0x81, "a text frame, got {first:#x} {payload:?}");
    String::from_utf8(payload).unwrap()
}

/// Echo mode: the reply to the sender comes first, then the returned message, each one
/// unfragmented text frame, byte for byte.
#[test]
fn echo_mode_sends_to_the_sender_in_order_with_the_returned_reply() {
    let server = start_with(config(), handler);
    let mut s = upgraded(server.addr);
    say(&mut s, "ask");
    assert_eq!(read_frame(&mut s), (0x81, b"only you".to_vec()));
    assert_eq!(read_frame(&mut s), (0x81, b"after".to_vec()));
    say(&mut s, "count");
    assert_eq!(next_text(&mut s), "members 0 connections 1");
}

/// Broadcast mode: the asker's answer goes to the asker only, before the room's message
/// it returned; the other member sees only the room's messages, in the room's order.
#[test]
fn broadcast_mode_sends_to_the_asker_only_in_order_with_the_room() {
    let server = start_with(config().broadcast(true), handler);
    let mut a = upgraded(server.addr);
    let mut b = upgraded(server.addr);
    wait_members(&server, 2);
    say(&mut a, "hello");
    assert_eq!(next_text(&mut a), "hello");
    assert_eq!(next_text(&mut b), "hello");
    say(&mut a, "count");
    assert_eq!(next_text(&mut a), "members 2 connections 2");
    say(&mut a, "ask");
    assert_eq!(next_text(&mut a), "only you");
    assert_eq!(next_text(&mut a), "after");
    // b never saw "only you" nor the count: its next frame is the room's "after".
    assert_eq!(next_text(&mut b), "after");
    say(&mut b, "bye");
    assert_eq!(next_text(&mut a), "bye");
    assert_eq!(next_text(&mut b), "bye");
}

/// A handler shuts the server down through its client's handle: every member gets 1001.
#[test]
fn a_handler_reaches_the_server_handle_and_can_shut_it_down() {
    let server = start_with(config().broadcast(true), handler);
    let handle = server.handle().clone();
    let mut a = upgraded(server.addr);
    let mut b = upgraded(server.addr);
    wait_members(&server, 2);
    say(&mut a, "hi");
    assert_eq!(next_text(&mut b), "hi");
    assert_eq!(next_text(&mut a), "hi");
    say(&mut b, "stop");
    for s in [&mut a, &mut b] {
        let (first, payload) = read_frame(s);
        assert_eq!((first, &payload[..2]), (0x88, &1001u16.to_be_bytes()[..]));
        // Answered (RFC 6455 §5.5.1): both close cleanly, nobody is cut.
        s.write_all(&frame(true, 0x8, &payload[..2])).unwrap();
        assert!(read_to_end(s).is_empty());
    }
    assert!(handle.is_stopping());
    let stopped = server.stop();
    assert_eq!((stopped.connections, stopped.cut), (2, 0), "{stopped}");
    assert!(stopped.is_clean());
    assert_eq!(stopped.to_string(), "stopped: 2 connection(s) closed");
}

/// Returned control frames are dropped in both modes: an oversized ping (200 bytes,
/// §5.5 allows 125), a pong, a close with 1005 are never written; `send` refuses a
/// ping. The next text still goes out, and the connection is fine.
#[test]
fn returned_control_frames_are_dropped_in_both_modes() {
    for broadcast in [false, true] {
        let server = start_with(config().broadcast(broadcast), handler);
        let mut s = upgraded(server.addr);
        for cmd in ["ping", "pong", "close", "send-ping", "ping"] {
            say(&mut s, cmd);
        }
        say(&mut s, "still here");
        assert_eq!(
            read_frame(&mut s),
            (0x81, b"still here".to_vec()),
            "broadcast {broadcast}: nothing before the text"
        );
        // A clean close still works: the connection was not closed by the 1005.
        s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
            .unwrap();
        assert_eq!(read_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(read_to_end(&mut s).is_empty());
    }
}

/// Broadcast mode: `send` to a member that reads nothing never waits for its socket (the
/// handler returns while the client has read nothing), and past twice `max_backlog`
/// waiting the member is closed with 1008, as for a flood of its own pongs.
#[test]
fn broadcast_mode_send_never_waits_and_closes_a_member_that_reads_nothing_past_the_bound() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let config = config()
        .broadcast(true)
        .max_message_size(16 * 1024)
        .max_backlog(64 * 1024);
    let server = start_with(config, move |client: &Client, _: Message| {
        // 64 MiB at most: more than any loopback socket buffers take.
        let sent = (0..4096)
            .take_while(|_| client.send(Message::binary(vec![7u8; 16 * 1024])))
            .count();
        let _ = tx.lock().unwrap().send(sent);
        None
    });
    let mut s = upgraded(server.addr);
    wait_members(&server, 1);
    say(&mut s, "flood");
    let sent = rx
        .recv_timeout(TIMEOUT)
        .expect("the handler returned while its client read nothing");
    assert!((1..4096).contains(&sent), "refused after {sent}");
    // Everything queued before the bound, then the close 1008 (RFC 6455 §7.4.1).
    let mut frames = 0;
    loop {
        let (first, payload) = read_frame(&mut s);
        if first == 0x88 {
            assert_eq!(&payload[..2], &1008u16.to_be_bytes()[..]);
            break;
        }
        assert_eq!((first, payload.len()), (0x82, 16 * 1024));
        frames += 1;
    }
    assert!(frames <= sent, "{frames} frames of {sent} sent");
}

/// Broadcast mode: a message that can never fit the member's backlog (`max_backlog`) is
/// not sent, `send` says so, and the member stays: not cut for the room's bound.
#[test]
fn broadcast_mode_send_refuses_a_message_larger_than_the_backlog_and_keeps_the_member() {
    const MAX_BACKLOG: usize = 1024 + 32;
    let config = config()
        .broadcast(true)
        .max_message_size(1024)
        .max_backlog(MAX_BACKLOG);
    let server = start_with(config, |client: &Client, msg: Message| {
        let size = msg.to_text().unwrap_or("0").parse().unwrap_or(0);
        let sent = client.send(Message::binary(vec![7u8; size]));
        client.send(Message::text(format!("{size} {sent}")));
        None
    });
    let mut s = upgraded(server.addr);
    wait_members(&server, 1);
    say(&mut s, "4096");
    assert_eq!(next_text(&mut s), "4096 false");
    // One that fits exactly: its frame (a 4-byte header) plus the backlog's entry for it
    // (a pointer and a length: docs/reference.md) is `max_backlog`.
    let fits = MAX_BACKLOG - 4 - std::mem::size_of::<std::sync::Arc<[u8]>>();
    say(&mut s, &(fits + 1).to_string());
    assert_eq!(next_text(&mut s), format!("{} false", fits + 1));
    say(&mut s, &fits.to_string());
    assert_eq!(read_frame(&mut s), (0x82, vec![7u8; fits]));
    assert_eq!(next_text(&mut s), format!("{fits} true"));
}
