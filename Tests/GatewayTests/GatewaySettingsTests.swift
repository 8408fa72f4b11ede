import Foundation
import Gateway
import RankingService
import ServiceKit
import TestSupport
import Testing

@Suite("Gateway settings")
struct GatewaySettingsTests {
    @Test(
        "the README's configuration tables list every gateway, ranking and retention setting with its flag and default")
    func readmeListsSettings() throws {
        try TestEnvironment.expectREADMEListsSettings(GatewaySettings.all)
        try TestEnvironment.expectREADMEListsSettings(RankingSettings.all)
        try TestEnvironment.expectREADMEListsSettings(RetentionSettings.ranking + RetentionSettings.interaction)
    }

    @Test("HTTPS needs a readable certificate and key, given together")
    func tlsSettings() throws {
        func problems(_ values: [String: String]) -> [String] {
            let (raw, _) = RawConfiguration.parse(arguments: [], environment: values, settings: GatewaySettings.all)
            var reader = ConfigurationReader(raw: raw)
            _ = GatewayConfiguration.read(&reader)
            return reader.problems.map(\.description)
        }
        #expect(
            problems(["LEADERBOARD_HTTP_TLS_CERT": "/etc/hostname"]) == [
                "CONFIG ERROR: LEADERBOARD_HTTP_TLS_KEY: http-tls-cert and http-tls-key must be set together"
            ])
        #expect(
            problems([
                "LEADERBOARD_HTTP_TLS_CERT": "/nonexistent/cert.pem", "LEADERBOARD_HTTP_TLS_KEY": "/etc/hostname",
            ])
                == ["CONFIG ERROR: LEADERBOARD_HTTP_TLS_CERT: cannot read file '/nonexistent/cert.pem'"])
        #expect(problems(["LEADERBOARD_HTTP_TLS_RELOAD_SECONDS": "0"]).count == 1)
        #expect(problems([:]).isEmpty)
    }
}
