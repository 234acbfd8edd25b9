/* Which fields cross the proxy: hop-by-hop fields stay on their connection (RFC 9110 §7.6.1),
 * the backend learns who asked (X-Forwarded-For, X-Forwarded-Proto) and through whom (Via). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy_internal.h"

static bool name_is(const rill_header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp((const char *)f->name, name, n) == 0;
}

/* Whether f's name is one of the tokens of a Connection field value. */
static bool listed_in(const rill_header *f, const rill_header *conn)
{
    const char *v = (const char *)conn->value, *end = v + conn->value_len;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *t = v;
        while (v < end && *v != ',' && *v != ' ' && *v != '\t')
            v++;
        if (v > t && (size_t)(v - t) == f->name_len &&
            strncasecmp(t, (const char *)f->name, f->name_len) == 0)
            return true;
    }
    return false;
}

static bool named_by_connection(const rill_header *f, const rill_header *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (name_is(&fields[i], "connection") && listed_in(f, &fields[i]))
            return true;
    return false;
}

static bool hop_by_hop(const rill_header *f)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade", "te", "http2-settings",
                                        "proxy-authenticate", "proxy-authorization"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (name_is(f, names[i]))
            return true;
    return false;
}

bool proxy_response_hop(const rill_header *f, const rill_header *fields, size_t n)
{
    return hop_by_hop(f) || named_by_connection(f, fields, n);
}

size_t proxy_fields_max(const rill_server_request *req)
{
    return rill_server_request_header_count(req) + 4; /* host, x-forwarded-for/-proto, via */
}

static rill_header field(const char *name, const char *value, size_t len)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, len, 0};
}

/* "old, add" in scratch when it fits; else false (the caller sends both as separate lines). */
static bool join(const rill_header *old, const char *add, char *scratch, size_t room, size_t *len)
{
    size_t n = strlen(add);
    if (old->value_len + 2 + n + 1 > room)
        return false;
    memcpy(scratch, old->value, old->value_len);
    memcpy(scratch + old->value_len, ", ", 2);
    memcpy(scratch + old->value_len + 2, add, n + 1);
    *len = old->value_len + 2 + n;
    return true;
}

size_t proxy_cookie_room(const rill_server_request *req)
{
    size_t count = rill_server_request_header_count(req), n = 0, room = 0;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (name_is(f, "cookie"))
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
        if (!name_is(f, "cookie"))
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

size_t proxy_request_fields(const rill_server_request *req, bool h2, rill_header *out,
                            char *scratch, char *cookies)
{
    bool cookie_done = false;
    size_t count = rill_server_request_header_count(req);
    const rill_header *all = count ? rill_server_request_header_at(req, 0) : NULL;
    const char *peer = rill_server_session_peer(rill_server_stream_session(req));
    const char *via = strcmp(rill_server_request_version(req), "HTTP/2") == 0 ? "2 rill"
                      : strcmp(rill_server_request_version(req), "HTTP/1.0") == 0 ? "1.0 rill"
                                                                                   : "1.1 rill";
    size_t n = 0, used = 0;
    const rill_header *xff = NULL, *old_via = NULL;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = rill_server_request_header_at(req, i);
        if (name_is(f, "te") && h2 && f->value_len == 8 &&
            strncasecmp((const char *)f->value, "trailers", 8) == 0) {
            out[n++] = *f; /* gRPC asks for trailers; only HTTP/2 carries this TE */
            continue;
        }
        /* Host comes from :authority below; Expect is answered here (the front sends its 100). */
        if (hop_by_hop(f) || name_is(f, "host") || name_is(f, "expect") ||
            name_is(f, "x-forwarded-proto") || named_by_connection(f, all, count))
            continue;
        if (cookies && name_is(f, "cookie")) {
            if (!cookie_done)
                out[n++] = joined_cookies(req, cookies);
            cookie_done = true;
            continue;
        }
        if (name_is(f, "x-forwarded-for") && !xff) {
            xff = f;
            continue;
        }
        if (name_is(f, "via") && !old_via) {
            old_via = f;
            continue;
        }
        out[n++] = *f;
    }
    const char *authority = rill_server_request_authority(req);
    if (authority && authority[0])
        out[n++] = field("host", authority, strlen(authority));
    size_t len;
    char *s = scratch;
    if (xff && join(xff, peer, s, PROXY_SCRATCH / 2, &len)) {
        out[n++] = field("x-forwarded-for", s, len);
        used = len + 1;
    } else {
        if (xff)
            out[n++] = *xff; /* too long to join here: a second line means the same */
        out[n++] = field("x-forwarded-for", peer, strlen(peer));
    }
    out[n++] = field("x-forwarded-proto", rill_server_request_scheme(req),
                     strlen(rill_server_request_scheme(req)));
    s = scratch + used;
    if (old_via && join(old_via, via, s, PROXY_SCRATCH - used, &len))
        out[n++] = field("via", s, len);
    else {
        if (old_via)
            out[n++] = *old_via;
        out[n++] = field("via", via, strlen(via));
    }
    return n;
}
