// Tests of the Ring target.
import Testing

@testable import Ring
