//! Timeouts that keep a stuck or vanished client from holding a thread forever:
//! keepalive ping with a pong deadline, and the write timeout.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use tinyws::Message;

#[test]
fn a_silent_peer_is_pinged_and_closed_when_no_pong_comes() {
    let server = start(
        config()
            .ping_interval(Duration::from_millis(300))
            .ping_timeout(Duration::from_millis(300)),
    );
    let mut s = upgraded(server.addr);
    let started = Instant::now();
    assert_eq!(
        read_frame(&mut s),
        (0x89, b"tinyws".to_vec()),
        "keepalive ping"
    );
    // Never answer: the server gives up after the pong deadline and closes TCP.
    assert!(read_to_end(&mut s).is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.wait_connections(0), 0);
}

#[test]
fn a_peer_that_answers_pings_stays_connected() {
    let server = start(
        config()
            .ping_interval(Duration::from_millis(200))
            // Generous: the test thread must answer each ping in time on a loaded machine.
            .ping_timeout(Duration::from_secs(3)),
    );
    let mut s = upgraded(server.addr);
    for _ in 0..4 {
        let (first, payload) = read_frame(&mut s);
        assert_eq!(first, 0x89);
        s.write_all(&frame(true, 0xa, &payload)).unwrap();
    }
    s.write_all(&frame(true, 0x1, b"alive")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"alive".to_vec()));
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let server = start(
        config()
            .write_timeout(Duration::from_millis(300))
            .max_message_size(1 << 20)
            .max_frame_size(1 << 20),
    );
    let mut good = ws(server.addr, "/");
    let mut s = upgraded(server.addr);
    let msg = frame(true, 0x2, &vec![0x5a; 512 * 1024]);
    // Loopback socket buffers hold a few MiB; 200 × 512 KiB cannot all fit, so the
    // server's echo blocks, times out, and the server drops us: our writes then fail.
    let mut failed = false;
    for _ in 0..200 {
        if s.write_all(&msg).is_err() {
            failed = true;
            break;
        }
    }
    assert!(
        failed,
        "the server kept accepting from a client that never reads"
    );
    assert_eq!(
        server.wait_connections(1),
        1,
        "only the good client is left"
    );
    good.send(Message::text("fine")).unwrap();
    assert_eq!(good.read().unwrap(), Message::text("fine"));
}

#[test]
fn many_idle_connections_that_never_send_are_all_released() {
    let server = start(config().handshake_timeout(Duration::from_millis(300)));
    let idle: Vec<_> = (0..100).map(|_| tcp(server.addr)).collect();
    let mut good = ws(server.addr, "/");
    good.send(Message::text("served")).unwrap();
    assert_eq!(good.read().unwrap(), Message::text("served"));
    // Each idle socket is cut at its handshake deadline; wait (bounded) for all of them.
    assert_eq!(server.wait_connections(1), 1);
    drop(idle);
}

/// `--ping-interval 0` turns keepalive off: an idle connection gets no ping however long
/// it is quiet (here 2.5 s, past the one wake-up a second into the quiet, at which the
/// server gives back memory), and still echoes afterwards.
#[test]
fn with_ping_interval_0_an_idle_connection_is_never_pinged() {
    let server = start(
        config()
            .ping_interval(Duration::ZERO)
            // Short, so a read timeout left over from the head (the rest of this deadline)
            // would show within the wait below: an "interval" of 0 taken as a timer did.
            .handshake_timeout(Duration::from_secs(1)),
    );
    let mut s = upgraded(server.addr);
    s.set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut s, &mut byte) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?} ({byte:?})"),
    }
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(&frame(true, 0x1, b"still here")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"still here".to_vec()));
}
