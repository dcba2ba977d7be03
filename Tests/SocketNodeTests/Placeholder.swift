// Tests of the SocketNode target.
import Testing

@testable import SocketNode
