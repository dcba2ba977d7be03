// A Kubernetes API client on the event loop: leases, the scale subresource, pods.
