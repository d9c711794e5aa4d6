//! The `Host` header: is it a valid host, which name does it give, and is that a name
//! this server answers to (`allow_hosts`)? And the request target's path and host
//! ([`split_target`]), which the checks and the trace both read.
//!
//! Why a list of names at all: DNS rebinding. A page on `evil.example` is served by its
//! owner, then the owner's DNS answers `evil.example` with the address of a tinyws on the
//! visitor's network. The page's script now talks to tinyws as `evil.example`: its
//! `Origin` is `http://evil.example:8080` and its `Host` is `evil.example:8080`, so the
//! Origin check (same host as `Host`, RFC 6455 §10.2) passes. Only the names the server
//! answers to can tell it apart, and only the operator knows them.

use std::net::Ipv6Addr;

/// The name of a Host value (`uri-host [":" port]`, RFC 9112 §3.2, RFC 3986 §3.2.2) as
/// `allow_hosts` compares it: lowercased (names are case-insensitive, RFC 3986 §3.2.2),
/// without the port, without one trailing dot (`pi.local.` is `pi.local`), and an IPv6
/// literal in its canonical bracketed form (`[0:0::1]` is `[::1]`). `None` when the
/// value is not a valid host: empty (RFC 9110 §4.2.1 forbids an empty host in an
/// `http` URI), a port that is not digits, a userinfo, spaces, or any other byte a host
/// cannot have.
pub(crate) fn name(value: &str) -> Option<String> {
    let (host, port) = split_port(value)?;
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(literal) = host.strip_prefix('[') {
        return ip_literal(literal.strip_suffix(']')?);
    }
    if host.is_empty() || !is_reg_name(host) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match host.strip_suffix('.') {
        Some(bare) if !bare.is_empty() => bare.to_string(),
        _ => host,
    })
}

/// `host[:port]` → (host, port); the port is `""` when there is none. An IPv6 literal
/// keeps its brackets; anything after its `]` must be a `:port`.
fn split_port(value: &str) -> Option<(&str, &str)> {
    if value.starts_with('[') {
        let end = value.find(']')? + 1;
        let (host, rest) = value.split_at(end);
        return match rest {
            "" => Some((host, "")),
            _ => Some((host, rest.strip_prefix(':')?)),
        };
    }
    Some(value.rsplit_once(':').unwrap_or((value, "")))
}

/// RFC 3986 §3.2.2 `IP-literal` without its brackets: an IPv6 address, or an `IPvFuture`
/// (`v1.xyz`, which nobody sends, but which is valid and so not a 400).
fn ip_literal(inner: &str) -> Option<String> {
    if let Ok(ip) = inner.parse::<Ipv6Addr>() {
        return Some(format!("[{ip}]"));
    }
    let (version, rest) = inner.strip_prefix(['v', 'V'])?.split_once('.')?;
    let future = !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_hexdigit())
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| is_unreserved_or_sub_delim(b) || b == b':');
    future.then(|| format!("[{}]", inner.to_ascii_lowercase()))
}

/// RFC 3986 §3.2.2 `reg-name` (an IPv4 address is one too): unreserved characters,
/// sub-delims and `%HH`.
fn is_reg_name(host: &str) -> bool {
    let b = host.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if is_unreserved_or_sub_delim(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// The name an `allow_hosts` entry stands for, or why it stands for none (for
/// `Config::validate`). An entry is a host name or an IP address, without a port: a
/// rebound name comes on the server's own port, so comparing ports would stop nothing.
/// An IPv6 address may come with or without brackets.
pub(crate) fn entry(entry: &str) -> Result<String, String> {
    if let Ok(ip) = entry.parse::<Ipv6Addr>() {
        return Ok(format!("[{ip}]"));
    }
    if entry.contains('*') {
        // A valid character of a name, but surely meant as a wildcard.
        return Err(format!(
            "`allow_hosts` entry {entry:?} has a *; there are no wildcards: list each name"
        ));
    }
    let Some(name) = name(entry) else {
        return Err(format!(
            "`allow_hosts` entry {entry:?} is not a host name or address; write a name (pi.local), an IPv4 address or an IPv6 address"
        ));
    };
    match split_port(entry) {
        Some((host, port)) if !port.is_empty() || entry.ends_with(':') => Err(format!(
            "`allow_hosts` entry {entry:?} has a port; give the name alone ({host}): the port is not compared"
        )),
        _ => Ok(name),
    }
}

/// Whether the Host value `value` names one of `allowed` (entries as
/// [`entry`] reads them; invalid ones match nothing, `Config::validate` refuses them).
pub(crate) fn is_allowed(value: &str, allowed: &[String]) -> bool {
    name(value).is_some_and(|name| {
        allowed
            .iter()
            .any(|e| entry(e).is_ok_and(|allowed| allowed == name))
    })
}

/// The path of a request target (without query), and its authority if it is in
/// absolute form (RFC 9112 §3.2.2: `GET http://host:port/echo HTTP/1.1`, which a server
/// must accept). `None` for anything else (`*`, `host:port`, other schemes).
pub(crate) fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
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
    Some((path_of(rest).unwrap_or("/"), Some(authority)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_valid_hosts() {
        for (value, want) in [
            ("localhost", "localhost"),
            ("localhost:8080", "localhost"),
            ("Pi.Local:8080", "pi.local"),
            ("pi.local.", "pi.local"),
            ("pi.local.:80", "pi.local"),
            ("192.168.1.10:8080", "192.168.1.10"),
            ("[::1]:8080", "[::1]"),
            ("[0:0:0:0:0:0:0:1]", "[::1]"),
            ("[2001:DB8::1]", "[2001:db8::1]"),
            ("[v1.fe80::a+en1]", "[v1.fe80::a+en1]"),
            ("host:", "host"), // RFC 3986: the port may be empty
            ("xn--caf-dma.example", "xn--caf-dma.example"),
            ("a%2Eb", "a%2eb"),
            (".", "."),
        ] {
            assert_eq!(name(value).as_deref(), Some(want), "{value:?}");
        }
    }

    #[test]
    fn invalid_hosts_have_no_name() {
        for value in [
            "",
            ":8080",
            "a b",
            "user@host",
            "host:80a",
            "host:80:80",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[]",
            "[not an ip]",
            "a/b",
            "a%2",
            "a%zz",
            "a\u{9b}b",
            "ho`st",
            "<x>",
            "café.example",
        ] {
            assert_eq!(name(value), None, "{value:?}");
        }
    }

    #[test]
    fn entries() {
        assert_eq!(entry("Pi.Local").as_deref(), Ok("pi.local"));
        assert_eq!(entry("::1").as_deref(), Ok("[::1]"));
        assert_eq!(entry("[::1]").as_deref(), Ok("[::1]"));
        assert_eq!(entry("10.0.0.2").as_deref(), Ok("10.0.0.2"));
        for (bad, says) in [
            (
                "pi.local:8080",
                "has a port; give the name alone (pi.local)",
            ),
            ("[::1]:8080", "has a port; give the name alone ([::1])"),
            ("pi.local:", "has a port"),
            ("*.local", "no wildcards"),
            ("", "not a host name"),
            ("http://pi.local", "not a host name"),
        ] {
            let e = entry(bad).expect_err(bad);
            assert!(
                e.starts_with("`allow_hosts` entry") && e.contains(says),
                "{e}"
            );
        }
    }

    #[test]
    fn allowed_names_match_without_case_port_or_trailing_dot() {
        let list = ["pi.local".to_string(), "::1".to_string()];
        for yes in [
            "pi.local",
            "PI.LOCAL:8080",
            "pi.local.:1",
            "[::1]:8080",
            "[0::1]",
        ] {
            assert!(is_allowed(yes, &list), "{yes:?}");
        }
        for no in [
            "evil.example",
            "pi.local.evil.example",
            "pi.localx",
            "xpi.local",
            "localhost",
            "127.0.0.1",
            "[::2]",
            "",
            "pi.local:x",
        ] {
            assert!(!is_allowed(no, &list), "{no:?}");
        }
        assert!(!is_allowed("pi.local", &[]));
    }
}
