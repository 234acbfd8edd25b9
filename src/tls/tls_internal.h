/* What the I/O runtime needs from a rill_tls_ctx. */
#ifndef RILL_TLS_INTERNAL_H
#define RILL_TLS_INTERNAL_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "rill/tls.h"

/* A new SSL object from the context's current OpenSSL context (so a reload only affects SSL
 * objects created afterwards), in accept or connect state by the context's role, with
 * SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS.
 * server_name (client only, may be NULL) sets SNI and the host name to verify. The caller owns
 * the SSL (SSL_free). NULL on failure. Thread-safe. */
SSL *rill_tls_ssl_new(rill_tls_ctx *ctx, const char *server_name);

/* Verifies against the system's CA store (system_store.c): its hashed directory alone when the
 * bundle and directory in force are the system's own, else OpenSSL's default paths (which honour
 * SSL_CERT_FILE and SSL_CERT_DIR). False when OpenSSL refuses. */
bool tls_load_system_store(SSL_CTX *c);
/* The choice above, apart for tests: sys_dir when file_env and dir_env are NULL or name (through
 * links) sys_file and sys_dir, and sys_dir holds hash links; else NULL (the default paths). */
const char *tls_store_dir(const char *file_env, const char *dir_env, const char *sys_file,
                          const char *sys_dir);

/* Formats a message into err (which may be NULL or empty: then nothing). */
__attribute__((format(printf, 3, 4))) void tls_say(char *err, size_t errlen, const char *fmt, ...);

#endif
