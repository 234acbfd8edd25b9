/* Active health checks: a GET of the route's check path to each backend every interval, on the
 * workers' loops with rill_client (HTTP/1.1 to http://, HTTP/2 to h2c://, ALPN to https://; no
 * thread, nothing blocks). Each backend is probed by one worker, the first whose turn finds it
 * (an atomic claim on the target); what the probes find is one atomic flag on the target, which
 * the balancing reads on every worker (proxy_balance.c). A backend whose probe fails `fails` times
 * in a row (no connection, no answer within the timeout, a status outside 200-399) leaves the
 * rotation until it passes `passes` times in a row; each change is one line on stderr, and so is
 * a route left with no backend at all. Only the backends of the configuration in force are
 * probed: a reload that drops one (or changes its check: another target) stops its probes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_internal.h"

struct probe {
    struct proxy_health *h;
    struct proxy_target *t;
    rill_client *c;         /* its own: probes neither wait behind requests nor count as ones */
    rill_client_stream *st; /* the probe in flight, or NULL */
    uint64_t due;           /* loop time the next one may start */
    int status;             /* the answer's status, 0 before one came */
    unsigned fails, passes; /* in a row */
};

struct proxy_health {
    struct proxy_worker *w;
    rill_io_loop *loop;
    rill_io_timer *timer; /* the next probe due; not armed when no backend has checks */
    uint64_t timer_at;
    struct probe **probes; /* by target index; NULL: not ours (or not yet) */
    size_t n;
};

static void tick(rill_io_timer *timer, void *arg);

/* The timer fires at `when` at the latest. */
static void schedule(struct proxy_health *h, uint64_t when)
{
    if (rill_io_loop_shutting_down(h->loop))
        return;
    if (!rill_io_timer_armed(h->timer) || when < h->timer_at) {
        h->timer_at = when;
        rill_io_timer_arm_at(h->timer, when);
    }
}

struct proxy_health *proxy_health_new(struct proxy_worker *w, rill_io_loop *loop)
{
    struct proxy_health *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->w = w;
    h->loop = loop;
    if (!(h->timer = rill_io_timer_new(loop, tick, h))) {
        free(h);
        return NULL;
    }
    schedule(h, rill_io_loop_now_ms(loop)); /* the first look on the loop's first turn */
    return h;
}

void proxy_health_reconfigured(struct proxy_health *h)
{
    schedule(h, rill_io_loop_now_ms(h->loop));
}

void proxy_health_free(struct proxy_health *h)
{
    if (!h)
        return;
    /* The loop has stopped: a client frees its probe in flight without calling on_end. */
    for (size_t i = 0; i < h->n; i++)
        if (h->probes[i]) {
            rill_client_free(h->probes[i]->c);
            free(h->probes[i]);
        }
    free(h->probes);
    rill_io_timer_free(h->timer);
    free(h);
}

/* Our probe of t: made when no worker has taken t yet; NULL when another has (or no memory). */
static struct probe *probe_of(struct proxy_health *h, struct proxy_target *t)
{
    if (t->index < h->n && h->probes[t->index])
        return h->probes[t->index];
    struct proxy_health *none = NULL;
    if (atomic_load_explicit(&t->prober, memory_order_relaxed) ||
        !atomic_compare_exchange_strong(&t->prober, &none, h))
        return NULL;
    if (t->index >= h->n) {
        size_t n = t->index + 8;
        struct probe **grown = realloc(h->probes, n * sizeof *grown);
        if (!grown)
            goto fail;
        memset(grown + h->n, 0, (n - h->n) * sizeof *grown);
        h->probes = grown;
        h->n = n;
    }
    struct probe *pr = calloc(1, sizeof *pr);
    if (!pr)
        goto fail;
    pr->h = h;
    pr->t = t;
    h->probes[t->index] = pr;
    return pr;
fail:
    atomic_store(&t->prober, NULL); /* another worker may have the memory */
    return NULL;
}

/* After t failed its checks: one line for each route of the configuration in force that has no
 * backend left (its requests get 503 without a line of their own). */
static void say_routes_left_empty(struct proxy_health *h, const struct proxy_target *t)
{
    struct proxy_config *c = proxy_worker_config(h->w);
    for (size_t i = 0; c && i < c->nroutes; i++) {
        const struct proxy_route *r = &c->routes[i];
        bool has = false, all_down = true;
        for (size_t k = 0; k < r->nbackends; k++) {
            has |= r->backends[k] == t;
            all_down &= atomic_load(&r->backends[k]->check_down);
        }
        if (has && all_down)
            fprintf(stderr,
                    "rill serve: proxy: no backend of the route %s passes its health checks: "
                    "its requests get 503\n",
                    r->prefix);
    }
}

static void result(struct probe *pr, bool ok, const char *why)
{
    struct proxy_target *t = pr->t;
    bool down = proxy_check_down(t);
    if (ok) {
        pr->fails = 0;
        if (down && ++pr->passes >= t->check.passes) {
            atomic_store(&t->check_down, false);
            atomic_store(&t->down_until, 0); /* reachable again: no passive penalty left */
            fprintf(stderr,
                    "rill serve: proxy: %s is up again (health check GET %s passed %u "
                    "time%s in a row)\n",
                    t->url, t->check.path, pr->passes, pr->passes == 1 ? "" : "s");
        }
        return;
    }
    pr->passes = 0;
    if (!down && ++pr->fails >= t->check.fails) {
        atomic_store(&t->check_down, true);
        fprintf(stderr,
                "rill serve: proxy: %s is down (health check GET %s: %s; %u time%s in a "
                "row)\n",
                t->url, t->check.path, why, pr->fails, pr->fails == 1 ? "" : "s");
        say_routes_left_empty(pr->h, t);
    }
}

static void on_response(rill_client_stream *st, int status, const rill_header *fields, size_t n,
                        void *user)
{
    struct probe *pr = user;
    (void)st, (void)fields, (void)n;
    pr->status = status;
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct probe *pr = user;
    (void)st;
    pr->st = NULL;
    if (rill_io_loop_shutting_down(pr->h->loop))
        return; /* cut by the shutdown: says nothing of the backend */
    char reason[320];
    bool ok = err == 0 && pr->status >= 200 && pr->status <= 399;
    if (err == RILL_ERR_TIMEOUT)
        snprintf(reason, sizeof reason, "no answer within %u ms", pr->t->check.timeout_ms);
    else if (err)
        snprintf(reason, sizeof reason, "%s", why ? why : rill_strerror(err));
    else
        snprintf(reason, sizeof reason, "status %d", pr->status);
    result(pr, ok, reason);
    uint64_t now = rill_io_loop_now_ms(pr->h->loop);
    schedule(pr->h, pr->due > now ? pr->due : now);
}

static void start(struct probe *pr, const struct proxy_config *c, uint64_t now)
{
    struct proxy_target *t = pr->t;
    pr->due = now + t->check.interval_ms;
    pr->status = 0;
    char err[256] = "";
    if (!pr->c) {
        rill_client_options o;
        proxy_client_options(t, c, &o);
        if (t->check.timeout_ms < o.connect_timeout_ms)
            o.connect_timeout_ms = t->check.timeout_ms;
        o.request_timeout_ms = t->check.timeout_ms; /* connecting included */
        if (rill_client_new(pr->h->loop, &o, &pr->c, err, sizeof err) < 0) {
            pr->c = NULL;
            result(pr, false, err[0] ? err : "cannot make a client");
            return;
        }
    }
    static const char ua[] = "rill-health-check";
    rill_header f = {(const uint8_t *)"user-agent", 10, (const uint8_t *)ua, sizeof ua - 1, 0};
    static const rill_client_callbacks cb = {
        .size = sizeof cb, .on_response = on_response, .on_end = on_end};
    int rc = rill_client_request(pr->c, "GET", t->check.path, &f, 1, NULL, 0, &cb, pr, &pr->st);
    if (rc < 0) {
        pr->st = NULL;
        result(pr, false, rill_strerror(rc));
    }
}

/* Starts the probes that are due, among the backends with checks in the configuration in force,
 * and sets the timer for the next one. */
static void tick(rill_io_timer *timer, void *arg)
{
    struct proxy_health *h = arg;
    (void)timer;
    if (rill_io_loop_shutting_down(h->loop))
        return;
    struct proxy_config *c = proxy_worker_config(h->w);
    uint64_t now = rill_io_loop_now_ms(h->loop), next = UINT64_MAX;
    for (size_t i = 0; c && i < c->nroutes; i++) {
        const struct proxy_route *r = &c->routes[i];
        for (size_t k = 0; k < r->nbackends; k++) {
            struct proxy_target *t = r->backends[k];
            struct probe *pr = t->check.path ? probe_of(h, t) : NULL;
            if (!pr)
                continue;
            if (!pr->st && pr->due <= now)
                start(pr, c, now);
            if (!pr->st && pr->due < next) /* one in flight schedules its next when it ends */
                next = pr->due;
        }
    }
    if (next != UINT64_MAX)
        schedule(h, next);
}
