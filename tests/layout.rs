//! The walk through the code in the crate docs (src/lib.rs, "How a connection flows")
//! names files and functions a reader will look for: each must exist.

use std::path::Path;

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
