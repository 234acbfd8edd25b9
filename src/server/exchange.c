/* An exchange's life: held while the application or the transport is inside a call on it, closed
 * by the transport (on_close, the access log line, back to the pool), and the drain event. The
 * other jobs live beside it: exchange_memory.c, route.c, request.c, response.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/access_log.h"
#include "server/server_internal.h"

void exchange_drained(rill_server_stream *st)
{
    if (st->drain_fn && !st->ended) {
        exchange_hold(st);
        st->drain_fn(st, st->drain_user);
        exchange_release(st);
    }
}

static void log_exchange(rill_server_stream *st)
{
    rill_server *srv = session_worker(st->sess)->srv;
    if (srv->access_log_fd < 0)
        return;
    size_t ref_len = 0, ua_len = 0;
    const char *ref = rill_server_request_header(st, "referer", &ref_len);
    const char *ua = rill_server_request_header(st, "user-agent", &ua_len);
    const char *target = st->path[0] ? st->path : st->authority;
    struct rill_access_log_entry e = {
        .remote_addr = session_peer(st->sess),
        .when = time(NULL),
        .method = st->method ? st->method : "-",
        .method_len = st->method ? strlen(st->method) : 1,
        .target = target,
        .target_len = strlen(target),
        .protocol = st->version,
        .status = st->status,
        .body_bytes = st->body_bytes,
        .referer = ref,
        .referer_len = ref_len,
        .user_agent = ua,
        .user_agent_len = ua_len,
        .note = st->log_note,
        .note_len = st->log_note ? strlen(st->log_note) : 0,
    };
    access_log_append(st->sess, &e);
}

void exchange_hold(rill_server_stream *st)
{
    st->busy++;
}

static void close_now(rill_server_stream *st, bool completed);

void exchange_release(rill_server_stream *st)
{
    if (--st->busy == 0 && st->close_pending)
        close_now(st, st->close_completed);
}

void exchange_closed(rill_server_stream *st, bool completed)
{
    if (st->closed || st->close_pending)
        return;
    if (st->busy) { /* the transport closed it under a call that still uses it */
        st->close_pending = true;
        st->close_completed = completed;
        return;
    }
    close_now(st, completed);
}

static void close_now(rill_server_stream *st, bool completed)
{
    st->closed = true;
    if (st->method && st->head_sent)
        log_exchange(st);
    if (st->close_fn)
        st->close_fn(st, completed, st->close_user);
    if (st->release)
        st->release(st->release_arg);
    if (st->live_prev)
        st->live_prev->live_next = st->live_next;
    else
        st->sess->live = st->live_next;
    if (st->live_next)
        st->live_next->live_prev = st->live_prev;
    st->sess->open_streams--;
    atomic_fetch_sub_explicit(&session_worker(st->sess)->stats.streams, 1, memory_order_relaxed);
    free(st->early_body);
    exchange_free(st);
}
