//! The walk through the code in the crate docs (src/lib.rs, "How a connection flows")
//! names files and functions a reader will look for: each must exist.

use std::path::Path;

mod common;
use common::rust_files;

/// Every "`file.rs` `name`" pair of the section, in order.
fn hops(lib: &str) -> Vec<(String, String)> {
    let start = lib.find("## How a connection flows").expect("the section");
    let section = &lib[start..];
    let end = section.find("\n// ").unwrap_or(section.len());
    // The doc lines joined, so a pair may be split across two of them.
    let text: String = section[..end]
        .lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .collect::<Vec<_>>()
        .join(" ");
    let ticks: Vec<&str> = text.split('`').collect();
    let mut out = Vec::new();
    // Odd pieces were between backticks; a file followed by a name, one space apart.
    let mut i = 1;
    while i + 2 < ticks.len() {
        let (file, between, name) = (ticks[i], ticks[i + 1], ticks[i + 2]);
        if file.ends_with(".rs") && between == " " && !name.contains(' ') {
            out.push((file.to_string(), name.to_string()));
        }
        i += 2;
    }
    out
}

/// Whether `src/file` defines `name` (`fn`, `struct`, `enum`, `trait`), and for
/// `Type::item`, has an `impl` of `Type` too.
fn defines(src: &str, name: &str) -> bool {
    let (ty, item) = match name.rsplit_once("::") {
        Some((ty, item)) => (Some(ty), item),
        None => (None, name),
    };
    let item_ok = ["fn", "struct", "enum", "trait"].iter().any(|kw| {
        ["(", " ", "<", ";"]
            .iter()
            .any(|after| src.contains(&format!("{kw} {item}{after}")))
    });
    let ty_ok = ty.is_none_or(|ty| {
        src.contains(&format!("impl {ty} "))
            || src.contains(&format!("> {ty}<"))
            || src.contains(&format!("impl {ty}<"))
            || src.contains(&format!("> {ty} "))
            || src.contains(&format!("for {ty} "))
    });
    item_ok && ty_ok
}

#[test]
fn every_hop_of_the_walk_names_a_function_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let hops = hops(&lib);
    assert!(hops.len() >= 20, "only {} hops found: {hops:?}", hops.len());
    for (file, name) in &hops {
        let src = std::fs::read_to_string(root.join("src").join(file))
            .unwrap_or_else(|e| panic!("{file} (before `{name}`): {e}"));
        assert!(defines(&src, name), "{file} has no `{name}`");
    }
}

#[test]
fn a_missing_name_is_found() {
    assert!(defines(
        "impl Room {\n    pub(crate) fn broadcast(&self)",
        "Room::broadcast"
    ));
    assert!(!defines(
        "impl Room {\n    pub(crate) fn broadcast(&self)",
        "Room::gone"
    ));
    assert!(!defines(
        "impl Room {\n    pub(crate) fn broadcast(&self)",
        "Rooms::broadcast"
    ));
    assert!(defines("pub(crate) struct Stream {", "Stream"));
    assert!(defines("pub struct Echo;", "Echo"));
}

/// The parts of `src/`, from the top of the call graph down (lib.rs lists them in this
/// order, and each folder's mod.rs says what it may call): a file may name only its own
/// part and the parts below it.
const PARTS: [&str; 15] = [
    "server", "http", "ws", "shared", "handler", "layers", "room", "client", "guard", "tune",
    "util", "config", "error", "frame", "host",
];

/// Every `crate::part` a source text names before its tests, as (part, line number).
fn parts_named(src: &str) -> Vec<(&'static str, usize)> {
    let code = src.split("#[cfg(test)]").next().unwrap_or(src);
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("");
        // `crate::x` and the first names of a group, `crate::{x, y::z}`.
        for piece in line.split("crate::").skip(1) {
            let names = piece
                .strip_prefix('{')
                .map_or(vec![piece], |g| g.split(',').collect());
            for name in names {
                let first: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(part) = PARTS.iter().find(|p| **p == first) {
                    out.push((*part, n + 1));
                }
            }
        }
    }
    out
}

/// The part a file of `src/` belongs to (`None` for lib.rs and main.rs, the top).
fn part_of(path: &std::path::Path, src: &std::path::Path) -> Option<&'static str> {
    let rel = path.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    PARTS.iter().find(|p| **p == name).copied()
}

/// The architecture holds: no file calls a part above its own (the folders import one
/// way, as `python3 ../shared/tools/modgraph.py --folders` also checks).
#[test]
fn every_part_calls_only_the_parts_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some(part) = part_of(file, &src) else {
            continue;
        };
        let rank = PARTS.iter().position(|p| *p == part).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        for (named, line) in parts_named(&text) {
            if named != part && PARTS.iter().position(|p| *p == named).unwrap() < rank {
                wrong.push(format!("{}:{line} ({part}) calls {named}", file.display()));
            }
        }
    }
    assert!(files.len() > 50, "only {} files found", files.len());
    assert!(
        wrong.is_empty(),
        "calls up the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_call_up_the_layers_is_found() {
    let named = parts_named(
        "use crate::layers::teach::trace;\nuse crate::{util::lock, ws};\n// crate::server\n#[cfg(test)]\nuse crate::http;",
    );
    assert_eq!(named, [("layers", 1), ("util", 2), ("ws", 2)]);
}
