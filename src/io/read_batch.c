/* Batched wakeups for a connection that is owed a large amount of data (a big response body in
 * flight): SO_RCVLOWAT makes the kernel wake the loop once a batch has arrived instead of at every
 * segment. Each wakeup costs the reader an epoll round and the sender, on the same machine, the
 * wakeup itself: with a fast sender (loopback, a LAN) the reader's wakeups were what held the
 * sender back. The kernel still wakes us early when the TCP window closes, at the peer's FIN, and
 * under memory pressure; a timer reads what came whenever a batch is late (the peer sent less
 * than it owed: a reset, a stall), and then batching waits until data floods in again, so a slow
 * or bursty peer never pays the wait twice in a row.
 *
 * The loop keeps the few batching connections in a small array rather than growing every
 * connection: most never batch. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "io/io_internal.h"

#define IO_BATCH_WAIT_MS 2           /* a late batch: read what came after this long */
#define IO_BATCH_MAX_CONNS 64        /* beyond that many at once, others wake per segment */

static bool set_lowat(rill_io_conn *conn, int bytes)
{
    return setsockopt(conn->fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0;
}

static struct io_batched *entry_of(rill_io_loop *loop, const rill_io_conn *conn)
{
    for (uint32_t i = 0; i < loop->nbatched; i++)
        if (loop->batched[i].conn == conn)
            return &loop->batched[i];
    return NULL;
}

static void forget(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    struct io_batched *e = entry_of(loop, conn);
    if (e)
        *e = loop->batched[--loop->nbatched];
    conn->flags &= ~(uint32_t)CF_BATCHED;
}

static void stop(rill_io_conn *conn)
{
    forget(conn);
    set_lowat(conn, 1);
}

static void arm_for_earliest(rill_io_loop *loop)
{
    if (!loop->nbatched) {
        rill_io_timer_cancel(loop->batch_timer);
        return;
    }
    uint64_t earliest = loop->batched[0].last_read_ms;
    for (uint32_t i = 1; i < loop->nbatched; i++)
        if (loop->batched[i].last_read_ms < earliest)
            earliest = loop->batched[i].last_read_ms;
    rill_io_timer_arm_at(loop->batch_timer, earliest + IO_BATCH_WAIT_MS);
}

static void on_batch_late(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_io_loop *loop = arg;
    uint64_t now = rill_io_loop_now_ms(loop);
    for (uint32_t i = 0; i < loop->nbatched;) {
        rill_io_conn *conn = loop->batched[i].conn;
        if (now - loop->batched[i].last_read_ms < IO_BATCH_WAIT_MS) {
            i++;
            continue;
        }
        stop(conn); /* moves the last entry into slot i */
        conn->flags |= CF_BATCH_BACKOFF;
        if (conn->state == CONN_OPEN && !(conn->flags & CF_PAUSED)) {
            conn->flags |= CF_READ_AGAIN; /* what came below the mark raised no event */
            io_conn_mark_dirty(conn);
        }
    }
    arm_for_earliest(loop);
}

static bool start(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    if (!loop->batch_timer && !(loop->batch_timer = rill_io_timer_new(loop, on_batch_late, loop)))
        return false;
    if (loop->nbatched == loop->batched_cap) {
        if (loop->batched_cap == IO_BATCH_MAX_CONNS)
            return false;
        uint32_t cap = loop->batched_cap ? loop->batched_cap * 2 : 4;
        struct io_batched *grown = realloc(loop->batched, cap * sizeof *grown);
        if (!grown)
            return false;
        loop->batched = grown;
        loop->batched_cap = cap;
    }
    if (!set_lowat(conn, (int)IO_BATCH_BYTES))
        return false;
    loop->batched[loop->nbatched++] = (struct io_batched){conn, rill_io_loop_now_ms(loop)};
    conn->flags |= CF_BATCHED;
    if (!rill_io_timer_armed(loop->batch_timer))
        arm_for_earliest(loop);
    return true;
}

void rill_io_conn_expect_bytes(rill_io_conn *conn, uint64_t bytes)
{
    if (conn->state == CONN_DEAD)
        return;
    bool want = bytes >= IO_BATCH_BYTES && conn->state == CONN_OPEN && !(conn->flags & CF_BATCH_BACKOFF);
    if (want == ((conn->flags & CF_BATCHED) != 0))
        return;
    if (want)
        start(conn);
    else
        stop(conn);
}

void io_conn_batch_after_read(rill_io_conn *conn, size_t got)
{
    if (got >= IO_RECV_BUF_SIZE) /* a full buffer at one wake: the peer is quicker than our wakeups */
        conn->flags &= ~(uint32_t)CF_BATCH_BACKOFF;
    if (conn->flags & CF_BATCHED) {
        struct io_batched *e = entry_of(conn->loop, conn);
        if (e)
            e->last_read_ms = rill_io_loop_now_ms(conn->loop);
    }
}

void io_conn_batch_forget(rill_io_conn *conn)
{
    if (conn->flags & CF_BATCHED)
        forget(conn);
}

void io_batch_free_all(rill_io_loop *loop)
{
    rill_io_timer_free(loop->batch_timer);
    loop->batch_timer = NULL;
    free(loop->batched);
    loop->batched = NULL;
    loop->nbatched = loop->batched_cap = 0;
}
