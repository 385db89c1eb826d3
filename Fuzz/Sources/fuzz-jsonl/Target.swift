import FuzzHarness

/// libFuzzer's entry point: one input through the jsonl harness.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.jsonl(Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size)))
    return 0
}
