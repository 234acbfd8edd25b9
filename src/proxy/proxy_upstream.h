/* A tunnel's backend side: one HTTP/1.1 connection of its own (never pooled: after a 101 it is
 * the tunnel's), the Upgrade request written on it, the answer read with the src/h1 parser, then
 * raw bytes both ways (proxy_upstream.c). */
#ifndef RILL_PROXY_UPSTREAM_H
#define RILL_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/h1.h"
#include "rill/io.h"

struct proxy_config;
struct proxy_target;
struct rill_proxy;
struct upstream;

/* What happens on the connection; user is the one given to upstream_open. */
struct upstream_events {
    /* The final answer's head: 101 (the bytes after it are the tunnel's: on_data) or >= 200 (a
     * refusal whose body follows through on_data, then on_end(0)). head is valid during the call. */
    void (*on_head)(const rill_h1_head *head, void *user);
    void (*on_data)(const uint8_t *data, size_t len, void *user);
    /* The queue fell back after upstream_write said RILL_ERR_WOULD_BLOCK. */
    void (*on_drain)(void *user);
    /* After the 101: the backend ended its sending in order (its FIN, or TLS close_notify). The
     * connection stays for our bytes (a half-close) until upstream_shutdown_write; on_end(0)
     * follows once both ends went. */
    void (*on_eof)(void *user);
    /* The end, once (never after upstream_close): err 0 when a refusal's body is complete or both
     * sides of the tunnel ended in order (on_eof, upstream_shutdown_write); else RILL_ERR_NOT_FOUND
     * (the backend's name has no address: nothing was sent), RILL_ERR_IO (could not connect to
     * any address: nothing was sent; or, after the 101, a reset or a failed write), RILL_ERR_TLS
     * (handshake or certificate), RILL_ERR_EOF
     * (the connection ended before the answer was whole), RILL_ERR_PROTOCOL (not HTTP); why is
     * one line for stderr or NULL. The upstream is freed after this returns. */
    void (*on_end)(int err, const char *why, void *user);
};

/* Resolves b's name on loop (c-ares: the loop never waits), races its addresses (Happy Eyeballs,
 * as b's clients do; an https:// one with cfg's certificate settings), and sends the request head
 * (method, target, fields as given, copied: the caller adds Upgrade and Connection) on the
 * connection that won. Every event comes later, from the loop. NULL when it cannot even start
 * (why in err). */
struct upstream *upstream_open(struct rill_proxy *p, const struct proxy_config *cfg,
                               struct proxy_target *b, rill_io_loop *loop,
                               const char *method, const char *target, const rill_header *fields,
                               size_t nfields, const struct upstream_events *ev, void *user,
                               char *err, size_t errlen);
/* Queues bytes for the backend (copied). RILL_ERR_WOULD_BLOCK: taken, but wait for on_drain. */
int upstream_write(struct upstream *u, const void *data, size_t len);
/* Whether the connection is up (TCP connected, TLS done). */
bool upstream_opened(const struct upstream *u);
/* Stops (or resumes) reading from the backend. */
void upstream_pause(struct upstream *u, bool paused);
/* Ends our side after what is queued (TLS close_notify, a FIN); the backend's bytes still come. */
void upstream_shutdown_write(struct upstream *u);
/* Ends the connection without on_end: graceful sends what is queued first, else it is dropped.
 * Before a connection won, the resolution and the attempts are dropped. */
void upstream_close(struct upstream *u, bool graceful);

/* The TLS contexts of the proxy's https:// tunnels, one per certificate setting (insecure, CA
 * file) a configuration had, made on first use; freed with the proxy, so a tunnel's connection
 * never outlives its context whatever the reloads do. */
void upstream_tls_free(struct rill_proxy *p);

#endif
