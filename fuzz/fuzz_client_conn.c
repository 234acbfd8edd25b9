/* Fuzzes the client's side of a connection: a real rill_client (HTTP/1.1, h2c by prior knowledge,
 * or h2c by Upgrade) connects to a listening socket of ours, sends its requests (a GET, a HEAD, a
 * streamed POST with trailers, a paused GET), and the input is what the "server" answers: written
 * in pieces, each on a later loop turn, so every piece is a separate read on the client's side.
 * Hostile answers (bad heads, frames out of order, SETTINGS floods, GOAWAY, PUSH_PROMISE, resets,
 * HPACK garbage, a 101 followed by anything) must end every request exactly once, with no crash,
 * leak or UB, within a time budget.
 *
 * Input: a control byte, then the bytes the server sends. Control byte, low 3 bits: the largest
 * piece (fuzz_split.h); bits 3-4: 0 HTTP/1.1, 1 h2c prior knowledge, 2 the h2c Upgrade, 3 HTTP/1.1
 * with a 100-continue POST; bit 5: push enabled (every other push cancelled at once); bit 6:
 * HTTP/1.1 may use a pool of 3 connections (else 1, so that the answers go to the requests one
 * after another on one keep-alive connection, plain HTTP/1.1 with GET /d pipelined behind the
 * HEAD, before the POST): the first is the one answered, the others are
 * closed as soon as they are accepted, with a request on them or not; bit 7: a WebSocket on the
 * client too (rill_client_websocket: a CONNECT stream when the answers' SETTINGS allow it, else
 * a connection of its own, which is closed at once), which must end once (on_close); it also
 * seeds the cut schedule. For HTTP/2 the client's preface is not
 * waited for: the bytes are what a server would send once connected. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_split.h"
#include "rill/client.h"
#include "rill/io.h"

#define BUDGET_MS 400 /* per input: pieces are a turn apart, answers a few KiB */
#define NREQ 4

static int listen_fd = -1;
static int port;

struct run {
    rill_io_loop *loop;
    rill_client *client;
    rill_io_watcher *accept_watch, *peer_watch;
    rill_io_timer *piece_timer, *budget_timer;
    int peer;
    const uint8_t *data;
    size_t len, off;
    struct fuzz_cuts cuts;
    int ended[NREQ];
    bool responded[NREQ];
    int open;
    rill_client_stream *upload;
    rill_client_stream *paused; /* request 3, paused at its head until the next piece */
    rill_websocket_client *ws;  /* bit 7 */
    int ws_closed;
    bool paused_once;
    bool shut; /* our side is closed */
};

struct req {
    struct run *r;
    int i;
};
static struct req reqs[NREQ];

/* Pushed streams (bit 5): their callbacks carry the parent's user, so they are told apart by
 * pointer. State bit 1: head seen; bit 2: ended. */
#define MAX_PUSHED 256
static rill_client_stream *pushed_set[MAX_PUSHED];
static int pushed_state[MAX_PUSHED], npushed;

static int pushed_index(const rill_client_stream *st)
{
    for (int i = 0; i < npushed; i++)
        if (pushed_set[i] == st)
            return i;
    return -1;
}

static void stop_if_done(struct run *r)
{
    if (r->open == 0)
        rill_io_loop_stop(r->loop);
}

static void on_informational(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    (void)f, (void)n;
    struct req *q = user;
    int k = pushed_index(st);
    if (status < 100 || status > 199 || (k >= 0 ? pushed_state[k] & 1 : q->r->responded[q->i]))
        abort(); /* 1xx only, and only before the final head */
}

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    struct req *q = user;
    int k = pushed_index(st);
    if (k >= 0) {
        if (pushed_state[k] & 1 || status < 200 || status > 999)
            abort();
        pushed_state[k] |= 1;
        return;
    }
    if (q->r->responded[q->i] || status < 200 || status > 999)
        abort(); /* one final head per request */
    q->r->responded[q->i] = true;
    for (size_t i = 0; i < n; i++)
        if (!f[i].name || (!f[i].value && f[i].value_len))
            abort();
    if (q->i == 3 && !q->r->paused_once) { /* back-pressure: pause, resume on the next piece */
        q->r->paused_once = true;
        q->r->paused = st;
        rill_client_stream_pause(st, true);
        if (!rill_io_timer_armed(q->r->piece_timer)) /* the resume comes with a later tick */
            rill_io_timer_arm(q->r->piece_timer, 0);
    }
}

static volatile uint8_t data_sum; /* every byte handed over is read: ASan sees a stale pointer */

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    struct req *q = user;
    int k = pushed_index(st);
    if (!(k >= 0 ? pushed_state[k] & 1 : q->r->responded[q->i]) || !len)
        abort(); /* body bytes only after the head, never empty */
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + data[i]);
    data_sum = sum;
}

/* The gathered form (GET /a and /d, and their pushes): the same rules for every piece. */
static void on_data_v(rill_client_stream *st, const struct iovec *pieces, int n, void *user)
{
    if (n < 1)
        abort();
    for (int i = 0; i < n; i++)
        on_data(st, pieces[i].iov_base, pieces[i].iov_len, user);
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct req *q = user;
    int k = pushed_index(st);
    if ((err && !why) || (!err && why))
        abort(); /* a failure always says why */
    if (k >= 0) {
        if (pushed_state[k] & 2)
            abort(); /* once */
        pushed_state[k] |= 2;
        pushed_set[k] = NULL; /* freed after this: its address may come back */
        q->r->open--;
        stop_if_done(q->r);
        return;
    }
    if (q->r->ended[q->i]++)
        abort(); /* once */
    if (q->i == 2)
        q->r->upload = NULL;
    if (q->i == 3)
        q->r->paused = NULL;
    q->r->open--;
    stop_if_done(q->r);
}

/* A pushed response comes through the same callbacks with the parent's user: it is counted as
 * one more open stream, and every other one is refused at once. */
static void on_push(rill_client_stream *st, rill_client_stream *pushed, const rill_header *f,
                    size_t n, void *user)
{
    (void)st, (void)f, (void)n;
    struct req *q = user;
    if (!pushed || npushed == MAX_PUSHED || pushed_index(pushed) >= 0)
        abort(); /* a new stream each time; more than the test's pushes cannot be promised */
    pushed_set[npushed] = pushed;
    pushed_state[npushed++] = 0;
    q->r->open++;
    if (npushed % 2 == 0)
        rill_client_stream_cancel(pushed);
}

static void on_drain(rill_client_stream *st, void *user)
{
    (void)st, (void)user;
}

static const rill_client_callbacks cb = {.size = sizeof cb,
                                         .on_response = on_response,
                                         .on_data = on_data,
                                         .on_end = on_end,
                                         .on_drain = on_drain,
                                         .on_informational = on_informational,
                                         .on_push = on_push};
static rill_client_callbacks cb_v; /* cb with on_data_v instead of on_data (set up once) */

static void ws_open(rill_websocket_client *ws, const char *transport, bool compressed, void *user)
{
    (void)transport, (void)compressed, (void)user;
    rill_websocket_client_send(ws, 1 /* text */, "hello", 5);
}

static void ws_close(rill_websocket_client *ws, unsigned code, const char *why, void *user)
{
    (void)ws, (void)code, (void)why;
    struct run *r = user;
    if (r->ws_closed++)
        abort(); /* once */
    r->open--;
    stop_if_done(r);
}

/* Drops what the client sends (its requests); the answer does not depend on them. */
static void peer_event(rill_io_watcher *w, int fd, unsigned events, void *user)
{
    (void)w, (void)events, (void)user;
    uint8_t buf[16384];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

static void next_piece(rill_io_timer *t, void *arg)
{
    struct run *r = arg;
    if (r->peer < 0)
        return;
    if (r->off < r->len) {
        size_t n = fuzz_cuts_next(&r->cuts, r->len - r->off);
        ssize_t w = send(r->peer, r->data + r->off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0)
            r->off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            r->off = r->len; /* the client closed: nothing more to say */
    } else if (!r->shut) {
        shutdown(r->peer, SHUT_WR); /* all said: the client sees the end */
        r->shut = true;
    }
    if (r->paused) { /* held for one piece: what arrived meanwhile comes out in order */
        rill_client_stream_pause(r->paused, false);
        r->paused = NULL;
    }
    if (r->off < r->len || !r->shut)
        rill_io_timer_arm(t, 0);
}

static void accept_event(rill_io_watcher *w, int fd, unsigned events, void *user)
{
    (void)events;
    struct run *r = user;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    (void)w;
    if (r->peer >= 0) { /* a second connection (a retry, a reconnect): closed at once */
        close(c);
        return;
    }
    r->peer = c;
    rill_io_watch(r->loop, c, RILL_IO_READABLE, peer_event, r, &r->peer_watch);
    rill_io_timer_arm(r->piece_timer, 0);
}

static void budget(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_io_loop_stop(((struct run *)arg)->loop);
}

static void setup(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(listen_fd, 64) < 0 || getsockname(listen_fd, (struct sockaddr *)&a, &alen) < 0)
        abort();
    port = ntohs(a.sin_port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (listen_fd < 0)
        setup();
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    struct run r = {.peer = -1, .data = data + 1, .len = size - 1};
    npushed = 0;
    fuzz_cuts_init(&r.cuts, fuzz_cuts_class(ctl), ctl);
    if (rill_io_loop_new(NULL, &r.loop) < 0)
        abort();
    rill_client_options opt;
    rill_client_options_init(&opt);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    opt.url = url;
    unsigned mode = ctl >> 3 & 3;
    opt.h2_prior_knowledge = mode == 1;
    opt.h2c_upgrade = mode == 2;
    opt.stream_buffer = 64;
    opt.enable_push = (ctl & 0x20) != 0;
    opt.max_connections = ctl & 0x40 ? 3 : 1;
    /* Plain HTTP/1.1 on one connection pipelines, and GET /d is made before the POST so that it
     * goes behind the HEAD: answers for queued requests, a paused one among them. */
    bool pipelined = mode == 0 && !(ctl & 0x40);
    opt.max_pipeline = pipelined ? 4 : 0;
    if (rill_client_new(r.loop, &opt, &r.client, NULL, 0) < 0)
        abort();
    r.piece_timer = rill_io_timer_new(r.loop, next_piece, &r);
    r.budget_timer = rill_io_timer_new(r.loop, budget, &r);
    if (!r.piece_timer || !r.budget_timer ||
        rill_io_watch(r.loop, listen_fd, RILL_IO_READABLE, accept_event, &r, &r.accept_watch) < 0)
        abort();
    if (!cb_v.size) {
        cb_v = cb;
        cb_v.on_data = NULL;
        cb_v.on_data_v = on_data_v;
    }
    for (int i = 0; i < NREQ; i++)
        reqs[i] = (struct req){&r, i};
    static const rill_header accept[] = {{(const uint8_t *)"accept", 6, (const uint8_t *)"*/*", 3, 0}};
    static const rill_header expect[] = {
        {(const uint8_t *)"expect", 6, (const uint8_t *)"100-continue", 12, 0}};
    if (rill_client_request(r.client, "GET", "/a", accept, 1, NULL, 0, &cb_v, &reqs[0], NULL) == 0)
        r.open++;
    if (rill_client_request(r.client, "HEAD", "/b", NULL, 0, NULL, 0, &cb, &reqs[1], NULL) == 0)
        r.open++;
    if (pipelined &&
        rill_client_request(r.client, "GET", "/d", NULL, 0, NULL, 0, &cb_v, &reqs[3], NULL) == 0)
        r.open++;
    if (rill_client_request_stream(r.client, "POST", "/c", mode == 3 ? expect : NULL, mode == 3,
                                   &cb, &reqs[2], &r.upload) == 0) {
        r.open++;
        rill_client_stream_write(r.upload, "abcdefgh", 8);
        static const rill_header trailer[] = {{(const uint8_t *)"x-sum", 5, (const uint8_t *)"1", 1, 0}};
        rill_client_stream_end(r.upload, mode == 3 ? NULL : trailer, mode == 3 ? 0 : 1);
    }
    if (!pipelined &&
        rill_client_request(r.client, "GET", "/d", NULL, 0, NULL, 0, &cb_v, &reqs[3], NULL) == 0)
        r.open++;
    static const rill_websocket_client_callbacks ws_cb = {
        .size = sizeof ws_cb, .on_open = ws_open, .on_close = ws_close};
    if ((ctl & 0x80) && rill_client_websocket(r.client, "/ws", NULL, &ws_cb, &r, &r.ws, NULL, 0) == 0)
        r.open++;
    rill_io_timer_arm(r.budget_timer, BUDGET_MS);
    if (r.open > 0)
        rill_io_loop_run(r.loop); /* until every request ended, or the budget */
    if (r.open > 0 && r.shut && mode != 3) {
        /* The server has closed: nothing can keep a request open for long now (a 100-continue
         * wait, mode 3, may take a second). Another moment, then it is a hang. */
        rill_io_timer_arm(r.budget_timer, 300);
        rill_io_loop_run(r.loop);
        if (r.open > 0 && getenv("FUZZ_NO_HANG_CHECK") == NULL)
            abort();
    }
    rill_websocket_client_free(r.ws); /* before or after the client: both are allowed */
    rill_client_free(r.client); /* requests still open end without on_end: the budget ran out */
    rill_io_timer_free(r.piece_timer);
    rill_io_timer_free(r.budget_timer);
    rill_io_unwatch(r.peer_watch);
    rill_io_unwatch(r.accept_watch);
    if (r.peer >= 0)
        close(r.peer);
    /* a connection the client made but we never accepted */
    int c;
    while ((c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
        close(c);
    rill_io_loop_free(r.loop);
    return 0;
}
