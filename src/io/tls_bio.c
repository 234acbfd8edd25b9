/* The socket BIO under a connection's TLS state. Like OpenSSL's own socket BIO, plus two things:
 * - whether the last read came back short, i.e. the kernel buffer is empty: then the read loop
 *   can stop without one more read() that would only say EAGAIN (level-triggered epoll reports
 *   anything that arrives later);
 * - write batching: while the loop flushes a connection, its records gather in the loop's batch
 *   buffer and go out with one send per 64 KiB instead of one per 16 KiB record. Bytes the socket
 *   refuses move to a per-connection tail (allocated only then), sent before anything else. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "io/io_internal.h"

static BIO_METHOD *method;
static int tail_index = -1; /* SSL ex_data slot of a connection's tail */
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

struct tls_tail {
    size_t len, off;
    uint8_t data[];
};

static struct tls_tail *tail_of(const rill_io_conn *conn)
{
    return conn->flags & CF_TLS_TAIL ? SSL_get_ex_data(conn->ssl, tail_index) : NULL;
}

static ssize_t send_some(rill_io_conn *conn, const uint8_t *p, size_t n)
{
    ssize_t r;
    do
        r = send(conn->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    return r;
}

int io_tls_flush_tail(rill_io_conn *conn)
{
    struct tls_tail *t = tail_of(conn);
    while (t && t->off < t->len) {
        ssize_t r = send_some(conn, t->data + t->off, t->len - t->off);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? RILL_ERR_WOULD_BLOCK : RILL_ERR_IO;
        t->off += (size_t)r;
    }
    if (t) {
        SSL_set_ex_data(conn->ssl, tail_index, NULL);
        free(t);
        conn->flags &= ~(uint32_t)CF_TLS_TAIL;
    }
    return RILL_OK;
}

/* Sends the batch; what the socket does not take becomes the tail. */
static int batch_send(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    size_t done = 0, len = loop->tls_batch_len;
    int rc = RILL_OK;
    while (done < len) {
        ssize_t r = send_some(conn, loop->tls_batch + done, len - done);
        if (r < 0) {
            rc = errno == EAGAIN || errno == EWOULDBLOCK ? RILL_ERR_WOULD_BLOCK : RILL_ERR_IO;
            break;
        }
        done += (size_t)r;
    }
    loop->tls_batch_len = 0;
    if (rc != RILL_ERR_WOULD_BLOCK)
        return rc;
    struct tls_tail *t = malloc(sizeof *t + (len - done));
    if (!t) {
        errno = ENOMEM;
        return RILL_ERR_IO;
    }
    *t = (struct tls_tail){.len = len - done};
    memcpy(t->data, loop->tls_batch + done, len - done);
    if (!SSL_set_ex_data(conn->ssl, tail_index, t)) {
        free(t);
        errno = ENOMEM;
        return RILL_ERR_IO;
    }
    conn->flags |= CF_TLS_TAIL;
    return RILL_ERR_WOULD_BLOCK;
}

void io_tls_batch_begin(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    if (!loop->tls_batch && !(loop->tls_batch = malloc(IO_TLS_BATCH)))
        return; /* no batching: records go one by one */
    loop->tls_batch_conn = conn;
    loop->tls_batch_len = 0;
}

int io_tls_batch_end(rill_io_conn *conn)
{
    rill_io_loop *loop = conn->loop;
    if (loop->tls_batch_conn != conn)
        return RILL_OK;
    loop->tls_batch_conn = NULL;
    return loop->tls_batch_len ? batch_send(conn) : RILL_OK;
}

void io_tls_free(rill_io_conn *conn)
{
    if (!conn->ssl)
        return;
    if (conn->loop->tls_batch_conn == conn)
        conn->loop->tls_batch_conn = NULL;
    if (conn->loop->tls_in_conn == conn) /* its read-ahead, unread */
        conn->loop->tls_in_conn = NULL;
    free(tail_of(conn));
    conn->flags &= ~(uint32_t)CF_TLS_TAIL;
    SSL_free(conn->ssl);
    conn->ssl = NULL;
}

/* Ciphertext of a batching connection (read_batch.c): one recv of IO_BATCH_READ into the loop's
 * tls_in, handed to OpenSSL from there, instead of a recv (and the ACK it sends) per 16 KiB
 * record. OpenSSL's own buffer cannot simply grow: OpenSSL 3.0 moves what it holds to the
 * buffer's start before every record, so a 256 KiB buffer cost more than the recvs it saved.
 * tls_in belongs to one connection until it is empty; others read the socket meanwhile. */
static bool stage_in(rill_io_conn *conn, ssize_t *got)
{
    rill_io_loop *loop = conn->loop;
    if (!loop->tls_in && !(loop->tls_in = malloc(IO_BATCH_READ)))
        return false;
    ssize_t n;
    do
        n = recv(conn->fd, loop->tls_in, IO_BATCH_READ, 0);
    while (n < 0 && errno == EINTR);
    *got = n;
    if (n > 0) {
        loop->tls_in_conn = conn;
        loop->tls_in_off = 0;
        loop->tls_in_len = (uint32_t)n;
        if ((size_t)n < IO_BATCH_READ)
            conn->flags |= CF_SOCK_DRAINED;
    }
    return true;
}

static int take_staged(rill_io_loop *loop, char *buf, int len)
{
    uint32_t n = loop->tls_in_len - loop->tls_in_off;
    if ((uint32_t)len < n)
        n = (uint32_t)len;
    memcpy(buf, loop->tls_in + loop->tls_in_off, n);
    loop->tls_in_off += n;
    if (loop->tls_in_off == loop->tls_in_len)
        loop->tls_in_conn = NULL;
    return (int)n;
}

bool io_tls_has_input(const rill_io_conn *conn)
{
    return SSL_has_pending(conn->ssl) || conn->loop->tls_in_conn == conn;
}

static int conn_bio_read(BIO *b, char *buf, int len)
{
    rill_io_conn *conn = BIO_get_data(b);
    rill_io_loop *loop = conn->loop;
    BIO_clear_retry_flags(b);
    if (loop->tls_in_conn == conn)
        return take_staged(loop, buf, len);
    ssize_t n;
    if ((conn->flags & CF_BATCHED) && !loop->tls_in_conn && stage_in(conn, &n)) {
        if (n > 0)
            return take_staged(loop, buf, len);
    } else {
        do
            n = recv(conn->fd, buf, (size_t)len, 0);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            if (n < len)
                conn->flags |= CF_SOCK_DRAINED;
            return (int)n;
        }
    }
    if (n == 0) { /* OpenSSL asks BIO_CTRL_EOF to tell a peer's FIN from an error */
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn->flags |= CF_SOCK_DRAINED;
        BIO_set_retry_read(b);
    }
    return -1;
}

static int conn_bio_write(BIO *b, const char *buf, int len)
{
    rill_io_conn *conn = BIO_get_data(b);
    rill_io_loop *loop = conn->loop;
    BIO_clear_retry_flags(b);
    int rc = io_tls_flush_tail(conn); /* refused bytes go first */
    if (rc == RILL_OK && loop->tls_batch_conn == conn) {
        if (loop->tls_batch_len + (size_t)len > IO_TLS_BATCH)
            rc = batch_send(conn);
        if (rc == RILL_OK && (size_t)len <= IO_TLS_BATCH) {
            memcpy(loop->tls_batch + loop->tls_batch_len, buf, (size_t)len);
            loop->tls_batch_len += (size_t)len;
            return len;
        }
    }
    if (rc == RILL_ERR_WOULD_BLOCK) {
        BIO_set_retry_write(b);
        return -1;
    }
    if (rc != RILL_OK)
        return -1; /* errno says why */
    ssize_t n = send_some(conn, (const uint8_t *)buf, (size_t)len);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    return -1;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1; /* writes are not buffered here */
    case BIO_CTRL_EOF: return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default: return 0;
    }
}

static int conn_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rill connection");
    tail_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (m && tail_index >= 0 && BIO_meth_set_read(m, conn_bio_read) &&
        BIO_meth_set_write(m, conn_bio_write) && BIO_meth_set_ctrl(m, conn_bio_ctrl) &&
        BIO_meth_set_create(m, conn_bio_create))
        method = m;
    else
        BIO_meth_free(m);
}

int io_tls_attach(rill_io_conn *conn)
{
    pthread_once(&method_once, make_method);
    BIO *b = method ? BIO_new(method) : NULL;
    if (!b)
        return RILL_ERR_NOMEM;
    BIO_set_data(b, conn);
    SSL_set_bio(conn->ssl, b, b); /* the SSL owns it (one reference for both directions) */
    return RILL_OK;
}
