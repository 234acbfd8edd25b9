/* What the proxy's files share: the proxy, its routes and backends, one forwarded request. */
#ifndef RILL_PROXY_INTERNAL_H
#define RILL_PROXY_INTERNAL_H

#include <stdatomic.h>

#include "proxy/proxy.h"

struct proxy_backend {
    char *url;       /* as given, for messages */
    char *origin;    /* what rill_client gets: http://host:port or https://... */
    bool h2c, https; /* h2c: HTTP/2 by prior knowledge on cleartext */
    unsigned index;  /* among the proxy's backends: the slot in a worker's client array */
    struct rill_io_addr tunnel_addr; /* tunnels connect here (proxy_upstream.c: resolved once) */
    bool tunnel_addr_known;
};

struct proxy_route {
    rill_proxy *proxy;
    char *prefix;
    size_t first, nbackends; /* the route's backends: p->backends[first ...] */
    _Atomic unsigned turn;   /* round robin */
};

struct rill_proxy {
    rill_server *server;
    rill_proxy_options opt;
    struct proxy_route **routes;
    size_t nroutes;
    struct proxy_backend **backends;
    size_t nbackends;
    rill_tls_ctx *tunnel_tls; /* https:// tunnels (proxy_upstream.c), made on first use */
};

struct proxy_worker;

/* One request on its way: the front exchange and the backend stream, each side ending on its
 * own; freed when both have (and no call of ours is under way on it). */
struct pxreq {
    rill_proxy *proxy;
    struct proxy_route *route;
    struct proxy_backend *backend;
    unsigned tries; /* backends tried (a bodyless request goes to the next one that connects) */
    struct proxy_worker *worker;
    struct pxreq *live_prev, *live_next;
    rill_server_request *req; /* NULL once the front exchange closed */
    rill_client_stream *cst;  /* NULL before the backend request and after its on_end */
    rill_io_timer *timer;     /* first byte */
    unsigned busy;            /* nested calls of ours on it: freeing waits for the outermost */
    size_t slot;              /* the client it went on, in the worker's pool for the backend */
    bool has_slot;
    bool started, plain, front_done, backend_done, got_head, timed_out;
    bool req_paused, backend_paused;
    bool tunnel;    /* an extended CONNECT to an HTTP/2 backend (proxy_tunnel_as_connect) */
    bool tunnel_h1; /* ...asked for by an HTTP/1.1 Upgrade: its 2xx becomes the 101 */
    size_t nfields;
    size_t body_len;     /* a plain request's body: one with none can go to another backend */
    rill_header *fields; /* what goes to the backend (in this allocation) */
    char *cookies;       /* the joined cookie value's room, or NULL */
    char scratch[];      /* PROXY_SCRATCH bytes: values made here (X-Forwarded-For, Via) */
};

/* proxy.c */
const rill_proxy_options *proxy_options(const rill_proxy *p);
struct proxy_backend *proxy_pick(rill_proxy *p, struct proxy_route *r);
/* A client of the worker's for px->backend (made on loop when none is free), counted busy for px
 * until proxy_client_done; NULL when it cannot be made (why in err). px is on the live list. */
rill_client *proxy_client(struct pxreq *px, rill_io_loop *loop, char *err, size_t errlen);
/* Whether px's backend is known to speak HTTP/2 (h2c://, or https:// that chose h2 before). */
bool proxy_backend_h2(const struct pxreq *px);
/* px's backend request is over; protocol (rill_client_stream_protocol) tells whether the
 * backend speaks HTTP/2. */
void proxy_client_done(struct pxreq *px, const char *protocol);
/* The worker's list of requests in flight, for its exit. */
void proxy_live_add(rill_proxy *p, rill_io_loop *loop, struct pxreq *px);
void proxy_live_remove(struct pxreq *px);

/* proxy_fields.c: the fields to send on (h2: the backend speaks HTTP/2, so `te: trailers` may
 * go). out has room for proxy_fields_max(req) entries,
 * scratch PROXY_SCRATCH bytes, cookies proxy_cookie_room(req) bytes (NULL when that is 0: at
 * most one cookie field, sent as it is). Returns the count. */
#define PROXY_SCRATCH 512
size_t proxy_fields_max(const rill_server_request *req);
size_t proxy_cookie_room(const rill_server_request *req);
size_t proxy_request_fields(const rill_server_request *req, bool h2, rill_header *out,
                            char *scratch, char *cookies);
/* Whether a response field (or trailer) from a backend is hop-by-hop, not passed on; fields are
 * the whole response's, for the names its Connection field lists. */
bool proxy_response_hop(const rill_header *f, const rill_header *fields, size_t n);

/* proxy_tunnel.c: an HTTP/2 extended CONNECT or an HTTP/1.1 Upgrade, passed on as an Upgrade
 * request on a connection of its own; after the backend's 101, raw bytes both ways. */
bool proxy_tunnel_wanted(const rill_server_request *req);
void proxy_tunnel_handle(rill_server_request *req, rill_server_response *res, struct proxy_route *r,
                         struct proxy_backend *b);
/* Whether the tunnel goes to b as an extended CONNECT: an HTTP/2 client to an h2c:// backend.
 * Then proxy_handle forwards it as a streamed request, the :protocol field put first into the n
 * fields (room for one more) by proxy_tunnel_connect_fields, which returns the new count. */
bool proxy_tunnel_as_connect(const rill_server_request *req, const struct proxy_backend *b);
size_t proxy_tunnel_connect_fields(const rill_server_request *req, rill_header *fields, size_t n);
/* An HTTP/1.1 client's tunnel that the HTTP/2 backend accepted (2xx, its fields set on res):
 * the 101 (with the Sec-WebSocket-Accept for the client's key). RILL_OK or the server's error. */
int proxy_tunnel_accept_h1(rill_server_response *res);

/* proxy_forward.c */
void proxy_handle(rill_server_request *req, rill_server_response *res, void *user);
/* The worker exits with px in flight: its front exchange is forgotten, px freed. */
void pxreq_abandon(struct pxreq *px);

#endif
