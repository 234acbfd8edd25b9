/* One request through the proxy: the front exchange (rill/server.h) and a backend stream
 * (rill/client.h) joined, bodies streamed both ways with back-pressure (a side that says "wait"
 * pauses the other until it drains), errors turned into 502 / 504 before the response head and
 * into a reset (HTTP/2) or a closed connection (HTTP/1.1) after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy_internal.h"

static void pxreq_free(struct pxreq *px)
{
    struct proxy_worker *w = px->worker; /* NULL when it never got on the live list */
    proxy_live_remove(px);
    proxy_pxreq_put(w, px);
}

static void enter(struct pxreq *px) { px->busy++; }

/* Leaves a call of ours; the outermost one frees px once both sides are over. */
static void leave(struct pxreq *px)
{
    if (--px->busy == 0 && px->front_done && px->backend_done)
        pxreq_free(px);
}

static void simple(rill_server_response *res, int status, const char *body)
{
    rill_server_response_set_status(res, status);
    rill_server_response_set_header(res, "content-type", "text/plain");
    rill_server_response_end(res, body, strlen(body));
}

/* A request the proxy cannot forward, answered before it started. */
static void refuse(rill_server_response *res, int status, const char *body)
{
    simple(res, status, body);
}

/* ---- the backend's side ------------------------------------------------------------------- */

void proxy_note_backend(rill_server_response *res, const struct proxy_target *t, uint64_t started_ms,
                        bool answered)
{
    /* Put together by hand, not with snprintf: it is made for every proxied request, and a
     * format string's interpretation cost more than the rest of the note. */
    char note[600 + 48]; /* cut at 599 bytes below, as it always was */
    size_t n = 0, url_len = strlen(t->url);
    if (url_len > 600)
        url_len = 600;
    memcpy(note, "backend=", 8);
    n = 8;
    memcpy(note + n, t->url, url_len);
    n += url_len;
    memcpy(note + n, " ttfb_ms=", 9);
    n += 9;
    if (answered) {
        char digits[24];
        size_t k = 0;
        /* The turn's time (no clock read per request); a start read fresh may be later. */
        uint64_t now = rill_io_loop_now_ms(rill_server_request_loop(res));
        uint64_t v = now > started_ms ? now - started_ms : 0;
        do
            digits[k++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        while (k)
            note[n++] = digits[--k];
    } else {
        note[n++] = '-';
    }
    note[n < 600 ? n : 599] = '\0';
    rill_server_response_log_note(res, note);
}

/* The access log line names the backend and its time to first byte. */
static void note_backend(struct pxreq *px, bool answered)
{
    proxy_note_backend(px->req, px->backend, px->started_ms, answered);
}

void proxy_response_own_fields(rill_server_response *res, const struct proxy_route *r,
                               const char *via)
{
    rill_header name = {(const uint8_t *)"via", 3, (const uint8_t *)"", 0, 0};
    if (r->s.via && !proxy_edit_drops(&r->response, &name))
        rill_server_response_add_header(res, "via", via);
    for (size_t i = 0; i < r->response.nappend; i++) /* C strings: they come from the file */
        rill_server_response_add_header(res, (const char *)r->response.append[i].name,
                                        (const char *)r->response.append[i].value);
}

static void on_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user);

static void on_informational(rill_client_stream *st, int status, const rill_header *fields, size_t n,
                             void *user)
{
    struct pxreq *px = user;
    if (!px->req || status == 101)
        return;
    rill_header keep[32];
    size_t k = proxy_response_keep(fields, n, NULL, keep, 32);
    enter(px);
    rill_server_response_informational(px->req, status, keep, k);
    leave(px);
}

static void on_response(rill_client_stream *st, int status, const rill_header *fields, size_t n,
                        void *user)
{
    struct pxreq *px = user;
    px->got_head = true;
    rill_io_timer_cancel(px->timer);
    if (!px->req)
        return;
    enter(px);
    rill_server_response *res = px->req;
    const struct proxy_route *r = px->route;
    rill_server_response_set_status(res, status);
    note_backend(px, true);
    proxy_response_pass(res, fields, n, &r->response, NULL);
    /* RFC 9110 §7.6.3: a proxy adds itself to Via in both directions. */
    const char *proto = rill_client_stream_protocol(st);
    proxy_response_own_fields(res, r, proto && strcmp(proto, "h2") == 0 ? "2 rill" : "1.1 rill");
    /* An open tunnel may be quiet for long (an idle WebSocket): no idle timeout for it. */
    if (r->s.idle_ms && px->timer && !(px->tunnel && status >= 200 && status <= 299))
        rill_io_timer_arm(px->timer, r->s.idle_ms); /* from now on: the time between pieces */
    px->tunnel_open = px->tunnel && status >= 200 && status <= 299;
    if (px->tunnel_h1 && status >= 200 && status <= 299) {
        /* the HTTP/1.1 client's 101; its bytes are the request body from now on */
        if (proxy_tunnel_accept_h1(res) == RILL_OK)
            rill_server_request_on_body(res, on_body, px);
        else if (px->cst)
            rill_client_stream_cancel(px->cst); /* on_end closes the front */
        leave(px);
        return;
    }
    /* The head goes now: a response that streams (events, gRPC) must not wait for its body. A
     * head that ended the response waits for on_end, so it goes with END_STREAM (gRPC's
     * trailers-only errors: grpc-status in the head, as gRPC clients require). Not for HEAD:
     * ending there would add content-length: 0 to a head that may describe a longer body. */
    if (!rill_client_stream_head_ended(st) || strcmp(rill_server_request_method(res), "HEAD") == 0)
        rill_server_response_write(res, NULL, 0);
    if (px->tunnel && status >= 200 && status <= 299) /* open: the client's bytes go on now */
        rill_server_request_on_body(res, on_body, px);
    leave(px);
}

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    struct pxreq *px = user;
    px->saw_data = true;
    if (!px->req)
        return;
    enter(px);
    int rc = rill_server_response_write(px->req, data, len);
    if (rc == RILL_ERR_WOULD_BLOCK && px->cst) {
        px->backend_paused = true;
        rill_client_stream_pause(px->cst, true); /* until the front's on_drain */
    }
    leave(px);
}

/* A tunnel one side of which ended: the other must end, or send, within the route's half-close
 * timeout (on_timeout), as for a tunnel to an HTTP/1.1 backend (proxy_tunnel.c). */
static void half_closed(struct pxreq *px)
{
    uint32_t ms = px->route->s.half_close_ms;
    if (!px->tunnel_open || !px->timer || !ms || !px->cst || !px->req ||
        (px->body_ended && px->peer_ended))
        return;
    px->saw_data = false;
    rill_io_timer_arm(px->timer, ms);
}

static void on_trailers(rill_client_stream *st, const rill_header *fields, size_t n, void *user)
{
    struct pxreq *px = user;
    if (!px->req)
        return;
    rill_header keep[64];
    n = proxy_response_keep(fields, n, NULL, keep, 64);
    char name[256], value[8192];
    for (size_t i = 0; i < n; i++) {
        const rill_header *f = &keep[i];
        if (f->name_len >= sizeof name || f->value_len >= sizeof value)
            continue;
        memcpy(name, f->name, f->name_len);
        name[f->name_len] = '\0';
        memcpy(value, f->value, f->value_len);
        value[f->value_len] = '\0';
        rill_server_response_add_trailer(px->req, name, value);
    }
}

/* A tunnel's backend ended its side (END_STREAM) while the client still sends: the half-close
 * goes on (END_STREAM to an HTTP/2 client, a FIN to an HTTP/1.1 one); the stream stays for the
 * client's bytes until its own end. */
static void on_peer_end(rill_client_stream *st, void *user)
{
    struct pxreq *px = user;
    px->peer_ended = true;
    if (!px->req)
        return;
    enter(px);
    rill_server_response_end(px->req, NULL, 0);
    half_closed(px);
    leave(px);
}

static void on_backend_drain(rill_client_stream *st, void *user)
{
    struct pxreq *px = user;
    if (!px->req_paused || !px->req)
        return;
    enter(px);
    px->req_paused = false;
    rill_server_request_pause(px->req, false); /* held body bytes may come at once */
    leave(px);
}

static void start(struct pxreq *px, bool plain, const uint8_t *data, size_t len);

/* A backend that could not be reached is skipped for the next one of the route, for safe
 * requests without a body (nothing to replay), each backend once. */
static bool try_next(struct pxreq *px, int err, const char *why)
{
    if (!px->req || px->got_head || px->timed_out || !px->plain || px->body_len ||
        (err != RILL_ERR_IO && err != RILL_ERR_NOT_FOUND) || px->tries >= px->route->nbackends)
        return false;
    const char *m = rill_server_request_method(px->req);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0)
        return false; /* safe methods only, in case a connection failed after all */
    struct proxy_target *failed = px->backend, *next = proxy_pick_next(px->route, &px->backend_at);
    if (!next)
        return false; /* the others failed their health checks */
    px->backend = next;
    px->tries++;
    fprintf(stderr, "rill serve: proxy: %s: %s; trying %s\n", failed->url, why ? why : rill_strerror(err),
            px->backend->url);
    px->nfields = proxy_request_fields(px->req, px->route, proxy_backend_h2(px), px->fields,
                                       px->scratch, px->cookies);
    px->backend_done = false;
    start(px, true, NULL, 0);
    return true;
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct pxreq *px = user;
    enter(px);
    proxy_client_done(px, rill_client_stream_protocol(st));
    px->cst = NULL;
    px->backend_done = true;
    rill_io_timer_cancel(px->timer);
    rill_server_response *res = px->req;
    if ((err == RILL_ERR_IO || err == RILL_ERR_NOT_FOUND || err == RILL_ERR_TLS) && !px->got_head &&
        !px->timed_out)
        proxy_mark_down(px->backend, px->route->s.down_ms); /* passive health */
    if (err && try_next(px, err, why)) {
        leave(px);
        return;
    }
    if (err == RILL_ERR_UNSUPPORTED && res && px->tunnel && px->backend->https && !px->got_head) {
        /* An https:// backend that speaks h2 without extended CONNECT: the tunnel goes as an
         * HTTP/1.1 Upgrade on a connection of its own instead (none of the client's bytes went:
         * they wait for the tunnel's answer), and so do the worker's next ones to it. */
        proxy_no_connect(px);
        rill_server_response_on_close(res, NULL, NULL);
        rill_server_response_on_drain(res, NULL, NULL);
        px->req = NULL;
        px->front_done = true;
        proxy_tunnel_handle(res, res, px->route, px->backend, px->backend_at, px->hold);
        leave(px);
        return;
    }
    if (res && err == 0 && px->peer_ended) {
        /* both sides of a tunnel ended: its response did already */
    } else if (res && err == 0) {
        if (px->req_paused) { /* the response ended first: the rest of the body is not wanted */
            px->req_paused = false;
            rill_server_request_pause(res, false);
        }
        rill_server_response_end(res, NULL, 0);
    } else if (res) {
        if (px->timed_out)
            fprintf(stderr, "rill serve: proxy: %s sent no response head within %u ms\n",
                    px->backend->url, px->route->s.first_byte_ms);
        else if (px->idle_out)
            fprintf(stderr, "rill serve: proxy: %s sent nothing for %u ms\n", px->backend->url,
                    px->route->s.idle_ms);
        else if (px->half_out)
            proxy_tunnel_half_close_note(px->backend, !px->peer_ended, px->route->s.half_close_ms);
        else
            fprintf(stderr, "rill serve: proxy: %s: %s\n", px->backend->url,
                    why ? why : rill_strerror(err));
        if (px->got_head) {
            rill_server_response_abort(res); /* never a cut body that looks whole */
        } else {
            note_backend(px, false);
            if (px->timed_out)
                simple(res, 504, "504 gateway timeout: the backend did not answer in time\n");
            else
                simple(res, 502, "502 bad gateway: the backend failed\n");
        }
    }
    leave(px);
}

static const rill_client_callbacks backend_cb = {
    .size = sizeof backend_cb,
    .on_response = on_response,
    .on_data = on_data,
    .on_trailers = on_trailers,
    .on_end = on_end,
    .on_drain = on_backend_drain,
    .on_informational = on_informational,
    .on_peer_end = on_peer_end,
};

static void on_timeout(rill_io_timer *t, void *arg)
{
    struct pxreq *px = arg;
    if (!px->cst)
        return;
    if (!px->got_head) {
        px->timed_out = true;
        rill_client_stream_cancel(px->cst); /* on_end (cancelled) answers 504 */
        return;
    }
    if (px->tunnel_open) { /* its half-close deadline: bytes either way push it out */
        if (px->saw_data) {
            px->saw_data = false;
            rill_io_timer_arm(t, px->route->s.half_close_ms);
            return;
        }
        px->half_out = true;
        rill_client_stream_cancel(px->cst); /* on_end resets the client's stream */
        return;
    }
    /* Idle: quiet while paused by a slow client is not the backend's fault. */
    if (px->saw_data || px->backend_paused) {
        px->saw_data = false;
        rill_io_timer_arm(t, px->route->s.idle_ms);
        return;
    }
    px->idle_out = true;
    rill_client_stream_cancel(px->cst); /* on_end aborts the response */
}

/* ---- the front's side --------------------------------------------------------------------- */

/* Starts the backend request: whole (plain) when the front's body is already complete, so a GET
 * goes without a body at all; else streamed. */
static void start(struct pxreq *px, bool plain, const uint8_t *data, size_t len)
{
    px->started = true;
    px->plain = plain;
    px->body_len = len;
    px->started_ms = rill_io_loop_now_ms(rill_server_request_loop(px->req)); /* the turn's */
    rill_server_request *req = px->req;
    char err[256] = "";
    rill_client *c = proxy_client(px, rill_server_request_loop(req), err, sizeof err);
    int rc = RILL_ERR_NOMEM;
    if (c && plain)
        rc = rill_client_request(c, rill_server_request_method(req), rill_server_request_path(req),
                                 px->fields, px->nfields, data, len, &backend_cb, px, &px->cst);
    else if (c) {
        rc = rill_client_request_stream(c, px->tunnel ? "CONNECT" : rill_server_request_method(req),
                                        rill_server_request_path(req), px->fields, px->nfields,
                                        &backend_cb, px, &px->cst);
        if (rc == RILL_OK && len) {
            int w = rill_client_stream_write(px->cst, data, len);
            if (w == RILL_ERR_WOULD_BLOCK) {
                px->req_paused = true;
                rill_server_request_pause(req, true);
            }
        }
    }
    if (rc < 0 || !c) {
        fprintf(stderr, "rill serve: proxy: %s: %s\n", px->backend->url,
                err[0] ? err : rill_strerror(rc));
        px->cst = NULL;
        px->backend_done = true;
        proxy_client_done(px, NULL);
        note_backend(px, false);
        if (rc == RILL_ERR_INVALID_ARG)
            simple(req, 400, "400 bad request: cannot be forwarded\n");
        else
            simple(req, 502, "502 bad gateway\n");
        return;
    }
    const struct route_settings *set = &px->route->s;
    if (set->first_byte_ms || set->idle_ms || (px->tunnel && set->half_close_ms)) {
        if (!px->timer) /* a second backend tried reuses it */
            px->timer = rill_io_timer_new(rill_server_request_loop(req), on_timeout, px);
        if (px->timer && set->first_byte_ms)
            rill_io_timer_arm(px->timer, set->first_byte_ms);
    }
}

/* The end of the client's body on the backend stream, with its trailers (HTTP/2 trailing
 * HEADERS, or an HTTP/1.1 chunked trailer section); a body sent with a content-length cannot carry
 * them: they stay behind, with a line on stderr. */
static int end_body(struct pxreq *px, rill_server_request *req)
{
    rill_header keep[64];
    size_t n = proxy_request_trailers(req, px->route, keep, 64);
    int rc = rill_client_stream_end(px->cst, n ? keep : NULL, n);
    if (rc == RILL_ERR_INVALID_ARG && n && px->cst) {
        fprintf(stderr, "rill serve: proxy: %s: the request's trailers dropped (its body goes "
                "with a content-length)\n", px->backend->url);
        rc = rill_client_stream_end(px->cst, NULL, 0);
    }
    return rc;
}

static void on_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user)
{
    struct pxreq *px = user;
    enter(px);
    /* a body ended with trailers goes streamed: a whole request (plain) has no room for them */
    bool trailers = end && rill_server_request_trailer_count(req) > 0;
    if (!px->started) {
        start(px, end && !trailers, data, len); /* ended already: data is the whole body */
        if (trailers && px->cst && !px->plain)
            px->body_ended = end_body(px, req) == RILL_OK;
    } else if (px->cst && !px->plain) {
        int rc = len ? rill_client_stream_write(px->cst, data, len) : RILL_OK;
        if (rc == RILL_ERR_WOULD_BLOCK && !end) {
            px->req_paused = true;
            rill_server_request_pause(req, true); /* until the backend's on_drain */
        } else if (rc < 0 && rc != RILL_ERR_WOULD_BLOCK) {
            rill_client_stream_cancel(px->cst); /* on_end answers for it */
            end = false;
        }
        if (end) {
            px->body_ended = end_body(px, req) == RILL_OK;
            if (px->body_ended)
                half_closed(px);
        } else if (len && px->tunnel_open)
            px->saw_data = true; /* the client's bytes keep a half-closed tunnel too */
    }
    leave(px);
}

static void on_front_drain(rill_server_response *res, void *user)
{
    struct pxreq *px = user;
    if (!px->backend_paused || !px->cst)
        return;
    px->backend_paused = false;
    rill_client_stream_pause(px->cst, false);
}

static void on_front_close(rill_server_response *res, bool completed, void *user)
{
    struct pxreq *px = user;
    enter(px);
    px->req = NULL;
    px->front_done = true;
    /* The client is gone: so is the backend request; but a tunnel whose both sides ended in order
     * still owes the backend what the client sent last (its stream ends on its own). */
    if (px->cst && !(completed && px->tunnel && px->body_ended))
        rill_client_stream_cancel(px->cst);
    leave(px);
}

void pxreq_abandon(struct pxreq *px)
{
    if (px->req) {
        rill_server_response_on_close(px->req, NULL, NULL);
        rill_server_response_on_drain(px->req, NULL, NULL);
        rill_server_request_on_body(px->req, NULL, NULL);
    }
    pxreq_free(px);
}

/* Whether :authority and Host disagree (HTTP/2 allows both; a backend would see only one). */
static bool authority_conflict(const rill_server_request *req)
{
    size_t hlen;
    const char *host = rill_server_request_header(req, "host", &hlen);
    const char *auth = rill_server_request_authority(req);
    if (!host || strcmp(rill_server_request_version(req), "HTTP/2") != 0)
        return false;
    return strlen(auth) != hlen || strncasecmp(auth, host, hlen) != 0;
}

/* Whether the request's head says it has no body: HTTP/1.x without content-length or
 * transfer-encoding, or content-length 0. Then the backend request goes at once without one
 * (no chunked GET). Over HTTP/2 only END_STREAM says so (trailers may follow a content-length of
 * 0): a body already complete comes at once through on_body anyway. */
static bool no_body(const rill_server_request *req)
{
    size_t len;
    if (strcmp(rill_server_request_version(req), "HTTP/2") == 0)
        return false;
    const char *cl = rill_server_request_header(req, "content-length", &len);
    if (cl)
        return len == 1 && cl[0] == '0';
    return !rill_server_request_header(req, "transfer-encoding", &len);
}

void proxy_handle(rill_server_request *req, rill_server_response *res, void *user)
{
    struct proxy_route *r = user;
    rill_proxy *p = r->proxy;
    if (strcmp(rill_server_request_method(req), "CONNECT") == 0 &&
        !rill_server_request_connect_protocol(req)) { /* never an open proxy */
        refuse(res, 501, "501 not implemented: CONNECT is not proxied\n");
        return;
    }
    if (authority_conflict(req)) {
        refuse(res, 400, "400 bad request: :authority and host differ\n");
        return;
    }
    /* The worker's counts pick the backend (its hold on the configuration is the current one:
     * on_stream made it so). */
    struct proxy_worker *w = proxy_worker_get(p, rill_server_request_loop(req));
    unsigned backend_at;
    struct proxy_target *backend = proxy_pick(r, w, &backend_at);
    if (!backend) { /* said once on stderr, when the last one failed its checks */
        refuse(res, 503, "503 service unavailable: no backend of this route passes its health "
                         "checks\n");
        return;
    }
    /* A tunnel goes as an HTTP/1.1 Upgrade (proxy_tunnel.c), or to an h2c:// backend as an
     * extended CONNECT, forwarded below like any streamed request. */
    bool tunnel = proxy_tunnel_wanted(req);
    if (tunnel && !proxy_tunnel_as_connect(req, backend, proxy_tunnel_over_h2(w, backend))) {
        proxy_tunnel_handle(req, res, r, backend, backend_at, NULL);
        return;
    }
    size_t max = proxy_fields_max(req, r) + tunnel, cookie_room = proxy_cookie_room(req);
    struct pxreq *px = proxy_pxreq_get(w, sizeof *px + PROXY_SCRATCH + max * sizeof(rill_header) +
                                              16 + cookie_room);
    if (!px) {
        refuse(res, 503, "503 service unavailable: out of memory\n");
        return;
    }
    px->proxy = p;
    px->req = req;
    px->route = r;
    px->backend = backend;
    px->backend_at = backend_at;
    px->tries = 1;
    /* The field array sits after the scratch bytes, aligned. */
    uintptr_t at = ((uintptr_t)(px->scratch + PROXY_SCRATCH) + 15) & ~(uintptr_t)15;
    px->fields = (rill_header *)at;
    px->cookies = cookie_room ? (char *)(px->fields + max) : NULL;
    /* First: the worker's hold keeps the route alive. */
    if (!proxy_live_add(p, rill_server_request_loop(req), px)) {
        pxreq_free(px);
        refuse(res, 503, "503 service unavailable: out of memory\n");
        return;
    }
    px->nfields = proxy_request_fields(req, r, proxy_backend_h2(px), px->fields, px->scratch,
                                       px->cookies);
    if (tunnel) {
        px->nfields = proxy_tunnel_connect_fields(req, px->fields, px->nfields);
        px->tunnel = true;
        px->tunnel_h1 = strcmp(rill_server_request_version(req), "HTTP/2") != 0;
    }
    enter(px);
    rill_server_response_on_close(res, on_front_close, px);
    rill_server_response_on_drain(res, on_front_drain, px);
    if (px->tunnel) { /* its bytes come after the backend's 2xx (on_response) */
        start(px, false, NULL, 0);
        leave(px);
        return;
    }
    if (no_body(req))
        start(px, true, NULL, 0);
    rill_server_request_on_body(req, on_body, px); /* a body already complete comes at once */
    if (!px->started && !px->front_done)
        start(px, false, NULL, 0);
    leave(px);
}
