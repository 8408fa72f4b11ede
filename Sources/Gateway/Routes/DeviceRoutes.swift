import Foundation
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// `/api/v1/devices/*`: registration, the proof-of-work challenge, email verification, activation, and the signed
/// status and rotation calls. See docs/AUTH.md for the flow and docs/SIGNING.md for signatures.
enum DeviceRoutes {
    static func add(to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient) {
        let policies = dependencies.policies
        let limit = { (policy: RateLimitPolicy) in
            ClientRateLimitMiddleware(policy: policy, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock)
        }
        let devices = router.group("/api/v1/devices")

        devices.group().add(middleware: limit(policies.registration))
            .post("/register") { request, _ in
                var request = request
                let body = try await JSONBody.read(&request)
                let response = try await auth.registerDevice(
                    .with {
                        $0.hardwareHash = try body.string("hardware_hash")
                        $0.gpuHash = try body.string("gpu_hash")
                        $0.hardwareInfoJson = try body.jsonText("hardware_info")
                        $0.gpuInfoJson = try body.jsonText("gpu_info")
                        $0.challengeID = try body.string("challenge_id")
                        $0.powSolution = try body.string("pow_solution")
                    })
                return jsonResponse(
                    [
                        "machine_id": response.machineID,
                        "registration_code": response.registrationCode,
                        "expires_at": jsonValue(response.expiresAt.rfc3339),
                    ], status: .created, headers: ResponseHeaders.noStore)
            }
            .post("/activate") { request, _ in
                var request = request
                let body = try await JSONBody.read(&request)
                let secret = try await auth.activateDevice(
                    .with {
                        $0.machineID = try body.string("machine_id")
                        $0.registrationCode = try body.string("registration_code")
                    })
                return secretResponse(secret)
            }

        devices.group().add(middleware: limit(policies.challenge))
            .get("/challenge") { _, _ in
                let challenge = try await auth.getChallenge(.init())
                return jsonResponse(
                    [
                        "challenge_id": challenge.challengeID,
                        "challenge": challenge.challenge,
                        "difficulty_bits": Int(challenge.difficultyBits),
                        "algorithm": "sha256-leading-zero-bits",
                        "expires_at": jsonValue(challenge.expiresAt.rfc3339),
                    ], status: .ok, headers: ResponseHeaders.noStore)
            }

        devices.group().add(middleware: limit(policies.verification)).add(middleware: limit(policies.verificationMails))
            .post("/verify") { request, _ in
                var request = request
                let body = try await JSONBody.read(&request)
                let response = try await auth.verifyDevice(
                    .with {
                        $0.registrationCode = try body.string("registration_code")
                        $0.email = try body.string("email")
                        $0.challengeID = try body.string("challenge_id")
                        $0.powSolution = try body.string("pow_solution")
                    })
                return jsonResponse(
                    [
                        "machine_id": response.machineID,
                        "state": stateName(response.state),
                        "link_expires_at": jsonValue(response.linkExpiresAt.rfc3339),
                    ], status: .accepted, headers: ResponseHeaders.noStore)
            }
            .post("/confirm") { request, _ in
                var request = request
                let body = try await JSONBody.read(&request)
                let response = try await auth.confirmEmail(.with { $0.token = try body.string("token") })
                return jsonResponse(
                    ["machine_id": response.machineID, "state": stateName(response.state)], status: .ok,
                    headers: ResponseHeaders.noStore)
            }

        devices.group().add(middleware: DeviceSignatureMiddleware(auth: auth, dependencies: dependencies))
            .get("/status") { _, context in
                let machineID = try context.requireDevice().machineID
                let device = try await auth.getDeviceStatus(.with { $0.machineID = machineID })
                return jsonResponse(deviceJSON(device), status: .ok, headers: ResponseHeaders.noStore)
            }
        // Not behind the signature middleware: AuthService verifies the device's own v2 signature as part of the
        // rotation, so a secret changes only on a request the device signed for exactly this.
        devices.group().add(middleware: limit(policies.registration)).post("/rotate") { request, _ in
            var request = request
            let signed = try await signedRequest(request, clock: dependencies.clock, requireVersion2: true) {
                try await collectBody(&request, limit: 4 << 10)
            }
            let secret = try await auth.rotateDeviceSecret(.with { $0.signed = signed })
            return secretResponse(secret)
        }
    }

    static func secretResponse(_ secret: Leaderboard_Auth_V1_DeviceSecret) -> Response {
        jsonResponse(
            [
                "machine_id": secret.machineID,
                "secret": secret.secret,
                "previous_secret_valid_until": jsonValue(secret.previousValidUntil.rfc3339),
            ], status: .ok, headers: ResponseHeaders.noStore)
    }

    static func stateName(_ state: Leaderboard_Auth_V1_DeviceState) -> String {
        switch state {
        case .registered: "registered"
        case .pendingEmail: "pending_email"
        case .verified: "verified"
        case .active: "active"
        case .revoked: "revoked"
        case .unspecified, .UNRECOGNIZED: "unknown"
        }
    }

    static func deviceJSON(_ device: Leaderboard_Auth_V1_Device) -> [String: Any] {
        [
            "machine_id": device.machineID,
            "state": stateName(device.state),
            "hardware_hash": device.hardwareHash,
            "gpu_hash": device.gpuHash,
            "hardware_info": embeddedJSON(device.hardwareInfoJson),
            "gpu_info": embeddedJSON(device.gpuInfoJson),
            "registered_at": jsonValue(device.registeredAt.rfc3339),
            "verified_at": jsonValue(device.verifiedAt.rfc3339),
            "secret_rotated_at": jsonValue(device.secretRotatedAt.rfc3339),
        ]
    }

    /// Stored info text back as the object it was sent as (a string if it was not JSON, null if empty).
    static func embeddedJSON(_ text: String) -> Any {
        if text.isEmpty { return NSNull() }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
    }
}

extension GatewayRequestContext {
    /// The verified device; only routes behind ``DeviceSignatureMiddleware`` call this.
    func requireDevice() throws -> AuthenticatedDevice {
        guard let device else {
            throw Problem(.unauthorized, code: "missing_signature", detail: "This route needs a signed request.")
        }
        return device
    }
}
