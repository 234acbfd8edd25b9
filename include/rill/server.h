/* rill server: HTTP/2 (h2 over TLS by ALPN, h2c by prior knowledge or Upgrade) and HTTP/1.1 on the
 * same listeners, shaped like Node's http2 module.
 *
 *   server ──emits──> session (one per connection: rill_server_on_session)
 *          session ──emits──> stream with its request headers (core API: rill_server_on_stream)
 *   and a compatibility API on top: a handler gets (request, response) and serves HTTP/1.1 and
 *   HTTP/2 alike (rill_server_route). A stream not claimed by on_stream goes to the routes.
 *
 * Threading: rill_server_run() starts one event loop per worker thread. Every callback for a
 * session and its streams runs on that session's worker thread; handlers must not block. Requests,
 * responses and sessions are only valid on that thread, inside the callbacks that hand them out
 * and until the exchange ends (see rill_server_response_on_close).
 *
 * Ownership: strings returned by rill_server_request_* point into the request and live as long as it;
 * bytes given to rill_server_response_write / _end are copied (or referenced where a function says so). */
#ifndef RILL_SERVER_H
#define RILL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/common.h"
#include "rill/h2.h"
#include "rill/hpack.h"
#include "rill/io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_server rill_server;
typedef struct rill_server_session rill_server_session;
typedef struct rill_server_stream rill_server_stream;
/* The compatibility API's views of a stream (the same object). */
typedef struct rill_server_stream rill_server_request;
typedef struct rill_server_stream rill_server_response;

typedef enum rill_protocol {
    RILL_PROTOCOL_HTTP1 = 1, /* HTTP/1.x, cleartext or TLS */
    RILL_PROTOCOL_H2C = 2,   /* HTTP/2 over cleartext (prior knowledge or Upgrade) */
    RILL_PROTOCOL_H2 = 3,    /* HTTP/2 over TLS (ALPN) */
} rill_protocol;

typedef struct rill_server_options {
    size_t size;             /* sizeof(rill_server_options), set by rill_server_options_init */
    const char *listen;      /* cleartext "HOST:PORT" (default "127.0.0.1:8080"); NULL = none */
    const char *tls_listen;  /* TLS "HOST:PORT" (default "127.0.0.1:8443"); NULL = none */
    const char *cert_file;   /* PEM; NULL with tls_listen: a self-signed localhost certificate */
    const char *key_file;
    const char *state_dir;   /* where the self-signed certificate is kept (NULL = default) */
    unsigned threads;        /* worker threads; 0 = number of CPUs */
    unsigned max_connections;        /* per server (default 10000) */
    uint32_t max_concurrent_streams; /* HTTP/2, per connection (default 100) */
    uint32_t initial_window_size;    /* HTTP/2 stream receive window (default 256 KiB) */
    uint32_t connection_window_size; /* HTTP/2 connection receive window (default 1 MiB) */
    uint32_t max_header_list_size;   /* bytes (default 64 KiB); larger requests get 431 */
    uint32_t idle_timeout_ms;        /* close connections idle this long (default 120000) */
    uint32_t header_timeout_ms;      /* HTTP/1.1: a request head must arrive within (10000) */
    uint32_t shutdown_timeout_ms;    /* graceful shutdown deadline (default 10000) */
    const char *access_log;          /* path, "-" for stdout, NULL for none */
    bool enable_connect_protocol;    /* RFC 8441 extended CONNECT (default true) */
} rill_server_options;

/* Fills *o with the defaults above. */
RILL_API void rill_server_options_init(rill_server_options *o);

/* A server with these options (copied; NULL = defaults). Nothing is bound yet. Returns
 * RILL_ERR_INVALID_ARG with a one-line reason in err for bad options (also a bad size, see
 * "Public API conventions" in docs/ARCHITECTURE.md). *out is freed with rill_server_free(). */
RILL_API int rill_server_new(const rill_server_options *o, rill_server **out, char *err,
                             size_t errlen);
RILL_API void rill_server_free(rill_server *s);

/* ---- compatibility API ------------------------------------------------------------------------ */

/* Called once the request head is complete; the body (if any) follows through
 * rill_server_request_on_body. The handler answers now or later (on the same thread). */
typedef void (*rill_server_handler_fn)(rill_server_request *req, rill_server_response *res, void *user);

/* Routes requests whose path starts with prefix (longest prefix wins; "/" catches all). */
RILL_API int rill_server_route(rill_server *s, const char *prefix, rill_server_handler_fn fn, void *user);

/* Serves static files from dir under prefix (see docs: ETag, Range, precompressed siblings). */
RILL_API int rill_server_static(rill_server *s, const char *prefix, const char *dir, char *err,
                                size_t errlen);

/* Serves the built-in demo site (page, /api/stats) under "/". */
RILL_API int rill_server_demo(rill_server *s);

/* ---- core API (Node http2 shape) -------------------------------------------------------------- */

/* A connection was established: protocol is known (HTTP/1.1 connections are sessions too). */
typedef void (*rill_server_session_fn)(rill_server_session *session, void *user);
RILL_API void rill_server_on_session(rill_server *s, rill_server_session_fn fn, void *user);

/* A stream with its request headers (HTTP/2 style, pseudo-headers first; for HTTP/1.1 the head is
 * presented the same way). Return true to claim it (then answer with rill_server_stream_respond...,
 * or with the compatibility API: the stream is the request and the response, as a route handler
 * gets them); false passes it on to the routes. */
typedef bool (*rill_server_stream_fn)(rill_server_stream *stream, const rill_header *headers, size_t count,
                               void *user);
RILL_API void rill_server_on_stream(rill_server *s, rill_server_stream_fn fn, void *user);

/* How specific the routes' own choice for stream would be: the length of the longest route
 * prefix matching its path, -1 when no route matches. For an on_stream hook that routes some
 * requests itself and gives way to more specific routes. Tunnel protocols (rill_server_tunnel)
 * answer for any path, so they do not count: such a hook also takes the extended CONNECTs under
 * its prefixes (check rill_server_request_connect_protocol to leave them to the server). */
RILL_API int rill_server_route_length(const rill_server_stream *stream);

/* Session events, as Node's session 'close', 'goaway' and 'remoteSettings'. One set per server
 * (copied; any member may be NULL; NULL events = none), each called on the session's worker
 * thread. The caller sets size to sizeof(rill_server_session_events); a bad size is RILL_ERR_INVALID_ARG
 * and leaves the events as they were. */
typedef struct rill_server_session_events {
    size_t size; /* sizeof(rill_server_session_events) */
    /* The connection is over and its streams are closed (their on_close ran). Only for sessions
     * announced by on_session. Only the rill_server_session_id/_protocol/_peer getters may be used; the
     * session is freed when this returns. */
    void (*on_close)(rill_server_session *session, void *user);
    /* HTTP/2: the peer sent GOAWAY. It opens no streams above last_stream_id; the ones in flight
     * still finish. error_code 0 (NO_ERROR) is a graceful goodbye. */
    void (*on_goaway)(rill_server_session *session, uint32_t error_code, int32_t last_stream_id,
                      void *user);
    /* HTTP/2: a SETTINGS frame from the peer was applied (the first one and any later ones). */
    void (*on_remote_settings)(rill_server_session *session, const rill_h2_settings *settings, void *user);
} rill_server_session_events;
RILL_API int rill_server_on_session_events(rill_server *s, const rill_server_session_events *events,
                                           void *user);

/* Node's session.close(): a graceful end of one connection. HTTP/2: GOAWAY (NO_ERROR, after a
 * PING round trip so requests already sent are counted), streams in flight finish, then the
 * connection closes. HTTP/1.1: the response in progress is the last one; with none, the connection
 * closes now. Safe to call again, and from the session's callbacks. */
RILL_API void rill_server_session_close(rill_server_session *session);
/* Node's session.destroy(): ends the connection now. HTTP/2 sends GOAWAY with error_code first
 * (best effort); streams in flight end with rill_server_response_on_close(completed = false). */
RILL_API void rill_server_session_destroy(rill_server_session *session, uint32_t error_code);
/* HTTP/2: the peer's settings in force (the protocol defaults until its SETTINGS arrive);
 * NULL for HTTP/1.1. Valid until the next call into the session. */
RILL_API const rill_h2_settings *rill_server_session_remote_settings(const rill_server_session *session);

RILL_API rill_protocol rill_server_session_protocol(const rill_server_session *session);
/* The peer address as text, without the port ("127.0.0.1", "::1"); valid while the session lives. */
RILL_API const char *rill_server_session_peer(const rill_server_session *session);
/* A number identifying the connection (unique within the process). */
RILL_API uint64_t rill_server_session_id(const rill_server_session *session);
RILL_API rill_server_session *rill_server_stream_session(const rill_server_stream *stream);
/* HTTP/2 stream id; for HTTP/1.1 the 1-based number of the request on its connection. */
RILL_API int32_t rill_server_stream_id(const rill_server_stream *stream);

/* Sends response headers (":status" first, then fields; lowercase names). With end_stream no
 * body follows. */
RILL_API int rill_server_stream_respond(rill_server_stream *stream, const rill_header *headers, size_t count,
                                 bool end_stream);

/* ---- running ---------------------------------------------------------------------------------- */

/* Binds the listeners and runs the workers on this thread plus threads-1 others; returns after
 * a graceful shutdown (SIGTERM, SIGINT or rill_server_stop) has finished: GOAWAY sent, in-flight
 * streams completed up to shutdown_timeout_ms. SIGHUP reloads the TLS certificate (and calls the
 * rill_server_on_reload hook). Returns 0, or
 * RILL_ERR_IO / RILL_ERR_TLS with one line in err (port in use, unreadable certificate...). */
RILL_API int rill_server_run(rill_server *s, char *err, size_t errlen);

/* Binds the listeners (and loads the certificate) without running: errors such as a port in use
 * come back here. rill_server_run binds first if this was not called. */
RILL_API int rill_server_bind(rill_server *s, char *err, size_t errlen);

/* Serves an already-connected stream socket fd (e.g. one end of a socketpair) as a cleartext
 * connection, as if it had been accepted on the listener (protocol detection included). The
 * server owns fd from this call on, also on failure (it is closed). Call after rill_server_bind
 * and before the shutdown; the connection is set up on a worker thread shortly after. Thread-safe.
 * Returns RILL_OK, RILL_ERR_STATE (not bound, or stopping) or RILL_ERR_NOMEM. */
RILL_API int rill_server_adopt(rill_server *s, int fd);

/* fn(loop, user) runs on each worker's thread once its loop has stopped, before the loop is
 * freed: the moment to free what the application made on that loop (clients, timers). One per
 * server; set it before rill_server_run. */
typedef void (*rill_server_worker_fn)(rill_io_loop *loop, void *user);
RILL_API void rill_server_on_worker_exit(rill_server *s, rill_server_worker_fn fn, void *user);
/* fn(loop, user) runs on each worker's thread just before its loop starts running: the moment to
 * start what the application runs on that loop before any request comes (timers, clients). One
 * per server; set it before rill_server_run. */
RILL_API void rill_server_on_worker_start(rill_server *s, rill_server_worker_fn fn, void *user);

/* fn(user) runs on SIGHUP (after the certificate reload), on the thread of the worker that
 * watches signals: the moment to re-read the application's configuration. One per server; set it
 * before rill_server_run. */
typedef void (*rill_server_reload_fn)(void *user);
RILL_API void rill_server_on_reload(rill_server *s, rill_server_reload_fn fn, void *user);

/* Begins a graceful shutdown. Thread-safe. */
RILL_API void rill_server_stop(rill_server *s);

/* The bound cleartext / TLS port (after rill_server_run has bound them; 0 if none). */
RILL_API uint16_t rill_server_port(const rill_server *s, bool tls);

/* Live counters, summed over workers. */
typedef struct rill_server_stats {
    uint64_t connections; /* open */
    uint64_t streams;     /* open streams (HTTP/1.1: requests in progress) */
    uint64_t requests;    /* served since start */
} rill_server_stats;
RILL_API void rill_server_get_stats(const rill_server *s, rill_server_stats *out);

/* ---- request ---------------------------------------------------------------------------------- */

/* Pseudo-header values, NUL-terminated; authority falls back to Host for HTTP/1.1; scheme is
 * "http"/"https"; path is "" for CONNECT without :path. :protocol (RFC 8441) or NULL. */
RILL_API const char *rill_server_request_method(const rill_server_request *r);
RILL_API const char *rill_server_request_scheme(const rill_server_request *r);
RILL_API const char *rill_server_request_authority(const rill_server_request *r);
RILL_API const char *rill_server_request_path(const rill_server_request *r);
RILL_API const char *rill_server_request_connect_protocol(const rill_server_request *r);
/* "HTTP/2", "HTTP/1.1" or "HTTP/1.0". */
RILL_API const char *rill_server_request_version(const rill_server_request *r);
RILL_API rill_protocol rill_server_request_protocol(const rill_server_request *r);

/* The first field named name (lowercase), with *len set; NULL if absent. Not NUL-terminated. */
RILL_API const char *rill_server_request_header(const rill_server_request *r, const char *name, size_t *len);
/* All regular fields (no pseudo-headers), lowercase names. */
RILL_API size_t rill_server_request_header_count(const rill_server_request *r);
RILL_API const rill_header *rill_server_request_header_at(const rill_server_request *r, size_t i);

/* Body delivery: fn(req, data, len, end, user) for each chunk; a last call with end = true (and
 * possibly len 0). Set it in the handler; bytes arriving earlier are held until then. Flow control
 * follows consumption: pause with rill_server_request_pause to stop the peer's sending. */
typedef void (*rill_server_body_fn)(rill_server_request *r, const uint8_t *data, size_t len, bool end, void *user);
RILL_API void rill_server_request_on_body(rill_server_request *r, rill_server_body_fn fn, void *user);
/* The request's trailer fields (HTTP/2 trailing HEADERS; HTTP/1.1 a chunked body's trailer
 * section), as for rill_server_request_header_at: regular fields only, lowercase names,
 * NUL-terminated names and values, owned by the exchange. They come with the body's end: read them
 * in on_body's call with end = true (or later, until on_close); before it, and for a request
 * without trailers, the count is 0. */
RILL_API size_t rill_server_request_trailer_count(const rill_server_request *r);
RILL_API const rill_header *rill_server_request_trailer_at(const rill_server_request *r, size_t i);
RILL_API void rill_server_request_pause(rill_server_request *r, bool paused);

/* The io loop the request runs on: its worker thread's (rill/io.h). Objects that must live on
 * that thread, e.g. a rill_client to forward the request with (rill/client.h), are made on it.
 * The loop is the server's; it outlives the request. */
RILL_API rill_io_loop *rill_server_request_loop(const rill_server_request *r);

/* Per-exchange user pointer. */
RILL_API void rill_server_request_set_user(rill_server_request *r, void *user);
RILL_API void *rill_server_request_user(const rill_server_request *r);

/* ---- response --------------------------------------------------------------------------------- */

/* Status (default 200) and fields, until the head is sent (first write / end). Names are
 * lowercased; connection-specific fields are refused for HTTP/2 (RILL_ERR_INVALID_ARG). */
RILL_API int rill_server_response_set_status(rill_server_response *res, int status);
RILL_API int rill_server_response_set_header(rill_server_response *res, const char *name, const char *value);
RILL_API int rill_server_response_add_header(rill_server_response *res, const char *name, const char *value);
/* Adds n fields given with their lengths (a client's or a parser's, not NUL-terminated), each
 * checked as rill_server_response_add_header checks it, all or none: RILL_ERR_INVALID_ARG (none
 * added) if one is refused. Copied. */
RILL_API int rill_server_response_add_headers(rill_server_response *res, const rill_header *fields, size_t n);

/* An informational response (e.g. 103 Early Hints with link fields) before the final one. */
RILL_API int rill_server_response_informational(rill_server_response *res, int status, const rill_header *fields,
                                         size_t count);

/* Body bytes (copied). Returns RILL_OK, or RILL_ERR_WOULD_BLOCK when the bytes were accepted but
 * the connection is over its high-water mark: stop writing until on_drain fires. */
RILL_API int rill_server_response_write(rill_server_response *res, const void *data, size_t len);
typedef void (*rill_server_response_fn)(rill_server_response *res, void *user);
RILL_API void rill_server_response_on_drain(rill_server_response *res, rill_server_response_fn fn, void *user);

/* Trailers to send at the end (HTTP/2 HEADERS, HTTP/1.1 chunked trailer section). */
RILL_API int rill_server_response_add_trailer(rill_server_response *res, const char *name, const char *value);

/* Ends the response, with optional last bytes. */
RILL_API int rill_server_response_end(rill_server_response *res, const void *data, size_t len);

/* Ends a response that cannot be completed (e.g. its source failed midway), so that the peer
 * cannot take what it got for a whole response: HTTP/2 resets the stream (RST_STREAM
 * INTERNAL_ERROR; the connection's other streams go on); HTTP/1.1 closes the connection short of
 * its framing (content-length, chunked), or resets it (a TCP RST) where no framing could fall
 * short: a body that runs to the close (HTTP/1.0) or a tunnel. on_close(completed = false)
 * follows. Nothing is done after the response ended or closed, except
 * for a tunnel (rill_server_response_tunnel) whose end went while the peer still sends: it is
 * reset all the same. */
RILL_API void rill_server_response_abort(rill_server_response *res);

/* Adds text to the exchange's access log line (after the combined format's fields, as one
 * quoted field, escaped like the others), e.g. where a proxy sent the request and how long its
 * answer took. text is copied; a later call replaces it. RILL_ERR_NOMEM; RILL_ERR_STATE once the
 * exchange closed. */
RILL_API int rill_server_response_log_note(rill_server_response *res, const char *text);

/* Server push (HTTP/2, when the peer allows it): promises a GET of path on this stream; the pushed
 * request is served by the routes like any other. RILL_ERR_STATE when push is not possible. */
RILL_API int rill_server_response_push(rill_server_response *res, const char *path);

/* Called once when the exchange is over (response finished and request consumed, or the stream
 * was reset / the connection lost: completed = false). The request/response must not be used
 * after it returns. */
typedef void (*rill_server_close_fn)(rill_server_response *res, bool completed, void *user);
RILL_API void rill_server_response_on_close(rill_server_response *res, rill_server_close_fn fn, void *user);


/* ---- WebSockets (RFC 6455 over HTTP/1.1 Upgrade, RFC 8441 over HTTP/2 extended CONNECT) --------
 * Names: rill_websocket_* is a live WebSocket connection with its I/O (here, one the server
 * accepted; rill/client.h has the client's), rill_ws_* the sans-I/O codec in rill/ws.h. */

typedef struct rill_websocket rill_websocket;

/* One handler serves both transports. Callbacks run on the connection's worker thread. The caller
 * sets size to sizeof(rill_websocket_handler) (see "Public API conventions" in
 * docs/ARCHITECTURE.md). */
typedef struct rill_websocket_handler {
    size_t size; /* sizeof(rill_websocket_handler) */
    /* The opening handshake is valid: return 0 to accept, or an HTTP status (e.g. 403) to refuse.
     * req is valid only during this call. May be NULL (accept). */
    int (*on_open)(rill_websocket *ws, rill_server_request *req, void *user);
    /* A whole text (opcode 1, valid UTF-8) or binary (2) message; data valid during the call. */
    void (*on_message)(rill_websocket *ws, unsigned opcode, const uint8_t *data, size_t len,
                       void *user);
    /* Streaming delivery instead of on_message: called for each piece of a message as it arrives
     * (opcode of the message; first/final mark its ends; text pieces may split UTF-8 sequences,
     * the whole message is still validated). Set one of on_message / on_fragment. */
    void (*on_fragment)(rill_websocket *ws, unsigned opcode, const uint8_t *data, size_t len,
                        bool first, bool final, void *user);
    /* Output fell below the low-water mark after rill_websocket_send said RILL_ERR_WOULD_BLOCK. */
    void (*on_drain)(rill_websocket *ws, void *user);
    /* The socket is gone: code is the peer's close code, 1005 without one, 1006 when the
     * transport ended without a closing handshake. The websocket is freed after this returns. */
    void (*on_close)(rill_websocket *ws, unsigned code, void *user);
    /* Sub-protocols the handler speaks, in preference order (chosen from the client's offer). */
    const char *const *subprotocols;
    size_t nsubprotocols;
    size_t max_message_size; /* 0 = 16 MiB; larger messages close with 1009 */
} rill_websocket_handler;

/* Serves WebSockets at exactly this path. h is copied, its subprotocols array is referenced (keep
 * it alive); RILL_ERR_INVALID_ARG for a bad h->size. Permessage-deflate is negotiated when the
 * client offers it. A plain request to the path gets 426. */
RILL_API int rill_server_websocket(rill_server *s, const char *path, const rill_websocket_handler *h,
                                   void *user);

/* RFC 8441 tunnels for other protocols: an HTTP/2 CONNECT with `:protocol` equal to protocol (any
 * path) goes to fn. Accept by answering 200 without ending the response (e.g. rill_server_response_write
 * with len 0); the request body is then the peer's byte stream (rill_server_request_on_body; end = the
 * peer's END_STREAM, an orderly close) and rill_server_response_write / rill_server_response_end send bytes back.
 * A reset stream (RST_STREAM CANCEL: an abort) shows in rill_server_response_on_close(completed = false).
 * CONNECT requests for protocols nobody registered get 501. */
RILL_API int rill_server_tunnel(rill_server *s, const char *protocol, rill_server_handler_fn fn, void *user);

/* Accepts a request that asked to switch protocols; the exchange then carries raw bytes both ways
 * until either side ends it:
 *  - HTTP/1.1 (the request has an Upgrade field and no body): "101 Switching Protocols" with the
 *    response's fields plus `upgrade: protocol` (a token list, e.g. "websocket") and
 *    `connection: Upgrade`. The connection's next bytes, also any that came right behind the
 *    request head, arrive through rill_server_request_on_body: set it after this call (the
 *    request's own empty body is not reported). The peer closing the connection is the body's end
 *    (end = true; not for a reset), then rill_server_response_on_close(completed = false).
 *  - HTTP/2 (an extended CONNECT): 200 (or the 2xx status set) with the response's fields, without
 *    END_STREAM; protocol is not used (may be NULL). The stream's DATA arrives through on_body, its
 *    end (end = true) is the peer's END_STREAM, an orderly close.
 * Then rill_server_response_write sends bytes (RILL_ERR_WOULD_BLOCK: wait for on_drain),
 * rill_server_request_pause stops the peer (no reads; no WINDOW_UPDATE), rill_server_response_end
 * is the orderly close of our side (HTTP/2 END_STREAM; HTTP/1.1 a FIN after what is queued), after
 * which the peer may go on sending until its own end (a half-close: END_STREAM, or its FIN, which
 * on_body reports as the end; the connection then closes),
 * rill_server_response_abort the abort (HTTP/2 RST_STREAM; HTTP/1.1 a TCP RST), and
 * on_close follows once both sides are over. Response fields that HTTP/2 forbids (connection,
 * upgrade) cannot be set (see rill_server_response_set_header).
 * Returns RILL_OK; RILL_ERR_STATE when the head was sent already or the request did not ask to
 * switch (HTTP/2: no :protocol; HTTP/1.1: no Upgrade field, or a body); RILL_ERR_INVALID_ARG for an
 * HTTP/1.1 protocol that is not a token list. */
RILL_API int rill_server_response_tunnel(rill_server_response *res, const char *protocol);

/* Origins allowed to open WebSockets ("https://example.com"; "*" for any). With no list, any
 * origin is accepted. Others get 403 (against cross-site WebSocket hijacking). Copied. */
RILL_API int rill_server_websocket_origins(rill_server *s, const char *const *origins, size_t count);

/* Sends a whole message (RILL_WS_OP_TEXT must be valid UTF-8). Returns RILL_OK, or
 * RILL_ERR_WOULD_BLOCK when accepted but over the high-water mark (wait for on_drain), or
 * RILL_ERR_STATE after close. */
RILL_API int rill_websocket_send(rill_websocket *ws, unsigned opcode, const void *data, size_t len);
RILL_API int rill_websocket_ping(rill_websocket *ws, const void *data, size_t len);
/* Starts the closing handshake (code 1000..., reason UTF-8, at most 123 bytes). */
RILL_API int rill_websocket_close(rill_websocket *ws, unsigned code, const char *reason);
/* "h2" for a WebSocket on an HTTP/2 stream (h2 or h2c), "HTTP/1.1" for an upgraded connection. */
RILL_API const char *rill_websocket_transport(const rill_websocket *ws);
/* The sub-protocol chosen, or NULL. */
RILL_API const char *rill_websocket_subprotocol(const rill_websocket *ws);
/* Whether permessage-deflate is in use. */
RILL_API bool rill_websocket_compressed(const rill_websocket *ws);
RILL_API rill_server_session *rill_websocket_session(const rill_websocket *ws);
RILL_API void rill_websocket_set_user(rill_websocket *ws, void *user);
RILL_API void *rill_websocket_user(const rill_websocket *ws);

/* Runs fn(arg) on every worker thread (including this one), e.g. to broadcast to the websockets
 * each thread owns. arg must stay valid until every call has run; done(arg) is called once after
 * the last (may be NULL). Thread-safe. */
RILL_API int rill_server_each_worker(rill_server *s, void (*fn)(void *arg), void (*done)(void *arg),
                                     void *arg);

#ifdef __cplusplus
}
#endif
#endif
