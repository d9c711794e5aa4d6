//! Every plain-HTTP answer on the WebSocket port, from raw bytes: status line, headers,
//! and a closed connection afterwards (RFC 6455 §4.2.1, §4.2.2, §4.4).

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::*;

/// Status line and headers of an answer (without the body).
fn head_of(answer: &str) -> &str {
    answer.split("\r\n\r\n").next().unwrap()
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").unwrap().1
}

/// Checks the parts every answer shares: a status line, a one-line text body whose
/// length matches Content-Length, and `Connection: close`.
fn check_answer(answer: &str, status_line: &str) {
    assert!(
        answer.starts_with(&format!("{status_line}\r\n")),
        "{answer}"
    );
    let body = body_of(answer);
    assert!(
        head_of(answer).contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{answer}"
    );
    assert!(head_of(answer).contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    assert!(
        body.ends_with(".\n") && body.lines().count() == 1,
        "one sentence: {body:?}"
    );
}

#[test]
fn plain_get_is_426_with_upgrade_websocket() {
    let server = start(config());
    let a = http(server.addr, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    check_answer(&a, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(
        head_of(&a),
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 72\r\nConnection: Upgrade, close"
    );
    assert_eq!(
        body_of(&a),
        "/echo is a WebSocket endpoint; connect with a WebSocket client (ws://).\n"
    );
}

#[test]
fn wrong_version_is_426_listing_13() {
    let server = start(config());
    for version in ["Sec-WebSocket-Version: 8\r\n", ""] {
        let req = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {RFC_KEY}\r\n{version}\r\n"
        );
        let a = http(server.addr, &req);
        check_answer(&a, "HTTP/1.1 426 Upgrade Required");
        assert!(
            head_of(&a).contains("\r\nSec-WebSocket-Version: 13\r\n"),
            "{a}"
        );
    }
}

#[test]
fn bad_or_missing_key_and_malformed_upgrades_are_400() {
    let server = start(config());
    let cases = [
        // key missing
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(),
        // key not 16 bytes of base64
        upgrade_request("/", "").replace(RFC_KEY, "c2hvcnQ="),
        upgrade_request("/", "").replace(RFC_KEY, "dGhlIHNhbXBsZSBub25jZQ!!"),
        // two keys
        upgrade_request("/", &format!("Sec-WebSocket-Key: {RFC_KEY}\r\n")),
        // Connection without the upgrade token
        upgrade_request("/", "").replace("Connection: Upgrade", "Connection: keep-alive"),
        // no Host
        upgrade_request("/", "").replace("Host: localhost\r\n", ""),
        // garbage request line
        "HELLO\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n".to_string(),
        // a target that is neither a path nor an http(s) URL (RFC 9112 §3.2)
        upgrade_request("ftp://x/", ""),
        upgrade_request("http:///", ""),
    ];
    for req in cases {
        let a = http(server.addr, &req);
        check_answer(&a, "HTTP/1.1 400 Bad Request");
    }
}

#[test]
fn connection_token_lists_are_understood() {
    // Firefox sends `Connection: keep-alive, Upgrade`; the token is matched in the list.
    let server = start(config());
    let mut s = tcp(server.addr);
    let req =
        upgrade_request("/", "").replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    s.write_all(req.as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
}

#[test]
fn other_methods_are_405_with_allow() {
    let server = start(config());
    // HEAD is GET without the content (RFC 9110 §9.1; tests/hostile.rs).
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let a = http(
            server.addr,
            &format!("{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
        );
        check_answer(&a, "HTTP/1.1 405 Method Not Allowed");
        assert!(head_of(&a).contains("\r\nAllow: GET, HEAD\r\n"), "{a}");
    }
}

#[test]
fn http_1_0_is_505() {
    let server = start(config());
    let a = http(
        server.addr,
        &upgrade_request("/", "").replace("HTTP/1.1", "HTTP/1.0"),
    );
    check_answer(&a, "HTTP/1.1 505 HTTP Version Not Supported");
}

#[test]
fn paths_outside_path_are_404_and_the_query_is_ignored() {
    let server = start(config().path("/echo"));
    let a = http(server.addr, &upgrade_request("/other", ""));
    check_answer(&a, "HTTP/1.1 404 Not Found");
    assert!(body_of(&a).contains("/echo"));
    let a = http(server.addr, "GET /echo/x HTTP/1.1\r\nHost: x\r\n\r\n");
    check_answer(&a, "HTTP/1.1 404 Not Found");
    let mut s = tcp(server.addr);
    s.write_all(upgrade_request("/echo?room=1", "").as_bytes())
        .unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
}

#[test]
fn foreign_origins_are_403_and_same_origin_or_none_pass() {
    let server = start(config());
    let host = format!("127.0.0.1:{}", server.addr.port());
    let with = |origin: &str| {
        upgrade_request("/", &format!("Origin: {origin}\r\n"))
            .replace("Host: localhost", &format!("Host: {host}"))
    };
    for bad in [
        "http://evil.example",
        "null",
        &format!("http://127.0.0.1:{}", server.addr.port() + 1),
    ] {
        let a = http(server.addr, &with(bad));
        check_answer(&a, "HTTP/1.1 403 Forbidden");
    }
    for good in [format!("http://{host}"), format!("HTTP://{host}")] {
        let mut s = tcp(server.addr);
        s.write_all(with(&good).as_bytes()).unwrap();
        assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "), "{good}");
    }
    let mut s = tcp(server.addr); // no Origin: not a browser
    s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
}

#[test]
fn allow_origin_lists_and_star_open_the_check() {
    let listed = start(config().allow_origins(["http://class.example:3000", "null"]));
    let star = start(config().allow_origins(["*"]));
    for (server, origin, ok) in [
        (&listed, "http://class.example:3000", true),
        (&listed, "null", true),
        (&listed, "http://class.example:3001", false),
        (&star, "http://anything.example", true),
        (&star, "null", true),
    ] {
        let mut s = tcp(server.addr);
        s.write_all(upgrade_request("/", &format!("Origin: {origin}\r\n")).as_bytes())
            .unwrap();
        let status = if ok { "HTTP/1.1 101 " } else { "HTTP/1.1 403 " };
        assert!(read_head(&mut s).starts_with(status), "{origin}");
    }
}

#[test]
fn a_head_over_the_cap_is_431() {
    let server = start(config().max_head_size(1024));
    let big = upgrade_request("/", &format!("X-Filler: {}\r\n", "a".repeat(1100)));
    let a = http(server.addr, &big);
    check_answer(&a, "HTTP/1.1 431 Request Header Fields Too Large");
    // Too many header lines count the same.
    let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
    let a = http(server.addr, &upgrade_request("/", &many));
    check_answer(&a, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn a_head_sent_one_byte_per_write_still_upgrades() {
    let server = start(config().handshake_timeout(Duration::from_secs(4)));
    let mut s = tcp(server.addr);
    s.set_nodelay(true).unwrap();
    for b in upgrade_request("/", "").bytes() {
        s.write_all(&[b]).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
}

#[test]
fn a_head_that_never_completes_is_cut_at_the_deadline_and_its_thread_freed() {
    let server = start(config().handshake_timeout(Duration::from_millis(400)));
    let mut s = tcp(server.addr);
    // A head that never ends, a byte every 50 ms: the total deadline must cut it while
    // it is still trickling (a per-read idle timeout would let it run out first).
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let drip = Drip::start(&s, b'X');
    let answer = String::from_utf8_lossy(&Drip::read_until_cut(&mut s)).to_string();
    assert!(
        drip.still_dripping(),
        "the server answered only after the client stopped sending: no total deadline"
    );
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert_eq!(server.wait_connections(0), 0, "the thread is freed");
    drop(s);
    drop(drip);

    // A connection that sends nothing at all is closed silently.
    let mut idle = tcp(server.addr);
    assert!(read_to_end(&mut idle).is_empty());
    assert_eq!(server.wait_connections(0), 0);
}

/// The header-line cap is 64 (docs/reference.md, "Defaults and limits"): 64 lines
/// upgrade, 65 get 431.
#[test]
fn sixty_four_header_lines_upgrade_and_sixty_five_get_431() {
    let server = start(config());
    // upgrade_request already has 5 header lines (Host, Upgrade, Connection, key, version).
    let extra = |n: usize| -> String { (0..n).map(|i| format!("X-{i}: y\r\n")).collect() };
    let mut s = tcp(server.addr);
    s.write_all(upgrade_request("/", &extra(59)).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "64 header lines: {head}");
    let a = http(server.addr, &upgrade_request("/", &extra(60)));
    check_answer(&a, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(body_of(&a), "The request has more than 64 header lines.\n");
}

#[test]
fn at_the_connection_cap_new_clients_get_503_not_silence() {
    let server = start(config().max_connections(2));
    let _a = ws(server.addr, "/");
    let _b = ws(server.addr, "/");
    assert_eq!(server.wait_connections(2), 2);
    for _ in 0..3 {
        let a = http(server.addr, &upgrade_request("/", ""));
        check_answer(&a, "HTTP/1.1 503 Service Unavailable");
        assert!(head_of(&a).contains("\r\nRetry-After: 1\r\n"));
    }
    drop(_a);
    assert_eq!(server.wait_connections(1), 1);
    let mut c = ws(server.addr, "/");
    c.send(tinyws::Message::text("room again")).unwrap();
    assert_eq!(c.read().unwrap(), tinyws::Message::text("room again"));
}

/// `--max-head-size` is the largest head that is accepted (docs/reference.md: "over" it gets 431):
/// a head of exactly that many bytes upgrades, one byte more gets 431. Also at 64 KiB,
/// the largest setting `Config::validate` allows: tungstenite's handshake takes such a head.
#[test]
fn a_head_of_exactly_max_head_size_upgrades_and_one_byte_more_gets_431() {
    let sized = |len: usize| {
        let bare = upgrade_request("/", "X-Filler: \r\n").len();
        let req = upgrade_request("/", &format!("X-Filler: {}\r\n", "a".repeat(len - bare)));
        assert_eq!(req.len(), len);
        req
    };
    for max in [1024, 64 * 1024] {
        let server = start(config().max_head_size(max));
        let mut s = tcp(server.addr);
        s.write_all(sized(max).as_bytes()).unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{max} bytes: {head}");
        let a = http(server.addr, &sized(max + 1));
        check_answer(&a, "HTTP/1.1 431 Request Header Fields Too Large");
    }
}
