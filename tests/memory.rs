//! Out of memory is a 503, never a crash: the real binary under a hard
//! address-space limit (`prlimit --as`, as on a 32-bit board or under `ulimit -v`) with a
//! `--max-connections` far too large for it. The server must say at startup what does
//! not fit, answer the clients beyond that with 503, keep serving the others even when
//! every one of them sends a message of the largest size at once, and give back every
//! thread and file descriptor afterwards. Before the fix it aborted (`memory allocation
//! of 7 bytes failed`) at about 350 echo or 215 broadcast connections under 256 MiB.
//!
//! Linux only (prlimit is util-linux; /proc for threads and fds); loopback only, a few
//! hundred clients at most.
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use common::process::Proc;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// 128 MiB of address space: the echo budget is about 300 connections, the broadcast
/// budget about 110 (with the default caps).
const LIMIT: u64 = 128 << 20;

fn have_prlimit() -> bool {
    required("prlimit (util-linux)", runs("prlimit", &["--version"]))
}

fn under_limit(args: &[&str]) -> Proc {
    let limit = format!("--as={LIMIT}");
    Proc::start_wrapped(&["prlimit", &limit], BIN, args)
}

/// Sets the running server's soft address-space limit (`prlimit --pid`). The soft limit
/// only (`soft:`): lifting a lowered hard limit again needs CAP_SYS_RESOURCE.
fn set_soft_as_limit(pid: u32, limit: &str) {
    let ok = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--as={limit}:")])
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit --pid");
}

/// What the server answered an upgrade request.
enum Answer {
    Upgraded(TcpStream),
    Refused { head: String, body: String },
}

fn connect(addr: SocketAddr) -> Answer {
    let mut s = tcp(addr);
    s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    let head = read_head(&mut s);
    if head.starts_with("HTTP/1.1 101 ") {
        return Answer::Upgraded(s);
    }
    let body = String::from_utf8(read_to_end(&mut s)).expect("utf-8 body");
    Answer::Refused { head, body }
}

/// The number in "clients beyond N get 503" of the startup warning.
fn fit_from(line: &str) -> usize {
    line.split("clients beyond ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// Opens `n` clients one after another: (upgraded, refused answers).
fn open(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, Vec<(String, String)>) {
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..n {
        match connect(addr) {
            Answer::Upgraded(s) => held.push(s),
            Answer::Refused { head, body } => refused.push((head, body)),
        }
    }
    (held, refused)
}

fn assert_refused_for_memory(refused: &[(String, String)], expected: usize) {
    assert_eq!(refused.len(), expected, "clients over the budget");
    for (head, body) in refused {
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("Retry-After: 1\r\n"), "{head}");
        assert_eq!(
            body,
            "The server has no memory left for another connection; try again shortly.\n"
        );
    }
}

#[test]
fn echo_past_the_memory_budget_gets_503_and_the_rest_echo_their_largest_messages() {
    if !have_prlimit() {
        return;
    }
    let mut p = under_limit(&["--max-connections", "1000"]);
    let line = p.wait_log("memory budget: max_connections (--max-connections) 1000 does not fit");
    assert!(line.contains("address-space limit"), "{line}");
    assert!(
        line.contains("Lower max_connections (--max-connections) to"),
        "{line}"
    );
    let fit = fit_from(&line);
    assert!((100..1000).contains(&fit), "{line}");
    let baseline = p.resources();

    let (mut held, refused) = open(p.addr, fit + 100);
    assert_eq!(held.len(), fit, "connections held");
    assert_refused_for_memory(&refused, 100);

    // The worst case the budget is for: every held client sends a message of the largest
    // size (64 KiB) before any of them reads its echo. It must all fit.
    let payload: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let message = frame(true, 0x2, &payload);
    for s in &mut held {
        s.write_all(&message).unwrap();
    }
    for s in &mut held {
        assert_eq!(read_frame(s), (0x82, payload.clone()));
    }
    assert!(p.is_alive(), "tinyws died under the limit");
    let peak = p.status_bytes("VmPeak");
    eprintln!(
        "echo: {} held, {} refused, VmPeak {:.1} MiB of {} MiB",
        held.len(),
        refused.len(),
        peak as f64 / f64::from(1 << 20),
        LIMIT >> 20
    );
    assert!(peak as u64 <= LIMIT);

    drop(held);
    assert_eq!(p.settle(baseline), baseline, "threads and fds after");
    // And the room is there again.
    let Answer::Upgraded(mut s) = connect(p.addr) else {
        panic!("refused after every client left");
    };
    s.write_all(&frame(true, 0x1, b"again")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"again".to_vec()));
}

#[test]
fn broadcast_past_the_memory_budget_gets_503_and_the_room_carries_on() {
    if !have_prlimit() {
        return;
    }
    let mut p = under_limit(&["--broadcast", "--max-connections", "1000"]);
    let line = p.wait_log("memory budget: max_connections (--max-connections) 1000 does not fit");
    assert!(
        line.contains("max_backlog (--max-backlog) (256KiB, counted twice)"),
        "{line}"
    );
    let fit = fit_from(&line);
    assert!((50..1000).contains(&fit), "{line}");
    let baseline = p.resources();

    let (mut held, refused) = open(p.addr, fit + 50);
    assert_eq!(held.len(), fit, "members held");
    assert_refused_for_memory(&refused, 50);

    // A chat line and a message of the largest size reach every member.
    let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 241) as u8).collect();
    held[0].write_all(&frame(true, 0x1, b"hello")).unwrap();
    held[1].write_all(&frame(true, 0x2, &big)).unwrap();
    for s in &mut held {
        let mut got = vec![read_frame(s), read_frame(s)];
        got.sort();
        assert_eq!(got, vec![(0x81, b"hello".to_vec()), (0x82, big.clone())]);
    }
    assert!(p.is_alive(), "tinyws died under the limit");
    eprintln!(
        "broadcast: {} held, {} refused, VmPeak {:.1} MiB of {} MiB",
        held.len(),
        refused.len(),
        p.status_bytes("VmPeak") as f64 / f64::from(1 << 20),
        LIMIT >> 20
    );

    drop(held);
    assert_eq!(p.settle(baseline), baseline, "threads and fds after");
}

/// The promise (docs/reference.md, answers) for a thread that cannot be started: the
/// client gets 503, the server and its other clients carry on. The limit is lowered under the running server
/// (`prlimit --pid`), below what one more thread stack needs, so the budget computed at
/// startup cannot see it coming and the spawn itself fails.
#[test]
fn a_thread_that_cannot_start_is_a_503_and_the_others_carry_on() {
    if !have_prlimit() {
        return;
    }
    let mut p = Proc::start(BIN, &[]);
    let baseline = p.resources();
    let mut held: Vec<TcpStream> = (0..20).map(|_| upgraded(p.addr)).collect();
    // Room for small allocations, not for a 128 KiB stack and its guard page.
    let tight = p.status_bytes("VmSize") + 64 * 1024;
    let pid = p.pid();
    let set = |limit: &str| set_soft_as_limit(pid, limit);
    set(&tight.to_string());
    for _ in 0..3 {
        // The answer comes at once, without reading a request: send none, so closing
        // leaves nothing unread (which would reset the connection and lose the answer).
        let mut s = tcp(p.addr);
        let answer = String::from_utf8(read_to_end(&mut s)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("Retry-After: 1\r\n"), "{answer}");
        assert!(
            answer.ends_with(
                "\r\n\r\nThe server cannot start a thread for another connection right now; try again shortly.\n"
            ),
            "{answer}"
        );
        p.wait_log("cannot start a thread");
    }
    for s in &mut held {
        s.write_all(&frame(true, 0x1, b"still here")).unwrap();
        assert_eq!(read_frame(s), (0x81, b"still here".to_vec()));
    }
    assert!(p.is_alive());
    set("unlimited");
    let Answer::Upgraded(mut s) = connect(p.addr) else {
        panic!("refused once the limit was lifted");
    };
    s.write_all(&frame(true, 0x1, b"again")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"again".to_vec()));
    drop(s);
    drop(held);
    assert_eq!(p.settle(baseline), baseline, "threads and fds after");
}

/// Broadcast mode, after the handshake: a member whose writer thread cannot start is
/// closed with 1013 "try again later" (docs/reference.md, close codes), and the room
/// carries on. The connection thread itself is one that a client which just left hands on
/// (tune/threads.rs), so only the writer needs a new stack, and the lowered limit leaves no
/// room for one.
#[test]
fn a_member_whose_writer_cannot_start_gets_1013_and_the_room_carries_on() {
    if !have_prlimit() {
        return;
    }
    let mut p = Proc::start(BIN, &["--broadcast"]);
    let mut member = upgraded(p.addr);
    p.wait_log("opened");
    // A page request that comes and goes: its thread then waits 2 s for the next
    // connection (tune/threads.rs). A page, not a member: a member's writer would leave its
    // stack in glibc's cache of thread stacks, and the next writer would reuse it.
    let page = http(p.addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    // Room for small allocations, not for a 64 KiB writer stack and its guard page.
    let tight = p.status_bytes("VmSize") + 64 * 1024;
    let pid = p.pid();
    let set = |limit: &str| set_soft_as_limit(pid, limit);
    set(&tight.to_string());
    // The page's thread may not be back in the pool yet: then this client gets the
    // 503 of a thread that cannot start, and tries again (bounded).
    let mut tries = 0;
    let (mut late, head) = loop {
        let mut s = tcp(p.addr);
        s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
        let head = read_head(&mut s);
        tries += 1;
        if !head.starts_with("HTTP/1.1 503 ") || tries == 20 {
            break (s, head);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "the handshake runs on the waiting thread: {head}"
    );
    // The server sends the 101 before it starts the writer: the limit stays until the
    // server says the writer could not start, or lifting it would let the writer start.
    let line = p.wait_log("cannot start its writer thread");
    set("unlimited");
    assert!(line.contains("closed with 1013"), "{line}");
    assert_eq!(
        read_frame(&mut late),
        (0x88, close_payload(1013, "try again later"))
    );
    // The room is unharmed.
    member
        .write_all(&frame(true, 0x1, b"still a room"))
        .unwrap();
    assert_eq!(read_frame(&mut member), (0x81, b"still a room".to_vec()));
    assert!(p.is_alive());
}
