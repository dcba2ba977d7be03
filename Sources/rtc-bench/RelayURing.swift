// rtc-bench relay's io_uring backends: one recv per side in flight (`uring`), or multishot accept and recv into a
// provided-buffer ring (`uring-multishot`).
import Sys

/// Why `backend` cannot run here, or nil when it can.
func relayBackendUnavailable(_ backend: RelayBackend) -> String? {
    switch backend {
    case .epoll: return nil
    case .uring, .uringMultishot: return "not built yet"
    }
}

func runURingRelay(
    options: RelayOptions, listener: FileDescriptor, signals: FileDescriptor, bound: SocketAddress
) throws(Errno) {
    throw Errno(38)
}
