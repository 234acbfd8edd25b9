/* Happy Eyeballs (RFC 8305): the connection attempts behind one new connection (of the request
 * client's pool, client_pool.c, or of a WebSocket's own connection, ws_client.c). The
 * addresses are tried IPv6 and IPv4 in turn, IPv6 first (the address the client's last
 * connection was made to goes before them all); each attempt that does not answer within the
 * Connection Attempt Delay is joined by the next one without being cancelled, one that fails
 * gives way to the next at once, and the first TCP connect wins: the others are closed then.
 * With TLS the handshake runs on the winner only (as curl does). */
#ifndef RILL_CLIENT_RACE_H
#define RILL_CLIENT_RACE_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

#include "rill/client.h"
#include "rill/io.h"
#include "rill/tls.h"

struct client_race;

/* A trace line (no line end) for the caller's trace. */
typedef void (*client_race_trace_fn)(const char *line, void *user);

/* Where a race connects. Nothing is copied: every pointer must stay valid while the race lives
 * (the caller's client owns them). */
struct client_race_target {
    rill_io_loop *loop;
    rill_tls_ctx *tls;         /* NULL: cleartext */
    const char *sni;           /* with tls: the server name sent and checked */
    const char *authority;     /* "host:port", named in the loss's why */
    uint32_t attempt_delay_ms; /* the Connection Attempt Delay; below 10 counts as 10; 0: one
                                  attempt at a time, the next only once the one before failed */
    const struct rill_io_addr *first; /* read at the first pick: an address the caller keeps (the
                                         last winner) tried before all others; len 0: none */
    client_race_trace_fn trace;       /* "trying ADDR"...; may be NULL */
    void *trace_user;
};

/* The race is won: io is TCP-connected (a TLS handshake not begun yet), to addr. Its callbacks
 * and user pointer are still the race's: the callee sets its own (rill_io_conn_set_callbacks,
 * rill_io_conn_set_user) before returning, and frees the race (client_race_free). */
typedef void (*client_race_won_fn)(rill_io_conn *io, const struct rill_io_addr *addr, void *user);
/* Every address failed and no more will come: err and why (one line, naming the origin) are the
 * last attempt's. Called from a loop callback (never inside client_race_add); the callee frees
 * the race. */
typedef void (*client_race_lost_fn)(int err, const char *why, void *user);

/* A race to t (copied; what it points to is not), with no address yet. NULL without memory. */
struct client_race *client_race_new(const struct client_race_target *t, client_race_won_fn won,
                                    client_race_lost_fn lost, void *user);

/* Addresses to try (copied; beyond the race's room they are dropped), as the resolver gives them;
 * final: no more will come. Starts an attempt when none is under way. */
void client_race_add(struct client_race *r, const struct rill_io_addr *addrs, size_t n, bool final);

/* Closes the attempts under way (no callback) and frees the race. NULL is ignored. */
void client_race_free(struct client_race *r);

/* The I/O layer's last error without its "what failed: " prefix (the caller says what failed). */
const char *client_io_detail(const rill_io_loop *loop);

#endif
