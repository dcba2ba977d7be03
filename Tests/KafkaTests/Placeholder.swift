// Tests of the Kafka target.
import Testing

@testable import Kafka
