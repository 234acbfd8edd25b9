/* HTTP/2 connections (h2 by ALPN, h2c by prior knowledge or Upgrade): the sans-I/O engine from
 * rill/h2.h between the socket and the exchanges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "h2/h2_vouched.h"
#include "server/server_internal.h"

/* A copied body chunk handed to the engine by reference until it reports it released. */
struct body_chunk {
    size_t len;
    struct body_chunk *next; /* in the pool */
    uint8_t data[];
};

/* Small chunks (most response bodies of small files and error pages) come from a bounded
 * per-thread pool: at 32 connections x 16 streams hundreds are in flight at once. */
#define SMALL_CHUNK 240u
#define SMALL_CHUNK_POOL_MAX 1024u
static _Thread_local struct body_chunk *chunk_pool;
static _Thread_local unsigned chunk_pool_len;

static struct body_chunk *chunk_new(const void *data, size_t len)
{
    struct body_chunk *c;
    if (len <= SMALL_CHUNK && chunk_pool) {
        c = chunk_pool;
        chunk_pool = c->next;
        chunk_pool_len--;
    } else if (!(c = malloc(sizeof *c + (len <= SMALL_CHUNK ? SMALL_CHUNK : len)))) {
        return NULL;
    }
    c->len = len;
    memcpy(c->data, data, len);
    return c;
}

static void chunk_free(struct body_chunk *c)
{
    if (c->len <= SMALL_CHUNK && chunk_pool_len < SMALL_CHUNK_POOL_MAX) {
        c->next = chunk_pool;
        chunk_pool = c;
        chunk_pool_len++;
        return;
    }
    free(c);
}

/* The engines' output buffers and segment rings come from the thread's buffer pool (buf_pool.c):
 * a connection holds them only while it has output in flight. */
static void *output_get(size_t size, void *ctx)
{
    (void)ctx;
    return buf_pool_get(worker_current(), size);
}

static void output_put(void *buf, size_t size, void *ctx)
{
    (void)ctx;
    buf_pool_put(buf, size);
}

static const rill_h2_buffer_pool output_pool = {.get = output_get, .put = output_put};

void h2_pools_clear(void)
{
    while (chunk_pool) {
        struct body_chunk *c = chunk_pool;
        chunk_pool = c->next;
        free(c);
    }
    chunk_pool_len = 0;
}

static int h2_send_informational(rill_server_stream *st, int status, const rill_header *f, size_t count);

static bool expects_continue(rill_server_stream *st)
{
    size_t len = 0;
    const char *v = rill_server_request_header(st, "expect", &len);
    return v && len == 12 && strncasecmp(v, "100-continue", 12) == 0;
}

static int on_headers(rill_h2_session *s, int32_t id, enum rill_h2_headers_kind kind,
                      const rill_header *fields, size_t count, uint32_t flags, void *user)
{
    rill_server_session *sess = user;
    if (kind == RILL_H2_HEADERS_TRAILERS) { /* request trailers: the body ends */
        rill_server_stream *st = rill_h2_stream_user(s, id);
        if (st && exchange_request_trailers(st, fields, count, true) < 0) {
            rill_h2_submit_rst_stream(s, id, RILL_H2_INTERNAL_ERROR); /* never a body cut short */
            return 0;
        }
        if (st)
            exchange_body_end(st);
        return 0;
    }
    if (kind != RILL_H2_HEADERS_REQUEST)
        return 0;
    rill_server_stream *st = exchange_new(sess, NULL, id);
    if (!st) {
        rill_h2_submit_rst_stream(s, id, RILL_H2_INTERNAL_ERROR);
        return 0;
    }
    st->ops = &h2_exchange_ops;
    sess->requests++;
    if (exchange_set_request(st, fields, count, "HTTP/2",
                             REQUEST_NAMES_LOWER | (sess->h2_upgrading ? 0 : REQUEST_PACKED)) < 0) {
        exchange_closed(st, false);
        rill_h2_submit_rst_stream(s, id, RILL_H2_INTERNAL_ERROR);
        return 0;
    }
    rill_h2_stream_set_user(s, id, st);
    if (flags & RILL_H2_FLAG_END_STREAM)
        st->request_ended = true;
    bool continue_wanted = !st->request_ended && expects_continue(st);
    exchange_dispatch(st);
    /* Expect: 100-continue (RFC 9110 §10.1.1): the handler took the request without a final
     * answer, so the body is wanted; a client that waits for the 100 sends it now, as over
     * HTTP/1.1. (A stream the handler ended or reset is gone from the engine by now.) */
    if (continue_wanted && rill_h2_stream_user(s, id) == st && !st->head_sent && !st->closed)
        h2_send_informational(st, 100, NULL, 0);
    return 0;
}

static int on_data(rill_h2_session *s, int32_t id, const uint8_t *data, size_t len, void *user)
{
    rill_server_stream *st = rill_h2_stream_user(s, id);
    if (st)
        exchange_body(st, data, len);
    else
        rill_h2_consume(s, id, len);
    return 0;
}

static int on_end_stream(rill_h2_session *s, int32_t id, void *user)
{
    rill_server_stream *st = rill_h2_stream_user(s, id);
    if (st)
        exchange_body_end(st);
    return 0;
}

static int on_stream_close(rill_h2_session *s, int32_t id, uint32_t code, void *user)
{
    rill_server_stream *st = rill_h2_stream_user(s, id);
    if (st)
        exchange_closed(st, code == RILL_H2_NO_ERROR && st->end_sent);
    return 0;
}

static void on_data_released(rill_h2_session *s, int32_t id, void *token, void *user)
{
    struct body_chunk *chunk = token;
    if (!chunk)
        return;
    rill_server_stream *st = rill_h2_stream_user(s, id);
    if (st) {
        bool was_high = st->queued >= EXCHANGE_LOW_WATER;
        st->queued -= chunk->len < st->queued ? chunk->len : st->queued;
        if (was_high && st->queued < EXCHANGE_LOW_WATER)
            exchange_drained(st);
    }
    chunk_free(chunk);
}

static int on_settings(rill_h2_session *s, const rill_h2_settings *peer, void *user)
{
    (void)s;
    rill_server_session *sess = user;
    struct rill_server *srv = session_worker(sess)->srv;
    if (srv->events.on_remote_settings && sess->announced)
        srv->events.on_remote_settings(sess, peer, srv->events_user);
    return 0;
}

static int on_goaway(rill_h2_session *s, int32_t last_stream_id, uint32_t error_code,
                     const uint8_t *debug, size_t debug_len, void *user)
{
    (void)s;
    (void)debug;
    (void)debug_len;
    rill_server_session *sess = user;
    struct rill_server *srv = session_worker(sess)->srv;
    if (srv->events.on_goaway && sess->announced)
        srv->events.on_goaway(sess, error_code, last_stream_id, srv->events_user);
    return 0;
}

static const rill_h2_callbacks h2_callbacks = {
    .size = sizeof h2_callbacks,
    .on_headers = on_headers,
    .on_data = on_data,
    .on_end_stream = on_end_stream,
    .on_stream_close = on_stream_close,
    .on_settings = on_settings,
    .on_goaway = on_goaway,
    .on_data_released = on_data_released,
};

rill_h2_profile *h2_profile_new(const rill_server_options *o)
{
    rill_h2_options opt;
    rill_h2_options_init(&opt, RILL_H2_SERVER);
    opt.local.max_concurrent_streams = o->max_concurrent_streams;
    opt.local.initial_window_size = o->initial_window_size;
    opt.local.max_header_list_size = o->max_header_list_size;
    opt.local.enable_connect_protocol = o->enable_connect_protocol ? 1 : 0;
    opt.connection_window = o->connection_window_size;
    opt.output_pool = &output_pool; /* one for every worker: the get finds the thread's */
    return rill_h2_profile_new(RILL_H2_SERVER, &opt);
}

int h2_session_start(rill_server_session *sess, const uint8_t *settings_payload, size_t payload_len,
                     const rill_header *upgraded, size_t nupgraded)
{
    struct worker *w = session_worker(sess);
    sess->h2 = rill_h2_session_new_shared(w->srv->h2_profile, &h2_callbacks, sess, rill_io_loop_now_ms(w->loop));
    if (!sess->h2)
        return RILL_ERR_NOMEM;
    conn_set_proto(&sess->c, &h2_proto);
    if (!upgraded)
        return RILL_OK;
    sess->h2_upgrading = true; /* the engine reports the request as stream 1 through on_headers */
    int rc = rill_h2_session_upgrade_server(sess->h2, settings_payload, payload_len, upgraded, nupgraded);
    sess->h2_upgrading = false;
    return rc;
}

void h2_session_data(rill_server_session *sess, const uint8_t *data, size_t len)
{
    /* The flood budgets refill by the engine's clock: keep it current. */
    rill_h2_session_tick(sess->h2, rill_io_loop_now_ms(session_worker(sess)->loop));
    if (rill_h2_session_recv(sess->h2, data, len) < 0) {
        /* a connection error: the engine queued GOAWAY; send it and close */
        h2_session_flush(sess);
        session_close(sess);
        return;
    }
    /* A peer that does not read what it asks for is not read either, until our output drains
     * (output_sent); if it never does, the engine's stall deadline ends it. */
    if (!rill_h2_session_want_read(sess->h2))
        rill_io_conn_pause_read(sess->c.io, true);
}

/* The loop pulls the engine's output at the end of the turn (output), so asking is cheap and the
 * frames go to the socket from the engine's own buffers. */
void h2_session_flush(rill_server_session *sess)
{
    if (sess->h2)
        rill_io_conn_want_output(sess->c.io);
}

/* ---- the connection layer's view (h2_proto) ------------------------------------------------ */

static void proto_data(struct conn *c, const uint8_t *data, size_t len)
{
    h2_session_data(session_of(c), data, len);
}

static void proto_drain(struct conn *c)
{
    h2_session_flush(session_of(c));
}

static int proto_output(struct conn *c, struct iovec *iov, int max)
{
    rill_server_session *sess = session_of(c);
    if (!sess->h2)
        return 0;
    /* Producing output runs file reads and release callbacks: their flushes are the pull itself. */
    c->in_callback++;
    int n = rill_h2_session_output(sess->h2, iov, max);
    c->in_callback--;
    /* GOAWAY exchanged and the last stream done. (Buffers of a quiet connection are handed back
     * by the session timer a moment later, not here: busy connections keep reusing them.) */
    if (n == 0 && !c->closing && !rill_h2_session_want_read(sess->h2))
        session_close(sess);
    return n;
}

static void proto_output_sent(struct conn *c, size_t n)
{
    rill_server_session *sess = session_of(c);
    if (!sess->h2)
        return;
    c->in_callback++;
    bool was_paused = !rill_h2_session_want_read(sess->h2);
    rill_h2_session_output_sent(sess->h2, n);
    if (was_paused && rill_h2_session_want_read(sess->h2))
        rill_io_conn_pause_read(c->io, false);
    c->in_callback--;
}

static uint64_t proto_deadline(const struct conn *c)
{
    return rill_h2_session_next_deadline(session_of(c)->h2);
}

static void proto_timeout(struct conn *c, uint64_t now)
{
    rill_h2_session_tick(session_of(c)->h2, now);
}

static void proto_goodbye(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    rill_h2_submit_goaway(sess->h2, RILL_H2_NO_ERROR, NULL, 0);
    h2_session_flush(sess);
}

static void proto_trim(struct conn *c)
{
    rill_h2_session_trim(session_of(c)->h2);
    worker_pools_release_soon(session_worker(session_of(c)));
}

static void proto_shutdown(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    rill_h2_submit_shutdown(sess->h2);
    h2_session_flush(sess);
}

static void proto_free(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    /* The engine reports every still-referenced chunk released; streams are closed by the
     * session's live list afterwards. */
    for (rill_server_stream *st = sess->live; st; st = st->live_next)
        st->queued = 0;
    rill_h2_session_free(sess->h2);
    sess->h2 = NULL;
}

const struct conn_proto h2_proto = {
    .name = "HTTP/2",
    .data = proto_data,
    .drain = proto_drain,
    .output = proto_output,
    .output_sent = proto_output_sent,
    .deadline = proto_deadline,
    .timeout = proto_timeout,
    .busy = session_busy,
    .goodbye = proto_goodbye,
    .trim = proto_trim,
    .shutdown = proto_shutdown,
    .free = proto_free,
};

/* Status codes are three digits (100..999, checked when set). */
static void format_status(int status, char out[4])
{
    out[0] = (char)('0' + status / 100 % 10);
    out[1] = (char)('0' + status / 10 % 10);
    out[2] = (char)('0' + status % 10);
    out[3] = '\0';
}

/* ---- exchange ops ------------------------------------------------------------------------------ */

static int h2_send_head(rill_server_stream *st, bool end_stream)
{
    struct header_list *l = &st->resp_fields;
    rill_header none[1];
    rill_header *fields = l->items ? l->items - 1 : none; /* :status goes in the list's free slot */
    size_t n = l->count + 1;
    char status[4];
    format_status(st->status, status);
    fields[0] = (rill_header){(const uint8_t *)":status", 7, (const uint8_t *)status, 3, RILL_HEADER_VALID};
    /* Before the submit: with the request already ended, the engine closes the stream inside it,
     * and the close reports completed from this flag. */
    if (end_stream || st->head_request || st->status == 204 || st->status == 304)
        st->end_sent = true;
    uint32_t flags = end_stream ? RILL_H2_FLAG_END_STREAM : 0;
    /* Fields checked as they were added go out without a second walk (status: 200..999). */
    if (l->unvouched != 0)
        return rill_h2_submit_response(st->sess->h2, st->id, fields, n, flags);
    uint64_t token[2] = {st->head_serial, (uint64_t)st->head_date_sec};
    return h2_submit_response_vouched(st->sess->h2, st->id, st->status, fields, n, flags,
                                      st->head_serial ? token : NULL);
}

static int h2_replay_head(rill_server_stream *st, const uint64_t token[2], bool end_stream)
{
    bool was = st->end_sent;
    if (end_stream || st->head_request)
        st->end_sent = true; /* before the submit, as in h2_send_head */
    int rc = h2_submit_response_replay(st->sess->h2, st->id, 200, token, end_stream ? RILL_H2_FLAG_END_STREAM : 0);
    if (rc == 1)
        st->end_sent = was; /* not sent: the fields go the usual way */
    return rc;
}

static int h2_send_informational(rill_server_stream *st, int status, const rill_header *f, size_t count)
{
    rill_header fields[33];
    if (count > 32)
        return RILL_ERR_LIMIT;
    char code[4];
    format_status(status, code);
    fields[0] = (rill_header){(const uint8_t *)":status", 7, (const uint8_t *)code, 3, 0};
    if (count)
        memcpy(fields + 1, f, count * sizeof *f);
    int rc = rill_h2_submit_response(st->sess->h2, st->id, fields, count + 1, 0);
    session_flush(st->sess);
    return rc;
}

static int h2_send_body(rill_server_stream *st, const void *data, size_t len)
{
    if (st->end_sent)
        return RILL_OK;
    struct body_chunk *chunk = chunk_new(data, len);
    if (!chunk)
        return RILL_ERR_NOMEM;
    int rc = rill_h2_submit_data(st->sess->h2, st->id, chunk->data, len, 0, chunk);
    if (rc < 0) { /* the engine did not take it (e.g. the stream was reset meanwhile) */
        chunk_free(chunk);
        return rc;
    }
    st->queued += len;
    return st->queued >= EXCHANGE_HIGH_WATER ? RILL_ERR_WOULD_BLOCK : RILL_OK;
}

static int h2_send_last(rill_server_stream *st, const void *data, size_t len, bool kept)
{
    if (st->end_sent)
        return RILL_OK;
    if (kept) { /* by reference: the engine reads it at the latest while the stream is open */
        st->end_sent = true;
        int rc = rill_h2_submit_data(st->sess->h2, st->id, data, len, RILL_H2_FLAG_END_STREAM, NULL);
        return rc < 0 ? rc : RILL_OK;
    }
    struct body_chunk *chunk = chunk_new(data, len);
    if (!chunk)
        return RILL_ERR_NOMEM;
    st->end_sent = true;
    int rc = rill_h2_submit_data(st->sess->h2, st->id, chunk->data, len, RILL_H2_FLAG_END_STREAM, chunk);
    if (rc < 0) {
        chunk_free(chunk);
        return rc;
    }
    st->queued += len;
    return RILL_OK;
}

static int h2_finish(rill_server_stream *st)
{
    if (st->end_sent)
        return RILL_OK;
    st->end_sent = true;
    if (st->trailers.count)
        return rill_h2_submit_trailers(st->sess->h2, st->id, st->trailers.items, st->trailers.count);
    return rill_h2_submit_data(st->sess->h2, st->id, NULL, 0, RILL_H2_FLAG_END_STREAM, NULL);
}

/* Pull source for files: the engine asks for what the windows allow, several frames' payloads
 * at once when it can (one preadv). */
static int read_file_v(rill_h2_session *s, int32_t id, const struct iovec *iov, int iovcnt, bool *eof,
                       void *arg)
{
    (void)s, (void)id;
    rill_server_stream *st = arg;
    struct iovec v[8];
    int n = 0;
    uint64_t want = 0;
    for (; n < iovcnt && n < 8 && want < st->file_left; n++) {
        v[n] = iov[n];
        if (v[n].iov_len > st->file_left - want)
            v[n].iov_len = (size_t)(st->file_left - want);
        want += v[n].iov_len;
    }
    ssize_t got = want ? preadv(st->file_fd, v, n, (off_t)st->file_off) : 0;
    if (got < 0 || (got == 0 && want > 0))
        return RILL_ERR_IO; /* the file shrank or failed under us: reset the stream */
    st->file_off += (uint64_t)got;
    st->file_left -= (uint64_t)got;
    *eof = st->file_left == 0;
    if (*eof)
        st->end_sent = true;
    return (int)got;
}

static int h2_send_file(rill_server_stream *st)
{
    return rill_h2_set_data_source_v(st->sess->h2, st->id, read_file_v, st);
}

static int h2_push(rill_server_stream *st, const char *path)
{
    rill_header req[4] = {
        {(const uint8_t *)":method", 7, (const uint8_t *)"GET", 3, 0},
        {(const uint8_t *)":scheme", 7, (const uint8_t *)st->scheme, strlen(st->scheme), 0},
        {(const uint8_t *)":authority", 10, (const uint8_t *)st->authority, strlen(st->authority), 0},
        {(const uint8_t *)":path", 5, (const uint8_t *)path, strlen(path), 0},
    };
    rill_server_session *sess = st->sess;
    rill_server_stream *pushed = exchange_new(sess, st->ops, 0);
    if (!pushed)
        return RILL_ERR_NOMEM;
    int32_t id = rill_h2_submit_push_promise(sess->h2, st->id, req, 4, pushed);
    if (id < 0) {
        exchange_closed(pushed, false);
        return id;
    }
    pushed->id = id;
    if (exchange_set_request(pushed, req, 4, "HTTP/2", REQUEST_NAMES_LOWER) < 0) {
        rill_h2_submit_rst_stream(sess->h2, id, RILL_H2_INTERNAL_ERROR);
        return RILL_ERR_NOMEM;
    }
    pushed->request_ended = true;
    exchange_dispatch(pushed);
    return RILL_OK;
}

static void h2_consumed(rill_server_stream *st, size_t n)
{
    rill_h2_consume(st->sess->h2, st->id, n);
}

const struct exchange_ops h2_exchange_ops = {
    .send_head = h2_send_head,
    .send_informational = h2_send_informational,
    .send_body = h2_send_body,
    .send_file = h2_send_file,
    .finish = h2_finish,
    .send_last = h2_send_last,
    .push = h2_push,
    .replay_head = h2_replay_head,
    .consumed = h2_consumed,
};
