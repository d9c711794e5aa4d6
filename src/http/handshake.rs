//! The checks of an upgrade, after route.rs's (RFC 6455 §4.2.1, §4.2.2, §4.4): is it
//! valid, may its Origin connect, which subprotocol does the `101` name?

use crate::client::head::{list, values};
use crate::client::response::Response;
use crate::config::Config;
use crate::guard::escape;
use crate::layers::teach::step::Check;
use crate::ws::connection::Checked;

/// A request to refuse: send `response` and close. `by`: the check that refused it (for
/// the trace, which narrates the checks before it as passed). `note` goes to the log
/// when set, to tell the operator how to change the outcome.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) response: Response,
    pub(crate) by: Check,
    pub(crate) note: Option<String>,
}

pub(crate) fn refuse(by: Check, response: Response) -> Refusal {
    Refusal {
        response,
        by,
        note: None,
    }
}

/// The checks of an upgrade request whose request line, Host, path and `Upgrade` route.rs
/// has accepted (RFC 6455 §4.2.1 items 1 to 3): items 4 to 6 (`Connection`, the key, the
/// version), the Origin (item 7, §10.2) and the subprotocol (item 8, §4.2.2). `host` is
/// the host the request is for.
pub(crate) fn check_upgrade(
    head: &[u8],
    headers: &[httparse::Header<'_>],
    path: &str,
    target: &str,
    host: &str,
    config: &Config,
) -> Result<Checked, Refusal> {
    // tungstenite reads the target as an `http::Uri`, which refuses a few characters
    // httparse lets through: `<`, `>` and the backtick in the path, `"`, `<` and `>` in
    // the query. They must be percent-encoded (RFC 3986 §2.1; browsers do): refused
    // here, with an answer that says so, like every other malformed request.
    if let Err(e) = target.parse::<tungstenite::http::Uri>() {
        return Err(refuse(
            Check::Upgrade,
            Response::new(
                400,
                format!(
                    "The request target is not a valid URI ({e}); percent-encode characters such as <, > and the backtick (RFC 3986 §2.1)."
                ),
            ),
        ));
    }
    if !has_token(headers, "Connection", "upgrade") {
        return Err(refuse(
            Check::Connection,
            Response::new(
                400,
                "A WebSocket handshake needs the header Connection: Upgrade (RFC 6455 §4.2.1).",
            ),
        ));
    }
    check_version(headers)?;
    check_key(headers)?;
    check_origin(headers, host, config)?;
    let (protocol, note) = choose_protocol(headers, &config.protocols);
    let rewritten = for_tungstenite(head, headers);
    Ok(Checked {
        path: path.to_string(),
        rewritten,
        protocol,
        note,
    })
}

/// §4.4: a version we do not speak gets 426 and the list of versions we do.
fn check_version(headers: &[httparse::Header<'_>]) -> Result<(), Refusal> {
    match single(headers, "Sec-WebSocket-Version", Check::Version)? {
        Some("13") => Ok(()),
        v => Err(refuse(
            Check::Version,
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
        )),
    }
}

/// §4.2.1 item 5: the client's key, 16 bytes in base64.
fn check_key(headers: &[httparse::Header<'_>]) -> Result<(), Refusal> {
    let answer = match single(headers, "Sec-WebSocket-Key", Check::Key)? {
        Some(k) if is_valid_key(k) => return Ok(()),
        Some(_) => Response::new(
            400,
            "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters, RFC 6455 §4.1).",
        ),
        None => Response::new(400, "The Sec-WebSocket-Key header is missing."),
    };
    Err(refuse(Check::Key, answer))
}

/// §10.2: a browser's request carries its page's Origin; only the server's own origin
/// and those in `allow_origins` may connect.
fn check_origin(
    headers: &[httparse::Header<'_>],
    host: &str,
    config: &Config,
) -> Result<(), Refusal> {
    let Some(origin) = single(headers, "Origin", Check::Origin)? else {
        return Ok(());
    };
    // The value as sent (`single` read it as UTF-8), trimmed.
    let raw = (headers.iter())
        .find(|h| h.name.eq_ignore_ascii_case("Origin"))
        .map_or(origin.as_bytes(), |h| h.value.trim_ascii());
    // Not UTF-8: read as U+FFFD, which an --allow-origin of "\u{fffd}" would match.
    if std::str::from_utf8(raw).is_err() || !origin_allowed(origin, host, &config.allow_origins) {
        return Err(refused_origin(raw, host));
    }
    Ok(())
}

/// `403` for an Origin that is not allowed (`origin`: as sent, escaped wherever shown),
/// with a log note that says how to allow it, if a flag can.
fn refused_origin(origin: &[u8], host: &str) -> Refusal {
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
    Refusal {
        response: Response::new(
            403,
            // The client's own text (the log line of the answer escapes it).
            format!(
                "Origin {} may not open WebSocket connections to this server.",
                String::from_utf8_lossy(origin)
            ),
        ),
        by: Check::Origin,
        note: Some(note),
    }
}

/// Whether a header called `name` has `token` in its comma list, in any case (RFC 9110
/// §7.8 `Upgrade`, §7.6.1 `Connection`).
pub(crate) fn has_token(headers: &[httparse::Header<'_>], name: &'static str, token: &str) -> bool {
    list(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The subprotocol for the `101` (RFC 6455 §4.2.2 /subprotocol/): the first of the
/// server's `protocols` (its order of preference) that the client offered in
/// `Sec-WebSocket-Protocol`, a comma list (§11.3.4).
/// Compared exactly: RFC 6455 gives subprotocol names no case rule (unlike `Upgrade`
/// and `Connection`, §4.2.1), the client fails a connection whose answer it did not
/// offer (§4.1), and browsers compare byte for byte; so the answer is always a name the
/// client sent. The second value is the log note when the client offered names and none
/// was chosen.
fn choose_protocol(
    headers: &[httparse::Header<'_>],
    protocols: &[String],
) -> (Option<String>, Option<String>) {
    let offered: Vec<&str> = list(headers, "Sec-WebSocket-Protocol").collect();
    if offered.is_empty() {
        return (None, None);
    }
    if let Some(chosen) = protocols.iter().find(|p| offered.contains(&p.as_str())) {
        return (Some(chosen.clone()), None);
    }
    // For the log: client text, escaped.
    let list = escape::client(&offered.join(", ")).to_string();
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

/// The value of a header that may appear at most once; more is refused by the check `by`.
pub(crate) fn single<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
    by: Check,
) -> Result<Option<&'h str>, Refusal> {
    let mut it = values(headers, name);
    let first = it.next();
    if it.next().is_some() {
        return Err(refuse(
            by,
            Response::new(400, format!("The {name} header appears more than once.")),
        ));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
        let (protocol, note) = choose_protocol(&headers, &ours);
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
}
