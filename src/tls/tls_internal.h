/* What the I/O runtime needs from a rill_tls_ctx. */
#ifndef RILL_TLS_INTERNAL_H
#define RILL_TLS_INTERNAL_H

#include <openssl/ssl.h>

#include "rill/tls.h"

/* A new SSL object from the context's current OpenSSL context (so a reload only affects SSL
 * objects created afterwards), in accept or connect state by the context's role, with
 * SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS.
 * server_name (client only, may be NULL) sets SNI and the host name to verify. The caller owns
 * the SSL (SSL_free). NULL on failure. Thread-safe. */
SSL *rill_tls_ssl_new(rill_tls_ctx *ctx, const char *server_name);

/* Formats a message into err (which may be NULL or empty: then nothing). */
__attribute__((format(printf, 3, 4))) void tls_say(char *err, size_t errlen, const char *fmt, ...);

#endif
