/* One connection, in either role: the protocol running on it (an ops table), its timer (idle
 * close, the protocol's deadlines, trimming an idle connection's memory), output pulled from the
 * protocol at the end of the loop turn, flushes deferred while inside a call, and protocol
 * switches (detection -> HTTP/1.1 or HTTP/2, HTTP/1.1 -> WebSocket or h2c).
 *
 * It knows nothing of servers or clients. Its owner embeds `struct conn` as the first member of
 * its own connection object (the server's rill_server_session, the request client's client_conn,
 * the WebSocket client's wsc_conn; the proxy's upstream connections next), wires its
 * rill_io_conn_callbacks to the conn_io_* functions below (adding its own on_open, and its own
 * on_close that calls conn_io_closed first), and sets the protocol. A protocol is role-specific
 * (the server's HTTP/1.1 side makes exchanges from requests, a client's matches responses to
 * requests); the machinery around it is not. */
#ifndef RILL_CONN_CONN_H
#define RILL_CONN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "rill/io.h"

struct conn;

/* What a protocol does on a connection. Only data and free are required. */
struct conn_proto {
    const char *name;
    /* Bytes from the peer (caller-owned, valid during the call). */
    void (*data)(struct conn *c, const uint8_t *data, size_t len);
    /* The socket took what was queued (rill_io_conn_write back-pressure). */
    void (*drain)(struct conn *c);
    /* Output pulled at the end of the loop turn as iovecs (the protocol keeps the bytes until
     * output_sent says how many went out); 0 when there is nothing. */
    int (*output)(struct conn *c, struct iovec *iov, int max);
    void (*output_sent)(struct conn *c, size_t n);
    /* The protocol's earliest deadline in loop milliseconds (UINT64_MAX: none) and what to do when
     * the connection's timer fires (deadline reached, or another reason: check the time). */
    uint64_t (*deadline)(const struct conn *c);
    void (*timeout)(struct conn *c, uint64_t now);
    /* Work in flight: an idle connection is neither closed nor trimmed while busy. */
    bool (*busy)(const struct conn *c);
    /* Before the idle timeout closes the connection (HTTP/2: GOAWAY NO_ERROR). */
    void (*goodbye)(struct conn *c);
    /* Idle for a moment: give back what can be rebuilt (buffers, parsers). */
    void (*trim)(struct conn *c);
    /* End gracefully (SIGTERM, rill_server_session_close): finish what is in flight, then close. */
    void (*shutdown)(struct conn *c);
    /* The peer ended its sending in order (its FIN): true to go on writing (a half-close, ended
     * by rill_io_conn_shutdown_write), false (or NULL) to close after what is queued. */
    bool (*peer_eof)(struct conn *c);
    /* The connection is gone, or the protocol is being replaced: free its state. */
    void (*free)(struct conn *c);
    /* Re-arm the timer after each read: a read can start a deadline (an HTTP/1.1 head). */
    bool arm_after_data;
};

struct conn {
    rill_io_conn *io;
    const struct conn_proto *proto;
    uint64_t last_active;     /* loop ms of the last read; the idle deadline counts from it */
    uint32_t idle_timeout_ms; /* the owner's setting */
    uint8_t in_callback;      /* depth of calls into the protocol from I/O: flushes wait */
    bool closing;
};

/* Starts a connection on io with no protocol yet; the io user pointer must be c (the owner's
 * object, of which c is the first member). */
void conn_init(struct conn *c, rill_io_conn *io, uint32_t idle_timeout_ms);
/* Runs proto from now on. The old protocol's state is the caller's to hand over or free. */
void conn_set_proto(struct conn *c, const struct conn_proto *proto);
/* A read happened: the idle deadline moves. */
void conn_touch(struct conn *c);
/* The timer at the earliest of the idle deadline, the protocol's deadline and the trim point. */
void conn_arm(struct conn *c);
/* Asks for the protocol's output at the end of the turn (not inside a call: the call's end does). */
void conn_flush(struct conn *c);
/* Closes after what is queued has been written (graceful); idempotent. */
void conn_close(struct conn *c);
/* Resets the connection (rill_io_conn_abort): an abort passed on, never an end in order. */
void conn_abort(struct conn *c);
/* The graceful end: the protocol's shutdown, or a plain close. */
void conn_shutdown(struct conn *c);

/* rill_io_conn_callbacks for the owner to use (the user pointer is the struct conn). */
void conn_io_data(rill_io_conn *io, const uint8_t *data, size_t len);
void conn_io_drain(rill_io_conn *io);
int conn_io_output(rill_io_conn *io, struct iovec *iov, int max);
void conn_io_output_sent(rill_io_conn *io, size_t n);
void conn_io_timer(rill_io_conn *io);
void conn_io_shutdown(rill_io_conn *io);
bool conn_io_peer_eof(rill_io_conn *io);
/* The owner's on_close starts with this: marks the connection closing and frees the protocol. */
void conn_io_closed(struct conn *c);

#endif
