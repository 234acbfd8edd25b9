/* The DATA scheduler: when the I/O layer asks for output, frames are produced from submitted
 * buffers and read callbacks within the flow-control windows, stream by stream in RFC 9218 order
 * (urgency, then non-incremental in id order, incremental round-robin), up to a high-water mark. */
#include "h2/h2_internal.h"

/* Stop producing DATA above this much queued: one batch (H2_BIG_CHUNK, four frames sized to fill
 * a 64 KiB TSO/loopback segment exactly) per sendmsg. Four full 16 KiB frames would leave a small
 * tail segment; 256 KiB batches spill the L2 cache between preadv and sendmsg (both measured). */
#define H2_OUTPUT_HIGH_WATER (48u * 1024u)
#define H2_DATA_COPY_MAX 256u                /* DATA payloads up to this size are copied */

static int64_t send_budget(const rill_h2_session *s, const struct h2_stream *st)
{
    int64_t b = st->send_window < s->conn_send_window ? st->send_window : s->conn_send_window;
    if (b > (int64_t)s->peer.max_frame_size)
        b = s->peer.max_frame_size;
    return b;
}

/* Whether the stream can put a frame out now; drops it from its queue when it has nothing. */
static bool can_progress(rill_h2_session *s, struct h2_stream *st)
{
    if (st->dq_head) {
        if (st->dq_head->len == st->dq_head->off)
            return true; /* an empty buffer: END_STREAM or just a release */
        return send_budget(s, st) > 0;
    }
    if (st->read && !(st->flags & SF_SOURCE_EOF)) {
        if (st->flags & SF_SOURCE_PAUSED)
            return false;
        return send_budget(s, st) > 0;
    }
    if (st->trailers || ((st->flags & SF_END_WANTED) && !(st->flags & SF_END_QUEUED)))
        return true;
    return false;
}

static struct h2_stream *pick(rill_h2_session *s)
{
    if (!s->tab)
        return NULL;
    /* Queues in order of urgency, non-incremental first: the bits of the non-empty ones. */
    for (unsigned queued = s->tab->queued; queued; queued &= queued - 1) {
        unsigned q = (unsigned)__builtin_ctz(queued);
        struct h2_stream *st = s->tab->queue[q / 2][q % 2];
        while (st) {
            struct h2_stream *next = st->qnext;
            if (can_progress(s, st))
                return st;
            if (!h2_body_pending(st) && !st->trailers && !(st->flags & SF_END_WANTED))
                h2_sched_remove(s, st);
            st = next;
        }
    }
    return NULL;
}

/* The source gave its last byte: true when the stream ended (nothing more to do for it). */
static bool source_done(rill_h2_session *s, struct h2_stream *st, bool end)
{
    st->flags |= SF_SOURCE_EOF;
    st->read = NULL;
    st->readv = NULL;
    if (end) {
        h2_end_local(s, st);
        return true;
    }
    st->flags |= SF_END_WANTED;
    return false;
}

/* Vectored source: when the windows allow several whole frames, one call fills the payloads of
 * the frames that fit in one big buffer, laid out back to back (a single preadv for a file).
 * Returns -1 to let the one-frame path do it (too little window, or frames too large), 0 when st
 * must not be touched any more (ended, reset, paused, failed), 1 after frames went out. */
static int read_frames(rill_h2_session *s, struct h2_stream *st)
{
    int64_t win = st->send_window < s->conn_send_window ? st->send_window : s->conn_send_window;
    /* As few frames as fill the buffer, all alike (4 x 16361 bytes at the default frame size). */
    size_t frames = (H2_BIG_CHUNK + H2_FRAME_HEADER + s->peer.max_frame_size - 1) /
                    (H2_FRAME_HEADER + s->peer.max_frame_size);
    if (frames < 2 || frames > H2_BIG_CHUNK_FRAMES_MAX)
        return -1; /* frames as large as the buffer: the one-frame path */
    size_t per = H2_BIG_CHUNK / frames, f = per - H2_FRAME_HEADER;
    int64_t k = win / (int64_t)f;
    if (k > (int64_t)frames)
        k = (int64_t)frames;
    if (k < 2)
        return -1;
    uint8_t *p = h2_out_reserve(s, H2_BIG_CHUNK);
    if (!p) {
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
        return 0;
    }
    struct iovec iov[H2_BIG_CHUNK_FRAMES_MAX];
    for (int64_t i = 0; i < k; i++)
        iov[i] = (struct iovec){p + i * (int64_t)per + H2_FRAME_HEADER, f};
    bool eof = false;
    int n = st->readv(s, st->id, iov, (int)k, &eof, st->read_user);
    if (h2_stream_find(s, st->id) != st || st->state == H2_CLOSED)
        return 0; /* the callback reset the stream */
    if (n == RILL_ERR_WOULD_BLOCK || (n == 0 && !eof)) {
        st->flags |= SF_SOURCE_PAUSED;
        return 0;
    }
    if (n < 0 || (size_t)n > (size_t)k * f) {
        h2_stream_error(s, st->id, RILL_H2_INTERNAL_ERROR);
        return 0;
    }
    bool end = eof && !st->trailers;
    /* Full frames, then the partial last one; an empty frame only when it carries END_STREAM. */
    size_t left = (size_t)n, used = 0;
    for (int64_t i = 0; i < k && (left || (end && i == 0)); i++) {
        size_t len = left < f ? left : f;
        left -= len;
        h2_frame_header(p + i * (int64_t)per, (uint32_t)len, RILL_H2_DATA,
                        end && left == 0 ? H2_FLAG_END_STREAM : 0, st->id);
        used = (size_t)i * per + H2_FRAME_HEADER + len;
    }
    if (used)
        h2_out_commit(s, used);
    st->send_window -= n;
    s->conn_send_window -= n;
    if (eof && source_done(s, st, end))
        return 0;
    return 1;
}

/* Puts one frame of st out. */
static void send_one(rill_h2_session *s, struct h2_stream *st)
{
    int64_t budget = send_budget(s, st);
    if (budget < 0)
        budget = 0;
    struct h2_dataref *r = st->dq_head;
    if (r) {
        size_t rem = r->len - r->off;
        size_t n = rem < (size_t)budget ? rem : (size_t)budget;
        bool last = n == rem;
        bool end = last && r->end_stream;
        /* Small payloads are copied beside their frame header: cheaper than an iovec of their
         * own, and the buffer goes back to its owner at once. */
        bool copy = n <= H2_DATA_COPY_MAX;
        uint8_t *p = h2_out_reserve(s, H2_FRAME_HEADER + (copy ? n : 0));
        if (!p) {
            h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
            return;
        }
        if (n || end) {
            h2_frame_header(p, (uint32_t)n, RILL_H2_DATA, end ? H2_FLAG_END_STREAM : 0, st->id);
            if (copy && n)
                memcpy(p + H2_FRAME_HEADER, r->data + r->off, n);
            h2_out_commit(s, H2_FRAME_HEADER + (copy ? n : 0));
            if (n && !copy && h2_out_ref(s, r->data + r->off, n, r) != 0) {
                h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
                return;
            }
        }
        r->off += n;
        st->send_window -= (int64_t)n;
        s->conn_send_window -= (int64_t)n;
        if (last) {
            st->dq_head = r->next;
            if (!st->dq_head)
                st->dq_tail = NULL;
            r->detached = true;
            if (r->inflight == 0)
                h2_ref_release(s, r);
        }
        if (end) {
            h2_end_local(s, st);
            return;
        }
    } else if (st->read && !(st->flags & SF_SOURCE_EOF)) {
        int rf = st->readv ? read_frames(s, st) : -1;
        if (rf == 0)
            return;
        if (rf == 1)
            goto sent;
        size_t max = (size_t)budget;
        if (max > s->prof->chunk_size - H2_FRAME_HEADER)
            max = s->prof->chunk_size - H2_FRAME_HEADER;
        uint8_t *p = h2_out_reserve(s, H2_FRAME_HEADER + max);
        if (!p) {
            h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
            return;
        }
        bool eof = false;
        int n;
        if (st->readv) {
            struct iovec one = {p + H2_FRAME_HEADER, max};
            n = st->readv(s, st->id, &one, 1, &eof, st->read_user);
        } else {
            n = st->read(s, st->id, p + H2_FRAME_HEADER, max, &eof, st->read_user);
        }
        /* The callback may have reset the stream. */
        if (h2_stream_find(s, st->id) != st || st->state == H2_CLOSED)
            return;
        if (n == RILL_ERR_WOULD_BLOCK || (n == 0 && !eof)) {
            st->flags |= SF_SOURCE_PAUSED;
            return;
        }
        if (n < 0 || (size_t)n > max) {
            h2_stream_error(s, st->id, RILL_H2_INTERNAL_ERROR);
            return;
        }
        bool end = eof && !st->trailers;
        if (n || end) { /* an empty frame only when it carries END_STREAM */
            h2_frame_header(p, (uint32_t)n, RILL_H2_DATA, end ? H2_FLAG_END_STREAM : 0, st->id);
            h2_out_commit(s, H2_FRAME_HEADER + (size_t)n);
        }
        st->send_window -= n;
        s->conn_send_window -= n;
        if (eof && source_done(s, st, end))
            return;
    } else if (st->trailers) {
        struct h2_trailers *t = st->trailers;
        int rc = h2_encode_headers(s, RILL_H2_HEADERS, st->id, 0, H2_FLAG_END_STREAM, t->fields, t->count);
        h2_trailers_free(s, st);
        if (rc) {
            h2_stream_error(s, st->id, RILL_H2_INTERNAL_ERROR);
            return;
        }
        h2_end_local(s, st);
        return;
    } else {
        h2_out_frame(s, RILL_H2_DATA, H2_FLAG_END_STREAM, st->id, NULL, 0);
        h2_end_local(s, st);
        return;
    }
sent:
    if ((st->flags & SF_INCREMENTAL) && (st->flags & SF_SCHEDULED)) {
        /* Round-robin among incremental streams of the same urgency. */
        h2_sched_remove(s, st);
        h2_sched_add(s, st);
    }
}

void h2_fill_output(rill_h2_session *s)
{
    if (s->rstate == RS_DEAD)
        return;
    /* After an h2c Upgrade the response can be ready before the client's preface: DATA waits for
     * it, so the first flight behind the 101 is SETTINGS and HEADERS only (curl before 8.1 keeps
     * just 32 KiB after a 101 and fails on more). */
    if (s->role == RILL_H2_SERVER && !s->peer_settings_seen)
        return;
    while (s->out_pending < H2_OUTPUT_HIGH_WATER && h2_out_ref_room(s)) {
        struct h2_stream *st = pick(s);
        if (!st)
            break;
        send_one(s, st);
        if (s->rstate == RS_DEAD)
            break;
    }
}
