//! Property tests (proptest) of the parsers tinyws owns and that only the crate can reach:
//! the request-head reader and its end-of-head scan, the upgrade check, and the close-frame
//! helpers. The invariant everywhere: never panic, never hold more than the limit, and
//! always come out with a well-formed HTTP answer, an upgrade, or a clean close.
//! `tests/fuzz.rs` throws the same kind of input at a running server over real sockets.
//! Case counts follow proptest's default (256) or `PROPTEST_CASES`.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::config::Config;
use crate::frame::{close as close_frame, contains_close as has_close_frame};
use crate::handshake::{Verdict, check};
use crate::head::{HeadError, find_head_end, read_head};
use crate::response::Response;

/// What every plain answer must look like on the wire: an HTTP/1.1 status line with a
/// known status, `Content-Length` equal to the body, and `Connection: close`.
fn assert_well_formed(r: &Response) {
    let bytes = r.to_bytes();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(&bytes) else {
        panic!(
            "not a complete HTTP response: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    };
    assert_eq!(parsed.version, Some(1));
    assert_eq!(parsed.code, Some(r.status));
    assert!(
        [200, 400, 403, 404, 405, 408, 426, 431, 503, 505].contains(&r.status),
        "{}",
        r.status
    );
    assert_ne!(
        parsed.reason,
        Some("Error"),
        "status {} has no reason",
        r.status
    );
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_string())
    };
    assert_eq!(
        header("Content-Length"),
        Some((bytes.len() - len).to_string())
    );
    assert!(header("Connection").is_some_and(|c| c.ends_with("close")));
}

fn status(v: &Verdict) -> u16 {
    match v {
        Verdict::Upgrade { .. } => 101,
        Verdict::Page { .. } => {
            let page = crate::page::page(&Config::default(), b"GET / HTTP/1.1\r\n\r\n");
            assert_well_formed(&page);
            page.status
        }
        Verdict::Refuse { response, .. } => {
            assert_well_formed(response);
            response.status
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A valid upgrade request, varied in every way RFC 6455 §4.2.1 and HTTP allow: header
/// order and name case, token lists, extra headers, query strings, LF or CRLF.
#[derive(Debug, Clone)]
struct Upgrade {
    path: String,
    query: String,
    /// (name, value); the five required headers first, then extras, in `order`.
    headers: Vec<(String, String)>,
    order: Vec<usize>,
    crlf: bool,
}

impl Upgrade {
    fn render(&self, method: &str, version: &str, skip: Option<usize>) -> Vec<u8> {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut s = format!("{method} {}{} HTTP/{version}{eol}", self.path, self.query);
        for &i in &self.order {
            if Some(i) != skip {
                let (n, v) = &self.headers[i];
                s.push_str(&format!("{n}: {v}{eol}"));
            }
        }
        s.push_str(eol);
        s.into_bytes()
    }
}

fn any_case(s: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), s.len()).prop_map(move |up| {
        s.chars()
            .zip(up)
            .map(|(c, u)| {
                if u {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

fn upgrade() -> impl Strategy<Value = Upgrade> {
    (
        "/[a-z0-9/._~-]{0,20}",
        prop_oneof![Just(String::new()), "\\?[a-z0-9=&]{0,12}"],
        (
            any_case("Host"),
            any_case("Upgrade"),
            any_case("Connection"),
            any_case("Sec-WebSocket-Key"),
            any_case("Sec-WebSocket-Version"),
        ),
        prop_oneof![Just("websocket"), Just("WebSocket")],
        prop_oneof![
            Just("Upgrade"),
            Just("keep-alive, Upgrade"),
            Just("upgrade")
        ],
        any::<[u8; 16]>(),
        proptest::collection::vec(("X-[A-Za-z-]{1,12}", "[!-~]([ -~]{0,30}[!-~])?"), 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(
            |(path, query, names, up, conn, key, extras, crlf, origin)| {
                let mut headers = vec![
                    (names.0, "localhost:8080".to_string()),
                    (names.1, up.to_string()),
                    (names.2, conn.to_string()),
                    (names.3, base64(&key)),
                    (names.4, "13".to_string()),
                ];
                if origin {
                    headers.push(("Origin".into(), "http://localhost:8080".into()));
                }
                headers.extend(extras);
                let order: Vec<usize> = (0..headers.len()).collect();
                (
                    Just((path, query, headers, crlf)),
                    Just(order).prop_shuffle(),
                )
            },
        )
        .prop_map(|((path, query, headers, crlf), order)| Upgrade {
            path,
            query,
            headers,
            order,
            crlf,
        })
}

/// A naive reference for the end of the head: the first LF followed by LF or CRLF.
fn naive_head_end(buf: &[u8]) -> Option<usize> {
    (1..buf.len()).find_map(|i| {
        let blank =
            buf[i] == b'\n' && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 2..i] == *b"\n\r"));
        blank.then_some(i + 1)
    })
}

/// Bytes that look like a request head often enough to reach every branch.
fn heady_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"GET / HTTP/1.1".to_vec()),
        Just(b"Host: a".to_vec()),
        "[ -~]{0,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn check_answers_any_bytes_with_a_well_formed_response(head in heady_bytes()) {
        let v = check(&head, &Config::default());
        // Random bytes cannot carry a valid key and the three other headers.
        prop_assert_ne!(status(&v), 101);
    }

    #[test]
    fn check_upgrades_every_valid_request(u in upgrade()) {
        match check(&u.render("GET", "1.1", None), &Config::default()) {
            Verdict::Upgrade { path, .. } => prop_assert_eq!(path, u.path),
            Verdict::Page { .. } => prop_assert!(false, "a valid upgrade got the page"),
            Verdict::Refuse { response, .. } => {
                prop_assert!(false, "refused {}: {}", response.status, response.body)
            }
        }
    }

    #[test]
    fn check_names_what_is_wrong(u in upgrade(), which in 0usize..9) {
        let cfg = Config::default();
        // RFC 6455 §4.2.1 / §4.4, and the README's table of answers.
        let (req, want) = match which {
            0 => (u.render("GET", "1.1", Some(0)), 400), // no Host
            // no Upgrade: a plain GET, which on `/` gets the teaching page
            1 => (u.render("GET", "1.1", Some(1)), if u.path == "/" { 200 } else { 426 }),
            2 => (u.render("GET", "1.1", Some(2)), 400), // no Connection: Upgrade
            3 => (u.render("GET", "1.1", Some(3)), 400), // no key
            4 => (u.render("GET", "1.1", Some(4)), 426), // no version
            5 => (u.render("POST", "1.1", None), 405),
            6 => (u.render("GET", "1.0", None), 505),
            7 => {
                let mut bad = u.clone();
                bad.headers[3].1 = base64(b"fifteen bytes..");
                (bad.render("GET", "1.1", None), 400)
            }
            _ => {
                let mut bad = u.clone();
                bad.headers.push(("Origin".into(), "http://evil.example".into()));
                bad.order.retain(|&i| bad.headers[i].0 != "Origin");
                bad.order.push(bad.headers.len() - 1);
                (bad.render("GET", "1.1", None), 403)
            }
        };
        prop_assert_eq!(status(&check(&req, &cfg)), want);
    }

    #[test]
    fn check_survives_a_mutated_valid_request(
        u in upgrade(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut req = u.render("GET", "1.1", None);
        for (at, byte, kind) in edits {
            let i = at.index(req.len());
            match kind {
                0 => req[i] = byte,
                1 => req.insert(i, byte),
                _ => { req.remove(i); }
            }
        }
        status(&check(&req, &Config::default()));
    }

    #[test]
    fn head_end_matches_the_naive_scan_wherever_reads_split(
        buf in heady_bytes(),
        split in any::<prop::sample::Index>(),
    ) {
        let want = naive_head_end(&buf);
        // read_head scans from where the previous read ended, only if no end was found.
        let from = split.index(buf.len() + 1);
        if naive_head_end(&buf[..from]).is_none() {
            prop_assert_eq!(find_head_end(&buf, from), want);
        }
        prop_assert_eq!(find_head_end(&buf, 0), want);
    }

    #[test]
    fn close_frames_are_valid_control_frames(code in any::<u16>(), reason in ".{0,80}") {
        let f = close_frame(code, &reason);
        // §5.5: control payloads are at most 125 bytes; §5.5.1: code first, then UTF-8.
        prop_assert_eq!(f[0], 0x88);
        prop_assert_eq!(f[1] as usize, f.len() - 2);
        prop_assert!(f.len() - 2 <= 125);
        prop_assert_eq!(u16::from_be_bytes([f[2], f[3]]), code);
        let text = std::str::from_utf8(&f[4..]);
        prop_assert!(text.is_ok_and(|t| reason.starts_with(t)));
        prop_assert!(has_close_frame(&f));
    }

    #[test]
    fn close_is_found_only_where_a_close_frame_starts(
        frames in proptest::collection::vec(
            (prop_oneof![Just(0x0u8), Just(0x1), Just(0x2), Just(0x9), Just(0xA)],
             prop_oneof![0usize..126, 126usize..70_000]),
            0..6),
        close in any::<bool>(),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut run = Vec::new();
        for (op, len) in frames {
            run.push(0x80 | op);
            match len {
                n if n < 126 => run.push(n as u8),
                n if n < 65536 => { run.push(126); run.extend_from_slice(&(n as u16).to_be_bytes()); }
                n => { run.push(127); run.extend_from_slice(&(n as u64).to_be_bytes()); }
            }
            // payload bytes that look like close frames must be skipped, not parsed
            run.extend(std::iter::repeat_n(0x88, len));
        }
        if close {
            run.extend_from_slice(&close_frame(1000, ""));
        }
        prop_assert_eq!(has_close_frame(&run), close);
        // arbitrary bytes: any answer, but no panic and no read past the end
        has_close_frame(&junk);
    }
}

/// A connected pair on loopback: (client side, server side).
fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// read_head over a real socket, with the input cut into arbitrary writes: it never
    /// keeps more than `max + 1` bytes, returns exactly the head when one ends within
    /// `max`, and otherwise `TooLarge` or `Closed` (the writer closes, so no timeout).
    #[test]
    fn read_head_stays_within_its_limit(
        data in heady_bytes(),
        cuts in proptest::collection::vec(1usize..64, 0..12),
        max in 8usize..256,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut client, server) = pair(&listener);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            let mut rest = &sent[..];
            for cut in cuts {
                let n = cut.min(rest.len());
                if client.write_all(&rest[..n]).is_err() { return; }
                rest = &rest[n..];
                let _ = client.flush();
            }
            let _ = client.write_all(rest);
            let _ = client.shutdown(Shutdown::Write);
            // keep the socket open until the reader is done, so it sees FIN, not RST
            let _ = std::io::Read::read(&mut client, &mut [0u8; 1]);
        });
        let server = crate::transport::Transport::new(server);
        let result = read_head(&server, max, Instant::now() + Duration::from_secs(5));
        let _ = server.socket().shutdown(Shutdown::Both);
        writer.join().unwrap();
        let want = naive_head_end(&data).filter(|&end| end <= max);
        match result {
            Ok(head) => {
                prop_assert!(head.buf.len() <= max + 1);
                prop_assert_eq!(Some(head.len), want);
                prop_assert_eq!(&head.buf[..], &data[..head.buf.len()]);
            }
            Err(HeadError::TooLarge) => {
                prop_assert_eq!(want, None);
                prop_assert!(data.len() > max);
            }
            Err(HeadError::Closed) => {
                prop_assert_eq!(want, None);
                prop_assert!(data.len() <= max);
            }
            Err(e) => prop_assert!(false, "{:?}", e),
        }
    }
}

proptest! {
    /// The flag parsers (`--max-message-size 16MiB`, `--ping-interval 30s`) never panic,
    /// and what they accept is exactly the number times the unit, or an error on overflow.
    #[test]
    fn sizes_parse_exactly_or_fail(
        n in prop_oneof![0u64..4096, any::<u64>()],
        unit in prop::sample::select(vec![
            ("", 1u64), ("B", 1), ("k", 1 << 10), ("KiB", 1 << 10), ("kib", 1 << 10),
            ("MiB", 1 << 20), ("m", 1 << 20), ("GiB", 1 << 30), ("KB", 1_000),
            ("MB", 1_000_000), ("gb", 1_000_000_000),
        ]),
        space in prop_oneof![Just(""), Just(" ")],
        junk in ".{0,12}",
    ) {
        let want = n.checked_mul(unit.1).and_then(|v| usize::try_from(v).ok());
        let got = crate::config::parse_size(&format!("{n}{space}{}", unit.0));
        prop_assert_eq!(got.ok(), want);
        let _ = crate::config::parse_size(&junk);
        let _ = crate::config::parse_size(&format!("{n}{junk}"));
    }

    #[test]
    fn formatted_sizes_parse_back(n in any::<usize>()) {
        prop_assert_eq!(crate::config::parse_size(&crate::config::format_size(n)), Ok(n));
    }

    #[test]
    fn durations_parse_exactly_or_fail(
        n in any::<u64>(),
        unit in prop::sample::select(vec!["", "s", "ms", "m", "min", "h"]),
        junk in ".{0,12}",
    ) {
        let want = match unit {
            "" | "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            _ => Duration::from_secs(n.saturating_mul(3600)),
        };
        prop_assert_eq!(crate::config::parse_duration(&format!("{n}{unit}")), Ok(want));
        let _ = crate::config::parse_duration(&junk);
        let _ = crate::config::parse_duration(&format!("{n}{junk}"));
    }

    #[test]
    fn formatted_durations_parse_back(ms in any::<u64>()) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(crate::config::parse_duration(&crate::config::format_duration(d)), Ok(d));
    }
}
