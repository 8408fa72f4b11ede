import Foundation
import ServiceKit
import TestSupport
import Testing

@Suite("Boot: gRPC between processes over mutual TLS", .serialized, .timeLimit(.minutes(3)))
struct TLSTests {
    /// A throwaway CA and one node certificate (server and client use) signed by it, made with the openssl CLI.
    func makeCertificates(in directory: String) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=leaderboard-test-ca 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj /CN=node 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext.cnf
            openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 1 \
                -extfile ext.cnf 2>/dev/null
            """
        try await ExternalTools.run("/bin/bash", ["-c", script])
    }

    @Test("a gateway reaches services in another process over mTLS; without TLS it cannot")
    func mutualTLS() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await makeCertificates(in: directory + "/tls")
        let tls = [
            "--grpc-tls-cert", "\(directory)/tls/node.pem", "--grpc-tls-key", "\(directory)/tls/node.key",
            "--grpc-tls-ca", "\(directory)/tls/ca.pem",
        ]
        let services = try LeaderboardProcess(
            ["serve", "--target", "auth,dataset,ranking,interaction", "--data-dir", directory] + ephemeral + tls)
        let port = try await services.grpcPort()
        let remotes = Target.gateway.dependencies.flatMap { ["--\($0.rawValue)-address", "127.0.0.1:\(port)"] }

        let secured = try LeaderboardProcess(["serve", "--target", "gateway"] + ephemeral + remotes + tls)
        let body = try await EndToEnd.waitFor(try await secured.httpBase() + "/health/ready", status: 200)
        #expect((body["checks"] as? [String: String])?["auth"] == "SERVING")

        let plaintext = try LeaderboardProcess(["serve", "--target", "gateway"] + ephemeral + remotes)
        let refused = try await EndToEnd.waitFor(try await plaintext.httpBase() + "/health/ready", status: 503)
        #expect((refused["checks"] as? [String: String])?["auth"] == "unreachable")

        for process in [plaintext, secured, services] { #expect(try await process.stop() == 0) }
    }
}
