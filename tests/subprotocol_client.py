"""Subprotocols with the Python `websockets` library (not built on tungstenite). Run by
tests/subprotocols.rs as: python3 tests/subprotocol_client.py ws://HOST:PORT/ against a
server with --protocol chat,superchat whose handler answers each message with the
subprotocol it sees. Exits 0 when every exchange matched, 1 with a message otherwise."""
import asyncio
import sys

from websockets.asyncio.client import connect


async def main(url: str) -> None:
    async with asyncio.timeout(10):
        # The client prefers superchat; the server's order wins.
        async with connect(url, subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "chat", ws.subprotocol
            await ws.send("which?")
            assert await ws.recv() == "chat"
        async with connect(url, subprotocols=["superchat"]) as ws:
            assert ws.subprotocol == "superchat", ws.subprotocol
            await ws.send("which?")
            assert await ws.recv() == "superchat"
        # Nothing the server speaks: connected, without a subprotocol.
        async with connect(url, subprotocols=["soap"]) as ws:
            assert ws.subprotocol is None, ws.subprotocol
            await ws.send("which?")
            assert await ws.recv() == "none"
    print("subprotocols ok")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except AssertionError as e:
        print(f"subprotocol mismatch: {e}", file=sys.stderr)
        sys.exit(1)
