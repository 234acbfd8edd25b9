/* The WebSocket client: connection, HTTP/2 or HTTP/1.1 handshake, then the rill/ws.h codec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/api_struct.h"
#include "rill/client.h"
#include "rill/h1.h"
#include "rill/h2.h"
#include "rill/tls.h"
#include "rill/ws.h"

enum mode { MODE_H2, MODE_H1 };

struct rill_websocket_client {
    rill_io_loop *loop;
    rill_websocket_client_callbacks cb;
    void *user;
    rill_websocket_client_options opt;
    char *url, *origin, *subprotocol, *ca_file;
    char host[256], authority[300], path[2048];
    bool tls;
    enum mode mode;
    rill_tls_ctx *tls_ctx;
    rill_io_conn *conn;
    rill_h2_session *h2;
    int32_t stream;
    bool got_settings;
    rill_h1_parser *h1;
    char key[RILL_WS_KEY_LEN + 1];
    char offer[160];
    rill_ws *codec;
    bool open, compressed, reconnecting, finished, end_sent;
    char why[512];
};

static const struct rill_io_conn_callbacks conn_callbacks;

static void finish(rill_websocket_client *c, unsigned code, const char *why)
{
    if (c->finished)
        return;
    c->finished = true;
    if (c->cb.on_close)
        c->cb.on_close(c, code, why, c->user);
}

static int parse_url(rill_websocket_client *c, const char *url, char *err, size_t errlen)
{
    const char *rest;
    if (strncmp(url, "ws://", 5) == 0) {
        rest = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        rest = url + 6;
        c->tls = true;
    } else {
        snprintf(err, errlen, "the URL must start with ws:// or wss://: %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    size_t alen = strcspn(rest, "/?#");
    if (alen == 0 || alen >= sizeof c->host) {
        snprintf(err, errlen, "no host in %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    memcpy(c->authority, rest, alen);
    c->authority[alen] = '\0';
    const char *path = rest + alen;
    int plen = snprintf(c->path, sizeof c->path, "%s%s", path[0] == '/' ? "" : "/", path);
    if (plen < 0 || (size_t)plen >= sizeof c->path) { /* never a silently shortened path */
        snprintf(err, errlen, "the URL's path is longer than %zu bytes", sizeof c->path - 1);
        return RILL_ERR_INVALID_ARG;
    }
    /* host without the port (brackets kept off for SNI) */
    const char *a = c->authority;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        size_t n = close ? (size_t)(close - a - 1) : 0;
        memcpy(c->host, a + 1, n);
        c->host[n] = '\0';
        if (!close || (close[1] && close[1] != ':')) {
            snprintf(err, errlen, "bad host in %s", url);
            return RILL_ERR_INVALID_ARG;
        }
        if (!close[1])
            snprintf(c->authority + alen, sizeof c->authority - alen, ":%d", c->tls ? 443 : 80);
    } else {
        const char *colon = strrchr(a, ':');
        size_t n = colon ? (size_t)(colon - a) : strlen(a);
        memcpy(c->host, a, n);
        c->host[n] = '\0';
        if (!colon)
            snprintf(c->authority + alen, sizeof c->authority - alen, ":%d", c->tls ? 443 : 80);
    }
    return RILL_OK;
}

/* ---- output ------------------------------------------------------------------------------------ */

static void flush(rill_websocket_client *c)
{
    if (!c->conn)
        return;
    if (c->codec) {
        const uint8_t *p;
        size_t n;
        while ((n = rill_ws_output(c->codec, &p)) > 0) {
            if (c->h2) {
                uint8_t *copy = malloc(n);
                if (!copy)
                    break;
                memcpy(copy, p, n);
                if (rill_h2_submit_data(c->h2, c->stream, copy, n, 0, copy) < 0)
                    free(copy);
            } else {
                rill_io_conn_write(c->conn, p, n);
            }
            rill_ws_output_sent(c->codec, n);
        }
        if (rill_ws_is_done(c->codec) && c->h2 && !c->end_sent) {
            c->end_sent = true; /* END_STREAM: our orderly close */
            rill_h2_submit_data(c->h2, c->stream, NULL, 0, RILL_H2_FLAG_END_STREAM, NULL);
        }
    }
    if (c->h2) {
        struct iovec iov[16];
        int n;
        while ((n = rill_h2_session_output(c->h2, iov, 16)) > 0) {
            size_t total = 0;
            for (int i = 0; i < n; i++)
                total += iov[i].iov_len;
            rill_io_conn_writev(c->conn, iov, n);
            rill_h2_session_output_sent(c->h2, total);
        }
    }
    if (c->codec && rill_ws_is_done(c->codec) && !c->h2)
        rill_io_conn_close(c->conn, true);
}

/* ---- the codec --------------------------------------------------------------------------------- */

static int on_ws_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    rill_websocket_client *c = user;
    (void)flags;
    if (c->cb.on_message)
        c->cb.on_message(c, opcode, data, len, c->user);
    return 0;
}

static int start_codec(rill_websocket_client *c, const char *ext_response, size_t ext_len)
{
    rill_ws_pmd_params pmd;
    int rc = RILL_ERR_NOT_FOUND;
    if (!c->opt.no_deflate) {
        rill_ws_pmd_policy policy = {0};
        rc = rill_ws_pmd_client_accept(ext_response, ext_len, &policy, &pmd);
        if (rc == RILL_ERR_PROTOCOL)
            return rc;
    } else if (ext_response && ext_len) {
        return RILL_ERR_PROTOCOL; /* an extension we did not offer */
    }
    c->compressed = rc == RILL_OK;
    rill_ws_options opt;
    rill_ws_options_init(&opt);
    opt.pmd = c->compressed ? &pmd : NULL;
    static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = on_ws_message};
    c->codec = rill_ws_new(RILL_WS_CLIENT, &opt, &cb, c);
    if (!c->codec)
        return RILL_ERR_NOMEM;
    c->open = true;
    if (c->cb.on_open)
        c->cb.on_open(c, c->h2 ? "h2" : "HTTP/1.1", c->compressed, c->user);
    return RILL_OK;
}

/* ---- HTTP/1.1 ---------------------------------------------------------------------------------- */

/* A header field from two NUL-terminated strings. */
static rill_header h1_field(const char *name, const char *value)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value),
                         0};
}

static void h1_send_upgrade(rill_websocket_client *c)
{
    rill_ws_make_key(c->key);
    rill_header f[8];
    size_t n = 0;
    f[n++] = h1_field("Host", c->authority);
    f[n++] = h1_field("Upgrade", "websocket");
    f[n++] = h1_field("Connection", "Upgrade");
    f[n++] = h1_field("Sec-WebSocket-Key", c->key);
    f[n++] = h1_field("Sec-WebSocket-Version", "13");
    if (!c->opt.no_deflate)
        f[n++] = h1_field("Sec-WebSocket-Extensions", c->offer);
    if (c->origin)
        f[n++] = h1_field("Origin", c->origin);
    if (c->subprotocol)
        f[n++] = h1_field("Sec-WebSocket-Protocol", c->subprotocol);
    /* sized to the request: a long path or subprotocol list must not fail silently */
    size_t need = strlen(c->path) + 32;
    for (size_t i = 0; i < n; i++)
        need += f[i].name_len + f[i].value_len + 4;
    uint8_t small[2048];
    uint8_t *buf = need <= sizeof small ? small : malloc(need);
    size_t len;
    int rc = buf ? rill_h1_write_request_head(buf, need, &len, "GET", 3, c->path, strlen(c->path), f, n)
                 : RILL_ERR_NOMEM;
    if (rc == RILL_OK)
        rc = rill_io_conn_write(c->conn, buf, len);
    if (buf != small)
        free(buf);
    if (rc < 0) {
        snprintf(c->why, sizeof c->why, "cannot send the WebSocket request: %s", rill_strerror(rc));
        rill_io_conn_close(c->conn, false);
        return;
    }
    c->h1 = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
}

static void h1_data(rill_websocket_client *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off <= len && c->h1) {
        size_t used = 0;
        rill_h1_event ev;
        if (rill_h1_parse(c->h1, data + off, len - off, &used, &ev) < 0) {
            snprintf(c->why, sizeof c->why, "bad HTTP response: %s",
                     rill_h1_error_text(rill_h1_parser_error(c->h1)));
            rill_io_conn_close(c->conn, false);
            return;
        }
        off += used;
        if (ev.type == RILL_H1_EV_NONE)
            return;
        if (ev.type == RILL_H1_EV_HEAD && (ev.head->status == 101 || ev.head->status >= 200)) {
            if (!rill_h1_websocket_response_ok(ev.head, c->key, strlen(c->key))) {
                snprintf(c->why, sizeof c->why, "the server refused the WebSocket: HTTP %d",
                         ev.head->status);
                rill_io_conn_close(c->conn, false);
                return;
            }
            size_t pos = 0;
            const rill_header *ext =
                rill_h1_find_field(ev.head->fields, ev.head->nfields, "sec-websocket-extensions", &pos);
            if (start_codec(c, ext ? (const char *)ext->value : NULL, ext ? ext->value_len : 0) < 0) {
                snprintf(c->why, sizeof c->why, "bad Sec-WebSocket-Extensions in the response");
                rill_io_conn_close(c->conn, false);
                return;
            }
        }
        if (ev.type == RILL_H1_EV_END && ev.upgraded) {
            rill_h1_parser_free(c->h1);
            c->h1 = NULL;
            if (off < len)
                rill_ws_recv(c->codec, data + off, len - off);
            flush(c);
            return;
        }
    }
}

/* ---- HTTP/2 ------------------------------------------------------------------------------------ */

static void fall_back_to_h1(rill_websocket_client *c)
{
    c->reconnecting = true;
    rill_io_conn_close(c->conn, false);
}

static int h2_on_settings(rill_h2_session *s, const rill_h2_settings *peer, void *user)
{
    rill_websocket_client *c = user;
    if (c->got_settings)
        return 0;
    c->got_settings = true;
    if (!peer->enable_connect_protocol) {
        fall_back_to_h1(c);
        return 0;
    }
    const char *scheme = c->tls ? "https" : "http";
    rill_header f[8];
    size_t n = 0;
#define FIELD(name, value) f[n++] = (rill_header){(const uint8_t *)(name), strlen(name), (const uint8_t *)(value), strlen(value), 0}
    FIELD(":method", "CONNECT");
    FIELD(":protocol", "websocket");
    FIELD(":scheme", scheme);
    FIELD(":path", c->path);
    FIELD(":authority", c->authority);
    FIELD("sec-websocket-version", "13");
    if (!c->opt.no_deflate)
        FIELD("sec-websocket-extensions", c->offer);
    if (c->origin)
        FIELD("origin", c->origin);
#undef FIELD
    if (c->subprotocol)
        f[n++] = (rill_header){(const uint8_t *)"sec-websocket-protocol", 22,
                               (const uint8_t *)c->subprotocol, strlen(c->subprotocol), 0};
    c->stream = rill_h2_submit_request(s, f, n, 0, NULL);
    if (c->stream < 0)
        fall_back_to_h1(c);
    return 0;
}

static int h2_on_headers(rill_h2_session *s, int32_t id, enum rill_h2_headers_kind kind,
                         const rill_header *f, size_t n, uint32_t flags, void *user)
{
    rill_websocket_client *c = user;
    if (id != c->stream || kind != RILL_H2_HEADERS_RESPONSE)
        return 0;
    const char *ext = NULL;
    size_t ext_len = 0;
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].name_len == 7 && memcmp(f[i].name, ":status", 7) == 0)
            status = atoi((const char *)f[i].value); /* HPACK values are NUL-free digits here */
        else if (f[i].name_len == 24 && memcmp(f[i].name, "sec-websocket-extensions", 24) == 0) {
            ext = (const char *)f[i].value;
            ext_len = f[i].value_len;
        }
    }
    if (status < 200 || status > 299) {
        snprintf(c->why, sizeof c->why, "the server refused the WebSocket: HTTP %d", status);
        rill_h2_submit_goaway(s, RILL_H2_NO_ERROR, NULL, 0);
        rill_io_conn_close(c->conn, true);
        return 0;
    }
    if (start_codec(c, ext, ext_len) < 0) {
        snprintf(c->why, sizeof c->why, "bad sec-websocket-extensions in the response");
        rill_h2_submit_rst_stream(s, id, RILL_H2_CANCEL);
    }
    return 0;
}

static int h2_on_data(rill_h2_session *s, int32_t id, const uint8_t *data, size_t len, void *user)
{
    rill_websocket_client *c = user;
    if (id == c->stream && c->codec)
        rill_ws_recv(c->codec, data, len);
    rill_h2_consume(s, id, len);
    return 0;
}

static int h2_on_end_stream(rill_h2_session *s, int32_t id, void *user)
{
    rill_websocket_client *c = user;
    if (id == c->stream && c->codec) {
        unsigned code = rill_ws_transport_closed(c->codec);
        flush(c);
        rill_h2_submit_goaway(s, RILL_H2_NO_ERROR, NULL, 0);
        flush(c);
        rill_io_conn_close(c->conn, true);
        finish(c, code, NULL);
    }
    return 0;
}

static int h2_on_stream_close(rill_h2_session *s, int32_t id, uint32_t code, void *user)
{
    rill_websocket_client *c = user;
    if (id == c->stream && code != RILL_H2_NO_ERROR && !c->finished) {
        snprintf(c->why, sizeof c->why, "the stream was reset: %s", rill_h2_error_name(code));
        rill_io_conn_close(c->conn, false);
    }
    return 0;
}

static void h2_on_released(rill_h2_session *s, int32_t id, void *token, void *user)
{
    free(token);
}

static const rill_h2_callbacks h2_callbacks = {
    .size = sizeof h2_callbacks,
    .on_headers = h2_on_headers,
    .on_data = h2_on_data,
    .on_end_stream = h2_on_end_stream,
    .on_stream_close = h2_on_stream_close,
    .on_settings = h2_on_settings,
    .on_data_released = h2_on_released,
};

/* ---- the connection ---------------------------------------------------------------------------- */

static int connect_now(rill_websocket_client *c, char *err, size_t errlen)
{
    struct rill_io_addr addr;
    char spec[320];
    snprintf(spec, sizeof spec, "%s", c->authority);
    if (rill_io_addr_parse(spec, &addr, err, errlen) < 0)
        return RILL_ERR_INVALID_ARG;
    if (c->tls) {
        if (c->tls_ctx)
            rill_tls_ctx_free(c->tls_ctx);
        c->tls_ctx = NULL;
        unsigned flags = (c->opt.insecure ? RILL_TLS_CLIENT_NO_VERIFY : 0) |
                         (c->mode == MODE_H1 ? RILL_TLS_CLIENT_HTTP11 : 0);
        int rc = rill_tls_client_new(flags, c->ca_file, &c->tls_ctx, err, errlen);
        if (rc < 0)
            return rc;
    }
    c->got_settings = false;
    c->end_sent = false;
    return rill_io_connect(c->loop, &addr, c->tls_ctx, c->host, &conn_callbacks, c, &c->conn);
}

static void on_open(rill_io_conn *conn, const char *alpn)
{
    rill_websocket_client *c = rill_io_conn_user(conn);
    if (!c) /* freed by the application */
        return;
    if (c->mode == MODE_H2 && (!c->tls || (alpn && strcmp(alpn, "h2") == 0))) {
        rill_h2_options o;
        rill_h2_options_init(&o, RILL_H2_CLIENT);
        o.local.enable_push = 0;
        o.now_ms = rill_io_loop_now_ms(c->loop);
        c->h2 = rill_h2_session_new(RILL_H2_CLIENT, &o, &h2_callbacks, c);
        if (!c->h2) {
            rill_io_conn_close(conn, false);
            return;
        }
    } else {
        c->mode = MODE_H1; /* the server chose http/1.1 by ALPN */
        h1_send_upgrade(c);
    }
    flush(c);
}

static void on_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    rill_websocket_client *c = rill_io_conn_user(conn);
    if (!c) /* freed by the application */
        return;
    if (c->h2) {
        if (rill_h2_session_recv(c->h2, data, len) < 0 && !c->got_settings) {
            fall_back_to_h1(c); /* not an HTTP/2 server (no prior knowledge on ws://) */
            return;
        }
    } else if (c->h1) {
        h1_data(c, data, len);
    } else if (c->codec) {
        rill_ws_recv(c->codec, data, len);
    }
    flush(c);
}

static void on_close(rill_io_conn *conn, int err)
{
    rill_websocket_client *c = rill_io_conn_user(conn);
    if (!c) /* freed by the application */
        return;
    c->conn = NULL;
    if (c->h2) {
        rill_h2_session_free(c->h2);
        c->h2 = NULL;
    }
    if (c->h1) {
        rill_h1_parser_free(c->h1);
        c->h1 = NULL;
    }
    if (c->reconnecting && !c->finished) {
        c->reconnecting = false;
        c->mode = MODE_H1;
        char why[512];
        if (connect_now(c, why, sizeof why) < 0)
            finish(c, RILL_WS_CLOSE_ABNORMAL, why);
        return;
    }
    if (c->codec) {
        finish(c, rill_ws_transport_closed(c->codec), c->why[0] ? c->why : NULL);
        return;
    }
    if (!c->why[0])
        snprintf(c->why, sizeof c->why, "connection to %s failed: %s", c->authority,
                 err == RILL_ERR_TLS ? "TLS handshake failed" : rill_strerror(err ? err : RILL_ERR_EOF));
    finish(c, RILL_WS_CLOSE_ABNORMAL, c->why);
}

static const struct rill_io_conn_callbacks conn_callbacks = {
    .size = sizeof conn_callbacks,
    .on_open = on_open,
    .on_data = on_data,
    .on_close = on_close,
};

/* ---- API --------------------------------------------------------------------------------------- */

void rill_websocket_client_options_init(rill_websocket_client_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

int rill_websocket_client_new(rill_io_loop *loop, const rill_websocket_client_options *opt,
                       const rill_websocket_client_callbacks *cb, void *user, rill_websocket_client **out,
                       char *err, size_t errlen)
{
    rill_websocket_client_options o;
    rill_websocket_client_options_init(&o);
    rill_websocket_client_callbacks k = {.size = sizeof k};
    if (!opt || !cb || rill_struct_copy(&o, sizeof o, opt) != RILL_OK ||
        rill_struct_copy(&k, sizeof k, cb) != RILL_OK) {
        if (err && errlen)
            snprintf(err, errlen, "bad options or callbacks (their size field)");
        return RILL_ERR_INVALID_ARG;
    }
    opt = &o;
    rill_websocket_client *c = calloc(1, sizeof *c);
    if (!c)
        return RILL_ERR_NOMEM;
    c->loop = loop;
    c->cb = k;
    c->user = user;
    c->opt = o;
    c->origin = dup_opt(opt->origin);
    c->subprotocol = dup_opt(opt->subprotocol);
    c->ca_file = dup_opt(opt->ca_file);
    c->mode = opt->force_http1 ? MODE_H1 : MODE_H2;
    int rc = parse_url(c, opt->url, err, errlen);
    if (rc == RILL_OK) {
        rill_ws_pmd_policy policy = {0};
        rill_ws_pmd_client_offer(&policy, c->offer, sizeof c->offer);
        rc = connect_now(c, err, errlen);
    }
    if (rc < 0) {
        rill_websocket_client_free(c);
        return rc;
    }
    *out = c;
    return RILL_OK;
}

int rill_websocket_client_send(rill_websocket_client *c, unsigned opcode, const void *data, size_t len)
{
    if (!c->open || c->finished)
        return RILL_ERR_STATE;
    int rc = rill_ws_send(c->codec, opcode, data, len);
    flush(c);
    return rc;
}

int rill_websocket_client_close(rill_websocket_client *c, unsigned code, const char *reason)
{
    if (!c->open || c->finished)
        return RILL_ERR_STATE;
    int rc = rill_ws_close(c->codec, code, reason, reason ? strlen(reason) : 0);
    flush(c);
    return rc;
}

void rill_websocket_client_free(rill_websocket_client *c)
{
    if (!c)
        return;
    c->finished = true;
    if (c->conn) {
        rill_io_conn_set_user(c->conn, NULL);
        rill_io_conn_close(c->conn, false);
    }
    rill_h2_session_free(c->h2);
    rill_h1_parser_free(c->h1);
    rill_ws_free(c->codec);
    if (c->tls_ctx)
        rill_tls_ctx_free(c->tls_ctx);
    free(c->origin);
    free(c->subprotocol);
    free(c->ca_file);
    free(c);
}
