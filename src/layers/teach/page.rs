//! The page on `/`: what a browser gets for a plain `GET /`. One self-contained HTML file
//! (inline CSS and JS, nothing fetched from elsewhere: classrooms are often offline) that
//! connects back to the same host and port, at the configured `--path`, so its origin is
//! the server's own and passes the origin check (RFC 6455 §10.2) without any flag.
//!
//! It shows whatever messages arrive, with timestamps, so it works the same whether the
//! handler echoes or broadcasts.

use std::fmt::Write as _;

use crate::client::response::Response;
use crate::config::Config;

const TEMPLATE: &str = include_str!("page.html");
/// The same page in Chinese, for browsers that prefer it (many of tinyws's first
/// classrooms teach in Chinese).
const TEMPLATE_ZH: &str = include_str!("page.zh.html");
/// The page's script (with the frame lab's, framelab.js) and style, the same in every
/// language: each template holds only its words (and the script's `TEXT`).
const SCRIPT: &str = concat!(include_str!("page.js"), include_str!("framelab.js"));
const STYLE: &str = include_str!("page.css");

/// The page, with the WebSocket path and the request head that fetched it filled in, in
/// the language the reader picked with the page's switch (`?lang=en`, `?lang=zh`), else
/// the one the browser prefers (`Accept-Language`, RFC 9110 §12.5.4): Chinese for `zh`
/// and its variants when they come before English, English otherwise.
pub(crate) fn page(config: &Config, head: &[u8]) -> Response {
    render(config, head, false)
}

/// The projector view (`/inspect`, with `Config::inspect`): the same page, showing every
/// connection the inspector records instead of a connection of its own (inspect.rs).
pub(crate) fn projector(config: &Config, head: &[u8]) -> Response {
    render(config, head, true)
}

fn render(config: &Config, head: &[u8], projector: bool) -> Response {
    let path = config.path.as_deref().unwrap_or("/");
    let asked = asked_chinese(head);
    let chinese = asked.unwrap_or_else(|| prefers_chinese(head));
    let (template, language) = if chinese {
        (TEMPLATE_ZH, "zh-Hans")
    } else {
        (TEMPLATE, "en")
    };
    let script = fill(
        SCRIPT,
        &[
            ("WS_PATH", &js_string(path)),
            ("PROJECTOR", if projector { "true" } else { "false" }),
            ("WS_PROTOCOLS", &js_string(&config.protocols.join(", "))),
        ],
    );
    let html = fill(
        template,
        &[
            ("STYLE", STYLE),
            ("SCRIPT", &script),
            ("REQUEST_HEAD", &html_escape(&shown_head(head))),
        ],
    );
    let page = Response::new(200, html)
        .header("Content-Type", "text/html; charset=utf-8")
        // The page embeds this very request: never serve it from a cache.
        .header("Cache-Control", "no-store")
        .header("Content-Language", language);
    match asked {
        // `?lang=` is in the URL, which every cache keys on already.
        Some(_) => page,
        // RFC 9110 §12.5.5: the answer depends on this request header.
        None => page.header("Vary", "Accept-Language"),
    }
}

/// `template` with each `{{NAME}}` of `values` replaced by its value, in one pass: a value
/// is copied as it is, never searched for names itself (the request head may hold any
/// text). Any other `{{` stays as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let extra: usize = values.iter().map(|(_, v)| v.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let known = after.split_once("}}").and_then(|(name, tail)| {
            let (_, value) = values.iter().find(|(n, _)| *n == name)?;
            Some((value, tail))
        });
        match known {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The reader's own choice, `?lang=zh` (`Some(true)`) or `?lang=en`, which outranks
/// `Accept-Language`: the first `lang=` of the query, as typed (not percent-decoded).
/// Any other value is no choice (never an error page), and is never copied into the
/// page: only the request head shows it, escaped like the rest.
fn asked_chinese(head: &[u8]) -> Option<bool> {
    let line = head.split(|&b| b == b'\n').next()?;
    let target = std::str::from_utf8(line).ok()?.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    match query.split('&').find_map(|p| p.strip_prefix("lang="))? {
        "zh" => Some(true),
        "en" => Some(false),
        _ => None,
    }
}

/// Whether the request's `Accept-Language` ranks Chinese (`zh`, `zh-CN`, `zh-Hans`, …)
/// above English: the first of the two among the ranges with the highest weight wins,
/// and `*` or no header means English.
fn prefers_chinese(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let Some(value) = text.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("accept-language")
            .then_some(value)
    }) else {
        return false;
    };
    let mut best: Option<(u32, bool)> = None; // (weight in thousandths, is Chinese)
    for range in value.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        // RFC 9110 §12.4.2: the weight's name is case-insensitive ("Q=0.5"), and a
        // weight that does not parse makes the range count for nothing, not for 1.
        let weight = match parts.find_map(|p| {
            let p = p.trim();
            p.get(..2)
                .filter(|q| q.eq_ignore_ascii_case("q="))
                .map(|_| &p[2..])
        }) {
            None => 1000,
            Some(q) => weight(q.trim()).unwrap_or(0),
        };
        let primary = tag.split('-').next().unwrap_or("");
        let chinese = match primary {
            "zh" => true,
            "en" | "*" => false,
            _ => continue,
        };
        if weight > 0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, chinese));
        }
    }
    best.is_some_and(|(_, chinese)| chinese)
}

/// A weight (`q=0.8`, RFC 9110 §12.4.2) in thousandths, at most 1000: digits with at most
/// one decimal point, the digits past the third decimal ignored; `None` for anything else
/// (a sign, an exponent). In integers: parsing it as an `f32` put about 12 KB of float
/// parsing into the binary.
fn weight(q: &str) -> Option<u32> {
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let value = |n: u32, b: u8| n.saturating_mul(10).saturating_add(u32::from(b - b'0'));
    let whole = whole.bytes().fold(0, value);
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, value);
    Some(
        whole
            .saturating_mul(1000)
            .saturating_add(thousandths)
            .min(1000),
    )
}

/// The request head as the page shows it, with credentials hidden as on the trace
/// (secrets.rs): the page may be on a classroom projector.
fn shown_head(head: &[u8]) -> String {
    let (shown, _) = crate::util::secrets::redact(head);
    let text = String::from_utf8_lossy(&shown);
    text.trim_end().lines().collect::<Vec<_>>().join("\n")
}

/// A JSON string literal (RFC 8259 §7), so also a JavaScript one, that is safe inside
/// `<script>` (no `</script>`): the page's settings and the inspector's answers.
pub(crate) fn js_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_js_char(&mut out, c);
    }
    out.push('"');
    out
}

/// One character of a [`js_string`] literal, escaped if it must be (the inspector
/// escapes a block this way up to a size: inspect.rs).
pub(crate) fn push_js_char(out: &mut String, c: char) {
    match c {
        '"' | '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\n' => out.push_str("\\n"),
        // `</script>` cannot end the script; `&` starts no entity.
        '<' | '>' | '&' => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
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

    /// Names are filled once: a value (the request head) is never searched for names,
    /// and an unknown or unclosed `{{` stays.
    #[test]
    fn fill_copies_values_as_they_are() {
        let values = [("A", "{{B}}"), ("B", "b")];
        assert_eq!(fill("{{A}}-{{B}}-{{C}}-{{", &values), "{{B}}-b-{{C}}-{{");
    }

    #[test]
    fn chinese_only_when_preferred_over_english() {
        let ask = |v: &str| {
            prefers_chinese(format!("GET / HTTP/1.1\r\nAccept-Language: {v}\r\n\r\n").as_bytes())
        };
        assert!(ask("zh-CN,zh;q=0.9,en;q=0.8"));
        assert!(ask("zh-TW"));
        assert!(ask("zh-Hans-CN"));
        assert!(ask("fr, zh;q=0.5"));
        assert!(ask("en;q=0.5, zh;q=0.6"));
        assert!(!ask("en-US,en;q=0.9,zh-CN;q=0.8"));
        assert!(!ask("en, zh"));
        assert!(!ask("de"));
        assert!(!ask("*"));
        assert!(!ask("zh;q=0"));
        // The weight's name in any case, and a weight that does not parse counts for 0.
        assert!(ask("en;Q=0.1, zh;Q=0.9"));
        assert!(!ask("zh;q=banana, en;q=0.2"));
        assert!(!prefers_chinese(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    }

    /// Weights are read exactly, in thousandths, as the f32 they replaced read the
    /// weights browsers send.
    #[test]
    fn weights_in_thousandths() {
        for (q, want) in [
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("0", Some(0)),
            ("0.9", Some(900)),
            ("0.123", Some(123)),
            ("0.1239", Some(123)),
            (".5", Some(500)),
            ("1.", Some(1000)),
            ("2.5", Some(1000)),
            ("99999999999", Some(1000)),
            ("", None),
            (".", None),
            ("0.5.1", None),
            ("-0.5", None),
            ("1e-1", None),
            ("banana", None),
        ] {
            assert_eq!(weight(q), want, "{q:?}");
        }
    }

    #[test]
    fn lang_in_the_query_is_a_choice_only_when_en_or_zh() {
        let ask = |target: &str| asked_chinese(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(ask("/?lang=zh"), Some(true));
        assert_eq!(ask("/inspect?x=1&lang=en"), Some(false));
        assert_eq!(ask("/?lang=zh&lang=en"), Some(true));
        for target in [
            "/",
            "/?lang",
            "/?lang=",
            "/?lang=fr",
            "/?lang=ZH",
            "/?lang=zh-CN",
            "/?slang=zh",
            "/lang=zh",
        ] {
            assert_eq!(ask(target), None, "{target}");
        }
    }

    #[test]
    fn injected_values_are_escaped() {
        assert_eq!(js_string("/echo"), "\"/echo\"");
        assert_eq!(
            js_string("/a\"</script>"),
            "\"/a\\\"\\u003c/script\\u003e\""
        );
        assert_eq!(html_escape("<b>&\"\r\n"), "&lt;b&gt;&amp;&quot;\n");
        assert_eq!(
            shown_head(
                b"GET /?token=t HTTP/1.1\r\nCookie: s=1\r\nauthorization: x\r\nA: b\r\n\r\n"
            ),
            "GET /?token=<hidden: 1 bytes> HTTP/1.1\nCookie: <hidden: 3 bytes>\nauthorization: <hidden: 1 bytes>\nA: b"
        );
    }
}
