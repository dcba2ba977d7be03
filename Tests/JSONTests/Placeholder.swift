// Tests of the JSON target.
import Testing

@testable import JSON
