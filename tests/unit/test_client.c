/* The request client (rill_client, rill_client_fetch) against peers scripted here on a thread: a
 * canned HTTP/1.1 server (1xx, chunked with trailers, Content-Length, read-until-close,
 * keep-alive, broken and silent answers) and an HTTP/2 server driven by rill's own engine in the
 * server role (several requests multiplexed on one connection, request bodies, trailers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "rill/client.h"
#include "rill/h2.h"
#include "test_io_util.h"

/* ---- a scripted HTTP/1.1 server ---------------------------------------------------------------- */

struct canned {
    int lfd;
    uint16_t port;
    const char *const *answers; /* one per request, in order, over every connection */
    size_t nanswers;
    bool close_after_each; /* close the connection after each answer */
    size_t piece;          /* answers go out in writes of this many bytes (0: whole) */
    atomic_int accepted;
    atomic_int requests;
    pthread_t thread;
};


/* Reads one request head (and a Content-Length body); false at EOF or timeout. */
static bool read_request(int fd)
{
    char buf[8192];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            return false;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(buf, "content-length: ");
        size_t want = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
        size_t have = n - (size_t)(end + 4 - buf);
        while (have < want) {
            r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0)
                return false;
            have += (size_t)r;
        }
        return true;
    }
    return false;
}


static void *canned_run(void *arg)
{
    struct canned *s = arg;
    size_t next = 0;
    while (next < s->nanswers) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            break;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        atomic_fetch_add(&s->accepted, 1);
        set_timeouts(fd, 10000);
        while (next < s->nanswers && read_request(fd)) {
            atomic_fetch_add(&s->requests, 1);
            const char *a = s->answers[next++];
            if (a[0]) /* "" = answer nothing, wait for the client to give up */
                send_in_pieces(fd, a, strlen(a), s->piece);
            if (s->close_after_each || !a[0])
                break;
        }
        if (!s->close_after_each) { /* until the client closes */
            char b[256];
            while (next >= s->nanswers && recv(fd, b, sizeof b, 0) > 0) {
            }
        }
        close(fd);
    }
    return NULL;
}

static void canned_start_pieces(struct canned *s, const char *const *answers, size_t n,
                                bool close_each, size_t piece)
{
    memset(s, 0, sizeof *s);
    s->lfd = tcp_listen_any(&s->port);
    s->answers = answers;
    s->nanswers = n;
    s->close_after_each = close_each;
    s->piece = piece;
    pthread_create(&s->thread, NULL, canned_run, s);
}

static void canned_start(struct canned *s, const char *const *answers, size_t n, bool close_each)
{
    canned_start_pieces(s, answers, n, close_each, 0);
}

static void canned_stop(struct canned *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

static char *url_of(uint16_t port, const char *path)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%u%s", port, path);
    return buf;
}

static const rill_header *field(const rill_client_result *r, const char *name)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcasecmp((const char *)r->fields[i].name, name) == 0)
            return &r->fields[i];
    return NULL;
}

/* ---- options and arguments --------------------------------------------------------------------- */

static void options_and_bad_arguments(void **state)
{
    rill_client_options o;
    rill_client_options_init(&o);
    assert_int_equal(o.size, sizeof o);
    assert_int_equal(o.connect_timeout_ms, 10000);
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    rill_client *c = NULL;
    char err[256];
    o.url = "ftp://x/";
    assert_int_equal(rill_client_new(loop, &o, &c, err, sizeof err), RILL_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "http://"));
    o.url = "http://:80/";
    assert_int_equal(rill_client_new(loop, &o, &c, err, sizeof err), RILL_ERR_INVALID_ARG);
    o.url = "http://h:99999/";
    assert_int_equal(rill_client_new(loop, &o, &c, err, sizeof err), RILL_ERR_INVALID_ARG);
    o.url = "http://127.0.0.1:8080/x";
    o.size = sizeof o + 8; /* a caller built against a newer rill */
    assert_int_equal(rill_client_new(loop, &o, &c, err, sizeof err), RILL_ERR_INVALID_ARG);
    o.size = sizeof o;
    assert_int_equal(rill_client_new(loop, &o, &c, err, sizeof err), RILL_OK);
    rill_client_stream *st = (rill_client_stream *)1;
    assert_int_equal(rill_client_request(c, "G T", "/", NULL, 0, NULL, 0, NULL, NULL, &st),
                     RILL_ERR_INVALID_ARG);
    assert_null(st);
    assert_int_equal(rill_client_request(c, "GET", "/a b", NULL, 0, NULL, 0, NULL, NULL, NULL),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_client_request(c, "GET", "http://other:8080/", NULL, 0, NULL, 0, NULL,
                                         NULL, NULL),
                     RILL_ERR_INVALID_ARG);
    rill_client_callbacks cb = {.size = sizeof cb + 1};
    assert_int_equal(rill_client_request(c, "GET", "/", NULL, 0, NULL, 0, &cb, NULL, NULL),
                     RILL_ERR_INVALID_ARG);
    /* Queued and never run: freeing the client ends it silently. */
    assert_int_equal(rill_client_request(c, "GET", "http://127.0.0.1:8080/y", NULL, 0, NULL, 0,
                                         NULL, NULL, &st),
                     RILL_OK);
    assert_non_null(st);
    assert_null(rill_client_stream_protocol(st));
    rill_client_free(c);
    rill_io_loop_free(loop);
}

/* ---- HTTP/1.1 ---------------------------------------------------------------------------------- */

static void chunked_with_1xx_and_trailers_in(size_t piece)
{
    static const char *const answers[] = {
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n"};
    struct canned s;
    canned_start_pieces(&s, answers, 1, false, piece);
    rill_client_result r;
    assert_int_equal(rill_client_fetch(url_of(s.port, "/c"), NULL, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.protocol, "http/1.1");
    assert_int_equal(r.body_len, 11);
    assert_string_equal((char *)r.body, "hello world");
    assert_non_null(field(&r, "x-a"));
    assert_string_equal((const char *)field(&r, "X-A")->value, "1");
    assert_string_equal(r.error, "");
    rill_client_result_free(&r);
    assert_null(r.body);
    canned_stop(&s);
}

static void fetch_chunked_with_1xx_and_trailers(void **state)
{
    (void)state;
    chunked_with_1xx_and_trailers_in(0);
}

/* The same answer a byte per write, and in 7-byte writes: every line end, chunk size and trailer
 * split across reads. */
static void answers_in_pieces(void **state)
{
    (void)state;
    chunked_with_1xx_and_trailers_in(1);
    chunked_with_1xx_and_trailers_in(7);
}

static void fetch_until_close_and_to_a_file(void **state)
{
    static const char *const answers[] = {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"};
    struct canned s;
    canned_start(&s, answers, 1, true);
    FILE *f = tmpfile();
    rill_client_fetch_options fo;
    rill_client_fetch_options_init(&fo);
    fo.out_fd = fileno(f);
    rill_client_result r;
    assert_int_equal(rill_client_fetch(url_of(s.port, "/"), &fo, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 9);
    assert_null(r.body);
    char buf[32] = "";
    rewind(f);
    assert_int_equal(fread(buf, 1, sizeof buf, f), 9);
    assert_string_equal(buf, "all of it");
    fclose(f);
    rill_client_result_free(&r);
    canned_stop(&s);
}

struct counter {
    rill_io_loop *loop;
    int ended, failed;
    int last_err;
    char body[256];
    size_t len;
};

static void count_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct counter *c = user;
    if (c->len + n < sizeof c->body) {
        memcpy(c->body + c->len, d, n);
        c->len += n;
    }
}

static void count_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct counter *c = user;
    c->ended++;
    c->failed += err != 0;
    c->last_err = err;
    if (err)
        assert_non_null(why);
    if (c->ended == 3)
        rill_io_loop_stop(c->loop);
}

static const rill_client_callbacks count_cb = {
    .size = sizeof count_cb, .on_data = count_data, .on_end = count_end};

static void keep_alive_reuses_one_connection(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ncde",
    };
    struct canned s;
    canned_start(&s, answers, 3, false);
    struct counter cnt = {0};
    assert_int_equal(rill_io_loop_new(NULL, &cnt.loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(s.port, "/");
    o.max_connections = 1; /* one after another on one connection (the pool: integration tests) */
    rill_client *c;
    assert_int_equal(rill_client_new(cnt.loop, &o, &c, NULL, 0), RILL_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rill_client_request(c, i == 1 ? "POST" : "GET", "/", NULL, 0,
                                             i == 1 ? "xyz" : NULL, i == 1 ? 3 : 0, &count_cb,
                                             &cnt, NULL),
                         RILL_OK);
    rill_io_loop_run(cnt.loop);
    assert_int_equal(cnt.ended, 3);
    assert_int_equal(cnt.failed, 0);
    assert_int_equal(cnt.len, 5);
    assert_memory_equal(cnt.body, "abcde", 5);
    assert_int_equal(rill_client_connections(c), 1);
    rill_client_free(c);
    rill_io_loop_free(cnt.loop);
    canned_stop(&s);
    assert_int_equal(atomic_load(&s.accepted), 1);
    assert_int_equal(atomic_load(&s.requests), 3);
}

/* A server that closes after each answer: the requests still waiting go on new connections. */
static void connection_close_reconnects(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nb",
        "HTTP/1.0 200 OK\r\n\r\nc",
    };
    struct canned s;
    canned_start(&s, answers, 3, true);
    struct counter cnt = {0};
    assert_int_equal(rill_io_loop_new(NULL, &cnt.loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(s.port, "/");
    rill_client *c;
    assert_int_equal(rill_client_new(cnt.loop, &o, &c, NULL, 0), RILL_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rill_client_request(c, "GET", "/", NULL, 0, NULL, 0, &count_cb, &cnt, NULL),
                         RILL_OK);
    rill_io_loop_run(cnt.loop);
    assert_int_equal(cnt.failed, 0);
    assert_memory_equal(cnt.body, "abc", 3);
    assert_int_equal(rill_client_connections(c), 3);
    rill_client_free(c);
    rill_io_loop_free(cnt.loop);
    canned_stop(&s);
    assert_int_equal(atomic_load(&s.accepted), 3);
}

static void failures_have_their_codes(void **state)
{
    rill_client_result r;
    /* Refused: nothing listens on a port we just closed. */
    uint16_t port = 0;
    int lfd = tcp_listen_any(&port);
    assert_true(lfd >= 0);
    close(lfd);
    assert_int_equal(rill_client_fetch(url_of(port, "/"), NULL, &r), RILL_ERR_IO);
    assert_non_null(strstr(r.error, "refused"));
    rill_client_result_free(&r);

    /* A broken response. */
    static const char *const bad[] = {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"};
    struct canned s;
    canned_start(&s, bad, 1, false);
    assert_int_equal(rill_client_fetch(url_of(s.port, "/"), NULL, &r), RILL_ERR_PROTOCOL);
    assert_non_null(strstr(r.error, "HTTP/1.1"));
    rill_client_result_free(&r);
    canned_stop(&s);

    /* A body cut short by the close. */
    static const char *const cut[] = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"};
    canned_start(&s, cut, 1, true);
    assert_int_equal(rill_client_fetch(url_of(s.port, "/"), NULL, &r), RILL_ERR_PROTOCOL);
    rill_client_result_free(&r);
    canned_stop(&s);

    /* No answer at all: the request timeout. */
    static const char *const silent[] = {""};
    canned_start(&s, silent, 1, false);
    rill_client_options co;
    rill_client_options_init(&co);
    co.request_timeout_ms = 200;
    rill_client_fetch_options fo;
    rill_client_fetch_options_init(&fo);
    fo.client = &co;
    assert_int_equal(rill_client_fetch(url_of(s.port, "/"), &fo, &r), RILL_ERR_TIMEOUT);
    assert_int_equal(r.status, 0);
    rill_client_result_free(&r);
    canned_stop(&s);

    /* Too much for max_body. */
    static const char *const big[] = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"};
    canned_start(&s, big, 1, true);
    fo.client = NULL;
    fo.max_body = 4;
    assert_int_equal(rill_client_fetch(url_of(s.port, "/"), &fo, &r), RILL_ERR_TOO_BIG);
    rill_client_result_free(&r);
    canned_stop(&s);
}

/* ---- HTTP/2: rill's engine as the server ------------------------------------------------------- */

struct h2peer {
    int lfd;
    uint16_t port;
    atomic_int accepted;
    pthread_t thread;
    rill_h2_session *s;
    size_t body[16]; /* request body bytes per stream id / 2 */
    char path[16][32];
    int answered;
    int resets; /* RST_STREAM frames received */
    uint32_t reset_code;
    size_t piece; /* the peer's output in writes of this many bytes (0: whole) */
    int32_t promised; /* the stream /push promised, or an error */
};

static int peer_headers(rill_h2_session *s, int32_t id, enum rill_h2_headers_kind kind,
                        const rill_header *f, size_t n, uint32_t flags, void *user)
{
    struct h2peer *p = user;
    for (size_t i = 0; i < n; i++)
        if (f[i].name_len == 5 && memcmp(f[i].name, ":path", 5) == 0)
            snprintf(p->path[(id / 2) % 16], 32, "%.*s", (int)f[i].value_len, (const char *)f[i].value);
    return 0;
}

static int peer_data(rill_h2_session *s, int32_t id, const uint8_t *d, size_t n, void *user)
{
    struct h2peer *p = user;
    p->body[(id / 2) % 16] += n;
    rill_h2_consume(s, id, n);
    return 0;
}

/* Every request is answered with "<path> <body bytes>" and a trailer. */
static int peer_end(rill_h2_session *s, int32_t id, void *user)
{
    struct h2peer *p = user;
    if (strcmp(p->path[(id / 2) % 16], "/hold") == 0) { /* the head only: the body never comes */
        const rill_header h[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0}};
        return rill_h2_submit_response(s, id, h, 1, 0) < 0 ? -1 : 0;
    }
    if (strcmp(p->path[(id / 2) % 16], "/push") == 0) { /* promises /pushed.css first */
        const rill_header req[] = {{(const uint8_t *)":method", 7, (const uint8_t *)"GET", 3, 0},
                                   {(const uint8_t *)":scheme", 7, (const uint8_t *)"http", 4, 0},
                                   {(const uint8_t *)":authority", 10, (const uint8_t *)"a", 1, 0},
                                   {(const uint8_t *)":path", 5, (const uint8_t *)"/pushed.css", 11, 0}};
        int32_t pid = rill_h2_submit_push_promise(s, id, req, 4, NULL);
        if (pid > 0) {
            const rill_header h[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0}};
            rill_h2_submit_response(s, pid, h, 1, 0);
            rill_h2_submit_data(s, pid, (const uint8_t *)"pushed-body", 11, RILL_H2_FLAG_END_STREAM, NULL);
        }
        p->promised = pid;
    }
    static char bodies[16][64];
    char *b = bodies[(id / 2) % 16];
    snprintf(b, 64, "%s %zu", p->path[(id / 2) % 16], p->body[(id / 2) % 16]);
    const rill_header head[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0}};
    rill_h2_submit_response(s, id, head, 1, 0);
    rill_h2_submit_data(s, id, (const uint8_t *)b, strlen(b), 0, NULL);
    const rill_header tr[] = {{(const uint8_t *)"x-t", 3, (const uint8_t *)"done", 4, 0}};
    rill_h2_submit_trailers(s, id, tr, 1);
    p->answered++;
    return 0;
}

static int peer_reset(rill_h2_session *s, int32_t id, uint32_t code, void *user)
{
    struct h2peer *p = user;
    p->resets++;
    p->reset_code = code;
    return 0;
}

static const rill_h2_callbacks peer_cb = {
    .size = sizeof peer_cb, .on_headers = peer_headers, .on_data = peer_data,
    .on_end_stream = peer_end, .on_stream_reset = peer_reset};

static void *h2peer_run(void *arg)
{
    struct h2peer *p = arg;
    struct pollfd pl = {.fd = p->lfd, .events = POLLIN};
    while (poll(&pl, 1, 10000) > 0) {
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            break;
        atomic_fetch_add(&p->accepted, 1);
        set_timeouts(fd, 10000);
        p->s = rill_h2_session_new(RILL_H2_SERVER, NULL, &peer_cb, p);
        uint8_t buf[65536];
        for (;;) {
            size_t n;
            while ((n = rill_h2_session_send_copy(p->s, buf, sizeof buf)) > 0)
                send_in_pieces(fd, buf, n, p->piece);
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0 || rill_h2_session_recv(p->s, buf, (size_t)r) < 0)
                break;
        }
        rill_h2_session_free(p->s);
        close(fd);
        if (atomic_load(&p->accepted) >= 1)
            break;
    }
    return NULL;
}

struct h2result {
    rill_io_loop *loop;
    int ended, failed, trailers;
    char body[4][64];
};

static void h2_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    char *b = user;
    strncat(b, (const char *)d, n < 63 - strlen(b) ? n : 63 - strlen(b));
}

static void h2_trailers(rill_client_stream *st, const rill_header *f, size_t n, void *user)
{
    assert_non_null(rill_client_stream_client(st));
    assert_int_equal(n, 1);
    assert_memory_equal(f[0].name, "x-t", 3);
    strncat((char *)user, "+t", 3);
}

static struct h2result *h2_res;

static void h2_end(rill_client_stream *st, int err, const char *why, void *user)
{
    if (err)
        fprintf(stderr, "h2 request failed: %s\n", why);
    assert_string_equal(rill_client_stream_protocol(st), "h2");
    h2_res->failed += err != 0;
    if (++h2_res->ended == 4)
        rill_io_loop_stop(h2_res->loop);
}

static void h2c_multiplexes_with_peer_writes_of(size_t piece)
{
    struct h2peer p = {0};
    p.piece = piece;
    p.lfd = tcp_listen_any(&p.port);
    pthread_create(&p.thread, NULL, h2peer_run, &p);
    struct h2result res = {0};
    h2_res = &res;
    assert_int_equal(rill_io_loop_new(NULL, &res.loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(p.port, "/");
    o.h2_prior_knowledge = true;
    rill_client *c;
    assert_int_equal(rill_client_new(res.loop, &o, &c, NULL, 0), RILL_OK);
    static const rill_client_callbacks cb = {
        .size = sizeof cb, .on_data = h2_data, .on_trailers = h2_trailers, .on_end = h2_end};
    static uint8_t big[200000];
    const rill_header f[] = {{(const uint8_t *)"X-Mixed-Case", 12, (const uint8_t *)"v", 1, 0}};
    for (int i = 0; i < 4; i++) {
        char path[8];
        snprintf(path, sizeof path, "/%d", i);
        assert_int_equal(rill_client_request(c, i == 3 ? "POST" : "GET", path, f, 1,
                                             i == 3 ? big : NULL, i == 3 ? sizeof big : 0, &cb,
                                             res.body[i], NULL),
                         RILL_OK);
    }
    rill_io_loop_run(res.loop);
    assert_int_equal(res.ended, 4);
    assert_int_equal(res.failed, 0);
    assert_string_equal(res.body[0], "/0 0+t");
    assert_string_equal(res.body[2], "/2 0+t");
    assert_string_equal(res.body[3], "/3 200000+t");
    assert_int_equal(rill_client_connections(c), 1);
    rill_client_free(c); /* closes the connection: the peer's thread ends */
    rill_io_loop_free(res.loop);
    pthread_join(p.thread, NULL);
    close(p.lfd);
    assert_int_equal(atomic_load(&p.accepted), 1);
    assert_int_equal(p.answered, 4);
}

static void h2c_prior_knowledge_multiplexes(void **state)
{
    (void)state;
    h2c_multiplexes_with_peer_writes_of(0);
}

/* The server's frames a byte per write, and in 5-byte writes: frame headers, HPACK blocks and
 * DATA split across reads. */
static void h2_frames_in_pieces(void **state)
{
    (void)state;
    h2c_multiplexes_with_peer_writes_of(1);
    h2c_multiplexes_with_peer_writes_of(5);
}

/* ---- server push ------------------------------------------------------------------------------- */

struct push_rec {
    rill_io_loop *loop;
    int ended, failed, pushes;
    bool cancel_push;
    rill_client_stream *pushed;
    char parent_body[64], pushed_body[64], pushed_path[32];
    int pushed_err;
};

static void push_seen(rill_client_stream *st, rill_client_stream *pushed, const rill_header *f,
                      size_t n, void *user)
{
    struct push_rec *r = user;
    r->pushes++;
    r->pushed = pushed;
    for (size_t i = 0; i < n; i++)
        if (f[i].name_len == 5 && memcmp(f[i].name, ":path", 5) == 0)
            snprintf(r->pushed_path, sizeof r->pushed_path, "%.*s", (int)f[i].value_len,
                     (const char *)f[i].value);
    assert_ptr_not_equal(st, pushed);
    assert_string_equal(rill_client_stream_protocol(pushed), "h2");
    if (r->cancel_push)
        rill_client_stream_cancel(pushed);
}

static void push_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct push_rec *r = user;
    char *b = st == r->pushed ? r->pushed_body : r->parent_body;
    strncat(b, (const char *)d, n < 63 - strlen(b) ? n : 63 - strlen(b));
}

static void push_end(rill_client_stream *st, int err, const char *why, void *user)
{
    (void)why;
    struct push_rec *r = user;
    if (st == r->pushed)
        r->pushed_err = err;
    else
        r->failed += err != 0;
    if (++r->ended == (r->pushes ? 2 : 1))
        rill_io_loop_stop(r->loop);
}

/* With enable_push a promise reaches on_push and the pushed response the same callbacks; cancelled
 * from on_push it ends with RILL_ERR_CANCELLED and delivers nothing; without on_push it is refused
 * (RST_STREAM CANCEL) and delivers nothing; the connection goes on; the peer's frames in pieces. */
static void push_case(bool with_on_push, bool cancel, size_t piece)
{
    struct h2peer p = {0};
    p.piece = piece;
    p.lfd = tcp_listen_any(&p.port);
    pthread_create(&p.thread, NULL, h2peer_run, &p);
    struct push_rec r = {.cancel_push = cancel};
    assert_int_equal(rill_io_loop_new(NULL, &r.loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(p.port, "/");
    o.h2_prior_knowledge = true;
    o.enable_push = true;
    rill_client *c;
    assert_int_equal(rill_client_new(r.loop, &o, &c, NULL, 0), RILL_OK);
    rill_client_callbacks cb = {.size = sizeof cb, .on_data = push_data, .on_end = push_end};
    if (with_on_push)
        cb.on_push = push_seen;
    assert_int_equal(rill_client_request(c, "GET", "/push", NULL, 0, NULL, 0, &cb, &r, NULL), RILL_OK);
    rill_io_loop_run(r.loop);
    if (!with_on_push) { /* the parent ends; the refusal reaches the peer before it reads on */
        assert_int_equal(r.pushes, 0);
    } else {
        assert_int_equal(r.pushes, 1);
        assert_string_equal(r.pushed_path, "/pushed.css");
        assert_int_equal(r.pushed_err, cancel ? RILL_ERR_CANCELLED : 0);
        if (!cancel)
            assert_string_equal(r.pushed_body, "pushed-body");
    }
    assert_int_equal(r.failed, 0);
    assert_string_equal(r.parent_body, "/push 0");
    assert_string_equal(r.pushed_body, with_on_push && !cancel ? "pushed-body" : "");
    assert_int_equal(rill_client_connections(c), 1); /* a refused push is no connection error */
    rill_client_free(c);
    rill_io_loop_free(r.loop);
    pthread_join(p.thread, NULL);
    close(p.lfd);
    assert_true(p.promised > 0); /* the peer saw SETTINGS_ENABLE_PUSH 1 */
}

static void push_goes_to_on_push(void **state)
{
    (void)state;
    push_case(true, false, 0);
    push_case(true, false, 1);
    push_case(true, false, 7);
}

static void push_refused_or_cancelled(void **state)
{
    (void)state;
    push_case(false, false, 0);
    push_case(true, true, 0);
    push_case(true, true, 3);
}

/* ---- cancel ------------------------------------------------------------------------------------ */

struct cancel_rec {
    rill_io_loop *loop;
    int *ended; /* shared by the requests of a test; the loop stops at want */
    int want;
    bool cancel_at_response;
    int status, err;
    size_t data;
    char body[16];
};

static void cancel_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                            void *user)
{
    struct cancel_rec *r = user;
    r->status = status;
    if (r->cancel_at_response) {
        rill_client_stream_cancel(st);
        rill_client_stream_cancel(st); /* twice is once */
    }
}

static void cancel_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    struct cancel_rec *r = user;
    if (r->data + n < sizeof r->body)
        memcpy(r->body + r->data, d, n);
    r->data += n;
}

static void cancel_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct cancel_rec *r = user;
    r->err = err;
    if (err)
        assert_non_null(why);
    if (++*r->ended == r->want)
        rill_io_loop_stop(r->loop);
}

static const rill_client_callbacks cancel_cb = {
    .size = sizeof cancel_cb, .on_response = cancel_response, .on_data = cancel_data,
    .on_end = cancel_end};

/* HTTP/1.1: the first response never finishes; cancelled at its head, its connection closes and
 * the request queued behind it goes on a second connection. A request cancelled before it was
 * sent ends too, without a connection of its own. */
static void cancel_over_http1_closes_and_resends_the_rest(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    };
    struct canned s;
    canned_start(&s, answers, 2, false);
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(s.port, "/");
    o.request_timeout_ms = 20000; /* bounded if the cancel were lost */
    rill_client *c;
    assert_int_equal(rill_client_new(loop, &o, &c, NULL, 0), RILL_OK);
    int ended = 0;
    struct cancel_rec first = {.loop = loop, .ended = &ended, .want = 3, .cancel_at_response = true};
    struct cancel_rec second = first, unsent = first;
    second.cancel_at_response = unsent.cancel_at_response = false;
    rill_client_stream *st;
    assert_int_equal(rill_client_request(c, "GET", "/1", NULL, 0, NULL, 0, &cancel_cb, &first, NULL),
                     RILL_OK);
    assert_int_equal(rill_client_request(c, "GET", "/x", NULL, 0, NULL, 0, &cancel_cb, &unsent, &st),
                     RILL_OK);
    rill_client_stream_cancel(st);
    assert_int_equal(unsent.err, 0); /* on_end comes later, never inside the call */
    assert_int_equal(rill_client_request(c, "GET", "/2", NULL, 0, NULL, 0, &cancel_cb, &second, NULL),
                     RILL_OK);
    rill_io_loop_run(loop);
    assert_int_equal(ended, 3);
    assert_int_equal(unsent.err, RILL_ERR_CANCELLED);
    assert_int_equal(unsent.status, 0);
    assert_int_equal(first.err, RILL_ERR_CANCELLED);
    assert_int_equal(first.status, 200);
    assert_int_equal(first.data, 0); /* "abc" came with the head, after the cancel */
    assert_int_equal(second.err, RILL_OK);
    assert_string_equal(second.body, "ok");
    assert_int_equal(rill_client_connections(c), 2);
    rill_client_free(c);
    rill_io_loop_free(loop);
    canned_stop(&s);
    assert_int_equal(atomic_load(&s.accepted), 2);
    assert_int_equal(atomic_load(&s.requests), 2); /* "/x" was never sent */
}

/* HTTP/2: the cancelled stream is reset (RST_STREAM CANCEL); the connection and the other stream
 * go on. */
static void cancel_over_h2_resets_the_stream(void **state)
{
    struct h2peer p = {0};
    p.lfd = tcp_listen_any(&p.port);
    pthread_create(&p.thread, NULL, h2peer_run, &p);
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url_of(p.port, "/");
    o.h2_prior_knowledge = true;
    o.request_timeout_ms = 20000;
    rill_client *c;
    assert_int_equal(rill_client_new(loop, &o, &c, NULL, 0), RILL_OK);
    int ended = 0;
    struct cancel_rec held = {.loop = loop, .ended = &ended, .want = 2, .cancel_at_response = true};
    struct cancel_rec other = held;
    other.cancel_at_response = false;
    assert_int_equal(rill_client_request(c, "GET", "/hold", NULL, 0, NULL, 0, &cancel_cb, &held, NULL),
                     RILL_OK);
    assert_int_equal(rill_client_request(c, "GET", "/b", NULL, 0, NULL, 0, &cancel_cb, &other, NULL),
                     RILL_OK);
    rill_io_loop_run(loop);
    assert_int_equal(held.err, RILL_ERR_CANCELLED);
    assert_int_equal(held.status, 200);
    assert_int_equal(other.err, RILL_OK);
    assert_string_equal(other.body, "/b 0");
    assert_int_equal(rill_client_connections(c), 1);
    rill_client_free(c); /* the RST_STREAM went out before: the peer reads it, then the close */
    rill_io_loop_free(loop);
    pthread_join(p.thread, NULL);
    close(p.lfd);
    assert_int_equal(p.resets, 1);
    assert_int_equal(p.reset_code, RILL_H2_CANCEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_and_bad_arguments),
        cmocka_unit_test(fetch_chunked_with_1xx_and_trailers),
        cmocka_unit_test(answers_in_pieces),
        cmocka_unit_test(fetch_until_close_and_to_a_file),
        cmocka_unit_test(keep_alive_reuses_one_connection),
        cmocka_unit_test(connection_close_reconnects),
        cmocka_unit_test(failures_have_their_codes),
        cmocka_unit_test(h2c_prior_knowledge_multiplexes),
        cmocka_unit_test(h2_frames_in_pieces),
        cmocka_unit_test(push_goes_to_on_push),
        cmocka_unit_test(push_refused_or_cancelled),
        cmocka_unit_test(cancel_over_http1_closes_and_resends_the_rest),
        cmocka_unit_test(cancel_over_h2_resets_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
