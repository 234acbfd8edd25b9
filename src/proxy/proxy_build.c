/* A running configuration from its description: the routes of the --proxy flags and of the
 * file, each with its settings resolved (the route's own, else the flags', else the file's
 * `proxy:` section, else the built-in defaults), its field edits compiled, and its backends found
 * among the proxy's targets (made on first mention, kept for later configurations). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_internal.h"

static bool same_check(const struct health_check *a, const struct health_check *b)
{
    if (!a->path || !b->path)
        return !a->path && !b->path;
    return strcmp(a->path, b->path) == 0 && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms && a->fails == b->fails && a->passes == b->passes;
}

/* The target for url with these connection and health check settings (another health check is
 * another target: its state is of that check; another pipeline depth another pool); p->lock is
 * held. */
static struct proxy_target *target_for(rill_proxy *p, const char *url, uint32_t connect_ms,
                                       unsigned pipeline, const struct health_check *check)
{
    for (struct proxy_target *t = p->targets; t; t = t->next)
        if (strcmp(t->url, url) == 0 && t->connect_ms == connect_ms && t->pipeline == pipeline &&
            same_check(&t->check, check))
            return t;
    struct proxy_target *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->check = *check;
    if (check->path && !(t->check.path = strdup(check->path))) {
        free(t);
        return NULL;
    }
    bool h2c = strncmp(url, "h2c://", 6) == 0, https = strncmp(url, "https://", 8) == 0;
    const char *rest = url + (h2c ? 6 : https ? 8 : 7);
    size_t hostport = strcspn(rest, "/?#");
    char origin[530];
    snprintf(origin, sizeof origin, "%s://%.*s", https ? "https" : "http", (int)hostport, rest);
    if (!(t->url = strdup(url)) || !(t->origin = strdup(origin))) {
        free(t->url);
        free(t->check.path);
        free(t);
        return NULL;
    }
    t->h2c = h2c;
    t->https = https;
    t->connect_ms = connect_ms;
    t->pipeline = pipeline;
    t->index = p->ntargets++;
    t->next = p->targets;
    p->targets = t;
    return t;
}

static bool named(const struct field_op *ops, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ops[i].name, name) == 0)
            return true;
    return false;
}

static rill_header header_of(const struct field_op *op)
{
    return (rill_header){(const uint8_t *)op->name, strlen(op->name), (const uint8_t *)op->value,
                         strlen(op->value), 0};
}

/* The defaults' operations, then the route's: the route's set and remove of a name win. */
static int compile_edit(struct field_edit *e, const struct field_ops *def,
                        const struct field_ops *own)
{
    size_t most = def->nset + def->nremove + own->nset + own->nremove;
    size_t add = def->nset + def->nadd + own->nset + own->nadd;
    e->drop = most ? calloc(most, sizeof *e->drop) : NULL;
    e->append = add ? calloc(add, sizeof *e->append) : NULL;
    if ((most && !e->drop) || (add && !e->append))
        return RILL_ERR_NOMEM;
    const struct field_ops *both[2] = {def, own};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < both[k]->nremove; i++)
            e->drop[e->ndrop++] = both[k]->remove[i].name;
        for (size_t i = 0; i < both[k]->nset; i++)
            e->drop[e->ndrop++] = both[k]->set[i].name;
    }
    for (size_t i = 0; i < def->nset; i++)
        if (!named(own->set, own->nset, def->set[i].name) &&
            !named(own->remove, own->nremove, def->set[i].name))
            e->append[e->nappend++] = header_of(&def->set[i]);
    for (size_t i = 0; i < def->nadd; i++)
        if (!named(own->set, own->nset, def->add[i].name) &&
            !named(own->remove, own->nremove, def->add[i].name))
            e->append[e->nappend++] = header_of(&def->add[i]);
    for (size_t i = 0; i < own->nset; i++)
        e->append[e->nappend++] = header_of(&own->set[i]);
    for (size_t i = 0; i < own->nadd; i++)
        e->append[e->nappend++] = header_of(&own->add[i]);
    return RILL_OK;
}

static void route_free(struct proxy_route *r)
{
    free(r->backends);
    free(r->request.drop);
    free(r->request.append);
    free(r->response.drop);
    free(r->response.append);
}

void proxy_config_unref(struct proxy_config *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < c->nroutes; i++)
        route_free(&c->routes[i]);
    free(c->routes);
    proxy_spec_free(c->spec);
    free(c);
}

static int by_prefix_length(const void *a, const void *b)
{
    size_t la = ((const struct proxy_route *)a)->prefix_len;
    size_t lb = ((const struct proxy_route *)b)->prefix_len;
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static int add_route(rill_proxy *p, struct proxy_config *c, const struct route_spec *rs,
                     const struct route_settings *file_defaults)
{
    struct proxy_route *r = &c->routes[c->nroutes];
    memset(r, 0, sizeof *r);
    r->proxy = p;
    r->prefix = rs->prefix;
    r->prefix_len = strlen(rs->prefix);
    r->s = rs->settings;
    struct route_settings from_flags, builtin;
    route_settings_init(&from_flags);
    from_flags.given = 0;
    if (p->opt.timeout_ms)
        from_flags.first_byte_ms = p->opt.timeout_ms, from_flags.given |= SET_FIRST_BYTE;
    if (p->opt.connect_timeout_ms)
        from_flags.connect_ms = p->opt.connect_timeout_ms, from_flags.given |= SET_CONNECT;
    if (p->opt.half_close_ms)
        from_flags.half_close_ms = p->opt.half_close_ms, from_flags.given |= SET_HALF_CLOSE;
    if (p->opt.pipeline)
        from_flags.pipeline = p->opt.pipeline, from_flags.given |= SET_PIPELINE;
    if (p->opt.forwarding_given) {
        unsigned f = p->opt.forwarding;
        from_flags.forwarded = f & RILL_PROXY_FORWARDED;
        from_flags.x_forwarded_for = f & RILL_PROXY_X_FORWARDED_FOR;
        from_flags.x_forwarded_proto = f & RILL_PROXY_X_FORWARDED_PROTO;
        from_flags.x_forwarded_host = f & RILL_PROXY_X_FORWARDED_HOST;
        from_flags.via = f & RILL_PROXY_VIA;
        from_flags.given |= SET_FORWARDED | SET_XFF | SET_XFP | SET_XFH | SET_VIA;
    }
    route_settings_init(&builtin);
    builtin.given = ~0u;
    route_settings_inherit(&r->s, &from_flags);
    route_settings_inherit(&r->s, file_defaults);
    route_settings_inherit(&r->s, &builtin);
    /* The edits point into the spec; r->s keeps only the scalar settings. */
    memset(&r->s.request, 0, sizeof r->s.request);
    memset(&r->s.response, 0, sizeof r->s.response);
    c->nroutes++; /* from here route_free undoes it */
    int rc = compile_edit(&r->request, &file_defaults->request, &rs->settings.request);
    if (rc == RILL_OK)
        rc = compile_edit(&r->response, &file_defaults->response, &rs->settings.response);
    if (rc < 0)
        return rc;
    if (!(r->backends = calloc(rs->nurls, sizeof *r->backends)))
        return RILL_ERR_NOMEM;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < rs->nurls && rc == RILL_OK; i++)
        if (!(r->backends[r->nbackends++] =
                  target_for(p, rs->urls[i], r->s.connect_ms, r->s.pipeline, &r->s.check)))
            rc = RILL_ERR_NOMEM;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int proxy_config_build(rill_proxy *p, struct proxy_spec *file, struct proxy_config **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    size_t nfile = file ? file->nroutes : 0;
    for (size_t i = 0; i < nfile; i++)
        for (size_t k = 0; k < p->flags.nroutes; k++)
            if (strcmp(file->routes[i].prefix, p->flags.routes[k].prefix) == 0) {
                snprintf(err, errlen, "%s:%d: the prefix '%s' is given by --proxy too",
                         p->config_file ? p->config_file : "", file->routes[i].line,
                         file->routes[i].prefix);
                proxy_spec_free(file);
                return RILL_ERR_INVALID_ARG;
            }
    struct proxy_config *c = calloc(1, sizeof *c);
    size_t n = nfile + p->flags.nroutes;
    if (!c || !(c->routes = calloc(n ? n : 1, sizeof *c->routes))) {
        free(c);
        proxy_spec_free(file);
        return RILL_ERR_NOMEM;
    }
    atomic_init(&c->refs, 1);
    c->spec = file;
    c->insecure = p->opt.insecure || (file && file->insecure);
    c->ca_file = p->opt.ca_file ? p->opt.ca_file : file ? file->ca_file : NULL;
    struct route_settings none;
    route_settings_init(&none);
    none.given = 0;
    const struct route_settings *defaults = file ? &file->defaults : &none;
    int rc = RILL_OK;
    for (size_t i = 0; i < p->flags.nroutes && rc == RILL_OK; i++)
        rc = add_route(p, c, &p->flags.routes[i], defaults);
    for (size_t i = 0; i < nfile && rc == RILL_OK; i++)
        rc = add_route(p, c, &file->routes[i], defaults);
    if (rc < 0) {
        proxy_config_unref(c);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    qsort(c->routes, c->nroutes, sizeof *c->routes, by_prefix_length);
    *out = c;
    return RILL_OK;
}

struct proxy_route *proxy_config_route(struct proxy_config *c, const char *path)
{
    size_t plen = strcspn(path, "?");
    for (size_t i = 0; i < c->nroutes; i++) {
        struct proxy_route *r = &c->routes[i];
        if (r->prefix_len <= plen && memcmp(r->prefix, path, r->prefix_len) == 0)
            return r;
    }
    return NULL;
}
