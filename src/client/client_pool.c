/* The client's connections to its origin: resolving and connecting (each new connection races
 * the addresses, client_race.c), the protocol chosen at open (ALPN or the options), which
 * connection takes which waiting request, and how many connections there are. An HTTP/2 origin gets
 * one connection that multiplexes everything; an HTTP/1.1 origin a pool of up to max_connections
 * keep-alive connections, each carrying one request at a time and taking the next waiting one when
 * its response ended cleanly. A request that meets a keep-alive connection the server had closed
 * (the close arrives before any byte of its response) goes again, once, on a new connection when it
 * is idempotent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "client/client_race.h"

static const struct rill_io_conn_callbacks conn_callbacks;

static void conn_link(rill_client *cl, struct client_conn *cc)
{
    cc->prev_conn = cl->conns_tail;
    cc->next_conn = NULL;
    if (cl->conns_tail)
        cl->conns_tail->next_conn = cc;
    else
        cl->conns = cc;
    cl->conns_tail = cc;
    cl->nconns++;
}

static void conn_unlink(rill_client *cl, struct client_conn *cc)
{
    if (cc->prev_conn)
        cc->prev_conn->next_conn = cc->next_conn;
    else
        cl->conns = cc->next_conn;
    if (cc->next_conn)
        cc->next_conn->prev_conn = cc->prev_conn;
    else
        cl->conns_tail = cc->prev_conn;
    cc->prev_conn = cc->next_conn = NULL;
    cl->nconns--;
}

/* Connecting, or open and taking requests (not closing, not refusing new ones). */
static bool conn_alive(const struct client_conn *cc)
{
    return !cc->opened || (!cc->c.closing && !cc->no_new);
}

static bool any_alive(const rill_client *cl)
{
    for (const struct client_conn *cc = cl->conns; cc; cc = cc->next_conn)
        if (conn_alive(cc))
            return true;
    return false;
}

/* Fails every request that waits for a connection (none could be made). */
static void fail_pending(rill_client *cl, int err, const char *why)
{
    rill_client_stream *st = cl->head;
    while (st) {
        rill_client_stream *next = st->next;
        if (st->state == ST_PENDING)
            client_stream_finish(st, err, why);
        st = next;
    }
}

/* A connection could not be made: the waiting requests fail only when no other connection will
 * carry them; else they wait for those, and the pool stops growing until a connection opens. */
static void connect_failed(rill_client *cl, int err, const char *why)
{
    if (any_alive(cl))
        cl->grow_blocked = true;
    else
        fail_pending(cl, err, why);
}

/* The connect timer at the earliest deadline of the connections still connecting. */
static void arm_connect_timer(rill_client *cl)
{
    uint64_t at = UINT64_MAX;
    for (const struct client_conn *cc = cl->conns; cc; cc = cc->next_conn)
        if (!cc->opened && cc->connect_deadline && cc->connect_deadline < at)
            at = cc->connect_deadline;
    if (at == UINT64_MAX)
        rill_io_timer_cancel(cl->connect_timer);
    else
        rill_io_timer_arm_at(cl->connect_timer, at);
}

static void on_race_won(rill_io_conn *io, const struct rill_io_addr *addr, void *user);
static void on_race_lost(int err, const char *why, void *user);

/* The race's line, already formatted, to the client's trace (not through client_trace's format). */
static void race_trace(const char *line, void *user)
{
    rill_client *c = user;
    if (c->trace)
        c->trace(c, line, c->trace_user);
}

/* A new connection: its race over the addresses resolved so far (more may come). False without
 * memory. */
static bool open_conn(rill_client *cl)
{
    struct client_conn *cc = calloc(1, sizeof *cc);
    if (!cc)
        return false;
    cc->client = cl;
    struct client_race_target t = {
        .loop = cl->loop,
        .tls = cl->tls,
        .sni = cl->origin.host,
        .authority = cl->origin.authority,
        .attempt_delay_ms = cl->opt.attempt_delay_ms,
        .first = &cl->last_addr, /* len 0 until a connection won */
        .trace = race_trace,
        .trace_user = cl,
    };
    cc->race = client_race_new(&t, on_race_won, on_race_lost, cc);
    if (!cc->race) {
        free(cc);
        return false;
    }
    cc->id = ++cl->connections;
    if (cl->opt.connect_timeout_ms)
        cc->connect_deadline = rill_io_loop_now_ms(cl->loop) + cl->opt.connect_timeout_ms;
    conn_link(cl, cc);
    arm_connect_timer(cl);
    client_race_add(cc->race, cl->addrs, cl->naddrs, cl->dns_final);
    return true;
}

/* A TCP connect won cc's race: the connection is cc's from now on (with TLS its handshake
 * begins; on_open follows either way). */
static void on_race_won(rill_io_conn *io, const struct rill_io_addr *addr, void *user)
{
    struct client_conn *cc = user;
    rill_client *cl = cc->client;
    cl->last_addr = *addr; /* before the race goes: addr is its */
    client_race_free(cc->race);
    cc->race = NULL;
    rill_io_conn_set_callbacks(io, &conn_callbacks);
    rill_io_conn_set_user(io, cc);
    conn_init(&cc->c, io,
              cl->opt.idle_timeout_ms ? cl->opt.idle_timeout_ms : CLIENT_DEFAULT_IDLE_TIMEOUT_MS);
}

/* cc never got a socket (every address failed, or the connect deadline passed during the race):
 * it goes, and the waiting requests fail unless another connection will carry them. */
static void race_over(struct client_conn *cc, int err, const char *why)
{
    rill_client *cl = cc->client;
    client_race_free(cc->race);
    cc->race = NULL;
    conn_unlink(cl, cc);
    arm_connect_timer(cl);
    if (!cl->freeing) {
        connect_failed(cl, err, why);
        rill_io_timer_arm(cl->kick, 0);
    }
    free(cc);
}

static void on_race_lost(int err, const char *why, void *user)
{
    struct client_conn *cc = user;
    char copy[400]; /* why is the race's */
    snprintf(copy, sizeof copy, "%s", why);
    race_over(cc, err, copy);
}

/* How many new connections the waiting requests call for. Each connecting or idle HTTP/1.1
 * connection will take one of them; an HTTP/2 connection takes them all (as its stream limit
 * allows). More than one connection only once the origin is known to speak HTTP/1.1 (ALPN, the
 * options, a declined h2c Upgrade): until then the first connection may turn out to be HTTP/2. */
static unsigned conns_wanted(const rill_client *cl)
{
    if (!cl->npending)
        return 0;
    size_t spare = 0, spare_fresh = 0, fresh = cl->npending_fresh;
    bool any = false;
    for (const struct client_conn *cc = cl->conns; cc; cc = cc->next_conn) {
        if (!conn_alive(cc))
            continue;
        any = true;
        if (cc->opened && cc->h2)
            return 0;
        if (!cc->opened || !cc->h1_cur) {
            spare++;
            if (!cc->opened || !cc->served)
                spare_fresh++;
        }
    }
    if (!cl->h1_origin) /* one connection, to learn the protocol; after an HTTP/2 one's end */
        return !any && cl->nconns == 0 ? 1 : 0;
    if (any && cl->grow_blocked)
        return 0;
    size_t need = cl->npending > spare ? cl->npending - spare : 0;
    if (fresh > spare_fresh && fresh - spare_fresh > need)
        need = fresh - spare_fresh;
    size_t room = cl->max_connections > cl->nconns ? cl->max_connections - cl->nconns : 0;
    return (unsigned)(need < room ? need : room);
}

/* A request that must go on a new connection while the pool is full of used idle ones: the
 * oldest idle one closes to make room (its on_close dispatches again). */
static void make_room_for_fresh(rill_client *cl)
{
    if (cl->nconns < cl->max_connections || !cl->h1_origin || !cl->npending_fresh)
        return;
    for (struct client_conn *cc = cl->conns; cc; cc = cc->next_conn) {
        if (cc->opened && !cc->c.closing && cc->h1 && !cc->h1_cur && cc->served) {
            cc->no_new = true;
            conn_close(&cc->c);
            return;
        }
    }
}

/* Addresses as they come (IPv6 and IPv4 answers apart): the connections racing already get
 * them, and the waiting requests get as many new connections as they call for. */
static void on_resolved(int err, const char *why, const struct rill_io_addr *addrs, size_t n,
                        bool final, void *user)
{
    rill_client *cl = user;
    if (err) {
        connect_failed(cl, err, why);
        return;
    }
    if (n) {
        struct rill_io_addr *grown = realloc(cl->addrs, (cl->naddrs + n) * sizeof *grown);
        if (!grown) {
            if (!cl->naddrs) {
                connect_failed(cl, RILL_ERR_NOMEM, "out of memory");
                return;
            }
            n = 0; /* these are lost; the races go on with what came before */
        } else {
            memcpy(grown + cl->naddrs, addrs, n * sizeof *addrs);
            cl->addrs = grown;
        }
    }
    if (n) {
        if (!cl->naddrs)
            client_trace(cl, "%s resolved to %zu address%s%s", cl->origin.host, n,
                         n == 1 ? "" : "es", final ? "" : " (more may follow)");
        else
            client_trace(cl, "%s: %zu more address%s", cl->origin.host, n, n == 1 ? "" : "es");
        cl->naddrs += n;
    }
    cl->dns_final = final;
    for (struct client_conn *cc = cl->conns, *next; cc; cc = next) {
        next = cc->next_conn; /* never freed inside client_race_add */
        if (cc->race)
            client_race_add(cc->race, addrs, n, final);
    }
    if (!cl->naddrs)
        return;
    unsigned want = conns_wanted(cl);
    for (unsigned i = 0; i < want; i++) {
        if (!open_conn(cl)) {
            connect_failed(cl, RILL_ERR_NOMEM, "out of memory");
            return;
        }
    }
}

/* Resolves the origin (again for each round of new connections, without blocking the loop:
 * on_resolved connects). */
static void connect_now(rill_client *cl)
{
    if (client_dns_busy(cl->dns))
        return;
    const char *colon = strrchr(cl->origin.authority, ':');
    uint16_t port = (uint16_t)strtoul(colon ? colon + 1 : "0", NULL, 10);
    cl->naddrs = 0;
    cl->dns_final = false;
    if (client_dns_resolve(cl->dns, cl->origin.host, port, on_resolved, cl) < 0)
        connect_failed(cl, RILL_ERR_NOMEM, NULL);
}

/* Sends what waits and cc can take: HTTP/2 as many as its stream limit allows, HTTP/1.1 one
 * when it is idle. */
static void conn_send(rill_client *cl, struct client_conn *cc)
{
    rill_client_stream *st = cl->first_pending;
    while (st && !cc->no_new && cl->npending > 0) {
        rill_client_stream *next = st->next;
        if (st->ws && st->state == ST_PENDING && !st->cancelled) { /* a WebSocket (client_ws.c) */
            if (!client_ws_dispatch(cc, st) && cc->h2 && cc->h2_settings_seen)
                break; /* at the stream limit */
        } else if (st->state == ST_PENDING && !st->cancelled &&
                   !(st->fresh_only && cc->served && !cc->h2)) {
            int rc = cc->h2 ? client_h2_submit(cc, st) : client_h1_send(cc, st);
            if (rc == RILL_ERR_LIMIT || rc == RILL_ERR_WOULD_BLOCK)
                break; /* HTTP/2 at the peer's stream limit, HTTP/1.1 busy: after the next end */
            if (rc < 0)
                client_stream_finish(st, rc, "the request could not be sent");
            else
                st->conn_id = cc->id;
        }
        st = next;
    }
    conn_flush(&cc->c);
    /* A connection that takes no new requests closes once its last one is done. */
    if (cc->no_new && !(cc->c.proto && cc->c.proto->busy && cc->c.proto->busy(&cc->c)))
        conn_close(&cc->c);
}

void client_dispatch(rill_client *cl)
{
    if (cl->freeing)
        return;
    if (cl->nws && cl->h1_origin) /* WebSockets go on an HTTP/2 connection only */
        client_ws_no_h2(cl, true, 0, NULL);
    /* Sends never close a connection at once (conn_close waits for the end of the turn), so the
     * list holds while it is walked. */
    for (struct client_conn *cc = cl->conns; cc; cc = cc->next_conn)
        if (cc->opened && !cc->c.closing)
            conn_send(cl, cc);
    /* Pipelining takes what still waits only once the pool is full: it replaces waiting for a
     * connection, never a connection of its own. */
    if (cl->npending && cl->opt.max_pipeline > 1 && cl->nconns >= cl->max_connections) {
        cl->pipelining = true;
        for (struct client_conn *cc = cl->conns; cc && cl->npending; cc = cc->next_conn)
            if (cc->opened && !cc->c.closing && cc->h1 && cc->h1_cur)
                conn_send(cl, cc);
        cl->pipelining = false;
    }
    if (!cl->npending)
        return;
    make_room_for_fresh(cl);
    if (conns_wanted(cl))
        connect_now(cl);
}

void client_connect_timeout(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_client *cl = arg;
    uint64_t now = rill_io_loop_now_ms(cl->loop);
    for (;;) {
        struct client_conn *cc = cl->conns;
        while (cc && (cc->opened || cc->connect_timed_out || !cc->connect_deadline ||
                      cc->connect_deadline > now))
            cc = cc->next_conn;
        if (!cc)
            break;
        cc->connect_timed_out = true;
        if (cc->race) { /* no attempt answered in time */
            char why[400];
            snprintf(why, sizeof why, "connecting to %s timed out after %u ms",
                     cl->origin.authority, cl->opt.connect_timeout_ms);
            client_trace(cl, "%s", why);
            race_over(cc, RILL_ERR_TIMEOUT, why);
        } else {
            rill_io_conn_close(cc->c.io, false); /* on_close now: the list changes */
        }
    }
    arm_connect_timer(cl);
}

static void on_open(rill_io_conn *io, const char *alpn)
{
    struct client_conn *cc = rill_io_conn_user(io);
    rill_client *cl = cc->client;
    cc->opened = true;
    arm_connect_timer(cl);
    bool h2 = !cl->opt.http1_only &&
              (cl->origin.tls ? alpn && strcmp(alpn, "h2") == 0 : cl->opt.h2_prior_knowledge);
    int rc = h2 ? client_h2_start(cc) : client_h1_start(cc);
    if (rc < 0) {
        cc->fail_err = rc;
        snprintf(cc->why, sizeof cc->why, "cannot start the connection: %s", rill_strerror(rc));
        rill_io_conn_close(io, false);
        return;
    }
    if (h2)
        cl->h1_origin = false;
    else if (cl->origin.tls || !cl->opt.h2c_upgrade)
        cl->h1_origin = true; /* ALPN said so (an h2c offer says so when it is declined) */
    cl->grow_blocked = false;
    struct rill_io_tls_info tls;
    char how[112] = "";
    if (rill_io_conn_tls_info(io, &tls) == RILL_OK)
        snprintf(how, sizeof how, " (TLS %s, %s%s)", tls.version == 0x0304 ? "1.3" : "1.2",
                 tls.cipher ? tls.cipher : "?", tls.resumed ? ", session resumed" : "");
    client_trace(cl, "connected to %s over %s%s (connection #%u)", cl->origin.authority,
                 h2 ? "h2" : "http/1.1", how, cc->id);
    conn_touch(&cc->c);
    client_dispatch(cl);
}

/* The HTTP/1.1 request on cc when the server closed cc, a reused keep-alive connection, before a
 * byte of its response came: the server may have closed it idle as the request went out (so it
 * was not processed), or it may have processed the request and died. NULL otherwise. */
static rill_client_stream *stale_victim(const struct client_conn *cc, int err)
{
    if (!cc->h1 || !cc->opened || !cc->h1_cur || !cc->served || cc->h1_answered || cc->fail_err ||
        cc->client->freeing)
        return NULL;
    return err == 0 || err == RILL_ERR_EOF || err == RILL_ERR_IO ? cc->h1_cur : NULL;
}

/* Like curl: sent again, once, on a new connection when idempotent and nothing of a streamed
 * body was consumed; otherwise it fails, for the caller to decide (never a silent resend). */
static void stale_retry_or_fail(struct client_conn *cc, rill_client_stream *st)
{
    rill_client *cl = cc->client;
    cc->h1_cur = NULL;
    if (client_method_idempotent(st->method) && !st->body_started && !st->fresh_only) {
        client_trace(cl,
                     "connection #%u was closed by the server before answering %s %s; "
                     "sending it again on a new connection",
                     cc->id, st->method, st->path);
        st->fresh_only = true; /* before the requeue, which counts it */
        client_stream_requeue(st);
        return;
    }
    char why[480];
    snprintf(why, sizeof why,
             "the server closed the keep-alive connection to %s before answering (%s)",
             cl->origin.authority,
             st->fresh_only     ? "already sent again once"
             : st->body_started ? "its streamed body had started: not sent again"
                                : "not idempotent: not sent again, it may have been processed");
    client_stream_finish(st, RILL_ERR_EOF, why);
}

static void on_close(rill_io_conn *io, int err)
{
    struct client_conn *cc = rill_io_conn_user(io);
    rill_client *cl = cc->client;
    if (cc->h1 && cc->opened)
        client_h1_requeue_unanswered(cc); /* pipelined ones go again: idempotent, no body */
    rill_client_stream *stale = stale_victim(cc, err);
    /* An HTTP/2 connection that ended before its SETTINGS: the waiting WebSockets cannot know
     * whether the server takes them over HTTP/2 */
    bool h2_unsettled = cc->opened && cc->h2 && !cc->h2_settings_seen;
    if (stale)
        stale_retry_or_fail(cc, stale);
    else if (cc->h1 && cc->opened && (err == 0 || err == RILL_ERR_EOF))
        client_h1_eof(cc); /* may end a read-until-close body */
    conn_io_closed(&cc->c);
    conn_unlink(cl, cc);
    char why[700];
    int fail = cc->fail_err;
    if (fail) {
        snprintf(why, sizeof why, "%s", cc->why);
    } else if (!cc->opened) {
        fail = cc->connect_timed_out ? RILL_ERR_TIMEOUT : err ? err : RILL_ERR_IO;
        if (cc->connect_timed_out)
            snprintf(why, sizeof why, "connecting to %s timed out after %u ms",
                     cl->origin.authority, cl->opt.connect_timeout_ms);
        else if (err == RILL_ERR_TLS)
            snprintf(why, sizeof why, "TLS handshake with %s failed: %s", cl->origin.authority,
                     client_io_detail(cl->loop));
        else
            snprintf(why, sizeof why, "cannot connect to %s: %s", cl->origin.authority,
                     client_io_detail(cl->loop));
    } else {
        fail = RILL_ERR_EOF;
        snprintf(why, sizeof why, "the connection to %s was lost (%s)", cl->origin.authority,
                 rill_strerror(err ? err : RILL_ERR_EOF));
    }
    if (!cc->opened)
        arm_connect_timer(cl);
    /* A connection that won its race but did not open (the TLS handshake failed or took too long)
     * is not tried on another address: the next one would most likely fail the same way. */
    if (cc->opened)
        client_trace(cl, "connection #%u to %s closed", cc->id, cl->origin.authority);
    /* Requests on this connection end with it; those never sent wait for another one, unless
     * this one could not even be made and no other will come. */
    rill_client_stream *st = cl->head;
    while (st) {
        rill_client_stream *next = st->next;
        if (st->state == ST_SENT && st->conn == cc)
            client_stream_finish(st, fail, why);
        st = next;
    }
    if (!cc->opened && !cl->freeing)
        connect_failed(cl, fail, why);
    /* Cleartext: no HTTP/2 server after all (prior knowledge), the HTTP/1.1 Upgrade then, as
     * curl's --http2-prior-knowledge would not but a browser's WebSocket would; over TLS ALPN said
     * h2, so that is a failure */
    if (h2_unsettled && cl->nws && !cl->freeing)
        client_ws_no_h2(cl, !cl->origin.tls, fail, why);
    free(cc->out_iov);
    free(cc->gathered);
    free(cc);
    if (!cl->freeing)
        rill_io_timer_arm(cl->kick, 0);
}

void client_close_all(rill_client *cl)
{
    while (cl->conns) {
        if (cl->conns->race)
            race_over(cl->conns, RILL_ERR_STATE, NULL); /* silently: the client is being freed */
        else
            rill_io_conn_close(cl->conns->c.io, false); /* on_close runs now, silently */
    }
}

static const struct rill_io_conn_callbacks conn_callbacks = {
    .size = sizeof conn_callbacks,
    .on_open = on_open,
    .on_data = conn_io_data,
    .on_drain = conn_io_drain,
    .on_shutdown = conn_io_shutdown,
    .on_close = on_close,
    .on_output = conn_io_output,
    .on_output_sent = conn_io_output_sent,
    .on_timer = conn_io_timer,
};
