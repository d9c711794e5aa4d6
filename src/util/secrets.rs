//! Credentials in a request, hidden wherever tinyws shows a request to people: the
//! `--trace` on a projector, the page on `/`, and the log. A browser sends every cookie
//! of the host to every port (RFC 6265 §8.5), so a teacher's `localhost` cookies from
//! other dev servers arrive here too; tokens often ride in the query string, since a
//! browser's WebSocket cannot set headers. It calls nothing else of the crate.

/// Request headers whose values are credentials, by name (lower case). A browser sends
/// every cookie of the host to every port (RFC 6265 §8.5: cookies do not isolate by
/// port), so a teacher's `localhost` cookies from other dev servers arrive here too.
const SECRET_HEADERS: &[&str] = &[
    "cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-csrf-token",
    "x-xsrf-token",
];

/// A header (or query parameter) name that is, or looks like, a credential.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str())
        || [
            "token", "secret", "password", "passwd", "auth", "session", "apikey", "api_key",
        ]
        .iter()
        .any(|w| name.contains(w))
}

/// The request head with credential values replaced by `<hidden: N bytes>`: the
/// headers [`is_secret_name`] names, and query parameters such as `?token=` in the
/// request line (browsers cannot set headers on a WebSocket, so tokens often go there).
/// Returns the head to show and how many values were hidden.
pub(crate) fn redact(head: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(head.len());
    let mut hidden = 0;
    for (n, line) in head.split_inclusive(|&b| b == b'\n').enumerate() {
        let body_len = line
            .iter()
            .rposition(|&b| b != b'\r' && b != b'\n')
            .map_or(0, |i| i + 1);
        let (body, end) = line.split_at(body_len);
        if n == 0 {
            out.extend_from_slice(&redact_query(body, &mut hidden));
        } else if let Some(colon) = body.iter().position(|&b| b == b':')
            && is_secret_name(&String::from_utf8_lossy(&body[..colon]))
        {
            let value = body[colon + 1..].trim_ascii();
            out.extend_from_slice(&body[..colon + 1]);
            out.extend_from_slice(format!(" <hidden: {} bytes>", value.len()).as_bytes());
            hidden += 1;
        } else {
            out.extend_from_slice(body);
        }
        out.extend_from_slice(end);
    }
    (out, hidden)
}

/// Query parameters that carry credentials but whose names would hide too much as header
/// name patterns (`key` would hide `Sec-WebSocket-Key`, which the lesson shows).
const SECRET_PARAMS: &[&str] = &["key", "access_key", "sig", "signature", "jwt", "code"];

fn is_secret_param(name: &str) -> bool {
    is_secret_name(name) || SECRET_PARAMS.contains(&name.trim().to_ascii_lowercase().as_str())
}

/// A request target with credential values in its query hidden (for log lines):
/// `/chat?token=abc&room=1` → `/chat?token=<hidden: 3 bytes>&room=1`.
pub(crate) fn redact_target(target: &str) -> String {
    let mut hidden = 0;
    let line = redact_query(format!("GET {target}").as_bytes(), &mut hidden);
    String::from_utf8_lossy(&line[4..]).into_owned()
}

/// `GET /chat?token=abc&room=1 HTTP/1.1` → `GET /chat?token=<hidden: 3 bytes>&room=1 HTTP/1.1`.
fn redact_query(line: &[u8], hidden: &mut usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    let (Some(method), Some(target), rest) = (parts.next(), parts.next(), parts.next()) else {
        return line.to_vec();
    };
    let Some((path, query)) = target.split_once('?') else {
        return line.to_vec();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if is_secret_param(k) => {
                *hidden += 1;
                format!("{k}=<hidden: {} bytes>", v.len())
            }
            _ => pair.to_string(),
        })
        .collect();
    let mut s = format!("{method} {path}?{}", query.join("&"));
    if let Some(rest) = rest {
        s.push(' ');
        s.push_str(rest);
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_values_and_keeps_names_and_line_ends() {
        let head = b"GET /?a=1&access_token=xyz HTTP/1.1\r\nHost: h\r\ncookie:a=b\r\nX-Auth-Token: t\r\nSec-WebSocket-Key: k\r\n\r\n";
        let (shown, hidden) = redact(head);
        assert_eq!(hidden, 3);
        assert_eq!(
            String::from_utf8(shown).unwrap(),
            "GET /?a=1&access_token=<hidden: 3 bytes> HTTP/1.1\r\nHost: h\r\ncookie: <hidden: 3 bytes>\r\nX-Auth-Token: <hidden: 1 bytes>\r\nSec-WebSocket-Key: k\r\n\r\n"
        );
    }

    #[test]
    fn query_only_names_and_targets() {
        assert_eq!(
            redact_target("/chat?room=1&key=abcd&jwt=e.f.g"),
            "/chat?room=1&key=<hidden: 4 bytes>&jwt=<hidden: 5 bytes>"
        );
        assert_eq!(redact_target("/plain"), "/plain");
        // As a header, "key" is the handshake's own, and shown.
        let (shown, hidden) = redact(b"GET / HTTP/1.1\r\nSec-WebSocket-Key: k\r\nKey: v\r\n\r\n");
        assert_eq!(hidden, 0);
        assert!(
            String::from_utf8(shown)
                .unwrap()
                .contains("Sec-WebSocket-Key: k")
        );
    }
}
