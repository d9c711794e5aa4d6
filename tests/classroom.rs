//! The lesson plan, run as written. `docs/classroom.md` is read here:
//! every `./target/release/tinyws …` command in it is started (so a flag the program does
//! not have, or a combination it refuses, fails), and every output block marked
//! `<!-- check: NAME -->` must appear, line for line, in what the real binary prints when
//! the lesson's step NAME is done over real sockets. Change the program or the plan, and
//! this says where they disagree. The plan's timing table must add up to its 45 minutes.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::process::{Proc, Stdout};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");
const PLAN: &str = include_str!("../docs/classroom.md");
const PLAN_ZH: &str = include_str!("../docs/classroom.zh.md");
/// How the plan calls the binary.
const CALL: &str = "./target/release/tinyws";

/// Every command the plan runs the binary with: its arguments, from code blocks and
/// inline code (which may wrap over two lines).
fn commands(plan: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in plan.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block && line.starts_with(CALL) {
            let cmd = line.split('#').next().unwrap_or("");
            out.push(args_of(cmd));
        }
    }
    // Inline code: text between single backticks, outside code blocks.
    let prose: String = {
        let mut in_block = false;
        plan.lines()
            .filter(|l| {
                if l.starts_with("```") {
                    in_block = !in_block;
                    return false;
                }
                !in_block
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (i, span) in prose.split('`').enumerate() {
        if i % 2 == 1 && span.starts_with(CALL) {
            out.push(args_of(span));
        }
    }
    out
}

fn args_of(cmd: &str) -> Vec<String> {
    let mut args: Vec<String> = cmd
        .split_whitespace()
        .skip(1)
        // The plan's example address of a student's machine: here, every client is local.
        .map(|a| a.replace("192.168.1.23", "127.0.0.1").replace('\'', ""))
        .collect();
    // The test picks the address and port itself (Proc: loopback, port 0); a port in the
    // plan (a second server on 8081) is dropped, after checking it parses.
    while let Some(at) = args.iter().position(|a| a == "--port") {
        let port = args.get(at + 1).expect("--port without a value");
        port.parse::<u16>()
            .expect("the plan's --port is a port number");
        args.drain(at..at + 2);
    }
    args
}

/// A directory of our own under the system's temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("tinyws-classroom-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// `cmd` with its `--static` folder (a path relative to where the teacher stands) taken
/// from `root` instead.
fn with_static_dir(cmd: &[String], root: &TempDir) -> Vec<String> {
    let mut cmd = cmd.to_vec();
    if let Some(at) = cmd.iter().position(|a| a == "--static") {
        let dir = root.0.join(&cmd[at + 1]);
        std::fs::create_dir_all(&dir).unwrap();
        cmd[at + 1] = dir.to_string_lossy().into_owned();
    }
    cmd
}

/// The `<!-- check: NAME -->` blocks: NAME → the lines the step must print.
fn checks(plan: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut lines = plan.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- check: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        assert!(
            lines.next().is_some_and(|l| l.starts_with("```")),
            "check {name}: a code block must follow"
        );
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_string)
            .collect();
        out.insert(name.to_string(), block);
    }
    out
}

/// The plan's command with all of `flags`, started on 127.0.0.1 and a free port.
fn start(cmds: &[Vec<String>], flags: &[&str], stdout: Stdout) -> Proc {
    let cmd = cmds
        .iter()
        .find(|c| c.len() == flags.len() && flags.iter().all(|f| c.iter().any(|a| a == f)))
        .unwrap_or_else(|| panic!("the plan has no `{CALL} {}`: {cmds:?}", flags.join(" ")));
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    Proc::start_with(BIN, &args, stdout)
}

/// Every line of the plan's block `name` must be on the process's stdout (waited for,
/// bounded) or in `also` (an HTTP answer, log lines).
fn expect(p: &mut Proc, checks: &BTreeMap<String, Vec<String>>, name: &str, also: &str) {
    let lines = checks
        .get(name)
        .unwrap_or_else(|| panic!("no <!-- check: {name} --> block in the plan"));
    for line in lines {
        if !also.contains(line.as_str()) {
            p.stdout_until(line.as_bytes());
        }
    }
}

#[test]
fn every_command_in_the_plan_starts_the_server() {
    let cmds = commands(PLAN);
    assert!(cmds.len() >= 4, "{cmds:?}");
    let dir = temp_dir("every-command");
    for cmd in &cmds {
        // The plan's --static folder (the offline wheels) is made where the teacher
        // makes it; here an empty one stands in (the_offline_wheel_folder_… fills one).
        let cmd = with_static_dir(cmd, &dir);
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        // Waits for "listening on": an unknown flag or a refused setting exits instead.
        drop(Proc::start(BIN, &args));
    }
    // The Chinese plan runs the same commands.
    assert_eq!(
        commands(PLAN_ZH),
        cmds,
        "classroom.zh.md runs other commands"
    );
}

#[test]
fn the_handshake_and_frames_steps_print_what_the_plan_shows() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &["--trace-only", "127.0.0.1"], Stdout::Capture);
    let mut s = upgraded(p.addr);
    expect(&mut p, &checks, "accept", "");
    s.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    expect(&mut p, &checks, "hello", "");
}

/// The room's command: a chat room, traced quietly, on the teacher's machine only.
const ROOM: [&str; 4] = ["--broadcast", "--trace-quiet", "--trace-only", "127.0.0.1"];

/// Minutes 37-43 happen in the room started at minute 30: the close handshake and
/// Ctrl-C are checked there, on the server the plan has running.
#[test]
fn the_close_step_prints_what_the_plan_shows_in_the_room() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &ROOM, Stdout::Capture);
    let mut s = upgraded(p.addr);
    p.wait_log("1 in the room");
    s.write_all(&frame(true, 0x8, &close_payload(1000, "bye")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    expect(&mut p, &checks, "close", "");
}

#[test]
fn the_failures_shown_in_class_get_the_answers_in_the_plan() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &["--trace-only", "127.0.0.1"], Stdout::Capture);
    let answer = http(p.addr, "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    expect(&mut p, &checks, "plain-get", &answer);
    drop(p);

    // On the projector machine (127.0.0.1), so the refusal is in the trace too.
    let mut p = start(&cmds, &["--trace-only", "127.0.0.1"], Stdout::Capture);
    let answer = http(
        p.addr,
        &upgrade_request("/", "Origin: http://evil.example\r\n"),
    );
    expect(&mut p, &checks, "foreign-origin", &answer);

    let mut p = start(
        &cmds,
        &[
            "--trace-only",
            "127.0.0.1",
            "--max-message-size",
            "16B",
            "--max-frame-size",
            "16B",
        ],
        Stdout::Capture,
    );
    let mut s = upgraded(p.addr);
    s.write_all(&frame(true, 0x1, b"a line over 16 bytes"))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1009);
    expect(&mut p, &checks, "too-big", "");
}

/// The room with thirty students: the projector follows the teacher's machine only, one
/// line per message that reaches it. A student from another address (127.0.0.2, which
/// Linux routes to the loopback) chats with the teacher and leaves no line on the
/// projector; elsewhere the student connects from 127.0.0.1 and only the lines are checked.
#[test]
fn the_room_traces_the_teachers_machine_one_line_per_message() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &ROOM, Stdout::Capture);
    let mut teacher = upgraded(p.addr);
    p.wait_log("1 in the room");
    teacher.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut teacher), (0x81, b"Hello".to_vec()));
    let other_machine = student_says(p.addr, "hi all");
    assert_eq!(read_frame(&mut teacher), (0x81, b"hi all".to_vec()));
    expect(&mut p, &checks, "room", "");
    if other_machine {
        p.wait_log("127.0.0.2");
        let projector = String::from_utf8_lossy(p.stdout_until(b"\"hi all\"")).into_owned();
        assert!(
            !projector.contains("127.0.0.2") && !projector.contains("#2 "),
            "a student's connection reached the projector:\n{projector}"
        );
    }
}

/// A student's machine says `text` in the room and reads its copy back. Returns whether
/// the student really came from another address (Linux, with python3).
fn student_says(addr: std::net::SocketAddr, text: &str) -> bool {
    if cfg!(target_os = "linux") && required("python3", runs("python3", &["-c", "pass"])) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let out = output_within(
            std::process::Command::new("python3").args([
                "-c",
                STUDENT_PY,
                &addr.port().to_string(),
                &hex(upgrade_request("/", "").as_bytes()),
                &hex(&frame(true, 0x1, text.as_bytes())),
                &(2 + text.len()).to_string(),
            ]),
            TIMEOUT,
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            said.trim(),
            format!("HTTP/1.1 101 Switching Protocols {text}")
        );
        return true;
    }
    let mut s = upgraded(addr);
    s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, text.as_bytes().to_vec()));
    false
}

/// A client bound to 127.0.0.2: std cannot choose a socket's source address.
const STUDENT_PY: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10,
                             source_address=("127.0.0.2", 0))
s.sendall(bytes.fromhex(sys.argv[2]))
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += s.recv(1)
s.sendall(bytes.fromhex(sys.argv[3]))
want, got = int(sys.argv[4]), b""
while len(got) < want:
    got += s.recv(want - len(got))
print(head.split(b"\r\n")[0].decode(), got[2:].decode())
"#;

/// Ctrl-C is SIGINT: every student's page gets 1001 and a clean close, and the server
/// exits 0. Then `kill -9 $(pgrep -x tinyws)`: pgrep must find the binary by that name,
/// and the clients get no close frame at all (the browser reports 1006).
#[cfg(unix)]
#[test]
fn ctrl_c_says_goodbye_with_1001_and_kill_9_does_not() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &ROOM, Stdout::Capture);
    let mut s = upgraded(p.addr);
    p.wait_log("1 in the room");
    p.signal("-INT");
    let (first, payload) = read_frame(&mut s);
    assert_eq!((first, &payload[..2]), (0x88, &1001u16.to_be_bytes()[..]));
    s.write_all(&frame(true, 0x8, &payload[..2])).unwrap();
    assert!(read_to_end(&mut s).is_empty());
    assert_eq!(p.wait_exit(TIMEOUT), Some(0));
    let log = p.rest_of_log().join("\n");
    expect(&mut p, &checks, "ctrl-c", &log);

    assert!(PLAN.contains("kill -9 $(pgrep -x tinyws)"));
    // "Start the room again (the same command)".
    let mut p = start(&cmds, &ROOM, Stdout::Null);
    #[cfg(target_os = "linux")]
    {
        // pgrep -x matches the process name exactly: the kernel's comm.
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", p.pid())).unwrap();
        assert_eq!(
            comm.trim_end(),
            "tinyws",
            "pgrep -x tinyws would not find it"
        );
    }
    let mut s = upgraded(p.addr);
    p.wait_log("1 in the room");
    // Our own child only (never pgrep here: other tests run tinyws too).
    let ok = std::process::Command::new("kill")
        .args(["-9", &p.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(
        read_to_end(&mut s).is_empty(),
        "after kill -9 nothing, not even a close frame, may arrive"
    );
}

// The one-liner is the plan's Unix shell line (Windows has its own PowerShell line).
#[cfg(unix)]
#[test]
fn the_accept_one_liner_prints_the_rfc_value() {
    if !required("sh and openssl", runs("openssl", &["version"])) {
        return;
    }
    let line = PLAN
        .lines()
        .find(|l| l.starts_with("printf '%s' 'dGhl") && l.contains("openssl dgst -sha1"))
        .expect("the plan's openssl one-liner");
    let out = output_within(
        std::process::Command::new("sh").args(["-c", line]),
        std::time::Duration::from_secs(10),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), RFC_ACCEPT);
}

#[test]
fn the_plan_says_what_to_prepare_and_what_students_need() {
    for (plan, what) in [(PLAN, "classroom.md"), (PLAN_ZH, "classroom.zh.md")] {
        for needle in [
            "cargo build --release --bins --examples",
            "cargo fetch",
            "python3 -m pip install websockets",
            "py -m pip install websockets",
            "cargo run --example client -- ws://192.168.1.10:8080/",
            // Frames by hand: the raw client, on the projector machine and the students'.
            "--raw ws://127.0.0.1:8080/",
            "--raw ws://192.168.1.10:8080/",
            "Stop-Process -Name tinyws -Force",
            "[Security.Cryptography.SHA1]",
            "crypto.subtle.digest('SHA-1'",
            // handshake_by_hand on its own port: tinyws may still hold 8080.
            "cargo run --release --example handshake_by_hand -- 9001",
            "ws://localhost:9001/",
            // Before class: prerequisites per system, the firewall, an offline room.
            "rustup",
            "build-essential",
            "xcode-select --install",
            "stable-x86_64-pc-windows-gnu",
            "Set-NetConnectionProfile",
            "pip download websockets",
            "--find-links http://192.168.1.10:8081/",
            // The hash where a phone cannot compute it, on a secure context.
            "python3 -c \"import base64,hashlib;",
            "http://127.0.0.1:8080/",
        ] {
            assert!(plan.contains(needle), "{what} does not say {needle:?}");
        }
    }
    // The same output blocks in both languages.
    assert_eq!(
        checks(PLAN_ZH),
        checks(PLAN),
        "classroom.zh.md shows other outputs"
    );
}

/// Every `<!-- check: NAME -->` block of the plan is one a test here runs: a new block
/// without a test would claim output nobody checks.
#[test]
fn every_check_block_in_the_plan_is_tested() {
    let tested = [
        "accept",
        "close",
        "ctrl-c",
        "foreign-origin",
        "hello",
        "plain-get",
        "room",
        "too-big",
    ];
    let source = std::fs::read_to_string("tests/classroom.rs").unwrap();
    for name in tested {
        assert!(
            source.contains(&format!("expect(&mut p, &checks, \"{name}\"")),
            "{name} is listed as tested but no test expects it"
        );
    }
    let blocks: Vec<String> = checks(PLAN).into_keys().collect();
    assert_eq!(blocks, tested, "check blocks in docs/classroom.md");
    let blocks_zh: Vec<String> = checks(PLAN_ZH).into_keys().collect();
    assert_eq!(blocks_zh, tested, "check blocks in docs/classroom.zh.md");
}

/// The plan's Python one-liner, as a teacher on any system runs it.
#[test]
fn the_python_one_liner_prints_the_rfc_value() {
    if !required("python3", runs("python3", &["-c", "pass"])) {
        return;
    }
    for plan in [PLAN, PLAN_ZH] {
        let line = plan
            .lines()
            .find(|l| l.starts_with("python3 -c \"import base64,hashlib;"))
            .expect("the plan's python one-liner");
        let script = line
            .strip_prefix("python3 -c \"")
            .and_then(|l| l.strip_suffix('"'))
            .expect("python3 -c \"…\"");
        let out = output_within(
            std::process::Command::new("python3").args(["-c", script]),
            std::time::Duration::from_secs(10),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), RFC_ACCEPT);
    }
}

/// An offline room: the plan's shell line writes a page of links into the wheels
/// folder, and the plan's second tinyws serves it and the wheel, as pip's
/// `--find-links` reads them.
#[cfg(unix)]
#[test]
fn the_offline_wheel_folder_is_served_for_pip() {
    let root = temp_dir("wheels");
    let wheel = "websockets-17.4-cp312-cp312-win_amd64.whl";
    std::fs::create_dir_all(root.0.join("wheels")).unwrap();
    std::fs::write(root.0.join("wheels").join(wheel), b"PK wheel bytes").unwrap();
    let line = PLAN
        .lines()
        .find(|l| l.starts_with("cd wheels && for f in *.whl"))
        .expect("the plan's index.html line");
    let out = output_within(
        std::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(&root.0),
        std::time::Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmds = commands(PLAN);
    let cmd = cmds
        .iter()
        .find(|c| c.contains(&"--static".to_string()))
        .expect("the plan's --static command");
    let cmd = with_static_dir(cmd, &root);
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let p = Proc::start(BIN, &args);
    let index = http(p.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        index.contains(&format!("<a href=\"{wheel}\">{wheel}</a>")),
        "{index}"
    );
    let file = http(p.addr, &format!("GET /{wheel} HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(file.starts_with("HTTP/1.1 200 OK") && file.ends_with("PK wheel bytes"));
}

/// "The lesson at a glance": the core rows run from 0 to 45 without a gap, each row's
/// steps (their minutes in parentheses) fill it exactly, and every timed section of the
/// plan is a row. In both languages.
#[test]
fn the_timing_table_adds_up_to_45_minutes() {
    for (plan, what) in [(PLAN, "classroom.md"), (PLAN_ZH, "classroom.zh.md")] {
        let mut end = 0;
        let mut rows = Vec::new();
        for line in plan.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some((a, b)) = cells.get(1).and_then(|c| c.split_once('-')) else {
                continue;
            };
            let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) else {
                continue;
            };
            assert_eq!(
                a, end,
                "{what}: the row {a}-{b} does not start where the last ended"
            );
            let steps: u32 = cells[2]
                .split(['(', '（'])
                .skip(1)
                .filter_map(|p| p.split([')', '）']).next()?.parse::<u32>().ok())
                .sum();
            assert!(
                steps == 0 || steps == b - a,
                "{what}: the steps of {a}-{b} take {steps} minutes"
            );
            rows.push(format!("{a}-{b}"));
            end = b;
        }
        assert_eq!(end, 45, "{what}: the core ends at minute {end}");
        let sections: Vec<String> = plan
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .filter_map(|l| l.split([' ', '：']).next())
            .filter(|r| r.contains('-') && r.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        assert_eq!(
            sections, rows,
            "{what}: timed sections and table rows differ"
        );
    }
}
