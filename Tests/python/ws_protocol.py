"""What WebSocketTests asks of the gateway's WebSocket protocol, as a hand-written client sees it on the wire.

    ws_protocol.py PORT

Prints one JSON object: for each case, the frames the server sent after the case's frames, as a list of
["pong", data] / ["text", type] / ["close", code, reason] / ["eof"] / ["timeout"]; and for refused upgrades the
status line, content type and problem code.
"""

import base64
import json
import os
import socket
import struct
import sys

port = int(sys.argv[1])


def upgrade(path, method="GET", headers=None):
    """Opens a connection and sends an upgrade request; returns the socket, the response head and any bytes after."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    if headers is None:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13"
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\nContent-Length: 0\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return sock, head.decode(), rest


def frame(opcode, payload, masked=True, fin=True):
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        header = bytes([first, mask_bit | size])
    else:
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", size)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))


class Reader:
    def __init__(self, sock, pending=b""):
        self.sock, self.buffer = sock, pending

    def events(self, until=lambda seen: False, timeout=60.0):
        """The server's frames until `until(seen)` holds, it closes, or it sends nothing for `timeout` seconds (the
        timeouts are long: the test suite runs on a busy machine)."""
        self.sock.settimeout(timeout)
        seen = []
        while True:
            while len(self.buffer) >= 2:
                opcode, size, offset = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
                if size == 126:
                    size, offset = struct.unpack(">H", self.buffer[2:4])[0], 4
                elif size == 127:
                    size, offset = struct.unpack(">Q", self.buffer[2:10])[0], 10
                if len(self.buffer) < offset + size:
                    break
                payload, self.buffer = self.buffer[offset : offset + size], self.buffer[offset + size :]
                if opcode == 0x8:
                    code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                    seen.append(["close", code, payload[2:].decode()])
                    return seen
                elif opcode == 0xA:
                    seen.append(["pong", payload.decode()])
                elif opcode == 0x1:
                    seen.append(["text", json.loads(payload).get("type")])
                if until(seen):
                    return seen
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                seen.append(["timeout"])
                return seen
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                seen.append(["eof"])
                return seen
            self.buffer += chunk


def watching():
    """An upgraded watcher of the global board, its snapshot read."""
    sock, head, rest = upgrade("/api/v1/ws/leaderboard?limit=1")
    assert head.startswith("HTTP/1.1 101"), head
    reader = Reader(sock, rest)
    first = reader.events(until=lambda seen: len(seen) == 1)
    assert first == [["text", "snapshot"]], first
    return sock, reader


result = {}

sock, reader = watching()
sock.sendall(frame(0x9, b"hello"))
result["ping"] = reader.events(until=lambda seen: len(seen) == 1)
# A message in two fragments with a ping between them: the ping is answered at once, the message asks for a
# snapshot (at least 2 s after the first); a close is then echoed and the connection ended.
sock.sendall(frame(0x1, b"sna", fin=False) + frame(0x9, b"between") + frame(0x0, b"pshot"))
result["fragmented"] = reader.events(until=lambda seen: len(seen) == 2)
sock.sendall(frame(0x8, struct.pack(">H", 1000)))
result["close"] = reader.events()
result["close"] += reader.events()
sock.close()

for name, data in [
    ("unmasked", frame(0x1, b"snapshot", masked=False)),
    ("binary", frame(0x2, b"\x00\x01")),
    ("too_large", frame(0x1, b"x" * 2000)),
    ("invalid_utf8", frame(0x1, b"\xff\xfe")),
    ("stray_continuation", frame(0x0, b"x")),
]:
    sock, reader = watching()
    sock.sendall(data)
    result[name] = reader.events()
    sock.close()

key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
for name, path, method, headers in [
    ("unknown_path", "/api/v1/ws/elsewhere", "GET", None),
    ("post", "/api/v1/ws/leaderboard", "POST", None),
    ("no_key", "/api/v1/ws/leaderboard", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13"),
    ("old_version", "/api/v1/ws/leaderboard", "GET", f"Upgrade: websocket\r\nConnection: Upgrade\r\n{key}\r\nSec-WebSocket-Version: 8"),
    ("no_connection_upgrade", "/api/v1/ws/leaderboard", "GET", f"Upgrade: websocket\r\n{key}\r\nSec-WebSocket-Version: 13"),
    # curl --http2 over plain HTTP asks to upgrade to h2c: the gateway answers the request over HTTP/1.1.
    ("h2c", "/health/live", "GET", "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"),
]:
    sock, head, rest = upgrade(path, method, headers)
    lines = head.split("\r\n")
    headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:] if ":" in line}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    body = json.loads(rest[:length] or b"{}")
    result[name] = [lines[0], headers.get("content-type"), body.get("code", body.get("status"))]
    if "sec-websocket-version" in headers:
        result[name].append(headers["sec-websocket-version"])
    sock.close()

print(json.dumps(result, sort_keys=True))
