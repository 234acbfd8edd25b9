/* TLS: the self-signed certificate, error texts, and a TLS server on the I/O loop against
 * in-process OpenSSL clients (ALPN, the RFC 9113 §9.2 profile, large echoes, resumption, reload)
 * and against rill's own client connect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "io/io_internal.h"
#include "rill/tls.h"
#include "test_io_util.h"
#include "tls/tls_internal.h"

/* ---- fixtures ----------------------------------------------------------------------------- */

static char tmp_root[64];

static void make_tmp_root(void)
{
    if (tmp_root[0])
        return;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/rill-tls-XXXXXX");
    assert_non_null(mkdtemp(tmp_root));
}

static void cert_in(const char *sub, char *cert, char *key)
{
    make_tmp_root();
    char dir[256], err[256];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, sub);
    int rc = rill_tls_self_signed(dir, cert, key, 4096, NULL, err, sizeof err);
    if (rc != RILL_OK)
        fail_msg("%s", err);
}

struct tls_server {
    rill_io_loop *loop;
    atomic_int opened;
};

static void srv_open(rill_io_conn *conn, const char *alpn)
{
    struct tls_server *s = rill_io_conn_user(conn);
    atomic_fetch_add(&s->opened, 1);
    struct rill_io_tls_info info;
    char line[200];
    if (rill_io_conn_tls_info(conn, &info) != RILL_OK) {
        rill_io_conn_write(conn, "no-info\n", 8);
        return;
    }
    /* alpn from on_open and from tls_info must agree. */
    bool same = (alpn == NULL && info.alpn == NULL) || (alpn && info.alpn && strcmp(alpn, info.alpn) == 0);
    int n = snprintf(line, sizeof line, "alpn=%s v=%04x h2ok=%d resumed=%d same=%d cipher=%s\n",
                     alpn ? alpn : "none", info.version, info.h2_acceptable, info.resumed, same, info.cipher);
    rill_io_conn_write(conn, line, (size_t)n);
}

static void srv_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    rill_io_conn_write(conn, data, len);
}

static const struct rill_io_conn_callbacks srv_cb = {.size = sizeof srv_cb, .on_open = srv_open, .on_data = srv_data};

struct fixture {
    char cert[4096], key[4096];
    rill_tls_ctx *tls;
    struct loop_thread lt;
    struct tls_server srv;
    uint16_t port;
    rill_io_listener *listener;
};

static void fixture_start_with(struct fixture *f, const rill_io_loop_options *opts,
                               const struct rill_io_conn_callbacks *cb)
{
    memset(f, 0, sizeof *f);
    cert_in("server-a", f->cert, f->key);
    char err[256];
    assert_int_equal(rill_tls_server_new(f->cert, f->key, RILL_TLS_ALPN_H2_HTTP11, &f->tls, err, sizeof err),
                     RILL_OK);
    assert_int_equal(rill_io_loop_new(opts, &f->lt.loop), RILL_OK);
    f->srv.loop = f->lt.loop;
    atomic_init(&f->srv.opened, 0);
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0), RILL_OK);
    rill_io_listener *l;
    assert_int_equal(rill_io_listen(f->lt.loop, &addr, f->tls, cb, &f->srv, &l), RILL_OK);
    struct rill_io_addr bound = rill_io_listener_addr(l);
    f->port = rill_io_addr_port(&bound);
    f->listener = l;
    loop_thread_start(&f->lt);
}

static void fixture_start(struct fixture *f, const rill_io_loop_options *opts)
{
    fixture_start_with(f, opts, &srv_cb);
}

static void fixture_stop(struct fixture *f)
{
    loop_thread_stop(&f->lt);
    rill_io_loop_free(f->lt.loop);
    rill_tls_ctx_free(f->tls);
}

/* ---- an in-process OpenSSL client --------------------------------------------------------- */

struct client_opts {
    const char *alpn_wire; /* length-prefixed list, NULL for no ALPN */
    int max_version;       /* 0 = library default */
    const char *ciphers;   /* TLS 1.2 cipher list, NULL = default */
    const char *ca_file;   /* verify against it with host "localhost" */
    bool seclevel0;        /* allow legacy protocol versions */
};

static SSL_CTX *client_ctx(const struct client_opts *o)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    if (o->seclevel0) {
        SSL_CTX_set_security_level(c, 0);
        SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
    }
    if (o->max_version)
        SSL_CTX_set_max_proto_version(c, o->max_version);
    if (o->ciphers)
        assert_int_equal(SSL_CTX_set_cipher_list(c, o->ciphers), 1);
    if (o->alpn_wire)
        assert_int_equal(SSL_CTX_set_alpn_protos(c, (const unsigned char *)o->alpn_wire,
                                                 (unsigned)strlen(o->alpn_wire)), 0);
    if (o->ca_file) {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        assert_int_equal(SSL_CTX_load_verify_locations(c, o->ca_file, NULL), 1);
    }
    return c;
}

struct client {
    int fd;
    SSL *ssl;
    char greeting[200];
    char error[200]; /* why the handshake failed */
};

/* Connects, handshakes and reads the server's greeting line; false if any step fails. */
static bool client_open(struct client *cl, SSL_CTX *ctx, uint16_t port, SSL_SESSION *resume)
{
    memset(cl, 0, sizeof *cl);
    cl->fd = tcp_connect(port);
    if (cl->fd < 0)
        return false;
    cl->ssl = SSL_new(ctx);
    SSL_set_fd(cl->ssl, cl->fd);
    SSL_set_tlsext_host_name(cl->ssl, "localhost");
    SSL_set1_host(cl->ssl, "localhost");
    if (resume)
        SSL_set_session(cl->ssl, resume);
    if (SSL_connect(cl->ssl) != 1) {
        ERR_error_string_n(ERR_peek_last_error(), cl->error, sizeof cl->error);
        ERR_clear_error();
        return false;
    }
    for (size_t i = 0; i + 1 < sizeof cl->greeting; i++) {
        if (SSL_read(cl->ssl, &cl->greeting[i], 1) != 1)
            return false;
        if (cl->greeting[i] == '\n')
            return true;
    }
    return false;
}

static void client_close(struct client *cl)
{
    if (cl->ssl) {
        SSL_shutdown(cl->ssl);
        SSL_free(cl->ssl);
    }
    if (cl->fd >= 0)
        close(cl->fd);
    cl->ssl = NULL;
    cl->fd = -1;
    ERR_clear_error();
}

static bool client_echo(struct client *cl, const char *msg)
{
    size_t len = strlen(msg);
    char back[256];
    if (len >= sizeof back || SSL_write(cl->ssl, msg, (int)len) != (int)len)
        return false;
    size_t got = 0;
    while (got < len) {
        int r = SSL_read(cl->ssl, back + got, (int)(len - got));
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return memcmp(back, msg, len) == 0;
}

static bool has(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

/* ---- certificates and errors -------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char *copy = malloc(*len);
    memcpy(copy, buf, *len);
    return copy;
}

static void self_signed_is_generated_then_reused(void **state)
{
    (void)state;
    make_tmp_root();
    char dir[256], cert[4096], key[4096], err[256];
    snprintf(dir, sizeof dir, "%s/state/nested/rill", tmp_root);
    bool created = false;
    assert_int_equal(rill_tls_self_signed(dir, cert, key, sizeof cert, &created, err, sizeof err), RILL_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    FILE *f = fopen(cert, "r");
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_not_equal(X509_check_host(x, "example.com", 0, 0, NULL), 1);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
    assert_true(days >= 364 && days <= 365);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    char group[64] = "";
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof group, &glen), 1);
    assert_string_equal(group, "prime256v1");
    X509_free(x);

    size_t len1, len2;
    char *first = slurp(cert, &len1);
    assert_int_equal(rill_tls_self_signed(dir, cert, key, sizeof cert, &created, err, sizeof err), RILL_OK);
    assert_false(created); /* reused */
    char *second = slurp(cert, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(first, second, len1);
    free(second);

    /* A damaged certificate is replaced. */
    f = fopen(cert, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(rill_tls_self_signed(dir, cert, key, sizeof cert, &created, err, sizeof err), RILL_OK);
    assert_true(created);
    second = slurp(cert, &len2);
    assert_true(len1 != len2 || memcmp(first, second, len1) != 0);
    free(first);
    free(second);
}

static void default_state_dir_follows_xdg(void **state)
{
    (void)state;
    char buf[256];
    const char *old = getenv("XDG_STATE_HOME");
    char *saved = old ? strdup(old) : NULL;
    setenv("XDG_STATE_HOME", "/some/where", 1);
    assert_int_equal(rill_tls_default_state_dir(buf, sizeof buf), RILL_OK);
    assert_string_equal(buf, "/some/where/rill");
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", getenv("HOME") ? getenv("HOME") : "/root", 1);
    assert_int_equal(rill_tls_default_state_dir(buf, sizeof buf), RILL_OK);
    assert_true(has(buf, "/.local/state/rill"));
    assert_int_equal(rill_tls_default_state_dir(buf, 4), RILL_ERR_BUFFER_TOO_SMALL);
    if (saved) {
        setenv("XDG_STATE_HOME", saved, 1);
        free(saved);
    }
}

static void bad_files_give_one_line_errors(void **state)
{
    (void)state;
    char cert[4096], key[4096], other_cert[4096], other_key[4096], err[512];
    cert_in("err-a", cert, key);
    cert_in("err-b", other_cert, other_key);
    rill_tls_ctx *ctx = NULL;

    assert_int_equal(rill_tls_server_new("/nonexistent/cert.pem", key, 0, &ctx, err, sizeof err), RILL_ERR_IO);
    assert_null(ctx);
    assert_true(has(err, "cannot read certificate /nonexistent/cert.pem: No such file or directory"));
    assert_false(has(err, "\n"));

    assert_int_equal(rill_tls_server_new(cert, "/nonexistent/key.pem", 0, &ctx, err, sizeof err), RILL_ERR_IO);
    assert_true(has(err, "cannot read key /nonexistent/key.pem"));

    char garbage[300];
    snprintf(garbage, sizeof garbage, "%s/garbage.pem", tmp_root);
    FILE *f = fopen(garbage, "w");
    fputs("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(rill_tls_server_new(garbage, key, 0, &ctx, err, sizeof err), RILL_ERR_TLS);
    assert_true(has(err, "cannot load certificate"));
    assert_true(has(err, garbage));

    assert_int_equal(rill_tls_server_new(cert, other_key, 0, &ctx, err, sizeof err), RILL_ERR_TLS);
    if (!has(err, "does not match"))
        fail_msg("%s", err);
    assert_null(ctx);
    assert_int_equal(ERR_peek_error(), 0); /* no stale OpenSSL errors left for the caller */

    assert_int_equal(rill_tls_client_new(0, "/nonexistent/ca.pem", &ctx, err, sizeof err), RILL_ERR_IO);
    assert_true(has(err, "cannot read CA file"));
}

/* ---- handshakes --------------------------------------------------------------------------- */

static void alpn_prefers_h2_and_falls_back(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    const struct { const char *wire, *expect_line, *expect_client; } cases[] = {
        {"\x02h2\x08http/1.1", "alpn=h2 ", "h2"},
        {"\x08http/1.1\x02h2", "alpn=h2 ", "h2"}, /* the server's preference wins */
        {"\x08http/1.1", "alpn=http/1.1 ", "http/1.1"},
        {NULL, "alpn=none ", NULL}, /* no ALPN at all: HTTP/1.1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct client_opts o = {.alpn_wire = cases[i].wire, .ca_file = f.cert};
        SSL_CTX *ctx = client_ctx(&o);
        struct client cl;
        assert_true(client_open(&cl, ctx, f.port, NULL));
        assert_int_equal(SSL_get_verify_result(cl.ssl), X509_V_OK); /* the cert verifies as localhost */
        assert_true(has(cl.greeting, cases[i].expect_line));
        assert_true(has(cl.greeting, "same=1"));
        assert_true(has(cl.greeting, "h2ok=1"));
        const unsigned char *sel;
        unsigned sel_len;
        SSL_get0_alpn_selected(cl.ssl, &sel, &sel_len);
        if (cases[i].expect_client) {
            assert_int_equal(sel_len, strlen(cases[i].expect_client));
            assert_memory_equal(sel, cases[i].expect_client, sel_len);
        } else {
            assert_int_equal(sel_len, 0);
        }
        assert_true(client_echo(&cl, "hello over tls"));
        client_close(&cl);
        SSL_CTX_free(ctx);
    }
    fixture_stop(&f);
}

/* RFC 7301 §3.2: offering only protocols the server does not speak ends the handshake with the
 * no_application_protocol alert, instead of a connection without ALPN. */
static void alpn_without_a_common_protocol_is_refused(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    static const char *const offers[] = {"\x03" "foo", "\x08http/1.0", "\x08spdy/3.1\x03" "foo"};
    for (size_t i = 0; i < sizeof offers / sizeof *offers; i++) {
        struct client_opts o = {.alpn_wire = offers[i], .ca_file = f.cert};
        SSL_CTX *ctx = client_ctx(&o);
        struct client cl;
        assert_false(client_open(&cl, ctx, f.port, NULL));
        if (!has(cl.error, "no application protocol"))
            fail_msg("offer %zu: handshake error '%s'", i, cl.error);
        client_close(&cl);
        SSL_CTX_free(ctx);
    }
    /* the listener carries on: a client offering h2 among unknown names still gets it */
    struct client_opts o = {.alpn_wire = "\x03" "foo\x02h2", .ca_file = f.cert};
    SSL_CTX *ctx = client_ctx(&o);
    struct client cl;
    assert_true(client_open(&cl, ctx, f.port, NULL));
    assert_true(has(cl.greeting, "alpn=h2 "));
    assert_true(client_echo(&cl, "after the refusals"));
    client_close(&cl);
    SSL_CTX_free(ctx);
    fixture_stop(&f);
}

static void tls12_gets_aead_and_legacy_is_refused(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    struct client cl;

    struct client_opts tls12 = {.alpn_wire = "\x02h2", .max_version = TLS1_2_VERSION};
    SSL_CTX *ctx = client_ctx(&tls12);
    assert_true(client_open(&cl, ctx, f.port, NULL));
    assert_true(has(cl.greeting, "v=0303 h2ok=1"));
    assert_true(has(cl.greeting, "cipher=ECDHE-"));
    assert_true(has(cl.greeting, "GCM") || has(cl.greeting, "CHACHA20"));
    client_close(&cl);
    SSL_CTX_free(ctx);

    /* CBC suites are not offered by the server (RFC 9113 §9.2.2 blocklist): no shared cipher. */
    struct client_opts cbc = {.max_version = TLS1_2_VERSION,
                              .ciphers = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA"};
    ctx = client_ctx(&cbc);
    assert_false(client_open(&cl, ctx, f.port, NULL));
    assert_true(has(cl.error, "handshake failure"));
    client_close(&cl);
    SSL_CTX_free(ctx);

    struct client_opts tls11 = {.max_version = TLS1_1_VERSION, .seclevel0 = true,
                                .ciphers = "ALL:@SECLEVEL=0"};
    ctx = client_ctx(&tls11);
    assert_false(client_open(&cl, ctx, f.port, NULL));
    if (!has(cl.error, "protocol version"))
        fail_msg("TLS 1.1 refused for another reason: %s", cl.error);
    client_close(&cl);
    SSL_CTX_free(ctx);

    /* The server is still healthy, and refused handshakes never reached the application. */
    struct client_opts tls13 = {.alpn_wire = "\x02h2"};
    ctx = client_ctx(&tls13);
    assert_true(client_open(&cl, ctx, f.port, NULL));
    assert_true(has(cl.greeting, "v=0304"));
    /* The client offers OpenSSL's default order (AES-256 first); the server's choice is AES-128. */
    assert_true(has(cl.greeting, "cipher=TLS_AES_128_GCM_SHA256"));
    client_close(&cl);
    SSL_CTX_free(ctx);
    assert_int_equal(atomic_load(&f.srv.opened), 2);
    fixture_stop(&f);
}

/* Non-blocking OpenSSL clients echoing len bytes each, all at once, written chunk bytes (at most
 * 16 KiB) per SSL_write, so per TLS record. */
static bool tls_pump(struct client *cls, int n, size_t len, size_t chunk)
{
    size_t sent[8] = {0}, got[8] = {0};
    uint8_t out[16384], in[16384];
    for (int i = 0; i < n; i++)
        fcntl(cls[i].fd, F_SETFL, fcntl(cls[i].fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        bool done = true, buffered = false;
        for (int i = 0; i < n; i++) {
            SSL *s = cls[i].ssl;
            if (sent[i] < len) {
                /* A retried SSL_write gets the same bytes: they depend only on sent[i]. */
                size_t want = len - sent[i] < chunk ? len - sent[i] : chunk;
                for (size_t k = 0; k < want; k++)
                    out[k] = pattern((uint32_t)i + 100, sent[i] + k);
                int w = SSL_write(s, out, (int)want);
                if (w > 0)
                    sent[i] += (size_t)w;
                else if (SSL_get_error(s, w) != SSL_ERROR_WANT_WRITE && SSL_get_error(s, w) != SSL_ERROR_WANT_READ)
                    return false;
            }
            int r = SSL_read(s, in, sizeof in);
            if (r > 0) {
                for (int k = 0; k < r; k++)
                    if (in[k] != pattern((uint32_t)i + 100, got[i] + (size_t)k))
                        return false;
                got[i] += (size_t)r;
            } else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ && SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE) {
                return false;
            }
            if (got[i] < len)
                done = false;
            if (SSL_pending(s) > 0)
                buffered = true;
        }
        if (done)
            return true;
        if (buffered)
            continue;
        struct pollfd p[8];
        for (int i = 0; i < n; i++)
            p[i] = (struct pollfd){.fd = cls[i].fd, .events = (short)(POLLIN | (sent[i] < len ? POLLOUT : 0))};
        if (poll(p, (nfds_t)n, TEST_TIMEOUT_MS) <= 0)
            return false;
    }
}

/* n clients (ALPN h2) of the server at port, each echoing len bytes written chunk bytes at a time
 * (tls_pump); true when every byte came back in order. */
static bool echo_clients(uint16_t port, int n, size_t len, size_t chunk)
{
    struct client_opts o = {.alpn_wire = "\x02h2"};
    SSL_CTX *ctx = client_ctx(&o);
    struct client cls[8];
    for (int i = 0; i < n; i++)
        assert_true(client_open(&cls[i], ctx, port, NULL));
    bool ok = tls_pump(cls, n, len, chunk);
    for (int i = 0; i < n; i++)
        client_close(&cls[i]);
    SSL_CTX_free(ctx);
    return ok;
}

static void echo_large_payloads_over_tls(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    assert_true(echo_clients(f.port, 4, 6u << 20, 16384));
    fixture_stop(&f);
}

/* A handler that pauses after every chunk and resumes on the next turn: bytes OpenSSL already
 * decrypted (a record split by the 64 KiB buffer) produce no socket event, so resuming must
 * pick them up by itself or the connection stalls. */
struct pausing {
    struct tls_server *srv;
    rill_io_timer *resume;
    rill_io_conn *conn;
};

static void pausing_resume(rill_io_timer *t, void *arg)
{
    (void)t;
    struct pausing *p = arg;
    rill_io_conn_pause_read(p->conn, false);
}

static void pausing_open(rill_io_conn *conn, const char *alpn)
{
    srv_open(conn, alpn); /* greeting line; the user pointer is still the server's */
    struct pausing *p = calloc(1, sizeof *p);
    p->srv = rill_io_conn_user(conn);
    p->conn = conn;
    p->resume = rill_io_timer_new(rill_io_conn_loop(conn), pausing_resume, p);
    rill_io_conn_set_user(conn, p);
}

static void pausing_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    struct pausing *p = rill_io_conn_user(conn);
    rill_io_conn_write(conn, data, len);
    rill_io_conn_pause_read(conn, true);
    rill_io_timer_arm(p->resume, 0);
}

static void pausing_close(rill_io_conn *conn, int err)
{
    (void)err;
    struct pausing *p = rill_io_conn_user(conn);
    rill_io_timer_free(p->resume);
    free(p);
}

static const struct rill_io_conn_callbacks pausing_cb = {
    .size = sizeof pausing_cb,
    .on_open = pausing_open, .on_data = pausing_data, .on_close = pausing_close};

static void pause_and_resume_every_read_over_tls(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start_with(&f, NULL, &pausing_cb);
    /* Records of 10007 bytes never line up with the 64 KiB buffer: reads end mid-record. */
    assert_true(echo_clients(f.port, 2, 4u << 20, 10007));
    fixture_stop(&f);
}

/* A connection batching its reads (read_batch.c) takes its ciphertext 256 KiB a recv into the
 * loop's read-ahead and hands OpenSSL a record at a time from there. Two at once on one loop (the
 * read-ahead belongs to one until it is empty; the other reads its socket meanwhile), each pausing
 * after every read with records still in the read-ahead: resuming must deliver them, in order. */
static void batching_open(rill_io_conn *conn, const char *alpn)
{
    pausing_open(conn, alpn);
    rill_io_conn_expect_bytes(conn, 64u << 20);
}

static void batching_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    pausing_data(conn, data, len);
    rill_io_conn_expect_bytes(conn, 64u << 20); /* again after a late batch stopped it */
}

static const struct rill_io_conn_callbacks batching_cb = {
    .size = sizeof batching_cb,
    .on_open = batching_open, .on_data = batching_data, .on_close = pausing_close};

static void batched_reads_over_tls_survive_pauses(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start_with(&f, NULL, &batching_cb);
    assert_true(echo_clients(f.port, 2, 8u << 20, 10007));
    loop_thread_stop(&f.lt);
    assert_non_null(f.lt.loop->tls_in); /* the read-ahead was used */
    rill_io_loop_free(f.lt.loop);
    rill_tls_ctx_free(f.tls);
}

/* Deterministic variant: the server holds reading until 65636 bytes (records of 10007) are all in
 * its socket, so one 64 KiB read ends 100 bytes into the last record and the kernel is empty.
 * Those 100 bytes exist only inside OpenSSL; resuming must deliver them. */
static rill_io_conn *held_conn;

static void held_open(rill_io_conn *conn, const char *alpn)
{
    pausing_open(conn, alpn);
    rill_io_conn_pause_read(conn, true);
    held_conn = conn;
}

/* Resumes once every record is in the server's socket: the client's SSL_write returning only
 * means the bytes left for the network. Re-posting keeps the loop turning until then. */
static void release_held(rill_io_loop *loop, void *arg)
{
    int queued = 0;
    ioctl(held_conn->fd, FIONREAD, &queued);
    if ((size_t)queued < *(size_t *)arg) {
        rill_io_loop_post(loop, release_held, arg);
        return;
    }
    rill_io_conn_pause_read(held_conn, false);
}

static const struct rill_io_conn_callbacks held_cb = {
    .size = sizeof held_cb,
    .on_open = held_open, .on_data = pausing_data, .on_close = pausing_close};

static void bytes_buffered_in_openssl_are_not_stranded(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start_with(&f, NULL, &held_cb);
    /* Room for everything in the server's socket while it holds (accepted sockets inherit it). */
    int big = 1 << 22;
    setsockopt(f.listener->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct client_opts o = {.alpn_wire = "\x02h2"};
    SSL_CTX *ctx = client_ctx(&o);
    struct client cl;
    assert_true(client_open(&cl, ctx, f.port, NULL));
    enum { RECORD = 10007, TOTAL = 65536 + 100 };
    static uint8_t data[TOTAL], back[TOTAL];
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = pattern(3, i);
    for (size_t off = 0; off < TOTAL; off += RECORD) {
        int len = (int)(TOTAL - off < RECORD ? TOTAL - off : RECORD);
        assert_int_equal(SSL_write(cl.ssl, data + off, len), len);
    }
    size_t on_wire = TOTAL + 7 * 22; /* TLS 1.3: 5 header + 1 type + 16 tag bytes per record */
    assert_int_equal(rill_io_loop_post(f.lt.loop, release_held, &on_wire), RILL_OK);
    size_t got = 0;
    while (got < TOTAL) {
        int r = SSL_read(cl.ssl, back + got, (int)(TOTAL - got));
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(back, data, TOTAL);
    client_close(&cl);
    SSL_CTX_free(ctx);
    fixture_stop(&f);
}

/* A half-close over TLS: the client's close_notify is its end, seen once. Its whole stream (65636
 * bytes in records of 10007, close_notify, FIN) waits in the server's socket; the first on_data
 * pauses and resumes at once (as a proxy does when the other side drains within the same turn),
 * and OpenSSL, holding the rest of a record, asks for one more read at the end of the turn
 * (CF_READ_AGAIN). The read going on meanwhile meets the end, kept as a half-close; the read at
 * the end of the turn must not meet it again as a second end that closes the connection (it did:
 * the answer, written after the end, was lost and on_close said RILL_ERR_EOF). */
struct halfclose {
    struct tls_server *srv;
    rill_io_timer *answer;
    rill_io_conn *conn;
    size_t got;
    int ends;
    bool resumed;
};

static atomic_int halfclose_err = 1; /* on_close's err; 1: not closed yet */

static void halfclose_open(rill_io_conn *conn, const char *alpn);

static void halfclose_answer(rill_io_timer *t, void *arg)
{
    (void)t;
    struct halfclose *h = arg;
    char line[64];
    int n = snprintf(line, sizeof line, "got=%zu ends=%d\n", h->got, h->ends);
    rill_io_conn_write(h->conn, line, (size_t)n);
    rill_io_conn_shutdown_write(h->conn);
}

static void halfclose_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    (void)data;
    struct halfclose *h = rill_io_conn_user(conn);
    h->got += len;
    if (!h->resumed) {
        h->resumed = true;
        rill_io_conn_pause_read(conn, true);
        rill_io_conn_pause_read(conn, false);
    }
}

static bool halfclose_peer_eof(rill_io_conn *conn)
{
    struct halfclose *h = rill_io_conn_user(conn);
    h->ends++;
    rill_io_timer_arm(h->answer, 1); /* a later turn: the connection must still be there */
    return true;
}

static void halfclose_close(rill_io_conn *conn, int err)
{
    struct halfclose *h = rill_io_conn_user(conn);
    rill_io_timer_free(h->answer);
    free(h);
    atomic_store(&halfclose_err, err);
}

static const struct rill_io_conn_callbacks halfclose_cb = {
    .size = sizeof halfclose_cb,
    .on_open = halfclose_open, .on_data = halfclose_data, .on_close = halfclose_close,
    .on_peer_eof = halfclose_peer_eof};

static void halfclose_open(rill_io_conn *conn, const char *alpn)
{
    srv_open(conn, alpn); /* greeting line; the user pointer is still the server's */
    struct halfclose *h = calloc(1, sizeof *h);
    h->srv = rill_io_conn_user(conn);
    h->conn = conn;
    h->answer = rill_io_timer_new(rill_io_conn_loop(conn), halfclose_answer, h);
    rill_io_conn_set_user(conn, h);
    rill_io_conn_pause_read(conn, true); /* until everything is in the socket (release_held) */
    held_conn = conn;
}

static void tls_end_is_seen_once_when_a_read_is_owed(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start_with(&f, NULL, &halfclose_cb);
    int big = 1 << 22;
    setsockopt(f.listener->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct client_opts o = {.alpn_wire = "\x02h2"};
    SSL_CTX *ctx = client_ctx(&o);
    struct client cl;
    assert_true(client_open(&cl, ctx, f.port, NULL));
    enum { RECORD = 10007, TOTAL = 65536 + 100 };
    static uint8_t data[TOTAL];
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = pattern(5, i);
    for (size_t off = 0; off < TOTAL; off += RECORD) {
        int len = (int)(TOTAL - off < RECORD ? TOTAL - off : RECORD);
        assert_int_equal(SSL_write(cl.ssl, data + off, len), len);
    }
    assert_int_equal(SSL_shutdown(cl.ssl), 0); /* our close_notify; the server's comes later */
    shutdown(cl.fd, SHUT_WR);
    /* TLS 1.3: 22 bytes around each record; the close_notify alert is a record of 24. */
    size_t on_wire = TOTAL + 7 * 22 + 24;
    assert_int_equal(rill_io_loop_post(f.lt.loop, release_held, &on_wire), RILL_OK);
    char answer[64] = "";
    size_t got = 0;
    int r;
    while ((r = SSL_read(cl.ssl, answer + got, (int)(sizeof answer - 1 - got))) > 0)
        got += (size_t)r;
    assert_int_equal(SSL_get_error(cl.ssl, r), SSL_ERROR_ZERO_RETURN); /* the server's end, in order */
    answer[got] = '\0';
    char want[64];
    snprintf(want, sizeof want, "got=%d ends=1\n", TOTAL);
    assert_string_equal(answer, want);
    for (int i = 0; i < 1000 && atomic_load(&halfclose_err) == 1; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&halfclose_err), 0); /* both ends in order, not RILL_ERR_EOF */
    client_close(&cl);
    SSL_CTX_free(ctx);
    fixture_stop(&f);
}

/* Output made of small copies and larger references: small chunks are coalesced into one TLS
 * record through the staging buffer, and SSL_write retries see the same bytes again. */
static void mixed_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    size_t head = len < 100 ? len : 100;
    rill_io_conn_write(conn, data, head);
    if (len > head) {
        uint8_t *copy = malloc(len - head);
        memcpy(copy, data + head, len - head);
        assert_int_equal(rill_io_conn_write_ref(conn, copy, len - head, free, copy), RILL_OK);
    }
}

static const struct rill_io_conn_callbacks mixed_cb = {.size = sizeof mixed_cb, .on_open = srv_open, .on_data = mixed_data};

static void echo_mixed_copies_and_references_over_tls(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start_with(&f, NULL, &mixed_cb);
    assert_true(echo_clients(f.port, 3, 4u << 20, 700)); /* small records: many small chunks */
    fixture_stop(&f);
}

/* A server that queues 8 MiB at once as small copies and references, towards a client with a
 * tiny receive window: SSL_write keeps hitting WANT_WRITE and must be retried with the same bytes,
 * often rebuilt in the staging buffer. */
#define STREAM_BLOCK (1u << 20)
#define STREAM_TOTAL (8u << 20)

static const uint8_t *stream_block(void)
{
    static uint8_t block[STREAM_BLOCK];
    static bool init;
    if (!init) {
        for (size_t i = 0; i < STREAM_BLOCK; i++)
            block[i] = pattern(9, i);
        init = true;
    }
    return block;
}

static void producer_open(rill_io_conn *conn, const char *alpn)
{
    srv_open(conn, alpn);
    static const size_t sizes[] = {37, 3001, 20000, 5, 700, 16384, 129};
    const uint8_t *block = stream_block();
    size_t off = 0;
    for (int i = 0; off < STREAM_TOTAL; i++) {
        size_t in_block = off % STREAM_BLOCK;
        size_t len = sizes[i % 7];
        if (len > STREAM_BLOCK - in_block)
            len = STREAM_BLOCK - in_block;
        if (i % 2 == 0)
            assert_int_equal(rill_io_conn_write(conn, block + in_block, len), RILL_OK);
        else
            assert_int_equal(rill_io_conn_write_ref(conn, block + in_block, len, NULL, NULL), RILL_OK);
        off += len;
    }
    rill_io_conn_close(conn, true);
}

static const struct rill_io_conn_callbacks producer_cb = {.size = sizeof producer_cb, .on_open = producer_open};

static void blocked_tls_writes_resume_with_the_same_bytes(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start_with(&f, NULL, &producer_cb);
    struct client_opts o = {.alpn_wire = "\x02h2"};
    SSL_CTX *ctx = client_ctx(&o);
    struct client cl = {0};
    cl.fd = tcp_connect_rcvbuf(f.port, 4096);
    assert_true(cl.fd >= 0);
    cl.ssl = SSL_new(ctx);
    SSL_set_fd(cl.ssl, cl.fd);
    assert_int_equal(SSL_connect(cl.ssl), 1);
    char c = 0;
    while (c != '\n') /* greeting */
        assert_int_equal(SSL_read(cl.ssl, &c, 1), 1);
    static uint8_t buf[65536];
    size_t got = 0;
    bool same = true;
    for (;;) {
        int r = SSL_read(cl.ssl, buf, sizeof buf);
        if (r <= 0) {
            assert_int_equal(SSL_get_error(cl.ssl, r), SSL_ERROR_ZERO_RETURN); /* close_notify */
            break;
        }
        for (int k = 0; k < r; k++)
            if (buf[k] != pattern(9, (got + (size_t)k) % STREAM_BLOCK))
                same = false;
        got += (size_t)r;
    }
    assert_true(same);
    assert_int_equal(got, STREAM_TOTAL);
    client_close(&cl);
    SSL_CTX_free(ctx);
    fixture_stop(&f);
}

static void sessions_resume(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (size_t v = 0; v < 2; v++) {
        struct client_opts o = {.alpn_wire = "\x02h2", .max_version = versions[v]};
        SSL_CTX *ctx = client_ctx(&o);
        struct client cl;
        assert_true(client_open(&cl, ctx, f.port, NULL));
        assert_true(has(cl.greeting, "resumed=0"));
        assert_true(client_echo(&cl, "ticket please")); /* TLS 1.3 tickets arrive after the handshake */
        SSL_SESSION *sess = SSL_get1_session(cl.ssl);
        assert_non_null(sess);
        client_close(&cl);
        assert_true(client_open(&cl, ctx, f.port, sess));
        assert_int_equal(SSL_session_reused(cl.ssl), 1);
        assert_true(has(cl.greeting, "resumed=1"));
        client_close(&cl);
        SSL_SESSION_free(sess);
        SSL_CTX_free(ctx);
    }
    fixture_stop(&f);
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void reload_swaps_context_for_new_connections(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    char cert_b[4096], key_b[4096], err[512];
    cert_in("server-b", cert_b, key_b);
    X509 *a = load_cert(f.cert), *b = load_cert(cert_b);
    assert_int_not_equal(X509_cmp(a, b), 0);

    struct client_opts o = {.alpn_wire = "\x02h2"};
    SSL_CTX *ctx = client_ctx(&o);
    struct client old_conn, new_conn;
    assert_true(client_open(&old_conn, ctx, f.port, NULL));
    X509 *peer = SSL_get1_peer_certificate(old_conn.ssl);
    assert_int_equal(X509_cmp(peer, a), 0);
    X509_free(peer);

    assert_int_equal(rill_tls_ctx_generation(f.tls), 1);
    assert_int_equal(rill_tls_ctx_reload(f.tls, cert_b, key_b, err, sizeof err), RILL_OK);
    assert_int_equal(rill_tls_ctx_generation(f.tls), 2);
    assert_true(client_open(&new_conn, ctx, f.port, NULL));
    peer = SSL_get1_peer_certificate(new_conn.ssl);
    assert_int_equal(X509_cmp(peer, b), 0);
    X509_free(peer);
    assert_true(client_echo(&old_conn, "old context still works"));
    assert_true(client_echo(&new_conn, "new context works"));
    client_close(&new_conn);

    /* A failed reload keeps the current context. */
    assert_int_equal(rill_tls_ctx_reload(f.tls, "/nonexistent.pem", key_b, err, sizeof err), RILL_ERR_IO);
    assert_true(has(err, "/nonexistent.pem"));
    assert_int_equal(rill_tls_ctx_generation(f.tls), 2);
    assert_true(client_open(&new_conn, ctx, f.port, NULL));
    peer = SSL_get1_peer_certificate(new_conn.ssl);
    assert_int_equal(X509_cmp(peer, b), 0);
    X509_free(peer);
    client_close(&new_conn);
    client_close(&old_conn);
    X509_free(a);
    X509_free(b);
    SSL_CTX_free(ctx);
    fixture_stop(&f);
}

static void silent_client_times_out_in_handshake(void **state)
{
    (void)state;
    struct fixture f;
    rill_io_loop_options opts = {.size = sizeof opts, .handshake_timeout_ms = 200};
    fixture_start(&f, &opts);
    uint64_t start = rill_io_now_ms();
    int fd = tcp_connect(f.port);
    assert_true(fd >= 0);
    char c;
    assert_int_equal(recv(fd, &c, 1, 0), 0); /* the server gave up and closed */
    assert_true(rill_io_now_ms() - start >= 200);
    close(fd);
    assert_int_equal(atomic_load(&f.srv.opened), 0);
    fixture_stop(&f);
}

/* ---- rill's own TLS client ---------------------------------------------------------------- */

struct rclient {
    rill_io_loop *loop;
    char alpn[16];
    bool opened;
    int closes, close_err;
    char got[256];
    size_t got_len;
};

static void rc_open(rill_io_conn *conn, const char *alpn)
{
    struct rclient *c = rill_io_conn_user(conn);
    c->opened = true;
    snprintf(c->alpn, sizeof c->alpn, "%s", alpn ? alpn : "none");
    rill_io_conn_write(conn, "marco", 5);
}

static void rc_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    struct rclient *c = rill_io_conn_user(conn);
    if (len > sizeof c->got - 1 - c->got_len)
        len = sizeof c->got - 1 - c->got_len;
    memcpy(c->got + c->got_len, data, len);
    c->got_len += len;
    if (has(c->got, "marco"))
        rill_io_conn_close(conn, true);
}

static void rc_close(rill_io_conn *conn, int err)
{
    struct rclient *c = rill_io_conn_user(conn);
    c->closes++;
    c->close_err = err;
    rill_io_loop_stop(c->loop);
}

static const struct rill_io_conn_callbacks rc_cb = {.size = sizeof rc_cb, .on_open = rc_open, .on_data = rc_data, .on_close = rc_close};

static void run_rill_client(struct fixture *f, unsigned flags, const char *ca, const char *name, struct rclient *c)
{
    char err[256];
    rill_tls_ctx *tls;
    assert_int_equal(rill_tls_client_new(flags, ca, &tls, err, sizeof err), RILL_OK);
    assert_false(rill_tls_ctx_is_server(tls));
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    *c = (struct rclient){.loop = loop, .close_err = 1};
    struct rill_io_addr addr;
    char spec[32];
    snprintf(spec, sizeof spec, "127.0.0.1:%u", f->port);
    assert_int_equal(rill_io_addr_parse(spec, &addr, NULL, 0), RILL_OK);
    assert_int_equal(rill_io_connect(loop, &addr, tls, name, &rc_cb, c, NULL), RILL_OK);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    guard_free(&g);
    rill_io_loop_free(loop);
    rill_tls_ctx_free(tls);
}

static void rill_client_verifies_and_negotiates(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    struct rclient c;

    run_rill_client(&f, 0, f.cert, "localhost", &c);
    assert_true(c.opened);
    assert_string_equal(c.alpn, "h2");
    assert_true(has(c.got, "alpn=h2 "));
    assert_true(has(c.got, "marco"));
    assert_int_equal(c.close_err, 0);

    run_rill_client(&f, 0, f.cert, "127.0.0.1", &c); /* IP SAN */
    assert_true(c.opened);

    run_rill_client(&f, RILL_TLS_CLIENT_HTTP11, f.cert, "localhost", &c);
    assert_string_equal(c.alpn, "http/1.1");

    run_rill_client(&f, 0, f.cert, "example.com", &c); /* wrong name: refused */
    assert_false(c.opened);
    assert_int_equal(c.closes, 1);
    assert_int_equal(c.close_err, RILL_ERR_TLS);

    run_rill_client(&f, RILL_TLS_CLIENT_NO_VERIFY, NULL, "example.com", &c);
    assert_true(c.opened);
    assert_int_equal(c.close_err, 0);
    fixture_stop(&f);
}

/* ---- the system's CA store ---------------------------------------------------------------- */

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

/* The hashed directory stands alone only for the system's own bundle and directory (an
 * environment variable naming them through a link counts as naming them); anything else is
 * OpenSSL's default paths (NULL). */
static void system_store_is_the_hashed_directory_only_for_the_systems_own(void **state)
{
    (void)state;
    make_tmp_root();
    char dir[128], plain[128], bundle[128], alias[128], other[128], name[160];
    snprintf(dir, sizeof dir, "%s/store-certs", tmp_root);
    snprintf(plain, sizeof plain, "%s/store-plain", tmp_root);
    snprintf(bundle, sizeof bundle, "%s/store-bundle.pem", tmp_root);
    snprintf(alias, sizeof alias, "%s/store-alias.pem", tmp_root);
    snprintf(other, sizeof other, "%s/store-other.pem", tmp_root);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(plain, 0700), 0);
    snprintf(name, sizeof name, "%s/ca.pem", dir);
    touch(name);
    snprintf(name, sizeof name, "%s/ca.pem", plain);
    touch(name);
    touch(bundle);
    touch(other);
    assert_int_equal(symlink(bundle, alias), 0);

    assert_null(tls_store_dir(NULL, NULL, bundle, dir)); /* no hash link yet */
    snprintf(name, sizeof name, "%s/0a1b2c3d.0", dir);
    touch(name);
    assert_ptr_equal(tls_store_dir(NULL, NULL, bundle, dir), dir);
    assert_ptr_equal(tls_store_dir(alias, NULL, bundle, dir), dir);
    assert_ptr_equal(tls_store_dir(bundle, dir, bundle, dir), dir);
    assert_null(tls_store_dir(other, NULL, bundle, dir));
    assert_null(tls_store_dir(NULL, plain, bundle, dir));
    assert_null(tls_store_dir(NULL, NULL, bundle, plain));
    assert_null(tls_store_dir("/nonexistent/cert.pem", NULL, bundle, dir));
    assert_null(tls_store_dir(NULL, NULL, bundle, "/nonexistent/certs"));
}

static int remove_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return tmp_root[0] ? system(cmd) : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(self_signed_is_generated_then_reused),
        cmocka_unit_test(default_state_dir_follows_xdg),
        cmocka_unit_test(bad_files_give_one_line_errors),
        cmocka_unit_test(alpn_prefers_h2_and_falls_back),
        cmocka_unit_test(alpn_without_a_common_protocol_is_refused),
        cmocka_unit_test(tls12_gets_aead_and_legacy_is_refused),
        cmocka_unit_test(echo_large_payloads_over_tls),
        cmocka_unit_test(pause_and_resume_every_read_over_tls),
        cmocka_unit_test(batched_reads_over_tls_survive_pauses),
        cmocka_unit_test(bytes_buffered_in_openssl_are_not_stranded),
        cmocka_unit_test(tls_end_is_seen_once_when_a_read_is_owed),
        cmocka_unit_test(echo_mixed_copies_and_references_over_tls),
        cmocka_unit_test(blocked_tls_writes_resume_with_the_same_bytes),
        cmocka_unit_test(sessions_resume),
        cmocka_unit_test(reload_swaps_context_for_new_connections),
        cmocka_unit_test(silent_client_times_out_in_handshake),
        cmocka_unit_test(rill_client_verifies_and_negotiates),
        cmocka_unit_test(system_store_is_the_hashed_directory_only_for_the_systems_own),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_tree();
    return rc;
}
