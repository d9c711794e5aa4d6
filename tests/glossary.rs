//! The Chinese glossary (`docs/glossary.zh.md`) is the one list of Chinese terms: every
//! Chinese file (README.zh.md, docs/*.zh.md, the Chinese page) must avoid the words its
//! "不用" column rejects, in its prose (code blocks and inline code show what programs
//! print, and stay as they are). A drifting synonym (应答 for 响应, 负载 for 载荷, 密钥 for a
//! key that is no secret) fails here with its file and line.

use std::path::{Path, PathBuf};

const GLOSSARY: &str = include_str!("../docs/glossary.zh.md");

/// The glossary's rows: (English, 中文, the words it rejects).
fn rows() -> Vec<(String, String, Vec<String>)> {
    GLOSSARY
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| English"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 7, "a glossary row has 5 cells: {l}");
            let avoid = match cells[4] {
                "—" => Vec::new(),
                words => words.split('、').map(str::to_string).collect(),
            };
            (cells[1].to_string(), cells[2].to_string(), avoid)
        })
        .collect()
}

/// Every Chinese file but the glossary itself (which names the rejected words).
fn chinese_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.zh.md"), root.join("src/page.zh.html")];
    let docs = std::fs::read_dir(root.join("docs")).unwrap();
    for entry in docs {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".zh.md") && name != "glossary.zh.md" {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text with code (``` blocks, `inline`, <pre> and <code>) blanked out, lines kept.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            out.push('\n');
            continue;
        }
        if !in_fence {
            out.push_str(line);
        }
        out.push('\n');
    }
    let out = blank_between(&out, "`", "`");
    let out = blank_between(&out, "<pre", "</pre>");
    blank_between(&out, "<code", "</code>")
}

/// Each span from `open` to the next `close` replaced by spaces (newlines kept).
fn blank_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        out.push_str(&rest[..at]);
        let after = &rest[at + open.len()..];
        let end = after.find(close).map_or(after.len(), |e| e + close.len());
        let span = &rest[at..at + open.len() + end];
        out.extend(span.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_chinese_file_uses_the_glossary_terms() {
    let rows = rows();
    assert!(
        rows.len() >= 30,
        "the glossary lost its rows: {}",
        rows.len()
    );
    let mut found = Vec::new();
    for file in chinese_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in prose(&text).lines().enumerate() {
            for (english, chinese, avoid) in &rows {
                for word in avoid.iter().filter(|w| line.contains(w.as_str())) {
                    found.push(format!(
                        "{}:{}: {word:?} for {english}: the glossary says {chinese:?}",
                        file.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The two keys of the protocol get distinct names, and neither suggests cryptography:
/// the handshake's key is a public nonce, the masking key travels in clear.
#[test]
fn the_two_keys_have_distinct_names_and_neither_is_a_secret() {
    let term = |english: &str| -> String {
        rows()
            .into_iter()
            .find(|(e, _, _)| e == english)
            .unwrap_or_else(|| panic!("no glossary row for {english}"))
            .1
    };
    let (key, masking) = (term("`Sec-WebSocket-Key`"), term("masking key"));
    assert_ne!(key, masking);
    for name in [&key, &masking] {
        assert!(!name.contains("密钥"), "{name}");
    }
}

#[test]
fn prose_leaves_out_code() {
    let text = "应答 `应答` x\n```\n应答\n```\n<pre>应答\n应答</pre><code>应答</code>响应\n";
    let p = prose(text);
    assert_eq!(p.matches("应答").count(), 1, "{p}");
    assert!(p.contains("响应"));
    assert_eq!(p.lines().count(), text.lines().count());
}
