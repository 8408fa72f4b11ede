import Crypto
import Foundation
import ServiceKit

/// Input formats of registration, checked before anything is stored.
enum DeviceIdentity {
    /// A hardware or GPU hash: 64 hex digits (SHA-256), accepted in either case and stored lower case.
    static func hardwareHash(_ text: String, field: String) throws(AuthError) -> String {
        let lowered = text.lowercased()
        guard lowered.utf8.count == 64, [UInt8](hexEncoded: lowered) != nil else {
            throw .invalid("invalid_\(field)", "\(field) must be 64 hexadecimal digits (a SHA-256).")
        }
        return lowered
    }

    /// The machine id: the same two hashes always give the same id; changed hardware is a new device.
    /// First 16 bytes of SHA-256("leaderboard.machine-id.v1\n" + hardware_hash + "\n" + gpu_hash), as 32 hex digits.
    static func machineID(hardwareHash: String, gpuHash: String) -> String {
        let digest = SHA256.hash(data: Array("leaderboard.machine-id.v1\n\(hardwareHash)\n\(gpuHash)".utf8))
        return Array(digest).prefix(16).hexEncoded
    }

    /// A machine id as a client sends it: 32 hex digits, lower-cased.
    static func machineID(_ text: String) throws(AuthError) -> String {
        let lowered = text.lowercased()
        guard lowered.utf8.count == 32, [UInt8](hexEncoded: lowered) != nil else {
            throw .invalid("invalid_machine_id", "machine_id must be 32 hexadecimal digits.")
        }
        return lowered
    }

    /// Optional free-form JSON the client sends about its hardware: at most 16 KiB. Stored as given.
    static func info(_ text: String, field: String) throws(AuthError) -> String {
        guard text.utf8.count <= 16 * 1024 else {
            throw .invalid("invalid_\(field)", "\(field) must be at most 16 KiB.")
        }
        return text
    }
}

/// Registration codes: 12 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U), about 59 bits.
enum RegistrationCode {
    static let alphabet = Array("23456789ABCDEFGHJKMNPQRSTVWXYZ")
    static let length = 12

    static func generate(using random: any RandomSource) -> String {
        String((0..<length).map { _ in alphabet[random.uniform(below: alphabet.count)] })
    }

    /// Accepts what a person types: any case, with dashes or spaces (`ABCD-EFGH-JKMN`).
    static func normalize(_ text: String) throws(AuthError) -> String {
        let code = text.uppercased().filter { $0 != "-" && $0 != " " }
        guard code.count == length, code.allSatisfy(alphabet.contains) else { throw .invalidRegistrationCode }
        return code
    }

    /// For display and email: `ABCD-EFGH-JKMN`.
    static func display(_ code: String) -> String {
        let characters = Array(code)
        return stride(from: 0, to: characters.count, by: 4).map {
            String(characters[$0..<min($0 + 4, characters.count)])
        }
        .joined(separator: "-")
    }
}

/// Email addresses: a deliberately plain check (one `@`, a dotted domain, no spaces or control characters,
/// RFC 5321 lengths). Delivery is the real test.
enum EmailAddress {
    static func normalize(_ text: String) throws(AuthError) -> String {
        let address = text.trimmingCharacters(in: .whitespaces)
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard address.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64,
            parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            address.unicodeScalars.allSatisfy({
                $0.value > 0x20 && $0.value != 0x7f && !"<>()[],;:\\\"".unicodeScalars.contains($0)
            })
        else { throw .invalid("invalid_email", "The email address is not valid.") }
        return String(parts[0]) + "@" + parts[1].lowercased()
    }

    /// Who actually receives mail sent to a (normalized) address, for limits per recipient: the local part without a
    /// `+tag` and in lower case (every common provider delivers `Victim+1@x` to `victim@x`), as SHA-256 hex, so the
    /// limit's table holds no address.
    static func mailboxKey(_ normalized: String) -> String {
        let parts = normalized.split(separator: "@", maxSplits: 1)
        let local = parts.first.map { $0.split(separator: "+", maxSplits: 1).first ?? $0 } ?? ""
        let domain = parts.count == 2 ? parts[1] : ""
        return Array(SHA256.hash(data: Array("\(local.lowercased())@\(domain)".utf8))).hexEncoded
    }
}
