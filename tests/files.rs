//! `--static DIR` (Config::static_dir) over real sockets: files, HEAD, 304, the page at
//! `/` and `/.tinyws`, every traversal attempt refused with the same 404, the upgrade
//! on the same port, the connection cap, the write timeout, and bounded memory for a
//! large file (the binary, /proc).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A directory of its own under the system's temp dir, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "tinyws-files-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("site/sub")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(dir.join("site/a.txt"), "aaa\n").unwrap();
        std::fs::write(dir.join("site/sub/b.css"), "b {}\n").unwrap();
        std::fs::write(dir.join("site/.hidden"), "hidden\n").unwrap();
        std::fs::create_dir_all(dir.join("site/.git")).unwrap();
        std::fs::write(dir.join("site/.git/config"), "SECRET-GIT\n").unwrap();
        std::fs::write(dir.join("outside/secret.txt"), "SECRET-OUTSIDE\n").unwrap();
        Tmp(dir)
    }

    fn site(&self) -> PathBuf {
        self.0.join("site")
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn serve(site: &Path) -> TestServer {
    start(config().static_dir(site))
}

fn get(addr: std::net::SocketAddr, target: &str, extra: &str) -> String {
    http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n"),
    )
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn files_head_and_not_modified() {
    let tmp = Tmp::new("serve");
    let server = serve(&tmp.site());
    let a = get(server.addr, "/a.txt", "");
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    assert_eq!(
        header(&a, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&a, "Content-Length"), Some("4"));
    assert_eq!(header(&a, "Connection"), Some("close"));
    assert_eq!(body(&a), "aaa\n");
    let css = get(server.addr, "/sub/b.css?v=2", "");
    assert_eq!(
        header(&css, "Content-Type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(body(&css), "b {}\n");

    // RFC 9110 §9.3.2: HEAD, the same header fields and no content.
    let head = http(
        server.addr,
        "HEAD /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(header(&head, "Content-Length"), Some("4"));
    assert!(
        head.ends_with("\r\n\r\n"),
        "a body after the head: {head:?}"
    );

    // RFC 9110 §13.1.3: unchanged since the date it gave: 304, no content.
    let date = header(&a, "Last-Modified")
        .expect("Last-Modified")
        .to_string();
    let since = format!("If-Modified-Since: {date}\r\n");
    let not_modified = get(server.addr, "/a.txt", &since);
    assert!(
        not_modified.starts_with("HTTP/1.1 304 Not Modified\r\n"),
        "{not_modified}"
    );
    assert!(not_modified.ends_with("\r\n\r\n"), "{not_modified:?}");
    let head_304 = http(
        server.addr,
        &format!("HEAD /a.txt HTTP/1.1\r\nHost: localhost\r\n{since}\r\n"),
    );
    assert!(head_304.starts_with("HTTP/1.1 304 "), "{head_304}");
    // Ignored when If-None-Match is present, or when the header repeats.
    for extra in [
        format!("{since}If-None-Match: \"x\"\r\n"),
        format!("{since}{since}"),
    ] {
        let full = get(server.addr, "/a.txt", &extra);
        assert!(full.starts_with("HTTP/1.1 200 "), "{extra:?}: {full}");
        assert_eq!(body(&full), "aaa\n");
    }
    // Other methods: 405, as for any request on this port.
    let post = http(
        server.addr,
        "POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert_eq!(header(&post, "Allow"), Some("GET, HEAD"));
    let missing = get(server.addr, "/missing.html", "");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
}

#[test]
fn the_page_is_at_slash_without_an_index_and_always_at_dot_tinyws() {
    let tmp = Tmp::new("page");
    let server = serve(&tmp.site());
    let is_page = |answer: &str| {
        answer.starts_with("HTTP/1.1 200 OK\r\n")
            && header(answer, "Cache-Control") == Some("no-store")
            && body(answer).contains("WebSocket")
    };
    let root = get(server.addr, "/", "");
    assert!(is_page(&root), "{root}");
    let fixed = get(server.addr, "/.tinyws", "");
    assert!(is_page(&fixed), "{fixed}");
    std::fs::write(tmp.site().join("index.html"), "<h1>Lesson 3</h1>\n").unwrap();
    let root = get(server.addr, "/", "");
    assert_eq!(body(&root), "<h1>Lesson 3</h1>\n", "{root}");
    assert_eq!(
        header(&root, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let fixed = get(server.addr, "/.tinyws", "");
    assert!(is_page(&fixed), "the built-in page is gone: {fixed}");
    // Without --static it is there too.
    let plain = start(config());
    assert!(is_page(&get(plain.addr, "/.tinyws", "")));
}

#[test]
fn every_traversal_attempt_gets_the_same_404() {
    let tmp = Tmp::new("traversal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(tmp.0.join("outside"), tmp.site().join("out")).unwrap();
        symlink(
            tmp.0.join("outside/secret.txt"),
            tmp.site().join("link.txt"),
        )
        .unwrap();
    }
    let server = serve(&tmp.site());
    let missing = get(server.addr, "/no-such-file", "");
    let mut attempts = vec![
        "/../outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E/outside/secret.txt",
        "/..%2foutside%2fsecret.txt",
        "/sub/%2e%2e/%2e%2e/outside/secret.txt",
        "/..%5coutside%5csecret.txt",
        "/sub\\..\\..\\outside\\secret.txt",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/C:/Windows/win.ini",
        "/.hidden",
        "/.git/config",
        "/%2egit/config",
        "/a.txt%00.html",
    ];
    // The secret's absolute path, as a request path: still looked for inside DIR.
    let absolute = format!("{}/outside/secret.txt", tmp.0.display());
    attempts.push(&absolute);
    #[cfg(unix)]
    attempts.extend(["/out/secret.txt", "/link.txt"]);
    for target in attempts {
        let answer = get(server.addr, target, "");
        assert!(answer.starts_with("HTTP/1.1 404 "), "{target}: {answer}");
        assert!(!answer.contains("SECRET"), "{target}: {answer}");
        // The same body as a file that is not there: nothing to learn from it.
        assert_eq!(body(&answer), body(&missing), "{target}");
    }
    // An absolute-form target (RFC 9112 §3.2.2) is confined the same way.
    let answer = get(server.addr, "http://localhost/../outside/secret.txt", "");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[test]
fn the_upgrade_on_the_same_path_still_works_and_the_endpoint_keeps_its_426() {
    let tmp = Tmp::new("upgrade");
    std::fs::write(tmp.site().join("chat"), "a file called chat\n").unwrap();
    // Any path upgrades: a file and the WebSocket on the same path.
    let server = serve(&tmp.site());
    assert_eq!(body(&get(server.addr, "/chat", "")), "a file called chat\n");
    let mut ws = ws(server.addr, "/chat");
    ws.send(tinyws::Message::text("hi")).unwrap();
    assert_eq!(ws.read().unwrap(), tinyws::Message::text("hi"));
    drop(ws);
    // With --path /echo and no file there: its 426, not a 404.
    let server = start(config().static_dir(tmp.site()).path("/echo"));
    let endpoint = get(server.addr, "/echo", "");
    assert!(
        endpoint.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{endpoint}"
    );
    assert_eq!(header(&endpoint, "Upgrade"), Some("websocket"));
    let mut ws = common::ws(server.addr, "/echo");
    ws.send(tinyws::Message::text("still")).unwrap();
    assert_eq!(ws.read().unwrap(), tinyws::Message::text("still"));
    // The files are served on any other path, --path or not.
    assert_eq!(body(&get(server.addr, "/a.txt", "")), "aaa\n");
}

#[test]
fn a_file_answer_holds_a_slot_and_a_client_that_reads_nothing_is_cut_after_the_write_timeout() {
    let tmp = Tmp::new("timeout");
    let big = vec![b'x'; 20 << 20];
    std::fs::write(tmp.site().join("big.bin"), &big).unwrap();
    let server = start(
        config()
            .static_dir(tmp.site())
            .max_connections(1)
            .write_timeout(Duration::from_millis(500)),
    );
    let mut stuck = tcp(server.addr);
    stuck
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    // Wait until the answer has started (so its head is in and it holds the slot).
    let mut first = [0u8; 12];
    stuck.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // The one slot is taken by the answer being written.
    let busy = get(server.addr, "/a.txt", "");
    assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
    // It reads nothing more: after the write timeout the server gives up on it.
    assert_eq!(
        server.wait_connections(0),
        0,
        "the stuck answer was not cut"
    );
    let rest = read_to_end(&mut stuck);
    assert!(
        rest.len() < big.len(),
        "got the whole file ({} bytes)",
        rest.len()
    );
    // And the slot is free again.
    assert_eq!(body(&get(server.addr, "/a.txt", "")), "aaa\n");
}

#[cfg(target_os = "linux")]
#[test]
fn a_20_mib_file_is_streamed_with_bounded_memory() {
    use common::process::Proc;
    let tmp = Tmp::new("rss");
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(tmp.site().join("big.bin"), &big).unwrap();
    let site = tmp.site();
    let mut proc = Proc::start(
        env!("CARGO_BIN_EXE_tinyws"),
        &["--static", site.to_str().unwrap()],
    );
    // Warm up the path once (page tables, the thread), then measure a second answer.
    assert!(get(proc.addr, "/a.txt", "").starts_with("HTTP/1.1 200 "));
    let before = proc.status_bytes("VmRSS");
    proc.reset_peak_memory();
    let mut s = tcp(proc.addr);
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = read_to_end(&mut s);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&answer[..split]);
    assert!(head.contains("Content-Length: 20971520"), "{head}");
    assert!(answer[split..] == big[..], "the bytes differ");
    let peak = proc.status_bytes("VmHWM");
    // One info line per answer: method, path, status, bytes.
    let line = proc.wait_log(r#"GET "/big.bin" answered 200 from static_dir ("#);
    assert!(
        line.contains(&format!("({} bytes)", answer.len())),
        "{line}"
    );
    let grew = peak.saturating_sub(before);
    eprintln!("VmRSS {before} B before, VmHWM {peak} B while sending 20 MiB: +{grew} B");
    // The file is 20 MiB; the answer holds a 16 KiB buffer and a thread's stack.
    assert!(
        grew < 2 << 20,
        "RSS grew by {grew} bytes (from {before} to a peak of {peak}) for a 20 MiB file"
    );
}

#[test]
fn a_static_dir_that_is_not_a_directory_is_a_startup_error() {
    let tmp = Tmp::new("startup");
    let missing = tmp.0.join("no-such-dir");
    let file = tmp.site().join("a.txt");
    for dir in [missing, file] {
        let out = output_within(
            std::process::Command::new(env!("CARGO_BIN_EXE_tinyws")).args([
                "--port",
                "0",
                "--static",
                dir.to_str().unwrap(),
            ]),
            Duration::from_secs(10),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("tinyws: static_dir (--static) ") && err.contains(dir.to_str().unwrap()),
            "{err}"
        );
    }
    // The library names the field.
    let e = tinyws::Server::bind(config().static_dir(tmp.0.join("nope")), tinyws::Echo)
        .err()
        .expect("bind must fail");
    assert!(e.to_string().starts_with("`static_dir` "), "{e}");
}

/// A local user who may write inside DIR swaps a directory on the requested path with a
/// symlink to a directory outside, over and over, while a client asks for a file under
/// it. `renameat2(RENAME_EXCHANGE)` swaps the two names atomically, so the path is at
/// every instant either the real directory or the symlink: any check made by name and
/// followed by an open by name can be raced. Bounded: at most 10,000 requests or 10 s.
#[cfg(target_os = "linux")]
#[test]
fn a_directory_swapped_for_a_symlink_while_requested_never_serves_a_byte_from_outside() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let tmp = Tmp::new("swap");
    std::fs::create_dir(tmp.site().join("d")).unwrap();
    std::fs::write(tmp.site().join("d/f.txt"), "inside\n").unwrap();
    std::fs::write(tmp.0.join("outside/f.txt"), "SECRET-OUTSIDE\n").unwrap();
    std::os::unix::fs::symlink(tmp.0.join("outside"), tmp.site().join("e")).unwrap();
    let (d, e) = (c_path(&tmp.site().join("d")), c_path(&tmp.site().join("e")));
    if let Err(err) = exchange(&d, &e).and_then(|()| exchange(&d, &e)) {
        // Only file systems without RENAME_EXCHANGE (or kernels before 3.15) get here.
        eprintln!("renameat2(RENAME_EXCHANGE) refused here ({err}); skipped");
        return;
    }
    let server = serve(&tmp.site());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                exchange(&d, &e)?;
                swaps.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut requests, mut leaks, mut inside, mut refused) = (0, 0, 0, 0);
    let mut other = None;
    while requests < 10_000 && std::time::Instant::now() < deadline {
        let answer = get(server.addr, "/d/f.txt", "");
        requests += 1;
        if answer.contains("SECRET") {
            leaks += 1;
        } else if answer.starts_with("HTTP/1.1 200 ") && body(&answer) == "inside\n" {
            inside += 1;
        } else if answer.starts_with("HTTP/1.1 404 ") {
            refused += 1;
        } else {
            other = Some(answer);
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap().expect("the swapper failed");
    assert_eq!(other, None, "neither the file nor a 404");
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!(
        "{requests} requests during {swaps} swaps: {inside} served from inside, {refused} \
         refused, {leaks} leaked the outside file"
    );
    assert_eq!(
        leaks, 0,
        "{leaks} of {requests} answers carried the outside file"
    );
    // Both states were seen, so the requests really ran into the swapping.
    assert!(
        inside > 0 && refused > 0,
        "{inside} inside, {refused} refused"
    );
}

#[cfg(target_os = "linux")]
fn c_path(path: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Swaps two names atomically: `renameat2(RENAME_EXCHANGE)`, by its system call number
/// so that no glibc version is needed.
#[cfg(target_os = "linux")]
fn exchange(a: &std::ffi::CStr, b: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: both are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::c_long::from(libc::AT_FDCWD),
            a.as_ptr(),
            libc::c_long::from(libc::AT_FDCWD),
            b.as_ptr(),
            libc::RENAME_EXCHANGE as libc::c_long,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
