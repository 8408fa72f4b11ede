import Foundation
import Gateway
import HTTPTypes
import ServiceKit
import TestSupport
import Testing

@Suite("Interaction routes through the gateway", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct InteractionRoutesTests {
    @Test(
        "reactions, hostile comments, flags and the owner's notifications over REST",
        arguments: StorageBackend.available)
    func interactions(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let owner = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let fan = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let submitted = try await owner.run(
                version: dataset.version, checksum: dataset.checksum, tps: 120, key: "k")
            let record = try #require(submitted["record_id"])
            let base = "/api/v1/benchmarks/\(record)"

            let liked = try await fan.call(.post, base + "/like")
            #expect(liked.status == .ok && liked.json["likes_count"] as? Int == 1 && liked["mine"] == "like")
            let switched = try await fan.call(.post, base + "/dislike")
            #expect(switched.json["likes_count"] as? Int == 0 && switched.json["dislikes_count"] as? Int == 1)
            #expect(try await owner.call(.post, base + "/like").json["likes_count"] as? Int == 1)
            let removed = try await fan.call(.delete, base + "/reaction")
            #expect(removed.json["dislikes_count"] as? Int == 0 && removed.json["mine"] is NSNull)
            expectProblem(try await gateway.request(.post, base + "/like"), .unauthorized, "missing_signature")
            expectProblem(
                try await fan.call(.post, "/api/v1/benchmarks/\(String(repeating: "0", count: 32))/like"), .notFound,
                "record_not_found")

            // Anonymous and signed comments, stored and returned exactly as written; the IP never comes back.
            let hostile = "<script>alert(1)</script> ' OR 1=1; DROP TABLE comments; --"
            let anonymous = try await gateway.request(
                .post, base + "/comments", json: ["content": hostile, "author_name": "<img src=x onerror=alert(2)>"])
            #expect(anonymous.status == .created, "\(anonymous.text)")
            #expect(anonymous["content"] == hostile && anonymous.json["machine_id"] == nil)
            let signed = try await fan.call(.post, base + "/comments", ["content": "  fast rig!  "])
            // Known by its name only: no machine id in public JSON.
            #expect(signed.status == .created && signed.json["machine_id"] == nil)
            #expect(signed["content"] == "  fast rig!  ")
            let listed = try await gateway.request(.get, base + "/comments?limit=1")
            let first = try #require((listed.json["comments"] as? [[String: Any]])?.first)
            #expect(first["content"] as? String == "  fast rig!  " && first["ip"] == nil)
            let rest = try await gateway.request(.get, base + "/comments?cursor=\(try #require(listed["next_cursor"]))")
            #expect((rest.json["comments"] as? [[String: Any]])?.first?["content"] as? String == hostile)
            #expect(!listed.text.contains("\"ip\"") && !rest.text.contains("\"ip\""))

            expectProblem(
                try await gateway.request(.post, base + "/comments", json: ["content": "   "]), .badRequest,
                "empty_comment")
            expectProblem(
                try await gateway.request(
                    .post, base + "/comments", json: ["content": String(repeating: "a", count: 2001)]),
                .badRequest, "comment_too_long")
            expectProblem(
                try await gateway.request(.post, base + "/comments", json: ["content": 5]), .badRequest,
                "invalid_field_type")
            expectProblem(
                try await gateway.request(.post, base + "/comments", raw: "{\"content\": \"\\udc00\"}"), .badRequest,
                "invalid_json")
            let signedID = try #require(signed["comment_id"])
            expectProblem(
                try await owner.call(.delete, base + "/comments/\(signedID)"), .forbidden, "not_comment_author")
            #expect(try await fan.call(.delete, base + "/comments/\(signedID)").status == .noContent)

            let record2 = try await gateway.request(.get, base)
            #expect(record2.json["likes_count"] as? Int == 1 && record2.json["comments_count"] as? Int == 1)
            let board = try await gateway.request(.get, "/api/v1/benchmarks")
            #expect((board.json["records"] as? [[String: Any]])?.first?["comments_count"] as? Int == 1)

            let flagged = try await gateway.request(.post, base + "/flag", json: ["reason": "tps looks impossible"])
            #expect(flagged.status == .created && flagged["target"] == "record")
            let flags = try await gateway.request(.get, "/api/v1/admin/flags", headers: try await gateway.adminKey())
            #expect((flags.json["flags"] as? [[String: Any]])?.count == 1)

            // The owner heard about the fan's like, then the comments (its own like is not news).
            let notifications = try await owner.call(.get, "/api/v1/notifications?since=0")
            let kinds = (notifications.json["notifications"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }
            #expect(kinds == ["reaction", "comment", "comment"], "\(notifications.text)")
            #expect(notifications.json["latest_sequence"] as? Int == 3)
            #expect(
                try await owner.call(.post, "/api/v1/notifications/read", ["up_to_sequence": 3]).json["marked"] as? Int
                    == 3)
            let unread = try await owner.call(.get, "/api/v1/notifications?unread_only=true")
            #expect((unread.json["notifications"] as? [Any])?.isEmpty == true)
            #expect(try await fan.call(.get, "/api/v1/notifications").json["latest_sequence"] as? Int == 0)

            // An operator resolves the flag and makes the record a baseline; both land in the audit logs.
            let admin = try await gateway.adminKey()
            let flagID = try #require(flagged["flag_id"])
            let resolve = "/api/v1/admin/flags/\(flagID)/resolve"
            expectProblem(
                try await gateway.request(
                    .post, resolve, json: ["resolution": "ignored", "note": "x"], headers: admin),
                .badRequest, "invalid_resolution")
            let resolved = try await gateway.request(
                .post, resolve, json: ["resolution": "dismissed", "note": "checked: plausible"], headers: admin)
            #expect(resolved.status == .ok && resolved["resolution"] == "dismissed", "\(resolved.text)")
            expectProblem(
                try await gateway.request(
                    .post, resolve, json: ["resolution": "actioned", "note": "x"], headers: admin),
                .conflict, "flag_resolved")
            let moderation = "/api/v1/admin/records/\(record)/moderation"
            expectProblem(
                try await gateway.request(.post, moderation, json: ["action": "hide", "reason": "x"]), .unauthorized,
                "missing_api_key")
            expectProblem(
                try await gateway.request(.post, moderation, json: ["action": "hide", "reason": ""], headers: admin),
                .badRequest, "invalid_reason")
            let marked = try await gateway.request(
                .post, moderation, json: ["action": "baseline", "reason": "vendor reference run"], headers: admin)
            #expect(marked.status == .ok && marked["status"] == "baseline", "\(marked.text)")
            let after = try await gateway.request(.get, "/api/v1/benchmarks")
            #expect((after.json["records"] as? [[String: Any]])?.isEmpty == true, "\(after.text)")
            let baselines = try #require(after.json["baselines"] as? [[String: Any]])
            #expect(baselines.map { $0["record_id"] as? String } == [record])
            #expect(baselines.first?["baseline"] as? Bool == true && baselines.first?["rank"] is NSNull)
            #expect(baselines.first?["machine_id"] == nil && !after.text.contains(owner.device.machineID))

            // The owner still finds and manages its record; nobody else sees it as theirs.
            let mine = try await owner.call(.get, "/api/v1/devices/records")
            let own = try #require(mine.json["records"] as? [[String: Any]], "\(mine.text)")
            #expect(own.map { $0["record_id"] as? String } == [record] && own.first?["status"] as? String == "baseline")
            #expect((try await fan.call(.get, "/api/v1/devices/records").json["records"] as? [Any])?.isEmpty == true)
            expectProblem(try await gateway.request(.get, "/api/v1/devices/records"), .unauthorized, "missing_signature")

            let rankingLog = try await gateway.request(.get, "/api/v1/admin/audit?service=ranking", headers: admin)
            let rankingEntries = try #require(rankingLog.json["entries"] as? [[String: Any]], "\(rankingLog.text)")
            #expect(rankingEntries.map { $0["action"] as? String } == ["record.baseline"])
            #expect((rankingEntries.first?["actor"] as? String)?.hasPrefix("operator:") == true)
            #expect(rankingEntries.first?["reason"] as? String == "vendor reference run")
            let interactionLog = try await gateway.request(
                .get, "/api/v1/admin/audit?service=interaction", headers: admin)
            let interactionEntries = try #require(interactionLog.json["entries"] as? [[String: Any]])
            #expect(interactionEntries.map { $0["action"] as? String } == ["flag.dismiss"])
            for (service, action) in [("auth", "apikey.create"), ("dataset", "dataset.upload")] {
                let log = try await gateway.request(.get, "/api/v1/admin/audit?service=\(service)", headers: admin)
                let actions = (log.json["entries"] as? [[String: Any]])?.compactMap { $0["action"] as? String } ?? []
                #expect(actions.contains(action), "\(log.text)")
            }
            expectProblem(
                try await gateway.request(.get, "/api/v1/admin/audit?service=mail", headers: admin), .badRequest,
                "invalid_service")
        }
    }

    @Test("comment flooding from one address is limited")
    func flooding() async throws {
        var policies = AuthGateway.lenient
        policies.comments = RateLimitPolicy(name: "comments", limit: 3, period: .seconds(60))
        try await AuthGateway.with(.sqlite, policies: policies) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let owner = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let record = try #require(
                try await owner.run(version: dataset.version, checksum: dataset.checksum, tps: 50, key: "k")[
                    "record_id"])
            for _ in 0..<3 {
                let reply = try await gateway.request(
                    .post, "/api/v1/benchmarks/\(record)/comments", json: ["content": "spam"])
                #expect(reply.status == .created)
            }
            let limited = try await gateway.request(
                .post, "/api/v1/benchmarks/\(record)/comments", json: ["content": "spam"])
            expectProblem(limited, .tooManyRequests, "rate_limited")
            #expect(limited.headers[.retryAfter] != nil)
            let comments = try await gateway.request(.get, "/api/v1/benchmarks/\(record)/comments")
            #expect((comments.json["comments"] as? [Any])?.count == 3)
        }
    }
}
