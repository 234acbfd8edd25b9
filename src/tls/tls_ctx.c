/* TLS contexts: the RFC 9113 §9.2 server profile, ALPN selection, client contexts, and reload by
 * swapping the OpenSSL context (SSL objects keep a reference to the one they were made from). */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls_internal.h"

struct rill_tls_ctx {
    pthread_mutex_t lock; /* guards ssl_ctx against a concurrent reload */
    SSL_CTX *ssl_ctx;
    bool server;
    bool verify;
    enum rill_tls_alpn alpn;
    atomic_uint generation;
    /* Client: the last session a server gave us (TLS 1.3 tickets arrive after the handshake),
     * offered by the next connection to the same name: a resumed handshake skips the certificate
     * and a key exchange's worth of work. One slot: a client context serves one origin. Under
     * lock. */
    SSL_SESSION *session;
    char session_name[256];
};

/* The name a client connection was made for (the SNI, or the IP literal that has none), kept in
 * the SSL's ex_data by rill_tls_ssl_new and freed with it. */
static void free_name(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static pthread_once_t name_once = PTHREAD_ONCE_INIT;
static int name_slot = -1;

static void name_slot_init(void)
{
    name_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_name);
}

static int name_index(void)
{
    pthread_once(&name_once, name_slot_init);
    return name_slot;
}

static const char *client_name(SSL *ssl)
{
    const char *name = SSL_get_ex_data(ssl, name_index());
    return name ? name : "";
}

static int remember_session(SSL *ssl, SSL_SESSION *sess)
{
    rill_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!ctx || !SSL_SESSION_is_resumable(sess))
        return 0;
    pthread_mutex_lock(&ctx->lock);
    SSL_SESSION *old = ctx->session;
    ctx->session = sess; /* returning 1 keeps the reference OpenSSL gave us */
    snprintf(ctx->session_name, sizeof ctx->session_name, "%s", client_name(ssl));
    pthread_mutex_unlock(&ctx->lock);
    SSL_SESSION_free(old);
    return 1;
}

/* ALPN wire formats (length-prefixed), in server preference order. Static, so the selection
 * callback needs no per-context allocation whose lifetime would have to track SSL objects. */
static const unsigned char alpn_h2_http11[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_http11[] = "\x08http/1.1";
static const unsigned char alpn_h2[] = "\x02h2";

struct alpn_list {
    const unsigned char *wire;
    unsigned len;
};
static const struct alpn_list alpn_lists[] = {
    [RILL_TLS_ALPN_H2_HTTP11] = {alpn_h2_http11, sizeof alpn_h2_http11 - 1},
    [RILL_TLS_ALPN_HTTP11] = {alpn_http11, sizeof alpn_http11 - 1},
    [RILL_TLS_ALPN_H2] = {alpn_h2, sizeof alpn_h2 - 1},
};

/* TLS 1.2 suites allowed by RFC 9113 §9.2.2: ephemeral key exchange and AEAD only. TLS 1.3
 * suites are all AEAD with ephemeral key exchange, so the defaults stay. */
void tls_say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
/* The same three TLS 1.3 suites as OpenSSL's default, AES-128 first (as in the 1.2 list, and as
 * Go and Cloudflare order them): 10 AES rounds instead of 14 for every record, and SHA-256,
 * which current x86 and ARM cores hash in hardware, for the handshake's transcript and HKDF
 * (SHA-384 has no such instructions). The server's choice; a client offers them in this order. */
static const char tls13_suites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                   "TLS_CHACHA20_POLY1305_SHA256";


static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

/* Picks the first protocol in the server's list that the client offered. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    const struct alpn_list *mine = arg;
    for (unsigned i = 0; i < mine->len; i += 1u + mine->wire[i]) {
        const unsigned char *want = mine->wire + i + 1;
        unsigned want_len = mine->wire[i];
        for (unsigned j = 0; j < inlen;) {
            unsigned len = in[j];
            if (j + 1 + len > inlen)
                break; /* malformed list: stop looking */
            if (len == want_len && memcmp(in + j + 1, want, len) == 0) {
                *out = want;
                *outlen = (unsigned char)want_len;
                return SSL_TLSEXT_ERR_OK;
            }
            j += 1 + len;
        }
    }
    /* Offered ALPN but nothing we speak: the fatal no_application_protocol alert (RFC 7301
     * §3.2). A client that offers no ALPN never gets here and is served HTTP/1.1. */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static bool readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        tls_say(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* Shared by both roles. A peer closing without close_notify is reported as a plain EOF
 * (IGNORE_UNEXPECTED_EOF): HTTP/2 and HTTP/1.1 framing already detect truncation. */
static bool set_common(SSL_CTX *c, char *err, size_t errlen)
{
    if (!SSL_CTX_set_ciphersuites(c, tls13_suites)) {
        tls_say(err, errlen, "cannot set TLS 1.3 cipher suites: %s", ssl_reason());
        return false;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    /* One read() takes whatever records have arrived, instead of a header read and a body read
     * per record. */
    SSL_CTX_set_read_ahead(c, 1);
    return true;
}

static int build_server(const char *cert_file, const char *key_file, enum rill_tls_alpn alpn, SSL_CTX **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    if (!cert_file || !key_file) {
        tls_say(err, errlen, "a certificate and a key file are both needed");
        return RILL_ERR_INVALID_ARG;
    }
    if ((unsigned)alpn >= sizeof alpn_lists / sizeof alpn_lists[0]) {
        tls_say(err, errlen, "unknown ALPN choice");
        return RILL_ERR_INVALID_ARG;
    }
    if (!readable("certificate", cert_file, err, errlen) || !readable("key", key_file, err, errlen))
        return RILL_ERR_IO;
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) {
        tls_say(err, errlen, "cannot create TLS context: %s", ssl_reason());
        return RILL_ERR_NOMEM;
    }
    int rc = RILL_ERR_TLS;
    if (!set_common(c, err, errlen))
        goto fail;
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!SSL_CTX_set_cipher_list(c, tls12_ciphers)) {
        tls_say(err, errlen, "cannot set TLS 1.2 ciphers: %s", ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
        tls_say(err, errlen, "cannot load certificate %s: %s", cert_file, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            tls_say(err, errlen, "key %s does not match certificate %s", key_file, cert_file);
        else
            tls_say(err, errlen, "cannot load key %s: %s", key_file, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        tls_say(err, errlen, "key %s does not match certificate %s", key_file, cert_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(c, alpn_select, (void *)&alpn_lists[alpn]);
    /* Resumption: a server-side session cache (for TLS 1.2 session ids) and tickets (on by default,
     * keys per context, so a reload starts new ones). */
    static const unsigned char sid_ctx[] = "rill";
    SSL_CTX_set_session_id_context(c, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(c, 20000);
    SSL_CTX_set_num_tickets(c, 1);
    *out = c;
    ERR_clear_error();
    return RILL_OK;
fail:
    ERR_clear_error();
    SSL_CTX_free(c);
    return rc;
}

int rill_tls_server_new(const char *cert_file, const char *key_file, enum rill_tls_alpn alpn,
                        rill_tls_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *c;
    int rc = build_server(cert_file, key_file, alpn, &c, err, errlen);
    if (rc != RILL_OK)
        return rc;
    rill_tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        SSL_CTX_free(c);
        tls_say(err, errlen, "out of memory");
        return RILL_ERR_NOMEM;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->ssl_ctx = c;
    ctx->server = true;
    ctx->alpn = alpn;
    atomic_init(&ctx->generation, 1);
    *out = ctx;
    return RILL_OK;
}

int rill_tls_ctx_reload(rill_tls_ctx *ctx, const char *cert_file, const char *key_file, char *err,
                        size_t errlen)
{
    if (!ctx->server) {
        tls_say(err, errlen, "only a server context can be reloaded");
        return RILL_ERR_INVALID_ARG;
    }
    SSL_CTX *fresh;
    int rc = build_server(cert_file, key_file, ctx->alpn, &fresh, err, errlen);
    if (rc != RILL_OK)
        return rc;
    pthread_mutex_lock(&ctx->lock);
    SSL_CTX *old = ctx->ssl_ctx;
    ctx->ssl_ctx = fresh;
    atomic_fetch_add(&ctx->generation, 1);
    pthread_mutex_unlock(&ctx->lock);
    SSL_CTX_free(old); /* drops our reference; open connections hold theirs */
    return RILL_OK;
}

int rill_tls_client_new(unsigned flags, const char *ca_file, rill_tls_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (ca_file && !readable("CA file", ca_file, err, errlen))
        return RILL_ERR_IO;
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c) {
        tls_say(err, errlen, "cannot create TLS context: %s", ssl_reason());
        return RILL_ERR_NOMEM;
    }
    const struct alpn_list *alpn = &alpn_lists[flags & RILL_TLS_CLIENT_HTTP11 ? RILL_TLS_ALPN_HTTP11
                                                                               : RILL_TLS_ALPN_H2_HTTP11];
    bool verify = !(flags & RILL_TLS_CLIENT_NO_VERIFY);
    bool common = set_common(c, err, errlen);
    int ok = common && SSL_CTX_set_alpn_protos(c, alpn->wire, alpn->len) == 0;
    if (ok && verify) {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        ok = ca_file ? SSL_CTX_load_verify_locations(c, ca_file, NULL) == 1
                     : tls_load_system_store(c);
        if (!ok)
            tls_say(err, errlen, "cannot load CA %s: %s", ca_file ? ca_file : "(system store)", ssl_reason());
    } else if (!ok && common) {
        tls_say(err, errlen, "cannot set ALPN: %s", ssl_reason());
    }
    ERR_clear_error();
    rill_tls_ctx *ctx = ok ? calloc(1, sizeof *ctx) : NULL;
    if (!ctx) {
        SSL_CTX_free(c);
        return ok ? RILL_ERR_NOMEM : RILL_ERR_TLS;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->ssl_ctx = c;
    ctx->verify = verify;
    atomic_init(&ctx->generation, 1);
    /* Sessions are kept by us (remember_session), not in OpenSSL's cache, which a client does
     * not look up by itself. */
    SSL_CTX_set_app_data(c, ctx);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, remember_session);
    *out = ctx;
    return RILL_OK;
}

void rill_tls_ctx_free(rill_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    SSL_SESSION_free(ctx->session);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

bool rill_tls_ctx_is_server(const rill_tls_ctx *ctx)
{
    return ctx->server;
}

unsigned rill_tls_ctx_generation(const rill_tls_ctx *ctx)
{
    return atomic_load(&ctx->generation);
}

static bool is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

SSL *rill_tls_ssl_new(rill_tls_ctx *ctx, const char *server_name)
{
    pthread_mutex_lock(&ctx->lock);
    SSL *ssl = SSL_new(ctx->ssl_ctx); /* takes its own reference to the SSL_CTX */
    pthread_mutex_unlock(&ctx->lock);
    if (!ssl)
        return NULL;
    if (ctx->server) {
        SSL_set_accept_state(ssl);
        return ssl;
    }
    SSL_set_connect_state(ssl);
    /* The name the session slot is kept for (a copy: the SSL outlives the caller's string). */
    char *name = strdup(server_name ? server_name : "");
    if (!name || name_index() < 0 || !SSL_set_ex_data(ssl, name_index(), name)) {
        free(name);
        SSL_free(ssl);
        return NULL;
    }
    pthread_mutex_lock(&ctx->lock);
    if (ctx->session && strcmp(ctx->session_name, name) == 0)
        SSL_set_session(ssl, ctx->session); /* takes its own reference */
    pthread_mutex_unlock(&ctx->lock);
    if (server_name && *server_name) {
        bool ip = is_ip_literal(server_name);
        int ok = 1;
        if (!ip) /* SNI carries host names only (RFC 6066 §3) */
            ok = SSL_set_tlsext_host_name(ssl, server_name);
        if (ok && ctx->verify)
            ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name)
                    : SSL_set1_host(ssl, server_name);
        if (!ok) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}
