/* The I/O runtime against real loopback sockets: addresses, timers, posts, signals, echo with
 * partial writes and back-pressure, graceful close, limits, shutdown, SO_REUSEPORT, connect. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/io_internal.h"
#include "test_io_util.h"

static uint16_t listen_any(rill_io_loop *loop, const struct rill_io_conn_callbacks *cb, void *user)
{
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0), RILL_OK);
    rill_io_listener *l;
    assert_int_equal(rill_io_listen(loop, &addr, NULL, cb, user, &l), RILL_OK);
    struct rill_io_addr bound = rill_io_listener_addr(l);
    return rill_io_addr_port(&bound);
}

/* ---- addresses ---------------------------------------------------------------------------- */

static void addresses_parse_and_format(void **state)
{
    (void)state;
    struct rill_io_addr a;
    char text[64], err[160];
    const struct { const char *in, *out; } good[] = {
        {"127.0.0.1:8080", "127.0.0.1:8080"}, {"[::1]:8443", "[::1]:8443"},
        {"localhost:0", "127.0.0.1:0"},      {":80", "0.0.0.0:80"},
        {"*:65535", "0.0.0.0:65535"},        {"[::]:1", "[::]:1"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(rill_io_addr_parse(good[i].in, &a, err, sizeof err), RILL_OK);
        rill_io_addr_format(&a, text, sizeof text);
        assert_string_equal(text, good[i].out);
    }
    assert_int_equal(a.ss.ss_family, AF_INET6);
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[::1]80",
                         "[::1:80", "[zz]:1", "1.2.3.4:8x", "host.invalid.:80", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(rill_io_addr_parse(bad[i], &a, err, sizeof err), RILL_ERR_INVALID_ARG);
        assert_non_null(strstr(err, "bad address"));
        assert_null(strchr(err, '\n'));
    }
}

static void listen_error_names_the_cause(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    static const struct rill_io_conn_callbacks cb = {.size = sizeof cb};
    /* A plain socket bound without SO_REUSEPORT blocks the port for us. */
    int blocker = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(blocker, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(blocker, 1), 0);
    socklen_t len = sizeof sa;
    getsockname(blocker, (struct sockaddr *)&sa, &len);
    char spec[32];
    snprintf(spec, sizeof spec, "127.0.0.1:%u", ntohs(sa.sin_port));
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse(spec, &addr, NULL, 0), RILL_OK);
    assert_int_equal(rill_io_listen(loop, &addr, NULL, &cb, NULL, NULL), RILL_ERR_IO);
    assert_non_null(strstr(rill_io_loop_last_error(loop), "cannot listen on"));
    assert_non_null(strstr(rill_io_loop_last_error(loop), "Address already in use"));
    assert_non_null(strstr(rill_io_loop_last_error(loop), spec));
    close(blocker);
    rill_io_loop_free(loop);
}

/* Another server's SO_REUSEPORT listener would let a second process share its port; rill's first
 * listener on an address refuses that, while its own loops still share one. */
static void a_port_in_use_is_refused_even_with_reuseport(void **state)
{
    (void)state;
    rill_io_loop *a, *b;
    assert_int_equal(rill_io_loop_new(NULL, &a), RILL_OK);
    assert_int_equal(rill_io_loop_new(NULL, &b), RILL_OK);
    static const struct rill_io_conn_callbacks cb = {.size = sizeof cb};
    int one = 1;
    int other = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(other, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(other, 1), 0);
    socklen_t len = sizeof sa;
    getsockname(other, (struct sockaddr *)&sa, &len);
    char spec[32];
    snprintf(spec, sizeof spec, "127.0.0.1:%u", ntohs(sa.sin_port));
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse(spec, &addr, NULL, 0), RILL_OK);
    assert_int_equal(rill_io_listen(a, &addr, NULL, &cb, NULL, NULL), RILL_ERR_IO);
    assert_non_null(strstr(rill_io_loop_last_error(a), "Address already in use"));
    close(other);

    /* Free now: the first loop takes it, the second joins, a foreign plain bind fails. */
    rill_io_listener *la, *lb;
    assert_int_equal(rill_io_listen(a, &addr, NULL, &cb, NULL, &la), RILL_OK);
    assert_int_equal(rill_io_listen(b, &addr, NULL, &cb, NULL, &lb), RILL_OK);
    int late = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(late, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_not_equal(bind(late, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(late, 1) == 0,
                         1);
    close(late);
    /* Both closed, and the port taken by someone else: the next listener is a first one again
     * and fails (a stale claim would join the stranger's group). */
    rill_io_listener_close(la);
    rill_io_listener_close(lb);
    other = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(other, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    assert_int_equal(bind(other, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(other, 1), 0);
    assert_int_equal(rill_io_listen(b, &addr, NULL, &cb, NULL, NULL), RILL_ERR_IO);
    close(other);
    rill_io_loop_free(a);
    rill_io_loop_free(b);
}

/* A listener on 127.0.0.1 with a free port; returns the bound address. */
static struct rill_io_addr listen_loopback(rill_io_loop *loop, const struct rill_io_conn_callbacks *cb,
                                           void *user)
{
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0), RILL_OK);
    rill_io_listener *l;
    assert_int_equal(rill_io_listen(loop, &addr, NULL, cb, user, &l), RILL_OK);
    return rill_io_listener_addr(l);
}

/* A plain blocking client socket connected to addr (IPv4 loopback). */
static int connect_blocking(const struct rill_io_addr *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(rill_io_addr_port(addr)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* ---- timers ------------------------------------------------------------------------------- */

struct timer_log {
    rill_io_loop *loop;
    char order[16];
    int n;
    uint64_t fired_at[16];
    int spins;
    rill_io_timer *spinner;
};

struct named_timer {
    struct timer_log *log;
    char name;
    rill_io_timer *t;
};

static void named_fired(rill_io_timer *t, void *arg)
{
    (void)t;
    struct named_timer *nt = arg;
    nt->log->fired_at[nt->log->n] = rill_io_loop_now_ms(nt->log->loop);
    nt->log->order[nt->log->n++] = nt->name;
    if (nt->name == 'E')
        rill_io_loop_stop(nt->log->loop);
}

static void spinner_fired(rill_io_timer *t, void *arg)
{
    struct timer_log *log = arg;
    /* Re-arming with 0 from the callback must wait for the next turn, not recurse. */
    if (++log->spins < 3)
        rill_io_timer_arm(t, 0);
}

static void timers_fire_in_order_cancel_and_rearm(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct timer_log log = {.loop = loop};
    struct named_timer t[5];
    const char names[] = "ABCDE";
    for (int i = 0; i < 5; i++) {
        t[i] = (struct named_timer){&log, names[i], NULL};
        t[i].t = rill_io_timer_new(loop, named_fired, &t[i]);
        assert_non_null(t[i].t);
    }
    uint64_t start = rill_io_loop_now_ms(loop);
    rill_io_timer_arm(t[0].t, 60); /* A at 60 */
    rill_io_timer_arm(t[1].t, 20); /* B at 20 */
    rill_io_timer_arm(t[2].t, 20); /* C at 20, after B (same deadline, armed later) */
    rill_io_timer_arm(t[3].t, 10); /* D: cancelled below */
    rill_io_timer_arm(t[4].t, 5);  /* E: re-armed to 100, stops the loop */
    rill_io_timer_cancel(t[3].t);
    rill_io_timer_cancel(t[3].t); /* twice is harmless */
    assert_false(rill_io_timer_armed(t[3].t));
    rill_io_timer_arm(t[4].t, 100);
    /* Outside run() the loop's time is refreshed on arming, so a deadline is "now + delay". */
    assert_true(rill_io_timer_deadline(t[4].t) >= start + 100);
    assert_true(rill_io_timer_deadline(t[4].t) <= rill_io_now_ms() + 100);
    log.spinner = rill_io_timer_new(loop, spinner_fired, &log);
    rill_io_timer_arm(log.spinner, 0);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    assert_int_equal(log.n, 4);
    assert_memory_equal(log.order, "BCAE", 4);
    assert_true(log.fired_at[0] >= start + 20);
    assert_true(log.fired_at[2] >= start + 60);
    assert_true(log.fired_at[3] >= start + 100);
    assert_int_equal(log.spins, 3);
    for (int i = 0; i < 5; i++)
        rill_io_timer_free(t[i].t);
    rill_io_timer_free(log.spinner);
    guard_free(&g);
    rill_io_loop_free(loop);
}

/* Many timers in random order come out sorted: exercises the heap's sift paths and cancel from
 * the middle. */
struct heap_probe {
    rill_io_loop *loop;
    uint64_t last;
    int fired;
    bool sorted;
};

static void probe_fired(rill_io_timer *t, void *arg)
{
    struct heap_probe *p = arg;
    if (rill_io_timer_deadline(t) < p->last)
        p->sorted = false;
    p->last = rill_io_timer_deadline(t);
    p->fired++;
}

static void stop_post(rill_io_loop *loop, void *arg)
{
    (void)arg;
    rill_io_loop_stop(loop);
}

static void timer_heap_orders_many(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct heap_probe p = {.loop = loop, .sorted = true};
    enum { N = 500 };
    rill_io_timer *t[N];
    uint64_t base = rill_io_loop_now_ms(loop);
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        t[i] = rill_io_timer_new(loop, probe_fired, &p);
        x = x * 1103515245u + 12345u;
        /* Deadlines in the past fire on the first turn, in order. */
        assert_int_equal(rill_io_timer_arm_at(t[i], base - 1000 + (x >> 16) % 900), RILL_OK);
    }
    for (int i = 0; i < N; i += 3)
        rill_io_timer_cancel(t[i]);
    for (int i = 0; i < N; i += 7) /* re-arm some, including cancelled ones */
        rill_io_timer_arm_at(t[i], base - 2000 + (uint64_t)i);
    int expect = 0;
    for (int i = 0; i < N; i++)
        expect += rill_io_timer_armed(t[i]);
    struct guard g;
    guard_arm(&g, loop);
    /* The post runs in the first turn; every deadline is already past, so all fire then too. */
    rill_io_loop_post(loop, stop_post, NULL);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_int_equal(p.fired, expect);
    assert_true(p.sorted);
    for (int i = 0; i < N; i++)
        rill_io_timer_free(t[i]);
    guard_free(&g);
    rill_io_loop_free(loop);
}

/* ---- posts and signals -------------------------------------------------------------------- */

enum { POSTS = 2000 };

struct post_state {
    rill_io_loop *loop;
    pthread_t loop_thread;
    int next;
    bool in_order;
    bool on_loop_thread;
};

struct post_msg {
    struct post_state *st;
    int seq;
};

static void post_received(rill_io_loop *loop, void *arg)
{
    struct post_msg *m = arg;
    struct post_state *st = m->st;
    if (m->seq != st->next++)
        st->in_order = false;
    if (!pthread_equal(pthread_self(), st->loop_thread))
        st->on_loop_thread = false;
    if (m->seq == POSTS - 1)
        rill_io_loop_stop(loop);
    free(m);
}

static void *poster(void *arg)
{
    struct post_state *st = arg;
    for (int i = 0; i < POSTS; i++) {
        struct post_msg *m = malloc(sizeof *m);
        m->st = st;
        m->seq = i;
        if (rill_io_loop_post(st->loop, post_received, m) != RILL_OK)
            free(m);
    }
    return NULL;
}

static void post_from_other_thread_wakes_loop(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct post_state st = {.loop = loop, .loop_thread = pthread_self(), .in_order = true, .on_loop_thread = true};
    struct guard g;
    guard_arm(&g, loop);
    pthread_t th;
    pthread_create(&th, NULL, poster, &st);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    pthread_join(th, NULL);
    assert_false(g.fired);
    assert_int_equal(st.next, POSTS);
    assert_true(st.in_order);
    assert_true(st.on_loop_thread);
    guard_free(&g);
    rill_io_loop_free(loop);
}

static void on_signal(rill_io_loop *loop, int signo, void *arg)
{
    *(int *)arg = signo;
    rill_io_loop_stop(loop);
}

static void signals_arrive_as_loop_events(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    int got = 0;
    const int sigs[] = {SIGUSR1, SIGUSR2};
    assert_int_equal(rill_io_loop_watch_signals(loop, sigs, 2, on_signal, &got), RILL_OK);
    assert_int_equal(rill_io_loop_watch_signals(loop, sigs, 2, on_signal, &got), RILL_ERR_STATE);
    struct guard g;
    guard_arm(&g, loop);
    kill(getpid(), SIGUSR2); /* blocked, so it waits in the signalfd */
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_int_equal(got, SIGUSR2);
    guard_free(&g);
    rill_io_loop_free(loop);
}

/* ---- echo, back-pressure ------------------------------------------------------------------ */

struct echo_server {
    rill_io_loop *loop;
    int opened, closed, expect_closes;
    int close_errs[64];
    size_t max_queued;
    int drains, pauses;
    bool backpressure;
    int paused_fd; /* eventfd: tells the lazy client that back-pressure happened */
};

static void echo_open(rill_io_conn *conn, const char *alpn)
{
    struct echo_server *s = rill_io_conn_user(conn);
    assert_null(alpn);
    struct rill_io_tls_info info;
    assert_int_equal(rill_io_conn_tls_info(conn, &info), RILL_ERR_STATE); /* cleartext */
    struct rill_io_addr peer;
    char text[64];
    assert_int_equal(rill_io_conn_peer(conn, &peer), RILL_OK);
    rill_io_addr_format(&peer, text, sizeof text);
    assert_memory_equal(text, "127.0.0.1:", 10);
    s->opened++;
}

static void echo_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    struct echo_server *s = rill_io_conn_user(conn);
    /* Two pieces through writev: they must come out in order, as one stream. */
    struct iovec iov[2] = {{(void *)data, len / 3}, {(void *)(data + len / 3), len - len / 3}};
    assert_int_equal(rill_io_conn_writev(conn, iov, 2), RILL_OK);
    size_t q = rill_io_conn_queued(conn);
    if (q > s->max_queued)
        s->max_queued = q;
    /* A handler that writes faster than the peer reads pauses its input. */
    if (s->backpressure && q > 262144) {
        rill_io_conn_pause_read(conn, true);
        if (s->pauses++ == 0) {
            uint64_t one = 1;
            assert_int_equal(write(s->paused_fd, &one, sizeof one), sizeof one);
        }
    }
}

static void echo_drain(rill_io_conn *conn)
{
    struct echo_server *s = rill_io_conn_user(conn);
    s->drains++;
    rill_io_conn_pause_read(conn, false);
}

static void echo_close(rill_io_conn *conn, int err)
{
    struct echo_server *s = rill_io_conn_user(conn);
    if (s->closed < 64)
        s->close_errs[s->closed] = err;
    if (++s->closed == s->expect_closes)
        rill_io_loop_stop(s->loop);
}

static const struct rill_io_conn_callbacks echo_cb = {
    .size = sizeof echo_cb,
    .on_open = echo_open, .on_data = echo_data, .on_drain = echo_drain, .on_close = echo_close};

struct echo_client {
    uint16_t port;
    int conns;
    size_t bytes;
    int start_fd;
    bool ok;
};

static void *echo_client_main(void *arg)
{
    struct echo_client *c = arg;
    int fds[64];
    c->ok = true;
    for (int i = 0; i < c->conns; i++) {
        fds[i] = tcp_connect_rcvbuf(c->port, c->start_fd >= 0 ? 8192 : 0);
        if (fds[i] < 0)
            c->ok = false;
    }
    if (c->ok)
        c->ok = pump_echo(fds, c->conns, c->bytes, c->start_fd);
    for (int i = 0; i < c->conns; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return NULL;
}

static void run_echo(int conns, size_t bytes, bool backpressure, struct echo_server *s)
{
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    int paused_fd = backpressure ? eventfd(0, EFD_CLOEXEC) : -1;
    *s = (struct echo_server){.loop = loop, .expect_closes = conns, .backpressure = backpressure,
                              .paused_fd = paused_fd};
    struct echo_client c = {.port = listen_any(loop, &echo_cb, s), .conns = conns, .bytes = bytes,
                            .start_fd = paused_fd};
    struct guard g;
    guard_arm(&g, loop);
    pthread_t th;
    pthread_create(&th, NULL, echo_client_main, &c);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    pthread_join(th, NULL);
    assert_false(g.fired);
    assert_true(c.ok);
    assert_int_equal(s->opened, conns);
    assert_int_equal(s->closed, conns);
    for (int i = 0; i < conns; i++)
        assert_int_equal(s->close_errs[i], RILL_ERR_EOF);
    assert_int_equal(rill_io_loop_conn_count(loop), 0);
    if (paused_fd >= 0)
        close(paused_fd);
    guard_free(&g);
    rill_io_loop_free(loop);
}

static void echo_many_connections(void **state)
{
    (void)state;
    struct echo_server s;
    run_echo(48, 20000, false, &s);
}

static void echo_large_payloads_with_backpressure(void **state)
{
    (void)state;
    struct echo_server s;
    run_echo(6, 8u << 20, true, &s);
    /* The queue stayed bounded: at most one read (64 KiB) beyond the pause threshold. */
    assert_true(s.max_queued <= 262144 + IO_RECV_BUF_SIZE);
    assert_true(s.pauses > 0);
    assert_true(s.drains > 0);
}

/* A producer that refills only from on_drain: the client gets everything only if on_drain keeps
 * firing. The client's tiny receive buffer forces partial writes. */
struct producer {
    rill_io_loop *loop;
    size_t sent, total;
    int drains, closed_err, closes;
    size_t max_queued;
    sem_t ready;
};

static const uint8_t *big_block(void)
{
    static uint8_t block[1 << 20];
    static bool init;
    if (!init) {
        for (size_t i = 0; i < sizeof block; i++)
            block[i] = pattern(7, i);
        init = true;
    }
    return block;
}

static int releases;
static void count_release(void *arg)
{
    (void)arg;
    releases++;
}

static void produce(rill_io_conn *conn)
{
    struct producer *p = rill_io_conn_user(conn);
    /* Write 1 MiB by reference until well above the high-water mark, then wait for on_drain. */
    while (p->sent < p->total && rill_io_conn_queued(conn) < 2u << 20) {
        assert_int_equal(rill_io_conn_write_ref(conn, big_block(), 1u << 20, count_release, NULL), RILL_OK);
        p->sent += 1u << 20;
    }
    if (rill_io_conn_queued(conn) > p->max_queued)
        p->max_queued = rill_io_conn_queued(conn);
    if (p->sent == p->total)
        rill_io_conn_close(conn, true);
}

static void producer_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct producer *p = rill_io_conn_user(conn);
    produce(conn);
    sem_post(&p->ready);
}

static void producer_drain(rill_io_conn *conn)
{
    struct producer *p = rill_io_conn_user(conn);
    p->drains++;
    produce(conn);
}

static void producer_close(rill_io_conn *conn, int err)
{
    struct producer *p = rill_io_conn_user(conn);
    p->closed_err = err;
    p->closes++;
    rill_io_loop_stop(p->loop);
}

static const struct rill_io_conn_callbacks producer_cb = {
    .size = sizeof producer_cb,
    .on_open = producer_open, .on_drain = producer_drain, .on_close = producer_close};

struct slow_reader {
    uint16_t port;
    struct producer *p;
    size_t got;
    bool ok, eof;
};

static void *slow_reader_main(void *arg)
{
    struct slow_reader *r = arg;
    int fd = tcp_connect_rcvbuf(r->port, 4096);
    r->ok = fd >= 0 && sem_wait_ms(&r->p->ready, TEST_TIMEOUT_MS);
    uint8_t buf[65536];
    while (r->ok) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) {
            r->eof = true;
            break;
        }
        if (n < 0) {
            r->ok = false;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(7, (r->got + (size_t)i) % (1u << 20)))
                r->ok = false;
        r->got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void drain_callback_refills_until_done(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct producer p = {.loop = loop, .total = 24u << 20};
    sem_init(&p.ready, 0, 0);
    releases = 0;
    struct slow_reader r = {.port = listen_any(loop, &producer_cb, &p), .p = &p};
    struct guard g;
    guard_arm(&g, loop);
    pthread_t th;
    pthread_create(&th, NULL, slow_reader_main, &r);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    pthread_join(th, NULL);
    assert_false(g.fired);
    assert_true(r.ok);
    assert_true(r.eof); /* graceful close sent everything, then FIN */
    assert_int_equal(r.got, p.total);
    assert_int_equal(p.closes, 1);
    assert_int_equal(p.closed_err, 0);
    assert_true(p.drains >= 10); /* 24 MiB in <= 3 MiB refills */
    assert_true(p.max_queued <= (3u << 20));
    assert_int_equal(releases, 24); /* every referenced block was released once */
    guard_free(&g);
    sem_destroy(&p.ready);
    rill_io_loop_free(loop);
}

/* ---- limits and shutdown ------------------------------------------------------------------ */

struct limit_server {
    rill_io_loop *loop;
    int opened, closed;
    sem_t opened_sem, closed_sem;
};

static void limit_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct limit_server *s = rill_io_conn_user(conn);
    s->opened++;
    sem_post(&s->opened_sem);
}

static void limit_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    rill_io_conn_write(conn, data, len);
}

static void limit_close(rill_io_conn *conn, int err)
{
    (void)err;
    struct limit_server *s = rill_io_conn_user(conn);
    s->closed++;
    sem_post(&s->closed_sem);
}

static const struct rill_io_conn_callbacks limit_cb = {
    .size = sizeof limit_cb,
    .on_open = limit_open, .on_data = limit_data, .on_close = limit_close};

static bool echo_byte(int fd)
{
    char c = 'x', back = 0;
    return write_all(fd, &c, 1) && read_exact(fd, &back, 1) && back == 'x';
}

static void max_connections_closes_the_excess(void **state)
{
    (void)state;
    rill_io_loop *loop;
    rill_io_loop_options opts = {.size = sizeof opts, .max_conns = 2};
    assert_int_equal(rill_io_loop_new(&opts, &loop), RILL_OK);
    struct limit_server s = {.loop = loop};
    sem_init(&s.opened_sem, 0, 0);
    sem_init(&s.closed_sem, 0, 0);
    struct loop_thread lt = {.loop = loop};
    uint16_t port = listen_any(loop, &limit_cb, &s);
    loop_thread_start(&lt);

    int a = tcp_connect(port), b = tcp_connect(port);
    assert_true(a >= 0 && b >= 0);
    assert_true(sem_wait_ms(&s.opened_sem, TEST_TIMEOUT_MS));
    assert_true(sem_wait_ms(&s.opened_sem, TEST_TIMEOUT_MS));
    int c = tcp_connect(port); /* accepted by the kernel, then closed by the loop */
    assert_true(c >= 0);
    char byte;
    assert_false(read_exact(c, &byte, 1));
    close(c);
    assert_true(echo_byte(a) && echo_byte(b));
    close(a);
    assert_true(sem_wait_ms(&s.closed_sem, TEST_TIMEOUT_MS));
    int d = tcp_connect(port); /* a slot is free again */
    assert_true(d >= 0);
    assert_true(echo_byte(d));
    close(b);
    close(d);
    loop_thread_stop(&lt);
    assert_int_equal(s.opened, 3);
    sem_destroy(&s.opened_sem);
    sem_destroy(&s.closed_sem);
    rill_io_loop_free(loop);
}

struct shut_server {
    rill_io_loop *loop;
    int opened;
    int polite_err, stubborn_err, closes;
    sem_t opened_sem;
};

static void shut_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct shut_server *s = rill_io_conn_user(conn);
    s->opened++;
    sem_post(&s->opened_sem);
}

/* The first connection says goodbye and closes; the second says goodbye but never closes. */
static void shut_polite(rill_io_conn *conn)
{
    rill_io_conn_write(conn, "bye\n", 4);
    rill_io_conn_close(conn, true);
}

static void shut_stubborn(rill_io_conn *conn)
{
    rill_io_conn_write(conn, "wait\n", 5);
}

static void shut_close(rill_io_conn *conn, int err)
{
    struct shut_server *s = rill_io_conn_user(conn);
    s->closes++;
    if (conn->cb->on_shutdown == shut_polite)
        s->polite_err = err;
    else
        s->stubborn_err = err;
}

static const struct rill_io_conn_callbacks polite_cb = {
    .size = sizeof polite_cb,
    .on_open = shut_open, .on_shutdown = shut_polite, .on_close = shut_close};
static const struct rill_io_conn_callbacks stubborn_cb = {
    .size = sizeof stubborn_cb,
    .on_open = shut_open, .on_shutdown = shut_stubborn, .on_close = shut_close};

static void begin_shutdown(rill_io_loop *loop, void *arg)
{
    struct shut_server *s = arg;
    assert_ptr_equal(rill_io_loop_user(loop), s);
    assert_false(rill_io_loop_shutting_down(loop));
    rill_io_loop_shutdown(loop, 300);
    assert_true(rill_io_loop_shutting_down(loop));
}

static void graceful_shutdown_with_deadline(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct shut_server s = {.loop = loop, .polite_err = 1, .stubborn_err = 1};
    sem_init(&s.opened_sem, 0, 0);
    uint16_t polite_port = listen_any(loop, &polite_cb, &s);
    uint16_t stubborn_port = listen_any(loop, &stubborn_cb, &s);
    struct loop_thread lt = {.loop = loop, .rc = 1};
    loop_thread_start(&lt);
    int p = tcp_connect(polite_port), q = tcp_connect(stubborn_port);
    assert_true(p >= 0 && q >= 0);
    assert_true(sem_wait_ms(&s.opened_sem, TEST_TIMEOUT_MS));
    assert_true(sem_wait_ms(&s.opened_sem, TEST_TIMEOUT_MS));
    uint64_t start = rill_io_now_ms();
    rill_io_loop_set_user(loop, &s);
    rill_io_loop_post(loop, begin_shutdown, &s);
    char buf[8] = {0};
    assert_true(read_exact(p, buf, 4));
    assert_memory_equal(buf, "bye\n", 4);
    assert_false(read_exact(p, buf, 1)); /* then EOF */
    assert_true(read_exact(q, buf, 5));
    assert_memory_equal(buf, "wait\n", 5);
    assert_false(read_exact(q, buf, 1)); /* cut off at the deadline */
    pthread_join(lt.th, NULL);           /* run() returned by itself */
    assert_int_equal(lt.rc, RILL_OK);
    assert_true(rill_io_now_ms() - start >= 300);
    assert_int_equal(s.closes, 2);
    assert_int_equal(s.polite_err, 0);
    assert_int_equal(s.stubborn_err, RILL_ERR_TIMEOUT);
    assert_int_equal(tcp_connect(polite_port), -1); /* listeners are gone */
    close(p);
    close(q);
    sem_destroy(&s.opened_sem);
    rill_io_loop_free(loop);
}

/* ---- SO_REUSEPORT across threads ---------------------------------------------------------- */

struct spread {
    atomic_int opened;
};

static void spread_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct spread *s = rill_io_conn_user(conn);
    atomic_fetch_add(&s->opened, 1);
}

static const struct rill_io_conn_callbacks spread_cb = {
    .size = sizeof spread_cb,
    .on_open = spread_open, .on_data = limit_data};

static void reuseport_spreads_across_two_loops(void **state)
{
    (void)state;
    struct loop_thread lt[2];
    struct spread counts[2];
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0), RILL_OK);
    for (int i = 0; i < 2; i++) {
        atomic_init(&counts[i].opened, 0);
        lt[i] = (struct loop_thread){0};
        assert_int_equal(rill_io_loop_new(NULL, &lt[i].loop), RILL_OK);
        rill_io_listener *l;
        assert_int_equal(rill_io_listen(lt[i].loop, &addr, NULL, &spread_cb, &counts[i], &l), RILL_OK);
        addr = rill_io_listener_addr(l); /* the second loop binds the same port */
    }
    for (int i = 0; i < 2; i++)
        loop_thread_start(&lt[i]);
    enum { CONNS = 64 };
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = tcp_connect(rill_io_addr_port(&addr));
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < CONNS; i++) {
        assert_true(echo_byte(fds[i]));
        close(fds[i]);
    }
    for (int i = 0; i < 2; i++)
        loop_thread_stop(&lt[i]);
    int a = atomic_load(&counts[0].opened), b = atomic_load(&counts[1].opened);
    assert_int_equal(a + b, CONNS);
    assert_true(a > 0 && b > 0);
    for (int i = 0; i < 2; i++)
        rill_io_loop_free(lt[i].loop);
}

/* ---- client connect ----------------------------------------------------------------------- */

struct connect_state {
    rill_io_loop *loop;
    char got[16];
    size_t got_len;
    bool opened;
    int close_err, closes;
};

static void client_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct connect_state *s = rill_io_conn_user(conn);
    s->opened = true;
    rill_io_conn_write(conn, "pong", 4);
}

static void client_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    struct connect_state *s = rill_io_conn_user(conn);
    size_t room = sizeof s->got - 1 - s->got_len;
    if (len > room)
        len = room;
    memcpy(s->got + s->got_len, data, len);
    s->got_len += len;
    if (s->got_len >= 8)
        rill_io_conn_close(conn, true);
}

static void client_close(rill_io_conn *conn, int err)
{
    struct connect_state *s = rill_io_conn_user(conn);
    s->close_err = err;
    s->closes++;
    rill_io_loop_stop(s->loop);
}

static const struct rill_io_conn_callbacks client_cb = {
    .size = sizeof client_cb,
    .on_open = client_open, .on_data = client_data, .on_close = client_close};

static void connect_in_loop_queues_early_writes(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    static const struct rill_io_conn_callbacks server_cb = {.size = sizeof server_cb, .on_data = limit_data};
    struct rill_io_addr addr = listen_loopback(loop, &server_cb, NULL);
    struct connect_state s = {.loop = loop, .close_err = 1};
    rill_io_conn *conn;
    assert_int_equal(rill_io_connect(loop, &addr, NULL, NULL, &client_cb, &s, &conn), RILL_OK);
    assert_int_equal(rill_io_conn_write(conn, "ping", 4), RILL_OK); /* before on_open: queued */
    assert_int_equal(rill_io_conn_queued(conn), 4);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    assert_true(s.opened);
    assert_string_equal(s.got, "pingpong");
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, 0);
    guard_free(&g);
    rill_io_loop_free(loop);
}

/* The same over IPv6 loopback, when the machine has it. */
static void connect_over_ipv6(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&lo, sizeof lo) == 0;
    if (probe >= 0)
        close(probe);
    if (!have_v6)
        skip();
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    static const struct rill_io_conn_callbacks server_cb = {.size = sizeof server_cb, .on_data = limit_data};
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse("[::1]:0", &addr, NULL, 0), RILL_OK);
    rill_io_listener *l;
    assert_int_equal(rill_io_listen(loop, &addr, NULL, &server_cb, NULL, &l), RILL_OK);
    addr = rill_io_listener_addr(l);
    char text[64];
    rill_io_addr_format(&addr, text, sizeof text);
    assert_memory_equal(text, "[::1]:", 6);
    struct connect_state s = {.loop = loop, .close_err = 1};
    rill_io_conn *conn;
    assert_int_equal(rill_io_connect(loop, &addr, NULL, NULL, &client_cb, &s, &conn), RILL_OK);
    rill_io_conn_write(conn, "ping", 4);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_string_equal(s.got, "pingpong");
    assert_int_equal(s.close_err, 0);
    guard_free(&g);
    rill_io_loop_free(loop);
}

static void connect_refused_reports_on_close(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    /* A port that was just free: bind, read the number, close. */
    int tmp = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(tmp, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(tmp, (struct sockaddr *)&sa, &len);
    close(tmp);
    struct rill_io_addr addr = {.len = sizeof sa};
    memcpy(&addr.ss, &sa, sizeof sa);
    struct connect_state s = {.loop = loop, .close_err = 1};
    assert_int_equal(rill_io_connect(loop, &addr, NULL, NULL, &client_cb, &s, NULL), RILL_OK);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(s.opened);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, RILL_ERR_IO);
    assert_non_null(strstr(rill_io_loop_last_error(loop), "Connection refused"));
    guard_free(&g);
    rill_io_loop_free(loop);
}

/* on_open may tear down the listener it was accepted from (here: a shutdown) while the accept
 * loop is still running over its backlog. */
struct early_shutdown {
    int opened, closed;
};

static void early_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct early_shutdown *s = rill_io_conn_user(conn);
    s->opened++;
    rill_io_loop_shutdown(rill_io_conn_loop(conn), 5000);
}

static void early_close(rill_io_conn *conn, int err)
{
    (void)err;
    struct early_shutdown *s = rill_io_conn_user(conn);
    s->closed++;
}

static const struct rill_io_conn_callbacks early_cb = {.size = sizeof early_cb, .on_open = early_open, .on_close = early_close};

static void shutdown_from_on_open_stops_accepting(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct early_shutdown s = {0};
    uint16_t port = listen_any(loop, &early_cb, &s);
    int fds[3];
    for (int i = 0; i < 3; i++) /* all three wait in the backlog before the loop runs */
        assert_true((fds[i] = tcp_connect(port)) >= 0);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    assert_int_equal(s.opened, 1);
    assert_int_equal(s.closed, 1);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    guard_free(&g);
    rill_io_loop_free(loop);
}

/* Closing at once drops the queue and releases referenced buffers exactly once. */
static void abrupt_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    assert_int_equal(rill_io_conn_write_ref(conn, big_block(), 1u << 20, count_release, NULL), RILL_OK);
    assert_int_equal(rill_io_conn_write(conn, "tail", 4), RILL_OK);
    assert_int_equal(rill_io_conn_queued(conn), (1u << 20) + 4);
    rill_io_conn_close(conn, false);
    assert_int_equal(rill_io_conn_write(conn, "late", 4), RILL_ERR_STATE);
    rill_io_conn_close(conn, true); /* a second close does nothing */
}

static void abrupt_close(rill_io_conn *conn, int err)
{
    *(int *)rill_io_conn_user(conn) = err;
    rill_io_loop_stop(rill_io_conn_loop(conn));
}

static const struct rill_io_conn_callbacks abrupt_cb = {.size = sizeof abrupt_cb, .on_open = abrupt_open, .on_close = abrupt_close};

/* Accepts one connection with cbs, runs the loop until its on_close stops it (checking it closed
 * with 0 and released its one reference); returns the client's socket for the caller to read. */
static int run_until_closed(rill_io_loop *loop, const struct rill_io_conn_callbacks *cbs)
{
    int close_err = 1;
    releases = 0;
    uint16_t port = listen_any(loop, cbs, &close_err);
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    guard_free(&g);
    assert_int_equal(close_err, 0);
    assert_int_equal(releases, 1);
    return fd;
}

static void abrupt_close_releases_references(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    int fd = run_until_closed(loop, &abrupt_cb);
    char c;
    assert_true(recv(fd, &c, 1, 0) <= 0); /* nothing was sent */
    close(fd);
    rill_io_loop_free(loop);
}

/* An abort: the queue is dropped (references released once), on_close comes at the end of the
 * turn, not inside the call, and the peer sees a reset, not an orderly end. */
static bool abort_closed_inside;

static void abort_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    assert_int_equal(rill_io_conn_write_ref(conn, big_block(), 1u << 20, count_release, NULL), RILL_OK);
    abort_closed_inside = true;
    rill_io_conn_abort(conn);
    abort_closed_inside = false;
    assert_int_equal(rill_io_conn_write(conn, "late", 4), RILL_ERR_STATE);
    rill_io_conn_abort(conn); /* again: nothing */
    rill_io_conn_close(conn, true); /* a graceful close after it does not undo it */
}

static void abort_close(rill_io_conn *conn, int err)
{
    assert_false(abort_closed_inside);
    *(int *)rill_io_conn_user(conn) = err;
    rill_io_loop_stop(rill_io_conn_loop(conn));
}

static const struct rill_io_conn_callbacks abort_cb = {.size = sizeof abort_cb, .on_open = abort_open, .on_close = abort_close};

static void abort_resets_the_peer(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    int fd = run_until_closed(loop, &abort_cb);
    char c;
    errno = 0;
    assert_int_equal(recv(fd, &c, 1, 0), -1); /* not 0: that would be an orderly end */
    assert_int_equal(errno, ECONNRESET);
    close(fd);
    rill_io_loop_free(loop);
}

/* ---- batched wakeups (rill_io_conn_expect_bytes) ------------------------------------------- */

static int rcvlowat(const rill_io_conn *conn)
{
    int v = -1;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(conn->fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
    return v;
}

struct batch_state {
    int peer; /* the test's end */
    size_t got;
    int data_calls;
    uint64_t opened_ms, got_ms;
};

static void batch_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct batch_state *s = rill_io_conn_user(conn);
    s->opened_ms = rill_io_now_ms();
    rill_io_conn_expect_bytes(conn, IO_BATCH_BYTES - 1); /* too little to batch */
    assert_int_equal(rcvlowat(conn), 1);
    rill_io_conn_expect_bytes(conn, 4u << 20);
    assert_true(rcvlowat(conn) > 1); /* the kernel may cap it (tcp_rmem) */
    rill_io_conn_expect_bytes(conn, 0);
    assert_int_equal(rcvlowat(conn), 1);
    rill_io_conn_expect_bytes(conn, 4u << 20); /* owed, and what the peer sends waits below the mark */
    assert_true(rcvlowat(conn) > 1); /* the kernel may cap it (tcp_rmem) */
    char bytes[1000];
    memset(bytes, 'x', sizeof bytes);
    assert_int_equal(send(s->peer, bytes, sizeof bytes, 0), (ssize_t)sizeof bytes);
}

static void batch_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    (void)data;
    struct batch_state *s = rill_io_conn_user(conn);
    s->got += len;
    s->data_calls++;
    s->got_ms = rill_io_now_ms();
    /* The batch was late: batching is off, and stays off for the next expectation until a read
     * fills the buffer (a slow peer does not pay the wait again). */
    assert_int_equal(rcvlowat(conn), 1);
    rill_io_conn_expect_bytes(conn, 4u << 20);
    assert_int_equal(rcvlowat(conn), 1);
    rill_io_loop_stop(rill_io_conn_loop(conn));
}

static const struct rill_io_conn_callbacks batch_cb = {.size = sizeof batch_cb, .on_open = batch_open, .on_data = batch_data};

/* A connection told that 4 MiB are owed gets only 1,000 bytes (the peer reset its stream, say):
 * they raise no event below the low-water mark, and the late-batch timer reads them anyway. */
static void late_batch_is_read(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct batch_state s = {0};
    uint16_t port = listen_any(loop, &batch_cb, &s);
    s.peer = tcp_connect(port);
    assert_true(s.peer >= 0);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    guard_free(&g);
    assert_int_equal(s.got, 1000);
    assert_int_equal(s.data_calls, 1);
    assert_true(s.got_ms - s.opened_ms >= 1); /* held below the mark, not read at once */
    assert_true(s.got_ms - s.opened_ms < 1000);
    close(s.peer);
    rill_io_loop_free(loop);
}

/* ---- graceful close: lingering and its deadlines ------------------------------------------- */

struct linger_state {
    rill_io_loop *loop;
    rill_io_timer *watch;
    size_t to_send;   /* written in on_open before the graceful close */
    int data_calls, closes, close_err;
    sem_t opened, closed, freed;
};

static void linger_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct linger_state *s = rill_io_conn_user(conn);
    size_t left = s->to_send;
    while (left) {
        size_t n = left < (1u << 20) ? left : (1u << 20);
        rill_io_conn_write_ref(conn, big_block(), n, NULL, NULL);
        left -= n;
    }
    rill_io_conn_write(conn, "x", 1);
    rill_io_conn_close(conn, true);
    sem_post(&s->opened);
}

static void linger_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    (void)conn;
    (void)data;
    (void)len;
    struct linger_state *s = rill_io_conn_user(conn);
    s->data_calls++;
}

static void linger_close(rill_io_conn *conn, int err)
{
    struct linger_state *s = rill_io_conn_user(conn);
    s->closes++;
    s->close_err = err;
    sem_post(&s->closed);
}

static const struct rill_io_conn_callbacks linger_cb = {
    .size = sizeof linger_cb,
    .on_open = linger_open, .on_data = linger_data, .on_close = linger_close};

/* Polls the loop's own state from inside the loop: stops once every connection is gone. */
static void linger_watch(rill_io_timer *t, void *arg)
{
    struct linger_state *s = arg;
    if (s->closes == 1 && io_list_empty(&s->loop->linger) && io_list_empty(&s->loop->conns)) {
        sem_post(&s->freed);
        rill_io_loop_stop(s->loop);
    } else
        rill_io_timer_arm(t, 5);
}

static void run_linger(struct linger_state *s, const rill_io_loop_options *opts, void *(*client)(void *),
                       void *client_arg)
{
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(opts, &loop), RILL_OK);
    s->loop = loop;
    s->close_err = 1;
    sem_init(&s->opened, 0, 0);
    sem_init(&s->closed, 0, 0);
    sem_init(&s->freed, 0, 0);
    uint16_t *port = client_arg;
    *port = listen_any(loop, &linger_cb, s);
    s->watch = rill_io_timer_new(loop, linger_watch, s);
    rill_io_timer_arm(s->watch, 5);
    struct guard g;
    guard_arm(&g, loop);
    pthread_t th;
    pthread_create(&th, NULL, client, client_arg);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    pthread_join(th, NULL);
    assert_false(g.fired);
    rill_io_timer_free(s->watch);
    guard_free(&g);
    sem_destroy(&s->opened);
    sem_destroy(&s->closed);
    sem_destroy(&s->freed);
    rill_io_loop_free(loop);
}

/* Reads the "x", sees EOF, sends bytes the server must discard, then closes. */
static void *polite_peer(void *arg)
{
    uint16_t port = *(uint16_t *)arg;
    int fd = tcp_connect(port);
    char c;
    if (fd >= 0 && read_exact(fd, &c, 1) && c == 'x' && recv(fd, &c, 1, 0) == 0)
        write_all(fd, "ignored", 7);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void linger_ends_at_the_peers_fin(void **state)
{
    (void)state;
    struct linger_state s = {0};
    rill_io_loop_options opts = {.size = sizeof opts, .linger_ms = 30000};
    uint16_t port;
    uint64_t start = rill_io_now_ms();
    run_linger(&s, &opts, polite_peer, &port);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, 0);
    assert_int_equal(s.data_calls, 0);          /* bytes after close are discarded */
    assert_true(rill_io_now_ms() - start < 30000); /* freed by the FIN, not the deadline */
}

/* Reads the "x" and EOF, then keeps the socket open until the server has freed its side. */
struct stubborn_peer {
    uint16_t port;
    struct linger_state *s;
    bool read_all;
};

static void *silent_peer(void *arg)
{
    struct stubborn_peer *p = arg;
    int fd = tcp_connect(p->port);
    char c;
    if (fd >= 0 && read_exact(fd, &c, 1) && c == 'x' && recv(fd, &c, 1, 0) == 0)
        p->read_all = true;
    /* No FIN from us until the server has freed its side on its own. */
    if (fd >= 0) {
        sem_wait_ms(&p->s->freed, TEST_TIMEOUT_MS);
        close(fd);
    }
    return NULL;
}

static void linger_gives_up_after_its_deadline(void **state)
{
    (void)state;
    struct linger_state s = {0};
    rill_io_loop_options opts = {.size = sizeof opts, .linger_ms = 100};
    struct stubborn_peer p = {.s = &s};
    uint64_t start = rill_io_now_ms();
    run_linger(&s, &opts, silent_peer, &p);
    assert_true(p.read_all);
    assert_true(rill_io_now_ms() - start >= 100);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, 0); /* everything was delivered; only lingering timed out */
}

/* A peer that never reads: the graceful close cannot finish and reports a timeout. */
static void *deaf_peer(void *arg)
{
    struct stubborn_peer *p = arg;
    int fd = tcp_connect_rcvbuf(p->port, 4096);
    if (fd >= 0) {
        /* Read nothing until the server has given up on us. */
        p->read_all = sem_wait_ms(&p->s->opened, TEST_TIMEOUT_MS) && sem_wait_ms(&p->s->closed, TEST_TIMEOUT_MS);
        close(fd);
    }
    return NULL;
}

static void closing_times_out_when_the_peer_never_reads(void **state)
{
    (void)state;
    struct linger_state s = {.to_send = 16u << 20};
    rill_io_loop_options opts = {.size = sizeof opts, .linger_ms = 200};
    struct stubborn_peer p = {.s = &s};
    run_linger(&s, &opts, deaf_peer, &p);
    assert_true(p.read_all);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, RILL_ERR_TIMEOUT);
}

/* A reset while reading is paused is still noticed (EPOLLHUP/ERR are always reported). */
static void paused_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    rill_io_conn_pause_read(conn, true);
    sem_post(rill_io_conn_user(conn));
}

static void paused_close(rill_io_conn *conn, int err)
{
    (void)conn;
    assert_int_equal(err, RILL_ERR_EOF);
    rill_io_loop_stop(rill_io_conn_loop(conn));
}

static const struct rill_io_conn_callbacks paused_cb = {.size = sizeof paused_cb, .on_open = paused_open, .on_close = paused_close};

static void reset_while_paused_closes(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    sem_t opened;
    sem_init(&opened, 0, 0);
    struct loop_thread lt = {.loop = loop};
    uint16_t port = listen_any(loop, &paused_cb, &opened);
    loop_thread_start(&lt);
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    assert_true(sem_wait_ms(&opened, TEST_TIMEOUT_MS));
    write_all(fd, "unread", 6);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd); /* RST */
    pthread_join(lt.th, NULL); /* on_close stops the loop */
    sem_destroy(&opened);
    rill_io_loop_free(loop);
}

/* ---- the connection's built-in timer ---------------------------------------------------- */

struct conn_timer_state {
    rill_io_loop *loop;
    rill_io_timer *plain; /* a standalone timer on the same heap */
    char order[8];
    int n;
    uint64_t opened_at;
    int arm_after_close;
    bool armed_after_close, armed_in_callback;
    uint64_t deadline_after_close;
};

static void ct_log(struct conn_timer_state *st, char c)
{
    if (st->n < (int)sizeof st->order - 1)
        st->order[st->n++] = c;
}

static void ct_plain_fired(rill_io_timer *t, void *arg)
{
    (void)t;
    ct_log(arg, 'P');
}

static void ct_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct conn_timer_state *st = rill_io_conn_user(conn);
    st->opened_at = rill_io_loop_now_ms(st->loop);
    assert_false(rill_io_conn_timer_armed(conn));
    assert_int_equal(rill_io_conn_timer_deadline(conn), UINT64_MAX);
    assert_int_equal(rill_io_conn_timer_arm_at(conn, st->opened_at + 1000), RILL_OK);
    assert_int_equal(rill_io_conn_timer_arm_at(conn, st->opened_at + 30), RILL_OK); /* moved */
    assert_int_equal(rill_io_conn_timer_deadline(conn), st->opened_at + 30);
    rill_io_timer_arm_at(st->plain, st->opened_at + 40);
}

static void ct_timer(rill_io_conn *conn)
{
    struct conn_timer_state *st = rill_io_conn_user(conn);
    st->armed_in_callback |= rill_io_conn_timer_armed(conn); /* it fires once */
    ct_log(st, 'C');
    if (st->n == 1) {
        rill_io_conn_timer_arm_at(conn, rill_io_loop_now_ms(st->loop) + 20);
        return;
    }
    rill_io_conn_timer_arm_at(conn, rill_io_loop_now_ms(st->loop) + 10);
    rill_io_conn_close(conn, true); /* closing disarms it: it must never fire again */
    st->armed_after_close = rill_io_conn_timer_armed(conn);
    st->deadline_after_close = rill_io_conn_timer_deadline(conn);
    st->arm_after_close = rill_io_conn_timer_arm_at(conn, rill_io_loop_now_ms(st->loop) + 10);
}

static void ct_close(rill_io_conn *conn, int err)
{
    (void)err;
    struct conn_timer_state *st = rill_io_conn_user(conn);
    ct_log(st, 'X');
    rill_io_loop_stop(st->loop);
}

/* Fires on_timer once per arming, shares the heap with standalone timers (order by deadline), can
 * be moved, and is disarmed for good by closing the connection. */
static void conn_timer_fires_moves_and_stops_at_close(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct conn_timer_state st = {.loop = loop};
    st.plain = rill_io_timer_new(loop, ct_plain_fired, &st);
    static const struct rill_io_conn_callbacks server_cb = {
        .size = sizeof server_cb,
        .on_open = ct_open, .on_timer = ct_timer, .on_close = ct_close};
    struct rill_io_addr addr = listen_loopback(loop, &server_cb, &st);
    int fd = connect_blocking(&addr);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    /* conn at +30, the standalone timer at +40, conn again at +50; then the close */
    assert_string_equal(st.order, "CPCX");
    assert_false(st.armed_in_callback);
    assert_false(st.armed_after_close);
    assert_int_equal(st.deadline_after_close, UINT64_MAX);
    assert_int_equal(st.arm_after_close, RILL_ERR_STATE);
    close(fd);
    guard_free(&g);
    rill_io_timer_free(st.plain);
    rill_io_loop_free(loop);
}

/* Arming sequences are 32-bit: before they wrap every armed timer is renumbered; the heap stays
 * ordered by deadline and a timer armed from a callback still waits for the next turn. */
static void timer_sequences_renumber_before_wrapping(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct timer_log log = {.loop = loop};
    struct named_timer t[3];
    const char names[] = {'A', 'B', 'E'}; /* E stops the loop */
    for (int i = 0; i < 3; i++) {
        t[i] = (struct named_timer){&log, names[i], NULL};
        t[i].t = rill_io_timer_new(loop, named_fired, &t[i]);
    }
    rill_io_timer_arm(t[0].t, 30);
    loop->timer_seq = IO_TNODE_SEQ_RENUMBER - 1;
    rill_io_timer_arm(t[1].t, 20);
    rill_io_timer_arm(t[2].t, 40);
    assert_true(loop->timer_seq >= IO_TNODE_SEQ_RENUMBER);
    struct guard g;
    guard_arm(&g, loop);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    assert_false(g.fired);
    assert_int_equal(log.n, 3);
    assert_memory_equal(log.order, "BAE", 3);
    assert_true(loop->timer_seq < 16);
    guard_free(&g);
    for (int i = 0; i < 3; i++)
        rill_io_timer_free(t[i].t);
    rill_io_loop_free(loop);
}

/* The queue counts bytes in 32 bits: a write that would pass 4 GiB fails whole, queues nothing,
 * and a referenced buffer is released at once. */
static void queue_refuses_past_its_limit(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    static const struct rill_io_conn_callbacks server_cb = {.size = sizeof server_cb};
    struct rill_io_addr addr = listen_loopback(loop, &server_cb, NULL);
    struct connect_state s = {.loop = loop, .close_err = 1};
    rill_io_conn *conn;
    assert_int_equal(rill_io_connect(loop, &addr, NULL, NULL, &client_cb, &s, &conn), RILL_OK);
    conn->queued = IO_QUEUE_MAX - 2; /* as if nearly 4 GiB were waiting */
    assert_int_equal(rill_io_conn_write(conn, "abc", 3), RILL_ERR_LIMIT);
    static uint8_t big[100000];
    releases = 0;
    assert_int_equal(rill_io_conn_write_ref(conn, big, sizeof big, count_release, NULL), RILL_ERR_LIMIT);
    assert_int_equal(releases, 1);
    assert_int_equal(rill_io_conn_queued(conn), IO_QUEUE_MAX - 2);
    assert_int_equal(rill_io_conn_write(conn, "ab", 2), RILL_OK);
    assert_int_equal(rill_io_conn_queued(conn), IO_QUEUE_MAX);
    conn->queued = 2; /* back to the truth: the two bytes */
    rill_io_conn_close(conn, false);
    rill_io_loop_free(loop);
}

static int lowat_seen = -1;
static void lowat_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(conn->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &len) == 0)
        lowat_seen = v;
    rill_io_loop_stop(rill_io_conn_loop(conn));
}

/* Accepted connections carry the loop's TCP_NOTSENT_LOWAT (set once on the listener). */
static void accepted_sockets_get_notsent_lowat(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        rill_io_loop_options o = {.size = sizeof o, .notsent_lowat = round ? 32768 : 0};
        rill_io_loop *loop;
        assert_int_equal(rill_io_loop_new(&o, &loop), RILL_OK);
        static const struct rill_io_conn_callbacks server_cb = {.size = sizeof server_cb, .on_open = lowat_open};
        struct rill_io_addr addr;
        assert_int_equal(rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0), RILL_OK);
        rill_io_listener *l;
        assert_int_equal(rill_io_listen(loop, &addr, NULL, &server_cb, NULL, &l), RILL_OK);
        addr = rill_io_listener_addr(l);
        int fd = connect_blocking(&addr);
        lowat_seen = -1;
        struct guard g;
        guard_arm(&g, loop);
        assert_int_equal(rill_io_loop_run(loop), RILL_OK);
        assert_false(g.fired);
        assert_int_equal(lowat_seen, round ? 32768 : 65536);
        close(fd);
        guard_free(&g);
        rill_io_loop_free(loop);
    }
}

static void idle_connection_is_small(void **state)
{
    (void)state;
    /* The per-connection cost of an idle cleartext connection (goal: well under 1 KiB with the
     * protocol session on top). */
    assert_true(sizeof(struct rill_io_conn) <= 104); /* 112 with malloc's header */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses_parse_and_format),
        cmocka_unit_test(listen_error_names_the_cause),
        cmocka_unit_test(a_port_in_use_is_refused_even_with_reuseport),
        cmocka_unit_test(timers_fire_in_order_cancel_and_rearm),
        cmocka_unit_test(timer_heap_orders_many),
        cmocka_unit_test(post_from_other_thread_wakes_loop),
        cmocka_unit_test(signals_arrive_as_loop_events),
        cmocka_unit_test(echo_many_connections),
        cmocka_unit_test(echo_large_payloads_with_backpressure),
        cmocka_unit_test(drain_callback_refills_until_done),
        cmocka_unit_test(max_connections_closes_the_excess),
        cmocka_unit_test(graceful_shutdown_with_deadline),
        cmocka_unit_test(reuseport_spreads_across_two_loops),
        cmocka_unit_test(connect_in_loop_queues_early_writes),
        cmocka_unit_test(connect_over_ipv6),
        cmocka_unit_test(connect_refused_reports_on_close),
        cmocka_unit_test(shutdown_from_on_open_stops_accepting),
        cmocka_unit_test(abrupt_close_releases_references),
        cmocka_unit_test(abort_resets_the_peer),
        cmocka_unit_test(late_batch_is_read),
        cmocka_unit_test(linger_ends_at_the_peers_fin),
        cmocka_unit_test(linger_gives_up_after_its_deadline),
        cmocka_unit_test(closing_times_out_when_the_peer_never_reads),
        cmocka_unit_test(reset_while_paused_closes),
        cmocka_unit_test(conn_timer_fires_moves_and_stops_at_close),
        cmocka_unit_test(timer_sequences_renumber_before_wrapping),
        cmocka_unit_test(queue_refuses_past_its_limit),
        cmocka_unit_test(accepted_sockets_get_notsent_lowat),
        cmocka_unit_test(idle_connection_is_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
