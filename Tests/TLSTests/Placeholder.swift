// Tests of the TLS target.
import Testing

@testable import TLS
