//! The opening handshake as a server checks it (RFC 6455 §4.2.1, §4.2.2, §4.4): is this
//! request head a valid upgrade, the teaching page, a file (`static_dir`), or something
//! to refuse, and with which answer? And the `Sec-WebSocket-Accept` value the `101` carries.

use sha1::{Digest, Sha1};

use crate::config::Config;
use crate::escape;
use crate::host;
use crate::response::Response;

/// At most this many header lines; more get `431`, like a head over the size cap.
const MAX_HEADERS: usize = 64;

/// Where the teaching page always is, besides `/`: with `static_dir`, `/` may be the
/// directory's `index.html`. files.rs never serves a name starting with a dot, so no
/// file can hide it.
pub(crate) const PAGE_PATH: &str = "/.tinyws";

/// What a checked request leads to.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// A valid WebSocket upgrade: hand the head to tungstenite's handshake. `rewritten`
    /// is the head to hand it instead, when tinyws accepts what tungstenite would refuse
    /// (see [`for_tungstenite`]).
    Upgrade {
        path: String,
        rewritten: Option<Vec<u8>>,
        /// The subprotocol chosen for the `101` (RFC 6455 §4.2.2 /subprotocol/), if any.
        protocol: Option<String>,
        /// For the log at info: the client offered subprotocols and none was chosen.
        note: Option<String>,
    },
    /// A plain `GET /` or `GET /.tinyws` ([`PAGE_PATH`]; or `HEAD`: then `head_only`):
    /// the teaching page (`page.rs`), then close. `path` is the one asked for.
    Page { head_only: bool, path: &'static str },
    /// `static_dir` is set and this is a plain `GET` or `HEAD` (no upgrade): answer it
    /// from the directory (`files.rs`), then close. `if_modified_since` is that header
    /// when the request has it exactly once and has no `If-None-Match` (RFC 9110
    /// §13.1.3: then it must be ignored; a repeated one is not a valid date). `not_found`
    /// is the answer instead of a 404: the 426 of the WebSocket endpoint, when `path` is
    /// `--path` and no file is there.
    File {
        head_only: bool,
        path: String,
        if_modified_since: Option<String>,
        not_found: Option<Response>,
    },
    /// Anything else: send this and close. `note` goes to the log at info level when set,
    /// to tell the operator how to change the outcome.
    Refuse {
        response: Response,
        note: Option<String>,
    },
}

fn refuse(response: Response) -> Verdict {
    Verdict::Refuse {
        response,
        note: None,
    }
}

/// Decides what to do with a complete request head (RFC 6455 §4.2.1, §4.2.2, §4.4).
pub(crate) fn check(head: &[u8], config: &Config) -> Verdict {
    check_steps(head, config, &mut None)
}

/// Adds a line to `steps` when tracing; the text is only formatted then.
fn step(steps: &mut Option<Vec<String>>, text: impl FnOnce() -> String) {
    if let Some(steps) = steps {
        steps.push(text());
    }
}

/// [`check`], also listing every check that passed in `steps` when it is `Some` (for
/// `--trace`).
pub(crate) fn check_steps(
    head: &[u8],
    config: &Config,
    steps: &mut Option<Vec<String>>,
) -> Verdict {
    let mut head_request = false;
    match decide(head, config, steps, &mut head_request) {
        // RFC 9110 §9.3.2: HEAD gets the header fields GET would, without the content.
        Verdict::Refuse { response, note } if head_request => Verdict::Refuse {
            response: response.for_head(),
            note,
        },
        verdict => verdict,
    }
}

fn decide(
    head: &[u8],
    config: &Config,
    steps: &mut Option<Vec<String>>,
    head_request: &mut bool,
) -> Verdict {
    // On the heap, not the stack: 2 KiB of header slots on the stack would touch one
    // more stack page, which stays resident for the connection's whole life
    // (docs/performance.md, memory per idle connection).
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return refuse(Response::new(400, "The request head is incomplete."));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return refuse(Response::new(
                431,
                format!("The request has more than {MAX_HEADERS} header lines."),
            ));
        }
        Err(e) => {
            return refuse(Response::new(
                400,
                format!("The request head is malformed ({e})."),
            ));
        }
    }
    // httparse only returns Complete with all three set.
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return refuse(Response::new(400, "The request line is malformed."));
    };
    *head_request = method == "HEAD";
    let headers = req.headers;
    let host = match host_of(headers, target, version, config) {
        Ok(host) => host,
        Err(refusal) => return refusal,
    };

    // §4.1: the opening handshake is an HTTP/1.1 GET.
    if version != 1 {
        return refuse(Response::new(
            505,
            "WebSocket needs HTTP/1.1 (RFC 6455 §4.1); this request used HTTP/1.0.",
        ));
    }
    step(steps, || "ok  HTTP/1.1 (§4.1: at least 1.1)".into());
    // RFC 9110 §9.1: every general-purpose server supports GET and HEAD. A HEAD is
    // answered as the GET would be, without an upgrade (§7.8: a server may ignore
    // Upgrade; RFC 6455 §4.1: the handshake is a GET).
    if method != "GET" && method != "HEAD" {
        return refuse(
            Response::new(
                405,
                format!("Method {method} is not allowed here; a WebSocket handshake is a GET."),
            )
            .header("Allow", "GET, HEAD"),
        );
    }
    step(steps, || format!("ok  method {method} (§4.1)"));
    let Some((path, authority)) = split_target(target) else {
        return refuse(Response::new(
            400,
            "The request target must be a path starting with '/' (or an absolute http:// URL).",
        ));
    };

    let has_token = |name: &'static str, token: &str| {
        values(headers, name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let wants_upgrade = !*head_request && has_token("Upgrade", "websocket");

    // The teaching page at its own path, whatever else is served.
    if path == PAGE_PATH && !wants_upgrade {
        return Verdict::Page {
            head_only: *head_request,
            path: PAGE_PATH,
        };
    }
    // `static_dir`: every plain GET and HEAD is the directory's (files.rs decides, `/`
    // included: its index.html, or the page), before `--path` is looked at.
    if config.static_dir.is_some() && !wants_upgrade {
        step(steps, || {
            format!("ok  a plain {method} (no Upgrade) with --static: a file, then close")
        });
        // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        let if_modified_since = if values(headers, "If-None-Match").next().is_some() {
            None
        } else {
            let mut v = values(headers, "If-Modified-Since");
            match (v.next(), v.next()) {
                (Some(one), None) => Some(one.to_string()),
                _ => None,
            }
        };
        let is_endpoint = config
            .path
            .as_ref()
            .is_some_and(|only| path_allowed(path, only, config.rooms));
        return Verdict::File {
            head_only: *head_request,
            path: path.to_string(),
            if_modified_since,
            not_found: is_endpoint.then(|| endpoint_426(path)),
        };
    }
    // A browser opening `/` gets the teaching page, whatever `--path` is: it is how a
    // student finds the WebSocket endpoint.
    if path == "/" && !wants_upgrade {
        return Verdict::Page {
            head_only: *head_request,
            path: "/",
        };
    }
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
        return refuse(Response::new(404, body));
    }
    step(steps, || match (&config.path, config.rooms) {
        (Some(only), false) => format!("ok  path {path} is --path {only}"),
        (Some(only), true) => {
            format!("ok  path {path} is under --path {only}: the room {path} (--rooms)")
        }
        (None, false) => format!("ok  path {path} (every path may upgrade: no --path)"),
        (None, true) => format!("ok  path {path}: the room {path} (--rooms, no --path)"),
    });

    // A GET without `Upgrade: websocket` is a plain page request. RFC 9110 §15.5.22:
    // 426 tells the client which protocol to switch to, in an Upgrade header.
    if !wants_upgrade {
        return refuse(endpoint_426(path));
    }
    // tungstenite reads the target as an `http::Uri`, which refuses a few characters
    // httparse lets through: `<`, `>` and the backtick in the path, `"`, `<` and `>` in
    // the query. They must be percent-encoded (RFC 3986 §2.1; browsers do): refused
    // here, with an answer that says so, like every other malformed request.
    if let Err(e) = target.parse::<tungstenite::http::Uri>() {
        return refuse(Response::new(
            400,
            format!(
                "The request target is not a valid URI ({e}); percent-encode characters such as <, > and the backtick (RFC 3986 §2.1)."
            ),
        ));
    }
    step(steps, || {
        let v: Vec<_> = values(headers, "Upgrade").collect();
        format!(
            "ok  Upgrade: {} has the token \"websocket\" (§4.2.1 item 3)",
            v.join(", ")
        )
    });
    if !has_token("Connection", "upgrade") {
        return refuse(Response::new(
            400,
            "A WebSocket handshake needs the header Connection: Upgrade (RFC 6455 §4.2.1).",
        ));
    }
    step(steps, || {
        let v: Vec<_> = values(headers, "Connection").collect();
        format!(
            "ok  Connection: {} has the token \"Upgrade\" (§4.2.1 item 4; a list, any case)",
            v.join(", ")
        )
    });
    // RFC 9112 §3.2.2: with an absolute-form target, its authority is the host and the
    // Host header is ignored (but still required, §3.2: checked in `host_of`).
    let host = authority.unwrap_or(host);
    step(steps, || {
        if config.allow_hosts.is_empty() {
            format!("ok  Host: {host} (§4.2.1 item 2)")
        } else {
            format!("ok  Host: {host} (§4.2.1 item 2), a name in --allow-host")
        }
    });
    // §4.4: a version we do not speak gets 426 and the list of versions we do.
    match single(headers, "Sec-WebSocket-Version") {
        Ok(Some("13")) => step(steps, || {
            "ok  Sec-WebSocket-Version: 13 (§4.2.1 item 6)".into()
        }),
        Ok(v) => {
            return refuse(
                Response::new(
                    426,
                    format!(
                        "This server speaks WebSocket version 13 only; the request asked for {}.",
                        v.map_or("no version".to_string(), |v| format!("version {v:?}"))
                    ),
                )
                .header("Sec-WebSocket-Version", "13")
                // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
                .header("Upgrade", "websocket")
                .header("Connection", "Upgrade"),
            );
        }
        Err(v) => return v,
    }
    let key = match single(headers, "Sec-WebSocket-Key") {
        Ok(Some(k)) if is_valid_key(k) => {
            step(steps, || {
                format!(
                    "ok  Sec-WebSocket-Key: {k} (24 base64 characters = 16 bytes, §4.2.1 item 5)"
                )
            });
            k
        }
        Ok(Some(_)) => {
            return refuse(Response::new(
                400,
                "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters, RFC 6455 §4.1).",
            ));
        }
        Ok(None) => {
            return refuse(Response::new(
                400,
                "The Sec-WebSocket-Key header is missing.",
            ));
        }
        Err(v) => return v,
    };
    match single(headers, "Origin") {
        Ok(None) => step(steps, || {
            "ok  no Origin header: not a browser, nothing to check (§10.2)".into()
        }),
        Ok(Some(origin)) => {
            let raw = raw_value(headers, "Origin").unwrap_or(origin.as_bytes());
            // Not UTF-8: read as U+FFFD, which an --allow-origin of "\u{fffd}" would match.
            if std::str::from_utf8(raw).is_err()
                || !origin_allowed(origin, host, &config.allow_origins)
            {
                return refused_origin(raw, host);
            }
            step(steps, || {
                if config.allow_origins.is_empty() {
                    format!("ok  Origin: {origin} is this server's own origin (Host {host}, §10.2)")
                } else {
                    format!(
                        "ok  Origin: {origin} is same-origin or allowed by --allow-origin (§10.2)"
                    )
                }
            });
        }
        Err(v) => return v,
    }
    let (protocol, note) = choose_protocol(headers, &config.protocols, steps);
    // All checks passed: for --trace, how the answer's Sec-WebSocket-Accept is made.
    let rewritten = for_tungstenite(head, headers);
    if rewritten.is_some() {
        step(steps, || {
            "--  tungstenite takes only `Upgrade: websocket` and `Connection: Upgrade` on one line each: its copy of the head has them so".into()
        });
    }
    step(steps, || accept_steps(key).trim_end().to_string());
    Verdict::Upgrade {
        path: path.to_string(),
        rewritten,
        protocol,
        note,
    }
}

/// Whether [`check`] refuses `head` for its `Host` (RFC 9112 §3.2, `allow_hosts`), or
/// cannot read the head at all (then `check` says why). The routes answered before
/// `check` (the inspector's) ask this first, so that no route answers without it.
pub(crate) fn host_refused(head: &[u8], config: &Config) -> bool {
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return true;
    }
    let (Some(target), Some(version)) = (req.path, req.version) else {
        return true;
    };
    host_of(req.headers, target, version, config).is_err()
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
) -> Result<&'h str, Verdict> {
    let value = match single(headers, "Host")? {
        Some(value) if host::name(value).is_some() => value,
        Some(_) => {
            return Err(refuse(Response::new(
                400,
                "The Host header is not a valid host name or address (RFC 9112 §3.2).",
            )));
        }
        None if version == 0 => "",
        None => {
            return Err(refuse(Response::new(
                400,
                "The Host header is missing (RFC 9112 §3.2).",
            )));
        }
    };
    let authority = split_target(target).and_then(|(_, authority)| authority);
    if authority.is_some_and(|a| host::name(a).is_none()) {
        return Err(refuse(Response::new(
            400,
            "The request target's host is not a valid host name or address (RFC 9110 §4.2.1).",
        )));
    }
    if !config.allow_hosts.is_empty()
        && let Some(other) = [Some(value), authority]
            .into_iter()
            .flatten()
            .find(|v| !host::is_allowed(v, &config.allow_hosts))
    {
        return Err(refuse(misdirected(other)));
    }
    Ok(value)
}

/// 421 (RFC 9110 §15.5.20): this server does not answer for that host. Not 403, the
/// Origin check's answer: nothing here is forbidden, the request came to the wrong
/// server (a rebound DNS name, say), and the log tells the two apart. The log line
/// carries this body, so the client's value is quoted escaped here, in one place.
fn misdirected(host: &str) -> Response {
    if host.is_empty() {
        return Response::new(
            421,
            "This server answers only to the names it was given (--allow-host), and the request names none.",
        );
    }
    Response::new(
        421,
        format!("The host {host:?} is not a name this server answers to (--allow-host)."),
    )
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

/// The subprotocol for the `101` (RFC 6455 §4.2.2 /subprotocol/): the first of the
/// server's `protocols` (its order of preference) that the client offered in
/// `Sec-WebSocket-Protocol`, a comma list that may come on several lines (§11.3.4).
/// Compared exactly: RFC 6455 gives subprotocol names no case rule (unlike `Upgrade`
/// and `Connection`, §4.2.1), the client fails a connection whose answer it did not
/// offer (§4.1), and browsers compare byte for byte; so the answer is always a name the
/// client sent. Empty list elements are skipped (RFC 9110 §5.6.1). The second value is
/// the log note when the client offered names and none was chosen.
fn choose_protocol(
    headers: &[httparse::Header<'_>],
    protocols: &[String],
    steps: &mut Option<Vec<String>>,
) -> (Option<String>, Option<String>) {
    let offered: Vec<&str> = values(headers, "Sec-WebSocket-Protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if offered.is_empty() {
        // Nothing to narrate: most clients offer none (no step, so the usual trace stays
        // as short as the lesson shows it).
        return (None, None);
    }
    // For the log (and the trace): client text, escaped.
    let list = escape::client(&offered.join(", ")).to_string();
    let chosen = protocols.iter().find(|p| offered.contains(&p.as_str()));
    if let Some(chosen) = chosen {
        step(steps, || {
            format!(
                "ok  Sec-WebSocket-Protocol: {list} offered; answered {chosen:?}, the first of --protocol {} the client offered (§4.2.2 item 5.5: the server's order)",
                protocols.join(",")
            )
        });
        return (Some(chosen.clone()), None);
    }
    step(steps, || {
        let ours = if protocols.is_empty() {
            "no --protocol".to_string()
        } else {
            format!("--protocol {}", protocols.join(","))
        };
        format!(
            "--  Sec-WebSocket-Protocol: {list} offered; none is in {ours}: the 101 has no Sec-WebSocket-Protocol (§4.2.2: null), and a browser then fails the connection"
        )
    });
    let ours = if protocols.is_empty() {
        "none".to_string()
    } else {
        protocols.join(",")
    };
    let note = format!(
        "offered subprotocols {list}, none of which this server speaks (`protocols`: {ours}); answered 101 without Sec-WebSocket-Protocol; to accept one, add it to `protocols`"
    );
    (None, Some(note))
}

/// The path of a request target (without query), and its authority if it is in
/// absolute form (RFC 9112 §3.2.2: `GET http://host:port/echo HTTP/1.1`, which a server
/// must accept). `None` for anything else (`*`, `host:port`, other schemes).
fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
    fn path_of(t: &str) -> Option<&str> {
        let p = t.split(['?', '#']).next().unwrap_or("");
        p.starts_with('/').then_some(p)
    }
    if target.starts_with('/') {
        return Some((path_of(target)?, None));
    }
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    if authority.is_empty() {
        return None;
    }
    // An empty path is `/` (RFC 9110 §4.2.3).
    let path = if rest.starts_with('/') {
        path_of(rest)?
    } else {
        "/"
    };
    Some((path, Some(authority)))
}

/// tungstenite's own handshake check (tungstenite 0.30, `handshake/server.rs`) reads only
/// the first `Upgrade` and the first `Connection` header, and wants the first to be exactly
/// `websocket`. But both are lists (RFC 9110 §7.8, §7.6.1), and may come on several lines
/// (§5.3): `Upgrade: h2c, websocket`, `Upgrade: websocket,` or two `Upgrade` lines are
/// valid upgrades that tungstenite refuses, and then closes without an answer. tinyws has
/// checked the request itself, so for those it hands tungstenite a copy of the head with
/// all `Upgrade` and `Connection` lines replaced by the two it takes; anything else is as
/// the client sent it. `None` when the head is fine as it is.
fn for_tungstenite(head: &[u8], headers: &[httparse::Header<'_>]) -> Option<Vec<u8>> {
    let is = |h: &httparse::Header<'_>, name: &str| h.name.eq_ignore_ascii_case(name);
    let mut upgrades = headers.iter().filter(|h| is(h, "Upgrade"));
    let upgrade_ok = upgrades
        .next()
        .is_some_and(|h| h.value.trim_ascii().eq_ignore_ascii_case(b"websocket"))
        && upgrades.next().is_none();
    let connection_ok = headers
        .iter()
        .find(|h| is(h, "Connection"))
        .is_some_and(|h| {
            h.value
                .split(|&b| b == b' ' || b == b',')
                .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
        });
    if upgrade_ok && connection_ok {
        return None;
    }
    let line_end = head.iter().position(|&b| b == b'\n')? + 1;
    let mut out = head[..line_end].to_vec();
    for h in headers
        .iter()
        .filter(|h| !is(h, "Upgrade") && !is(h, "Connection"))
    {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    Some(out)
}

/// The first value of the header `name`, trimmed, as the bytes sent.
fn raw_value<'h>(headers: &'h [httparse::Header<'h>], name: &str) -> Option<&'h [u8]> {
    (headers.iter())
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.trim_ascii())
}

/// `403` for an Origin that is not allowed (`origin`: as sent, escaped wherever shown),
/// with a log note that says how to allow it, if a flag can.
fn refused_origin(origin: &[u8], host: &str) -> Verdict {
    let shown = escape::client(origin);
    let note = if std::str::from_utf8(origin).is_ok() {
        format!(
            "refused Origin {shown} (Host {0}); to allow it, start tinyws with --allow-origin {shown}",
            escape::client(host)
        )
    } else {
        format!(
            "refused Origin {shown} (Host {0}): it is not valid UTF-8, so no --allow-origin can name it; browsers send origins in ASCII (RFC 6454 §6.2), so fix the client that sent it",
            escape::client(host)
        )
    };
    Verdict::Refuse {
        response: Response::new(
            403,
            // The client's own text (the log line of the answer escapes it).
            format!(
                "Origin {} may not open WebSocket connections to this server.",
                String::from_utf8_lossy(origin)
            ),
        ),
        note: Some(note),
    }
}

/// The values of every header called `name`, trimmed; non-UTF-8 values read as U+FFFD.
fn values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| std::str::from_utf8(h.value).unwrap_or("\u{fffd}").trim())
}

/// The value of a header that may appear at most once.
fn single<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> Result<Option<&'h str>, Verdict> {
    let mut it = values(headers, name);
    let first = it.next();
    if it.next().is_some() {
        return Err(refuse(Response::new(
            400,
            format!("The {name} header appears more than once."),
        )));
    }
    Ok(first)
}

/// 24 base64 characters that decode to 16 bytes: 21 full characters, one whose low
/// 4 bits are zero, then `==` (RFC 6455 §4.1 item 7, §4.2.1 item 5).
fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    b.len() == 24
        && b[22..] == *b"=="
        && b[..21].iter().all(|&c| val(c).is_some())
        && val(b[21]).is_some_and(|v| v & 0x0f == 0)
}

/// Same-origin requests and those listed in `allowed` pass (RFC 6455 §10.2). "Same
/// origin" compares the Origin's host and port with the Host header, where a port that is
/// the scheme's default may be left out on either side (a TLS-terminating proxy forwards
/// `Host: example.com` for the page `https://example.com`).
pub(crate) fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let origin = origin.to_ascii_lowercase();
    let (default_port, authority) = if let Some(rest) = origin.strip_prefix("http://") {
        (":80", rest)
    } else if let Some(rest) = origin.strip_prefix("https://") {
        (":443", rest)
    } else {
        return false; // `null` and other schemes only pass when listed
    };
    let norm = |s: &str| {
        let s = s.to_ascii_lowercase();
        match s.strip_suffix(default_port) {
            Some(bare) => bare.to_string(),
            None => s,
        }
    };
    !authority.is_empty() && norm(authority) == norm(host)
}

/// RFC 6455 §1.3: the GUID appended to the client's key.
pub(crate) const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for `key` (§4.2.2 item 5.4), with its steps: the key
/// with the GUID appended, and its SHA-1 digest, which is sent in base64.
pub(crate) fn accept(key: &str) -> (String, [u8; 20], String) {
    let joined = format!("{key}{GUID}");
    let digest: [u8; 20] = Sha1::digest(joined.as_bytes()).into();
    let accept = data_encoding::BASE64.encode(&digest);
    (joined, digest, accept)
}

/// [`accept`] step by step, as `--trace` shows it.
pub(crate) fn accept_steps(key: &str) -> String {
    let (joined, digest, accept) = accept(key);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "== key            {key}\n\
         == key + GUID     {joined}\n\
         == SHA-1 (hex)    {}\n\
         == base64(SHA-1)  {accept}  -> Sec-WebSocket-Accept\n",
        hex.join(" ")
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::response::Response;
    use proptest::prelude::*;

    /// RFC 6455 §1.3's example key and accept value.
    #[test]
    fn accept_of_the_rfc_sample_key() {
        let (joined, digest, value) = accept("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            joined,
            "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        );
        assert_eq!(
            digest,
            [
                0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6, 0x46, 0x06, 0xcf, 0x38,
                0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea
            ]
        );
        assert_eq!(value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let steps = accept_steps("dGhlIHNhbXBsZSBub25jZQ==");
        assert!(steps.contains("b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea"));
        assert!(steps.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  -> Sec-WebSocket-Accept"));
    }

    /// The subprotocol chosen for `offer` (header lines) with the server's `ours`.
    fn chosen(offer: &[&str], ours: &[&str]) -> (Option<String>, bool) {
        let headers: Vec<httparse::Header<'_>> = offer
            .iter()
            .map(|v| httparse::Header {
                name: "Sec-WebSocket-Protocol",
                value: v.as_bytes(),
            })
            .collect();
        let ours: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
        let (protocol, note) = choose_protocol(&headers, &ours, &mut None);
        (protocol, note.is_some())
    }

    #[test]
    fn subprotocols_the_servers_order_among_what_the_client_offered() {
        let some = |s: &str| (Some(s.to_string()), false);
        assert_eq!(chosen(&["b, a"], &["a", "b"]), some("a"));
        assert_eq!(chosen(&["b", "a"], &["a", "b"]), some("a"));
        assert_eq!(chosen(&[" ,b ,"], &["a", "b"]), some("b"));
        // Never a name the client did not offer; exact comparison.
        assert_eq!(chosen(&["c"], &["a", "b"]), (None, true));
        assert_eq!(chosen(&["A"], &["a"]), (None, true));
        assert_eq!(chosen(&["chat"], &[]), (None, true));
        // Nothing offered: nothing to say.
        assert_eq!(chosen(&[], &["a"]), (None, false));
        assert_eq!(chosen(&[" , "], &["a"]), (None, false));
    }

    #[test]
    fn with_static_dir_plain_requests_are_files_and_upgrades_stay_upgrades() {
        let cfg = Config::default().static_dir("www").path("/echo");
        let req = |method: &str, path: &str, extra: &str| {
            format!("{method} {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n").into_bytes()
        };
        let date = "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
        match check(&req("GET", "/a.txt?x=1", date), &cfg) {
            Verdict::File {
                head_only: false,
                path,
                if_modified_since,
                not_found: None,
            } => {
                assert_eq!(path, "/a.txt");
                assert_eq!(
                    if_modified_since.as_deref(),
                    Some("Sun, 06 Nov 1994 08:49:37 GMT")
                );
            }
            other => panic!("{other:?}"),
        }
        // RFC 9110 §13.1.3: ignored with If-None-Match, and when repeated.
        for extra in [
            format!("{date}If-None-Match: \"x\"\r\n"),
            format!("{date}{date}"),
        ] {
            match check(&req("HEAD", "/a.txt", &extra), &cfg) {
                Verdict::File {
                    head_only: true,
                    if_modified_since: None,
                    ..
                } => {}
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        // The endpoint: a file if there is one, else its 426.
        match check(&req("GET", "/echo", ""), &cfg) {
            Verdict::File {
                not_found: Some(r), ..
            } => assert_eq!(r.status, 426),
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
            Verdict::Upgrade { .. }
        ));
        // Not the directory's either: other methods (405, as before).
        match check(&req("POST", "/a.txt", ""), &cfg) {
            Verdict::Refuse { response, .. } => assert_eq!(response.status, 405),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_is_checked_before_any_route() {
        let status = |head: &str, cfg: &Config| match check(head.as_bytes(), cfg) {
            Verdict::Refuse { response, .. } => (response.status, response.body),
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
                Verdict::Upgrade { .. } => assert!(upgrades, "{target} upgraded"),
                Verdict::Refuse { response, .. } => {
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

    #[test]
    fn keys() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ")); // no padding
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZR==")); // 'R' has low bits set
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25j*Q=="));
        assert!(!is_valid_key(""));
    }

    #[test]
    fn origins() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(
            "http://localhost:8080",
            "localhost:8080",
            &none
        ));
        assert!(origin_allowed(
            "http://LOCALHOST:8080",
            "localhost:8080",
            &none
        ));
        assert!(origin_allowed(
            "http://example.com",
            "example.com:80",
            &none
        ));
        assert!(origin_allowed("https://example.com", "example.com", &none));
        assert!(!origin_allowed(
            "http://evil.com:8080",
            "localhost:8080",
            &none
        ));
        assert!(!origin_allowed(
            "http://localhost:8081",
            "localhost:8080",
            &none
        ));
        assert!(!origin_allowed("null", "localhost:8080", &none));
        assert!(!origin_allowed("http://", "", &none));
        let list = vec!["http://a.test:3000".to_string(), "null".to_string()];
        assert!(origin_allowed("http://a.test:3000", "x:1", &list));
        assert!(origin_allowed("null", "x:1", &list));
        assert!(origin_allowed("http://anything", "x:1", &["*".to_string()]));
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
            // Only with `static_dir`, which these properties do not set; files.rs has its
            // own tests of what it answers.
            Verdict::File { .. } => 200,
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
                Verdict::Upgrade { path, .. } => prop_assert_eq!(path, u.path),
                Verdict::Page { .. } => prop_assert!(false, "a valid upgrade got the page"),
                Verdict::File { .. } => prop_assert!(false, "a valid upgrade got a file"),
                Verdict::Refuse { response, .. } => {
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
