/* The YAML configuration file of `rill serve --config` (schema: docs/PROXY.md "Configuration
 * file"). libyaml parses it into a document; this walks the nodes into a proxy_spec. Every error
 * is one line naming the file and the line of the node at fault (libyaml's marks): unknown keys,
 * keys given twice, wrong types, bad values, bad URLs, prefixes given twice. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "proxy/proxy_spec.h"
#include "rill/common.h"

struct loader {
    const char *path;
    yaml_document_t doc;
    char *err;
    size_t errlen;
    int rc; /* the first failure */
};

static bool failf(struct loader *l, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool failf(struct loader *l, const yaml_node_t *at, const char *fmt, ...)
{
    if (l->rc)
        return false;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s:%zu: %s", l->path, at ? at->start_mark.line + 1 : 1, what);
    l->rc = RILL_ERR_INVALID_ARG;
    return false;
}

static bool out_of_memory(struct loader *l)
{
    if (!l->rc) {
        snprintf(l->err, l->errlen, "%s: out of memory", l->path);
        l->rc = RILL_ERR_NOMEM;
    }
    return false;
}

static yaml_node_t *node(struct loader *l, int id)
{
    return yaml_document_get_node(&l->doc, id);
}

static const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool want(struct loader *l, const yaml_node_t *n, yaml_node_type_t type, const char *key)
{
    if (n->type == type)
        return true;
    static const char *const kinds[] = {"nothing", "a single value", "a list", "a mapping"};
    return failf(l, n, "'%s' wants %s", key, kinds[type]);
}

static bool get_string(struct loader *l, const yaml_node_t *n, const char *key, char **out)
{
    if (!want(l, n, YAML_SCALAR_NODE, key))
        return false;
    if (n->data.scalar.length == 0 || strlen(text(n)) != n->data.scalar.length)
        return failf(l, n, "'%s' wants a non-empty value without NUL bytes", key);
    free(*out);
    if (!(*out = strdup(text(n))))
        return out_of_memory(l);
    return true;
}

static bool get_bool(struct loader *l, const yaml_node_t *n, const char *key, bool *out)
{
    if (!want(l, n, YAML_SCALAR_NODE, key))
        return false;
    /* YAML 1.1's spellings, as libyaml users write them */
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text(n), yes[i]) == 0 || strcasecmp(text(n), no[i]) == 0) {
            *out = strcasecmp(text(n), yes[i]) == 0;
            return true;
        }
    }
    return failf(l, n, "'%s' wants true or false, not '%s'", key, text(n));
}

static bool get_count(struct loader *l, const yaml_node_t *n, const char *key, uint32_t *out)
{
    if (!want(l, n, YAML_SCALAR_NODE, key))
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text(n), &end, 10);
    if (errno || *end || end == text(n) || text(n)[0] == '-' || v == 0 || v > 1024)
        return failf(l, n, "'%s' wants a number from 1 to 1024, not '%s'", key, text(n));
    *out = (uint32_t)v;
    return true;
}

/* Milliseconds: a plain number, or a number with ms, s or m ("250ms", "10s", "2m"). */
static bool get_duration(struct loader *l, const yaml_node_t *n, const char *key, uint32_t *out)
{
    if (!want(l, n, YAML_SCALAR_NODE, key))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text(n), &end, 10);
    unsigned long long scale = strcmp(end, "") == 0 || strcmp(end, "ms") == 0 ? 1
                               : strcmp(end, "s") == 0                        ? 1000
                               : strcmp(end, "m") == 0                        ? 60000
                                                                              : 0;
    if (errno || end == text(n) || text(n)[0] == '-' || !scale || v > UINT32_MAX / scale)
        return failf(l, n, "'%s' wants a duration (milliseconds, or with ms, s or m), not '%s'",
                     key, text(n));
    *out = (uint32_t)(v * scale);
    return true;
}

/* Walks a mapping: for each pair, fn(key text, key node, value node); keys given twice and keys
 * that are not plain values fail. */
typedef bool (*pair_fn)(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                        void *arg);

static bool each_pair(struct loader *l, yaml_node_t *map, pair_fn fn, void *arg)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return failf(l, k, "a key must be a single value");
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *earlier = node(l, q->key);
            if (earlier->type == YAML_SCALAR_NODE && strcmp(text(earlier), text(k)) == 0)
                return failf(l, k, "'%s' is given twice (first on line %zu)", text(k),
                             earlier->start_mark.line + 1);
        }
        if (!fn(l, text(k), k, v, arg))
            return false;
    }
    return true;
}

/* ---- field operations ------------------------------------------------------------------------ */

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Names the proxy manages itself (framing, connection handling) cannot be set by hand. */
static bool field_name_ok(struct loader *l, const yaml_node_t *n)
{
    static const char *const managed[] = {
        "connection", "keep-alive",     "proxy-connection", "te",     "transfer-encoding",
        "upgrade",    "http2-settings", "content-length",   "trailer"};
    const char *s = text(n);
    if (!s[0] || strlen(s) != n->data.scalar.length)
        return failf(l, n, "a field name must not be empty");
    for (const char *c = s; *c; c++)
        if (!token_char((unsigned char)*c))
            return failf(l, n, "'%s' is not a field name", s);
    for (size_t i = 0; i < sizeof managed / sizeof *managed; i++)
        if (strcasecmp(s, managed[i]) == 0)
            return failf(l, n, "the field '%s' is the proxy's own to manage", s);
    return true;
}

static bool push_op(struct loader *l, struct field_op **ops, size_t *n, const yaml_node_t *name,
                    const yaml_node_t *value)
{
    struct field_op *grown = realloc(*ops, (*n + 1) * sizeof *grown);
    if (!grown)
        return out_of_memory(l);
    *ops = grown;
    struct field_op *op = &grown[*n];
    op->name = strdup(text(name));
    op->value = value ? strdup(text(value)) : NULL;
    if (!op->name || (value && !op->value)) {
        free(op->name);
        free(op->value);
        return out_of_memory(l);
    }
    for (char *c = op->name; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    (*n)++;
    return true;
}

struct ops_arg {
    struct field_ops *ops;
    bool set; /* the mapping is `set` (else `add`) */
};

static bool one_field(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct ops_arg *a = arg;
    (void)key;
    if (!field_name_ok(l, k) || !want(l, v, YAML_SCALAR_NODE, text(k)))
        return false;
    if (strlen(text(v)) != v->data.scalar.length || strpbrk(text(v), "\r\n"))
        return failf(l, v, "the value of '%s' has a line break or a NUL byte", text(k));
    return a->set ? push_op(l, &a->ops->set, &a->ops->nset, k, v)
                  : push_op(l, &a->ops->add, &a->ops->nadd, k, v);
}

static bool one_op_kind(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                        void *arg)
{
    struct field_ops *ops = arg;
    if (strcmp(key, "set") == 0 || strcmp(key, "add") == 0) {
        struct ops_arg a = {ops, key[0] == 's'};
        return want(l, v, YAML_MAPPING_NODE, key) && each_pair(l, v, one_field, &a);
    }
    if (strcmp(key, "remove") == 0) {
        if (!want(l, v, YAML_SEQUENCE_NODE, key))
            return false;
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
             i++) {
            yaml_node_t *name = node(l, *i);
            if (!want(l, name, YAML_SCALAR_NODE, "remove") || !field_name_ok(l, name) ||
                !push_op(l, &ops->remove, &ops->nremove, name, NULL))
                return false;
        }
        return true;
    }
    return failf(l, k, "unknown key '%s' (want set, add or remove)", key);
}

/* ---- settings shared by `proxy:` and each route ---------------------------------------------- */

static bool one_timeout(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                        void *arg)
{
    struct route_settings *s = arg;
    if (strcmp(key, "connect") == 0) {
        s->given |= SET_CONNECT;
        return get_duration(l, v, key, &s->connect_ms);
    }
    if (strcmp(key, "first-byte") == 0) {
        s->given |= SET_FIRST_BYTE;
        return get_duration(l, v, key, &s->first_byte_ms);
    }
    if (strcmp(key, "idle") == 0) {
        s->given |= SET_IDLE;
        return get_duration(l, v, key, &s->idle_ms);
    }
    if (strcmp(key, "half-close") == 0) {
        s->given |= SET_HALF_CLOSE;
        return get_duration(l, v, key, &s->half_close_ms);
    }
    return failf(l, k, "unknown key '%s' (want connect, first-byte, idle or half-close)", key);
}

static bool one_health(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct route_settings *s = arg;
    if (strcmp(key, "down-for") == 0) {
        s->given |= SET_DOWN;
        return get_duration(l, v, key, &s->down_ms);
    }
    return failf(l, k, "unknown key '%s' (want down-for)", key);
}

static bool nonzero_duration(struct loader *l, const yaml_node_t *v, const char *key, uint32_t *out)
{
    if (!get_duration(l, v, key, out))
        return false;
    return *out ? true : failf(l, v, "'%s' wants a duration above 0", key);
}

static bool one_check(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct health_check *c = arg;
    if (strcmp(key, "path") == 0) {
        if (!get_string(l, v, key, &c->path))
            return false;
        for (const char *p = c->path; *p; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '#')
                return failf(l, v, "'path' wants a request path without spaces, not '%s'", c->path);
        if (c->path[0] != '/')
            return failf(l, v, "'path' wants a path starting with '/', not '%s'", c->path);
        return true;
    }
    if (strcmp(key, "interval") == 0)
        return nonzero_duration(l, v, key, &c->interval_ms);
    if (strcmp(key, "timeout") == 0)
        return nonzero_duration(l, v, key, &c->timeout_ms);
    if (strcmp(key, "fails") == 0)
        return get_count(l, v, key, &c->fails);
    if (strcmp(key, "passes") == 0)
        return get_count(l, v, key, &c->passes);
    return failf(l, k, "unknown key '%s' (want path, interval, timeout, fails or passes)", key);
}

/* `health-check: {path, interval, timeout, fails, passes}` (each with a default), or `none`
 * (a route that does without the checks of `proxy:`). */
static bool health_check(struct loader *l, yaml_node_t *v, struct route_settings *s)
{
    s->given |= SET_HEALTH_CHECK;
    free(s->check.path);
    s->check = (struct health_check){NULL, 2000, 1000, 3, 2};
    if (v->type == YAML_SCALAR_NODE && strcmp(text(v), "none") == 0)
        return true;
    if (v->type != YAML_MAPPING_NODE)
        return failf(l, v,
                     "'health-check' wants a mapping (path, interval, timeout, fails, "
                     "passes) or none");
    if (!each_pair(l, v, one_check, &s->check))
        return false;
    if (!s->check.path && !(s->check.path = strdup("/")))
        return out_of_memory(l);
    return true;
}

static bool one_forwarding(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                           void *arg)
{
    struct route_settings *s = arg;
    static const struct {
        const char *key;
        unsigned bit;
        size_t offset;
    } switches[] = {
        {"forwarded", SET_FORWARDED, offsetof(struct route_settings, forwarded)},
        {"x-forwarded-for", SET_XFF, offsetof(struct route_settings, x_forwarded_for)},
        {"x-forwarded-proto", SET_XFP, offsetof(struct route_settings, x_forwarded_proto)},
        {"x-forwarded-host", SET_XFH, offsetof(struct route_settings, x_forwarded_host)},
        {"via", SET_VIA, offsetof(struct route_settings, via)},
    };
    for (size_t i = 0; i < sizeof switches / sizeof *switches; i++)
        if (strcmp(key, switches[i].key) == 0) {
            s->given |= switches[i].bit;
            return get_bool(l, v, key, (bool *)((char *)s + switches[i].offset));
        }
    return failf(l, k,
                 "unknown key '%s' (want forwarded, x-forwarded-for, x-forwarded-proto, "
                 "x-forwarded-host or via)",
                 key);
}

/* One of the settings keys; false with nothing said when key is not one of them. */
static bool is_setting(const char *key)
{
    static const char *const keys[] = {"timeout",     "balance",         "health",
                                       "forwarding",  "request-headers", "response-headers",
                                       "health-check", "pipeline"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

static bool one_setting(struct loader *l, const char *key, yaml_node_t *v, struct route_settings *s)
{
    if (strcmp(key, "timeout") == 0)
        return want(l, v, YAML_MAPPING_NODE, key) && each_pair(l, v, one_timeout, s);
    if (strcmp(key, "health") == 0)
        return want(l, v, YAML_MAPPING_NODE, key) && each_pair(l, v, one_health, s);
    if (strcmp(key, "health-check") == 0)
        return health_check(l, v, s);
    if (strcmp(key, "forwarding") == 0)
        return want(l, v, YAML_MAPPING_NODE, key) && each_pair(l, v, one_forwarding, s);
    if (strcmp(key, "pipeline") == 0) {
        s->given |= SET_PIPELINE;
        if (!get_count(l, v, key, &s->pipeline))
            return false;
        if (s->pipeline > PROXY_PIPELINE_MAX)
            return failf(l, v, "'pipeline' wants a number from 1 to %u, not '%s'",
                         PROXY_PIPELINE_MAX, text(v));
        return true;
    }
    if (strcmp(key, "balance") == 0) {
        if (!want(l, v, YAML_SCALAR_NODE, key))
            return false;
        s->given |= SET_BALANCE;
        if (strcmp(text(v), "round-robin") == 0)
            s->balance = BALANCE_ROUND_ROBIN;
        else if (strcmp(text(v), "least-connections") == 0)
            s->balance = BALANCE_LEAST_CONNECTIONS;
        else
            return failf(l, v, "'balance' wants round-robin or least-connections, not '%s'",
                         text(v));
        return true;
    }
    bool request = strcmp(key, "request-headers") == 0;
    s->given |= request ? SET_REQUEST_FIELDS : SET_RESPONSE_FIELDS;
    return want(l, v, YAML_MAPPING_NODE, key) &&
           each_pair(l, v, one_op_kind, request ? &s->request : &s->response);
}

/* ---- routes -----------------------------------------------------------------------------------
 */

static bool add_url(struct loader *l, struct route_spec *r, const yaml_node_t *n)
{
    char why[400];
    if (!want(l, n, YAML_SCALAR_NODE, "backends"))
        return false;
    if (!proxy_url_valid(text(n), n->data.scalar.length, why, sizeof why))
        return failf(l, n, "%s", why);
    char **grown = realloc(r->urls, (r->nurls + 1) * sizeof *grown);
    if (!grown)
        return out_of_memory(l);
    r->urls = grown;
    if (!(r->urls[r->nurls] = strdup(text(n))))
        return out_of_memory(l);
    r->nurls++;
    return true;
}

static bool one_route_key(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                          void *arg)
{
    struct route_spec *r = arg;
    if (strcmp(key, "prefix") == 0) {
        if (!get_string(l, v, key, &r->prefix))
            return false;
        if (r->prefix[0] != '/' || strpbrk(r->prefix, "?# \t"))
            return failf(l, v, "'prefix' wants a path starting with '/', not '%s'", r->prefix);
        return true;
    }
    if (strcmp(key, "backends") == 0) {
        if (v->type == YAML_SCALAR_NODE)
            return add_url(l, r, v);
        if (!want(l, v, YAML_SEQUENCE_NODE, key))
            return false;
        if (v->data.sequence.items.start == v->data.sequence.items.top)
            return failf(l, v, "'backends' is empty");
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
             i++)
            if (!add_url(l, r, node(l, *i)))
                return false;
        return true;
    }
    if (is_setting(key))
        return one_setting(l, key, v, &r->settings);
    return failf(l, k,
                 "unknown key '%s' in a route (want prefix, backends, timeout, balance, "
                 "pipeline, health, health-check, forwarding, request-headers or "
                 "response-headers)",
                 key);
}

static bool routes(struct loader *l, yaml_node_t *seq, struct proxy_spec *spec)
{
    if (!want(l, seq, YAML_SEQUENCE_NODE, "routes"))
        return false;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *n = node(l, *i);
        if (n->type != YAML_MAPPING_NODE)
            return failf(l, n, "a route wants a mapping (prefix, backends, ...)");
        struct route_spec *r = proxy_spec_new_route(spec);
        if (!r)
            return out_of_memory(l);
        r->line = (int)n->start_mark.line + 1;
        if (!each_pair(l, n, one_route_key, r))
            return false;
        if (!r->prefix)
            return failf(l, n, "a route without 'prefix'");
        if (!r->nurls)
            return failf(l, n, "the route '%s' has no 'backends'", r->prefix);
        for (size_t k = 0; k + 1 < spec->nroutes; k++)
            if (strcmp(spec->routes[k].prefix, r->prefix) == 0)
                return failf(l, n, "the prefix '%s' is given twice (first on line %d)", r->prefix,
                             spec->routes[k].line);
    }
    return true;
}

/* ---- the top level ----------------------------------------------------------------------------
 */

static bool one_proxy_key(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                          void *arg)
{
    struct proxy_spec *spec = arg;
    if (strcmp(key, "insecure") == 0)
        return get_bool(l, v, key, &spec->insecure);
    if (strcmp(key, "ca-file") == 0)
        return get_string(l, v, key, &spec->ca_file);
    if (is_setting(key))
        return one_setting(l, key, v, &spec->defaults);
    return failf(l, k,
                 "unknown key '%s' in 'proxy' (want insecure, ca-file, timeout, balance, "
                 "pipeline, health, health-check, forwarding, request-headers or "
                 "response-headers)",
                 key);
}

static bool one_top_key(struct loader *l, const char *key, yaml_node_t *k, yaml_node_t *v,
                        void *arg)
{
    struct proxy_spec *spec = arg;
    struct serve_file_settings *f = &spec->serve;
    static const struct {
        const char *key;
        size_t offset;
    } strings[] = {
        {"listen", offsetof(struct serve_file_settings, listen)},
        {"tls-listen", offsetof(struct serve_file_settings, tls_listen)},
        {"cert", offsetof(struct serve_file_settings, cert)},
        {"key", offsetof(struct serve_file_settings, key)},
        {"state-dir", offsetof(struct serve_file_settings, state_dir)},
        {"root", offsetof(struct serve_file_settings, root)},
        {"access-log", offsetof(struct serve_file_settings, access_log)},
    };
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        if (strcmp(key, strings[i].key) == 0)
            return get_string(l, v, key, (char **)((char *)f + strings[i].offset));
    if (strcmp(key, "threads") == 0)
        return get_count(l, v, key, &f->threads);
    if (strcmp(key, "proxy") == 0)
        return want(l, v, YAML_MAPPING_NODE, key) && each_pair(l, v, one_proxy_key, spec);
    if (strcmp(key, "routes") == 0)
        return routes(l, v, spec);
    return failf(l, k,
                 "unknown key '%s' (want listen, tls-listen, cert, key, state-dir, root, "
                 "access-log, threads, proxy or routes)",
                 key);
}

int proxy_config_load(const char *path, struct proxy_spec **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return RILL_ERR_IO;
    }
    struct loader l = {.path = path, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        snprintf(err, errlen, "%s: out of memory", path);
        return RILL_ERR_NOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &l.doc)) {
        snprintf(err, errlen, "%s:%zu: %s%s%s", path, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "not YAML", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        int rc = parser.error == YAML_MEMORY_ERROR                 ? RILL_ERR_NOMEM
                 : parser.error == YAML_READER_ERROR && ferror(fp) ? RILL_ERR_IO
                                                                   : RILL_ERR_INVALID_ARG;
        yaml_parser_delete(&parser);
        fclose(fp);
        return rc;
    }
    /* One document only: a second one would be silently ignored. */
    yaml_document_t next;
    bool second = false;
    size_t second_line = 0;
    if (yaml_parser_load(&parser, &next)) {
        second = yaml_document_get_root_node(&next) != NULL;
        second_line = next.start_mark.line + 1;
        yaml_document_delete(&next);
    }
    yaml_parser_delete(&parser);
    fclose(fp);

    struct proxy_spec *spec = calloc(1, sizeof *spec);
    if (!spec) {
        yaml_document_delete(&l.doc);
        snprintf(err, errlen, "%s: out of memory", path);
        return RILL_ERR_NOMEM;
    }
    route_settings_init(&spec->defaults);
    yaml_node_t *root = yaml_document_get_root_node(&l.doc);
    if (second) {
        snprintf(err, errlen, "%s:%zu: a second YAML document (one configuration per file)", path,
                 second_line);
        l.rc = RILL_ERR_INVALID_ARG;
    } else if (root && root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0) {
        /* an empty file: nothing configured */
    } else if (root && want(&l, root, YAML_MAPPING_NODE, "the file")) {
        each_pair(&l, root, one_top_key, spec);
    }
    yaml_document_delete(&l.doc);
    if (l.rc) {
        proxy_spec_free(spec);
        return l.rc;
    }
    *out = spec;
    return RILL_OK;
}
