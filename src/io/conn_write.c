/* The output side of a connection: the queue of copied or referenced chunks, the end-of-turn
 * flush (one sendmsg, a send for one piece, or record-sized SSL_writes), back-pressure and the
 * graceful close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "io/io_internal.h"

#define IO_IOV_MAX 64
#define IO_TLS_RECORDS_PER_TURN 16 /* fairness: at most 16 TLS records out per turn */
#define IO_WRITES_PER_TURN 16      /* fairness: at most 16 sendmsg calls per connection per turn */
#define IO_REF_COPY_MAX 512        /* tiny zero-copy writes are cheaper copied */

static int queue_copy(rill_io_conn *conn, const uint8_t *data, size_t len);

static struct io_chunk *chunk_get(rill_io_loop *loop, size_t need)
{
    struct io_chunk *c;
    if (need <= IO_CHUNK_SIZE && loop->chunk_cache) {
        c = loop->chunk_cache;
        loop->chunk_cache = c->next;
        loop->chunk_cache_len--;
    } else {
        size_t cap = need < IO_CHUNK_SIZE ? IO_CHUNK_SIZE : need;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
    }
    c->next = NULL;
    c->data = c->buf;
    c->len = c->off = 0;
    c->release = NULL;
    c->release_arg = NULL;
    return c;
}

static void chunk_put(rill_io_loop *loop, struct io_chunk *c)
{
    if (c->release)
        c->release(c->release_arg);
    if (c->cap == IO_CHUNK_SIZE && loop->chunk_cache_len < IO_CHUNK_CACHE_MAX) {
        c->next = loop->chunk_cache;
        loop->chunk_cache = c;
        loop->chunk_cache_len++;
        return;
    }
    free(c);
}

static void queue_append(rill_io_conn *conn, struct io_chunk *c)
{
    if (conn->out_tail)
        conn->out_tail->next = c;
    else
        conn->out_head = c;
    conn->out_tail = c;
}

void io_queue_drop(rill_io_conn *conn)
{
    struct io_chunk *c = conn->out_head;
    conn->out_head = conn->out_tail = NULL;
    conn->queued = 0;
    while (c) {
        struct io_chunk *next = c->next;
        chunk_put(conn->loop, c);
        c = next;
    }
}

/* Removes n written bytes from the front of the queue. */
static void queue_consume(rill_io_conn *conn, size_t n)
{
    conn->queued -= n;
    while (n > 0) {
        struct io_chunk *c = conn->out_head;
        size_t left = c->len - c->off;
        if (n < left) {
            c->off += n;
            return;
        }
        n -= left;
        conn->out_head = c->next;
        if (!conn->out_head)
            conn->out_tail = NULL;
        chunk_put(conn->loop, c);
    }
}

static bool conn_alive(const rill_io_conn *conn)
{
    return conn->state == CONN_OPEN || conn->state == CONN_CLOSING;
}

/* Fills iov with what is ready to go: the queue's chunks first, then bytes pulled from the
 * user's on_output. *qbytes and *pbytes say how many come from each. Returns the iovec count, or
 * -1 when the connection died inside on_output. */
static int gather(rill_io_conn *conn, struct iovec *iov, size_t *qbytes, size_t *pbytes)
{
    int cnt = 0;
    size_t q = 0, p = 0;
    struct io_chunk *c = conn->out_head;
    for (; c && cnt < IO_IOV_MAX; c = c->next) {
        iov[cnt].iov_base = (void *)(c->data + c->off);
        iov[cnt].iov_len = c->len - c->off;
        q += iov[cnt].iov_len;
        cnt++;
    }
    int np = 0;
    if (!c && cnt < IO_IOV_MAX && (conn->flags & CF_PULL)) {
        conn->flags &= ~(uint32_t)CF_PULL; /* set again if the user has more, or asks again */
        size_t queued_before = conn->queued;
        if (conn->cb && IO_CB(conn, on_output))
            np = IO_CB(conn, on_output)(conn, iov + cnt, IO_IOV_MAX - cnt);
        if (!conn_alive(conn))
            return -1;
        if (np > 0)
            conn->flags |= CF_PULL;
        if (np < 0 || conn->queued != queued_before)
            np = 0; /* the queue grew meanwhile: it goes first, the pulled bytes next round */
        for (int i = 0; i < np; i++)
            p += iov[cnt + i].iov_len;
    }
    *qbytes = q;
    *pbytes = p;
    return cnt + np;
}

static int pulled_sent(rill_io_conn *conn, size_t n)
{
    if (conn->cb && IO_CB(conn, on_output_sent)) {
        IO_CB(conn, on_output_sent)(conn, n);
        if (!conn_alive(conn))
            return RILL_ERR_STATE;
    }
    return RILL_OK;
}

/* n bytes of a gathered batch were written: the queue's part first, then the user's. */
static int sent(rill_io_conn *conn, size_t n, size_t qbytes, size_t pbytes)
{
    size_t from_queue = n < qbytes ? n : qbytes;
    if (from_queue)
        queue_consume(conn, from_queue);
    return pbytes ? pulled_sent(conn, n - from_queue) : RILL_OK;
}

static bool has_output(const rill_io_conn *conn)
{
    return conn->queued || (conn->flags & (CF_PULL | CF_TLS_TAIL));
}

static int conn_send_plain(rill_io_conn *conn)
{
    for (int round = 0; round < IO_WRITES_PER_TURN; round++) {
        struct iovec iov[IO_IOV_MAX];
        size_t qbytes, pbytes;
        int cnt = gather(conn, iov, &qbytes, &pbytes);
        if (cnt < 0)
            return RILL_ERR_STATE;
        if (cnt == 0)
            return RILL_OK;
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t n;
        do /* one piece (a relayed message, mostly): send(2) spares the kernel copying in a
            * msghdr and an iovec, about 2% of a WebSocket proxy's time per message */
            n = cnt == 1 ? send(conn->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
                         : sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn->flags |= CF_BLOCKED;
                return sent(conn, 0, qbytes, pbytes);
            }
            io_conn_fail(conn, errno == EPIPE || errno == ECONNRESET ? RILL_ERR_EOF : RILL_ERR_IO, "write",
                         strerror(errno));
            return RILL_ERR_IO;
        }
        int rc = sent(conn, (size_t)n, qbytes, pbytes);
        if (rc != RILL_OK)
            return rc;
        if ((size_t)n < qbytes + pbytes) {
            conn->flags |= CF_BLOCKED; /* the socket buffer is full */
            return RILL_OK;
        }
        if (!has_output(conn))
            return RILL_OK;
    }
    io_conn_mark_dirty(conn); /* fairness: the rest goes next turn */
    return RILL_OK;
}

/* SSL_write refused buf[0..len) but may hold it encrypted already: the retry must offer the same
 * bytes, at least len of them (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets them move). The queue only
 * grows at its tail, so its part comes back alike; pulled output may not (the user may offer
 * fewer iovecs next time, or a write queued meanwhile would go first). So the pulled part, at most
 * one record, is copied into the queue and reported sent: the retry is then the queue's prefix. */
static int tls_hold(rill_io_conn *conn, const uint8_t *buf, size_t len, size_t qbytes, size_t pbytes)
{
    if (len <= qbytes)
        return sent(conn, 0, qbytes, pbytes);
    if (queue_copy(conn, buf + qbytes, len - qbytes) != RILL_OK) {
        io_conn_fail(conn, RILL_ERR_IO, "TLS write", "out of memory");
        return RILL_ERR_IO;
    }
    return pulled_sent(conn, len - qbytes);
}

/* One TLS record per SSL_write (partial-write mode). Small pieces are coalesced into the loop's
 * staging buffer so that they do not each become a record. A refused write is retried with the
 * same bytes (tls_hold). */
static int conn_send_records(rill_io_conn *conn)
{
    for (int rec = 0; rec < IO_TLS_RECORDS_PER_TURN; rec++) {
        struct iovec iov[IO_IOV_MAX];
        size_t qbytes, pbytes;
        int cnt = gather(conn, iov, &qbytes, &pbytes);
        if (cnt < 0)
            return RILL_ERR_STATE;
        if (cnt == 0)
            return RILL_OK;
        const uint8_t *buf = iov[0].iov_base;
        size_t len = iov[0].iov_len;
        if (len < IO_CHUNK_SIZE && cnt > 1) {
            uint8_t *stage = conn->loop->tls_stage;
            size_t have = 0;
            for (int i = 0; i < cnt && have < IO_CHUNK_SIZE; i++) {
                size_t take = iov[i].iov_len;
                if (take > IO_CHUNK_SIZE - have)
                    take = IO_CHUNK_SIZE - have;
                memcpy(stage + have, iov[i].iov_base, take);
                have += take;
            }
            buf = stage;
            len = have;
        }
        if (len > qbytes && len > IO_CHUNK_SIZE)
            len = IO_CHUNK_SIZE; /* pulled memory: a refusal copies it (tls_hold), keep that small */
        if (len > INT32_MAX)
            len = INT32_MAX;
        io_tls_clear_errors();
        int r = SSL_write(conn->ssl, buf, (int)len);
        if (r > 0) {
            int rc = sent(conn, (size_t)r, qbytes, pbytes);
            if (rc != RILL_OK)
                return rc;
            continue;
        }
        /* Before any callback, which could change errno or OpenSSL's error queue. */
        int err = SSL_get_error(conn->ssl, r);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
            int rc = tls_hold(conn, buf, len, qbytes, pbytes);
            if (rc == RILL_OK && err == SSL_ERROR_WANT_WRITE)
                conn->flags |= CF_BLOCKED; /* WANT_READ: reading resumes it */
            return rc;
        }
        switch (err) {
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) {
                io_conn_fail(conn, errno == EPIPE || errno == ECONNRESET ? RILL_ERR_EOF : RILL_ERR_IO,
                             "write", strerror(errno));
                return RILL_ERR_IO;
            }
            /* fall through */
        default:
            io_conn_fail(conn, RILL_ERR_TLS, "TLS write", io_tls_error_text());
            ERR_clear_error();
            return RILL_ERR_TLS;
        }
    }
    if (has_output(conn))
        io_conn_mark_dirty(conn);
    return RILL_OK;
}

/* TLS output: first what the socket refused last time, then records, written in batches. */
static int conn_send_tls(rill_io_conn *conn)
{
    int rc = io_tls_flush_tail(conn);
    if (rc == RILL_OK) {
        io_tls_batch_begin(conn);
        int sent_rc = conn_send_records(conn);
        if (!conn_alive(conn))
            return sent_rc != RILL_OK ? sent_rc : RILL_ERR_STATE;
        rc = io_tls_batch_end(conn);
        if (rc == RILL_OK)
            return sent_rc;
    }
    if (rc == RILL_ERR_WOULD_BLOCK) {
        conn->flags |= CF_BLOCKED;
        return RILL_OK;
    }
    io_conn_fail(conn, errno == EPIPE || errno == ECONNRESET ? RILL_ERR_EOF : RILL_ERR_IO, "write",
                 strerror(errno));
    return RILL_ERR_IO;
}

/* The queue is empty after a graceful close: close_notify, FIN, on_close, then linger. */
static void conn_finish_graceful(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    if (conn->ssl) {
        /* Our close_notify (the peer's is not awaited). The last record may have filled the
         * socket: then wait for room, or the peer sees a truncated stream. */
        ERR_clear_error();
        int r = SSL_shutdown(conn->ssl);
        bool full = r < 0 && SSL_get_error(conn->ssl, r) == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        if (full) {
            conn->flags |= CF_BLOCKED;
            io_conn_update_events(conn);
            return;
        }
    }
    shutdown(conn->fd, SHUT_WR);
    conn->state = CONN_LINGER;
    loop->nconns--;
    io_conn_move_to(conn, &loop->linger, loop->now_ms + loop->opts.linger_ms);
    io_conn_notify_close(conn, conn->close_err);
    /* Lingering reads raw bytes only: the TLS state can go now. */
    if (conn->ssl && conn->state == CONN_LINGER)
        io_tls_free(conn);
    io_conn_update_events(conn);
}

/* rill_io_conn_shutdown_write, once the queue is empty: close_notify, FIN; reading goes on. */
static void conn_finish_write(rill_io_conn *conn)
{
    if (conn->ssl) {
        ERR_clear_error();
        int r = SSL_shutdown(conn->ssl); /* 0: sent, the peer's not seen yet (SSL_read goes on) */
        bool full = r < 0 && SSL_get_error(conn->ssl, r) == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        if (full) { /* as in conn_finish_graceful: wait for room */
            conn->flags |= CF_BLOCKED;
            io_conn_update_events(conn);
            return;
        }
    }
    shutdown(conn->fd, SHUT_WR);
    conn->flags |= CF_WR_SHUT_DONE;
    if (conn->flags & CF_PEER_EOF) /* the peer's end came first: both are over */
        io_conn_close_now(conn, 0);
}

static void conn_flush(rill_io_conn *conn)
{
    if (conn->flags & CF_ABORT) {
        io_conn_close_now(conn, 0); /* SO_LINGER 0 is set: the close is a reset */
        return;
    }
    if (has_output(conn) && !(conn->flags & CF_BLOCKED)) {
        int rc = conn->ssl ? conn_send_tls(conn) : conn_send_plain(conn);
        if (rc != RILL_OK || !conn_alive(conn))
            return;
    }
    if (!has_output(conn))
        conn->flags &= ~(uint32_t)CF_BLOCKED;
    if (conn->state == CONN_CLOSING) {
        if (!has_output(conn))
            conn_finish_graceful(conn);
        else
            io_conn_update_events(conn);
        return;
    }
    if ((conn->flags & (CF_WR_SHUT | CF_WR_SHUT_DONE)) == CF_WR_SHUT && !has_output(conn)) {
        conn_finish_write(conn);
        if (conn->state != CONN_OPEN)
            return;
    }
    io_conn_update_events(conn);
    if ((conn->flags & CF_WANT_DRAIN) && conn->queued <= conn->loop->opts.low_water) {
        conn->flags &= ~(uint32_t)CF_WANT_DRAIN;
        if (conn->cb && IO_CB(conn, on_drain))
            IO_CB(conn, on_drain)(conn);
    }
}

void io_conn_flush_dirty(rill_io_loop *loop)
{
    rill_io_conn *list = loop->dirty;
    loop->dirty = NULL;
    while (list) {
        rill_io_conn *conn = list;
        list = conn->dirty_next;
        conn->dirty_next = NULL;
        bool read_again = conn->flags & CF_READ_AGAIN;
        conn->flags &= ~(uint32_t)(CF_DIRTY | CF_READ_AGAIN);
        /* A paused connection looks at OpenSSL's buffer again when it resumes. */
        if (read_again && conn->state == CONN_OPEN && !(conn->flags & CF_PAUSED))
            io_conn_read(conn);
        if (conn->state == CONN_OPEN || conn->state == CONN_CLOSING)
            conn_flush(conn);
    }
}

static bool conn_writable_state(const rill_io_conn *conn)
{
    return conn->state <= CONN_OPEN && !(conn->flags & CF_WR_SHUT);
}

static void queued_more(rill_io_conn *conn, size_t len)
{
    conn->queued += (uint32_t)len; /* checked against IO_QUEUE_MAX by the callers */
    if (conn->queued > conn->loop->opts.high_water)
        conn->flags |= CF_WANT_DRAIN;
    if (conn->state == CONN_OPEN)
        io_conn_mark_dirty(conn);
}

static int queue_copy(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    if (len > IO_QUEUE_MAX - conn->queued)
        return RILL_ERR_LIMIT;
    struct io_chunk *tail = conn->out_tail;
    size_t room = tail && tail->cap ? tail->cap - tail->len : 0;
    size_t first = len < room ? len : room;
    if (len > first) {
        struct io_chunk *c = chunk_get(conn->loop, len - first);
        if (!c)
            return RILL_ERR_NOMEM;
        memcpy(c->buf, data + first, len - first);
        c->len = len - first;
        if (first)
            memcpy(tail->buf + tail->len, data, first);
        if (first)
            tail->len += first;
        queue_append(conn, c);
    } else if (first) {
        memcpy(tail->buf + tail->len, data, first);
        tail->len += first;
    }
    queued_more(conn, len);
    return RILL_OK;
}

int rill_io_conn_write(rill_io_conn *conn, const void *data, size_t len)
{
    if (!conn_writable_state(conn))
        return RILL_ERR_STATE;
    if (len == 0)
        return RILL_OK;
    return queue_copy(conn, data, len);
}

int rill_io_conn_writev(rill_io_conn *conn, const struct iovec *iov, int iovcnt)
{
    if (!conn_writable_state(conn))
        return RILL_ERR_STATE;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        int rc = queue_copy(conn, iov[i].iov_base, iov[i].iov_len);
        if (rc != RILL_OK)
            return rc;
    }
    return RILL_OK;
}

int rill_io_conn_write_ref(rill_io_conn *conn, const void *data, size_t len, rill_io_release_fn release,
                           void *release_arg)
{
    int rc;
    if (!conn_writable_state(conn)) {
        rc = RILL_ERR_STATE;
    } else if (len <= IO_REF_COPY_MAX) {
        rc = len ? queue_copy(conn, data, len) : RILL_OK;
    } else if (len > IO_QUEUE_MAX - conn->queued) {
        rc = RILL_ERR_LIMIT;
    } else {
        struct io_chunk *c = malloc(sizeof *c);
        if (!c) {
            rc = RILL_ERR_NOMEM;
        } else {
            *c = (struct io_chunk){.data = data, .len = len, .release = release, .release_arg = release_arg};
            queue_append(conn, c);
            queued_more(conn, len);
            return RILL_OK;
        }
    }
    if (release)
        release(release_arg);
    return rc;
}

void rill_io_conn_want_output(rill_io_conn *conn)
{
    if (!conn->cb || !IO_CB(conn, on_output) || conn->state > CONN_CLOSING)
        return;
    conn->flags |= CF_PULL;
    if (conn_alive(conn) && !(conn->flags & CF_BLOCKED))
        io_conn_mark_dirty(conn);
}

size_t rill_io_conn_queued(const rill_io_conn *conn)
{
    return conn->queued;
}

int rill_io_conn_shutdown_write(rill_io_conn *conn)
{
    if (conn->state > CONN_OPEN)
        return RILL_ERR_STATE;
    if (conn->flags & CF_WR_SHUT)
        return RILL_OK;
    conn->flags |= CF_WR_SHUT;
    if (conn->state == CONN_OPEN) /* the flush at the end of the turn ends our side */
        io_conn_mark_dirty(conn);
    return RILL_OK;
}

void rill_io_conn_abort(rill_io_conn *conn)
{
    if (conn->state == CONN_LINGER || conn->state == CONN_DEAD || (conn->flags & CF_ABORT))
        return; /* our end already went (in order), or the connection is gone */
    /* The close that ends it sends a TCP reset; nothing queued goes, no close_notify. Done at the
     * end of the turn, like a graceful close, so on_close never runs inside the caller. */
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    io_queue_drop(conn);
    if (conn->state == CONN_CONNECTING || conn->state == CONN_HANDSHAKE) {
        io_conn_close_now(conn, 0); /* not opened: on_close is not owed, nothing to wait for */
        return;
    }
    conn->flags |= CF_ABORT;
    conn->state = CONN_CLOSING;
    io_conn_mark_dirty(conn);
}

void rill_io_conn_close(rill_io_conn *conn, bool graceful)
{
    if (conn->flags & CF_PARKED) { /* both ends sent and our queue empty: nothing to linger for */
        io_conn_close_now(conn, 0);
        return;
    }
    switch (conn->state) {
    case CONN_LINGER:
    case CONN_DEAD: return;
    case CONN_CLOSING:
        if (!graceful)
            io_conn_close_now(conn, 0);
        return;
    case CONN_CONNECTING:
    case CONN_HANDSHAKE: io_conn_close_now(conn, 0); return;
    case CONN_OPEN: break;
    }
    if (!graceful) {
        io_conn_close_now(conn, 0);
        return;
    }
    rill_io_loop *loop = conn->loop;
    conn->state = CONN_CLOSING;
    conn->close_err = 0;
    io_conn_move_to(conn, &loop->linger, loop->now_ms + loop->opts.linger_ms);
    io_conn_mark_dirty(conn); /* the flush at the end of the turn finishes the close */
    io_conn_update_events(conn);
}
