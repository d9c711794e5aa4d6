//! The `Host` header on every route, over raw sockets to the real binary: an HTTP/1.1
//! request without exactly one valid `Host` gets 400 whatever it asks for (RFC 9112
//! §3.2), and with `--allow-host` a request for any other name gets 421 (so a page on a
//! rebound DNS name cannot reach the server), each logged once at info.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use common::process::Proc;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

/// A directory with one file for `--static`, removed on drop.
struct Site(PathBuf);

impl Site {
    fn new() -> Site {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("tinyws-host-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "aaa\n").unwrap();
        Site(dir)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One route of the server: how to ask for it, and its answer with a good `Host`.
struct Route {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    extra: &'static str,
    ok: u16,
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Every route of a server started with `--path /echo --inspect` (and `--static` when
/// `with_static`), with what it answers when the request is fine.
fn routes(with_static: bool) -> Vec<Route> {
    let route = |name, method, path, extra, ok| Route {
        name,
        method,
        path,
        extra,
        ok,
    };
    vec![
        route("the page on /", "GET", "/", "", 200),
        route("HEAD of the page", "HEAD", "/", "", 200),
        route("the page on /.tinyws", "GET", "/.tinyws", "", 200),
        route(
            "an inspector poll",
            "GET",
            "/.inspect?inspect_token=00000000000000000000000000000000",
            "",
            404,
        ),
        route("the projector view", "GET", "/inspect", "", 200),
        route("the endpoint's 426", "GET", "/echo", "", 426),
        route(
            "a version's 426",
            "GET",
            "/echo",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            426,
        ),
        route(
            "a file",
            "GET",
            "/a.txt",
            "",
            if with_static { 200 } else { 404 },
        ),
        route("another method", "POST", "/", "", 405),
        route("an upgrade", "GET", "/echo", UPGRADE, 101),
    ]
}

/// Starts the binary on a free port with `--path /echo --inspect`, `args`, and
/// `--static` when `site` is given.
fn server(site: Option<&Site>, args: &[&str]) -> Proc {
    let mut all = vec!["--path", "/echo", "--inspect"];
    if let Some(site) = site {
        all.extend(["--static", site.0.to_str().unwrap()]);
    }
    all.extend(args);
    Proc::start(BIN, &all)
}

/// Sends one request and returns (status, body); a `101` is not read further.
fn ask(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = tcp(addr);
    s.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut s);
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    if status == 101 {
        return (status, String::new());
    }
    let body = String::from_utf8(read_to_end(&mut s)).expect("a UTF-8 body");
    (status, body)
}

fn request(route: &Route, version: &str, target_prefix: &str, host_lines: &str) -> String {
    format!(
        "{} {target_prefix}{} HTTP/{version}\r\n{host_lines}{}\r\n",
        route.method, route.path, route.extra
    )
}

/// Every `Host` RFC 9112 §3.2 says is a 400: none, two, empty, and invalid ones. Only
/// spaces and tabs around a value are whitespace (RFC 9110 §5.6.3): a name followed by a
/// no-break space or an ideographic space (U+3000) is an invalid name, not `localhost`.
const BAD_HOSTS: [&str; 8] = [
    "",
    "Host: localhost\r\nHost: localhost\r\n",
    "Host: \r\n",
    "Host: user@localhost\r\n",
    "Host: localhost:80x\r\n",
    "Host: local host\r\n",
    "Host: localhost\u{a0}\r\n",
    "Host: \u{3000}localhost\r\n",
];

#[test]
fn an_http11_request_without_one_valid_host_gets_400_on_every_route() {
    let site = Site::new();
    for with_static in [false, true]
        .into_iter()
        .filter(|s| !s || cfg!(feature = "static"))
    {
        let p = server(with_static.then_some(&site), &[]);
        let good = format!("Host: localhost:{}\r\n", p.addr.port());
        for route in routes(with_static) {
            let what = format!("{} (static: {with_static})", route.name);
            // The row reaches its route: with a good Host, its usual answer.
            let (status, _) = ask(p.addr, &request(&route, "1.1", "", &good));
            assert_eq!(status, route.ok, "{what} with a good Host");
            for bad in BAD_HOSTS {
                let (status, body) = ask(p.addr, &request(&route, "1.1", "", bad));
                assert_eq!(status, 400, "{what} with {bad:?}: {body}");
                if route.method == "HEAD" {
                    assert_eq!(body, "", "{what}: HEAD has no body");
                } else {
                    // One sentence that says what is wrong.
                    assert!(
                        body.starts_with("The Host header ") && body.lines().count() == 1,
                        "{what} with {bad:?}: {body:?}"
                    );
                }
            }
        }
    }
}

/// HTTP/1.0 may leave `Host` out (RFC 9112 §3.2 asks it of 1.1 only): it gets what it got
/// before (505 from the WebSocket checks, the inspector's own answer); but two `Host`
/// lines are a 400 in any version.
#[test]
fn http10_without_host_is_answered_as_before_and_two_hosts_are_400() {
    let p = server(None, &[]);
    let route = |path| Route {
        name: "",
        method: "GET",
        path,
        extra: "",
        ok: 0,
    };
    let poll = route("/.inspect?inspect_token=00000000000000000000000000000000");
    let two = "Host: a\r\nHost: b\r\n";
    for (req, want) in [
        (request(&route("/"), "1.0", "", ""), 505),
        (request(&route("/echo"), "1.0", "", ""), 505),
        (request(&poll, "1.0", "", ""), 404),
        (request(&route("/inspect"), "1.0", "", ""), 200),
        (request(&route("/"), "1.0", "", two), 400),
        (request(&poll, "1.0", "", two), 400),
    ] {
        assert_eq!(ask(p.addr, &req).0, want, "{req:?}");
    }
}

/// `--allow-host`: every route answers only the listed names (any case, any port, one
/// trailing dot, an IPv6 address in any spelling); any other name, in `Host` or in an
/// absolute-form target, gets 421, logged once at info with the value quoted.
#[test]
fn allow_host_answers_421_to_other_names_on_every_route() {
    let site = Site::new();
    for with_static in [false, true]
        .into_iter()
        .filter(|s| !s || cfg!(feature = "static"))
    {
        let args = ["--allow-host", "pi.local,::1", "--allow-host", "LOCALHOST"];
        let mut p = server(with_static.then_some(&site), &args);
        let port = p.addr.port();
        let (mut refused, mut names) = (0, Vec::new());
        for route in routes(with_static) {
            let what = format!("{} (static: {with_static})", route.name);
            for host in [
                format!("pi.local:{port}"),
                "PI.Local".into(),
                "pi.local.".into(),
                format!("localhost:{port}"),
                format!("[0:0::1]:{port}"),
            ] {
                let req = request(&route, "1.1", "", &format!("Host: {host}\r\n"));
                assert_eq!(ask(p.addr, &req).0, route.ok, "{what} for {host}");
            }
            let n = names.len();
            names.push(format!("\"evil-{n}.example:{port}\""));
            for req in [
                request(
                    &route,
                    "1.1",
                    "",
                    &format!("Host: evil-{n}.example:{port}\r\n"),
                ),
                request(&route, "1.1", "", &format!("Host: 127.0.0.1:{port}\r\n")),
                request(
                    &route,
                    "1.1",
                    &format!("http://evil-{n}.example:{port}"),
                    "Host: pi.local\r\n",
                ),
                request(&route, "1.0", "", ""),
            ] {
                let (status, body) = ask(p.addr, &req);
                assert_eq!(status, 421, "{what}: {req:?}: {body}");
                if route.method != "HEAD" && req.contains("evil") {
                    let want = format!("The host \"evil-{n}.example:{port}\" is not a name");
                    assert!(body.starts_with(&want), "{what}: {body:?}");
                }
                refused += 1;
            }
        }
        // Once at info per refused request; the log says which name was asked for.
        let _ = ask(p.addr, "GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let lines = p.log_through("/nowhere");
        let logged: Vec<_> = lines.iter().filter(|l| l.contains(" 421: ")).collect();
        assert_eq!(logged.len(), refused, "{lines:#?}");
        assert!(logged.iter().all(|l| l.contains("INFO")), "{logged:#?}");
        for name in names {
            // Its Host request and its absolute-form one.
            let count = logged.iter().filter(|l| l.contains(&name)).count();
            assert_eq!(count, 2, "{name}: {logged:#?}");
        }
    }
}

/// DNS rebinding, the threat `--allow-host` is for: a page on a name its owner pointed at
/// this server sends a matching `Origin` and `Host`, which the Origin check accepts.
#[test]
fn a_rebound_name_passes_the_origin_check_but_not_allow_host() {
    let upgrade = Route {
        name: "",
        method: "GET",
        path: "/echo",
        extra: UPGRADE,
        ok: 101,
    };
    for (args, want) in [(&[][..], 101), (&["--allow-host", "pi.local"][..], 421)] {
        let p = server(None, args);
        let port = p.addr.port();
        let rebound =
            format!("Host: evil.example:{port}\r\nOrigin: http://evil.example:{port}\r\n");
        assert_eq!(
            ask(p.addr, &request(&upgrade, "1.1", "", &rebound)).0,
            want,
            "{args:?}"
        );
    }
}

#[test]
fn a_port_in_allow_host_is_refused_at_startup_with_what_to_write() {
    let out = output_within(
        Command::new(BIN).args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--allow-host",
            "pi.local:8080",
        ]),
        TIMEOUT,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "allow_hosts (--allow-host) entry \"pi.local:8080\" has a port; give the name alone (pi.local)"
        ),
        "{err}"
    );
}
