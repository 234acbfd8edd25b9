/* rill client: HTTP requests to one origin (rill_client: HTTP/2 over TLS by ALPN, h2c by prior
 * knowledge or by an Upgrade the server may decline, else HTTP/1.1 over a pool of keep-alive
 * connections; WebSockets on the client's HTTP/2 connection (rill_client_websocket); request
 * bodies buffered or streamed with back-pressure,
 * responses that can be paused), a blocking fetch on top of it (rill_client_fetch), and
 * WebSockets over HTTP/2 (RFC 8441 extended CONNECT) or HTTP/1.1 (RFC 6455 Upgrade).
 *
 * WebSocket auto mode (the default) starts with HTTP/2 (ALPN h2 for wss://, prior knowledge for ws://) and
 * opens the WebSocket as a CONNECT stream when the server's SETTINGS enable extended CONNECT;
 * otherwise it reconnects and uses the HTTP/1.1 Upgrade. force_http1 goes straight to the Upgrade.
 *
 * Runs on a caller-owned rill_io_loop (rill/io.h); every callback runs on that loop's thread. */
#ifndef RILL_CLIENT_H
#define RILL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/common.h"
#include "rill/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- HTTP requests ------------------------------------------------------------------------- */

/* A client session for one origin (scheme, host, port). Over HTTP/2 one connection carries every
 * request, multiplexed. Over HTTP/1.1 requests run concurrently on up to max_connections
 * keep-alive connections, one request at a time on each: a connection whose response ended
 * cleanly takes the next waiting request (not after "Connection: close", an HTTP/1.0 response
 * without keep-alive, a cancelled, failed or timed-out request, or a response that came before
 * its streamed body ended: those connections close). More than one connection opens only once
 * the origin is known to speak HTTP/1.1: an http:// URL without h2_prior_knowledge or
 * h2c_upgrade, http1_only, https whose ALPN chose http/1.1, or a declined h2c Upgrade. Requests
 * beyond what the connections take wait, in order. */
typedef struct rill_client rill_client;
/* One request and its response; owned by its client, gone after its on_end callback. */
typedef struct rill_client_stream rill_client_stream;

/* Fill with rill_client_options_init, then set url and what else you need. */
typedef struct rill_client_options {
    size_t size;                 /* sizeof(rill_client_options), set by the _init */
    const char *url;             /* http://host[:port] or https://... : the origin (any path is
                                    ignored; copied) */
    bool http1_only;             /* never HTTP/2 (https offers only http/1.1 by ALPN) */
    bool h2_prior_knowledge;     /* http: speak HTTP/2 at once (h2c); default HTTP/1.1 */
    bool insecure;               /* https: do not verify the certificate */
    const char *ca_file;         /* https: trust this PEM instead of the system store (copied) */
    uint32_t connect_timeout_ms; /* TCP connect + TLS handshake, over all the addresses tried
                                    for one connection; default 10000, 0 = the loop's (which
                                    also bounds each attempt) */
    uint32_t request_timeout_ms; /* from rill_client_request to the response's end; 0 (default) =
                                    none */
    uint32_t idle_timeout_ms;    /* close the connection after this long unused; default 30000 */
    size_t stream_buffer;        /* a streamed request body (rill_client_request_stream): bytes
                                    held before rill_client_stream_write says "wait for on_drain";
                                    default 256 KiB */
    bool h2c_upgrade;            /* http: offer HTTP/2 on the first request of each connection
                                    (Upgrade: h2c, RFC 7540 §3.2; only a request without a body
                                    carries it); a server that declines answers over HTTP/1.1 and
                                    the connection stays HTTP/1.1. Default false */
    bool enable_push;            /* HTTP/2: SETTINGS_ENABLE_PUSH 1, pushes to on_push (refused
                                    where a request has none). Default false: push disabled, a
                                    PUSH_PROMISE is a connection error */
    unsigned max_connections;    /* HTTP/1.1: keep-alive connections open at once (connecting,
                                    open or closing), like browsers and curl: default 6; 1 runs
                                    every request one after another on one connection; 0 = the
                                    default. HTTP/2 uses one connection whatever this says */
    uint32_t attempt_delay_ms;   /* Happy Eyeballs (RFC 8305): a new connection's address that
                                    has not answered after this long is joined by an attempt to
                                    the next address (IPv6 and IPv4 in turn), without cancelling
                                    it; the first TCP connect wins. Default 250 (below 10 counts
                                    as 10); 0 = one attempt at a time: the next address only once
                                    the one before failed */
    unsigned max_pipeline;       /* HTTP/1.1 pipelining (RFC 9112 §9.3.2): up to this many
                                    requests on a connection at once, the later ones sent before
                                    the first is answered. Only GET and HEAD without a body go
                                    behind another, only behind a request whose end was sent
                                    and that is idempotent or already answered, and only on a
                                    connection that answered one with keep-alive. Those the
                                    server closes on before a byte of their answer go again,
                                    alone. 0 or 1 (default): none; at most 64 */
} rill_client_options;

/* Fills *opt with the defaults: no URL, HTTP/2 where the server offers it, certificates verified
 * against the system store with the host name checked (SNI sent), timeouts and sizes as shown
 * above. */
RILL_API void rill_client_options_init(rill_client_options *opt);

/* What happens to a request. The caller sets size to sizeof(rill_client_callbacks) (an older
 * caller's smaller struct is fine: the members it lacks are NULL). Every member is optional.
 * Pointers are valid only during the call. */
typedef struct rill_client_callbacks {
    size_t size; /* sizeof(rill_client_callbacks) */
    /* The final response head (1xx go to on_informational): status and fields (no pseudo-header
     * fields; HTTP/1.1 names as received, HTTP/2 names lowercase). */
    void (*on_response)(rill_client_stream *st, int status, const rill_header *fields, size_t n,
                        void *user);
    /* A piece of the response body, in order. */
    void (*on_data)(rill_client_stream *st, const uint8_t *data, size_t len, void *user);
    /* Trailer fields after the body (HTTP/2, or a chunked HTTP/1.1 body), when there are some. */
    void (*on_trailers)(rill_client_stream *st, const rill_header *fields, size_t n, void *user);
    /* The end, always called once: err is 0 when the response arrived whole; else RILL_ERR_NOT_FOUND
     * (the host name did not resolve), RILL_ERR_IO (cannot connect), RILL_ERR_EOF (the connection
     * ended before the response did), RILL_ERR_TLS
     * (handshake or certificate), RILL_ERR_TIMEOUT, RILL_ERR_PROTOCOL (the server broke HTTP/1.1
     * or HTTP/2, or reset the stream), RILL_ERR_CANCELLED (rill_client_stream_cancel),
     * RILL_ERR_NOMEM, RILL_ERR_INVALID_ARG (a streamed body ended short of its content-length);
     * why is then one line for stderr, else NULL. A request on an HTTP/2 stream the server refused
     * with GOAWAY (above its last stream id, so never processed) goes again on a new connection
     * when its method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) and no streamed body
     * had gone out; else it ends with RILL_ERR_PROTOCOL, why "the server refused the request
     * (GOAWAY)...". Likewise over HTTP/1.1, like curl: a request on a reused keep-alive
     * connection that the server closes before any byte of the response (it had closed the idle
     * connection as the request went out) is sent again, once, on a new connection when its
     * method is idempotent and no streamed body had gone out; else it ends with RILL_ERR_EOF, why
     * "the server closed the keep-alive connection ... before answering (...)": never sent
     * twice when it may have been processed. A response that ends before a streamed body did
     * ends the request (err 0: the rest of the body is not sent; HTTP/2 resets the stream with
     * NO_ERROR, HTTP/1.1 closes the connection after it). The stream is freed when this
     * returns: no call may take st after this one. */
    void (*on_end)(rill_client_stream *st, int err, const char *why, void *user);
    /* A streamed request body (rill_client_request_stream) fell to half of stream_buffer after
     * rill_client_stream_write said RILL_ERR_WOULD_BLOCK: write again. Called on a later turn of
     * the loop, never inside a rill_client_* call. */
    void (*on_drain)(rill_client_stream *st, void *user);
    /* An informational (1xx) response before the final one: 100 Continue, 103 Early Hints...;
     * status and fields as for on_response. Any number of them may come. */
    void (*on_informational)(rill_client_stream *st, int status, const rill_header *fields,
                             size_t n, void *user);
    /* HTTP/2 server push, when rill_client_options.enable_push is set: the server promised
     * `pushed` (its request fields, pseudo-header fields included, are `request`) on the request
     * `st`. The pushed response then arrives through these same callbacks (and user) with
     * `pushed` as the stream, and ends with on_end like a request; rill_client_stream_cancel
     * refuses it (RST_STREAM CANCEL). Without this callback every push is refused. */
    void (*on_push)(rill_client_stream *st, rill_client_stream *pushed, const rill_header *request,
                    size_t n, void *user);
    /* An extended CONNECT's (a tunnel's) server ended its side (END_STREAM, after any body and
     * trailers) while ours is still open: with this callback the stream stays for writing (a
     * half-close), and on_end(0) follows once our side ended too (rill_client_stream_end). Without
     * it, such an end ends the request as for any other (above). Other requests never get it. */
    void (*on_peer_end)(rill_client_stream *st, void *user);
    /* When set, instead of on_data (which is then not called): the pieces of the body that came
     * together, in order (n >= 1), valid only during the call. Over HTTP/2 one read of the
     * connection holds many DATA frames, handed over in one call per stream before any other
     * event of the read that follows them; a caller that writes the body out takes them with
     * one writev. Everything on_data says holds for each piece. */
    void (*on_data_v)(rill_client_stream *st, const struct iovec *pieces, int n, void *user);
} rill_client_callbacks;

/* A client for the origin of opt->url, on a caller-owned loop (every callback runs on its
 * thread). Nothing connects until the first request. opt is copied. Returns RILL_ERR_INVALID_ARG
 * (with a reason in err, errlen bytes, if err is not NULL) for a bad URL or opt->size,
 * RILL_ERR_TLS for an unusable CA file, RILL_ERR_NOMEM. *out is the caller's, freed with
 * rill_client_free. Host names are resolved on the loop without blocking it (c-ares; /etc/hosts
 * first), again for every new connection; literal IP addresses skip DNS. A name is asked for
 * IPv6 and IPv4 addresses at once, and a new connection races them (Happy Eyeballs, RFC 8305):
 * IPv6 and IPv4 in turn, IPv6 first, a new attempt every attempt_delay_ms while the earlier ones
 * go on, the first TCP connect winning (with TLS, its handshake follows; the other attempts are
 * closed at once). connect_timeout_ms bounds the whole: from the first attempt to the connection
 * open. A failure to connect is reported only when every address failed, with the last one's
 * error. */
RILL_API int rill_client_new(rill_io_loop *loop, const rill_client_options *opt, rill_client **out,
                             char *err, size_t errlen);

/* Starts a request: method ("GET", "POST"...), target (a path "/x?y", or an absolute URL of the
 * client's origin), fields (name/value pairs; a "host" field replaces the authority; names are
 * sent lowercase; with "expect: 100-continue" the body waits for the server's 100, or a second
 * like curl, and is not sent at all when a final response comes first), body (len bytes, or NULL
 * and 0; a Content-Length is added for a body or a POST/PUT). Fields and body are copied; cb is copied. The connection is made (or reused) on a
 * later turn of the loop, so every outcome, failures too, arrives through cb: on_response,
 * on_data..., on_trailers, then on_end. *out (may be NULL) identifies the request in callbacks.
 * Returns RILL_ERR_INVALID_ARG for a bad method, target, field or cb->size, RILL_ERR_NOMEM. */
RILL_API int rill_client_request(rill_client *c, const char *method, const char *target,
                                 const rill_header *fields, size_t nfields, const void *body,
                                 size_t len, const rill_client_callbacks *cb, void *user,
                                 rill_client_stream **out);

/* Starts a request whose body the caller streams: as rill_client_request, but the body comes
 * from rill_client_stream_write and ends with rill_client_stream_end (which must be called, also
 * for an empty body). *out is required. Without a content-length field the length is unknown:
 * HTTP/1.1 sends the body chunked (Transfer-Encoding: chunked; a transfer-encoding field of the
 * caller's is dropped), HTTP/2 in DATA frames; with one (digits only, else RILL_ERR_INVALID_ARG)
 * it is sent as given and the body must have exactly that many bytes. Writes may start at once,
 * before the request is sent: they wait in the stream. A streamed request hit by a GOAWAY is sent
 * again only if none of its body had gone to the connection (see on_end).
 * An RFC 8441 extended CONNECT (HTTP/2 only): method "CONNECT" with a ":protocol" field first in
 * fields (e.g. "websocket"); it waits for the server's SETTINGS and ends with
 * RILL_ERR_UNSUPPORTED when they do not enable extended CONNECT (over HTTP/1.1 it cannot be sent:
 * RILL_ERR_INVALID_ARG). After a 2xx the stream is a tunnel: on_data brings the peer's bytes,
 * rill_client_stream_write sends, rill_client_stream_end is the orderly close (END_STREAM),
 * rill_client_stream_cancel the abort. */
RILL_API int rill_client_request_stream(rill_client *c, const char *method, const char *target,
                                        const rill_header *fields, size_t nfields,
                                        const rill_client_callbacks *cb, void *user,
                                        rill_client_stream **out);

/* Body bytes for a streamed request: len bytes are copied (the caller keeps data) and go out as
 * the connection allows (HTTP/2: the peer's flow-control windows; HTTP/1.1: the socket).
 * Returns RILL_OK (write more), RILL_ERR_WOULD_BLOCK (accepted, but the stream now holds
 * stream_buffer bytes or more: wait for on_drain), RILL_ERR_LIMIT (NOT accepted: the stream was
 * already over stream_buffer, the caller did not wait for on_drain; so a stream holds at most
 * stream_buffer plus one write), RILL_ERR_INVALID_ARG (not accepted: past the content-length
 * field), RILL_ERR_STATE (not a streamed request, already ended or cancelled), RILL_ERR_NOMEM.
 * Not after st's on_end. len 0 does nothing. */
RILL_API int rill_client_stream_write(rill_client_stream *st, const void *data, size_t len);

/* Ends a streamed request body, with trailer fields (ntrailers of them, copied; NULL and 0 for
 * none; names are sent lowercase): HTTP/2 trailing HEADERS, HTTP/1.1 the trailer section of the
 * chunked body. Returns RILL_OK; RILL_ERR_STATE when not streamed or ended already;
 * RILL_ERR_INVALID_ARG for a bad trailer field, or for trailers with a content-length field unless
 * the request goes over HTTP/2 (h2_prior_knowledge, or rill_client_stream_protocol "h2" already;
 * the stream is not ended then); RILL_ERR_INVALID_ARG too when the body is shorter than its
 * content-length field: nothing malformed is sent, the request is cancelled and its on_end reports
 * RILL_ERR_INVALID_ARG on a later turn. Not after st's on_end. */
RILL_API int rill_client_stream_end(rill_client_stream *st, const rill_header *trailers,
                                    size_t ntrailers);

/* Request body bytes written and not yet gone out (the memory the stream holds for them). */
RILL_API size_t rill_client_stream_buffered(const rill_client_stream *st);

/* Download back-pressure: while paused, no on_data, on_trailers or on_end (they wait, in order,
 * and come on a later turn after the resume). HTTP/2 gives no flow-control credit back for the
 * stream's bytes (no WINDOW_UPDATE), so the server stops when the window (4 MiB) is used; what it
 * had sent is held. HTTP/1.1 stops reading the connection (the response head waits too). May be
 * called from any callback of st's own; not after st's on_end. */
RILL_API void rill_client_stream_pause(rill_client_stream *st, bool paused);

/* Cancels a request: no more on_response, on_data or on_trailers; on_end(st, RILL_ERR_CANCELLED)
 * follows on a later turn of the loop (never inside this call). A request already sent is reset
 * on HTTP/2 (RST_STREAM CANCEL, the connection stays); on HTTP/1.1 its connection is closed (a
 * response cannot be skipped; the pool's other connections and their requests go on), and the
 * requests waiting go on the others or a new one. May be called from any of the client's
 * callbacks, also st's own; not after st's on_end. */
RILL_API void rill_client_stream_cancel(rill_client_stream *st);

/* The protocol a request went over: "h2" or "http/1.1"; NULL before it was sent. Static storage. */
RILL_API const char *rill_client_stream_protocol(const rill_client_stream *st);

/* From on_response on: true when the response head itself ended the response (an HTTP/2 HEADERS
 * frame with END_STREAM: no body or trailers follow, e.g. a gRPC trailers-only answer), so a
 * proxy can pass the head on together with the end instead of as a head and an empty body. */
RILL_API bool rill_client_stream_head_ended(const rill_client_stream *st);

/* The client a request belongs to. */
RILL_API rill_client *rill_client_stream_client(const rill_client_stream *st);

/* Connections the client has opened so far (to check reuse). */
RILL_API unsigned rill_client_connections(const rill_client *c);

/* Which of them a request went on: 1 for the client's first connection, in the order they were
 * made (rill_client_connections counts them; the trace's "connected to ... (connection #N)"
 * says the same number); 0 before it was sent. */
RILL_API unsigned rill_client_stream_connection(const rill_client_stream *st);

/* A trace of what the client does, one line at a time without a line end ("connected to
 * 127.0.0.1:8443 over h2 (TLS)", "send HEADERS stream=1 length=31 flags=0x05", "recv DATA ..."):
 * connection events and, over HTTP/2, every frame sent and received. line is valid during the
 * call. fn NULL turns it off (the default). */
typedef void (*rill_client_trace_fn)(rill_client *c, const char *line, void *user);
RILL_API void rill_client_set_trace(rill_client *c, rill_client_trace_fn fn, void *user);

/* Closes the connections and frees the client; requests still in flight end without their on_end.
 * Not from inside one of its callbacks. NULL is ignored. */
RILL_API void rill_client_free(rill_client *c);

/* ---- the blocking fetch -------------------------------------------------------------------- */

/* One request made to completion on a loop of its own. Fill with rill_client_fetch_options_init. */
typedef struct rill_client_fetch_options {
    size_t size;                       /* sizeof(rill_client_fetch_options), set by the _init */
    const rill_client_options *client; /* connection options (url is ignored); NULL = defaults */
    const char *method;                /* default "GET" ("POST" with a body_fd) */
    const rill_header *fields;         /* request fields (copied), nfields of them */
    size_t nfields;
    const void *body;                  /* request body (copied), body_len bytes */
    size_t body_len;
    int out_fd;                        /* -1 (default): the body into memory; else written here */
    size_t max_body;                   /* in memory: fail with RILL_ERR_TOO_BIG past this many bytes
                                          (default 256 MiB; 0 = no limit) */
    int body_fd;                       /* -1 (default); else the request body is read from here
                                          (to its end, in pieces, as the connection takes them:
                                          a file of any size in bounded memory) and body is
                                          ignored. A regular file's remaining size is sent as
                                          content-length (unless fields has one), else the length
                                          is unknown (chunked on HTTP/1.1). Stays the caller's;
                                          reads block the fetch's own loop */
} rill_client_fetch_options;

/* Fills *opt with the defaults shown above. */
RILL_API void rill_client_fetch_options_init(rill_client_fetch_options *opt);

/* What rill_client_fetch got. Owned by the caller; rill_client_result_free frees its members. */
typedef struct rill_client_result {
    int status;                  /* the response status, 0 if there was none */
    rill_header *fields;         /* response fields (NUL-terminated names and values) */
    size_t nfields;
    uint8_t *body;               /* the body (NUL-terminated, not counted) unless out_fd was set */
    size_t body_len;             /* bytes received (also when written to out_fd) */
    char protocol[12];           /* "h2" or "http/1.1" */
    char error[256];             /* why it failed, one line; "" on success */
} rill_client_result;

/* Fetches url (http:// or https://) and fills *result (always, also on failure: free it with
 * rill_client_result_free). Returns 0 when a whole response arrived (whatever its status), else
 * the error on_end would report (see rill_client_callbacks), RILL_ERR_INVALID_ARG for a bad URL
 * or options (or a body_fd file that shrank under its content-length), RILL_ERR_IO when writing
 * to out_fd or reading body_fd fails, RILL_ERR_TOO_BIG past max_body.
 * Blocks the calling thread; uses no loop of the caller's. */
RILL_API int rill_client_fetch(const char *url, const rill_client_fetch_options *opt,
                               rill_client_result *result);

/* Frees what rill_client_fetch allocated in *result (not result itself) and zeroes it. */
RILL_API void rill_client_result_free(rill_client_result *result);

/* ---- WebSockets ---------------------------------------------------------------------------- */

typedef struct rill_websocket_client rill_websocket_client;

/* Fill with rill_websocket_client_options_init, then set url and what else you need. */
typedef struct rill_websocket_client_options {
    size_t size;             /* sizeof(rill_websocket_client_options), set by the _init */
    const char *url;         /* ws://host[:port]/path or wss://... (copied) */
    bool force_http1;        /* skip HTTP/2 */
    bool insecure;           /* wss: do not verify the certificate */
    const char *ca_file;     /* wss: trust this PEM instead of the system store */
    const char *origin;      /* Origin to send, or NULL */
    const char *subprotocol; /* Sec-WebSocket-Protocol to offer, or NULL */
    bool no_deflate;         /* do not offer permessage-deflate */
    uint32_t attempt_delay_ms; /* Happy Eyeballs (RFC 8305) on the WebSocket's own connection,
                                  as rill_client_options.attempt_delay_ms: an address that has not
                                  answered after this long is joined by an attempt to the next
                                  (IPv6 and IPv4 in turn), the first TCP connect wins. Default
                                  250 (below 10 counts as 10); 0 = one attempt at a time */
} rill_websocket_client_options;

/* Fills *opt with the defaults: no URL, HTTP/2 first, certificates verified against the system
 * store, no Origin or sub-protocol, permessage-deflate offered, attempt_delay_ms 250. */
RILL_API void rill_websocket_client_options_init(rill_websocket_client_options *opt);

/* The caller sets size to sizeof(rill_websocket_client_callbacks) (see "Public API conventions" in
 * docs/ARCHITECTURE.md). */
typedef struct rill_websocket_client_callbacks {
    size_t size; /* sizeof(rill_websocket_client_callbacks) */
    /* The handshake succeeded; transport is "h2" or "HTTP/1.1". */
    void (*on_open)(rill_websocket_client *c, const char *transport, bool compressed, void *user);
    void (*on_message)(rill_websocket_client *c, unsigned opcode, const uint8_t *data, size_t len,
                       void *user);
    /* The end: code is the close code (1000/1005 after a clean close, 1006 when the connection
     * was lost); why is a one-line reason for failures (connect error, refused handshake), or
     * NULL. The client must not be used after this; free it with rill_websocket_client_free. */
    void (*on_close)(rill_websocket_client *c, unsigned code, const char *why, void *user);
} rill_websocket_client_callbacks;

/* Starts connecting: the host is resolved on the loop (never blocking it), IPv6 and IPv4 asked at
 * once, and its addresses are raced as rill_client_new's connections race them (Happy Eyeballs:
 * IPv6 first, a new attempt every opt->attempt_delay_ms beside the earlier ones, the first TCP
 * connect winning, TLS on the winner only; 10 s for it all); a name that does not resolve, like
 * a connection that cannot be made to any address, ends in on_close (1006, with the last
 * attempt's reason). opt and cb are copied. Returns RILL_ERR_INVALID_ARG with a
 * reason in err for a bad URL or a bad opt->size / cb->size, RILL_ERR_TLS for an unusable CA
 * file. *out is freed with rill_websocket_client_free. */
RILL_API int rill_websocket_client_new(rill_io_loop *loop, const rill_websocket_client_options *opt,
                                const rill_websocket_client_callbacks *cb, void *user,
                                rill_websocket_client **out, char *err, size_t errlen);

/* A trace of how the WebSocket's own connection is made, one line at a time without a line end
 * ("trying [::1]:443", "cannot connect to 127.0.0.1:443: Connection refused", "127.0.0.1:443
 * answered first; 1 other attempt closed"), to fn(c, line, user) on the loop's thread; line is
 * valid during the call. fn NULL: none (the default). Set it before the loop runs to see it all.
 * A WebSocket on a rill_client's HTTP/2 connection has no connection of its own: that one is in
 * the client's trace (rill_client_set_trace). */
typedef void (*rill_websocket_client_trace_fn)(rill_websocket_client *c, const char *line,
                                               void *user);
RILL_API void rill_websocket_client_set_trace(rill_websocket_client *c,
                                              rill_websocket_client_trace_fn fn, void *user);

/* A whole text (valid UTF-8) or binary message; RILL_ERR_STATE before on_open or after close. */
RILL_API int rill_websocket_client_send(rill_websocket_client *c, unsigned opcode, const void *data, size_t len);

/* A WebSocket on a client's origin, as a browser opens one: target is a path ("/chat?room=1"), or
 * a URL of c's origin (ws://, wss://, http:// or https://). It goes on the client's HTTP/2
 * connection as an RFC 8441 extended CONNECT stream, beside the client's requests (it keeps the
 * connection from its idle timeout and gets no request timeout), once the server's SETTINGS enable
 * extended CONNECT. Otherwise it makes a connection of its own for the RFC 6455 HTTP/1.1 Upgrade
 * (trusting what c trusts): when the server's SETTINGS do not enable it, when the origin answers
 * over HTTP/1.1 (ALPN, http1_only, an http:// client without h2_prior_knowledge), when a
 * cleartext HTTP/2 connection by prior knowledge ended before its SETTINGS (no HTTP/2 server), or
 * with opt->force_http1. Of opt (NULL: the defaults) only force_http1, origin, subprotocol and
 * no_deflate count; the URL, the TLS trust and the attempt delay are c's (and its connection's
 * winning address, if it has one, is tried first). cb, user and *out as for
 * rill_websocket_client_new, and then its API: send, close, free (rill_websocket_client_free
 * before or after rill_client_free; after it, a WebSocket still on c's connection has ended
 * without on_close). Returns RILL_ERR_INVALID_ARG (a reason in err) for a bad target, options or
 * callbacks, RILL_ERR_NOMEM; every later failure ends in on_close (1006, with the reason). */
RILL_API int rill_client_websocket(rill_client *c, const char *target,
                                   const rill_websocket_client_options *opt,
                                   const rill_websocket_client_callbacks *cb, void *user,
                                   rill_websocket_client **out, char *err, size_t errlen);

/* Starts the closing handshake; on_close follows when it completes. */
RILL_API int rill_websocket_client_close(rill_websocket_client *c, unsigned code, const char *reason);

/* Frees the client (closing the connection if still open, without calling on_close). */
RILL_API void rill_websocket_client_free(rill_websocket_client *c);

#ifdef __cplusplus
}
#endif
#endif
