/* The proxy: its configuration in force (swapped whole on SIGHUP), the requests it claims, and
 * each worker's part: its hold on the configurations its requests use, its clients (one pool per
 * backend, made on first use, freed at the worker's exit with the requests still in flight). */
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
#define POOL_LEVELS 32
struct client_slot {
    rill_client *c;
    unsigned busy; /* requests in flight on it */
};
struct client_pool {
    struct client_slot *slots;
    size_t n;
    unsigned inflight; /* the worker's requests on this backend: least-connections counts these */
    bool h2;           /* the backend speaks HTTP/2: one client is enough */
    bool no_connect;   /* ...but refuses extended CONNECT: tunnels go as Upgrades (https://) */
    size_t idle_hint;  /* the slot whose request ended last: likely idle */
    size_t idle;       /* slots with nothing in flight: none, no scan for one */
    /* With every slot busy, the least busy one is found from these: how many slots have each
     * number of requests in flight (below POOL_LEVELS), and where the last search stopped, so
     * it does not walk all POOL_MAX slots for each request. */
    unsigned at_level[POOL_LEVELS];
    size_t least_cursor;
    /* Pipelining backends: the requests of one loop turn go on one client (up to the depth), so
     * they leave in one write and their answers come back together. */
    uint64_t batch_turn;
    size_t batch_slot;
};

/* Slot i of pool gets delta more requests in flight (+1 or -1); the level counts follow. */
static void slot_busy_add(struct client_pool *pool, size_t i, int delta)
{
    unsigned b = pool->slots[i].busy;
    if (b < POOL_LEVELS)
        pool->at_level[b]--;
    b = (unsigned)((int)b + delta);
    pool->slots[i].busy = b;
    if (b < POOL_LEVELS)
        pool->at_level[b]++;
}

/* The slot with the fewest requests in flight (a full pool, none idle). */
static size_t least_busy(struct client_pool *pool)
{
    unsigned level = 0;
    while (level < POOL_LEVELS && pool->at_level[level] == 0)
        level++;
    if (level == POOL_LEVELS) { /* every slot is far behind: walk them */
        size_t least = 0;
        for (size_t i = 1; i < pool->n; i++)
            if (pool->slots[i].busy < pool->slots[least].busy)
                least = i;
        return least;
    }
    size_t i = pool->least_cursor < pool->n ? pool->least_cursor : 0;
    while (pool->slots[i].busy != level) /* one exists: the count says so */
        i = i + 1 < pool->n ? i + 1 : 0;
    pool->least_cursor = i + 1;
    return i;
}

/* A worker thread's part of one proxy. Found through a thread-local list: a worker is a thread
 * with one loop, so this needs no lock and no index from the server. */
struct proxy_worker {
    rill_proxy *proxy;
    rill_io_loop *loop;
    struct client_pool *pools; /* by target index */
    size_t npools;
    struct config_hold *holds; /* the first is the current configuration's */
    struct pxreq *live;        /* requests not yet over on either side */
    struct pxreq *spare;       /* ended ones kept for the next requests (through live_next) */
    unsigned nspare;
    struct proxy_tunnel_link *tunnels; /* tunnels not yet over (proxy_tunnel.c) */
    struct proxy_health *health;       /* its health check probes (proxy_health.c) */
    struct proxy_worker *next; /* the thread's list */
    struct proxy_worker *all_next; /* the proxy's list (p->lock) */
};

static _Thread_local struct proxy_worker *thread_workers;

void rill_proxy_options_init(rill_proxy_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
}

static void on_worker_exit(rill_io_loop *loop, void *user);
static void on_worker_start(rill_io_loop *loop, void *user);
static bool on_stream(rill_server_stream *st, const rill_header *h, size_t n, void *user);
static void on_reload(void *user);

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
    pthread_mutex_init(&p->lock, NULL);
    rill_server_on_worker_exit(s, on_worker_exit, p);
    rill_server_on_worker_start(s, on_worker_start, p);
    rill_server_on_stream(s, on_stream, p);
    rill_server_on_reload(s, on_reload, p);
    *out = p;
    return RILL_OK;
}

int rill_proxy_add(rill_proxy *p, const char *spec, char *err, size_t errlen)
{
    return proxy_spec_add_flag(&p->flags, spec, err, errlen);
}

int rill_proxy_start(rill_proxy *p, const char *config_file, struct proxy_spec *file, char *err,
                     size_t errlen)
{
    if (config_file && !(p->config_file = strdup(config_file))) {
        proxy_spec_free(file);
        return RILL_ERR_NOMEM;
    }
    struct proxy_config *c;
    int rc = proxy_config_build(p, file, &c, err, errlen);
    if (rc == RILL_OK)
        atomic_store_explicit(&p->current, c, memory_order_release);
    return rc;
}

bool rill_proxy_takes_root(const rill_proxy *p)
{
    struct proxy_config *c = atomic_load_explicit(&((rill_proxy *)p)->current, memory_order_acquire);
    for (size_t i = 0; c && i < c->nroutes; i++)
        if (strcmp(c->routes[i].prefix, "/") == 0)
            return true;
    return false;
}

static struct config_hold *current_hold(struct proxy_worker *w);

static void adopt(rill_io_loop *loop, void *arg)
{
    struct proxy_worker *w = arg;
    (void)loop;
    current_hold(w);
    if (w->health)
        proxy_health_reconfigured(w->health); /* its backends' checks may have changed */
}

/* SIGHUP, on one worker's thread: the file again; each worker takes the new configuration (told
 * through its loop, or at its next request if that comes first), its requests in flight finish
 * on the old one. */
static void on_reload(void *user)
{
    rill_proxy *p = user;
    if (!p->config_file)
        return;
    char err[512] = "";
    struct proxy_spec *file;
    struct proxy_config *c = NULL;
    int rc = proxy_config_load(p->config_file, &file, err, sizeof err);
    if (rc == RILL_OK)
        rc = proxy_config_build(p, file, &c, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "rill serve: reload failed, keeping the old configuration: %s\n",
                err[0] ? err : rill_strerror(rc));
        return;
    }
    pthread_mutex_lock(&p->lock);
    struct proxy_config *old = atomic_exchange_explicit(&p->current, c, memory_order_acq_rel);
    /* Each worker takes the new one now, not at its next request: an idle worker would keep the
     * old one alive. A worker that exits meanwhile unlinks itself under the lock first, and a
     * loop that stopped drops the post. */
    for (struct proxy_worker *w = p->workers; w; w = w->all_next)
        rill_io_loop_post(w->loop, adopt, w);
    pthread_mutex_unlock(&p->lock);
    proxy_config_unref(old);
    fprintf(stderr, "rill serve: configuration reloaded from %s (routes: %zu)\n", p->config_file,
            c->nroutes);
}

static struct proxy_worker *worker_of(rill_proxy *p, rill_io_loop *loop)
{
    for (struct proxy_worker *w = thread_workers; w; w = w->next)
        if (w->proxy == p && w->loop == loop)
            return w;
    struct proxy_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->proxy = p;
    w->loop = loop;
    w->next = thread_workers;
    thread_workers = w;
    pthread_mutex_lock(&p->lock);
    w->all_next = p->workers;
    p->workers = w;
    pthread_mutex_unlock(&p->lock);
    return w;
}

struct proxy_worker *proxy_worker_get(rill_proxy *p, rill_io_loop *loop)
{
    return worker_of(p, loop);
}

rill_proxy *proxy_worker_proxy(const struct proxy_worker *w)
{
    return w->proxy;
}

/* Health checks start with the worker, before any request: its part and its probes. */
static void on_worker_start(rill_io_loop *loop, void *user)
{
    struct proxy_worker *w = worker_of(user, loop);
    if (w && !w->health && !(w->health = proxy_health_new(w, loop)))
        fprintf(stderr, "rill serve: proxy: no health checks on a worker: out of memory\n");
}

static void hold_drop(struct proxy_worker *w, struct config_hold *h)
{
    for (struct config_hold **link = &w->holds; *link; link = &(*link)->next)
        if (*link == h) {
            *link = h->next;
            break;
        }
    proxy_config_unref(h->cfg);
    free(h);
}

/* The worker's hold on the configuration in force. Adopting a new one takes the lock, once per
 * reload and worker: the reload cannot drop the configuration between our load and our
 * reference. A request only counts itself in the hold (no atomics). */
static struct config_hold *current_hold(struct proxy_worker *w)
{
    rill_proxy *p = w->proxy;
    struct proxy_config *now = atomic_load_explicit(&p->current, memory_order_acquire);
    if (w->holds && w->holds->cfg == now)
        return w->holds;
    struct config_hold *h = calloc(1, sizeof *h);
    if (!h)
        return w->holds; /* keep serving with the old one */
    pthread_mutex_lock(&p->lock);
    h->cfg = atomic_load_explicit(&p->current, memory_order_acquire);
    atomic_fetch_add_explicit(&h->cfg->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);
    struct config_hold *old = w->holds;
    h->next = old;
    w->holds = h;
    if (old && old->requests == 0)
        hold_drop(w, old);
    return h;
}

struct proxy_config *proxy_worker_config(struct proxy_worker *w)
{
    struct config_hold *h = current_hold(w);
    return h ? h->cfg : NULL;
}

/* Requests whose path one of the routes takes are the proxy's, unless a server route is more
 * specific (the longest prefix wins among all routes: a WebSocket path of the demo under a
 * proxied prefix stays the demo's); the others go on to the server's routes (the static files or
 * the demo). */
static bool on_stream(rill_server_stream *st, const rill_header *h, size_t n, void *user)
{
    rill_proxy *p = user;
    (void)h, (void)n;
    struct proxy_worker *w = worker_of(p, rill_server_request_loop(st));
    struct config_hold *hold = w ? current_hold(w) : NULL;
    struct proxy_route *r = hold ? proxy_config_route(hold->cfg, rill_server_request_path(st)) : NULL;
    if (!r || rill_server_route_length(st) > (int)r->prefix_len)
        return false;
    proxy_handle(st, st, r);
    return true;
}

static struct client_pool *pool_of(struct proxy_worker *w, const struct proxy_target *t)
{
    if (t->index >= w->npools) {
        size_t n = t->index + 8;
        struct client_pool *grown = realloc(w->pools, n * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + w->npools, 0, (n - w->npools) * sizeof *grown);
        w->pools = grown;
        w->npools = n;
    }
    return &w->pools[t->index];
}

unsigned proxy_worker_inflight(const struct proxy_worker *w, const struct proxy_target *t)
{
    return w && t->index < w->npools ? w->pools[t->index].inflight : 0;
}

void proxy_client_options(const struct proxy_target *t, const struct proxy_config *cfg, rill_client_options *o)
{
    rill_client_options_init(o);
    o->url = t->origin;
    o->h2_prior_knowledge = t->h2c;
    o->http1_only = !t->h2c && !t->https;
    o->insecure = cfg->insecure;
    o->ca_file = cfg->ca_file;
    o->connect_timeout_ms = t->connect_ms;
    o->max_connections = 1; /* one connection per client: POOL_MAX above caps the backend's */
    o->max_pipeline = t->pipeline;
}

static rill_client *new_client(const struct pxreq *px, rill_io_loop *loop, char *err, size_t errlen)
{
    rill_client_options o;
    proxy_client_options(px->backend, px->hold->cfg, &o);
    rill_client *c = NULL;
    return rill_client_new(loop, &o, &c, err, errlen) < 0 ? NULL : c;
}

rill_client *proxy_client(struct pxreq *px, rill_io_loop *loop, char *err, size_t errlen)
{
    struct proxy_worker *w = px->worker;
    struct client_pool *pool = w ? pool_of(w, px->backend) : NULL;
    if (!pool) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* An idle client first; HTTP/2 multiplexes on the first; else a new one while allowed; else
     * the least busy (its requests wait their turn). */
    /* h2c speaks HTTP/2 from the first request: no burst of connections before one answered */
    bool multiplex = pool->h2 || px->backend->h2c;
    bool batch = !multiplex && px->backend->pipeline > 1;
    uint64_t turn = batch ? rill_io_loop_turn(loop) : 0;
    size_t pick = pool->n;
    if (multiplex && pool->n)
        pick = 0;
    else if (batch && pool->batch_turn == turn && pool->batch_slot < pool->n &&
             pool->slots[pool->batch_slot].busy < px->backend->pipeline)
        pick = pool->batch_slot;
    else if (pool->idle_hint < pool->n && pool->slots[pool->idle_hint].busy == 0)
        pick = pool->idle_hint; /* the one freed last: no scan while requests come and go */
    for (size_t i = 0; i < pool->n && pick == pool->n && pool->idle; i++)
        if (pool->slots[i].busy == 0)
            pick = i;
    if (pick == pool->n && pool->n >= POOL_MAX)
        pick = least_busy(pool);
    if (pick == pool->n) {
        struct client_slot *grown = realloc(pool->slots, (pool->n + 1) * sizeof *grown);
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        pool->slots = grown;
        rill_client *c = new_client(px, loop, err, errlen);
        if (!c)
            return NULL;
        pool->slots[pool->n++] = (struct client_slot){c, 0};
        pool->idle++;
        pool->at_level[0]++;
    }
    if (batch) {
        pool->batch_turn = turn;
        pool->batch_slot = pick;
    }
    if (pool->slots[pick].busy == 0)
        pool->idle--;
    slot_busy_add(pool, pick, 1);
    pool->inflight++;
    px->slot = pick;
    px->has_slot = true;
    return pool->slots[pick].c;
}

bool proxy_backend_h2(const struct pxreq *px)
{
    return px->backend->h2c || (px->worker && px->backend->index < px->worker->npools &&
                                px->worker->pools[px->backend->index].h2);
}

bool proxy_tunnel_over_h2(struct proxy_worker *w, const struct proxy_target *b)
{
    if (b->h2c)
        return true;
    return b->https && w && b->index < w->npools && w->pools[b->index].h2 &&
           !w->pools[b->index].no_connect;
}

void proxy_no_connect(struct pxreq *px)
{
    if (px->worker && px->backend->index < px->worker->npools)
        px->worker->pools[px->backend->index].no_connect = true;
}

void proxy_client_done(struct pxreq *px, const char *protocol)
{
    if (!px->has_slot || !px->worker)
        return;
    struct client_pool *pool = &px->worker->pools[px->backend->index];
    slot_busy_add(pool, px->slot, -1);
    if (pool->slots[px->slot].busy == 0) {
        pool->idle_hint = px->slot;
        pool->idle++;
    }
    pool->inflight--;
    px->has_slot = false;
    if (protocol && strcmp(protocol, "h2") == 0)
        pool->h2 = true;
}

/* Spares a worker keeps: a request's block and timer cost more than the request's own work.
 * As many as a busy front keeps in flight (h2load -c 16 -m 16: 256), so that a burst of answers
 * followed by a burst of requests reuses them rather than calloc them (~2 KiB each: 512 KiB). */
#define PXREQ_SPARE_MAX 256

struct pxreq *proxy_pxreq_get(struct proxy_worker *w, size_t size)
{
    struct pxreq *px = w ? w->spare : NULL;
    if (!px)
        goto fresh;
    w->spare = px->live_next;
    w->nspare--;
    if (px->alloc_size < size) { /* too small for this one (many fields): a new one */
        rill_io_timer_free(px->timer);
        free(px);
        goto fresh;
    }
    rill_io_timer *timer = px->timer;
    size_t alloc_size = px->alloc_size;
    memset(px, 0, sizeof *px); /* what follows (scratch, fields) is written before it is read */
    px->timer = timer;
    px->alloc_size = alloc_size;
    return px;
fresh:
    px = calloc(1, size);
    if (px)
        px->alloc_size = size;
    return px;
}

void proxy_pxreq_put(struct proxy_worker *w, struct pxreq *px)
{
    if (w && w->nspare < PXREQ_SPARE_MAX && px->alloc_size <= 8192) {
        rill_io_timer_cancel(px->timer);
        px->live_next = w->spare;
        w->spare = px;
        w->nspare++;
        return;
    }
    rill_io_timer_free(px->timer);
    free(px);
}

bool proxy_live_add(rill_proxy *p, rill_io_loop *loop, struct pxreq *px)
{
    struct proxy_worker *w = worker_of(p, loop);
    if (!w || !w->holds)
        return false; /* px->worker stays NULL: nothing to undo */
    px->worker = w;
    px->hold = w->holds; /* on_stream made it current for this request */
    px->hold->requests++;
    px->live_next = w->live;
    px->live_prev = NULL;
    if (w->live)
        w->live->live_prev = px;
    w->live = px;
    return true;
}

void proxy_live_remove(struct pxreq *px)
{
    struct proxy_worker *w = px->worker;
    if (!w)
        return;
    if (px->hold && --px->hold->requests == 0 && px->hold != w->holds)
        hold_drop(w, px->hold); /* the last request on an older configuration */
    px->hold = NULL;
    if (px->live_prev)
        px->live_prev->live_next = px->live_next;
    else
        w->live = px->live_next;
    if (px->live_next)
        px->live_next->live_prev = px->live_prev;
    px->worker = NULL;
}

bool proxy_tunnel_link_add(rill_proxy *p, rill_io_loop *loop, struct proxy_tunnel_link *l,
                           struct config_hold *hold)
{
    struct proxy_worker *w = worker_of(p, loop);
    if (!w || !w->holds)
        return false;
    l->worker = w;
    l->hold = hold ? hold : w->holds; /* on_stream made it current for this request */
    l->hold->requests++;
    l->counted = NULL;
    l->prev = NULL;
    l->next = w->tunnels;
    if (w->tunnels)
        w->tunnels->prev = l;
    w->tunnels = l;
    return true;
}

void proxy_tunnel_link_count(struct proxy_tunnel_link *l, struct proxy_target *t)
{
    struct proxy_worker *w = l->worker;
    if (!w)
        return;
    if (l->counted)
        w->pools[l->counted->index].inflight--;
    struct client_pool *pool = t ? pool_of(w, t) : NULL;
    if (pool)
        pool->inflight++;
    l->counted = pool ? t : NULL;
}

void proxy_tunnel_link_remove(struct proxy_tunnel_link *l)
{
    struct proxy_worker *w = l->worker;
    if (!w)
        return;
    proxy_tunnel_link_count(l, NULL);
    if (--l->hold->requests == 0 && l->hold != w->holds)
        hold_drop(w, l->hold); /* the last user of an older configuration */
    l->hold = NULL;
    if (l->prev)
        l->prev->next = l->next;
    else
        w->tunnels = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->worker = NULL;
}

/* On the worker's thread after its loop stopped: requests still in flight lose both sides (the
 * clients end theirs without on_end), then the clients and the holds go. */
static void on_worker_exit(rill_io_loop *loop, void *user)
{
    rill_proxy *p = user;
    for (struct proxy_worker **link = &thread_workers; *link;) {
        struct proxy_worker *w = *link;
        if (w->proxy != p || w->loop != loop) {
            link = &w->next;
            continue;
        }
        pthread_mutex_lock(&p->lock);
        for (struct proxy_worker **all = &p->workers; *all; all = &(*all)->all_next)
            if (*all == w) {
                *all = w->all_next;
                break;
            }
        pthread_mutex_unlock(&p->lock);
        while (w->live)
            pxreq_abandon(w->live);
        while (w->spare) {
            struct pxreq *px = w->spare;
            w->spare = px->live_next;
            rill_io_timer_free(px->timer);
            free(px);
        }
        while (w->tunnels)
            proxy_tunnel_abandon(w->tunnels);
        proxy_health_free(w->health);
        for (size_t i = 0; i < w->npools; i++) {
            for (size_t k = 0; k < w->pools[i].n; k++)
                rill_client_free(w->pools[i].slots[k].c);
            free(w->pools[i].slots);
        }
        while (w->holds)
            hold_drop(w, w->holds);
        *link = w->next;
        free(w->pools);
        free(w);
    }
}

void rill_proxy_free(rill_proxy *p)
{
    if (!p)
        return;
    proxy_config_unref(atomic_load(&p->current));
    for (struct proxy_target *t = p->targets; t;) {
        struct proxy_target *next = t->next;
        free(t->url);
        free(t->origin);
        free(t->check.path);
        free(t);
        t = next;
    }
    proxy_spec_clear(&p->flags);
    upstream_tls_free(p);
    pthread_mutex_destroy(&p->lock);
    free(p->config_file);
    free(p);
}
