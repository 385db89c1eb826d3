import Dispatch
import Foundation

/// A list export's rows, formatted by a few threads at once and written in order: a million-member export
/// kept a client waiting seconds on one thread. The members, in profile id order, are cut into blocks; each
/// round, every worker formats one block into its own buffer, then the buffers are written in block order.
/// `@unchecked Sendable` for the users it points into: they are only read, and only while the store's actor
/// waits in `write(to:)`, so nothing changes them meanwhile (reference counts are atomic).
struct ExportRowWriter: @unchecked Sendable {
    /// The order members are taken in: the table's own when it is in id order (membership is checked as
    /// rows are written), else their positions and signup times, sorted by id.
    enum Order {
        case table
        case sorted([(position: Int, signup: Date)])
    }

    /// Members per block: about 1.2 MB of CSV, few rounds, little memory.
    static let blockSize = 8192

    private let users: UnsafeBufferPointer<SandboxUser>
    private let list: SandboxList
    private let order: Order
    /// The vars written, one column each.
    let varNames: [String]

    /// The export of `list`'s members among `users`, with the given vars (every var a member has, sorted, when nil).
    init(users: UnsafeBufferPointer<SandboxUser>, list: SandboxList, vars: [String]?, inIDOrder: Bool) {
        self.users = users
        self.list = list
        if inIDOrder {
            order = .table
        } else {
            var matching: [(position: Int, signup: Date)] = []
            for position in users.indices {
                if let signup = Self.signup(users, at: position, in: list) { matching.append((position, signup)) }
            }
            order = .sorted(SIDOrder.sorted(matching, by: { users[$0.position].id }))
        }
        if let vars {
            varNames = vars
        } else {
            var names = Set<String>()
            for position in users.indices where Self.signup(users, at: position, in: list) != nil {
                names.formUnion(users[position].vars.keys)
            }
            varNames = names.sorted()
        }
    }

    /// Writes the header and every member's row.
    func write(to handle: FileHandle) throws {
        var header = ExportCSVBytes()
        header.line(["Profile Id", "Email", "Email Hash", "Engagement", "Lists",
                     "Profile Created Date", "List Signup", "Optout Time"] + varNames)
        try handle.write(contentsOf: header.bytes)
        let count = switch order {
        case .table: users.count
        case .sorted(let members): members.count
        }
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        let workers = (0..<min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)).map { _ in ExportRowWorker() }
        var block = 0
        while block < blocks {
            let first = block
            let round = min(workers.count, blocks - first)
            DispatchQueue.concurrentPerform(iterations: round) { index in
                let worker = workers[index]
                worker.out.bytes.removeAll(keepingCapacity: true)
                // Each inout holds one access to the worker's property for the block (not one per cell).
                format(block: first + index, out: &worker.out, stamps: &worker.stamps, hasher: worker.hasher, touched: &worker.touched)
            }
            for worker in workers.prefix(round) { try handle.write(contentsOf: worker.out.bytes) }
            block += round
        }
    }

    private func format(block: Int, out: inout ExportCSVBytes, stamps: inout UTCStamps, hasher: MD5Hasher?, touched: inout Int) {
        let start = block * Self.blockSize
        switch order {
        case .table:
            let end = min(start + Self.blockSize, users.count)
            for position in start..<end {
                if (position - start) % 16 == 0 { touched &+= Self.touch(users, position..<min(position + 16, end)) }
                guard let signup = Self.signup(users, at: position, in: list) else { continue }
                appendRow(position, signup: signup, out: &out, stamps: &stamps, hasher: hasher)
            }
        case .sorted(let members):
            for member in members[start..<min(start + Self.blockSize, members.count)] {
                appendRow(member.position, signup: member.signup, out: &out, stamps: &stamps, hasher: hasher)
            }
        }
    }

    /// A natural list's date is read in place: handing the user to `SailthruStore.signup(of:in:)` copies it.
    private static func signup(_ users: UnsafeBufferPointer<SandboxUser>, at position: Int, in list: SandboxList) -> Date? {
        SailthruStore.signup(of: users[position], in: list)
    }

    /// Reads a word of each user's id, keys, vars and lists storage, one user after the other: the memory reads
    /// of a few users overlap, where a row's own first reads wait for memory one by one (waiting for them was
    /// most of a row's time; this took a fifth off an export's samples). Returns a sum only so the reads are kept.
    private static func touch(_ users: UnsafeBufferPointer<SandboxUser>, _ range: Range<Int>) -> Int {
        var sum = 0
        for user in range {
            sum &+= users[user].keys.count &+ users[user].vars.count &+ users[user].lists.count
            sum &+= Int(users[user].id.utf8.first ?? 0)
        }
        return sum
    }

    /// One member's row, read where the user lies: a `SandboxUser` argument, even `borrowing`, is a copy
    /// of all its fields (a fifth of the export's samples), where `pointee.field` loads only the field.
    private func appendRow(_ position: Int, signup: Date, out: inout ExportCSVBytes, stamps: inout UTCStamps, hasher: MD5Hasher?) {
        let user = users.baseAddress! + position
        let email = user.pointee.keys.fewEntryValue("email") ?? ""
        out.cell(user.pointee.id)
        out.comma()
        out.cell(email)
        out.comma()
        if !email.isEmpty { out.md5Hex(of: email, with: hasher) }
        out.comma()
        out.raw("new")
        out.comma()
        let lists = user.pointee.lists
        if lists.count == 1, let only = lists.keys.first { out.cell(only) } else { out.cell(lists.keys.sorted().joined(separator: ",")) }
        out.comma()
        stamps.append(user.pointee.created, to: &out)
        out.comma()
        stamps.append(signup, to: &out)
        out.comma()
        if user.pointee.optout != "none" { out.cell(user.pointee.optout) }
        for name in varNames {
            out.comma()
            if let value = user.pointee.vars.fewEntryValue(name) { out.cell(value.cell) }
        }
        out.endLine()
    }
}

/// One export thread's buffer, date stamps and MD5 context. `@unchecked Sendable`: in a round, each worker
/// is used only by the iteration with its index, and a round ends before the next begins.
final class ExportRowWorker: @unchecked Sendable {
    var out = ExportCSVBytes()
    var stamps = UTCStamps()
    let hasher = MD5Hasher()
    /// Where the sums of the cache-warming reads go: stored, so the optimizer keeps the reads.
    var touched = 0
}
