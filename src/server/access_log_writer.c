/* Access log lines are gathered per worker thread and written when the buffer is full or a short
 * moment after the first line, not with a write(2) per request. With O_APPEND each write holds
 * whole lines, so lines from different workers never interleave. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/access_log.h"
#include "server/server_internal.h"

#define LOG_BUF_SIZE 16384
#define LOG_FLUSH_MS 100 /* how stale a line may get before it reaches the file */
#define LOG_LINE_MAX 2048

struct log_buffer {
    int fd;
    size_t len;
    rill_io_timer *timer;
    char data[LOG_BUF_SIZE];
};

static _Thread_local struct log_buffer *buffer;

static void flush(struct log_buffer *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(b->fd, b->data + off, b->len - off);
        if (n <= 0)
            break; /* nowhere to report a failing log: the requests were answered */
        off += (size_t)n;
    }
    b->len = 0;
}

static void on_flush_timer(rill_io_timer *t, void *arg)
{
    (void)t;
    flush(arg);
}

void access_log_append(rill_server_session *sess, const struct rill_access_log_entry *e)
{
    struct worker *w = session_worker(sess);
    int fd = w->srv->access_log_fd;
    if (fd < 0)
        return;
    struct log_buffer *b = buffer;
    if (!b) {
        b = buffer = calloc(1, sizeof *b);
        if (!b || !(b->timer = rill_io_timer_new(w->loop, on_flush_timer, b))) {
            free(b);
            buffer = NULL;
            rill_access_log_write(fd, e); /* unbuffered, rather than lost */
            return;
        }
        b->fd = fd;
    }
    if (b->fd != fd || LOG_BUF_SIZE - b->len < LOG_LINE_MAX) {
        flush(b);
        b->fd = fd;
    }
    b->len += rill_access_log_format(b->data + b->len, LOG_LINE_MAX, e);
    if (!rill_io_timer_armed(b->timer))
        rill_io_timer_arm(b->timer, LOG_FLUSH_MS);
}

void access_log_flush_thread(void)
{
    struct log_buffer *b = buffer;
    if (!b)
        return;
    flush(b);
    rill_io_timer_free(b->timer);
    free(b);
    buffer = NULL;
}
