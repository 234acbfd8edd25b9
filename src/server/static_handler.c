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

static void keep_first(struct rill_span *slot, const rill_header *h)
{
    if (!slot->ptr)
        *slot = (struct rill_span){(const char *)h->value, h->value_len};
}

static bool name_is(const rill_header *h, const char *lit, size_t len)
{
    return h->name_len == len && memcmp(h->name, lit, len) == 0;
}

/* The conditional fields and Range in one pass over the request (names are lowercase). */
static void find_conditions(const rill_server_request *req, struct rill_conditions *c,
                            struct rill_span *range)
{
    size_t n = rill_server_request_header_count(req);
    for (size_t i = 0; i < n; i++) {
        const rill_header *h = rill_server_request_header_at(req, i);
        if (name_is(h, "range", 5))
            keep_first(range, h);
        else if (h->name_len < 8 || memcmp(h->name, "if-", 3) != 0)
            continue;
        else if (name_is(h, "if-match", 8))
            keep_first(&c->if_match, h);
        else if (name_is(h, "if-none-match", 13))
            keep_first(&c->if_none_match, h);
        else if (name_is(h, "if-modified-since", 17))
            keep_first(&c->if_modified_since, h);
        else if (name_is(h, "if-unmodified-since", 19))
            keep_first(&c->if_unmodified_since, h);
        else if (name_is(h, "if-range", 8))
            keep_first(&c->if_range, h);
    }
}

static void release_entry(void *arg)
{
    file_entry_release(arg);
}

/* The server's own fields, formatted here: added without the public API's checks, and not
 * copied: they are literals or the entry's, which the exchange holds until it is freed. */
static void add_validators(rill_server_response *res, const struct file_entry *e)
{
    exchange_add_field_ref(res, "etag", 4, e->etag, e->etag_len);
    exchange_add_field_ref(res, "last-modified", 13, e->last_modified, RILL_HTTP_DATE_LEN);
    if (e->file.has_encoded_variants)
        exchange_add_field_ref(res, "vary", 4, "accept-encoding", 15);
}

/* A 200's fields from the entry (before content-length, Date and Server). */
static void add_entry_fields(rill_server_response *res, void *arg)
{
    const struct file_entry *e = arg;
    const struct rill_static_file *f = &e->file;
    add_validators(res, e);
    exchange_add_field_ref(res, "content-type", 12, f->content_type, f->content_type_len);
    if (f->content_encoding)
        exchange_add_field_ref(res, "content-encoding", 16, f->content_encoding, strlen(f->content_encoding));
    exchange_add_field_ref(res, "accept-ranges", 13, "bytes", 5);
}

static void serve_static(rill_server_request *req, rill_server_response *res, void *user)
{
    struct static_mount *m = user;
    const char *method = rill_server_request_method(req);
    bool get = method[0] == 'G' && method[1] == 'E' && method[2] == 'T' && method[3] == '\0';
    if (!get && !req->head_request) {
        rill_server_response_set_header(res, "allow", "GET, HEAD");
        exchange_respond_simple(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
        return;
    }
    const char *path = rill_server_request_path(req) + m->prefix_len;
    size_t ae_len = 0;
    const char *ae = rill_server_request_header(req, "accept-encoding", &ae_len);
    uint64_t now = rill_io_loop_now_ms(session_worker(req->sess)->loop);
    /* The route matched the mount's prefix within the path's part before any query. */
    size_t path_len = req->route_len >= m->prefix_len ? req->route_len - m->prefix_len : strcspn(path, "?");
    struct file_entry *e = file_cache_get(m->root, path, path_len, ae, ae_len, now);
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
        char *loc = rill_static_redirect_location(rill_server_request_path(req), m->prefix_len, path,
                                                  strlen(path));
        if (!loc) {
            exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
            return;
        }
        rill_server_response_set_header(res, "location", loc);
        free(loc);
        exchange_respond_simple(res, 301, "text/plain; charset=utf-8", "moved\n");
        return;
    }
    }

    const struct rill_static_file *f = &e->file;
    struct rill_validators v = {.etag = e->etag, .etag_len = e->etag_len,
                                .last_modified = (time_t)f->mtime_sec};
    struct rill_conditions c = {.get_or_head = true};
    struct rill_span range = {NULL, 0};
    find_conditions(req, &c, &range);
    enum rill_precondition pre = rill_evaluate_preconditions(&c, &v);
    if (pre != RILL_PRECONDITION_PROCEED) {
        add_validators(res, e);
        exchange_respond_simple(res, pre == RILL_PRECONDITION_NOT_MODIFIED ? 304 : 412, NULL, NULL);
        return;
    }
    if (e->content && !range.ptr) { /* the whole file from memory: its fields are the entry's alone */
        exchange_end_named(res, e->serial, add_entry_fields, e, e->content, (size_t)f->size);
        return;
    }
    add_entry_fields(res, e);
    uint64_t first = 0, length = f->size;
    char num[64];
    int n;
    if (range.ptr && rill_if_range_allows(c.if_range, &v)) {
        struct rill_byte_range r;
        switch (rill_range_parse(range.ptr, range.len, f->size, &r)) {
        case RILL_RANGE_SATISFIABLE:
            first = r.first;
            length = r.length;
            n = snprintf(num, sizeof num, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
                         first + length - 1, f->size);
            exchange_add_field(res, "content-range", 13, num, (size_t)n);
            rill_server_response_set_status(res, 206);
            break;
        case RILL_RANGE_UNSATISFIABLE:
            n = snprintf(num, sizeof num, "bytes */%" PRIu64, f->size);
            exchange_add_field(res, "content-range", 13, num, (size_t)n);
            exchange_respond_simple(res, 416, "text/plain; charset=utf-8", "range not satisfiable\n");
            return;
        case RILL_RANGE_IGNORE:
            break;
        }
    }
    if (e->content) { /* small file: straight from memory */
        rill_server_response_end(res, e->content + first, (size_t)length);
        return;
    }
    n = snprintf(num, sizeof num, "%" PRIu64, length);
    exchange_add_field(res, "content-length", 14, num, (size_t)n);
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
