/* rill TLS contexts (OpenSSL 3): server contexts with ALPN h2 / http/1.1 and the RFC 9113 §9.2
 * profile, client contexts, a self-signed localhost certificate kept in a state directory, and
 * hot reload (SIGHUP) that swaps the context for new connections only.
 *
 * A rill_tls_ctx is shared by every loop/thread that uses it: creating connections from it and
 * rill_tls_ctx_reload() are thread-safe. It is handed to rill_io_listen()/rill_io_connect()
 * (rill/io.h), which reference it: it must outlive those listeners and pending connects.
 * Established connections hold their own reference to the OpenSSL context they started with.
 *
 * Error text: functions taking (err, errlen) write one line suitable for stderr on failure
 * (e.g. "cannot read certificate /x/cert.pem: No such file or directory"). err may be NULL. */
#ifndef RILL_TLS_H
#define RILL_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_tls_ctx rill_tls_ctx;

/* Which protocols the server offers through ALPN, in preference order. */
enum rill_tls_alpn {
    RILL_TLS_ALPN_H2_HTTP11 = 0, /* "h2", then "http/1.1" (default) */
    RILL_TLS_ALPN_HTTP11 = 1,    /* "http/1.1" only */
    RILL_TLS_ALPN_H2 = 2,        /* "h2" only */
};

/* Server context from PEM files (certificate chain, private key). TLS 1.2 minimum, TLS 1.2
 * restricted to ECDHE + AEAD suites (AES-GCM, CHACHA20-POLY1305), no renegotiation, no
 * compression, session cache and tickets for resumption, ALPN as given. A client offering none
 * of the server's protocols proceeds without ALPN. *out is owned by the caller
 * (rill_tls_ctx_free). Returns RILL_ERR_IO for unreadable files, RILL_ERR_TLS for bad content or a
 * key that does not match the certificate. */
RILL_API int rill_tls_server_new(const char *cert_file, const char *key_file, enum rill_tls_alpn alpn,
                                 rill_tls_ctx **out, char *err, size_t errlen);

/* Rebuilds the server context from (possibly new) files and swaps it in for connections accepted
 * from now on; connections already open keep the old one. On failure the current context stays in
 * use. Thread-safe. */
RILL_API int rill_tls_ctx_reload(rill_tls_ctx *ctx, const char *cert_file, const char *key_file,
                                 char *err, size_t errlen);

/* Client-context flags. */
enum {
    RILL_TLS_CLIENT_NO_VERIFY = 1 << 0, /* accept any certificate (testing, --insecure) */
    RILL_TLS_CLIENT_HTTP11 = 1 << 1,    /* offer only http/1.1 (default offers h2, http/1.1) */
};

/* Client context: TLS 1.2 minimum, ALPN "h2","http/1.1", peer verification against ca_file (PEM)
 * or, if ca_file is NULL, the system trust store, unless RILL_TLS_CLIENT_NO_VERIFY. */
RILL_API int rill_tls_client_new(unsigned flags, const char *ca_file, rill_tls_ctx **out, char *err,
                                 size_t errlen);

/* Frees the caller's context. Connections still using its OpenSSL context keep it alive. */
RILL_API void rill_tls_ctx_free(rill_tls_ctx *ctx);

/* True for a server context. */
RILL_API bool rill_tls_ctx_is_server(const rill_tls_ctx *ctx);

/* How many times the context has been (re)built: 1 after *_new, +1 per successful reload. */
RILL_API unsigned rill_tls_ctx_generation(const rill_tls_ctx *ctx);

/* The default state directory: $XDG_STATE_HOME/rill, else $HOME/.local/state/rill. Writes it into
 * buf; RILL_ERR_NOT_FOUND if neither variable is set, RILL_ERR_BUFFER_TOO_SMALL if it does not fit. */
RILL_API int rill_tls_default_state_dir(char *buf, size_t buflen);

/* Ensures a self-signed certificate for localhost exists in dir (NULL = the default state dir),
 * creating dir (0700) if needed: "localhost-cert.pem" and "localhost-key.pem" (mode 0600),
 * EC P-256, SAN DNS:localhost, IP:127.0.0.1, IP:::1, valid for one year. Existing files are
 * reused while they load and are valid for at least another day; otherwise they are replaced.
 * Writes the two paths into cert_path / key_path (each pathlen bytes). *created (optional) says
 * whether new files were written. */
RILL_API int rill_tls_self_signed(const char *dir, char *cert_path, char *key_path, size_t pathlen,
                                  bool *created, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
