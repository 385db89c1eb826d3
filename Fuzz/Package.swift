// swift-tools-version:6.2
import PackageDescription

/// libFuzzer targets over ferry's parsers; built and run by `make fuzz` (see the Makefile), never by `make test`.
/// Build: swift build -c release --package-path Fuzz --scratch-path .build-fuzz \
///        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "ferry-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "ferry", path: "..")],
    targets: [
        // One input through one parser; the root package's FuzzCorpusReplayTests compile this same file.
        .target(name: "FuzzHarness", dependencies: [.product(name: "FerryCore", package: "ferry")], swiftSettings: swiftSettings),
        .executableTarget(name: "fuzz-config", dependencies: ["FuzzHarness"], swiftSettings: swiftSettings),
        .executableTarget(name: "fuzz-csv", dependencies: ["FuzzHarness"], swiftSettings: swiftSettings),
        .executableTarget(name: "fuzz-jsonl", dependencies: ["FuzzHarness"], swiftSettings: swiftSettings),
        .executableTarget(name: "fuzz-cron", dependencies: ["FuzzHarness"], swiftSettings: swiftSettings),
    ]
)
