/* HTTP/1.1 pipelining in the request client (rill_client_options.max_pipeline) against a server
 * scripted here on a thread that reads requests as they come, several per read, and answers each
 * only once a given number of requests arrived on its connection: a client that did not pipeline
 * would never get the later answers. Answers go out in pieces (every size from one byte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "rill/client.h"
#include "test_io_util.h"

#define MAXREQ 16

struct script {
    /* per request, in arrival order over every connection */
    unsigned answer_when[MAXREQ]; /* answer once this many requests came on its connection */
    bool close_after[MAXREQ];     /* close the connection after answering it */
    bool drop[MAXREQ];            /* close the connection as it comes, unanswered */
    size_t nreq;                  /* requests to take in all */
    size_t piece;                 /* answers written this many bytes at a time (0: whole) */
    /* what the server saw */
    char method[MAXREQ][8];
    char path[MAXREQ][32];
    unsigned conn_of[MAXREQ];  /* 1 for the first connection */
    unsigned ahead[MAXREQ];    /* requests not yet answered on its connection when it came */
    atomic_int accepted;
    int lfd;
    uint16_t port;
    pthread_t thread;
};



static void *server_run(void *arg)
{
    struct script *s = arg;
    size_t taken = 0, answered = 0;
    while (taken < s->nreq) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            break;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        unsigned conn = (unsigned)atomic_fetch_add(&s->accepted, 1) + 1;
        set_timeouts(fd, 10000);
        char buf[16384];
        size_t have = 0;
        unsigned on_conn = 0;
        bool closed = false;
        while (!closed && taken < s->nreq) {
            ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
            if (r <= 0)
                break;
            have += (size_t)r;
            char *end;
            while (taken < s->nreq && (end = memmem(buf, have, "\r\n\r\n", 4))) {
                size_t k = taken++;
                sscanf(buf, "%7s %31s", s->method[k], s->path[k]);
                s->conn_of[k] = conn;
                s->ahead[k] = (unsigned)(k - answered);
                on_conn++;
                closed |= s->drop[k];
                size_t used = (size_t)(end + 4 - buf);
                memmove(buf, buf + used, have - used);
                have -= used;
            }
            /* Answer, in order, what may be answered now: one write for all of them. */
            char out[8192];
            size_t n = 0;
            while (answered < taken && on_conn >= s->answer_when[answered] && !closed) {
                size_t k = answered++;
                bool head = strcmp(s->method[k], "HEAD") == 0;
                n += (size_t)snprintf(out + n, sizeof out - n,
                                      "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                                      strlen(s->path[k]), head ? "" : s->path[k]);
                closed = s->close_after[k];
            }
            send_in_pieces(fd, out, n, s->piece);
        }
        close(fd);
        answered = taken; /* what came on it unanswered is never answered */
    }
    return NULL;
}

static void server_start(struct script *s)
{
    s->lfd = tcp_listen_any(&s->port);
    pthread_create(&s->thread, NULL, server_run, s);
}

static void server_stop(struct script *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

struct req {
    char body[64];
    size_t len;
    int err;
    bool ended;
    bool trigger; /* its first body bytes cancel run->cancel_me */
    struct run *run;
};

struct run {
    rill_io_loop *loop;
    size_t ended, total;
    rill_client_stream *cancel_me; /* cancelled when the request before it gets body bytes */
};

static void req_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    (void)st;
    struct req *r = user;
    if (r->trigger && r->run->cancel_me) {
        rill_client_stream *c = r->run->cancel_me;
        r->run->cancel_me = NULL;
        rill_client_stream_cancel(c);
    }
    if (r->len + n <= sizeof r->body) {
        memcpy(r->body + r->len, d, n);
        r->len += n;
    }
}

static void req_end(rill_client_stream *st, int err, const char *why, void *user)
{
    (void)st;
    (void)why;
    struct req *r = user;
    assert_false(r->ended);
    r->ended = true;
    r->err = err;
    struct run *run = r->run;
    if (++run->ended == run->total)
        rill_io_loop_stop(run->loop);
}

static void trace_line(rill_client *c, const char *line, void *user)
{
    (void)c;
    (void)user;
    fprintf(stderr, "* %s\n", line);
}

static void give_up(rill_io_timer *t, void *loop)
{
    (void)t;
    rill_io_loop_stop(loop);
}

static const rill_client_callbacks req_cb = {
    .size = sizeof req_cb, .on_data = req_data, .on_end = req_end};

/* Sends n requests (methods[i], path "/i") at once on a client of max_pipeline depth (one
 * connection) and runs until all ended. cancel: the index of one to cancel when the one before it
 * gets its first body bytes (-1: none). */
static void run_requests(struct script *s, const char *const *methods, size_t n,
                                 unsigned depth, struct req *reqs, int cancel)
{
    struct run run = {.total = n};
    assert_int_equal(rill_io_loop_new(NULL, &run.loop), RILL_OK);
    rill_client_options o;
    rill_client_options_init(&o);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", s->port);
    o.url = url;
    o.max_connections = 1;
    o.max_pipeline = depth;
    rill_client *c;
    assert_int_equal(rill_client_new(run.loop, &o, &c, NULL, 0), RILL_OK);
    if (getenv("TRACE"))
        rill_client_set_trace(c, trace_line, NULL);
    for (size_t i = 0; i < n; i++) {
        char path[16];
        snprintf(path, sizeof path, "/%zu", i);
        reqs[i] = (struct req){.run = &run};
        rill_client_stream *st;
        assert_int_equal(rill_client_request(c, methods[i], path, NULL, 0, NULL, 0, &req_cb,
                                             &reqs[i], &st),
                         RILL_OK);
        if ((int)i == cancel) {
            run.cancel_me = st;
            reqs[i - 1].trigger = true;
        }
    }
    rill_io_timer *limit = rill_io_timer_new(run.loop, give_up, run.loop);
    assert_non_null(limit);
    rill_io_timer_arm(limit, 10000); /* a request that never ends fails here, not by hanging */
    rill_io_loop_run(run.loop);
    rill_io_timer_free(limit);
    assert_int_equal(run.ended, n);
    rill_client_free(c);
    rill_io_loop_free(run.loop);
}

static void assert_answered(const struct req *r, size_t i, bool head)
{
    char want[16];
    snprintf(want, sizeof want, "/%zu", i);
    assert_int_equal(r->err, 0);
    if (head)
        assert_int_equal(r->len, 0);
    else {
        assert_int_equal(r->len, strlen(want));
        assert_memory_equal(r->body, want, r->len);
    }
}

/* The first answer proves keep-alive; the next four go out before any of their answers (the
 * server holds them until all four came), a HEAD among them, and the answers come back in one
 * write cut into pieces of every size. */
static void gets_and_heads_go_behind_one_another(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "GET", "HEAD", "GET", "GET"};
    for (size_t piece = 0; piece <= 24; piece = piece ? piece * 2 + 1 : 1) {
        struct script s = {.nreq = 5, .answer_when = {1, 5, 5, 5, 5}, .piece = piece};
        server_start(&s);
        struct req r[5];
        run_requests(&s, methods, 5, 8, r, -1);
        server_stop(&s);
        for (size_t i = 0; i < 5; i++) {
            assert_answered(&r[i], i, i == 2);
            assert_string_equal(s.method[i], methods[i]);
        }
        assert_int_equal(atomic_load(&s.accepted), 1);
        assert_int_equal(s.ahead[0], 0);
        assert_int_equal(s.ahead[4], 3); /* three still unanswered ahead of the last */
    }
}

/* Without max_pipeline (and up to the depth with it) a request waits for the answer ahead. */
static void depth_is_a_ceiling(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "GET", "GET", "GET", "GET"};
    struct script s = {.nreq = 5, .answer_when = {1, 3, 3, 5, 5}};
    server_start(&s);
    struct req r[5];
    run_requests(&s, methods, 5, 2, r, -1);
    server_stop(&s);
    for (size_t i = 0; i < 5; i++)
        assert_answered(&r[i], i, false);
    for (size_t i = 0; i < 5; i++)
        assert_true(s.ahead[i] <= 1);

    struct script one = {.nreq = 3, .answer_when = {1, 2, 3}};
    server_start(&one);
    run_requests(&one, methods, 3, 0, r, -1);
    server_stop(&one);
    for (size_t i = 0; i < 3; i++) {
        assert_answered(&r[i], i, false);
        assert_int_equal(one.ahead[i], 0);
    }
}

/* A POST is never sent behind an unanswered request, and nothing goes behind a POST before its
 * answer came (RFC 9112 §9.3.2: a retry must not repeat it). */
static void only_safe_requests_go_behind(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "GET", "POST", "GET", "GET"};
    struct script s = {.nreq = 5, .answer_when = {1, 2, 3, 5, 5}};
    server_start(&s);
    struct req r[5];
    run_requests(&s, methods, 5, 8, r, -1);
    server_stop(&s);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(r[i].err, 0);
    assert_string_equal(s.method[2], "POST");
    assert_int_equal(s.ahead[2], 0);
    assert_int_equal(s.ahead[3], 0); /* sent once the POST's answer began */
    assert_int_equal(s.ahead[4], 1);
}

/* The server answers two of four pipelined requests and closes: the two unanswered go again, on a
 * new connection, each alone, and every caller gets its own answer. */
static void unanswered_ones_go_again_after_a_close(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "GET", "GET", "GET", "GET"};
    for (size_t piece = 0; piece <= 7; piece += 7) {
        struct script s = {.nreq = 7,
                           .answer_when = {1, 5, 5, 5, 5, 1, 2},
                           .close_after = {false, false, true},
                           .piece = piece};
        server_start(&s);
        struct req r[5];
        run_requests(&s, methods, 5, 8, r, -1);
        server_stop(&s);
        for (size_t i = 0; i < 5; i++)
            assert_answered(&r[i], i, false);
        assert_int_equal(atomic_load(&s.accepted), 2);
        assert_string_equal(s.path[5], "/3");
        assert_string_equal(s.path[6], "/4");
        assert_int_equal(s.conn_of[5], 2);
        assert_int_equal(s.ahead[6], 0); /* alone */
    }
}

/* A request sent again after a close is sent alone, and a close before its answer then ends it
 * (it went once behind another and once alone: no third time, no endless round). */
static void a_request_sent_again_is_not_sent_for_ever(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "GET", "GET"};
    struct script s = {.nreq = 4,
                       .answer_when = {1, 3, 3, 1},
                       .close_after = {false, true},
                       .drop = {false, false, false, true}};
    server_start(&s);
    struct req r[3];
    run_requests(&s, methods, 3, 8, r, -1);
    server_stop(&s);
    assert_answered(&r[0], 0, false);
    assert_answered(&r[1], 1, false);
    assert_int_not_equal(r[2].err, 0);
    assert_int_equal(atomic_load(&s.accepted), 2);
    assert_string_equal(s.path[3], "/2");
    assert_int_equal(s.ahead[2], 1); /* pipelined the first time */
}

/* A queued request cancelled while the one ahead is being answered ends at once for its caller;
 * its answer is read and dropped, the others get theirs on the same connection. */
static void cancelled_queued_answer_is_dropped(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "GET", "GET", "GET"};
    for (size_t piece = 0; piece <= 5; piece += 5) {
        struct script s = {.nreq = 4, .answer_when = {1, 4, 4, 4}, .piece = piece};
        server_start(&s);
        struct req r[4];
        run_requests(&s, methods, 4, 8, r, 2);
        server_stop(&s);
        assert_answered(&r[0], 0, false);
        assert_answered(&r[1], 1, false);
        assert_int_equal(r[2].err, RILL_ERR_CANCELLED);
        assert_int_equal(r[2].len, 0);
        assert_answered(&r[3], 3, false);
        assert_int_equal(atomic_load(&s.accepted), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gets_and_heads_go_behind_one_another),
        cmocka_unit_test(depth_is_a_ceiling),
        cmocka_unit_test(only_safe_requests_go_behind),
        cmocka_unit_test(unanswered_ones_go_again_after_a_close),
        cmocka_unit_test(a_request_sent_again_is_not_sent_for_ever),
        cmocka_unit_test(cancelled_queued_answer_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
