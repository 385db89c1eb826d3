import FuzzHarness

/// One input through the jsonl harness.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.jsonl(fuzzInput(data, size))
    return 0
}

/// The executable's entry point (see `runLibFuzzer`).
@_cdecl("fuzz_jsonl_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in fuzzOneInput(data, size) }
}
