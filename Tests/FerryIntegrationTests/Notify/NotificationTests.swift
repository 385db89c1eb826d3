import FerryCore
import FerryTransport
import Foundation
import Testing

/// Run notifications end to end: `ferry run` of a SendGrid connection with a `notify` block, mailing through
/// libcurl's SMTP to `ferry-sandbox smtp`, which stores what it accepted as `.eml` files.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NotificationTests {
    typealias SendGrid = SendGridSandboxServer
    typealias SMTP = SMTPSandboxServer

    static let wrongKey = "SG.wrong-key-for-tests-only.987654321"

    /// A workspace with one SendGrid connection that mails ops and dev on failure and success.
    static func workspace() throws -> Workspace {
        let ws = Workspace()
        ws.write("s/segments.yaml", """
            segments:
              - name: everyone
                all:
                  - { property: email, exists: true }
            """)
        ws.write("s/sg.yaml", """
            name: sg
            timezone: UTC
            schedule:
              at: ["02:00"]
            notify:
              email: [ops@example.com, dev@example.com]
              on: [failure, success]
            destination:
              type: sendgrid
              api_key: ${SENDGRID_API_KEY}
              base_url: ${SENDGRID_BASE_URL}
            goals:
              - export:
                  segments: [everyone]
                  list: ferry-contacts
                  membership_field: ferry_segments
                  email: email
            """)
        let file = ws.write("p.jsonl", """
            {"id":"p1","email":"ann@example.com"}
            {"id":"p2","email":"bo@example.com"}

            """)
        let loaded = try BuiltProducts.ferry(["profiles", "load", file, "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(loaded.status == 0, "\(loaded.stderr)")
        return ws
    }

    static func run(_ ws: Workspace, sendgrid: SendGrid, key: String = SendGrid.apiKey, smtp: [String: String]) throws -> CommandResult {
        try BuiltProducts.ferry(["run", "sg", "--now", "--schedules", ws.path + "/s", "--db", ws.db],
                                environment: ["SENDGRID_API_KEY": key, "SENDGRID_BASE_URL": sendgrid.baseURL,
                                              "FERRY_SMTP_FROM": "ferry@example.com"].merging(smtp) { $1 })
    }

    static func smtpEnvironment(_ server: SMTP) -> [String: String] {
        ["FERRY_SMTP_URL": server.url, "FERRY_SMTP_USER": SMTP.user, "FERRY_SMTP_PASSWORD": SMTP.password]
    }

    /// The run id in `run 12 sendgrid export …:`.
    static func runID(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("run ") }?.split(separator: " ").dropFirst().first.map(String.init)
    }

    /// `text` holds none of the secrets the tests use.
    static func expectNoSecrets(_ text: String, _ place: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in [SMTP.password, SendGrid.apiKey, wrongKey] {
            #expect(!text.contains(secret), "\(place) shows a secret", sourceLocation: sourceLocation)
        }
    }

    /// The whole SQLite store (main file and WAL) as text, to look for secrets.
    static func storeBytes(_ ws: Workspace) -> String {
        ["", "-wal", "-shm"].compactMap { FileManager.default.contents(atPath: ws.db + $0) }
            .map { String(decoding: $0, as: UTF8.self) }.joined()
    }

    @Test func aSuccessAndAFailureEachMailTheRecipientsWithStatusCountsErrorsAndTheHistoryCommand() async throws {
        try await SendGrid.with { sendgrid in
            try await SMTP.with { smtp in
                let ws = try Self.workspace()
                let good = try Self.run(ws, sendgrid: sendgrid, smtp: Self.smtpEnvironment(smtp))
                #expect(good.status == 0, "\(good.stdout) \(good.stderr)")
                #expect(good.stdout.contains("notification mailed to ops@example.com, dev@example.com"))
                let bad = try Self.run(ws, sendgrid: sendgrid, key: Self.wrongKey, smtp: Self.smtpEnvironment(smtp))
                #expect(bad.status == 1, "\(bad.stdout) \(bad.stderr)")
                let goodID = try #require(Self.runID(good.stdout))
                let badID = try #require(Self.runID(bad.stdout))

                let mails = try smtp.messages()
                try #require(mails.count == 2)
                for mail in mails {
                    #expect(mail.contains("X-Sandbox-Rcpt-To: <ops@example.com>, <dev@example.com>\r\n"))
                    #expect(mail.contains("\r\nTo: ops@example.com, dev@example.com\r\n"))
                    #expect(mail.contains("\r\nFrom: ferry@example.com\r\n"))
                    #expect(mail.contains("\r\nMessage-ID: <ferry.run-"))
                    #expect(mail.contains("\r\nConnection: sg\r\n"))
                }
                #expect(mails[0].contains("\r\nSubject: [ferry] succeeded: sg / export everyone (run \(goodID))\r\n"))
                #expect(mails[0].contains("\r\nStatus:     succeeded\r\n"))
                #expect(mails[0].contains("\r\nCounts:     ") && mails[0].contains("exported 2"))
                #expect(mails[0].contains("\r\nMore: ferry history show \(goodID)\r\n"))
                #expect(mails[1].contains("\r\nSubject: [ferry] failed: sg / export everyone (run \(badID))\r\n"))
                #expect(mails[1].contains("\r\nStatus:     failed\r\n"))
                #expect(mails[1].contains("\r\nError: ") && mails[1].contains("authentication failed: SendGrid rejected the API key in ${SENDGRID_API_KEY}"))
                #expect(mails[1].contains("\r\nMore: ferry history show \(badID)\r\n"))

                let history = try BuiltProducts.ferry(["history", "show", badID, "--db", ws.db])
                #expect(history.stdout.contains("notification mailed to ops@example.com, dev@example.com"), "\(history.stdout)")
                #expect(smtp.allFiles().allSatisfy { $0.hasSuffix(".eml") })
                for (text, place) in [(good.stdout + good.stderr, "the good run's output"), (bad.stdout + bad.stderr, "the failed run's output"),
                                      (history.stdout + history.stderr, "history"), (mails.joined(), "the mails"),
                                      (Self.storeBytes(ws), "the store")] {
                    Self.expectNoSecrets(text, place)
                }
            }
        }
    }

    @Test func aMailServerThatIsDownOrRefusesLeavesTheRunsStatusAndExitCodeAndNotesWhy() async throws {
        try await SendGrid.with { sendgrid in
            let ws = try Self.workspace()
            let down = try Self.run(ws, sendgrid: sendgrid, smtp: [
                "FERRY_SMTP_URL": "smtp://127.0.0.1:\(closedLocalPort())", "FERRY_SMTP_USER": SMTP.user, "FERRY_SMTP_PASSWORD": SMTP.password])
            #expect(down.status == 0, "\(down.stdout) \(down.stderr)")
            #expect(down.stdout.contains(": succeeded"))
            #expect(down.stdout.contains("notification to ops@example.com, dev@example.com not sent: mail to smtp://127.0.0.1:"), "\(down.stdout)")
            #expect(down.stderr.contains("notification not sent"))

            try await SMTP.with(["--fail-rate", "1", "--fail-at", "data", "--fail-code", "554"]) { smtp in
                let refused = try Self.run(ws, sendgrid: sendgrid, smtp: Self.smtpEnvironment(smtp))
                #expect(refused.status == 0, "\(refused.stdout) \(refused.stderr)")
                #expect(refused.stdout.contains("not sent: ") && refused.stdout.contains("(SMTP 554)"), "\(refused.stdout)")
                #expect(try smtp.messages().isEmpty)
                let id = try #require(Self.runID(refused.stdout))
                let history = try BuiltProducts.ferry(["history", "show", id, "--db", ws.db, "--json"])
                #expect(history.stdout.contains("(SMTP 554)") && history.stdout.contains("\"succeeded\""), "\(history.stdout)")
                for text in [down.stdout, down.stderr, refused.stdout, refused.stderr, history.stdout, Self.storeBytes(ws)] {
                    Self.expectNoSecrets(text, "output or store")
                }
            }
        }
    }

    @Test func aWrongSMTPPasswordIsNotedWithoutThePassword() async throws {
        try await SendGrid.with { sendgrid in
            try await SMTP.with { smtp in
                let ws = try Self.workspace()
                let wrong = "smtp-wrong-pass-7777777"
                let result = try Self.run(ws, sendgrid: sendgrid, smtp: [
                    "FERRY_SMTP_URL": smtp.url, "FERRY_SMTP_USER": SMTP.user, "FERRY_SMTP_PASSWORD": wrong])
                #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
                #expect(result.stdout.contains("not sent: ") && result.stdout.contains("(SMTP 535)"), "\(result.stdout)")
                #expect(try smtp.messages().isEmpty)
                for text in [result.stdout, result.stderr, Self.storeBytes(ws)] {
                    #expect(!text.contains(wrong))
                }
            }
        }
    }

    @Test func withoutFERRY_SMTP_URLTheRunWarnsAndNotesItButDoesNotFail() async throws {
        try await SendGrid.with { sendgrid in
            let ws = try Self.workspace()
            let result = try Self.run(ws, sendgrid: sendgrid, smtp: ["FERRY_SMTP_URL": ""])
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("notification to ops@example.com, dev@example.com not sent: FERRY_SMTP_URL is not set"))
            #expect(result.stderr.contains("notifications are not sent: FERRY_SMTP_URL is not set"))
        }
    }

    @Test func theDaemonMailsAScheduledRunThatFailed() async throws {
        try await SendGrid.with { sendgrid in
            try await SMTP.with { smtp in
                let ws = try Self.workspace()
                var environment = Self.smtpEnvironment(smtp)
                environment["SENDGRID_API_KEY"] = Self.wrongKey
                environment["SENDGRID_BASE_URL"] = sendgrid.baseURL
                environment["FERRY_SMTP_FROM"] = "ferry@example.com"
                let daemon = try DaemonProcess(arguments: ["--schedules", ws.path + "/s", "--db", ws.db,
                                                           "--clock-start", "2026-11-23T01:59:58Z"],
                                               environment: environment, logPath: ws.path + "/daemon.log")
                #expect(daemon.waitForLog("notification sent", timeout: 60), "\(daemon.log)")
                daemon.signal(SIGTERM)
                #expect(daemon.waitForExit() == 0)
                let mails = try smtp.messages()
                try #require(mails.count == 1, "\(daemon.log)")
                #expect(mails[0].contains("\r\nSubject: [ferry] failed: sg / export everyone (run 1)\r\n"))
                #expect(mails[0].contains("\r\nRun:        1 (schedule)\r\n"))
                Self.expectNoSecrets(daemon.log + mails[0] + Self.storeBytes(ws), "the daemon's log, mail or store")
            }
        }
    }

    @Test func validateWarnsWhenNotifyIsSetWithoutFERRY_SMTP_URLButStillPasses() throws {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments:\n  - name: everyone\n")
        let file = ws.write("s/sg.yaml", """
            name: sg
            timezone: UTC
            schedule: { at: ["02:00"] }
            notify: { email: [ops@example.com] }
            destination: { type: sendgrid, api_key: "${SENDGRID_API_KEY}", base_url: "http://127.0.0.1:9" }
            goals:
              - export: { segments: [everyone], list: l, membership_field: f, email: email }
            """)
        let unset = try BuiltProducts.ferry(["validate", "--schedules", ws.path + "/s"],
                                            environment: ["SENDGRID_API_KEY": "SG.x-key", "FERRY_SMTP_URL": ""])
        #expect(unset.status == 0, "\(unset.stdout) \(unset.stderr)")
        #expect(unset.stderr == "ferry: warning: \(file): notify is set but FERRY_SMTP_URL is not; its notifications will not be sent\n")
        let set = try BuiltProducts.ferry(["validate", "--schedules", ws.path + "/s"],
                                          environment: ["SENDGRID_API_KEY": "SG.x-key", "FERRY_SMTP_URL": "smtp://127.0.0.1:25"])
        #expect(set.status == 0 && set.stderr.isEmpty, "\(set.stderr)")
    }

    @Test func curlDeliversDotStuffedLinesAndUTF8IntactThroughAUTH() async throws {
        try await SMTP.with { smtp in
            let sender = CurlMailSender(configuration: .init(url: smtp.url, user: SMTP.user,
                                                             password: Secret(value: SMTP.password, variable: "FERRY_SMTP_PASSWORD")))
            let body = "first line\n.\n..two dots\n.leading dot\nSchöne Grüße"
            try await sender.send(MailMessage(from: "ferry@example.com", to: ["a@example.com"], subject: "Grüße aus ferry", body: body,
                                              date: Date(), messageID: "t1@example.com"))
            let mails = try smtp.messages()
            try #require(mails.count == 1)
            #expect(mails[0].hasPrefix("Return-Path: <ferry@example.com>\r\nX-Sandbox-Rcpt-To: <a@example.com>\r\n"))
            #expect(mails[0].contains("\r\nSubject: =?UTF-8?B?\(Data("Grüße aus ferry".utf8).base64EncodedString())?=\r\n"))
            // Quoted-printable: lines that start with a dot keep it after curl stuffs and the server unstuffs.
            #expect(mails[0].contains("\r\n\r\nfirst line\r\n.\r\n..two dots\r\n.leading dot\r\nSch=C3=B6ne Gr=C3=BC=C3=9Fe\r\n"), "\(mails[0])")
        }
    }

    @Test func aRefusedRecipientIsAMailErrorWithTheReplyCode() async throws {
        try await SMTP.with(["--fail-rate", "1", "--fail-code", "550"], authenticated: false) { smtp in
            let sender = CurlMailSender(configuration: .init(url: smtp.url))
            await #expect {
                try await sender.send(MailMessage(from: "ferry@example.com", to: ["a@example.com"], subject: "s", body: "b",
                                                  date: Date(), messageID: "t2@example.com"))
            } throws: { error in
                (error as? MailError)?.replyCode == 550
            }
            let stored = try smtp.messages()
            #expect(stored.isEmpty)
        }
    }
}
