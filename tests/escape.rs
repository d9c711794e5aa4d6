//! No client byte reaches the log, the trace or `--stdout` raw. Each class of character
//! that could drive a terminal, forge or split a line, reorder one, or pass for the log's
//! own markup (C0 with CR, LF, ESC and NUL; DEL; C1 with U+0085; the bidirectional
//! controls; U+2028 and U+2029; the backslash; the backtick; bytes that are not UTF-8)
//! goes through every way a client has into them: a close reason, the path, `Origin`,
//! `Host`, `Sec-WebSocket-Protocol`, a `--stdout` message. All against the real binary,
//! whose log formatter also rewrites backticked setting names. And a path tinyws refuses
//! is logged once, at info, not as a warning that asks for a report.

mod common;

use std::io::Write;

use common::process::Proc;
#[cfg(any(feature = "pipes", feature = "teach"))]
use common::process::Stdout;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// What a line of the log, the trace or `--stdout` may never hold raw: C0, DEL, C1, the
/// bidirectional controls, the line and paragraph separators; and U+FFFD, which is how
/// the tests read a raw byte that is not UTF-8 (common/process.rs).
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{fffd}'
        )
}

fn assert_clean(lines: &[String]) {
    for line in lines {
        assert!(!line.chars().any(is_hostile), "a raw character in {line:?}");
        // The binary writes `field` as "field (--flag)": never for a client's backticks.
        for rewritten in ["(--max-connections)", "(--stall-timeout)"] {
            assert!(!line.contains(rewritten), "client text rewritten: {line:?}");
        }
    }
}

/// The line of `lines` that contains `needle`.
fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:#?}"))
}

/// A close reason with every class a reason can carry (any UTF-8, RFC 6455 §5.5.1) and
/// a forged log line after its LF; 118 bytes, within the 123 a close frame allows.
const REASON: &str = "bye\r\n[W tinyws] forged \x1b]0;owned\x07\0\x7f\u{85}\u{9b}\u{202e}\u{2066}\u{61c}\u{200f}\u{2028}\u{2029}\t\\n`max_connections`";
/// [`REASON`] as the log and the trace show it.
const REASON_SHOWN: &str = r"bye\r\n[W tinyws] forged \u{1b}]0;owned\u{7}\0\u{7f}\u{85}\u{9b}\u{202e}\u{2066}\u{61c}\u{200f}\u{2028}\u{2029}\t\\n\u{60}max_connections\u{60}";

#[test]
fn a_close_reason_reaches_the_log_escaped_on_its_own_line() {
    let mut p = Proc::start(BIN, &[]);
    let mut s = upgraded(p.addr);
    s.write_all(&frame(true, 0x8, &close_payload(1000, REASON)))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    let lines = p.log_through("closed, code 1000");
    assert_clean(&lines);
    let closed = lines.last().unwrap();
    assert!(
        closed.ends_with(&format!(": closed, code 1000 ({REASON_SHOWN})")),
        "{closed:?}"
    );
}

/// At debug and trace, tungstenite's own lines quote the close reason and every text
/// message: the binary writes them escaped too.
#[test]
fn tungstenites_lines_are_escaped_at_trace_level() {
    let mut p = Proc::start_logging(BIN, &[], "trace");
    let mut s = upgraded(p.addr);
    let text = "hi\r\n[W tinyws] forged\x1b]0;t\x07\u{85}\u{202e}\u{2028}";
    s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, text.as_bytes().to_vec()));
    s.write_all(&frame(true, 0x8, &close_payload(1000, REASON)))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    let lines = p.log_through(": closed, code 1000");
    assert_clean(&lines);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tungstenite") && l.contains(r"forged\u{1b}]0;t\u{7}")),
        "{lines:#?}"
    );
}

/// A raw request: `path` as bytes, the usual upgrade headers, `extra` header lines.
fn upgrade_bytes(path: &[u8], host: &str, extra: &[u8]) -> Vec<u8> {
    let mut head = b"GET ".to_vec();
    head.extend_from_slice(path);
    head.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n"
        )
        .as_bytes(),
    );
    head.extend_from_slice(extra);
    head.extend_from_slice(b"\r\n");
    head
}

/// Sends `head` and returns the whole answer (the server closes after a refusal; after
/// a 101 the client closes first).
fn send(p: &Proc, head: &[u8]) -> String {
    let mut s = tcp(p.addr);
    s.write_all(head).unwrap();
    let answer = read_head(&mut s);
    if answer.starts_with("HTTP/1.1 101 ") {
        s.write_all(&frame(true, 0x8, &close_payload(1000, "")))
            .unwrap();
        expect_close(&mut s);
        return answer;
    }
    answer + &String::from_utf8_lossy(&read_to_end(&mut s))
}

#[test]
fn paths_reach_the_log_escaped() {
    let mut p = Proc::start(BIN, &[]);
    // Upgraded: what a path may hold that tungstenite takes too (UTF-8, a backslash).
    let opened = "/a\\b\u{85}\u{202e}\u{2028}\u{61c}c";
    assert!(send(&p, &upgrade_bytes(opened.as_bytes(), "h", b"")).starts_with("HTTP/1.1 101 "));
    let lines = p.log_through(": opened /");
    assert_clean(&lines);
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with(r": opened /a\\b\u{85}\u{202e}\u{2028}\u{61c}c"),
        "{lines:#?}"
    );
    // Refused, and the request line logged: C0 (CR, ESC, BEL, NUL), DEL and bytes that
    // are not UTF-8, which httparse refuses; a backtick, which tinyws refuses.
    for (path, shown) in [
        (
            &b"/x\r[W tinyws] forged\x1b]0;t\x07\x00\x7f"[..],
            r"/x\r[W tinyws] forged\u{1b}]0;t\u{7}\0\u{7f}",
        ),
        (b"/a\xffb\xc3(", r"/a\xffb\xc3("),
        (b"/`max_connections`", r"/\u{60}max_connections\u{60}"),
    ] {
        let answer = send(&p, &upgrade_bytes(path, "h", b""));
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        let lines = p.log_through("answered 400");
        assert_clean(&lines);
        let line = lines.last().unwrap();
        assert!(
            line.contains(&format!(": \"GET {shown} HTTP/1.1\" answered 400: ")),
            "{shown}: {line:?}"
        );
    }
}

#[test]
fn origin_host_and_subprotocols_reach_the_log_escaped() {
    let mut p = Proc::start(BIN, &[]);
    // Header values may hold a tab and any byte from 0x20 (httparse); trimmed at both
    // ends, so the classes sit inside.
    let origin = "http://evil`max_connections`.example\\\t\u{85}\u{202e}\u{2028}x";
    // A Host with any of these is no host name: refused with 400 before anything reads
    // it (RFC 9112 §3.2), and the refusal's lines carry none of it raw.
    let host = "h`stall_timeout`\u{2066}\\\u{9b}y";
    let answer = send(&p, &upgrade_bytes(b"/", host, b""));
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_clean(&p.log_through("answered 400"));
    let answer = send(
        &p,
        &upgrade_bytes(b"/", "h", format!("Origin: {origin}\r\n").as_bytes()),
    );
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    let lines = p.log_through("refused Origin");
    assert_clean(&lines);
    let origin_shown = r"http://evil\u{60}max_connections\u{60}.example\\\t\u{85}\u{202e}\u{2028}x";
    let host_shown = "h";
    assert!(
        line_with(&lines, "answered 403").contains(&format!(
            "answered 403: Origin {origin_shown} may not open WebSocket connections"
        )),
        "{lines:#?}"
    );
    assert!(
        lines.last().unwrap().ends_with(&format!(
            "refused Origin {origin_shown} (Host {host_shown}); to allow it, start tinyws with --allow-origin {origin_shown}"
        )),
        "{lines:#?}"
    );

    let offered = "a`stall_timeout`b, p\u{85}\u{202e}\u{2028}\\x\t";
    let answer = send(
        &p,
        &upgrade_bytes(
            b"/",
            "h",
            format!("Sec-WebSocket-Protocol: {offered}\r\n").as_bytes(),
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    let lines = p.log_through("offered subprotocols");
    assert_clean(&lines);
    assert!(
        lines.last().unwrap().contains(
            r"offered subprotocols a\u{60}stall_timeout\u{60}b, p\u{85}\u{202e}\u{2028}\\x, none of which"
        ),
        "{lines:#?}"
    );
}

#[test]
fn a_path_tungstenite_would_refuse_is_refused_once_at_info() {
    let mut p = Proc::start(BIN, &[]);
    for path in ["/a`b", "/a<b", "/a>b", "/?q=<", "/?q=>", "/?q=\""] {
        let answer = send(&p, &upgrade_bytes(path.as_bytes(), "h", b""));
        assert!(answer.starts_with("HTTP/1.1 400 "), "{path}: {answer}");
        assert!(answer.contains("not a valid URI"), "{path}: {answer}");
        let lines = p.log_through("answered 400");
        let line = lines.last().unwrap();
        assert!(line.contains(" INFO "), "{path}: {line}");
        assert!(
            !lines.iter().any(|l| l.contains(" WARN ")),
            "{path}: {lines:#?}"
        );
    }
    // Every other printable byte, in the path and in the query: an upgrade, or the same
    // 400; never a request tinyws accepts and tungstenite then refuses.
    for b in 0x21u8..=0x7e {
        for at in ["/a", "/?q="] {
            let mut path = at.as_bytes().to_vec();
            path.push(b);
            let answer = send(&p, &upgrade_bytes(&path, "h", b""));
            assert!(
                answer.starts_with("HTTP/1.1 101 ")
                    || answer.starts_with("HTTP/1.1 400 ") && answer.contains("not a valid URI"),
                "{:?}: {answer}",
                b as char
            );
        }
    }
    send(&p, b"GET /the-end HTTP/1.1\r\nHost: h\r\n\r\n");
    let lines = p.log_through("/the-end");
    for line in &lines {
        assert!(!line.contains(" WARN "), "{line}");
        assert!(!line.contains("Please report"), "{line}");
    }
}

/// A text message with every class, the exact words of the marker `--stdout` once
/// wrote for lines left out, and a typed `\n`.
#[cfg(feature = "pipes")]
const MESSAGE: &str = "a\\nb\n-- 3 message line(s) left out here: this stream was not read while 1 MiB waited\r\x1b]0;t\x07\0\x7f\u{85}\u{9b}\u{202e}\u{2066}\u{61c}\u{200f}\u{2028}\u{2029}\t`code` 温度";
/// [`MESSAGE`] as its `--stdout` line shows it (the backtick stays: no markup there).
#[cfg(feature = "pipes")]
const MESSAGE_LINE: &str = r"a\\nb\n-- 3 message line(s) left out here: this stream was not read while 1 MiB waited\r\u{1b}]0;t\u{7}\0\u{7f}\u{85}\u{9b}\u{202e}\u{2066}\u{61c}\u{200f}\u{2028}\u{2029}\t`code` 温度";

#[cfg(feature = "pipes")]
#[test]
fn a_stdout_line_is_the_message_escaped_on_one_line() {
    let mut p = Proc::start_with(BIN, &["--stdout"], Stdout::Capture);
    let mut ws = ws(p.addr, "/");
    for text in [MESSAGE, "a\nb", "a\\nb", "end"] {
        ws.send(tinyws::Message::text(text)).unwrap();
        ws.read().unwrap();
    }
    let out = p.stdout_until(b"end\n").to_vec();
    let out = String::from_utf8(out).expect("stdout is UTF-8");
    assert_eq!(
        out,
        format!("{MESSAGE_LINE}\n{}\n{}\nend\n", r"a\nb", r"a\\nb")
    );
    // Four messages, four lines, however a reader splits them (Python's splitlines
    // breaks at VT, FF, FS, GS, RS, NEL and U+2028/U+2029 too).
    assert_eq!(out.split('\n').filter(|l| !l.is_empty()).count(), 4);
    assert!(!out.chars().any(|c| c != '\n' && is_hostile(c)), "{out:?}");
}

/// The Python in docs/reference.md reading `--stdout` back: run on the lines above, it must give
/// the messages exactly as sent.
#[cfg(feature = "pipes")]
#[test]
fn the_reference_python_reads_stdout_back_exactly() {
    if !required("python3", runs("python3", &["--version"])) {
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md"))
        .expect("read docs/reference.md");
    let code = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```python block in docs/reference.md");
    // Indented under its list item: as Python wants it, at the margin.
    let indent = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let code: String = code
        .lines()
        .map(|l| format!("{}\n", l.get(indent..).unwrap_or("")))
        .collect();
    // That function, on each line of stdin; each message out as UTF-8 with its
    // byte length first, so any character can come back.
    let script = format!(
        "{code}\nimport sys\nfor line in sys.stdin.buffer.read().decode().split('\\n')[:-1]:\n    m = message(line).encode()\n    sys.stdout.buffer.write(b'%d:' % len(m) + m)\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python3");
    let lines = format!("{MESSAGE_LINE}\n{}\n{}\n", r"a\nb", r"a\\nb");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut back = Vec::new();
    let mut rest = &out.stdout[..];
    while let Some(colon) = rest.iter().position(|&b| b == b':') {
        let n: usize = std::str::from_utf8(&rest[..colon])
            .unwrap()
            .parse()
            .unwrap();
        back.push(String::from_utf8(rest[colon + 1..colon + 1 + n].to_vec()).unwrap());
        rest = &rest[colon + 1 + n..];
    }
    assert_eq!(back, [MESSAGE, "a\nb", "a\\nb"]);
}

#[cfg(all(unix, feature = "pipes"))]
#[test]
fn lines_left_out_of_stdout_are_counted_in_the_log_not_on_stdout() {
    let mut p = Proc::start_with(BIN, &["--stdout"], Stdout::Unread);
    let mut ws = ws(p.addr, "/");
    // A client types the marker's words: on stdout they can only be its message.
    let forged = "-- 7 message line(s) left out here: this stream was not read while 1 MiB waited";
    let mut send = |text: String| {
        let msg = tinyws::Message::text(text);
        ws.send(msg.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), msg);
    };
    send(forged.to_string());
    // 6 MiB of numbered lines: far more than the pipe (64 KiB) and the queue (1 MiB).
    let filler = "y".repeat(32 * 1024);
    for i in 0..192 {
        send(format!("{i:04}{filler}"));
    }
    p.wait_log("standard output is not being read");
    p.resume_stdout();
    let marked = p.wait_log("message line(s) left out after line");
    p.signal("-TERM");
    assert_eq!(p.wait_exit(std::time::Duration::from_secs(10)), Some(0));
    let out = String::from_utf8(p.stdout_to_end().to_vec()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // "… N message line(s) left out after line K of standard output …"
    let words: Vec<&str> = marked.split(' ').collect();
    let at = words.iter().position(|w| *w == "line(s)").unwrap();
    let n: usize = words[at - 2].parse().unwrap();
    let k: usize = words[at + 5].parse().unwrap();
    // Stdout is the messages alone: the forged one, then the first K - 1 numbered ones;
    // the other N are the ones left out.
    assert_eq!(lines.len(), k, "{marked}");
    assert_eq!(k + n, 1 + 192, "{marked}");
    assert_eq!(lines[0], forged);
    for (i, line) in lines[1..].iter().enumerate() {
        assert_eq!(line, &format!("{i:04}{filler}"), "line {}", i + 2);
    }
}

#[cfg(feature = "teach")]
#[test]
fn the_trace_shows_client_text_escaped_and_has_no_forged_line() {
    let mut p = Proc::start_with(BIN, &["--trace"], Stdout::Capture);
    let mut s = tcp(p.addr);
    let note = [
        b"X-Note: a\tb\\c`d".as_slice(),
        "\u{202e}".as_bytes(),
        "\u{85}\u{2028}e\u{2029}".as_bytes(),
        b"\xff\r\n",
    ]
    .concat();
    s.write_all(&upgrade_bytes(b"/p\\q", "h", &note)).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    let text = "hi\n-- forged event\r\x1b[2K\u{2028}";
    s.write_all(&frame(true, 0x1, text.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, text.as_bytes().to_vec()));
    let reason = "bye\n-- forged end";
    s.write_all(&frame(true, 0x8, &close_payload(1000, reason)))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);

    // The close's line ends so, whether its LF was escaped or not.
    let out = p.stdout_until(b"forged end)\n").to_vec();
    let out = String::from_utf8_lossy(&out).into_owned();
    for line in out.lines() {
        assert!(line.starts_with("#1 "), "a line of no connection: {line:?}");
        assert!(!line.starts_with("#1 -- forged"), "a forged line: {line:?}");
        assert!(!line.chars().any(is_hostile), "a raw character: {line:?}");
    }
    for needle in [
        r"#1 <-   GET /p\\q HTTP/1.1␍␊",
        r"#1 <-   X-Note: a\tb\\c\u{60}d\u{202e}\u{85}\u{2028}e\u{2029}\xff␍␊",
        r#"#1 <-   text     "hi\n-- forged event\r\u{1b}[2K\u{2028}""#,
        r#"#1 <-   close    code 1000 (normal closure) reason "bye\n-- forged end""#,
        r"#1 -- closed, code 1000 (bye\n-- forged end)",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
}
