/* Which backend of a route a request goes to: round robin (one atomic counter per route, even
 * across workers) or least connections (the fewest requests in flight from this worker: per
 * worker, so no shared counter on the request path), both skipping backends that recently failed
 * to connect (passive health) unless every one of them did, and never giving one that failed its
 * active health checks (proxy_health.c). */
#include <stdatomic.h>

#include "proxy/proxy_internal.h"

bool proxy_check_down(const struct proxy_target *t)
{
    return atomic_load_explicit(&((struct proxy_target *)t)->check_down, memory_order_relaxed);
}

static bool is_down(const struct proxy_target *t, uint64_t now)
{
    return atomic_load_explicit(&((struct proxy_target *)t)->down_until, memory_order_relaxed) >
               now ||
           proxy_check_down(t);
}

/* All of them down: the first from `from` (`skip` of them passed over) that only failed to
 * connect, tried anyway; none when every one failed its checks. */
static struct proxy_target *any_left(struct proxy_route *r, unsigned from, unsigned skip,
                                     unsigned *at)
{
    unsigned n = (unsigned)r->nbackends;
    for (unsigned k = skip; k < n; k++) {
        unsigned i = (from + k) % n;
        if (!proxy_check_down(r->backends[i])) {
            *at = i;
            return r->backends[i];
        }
    }
    return NULL;
}

struct proxy_target *proxy_pick(struct proxy_route *r, const struct proxy_worker *w, unsigned *at)
{
    unsigned n = (unsigned)r->nbackends;
    unsigned turn = atomic_fetch_add_explicit(&r->turn, 1, memory_order_relaxed);
    if (n == 1) {
        *at = 0;
        return proxy_check_down(r->backends[0]) ? NULL : r->backends[0];
    }
    uint64_t now = rill_io_now_ms();
    unsigned best = n; /* none up yet */
    unsigned best_load = 0;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (turn + k) % n;
        if (is_down(r->backends[i], now))
            continue;
        if (r->s.balance == BALANCE_ROUND_ROBIN) {
            best = i;
            break;
        }
        unsigned load = proxy_worker_inflight(w, r->backends[i]);
        if (best == n || load < best_load)
            best = i, best_load = load;
    }
    if (best == n) /* all down: try them anyway, in turn */
        return any_left(r, turn % n, 0, at);
    *at = best;
    return r->backends[best];
}

struct proxy_target *proxy_pick_next(struct proxy_route *r, unsigned *at)
{
    /* The route's next one in order: the round-robin turns stay the other requests'. One that is
     * down is passed over unless it is all that is left. */
    unsigned n = (unsigned)r->nbackends;
    uint64_t now = rill_io_now_ms();
    for (unsigned k = 1; k < n; k++) {
        unsigned i = (*at + k) % n;
        if (!is_down(r->backends[i], now)) {
            *at = i;
            return r->backends[i];
        }
    }
    return any_left(r, *at, 1, at);
}

void proxy_mark_down(struct proxy_target *t, uint32_t down_ms)
{
    if (down_ms)
        atomic_store_explicit(&t->down_until, rill_io_now_ms() + down_ms, memory_order_relaxed);
}
