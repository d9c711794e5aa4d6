#!/usr/bin/env python3
"""Does a macOS binary carry a valid ad-hoc code signature?

    python3 .ci/macho_signature.py FILE [--require]

On Apple silicon, macOS refuses to run an arm64 binary without a code signature
("killed: 9"); an ad-hoc one (no certificate: what Apple's and zig's linkers write) is
enough. A tool that changes the file after linking, such as a `strip` run afterwards,
invalidates it. This reads the Mach-O load commands, finds LC_CODE_SIGNATURE, reads the
CodeDirectory in its SuperBlob and recomputes the hash of every page it covers, so it
tells a signature that matches the bytes shipped from a missing or stale one.

It also lists the dynamic libraries the binary loads and fails on any that macOS does
not ship (outside /usr/lib and /System/Library).

What it does not check: the requirements and entitlements blobs, and whether macOS
itself accepts the file (that needs a Mac). With --require, no signature is a failure;
without it (x86-64 binaries, which macOS runs unsigned) it is reported.
Structures: Apple's <mach-o/loader.h> and cs_blobs.h (xnu).
"""

import hashlib
import struct
import sys

MH_MAGIC_64 = 0xFEEDFACF
LC_CODE_SIGNATURE = 0x1D
LC_LOAD_DYLIB = 0xC
LC_LOAD_WEAK_DYLIB = 0x18000018
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSSLOT_CODEDIRECTORY = 0
CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000
HASHES = {1: hashlib.sha1, 2: hashlib.sha256}
CPUS = {0x0100000C: "arm64", 0x01000007: "x86_64"}


def fail(msg):
    print(f"{sys.argv[1]}: {msg}", file=sys.stderr)
    sys.exit(1)


def load_commands(data):
    """(cpu name, the bytes of the embedded signature or None, the dylibs it loads)."""
    magic, cpu, _sub, _ftype, ncmds, _size, _flags = struct.unpack_from("<7I", data, 0)
    if magic != MH_MAGIC_64:
        fail(f"not a 64-bit Mach-O file (magic {magic:#x})")
    blob, dylibs = None, []
    off = 32  # sizeof(struct mach_header_64)
    for _ in range(ncmds):
        cmd, cmdsize = struct.unpack_from("<2I", data, off)
        if cmd == LC_CODE_SIGNATURE:
            dataoff, datasize = struct.unpack_from("<2I", data, off + 8)
            blob = data[dataoff:dataoff + datasize]
        elif cmd in (LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB):
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            name = data[off + name_off:off + cmdsize].split(b"\0")[0].decode()
            dylibs.append(name)
        off += cmdsize
    return CPUS.get(cpu, hex(cpu)), blob, dylibs


def code_directory(blob):
    magic, _length, count = struct.unpack_from(">3I", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        fail(f"LC_CODE_SIGNATURE points at no SuperBlob (magic {magic:#x})")
    for i in range(count):
        slot, offset = struct.unpack_from(">2I", blob, 12 + 8 * i)
        if slot == CSSLOT_CODEDIRECTORY:
            return blob[offset:]
    fail("the signature has no CodeDirectory")


def verify(data, cd):
    (magic, _length, _version, flags, hash_off, ident_off, _nspecial, ncode, code_limit,
     hash_size, hash_type, _platform, page_log2) = struct.unpack_from(">9I4B", cd, 0)
    if magic != CSMAGIC_CODEDIRECTORY:
        fail(f"bad CodeDirectory magic {magic:#x}")
    if hash_type not in HASHES:
        fail(f"unknown hash type {hash_type}")
    page = 1 << page_log2
    for i in range(ncode):
        chunk = data[i * page:min((i + 1) * page, code_limit)]
        want = cd[hash_off + i * hash_size:hash_off + (i + 1) * hash_size]
        if HASHES[hash_type](chunk).digest()[:hash_size] != want:
            fail(f"page {i} of {ncode} does not match its hash: the file changed after "
                 "it was signed (a strip after linking?)")
    ident = cd[ident_off:cd.index(b"\0", ident_off)].decode()
    kind = "ad-hoc" if flags & CS_ADHOC else "certificate"
    if flags & CS_LINKER_SIGNED:
        kind += ", linker-signed"
    return f"{kind} signature, identifier {ident}, {ncode} pages of {page} B all match"


def main():
    data = open(sys.argv[1], "rb").read()
    cpu, blob, dylibs = load_commands(data)
    # What every Mac has; anything else would have to be shipped beside the binary.
    foreign = [d for d in dylibs if not d.startswith(("/usr/lib/", "/System/Library/"))]
    if foreign:
        fail(f"loads libraries macOS does not have: {foreign}")
    print(f"{cpu}: loads {', '.join(dylibs)}")
    if blob is None:
        if "--require" in sys.argv:
            fail(f"{cpu}: no LC_CODE_SIGNATURE: macOS on Apple silicon will not run it")
        print(f"{cpu}: not signed (macOS runs unsigned x86-64 binaries)")
        return
    print(f"{cpu}: {verify(data, code_directory(blob))}")


if __name__ == "__main__":
    main()
