//! docs/embedded.md's cross-building commands are the ones CI runs: `.ci/dist` takes the
//! first `sh` block under "## Cross-building for ARM boards" out of the page and runs it
//! unchanged, then ships what it built (and `.ci/platforms` runs those files under
//! qemu-user). This checks both ends of that contract, so neither the page nor the
//! script can drift alone: the block builds every board binary statically, installs the
//! linkers it names, and the script still extracts, runs and ships exactly that block.

use std::fs;

const HEADING: &str = "## Cross-building for ARM boards";

/// The board binaries: target, the linker the block must set, the Debian package that
/// provides it, and where `.ci/dist` copies the result.
const BOARDS: &[(&str, &str, &str, &str)] = &[
    (
        "aarch64-unknown-linux-musl",
        "aarch64-linux-gnu-gcc",
        "gcc-aarch64-linux-gnu",
        "tinyws-linux-aarch64",
    ),
    (
        "armv7-unknown-linux-gnueabihf",
        "arm-linux-gnueabihf-gcc",
        "gcc-arm-linux-gnueabihf",
        "tinyws-linux-armv7",
    ),
];

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first ```sh block under HEADING, as `.ci/dist`'s awk reads it.
fn block(page: &str) -> String {
    let section = page
        .split("\n## ")
        .find(|s| s.starts_with(&HEADING[3..]))
        .unwrap_or_else(|| panic!("docs/embedded.md has no {HEADING:?}"));
    let start = section
        .find("\n```sh\n")
        .unwrap_or_else(|| panic!("no ```sh block under {HEADING:?}"))
        + "\n```sh\n".len();
    let len = section[start..].find("\n```").expect("an unclosed block");
    section[start..start + len].to_string()
}

/// The block's commands with their continuation lines joined.
fn commands(block: &str) -> Vec<String> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn env_name(target: &str) -> String {
    target.to_uppercase().replace('-', "_")
}

#[test]
fn the_block_builds_every_board_binary_statically() {
    let cmds = commands(&block(&read("docs/embedded.md")));
    let install = cmds
        .iter()
        .find(|c| c.starts_with("apt-get install"))
        .expect("the block installs its linkers");
    let add = cmds
        .iter()
        .find(|c| c.starts_with("rustup target add"))
        .expect("the block adds the targets");
    for (target, linker, package, _) in BOARDS {
        assert!(
            install.contains(package),
            "{package} not installed: {install}"
        );
        assert!(add.contains(target), "{target} not added: {add}");
        let build = cmds
            .iter()
            .find(|c| c.ends_with(&format!("cargo build --release --locked --target {target}")))
            .unwrap_or_else(|| panic!("no release build for {target} in {cmds:#?}"));
        let var = format!("CARGO_TARGET_{}_LINKER={linker} ", env_name(target));
        assert!(
            build.starts_with(&var) || build.contains(&format!(" {var}")),
            "{build}"
        );
        // Static: musl targets are by default; a glibc one needs crt-static.
        if target.ends_with("-gnueabihf") {
            let flags = format!(
                "CARGO_TARGET_{}_RUSTFLAGS=\"-C target-feature=+crt-static\"",
                env_name(target)
            );
            assert!(build.contains(&flags), "{target} not static: {build}");
        } else {
            assert!(target.contains("-musl"), "{target}");
        }
    }
    // CI runs it as root; a board owner's machine may need sudo, which the page says.
    assert!(cmds.iter().all(|c| !c.starts_with("sudo")), "{cmds:#?}");
}

#[test]
fn ci_dist_runs_that_block_and_ships_its_binaries() {
    let dist = read(".ci/dist");
    assert!(
        dist.contains(&format!("s = ($0 == \"{HEADING}\")")),
        ".ci/dist does not read the block under {HEADING:?}"
    );
    assert!(
        dist.contains("bash -euo pipefail \"$block\""),
        ".ci/dist does not run the block"
    );
    for (target, _, _, shipped) in BOARDS {
        let copy = format!("cp target/{target}/release/tinyws \"$dist/{shipped}\"");
        assert!(
            dist.contains(&copy),
            ".ci/dist does not ship {target}: {copy}"
        );
    }
    // And .ci/platforms runs each under qemu-user.
    let platforms = read(".ci/platforms");
    for (emulator, (_, _, _, shipped)) in ["qemu-aarch64-static", "qemu-arm-static"]
        .iter()
        .zip(BOARDS)
    {
        assert!(
            platforms.contains(&format!("{emulator} \"$dist/{shipped}\"")),
            ".ci/platforms does not run {shipped} under {emulator}"
        );
    }
}

#[test]
fn the_page_says_what_the_armv6_boards_get() {
    let page = read("docs/embedded.md");
    let row = page
        .lines()
        .find(|l| l.starts_with("| none here | ARMv6 |"))
        .expect("a row for the ARMv6 boards");
    for board in ["Raspberry Pi 1", "Zero and Zero W", "Illegal instruction"] {
        assert!(row.contains(board), "{board} missing: {row}");
    }
}
