import Foundation
import Testing
@testable import FerryCore

@Suite struct EncodingAndRedactionTests {
    @Test func percentEncodesOutsideTheUnreservedSet() {
        #expect(FormEncoding.percentEncode("a+b@x.com") == "a%2Bb%40x.com")
        #expect(FormEncoding.percentEncode("A-z_0.9~") == "A-z_0.9~")
        #expect(FormEncoding.percentEncode("a b/&=é") == "a%20b%2F%26%3D%C3%A9")
        #expect(FormEncoding.encode([("json", #"{"id":"a+b"}"#), ("k", "")]) == "json=%7B%22id%22%3A%22a%2Bb%22%7D&k=")
    }

    @Test func formDecodingRoundTripsAndTreatsPlusAsSpace() {
        let fields = [("json", #"{"n":"Zoë & co+1"}"#), ("x", "1")]
        let decoded = FormEncoding.decode(FormEncoding.encode(fields))
        #expect(decoded?.map(\.0) == ["json", "x"])
        #expect(decoded?.map(\.1) == [#"{"n":"Zoë & co+1"}"#, "1"])
        #expect(FormEncoding.decode("a=b+c")?.first?.1 == "b c")
    }

    @Test func redactsSecretParametersHeadersAndLiterals() {
        let redactor = Redactor(secrets: ["hunter2secret"])
        let text = redactor.redact(
            "GET https://u:pw@api.x.com/user?api_key=abc&format=json&sig=0123&password=p%40ss "
                + #"Authorization: Bearer eyJtoken.x {"api_secret": "zz", "token":"t"} saw hunter2secret"#)
        for secret in ["abc", "0123", "p%40ss", "eyJtoken", "zz", "hunter2secret", "u:pw", "\"t\""] {
            #expect(!text.contains(secret), "\(secret) left in \(text)")
        }
        #expect(text.contains("format=json"))
        #expect(text.contains("api_key=REDACTED"))
    }

    @Test func shortSecretsAreRemovedWhereTheyStandAloneButNotInsideWords() {
        let redactor = Redactor(secrets: ["x9", "p!"])
        let text = redactor.redact("login x9 failed (x9); box9 and x99 stay; p! gone, p!q stays")
        #expect(text == "login REDACTED failed (REDACTED); box9 and x99 stay; REDACTED gone, p!q stays")
    }

    @Test func emptyArraysReadAsEmptyObjects() throws {
        let value = try JSONValue.parse(Data(#"{"vars":[],"update":[],"lists":{"A":"Mon"}}"#.utf8))
        #expect(value["vars"]?.objectValue == [:])
        #expect(value["lists"]?.objectValue == ["A": "Mon"])
        #expect(JSONValue.object(["b": 1, "a": [true, 1.5, "x/y"]]).serialized() == #"{"a":[true,1.5,"x/y"],"b":1}"#)
    }
}
