/* rill_io_watch: another library's descriptors on the loop (a pipe stands in for a resolver's
 * socket): readable and writable callbacks, changing interest, and unwatching from a callback
 * while the same turn still holds an event for the watch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include "rill/io.h"

struct seen {
    rill_io_loop *loop;
    rill_io_watcher *other; /* unwatched by the first callback that runs */
    int calls;
    unsigned last;
    int fd;
};

static void on_ready(rill_io_watcher *w, int fd, unsigned events, void *user)
{
    struct seen *s = user;
    s->calls++;
    s->last = events;
    s->fd = fd;
    if (s->other) {
        rill_io_unwatch(s->other);
        s->other = NULL;
    }
    rill_io_unwatch(w);
    rill_io_loop_stop(s->loop);
}

static void on_deadline(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_io_loop_stop(arg); /* a test that never sees its event ends, failing */
}

static void run_bounded(rill_io_loop *loop)
{
    rill_io_timer *guard = rill_io_timer_new(loop, on_deadline, loop);
    assert_non_null(guard);
    assert_int_equal(rill_io_timer_arm(guard, 10000), RILL_OK);
    assert_int_equal(rill_io_loop_run(loop), RILL_OK);
    rill_io_timer_free(guard);
}

static void watch_reports_readable_then_writable(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct seen s = {.loop = loop};
    rill_io_watcher *w;
    /* Waiting for nothing: the registration alone never calls back. */
    assert_int_equal(rill_io_watch(loop, p[0], 0, on_ready, &s, &w), RILL_OK);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(rill_io_watch_set(w, RILL_IO_READABLE), RILL_OK);
    run_bounded(loop);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last, RILL_IO_READABLE);
    assert_int_equal(s.fd, p[0]);

    assert_int_equal(rill_io_watch(loop, p[1], RILL_IO_WRITABLE, on_ready, &s, &w), RILL_OK);
    run_bounded(loop);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.last, RILL_IO_WRITABLE);
    close(p[0]);
    close(p[1]);
    rill_io_loop_free(loop);
}

/* Two watches ready in the same turn: the first to run unwatches the other, which must then not
 * be called (its memory stays valid until the turn ends). */
static void unwatch_from_a_callback_silences_the_other(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    int a[2], b[2];
    assert_int_equal(pipe2(a, O_NONBLOCK), 0);
    assert_int_equal(pipe2(b, O_NONBLOCK), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    struct seen s1 = {.loop = loop}, s2 = {.loop = loop};
    rill_io_watcher *w1, *w2;
    assert_int_equal(rill_io_watch(loop, a[0], RILL_IO_READABLE, on_ready, &s1, &w1), RILL_OK);
    assert_int_equal(rill_io_watch(loop, b[0], RILL_IO_READABLE, on_ready, &s2, &w2), RILL_OK);
    s1.other = w2;
    s2.other = w1;
    run_bounded(loop);
    assert_int_equal(s1.calls + s2.calls, 1);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    rill_io_loop_free(loop);
}

static void bad_arguments_and_leftovers(void **state)
{
    (void)state;
    rill_io_loop *loop;
    assert_int_equal(rill_io_loop_new(NULL, &loop), RILL_OK);
    struct seen s = {.loop = loop};
    rill_io_watcher *w = (rill_io_watcher *)&s;
    assert_int_equal(rill_io_watch(loop, -1, RILL_IO_READABLE, on_ready, &s, &w), RILL_ERR_INVALID_ARG);
    assert_null(w);
    assert_int_equal(rill_io_watch(loop, 0, 4, on_ready, &s, &w), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_io_watch(loop, 0, 0, NULL, &s, &w), RILL_ERR_INVALID_ARG);
    rill_io_unwatch(NULL);
    /* A watch still registered when the loop goes is freed with it (ASan checks the leak). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(rill_io_watch(loop, p[0], RILL_IO_READABLE, on_ready, &s, &w), RILL_OK);
    rill_io_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(watch_reports_readable_then_writable),
        cmocka_unit_test(unwatch_from_a_callback_silences_the_other),
        cmocka_unit_test(bad_arguments_and_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
