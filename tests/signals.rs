//! The library scene: `shutdown_on_signals` for several servers in one
//! process. A server stopped from code is left out; a signal then still gives the other
//! server's clients their close 1001 instead of ending the process (it used to exit at
//! once with 130: the stopped server's watcher took the signal for a second one).
//!
//! Its own test binary: it sends SIGINT to itself, so no other test may share the
//! process.

#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use tinyws::{Echo, Server};

#[test]
fn a_signal_shuts_down_the_servers_still_running_and_spares_the_process() {
    let aux = Server::bind(config(), Echo).unwrap();
    aux.handle().shutdown_on_signals().unwrap();
    let aux = aux.spawn().unwrap();
    let chat = Server::bind(config(), Echo).unwrap();
    chat.handle().shutdown_on_signals().unwrap();
    chat.handle().shutdown_on_signals().unwrap(); // twice: the same as once
    let addr = chat.local_addr();
    let chat = chat.spawn().unwrap();
    // One server stopped from code; the other serves on.
    let _ = aux.stop();
    let mut client = ws(addr, "/");
    client.send(tungstenite::Message::text("hi")).unwrap();
    assert_eq!(client.read().unwrap(), tungstenite::Message::text("hi"));

    let me = std::process::id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &me])
            .status()
            .unwrap()
            .success()
    );
    // The running server shuts down: its client gets 1001 (and this process lives on to
    // read it: a watcher that exits at once ends the test with status 130).
    let _ = client
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)));
    match client.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    let _ = client.close(None);
    let stopped = chat.join();
    assert_eq!(stopped.connections, 1, "{stopped}");
}
