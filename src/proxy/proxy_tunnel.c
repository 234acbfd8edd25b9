/* WebSockets and other tunnels through the proxy: an HTTP/2 extended CONNECT (RFC 8441) or an
 * HTTP/1.1 Upgrade from the client becomes an HTTP/1.1 Upgrade request to the backend on a
 * connection of its own (proxy_upstream.c). The backend's answer decides: a 101 opens the tunnel
 * (200 to an HTTP/2 client, 101 to an HTTP/1.1 one), anything else goes back as an ordinary
 * response. Then bytes move both ways untouched (WebSocket frames are the same bytes on an h2
 * stream and on an HTTP/1.1 connection), each side pausing the other when it says wait; so the
 * sub-protocol and permessage-deflate are the client's and the backend's business, end to end.
 * The proxy checks only the handshake it made: over HTTP/2 it makes the Sec-WebSocket-Key itself
 * (the client sent none), over HTTP/1.1 the client's goes on, and the backend's
 * Sec-WebSocket-Accept must match it. To an h2c:// backend the tunnel goes instead as an extended
 * CONNECT through the worker's HTTP/2 client, forwarded by proxy_forward.c like a streamed
 * request (proxy_tunnel_as_connect and the helpers below it).
 * A tunnel is on its worker's list with a hold on the configuration its route and backend are in
 * (proxy_tunnel_link: a reload frees them only after the tunnel ended) and counts on its backend
 * for least-connections while it is open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy_internal.h"
#include "proxy/proxy_upstream.h"
#include "rill/ws.h"

struct pxtunnel {
    struct proxy_tunnel_link link; /* first: proxy_tunnel_abandon gets it */
    rill_proxy *proxy;
    struct proxy_route *route;     /* in the configuration link.hold keeps */
    struct proxy_target *backend;
    unsigned backend_at;      /* backend's position in the route */
    unsigned tries;           /* backends tried (one that cannot be reached gives way) */
    uint64_t started_ms;      /* loop time the Upgrade went (time to first byte in the log) */
    rill_server_request *req; /* NULL once the front exchange closed */
    struct upstream *up;      /* NULL once the backend side ended or was closed */
    rill_io_timer *timer;     /* the answer's deadline until the head came; then, once one side
                                 ended, the half-close deadline (on_half_close) */
    unsigned busy;            /* nested calls of ours: freeing waits for the outermost */
    bool h2_front, websocket;
    bool got_head;
    bool reported; /* the failure is on stderr already (the last backend tried) */
    bool front_paused, up_paused;
    bool back_ended; /* the backend's FIN came and went on as the client's end (a half-close) */
    bool front_ended; /* the client's end came and went on to the backend */
    bool moved;       /* bytes went through since the half-close timer was armed */
    char key[RILL_WS_KEY_LEN + 1]; /* the Sec-WebSocket-Key the backend got */
    char protocol[128];            /* the Upgrade asked of the backend */
};

static void enter(struct pxtunnel *t) { t->busy++; }

static void tunnel_free(struct pxtunnel *t)
{
    proxy_tunnel_link_remove(&t->link);
    rill_io_timer_free(t->timer);
    free(t);
}

static void leave(struct pxtunnel *t)
{
    if (--t->busy == 0 && !t->req && !t->up)
        tunnel_free(t);
}

/* Passive health: a backend that could not be reached is skipped for a while, as for requests. */
static void connect_failed(struct pxtunnel *t)
{
    proxy_mark_down(t->backend, t->route->s.down_ms);
}

static void respond(rill_server_response *res, int status, const char *body)
{
    rill_server_response_set_status(res, status);
    rill_server_response_set_header(res, "content-type", "text/plain");
    rill_server_response_end(res, body, strlen(body));
}

static bool has_body(const rill_server_request *req)
{
    size_t len;
    const char *cl = rill_server_request_header(req, "content-length", &len);
    return rill_server_request_header(req, "transfer-encoding", &len) ||
           (cl && !(len == 1 && cl[0] == '0'));
}

/* Whether a request field lists token (comma-separated, any case). */
static bool lists(const rill_server_request *req, const char *name, const char *token)
{
    for (size_t i = 0, n = rill_server_request_header_count(req); i < n; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0 &&
            rill_h1_list_has_token((const char *)f->value, f->value_len, token))
            return true;
    }
    return false;
}

static rill_header field(const char *name, const char *value)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), 0};
}

bool proxy_tunnel_wanted(const rill_server_request *req)
{
    if (strcmp(rill_server_request_version(req), "HTTP/2") == 0)
        return rill_server_request_connect_protocol(req) != NULL;
    /* RFC 9110 §7.8: an Upgrade counts with "Connection: upgrade", on HTTP/1.1, and h2c is the
     * front's own business; a request with a body goes on as an ordinary one (Upgrade dropped). */
    size_t len;
    return strcmp(rill_server_request_version(req), "HTTP/1.1") == 0 &&
           rill_server_request_header(req, "upgrade", &len) && lists(req, "connection", "upgrade") &&
           !lists(req, "upgrade", "h2c") && !has_body(req);
}

/* ---- the backend's side ------------------------------------------------------------------- */

/* The backend's head fields that go on to the client: the end-to-end ones the route's edits keep
 * (an HTTP/2 client never sees Sec-WebSocket-Accept: RFC 8441 §5 has none), then Via and the
 * route's own fields. */
static void copy_fields(struct pxtunnel *t, const rill_h1_head *head)
{
    proxy_response_pass(t->req, head->fields, head->nfields, &t->route->response,
                        t->h2_front ? "sec-websocket-accept" : NULL);
    proxy_response_own_fields(t->req, t->route, "1.1 rill");
}

static void front_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user);

/* Whether a 101 is the switch that was asked for. */
static bool switch_ok(const struct pxtunnel *t, const rill_h1_head *head)
{
    if (t->websocket)
        return rill_h1_websocket_response_ok(head, t->key, strlen(t->key));
    size_t pos = 0;
    return rill_h1_find_field(head->fields, head->nfields, "upgrade", &pos) != NULL;
}

static void on_head(const rill_h1_head *head, void *user)
{
    struct pxtunnel *t = user;
    t->got_head = true;
    rill_io_timer_free(t->timer); /* an open tunnel has no deadline of ours */
    t->timer = NULL;
    if (!t->req)
        return;
    enter(t);
    proxy_note_backend(t->req, t->backend, t->started_ms, true);
    if (head->status == 101 && !switch_ok(t, head)) {
        fprintf(stderr, "rill serve: proxy: %s: the backend's 101 does not accept the %s asked for\n",
                t->backend->url, t->websocket ? "WebSocket handshake" : "upgrade");
        upstream_close(t->up, false);
        t->up = NULL;
        respond(t->req, 502, "502 bad gateway: the backend's switch is not the one asked for\n");
        leave(t);
        return;
    }
    copy_fields(t, head);
    if (head->status != 101) { /* the backend refused: its answer goes back as it is */
        rill_server_response_set_status(t->req, head->status);
        rill_server_response_write(t->req, NULL, 0);
        leave(t);
        return;
    }
    size_t pos = 0;
    const rill_header *up = rill_h1_find_field(head->fields, head->nfields, "upgrade", &pos);
    char protocol[128] = "";
    if (up && up->value_len < sizeof protocol)
        memcpy(protocol, up->value, up->value_len), protocol[up->value_len] = '\0';
    if (rill_server_response_tunnel(t->req, protocol) < 0) {
        upstream_close(t->up, false);
        t->up = NULL;
        rill_server_response_abort(t->req);
    } else {
        rill_server_request_on_body(t->req, front_body, t); /* what the client sent meanwhile too */
    }
    leave(t);
}

static void on_data(const uint8_t *data, size_t len, void *user)
{
    struct pxtunnel *t = user;
    if (!t->req)
        return;
    enter(t);
    t->moved = true;
    if (rill_server_response_write(t->req, data, len) == RILL_ERR_WOULD_BLOCK && t->up) {
        t->up_paused = true;
        upstream_pause(t->up, true); /* until the front's on_drain */
    }
    leave(t);
}

static void on_drain(void *user)
{
    struct pxtunnel *t = user;
    if (!t->front_paused || !t->req)
        return;
    enter(t);
    t->front_paused = false;
    rill_server_request_pause(t->req, false);
    leave(t);
}

static bool try_next(struct pxtunnel *t, int err, const char *why);

void proxy_tunnel_half_close_note(const struct proxy_target *b, bool client_first, uint32_t ms)
{
    fprintf(stderr, "rill serve: proxy: %s: the %s ended its side of the tunnel and the %s sent "
            "nothing and did not end within %u ms: closed\n", b->url,
            client_first ? "client" : "backend", client_first ? "backend" : "client", ms);
}

/* Once one side ended and the other is quiet for the route's half-close timeout (no byte in
 * the direction still open, none ending it), the tunnel is over: the backend's connection closed
 * and the client's exchange reset, as after a failure (nothing says it ended in order). */
static void on_half_close(rill_io_timer *timer, void *arg)
{
    struct pxtunnel *t = arg;
    if (!t->up || !t->req)
        return; /* ending already */
    if (t->moved) {
        t->moved = false;
        rill_io_timer_arm(timer, t->route->s.half_close_ms);
        return;
    }
    enter(t);
    proxy_tunnel_half_close_note(t->backend, t->front_ended, t->route->s.half_close_ms);
    upstream_close(t->up, false);
    t->up = NULL;
    rill_server_response_abort(t->req); /* front_close follows, now or later */
    leave(t);
}

/* One side ended (called once each): with the other still open, its deadline starts. */
static void half_closed(struct pxtunnel *t, rill_io_loop *loop)
{
    uint32_t ms = t->route->s.half_close_ms;
    if (!ms || (t->front_ended && t->back_ended) || !t->up || !t->req)
        return;
    if (!t->timer)
        t->timer = rill_io_timer_new(loop, on_half_close, t);
    t->moved = false;
    if (t->timer) /* without memory: no deadline, as before there was one */
        rill_io_timer_arm(t->timer, ms);
}

/* The backend's FIN: the client's side ends (HTTP/2 END_STREAM; HTTP/1.1 a FIN after what is
 * queued) while the client may still send; the tunnel is over once it ends too (on_end(0)). */
static void on_eof(void *user)
{
    struct pxtunnel *t = user;
    t->back_ended = true;
    if (!t->req)
        return;
    enter(t);
    rill_server_response_end(t->req, NULL, 0);
    if (t->req)
        half_closed(t, rill_server_request_loop(t->req));
    leave(t);
}

static void on_end(int err, const char *why, void *user)
{
    struct pxtunnel *t = user;
    enter(t);
    t->up = NULL;
    rill_server_response *res = t->req;
    if ((err == RILL_ERR_IO || err == RILL_ERR_NOT_FOUND || err == RILL_ERR_TLS) && !t->got_head)
        connect_failed(t);
    if (res && err && try_next(t, err, why)) {
        leave(t);
        return;
    }
    if (res && err == 0) {
        if (!t->back_ended) /* a refusal's body is complete (a tunnel's end went at on_eof) */
            rill_server_response_end(res, NULL, 0);
    } else if (res) {
        if (!t->reported)
            fprintf(stderr, "rill serve: proxy: %s: %s\n", t->backend->url,
                    why ? why : rill_strerror(err));
        if (t->got_head) {
            rill_server_response_abort(res); /* a reset, never an end that looks clean */
        } else {
            proxy_note_backend(res, t->backend, t->started_ms, false);
            respond(res, 502, "502 bad gateway: the backend failed\n");
        }
    }
    leave(t);
}

static const struct upstream_events upstream_ev = {
    .on_head = on_head,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_eof = on_eof,
    .on_end = on_end,
};

/* How long until the nearest deadline still ahead (0: none): the connect's (TCP and TLS, the
 * backend's connect timeout) until connected, and the response head's (first byte), both counted
 * from the start as for requests. */
static uint64_t next_deadline(const struct pxtunnel *t, uint64_t now)
{
    uint64_t waited = now - t->started_ms, left = 0;
    uint32_t connect_ms = t->backend->connect_ms, first_byte_ms = t->route->s.first_byte_ms;
    if (first_byte_ms)
        left = waited < first_byte_ms ? first_byte_ms - waited : 1;
    if (connect_ms && t->up && !upstream_opened(t->up)) {
        uint64_t c = waited < connect_ms ? connect_ms - waited : 1;
        left = left && left < c ? left : c;
    }
    return left;
}

static void on_timeout(rill_io_timer *timer, void *arg)
{
    struct pxtunnel *t = arg;
    if (t->got_head || !t->up)
        return;
    uint64_t waited = rill_io_now_ms() - t->started_ms;
    uint32_t connect_ms = t->backend->connect_ms, first_byte_ms = t->route->s.first_byte_ms;
    bool connect_over = connect_ms && waited >= connect_ms && !upstream_opened(t->up);
    if (!connect_over && !(first_byte_ms && waited >= first_byte_ms)) {
        uint64_t left = next_deadline(t, rill_io_now_ms()); /* connected in time */
        if (left) /* 0: no first-byte deadline, nothing left to wait for */
            rill_io_timer_arm(timer, left);
        return;
    }
    enter(t);
    upstream_close(t->up, false);
    t->up = NULL;
    if (connect_over) /* as the client's: a 502, not a backend marked down */
        fprintf(stderr, "rill serve: proxy: %s: connecting to %s timed out after %u ms\n",
                t->backend->url, strstr(t->backend->origin, "://") + 3, connect_ms);
    else
        fprintf(stderr, "rill serve: proxy: %s sent no response head within %u ms\n",
                t->backend->url, first_byte_ms);
    if (t->req) {
        proxy_note_backend(t->req, t->backend, t->started_ms, false);
        if (connect_over)
            respond(t->req, 502, "502 bad gateway: the backend failed\n");
        else
            respond(t->req, 504, "504 gateway timeout: the backend did not answer in time\n");
    }
    leave(t);
}

/* ---- the front's side --------------------------------------------------------------------- */

static void front_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user)
{
    struct pxtunnel *t = user;
    if (!t->up)
        return;
    enter(t);
    t->moved = true;
    if (len && upstream_write(t->up, data, len) == RILL_ERR_WOULD_BLOCK && !end) {
        t->front_paused = true;
        rill_server_request_pause(req, true); /* until the backend's on_drain */
    }
    if (end) { /* the client's orderly end (END_STREAM, its FIN): ours to the backend, which may
                * still answer (a half-close; the tunnel ends with the backend's FIN) */
        t->front_ended = true;
        upstream_shutdown_write(t->up);
        half_closed(t, rill_server_request_loop(req));
    }
    leave(t);
}

static void front_drain(rill_server_response *res, void *user)
{
    struct pxtunnel *t = user;
    if (!t->up_paused || !t->up)
        return;
    t->up_paused = false;
    upstream_pause(t->up, false);
}

static void front_close(rill_server_response *res, bool completed, void *user)
{
    struct pxtunnel *t = user;
    enter(t);
    t->req = NULL;
    if (t->up) /* the client left: so does the backend (what it was sent still goes if orderly) */
        upstream_close(t->up, completed);
    t->up = NULL;
    leave(t);
}

bool proxy_tunnel_as_connect(const rill_server_request *req, const struct proxy_target *b,
                             bool over_h2)
{
    size_t len = 0;
    const char *upgrade = rill_server_request_header(req, "upgrade", &len);
    bool h1_websocket = strcmp(rill_server_request_version(req), "HTTP/2") != 0 && upgrade &&
                        rill_h1_list_has_token(upgrade, len, "websocket");
    /* an HTTP/1.1 WebSocket without its key is refused by proxy_tunnel_handle */
    return over_h2 && !(h1_websocket && !rill_server_request_header(req, "sec-websocket-key", &len));
}

size_t proxy_tunnel_connect_fields(const rill_server_request *req, rill_header *fields, size_t n)
{
    size_t len;
    const char *protocol = strcmp(rill_server_request_version(req), "HTTP/2") == 0
                               ? rill_server_request_connect_protocol(req)
                               : rill_server_request_header(req, "upgrade", &len); /* NUL-ended */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) /* RFC 8441 §4: no key over HTTP/2 (the proxy answers it) */
        if (fields[i].name_len != 17 ||
            strncasecmp((const char *)fields[i].name, "sec-websocket-key", 17) != 0)
            fields[k++] = fields[i];
    memmove(fields + 1, fields, k * sizeof *fields); /* a pseudo-header field goes first */
    fields[0] = field(":protocol", protocol);
    return k + 1;
}

int proxy_tunnel_accept_h1(rill_server_response *res)
{
    size_t len;
    const char *protocol = rill_server_request_header(res, "upgrade", &len);
    const char *key = rill_server_request_header(res, "sec-websocket-key", &len);
    if (strcasecmp(protocol, "websocket") == 0) {
        char accept[RILL_WS_ACCEPT_LEN + 1];
        if (!key || rill_ws_accept_key(key, len, accept) < 0)
            return RILL_ERR_PROTOCOL;
        rill_server_response_set_header(res, "sec-websocket-accept", accept);
    }
    return rill_server_response_tunnel(res, protocol);
}

/* The Upgrade request on a connection of its own to t->backend: the request's end-to-end fields
 * (as for any request: Host from :authority, X-Forwarded-*, Via), then the switch the proxy asks
 * for. Returns false when it cannot even start (why in err). */
static bool open_upstream(struct pxtunnel *t, char *err, size_t errlen)
{
    rill_server_request *req = t->req;
    size_t max = proxy_fields_max(req, t->route) + 3, cookie_room = proxy_cookie_room(req);
    rill_header stack[64];
    rill_header *f = max <= 64 ? stack : malloc(max * sizeof *f);
    char scratch[PROXY_SCRATCH];
    char *cookies = cookie_room ? malloc(cookie_room) : NULL;
    if (!f || (cookie_room && !cookies)) {
        if (f != stack)
            free(f);
        free(cookies);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    size_t n = proxy_request_fields(req, t->route, false, f, scratch, cookies), k = 0;
    for (size_t i = 0; i < n; i++) /* a key only where it is the client's own (HTTP/1.1) */
        if (t->h2_front || !t->websocket || f[i].name_len != 17 ||
            strncasecmp((const char *)f[i].name, "sec-websocket-key", 17) != 0)
            f[k++] = f[i];
    f[k++] = field("upgrade", t->protocol);
    f[k++] = field("connection", "Upgrade");
    if (t->websocket)
        f[k++] = field("sec-websocket-key", t->key);
    rill_io_loop *loop = rill_server_request_loop(req);
    proxy_tunnel_link_count(&t->link, t->backend);
    t->started_ms = rill_io_now_ms();
    t->up = upstream_open(t->proxy, t->link.hold->cfg, t->backend, loop,
                          t->h2_front ? "GET" : rill_server_request_method(req),
                          rill_server_request_path(req), f, k, &upstream_ev, t, err, errlen);
    if (f != stack)
        free(f);
    free(cookies);
    uint64_t left = t->up ? next_deadline(t, t->started_ms) : 0;
    if (left) {
        if (!t->timer) /* another backend tried re-arms it */
            t->timer = rill_io_timer_new(loop, on_timeout, t);
        if (t->timer)
            rill_io_timer_arm(t->timer, left);
    }
    return t->up != NULL;
}

/* A backend that could not be reached (its name had no address, or none of its addresses
 * answered: nothing was sent to it) gives way to the route's next one, each backend once, as for
 * a request without a body. */
static bool try_next(struct pxtunnel *t, int err, const char *why)
{
    if ((err != RILL_ERR_IO && err != RILL_ERR_NOT_FOUND) || t->got_head ||
        t->tries >= t->route->nbackends)
        return false;
    struct proxy_target *failed = t->backend, *next = proxy_pick_next(t->route, &t->backend_at);
    if (!next)
        return false; /* the others failed their health checks */
    t->backend = next;
    t->tries++;
    fprintf(stderr, "rill serve: proxy: %s: %s; trying %s\n", failed->url, why ? why : rill_strerror(err),
            t->backend->url);
    char reason[256] = "";
    if (open_upstream(t, reason, sizeof reason))
        return true;
    connect_failed(t);
    if (try_next(t, RILL_ERR_IO, reason))
        return true;
    if (!t->reported) /* the last one tried, with its own reason */
        fprintf(stderr, "rill serve: proxy: %s: %s\n", t->backend->url, reason);
    t->reported = true;
    return false;
}

void proxy_tunnel_handle(rill_server_request *req, rill_server_response *res, struct proxy_route *r,
                         struct proxy_target *b, unsigned at, struct config_hold *hold)
{
    bool h2 = strcmp(rill_server_request_version(req), "HTTP/2") == 0;
    size_t len = 0;
    const char *asked = h2 ? rill_server_request_connect_protocol(req)
                           : rill_server_request_header(req, "upgrade", &len);
    if (!h2 && len >= sizeof ((struct pxtunnel *)0)->protocol) {
        respond(res, 400, "400 bad request: the upgrade field is too long\n");
        return;
    }
    struct pxtunnel *t = calloc(1, sizeof *t);
    if (!t) {
        respond(res, 503, "503 service unavailable: out of memory\n");
        return;
    }
    snprintf(t->protocol, sizeof t->protocol, "%.*s", h2 ? (int)strlen(asked) : (int)len, asked);
    t->proxy = r->proxy;
    t->route = r;
    t->backend = b;
    t->backend_at = at;
    t->tries = 1;
    t->req = req;
    t->h2_front = h2;
    t->websocket = strcasecmp(t->protocol, "websocket") == 0;
    const char *client_key = rill_server_request_header(req, "sec-websocket-key", &len);
    if (t->websocket && !h2 && (!client_key || len > RILL_WS_KEY_LEN)) {
        free(t);
        respond(res, 400, "400 bad request: a WebSocket handshake needs a sec-websocket-key\n");
        return;
    }
    if (t->websocket && !h2)
        snprintf(t->key, sizeof t->key, "%.*s", (int)len, client_key); /* end to end */
    else if (t->websocket && rill_ws_make_key(t->key) < 0) {
        free(t);
        respond(res, 503, "503 service unavailable: no random bytes for a key\n");
        return;
    }
    if (!proxy_tunnel_link_add(r->proxy, rill_server_request_loop(req), &t->link, hold)) {
        free(t);
        respond(res, 503, "503 service unavailable: out of memory\n");
        return;
    }
    enter(t);
    rill_server_response_on_close(res, front_close, t);
    rill_server_response_on_drain(res, front_drain, t);
    char err[256] = "";
    bool opened = open_upstream(t, err, sizeof err);
    if (!opened)
        connect_failed(t);
    if (!opened && !try_next(t, RILL_ERR_IO, err)) {
        if (!t->reported)
            fprintf(stderr, "rill serve: proxy: %s: %s\n", t->backend->url, err);
        proxy_note_backend(res, t->backend, t->started_ms, false);
        respond(res, 502, "502 bad gateway\n");
    }
    leave(t);
}

void proxy_tunnel_abandon(struct proxy_tunnel_link *l)
{
    struct pxtunnel *t = (struct pxtunnel *)l; /* its first member */
    if (t->req) {
        rill_server_response_on_close(t->req, NULL, NULL);
        rill_server_response_on_drain(t->req, NULL, NULL);
        rill_server_request_on_body(t->req, NULL, NULL);
        t->req = NULL;
    }
    if (t->up) /* ended: no event reaches t any more */
        upstream_close(t->up, false);
    t->up = NULL;
    tunnel_free(t);
}
