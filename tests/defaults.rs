//! Defaults are written once, in `Config::default()`; the "Defaults and limits" table in
//! docs/reference.md and the binary's `--help` must say the same. Each flag's expected text is made
//! from the value in `Config::default()`, so changing a default without the docs (or the
//! docs without the default) fails here.

use std::collections::BTreeMap;
use std::process::Command;

use tinyws::{Config, format_duration, format_size};

/// For every flag: how the reference table and `--help` write its default, made from `c`.
/// Options with a value say it the same way in both; switches and unset options have
/// their own words (reference cell, phrase in `--help`).
fn expected(c: &Config) -> BTreeMap<&'static str, (String, String)> {
    let same = |v: String| (v.clone(), format!("(default {v}"));
    let mut m = BTreeMap::new();
    m.insert("--bind", same(c.bind.to_string()));
    m.insert("--port", same(c.port.to_string()));
    assert!(c.path.is_none(), "the reference says any path upgrades");
    m.insert("--path", ("any".into(), "(default: any path)".into()));
    m.insert("--max-connections", same(c.max_connections.to_string()));
    for (flag, v) in [
        ("--max-message-size", c.max_message_size),
        ("--max-frame-size", c.max_frame_size),
        ("--max-head-size", c.max_head_size),
        ("--read-buffer-size", c.read_buffer_size),
        ("--write-buffer-size", c.write_buffer_size),
        ("--stack-size", c.stack_size),
        ("--max-backlog", c.max_backlog),
    ] {
        m.insert(flag, same(format_size(v)));
    }
    for (flag, v) in [
        ("--handshake-timeout", c.handshake_timeout),
        ("--ping-interval", c.ping_interval),
        ("--ping-timeout", c.ping_timeout),
        ("--write-timeout", c.write_timeout),
        ("--shutdown-timeout", c.shutdown_timeout),
        ("--stall-timeout", c.stall_timeout),
    ] {
        m.insert(flag, same(format_duration(v)));
    }
    assert!(c.allow_origins.is_empty());
    m.insert(
        "--allow-origin",
        ("same-origin".into(), "(default: same-origin only)".into()),
    );
    assert!(!c.trace && !c.broadcast);
    m.insert("--trace", ("off".into(), "off by default".into()));
    assert!(!c.trace_secrets && !c.trace_quiet && c.trace_only.is_none());
    m.insert("--trace-secrets", ("off".into(), "(off by default".into()));
    m.insert("--trace-quiet", ("off".into(), "off by default)".into()));
    m.insert(
        "--trace-only",
        (
            "every connection".into(),
            "(default: every connection)".into(),
        ),
    );
    assert!(!c.inspect);
    m.insert("--inspect", ("off".into(), "(off by default".into()));
    m.insert(
        "--broadcast",
        ("off (echo)".into(), "(default: echo)".into()),
    );
    assert!(c.protocols.is_empty(), "the reference says no subprotocol");
    m.insert("--protocol", ("none".into(), "(default: none)".into()));
    assert!(!c.rooms);
    m.insert("--rooms", ("off".into(), "off by default)".into()));
    assert!(c.tls_cert.is_none() && c.tls_key.is_none());
    m.insert("--tls-cert", ("off".into(), "with --tls-key".into()));
    m.insert("--tls-key", ("off".into(), "of --tls-cert".into()));
    assert!(c.name.is_none());
    m.insert("--name", ("none".into(), "(default: none)".into()));
    assert!(c.static_dir.is_none() && !c.stdin && !c.stdout);
    m.insert(
        "--static",
        (
            "off".into(),
            "(default: off, only the built-in page)".into(),
        ),
    );
    m.insert("--stdin", ("off".into(), "(default: off)".into()));
    m.insert("--stdout", ("off".into(), "(default: off)".into()));
    m
}

/// The defaults table in docs/reference.md: flag → the default cell without backticks.
fn reference_table() -> BTreeMap<String, String> {
    let reference = std::fs::read_to_string("docs/reference.md").expect("docs/reference.md");
    let start = reference
        .find("| flag | default | what it bounds |")
        .expect("the defaults table in docs/reference.md");
    let mut rows = BTreeMap::new();
    for line in reference[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let default = cells[2].replace('`', "");
        for flag in cells[1].split(',') {
            rows.insert(flag.trim().replace('`', ""), default.clone());
        }
    }
    rows
}

/// `tinyws --help`: flag → its help text, with argh's line wrapping undone.
fn help_texts() -> BTreeMap<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tinyws"))
        .arg("--help")
        .output()
        .expect("run tinyws --help");
    let text = String::from_utf8(out.stdout).expect("utf-8 help");
    let options = text.split("Options:").nth(1).expect("an Options: section");
    let mut help = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in options.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") && line.starts_with("  --") {
            let mut parts = trimmed.splitn(2, char::is_whitespace);
            let flag = parts.next().unwrap_or("").trim_end_matches(',').to_string();
            help.insert(flag.clone(), parts.next().unwrap_or("").trim().to_string());
            current = Some(flag);
        } else if let Some(flag) = &current {
            let entry = help.get_mut(flag).unwrap();
            if !entry.is_empty() {
                entry.push(' ');
            }
            entry.push_str(trimmed);
        }
    }
    help
}

#[test]
fn the_reference_defaults_table_is_config_default() {
    let want = expected(&Config::default());
    let table = reference_table();
    for (flag, (cell, _)) in &want {
        assert_eq!(
            table.get(*flag),
            Some(cell),
            "docs/reference.md defaults table, row {flag}: Config::default() says {cell:?}"
        );
    }
    let extra: Vec<_> = table
        .keys()
        .filter(|f| !want.contains_key(f.as_str()))
        .collect();
    assert!(extra.is_empty(), "rows for unknown flags: {extra:?}");
}

#[test]
fn every_flag_help_states_the_config_default() {
    let want = expected(&Config::default());
    let help = help_texts();
    for (flag, (_, phrase)) in &want {
        let text = help
            .get(*flag)
            .unwrap_or_else(|| panic!("{flag} missing from --help"));
        assert!(
            text.contains(phrase.as_str()),
            "--help for {flag} must contain {phrase:?} (from Config::default()): {text:?}"
        );
    }
    let undocumented: Vec<_> = help
        .keys()
        .filter(|f| !want.contains_key(f.as_str()) && *f != "--version" && *f != "--help")
        .collect();
    assert!(
        undocumented.is_empty(),
        "flags without a row in the defaults table of docs/reference.md: {undocumented:?}"
    );
}

/// main.rs `flag_for` is the one mapping from a `Config` field (what library messages
/// name) to its flag (what the binary adds): argh's rule, `max_frame_size` →
/// `--max-frame-size`, except `allow_origins` → `--allow-origin` and `protocols` →
/// `--protocol`. Every field must have
/// that flag in `--help`, so a new field cannot leave the binary's messages pointing at
/// no flag. The field names come from `Config`'s derived `Debug`.
#[test]
fn every_config_field_has_the_flag_main_rs_names_for_it() {
    let debug = format!("{:?}", Config::default());
    let inner = debug
        .strip_prefix("Config { ")
        .and_then(|d| d.strip_suffix(" }"))
        .expect("Config's derived Debug");
    let fields: Vec<&str> = inner
        .split(", ")
        .filter_map(|kv| kv.split_once(": ").map(|(k, _)| k))
        .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect();
    assert!(fields.len() >= 25, "{fields:?}");
    let help = help_texts();
    for field in fields {
        let field = match field {
            "allow_origins" => "allow_origin",
            "static_dir" => "static",
            "protocols" => "protocol",
            other => other,
        };
        let flag = format!("--{}", field.replace('_', "-"));
        assert!(help.contains_key(&flag), "no {flag} in --help");
    }
}
