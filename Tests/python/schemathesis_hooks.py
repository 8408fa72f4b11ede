"""Schemathesis hooks for the OpenAPI fuzzing run (Tests/GatewayTests/OpenAPITests.swift).

Signs every request to a device-signed operation with the device in SIGN_DEVICE_ID / SIGN_DEVICE_SECRET
(docs/SIGNING.md, version 2), so the fuzzer reaches the request validation behind the signature check instead
of stopping at 401. The signature is computed over the exact bytes requests sends, after serialization.
Rotation is left unsigned: it would replace the secret the rest of the run signs with. Cases that carry generated
signature headers (the document declares them, so schemathesis fuzzes them) are sent as generated.
"""
import hashlib
import hmac
import os
import time
import uuid
from urllib.parse import urlsplit

import requests
import schemathesis


class DeviceSignature(requests.auth.AuthBase):
    def __init__(self, device_id, secret):
        self.device_id = device_id
        self.secret = secret

    def __call__(self, request):
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request_time = str(int(time.time()))
        nonce = uuid.uuid4().hex
        message = "\n".join(
            [request.method.upper(), parts.path or "/", parts.query, request_time, nonce,
             hashlib.sha256(body).hexdigest()]
        ).encode()
        request.headers.update({
            "X-Device-ID": self.device_id,
            "X-Request-Time": request_time,
            "X-Nonce": nonce,
            "X-Signature-Version": "2",
            "X-Signature": hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest(),
        })
        return request


def _signed(operation):
    security = operation.definition.raw.get("security") or []
    return any("deviceSignature" in requirement for requirement in security)


SIGNATURE_HEADERS = {"x-device-id", "x-request-time", "x-nonce", "x-signature", "x-signature-version"}


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _signed(case.operation) or case.operation.path == "/api/v1/devices/rotate":
        return
    # A case whose generated headers include a signature header goes out as generated: it fuzzes the header
    # parsing (every answer must be a documented 400 or 401). The others are signed, to reach what is behind.
    if any(name.lower() in SIGNATURE_HEADERS for name in (case.headers or {})):
        return
    kwargs["auth"] = DeviceSignature(os.environ["SIGN_DEVICE_ID"], os.environ["SIGN_DEVICE_SECRET"])
