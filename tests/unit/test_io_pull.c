/* Pull output (on_output / on_output_sent) against real loopback readers, cleartext and TLS:
 * large bodies offered in irregular iovecs to slow readers, ordering against queued writes,
 * graceful and abrupt closes from inside the callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "io/io_internal.h"
#include "rill/tls.h"
#include "test_io_util.h"

#define PREFIX "PREFIX-0123456789\n"
#define POISON 0xEE /* what reported-sent bytes become: the loop must never send them again */

/* ---- the bodies ----------------------------------------------------------------------------- */

/* Letters only, so that markers ("[...]") written between pulled bytes can be told apart. */
static uint8_t letter(size_t i)
{
    return (uint8_t)('a' + pattern(5, i) % 26);
}

static uint8_t body_byte(bool letters, size_t i)
{
    return letters ? letter(i) : pattern(3, i);
}

/* Irregular piece sizes, a function of the offset: one in four is tiny (TLS staging coalesces
 * those), the rest up to 70000 bytes (several records, several sendmsg iovecs). */
static size_t piece_len(size_t off)
{
    uint32_t h = (uint32_t)off * 2246822519u + 374761393u;
    h ^= h >> 15;
    h *= 2654435761u;
    h ^= h >> 13;
    return h % 4 == 0 ? 1 + (h >> 8) % 64 : 1 + (h >> 8) % 70000;
}

/* ---- the server --------------------------------------------------------------------------- */

struct pull_server {
    rill_io_loop *loop;
    uint8_t *body; /* offered straight to the loop; poisoned once reported sent */
    size_t total;
    bool letters;
    bool tls;
    /* behaviour */
    const char *prefix;    /* queued with rill_io_conn_write in on_open, before want_output */
    bool close_in_open;    /* graceful close in on_open right after want_output */
    bool close_when_done;  /* graceful close once every pulled byte was reported sent */
    int mark_every;        /* every Nth on_output writes "[off]" first (never twice at one off) */
    bool abort_first;      /* the first on_output call closes abruptly */
    int abort_after_block; /* ...or the Nth call after the socket first refused bytes (0: never) */
    bool reply_to_data;    /* on_data queues "[PONG]" */
    int iovs;              /* iovecs per on_output call (0: irregular, 1 to 6) */
    /* observations */
    size_t off;            /* pulled bytes reported sent */
    size_t offered;        /* bytes returned by the last on_output, until on_output_sent */
    int outputs, outputs_after_block, marks;
    size_t last_mark;
    bool partial, misuse, aborted;
    size_t off_at_reply;
    int closes, close_err;
    rill_io_conn *conn;      /* while open */
    rill_io_timer *watch;    /* polls the connection until the socket refuses output */
    sem_t blocked;           /* the socket first refused output */
    bool blocked_posted;
    sem_t replied;
};

static int pull_output(rill_io_conn *conn, struct iovec *iov, int max)
{
    struct pull_server *s = rill_io_conn_user(conn);
    s->outputs++;
    if (s->blocked_posted)
        s->outputs_after_block++;
    if (s->closes || max < 1)
        s->misuse = true;
    if ((s->abort_first && s->outputs == 1) ||
        (s->abort_after_block && s->outputs_after_block == s->abort_after_block)) {
        /* An engine that dies with output pending: its queued write and its iovecs go nowhere. */
        rill_io_conn_write(conn, "x", 1);
        rill_io_conn_close(conn, false);
        s->aborted = true;
        iov[0] = (struct iovec){s->body + s->off, s->total - s->off};
        s->offered = s->total - s->off;
        return 1;
    }
    if (s->off == s->total)
        return 0;
    if (s->mark_every && s->outputs % s->mark_every == 0 && s->last_mark != s->off) {
        char mark[32];
        int n = snprintf(mark, sizeof mark, "[%zu]", s->off);
        assert_int_equal(rill_io_conn_write(conn, mark, (size_t)n), RILL_OK);
        s->last_mark = s->off;
        s->marks++;
    }
    int want = s->iovs ? s->iovs : 1 + s->outputs % 6;
    if (want > max)
        want = max;
    size_t pos = s->off;
    int cnt = 0;
    while (cnt < want && pos < s->total) {
        size_t len = piece_len(pos);
        if (len > s->total - pos)
            len = s->total - pos;
        iov[cnt++] = (struct iovec){s->body + pos, len};
        pos += len;
    }
    s->offered = pos - s->off;
    return cnt;
}

static void pull_sent(rill_io_conn *conn, size_t n)
{
    struct pull_server *s = rill_io_conn_user(conn);
    if (s->closes || s->aborted || s->offered == 0 || n > s->offered)
        s->misuse = true;
    if (n > s->total - s->off)
        n = s->total - s->off;
    if (n < s->offered)
        s->partial = true;
    memset(s->body + s->off, POISON, n);
    s->off += n;
    s->offered = 0;
    if (s->close_when_done && s->off == s->total)
        rill_io_conn_close(conn, true);
}

/* The loop waits for EPOLLOUT (CF_BLOCKED) once the socket took less than offered: a short
 * sendmsg, or an SSL_write that must be retried. Only then does the reader start reading. */
static void watch_blocked(rill_io_timer *t, void *arg)
{
    struct pull_server *s = arg;
    if (s->conn && (s->conn->flags & CF_BLOCKED)) {
        s->blocked_posted = true;
        sem_post(&s->blocked);
        return;
    }
    rill_io_timer_arm(t, 1);
}

static void pull_open(rill_io_conn *conn, const char *alpn)
{
    (void)alpn;
    struct pull_server *s = rill_io_conn_user(conn);
    s->conn = conn;
    rill_io_timer_arm(s->watch, 1);
    /* Loopback send buffers autotune up to megabytes, which would swallow a whole body without
     * ever refusing a byte: keep this one small so partial sends are certain. */
    int sndbuf = 16384;
    assert_int_equal(setsockopt(conn->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    if (s->prefix)
        assert_int_equal(rill_io_conn_write(conn, s->prefix, strlen(s->prefix)), RILL_OK);
    rill_io_conn_want_output(conn);
    if (s->close_in_open)
        rill_io_conn_close(conn, true);
}

static void pull_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    struct pull_server *s = rill_io_conn_user(conn);
    if (!s->reply_to_data || s->off_at_reply != SIZE_MAX)
        return;
    s->off_at_reply = s->off;
    assert_int_equal(rill_io_conn_write(conn, "[PONG]", 6), RILL_OK);
    sem_post(&s->replied);
}

static void pull_close(rill_io_conn *conn, int err)
{
    struct pull_server *s = rill_io_conn_user(conn);
    s->conn = NULL;
    s->closes++;
    s->close_err = err;
    rill_io_loop_stop(s->loop);
}

static const struct rill_io_conn_callbacks pull_cb = {.size = sizeof pull_cb, .on_open = pull_open,
                                                      .on_data = pull_data,
                                                      .on_close = pull_close,
                                                      .on_output = pull_output,
                                                      .on_output_sent = pull_sent};

static void server_init(struct pull_server *s, size_t total, bool letters, bool tls)
{
    *s = (struct pull_server){.total = total, .letters = letters, .tls = tls, .last_mark = SIZE_MAX,
                              .off_at_reply = SIZE_MAX};
    s->body = malloc(total);
    assert_non_null(s->body);
    for (size_t i = 0; i < total; i++)
        s->body[i] = body_byte(letters, i);
    sem_init(&s->blocked, 0, 0);
    sem_init(&s->replied, 0, 0);
}

static void server_free(struct pull_server *s)
{
    free(s->body);
    sem_destroy(&s->blocked);
    sem_destroy(&s->replied);
}

/* ---- the reader --------------------------------------------------------------------------- */

struct reader {
    uint16_t port;
    SSL_CTX *tls; /* NULL: cleartext */
    int rcvbuf;
    sem_t *wait_first; /* read nothing until this is posted */
    const char *say;   /* then send this... */
    sem_t *wait_after; /* ...and wait for this before reading */
    uint8_t *got;
    size_t len, cap;
    bool connected, clean_eof, overflow;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    SSL *ssl = NULL;
    int fd = tcp_connect_rcvbuf(r->port, r->rcvbuf);
    if (fd < 0)
        return NULL;
    if (r->tls) {
        ssl = SSL_new(r->tls);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1)
            goto out;
    }
    r->connected = true;
    if (r->wait_first && !sem_wait_ms(r->wait_first, TEST_TIMEOUT_MS))
        goto out;
    if (r->say) {
        size_t n = strlen(r->say);
        bool said = ssl ? SSL_write(ssl, r->say, (int)n) == (int)n : write_all(fd, r->say, n);
        if (!said || (r->wait_after && !sem_wait_ms(r->wait_after, TEST_TIMEOUT_MS)))
            goto out;
    }
    for (;;) {
        uint8_t scratch[4096];
        uint8_t *into = r->len < r->cap ? r->got + r->len : scratch;
        size_t room = r->len < r->cap ? r->cap - r->len : sizeof scratch;
        if (room > 16384) /* small reads: a slow reader */
            room = 16384;
        ssize_t n;
        if (ssl) {
            int k = SSL_read(ssl, into, (int)room);
            if (k <= 0) {
                r->clean_eof = SSL_get_error(ssl, k) == SSL_ERROR_ZERO_RETURN;
                break;
            }
            n = k;
        } else {
            n = recv(fd, into, room, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r->clean_eof = n == 0;
                break;
            }
        }
        if (into == scratch)
            r->overflow = true;
        else
            r->len += (size_t)n;
    }
out:
    if (ssl) {
        SSL_free(ssl);
        ERR_clear_error();
    }
    close(fd);
    return NULL;
}

/* ---- TLS fixtures ------------------------------------------------------------------------- */

static char tmp_dir[64];
static rill_tls_ctx *server_tls;
static SSL_CTX *client_tls;

static int tls_setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rill-pull-XXXXXX");
    if (!mkdtemp(tmp_dir))
        return -1;
    char cert[4096], key[4096], err[256];
    if (rill_tls_self_signed(tmp_dir, cert, key, sizeof cert, NULL, err, sizeof err) != RILL_OK ||
        rill_tls_server_new(cert, key, RILL_TLS_ALPN_H2_HTTP11, &server_tls, err, sizeof err) != RILL_OK) {
        fprintf(stderr, "TLS fixture: %s\n", err);
        return -1;
    }
    client_tls = SSL_CTX_new(TLS_client_method()); /* no verification: the server is ours */
    return client_tls ? 0 : -1;
}

static int tls_teardown(void **state)
{
    (void)state;
    SSL_CTX_free(client_tls);
    rill_tls_ctx_free(server_tls);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return tmp_dir[0] ? system(cmd) : 0;
}

/* ---- running one connection --------------------------------------------------------------- */

/* Serves one connection on this thread until on_close; the reader runs on its own thread and
 * keeps everything it receives (r->got, up to r->cap bytes). */
static void serve_one(struct pull_server *s, struct reader *r)
{
    /* A graceful close may have megabytes to flush to a slow reader: not the default 5 s. */
    rill_io_loop_options opts = {.size = sizeof opts, .linger_ms = TEST_TIMEOUT_MS};
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(&opts, &loop), RILL_OK);
    s->loop = loop;
    s->watch = rill_io_timer_new(loop, watch_blocked, s);
    assert_non_null(s->watch);
    struct rill_io_addr addr;
    assert_int_equal(rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0), RILL_OK);
    rill_io_listener *l;
    assert_int_equal(rill_io_listen(loop, &addr, s->tls ? server_tls : NULL, &pull_cb, s, &l), RILL_OK);
    struct rill_io_addr bound = rill_io_listener_addr(l);
    r->port = rill_io_addr_port(&bound);
    r->tls = s->tls ? client_tls : NULL;
    if (!r->cap)
        r->cap = s->total + s->total / 4 + 65536;
    r->got = malloc(r->cap);
    assert_non_null(r->got);
    struct guard g;
    guard_arm(&g, loop);
    pthread_t th;
    pthread_create(&th, NULL, reader_main, r);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    bool fired = g.fired;
    if (fired) { /* unblock a reader stuck waiting on the server */
        sem_post(&s->blocked);
        sem_post(&s->replied);
    }
    guard_free(&g);
    rill_io_timer_free(s->watch);
    rill_io_loop_free(loop); /* the reader sees EOF if it still waits for bytes */
    pthread_join(th, NULL);
    assert_false(fired);
    assert_true(r->connected);
    assert_false(r->overflow);
}

/* got is prefix (if any) followed by exactly total body bytes. */
static void expect_body(const struct reader *r, const char *prefix, bool letters, size_t total)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    assert_int_equal(r->len, plen + total);
    if (plen)
        assert_memory_equal(r->got, prefix, plen);
    for (size_t i = 0; i < total; i++)
        if (r->got[plen + i] != body_byte(letters, i))
            fail_msg("body byte %zu of %zu is 0x%02x, expected 0x%02x", i, total, r->got[plen + i],
                     body_byte(letters, i));
}

/* ---- 1, 5: a large pulled body after a queued prefix ---------------------------------------- */

static void large_body_to_slow_reader(bool tls, size_t total)
{
    struct pull_server s;
    server_init(&s, total, false, tls);
    s.prefix = PREFIX;
    s.close_when_done = true;
    /* A tiny window, and no reading until the socket has refused pulled bytes once. */
    struct reader r = {.rcvbuf = 4096, .wait_first = &s.blocked};
    serve_one(&s, &r);
    assert_false(s.misuse);
    assert_int_equal(s.off, total); /* the sum of on_output_sent */
    assert_true(s.partial);         /* a send took fewer bytes than offered, and was resumed */
    assert_true(s.blocked_posted);  /* the socket refused bytes (TLS: SSL_write was retried) */
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, 0);
    assert_true(r.clean_eof);
    expect_body(&r, PREFIX, false, total);
    free(r.got);
    server_free(&s);
}

static void pulled_body_reaches_slow_reader_after_prefix(void **state)
{
    (void)state;
    large_body_to_slow_reader(false, 6u << 20);
}

static void pulled_body_reaches_slow_reader_over_tls(void **state)
{
    (void)state;
    large_body_to_slow_reader(true, 2u << 20);
}

/* ---- 2: a write from inside on_output goes before what that call returned -------------------- */

/* Every "[N]" must arrive exactly when N body bytes have: on_output wrote it when N bytes had
 * been reported sent, and the bytes it returned from N on must wait for the queue. */
static void expect_marks_in_place(const struct reader *r, size_t total, int marks)
{
    size_t body = 0;
    int seen = 0;
    for (size_t i = 0; i < r->len;) {
        if (r->got[i] != '[') {
            if (r->got[i] != letter(body))
                fail_msg("body byte %zu is 0x%02x, expected '%c'", body, r->got[i], letter(body));
            body++;
            i++;
            continue;
        }
        size_t j = i + 1, at = 0;
        while (j < r->len && r->got[j] >= '0' && r->got[j] <= '9')
            at = at * 10 + (size_t)(r->got[j++] - '0');
        if (j == i + 1 || j == r->len || r->got[j] != ']')
            fail_msg("broken mark at stream offset %zu", i);
        if (at != body)
            fail_msg("mark [%zu] arrived after %zu body bytes", at, body);
        seen++;
        i = j + 1;
    }
    assert_int_equal(body, total);
    assert_int_equal(seen, marks);
}

static void write_inside_on_output(bool tls)
{
    struct pull_server s;
    server_init(&s, 1u << 20, true, tls);
    s.mark_every = 3;
    s.close_when_done = true;
    struct reader r = {.rcvbuf = 8192};
    serve_one(&s, &r);
    assert_false(s.misuse);
    assert_int_equal(s.off, s.total);
    assert_true(s.marks >= 3);
    assert_int_equal(s.close_err, 0);
    assert_true(r.clean_eof);
    expect_marks_in_place(&r, s.total, s.marks);
    free(r.got);
    server_free(&s);
}

static void write_inside_on_output_goes_first(void **state)
{
    (void)state;
    write_inside_on_output(false);
}

static void write_inside_on_output_goes_first_over_tls(void **state)
{
    (void)state;
    write_inside_on_output(true);
}

/* ---- 3: graceful close right after want_output -------------------------------------------- */

static void close_right_after_want_output(bool tls)
{
    struct pull_server s;
    server_init(&s, 3u << 20, false, tls);
    s.close_in_open = true;
    struct reader r = {.rcvbuf = 4096, .wait_first = &s.blocked};
    serve_one(&s, &r);
    assert_false(s.misuse);
    assert_int_equal(s.off, s.total);
    assert_true(s.partial);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, 0);
    assert_true(r.clean_eof); /* FIN (and close_notify) only after the last pulled byte */
    expect_body(&r, NULL, false, s.total);
    free(r.got);
    server_free(&s);
}

static void graceful_close_after_want_output_delivers_all(void **state)
{
    (void)state;
    close_right_after_want_output(false);
}

static void graceful_close_after_want_output_delivers_all_over_tls(void **state)
{
    (void)state;
    close_right_after_want_output(true);
}

/* ---- 4: on_output closing abruptly -------------------------------------------------------- */

/* The reader gets the bytes reported sent before the close, then the end: all of them in
 * cleartext; over TLS all but what was encrypted and not yet taken by the socket: at most one
 * batch of records held for the socket plus the one record waiting for a retry (their pulled
 * bytes are reported once encrypted; an abrupt close drops them).
 * after_block 0 closes in the very first call, else in that call after the socket first refused
 * bytes. */
static void abort_inside_on_output(bool tls, int after_block)
{
    struct pull_server s;
    server_init(&s, 4u << 20, false, tls);
    s.prefix = after_block ? NULL : PREFIX; /* dropped with the queue */
    s.abort_first = after_block == 0;
    s.abort_after_block = after_block;
    struct reader r = {.rcvbuf = 4096, .wait_first = after_block ? &s.blocked : NULL};
    serve_one(&s, &r);
    assert_true(s.aborted);
    assert_false(s.misuse); /* no callback after the close, on_output_sent included */
    if (after_block)
        assert_int_equal(s.outputs_after_block, after_block);
    else
        assert_int_equal(s.outputs, 1);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err, 0);
    assert_true(s.off < s.total);
    if (!after_block)
        assert_int_equal(s.off, 0);
    assert_true(r.len <= s.off);
    assert_true(s.off - r.len <= (tls ? IO_TLS_BATCH + 16384u : 0u));
    expect_body(&r, NULL, false, r.len);
    free(r.got);
    server_free(&s);
}

static void abrupt_close_inside_on_output(void **state)
{
    (void)state;
    abort_inside_on_output(false, 0);
    abort_inside_on_output(false, 3);
    abort_inside_on_output(true, 0);
    abort_inside_on_output(true, 20);
}

/* ---- a write queued while pulled output is blocked ---------------------------------------- */

/* The reply is queued while the socket refuses pulled bytes (for TLS: while OpenSSL holds a
 * record it must retry with the same bytes). It must arrive once, whole, not before bytes already
 * reported sent, and the body around it intact. The pulled bytes are offered the same way every
 * time, so only the queued reply could change what a retry offers. */
static void reply_while_blocked(bool tls)
{
    struct pull_server s;
    server_init(&s, 2u << 20, true, tls);
    s.reply_to_data = true;
    s.iovs = 6;
    s.close_when_done = true;
    struct reader r = {.rcvbuf = 4096, .wait_first = &s.blocked, .say = "ping", .wait_after = &s.replied};
    serve_one(&s, &r);
    assert_false(s.misuse);
    assert_int_equal(s.off, s.total);
    assert_int_equal(s.close_err, 0);
    assert_true(r.clean_eof);
    assert_int_equal(r.len, s.total + 6);
    const uint8_t *pong = memchr(r.got, '[', r.len);
    assert_non_null(pong);
    size_t at = (size_t)(pong - r.got);
    assert_true(at + 6 <= r.len);
    assert_memory_equal(pong, "[PONG]", 6);
    assert_true(at >= s.off_at_reply);
    memmove(r.got + at, r.got + at + 6, r.len - at - 6);
    r.len -= 6;
    expect_body(&r, NULL, true, s.total);
    free(r.got);
    server_free(&s);
}

static void write_while_pulled_output_blocked(void **state)
{
    (void)state;
    reply_while_blocked(false);
}

static void write_while_pulled_output_blocked_over_tls(void **state)
{
    (void)state;
    reply_while_blocked(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pulled_body_reaches_slow_reader_after_prefix),
        cmocka_unit_test(pulled_body_reaches_slow_reader_over_tls),
        cmocka_unit_test(write_inside_on_output_goes_first),
        cmocka_unit_test(write_inside_on_output_goes_first_over_tls),
        cmocka_unit_test(graceful_close_after_want_output_delivers_all),
        cmocka_unit_test(graceful_close_after_want_output_delivers_all_over_tls),
        cmocka_unit_test(abrupt_close_inside_on_output),
        cmocka_unit_test(write_while_pulled_output_blocked),
        cmocka_unit_test(write_while_pulled_output_blocked_over_tls),
    };
    return cmocka_run_group_tests(tests, tls_setup, tls_teardown);
}
