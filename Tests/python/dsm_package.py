#!/usr/bin/env python3
"""Opens a DeepStressModel offline package (format 4.0) the way the published client does, written from
docs/DEEPSTRESSMODEL.md with the `cryptography` package, independently of the server's Swift code.

    dsm_package.py open PACKAGE.json API_KEY   -> writes the decrypted dataset bytes to stdout

Exit status 1 with a message on stderr when any step fails."""
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


def cbc_decrypt(key, iv, data):
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def open_package(package, api_key):
    metadata = package["metadata"]
    if metadata.get("package_format") not in ("3.0", "4.0"):
        raise ValueError("unknown package format")
    wrapped = package["encrypted_private_key"]
    key1 = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(wrapped["salt"]),
                      iterations=100000).derive(api_key.encode())
    pem = cbc_decrypt(key1, base64.b64decode(wrapped["iv"]), base64.b64decode(wrapped["data"]))
    private_key = serialization.load_pem_private_key(pem, password=None)
    dataset = package["dataset"]
    sealed = base64.b64decode(dataset["encrypted_session_key"])
    try:
        session_key = private_key.decrypt(sealed, rsa_padding.PKCS1v15())
    except Exception:
        session_key = private_key.decrypt(sealed, rsa_padding.OAEP(
            mgf=rsa_padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    encrypted = dataset["encrypted_data"]
    if encrypted["algorithm"] != "AES-256-CBC-PKCS7" or encrypted["key_derivation"]["method"] != "HKDF-SHA256":
        raise ValueError("unknown dataset encryption")
    derivation = encrypted["key_derivation"]
    key2 = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(derivation["salt"]),
                info=derivation["info"].encode()).derive(session_key)
    return cbc_decrypt(key2, base64.b64decode(encrypted["iv"]), base64.b64decode(encrypted["data"]))


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "open":
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[2], "rb") as handle:
        package = json.loads(handle.read())
    try:
        plaintext = open_package(package, sys.argv[3])
        json.loads(plaintext)
    except Exception as error:  # noqa: BLE001 — any failure is the answer
        print(f"cannot open the package: {error!r}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.buffer.write(plaintext)


if __name__ == "__main__":
    main()
