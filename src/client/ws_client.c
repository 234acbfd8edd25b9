/* The WebSocket client: the URL, names resolved on the loop (client_dns.h) and the addresses
 * raced (Happy Eyeballs, client_race.h, as the request client does), the connection (a `struct conn` of src/conn running wsc_h2_proto or wsc_h1_proto,
 * ws_client_h2.c / ws_client_h1.c), the codec once the handshake succeeded, and the API. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "client/client_race.h"
#include "client/ws_client_internal.h"
#include "common/api_struct.h"

/* A WebSocket may stay quiet for as long as its ends like: the connection layer's idle close is
 * pushed out of reach (about 49 days) and only trims an idle connection's buffers. */
#define WSC_IDLE_MS UINT32_MAX
/* TCP (every address raced) and TLS, as the request client's default connect timeout. */
#define WSC_CONNECT_TIMEOUT_MS 10000u
/* RFC 8305's recommended Connection Attempt Delay, as the request client's default. */
#define WSC_ATTEMPT_DELAY_MS 250u

static const struct rill_io_conn_callbacks conn_callbacks;

void wsc_finish(rill_websocket_client *c, unsigned code, const char *why)
{
    if (c->finished)
        return;
    c->finished = true;
    if (c->cb.on_close)
        c->cb.on_close(c, code, why, c->user); /* may free c: nothing follows */
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
    /* host without the port (brackets kept off for SNI and the resolver) */
    const char *a = c->authority, *port = NULL;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        size_t n = close ? (size_t)(close - a - 1) : 0;
        memcpy(c->host, a + 1, n);
        c->host[n] = '\0';
        if (!close || (close[1] && close[1] != ':')) {
            snprintf(err, errlen, "bad host in %s", url);
            return RILL_ERR_INVALID_ARG;
        }
        if (close[1])
            port = close + 2;
    } else {
        const char *colon = strrchr(a, ':');
        size_t n = colon ? (size_t)(colon - a) : strlen(a);
        memcpy(c->host, a, n);
        c->host[n] = '\0';
        if (colon)
            port = colon + 1;
    }
    if (!port) {
        c->port = c->tls ? 443 : 80;
        snprintf(c->authority + alen, sizeof c->authority - alen, ":%u", c->port);
    } else {
        unsigned long v = 0;
        size_t digits = strspn(port, "0123456789");
        if (digits >= 1 && digits <= 5 && !port[digits])
            v = strtoul(port, NULL, 10);
        if (v == 0 || v > 65535) {
            snprintf(err, errlen, "bad port in %s", url);
            return RILL_ERR_INVALID_ARG;
        }
        c->port = (uint16_t)v;
    }
    if (!c->host[0]) {
        snprintf(err, errlen, "no host in %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    return RILL_OK;
}

/* ---- shared with the protocols ------------------------------------------------------------- */

static int on_ws_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    rill_websocket_client *c = user;
    (void)flags;
    if (c->cb.on_message && !c->finished)
        c->cb.on_message(c, opcode, data, len, c->user);
    return 0;
}

int wsc_start_codec(rill_websocket_client *c, const char *ext, size_t ext_len)
{
    rill_ws_pmd_params pmd;
    int rc = RILL_ERR_NOT_FOUND;
    if (!c->opt.no_deflate) {
        rill_ws_pmd_policy policy = {0};
        rc = rill_ws_pmd_client_accept(ext, ext_len, &policy, &pmd);
        if (rc == RILL_ERR_PROTOCOL)
            return rc;
    } else if (ext && ext_len) {
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
        c->cb.on_open(c, c->h2 || c->st ? "h2" : "HTTP/1.1", c->compressed, c->user);
    return RILL_OK;
}

void wsc_fail(rill_websocket_client *c, const char *fmt, ...)
{
    if (!c->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        va_end(ap);
    }
    if (c->conn) {
        rill_io_conn_want_output(c->conn->c.io); /* a GOAWAY or RST_STREAM the engine queued */
        conn_close(&c->conn->c);
    }
}

void wsc_fall_back_to_h1(rill_websocket_client *c)
{
    c->reconnecting = true;
    if (c->conn)
        conn_close(&c->conn->c); /* on_close connects again */
}

/* Tells the connection the codec has output (after an API call, outside the loop's callbacks). */
static void output_ready(rill_websocket_client *c)
{
    if (c->st) {
        client_ws_output_ready(c);
        return;
    }
    if (!c->conn)
        return;
    if (c->h2)
        wsc_h2_output_ready(c);
    conn_flush(&c->conn->c);
}

/* ---- the connection ------------------------------------------------------------------------ */

static int make_tls(rill_websocket_client *c, char *err, size_t errlen)
{
    if (!c->tls)
        return RILL_OK;
    if (c->tls_ctx)
        rill_tls_ctx_free(c->tls_ctx);
    c->tls_ctx = NULL;
    unsigned flags = (c->opt.insecure ? RILL_TLS_CLIENT_NO_VERIFY : 0) |
                     (c->mode == WSC_H1 ? RILL_TLS_CLIENT_HTTP11 : 0);
    return rill_tls_client_new(flags, c->ca_file, &c->tls_ctx, err, errlen);
}

static void race_trace(const char *line, void *user)
{
    rill_websocket_client *c = user;
    if (c->trace)
        c->trace(c, line, c->trace_user);
}

static void on_race_won(rill_io_conn *io, const struct rill_io_addr *addr, void *user);
static void on_race_lost(int err, const char *why, void *user);

/* A race for a new connection (and the connection it will be), with no address yet; the connect
 * deadline starts. RILL_ERR_NOMEM. */
static int race_begin(rill_websocket_client *c)
{
    struct client_race_target t = {
        .loop = c->loop,
        .tls = c->tls ? c->tls_ctx : NULL,
        .sni = c->host,
        .authority = c->authority,
        .attempt_delay_ms = c->opt.attempt_delay_ms,
        .first = &c->last_addr,
        .trace = race_trace,
        .trace_user = c,
    };
    struct wsc_conn *wc = calloc(1, sizeof *wc);
    struct client_race *r = wc ? client_race_new(&t, on_race_won, on_race_lost, c) : NULL;
    if (!r) {
        free(wc);
        return RILL_ERR_NOMEM;
    }
    wc->ws = c;
    c->race = r;
    c->next_conn = wc;
    c->connect_timed_out = false;
    rill_io_timer_arm(c->connect_timer, WSC_CONNECT_TIMEOUT_MS);
    return RILL_OK;
}

/* The race goes (its attempts closed, no callback). */
static void race_end(rill_websocket_client *c)
{
    client_race_free(c->race);
    c->race = NULL;
    free(c->next_conn);
    c->next_conn = NULL;
}

/* A TCP connect won: the connection is ours from now on (with TLS its handshake begins, still
 * under the connect deadline; on_open follows either way). */
static void on_race_won(rill_io_conn *io, const struct rill_io_addr *addr, void *user)
{
    rill_websocket_client *c = user;
    c->last_addr = *addr; /* before the race goes: addr is its */
    struct wsc_conn *wc = c->next_conn;
    c->next_conn = NULL;
    race_end(c);
    client_dns_cancel(c->dns); /* a late answer's addresses are not needed */
    rill_io_conn_set_callbacks(io, &conn_callbacks);
    rill_io_conn_set_user(io, wc);
    conn_init(&wc->c, io, WSC_IDLE_MS);
    c->conn = wc;
    c->why[0] = '\0';
    c->got_settings = false;
    c->stream = 0;
}

/* Every address failed: the WebSocket ends with the last attempt's error. */
static void on_race_lost(int err, const char *why, void *user)
{
    (void)err;
    rill_websocket_client *c = user;
    char copy[400]; /* why is the race's */
    snprintf(copy, sizeof copy, "%s", why);
    race_end(c);
    rill_io_timer_cancel(c->connect_timer);
    wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, copy);
}

/* Addresses as they come (the IPv6 answer, or the IPv4 one after the Resolution Delay, then the
 * other): the race starts with the first of them and takes the later ones, as the request
 * client's connections do. */
static void on_resolved(int err, const char *why, const struct rill_io_addr *addrs, size_t n,
                        bool final, void *user)
{
    rill_websocket_client *c = user;
    if (err) {
        race_end(c);
        rill_io_timer_cancel(c->connect_timer);
        wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, why);
        return;
    }
    if (!c->race && race_begin(c) < 0) {
        client_dns_cancel(c->dns);
        wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, "out of memory");
        return;
    }
    client_race_add(c->race, addrs, n, final); /* a loss comes later, from the loop */
}

static void on_connect_timeout(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_websocket_client *c = arg;
    if (c->race) { /* no attempt answered in time */
        char why[400];
        snprintf(why, sizeof why, "connecting to %s timed out after %u ms", c->authority,
                 WSC_CONNECT_TIMEOUT_MS);
        race_end(c);
        client_dns_cancel(c->dns);
        race_trace(why, c);
        wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, why);
    } else if (c->conn && !c->conn->opened) { /* the TLS handshake */
        c->connect_timed_out = true;
        rill_io_conn_close(c->conn->c.io, false); /* on_close now */
    }
}

static void on_open(rill_io_conn *io, const char *alpn)
{
    struct wsc_conn *wc = rill_io_conn_user(io);
    rill_websocket_client *c = wc->ws;
    wc->opened = true;
    rill_io_timer_cancel(c->connect_timer);
    bool h2 = c->mode == WSC_H2 && (!c->tls || (alpn && strcmp(alpn, "h2") == 0));
    if (!h2)
        c->mode = WSC_H1; /* the server chose http/1.1 by ALPN */
    int rc = h2 ? wsc_h2_start(c) : wsc_h1_start(c);
    if (rc < 0) {
        snprintf(c->why, sizeof c->why, "cannot start the WebSocket handshake: %s", rill_strerror(rc));
        rill_io_conn_close(io, false); /* on_close now: nothing of ours runs around it */
        return;
    }
    conn_touch(&wc->c);
    conn_flush(&wc->c);
}

static void on_close(rill_io_conn *io, int err)
{
    struct wsc_conn *wc = rill_io_conn_user(io);
    rill_websocket_client *c = wc->ws;
    conn_io_closed(&wc->c); /* the protocol's state goes */
    bool opened = wc->opened;
    free(wc);
    c->conn = NULL;
    rill_io_timer_cancel(c->connect_timer);
    if (c->freeing || c->finished)
        return;
    char why[sizeof c->why];
    if (!opened && c->connect_timed_out)
        snprintf(c->why, sizeof c->why, "connecting to %s timed out after %u ms", c->authority,
                 WSC_CONNECT_TIMEOUT_MS);
    /* A TCP connect won but the connection did not open (TLS failed): the next address would most
     * likely fail the same way, so it is the error (as for the request client). */
    if (c->reconnecting) { /* the HTTP/1.1 Upgrade, to the address that answered */
        c->reconnecting = false;
        c->mode = WSC_H1;
        int rc = make_tls(c, why, sizeof why);
        if (rc == RILL_OK && (rc = race_begin(c)) == RILL_OK) {
            client_race_add(c->race, &c->last_addr, 1, true);
            return;
        }
        if (rc == RILL_ERR_NOMEM)
            snprintf(why, sizeof why, "out of memory");
        wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, why);
        return;
    }
    if (c->codec) {
        unsigned code = c->ended ? c->end_code : rill_ws_transport_closed(c->codec);
        snprintf(why, sizeof why, "%s", c->why);
        wsc_finish(c, code, why[0] ? why : NULL);
        return;
    }
    if (c->why[0])
        snprintf(why, sizeof why, "%s", c->why);
    else
        snprintf(why, sizeof why, "connection to %s failed: %s", c->authority,
                 err == RILL_ERR_TLS ? "TLS handshake failed" : rill_strerror(err ? err : RILL_ERR_EOF));
    wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, why);
}

static const struct rill_io_conn_callbacks conn_callbacks = {
    .size = sizeof conn_callbacks,
    .on_open = on_open,
    .on_data = conn_io_data,
    .on_drain = conn_io_drain,
    .on_shutdown = conn_io_shutdown,
    .on_close = on_close,
    .on_output = conn_io_output,
    .on_output_sent = conn_io_output_sent,
    .on_timer = conn_io_timer,
};

/* ---- API ----------------------------------------------------------------------------------- */

void rill_websocket_client_options_init(rill_websocket_client_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->attempt_delay_ms = WSC_ATTEMPT_DELAY_MS;
}

void rill_websocket_client_set_trace(rill_websocket_client *c, rill_websocket_client_trace_fn fn,
                                     void *user)
{
    c->trace = fn;
    c->trace_user = user;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

int wsc_new(rill_io_loop *loop, const rill_websocket_client_options *opt,
            const rill_websocket_client_callbacks *cb, void *user, rill_websocket_client **out,
            char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    rill_websocket_client_options o;
    rill_websocket_client_options_init(&o);
    rill_websocket_client_callbacks k = {.size = sizeof k};
    if (!loop || !out || !opt || !cb || rill_struct_copy(&o, sizeof o, opt) != RILL_OK ||
        rill_struct_copy(&k, sizeof k, cb) != RILL_OK || !o.url) {
        snprintf(err, errlen, "bad arguments, options or callbacks (their size field), or no URL");
        return RILL_ERR_INVALID_ARG;
    }
    rill_websocket_client *c = calloc(1, sizeof *c);
    if (!c)
        return RILL_ERR_NOMEM;
    c->loop = loop;
    c->cb = k;
    c->user = user;
    c->opt = o;
    c->opt.url = NULL; /* not kept: its parts are */
    c->origin = dup_opt(o.origin);
    c->subprotocol = dup_opt(o.subprotocol);
    c->ca_file = dup_opt(o.ca_file);
    c->opt.origin = c->origin;
    c->opt.subprotocol = c->subprotocol;
    c->opt.ca_file = c->ca_file;
    c->mode = o.force_http1 ? WSC_H1 : WSC_H2;
    int rc = parse_url(c, o.url, err, errlen);
    if (rc == RILL_OK && ((o.origin && !c->origin) || (o.subprotocol && !c->subprotocol) ||
                          (o.ca_file && !c->ca_file)))
        rc = RILL_ERR_NOMEM;
    if (rc == RILL_OK) {
        rill_ws_pmd_policy policy = {0};
        rill_ws_pmd_client_offer(&policy, c->offer, sizeof c->offer);
        rc = make_tls(c, err, errlen);
    }
    if (rc == RILL_OK && (!(c->dns = client_dns_new(loop)) ||
                          !(c->connect_timer = rill_io_timer_new(loop, on_connect_timeout, c))))
        rc = RILL_ERR_NOMEM;
    if (rc < 0) {
        rill_websocket_client_free(c);
        return rc;
    }
    *out = c;
    return RILL_OK;
}

int wsc_connect(rill_websocket_client *c)
{
    char err[256];
    if (c->client) { /* a rill_client's WebSocket that its HTTP/2 connection cannot carry */
        if (c->client->last_addr.len) /* the address the client's connection went to first */
            c->last_addr = c->client->last_addr;
        c->client = NULL;
        c->mode = WSC_H1;
        int rc = make_tls(c, err, sizeof err);
        if (rc < 0) {
            wsc_finish(c, RILL_WS_CLOSE_ABNORMAL, err);
            return rc;
        }
    }
    /* the answer comes from a loop timer: on_resolved connects */
    return client_dns_resolve(c->dns, c->host, c->port, on_resolved, c);
}

int rill_websocket_client_new(rill_io_loop *loop, const rill_websocket_client_options *opt,
                       const rill_websocket_client_callbacks *cb, void *user, rill_websocket_client **out,
                       char *err, size_t errlen)
{
    int rc = wsc_new(loop, opt, cb, user, out, err, errlen);
    if (rc == RILL_OK && (rc = wsc_connect(*out)) < 0) {
        rill_websocket_client_free(*out);
        *out = NULL;
    }
    return rc;
}

int rill_websocket_client_send(rill_websocket_client *c, unsigned opcode, const void *data, size_t len)
{
    if (!c->open || c->finished)
        return RILL_ERR_STATE;
    int rc = rill_ws_send(c->codec, opcode, data, len);
    output_ready(c);
    return rc;
}

int rill_websocket_client_close(rill_websocket_client *c, unsigned code, const char *reason)
{
    if (!c->open || c->finished)
        return RILL_ERR_STATE;
    int rc = rill_ws_close(c->codec, code, reason, reason ? strlen(reason) : 0);
    output_ready(c);
    return rc;
}

void rill_websocket_client_free(rill_websocket_client *c)
{
    if (!c)
        return;
    c->freeing = true;
    client_ws_release(c); /* its stream on a rill_client's connection, if any */
    client_dns_free(c->dns); /* a lookup in flight is dropped */
    race_end(c);             /* the attempts under way are closed */
    if (c->conn)
        rill_io_conn_close(c->conn->c.io, false); /* on_close runs now, silently */
    rill_io_timer_free(c->connect_timer);
    rill_ws_free(c->codec);
    if (c->tls_ctx)
        rill_tls_ctx_free(c->tls_ctx);
    free(c->origin);
    free(c->subprotocol);
    free(c->ca_file);
    free(c);
}
