import FuzzHarness

/// libFuzzer's entry point: one input through the csv harness.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.csv(Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size)))
    return 0
}
