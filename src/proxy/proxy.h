/* The reverse proxy: routes of a rill_server whose requests go on to backends (rill/client.h),
 * the answers streamed back. Internal to rill (the `rill serve --proxy` flag); see docs/PROXY.md.
 *
 * Threading: a configuration is shared read-only and swapped whole on reload; each worker thread
 * makes its own rill_client per backend on first use (a client belongs to one loop) and frees
 * them at the worker's exit. */
#ifndef RILL_PROXY_H
#define RILL_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/client.h"
#include "rill/server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_proxy rill_proxy;
struct proxy_spec;

/* Fill with rill_proxy_options_init. These are the command line's: a route's own settings in the
 * configuration file win over them, and they win over the file's `proxy:` section. */
typedef struct rill_proxy_options {
    size_t size;                 /* sizeof(rill_proxy_options), set by the _init */
    uint32_t timeout_ms;         /* first byte: from the request to the backend's response head;
                                    past it the client gets 504 (0: the file's, else 30000) */
    uint32_t connect_timeout_ms; /* TCP connect + TLS handshake to a backend (0: the file's, else
                                    10000) */
    uint32_t half_close_ms;      /* a tunnel one side of which ended: the other side's end must
                                    come within, else both are closed (0: the file's, else
                                    60000) */
    bool insecure;               /* https backends: do not verify their certificates */
    const char *ca_file;         /* https backends: trust this PEM instead of the system store
                                    (referenced: keep it alive as long as the proxy) */
    bool forwarding_given;       /* forwarding says which forwarding fields are added (else the
                                    file's, else all) */
    unsigned forwarding;         /* RILL_PROXY_FORWARD_* bits */
    unsigned pipeline;           /* HTTP/1.1 backends: requests on a connection at once, the later
                                    sent before the first is answered (GET and HEAD without a
                                    body); 0: the file's, else 1 (no pipelining); at most 64 */
} rill_proxy_options;

enum {
    RILL_PROXY_FORWARDED = 1u << 0, /* Forwarded (RFC 7239) */
    RILL_PROXY_X_FORWARDED_FOR = 1u << 1,
    RILL_PROXY_X_FORWARDED_PROTO = 1u << 2,
    RILL_PROXY_X_FORWARDED_HOST = 1u << 3,
    RILL_PROXY_VIA = 1u << 4,
};

/* "forwarded,x-forwarded-for,..." or "none" into RILL_PROXY_* bits; false for an unknown name
 * (named in err). */
bool rill_proxy_parse_forwarding(const char *list, unsigned *out, char *err, size_t errlen);

void rill_proxy_options_init(rill_proxy_options *opt);

/* A proxy attached to s: it takes s's on_stream (requests whose path matches one of its routes
 * are claimed there, so routes can change while the server runs), worker-exit and reload hooks.
 * opt is copied (NULL = defaults). *out is the caller's, freed with rill_proxy_free after
 * rill_server_run returned. RILL_ERR_NOMEM, RILL_ERR_INVALID_ARG (bad opt->size). */
int rill_proxy_new(rill_server *s, const rill_proxy_options *opt, rill_proxy **out);

/* Adds "PREFIX=URL[,URL...]" (a --proxy value; before rill_proxy_start): requests whose path
 * starts with PREFIX (longest prefix wins among all routes) go to the URLs in turn (round robin).
 * URL: http://host[:port] (HTTP/1.1), h2c://host[:port] (HTTP/2 by prior knowledge),
 * https://host[:port] (ALPN h2, else HTTP/1.1); no path (the request's path goes as received).
 * spec is copied. RILL_ERR_INVALID_ARG with one line in err for a bad spec; RILL_ERR_NOMEM. */
int rill_proxy_add(rill_proxy *p, const char *spec, char *err, size_t errlen);

/* Makes the first configuration: the --proxy routes plus those of file (read by
 * proxy_config_load from config_file; taken, also on failure; both NULL without a file). With a
 * file, SIGHUP reads it again (a bad file keeps the configuration in force, one line on stderr).
 * RILL_ERR_INVALID_ARG with one line in err (a prefix both in a flag and the file). */
int rill_proxy_start(rill_proxy *p, const char *config_file, struct proxy_spec *file, char *err,
                     size_t errlen);

/* Whether the configuration in force has a route for "/" (then nothing else is served). */
bool rill_proxy_takes_root(const rill_proxy *p);

/* Frees the proxy (its configurations stay valid until then: free it after rill_server_free or
 * after rill_server_run returned). NULL is ignored. */
void rill_proxy_free(rill_proxy *p);

#ifdef __cplusplus
}
#endif
#endif
