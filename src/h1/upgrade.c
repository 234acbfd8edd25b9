/* Choosing the protocol on an HTTP/1.1 connection: the HTTP/2 prior-knowledge preface, the h2c
 * Upgrade (RFC 7540 §3.2) and the WebSocket opening handshake (RFC 6455 §4.2). */
#include <string.h>

#include "rill/ws.h"

#include "h1/h1_chars.h"
#include "h1/h1_internal.h"

rill_h1_preface rill_h1_preface_check(const uint8_t *data, size_t len)
{
    size_t n = len < RILL_H1_H2_PREFACE_LEN ? len : RILL_H1_H2_PREFACE_LEN;
    if (n && memcmp(data, RILL_H1_H2_PREFACE, n) != 0)
        return RILL_H1_PREFACE_NO;
    return n == RILL_H1_H2_PREFACE_LEN ? RILL_H1_PREFACE_YES : RILL_H1_PREFACE_PARTIAL;
}

rill_h1_preface rill_h1_preface_classify(const uint8_t *data, size_t len)
{
    rill_h1_preface pre = rill_h1_preface_check(data, len);
    if (pre != RILL_H1_PREFACE_NO)
        return pre;
    const char *s = (const char *)data;
    size_t start = 0;
    while (start < len && (s[start] == '\r' || s[start] == '\n'))
        start++; /* empty lines before a request line (RFC 9112 §2.2) */
    size_t method_len = h1_span(s + start, len - start, H1_TCHAR);
    size_t after = start + method_len;
    if (after == len)
        return RILL_H1_PREFACE_PARTIAL;
    if (method_len == 0 || s[after] != ' ')
        return RILL_H1_PREFACE_INVALID;
    const char *lf = memchr(s + after, '\n', len - after);
    if (!lf)
        return RILL_H1_PREFACE_PARTIAL;
    size_t end = (size_t)(lf - s);
    if (s[end - 1] == '\r')
        end--;
    /* method SP ... SP "HTTP/" DIGIT "." DIGIT (9 bytes; the space may be the method's own: the
     * HTTP/1.1 parser then answers 400) */
    if (end - after < 9)
        return RILL_H1_PREFACE_INVALID;
    const char *v = s + end - 9;
    if (memcmp(v, " HTTP/", 6) != 0 || !h1_is((uint8_t)v[6], H1_DIGIT) || v[7] != '.' ||
        !h1_is((uint8_t)v[8], H1_DIGIT))
        return RILL_H1_PREFACE_INVALID;
    /* an HTTP/2 client whose preface went wrong after its first line */
    static const char pri_line[] = "PRI * HTTP/2.0";
    if (end - start == sizeof pri_line - 1 && memcmp(s + start, pri_line, sizeof pri_line - 1) == 0)
        return RILL_H1_PREFACE_INVALID;
    return RILL_H1_PREFACE_NO;
}

static int b64_value(uint8_t c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Length of the text without its '=' padding, or (size_t)-1 if the padding is malformed. */
static size_t b64_unpadded(const char *in, size_t len)
{
    size_t n = len;
    while (n > 0 && in[n - 1] == '=' && len - n < 2)
        n--;
    if (n != len && len % 4 != 0)
        return (size_t)-1; /* padding present: the whole text comes in quads */
    return n;
}

static size_t b64_decoded_len(size_t chars)
{
    return chars / 4 * 3 + (chars % 4 ? chars % 4 - 1 : 0);
}

long rill_h1_base64_decode(const char *in, size_t len, int url, uint8_t *out, size_t cap)
{
    size_t n = b64_unpadded(in, len);
    if (n == (size_t)-1 || n % 4 == 1 || b64_decoded_len(n) > cap)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((uint8_t)in[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1))
        return -1; /* non-zero leftover bits: not canonical */
    return (long)o;
}

int rill_h1_h2c_upgrade(const rill_h1_head *head, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!head || !out_len)
        return RILL_ERR_INVALID_ARG;
    *out_len = 0;
    if (head->version_minor < 1 || !rill_h1_head_has_token(head, "upgrade", "h2c") ||
        !rill_h1_head_has_token(head, "connection", "upgrade") ||
        !rill_h1_head_has_token(head, "connection", "http2-settings"))
        return 0;
    size_t pos = 0;
    const rill_header *f = rill_h1_find_field(head->fields, head->nfields, "http2-settings", &pos);
    if (!f || rill_h1_find_field(head->fields, head->nfields, "http2-settings", &pos))
        return 0; /* none, or more than one */
    size_t chars = b64_unpadded((const char *)f->value, f->value_len);
    if (chars == 0 || chars == (size_t)-1 || chars % 4 == 1)
        return 0;
    size_t need = b64_decoded_len(chars);
    if (need % 6 != 0)
        return 0; /* SETTINGS entries are 6 bytes each */
    if (need > cap)
        return RILL_ERR_BUFFER_TOO_SMALL;
    long got = rill_h1_base64_decode((const char *)f->value, f->value_len, 1, out, cap);
    if (got < 0)
        return 0;
    *out_len = (size_t)got;
    return 1;
}

/* The only field named `name`, or NULL when absent or repeated (*count says which). */
static const rill_header *single_field(const rill_h1_head *head, const char *name, int *count)
{
    size_t pos = 0;
    const rill_header *f = rill_h1_find_field(head->fields, head->nfields, name, &pos);
    *count = f ? 1 : 0;
    if (f && rill_h1_find_field(head->fields, head->nfields, name, &pos)) {
        *count = 2;
        return NULL;
    }
    return f;
}

int rill_h1_websocket_upgrade(const rill_h1_head *head, rill_h1_ws_upgrade *out)
{
    if (!head || !out)
        return RILL_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (!rill_h1_head_has_token(head, "upgrade", "websocket"))
        return 0;
    if (head->method_len != 3 || memcmp(head->method, "GET", 3) != 0 || head->version_minor < 1 ||
        !head->connection_upgrade)
        return RILL_ERR_PROTOCOL;
    int count;
    const rill_header *key = single_field(head, "sec-websocket-key", &count);
    uint8_t raw[16];
    if (!key || key->value_len != 24 ||
        rill_h1_base64_decode((const char *)key->value, key->value_len, 0, raw, sizeof raw) != 16)
        return RILL_ERR_PROTOCOL;
    const rill_header *version = single_field(head, "sec-websocket-version", &count);
    if (!version)
        return RILL_ERR_PROTOCOL;
    if (version->value_len != 2 || memcmp(version->value, "13", 2) != 0)
        return RILL_ERR_UNSUPPORTED;
    out->key = (const char *)key->value;
    out->key_len = key->value_len;
    size_t pos = 0;
    const rill_header *f =
        rill_h1_find_field(head->fields, head->nfields, "sec-websocket-protocol", &pos);
    if (f) {
        out->protocols = (const char *)f->value;
        out->protocols_len = f->value_len;
    }
    pos = 0;
    f = rill_h1_find_field(head->fields, head->nfields, "sec-websocket-extensions", &pos);
    if (f) {
        out->extensions = (const char *)f->value;
        out->extensions_len = f->value_len;
    }
    return 1;
}

int rill_h1_websocket_accept(const char *key, size_t key_len, char out[29])
{
    /* One implementation of the handshake digest, in the WebSocket layer. */
    if (!key || !out || key_len > 64)
        return RILL_ERR_INVALID_ARG;
    return rill_ws_accept_key(key, key_len, out);
}

bool rill_h1_websocket_response_ok(const rill_h1_head *head, const char *key, size_t key_len)
{
    char want[29];
    if (!head || !key || head->status != 101 ||
        !rill_h1_head_has_token(head, "upgrade", "websocket") ||
        !rill_h1_head_has_token(head, "connection", "upgrade") ||
        rill_h1_websocket_accept(key, key_len, want) != 0)
        return false;
    int count;
    const rill_header *accept = single_field(head, "sec-websocket-accept", &count);
    return accept && accept->value_len == 28 && memcmp(accept->value, want, 28) == 0;
}
