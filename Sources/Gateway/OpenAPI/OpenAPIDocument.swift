import Foundation
import NIOCore

/// `/openapi.json`: the OpenAPI 3.1 description of every REST route the gateway serves. A test checks it names
/// exactly the router's routes, and the schemathesis run in the test suite checks the answers match it.
enum OpenAPIDocument {
    /// The serialized document (built once; keys sorted so it is byte-stable).
    static let bytes: ByteBuffer = {
        let data =
            (try? JSONSerialization.data(
                withJSONObject: document(), options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])) ?? Data()
        return ByteBuffer(bytes: data)
    }()

    static func document() -> Schema.Value {
        var paths: Schema.Value = [:]
        for operation in operations {
            var item = paths[operation.path] as? Schema.Value ?? [:]
            item[operation.method.lowercased()] = operation.document(problem: Schema.ref("Problem"))
            paths[operation.path] = item
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "LLM Inference Leaderboard",
                "version": "1",
                "description": """
                The public REST API of the leaderboard gateway. Errors are RFC 9457 problem+json with a stable \
                `code`. Signed routes carry the device signature headers of docs/SIGNING.md; operator routes \
                take `Authorization: Bearer <api key>`. The WebSocket endpoints `/api/v1/ws/leaderboard` and \
                `/api/v1/ws/notifications` are described in docs/GATEWAY.md.
                """,
            ],
            "paths": paths,
            "tags": ["devices", "datasets", "benchmarks", "interactions", "admin", "operations", "pages"].map {
                ["name": $0]
            },
            "components": ["schemas": schemas, "securitySchemes": securitySchemes],
        ]
    }

    static let securitySchemes: Schema.Value = [
        "deviceSignature": [
            "type": "apiKey", "in": "header", "name": "X-Signature",
            "description": "HMAC-SHA256 request signature with X-Device-ID, X-Request-Time, X-Nonce and "
                + "X-Signature-Version (docs/SIGNING.md).",
        ],
        "adminKey": ["type": "http", "scheme": "bearer", "description": "An operator API key with admin permission."],
    ]

    // MARK: schemas

    static let timeOrNull = Schema.nullable(Schema.time)
    static let stringOrNull = Schema.nullable(Schema.string)
    static let cursor = Schema.nullable(Schema.string)
    static let reasons = Schema.array(Schema.ref("Reason"))

    static let schemas: Schema.Value = [
        "Problem": Schema.object(
            [
                "type": Schema.string, "title": Schema.string, "status": Schema.integer, "code": Schema.string,
                "detail": Schema.string, "instance": Schema.string, "request_id": Schema.string, "reasons": reasons,
            ], required: ["type", "title", "status", "code", "detail", "instance", "request_id"],
            description: "RFC 9457 problem details; some problems add members such as session_id."),
        "Reason": Schema.complete(["code": Schema.string, "detail": Schema.string]),
        "DeviceState": Schema.string(["registered", "pending_email", "verified", "active", "revoked", "unknown"]),
        "Registration": Schema.complete([
            "machine_id": Schema.string, "registration_code": Schema.string, "expires_at": timeOrNull,
        ]),
        "Challenge": Schema.complete([
            "challenge_id": Schema.string, "challenge": Schema.string, "difficulty_bits": Schema.integer,
            "algorithm": Schema.string(["sha256-leading-zero-bits"]), "expires_at": timeOrNull,
        ]),
        "Verification": Schema.complete([
            "machine_id": Schema.string, "state": Schema.ref("DeviceState"), "link_expires_at": timeOrNull,
        ]),
        "Confirmation": Schema.complete(["machine_id": Schema.string, "state": Schema.ref("DeviceState")]),
        "DeviceSecret": Schema.complete([
            "machine_id": Schema.string, "secret": Schema.string, "previous_secret_valid_until": timeOrNull,
        ]),
        "Device": Schema.complete([
            "machine_id": Schema.string, "state": Schema.ref("DeviceState"), "hardware_hash": Schema.string,
            "gpu_hash": Schema.string, "hardware_info": [:], "gpu_info": [:], "registered_at": timeOrNull,
            "verified_at": timeOrNull, "secret_rotated_at": timeOrNull,
        ]),
        "APIKey": Schema.complete([
            "key_id": Schema.string, "name": Schema.string, "prefix": Schema.string,
            "permissions": Schema.array(Schema.string(["read", "write", "admin", "unknown"])),
            "rate_limit_per_minute": Schema.integer, "created_at": timeOrNull, "expires_at": timeOrNull,
            "revoked_at": timeOrNull, "last_used_at": timeOrNull,
        ]),
        "CreatedAPIKey": [
            "allOf": [
                Schema.ref("APIKey"),
                Schema.complete(["secret": Schema.string], description: "Shown once; store it now."),
            ]
        ],
        "APIKeyPage": Schema.complete(["keys": Schema.array(Schema.ref("APIKey")), "next_cursor": cursor]),
        "Chunk": Schema.complete([
            "index": Schema.integer, "plaintext_size": Schema.integer, "ciphertext_size": Schema.integer,
            "ciphertext_offset": Schema.integer, "plaintext_sha256": Schema.string, "ciphertext_sha256": Schema.string,
        ]),
        "Manifest": Schema.complete([
            "format_version": Schema.integer, "version": Schema.string, "cipher": Schema.string,
            "chunk_size": Schema.integer, "plaintext_size": Schema.integer, "ciphertext_size": Schema.integer,
            "plaintext_sha256": Schema.string, "chunks": Schema.array(Schema.ref("Chunk")),
        ]),
        "DatasetVersion": Schema.object(
            [
                "version": Schema.string, "name": Schema.string, "description": Schema.string,
                "active": Schema.boolean, "created_at": timeOrNull, "activated_at": timeOrNull,
                "min_duration_seconds": Schema.integer, "manifest": Schema.ref("Manifest"),
            ],
            required: [
                "version", "name", "description", "active", "created_at", "activated_at", "min_duration_seconds",
            ]
        ),
        "DatasetPage": Schema.complete([
            "versions": Schema.array(Schema.ref("DatasetVersion")), "next_cursor": cursor,
        ]),
        "WrappedKey": Schema.complete(
            [
                "version": Schema.string, "algorithm": Schema.string, "context": Schema.string,
                "hkdf_salt": Schema.string, "nonce": Schema.string, "ciphertext": Schema.string, "tag": Schema.string,
            ], description: "The version's content key wrapped for the calling device (docs/DATASET-FORMAT.md)."),
        "SessionState": Schema.string([
            "running", "submitted", "accepted", "rejected", "held_for_review", "expired", "unknown",
        ]),
        "Session": Schema.complete([
            "session_id": Schema.string, "state": Schema.ref("SessionState"), "dataset_version": Schema.string,
            "framework": Schema.string, "model_name": Schema.string, "started_at": timeOrNull,
            "expires_at": timeOrNull, "submitted_at": timeOrNull, "metrics_interval_seconds": Schema.integer,
            "metric_samples": Schema.integer, "record_id": stringOrNull, "reasons": reasons,
            "dataset_challenge": Schema.nullable(Schema.ref("DatasetChallenge")),
        ]),
        "DatasetChallenge": Schema.complete(
            [
                "algorithm": Schema.string, "nonce": Schema.string,
                "spans": Schema.array(Schema.complete(["offset": Schema.integer, "length": Schema.integer])),
            ],
            description:
                "Proof of the dataset: the submit's dataset_proof is the lowercase hex HMAC-SHA256 keyed by the hex-decoded nonce over the dataset plaintext's bytes [offset, offset + length) of every span, in order (docs/VALIDATION.md)."
        ),
        "RequestRecord": Schema.object(
            ["output_tokens": Schema.integer, "latency": Schema.number, "success": Schema.boolean],
            required: ["output_tokens", "latency"],
            description: "One request of the run: generated tokens, seconds to its last token, success (default true)."),
        "Outcome": Schema.complete([
            "session_id": Schema.string, "state": Schema.ref("SessionState"), "record_id": stringOrNull,
            "score": Schema.number, "score_version": Schema.string, "rule_set_version": Schema.string,
            "rank": Schema.integer, "is_new_best": Schema.boolean, "reasons": reasons,
            "rank_pending": Schema.boolean,
        ]),
        "GPUConfig": Schema.object(
            [
                "name": Schema.string, "count": Schema.integer, "memory_gb": Schema.number,
                "gpu_hash": Schema.string,
            ], required: ["name"]),
        "Results": Schema.complete([
            "tps": Schema.number, "avg_latency": Schema.number, "p50_latency": Schema.number,
            "p95_latency": Schema.number, "p99_latency": Schema.number, "concurrent_count": Schema.integer,
            "total_requests": Schema.integer, "successful_requests": Schema.integer,
            "failed_requests": Schema.integer, "total_tokens": Schema.integer, "duration": Schema.number,
        ]),
        "Record": Schema.object(
            recordProperties,
            required: Array(recordProperties.keys.filter { !$0.hasSuffix("_count") || $0 == "concurrent_count" }),
            description: "A ranked (or unpublished) result; the *_count members are present on boards and records, "
                + "null when InteractionService did not answer."),
        "OwnRecordPage": Schema.complete([
            "records": Schema.array(
                Schema.object(
                    recordProperties.merging([
                        "status": Schema.string(["accepted", "held", "hidden", "baseline"])
                    ]) { first, _ in first },
                    required: ["record_id", "status", "score", "dataset_version", "framework"])),
            "next_cursor": cursor,
        ]),
        "BoardPage": Schema.complete([
            "records": Schema.array(Schema.ref("Record")), "total": Schema.integer, "next_cursor": cursor,
            "baselines": Schema.array(Schema.ref("Record")),
        ]),
        "Distribution": Schema.complete(
            Dictionary(uniqueKeysWithValues: ["min", "p25", "p50", "p75", "p90", "max"].map { ($0, Schema.number) })
                .merging(["count": Schema.integer]) { first, _ in first }),
        "GroupStats": Schema.complete([
            "key": Schema.string, "score": Schema.ref("Distribution"), "tps": Schema.ref("Distribution"),
        ]),
        "Stats": Schema.complete([
            "dataset_version": Schema.string, "records": Schema.integer, "devices": Schema.integer,
            "submissions_today": Schema.integer, "score": Schema.ref("Distribution"),
            "by_framework": Schema.array(Schema.ref("GroupStats")), "by_gpu": Schema.array(Schema.ref("GroupStats")),
        ]),
        "Review": Schema.complete([
            "review_id": Schema.string, "session_id": Schema.string, "machine_id": Schema.string,
            "score": Schema.number, "tps": Schema.number, "reasons": reasons, "created_at": timeOrNull,
            "decision": Schema.string(["pending", "approved", "rejected"]), "note": Schema.string,
            "decided_at": timeOrNull,
        ]),
        "ReviewPage": Schema.complete(["reviews": Schema.array(Schema.ref("Review")), "next_cursor": cursor]),
        "Counts": Schema.complete([
            "record_id": Schema.string, "likes_count": Schema.integer, "dislikes_count": Schema.integer,
            "comments_count": Schema.integer, "mine": Schema.nullable(Schema.string(["like", "dislike"])),
        ]),
        "Comment": Schema.complete([
            "comment_id": Schema.string, "record_id": Schema.string,
            "author_name": Schema.string, "content": Schema.string, "created_at": timeOrNull,
            "deleted_at": timeOrNull,
        ]),
        "CommentPage": Schema.complete(["comments": Schema.array(Schema.ref("Comment")), "next_cursor": cursor]),
        "Flag": Schema.complete([
            "flag_id": Schema.string, "target": Schema.string(["record", "comment"]), "target_id": Schema.string,
            "reason": Schema.string, "created_at": timeOrNull, "resolved": Schema.boolean,
            "resolution": Schema.nullable(Schema.string(["dismissed", "actioned"])), "resolution_note": stringOrNull,
            "resolved_at": timeOrNull,
        ]),
        "AuditPage": Schema.complete([
            "service": Schema.string(["auth", "dataset", "ranking", "interaction"]),
            "entries": Schema.array(
                Schema.complete([
                    "sequence": Schema.integer, "at": timeOrNull, "actor": Schema.string, "action": Schema.string,
                    "target": Schema.string, "reason": Schema.string,
                    "details": ["type": ["object", "null"]],
                ])),
        ]),
        "FlagPage": Schema.complete(["flags": Schema.array(Schema.ref("Flag")), "next_cursor": cursor]),
        "Notification": Schema.complete([
            "notification_id": Schema.string, "sequence": Schema.integer,
            "kind": Schema.string(["comment", "reaction", "rank_change", "unknown"]), "record_id": Schema.string,
            "summary": Schema.string, "payload": Schema.anyObject, "created_at": timeOrNull, "read_at": timeOrNull,
        ]),
        "NotificationPage": Schema.complete([
            "notifications": Schema.array(Schema.ref("Notification")), "latest_sequence": Schema.integer,
        ]),
        "MetricSample": Schema.object(
            [
                "system": Schema.object(
                    [
                        "cpu_usage": Schema.number, "memory_usage": Schema.number, "gpu_usage": Schema.number,
                        "gpu_memory_usage": Schema.number, "gpu_temperature": Schema.number,
                        "power_watts": Schema.number,
                    ], required: ["cpu_usage", "memory_usage", "gpu_usage"]),
                "test": Schema.object(
                    [
                        "tps": Schema.number, "latency": Schema.number, "concurrent_count": Schema.integer,
                        "completed_requests": Schema.integer, "failed_requests": Schema.integer,
                        "total_tokens": Schema.integer,
                    ], required: ["tps", "latency", "concurrent_count"]),
                "at": Schema.time,
            ], required: ["system", "test"]),
        "SubmittedResults": Schema.object(
            [
                "tps": Schema.number, "avg_latency": Schema.number, "p50_latency": Schema.number,
                "p95_latency": Schema.number, "p99_latency": Schema.number, "concurrent_count": Schema.integer,
                "total_requests": Schema.integer, "successful_requests": Schema.integer,
                "failed_requests": Schema.integer, "total_tokens": Schema.integer, "duration": Schema.number,
                "score": Schema.number,
            ], required: ["tps", "avg_latency", "concurrent_count", "duration"],
            description: "A client's own score is accepted and ignored: the server computes the score."),
    ]

    static let clientKeyProperties: [String: Schema.Value] = [
        "key_id": Schema.string, "name": Schema.string, "prefix": Schema.string, "created_at": timeOrNull,
        "revoked_at": timeOrNull, "last_used_at": timeOrNull,
    ]

    static let recordProperties: [String: Schema.Value] = [
        "record_id": Schema.string, "display_name": Schema.string,
        "framework": Schema.string, "model_name": Schema.string, "model_params": Schema.number,
        "gpu_config": Schema.complete([
            "name": Schema.string, "count": Schema.integer, "memory_gb": Schema.number,
        ]),
        "concurrent_count": Schema.integer, "dataset_version": Schema.string, "tps": Schema.number,
        "results": Schema.ref("Results"), "score": Schema.number, "score_version": Schema.string,
        "scores": Schema.complete([
            "performance": Schema.number, "efficiency": Schema.number, "stability": Schema.number,
        ]),
        "submitted_at": timeOrNull, "rank": Schema.nullable(Schema.integer),
        "framework_rank": Schema.nullable(Schema.integer), "percentile": Schema.nullable(Schema.number),
        "published": Schema.boolean, "likes_count": Schema.nullable(Schema.integer),
        "dislikes_count": Schema.nullable(Schema.integer), "comments_count": Schema.nullable(Schema.integer),
        "quantization": stringOrNull, "gpu_model": stringOrNull, "baseline": Schema.boolean,
    ]

    // MARK: operations

    static func json(_ status: String, _ description: String, _ schema: String)
        -> (status: String, description: String, media: String?, schema: Schema.Value?)
    {
        (status, description, "application/json", Schema.ref(schema))
    }

    static let noContent = (status: "204", description: "Done.", media: String?.none, schema: Schema.Value?.none)
    static let notModified = (
        status: "304", description: "Unchanged since the ETag sent in If-None-Match.", media: String?.none,
        schema: Schema.Value?.none
    )
    static let recordID = Operation.path("id", "A record id (or, for session routes, a session id).")
    static let versionParameter = Operation.path("version", "A dataset version name.")
    static let boardFilters = [
        Operation.query("dataset_version", Schema.string, "The dataset version; the active one when absent."),
        Operation.query("gpu", Schema.string, "Only this GPU model."),
        Operation.query("model_params_min", Schema.number, "Smallest model size (parameters, ≥ 0)."),
        Operation.query("model_params_max", Schema.number, "Largest model size (parameters, ≥ 0)."),
        Operation.query("model", Schema.string, "Only this model (its name, any case)."),
        Operation.query("quantization", Schema.string, "Only this precision (e.g. fp16, int4, q4)."),
        Operation.query("sort", Schema.string(["score", "tps"]), "The board's order (score) or tokens per second."),
    ]

    static var operations: [Operation] {
        devices + datasets + benchmarks + interactions + admin + operationsRoutes + pages
    }

    static let devices: [Operation] = [
        Operation(
            method: "POST", path: "/api/v1/devices/register", summary: "Register a device", tag: "devices",
            body: Schema.object(
                [
                    "hardware_hash": Schema.string, "gpu_hash": Schema.string,
                    "hardware_info": ["type": ["object", "string", "null"]],
                    "gpu_info": ["type": ["object", "string", "null"]], "challenge_id": Schema.string,
                    "pow_solution": Schema.string,
                ], required: ["hardware_hash", "gpu_hash", "challenge_id", "pow_solution"]),
            responses: [json("201", "Registered; verify with the code.", "Registration")],
            errors: ["400", "409", "413"], rateLimited: true),
        Operation(
            method: "POST", path: "/api/v1/devices/activate", summary: "Activate a verified device: its secret",
            tag: "devices",
            body: Schema.object(
                ["machine_id": Schema.string, "registration_code": Schema.string],
                required: ["machine_id", "registration_code"]),
            responses: [json("200", "The device secret.", "DeviceSecret")], errors: ["400", "404", "409", "413"],
            rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/devices/challenge", summary: "A proof-of-work challenge", tag: "devices",
            responses: [json("200", "Solve before registering or verifying.", "Challenge")], rateLimited: true),
        Operation(
            method: "POST", path: "/api/v1/devices/verify", summary: "Send the verification email", tag: "devices",
            body: Schema.object(
                [
                    "registration_code": Schema.string, "email": Schema.string, "challenge_id": Schema.string,
                    "pow_solution": Schema.string,
                ], required: ["registration_code", "email", "challenge_id", "pow_solution"]),
            responses: [json("202", "The email is on its way.", "Verification")],
            errors: ["400", "404", "409", "413", "503"], rateLimited: true),
        Operation(
            method: "POST", path: "/api/v1/devices/confirm", summary: "Confirm the emailed token", tag: "devices",
            body: Schema.object(["token": Schema.string], required: ["token"]),
            responses: [json("200", "Verified.", "Confirmation")], errors: ["400", "404", "409", "413"],
            rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/devices/status", summary: "The calling device", tag: "devices",
            access: .device, responses: [json("200", "The device.", "Device")], errors: ["400"]),
        Operation(
            method: "GET", path: "/api/v1/devices/records",
            summary: "The device's own records, newest first, whatever their state", tag: "devices",
            access: .device, parameters: [Operation.limit, Operation.cursor],
            responses: [json("200", "A page of the device's records.", "OwnRecordPage")], errors: ["400"]),
        Operation(
            method: "POST", path: "/api/v1/devices/client-keys",
            summary: "A DeepStressModel API key for this device (shown once)", tag: "devices", access: .device,
            body: Schema.object(["name": Schema.string]), bodyRequired: false,
            responses: [
                (
                    "201", "The key, with api_key (only here).", "application/json",
                    Schema.object(
                        clientKeyProperties.merging(["api_key": Schema.string]) { first, _ in first },
                        required: ["key_id", "api_key", "prefix"])
                )
            ], errors: ["400", "413"]),
        Operation(
            method: "POST", path: "/api/v1/datasets/offline-package/{id}",
            summary: "A DeepStressModel offline package (format 4.0) for the client key in X-API-Key", tag: "datasets",
            parameters: [
                Operation.path(
                    "id", "A version name, or anything else (the client sends 1) for the latest active one."),
                Operation.header("X-API-Key", Schema.string, "A client key (leaderboard client dsm-key)."),
            ],
            responses: [("200", "The package object.", "application/json", Schema.anyObject)],
            errors: ["400", "401", "404"], rateLimited: true),
        Operation(
            method: "POST", path: "/api/v1/benchmark-result/upload",
            summary:
                "A DeepStressModel result upload: its encrypted .dat file, judged like a submit (docs/DEEPSTRESSMODEL.md)",
            tag: "ranking",
            parameters: [Operation.header("X-API-Key", Schema.string, "A client key (leaderboard client dsm-key).")],
            body: Schema.object(
                ["api_key": Schema.string, "metadata": Schema.string, "file": Schema.string],
                required: ["api_key", "metadata", "file"]),
            bodyContentType: "multipart/form-data",
            responses: [
                (
                    "200", "Accepted or held for review: status \"success\", the record's id, and a message.",
                    "application/json",
                    Schema.object(
                        [
                            "status": Schema.string, "id": Schema.string, "upload_id": Schema.string,
                            "record_id": Schema.string, "state": Schema.string, "score": Schema.number,
                            "rank": Schema.integer, "message": Schema.string,
                            "reasons": Schema.array(Schema.anyObject),
                        ], required: ["status", "id"])
                )
            ],
            errors: ["400", "401", "403", "409", "413", "422"], rateLimited: true, plainTextErrors: true),
        Operation(
            method: "GET", path: "/api/v1/keys/result-encryption.pem",
            summary: "The public key DeepStressModel encrypts uploaded results to (PEM)", tag: "devices",
            responses: [("200", "The key.", "application/x-pem-file", Schema.string)], errors: [], rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/devices/client-keys", summary: "This device's DeepStressModel API keys",
            tag: "devices", access: .device,
            parameters: [
                Operation.query("include_revoked", Schema.string(["true", "false"]), "Include revoked keys.")
            ],
            responses: [
                (
                    "200", "The keys (never the keys themselves).", "application/json",
                    Schema.complete(["keys": Schema.array(Schema.complete(clientKeyProperties))])
                )
            ], errors: ["400"]),
        Operation(
            method: "DELETE", path: "/api/v1/devices/client-keys/{id}", summary: "Revoke one of this device's keys",
            tag: "devices", access: .device, parameters: [Operation.path("id", "A client key id.")],
            responses: [
                ("200", "The revoked key.", "application/json", Schema.complete(clientKeyProperties))
            ], errors: ["400", "404"]),
        Operation(
            method: "POST", path: "/api/v1/devices/rotate",
            summary: "Rotate the device secret (signature version 2 only)", tag: "devices", access: .device,
            responses: [json("200", "The new secret; the old one works a while longer.", "DeviceSecret")],
            errors: ["400", "413"], rateLimited: true),
    ]

    static let datasets: [Operation] = [
        Operation(
            method: "GET", path: "/api/v1/datasets", summary: "Active dataset versions", tag: "datasets",
            parameters: [Operation.limit, Operation.cursor, Operation.ifNoneMatch],
            responses: [json("200", "A page of versions.", "DatasetPage"), notModified], errors: ["400"],
            rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/datasets/latest", summary: "The active version with its manifest",
            tag: "datasets", parameters: [Operation.ifNoneMatch],
            responses: [json("200", "The version.", "DatasetVersion"), notModified], errors: ["404"], rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/datasets/{version}", summary: "A version with its manifest", tag: "datasets",
            parameters: [versionParameter, Operation.ifNoneMatch],
            responses: [json("200", "The version.", "DatasetVersion"), notModified], errors: ["400", "404"],
            rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/datasets/{version}/key", summary: "The content key, wrapped for the device",
            tag: "datasets", access: .device, parameters: [versionParameter],
            responses: [json("200", "The wrapped key.", "WrappedKey")], errors: ["400", "403", "404"]),
        Operation(
            method: "GET", path: "/api/v1/datasets/{version}/chunks/{index}", summary: "One ciphertext chunk",
            tag: "datasets",
            parameters: [
                versionParameter, Operation.path("index", "The chunk index (from 0).", schema: Schema.string),
                Operation.ifNoneMatch,
            ],
            responses: [
                ("200", "The chunk's ciphertext.", "application/octet-stream", ["type": "string", "format": "binary"]),
                notModified,
            ], errors: ["400", "404"], rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/datasets/{version}/download", summary: "The whole ciphertext (Range allowed)",
            tag: "datasets",
            parameters: [
                versionParameter,
                Operation.header("Range", Schema.string, "One range: bytes=first-last, bytes=first- or bytes=-n."),
            ],
            responses: [
                ("200", "All of it.", "application/octet-stream", ["type": "string", "format": "binary"]),
                ("206", "The range.", "application/octet-stream", ["type": "string", "format": "binary"]),
            ], errors: ["400", "404", "416"], rateLimited: true),
    ]

    static let submitBody = Schema.object(
        [
            "session_id": Schema.string, "results": Schema.ref("SubmittedResults"),
            "metrics": Schema.array(Schema.ref("MetricSample")), "dataset_proof": Schema.string,
            "requests": Schema.array(Schema.ref("RequestRecord")),
        ], required: ["results"])
    static let submitResponses = [
        json("201", "Accepted: the record and its rank.", "Outcome"),
        json("202", "Held for review.", "Outcome"),
    ]

    static let benchmarks: [Operation] = [
        Operation(
            method: "POST", path: "/api/v1/benchmarks/start", summary: "Start a benchmark session", tag: "benchmarks",
            access: .device,
            body: Schema.object(
                [
                    "dataset_version": Schema.string, "dataset_checksum": Schema.string, "framework": Schema.string,
                    "model_name": Schema.string, "model_params": Schema.number,
                    "framework_config": ["type": ["object", "string", "null"]], "gpu_config": Schema.ref("GPUConfig"),
                    "concurrent_count": Schema.integer, "display_name": Schema.string,
                    "quantization": Schema.string,
                ],
                required: [
                    "dataset_version", "dataset_checksum", "framework", "model_name", "model_params", "gpu_config",
                    "concurrent_count",
                ]),
            responses: [json("201", "The session.", "Session")], errors: ["400", "404", "409", "413"]),
        Operation(
            method: "POST", path: "/api/v1/benchmarks/{id}/metrics", summary: "Report a metric sample",
            tag: "benchmarks", access: .device, parameters: [recordID], body: Schema.ref("MetricSample"),
            responses: [
                ("202", "Stored.", "application/json", Schema.complete(["metric_samples": Schema.integer]))
            ], errors: ["400", "404", "409", "413"]),
        Operation(
            method: "GET", path: "/api/v1/benchmarks/{id}/status", summary: "A session of the device",
            tag: "benchmarks", access: .device, parameters: [recordID],
            responses: [json("200", "The session.", "Session")], errors: ["400", "404"]),
        Operation(
            method: "POST", path: "/api/v1/benchmarks/{id}/submit", summary: "Submit a session's results",
            tag: "benchmarks", access: .device, parameters: [recordID, Operation.idempotencyKey], body: submitBody,
            responses: submitResponses, errors: ["400", "404", "409", "413", "422"]),
        Operation(
            method: "POST", path: "/api/v1/benchmarks", summary: "Submit results (session_id in the body)",
            tag: "benchmarks", access: .device, parameters: [Operation.idempotencyKey], body: submitBody,
            responses: submitResponses, errors: ["400", "404", "409", "413", "422"]),
        Operation(
            method: "GET", path: "/api/v1/benchmarks", summary: "The global board", tag: "benchmarks",
            parameters: [Operation.limit, Operation.cursor, Operation.ifNoneMatch]
                + [Operation.query("framework", Schema.string, "Only this framework.")] + boardFilters,
            responses: [json("200", "A page of the board.", "BoardPage"), notModified], errors: ["400"],
            rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/benchmarks/frameworks/{framework}", summary: "One framework's board",
            tag: "benchmarks",
            parameters: [Operation.path("framework", "A framework name."), Operation.limit, Operation.cursor]
                + boardFilters,
            responses: [json("200", "A page of the board.", "BoardPage"), notModified], errors: ["400"],
            rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/benchmarks/export", summary: "Every ranked record, streamed",
            tag: "benchmarks",
            parameters: [
                Operation.query("format", Schema.string(["json", "csv"]), "json (default) or csv."),
                Operation.query("framework", Schema.string, "Only this framework."),
            ] + boardFilters,
            responses: [
                ("200", "The records.", "application/json", Schema.array(Schema.ref("Record"))),
                ("200", "The records.", "text/csv", Schema.string),
            ], errors: ["400"], rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/benchmarks/{id}", summary: "A record", tag: "benchmarks",
            parameters: [recordID, Operation.ifNoneMatch],
            responses: [json("200", "The record.", "Record"), notModified], errors: ["400", "404"], rateLimited: true),
        Operation(
            method: "GET", path: "/api/v1/benchmarks/{id}/similar", summary: "Records of similar systems",
            tag: "benchmarks",
            parameters: [recordID, Operation.query("limit", Schema.integer(minimum: 0), "How many.")],
            responses: [
                (
                    "200", "Similar records.", "application/json",
                    Schema.complete(["records": Schema.array(Schema.ref("Record"))])
                ),
                notModified,
            ], errors: ["400", "404"], rateLimited: true),
        Operation(
            method: "POST", path: "/api/v1/benchmarks/{id}/unpublish", summary: "Take one's record off the boards",
            tag: "benchmarks", access: .device, parameters: [recordID],
            responses: [json("200", "The record, unpublished.", "Record")], errors: ["400", "403", "404"]),
        Operation(
            method: "DELETE", path: "/api/v1/benchmarks/{id}", summary: "Delete one's record", tag: "benchmarks",
            access: .device, parameters: [recordID], responses: [noContent], errors: ["400", "403", "404"]),
        Operation(
            method: "GET", path: "/api/v1/stats", summary: "Distributions of a dataset version's records",
            tag: "benchmarks",
            parameters: [
                Operation.query("dataset_version", Schema.string, "The version; the active one when absent."),
                Operation.ifNoneMatch,
            ],
            responses: [json("200", "The statistics.", "Stats"), notModified], errors: ["400", "404"], rateLimited: true
        ),
    ]

    static let commentParameter = Operation.path("comment", "A comment id.")

    static let interactions: [Operation] =
        ["like", "dislike"].map { action in
            Operation(
                method: "POST", path: "/api/v1/benchmarks/{id}/\(action)", summary: "\(action.capitalized) a record",
                tag: "interactions", access: .device, parameters: [recordID],
                responses: [json("200", "The record's counts.", "Counts")], errors: ["400", "404"])
        } + [
            Operation(
                method: "DELETE", path: "/api/v1/benchmarks/{id}/reaction", summary: "Remove one's reaction",
                tag: "interactions", access: .device, parameters: [recordID],
                responses: [json("200", "The record's counts.", "Counts")], errors: ["400", "404"]),
            Operation(
                method: "GET", path: "/api/v1/benchmarks/{id}/comments", summary: "A record's comments, oldest first",
                tag: "interactions", parameters: [recordID, Operation.limit, Operation.cursor, Operation.ifNoneMatch],
                responses: [json("200", "A page of comments.", "CommentPage"), notModified], errors: ["400", "404"],
                rateLimited: true),
            Operation(
                method: "POST", path: "/api/v1/benchmarks/{id}/comments", summary: "Comment on a record",
                tag: "interactions", access: .deviceOrAnonymous, parameters: [recordID],
                body: Schema.object(
                    ["content": Schema.string, "author_name": Schema.string], required: ["content"]),
                responses: [json("201", "The comment.", "Comment")], errors: ["400", "404", "413"],
                rateLimited: true),
            Operation(
                method: "DELETE", path: "/api/v1/benchmarks/{id}/comments/{comment}",
                summary: "Delete one's comment", tag: "interactions", access: .device,
                parameters: [recordID, commentParameter], responses: [noContent], errors: ["400", "403", "404"]),
            Operation(
                method: "POST", path: "/api/v1/benchmarks/{id}/flag", summary: "Flag a record or a comment",
                tag: "interactions", access: .deviceOrAnonymous, parameters: [recordID],
                body: Schema.object(["reason": Schema.string, "comment_id": Schema.string], required: ["reason"]),
                responses: [json("201", "The flag.", "Flag")], errors: ["400", "404", "413"], rateLimited: true),
            Operation(
                method: "GET", path: "/api/v1/notifications", summary: "The device's notifications",
                tag: "interactions", access: .device,
                parameters: [
                    Operation.query("since", Schema.integer(minimum: 0), "Only those after this sequence number."),
                    Operation.query("limit", Schema.integer(minimum: 0), "How many."),
                    Operation.query("unread_only", Schema.string(["true", "false"]), "Only unread ones."),
                ],
                responses: [json("200", "Notifications, oldest first.", "NotificationPage")], errors: ["400"]),
            Operation(
                method: "POST", path: "/api/v1/notifications/read", summary: "Mark notifications read",
                tag: "interactions", access: .device,
                body: Schema.object(
                    ["up_to_sequence": Schema.integer(minimum: 0)], required: ["up_to_sequence"]),
                responses: [
                    ("200", "How many were marked.", "application/json", Schema.complete(["marked": Schema.integer]))
                ], errors: ["400", "413"]),
        ]

    static let admin: [Operation] = [
        Operation(
            method: "POST", path: "/api/v1/admin/keys", summary: "Create an API key", tag: "admin", access: .admin,
            body: Schema.object(
                [
                    "name": Schema.string,
                    "permissions": Schema.array(Schema.string(["read", "write", "admin"])),
                    "rate_limit_per_minute": Schema.integer, "expires_at": Schema.time,
                ], required: ["name"]),
            responses: [json("201", "The key with its secret.", "CreatedAPIKey")], errors: ["400", "413"]),
        Operation(
            method: "GET", path: "/api/v1/admin/keys", summary: "API keys", tag: "admin", access: .admin,
            parameters: [
                Operation.limit, Operation.cursor,
                Operation.query(
                    "include_revoked", Schema.string(["true", "false", "1", "0"]), "Include revoked keys."),
            ],
            responses: [json("200", "A page of keys.", "APIKeyPage")], errors: ["400"]),
        Operation(
            method: "DELETE", path: "/api/v1/admin/keys/{key_id}", summary: "Revoke an API key", tag: "admin",
            access: .admin, parameters: [Operation.path("key_id", "A key id.")],
            responses: [json("200", "The revoked key.", "APIKey")], errors: ["400", "404"]),
        Operation(
            method: "GET", path: "/api/v1/admin/datasets", summary: "Every dataset version", tag: "admin",
            access: .admin,
            parameters: [
                Operation.limit, Operation.cursor,
                Operation.query("include_inactive", Schema.string(["true", "false"]), "Include inactive versions."),
            ],
            responses: [json("200", "A page of versions.", "DatasetPage")], errors: ["400"]),
        Operation(
            method: "POST", path: "/api/v1/admin/datasets", summary: "Upload a dataset version (streamed body)",
            tag: "admin", access: .admin,
            parameters: [
                Operation.query("version", Schema.string, "The new version's name.", required: true),
                Operation.query("name", Schema.string, "A display name."),
                Operation.query("description", Schema.string, "A description."),
                Operation.query("activate", Schema.string(["true", "false", "1", "0"]), "Make it the active one."),
                Operation.query("chunk_size", Schema.integer(minimum: 0), "Chunk size in bytes (default 4 MiB)."),
                Operation.query(
                    "min_duration_seconds", Schema.integer(minimum: 0), "Shortest accepted benchmark duration."),
            ],
            body: ["type": "string", "format": "binary"], bodyContentType: "application/octet-stream",
            responses: [json("201", "The version, encrypted and stored.", "DatasetVersion")],
            errors: ["400", "409", "413"]),
        Operation(
            method: "POST", path: "/api/v1/admin/datasets/{version}/activate", summary: "Activate a version",
            tag: "admin", access: .admin, parameters: [versionParameter],
            responses: [json("200", "The version.", "DatasetVersion")], errors: ["400", "404"]),
        Operation(
            method: "POST", path: "/api/v1/admin/datasets/{version}/deactivate", summary: "Deactivate a version",
            tag: "admin", access: .admin, parameters: [versionParameter],
            responses: [json("200", "The version.", "DatasetVersion")], errors: ["400", "404"]),
        Operation(
            method: "GET", path: "/api/v1/admin/reviews", summary: "Submissions held for review", tag: "admin",
            access: .admin,
            parameters: [
                Operation.limit, Operation.cursor,
                Operation.query("include_decided", Schema.string(["true", "false"]), "Include decided ones."),
            ],
            responses: [json("200", "A page of reviews.", "ReviewPage")], errors: ["400"]),
        Operation(
            method: "POST", path: "/api/v1/admin/reviews/{id}/approve", summary: "Approve a held submission",
            tag: "admin", access: .admin, parameters: [Operation.path("id", "A review id.")],
            body: Schema.object(["note": Schema.string]), bodyRequired: false,
            responses: [json("200", "The decided review.", "Review")], errors: ["400", "404", "409", "413"]),
        Operation(
            method: "POST", path: "/api/v1/admin/reviews/{id}/reject", summary: "Reject a held submission",
            tag: "admin", access: .admin, parameters: [Operation.path("id", "A review id.")],
            body: Schema.object(["note": Schema.string]), bodyRequired: false,
            responses: [json("200", "The decided review.", "Review")], errors: ["400", "404", "409", "413"]),
        Operation(
            method: "POST", path: "/api/v1/admin/ranking/rebuild", summary: "Rebuild the rank index", tag: "admin",
            access: .admin,
            parameters: [Operation.query("dataset_version", Schema.string, "Only this version.")],
            responses: [
                (
                    "200", "How many records were indexed.", "application/json",
                    Schema.complete(["records_indexed": Schema.integer])
                )
            ], errors: ["400", "404"]),
        Operation(
            method: "DELETE", path: "/api/v1/admin/comments/{comment}", summary: "Remove any comment", tag: "admin",
            access: .admin, parameters: [commentParameter],
            responses: [json("200", "The removed comment.", "Comment")], errors: ["400", "404"]),
        Operation(
            method: "DELETE", path: "/api/v1/admin/client-keys/{id}", summary: "Revoke any device's client key",
            tag: "admin", access: .admin, parameters: [Operation.path("id", "A client key id.")],
            responses: [
                ("200", "The revoked key.", "application/json", Schema.complete(clientKeyProperties))
            ], errors: ["400", "404"]),
        Operation(
            method: "GET", path: "/api/v1/admin/flags", summary: "Flags raised by users", tag: "admin",
            access: .admin,
            parameters: [
                Operation.limit, Operation.cursor,
                Operation.query("include_resolved", Schema.string(["true", "false"]), "Include resolved flags."),
            ],
            responses: [json("200", "A page of flags.", "FlagPage")], errors: ["400"]),
        Operation(
            method: "POST", path: "/api/v1/admin/flags/{flag}/resolve", summary: "Resolve a flag", tag: "admin",
            access: .admin, parameters: [Operation.path("flag", "A flag id.")],
            body: Schema.object(
                ["resolution": Schema.string(["dismissed", "actioned"]), "note": Schema.string],
                required: ["resolution", "note"]),
            responses: [json("200", "The resolved flag.", "Flag")], errors: ["400", "404", "409", "413"]),
        Operation(
            method: "POST", path: "/api/v1/admin/records/{id}/moderation",
            summary: "Hide, restore, mark as baseline or remove a record, with a reason", tag: "admin",
            access: .admin, parameters: [Operation.path("id", "A record id.")],
            body: Schema.object(
                ["action": Schema.string(["hide", "restore", "baseline", "remove"]), "reason": Schema.string],
                required: ["action", "reason"]),
            responses: [
                (
                    "200", "The record's status after the action.", "application/json",
                    Schema.complete([
                        "record_id": Schema.string,
                        "status": Schema.string(["accepted", "hidden", "baseline", "removed"]),
                    ])
                )
            ], errors: ["400", "404", "409", "413"]),
        Operation(
            method: "GET", path: "/api/v1/admin/audit", summary: "A service's append-only log of operator actions",
            tag: "admin", access: .admin,
            parameters: [
                Operation.query(
                    "service", Schema.string(["auth", "dataset", "ranking", "interaction"]),
                    "Whose log (default ranking)."),
                Operation.query("after", Schema.integer(minimum: 0), "Entries after this sequence number."),
                Operation.query("limit", Schema.integer(minimum: 0), "How many (1–500; 0 or none: 100)."),
            ],
            responses: [json("200", "Entries, oldest first.", "AuditPage")], errors: ["400"]),
    ]

    static let html = (
        status: "200", description: "An HTML page.", media: String?.some("text/html"),
        schema: Schema.Value?.some(Schema.string)
    )

    /// What a page answers when it cannot show itself: a page too (docs/GATEWAY.md, "Web pages").
    static func htmlError(_ status: String, _ description: String) -> (
        status: String, description: String, media: String?, schema: Schema.Value?
    ) {
        (status, description, "text/html", Schema.string)
    }

    static let pageErrors = [
        htmlError("400", "A parameter is malformed."), htmlError("429", "Too many uncached reads from the address."),
        (
            status: "303", description: "The same page without its empty parameters (as a form sends them).",
            media: String?.none, schema: Schema.Value?.none
        ),
    ]

    /// The web pages (server-rendered HTML, cached with ETags like the JSON routes).
    /// (Errors raised before a page renders, e.g. a NUL in the URL, come from the general middleware as
    /// problem+json: `errors` declares that media type beside the page's.)
    static let pages: [Operation] = [
        Operation(
            method: "GET", path: "/", summary: "The board", tag: "pages",
            parameters: [Operation.limit, Operation.cursor, Operation.ifNoneMatch]
                + [Operation.query("framework", Schema.string, "Only this framework.")] + boardFilters,
            responses: [html, notModified, htmlError("404", "No such dataset version.")] + pageErrors,
            errors: ["400"]),
        Operation(
            method: "GET", path: "/records/{id}", summary: "A record", tag: "pages",
            parameters: [recordID, Operation.ifNoneMatch],
            responses: [html, notModified, htmlError("404", "No published record has this id.")] + pageErrors,
            errors: ["400"]),
        Operation(
            method: "POST", path: "/records/{id}/flag", summary: "The flag button: report a record", tag: "pages",
            parameters: [recordID],
            body: Schema.object(["reason": Schema.string], required: ["reason"]),
            bodyContentType: "application/x-www-form-urlencoded",
            responses: [
                html, htmlError("400", "The reason is missing or too long."),
                htmlError("404", "No published record has this id."), htmlError("413", "The form is too large."),
                htmlError("429", "Too many reports from the address."),
            ], errors: ["400", "413"]),
        Operation(
            method: "GET", path: "/compare", summary: "Records side by side", tag: "pages",
            parameters: [
                Operation.query("records", Schema.string, "1 to 8 record ids, comma-separated."), Operation.ifNoneMatch,
            ],
            responses: [html, notModified, htmlError("404", "A record is unknown.")] + pageErrors, errors: ["400"]),
        Operation(
            method: "GET", path: "/stats", summary: "Distributions per framework and GPU", tag: "pages",
            parameters: [
                Operation.query("dataset_version", Schema.string, "The version; the active one when absent."),
                Operation.ifNoneMatch,
            ],
            responses: [html, notModified, htmlError("404", "No such dataset version.")] + pageErrors,
            errors: ["400"]),
        Operation(
            method: "GET", path: "/datasets", summary: "Dataset versions and how to download them", tag: "pages",
            parameters: [Operation.ifNoneMatch], responses: [html, notModified] + pageErrors,
            errors: ["400"]),
        Operation(
            method: "GET", path: "/assets/site.css", summary: "The pages' stylesheet", tag: "pages",
            responses: [("200", "CSS.", "text/css", Schema.string)]),
        Operation(
            method: "GET", path: "/assets/board.js", summary: "The board's live updates (optional)", tag: "pages",
            responses: [("200", "JavaScript.", "text/javascript", Schema.string)]),
    ]

    static let operationsRoutes: [Operation] = [
        Operation(
            method: "GET", path: "/health/live", summary: "The process is up", tag: "operations",
            responses: [
                ("200", "Alive.", "application/json", Schema.complete(["status": Schema.string(["ok"])]))
            ]),
        Operation(
            method: "GET", path: "/health/ready", summary: "Every dependency answers", tag: "operations",
            responses: [
                ("200", "Ready.", "application/json", readiness),
                ("503", "Not ready: checks say which dependency is not.", "application/json", readiness),
            ]),
        Operation(
            method: "GET", path: "/metrics", summary: "Prometheus metrics", tag: "operations",
            responses: [("200", "Text exposition format 0.0.4.", "text/plain", Schema.string)]),
        Operation(
            method: "GET", path: "/openapi.json", summary: "This document", tag: "operations",
            responses: [("200", "OpenAPI 3.1.", "application/json", Schema.anyObject)]),
        Operation(
            method: "GET", path: "/verify", summary: "The device verification page", tag: "devices",
            parameters: [Operation.query("code", Schema.string, "The registration code to fill in.")],
            responses: [html]),
        Operation(
            method: "GET", path: "/assets/verify.js", summary: "The page's proof-of-work solver", tag: "devices",
            responses: [("200", "JavaScript.", "text/javascript", Schema.string)]),
        Operation(
            method: "GET", path: "/verify/confirm", summary: "The emailed confirmation link", tag: "devices",
            parameters: [Operation.query("token", Schema.string, "The emailed token.")],
            responses: [
                html, ("400", "The link is malformed.", "text/html", Schema.string),
                ("404", "The link is unknown or expired.", "text/html", Schema.string),
                ("409", "The device is not waiting for this link.", "text/html", Schema.string),
            ], errors: ["400"], rateLimited: true),
    ]

    static let readiness = Schema.complete([
        "status": Schema.string(["ready", "not_ready"]),
        "checks": ["type": "object", "additionalProperties": Schema.string],
    ])
}
