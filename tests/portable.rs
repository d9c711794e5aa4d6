//! The code must build on Linux, macOS and Windows (a teacher's laptop), but the tests run
//! on Linux. This is the check every machine can do: each use of a Unix-only API must
//! sit under a `cfg` that keeps it off other platforms. (CI also runs `cargo check` for
//! Windows and macOS, `.ci/portable`, and runs the Windows build under Wine.)
//!
//! The rule, per line that mentions one of [`UNIX_ONLY`]: somewhere above it in the file,
//! at the same or a lesser indentation, in the item that encloses it, there is a
//! `cfg(unix)`, `cfg(target_os = …)` or `cfg(all(target_os …` attribute, or the file
//! starts with one (`#![cfg(…)]`).

use std::fs;
use std::path::Path;

mod common;
use common::rust_files;

/// APIs that do not exist off Unix: using one ungated fails to compile on Windows.
const UNIX_ONLY: &[&str] = &[
    "std::os::unix",
    "libc::",
    "signal_hook::",
    "JoinHandleExt",
    "AsRawFd",
];

/// Things that compile everywhere but fail at run time off Linux (or off Unix): a test
/// that uses one must be gated. Examples may read /proc with a fallback (`push` reads
/// /proc/loadavg or sends 0.0; `loadgen` reports no server CPU), so they are not checked.
const LINUX_AT_RUN_TIME: &[&str] = &[
    "Command::new(\"kill\")",
    "Command::new(\"timeout\")",
    "Command::new(\"sh\")",
    "Command::new(\"sha1sum\")",
    "\"/proc/",
];

fn gate(line: &str) -> bool {
    let l = line.trim_start();
    (l.starts_with("#[cfg(") || l.starts_with("#![cfg(")) && names_a_unix(l)
}

/// A cfg that keeps code to Unix (or one Unix): it names unix or a target_os, and not
/// under a `not(...)`, which would mean the opposite (`cfg(not(unix))` is Windows code).
fn names_a_unix(attrs: &str) -> bool {
    (attrs.contains("unix") || attrs.contains("target_os")) && !attrs.contains("not(")
}

/// Whether the attributes (and comments) directly above line `i` include a gate. An
/// attribute may span lines (`#[cfg(all(\n    test,\n    target_os = "linux"\n))]`).
fn attributes_gate(lines: &[&str], i: usize) -> bool {
    let mut attrs = String::new();
    // How many brackets the lines collected so far close that are not yet opened.
    let mut open = 0i64;
    for l in lines[..i].iter().rev() {
        let t = l.trim_start();
        let closes = t.matches([')', ']']).count() as i64;
        let opens = t.matches(['(', '[']).count() as i64;
        if open == 0 && !(t.starts_with('#') || t.starts_with("//") || closes > opens) {
            break;
        }
        open += closes - opens;
        attrs.insert_str(0, t);
    }
    attrs.contains("cfg(") && names_a_unix(&attrs)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of `text` that use a Unix-only API outside a `cfg` gate.
fn unguarded(text: &str, apis: &[&str]) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    if lines
        .iter()
        .take_while(|l| l.starts_with("//") || l.starts_with("#!") || l.trim().is_empty())
        .any(|l| gate(l))
    {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if !apis.iter().any(|api| code.contains(api)) {
            continue;
        }
        // This line and each item that encloses it (the nearest line above at a smaller
        // indentation, repeatedly): a gate among the attributes directly above any of
        // them counts.
        let mut gated = gate(line) || attributes_gate(&lines, i);
        let mut depth = indent(line);
        for (j, above) in lines[..i].iter().enumerate().rev() {
            if gated || depth == 0 {
                break;
            }
            let t = above.trim_start();
            if t.is_empty() || t.starts_with('}') || t.starts_with('#') || t.starts_with("//") {
                continue;
            }
            if indent(above) < depth {
                depth = indent(above);
                gated = attributes_gate(&lines, j);
            }
        }
        if !gated {
            found.push((i + 1, line.trim().to_string()));
        }
    }
    found
}

#[test]
fn unix_only_calls_are_behind_cfg() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "examples", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut bad = Vec::new();
    for file in &files {
        // This file names the APIs it looks for.
        if file.ends_with("portable.rs") {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        let mut apis = UNIX_ONLY.to_vec();
        if !file.starts_with(root.join("examples")) {
            apis.extend_from_slice(LINUX_AT_RUN_TIME);
        }
        for (n, line) in unguarded(&text, &apis) {
            bad.push(format!(
                "{}:{n}: {line}",
                file.strip_prefix(root).unwrap().display()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "Unix-only calls outside #[cfg(unix)] / #[cfg(target_os = ...)]; gate them (with a plain fallback) so the crate builds on Windows:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_finds_an_ungated_call_and_accepts_a_gated_one() {
    let ungated = "fn f() {\n    let t = std::os::unix::thread::JoinHandleExt;\n}\n";
    assert_eq!(unguarded(ungated, UNIX_ONLY).len(), 1);
    let gated = "#[cfg(unix)]\nfn f() {\n    if x {\n        libc::getpid();\n    }\n}\n";
    assert_eq!(unguarded(gated, UNIX_ONLY), vec![]);
    let nested = "mod m {\n    #[cfg(target_os = \"linux\")]\n    fn f() {\n        libc::getpid();\n    }\n    fn g() {\n        libc::getpid();\n    }\n}\n";
    assert_eq!(
        unguarded(nested, UNIX_ONLY).len(),
        1,
        "{:?}",
        unguarded(nested, UNIX_ONLY)
    );
    let after = "#[cfg(unix)]\nfn f() {}\n\nfn g() {\n    libc::getpid();\n}\n";
    assert_eq!(unguarded(after, UNIX_ONLY).len(), 1);
    let multi = "#[cfg(all(\n    test,\n    target_os = \"linux\"\n))]\nmod t {\n    fn f() {\n        libc::getpid();\n    }\n}\n";
    assert_eq!(unguarded(multi, UNIX_ONLY), vec![]);
}
