/* The connection layer's machinery (see conn.h): the same for every protocol and either role. */
#include "conn/conn.h"

/* Give back buffers after this long without traffic (an idle connection should cost little). */
#define TRIM_DELAY_MS 200
/* A busy connection past its idle deadline is looked at again this often (not on every turn). */
#define BUSY_RECHECK_MS 1000

static uint64_t now_ms(const struct conn *c)
{
    return rill_io_loop_now_ms(rill_io_conn_loop(c->io));
}

static bool busy(const struct conn *c)
{
    return c->proto && c->proto->busy && c->proto->busy(c);
}

void conn_init(struct conn *c, rill_io_conn *io, uint32_t idle_timeout_ms)
{
    c->io = io;
    c->proto = NULL;
    c->idle_timeout_ms = idle_timeout_ms;
    c->in_callback = 0;
    c->closing = false;
    c->last_active = 0;
}

void conn_set_proto(struct conn *c, const struct conn_proto *proto)
{
    c->proto = proto;
}

void conn_arm(struct conn *c)
{
    uint64_t now = now_ms(c);
    uint64_t at = c->last_active + c->idle_timeout_ms;
    /* Idle past the deadline but busy (a long request, a quiet WebSocket stream): it stays, and
     * the timer must not be armed in the past, where it would fire on every turn of the loop. */
    if (at <= now && busy(c))
        at = now + BUSY_RECHECK_MS;
    if (c->proto && c->proto->deadline) {
        uint64_t proto_at = c->proto->deadline(c);
        if (proto_at < at)
            at = proto_at;
    }
    uint64_t trim_at = c->last_active + TRIM_DELAY_MS;
    if (trim_at > now && trim_at < at)
        at = trim_at;
    /* Re-arming on every read is cheap, but skip it when the deadline barely moved. */
    uint64_t armed_at = rill_io_conn_timer_deadline(c->io); /* UINT64_MAX: not armed */
    if (at < armed_at || at - armed_at > 1000)
        rill_io_conn_timer_arm_at(c->io, at);
}

void conn_touch(struct conn *c)
{
    c->last_active = now_ms(c);
    conn_arm(c);
}

void conn_flush(struct conn *c)
{
    if (c->in_callback || c->closing)
        return;
    if (c->proto && c->proto->output)
        rill_io_conn_want_output(c->io);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    rill_io_conn_close(c->io, true);
}

void conn_abort(struct conn *c)
{
    c->closing = true; /* also over a graceful close still under way: the reset wins */
    rill_io_conn_abort(c->io);
}

void conn_shutdown(struct conn *c)
{
    if (c->closing)
        return;
    if (c->proto && c->proto->shutdown)
        c->proto->shutdown(c);
    else
        conn_close(c);
}

void conn_io_data(rill_io_conn *io, const uint8_t *data, size_t len)
{
    struct conn *c = rill_io_conn_user(io);
    if (c->closing || !c->proto)
        return;
    conn_touch(c);
    c->in_callback++;
    c->proto->data(c, data, len);
    c->in_callback--;
    conn_flush(c);
    if (!c->closing && c->proto->arm_after_data)
        conn_arm(c);
}

void conn_io_drain(rill_io_conn *io)
{
    struct conn *c = rill_io_conn_user(io);
    if (!c->proto || !c->proto->drain)
        return;
    c->in_callback++;
    c->proto->drain(c);
    c->in_callback--;
    conn_flush(c);
}

int conn_io_output(rill_io_conn *io, struct iovec *iov, int max)
{
    struct conn *c = rill_io_conn_user(io);
    return c && c->proto && c->proto->output ? c->proto->output(c, iov, max) : 0;
}

void conn_io_output_sent(rill_io_conn *io, size_t n)
{
    struct conn *c = rill_io_conn_user(io);
    if (c && c->proto && c->proto->output_sent)
        c->proto->output_sent(c, n);
}

/* The connection's one timer: the protocol's deadlines, idle close, trimming. */
void conn_io_timer(rill_io_conn *io)
{
    struct conn *c = rill_io_conn_user(io);
    if (!c || c->closing || !c->proto)
        return;
    uint64_t now = now_ms(c);
    if (c->proto->timeout) {
        c->proto->timeout(c, now);
        if (c->closing)
            return;
    }
    bool working = busy(c);
    if (now >= c->last_active + c->idle_timeout_ms && !working) {
        if (c->proto->goodbye)
            c->proto->goodbye(c);
        conn_close(c);
        return;
    }
    if (!working && now >= c->last_active + TRIM_DELAY_MS && c->proto->trim)
        c->proto->trim(c);
    conn_flush(c);
    conn_arm(c);
}

void conn_io_shutdown(rill_io_conn *io)
{
    conn_shutdown(rill_io_conn_user(io));
}

bool conn_io_peer_eof(rill_io_conn *io)
{
    struct conn *c = rill_io_conn_user(io);
    if (!c || c->closing || !c->proto || !c->proto->peer_eof)
        return false;
    c->in_callback++;
    bool keep = c->proto->peer_eof(c);
    c->in_callback--;
    conn_flush(c);
    return keep;
}

void conn_io_closed(struct conn *c)
{
    c->closing = true;
    c->in_callback++;
    if (c->proto && c->proto->free)
        c->proto->free(c);
    c->proto = NULL;
}
