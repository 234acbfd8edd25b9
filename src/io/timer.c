/* Timers: a binary min-heap ordered by (deadline, arming sequence). Each timer knows its heap slot,
 * so re-arming and cancelling are O(log n) without searching. Standalone timers and connections'
 * built-in timers (rill_io_conn_timer_*) are nodes of the same heap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/io_internal.h"

static bool timer_before(const struct io_tnode *a, const struct io_tnode *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_place(rill_io_loop *loop, size_t idx, struct io_tnode *t)
{
    loop->heap[idx] = t;
    t->idx = (t->idx & IO_TNODE_IN_CONN) | (uint32_t)idx;
}

static void sift_up(rill_io_loop *loop, size_t idx)
{
    struct io_tnode *t = loop->heap[idx];
    while (idx > 0) {
        size_t parent = (idx - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_place(loop, idx, loop->heap[parent]);
        idx = parent;
    }
    heap_place(loop, idx, t);
}

static void sift_down(rill_io_loop *loop, size_t idx)
{
    struct io_tnode *t = loop->heap[idx];
    for (;;) {
        size_t child = 2 * idx + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop->heap[child], t))
            break;
        heap_place(loop, idx, loop->heap[child]);
        idx = child;
    }
    heap_place(loop, idx, t);
}

void io_tnode_cancel(rill_io_loop *loop, struct io_tnode *t)
{
    if (io_tnode_slot(t) == IO_TNODE_UNARMED)
        return;
    size_t idx = io_tnode_slot(t);
    t->idx |= IO_TNODE_UNARMED;
    struct io_tnode *last = loop->heap[--loop->heap_len];
    if (idx == loop->heap_len)
        return;
    heap_place(loop, idx, last);
    if (idx > 0 && timer_before(last, loop->heap[(idx - 1) / 2]))
        sift_up(loop, idx);
    else
        sift_down(loop, idx);
}

int io_tnode_arm(rill_io_loop *loop, struct io_tnode *t, uint64_t deadline_ms)
{
    if (io_tnode_slot(t) == IO_TNODE_UNARMED && loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        if (cap >= IO_TNODE_UNARMED)
            return RILL_ERR_LIMIT;
        struct io_tnode **heap = realloc(loop->heap, cap * sizeof *heap);
        if (!heap)
            return RILL_ERR_NOMEM;
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    io_tnode_cancel(loop, t);
    t->deadline = deadline_ms;
    t->seq = loop->timer_seq++;
    heap_place(loop, loop->heap_len++, t);
    sift_up(loop, io_tnode_slot(t));
    return RILL_OK;
}

rill_io_timer *rill_io_timer_new(rill_io_loop *loop, rill_io_timer_fn fn, void *arg)
{
    rill_io_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->node.idx = IO_TNODE_UNARMED; /* not in a connection */
    return t;
}

bool rill_io_timer_armed(const rill_io_timer *timer)
{
    return io_tnode_slot(&timer->node) != IO_TNODE_UNARMED;
}

uint64_t rill_io_timer_deadline(const rill_io_timer *timer)
{
    return timer->node.deadline;
}

void rill_io_timer_cancel(rill_io_timer *timer)
{
    if (timer)
        io_tnode_cancel(timer->loop, &timer->node);
}

int rill_io_timer_arm_at(rill_io_timer *timer, uint64_t deadline_ms)
{
    return io_tnode_arm(timer->loop, &timer->node, deadline_ms);
}

int rill_io_timer_arm(rill_io_timer *timer, uint64_t delay_ms)
{
    if (!timer->loop->running) /* the cached time is only fresh inside a turn */
        timer->loop->now_ms = rill_io_now_ms();
    return rill_io_timer_arm_at(timer, timer->loop->now_ms + delay_ms);
}

void rill_io_timer_free(rill_io_timer *timer)
{
    if (!timer)
        return;
    rill_io_timer_cancel(timer);
    free(timer);
}

/* Sequence numbers are 32 bits: long before they could wrap, every armed timer gets 0 (equal
 * keys keep the heap valid; only the order among equal deadlines armed before is lost). */
static void renumber(rill_io_loop *loop)
{
    for (size_t i = 0; i < loop->heap_len; i++)
        loop->heap[i]->seq = 0;
    loop->timer_seq = 1;
}

void io_timers_run(rill_io_loop *loop)
{
    if (loop->timer_seq >= IO_TNODE_SEQ_RENUMBER)
        renumber(loop);
    /* Timers armed from a callback get a sequence >= first_new and wait for the next turn, so a
     * callback re-arming itself with delay 0 cannot spin this loop. */
    uint32_t first_new = loop->timer_seq;
    while (loop->heap_len > 0) {
        struct io_tnode *t = loop->heap[0];
        if (t->deadline > loop->now_ms || t->seq >= first_new)
            break;
        io_tnode_cancel(loop, t);
        if (t->idx & IO_TNODE_IN_CONN) {
            rill_io_conn *conn = (rill_io_conn *)((char *)t - offsetof(rill_io_conn, tnode));
            if (conn->cb && IO_CB(conn, on_timer))
                IO_CB(conn, on_timer)(conn);
        } else {
            rill_io_timer *timer = (rill_io_timer *)((char *)t - offsetof(rill_io_timer, node));
            timer->fn(timer, timer->arg);
        }
    }
}

int io_timers_next_timeout(const rill_io_loop *loop)
{
    if (loop->heap_len == 0)
        return -1;
    uint64_t deadline = loop->heap[0]->deadline;
    if (deadline <= loop->now_ms)
        return 0;
    uint64_t wait = deadline - loop->now_ms;
    return wait > INT32_MAX ? INT32_MAX : (int)wait;
}
