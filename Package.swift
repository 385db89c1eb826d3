// swift-tools-version:6.2
import PackageDescription

/// One set of compiler settings for every target (the hummingbird way).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ferry",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        .executable(name: "ferry-sandbox", targets: ["ferry-sandbox"]),
        .executable(name: "ferry-bench", targets: ["ferry-bench"]),
        .library(name: "FerryCore", targets: ["FerryCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // C libraries from Debian's -dev packages; the Makefile installs them.
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CSSH2", pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]),
        // The sandbox's MD5 (signature checks) comes from here so it shares no code with FerryCore's; FerryCore uses it
        // only for SHA-256 of kept exports.
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),

        .target(
            name: "FerryCore",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "FerryTransport",
            dependencies: [
                "FerryCore", "CCurl", "CSSH2",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryCore", "FerryTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            // jemalloc in place of glibc's malloc (libjemalloc-dev, which the Makefile installs): an import of a million
            // rows allocates and frees across threads, where glibc's arenas spent 8 % of its CPU (BENCHMARKS.md).
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]),
        .executableTarget(
            name: "ferry-sandbox",
            dependencies: [
                "COpenSSL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "ferry-bench",
            dependencies: ["FerryCore", "FerryTransport"],
            swiftSettings: swiftSettings),
        // Test doubles shared by the test targets: a real OpenSSH sshd on 127.0.0.1 and process helpers.
        .target(
            name: "FerryTestSupport",
            dependencies: ["FerryCore"],
            swiftSettings: swiftSettings),

        .testTarget(
            name: "FerryCoreTests",
            dependencies: ["FerryCore", "FerryTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryTransportTests",
            dependencies: ["FerryTransport", "FerryCore", "FerryTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryIntegrationTests",
            dependencies: ["FerryCore", "FerryTransport", "FerryTestSupport", "ferry", "ferry-sandbox"],
            swiftSettings: swiftSettings),
    ]
)
