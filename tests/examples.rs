//! The examples are lessons, so they must keep working: each server-side example is
//! started as its own process on a free port, a client connects, exchanges a message and
//! closes cleanly. The terminal client is run against a tinyws server with its stdin
//! scripted. `cargo test` builds the examples before running this.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;

fn example_path(name: &str) -> PathBuf {
    // target/debug/deps/examples-<hash> → target/debug/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test` (which builds the examples) or `cargo build --examples`",
        path.display()
    );
    assert_not_stale(&path, name);
    path
}

/// `cargo test --test examples` alone does not build the examples: an example edited
/// since its last build would be tested as it was. Its own sources must be older.
fn assert_not_stale(binary: &std::path::Path, name: &str) {
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .unwrap();
    let dir = PathBuf::from("examples");
    let mut sources = vec![dir.join(format!("{name}.rs"))];
    if let Ok(entries) = std::fs::read_dir(dir.join(name)) {
        sources.extend(entries.map(|e| e.unwrap().path()));
    }
    for source in sources {
        let Ok(changed) = std::fs::metadata(&source).and_then(|m| m.modified()) else {
            continue;
        };
        assert!(
            changed <= built,
            "{} changed after {} was built: run `cargo build --examples` (plain `cargo test` builds them)",
            source.display(),
            binary.display()
        );
    }
}

/// An example process, killed by PID on drop; its stdout lines arrive on a channel.
struct Example {
    child: Child,
    out: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    fn start(name: &str, args: &[&str]) -> Example {
        let mut child = Command::new(example_path(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let stdout = child.stdout.take().unwrap();
        let (tx, out) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Example {
            child,
            out,
            seen: Vec::new(),
        }
    }

    /// The next stdout line containing `needle`; fails the test after the timeout.
    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; output so far: {:#?}", self.seen),
            }
        }
    }

    /// Waits until a line containing each of `needles` has come, in any order: the raw
    /// client prints what it sent on one thread and what it read on another, so the
    /// server's answer may come before the "sent" line.
    fn wait_all(&mut self, needles: &[&str]) {
        let start = self.seen.len();
        for needle in needles {
            if !self.seen[start..].iter().any(|l| l.contains(needle)) {
                self.wait_line(needle);
            }
        }
    }

    /// The loopback address of the `ws://host:port/` the example printed.
    fn ws_addr(&mut self) -> SocketAddr {
        let line = self.wait_line("ws://");
        port_addr(&line, "ws://")
    }
}

/// 127.0.0.1 and the port of the first `scheme…host:port` in `line`.
fn port_addr(line: &str, scheme: &str) -> SocketAddr {
    let authority = line
        .split(scheme)
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let port: u16 = authority.rsplit(':').next().unwrap().parse().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn close_cleanly(mut ws: Ws) {
    ws.close(Some(CloseFrame {
        code: 1000.into(),
        reason: "".into(),
    }))
    .unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1000),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

fn text(ws: &mut Ws) -> String {
    match ws.read().expect("a message") {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn echo_example_echoes() {
    let mut ex = Example::start("echo", &["0"]);
    let addr = ex.ws_addr();
    let mut ws = ws(addr, "/");
    ws.send(Message::text("hello, example")).unwrap();
    assert_eq!(text(&mut ws), "hello, example");
    close_cleanly(ws);
}

#[test]
fn handshake_by_hand_computes_the_rfc_accept_and_echoes_frames() {
    let mut ex = Example::start("handshake_by_hand", &["0"]);
    let addr = ex.ws_addr();

    // The RFC 6455 §1.3 key, so the printed steps are the RFC's values.
    let mut s = tcp(addr);
    s.write_all(upgrade_request("/chat", "").as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains(&format!("Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n")));
    ex.wait_line("b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea");
    ex.wait_line(RFC_ACCEPT);

    // RFC 6455 §5.7: "Hello", masked with 37 fa 21 3d.
    s.write_all(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ])
    .unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    ex.wait_line("unmasked 48 65 6c 6c 6f");

    s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
        .unwrap();
    assert_eq!(read_frame(&mut s), (0x88, vec![0x03, 0xe8]));

    // A tungstenite client (random key) works too: the hand-written SHA-1 is right.
    let mut ws = ws(addr, "/");
    ws.send(Message::text("again")).unwrap();
    assert_eq!(text(&mut ws), "again");
    close_cleanly(ws);
}

#[test]
fn terminal_client_sends_lines_and_prints_messages_and_close_codes() {
    let server = start(config());
    let url = format!("ws://{}/", server.addr);
    let mut ex = Example::start("client", &[&url]);
    ex.wait_line("connected: 101");
    let mut stdin = ex.child.stdin.take().unwrap();
    writeln!(stdin, "hello from stdin").unwrap();
    ex.wait_line("< hello from stdin");
    writeln!(stdin, "/ping tick").unwrap();
    ex.wait_line("< pong \"tick\"");
    writeln!(stdin, "/close 4000 bye").unwrap();
    ex.wait_line("< close 4000 \"bye\"");
    ex.wait_line("closed");
    let deadline = Instant::now() + TIMEOUT;
    while ex.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the client did not exit");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.wait_connections(0), 0);
}

#[test]
fn upload_saves_files_with_progress_and_refuses_traversal_and_oversize() {
    let dir = std::env::temp_dir().join(format!("tinyws-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = dir.join("files");
    let mut ex = Example::start("upload", &["0", files.to_str().unwrap(), "1000B"]);
    let addr = ex.ws_addr();
    let page = port_addr(&ex.wait_line("page on http://"), "http://");

    // The page is served and points at the WebSocket port.
    let html = http(page, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(html.starts_with("HTTP/1.1 200 OK\r\n"), "{html}");
    assert!(html.contains(&format!(":{}/", addr.port())), "{html}");

    let mut ws = ws(addr, "/");
    // Two files over one connection, in chunks, with progress after each chunk.
    ws.send(Message::text("file 5 a.txt")).unwrap();
    assert_eq!(text(&mut ws), "ready a.txt");
    ws.send(Message::binary(b"hel".to_vec())).unwrap();
    assert_eq!(text(&mut ws), "progress a.txt 3 5");
    ws.send(Message::binary(b"lo".to_vec())).unwrap();
    assert_eq!(text(&mut ws), "done a.txt 5");
    ex.wait_line("a.txt: 3/5 bytes (60%)");
    ws.send(Message::text("file 3 second file.bin")).unwrap();
    assert_eq!(text(&mut ws), "ready second file.bin");
    ws.send(Message::binary(vec![0, 1, 2])).unwrap();
    assert_eq!(text(&mut ws), "done second file.bin 3");
    assert_eq!(std::fs::read(files.join("a.txt")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read(files.join("second file.bin")).unwrap(),
        [0, 1, 2]
    );

    // Names that are paths, hidden, or special are refused; nothing is created.
    for name in ["../escape.txt", "sub/x", "..", ".hidden", "a\\b", ""] {
        ws.send(Message::text(format!("file 3 {name}"))).unwrap();
        let answer = text(&mut ws);
        assert!(answer.starts_with("error "), "{name:?}: {answer}");
    }
    assert!(!dir.join("escape.txt").exists());
    // Over the limit, announced or not.
    ws.send(Message::text("file 1001 big.bin")).unwrap();
    assert!(text(&mut ws).contains("the limit is 1000 bytes"));
    ws.send(Message::text("file 2 liar.bin")).unwrap();
    assert_eq!(text(&mut ws), "ready liar.bin");
    ws.send(Message::binary(vec![7; 3])).unwrap();
    assert!(text(&mut ws).contains("longer than the 2 bytes announced"));
    assert!(
        !files.join("liar.bin").exists(),
        "a refused file is removed"
    );
    // An existing file is never overwritten.
    ws.send(Message::text("file 1 a.txt")).unwrap();
    assert!(text(&mut ws).starts_with("error cannot create a.txt"));

    let mut names: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "second file.bin"]);
    close_cleanly(ws);
    drop(ex);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The server stopped mid-upload (killed: no `on_close`) must leave nothing under the
/// file's own name, and the same upload must work once it is started again.
#[test]
fn an_upload_cut_off_by_a_stopped_server_leaves_no_file_and_can_be_sent_again() {
    let dir = std::env::temp_dir().join(format!("tinyws-upload-cut-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = dir.join("files");
    let mut ex = Example::start("upload", &["0", files.to_str().unwrap(), "1000B"]);
    let mut first = ws(ex.ws_addr(), "/");
    first.send(Message::text("file 10 cut.bin")).unwrap();
    assert_eq!(text(&mut first), "ready cut.bin");
    first.send(Message::binary(b"0123".to_vec())).unwrap();
    assert_eq!(text(&mut first), "progress cut.bin 4 10");
    ex.child.kill().unwrap();
    ex.child.wait().unwrap();
    assert!(
        !files.join("cut.bin").exists(),
        "a truncated file under the final name"
    );

    let mut ex = Example::start("upload", &["0", files.to_str().unwrap(), "1000B"]);
    let mut ws = ws(ex.ws_addr(), "/");
    let names: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
    ws.send(Message::text("file 10 cut.bin")).unwrap();
    assert_eq!(text(&mut ws), "ready cut.bin");
    ws.send(Message::binary(b"0123456789".to_vec())).unwrap();
    assert_eq!(text(&mut ws), "done cut.bin 10");
    assert_eq!(std::fs::read(files.join("cut.bin")).unwrap(), b"0123456789");
    close_cleanly(ws);
    drop(ex);
    let _ = std::fs::remove_dir_all(&dir);
}

/// examples/chat.rs with two members, guest-1 and guest-2, past their join lines.
fn chat_with_two_guests() -> (Example, Ws, Ws) {
    let mut ex = Example::start("chat", &["0"]);
    let addr = ex.ws_addr();
    let mut a = ws(addr, "/");
    assert_eq!(text(&mut a), "* guest-1 joined");
    let mut b = ws(addr, "/");
    assert_eq!(text(&mut a), "* guest-2 joined");
    assert_eq!(text(&mut b), "* guest-2 joined");
    (ex, a, b)
}

#[test]
fn chat_room_names_and_relays_in_one_order_to_everyone() {
    let (_ex, mut a, mut b) = chat_with_two_guests();
    a.send(Message::text("/nick alice")).unwrap();
    b.send(Message::text("hi all")).unwrap();
    // Both orders are possible; whichever the room chose, both members see the same one.
    let seen_a = [text(&mut a), text(&mut a)];
    let seen_b = [text(&mut b), text(&mut b)];
    assert_eq!(seen_a, seen_b);
    let mut sorted = seen_a.to_vec();
    sorted.sort();
    assert_eq!(sorted, ["* guest-1 is now alice", "guest-2: hi all"]);
    a.send(Message::text("hello")).unwrap();
    assert_eq!(text(&mut a), "alice: hello");
    assert_eq!(text(&mut b), "alice: hello");
    close_cleanly(b);
    assert_eq!(text(&mut a), "* guest-2 left");
    close_cleanly(a);
}

#[test]
fn push_sends_every_client_a_reading_each_second() {
    let mut ex = Example::start("push", &["0"]);
    let addr = ex.ws_addr();
    let mut a = ws(addr, "/");
    let mut b = ws(addr, "/");
    let seq = |line: &str| -> u64 {
        assert!(
            line.starts_with("{\"seq\":") && line.contains("\"load1\":"),
            "{line}"
        );
        line["{\"seq\":".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // Both may have joined in different seconds: align on the first reading b sees.
    let first_b = seq(&text(&mut b));
    let mut first_a = seq(&text(&mut a));
    while first_a < first_b {
        first_a = seq(&text(&mut a));
    }
    assert_eq!(first_a, first_b, "every client sees the same reading");
    assert_eq!(
        seq(&text(&mut a)),
        first_a + 1,
        "one reading per second, in order"
    );
    close_cleanly(a);
    close_cleanly(b);
}

/// Names that are harmless on Linux but not on Windows: a drive
/// letter (`dir.join("C:notes.txt")` leaves the folder there), device names, NTFS
/// streams, trailing dots and spaces. Each is refused with a reason, on every OS, and
/// nothing is created. Then the total-size cap: the folder never holds more.
#[test]
fn upload_refuses_names_unsafe_on_any_os_and_caps_the_total() {
    let dir = std::env::temp_dir().join(format!("tinyws-upload-win-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = dir.join("files");
    let mut ex = Example::start("upload", &["0", files.to_str().unwrap(), "1000B", "1500B"]);
    let mut ws = ws(ex.ws_addr(), "/");
    for (name, why) in [
        ("C:notes.txt", "drive letter"),
        ("c:", "drive letter"),
        ("name:stream", "hidden stream"),
        ("notes.txt::$DATA", "drive letter"),
        ("CON", "device name on Windows (CON)"),
        ("con.txt", "device name on Windows (CON)"),
        ("NUL", "device name on Windows (NUL)"),
        ("nul .txt", "device name on Windows (NUL)"),
        ("COM1", "device name on Windows (COM1)"),
        ("lpt9.log", "device name on Windows (LPT9)"),
        ("AUX.tar.gz", "device name on Windows (AUX)"),
        ("notes.txt.", "ends with a dot or a space"),
        ("notes.txt ", "ends with a dot or a space"),
        ("..\\..\\boot.ini", "is a path"),
        ("-rf", "must start with a letter or digit"),
        (" x", "must start with a letter or digit"),
        ("a*b?.txt", "names may only use"),
        ("quote\".txt", "names may only use"),
        ("pipe|x", "names may only use"),
        ("caf\u{e9}.txt", "names may only use"),
        ("tab\there", "names may only use"),
    ] {
        ws.send(Message::text(format!("file 3 {name}"))).unwrap();
        let answer = text(&mut ws);
        assert!(
            answer.starts_with("error ") && answer.contains(why),
            "{name:?}: {answer}"
        );
    }
    // Plain names still pass: a device name inside a longer name is just a name.
    for name in [
        "CONFIG.txt",
        "nul1.txt",
        "COM10",
        "report 2024.pdf",
        "a-b_c.d",
    ] {
        ws.send(Message::text(format!("file 1 {name}"))).unwrap();
        assert_eq!(text(&mut ws), format!("ready {name}"));
        ws.send(Message::binary(vec![b'x'])).unwrap();
        assert_eq!(text(&mut ws), format!("done {name} 1"));
    }
    // The total: 5 bytes stored; 1000 more fit in 1500, then another 1000 do not.
    ws.send(Message::text("file 1000 big1.bin")).unwrap();
    assert_eq!(text(&mut ws), "ready big1.bin");
    ws.send(Message::binary(vec![0; 1000])).unwrap();
    assert_eq!(text(&mut ws), "done big1.bin 1000");
    ws.send(Message::text("file 1000 big2.bin")).unwrap();
    let answer = text(&mut ws);
    assert!(
        answer.contains("the upload folder may hold 1500 bytes in all"),
        "{answer}"
    );
    let mut names: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "COM10",
            "CONFIG.txt",
            "a-b_c.d",
            "big1.bin",
            "nul1.txt",
            "report 2024.pdf"
        ]
    );
    close_cleanly(ws);
    drop(ex);
    let _ = std::fs::remove_dir_all(&dir);
}

impl Example {
    /// Ctrl-C, as a terminal sends it: SIGINT to this child, by its PID.
    #[cfg(unix)]
    fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
    }

    /// Waits (bounded) for the process to exit; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the example did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The server says goodbye: a close 1001 ("going away", RFC 6455 §7.4.1), and the close
/// handshake completes (tungstenite answers it).
#[cfg_attr(not(unix), allow(dead_code))]
fn goes_away(mut ws: Ws) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1001, "{f:?}");
                break;
            }
            Ok(Message::Close(None)) => panic!("a close frame without a code"),
            Ok(_) => {} // a reading still on its way
            Err(e) => panic!("no close frame (the 1006 case): {e}"),
        }
    }
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("unclean end after the 1001: {e}"),
        }
    }
}

/// `/who`, `/help`, a mistyped command and a taken nickname are answered to
/// the asker only; the other member's next message is the room's.
#[test]
fn chat_answers_commands_to_the_asker_only() {
    let (_ex, mut a, mut b) = chat_with_two_guests();
    a.send(Message::text("/who")).unwrap();
    assert_eq!(text(&mut a), "here: guest-1, guest-2");
    a.send(Message::text("/help")).unwrap();
    assert!(text(&mut a).starts_with("commands: /nick NAME"));
    a.send(Message::text("/frobnicate now")).unwrap();
    assert!(text(&mut a).starts_with("unknown command /frobnicate; commands:"));
    b.send(Message::text("/nick guest-1")).unwrap();
    assert_eq!(text(&mut b), "the nickname guest-1 is taken");
    b.send(Message::text("hi")).unwrap();
    // Neither saw the other's answers: the next message of each is the room's.
    assert_eq!(text(&mut b), "guest-2: hi");
    assert_eq!(text(&mut a), "guest-2: hi");
    close_cleanly(b);
    assert_eq!(text(&mut a), "* guest-2 left");
    close_cleanly(a);
}

/// Ctrl-C in an example that embeds tinyws (`shutdown_on_signals`) gives every
/// client 1001 and a clean close (it was 1006: the process died), and the program prints
/// how the server stopped and exits 0.
#[cfg(unix)]
#[test]
fn ctrl_c_closes_every_chat_and_push_client_with_1001() {
    for name in ["chat", "push"] {
        let mut ex = Example::start(name, &["0"]);
        let addr = ex.ws_addr();
        let mut a = ws(addr, "/");
        let mut b = ws(addr, "/");
        // Both are members once each has had a message of the room.
        text(&mut a);
        text(&mut b);
        ex.interrupt();
        goes_away(a);
        goes_away(b);
        ex.wait_line("stopped: 2 connection(s) closed");
        assert_eq!(ex.exit_code(), Some(0), "{name}");
    }
}

/// The sensor program (examples/sensor.rs, under 60
/// lines): a reading every 500 ms to everyone, `status` answered to the asker only, and
/// Ctrl-C (SIGINT to its PID) closes every client with 1001.
#[cfg(unix)]
#[test]
fn sensor_pushes_readings_answers_status_to_the_asker_and_closes_with_1001_on_ctrl_c() {
    let source = std::fs::read_to_string("examples/sensor.rs").unwrap();
    assert!(source.lines().count() < 60, "the sensor program grew");
    let reading = |line: &str| -> u64 {
        assert!(
            line.starts_with("{\"reading\":") && line.contains("\"celsius\":"),
            "{line}"
        );
        line["{\"reading\":".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut ex = Example::start("sensor", &["0"]);
    let addr = ex.ws_addr();
    let mut a = ws(addr, "/");
    let mut b = ws(addr, "/");
    let first_a = reading(&text(&mut a));
    reading(&text(&mut b));
    a.send(Message::text("status")).unwrap();
    let status = loop {
        let t = text(&mut a);
        if t.starts_with("status: ") {
            break t;
        }
        reading(&t);
    };
    assert!(status.contains(" readings, 2 listening"), "{status}");
    let after = reading(&text(&mut a));
    assert!(after > first_a, "readings go on: {first_a} then {after}");
    // b gets readings only, in order, up to the one a got after its status.
    let mut last = 0;
    while last < after {
        let t = text(&mut b);
        assert!(!t.starts_with("status"), "the status reached b: {t}");
        let n = reading(&t);
        assert!(n > last, "in order: {last} then {n}");
        last = n;
    }
    ex.interrupt();
    goes_away(a);
    goes_away(b);
    ex.wait_line("stopped: 2 connection(s) closed");
    assert_eq!(ex.exit_code(), Some(0));
}

// The raw mode of the terminal client: the plan's "Frames by hand" cases, typed into
// `client --raw` as a student would, against an echo server.

const PLAN: &str = include_str!("../docs/classroom.md");
const PLAN_ZH: &str = include_str!("../docs/classroom.zh.md");

/// The lines of the plan's code block marked `<!-- KIND: NAME -->`.
fn plan_block<'a>(plan: &'a str, kind: &str, name: &str) -> Vec<&'a str> {
    let marker = format!("<!-- {kind}: {name} -->\n");
    let Some(at) = plan.find(&marker) else {
        panic!("the plan has no {marker:?}")
    };
    let rest = &plan[at + marker.len()..];
    let body = rest
        .strip_prefix("```text\n")
        .unwrap_or_else(|| panic!("{marker:?}: a ```text block must follow"));
    body.lines().take_while(|l| !l.starts_with("```")).collect()
}

/// The client in raw mode, connected to a fresh echo server.
fn raw_client() -> (TestServer, Example, std::process::ChildStdin) {
    let server = start(config());
    let url = format!("ws://{}/", server.addr);
    let mut ex = Example::start("client", &["--raw", &url]);
    ex.wait_line("connected: 101");
    let stdin = ex.child.stdin.take().unwrap();
    (server, ex, stdin)
}

/// Types the plan's lines for case `name` and waits for the lines the plan says the
/// client prints, in order. `answer` is this test's own idea of the key line, which the
/// plan's block must hold (so an emptied block cannot pass). Then the input ends: the
/// server closes TCP and the client exits 0.
fn raw_case(name: &str, answer: &str) {
    let (typed, prints) = (
        plan_block(PLAN, "type", name),
        plan_block(PLAN, "prints", name),
    );
    assert_eq!(typed, plan_block(PLAN_ZH, "type", name), "classroom.zh.md");
    assert_eq!(
        prints,
        plan_block(PLAN_ZH, "prints", name),
        "classroom.zh.md"
    );
    assert!(
        prints.iter().any(|l| l.contains(answer)),
        "{name}: {prints:?}"
    );
    let (_server, mut ex, mut stdin) = raw_client();
    for line in &typed {
        writeln!(stdin, "{line}").unwrap();
    }
    for line in &prints {
        ex.wait_line(line);
    }
    drop(stdin);
    if !prints.contains(&"< the server closed TCP") {
        ex.wait_line("< the server closed TCP");
    }
    assert_eq!(ex.exit_code(), Some(0));
}

#[test]
fn raw_client_a_masked_text_frame_is_echoed_and_a_close_ends_it() {
    raw_case("masked", "<   text     \"Hello\"");
}

#[test]
fn raw_client_the_same_frame_unmasked_gets_1002() {
    raw_case("unmasked", "code 1002 (protocol error)");
}

#[test]
fn raw_client_rsv1_set_gets_1002() {
    raw_case("rsv1", "code 1002 (protocol error)");
}

#[test]
fn raw_client_two_fragments_with_a_ping_between_give_a_pong_then_one_message() {
    raw_case("fragments", "<   text     \"Hello\"");
}

#[test]
fn raw_client_a_character_split_across_fragments_comes_back_whole() {
    raw_case("split-utf8", "<   text     \"你\"");
}

#[test]
fn raw_client_a_126_byte_payload_uses_the_16_bit_length() {
    raw_case("length-126", "<   header   81 7e 00 7e");
}

/// Typing mistakes get one line each and nothing is sent; the connection goes on.
#[test]
fn raw_client_refuses_bad_hex_in_one_line_and_sends_nothing() {
    let (_server, mut ex, mut stdin) = raw_client();
    for bad in ["zz", "8", "81 8", "+f", "0x81", "81,85", "\u{e4}\u{e4}"] {
        writeln!(stdin, "{bad}").unwrap();
        let line = ex.wait_line("> not sent: ");
        assert!(line.contains("is not bytes in hex"), "{bad:?}: {line}");
    }
    // Had any byte of those gone out, this frame would not be read as one.
    writeln!(stdin, "81 85 37fa213d 7f9f4d5158").unwrap();
    ex.wait_all(&["> 11 bytes sent", "<   text     \"Hello\""]);
}

/// A server's frame is decoded with a 64-bit length too; a header claiming more than
/// 1 MiB is refused before anything is allocated for it. The server here is hostile on
/// purpose: a real handshake (tungstenite), then bytes written by hand.
#[test]
fn raw_client_reads_64_bit_lengths_and_refuses_frames_over_1_mib() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut ex = Example::start("client", &["--raw", &url]);
    let (socket, _) = listener.accept().unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut ws = tungstenite::accept(socket).unwrap();
    ex.wait_line("connected: 101");
    let mut bytes = vec![0x82, 127];
    bytes.extend(70_000u64.to_be_bytes());
    bytes.extend(vec![7; 70_000]);
    bytes.extend([0x82, 127]);
    bytes.extend((1u64 << 40).to_be_bytes());
    ws.get_mut().write_all(&bytes).unwrap();
    ex.wait_line("< frame: FIN=1 RSV=000 opcode=0x2 (binary) MASK=0 length=70000");
    ex.wait_line("<   payload  07 07 07 07 07 07 07 07 07 07 07 07 07 07 07 07 … (+69984 bytes)");
    ex.wait_line("< stopped: the server announced a 1099511627776-byte frame; this client reads 1 MiB at most");
    assert_eq!(ex.exit_code(), Some(0));
}

/// No 101 (a path the server does not upgrade), or a 101 whose Sec-WebSocket-Accept is
/// not the one for the client's key: the client shows the answer and exits 1.
#[test]
fn raw_client_stops_without_a_101_or_with_a_wrong_accept() {
    let server = start(config().path("/echo"));
    let url = format!("ws://{}/chat", server.addr);
    let mut ex = Example::start("client", &["--raw", &url]);
    ex.wait_line("> GET /chat HTTP/1.1");
    ex.wait_line("< HTTP/1.1 404");
    assert_eq!(ex.exit_code(), Some(1));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut ex = Example::start("client", &["--raw", &url]);
    let (mut socket, _) = listener.accept().unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    read_head(&mut socket);
    socket
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        .unwrap();
    ex.wait_line("< Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(ex.exit_code(), Some(1));
}
