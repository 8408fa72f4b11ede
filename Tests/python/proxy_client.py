"""What NginxProxyTests asks of nginx in front of the gateway, as a client would see it. Prints one JSON object.

    proxy_client.py HTTPS_PORT HTTP_PORT CA_FILE

- alpn: the protocol TLS negotiates when the client offers h2 and http/1.1 (HTTP/2 is on when "h2")
- ready: status of GET /health/ready over HTTPS, sent from 127.0.0.2 with a forged X-Forwarded-For
- redirect: status and Location of a plain-HTTP request
- websocket, first_frame: the status line of the upgrade to /api/v1/ws/leaderboard, then its first text message's
  type or its close code and reason (pings skipped)
"""

import base64
import http.client
import json
import os
import socket
import ssl
import sys

https_port, http_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
result = {}

context = ssl.create_default_context(cafile=ca)
context.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("127.0.0.1", https_port), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        result["alpn"] = tls.selected_alpn_protocol()

plain = ssl.create_default_context(cafile=ca)
connection = http.client.HTTPSConnection("127.0.0.1", https_port, context=plain, timeout=10,
                                         source_address=("127.0.0.2", 0))
connection.request("GET", "/health/ready", headers={"X-Forwarded-For": "203.0.113.9"})
response = connection.getresponse()
result["ready"] = response.status
result["hsts"] = response.getheader("Strict-Transport-Security")
response.read()
connection.close()

connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
connection.request("GET", "/api/v1/benchmarks?limit=1", headers={"Host": "leaderboard.example.org"})
response = connection.getresponse()
result["redirect"] = [response.status, response.getheader("Location")]
connection.close()

class Stream:
    """Bytes from a socket after what was already read, `count` at a time."""

    def __init__(self, sock, pending):
        self.sock, self.pending = sock, pending

    def read(self, count):
        while len(self.pending) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the connection closed")
            self.pending += chunk
        data, self.pending = self.pending[:count], self.pending[count:]
        return data


# A WebSocket handshake by hand (no client library needed), then the first frame: the board's snapshot.
with socket.create_connection(("127.0.0.1", https_port), timeout=10) as raw:
    with plain.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        key = base64.b64encode(os.urandom(16)).decode()
        tls.sendall((f"GET /api/v1/ws/leaderboard HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        result["websocket"] = head.split(b"\r\n")[0].decode()
        if result["websocket"].startswith("HTTP/1.1 101"):
            stream = Stream(tls, rest)
            while "first_frame" not in result:
                first, second = stream.read(2)
                length = second & 0x7F
                if length == 126:
                    length = int.from_bytes(stream.read(2), "big")
                elif length == 127:
                    length = int.from_bytes(stream.read(8), "big")
                payload = stream.read(length)
                if first & 0x0F == 0x1:  # text: a board message
                    result["first_frame"] = "text " + json.loads(payload).get("type", "")
                elif first & 0x0F == 0x8:  # close: its code and reason
                    result["first_frame"] = f"close {int.from_bytes(payload[:2], 'big')} {payload[2:].decode()}"

print(json.dumps(result))
