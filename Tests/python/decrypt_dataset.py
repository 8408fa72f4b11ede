"""An independent dataset client, written from docs/DATASET-FORMAT.md with the `cryptography` package.

    decrypt_dataset.py SERVER MACHINE_ID SECRET_FILE OUT [VERSION]

Fetches the manifest and the device's wrapped key (a v2-signed request), then the whole ciphertext from
/download in two ranged requests (the second resuming where the first stopped), checks every chunk's hashes,
decrypts it, and writes the plaintext to OUT, one chunk in memory at a time. Prints the plaintext SHA-256, which
it has also checked against the manifest.
"""
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.request
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def get(url, headers=None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}))


def signed_headers(machine_id, secret, method, path, query=""):
    t, nonce = str(int(time.time())), uuid.uuid4().hex
    message = "\n".join([method, path, query, t, nonce, hashlib.sha256(b"").hexdigest()])
    signature = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {"X-Device-ID": machine_id, "X-Request-Time": t, "X-Nonce": nonce, "X-Signature": signature,
            "X-Signature-Version": "2"}


def unwrap(key_json, secret):
    context = key_json["context"]
    wrapping = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(key_json["hkdf_salt"]),
                    info=("leaderboard.key-wrap.v1\n" + context).encode()).derive(secret.encode())
    sealed = base64.b64decode(key_json["ciphertext"]) + base64.b64decode(key_json["tag"])
    return AESGCM(wrapping).decrypt(base64.b64decode(key_json["nonce"]), sealed, context.encode())


def read_exactly(stream, count):
    data = b""
    while len(data) < count:
        piece = stream.read(count - len(data))
        if not piece:
            raise SystemExit("the download ended early")
        data += piece
    return data


def main():
    server, machine_id, secret_file, out = sys.argv[1:5]
    version = sys.argv[5] if len(sys.argv) > 5 else "latest"
    secret = open(secret_file).read().strip()
    metadata = json.load(get(f"{server}/api/v1/datasets/{version}"))
    manifest = metadata["manifest"]
    version = manifest["version"]
    assert manifest["format_version"] == 1 and manifest["cipher"] == "AES-256-GCM"
    key_path = f"/api/v1/datasets/{version}/key"
    key = unwrap(json.load(get(server + key_path, signed_headers(machine_id, secret, "GET", key_path))), secret)
    aes = AESGCM(key)

    chunks = manifest["chunks"]
    total = manifest["ciphertext_size"]
    half = chunks[len(chunks) // 2]["ciphertext_offset"] + 12345 if len(chunks) > 1 else total // 2
    whole = hashlib.sha256()
    pending = b""
    index = 0
    with open(out, "wb") as output:
        for start, end in [(0, half - 1), (half, None)]:
            header = f"bytes={start}-" + ("" if end is None else str(end))
            response = get(f"{server}/api/v1/datasets/{version}/download", {"Range": header})
            assert response.status == 206, response.status
            while True:
                piece = response.read(1 << 20)
                if not piece:
                    break
                pending += piece
                while index < len(chunks) and len(pending) >= chunks[index]["ciphertext_size"]:
                    chunk = chunks[index]
                    stored, pending = pending[:chunk["ciphertext_size"]], pending[chunk["ciphertext_size"]:]
                    assert hashlib.sha256(stored).hexdigest() == chunk["ciphertext_sha256"], f"chunk {index} hash"
                    final = index == len(chunks) - 1
                    nonce = b"\0\0\0\0" + struct.pack(">Q", index)
                    aad = f"leaderboard.dataset.v1\n{version}\n{index}\n{1 if final else 0}".encode()
                    plaintext = aes.decrypt(nonce, stored, aad)
                    assert hashlib.sha256(plaintext).hexdigest() == chunk["plaintext_sha256"], f"chunk {index} plaintext"
                    whole.update(plaintext)
                    output.write(plaintext)
                    index += 1
    assert index == len(chunks) and not pending, "chunks missing or trailing bytes"
    digest = whole.hexdigest()
    assert digest == manifest["plaintext_sha256"], "whole-file hash"
    print(digest)


if __name__ == "__main__":
    main()
