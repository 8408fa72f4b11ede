"""A local SMTP sink for the tests: accepts every message on 127.0.0.1 and writes it to a directory.

    smtp_sink.py DIRECTORY      prints the port once listening; exits when stdin closes.

Each message is written as NNNNNN.eml (raw RFC 5322 as received), atomically (temp file + rename).
"""
import os
import socket
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, "%06d.eml" % self.count)
        with open(path + ".tmp", "wb") as handle:
            handle.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            handle.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Handler(directory), hostname="127.0.0.1", port=free_port())
    controller.start()
    print(controller.port, flush=True)
    try:
        sys.stdin.read()  # the test holds stdin open for as long as it needs the sink
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
