/* The proxy's description as plain data: defaults and inheritance of route settings, backend
 * URL checks, `--proxy PREFIX=URL[,URL...]` values, freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"
#include "proxy/proxy_spec.h"
#include "rill/common.h"

void route_settings_init(struct route_settings *s)
{
    memset(s, 0, sizeof *s);
    s->connect_ms = 10000;
    s->first_byte_ms = 30000;
    s->idle_ms = 0; /* none: a stream may be quiet for long (events, long polls) */
    s->half_close_ms = 60000; /* a side that ended while the other never does: not for ever */
    s->down_ms = 10000;
    s->balance = BALANCE_ROUND_ROBIN;
    s->pipeline = 1; /* off: a backend may not read past its first request */
    s->forwarded = s->x_forwarded_for = s->x_forwarded_proto = s->x_forwarded_host = s->via = true;
}

void route_settings_inherit(struct route_settings *dst, const struct route_settings *src)
{
    unsigned miss = ~dst->given & src->given;
#define TAKE(bit, field)                                                                           \
    if (miss & (bit))                                                                              \
        dst->field = src->field;
    TAKE(SET_CONNECT, connect_ms)
    TAKE(SET_FIRST_BYTE, first_byte_ms)
    TAKE(SET_IDLE, idle_ms)
    TAKE(SET_HALF_CLOSE, half_close_ms)
    TAKE(SET_DOWN, down_ms)
    TAKE(SET_BALANCE, balance)
    TAKE(SET_PIPELINE, pipeline)
    TAKE(SET_FORWARDED, forwarded)
    TAKE(SET_XFF, x_forwarded_for)
    TAKE(SET_XFP, x_forwarded_proto)
    TAKE(SET_XFH, x_forwarded_host)
    TAKE(SET_VIA, via)
    TAKE(SET_HEALTH_CHECK, check) /* its path stays src's: the builder copies what it keeps */
#undef TAKE
    dst->given |= miss & ~(unsigned)(SET_REQUEST_FIELDS | SET_RESPONSE_FIELDS);
    /* Field operations are not copied: the builder applies the defaults' and then the route's. */
}

bool rill_proxy_parse_forwarding(const char *list, unsigned *out, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"forwarded", RILL_PROXY_FORWARDED},
                 {"x-forwarded-for", RILL_PROXY_X_FORWARDED_FOR},
                 {"x-forwarded-proto", RILL_PROXY_X_FORWARDED_PROTO},
                 {"x-forwarded-host", RILL_PROXY_X_FORWARDED_HOST},
                 {"via", RILL_PROXY_VIA}};
    *out = 0;
    if (strcmp(list, "none") == 0)
        return true;
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof names / sizeof *names && !known; i++)
            if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0)
                *out |= names[i].bit, known = true;
        if (!known) {
            snprintf(err, errlen,
                     "--proxy-forwarding: '%.*s' is not one of forwarded, x-forwarded-for, "
                     "x-forwarded-proto, x-forwarded-host, via (or 'none')",
                     (int)n, p);
            return false;
        }
        if (!p[n])
            return true;
        p += n + 1;
    }
}

static bool say(char *err, size_t errlen, const char *fmt, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, what);
    return false;
}

bool proxy_url_valid(const char *url, size_t len, char *err, size_t errlen)
{
    char text[512];
    if (len == 0 || len >= sizeof text)
        return say(err, errlen, "a backend URL is empty or too long%s", "");
    memcpy(text, url, len);
    text[len] = '\0';
    const char *rest;
    if (strncmp(text, "http://", 7) == 0)
        rest = text + 7;
    else if (strncmp(text, "h2c://", 6) == 0)
        rest = text + 6;
    else if (strncmp(text, "https://", 8) == 0)
        rest = text + 8;
    else
        return say(err, errlen, "'%s' is not an http://, h2c:// or https:// URL", text);
    size_t hostport = strcspn(rest, "/?#");
    if (rest[hostport] && strcmp(rest + hostport, "/") != 0)
        return say(err, errlen, "'%s' has a path: the request's path is sent as received", text);
    if (hostport == 0)
        return say(err, errlen, "'%s' has no host", text);
    /* The port, if any, after the host (an IPv6 literal is in brackets). */
    const char *close = rest[0] == '[' ? memchr(rest, ']', hostport) : NULL;
    if (rest[0] == '[' && (!close || close == rest + 1))
        return say(err, errlen, "'%s' has a bad IPv6 address", text);
    const char *from = close ? close : rest;
    const char *colon = memchr(from, ':', hostport - (size_t)(from - rest));
    if (colon == rest)
        return say(err, errlen, "'%s' has no host", text);
    if (colon) {
        size_t n = hostport - (size_t)(colon + 1 - rest);
        unsigned long port = 0;
        for (size_t i = 0; i < n; i++) {
            char c = colon[1 + i];
            if (c < '0' || c > '9' || port > 65535)
                return say(err, errlen, "'%s' has a bad port", text);
            port = port * 10 + (unsigned long)(c - '0');
        }
        if (n == 0 || port == 0 || port > 65535)
            return say(err, errlen, "'%s' has a bad port", text);
    }
    for (const char *c = rest; c < rest + hostport; c++)
        if ((unsigned char)*c <= ' ' || *c == '@' || (unsigned char)*c >= 0x7f)
            return say(err, errlen, "'%s' has a bad host", text);
    return true;
}

struct route_spec *proxy_spec_new_route(struct proxy_spec *spec)
{
    struct route_spec *grown = realloc(spec->routes, (spec->nroutes + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    spec->routes = grown;
    struct route_spec *r = &spec->routes[spec->nroutes++];
    memset(r, 0, sizeof *r);
    return r;
}

int proxy_spec_add_flag(struct proxy_spec *spec, const char *text, char *err, size_t errlen)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || text[0] != '/') {
        snprintf(err, errlen,
                 "--proxy wants PREFIX=URL[,URL...] with PREFIX starting with '/', not '%s'", text);
        return RILL_ERR_INVALID_ARG;
    }
    if (!eq[1]) {
        snprintf(err, errlen, "--proxy '%s' names no backend URL", text);
        return RILL_ERR_INVALID_ARG;
    }
    char why[400];
    for (const char *u = eq + 1;;) {
        size_t n = strcspn(u, ",");
        if (!proxy_url_valid(u, n, why, sizeof why)) {
            snprintf(err, errlen, "--proxy: %s", why);
            return RILL_ERR_INVALID_ARG;
        }
        if (!u[n])
            break;
        u += n + 1;
    }
    for (size_t i = 0; i < spec->nroutes; i++)
        if (strlen(spec->routes[i].prefix) == (size_t)(eq - text) &&
            strncmp(spec->routes[i].prefix, text, (size_t)(eq - text)) == 0) {
            snprintf(err, errlen, "--proxy: the prefix '%.*s' is given twice", (int)(eq - text),
                     text);
            return RILL_ERR_INVALID_ARG;
        }
    struct route_spec *r = proxy_spec_new_route(spec);
    if (!r || !(r->prefix = strndup(text, (size_t)(eq - text))))
        return RILL_ERR_NOMEM;
    for (const char *u = eq + 1;;) {
        size_t n = strcspn(u, ",");
        char **grown = realloc(r->urls, (r->nurls + 1) * sizeof *grown);
        if (!grown)
            return RILL_ERR_NOMEM;
        r->urls = grown;
        if (!(r->urls[r->nurls] = strndup(u, n)))
            return RILL_ERR_NOMEM;
        r->nurls++;
        if (!u[n])
            break;
        u += n + 1;
    }
    return RILL_OK;
}

static void ops_free(struct field_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ops[i].name);
        free(ops[i].value);
    }
    free(ops);
}

void field_ops_free(struct field_ops *ops)
{
    ops_free(ops->set, ops->nset);
    ops_free(ops->add, ops->nadd);
    ops_free(ops->remove, ops->nremove);
    memset(ops, 0, sizeof *ops);
}

static void settings_free(struct route_settings *s)
{
    field_ops_free(&s->request);
    field_ops_free(&s->response);
    free(s->check.path);
    s->check.path = NULL;
}

void proxy_spec_clear(struct proxy_spec *spec)
{
    for (size_t i = 0; i < spec->nroutes; i++) {
        struct route_spec *r = &spec->routes[i];
        free(r->prefix);
        for (size_t k = 0; k < r->nurls; k++)
            free(r->urls[k]);
        free(r->urls);
        settings_free(&r->settings);
    }
    free(spec->routes);
    settings_free(&spec->defaults);
    free(spec->ca_file);
    struct serve_file_settings *f = &spec->serve;
    free(f->listen);
    free(f->tls_listen);
    free(f->cert);
    free(f->key);
    free(f->state_dir);
    free(f->root);
    free(f->access_log);
    memset(spec, 0, sizeof *spec);
}

void proxy_spec_free(struct proxy_spec *spec)
{
    if (!spec)
        return;
    proxy_spec_clear(spec);
    free(spec);
}
