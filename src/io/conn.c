/* Connections: lifecycle (connect, TLS handshake, open, close, linger), epoll events, and reading
 * into the loop's shared receive buffer. The output side is in conn_write.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "io/io_internal.h"

#define IO_READS_PER_TURN 4 /* fairness: at most 4 x 64 KiB per connection per turn */

void io_conn_update_events(rill_io_conn *conn)
{
    if (conn->state == CONN_DEAD || (conn->flags & CF_PARKED))
        return;
    bool in = false, out = false;
    switch (conn->state) {
    case CONN_CONNECTING: out = true; break;
    case CONN_HANDSHAKE:
        in = true;
        out = conn->flags & CF_HS_WANT_WRITE;
        break;
    case CONN_OPEN:
        in = !(conn->flags & (CF_PAUSED | CF_PEER_EOF));
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

void io_conn_move_to(rill_io_conn *conn, struct io_link *list, uint64_t deadline)
{
    io_list_remove(&conn->link);
    io_tnode_cancel(conn->loop, &conn->tnode); /* its deadline now serves the list */
    conn->tnode.deadline = deadline;
    io_list_append(list, &conn->link);
}

void io_conn_notify_close(rill_io_conn *conn, int err)
{
    if (!(conn->flags & CF_OWES_CLOSE))
        return;
    conn->flags &= ~(uint32_t)CF_OWES_CLOSE;
    conn->loop->owed_close--;
    if (conn->cb && IO_CB(conn, on_close))
        IO_CB(conn, on_close)(conn, err);
}

void io_conn_close_now(rill_io_conn *conn, int err)
{
    if (conn->state == CONN_DEAD)
        return;
    rill_io_loop *loop = conn->loop;
    if (conn->state != CONN_LINGER)
        loop->nconns--;
    conn->state = CONN_DEAD;
    io_tnode_cancel(loop, &conn->tnode);
    io_list_remove(&conn->link);
    io_list_append(&loop->dead, &conn->link);
    /* Out of the epoll set before the close: close removes it only when no other process holds
     * the socket, and a child forked meanwhile (a CGI, system(), a symbolizer) would keep it
     * there, its next event pointing at this freed connection. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
    close(conn->fd);
    conn->fd = -1;
    io_tls_free(conn);
    io_queue_drop(conn);
    io_conn_batch_forget(conn);
    io_conn_notify_close(conn, err);
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
    if (!loop->running) /* the cached time is only fresh inside a turn */
        loop->now_ms = rill_io_now_ms();
    conn->kind = IO_KIND_CONN;
    conn->fd = fd;
    conn->loop = loop;
    conn->cb = cb;
    conn->user = user;
    conn->ssl = ssl;
    conn->tnode.idx = IO_TNODE_IN_CONN | IO_TNODE_UNARMED;
    conn->state = client ? CONN_CONNECTING : ssl ? CONN_HANDSHAKE : CONN_OPEN;
    if (ssl && io_tls_attach(conn) != RILL_OK) {
        free(conn);
        return NULL;
    }
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
    conn->tnode.deadline = loop->now_ms + loop->opts.handshake_timeout_ms;
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
    io_conn_move_to(conn, &loop->conns, 0);
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
    if (conn->cb && IO_CB(conn, on_open))
        IO_CB(conn, on_open)(conn, alpn);
    if (conn->state == CONN_OPEN && (conn->queued || (conn->flags & (CF_PULL | CF_WR_SHUT))))
        io_conn_mark_dirty(conn);
    io_conn_update_events(conn);
}

void io_conn_fail(rill_io_conn *conn, int err, const char *what, const char *detail)
{
    io_set_error(conn->loop, "%s: %s", what, detail);
    io_conn_close_now(conn, err);
}

const char *io_tls_error_text(void)
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
        io_conn_fail(conn, RILL_ERR_TLS, "TLS handshake failed", io_tls_error_text());
        ERR_clear_error();
        return;
    }
    io_conn_update_events(conn);
}

static void conn_connected(rill_io_conn *conn)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr) {
        io_conn_fail(conn, RILL_ERR_IO, "connect failed", strerror(soerr));
        return;
    }
    if (conn->cb && IO_CB(conn, on_connected)) {
        IO_CB(conn, on_connected)(conn);
        if (conn->state != CONN_CONNECTING)
            return; /* closed in the callback */
    }
    if (conn->ssl) {
        conn->state = CONN_HANDSHAKE;
        conn_handshake(conn);
    } else {
        io_conn_open(conn);
    }
}

/* The peer finished sending: a half-close if the application keeps the connection for writing
 * (on_peer_eof), else deliver what we still owe it, then close. */
static void conn_peer_closed(rill_io_conn *conn)
{
    if (!(conn->flags & (CF_PEER_RESET | CF_PEER_EOF)) && conn->cb && IO_CB(conn, on_peer_eof)) {
        conn->flags |= CF_PEER_EOF; /* no more reads: a level-triggered EOF would spin */
        io_conn_update_events(conn);
        bool keep = IO_CB(conn, on_peer_eof)(conn);
        if (conn->state != CONN_OPEN)
            return; /* closed by the callback */
        if (keep) {
            if (conn->flags & CF_WR_SHUT_DONE) /* our end went first: both are over */
                io_conn_close_now(conn, 0);
            return;
        }
    }
    if (conn->queued == 0 && !(conn->flags & CF_PULL)) {
        io_conn_close_now(conn, RILL_ERR_EOF);
        return;
    }
    rill_io_conn_close(conn, true);
    conn->close_err = RILL_ERR_EOF;
}

/* How a read attempt ended, beyond the bytes it produced. */
enum read_end {
    READ_MORE,        /* the buffer filled up: there may be more */
    READ_DRAINED,     /* nothing more for now */
    READ_EOF,         /* the peer finished */
    READ_WANTS_WRITE, /* TLS needs the socket writable first */
    READ_IO_ERROR,
    READ_TLS_ERROR,
};

/* How much one read takes: more while batching, where each call's fixed cost adds up. */
static size_t read_size(const rill_io_conn *conn)
{
    return (conn->flags & CF_BATCHED) ? IO_BATCH_READ : IO_RECV_BUF_SIZE;
}

/* Fills the loop's buffer with as many TLS records as a read takes, so the application sees one
 * on_data per 64 KiB (256 KiB while batching) rather than one per record. */
static enum read_end tls_fill(rill_io_conn *conn, size_t *have, int *sys_errno, const char **why)
{
    uint8_t *buf = conn->loop->recv_buf;
    *have = 0;
    conn->flags &= ~(uint32_t)CF_SOCK_DRAINED;
    size_t want = read_size(conn);
    while (*have < want) {
        io_tls_clear_errors();
        int r = SSL_read(conn->ssl, buf + *have, (int)(want - *have));
        if (r > 0) {
            *have += (size_t)r;
            /* The kernel had no more and neither OpenSSL nor the read-ahead holds anything: done
             * without a read that would only say EAGAIN. */
            if ((conn->flags & CF_SOCK_DRAINED) && !io_tls_has_input(conn))
                return READ_DRAINED;
            continue;
        }
        switch (SSL_get_error(conn->ssl, r)) {
        case SSL_ERROR_WANT_READ: return READ_DRAINED;
        case SSL_ERROR_WANT_WRITE: return READ_WANTS_WRITE;
        case SSL_ERROR_ZERO_RETURN: return READ_EOF;
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) { /* EOF without close_notify, or a reset */
                if (errno == ECONNRESET)
                    conn->flags |= CF_PEER_RESET;
                if (errno == 0 || errno == EAGAIN || errno == ECONNRESET)
                    return READ_EOF;
                *sys_errno = errno;
                return READ_IO_ERROR;
            }
            /* fall through */
        default:
            *why = io_tls_error_text(); /* static string: survives the on_data call below */
            ERR_clear_error();
            return READ_TLS_ERROR;
        }
    }
    return READ_MORE;
}

static enum read_end plain_fill(rill_io_conn *conn, size_t *have, int *sys_errno)
{
    *have = 0;
    for (;;) {
        size_t want = read_size(conn);
        ssize_t n = recv(conn->fd, conn->loop->recv_buf, want, 0);
        if (n > 0) {
            *have = (size_t)n;
            /* A short read means the kernel buffer is empty; level-triggered epoll reports more. */
            return (size_t)n == want ? READ_MORE : READ_DRAINED;
        }
        if (n == 0)
            return READ_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return READ_DRAINED;
        if (errno == ECONNRESET) {
            conn->flags |= CF_PEER_RESET;
            return READ_EOF;
        }
        *sys_errno = errno;
        return READ_IO_ERROR;
    }
}

/* Reads up to the turn's budget, handing each piece to on_data; returns the bytes read. */
static size_t read_rounds(rill_io_conn *conn)
{
    size_t got = 0;
    rill_io_loop *loop = conn->loop;
    /* The peer's end was kept as a half-close: nothing more to read. A read owed from earlier in
     * the turn (CF_READ_AGAIN: a resume, the budget, the open) would meet that end again, sticky
     * in OpenSSL, and conn_peer_closed would take it for a second end and close the connection
     * under what we still send. */
    if (conn->flags & CF_PEER_EOF)
        return 0;
    int rounds = (conn->flags & CF_BATCHED) ? (int)(IO_BATCH_BYTES / IO_BATCH_READ) + 1 : IO_READS_PER_TURN;
    for (int round = 0; round < rounds; round++) {
        size_t n;
        int sys_errno = 0;
        const char *why = NULL;
        enum read_end end = conn->ssl ? tls_fill(conn, &n, &sys_errno, &why) : plain_fill(conn, &n, &sys_errno);
        got += n;
        if (n > 0) {
            if (conn->cb && IO_CB(conn, on_data))
                IO_CB(conn, on_data)(conn, loop->recv_buf, n);
            /* Closed or paused by the callback: an EOF or error seen meanwhile is seen again
             * by the next read (both are sticky). */
            if (conn->state != CONN_OPEN || (conn->flags & CF_PAUSED))
                return got;
        }
        switch (end) {
        case READ_MORE: continue;
        case READ_DRAINED: return got;
        case READ_EOF: conn_peer_closed(conn); return got;
        case READ_WANTS_WRITE:
            conn->flags |= CF_READ_WANTS_WRITE;
            io_conn_update_events(conn);
            return got;
        case READ_IO_ERROR: io_conn_fail(conn, RILL_ERR_IO, "read", strerror(sys_errno)); return got;
        case READ_TLS_ERROR: io_conn_fail(conn, RILL_ERR_TLS, "TLS read", why); return got;
        }
    }
    /* Budget used up. Cleartext bytes left in the kernel re-trigger epoll; bytes OpenSSL or the
     * read-ahead already hold do not, so come back to them at the end of the turn. */
    if (conn->ssl && io_tls_has_input(conn)) {
        conn->flags |= CF_READ_AGAIN;
        io_conn_mark_dirty(conn);
    }
    return got;
}

void io_conn_read(rill_io_conn *conn)
{
    size_t got = read_rounds(conn);
    if (conn->state == CONN_OPEN)
        io_conn_batch_after_read(conn, got);
}

/* After on_close: wait for the peer's FIN (discarding its bytes) so that closing does not send a
 * reset that could destroy the last response in flight; but only for IO_LINGER_MAX_BYTES. */
static void conn_linger_read(rill_io_conn *conn)
{
    for (int round = 0; round < IO_READS_PER_TURN; round++) {
        size_t room = IO_LINGER_MAX_BYTES - conn->linger_read;
        if (room == 0) {
            io_conn_close_now(conn, 0); /* a peer that ignores our GOAWAY: reset it */
            return;
        }
        ssize_t n = recv(conn->fd, conn->loop->recv_buf, room < IO_RECV_BUF_SIZE ? room : IO_RECV_BUF_SIZE, 0);
        if (n > 0) {
            conn->linger_read += (uint32_t)n;
            continue;
        }
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
    bool reading = conn->state == CONN_OPEN && !(conn->flags & (CF_PAUSED | CF_PEER_EOF));
    if (reading && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        io_conn_read(conn);
        /* An SSL_write that wanted to read first can proceed now. */
        if (conn->ssl && conn->state == CONN_OPEN && (conn->queued || (conn->flags & CF_PULL)))
            io_conn_mark_dirty(conn);
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        /* Not reading, so nothing else would notice the socket died; these are level-triggered
         * and would spin. */
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (!soerr && !(events & EPOLLERR) && conn->state == CONN_OPEN &&
            (conn->flags & (CF_WR_SHUT_DONE | CF_PAUSED | CF_PEER_EOF)) ==
                (CF_WR_SHUT_DONE | CF_PAUSED)) {
            /* Our FIN and then the peer's while reading is paused: its last bytes (and its end)
             * wait in the socket until reading resumes; out of epoll meanwhile (EPOLLHUP cannot
             * be masked). */
            epoll_ctl(conn->loop->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
            conn->flags = (conn->flags & ~(uint32_t)(CF_EP_IN | CF_EP_OUT)) | CF_PARKED;
            return;
        }
        if (soerr == ECONNRESET)
            conn->flags |= CF_PEER_RESET;
        io_conn_close_now(conn, soerr && soerr != ECONNRESET && soerr != EPIPE ? RILL_ERR_IO : RILL_ERR_EOF);
        return;
    }
    io_conn_update_events(conn);
}

void io_conn_expire_pending(rill_io_loop *loop)
{
    while (!io_list_empty(&loop->pending)) {
        rill_io_conn *conn = IO_CONN_OF(loop->pending.next);
        if (conn->tnode.deadline > loop->now_ms)
            break;
        io_conn_fail(conn, RILL_ERR_TIMEOUT, conn->state == CONN_CONNECTING ? "connect" : "TLS handshake",
                  "timed out");
    }
    io_update_deadline_timers(loop);
}

void io_conn_expire_linger(rill_io_loop *loop)
{
    while (!io_list_empty(&loop->linger)) {
        rill_io_conn *conn = IO_CONN_OF(loop->linger.next);
        if (conn->tnode.deadline > loop->now_ms)
            break;
        /* A closing connection whose peer never took the data reports a timeout. */
        io_conn_close_now(conn, conn->state == CONN_CLOSING ? RILL_ERR_TIMEOUT : 0);
    }
    io_update_deadline_timers(loop);
}

void rill_io_conn_pause_read(rill_io_conn *conn, bool paused)
{
    if (paused) {
        conn->flags |= CF_PAUSED;
    } else if (conn->flags & CF_PAUSED) {
        conn->flags &= ~(uint32_t)CF_PAUSED;
        if (conn->flags & CF_PARKED) { /* back into epoll: level-triggered, what waits is seen */
            conn->flags &= ~(uint32_t)CF_PARKED;
            if (io_epoll_add(conn->loop, conn->fd, conn, 0) != RILL_OK) {
                io_conn_close_now(conn, RILL_ERR_IO);
                return;
            }
        }
        if (conn->ssl && conn->state == CONN_OPEN && io_tls_has_input(conn)) {
            conn->flags |= CF_READ_AGAIN;
            io_conn_mark_dirty(conn);
        }
    }
    io_conn_update_events(conn);
}

int rill_io_conn_set_callbacks(rill_io_conn *conn, const struct rill_io_conn_callbacks *cbs)
{
    if (cbs && !rill_struct_size_ok(cbs->size, sizeof *cbs))
        return RILL_ERR_INVALID_ARG;
    conn->cb = cbs;
    return RILL_OK;
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

int rill_io_conn_timer_arm_at(rill_io_conn *conn, uint64_t deadline_ms)
{
    if (conn->state != CONN_OPEN)
        return RILL_ERR_STATE; /* before open and after close the node serves the lists */
    return io_tnode_arm(conn->loop, &conn->tnode, deadline_ms);
}

void rill_io_conn_timer_cancel(rill_io_conn *conn)
{
    if (conn->state == CONN_OPEN)
        io_tnode_cancel(conn->loop, &conn->tnode);
}

bool rill_io_conn_timer_armed(const rill_io_conn *conn)
{
    return conn->state == CONN_OPEN && io_tnode_slot(&conn->tnode) != IO_TNODE_UNARMED;
}

uint64_t rill_io_conn_timer_deadline(const rill_io_conn *conn)
{
    return rill_io_conn_timer_armed(conn) ? conn->tnode.deadline : UINT64_MAX;
}

bool rill_io_conn_peer_reset(const rill_io_conn *conn)
{
    return (conn->flags & CF_PEER_RESET) != 0;
}
