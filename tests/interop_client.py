"""Interop check: the Python `websockets` library (not built on tungstenite) talks to
tinyws. Run by tests/interop.rs as: python3 tests/interop_client.py ws://HOST:PORT/path
Exits 0 when every exchange matched, 1 with a message otherwise."""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK


async def main(url: str) -> None:
    async with asyncio.timeout(10):
        async with connect(url, max_size=2**20) as ws:
            for message in ["hello", "héllo 世界", b"\x00\x01\xff", "", b""]:
                await ws.send(message)
                got = await ws.recv()
                assert got == message, f"sent {message!r}, got {got!r}"
            # A fragmented message (an iterable is sent as fragments).
            await ws.send(["frag", "men", "ted"])
            assert await ws.recv() == "fragmented"
            await ws.send([b"\x01", b"\x02"])
            assert await ws.recv() == b"\x01\x02"
            # Ping: websockets waits for the matching pong.
            pong = await ws.ping(b"are you there")
            await pong
            # Just under the default 64 KiB cap.
            big = bytes(range(256)) * 255
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(code=1000, reason="interop done")
        assert ws.close_code == 1000, ws.close_code
        assert ws.close_reason == "interop done", ws.close_reason
        # Over the cap: the server must close with 1009.
        async with connect(url, max_size=2**20) as ws:
            await ws.send(b"x" * (64 * 1024 + 1))
            try:
                await ws.recv()
            except Exception:
                pass
            assert ws.close_code == 1009, f"expected 1009, got {ws.close_code}"
    print("interop ok")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except AssertionError as e:
        print(f"interop mismatch: {e}", file=sys.stderr)
        sys.exit(1)
