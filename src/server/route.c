/* Routing: a request goes to on_stream, a registered tunnel protocol, or the longest matching
 * route prefix (404 when none matches). */
#include <string.h>

#include "server/server_internal.h"

static const struct route *find_route(const rill_server *srv, const char *path, size_t plen)
{
    for (size_t i = 0; i < srv->nroutes; i++) { /* sorted longest prefix first */
        const struct route *r = &srv->routes[i];
        if (r->prefix_len <= plen && memcmp(r->prefix, path, r->prefix_len) == 0 &&
            (!r->exact || r->prefix_len == plen))
            return r;
    }
    return NULL;
}

int rill_server_route_length(const rill_server_stream *st)
{
    /* Tunnel protocols answer for any path: not more specific than a prefix, so not counted. */
    const rill_server *srv = session_worker(st->sess)->srv;
    const struct route *r = find_route(srv, st->path, st->route_len);
    return r ? (int)r->prefix_len : -1;
}

static void dispatch(rill_server_stream *st);

void exchange_dispatch(rill_server_stream *st)
{
    exchange_hold(st);
    dispatch(st);
    exchange_release(st);
}

static void dispatch(rill_server_stream *st)
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
    const struct route *r = find_route(srv, st->path, st->route_len);
    if (st->connect_protocol && (!r || !ws_route_is(r))) /* RFC 8441 tunnel nobody serves */
        exchange_respond_simple(st, 501, "text/plain; charset=utf-8", "protocol not supported\n");
    else if (r)
        r->fn(st, st, r->user);
    else
        exchange_respond_simple(st, 404, "text/plain; charset=utf-8", "not found\n");
}
