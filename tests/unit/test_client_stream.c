/* The request client's streaming: request bodies written piece by piece with back-pressure
 * (rill_client_request_stream, _write, _end, on_drain), paused downloads (rill_client_stream_pause),
 * 1xx responses (on_informational) and GOAWAY (requests above its last stream id sent again when
 * that is safe). The peers run on threads: rill's own HTTP/1.1 parser (request role) and HTTP/2
 * engine (server role), their answers written in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "rill/client.h"
#include "rill/h1.h"
#include "rill/h2.h"
#include "test_io_util.h"

/* ---- shared ------------------------------------------------------------------------------------ */


static char *url_of(uint16_t port)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%u/", port);
    return buf;
}

/* The body bytes of the tests: a pattern that does not repeat at any power of two. */
static uint8_t body_byte(uint64_t i)
{
    return (uint8_t)(i * 31u + i / 251u + 7u);
}

static void fill(uint8_t *buf, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = body_byte(off + i);
}

/* FNV-1a, to compare what was sent and what arrived. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint64_t fnv_pattern(uint64_t total)
{
    uint8_t buf[4096];
    uint64_t h = FNV0;
    for (uint64_t off = 0; off < total; off += sizeof buf) {
        size_t n = total - off < sizeof buf ? (size_t)(total - off) : sizeof buf;
        fill(buf, off, n);
        h = fnv(h, buf, n);
    }
    return h;
}


static rill_client *client_for(rill_io_loop *loop, uint16_t port, bool h2, size_t stream_buffer)
{
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(port);
    o.h2_prior_knowledge = h2;
    o.request_timeout_ms = 60000; /* a lost event fails the test instead of hanging it */
    if (stream_buffer)
        o.stream_buffer = stream_buffer;
    rill_client *c;
    assert_int_equal(rill_client_new(loop, &o, &c, NULL, 0), RILL_OK);
    return c;
}

/* ---- a request body writer driven by on_drain --------------------------------------------------- */

struct writer {
    rill_io_loop *loop;
    rill_client_stream *st;
    uint64_t total, off;
    size_t piece;
    size_t cap;          /* the client's stream_buffer */
    size_t max_buffered; /* the most the stream held */
    int drains;
    bool blocked, ended;
    bool trailers;       /* end with x-sum: the body's FNV */
    /* the response */
    int informational[4];
    char link[64];
    int ninfo;
    int status;
    char body[128];
    size_t body_len;
    char trailer[64];
    int err;
    char why[200];
    char proto[12];
    bool done;
};

static void writer_pump(struct writer *w)
{
    uint8_t buf[65536];
    assert_true(w->piece <= sizeof buf);
    while (!w->ended) {
        if (w->off == w->total) {
            char sum[32];
            snprintf(sum, sizeof sum, "%016llx", (unsigned long long)fnv_pattern(w->total));
            const rill_header t[] = {
                {(const uint8_t *)"X-Sum", 5, (const uint8_t *)sum, strlen(sum), 0}};
            assert_int_equal(rill_client_stream_end(w->st, w->trailers ? t : NULL, w->trailers),
                             RILL_OK);
            w->ended = true;
            return;
        }
        size_t n = w->total - w->off < w->piece ? (size_t)(w->total - w->off) : w->piece;
        fill(buf, w->off, n);
        int rc = rill_client_stream_write(w->st, buf, n);
        assert_true(rc == RILL_OK || rc == RILL_ERR_WOULD_BLOCK);
        w->off += n;
        size_t b = rill_client_stream_buffered(w->st);
        if (b > w->max_buffered)
            w->max_buffered = b;
        if (rc == RILL_ERR_WOULD_BLOCK) {
            assert_true(b >= w->cap);
            /* Ignoring the signal is refused, and nothing is taken. */
            assert_int_equal(rill_client_stream_write(w->st, buf, 1), RILL_ERR_LIMIT);
            assert_int_equal(rill_client_stream_buffered(w->st), b);
            w->blocked = true;
            return;
        }
    }
}

static void w_drain(rill_client_stream *st, void *user)
{
    struct writer *w = user;
    assert_true(w->blocked);
    assert_true(rill_client_stream_buffered(st) <= w->cap / 2);
    w->blocked = false;
    w->drains++;
    writer_pump(w);
}

static void w_info(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    struct writer *w = user;
    if (w->ninfo < 4)
        w->informational[w->ninfo++] = status;
    for (size_t i = 0; i < n; i++)
        if (f[i].name_len == 4 && strncasecmp((const char *)f[i].name, "link", 4) == 0)
            snprintf(w->link, sizeof w->link, "%.*s", (int)f[i].value_len, (const char *)f[i].value);
}

static void w_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                       void *user)
{
    ((struct writer *)user)->status = status;
}

static void w_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct writer *w = user;
    if (w->body_len + n < sizeof w->body) {
        memcpy(w->body + w->body_len, d, n);
        w->body_len += n;
    }
}

static void w_trailers(rill_client_stream *st, const rill_header *f, size_t n, void *user)
{
    struct writer *w = user;
    if (n)
        snprintf(w->trailer, sizeof w->trailer, "%.*s=%.*s", (int)f[0].name_len,
                 (const char *)f[0].name, (int)f[0].value_len, (const char *)f[0].value);
}

static void w_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct writer *w = user;
    w->err = err;
    snprintf(w->why, sizeof w->why, "%s", why ? why : "");
    const char *proto = rill_client_stream_protocol(st);
    snprintf(w->proto, sizeof w->proto, "%s", proto ? proto : "");
    if (err && err != RILL_ERR_INVALID_ARG)
        fprintf(stderr, "request failed: %s\n", why);
    w->done = true;
    rill_io_loop_stop(w->loop);
}

static const rill_client_callbacks writer_cb = {
    .size = sizeof writer_cb, .on_response = w_response, .on_data = w_data,
    .on_trailers = w_trailers, .on_end = w_end, .on_drain = w_drain, .on_informational = w_info};

/* ---- arguments ----------------------------------------------------------------------------------- */

static void stream_arguments(void **state)
{
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    assert_int_equal(o.stream_buffer, 256u << 10);
    rill_client *c = client_for(loop, 9, false, 0);
    rill_client_stream *st;
    /* out is required: without it nobody could write the body. */
    assert_int_equal(rill_client_request_stream(c, "POST", "/", NULL, 0, NULL, NULL, NULL),
                     RILL_ERR_INVALID_ARG);
    const rill_header bad[] = {{(const uint8_t *)"Content-Length", 14, (const uint8_t *)"1x", 2, 0}};
    assert_int_equal(rill_client_request_stream(c, "POST", "/", bad, 1, NULL, NULL, &st),
                     RILL_ERR_INVALID_ARG);
    assert_null(st);
    /* A buffered request takes no writes. */
    assert_int_equal(rill_client_request(c, "POST", "/", NULL, 0, "x", 1, NULL, NULL, &st), RILL_OK);
    assert_int_equal(rill_client_stream_write(st, "y", 1), RILL_ERR_STATE);
    assert_int_equal(rill_client_stream_end(st, NULL, 0), RILL_ERR_STATE);
    /* A caller built before on_drain and on_informational existed. */
    rill_client_callbacks old = {.size = offsetof(rill_client_callbacks, on_drain)};
    assert_int_equal(rill_client_request_stream(c, "PUT", "/", NULL, 0, &old, NULL, &st), RILL_OK);
    assert_int_equal(rill_client_stream_write(st, NULL, 0), RILL_OK);
    assert_int_equal(rill_client_stream_write(st, NULL, 1), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_client_stream_write(st, "abc", 3), RILL_OK);
    assert_int_equal(rill_client_stream_buffered(st), 3);
    const rill_header colon[] = {{(const uint8_t *)":x", 2, (const uint8_t *)"1", 1, 0}};
    assert_int_equal(rill_client_stream_end(st, colon, 1), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_client_stream_end(st, NULL, 0), RILL_OK);
    assert_int_equal(rill_client_stream_end(st, NULL, 0), RILL_ERR_STATE);
    assert_int_equal(rill_client_stream_write(st, "d", 1), RILL_ERR_STATE);
    rill_client_free(c); /* never sent: freed silently, with their bodies */
    rill_io_loop_free(loop);
}

/* ---- HTTP/1.1: rill's parser reads the request ------------------------------------------------- */

struct h1srv {
    int lfd;
    uint16_t port;
    pthread_t thread;
    int conns;             /* connections to serve, one request each */
    const char *answer;    /* the response to each complete request */
    size_t piece;          /* the answer in writes of this many bytes */
    bool slow;             /* read in small pieces, slowly */
    int expect;            /* a request with Expect: 100-continue: 0 ignore it, 1 answer 100 after
                              a moment, 2 answer `answer` at once without reading the body */
    size_t early[4];       /* body bytes that came before the 100 (or the early answer) */
    bool nap_after_head;   /* read nothing for 1.5 s after a head (a stalled reader) */
    bool answered_early;
    /* what arrived, per connection */
    bool chunked[4], complete[4];
    char content_length[4][24];
    uint64_t body[4], hash[4];
    char trailer[4][64];
    int requests;
};

static void *h1srv_run(void *arg)
{
    struct h1srv *s = arg;
    for (int k = 0; k < s->conns; k++) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0)
            break;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        set_timeouts(fd, 20000);
        rill_h1_parser *ps = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
        s->hash[k] = FNV0;
        uint8_t buf[65536];
        bool end = false;
        unsigned turn = 0;
        while (!end) {
            /* Slow: small reads a moment apart, so the client's socket fills and the body waits. */
            size_t want = s->slow ? 1 + (turn * 7919u) % 8192 : sizeof buf;
            if (s->slow && turn++ % 16 == 0)
                usleep(1000);
            ssize_t r = recv(fd, buf, want, 0);
            if (r <= 0)
                break;
            size_t off = 0;
            while (!end) { /* until NONE: END may follow the last byte without input */
                size_t used = 0;
                rill_h1_event ev;
                if (rill_h1_parse(ps, buf + off, (size_t)r - off, &used, &ev) < 0) {
                    fprintf(stderr, "server: %s\n", rill_h1_error_text(rill_h1_parser_error(ps)));
                    end = true; /* malformed: complete stays false */
                    break;
                }
                off += used;
                if (ev.type == RILL_H1_EV_NONE)
                    break;
                if (ev.type == RILL_H1_EV_HEAD) {
                    bool expect = false;
                    for (size_t i = 0; i < ev.head->nfields; i++) {
                        const rill_header *f = &ev.head->fields[i];
                        expect |= rill_h1_name_eq((const char *)f->name, f->name_len, "expect");
                        if (rill_h1_name_eq((const char *)f->name, f->name_len, "transfer-encoding"))
                            s->chunked[k] = f->value_len == 7 && !memcmp(f->value, "chunked", 7);
                        if (rill_h1_name_eq((const char *)f->name, f->name_len, "content-length"))
                            snprintf(s->content_length[k], 24, "%.*s", (int)f->value_len,
                                     (const char *)f->value);
                    }
                    if (s->nap_after_head)
                        usleep(1500000);
                    if (expect && s->expect) {
                        /* The client waits for us: nothing of the body comes meanwhile. */
                        usleep(300000);
                        uint8_t peek[4096];
                        ssize_t more = recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
                        s->early[k] = (size_t)r - off + (more > 0 ? (size_t)more : 0);
                        if (s->expect == 1) {
                            static const char c100[] = "HTTP/1.1 100 Continue\r\n\r\n";
                            send_in_pieces(fd, c100, sizeof c100 - 1, s->piece);
                        } else {
                            send_in_pieces(fd, s->answer, strlen(s->answer), s->piece);
                            s->answered_early = true;
                            end = true;
                        }
                    }
                } else if (ev.type == RILL_H1_EV_BODY) {
                    s->body[k] += ev.len;
                    s->hash[k] = fnv(s->hash[k], ev.data, ev.len);
                } else if (ev.type == RILL_H1_EV_TRAILERS && ev.nfields) {
                    snprintf(s->trailer[k], 64, "%.*s=%.*s", (int)ev.fields[0].name_len,
                             (const char *)ev.fields[0].name, (int)ev.fields[0].value_len,
                             (const char *)ev.fields[0].value);
                } else if (ev.type == RILL_H1_EV_END) {
                    s->complete[k] = true;
                    s->requests++;
                    end = true;
                }
            }
        }
        if (s->complete[k] && !s->answered_early)
            send_in_pieces(fd, s->answer, strlen(s->answer), s->piece);
        char b[256];
        while (recv(fd, b, sizeof b, 0) > 0) { /* until the client closes */
        }
        rill_h1_parser_free(ps);
        close(fd);
    }
    return NULL;
}

static void h1srv_init(struct h1srv *s, int conns, const char *answer, size_t piece, bool slow)
{
    memset(s, 0, sizeof *s);
    s->lfd = tcp_listen_any(&s->port);
    s->conns = conns;
    s->answer = answer;
    s->piece = piece;
    s->slow = slow;
}

static void h1srv_start(struct h1srv *s, int conns, const char *answer, size_t piece, bool slow)
{
    h1srv_init(s, conns, answer, piece, slow);
    pthread_create(&s->thread, NULL, h1srv_run, s);
}

static void h1srv_stop(struct h1srv *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* A 3 MiB body of unknown length goes chunked, with a trailer, at the pace of a slow reader:
 * the stream never holds more than stream_buffer plus one write, on_drain refills it. The answer
 * brings 100 and 103 first; it arrives whole, a byte per write and in 7-byte writes. */
static void h1_chunked_upload_in(size_t piece)
{
    static const char answer[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                 "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    struct h1srv s;
    h1srv_start(&s, 1, answer, piece, true);
    struct writer w = {.total = 3u << 20, .piece = 10000, .cap = 64u << 10, .trailers = true};
    assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
    rill_client *c = client_for(w.loop, s.port, false, w.cap);
    const rill_header f[] = {
        {(const uint8_t *)"Transfer-Encoding", 17, (const uint8_t *)"gzip", 4, 0}}; /* dropped */
    assert_int_equal(rill_client_request_stream(c, "POST", "/up", f, 1, &writer_cb, &w, &w.st),
                     RILL_OK);
    writer_pump(&w); /* before the connection: the first writes wait in the stream */
    rill_io_loop_run(w.loop);
    assert_true(w.done);
    assert_int_equal(w.err, RILL_OK);
    assert_int_equal(w.status, 200);
    assert_int_equal(w.body_len, 2);
    assert_memory_equal(w.body, "ok", 2);
    assert_int_equal(w.ninfo, 2);
    assert_int_equal(w.informational[0], 100);
    assert_int_equal(w.informational[1], 103);
    assert_string_equal(w.link, "</s.css>; rel=preload");
    assert_true(w.drains >= 1);
    assert_true(w.max_buffered <= w.cap + w.piece);
    rill_client_free(c);
    rill_io_loop_free(w.loop);
    h1srv_stop(&s);
    assert_true(s.complete[0]);
    assert_true(s.chunked[0]);
    assert_string_equal(s.content_length[0], "");
    assert_int_equal(s.body[0], w.total);
    assert_int_equal(s.hash[0], fnv_pattern(w.total));
    char want[64];
    snprintf(want, sizeof want, "x-sum=%016llx", (unsigned long long)fnv_pattern(w.total));
    assert_string_equal(s.trailer[0], want);
}

static void h1_chunked_upload(void **state)
{
    (void)state;
    h1_chunked_upload_in(0);
    h1_chunked_upload_in(1);
    h1_chunked_upload_in(7);
}

/* A content-length field of the caller's is sent as given and holds: a write past it is refused
 * (nothing taken), trailers are refused, and the body goes unchunked. */
static void h1_content_length_upload(void **state)
{
    struct h1srv s;
    h1srv_start(&s, 1, "HTTP/1.1 204 No Content\r\n\r\n", 0, false);
    struct writer w = {.cap = 64u << 10};
    assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
    rill_client *c = client_for(w.loop, s.port, false, 0);
    const rill_header f[] = {{(const uint8_t *)"Content-Length", 14, (const uint8_t *)"10", 2, 0}};
    assert_int_equal(rill_client_request_stream(c, "PUT", "/f", f, 1, &writer_cb, &w, &w.st),
                     RILL_OK);
    assert_int_equal(rill_client_stream_write(w.st, "abcdef", 6), RILL_OK);
    assert_int_equal(rill_client_stream_write(w.st, "ghijk", 5), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_client_stream_buffered(w.st), 6);
    assert_int_equal(rill_client_stream_write(w.st, "ghij", 4), RILL_OK);
    const rill_header t[] = {{(const uint8_t *)"x", 1, (const uint8_t *)"1", 1, 0}};
    assert_int_equal(rill_client_stream_end(w.st, t, 1), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_client_stream_end(w.st, NULL, 0), RILL_OK);
    rill_io_loop_run(w.loop);
    assert_int_equal(w.err, RILL_OK);
    assert_int_equal(w.status, 204);
    rill_client_free(c);
    rill_io_loop_free(w.loop);
    h1srv_stop(&s);
    assert_true(s.complete[0]);
    assert_false(s.chunked[0]);
    assert_string_equal(s.content_length[0], "10");
    assert_int_equal(s.body[0], 10);
    assert_int_equal(s.hash[0], fnv(FNV0, (const uint8_t *)"abcdefghij", 10));
}

struct short_end {
    struct writer *w;
    rill_io_timer *t;
};

static void end_short(rill_io_timer *t, void *arg)
{
    struct writer *w = arg;
    assert_int_equal(rill_client_stream_end(w->st, NULL, 0), RILL_ERR_INVALID_ARG);
    assert_false(w->done); /* on_end comes on a later turn */
}

/* A body that ends short of its content-length field is never sent as if whole: the request ends
 * with RILL_ERR_INVALID_ARG (the head and the first bytes may have gone: the connection closes,
 * and the server never sees a complete request). Before the connection, and after the head. */
static void h1_content_length_short(void **state)
{
    for (int delay = 0; delay <= 1; delay++) {
        struct h1srv s;
        h1srv_start(&s, delay, "HTTP/1.1 204 No Content\r\n\r\n", 0, false);
        struct writer w = {.cap = 64u << 10};
        assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
        rill_client *c = client_for(w.loop, s.port, false, 0);
        const rill_header f[] = {
            {(const uint8_t *)"content-length", 14, (const uint8_t *)"10", 2, 0}};
        assert_int_equal(rill_client_request_stream(c, "POST", "/f", f, 1, &writer_cb, &w, &w.st),
                         RILL_OK);
        assert_int_equal(rill_client_stream_write(w.st, "abcd", 4), RILL_OK);
        rill_io_timer *t = rill_io_timer_new(w.loop, end_short, &w);
        if (delay)
            rill_io_timer_arm(t, 200);
        else
            end_short(t, &w);
        rill_io_loop_run(w.loop);
        assert_int_equal(w.err, RILL_ERR_INVALID_ARG);
        assert_non_null(strstr(w.why, "content-length"));
        rill_io_timer_free(t);
        rill_client_free(c);
        rill_io_loop_free(w.loop);
        h1srv_stop(&s);
        assert_false(s.complete[0]);
        assert_int_equal(s.requests, 0);
    }
}

/* ---- HTTP/1.1 download pause -------------------------------------------------------------------- */

#define BIG_DOWNLOAD (32ull << 20)

struct bigsrv {
    int lfd;
    uint16_t port;
    pthread_t thread;
    atomic_ullong sent; /* body bytes the server's send calls took */
};

static void *bigsrv_h1_run(void *arg)
{
    struct bigsrv *s = arg;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0)
        return NULL;
    int fd = accept(s->lfd, NULL, NULL);
    set_timeouts(fd, 30000);
    char req[4096];
    size_t n = 0;
    while (!memmem(req, n, "\r\n\r\n", 4) && n < sizeof req) {
        ssize_t r = recv(fd, req + n, sizeof req - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    char head[128];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n",
                      (unsigned long long)BIG_DOWNLOAD);
    send_in_pieces(fd, head, (size_t)hl, 3); /* the head split too */
    uint8_t buf[65536];
    for (uint64_t off = 0; off < BIG_DOWNLOAD;) {
        size_t len = sizeof buf;
        fill(buf, off, len);
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (uint64_t)w; /* a short send: the next block starts where it stopped */
        atomic_store(&s->sent, off);
    }
    char b[256];
    while (recv(fd, b, sizeof b, 0) > 0) {
    }
    close(fd);
    return NULL;
}

struct reader {
    rill_io_loop *loop;
    rill_client_stream *st;
    atomic_ullong *sent; /* what the server sent (HTTP/1.1) or produced (HTTP/2) so far */
    rill_io_timer *timer;
    int phase;
    bool toggle;          /* pause at every on_data, resume on the next turn */
    uint64_t got, got_while_paused, sent_at_check;
    uint64_t hash;
    int status, err, pauses;
    bool paused;
};

static void r_response(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    struct reader *r = user;
    r->status = status;
    if (!r->toggle) {
        rill_client_stream_pause(st, true);
        rill_client_stream_pause(st, true); /* twice is once */
        r->paused = true;
        rill_io_timer_arm(r->timer, 1000);
    }
}

static void r_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct reader *r = user;
    if (r->paused)
        r->got_while_paused += n;
    r->got += n;
    r->hash = fnv(r->hash, d, n);
    if (r->toggle && r->pauses < 400) {
        rill_client_stream_pause(st, true);
        r->paused = true;
        r->pauses++;
        rill_io_timer_arm(r->timer, 0);
    }
}

static void r_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct reader *r = user;
    if (err)
        fprintf(stderr, "download failed: %s\n", why);
    assert_false(r->paused);
    r->err = err;
    rill_io_loop_stop(r->loop);
}

static void r_timer(rill_io_timer *t, void *arg)
{
    struct reader *r = arg;
    if (r->toggle) {
        r->paused = false;
        rill_client_stream_pause(r->st, false);
        return;
    }
    /* A second after the pause: nothing was delivered, and the server could not send it all. */
    r->sent_at_check = atomic_load(r->sent);
    r->paused = false;
    rill_client_stream_pause(r->st, false);
}

static const rill_client_callbacks reader_cb = {
    .size = sizeof reader_cb, .on_response = r_response, .on_data = r_data, .on_end = r_end};

/* Paused at the head for a second, an HTTP/1.1 download of 32 MiB stops: no on_data, the
 * connection is not read, the server's send blocks before the end (socket buffers hold a few MiB
 * at most). Resumed, every byte arrives in order. Then paused and resumed at every piece. */
static void h1_paused_download(void **state)
{
    for (int toggle = 0; toggle <= 1; toggle++) {
        struct bigsrv s = {0};
        s.lfd = tcp_listen_any(&s.port);
        pthread_create(&s.thread, NULL, bigsrv_h1_run, &s);
        struct reader r = {.sent = &s.sent, .hash = FNV0, .toggle = toggle};
        assert_int_equal(rill_io_loop_new(NULL, &r.loop), RILL_OK);
        r.timer = rill_io_timer_new(r.loop, r_timer, &r);
        rill_client *c = client_for(r.loop, s.port, false, 0);
        assert_int_equal(rill_client_request(c, "GET", "/big", NULL, 0, NULL, 0, &reader_cb, &r, &r.st),
                         RILL_OK);
        rill_io_loop_run(r.loop);
        assert_int_equal(r.err, RILL_OK);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.got, BIG_DOWNLOAD);
        assert_int_equal(r.hash, fnv_pattern(BIG_DOWNLOAD));
        assert_int_equal(r.got_while_paused, 0);
        if (!toggle)
            assert_true(r.sent_at_check < BIG_DOWNLOAD);
        else
            assert_true(r.pauses >= 10);
        rill_io_timer_free(r.timer);
        rill_client_free(c);
        rill_io_loop_free(r.loop);
        pthread_join(s.thread, NULL);
        close(s.lfd);
    }
}

/* ---- HTTP/2: rill's engine as the server --------------------------------------------------------- */

struct h2srv {
    int lfd;
    uint16_t port;
    pthread_t thread;
    rill_h2_session *s;
    int conn;              /* 0, 1: the connection being served */
    size_t piece;          /* the server's output in writes of this many bytes */
    /* uploads */
    uint32_t window;       /* our stream and connection windows (0: the defaults) */
    atomic_bool stall;     /* do not give flow-control credit back */
    atomic_ullong received;
    uint64_t unconsumed[64];
    uint64_t body[64], hash[64];
    char trailer[64][64];
    bool info;             /* 103 before each final response */
    /* downloads */
    bool big;              /* answer with BIG_DOWNLOAD bytes */
    atomic_ullong produced;
    /* GOAWAY */
    int goaway_after;      /* on the first connection, once this many requests arrived: GOAWAY */
    int32_t goaway_last;   /* ... with this last stream id, answering only those up to it */
    int ended;             /* requests whose END_STREAM arrived on this connection */
    int32_t ended_ids[64];
    char path[64][16];
    int answered[2][64];   /* answers per connection and request number (from the path) */
    bool goaway_sent;
    /* Expect: 100-continue: 1 answer 100 after a moment, 2 answer 417 at once */
    int expect;
    int32_t expect_id;
    uint64_t expect_since;
    uint64_t early;        /* body bytes before the 100 */
    int64_t reset_code;    /* the client's RST_STREAM, -1 if none */
};

static int srv_headers(rill_h2_session *s, int32_t id, enum rill_h2_headers_kind kind,
                       const rill_header *f, size_t n, uint32_t flags, void *user)
{
    struct h2srv *p = user;
    if (kind == RILL_H2_HEADERS_TRAILERS) {
        snprintf(p->trailer[(id / 2) % 64], 64, "%.*s=%.*s", (int)f[0].name_len,
                 (const char *)f[0].name, (int)f[0].value_len, (const char *)f[0].value);
        return 0;
    }
    p->hash[(id / 2) % 64] = FNV0;
    p->body[(id / 2) % 64] = 0;
    bool expect = false;
    for (size_t i = 0; i < n; i++)
        expect |= f[i].name_len == 6 && memcmp(f[i].name, "expect", 6) == 0;
    if (expect && p->expect == 2) {
        const rill_header h[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"417", 3, 0}};
        rill_h2_submit_response(s, id, h, 1, RILL_H2_FLAG_END_STREAM);
        return 0;
    }
    if (expect && p->expect == 1) {
        p->expect_id = id;
        p->expect_since = rill_io_now_ms();
    }
    for (size_t i = 0; i < n; i++)
        if (f[i].name_len == 5 && memcmp(f[i].name, ":path", 5) == 0)
            snprintf(p->path[(id / 2) % 64], 16, "%.*s", (int)f[i].value_len, (const char *)f[i].value);
    if (p->info) {
        const rill_header h[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"103", 3, 0},
                                 {(const uint8_t *)"link", 4, (const uint8_t *)"</h2.css>", 9, 0}};
        rill_h2_submit_response(s, id, h, 2, 0);
    }
    return 0;
}

static int srv_data(rill_h2_session *s, int32_t id, const uint8_t *d, size_t n, void *user)
{
    struct h2srv *p = user;
    p->body[(id / 2) % 64] += n;
    p->hash[(id / 2) % 64] = fnv(p->hash[(id / 2) % 64], d, n);
    atomic_fetch_add(&p->received, n);
    if (atomic_load(&p->stall))
        p->unconsumed[(id / 2) % 64] += n;
    else
        rill_h2_consume(s, id, n);
    return 0;
}

static int big_read(rill_h2_session *s, int32_t id, uint8_t *buf, size_t max, bool *eof, void *user)
{
    struct h2srv *p = user;
    uint64_t off = atomic_load(&p->produced);
    size_t n = BIG_DOWNLOAD - off < max ? (size_t)(BIG_DOWNLOAD - off) : max;
    fill(buf, off, n);
    atomic_store(&p->produced, off + n);
    *eof = off + n == BIG_DOWNLOAD;
    return (int)n;
}

static void srv_answer(struct h2srv *p, int32_t id)
{
    rill_h2_session *s = p->s;
    int num = atoi(p->path[(id / 2) % 64] + 1);
    if (num >= 0 && num < 64)
        p->answered[p->conn][num]++;
    const rill_header head[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0}};
    rill_h2_submit_response(s, id, head, 1, 0);
    if (p->big) {
        rill_h2_set_data_source(s, id, big_read, p);
        return;
    }
    static char bodies[64][64];
    char *b = bodies[(id / 2) % 64];
    snprintf(b, 64, "%s %llu %016llx", p->path[(id / 2) % 64],
             (unsigned long long)p->body[(id / 2) % 64], (unsigned long long)p->hash[(id / 2) % 64]);
    rill_h2_submit_data(s, id, (const uint8_t *)b, strlen(b), 0, NULL);
    const rill_header tr[] = {{(const uint8_t *)"x-t", 3, (const uint8_t *)"done", 4, 0}};
    rill_h2_submit_trailers(s, id, tr, 1);
}

static int srv_end(rill_h2_session *s, int32_t id, void *user)
{
    struct h2srv *p = user;
    if (p->ended < 64)
        p->ended_ids[p->ended] = id;
    p->ended++;
    if (p->goaway_after && p->conn == 0)
        return 0; /* answered after the GOAWAY, by the loop */
    srv_answer(p, id);
    return 0;
}

static int srv_reset(rill_h2_session *s, int32_t id, uint32_t code, void *user)
{
    ((struct h2srv *)user)->reset_code = code;
    return 0;
}

static const rill_h2_callbacks srv_cb = {.size = sizeof srv_cb, .on_headers = srv_headers,
                                         .on_data = srv_data, .on_end_stream = srv_end,
                                         .on_stream_reset = srv_reset};

static void srv_flush(struct h2srv *p, int fd)
{
    uint8_t buf[65536];
    size_t n;
    while ((n = rill_h2_session_send_copy(p->s, buf, sizeof buf)) > 0)
        send_in_pieces(fd, buf, n, p->piece);
}

static void *h2srv_run(void *arg)
{
    struct h2srv *p = arg;
    for (p->conn = 0; p->conn < 2; p->conn++) {
        struct pollfd pl = {.fd = p->lfd, .events = POLLIN};
        if (poll(&pl, 1, p->conn ? 3000 : 20000) <= 0)
            break;
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            break;
        set_timeouts(fd, 30000);
        rill_h2_options o;
        rill_h2_options_init(&o, RILL_H2_SERVER);
        if (p->window) {
            o.local.initial_window_size = p->window;
            o.connection_window = p->window;
        }
        p->s = rill_h2_session_new(RILL_H2_SERVER, &o, &srv_cb, p);
        p->ended = 0;
        p->goaway_sent = false;
        uint8_t buf[65536];
        for (;;) {
            if (p->expect_id && rill_io_now_ms() - p->expect_since >= 300) {
                p->early = p->body[(p->expect_id / 2) % 64];
                const rill_header h[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"100", 3, 0}};
                rill_h2_submit_response(p->s, p->expect_id, h, 1, 0);
                p->expect_id = 0;
            }
            srv_flush(p, fd);
            if (p->goaway_after && p->conn == 0 && !p->goaway_sent && p->ended >= p->goaway_after) {
                /* Every request is in; the GOAWAY claims only the first few were processed. */
                uint8_t g[17] = {0, 0, 8, RILL_H2_GOAWAY, 0, 0, 0, 0, 0};
                g[9] = (uint8_t)(p->goaway_last >> 24);
                g[10] = (uint8_t)(p->goaway_last >> 16);
                g[11] = (uint8_t)(p->goaway_last >> 8);
                g[12] = (uint8_t)p->goaway_last;
                send_in_pieces(fd, g, sizeof g, p->piece);
                p->goaway_sent = true;
                for (int i = 0; i < p->ended && i < 64; i++)
                    if (p->ended_ids[i] <= p->goaway_last)
                        srv_answer(p, p->ended_ids[i]);
                continue;
            }
            /* A stalled upload: poll briefly so the release is seen without any input. */
            struct pollfd rp = {.fd = fd, .events = POLLIN};
            int pr = poll(&rp, 1, 20);
            if (pr == 0) {
                if (!atomic_load(&p->stall)) {
                    for (int i = 0; i < 64; i++)
                        if (p->unconsumed[i]) {
                            rill_h2_consume(p->s, i * 2 + 1, p->unconsumed[i]);
                            p->unconsumed[i] = 0;
                        }
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0 || rill_h2_session_recv(p->s, buf, (size_t)r) < 0)
                break;
        }
        srv_flush(p, fd);
        rill_h2_session_free(p->s);
        p->s = NULL;
        close(fd);
        if (!p->goaway_after)
            break;
    }
    return NULL;
}

static void h2srv_start(struct h2srv *p)
{
    p->lfd = tcp_listen_any(&p->port);
    pthread_create(&p->thread, NULL, h2srv_run, p);
}

static void h2srv_stop(struct h2srv *p)
{
    pthread_join(p->thread, NULL);
    close(p->lfd);
}

/* HTTP/2: a 4 MiB body of unknown length in DATA frames, then trailing HEADERS; the server's
 * 65,535-byte windows pace it (on_drain as its WINDOW_UPDATEs come). A 103 comes first. */
static void h2_streamed_upload_in(size_t piece)
{
    struct h2srv *p = calloc(1, sizeof *p);
    p->piece = piece;
    p->window = 65535;
    p->info = true;
    h2srv_start(p);
    struct writer w = {.total = 4u << 20, .piece = 16384, .cap = 64u << 10, .trailers = true};
    assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
    rill_client *c = client_for(w.loop, p->port, true, w.cap);
    assert_int_equal(rill_client_request_stream(c, "POST", "/7", NULL, 0, &writer_cb, &w, &w.st),
                     RILL_OK);
    writer_pump(&w);
    rill_io_loop_run(w.loop);
    if (w.err)
        fprintf(stderr, "%s\n", w.why);
    assert_int_equal(w.err, RILL_OK);
    assert_string_equal(w.proto, "h2");
    assert_int_equal(w.status, 200);
    char want[96];
    snprintf(want, sizeof want, "/7 %llu %016llx", (unsigned long long)w.total,
             (unsigned long long)fnv_pattern(w.total));
    assert_int_equal(w.body_len, strlen(want));
    assert_memory_equal(w.body, want, strlen(want));
    assert_string_equal(w.trailer, "x-t=done");
    assert_int_equal(w.ninfo, 1);
    assert_int_equal(w.informational[0], 103);
    assert_string_equal(w.link, "</h2.css>");
    assert_true(w.drains >= 4);
    assert_true(w.max_buffered <= w.cap + w.piece);
    rill_client_free(c);
    rill_io_loop_free(w.loop);
    h2srv_stop(p);
    snprintf(want, sizeof want, "x-sum=%016llx", (unsigned long long)fnv_pattern(w.total));
    assert_string_equal(p->trailer[0], want);
    free(p);
}

static void h2_streamed_upload(void **state)
{
    (void)state;
    h2_streamed_upload_in(0);
    h2_streamed_upload_in(5);
}

struct stall_check {
    struct writer *w;
    struct h2srv *p;
    uint64_t received;
    size_t buffered;
    bool blocked;
    int drains;
};

static void stall_timer(rill_io_timer *t, void *arg)
{
    struct stall_check *s = arg;
    s->received = atomic_load(&s->p->received);
    s->buffered = rill_client_stream_buffered(s->w->st);
    s->blocked = s->w->blocked;
    s->drains = s->w->drains;
    atomic_store(&s->p->stall, false); /* the server gives the credit back: the rest flows */
}

/* The server gives no credit back: exactly its window (65,535 bytes) goes out, the rest waits in
 * the stream (the writer blocked, no on_drain); once the credit comes, all of it follows. */
static void h2_upload_waits_for_the_window(void **state)
{
    struct h2srv *p = calloc(1, sizeof *p);
    p->window = 65535;
    atomic_store(&p->stall, true);
    h2srv_start(p);
    struct writer w = {.total = 1u << 20, .piece = 30000, .cap = 128u << 10};
    assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
    rill_client *c = client_for(w.loop, p->port, true, w.cap);
    const rill_header f[] = {{(const uint8_t *)"content-length", 14, (const uint8_t *)"1048576", 7, 0}};
    assert_int_equal(rill_client_request_stream(c, "PUT", "/3", f, 1, &writer_cb, &w, &w.st), RILL_OK);
    writer_pump(&w);
    struct stall_check sc = {.w = &w, .p = p};
    rill_io_timer *t = rill_io_timer_new(w.loop, stall_timer, &sc);
    rill_io_timer_arm(t, 1000);
    rill_io_loop_run(w.loop);
    assert_int_equal(w.err, RILL_OK);
    assert_int_equal(sc.received, 65535);
    assert_true(sc.blocked);
    assert_int_equal(sc.drains, 0);
    /* 150,000 written, whole chunks of them released as they went: 2 of 30,000 */
    assert_int_equal(sc.buffered, 150000 - 60000);
    assert_true(w.drains >= 1);
    char want[96];
    snprintf(want, sizeof want, "/3 %llu %016llx", (unsigned long long)w.total,
             (unsigned long long)fnv_pattern(w.total));
    assert_memory_equal(w.body, want, strlen(want));
    rill_io_timer_free(t);
    rill_client_free(c);
    rill_io_loop_free(w.loop);
    h2srv_stop(p);
    free(p);
}

/* HTTP/2 paused at the head: no on_data, no WINDOW_UPDATE for the stream, so the server produces
 * exactly the stream's window (4 MiB) of the 32 MiB and stops; resumed, the rest flows. Then paused
 * and resumed at every piece. Frames in 5-byte writes too. */
/* A 32 MiB download from the HTTP/2 test server (its output sent piece bytes at a time, 0:
 * whole) through cb; toggle pauses at every body callback. Checks what every such download
 * must give; the reader comes back for the rest. */
static struct reader h2_download(const rill_client_callbacks *cb, bool toggle, size_t piece)
{
    struct h2srv *p = calloc(1, sizeof *p);
    p->big = true;
    p->piece = piece;
    h2srv_start(p);
    struct reader r = {.sent = &p->produced, .hash = FNV0, .toggle = toggle};
    assert_int_equal(rill_io_loop_new(NULL, &r.loop), RILL_OK);
    r.timer = rill_io_timer_new(r.loop, r_timer, &r);
    rill_client *c = client_for(r.loop, p->port, true, 0);
    assert_int_equal(rill_client_request(c, "GET", "/1", NULL, 0, NULL, 0, cb, &r, &r.st), RILL_OK);
    rill_io_loop_run(r.loop);
    assert_int_equal(r.err, RILL_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.got, BIG_DOWNLOAD);
    assert_int_equal(r.hash, fnv_pattern(BIG_DOWNLOAD));
    assert_int_equal(r.got_while_paused, 0);
    rill_io_timer_free(r.timer);
    rill_client_free(c);
    rill_io_loop_free(r.loop);
    h2srv_stop(p);
    free(p);
    r.sent = NULL;
    r.timer = NULL;
    r.loop = NULL;
    r.st = NULL;
    return r;
}

static void h2_paused_download(void **state)
{
    for (int toggle = 0; toggle <= 1; toggle++) {
        struct reader r = h2_download(&reader_cb, toggle, toggle ? 0 : 5000);
        if (!toggle) /* the stream's window, no byte more */
            assert_true(r.sent_at_check > 0 && r.sent_at_check <= (4u << 20));
        else
            assert_true(r.pauses >= 10);
    }
}

/* on_data_v: the DATA frames of one read come in one call (a 32 MiB download: 16 KiB frames, 64
 * KiB reads and more), every byte in order; paused at every call and resumed on the next turn,
 * nothing arrives while paused. */
static void rv_data(rill_client_stream *st, const struct iovec *pieces, int n, void *user)
{
    struct reader *r = user;
    assert_true(n >= 1);
    if (n > r->phase)
        r->phase = n; /* the most pieces in one call */
    for (int i = 0; i < n; i++) {
        if (r->paused)
            r->got_while_paused += pieces[i].iov_len;
        r->got += pieces[i].iov_len;
        r->hash = fnv(r->hash, pieces[i].iov_base, pieces[i].iov_len);
    }
    if (r->toggle && r->pauses < 400) {
        rill_client_stream_pause(st, true);
        r->paused = true;
        r->pauses++;
        rill_io_timer_arm(r->timer, 0);
    }
}

static void rv_response(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    (void)st, (void)f, (void)n;
    ((struct reader *)user)->status = status;
}

static const rill_client_callbacks gather_cb = {
    .size = sizeof gather_cb, .on_response = rv_response, .on_data_v = rv_data, .on_end = r_end};

static void h2_download_gathered(void **state)
{
    for (int toggle = 0; toggle <= 1; toggle++) {
        struct reader r = h2_download(&gather_cb, toggle, 0);
        assert_true(r.phase >= 2); /* frames gathered */
        if (toggle)
            assert_true(r.pauses >= 10);
    }
    h2_download(&gather_cb, false, 5000); /* the server's output in 5000-byte sends */
}

/* A small answer whose DATA and trailers come in one read: the body is handed over before the
 * trailers, and both before the end. */
struct gather_order {
    rill_io_loop *loop;
    char seq[64];
    size_t nseq;
    char body[96];
    size_t len;
};

static void go_data(rill_client_stream *st, const struct iovec *pieces, int n, void *user)
{
    (void)st;
    struct gather_order *o = user;
    if (o->nseq < sizeof o->seq)
        o->seq[o->nseq++] = 'd';
    for (int i = 0; i < n; i++)
        if (o->len + pieces[i].iov_len < sizeof o->body) {
            memcpy(o->body + o->len, pieces[i].iov_base, pieces[i].iov_len);
            o->len += pieces[i].iov_len;
        }
}

static void go_trailers(rill_client_stream *st, const rill_header *f, size_t n, void *user)
{
    (void)st, (void)f, (void)n;
    struct gather_order *o = user;
    if (o->nseq < sizeof o->seq)
        o->seq[o->nseq++] = 't';
}

static void go_end(rill_client_stream *st, int err, const char *why, void *user)
{
    (void)st, (void)why;
    struct gather_order *o = user;
    if (o->nseq < sizeof o->seq)
        o->seq[o->nseq++] = err ? 'x' : 'e';
    rill_io_loop_stop(o->loop);
}

/* Whole, the answer is one read: one body call, then trailers, then the end. A byte at a time
 * (separate sends), the body may come in several calls, still all before the trailers. */
static void h2_gathered_body_comes_before_trailers(void **state)
{
    (void)state;
    for (size_t piece = 0; piece <= 1; piece++) {
        struct h2srv *p = calloc(1, sizeof *p);
        p->piece = piece;
        h2srv_start(p);
        struct gather_order o = {0};
        assert_int_equal(rill_io_loop_new(NULL, &o.loop), RILL_OK);
        rill_client *c = client_for(o.loop, p->port, true, 0);
        static const rill_client_callbacks cb = {.size = sizeof cb, .on_data_v = go_data,
                                                 .on_trailers = go_trailers, .on_end = go_end};
        assert_int_equal(rill_client_request(c, "GET", "/7", NULL, 0, NULL, 0, &cb, &o, NULL),
                         RILL_OK);
        rill_io_loop_run(o.loop);
        if (!piece) {
            assert_int_equal(o.nseq, 3);
        } else {
            assert_true(o.nseq >= 3);
            for (size_t i = 0; i + 2 < o.nseq; i++)
                assert_int_equal(o.seq[i], 'd');
        }
        assert_memory_equal(o.seq + o.nseq - 2, "te", 2);
        assert_int_equal(o.seq[0], 'd');
        assert_true(o.len > 3 && memcmp(o.body, "/7 ", 3) == 0);
        rill_client_free(c);
        rill_io_loop_free(o.loop);
        h2srv_stop(p);
        free(p);
    }
}

/* ---- GOAWAY ------------------------------------------------------------------------------------- */

struct gw_rec {
    rill_io_loop *loop;
    int *ended;
    int want;
    int err;
    char why[200];
    char body[96];
    size_t len;
};

static void gw_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct gw_rec *r = user;
    if (r->len + n < sizeof r->body) {
        memcpy(r->body + r->len, d, n);
        r->len += n;
    }
}

static void gw_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct gw_rec *r = user;
    r->err = err;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    if (++*r->ended == r->want)
        rill_io_loop_stop(r->loop);
}

static const rill_client_callbacks gw_cb = {.size = sizeof gw_cb, .on_data = gw_data,
                                            .on_end = gw_end};

/* Twelve requests on one connection; once all are in, the server sends GOAWAY with last stream id
 * 11 and answers only streams 1..11. The six above were never processed: the idempotent ones
 * (GET, and PUT with its buffered body intact) go again on a second connection; the POSTs, buffered
 * or streamed, end with RILL_ERR_PROTOCOL. Nothing is answered twice, nothing is lost. */
static void goaway_retries_only_what_is_safe_in(size_t piece)
{
    struct h2srv *p = calloc(1, sizeof *p);
    p->goaway_after = 12;
    p->goaway_last = 11;
    p->piece = piece;
    h2srv_start(p);
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    rill_client *c = client_for(loop, p->port, true, 0);
    int ended = 0;
    struct gw_rec rec[12];
    for (int i = 0; i < 12; i++) {
        rec[i] = (struct gw_rec){.loop = loop, .ended = &ended, .want = 12};
        char path[8];
        snprintf(path, sizeof path, "/%d", i);
        rill_client_stream *st;
        switch (i % 4) {
        case 0:
            assert_int_equal(rill_client_request(c, "POST", path, NULL, 0, "p", 1, &gw_cb, &rec[i], NULL),
                             RILL_OK);
            break;
        case 1:
            assert_int_equal(rill_client_request(c, "GET", path, NULL, 0, NULL, 0, &gw_cb, &rec[i], NULL),
                             RILL_OK);
            break;
        case 2:
            assert_int_equal(rill_client_request(c, "PUT", path, NULL, 0, "uu", 2, &gw_cb, &rec[i], NULL),
                             RILL_OK);
            break;
        default:
            assert_int_equal(rill_client_request_stream(c, "POST", path, NULL, 0, &gw_cb, &rec[i], &st),
                             RILL_OK);
            assert_int_equal(rill_client_stream_write(st, "s", 1), RILL_OK);
            assert_int_equal(rill_client_stream_end(st, NULL, 0), RILL_OK);
        }
    }
    rill_io_loop_run(loop);
    assert_int_equal(ended, 12);
    for (int i = 0; i < 12; i++) {
        bool retried = i >= 6 && (i % 4 == 1 || i % 4 == 2);
        bool refused = i >= 6 && !retried;
        if (refused) {
            assert_int_equal(rec[i].err, RILL_ERR_PROTOCOL);
            assert_non_null(strstr(rec[i].why, "refused the request (GOAWAY)"));
            assert_int_equal(p->answered[0][i] + p->answered[1][i], 0);
            continue;
        }
        if (rec[i].err)
            fprintf(stderr, "/%d: %s\n", i, rec[i].why);
        assert_int_equal(rec[i].err, RILL_OK);
        size_t blen = i % 4 == 0 ? 1 : i % 4 == 2 ? 2 : i % 4 == 3 ? 1 : 0;
        const char *bdata = i % 4 == 0 ? "p" : i % 4 == 2 ? "uu" : "s";
        char want[64];
        snprintf(want, sizeof want, "/%d %zu %016llx", i, blen,
                 (unsigned long long)fnv(FNV0, (const uint8_t *)bdata, blen));
        rec[i].body[rec[i].len] = '\0';
        assert_string_equal(rec[i].body, want);
        assert_int_equal(p->answered[0][i], retried ? 0 : 1);
        assert_int_equal(p->answered[1][i], retried ? 1 : 0);
    }
    assert_int_equal(rill_client_connections(c), 2);
    rill_client_free(c);
    rill_io_loop_free(loop);
    h2srv_stop(p);
    free(p);
}

static void goaway_retries_only_what_is_safe(void **state)
{
    (void)state;
    goaway_retries_only_what_is_safe_in(0);
    goaway_retries_only_what_is_safe_in(7);
}

/* ---- rill_client_fetch with body_fd ---------------------------------------------------------------- */

struct pipe_feed {
    int fd;
    size_t total;
};

static void *pipe_writer(void *arg)
{
    struct pipe_feed *p = arg;
    uint8_t buf[7000];
    for (size_t off = 0; off < p->total;) {
        size_t n = p->total - off < sizeof buf ? p->total - off : sizeof buf;
        fill(buf, off, n);
        if (write(p->fd, buf, n) != (ssize_t)n)
            break;
        off += n;
    }
    close(p->fd);
    return NULL;
}

/* A regular file goes with its remaining size as content-length (from the file's current offset),
 * a pipe chunked; both in bounded pieces, to rill's HTTP/1.1 parser reading slowly. */
static void fetch_streams_a_body_fd(void **state)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const size_t total = (2u << 20) + 3;
    struct h1srv s;
    h1srv_start(&s, 1, answer, 0, true);
    FILE *tf = tmpfile();
    uint8_t *buf = malloc(total);
    fill(buf, 0, total);
    assert_int_equal(fwrite(buf, 1, total, tf), total);
    fflush(tf);
    lseek(fileno(tf), 3, SEEK_SET);
    rill_client_fetch_options fo;
    rill_client_fetch_options_init(&fo);
    assert_int_equal(fo.body_fd, -1);
    fo.body_fd = fileno(tf);
    rill_client_result r;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/file", s.port);
    assert_int_equal(rill_client_fetch(url, &fo, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "ok");
    rill_client_result_free(&r);
    h1srv_stop(&s);
    assert_true(s.complete[0]);
    assert_false(s.chunked[0]);
    char want[24];
    snprintf(want, sizeof want, "%zu", total - 3);
    assert_string_equal(s.content_length[0], want);
    assert_int_equal(s.body[0], total - 3);
    assert_int_equal(s.hash[0], fnv(FNV0, buf + 3, total - 3));
    fclose(tf);
    free(buf);

    /* A pipe: unknown length, chunked. */
    h1srv_start(&s, 1, answer, 0, false);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct pipe_feed feed = {.fd = fds[1], .total = 1u << 20};
    pthread_t t;
    pthread_create(&t, NULL, pipe_writer, &feed);
    fo.body_fd = fds[0];
    fo.method = "PUT";
    snprintf(url, sizeof url, "http://127.0.0.1:%u/pipe", s.port);
    assert_int_equal(rill_client_fetch(url, &fo, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    rill_client_result_free(&r);
    pthread_join(t, NULL);
    close(fds[0]);
    h1srv_stop(&s);
    assert_true(s.complete[0]);
    assert_true(s.chunked[0]);
    assert_int_equal(s.body[0], feed.total);
    assert_int_equal(s.hash[0], fnv_pattern(feed.total));
}

/* ---- server push refused -------------------------------------------------------------------------- */

struct pushsrv {
    int lfd;
    uint16_t port;
    pthread_t thread;
    size_t piece;
    int64_t enable_push;   /* the client's SETTINGS_ENABLE_PUSH, -1 when absent */
    int64_t goaway_code;   /* the client's GOAWAY error code, -1 when none */
};

static bool read_frame(int fd, uint8_t hdr[9], uint8_t *payload, size_t cap)
{
    if (!read_exact(fd, hdr, 9))
        return false;
    size_t len = (size_t)hdr[0] << 16 | (size_t)hdr[1] << 8 | hdr[2];
    return len <= cap && (len == 0 || read_exact(fd, payload, len));
}

static void *pushsrv_run(void *arg)
{
    struct pushsrv *p = arg;
    struct pollfd pl = {.fd = p->lfd, .events = POLLIN};
    if (poll(&pl, 1, 20000) <= 0)
        return NULL;
    int fd = accept(p->lfd, NULL, NULL);
    set_timeouts(fd, 20000);
    uint8_t preface[24], hdr[9], payload[16384];
    if (!read_exact(fd, preface, sizeof preface) || !read_frame(fd, hdr, payload, sizeof payload) ||
        hdr[3] != RILL_H2_SETTINGS)
        goto out;
    size_t len = (size_t)hdr[0] << 16 | (size_t)hdr[1] << 8 | hdr[2];
    for (size_t i = 0; i + 6 <= len; i += 6)
        if (payload[i] == 0 && payload[i + 1] == RILL_H2_SETTINGS_ENABLE_PUSH)
            p->enable_push = (int64_t)payload[i + 2] << 24 | payload[i + 3] << 16 |
                             payload[i + 4] << 8 | payload[i + 5];
    static const uint8_t settings[] = {0, 0, 0, RILL_H2_SETTINGS, 0, 0, 0, 0, 0,
                                       0, 0, 0, RILL_H2_SETTINGS, 1, 0, 0, 0, 0};
    send_in_pieces(fd, settings, sizeof settings, p->piece);
    do { /* until the request's HEADERS */
        if (!read_frame(fd, hdr, payload, sizeof payload))
            goto out;
    } while (hdr[3] != RILL_H2_HEADERS);
    /* PUSH_PROMISE on stream 1 promising 2: GET http://a/ */
    static const uint8_t push[] = {0, 0, 10, RILL_H2_PUSH_PROMISE, 0x4, 0, 0, 0, 1,
                                   0, 0, 0, 2, 0x82, 0x86, 0x84, 0x41, 0x01, 'a'};
    send_in_pieces(fd, push, sizeof push, p->piece);
    while (read_frame(fd, hdr, payload, sizeof payload)) {
        if (hdr[3] == RILL_H2_GOAWAY)
            p->goaway_code = (int64_t)payload[4] << 24 | payload[5] << 16 | payload[6] << 8 |
                             payload[7];
    }
out:
    close(fd);
    return NULL;
}

/* The client announces SETTINGS_ENABLE_PUSH 0, so a PUSH_PROMISE is a connection error: GOAWAY
 * PROTOCOL_ERROR, and the request ends with RILL_ERR_PROTOCOL. The PUSH_PROMISE whole, and a byte
 * per write. */
static void push_promise_is_a_protocol_error(void **state)
{
    for (size_t piece = 0; piece <= 1; piece++) {
        struct pushsrv p = {.piece = piece, .enable_push = -1, .goaway_code = -1};
        p.lfd = tcp_listen_any(&p.port);
        pthread_create(&p.thread, NULL, pushsrv_run, &p);
        struct writer w = {0};
        assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
        rill_client *c = client_for(w.loop, p.port, true, 0);
        assert_int_equal(rill_client_request(c, "GET", "/", NULL, 0, NULL, 0, &writer_cb, &w, NULL),
                         RILL_OK);
        rill_io_loop_run(w.loop);
        assert_int_equal(w.err, RILL_ERR_PROTOCOL);
        assert_string_equal(w.why, "HTTP/2 connection error (PROTOCOL_ERROR)");
        rill_client_free(c);
        rill_io_loop_free(w.loop);
        pthread_join(p.thread, NULL);
        close(p.lfd);
        assert_int_equal(p.enable_push, 0);
        assert_int_equal(p.goaway_code, RILL_H2_PROTOCOL_ERROR);
    }
}

/* ---- Expect: 100-continue ---------------------------------------------------------------------- */

static const rill_header expect_fields[] = {
    {(const uint8_t *)"Expect", 6, (const uint8_t *)"100-continue", 12, 0}};

/* HTTP/1.1: the body waits for the 100 (none of it comes while the server takes its time); a
 * server that never says 100 gets it after a second; one that answers 417 at once never gets it
 * (the connection closes after the answer). */
static void h1_expect_continue(void **state)
{
    for (int mode = 0; mode <= 2; mode++) {
        struct h1srv s;
        h1srv_init(&s, 1, mode == 2 ? "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"
                                    : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                   mode == 1 ? 1 : 0, false);
        s.expect = mode;
        pthread_create(&s.thread, NULL, h1srv_run, &s);
        struct writer w = {.total = 200000, .piece = 50000, .cap = 64u << 10};
        assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
        rill_client *c = client_for(w.loop, s.port, false, w.cap);
        assert_int_equal(rill_client_request_stream(c, "POST", "/e", expect_fields, 1, &writer_cb,
                                                    &w, &w.st),
                         RILL_OK);
        writer_pump(&w);
        rill_io_loop_run(w.loop);
        assert_int_equal(w.err, RILL_OK);
        rill_client_free(c);
        rill_io_loop_free(w.loop);
        h1srv_stop(&s);
        if (mode == 2) {
            assert_int_equal(w.status, 417);
            assert_int_equal(s.early[0], 0);
            assert_int_equal(s.body[0], 0);
            assert_false(s.complete[0]);
            continue;
        }
        assert_int_equal(w.status, 200);
        assert_true(s.complete[0]);
        assert_int_equal(s.body[0], w.total);
        assert_int_equal(s.hash[0], fnv_pattern(w.total));
        if (mode == 1) {
            assert_int_equal(s.early[0], 0);
            assert_int_equal(w.ninfo, 1);
            assert_int_equal(w.informational[0], 100);
        }
    }
}

/* HTTP/2: the DATA waits for the 100; a 417 with END_STREAM instead ends the request at once (the
 * body is not sent: RST_STREAM NO_ERROR, RFC 9113 §8.1), a success with status 417. */
static void h2_expect_continue(void **state)
{
    for (int mode = 1; mode <= 2; mode++) {
        struct h2srv *p = calloc(1, sizeof *p);
        p->expect = mode;
        p->reset_code = -1;
        h2srv_start(p);
        struct writer w = {.total = 300000, .piece = 50000, .cap = 64u << 10};
        assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
        rill_client *c = client_for(w.loop, p->port, true, w.cap);
        assert_int_equal(rill_client_request_stream(c, "PUT", "/5", expect_fields, 1, &writer_cb,
                                                    &w, &w.st),
                         RILL_OK);
        writer_pump(&w);
        rill_io_loop_run(w.loop);
        if (w.err)
            fprintf(stderr, "%s\n", w.why);
        assert_int_equal(w.err, RILL_OK);
        rill_client_free(c);
        rill_io_loop_free(w.loop);
        h2srv_stop(p);
        if (mode == 2) {
            assert_int_equal(w.status, 417);
            assert_int_equal(p->body[2], 0);
            assert_int_equal(p->reset_code, RILL_H2_NO_ERROR);
        } else {
            assert_int_equal(w.status, 200);
            assert_int_equal(p->early, 0);
            assert_int_equal(w.informational[0], 100);
            char want[96];
            snprintf(want, sizeof want, "/5 %llu %016llx", (unsigned long long)w.total,
                     (unsigned long long)fnv_pattern(w.total));
            assert_memory_equal(w.body, want, strlen(want));
        }
        free(p);
    }
}

/* ---- a whole small response held by a pause, and cancels mid-body ------------------------------ */

struct held_rec {
    rill_io_loop *loop;
    rill_io_timer *timer;
    rill_client_stream *st;
    bool paused;
    int during_pause; /* events that came while paused: must stay 0 */
    char events[64];  /* R response, D data, T trailers, E end */
    char body[64];
    int err;
};

static void held_event(struct held_rec *r, char e)
{
    if (r->paused)
        r->during_pause++;
    size_t n = strlen(r->events);
    if (n + 1 < sizeof r->events && (n == 0 || r->events[n - 1] != e || e != 'D')) {
        r->events[n] = e;
        r->events[n + 1] = '\0';
    }
}

static void hr_response(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    struct held_rec *r = user;
    held_event(r, 'R');
    rill_client_stream_pause(st, true);
    r->paused = true;
    rill_io_timer_arm(r->timer, 300);
}

static void hr_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct held_rec *r = user;
    held_event(r, 'D');
    strncat(r->body, (const char *)d, n < 63 - strlen(r->body) ? n : 63 - strlen(r->body));
}

static void hr_trailers(rill_client_stream *st, const rill_header *f, size_t n, void *user)
{
    held_event(user, 'T');
}

static void hr_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct held_rec *r = user;
    held_event(r, 'E');
    r->err = err;
    rill_io_loop_stop(r->loop);
}

static void hr_resume(rill_io_timer *t, void *arg)
{
    struct held_rec *r = arg;
    r->paused = false;
    rill_client_stream_pause(r->st, false);
}

static const rill_client_callbacks held_cb = {.size = sizeof held_cb, .on_response = hr_response,
                                              .on_data = hr_data, .on_trailers = hr_trailers,
                                              .on_end = hr_end};

/* Paused at the head, a small response arrives whole (body, trailers, end) and waits: nothing
 * reaches the application until the resume, then all of it in order. HTTP/1.1 chunked (a byte
 * per write too) and HTTP/2 (the stream closes while paused). */
static void pause_holds_a_whole_response(void **state)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: done\r\n\r\n";
    for (int run = 0; run < 4; run++) {
        bool h2 = run >= 2;
        struct h1srv s1;
        struct h2srv *p = NULL;
        uint16_t port;
        if (h2) {
            p = calloc(1, sizeof *p);
            p->piece = run == 3 ? 1 : 0;
            h2srv_start(p);
            port = p->port;
        } else {
            h1srv_start(&s1, 1, answer, run == 1 ? 1 : 0, false);
            port = s1.port;
        }
        struct held_rec r = {0};
        assert_int_equal(rill_io_loop_new(NULL, &r.loop), RILL_OK);
        r.timer = rill_io_timer_new(r.loop, hr_resume, &r);
        rill_client *c = client_for(r.loop, port, h2, 0);
        assert_int_equal(rill_client_request(c, "GET", "/4", NULL, 0, NULL, 0, &held_cb, &r, &r.st),
                         RILL_OK);
        rill_io_loop_run(r.loop);
        assert_int_equal(r.err, RILL_OK);
        assert_int_equal(r.during_pause, 0);
        assert_string_equal(r.events, "RDTE");
        char want[64];
        snprintf(want, sizeof want, "/4 0 %016llx", (unsigned long long)FNV0);
        assert_string_equal(r.body, h2 ? want : "hello world");
        rill_io_timer_free(r.timer);
        rill_client_free(c);
        rill_io_loop_free(r.loop);
        if (h2) {
            h2srv_stop(p);
            free(p);
        } else {
            h1srv_stop(&s1);
        }
    }
}

static void cancel_now(rill_io_timer *t, void *arg)
{
    struct writer *w = arg;
    assert_true(w->blocked); /* the server reads nothing: the writer waits */
    rill_client_stream_cancel(w->st);
    assert_int_equal(rill_client_stream_write(w->st, "x", 1), RILL_ERR_STATE);
}

/* A streamed upload cancelled while it waits for on_drain: on_end says RILL_ERR_CANCELLED, the
 * chunks the transport still held are freed when it lets go (ASan checks), and over HTTP/1.1 the
 * connection closes (the body was cut); the server never sees a complete request. */
static void cancel_a_streamed_upload(void **state)
{
    for (int h2 = 0; h2 <= 1; h2++) {
        struct h1srv s1;
        struct h2srv *p = NULL;
        uint16_t port;
        if (h2) {
            p = calloc(1, sizeof *p);
            p->window = 65535;
            atomic_store(&p->stall, true);
            h2srv_start(p);
            port = p->port;
        } else {
            h1srv_init(&s1, 1, "HTTP/1.1 204 No Content\r\n\r\n", 0, false);
            s1.nap_after_head = true;
            pthread_create(&s1.thread, NULL, h1srv_run, &s1);
            port = s1.port;
        }
        struct writer w = {.total = 64u << 20, .piece = 65536, .cap = 128u << 10};
        assert_int_equal(rill_io_loop_new(NULL, &w.loop), RILL_OK);
        rill_client *c = client_for(w.loop, port, h2, w.cap);
        assert_int_equal(rill_client_request_stream(c, "POST", "/9", NULL, 0, &writer_cb, &w, &w.st),
                         RILL_OK);
        writer_pump(&w);
        rill_io_timer *t = rill_io_timer_new(w.loop, cancel_now, &w);
        rill_io_timer_arm(t, 500);
        rill_io_loop_run(w.loop);
        assert_int_equal(w.err, RILL_ERR_CANCELLED);
        assert_true(w.off < w.total);
        rill_io_timer_free(t);
        rill_client_free(c);
        rill_io_loop_free(w.loop);
        if (h2) {
            atomic_store(&p->stall, false);
            h2srv_stop(p);
            assert_int_equal(p->reset_code, RILL_H2_CANCEL);
            free(p);
        } else {
            h1srv_stop(&s1);
            assert_false(s1.complete[0]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_arguments),
        cmocka_unit_test(h1_chunked_upload),
        cmocka_unit_test(h1_content_length_upload),
        cmocka_unit_test(h1_content_length_short),
        cmocka_unit_test(h1_paused_download),
        cmocka_unit_test(h2_streamed_upload),
        cmocka_unit_test(h2_upload_waits_for_the_window),
        cmocka_unit_test(h2_paused_download),
        cmocka_unit_test(h2_download_gathered),
        cmocka_unit_test(h2_gathered_body_comes_before_trailers),
        cmocka_unit_test(goaway_retries_only_what_is_safe),
        cmocka_unit_test(fetch_streams_a_body_fd),
        cmocka_unit_test(push_promise_is_a_protocol_error),
        cmocka_unit_test(h1_expect_continue),
        cmocka_unit_test(h2_expect_continue),
        cmocka_unit_test(pause_holds_a_whole_response),
        cmocka_unit_test(cancel_a_streamed_upload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
