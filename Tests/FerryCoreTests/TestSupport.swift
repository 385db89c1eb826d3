import Foundation
import FerryTestSupport

/// A fresh temporary folder per test (shared with the integration tests).
typealias TemporaryDirectory = TemporaryFolder
