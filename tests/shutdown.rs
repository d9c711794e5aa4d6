//! Graceful shutdown, every path (README "Graceful shutdown"): the port closes first, each
//! upgraded client gets a close 1001 (RFC 6455 §7.4.1, "going away"), connections still
//! in their handshake are cut at once, and a client that never answers the 1001 is cut
//! when `--shutdown-timeout` runs out; the process still exits 0.

// Some tests need Unix signals or Linux /proc and are gated; elsewhere their helpers
// are unused.
#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::process::Proc;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

fn refused(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

/// A client that reads the 1001 but never answers it: the server waits the shutdown
/// timeout, then cuts the connection and `run` returns. (Without the cut, the
/// connection's thread would sit in its read until keepalive, long after the server
/// said it had stopped, and this client would see no end of the connection.)
#[test]
fn a_client_that_never_answers_the_1001_is_cut_when_the_shutdown_timeout_runs_out() {
    let server = start(config().shutdown_timeout(Duration::from_millis(500)));
    let handle = server.handle().clone();
    let mut silent = upgraded(server.addr);
    // One echo: the connection is in its read loop (past the handshake's own check for a
    // shutdown, which closes at once), and from now on the client says nothing.
    silent.write_all(&frame(true, 0x1, b"hi")).unwrap();
    assert_eq!(read_frame(&mut silent), (0x81, b"hi".to_vec()));
    let (done_tx, done) = mpsc::channel();
    let started = Instant::now();
    let stopper = thread::spawn(move || {
        let _ = done_tx.send(server.stop());
    });
    // The client reads, so the 1001 arrives; it never sends the close reply. The end of
    // the connection comes when the timeout runs out, not at once.
    assert_eq!(expect_close(&mut silent), 1001);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "cut after {:?}, before the 500 ms shutdown timeout",
        started.elapsed()
    );
    let stopped = done
        .recv_timeout(TIMEOUT)
        .expect("stop() returned after the shutdown timeout");
    stopper.join().unwrap();
    assert_eq!(handle.connections(), 0, "no connection outlives the server");
    // stop() says so: one connection, cut by the timeout.
    assert_eq!((stopped.connections, stopped.cut), (1, 1), "{stopped}");
    assert!(!stopped.is_clean());
    assert_eq!(
        stopped.to_string(),
        "stopped: 1 of 1 connection(s) did not close within the shutdown timeout and were cut"
    );
}

/// The same through the binary and SIGTERM: the port is closed while shutdown waits
/// for clients, the log says who was cut and after how long, the exit code is 0.
#[cfg(unix)]
#[test]
fn sigterm_with_a_client_that_never_answers_closes_the_port_then_cuts_it_and_exits_0() {
    silent_client_at_sigterm(&[]);
}

/// In broadcast mode the member's writer sends the 1001; the wait for the answer is
/// still the shutdown timeout's (not the one second an evicted member gets).
#[cfg(unix)]
#[test]
fn in_broadcast_mode_too_a_member_that_never_answers_is_cut_at_the_shutdown_timeout() {
    silent_client_at_sigterm(&["--broadcast"]);
}

#[cfg(unix)]
fn silent_client_at_sigterm(args: &[&str]) {
    let mut p = Proc::start(BIN, &[args, &["--shutdown-timeout", "2s"][..]].concat());
    let mut silent = upgraded(p.addr);
    p.wait_log("opened");
    p.signal("-TERM");
    p.wait_log("shutting down: sending close 1001 to 1 connection(s)");
    // Still waiting for the silent client (2 s): no new client gets in meanwhile.
    assert!(refused(p.addr), "the port still accepts during shutdown");
    let line = p.wait_log("did not close within");
    assert!(
        line.contains("1 connection(s) did not close within 2s; cutting them"),
        "{line}"
    );
    assert_eq!(expect_close(&mut silent), 1001);
    assert_eq!(p.wait_exit(TIMEOUT), Some(0));
}

/// A connection still sending its request head when shutdown starts is cut at once:
/// no 101, no 408, and the server does not wait for it (here the shutdown timeout is
/// 60 s and the handshake timeout 60 s: waiting for either fails the test's 5 s limit).
#[cfg(unix)]
#[test]
fn a_connection_in_its_handshake_at_shutdown_is_cut_at_once() {
    let mut p = Proc::start(
        BIN,
        &["--shutdown-timeout", "60s", "--handshake-timeout", "60s"],
    );
    let mut half = tcp(p.addr);
    half.write_all(b"GET / HTTP/1.1\r\nHost: loc").unwrap();
    // An upgraded client too, so the shutdown has a 1001 to send and its log line.
    let mut upgraded_client = ws(p.addr, "/");
    upgraded_client
        .send(tinyws::Message::text("in the room"))
        .unwrap();
    assert_eq!(
        upgraded_client.read().unwrap(),
        tinyws::Message::text("in the room")
    );
    p.signal("-TERM");
    assert!(
        read_to_end(&mut half).is_empty(),
        "a half-sent head gets no answer at shutdown"
    );
    match upgraded_client.read() {
        Ok(tinyws::Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    // tungstenite answers the close on the next read; then the server ends the
    // connection and, with nobody left, the process.
    loop {
        match upgraded_client.read() {
            Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(e) => panic!("unclean end after 1001: {e}"),
        }
    }
    assert_eq!(p.wait_exit(TIMEOUT), Some(0));
}
