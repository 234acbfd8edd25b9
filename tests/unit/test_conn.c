/* The connection layer's timer (src/conn): a connection that is busy past its idle deadline stays
 * open without its timer firing on every turn of the loop, and closes soon after the work ends.
 * The connection is one end of a socketpair adopted by a real loop; the protocol is a stub whose
 * busy flag the test flips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "conn/conn.h"
#include "test_io_util.h"

#define IDLE_MS 100

struct stub {
    struct conn c; /* first: the connection layer finds us through it */
    rill_io_loop *loop;
    bool busy;
    unsigned timeouts; /* the protocol's timeout op: once per timer firing */
    bool closed;
    uint64_t closed_at, idle_at;
};

static void stub_data(struct conn *c, const uint8_t *data, size_t len)
{
    (void)c, (void)data, (void)len;
}

static void stub_timeout(struct conn *c, uint64_t now)
{
    (void)now;
    ((struct stub *)c)->timeouts++;
}

static bool stub_busy(const struct conn *c)
{
    return ((const struct stub *)c)->busy;
}

static const struct conn_proto stub_proto = {
    .name = "stub", .data = stub_data, .timeout = stub_timeout, .busy = stub_busy};

static void on_open(rill_io_conn *io, const char *alpn)
{
    (void)alpn;
    struct stub *s = rill_io_conn_user(io);
    conn_init(&s->c, io, IDLE_MS);
    conn_set_proto(&s->c, &stub_proto);
    conn_touch(&s->c);
}

static void on_close(rill_io_conn *io, int err)
{
    (void)err;
    struct stub *s = rill_io_conn_user(io);
    conn_io_closed(&s->c);
    s->closed = true;
    s->closed_at = rill_io_loop_now_ms(s->loop);
}

static const struct rill_io_conn_callbacks stub_callbacks = {
    .size = sizeof stub_callbacks,
    .on_open = on_open,
    .on_data = conn_io_data,
    .on_close = on_close,
    .on_timer = conn_io_timer,
};

static void on_stop(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_io_loop_stop(arg);
}

/* The work ends: from now on the idle close may come. */
static void on_idle(rill_io_timer *t, void *arg)
{
    (void)t;
    struct stub *s = arg;
    s->busy = false;
    s->idle_at = rill_io_loop_now_ms(s->loop);
}

/* Runs the loop with the stub connection for run_ms; the work ends at idle_after_ms (0: never).
 * In a child process with an alarm: a timer armed in the past can keep the loop from ever coming
 * back, and that must fail the test, not hang it. The child reports *s through a pipe. */
static void run(struct stub *s, uint64_t idle_after_ms, uint64_t run_ms)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(out[0]);
        alarm(10);
        memset(s, 0, sizeof *s);
        s->busy = true;
        int sv[2];
        if (rill_io_loop_new(NULL, &s->loop) != RILL_OK ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
            rill_io_adopt(s->loop, sv[0], &stub_callbacks, s) != RILL_OK)
            _exit(2);
        rill_io_timer *stop = rill_io_timer_new(s->loop, on_stop, s->loop);
        rill_io_timer *idle = rill_io_timer_new(s->loop, on_idle, s);
        rill_io_timer_arm(stop, run_ms);
        if (idle_after_ms)
            rill_io_timer_arm(idle, idle_after_ms);
        rill_io_loop_run(s->loop);
        struct stub copy = *s; /* as the loop left it, before freeing it closes the connection */
        rill_io_timer_free(stop);
        rill_io_timer_free(idle);
        rill_io_loop_free(s->loop);
        close(sv[1]);
        _exit(write(out[1], &copy, sizeof copy) == (ssize_t)sizeof copy ? 0 : 3);
    }
    close(out[1]);
    memset(s, 0, sizeof *s);
    ssize_t n = read(out[0], s, sizeof *s);
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        fail_msg("the loop never came back: the connection's timer fired again and again");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(n, (ssize_t)sizeof *s);
}

static void busy_past_the_idle_deadline_does_not_spin(void **state)
{
    (void)state;
    struct stub s;
    run(&s, 0, 1500);
    /* 1.4 s past the 100 ms deadline: a timer armed in the past fires on every turn (or without
     * end); rechecked once a second it fires a handful of times (the trim point, the rechecks). */
    assert_false(s.closed);
    assert_true(s.timeouts >= 1);
    assert_true(s.timeouts <= 10);
}

static void the_idle_close_follows_the_end_of_the_work(void **state)
{
    (void)state;
    struct stub s;
    run(&s, 1000, 4000);
    assert_true(s.closed);
    assert_true(s.idle_at > 0);
    assert_true(s.closed_at >= s.idle_at);
    assert_true(s.closed_at - s.idle_at <= 1500); /* within one recheck (and some slack) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busy_past_the_idle_deadline_does_not_spin),
        cmocka_unit_test(the_idle_close_follows_the_end_of_the_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
