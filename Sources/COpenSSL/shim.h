// OpenSSL 3: TLS, digests, HMAC and random bytes; function-like macros wrapped so Swift can call them.
#ifndef RTC_COPENSSL_SHIM_H
#define RTC_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

static inline int rtc_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int rtc_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline void rtc_OPENSSL_free(void *p) { OPENSSL_free(p); }
static inline long rtc_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long rtc_BIO_get_mem_pending(BIO *bio) { return (long)BIO_ctrl_pending(bio); }
/* The unread bytes of a memory BIO, in place: *data points at them, the result is their count. */
static inline long rtc_BIO_get_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
/* Empties a read-write memory BIO. */
static inline int rtc_BIO_reset(BIO *bio) { return (int)BIO_reset(bio); }
static inline long rtc_SSL_CTX_set_options(SSL_CTX *ctx, long options) { return (long)SSL_CTX_set_options(ctx, (uint64_t)options); }

#endif
