// The request phases' transitions on deadlines, client EOFs and upstream failures, without sockets.
import Forwarding
import Testing

@testable import Gateway

@Suite struct PhaseRulesTests {
    typealias Kind = RequestPhase.Kind

    /// Every phase has a deadline outcome; only `closed` has none (nothing is left to time out).
    @Test(arguments: Kind.allCases) func everyPhaseHasADeadline(_ phase: Kind) {
        let outcome = PhaseRules.deadline(phase, progressed: false)
        if phase == .closed {
            #expect(outcome == .none)
        } else {
            #expect(outcome != .none, "\(phase) has no deadline")
        }
    }

    @Test func deadlineOutcomes() {
        let table: [(Kind, Bool, PhaseRules.Outcome)] = [
            (.idle, false, .close),
            (.head, false, .answer(.requestTimeout)),
            (.body, false, .answer(.requestTimeout)),
            (.resolving, false, .answer(.badGateway)),
            (.connecting, false, .answer(.gatewayTimeout)),
            (.sending, false, .answer(.requestTimeout)),
            (.awaiting, false, .answer(.gatewayTimeout)),
            // Relaying: a client still reading slowly gets more time; a stalled exchange is cut.
            (.relaying, true, .extend),
            (.relaying, false, .abort),
            (.closing, false, .close),
        ]
        for (phase, progressed, expected) in table {
            #expect(PhaseRules.deadline(phase, progressed: progressed) == expected, "\(phase)")
        }
    }

    @Test func clientEOFInEachPhase() {
        let table: [(Kind, PhaseRules.Outcome)] = [
            (.idle, .close), (.head, .close), (.body, .close),
            (.resolving, .finishThenClose), (.connecting, .finishThenClose),
            // Part of a streamed body went upstream: that request cannot complete.
            (.sending, .abort),
            (.awaiting, .finishThenClose), (.relaying, .finishThenClose),
            (.closing, .close), (.closed, .none),
        ]
        for (phase, expected) in table {
            #expect(PhaseRules.clientEOF(phase) == expected, "\(phase)")
        }
    }

    /// Before any response byte: retry when allowed, else 502 or 504 by the failure's kind.
    @Test func upstreamFailureBeforeTheResponse() {
        let failures: [(UpstreamFailure, PhaseRules.Outcome)] = [
            (.connectRefused, .answer(.badGateway)),
            (.connectTimeout, .answer(.gatewayTimeout)),
            (.reset, .answer(.badGateway)),
            (.responseTimeout, .answer(.gatewayTimeout)),
            (.badResponse, .answer(.badGateway)),
            (.dns, .answer(.badGateway)),
        ]
        for phase in [Kind.head, .body, .resolving, .connecting, .awaiting] {
            for (failure, answer) in failures {
                #expect(
                    PhaseRules.upstreamFailed(failure, phase: phase, responseStarted: false, canRetry: false) == answer,
                    "\(failure) in \(phase)")
                let retried = PhaseRules.upstreamFailed(failure, phase: phase, responseStarted: false, canRetry: true)
                // DNS and a malformed response are not the address's fault: another attempt would not help.
                #expect(
                    retried == (failure == .dns || failure == .badResponse ? answer : .retry), "\(failure) in \(phase)")
            }
        }
        // A streamed body cannot be sent twice.
        #expect(
            PhaseRules.upstreamFailed(.reset, phase: .sending, responseStarted: false, canRetry: true)
                == .answer(.badGateway))
    }

    /// After response bytes went downstream, only a cut is possible; an until-close body ends at the close.
    @Test func upstreamFailureAfterTheResponseStarted() {
        for failure in [UpstreamFailure.reset, .responseTimeout, .badResponse] {
            #expect(
                PhaseRules.upstreamFailed(failure, phase: .relaying, responseStarted: true, canRetry: true) == .abort)
            #expect(
                PhaseRules.upstreamFailed(failure, phase: .awaiting, responseStarted: true, canRetry: true) == .abort)
        }
        #expect(
            PhaseRules.upstreamFailed(
                .reset, phase: .relaying, responseStarted: true, canRetry: false, untilClose: true)
                == .endOfBody)
        // A failure reported while no request is in flight changes nothing.
        for phase in [Kind.idle, .closing, .closed] {
            #expect(PhaseRules.upstreamFailed(.reset, phase: phase, responseStarted: false, canRetry: true) == .none)
        }
    }

    /// 101 becomes a tunnel only for an upgrade the route forwards; other 1xx are interim.
    @Test func responseHeads() {
        #expect(PhaseRules.responseHead(status: 101, forwardedUpgrade: true) == .tunnel)
        #expect(PhaseRules.responseHead(status: 101, forwardedUpgrade: false) == .invalid)
        #expect(PhaseRules.responseHead(status: 100, forwardedUpgrade: false) == .interim)
        #expect(PhaseRules.responseHead(status: 103, forwardedUpgrade: true) == .interim)
        #expect(PhaseRules.responseHead(status: 200, forwardedUpgrade: true) == .final)
        #expect(PhaseRules.responseHead(status: 502, forwardedUpgrade: false) == .final)
    }

    /// Only idle, head, body and sending consume client bytes as they come; closing and closed are final.
    @Test func inputAndFinality() {
        #expect(Kind.allCases.filter(\.consumesInput) == [.idle, .head, .body, .sending])
        #expect(Kind.allCases.filter(\.isFinal) == [.closing, .closed])
    }
}
