// Tests of the Balancer target.
import Testing

@testable import Balancer
