/* What the proxy's files share: the proxy, its configurations (routes and backends), each
 * worker's part, one forwarded request. */
#ifndef RILL_PROXY_INTERNAL_H
#define RILL_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "proxy/proxy.h"
#include "proxy/proxy_spec.h"
#include "rill/io.h"

struct tunnel_tls;
struct proxy_health;

/* A backend as the clients see it (URL and connect timeout). Shared by every configuration that
 * names it, so a reload keeps the workers' connections and its health; freed with the proxy. */
struct proxy_target {
    char *url;       /* as given, for messages */
    char *origin;    /* what rill_client gets: http://host:port or https://... */
    bool h2c, https; /* h2c: HTTP/2 by prior knowledge on cleartext */
    uint32_t connect_ms;
    unsigned pipeline; /* HTTP/1.1: requests on one connection at once (1: no pipelining) */
    unsigned index;  /* the slot in each worker's pool array */
    _Atomic uint64_t down_until; /* rill_io_now_ms() before which it is skipped (passive health) */
    struct health_check check;   /* active checks (path NULL: none); path copied: the target
                                    outlives the spec */
    _Atomic bool check_down;     /* failed its checks: out of the rotation until they pass */
    _Atomic(struct proxy_health *) prober; /* the worker part that probes it, once one took it */
    struct proxy_target *next;
};

/* Fields a route changes: dropped by name (remove, and set's names), then appended (set, add). */
struct field_edit {
    const char **drop;
    size_t ndrop;
    rill_header *append;
    size_t nappend;
};

struct proxy_route {
    rill_proxy *proxy;
    char *prefix; /* in the configuration's spec */
    size_t prefix_len;
    struct proxy_target **backends;
    size_t nbackends;
    struct route_settings s;
    struct field_edit request, response;
    _Atomic unsigned turn; /* round robin, and where least-connections starts looking */
};

/* One configuration: read-only once built, freed when the last worker lets go of it (a worker
 * holds the current one, and an older one while its requests on it are in flight). */
struct proxy_config {
    _Atomic unsigned refs;
    struct proxy_spec *spec; /* owns the strings the routes point to */
    struct proxy_route *routes; /* longest prefix first */
    size_t nroutes;
    bool insecure;       /* https backends: the flag's or the file's */
    const char *ca_file; /* the flag's or the file's, or NULL */
};

struct rill_proxy {
    rill_server *server;
    rill_proxy_options opt;
    struct proxy_spec flags;   /* the --proxy routes, part of every configuration */
    char *config_file;         /* NULL: no file, nothing to reload */
    pthread_mutex_t lock;      /* a reload's swap and target list against a worker's adoption */
    _Atomic(struct proxy_config *) current;
    struct proxy_target *targets;
    unsigned ntargets;
    struct proxy_worker *workers; /* every worker's part (p->lock), told of each reload */
    struct tunnel_tls *tunnel_tls; /* https:// tunnels' TLS contexts (proxy_upstream.c) */
};

/* A worker's hold on one configuration: `requests` of its requests and tunnels in flight use it. */
struct config_hold {
    struct proxy_config *cfg;
    unsigned requests;
    struct config_hold *next;
};

struct proxy_worker;

/* One request on its way: the front exchange and the backend stream, each side ending on its
 * own; freed when both have (and no call of ours is under way on it). */
struct pxreq {
    rill_proxy *proxy;
    struct proxy_route *route;
    struct proxy_target *backend;
    struct config_hold *hold; /* keeps route and backend alive */
    unsigned tries;           /* backends tried (a bodyless request goes to the next one) */
    unsigned backend_at;      /* backend's position in the route */
    struct proxy_worker *worker;
    struct pxreq *live_prev, *live_next;
    rill_server_request *req; /* NULL once the front exchange closed */
    rill_client_stream *cst;  /* NULL before the backend request and after its on_end */
    rill_io_timer *timer;     /* first byte, then idle */
    uint64_t started_ms;      /* loop time the backend request started (time to first byte) */
    unsigned busy;            /* nested calls of ours on it: freeing waits for the outermost */
    size_t slot;              /* the client it went on, in the worker's pool for the backend */
    bool has_slot;
    bool started, plain, front_done, backend_done, got_head, timed_out, idle_out, saw_data;
    bool half_out;  /* a tunnel's half-close deadline passed (proxy_tunnel_half_close_note) */
    bool tunnel_open; /* a tunnel's 2xx came: saw_data counts both directions' bytes */
    bool req_paused, backend_paused;
    bool tunnel;    /* an extended CONNECT to an HTTP/2 backend (proxy_tunnel_as_connect) */
    bool tunnel_h1; /* ...asked for by an HTTP/1.1 Upgrade: its 2xx becomes the 101 */
    bool peer_ended; /* ...whose backend ended its side first (on_peer_end): passed on already */
    bool body_ended; /* the client's body ended and its end went to the backend stream */
    size_t nfields;
    size_t body_len;     /* a plain request's body: one with none can go to another backend */
    rill_header *fields; /* what goes to the backend (in this allocation) */
    char *cookies;       /* the joined cookie value's room, or NULL */
    size_t alloc_size;   /* of this allocation (a worker's spares are reused when large enough) */
    char scratch[];      /* PROXY_SCRATCH bytes: values made here (X-Forwarded-For, Via, ...) */
};

/* proxy.c */
/* A pxreq allocation of size bytes for a request on w, its struct zeroed: one of w's spares when
 * one is large enough (with the timer it kept, disarmed), else a new one; NULL without memory. */
struct pxreq *proxy_pxreq_get(struct proxy_worker *w, size_t size);
/* px is over: kept as one of w's spares (its timer with it), or freed. */
void proxy_pxreq_put(struct proxy_worker *w, struct pxreq *px);
/* A client of the worker's for px->backend (made on loop when none is free), counted busy for px
 * until proxy_client_done; NULL when it cannot be made (why in err). px is on the live list. */
/* The client options for backend t under configuration cfg: its origin and protocol, the
 * configuration's certificate settings, t's connect timeout, one connection per client. */
void proxy_client_options(const struct proxy_target *t, const struct proxy_config *cfg, rill_client_options *o);
rill_client *proxy_client(struct pxreq *px, rill_io_loop *loop, char *err, size_t errlen);
/* Whether px's backend is known to speak HTTP/2 (h2c://, or https:// that chose h2 before). */
bool proxy_backend_h2(const struct pxreq *px);
/* px's backend request is over; protocol (rill_client_stream_protocol) tells whether the
 * backend speaks HTTP/2. */
void proxy_client_done(struct pxreq *px, const char *protocol);
/* Puts px on its worker's list of requests in flight (for its exit) with a hold on the worker's
 * current configuration; false when out of memory. */
bool proxy_live_add(rill_proxy *p, rill_io_loop *loop, struct pxreq *px);
void proxy_live_remove(struct pxreq *px);
/* Requests (and open tunnels) from this worker on target (0 when none yet). */
unsigned proxy_worker_inflight(const struct proxy_worker *w, const struct proxy_target *t);
/* The calling worker's part of p (made on first use), or NULL when out of memory. */
struct proxy_worker *proxy_worker_get(rill_proxy *p, rill_io_loop *loop);

/* A tunnel's place on its worker: the worker's hold on the configuration its route and backend
 * are in (a reload does not free them under an open tunnel), its count on its backend (for
 * least-connections: a WebSocket is a connection for as long as it is open) and the worker's
 * list of open tunnels, ended at the worker's exit. */
struct proxy_tunnel_link {
    struct proxy_worker *worker; /* NULL: not on a worker's list */
    struct config_hold *hold;
    struct proxy_target *counted; /* the backend it is counted on, or NULL */
    struct proxy_tunnel_link *prev, *next;
};
/* Puts l on the worker's list with a hold on hold's configuration (NULL: the worker's current
 * one); false when out of memory. */
bool proxy_tunnel_link_add(rill_proxy *p, rill_io_loop *loop, struct proxy_tunnel_link *l,
                           struct config_hold *hold);
/* Counts l on t instead of the backend it was counted on. */
void proxy_tunnel_link_count(struct proxy_tunnel_link *l, struct proxy_target *t);
void proxy_tunnel_link_remove(struct proxy_tunnel_link *l);

/* proxy_build.c: a configuration from the flags' routes and a file's spec (taken, also on
 * failure; NULL for none); one line in err for a bad combination (a prefix twice). */
int proxy_config_build(rill_proxy *p, struct proxy_spec *file, struct proxy_config **out, char *err,
                       size_t errlen);
void proxy_config_unref(struct proxy_config *c);
/* The route for path (longest prefix first), or NULL. */
struct proxy_route *proxy_config_route(struct proxy_config *c, const char *path);

/* proxy_balance.c: the backend for a new request on route r (its position in *at); the next one
 * after a failure to connect; marking one down. Both pass over backends that failed to connect
 * (unless no other is left) and never give one that failed its health checks: NULL when no
 * backend of the route is left (all failed their checks; the next: none other). */
struct proxy_target *proxy_pick(struct proxy_route *r, const struct proxy_worker *w, unsigned *at);
struct proxy_target *proxy_pick_next(struct proxy_route *r, unsigned *at);
void proxy_mark_down(struct proxy_target *t, uint32_t down_ms);
bool proxy_check_down(const struct proxy_target *t);

/* proxy_health.c: active health checks. A worker's part runs, on its loop, the probes of the
 * backends with checks in the configuration in force that no other worker took; started at the
 * worker's start, told of each new configuration, freed at its exit (probes in flight dropped). */
struct proxy_health *proxy_health_new(struct proxy_worker *w, rill_io_loop *loop);
void proxy_health_reconfigured(struct proxy_health *h);
void proxy_health_free(struct proxy_health *h);
/* proxy.c, for the probes: the worker's configuration in force (its proxy's), its proxy. */
struct proxy_config *proxy_worker_config(struct proxy_worker *w);
rill_proxy *proxy_worker_proxy(const struct proxy_worker *w);

/* proxy_fields.c: the fields to send on (h2: the backend speaks HTTP/2, so `te: trailers` may
 * go). out has room for proxy_fields_max(req, r) entries,
 * scratch PROXY_SCRATCH bytes, cookies proxy_cookie_room(req) bytes (NULL when that is 0: at
 * most one cookie field, sent as it is). Returns the count. */
#define PROXY_SCRATCH 1024
size_t proxy_fields_max(const rill_server_request *req, const struct proxy_route *r);
size_t proxy_cookie_room(const rill_server_request *req);
size_t proxy_request_fields(const rill_server_request *req, const struct proxy_route *r, bool h2,
                            rill_header *out, char *scratch, char *cookies);
/* The fields of a backend's response (or 1xx, or trailers) that go on to the client: not
 * hop-by-hop, not named by its Connection fields, not dropped by drops (NULL: none). At most cap
 * go to out; returns how many did. The Connection fields are looked for once. */
size_t proxy_response_keep(const rill_header *fields, size_t n, const struct field_edit *drops,
                           rill_header *out, size_t cap);
/* Adds to res the backend's response fields that go on (proxy_response_keep), and not also_drop
 * (a lowercase name, or NULL); a field the server refuses stays behind alone. */
void proxy_response_pass(rill_server_response *res, const rill_header *fields, size_t n,
                         const struct field_edit *drops, const char *also_drop);
/* The request's trailer fields that go on to the backend (at most cap, into out): not pseudo,
 * not hop-by-hop (nor named by the request's Connection fields), none of RFC 9110 §6.5.1's
 * (framing, routing, authentication, content handling...), none of those the proxy manages
 * (forwarding fields, via), none the route's edits remove. Returns how many. */
size_t proxy_request_trailers(const rill_server_request *req, const struct proxy_route *r,
                              rill_header *out, size_t cap);
/* Whether the route's edit drops a field of this name. */
bool proxy_edit_drops(const struct field_edit *e, const rill_header *f);

/* proxy_tunnel.c: an HTTP/2 extended CONNECT or an HTTP/1.1 Upgrade, passed on as an Upgrade
 * request on a connection of its own; after the backend's 101, raw bytes both ways. r is the
 * route on_stream found (in the worker's current configuration, or in hold's when not NULL: a
 * tunnel that an https:// backend's h2 could not take), b its backend picked (at its position in
 * the route). */
bool proxy_tunnel_wanted(const rill_server_request *req);
/* The line on stderr for a tunnel closed at its half-close deadline (ms): client_first says which
 * side ended. */
void proxy_tunnel_half_close_note(const struct proxy_target *b, bool client_first, uint32_t ms);
void proxy_tunnel_handle(rill_server_request *req, rill_server_response *res, struct proxy_route *r,
                         struct proxy_target *b, unsigned at, struct config_hold *hold);
/* The worker exits with the tunnel open: its front exchange is forgotten, its backend connection
 * closed, the tunnel freed. */
void proxy_tunnel_abandon(struct proxy_tunnel_link *l);
/* Whether the tunnel goes to b as an extended CONNECT: an HTTP/2 client to an h2c:// backend.
 * Then proxy_handle forwards it as a streamed request, the :protocol field put first into the n
 * fields (room for one more) by proxy_tunnel_connect_fields, which returns the new count. */
bool proxy_tunnel_as_connect(const rill_server_request *req, const struct proxy_target *b,
                             bool over_h2);
/* Whether a tunnel to b goes as an extended CONNECT on the worker's HTTP/2 client: an h2c://
 * backend, or an https:// one the worker has seen choose h2 by ALPN and not refuse extended
 * CONNECT (proxy_no_connect: from then on its tunnels go as HTTP/1.1 Upgrades). */
bool proxy_tunnel_over_h2(struct proxy_worker *w, const struct proxy_target *b);
void proxy_no_connect(struct pxreq *px);
size_t proxy_tunnel_connect_fields(const rill_server_request *req, rill_header *fields, size_t n);
/* An HTTP/1.1 client's tunnel that the HTTP/2 backend accepted (2xx, its fields set on res):
 * the 101 (with the Sec-WebSocket-Accept for the client's key). RILL_OK or the server's error. */
int proxy_tunnel_accept_h1(rill_server_response *res);

/* proxy_forward.c */
void proxy_handle(rill_server_request *req, rill_server_response *res, void *user);
/* The access log's note on res: the backend t and its time to first byte since started_ms (a
 * dash when it did not answer). */
void proxy_note_backend(rill_server_response *res, const struct proxy_target *t, uint64_t started_ms,
                        bool answered);
/* What the proxy adds to a backend's answer head on route r: Via (this value, when the route's
 * forwarding keeps it and its edits do not drop it), then the route's own response fields. */
void proxy_response_own_fields(rill_server_response *res, const struct proxy_route *r,
                               const char *via);
/* The worker exits with px in flight: its front exchange is forgotten, px freed. */
void pxreq_abandon(struct pxreq *px);

#endif
