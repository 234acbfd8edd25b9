/* The proxy's configuration (PREFIX=URL[,URL...] parsed into routes and backends), round robin,
 * and each worker's clients: one rill_client per backend per worker thread, made on first use,
 * freed at the worker's exit with the requests still in flight there. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_internal.h"
#include "proxy/proxy_upstream.h"

/* A worker's connections to one backend. rill_client runs one HTTP/1.1 request at a time per
 * connection, so an HTTP/1.1 backend gets several clients, one per request in flight (up to
 * POOL_MAX), and a slow request does not hold up the others; once a backend answered over
 * HTTP/2 one client multiplexes them all. */
#define POOL_MAX 64
struct client_slot {
    rill_client *c;
    unsigned busy; /* requests in flight on it */
};
struct client_pool {
    struct client_slot *slots;
    size_t n;
    bool h2; /* the backend speaks HTTP/2: one client is enough */
};

/* A worker thread's part of one proxy. Found through a thread-local list: a worker is a thread
 * with one loop, so this needs no lock and no index from the server. */
struct proxy_worker {
    rill_proxy *proxy;
    rill_io_loop *loop;
    struct client_pool *pools; /* by backend index */
    struct pxreq *live;        /* requests not yet over on either side */
    struct proxy_worker *next;
};

static _Thread_local struct proxy_worker *thread_workers;

void rill_proxy_options_init(rill_proxy_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->timeout_ms = 30000;
    opt->connect_timeout_ms = 10000;
}

const rill_proxy_options *proxy_options(const rill_proxy *p) { return &p->opt; }

static void on_worker_exit(rill_io_loop *loop, void *user);

int rill_proxy_new(rill_server *s, const rill_proxy_options *opt, rill_proxy **out)
{
    *out = NULL;
    if (opt && opt->size != sizeof *opt)
        return RILL_ERR_INVALID_ARG;
    rill_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return RILL_ERR_NOMEM;
    p->server = s;
    if (opt)
        p->opt = *opt;
    else
        rill_proxy_options_init(&p->opt);
    rill_server_on_worker_exit(s, on_worker_exit, p);
    *out = p;
    return RILL_OK;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, what);
    return rc;
}

/* scheme://host[:port][/] -> a backend. The path must be empty or "/": the request's path is
 * sent as received. */
static int parse_backend(rill_proxy *p, const char *url, size_t len, char *err, size_t errlen)
{
    char text[512];
    if (len == 0 || len >= sizeof text)
        return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy: a backend URL is empty or too long%s", "");
    memcpy(text, url, len);
    text[len] = '\0';
    const char *rest;
    bool h2c = false, https = false;
    if (strncmp(text, "http://", 7) == 0)
        rest = text + 7;
    else if (strncmp(text, "h2c://", 6) == 0)
        rest = text + 6, h2c = true;
    else if (strncmp(text, "https://", 8) == 0)
        rest = text + 8, https = true;
    else
        return fail(err, errlen, RILL_ERR_INVALID_ARG,
                    "--proxy: '%s' is not an http://, h2c:// or https:// URL", text);
    size_t hostport = strcspn(rest, "/?#");
    if (rest[hostport] && strcmp(rest + hostport, "/") != 0)
        return fail(err, errlen, RILL_ERR_INVALID_ARG,
                    "--proxy: '%s' has a path: the request's path is sent as received", text);
    if (hostport == 0)
        return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy: '%s' has no host", text);
    /* The port, if any, after the host (an IPv6 literal is in brackets). */
    const char *close = rest[0] == '[' ? memchr(rest, ']', hostport) : NULL;
    if (rest[0] == '[' && (!close || close == rest + 1))
        return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy: '%s' has a bad IPv6 address", text);
    const char *colon = memchr(close ? close : rest, ':', hostport - (size_t)((close ? close : rest) - rest));
    if (colon == rest)
        return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy: '%s' has no host", text);
    if (colon) {
        size_t n = hostport - (size_t)(colon + 1 - rest);
        unsigned long port = 0;
        for (size_t i = 0; i < n; i++) {
            char c = colon[1 + i];
            if (c < '0' || c > '9' || port > 65535)
                return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy: '%s' has a bad port", text);
            port = port * 10 + (unsigned long)(c - '0');
        }
        if (n == 0 || port == 0 || port > 65535)
            return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy: '%s' has a bad port", text);
    }
    struct proxy_backend *b = calloc(1, sizeof *b);
    struct proxy_backend **grown = realloc(p->backends, (p->nbackends + 1) * sizeof *grown);
    if (grown)
        p->backends = grown;
    char origin[530];
    snprintf(origin, sizeof origin, "%s://%.*s", https ? "https" : "http", (int)hostport, rest);
    if (!b || !grown || !(b->url = strdup(text)) || !(b->origin = strdup(origin))) {
        if (b) {
            free(b->url);
            free(b);
        }
        return RILL_ERR_NOMEM;
    }
    b->h2c = h2c;
    b->https = https;
    b->index = (unsigned)p->nbackends;
    p->backends[p->nbackends++] = b;
    return RILL_OK;
}

int rill_proxy_add(rill_proxy *p, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || spec[0] != '/')
        return fail(err, errlen, RILL_ERR_INVALID_ARG,
                    "--proxy wants PREFIX=URL[,URL...] with PREFIX starting with '/', not '%s'", spec);
    if (!eq[1])
        return fail(err, errlen, RILL_ERR_INVALID_ARG, "--proxy '%s' names no backend URL", spec);
    struct proxy_route *r = calloc(1, sizeof *r);
    if (!r || !(r->prefix = strndup(spec, (size_t)(eq - spec)))) {
        free(r);
        return RILL_ERR_NOMEM;
    }
    r->proxy = p;
    size_t first = p->nbackends;
    int rc = RILL_OK;
    for (const char *u = eq + 1; rc == RILL_OK;) {
        size_t n = strcspn(u, ",");
        rc = parse_backend(p, u, n, err, errlen);
        if (!u[n])
            break;
        u += n + 1;
    }
    if (rc == RILL_OK) {
        r->first = first;
        r->nbackends = p->nbackends - first;
        struct proxy_route **grown = realloc(p->routes, (p->nroutes + 1) * sizeof *grown);
        if (!grown)
            rc = RILL_ERR_NOMEM;
        else {
            p->routes = grown;
            p->routes[p->nroutes++] = r;
            rc = rill_server_route_tunnels(p->server, r->prefix, proxy_handle, r);
            if (rc < 0) {
                p->nroutes--;
                fail(err, errlen, rc, "--proxy: cannot add the route '%s'", r->prefix);
            }
        }
    }
    if (rc < 0) {
        free(r->prefix);
        free(r);
    }
    return rc;
}

struct proxy_backend *proxy_pick(rill_proxy *p, struct proxy_route *r)
{
    /* Shared by the workers: an atomic counter keeps the turns even across threads. */
    unsigned turn = atomic_fetch_add_explicit(&r->turn, 1, memory_order_relaxed);
    return p->backends[r->first + turn % r->nbackends];
}

static struct proxy_worker *worker_of(rill_proxy *p, rill_io_loop *loop)
{
    for (struct proxy_worker *w = thread_workers; w; w = w->next)
        if (w->proxy == p && w->loop == loop)
            return w;
    struct proxy_worker *w = calloc(1, sizeof *w);
    if (!w || !(w->pools = calloc(p->nbackends ? p->nbackends : 1, sizeof *w->pools))) {
        free(w);
        return NULL;
    }
    w->proxy = p;
    w->loop = loop;
    w->next = thread_workers;
    thread_workers = w;
    return w;
}

static rill_client *new_client(rill_proxy *p, rill_io_loop *loop, const struct proxy_backend *b,
                               char *err, size_t errlen)
{
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = b->origin;
    o.h2_prior_knowledge = b->h2c;
    o.http1_only = !b->h2c && !b->https;
    o.insecure = p->opt.insecure;
    o.ca_file = p->opt.ca_file;
    o.connect_timeout_ms = p->opt.connect_timeout_ms;
    rill_client *c = NULL;
    return rill_client_new(loop, &o, &c, err, errlen) < 0 ? NULL : c;
}

rill_client *proxy_client(struct pxreq *px, rill_io_loop *loop, char *err, size_t errlen)
{
    rill_proxy *p = px->proxy;
    struct proxy_worker *w = px->worker;
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct client_pool *pool = &w->pools[px->backend->index];
    /* An idle client first; HTTP/2 multiplexes on the first; else a new one while allowed; else
     * the least busy (its requests wait their turn). */
    size_t pick = pool->n, least = 0;
    for (size_t i = 0; i < pool->n && pick == pool->n; i++)
        if (pool->slots[i].busy == 0 || pool->h2)
            pick = i;
    for (size_t i = 1; i < pool->n; i++)
        if (pool->slots[i].busy < pool->slots[least].busy)
            least = i;
    if (pick == pool->n && pool->n >= POOL_MAX)
        pick = least;
    if (pick == pool->n) {
        struct client_slot *grown = realloc(pool->slots, (pool->n + 1) * sizeof *grown);
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        pool->slots = grown;
        rill_client *c = new_client(p, loop, px->backend, err, errlen);
        if (!c)
            return NULL;
        pool->slots[pool->n++] = (struct client_slot){c, 0};
    }
    pool->slots[pick].busy++;
    px->slot = pick;
    px->has_slot = true;
    return pool->slots[pick].c;
}

bool proxy_backend_h2(const struct pxreq *px)
{
    return px->backend->h2c || (px->worker && px->worker->pools[px->backend->index].h2);
}

void proxy_client_done(struct pxreq *px, const char *protocol)
{
    if (!px->has_slot || !px->worker)
        return;
    struct client_pool *pool = &px->worker->pools[px->backend->index];
    pool->slots[px->slot].busy--;
    px->has_slot = false;
    if (protocol && strcmp(protocol, "h2") == 0)
        pool->h2 = true;
}

void proxy_live_add(rill_proxy *p, rill_io_loop *loop, struct pxreq *px)
{
    struct proxy_worker *w = worker_of(p, loop);
    px->worker = w;
    if (!w)
        return;
    px->live_next = w->live;
    px->live_prev = NULL;
    if (w->live)
        w->live->live_prev = px;
    w->live = px;
}

void proxy_live_remove(struct pxreq *px)
{
    struct proxy_worker *w = px->worker;
    if (!w)
        return;
    if (px->live_prev)
        px->live_prev->live_next = px->live_next;
    else
        w->live = px->live_next;
    if (px->live_next)
        px->live_next->live_prev = px->live_prev;
    px->worker = NULL;
}

/* On the worker's thread after its loop stopped: requests still in flight lose both sides (the
 * clients end theirs without on_end), then the clients go. */
static void on_worker_exit(rill_io_loop *loop, void *user)
{
    rill_proxy *p = user;
    for (struct proxy_worker **link = &thread_workers; *link;) {
        struct proxy_worker *w = *link;
        if (w->proxy != p || w->loop != loop) {
            link = &w->next;
            continue;
        }
        while (w->live)
            pxreq_abandon(w->live);
        for (size_t i = 0; i < p->nbackends; i++) {
            for (size_t k = 0; k < w->pools[i].n; k++)
                rill_client_free(w->pools[i].slots[k].c);
            free(w->pools[i].slots);
        }
        *link = w->next;
        free(w->pools);
        free(w);
    }
}

void rill_proxy_free(rill_proxy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nroutes; i++) {
        free(p->routes[i]->prefix);
        free(p->routes[i]);
    }
    for (size_t i = 0; i < p->nbackends; i++) {
        free(p->backends[i]->url);
        free(p->backends[i]->origin);
        free(p->backends[i]);
    }
    free(p->routes);
    free(p->backends);
    upstream_tls_free(p);
    free(p);
}
