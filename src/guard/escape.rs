//! Client text made safe to print: every byte a client chose (a path, a header value, a
//! close reason, a message) goes through [`Escaped`] before it reaches the log, the
//! trace or `--stdout`, so no client can drive the terminal that shows them, forge or
//! split a line, or reorder one with bidirectional-text controls.
//!
//! The escapes are a subset of Rust's string literals, so a reader who knows one knows
//! them all, and each is undone by exactly one rule:
//!
//! | written    | stands for                                                              |
//! |------------|-------------------------------------------------------------------------|
//! | `\\`       | a backslash (so every other `\` starts an escape: the format is reversible) |
//! | `\t` `\n` `\r` `\0` | tab, line feed, carriage return, NUL                           |
//! | `\u{1b}`   | any other escaped character, its code point in lowercase hex: the rest of C0, DEL (`\u{7f}`), C1 (`\u{85}`, the "next line" control, among them), the bidirectional controls U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069, the line and paragraph separators U+2028 and U+2029; in the log and the trace also the backtick (`\u{60}`) |
//! | `\xff`     | one byte that is not part of valid UTF-8 (a path or a header is bytes), two lowercase hex digits, always 80–ff |
//!
//! Everything else (printable ASCII, Chinese, emoji, …) is written as it came.
//!
//! Why the backtick too, in the log: tinyws's own log lines name a `Config` field in
//! backticks and the binary turns it into the flag (`` `stall_timeout` `` →
//! `stall_timeout (--stall-timeout)`, main.rs). With every client backtick escaped, the
//! only backticks in a line are tinyws's own, so that rewriting can never touch client
//! text. `--stdout` has no such markup, and keeps its backticks.

use std::fmt;

/// What else, besides [`is_hostile`] characters, a [`Mode`] escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Log lines and the trace: the backslash and the backtick (see the module docs).
    Log,
    /// `--stdout`: the backslash only; printable text stays as sent.
    // Only the `pipes` layer uses it: a build without that layer leaves it unused.
    #[allow(dead_code)]
    Line,
    /// The trace's last guard over the lines it composed, whose client values were
    /// already escaped where they entered: hostile characters only, backslashes stay
    /// (not reversible, and not meant to be).
    // Only the `teach` layer uses it: a build without that layer leaves it unused.
    #[allow(dead_code)]
    Guard,
}

impl Mode {
    fn escapes(self, c: char) -> bool {
        is_hostile(c)
            || match self {
                Mode::Log => c == '\\' || c == '`',
                Mode::Line => c == '\\',
                Mode::Guard => false,
            }
    }
}

/// Characters no client may put raw into anything tinyws prints: C0, DEL and C1 (Rust's
/// `is_control`: U+0000–U+001F, U+007F–U+009F, which holds U+0085 NEL, a line break to
/// many readers, and U+009B, a one-character CSI), the bidirectional controls that
/// reorder what follows them on a line ("Trojan Source": the Arabic letter mark U+061C,
/// the marks U+200E and U+200F, the embeddings and overrides U+202A–U+202E and the
/// isolates U+2066–U+2069), and the line and paragraph separators U+2028 and U+2029
/// (Python's `splitlines` and many editors break lines there).
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Client bytes, written escaped when formatted (`{}`): nothing is copied or allocated
/// unless the line is printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escaped<'a> {
    bytes: &'a [u8],
    mode: Mode,
}

/// Client text for a log line or the trace: hostile characters, the backslash and the
/// backtick escaped; invalid UTF-8 as `\xff`.
pub(crate) fn client<T: AsRef<[u8]> + ?Sized>(text: &T) -> Escaped<'_> {
    Escaped {
        bytes: text.as_ref(),
        mode: Mode::Log,
    }
}

/// A text message as one `--stdout` line: hostile characters and the backslash escaped,
/// printable text as sent.
// Only the `pipes` layer uses it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) fn line(text: &str) -> Escaped<'_> {
    Escaped {
        bytes: text.as_bytes(),
        mode: Mode::Line,
    }
}

/// A line the trace composed: only hostile characters escaped (see [`Mode::Guard`]).
// Only the `teach` layer uses it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) fn guard(text: &str) -> Escaped<'_> {
    Escaped {
        bytes: text.as_bytes(),
        mode: Mode::Guard,
    }
}

/// Headers for the debug log, as `name: "value"` pairs: credentials hidden, as on the
/// trace and the page; the rest as sent, escaped.
pub(crate) fn shown_headers(headers: &tungstenite::http::HeaderMap) -> String {
    let shown: Vec<String> = headers
        .iter()
        .map(|(name, value)| {
            if crate::util::secrets::is_secret_name(name.as_str()) {
                format!("{name}: <hidden>")
            } else {
                format!("{name}: \"{}\"", client(value.as_bytes()))
            }
        })
        .collect();
    shown.join(", ")
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.bytes.utf8_chunks() {
            let valid = chunk.valid();
            // Runs of characters that need nothing are written whole.
            let mut from = 0;
            for (at, c) in valid.char_indices() {
                if self.mode.escapes(c) {
                    f.write_str(&valid[from..at])?;
                    write_char(f, c)?;
                    from = at + c.len_utf8();
                }
            }
            f.write_str(&valid[from..])?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

fn write_char(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\\' => f.write_str("\\\\"),
        '\t' => f.write_str("\\t"),
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\0' => f.write_str("\\0"),
        c => write!(f, "\\u{{{:x}}}", u32::from(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inverse of [`Mode::Log`] and [`Mode::Line`], as a script reading `--stdout`
    /// would write it (the README shows the same rules in Python): `None` for text no
    /// escaping produces.
    fn unescape(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find('\\') {
            out.extend_from_slice(&rest.as_bytes()[..at]);
            let esc = &rest[at + 1..];
            let (bytes, used): (Vec<u8>, usize) = match esc.as_bytes().first()? {
                b'\\' => (b"\\".to_vec(), 1),
                b't' => (b"\t".to_vec(), 1),
                b'n' => (b"\n".to_vec(), 1),
                b'r' => (b"\r".to_vec(), 1),
                b'0' => (b"\0".to_vec(), 1),
                b'x' => {
                    let hex = esc.get(1..3)?;
                    (vec![u8::from_str_radix(hex, 16).ok()?], 3)
                }
                b'u' => {
                    let end = esc.find('}')?;
                    let hex = esc.get(2..end).filter(|_| esc.starts_with("u{"))?;
                    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                    (c.to_string().into_bytes(), end + 1)
                }
                _ => return None,
            };
            out.extend_from_slice(&bytes);
            rest = &esc[used..];
        }
        out.extend_from_slice(rest.as_bytes());
        Some(out)
    }

    /// (input, as a log line shows it, as `--stdout` shows it)
    const CASES: &[(&[u8], &str, &str)] = &[
        (b"", "", ""),
        (b"hello, world", "hello, world", "hello, world"),
        (
            "温度 21.5 °C 🙂".as_bytes(),
            "温度 21.5 °C 🙂",
            "温度 21.5 °C 🙂",
        ),
        // C0: the named ones, then the rest by code point.
        (b"a\nb", r"a\nb", r"a\nb"),
        (b"a\r\nb", r"a\r\nb", r"a\r\nb"),
        (b"\t", r"\t", r"\t"),
        (b"\0", r"\0", r"\0"),
        (
            b"\x1b[2J\x1b]0;owned\x07",
            r"\u{1b}[2J\u{1b}]0;owned\u{7}",
            r"\u{1b}[2J\u{1b}]0;owned\u{7}",
        ),
        (b"\x0b\x0c\x1f", r"\u{b}\u{c}\u{1f}", r"\u{b}\u{c}\u{1f}"),
        // DEL and C1 (as characters: valid UTF-8), NEL among them.
        (b"\x7f", r"\u{7f}", r"\u{7f}"),
        (
            "\u{80}\u{85}\u{9b}\u{9f}".as_bytes(),
            r"\u{80}\u{85}\u{9b}\u{9f}",
            r"\u{80}\u{85}\u{9b}\u{9f}",
        ),
        // Bidirectional controls, and the line and paragraph separators.
        (
            "\u{61c}\u{200e}\u{200f}".as_bytes(),
            r"\u{61c}\u{200e}\u{200f}",
            r"\u{61c}\u{200e}\u{200f}",
        ),
        (
            "a\u{202e}cba\u{202c}".as_bytes(),
            r"a\u{202e}cba\u{202c}",
            r"a\u{202e}cba\u{202c}",
        ),
        (
            "\u{202a}\u{2066}\u{2069}".as_bytes(),
            r"\u{202a}\u{2066}\u{2069}",
            r"\u{202a}\u{2066}\u{2069}",
        ),
        (
            "a\u{2028}b\u{2029}".as_bytes(),
            r"a\u{2028}b\u{2029}",
            r"a\u{2028}b\u{2029}",
        ),
        // Their neighbours are ordinary text.
        (
            "\u{a0}\u{200d}\u{202f}\u{2065}\u{206a}".as_bytes(),
            "\u{a0}\u{200d}\u{202f}\u{2065}\u{206a}",
            "\u{a0}\u{200d}\u{202f}\u{2065}\u{206a}",
        ),
        // The backslash, so that a typed `\n` and a newline differ.
        (br"a\nb", r"a\\nb", r"a\\nb"),
        (br"\u{1b}", r"\\u{1b}", r"\\u{1b}"),
        // The backtick: markup in the log, text on --stdout.
        (
            b"http://evil`max_connections`.example",
            r"http://evil\u{60}max_connections\u{60}.example",
            "http://evil`max_connections`.example",
        ),
        // Invalid UTF-8, byte by byte; valid text around it stays.
        (b"/a\xffb", r"/a\xffb", r"/a\xffb"),
        (b"\xc3\x28", r"\xc3(", r"\xc3("),
        (b"\xe2\x80", r"\xe2\x80", r"\xe2\x80"),
        (b"\xc2\x85", r"\u{85}", r"\u{85}"),
        (b"\xed\xa0\x80", r"\xed\xa0\x80", r"\xed\xa0\x80"),
    ];

    #[test]
    fn each_class_is_escaped_as_documented() {
        for &(input, log, stdout) in CASES {
            assert_eq!(client(input).to_string(), log, "log: {input:?}");
            if let Ok(text) = std::str::from_utf8(input) {
                assert_eq!(line(text).to_string(), stdout, "stdout: {input:?}");
            }
        }
    }

    #[test]
    fn each_case_reads_back() {
        for &(input, log, stdout) in CASES {
            assert_eq!(unescape(log).as_deref(), Some(input), "{log:?}");
            if std::str::from_utf8(input).is_ok() {
                assert_eq!(unescape(stdout).as_deref(), Some(input), "{stdout:?}");
            }
        }
    }

    #[test]
    fn the_guard_escapes_only_what_acts_on_a_terminal() {
        assert_eq!(
            guard("ok  a\\b `x` \r\u{202e}").to_string(),
            r"ok  a\b `x` \r\u{202e}"
        );
    }

    /// Characters that need escaping often, among any others.
    fn text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                '\\', '`', '\n', '\r', '\0', '\x1b', '\u{7f}', '\u{85}', '\u{9b}', '\u{61c}',
                '\u{200f}', '\u{202e}', '\u{2066}', '\u{2028}', '\u{2029}', 'u', '{', 'x', 'a',
                '中',
            ]),
        ];
        proptest::collection::vec(c, 0..40).prop_map(String::from_iter)
    }

    /// Any bytes: valid text and broken UTF-8 mixed.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            text().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn any_bytes_read_back_and_print_no_hostile_character(bytes in bytes()) {
            let shown = client(&bytes).to_string();
            prop_assert_eq!(unescape(&shown), Some(bytes));
            prop_assert!(!shown.chars().any(|c| is_hostile(c) || c == '`'), "{:?}", shown);
        }

        #[test]
        fn any_text_reads_back_as_one_printable_line(text in text()) {
            let shown = line(&text).to_string();
            prop_assert_eq!(unescape(&shown), Some(text.into_bytes()));
            prop_assert!(!shown.chars().any(is_hostile), "{:?}", shown);
            prop_assert_eq!(shown.lines().count(), usize::from(!shown.is_empty()));
        }
    }
}
