//! The page on `/`: what a browser gets for a plain `GET /`. One self-contained HTML file
//! (inline CSS and JS, nothing fetched from elsewhere: classrooms are often offline) that
//! connects back to the same host and port, at the configured `--path`, so its origin is
//! the server's own and passes the origin check (RFC 6455 §10.2) without any flag.
//!
//! It shows whatever messages arrive, with timestamps, so it works the same whether the
//! handler echoes or broadcasts.

use crate::config::Config;
use crate::http::Response;

const TEMPLATE: &str = include_str!("page.html");

/// The page, with the WebSocket path and the request head that fetched it filled in.
pub(crate) fn page(config: &Config, head: &[u8]) -> Response {
    let path = config.path.as_deref().unwrap_or("/");
    let html = TEMPLATE
        .replace("{{WS_PATH}}", &js_string(path))
        .replace("{{REQUEST_HEAD}}", &html_escape(&shown_head(head)));
    Response::new(200, html)
        .header("Content-Type", "text/html; charset=utf-8")
        // The page embeds this very request: never serve it from a cache.
        .header("Cache-Control", "no-store")
}

/// The request head as the page shows it, with credentials hidden: the page may be on
/// a classroom projector.
fn shown_head(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len());
    for line in text.trim_end().lines() {
        let name = line.split(':').next().unwrap_or("").trim();
        if ["cookie", "authorization", "proxy-authorization"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            out.push_str(name);
            out.push_str(": (not shown)");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// A JavaScript string literal that is also safe inside `<script>` (no `</script>`).
fn js_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '<' | '>' | '&' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_values_are_escaped() {
        assert_eq!(js_string("/echo"), "\"/echo\"");
        assert_eq!(
            js_string("/a\"</script>"),
            "\"/a\\\"\\u003c/script\\u003e\""
        );
        assert_eq!(html_escape("<b>&\"\r\n"), "&lt;b&gt;&amp;&quot;\n");
        assert_eq!(
            shown_head(b"GET / HTTP/1.1\r\nCookie: s=1\r\nauthorization: x\r\nA: b\r\n\r\n"),
            "GET / HTTP/1.1\nCookie: (not shown)\nauthorization: (not shown)\nA: b"
        );
    }
}
