#!/usr/bin/env python3
"""The platform smoke suite: one tinyws binary, started the way its platform runs it
(natively, under qemu-user, under Wine), checked over loopback with a real client
(Python `websockets`) and raw sockets. `.ci/platforms` runs it against each binary that
`.ci/dist` built.

    python3 tests/smoke.py [--signal TERM|INT] [--tls] -- COMMAND...
    python3 tests/smoke.py --board -- COMMAND...

COMMAND starts tinyws, e.g. `qemu-aarch64-static target/dist/tinyws-linux-aarch64`; the
suite adds `--bind 127.0.0.1 --port 0` and its flags. The checks: echo of a text, a
binary and a fragmented message, a message over the limit closed with 1009, a plain GET
answered 426, the page on `/`, 100 idle connections held while a new client echoes, and
a graceful shutdown on the signal (every held connection gets close 1001, exit code 0).
`--tls` also echoes over `wss://` and fetches the page over `https://` (needs openssl).

`--board` is the 32-bit board scene instead, for a native binary: under a 256 MiB
address-space limit (`prlimit --as`), 1,000 idle connections held with caps that fit
while a client echoes; then, with the default caps, the memory budget's 503 instead of
an abort.

One line per check on stdout; the first failure prints why (for a client call: which one,
connect, send, recv or close, and what it raised) with the server's last log lines, and
exits 1. Every wait has a timeout (generous: qemu-user and Wine are slow to start).

The echo and over-limit checks use the `websockets` asyncio client, not its threaded
(sync) one: the sync client reads in a thread of its own while the caller writes, and
over `wss://` that puts two threads in one OpenSSL session at once, which OpenSSL does not
support. In TLS 1.3 the server's NewSessionTicket messages (RFC 8446 §4.6.1) arrive just
as the client writes its upgrade request, and now and then the request never reaches
the wire (the server closes at its handshake timeout) or the client's OpenSSL fails the
connection (UNEXPECTED_MESSAGE). asyncio drives the whole session from one thread. Plain
sockets have no such state: the other checks keep the sync client over `ws://`.
"""

import argparse
import asyncio
import os
import queue
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

TIMEOUT = 60.0
# asyncio's own before Python 3.11, the built-in one since.
TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()
AS_LIMIT = 256 << 20
# Caps whose worst case fits 1,000 connections in 256 MiB (docs/embedded.md).
BOARD_CAPS = ["--max-message-size", "16KiB", "--max-frame-size", "16KiB",
              "--read-buffer-size", "8KiB"]


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


class Server:
    """tinyws as a child process, its log (stderr) followed line by line."""

    # Every server started, newest last: a failure report shows the last one's log.
    started = []

    def __init__(self, command, flags, cwd=None):
        Server.started.append(self)
        env = dict(os.environ, RUST_LOG="info")
        self.proc = subprocess.Popen(
            command + ["--bind", "127.0.0.1", "--port", "0"] + flags,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, cwd=cwd, text=True, errors="replace")
        self.lines = queue.Queue()
        self.log = []
        self.follower = threading.Thread(target=self._follow, daemon=True)
        self.follower.start()
        line = self.wait_log("listening on ")
        m = re.search(r"listening on wss?://([0-9.]+):([0-9]+)/", line)
        check(m, f"no address in {line!r}")
        self.addr = (m.group(1), int(m.group(2)))
        self.url_host = f"{m.group(1)}:{m.group(2)}"

    def _follow(self):
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_log(self, needle):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise Failed(f"no log line with {needle!r} within {TIMEOUT} s") from None
            if line is None:
                raise Failed(f"tinyws exited ({self.proc.wait()}) before {needle!r}; "
                             f"log: {self.log[-5:]}")
            self.log.append(line)
            if needle in line:
                return line

    def stop(self, sig):
        """Sends `sig` and returns the exit code; kills it and fails after the timeout."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failed(f"still running {TIMEOUT} s after {sig.name}") from None

    def drain_log(self):
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.log
            if line is None:
                return self.log
            self.log.append(line)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, n):
        """The last `n` lines of its log; all of them once it has exited."""
        if self.proc.poll() is not None:
            self.follower.join(timeout=5)
        return self.drain_log()[-n:]


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise Failed(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_head(s):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        b = s.recv(1)
        check(b, f"closed after {head!r}")
        head += b
    return head.decode("latin-1")


def read_to_end(s):
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data.decode("utf-8", "replace")


def http(addr, request, wrap=None):
    with socket.create_connection(addr, timeout=TIMEOUT) as raw:
        s = wrap(raw) if wrap else raw
        s.sendall(request.encode())
        return read_to_end(s)


def upgrade(addr):
    """A raw WebSocket connection: (socket, the answer's head)."""
    s = socket.create_connection(addr, timeout=TIMEOUT)
    s.sendall(UPGRADE)
    return s, read_head(s)


def hold(addr, n):
    held = []
    for i in range(n):
        s, head = upgrade(addr)
        check(head.startswith("HTTP/1.1 101 "), f"connection {i + 1} of {n}: {head!r}")
        held.append(s)
    return held


def read_close_code(s):
    """Reads server frames (unmasked, RFC 6455 §5.1) up to a close; returns its code."""
    while True:
        b0, b1 = recv_exact(s, 2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(recv_exact(s, 2), "big")
        elif n == 127:
            n = int.from_bytes(recv_exact(s, 8), "big")
        payload = recv_exact(s, n)
        if b0 & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


def send_close(s, code):
    """A masked close frame (RFC 6455 §5.3: client frames are masked)."""
    mask = os.urandom(4)
    body = code.to_bytes(2, "big")
    s.sendall(bytes([0x88, 0x80 | len(body)]) + mask
              + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))


def ws(url, **kw):
    """The threaded client, for `ws://` only (the module's docstring says why)."""
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None, **kw)


class Calls:
    """The client call under way in a check (connect, send, recv, close): a failure names
    it, with what it raised and why (a ConnectionClosed's cause is the socket's error)."""

    def __init__(self, name):
        self.name, self.now = name, "connect"

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if isinstance(e, (OSError, WebSocketException) + TIMEOUTS):
            cause = f" (caused by {e.__cause__!r})" if e.__cause__ else ""
            what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise Failed(f"{self.name}: {self.now} raised {what}{cause}") from e


def ws_async(url, **kw):
    return connect_async(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None,
                         **kw)


async def bounded(call):
    return await asyncio.wait_for(call, TIMEOUT)


def echo_checks(url, limit_bytes, **kw):
    scheme = url.split(":")[0]
    asyncio.run(echo(url, scheme, **kw))
    print(f"   ok: echo of text, binary (4 KiB), fragmented (3 frames) via {scheme}://")
    code = asyncio.run(over_limit(url, scheme, limit_bytes, **kw))
    check(code == 1009, f"a message over the limit: close code {code}, expected 1009")
    print(f"   ok: a {limit_bytes + 36 * 1024} byte message closed with 1009")


async def echo(url, scheme, **kw):
    with Calls(f"echo via {scheme}://") as calls:
        async with ws_async(url, **kw) as c:
            text = "héllo, tinyws ✓"
            data = bytes(range(256)) * 16
            # The last is three frames, one message (§5.4).
            for sent, got, what in [(text, text, "text"), (data, data, "binary"),
                                    (["frag", "mented ", "message"], "fragmented message",
                                     "fragmented")]:
                calls.now = f"send ({what})"
                await bounded(c.send(sent))
                calls.now = f"recv ({what})"
                check(await bounded(c.recv()) == got, f"{what} echo")
            calls.now = "close"


async def over_limit(url, scheme, limit_bytes, **kw):
    with Calls(f"over the limit via {scheme}://") as calls:
        async with ws_async(url, **kw) as c:
            try:
                calls.now = "send"
                await bounded(c.send(b"x" * (limit_bytes + 36 * 1024)))
                calls.now = "recv"
                await bounded(c.recv())
                code = "none (the message was echoed)"
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            except TIMEOUTS:
                code = f"none (no close within {TIMEOUT} s of the {calls.now})"
            calls.now = "close"
    return code


def http_checks(addr, wrap=None):
    a = http(addr, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", wrap)
    check(a.startswith("HTTP/1.1 426 "), f"plain GET: {a[:60]!r}")
    a = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", wrap)
    check(a.startswith("HTTP/1.1 200 OK\r\n") and "<!doctype html>" in a
          and "const WS_PATH" in a, f"GET /: {a[:60]!r}")
    print("   ok: plain GET answered 426, the page served on /")


def idle_and_shutdown(server, sig, n=100):
    held = hold(server.addr, n)
    with ws(f"ws://{server.url_host}/") as c:
        c.send("still here")
        check(c.recv(timeout=TIMEOUT) == "still here", f"echo with {n} idle connections")
        print(f"   ok: {n} idle connections held while a new client echoed")
        code = server.stop(sig)
        try:
            c.recv(timeout=TIMEOUT)
            raise Failed("the client got a message, not a close")
        except ConnectionClosed as e:
            got = e.rcvd.code if e.rcvd else None
            check(got == 1001, f"the echo client's close code: {got}, expected 1001")
    codes = [read_close_code(s) for s in held]
    for s in held:
        s.close()
    check(codes == [1001] * n, f"close codes of the held connections: {set(codes)}")
    check(code == 0, f"exit code {code} after SIG{sig.name[3:]}")
    print(f"   ok: SIG{sig.name[3:]}: close 1001 to all {n + 1} clients, exit code 0")


def make_cert(d):
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
         "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=TIMEOUT)
    return cert, key


def tls_checks(command, sig):
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(d)
        server = Server(command, ["--tls-cert", cert, "--tls-key", key])
        try:
            ctx = ssl.create_default_context(cafile=cert)
            echo_checks(f"wss://{server.url_host}/", 64 * 1024, ssl=ctx,
                        server_hostname="localhost")
            http_checks(server.addr,
                        lambda raw: ctx.wrap_socket(raw, server_hostname="localhost"))
            check(server.stop(sig) == 0, "exit code after the TLS run")
        finally:
            server.kill()


def smoke(command, sig, tls):
    server = Server(command, [])
    try:
        echo_checks(f"ws://{server.url_host}/", 64 * 1024)
        http_checks(server.addr)
        idle_and_shutdown(server, sig)
        log = server.drain_log()
        bad = [l for l in log if "panicked" in l or "memory allocation" in l]
        check(not bad, f"log: {bad}")
    finally:
        server.kill()
    if tls:
        tls_checks(command, sig)


def status(pid):
    """VmPeak, VmRSS (KiB) and Threads from /proc (a native process only)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmPeak", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def board_fits(command):
    server = Server(["prlimit", f"--as={AS_LIMIT}"] + command,
                    ["--max-connections", "1100"] + BOARD_CAPS)
    try:
        before = status(server.proc.pid)
        held = hold(server.addr, 1000)
        # The budget's warning comes before the accept loop: once a connection's line is
        # in, it would be too.
        server.wait_log(": opened /")
        check(not any("memory budget:" in l for l in server.log),
              f"caps meant to fit did not: {server.log[:4]}")
        with ws(f"ws://{server.url_host}/") as c:
            for i in range(200):
                msg = f"{i:04d}" * 256  # 1 KiB
                c.send(msg)
                check(c.recv(timeout=TIMEOUT) == msg, f"echo {i} with 1,000 held")
            big = os.urandom(16 * 1024)
            c.send(big)
            check(c.recv(timeout=TIMEOUT) == big, "a 16 KiB echo with 1,000 held")
        # Reported, not checked: a connection gives its handshake's pages back after a
        # quiet second (src/tune/stack.rs), so the figure is read after that.
        time.sleep(1.5)
        now = status(server.proc.pid)
        print("   ok: 1,000 idle connections held under prlimit --as=256MiB, 200 × 1 KiB "
              "and one 16 KiB echoed meanwhile")
        print(f"   reported: {now['Threads']} threads, VmPeak {now['VmPeak'] / 1024:.1f} MiB, "
              f"VmRSS {now['VmRSS'] / 1024:.1f} MiB, "
              f"{(now['VmRSS'] - before['VmRSS']) / 1000:.1f} KiB RSS per idle connection")
        check(server.stop(signal.SIGTERM) == 0, "exit code after SIGTERM")
        codes = [read_close_code(s) for s in held]
        check(codes == [1001] * 1000, f"close codes: {set(codes)}")
        print("   ok: SIGTERM: close 1001 to all 1,000, exit code 0")
        for s in held:
            s.close()
    finally:
        server.kill()


def board_budget(command):
    server = Server(["prlimit", f"--as={AS_LIMIT}"] + command, ["--max-connections", "1000"])
    try:
        line = next((l for l in server.log if "memory budget:" in l), None)
        line = line or server.wait_log("memory budget:")
        m = re.search(r"clients beyond ([0-9]+) get 503", line)
        check(m, f"no count in {line!r}")
        fit = int(m.group(1))
        check(0 < fit < 1000, f"the budget admits {fit}")
        held = hold(server.addr, fit)
        s, head = upgrade(server.addr)
        body = read_to_end(s)
        s.close()
        check(head.startswith("HTTP/1.1 503 ") and "memory" in body,
              f"connection {fit + 1}: {head.splitlines()[0]!r} {body!r}")
        for s in held[:10]:
            send_close(s, 1000)
            check(read_close_code(s) == 1000, "a held connection's close")
            s.close()
        echo_after_release(server)
        check(server.proc.poll() is None, "tinyws exited")
        check(server.stop(signal.SIGTERM) == 0, "exit code after SIGTERM")
        for s in held[10:]:
            s.close()
        bad = [l for l in server.drain_log() if "memory allocation" in l or "panicked" in l]
        check(not bad, f"log: {bad}")
        print(f"   ok: default caps under prlimit --as=256MiB: the budget admits {fit}, "
              f"connection {fit + 1} got 503, echo once 10 left, no abort, exit code 0")
    finally:
        server.kill()


def echo_after_release(server):
    """The released slots come back once their threads have ended: retry until then."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with ws(f"ws://{server.url_host}/") as c:
                c.send("room again")
                check(c.recv(timeout=TIMEOUT) == "room again", "echo after release")
                return
        except Exception as e:  # the handshake's 503 while the slots are still taken
            if time.monotonic() > deadline:
                raise Failed(f"no echo after releasing 10 connections: {e}") from None
            time.sleep(0.05)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    check(resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2200,
          "1,000 connections need an fd limit of 2,200 (both ends here)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--signal", choices=["TERM", "INT"], default="TERM",
                   help="what stops the server gracefully (INT under Wine: Ctrl-C)")
    p.add_argument("--tls", action="store_true", help="also check wss:// and https://")
    p.add_argument("--board", action="store_true", help="the 32-bit board scene")
    p.add_argument("command", nargs="+", help="how to start tinyws")
    a = p.parse_args()
    raise_fd_limit()
    try:
        if a.board:
            board_fits(a.command)
            board_budget(a.command)
        else:
            smoke(a.command, getattr(signal, "SIG" + a.signal), a.tls)
    except (Failed, OSError, WebSocketException) + TIMEOUTS as e:
        print(f"FAILED: {' '.join(a.command)}: {e}", file=sys.stderr)
        lines = Server.started[-1].tail(10) if Server.started else []
        if lines:
            print("the server's last log lines:", file=sys.stderr)
            for line in lines:
                print(f"   {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
