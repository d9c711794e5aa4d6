"""wss://: echo with the Python `websockets` client, verifying the test
certificate. Run by tests/proxy.rs and tests/tls.rs (common::python_wss_echo) as:
python3 tests/wss_client.py URL CA_FILE ORIGIN"""
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect


async def main(url: str, ca: str, origin: str) -> None:
    ctx = ssl.create_default_context(cafile=ca)  # verifies chain and host name
    async with asyncio.timeout(10):
        async with connect(url, ssl=ctx, origin=origin) as ws:
            # 64 KiB, tinyws's default cap: its frame is larger than the 64 KiB of records
            # rustls buffers, so the server must encrypt and send it in turns.
            big = bytes(range(256)) * 256
            for message in ["over TLS", b"\x00\xff", big]:
                await ws.send(message)
                got = await ws.recv()
                assert got == message, f"sent {message!r}, got {got!r}"
            await ws.close(code=1000, reason="bye")
        assert ws.close_code == 1000, ws.close_code
    print("wss ok")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
