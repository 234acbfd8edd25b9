/* Happy Eyeballs (RFC 8305): the connection attempts behind one new connection of a client. The
 * addresses are tried IPv6 and IPv4 in turn, IPv6 first (the address the client's last
 * connection was made to goes before them all); each attempt that does not answer within the
 * Connection Attempt Delay is joined by the next one without being cancelled, one that fails
 * gives way to the next at once, and the first TCP connect wins: the others are closed then.
 * With TLS the handshake runs on the winner only (as curl does). */
#ifndef RILL_CLIENT_RACE_H
#define RILL_CLIENT_RACE_H

#include <stdbool.h>
#include <stddef.h>

#include "rill/client.h"
#include "rill/io.h"

struct client_race;

/* The race is won: io is TCP-connected (a TLS handshake not begun yet), to addr. Its callbacks
 * and user pointer are still the race's: the callee sets its own (rill_io_conn_set_callbacks,
 * rill_io_conn_set_user) before returning, and frees the race (client_race_free). */
typedef void (*client_race_won_fn)(rill_io_conn *io, const struct rill_io_addr *addr, void *user);
/* Every address failed and no more will come: err and why (one line, naming the origin) are the
 * last attempt's. Called from a loop callback (never inside client_race_add); the callee frees
 * the race. */
typedef void (*client_race_lost_fn)(int err, const char *why, void *user);

/* What a race connects to and how. The strings are the caller's and must outlive the race. */
struct client_race_target {
    rill_io_loop *loop;
    rill_tls_ctx *tls;                /* NULL: TCP only */
    const char *server_name;          /* with tls: the name for SNI and the certificate check */
    const char *authority;            /* host:port, in the loss's why */
    uint32_t attempt_delay_ms;        /* 0: the next address only once the one before failed */
    const struct rill_io_addr *first; /* tried before the others when resolved (copied), or NULL */
    rill_client *trace;               /* whose trace says what is tried, or NULL */
};

/* A race for one of c's connections (c's loop, TLS context, origin, attempt delay, last address
 * and trace), with no address yet. NULL without memory. */
struct client_race *client_race_new(rill_client *c, client_race_won_fn won,
                                    client_race_lost_fn lost, void *user);

/* The same for a connection of anyone's (the proxy's tunnels have no rill_client). */
struct client_race *client_race_start(const struct client_race_target *target,
                                      client_race_won_fn won, client_race_lost_fn lost,
                                      void *user);

/* Addresses to try (copied; beyond the race's room they are dropped), as the resolver gives them;
 * final: no more will come. Starts an attempt when none is under way. */
void client_race_add(struct client_race *r, const struct rill_io_addr *addrs, size_t n, bool final);

/* Closes the attempts under way (no callback) and frees the race. NULL is ignored. */
void client_race_free(struct client_race *r);

/* The I/O layer's last error without its "what failed: " prefix (the caller says what failed). */
const char *client_io_detail(const rill_io_loop *loop);

#endif
