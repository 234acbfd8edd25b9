/* The built-in demo site: a page that says which protocol it came over, and /api/stats with the
 * live connection and stream counts the page polls. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/demo_assets.h"
#include "server/mime.h"
#include "server/server_internal.h"

static const char *protocol_label(rill_protocol p)
{
    switch (p) {
    case RILL_PROTOCOL_H2:
        return "h2";
    case RILL_PROTOCOL_H2C:
        return "h2c";
    default:
        return "HTTP/1.1";
    }
}

/* Copies the template replacing {{NAME}} placeholders; returns a malloc'd body. */
static char *render(const struct rill_demo_asset *a, const char *const *names,
                    const char *const *values, size_t n, size_t *out_len)
{
    size_t cap = a->size + 256;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    const char *p = (const char *)a->data, *end = p + a->size;
    while (p < end) {
        const char *open = strstr(p, "{{");
        if (!open || open >= end)
            open = end;
        memcpy(out + o, p, (size_t)(open - p));
        o += (size_t)(open - p);
        if (open == end)
            break;
        const char *close = strstr(open, "}}");
        bool replaced = false;
        for (size_t i = 0; close && i < n; i++) {
            size_t nl = strlen(names[i]);
            if ((size_t)(close - open - 2) == nl && memcmp(open + 2, names[i], nl) == 0) {
                size_t vl = strlen(values[i]);
                if (o + vl + (size_t)(end - close) + 1 > cap) {
                    cap = o + vl + (size_t)(end - close) + 256;
                    char *grown = realloc(out, cap);
                    if (!grown) {
                        free(out);
                        return NULL;
                    }
                    out = grown;
                }
                memcpy(out + o, values[i], vl);
                o += vl;
                replaced = true;
            }
        }
        if (!replaced) { /* not ours: keep the braces */
            out[o++] = '{';
            p = open + 1;
            continue;
        }
        p = close + 2;
    }
    *out_len = o;
    return out;
}

static void serve_demo(rill_request *req, rill_response *res, void *user)
{
    rill_server *srv = user;
    const char *path = rill_request_path(req);
    size_t plen = strcspn(path, "?");
    if (plen == 10 && memcmp(path, "/api/stats", 10) == 0) {
        rill_server_stats st;
        rill_server_get_stats(srv, &st);
        char body[160];
        snprintf(body, sizeof body,
                 "{\"connections\":%" PRIu64 ",\"streams\":%" PRIu64 ",\"requests\":%" PRIu64 "}\n",
                 st.connections, st.streams, st.requests);
        rill_response_set_header(res, "cache-control", "no-store");
        exchange_respond_simple(res, 200, "application/json", body);
        return;
    }
    const struct rill_demo_asset *a = rill_demo_asset_find(path, strlen(path));
    if (!a) {
        exchange_respond_simple(res, 404, "text/plain; charset=utf-8", "not found\n");
        return;
    }
    char stream[16];
    snprintf(stream, sizeof stream, "%" PRId32, rill_stream_id(req));
    const char *names[] = {"PROTOCOL", "CONNECTION", "STREAM"};
    const char *values[] = {protocol_label(rill_request_protocol(req)),
                            rill_session_peer(rill_stream_session(req)), stream};
    size_t len;
    char *body = render(a, names, values, 3, &len);
    if (!body) {
        exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    rill_response_set_header(res, "content-type", rill_mime_type(a->name));
    rill_response_set_header(res, "cache-control", "no-store");
    rill_response_end(res, body, len);
    free(body);
}

int rill_server_demo(rill_server *s)
{
    return rill_server_route(s, "/", serve_demo, s);
}
