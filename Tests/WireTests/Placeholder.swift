// Tests of the Wire target.
import Testing

@testable import Wire
