import ServiceKit
import TestSupport
import Testing

@Suite("Redis client", .enabled(if: TestEnvironment.hasRedis), .timeLimit(.minutes(1)))
struct RedisClientTests {
    @Test("hundreds of concurrent commands pipeline over a small pool, each with its own reply")
    func pipelining() async throws {
        let client = try TestEnvironment.redisClient(poolSize: 2)
        let prefix = TestEnvironment.uniquePrefix("pipe")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask {
                    try await client.send(["SET", RedisArgument("\(prefix)\(index)"), RedisArgument(index)])
                    let value = try await client.send(["GET", RedisArgument("\(prefix)\(index)")])
                    #expect(value.integer == Int64(index))
                }
            }
            try await group.waitForAll()
        }
        await client.close()
    }

    @Test("arguments and replies are binary safe")
    func binary() async throws {
        let client = try TestEnvironment.redisClient()
        let key = TestEnvironment.uniquePrefix("bin") + "k"
        let bytes: [UInt8] = [0, 13, 10, 36, 42, 255, 0]
        try await client.send(["SET", RedisArgument(key), RedisArgument(bytes: bytes)])
        #expect(try await client.send(["GET", RedisArgument(key)]).bytes == bytes)
        #expect(try await client.send(["GET", RedisArgument(key + "missing")]) == .null)
        await client.close()
    }

    @Test("a server error reply throws with kind .server and the connection stays usable")
    func serverError() async throws {
        let client = try TestEnvironment.redisClient(poolSize: 1)
        await #expect(throws: RedisClientError.self) { try await client.send(["NOSUCHCOMMAND"]) }
        try await client.ping()
        await client.close()
    }

    @Test("a killed connection is replaced on the next command")
    func reconnect() async throws {
        let client = try TestEnvironment.redisClient(poolSize: 1)
        let id = try #require(try await client.send(["CLIENT", "ID"]).integer)
        let admin = try TestEnvironment.redisClient(poolSize: 1)
        // Only this client's connection: other tests share the server.
        try await admin.send(["CLIENT", "KILL", "ID", RedisArgument(id)])
        var recovered = false
        for _ in 0..<3 where !recovered {
            recovered = (try? await client.ping()) != nil
        }
        #expect(recovered)
        await client.close()
        await admin.close()
    }

    @Test("a reply slower than the timeout fails with .timeout")
    func timeout() async throws {
        let client = try TestEnvironment.redisClient(poolSize: 1, timeout: .milliseconds(100))
        // The timeout bounds connecting too: on a machine busy with the whole suite a connect can take longer than
        // 100 ms (a connectionFailed, not what this test is about), so the one connection is made first. It stops at
        // the first answered ping: a later ping timing out would drop that connection again (the loop once went on
        // for all 50 tries, and the slow reply below then met a failed reconnect).
        var connected = false
        for _ in 0..<50 where !connected { connected = (try? await client.ping()) != nil }
        try #require(connected, "no connection answered a ping within 50 tries")
        do {
            try await client.send(["DEBUG", "SLEEP", "0.5"])
            Issue.record("expected a timeout")
        } catch let error as RedisClientError {
            #expect(error.kind == .timeout)
        }
        await client.close()
    }

    @Test("scripts run by SHA and are loaded on the first NOSCRIPT")
    func scripts() async throws {
        let client = try TestEnvironment.redisClient()
        try await client.send(["SCRIPT", "FLUSH"])
        let script = RedisScript("return ARGV[1] .. KEYS[1]")
        #expect(try await client.evaluate(script, keys: ["k"], arguments: ["v"]).string == "vk")
        #expect(try await client.evaluate(script, keys: ["x"], arguments: ["y"]).string == "yx")
        await client.close()
    }
}
