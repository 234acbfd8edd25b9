/* Internal structures of the server: server -> workers (one loop per thread) -> sessions (one per
 * connection) -> exchanges (rill_server_stream: one request/response). The transport-specific parts
 * (HTTP/1.1 in h1_session.c, HTTP/2 in h2_session.c) plug into an exchange through exchange_ops. */
#ifndef RILL_SERVER_INTERNAL_H
#define RILL_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "conn/conn.h"
#include "rill/h1.h"
#include "rill/h2.h"
#include "rill/io.h"
#include "rill/server.h"
#include "server/slab.h"
#include "rill/tls.h"

struct tunnel {
    char *protocol;
    rill_server_handler_fn fn;
    void *user;
    struct tunnel *next;
};

struct route {
    char *prefix;
    size_t prefix_len;
    bool exact; /* the whole path must match (WebSocket endpoints) */
    rill_server_handler_fn fn;
    void *user;
    void (*free_user)(void *user); /* owned route data, freed with the server */
};

int server_add_route(rill_server *s, const char *prefix, rill_server_handler_fn fn, void *user, bool exact,
                     void (*free_user)(void *));

/* Counters a worker owns; other threads only read them (relaxed). Padded against false sharing. */
struct worker_stats {
    _Atomic uint64_t connections, streams, requests;
    char pad[64 - 3 * sizeof(uint64_t)];
};

/* Sizes asked of buf_pool.c: the HTTP/2 engines' header block, segment ring, four output chunk
 * sizes and the HPACK encoder's learning, HTTP/1.1 file pieces, exchange arena blocks: nine, with
 * room for more. A size beyond the table gets NULL (callers fall back or fail the request). */
#define BUF_POOL_CLASSES 16

struct worker {
    struct rill_server *srv;
    uint64_t sessions_started; /* for session ids */
    rill_io_loop *loop;
    pthread_t thread;
    unsigned index;
    struct worker_stats stats;
    /* The worker's memory for brief objects, apart from the heap (worker_pools.c) */
    struct slab_cache exchanges;
    struct slab_cache bufs[BUF_POOL_CLASSES];
    rill_io_timer *release_timer;       /* made on first use */
    uint64_t last_release_ms;
    bool pools_stopped; /* the timer is gone: the loop is being freed */
};

struct rill_server {
    rill_server_options opt; /* strings point into owned copies below */
    char *listen, *tls_listen, *cert_file, *key_file, *state_dir, *access_log_path;
    char self_signed_cert[512], self_signed_key[512];
    struct route *routes;
    size_t nroutes;
    rill_server_session_fn on_session;
    void *on_session_user;
    rill_server_stream_fn on_stream;
    void *on_stream_user;
    rill_server_session_events events;
    void *events_user;
    rill_tls_ctx *tls;
    struct worker *workers;
    unsigned nworkers;
    int access_log_fd;
    _Atomic bool stopping;
    uint16_t port, tls_port;
    void *static_roots; /* list of static mounts (static_handler.c) */
    char **ws_origins;
    size_t nws_origins;
    struct tunnel *tunnels; /* RFC 8441 handlers by :protocol */
    rill_server_worker_fn on_worker_exit; /* rill_server_on_worker_exit */
    void *on_worker_exit_user;
    rill_server_worker_fn on_worker_start; /* rill_server_on_worker_start */
    void *on_worker_start_user;
    rill_server_reload_fn on_reload; /* rill_server_on_reload */
    void *on_reload_user;
    rill_h2_profile *h2_profile; /* every HTTP/2 session's options, shared (h2_profile_new) */
};

struct exchange_ops;

/* One connection. Every idle connection costs this struct: keep it small. */
struct rill_server_session {
    struct conn c; /* first: the connection layer's pointer is the session's (session_of) */
    uint8_t protocol; /* rill_protocol */
    bool tls;
    bool announced; /* on_session ran: on_close (the event) is owed */
    bool h2_upgrading; /* the engine is handing over an h2c Upgrade's request (not packed: h2_session_start) */
    bool peer_eof;  /* HTTP/1.1: the client's FIN came while its Upgrade waited (a tunnel's end) */
    char *peer; /* the peer address as text: from the first exchange on (session_peer) */
    uint64_t id; /* worker index << 40 | sequence: tells connections apart in logs and the demo */
    uint32_t requests; /* exchanges started on this connection */
    uint32_t open_streams;
    struct rill_server_stream *live; /* every exchange not yet closed, for cleanup on connection loss */
    uint8_t *detect_buf; /* cleartext: the first bytes while they cannot tell the protocol */
    /* HTTP/2 */
    rill_h2_session *h2;
    /* HTTP/1.1 */
    struct h1_state *h1;
    /* an HTTP/1.1 connection upgraded to WebSocket */
    struct rill_websocket *websocket;
    /* an HTTP/1.1 connection switched to a raw tunnel (tunnel.c): the exchange that carries it */
    struct rill_server_stream *tunnel;
};

static inline rill_server_session *session_of(const struct conn *c)
{
    return (rill_server_session *)(void *)c; /* c is the first member */
}

struct header_list {
    rill_header *items; /* items[-1] is free (header_list_grow): room for an HTTP/2 :status */
    size_t count, cap;
    size_t unvouched; /* fields without HEADER_VOUCHED */
    unsigned has;     /* HAS_* of the names the response path asks about */
};
/* The names the server looks for in every response, known from their adds (no scan). */
enum { HAS_DATE = 1, HAS_SERVER = 2, HAS_CONTENT_LENGTH = 4 };
static inline unsigned header_list_name_bit(const char *lower, size_t n)
{
    switch (n) {
    case 4: return memcmp(lower, "date", 4) == 0 ? HAS_DATE : 0;
    case 6: return memcmp(lower, "server", 6) == 0 ? HAS_SERVER : 0;
    case 14: return memcmp(lower, "content-length", 14) == 0 ? HAS_CONTENT_LENGTH : 0;
    default: return 0;
    }
}

/* One request/response exchange (rill_server_stream == rill_server_request == rill_server_response). */
/* An HTTP/1.1 request's WebSocket handshake, as rill_h1_websocket_upgrade judged it. */
enum ws_request {
    WS_NOT_ASKED,     /* no Upgrade: websocket */
    WS_VALID,         /* a valid upgrade */
    WS_MALFORMED,     /* asked, but malformed: 400 */
    WS_WRONG_VERSION, /* asked with a version other than 13: 426 */
};

struct rill_server_stream {
    rill_server_session *sess;
    const struct exchange_ops *ops;
    int32_t id;
    uint32_t nreq_trailers; /* the request's trailer fields (req_trailers, in the arena) */
    /* request */
    rill_header *all_fields; /* pseudo-headers, then the regular ones (in the arena) */
    const char *method, *scheme, *authority, *path, *connect_protocol, *version;
    size_t path_len;    /* of path */
    size_t route_len;   /* of path before its query: what routes and files match */
    rill_header *req_trailers;
    rill_header *fields; /* regular fields, lowercase names, NUL-terminated names and values */
    size_t nfields;
    bool head_request;
    rill_server_body_fn body_fn;
    void *body_user;
    uint8_t *early_body; /* body bytes that arrived before on_body was set */
    size_t early_len;
    bool request_ended;
    bool request_end_delivered;
    bool body_paused;
    bool body_lost; /* out of memory while holding body bytes: answered 500, the rest dropped */
    /* response */
    int status;
    struct header_list resp_fields, trailers;
    bool head_sent, ended, closed, completed;
    bool end_sent; /* the transport has signalled the end of the response */
    /* The response's fields are those of a head named by (head_serial, head_date_sec) alone (see
     * exchange_end_named): the encoder may send it again without it being built. 0: not so. */
    uint64_t head_serial;
    int64_t head_date_sec; /* the second of the Date field added to it */
    uint8_t busy;  /* inside an API call or a handler: closing waits until it returns */
    bool close_pending, close_completed;
    size_t queued; /* response bytes handed to the transport and not yet written */
    uint64_t body_bytes;
    const char *log_note; /* rill_server_response_log_note, in the arena */
    rill_server_response_fn drain_fn;
    void *drain_user;
    rill_server_close_fn close_fn;
    void *close_user;
    void *user;
    int file_fd; /* a file being sent (owned by whoever set `release`) */
    void (*release)(void *arg); /* called when the exchange is freed */
    void *release_arg;
    uint64_t file_off, file_left;
    /* transport-specific */
    bool chunked;   /* HTTP/1.1 response uses chunked coding */
    bool keep_alive; /* HTTP/1.1 */
    uint8_t ws_request; /* enum ws_request: what an HTTP/1.1 request asked of WebSocket */
    struct rill_server_stream *live_prev, *live_next;
    /* Per-exchange bump arena: request strings, response and trailer fields all live here and go
     * with the exchange, so a typical request costs no malloc beyond the (pooled) exchange. */
    struct arena_block *arena_more; /* overflow blocks once the inline part is full */
    size_t arena_used;
    _Alignas(16) char arena[];     /* EXCHANGE_ARENA bytes */
};

#define EXCHANGE_ARENA 1024u

/* What a transport provides to an exchange. All return RILL_OK or a negative RILL_ERR_*. */
struct exchange_ops {
    int (*send_head)(rill_server_stream *st, bool end_stream);
    int (*send_informational)(rill_server_stream *st, int status, const rill_header *f, size_t n);
    /* Bytes are copied. Returns RILL_ERR_WOULD_BLOCK when accepted but over the high-water mark. */
    int (*send_body)(rill_server_stream *st, const void *data, size_t len);
    /* Streams st->file_fd from st->file_off for st->file_left bytes, then ends. */
    int (*send_file)(rill_server_stream *st);
    int (*finish)(rill_server_stream *st); /* end of body, trailers if any */
    /* Optional: the last body bytes and the end together (HTTP/2: DATA with END_STREAM). kept:
     * the bytes stay valid until the exchange is freed (a cached file's), so need no copy. */
    int (*send_last)(rill_server_stream *st, const void *data, size_t len, bool kept);
    int (*push)(rill_server_stream *st, const char *path);
    /* Optional (HTTP/2): sends a 200 head whose fields token names if the connection's encoder can
     * send the same bytes again (see h2_submit_response_replay): 0 sent, 1 not possible. */
    int (*replay_head)(rill_server_stream *st, const uint64_t token[2], bool end_stream);
    /* Optional (HTTP/1.1): a 101 head with Upgrade: protocol, after the response's fields. */
    int (*switch_protocols)(rill_server_stream *st, const char *protocol);
    void (*pause_body)(rill_server_stream *st, bool paused);
    void (*consumed)(rill_server_stream *st, size_t n);
};

extern const struct exchange_ops h1_exchange_ops, h2_exchange_ops;

/* exchange.c: the life of an exchange */
/* The transport is done with the exchange: calls on_close, logs, frees. */
void exchange_closed(rill_server_stream *st, bool completed);
/* An exchange cannot be freed between hold and release (a close meanwhile happens at release). */
void exchange_hold(rill_server_stream *st);
void exchange_release(rill_server_stream *st);
void exchange_drained(rill_server_stream *st);

/* exchange_memory.c */
rill_server_stream *exchange_new(rill_server_session *sess, const struct exchange_ops *ops, int32_t id);
/* Back to the thread's pool (exchange_closed does it). */
void exchange_free(rill_server_stream *st);
/* Bump allocation from the exchange's arena, freed with the exchange (aligned to 8). */
void *exchange_alloc(rill_server_stream *st, size_t n);
/* exchange_memory.c, for worker_pools_init: the worker's exchange slab. */
void worker_exchanges_init(struct worker *w);
/* worker_pools.c: a worker's slabs for exchanges and buffers. init before the worker's loop is
 * made; stop (frees the release timer) before the loop is freed, destroy after (its connections
 * free exchanges and buffers as the loop closes them). */
void worker_pools_init(struct worker *w);
void worker_pools_stop(struct worker *w);
void worker_pools_destroy(struct worker *w);
/* The worker whose loop runs on this thread (set by worker_enter as the loop starts): the HTTP/2
 * engines' buffer pool is shared by every worker, so its get finds the thread's slabs here. */
void worker_enter(struct worker *w);
struct worker *worker_current(void);
/* A connection of w has gone quiet: a moment after the last one has, the empty slabs and the
 * heap's free pages go back to the system. */
void worker_pools_release_soon(struct worker *w);
/* Copies the field into the exchange's arena, the name lowercased (unless flags has
 * HEADER_NAME_LOWER: it is already). The rill_header flags are kept with it: RILL_HEADER_VALID when
 * the field was checked (valid_field) or is the server's own, so the HTTP/2 engine does not check
 * it again. */
#define HEADER_NAME_LOWER 0x100u
/* The field passes every rule HTTP/2 has for a response's regular field (valid_field, or the
 * server's own), so the HTTP/2 head goes out without the engine's walk (h2/h2_vouched.h). */
#define HEADER_VOUCHED 0x200u
int header_list_add(rill_server_stream *st, struct header_list *l, const char *name, size_t nlen,
                    const char *value, size_t vlen, uint32_t flags);
/* Room for more fields (the old array stays in the arena: lists rarely grow). */
int header_list_grow(rill_server_stream *st, struct header_list *l);
/* Adds the field without copying it: name and value must be NUL-terminated and outlive the
 * exchange (literals; strings of what res->release keeps, such as a file cache entry). Inline:
 * the static handler adds most of its fields this way. */
static inline int header_list_add_ref(rill_server_stream *st, struct header_list *l, const char *name,
                                      size_t nlen, const char *value, size_t vlen, uint32_t flags)
{
    if (l->count == l->cap && header_list_grow(st, l) != RILL_OK)
        return RILL_ERR_NOMEM;
    l->items[l->count++] = (rill_header){(const uint8_t *)name, nlen, (const uint8_t *)value, vlen, flags};
    l->unvouched += !(flags & HEADER_VOUCHED);
    l->has |= header_list_name_bit(name, nlen); /* lowercase: see above */
    return RILL_OK;
}
/* A field the server itself makes (a lowercase literal name, a value it formatted): no checks. */
static inline int exchange_add_field(rill_server_stream *st, const char *name, size_t nlen,
                                     const char *value, size_t vlen)
{
    return header_list_add(st, &st->resp_fields, name, nlen, value, vlen,
                           RILL_HEADER_VALID | HEADER_NAME_LOWER | HEADER_VOUCHED);
}
/* The same, for a value that outlives the exchange (see header_list_add_ref): not copied. */
static inline int exchange_add_field_ref(rill_server_stream *st, const char *name, size_t nlen,
                                         const char *value, size_t vlen)
{
    return header_list_add_ref(st, &st->resp_fields, name, nlen, value, vlen, RILL_HEADER_VALID | HEADER_VOUCHED);
}
/* Removes every field of this name (any case). */
void header_list_remove(struct header_list *l, const char *name);

/* route.c: runs on_stream / a tunnel / the routes (404 when nothing matches). */
void exchange_dispatch(rill_server_stream *st);

/* request.c */
/* Takes the request: HTTP/2-style fields (pseudo-headers first). Copies into the arena. */
enum request_layout {
    REQUEST_NAMES_LOWER = 1, /* the transport checked that names are lowercase (HTTP/2): copied as they are */
    REQUEST_PACKED = 2,      /* names and values lie one after another, each NUL-terminated (a block
                              * from the HTTP/2 engine, rill/h2.h on_headers): copied in one piece */
};
int exchange_set_request(rill_server_stream *st, const rill_header *fields, size_t n, const char *version,
                         unsigned layout);
/* Request body bytes from the transport (to on_body, or held until it is set). */
void exchange_body(rill_server_stream *st, const uint8_t *data, size_t len);
void exchange_body_end(rill_server_stream *st);
/* The request's trailer fields, before its body's end (kept in the arena; pseudo-header fields
 * are not taken). names_lowercase as for exchange_set_request. RILL_ERR_NOMEM. */
int exchange_request_trailers(rill_server_stream *st, const rill_header *fields, size_t n,
                              bool names_lowercase);

/* response.c */
/* HTTP/1.1: answers 101 with the response's fields and Upgrade: protocol, and completes the
 * exchange; the connection's next bytes are the new protocol's. RILL_ERR_STATE elsewhere. */
int exchange_switch_protocols(rill_server_stream *st, const char *protocol);
/* Whether the response carries a body at all (not for HEAD, 204, 304). */
bool exchange_body_allowed(const rill_server_stream *st);
int exchange_send_file(rill_server_stream *st, int fd, uint64_t offset, uint64_t length);
/* Ends a 200 response whose fields, once the server's Date and Server are added, depend on serial
 * alone (a file cache entry's: see static_handler.c), with this whole body. If the connection just
 * sent that head (HTTP/2, same second), it goes again without the fields; else add_fields(arg) adds
 * them and the response ends as rill_server_response_end would. */
int exchange_end_named(rill_server_stream *st, uint64_t serial, void (*add_fields)(rill_server_stream *, void *),
                       void *arg, const void *data, size_t len);
/* Simple complete responses for errors and redirects. */
int exchange_respond_simple(rill_server_stream *st, int status, const char *content_type, const char *body);

/* access_log_writer.c: one line into the worker's log buffer (written within 100 ms, or when
 * full); access_log_flush_thread writes what is left at the worker's exit. */
struct rill_access_log_entry;
void access_log_append(rill_server_session *sess, const struct rill_access_log_entry *e);
void access_log_flush_thread(void);

/* Per-exchange output limits: over HIGH a write returns RILL_ERR_WOULD_BLOCK, below LOW the
 * drain callback fires. */
#define EXCHANGE_HIGH_WATER (256u * 1024)
#define EXCHANGE_LOW_WATER (64u * 1024)
#define FILE_CHUNK (64u * 1024)

/* session.c: the server's connections on the connection layer (src/conn) */
/* The peer address as text (without the port), formatted on first use and kept while the session
 * lives; "" if unknown. The first exchange asks for it, while the peer is surely still there. */
const char *session_peer(rill_server_session *sess);
/* Every server protocol's conn_proto.busy: exchanges in flight. */
bool session_busy(const struct conn *c);
extern const struct rill_io_conn_callbacks session_callbacks;
static inline void session_flush(rill_server_session *sess) { conn_flush(&sess->c); }
static inline void session_close(rill_server_session *sess) { conn_close(&sess->c); }

/* The worker a session runs on: its loop's user pointer (not stored per session: idle memory). */
static inline struct worker *session_worker(const rill_server_session *sess)
{
    return rill_io_loop_user(rill_io_conn_loop(sess->c.io));
}

/* The protocols a server connection runs (conn_proto tables; each start function sets its own). */
extern const struct conn_proto h1_proto, h2_proto, ws_proto;

/* h1_session.c: HTTP/1.1 (h1_proto). start runs it on the session. */
int h1_session_start(rill_server_session *sess);
void h1_session_data(rill_server_session *sess, const uint8_t *data, size_t len);
void h1_session_free(rill_server_session *sess);
/* A head that began while the protocol was still being detected ran out of time: 408. */
void h1_session_head_expired(rill_server_session *sess);
/* buf_pool.c: the worker's fixed-size buffers, a slab cache per size (at most BUF_POOL_CLASSES
 * sizes; more are an error: NULL). get on the worker's thread; put with the size given to get. */
void *buf_pool_get(struct worker *w, size_t size);
void buf_pool_put(void *buf, size_t size);
/* h2_session.c: HTTP/2 (h2_proto). start runs it on the session; with `upgraded`, the h2c
 * Upgrade's request becomes stream 1. */
rill_h2_profile *h2_profile_new(const rill_server_options *o);
int h2_session_start(rill_server_session *sess, const uint8_t *settings_payload, size_t payload_len,
                     const rill_header *upgraded, size_t nupgraded);
void h2_session_data(rill_server_session *sess, const uint8_t *data, size_t len);
void h2_session_flush(rill_server_session *sess);
/* Frees the thread's pool of body chunks (worker exit). */
void h2_pools_clear(void);

/* websocket.c: after a WebSocket 101 the connection runs ws_proto */
bool ws_route_is(const struct route *r);

/* tunnel.c: after a tunnel's 101 (rill_server_response_tunnel) the connection runs tunnel_proto,
 * its bytes the exchange's body. h1_session.c switches once the request is read: */
extern const struct conn_proto tunnel_proto;
/* The client's FIN on a tunnel's connection: its body's end (a half-close; our side goes on). */
void tunnel_peer_ended(rill_server_session *sess);
/* The exchange answered 101 for a tunnel: switch now if the request is read and nothing is being
 * parsed, else at the request's end (process()). */
void h1_session_tunnel_ready(rill_server_session *sess);
/* response.c: the 101 of a tunnel; unlike exchange_switch_protocols the response goes on (its
 * body is the tunnel's bytes). */
int exchange_switch_to_tunnel(rill_server_stream *st, const char *protocol);

/* static_handler.c / demo_handler.c */
void static_mounts_free(rill_server *s);

#endif
