"""Independent implementation of the device request signatures of docs/SIGNING.md, for the test vectors.

    sign.py SECRET VERSION DEVICE_ID METHOD PATH QUERY REQUEST_TIME NONCE < BODY

Prints the lowercase hex HMAC-SHA256 signature. Uses only the standard library (hmac, hashlib).
"""
import hashlib
import hmac
import sys


def sign(secret, version, device_id, method, path, query, request_time, nonce, body):
    if version == "1":
        message = device_id.encode() + request_time.encode() + nonce.encode() + body
    elif version == "2":
        message = "\n".join(
            [method, path, query, request_time, nonce, hashlib.sha256(body).hexdigest()]
        ).encode()
    else:
        raise SystemExit("unknown version " + version)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


if __name__ == "__main__":
    secret, version, device_id, method, path, query, request_time, nonce = sys.argv[1:9]
    print(sign(secret, version, device_id, method, path, query, request_time, nonce, sys.stdin.buffer.read()))
