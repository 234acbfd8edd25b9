/* rill HTTP/2 session (RFC 9113), sans-I/O, one engine for both roles.
 *
 * The session is fed received bytes (rill_h2_session_recv), reports what happened through
 * callbacks, and queues output that the I/O layer drains as iovecs (rill_h2_session_output +
 * rill_h2_session_output_sent: one writev per loop turn). Time enters as arguments
 * (rill_h2_session_tick). Nothing here touches sockets, clocks or threads.
 *
 * Ownership:
 *  - Bytes given to rill_h2_session_recv stay the caller's; the session copies only what must
 *    outlive the call (a partial frame, a header block split across CONTINUATION frames).
 *  - Header fields and data handed to callbacks point into session or input memory and are valid
 *    only until the callback returns.
 *  - Header fields given to submit functions are encoded (copied) before the call returns, except
 *    trailers submitted while body data is still queued: those are copied and kept until sent.
 *  - DATA given to rill_h2_submit_data is referenced, not copied: the caller keeps it alive and
 *    unchanged until the on_data_released callback reports it (sent, or dropped because the
 *    stream closed; also for every pending buffer when the session is freed).
 *  - iovecs from rill_h2_session_output point into session memory or into caller DATA buffers and
 *    stay valid until the next call that modifies the session.
 *  - The read callback of rill_h2_set_data_source writes straight into the output buffer.
 *  - A session is not thread-safe; use it from one thread. Submit calls, rill_h2_consume and the
 *    stream user-data calls may be made from inside callbacks; rill_h2_session_free may not.
 */
#ifndef RILL_H2_H
#define RILL_H2_H

#include <stdbool.h>
#include <sys/uio.h>

#include "rill/common.h"
#include "rill/hpack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* HTTP/2 error codes (RFC 9113 section 7). */
enum rill_h2_error_code {
    RILL_H2_NO_ERROR = 0x0,
    RILL_H2_PROTOCOL_ERROR = 0x1,
    RILL_H2_INTERNAL_ERROR = 0x2,
    RILL_H2_FLOW_CONTROL_ERROR = 0x3,
    RILL_H2_SETTINGS_TIMEOUT = 0x4,
    RILL_H2_STREAM_CLOSED = 0x5,
    RILL_H2_FRAME_SIZE_ERROR = 0x6,
    RILL_H2_REFUSED_STREAM = 0x7,
    RILL_H2_CANCEL = 0x8,
    RILL_H2_COMPRESSION_ERROR = 0x9,
    RILL_H2_CONNECT_ERROR = 0xa,
    RILL_H2_ENHANCE_YOUR_CALM = 0xb,
    RILL_H2_INADEQUATE_SECURITY = 0xc,
    RILL_H2_HTTP_1_1_REQUIRED = 0xd,
};

/* The RFC's name of an error code ("PROTOCOL_ERROR"...); "UNKNOWN" otherwise. Static storage. */
RILL_API const char *rill_h2_error_name(uint32_t code);

/* Frame types and setting identifiers, for tests and tools. */
enum rill_h2_frame_type {
    RILL_H2_DATA = 0x0,
    RILL_H2_HEADERS = 0x1,
    RILL_H2_PRIORITY = 0x2,
    RILL_H2_RST_STREAM = 0x3,
    RILL_H2_SETTINGS = 0x4,
    RILL_H2_PUSH_PROMISE = 0x5,
    RILL_H2_PING = 0x6,
    RILL_H2_GOAWAY = 0x7,
    RILL_H2_WINDOW_UPDATE = 0x8,
    RILL_H2_CONTINUATION = 0x9,
    RILL_H2_PRIORITY_UPDATE = 0x10, /* RFC 9218 */
};

enum rill_h2_settings_id {
    RILL_H2_SETTINGS_HEADER_TABLE_SIZE = 0x1,
    RILL_H2_SETTINGS_ENABLE_PUSH = 0x2,
    RILL_H2_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3,
    RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE = 0x4,
    RILL_H2_SETTINGS_MAX_FRAME_SIZE = 0x5,
    RILL_H2_SETTINGS_MAX_HEADER_LIST_SIZE = 0x6,
    RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8, /* RFC 8441 */
    RILL_H2_SETTINGS_NO_RFC7540_PRIORITIES = 0x9,   /* RFC 9218 */
};

#define RILL_H2_MAX_WINDOW 0x7fffffffu
#define RILL_H2_DEFAULT_WINDOW 65535u
#define RILL_H2_MIN_FRAME_SIZE 16384u
#define RILL_H2_MAX_FRAME_SIZE_LIMIT 16777215u
#define RILL_H2_UNLIMITED 0xffffffffu /* "no limit" for max_concurrent_streams, max_header_list_size */

/* One side's settings. */
typedef struct rill_h2_settings {
    uint32_t header_table_size;
    uint32_t enable_push;
    uint32_t max_concurrent_streams;
    uint32_t initial_window_size;
    uint32_t max_frame_size;
    uint32_t max_header_list_size;
    uint32_t enable_connect_protocol;
    uint32_t no_rfc7540_priorities;
} rill_h2_settings;

typedef struct rill_h2_session rill_h2_session;

/* Which side the session plays; the same order as rill_ws_role (code never depends on the values). */
typedef enum rill_h2_role { RILL_H2_SERVER = 0, RILL_H2_CLIENT = 1 } rill_h2_role;

/* What a received header block is. */
enum rill_h2_headers_kind {
    RILL_H2_HEADERS_REQUEST,       /* server side: a request (also a pushed request, see on_push_promise) */
    RILL_H2_HEADERS_RESPONSE,      /* client side: the final response */
    RILL_H2_HEADERS_INFORMATIONAL, /* client side: a 1xx response (100, 103...); more may follow */
    RILL_H2_HEADERS_TRAILERS,      /* either side: the trailer section (END_STREAM follows) */
};

/* Flags of submit calls and of on_headers. */
#define RILL_H2_FLAG_END_STREAM 0x1u

/* Events. Every callback is optional (NULL = not interested). `user` is the session user data.
 * A callback returning a negative value fails the connection (GOAWAY INTERNAL_ERROR) and
 * rill_h2_session_recv returns that value. Pointers are valid only during the call. The caller
 * sets size to sizeof(rill_h2_callbacks), e.g. `static const rill_h2_callbacks cb = {.size =
 * sizeof cb, ...}` (see "Public API conventions" in docs/ARCHITECTURE.md). */
typedef struct rill_h2_callbacks {
    size_t size; /* sizeof(rill_h2_callbacks) */
    /* A complete, validated header block. For requests the END_STREAM flag means no body. The
     * names and values of a block from the wire lie one after another in one buffer, each
     * followed by a NUL not counted in its length (a consumer may copy them in one piece). */
    int (*on_headers)(rill_h2_session *s, int32_t stream_id, enum rill_h2_headers_kind kind,
                      const rill_header *fields, size_t count, uint32_t flags, void *user);
    /* Client side: the server promised stream promised_id (reserved, remote) on stream_id with
     * these request fields. Reject with rill_h2_submit_rst_stream(promised_id, RILL_H2_CANCEL). */
    int (*on_push_promise)(rill_h2_session *s, int32_t stream_id, int32_t promised_id,
                           const rill_header *fields, size_t count, void *user);
    /* A chunk of the body (padding removed). Give the bytes back with rill_h2_consume() when
     * processed (unless the session auto-consumes); the peer's sending window follows. */
    int (*on_data)(rill_h2_session *s, int32_t stream_id, const uint8_t *data, size_t len, void *user);
    /* The peer ended its side of the stream (after the last on_data / trailers). For a tunnel
     * (CONNECT) this is the orderly close. */
    int (*on_end_stream)(rill_h2_session *s, int32_t stream_id, void *user);
    /* The peer sent RST_STREAM for the stream (on_stream_close follows with the same code). */
    int (*on_stream_reset)(rill_h2_session *s, int32_t stream_id, uint32_t error_code, void *user);
    /* The stream is gone: error_code is NO_ERROR after a normal end, the RST_STREAM code otherwise
     * (sent or received), REFUSED_STREAM for a stream above a received GOAWAY's last id.
     * rill_h2_stream_user() still works during this call; the stream is gone after it. */
    int (*on_stream_close)(rill_h2_session *s, int32_t stream_id, uint32_t error_code, void *user);
    /* The peer's SETTINGS frame was applied. */
    int (*on_settings)(rill_h2_session *s, const rill_h2_settings *peer, void *user);
    /* A PING we sent came back. */
    int (*on_ping_ack)(rill_h2_session *s, const uint8_t opaque[8], void *user);
    /* The peer sent GOAWAY. Streams we opened above last_stream_id are closed next (REFUSED_STREAM). */
    int (*on_goaway)(rill_h2_session *s, int32_t last_stream_id, uint32_t error_code,
                     const uint8_t *debug, size_t debug_len, void *user);
    /* A buffer given to rill_h2_submit_data is no longer referenced (sent, or dropped). */
    void (*on_data_released)(rill_h2_session *s, int32_t stream_id, void *token, void *user);
} rill_h2_callbacks;

/* Pull source for a body: write up to max bytes into buf and return how many (0 is allowed with
 * *eof set). Set *eof when this was the last byte. Return RILL_ERR_WOULD_BLOCK to pause the
 * stream until rill_h2_resume_data(); another negative value resets the stream (INTERNAL_ERROR). */
typedef int (*rill_h2_read_fn)(rill_h2_session *s, int32_t stream_id, uint8_t *buf, size_t max,
                               bool *eof, void *source_user);

/* Allocation hooks (optional, all or none): for memory accounting. Referenced by the session. */
typedef struct rill_h2_allocator {
    void *(*alloc)(size_t size, void *ctx);
    void *(*realloc)(void *ptr, size_t size, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} rill_h2_allocator;

/* A shared pool of brief memory (optional): output buffers (output_chunk_size plus a small
 * header), the queue's first segment ring, the header-block scratch and the HPACK encoder's
 * learning, so a few fixed sizes (each call passes it). Sessions that use one give output memory
 * back as soon as their output drains, and the scratch and learning at rill_h2_session_trim, so
 * a quiet session holds none and the sessions of one thread reuse the same few blocks.
 * Referenced, not copied: it must outlive the sessions. */
typedef struct rill_h2_buffer_pool {
    void *(*get)(size_t size, void *ctx);
    void (*put)(void *buf, size_t size, void *ctx);
    void *ctx;
} rill_h2_buffer_pool;

/* Flood limits: token buckets of `burst` frames refilled at `per_second` (time from
 * rill_h2_session_tick). Empty bucket: GOAWAY ENHANCE_YOUR_CALM. */
typedef struct rill_h2_rate {
    uint32_t burst;
    uint32_t per_second;
} rill_h2_rate;

typedef struct rill_h2_options {
    size_t size; /* sizeof(rill_h2_options), set by rill_h2_options_init */
    /* Settings we announce. Defaults (rill_h2_options_init): header_table_size 4096, enable_push
     * 1 on clients / 0 on servers, max_concurrent_streams 100, initial_window_size 262144,
     * max_frame_size 16384, max_header_list_size 65536, enable_connect_protocol 0,
     * no_rfc7540_priorities 1. */
    rill_h2_settings local;
    uint32_t connection_window;    /* our connection receive window (> 65535 sends a WINDOW_UPDATE at start) */
    uint32_t settings_timeout_ms;  /* SETTINGS ACK deadline, also how long max_pending_output may
                                      stay unread (0 = none); default 10000 */
    /* Wire bytes of one header block incl. CONTINUATIONs, GOAWAY ENHANCE_YOUR_CALM beyond; 0 (the
     * default) = twice local.max_header_list_size, at least 16 KiB, at most 1 MiB (128 KiB). */
    uint32_t max_header_block;
    uint32_t max_continuations;    /* CONTINUATION frames per header block; default 64 */
    uint32_t max_closed_streams;   /* recently closed streams remembered; default 32 */
    uint32_t max_pending_output;   /* queued output that stops reading (want_read) / fails; default 256 KiB */
    uint32_t output_chunk_size;    /* size of one output buffer; default 16 KiB + 64 */
    bool auto_consume;             /* give DATA back to flow control as soon as it is delivered */
    uint64_t now_ms;               /* the time at creation */
    /* Defaults {burst, per second}: PING and SETTINGS {100, 10}; rst_rate {1000, 33}, charged per
     * stream the peer resets, stream error it provokes, stream refused (REFUSED_STREAM, 431) and
     * request the application resets unanswered; the others {1000, 100}. */
    rill_h2_rate ping_rate, settings_rate, rst_rate, empty_frame_rate, window_update_rate,
        priority_rate;
    const rill_h2_allocator *allocator; /* NULL = malloc/realloc/free; referenced, not copied:
                                           it must outlive the session */
    const rill_h2_buffer_pool *output_pool; /* NULL = each session keeps its own buffer */
} rill_h2_options;

/* Fills *opt with defaults for the role (and opt->size). */
RILL_API void rill_h2_options_init(rill_h2_options *opt, enum rill_h2_role role);

/* A new session with its own copy of opt (see rill_h2_profile_new to share one among many).
 * opt may be NULL (defaults). The callbacks struct is referenced, not copied (it
 * is part of every idle connection's memory otherwise): it must stay valid and unchanged until
 * rill_h2_session_free, so a static const struct is the usual choice; cb may be NULL (no
 * events). user is passed to every callback. The client preface (client role) and our SETTINGS are queued at once.
 * Returns NULL when out of memory or for invalid options or callbacks (a bad role; a size 0 or
 * larger than the library's). Free with rill_h2_session_free. */
RILL_API rill_h2_session *rill_h2_session_new(enum rill_h2_role role, const rill_h2_options *opt,
                                              const rill_h2_callbacks *cb, void *user);
/* Frees the session; every still-referenced DATA buffer is reported released first. */
RILL_API void rill_h2_session_free(rill_h2_session *s);

/* Options made once for many sessions (e.g. every connection of a server): each session made with
 * rill_h2_session_new_shared references the profile instead of carrying its own copy of the
 * settings, limits and flood rates, which keeps idle connections small. opt as for
 * rill_h2_session_new (NULL: defaults; now_ms is not used). Read-only once made, so sessions on
 * several threads may share one. Returns NULL for invalid options or out of memory. The caller
 * owns it: free it with rill_h2_profile_free after the last session made from it. */
typedef struct rill_h2_profile rill_h2_profile;
RILL_API rill_h2_profile *rill_h2_profile_new(enum rill_h2_role role, const rill_h2_options *opt);
RILL_API void rill_h2_profile_free(rill_h2_profile *profile);
/* A new session from a profile (referenced, not copied), starting at time now_ms; otherwise as
 * rill_h2_session_new. */
RILL_API rill_h2_session *rill_h2_session_new_shared(const rill_h2_profile *profile,
                                                     const rill_h2_callbacks *cb, void *user,
                                                     uint64_t now_ms);

/* Server side of an h2c Upgrade: call right after rill_h2_session_new. settings_payload is the
 * base64url-decoded HTTP2-Settings header (a SETTINGS payload); request holds the upgraded
 * request's fields in HTTP/2 form (:method, :scheme, :path, :authority, then the regular fields,
 * lowercase, no connection-specific ones). Stream 1 becomes half-closed (remote) and the request is
 * reported at once through on_headers (END_STREAM) and on_end_stream, like any request; answer it
 * with rill_h2_submit_response(s, 1, ...). RILL_ERR_INVALID_ARG for a bad payload or request. */
RILL_API int rill_h2_session_upgrade_server(rill_h2_session *s, const uint8_t *settings_payload,
                                            size_t payload_len, const rill_header *request,
                                            size_t count);
/* Client side of an h2c Upgrade: stream 1 (the upgraded request) becomes half-closed (local).
 * head_request says whether it was a HEAD request. */
RILL_API int rill_h2_session_upgrade_client(rill_h2_session *s, bool head_request, void *stream_user);
/* Writes the SETTINGS payload of our local settings into buf (for the HTTP2-Settings header,
 * base64url-encode it). Returns the length, or RILL_ERR_BUFFER_TOO_SMALL. */
RILL_API int rill_h2_session_settings_payload(const rill_h2_session *s, uint8_t *buf, size_t cap);

/* Feeds received bytes. Returns the number consumed (always len), or a negative RILL_ERR_* when
 * the connection failed: a GOAWAY is then queued, drain the output and close the connection.
 * Bytes after a failure are ignored. */
RILL_API int64_t rill_h2_session_recv(rill_h2_session *s, const uint8_t *data, size_t len);

/* Pending output as up to max iovecs; returns how many (0 = nothing to send). DATA frames are
 * produced here, by priority, from submitted buffers and read callbacks. */
RILL_API int rill_h2_session_output(rill_h2_session *s, struct iovec *iov, int max);
/* The first n bytes of the output were written: advance, release sent DATA buffers. */
RILL_API void rill_h2_session_output_sent(rill_h2_session *s, size_t n);
/* Convenience: copies up to cap bytes of pending output into buf and marks them consumed.
 * Returns the number of bytes copied. */
RILL_API size_t rill_h2_session_send_copy(rill_h2_session *s, uint8_t *buf, size_t cap);

/* Whether the I/O layer should keep reading / has something to write. Both false: close. */
RILL_API bool rill_h2_session_want_read(const rill_h2_session *s);
RILL_API bool rill_h2_session_want_write(rill_h2_session *s);
/* Time passes: checks the SETTINGS ACK deadline, refills flood buckets. */
RILL_API void rill_h2_session_tick(rill_h2_session *s, uint64_t now_ms);
/* The next time rill_h2_session_tick must be called, or UINT64_MAX for none. */
RILL_API uint64_t rill_h2_session_next_deadline(const rill_h2_session *s);
/* Gives back memory not needed while idle (drained output buffers, header scratch). */
RILL_API void rill_h2_session_trim(rill_h2_session *s);

RILL_API void *rill_h2_session_user(const rill_h2_session *s);
RILL_API void rill_h2_session_set_user(rill_h2_session *s, void *user);
RILL_API enum rill_h2_role rill_h2_session_role(const rill_h2_session *s);
RILL_API const rill_h2_settings *rill_h2_session_local_settings(const rill_h2_session *s);
RILL_API const rill_h2_settings *rill_h2_session_peer_settings(const rill_h2_session *s);
/* The error code of the connection error we sent (or received in GOAWAY), -1 if none. */
RILL_API int64_t rill_h2_session_error_code(const rill_h2_session *s);
/* Open (incl. half-closed and reserved) streams. */
RILL_API size_t rill_h2_session_stream_count(const rill_h2_session *s);
/* Bytes the session itself holds: sizeof(session) plus its current allocations. */
RILL_API size_t rill_h2_session_memory(const rill_h2_session *s);
/* sizeof(one stream) — the per-stream cost, for reporting. */
RILL_API size_t rill_h2_stream_size(void);
/* Sending windows (for tests and schedulers): connection (stream_id 0) or stream; INT64_MIN if
 * the stream is unknown. */
RILL_API int64_t rill_h2_session_send_window(const rill_h2_session *s, int32_t stream_id);
/* Receiving windows as the peer sees them (advertised minus received). */
RILL_API int64_t rill_h2_session_recv_window(const rill_h2_session *s, int32_t stream_id);

/* Body bytes the peer still owes on a stream that flow control already lets it send: the smaller
 * of what its content-length leaves and the stream's and connection's receive windows. 0 without
 * a content-length, for a tunnel, or for an unknown stream. What will arrive unless the peer
 * resets the stream (for rill_io_conn_expect_bytes). */
RILL_API uint64_t rill_h2_session_recv_owed(const rill_h2_session *s, int32_t stream_id);

/* Per-stream user data (NULL for an unknown stream; setting it on one returns RILL_ERR_NOT_FOUND). */
RILL_API void *rill_h2_stream_user(const rill_h2_session *s, int32_t stream_id);
RILL_API int rill_h2_stream_set_user(rill_h2_session *s, int32_t stream_id, void *user);

/* ---- submitting ------------------------------------------------------------------------------ */

/* Client: a new request; returns the new stream id (> 0) or RILL_ERR_*: RILL_ERR_STATE after
 * GOAWAY, RILL_ERR_LIMIT at the peer's SETTINGS_MAX_CONCURRENT_STREAMS, RILL_ERR_INVALID_ARG for
 * bad fields, RILL_ERR_UNSUPPORTED for :protocol when the peer did not enable extended CONNECT.
 * Without RILL_H2_FLAG_END_STREAM the body follows (rill_h2_submit_data / rill_h2_set_data_source).
 * A `priority` field (RFC 9218) sets the stream's urgency and incremental flag. */
RILL_API int32_t rill_h2_submit_request(rill_h2_session *s, const rill_header *fields, size_t count,
                                        uint32_t flags, void *stream_user);
/* Server: response headers for a stream (also a 1xx informational response: :status 1xx, no
 * END_STREAM, any number before the final one). Responses to HEAD and 204/304 always end the
 * stream. */
RILL_API int rill_h2_submit_response(rill_h2_session *s, int32_t stream_id, const rill_header *fields,
                                     size_t count, uint32_t flags);
/* Trailers: sent after every queued body byte; ends the stream. */
RILL_API int rill_h2_submit_trailers(rill_h2_session *s, int32_t stream_id, const rill_header *fields,
                                     size_t count);
/* Body bytes by reference (see ownership above); len 0 with END_STREAM just ends the stream.
 * token comes back in on_data_released. */
RILL_API int rill_h2_submit_data(rill_h2_session *s, int32_t stream_id, const uint8_t *data,
                                 size_t len, uint32_t flags, void *token);
/* Body by pull: read is called when the stream may send. Replaces nothing queued before it. */
RILL_API int rill_h2_set_data_source(rill_h2_session *s, int32_t stream_id, rill_h2_read_fn read,
                                     void *source_user);
/* Vectored pull source: fill iov[0..iovcnt) in order, like preadv, and return the total (a short
 * total fills only a prefix); same *eof and return rules as rill_h2_read_fn. When the windows
 * allow several whole frames the session asks for all their payloads in one call (the iovecs are
 * the payload slots of consecutive DATA frames, sized alike to fill one 64 KiB segment), so a file
 * source makes one preadv per few frames instead of one pread each. */
typedef int (*rill_h2_readv_fn)(rill_h2_session *s, int32_t stream_id, const struct iovec *iov,
                                int iovcnt, bool *eof, void *source_user);
RILL_API int rill_h2_set_data_source_v(rill_h2_session *s, int32_t stream_id, rill_h2_readv_fn readv,
                                       void *source_user);
/* A source that returned RILL_ERR_WOULD_BLOCK has data again. */
RILL_API int rill_h2_resume_data(rill_h2_session *s, int32_t stream_id);
/* Server push: promises a new stream for the request `fields` on stream_id. Returns the promised
 * (even) stream id, or RILL_ERR_STATE when the peer disabled push / the stream cannot carry it. */
RILL_API int32_t rill_h2_submit_push_promise(rill_h2_session *s, int32_t stream_id,
                                             const rill_header *fields, size_t count, void *stream_user);
RILL_API int rill_h2_submit_rst_stream(rill_h2_session *s, int32_t stream_id, uint32_t error_code);
/* PING with 8 opaque bytes (NULL = zeros). */
RILL_API int rill_h2_submit_ping(rill_h2_session *s, const uint8_t *opaque);
/* GOAWAY now, with the last peer stream we processed; no new streams are accepted afterwards. */
RILL_API int rill_h2_submit_goaway(rill_h2_session *s, uint32_t error_code, const uint8_t *debug,
                                   size_t debug_len);
/* Graceful shutdown: GOAWAY(2^31-1) + PING now, the real GOAWAY(last id) when the PING returns
 * (or, if it never does, at the deadline reported by rill_h2_session_next_deadline). */
RILL_API int rill_h2_submit_shutdown(rill_h2_session *s);
/* New local settings (ids from rill_h2_settings_id); applied to our side when acknowledged.
 * ENABLE_CONNECT_PROTOCOL can only go from 0 to 1. */
RILL_API int rill_h2_submit_settings(rill_h2_session *s, const uint16_t *ids, const uint32_t *values,
                                     size_t count);
/* Client: RFC 9218 PRIORITY_UPDATE for a stream (urgency 0..7). */
RILL_API int rill_h2_submit_priority_update(rill_h2_session *s, int32_t stream_id, unsigned urgency,
                                            bool incremental);
/* The application has processed n bytes of a stream's body: they go back into the receive
 * windows (WINDOW_UPDATE when half the window is used). */
RILL_API int rill_h2_consume(rill_h2_session *s, int32_t stream_id, size_t n);

#ifdef __cplusplus
}
#endif
#endif
