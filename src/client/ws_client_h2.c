/* The WebSocket client over HTTP/2 (RFC 8441): the rill/h2.h engine in the client role on the
 * connection layer. Once the server's SETTINGS allow extended CONNECT, one CONNECT stream with
 * :protocol websocket; its 2xx starts the codec, whose frames travel as the stream's DATA, pulled
 * by the engine straight into its frames (a data source) when the stream may send. The engine's
 * clock (SETTINGS ACK deadline, flood buckets) runs on the connection's timer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ws_client_internal.h"

static rill_header field(const char *name, const char *value)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), 0};
}

static bool is_name(const rill_header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

/* The stream's body: the codec's output, copied once, into the DATA frame. */
int wsc_h2_source(rill_h2_session *s, int32_t id, uint8_t *buf, size_t max, bool *eof, void *user)
{
    (void)s, (void)id;
    rill_websocket_client *c = user;
    if (!c->codec)
        return RILL_ERR_WOULD_BLOCK; /* no answer yet */
    size_t n = rill_ws_output_copy(c->codec, buf, max);
    const uint8_t *rest;
    if (rill_ws_is_done(c->codec) && rill_ws_output(c->codec, &rest) == 0) {
        *eof = true; /* END_STREAM: our orderly close, after the last frame (normally our Close) */
        return (int)n;
    }
    return n ? (int)n : RILL_ERR_WOULD_BLOCK;
}

void wsc_h2_output_ready(rill_websocket_client *c)
{
    if (c->h2 && c->stream > 0)
        rill_h2_resume_data(c->h2, c->stream);
}

static int on_settings(rill_h2_session *s, const rill_h2_settings *peer, void *user)
{
    rill_websocket_client *c = user;
    if (c->got_settings)
        return 0;
    c->got_settings = true;
    if (!peer->enable_connect_protocol) {
        wsc_fall_back_to_h1(c);
        return 0;
    }
    rill_header f[10];
    size_t n = 0;
    f[n++] = field(":method", "CONNECT");
    f[n++] = field(":protocol", "websocket");
    f[n++] = field(":scheme", c->tls ? "https" : "http");
    f[n++] = field(":path", c->path);
    f[n++] = field(":authority", c->authority);
    f[n++] = field("sec-websocket-version", "13");
    if (!c->opt.no_deflate)
        f[n++] = field("sec-websocket-extensions", c->offer);
    if (c->origin)
        f[n++] = field("origin", c->origin);
    if (c->subprotocol)
        f[n++] = field("sec-websocket-protocol", c->subprotocol);
    int32_t id = rill_h2_submit_request(s, f, n, 0, NULL);
    if (id < 0 || rill_h2_set_data_source(s, id, wsc_h2_source, c) < 0) {
        wsc_fall_back_to_h1(c);
        return 0;
    }
    c->stream = id;
    return 0;
}

static int on_headers(rill_h2_session *s, int32_t id, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    (void)flags;
    rill_websocket_client *c = user;
    if (id != c->stream || kind != RILL_H2_HEADERS_RESPONSE || c->codec)
        return 0;
    const char *ext = NULL;
    size_t ext_len = 0;
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_name(&f[i], ":status") && f[i].value_len == 3) /* the engine checked the digits */
            status = (f[i].value[0] - '0') * 100 + (f[i].value[1] - '0') * 10 + (f[i].value[2] - '0');
        else if (is_name(&f[i], "sec-websocket-extensions")) {
            ext = (const char *)f[i].value;
            ext_len = f[i].value_len;
        }
    }
    if (status < 200 || status > 299) {
        rill_h2_submit_goaway(s, RILL_H2_NO_ERROR, NULL, 0);
        wsc_fail(c, "the server refused the WebSocket: HTTP %d", status);
        return 0;
    }
    if (wsc_start_codec(c, ext, ext_len) < 0) {
        rill_h2_submit_rst_stream(s, id, RILL_H2_CANCEL);
        rill_h2_submit_goaway(s, RILL_H2_NO_ERROR, NULL, 0);
        wsc_fail(c, "bad sec-websocket-extensions in the response");
    }
    return 0;
}

static int on_data(rill_h2_session *s, int32_t id, const uint8_t *data, size_t len, void *user)
{
    rill_websocket_client *c = user;
    if (id == c->stream && c->codec)
        rill_ws_recv(c->codec, data, len); /* a failure queues its Close frame */
    rill_h2_consume(s, id, len);
    return 0;
}

/* The server ended its side: the WebSocket's transport is over; ours ends after our last frame. */
static int on_end_stream(rill_h2_session *s, int32_t id, void *user)
{
    rill_websocket_client *c = user;
    if (id != c->stream || !c->codec)
        return 0;
    c->ended = true;
    c->end_code = rill_ws_transport_closed(c->codec);
    rill_h2_resume_data(s, id); /* END_STREAM, once what the codec still holds is out; then
                                   proto_output ends the connection */
    return 0;
}

static int on_stream_close(rill_h2_session *s, int32_t id, uint32_t code, void *user)
{
    rill_websocket_client *c = user;
    if (id != c->stream)
        return 0;
    c->stream = 0;
    if (rill_h2_session_error_code(s) >= 0)
        return 0; /* the connection's end speaks for it */
    if (code != RILL_H2_NO_ERROR)
        wsc_fail(c, "the stream was reset: %s", rill_h2_error_name(code));
    return 0; /* closed in order: proto_output ends the connection once our side is out */
}

static int on_goaway(rill_h2_session *s, int32_t last_id, uint32_t code, const uint8_t *debug,
                     size_t debug_len, void *user)
{
    (void)s, (void)last_id, (void)debug, (void)debug_len;
    rill_websocket_client *c = user;
    if (code != RILL_H2_NO_ERROR && !c->why[0])
        snprintf(c->why, sizeof c->why, "the server ended the HTTP/2 connection (GOAWAY %s)",
                 rill_h2_error_name(code));
    return 0;
}

static const rill_h2_callbacks h2_callbacks = {
    .size = sizeof h2_callbacks,
    .on_headers = on_headers,
    .on_data = on_data,
    .on_end_stream = on_end_stream,
    .on_stream_close = on_stream_close,
    .on_settings = on_settings,
    .on_goaway = on_goaway,
};

int wsc_h2_start(rill_websocket_client *c)
{
    rill_h2_options o;
    rill_h2_options_init(&o, RILL_H2_CLIENT);
    o.local.enable_push = 0;
    o.now_ms = rill_io_loop_now_ms(c->loop);
    c->h2 = rill_h2_session_new(RILL_H2_CLIENT, &o, &h2_callbacks, c);
    if (!c->h2)
        return RILL_ERR_NOMEM;
    c->stream = 0;
    c->got_settings = false;
    conn_set_proto(&c->conn->c, &wsc_h2_proto);
    return RILL_OK;
}

/* ---- the connection layer's view ---------------------------------------------------------- */

/* The engine failed the connection (its GOAWAY is queued): say why, close once it is out. */
static void fail_connection(rill_websocket_client *c)
{
    int64_t code = rill_h2_session_error_code(c->h2);
    if (code == RILL_H2_SETTINGS_TIMEOUT)
        wsc_fail(c, "the server did not acknowledge our HTTP/2 SETTINGS in time (SETTINGS_TIMEOUT)");
    else
        wsc_fail(c, "HTTP/2 connection error (%s)",
                 rill_h2_error_name(code < 0 ? RILL_H2_PROTOCOL_ERROR : (uint32_t)code));
}

static void proto_data(struct conn *conn, const uint8_t *data, size_t len)
{
    rill_websocket_client *c = wsc_of(conn);
    rill_h2_session_tick(c->h2, rill_io_loop_now_ms(c->loop)); /* the flood buckets refill */
    if (rill_h2_session_recv(c->h2, data, len) < 0) {
        if (!c->got_settings && !c->tls)
            wsc_fall_back_to_h1(c); /* not an HTTP/2 server (no prior knowledge on ws://) */
        else
            fail_connection(c);
        return;
    }
    wsc_h2_output_ready(c); /* what the codec answered (a pong, a Close) */
}

static void proto_drain(struct conn *conn)
{
    conn_flush(conn);
}

static int proto_output(struct conn *conn, struct iovec *iov, int max)
{
    rill_websocket_client *c = wsc_of(conn);
    if (!c->h2 || c->reconnecting)
        return 0;
    conn->in_callback++; /* the data source runs the codec: no flush from inside */
    int n = rill_h2_session_output(c->h2, iov, max);
    if (n == 0 && c->ended && !conn->closing) {
        /* The WebSocket is over and our END_STREAM is out (or waits for a window that will not
         * open now): GOAWAY after it, as the last frame, and the connection's end. */
        rill_h2_submit_goaway(c->h2, RILL_H2_NO_ERROR, NULL, 0);
        n = rill_h2_session_output(c->h2, iov, max);
        conn_close(conn);
    }
    conn->in_callback--;
    if (n == 0 && !conn->closing && !rill_h2_session_want_read(c->h2))
        conn_close(conn); /* GOAWAY exchanged, nothing left to say */
    return n;
}

static void proto_output_sent(struct conn *conn, size_t n)
{
    rill_websocket_client *c = wsc_of(conn);
    if (!c->h2)
        return;
    conn->in_callback++;
    rill_h2_session_output_sent(c->h2, n);
    conn->in_callback--;
}

static uint64_t proto_deadline(const struct conn *conn)
{
    const rill_websocket_client *c = ((const struct wsc_conn *)conn)->ws;
    return c->h2 ? rill_h2_session_next_deadline(c->h2) : UINT64_MAX;
}

/* The engine's clock: the SETTINGS ACK deadline, the flood buckets, a peer that stops reading. */
static void proto_timeout(struct conn *conn, uint64_t now)
{
    rill_websocket_client *c = wsc_of(conn);
    rill_h2_session_tick(c->h2, now);
    if (rill_h2_session_error_code(c->h2) >= 0 && !rill_h2_session_want_read(c->h2))
        fail_connection(c);
}

static void proto_goodbye(struct conn *conn)
{
    rill_websocket_client *c = wsc_of(conn);
    rill_h2_submit_goaway(c->h2, RILL_H2_NO_ERROR, NULL, 0);
    rill_io_conn_want_output(conn->io);
}

/* The loop shuts down: GOAWAY, then the close once it is written. */
static void proto_shutdown(struct conn *conn)
{
    proto_goodbye(conn);
    conn_close(conn);
}

static void proto_trim(struct conn *conn)
{
    rill_h2_session_trim(wsc_of(conn)->h2);
}

static void proto_free(struct conn *conn)
{
    rill_websocket_client *c = wsc_of(conn);
    rill_h2_session_free(c->h2);
    c->h2 = NULL;
    c->stream = 0;
}

const struct conn_proto wsc_h2_proto = {
    .name = "WebSocket over h2",
    .data = proto_data,
    .drain = proto_drain,
    .output = proto_output,
    .output_sent = proto_output_sent,
    .deadline = proto_deadline,
    .timeout = proto_timeout,
    .goodbye = proto_goodbye,
    .trim = proto_trim,
    .shutdown = proto_shutdown,
    .free = proto_free,
    .arm_after_data = true, /* a read can start a deadline (a peer that stops reading ours) */
};
