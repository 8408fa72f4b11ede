import Crypto
import Foundation
import HummingbirdCore
public import Logging
import NIOCore
public import NIOSSL
import ServiceKit
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The gateway's own HTTPS: a certificate chain and key read from PEM files, replaced without a restart when the
/// process gets SIGHUP or either file changes (checked every `http-tls-reload-seconds`). Connections already open keep
/// the certificate they began with; new ones get the new one. A replacement that does not load (a half-written file,
/// a key that does not match) is logged and the current certificate stays in service. Decisions in docs/GATEWAY.md.
public final class GatewayCertificates: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let current: Mutex<Loaded>

    struct Loaded {
        var context: NIOSSLContext
        var stamps: [FileStamp?]
        /// SHA-256 of the leaf certificate (DER), to log which one is in service.
        var fingerprint: String
    }

    /// What identifies a file's version without reading it: a replaced or rewritten file changes one of these.
    struct FileStamp: Equatable {
        var inode: UInt64
        var size: UInt64
        var modified: Double

        init?(path: String) {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
            modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        }
    }

    /// Loads both files now; throws a message naming what is wrong with them.
    public init(certificatePath: String, keyPath: String) throws(GatewayCertificateError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        current = Mutex(
            try Self.load(
                certificatePath: certificatePath, keyPath: keyPath,
                stamps: Self.stamps(certificatePath: certificatePath, keyPath: keyPath)))
    }

    /// The context new connections use.
    public var context: NIOSSLContext { current.withLock { $0.context } }

    /// SHA-256 (hex) of the leaf certificate in service.
    public var fingerprint: String { current.withLock { $0.fingerprint } }

    /// Loads the files again when `force` (SIGHUP) or when either changed since the last load; logs the outcome.
    public func reload(force: Bool, logger: Logger) {
        let stamps = Self.stamps(certificatePath: certificatePath, keyPath: keyPath)
        if !force, current.withLock({ $0.stamps == stamps }) { return }
        do {
            let loaded = try Self.load(certificatePath: certificatePath, keyPath: keyPath, stamps: stamps)
            let previous = current.withLock { state in
                defer { state = loaded }
                return state.fingerprint
            }
            if previous == loaded.fingerprint { return }
            logger.notice(
                "TLS certificate replaced",
                metadata: ["sha256": "\(loaded.fingerprint)", "previous": "\(previous)", "file": "\(certificatePath)"])
        } catch {
            // Remember the stamps so a broken file is reported once, not every check; a later write retries.
            current.withLock { $0.stamps = stamps }
            logger.error(
                "TLS certificate not replaced; the current one stays in service",
                metadata: ["error": "\(error.message)", "file": "\(certificatePath)"])
        }
    }

    private static func stamps(certificatePath: String, keyPath: String) -> [FileStamp?] {
        [FileStamp(path: certificatePath), FileStamp(path: keyPath)]
    }

    /// The pair as it is on disk now; `stamps` were taken just before, so a write while loading is seen next time.
    private static func load(
        certificatePath: String, keyPath: String, stamps: [FileStamp?]
    ) throws(GatewayCertificateError) -> Loaded {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw GatewayCertificateError("cannot read a PEM certificate chain from '\(certificatePath)'")
        }
        guard let leaf = chain.first else {
            throw GatewayCertificateError("'\(certificatePath)' holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw GatewayCertificateError("cannot read a PEM private key from '\(keyPath)'")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw GatewayCertificateError(
                "the key in '\(keyPath)' does not go with the certificate in '\(certificatePath)' (\(error))")
        }
        let der = (try? leaf.toDERBytes()) ?? []
        // Set when a pair loads, so the expiry alert follows the certificate actually in service.
        MetricFamilies.certificateExpiry.gauge("https").set(Double(leaf.notValidAfter))
        return Loaded(context: context, stamps: stamps, fingerprint: SHA256.hash(data: der).hexEncoded)
    }
}

/// Why the gateway's certificate or key cannot be used.
public struct GatewayCertificateError: Error, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
}

/// A child channel that starts with a TLS handshake under the gateway's current certificate, then runs `base`.
struct ReloadableTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let certificates: GatewayCertificates

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: certificates.context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Reloads the certificate on SIGHUP and when its files change, until shutdown.
struct CertificateReloadService: Service {
    let certificates: GatewayCertificates
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                let hangups = await UnixSignalsSequence(trapping: .sighup)
                for await _ in hangups.cancelOnGracefulShutdown() {
                    certificates.reload(force: true, logger: logger)
                }
            }
            group.addTask {
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    certificates.reload(force: false, logger: logger)
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
