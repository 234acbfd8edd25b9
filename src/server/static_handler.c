/* Static files under a route prefix: GET/HEAD, ETag/Last-Modified with conditional requests,
 * single byte ranges, precompressed .br/.gz siblings. Bodies stream from the file in pieces sized
 * by flow control (HTTP/2) or the socket (HTTP/1.1), never read whole into memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/conditional.h"
#include "server/file_cache.h"
#include "server/http_date.h"
#include "server/range.h"
#include "server/server_internal.h"
#include "server/static_files.h"

struct static_mount {
    struct static_mount *next;
    rill_static_root *root;
    size_t prefix_len; /* without a trailing '/' */
};

static struct rill_span header_span(const rill_request *req, const char *name)
{
    size_t len = 0;
    const char *v = rill_request_header(req, name, &len);
    return (struct rill_span){v, len};
}

static void release_entry(void *arg)
{
    file_entry_release(arg);
}

static void serve_static(rill_request *req, rill_response *res, void *user)
{
    struct static_mount *m = user;
    const char *method = rill_request_method(req);
    if (strcmp(method, "HEAD") != 0 && strcmp(method, "GET") != 0) {
        rill_response_set_header(res, "allow", "GET, HEAD");
        exchange_respond_simple(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
        return;
    }
    const char *path = rill_request_path(req) + m->prefix_len;
    size_t ae_len = 0;
    const char *ae = rill_request_header(req, "accept-encoding", &ae_len);
    uint64_t now = rill_io_loop_now_ms(session_worker(req->sess)->loop);
    struct file_entry *e = file_cache_get(m->root, path, strlen(path), ae, ae_len, now);
    if (!e) {
        exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    /* The entry (and its descriptor or content) lives until the exchange is freed. */
    res->release = release_entry;
    res->release_arg = e;
    switch (e->status) {
    case RILL_STATIC_OK:
        break;
    case RILL_STATIC_BAD_REQUEST:
        exchange_respond_simple(res, 400, "text/plain; charset=utf-8", "bad request\n");
        return;
    case RILL_STATIC_FORBIDDEN:
        exchange_respond_simple(res, 403, "text/plain; charset=utf-8", "forbidden\n");
        return;
    case RILL_STATIC_NOT_FOUND:
        exchange_respond_simple(res, 404, "text/plain; charset=utf-8", "not found\n");
        return;
    case RILL_STATIC_REDIRECT_DIR: {
        /* From the normalised path, never the raw one: "//host/.." must not become "//host/../". */
        char *loc = rill_static_redirect_location(rill_request_path(req), m->prefix_len, path,
                                                  strlen(path));
        if (!loc) {
            exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
            return;
        }
        rill_response_set_header(res, "location", loc);
        free(loc);
        exchange_respond_simple(res, 301, "text/plain; charset=utf-8", "moved\n");
        return;
    }
    }

    const struct rill_static_file *f = &e->file;
    struct rill_validators v = {.etag = e->etag, .etag_len = e->etag_len,
                                .last_modified = (time_t)f->mtime_sec};
    rill_response_add_header(res, "etag", e->etag);
    rill_response_add_header(res, "last-modified", e->last_modified);
    if (f->has_encoded_variants)
        rill_response_add_header(res, "vary", "accept-encoding");

    struct rill_conditions c = {
        .if_match = header_span(req, "if-match"),
        .if_none_match = header_span(req, "if-none-match"),
        .if_modified_since = header_span(req, "if-modified-since"),
        .if_unmodified_since = header_span(req, "if-unmodified-since"),
        .if_range = header_span(req, "if-range"),
        .get_or_head = true,
    };
    enum rill_precondition pre = rill_evaluate_preconditions(&c, &v);
    if (pre != RILL_PRECONDITION_PROCEED) {
        exchange_respond_simple(res, pre == RILL_PRECONDITION_NOT_MODIFIED ? 304 : 412, NULL, NULL);
        return;
    }

    rill_response_add_header(res, "content-type", f->content_type);
    if (f->content_encoding)
        rill_response_add_header(res, "content-encoding", f->content_encoding);
    rill_response_add_header(res, "accept-ranges", "bytes");
    uint64_t first = 0, length = f->size;
    char num[64];
    struct rill_span range = header_span(req, "range");
    if (range.ptr && rill_if_range_allows(c.if_range, &v)) {
        struct rill_byte_range r;
        switch (rill_range_parse(range.ptr, range.len, f->size, &r)) {
        case RILL_RANGE_SATISFIABLE:
            first = r.first;
            length = r.length;
            snprintf(num, sizeof num, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
                     first + length - 1, f->size);
            rill_response_add_header(res, "content-range", num);
            rill_response_set_status(res, 206);
            break;
        case RILL_RANGE_UNSATISFIABLE:
            snprintf(num, sizeof num, "bytes */%" PRIu64, f->size);
            rill_response_add_header(res, "content-range", num);
            exchange_respond_simple(res, 416, "text/plain; charset=utf-8", "range not satisfiable\n");
            return;
        case RILL_RANGE_IGNORE:
            break;
        }
    }
    if (e->content) { /* small file: straight from memory */
        rill_response_end(res, e->content + first, (size_t)length);
        return;
    }
    snprintf(num, sizeof num, "%" PRIu64, length);
    rill_response_add_header(res, "content-length", num);
    /* a HEAD response keeps content-length; the exchange drops its body */
    exchange_send_file(res, f->fd, first, length);
}

int rill_server_static(rill_server *s, const char *prefix, const char *dir, char *err, size_t errlen)
{
    int e = 0;
    rill_static_root *root = rill_static_root_open(dir, &e);
    if (!root) {
        snprintf(err, errlen, "cannot open document root %s: %s", dir, strerror(e));
        return RILL_ERR_IO;
    }
    struct static_mount *m = calloc(1, sizeof *m);
    if (!m) {
        rill_static_root_close(root);
        return RILL_ERR_NOMEM;
    }
    m->root = root;
    m->prefix_len = strlen(prefix);
    while (m->prefix_len > 0 && prefix[m->prefix_len - 1] == '/')
        m->prefix_len--;
    m->next = s->static_roots;
    s->static_roots = m;
    return rill_server_route(s, prefix, serve_static, m);
}

void static_mounts_free(rill_server *s)
{
    struct static_mount *m = s->static_roots;
    while (m) {
        struct static_mount *next = m->next;
        rill_static_root_close(m->root);
        free(m);
        m = next;
    }
    s->static_roots = NULL;
}
