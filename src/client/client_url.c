/* http:// and https:// URLs: scheme, host (for SNI), authority (to connect to), path. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client/client_internal.h"

/* Characters a request target may hold: visible ASCII. */
static bool target_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static bool port_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return false;
    long v = 0;
    for (; *p; p++)
        v = v * 10 + (*p - '0');
    return v > 0 && v <= 65535;
}

int client_url_parse(const char *url, struct client_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        out->tls = true;
    } else {
        snprintf(err, errlen, "the URL must start with http:// or https://: %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    size_t alen = strcspn(rest, "/?#");
    char auth[sizeof out->host];
    if (alen == 0 || alen >= sizeof out->host) {
        snprintf(err, errlen, "no host in %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    memcpy(auth, rest, alen);
    auth[alen] = '\0';
    if (memchr(auth, '@', alen)) {
        snprintf(err, errlen, "user names in URLs are not supported: %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    const char *port = NULL;
    if (auth[0] == '[') {
        char *close = strchr(auth, ']');
        if (!close || (close[1] && close[1] != ':')) {
            snprintf(err, errlen, "bad host in %s", url);
            return RILL_ERR_INVALID_ARG;
        }
        memcpy(out->host, auth + 1, (size_t)(close - auth - 1));
        if (close[1])
            port = close + 2;
    } else {
        char *colon = strchr(auth, ':');
        size_t n = colon ? (size_t)(colon - auth) : alen;
        memcpy(out->host, auth, n);
        if (colon)
            port = colon + 1;
    }
    if (!out->host[0] || (port && !port_ok(port))) {
        snprintf(err, errlen, "bad host or port in %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    snprintf(out->host_field, sizeof out->host_field, "%s", auth);
    if (port)
        snprintf(out->authority, sizeof out->authority, "%s", auth);
    else
        snprintf(out->authority, sizeof out->authority, "%s:%d", auth, out->tls ? 443 : 80);
    /* The fragment is the client's own business: never sent. */
    const char *path = rest + alen;
    size_t plen = strcspn(path, "#");
    if (plen + 2 > sizeof out->path) {
        snprintf(err, errlen, "the URL's path is longer than %zu bytes", sizeof out->path - 2);
        return RILL_ERR_INVALID_ARG;
    }
    size_t off = 0;
    if (path[0] != '/')
        out->path[off++] = '/';
    memcpy(out->path + off, path, plen);
    out->path[off + plen] = '\0';
    if (!target_ok(out->path)) {
        snprintf(err, errlen, "spaces or control characters in the URL: %s", url);
        return RILL_ERR_INVALID_ARG;
    }
    return RILL_OK;
}
