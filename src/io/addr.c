/* "HOST:PORT" parsing and formatting for IPv4 and IPv6. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/io.h"

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return RILL_ERR_INVALID_ARG;
}

static bool parse_port(const char *s, uint16_t *port)
{
    if (!*s || strlen(s) > 5)
        return false;
    unsigned v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

int rill_io_addr_parse(const char *spec, struct rill_io_addr *out, char *err, size_t errlen)
{
    if (!spec || !out)
        return bad(err, errlen, "no address given");
    memset(out, 0, sizeof *out);
    char host[256];
    const char *port_str;
    bool bracketed = spec[0] == '[';
    if (bracketed) {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return bad(err, errlen, "bad address '%s': want [IPV6]:PORT", spec);
        size_t n = (size_t)(close - spec - 1);
        if (n >= sizeof host)
            return bad(err, errlen, "bad address '%s': host too long", spec);
        memcpy(host, spec + 1, n);
        host[n] = '\0';
        port_str = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon)
            return bad(err, errlen, "bad address '%s': want HOST:PORT", spec);
        if (memchr(spec, ':', (size_t)(colon - spec)))
            return bad(err, errlen, "bad address '%s': put IPv6 addresses in brackets, e.g. [::1]:8443",
                       spec);
        size_t n = (size_t)(colon - spec);
        if (n >= sizeof host)
            return bad(err, errlen, "bad address '%s': host too long", spec);
        memcpy(host, spec, n);
        host[n] = '\0';
        port_str = colon + 1;
    }
    uint16_t port;
    if (!parse_port(port_str, &port))
        return bad(err, errlen, "bad address '%s': port must be a number 0-65535", spec);

    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (bracketed) {
        if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1)
            return bad(err, errlen, "bad address '%s': '%s' is not an IPv6 address", spec, host);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out->len = sizeof *v6;
        return RILL_OK;
    }
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out->len = sizeof *v4;
        return RILL_OK;
    }
    /* A host name: resolved once, here, not on any hot path. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return bad(err, errlen, "bad address '%s': cannot resolve '%s': %s", spec, host,
                   rc ? gai_strerror(rc) : "no address");
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    if (out->ss.ss_family == AF_INET)
        v4->sin_port = htons(port);
    else
        v6->sin6_port = htons(port);
    return RILL_OK;
}

uint16_t rill_io_addr_port(const struct rill_io_addr *addr)
{
    if (addr->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
    if (addr->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
    return 0;
}

void rill_io_addr_format(const struct rill_io_addr *addr, char *buf, size_t buflen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&addr->ss)->sin_addr, host, sizeof host);
        snprintf(buf, buflen, "%s:%u", host, rill_io_addr_port(addr));
    } else if (addr->ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&addr->ss)->sin6_addr, host, sizeof host);
        snprintf(buf, buflen, "[%s]:%u", host, rill_io_addr_port(addr));
    } else {
        snprintf(buf, buflen, "(unknown address)");
    }
}
