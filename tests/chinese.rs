//! The Chinese docs say what the English ones say, in one set of words.
//!
//! Terms: the glossary (`docs/glossary.zh.md`) is the one list of Chinese terms; every
//! Chinese file (README.zh.md, docs/*.zh.md, the Chinese page) must avoid the words its
//! "不用" column rejects, in its prose (code blocks and inline code show what programs
//! print, and stay as they are). A drifting synonym (应答 for 响应, 负载 for 载荷, 密钥 for a
//! key that is no secret) fails here with its file and line.
//!
//! Coverage: README.zh.md and docs/reference.zh.md carry what a Chinese teacher needs from
//! README.md and docs/reference.md (every flag, every example, the inspector's limits,
//! the defaults table's values), and no Chinese lesson page sends its reader to an
//! English-only table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const GLOSSARY: &str = include_str!("../docs/glossary.zh.md");
const README: &str = include_str!("../README.md");
const README_ZH: &str = include_str!("../README.zh.md");
const REFERENCE: &str = include_str!("../docs/reference.md");
const REFERENCE_ZH: &str = include_str!("../docs/reference.zh.md");

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
    let mut files = vec![
        root.join("README.zh.md"),
        root.join("src/layers/teach/page.zh.html"),
    ];
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

/// Every `--flag` named in `text` (a word starting `--` followed by a lower-case letter).
fn flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w[2..].starts_with(|c: char| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_flag_the_english_docs_name_is_in_the_chinese_ones() {
    // tinyws's own flags: the defaults table has them all (tests/defaults.rs checks it
    // against --help); cargo's flags in the README are not the teacher's business here.
    let tinyws = defaults(REFERENCE, "| flag | default | what it bounds |");
    let zh = flags(&format!("{README_ZH}{REFERENCE_ZH}"));
    let missing: Vec<_> = flags(&format!("{README}{REFERENCE}"))
        .into_iter()
        .filter(|f| tinyws.contains_key(f) && !zh.contains(f))
        .collect();
    assert!(
        missing.is_empty(),
        "flags only the English docs explain: {missing:?}"
    );
}

#[test]
fn every_example_the_readme_names_is_in_the_chinese_readme() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut named = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if README.contains(&format!("`{name}`")) {
            named += 1;
            assert!(
                README_ZH.contains(&format!("`{name}`")),
                "README.md names the example {name}; README.zh.md does not"
            );
        }
    }
    assert!(
        named >= 7,
        "README.md names {named} examples: is the parser broken?"
    );
}

/// What the English README and reference say about the page's inspector, which a teacher
/// with thirty students needs: records kept 2 minutes, a page counting twice, the sizes.
#[test]
fn the_chinese_readme_has_the_inspector_notes_and_the_sensor_example() {
    for (english, chinese) in [
        ("each freed 2 minutes", "2 分钟"),
        ("a connected page counts twice", "一个页面算两个连接"),
        ("the newest 32 KiB", "32 KiB"),
        ("at most 64 connections", "最多 64 个连接"),
        ("`sensor`", "examples/sensor.rs"),
        (
            "sensor-script | tinyws --broadcast --stdin",
            "--broadcast --stdin",
        ),
    ] {
        assert!(
            README.contains(english) || REFERENCE.contains(english),
            "the English docs no longer say {english:?}: update this test and README.zh.md"
        );
        assert!(
            README_ZH.contains(chinese),
            "README.zh.md lacks {chinese:?} ({english})"
        );
    }
    // The README's program, byte for byte: examples/echo.rs, compiled by tests/examples.rs.
    let echo = include_str!("../examples/echo.rs");
    let code = &echo[echo.find("use tinyws").unwrap()..];
    assert!(README_ZH.contains(&format!("```rust\n{code}```")));
}

/// The defaults table of docs/reference.md: flag → default cell (backticks removed).
fn defaults(doc: &str, header: &str) -> BTreeMap<String, String> {
    let start = doc
        .find(header)
        .unwrap_or_else(|| panic!("no {header:?} table"));
    let mut rows = BTreeMap::new();
    for line in doc[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        for flag in cells[1].split([',', '、']) {
            rows.insert(flag.trim().replace('`', ""), cells[2].replace('`', ""));
        }
    }
    rows
}

/// The Chinese table has every flag of the English one (which tests/defaults.rs checks
/// against Config::default()), and the same value wherever the default is a number.
#[test]
fn the_chinese_defaults_table_says_what_the_english_one_says() {
    let en = defaults(REFERENCE, "| flag | default | what it bounds |");
    let zh = defaults(REFERENCE_ZH, "| 参数 | 默认值 | 限制的是什么 |");
    assert_eq!(en.keys().collect::<Vec<_>>(), zh.keys().collect::<Vec<_>>());
    for (flag, value) in &en {
        if value.starts_with(|c: char| c.is_ascii_digit()) {
            assert_eq!(&zh[flag], value, "docs/reference.zh.md, row {flag}");
        }
    }
}

/// The lesson pages send a Chinese reader to Chinese tables: a link to the English
/// reference from README.zh.md or docs/{handshake,frames,classroom}.zh.md is a defect.
/// (docs/reference.zh.md itself points to the English one for the parts it summarises.)
#[test]
fn chinese_pages_link_the_chinese_reference() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for (name, text) in [
        ("README.zh.md", README_ZH.to_string()),
        ("handshake.zh.md", read(&docs.join("handshake.zh.md"))),
        ("frames.zh.md", read(&docs.join("frames.zh.md"))),
        ("classroom.zh.md", read(&docs.join("classroom.zh.md"))),
    ] {
        for bad in ["(reference.md", "(docs/reference.md", "README 中的表格"] {
            assert!(!text.contains(bad), "{name} sends its reader to {bad:?}");
        }
    }
    assert!(README_ZH.contains("(docs/reference.zh.md"));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
