"""wss:// with a strict TLS client: after the WebSocket closing handshake (or the
server's close 1002), the TLS connection must end with close_notify (RFC 8446 §6.1),
not a bare TCP FIN. `suppress_ragged_eofs=False` makes Python report the latter as an
error (UNEXPECTED_EOF_WHILE_READING). Run by tests/hostile.rs as:
python3 tests/tls_strict_client.py HOST PORT CA_FILE MODE   (MODE: close or 1002)"""
import base64
import os
import socket
import ssl
import sys


def masked(opcode: int, payload: bytes) -> bytes:
    mask = b"\x37\xfa\x21\x3d"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def main(host: str, port: int, ca: str, mode: str) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection((host, port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"closed during the handshake after {buf!r}")
        buf += chunk
    head, got = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    if mode == "close":
        s.sendall(masked(0x8, (1000).to_bytes(2, "big") + b"bye"))
        want = 1000
    else:
        s.sendall(b"\x81\x02hi")  # unmasked: RFC 6455 §5.1, the server fails it with 1002
        want = 1002
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break  # close_notify
            got += chunk
    except ssl.SSLError as e:
        sys.exit(f"the connection ended without close_notify: {e}")
    assert got[0] == 0x88, got
    code = int.from_bytes(got[2:4], "big")
    assert code == want, (code, want)
    print(f"close {code}, then close_notify")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
