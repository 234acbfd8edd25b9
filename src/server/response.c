/* The response side of an exchange: status, fields and trailers (validated), the standard
 * fields, and the body written, ended or streamed from a file, through the transport's
 * exchange_ops (HTTP/1.1 or HTTP/2 framing). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http_chars.h"
#include "common/small_copy.h"
#include "server/http_date.h"
#include "server/server_internal.h"

int rill_server_response_set_status(rill_server_response *res, int status)
{
    if (res->head_sent)
        return RILL_ERR_STATE;
    if (status < 200 || status > 999)
        return RILL_ERR_INVALID_ARG;
    res->status = status;
    return RILL_OK;
}

static bool connection_specific(const char *name, size_t len)
{
    switch (len) { /* by length first: most names are none of these */
    case 2: return strncasecmp(name, "te", 2) == 0; /* a request's field (RFC 9113 section 8.2.2) */
    case 7: return strncasecmp(name, "upgrade", 7) == 0;
    case 10: return strncasecmp(name, "connection", 10) == 0 || strncasecmp(name, "keep-alive", 10) == 0;
    case 16: return strncasecmp(name, "proxy-connection", 16) == 0;
    case 17: return strncasecmp(name, "transfer-encoding", 17) == 0;
    default: return false;
    }
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* A settable response field: a token name that is not connection-specific; a value without
 * control characters other than HTAB and without leading or trailing whitespace (RFC 9110 §5.5,
 * RFC 9113 §8.2.1: the same field is valid on both transports). NUL is neither. A content-length
 * is digits. */
static bool valid_field(const char *name, size_t n, const char *value, size_t v)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= http_tchar[(uint8_t)name[i]] == 0;
    if (n == 0 || bad)
        return false;
    if (v && (value[0] == ' ' || value[0] == '\t' || value[v - 1] == ' ' || value[v - 1] == '\t'))
        return false;
    if (n == 14 && strncasecmp(name, "content-length", 14) == 0 && !digits(value, v))
        return false;
    return http_value_ctl_span(value, v) == v && !connection_specific(name, n);
}

/* The list flags of a checked field: valid, and whether its name is lowercase already. */
static uint32_t checked_flags(const char *name, size_t n)
{
    uint64_t upper = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* eight a step: a byte lower8 changes is an uppercase letter */
        uint64_t x;
        memcpy(&x, name + i, 8);
        upper |= lower8(x) ^ x;
    }
    for (; i < n; i++)
        upper |= (unsigned)((uint8_t)name[i] - 'A') < 26u;
    return RILL_HEADER_VALID | HEADER_VOUCHED | (upper ? 0 : HEADER_NAME_LOWER);
}

/* A field from the application: checked once here, replacing earlier ones of its name if asked. */
static int add_checked(rill_server_response *res, struct header_list *list, const char *name,
                       const char *value, bool replace)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    if (!valid_field(name, nlen, value, vlen))
        return RILL_ERR_INVALID_ARG;
    if (replace)
        header_list_remove(list, name);
    return header_list_add(res, list, name, nlen, value, vlen, checked_flags(name, nlen));
}

int rill_server_response_add_header(rill_server_response *res, const char *name, const char *value)
{
    return res->head_sent ? RILL_ERR_STATE : add_checked(res, &res->resp_fields, name, value, false);
}

int rill_server_response_add_headers(rill_server_response *res, const rill_header *fields, size_t n)
{
    if (res->head_sent)
        return RILL_ERR_STATE;
    for (size_t i = 0; i < n; i++) /* all or none: every field is checked before one is added */
        if (!valid_field((const char *)fields[i].name, fields[i].name_len, (const char *)fields[i].value,
                         fields[i].value_len))
            return RILL_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        const char *name = (const char *)fields[i].name;
        if (header_list_add(res, &res->resp_fields, name, fields[i].name_len, (const char *)fields[i].value,
                            fields[i].value_len, checked_flags(name, fields[i].name_len)) != RILL_OK)
            return RILL_ERR_NOMEM;
    }
    return RILL_OK;
}

int rill_server_response_set_header(rill_server_response *res, const char *name, const char *value)
{
    return res->head_sent ? RILL_ERR_STATE : add_checked(res, &res->resp_fields, name, value, true);
}

int rill_server_response_add_trailer(rill_server_response *res, const char *name, const char *value)
{
    return res->ended ? RILL_ERR_STATE : add_checked(res, &res->trailers, name, value, false);
}

static int informational(rill_server_response *res, int status, const rill_header *fields,
                                size_t count)
{
    if (res->head_sent || status < 100 || status > 199 || status == 101)
        return RILL_ERR_STATE;
    return res->ops->send_informational(res, status, fields, count);
}

bool exchange_body_allowed(const rill_server_stream *st)
{
    return !st->head_request && st->status != 204 && st->status != 304;
}

/* Decimal digits of v (no snprintf on the per-response path). */
static size_t format_decimal(char out[24], uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

/* The Date field's value now, formatted once per second per thread; *sec: its second. */
static const char *date_now(time_t *sec)
{
    static _Thread_local time_t cached_sec;
    static _Thread_local char cached[RILL_HTTP_DATE_LEN + 1];
    time_t now = time(NULL);
    if (now != cached_sec) {
        rill_http_date_format(now, cached);
        cached_sec = now;
    }
    *sec = now;
    return cached;
}

static void add_standard_fields(rill_server_stream *st)
{
    if (!(st->resp_fields.has & HAS_DATE)) {
        time_t sec;
        const char *date = date_now(&sec);
        exchange_add_field(st, "date", 4, date, RILL_HTTP_DATE_LEN); /* copied: changes each second */
        st->head_date_sec = sec;
    } else {
        st->head_serial = 0; /* a Date of someone else's: the head is not named by the serial */
    }
    if (!(st->resp_fields.has & HAS_SERVER))
        exchange_add_field_ref(st, "server", 6, "rill", 4);
    else
        st->head_serial = 0;
}

static int send_head(rill_server_stream *st, bool end_stream)
{
    add_standard_fields(st);
    st->head_sent = true;
    return st->ops->send_head(st, end_stream);
}

int exchange_switch_protocols(rill_server_stream *st, const char *protocol)
{
    if (st->head_sent || !st->ops->switch_protocols)
        return RILL_ERR_STATE;
    add_standard_fields(st);
    st->status = 101;
    st->head_sent = st->ended = st->end_sent = true;
    return st->ops->switch_protocols(st, protocol);
}

int exchange_switch_to_tunnel(rill_server_stream *st, const char *protocol)
{
    if (st->head_sent || !st->ops->switch_protocols)
        return RILL_ERR_STATE;
    add_standard_fields(st);
    st->status = 101;
    st->head_sent = true;
    return st->ops->switch_protocols(st, protocol);
}

static int write_body(rill_server_response *res, const void *data, size_t len)
{
    if (res->ended || res->closed)
        return RILL_ERR_STATE;
    int rc = RILL_OK;
    if (!res->head_sent && (rc = send_head(res, false)) < 0)
        return rc;
    if (len == 0 || !exchange_body_allowed(res)) {
        /* The head alone, maybe from another connection's callback (a proxy's backend): HTTP/2
         * output is pulled, so ask for it (nothing else may come to flush this session). */
        session_flush(res->sess);
        return RILL_OK;
    }
    res->body_bytes += len;
    rc = res->ops->send_body(res, data, len);
    session_flush(res->sess);
    return rc;
}

void rill_server_response_on_drain(rill_server_response *res, rill_server_response_fn fn, void *user)
{
    res->drain_fn = fn;
    res->drain_user = user;
}

static int end_after_head(rill_server_response *res, const void *data, size_t len, bool kept);

static int end_response(rill_server_response *res, const void *data, size_t len, bool kept)
{
    if (res->ended || res->closed)
        return RILL_ERR_STATE;
    int rc;
    if (!res->head_sent) {
        if (!(res->resp_fields.has & HAS_CONTENT_LENGTH) && res->status != 204 &&
            res->status != 304) {
            char num[24];
            size_t n = format_decimal(num, len);
            exchange_add_field(res, "content-length", 14, num, n);
        }
        bool nothing_follows = (len == 0 || !exchange_body_allowed(res)) && res->trailers.count == 0;
        if ((rc = send_head(res, nothing_follows)) < 0)
            return rc;
    }
    return end_after_head(res, data, len, kept); /* with nothing to follow: just the finish */
}

/* kept: data stays valid until the exchange is freed (see exchange_ops.send_last). */
static int end_after_head(rill_server_response *res, const void *data, size_t len, bool kept)
{
    int rc;
    if (len > 0 && exchange_body_allowed(res)) {
        res->body_bytes += len;
        if (res->ops->send_last && res->trailers.count == 0) {
            /* the last bytes carry the end: one DATA frame with END_STREAM, not two */
            res->ended = true;
            exchange_hold(res);
            rc = res->ops->send_last(res, data, len, kept);
            if (rc == RILL_OK)
                rc = res->ops->finish(res);
            session_flush(res->sess);
            exchange_release(res);
            return rc;
        }
        rc = res->ops->send_body(res, data, len);
        if (rc < 0 && rc != RILL_ERR_WOULD_BLOCK)
            return rc;
    }
    res->ended = true;
    rc = res->ops->finish(res);
    session_flush(res->sess);
    return rc;
}

static int end_named(rill_server_stream *st, uint64_t serial, void (*add_fields)(rill_server_stream *, void *),
                     void *arg, const void *data, size_t len)
{
    if (st->ended || st->closed || st->head_sent)
        return RILL_ERR_STATE;
    /* Only a head the fields of which the serial names: nothing added before, no trailers. */
    bool named = serial && st->resp_fields.count == 0 && st->trailers.count == 0 && st->status == 200;
    if (named && st->ops->replay_head) {
        time_t sec;
        date_now(&sec);
        uint64_t token[2] = {serial, (uint64_t)sec};
        bool nothing_follows = len == 0 || st->head_request;
        int rc = st->ops->replay_head(st, token, nothing_follows);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            st->head_sent = true;
            return end_after_head(st, data, len, true);
        }
    }
    add_fields(st, arg);
    st->head_serial = named ? serial : 0;
    return end_response(st, data, len, true);
}

int exchange_end_named(rill_server_stream *st, uint64_t serial, void (*add_fields)(rill_server_stream *, void *),
                       void *arg, const void *data, size_t len)
{
    exchange_hold(st);
    int rc = end_named(st, serial, add_fields, arg, data, len);
    exchange_release(st);
    return rc;
}

/* The static handler streams a file; the fd stays the caller's (see st->release). */
static int send_file(rill_server_stream *st, int fd, uint64_t offset, uint64_t length)
{
    st->file_fd = fd;
    st->file_off = offset;
    st->file_left = exchange_body_allowed(st) ? length : 0;
    int rc = send_head(st, st->file_left == 0 && st->trailers.count == 0);
    if (rc < 0)
        return rc;
    st->body_bytes = st->file_left;
    st->ended = true;
    rc = st->file_left ? st->ops->send_file(st) : st->ops->finish(st);
    session_flush(st->sess);
    return rc;
}

int rill_server_response_push(rill_server_response *res, const char *path)
{
    if (!res->ops->push || res->ended)
        return RILL_ERR_STATE;
    return res->ops->push(res, path);
}

void rill_server_response_abort(rill_server_response *res)
{
    /* A tunnel whose side ended may still be half-open (the peer sending): reset it too. */
    bool tunnel = res->connect_protocol || res->sess->tunnel == res;
    if (res->closed || (res->end_sent && !tunnel))
        return;
    exchange_hold(res);
    res->ended = true;
    if (res->sess->h2) {
        /* The stream alone: the engine reports it closed, which closes the exchange. */
        rill_h2_submit_rst_stream(res->sess->h2, res->id, RILL_H2_INTERNAL_ERROR);
        session_flush(res->sess);
    } else if (tunnel || (res->head_sent && !res->chunked && exchange_body_allowed(res) &&
                          !(res->resp_fields.has & HAS_CONTENT_LENGTH))) {
        /* No framing to fall short of (a tunnel after its switch, an HTTP/1.0 body that runs to
         * the close): a FIN would read as the end, so the connection is reset. */
        conn_abort(&res->sess->c);
    } else {
        /* HTTP/1.1 has no reset: a connection closed short of the framing is the signal (the
         * peer keeps what came, and knows it is short). */
        rill_server_session_destroy(res->sess, RILL_H2_INTERNAL_ERROR);
    }
    exchange_release(res);
}

int rill_server_response_log_note(rill_server_response *res, const char *text)
{
    if (res->closed)
        return RILL_ERR_STATE;
    size_t n = strlen(text);
    char *copy = exchange_alloc(res, n + 1);
    if (!copy)
        return RILL_ERR_NOMEM;
    memcpy(copy, text, n + 1);
    res->log_note = copy; /* a replaced note stays in the arena until the exchange goes */
    return RILL_OK;
}

void rill_server_response_on_close(rill_server_response *res, rill_server_close_fn fn, void *user)
{
    res->close_fn = fn;
    res->close_user = user;
}

static int respond_fields(rill_server_stream *stream, const rill_header *headers, size_t count, bool end_stream)
{
    if (stream->head_sent)
        return RILL_ERR_STATE;
    for (size_t i = 0; i < count; i++) {
        const char *name = (const char *)headers[i].name;
        if (headers[i].name_len == 7 && memcmp(name, ":status", 7) == 0) {
            char num[8] = {0};
            memcpy(num, headers[i].value, headers[i].value_len < 7 ? headers[i].value_len : 7);
            int rc = rill_server_response_set_status(stream, atoi(num));
            if (rc < 0)
                return rc;
            continue;
        }
        int rc = header_list_add(stream, &stream->resp_fields, name, headers[i].name_len,
                                 (const char *)headers[i].value, headers[i].value_len, 0);
        if (rc < 0)
            return rc;
    }
    if (end_stream)
        return end_response(stream, NULL, 0, false);
    int rc = send_head(stream, false);
    session_flush(stream->sess);
    return rc;
}

static int respond_simple(rill_server_stream *st, int status, const char *content_type, const char *body)
{
    if (st->head_sent)
        return RILL_ERR_STATE;
    st->status = status;
    if (content_type)
        rill_server_response_set_header(st, "content-type", content_type);
    return end_response(st, body, body ? strlen(body) : 0, false);
}

/* Each entry point holds the exchange once for its whole run (a transport close meanwhile is
 * deferred to the release); internal calls go to the implementations above, never back here. */
#define HELD(st, call)                                                                             \
    do {                                                                                           \
        exchange_hold(st);                                                                         \
        int rc_ = (call);                                                                          \
        exchange_release(st);                                                                      \
        return rc_;                                                                                \
    } while (0)

int rill_server_response_write(rill_server_response *res, const void *data, size_t len)
{
    HELD(res, write_body(res, data, len));
}

int rill_server_response_end(rill_server_response *res, const void *data, size_t len)
{
    HELD(res, end_response(res, data, len, false));
}

int rill_server_response_informational(rill_server_response *res, int status, const rill_header *fields,
                                size_t count)
{
    HELD(res, informational(res, status, fields, count));
}

int exchange_send_file(rill_server_stream *st, int fd, uint64_t offset, uint64_t length)
{
    HELD(st, send_file(st, fd, offset, length));
}

int rill_server_stream_respond(rill_server_stream *stream, const rill_header *headers, size_t count, bool end_stream)
{
    HELD(stream, respond_fields(stream, headers, count, end_stream));
}

int exchange_respond_simple(rill_server_stream *st, int status, const char *content_type, const char *body)
{
    HELD(st, respond_simple(st, status, content_type, body));
}
