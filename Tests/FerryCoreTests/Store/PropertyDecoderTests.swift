import FerryTestSupport
import Foundation
import GRDB
import Testing
@testable import FerryCore

/// The fast properties reader gives exactly what the Foundation reading gave, on fixtures, edge cases and random profiles.
@Suite struct PropertyDecoderTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/profiles.jsonl").path

    @Test func storedFixtureProfilesDecodeAsFoundationReadsThem() throws {
        let store = ProfileStore(database: try AppDatabase.inMemory())
        _ = try ProfileLoader(store: store, segments: []).load(path: Self.fixture)
        let texts = try store.database.writer.read { try String.fetchAll($0, sql: "SELECT properties FROM profile") }
        #expect(texts.count >= 60)
        for text in texts {
            let fast = try PropertyCodec.decode(text)
            #expect(fast == (try PropertyCodec.foundationDecode(text)), "\(text)")
            #expect(PropertyCodec.encode(fast) == text)
        }
    }

    @Test(arguments: [
        #"{}"#, #" { } "#, #"{"a":[]}"#, #"{"a":["x","y"],"b":[1,2.5,-0.25,1e3,2E-2]}"#,
        #"{"s":["quote \" backslash \\ slash \/ nl \n cr \r tab \t bs \b ff \f u \u00e9 \u0001"]}"#,
        #"{"emoji":["😀 Zürich"],"pair":["\ud83d\ude00"]}"#,
        #"{"d":[{"$date":"2024-01-15T10:30:00.000Z"},{"$date":"not a date"},{"other":1},{"$date":5}]}"#,
        #"{"b":[true,false,null,[1,2],{"x":[{"y":"z"}]}]}"#,
        #"{"scalar":"not an array","n":5,"o":{"a":[1]},"kept":["k"]}"#,
        #"{"big":[12345678901234567890,123456789012345,0.1,-0]}"#,
        #"{"dup":["a"],"dup":["b"]}"#,
        #"{"a":[1,]}"#, #"{"a":[01]}"#, #"{"a":["unterminated]}"#, #"["not","an","object"]"#, #"{"a":[1]} trailing"#,
        #"{"bad escape":["\q"]}"#, #"{"lone":["\ud800"]}"#,
    ])
    func edgeCasesDecodeAsFoundationReadsThem(text: String) {
        let fast = Result { try PropertyCodec.decode(text) }
        let reference = Result { try PropertyCodec.foundationDecode(text) }
        switch (fast, reference) {
        case (.success(let a), .success(let b)): #expect(a == b, "\(text)")
        case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)", "\(text)")
        default: Issue.record("\(text): fast \(fast) but Foundation \(reference)")
        }
    }

    @Test func onlyTheRequestedKeysAreKept() throws {
        let text = #"{"a":["x"],"b":[1,{"$date":"2024-01-15T10:30:00.000Z"}],"c":[{"skip":[1,"]"]}],"d":"scalar"}"#
        let all = try PropertyCodec.decode(text)
        for keys: Set<String> in [[], ["a"], ["b", "d"], ["a", "b", "c", "zzz"]] {
            var bytes = Array(text.utf8)
            let some = try bytes.withUnsafeMutableBufferPointer { try PropertyCodec.decode(utf8: UnsafeBufferPointer($0), keys: PropertyKeys(keys)) }
            #expect(some == all.filter { keys.contains($0.key) }, "\(keys)")
        }
    }

    /// Kept keys are matched on a stored key's bytes when it is plain ASCII: names of one length must not be confused,
    /// and a key written with escapes or in non-ASCII letters is still found, as Foundation's reading finds it.
    @Test func keptKeysAreFoundByTheirBytesAndOtherwiseByTheirText() throws {
        let text = #"{"":["empty"],"ab":["x"],"ba":["y"],"a\u0062d":["escaped"],"é":["accent"],"abc":["z"],"b":[2]}"#
        let reference = try PropertyCodec.foundationDecode(text)
        let keySets: [Set<String>] = [["ab"], ["ba"], ["abd"], ["é"], [""], ["abc", "b", "zz"], ["ab", "ba", "abd", "é", "", "abc", "b"], ["x"]]
        for names in keySets {
            // The fast reader itself: nil (unsure, Foundation's reading instead) would not test it.
            let kept = Array(text.utf8).withUnsafeBufferPointer { PropertyDecoder.decode($0, keys: PropertyKeys(names)) }
            #expect(kept == reference.filter { names.contains($0.key) }, "\(names)")
        }
    }

    @Test func randomProfilesRoundTripThroughEncode() throws {
        var generator = SplitMix64(seed: 0x5EED)
        let alphabet: [Character] = ["a", "Z", "0", " ", ",", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", "é", "ß", "😀", "{", "[", ":"]
        func text() -> String { String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }) }
        func value(fractions: Bool) -> PropertyValue {
            switch Int.random(in: 0..<5, using: &generator) {
            case 0, 1: return .string(text())
            case 2: return .number(Double(Int.random(in: -1_000_000...1_000_000, using: &generator)))
            case 3 where fractions: return .number(Double.random(in: -1e9...1e9, using: &generator))
            default:
                // Whole seconds: ISO8601's millisecond formatting is not what is under test here.
                return .date(Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000...4_000_000_000, using: &generator))))
            }
        }
        for round in 0..<2000 {
            let fractions = round % 2 == 0
            var properties: [String: [PropertyValue]] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                properties[text()] = (0..<Int.random(in: 1...4, using: &generator)).map { _ in value(fractions: fractions) }
            }
            let encoded = PropertyCodec.encode(properties)
            let decoded = try PropertyCodec.decode(encoded)
            #expect(decoded == properties, "\(encoded)")
            if !fractions {
                // Foundation reads long fractions up to an ulp off (the fast reader is exact), so compare it on the rest.
                #expect(decoded == (try PropertyCodec.foundationDecode(encoded)), "\(encoded)")
            }
        }
    }
}

