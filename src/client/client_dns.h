/* The client's resolver: one host name at a time turned into addresses without blocking the loop
 * (c-ares, its sockets and timeouts on the loop). Literal IP addresses skip DNS. */
#ifndef RILL_CLIENT_DNS_H
#define RILL_CLIENT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/io.h"

/* Addresses a job can give: up to half of them of each family. */
#define CLIENT_DNS_MAX_ADDRS 32

/* How long an IPv4 answer waits for the IPv6 one (RFC 8305 §3 "Resolution Delay"). */
#define CLIENT_DNS_RESOLUTION_DELAY_MS 50

struct client_dns;

/* The outcome, in one or more calls, always from a loop timer (never inside client_dns_resolve or
 * c-ares). A name is asked for IPv6 (AAAA) and IPv4 (A) at once (RFC 8305 §3): the addresses come
 * as soon as the IPv6 answer is in, or the IPv4 one has waited CLIENT_DNS_RESOLUTION_DELAY_MS for
 * it; a later answer's addresses come in another call. err 0: addrs[0..n) are new addresses
 * (n >= 1, or 0 in a last call that only says the other family had none), valid during the call;
 * final says no call follows. err RILL_ERR_NOT_FOUND / RILL_ERR_NOMEM (final, n 0, why one line):
 * no address at all. */
typedef void (*client_dns_fn)(int err, const char *why, const struct rill_io_addr *addrs, size_t n,
                              bool final, void *user);

/* A resolver on loop; the caller frees it with client_dns_free. NULL without memory. */
struct client_dns *client_dns_new(rill_io_loop *loop);

/* Resolves host (a name, or a literal IPv4/IPv6 address without brackets) for port; fn(…, user)
 * follows until its final call. One job at a time: a new one replaces (cancels) the old. Returns
 * RILL_ERR_NOMEM when the job cannot even start (fn is then not called). */
int client_dns_resolve(struct client_dns *d, const char *host, uint16_t port, client_dns_fn fn,
                       void *user);

/* Drops the job in flight, if any: its fn is not called. */
void client_dns_cancel(struct client_dns *d);

/* True while a job waits for its final fn. */
bool client_dns_busy(const struct client_dns *d);

/* Cancels and frees. NULL is ignored. Not from inside its fn. */
void client_dns_free(struct client_dns *d);

/* Tests only: names are looked up in the file named by $CARES_HOSTS (c-ares' ARES_AI_ENVHOSTS)
 * instead of /etc/hosts, so a test can make a name resolve to addresses of its choosing. */
extern bool client_dns_env_hosts;

/* Tests only: when set, c-ares asks these servers ("127.0.0.1:5353", as for
 * ares_set_servers_ports_csv) instead of the system's (a test's own DNS server). */
extern const char *client_dns_servers;

#endif
