//! The frame lab, from raw HTTP: the six "Frames by hand" cases of docs/classroom.md as
//! hex in `GET /.framelab?hex=…`, each answered with what a real connection would get
//! (the same bytes `client --raw` reads over a socket in tests/examples.rs), the bad
//! inputs with a 400 each, and what an attacker may try. Without the `teach` layer the
//! path is like any other.

mod common;

use common::*;

/// The largest single allocation this process has asked for since it was last reset:
/// how the lab's own buffers are measured (in a process of their own, below).
#[cfg(feature = "teach")]
mod largest {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

    pub struct Counting;

    // SAFETY: every call goes to `System` unchanged; only the size is noted.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Relaxed);
            // SAFETY: the caller's contract, passed on as it is.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Relaxed);
            // SAFETY: the caller's contract, passed on as it is.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LARGEST.fetch_max(new_size, Relaxed);
            // SAFETY: the caller's contract, passed on as it is.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, passed on as it is.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;
}

/// The answer to `GET target` (Host set), status line to body.
fn get(addr: std::net::SocketAddr, target: &str) -> String {
    http(addr, &format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n"))
}

#[cfg(feature = "teach")]
mod lab {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use tinyws::{Client, Message};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The lab's JSON for `frames`, checked to be a 200 of JSON that no cache keeps.
    fn lab(addr: std::net::SocketAddr, frames: &[u8]) -> String {
        let answer = get(addr, &format!("/.framelab?hex={}", hex(frames)));
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            head.contains("\r\nContent-Type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nCache-Control: no-store\r\n"), "{head}");
        body.trim_end().to_string()
    }

    fn close_frame(code: u16, reason: &str) -> Vec<u8> {
        let mut f = vec![0x88, 2 + reason.len() as u8];
        f.extend(code.to_be_bytes());
        f.extend(reason.as_bytes());
        f
    }

    /// Frames, masked with the RFC's key as the plan's are: (first byte, payload).
    fn frames(list: &[(u8, &[u8])]) -> Vec<u8> {
        list.iter()
            .flat_map(|(b, p)| frame_with(*b, p, Some([0x37, 0xfa, 0x21, 0x3d])))
            .collect()
    }

    /// The six cases: the input, then the JSON the server must answer (the bytes back
    /// are the echo `client --raw` prints for the same input in tests/examples.rs).
    #[test]
    fn the_six_cases_get_what_a_socket_gets() {
        let server = start(config());
        let aaa = [b'a'; 126];
        let mut echo126 = vec![0x81, 0x7e, 0x00, 0x7e];
        echo126.extend(aaa);
        let unmasked = "Received an unmasked frame from client";
        let cases: [(&str, Vec<u8>, String); 6] = [
            (
                "masked, then a close",
                frames(&[(0x81, b"Hello"), (0x88, &[0x03, 0xe8])]),
                r#"{"end":"closed","code":1000,"name":"normal closure","reason":"","section":"§5.5.1","needs":0,"reply":"810548656c6c6f880203e8"}"#.into(),
            ),
            (
                "unmasked",
                frame_with(0x81, b"Hello", None),
                format!(
                    r#"{{"end":"failed","code":1002,"name":"protocol error","reason":"{unmasked}","section":"§5.1","needs":0,"reply":"{}"}}"#,
                    hex(&close_frame(1002, unmasked))
                ),
            ),
            (
                "rsv1",
                frames(&[(0xc1, b"Hello")]),
                format!(
                    r#"{{"end":"failed","code":1002,"name":"protocol error","reason":"Reserved bits are non-zero","section":"§5.2","needs":0,"reply":"{}"}}"#,
                    hex(&close_frame(1002, "Reserved bits are non-zero"))
                ),
            ),
            (
                "two fragments, a ping between",
                frames(&[(0x01, b"Hel"), (0x89, b"hi"), (0x80, b"lo")]),
                r#"{"end":"open","code":null,"name":"","reason":"","section":"","needs":0,"reply":"8a026869810548656c6c6f"}"#.into(),
            ),
            (
                "你 split across fragments",
                frames(&[(0x01, &[0xe4, 0xbd]), (0x80, &[0xa0])]),
                r#"{"end":"open","code":null,"name":"","reason":"","section":"","needs":0,"reply":"8103e4bda0"}"#.into(),
            ),
            (
                "126 bytes, the 16-bit length",
                frames(&[(0x81, &aaa)]),
                format!(
                    r#"{{"end":"open","code":null,"name":"","reason":"","section":"","needs":0,"reply":"{}"}}"#,
                    hex(&echo126)
                ),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(lab(server.addr, &input), want, "{name}");
        }
        // The plan's own bytes for these cases are the ones above.
        assert!(hex(&frames(&[(0x81, &aaa)])).starts_with("81fe007e37fa213d569b405c"));
        assert_eq!(hex(&frames(&[(0x80, b"lo")])), "808237fa213d5b95");
    }

    /// More of what decides a verdict: each with its code and section.
    #[test]
    fn each_failure_names_its_code_and_section() {
        let server = start(config().max_message_size(1000));
        let cases: [(&str, Vec<u8>, &str); 9] = [
            (
                "continuation first",
                frames(&[(0x80, b"x")]),
                r#""code":1002,"name":"protocol error","reason":"Continue frame but nothing to continue","section":"§5.4""#,
            ),
            (
                "new message mid-message",
                frames(&[(0x01, b"x"), (0x81, b"y")]),
                r#""code":1002,"name":"protocol error","reason":"While waiting for more fragments received: TEXT","section":"§5.4""#,
            ),
            (
                "fragmented ping",
                frames(&[(0x09, b"x")]),
                r#""code":1002,"name":"protocol error","reason":"Fragmented control frame","section":"§5.5""#,
            ),
            (
                "reserved opcode",
                frames(&[(0x83, b"x")]),
                r#""code":1002,"name":"protocol error","reason":"Encountered invalid opcode: 3","section":"§5.2""#,
            ),
            (
                "bad UTF-8 across fragments",
                frames(&[(0x01, &[0xe4]), (0x80, &[0x41])]),
                r#""code":1007,"name":"invalid payload data","reason":"invalid UTF-8 in a text message or close reason","section":"§8.1""#,
            ),
            (
                "a message over max_message_size",
                frames(&[(0x02, &[0; 600]), (0x80, &[0; 600])]),
                r#""code":1009,"name":"message too big","reason":"Message too long: 1200 \u003e 1000","section":"§10.4""#,
            ),
            (
                "a 1-byte close payload",
                frames(&[(0x88, &[3])]),
                r#""code":1002,"name":"protocol error","reason":"Invalid close sequence","section":"§5.5.1""#,
            ),
            // Codes a close frame never carries: the server answers 1002, the client
            // did not close.
            (
                "a close with 1005 (no status code)",
                frames(&[(0x88, &close_payload(1005, "x"))]),
                r#""code":1002,"name":"protocol error","reason":"Protocol violation","section":"§7.4""#,
            ),
            (
                "a close with 999",
                frames(&[(0x88, &close_payload(999, ""))]),
                r#""code":1002,"name":"protocol error","reason":"Protocol violation","section":"§7.4""#,
            ),
        ];
        for (name, input, want) in cases {
            let json = lab(server.addr, &input);
            assert!(
                json.starts_with(&format!(r#"{{"end":"failed",{want},"#)),
                "{name}: {json}"
            );
        }
    }

    /// Every bad input gets a 400 (or the head's 431) that says what to send instead.
    #[test]
    fn bad_input_gets_a_clear_400() {
        let big = start(config().max_head_size(16 * 1024));
        let small = start(config());
        let long = "8".repeat(2 * 4096 + 2);
        let cases: [(&TestServer, String, &str, &str); 8] = [
            (
                &small,
                "/.framelab".into(),
                "400",
                "Give the frames' bytes as ?hex=, e.g. ?hex=8185",
            ),
            (&small, "/.framelab?hex=".into(), "400", "No bytes in ?hex="),
            (
                &small,
                "/.framelab?hex=818".into(),
                "400",
                "An odd number of hex digits (3): each byte is two",
            ),
            (
                &small,
                "/.framelab?hex=81zz".into(),
                "400",
                "Character 3 of ?hex= is not a hex digit (0-9, a-f)",
            ),
            (
                &small,
                "/.framelab?hex=%38%31".into(),
                "400",
                "Character 1 of ?hex= is not a hex digit",
            ),
            (
                &small,
                "/.framelab?hex=+81".into(),
                "400",
                "Character 1 of ?hex= is not a hex digit",
            ),
            (
                &big,
                format!("/.framelab?hex={long}"),
                "400",
                "Too many bytes: the frame lab reads at most 4096 bytes (8192 hex digits) per request.",
            ),
            (
                &small,
                format!("/.framelab?hex={long}"),
                "431",
                "The request head is larger than this server accepts (8KiB).",
            ),
        ];
        for (server, target, status, says) in cases {
            let answer = get(server.addr, &target);
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{target:.40}: {answer}"
            );
            assert!(answer.contains(says), "{target:.40}: {answer}");
        }
        // The other HTTP rules hold: a Host, a GET or HEAD.
        let answer = http(small.addr, "GET /.framelab?hex=8180 HTTP/1.1\r\n\r\n");
        assert!(
            answer.starts_with("HTTP/1.1 400 ") && answer.contains("Host"),
            "{answer}"
        );
        let answer = http(
            small.addr,
            "POST /.framelab?hex=8180 HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        let answer = http(
            small.addr,
            "HEAD /.framelab?hex=8180 HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        assert!(
            answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("\r\n\r\n"),
            "{answer}"
        );
    }

    /// Huge lengths with little data, control bytes, a close reason meant for a
    /// terminal: answered within the connection's limits, escaped in the JSON, and
    /// nothing of it in the log.
    #[test]
    fn what_an_attacker_sends_is_bounded_and_escaped() {
        let mut server =
            common::process::Proc::start_logging(env!("CARGO_BIN_EXE_tinyws"), &[], "info");
        let addr = server.addr;
        // 2^62 bytes announced: refused at the header, as on a socket.
        let mut huge = vec![0x82, 0xff];
        huge.extend((1u64 << 62).to_be_bytes());
        huge.extend([1, 2, 3, 4, 5]);
        let json = lab(addr, &huge);
        assert!(
            json.starts_with(r#"{"end":"failed","code":1009,"#),
            "{json}"
        );
        // 65,535 announced (under max_frame_size), 3 sent: the server waits for the rest.
        let json = lab(addr, &[0x82, 0xfe, 0xff, 0xff, 1, 2, 3, 4, 9, 9, 9]);
        assert!(json.starts_with(r#"{"end":"open","code":null,"#), "{json}");
        assert!(json.contains(r#""needs":65532,"reply":"""#), "{json}");
        // Control bytes in a text message and a close reason: echoed as bytes, escaped
        // in the JSON.
        let evil = "\u{1b}[2J\r\n\u{7}</script>";
        let json = lab(
            addr,
            &frames(&[(0x81, evil.as_bytes()), (0x88, &close_payload(4000, evil))]),
        );
        assert!(
            json.contains(r#""reason":"\u001b[2J\u000d\n\u0007\u003c/script\u003e""#),
            "{json}"
        );
        assert!(json.contains(&hex(evil.as_bytes())), "{json}");
        let line = server.wait_log("/.framelab answered 200: ");
        assert!(
            line.ends_with("/.framelab answered 200: 15 bytes, failed, code 1009 (§10.4)"),
            "{line}"
        );
        let line = server.wait_log("/.framelab answered 200: ");
        assert!(
            line.ends_with("answered 200: 11 bytes, open, 65532 bytes short of a frame"),
            "{line}"
        );
        let line = server.wait_log("/.framelab answered 200: ");
        assert!(line.ends_with("closed by the client, code 4000"), "{line}");
        assert!(
            !line.contains('\u{1b}') && !line.contains("script"),
            "{line}"
        );
        // Long hex never reaches the log either.
        let answer = get(addr, &format!("/.framelab?hex={}zz", "81".repeat(100)));
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        let line = server.wait_log("/.framelab answered 400: ");
        assert!(line.ends_with("answered 400: not bytes in hex"), "{line}");
    }

    /// `--trace` says what the lab answered, in one line, and no byte of the request.
    #[test]
    fn the_trace_says_the_verdict_in_one_line() {
        use common::process::{Proc, Stdout};
        let bin = env!("CARGO_BIN_EXE_tinyws");
        let mut server = Proc::start_with(bin, &["--trace"], Stdout::Capture);
        let json = lab(server.addr, &frame_with(0x81, b"Hello", None));
        assert!(
            json.starts_with(r#"{"end":"failed","code":1002,"#),
            "{json}"
        );
        let line = "-- the frame lab: /.framelab answered 200: 7 bytes, failed, code 1002 (§5.1), then close\n";
        let trace = String::from_utf8_lossy(server.stdout_until(line.as_bytes())).into_owned();
        assert!(!trace.contains("48656c6c6f"), "{trace}");
    }

    /// A hundred requests at once: each gets its own verdict, nothing is shared.
    #[test]
    fn a_hundred_requests_at_once_each_get_their_own_answer() {
        let server = start(config());
        let addr = server.addr;
        let threads: Vec<_> = (0..100u8)
            .map(|i| {
                std::thread::spawn(move || {
                    let text = format!("message {i}");
                    let json = lab(addr, &frames(&[(0x81, text.as_bytes())]));
                    let mut echo = vec![0x81, text.len() as u8];
                    echo.extend(text.as_bytes());
                    assert!(
                        json.ends_with(&format!(r#""reply":"{}"}}"#, hex(&echo))),
                        "{json}"
                    );
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(server.wait_connections(0), 0);
    }

    /// A lab request holds buffers the size of its bytes, as a connection with a small
    /// `read_buffer_size` does: not tungstenite's default 128 KiB read buffer, which it
    /// fills with zeros, for each of a hundred requests at once. Measured in a process of
    /// its own (this test, run again alone), so that no other test's buffers count.
    #[test]
    fn a_request_holds_buffers_the_size_of_its_bytes() {
        use std::sync::atomic::Ordering::Relaxed;
        const CHILD: &str = "TINYWS_FRAMELAB_MEASURE";
        if std::env::var_os(CHILD).is_none() {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "lab::a_request_holds_buffers_the_size_of_its_bytes",
                ])
                .args(["--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        let server = start(config().read_buffer_size(4096));
        // About 4 KiB of empty text frames: each is echoed.
        let frames = frames(&[(0x81, b"")]).repeat(670);
        lab(server.addr, &frames);
        largest::LARGEST.store(0, Relaxed);
        let json = lab(server.addr, &frames);
        let largest = largest::LARGEST.load(Relaxed);
        assert!(json.starts_with(r#"{"end":"open","#), "{json}");
        // The hex (8 KiB) and the request head are the largest: a few times the input.
        assert!(largest < 32 * 1024, "an allocation of {largest} bytes");
    }

    /// The lab reaches neither the handler nor the room: a member of the room gets its
    /// own message first, and the handler counts only that one.
    #[test]
    fn the_lab_never_reaches_the_handler_or_the_room() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let handler = move |_: &Client, msg: Message| -> Option<Message> {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(msg)
        };
        let server = start_with(config().broadcast(true), handler);
        let mut member = ws(server.addr, "/");
        let json = lab(server.addr, &frames(&[(0x81, b"Hello")]));
        assert!(json.ends_with(r#""reply":"810548656c6c6f"}"#), "{json}");
        member.send(Message::text("mine")).unwrap();
        assert_eq!(member.read().unwrap(), Message::text("mine"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // An upgrade of the lab's path is an upgrade like any other.
        let mut s = tcp(server.addr);
        s.write_all(upgrade_request("/.framelab", "").as_bytes())
            .unwrap();
        assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    }
}

/// Without the `teach` layer, the lab's path gets what any other path gets.
#[cfg(not(feature = "teach"))]
#[test]
fn without_the_teach_layer_the_lab_is_not_there() {
    let server = start(config().path("/echo"));
    let answer = get(server.addr, "/.framelab?hex=810548656c6c6f");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    let other = get(server.addr, "/.other?hex=810548656c6c6f");
    assert_eq!(
        answer
            .split_once("\r\n\r\n")
            .unwrap()
            .1
            .replace(".framelab", ".other"),
        other.split_once("\r\n\r\n").unwrap().1
    );
}
