/* Internal structures of the I/O runtime, shared by loop.c, conn.c, listen.c and timer.c. */
#ifndef RILL_IO_INTERNAL_H
#define RILL_IO_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/api_struct.h"
#include "rill/io.h"

/* A callback of a connection's (referenced, size-checked) callbacks struct; NULL when unset or past
 * an older caller's size. */
#define IO_CB(conn, member) RILL_CB((conn)->cb, rill_io_conn_callbacks, member)

/* What an epoll event's data.ptr points at: every registered object starts with this byte. */
enum io_kind { IO_KIND_CONN = 1, IO_KIND_LISTENER, IO_KIND_WAKE, IO_KIND_SIGNAL, IO_KIND_WATCH };

/* Intrusive circular list: removal needs no head, so a callback may close any connection. */
struct io_link {
    struct io_link *prev, *next;
};

static inline void io_list_init(struct io_link *head) { head->prev = head->next = head; }
static inline bool io_list_empty(const struct io_link *head) { return head->next == head; }
static inline void io_list_append(struct io_link *head, struct io_link *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}
static inline void io_list_remove(struct io_link *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

/* One queued piece of output: bytes copied into buf[] (cap > 0) or referenced (cap == 0). */
struct io_chunk {
    struct io_chunk *next;
    const uint8_t *data;
    size_t len;  /* bytes valid at data */
    size_t off;  /* bytes already written */
    size_t cap;  /* capacity of buf[]; 0 for a reference */
    rill_io_release_fn release;
    void *release_arg;
    uint8_t buf[];
};

#define IO_CHUNK_SIZE 16384u /* copy chunks; also one TLS record */

enum conn_state {
    CONN_CONNECTING, /* client: TCP connect in progress */
    CONN_HANDSHAKE,  /* TLS handshake in progress */
    CONN_OPEN,
    CONN_CLOSING, /* graceful close: flushing the queue, on_close still owed */
    CONN_LINGER,  /* on_close done: FIN sent, discarding input until EOF or deadline */
    CONN_DEAD,    /* closed; freed at the end of the turn */
};

enum conn_flag {
    CF_OWES_CLOSE = 1 << 0,  /* the application knows this connection: on_close is owed */
    CF_DIRTY = 1 << 1,       /* on the loop's dirty list */
    CF_PAUSED = 1 << 2,      /* the application paused reading */
    CF_WANT_DRAIN = 1 << 3,  /* the queue went above high water: on_drain owed */
    CF_EP_IN = 1 << 4,       /* registered epoll interest */
    CF_EP_OUT = 1 << 5,
    CF_READ_AGAIN = 1 << 6,  /* TLS has decrypted bytes buffered: read again without an event */
    CF_READ_WANTS_WRITE = 1 << 7, /* SSL_read needs the socket writable */
    CF_CLIENT = 1 << 8,
    CF_OPENED = 1 << 9,      /* on_open has been called */
    CF_SHUTDOWN_SENT = 1 << 10,
    CF_BLOCKED = 1 << 11,    /* the socket refused output: wait for EPOLLOUT */
    CF_HS_WANT_WRITE = 1 << 12, /* the TLS handshake waits for the socket to be writable */
    CF_PULL = 1 << 13,       /* on_output may have bytes: ask at the next flush */
    CF_SOCK_DRAINED = 1 << 14, /* TLS: the last socket read came back short (nothing more now) */
    CF_TLS_TAIL = 1 << 15,     /* TLS: encrypted bytes the socket refused wait in a tail (tls_bio.c) */
    CF_PEER_RESET = 1 << 16,   /* the peer reset the connection (reported as EOF, told apart here) */
    CF_PEER_EOF = 1 << 17,     /* the peer's orderly end was kept as a half-close: no more reads */
    CF_WR_SHUT = 1 << 18,      /* rill_io_conn_shutdown_write: our end goes once the queue has */
    CF_WR_SHUT_DONE = 1 << 19, /* ...and went (close_notify, FIN) */
    CF_PARKED = 1 << 20,       /* out of epoll: both FINs seen while reading is paused (EPOLLHUP
                                  cannot be masked); back in when reading resumes */
    CF_ABORT = 1 << 21,        /* rill_io_conn_abort: reset at the end of the turn */
    CF_BATCHED = 1 << 22,       /* read_batch.c: SO_RCVLOWAT is up, the loop wakes per batch */
    CF_BATCH_BACKOFF = 1 << 23, /* ...a batch did not come in time: not again until data floods */
};

#define IO_CONN_OF(node) ((rill_io_conn *)((char *)(node) - offsetof(rill_io_conn, link)))

/* Kept small: an idle cleartext connection costs this struct and nothing else. */
/* A timer's place in the loop's heap: standalone timers and connections' built-in timers share
 * one heap, so a connection needs no timer allocation of its own. */
struct io_tnode {
    uint64_t deadline;
    uint32_t seq; /* arming order: ties fire first-armed first (renumbered before it wraps) */
    uint32_t idx; /* heap slot (IO_TNODE_UNARMED: not armed) | IO_TNODE_IN_CONN */
};
#define IO_TNODE_IN_CONN 0x80000000u /* embedded in a rill_io_conn (fires cb->on_timer) */
#define IO_TNODE_UNARMED 0x7fffffffu
#define IO_TNODE_SEQ_RENUMBER 0x80000000u
static inline uint32_t io_tnode_slot(const struct io_tnode *t) { return t->idx & IO_TNODE_UNARMED; }

struct rill_io_conn {
    uint8_t kind; /* IO_KIND_CONN */
    uint8_t state;
    int8_t close_err; /* what on_close reports after a graceful close */
    uint32_t flags;
    int fd;
    union {
        uint32_t queued;      /* bytes in the queue; at most IO_QUEUE_MAX */
        uint32_t linger_read; /* LINGER (the queue is empty then): bytes discarded so far */
    };
    struct io_link link; /* in loop->pending, loop->conns or loop->linger; the dead list */
    rill_io_loop *loop;
    const struct rill_io_conn_callbacks *cb;
    void *user;
    SSL *ssl;
    struct io_chunk *out_head, *out_tail;
    rill_io_conn *dirty_next;
    /* The built-in timer (rill_io_conn_timer_*), armable while open. Before and after that its
     * deadline is the pending / linger lists' "when to give up" instead (it is off the heap). */
    struct io_tnode tnode;
};

struct rill_io_listener {
    uint8_t kind; /* IO_KIND_LISTENER */
    int fd;
    struct io_link link; /* in loop->listeners, then loop->dead_listeners */
    rill_io_loop *loop;
    rill_tls_ctx *tls;
    const struct rill_io_conn_callbacks *cb;
    void *user;
    struct rill_io_addr addr;
    rill_io_timer *backoff; /* re-enables accepting after EMFILE */
};

struct rill_io_timer {
    struct io_tnode node;
    rill_io_loop *loop;
    rill_io_timer_fn fn;
    void *arg;
};

struct rill_io_watcher {
    uint8_t kind; /* IO_KIND_WATCH */
    bool dead;    /* unwatched: events still in this turn's batch are ignored */
    int fd;
    unsigned events;
    struct io_link link; /* in loop->watches, then loop->dead_watches until the turn ends */
    rill_io_loop *loop;
    rill_io_watch_fn fn;
    void *user;
};

struct io_post {
    struct io_post *next;
    rill_io_post_fn fn;
    void *arg;
};

struct io_handle {
    uint8_t kind;
    int fd;
};

#define IO_RECV_BUF_SIZE 65536u
/* read_batch.c: a connection owed this much wakes once per this much (~0.5 ms at 2 GB/s) and may
 * read all of it in one turn. A wakeup is a context switch, dear on a VM; 256 KiB batches (four
 * turns' reads) spared the sender but not our own CPU, 1 MiB ones both. */
#define IO_BATCH_BYTES (1024u * 1024)
#define IO_BATCH_READ (256u * 1024) /* a batching connection's read size: the buffer's size */
#define IO_QUEUE_MAX UINT32_MAX /* bytes queued per connection; writes beyond fail (RILL_ERR_LIMIT) */
#define IO_CHUNK_CACHE_MAX 64u
/* A lingering connection discards at most this much of the peer's input, then closes at once
 * (with a reset if more is pending): a peer that keeps sending after our GOAWAY must not keep
 * us reading for linger_ms (at loopback speed, a gigabyte). A peer that only finishes its last
 * frames sends far less; an upload we refused is cut by the reset either way. */
#define IO_LINGER_MAX_BYTES (128u * 1024u)

struct rill_io_loop {
    int epfd;
    struct io_handle wake;   /* eventfd */
    struct io_handle signal; /* signalfd, fd -1 if none */
    rill_io_signal_fn signal_fn;
    void *signal_arg;
    rill_io_loop_options opts;
    void *user;
    uint64_t now_ms;
    uint64_t turn; /* rill_io_loop_turn */
    atomic_bool stop;
    bool running;
    bool shutting_down;

    struct io_link listeners;
    struct io_link pending; /* handshaking / connecting, FIFO by deadline */
    struct io_link conns;   /* open */
    struct io_link linger;  /* closing and lingering, FIFO by deadline */
    struct io_link dead;    /* to free at the end of the turn */
    struct io_link dead_listeners; /* closed listeners, freed at the end of the turn */
    struct io_link watches;        /* rill_io_watcher */
    struct io_link dead_watches;   /* unwatched, freed at the end of the turn */
    uint32_t nconns;        /* pending + conns + closing (max_conns counts these) */
    uint32_t owed_close;    /* connections whose on_close has not run yet */

    rill_io_conn *dirty;    /* flushed (and TLS re-read) at the end of the turn */

    /* Timers: a binary min-heap of pointers to nodes (in timers and connections). */
    struct io_tnode **heap;
    size_t heap_len, heap_cap;
    uint32_t timer_seq; /* below IO_TNODE_SEQ_RENUMBER between turns */
    rill_io_timer *pending_timer;  /* handshake / connect deadlines */
    rill_io_timer *linger_timer;   /* graceful close deadlines */
    rill_io_timer *shutdown_timer; /* graceful shutdown deadline */
    /* Connections waking per batch (read_batch.c), few: each with the loop time of its last read,
     * and one timer for the earliest late batch. */
    struct io_batched { rill_io_conn *conn; uint64_t last_read_ms; } *batched;
    uint32_t nbatched, batched_cap;
    rill_io_timer *batch_timer;

    /* Cross-thread posts. */
    pthread_mutex_t post_lock;
    struct io_post *post_head, *post_tail;

    /* Free copy chunks, reused to avoid malloc churn. */
    struct io_chunk *chunk_cache;
    uint32_t chunk_cache_len;

    char last_error[256];
    uint8_t *recv_buf;  /* IO_BATCH_READ bytes, shared by every connection on the loop: a read
                         * takes IO_RECV_BUF_SIZE of it, all of it while batching */
    uint8_t *tls_stage; /* IO_CHUNK_SIZE: small chunks coalesced into one TLS record */
    /* TLS records of the connection being flushed, written together (tls_bio.c); allocated on
     * first use, IO_TLS_BATCH bytes */
    uint8_t *tls_batch;
    size_t tls_batch_len;
    rill_io_conn *tls_batch_conn;
    /* Ciphertext read ahead for tls_in_conn, a batching connection (tls_bio.c); allocated on
     * first use, IO_BATCH_READ bytes */
    uint8_t *tls_in;
    uint32_t tls_in_off, tls_in_len;
    rill_io_conn *tls_in_conn;
};

/* loop.c */
void io_set_error(rill_io_loop *loop, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int io_epoll_add(rill_io_loop *loop, int fd, void *ptr, uint32_t events);
void io_update_deadline_timers(rill_io_loop *loop);

/* timer.c */
void io_timers_run(rill_io_loop *loop);
int io_tnode_arm(rill_io_loop *loop, struct io_tnode *t, uint64_t deadline_ms);
void io_tnode_cancel(rill_io_loop *loop, struct io_tnode *t);
int io_timers_next_timeout(const rill_io_loop *loop); /* ms for epoll_wait, -1 if none */

/* conn.c */
rill_io_conn *io_conn_new(rill_io_loop *loop, int fd, SSL *ssl, const struct rill_io_conn_callbacks *cb,
                          void *user, bool client);
void io_conn_open(rill_io_conn *conn);
void io_conn_event(rill_io_conn *conn, uint32_t events);
void io_conn_close_now(rill_io_conn *conn, int err);
void io_conn_free_dead(rill_io_loop *loop);
void io_conn_expire_pending(rill_io_loop *loop);
void io_conn_expire_linger(rill_io_loop *loop);
void io_conn_mark_dirty(rill_io_conn *conn);
void io_conn_update_events(rill_io_conn *conn);
void io_conn_move_to(rill_io_conn *conn, struct io_link *list, uint64_t deadline);
void io_conn_notify_close(rill_io_conn *conn, int err);
void io_conn_fail(rill_io_conn *conn, int err, const char *what, const char *detail);
void io_conn_read(rill_io_conn *conn);
/* read_batch.c: after each wake's reads (got: bytes read), and when the socket goes */
void io_conn_batch_after_read(rill_io_conn *conn, size_t got);
void io_conn_batch_forget(rill_io_conn *conn);
void io_batch_free_all(rill_io_loop *loop);
const char *io_tls_error_text(void);
/* Puts the connection's own socket BIO under conn->ssl (tls_bio.c). */
int io_tls_attach(rill_io_conn *conn);
/* Records written between begin and end go out together (one send per IO_TLS_BATCH bytes, not
 * one per record); end sends the rest. What the socket refuses waits in the connection's tail
 * (CF_TLS_TAIL), which goes before any later byte. end and io_tls_flush_tail return RILL_OK,
 * RILL_ERR_WOULD_BLOCK (the socket is full) or RILL_ERR_IO (errno says why). */
void io_tls_batch_begin(rill_io_conn *conn);
int io_tls_batch_end(rill_io_conn *conn);
int io_tls_flush_tail(rill_io_conn *conn);
/* Whether OpenSSL, or the loop's read-ahead for this connection, holds input that no epoll event
 * will announce. */
bool io_tls_has_input(const rill_io_conn *conn);
/* Frees the connection's TLS state (and a tail, and its read-ahead). */
void io_tls_free(rill_io_conn *conn);
#define IO_TLS_BATCH (64u * 1024u)

/* conn_write.c */
void io_queue_drop(rill_io_conn *conn);
void io_conn_flush_dirty(rill_io_loop *loop);

/* watch.c */
void io_watch_event(rill_io_watcher *w, uint32_t events);
void io_watches_free_dead(rill_io_loop *loop);
void io_watches_free_all(rill_io_loop *loop);

/* listen.c */
void io_listener_event(rill_io_listener *listener);
void io_listeners_free_dead(rill_io_loop *loop);

/* port_claims.c: binds fd to addr and listens; the first listener of this process on an address
 * gets it alone (fails with EADDRINUSE if any other socket listens there, SO_REUSEPORT or not),
 * later ones join it. *bound gets the address bound (the port chosen for port 0). Returns 0, or
 * -1 with errno. io_port_release(bound) undoes it. */
int io_port_bind_listen(int fd, const struct rill_io_addr *addr, int backlog,
                        struct rill_io_addr *bound);
void io_port_release(const struct rill_io_addr *addr);

/* Before an SSL_read/SSL_write whose SSL_get_error must not see a stale error: OpenSSL 3's
 * ERR_clear_error costs ~800 instructions even with nothing queued, a look ~40; every path that
 * reads an error off the queue clears it, so it is almost always empty. */
static inline void io_tls_clear_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

#endif
