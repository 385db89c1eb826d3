import Foundation

extension SailthruSandboxServer {
    /// `with`, but started and stopped off the cooperative pool.
    static func withOffPool<T: Sendable>(_ extra: [String], _ body: @Sendable (SailthruSandboxServer) async throws -> T) async throws -> T {
        let server = try await offPool { try start(extra, seeded: false) }
        do {
            let result = try await body(server)
            try await offPool { server.stop() }
            return result
        } catch {
            try? await offPool { server.stop() }
            throw error
        }
    }
}

/// `BuiltProducts.ferry`, waited for off the cooperative pool.
func ferry(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
    try await offPool { try BuiltProducts.ferry(arguments, environment: environment) }
}
