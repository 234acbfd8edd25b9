/* WebSockets on a rill_client (rill_client_websocket): as Chromium does, a WebSocket goes on the
 * client's HTTP/2 connection as an RFC 8441 extended CONNECT stream next to the ordinary
 * requests, once the server's SETTINGS allow it. The stream is a rill_client_stream whose
 * callbacks are the ones here (its user is the rill_websocket_client): its 2xx starts the codec,
 * its DATA feeds it, and the codec's output is the stream's body, pulled by the engine (a data
 * source). When no HTTP/2 connection can carry it (the origin answers over HTTP/1.1, SETTINGS
 * without extended CONNECT, a cleartext server that turned out not to speak HTTP/2) the
 * WebSocket makes a connection of its own for the HTTP/1.1 Upgrade (ws_client.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "client/ws_client_internal.h"
#include "common/api_struct.h"

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                        void *user)
{
    rill_websocket_client *ws = user;
    if (!ws || ws->codec)
        return;
    if (status < 200 || status > 299) {
        snprintf(ws->why, sizeof ws->why, "the server refused the WebSocket: HTTP %d", status);
        rill_client_stream_cancel(st); /* RST_STREAM CANCEL; on_end follows */
        return;
    }
    const char *ext = NULL;
    size_t ext_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].name_len == 24 && memcmp(f[i].name, "sec-websocket-extensions", 24) == 0) {
            ext = (const char *)f[i].value;
            ext_len = f[i].value_len;
        }
    }
    if (wsc_start_codec(ws, ext, ext_len) < 0) {
        snprintf(ws->why, sizeof ws->why, "bad sec-websocket-extensions in the response");
        rill_client_stream_cancel(st);
    }
}

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    rill_websocket_client *ws = user;
    if (!ws || !ws->codec)
        return;
    rill_ws_recv(ws->codec, data, len); /* a failure queues its Close frame */
    client_ws_output_ready(ws);         /* what the codec answered (a pong, a Close) */
}

/* The stream is over: both ends closed in order (err 0), or the connection or the server ended
 * it. The WebSocket ends with it. */
static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    rill_websocket_client *ws = user;
    if (!ws)
        return; /* it left for a connection of its own, or was freed */
    ws->st = NULL;
    char reason[sizeof ws->why];
    if (ws->why[0])
        snprintf(reason, sizeof reason, "%s", ws->why);
    else if (err && !ws->codec)
        snprintf(reason, sizeof reason, "the WebSocket to %s failed: %s", ws->authority, why);
    else if (err)
        snprintf(reason, sizeof reason, "%s", why);
    else
        reason[0] = '\0';
    unsigned code = !ws->codec  ? RILL_WS_CLOSE_ABNORMAL
                    : ws->ended ? ws->end_code
                                : rill_ws_transport_closed(ws->codec);
    wsc_finish(ws, code, reason[0] ? reason : NULL);
}

static const rill_client_callbacks stream_callbacks = {
    .size = sizeof stream_callbacks,
    .on_response = on_response,
    .on_data = on_data,
    .on_end = on_end,
};

/* st no longer stands for ws: nothing of st reaches ws from here on. */
static void unbind(rill_client_stream *st)
{
    rill_websocket_client *ws = st->ws;
    st->ws = NULL;
    st->user = NULL;
    if (ws) {
        ws->st = NULL;
        st->client->nws--;
    }
}

/* The WebSocket leaves the client for an HTTP/1.1 connection of its own. */
static void leave(rill_client_stream *st)
{
    rill_websocket_client *ws = st->ws;
    client_trace(st->client, "WebSocket %s: over HTTP/1.1 on a connection of its own", st->path);
    unbind(st);
    client_stream_finish(st, 0, NULL); /* no callback: its user is gone */
    wsc_connect(ws);                   /* failures end in ws's on_close */
}

bool client_ws_dispatch(struct client_conn *cc, rill_client_stream *st)
{
    if (!cc->h2 || (cc->h2_settings_seen && !cc->h2_connect_protocol)) {
        leave(st);
        return true;
    }
    if (!cc->h2_settings_seen)
        return false; /* on_settings dispatches again */
    int rc = client_h2_submit(cc, st);
    if (rc == RILL_ERR_LIMIT)
        return false;
    if (rc < 0)
        client_stream_finish(st, rc, "the WebSocket's CONNECT could not be sent");
    else
        st->conn_id = cc->id;
    return true;
}

/* The engine pulls the codec's output through the stream (user), never through a freed
 * WebSocket: a stream without one has nothing to say. Once the server ended its side, ours ends
 * after what the codec still had, Close frame or not (the connection stays for the others). */
static int source(rill_h2_session *s, int32_t id, uint8_t *buf, size_t max, bool *eof, void *user)
{
    rill_client_stream *st = user;
    if (!st->ws)
        return RILL_ERR_WOULD_BLOCK;
    int n = wsc_h2_source(s, id, buf, max, eof, st->ws);
    if (n == RILL_ERR_WOULD_BLOCK && st->ws->ended) {
        *eof = true;
        return 0;
    }
    return n;
}

int client_ws_submitted(struct client_conn *cc, rill_client_stream *st, int32_t id)
{
    client_trace(cc->client, "WebSocket %s: extended CONNECT, stream %d of connection #%u",
                 st->path, (int)id, cc->id);
    return rill_h2_set_data_source(cc->h2, id, source, st);
}

void client_ws_peer_ended(struct client_conn *cc, rill_client_stream *st)
{
    rill_websocket_client *ws = st->ws;
    if (!ws || !ws->codec)
        return;
    ws->ended = true;
    ws->end_code = rill_ws_transport_closed(ws->codec);
    rill_h2_resume_data(cc->h2, st->h2_id); /* END_STREAM, once the codec's last bytes are out */
}

void client_ws_output_ready(rill_websocket_client *ws)
{
    rill_client_stream *st = ws->st;
    struct client_conn *cc = st && st->state == ST_SENT ? st->conn : NULL;
    if (!cc || !cc->h2 || cc->c.closing)
        return;
    rill_h2_resume_data(cc->h2, st->h2_id);
    conn_flush(&cc->c);
}

void client_ws_no_h2(rill_client *cl, bool fall_back, int err, const char *why)
{
    for (rill_client_stream *st = cl->head, *next; st && cl->nws; st = next) {
        next = st->next;
        if (!st->ws || st->state != ST_PENDING)
            continue;
        if (fall_back)
            leave(st); /* may run on_close: st's neighbours stay (no stream is freed there) */
        else
            client_stream_finish(st, err, why);
    }
}

void client_ws_release(rill_websocket_client *ws)
{
    rill_client_stream *st = ws->st;
    if (!st)
        return;
    unbind(st);
    rill_client_stream_cancel(st); /* on a later turn: this may run inside a callback of ours */
}

void client_ws_detach_all(rill_client *cl)
{
    for (rill_client_stream *st = cl->head; st; st = st->next) {
        rill_websocket_client *ws = st->ws;
        if (!ws)
            continue;
        unbind(st);
        ws->client = NULL;
        ws->finished = true; /* ends without on_close, like the client's requests */
    }
}

int rill_client_websocket(rill_client *c, const char *target,
                          const rill_websocket_client_options *opt,
                          const rill_websocket_client_callbacks *cb, void *user,
                          rill_websocket_client **out, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (out)
        *out = NULL;
    rill_websocket_client_options o;
    rill_websocket_client_options_init(&o);
    if (!c || !target || !out || (opt && rill_struct_copy(&o, sizeof o, opt) != RILL_OK)) {
        snprintf(err, errlen, "bad arguments or options (their size field)");
        return RILL_ERR_INVALID_ARG;
    }
    /* The URL of the WebSocket: the client's origin and target's path (a URL of the client's
     * origin, with ws/wss or http/https, stands for its path). */
    const char *path = target;
    if (target[0] != '/') {
        const char *rest = strstr(target, "://");
        size_t scheme = rest ? (size_t)(rest - target) : 0;
        bool tls = scheme == 3 || scheme == 5; /* wss, https */
        if (!rest || tls != c->origin.tls ||
            !(scheme == 2 || scheme == 3 || scheme == 4 || scheme == 5) ||
            strncasecmp(rest + 3, c->origin.host_field, strlen(c->origin.host_field)) != 0 ||
            !strchr("/?#", rest[3 + strlen(c->origin.host_field)])) {
            snprintf(err, errlen, "%s is not a path or a URL of the client's origin", target);
            return RILL_ERR_INVALID_ARG;
        }
        path = rest + 3 + strlen(c->origin.host_field);
        if (!*path)
            path = "/";
    }
    size_t url_len = strlen(c->origin.host_field) + strlen(path) + 16;
    char *url = malloc(url_len);
    if (!url)
        return RILL_ERR_NOMEM;
    snprintf(url, url_len, "%s://%s%s%s", c->origin.tls ? "wss" : "ws", c->origin.host_field,
             path[0] == '/' ? "" : "/", path);
    o.url = url;
    o.insecure = c->opt.insecure; /* a connection of its own trusts what the client trusts */
    o.ca_file = c->opt.ca_file;
    o.attempt_delay_ms = c->opt.attempt_delay_ms;
    o.force_http1 = o.force_http1 || c->opt.http1_only;
    rill_websocket_client *ws = NULL;
    int rc = wsc_new(c->loop, &o, cb, user, &ws, err, errlen);
    free(url);
    if (rc < 0)
        return rc;
    ws->client = c;
    if (o.force_http1) { /* straight to the HTTP/1.1 Upgrade */
        if (c->last_addr.len) /* the address the client's connection went to first */
            ws->last_addr = c->last_addr;
        ws->client = NULL;
        if ((rc = wsc_connect(ws)) < 0) {
            rill_websocket_client_free(ws);
            return rc;
        }
        *out = ws;
        return RILL_OK;
    }
    rill_header f[5];
    size_t n = 0;
    f[n++] = (rill_header){(const uint8_t *)":protocol", 9, (const uint8_t *)"websocket", 9, 0};
    f[n++] =
        (rill_header){(const uint8_t *)"sec-websocket-version", 21, (const uint8_t *)"13", 2, 0};
    if (!ws->opt.no_deflate)
        f[n++] = (rill_header){(const uint8_t *)"sec-websocket-extensions", 24,
                               (const uint8_t *)ws->offer, strlen(ws->offer), 0};
    if (ws->origin)
        f[n++] = (rill_header){(const uint8_t *)"origin", 6, (const uint8_t *)ws->origin,
                               strlen(ws->origin), 0};
    if (ws->subprotocol)
        f[n++] = (rill_header){(const uint8_t *)"sec-websocket-protocol", 22,
                               (const uint8_t *)ws->subprotocol, strlen(ws->subprotocol), 0};
    rill_client_stream *st = NULL;
    rc = client_request_start(c, "CONNECT", ws->path, f, n, NULL, 0, true, &stream_callbacks, ws,
                              &st);
    if (rc < 0) {
        snprintf(err, errlen, "the WebSocket's request: %s", rill_strerror(rc));
        rill_websocket_client_free(ws);
        return rc;
    }
    /* A WebSocket lives as long as its ends like: no request timeout */
    rill_io_timer_free(st->timer);
    st->timer = NULL;
    st->ws = ws;
    ws->st = st;
    c->nws++;
    *out = ws;
    return RILL_OK;
}
