/* Timers: a binary min-heap ordered by (deadline, arming sequence). Each timer knows its heap slot,
 * so re-arming and cancelling are O(log n) without searching. */
#include <stdint.h>
#include <stdlib.h>

#include "io/io_internal.h"

static bool timer_before(const rill_io_timer *a, const rill_io_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_place(rill_io_loop *loop, size_t idx, rill_io_timer *t)
{
    loop->heap[idx] = t;
    t->heap_idx = idx;
}

static void sift_up(rill_io_loop *loop, size_t idx)
{
    rill_io_timer *t = loop->heap[idx];
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
    rill_io_timer *t = loop->heap[idx];
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

rill_io_timer *rill_io_timer_new(rill_io_loop *loop, rill_io_timer_fn fn, void *arg)
{
    rill_io_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->heap_idx = SIZE_MAX;
    return t;
}

bool rill_io_timer_armed(const rill_io_timer *timer)
{
    return timer->heap_idx != SIZE_MAX;
}

uint64_t rill_io_timer_deadline(const rill_io_timer *timer)
{
    return timer->deadline;
}

void rill_io_timer_cancel(rill_io_timer *timer)
{
    if (!timer || timer->heap_idx == SIZE_MAX)
        return;
    rill_io_loop *loop = timer->loop;
    size_t idx = timer->heap_idx;
    timer->heap_idx = SIZE_MAX;
    rill_io_timer *last = loop->heap[--loop->heap_len];
    if (idx == loop->heap_len)
        return;
    heap_place(loop, idx, last);
    if (idx > 0 && timer_before(last, loop->heap[(idx - 1) / 2]))
        sift_up(loop, idx);
    else
        sift_down(loop, idx);
}

int rill_io_timer_arm_at(rill_io_timer *timer, uint64_t deadline_ms)
{
    rill_io_loop *loop = timer->loop;
    if (timer->heap_idx == SIZE_MAX && loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        rill_io_timer **heap = realloc(loop->heap, cap * sizeof *heap);
        if (!heap)
            return RILL_ERR_NOMEM;
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    rill_io_timer_cancel(timer);
    timer->deadline = deadline_ms;
    timer->seq = loop->timer_seq++;
    heap_place(loop, loop->heap_len++, timer);
    sift_up(loop, timer->heap_idx);
    return RILL_OK;
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

void io_timers_run(rill_io_loop *loop)
{
    /* Timers armed from a callback get a sequence >= first_new and wait for the next turn, so a
     * callback re-arming itself with delay 0 cannot spin this loop. */
    uint64_t first_new = loop->timer_seq;
    while (loop->heap_len > 0) {
        rill_io_timer *t = loop->heap[0];
        if (t->deadline > loop->now_ms || t->seq >= first_new)
            break;
        rill_io_timer_cancel(t);
        t->fn(t, t->arg);
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
