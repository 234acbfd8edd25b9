/* The socket BIO under a connection's TLS state. Like OpenSSL's own socket BIO, plus one fact
 * OpenSSL does not keep: whether the last read came back short, i.e. the kernel buffer is empty.
 * Then the read loop can stop without one more read() that would only say EAGAIN
 * (level-triggered epoll reports anything that arrives later). */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "io/io_internal.h"

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int conn_bio_read(BIO *b, char *buf, int len)
{
    rill_io_conn *conn = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = recv(conn->fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        if (n < len)
            conn->flags |= CF_SOCK_DRAINED;
        return (int)n;
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
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = send(conn->fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
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
    if (m && BIO_meth_set_read(m, conn_bio_read) && BIO_meth_set_write(m, conn_bio_write) &&
        BIO_meth_set_ctrl(m, conn_bio_ctrl) && BIO_meth_set_create(m, conn_bio_create))
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
