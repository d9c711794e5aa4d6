//! The `tinyws` binary as users run it: flags, startup errors, signals, and resource
//! counts read from /proc after hostile clients.

// Some tests need Unix signals or Linux /proc and are gated (to Unix or to Linux);
// elsewhere, macOS included, their helpers are unused.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::process::Proc;
use common::*;
use tinyws::Message;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run tinyws");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_prints_the_crate_version() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    // The layers built in, in layers/mod.rs's order: this test is built with the same ones.
    let built: Vec<&str> = [
        ("teach", cfg!(feature = "teach")),
        ("static", cfg!(feature = "static")),
        ("pipes", cfg!(feature = "pipes")),
        ("rooms", cfg!(feature = "rooms")),
        ("tls", cfg!(feature = "tls")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let features = if built.is_empty() {
        "none".to_string()
    } else {
        built.join(", ")
    };
    assert_eq!(
        out,
        format!(
            "tinyws {} (features: {features})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn bad_flag_values_fail_with_a_clear_line_and_no_panic() {
    for args in [
        &["--port", "http"][..],
        &["--max-message-size", "12 parsecs"],
        &["--ping-interval", "soon"],
        &["--bind", "localhost:80"],
        &["--no-such-flag"],
    ] {
        let (code, _, err) = run(args);
        assert_ne!(code, 0, "{args:?}");
        assert!(
            err.lines().next().is_some_and(|l| l.contains(args[0])),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    for (args, says) in [
        // The library names the `Config` field; the binary adds its flag (main.rs).
        (
            &["--max-frame-size", "0"][..],
            "tinyws: max_frame_size (--max-frame-size) must be greater than 0\n",
        ),
        (
            &["--path", "echo"],
            "path (--path) must start with '/', e.g. /echo",
        ),
        (
            &["--max-head-size", "65K"],
            "max_head_size (--max-head-size) must be at most 64KiB",
        ),
        (
            &["--max-connections", "0"],
            "max_connections (--max-connections) must be greater than 0",
        ),
        (
            &["--allow-origin", "example.com"],
            "allow_origins (--allow-origin) entry \"example.com\" is not an origin",
        ),
        (
            &["--bind", "192.0.2.1"],
            "is not an address of this machine",
        ),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            err.starts_with("tinyws: ") && err.contains(says),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn a_port_in_use_says_so_and_how_to_fix_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = run(&["--bind", "127.0.0.1", "--port", &port]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "tinyws: port {port} is in use on 127.0.0.1; stop the other server or pick another port (--port)\n"
        )
    );
}

#[test]
fn startup_prints_where_to_connect_and_the_effective_settings() {
    let mut p = Proc::start(BIN, &["--path", "/echo", "--max-message-size", "1MiB"]);
    let settings = p.wait_log("settings:");
    assert!(
        settings.contains("path=/echo max-connections=256 max-message-size=1MiB"),
        "{settings}"
    );
}

/// Lowering only the message limit starts (it used to fail because the default frame limit
/// was larger): the frame limit is clamped to it, and the settings line says so (the
/// info line about the clamp comes before "listening on", which `Proc::start` waits for;
/// its text is tested in config.rs).
#[test]
fn a_message_limit_under_the_frame_limit_starts_and_the_frame_limit_follows() {
    let mut p = Proc::start(BIN, &["--max-message-size", "4KiB"]);
    let settings = p.wait_log("settings:");
    assert!(
        settings.contains("max-message-size=4KiB max-frame-size=4KiB"),
        "{settings}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_sends_1001_to_every_client_and_exits_0() {
    let mut p = Proc::start(BIN, &[]);
    let mut clients: Vec<_> = (0..3).map(|_| ws(p.addr, "/")).collect();
    for c in &mut clients {
        c.send(Message::text("hi")).unwrap();
        assert_eq!(c.read().unwrap(), Message::text("hi"));
    }
    p.signal("-TERM");
    for c in &mut clients {
        match c.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1001),
            other => panic!("expected close 1001, got {other:?}"),
        }
        // tungstenite answers the close; the server then ends the connection.
        loop {
            match c.read() {
                Err(tungstenite::Error::ConnectionClosed) => break,
                Ok(_) => {}
                Err(e) => panic!("unclean end after 1001: {e}"),
            }
        }
    }
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(tcp_refused(p.addr), "the port is closed after shutdown");
}

fn tcp_refused(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

#[cfg(unix)]
#[test]
fn a_second_signal_exits_at_once() {
    let mut p = Proc::start(BIN, &["--shutdown-timeout", "60s"]);
    // A raw client that never answers the 1001 keeps the graceful shutdown waiting, once
    // it is open: a shutdown that comes between its 101 and its "opened" line closes it
    // without waiting (connection.rs, `open`), and the process would exit 0 at once.
    let _silent = upgraded(p.addr);
    p.wait_log("opened /");
    p.signal("-INT");
    p.wait_log("shutting down");
    let t = Instant::now();
    p.signal("-INT");
    assert_eq!(p.wait_exit(Duration::from_secs(3)), Some(130));
    assert!(t.elapsed() < Duration::from_secs(3));
}

/// Closing a terminal can deliver SIGHUP twice: the second one does not cut the shutdown
/// short, and a SIGINT after it still does. Each signal is told apart from the others.
#[cfg(unix)]
#[test]
fn a_second_sighup_does_not_exit_and_a_sigint_after_it_does() {
    let mut p = Proc::start(BIN, &["--shutdown-timeout", "60s"]);
    // Open, and so waited for (see a_second_signal_exits_at_once).
    let _silent = upgraded(p.addr);
    p.wait_log("opened /");
    p.signal("-HUP");
    p.wait_log("signal 1 (SIGHUP): shutting down");
    p.signal("-HUP");
    p.wait_log("signal 1 (SIGHUP) again: still shutting down");
    p.signal("-INT");
    p.wait_log("signal 2 (SIGINT) while shutting down: exiting at once");
    assert_eq!(p.wait_exit(Duration::from_secs(3)), Some(130));
}

#[cfg(target_os = "linux")]
#[test]
fn hostile_clients_leave_no_thread_or_fd_behind() {
    let mut p = Proc::start(
        BIN,
        &["--handshake-timeout", "500ms", "--write-timeout", "500ms"],
    );
    let mut good = ws(p.addr, "/");
    let echo = |ws: &mut Ws, text: &str| {
        ws.send(Message::text(text)).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text));
    };
    echo(&mut good, "before");
    let baseline = p.resources();

    // 1. Clients that connect and never send.
    let idle: Vec<_> = (0..40).map(|_| tcp(p.addr)).collect();
    // 2. Clients that vanish mid-frame with a reset: half a frame sent, and a pong left
    //    unread so closing the socket sends RST instead of FIN.
    for _ in 0..20 {
        let mut s = upgraded(p.addr);
        s.write_all(&frame(true, 0x9, b"p")).unwrap();
        // Wait until the pong is here (unread), so closing the socket sends RST.
        s.peek(&mut [0u8; 1]).expect("the pong arrives");
        let half = frame(true, 0x2, &[1; 100]);
        s.write_all(&half[..50]).unwrap();
        drop(s);
    }
    // 3. A client that never reads its echoes.
    let mut stuck = upgraded(p.addr);
    let big = frame(true, 0x2, &vec![0; 60 * 1024]);
    let writer = thread::spawn(move || {
        for _ in 0..400 {
            if stuck.write_all(&big).is_err() {
                return true;
            }
        }
        false
    });
    echo(&mut good, "during");
    assert!(writer.join().unwrap(), "the stuck client was never dropped");
    // Logged as stalled (a warning the operator can act on), not as a vanished peer.
    p.wait_log(
        "dropped: write timed out: the client took less than 16 KiB within the write timeout",
    );
    drop(idle);

    assert_eq!(
        p.settle(baseline),
        baseline,
        "(threads, fds) back to baseline"
    );
    echo(&mut good, "after");
}

/// A refused origin is logged at warn with the exact flag that would allow it (docs/reference.md,
/// Logging: "refused origins (with the flag to allow them)").
#[test]
fn a_refused_origin_logs_the_flag_that_would_allow_it() {
    let mut p = Proc::start(BIN, &[]);
    let answer = http(
        p.addr,
        &upgrade_request("/", "Origin: http://evil.test:3000\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    // The answer itself at info, with the request line the client sent.
    let answered = p.wait_log("answered 403");
    assert!(answered.contains(" INFO "), "at info: {answered}");
    assert!(
        answered.contains(": \"GET / HTTP/1.1\" answered 403: Origin http://evil.test:3000 may not open WebSocket connections to this server."),
        "{answered}"
    );
    let line = p.wait_log("refused Origin");
    assert!(line.contains(" WARN "), "at warn: {line}");
    assert!(
        line.contains(
            "refused Origin http://evil.test:3000 (Host localhost); to allow it, start tinyws with --allow-origin http://evil.test:3000"
        ),
        "{line}"
    );
}

/// One client refusing Origin after Origin cannot fill the log at `warn`: one warning
/// per machine per minute (each refusal still has its `info` line).
#[test]
fn many_refused_origins_from_one_machine_write_one_warning() {
    let mut p = Proc::start(BIN, &[]);
    let refusals = 200;
    for i in 0..refusals {
        let origin = format!("Origin: http://evil{i}.test\r\n");
        let answer = http(p.addr, &upgrade_request("/", &origin));
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    }
    let last = format!("Origin http://evil{}.test may not", refusals - 1);
    let lines = p.log_through(&last);
    let warned: Vec<_> = (lines.iter())
        .filter(|l| l.contains(" WARN ") && l.contains("refused Origin"))
        .collect();
    let answered = lines.iter().filter(|l| l.contains("answered 403")).count();
    assert_eq!(answered, refusals, "every refusal has its info line");
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains("http://evil0.test"), "{}", warned[0]);
}

/// An Origin that is not UTF-8 is logged with its bytes escaped (`\xff`), not as a lone
/// U+FFFD, and the warning suggests no --allow-origin value (none can name it).
#[test]
fn a_refused_origin_that_is_not_utf8_is_logged_escaped_without_a_flag_to_allow_it() {
    let mut p = Proc::start(BIN, &[]);
    let mut request = upgrade_request("/", "Origin: http://ev\u{1}il.test\r\n").into_bytes();
    let at = request.iter().position(|&b| b == 1).unwrap();
    request.splice(at..at + 1, [0xff, 0xfe]);
    let mut s = tcp(p.addr);
    s.write_all(&request).unwrap();
    let answer = read_to_end(&mut s);
    assert!(
        answer.starts_with(b"HTTP/1.1 403 Forbidden\r\n"),
        "{answer:?}"
    );
    let line = p.wait_log("refused Origin");
    assert!(
        line.contains(r"refused Origin http://ev\xff\xfeil.test (Host localhost)"),
        "{line}"
    );
    assert!(!line.contains('\u{fffd}'), "{line}");
    assert!(!line.contains("start tinyws with --allow-origin"), "{line}");
    assert!(line.contains("not valid UTF-8"), "{line}");
}

/// Over the connection cap, at most 8 small threads read a request before answering
/// 503; past them the 503 is written at once without reading (docs/reference.md, "Defaults and
/// limits"). So 40 silent sockets over the cap all get a 503, and the server never runs
/// more than 8 threads for them.
#[cfg(target_os = "linux")]
#[test]
fn over_the_cap_every_client_gets_503_and_at_most_8_threads_answer() {
    let mut p = Proc::start(BIN, &["--max-connections", "1"]);
    let mut inside = ws(p.addr, "/");
    inside.send(Message::text("in")).unwrap();
    assert_eq!(inside.read().unwrap(), Message::text("in"));
    let baseline = p.resources();
    let threads = baseline.0;
    let mut over: Vec<_> = (0..40).map(|_| tcp(p.addr)).collect();
    let mut peak = 0;
    for s in &mut over {
        peak = peak.max(p.resources().0);
        let answer = String::from_utf8(read_to_end(s)).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
    }
    assert!(
        peak <= threads + 8,
        "{peak} threads while refusing, {threads} before: more than 8 rejecters"
    );
    p.wait_log(
        "refused with 503, at the cap of 1 connections set by max_connections (--max-connections)",
    );
    inside.send(Message::text("still in")).unwrap();
    assert_eq!(inside.read().unwrap(), Message::text("still in"));

    // The rejecters are given back: once they are gone, the next silent client over the
    // cap is answered by one again, which first waits up to a second for its request
    // (a leaked slot would leave only the blind answer, at once).
    drop(over);
    assert_eq!(p.settle(baseline), baseline, "the rejecters ended");
    let started = Instant::now();
    let mut late = tcp(p.addr);
    let answer = String::from_utf8(read_to_end(&mut late)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "answered after {:?}: without waiting for a request, so no rejecter was free",
        started.elapsed()
    );
}

/// A client dropped for not answering the keepalive ping is logged at warn (docs/reference.md,
/// Logging: "clients dropped for not reading or not answering pings").
#[test]
fn a_client_dropped_for_not_answering_pings_is_logged_at_warn() {
    let mut p = Proc::start(
        BIN,
        &["--ping-interval", "300ms", "--ping-timeout", "300ms"],
    );
    let mut silent = upgraded(p.addr);
    assert_eq!(read_frame(&mut silent), (0x89, b"tinyws".to_vec()));
    let line = p.wait_log("no answer to the keepalive ping");
    assert!(line.contains(" WARN "), "at warn: {line}");
    assert!(
        line.contains(": dropped: no answer to the keepalive ping within 300ms"),
        "{line}"
    );
}

/// Each connection's end is logged at info with the client's close code and reason
/// (docs/reference.md, Logging), or "no code" for an empty close.
#[test]
fn a_close_is_logged_with_its_code_and_reason() {
    let mut p = Proc::start(BIN, &[]);
    let mut s = upgraded(p.addr);
    s.write_all(&frame(true, 0x8, &close_payload(4001, "bye")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 4001);
    let line = p.wait_log(": closed, code");
    assert!(line.contains(" INFO "), "at info: {line}");
    assert!(line.ends_with(": closed, code 4001 (bye)"), "{line}");
    let mut s = upgraded(p.addr);
    s.write_all(&frame(true, 0x8, b"")).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (0x88, Vec::new()),
        "an empty close back"
    );
    let line = p.wait_log(": closed, no code");
    assert!(line.contains(" INFO "), "at info: {line}");
}

/// The log hides credentials the way the trace and the page do (src/util/secrets.rs): a
/// refused request's line is logged with its query's token hidden.
#[test]
fn a_refused_request_is_logged_without_its_token() {
    let mut p = Proc::start(BIN, &["--path", "/echo"]);
    let answer = http(
        p.addr,
        "GET /elsewhere?room=1&token=s3cr3t HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    let line = p.wait_log("answered 404");
    assert!(
        line.contains("\"GET /elsewhere?room=1&token=<hidden: 6 bytes> HTTP/1.1\" answered 404"),
        "{line}"
    );
    assert!(!line.contains("s3cr3t"), "{line}");
}

/// `--name` (`Config::name`) starts the server's own lines and each
/// connection's, so two servers in one log are told apart; the shutdown says how it
/// ended.
#[cfg(unix)]
#[test]
fn a_named_server_prefixes_its_log_lines_and_says_how_it_stopped() {
    let mut p = Proc::start(BIN, &["--name", "alpha"]);
    p.wait_log("alpha: settings: ");
    let mut s = upgraded(p.addr);
    let opened = p.wait_log(": opened /");
    assert!(opened.contains("] alpha #1 127.0.0.1:"), "{opened}");
    p.signal("-INT");
    let (first, payload) = read_frame(&mut s);
    assert_eq!((first, &payload[..2]), (0x88, &1001u16.to_be_bytes()[..]));
    s.write_all(&frame(true, 0x8, &payload[..2])).unwrap();
    assert!(read_to_end(&mut s).is_empty());
    p.wait_log("alpha: signal 2 (SIGINT): shutting down");
    p.wait_log("alpha: shutting down: sending close 1001 to 1 connection(s)");
    p.wait_log("alpha: stopped: 1 connection(s) closed");
    assert_eq!(p.wait_exit(TIMEOUT), Some(0));
}

/// `tinyws --help | head -1`, `tinyws --version | true`: stdout closed before the text
/// is written is no panic, just an exit (the reader has gone).
#[test]
fn help_and_version_to_a_closed_pipe_exit_without_a_panic() {
    for flag in ["--help", "--version"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before the first byte: every write fails (EPIPE)
        let out = Command::new(BIN).arg(flag).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{flag}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{flag}: {stderr}");
    }
}

/// A build without the `static` layer: `--static` stops the start with one line that
/// names the feature to build with (`cargo test --no-default-features` runs this).
#[cfg(not(feature = "static"))]
#[test]
fn a_flag_whose_layer_is_not_built_names_the_feature() {
    let (code, out, err) = run(&["--static", "."]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err,
        "tinyws: static_dir (--static) needs the layer \"static\", which this tinyws was built without; rebuild it with `cargo build --release --features static`\n"
    );
}
