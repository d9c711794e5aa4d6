//! The opening handshake, echo of every message shape, ping/pong and the close handshake,
//! over real sockets.

mod common;

use std::io::Write;

use common::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn rfc_6455_sample_key_gives_the_rfc_accept_value_byte_for_byte() {
    let server = start(config());
    let mut s = tcp(server.addr);
    s.write_all(upgrade_request("/chat", "Origin: http://localhost\r\n").as_bytes())
        .unwrap();
    assert_eq!(
        read_head(&mut s),
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-accept: {RFC_ACCEPT}\r\n\r\n"
        )
    );
}

#[test]
fn text_binary_and_empty_messages_come_back_unchanged() {
    let server = start(config());
    let mut ws = ws(server.addr, "/echo");
    let sent = [
        Message::text("hello"),
        Message::text("héllo, 世界 🌍"),
        Message::binary(vec![0u8, 1, 2, 254, 255]),
        Message::text(""),
        Message::binary(Vec::new()),
    ];
    for m in sent {
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
}

#[test]
fn a_message_just_under_the_cap_echoes_whole() {
    let cfg = config();
    let size = cfg.max_message_size - 1;
    let server = start(cfg);
    let mut ws = ws(server.addr, "/");
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(data.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(data));
    let text = "x".repeat(size);
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(text));
}

#[test]
fn fragmented_messages_come_back_whole_with_a_ping_in_between() {
    let server = start(config());
    let mut s = upgraded(server.addr);
    // RFC 6455 §5.4: a control frame may be injected between fragments.
    let mut bytes = frame(false, 0x1, "Hel".as_bytes());
    bytes.extend(frame(false, 0x0, "lo, ".as_bytes()));
    bytes.extend(frame(true, 0x9, b"mid"));
    bytes.extend(frame(true, 0x0, "世界".as_bytes()));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), (0x8a, b"mid".to_vec()), "pong first");
    assert_eq!(
        read_frame(&mut s),
        (0x81, "Hello, 世界".as_bytes().to_vec())
    );

    let mut bytes = frame(false, 0x2, &[1, 2]);
    bytes.extend(frame(true, 0x0, &[3]));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), (0x82, vec![1, 2, 3]));
}

#[test]
fn pings_get_identical_pongs() {
    let server = start(config());
    let mut s = upgraded(server.addr);
    for payload in [&b""[..], b"x", &[0xab; 125]] {
        s.write_all(&frame(true, 0x9, payload)).unwrap();
        assert_eq!(read_frame(&mut s), (0x8a, payload.to_vec()));
    }
}

#[test]
fn close_handshake_echoes_code_and_reason_then_server_closes_tcp() {
    let server = start(config());
    let mut s = upgraded(server.addr);
    s.write_all(&frame(true, 0x8, &close_payload(1000, "bye now")))
        .unwrap();
    assert_eq!(read_frame(&mut s), (0x88, close_payload(1000, "bye now")));
    assert!(
        read_to_end(&mut s).is_empty(),
        "server must close TCP after the close reply"
    );
    assert_eq!(server.wait_connections(0), 0);
}

#[test]
fn close_without_code_is_answered_without_code() {
    let server = start(config());
    let mut s = upgraded(server.addr);
    s.write_all(&frame(true, 0x8, b"")).unwrap();
    // Never 1005 on the wire (RFC 6455 §7.4.1): an empty close answers an empty close.
    assert_eq!(read_frame(&mut s), (0x88, vec![]));
    assert!(read_to_end(&mut s).is_empty());
}

#[test]
fn tungstenite_client_sees_a_clean_close() {
    let server = start(config());
    let mut ws = ws(server.addr, "/");
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "done".into(),
    }))
    .unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(f.code, CloseCode::Away);
                assert_eq!(f.reason.as_str(), "done");
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

#[test]
fn back_to_back_messages_in_one_segment_both_echo_in_order() {
    let server = start(config());
    let mut s = upgraded(server.addr);
    s.set_nodelay(true).unwrap();
    let mut bytes = Vec::new();
    for i in 0..50u8 {
        bytes.extend(frame(true, 0x2, &[i; 3]));
    }
    s.write_all(&bytes).unwrap();
    for i in 0..50u8 {
        assert_eq!(read_frame(&mut s), (0x82, vec![i; 3]));
    }
}

#[test]
fn early_frames_sent_with_the_request_are_not_lost() {
    // A client must wait for the 101 (RFC 6455 §4.1), but one that does not should not
    // lose its first message to the handshake.
    let server = start(config());
    let mut s = tcp(server.addr);
    let mut bytes = upgrade_request("/", "").into_bytes();
    bytes.extend(frame(true, 0x1, b"eager"));
    s.write_all(&bytes).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    assert_eq!(read_frame(&mut s), (0x81, b"eager".to_vec()));
}

#[test]
fn a_closure_handler_replies_and_sees_client_details() {
    let server = start_with(config(), |c: &tinyws::Client, m: Message| {
        Some(Message::text(format!(
            "{} {} {}",
            c.id(),
            c.path(),
            m.into_text().ok()?
        )))
    });
    let mut ws = ws(server.addr, "/room?x=1");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("1 /room hi"));
}

#[test]
fn on_close_runs_even_after_the_handler_panicked() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting(Arc<AtomicUsize>);
    impl tinyws::Handler for Counting {
        fn on_message(&self, _: &tinyws::Client, _: Message) -> Option<Message> {
            panic!("handler bug (expected by the test)");
        }
        fn on_close(&self, _: &tinyws::Client) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let closes = Arc::new(AtomicUsize::new(0));
    let server = start_with(config(), Counting(closes.clone()));
    let mut s = upgraded(server.addr);
    s.write_all(&frame(true, 0x1, b"boom")).unwrap();
    assert_eq!(expect_close(&mut s), 1011);
    assert_eq!(server.wait_connections(0), 0);
    assert_eq!(closes.load(Ordering::SeqCst), 1, "on_close ran once");
}

#[test]
fn a_panicking_handler_costs_only_its_connection() {
    let server = start_with(config(), |_: &tinyws::Client, m: Message| {
        if m.to_text().ok()? == "boom" {
            panic!("handler bug (expected by the test)");
        }
        Some(m)
    });
    let mut other = ws(server.addr, "/");
    let mut s = upgraded(server.addr);
    s.write_all(&frame(true, 0x1, b"boom")).unwrap();
    assert_eq!(expect_close(&mut s), 1011);
    other.send(Message::text("still here")).unwrap();
    assert_eq!(other.read().unwrap(), Message::text("still here"));
    let mut again = ws(server.addr, "/");
    again.send(Message::text("new")).unwrap();
    assert_eq!(again.read().unwrap(), Message::text("new"));
}

/// A quiet connection gives back its buffers, and after a large message tinyws then
/// starts a fresh tungstenite context (tune/quiet.rs `shrink`). That must never happen while
/// tungstenite holds part of a frame or of a fragmented message. The shrink runs at every
/// read timeout; with a keepalive interval under a second that is the keepalive's, so
/// the server's ping proves it ran. Each case: a ping (its pong proves the server has
/// read that far) and a large message (so there is something to renew), then a cut, then
/// silence until the server pings, then the rest.
#[test]
fn a_frame_or_message_cut_across_a_quiet_spell_comes_back_whole() {
    let server = start(config().ping_interval(std::time::Duration::from_millis(300)));
    // Over half the 1 KiB idle read buffer: tungstenite's buffers grew (tune/reads.rs has_grown).
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let data = frame(true, 0x2, &payload);
    let cases: [(&str, Vec<u8>, Vec<u8>); 3] = [
        (
            "cut inside the payload",
            data[..100].to_vec(),
            data[100..].to_vec(),
        ),
        (
            "cut inside the header",
            data[..1].to_vec(),
            data[1..].to_vec(),
        ),
        (
            "between two fragments",
            frame(false, 0x2, &payload[..10]),
            { frame(true, 0x0, &payload[10..]) },
        ),
    ];
    for (what, first, rest) in cases {
        let mut s = upgraded(server.addr);
        let mut bytes = frame(true, 0x9, what.as_bytes());
        bytes.extend(&data);
        bytes.extend(&first);
        s.write_all(&bytes).unwrap();
        assert_eq!(
            read_frame(&mut s),
            (0x8a, what.as_bytes().to_vec()),
            "{what}"
        );
        assert_eq!(read_data(&mut s), (0x82, payload.clone()), "{what}");
        wait_for_keepalive_ping(&mut s);
        s.write_all(&rest).unwrap();
        assert_eq!(read_data(&mut s), (0x82, payload.clone()), "{what}");
    }
    // And after a quiet spell at a message's end (a fresh context), echo goes on.
    let mut s = upgraded(server.addr);
    let big = vec![0x5a; 60_000]; // under the 64 KiB cap, over every idle buffer
    s.write_all(&frame(true, 0x2, &big)).unwrap();
    assert!(read_data(&mut s) == (0x82, big.clone()), "came back whole");
    wait_for_keepalive_ping(&mut s);
    for _ in 0..2 {
        s.write_all(&frame(true, 0x2, &big)).unwrap();
        assert!(
            read_data(&mut s) == (0x82, big.clone()),
            "after a quiet spell, a large message came back whole"
        );
        s.write_all(&frame(true, 0x1, b"small")).unwrap();
        assert_eq!(read_data(&mut s), (0x81, b"small".to_vec()));
    }
}

/// The next frame that is not a keepalive ping.
fn read_data(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    loop {
        let f = read_frame(s);
        if f != (0x89, b"tinyws".to_vec()) {
            return f;
        }
    }
}

/// Waits for the server's keepalive ping: it comes right after the read timeout on
/// which the server shrinks the connection.
fn wait_for_keepalive_ping(s: &mut std::net::TcpStream) {
    assert_eq!(read_frame(s), (0x89, b"tinyws".to_vec()), "keepalive ping");
}
