/* rill I/O runtime: one epoll event loop per worker thread, listeners, connections with batched
 * output, timers, cross-thread posts, signals and graceful shutdown.
 *
 * Threading: a loop and everything created on it (listeners, connections, timers) belong to the
 * thread that runs rill_io_loop_run(). Only rill_io_loop_post() and rill_io_loop_stop() may be
 * called from other threads. Callbacks always run on the loop's thread.
 *
 * Ownership: the caller owns loops (rill_io_loop_free) and timers (rill_io_timer_free). The loop
 * owns listeners and connections: connections are freed by the loop after their on_close callback
 * (or without one if the application never saw them), never by the caller.
 * Bytes passed to write functions are copied unless the function says otherwise; bytes handed to
 * on_data live in a per-loop buffer and are valid only during the callback. */
#ifndef RILL_IO_H
#define RILL_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_io_loop rill_io_loop;
typedef struct rill_io_conn rill_io_conn;
typedef struct rill_io_listener rill_io_listener;
typedef struct rill_io_timer rill_io_timer;
typedef struct rill_tls_ctx rill_tls_ctx; /* see rill/tls.h */

/* ---- addresses ---------------------------------------------------------------------------- */

/* A resolved socket address (IPv4 or IPv6). Plain value type, copy freely. */
struct rill_io_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "HOST:PORT": HOST is an IPv4 literal, a bracketed IPv6 literal ("[::1]:8443"),
 * "localhost" (127.0.0.1), "*" or empty (0.0.0.0), or a name resolved once with getaddrinfo.
 * PORT is 0..65535 (0 = ephemeral when listening). On failure returns RILL_ERR_INVALID_ARG and,
 * if err is non-NULL, writes a one-line reason into err (errlen bytes, NUL-terminated). */
RILL_API int rill_io_addr_parse(const char *spec, struct rill_io_addr *out, char *err, size_t errlen);

/* Formats addr as "1.2.3.4:80" or "[::1]:80" into buf (NUL-terminated, truncated to buflen). */
RILL_API void rill_io_addr_format(const struct rill_io_addr *addr, char *buf, size_t buflen);

/* The port of addr in host byte order. */
RILL_API uint16_t rill_io_addr_port(const struct rill_io_addr *addr);

/* ---- the loop ----------------------------------------------------------------------------- */

/* Loop options; fill with rill_io_loop_options_init (zero fields still take the default shown). */
typedef struct rill_io_loop_options {
    size_t size;                   /* sizeof(rill_io_loop_options), set by rill_io_loop_options_init */
    uint32_t max_conns;            /* connections on this loop (default 10000); over it, an
                                      accepted socket is closed at once */
    uint32_t handshake_timeout_ms; /* TLS handshake / client connect deadline (default 10000) */
    uint32_t linger_ms;            /* graceful close: time to flush and read the peer's FIN
                                      (default 5000) */
    uint32_t low_water;            /* on_drain fires when the queue falls to this (default 16 KiB) */
    uint32_t high_water;           /* ...after it has been above this (default 256 KiB) */
    uint32_t notsent_lowat;        /* TCP_NOTSENT_LOWAT of accepted connections: bytes written but
                                      not yet sent that the kernel holds before the socket stops
                                      being writable (default 64 KiB; UINT32_MAX: the system's) */
} rill_io_loop_options;

/* Fills *opt with the defaults shown above (and opt->size). */
RILL_API void rill_io_loop_options_init(rill_io_loop_options *opt);

/* Creates a loop (epoll instance, eventfd, 64 KiB receive buffer). opts may be NULL (defaults);
 * RILL_ERR_INVALID_ARG for a bad opts->size (see "Public API conventions" in
 * docs/ARCHITECTURE.md). Sets SIGPIPE to ignored if it was at its default (writes to a closed peer
 * must not kill the process). On success *out is owned by the caller and freed with
 * rill_io_loop_free(). */
RILL_API int rill_io_loop_new(const rill_io_loop_options *opts, rill_io_loop **out);

/* Runs the loop on the calling thread until rill_io_loop_stop() or until a graceful shutdown
 * completes. Returns 0, or RILL_ERR_IO if epoll itself fails. */
RILL_API int rill_io_loop_run(rill_io_loop *loop);

/* Asks rill_io_loop_run() to return after the current turn. Thread-safe. */
RILL_API void rill_io_loop_stop(rill_io_loop *loop);

/* Closes every listener and connection (on_close(conn, RILL_ERR_STATE) for open ones) and frees
 * the loop. Caller-owned timers must be freed first. Must not be called while it runs. */
RILL_API void rill_io_loop_free(rill_io_loop *loop);

/* Milliseconds on CLOCK_MONOTONIC, cached at the start of each loop turn: pass this to sans-I/O
 * sessions as their notion of "now". */
RILL_API uint64_t rill_io_loop_now_ms(const rill_io_loop *loop);

/* The loop's turn: a number that grows each time it waits for events, the same for everything
 * one wake-up runs (work of one turn can be gathered to go out together). */
RILL_API uint64_t rill_io_loop_turn(const rill_io_loop *loop);

/* Reads CLOCK_MONOTONIC now (not cached), in milliseconds. */
RILL_API uint64_t rill_io_now_ms(void);

/* The last failure on this loop as one line (e.g. "cannot listen on 127.0.0.1:80: Permission
 * denied"); "" if none. Static storage in the loop, overwritten by the next failure. */
RILL_API const char *rill_io_loop_last_error(const rill_io_loop *loop);

/* Application data attached to the loop (e.g. the server's per-thread worker); NULL initially. */
RILL_API void rill_io_loop_set_user(rill_io_loop *loop, void *user);
RILL_API void *rill_io_loop_user(const rill_io_loop *loop);

/* True once rill_io_loop_shutdown() has been called on this loop. */
RILL_API bool rill_io_loop_shutting_down(const rill_io_loop *loop);

/* Connections on this loop that count against max_conns (handshaking, open, closing). */
RILL_API uint32_t rill_io_loop_conn_count(const rill_io_loop *loop);

/* Runs fn(loop, arg) on the loop's thread during a later turn. Thread-safe; wakes the loop via its
 * eventfd. arg is owned by the caller/fn. Posts still queued when the loop is freed are dropped
 * (fn not called). Returns RILL_ERR_NOMEM if the message cannot be queued. The loop must outlive
 * every call. */
typedef void (*rill_io_post_fn)(rill_io_loop *loop, void *arg);
RILL_API int rill_io_loop_post(rill_io_loop *loop, rill_io_post_fn fn, void *arg);

/* Delivers the given signals (e.g. SIGTERM, SIGINT, SIGHUP) as loop events: fn(loop, signo, arg)
 * runs on the loop's thread. Blocks those signals in the calling thread, so call it from the main
 * thread before starting other threads (they inherit the mask). One watch per loop. */
typedef void (*rill_io_signal_fn)(rill_io_loop *loop, int signo, void *arg);
RILL_API int rill_io_loop_watch_signals(rill_io_loop *loop, const int *signals, size_t count,
                                        rill_io_signal_fn fn, void *arg);

/* Graceful shutdown of this loop: closes its listeners, drops handshaking connections, calls
 * on_shutdown (or, if NULL, a graceful rill_io_conn_close) for every open connection, then waits
 * until all have closed or deadline_ms (relative) passes, force-closing the rest
 * (on_close(conn, RILL_ERR_TIMEOUT)). rill_io_loop_run() then returns. Loop thread only (use
 * rill_io_loop_post from other threads). */
RILL_API void rill_io_loop_shutdown(rill_io_loop *loop, uint32_t deadline_ms);

/* ---- connections -------------------------------------------------------------------------- */

/* Per-connection callbacks. The struct is referenced, not copied: keep it alive (static const).
 * The caller sets size to sizeof(rill_io_conn_callbacks), e.g. `{.size = sizeof cb, ...}`; functions
 * taking one return RILL_ERR_INVALID_ARG for a size of 0 or larger than the library's (see
 * "Public API conventions" in docs/ARCHITECTURE.md). Any callback may call any rill_io_conn_*
 * function on its connection, including close. */
typedef struct rill_io_conn_callbacks {
    size_t size; /* sizeof(rill_io_conn_callbacks) */
    /* The connection is usable: TCP connected, and TLS handshake done if TLS. alpn is the
     * negotiated protocol ("h2", "http/1.1") or NULL; valid while the connection lives. */
    void (*on_open)(rill_io_conn *conn, const char *alpn);
    /* Received bytes; data is in a per-loop buffer, valid only during the call. */
    void (*on_data)(rill_io_conn *conn, const uint8_t *data, size_t len);
    /* The output queue fell to the low-water mark after exceeding the high-water mark. */
    void (*on_drain)(rill_io_conn *conn);
    /* Graceful shutdown of the loop began: say goodbye (e.g. GOAWAY) and close. Optional. */
    void (*on_shutdown)(rill_io_conn *conn);
    /* Called exactly once, last: err is 0 after a graceful close, RILL_ERR_EOF when the peer
     * closed, RILL_ERR_IO / RILL_ERR_TLS / RILL_ERR_TIMEOUT otherwise. Free per-connection user
     * state here; conn itself is freed by the loop after this returns. */
    void (*on_close)(rill_io_conn *conn, int err);
    /* Optional pull output, for a protocol engine that keeps its own output queue: when the
     * connection flushes (after rill_io_conn_want_output), the loop asks for up to max iovecs
     * of bytes to send, which go out after anything queued with the write calls, straight from
     * the caller's memory (no copy into the loop's queue). The memory must stay valid and
     * unchanged until on_output_sent reports how many of those bytes were taken (written to the
     * socket; over TLS, encrypted into records the loop sends in batches, or committed to a record
     * that OpenSSL must retry, whose bytes, up to 16 KiB, are copied into the loop's queue first;
     * a graceful close sends all of them, an abrupt one drops them); the rest is asked for again
     * later. Returning 0 means nothing more for now; the loop stops
     * asking until rill_io_conn_want_output is called again. Both may be called while a
     * graceful close is flushing. */
    int (*on_output)(rill_io_conn *conn, struct iovec *iov, int max);
    void (*on_output_sent)(rill_io_conn *conn, size_t n);
    /* The connection's built-in timer (rill_io_conn_timer_arm_at) fired. Optional. */
    void (*on_timer)(rill_io_conn *conn);
    /* A connection of rill_io_connect's: the TCP connect succeeded. With TLS the handshake starts
     * after this returns (on_open follows when it is done); without, on_open follows at once.
     * May replace the callbacks and the user pointer (rill_io_conn_set_callbacks, _set_user: the
     * new ones get the on_open) or close the connection (then no on_open). Optional. */
    void (*on_connected)(rill_io_conn *conn);
    /* The peer ended its sending in order (a FIN; over TLS its close_notify, or a FIN without
     * one) while the connection is open; a reset is not an end (on_close as ever). Optional.
     * Return true to keep the connection for writing (a half-close): no more on_data, writes still
     * go, and it closes once our side has ended too (rill_io_conn_shutdown_write: then
     * on_close(conn, 0)) or at rill_io_conn_close. Return false (or leave it NULL) for the usual
     * end: what is queued goes, then on_close(conn, RILL_ERR_EOF). */
    bool (*on_peer_eof)(rill_io_conn *conn);
} rill_io_conn_callbacks;

/* Listens on addr with SO_REUSEPORT (one listener per loop on the same address spreads
 * connections across threads), IPV6_V6ONLY for IPv6, backlog 1024. The process's first listener
 * on an address fails if another socket listens there, even one with SO_REUSEPORT (so a second
 * rill never shares a port in use); its later listeners on that address join it. tls is NULL
 * for cleartext, else a server context from rill/tls.h (referenced; must outlive the listener).
 * Accepted connections get cbs and user as their initial callbacks and user data; on_open fires
 * once the TLS handshake (if any) is done; on_close fires only for connections that were opened.
 * On failure returns RILL_ERR_IO (text in rill_io_loop_last_error()), or RILL_ERR_STATE once the
 * loop is shutting down. *out (optional) is owned by the loop; close it early with
 * rill_io_listener_close(). */
RILL_API int rill_io_listen(rill_io_loop *loop, const struct rill_io_addr *addr, rill_tls_ctx *tls,
                            const struct rill_io_conn_callbacks *cbs, void *user,
                            rill_io_listener **out);

/* The bound address (useful with port 0). */
RILL_API struct rill_io_addr rill_io_listener_addr(const rill_io_listener *listener);

/* Stops accepting on this listener and frees it. */
RILL_API void rill_io_listener_close(rill_io_listener *listener);

/* Adopts fd, an already-connected stream socket (e.g. one end of a socketpair, or a socket
 * accepted elsewhere), as a cleartext server-side connection on loop, as if rill_io_listen had
 * accepted it: it is made non-blocking, gets cbs and user, and on_open fires during this call.
 * The loop owns fd from this call on, also on failure (then it is closed here). Loop thread only.
 * Returns RILL_OK, RILL_ERR_STATE once the loop is shutting down, RILL_ERR_LIMIT at max_conns,
 * RILL_ERR_IO or RILL_ERR_NOMEM. */
RILL_API int rill_io_adopt(rill_io_loop *loop, int fd, const struct rill_io_conn_callbacks *cbs,
                           void *user);

/* Starts a non-blocking TCP connect (and TLS client handshake if tls is a client context from
 * rill/tls.h; server_name is used for SNI and certificate host checks, may be NULL).
 * on_open fires when ready; on failure on_close(conn, err) fires without on_open. on_close is
 * always called for a connection returned here. Writes made before on_open are queued. */
RILL_API int rill_io_connect(rill_io_loop *loop, const struct rill_io_addr *addr, rill_tls_ctx *tls,
                             const char *server_name, const struct rill_io_conn_callbacks *cbs,
                             void *user, rill_io_conn **out);

/* Queues a copy of data; everything queued during a loop turn is sent with one writev (or, for
 * TLS, record-sized SSL_write calls) at the end of the turn. Returns RILL_ERR_STATE once the
 * connection is closing, RILL_ERR_NOMEM if the copy cannot be made, RILL_ERR_LIMIT if the queue
 * would pass 4 GiB (nothing is queued then; honour back-pressure long before). */
RILL_API int rill_io_conn_write(rill_io_conn *conn, const void *data, size_t len);

/* Same as rill_io_conn_write for several buffers (copied, in order). */
RILL_API int rill_io_conn_writev(rill_io_conn *conn, const struct iovec *iov, int iovcnt);

/* Queues data without copying: data must stay valid and unchanged until release(release_arg) is
 * called, which happens once it has been written or the connection is closed (release may be
 * NULL). On error (returned) release is called before returning. */
typedef void (*rill_io_release_fn)(void *release_arg);
RILL_API int rill_io_conn_write_ref(rill_io_conn *conn, const void *data, size_t len,
                                    rill_io_release_fn release, void *release_arg);

/* Asks the loop to pull output through on_output when this turn's flush runs (cheap: sets a
 * flag). Does nothing for connections without on_output or that are already closed. */
RILL_API void rill_io_conn_want_output(rill_io_conn *conn);

/* Bytes queued and not yet written (the back-pressure signal). */
RILL_API size_t rill_io_conn_queued(const rill_io_conn *conn);

/* Closes the connection. graceful: stop reading, send what is queued (then TLS close_notify and
 * a FIN), then on_close(conn, 0); the loop keeps draining the peer's bytes briefly so the final
 * response is not destroyed by a reset. Not graceful: drop the queue and close now,
 * on_close(conn, 0). Calling it again, or from on_close, does nothing. */
RILL_API void rill_io_conn_close(rill_io_conn *conn, bool graceful);

/* Ends the connection with a TCP reset (SO_LINGER 0) at the end of the loop's turn: nothing
 * queued goes and no TLS close_notify, so the peer sees ECONNRESET, never an orderly end. For
 * passing on an abort, e.g. a proxy whose other side was reset mid-tunnel. on_close(conn, 0)
 * follows as for rill_io_conn_close; it does nothing once our end went (a graceful close that
 * finished) or the connection is gone. */
RILL_API void rill_io_conn_abort(rill_io_conn *conn);

/* Ends our sending only (a half-close, for tunnels): what is queued goes first, then TLS
 * close_notify (TLS) and a FIN (shutdown(SHUT_WR)); reading goes on. Writes after this call return
 * RILL_ERR_STATE. Once the peer's end has been seen as well (on_peer_eof returned true) the
 * connection is over and closes itself: on_close(conn, 0). May be called before on_open (it then
 * happens once the queue has gone after the open). Returns RILL_ERR_STATE once the connection is
 * closing; calling it again does nothing. The connection stays the loop's, as ever. */
RILL_API int rill_io_conn_shutdown_write(rill_io_conn *conn);

/* Whether the peer reset the connection (a TCP RST) rather than ending it in order: on_close
 * reports both as RILL_ERR_EOF. Meant for on_close (e.g. a proxy passing an abort on as one). */
RILL_API bool rill_io_conn_peer_reset(const rill_io_conn *conn);

/* Stops (paused = true) or resumes delivering on_data. Back-pressure towards the peer. */
RILL_API void rill_io_conn_pause_read(rill_io_conn *conn, bool paused);

/* Says how many bytes the peer is bound to send soon without waiting for us (e.g. the rest of a
 * large response body that flow control already allows); 0 when nothing is owed. From 1 MiB the
 * loop has the kernel wake it per batch of that size rather than per segment (SO_RCVLOWAT), and
 * reads the batch in one turn: fewer wakeups for us and for a sender on the same machine. A batch
 * that is late (the peer sent less: a reset, a stall) is read after 2 ms, and batching then waits
 * until data floods in again. Cheap to call after every read: the socket changes only when
 * batching starts or stops. */
RILL_API void rill_io_conn_expect_bytes(rill_io_conn *conn, uint64_t bytes);

/* The connection's built-in timer: no allocation, one per connection, for idle and protocol
 * deadlines. It fires cb->on_timer once at deadline_ms (loop time, rill_io_loop_now_ms scale);
 * arming again moves it. Only while open: arming before on_open or after rill_io_conn_close
 * returns RILL_ERR_STATE, and closing disarms it. Deadline is UINT64_MAX when not armed. */
RILL_API int rill_io_conn_timer_arm_at(rill_io_conn *conn, uint64_t deadline_ms);
RILL_API void rill_io_conn_timer_cancel(rill_io_conn *conn);
RILL_API bool rill_io_conn_timer_armed(const rill_io_conn *conn);
RILL_API uint64_t rill_io_conn_timer_deadline(const rill_io_conn *conn);

/* Replaces the callbacks (e.g. after a protocol upgrade). cbs is referenced, not copied.
 * RILL_ERR_INVALID_ARG (the old ones stay) for a bad cbs->size. */
RILL_API int rill_io_conn_set_callbacks(rill_io_conn *conn, const struct rill_io_conn_callbacks *cbs);

/* Per-connection user data (initially the listener's / connect call's user pointer). */
RILL_API void *rill_io_conn_user(const rill_io_conn *conn);
RILL_API void rill_io_conn_set_user(rill_io_conn *conn, void *user);

RILL_API rill_io_loop *rill_io_conn_loop(const rill_io_conn *conn);

/* The peer's address (getpeername; nothing is stored per connection). */
RILL_API int rill_io_conn_peer(const rill_io_conn *conn, struct rill_io_addr *out);

/* TLS facts the HTTP/2 layer needs for RFC 9113 §9.2 (INADEQUATE_SECURITY). Strings belong to the
 * connection's TLS state and are valid while the connection lives. */
struct rill_io_tls_info {
    int version;           /* e.g. 0x0303 (TLS 1.2), 0x0304 (TLS 1.3) */
    const char *cipher;    /* OpenSSL cipher name */
    const char *alpn;      /* negotiated protocol or NULL */
    bool h2_acceptable;    /* TLS >= 1.2, AEAD cipher, ephemeral key exchange */
    bool resumed;          /* the session was resumed */
};

/* Fills info for a TLS connection after on_open; RILL_ERR_STATE for cleartext or before open. */
RILL_API int rill_io_conn_tls_info(const rill_io_conn *conn, struct rill_io_tls_info *info);

/* ---- watching other descriptors ---------------------------------------------------------- */

/* Readiness bits for rill_io_watch: what to wait for, and what happened. */
#define RILL_IO_READABLE 1u
#define RILL_IO_WRITABLE 2u

/* A descriptor someone else reads and writes (e.g. a resolver library's sockets), watched by the
 * loop. */
typedef struct rill_io_watcher rill_io_watcher;

/* Called on the loop's thread when fd is ready: events holds RILL_IO_READABLE and/or
 * RILL_IO_WRITABLE (an error or hang-up on fd reports both of the bits being waited for). May call
 * rill_io_watch_set or rill_io_unwatch on any watch, this one too. */
typedef void (*rill_io_watch_fn)(rill_io_watcher *w, int fd, unsigned events, void *user);

/* Watches fd (level-triggered) for events (RILL_IO_READABLE | RILL_IO_WRITABLE; 0 registers it and
 * waits for nothing yet). fd stays the caller's: the loop never reads, writes or closes it.
 * *out belongs to the loop and is released with rill_io_unwatch (or by rill_io_loop_free).
 * Loop thread only. Returns RILL_ERR_INVALID_ARG (bad fd or events, no fn), RILL_ERR_NOMEM,
 * RILL_ERR_IO (epoll refused fd; text in rill_io_loop_last_error()). */
RILL_API int rill_io_watch(rill_io_loop *loop, int fd, unsigned events, rill_io_watch_fn fn,
                           void *user, rill_io_watcher **out);

/* Changes what w waits for (same bits as rill_io_watch). RILL_ERR_IO if epoll refuses. */
RILL_API int rill_io_watch_set(rill_io_watcher *w, unsigned events);

/* Stops watching and releases w (its callback is not called again, also not later in the same
 * loop turn). Call it before closing the fd. NULL is ignored. */
RILL_API void rill_io_unwatch(rill_io_watcher *w);

/* ---- timers ------------------------------------------------------------------------------- */

/* A timer on a min-heap keyed by millisecond deadline; arm/re-arm/cancel are O(log n).
 * Timers armed for the same deadline fire in arming order. A timer armed from its own callback
 * with delay 0 fires on the next turn, not in a loop. */
typedef void (*rill_io_timer_fn)(rill_io_timer *timer, void *arg);

/* Creates a disarmed timer owned by the caller: free it with rill_io_timer_free(), before
 * rill_io_loop_free(). NULL on allocation failure. */
RILL_API rill_io_timer *rill_io_timer_new(rill_io_loop *loop, rill_io_timer_fn fn, void *arg);

/* (Re)arms the timer to fire delay_ms after the loop's cached now (refreshed first when called
 * outside rill_io_loop_run). RILL_ERR_NOMEM if the heap cannot grow. */
RILL_API int rill_io_timer_arm(rill_io_timer *timer, uint64_t delay_ms);

/* (Re)arms the timer to fire at an absolute loop time (rill_io_loop_now_ms scale). */
RILL_API int rill_io_timer_arm_at(rill_io_timer *timer, uint64_t deadline_ms);

/* Disarms the timer; harmless if it is not armed. */
RILL_API void rill_io_timer_cancel(rill_io_timer *timer);

RILL_API bool rill_io_timer_armed(const rill_io_timer *timer);

/* Deadline of an armed timer (loop time, ms). */
RILL_API uint64_t rill_io_timer_deadline(const rill_io_timer *timer);

/* Cancels and frees the timer (may be called from its own callback). NULL is ignored. */
RILL_API void rill_io_timer_free(rill_io_timer *timer);

#ifdef __cplusplus
}
#endif
#endif
