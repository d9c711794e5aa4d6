//! The write floor: `write_timeout` bounds how long a client may keep writes to it waiting
//! per 16 KiB it takes, not each `write` call. A client that reads a trickle (200 bytes
//! every 100 ms: progress within every write call's timeout, a quarter of 16 KiB per
//! timeout) is cut within a small multiple of the timeout: an echo reply, a static
//! download, and in echo mode the `--stdin` lines, which must not wait for it longer than
//! that. One that reads at 2.5 times the floor is not cut.
//!
//! Linux only: the trickle needs a client socket with a small receive buffer and a small
//! segment size, set before it connects (libc), so that the server sees its progress in
//! steps of a few hundred bytes, as on a slow link.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[cfg(feature = "pipes")]
use common::process::{Proc, Stdout};
use common::*;
#[cfg(feature = "pipes")]
use tinyws::Message;

#[cfg(feature = "pipes")]
const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// The write timeout of every server here: short, so the tests are, with 2-3× headroom
/// in every bound (measured: cut after 2.0-2.2 s). The floor is then 16 KiB per 2 s.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The trickle: this many bytes per read, one read every [`TICK`]: about 2 KB/s, a
/// quarter of the floor, and enough for the server to see progress within every write
/// timeout: a timeout per `write` call did not cut it in 12 s.
const TRICKLE: usize = 200;
const TICK: Duration = Duration::from_millis(100);

/// After a static answer is cut the server still reads (and drops) what the client
/// sends for up to a second before the connection ends (response.rs `DRAIN_FOR`).
#[cfg(feature = "static")]
const DRAIN: Duration = Duration::from_secs(1);

/// A TCP connection to `addr` whose receive buffer is `rcvbuf` bytes (the kernel doubles
/// it) and whose segments carry at most 536 bytes (TCP_MAXSEG, the IPv4 minimum every
/// host accepts, RFC 9293 §3.7.1): the server's writes then see this client's reads in
/// small steps instead of 64 KiB loopback segments.
#[allow(unsafe_code)]
fn narrow_socket(addr: SocketAddr, rcvbuf: i32) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("the test servers listen on 127.0.0.1")
    };
    // SAFETY: a new socket; on success the descriptor is ours to own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just opened and nothing else owns it: the stream closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let set = |level, name, value: libc::c_int| {
        // SAFETY: the pointer and length describe `value`, which outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
    };
    set(libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf);
    set(libc::IPPROTO_TCP, libc::TCP_MAXSEG, 536);
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: the pointer and length describe `sa`, which outlives the call.
    let rc = unsafe {
        libc::connect(
            fd,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// What a paced reader saw.
#[derive(Debug)]
struct Reading {
    /// Bytes read.
    got: usize,
    /// When `cut` said the server gave up on it, since the reading began; `None` if it
    /// did not within the limit, or `done` came first.
    cut: Option<Duration>,
    /// How long the reading went on.
    took: Duration,
}

/// Reads at most `per_tick` bytes every [`TICK`] until `cut()` says the server gave up on
/// this client, `got` reaches `done`, or `limit` passes. `cut` is asked at every tick: the
/// server's own view, because its send buffer still holds bytes the trickle would take
/// seconds to read before it could see the end.
fn read_paced(
    s: &mut TcpStream,
    per_tick: usize,
    done: usize,
    limit: Duration,
    mut cut: impl FnMut() -> bool,
) -> Reading {
    s.set_read_timeout(Some(TICK)).unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; per_tick];
    let mut got = 0;
    let mut eof = false;
    while start.elapsed() < limit && got < done {
        if cut() {
            return Reading {
                got,
                cut: Some(start.elapsed()),
                took: start.elapsed(),
            };
        }
        if !eof {
            match s.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => eof = true,
            }
        }
        // The pace of the trickle itself: what is under test is how the server meets it.
        std::thread::sleep(TICK);
    }
    Reading {
        got,
        cut: None,
        took: start.elapsed(),
    }
}

/// The server must have cut the trickle within 3× the write timeout (plus `extra`) of the
/// reading's start: its socket buffers fill at once, then the first 16 KiB it cannot
/// take in time ends it.
fn assert_cut_in_time(what: &str, r: &Reading, extra: Duration) {
    eprintln!("{what}: {r:?}");
    let cut = r.cut.unwrap_or_else(|| {
        panic!(
            "{what}: a reader taking about {} B/s, far below 16 KiB per write timeout ({WRITE_TIMEOUT:?}), \
             was still served after {:?} ({} bytes read)",
            TRICKLE as u64 * 1000 / TICK.as_millis() as u64,
            r.took,
            r.got
        )
    });
    assert!(
        cut <= 3 * WRITE_TIMEOUT + extra,
        "{what}: cut only after {cut:?} ({} bytes read)",
        r.got
    );
}

/// The largest message here: 256 chunks of 16 KiB, far more than the server's socket
/// buffer takes, even grown.
const SIZE: usize = 4 << 20;

/// Sends a 4 MiB message to an echo server with `write_timeout` over a narrow socket with
/// this receive buffer, then reads its echo `per_tick` bytes at a time for at most
/// `limit`, until the server gives up on the connection.
fn read_a_large_echo(
    write_timeout: Duration,
    rcvbuf: i32,
    per_tick: usize,
    limit: Duration,
) -> Reading {
    let server = start(
        config()
            .write_timeout(write_timeout)
            .max_message_size(SIZE)
            .max_frame_size(SIZE),
    );
    let mut s = narrow_socket(server.addr, rcvbuf);
    s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    s.write_all(&frame(true, 0x2, &vec![0x5a; SIZE])).unwrap();
    assert_eq!(server.wait_connections(1), 1);
    read_paced(&mut s, per_tick, usize::MAX, limit, || {
        server.connections() == 0
    })
}

#[test]
fn a_trickling_reader_of_a_large_echo_is_cut_within_the_write_timeout() {
    let r = read_a_large_echo(WRITE_TIMEOUT, 2048, TRICKLE, 6 * WRITE_TIMEOUT);
    assert_cut_in_time("echo of 4 MiB", &r, Duration::ZERO);
}

/// Broadcast mode: a member that reads a trickle makes progress, so the room's stall rule
/// (no progress for 1 s) never cuts it and the room would go at its pace; the floor cuts
/// it, in its writer thread.
#[test]
fn a_trickling_room_member_is_cut_within_the_write_timeout() {
    let server = start(config().broadcast(true).write_timeout(WRITE_TIMEOUT));
    let mut slow = narrow_socket(server.addr, 2048);
    slow.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    assert!(read_head(&mut slow).starts_with("HTTP/1.1 101 "));
    let sender = upgraded(server.addr);
    assert_eq!(server.wait_connections(2), 2);
    // The sender floods 16 KiB messages and reads (drops) its own copies, until the end.
    let done = Arc::new(AtomicBool::new(false));
    let flood = {
        let (mut to, done) = (sender.try_clone().unwrap(), done.clone());
        std::thread::spawn(move || {
            let message = frame(true, 0x2, &[0x33; 16 * 1024]);
            while !done.load(Ordering::Relaxed) && to.write_all(&message).is_ok() {}
        })
    };
    let copies = {
        let (mut from, done) = (sender.try_clone().unwrap(), done.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !done.load(Ordering::Relaxed) && from.read(&mut buf).is_ok_and(|n| n > 0) {}
        })
    };
    let r = read_paced(&mut slow, TRICKLE, usize::MAX, 6 * WRITE_TIMEOUT, || {
        server.connections() < 2
    });
    done.store(true, Ordering::Relaxed);
    assert_cut_in_time("room member", &r, Duration::ZERO);
    let _ = sender.shutdown(std::net::Shutdown::Both);
    flood.join().unwrap();
    copies.join().unwrap();
}

/// The same over `wss://`: the TLS session writes its records through the same floor.
/// The trickle reads the ciphertext straight from the socket.
#[cfg(feature = "tls")]
#[test]
fn a_trickling_reader_of_a_large_wss_echo_is_cut_within_the_write_timeout() {
    let dir = std::env::temp_dir().join(format!("tinyws-write-rate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = test_certificate(&dir);
    let server = start(
        config()
            .tls_cert(cert)
            .tls_key(key)
            .write_timeout(WRITE_TIMEOUT)
            .max_message_size(SIZE)
            .max_frame_size(SIZE),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let mut tls = common::tls::tls_client_over(narrow_socket(server.addr, 2048));
    tls.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tls.read(&mut byte).unwrap(), 1, "the server closed");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    tls.write_all(&frame(true, 0x2, &vec![0x5a; SIZE])).unwrap();
    tls.flush().unwrap();
    assert_eq!(server.wait_connections(1), 1);
    let r = read_paced(
        &mut tls.sock,
        TRICKLE,
        usize::MAX,
        6 * WRITE_TIMEOUT,
        || server.connections() == 0,
    );
    assert_cut_in_time("wss echo of 4 MiB", &r, Duration::ZERO);
}

/// The floor is a floor, not a stall timeout: a reader at 5× it (40 KB/s, 4 KiB every
/// 100 ms; at 2.5× a loaded machine's pauses came too close) keeps a large echo going,
/// the server's writes waiting on it all along. (A first version that only counted what
/// a write call wrote cut it after 3 s: Linux wakes a blocked writer only once a third
/// of its grown send buffer is free.)
#[test]
fn a_reader_at_a_few_times_the_floor_keeps_a_large_echo_going() {
    let r = read_a_large_echo(WRITE_TIMEOUT, 16 * 1024, 4096, 3 * WRITE_TIMEOUT);
    eprintln!("steady reader: {r:?}");
    assert!(r.cut.is_none(), "cut: {r:?}");
    assert!(r.got >= 64 * 1024, "it kept reading: {r:?}");
}

/// A directory with one large file, removed on drop.
#[cfg(feature = "static")]
struct Site(std::path::PathBuf);

#[cfg(feature = "static")]
impl Site {
    fn new(name: &str, size: usize) -> Site {
        let dir =
            std::env::temp_dir().join(format!("tinyws-write-rate-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.bin"), vec![0x42; size]).unwrap();
        Site(dir)
    }
}

#[cfg(feature = "static")]
impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GETs `/big.bin` over a narrow socket and reads the head.
#[cfg(feature = "static")]
fn download(addr: SocketAddr, rcvbuf: i32) -> TcpStream {
    let mut s = narrow_socket(addr, rcvbuf);
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 200 "));
    s
}

#[cfg(feature = "static")]
#[test]
fn a_trickling_static_download_is_cut_within_the_write_timeout() {
    let site = Site::new("trickle", 4 << 20);
    let server = start(config().write_timeout(WRITE_TIMEOUT).static_dir(&site.0));
    let mut s = download(server.addr, 2048);
    let r = read_paced(&mut s, TRICKLE, usize::MAX, 6 * WRITE_TIMEOUT, || {
        server.connections() == 0
    });
    assert_cut_in_time("static download of 4 MiB", &r, DRAIN);
}

/// In echo mode each `--stdin` line is written to every client in turn: `slow` (connected
/// first) must not hold the lines up for `fast` longer than about the write timeout,
/// once. `per_tick`: how `slow` reads (0: never); `slow_clients`: how many such clients
/// (one machine may open many sockets: together they must not hold the lines up longer
/// than one does). The bound is 2× here, not 3×: with a
/// timeout per `write` call a client that reads nothing held them up 2.95× (a call that
/// wrote part of a line, then two more), and a trickle more and more.
#[cfg(feature = "pipes")]
fn stdin_lines_are_not_held_up_by(per_tick: usize, slow_clients: usize) {
    let timeout = format!("{}ms", WRITE_TIMEOUT.as_millis());
    let mut p = Proc::start_piped(BIN, &["--stdin", "--write-timeout", &timeout], Stdout::Null);
    let mut slow = narrow_socket(p.addr, 2048);
    slow.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    assert!(read_head(&mut slow).starts_with("HTTP/1.1 101 "));
    p.wait_log("opened /");
    // The others, connected before `fast` too, never read.
    let mut others = Vec::new();
    for _ in 1..slow_clients {
        let mut other = narrow_socket(p.addr, 2048);
        other
            .write_all(upgrade_request("/", "").as_bytes())
            .unwrap();
        assert!(read_head(&mut other).starts_with("HTTP/1.1 101 "));
        p.wait_log("opened /");
        others.push(other);
    }
    let mut fast = ws(p.addr, "/");
    p.wait_log("opened /");
    // 1000-byte lines every 10 ms: 100 KB/s, 50 times what the trickle takes, and more
    // than the server's send buffer for it can grow to meanwhile.
    const LINES: usize = 800;
    const EVERY: Duration = Duration::from_millis(10);
    let mut stdin = p.stdin.take().expect("stdin");
    let start = Instant::now();
    let feeder = std::thread::spawn(move || {
        let pad = "s".repeat(994);
        for i in 0..LINES {
            let due = start + EVERY * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if writeln!(stdin, "{i:05}{pad}").is_err() {
                return;
            }
        }
    });
    // `slow` reads (or not) until every line reached `fast`.
    let done = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let done = done.clone();
        move || {
            if per_tick > 0 {
                read_paced(&mut slow, per_tick, usize::MAX, 4 * TIMEOUT, || {
                    done.load(Ordering::Relaxed)
                });
            }
            slow
        }
    });
    // How late each line reaches `fast`, against when it was due on stdin.
    let mut worst = Duration::ZERO;
    for i in 0..LINES {
        let text = match fast.read() {
            Ok(Message::Text(t)) => t,
            other => panic!(
                "line {i} did not reach the other client ({other:?}) {:?} after it was due ({slow_clients} slow client(s))",
                Instant::now().saturating_duration_since(start + EVERY * i as u32)
            ),
        };
        assert!(text.starts_with(&format!("{i:05}")), "line {i}: {text}");
        let late = Instant::now().saturating_duration_since(start + EVERY * i as u32);
        worst = worst.max(late);
        assert!(
            late <= 2 * WRITE_TIMEOUT,
            "line {i} reached the other client {late:?} after it was due (trickle of {per_tick} bytes per {TICK:?}, {slow_clients} slow client(s))"
        );
    }
    eprintln!("stdin, slow client reading {per_tick} bytes per tick: worst delay {worst:?}");
    done.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let cut = p.wait_log("could not be written");
    assert!(cut.contains("write timed out"), "{cut}");
    drop(reader.join().unwrap());
    drop(others);
}

#[cfg(feature = "pipes")]
#[test]
fn stdin_lines_are_not_held_up_by_a_trickling_reader() {
    stdin_lines_are_not_held_up_by(TRICKLE, 1);
}

#[cfg(feature = "pipes")]
#[test]
fn stdin_lines_are_not_held_up_by_a_client_that_reads_nothing() {
    stdin_lines_are_not_held_up_by(0, 1);
}

/// Each line goes to the clients one after the other, each write bounded by the write
/// timeout: five sockets that read nothing, opened before the others, would hold every
/// line up five write timeouts (measured: 10 s under 2 s, 20 s with ten sockets).
#[cfg(feature = "pipes")]
#[test]
fn stdin_lines_are_not_held_up_by_several_clients_that_read_nothing() {
    stdin_lines_are_not_held_up_by(0, 5);
}
