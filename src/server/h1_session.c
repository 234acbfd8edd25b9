/* HTTP/1.1 connections: keep-alive, pipelining (one request at a time, the next parsed when the
 * response is done), chunked bodies both ways, Expect: 100-continue, and the h2c Upgrade. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/access_log.h"
#include "server/http_date.h"
#include "server/server_internal.h"

struct h1_state {
    rill_h1_parser *parser;
    rill_server_stream *current; /* the exchange being read or answered */
    bool request_done;    /* the parser reported END for current */
    bool response_done;   /* current's response is complete */
    bool close_after;     /* close once current is done */
    bool processing;      /* inside process(): do not re-enter */
    bool upgrade_h2;
    uint8_t *pending; /* bytes that arrived while current was being answered */
    size_t pending_len, pending_cap;
    uint64_t head_deadline; /* a request head has begun and must be complete by then (0: none) */
    uint8_t settings[256]; /* h2c: the decoded HTTP2-Settings payload */
    size_t settings_len;
};

static void process_pending(rill_server_session *sess);
static void arm_head_deadline(rill_server_session *sess, struct h1_state *h1);

/* A field from a NUL-terminated name and a value span. */
static rill_header h1_field(const char *name, const char *value, size_t value_len)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, value_len, 0};
}
static void reject(rill_server_session *sess, int status, const char *why);

/* The request head limit is the server's max_header_list_size, the same figure HTTP/2 announces
 * (there it counts the decoded fields, here the head's bytes); the request line keeps its own,
 * smaller limit (414). */
static rill_h1_parser *parser_new(const rill_server_session *sess)
{
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_head_size = session_worker(sess)->srv->opt.max_header_list_size;
    if (lim.max_request_line > lim.max_head_size)
        lim.max_request_line = lim.max_head_size;
    return rill_h1_parser_new(RILL_H1_REQUEST, &lim);
}

int h1_session_start(rill_server_session *sess)
{
    struct h1_state *h1 = calloc(1, sizeof *h1);
    if (!h1)
        return RILL_ERR_NOMEM;
    h1->parser = parser_new(sess);
    if (!h1->parser) {
        free(h1);
        return RILL_ERR_NOMEM;
    }
    sess->h1 = h1;
    conn_set_proto(&sess->c, &h1_proto);
    return RILL_OK;
}

void h1_session_free(rill_server_session *sess)
{
    struct h1_state *h1 = sess->h1;
    if (!h1)
        return;
    rill_h1_parser_free(h1->parser);
    free(h1->pending);
    free(h1);
    sess->h1 = NULL;
}

/* Between requests the parser (with its head buffer) is dropped; it comes back with the next byte.
 * Only between requests: a head that has begun lives in the parser alone. */
static void proto_trim(struct conn *c)
{
    struct h1_state *h1 = session_of(c)->h1;
    if (h1->current || h1->pending_len || !h1->parser || !rill_h1_parser_idle(h1->parser))
        return;
    rill_h1_parser_free(h1->parser);
    h1->parser = NULL;
    free(h1->pending);
    h1->pending = NULL;
    h1->pending_cap = 0;
    worker_pools_release_soon(session_worker(session_of(c)));
}

static uint64_t proto_deadline(const struct conn *c)
{
    const struct h1_state *h1 = session_of(c)->h1;
    return h1->head_deadline ? h1->head_deadline : UINT64_MAX;
}

static void proto_timeout(struct conn *c, uint64_t now)
{
    rill_server_session *sess = session_of(c);
    struct h1_state *h1 = sess->h1;
    if (h1->head_deadline && now >= h1->head_deadline && !h1->current)
        reject(sess, 408, "the request head took too long");
}

void h1_session_head_expired(rill_server_session *sess)
{
    struct h1_state *h1 = sess->h1;
    if (h1 && !h1->current && h1->parser && !rill_h1_parser_idle(h1->parser))
        reject(sess, 408, "the request head took too long");
}

/* The current response says connection: close, and the connection ends after it. */
static void proto_shutdown(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    if (!sess->open_streams) {
        session_close(sess);
        return;
    }
    sess->h1->close_after = true;
    if (sess->h1->current)
        sess->h1->current->keep_alive = false;
}

/* Refused requests are logged too, with what arrived of their request line (as nginx does). */
static void log_rejected(rill_server_session *sess, int status)
{
    if (session_worker(sess)->srv->access_log_fd < 0)
        return;
    size_t len = 0;
    const char *line = sess->h1->parser ? rill_h1_parser_start_line(sess->h1->parser, &len) : "";
    struct rill_access_log_entry e = {
        .remote_addr = session_peer(sess),
        .when = time(NULL),
        .raw_line = line,
        .raw_line_len = len,
        .status = status,
    };
    access_log_append(sess, &e);
}

/* Whether the request being refused is a HEAD (as far as its request line arrived). */
static bool refusing_head(const rill_server_session *sess)
{
    size_t len = 0;
    const char *line = sess->h1->parser ? rill_h1_parser_start_line(sess->h1->parser, &len) : "";
    return len >= 5 && memcmp(line, "HEAD ", 5) == 0;
}

/* An error before any response was started: a plain-text answer, then close. */
static void reject(rill_server_session *sess, int status, const char *why)
{
    log_rejected(sess, status);
    char date[RILL_HTTP_DATE_LEN + 1], length[24];
    rill_http_date_format(time(NULL), date);
    size_t body_len = strlen(why) + 1; /* and a newline */
    int n = snprintf(length, sizeof length, "%zu", body_len);
    const rill_header fields[] = {
        h1_field("content-type", "text/plain; charset=utf-8", 25),
        h1_field("content-length", length, (size_t)n),
        h1_field("connection", "close", 5),
        h1_field("date", date, RILL_HTTP_DATE_LEN),
        h1_field("server", "rill", 4),
    };
    uint8_t head[256];
    size_t head_len;
    if (rill_h1_write_response_head(head, sizeof head, &head_len, status, NULL, fields,
                                    sizeof fields / sizeof *fields) == RILL_OK) {
        /* an answer to HEAD has no body (RFC 9112 §6.3), even a refusal */
        struct iovec iov[] = {{head, head_len}, {(void *)why, body_len - 1}, {(void *)"\n", 1}};
        rill_io_conn_writev(sess->c.io, iov, refusing_head(sess) ? 1 : 3);
    }
    session_close(sess);
}

static void exchange_done(rill_server_session *sess)
{
    struct h1_state *h1 = sess->h1;
    rill_server_stream *st = h1->current;
    bool keep = st->keep_alive && !h1->close_after;
    h1->current = NULL;
    h1->request_done = h1->response_done = false;
    h1->head_deadline = 0;
    exchange_closed(st, true);
    if (!keep)
        session_close(sess);
    else if (!h1->processing)
        process_pending(sess);
}

/* Request fields the HTTP/2 way: pseudo-headers first, then the fields as received. */
static int start_request(rill_server_session *sess, const rill_h1_head *head)
{
    struct h1_state *h1 = sess->h1;
    size_t n = head->nfields + 4;
    rill_header stack[64];
    rill_header *f = n <= 64 ? stack : malloc(n * sizeof *f);
    if (!f)
        return RILL_ERR_NOMEM;
    size_t k = 0;
    const char *target = head->target, *authority = head->host;
    size_t target_len = head->target_len, authority_len = head->host_len;
    if (head->target_form == RILL_H1_TARGET_ABSOLUTE) { /* http://host[:port]/path */
        const char *a = memchr(target, ':', target_len);
        a = a ? a + 3 : target;
        const char *slash = memchr(a, '/', (size_t)(target + target_len - a));
        authority = a;
        authority_len = (size_t)((slash ? slash : target + target_len) - a);
        target = slash ? slash : "/";
        target_len = slash ? (size_t)(head->target + head->target_len - slash) : 1;
    }
    f[k++] = (rill_header){(const uint8_t *)":method", 7, (const uint8_t *)head->method,
                           head->method_len, 0};
    if (head->target_form == RILL_H1_TARGET_AUTHORITY) {
        authority = target;
        authority_len = target_len;
    } else {
        const char *scheme = sess->tls ? "https" : "http";
        f[k++] = (rill_header){(const uint8_t *)":scheme", 7, (const uint8_t *)scheme,
                               strlen(scheme), 0};
        f[k++] = (rill_header){(const uint8_t *)":path", 5, (const uint8_t *)target, target_len, 0};
    }
    if (authority)
        f[k++] = (rill_header){(const uint8_t *)":authority", 10, (const uint8_t *)authority,
                               authority_len, 0};
    memcpy(f + k, head->fields, head->nfields * sizeof *f);
    k += head->nfields;

    rill_server_stream *st = exchange_new(sess, &h1_exchange_ops, (int32_t)++sess->requests);
    int rc = st ? exchange_set_request(st, f, k, head->version_minor ? "HTTP/1.1" : "HTTP/1.0", 0)
                : RILL_ERR_NOMEM;
    if (f != stack)
        free(f);
    if (rc < 0) {
        if (st)
            exchange_closed(st, false);
        return rc;
    }
    h1->current = st;
    st->keep_alive = head->keep_alive && !h1->close_after;

    rill_h1_ws_upgrade up;
    int ws = rill_h1_websocket_upgrade(head, &up);
    st->ws_request = ws == 1                       ? WS_VALID
                     : ws == RILL_ERR_PROTOCOL     ? WS_MALFORMED
                     : ws == RILL_ERR_UNSUPPORTED ? WS_WRONG_VERSION
                                                  : WS_NOT_ASKED;
    size_t settings_len = 0;
    /* Only a request without a body is upgraded (RFC 9113 §3.1 lets a server ignore Upgrade):
     * the body would otherwise have to be held whole until the switch. */
    if (!sess->tls && ws == 0 && head->body == RILL_H1_BODY_NONE && rill_h1_h2c_upgrade(head, h1->settings, sizeof h1->settings, &settings_len) == 1) {
        h1->upgrade_h2 = true;
        h1->settings_len = settings_len;
        return RILL_OK; /* dispatched as HTTP/2 once the request is read */
    }
    exchange_dispatch(st);
    if (h1->current == st && head->expect_continue && head->body != RILL_H1_BODY_NONE) {
        if (!st->head_sent && head->version_minor >= 1) {
            rill_io_conn_write(sess->c.io, RILL_H1_CONTINUE_RESPONSE,
                               sizeof RILL_H1_CONTINUE_RESPONSE - 1);
        } else {
            st->keep_alive = false; /* answered without the body: it may never come */
        }
    }
    return RILL_OK;
}

/* The h2c Upgrade: 101, then the request goes to the HTTP/2 engine as stream 1 (without its
 * connection-specific fields), which reports it like any other request; this HTTP/1.1 exchange
 * is dropped unanswered. */
static void switch_to_h2(rill_server_session *sess, const rill_h1_head *head, const uint8_t *rest,
                         size_t rest_len)
{
    struct h1_state *h1 = sess->h1;
    rill_server_stream *st = h1->current;
    rill_header *f = malloc((st->nfields + 4) * sizeof *f);
    if (!f) {
        session_close(sess);
        return;
    }
    size_t n = 0;
#define PSEUDO(name, value)                                                                        \
    f[n++] = (rill_header){(const uint8_t *)(name), strlen(name), (const uint8_t *)(value),        \
                           strlen(value), 0}
    PSEUDO(":method", st->method);
    PSEUDO(":scheme", st->scheme);
    PSEUDO(":path", st->path);
    PSEUDO(":authority", st->authority);
#undef PSEUDO
    /* st->fields are head->fields lowercased, in the same order */
    for (size_t i = 0; i < st->nfields && i < head->nfields; i++)
        if (!rill_h1_is_connection_specific(head, &head->fields[i]) &&
            !(st->fields[i].name_len == 4 && memcmp(st->fields[i].name, "host", 4) == 0))
            f[n++] = st->fields[i];
    rill_io_conn_write(sess->c.io, RILL_H1_H2C_SWITCHING_RESPONSE,
                       sizeof RILL_H1_H2C_SWITCHING_RESPONSE - 1);
    uint8_t settings[sizeof h1->settings];
    size_t settings_len = h1->settings_len;
    memcpy(settings, h1->settings, settings_len);
    h1->current = NULL;
    h1_session_free(sess);
    sess->protocol = RILL_PROTOCOL_H2C;
    int rc = h2_session_start(sess, settings, settings_len, f, n);
    free(f);
    exchange_closed(st, false);
    if (rc < 0) {
        session_close(sess);
        return;
    }
    if (rest_len)
        h2_session_data(sess, rest, rest_len);
}

/* After a tunnel's 101 (tunnel.c) the connection runs tunnel_proto: the HTTP/1.1 state goes, the
 * bytes held behind the request and those of this read (rest) are the tunnel's first. */
static void enter_tunnel(rill_server_session *sess, const uint8_t *rest, size_t rest_len)
{
    struct h1_state *h1 = sess->h1;
    uint8_t *held = h1->pending;
    size_t held_len = h1->pending_len;
    h1->pending = NULL;
    h1->pending_len = h1->pending_cap = 0;
    h1->current = NULL;
    h1_session_free(sess);
    conn_set_proto(&sess->c, &tunnel_proto);
    if (!sess->tunnel->body_paused)
        rill_io_conn_pause_read(sess->c.io, false);
    if (held_len)
        tunnel_proto.data(&sess->c, held, held_len);
    free(held);
    if (rest_len && sess->c.proto == &tunnel_proto && !sess->c.closing)
        tunnel_proto.data(&sess->c, rest, rest_len);
    if (sess->peer_eof && sess->c.proto == &tunnel_proto && !sess->c.closing)
        tunnel_peer_ended(sess); /* the client's FIN came before the switch */
}

void h1_session_tunnel_ready(rill_server_session *sess)
{
    struct h1_state *h1 = sess->h1;
    if (h1 && !h1->processing && h1->request_done && h1->current == sess->tunnel)
        enter_tunnel(sess, NULL, 0);
}

/* The client's FIN while its Upgrade waits for an answer: a tunnel may still open (the FIN is
 * then its body's end, a half-close: enter_tunnel hands on the bytes held meanwhile first), else
 * the answer goes and the connection ends. Anything else closes as ever. */
static bool proto_peer_eof(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    struct h1_state *h1 = sess->h1;
    size_t len;
    if (!h1 || !h1->current || !h1->request_done || h1->response_done ||
        !rill_server_request_header(h1->current, "upgrade", &len))
        return false;
    sess->peer_eof = true;
    h1->close_after = true;
    h1->current->keep_alive = false;
    return true;
}

/* Parses as far as the current exchange allows; returns the bytes consumed. */
static size_t process(rill_server_session *sess, const uint8_t *data, size_t len)
{
    struct h1_state *h1 = sess->h1;
    size_t off = 0;
    h1->processing = true;
    while (sess->h1 == h1 && !sess->c.closing) {
        if (h1->current && h1->request_done) {
            if (!h1->response_done)
                break; /* pipelined bytes wait for this response */
            exchange_done(sess);
            continue;
        }
        size_t used = 0;
        rill_h1_event ev;
        int rc = rill_h1_parse(h1->parser, data + off, len - off, &used, &ev);
        off += used;
        if (rc < 0) {
            rill_h1_error err = rill_h1_parser_error(h1->parser);
            if (h1->current && h1->current->head_sent) {
                session_close(sess);
            } else {
                if (h1->current)
                    exchange_closed(h1->current, false), h1->current = NULL;
                reject(sess, rill_h1_error_status(err), rill_h1_error_text(err));
            }
            off = len;
            break;
        }
        if (ev.type == RILL_H1_EV_NONE)
            break;
        if (ev.type == RILL_H1_EV_HEAD) {
            h1->head_deadline = 0;
            if (start_request(sess, ev.head) < 0) {
                reject(sess, 500, "out of memory");
                off = len;
                break;
            }
        } else if (ev.type == RILL_H1_EV_BODY && h1->current) {
            exchange_body(h1->current, ev.data, ev.len);
        } else if (ev.type == RILL_H1_EV_TRAILERS && h1->current) {
            if (exchange_request_trailers(h1->current, ev.fields, ev.nfields, false) < 0) {
                session_close(sess); /* out of memory: a cut request, never one without them */
                off = len;
                break;
            }
        } else if (ev.type == RILL_H1_EV_END && h1->current) {
            h1->request_done = true;
            if (sess->tunnel && sess->tunnel == h1->current) {
                /* 101 sent for a tunnel: the rest of the bytes are its own (its body's end is
                 * the connection's) */
                h1->processing = false;
                enter_tunnel(sess, data + off, len - off);
                return len;
            }
            exchange_body_end(h1->current);
            if (sess->websocket) { /* 101 sent: the rest of the bytes are WebSocket frames */
                exchange_closed(h1->current, true);
                h1->current = NULL;
                h1->processing = false;
                if (len > off)
                    sess->c.proto->data(&sess->c, data + off, len - off); /* ws_proto's */
                return len;
            }
            if (h1->upgrade_h2) {
                h1->processing = false;
                switch_to_h2(sess, ev.head, data + off, len - off);
                return len;
            }
        }
    }
    if (sess->h1 == h1)
        h1->processing = false;
    return off;
}

static int hold(struct h1_state *h1, const uint8_t *data, size_t len)
{
    if (h1->pending_len + len > h1->pending_cap) {
        size_t cap = (h1->pending_len + len) * 2;
        uint8_t *grown = realloc(h1->pending, cap);
        if (!grown)
            return RILL_ERR_NOMEM;
        h1->pending = grown;
        h1->pending_cap = cap;
    }
    memcpy(h1->pending + h1->pending_len, data, len);
    h1->pending_len += len;
    return RILL_OK;
}

void h1_session_data(rill_server_session *sess, const uint8_t *data, size_t len)
{
    struct h1_state *h1 = sess->h1;
    if (!h1->parser && !(h1->parser = parser_new(sess))) {
        session_close(sess);
        return;
    }
    if (h1->pending_len) { /* keep order: append behind what is already waiting */
        if (hold(h1, data, len) < 0)
            session_close(sess);
        return;
    }
    size_t used = process(sess, data, len);
    if (used < len && sess->h1 == h1 && !sess->c.closing) {
        if (hold(h1, data + used, len - used) < 0)
            session_close(sess);
        else
            rill_io_conn_pause_read(sess->c.io, true); /* back-pressure while we answer */
    }
    arm_head_deadline(sess, h1);
}

/* A request head that has begun must be complete within header_timeout_ms (slowloris); the
 * clock starts with its first byte, whichever read or pipelined leftover brought it. */
static void arm_head_deadline(rill_server_session *sess, struct h1_state *h1)
{
    if (sess->h1 != h1 || sess->c.closing || h1->current || h1->head_deadline || !h1->parser ||
        rill_h1_parser_idle(h1->parser))
        return;
    struct worker *w = session_worker(sess);
    h1->head_deadline = rill_io_loop_now_ms(w->loop) + w->srv->opt.header_timeout_ms;
}

static void process_pending(rill_server_session *sess)
{
    struct h1_state *h1 = sess->h1;
    if (!h1 || !h1->pending_len || sess->c.closing) {
        if (h1 && !sess->c.closing)
            rill_io_conn_pause_read(sess->c.io, false);
        return;
    }
    uint8_t *buf = h1->pending;
    size_t len = h1->pending_len;
    h1->pending = NULL;
    h1->pending_len = h1->pending_cap = 0;
    size_t used = process(sess, buf, len);
    if (sess->h1 == h1 && used < len && !sess->c.closing)
        hold(h1, buf + used, len - used);
    free(buf);
    if (sess->h1 == h1 && !h1->pending_len && !sess->c.closing)
        rill_io_conn_pause_read(sess->c.io, false);
    arm_head_deadline(sess, h1);
}

/* ---- exchange ops ------------------------------------------------------------------------------ */

/* The response head: st's fields plus the framing and connection fields the transport adds. */
static int write_head(rill_server_stream *st, const rill_header *extra, size_t nextra)
{
    size_t n = st->resp_fields.count;
    rill_header stack[40];
    rill_header *f = n + nextra <= 40 ? stack : malloc((n + nextra) * sizeof *f);
    if (!f)
        return RILL_ERR_NOMEM;
    size_t bytes = 64;
    if (n)
        memcpy(f, st->resp_fields.items, n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len + 4;
    for (size_t i = 0; i < nextra; i++) {
        f[n++] = extra[i];
        bytes += extra[i].name_len + extra[i].value_len + 4;
    }
    uint8_t small[4096];
    uint8_t *buf = bytes <= sizeof small ? small : malloc(bytes);
    size_t len = 0;
    int rc = buf ? rill_h1_write_response_head(buf, bytes, &len, st->status, NULL, f, n)
                 : RILL_ERR_NOMEM;
    if (rc == RILL_OK)
        rc = rill_io_conn_write(st->sess->c.io, buf, len);
    if (buf != small)
        free(buf);
    if (f != stack)
        free(f);
    return rc;
}

static int h1_send_head(rill_server_stream *st, bool end_stream)
{
    bool http10 = strcmp(st->version, "HTTP/1.0") == 0;
    rill_header extra[2];
    size_t n = 0;
    if (!(st->resp_fields.has & HAS_CONTENT_LENGTH) && exchange_body_allowed(st) &&
        !end_stream) {
        if (http10)
            st->keep_alive = false; /* the body ends with the connection */
        else {
            st->chunked = true;
            extra[n++] = h1_field("transfer-encoding", "chunked", 7);
        }
    }
    if (!st->keep_alive || st->sess->h1->close_after)
        extra[n++] = h1_field("connection", "close", 5);
    else if (http10)
        extra[n++] = h1_field("connection", "keep-alive", 10);
    return write_head(st, extra, n);
}

/* 101 to `protocol`; the bytes after this request then belong to whoever switched. */
static int h1_switch_protocols(rill_server_stream *st, const char *protocol)
{
    const rill_header extra[] = {
        h1_field("upgrade", protocol, strlen(protocol)),
        h1_field("connection", "Upgrade", 7),
    };
    return write_head(st, extra, 2);
}

static int h1_send_informational(rill_server_stream *st, int status, const rill_header *fields, size_t n)
{
    if (strcmp(st->version, "HTTP/1.0") == 0)
        return RILL_OK; /* HTTP/1.0 clients do not expect 1xx */
    if (n > 32)
        return RILL_ERR_LIMIT;
    size_t bytes = 64;
    for (size_t i = 0; i < n; i++)
        bytes += fields[i].name_len + fields[i].value_len + 4;
    uint8_t *buf = malloc(bytes);
    size_t len;
    int rc = buf ? rill_h1_write_response_head(buf, bytes, &len, status, NULL, fields, n)
                 : RILL_ERR_NOMEM;
    if (rc == RILL_OK)
        rc = rill_io_conn_write(st->sess->c.io, buf, len);
    free(buf);
    return rc;
}

static int h1_send_body(rill_server_stream *st, const void *data, size_t len)
{
    int rc;
    if (st->chunked) {
        uint8_t head[RILL_H1_CHUNK_HEADER_MAX];
        size_t hlen = 0;
        rill_h1_write_chunk_header(head, sizeof head, &hlen, len);
        struct iovec iov[3] = {{head, hlen}, {(void *)data, len}, {(void *)"\r\n", 2}};
        rc = rill_io_conn_writev(st->sess->c.io, iov, 3);
    } else {
        rc = rill_io_conn_write(st->sess->c.io, data, len);
    }
    if (rc < 0)
        return rc;
    /* Strictly above, as the io layer counts it: at exactly the mark no on_drain would come. */
    return rill_io_conn_queued(st->sess->c.io) > EXCHANGE_HIGH_WATER ? RILL_ERR_WOULD_BLOCK : RILL_OK;
}

static int h1_finish(rill_server_stream *st)
{
    if (st->end_sent)
        return RILL_OK;
    st->end_sent = true;
    int rc = RILL_OK;
    if (st->chunked && st->trailers.count == 0) {
        static const char last[] = "0\r\n\r\n";
        rc = rill_io_conn_write(st->sess->c.io, last, sizeof last - 1);
    } else if (st->chunked) {
        size_t n = st->trailers.count;
        const rill_header *f = st->trailers.items;
        size_t bytes = 16;
        for (size_t i = 0; i < n; i++)
            bytes += f[i].name_len + f[i].value_len + 4;
        uint8_t *buf = malloc(bytes);
        size_t len;
        rc = buf ? rill_h1_write_last_chunk(buf, bytes, &len, f, n) : RILL_ERR_NOMEM;
        if (rc == RILL_OK)
            rc = rill_io_conn_write(st->sess->c.io, buf, len);
        free(buf);
    }
    rill_server_session *sess = st->sess;
    struct h1_state *h1 = sess->h1;
    if (h1 && h1->current == st) {
        h1->response_done = true;
        if (h1->request_done && !h1->processing)
            exchange_done(sess);
    }
    return rc;
}

/* File pieces come from the thread's buffer pool (buf_pool.c); write_ref's release passes only
 * the buffer, and every piece has the pool size FILE_CHUNK. */
static void piece_put(void *buf)
{
    buf_pool_put(buf, FILE_CHUNK);
}

/* Reads the next pieces of a file while the socket keeps up; the rest waits for on_drain. */
static int pump_file(rill_server_stream *st)
{
    rill_io_conn *conn = st->sess->c.io;
    /* <= so that stopping always leaves the queue above io's high-water mark: on_drain follows */
    while (st->file_left && rill_io_conn_queued(conn) <= EXCHANGE_HIGH_WATER) {
        size_t want = st->file_left < FILE_CHUNK ? (size_t)st->file_left : FILE_CHUNK;
        uint8_t *buf = buf_pool_get(session_worker(st->sess), FILE_CHUNK);
        if (!buf) { /* the head promised a length that cannot be kept now: end, do not stall */
            session_close(st->sess);
            return RILL_ERR_NOMEM;
        }
        ssize_t got = pread(st->file_fd, buf, want, (off_t)st->file_off);
        if (got <= 0) { /* the file shrank or failed: the length promised cannot be kept */
            piece_put(buf);
            session_close(st->sess);
            return RILL_ERR_IO;
        }
        st->file_off += (uint64_t)got;
        st->file_left -= (uint64_t)got;
        int rc = rill_io_conn_write_ref(conn, buf, (size_t)got, piece_put, buf);
        if (rc < 0)
            return rc;
    }
    return st->file_left ? RILL_OK : h1_finish(st);
}

static int h1_send_file(rill_server_stream *st)
{
    return pump_file(st);
}

static void proto_drain(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    rill_server_stream *st = sess->h1 ? sess->h1->current : NULL;
    if (!st)
        return;
    if (st->file_left && st->file_fd >= 0)
        pump_file(st);
    else
        exchange_drained(st);
}

static void h1_pause_body(rill_server_stream *st, bool paused)
{
    rill_io_conn_pause_read(st->sess->c.io, paused);
}

const struct exchange_ops h1_exchange_ops = {
    .send_head = h1_send_head,
    .switch_protocols = h1_switch_protocols,
    .send_informational = h1_send_informational,
    .send_body = h1_send_body,
    .send_file = h1_send_file,
    .finish = h1_finish,
    .pause_body = h1_pause_body,
};

/* ---- the connection layer's view (h1_proto) ------------------------------------------------ */

static void proto_data(struct conn *c, const uint8_t *data, size_t len)
{
    h1_session_data(session_of(c), data, len);
}

static void proto_free(struct conn *c)
{
    h1_session_free(session_of(c));
}

const struct conn_proto h1_proto = {
    .name = "HTTP/1.1",
    .data = proto_data,
    .drain = proto_drain,
    .deadline = proto_deadline,
    .timeout = proto_timeout,
    .busy = session_busy,
    .trim = proto_trim,
    .shutdown = proto_shutdown,
    .peer_eof = proto_peer_eof,
    .free = proto_free,
    .arm_after_data = true,
};
