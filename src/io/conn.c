/* Connections: reading into the loop's shared buffer, the output queue and its end-of-turn flush,
 * the TLS handshake, and the close paths (immediate, graceful, lingering). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "io/io_internal.h"

#define IO_IOV_MAX 64
#define IO_READS_PER_TURN 4        /* fairness: at most 4 x 64 KiB per connection per turn */
#define IO_TLS_RECORDS_PER_TURN 16 /* ... and 16 TLS records out */
#define IO_REF_COPY_MAX 512        /* tiny zero-copy writes are cheaper copied */


/* ---- bookkeeping ------------------------------------------------------------------------------ */

static void conn_update_events(rill_io_conn *conn)
{
    if (conn->state == CONN_DEAD)
        return;
    bool in = false, out = false;
    switch (conn->state) {
    case CONN_CONNECTING: out = true; break;
    case CONN_HANDSHAKE:
        in = true;
        out = conn->flags & CF_HS_WANT_WRITE;
        break;
    case CONN_OPEN:
        in = !(conn->flags & CF_PAUSED);
        out = conn->flags & (CF_BLOCKED | CF_READ_WANTS_WRITE);
        break;
    case CONN_CLOSING: out = conn->flags & CF_BLOCKED; break;
    case CONN_LINGER: in = true; break;
    }
    uint32_t have = conn->flags & (CF_EP_IN | CF_EP_OUT);
    uint32_t want = (in ? CF_EP_IN : 0) | (out ? CF_EP_OUT : 0);
    if (have == want)
        return;
    struct epoll_event ev = {.events = (in ? EPOLLIN : 0) | (out ? EPOLLOUT : 0), .data.ptr = conn};
    epoll_ctl(conn->loop->epfd, EPOLL_CTL_MOD, conn->fd, &ev);
    conn->flags = (conn->flags & ~(uint32_t)(CF_EP_IN | CF_EP_OUT)) | want;
}

void io_conn_mark_dirty(rill_io_conn *conn)
{
    if (conn->flags & CF_DIRTY)
        return;
    conn->flags |= CF_DIRTY;
    conn->dirty_next = conn->loop->dirty;
    conn->loop->dirty = conn;
}

static void move_to(rill_io_conn *conn, struct io_link *list, uint64_t deadline)
{
    io_list_remove(&conn->link);
    conn->deadline_ms = deadline;
    io_list_append(list, &conn->link);
}

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

static void queue_drop(rill_io_conn *conn)
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

static void notify_close(rill_io_conn *conn, int err)
{
    if (!(conn->flags & CF_OWES_CLOSE))
        return;
    conn->flags &= ~(uint32_t)CF_OWES_CLOSE;
    conn->loop->owed_close--;
    if (conn->cb && conn->cb->on_close)
        conn->cb->on_close(conn, err);
}

void io_conn_close_now(rill_io_conn *conn, int err)
{
    if (conn->state == CONN_DEAD)
        return;
    rill_io_loop *loop = conn->loop;
    if (conn->state != CONN_LINGER)
        loop->nconns--;
    conn->state = CONN_DEAD;
    io_list_remove(&conn->link);
    io_list_append(&loop->dead, &conn->link);
    close(conn->fd); /* also removes it from the epoll set */
    conn->fd = -1;
    if (conn->ssl) {
        SSL_free(conn->ssl);
        conn->ssl = NULL;
    }
    queue_drop(conn);
    notify_close(conn, err);
}

void io_conn_free_dead(rill_io_loop *loop)
{
    struct io_link *node = loop->dead.next;
    while (node != &loop->dead) {
        struct io_link *next = node->next;
        rill_io_conn *conn = IO_CONN_OF(node);
        /* Still referenced by the dirty list of the next turn: free it then. */
        if (!(conn->flags & CF_DIRTY) || !loop->running) {
            io_list_remove(node);
            free(conn);
        }
        node = next;
    }
}

rill_io_conn *io_conn_new(rill_io_loop *loop, int fd, SSL *ssl, const struct rill_io_conn_callbacks *cb,
                          void *user, bool client)
{
    rill_io_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->kind = IO_KIND_CONN;
    conn->fd = fd;
    conn->loop = loop;
    conn->cb = cb;
    conn->user = user;
    conn->ssl = ssl;
    conn->state = client ? CONN_CONNECTING : ssl ? CONN_HANDSHAKE : CONN_OPEN;
    uint32_t events = client ? EPOLLOUT : EPOLLIN;
    if (io_epoll_add(loop, fd, conn, events) != RILL_OK) {
        free(conn);
        return NULL;
    }
    conn->flags = client ? (CF_EP_OUT | CF_CLIENT) : CF_EP_IN;
    loop->nconns++;
    io_list_init(&conn->link);
    if (conn->state == CONN_OPEN)
        io_list_append(&loop->conns, &conn->link);
    else
        io_list_append(&loop->pending, &conn->link);
    conn->deadline_ms = loop->now_ms + loop->opts.handshake_timeout_ms;
    if (client) {
        conn->flags |= CF_OWES_CLOSE;
        loop->owed_close++;
    }
    return conn;
}

/* The connection became usable: tell the application, then send what it queued. */
void io_conn_open(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    conn->state = CONN_OPEN;
    move_to(conn, &loop->conns, 0);
    conn->flags |= CF_OPENED;
    if (!(conn->flags & CF_OWES_CLOSE)) {
        conn->flags |= CF_OWES_CLOSE;
        loop->owed_close++;
    }
    const char *alpn = NULL;
    if (conn->ssl) {
        const unsigned char *p;
        unsigned len;
        SSL_get0_alpn_selected(conn->ssl, &p, &len);
        if (len == 2 && memcmp(p, "h2", 2) == 0)
            alpn = "h2";
        else if (len == 8 && memcmp(p, "http/1.1", 8) == 0)
            alpn = "http/1.1";
        /* Decrypted bytes may already sit in OpenSSL's buffer with no socket event to come. */
        conn->flags |= CF_READ_AGAIN;
        io_conn_mark_dirty(conn);
    }
    if (conn->cb && conn->cb->on_open)
        conn->cb->on_open(conn, alpn);
    if (conn->state == CONN_OPEN && conn->queued)
        io_conn_mark_dirty(conn);
    conn_update_events(conn);
}

static void conn_fail(rill_io_conn *conn, int err, const char *what, const char *detail)
{
    io_set_error(conn->loop, "%s: %s", what, detail);
    io_conn_close_now(conn, err);
}

static const char *tls_error_text(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    return reason ? reason : "connection closed during handshake";
}

static void conn_handshake(rill_io_conn *conn)
{
    ERR_clear_error();
    int r = SSL_do_handshake(conn->ssl);
    if (r == 1) {
        conn->flags &= ~(uint32_t)CF_HS_WANT_WRITE;
        io_conn_open(conn);
        return;
    }
    switch (SSL_get_error(conn->ssl, r)) {
    case SSL_ERROR_WANT_READ: conn->flags &= ~(uint32_t)CF_HS_WANT_WRITE; break;
    case SSL_ERROR_WANT_WRITE: conn->flags |= CF_HS_WANT_WRITE; break;
    default:
        conn_fail(conn, RILL_ERR_TLS, "TLS handshake failed", tls_error_text());
        ERR_clear_error();
        return;
    }
    conn_update_events(conn);
}

static void conn_connected(rill_io_conn *conn)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr) {
        conn_fail(conn, RILL_ERR_IO, "connect failed", strerror(soerr));
        return;
    }
    if (conn->ssl) {
        conn->state = CONN_HANDSHAKE;
        conn_handshake(conn);
    } else {
        io_conn_open(conn);
    }
}

/* ---- reading ---------------------------------------------------------------------------------- */

/* The peer finished sending: deliver what we still owe it, then close. */
static void conn_peer_closed(rill_io_conn *conn)
{
    if (conn->queued == 0) {
        io_conn_close_now(conn, RILL_ERR_EOF);
        return;
    }
    rill_io_conn_close(conn, true);
    conn->close_err = RILL_ERR_EOF;
}

static void conn_read(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    for (int round = 0; round < IO_READS_PER_TURN; round++) {
        ssize_t n;
        if (conn->ssl) {
            ERR_clear_error();
            int r = SSL_read(conn->ssl, loop->recv_buf, IO_RECV_BUF_SIZE);
            if (r <= 0) {
                switch (SSL_get_error(conn->ssl, r)) {
                case SSL_ERROR_WANT_READ: return;
                case SSL_ERROR_WANT_WRITE:
                    conn->flags |= CF_READ_WANTS_WRITE;
                    conn_update_events(conn);
                    return;
                case SSL_ERROR_ZERO_RETURN: conn_peer_closed(conn); return;
                case SSL_ERROR_SYSCALL:
                    if (ERR_peek_error() == 0) { /* EOF without close_notify, or reset */
                        if (errno == 0 || errno == EAGAIN)
                            conn_peer_closed(conn);
                        else
                            conn_fail(conn, RILL_ERR_IO, "read", strerror(errno));
                        return;
                    }
                    /* fall through */
                default:
                    conn_fail(conn, RILL_ERR_TLS, "TLS read", tls_error_text());
                    ERR_clear_error();
                    return;
                }
            }
            n = r;
        } else {
            n = recv(conn->fd, loop->recv_buf, IO_RECV_BUF_SIZE, 0);
            if (n == 0) {
                conn_peer_closed(conn);
                return;
            }
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                if (errno == EINTR)
                    continue;
                if (errno == ECONNRESET)
                    io_conn_close_now(conn, RILL_ERR_EOF);
                else
                    conn_fail(conn, RILL_ERR_IO, "read", strerror(errno));
                return;
            }
        }
        if (conn->cb && conn->cb->on_data)
            conn->cb->on_data(conn, loop->recv_buf, (size_t)n);
        if (conn->state != CONN_OPEN || (conn->flags & CF_PAUSED))
            return;
        if (!conn->ssl && (size_t)n < IO_RECV_BUF_SIZE)
            return; /* the kernel buffer is empty; level-triggered epoll reports new bytes */
    }
    /* Budget used up. Cleartext bytes left in the kernel re-trigger epoll; bytes OpenSSL already
     * holds do not, so come back to them at the end of the turn. */
    if (conn->ssl && SSL_has_pending(conn->ssl)) {
        conn->flags |= CF_READ_AGAIN;
        io_conn_mark_dirty(conn);
    }
}

/* After on_close: wait for the peer's FIN (discarding its bytes) so that closing does not send a
 * reset that could destroy the last response in flight. */
static void conn_linger_read(rill_io_conn *conn)
{
    for (int round = 0; round < IO_READS_PER_TURN; round++) {
        ssize_t n = recv(conn->fd, conn->loop->recv_buf, IO_RECV_BUF_SIZE, 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        io_conn_close_now(conn, 0);
        return;
    }
}

void io_conn_event(rill_io_conn *conn, uint32_t events)
{
    switch (conn->state) {
    case CONN_CONNECTING: conn_connected(conn); return;
    case CONN_HANDSHAKE: conn_handshake(conn); return;
    case CONN_LINGER: conn_linger_read(conn); return;
    case CONN_DEAD: return;
    case CONN_OPEN:
    case CONN_CLOSING: break;
    }
    if (events & EPOLLOUT) {
        conn->flags &= ~(uint32_t)CF_BLOCKED;
        io_conn_mark_dirty(conn);
        if (conn->flags & CF_READ_WANTS_WRITE) {
            conn->flags &= ~(uint32_t)CF_READ_WANTS_WRITE;
            conn->flags |= CF_READ_AGAIN;
        }
    }
    bool reading = conn->state == CONN_OPEN && !(conn->flags & CF_PAUSED);
    if (reading && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        conn_read(conn);
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        /* Not reading, so nothing else would notice the socket died; these are level-triggered
         * and would spin. */
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        io_conn_close_now(conn, soerr && soerr != ECONNRESET && soerr != EPIPE ? RILL_ERR_IO : RILL_ERR_EOF);
        return;
    }
    conn_update_events(conn);
}

/* ---- writing ---------------------------------------------------------------------------------- */

static int conn_send_plain(rill_io_conn *conn)
{
    struct iovec iov[IO_IOV_MAX];
    int cnt = 0;
    size_t total = 0;
    for (struct io_chunk *c = conn->out_head; c && cnt < IO_IOV_MAX; c = c->next) {
        iov[cnt].iov_base = (void *)(c->data + c->off);
        iov[cnt].iov_len = c->len - c->off;
        total += iov[cnt].iov_len;
        cnt++;
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    ssize_t n;
    do
        n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            conn->flags |= CF_BLOCKED;
            return RILL_OK;
        }
        conn_fail(conn, errno == EPIPE || errno == ECONNRESET ? RILL_ERR_EOF : RILL_ERR_IO, "write",
                  strerror(errno));
        return RILL_ERR_IO;
    }
    queue_consume(conn, (size_t)n);
    if ((size_t)n < total)
        conn->flags |= CF_BLOCKED; /* the socket buffer is full */
    else if (conn->queued)
        io_conn_mark_dirty(conn); /* more than IO_IOV_MAX chunks: continue next turn */
    return RILL_OK;
}

/* One TLS record per SSL_write (partial-write mode). Small chunks are coalesced into the loop's
 * staging buffer so that they do not each become a record. If SSL_write must be retried, the
 * bytes offered again are the same prefix (the queue only grows at its tail), which is what
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER requires. */
static int conn_send_tls(rill_io_conn *conn)
{
    for (int rec = 0; rec < IO_TLS_RECORDS_PER_TURN && conn->queued; rec++) {
        struct io_chunk *c = conn->out_head;
        const uint8_t *buf = c->data + c->off;
        size_t len = c->len - c->off;
        if (len < IO_CHUNK_SIZE && c->next) {
            uint8_t *stage = conn->loop->tls_stage;
            size_t have = 0;
            for (; c && have < IO_CHUNK_SIZE; c = c->next) {
                size_t take = c->len - c->off;
                if (take > IO_CHUNK_SIZE - have)
                    take = IO_CHUNK_SIZE - have;
                memcpy(stage + have, c->data + c->off, take);
                have += take;
            }
            buf = stage;
            len = have;
        }
        if (len > INT32_MAX)
            len = INT32_MAX;
        ERR_clear_error();
        int r = SSL_write(conn->ssl, buf, (int)len);
        if (r > 0) {
            queue_consume(conn, (size_t)r);
            continue;
        }
        switch (SSL_get_error(conn->ssl, r)) {
        case SSL_ERROR_WANT_WRITE: conn->flags |= CF_BLOCKED; return RILL_OK;
        case SSL_ERROR_WANT_READ: return RILL_OK; /* reading resumes it */
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) {
                conn_fail(conn, errno == EPIPE || errno == ECONNRESET ? RILL_ERR_EOF : RILL_ERR_IO,
                          "write", strerror(errno));
                return RILL_ERR_IO;
            }
            /* fall through */
        default:
            conn_fail(conn, RILL_ERR_TLS, "TLS write", tls_error_text());
            ERR_clear_error();
            return RILL_ERR_TLS;
        }
    }
    if (conn->queued)
        io_conn_mark_dirty(conn);
    return RILL_OK;
}

/* The queue is empty after a graceful close: close_notify, FIN, on_close, then linger. */
static void conn_finish_graceful(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    if (conn->ssl) {
        ERR_clear_error();
        SSL_shutdown(conn->ssl); /* one attempt: our close_notify; the peer's is not awaited */
        ERR_clear_error();
    }
    shutdown(conn->fd, SHUT_WR);
    conn->state = CONN_LINGER;
    loop->nconns--;
    move_to(conn, &loop->linger, loop->now_ms + loop->opts.linger_ms);
    notify_close(conn, conn->close_err);
    conn_update_events(conn);
}

static void conn_flush(rill_io_conn *conn)
{
    if (conn->queued && !(conn->flags & CF_BLOCKED)) {
        int rc = conn->ssl ? conn_send_tls(conn) : conn_send_plain(conn);
        if (rc != RILL_OK)
            return;
    }
    if (!conn->queued)
        conn->flags &= ~(uint32_t)CF_BLOCKED;
    if (conn->state == CONN_CLOSING) {
        if (!conn->queued)
            conn_finish_graceful(conn);
        else
            conn_update_events(conn);
        return;
    }
    conn_update_events(conn);
    if ((conn->flags & CF_WANT_DRAIN) && conn->queued <= conn->loop->opts.low_water) {
        conn->flags &= ~(uint32_t)CF_WANT_DRAIN;
        if (conn->cb && conn->cb->on_drain)
            conn->cb->on_drain(conn);
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
        conn->flags &= ~(uint32_t)CF_DIRTY;
        if (conn->state == CONN_OPEN && (conn->flags & CF_READ_AGAIN) && !(conn->flags & CF_PAUSED)) {
            conn->flags &= ~(uint32_t)CF_READ_AGAIN;
            conn_read(conn);
        }
        if (conn->state == CONN_OPEN || conn->state == CONN_CLOSING)
            conn_flush(conn);
    }
}

void io_conn_expire_pending(rill_io_loop *loop)
{
    while (!io_list_empty(&loop->pending)) {
        rill_io_conn *conn = IO_CONN_OF(loop->pending.next);
        if (conn->deadline_ms > loop->now_ms)
            break;
        conn_fail(conn, RILL_ERR_TIMEOUT, conn->state == CONN_CONNECTING ? "connect" : "TLS handshake",
                  "timed out");
    }
    io_update_deadline_timers(loop);
}

void io_conn_expire_linger(rill_io_loop *loop)
{
    while (!io_list_empty(&loop->linger)) {
        rill_io_conn *conn = IO_CONN_OF(loop->linger.next);
        if (conn->deadline_ms > loop->now_ms)
            break;
        /* A closing connection whose peer never took the data reports a timeout. */
        io_conn_close_now(conn, conn->state == CONN_CLOSING ? RILL_ERR_TIMEOUT : 0);
    }
    io_update_deadline_timers(loop);
}

/* ---- public API ------------------------------------------------------------------------------- */

static bool conn_writable_state(const rill_io_conn *conn)
{
    return conn->state <= CONN_OPEN;
}

static void queued_more(rill_io_conn *conn, size_t len)
{
    conn->queued += len;
    if (conn->queued > conn->loop->opts.high_water)
        conn->flags |= CF_WANT_DRAIN;
    if (conn->state == CONN_OPEN)
        io_conn_mark_dirty(conn);
}

static int queue_copy(rill_io_conn *conn, const uint8_t *data, size_t len)
{
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

size_t rill_io_conn_queued(const rill_io_conn *conn)
{
    return conn->queued;
}

void rill_io_conn_close(rill_io_conn *conn, bool graceful)
{
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
    move_to(conn, &loop->linger, loop->now_ms + loop->opts.linger_ms);
    io_conn_mark_dirty(conn); /* the flush at the end of the turn finishes the close */
    conn_update_events(conn);
}

void rill_io_conn_pause_read(rill_io_conn *conn, bool paused)
{
    if (paused) {
        conn->flags |= CF_PAUSED;
    } else if (conn->flags & CF_PAUSED) {
        conn->flags &= ~(uint32_t)CF_PAUSED;
        if (conn->ssl && conn->state == CONN_OPEN && SSL_has_pending(conn->ssl)) {
            conn->flags |= CF_READ_AGAIN;
            io_conn_mark_dirty(conn);
        }
    }
    conn_update_events(conn);
}

void rill_io_conn_set_callbacks(rill_io_conn *conn, const struct rill_io_conn_callbacks *cbs)
{
    conn->cb = cbs;
}

void *rill_io_conn_user(const rill_io_conn *conn)
{
    return conn->user;
}

void rill_io_conn_set_user(rill_io_conn *conn, void *user)
{
    conn->user = user;
}

rill_io_loop *rill_io_conn_loop(const rill_io_conn *conn)
{
    return conn->loop;
}

int rill_io_conn_peer(const rill_io_conn *conn, struct rill_io_addr *out)
{
    if (conn->fd < 0)
        return RILL_ERR_STATE;
    out->len = sizeof out->ss;
    if (getpeername(conn->fd, (struct sockaddr *)&out->ss, &out->len) != 0)
        return RILL_ERR_IO;
    return RILL_OK;
}

int rill_io_conn_tls_info(const rill_io_conn *conn, struct rill_io_tls_info *info)
{
    if (!conn->ssl || !(conn->flags & CF_OPENED))
        return RILL_ERR_STATE;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(conn->ssl);
    const unsigned char *alpn;
    unsigned alpn_len;
    SSL_get0_alpn_selected(conn->ssl, &alpn, &alpn_len);
    info->version = SSL_version(conn->ssl);
    info->cipher = cipher ? SSL_CIPHER_get_name(cipher) : "";
    info->alpn = NULL;
    if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)
        info->alpn = "h2";
    else if (alpn_len == 8 && memcmp(alpn, "http/1.1", 8) == 0)
        info->alpn = "http/1.1";
    int kx = cipher ? SSL_CIPHER_get_kx_nid(cipher) : NID_undef;
    bool ephemeral = kx == NID_kx_ecdhe || kx == NID_kx_dhe || kx == NID_kx_any;
    info->h2_acceptable = info->version >= TLS1_2_VERSION && cipher && SSL_CIPHER_is_aead(cipher) && ephemeral;
    info->resumed = SSL_session_reused(conn->ssl);
    return RILL_OK;
}
