/* What the proxy is told to do, as plain data: routes with their backends and settings, from
 * `--proxy` flags (proxy_spec.c) and from a YAML configuration file (proxy_config.c). The running
 * proxy builds its routes from this (proxy.c) and builds it again on each reload. */
#ifndef RILL_PROXY_SPEC_H
#define RILL_PROXY_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The `pipeline` setting's ceiling (rill_client's own) */
#define PROXY_PIPELINE_MAX 64

enum proxy_balance { BALANCE_ROUND_ROBIN, BALANCE_LEAST_CONNECTIONS };

/* Set, add or remove fields by name (lowercase); values are NULL for remove. */
struct field_op {
    char *name, *value;
};
struct field_ops {
    struct field_op *set, *add, *remove;
    size_t nset, nadd, nremove;
};

/* Active health checks of a route's backends (proxy_health.c): GET path every interval_ms; a
 * probe that fails (no connection, no answer within timeout_ms, a status outside 200-399) `fails`
 * times in a row takes the backend out of the rotation until one passes `passes` times in a row.
 * path NULL: no checks. */
struct health_check {
    char *path;
    uint32_t interval_ms, timeout_ms, fails, passes;
};

/* A route's settings; a route inherits each one it does not set from the proxy's defaults.
 * The bits of `given` say which were set (SET_*). */
struct route_settings {
    uint32_t connect_ms, first_byte_ms, idle_ms; /* idle: between the backend's body pieces */
    uint32_t half_close_ms; /* a tunnel one side of which ended: the other's end within this */
    uint32_t down_ms;                            /* a backend that failed to connect is skipped */
    struct health_check check;                   /* owned by the spec it came from */
    enum proxy_balance balance;
    uint32_t pipeline; /* HTTP/1.1 backends: requests on a connection at once (1: no pipelining) */
    bool forwarded, x_forwarded_for, x_forwarded_proto, x_forwarded_host, via;
    struct field_ops request, response;
    unsigned given;
};
enum {
    SET_CONNECT = 1u << 0,
    SET_FIRST_BYTE = 1u << 1,
    SET_IDLE = 1u << 2,
    SET_DOWN = 1u << 3,
    SET_BALANCE = 1u << 4,
    SET_FORWARDED = 1u << 5,
    SET_XFF = 1u << 6,
    SET_XFP = 1u << 7,
    SET_XFH = 1u << 8,
    SET_VIA = 1u << 9,
    SET_REQUEST_FIELDS = 1u << 10,
    SET_RESPONSE_FIELDS = 1u << 11,
    SET_HEALTH_CHECK = 1u << 12,
    SET_HALF_CLOSE = 1u << 13,
    SET_PIPELINE = 1u << 14,
};

struct route_spec {
    char *prefix;
    char **urls;
    size_t nurls;
    struct route_settings settings;
    int line; /* in the file (1-based); 0 for a --proxy flag */
};

/* What a configuration file says beyond the routes: the server's own settings, each NULL (or 0)
 * when the file does not set it. */
struct serve_file_settings {
    char *listen, *tls_listen, *cert, *key, *state_dir, *root, *access_log;
    uint32_t threads;
};

struct proxy_spec {
    struct route_settings defaults; /* the file's `proxy:` section */
    bool insecure;                  /* https backends: no certificate check */
    char *ca_file;
    struct route_spec *routes;
    size_t nroutes;
    struct serve_file_settings serve;
};

/* proxy_spec.c */
void route_settings_init(struct route_settings *s); /* the built-in defaults */
/* Fills what dst does not set from src. */
void route_settings_inherit(struct route_settings *dst, const struct route_settings *src);
/* Whether url is an http://, h2c:// or https:// URL without a path; why not in err. */
bool proxy_url_valid(const char *url, size_t len, char *err, size_t errlen);
/* "PREFIX=URL[,URL...]" appended to spec as a route; one line in err (starting "--proxy"). */
int proxy_spec_add_flag(struct proxy_spec *spec, const char *text, char *err, size_t errlen);
/* A route with no prefix, backends or settings yet, appended (NULL when out of memory). */
struct route_spec *proxy_spec_new_route(struct proxy_spec *spec);
void field_ops_free(struct field_ops *ops);
/* Frees what spec holds (clear) and spec itself (free). */
void proxy_spec_clear(struct proxy_spec *spec);
void proxy_spec_free(struct proxy_spec *spec);

/* proxy_config.c: reads a YAML configuration file (docs/PROXY.md "Configuration file") into
 * *out (the caller's, freed with proxy_spec_free). RILL_ERR_INVALID_ARG with one line in err,
 * "FILE:LINE: what is wrong"; RILL_ERR_IO when the file cannot be read; RILL_ERR_NOMEM. */
int proxy_config_load(const char *path, struct proxy_spec **out, char *err, size_t errlen);

#endif
