//! `--stdin` and `--stdout` with the real binary and real pipes: lines in become
//! messages out, in order (the room, or every client in echo mode); client messages
//! become lines on stdout; the end of stdin is said once and the server keeps serving;
//! a stdout nobody reads never stalls the echoes.

mod common;

use std::io::Write;
use std::time::Duration;

use common::process::{Proc, Stdout};
use common::*;
use tinyws::Message;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// What the test writes on stdin, and the messages that must come out of it: a line
/// over the 1 KiB message limit is dropped, invalid UTF-8 is sent with U+FFFD, `\r\n`
/// ends a line like `\n`, and a last line without `\n` still counts.
fn feed() -> (Vec<u8>, Vec<Message>) {
    let mut input = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        input.extend_from_slice(format!("reading {i}\n").as_bytes());
        want.push(Message::text(format!("reading {i}")));
        if i == 40 {
            input.extend_from_slice(&[b'x'; 2000]);
            input.push(b'\n');
        }
        if i == 60 {
            input.extend_from_slice(b"21\xb0C\r\n");
            want.push(Message::text("21\u{fffd}C"));
        }
    }
    input.extend_from_slice(b"last");
    want.push(Message::text("last"));
    (input, want)
}

fn read_all(ws: &mut Ws, n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            ws.read()
                .unwrap_or_else(|e| panic!("message {i} of {n}: {e}"))
        })
        .collect()
}

fn lines_reach(mode: &[&str], room: bool) {
    let mut args = vec!["--stdin", "--max-message-size", "1KiB"];
    args.extend_from_slice(mode);
    let mut p = Proc::start_piped(BIN, &args, Stdout::Null);
    let mut a = ws(p.addr, "/");
    let mut b = ws(p.addr, "/");
    if room {
        p.wait_log("2 in the room");
    } else {
        p.wait_log("opened /");
        p.wait_log("opened /");
    }
    let (input, want) = feed();
    let mut stdin = p.stdin.take().expect("stdin");
    stdin.write_all(&input).unwrap();
    drop(stdin); // end of input
    assert_eq!(read_all(&mut a, want.len()), want);
    assert_eq!(read_all(&mut b, want.len()), want);
    p.wait_log(
        "line 42 is longer than max_message_size (--max-message-size) (1KiB); dropped (1 so far)",
    );
    p.wait_log("line 63 is not UTF-8");
    let eof = p.wait_log("end of standard input");
    assert!(
        eof.contains(
            "after 103 line(s) (1 too long, dropped; 1 not UTF-8); the server keeps running"
        ),
        "{eof}"
    );
    // It keeps serving: a new client is echoed (or is in the room), and the end of
    // input is not said again.
    let mut c = ws(p.addr, "/");
    c.send(Message::text("after the end")).unwrap();
    assert_eq!(c.read().unwrap(), Message::text("after the end"));
    if room {
        assert_eq!(a.read().unwrap(), Message::text("after the end"));
    }
    assert!(p.is_alive());
    // Said once: nothing more about it through the end of the log.
    #[cfg(unix)]
    {
        drop((a, b, c));
        p.signal("-TERM");
        assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
        let again: Vec<String> = p
            .rest_of_log()
            .into_iter()
            .filter(|l| l.contains("end of standard input"))
            .collect();
        assert!(again.is_empty(), "{again:?}");
    }
}

#[test]
fn stdin_lines_go_to_the_room_in_order() {
    lines_reach(&["--broadcast"], true);
}

/// With a room per path (`--rooms`), each line reaches every room, in order in each
/// (review of the merge: the lines went to the one room of plain broadcast mode, which
/// is empty with `--rooms`, so they reached nobody).
#[cfg(feature = "rooms")]
#[test]
fn stdin_lines_go_to_every_room_with_rooms() {
    let mut p = Proc::start_piped(BIN, &["--stdin", "--rooms"], Stdout::Null);
    let mut a = ws(p.addr, "/chat/a");
    p.wait_log("1 in the room");
    let mut b = ws(p.addr, "/chat/b");
    p.wait_log("opened /chat/b, 1 in the room");
    let mut stdin = p.stdin.take().expect("stdin");
    stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    let want = vec![
        Message::text("one"),
        Message::text("two"),
        Message::text("three"),
    ];
    assert_eq!(read_all(&mut a, 3), want, "room /chat/a");
    assert_eq!(read_all(&mut b, 3), want, "room /chat/b");
    drop(stdin);
}

#[test]
fn stdin_lines_go_to_every_client_in_echo_mode_in_order() {
    lines_reach(&[], false);
}

#[test]
fn in_echo_mode_a_client_that_reads_nothing_does_not_hold_up_the_feed_for_long() {
    let mut p = Proc::start_piped(BIN, &["--stdin", "--write-timeout", "500ms"], Stdout::Null);
    let mut reader = ws(p.addr, "/");
    p.wait_log("opened /");
    // A raw client past its handshake that never reads a byte.
    let stuck = upgraded(p.addr);
    p.wait_log("opened /");
    // 24 MiB of lines: more than the stuck client's socket buffers hold on loopback.
    let line = "z".repeat(1023);
    let n = 24 * 1024;
    let mut stdin = p.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            if writeln!(stdin, "{i:05}{line}").is_err() {
                return;
            }
        }
    });
    for i in 0..n {
        match reader.read().unwrap_or_else(|e| panic!("line {i}: {e}")) {
            Message::Text(t) => assert!(t.starts_with(&format!("{i:05}")), "line {i}"),
            other => panic!("line {i}: {other:?}"),
        }
    }
    writer.join().unwrap();
    let cut = p.wait_log("could not be written");
    assert!(cut.contains("write timed out"), "{cut}");
    drop(stuck);
}

#[test]
fn client_messages_become_lines_on_stdout_and_are_still_echoed() {
    let mut p = Proc::start_with(BIN, &["--stdout"], Stdout::Capture);
    let mut a = ws(p.addr, "/");
    let mut b = ws(p.addr, "/");
    for (which, text) in [(0, "{\"t\": 21.5}"), (1, "two\nlines"), (0, "third")] {
        let ws = if which == 0 { &mut a } else { &mut b };
        ws.send(Message::text(text)).unwrap();
        // The handler still runs: the echo comes back.
        assert_eq!(ws.read().unwrap(), Message::text(text));
    }
    a.send(Message::binary(vec![0u8, 1, 2])).unwrap();
    assert_eq!(a.read().unwrap(), Message::binary(vec![0u8, 1, 2]));
    a.send(Message::text("after the binary")).unwrap();
    a.read().unwrap();
    let out = p.stdout_until(b"after the binary\n").to_vec();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"t\": 21.5}\ntwo\\nlines\nthird\nafter the binary\n"
    );
    p.wait_log("a binary message is not written to stdout");
}

#[cfg(unix)]
#[test]
fn a_stdout_nobody_reads_does_not_stall_the_echoes() {
    let mut p = Proc::start_with(BIN, &["--stdout"], Stdout::Unread);
    let mut ws = ws(p.addr, "/");
    // 6 MiB of lines: far more than the pipe (64 KiB) and the queue (1 MiB) hold.
    let text = "y".repeat(32 * 1024);
    for i in 0..192 {
        let msg = Message::text(format!("{i:04}{text}"));
        ws.send(msg.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), msg, "echo {i}");
    }
    p.wait_log("standard output is not being read; message lines are left out");
    p.signal("-TERM");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    let summary = p
        .rest_of_log()
        .into_iter()
        .find(|l| l.contains("message line(s) written"))
        .expect("the stdout summary at shutdown");
    let left_out: u64 = summary
        .split(" written, ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(left_out >= 100, "{summary}");
}

#[test]
fn trace_and_stdout_together_is_a_startup_error() {
    let out = output_within(
        std::process::Command::new(BIN).args(["--port", "0", "--trace", "--stdout"]),
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("trace (--trace) and stdout (--stdout) both write to standard output"),
        "{err}"
    );
}
