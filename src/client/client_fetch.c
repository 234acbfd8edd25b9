/* rill_client_fetch: one request to completion on a loop of its own, on top of rill_client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "common/api_struct.h"

#define DEFAULT_MAX_BODY (256u << 20)
#define BODY_PIECE (64u << 10) /* body_fd is read this much at a time */

void rill_client_fetch_options_init(rill_client_fetch_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->out_fd = -1;
    opt->max_body = DEFAULT_MAX_BODY;
    opt->body_fd = -1;
}

struct fetch {
    rill_io_loop *loop;
    rill_client_fetch_options opt;
    rill_client_result *r;
    size_t cap;
    int err; /* our own failure (write, size), which ends the request early */
    bool done;
    int end_err;
    rill_client_stream *st;
    uint8_t *piece; /* body_fd: the read buffer */
    bool body_done;
    char length_field[24]; /* body_fd: its content-length value */
};

static void fail(struct fetch *f, int err, const char *fmt, const char *arg)
{
    if (f->err)
        return;
    f->err = err;
    snprintf(f->r->error, sizeof f->r->error, fmt, arg);
    rill_io_loop_stop(f->loop);
}

/* body_fd: reads and writes until the stream holds enough (on_drain calls again) or the end. */
static void body_pump(struct fetch *f)
{
    while (!f->body_done && !f->err) {
        ssize_t n = read(f->opt.body_fd, f->piece, BODY_PIECE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(f, RILL_ERR_IO, "cannot read the request body: %s", strerror(errno));
            rill_client_stream_cancel(f->st);
            return;
        }
        int rc;
        if (n == 0) {
            f->body_done = true;
            rc = rill_client_stream_end(f->st, NULL, 0);
        } else {
            rc = rill_client_stream_write(f->st, f->piece, (size_t)n);
        }
        if (rc == RILL_ERR_WOULD_BLOCK)
            return;
        if (rc < 0) {
            fail(f, rc, "the request body: %s",
                 rc == RILL_ERR_INVALID_ARG ? "its length changed while it was sent" : rill_strerror(rc));
            if (!f->body_done)
                rill_client_stream_cancel(f->st);
            return;
        }
    }
}

static void on_drain(rill_client_stream *st, void *user)
{
    body_pump(user);
}

static void on_response(rill_client_stream *st, int status, const rill_header *fields, size_t n,
                        void *user)
{
    struct fetch *f = user;
    rill_client_result *r = f->r;
    r->status = status;
    snprintf(r->protocol, sizeof r->protocol, "%s", rill_client_stream_protocol(st));
    /* One block: the array, then each name and value NUL-terminated. */
    size_t bytes = n * sizeof(rill_header);
    for (size_t i = 0; i < n; i++)
        bytes += fields[i].name_len + fields[i].value_len + 2;
    uint8_t *mem = malloc(bytes ? bytes : 1);
    if (!mem) {
        fail(f, RILL_ERR_NOMEM, "%s", "out of memory");
        return;
    }
    r->fields = (rill_header *)(void *)mem;
    uint8_t *p = mem + n * sizeof(rill_header);
    for (size_t i = 0; i < n; i++) {
        rill_header *h = &r->fields[i];
        memcpy(p, fields[i].name, fields[i].name_len);
        p[fields[i].name_len] = '\0';
        h->name = p;
        h->name_len = fields[i].name_len;
        p += h->name_len + 1;
        memcpy(p, fields[i].value, fields[i].value_len);
        p[fields[i].value_len] = '\0';
        h->value = p;
        h->value_len = fields[i].value_len;
        h->flags = 0;
        p += h->value_len + 1;
    }
    r->nfields = n;
}

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    struct fetch *f = user;
    rill_client_result *r = f->r;
    if (f->err)
        return;
    if (f->opt.out_fd >= 0) {
        for (size_t off = 0; off < len;) {
            ssize_t w = write(f->opt.out_fd, data + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fail(f, RILL_ERR_IO, "cannot write the body: %s", strerror(errno));
                return;
            }
            off += (size_t)w;
        }
        r->body_len += len;
        return;
    }
    if (f->opt.max_body && r->body_len + len > f->opt.max_body) {
        fail(f, RILL_ERR_TOO_BIG, "%s", "the body is larger than max_body");
        return;
    }
    if (r->body_len + len + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 16384;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            fail(f, RILL_ERR_NOMEM, "%s", "out of memory");
            return;
        }
        r->body = b;
        f->cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct fetch *f = user;
    f->done = true;
    f->end_err = err;
    if (err && !f->err)
        snprintf(f->r->error, sizeof f->r->error, "%s", why);
    rill_io_loop_shutdown(f->loop, 1000); /* HTTP/2: GOAWAY before the close */
}

/* A streamed request whose body is read from body_fd: a regular file's remaining size becomes its
 * content-length (held exactly by the client), anything else goes with an unknown length. */
static int start_body_fd(struct fetch *f, rill_client *c, const char *url,
                         const rill_client_callbacks *cb, rill_header **fields_out)
{
    const rill_client_fetch_options *o = &f->opt;
    bool has_length = false;
    for (size_t i = 0; i < o->nfields; i++)
        has_length |= o->fields[i].name_len == 14 &&
                      strncasecmp((const char *)o->fields[i].name, "content-length", 14) == 0;
    struct stat sb;
    off_t pos = lseek(o->body_fd, 0, SEEK_CUR);
    bool known = !has_length && fstat(o->body_fd, &sb) == 0 && S_ISREG(sb.st_mode) && pos >= 0 &&
                 sb.st_size >= pos;
    rill_header *fields = malloc((o->nfields + 1) * sizeof *fields);
    f->piece = malloc(BODY_PIECE);
    if (!fields || !f->piece) {
        free(fields);
        return RILL_ERR_NOMEM;
    }
    if (o->nfields)
        memcpy(fields, o->fields, o->nfields * sizeof *fields);
    size_t n = o->nfields;
    if (known) {
        snprintf(f->length_field, sizeof f->length_field, "%lld", (long long)(sb.st_size - pos));
        fields[n++] = (rill_header){(const uint8_t *)"content-length", 14,
                                    (const uint8_t *)f->length_field, strlen(f->length_field), 0};
    }
    *fields_out = fields;
    int rc = rill_client_request_stream(c, o->method ? o->method : "POST", url, fields, n, cb, f,
                                        &f->st);
    if (rc == RILL_OK)
        body_pump(f);
    return rc;
}

int rill_client_fetch(const char *url, const rill_client_fetch_options *opt,
                      rill_client_result *result)
{
    if (!result)
        return RILL_ERR_INVALID_ARG;
    memset(result, 0, sizeof *result);
    struct fetch f = {.r = result};
    rill_client_fetch_options_init(&f.opt);
    if (!url || (opt && rill_struct_copy(&f.opt, sizeof f.opt, opt) != RILL_OK)) {
        snprintf(result->error, sizeof result->error, "bad arguments or options (their size field)");
        return RILL_ERR_INVALID_ARG;
    }
    rill_client_options co;
    rill_client_options_init(&co);
    if (f.opt.client && rill_struct_copy(&co, sizeof co, f.opt.client) != RILL_OK) {
        snprintf(result->error, sizeof result->error, "bad client options (their size field)");
        return RILL_ERR_INVALID_ARG;
    }
    co.url = url;
    rill_io_loop_options lo;
    rill_io_loop_options_init(&lo);
    lo.max_conns = 4;
    if (co.connect_timeout_ms) /* the loop's own connect deadline must not cut ours short */
        lo.handshake_timeout_ms = co.connect_timeout_ms + 1000;
    int rc = rill_io_loop_new(&lo, &f.loop);
    if (rc < 0) {
        snprintf(result->error, sizeof result->error, "cannot create an event loop");
        return rc;
    }
    rill_client *c = NULL;
    rc = rill_client_new(f.loop, &co, &c, result->error, sizeof result->error);
    static const rill_client_callbacks cb = {.size = sizeof cb, .on_response = on_response,
                                             .on_data = on_data, .on_end = on_end,
                                             .on_drain = on_drain};
    rill_header *fields = NULL;
    if (rc == RILL_OK && f.opt.body_fd >= 0) {
        rc = start_body_fd(&f, c, url, &cb, &fields);
    } else if (rc == RILL_OK) {
        rc = rill_client_request(c, f.opt.method ? f.opt.method : "GET", url, f.opt.fields,
                                 f.opt.nfields, f.opt.body, f.opt.body_len, &cb, &f, NULL);
    }
    if (rc == RILL_OK) {
        rill_io_loop_run(f.loop);
        rc = f.err ? f.err : f.done ? f.end_err : RILL_ERR_STATE;
    } else if (!result->error[0]) {
        snprintf(result->error, sizeof result->error, "cannot start the request: %s", rill_strerror(rc));
    }
    rill_client_free(c);
    rill_io_loop_free(f.loop);
    free(fields);
    free(f.piece);
    return rc;
}

void rill_client_result_free(rill_client_result *result)
{
    if (!result)
        return;
    free(result->fields);
    free(result->body);
    memset(result, 0, sizeof *result);
}
