//! A real browser against a real tinyws: headless Chromium loads the page on `/`, and the
//! test clicks through it over the Chrome DevTools Protocol (CDP), which is itself a
//! WebSocket, so the tungstenite client we already have drives it. Connect, send, see the
//! echo, close with 1000 and see a clean close: everything a student does in class.
//!
//! Skipped with a loud message when Chromium is not installed, except in CI (`CI` set),
//! where `.ci/run` installs it and its absence is a failure.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

/// Chromium's start on a shared 2-core machine can be slow; everything else is quick.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium, or `None` once the skip is recorded (`required`: a failure under CI).
fn chromium_or_skip() -> Option<PathBuf> {
    let chromium = find_chromium();
    if !required(
        "chromium (Debian: apt-get install chromium)",
        chromium.is_some(),
    ) {
        return None;
    }
    chromium
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A headless Chromium in a process group of its own, with its profile and temporary
/// files in one directory: on drop the whole group is killed and the directory removed.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    /// The group, not the main process alone: its renderer and GPU children would keep
    /// writing into the profile while `remove_dir_all` runs. A second try covers a file
    /// written by a child between the kill and its end.
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if fs::remove_dir_all(&self.profile).is_err() {
            thread::sleep(Duration::from_millis(100));
            let _ = fs::remove_dir_all(&self.profile);
        }
    }
}

impl Browser {
    fn start(exe: &Path, url: &str) -> Browser {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let profile =
            std::env::temp_dir().join(format!("tinyws-chromium-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&profile).expect("profile dir");
        let mut command = Command::new(exe);
        // Its own process group (Unix), which the drop kills whole. Windows compiles this
        // test but never runs it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            // Its singleton socket's directory (`org.chromium.Chromium.*`) goes to TMPDIR,
            // and a killed Chromium leaves it behind: inside the profile, it goes with it.
            .env("TMPDIR", &profile)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        Browser { child, profile }
    }

    /// The port of Chromium's DevTools endpoint (from the file it writes once it listens),
    /// once it takes a connection: on a loaded machine the port the file names may still
    /// refuse the first one. Saying how Chromium ended, if it did, tells a slow start
    /// from a crash.
    fn devtools_port(&mut self) -> u16 {
        let file = self.profile.join("DevToolsActivePort");
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        let mut last = String::from("no DevToolsActivePort file");
        loop {
            if let Ok(text) = fs::read_to_string(&file)
                && let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok())
            {
                let addr: SocketAddr = ([127, 0, 0, 1], port).into();
                match TcpStream::connect_timeout(&addr, TIMEOUT) {
                    Ok(_) => return port,
                    Err(e) => last = format!("port {port}: {e}"),
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromium exited early: {status} ({last})");
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port ({last})"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `GET path` on the DevTools HTTP endpoint; the body.
fn devtools_get(port: u16, path: &str) -> String {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = tcp(addr);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_string())
}

/// The string value that follows `"key":` in a JSON text (enough for CDP's answers,
/// without a JSON dependency).
fn json_string_after(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[start..].trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?).unwrap_or('?'));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn json_escape(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A CDP session with one page.
struct Page {
    ws: Ws,
    next_id: u64,
}

impl Page {
    /// Evaluates `expr` in the page and returns its value as a string.
    fn eval(&mut self, expr: &str) -> String {
        self.next_id += 1;
        let id = self.next_id;
        let call = format!(
            r#"{{"id":{id},"method":"Runtime.evaluate","params":{{"expression":{},"returnByValue":true}}}}"#,
            json_escape(&format!("String({expr})"))
        );
        self.ws.send(Message::text(call)).expect("CDP send");
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no CDP answer to {expr}");
            let msg = self.ws.read().expect("CDP read");
            let Message::Text(text) = msg else { continue };
            if text.starts_with(&format!("{{\"id\":{id},")) {
                assert!(!text.contains("\"exceptionDetails\""), "{expr}: {text}");
                return json_string_after(&text, "value").unwrap_or_default();
            }
        }
    }

    /// Evaluates `expr` until it returns a string for which `done` holds.
    fn wait_for(&mut self, expr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        loop {
            let value = self.eval(expr);
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}; last value of {expr}: {value:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Chromium on `page_url`, and a CDP session with that page.
fn open_page(exe: &Path, page_url: &str) -> (Browser, Page) {
    let mut browser = Browser::start(exe, page_url);
    let port = browser.devtools_port();
    let ws = cdp_connect(&page_target(port, page_url));
    (browser, Page { ws, next_id: 0 })
}

/// The CDP WebSocket URL of the page target Chromium opened for `url`, once it lists it.
fn page_target(port: u16, url: &str) -> String {
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    loop {
        let list = devtools_get(port, "/json/list");
        if let Some(at) = list.find(&format!("\"url\": \"{url}\"")) {
            let object_start = list[..at].rfind('{').unwrap_or(0);
            if let Some(ws) = json_string_after(&list[object_start..], "webSocketDebuggerUrl") {
                return ws;
            }
        }
        assert!(Instant::now() < deadline, "no page target in {list}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn page_connects_sends_receives_echo_and_closes_cleanly_in_chromium() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    // A --path, to check that the page connects where the server says, not to `/`.
    let server = start(config().path("/echo"));
    let (browser, mut page) = open_page(&exe, &format!("http://{}/", server.addr));

    page.wait_for("document.readyState", "the page to load", |v| {
        v == "complete"
    });
    let url = page.eval("document.getElementById('url').value");
    assert_eq!(
        url,
        format!("ws://{}/echo", server.addr),
        "the page's target"
    );
    let head = page.eval("document.getElementById('head').textContent");
    assert!(
        head.starts_with("GET / HTTP/1.1"),
        "the embedded request: {head}"
    );

    page.eval("document.getElementById('connect').click()");
    page.wait_for(
        "document.getElementById('state').textContent",
        "the connection to open",
        |v| v == "OPEN",
    );
    // The WebSocket, and the page's inspector poll (inspect.rs) whenever it is waiting.
    let open = server.connections();
    assert!(open == 1 || open == 2, "{open} connections");

    let text = "héllo from Chromium ✓";
    page.eval(&format!(
        "(document.getElementById('msg').value = {}, document.getElementById('send').click())",
        json_escape(text)
    ));
    let log = page.wait_for(
        "document.getElementById('log').innerText",
        "the echo",
        |v| v.contains(&format!("← {text}")),
    );
    assert!(log.contains(&format!("→ {text}")), "{log}");
    assert!(log.contains("open after"), "{log}");

    page.eval("document.getElementById('disconnect').click()");
    let log = page.wait_for(
        "document.getElementById('log').innerText",
        "the close",
        |v| v.contains("closed:"),
    );
    assert!(
        log.contains("closed: code 1000 (normal closure), reason \"bye\", clean: true"),
        "{log}"
    );
    assert_eq!(
        server.wait_connections(0),
        0,
        "the server let the client go"
    );
    drop(page);
    drop(browser);
}

/// A CDP WebSocket (a page's or the browser's own).
fn cdp_connect(url: &str) -> Ws {
    let addr: SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to CDP");
    stream.set_read_timeout(Some(BROWSER_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    tungstenite::client(url, Patient(stream))
        .expect("CDP handshake")
        .0
}

/// Sends one CDP command and returns its answer (the whole JSON text).
fn cdp_call(ws: &mut Ws, id: u64, method: &str, params: &str) -> String {
    ws.send(Message::text(format!(
        r#"{{"id":{id},"method":"{method}","params":{params}}}"#
    )))
    .expect("CDP send");
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "no CDP answer to {method}");
        let Message::Text(text) = ws.read().expect("CDP read") else {
            continue;
        };
        if text.starts_with(&format!("{{\"id\":{id},")) {
            assert!(!text.contains("\"error\""), "{method}: {text}");
            return text.to_string();
        }
    }
}

impl Page {
    /// The page Chromium opened for `url` at its start.
    fn at(port: u16, url: &str) -> Page {
        let mut page = Page {
            ws: cdp_connect(&page_target(port, url)),
            next_id: 0,
        };
        page.wait_for("document.readyState", "the page to load", |v| {
            v == "complete"
        });
        page
    }

    /// `url` in a new browser context of its own (a separate profile: its own cookies,
    /// storage and connections), made through the browser's session `root`.
    fn in_new_context(root: &mut Ws, ids: &mut u64, port: u16, url: &str) -> Page {
        *ids += 1;
        let made = cdp_call(root, *ids, "Target.createBrowserContext", "{}");
        let context = json_string_after(&made, "browserContextId").expect("a context id");
        *ids += 1;
        let made = cdp_call(
            root,
            *ids,
            "Target.createTarget",
            &format!(
                r#"{{"url":{},"browserContextId":"{context}"}}"#,
                json_escape(url)
            ),
        );
        let target = json_string_after(&made, "targetId").expect("a target id");
        let mut page = Page {
            ws: cdp_connect(&format!("ws://127.0.0.1:{port}/devtools/page/{target}")),
            next_id: 0,
        };
        // A new target starts as a complete about:blank: wait for `url` itself.
        let want = format!("{url} complete");
        page.wait_for(
            "location.href + ' ' + document.readyState",
            "the page to load",
            |v| v == want,
        );
        page
    }

    /// Connects and sends `text`; waits for its echo.
    fn connect_and_send(&mut self, text: &str) {
        self.eval("document.getElementById('connect').click()");
        self.wait_for(
            "document.getElementById('state').textContent",
            "the connection to open",
            |v| v == "OPEN",
        );
        self.eval(&format!(
            "(document.getElementById('msg').value = {}, document.getElementById('send').click())",
            json_escape(text)
        ));
        self.wait_for(
            "document.getElementById('log').innerText",
            "the echo",
            |v| v.contains(&format!("← {text}")),
        );
    }
}

/// The text between `start` and the next `end` in `s`.
fn between<'s>(s: &'s str, start: &str, end: &str) -> Option<&'s str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The page shows its own connection as the server saw it. The key it shows is
/// the one the server's trace printed, the accept it shows is base64(SHA-1(key + GUID))
/// (computed here), and the frame it shows is the message, masked with a 4-byte key.
#[test]
fn the_page_shows_its_own_handshake_and_frames_as_the_server_saw_them() {
    use common::process::{Proc, Stdout};
    use sha1::Digest;
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let mut server = Proc::start_with(env!("CARGO_BIN_EXE_tinyws"), &["--trace"], Stdout::Capture);
    let page_url = format!("http://{}/", server.addr);
    let mut browser = Browser::start(&exe, &page_url);
    let port = browser.devtools_port();
    let mut page = Page::at(port, &page_url);
    let text = "héllo from Chromium ✓";
    page.connect_and_send(text);
    let shown = page.wait_for(
        "document.getElementById('inspect').innerText",
        "the decoded frames",
        |v| v.contains("<- frame: FIN=1") && v.contains("-> frame: FIN=1"),
    );

    let key = between(&shown, "<-   Sec-WebSocket-Key: ", "␍␊").expect("the key shown");
    let accept = between(&shown, "->   sec-websocket-accept: ", "␍␊").expect("the accept");
    let digest = sha1::Sha1::digest(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    assert_eq!(accept, data_encoding::BASE64.encode(&digest), "{shown}");
    assert!(shown.contains(&format!(
        "== base64(SHA-1)  {accept}  -> Sec-WebSocket-Accept"
    )));
    // The server's own trace printed that very key for the connection.
    let trace = server.stdout_until(format!("Sec-WebSocket-Key: {key}").as_bytes());
    assert!(!trace.is_empty());

    // The text frame as it came: masked, with a 4-byte key, and its bytes.
    let bytes = text.as_bytes();
    let header = format!(
        "<- frame: FIN=1 RSV=000 opcode=0x1 (text) MASK=1 length={} mask key=",
        bytes.len()
    );
    let mask = between(&shown, &header, "\n").expect("the decoded client frame");
    assert_eq!(mask.split(' ').count(), 4, "a 4-byte mask key: {mask:?}");
    assert!(
        mask.split(' ')
            .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok())
    );
    let hex: Vec<String> = bytes[..16].iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        shown.contains(&format!(
            "<-   unmasked {} … (+{} bytes)",
            hex.join(" "),
            bytes.len() - 16
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("<-   text     {text:?}")),
        "{shown}"
    );
    drop(page);
    drop(browser);
}

/// The projector view (`--inspect`) lists the connections of two students,
/// each in a browser context of its own, newest first; a token that is not theirs reads
/// nothing.
#[test]
fn the_projector_view_lists_connections_from_two_browser_contexts() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let server = start(config().inspect(true));
    let room_url = format!("http://{}/inspect", server.addr);
    let page_url = format!("http://{}/", server.addr);
    let mut browser = Browser::start(&exe, &room_url);
    let port = browser.devtools_port();
    let mut room = Page::at(port, &room_url);
    let version = devtools_get(port, "/json/version");
    let root_url = json_string_after(&version, "webSocketDebuggerUrl").expect("the browser's CDP");
    let mut root = cdp_connect(&root_url);
    let mut ids = 0;
    let mut students = Vec::new();
    for name in ["alice", "bob"] {
        let mut student = Page::in_new_context(&mut root, &mut ids, port, &page_url);
        student.connect_and_send(&format!("hello from {name}"));
        students.push(student);
    }
    let shown = room.wait_for(
        "document.getElementById('room').innerText",
        "both students' frames",
        |v| v.contains("hello from alice") && v.contains("hello from bob"),
    );
    assert_eq!(
        room.eval("document.querySelectorAll('#room details').length"),
        "2"
    );
    let (alice, bob) = (
        shown.find("hello from alice").unwrap(),
        shown.find("hello from bob").unwrap(),
    );
    assert!(bob < alice, "newest first: {shown}");
    // The students' tokens are hidden wherever a head is shown, and another token reads
    // nothing.
    assert!(
        shown.contains("inspect_token=<hidden: 32 bytes>"),
        "{shown}"
    );
    let a = http(
        server.addr,
        "GET /.inspect?inspect_token=00000000000000000000000000000000 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert!(a.starts_with("HTTP/1.1 404 "), "{a}");
    drop(students);
    drop(room);
    drop(browser);
}

/// The projector view reads a record larger than one answer (32 KiB of JSON) page by
/// page, each poll taking up where the one before ended (`since`), and shows all that
/// is kept: the request head from the first page, the last frame from the last.
#[test]
fn the_projector_view_pages_through_a_record_larger_than_one_answer() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let server = start(config().inspect(true));
    // An 8 KB head and 60 text frames, of a character JSON escapes six times over.
    let pad = "<".repeat(1000);
    let extra: String = (0..7).map(|i| format!("X-Pad-{i}: {pad}\r\n")).collect();
    let mut s = tcp(server.addr);
    s.write_all(upgrade_request("/", &extra).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    for i in 0..60 {
        let text = format!("frame{i:02}{}", "<".repeat(100)).into_bytes();
        s.write_all(&frame(true, 0x1, &text)).unwrap();
        assert_eq!(read_frame(&mut s), (0x81, text));
    }
    let first = http(server.addr, "GET /.inspect?all HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        first.contains("\"more\":true"),
        "one answer holds it all: {first}"
    );
    let (browser, mut room) = open_page(&exe, &format!("http://{}/inspect", server.addr));
    let shown = room.wait_for(
        "document.getElementById('room').innerText",
        "the last frame",
        |v| v.contains("frame59"),
    );
    // The head from the first page, as far as one block holds it (8 KiB of JSON).
    assert!(shown.contains("X-Pad-0: <<<"), "{shown}");
    assert!(
        shown.contains("more bytes of this step left out"),
        "{shown}"
    );
    assert_eq!(
        room.eval("document.querySelectorAll('#room details').length"),
        "1"
    );
    drop(room);
    drop(browser);
}

#[test]
fn a_page_asking_for_subprotocol_chat_connects_with_protocol_chat() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let server = start(config().protocols(["chat"]));
    let (browser, mut page) = open_page(&exe, &format!("http://{}/", server.addr));
    page.wait_for("document.readyState", "the page to load", |v| {
        v == "complete"
    });
    // What a chat page does: it needs the server to answer "chat", or the browser fails
    // the connection (WebSocket API: the answer must be one of the protocols asked for).
    page.eval(&format!(
        "(window.chat = new WebSocket({}, 'chat'), window.chat.onclose = (e) => window.chatClosed = e.code, 1)",
        json_escape(&format!("ws://{}/room", server.addr))
    ));
    let state = page.wait_for("window.chat.readyState", "the connection to open", |v| {
        v != "0"
    });
    assert_eq!(
        state,
        "1",
        "OPEN (closed with {})",
        page.eval("window.chatClosed")
    );
    assert_eq!(page.eval("window.chat.protocol"), "chat");
    page.eval("window.chat.close(1000)");

    // The teaching page's own field: it starts with the server's --protocol list, and
    // the log shows the offer and the answer.
    assert_eq!(
        page.eval("document.getElementById('protocol').value"),
        "chat"
    );
    page.eval("document.getElementById('connect').click()");
    page.wait_for(
        "document.getElementById('state').textContent",
        "the page's connection to open",
        |v| v == "OPEN",
    );
    let log = page.eval("document.getElementById('log').innerText");
    assert!(
        log.contains("offering Sec-WebSocket-Protocol: chat)"),
        "{log}"
    );
    assert!(
        log.contains("(subprotocol: chat, extensions: none)"),
        "{log}"
    );
    page.eval("document.getElementById('disconnect').click()");
    assert_eq!(server.wait_connections(0), 0, "both closed");
    drop(page);
    drop(browser);
}

impl Page {
    /// A mouse click, pressed and released, at the middle of the element `selector`.
    fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); \
             return (r.x + r.width / 2) + ',' + (r.y + r.height / 2); }})()",
            json_escape(selector)
        ));
        let (x, y) = at.split_once(',').expect("the element's middle");
        for kind in ["mousePressed", "mouseReleased"] {
            self.next_id += 1;
            let params =
                format!(r#"{{"type":"{kind}","x":{x},"y":{y},"button":"left","clickCount":1}}"#);
            cdp_call(
                &mut self.ws,
                self.next_id,
                "Input.dispatchMouseEvent",
                &params,
            );
        }
    }

    /// Goes to `path` and waits until the page there (after any redirect) shows `want`:
    /// "path+query language readyState leaving?", e.g. "/?lang=zh zh-Hans complete false".
    fn go_to(&mut self, path: &str, want: &str) {
        // `old` marks the document we leave, so that it cannot pass for the new one.
        self.eval(&format!(
            "(window.old = true, location.href = {})",
            json_escape(path)
        ));
        self.wait_for(LANG_STATE, want, |v| v == want);
    }
}

/// Where the page is, its language, whether it has loaded, and whether it is leaving for
/// the remembered language (its body hidden); `old` for a document already left.
const LANG_STATE: &str = "[location.pathname + location.search, document.documentElement?.lang, \
    document.readyState, document.body?.hidden].join(' ') + (window.old ? ' old' : '')";

/// The switch, clicked with the mouse, reloads the page in the other language and
/// remembers it: a later visit without `?lang=`, to the page or to the projector view,
/// goes on to it; an explicit `?lang=` still wins over the remembered choice.
#[test]
fn the_language_switch_changes_the_language_and_is_remembered() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let server = start(config().inspect(true));
    let (browser, mut page) = open_page(&exe, &format!("http://{}/", server.addr));
    page.wait_for("document.readyState", "the page to load", |v| {
        v == "complete"
    });
    // From whichever language the browser's Accept-Language got, to the other one.
    let first = page.eval("document.documentElement.lang");
    let (to, to_tag, back, back_tag) = match first.as_str() {
        "en" => ("zh", "zh-Hans", "en", "en"),
        _ => ("en", "en", "zh", "zh-Hans"),
    };
    page.click(&format!(".lang a[hreflang='{to_tag}']"));
    let want = format!("/?lang={to} {to_tag} complete false");
    page.wait_for(LANG_STATE, "the page in the other language", |v| v == want);
    assert_eq!(page.eval("localStorage.getItem('tinyws.lang')"), to);

    // No `?lang=`: the server answers in the browser's language, the page goes on to
    // the remembered one, and so does the projector view, which then starts polling.
    page.go_to("/", &want);
    page.go_to(
        "/inspect",
        &format!("/inspect?lang={to} {to_tag} complete false"),
    );
    assert_eq!(
        page.eval("document.body.classList.contains('projector')"),
        "true"
    );
    assert_eq!(
        page.eval("document.querySelector('.lang').offsetParent !== null"),
        "true",
        "the switch is visible on the projector view"
    );

    // The switch on the projector view: back to the first language, remembered.
    page.click(&format!(".lang a[hreflang='{back_tag}']"));
    let want = format!("/inspect?lang={back} {back_tag} complete false");
    page.wait_for(LANG_STATE, "the projector view switched back", |v| {
        v == want
    });
    assert_eq!(page.eval("localStorage.getItem('tinyws.lang')"), back);
    // An explicit `?lang=` outranks the remembered choice, and is not remembered itself.
    page.go_to(
        &format!("/?lang={to}"),
        &format!("/?lang={to} {to_tag} complete false"),
    );
    assert_eq!(page.eval("localStorage.getItem('tinyws.lang')"), back);
    drop(page);
    drop(browser);
}

/// The frame lab in Chromium: the six "Frames by hand" cases of docs/classroom.md built
/// with the page's fields (one more typed as hex), sent inside an HTTP request, and the
/// verdict and the bytes back read off the page.
#[test]
fn the_frame_lab_sends_the_six_cases_and_shows_the_verdicts_in_chromium() {
    let Some(exe) = chromium_or_skip() else {
        return;
    };
    let server = start(config());
    let (browser, mut page) = open_page(&exe, &format!("http://{}/", server.addr));
    page.wait_for("document.readyState", "the page to load", |v| {
        v == "complete"
    });
    // Sets the builder's fields as a student would, and adds the frame; returns what the
    // builder shows for it.
    page.eval(
        "window.build = (fin, rsv1, op, mask, as, payload) => {
           const $ = (id) => document.getElementById(id);
           $('lab-fin').checked = fin; $('lab-rsv1').checked = rsv1; $('lab-opcode').value = op;
           $('lab-mask').checked = mask; $('lab-as').value = as; $('lab-payload').value = payload;
           $('lab-payload').dispatchEvent(new Event('input'));
           $('lab-add').click();
           return $('lab-frame').textContent;
         }",
    );
    let aaa = "a".repeat(126);
    // (frames as build() arguments, what the builder shows for the last, what the answer says)
    let cases: [(&[&str], &str, &[&str]); 6] = [
        (
            &["true, false, 1, true, 'text', 'Hello'"],
            "81 85 37 fa 21 3d 7f 9f 4d 51 58\nframe: FIN=1 RSV=000 opcode=0x1 (text) MASK=1 length=5 (in the 7-bit field)",
            &[
                "the connection stays open: every frame was read",
                "  header   81 05\n",
                "  text     \"Hello\"",
            ],
        ),
        (
            &["true, false, 1, false, 'text', 'Hello'"],
            "81 05 48 65 6c 6c 6f\n",
            &[
                "the server fails the connection: close code 1002 (protocol error), reason \"Received an unmasked frame from client\", RFC 6455 §5.1",
            ],
        ),
        (
            &["true, true, 1, true, 'text', 'Hello'"],
            "c1 85 37 fa 21 3d 7f 9f 4d 51 58\nframe: FIN=1 RSV=100",
            &[
                "close code 1002 (protocol error), reason \"Reserved bits are non-zero\", RFC 6455 §5.2",
            ],
        ),
        (
            &[
                "false, false, 1, true, 'text', 'Hel'",
                "true, false, 9, true, 'text', 'hi'",
                "true, false, 0, true, 'text', 'lo'",
            ],
            "80 82 37 fa 21 3d 5b 95\n",
            &[
                "opcode=0xa (pong) MASK=0 length=2",
                "  text     \"hi\"\nframe: FIN=1 RSV=000 opcode=0x1 (text) MASK=0 length=5",
                "  text     \"Hello\"",
            ],
        ),
        (
            &[
                "false, false, 1, true, 'hex', 'e4 bd'",
                "true, false, 0, true, 'hex', 'a0'",
            ],
            "80 81 37 fa 21 3d 97\n",
            &["  payload  e4 bd a0\n  text     \"你\""],
        ),
        (
            &[&format!("true, false, 1, true, 'text', '{aaa}'")],
            "81 fe 00 7e 37 fa 21 3d 56 9b 40 5c",
            &["length=126 (the 7-bit field says 126, then 16 bits)\n  header   81 7e 00 7e\n"],
        ),
    ];
    let answer = "document.getElementById('lab-answer').textContent";
    for (frames, built, says) in cases {
        page.eval("(document.getElementById('lab-clear').click(), document.getElementById('lab-answer').textContent = '')");
        let mut shown = String::new();
        for f in frames {
            shown = page.eval(&format!("window.build({f})"));
        }
        assert!(
            shown.contains(built),
            "{frames:?}: the builder shows {shown}"
        );
        page.eval("document.getElementById('lab-send').click()");
        let got = page.wait_for(answer, "the verdict", |v| v.contains(says[0]));
        for s in says {
            assert!(got.contains(s), "{frames:?}: {got}");
        }
    }
    // Typed by hand: a text frame and a close, then a typing mistake.
    for (typed, says) in [
        (
            "81 85 37 fa 21 3d 7f 9f 4d 51 58 88 82 37 fa 21 3d 34 12",
            "closed by your close frame (code 1000, normal closure)",
        ),
        (
            "81 8",
            "the server refused the request (400): An odd number of hex digits (3)",
        ),
    ] {
        page.eval(&format!(
            "(document.getElementById('lab-hex').value = {}, document.getElementById('lab-send').click())",
            json_escape(typed)
        ));
        page.wait_for(answer, "the verdict", |v| v.contains(says));
    }
    drop(page);
    drop(browser);
}
