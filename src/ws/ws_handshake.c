/* Transport-agnostic handshake pieces (RFC 6455 §4): key and accept, version, sub-protocol,
 * origin. The HTTP/1.1 and HTTP/2 front ends read the header values and call these. */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

bool rill_ws_version_ok(const char *value, size_t len)
{
    if (!value)
        return false;
    trim(&value, &len);
    return len == 2 && value[0] == '1' && value[1] == '3';
}

static bool is_b64(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

bool rill_ws_key_valid(const char *key, size_t len)
{
    if (!key)
        return false;
    trim(&key, &len);
    if (len != RILL_WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(key[i]))
            return false;
    /* The 22nd character carries the last 2 bits of byte 16; its low 4 bits must be zero. */
    return strchr("AQgw", key[21]) != NULL;
}

static int accept_for(const char *key, size_t len, char out[RILL_WS_ACCEPT_LEN + 1])
{
    char buf[RILL_WS_KEY_LEN + sizeof RILL_WS_GUID];
    memcpy(buf, key, len);
    memcpy(buf + len, RILL_WS_GUID, sizeof RILL_WS_GUID - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (EVP_Digest(buf, len + sizeof RILL_WS_GUID - 1, md, &md_len, EVP_sha1(), NULL) != 1 ||
        md_len != 20)
        return RILL_ERR_TLS;
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return RILL_OK;
}

int rill_ws_accept_key(const char *key, size_t len, char out[RILL_WS_ACCEPT_LEN + 1])
{
    if (!rill_ws_key_valid(key, len) || !out)
        return RILL_ERR_INVALID_ARG;
    trim(&key, &len);
    return accept_for(key, len, out);
}

int rill_ws_make_key(char out[RILL_WS_KEY_LEN + 1])
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return RILL_ERR_TLS;
    EVP_EncodeBlock((unsigned char *)out, nonce, sizeof nonce);
    return RILL_OK;
}

bool rill_ws_accept_matches(const char *key, size_t key_len, const char *accept,
                            size_t accept_len)
{
    char expected[RILL_WS_ACCEPT_LEN + 1];
    if (!accept || rill_ws_accept_key(key, key_len, expected) != RILL_OK)
        return false;
    trim(&accept, &accept_len);
    return accept_len == RILL_WS_ACCEPT_LEN && memcmp(accept, expected, accept_len) == 0;
}

int rill_ws_select_subprotocol(const char *offered, size_t len, const char *const *supported,
                               size_t n_supported)
{
    if (!offered || !supported)
        return RILL_ERR_NOT_FOUND;
    const char *end = offered + len;
    const char *p = offered;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *item = p;
        size_t item_len = (size_t)(item_end - p);
        trim(&item, &item_len);
        for (size_t i = 0; item_len && i < n_supported; i++)
            if (supported[i] && strlen(supported[i]) == item_len &&
                memcmp(supported[i], item, item_len) == 0)
                return (int)i;
        p = comma ? comma + 1 : end;
    }
    return RILL_ERR_NOT_FOUND;
}

bool rill_ws_origin_allowed(const char *origin, size_t len, const char *const *allowed,
                            size_t n_allowed)
{
    if (origin)
        trim(&origin, &len);
    for (size_t i = 0; allowed && i < n_allowed; i++) {
        if (!allowed[i])
            continue;
        if (strcmp(allowed[i], "*") == 0)
            return true;
        if (origin && strlen(allowed[i]) == len && strncasecmp(allowed[i], origin, len) == 0)
            return true;
    }
    return false;
}
