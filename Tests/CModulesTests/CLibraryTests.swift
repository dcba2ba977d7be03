// Calls each Debian C library through its system-library module for real: PCRE2, OpenSSL, hiredis, librdkafka, Linux.
import CHiredis
import CLinux
import COpenSSL
import CPCRE2
import CRdKafka
import Foundation
import TestSupport
import Testing

private func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

@Suite struct OpenSSLTests {
    /// FIPS 180-2 Appendix A.1: SHA-1("abc").
    @Test func sha1OfABC() {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        let input = Array("abc".utf8)
        _ = SHA1(input, input.count, &digest)
        #expect(hex(digest) == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }

    /// RFC 4231 §4.3, test case 2.
    @Test func hmacSHA256TestCase2() {
        let key = Array("Jefe".utf8)
        let data = Array("what do ya want for nothing?".utf8)
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &out, &length)
        #expect(result != nil)
        #expect(hex(out.prefix(Int(length))) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func tlsContextAcceptsMinimumVersion() {
        let ctx = SSL_CTX_new(TLS_server_method())
        #expect(ctx != nil)
        #expect(rtc_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1)
        SSL_CTX_free(ctx)
    }
}

@Suite struct PCRE2Tests {
    @Test func jitMatchWithNamedCapture() throws {
        let pattern = "^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$"
        var errorCode: Int32 = 0
        var errorOffset = 0
        let code = pattern.withCString { ptr in
            ptr.withMemoryRebound(to: UInt8.self, capacity: pattern.utf8.count) {
                pcre2_compile_8($0, rtc_pcre2_zero_terminated(), 0, &errorCode, &errorOffset, nil)
            }
        }
        let compiled = try #require(code)
        defer { pcre2_code_free_8(compiled) }
        #expect(pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE)) == 0)
        let groupNumber = "podid".withCString { ptr in
            ptr.withMemoryRebound(to: UInt8.self, capacity: 6) { pcre2_substring_number_from_name_8(compiled, $0) }
        }
        #expect(groupNumber == 1)

        let matchData = pcre2_match_data_create_from_pattern_8(compiled, nil)
        defer { pcre2_match_data_free_8(matchData) }
        func match(_ subject: String) -> String? {
            let bytes = Array(subject.utf8)
            let rc = pcre2_jit_match_8(compiled, bytes, bytes.count, 0, 0, matchData, nil)
            guard rc > 0 else { return nil }
            let ovector = pcre2_get_ovector_pointer_8(matchData)!
            let start = Int(ovector[2 * Int(groupNumber)])
            let end = Int(ovector[2 * Int(groupNumber) + 1])
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        #expect(match("/ws/socket-7d9f-abc12/connect") == "socket-7d9f-abc12")
        #expect(match("/ws/Socket-1/connect") == nil)
        #expect(match("/ws/-bad/connect") == nil)
        #expect(match("/ws/a.b/connect") == nil)
    }
}

@Suite struct HiredisTests {
    /// Starts a real redis-server on a Unix socket, sends PING, expects PONG, stops the server.
    @Test func pingAgainstRealRedis() throws {
        let dir = try makeTemporaryDirectory("redis")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = dir + "/redis.sock"
        let server = try ChildProcess(
            "/usr/bin/redis-server",
            ["--port", "0", "--unixsocket", socketPath, "--save", "", "--appendonly", "no", "--dir", dir])
        defer { server.stop() }

        var context: UnsafeMutablePointer<redisContext>? = nil
        let connected = waitUntil(timeout: .seconds(10)) {
            guard let c = redisConnectUnix(socketPath) else { return false }
            if c.pointee.err == 0 {
                context = c
                return true
            }
            redisFree(c)
            return false
        }
        #expect(connected)
        let ctx = try #require(context)
        defer { redisFree(ctx) }

        let args: [String] = ["PING"]
        var cStrings = args.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var lengths = args.map { $0.utf8.count }
        let raw = cStrings.withUnsafeMutableBufferPointer { argv in
            argv.withMemoryRebound(to: UnsafePointer<CChar>?.self) { argvConst in
                redisCommandArgv(ctx, Int32(args.count), argvConst.baseAddress, &lengths)
            }
        }
        let reply = try #require(raw?.assumingMemoryBound(to: redisReply.self))
        defer { freeReplyObject(reply) }
        #expect(reply.pointee.type == REDIS_REPLY_STATUS)
        #expect(String(cString: reply.pointee.str) == "PONG")
    }
}

@Suite struct RdKafkaTests {
    /// Creates a librdkafka mock cluster with three brokers, reads its bootstrap list, destroys it.
    @Test func mockClusterLifecycle() throws {
        let conf = rd_kafka_conf_new()
        var errstr = [CChar](repeating: 0, count: 512)
        let producer = try #require(rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count))
        defer { rd_kafka_destroy(producer) }
        let cluster = try #require(rd_kafka_mock_cluster_new(producer, 3))
        let bootstraps = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        let brokers = bootstraps.split(separator: ",")
        #expect(brokers.count == 3)
        for broker in brokers {
            #expect(broker.hasPrefix("127.0.0.1:") || broker.hasPrefix("localhost:"))
            #expect(Int(broker.split(separator: ":").last ?? "") ?? 0 > 0)
        }
        rd_kafka_mock_cluster_destroy(cluster)
    }
}

@Suite struct LinuxShimTests {
    /// eventfd readiness seen through epoll, then a pipe2 pair moved with splice.
    @Test func epollSeesEventfdAndSpliceMovesBytes() {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        #expect(ep >= 0)
        defer { close(ep) }
        let efd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        #expect(efd >= 0)
        defer { close(efd) }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 42
        #expect(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &event) == 0)
        var events = [epoll_event](repeating: epoll_event(), count: 4)
        #expect(epoll_wait(ep, &events, 4, 0) == 0)
        var one: UInt64 = 1
        #expect(write(efd, &one, 8) == 8)
        #expect(epoll_wait(ep, &events, 4, 1000) == 1)
        #expect(events[0].data.u64 == 42)

        var a: [Int32] = [0, 0]
        var b: [Int32] = [0, 0]
        #expect(pipe2(&a, Int32(O_CLOEXEC | O_NONBLOCK)) == 0)
        #expect(pipe2(&b, Int32(O_CLOEXEC | O_NONBLOCK)) == 0)
        defer { (a + b).forEach { close($0) } }
        let message = Array("spliced".utf8)
        #expect(write(a[1], message, message.count) == message.count)
        let moved = splice(a[0], nil, b[1], nil, 64, UInt32(SPLICE_F_NONBLOCK))
        #expect(moved == message.count)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(read(b[0], &buffer, 64) == message.count)
        #expect(Array(buffer.prefix(message.count)) == message)
    }
}
