/* permessage-deflate negotiation (RFC 7692 §5, §7.1) over the Sec-WebSocket-Extensions grammar
 * of RFC 6455 §9.1: extension *( ";" param [ "=" ( token / quoted-string ) ] ), comma-separated. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/http_chars.h"
#include "rill/ws.h"
#include "ws/ws_internal.h"

#define MAX_PARAMS 8 /* pmd has four parameters; more than eight is refused outright */

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

typedef struct ext_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool has_value;
} ext_param;

typedef struct ext_elem {
    const char *name;
    size_t name_len;
    ext_param params[MAX_PARAMS];
    size_t n_params;
    bool too_many;
} ext_elem;

/* What one permessage-deflate element says; window bits 0 = valueless or absent. */
typedef struct pmd_elem {
    bool snct, cnct;
    bool has_smwb, has_cmwb;
    uint8_t smwb, cmwb;
} pmd_elem;

static void skip_ows(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool is_tchar(char ch)
{
    return http_tchar[(uint8_t)ch] != 0;
}

static size_t take_token(cursor *c, const char **start)
{
    *start = c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    return (size_t)(c->p - *start);
}

/* Parses the next list element. Returns 1, 0 at the end, -1 on a syntax error. */
static int next_element(cursor *c, ext_elem *e)
{
    for (;;) {
        skip_ows(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        break;
    }
    if (c->p == c->end)
        return 0;
    e->name_len = take_token(c, &e->name);
    if (!e->name_len)
        return -1;
    e->n_params = 0;
    e->too_many = false;
    skip_ows(c);
    while (c->p < c->end && *c->p == ';') {
        c->p++;
        skip_ows(c);
        ext_param prm = {0};
        prm.name_len = take_token(c, &prm.name);
        if (!prm.name_len)
            return -1;
        skip_ows(c);
        if (c->p < c->end && *c->p == '=') {
            c->p++;
            skip_ows(c);
            prm.has_value = true;
            if (c->p < c->end && *c->p == '"') {
                /* The unescaped value must itself be a token (RFC 6455 §9.1); a backslash
                 * is kept and later fails the digit check. */
                const char *q = ++c->p;
                while (c->p < c->end && *c->p != '"')
                    c->p += (*c->p == '\\' && c->p + 1 < c->end) ? 2 : 1;
                if (c->p >= c->end)
                    return -1;
                prm.value = q;
                prm.value_len = (size_t)(c->p - q);
                c->p++;
            } else {
                prm.value_len = take_token(c, &prm.value);
                if (!prm.value_len)
                    return -1;
            }
            skip_ows(c);
        }
        if (e->n_params < MAX_PARAMS)
            e->params[e->n_params++] = prm;
        else
            e->too_many = true;
    }
    if (c->p < c->end && *c->p != ',')
        return -1;
    return 1;
}

static bool name_is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

/* RFC 7692 §7.1.2: a decimal integer 8..15 without leading zeros. */
static bool parse_bits(const char *v, size_t n, uint8_t *out)
{
    if (n == 1 && v[0] >= '8' && v[0] <= '9') {
        *out = (uint8_t)(v[0] - '0');
        return true;
    }
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
        *out = (uint8_t)(10 + v[1] - '0');
        return true;
    }
    return false;
}

/* Unknown or duplicate parameters and bad values make the element invalid (RFC 7692 §5, §7). */
static bool parse_pmd(const ext_elem *e, pmd_elem *o, bool is_response)
{
    memset(o, 0, sizeof *o);
    if (e->too_many)
        return false;
    for (size_t i = 0; i < e->n_params; i++) {
        const ext_param *p = &e->params[i];
        if (name_is(p->name, p->name_len, "server_no_context_takeover")) {
            if (p->has_value || o->snct)
                return false;
            o->snct = true;
        } else if (name_is(p->name, p->name_len, "client_no_context_takeover")) {
            if (p->has_value || o->cnct)
                return false;
            o->cnct = true;
        } else if (name_is(p->name, p->name_len, "server_max_window_bits")) {
            if (o->has_smwb || !p->has_value || !parse_bits(p->value, p->value_len, &o->smwb))
                return false;
            o->has_smwb = true;
        } else if (name_is(p->name, p->name_len, "client_max_window_bits")) {
            if (o->has_cmwb)
                return false;
            o->has_cmwb = true;
            /* Valueless only in an offer: it says the client supports the parameter. */
            if (p->has_value ? !parse_bits(p->value, p->value_len, &o->cmwb) : is_response)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static bool policy_ok(const rill_ws_pmd_policy *policy)
{
    uint8_t s = policy->server_max_window_bits, c = policy->client_max_window_bits;
    return (s == 0 || (s >= 8 && s <= 15)) && (c == 0 || (c >= 8 && c <= 15));
}

typedef struct writer {
    char *out;
    size_t cap;
    size_t len;
    bool overflow;
} writer;

static void put(writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->out + w->len, w->len < w->cap ? w->cap - w->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || w->len + (size_t)n >= w->cap)
        w->overflow = true;
    else
        w->len += (size_t)n;
}

static int write_params(const rill_ws_pmd_params *a, char *out, size_t cap)
{
    if (!out || cap == 0)
        return RILL_ERR_BUFFER_TOO_SMALL;
    writer w = {out, cap, 0, false};
    put(&w, "permessage-deflate");
    if (a->server_no_context_takeover)
        put(&w, "; server_no_context_takeover");
    if (a->client_no_context_takeover)
        put(&w, "; client_no_context_takeover");
    if (a->server_max_window_bits)
        put(&w, "; server_max_window_bits=%u", (unsigned)a->server_max_window_bits);
    if (a->client_max_window_bits)
        put(&w, "; client_max_window_bits=%u", (unsigned)a->client_max_window_bits);
    return w.overflow ? RILL_ERR_BUFFER_TOO_SMALL : RILL_OK;
}

static uint8_t min_bits(uint8_t a, uint8_t b)
{
    a = a ? a : 15;
    b = b ? b : 15;
    return a < b ? a : b;
}

int rill_ws_pmd_server_negotiate(const char *offers, size_t len, const rill_ws_pmd_policy *policy,
                                 rill_ws_pmd_params *agreed, char *resp, size_t resp_cap)
{
    static const rill_ws_pmd_policy defaults = {0};
    if (!policy)
        policy = &defaults;
    if (!policy_ok(policy) || !agreed)
        return RILL_ERR_INVALID_ARG;
    if (!offers)
        return RILL_ERR_NOT_FOUND;
    cursor c = {offers, offers + len};
    ext_elem e;
    while (next_element(&c, &e) == 1) {
        pmd_elem o;
        if (!name_is(e.name, e.name_len, "permessage-deflate") || !parse_pmd(&e, &o, false))
            continue;
        rill_ws_pmd_params a = {0};
        /* The server may always give up context takeover itself or ask the client to. */
        a.server_no_context_takeover = o.snct || policy->server_no_context_takeover;
        a.client_no_context_takeover = o.cnct || policy->client_no_context_takeover;
        uint8_t ours = min_bits(policy->server_max_window_bits, 0);
        if (o.has_smwb) /* must be answered, with the same or a smaller value */
            a.server_max_window_bits = min_bits(o.smwb, ours);
        else if (ours < 15)
            a.server_max_window_bits = ours;
        if (o.has_cmwb) { /* only then may the response limit the client's window */
            uint8_t limit = min_bits(o.cmwb, policy->client_max_window_bits);
            if (o.cmwb || limit < 15)
                a.client_max_window_bits = limit;
        }
        int rc = write_params(&a, resp, resp_cap);
        if (rc)
            return rc;
        *agreed = a;
        return RILL_OK;
    }
    return RILL_ERR_NOT_FOUND;
}

int rill_ws_pmd_client_offer(const rill_ws_pmd_policy *policy, char *out, size_t cap)
{
    static const rill_ws_pmd_policy defaults = {0};
    if (!policy)
        policy = &defaults;
    if (!policy_ok(policy))
        return RILL_ERR_INVALID_ARG;
    if (!out || cap == 0)
        return RILL_ERR_BUFFER_TOO_SMALL;
    writer w = {out, cap, 0, false};
    put(&w, "permessage-deflate");
    if (policy->server_no_context_takeover)
        put(&w, "; server_no_context_takeover");
    if (policy->client_no_context_takeover)
        put(&w, "; client_no_context_takeover");
    if (policy->server_max_window_bits)
        put(&w, "; server_max_window_bits=%u", (unsigned)policy->server_max_window_bits);
    /* Always announce client_max_window_bits: we can compress with any window the server picks. */
    if (policy->client_max_window_bits)
        put(&w, "; client_max_window_bits=%u", (unsigned)policy->client_max_window_bits);
    else
        put(&w, "; client_max_window_bits");
    return w.overflow ? RILL_ERR_BUFFER_TOO_SMALL : RILL_OK;
}

int rill_ws_pmd_client_accept(const char *response, size_t len, const rill_ws_pmd_policy *policy,
                              rill_ws_pmd_params *agreed)
{
    static const rill_ws_pmd_policy defaults = {0};
    if (!policy)
        policy = &defaults;
    if (!policy_ok(policy) || !agreed)
        return RILL_ERR_INVALID_ARG;
    if (!response)
        return RILL_ERR_NOT_FOUND;
    cursor c = {response, response + len};
    ext_elem e;
    bool found = false;
    rill_ws_pmd_params a = {0};
    int r;
    while ((r = next_element(&c, &e)) == 1) {
        /* We offered nothing else, and permessage-deflate once (RFC 6455 §4.1, RFC 7692 §5). */
        if (!name_is(e.name, e.name_len, "permessage-deflate") || found)
            return RILL_ERR_PROTOCOL;
        found = true;
        pmd_elem o;
        if (!parse_pmd(&e, &o, true))
            return RILL_ERR_PROTOCOL;
        /* Parameters we offered must be answered (the server declines an offer by omitting
         * the whole extension), and limits cannot be raised. */
        if (policy->server_no_context_takeover && !o.snct)
            return RILL_ERR_PROTOCOL;
        if (policy->server_max_window_bits &&
            (!o.has_smwb || o.smwb > policy->server_max_window_bits))
            return RILL_ERR_PROTOCOL;
        if (o.has_cmwb && policy->client_max_window_bits &&
            o.cmwb > policy->client_max_window_bits)
            return RILL_ERR_PROTOCOL;
        a.server_no_context_takeover = o.snct;
        a.client_no_context_takeover = o.cnct || policy->client_no_context_takeover;
        a.server_max_window_bits = o.has_smwb ? o.smwb : 0;
        a.client_max_window_bits = o.has_cmwb ? o.cmwb : policy->client_max_window_bits;
    }
    if (r < 0)
        return RILL_ERR_PROTOCOL;
    if (!found)
        return RILL_ERR_NOT_FOUND;
    *agreed = a;
    return RILL_OK;
}
