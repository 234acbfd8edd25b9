/* The event loop: epoll, cached time, cross-thread posts (eventfd), signals (signalfd), the
 * end-of-turn flush and graceful shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "io/io_internal.h"

#define IO_MAX_EVENTS 128

uint64_t rill_io_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void io_set_error(rill_io_loop *loop, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(loop->last_error, sizeof loop->last_error, fmt, ap);
    va_end(ap);
}

int io_epoll_add(rill_io_loop *loop, int fd, void *ptr, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? RILL_OK : RILL_ERR_IO;
}

static void on_pending_deadline(rill_io_timer *t, void *arg)
{
    (void)t;
    io_conn_expire_pending(arg);
}

static void on_linger_deadline(rill_io_timer *t, void *arg)
{
    (void)t;
    io_conn_expire_linger(arg);
}

static void on_shutdown_deadline(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_io_loop *loop = arg;
    /* Whatever is still open after the grace period is cut off. */
    while (!io_list_empty(&loop->conns))
        io_conn_close_now(IO_CONN_OF(loop->conns.next),
                          RILL_ERR_TIMEOUT);
    while (!io_list_empty(&loop->linger))
        io_conn_close_now(IO_CONN_OF(loop->linger.next),
                          RILL_ERR_TIMEOUT);
}

/* The pending and linger lists are FIFO with one timeout each, so their heads carry the earliest
 * deadline: one timer per list instead of one per connection. */
void io_update_deadline_timers(rill_io_loop *loop)
{
    struct { struct io_link *list; rill_io_timer *timer; } lists[] = {
        {&loop->pending, loop->pending_timer},
        {&loop->linger, loop->linger_timer},
    };
    for (size_t i = 0; i < 2; i++) {
        if (io_list_empty(lists[i].list)) {
            rill_io_timer_cancel(lists[i].timer);
            continue;
        }
        const rill_io_conn *head = IO_CONN_OF(lists[i].list->next);
        if (!rill_io_timer_armed(lists[i].timer) || rill_io_timer_deadline(lists[i].timer) != head->tnode.deadline)
            rill_io_timer_arm_at(lists[i].timer, head->tnode.deadline);
    }
}

void rill_io_loop_options_init(rill_io_loop_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->max_conns = 10000;
    opt->handshake_timeout_ms = 10000;
    opt->linger_ms = 5000;
    opt->low_water = 16384;
    opt->high_water = 262144;
    opt->notsent_lowat = 65536;
}

int rill_io_loop_new(const rill_io_loop_options *opts, rill_io_loop **out)
{
    *out = NULL;
    rill_io_loop_options o;
    rill_io_loop_options_init(&o);
    if (opts && rill_struct_copy(&o, sizeof o, opts) != RILL_OK)
        return RILL_ERR_INVALID_ARG;
    rill_io_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return RILL_ERR_NOMEM;
    loop->opts = o;
    if (!loop->opts.max_conns)
        loop->opts.max_conns = 10000;
    if (!loop->opts.handshake_timeout_ms)
        loop->opts.handshake_timeout_ms = 10000;
    if (!loop->opts.linger_ms)
        loop->opts.linger_ms = 5000;
    if (!loop->opts.low_water)
        loop->opts.low_water = 16384;
    if (!loop->opts.high_water)
        loop->opts.high_water = 262144;
    if (!loop->opts.notsent_lowat)
        loop->opts.notsent_lowat = 65536;
    if (loop->opts.high_water < loop->opts.low_water)
        loop->opts.high_water = loop->opts.low_water;
    loop->epfd = -1;
    loop->wake.kind = IO_KIND_WAKE;
    loop->wake.fd = -1;
    loop->signal.kind = IO_KIND_SIGNAL;
    loop->signal.fd = -1;
    io_list_init(&loop->listeners);
    io_list_init(&loop->pending);
    io_list_init(&loop->conns);
    io_list_init(&loop->linger);
    io_list_init(&loop->dead);
    io_list_init(&loop->dead_listeners);
    io_list_init(&loop->watches);
    io_list_init(&loop->dead_watches);
    pthread_mutex_init(&loop->post_lock, NULL);
    loop->now_ms = rill_io_now_ms();
    atomic_init(&loop->stop, false);

    loop->recv_buf = malloc(IO_BATCH_READ);
    loop->tls_stage = malloc(IO_CHUNK_SIZE);
    loop->pending_timer = rill_io_timer_new(loop, on_pending_deadline, loop);
    loop->linger_timer = rill_io_timer_new(loop, on_linger_deadline, loop);
    loop->shutdown_timer = rill_io_timer_new(loop, on_shutdown_deadline, loop);
    if (!loop->recv_buf || !loop->tls_stage || !loop->pending_timer || !loop->linger_timer ||
        !loop->shutdown_timer) {
        rill_io_loop_free(loop);
        return RILL_ERR_NOMEM;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epfd < 0 || loop->wake.fd < 0 ||
        io_epoll_add(loop, loop->wake.fd, &loop->wake, EPOLLIN) != RILL_OK) {
        rill_io_loop_free(loop);
        return RILL_ERR_IO;
    }
    /* A write to a peer that has gone must come back as EPIPE, not kill the process; OpenSSL
     * writes with write(2), so MSG_NOSIGNAL alone is not enough. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    *out = loop;
    return RILL_OK;
}

static void run_posts(rill_io_loop *loop)
{
    uint64_t count;
    while (read(loop->wake.fd, &count, sizeof count) > 0)
        ;
    pthread_mutex_lock(&loop->post_lock);
    struct io_post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    while (p) {
        struct io_post *next = p->next;
        p->fn(loop, p->arg);
        free(p);
        p = next;
    }
}

static void run_signals(rill_io_loop *loop)
{
    struct signalfd_siginfo si;
    while (read(loop->signal.fd, &si, sizeof si) == (ssize_t)sizeof si)
        if (loop->signal_fn)
            loop->signal_fn(loop, (int)si.ssi_signo, loop->signal_arg);
}

static void wake(rill_io_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    ssize_t n = write(loop->wake.fd, &one, sizeof one);
    (void)n;
}

int rill_io_loop_post(rill_io_loop *loop, rill_io_post_fn fn, void *arg)
{
    struct io_post *p = malloc(sizeof *p);
    if (!p)
        return RILL_ERR_NOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    bool was_empty = loop->post_head == NULL;
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    pthread_mutex_unlock(&loop->post_lock);
    if (was_empty)
        wake(loop);
    return RILL_OK;
}

void rill_io_loop_stop(rill_io_loop *loop)
{
    atomic_store(&loop->stop, true);
    wake(loop);
}

int rill_io_loop_watch_signals(rill_io_loop *loop, const int *signals, size_t count,
                               rill_io_signal_fn fn, void *arg)
{
    if (loop->signal.fd >= 0 || count == 0)
        return RILL_ERR_STATE;
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < count; i++)
        if (sigaddset(&set, signals[i]) != 0)
            return RILL_ERR_INVALID_ARG;
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return RILL_ERR_IO;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        io_set_error(loop, "signalfd: %s", strerror(errno));
        return RILL_ERR_IO;
    }
    loop->signal.fd = fd;
    loop->signal_fn = fn;
    loop->signal_arg = arg;
    if (io_epoll_add(loop, fd, &loop->signal, EPOLLIN) != RILL_OK) {
        close(fd);
        loop->signal.fd = -1;
        return RILL_ERR_IO;
    }
    return RILL_OK;
}

static bool shutdown_finished(const rill_io_loop *loop)
{
    return loop->shutting_down && loop->owed_close == 0 && io_list_empty(&loop->pending);
}

void rill_io_loop_shutdown(rill_io_loop *loop, uint32_t deadline_ms)
{
    if (loop->shutting_down)
        return;
    loop->shutting_down = true;
    while (!io_list_empty(&loop->listeners))
        rill_io_listener_close((rill_io_listener *)((char *)loop->listeners.next -
                                                    offsetof(rill_io_listener, link)));
    /* Handshakes in progress are dropped: the application never saw them. Client connects still
     * in progress get on_close(RILL_ERR_STATE). */
    while (!io_list_empty(&loop->pending))
        io_conn_close_now(IO_CONN_OF(loop->pending.next),
                          RILL_ERR_STATE);
    /* Move the open connections aside first: a callback may close any of them (or others). */
    struct io_link todo;
    io_list_init(&todo);
    while (!io_list_empty(&loop->conns)) {
        struct io_link *node = loop->conns.next;
        io_list_remove(node);
        io_list_append(&todo, node);
    }
    while (!io_list_empty(&todo)) {
        struct io_link *node = todo.next;
        io_list_remove(node);
        io_list_append(&loop->conns, node);
        rill_io_conn *conn = IO_CONN_OF(node);
        if (conn->cb && IO_CB(conn, on_shutdown) && !(conn->flags & CF_SHUTDOWN_SENT)) {
            conn->flags |= CF_SHUTDOWN_SENT;
            IO_CB(conn, on_shutdown)(conn);
        } else {
            rill_io_conn_close(conn, true);
        }
    }
    rill_io_timer_arm(loop->shutdown_timer, deadline_ms);
}

int rill_io_loop_run(rill_io_loop *loop)
{
    struct epoll_event events[IO_MAX_EVENTS];
    loop->running = true;
    int rc = RILL_OK;
    while (!atomic_load(&loop->stop) && !shutdown_finished(loop)) {
        int timeout = io_timers_next_timeout(loop);
        if (loop->dirty)
            timeout = 0; /* work left from the previous turn (re-dirtied, TLS bytes buffered) */
        int n = epoll_wait(loop->epfd, events, IO_MAX_EVENTS, timeout);
        loop->now_ms = rill_io_now_ms();
        loop->turn++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            io_set_error(loop, "epoll_wait: %s", strerror(errno));
            rc = RILL_ERR_IO;
            break;
        }
        for (int i = 0; i < n; i++) {
            uint8_t kind = *(uint8_t *)events[i].data.ptr;
            switch (kind) {
            case IO_KIND_CONN: io_conn_event(events[i].data.ptr, events[i].events); break;
            case IO_KIND_LISTENER: io_listener_event(events[i].data.ptr); break;
            case IO_KIND_WAKE: run_posts(loop); break;
            case IO_KIND_SIGNAL: run_signals(loop); break;
            case IO_KIND_WATCH: io_watch_event(events[i].data.ptr, events[i].events); break;
            }
        }
        io_timers_run(loop);
        io_conn_flush_dirty(loop);
        io_conn_free_dead(loop);
        io_listeners_free_dead(loop);
        io_watches_free_dead(loop);
        io_update_deadline_timers(loop);
    }
    if (shutdown_finished(loop))
        rill_io_timer_cancel(loop->shutdown_timer);
    atomic_store(&loop->stop, false);
    loop->running = false;
    return rc;
}

uint64_t rill_io_loop_turn(const rill_io_loop *loop)
{
    return loop->turn;
}

uint64_t rill_io_loop_now_ms(const rill_io_loop *loop)
{
    return loop->now_ms;
}

const char *rill_io_loop_last_error(const rill_io_loop *loop)
{
    return loop->last_error;
}

void rill_io_loop_set_user(rill_io_loop *loop, void *user)
{
    loop->user = user;
}

void *rill_io_loop_user(const rill_io_loop *loop)
{
    return loop->user;
}

bool rill_io_loop_shutting_down(const rill_io_loop *loop)
{
    return loop->shutting_down;
}

uint32_t rill_io_loop_conn_count(const rill_io_loop *loop)
{
    return loop->nconns;
}

void rill_io_loop_free(rill_io_loop *loop)
{
    if (!loop)
        return;
    while (!io_list_empty(&loop->listeners))
        rill_io_listener_close((rill_io_listener *)((char *)loop->listeners.next -
                                                    offsetof(rill_io_listener, link)));
    struct io_link *lists[] = {&loop->pending, &loop->conns, &loop->linger};
    for (size_t i = 0; i < 3; i++)
        while (!io_list_empty(lists[i]))
            io_conn_close_now(IO_CONN_OF(lists[i]->next),
                              RILL_ERR_STATE);
    io_conn_free_dead(loop);
    io_listeners_free_dead(loop);
    io_watches_free_all(loop);
    struct io_post *p = loop->post_head;
    while (p) {
        struct io_post *next = p->next;
        free(p);
        p = next;
    }
    while (loop->chunk_cache) {
        struct io_chunk *next = loop->chunk_cache->next;
        free(loop->chunk_cache);
        loop->chunk_cache = next;
    }
    rill_io_timer_free(loop->pending_timer);
    rill_io_timer_free(loop->linger_timer);
    rill_io_timer_free(loop->shutdown_timer);
    io_batch_free_all(loop);
    free(loop->heap);
    if (loop->signal.fd >= 0)
        close(loop->signal.fd);
    if (loop->wake.fd >= 0)
        close(loop->wake.fd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->recv_buf);
    free(loop->tls_stage);
    free(loop->tls_batch);
    free(loop->tls_in);
    free(loop);
}
