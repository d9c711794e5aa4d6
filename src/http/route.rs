//! The routing step: the HTTP checks every request passes, and what it asks for (a
//! [`Verdict`]). http/mod.rs says where it sits.

use crate::client::head::MAX_HEADERS;
use crate::client::response::Response;
use crate::config::Config;
use crate::host::{self, split_target};
use crate::http::handshake::{self, Refusal, has_token, refuse, single};
use crate::layers::files::FileRequest;
use crate::layers::teach::step::{Check, End};
use crate::ws::connection::Checked;

/// Where the teaching page always is, besides `/`: with `static_dir`, `/` may be the
/// directory's `index.html`. files.rs never serves a name starting with a dot, so no
/// file can hide it.
pub(crate) const PAGE_PATH: &str = "/.tinyws";

/// What a checked request leads to.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// A valid WebSocket upgrade ([`Checked`] says what it carries).
    Upgrade(Checked),
    /// A plain `GET /` or `GET /.tinyws` ([`PAGE_PATH`]; or `HEAD`: then `head_only`):
    /// the teaching page (`page.rs`), then close. `path` is the one asked for.
    Page { head_only: bool, path: &'static str },
    /// `static_dir` is set and this is a plain `GET` or `HEAD` (no upgrade): answer it
    /// from the directory (`files.rs`), then close; if `path` is `--path` and no file is
    /// there, with the WebSocket endpoint's 426.
    File(FileRequest),
    /// Anything else: send the answer and close.
    Refuse(Refusal),
}

/// Decides what to do with a complete request head (RFC 6455 §4.2.1; §4.4 for a
/// version it does not speak).
pub(crate) fn check(head: &[u8], config: &Config) -> Verdict {
    let mut head_request = false;
    match decide(head, config, &mut head_request) {
        Ok(verdict) => verdict,
        // RFC 9110 §9.3.2: HEAD gets the header fields GET would, without the content.
        Err(mut no) if head_request => {
            no.response = no.response.for_head();
            Verdict::Refuse(no)
        }
        Err(refusal) => Verdict::Refuse(refusal),
    }
}

impl Verdict {
    /// How the routing step ended, for the teaching layer to narrate (step.rs).
    pub(crate) fn end(&self) -> End<'_> {
        match self {
            Verdict::Upgrade(up) => End::Upgrade {
                protocol: up.protocol.as_deref(),
                rewritten: up.rewritten.is_some(),
            },
            &Verdict::Page { head_only, path } => End::Page { head_only, path },
            Verdict::File(file) => End::File {
                head_only: file.head_only,
                path: &file.path,
            },
            Verdict::Refuse(no) => End::Refused {
                by: no.by,
                response: &no.response,
            },
        }
    }
}

fn decide(head: &[u8], config: &Config, head_request: &mut bool) -> Result<Verdict, Refusal> {
    // On the heap, not the stack: 2 KiB of header slots on the stack would touch one
    // more stack page, which stays resident for the connection's whole life
    // (docs/performance.md, memory per idle connection).
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    parse(&mut req, head)?;
    // httparse only returns Complete with all three set.
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        let line = Response::new(400, "The request line is malformed.");
        return Err(refuse(Check::Head, line));
    };
    *head_request = method == "HEAD";
    let headers = req.headers;
    let host = host_of(headers, target, version, config)?;
    check_request_line(method, version)?;
    let Some((path, authority)) = split_target(target) else {
        return Err(refuse(
            Check::Path,
            Response::new(
                400,
                "The request target must be a path starting with '/' (or an absolute http:// URL).",
            ),
        ));
    };
    let wants_upgrade = !*head_request && has_token(headers, "Upgrade", "websocket");
    if !wants_upgrade && let Some(plain) = plain(headers, method, path, config) {
        return Ok(plain);
    }
    check_path(path, config)?;
    // A GET without `Upgrade: websocket` that no plain answer took is for the
    // WebSocket endpoint: 426, which says how to connect.
    if !wants_upgrade {
        return Err(refuse(Check::Upgrade, endpoint_426(path)));
    }
    // RFC 9112 §3.2.2: with an absolute-form target, its authority is the host and the
    // Host header is ignored (but still required, §3.2: checked in `host_of`).
    let host = authority.unwrap_or(host);
    handshake::check_upgrade(head, headers, path, target, host, config).map(Verdict::Upgrade)
}

/// Parses the request head (httparse), or says why it cannot be read.
fn parse<'h, 'b: 'h>(req: &mut httparse::Request<'h, 'b>, head: &'b [u8]) -> Result<(), Refusal> {
    let answer = match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => return Ok(()),
        Ok(httparse::Status::Partial) => Response::new(400, "The request head is incomplete."),
        Err(httparse::Error::TooManyHeaders) => Response::new(
            431,
            format!("The request has more than {MAX_HEADERS} header lines."),
        ),
        Err(e) => Response::new(400, format!("The request head is malformed ({e}).")),
    };
    Err(refuse(Check::Head, answer))
}

/// RFC 6455 §4.1: the opening handshake is an HTTP/1.1 GET; RFC 9110 §9.1: every
/// general-purpose server supports GET and HEAD. A HEAD is answered as the GET would be,
/// without an upgrade (§7.8: a server may ignore Upgrade).
fn check_request_line(method: &str, version: u8) -> Result<(), Refusal> {
    if version != 1 {
        return Err(refuse(
            Check::Http,
            Response::new(
                505,
                "WebSocket needs HTTP/1.1 (RFC 6455 §4.1); this request used HTTP/1.0.",
            ),
        ));
    }
    if method != "GET" && method != "HEAD" {
        return Err(refuse(
            Check::Method,
            Response::new(
                405,
                format!("Method {method} is not allowed here; a WebSocket handshake is a GET."),
            )
            .header("Allow", "GET, HEAD"),
        ));
    }
    Ok(())
}

/// A plain GET or HEAD (no `Upgrade: websocket`): the teaching page at its own path
/// whatever else is served; with `static_dir`, a file (files.rs decides, `/` included:
/// its index.html, or the page), before `--path` is looked at; else the page at `/`, how
/// a student finds the WebSocket endpoint whatever `--path` is. `None`: none of these.
fn plain(
    headers: &[httparse::Header<'_>],
    method: &str,
    path: &str,
    config: &Config,
) -> Option<Verdict> {
    let head_only = method == "HEAD";
    if path == PAGE_PATH {
        return Some(Verdict::Page {
            head_only,
            path: PAGE_PATH,
        });
    }
    if config.static_dir.is_some() {
        let is_endpoint = config
            .path
            .as_ref()
            .is_some_and(|only| path_allowed(path, only, config.rooms));
        let not_found = is_endpoint.then(|| endpoint_426(path));
        return Some(Verdict::File(FileRequest::new(
            headers, head_only, path, not_found,
        )));
    }
    (path == "/").then_some(Verdict::Page {
        head_only,
        path: "/",
    })
}

/// `--path`: a path that may not upgrade is a 404 that names the endpoint.
fn check_path(path: &str, config: &Config) -> Result<(), Refusal> {
    if let Some(only) = config
        .path
        .as_ref()
        .filter(|only| !path_allowed(path, only, config.rooms))
    {
        let body = if config.rooms {
            format!(
                "Nothing is served at {path}; the WebSocket rooms are {only} and the paths under {}/.",
                only.trim_end_matches('/')
            )
        } else {
            format!("Nothing is served at {path}; the WebSocket endpoint is {only}.")
        };
        return Err(refuse(Check::Path, Response::new(404, body)));
    }
    Ok(())
}

/// Whether [`check`] refuses `head` for its `Host` (RFC 9112 §3.2, `allow_hosts`), or
/// cannot read the head at all. The routes answered before `check` (the inspector's)
/// ask this first, so that no route answers without it.
pub(crate) fn host_refused(head: &[u8], config: &Config) -> bool {
    matches!(check(head, config), Verdict::Refuse(no) if no.by == Check::Head)
}

/// The host a request is for, checked before anything is routed (the page, a file, a
/// 426, an upgrade alike). RFC 9112 §3.2: a server answers 400 to an HTTP/1.1 request
/// without `Host`, and to any request with more than one or an invalid one; HTTP/1.0
/// may leave it out (`""` then; it gets 505 anyway). With `allow_hosts`, the Host's
/// name, and the authority of an absolute-form target (§3.2.2), must be listed, else
/// 421 (host.rs says why). Returns the Host value as sent.
fn host_of<'h>(
    headers: &'h [httparse::Header<'h>],
    target: &str,
    version: u8,
    config: &Config,
) -> Result<&'h str, Refusal> {
    let bad = |body| Err(refuse(Check::Head, Response::new(400, body)));
    let value = match single(headers, "Host", Check::Head)? {
        Some(value) if host::name(value).is_some() => value,
        Some(_) => {
            return bad("The Host header is not a valid host name or address (RFC 9112 §3.2).");
        }
        None if version == 0 => "",
        None => return bad("The Host header is missing (RFC 9112 §3.2)."),
    };
    let authority = split_target(target).and_then(|(_, authority)| authority);
    if authority.is_some_and(|a| host::name(a).is_none()) {
        return bad(
            "The request target's host is not a valid host name or address (RFC 9110 §4.2.1).",
        );
    }
    if !config.allow_hosts.is_empty()
        && let Some(other) = [Some(value), authority]
            .into_iter()
            .flatten()
            .find(|v| !host::is_allowed(v, &config.allow_hosts))
    {
        return Err(refuse(Check::Head, misdirected(other)));
    }
    Ok(value)
}

/// 421 (RFC 9110 §15.5.20): this server does not answer for that host. Not 403, the
/// Origin check's answer: nothing here is forbidden, the request came to the wrong
/// server (a rebound DNS name, say), and the log tells the two apart. The log line
/// carries this body, so the client's value is quoted escaped here, in one place.
fn misdirected(host: &str) -> Response {
    let body = match host {
        "" => "This server answers only to the names it was given (--allow-host), and the request names none.".to_string(),
        _ => format!("The host {host:?} is not a name this server answers to (--allow-host)."),
    };
    Response::new(421, body)
}

/// A plain GET of a WebSocket endpoint. RFC 9110 §15.5.22: 426 tells the client which
/// protocol to switch to, in an Upgrade header.
fn endpoint_426(path: &str) -> Response {
    Response::new(
        426,
        format!("{path} is a WebSocket endpoint; connect with a WebSocket client (ws://)."),
    )
    .header("Upgrade", "websocket")
    .header("Connection", "Upgrade")
}

/// Whether `path` may upgrade under `--path only`: the same path, or with `rooms` also
/// every path below it (`/chat` → `/chat/42`, not `/chatter`).
fn path_allowed(path: &str, only: &str, rooms: bool) -> bool {
    if path == only {
        return true;
    }
    rooms
        && path
            .strip_prefix(only)
            .is_some_and(|rest| only.ends_with('/') || rest.starts_with('/'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::client::response::Response;
    use proptest::prelude::*;

    #[test]
    fn with_static_dir_plain_requests_are_files_and_upgrades_stay_upgrades() {
        let cfg = Config::default().static_dir("www").path("/echo");
        let req = |method: &str, path: &str, extra: &str| {
            format!("{method} {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n").into_bytes()
        };
        // What files.rs reads of the headers, its tests check (FileRequest::new).
        match check(&req("GET", "/a.txt?x=1", ""), &cfg) {
            Verdict::File(FileRequest {
                head_only: false,
                path,
                not_found: None,
                ..
            }) => assert_eq!(path, "/a.txt"),
            other => panic!("{other:?}"),
        }
        match check(&req("HEAD", "/a.txt", ""), &cfg) {
            Verdict::File(FileRequest {
                head_only: true, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // The endpoint: a file if there is one, else its 426.
        match check(&req("GET", "/echo", ""), &cfg) {
            Verdict::File(FileRequest {
                not_found: Some(r), ..
            }) => assert_eq!(r.status, 426),
            other => panic!("{other:?}"),
        }
        // The page's own path, and upgrades, are not the directory's.
        assert!(matches!(
            check(&req("GET", PAGE_PATH, ""), &cfg),
            Verdict::Page {
                path: PAGE_PATH,
                ..
            }
        ));
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        assert!(matches!(
            check(&req("GET", "/echo", upgrade), &cfg),
            Verdict::Upgrade(_)
        ));
        // Not the directory's either: other methods (405, as before).
        match check(&req("POST", "/a.txt", ""), &cfg) {
            Verdict::Refuse(Refusal { response, .. }) => assert_eq!(response.status, 405),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_is_checked_before_any_route() {
        let status = |head: &str, cfg: &Config| match check(head.as_bytes(), cfg) {
            Verdict::Refuse(Refusal { response, .. }) => (response.status, response.body),
            Verdict::Page { .. } => (200, String::new()),
            other => panic!("{other:?}"),
        };
        let cfg = Config::default();
        for head in [
            "GET / HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "GET /x HTTP/1.1\r\nHost: a:b\r\n\r\n",
            "GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert_eq!(status(head, &cfg).0, 400, "{head:?}");
            assert!(host_refused(head.as_bytes(), &cfg), "{head:?}");
        }
        assert_eq!(status("GET / HTTP/1.0\r\n\r\n", &cfg).0, 505);
        assert!(!host_refused(b"GET /.inspect HTTP/1.0\r\n\r\n", &cfg));
        assert!(!host_refused(
            b"GET /.inspect HTTP/1.1\r\nHost: a\r\n\r\n",
            &cfg
        ));
        assert!(host_refused(b"GET /.inspect HTTP/1.1\r\nBad\r\n\r\n", &cfg));

        let cfg = Config::default().allow_hosts(["pi.local"]);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: PI.local:80\r\n\r\n", &cfg).0,
            200
        );
        let (code, body) = status("GET / HTTP/1.1\r\nHost: evil:80\r\n\r\n", &cfg);
        assert_eq!(code, 421);
        assert!(
            body.starts_with("The host \"evil:80\" is not a name"),
            "{body}"
        );
        let absolute = "GET http://evil/ HTTP/1.1\r\nHost: pi.local\r\n\r\n";
        assert_eq!(status(absolute, &cfg).0, 421);
        assert_eq!(status("GET / HTTP/1.0\r\n\r\n", &cfg).0, 421);
        assert!(host_refused(b"GET /.inspect HTTP/1.0\r\n\r\n", &cfg));
    }

    #[test]
    fn room_paths_are_under_the_prefix() {
        assert!(path_allowed("/chat", "/chat", false));
        assert!(!path_allowed("/chat/1", "/chat", false));
        assert!(path_allowed("/chat/1", "/chat", true));
        assert!(path_allowed("/chat/", "/chat", true));
        assert!(path_allowed("/chat/a/b", "/chat", true));
        assert!(!path_allowed("/chatter", "/chat", true));
        assert!(!path_allowed("/", "/chat", true));
        assert!(path_allowed("/chat/1", "/chat/", true));
        assert!(!path_allowed("/chat", "/chat/", true));
    }

    #[test]
    fn targets_tungstenite_cannot_read_are_refused_here() {
        // http::Uri, which tungstenite's handshake parses the target with, refuses a few
        // characters httparse accepts; the rest of what httparse accepts passes.
        let cases: &[(&str, bool)] = &[
            ("/a<b", false),
            ("/a>b", false),
            ("/a`b", false),
            ("/?q=\"", false),
            ("/?q=<", false),
            ("/?q=>", false),
            ("/a\"b", true),
            ("/{x}|^[]\\", true),
            ("/?q=`{}|^", true),
            ("/%2e%2E/é", true),
            ("http://h:1/a", true),
        ];
        let upgrade = "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        for &(target, upgrades) in cases {
            let head = format!("GET {target} HTTP/1.1\r\n{upgrade}");
            match check(head.as_bytes(), &Config::default()) {
                Verdict::Upgrade(_) => assert!(upgrades, "{target} upgraded"),
                Verdict::Refuse(Refusal { response, .. }) => {
                    assert!(!upgrades, "{target} refused: {}", response.body);
                    assert_eq!(response.status, 400);
                    assert!(
                        response.body.contains("not a valid URI"),
                        "{}",
                        response.body
                    );
                }
                other => panic!("{target}: {other:?}"),
            }
            let parsed = target.parse::<tungstenite::http::Uri>();
            assert_eq!(parsed.is_ok(), upgrades, "{target}");
        }
    }

    // Property tests (proptest): whatever the bytes, `check` never panics and answers with
    // a well-formed HTTP response, an upgrade, or the page. `tests/fuzz.rs` throws the same
    // kind of input at a running server over real sockets.

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
            [200, 400, 403, 404, 405, 408, 421, 426, 431, 503, 505].contains(&r.status),
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
            Verdict::Upgrade(_) => 101,
            Verdict::Page { .. } => {
                let page =
                    crate::layers::teach::page::page(&Config::default(), b"GET / HTTP/1.1\r\n\r\n");
                assert_well_formed(&page);
                page.status
            }
            Verdict::Refuse(Refusal { response, .. }) => {
                assert_well_formed(response);
                response.status
            }
            // Only with `static_dir`, which these properties do not set; files.rs has its
            // own tests of what it answers.
            Verdict::File(_) => 200,
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

    /// Bytes that look like a request head often enough to reach every branch.
    pub(crate) fn heady_bytes() -> impl Strategy<Value = Vec<u8>> {
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
                Verdict::Upgrade(up) => prop_assert_eq!(up.path, u.path),
                Verdict::Page { .. } => prop_assert!(false, "a valid upgrade got the page"),
                Verdict::File(_) => prop_assert!(false, "a valid upgrade got a file"),
                Verdict::Refuse(Refusal { response, .. }) => {
                    prop_assert!(false, "refused {}: {}", response.status, response.body)
                }
            }
        }

        #[test]
        fn check_names_what_is_wrong(u in upgrade(), which in 0usize..9) {
            let cfg = Config::default();
            // RFC 6455 §4.2.1 / §4.4, and the table of answers in docs/reference.md.
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
    }
}
