/* Watches on descriptors the loop does not own (a resolver's sockets): epoll interest and a
 * callback, nothing more. An unwatched watch is kept until the turn ends, because epoll may
 * already have handed this turn's batch an event that points at it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "io/io_internal.h"

#define WATCH_BITS (RILL_IO_READABLE | RILL_IO_WRITABLE)

static uint32_t epoll_bits(unsigned events)
{
    return ((events & RILL_IO_READABLE) ? EPOLLIN : 0u) | ((events & RILL_IO_WRITABLE) ? EPOLLOUT : 0u);
}

int rill_io_watch(rill_io_loop *loop, int fd, unsigned events, rill_io_watch_fn fn, void *user,
                  rill_io_watcher **out)
{
    if (out)
        *out = NULL;
    if (!loop || fd < 0 || (events & ~WATCH_BITS) || !fn || !out)
        return RILL_ERR_INVALID_ARG;
    rill_io_watcher *w = calloc(1, sizeof *w);
    if (!w)
        return RILL_ERR_NOMEM;
    w->kind = IO_KIND_WATCH;
    w->fd = fd;
    w->events = events;
    w->loop = loop;
    w->fn = fn;
    w->user = user;
    if (io_epoll_add(loop, fd, w, epoll_bits(events)) < 0) {
        io_set_error(loop, "cannot watch fd %d: %s", fd, strerror(errno));
        free(w);
        return RILL_ERR_IO;
    }
    io_list_append(&loop->watches, &w->link);
    *out = w;
    return RILL_OK;
}

int rill_io_watch_set(rill_io_watcher *w, unsigned events)
{
    if (!w || w->dead || (events & ~WATCH_BITS))
        return RILL_ERR_INVALID_ARG;
    struct epoll_event ev = {.events = epoll_bits(events), .data.ptr = w};
    if (epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0) {
        io_set_error(w->loop, "cannot watch fd %d: %s", w->fd, strerror(errno));
        return RILL_ERR_IO;
    }
    w->events = events;
    return RILL_OK;
}

void rill_io_unwatch(rill_io_watcher *w)
{
    if (!w || w->dead)
        return;
    /* Fails harmlessly when the fd was already closed (epoll dropped it then). */
    epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->dead = true;
    io_list_remove(&w->link);
    io_list_append(&w->loop->dead_watches, &w->link);
}

void io_watch_event(rill_io_watcher *w, uint32_t events)
{
    if (w->dead)
        return;
    unsigned got = ((events & EPOLLIN) ? RILL_IO_READABLE : 0u) |
                   ((events & EPOLLOUT) ? RILL_IO_WRITABLE : 0u);
    if (events & (EPOLLERR | EPOLLHUP))
        got |= w->events; /* the caller's read or write will see the error */
    got &= w->events;
    if (got)
        w->fn(w, w->fd, got, w->user);
}

static void free_list(struct io_link *head)
{
    while (!io_list_empty(head)) {
        struct io_link *node = head->next;
        io_list_remove(node);
        free((char *)node - offsetof(rill_io_watcher, link));
    }
}

void io_watches_free_dead(rill_io_loop *loop)
{
    free_list(&loop->dead_watches);
}

void io_watches_free_all(rill_io_loop *loop)
{
    free_list(&loop->watches);
    free_list(&loop->dead_watches);
}
