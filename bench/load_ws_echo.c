/* WebSocket echo load generator: N WebSockets each keep one message in flight against an echo
 * endpoint, over one HTTP/2 connection (RFC 8441 streams) or N HTTP/1.1 connections. Prints the
 * messages echoed and the seconds taken; bench/ws_bench.py runs it against rill and Node's ws.
 *
 * usage: load_ws_echo h2|h1 HOST:PORT PATH SOCKETS MESSAGE_BYTES SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/h1.h"
#include "rill/h2.h"
#include "rill/io.h"
#include "rill/ws.h"

struct sock {
    struct bench *b;
    rill_ws *codec;
    int32_t stream;     /* h2 */
    rill_io_conn *conn; /* h1 */
    rill_h1_parser *h1;
    char key[RILL_WS_KEY_LEN + 1];
};

struct bench {
    rill_io_loop *loop;
    bool h2mode;
    struct rill_io_addr addr;
    const char *authority, *path;
    rill_io_conn *conn; /* h2 */
    rill_h2_session *h2;
    struct sock *socks;
    int n, open;
    uint8_t *payload;
    size_t size;
    uint64_t echoed, start_ms, end_ms;
    unsigned seconds;
    uint32_t rng;
};

static int fast_mask(uint8_t key[4], void *user)
{
    struct sock *s = user;
    s->b->rng = s->b->rng * 1103515245u + 12345u; /* masking keys need not be secret here */
    memcpy(key, &s->b->rng, 4);
    return 0;
}

static void flush_h2(struct bench *b);

static void flush_sock(struct sock *s)
{
    const uint8_t *p;
    size_t n;
    while ((n = rill_ws_output(s->codec, &p)) > 0) {
        if (s->b->h2mode) {
            uint8_t *copy = malloc(n);
            memcpy(copy, p, n);
            rill_h2_submit_data(s->b->h2, s->stream, copy, n, 0, copy);
        } else {
            rill_io_conn_write(s->conn, p, n);
        }
        rill_ws_output_sent(s->codec, n);
    }
}

static void flush_h2(struct bench *b)
{
    if (!b->h2)
        return;
    struct iovec iov[64];
    int n;
    while ((n = rill_h2_session_output(b->h2, iov, 64)) > 0) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        rill_io_conn_writev(b->conn, iov, n);
        rill_h2_session_output_sent(b->h2, total);
    }
}

static void send_one(struct sock *s)
{
    rill_ws_send(s->codec, RILL_WS_OP_BINARY, s->b->payload, s->b->size);
    flush_sock(s);
}

static int on_message(unsigned op, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    struct sock *s = user;
    struct bench *b = s->b;
    if (len != b->size) {
        fprintf(stderr, "load_ws_echo: echo of %zu bytes came back as %zu\n", b->size, len);
        exit(1);
    }
    b->echoed++;
    if (rill_io_loop_now_ms(b->loop) < b->end_ms)
        send_one(s);
    else if (--b->open == 0)
        rill_io_loop_stop(b->loop);
    return 0;
}

static void opened(struct sock *s)
{
    static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = on_message,
                                         .mask_key = fast_mask};
    s->codec = rill_ws_new(RILL_WS_CLIENT, NULL, &cb, s);
    struct bench *b = s->b;
    if (++b->open == b->n) { /* everyone connected: the clock starts */
        b->start_ms = rill_io_now_ms();
        b->end_ms = b->start_ms + b->seconds * 1000u;
        for (int i = 0; i < b->n; i++)
            send_one(&b->socks[i]);
    }
}

/* ---- HTTP/2 ---- */

static int h2_settings(rill_h2_session *h2, const rill_h2_settings *peer, void *user)
{
    struct bench *b = user;
    if (!peer->enable_connect_protocol) {
        fprintf(stderr, "load_ws_echo: the server does not offer extended CONNECT\n");
        exit(1);
    }
    for (int i = 0; i < b->n; i++) {
        if (b->socks[i].stream)
            continue;
        rill_header f[] = {
            {(const uint8_t *)":method", 7, (const uint8_t *)"CONNECT", 7, 0},
            {(const uint8_t *)":protocol", 9, (const uint8_t *)"websocket", 9, 0},
            {(const uint8_t *)":scheme", 7, (const uint8_t *)"http", 4, 0},
            {(const uint8_t *)":path", 5, (const uint8_t *)b->path, strlen(b->path), 0},
            {(const uint8_t *)":authority", 10, (const uint8_t *)b->authority, strlen(b->authority), 0},
            {(const uint8_t *)"sec-websocket-version", 21, (const uint8_t *)"13", 2, 0},
        };
        b->socks[i].stream = rill_h2_submit_request(h2, f, 6, 0, &b->socks[i]);
        if (b->socks[i].stream < 0) {
            fprintf(stderr, "load_ws_echo: cannot open stream %d\n", i);
            exit(1);
        }
    }
    return 0;
}

static int h2_headers(rill_h2_session *h2, int32_t id, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    struct sock *s = rill_h2_stream_user(h2, id);
    if (kind == RILL_H2_HEADERS_RESPONSE && s)
        opened(s);
    return 0;
}

static int h2_data(rill_h2_session *h2, int32_t id, const uint8_t *data, size_t len, void *user)
{
    struct sock *s = rill_h2_stream_user(h2, id);
    if (s)
        rill_ws_recv(s->codec, data, len);
    rill_h2_consume(h2, id, len);
    return 0;
}

static void h2_released(rill_h2_session *h2, int32_t id, void *token, void *user)
{
    free(token);
}

static const rill_h2_callbacks h2_cb = {.size = sizeof h2_cb, .on_settings = h2_settings, .on_headers = h2_headers,
                                        .on_data = h2_data, .on_data_released = h2_released};

/* ---- the HTTP/2 connection ---- */

static void h2_open(rill_io_conn *conn, const char *alpn)
{
    struct bench *b = rill_io_conn_user(conn);
    rill_h2_options o;
    rill_h2_options_init(&o, RILL_H2_CLIENT);
    o.local.enable_push = 0;
    o.local.initial_window_size = 1u << 24;
    o.connection_window = 1u << 30;
    b->h2 = rill_h2_session_new(RILL_H2_CLIENT, &o, &h2_cb, b);
    flush_h2(b);
}

static void h2_conn_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    struct bench *b = rill_io_conn_user(conn);
    if (rill_h2_session_recv(b->h2, data, len) < 0) {
        fprintf(stderr, "load_ws_echo: HTTP/2 connection failed\n");
        exit(1);
    }
    flush_h2(b);
}

static void lost(struct bench *b, int err)
{
    if (!b->start_ms || rill_io_loop_now_ms(b->loop) < b->end_ms) {
        fprintf(stderr, "load_ws_echo: connection lost: %s\n", rill_strerror(err));
        exit(1);
    }
}

static void h2_conn_close(rill_io_conn *conn, int err)
{
    lost(rill_io_conn_user(conn), err);
}

static const struct rill_io_conn_callbacks h2_conn_cb = {
    .size = sizeof h2_conn_cb,
    .on_open = h2_open, .on_data = h2_conn_data, .on_close = h2_conn_close};

/* ---- HTTP/1.1 connections, one per socket ---- */

static void h1_open(rill_io_conn *conn, const char *alpn)
{
    struct sock *s = rill_io_conn_user(conn);
    rill_ws_make_key(s->key);
#define F(n, v) {(const uint8_t *)(n), strlen(n), (const uint8_t *)(v), strlen(v), 0}
    rill_header f[] = {F("Host", s->b->authority), F("Upgrade", "websocket"),
                       F("Connection", "Upgrade"), F("Sec-WebSocket-Key", s->key),
                       F("Sec-WebSocket-Version", "13")};
#undef F
    uint8_t buf[1024];
    size_t len;
    rill_h1_write_request_head(buf, sizeof buf, &len, "GET", 3, s->b->path, strlen(s->b->path), f, 5);
    rill_io_conn_write(conn, buf, len);
    s->h1 = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
}

static void h1_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    struct sock *s = rill_io_conn_user(conn);
    if (s->h1) {
        size_t off = 0, used;
        rill_h1_event ev;
        while (rill_h1_parse(s->h1, data + off, len - off, &used, &ev) == 0 && ev.type) {
            off += used;
            if (ev.type == RILL_H1_EV_END && ev.upgraded) {
                rill_h1_parser_free(s->h1);
                s->h1 = NULL;
                opened(s);
                if (off < len)
                    rill_ws_recv(s->codec, data + off, len - off);
                return;
            }
        }
        return;
    }
    rill_ws_recv(s->codec, data, len);
}

static void h1_close(rill_io_conn *conn, int err)
{
    struct sock *s = rill_io_conn_user(conn);
    lost(s->b, err);
}

static const struct rill_io_conn_callbacks h1_conn_cb = {
    .size = sizeof h1_conn_cb,
    .on_open = h1_open, .on_data = h1_data, .on_close = h1_close};

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: load_ws_echo h2|h1 HOST:PORT PATH SOCKETS BYTES SECONDS\n");
        return 2;
    }
    struct bench b = {.h2mode = strcmp(argv[1], "h2") == 0, .authority = argv[2], .path = argv[3],
                      .n = atoi(argv[4]), .size = (size_t)atol(argv[5]),
                      .seconds = (unsigned)atoi(argv[6]), .rng = 12345};
    char err[256];
    if (rill_io_addr_parse(b.authority, &b.addr, err, sizeof err) < 0 || b.n <= 0) {
        fprintf(stderr, "load_ws_echo: %s\n", err);
        return 2;
    }
    b.payload = malloc(b.size ? b.size : 1);
    for (size_t i = 0; i < b.size; i++)
        b.payload[i] = (uint8_t)(i * 31 + 7);
    b.socks = calloc((size_t)b.n, sizeof *b.socks);
    rill_io_loop_new(NULL, &b.loop);
    for (int i = 0; i < b.n; i++)
        b.socks[i].b = &b;
    if (b.h2mode) {
        rill_io_connect(b.loop, &b.addr, NULL, NULL, &h2_conn_cb, &b, &b.conn);
    } else {
        for (int i = 0; i < b.n; i++)
            rill_io_connect(b.loop, &b.addr, NULL, NULL, &h1_conn_cb, &b.socks[i], &b.socks[i].conn);
    }
    rill_io_loop_run(b.loop);
    double secs = (double)(rill_io_now_ms() - b.start_ms) / 1000.0;
    printf("{\"echoed\": %llu, \"seconds\": %.3f}\n", (unsigned long long)b.echoed, secs);
    return 0;
}
