/* Where a redirect goes: a Location value resolved against the URL that answered it (RFC 3986
 * section 5.2), as an absolute http(s) URL rill_client_request accepts. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/get.h"

/* Length of a scheme and its ':' at the start of s, or 0 when s starts with none. */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return s[i] == ':' ? i + 1 : 0;
}

/* Removes "." and ".." segments from the path that starts p (up to '?' or the end), in place. */
static void remove_dots(char *p)
{
    size_t plen = strcspn(p, "?");
    char *rest = p + plen; /* the query, kept as it is */
    char *out = p;         /* the output path grows here, never past the input */
    const char *in = p;
    const char *end = p + plen;
    while (in < end) {
        const char *seg_end = memchr(in + 1, '/', (size_t)(end - in - 1));
        if (!seg_end)
            seg_end = end;
        size_t n = (size_t)(seg_end - in); /* "/seg" */
        if ((n == 2 && in[1] == '.') || (n == 3 && in[1] == '.' && in[2] == '.')) {
            if (n == 3) { /* back to before the last output segment */
                while (out > p && *--out != '/')
                    ;
            }
            if (seg_end == end) /* "/a/." and "/a/.." end with a slash */
                *out++ = '/';
        } else {
            memmove(out, in, n);
            out += n;
        }
        in = seg_end;
    }
    if (out == p)
        *out++ = '/';
    memmove(out, rest, strlen(rest) + 1);
}

/* Copies s, percent-encoding what a request target cannot carry as it is; NULL (why set) for
 * control characters. */
static char *encode(const char *s, char *why, size_t whylen)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "the redirect location has a control character");
            return NULL;
        }
        n += *p == ' ' || *p >= 0x80 ? 3 : 1;
    }
    char *out = malloc(n + 1);
    if (!out) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ' || *p >= 0x80)
            o += sprintf(o, "%%%02X", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    return out;
}

char *get_url_resolve(const char *base, const char *loc, char *why, size_t whylen)
{
    while (*loc == ' ' || *loc == '\t')
        loc++;
    char *ref = encode(loc, why, whylen);
    if (!ref)
        return NULL;
    ref[strcspn(ref, "#")] = '\0'; /* fragments are not sent */
    size_t bs = scheme_len(base);            /* "http:" */
    const char *auth = base + bs + 2;        /* base is absolute: "scheme://authority..." */
    size_t alen = strcspn(auth, "/?#");
    const char *bpath = auth + alen;          /* "/a/b?q#f", or "" */
    size_t bplen = strcspn(bpath, "?#");
    size_t bqlen = strcspn(bpath + bplen, "#");
    size_t rs = scheme_len(ref);
    size_t cap = strlen(base) + strlen(ref) + 4;
    char *out = malloc(cap);
    if (!out) {
        free(ref);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    size_t pathat; /* where the path starts in out, for the dot segments */
    if (rs) {
        if (!((rs == 5 && strncasecmp(ref, "http:", 5) == 0) ||
              (rs == 6 && strncasecmp(ref, "https:", 6) == 0)) ||
            strncmp(ref + rs, "//", 2) != 0) {
            snprintf(why, whylen, "cannot follow a redirect to %.*s URLs", (int)(rs - 1), ref);
            free(ref);
            free(out);
            return NULL;
        }
        strcpy(out, ref);
        pathat = rs + 2 + strcspn(ref + rs + 2, "/?");
    } else if (ref[0] == '/' && ref[1] == '/') {
        snprintf(out, cap, "%.*s%s", (int)bs, base, ref);
        pathat = bs + 2 + strcspn(ref + 2, "/?");
    } else {
        int k = snprintf(out, cap, "%.*s//%.*s", (int)bs, base, (int)alen, auth);
        pathat = (size_t)k;
        if (ref[0] == '/') {
            snprintf(out + k, cap - (size_t)k, "%s", ref);
        } else if (ref[0] == '?') {
            snprintf(out + k, cap - (size_t)k, "%.*s%s", (int)bplen, bpath, ref);
        } else if (ref[0] == '\0') {
            snprintf(out + k, cap - (size_t)k, "%.*s", (int)(bplen + bqlen), bpath);
        } else { /* relative: beside the base's last segment */
            size_t dir = bplen;
            while (dir > 0 && bpath[dir - 1] != '/')
                dir--;
            if (dir == 0)
                snprintf(out + k, cap - (size_t)k, "/%s", ref);
            else
                snprintf(out + k, cap - (size_t)k, "%.*s%s", (int)dir, bpath, ref);
        }
    }
    free(ref);
    if (out[pathat] == '/') {
        remove_dots(out + pathat);
    } else { /* "http://host" or "http://host?q": the path is "/" */
        memmove(out + pathat + 1, out + pathat, strlen(out + pathat) + 1);
        out[pathat] = '/';
    }
    return out;
}
