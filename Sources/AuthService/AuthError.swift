public import GRPCCore
public import ServiceKit

/// Errors of the Auth target: a stable code, a client-safe detail and the gRPC status they travel as.
public struct AuthError: CodedServiceError, Sendable, Equatable {
    public let code: String
    public let detail: String
    public let status: RPCError.Code

    public init(code: String, detail: String, status: RPCError.Code) {
        self.code = code
        self.detail = detail
        self.status = status
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code && lhs.detail == rhs.detail }
}

/// Every rejection the Auth target makes, one stable code each (docs/AUTH.md lists them with their HTTP status).
extension AuthError {
    static func invalid(_ code: String, _ detail: String) -> AuthError {
        AuthError(code: code, detail: detail, status: .invalidArgument)
    }

    static func unauthenticated(_ code: String, _ detail: String) -> AuthError {
        AuthError(code: code, detail: detail, status: .unauthenticated)
    }

    static func forbidden(_ code: String, _ detail: String) -> AuthError {
        AuthError(code: code, detail: detail, status: .permissionDenied)
    }

    static func conflict(_ code: String, _ detail: String) -> AuthError {
        AuthError(code: code, detail: detail, status: .alreadyExists)
    }

    static let invalidRegistrationCode = invalid(
        "invalid_registration_code", "The registration code is not valid for this device.")
    static let registrationCodeExpired = AuthError(
        code: "registration_code_expired", detail: "The registration code has expired; register again for a new one.",
        status: .failedPrecondition)
    static let registrationCodeUsed = conflict(
        "registration_code_used", "The registration code has already been used.")
    static let unknownDevice = unauthenticated("unknown_device", "No device is registered under this id.")
    static let deviceNotVerified = forbidden(
        "device_not_verified", "The device's email address has not been verified yet.")
    static let deviceNotActive = forbidden(
        "device_not_active", "The device has not been activated; it has no secret yet.")
    static let deviceRevoked = forbidden("device_revoked", "The device has been revoked by an operator.")
    static let deviceAlreadyRegistered = conflict(
        "device_already_registered",
        "This hardware is already registered and verified; sign requests with its secret or rotate it.")
    static let deviceAlreadyVerified = conflict(
        "device_already_verified", "The device is already verified; activate it with its registration code.")
    static let invalidVerificationLink = AuthError(
        code: "invalid_verification_link", detail: "The verification link is not valid.", status: .notFound)
    static let verificationLinkExpired = AuthError(
        code: "verification_link_expired", detail: "The verification link has expired; verify again for a new one.",
        status: .failedPrecondition)
    static let tooManyVerificationEmails = AuthError(
        code: "too_many_verification_emails",
        detail: "Too many verification emails for this device today; use a link already sent.",
        status: .resourceExhausted)
    static let tooManyMailsToRecipient = AuthError(
        code: "too_many_verification_emails",
        detail: "This address has been sent as many verification emails as it may today; use a link already sent.",
        status: .resourceExhausted)
    static let emailUnavailable = AuthError(
        code: "email_unavailable", detail: "The verification email could not be sent; try again later.",
        status: .unavailable)
    static let signatureVersionRequired = invalid(
        "signature_version_required",
        "Changing a credential needs a version 2 signature (X-Signature-Version: 2), which covers the method and path.")
    static let invalidAPIKey = unauthenticated("invalid_api_key", "The API key is not valid.")
    static let apiKeyRevoked = unauthenticated("api_key_revoked", "The API key has been revoked.")
    static let apiKeyExpired = unauthenticated("api_key_expired", "The API key has expired.")
    static let unknownAPIKey = AuthError(code: "unknown_api_key", detail: "No API key has this id.", status: .notFound)
    static func insufficientPermission(_ needed: String) -> AuthError {
        forbidden("insufficient_permission", "The API key lacks the '\(needed)' permission.")
    }
}
