/* `rill get`'s ordered output: several transfers (URLs, -n repeats) run at once but each
 * destination receives their bytes in the order of the command line. */
#include <errno.h>
#include <stdbool.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli/get.h"

bool get_sink_add(struct get_sink *s, struct get_part *p)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct get_part **o = realloc(s->order, cap * sizeof *o);
        if (!o)
            return false;
        s->order = o;
        s->cap = cap;
    }
    s->order[s->n++] = p;
    p->sink = s;
    return true;
}

/* Small bodies reach a file or a pipe in 64 KiB writes, not one per response (10,000 small
 * responses were 10,000 write calls); large pieces go straight (put); a terminal gets each
 * response as it ends. */
#define SINK_BUFFER (64u * 1024)

bool get_sink_open(struct get_sink *s)
{
    static bool stdout_set;
    if (s->err)
        return false;
    if (s->f)
        return true;
    if (!s->path) {
        s->f = stdout;
        s->interactive = isatty(STDOUT_FILENO);
        static char stdout_buf[SINK_BUFFER]; /* glibc ignores the size without a buffer */
        if (!stdout_set && !s->interactive) /* before anything is written to it */
            setvbuf(stdout, stdout_buf, _IOFBF, SINK_BUFFER);
        stdout_set = true;
        return true;
    }
    if (!(s->f = fopen(s->path, "wb"))) {
        s->err = errno;
        return false;
    }
    s->interactive = isatty(fileno(s->f));
    if (!s->interactive && (s->buf = malloc(SINK_BUFFER)) != NULL)
        setvbuf(s->f, s->buf, _IOFBF, SINK_BUFFER);
    return true;
}

/* A DATA frame's worth goes to the descriptor at once: through the FILE's buffer it would be
 * copied once more in user space (a download's bodies arrive in 16 KiB frames, and that copy was
 * 5% of `rill get`'s CPU for a large file to /dev/null). Anything buffered goes first. */
#define DIRECT_WRITE (8u * 1024)

static bool write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* writev until all of it is out (a pipe or a full disk may take part). */
static bool writev_all(int fd, struct iovec *v, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, v, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return true;
}

/* What the FILE holds goes out before a direct write (fflush takes the FILE's lock even when
 * there is nothing: asked first). */
static bool flush_buffered(struct get_sink *s)
{
    return __fpending(s->f) == 0 || fflush(s->f) == 0;
}

static bool put(struct get_sink *s, const void *data, size_t len)
{
    if (!get_sink_open(s))
        return false;
    bool ok;
    if (len >= DIRECT_WRITE && !s->interactive)
        ok = flush_buffered(s) && write_all(fileno(s->f), data, len);
    else
        ok = fwrite(data, 1, len, s->f) == len;
    if (!ok) {
        s->err = errno ? errno : EIO;
        return false;
    }
    return true;
}

static bool hold(struct get_part *p, const void *data, size_t len)
{
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 65536;
        while (cap < p->len + len)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) {
            p->sink->err = ENOMEM;
            return false;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return true;
}

bool get_part_write(struct get_part *p, const void *data, size_t len)
{
    struct get_sink *s = p->sink;
    if (s->err)
        return false;
    if (!len)
        return true;
    if (s->next < s->n && s->order[s->next] == p)
        return put(s, data, len);
    return hold(p, data, len);
}

bool get_part_writev(struct get_part *p, const struct iovec *pieces, int n)
{
    struct get_sink *s = p->sink;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += pieces[i].iov_len;
    bool direct = !s->err && total >= DIRECT_WRITE && !s->interactive && s->next < s->n &&
                  s->order[s->next] == p && n <= 64;
    if (!direct) {
        for (int i = 0; i < n; i++)
            if (!get_part_write(p, pieces[i].iov_base, pieces[i].iov_len))
                return false;
        return true;
    }
    if (!get_sink_open(s))
        return false;
    struct iovec v[64];
    memcpy(v, pieces, (size_t)n * sizeof *v);
    if (flush_buffered(s) && writev_all(fileno(s->f), v, n))
        return true;
    s->err = errno ? errno : EIO;
    return false;
}

bool get_part_done(struct get_part *p)
{
    struct get_sink *s = p->sink;
    p->done = true;
    while (s->next < s->n && s->order[s->next]->done) {
        if (++s->next < s->n) {
            struct get_part *q = s->order[s->next];
            if (q->len && !s->err)
                put(s, q->buf, q->len);
            free(q->buf);
            q->buf = NULL;
            q->len = q->cap = 0;
        }
    }
    /* Written out when the last part is done (a write error is still reported, then), or at
     * once on a terminal. */
    if (s->f && !s->err && (s->interactive || s->next == s->n) && fflush(s->f) != 0)
        s->err = errno ? errno : EIO;
    if (s->next == s->n && s->path && s->f) {
        if (fclose(s->f) != 0 && !s->err)
            s->err = errno ? errno : EIO;
        s->f = NULL;
        free(s->buf);
        s->buf = NULL;
    }
    return !s->err;
}

void get_sink_free(struct get_sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->order[i]->buf);
        s->order[i]->buf = NULL;
    }
    free(s->order);
    s->order = NULL;
    if (s->path && s->f)
        fclose(s->f);
    else if (s->f)
        fflush(s->f);
    s->f = NULL;
    free(s->buf); /* after the close that last used it */
    s->buf = NULL;
}
