// Tests of the Kube target.
import Testing

@testable import Kube
