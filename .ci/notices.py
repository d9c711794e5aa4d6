#!/usr/bin/env python3
"""The licence notices of the crates compiled into each release binary.

    python3 .ci/notices.py OUT BINARY=TARGET[:FEATURES] ...

For each binary, `cargo metadata --filter-platform TARGET --features FEATURES` gives the
dependency graph; the crates reached from tinyws through normal dependencies (not build
scripts', tests' or proc macros', which run in the compiler) are the ones linked in. OUT lists each crate once, with its
licence expression, the binaries it is in, and the text of every licence file the
crate ships (LICENSE*, LICENCE*, COPYING*, NOTICE*, and its `license-file`), as MIT,
Apache-2.0, ISC and BSD require of binary copies. A crate that ships no licence file
fails the step: its notice would be missing.
"""

import json
import os
import subprocess
import sys

PREFIXES = ("license", "licence", "copying", "notice")


def graph(target, features):
    cmd = ["cargo", "metadata", "--format-version", "1", "--locked",
           "--filter-platform", target]
    if features:
        cmd += ["--features", features]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)


def bundled(meta):
    """Package ids reached from the root through normal dependencies, proc macros and
    what they use left out: they run in the compiler and are not linked in."""
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    macros = {p["id"] for p in meta["packages"]
              if any("proc-macro" in t["kind"] for t in p["targets"])}
    root = meta["resolve"]["root"]
    seen, todo = set(), [root]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            normal = any(k["kind"] is None for k in dep["dep_kinds"])
            if normal and dep["pkg"] not in seen and dep["pkg"] not in macros:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    return seen


def licence_files(pkg):
    folder = os.path.dirname(pkg["manifest_path"])
    names = sorted(f for f in os.listdir(folder) if f.lower().startswith(PREFIXES)
                   and os.path.isfile(os.path.join(folder, f)))
    if pkg.get("license_file") and os.path.basename(pkg["license_file"]) not in names:
        names.append(pkg["license_file"])
    return [(n, open(os.path.join(folder, n), encoding="utf-8", errors="replace").read())
            for n in names]


def main():
    out, specs = sys.argv[1], sys.argv[2:]
    packages, used_by = {}, {}
    for spec in specs:
        binary, _, rest = spec.partition("=")
        target, _, features = rest.partition(":")
        meta = graph(target, features)
        by_id = {p["id"]: p for p in meta["packages"]}
        for pid in bundled(meta):
            packages[pid] = by_id[pid]
            used_by.setdefault(pid, []).append(binary)
    missing = []
    with open(out, "w", encoding="utf-8") as f:
        f.write("Licence notices of the crates compiled into the tinyws binaries in this\n"
                "folder. tinyws itself: MIT OR Apache-2.0 (LICENSE-MIT, LICENSE-APACHE).\n"
                f"{len(packages)} crates; each lists the binaries it is in.\n")
        for pid in sorted(packages, key=lambda p: (packages[p]["name"], packages[p]["version"])):
            pkg = packages[pid]
            files = licence_files(pkg)
            if not files:
                missing.append(f"{pkg['name']} {pkg['version']}")
            bins = "all" if len(used_by[pid]) == len(specs) else ", ".join(used_by[pid])
            f.write(f"\n{'=' * 78}\n{pkg['name']} {pkg['version']}\n"
                    f"licence: {pkg.get('license') or 'see the files below'}\nin: {bins}\n")
            for name, text in files:
                f.write(f"\n--- {name}\n\n{text.rstrip()}\n")
    if missing:
        sys.exit(f"no licence file shipped by: {', '.join(missing)}")
    print(f"   {out}: {len(packages)} crates")


if __name__ == "__main__":
    main()
