/* The WebSocket client over HTTP/1.1 (RFC 6455 §4.1): the Upgrade request, its 101 read with the
 * src/h1 parser in the RESPONSE role, then the codec's frames on the connection. Output is pulled
 * at the end of the loop turn: the request head, then the codec's own buffer (no copy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ws_client_internal.h"

/* A header field from two NUL-terminated strings. */
static rill_header field(const char *name, const char *value)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), 0};
}

int wsc_h1_start(rill_websocket_client *c)
{
    conn_set_proto(&c->conn->c, &wsc_h1_proto); /* first: its free op cleans up after a failure */
    int rc = rill_ws_make_key(c->key);
    if (rc < 0)
        return rc;
    rill_header f[8];
    size_t n = 0;
    f[n++] = field("Host", c->authority);
    f[n++] = field("Upgrade", "websocket");
    f[n++] = field("Connection", "Upgrade");
    f[n++] = field("Sec-WebSocket-Key", c->key);
    f[n++] = field("Sec-WebSocket-Version", "13");
    if (!c->opt.no_deflate)
        f[n++] = field("Sec-WebSocket-Extensions", c->offer);
    if (c->origin)
        f[n++] = field("Origin", c->origin);
    if (c->subprotocol)
        f[n++] = field("Sec-WebSocket-Protocol", c->subprotocol);
    /* sized to the request: a long path or sub-protocol list must not fail silently */
    size_t need = strlen(c->path) + 32;
    for (size_t i = 0; i < n; i++)
        need += f[i].name_len + f[i].value_len + 4;
    free(c->head);
    c->head = malloc(need);
    c->head_len = c->head_off = 0;
    if (!c->head)
        return RILL_ERR_NOMEM;
    rc = rill_h1_write_request_head(c->head, need, &c->head_len, "GET", 3, c->path, strlen(c->path),
                                    f, n);
    if (rc < 0) {
        c->head_len = 0;
        return rc;
    }
    c->h1 = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    return c->h1 ? RILL_OK : RILL_ERR_NOMEM;
}

/* The response to the Upgrade, in whatever pieces it comes; bytes after the 101 are frames. */
static void read_response(rill_websocket_client *c, struct conn *conn, const uint8_t *data,
                          size_t len)
{
    size_t off = 0;
    while (off <= len && c->h1 && !conn->closing) {
        size_t used = 0;
        rill_h1_event ev;
        if (rill_h1_parse(c->h1, data + off, len - off, &used, &ev) < 0) {
            wsc_fail(c, "bad HTTP response: %s", rill_h1_error_text(rill_h1_parser_error(c->h1)));
            return;
        }
        off += used;
        if (ev.type == RILL_H1_EV_NONE)
            return;
        if (ev.type == RILL_H1_EV_HEAD && (ev.head->status == 101 || ev.head->status >= 200)) {
            if (!rill_h1_websocket_response_ok(ev.head, c->key, strlen(c->key))) {
                wsc_fail(c, "the server refused the WebSocket: HTTP %d", ev.head->status);
                return;
            }
            size_t pos = 0;
            const rill_header *ext = rill_h1_find_field(ev.head->fields, ev.head->nfields,
                                                        "sec-websocket-extensions", &pos);
            if (wsc_start_codec(c, ext ? (const char *)ext->value : NULL, ext ? ext->value_len : 0) < 0) {
                wsc_fail(c, "bad Sec-WebSocket-Extensions in the response");
                return;
            }
        }
        if (ev.type == RILL_H1_EV_END && ev.upgraded) {
            rill_h1_parser_free(c->h1);
            c->h1 = NULL;
            if (off < len && c->codec)
                rill_ws_recv(c->codec, data + off, len - off);
            return;
        }
    }
}

static void proto_data(struct conn *conn, const uint8_t *data, size_t len)
{
    rill_websocket_client *c = wsc_of(conn);
    if (c->h1)
        read_response(c, conn, data, len);
    else if (c->codec)
        rill_ws_recv(c->codec, data, len); /* a failure queues its Close frame */
}

static void proto_drain(struct conn *conn)
{
    conn_flush(conn);
}

/* The request head until it is out, then the codec's frames; the end once the codec is done and
 * its last frame (normally the Close) is out. */
static int proto_output(struct conn *conn, struct iovec *iov, int max)
{
    rill_websocket_client *c = wsc_of(conn);
    int n = 0;
    if (c->head_off < c->head_len && n < max)
        iov[n++] = (struct iovec){c->head + c->head_off, c->head_len - c->head_off};
    const uint8_t *p;
    size_t len;
    if (c->codec && n < max && (len = rill_ws_output(c->codec, &p)) > 0)
        iov[n++] = (struct iovec){(void *)p, len};
    if (n == 0 && c->codec && rill_ws_is_done(c->codec) && !conn->closing)
        conn_close(conn); /* RFC 6455 §7.1.1: the server should close first; we do not wait */
    return n;
}

static void proto_output_sent(struct conn *conn, size_t n)
{
    rill_websocket_client *c = wsc_of(conn);
    size_t head = c->head_len - c->head_off;
    if (head) {
        size_t k = n < head ? n : head;
        c->head_off += k;
        n -= k;
        if (c->head_off == c->head_len) {
            free(c->head);
            c->head = NULL;
            c->head_len = c->head_off = 0;
        }
    }
    if (n && c->codec)
        rill_ws_output_sent(c->codec, n);
}

static void proto_free(struct conn *conn)
{
    rill_websocket_client *c = wsc_of(conn);
    rill_h1_parser_free(c->h1);
    c->h1 = NULL;
    free(c->head);
    c->head = NULL;
    c->head_len = c->head_off = 0;
}

const struct conn_proto wsc_h1_proto = {
    .name = "WebSocket over HTTP/1.1",
    .data = proto_data,
    .drain = proto_drain,
    .output = proto_output,
    .output_sent = proto_output_sent,
    .free = proto_free,
};
