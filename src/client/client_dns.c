/* The client's resolver: c-ares' ares_getaddrinfo with its sockets watched by the loop
 * (rill_io_watch) and its retransmit deadlines on a loop timer, so the loop never waits for DNS.
 * A name is two lookups at once, IPv6 and IPv4 (RFC 8305 §3), whose addresses are handed over as
 * they come: the IPv6 answer's at once, the IPv4 answer's after it or after the Resolution Delay.
 * c-ares may answer inside ares_getaddrinfo (a /etc/hosts hit) or inside ares_process_fd; the
 * answer is kept and handed over from a 0 ms timer, so the caller is never re-entered from inside
 * c-ares (and may start or cancel jobs from its callback). */
#include <arpa/inet.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client_dns.h"

bool client_dns_env_hosts;
const char *client_dns_servers;

#define DNS_MAX_SOCKETS 16 /* c-ares uses one UDP (and maybe one TCP) socket per server */

struct dns_sock {
    int fd;
    rill_io_watcher *w;
};

struct client_dns {
    rill_io_loop *loop;
    ares_channel channel; /* made on the first name that needs DNS */
    bool have_channel;
    rill_io_timer *timeout;          /* c-ares' next deadline */
    rill_io_timer *deliver;          /* hands the addresses over */
    rill_io_timer *resolution_delay; /* an IPv4 answer waits this long for the IPv6 one */
    struct dns_sock socks[DNS_MAX_SOCKETS];
    size_t nsocks;
    /* The job */
    bool busy;
    unsigned gen; /* bumped per job: a late c-ares answer for an older job is dropped */
    client_dns_fn fn;
    void *user;
    uint16_t port;
    char host[256];
    unsigned outstanding; /* lookups not answered yet */
    /* Its outcome: addrs[0..nhanded) were handed over, the rest waits */
    int err; /* the last lookup's failure, reported if no lookup gave an address */
    char why[320];
    struct rill_io_addr addrs[CLIENT_DNS_MAX_ADDRS];
    size_t naddrs, nhanded;
};

/* What one ares_getaddrinfo call belongs to. */
struct dns_query {
    struct client_dns *d;
    unsigned gen;
    int family;
};

static void rearm_timeout(struct client_dns *d)
{
    struct timeval tv;
    if (d->have_channel && ares_timeout(d->channel, NULL, &tv))
        rill_io_timer_arm(d->timeout,
                          (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u);
    else
        rill_io_timer_cancel(d->timeout);
}

static void on_timeout(rill_io_timer *t, void *arg)
{
    struct client_dns *d = arg;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timeout(d);
}

static void on_ready(rill_io_watcher *w, int fd, unsigned events, void *user)
{
    struct client_dns *d = user;
    ares_process_fd(d->channel, (events & RILL_IO_READABLE) ? fd : ARES_SOCKET_BAD,
                    (events & RILL_IO_WRITABLE) ? fd : ARES_SOCKET_BAD);
    rearm_timeout(d);
}

/* c-ares opens, changes or closes one of its sockets: the loop follows. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct client_dns *d = data;
    unsigned ev = (readable ? RILL_IO_READABLE : 0u) | (writable ? RILL_IO_WRITABLE : 0u);
    size_t i = 0;
    while (i < d->nsocks && d->socks[i].fd != fd)
        i++;
    if (i < d->nsocks) {
        if (ev) {
            rill_io_watch_set(d->socks[i].w, ev);
        } else {
            rill_io_unwatch(d->socks[i].w);
            d->socks[i] = d->socks[--d->nsocks];
        }
        return;
    }
    /* A socket we cannot watch only costs that query its answer: c-ares times it out. */
    if (ev && d->nsocks < DNS_MAX_SOCKETS &&
        rill_io_watch(d->loop, fd, ev, on_ready, d, &d->socks[d->nsocks].w) == RILL_OK)
        d->socks[d->nsocks++].fd = fd;
}

/* Hands what waits over on the next turn. */
static void deliver_soon(struct client_dns *d)
{
    rill_io_timer_cancel(d->resolution_delay);
    if (rill_io_timer_arm(d->deliver, 0) < 0)
        d->busy = false; /* nothing else can tell the caller; its own timeouts will */
}

static void fail(struct client_dns *d, int err, const char *what)
{
    d->err = err;
    snprintf(d->why, sizeof d->why, "cannot resolve %s: %s", d->host, what);
}

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct dns_query *q = arg;
    struct client_dns *d = q->d;
    int family = q->family;
    bool current =
        q->gen == d->gen && d->busy && status != ARES_ECANCELLED && status != ARES_EDESTRUCTION;
    free(q);
    if (!current) {
        ares_freeaddrinfo(res);
        return;
    }
    d->outstanding--;
    size_t before = d->naddrs, cap = d->naddrs + CLIENT_DNS_MAX_ADDRS / 2;
    for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n && d->naddrs < cap;
         n = n->ai_next) {
        if (n->ai_family != family || (size_t)n->ai_addrlen > sizeof d->addrs[0].ss)
            continue;
        struct rill_io_addr *a = &d->addrs[d->naddrs++];
        memset(a, 0, sizeof *a);
        memcpy(&a->ss, n->ai_addr, n->ai_addrlen);
        a->len = (socklen_t)n->ai_addrlen;
    }
    ares_freeaddrinfo(res);
    if (status != ARES_SUCCESS || d->naddrs == before)
        fail(d, status == ARES_ENOMEM ? RILL_ERR_NOMEM : RILL_ERR_NOT_FOUND,
             status == ARES_SUCCESS ? "no IPv4 or IPv6 address" : ares_strerror(status));
    /* IPv4 addresses while the IPv6 lookup is still out: they wait a moment for it (§3) */
    if (family == AF_INET && d->outstanding && d->naddrs > before) {
        if (rill_io_timer_arm(d->resolution_delay, CLIENT_DNS_RESOLUTION_DELAY_MS) < 0)
            deliver_soon(d);
        return;
    }
    if (d->naddrs > d->nhanded || !d->outstanding)
        deliver_soon(d);
}

static void on_deliver(rill_io_timer *t, void *arg)
{
    (void)t;
    struct client_dns *d = arg;
    if (!d->busy)
        return;
    bool final = d->outstanding == 0;
    size_t from = d->nhanded, n = d->naddrs - d->nhanded;
    if (!n && !final)
        return;
    for (size_t i = from; i < d->naddrs; i++) {
        if (d->addrs[i].ss.ss_family == AF_INET)
            ((struct sockaddr_in *)(void *)&d->addrs[i].ss)->sin_port = htons(d->port);
        else
            ((struct sockaddr_in6 *)(void *)&d->addrs[i].ss)->sin6_port = htons(d->port);
    }
    d->nhanded = d->naddrs;
    if (final)
        d->busy = false; /* before the call: fn may start the next job */
    int err = final && !d->naddrs ? d->err : RILL_OK;
    d->fn(err, err ? d->why : NULL, d->addrs + from, n, final, d->user);
}

static void on_resolution_delay(rill_io_timer *t, void *arg)
{
    (void)t;
    on_deliver(NULL, arg); /* a timer already: not inside c-ares */
}

/* An address of family (a literal in text) at d->addrs[d->naddrs]. */
static bool add_literal(struct client_dns *d, int family, const char *text)
{
    struct rill_io_addr *a = &d->addrs[d->naddrs];
    memset(a, 0, sizeof *a);
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&a->ss;
    if (family == AF_INET && inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        a->len = sizeof *v4;
    } else if (family == AF_INET6 && inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        a->len = sizeof *v6;
    } else {
        return false;
    }
    d->naddrs++;
    return true;
}

/* The answer without c-ares: a literal address, or localhost, which is the loopback addresses
 * whatever the hosts file says (RFC 6761 §6.3, as curl and browsers do; c-ares 1.18 also leaks
 * when it makes the IPv6 one up itself). */
static bool literal(struct client_dns *d)
{
    size_t len = strlen(d->host);
    if (strcasecmp(d->host, "localhost") == 0 ||
        (len > 10 && strcasecmp(d->host + len - 10, ".localhost") == 0)) {
        add_literal(d, AF_INET6, "::1");
        add_literal(d, AF_INET, "127.0.0.1");
        return true;
    }
    return add_literal(d, AF_INET, d->host) || add_literal(d, AF_INET6, d->host);
}

static int open_channel(struct client_dns *d)
{
    if (d->have_channel)
        return RILL_OK;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = d;
    int st = ares_init_options(&d->channel, &o, ARES_OPT_SOCK_STATE_CB);
    if (st != ARES_SUCCESS) {
        fail(d, st == ARES_ENOMEM ? RILL_ERR_NOMEM : RILL_ERR_NOT_FOUND, ares_strerror(st));
        return d->err;
    }
    if (client_dns_servers && (st = ares_set_servers_ports_csv(d->channel, client_dns_servers))) {
        ares_destroy(d->channel);
        fail(d, RILL_ERR_NOT_FOUND, ares_strerror(st));
        return d->err;
    }
    d->have_channel = true;
    return RILL_OK;
}

int client_dns_resolve(struct client_dns *d, const char *host, uint16_t port, client_dns_fn fn,
                       void *user)
{
    client_dns_cancel(d);
    d->gen++;
    d->busy = true;
    d->fn = fn;
    d->user = user;
    d->port = port;
    d->naddrs = d->nhanded = 0;
    d->outstanding = 0;
    d->err = RILL_ERR_NOT_FOUND;
    snprintf(d->host, sizeof d->host, "%s", host);
    if (literal(d) || open_channel(d) < 0) { /* the answer, or a failure reported like a lookup's */
        deliver_soon(d);
        return d->busy ? RILL_OK : RILL_ERR_NOMEM;
    }
    /* IPv6 first: from a hosts file both answer at once, in this order */
    static const int families[2] = {AF_INET6, AF_INET};
    struct dns_query *q[2] = {malloc(sizeof *q[0]), malloc(sizeof *q[1])};
    if (!q[0] || !q[1]) {
        free(q[0]);
        free(q[1]);
        d->busy = false;
        return RILL_ERR_NOMEM;
    }
    d->outstanding = 2;
    unsigned gen = d->gen;
    for (int i = 0; i < 2; i++) {
        q[i]->d = d;
        q[i]->gen = gen;
        q[i]->family = families[i];
        struct ares_addrinfo_hints hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = families[i];
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = client_dns_env_hosts ? ARES_AI_ENVHOSTS : 0;
        /* may answer at once (a hosts file): on_answer then waits for the deliver timer */
        ares_getaddrinfo(d->channel, d->host, NULL, &hints, on_answer, q[i]);
    }
    rearm_timeout(d);
    return RILL_OK;
}

void client_dns_cancel(struct client_dns *d)
{
    if (!d->busy)
        return;
    d->busy = false;
    rill_io_timer_cancel(d->deliver);
    rill_io_timer_cancel(d->resolution_delay);
    if (d->have_channel)
        ares_cancel(d->channel); /* its answer callbacks run now, seeing busy false */
    rearm_timeout(d);
}

bool client_dns_busy(const struct client_dns *d)
{
    return d->busy;
}

struct client_dns *client_dns_new(rill_io_loop *loop)
{
    struct client_dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    d->timeout = rill_io_timer_new(loop, on_timeout, d);
    d->deliver = rill_io_timer_new(loop, on_deliver, d);
    d->resolution_delay = rill_io_timer_new(loop, on_resolution_delay, d);
    if (!d->timeout || !d->deliver || !d->resolution_delay) {
        client_dns_free(d);
        return NULL;
    }
    return d;
}

void client_dns_free(struct client_dns *d)
{
    if (!d)
        return;
    d->busy = false;
    if (d->have_channel)
        ares_destroy(d->channel); /* closes its sockets: on_sock_state unwatches them first */
    for (size_t i = 0; i < d->nsocks; i++)
        rill_io_unwatch(d->socks[i].w);
    rill_io_timer_free(d->timeout);
    rill_io_timer_free(d->deliver);
    rill_io_timer_free(d->resolution_delay);
    free(d);
}
