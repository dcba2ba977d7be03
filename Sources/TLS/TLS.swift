// TLS on OpenSSL memory BIOs, under our event loop's connections.
