//! No drift between the docs and the code: every transcript in `docs/*.md` sits between
//! `<!-- capture: NAME -->` and `<!-- /capture -->`, and this test produces each one
//! again from the real `tinyws` binary (`--trace` output, `curl -i` answers) and compares.
//!
//! After changing what tinyws prints, regenerate the docs with
//!
//! ```sh
//! TINYWS_UPDATE_DOCS=1 cargo test --test docs
//! ```
//!
//! and review the diff. Volatile parts are fixed, not guessed: the clients send the RFC
//! 6455 sample key, fixed masking keys and `Host: localhost:8080`; `curl` is pointed at the
//! real port with `--connect-to`; the client's own port is shown as `‹port›`.

#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Instant;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");
/// RFC 6455 §5.7's masking key; the frames below are the RFC's own examples.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// `tinyws --trace` on a free port; stdout (the trace) arrives line by line.
struct Traced {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
    /// Lines read but not yet taken, per connection id.
    pending: BTreeMap<u64, Vec<String>>,
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Traced {
    fn start(args: &[&str]) -> Traced {
        Traced::spawn(&[&["--trace"], args].concat())
    }

    fn spawn(args: &[&str]) -> Traced {
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tinyws");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (tx, log) = channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = log.recv_timeout(left).expect("tinyws did not start");
            if let Some(rest) = line.split("listening on ws://").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        thread::spawn(move || while log.recv().is_ok() {});
        Traced {
            child,
            addr,
            lines,
            pending: BTreeMap::new(),
        }
    }

    /// Waits until connection `id` printed a line containing `until`, then returns its
    /// lines since the last call, renumbered `#1` and with the client's port hidden.
    fn take(&mut self, id: u64, until: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(lines) = self.pending.get(&id)
                && let Some(at) = lines.iter().position(|l| l.contains(until))
            {
                let taken: Vec<String> = self.pending.get_mut(&id).unwrap().drain(..=at).collect();
                return taken
                    .iter()
                    .map(|l| normalize(l.split_once(' ').map_or("", |(_, rest)| rest)))
                    .map(|l| format!("#1 {l}\n"))
                    .collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no trace line with {until:?} for #{id}: {:#?}",
                    self.pending
                )
            });
            let n: u64 = line
                .strip_prefix('#')
                .and_then(|l| l.split(' ').next())
                .and_then(|n| n.parse().ok())
                .expect("every trace line starts with #id");
            self.pending.entry(n).or_default().push(line);
        }
    }

    /// Runs `curl args…` against this server as if it were `localhost:8080`; the
    /// transcript shows the command and what curl printed.
    fn curl(&self, args: &[&str]) -> String {
        let out = Command::new("curl")
            .args(["-s", "-i", "--max-time", "5", "--connect-to"])
            .arg(format!("localhost:8080:127.0.0.1:{}", self.addr.port()))
            .args(args)
            .output()
            .expect("run curl (apt-get install curl)");
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') || a.contains('*') {
                    format!("'{a}'")
                } else {
                    a.to_string()
                }
            })
            .collect();
        format!(
            "$ curl -i {}\n{}",
            shown.join(" "),
            String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
        )
    }
}

/// The client's ephemeral port is the only thing that changes between runs.
fn normalize(line: &str) -> String {
    match line.split_once("-- connection from 127.0.0.1:") {
        Some((before, _)) => format!("{before}-- connection from 127.0.0.1:‹port›"),
        None => line.to_string(),
    }
}

/// A client frame masked with the RFC's key.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(first, payload, Some(MASK))
}

/// A request as a command-line client sends it: what tungstenite's client (and so
/// `examples/client.rs`) writes, with the RFC sample key instead of a random one.
const CLI_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: localhost:8080\r\nConnection: Upgrade\r\n\
    Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A request as Firefox sends it for `new WebSocket("ws://localhost:8080/chat")` on a
/// page from `http://localhost:8080/` (the key is the RFC's, not a random one).
const BROWSER_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: localhost:8080\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
    Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n\
    Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8080\r\n\
    Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Connection: keep-alive, Upgrade\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: websocket\r\n\
    Sec-Fetch-Site: same-origin\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
    Upgrade: websocket\r\n\r\n";

fn open(addr: SocketAddr, request: &str) -> TcpStream {
    let mut s = tcp(addr);
    s.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

// Only the Unix captures run shell one-liners (sh, sha1sum).
#[cfg(unix)]
fn shell(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{cmd}: {out:?}");
    format!("$ {cmd}\n{}", String::from_utf8_lossy(&out.stdout))
}

/// Every transcript the docs may show, by name.
// The shutdown transcript needs SIGTERM (kill): Unix only; CI regenerates on Linux.
#[cfg(unix)]
fn captures() -> BTreeMap<&'static str, String> {
    let mut c = BTreeMap::new();

    c.insert(
        "accept-shell",
        [
            shell("printf '%s' 'dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11' | sha1sum"),
            shell("printf '%s' 'dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11' | openssl dgst -sha1 -binary | base64"),
        ]
        .concat(),
    );

    // One server for the handshakes, the frames and the plain-HTTP answers.
    let mut t = Traced::start(&[]);
    let s = open(t.addr, CLI_REQUEST);
    c.insert("trace-cli-handshake", t.take(1, "->   ␍␊"));
    drop(s);
    t.take(1, "-- ");

    let mut s = open(t.addr, BROWSER_REQUEST);
    c.insert("trace-browser-handshake", t.take(2, "->   ␍␊"));

    // RFC 6455 §5.7: a single-frame masked text message "Hello".
    s.write_all(&masked(0x81, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    let mut hello = t.take(2, "<-   text");
    hello.push_str(&t.take(2, "->   text"));
    c.insert("trace-hello", hello);

    // The 16-bit length form: 200 bytes do not fit in 7 bits (at most 125).
    let long = "0123456789".repeat(20);
    s.write_all(&masked(0x81, long.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut s).1, long.as_bytes());
    let mut l = t.take(2, "<-   text");
    l.push_str(&t.take(2, "->   text"));
    c.insert("trace-126", l);

    // The 64-bit length form: the default --max-message-size, 64 KiB, is 65,536 bytes,
    // one more than 16 bits hold.
    let big: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
    s.write_all(&masked(0x82, &big)).unwrap();
    assert_eq!(read_frame(&mut s), (0x82, big));
    let mut l = t.take(2, "<-   unmasked");
    l.push_str(&t.take(2, "->   payload"));
    c.insert("trace-127", l);

    // A fragmented message: "Hel" (FIN=0, text) then "lo" (FIN=1, continuation).
    s.write_all(&masked(0x01, b"Hel")).unwrap();
    s.write_all(&masked(0x80, b"lo")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    let mut f = t.take(2, "\"Hel\"");
    f.push_str(&t.take(2, "\"lo\""));
    f.push_str(&t.take(2, "->   text"));
    c.insert("trace-fragments", f);

    // RFC 6455 §5.7: a masked ping with "Hello", and the pong.
    s.write_all(&masked(0x89, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x8a, b"Hello".to_vec()));
    let mut p = t.take(2, "<-   unmasked");
    p.push_str(&t.take(2, "->   payload"));
    c.insert("trace-ping", p);

    // The close handshake: the client's 1000, the server's echo, then TCP closes.
    s.write_all(&masked(0x88, &close_payload(1000, "bye")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    c.insert("trace-close", t.take(2, "-- closed"));

    // A protocol error: an unmasked client frame (§5.1) gets 1002.
    let mut s = open(t.addr, CLI_REQUEST);
    t.take(3, "->   ␍␊");
    s.write_all(&frame_with(0x81, b"Hello", None)).unwrap();
    assert_eq!(expect_close(&mut s), 1002);
    c.insert("trace-unmasked", t.take(3, "-- "));

    // A plain GET on / gets the page; other answers, as curl shows them.
    let page = t.curl(&["http://localhost:8080/"]);
    let head = page.split("\n\n").next().unwrap();
    // The page shows the request that fetched it, User-Agent and all, so its exact
    // length depends on curl's version: the docs show it to the nearest thousand.
    let head: Vec<String> = head
        .lines()
        .map(|l| match l.strip_prefix("Content-Length: ") {
            Some(n) => format!(
                "Content-Length: ‹about {},000: the page shows the request, and curl's version is in it›",
                (n.trim().parse::<usize>().expect("a length") + 500) / 1000
            ),
            None => l.to_string(),
        })
        .collect();
    let head = head.join("\n");
    c.insert("curl-page", format!("{head}\n\n<!doctype html>\n…\n"));
    c.insert("curl-426", t.curl(&["http://localhost:8080/chat"]));
    c.insert(
        "curl-400",
        t.curl(&[
            "-H",
            "Upgrade: websocket",
            "-H",
            "Connection: Upgrade",
            "-H",
            "Sec-WebSocket-Version: 13",
            "http://localhost:8080/chat",
        ]),
    );
    c.insert(
        "curl-403",
        t.curl(&[
            "-H",
            "Upgrade: websocket",
            "-H",
            "Connection: Upgrade",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "-H",
            "Origin: http://evil.example",
            "http://localhost:8080/chat",
        ]),
    );
    drop(t);

    let t = Traced::start(&["--path", "/echo"]);
    c.insert("curl-404", t.curl(&["http://localhost:8080/chat"]));
    drop(t);

    // At the cap: one WebSocket client holds the only slot. (A connection that has not
    // sent its request head would be pushed out to make room instead: client/registry.rs
    // `make_room`.)
    let mut t = Traced::start(&["--max-connections", "1"]);
    let hold = open(t.addr, CLI_REQUEST);
    t.take(1, "->   ␍␊");
    c.insert("curl-503", t.curl(&["http://localhost:8080/chat"]));
    drop(hold);
    drop(t);

    // 1009: a message over --max-message-size.
    let mut t = Traced::start(&["--max-message-size", "16B", "--max-frame-size", "16B"]);
    let mut s = open(t.addr, CLI_REQUEST);
    t.take(1, "->   ␍␊");
    s.write_all(&masked(0x81, b"more than sixteen bytes"))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1009);
    c.insert("trace-too-big", t.take(1, "-- "));
    drop(t);

    // Keepalive: after --ping-interval of silence the server pings; the client pongs.
    let mut t = Traced::start(&["--ping-interval", "1s"]);
    let mut s = open(t.addr, CLI_REQUEST);
    t.take(1, "->   ␍␊");
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, 0x89);
    s.write_all(&masked(0x8a, &payload)).unwrap();
    let mut k = t.take(1, "->   payload");
    k.push_str(&t.take(1, "<-   unmasked"));
    c.insert("trace-keepalive", k);

    // 1001: the server shuts down (SIGTERM) with a client connected.
    let pid = t.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let (first, payload) = read_frame(&mut s);
    assert_eq!((first, &payload[..2]), (0x88, &[0x03, 0xe9][..]));
    s.write_all(&masked(0x88, &payload[..2])).unwrap();
    c.insert("trace-shutdown", t.take(1, "-- closed"));
    drop(t);

    c
}

#[test]
fn trace_narrates_the_rfc_sample_handshake() {
    let mut t = Traced::start(&[]);
    let _s = open(t.addr, CLI_REQUEST);
    let trace = t.take(1, "->   ␍␊");
    for needle in [
        "<-   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==␍␊",
        "ok  Connection: Upgrade has the token \"Upgrade\"",
        "== key + GUID     dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
        "== SHA-1 (hex)    b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea",
        "== base64(SHA-1)  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        "->   HTTP/1.1 101 Switching Protocols␍␊",
        "->   sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=␍␊",
    ] {
        assert!(trace.contains(needle), "{needle:?} missing from:\n{trace}");
    }
}

#[test]
fn without_trace_nothing_is_printed_on_stdout() {
    let mut t = Traced::spawn(&[]);
    let mut s = open(t.addr, CLI_REQUEST);
    s.write_all(&masked(0x81, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"Hello".to_vec()));
    s.write_all(&masked(0x88, &close_payload(1000, "")))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
    let _ = t.child.kill();
    let _ = t.child.wait();
    // stdout is closed now: the reader thread has sent every line it got.
    assert!(
        t.lines.recv_timeout(TIMEOUT).is_err(),
        "stdout was not empty"
    );
}

const OPEN: &str = "<!-- capture: ";
const CLOSE: &str = "<!-- /capture -->";

/// The doc with every capture block filled from `captures`; unknown names fail.
fn render(doc: &str, captures: &BTreeMap<&str, String>, file: &str) -> String {
    let mut out = String::new();
    let mut rest = doc;
    while let Some(at) = rest.find(OPEN) {
        let name_end = rest[at..]
            .find(" -->")
            .expect("capture marker ends with -->")
            + at;
        let name = &rest[at + OPEN.len()..name_end];
        let text = captures
            .get(name)
            .unwrap_or_else(|| panic!("{file}: unknown capture {name:?}"));
        let end = rest[name_end..]
            .find(CLOSE)
            .unwrap_or_else(|| panic!("{file}: capture {name:?} is not closed"))
            + name_end;
        out.push_str(&rest[..name_end + 4]);
        out.push_str("\n```text\n");
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("```\n");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(unix)]
#[test]
fn docs_transcripts_match_what_tinyws_prints() {
    let captures = captures();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let update = std::env::var_os("TINYWS_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    for path in files {
        let doc = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for name in captures.keys() {
            if doc.contains(&format!("{OPEN}{name} -->")) {
                used.insert(*name);
            }
        }
        let fresh = render(&doc, &captures, &file);
        if fresh != doc {
            if update {
                std::fs::write(&path, fresh).unwrap();
                eprintln!("updated docs/{file}");
            } else {
                stale.push(file);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these docs no longer match what tinyws prints: {stale:?}\n\
         regenerate with `TINYWS_UPDATE_DOCS=1 cargo test --test docs` and review the diff"
    );
    let unused: Vec<_> = captures.keys().filter(|k| !used.contains(*k)).collect();
    assert!(unused.is_empty(), "captures no doc shows: {unused:?}");
}

#[test]
fn render_fills_and_replaces_blocks() {
    let mut c = BTreeMap::new();
    c.insert("a", "one\n".to_string());
    let doc = "x\n<!-- capture: a -->\n```text\nold\n```\n<!-- /capture -->\ny\n";
    assert_eq!(
        render(doc, &c, "t.md"),
        "x\n<!-- capture: a -->\n```text\none\n```\n<!-- /capture -->\ny\n"
    );
    let empty = "<!-- capture: a -->\n<!-- /capture -->";
    assert_eq!(
        render(empty, &c, "t.md"),
        "<!-- capture: a -->\n```text\none\n```\n<!-- /capture -->"
    );
}

/// The Chinese pages are translations, not summaries: the same numbered sections and
/// the same transcripts, in the same order, byte for byte. topics.md has commands but no
/// transcripts (what it shows depends on random keys, ports and timing).
#[test]
fn english_and_chinese_docs_have_the_same_sections_and_transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for name in ["handshake", "frames", "classroom", "topics"] {
        let en = std::fs::read_to_string(dir.join(format!("{name}.md"))).unwrap();
        let zh = std::fs::read_to_string(dir.join(format!("{name}.zh.md"))).unwrap();
        let sections = |doc: &str| -> Vec<String> {
            doc.lines()
                .filter(|l| l.starts_with("## "))
                // The number (or minute range) before the title: the title is translated.
                .map(|l| {
                    let first = l[3..].split([' ', '：', ':']).next().unwrap_or("");
                    match first.starts_with(|c: char| c.is_ascii_digit()) {
                        true => first.to_string(),
                        false => "(unnumbered)".to_string(),
                    }
                })
                .collect()
        };
        assert_eq!(sections(&en), sections(&zh), "{name}: sections differ");
        // Each transcript: the marker (`<!-- capture: NAME -->`, or `<!-- check: NAME -->`
        // in the lesson plan) and the code block after it. Other blocks (diagrams, the
        // commands' comments) are translated.
        let transcripts = |doc: &str| -> Vec<String> {
            let mut out = Vec::new();
            for marker in ["<!-- capture: ", "<!-- check: "] {
                for part in doc.split(marker).skip(1) {
                    let block: Vec<&str> = part.splitn(3, "```").take(2).collect();
                    out.push(block.join("```"));
                }
            }
            out
        };
        let (en_t, zh_t) = (transcripts(&en), transcripts(&zh));
        assert!(
            name == "topics" || !en_t.is_empty(),
            "{name}: no transcripts found"
        );
        assert_eq!(en_t, zh_t, "{name}: the transcripts differ");
    }
}

/// The lines of `doc` outside fenced code blocks (a `#` in a shell block is no heading).
fn prose(doc: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push(line);
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// each space a `-` (so "One room per path (`--rooms`)" is `one-room-per-path---rooms`).
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The targets of the `[text](target)` links in `doc`'s prose.
fn links(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(doc) {
        for part in line.split("](").skip(1) {
            if let Some(end) = part.find(')') {
                out.push(part[..end].to_string());
            }
        }
    }
    out
}

/// Every relative link in the READMEs, the changelog and docs/*.md names a file that
/// exists and, after `#`, a heading that file has: a section moved from one file to
/// another cannot leave a link pointing at nothing.
#[test]
fn relative_links_in_the_docs_land_on_a_file_and_a_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["README.md", "README.zh.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    files.extend(
        std::fs::read_dir(root.join("docs"))
            .expect("docs/")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = match path {
                "" => file.clone(),
                _ => file.parent().unwrap().join(path),
            };
            let Ok(doc) = std::fs::read_to_string(&target) else {
                if !target.is_dir() {
                    broken.push(format!("{}: {link} (no such file)", file.display()));
                }
                continue;
            };
            let headings: Vec<String> = prose(&doc)
                .into_iter()
                .filter(|l| l.starts_with('#'))
                .map(|l| anchor(l.trim_start_matches('#')))
                .collect();
            if !fragment.is_empty() && !headings.iter().any(|h| h == fragment) {
                broken.push(format!("{}: {link} (no such heading)", file.display()));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the link parser broken?"
    );
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        anchor(" One room per path (`--rooms`)"),
        "one-room-per-path---rooms"
    );
    assert_eq!(anchor(" Performance, measured"), "performance-measured");
    assert_eq!(anchor(" 1. 握手"), "1-握手");
}

/// The README's shortest program is `examples/echo.rs` without its header, byte for
/// byte: that file is compiled and run by tests/examples.rs, so the README's is too.
#[test]
fn the_readme_program_is_the_echo_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let echo = std::fs::read_to_string(root.join("examples/echo.rs")).unwrap();
    let code = &echo[echo.find("use tinyws").expect("echo.rs imports tinyws")..];
    assert!(
        readme.contains(&format!("```rust\n{code}```")),
        "README.md's rust block must be examples/echo.rs from `use tinyws` on"
    );
}

const TOPICS: &str = include_str!("../docs/topics.md");
const TOPICS_ZH: &str = include_str!("../docs/topics.zh.md");

/// The arguments of every tinyws command in `doc`'s code blocks: lines that start the
/// binary, and what follows `--` in `cargo run … --` (comments after ` #` left out).
fn tinyws_commands(doc: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let line = line.split(" #").next().unwrap_or("");
        let args = match (
            line.strip_prefix("./target/release/tinyws"),
            line.split_once(" -- "),
        ) {
            (Some(args), _) => args,
            (None, Some((cargo, args))) if cargo.starts_with("cargo run") => args,
            _ => continue,
        };
        if fenced {
            out.push(args.split_whitespace().map(String::from).collect());
        }
    }
    out
}

/// The first code block of `doc` that contains `needle`, its `\`-continued lines joined.
fn block_with(doc: &str, needle: &str) -> String {
    doc.split("```")
        .skip(1)
        .step_by(2)
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no code block with {needle:?}"))
        .replace("\\\n", " ")
}

/// Every tinyws command in docs/topics.md starts the server (an unknown flag or a refused
/// setting exits instead of listening), the Chinese page runs the same ones, and the
/// `wss://` section's `openssl` command makes a certificate and key that tinyws accepts.
#[cfg(unix)]
#[test]
fn every_tinyws_command_in_topics_starts_the_server() {
    let commands = tinyws_commands(TOPICS);
    assert_eq!(
        tinyws_commands(TOPICS_ZH),
        commands,
        "topics.zh.md runs others"
    );
    assert!(commands.len() >= 6, "{commands:?}");
    let dir = std::env::temp_dir().join(format!("tinyws-topics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = cfg!(feature = "tls") && required("openssl", runs("openssl", &["version"]));
    if tls {
        let openssl = block_with(TOPICS, "openssl req");
        let openssl = openssl
            .lines()
            .find(|l| l.starts_with("openssl req"))
            .unwrap();
        let made = Command::new("sh")
            .args(["-c", openssl])
            .current_dir(&dir)
            .stderr(Stdio::null())
            .status()
            .expect("run sh");
        assert!(made.success(), "the certificate command failed: {openssl}");
    }
    for args in &commands {
        let args: Vec<String> = args
            .iter()
            .map(|a| match a.ends_with(".pem") {
                true => dir.join(a).to_string_lossy().into_owned(),
                false => a.clone(),
            })
            .collect();
        if args.iter().any(|a| a == "--tls-cert") && !tls {
            continue;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        drop(common::process::Proc::start(BIN, &args));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
