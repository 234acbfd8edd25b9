/* HTTP semantics of HTTP/2 messages (RFC 9113 section 8): field syntax, pseudo-header rules,
 * connection-specific fields, content-length, CONNECT forms, RFC 9218 priority values. */
#include "common/http_chars.h"
#include "h2/h2_internal.h"

/* A value equal to a string literal (its length known at compile time: no strlen, no call). */
#define eq(p, n, lit) ((n) == sizeof(lit) - 1 && memcmp((p), (lit), sizeof(lit) - 1) == 0)

bool h2_field_valid(const rill_header *f)
{
    return http2_field_valid(f->name, f->name_len, f->value, f->value_len);
}

/* content-length: digits only; repeated values (list or fields) must agree. */
static bool parse_content_length(const uint8_t *v, size_t n, int64_t *out)
{
    int64_t val = -1;
    size_t i = 0;
    while (i < n) {
        int64_t x = 0;
        size_t start = i;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            if (x > (INT64_MAX - 9) / 10)
                return false;
            x = x * 10 + (v[i] - '0');
            i++;
        }
        if (i == start)
            return false;
        if (val >= 0 && x != val)
            return false;
        val = x;
        if (i < n) {
            /* ", " separated repeats */
            if (v[i] != ',')
                return false;
            i++;
            while (i < n && (v[i] == ' ' || v[i] == '\t'))
                i++;
            if (i == n)
                return false;
        }
    }
    if (val < 0 || (*out >= 0 && *out != val))
        return false;
    *out = val;
    return true;
}

void h2_parse_priority(const uint8_t *v, size_t n, int *urgency, int *incremental)
{
    /* A structured-field dictionary; only u=<0..7> and i / i=?1 / i=?0 matter. Unknown members
     * and bad values are ignored (RFC 9218 section 4). */
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t k = i;
        while (i < n && v[i] != '=' && v[i] != ',' && v[i] != ';')
            i++;
        size_t klen = i - k;
        const uint8_t *val = NULL;
        size_t vlen = 0;
        if (i < n && v[i] == '=') {
            val = v + ++i;
            while (i < n && v[i] != ',' && v[i] != ';')
                i++;
            vlen = (size_t)(v + i - val);
        }
        while (i < n && v[i] != ',')
            i++; /* parameters are ignored */
        if (klen == 1 && v[k] == 'u' && vlen == 1 && val[0] >= '0' && val[0] <= '7')
            *urgency = val[0] - '0';
        else if (klen == 1 && v[k] == 'i') {
            if (!val)
                *incremental = 1;
            else if (vlen == 2 && val[0] == '?' && (val[1] == '0' || val[1] == '1'))
                *incremental = val[1] - '0';
        }
    }
}

enum { P_METHOD = 1, P_SCHEME = 2, P_AUTHORITY = 4, P_PATH = 8, P_PROTOCOL = 16, P_STATUS = 32 };

/* Which pseudo-header a ':' name is, by length and a byte before the one comparison. */
static unsigned pseudo_bit(const rill_header *f)
{
    const uint8_t *n = f->name;
    switch (f->name_len) {
    case 5: return memcmp(n, ":path", 5) == 0 ? P_PATH : 0;
    case 7:
        if (n[1] == 'm')
            return memcmp(n, ":method", 7) == 0 ? P_METHOD : 0;
        if (n[2] == 'c')
            return memcmp(n, ":scheme", 7) == 0 ? P_SCHEME : 0;
        return memcmp(n, ":status", 7) == 0 ? P_STATUS : 0;
    case 9: return memcmp(n, ":protocol", 9) == 0 ? P_PROTOCOL : 0;
    case 10: return memcmp(n, ":authority", 10) == 0 ? P_AUTHORITY : 0;
    default: return 0;
    }
}

/* The first byte of the one name of each length that has a rule below (0: none); length 10 has
 * two (connection, keep-alive) and is always looked at. */
static const uint8_t rule_first[18] = {[2] = 't', [4] = 'h', [7] = 'u', [8] = 'p', [10] = 'c', [14] = 'c',
                                       [16] = 'p', [17] = 't'};

/* The rules of RFC 9113 section 8.2.2 and 8.6 that concern one regular field: connection-specific
 * fields, TE other than "trailers" outside requests, one host, content-length's digits; priority
 * is read. Most names are none of the few with a rule: a name whose length and first byte match
 * none of them is done with one table lookup (lowercase: checked by the caller). */
__attribute__((always_inline)) static inline bool
regular_field_ok(const rill_header *f, enum h2_msg kind, struct h2_msg_info *info, const rill_header **host)
{
    const uint8_t *n = f->name;
    if (f->name_len >= sizeof rule_first || (rule_first[f->name_len] != n[0] && f->name_len != 10))
        return true;
    switch (f->name_len) {
    case 2:
        return !eq(n, 2, "te") || (kind == H2_MSG_REQUEST && eq(f->value, f->value_len, "trailers"));
    case 4:
        if (eq(n, 4, "host")) {
            if (*host)
                return false;
            *host = f;
        }
        return true;
    case 7:
        return !eq(n, 7, "upgrade");
    case 8:
        if (eq(n, 8, "priority"))
            h2_parse_priority(f->value, f->value_len, &info->urgency, &info->incremental);
        return true;
    case 10:
        return !eq(n, 10, "connection") && !eq(n, 10, "keep-alive");
    case 14:
        return !eq(n, 14, "content-length") ||
               parse_content_length(f->value, f->value_len, &info->content_length);
    case 16:
        return !eq(n, 16, "proxy-connection");
    case 17:
        return !eq(n, 17, "transfer-encoding");
    default:
        return true;
    }
}

/* A :status value: three digits, 100 or more; -1 otherwise. */
static int parse_status(const rill_header *f)
{
    if (f->value_len != 3)
        return -1;
    int status = 0;
    for (int k = 0; k < 3; k++) {
        if (f->value[k] < '0' || f->value[k] > '9')
            return -1;
        status = status * 10 + (f->value[k] - '0');
    }
    return status < 100 ? -1 : status;
}

/* A response: :status first (as every sender puts it), then regular fields; the same verdict as
 * the general walk below, which takes any other order. */
static bool response_valid(const rill_header *fields, size_t count, struct h2_msg_info *info)
{
    const rill_header *st = &fields[0];
    if (!(st->flags & RILL_HEADER_VALID) && !h2_field_valid(st))
        return false;
    if (st->name_len != 7 || memcmp(st->name, ":status", 7) != 0)
        return false;
    int status = parse_status(st);
    if (status < 0 || status == 101) /* no Upgrade in HTTP/2 */
        return false;
    info->status = status;
    const rill_header *host = NULL;
    for (size_t i = 1; i < count; i++) {
        const rill_header *f = &fields[i];
        if (!(f->flags & RILL_HEADER_VALID) && !h2_field_valid(f))
            return false;
        if (f->name[0] == ':' || !regular_field_ok(f, H2_MSG_RESPONSE, info, &host))
            return false; /* a second :status, another pseudo-header, or a rule broken */
    }
    return true;
}

bool h2_message_valid(const rill_header *fields, size_t count, enum h2_msg kind, bool connect_protocol_ok,
                      struct h2_msg_info *info)
{
    memset(info, 0, sizeof *info);
    info->content_length = -1;
    info->urgency = -1;
    info->incremental = -1;
    if (kind == H2_MSG_RESPONSE && count && fields[0].name_len == 7 && fields[0].name[1] == 's')
        return response_valid(fields, count, info);
    unsigned seen = 0;
    bool regular_seen = false;
    const rill_header *method = NULL, *scheme = NULL, *authority = NULL, *path = NULL, *host = NULL;
    bool request = kind == H2_MSG_REQUEST || kind == H2_MSG_PUSH_REQUEST;
    unsigned allowed = kind == H2_MSG_RESPONSE ? P_STATUS
                       : request ? P_METHOD | P_SCHEME | P_AUTHORITY | P_PATH |
                                       (kind == H2_MSG_REQUEST ? P_PROTOCOL : 0)
                                 : 0;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = &fields[i];
        if (!(f->flags & RILL_HEADER_VALID) && !h2_field_valid(f))
            return false;
        if (f->name[0] == ':') {
            if (regular_seen || kind == H2_MSG_TRAILERS)
                return false;
            unsigned bit = pseudo_bit(f) & allowed;
            if (bit == 0)
                return false; /* unknown or misplaced pseudo-header */
            switch (bit) {
            case P_METHOD: method = f; break;
            case P_SCHEME: scheme = f; break;
            case P_AUTHORITY: authority = f; break;
            case P_PATH: path = f; break;
            case P_STATUS:
                if ((info->status = parse_status(f)) < 0)
                    return false;
                break;
            default: break;
            }
            if (seen & bit)
                return false; /* duplicate */
            seen |= bit;
            continue;
        }
        regular_seen = true;
        if (!regular_field_ok(f, kind, info, &host))
            return false;
    }
    if (kind == H2_MSG_TRAILERS)
        return true;
    if (kind == H2_MSG_RESPONSE)
        return (seen & P_STATUS) != 0 && info->status != 101; /* no Upgrade in HTTP/2 */
    /* requests */
    if (!method)
        return false;
    /* :path holds what an HTTP/1.1 request line would (section 8.3.1: no space, CTL or fragment):
     * the same byte rule, so a request refused over one version is refused over the other. */
    if (path && http_target_span((const char *)path->value, path->value_len) != path->value_len)
        return false;
    if (authority && host && !(host->value_len == authority->value_len &&
                               memcmp(host->value, authority->value, host->value_len) == 0))
        return false;
    info->head = eq(method->value, method->value_len, "HEAD");
    if (eq(method->value, method->value_len, "CONNECT")) {
        info->connect = true;
        if (seen & P_PROTOCOL) {
            /* RFC 8441: extended CONNECT needs all of :scheme, :path, :authority, and our
             * SETTINGS_ENABLE_CONNECT_PROTOCOL. */
            if (!connect_protocol_ok || !scheme || !path || !authority || path->value_len == 0)
                return false;
            info->ext_connect = info->has_protocol = true;
            return true;
        }
        /* Classic CONNECT: :authority only (section 8.5). */
        return authority && !scheme && !path && authority->value_len > 0;
    }
    if (seen & P_PROTOCOL)
        return false;
    if (!scheme || !path || path->value_len == 0)
        return false;
    if (eq(scheme->value, scheme->value_len, "http") || eq(scheme->value, scheme->value_len, "https")) {
        bool options_star = path->value_len == 1 && path->value[0] == '*' &&
                            eq(method->value, method->value_len, "OPTIONS");
        if (path->value[0] != '/' && !options_star)
            return false;
    }
    if (kind == H2_MSG_PUSH_REQUEST) {
        /* Promised requests are safe and cacheable and have no content (section 8.4). */
        if (!eq(method->value, method->value_len, "GET") && !info->head)
            return false;
        if (info->content_length > 0 || !authority)
            return false; /* the server must name the authority it is authoritative for (8.4.1) */
    }
    return true;
}
