/* Which fields cross the proxy: hop-by-hop fields stay on their connection (RFC 9110 §7.6.1),
 * the backend learns who asked (Forwarded, X-Forwarded-For/-Proto/-Host: each can be turned off
 * per route) and through whom (Via); then the route's own edits (remove, set, add). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http_chars.h"
#include "common/small_copy.h"
#include "proxy/proxy_internal.h"

/* f's name, any case, is lit (lowercase, a literal): the length first, then the bytes folded
 * without a locale, eight a step. */
#define NAME_IS(f, lit) ((f)->name_len == sizeof(lit) - 1 && lower_eq_lit((f)->name, lit, sizeof(lit) - 1))

/* The same for a name known only at run time (a route's edits). */
static bool name_is(const rill_header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp((const char *)f->name, name, n) == 0;
}

/* The next token of a Connection field value from *v (separators skipped): its start, and *v
 * moved past it; the token is empty at the value's end. */
static const char *next_token(const char **v, const char *end)
{
    const char *p = *v;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    const char *t = p;
    while (p < end && *p != ',' && *p != ' ' && *p != '\t')
        p++;
    *v = p;
    return t;
}

/* Whether f's name is one of the tokens of a Connection field value. */
static bool listed_in(const rill_header *f, const rill_header *conn)
{
    const char *v = (const char *)conn->value, *end = v + conn->value_len;
    while (v < end) {
        const char *t = next_token(&v, end);
        if (v > t && (size_t)(v - t) == f->name_len &&
            strncasecmp(t, (const char *)f->name, f->name_len) == 0)
            return true;
    }
    return false;
}

/* The tokens of a message's Connection fields, found once (most messages have one field with
 * one token, "keep-alive" or "close"): every other field's name is compared with them, the
 * length first. A message with more fields or tokens than this has its fields walked instead. */
#define CONN_TOKENS_MAX 8
struct conn_fields {
    struct {
        const char *p;
        size_t n;
    } tok[CONN_TOKENS_MAX];
    size_t ntok;
    const rill_header *fields; /* all of them, when there are more tokens than that */
    size_t n;
};

static void conn_fields(struct conn_fields *c, const rill_header *fields, size_t n)
{
    c->ntok = 0; /* the token array is filled as far as ntok only */
    c->fields = NULL;
    c->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!NAME_IS(&fields[i], "connection"))
            continue;
        const char *v = (const char *)fields[i].value, *end = v + fields[i].value_len;
        while (v < end) {
            const char *t = next_token(&v, end);
            if (v == t)
                continue;
            if (c->ntok == CONN_TOKENS_MAX) {
                c->fields = fields;
                c->n = n;
                return;
            }
            c->tok[c->ntok].p = t;
            c->tok[c->ntok++].n = (size_t)(v - t);
        }
    }
}

static bool named_by_connection(const rill_header *f, const struct conn_fields *c)
{
    if (c->fields) { /* many Connection tokens: walk them all */
        for (size_t i = 0; i < c->n; i++)
            if (NAME_IS(&c->fields[i], "connection") && listed_in(f, &c->fields[i]))
                return true;
        return false;
    }
    for (size_t i = 0; i < c->ntok; i++)
        if (c->tok[i].n == f->name_len && strncasecmp(c->tok[i].p, (const char *)f->name, f->name_len) == 0)
            return true;
    return false;
}

/* The hop-by-hop fields of RFC 9110 §7.6.1 and their kin (HTTP/2's, the proxy's own), by length
 * first: most names are none of them. */
static bool hop_by_hop(const rill_header *f)
{
    switch (f->name_len) {
    case 2: return NAME_IS(f, "te");
    case 7: return NAME_IS(f, "upgrade");
    case 10: return NAME_IS(f, "connection") || NAME_IS(f, "keep-alive");
    case 14: return NAME_IS(f, "http2-settings");
    case 16: return NAME_IS(f, "proxy-connection");
    case 17: return NAME_IS(f, "transfer-encoding");
    case 18: return NAME_IS(f, "proxy-authenticate");
    case 19: return NAME_IS(f, "proxy-authorization");
    default: return false;
    }
}

size_t proxy_response_keep(const rill_header *fields, size_t n, const struct field_edit *drops,
                           rill_header *out, size_t cap)
{
    struct conn_fields c;
    conn_fields(&c, fields, n);
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap; i++)
        if (!hop_by_hop(&fields[i]) && !named_by_connection(&fields[i], &c) &&
            !(drops && proxy_edit_drops(drops, &fields[i])))
            out[k++] = fields[i];
    return k;
}

void proxy_response_pass(rill_server_response *res, const rill_header *fields, size_t n,
                         const struct field_edit *drops, const char *also_drop)
{
    rill_header stack[64], *keep = n <= 64 ? stack : malloc(n * sizeof *keep);
    if (!keep)
        return;
    size_t k = proxy_response_keep(fields, n, drops, keep, n), m = 0;
    for (size_t i = 0; i < k; i++)
        if (!also_drop || !name_is(&keep[i], also_drop))
            keep[m++] = keep[i];
    /* All at once (checked once, no C strings made); if one is refused, the others one by one. */
    if (rill_server_response_add_headers(res, keep, m) == RILL_ERR_INVALID_ARG)
        for (size_t i = 0; i < m; i++)
            rill_server_response_add_headers(res, &keep[i], 1);
    if (keep != stack)
        free(keep);
}

size_t proxy_fields_max(const rill_server_request *req, const struct proxy_route *r)
{
    /* host, x-forwarded-for/-proto/-host, via, forwarded (two lines each when an old one is too
     * long to join), and the route's own */
    return rill_server_request_header_count(req) + 10 + r->request.nappend;
}

bool proxy_edit_drops(const struct field_edit *e, const rill_header *f)
{
    for (size_t i = 0; i < e->ndrop; i++)
        if (name_is(f, e->drop[i]))
            return true;
    return false;
}

static rill_header field(const char *name, const char *value, size_t len)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, len, 0};
}

size_t proxy_cookie_room(const rill_server_request *req)
{
    size_t count = rill_server_request_header_count(req), n = 0, room = 0;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (NAME_IS(f, "cookie"))
            n++, room += f->value_len + 2;
    }
    return n > 1 ? room : 0;
}

/* HTTP/2 splits cookies into one field per pair (RFC 9113 §8.2.3); HTTP/1.1 wants one line. */
static rill_header joined_cookies(const rill_server_request *req, char *buf)
{
    size_t count = rill_server_request_header_count(req), len = 0;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (!NAME_IS(f, "cookie"))
            continue;
        if (len) {
            memcpy(buf + len, "; ", 2);
            len += 2;
        }
        memcpy(buf + len, f->value, f->value_len);
        len += f->value_len;
    }
    return field("cookie", buf, len);
}

/* A Forwarded element (RFC 7239 §4): for=, proto=, host=; a value that is not a token (an IPv6
 * address, a host with a port) is a quoted string. Written into out[0..room) (cut short, and
 * NUL-terminated, when it does not fit); returns the length it needs. */
static size_t forwarded_pair(char *out, size_t room, const char *key, size_t klen, const char *value)
{
    /* One pass over the value decides its form; the common token goes with one copy. */
    bool token = value[0] != '\0', colon = false, escapes = false;
    size_t vlen = 0;
    for (const char *c = value; *c; c++, vlen++) {
        token &= http_tchar[(uint8_t)*c] != 0;
        colon |= *c == ':';
        escapes |= *c == '"' || *c == '\\';
    }
    bool v6 = colon && key[0] == 'f'; /* for= an IPv6 address */
    if (token && klen + 1 + vlen < room) {
        memcpy(out, key, klen);
        out[klen] = '=';
        memcpy(out + klen + 1, value, vlen);
        out[klen + 1 + vlen] = '\0';
        return klen + 1 + vlen;
    }
    size_t n = 0;
    #define PUT(ch) do { if (n + 1 < room) out[n] = (ch); n++; } while (0)
    for (const char *c = key; *c; c++)
        PUT(*c);
    PUT('=');
    if (!token)
        PUT('"');
    if (v6)
        PUT('[');
    if (!escapes && n + vlen + 1 < room) {
        memcpy(out + n, value, vlen);
        n += vlen;
    } else {
        for (const char *c = value; *c; c++) {
            if (*c == '"' || *c == '\\')
                PUT('\\');
            PUT(*c);
        }
    }
    if (v6)
        PUT(']');
    if (!token)
        PUT('"');
    #undef PUT
    if (n < room)
        out[n] = '\0';
    return n;
}

static size_t forwarded_element(char *out, size_t room, const char *peer, const char *proto,
                                const char *host)
{
    size_t n = forwarded_pair(out, room, "for", 3, peer);
    if (n + 1 < room) {
        out[n++] = ';';
        n += forwarded_pair(out + n, room - n, "proto", 5, proto);
    }
    if (host && host[0] && n + 1 < room) {
        out[n++] = ';';
        n += forwarded_pair(out + n, room - n, "host", 4, host);
    }
    return n < room ? n : 0; /* 0: did not fit */
}

/* The last Forwarded element made on this thread and what it was made from: a connection's
 * requests repeat it (one peer, one scheme, mostly one host), and working a value's quoting out
 * byte by byte was the costliest part of a request's forwarding fields. */
#define FORWARDED_ROOM 320
static _Thread_local struct {
    char key[FORWARDED_ROOM]; /* peer, proto and host, each with its NUL */
    size_t key_len;
    char element[FORWARDED_ROOM];
    size_t len;
} forwarded_memo;

/* forwarded_element into a FORWARDED_ROOM buffer: *element points at the result (the memo's
 * copy, valid until the next call on this thread); its length, 0 if it did not fit. */
static size_t forwarded_element_memo(const char **element, const char *peer, const char *proto,
                                     const char *host)
{
    if (!host)
        host = "";
    size_t pl = strlen(peer), rl = strlen(proto), hl = strlen(host);
    size_t kl = pl + rl + hl + 3;
    char *k = forwarded_memo.key;
    *element = forwarded_memo.element;
    if (kl == forwarded_memo.key_len && memcmp(k, peer, pl + 1) == 0 &&
        memcmp(k + pl + 1, proto, rl + 1) == 0 && memcmp(k + pl + rl + 2, host, hl + 1) == 0)
        return forwarded_memo.len;
    size_t len = forwarded_element(forwarded_memo.element, FORWARDED_ROOM, peer, proto, host);
    if (kl <= sizeof forwarded_memo.key) {
        memcpy(k, peer, pl + 1);
        memcpy(k + pl + 1, proto, rl + 1);
        memcpy(k + pl + rl + 2, host, hl + 1);
        forwarded_memo.key_len = kl;
    } else {
        forwarded_memo.key_len = 0; /* too long to remember: made each time */
    }
    forwarded_memo.len = len;
    return len;
}

/* Appends name: [old, ]add using the scratch space at *used; without room the old value goes on
 * its own line before the new one (a list over two lines means the same). */
static size_t put_joined(rill_header *out, size_t n, const char *name, const rill_header *old,
                         const char *add, size_t add_len, char *scratch, size_t *used)
{
    size_t room = PROXY_SCRATCH - *used;
    if (!old) {
        out[n++] = field(name, add, add_len);
        return n;
    }
    if (old->value_len + 2 + add_len + 1 <= room) {
        char *s = scratch + *used;
        memcpy(s, old->value, old->value_len);
        memcpy(s + old->value_len, ", ", 2);
        memcpy(s + old->value_len + 2, add, add_len);
        s[old->value_len + 2 + add_len] = '\0';
        *used += old->value_len + 2 + add_len + 1;
        out[n++] = field(name, s, old->value_len + 2 + add_len);
        return n;
    }
    out[n++] = *old;
    out[n++] = field(name, add, add_len);
    return n;
}

size_t proxy_request_fields(const rill_server_request *req, const struct proxy_route *r, bool h2,
                            rill_header *out, char *scratch, char *cookies)
{
    const struct route_settings *set = &r->s;
    bool cookie_done = false;
    size_t count = rill_server_request_header_count(req);
    const rill_header *all = count ? rill_server_request_header_at(req, 0) : NULL;
    const char *peer = rill_server_session_peer(rill_server_stream_session(req));
    const char *scheme = rill_server_request_scheme(req);
    const char *authority = rill_server_request_authority(req);
    const char *via = strcmp(rill_server_request_version(req), "HTTP/2") == 0 ? "2 rill"
                      : strcmp(rill_server_request_version(req), "HTTP/1.0") == 0 ? "1.0 rill"
                                                                                   : "1.1 rill";
    size_t n = 0, used = 0;
    const rill_header *xff = NULL, *old_via = NULL, *old_forwarded = NULL;
    struct conn_fields conn;
    conn_fields(&conn, all, count);
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (NAME_IS(f, "te") && h2 && f->value_len == 8 &&
            strncasecmp((const char *)f->value, "trailers", 8) == 0) {
            out[n++] = *f; /* gRPC asks for trailers; only HTTP/2 carries this TE */
            continue;
        }
        /* Host comes from :authority below; Expect is answered here (the front sends its 100).
         * A forwarding field the proxy writes itself replaces the client's. */
        if (hop_by_hop(f) || NAME_IS(f, "host") || NAME_IS(f, "expect") ||
            (set->x_forwarded_proto && NAME_IS(f, "x-forwarded-proto")) ||
            (set->x_forwarded_host && NAME_IS(f, "x-forwarded-host")) ||
            named_by_connection(f, &conn) || proxy_edit_drops(&r->request, f))
            continue;
        if (cookies && NAME_IS(f, "cookie")) {
            if (!cookie_done)
                out[n++] = joined_cookies(req, cookies);
            cookie_done = true;
            continue;
        }
        if (set->x_forwarded_for && NAME_IS(f, "x-forwarded-for") && !xff) {
            xff = f;
            continue;
        }
        if (set->via && NAME_IS(f, "via") && !old_via) {
            old_via = f;
            continue;
        }
        if (set->forwarded && NAME_IS(f, "forwarded") && !old_forwarded) {
            old_forwarded = f;
            continue;
        }
        out[n++] = *f;
    }
    /* The edits may drop what the proxy adds too (a route that wants no Via, or its own Host). */
    rill_header probe;
#define WANTED(name) (probe = field(name, "", 0), !proxy_edit_drops(&r->request, &probe))
    if (authority && authority[0] && WANTED("host"))
        out[n++] = field("host", authority, strlen(authority));
    if (set->x_forwarded_for && WANTED("x-forwarded-for"))
        n = put_joined(out, n, "x-forwarded-for", xff, peer, strlen(peer), scratch, &used);
    if (set->x_forwarded_proto && WANTED("x-forwarded-proto"))
        out[n++] = field("x-forwarded-proto", scheme, strlen(scheme));
    if (set->x_forwarded_host && authority && authority[0] && WANTED("x-forwarded-host"))
        out[n++] = field("x-forwarded-host", authority, strlen(authority));
    if (set->forwarded && WANTED("forwarded")) {
        const char *element;
        size_t len = forwarded_element_memo(&element, peer, scheme, authority);
        if (len && used + len + 1 <= PROXY_SCRATCH) {
            char *s = scratch + used;
            memcpy(s, element, len + 1);
            used += len + 1;
            n = put_joined(out, n, "forwarded", old_forwarded, s, len, scratch, &used);
        } else if (old_forwarded) {
            out[n++] = *old_forwarded;
        }
    }
    if (set->via && WANTED("via"))
        n = put_joined(out, n, "via", old_via, via, strlen(via), scratch, &used);
#undef WANTED
    for (size_t i = 0; i < r->request.nappend; i++)
        out[n++] = r->request.append[i];
    return n;
}

/* RFC 9110 §6.5.1: fields a trailer section must not carry (framing, routing, request modifiers,
 * authentication, content handling), beside the hop-by-hop ones and pseudo-header fields. */
static bool not_a_trailer(const rill_header *f)
{
    static const char *const names[] = {
        "content-length", "host", "trailer", "authorization", "cookie", "set-cookie",
        "content-encoding", "content-type", "content-range", "cache-control", "expect",
        "max-forwards", "range", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "if-range", "forwarded", "x-forwarded-for", "x-forwarded-proto",
        "x-forwarded-host", "via"};
    if (f->name_len == 0 || f->name[0] == ':' || hop_by_hop(f))
        return true;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (name_is(f, names[i]))
            return true;
    return false;
}

size_t proxy_request_trailers(const rill_server_request *req, const struct proxy_route *r,
                              rill_header *out, size_t cap)
{
    size_t n = rill_server_request_trailer_count(req), k = 0;
    /* what the request's Connection fields name is hop-by-hop in its trailers too */
    struct conn_fields c;
    conn_fields(&c, rill_server_request_header_at(req, 0), rill_server_request_header_count(req));
    for (size_t i = 0; i < n && k < cap; i++) {
        const rill_header *f = rill_server_request_trailer_at(req, i);
        if (!not_a_trailer(f) && !named_by_connection(f, &c) && !proxy_edit_drops(&r->request, f))
            out[k++] = *f;
    }
    return k;
}
