#!/usr/bin/env python3
"""A DeepStressModel client written from docs/DEEPSTRESSMODEL.md (the `cryptography` and `requests` packages),
independently of the server's Swift code: it downloads the result key and an offline package, opens the package,
makes a result of every prompt the way the client shapes one (a simulated run: no model server), encrypts it to a
`.dat` file and uploads it as the client does.

    dsm_client.py run SERVER API_KEY DAT_OUT   -> prints {"status": HTTP status, "body": text, "nonce": ...}
    dsm_client.py upload SERVER API_KEY DAT    -> uploads an existing .dat again; prints {"status", "body"}

SERVER is the base URL (http://127.0.0.1:PORT). Exit status 1 with a message when a step fails."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import random
import secrets
import sys
import time

import requests
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dsm_package import open_package  # noqa: E402


def b64(data):
    return base64.b64encode(data).decode()


def recorded(text):
    """The client keeps the first 50 characters of a prompt, then '...'."""
    return text[:50] + "..." if len(text) > 50 else text


def simulate(dataset, name, version, nickname):
    """A result shaped like the client's, for every prompt sent at once (2 GPUs, a 7B model at FP16)."""
    items = dataset["data"]
    start = time.time() - 30
    records = []
    for index, item in enumerate(items):
        latency = 1.0 + 0.05 * index + random.random() * 0.01
        output_tokens = 40 + index
        began = int(start * 1000) + 1
        records.append({
            "id": item["id"], "input": recorded(item["text"]), "output": "answer..."[:50], "expected_output": "",
            "latency": latency, "throughput": len(item["text"]) / latency,
            "token_throughput": (output_tokens + 10) / latency, "input_tokens": 10, "output_tokens": output_tokens,
            "tokens": output_tokens + 10, "status": "success", "timestamp": began + int(latency * 1000),
            "start_time": began, "end_time": began + int(latency * 1000),
            "start_time_str": "", "end_time_str": "", "concurrency": len(items), "input_chars": len(item["text"]),
            "output_chars": output_tokens * 3, "truncated": False,
        })
    total_time = max(record["latency"] for record in records) + 0.02
    output = sum(record["output_tokens"] for record in records)
    inputs = sum(record["input_tokens"] for record in records)
    average = sum(record["latency"] for record in records) / len(records)
    return {
        "status": "success", "dataset_version": version,
        "datasets": {name: {
            "completed": len(records), "total": len(records), "success_rate": 1.0, "avg_response_time": average,
            "total_time": total_time, "total_tokens": output + inputs, "avg_tps": (output + inputs) / total_time,
            "input_tps": inputs / total_time, "output_tps": output / total_time,
            "combined_tps": (output + inputs) / total_time, "failed_count": 0, "timeout_count": 0, "error_count": 0,
            "status_counts": {"success": len(records)}, "session_id": "11-30-00-00-abcd",
        }},
        "start_time": start, "end_time": start + total_time, "total_time": total_time,
        "total_tests": len(records), "successful_tests": len(records), "success_rate": 1.0, "avg_latency": average,
        "avg_throughput": 10.0, "avg_gen_speed": 10.0, "tps": len(records) / total_time,
        "total_input_chars": 1, "total_output_chars": 1, "total_chars": 2, "total_tokens": output + inputs,
        "results": records, "session_id": "11-30-00-00-abcd", "model": "qwen2.5-7b-instruct",
        "hardware_info": {"cpu": "AMD Ryzen 9 7950X", "memory": "128GB", "system": "",
                          "gpu": "NVIDIA GeForce RTX 4090 24.0GB *2", "id": "0" * 64, "source": "gpu_server"},
        "test_mode": 0, "nickname": nickname, "truncated_tasks": 0, "truncated_rate": 0.0,
        "framework_info": {"framework": "vLLM", "manually_entered": True},
        "model_info": {"framework": "vLLM", "model_name": "qwen2.5-7b-instruct", "params": 7.0,
                       "quantization": "FP16"},
    }


def seal(plaintext, api_key, public_pem):
    """BenchmarkEncryption.encrypt_and_save: RSA-OAEP-SHA256, AES-256-CBC, log hash, key binding, HMAC."""
    public_key = serialization.load_pem_public_key(public_pem)
    session_key = os.urandom(32)
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    sealed = public_key.encrypt(session_key, rsa_padding.OAEP(
        mgf=rsa_padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    binding = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"deepstress_api_binding",
                   info=b"api_key_binding").derive(api_key.encode() + session_key)
    signed = {"log_hash": b64(hashlib.sha256(plaintext).digest()), "timestamp": int(time.time()),
              "nonce": secrets.token_hex(16), "api_key_hash": b64(hashlib.sha256(binding).digest())}
    message = json.dumps(dict(sorted(signed.items())))  # ", " and ": " separators; nothing to escape here
    mac_key = hashlib.sha256(session_key + api_key.encode()).digest()
    signature = b64(hmac.new(mac_key, message.encode(), hashlib.sha256).digest())
    document = {
        "format_version": "1.0", "encrypted_session_key": b64(sealed),
        "encrypted_data": {"iv": b64(iv), "data": b64(ciphertext)},
        "signature_data": signed, "signature": signature, "timestamp": datetime.datetime.now().isoformat(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode(), signed["nonce"]


def upload(server, api_key, dat, nickname):
    """ResultHandler.upload_encrypted_result: api_key, metadata, file; X-API-Key; no Content-Type on the parts."""
    metadata = {"device_id": "5f0c7a52-3d1e-4b8a-9c6f-2a7e91d4b3c8", "nickname": nickname, "submitter": nickname,
                "model_name": "qwen2.5-7b-instruct", "hardware_info": {}, "notes": "从客户端上传的测试结果 - "}
    name = "benchmark_encrypted_%s.dat" % datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    response = requests.post(
        server + "/api/v1/benchmark-result/upload", headers={"X-API-Key": api_key},
        data={"api_key": api_key, "metadata": json.dumps(metadata, ensure_ascii=False)},
        files={"file": (name, dat)}, timeout=60)
    return {"status": response.status_code, "body": response.text,
            "content_type": response.headers.get("Content-Type", "")}


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("run", "upload"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command, server, api_key, path = sys.argv[1:]
    nickname = "python-dsm"
    try:
        if command == "upload":
            with open(path, "rb") as handle:
                print(json.dumps(upload(server, api_key, handle.read(), nickname)))
            return
        public_pem = requests.get(server + "/api/v1/keys/result-encryption.pem", timeout=30)
        public_pem.raise_for_status()
        package = requests.post(server + "/api/v1/datasets/offline-package/1", headers={"X-API-Key": api_key},
                                json={}, timeout=60)
        package.raise_for_status()
        document = package.json()
        dataset = json.loads(open_package(document, api_key))
        metadata = document["metadata"]
        result = simulate(dataset, metadata["dataset_name"], metadata["dataset_version"], nickname)
        dat, nonce = seal(json.dumps(result, ensure_ascii=False).encode(), api_key, public_pem.content)
        with open(path, "wb") as handle:
            handle.write(dat)
        answer = upload(server, api_key, dat, nickname)
        answer["nonce"] = nonce
        print(json.dumps(answer))
    except Exception as error:  # noqa: BLE001 — any failure is the answer
        print(f"dsm_client: {error!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
