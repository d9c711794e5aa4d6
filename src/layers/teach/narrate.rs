//! The routing step narrated, for `--trace` and the inspector (trace.rs `request`): each
//! check of http/route.rs and http/handshake.rs that passed, in their order, then how
//! the request ended. The checks only say which of them refused a request (step.rs
//! [`Check`]): every check before that one passed, and what each looked at is read here
//! from the head again.

use std::fmt::Write as _;

use sha1::{Digest, Sha1};

use crate::client::head::{MAX_HEADERS, list, values};
use crate::config::Config;
use crate::guard::escape;
use crate::host;
use crate::layers::teach::step::{Check, End};

/// Each check that passed, a line each (`ok`, `--` a remark, `==` the
/// `Sec-WebSocket-Accept` computation), then a line for how the request ended.
pub(crate) fn steps(head: &[u8], config: &Config, end: &End<'_>) -> String {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    // A head that cannot be read was refused by `Check::Head`: nothing passed.
    let _ = req.parse(head);
    let (method, headers) = (req.method.unwrap_or_default(), req.headers);
    let (path, authority) = req.path.and_then(host::split_target).unwrap_or_default();
    // What route.rs checks against the upgrade's Host (RFC 9112 §3.2.2).
    let host = authority
        .or(values(headers, "Host").next())
        .unwrap_or_default();
    // A page or a file is a plain request: no check after the method is made.
    let refused_by = match *end {
        End::Refused { by, .. } => Some(by),
        End::Page { .. } | End::File { .. } => Some(Check::Path),
        End::Upgrade { .. } => None,
    };
    let passed = |check: Check| refused_by.is_none_or(|by| check < by);
    let mut steps = Vec::new();
    // Checked first of all, with reading the head (route.rs `host_of`): a request without
    // exactly one valid Host gets 400 whatever else it asks for.
    if passed(Check::Head) {
        steps.push(host_step(host, config));
    }
    if passed(Check::Http) {
        steps.push("ok  HTTP/1.1 (§4.1: at least 1.1)".to_string());
    }
    if passed(Check::Method) {
        steps.push(format!("ok  method {method} (§4.1)"));
    }
    if let End::File { .. } = end {
        steps.push(format!(
            "ok  a plain {method} (no Upgrade) with --static: a file, then close"
        ));
    }
    if passed(Check::Path) {
        steps.push(path_step(path, config));
    }
    if passed(Check::Upgrade) {
        steps.push(format!(
            "ok  Upgrade: {} has the token \"websocket\" (§4.2.1 item 3)",
            joined(headers, "Upgrade")
        ));
    }
    if passed(Check::Connection) {
        steps.push(format!(
            "ok  Connection: {} has the token \"Upgrade\" (§4.2.1 item 4; a list, any case)",
            joined(headers, "Connection")
        ));
    }
    upgrade_steps(headers, host, config, end, &passed, &mut steps);
    let mut s = steps.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    if let Some(end) = end_line(end) {
        let _ = writeln!(s, "{end}");
    }
    s
}

/// The Host step: the host the request is for (an absolute-form target's authority, else
/// the Host header). HTTP/1.0 may leave it out; route.rs then refuses the version.
fn host_step(host: &str, config: &Config) -> String {
    match (host, config.allow_hosts.is_empty()) {
        ("", _) => "ok  no Host: HTTP/1.0 may leave it out (RFC 9112 §3.2)".to_string(),
        (_, true) => format!("ok  Host: {host} (§4.2.1 item 2)"),
        (_, false) => format!("ok  Host: {host} (§4.2.1 item 2), a name in --allow-host"),
    }
}

/// The checks of an upgrade's own headers (http/handshake.rs), from the version on.
fn upgrade_steps(
    headers: &[httparse::Header<'_>],
    host: &str,
    config: &Config,
    end: &End<'_>,
    passed: &impl Fn(Check) -> bool,
    steps: &mut Vec<String>,
) {
    if passed(Check::Version) {
        steps.push("ok  Sec-WebSocket-Version: 13 (§4.2.1 item 6)".to_string());
    }
    let key = values(headers, "Sec-WebSocket-Key")
        .next()
        .unwrap_or_default();
    if passed(Check::Key) {
        steps.push(format!(
            "ok  Sec-WebSocket-Key: {key} (24 base64 characters = 16 bytes, §4.2.1 item 5)"
        ));
    }
    if passed(Check::Origin) {
        steps.push(match values(headers, "Origin").next() {
            None => "ok  no Origin header: not a browser, nothing to check (§10.2)".to_string(),
            Some(origin) if config.allow_origins.is_empty() => {
                format!("ok  Origin: {origin} is this server's own origin (Host {host}, §10.2)")
            }
            Some(origin) => {
                format!("ok  Origin: {origin} is same-origin or allowed by --allow-origin (§10.2)")
            }
        });
    }
    let End::Upgrade {
        protocol,
        rewritten,
    } = *end
    else {
        return;
    };
    // Nothing to narrate when nothing is offered: most clients offer none.
    steps.extend(protocol_step(headers, protocol, &config.protocols));
    if rewritten {
        steps.push("--  tungstenite takes only `Upgrade: websocket` and `Connection: Upgrade` on one line each: its copy of the head has them so".to_string());
    }
    steps.push(accept_steps(key));
}

fn path_step(path: &str, config: &Config) -> String {
    match (config.path.as_deref(), config.rooms) {
        (Some(only), false) => format!("ok  path {path} is --path {only}"),
        (Some(only), true) => {
            format!("ok  path {path} is under --path {only}: the room {path} (--rooms)")
        }
        (None, false) => format!("ok  path {path} (every path may upgrade: no --path)"),
        (None, true) => format!("ok  path {path}: the room {path} (--rooms, no --path)"),
    }
}

/// The subprotocols offered (http/handshake.rs `choose_protocol`), and the one chosen.
fn protocol_step(
    headers: &[httparse::Header<'_>],
    chosen: Option<&str>,
    ours: &[String],
) -> Option<String> {
    let offered: Vec<&str> = list(headers, "Sec-WebSocket-Protocol").collect();
    if offered.is_empty() {
        return None;
    }
    // Client text, escaped.
    let list = escape::client(&offered.join(", ")).to_string();
    if let Some(chosen) = chosen {
        return Some(format!(
            "ok  Sec-WebSocket-Protocol: {list} offered; answered {chosen:?}, the first of --protocol {} the client offered (§4.2.2 item 5.5: the server's order)",
            ours.join(",")
        ));
    }
    let ours = match ours {
        [] => "no --protocol".to_string(),
        _ => format!("--protocol {}", ours.join(",")),
    };
    Some(format!(
        "--  Sec-WebSocket-Protocol: {list} offered; none is in {ours}: the 101 has no Sec-WebSocket-Protocol (§4.2.2: null), and a browser then fails the connection"
    ))
}

/// How a plain request ended; an upgrade's last line is the Sec-WebSocket-Accept
/// computation.
fn end_line(end: &End<'_>) -> Option<String> {
    Some(match *end {
        End::Upgrade { .. } => return None,
        End::Page { head_only, path } if head_only => {
            format!("-- HEAD {path}: the teaching page's headers without the page, then close")
        }
        End::Page { path, .. } => {
            format!("-- a plain GET {path} (no Upgrade): the teaching page, then close")
        }
        End::File { head_only, path } => format!(
            "-- {} {path}: answered from the --static directory, then close",
            if head_only { "HEAD" } else { "GET" }
        ),
        // trace.rs `request` shows the answer as sent after it.
        End::Refused { response, .. } => format!("!! refused: {}", response.body.trim_end()),
    })
}

/// The values of every header called `name`, joined by `, `.
fn joined(headers: &[httparse::Header<'_>], name: &'static str) -> String {
    values(headers, name).collect::<Vec<_>>().join(", ")
}

/// RFC 6455 §1.3: the GUID appended to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for `key` step by step, as `--trace` shows it (an
/// upgrade's last step; tungstenite computes the one the `101` carries): the key with
/// the GUID appended, its SHA-1 digest, and that in base64 (RFC 6455 §4.2.2 item 5.4).
fn accept_steps(key: &str) -> String {
    let joined = format!("{key}{GUID}");
    let digest = Sha1::digest(joined.as_bytes());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "== key            {key}\n\
         == key + GUID     {joined}\n\
         == SHA-1 (hex)    {}\n\
         == base64(SHA-1)  {}  -> Sec-WebSocket-Accept",
        hex.join(" "),
        data_encoding::BASE64.encode(&digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::response::Response;

    const HEAD: &[u8] = b"GET /chat HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

    /// RFC 6455 §1.3's example key and accept value.
    #[test]
    fn accept_of_the_rfc_sample_key() {
        let steps = accept_steps("dGhlIHNhbXBsZSBub25jZQ==");
        assert!(steps.contains("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11\n"));
        assert!(steps.contains("b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea"));
        assert!(steps.ends_with("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  -> Sec-WebSocket-Accept"));
    }

    #[test]
    fn the_checks_before_the_refusing_one_are_narrated_as_passed() {
        let config = Config::default();
        let response = Response::new(400, "no");
        let refused = |by| {
            steps(
                HEAD,
                &config,
                &End::Refused {
                    by,
                    response: &response,
                },
            )
        };
        let head = refused(Check::Head);
        assert!(head.starts_with("!! refused: no\n"), "{head}");
        let http = refused(Check::Http);
        assert!(
            http.starts_with("ok  Host: h:1 (§4.2.1 item 2)\n!! "),
            "{http}"
        );
        let key = refused(Check::Key);
        assert!(key.starts_with("ok  Host: h:1 (§4.2.1 item 2)\n"), "{key}");
        assert!(key.contains("ok  Sec-WebSocket-Version: 13"), "{key}");
        assert!(!key.contains("Sec-WebSocket-Key:"), "{key}");
        let upgrade = End::Upgrade {
            protocol: Some("chat"),
            rewritten: false,
        };
        let all = steps(HEAD, &config, &upgrade);
        assert!(all.contains("ok  no Origin header"), "{all}");
        assert!(all.contains("answered \"chat\""), "{all}");
        assert!(all.ends_with("-> Sec-WebSocket-Accept\n"), "{all}");
        assert!(!all.contains("!!"), "{all}");
    }
}
