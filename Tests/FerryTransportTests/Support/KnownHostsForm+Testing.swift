import FerryTestSupport
import Testing

extension KnownHostsForm: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}
