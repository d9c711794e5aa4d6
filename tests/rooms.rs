//! Rooms mode (`--rooms`, `Config::rooms`), over real sockets: a room per request path,
//! each with the one room's guarantees, and nothing crossing between rooms.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::process::Proc;
use common::*;
use tinyws::{Config, Message};

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

fn rooms(config: Config) -> TestServer {
    start(config.rooms(true))
}

/// A raw client past the handshake for `path`.
fn member(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = tcp(addr);
    s.write_all(upgrade_request(path, "").as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{path}: {head}");
    s
}

/// Waits (bounded) until `ServerHandle::rooms()` is `want`.
fn wait_rooms(server: &TestServer, want: &[(&str, usize)]) {
    let want: Vec<(String, usize)> = want.iter().map(|(p, n)| (p.to_string(), *n)).collect();
    let deadline = Instant::now() + TIMEOUT;
    while server.handle().rooms() != want && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.handle().rooms(), want, "the rooms");
}

fn send_text(s: &mut TcpStream, text: &str) {
    s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
}

fn next_text(s: &mut TcpStream) -> String {
    let (first, payload) = read_frame(s);
    assert_eq!(first, 0x81, "a text frame: {payload:?}");
    String::from_utf8(payload).unwrap()
}

#[test]
fn two_rooms_never_see_each_others_messages() {
    let server = rooms(config());
    let mut a1 = member(server.addr, "/chat/a");
    let mut a2 = member(server.addr, "/chat/a");
    let mut b1 = member(server.addr, "/chat/b");
    wait_rooms(&server, &[("/chat/a", 2), ("/chat/b", 1)]);
    assert_eq!(server.handle().members(), 3);

    send_text(&mut a1, "in a");
    assert_eq!(next_text(&mut a1), "in a");
    assert_eq!(next_text(&mut a2), "in a");
    send_text(&mut b1, "in b");
    assert_eq!(next_text(&mut b1), "in b");
    // Had "in b" reached room a (or "in a" room b), it would come before these.
    send_text(&mut a2, "in a again");
    assert_eq!(next_text(&mut a1), "in a again");
    assert_eq!(next_text(&mut a2), "in a again");
    send_text(&mut b1, "in b again");
    assert_eq!(next_text(&mut b1), "in b again");

    // The library: one room, or all of them.
    let handle = server.handle();
    assert_eq!(handle.broadcast_to("/chat/a", Message::text("to a")), 2);
    assert_eq!(
        handle.broadcast_to("/chat/nobody", Message::text("lost")),
        0
    );
    assert_eq!(handle.broadcast(Message::text("to all")), 3);
    assert_eq!(next_text(&mut a1), "to a");
    assert_eq!(next_text(&mut a2), "to a");
    assert_eq!(next_text(&mut b1), "to all");
    assert_eq!(next_text(&mut a1), "to all");
    assert_eq!(next_text(&mut a2), "to all");
}

#[test]
fn the_path_decides_the_room_and_path_is_the_prefix_of_the_rooms() {
    let server = rooms(config().path("/chat"));
    let _lobby = member(server.addr, "/chat/lobby");
    // The query is not part of the path, so not of the room.
    let _lobby2 = member(server.addr, "/chat/lobby?name=ana");
    let _deep = member(server.addr, "/chat/a/b");
    let _top = member(server.addr, "/chat");
    let _slash = member(server.addr, "/chat/lobby/");
    wait_rooms(
        &server,
        &[
            ("/chat", 1),
            ("/chat/a/b", 1),
            ("/chat/lobby", 2),
            ("/chat/lobby/", 1),
        ],
    );
    for path in ["/chatter", "/", "/other/chat/x"] {
        let a = http(server.addr, &upgrade_request(path, ""));
        assert!(
            a.starts_with("HTTP/1.1 404 ") && a.ends_with(&format!(
                "Nothing is served at {path}; the WebSocket rooms are /chat and the paths under /chat/.\n"
            )),
            "{path}: {a}"
        );
    }
}

#[test]
fn each_room_has_one_order_with_concurrent_senders() {
    const PER_ROOM: usize = 3;
    const SENDERS: usize = 2;
    const EACH: usize = 150;
    let server = rooms(config().max_backlog(16 << 20));
    let names = ["/r/0", "/r/1"];
    let sockets: Vec<Vec<TcpStream>> = names
        .iter()
        .map(|p| (0..PER_ROOM).map(|_| member(server.addr, p)).collect())
        .collect();
    wait_rooms(&server, &[("/r/0", PER_ROOM), ("/r/1", PER_ROOM)]);

    let total = SENDERS * EACH; // what each member must get: its own room's messages
    let mut readers = Vec::new();
    for (r, members) in sockets.iter().enumerate() {
        for s in members {
            let mut s = s.try_clone().unwrap();
            readers.push((
                r,
                thread::spawn(move || (0..total).map(|_| next_text(&mut s)).collect::<Vec<_>>()),
            ));
        }
    }
    let mut senders = Vec::new();
    for (r, members) in sockets.iter().enumerate() {
        for (n, s) in members.iter().take(SENDERS).enumerate() {
            let mut s = s.try_clone().unwrap();
            senders.push(thread::spawn(move || {
                for k in 0..EACH {
                    send_text(&mut s, &format!("room {r} sender {n} message {k}"));
                }
            }));
        }
    }
    for t in senders {
        t.join().unwrap();
    }
    let mut orders: HashMap<usize, Vec<String>> = HashMap::new();
    for (r, t) in readers {
        let got = t.join().unwrap();
        for m in &got {
            assert!(m.starts_with(&format!("room {r} ")), "room {r} got {m:?}");
        }
        for n in 0..SENDERS {
            let mine: Vec<String> = got
                .iter()
                .filter(|m| m.starts_with(&format!("room {r} sender {n} ")))
                .cloned()
                .collect();
            let want: Vec<String> = (0..EACH)
                .map(|k| format!("room {r} sender {n} message {k}"))
                .collect();
            assert_eq!(mine, want, "room {r}, sender {n}: in its order");
        }
        match orders.get(&r) {
            Some(first) => assert_eq!(&got, first, "room {r}: one order for every member"),
            None => {
                orders.insert(r, got);
            }
        }
    }
    assert_eq!(orders.len(), 2);
}

#[test]
fn an_empty_room_is_gone() {
    let server = rooms(config());
    let mut a = member(server.addr, "/gone");
    let b = member(server.addr, "/stays");
    wait_rooms(&server, &[("/gone", 1), ("/stays", 1)]);
    a.write_all(&frame(true, 0x8, &close_payload(1000, "bye")))
        .unwrap();
    assert_eq!(expect_close(&mut a), 1000);
    wait_rooms(&server, &[("/stays", 1)]);
    assert_eq!(server.handle().broadcast_to("/gone", Message::text("x")), 0);
    drop(b);
    wait_rooms(&server, &[]);
    assert_eq!(server.handle().members(), 0);
    // A new member of that path makes the room again.
    let _again = member(server.addr, "/gone");
    wait_rooms(&server, &[("/gone", 1)]);
}

#[test]
fn plain_broadcast_mode_has_one_room_for_every_path() {
    let server = start(config().broadcast(true));
    let mut a = member(server.addr, "/chat/a");
    let mut b = member(server.addr, "/chat/b");
    let deadline = Instant::now() + TIMEOUT;
    while server.handle().members() != 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    send_text(&mut a, "to everyone");
    assert_eq!(next_text(&mut a), "to everyone");
    assert_eq!(next_text(&mut b), "to everyone");
    assert!(server.handle().rooms().is_empty(), "no rooms per path");
    assert_eq!(
        server.handle().broadcast_to("/chat/a", Message::text("x")),
        0
    );
}

#[test]
fn the_binary_serves_rooms_under_its_path() {
    let mut p = Proc::start(BIN, &["--rooms", "--path", "/chat"]);
    let settings = p.wait_log("settings: ");
    assert!(settings.contains(" path=/chat "), "{settings}");
    assert!(settings.contains(" mode=rooms max-backlog="), "{settings}");
    let mut a = member(p.addr, "/chat/lobby");
    let line = p.wait_log("opened /chat/lobby");
    assert!(
        line.ends_with("opened /chat/lobby, 1 in the room"),
        "{line}"
    );
    let mut b = member(p.addr, "/chat/42");
    let line = p.wait_log("opened /chat/42");
    assert!(line.ends_with("opened /chat/42, 1 in the room"), "{line}");
    send_text(&mut b, "only 42");
    assert_eq!(next_text(&mut b), "only 42");
    send_text(&mut a, "only lobby");
    assert_eq!(next_text(&mut a), "only lobby");
}
