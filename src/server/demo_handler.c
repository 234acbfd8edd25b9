/* The built-in demo site: a page that says which protocol it came over, and /api/stats with the
 * live connection and stream counts the page polls. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"
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

/* The connection as a person reads it. Session ids pack the worker index above bit 40 (unique
 * across threads, see session.c); shown raw they are 13-digit numbers. The chat's welcome uses the
 * same text, so the page can tell whether its socket shares the page's connection. */
static void connection_label(const rill_server_session *sess, char *out, size_t cap)
{
    uint64_t id = rill_server_session_id(sess);
    snprintf(out, cap, "worker %" PRIu64 ", connection %" PRIu64, id >> 40,
             id & ((UINT64_C(1) << 40) - 1));
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

static void serve_demo(rill_server_request *req, rill_server_response *res, void *user)
{
    rill_server *srv = user;
    const char *path = rill_server_request_path(req);
    size_t plen = strcspn(path, "?");
    if (plen == 10 && memcmp(path, "/api/stats", 10) == 0) {
        rill_server_stats st;
        rill_server_get_stats(srv, &st);
        char body[160];
        snprintf(body, sizeof body,
                 "{\"connections\":%" PRIu64 ",\"streams\":%" PRIu64 ",\"requests\":%" PRIu64 "}\n",
                 st.connections, st.streams, st.requests);
        rill_server_response_set_header(res, "cache-control", "no-store");
        exchange_respond_simple(res, 200, "application/json", body);
        return;
    }
    const struct rill_demo_asset *a = rill_demo_asset_find(path, strlen(path));
    if (!a) {
        exchange_respond_simple(res, 404, "text/plain; charset=utf-8", "not found\n");
        return;
    }
    char stream[16], conn[64];
    snprintf(stream, sizeof stream, "%" PRId32, rill_server_stream_id(req));
    connection_label(rill_server_stream_session(req), conn, sizeof conn);
    const char *names[] = {"PROTOCOL", "CONNECTION", "STREAM"};
    const char *values[] = {protocol_label(rill_server_request_protocol(req)), conn, stream};
    size_t len;
    char *body = render(a, names, values, 3, &len);
    if (!body) {
        exchange_respond_simple(res, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    rill_server_response_set_header(res, "content-type", rill_mime_type(a->name));
    rill_server_response_set_header(res, "cache-control", "no-store");
    rill_server_response_end(res, body, len);
    free(body);
}

/* ---- /ws/echo and /ws/chat ---------------------------------------------------------------------- */

static void echo_message(rill_websocket *ws, unsigned opcode, const uint8_t *data, size_t len,
                         void *user)
{
    rill_websocket_send(ws, opcode, data, len);
}

static const rill_websocket_handler echo_handler = {.size = sizeof echo_handler,
                                                    .on_message = echo_message};

/* Chat members of this worker thread; a broadcast visits every worker's list. */
struct chat_member {
    rill_websocket *ws;
    struct chat_member *next;
};
static _Thread_local struct chat_member *chat_members;
static _Atomic unsigned chat_next_id;

/* Appends s as a JSON string body (without quotes), escaping what JSON requires. */
static size_t json_escape(char *out, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

struct chat_broadcast {
    size_t len;
    char text[];
};

static void chat_deliver(void *arg)
{
    struct chat_broadcast *b = arg;
    for (struct chat_member *m = chat_members; m; m = m->next)
        rill_websocket_send(m->ws, RILL_WS_OP_TEXT, b->text, b->len);
}

static void chat_broadcast(rill_server *srv, const char *json, size_t len)
{
    struct chat_broadcast *b = malloc(sizeof *b + len);
    if (!b)
        return;
    b->len = len;
    memcpy(b->text, json, len);
    if (rill_server_each_worker(srv, chat_deliver, free, b) < 0)
        free(b);
}

static int chat_open(rill_websocket *ws, rill_server_request *req, void *user)
{
    struct chat_member *m = malloc(sizeof *m);
    if (!m)
        return 503;
    unsigned id = atomic_fetch_add(&chat_next_id, 1) + 1;
    m->ws = ws;
    m->next = chat_members;
    chat_members = m;
    rill_websocket_set_user(ws, (void *)(uintptr_t)id);
    char welcome[320], conn[64];
    connection_label(rill_websocket_session(ws), conn, sizeof conn);
    int n = snprintf(welcome, sizeof welcome,
                     "{\"type\":\"welcome\",\"transport\":\"%s\",\"compressed\":%s,"
                     "\"connection\":\"%s\",\"text\":\"you are guest%u, over %s\"}",
                     rill_websocket_transport(ws), rill_websocket_compressed(ws) ? "true" : "false",
                     conn, id, strcmp(rill_websocket_transport(ws), "h2") == 0 ? "an HTTP/2 stream" : "HTTP/1.1");
    rill_websocket_send(ws, RILL_WS_OP_TEXT, welcome, (size_t)n);
    return 0;
}

static void chat_message(rill_websocket *ws, unsigned opcode, const uint8_t *data, size_t len,
                         void *user)
{
    if (opcode != RILL_WS_OP_TEXT || len > 4096)
        return;
    char *json = malloc(len * 6 + 96);
    if (!json)
        return;
    int n = sprintf(json, "{\"type\":\"message\",\"from\":\"guest%u\",\"text\":\"",
                    (unsigned)(uintptr_t)rill_websocket_user(ws));
    size_t o = (size_t)n + json_escape(json + n, data, len);
    memcpy(json + o, "\"}", 2);
    chat_broadcast(user, json, o + 2);
    free(json);
}

static void chat_close(rill_websocket *ws, unsigned code, void *user)
{
    for (struct chat_member **pp = &chat_members; *pp; pp = &(*pp)->next)
        if ((*pp)->ws == ws) {
            struct chat_member *m = *pp;
            *pp = m->next;
            free(m);
            break;
        }
}

static const rill_websocket_handler chat_handler = {
    .size = sizeof chat_handler,
    .on_open = chat_open,
    .on_message = chat_message,
    .on_close = chat_close,
};

/* ---- an RFC 8441 tunnel for `:protocol echo`: every byte comes back ------------------------------ */

static void tunnel_bytes(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user)
{
    if (len)
        rill_server_response_write(req, data, len);
    if (end) /* the peer's orderly close: close ours too */
        rill_server_response_end(req, NULL, 0);
}

static void tunnel_echo(rill_server_request *req, rill_server_response *res, void *user)
{
    rill_server_response_write(res, NULL, 0); /* 200, the tunnel is open */
    rill_server_request_on_body(req, tunnel_bytes, NULL);
}

int rill_server_demo(rill_server *s)
{
    int trc = rill_server_tunnel(s, "echo", tunnel_echo, NULL);
    if (trc < 0)
        return trc;
    int rc = rill_server_websocket(s, "/ws/echo", &echo_handler, NULL);
    if (rc == RILL_OK)
        rc = rill_server_websocket(s, "/ws/chat", &chat_handler, s);
    if (rc == RILL_OK)
        rc = rill_server_route(s, "/", serve_demo, s);
    return rc;
}
