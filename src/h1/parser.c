/* The HTTP/1.1 message parser (both roles): head lines are gathered into the parser's bounded
 * buffer and validated one complete line at a time (field lines that arrive whole in one pass,
 * fast_fields; the rest line by line, feed_lines); bodies are framed (length, chunked, until
 * close) and handed out in place. See rill/h1.h for the model and the strictness decisions. */
#include <stdlib.h>
#include <string.h>

#include "common/api_struct.h"
#include "common/http_chars.h"
#include "common/small_copy.h"
#include "h1/h1_chars.h"
#include "h1/h1_internal.h"

enum state {
    S_START,        /* waiting for the request/status line */
    S_FIELDS,       /* header field lines */
    S_BODY_LENGTH,  /* Content-Length body */
    S_BODY_CHUNKED, /* inside the chunked framing (see enum chunk_state) */
    S_BODY_CLOSE,   /* response body until EOF */
    S_TRAILERS,     /* trailer field lines after the last chunk */
    S_END,          /* END is the next event */
    S_UPGRADED,     /* after 101 / CONNECT 2xx: no more HTTP/1.1 */
    S_ERROR,
};

enum chunk_state {
    C_SIZE,    /* hex digits */
    C_SIZE_WS, /* BWS between the size and ';' */
    C_EXT,     /* extensions, skipped */
    C_SIZE_LF, /* after the CR of the size line */
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
};

/* Per-message facts gathered from framing-related fields while the head is parsed. */
struct framing {
    unsigned host_count;
    bool seen_length;
    bool seen_te;
    bool te_last_chunked; /* the last coding seen so far is chunked */
    bool te_chunked;      /* chunked appeared at all */
    bool te_other;        /* a coding other than chunked appeared */
    bool conn_close;
    bool conn_keep_alive;
    uint64_t length;
};

struct rill_h1_parser {
    rill_h1_role role;
    rill_h1_options lim;
    enum state state;
    rill_h1_error error;
    int error_code;
    bool need_reset; /* END was reported: the next bytes start a new message */
    bool upgrade_at_end;

    /* Head buffer: the head occupies [0, head_end), trailers follow it. */
    char *buf;
    size_t len;          /* bytes stored */
    size_t line_start;   /* where the current (incomplete) line begins */
    size_t region_start; /* where the head or the trailer section begins */
    size_t region_limit; /* its maximum size */
    size_t first_line;   /* where the start line begins, once it is complete (else SIZE_MAX) */

    rill_header *fields; /* max_fields head fields, then max_trailer_fields trailers */
    size_t ntrailers;
    rill_h1_head head;
    struct framing fr;

    enum chunk_state cstate;
    uint64_t remaining;  /* of the Content-Length body or the current chunk */
    uint64_t body_total; /* decoded body bytes so far (chunked) */
    uint64_t chunk_size;
    unsigned chunk_digits;
    uint32_t ext_len;

    /* client side: the request being answered */
    bool req_head;
    bool req_connect;
};

void rill_h1_options_init(rill_h1_options *lim)
{
    memset(lim, 0, sizeof *lim);
    lim->size = sizeof *lim;
    lim->max_request_line = 8192;
    lim->max_head_size = 16384;
    lim->max_fields = 100;
    lim->max_trailer_size = 4096;
    lim->max_trailer_fields = 32;
    lim->max_chunk_ext = 1024;
    lim->max_body = 0;
}

static void begin_message(rill_h1_parser *p)
{
    p->need_reset = false;
    p->upgrade_at_end = false;
    p->len = 0;
    p->line_start = 0;
    p->region_start = 0;
    p->region_limit = p->lim.max_head_size;
    p->first_line = SIZE_MAX;
    p->ntrailers = 0;
    memset(&p->head, 0, sizeof p->head);
    p->head.fields = p->fields;
    memset(&p->fr, 0, sizeof p->fr);
    p->remaining = 0;
    p->body_total = 0;
}

rill_h1_parser *rill_h1_parser_new(rill_h1_role role, const rill_h1_options *opt)
{
    rill_h1_options l;
    rill_h1_options_init(&l);
    if (opt && rill_struct_copy(&l, sizeof l, opt) != RILL_OK)
        return NULL;
    if (!l.max_request_line || !l.max_head_size || !l.max_fields || !l.max_trailer_size ||
        !l.max_trailer_fields || !l.max_chunk_ext)
        return NULL;
    if (role != RILL_H1_REQUEST && role != RILL_H1_RESPONSE)
        return NULL;
    rill_h1_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->role = role;
    p->lim = l;
    p->buf = malloc((size_t)l.max_head_size + l.max_trailer_size);
    p->fields = malloc(((size_t)l.max_fields + l.max_trailer_fields) * sizeof *p->fields);
    if (!p->buf || !p->fields) {
        rill_h1_parser_free(p);
        return NULL;
    }
    rill_h1_parser_reset(p);
    return p;
}

void rill_h1_parser_free(rill_h1_parser *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p->fields);
    free(p);
}

void rill_h1_parser_reset(rill_h1_parser *p)
{
    p->state = S_START;
    p->error = RILL_H1_E_NONE;
    p->error_code = 0;
    begin_message(p);
}

rill_h1_error rill_h1_parser_error(const rill_h1_parser *p)
{
    return p->error;
}

void rill_h1_set_request_method(rill_h1_parser *p, const char *method, size_t len)
{
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    p->req_head = len == 4 && memcmp(method, "HEAD", 4) == 0;
    p->req_connect = len == 7 && memcmp(method, "CONNECT", 7) == 0;
}

static int fail(rill_h1_parser *p, rill_h1_error err)
{
    p->state = S_ERROR;
    p->error = err;
    p->error_code = rill_h1_error_code(err);
    return p->error_code;
}

/* A line failed validation: a CR inside it is the more precise diagnosis. */
static int fail_line(rill_h1_parser *p, const char *line, size_t n, rill_h1_error err)
{
    return fail(p, memchr(line, '\r', n) ? RILL_H1_E_BARE_CR : err);
}

/* ---- start lines ------------------------------------------------------------------------------- */

/* "HTTP/" DIGIT "." DIGIT; sets the minor version. */
static int parse_version(rill_h1_parser *p, const char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !h1_is((uint8_t)v[5], H1_DIGIT) || v[6] != '.' ||
        !h1_is((uint8_t)v[7], H1_DIGIT))
        return fail(p, RILL_H1_E_BAD_VERSION);
    if (v[5] != '1')
        return fail(p, RILL_H1_E_VERSION_UNSUPPORTED);
    p->head.version_minor = v[7] - '0';
    return 0;
}

/* host ":" port, the authority-form of CONNECT. */
static bool valid_authority_form(const char *t, size_t n)
{
    if (h1_span(t, n, H1_HOST) != n)
        return false;
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (t[i - 1] == ':') {
            colon = t + i - 1;
            break;
        }
    if (!colon || colon == t)
        return false;
    size_t port_len = n - (size_t)(colon + 1 - t);
    return port_len >= 1 && port_len <= 5 && h1_span(colon + 1, port_len, H1_DIGIT) == port_len;
}

static int classify_target(rill_h1_parser *p, const char *t, size_t n)
{
    const char *m = p->head.method;
    size_t mlen = p->head.method_len;
    bool connect = mlen == 7 && memcmp(m, "CONNECT", 7) == 0;
    rill_h1_target_form form;
    if (connect) {
        if (!valid_authority_form(t, n))
            return fail(p, RILL_H1_E_BAD_TARGET);
        form = RILL_H1_TARGET_AUTHORITY;
    } else if (t[0] == '/') {
        form = RILL_H1_TARGET_ORIGIN;
    } else if (n == 1 && t[0] == '*') {
        if (!(mlen == 7 && memcmp(m, "OPTIONS", 7) == 0))
            return fail(p, RILL_H1_E_BAD_TARGET);
        form = RILL_H1_TARGET_ASTERISK;
    } else {
        /* absolute-form: we require "scheme://" so "host:port" is never mistaken for a URI. */
        size_t s = h1_span(t, n, H1_SCHEME);
        uint8_t first = h1_lower((uint8_t)t[0]);
        if (first < 'a' || first > 'z' || n < s + 3 || memcmp(t + s, "://", 3) != 0)
            return fail(p, RILL_H1_E_BAD_TARGET);
        form = RILL_H1_TARGET_ABSOLUTE;
    }
    p->head.target_form = form;
    return 0;
}

static int parse_request_line(rill_h1_parser *p, const char *line, size_t n)
{
    const char *sp1 = memchr(line, ' ', n);
    if (!sp1 || sp1 == line)
        return fail_line(p, line, n, RILL_H1_E_BAD_START_LINE);
    size_t mlen = (size_t)(sp1 - line);
    if (h1_span(line, mlen, H1_TCHAR) != mlen)
        return fail_line(p, line, n, RILL_H1_E_BAD_METHOD);
    const char *t = sp1 + 1;
    size_t rest = n - mlen - 1;
    const char *sp2 = memchr(t, ' ', rest);
    if (!sp2 || sp2 == t)
        return fail_line(p, line, n, RILL_H1_E_BAD_START_LINE);
    size_t tlen = (size_t)(sp2 - t);
    if (h1_span_target(t, tlen) != tlen)
        return fail_line(p, line, n, RILL_H1_E_BAD_TARGET);
    const char *v = sp2 + 1;
    size_t vlen = rest - tlen - 1;
    if (memchr(v, ' ', vlen))
        return fail(p, RILL_H1_E_BAD_START_LINE);
    if (memchr(v, '\r', vlen))
        return fail(p, RILL_H1_E_BARE_CR);
    p->head.method = line;
    p->head.method_len = mlen;
    p->head.target = t;
    p->head.target_len = tlen;
    int r = parse_version(p, v, vlen);
    return r < 0 ? r : classify_target(p, t, tlen);
}

static int parse_status_line(rill_h1_parser *p, const char *line, size_t n)
{
    if (n <= 8)
        return fail_line(p, line, n, RILL_H1_E_BAD_START_LINE);
    int r = parse_version(p, line, 8);
    if (r < 0)
        return r;
    if (line[8] != ' ')
        return fail_line(p, line, n, RILL_H1_E_BAD_VERSION);
    if (n < 12 || h1_span(line + 9, 3, H1_DIGIT) != 3 || (n > 12 && line[12] != ' '))
        return fail_line(p, line, n, RILL_H1_E_BAD_STATUS);
    int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status < 100 || status > 599)
        return fail(p, RILL_H1_E_BAD_STATUS);
    const char *reason = n > 12 ? line + 13 : line + 12;
    size_t rlen = n > 12 ? n - 13 : 0;
    if (h1_span_value(reason, rlen) != rlen)
        return fail_line(p, reason, rlen, RILL_H1_E_BAD_FIELD_VALUE);
    p->head.status = status;
    p->head.reason = reason;
    p->head.reason_len = rlen;
    return 0;
}

/* ---- framing fields ---------------------------------------------------------------------------- */

/* Calls fn on each non-empty element of a comma list, trimmed of OWS; stops on a non-zero return. */
static int each_element(const char *v, size_t n, int (*fn)(void *, const char *, size_t), void *ctx)
{
    size_t i = 0;
    while (i <= n) {
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (start < end && (v[start] == ' ' || v[start] == '\t'))
            start++;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start) {
            int r = fn(ctx, v + start, end - start);
            if (r)
                return r;
        }
        i++;
    }
    return 0;
}

struct length_ctx {
    rill_h1_parser *p;
    int elements;
};

static int length_element(void *vctx, const char *e, size_t n)
{
    struct length_ctx *ctx = vctx;
    rill_h1_parser *p = ctx->p;
    if (h1_span(e, n, H1_DIGIT) != n)
        return RILL_H1_E_BAD_CONTENT_LENGTH;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (v > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(e[i] - '0')) / 10)
            return RILL_H1_E_BAD_CONTENT_LENGTH;
        v = v * 10 + (uint64_t)(e[i] - '0');
    }
    if (p->fr.seen_length && p->fr.length != v)
        return RILL_H1_E_CONFLICTING_LENGTH;
    p->fr.seen_length = true;
    p->fr.length = v;
    ctx->elements++;
    return 0;
}

static int te_element(void *vctx, const char *e, size_t n)
{
    rill_h1_parser *p = vctx;
    if (n == 7 && lower_eq_lit(e, "chunked", 7)) {
        if (p->fr.te_chunked)
            return RILL_H1_E_BAD_TRANSFER_ENCODING; /* chunked twice */
        p->fr.te_chunked = true;
        p->fr.te_last_chunked = true;
        return 0;
    }
    size_t tok = h1_span(e, n, H1_TCHAR);
    if (tok == 0 || (tok != n && e[tok] != ';' && e[tok] != ' ' && e[tok] != '\t'))
        return RILL_H1_E_BAD_TRANSFER_ENCODING;
    if (tok == 7 && lower_eq_lit(e, "chunked", 7))
        return RILL_H1_E_BAD_TRANSFER_ENCODING; /* chunked takes no parameters */
    p->fr.te_other = true;
    p->fr.te_last_chunked = false;
    return 0;
}

static int conn_element(void *vctx, const char *e, size_t n)
{
    rill_h1_parser *p = vctx;
    if (n == 5 && lower_eq_lit(e, "close", 5))
        p->fr.conn_close = true;
    else if (n == 10 && lower_eq_lit(e, "keep-alive", 10))
        p->fr.conn_keep_alive = true;
    else if (n == 7 && lower_eq_lit(e, "upgrade", 7))
        p->head.connection_upgrade = true;
    return 0;
}

/* Records what a head field means for framing and connection handling. */
static int note_field(rill_h1_parser *p, const char *name, size_t nlen, const char *v, size_t vlen)
{
    int r = 0;
    switch (nlen) {
    case 4:
        if (p->role == RILL_H1_REQUEST && lower_eq_lit(name, "host", 4)) {
            if (++p->fr.host_count > 1)
                return fail(p, RILL_H1_E_MULTIPLE_HOST);
            if (h1_span(v, vlen, H1_HOST) != vlen)
                return fail(p, RILL_H1_E_BAD_HOST);
            p->head.host = v;
            p->head.host_len = vlen;
        }
        break;
    case 6:
        if (p->role == RILL_H1_REQUEST && lower_eq_lit(name, "expect", 6)) {
            if (vlen == 12 && lower_eq_lit(v, "100-continue", 12))
                p->head.expect_continue = true;
            else
                p->head.expect_other = true;
        }
        break;
    case 7:
        if (lower_eq_lit(name, "upgrade", 7))
            p->head.upgrade = true;
        break;
    case 10:
        if (lower_eq_lit(name, "connection", 10))
            each_element(v, vlen, conn_element, p);
        break;
    case 14:
        if (lower_eq_lit(name, "content-length", 14)) {
            struct length_ctx ctx = {p, 0};
            r = each_element(v, vlen, length_element, &ctx);
            if (!r && ctx.elements == 0)
                r = RILL_H1_E_BAD_CONTENT_LENGTH;
        }
        break;
    case 17:
        if (lower_eq_lit(name, "transfer-encoding", 17)) {
            p->fr.seen_te = true;
            r = each_element(v, vlen, te_element, p);
        }
        break;
    default:
        break;
    }
    return r ? fail(p, (rill_h1_error)r) : 0;
}

/* ---- field lines ------------------------------------------------------------------------------- */

static int parse_field_line(rill_h1_parser *p, char *line, size_t n, bool trailer)
{
    if (line[0] == ' ' || line[0] == '\t')
        return fail(p, RILL_H1_E_OBS_FOLD);
    size_t nlen = h1_span(line, n, H1_TCHAR);
    if (nlen == n || line[nlen] != ':') {
        size_t ws = nlen;
        while (ws < n && (line[ws] == ' ' || line[ws] == '\t'))
            ws++;
        if (nlen > 0 && ws > nlen && ws < n && line[ws] == ':')
            return fail(p, RILL_H1_E_SPACE_BEFORE_COLON);
        return fail_line(p, line, n, RILL_H1_E_BAD_FIELD_NAME);
    }
    if (nlen == 0)
        return fail(p, RILL_H1_E_BAD_FIELD_NAME);
    size_t vs = nlen + 1, ve = n;
    while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
        vs++;
    while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
        ve--;
    if (h1_span_value(line + vs, ve - vs) != ve - vs)
        return fail_line(p, line, n, RILL_H1_E_BAD_FIELD_VALUE);
    rill_header *f;
    if (trailer) {
        if (p->ntrailers == p->lim.max_trailer_fields)
            return fail(p, RILL_H1_E_TRAILERS_TOO_LARGE);
        f = &p->fields[p->head.nfields + p->ntrailers++];
    } else {
        if (p->head.nfields == p->lim.max_fields)
            return fail(p, RILL_H1_E_TOO_MANY_FIELDS);
        f = &p->fields[p->head.nfields++];
    }
    f->name = (const uint8_t *)line;
    f->name_len = nlen;
    f->value = (const uint8_t *)line + vs;
    f->value_len = ve - vs;
    f->flags = 0;
    return trailer ? 0 : note_field(p, line, nlen, line + vs, ve - vs);
}

/* The empty line ended the head: decide the body framing. */
static int finish_head(rill_h1_parser *p, rill_h1_event *ev)
{
    rill_h1_head *h = &p->head;
    struct framing *fr = &p->fr;
    bool http11 = h->version_minor >= 1;
    if (p->role == RILL_H1_REQUEST && http11 && fr->host_count == 0)
        return fail(p, RILL_H1_E_MISSING_HOST);
    if (fr->seen_te) {
        if (fr->seen_length)
            return fail(p, RILL_H1_E_LENGTH_AND_CHUNKED);
        if (!http11)
            return fail(p, RILL_H1_E_BAD_TRANSFER_ENCODING);
        if (!fr->te_last_chunked)
            return fail(p, RILL_H1_E_BAD_TRANSFER_ENCODING);
        if (fr->te_other)
            return fail(p, RILL_H1_E_UNKNOWN_CODING);
    }
    h->keep_alive = !fr->conn_close && (http11 || fr->conn_keep_alive);
    if (!http11) /* RFC 9110 §10.1.1: a 100-continue from an HTTP/1.0 client is ignored */
        h->expect_continue = false;

    rill_h1_body body;
    if (fr->seen_te)
        body = RILL_H1_BODY_CHUNKED;
    else if (fr->seen_length)
        body = fr->length ? RILL_H1_BODY_LENGTH : RILL_H1_BODY_NONE;
    else
        body = p->role == RILL_H1_REQUEST ? RILL_H1_BODY_NONE : RILL_H1_BODY_UNTIL_CLOSE;
    if (p->role == RILL_H1_RESPONSE) {
        int s = h->status;
        if (s == 101 || (p->req_connect && s >= 200 && s < 300)) {
            body = RILL_H1_BODY_NONE;
            p->upgrade_at_end = true;
            h->keep_alive = false;
        } else if (s < 200 || s == 204 || s == 304 || p->req_head) {
            body = RILL_H1_BODY_NONE;
        }
        if (body == RILL_H1_BODY_UNTIL_CLOSE)
            h->keep_alive = false;
    }
    if (body == RILL_H1_BODY_LENGTH && p->lim.max_body && fr->length > p->lim.max_body)
        return fail(p, RILL_H1_E_BODY_TOO_LARGE);
    h->body = body;
    h->content_length = body == RILL_H1_BODY_LENGTH ? fr->length : 0;

    switch (body) {
    case RILL_H1_BODY_NONE: p->state = S_END; break;
    case RILL_H1_BODY_LENGTH: p->state = S_BODY_LENGTH; p->remaining = fr->length; break;
    case RILL_H1_BODY_CHUNKED:
        p->state = S_BODY_CHUNKED;
        p->cstate = C_SIZE;
        p->chunk_size = 0;
        p->chunk_digits = 0;
        p->ext_len = 0;
        break;
    case RILL_H1_BODY_UNTIL_CLOSE: p->state = S_BODY_CLOSE; break;
    }
    ev->type = RILL_H1_EV_HEAD;
    ev->head = h;
    return 0;
}

/* One complete line (CRLF removed) in the current section. */
static int process_line(rill_h1_parser *p, char *line, size_t n, rill_h1_event *ev)
{
    switch (p->state) {
    case S_START:
        if (n == 0) /* RFC 9112 §2.2: skip empty lines before the start line */
            return 0;
        p->state = S_FIELDS;
        p->first_line = (size_t)(line - p->buf);
        return p->role == RILL_H1_REQUEST ? parse_request_line(p, line, n)
                                          : parse_status_line(p, line, n);
    case S_FIELDS:
        return n == 0 ? finish_head(p, ev) : parse_field_line(p, line, n, false);
    case S_TRAILERS:
        if (n > 0)
            return parse_field_line(p, line, n, true);
        p->state = S_END;
        if (p->ntrailers) {
            ev->type = RILL_H1_EV_TRAILERS;
            ev->fields = p->fields + p->head.nfields;
            ev->nfields = p->ntrailers;
        }
        return 0;
    default:
        return fail(p, RILL_H1_E_BAD_START_LINE); /* unreachable */
    }
}

static rill_h1_error too_large(const rill_h1_parser *p, bool line_limit_hit)
{
    if (p->state == S_TRAILERS)
        return RILL_H1_E_TRAILERS_TOO_LARGE;
    if (line_limit_hit && p->role == RILL_H1_REQUEST)
        return RILL_H1_E_URI_TOO_LONG;
    return RILL_H1_E_HEAD_TOO_LARGE;
}

/* At most this much input is copied ahead by fast_fields: a head's worth, not a large body's. */
#define FAST_COPY_MAX 4096

/* The common case of head field lines that arrive whole: the input is copied into the head
 * buffer in one piece and each line is scanned once, validated as it is scanned (the name's
 * token bytes up to ':', the value's up to the first control byte, which must be the CRLF).
 * It stops, leaving the line for the careful path in feed_lines (same verdicts, same errors),
 * at anything else: a line cut by the end of the input, a space before the colon, a bare CR or
 * LF, a control byte in a value, the field limit. Lines it took are consumed as feed_lines
 * would have (the head's end included: then it finishes the head). */
static int fast_fields(rill_h1_parser *p, const uint8_t *data, size_t len, size_t *pos,
                       rill_h1_event *ev)
{
    size_t space = p->region_limit - (p->len - p->region_start);
    size_t take = len - *pos;
    if (take > space)
        take = space;
    if (take > FAST_COPY_MAX)
        take = FAST_COPY_MAX;
    char *base = p->buf + p->len, *s = base;
    memcpy(base, data + *pos, take);
    size_t n = take;
    int r = 0;
    while (n >= 2) {
        if (s[0] == '\r') {
            if (s[1] != '\n')
                break;
            s += 2;
            r = finish_head(p, ev);
            break;
        }
        size_t nlen = h1_span(s, n, H1_TCHAR);
        if (nlen == 0 || nlen == n || s[nlen] != ':')
            break;
        size_t vs = nlen + 1;
        while (vs < n && (s[vs] == ' ' || s[vs] == '\t'))
            vs++;
        size_t ve = vs + h1_span_value(s + vs, n - vs);
        if (ve + 1 >= n || s[ve] != '\r' || s[ve + 1] != '\n')
            break;
        if (p->head.nfields == p->lim.max_fields)
            break;
        size_t line = ve + 2;
        while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
            ve--;
        rill_header *f = &p->fields[p->head.nfields++];
        f->name = (const uint8_t *)s;
        f->name_len = nlen;
        f->value = (const uint8_t *)s + vs;
        f->value_len = ve - vs;
        f->flags = 0;
        r = note_field(p, s, nlen, s + vs, ve - vs);
        s += line;
        n -= line;
        if (r < 0)
            break;
    }
    size_t used = (size_t)(s - base);
    p->len += used;
    p->line_start = p->len;
    *pos += used;
    return r;
}

/* Gathers head or trailer lines from data[*pos..len); stops after an event, an error, a state
 * change out of the line sections, or when the input is used up. */
static int feed_lines(rill_h1_parser *p, const uint8_t *data, size_t len, size_t *pos,
                      rill_h1_event *ev)
{
    bool fast = true;
    while (*pos < len) {
        if (fast && p->state == S_FIELDS && p->len == p->line_start) {
            int r = fast_fields(p, data, len, pos, ev);
            if (r < 0)
                return r;
            if (ev->type != RILL_H1_EV_NONE || p->state == S_END)
                return 0;
            fast = false; /* the line it stopped at goes the careful way, then it may go on */
            continue;
        }
        fast = true;
        size_t avail = len - *pos;
        size_t space = p->region_limit - (p->len - p->region_start);
        bool line_limit = false;
        if (p->state == S_START) {
            size_t max_line = (size_t)p->lim.max_request_line + 2; /* + CRLF */
            size_t line_used = p->len - p->line_start;
            size_t line_space = max_line > line_used ? max_line - line_used : 0;
            if (line_space < space) {
                space = line_space;
                line_limit = true;
            }
        }
        size_t scan = avail < space ? avail : space;
        const uint8_t *nl = memchr(data + *pos, '\n', scan);
        if (!nl && avail > space)
            return fail(p, too_large(p, line_limit));
        size_t take = nl ? (size_t)(nl - (data + *pos)) + 1 : scan;
        memcpy(p->buf + p->len, data + *pos, take);
        p->len += take;
        *pos += take;
        if (!nl)
            break;
        char *line = p->buf + p->line_start;
        size_t n = p->len - p->line_start - 1; /* without LF */
        p->line_start = p->len;
        if (n == 0 || line[n - 1] != '\r')
            return fail(p, RILL_H1_E_BARE_LF);
        int r = process_line(p, line, n - 1, ev);
        if (r < 0)
            return r;
        if (ev->type != RILL_H1_EV_NONE || p->state == S_END)
            return 0;
    }
    return 0;
}

/* ---- chunked ----------------------------------------------------------------------------------- */

static void enter_trailers(rill_h1_parser *p)
{
    p->state = S_TRAILERS;
    p->region_start = p->len;
    p->line_start = p->len;
    p->region_limit = p->lim.max_trailer_size;
}

static int feed_chunked(rill_h1_parser *p, const uint8_t *data, size_t len, size_t *pos,
                        rill_h1_event *ev)
{
    while (*pos < len) {
        uint8_t c = data[*pos];
        switch (p->cstate) {
        case C_SIZE: {
            int v = http_hex_value(c);
            if (v >= 0) {
                if (p->chunk_size >> 56)
                    return fail(p, RILL_H1_E_CHUNK_TOO_BIG);
                p->chunk_size = (p->chunk_size << 4) | (uint64_t)v;
                p->chunk_digits++;
                (*pos)++;
                continue;
            }
            if (p->chunk_digits == 0)
                return fail(p, RILL_H1_E_BAD_CHUNK_SIZE);
            if (c == ';')
                p->cstate = C_EXT;
            else if (c == ' ' || c == '\t')
                p->cstate = C_SIZE_WS;
            else if (c == '\r')
                p->cstate = C_SIZE_LF;
            else
                return fail(p, c == '\n' ? RILL_H1_E_BARE_LF : RILL_H1_E_BAD_CHUNK_SIZE);
            if (c != '\r')
                p->ext_len = 1; /* max_chunk_ext >= 1: the first byte always fits */
            (*pos)++;
            break;
        }
        case C_SIZE_WS:
            if (c == ';')
                p->cstate = C_EXT;
            else if (c != ' ' && c != '\t')
                return fail(p, RILL_H1_E_BAD_CHUNK_SIZE);
            if (++p->ext_len > p->lim.max_chunk_ext)
                return fail(p, RILL_H1_E_CHUNK_EXT_TOO_LONG);
            (*pos)++;
            break;
        case C_EXT:
            /* Extensions carry nothing we use: skip them, bounded, refusing CTLs (bare CR/LF). */
            if (c == '\r') {
                p->cstate = C_SIZE_LF;
            } else {
                if (!h1_is(c, H1_VALUE))
                    return fail(p, c == '\n' ? RILL_H1_E_BARE_LF : RILL_H1_E_BAD_CHUNK_EXT);
                if (++p->ext_len > p->lim.max_chunk_ext)
                    return fail(p, RILL_H1_E_CHUNK_EXT_TOO_LONG);
            }
            (*pos)++;
            break;
        case C_SIZE_LF:
            if (c != '\n')
                return fail(p, RILL_H1_E_BARE_CR);
            (*pos)++;
            if (p->chunk_size == 0) {
                enter_trailers(p);
                return 0;
            }
            if (p->lim.max_body && p->chunk_size > p->lim.max_body - p->body_total)
                return fail(p, RILL_H1_E_BODY_TOO_LARGE);
            p->body_total += p->chunk_size;
            p->remaining = p->chunk_size;
            p->cstate = C_DATA;
            break;
        case C_DATA: {
            size_t n = len - *pos;
            if (n > p->remaining)
                n = (size_t)p->remaining;
            ev->type = RILL_H1_EV_BODY;
            ev->data = data + *pos;
            ev->len = n;
            *pos += n;
            p->remaining -= n;
            if (p->remaining == 0)
                p->cstate = C_DATA_CR;
            return 0;
        }
        case C_DATA_CR:
            if (c != '\r')
                return fail(p, RILL_H1_E_BAD_CHUNK_END);
            p->cstate = C_DATA_LF;
            (*pos)++;
            break;
        case C_DATA_LF:
            if (c != '\n')
                return fail(p, RILL_H1_E_BAD_CHUNK_END);
            p->cstate = C_SIZE;
            p->chunk_size = 0;
            p->chunk_digits = 0;
            p->ext_len = 0;
            (*pos)++;
            break;
        }
    }
    return 0;
}

/* ---- driver ------------------------------------------------------------------------------------ */

static void emit_end(rill_h1_parser *p, rill_h1_event *ev)
{
    ev->type = RILL_H1_EV_END;
    ev->head = &p->head;
    ev->upgraded = p->upgrade_at_end;
    p->need_reset = true;
    p->state = p->upgrade_at_end ? S_UPGRADED : S_START;
}

int rill_h1_parse(rill_h1_parser *p, const uint8_t *data, size_t len, size_t *used,
                  rill_h1_event *ev)
{
    if (!p || !ev || !used || (!data && len))
        return RILL_ERR_INVALID_ARG;
    memset(ev, 0, sizeof *ev);
    *used = 0;
    if (p->state == S_ERROR)
        return p->error_code;
    if (p->state == S_UPGRADED)
        return RILL_ERR_STATE;
    if (p->need_reset && len > 0)
        begin_message(p);
    size_t pos = 0;
    int r = 0;
    for (;;) {
        switch (p->state) {
        case S_START:
        case S_FIELDS:
        case S_TRAILERS:
            r = feed_lines(p, data, len, &pos, ev);
            if (r < 0 || ev->type != RILL_H1_EV_NONE || p->state != S_END)
                goto out;
            continue;
        case S_BODY_LENGTH: { /* remaining > 0 here: a zero length means no body */
            size_t n = len - pos;
            if (n == 0)
                goto out;
            if (n > p->remaining)
                n = (size_t)p->remaining;
            ev->type = RILL_H1_EV_BODY;
            ev->data = data + pos;
            ev->len = n;
            pos += n;
            p->remaining -= n;
            if (p->remaining == 0)
                p->state = S_END;
            goto out;
        }
        case S_BODY_CHUNKED:
            r = feed_chunked(p, data, len, &pos, ev);
            if (r < 0 || ev->type != RILL_H1_EV_NONE || p->state != S_TRAILERS)
                goto out;
            continue;
        case S_BODY_CLOSE:
            if (pos < len) {
                if (p->lim.max_body && len - pos > p->lim.max_body - p->body_total) {
                    r = fail(p, RILL_H1_E_BODY_TOO_LARGE);
                    goto out;
                }
                p->body_total += len - pos;
                ev->type = RILL_H1_EV_BODY;
                ev->data = data + pos;
                ev->len = len - pos;
                pos = len;
            }
            goto out;
        case S_END:
            emit_end(p, ev);
            goto out;
        case S_UPGRADED:
        case S_ERROR:
            goto out;
        }
    }
out:
    *used = pos;
    return r;
}

bool rill_h1_parser_idle(const rill_h1_parser *p)
{
    /* leading empty lines are consumed without being stored, so they leave it idle */
    return p->state == S_START && (p->need_reset || p->len == p->line_start);
}

uint64_t rill_h1_parser_body_left(const rill_h1_parser *p)
{
    return p->state == S_BODY_LENGTH ? p->remaining : 0;
}

const char *rill_h1_parser_start_line(const rill_h1_parser *p, size_t *len)
{
    const char *start = p->buf + (p->first_line != SIZE_MAX ? p->first_line : p->line_start);
    size_t n = p->need_reset ? 0 : (size_t)(p->buf + p->len - start);
    const char *end = memchr(start, '\n', n);
    n = end ? (size_t)(end - start) : n;
    if (n && start[n - 1] == '\r')
        n--;
    *len = n;
    return start;
}

int rill_h1_parse_eof(rill_h1_parser *p, rill_h1_event *ev)
{
    if (!p || !ev)
        return RILL_ERR_INVALID_ARG;
    memset(ev, 0, sizeof *ev);
    switch (p->state) {
    case S_ERROR:
        return p->error_code;
    case S_UPGRADED:
        return RILL_ERR_STATE;
    case S_BODY_CLOSE:
    case S_END:
        emit_end(p, ev);
        return 0;
    case S_START:
        if (p->need_reset || p->len == p->line_start)
            return 0; /* between messages (leading empty lines included) */
        return fail(p, RILL_H1_E_INCOMPLETE);
    default:
        return fail(p, RILL_H1_E_INCOMPLETE);
    }
}
