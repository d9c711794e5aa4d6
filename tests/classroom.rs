//! The lesson plan, run as written (issue 14 item 1). `docs/classroom.md` is read here:
//! every `./target/release/tinyws …` command in it is started (so a flag the program does
//! not have, or a combination it refuses, fails), and every output block marked
//! `<!-- check: NAME -->` must appear, line for line, in what the real binary prints when
//! the lesson's step NAME is done over real sockets. Change the program or the plan, and
//! this says where they disagree.

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
    for cmd in &cmds {
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
    let mut p = start(&cmds, &["--trace"], Stdout::Capture);
    let mut s = upgraded(p.addr);
    expect(&mut p, &checks, "accept", "");
    s.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    expect(&mut p, &checks, "hello", "");
}

/// Minutes 35-40 happen in the room started at minute 30 (`--broadcast --trace-quiet`):
/// the close handshake and Ctrl-C are checked there, on the server the plan has running.
#[test]
fn the_close_step_prints_what_the_plan_shows_in_the_room() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &["--broadcast", "--trace-quiet"], Stdout::Capture);
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
    let mut p = start(&cmds, &["--trace"], Stdout::Capture);
    let answer = http(
        p.addr,
        "GET /chat HTTP/1.1\r\nHost: 192.168.1.10:8080\r\n\r\n",
    );
    expect(&mut p, &checks, "plain-get", &answer);
    drop(p);

    let mut p = start(&cmds, &["--trace"], Stdout::Capture);
    let answer = http(
        p.addr,
        &upgrade_request("/", "Origin: http://evil.example\r\n"),
    );
    expect(&mut p, &checks, "foreign-origin", &answer);

    let mut p = start(
        &cmds,
        &[
            "--trace",
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

#[test]
fn the_room_uses_the_binary_and_traces_one_line_per_frame() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &["--broadcast", "--trace-quiet"], Stdout::Capture);
    let mut a = upgraded(p.addr);
    p.wait_log("1 in the room");
    let mut b = upgraded(p.addr);
    p.wait_log("2 in the room");
    a.write_all(&frame(true, 0x1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut a), (0x81, b"Hello".to_vec()));
    assert_eq!(read_frame(&mut b), (0x81, b"Hello".to_vec()));
    expect(&mut p, &checks, "room", "");
    // The same room, following one machine (the plan's --trace-only command) starts too:
    // every_command_in_the_plan_starts_the_server.
}

/// Ctrl-C is SIGINT: every student's page gets 1001 and a clean close, and the server
/// exits 0. Then `kill -9 $(pgrep -x tinyws)`: pgrep must find the binary by that name,
/// and the clients get no close frame at all (the browser reports 1006).
#[cfg(unix)]
#[test]
fn ctrl_c_says_goodbye_with_1001_and_kill_9_does_not() {
    let (cmds, checks) = (commands(PLAN), checks(PLAN));
    let mut p = start(&cmds, &["--broadcast", "--trace-quiet"], Stdout::Capture);
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
    let mut p = start(&cmds, &["--trace"], Stdout::Null);
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
    p.wait_log("opened /");
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
            "Stop-Process -Name tinyws -Force",
            "[Security.Cryptography.SHA1]",
            "crypto.subtle.digest('SHA-1'",
            // handshake_by_hand on its own port: tinyws may still hold 8080.
            "cargo run --release --example handshake_by_hand -- 9001",
            "ws://localhost:9001/",
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
