/* The client's connections to its origin: resolving and connecting (each address in turn), the
 * protocol chosen at open (ALPN or the options), which connection takes which waiting request,
 * and how many connections there are. An HTTP/2 origin gets one connection that multiplexes
 * everything; an HTTP/1.1 origin a pool of up to max_connections keep-alive connections, each
 * carrying one request at a time and taking the next waiting one when its response ended cleanly.
 * A request that meets a keep-alive connection the server had closed (the close arrives before
 * any byte of its response) goes again, once, on a new connection when it is idempotent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

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

/* The I/O layer's last error without its "what failed: " prefix (we say what failed). */
static const char *io_detail(const rill_io_loop *loop)
{
    const char *e = rill_io_loop_last_error(loop);
    const char *colon = strstr(e, ": ");
    return colon ? colon + 2 : e;
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

/* A new connection to the first of cl->addrs[from..] that takes a connect; false when none is
 * left or none can even start (err and why say so, for the caller to report). */
static bool open_conn(rill_client *cl, size_t from, int *err, char *why, size_t whylen)
{
    for (size_t i = from; i < cl->naddrs; i++) {
        const struct rill_io_addr *addr = &cl->addrs[i];
        struct client_conn *cc = calloc(1, sizeof *cc);
        if (!cc) {
            *err = RILL_ERR_NOMEM;
            snprintf(why, whylen, "%s", rill_strerror(RILL_ERR_NOMEM));
            return false;
        }
        cc->client = cl;
        rill_io_conn *io = NULL;
        int rc = rill_io_connect(cl->loop, addr, cl->tls, cl->origin.tls ? cl->origin.host : NULL,
                                 &conn_callbacks, cc, &io);
        if (rc < 0) {
            free(cc); /* no out_iov yet: made at the first traced output */
            char at[64];
            rill_io_addr_format(addr, at, sizeof at);
            *err = rc;
            snprintf(why, whylen, "cannot connect to %s: %s", cl->origin.authority,
                     io_detail(cl->loop));
            client_trace(cl, "cannot connect to %s: %s", at, io_detail(cl->loop));
            continue; /* e.g. no IPv6 route: the next address may do */
        }
        conn_init(&cc->c, io,
                  cl->opt.idle_timeout_ms ? cl->opt.idle_timeout_ms
                                          : CLIENT_DEFAULT_IDLE_TIMEOUT_MS);
        cc->next_addr = i + 1;
        cc->id = ++cl->connections;
        if (cl->opt.connect_timeout_ms)
            cc->connect_deadline = rill_io_loop_now_ms(cl->loop) + cl->opt.connect_timeout_ms;
        conn_link(cl, cc);
        arm_connect_timer(cl);
        return true;
    }
    return false;
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

static void on_resolved(int err, const char *why, const struct rill_io_addr *addrs, size_t n,
                        void *user)
{
    rill_client *cl = user;
    if (err) {
        connect_failed(cl, err, why);
        return;
    }
    unsigned want = conns_wanted(cl);
    if (!want)
        return; /* everything was cancelled, timed out or sent meanwhile */
    struct rill_io_addr *copy = realloc(cl->addrs, (n ? n : 1) * sizeof *copy);
    if (!copy) {
        connect_failed(cl, RILL_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(copy, addrs, n * sizeof *addrs);
    cl->addrs = copy;
    cl->naddrs = n;
    client_trace(cl, "%s resolved to %zu address%s", cl->origin.host, n, n == 1 ? "" : "es");
    for (unsigned i = 0; i < want; i++) {
        int fail = RILL_ERR_IO;
        char failed[700] = "";
        if (!open_conn(cl, 0, &fail, failed, sizeof failed)) {
            connect_failed(cl, fail, failed);
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
        rill_io_conn_close(cc->c.io, false); /* on_close now: the list changes */
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
    bool secure = rill_io_conn_tls_info(io, &tls) == RILL_OK;
    client_trace(cl, "connected to %s over %s%s%s%s (connection #%u)", cl->origin.authority,
                 h2 ? "h2" : "http/1.1", secure ? " (TLS, " : "",
                 secure ? (tls.version == 0x0304 ? "1.3" : "1.2") : "",
                 secure ? (tls.resumed ? ", session resumed)" : ")") : "", cc->id);
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
                     io_detail(cl->loop));
        else
            snprintf(why, sizeof why, "cannot connect to %s: %s", cl->origin.authority,
                     io_detail(cl->loop));
    } else {
        fail = RILL_ERR_EOF;
        snprintf(why, sizeof why, "the connection to %s was lost (%s)", cl->origin.authority,
                 rill_strerror(err ? err : RILL_ERR_EOF));
    }
    if (!cc->opened)
        arm_connect_timer(cl);
    /* Could not connect (refused, unreachable, timed out; not a TLS failure, which the next
     * address would repeat): the origin's next address, and only when none is left, the error. */
    if (!cc->opened && !cc->fail_err && (cc->connect_timed_out || err != RILL_ERR_TLS) &&
        !cl->freeing && cc->next_addr < cl->naddrs) {
        char at[64];
        rill_io_addr_format(&cl->addrs[cc->next_addr - 1], at, sizeof at);
        client_trace(cl, "%s (%s); trying the next address", why, at);
        size_t from = cc->next_addr;
        free(cc->out_iov);
        free(cc);
        if (!open_conn(cl, from, &fail, why, sizeof why))
            connect_failed(cl, fail, why);
        return;
    }
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
    free(cc);
    if (!cl->freeing)
        rill_io_timer_arm(cl->kick, 0);
}

void client_close_all(rill_client *cl)
{
    while (cl->conns)
        rill_io_conn_close(cl->conns->c.io, false); /* on_close runs now, silently */
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
