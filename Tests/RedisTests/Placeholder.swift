// Tests of the Redis target.
import Testing

@testable import Redis
