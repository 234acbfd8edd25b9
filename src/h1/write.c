/* The HTTP/1.1 serialiser: heads and chunk framing into caller buffers. Every name, value,
 * method, target and reason is validated so no caller string can inject a line. */
#include <string.h>

#include "common/small_copy.h"
#include "h1/h1_chars.h"
#include "h1/h1_internal.h"

struct out {
    uint8_t *p;
    size_t cap;
    size_t len;
    bool overflow;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (n == 0)
        return;
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static bool valid_token(const char *s, size_t n)
{
    return n > 0 && h1_span(s, n, H1_TCHAR) == n;
}

static bool valid_value(const char *s, size_t n)
{
    return h1_span_value(s, n) == n;
}

static int put_fields(struct out *o, const rill_header *fields, size_t n)
{
    if (n && !fields)
        return RILL_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        const rill_header *f = &fields[i];
        const char *name = (const char *)f->name, *value = (const char *)f->value;
        /* A name its sender vouches for (RILL_HEADER_VALID: a lowercase token) is not scanned
         * again; every value is (the HTTP/2 rule lets other control bytes through). */
        bool name_ok = (f->flags & RILL_HEADER_VALID) && f->name_len && name[0] != ':'
                           ? true
                           : valid_token(name, f->name_len);
        if (!name_ok || (f->value_len && !value) || !valid_value(value, f->value_len))
            return RILL_ERR_INVALID_ARG;
        size_t need = f->name_len + f->value_len + 4;
        if (o->overflow || need > o->cap - o->len) {
            o->overflow = true;
            continue;
        }
        uint8_t *p = o->p + o->len; /* short strings: copied inline, not through a libc call */
        small_copy(p, name, f->name_len);
        p += f->name_len;
        memcpy(p, ": ", 2);
        small_copy(p + 2, value, f->value_len);
        memcpy(p + 2 + f->value_len, "\r\n", 2);
        o->len += need;
    }
    return 0;
}

static int finish(struct out *o, size_t *out_len)
{
    if (o->overflow)
        return RILL_ERR_BUFFER_TOO_SMALL;
    *out_len = o->len;
    return 0;
}

const char *rill_h1_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

int rill_h1_write_response_head(uint8_t *out, size_t cap, size_t *out_len, int status,
                                const char *reason, const rill_header *fields, size_t nfields)
{
    if (!out_len || (!out && cap) || status < 100 || status > 599)
        return RILL_ERR_INVALID_ARG;
    if (!reason)
        reason = rill_h1_reason_phrase(status);
    size_t rlen = strlen(reason);
    if (!valid_value(reason, rlen))
        return RILL_ERR_INVALID_ARG;
    struct out o = {out, cap, 0, false};
    char code[5] = {' ', (char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};
    put_str(&o, "HTTP/1.1");
    put(&o, code, sizeof code);
    put(&o, reason, rlen);
    put(&o, "\r\n", 2);
    int r = put_fields(&o, fields, nfields);
    if (r < 0)
        return r;
    put(&o, "\r\n", 2);
    return finish(&o, out_len);
}

int rill_h1_write_request_head(uint8_t *out, size_t cap, size_t *out_len, const char *method,
                               size_t method_len, const char *target, size_t target_len,
                               const rill_header *fields, size_t nfields)
{
    if (!out_len || (!out && cap) || !method || !target || !valid_token(method, method_len) ||
        target_len == 0 || h1_span_target(target, target_len) != target_len)
        return RILL_ERR_INVALID_ARG;
    struct out o = {out, cap, 0, false};
    put(&o, method, method_len);
    put(&o, " ", 1);
    put(&o, target, target_len);
    put_str(&o, " HTTP/1.1\r\n");
    int r = put_fields(&o, fields, nfields);
    if (r < 0)
        return r;
    put(&o, "\r\n", 2);
    return finish(&o, out_len);
}

int rill_h1_write_error_response(uint8_t *out, size_t cap, size_t *out_len, rill_h1_error err)
{
    static const rill_header fields[] = {
        {(const uint8_t *)"Content-Length", 14, (const uint8_t *)"0", 1, 0},
        {(const uint8_t *)"Connection", 10, (const uint8_t *)"close", 5, 0},
    };
    int status = rill_h1_error_status(err);
    if (status == 0)
        return RILL_ERR_INVALID_ARG;
    return rill_h1_write_response_head(out, cap, out_len, status, NULL, fields, 2);
}

int rill_h1_write_chunk_header(uint8_t *out, size_t cap, size_t *out_len, uint64_t size)
{
    if (!out_len || (!out && cap) || size == 0)
        return RILL_ERR_INVALID_ARG;
    char hex[RILL_H1_CHUNK_HEADER_MAX];
    size_t n = 0;
    for (int shift = 60; shift >= 0; shift -= 4) {
        unsigned d = (unsigned)(size >> shift) & 15u;
        if (d || n)
            hex[n++] = "0123456789abcdef"[d];
    }
    hex[n++] = '\r';
    hex[n++] = '\n';
    struct out o = {out, cap, 0, false};
    put(&o, hex, n);
    return finish(&o, out_len);
}

int rill_h1_write_last_chunk(uint8_t *out, size_t cap, size_t *out_len,
                             const rill_header *trailers, size_t ntrailers)
{
    if (!out_len || (!out && cap))
        return RILL_ERR_INVALID_ARG;
    struct out o = {out, cap, 0, false};
    put(&o, "0\r\n", 3);
    int r = put_fields(&o, trailers, ntrailers);
    if (r < 0)
        return r;
    put(&o, "\r\n", 2);
    return finish(&o, out_len);
}
