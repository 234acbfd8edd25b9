/* WebSockets on the server: the opening handshake over HTTP/1.1 (Upgrade, 101) or HTTP/2
 * (extended CONNECT, 200), then the rill/ws.h codec between the transport and the handler.
 * HTTP/1.1: the connection's bytes feed the codec and its output is written raw; the server closes
 * the TCP connection when the closing handshake is over. HTTP/2: the stream's DATA feeds the codec
 * and its output goes out as DATA; END_STREAM is the orderly close, RST_STREAM the abort (RFC 8441
 * §5). A failed connection (protocol error, bad UTF-8, too big) ends like a finished handshake on
 * both: the Close frame with its code, then the transport's orderly close (RFC 6455 §7.1.7). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/api_struct.h"
#include "rill/ws.h"
#include "server/server_internal.h"

struct ws_route {
    rill_websocket_handler h; /* the caller's, copied (a shorter, older one: NULL tail) */
    void *user;
};

/* HTTP/2: after our END_STREAM, how long the peer has to end its side before the stream is reset
 * (the TCP linger of the HTTP/1.1 path, rill_io_loop_options.linger_ms, is as long). */
#define WS_H2_CLOSE_LINGER_MS 5000u

struct rill_websocket {
    rill_ws *codec;
    rill_server_session *sess;
    rill_server_stream *st; /* HTTP/2: the CONNECT stream; NULL on HTTP/1.1 */
    rill_io_timer *linger; /* HTTP/2: armed after our END_STREAM, until the peer ends its side */
    const struct ws_route *route;
    void *user;
    bool compressed;
    bool blocked;  /* a send returned WOULD_BLOCK: on_drain is owed */
    bool finishing; /* our side of the transport is being closed */
    bool gone;     /* on_close reported */
    bool opening;  /* inside on_open: output waits for the handshake response */
    uint8_t busy;  /* inside a call that still uses ws: ws_gone waits for it */
    bool gone_pending;
    const char *subprotocol;
};

static void ws_flush(rill_websocket *ws);

static void ws_gone(rill_websocket *ws);

static void ws_hold(rill_websocket *ws)
{
    ws->busy++;
}

static void ws_release(rill_websocket *ws)
{
    if (--ws->busy == 0 && ws->gone_pending) {
        ws->gone_pending = false;
        ws_gone(ws);
    }
}

static void ws_gone(rill_websocket *ws)
{
    if (ws->gone)
        return;
    if (ws->busy) {
        ws->gone_pending = true;
        return;
    }
    ws->gone = true;
    rill_io_timer_free(ws->linger);
    unsigned code = rill_ws_transport_closed(ws->codec);
    if (ws->route->h.on_close)
        ws->route->h.on_close(ws, code, ws->route->user);
    rill_ws_free(ws->codec);
    free(ws);
}

/* ---- codec callbacks --------------------------------------------------------------------------- */

static int on_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    rill_websocket *ws = user;
    const rill_websocket_handler *h = &ws->route->h;
    if (h->on_fragment)
        h->on_fragment(ws, opcode, data, len, flags & RILL_WS_FIRST, flags & RILL_WS_FINAL,
                       ws->route->user);
    else if (h->on_message)
        h->on_message(ws, opcode, data, len, ws->route->user);
    return 0;
}

/* ---- moving bytes ------------------------------------------------------------------------------ */

/* The peer kept its side of the stream open too long after ours ended: reset it. */
static void linger_expired(rill_io_timer *timer, void *arg)
{
    (void)timer;
    rill_websocket *ws = arg;
    rill_server_session *sess = ws->sess;
    ws_hold(ws);
    rill_h2_submit_rst_stream(sess->h2, ws->st->id, RILL_H2_CANCEL);
    ws_release(ws);
    session_flush(sess);
}

/* The codec is done: close our side of the transport. Over HTTP/2 the last output (normally the
 * Close frame) carries END_STREAM; the stream closes when the peer ends its side too. */
static void ws_finish(rill_websocket *ws, const uint8_t *last, size_t last_len)
{
    ws->finishing = true;
    if (!ws->st) {
        session_close(ws->sess); /* RFC 6455 §7.1.1: the server closes the TCP connection first */
        return;
    }
    rill_server_session *sess = ws->sess;
    /* FAILED without a close code: aborted, or a callback stopped the codec; no Close frame was
     * queued, so there is nothing orderly to end with. Any other end (a Close exchange, or a
     * failure whose Close frame is in `last` or already sent) is orderly. */
    if (rill_ws_state(ws->codec) == RILL_WS_FAILED && rill_ws_fail_code(ws->codec) == 0) {
        rill_h2_submit_rst_stream(sess->h2, ws->st->id, RILL_H2_CANCEL);
        session_flush(sess);
        return;
    }
    int rc = rill_server_response_end(ws->st, last, last_len);
    /* Unless the stream closed just now (the peer had ended its side; ws->st is gone then), wait
     * for the peer's END_STREAM a bounded time, discarding what it still sends (RFC 6455 §7.1.7). */
    if (!ws->gone_pending) {
        if (rc == RILL_OK) {
            ws->linger = rill_io_timer_new(session_worker(sess)->loop, linger_expired, ws);
            rc = ws->linger ? rill_io_timer_arm(ws->linger, WS_H2_CLOSE_LINGER_MS) : RILL_ERR_NOMEM;
        }
        if (rc < 0) /* cannot end in order, or cannot wait for the peer: abort */
            rill_h2_submit_rst_stream(sess->h2, ws->st->id, RILL_H2_CANCEL);
    }
    session_flush(sess);
}

static void ws_flush(rill_websocket *ws)
{
    const uint8_t *p;
    size_t n;
    if (ws->opening || ws->finishing)
        return;
    ws_hold(ws);
    bool done = rill_ws_is_done(ws->codec);
    while ((n = rill_ws_output(ws->codec, &p)) > 0) {
        if (done && ws->st) {
            ws_finish(ws, p, n); /* nothing follows: these bytes go out with END_STREAM */
            rill_ws_output_sent(ws->codec, n);
            break;
        }
        int rc = ws->st ? rill_server_response_write(ws->st, p, n) : rill_io_conn_write(ws->sess->c.io, p, n);
        if (rc < 0 && rc != RILL_ERR_WOULD_BLOCK) {
            rill_ws_abort(ws->codec);
            break;
        }
        rill_ws_output_sent(ws->codec, n);
    }
    if (rill_ws_is_done(ws->codec) && !ws->finishing)
        ws_finish(ws, NULL, 0);
    ws_release(ws);
}

static void ws_feed(rill_websocket *ws, const uint8_t *data, size_t len)
{
    ws_hold(ws);
    rill_ws_recv(ws->codec, data, len); /* failures queue their Close frame: flushed below */
    ws_flush(ws);
    ws_release(ws);
}

static void ws_drained(rill_websocket *ws)
{
    if (ws->blocked && !ws->gone) {
        ws->blocked = false;
        ws_hold(ws);
        if (ws->route->h.on_drain)
            ws->route->h.on_drain(ws, ws->route->user);
        ws_release(ws);
    }
}

/* An HTTP/1.1 connection after the 101: the connection layer runs ws_proto on it. */
static void proto_data(struct conn *c, const uint8_t *data, size_t len)
{
    ws_feed(session_of(c)->websocket, data, len);
}

static void proto_drain(struct conn *c)
{
    ws_drained(session_of(c)->websocket);
}

static void proto_free(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    rill_websocket *ws = sess->websocket;
    sess->websocket = NULL;
    ws_gone(ws);
    h1_session_free(sess); /* what is left of the HTTP/1.1 side that switched */
}

const struct conn_proto ws_proto = {
    .name = "WebSocket",
    .data = proto_data,
    .drain = proto_drain,
    .busy = session_busy,
    .free = proto_free,
};

/* HTTP/2 stream hooks: the CONNECT stream's body is the peer's byte stream. */
static void h2_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user)
{
    rill_websocket *ws = user;
    ws_hold(ws);
    if (len)
        ws_feed(ws, data, len);
    if (end && !ws->gone_pending) { /* the peer's END_STREAM: its TCP FIN */
        rill_ws_transport_closed(ws->codec);
        ws_flush(ws);
    }
    ws_release(ws);
}

static void h2_drain(rill_server_response *res, void *user)
{
    ws_drained(user);
}

static void h2_closed(rill_server_response *res, bool completed, void *user)
{
    ws_gone(user);
}

/* ---- the handshake ----------------------------------------------------------------------------- */

static bool origin_allowed(const rill_server *srv, const rill_server_request *req)
{
    if (srv->nws_origins == 0)
        return true;
    size_t len = 0;
    const char *origin = rill_server_request_header(req, "origin", &len);
    return rill_ws_origin_allowed(origin, len, (const char *const *)srv->ws_origins,
                                  srv->nws_origins);
}

/* Sec-WebSocket-Version on extended CONNECT, by the HTTP/1.1 Upgrade's rule
 * (rill_h1_websocket_upgrade): missing or repeated is a malformed handshake (400, RFC 6455
 * §4.2.1), anything but 13 gets 426 with the version we speak (§4.2.2). 0 when acceptable. */
static int h2_version_refusal(const rill_server_request *req)
{
    static const char name[] = "sec-websocket-version";
    const rill_header *version = NULL;
    for (size_t i = 0, n = rill_server_request_header_count(req); i < n; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (f->name_len == sizeof name - 1 && memcmp(f->name, name, sizeof name - 1) == 0) {
            if (version)
                return 400;
            version = f;
        }
    }
    if (!version)
        return 400;
    return rill_ws_version_ok((const char *)version->value, version->value_len) ? 0 : 426;
}

static void ws_handshake(rill_server_request *req, rill_server_response *res, void *arg)
{
    const struct ws_route *route = arg;
    rill_server_session *sess = req->sess;
    rill_server *srv = session_worker(sess)->srv;
    bool h2 = sess->h2 != NULL;
    if (h2) {
        if (strcmp(req->method, "CONNECT") != 0 || !req->connect_protocol) {
            rill_server_response_set_header(res, "content-type", "text/plain; charset=utf-8");
            exchange_respond_simple(res, 426, NULL, "this is a WebSocket endpoint\n");
            return;
        }
        if (strcmp(req->connect_protocol, "websocket") != 0) {
            exchange_respond_simple(res, 501, "text/plain; charset=utf-8", "unknown protocol\n");
            return;
        }
        int refused = h2_version_refusal(req);
        if (refused == 400) {
            exchange_respond_simple(res, 400, "text/plain; charset=utf-8",
                                    "sec-websocket-version: 13 is required, once\n");
            return;
        }
        if (refused == 426) {
            rill_server_response_set_header(res, "sec-websocket-version", "13");
            exchange_respond_simple(res, 426, "text/plain; charset=utf-8", "version 13 only\n");
            return;
        }
    } else if (req->ws_request != WS_VALID) {
        if (req->ws_request == WS_WRONG_VERSION)
            rill_server_response_set_header(res, "sec-websocket-version", "13");
        exchange_respond_simple(res, req->ws_request == WS_MALFORMED ? 400 : 426,
                                "text/plain; charset=utf-8",
                                "this is a WebSocket endpoint\n");
        return;
    }
    if (!origin_allowed(srv, req)) {
        exchange_respond_simple(res, 403, "text/plain; charset=utf-8", "origin not allowed\n");
        return;
    }

    rill_websocket *ws = calloc(1, sizeof *ws);
    if (!ws) {
        exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    ws->sess = sess;
    ws->route = route;
    const rill_websocket_handler *h = &route->h;
    size_t len = 0;
    const char *offered = rill_server_request_header(req, "sec-websocket-protocol", &len);
    if (offered && h->nsubprotocols) {
        int i = rill_ws_select_subprotocol(offered, len, h->subprotocols, h->nsubprotocols);
        if (i >= 0)
            ws->subprotocol = h->subprotocols[i];
    }
    char ext[160] = "";
    rill_ws_pmd_params pmd;
    const char *offers = rill_server_request_header(req, "sec-websocket-extensions", &len);
    ws->compressed = offers && rill_ws_pmd_server_negotiate(offers, len, NULL, &pmd, ext,
                                                            sizeof ext) == RILL_OK;
    rill_ws_options opt;
    rill_ws_options_init(&opt);
    opt.max_message_size = h->max_message_size;
    opt.streaming = h->on_fragment != NULL;
    opt.pmd = ws->compressed ? &pmd : NULL;
    static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = on_message};
    ws->codec = rill_ws_new(RILL_WS_SERVER, &opt, &cb, ws);
    if (!ws->codec) {
        free(ws);
        exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    if (h2)
        ws->st = res; /* known before on_open: rill_websocket_transport() */
    ws->opening = true;
    int refused = h->on_open ? h->on_open(ws, req, route->user) : 0;
    ws->opening = false;
    if (refused) {
        ws->st = NULL;
        rill_ws_free(ws->codec);
        free(ws);
        exchange_respond_simple(res, refused >= 400 && refused <= 599 ? refused : 403,
                                "text/plain; charset=utf-8", "refused\n");
        return;
    }

    if (h2) {
        rill_server_response_on_close(res, h2_closed, ws);
        rill_server_response_on_drain(res, h2_drain, ws);
        if (ws->subprotocol)
            rill_server_response_set_header(res, "sec-websocket-protocol", ws->subprotocol);
        if (ws->compressed)
            rill_server_response_set_header(res, "sec-websocket-extensions", ext);
        rill_server_response_write(res, NULL, 0); /* 200 without END_STREAM: the tunnel is open */
        rill_server_request_on_body(req, h2_body, ws);
        ws_flush(ws); /* anything on_open sent */
        return;
    }

    /* HTTP/1.1: 101, then the connection belongs to the codec. */
    size_t klen = 0;
    const char *key = rill_server_request_header(req, "sec-websocket-key", &klen);
    char accept[RILL_WS_ACCEPT_LEN + 1];
    rill_ws_accept_key(key, klen, accept);
    rill_server_response_set_header(res, "sec-websocket-accept", accept);
    if (ws->subprotocol)
        rill_server_response_set_header(res, "sec-websocket-protocol", ws->subprotocol);
    if (ws->compressed)
        rill_server_response_set_header(res, "sec-websocket-extensions", ext);
    exchange_switch_protocols(res, "websocket");
    sess->websocket = ws;
    conn_set_proto(&sess->c, &ws_proto);
    ws_flush(ws);
}

int rill_server_websocket(rill_server *s, const char *path, const rill_websocket_handler *h, void *user)
{
    if (!h)
        return RILL_ERR_INVALID_ARG;
    struct ws_route *r = calloc(1, sizeof *r);
    if (!r)
        return RILL_ERR_NOMEM;
    if (rill_struct_copy(&r->h, sizeof r->h, h) != RILL_OK) {
        free(r);
        return RILL_ERR_INVALID_ARG;
    }
    r->user = user;
    int rc = server_add_route(s, path, ws_handshake, r, true, free);
    if (rc < 0)
        free(r);
    return rc;
}

int rill_server_websocket_origins(rill_server *s, const char *const *origins, size_t count)
{
    char **copy = calloc(count ? count : 1, sizeof *copy);
    if (!copy)
        return RILL_ERR_NOMEM;
    for (size_t i = 0; i < count; i++)
        if (!(copy[i] = strdup(origins[i]))) {
            while (i--)
                free(copy[i]);
            free(copy);
            return RILL_ERR_NOMEM;
        }
    for (size_t i = 0; i < s->nws_origins; i++)
        free(s->ws_origins[i]);
    free(s->ws_origins);
    s->ws_origins = copy;
    s->nws_origins = count;
    return RILL_OK;
}

/* ---- the application's side -------------------------------------------------------------------- */

static bool over_high_water(const rill_websocket *ws)
{
    if (ws->opening)
        return false;
    return ws->st ? ws->st->queued >= EXCHANGE_HIGH_WATER
                  : rill_io_conn_queued(ws->sess->c.io) >= EXCHANGE_HIGH_WATER;
}

int rill_websocket_send(rill_websocket *ws, unsigned opcode, const void *data, size_t len)
{
    if (ws->finishing || ws->gone_pending)
        return RILL_ERR_STATE;
    int rc = rill_ws_send(ws->codec, opcode, data, len);
    if (rc < 0)
        return rc;
    ws_hold(ws);
    ws_flush(ws);
    if (!ws->gone_pending && over_high_water(ws)) {
        ws->blocked = true;
        rc = RILL_ERR_WOULD_BLOCK;
    }
    ws_release(ws);
    return rc;
}

int rill_websocket_ping(rill_websocket *ws, const void *data, size_t len)
{
    int rc = ws->finishing || ws->gone_pending ? RILL_ERR_STATE
                                               : rill_ws_send_ping(ws->codec, data, len);
    if (rc == RILL_OK) {
        ws_hold(ws);
        ws_flush(ws);
        ws_release(ws);
    }
    return rc;
}

int rill_websocket_close(rill_websocket *ws, unsigned code, const char *reason)
{
    int rc = ws->finishing || ws->gone_pending
                 ? RILL_ERR_STATE
                 : rill_ws_close(ws->codec, code, reason, reason ? strlen(reason) : 0);
    if (rc == RILL_OK) {
        ws_hold(ws);
        ws_flush(ws);
        ws_release(ws);
    }
    return rc;
}

const char *rill_websocket_transport(const rill_websocket *ws)
{
    return ws->st ? "h2" : "HTTP/1.1";
}

const char *rill_websocket_subprotocol(const rill_websocket *ws) { return ws->subprotocol; }
bool rill_websocket_compressed(const rill_websocket *ws) { return ws->compressed; }
rill_server_session *rill_websocket_session(const rill_websocket *ws) { return ws->sess; }
void rill_websocket_set_user(rill_websocket *ws, void *user) { ws->user = user; }
void *rill_websocket_user(const rill_websocket *ws) { return ws->user; }

bool ws_route_is(const struct route *r)
{
    return r->fn == ws_handshake;
}
