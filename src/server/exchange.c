/* The request/response API shared by HTTP/1.1 and HTTP/2: request storage, routing, response
 * state; the transport does the framing through exchange_ops. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http_chars.h"
#include "server/access_log.h"
#include "server/http_date.h"
#include "server/server_internal.h"

/* Freed exchanges are kept per thread (each worker frees the exchanges it made), bounded. */
#define EXCHANGE_POOL_MAX 1024u

struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    _Alignas(16) char data[];
};

static _Thread_local rill_stream *pool;
static _Thread_local unsigned pool_len;

void exchange_pool_clear(void)
{
    while (pool) {
        rill_stream *st = pool;
        pool = st->pool_next;
        free(st);
    }
    pool_len = 0;
}

rill_stream *exchange_new(rill_session *sess, const struct exchange_ops *ops, int32_t id)
{
    rill_stream *st = pool;
    if (st) {
        pool = st->pool_next;
        pool_len--;
    } else if (!(st = malloc(sizeof *st + EXCHANGE_ARENA))) {
        return NULL;
    }
    memset(st, 0, sizeof *st); /* the arena needs no clearing */
    if (!sess->peer)
        session_peer(sess); /* now, while the peer is surely connected (kept for logs and callers) */
    st->sess = sess;
    st->ops = ops;
    st->id = id;
    st->status = 200;
    st->file_fd = -1;
    st->live_next = sess->live;
    if (sess->live)
        sess->live->live_prev = st;
    sess->live = st;
    sess->open_streams++;
    atomic_fetch_add_explicit(&session_worker(sess)->stats.streams, 1, memory_order_relaxed);
    return st;
}

static void exchange_free(rill_stream *st)
{
    for (struct arena_block *b = st->arena_more; b;) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    if (pool_len < EXCHANGE_POOL_MAX) {
        st->pool_next = pool;
        pool = st;
        pool_len++;
        return;
    }
    free(st);
}

void *exchange_alloc(rill_stream *st, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (EXCHANGE_ARENA - st->arena_used >= n) {
        void *p = st->arena + st->arena_used;
        st->arena_used += n;
        return p;
    }
    struct arena_block *b = st->arena_more;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = st->arena_more;
        st->arena_more = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static bool is_pseudo(const rill_header *h)
{
    return h->name_len > 0 && h->name[0] == ':';
}

static bool name_is(const rill_header *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && memcmp(h->name, lit, n) == 0;
}

/* All strings go into one arena: the header array first, then NUL-terminated names and values. */
int exchange_set_request(rill_stream *st, const rill_header *fields, size_t n, const char *version)
{
    size_t bytes = n * sizeof(rill_header);
    for (size_t i = 0; i < n; i++)
        bytes += fields[i].name_len + fields[i].value_len + 2;
    rill_header *all = exchange_alloc(st, bytes ? bytes : 1);
    if (!all)
        return RILL_ERR_NOMEM;
    st->all_fields = all;
    char *p = (char *)(all + n);
    size_t npseudo = 0;
    for (size_t i = 0; i < n; i++) {
        all[i] = fields[i];
        char *name = p;
        for (size_t k = 0; k < fields[i].name_len; k++)
            name[k] = (char)tolower((unsigned char)fields[i].name[k]);
        name[fields[i].name_len] = '\0';
        p += fields[i].name_len + 1;
        memcpy(p, fields[i].value, fields[i].value_len);
        p[fields[i].value_len] = '\0';
        all[i].name = (const uint8_t *)name;
        all[i].value = (const uint8_t *)p;
        p += fields[i].value_len + 1;
        if (is_pseudo(&all[i])) {
            npseudo = i + 1;
            const char *v = (const char *)all[i].value;
            if (name_is(&all[i], ":method"))
                st->method = v;
            else if (name_is(&all[i], ":scheme"))
                st->scheme = v;
            else if (name_is(&all[i], ":authority"))
                st->authority = v;
            else if (name_is(&all[i], ":path"))
                st->path = v;
            else if (name_is(&all[i], ":protocol"))
                st->connect_protocol = v;
        }
    }
    st->fields = all + npseudo;
    st->nfields = n - npseudo;
    if (!st->method)
        st->method = "GET";
    if (!st->scheme)
        st->scheme = st->sess->tls ? "https" : "http";
    if (!st->path)
        st->path = "";
    if (!st->authority) {
        size_t len;
        const char *host = rill_request_header(st, "host", &len);
        st->authority = host ? host : "";
    }
    st->head_request = strcmp(st->method, "HEAD") == 0;
    st->version = version;
    return RILL_OK;
}

static const struct route *find_route(const rill_server *srv, const char *path)
{
    size_t plen = strcspn(path, "?");
    for (size_t i = 0; i < srv->nroutes; i++) { /* sorted longest prefix first */
        const struct route *r = &srv->routes[i];
        if (r->prefix_len <= plen && memcmp(r->prefix, path, r->prefix_len) == 0 &&
            (!r->exact || r->prefix_len == plen))
            return r;
    }
    return NULL;
}

static void dispatch(rill_stream *st);

void exchange_dispatch(rill_stream *st)
{
    exchange_hold(st);
    dispatch(st);
    exchange_release(st);
}

static void dispatch(rill_stream *st)
{
    rill_server *srv = session_worker(st->sess)->srv;
    atomic_fetch_add_explicit(&session_worker(st->sess)->stats.requests, 1, memory_order_relaxed);
    if (srv->on_stream) {
        const rill_header *all = st->all_fields;
        size_t n = (size_t)(st->fields - all) + st->nfields;
        if (srv->on_stream(st, all, n, srv->on_stream_user))
            return;
    }
    if (st->connect_protocol) {
        for (const struct tunnel *t = srv->tunnels; t; t = t->next)
            if (strcmp(t->protocol, st->connect_protocol) == 0) {
                t->fn(st, st, t->user);
                return;
            }
    }
    const struct route *r = find_route(srv, st->path);
    if (st->connect_protocol && (!r || !ws_route_is(r))) /* RFC 8441 tunnel nobody serves */
        exchange_respond_simple(st, 501, "text/plain; charset=utf-8", "protocol not supported\n");
    else if (r)
        r->fn(st, st, r->user);
    else
        exchange_respond_simple(st, 404, "text/plain; charset=utf-8", "not found\n");
}

static void body(rill_stream *st, const uint8_t *data, size_t len);

void exchange_body(rill_stream *st, const uint8_t *data, size_t len)
{
    exchange_hold(st);
    body(st, data, len);
    exchange_release(st);
}

static void body(rill_stream *st, const uint8_t *data, size_t len)
{
    if (len == 0)
        return;
    if (st->body_fn && !st->early_len && !st->body_paused) {
        st->body_fn(st, data, len, false, st->body_user);
        if (st->ops->consumed)
            st->ops->consumed(st, len);
        return;
    }
    if (!st->body_fn && st->ended) { /* answered already and nobody reads: discard */
        if (st->ops->consumed)
            st->ops->consumed(st, len);
        return;
    }
    /* Held until on_body is set; flow control bounds how much can arrive meanwhile. */
    uint8_t *grown = realloc(st->early_body, st->early_len + len);
    if (!grown)
        return;
    memcpy(grown + st->early_len, data, len);
    st->early_body = grown;
    st->early_len += len;
}

void exchange_body_end(rill_stream *st)
{
    st->request_ended = true;
    if (st->body_fn && !st->early_len && !st->body_paused && !st->request_end_delivered) {
        st->request_end_delivered = true;
        exchange_hold(st);
        st->body_fn(st, NULL, 0, true, st->body_user);
        exchange_release(st);
    }
}

void exchange_drained(rill_stream *st)
{
    if (st->drain_fn && !st->ended) {
        exchange_hold(st);
        st->drain_fn(st, st->drain_user);
        exchange_release(st);
    }
}

static void log_access(rill_stream *st)
{
    rill_server *srv = session_worker(st->sess)->srv;
    if (srv->access_log_fd < 0)
        return;
    size_t ref_len = 0, ua_len = 0;
    const char *ref = rill_request_header(st, "referer", &ref_len);
    const char *ua = rill_request_header(st, "user-agent", &ua_len);
    const char *target = st->path[0] ? st->path : st->authority;
    struct rill_access_log_entry e = {
        .remote_addr = session_peer(st->sess),
        .when = time(NULL),
        .method = st->method ? st->method : "-",
        .method_len = st->method ? strlen(st->method) : 1,
        .target = target,
        .target_len = strlen(target),
        .protocol = st->version,
        .status = st->status,
        .body_bytes = st->body_bytes,
        .referer = ref,
        .referer_len = ref_len,
        .user_agent = ua,
        .user_agent_len = ua_len,
    };
    rill_access_log_write(srv->access_log_fd, &e);
}

void exchange_hold(rill_stream *st)
{
    st->busy++;
}

static void close_now(rill_stream *st, bool completed);

void exchange_release(rill_stream *st)
{
    if (--st->busy == 0 && st->close_pending)
        close_now(st, st->close_completed);
}

void exchange_closed(rill_stream *st, bool completed)
{
    if (st->closed || st->close_pending)
        return;
    if (st->busy) { /* the transport closed it under a call that still uses it */
        st->close_pending = true;
        st->close_completed = completed;
        return;
    }
    close_now(st, completed);
}

static void close_now(rill_stream *st, bool completed)
{
    st->closed = true;
    if (st->method && st->head_sent)
        log_access(st);
    if (st->close_fn)
        st->close_fn(st, completed, st->close_user);
    if (st->release)
        st->release(st->release_arg);
    if (st->live_prev)
        st->live_prev->live_next = st->live_next;
    else
        st->sess->live = st->live_next;
    if (st->live_next)
        st->live_next->live_prev = st->live_prev;
    st->sess->open_streams--;
    atomic_fetch_sub_explicit(&session_worker(st->sess)->stats.streams, 1, memory_order_relaxed);
    free(st->early_body);
    exchange_free(st);
}

/* ---- header lists ------------------------------------------------------------------------------ */

int header_list_add(rill_stream *st, struct header_list *l, const char *name, size_t nlen,
                    const char *value, size_t vlen)
{
    if (l->count == l->cap) { /* the old array stays in the arena: lists rarely grow */
        size_t cap = l->cap ? l->cap * 2 : 12;
        rill_header *items = exchange_alloc(st, cap * sizeof *items);
        if (!items)
            return RILL_ERR_NOMEM;
        if (l->count)
            memcpy(items, l->items, l->count * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    char *copy = exchange_alloc(st, nlen + vlen + 2);
    if (!copy)
        return RILL_ERR_NOMEM;
    for (size_t i = 0; i < nlen; i++)
        copy[i] = (char)tolower((unsigned char)name[i]);
    copy[nlen] = '\0';
    memcpy(copy + nlen + 1, value, vlen);
    copy[nlen + 1 + vlen] = '\0';
    l->items[l->count++] = (rill_header){(const uint8_t *)copy, nlen,
                                         (const uint8_t *)copy + nlen + 1, vlen, 0};
    return RILL_OK;
}

static void header_list_remove(struct header_list *l, const char *name)
{
    size_t nlen = strlen(name), k = 0;
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i].name_len != nlen || strncasecmp((const char *)l->items[i].name, name, nlen) != 0)
            l->items[k++] = l->items[i];
    l->count = k;
}

bool header_list_has(const struct header_list *l, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i].name_len == nlen && memcmp(l->items[i].name, name, nlen) == 0)
            return true;
    return false;
}

/* ---- request API ------------------------------------------------------------------------------- */

const char *rill_request_method(const rill_request *r) { return r->method; }
const char *rill_request_scheme(const rill_request *r) { return r->scheme; }
const char *rill_request_authority(const rill_request *r) { return r->authority; }
const char *rill_request_path(const rill_request *r) { return r->path; }
const char *rill_request_connect_protocol(const rill_request *r) { return r->connect_protocol; }
const char *rill_request_version(const rill_request *r) { return r->version; }
rill_protocol rill_request_protocol(const rill_request *r) { return (rill_protocol)r->sess->protocol; }
size_t rill_request_header_count(const rill_request *r) { return r->nfields; }
void rill_request_set_user(rill_request *r, void *user) { r->user = user; }
void *rill_request_user(const rill_request *r) { return r->user; }
rill_session *rill_stream_session(const rill_stream *stream) { return stream->sess; }
int32_t rill_stream_id(const rill_stream *stream) { return stream->id; }
rill_protocol rill_session_protocol(const rill_session *session) { return (rill_protocol)session->protocol; }
/* The session is not const to its owner: the text is formatted on first use and cached. */
const char *rill_session_peer(const rill_session *session) { return session_peer((rill_session *)session); }
uint64_t rill_session_id(const rill_session *session) { return session->id; }

const rill_header *rill_request_header_at(const rill_request *r, size_t i)
{
    return i < r->nfields ? &r->fields[i] : NULL;
}

const char *rill_request_header(const rill_request *r, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].name_len == nlen && memcmp(r->fields[i].name, name, nlen) == 0) {
            if (len)
                *len = r->fields[i].value_len;
            return (const char *)r->fields[i].value;
        }
    return NULL;
}

static void request_on_body(rill_request *r, rill_body_fn fn, void *user);

void rill_request_on_body(rill_request *r, rill_body_fn fn, void *user)
{
    exchange_hold(r);
    request_on_body(r, fn, user);
    exchange_release(r);
}

static void request_on_body(rill_request *r, rill_body_fn fn, void *user)
{
    r->body_fn = fn;
    r->body_user = user;
    if (r->body_paused)
        return;
    if (fn && r->early_len) {
        uint8_t *held = r->early_body;
        size_t n = r->early_len;
        r->early_body = NULL;
        r->early_len = 0;
        fn(r, held, n, false, user);
        if (r->ops->consumed)
            r->ops->consumed(r, n);
        free(held);
    }
    if (fn && r->request_ended && !r->request_end_delivered) {
        r->request_end_delivered = true;
        fn(r, NULL, 0, true, user);
    }
}

void rill_request_pause(rill_request *r, bool paused)
{
    if (r->body_paused == paused)
        return;
    exchange_hold(r);
    r->body_paused = paused;
    if (r->ops->pause_body)
        r->ops->pause_body(r, paused);
    if (!paused) /* deliver what was held meanwhile */
        request_on_body(r, r->body_fn, r->body_user);
    session_flush(r->sess);
    exchange_release(r);
}

/* ---- response API ------------------------------------------------------------------------------ */

int rill_response_set_status(rill_response *res, int status)
{
    if (res->head_sent)
        return RILL_ERR_STATE;
    if (status < 200 || status > 999)
        return RILL_ERR_INVALID_ARG;
    res->status = status;
    return RILL_OK;
}

static bool connection_specific(const char *name, size_t len)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == len && strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

/* A settable response field: a token name that is not connection-specific, a value without
 * control characters other than HTAB. Gives both lengths. */
static bool valid_field(const char *name, const char *value, size_t *nlen, size_t *vlen)
{
    size_t n = 0;
    unsigned bad = 0;
    for (; name[n]; n++)
        bad |= http_tchar[(uint8_t)name[n]] == 0;
    if (n == 0 || bad)
        return false;
    size_t v = 0;
    for (; value[v]; v++) {
        uint8_t c = (uint8_t)value[v];
        bad |= (c < ' ' && c != '\t') | (c == 0x7f);
    }
    *nlen = n;
    *vlen = v;
    return !bad && !connection_specific(name, n);
}

int rill_response_add_header(rill_response *res, const char *name, const char *value)
{
    if (res->head_sent)
        return RILL_ERR_STATE;
    size_t nlen, vlen;
    if (!valid_field(name, value, &nlen, &vlen))
        return RILL_ERR_INVALID_ARG;
    return header_list_add(res, &res->resp_fields, name, nlen, value, vlen);
}

int rill_response_set_header(rill_response *res, const char *name, const char *value)
{
    if (res->head_sent)
        return RILL_ERR_STATE;
    size_t nlen, vlen;
    if (!valid_field(name, value, &nlen, &vlen))
        return RILL_ERR_INVALID_ARG;
    header_list_remove(&res->resp_fields, name);
    return header_list_add(res, &res->resp_fields, name, nlen, value, vlen);
}

int rill_response_add_trailer(rill_response *res, const char *name, const char *value)
{
    if (res->ended)
        return RILL_ERR_STATE;
    size_t nlen, vlen;
    if (!valid_field(name, value, &nlen, &vlen))
        return RILL_ERR_INVALID_ARG;
    return header_list_add(res, &res->trailers, name, nlen, value, vlen);
}

static int rill_response_informational_impl(rill_response *res, int status, const rill_header *fields,
                                size_t count)
{
    if (res->head_sent || status < 100 || status > 199 || status == 101)
        return RILL_ERR_STATE;
    return res->ops->send_informational(res, status, fields, count);
}

static bool body_allowed(const rill_stream *st)
{
    return !st->head_request && st->status != 204 && st->status != 304;
}

/* Decimal digits of v (no snprintf on the per-response path). */
static size_t format_decimal(char out[24], uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

/* A Date field per response, formatted once per second per thread. */
static void add_standard_fields(rill_stream *st)
{
    static _Thread_local time_t cached_sec;
    static _Thread_local char cached[RILL_HTTP_DATE_LEN + 1];
    time_t now = time(NULL);
    if (now != cached_sec) {
        rill_http_date_format(now, cached);
        cached_sec = now;
    }
    if (!header_list_has(&st->resp_fields, "date"))
        header_list_add(st, &st->resp_fields, "date", 4, cached, RILL_HTTP_DATE_LEN);
    if (!header_list_has(&st->resp_fields, "server"))
        header_list_add(st, &st->resp_fields, "server", 6, "rill", 4);
}

static int send_head(rill_stream *st, bool end_stream)
{
    add_standard_fields(st);
    st->head_sent = true;
    return st->ops->send_head(st, end_stream);
}

static int rill_response_write_impl(rill_response *res, const void *data, size_t len)
{
    if (res->ended || res->closed)
        return RILL_ERR_STATE;
    int rc = RILL_OK;
    if (!res->head_sent && (rc = send_head(res, false)) < 0)
        return rc;
    if (len == 0 || !body_allowed(res))
        return RILL_OK;
    res->body_bytes += len;
    rc = res->ops->send_body(res, data, len);
    session_flush(res->sess);
    return rc;
}

void rill_response_on_drain(rill_response *res, rill_response_fn fn, void *user)
{
    res->drain_fn = fn;
    res->drain_user = user;
}

static int rill_response_end_impl(rill_response *res, const void *data, size_t len)
{
    if (res->ended || res->closed)
        return RILL_ERR_STATE;
    int rc;
    if (!res->head_sent) {
        if (!header_list_has(&res->resp_fields, "content-length") && res->status != 204 &&
            res->status != 304) {
            char num[24];
            size_t n = format_decimal(num, len);
            header_list_add(res, &res->resp_fields, "content-length", 14, num, n);
        }
        bool nothing_follows = (len == 0 || !body_allowed(res)) && res->trailers.count == 0;
        if ((rc = send_head(res, nothing_follows)) < 0)
            return rc;
        if (nothing_follows) {
            res->ended = true;
            rc = res->ops->finish(res);
            session_flush(res->sess);
            return rc;
        }
    }
    if (len > 0 && body_allowed(res)) {
        res->body_bytes += len;
        if (res->ops->send_last && res->trailers.count == 0) {
            /* the last bytes carry the end: one DATA frame with END_STREAM, not two */
            res->ended = true;
            exchange_hold(res);
            rc = res->ops->send_last(res, data, len);
            if (rc == RILL_OK)
                rc = res->ops->finish(res);
            session_flush(res->sess);
            exchange_release(res);
            return rc;
        }
        rc = res->ops->send_body(res, data, len);
        if (rc < 0 && rc != RILL_ERR_WOULD_BLOCK)
            return rc;
    }
    res->ended = true;
    rc = res->ops->finish(res);
    session_flush(res->sess);
    return rc;
}

/* The static handler streams a file; the fd stays the caller's (see st->release). */
static int exchange_send_file_impl(rill_stream *st, int fd, uint64_t offset, uint64_t length)
{
    st->file_fd = fd;
    st->file_off = offset;
    st->file_left = body_allowed(st) ? length : 0;
    int rc = send_head(st, st->file_left == 0 && st->trailers.count == 0);
    if (rc < 0)
        return rc;
    st->body_bytes = st->file_left;
    st->ended = true;
    rc = st->file_left ? st->ops->send_file(st) : st->ops->finish(st);
    session_flush(st->sess);
    return rc;
}

int rill_response_push(rill_response *res, const char *path)
{
    if (!res->ops->push || res->ended)
        return RILL_ERR_STATE;
    return res->ops->push(res, path);
}

void rill_response_on_close(rill_response *res, rill_close_fn fn, void *user)
{
    res->close_fn = fn;
    res->close_user = user;
}

static int rill_stream_respond_impl(rill_stream *stream, const rill_header *headers, size_t count, bool end_stream)
{
    if (stream->head_sent)
        return RILL_ERR_STATE;
    for (size_t i = 0; i < count; i++) {
        const char *name = (const char *)headers[i].name;
        if (headers[i].name_len == 7 && memcmp(name, ":status", 7) == 0) {
            char num[8] = {0};
            memcpy(num, headers[i].value, headers[i].value_len < 7 ? headers[i].value_len : 7);
            int rc = rill_response_set_status(stream, atoi(num));
            if (rc < 0)
                return rc;
            continue;
        }
        int rc = header_list_add(stream, &stream->resp_fields, name, headers[i].name_len,
                                 (const char *)headers[i].value, headers[i].value_len);
        if (rc < 0)
            return rc;
    }
    if (end_stream)
        return rill_response_end(stream, NULL, 0);
    int rc = send_head(stream, false);
    session_flush(stream->sess);
    return rc;
}

static int exchange_respond_simple_impl(rill_stream *st, int status, const char *content_type, const char *body)
{
    if (st->head_sent)
        return RILL_ERR_STATE;
    st->status = status;
    if (content_type)
        rill_response_set_header(st, "content-type", content_type);
    return rill_response_end(st, body, body ? strlen(body) : 0);
}

int rill_response_write(rill_response *res, const void *data, size_t len)
{
    exchange_hold(res);
    int rc = rill_response_write_impl(res, data, len);
    exchange_release(res);
    return rc;
}

int rill_response_end(rill_response *res, const void *data, size_t len)
{
    exchange_hold(res);
    int rc = rill_response_end_impl(res, data, len);
    exchange_release(res);
    return rc;
}

int rill_response_informational(rill_response *res, int status, const rill_header *fields,
                                size_t count)
{
    exchange_hold(res);
    int rc = rill_response_informational_impl(res, status, fields, count);
    exchange_release(res);
    return rc;
}

int exchange_send_file(rill_stream *st, int fd, uint64_t offset, uint64_t length)
{
    exchange_hold(st);
    int rc = exchange_send_file_impl(st, fd, offset, length);
    exchange_release(st);
    return rc;
}

int rill_stream_respond(rill_stream *stream, const rill_header *headers, size_t count, bool end_stream)
{
    exchange_hold(stream);
    int rc = rill_stream_respond_impl(stream, headers, count, end_stream);
    exchange_release(stream);
    return rc;
}

int exchange_respond_simple(rill_stream *st, int status, const char *content_type, const char *body)
{
    exchange_hold(st);
    int rc = exchange_respond_simple_impl(st, status, content_type, body);
    exchange_release(st);
    return rc;
}
