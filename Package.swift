// swift-tools-version: 6.1
import PackageDescription

/// Settings every target of ours compiles with (STYLE.md: Swift 6 mode plus three upcoming features).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcInProcess = Target.Dependency.product(name: "GRPCInProcessTransport", package: "grpc-swift-2")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let swiftProtobuf = Target.Dependency.product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let tracing = Target.Dependency.product(name: "Tracing", package: "swift-distributed-tracing")

/// A service target: its own module, built on ServiceKit and the generated contract only.
func serviceTarget(_ name: String, extra: [Target.Dependency] = []) -> Target {
    .target(
        name: name,
        dependencies: [
            "ServiceKit", "UntrustedInput", "LeaderboardAPI", grpcCore, grpcProtobuf, swiftProtobuf, logging,
            lifecycle, crypto,
        ] + extra,
        swiftSettings: strictSettings
    )
}

let package = Package(
    name: "leaderboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "leaderboard", targets: ["leaderboard"])
    ],
    dependencies: [
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // OTLP over gRPC only: the HTTP exporter would pull in async-http-client for nothing.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPGRPC"]),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),
        // libcrypto for what swift-crypto lacks (RSA PKCS#1 v1.5 encryption, for DeepStressModel's offline package).
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // Total parsers of untrusted input (headers, queries, bodies, cursors, addresses): no dependencies, so
        // scripts/fuzz builds it alone with libFuzzer.
        .target(
            name: "UntrustedInput",
            swiftSettings: strictSettings
        ),
        .target(
            name: "LeaderboardAPI",
            dependencies: [grpcCore, grpcProtobuf, swiftProtobuf],
            exclude: ["Generated/PROTOS.sha256"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ServiceKit",
            dependencies: [
                "CHiredis", "COpenSSL", "UntrustedInput", grpcCore, grpcInProcess, grpcHTTP2, grpcProtobuf,
                swiftProtobuf, logging, metrics, tracing, .product(name: "OTel", package: "swift-otel"),
                lifecycle, nioCore, nioPosix,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: strictSettings
        ),
        serviceTarget("AuthService"),
        serviceTarget("DatasetService", extra: [nioCore, nioPosix]),
        serviceTarget("RankingService"),
        serviceTarget("InteractionService"),
        .target(
            name: "Gateway",
            dependencies: [
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"), lifecycle,
                .product(name: "NIOWebSocket", package: "swift-nio"),
                "ServiceKit", "UntrustedInput", "LeaderboardAPI", grpcCore, grpcProtobuf, swiftProtobuf, hummingbird,
                logging, metrics, tracing, crypto, .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"), nioPosix,
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LeaderboardClient",
            dependencies: [
                crypto, logging, .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "leaderboard",
            dependencies: [
                "ServiceKit", "AuthService", "DatasetService", "RankingService", "InteractionService", "Gateway",
                "LeaderboardClient", "LeaderboardAPI", grpcCore, grpcProtobuf, swiftProtobuf, grpcHTTP2,
                .product(name: "ArgumentParser", package: "swift-argument-parser"), lifecycle, logging, crypto,
                nioCore, nioPosix, .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings,
            plugins: ["BuildInfoPlugin"]
        ),
        // Bakes the version (VERSION) and the git commit into `leaderboard --version` (scripts/build-info).
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(
            name: "TestSupport",
            dependencies: [
                "ServiceKit", logging,
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "UntrustedInputTests",
            dependencies: ["UntrustedInput"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                "ServiceKit", "TestSupport", grpcCore, grpcInProcess, grpcHTTP2, grpcProtobuf, swiftProtobuf, logging,
                nioCore,
                nioPosix, lifecycle, crypto,
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AuthServiceTests",
            dependencies: [
                "AuthService", "ServiceKit", "TestSupport", "UntrustedInput", "LeaderboardAPI", grpcCore, grpcInProcess,
                grpcProtobuf, swiftProtobuf, logging, crypto,
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DatasetServiceTests",
            dependencies: [
                "DatasetService", "ServiceKit", "TestSupport", "LeaderboardAPI", "LeaderboardClient", grpcCore,
                swiftProtobuf, logging, crypto,
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RankingServiceTests",
            dependencies: [
                "RankingService", "ServiceKit", "TestSupport", "LeaderboardAPI", grpcCore, grpcInProcess, swiftProtobuf,
                crypto,
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "InteractionServiceTests",
            dependencies: ["InteractionService", "ServiceKit", "TestSupport", grpcCore],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "AuthService", "DatasetService", "RankingService", "InteractionService", "ServiceKit",
                "TestSupport", "UntrustedInput", "LeaderboardAPI",
                "LeaderboardClient", grpcCore, grpcInProcess,
                swiftProtobuf, hummingbird, logging, crypto, lifecycle,
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "WSCore", package: "swift-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "ServiceKit", "TestSupport", "LeaderboardClient", "LeaderboardAPI", crypto, grpcCore, grpcHTTP2,
                grpcProtobuf, swiftProtobuf, logging,
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
