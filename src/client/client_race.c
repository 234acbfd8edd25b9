/* Happy Eyeballs v2 (RFC 8305 §4-5) for one new connection: its attempts, one timer for the next
 * one, and the first TCP connect (rill_io_conn_callbacks.on_connected) taking the connection. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_dns.h"
#include "client/client_race.h"

/* RFC 8305 §8: a Connection Attempt Delay below 10 ms would only add load. */
#define MIN_ATTEMPT_DELAY_MS 10u

struct client_race {
    struct client_race_target t;
    client_race_won_fn won;
    client_race_lost_fn lost;
    void *user;
    rill_io_timer *timer; /* the next attempt (or a loss to report from the loop) */
    uint32_t delay_ms;    /* 0: an attempt only once the one before failed */
    bool final;           /* no more addresses will come */
    bool adding;          /* inside client_race_add: a loss waits for the timer */
    bool done;            /* won (the others are being closed) or freed */
    int last_family;      /* of the last attempt started; 0 before the first */
    unsigned inflight;
    uint64_t last_start; /* loop ms of the last attempt started */
    int err;             /* the last attempt's failure */
    char why[400];
    size_t naddrs;
    struct rill_io_addr addrs[CLIENT_DNS_MAX_ADDRS];
    bool tried[CLIENT_DNS_MAX_ADDRS];
    rill_io_conn *io[CLIENT_DNS_MAX_ADDRS]; /* the attempts under way, by address */
};

static const struct rill_io_conn_callbacks race_callbacks;

static void trace(const struct client_race *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void trace(const struct client_race *r, const char *fmt, ...)
{
    if (!r->t.trace)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->t.trace(line, r->t.trace_user);
}

const char *client_io_detail(const rill_io_loop *loop)
{
    const char *e = rill_io_loop_last_error(loop);
    const char *colon = strstr(e, ": ");
    return colon ? colon + 2 : e;
}

static bool same_addr(const struct rill_io_addr *a, const struct rill_io_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* The next address (§4): the caller's first address (its last connection's) first, then the families
 * in turn, IPv6 first, each in the resolver's order. -1 when none is left. */
static int pick(const struct client_race *r)
{
    const struct rill_io_addr *first = r->t.first;
    if (!r->last_family && first && first->len)
        for (size_t i = 0; i < r->naddrs; i++)
            if (!r->tried[i] && same_addr(&r->addrs[i], first))
                return (int)i;
    int want = r->last_family == AF_INET6 ? AF_INET : AF_INET6, other = -1;
    for (size_t i = 0; i < r->naddrs; i++) {
        if (r->tried[i])
            continue;
        if (r->addrs[i].ss.ss_family == want)
            return (int)i;
        if (other < 0)
            other = (int)i;
    }
    return other;
}

static void failed(struct client_race *r, const struct rill_io_addr *addr, int err)
{
    char at[64];
    rill_io_addr_format(addr, at, sizeof at);
    const char *detail =
        err == RILL_ERR_STATE ? "the loop is shutting down" : client_io_detail(r->t.loop);
    r->err = err;
    snprintf(r->why, sizeof r->why, "cannot connect to %s: %s", r->t.authority, detail);
    trace(r, "cannot connect to %s: %s", at, detail);
}

/* Starts the next address's attempt; false when none is left that can even start. */
static bool start_one(struct client_race *r)
{
    if (rill_io_loop_shutting_down(r->t.loop)) { /* it closed the attempts: no new ones */
        for (size_t k = 0; k < r->naddrs; k++)
            r->tried[k] = true;
        r->final = true;
        return false;
    }
    int i;
    while ((i = pick(r)) >= 0) {
        struct rill_io_addr *addr = &r->addrs[i];
        r->tried[i] = true;
        r->last_family = addr->ss.ss_family;
        char at[64];
        rill_io_addr_format(addr, at, sizeof at);
        trace(r, "trying %s", at);
        int rc = rill_io_connect(r->t.loop, addr, r->t.tls, r->t.tls ? r->t.sni : NULL,
                                 &race_callbacks, r, &r->io[i]);
        if (rc < 0) {
            failed(r, addr, rc); /* e.g. no IPv6 route: the next address at once */
            continue;
        }
        r->inflight++;
        r->last_start = rill_io_loop_now_ms(r->t.loop);
        if (r->delay_ms)
            rill_io_timer_arm(r->timer, r->delay_ms);
        return true;
    }
    return false;
}

static bool untried(const struct client_race *r)
{
    for (size_t i = 0; i < r->naddrs; i++)
        if (!r->tried[i])
            return true;
    return false;
}

/* What is due: an attempt when none is under way or overlap says one may join them (the delay
 * passed, or one failed); the loss once nothing is under way, left or to come. */
static void step(struct client_race *r, bool overlap)
{
    if (!r->inflight || (overlap && r->delay_ms)) {
        if (start_one(r))
            return;
    } else if (r->delay_ms && untried(r)) {
        if (!rill_io_timer_armed(r->timer)) /* addresses came after the timer found none */
            rill_io_timer_arm_at(r->timer, r->last_start + r->delay_ms);
        return;
    }
    /* the attempts under way, or the addresses to come */
    if (r->inflight || !r->final || untried(r))
        return;
    if (r->adding) { /* never inside client_race_add: its caller is still working */
        rill_io_timer_arm(r->timer, 0);
        return;
    }
    if (!r->err) {
        r->err = RILL_ERR_IO;
        snprintf(r->why, sizeof r->why, "cannot connect to %s: no address", r->t.authority);
    }
    r->lost(r->err, r->why, r->user);
}

static void on_timer(rill_io_timer *t, void *arg)
{
    (void)t;
    step(arg, true);
}

static size_t slot_of(const struct client_race *r, const rill_io_conn *io)
{
    size_t i = 0;
    while (i < r->naddrs && r->io[i] != io)
        i++;
    return i;
}

static void on_connected(rill_io_conn *io)
{
    struct client_race *r = rill_io_conn_user(io);
    size_t i = slot_of(r, io);
    r->io[i] = NULL;
    r->inflight--;
    r->done = true; /* the others' on_close now only forget them */
    rill_io_timer_cancel(r->timer);
    unsigned others = r->inflight;
    for (size_t k = 0; k < r->naddrs; k++)
        if (r->io[k])
            rill_io_conn_close(r->io[k], false);
    char at[64];
    rill_io_addr_format(&r->addrs[i], at, sizeof at);
    if (others)
        trace(r, "%s answered first; %u other attempt%s closed", at, others,
                     others == 1 ? "" : "s");
    r->won(io, &r->addrs[i], r->user); /* frees r */
}

static void on_close(rill_io_conn *io, int err)
{
    struct client_race *r = rill_io_conn_user(io);
    size_t i = slot_of(r, io);
    if (i == r->naddrs)
        return;
    r->io[i] = NULL;
    r->inflight--;
    if (r->done)
        return;
    failed(r, &r->addrs[i], err ? err : RILL_ERR_IO);
    step(r, true); /* the next address at once (§5) */
}

static const struct rill_io_conn_callbacks race_callbacks = {
    .size = sizeof race_callbacks,
    .on_close = on_close,
    .on_connected = on_connected,
};

struct client_race *client_race_new(const struct client_race_target *t, client_race_won_fn won,
                                    client_race_lost_fn lost, void *user)
{
    struct client_race *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->timer = rill_io_timer_new(t->loop, on_timer, r);
    if (!r->timer) {
        free(r);
        return NULL;
    }
    r->t = *t;
    r->won = won;
    r->lost = lost;
    r->user = user;
    r->delay_ms = t->attempt_delay_ms;
    if (r->delay_ms && r->delay_ms < MIN_ATTEMPT_DELAY_MS)
        r->delay_ms = MIN_ATTEMPT_DELAY_MS;
    return r;
}

void client_race_add(struct client_race *r, const struct rill_io_addr *addrs, size_t n, bool final)
{
    for (size_t i = 0; i < n && r->naddrs < CLIENT_DNS_MAX_ADDRS; i++)
        r->addrs[r->naddrs++] = addrs[i];
    r->final = r->final || final;
    r->adding = true;
    step(r, false);
    r->adding = false;
}

void client_race_free(struct client_race *r)
{
    if (!r)
        return;
    r->done = true;
    for (size_t k = 0; k < r->naddrs; k++)
        if (r->io[k])
            rill_io_conn_close(r->io[k], false); /* its on_close only forgets it */
    rill_io_timer_free(r->timer);
    free(r);
}
