/* A blocking loopback HTTP/2 (prior knowledge, cleartext) client around a client-role rill
 * session, for interop tests against independent servers (nghttpd, python3-h2).
 *
 * usage: h2_testclient PORT [--window N] [--post-bytes N] PATH...
 * All paths are requested concurrently (GET, or POST with N pattern bytes). For each response it
 * prints, in stream order:  "<path> <status> <body bytes> <fnv1a-32 of body, hex> [trailers: k=v ...]"
 * then "pushed <n>" (PUSH_PROMISEs received). Exit status 0 when every stream completed without reset and the connection stayed healthy.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill/h2.h"

#define MAX_REQ 256

struct resp {
    const char *path;
    int status;
    size_t bytes;
    uint32_t hash;
    char trailers[256];
    bool done, reset;
};

static struct resp g_resp[MAX_REQ];
static int g_open;
static int g_pushed;
static uint8_t *g_post;
static size_t g_post_len;

static int on_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    struct resp *r = rill_h2_stream_user(s, sid);
    if (!r)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (kind == RILL_H2_HEADERS_RESPONSE && f[i].name_len == 7 && memcmp(f[i].name, ":status", 7) == 0)
            r->status = atoi((const char *)f[i].value); /* 3 digits followed by a non-digit or end */
        if (kind == RILL_H2_HEADERS_TRAILERS) {
            size_t l = strlen(r->trailers);
            snprintf(r->trailers + l, sizeof r->trailers - l, " %.*s=%.*s", (int)f[i].name_len,
                     (const char *)f[i].name, (int)f[i].value_len, (const char *)f[i].value);
        }
    }
    return 0;
}

static int on_data(rill_h2_session *s, int32_t sid, const uint8_t *d, size_t n, void *user)
{
    struct resp *r = rill_h2_stream_user(s, sid);
    if (r) {
        r->bytes += n;
        for (size_t i = 0; i < n; i++)
            r->hash = (r->hash ^ d[i]) * 16777619u;
    }
    rill_h2_consume(s, sid, n);
    return 0;
}

static int on_push(rill_h2_session *s, int32_t sid, int32_t pid, const rill_header *f, size_t n, void *user)
{
    g_pushed++;
    return 0;
}

static int on_close(rill_h2_session *s, int32_t sid, uint32_t code, void *user)
{
    struct resp *r = rill_h2_stream_user(s, sid);
    if (r) {
        r->done = true;
        r->reset = code != RILL_H2_NO_ERROR;
        g_open--; /* pushed streams carry no user data and are not waited for */
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: h2_testclient PORT [--window N] [--post-bytes N] PATH...\n");
        return 2;
    }
    rill_h2_options opt;
    rill_h2_options_init(&opt, RILL_H2_CLIENT);
    int first = 2;
    while (first + 1 < argc && strncmp(argv[first], "--", 2) == 0) {
        if (strcmp(argv[first], "--window") == 0)
            opt.local.initial_window_size = (uint32_t)strtoul(argv[first + 1], NULL, 10);
        else if (strcmp(argv[first], "--post-bytes") == 0)
            g_post_len = strtoul(argv[first + 1], NULL, 10);
        first += 2;
    }
    if (g_post_len) {
        g_post = malloc(g_post_len);
        for (size_t i = 0; i < g_post_len; i++)
            g_post[i] = (uint8_t)('a' + i % 26);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    static const rill_h2_callbacks cb = {.size = sizeof cb, .on_headers = on_headers, .on_data = on_data, .on_stream_close = on_close,
                            .on_push_promise = on_push};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_CLIENT, &opt, &cb, NULL);
    int nreq = 0;
    for (int i = first; i < argc && nreq < MAX_REQ; i++, nreq++) {
        struct resp *r = &g_resp[nreq];
        r->path = argv[i];
        r->hash = 2166136261u;
        const char *method = g_post_len ? "POST" : "GET";
        rill_header h[] = {{(const uint8_t *)":method", 7, (const uint8_t *)method, strlen(method), 0},
                           {(const uint8_t *)":scheme", 7, (const uint8_t *)"http", 4, 0},
                           {(const uint8_t *)":path", 5, (const uint8_t *)argv[i], strlen(argv[i]), 0},
                           {(const uint8_t *)":authority", 10, (const uint8_t *)"localhost", 9, 0}};
        int32_t sid = rill_h2_submit_request(s, h, 4, g_post_len ? 0 : RILL_H2_FLAG_END_STREAM, r);
        if (sid < 0) {
            fprintf(stderr, "submit: %s\n", rill_strerror(sid));
            return 1;
        }
        if (g_post_len)
            rill_h2_submit_data(s, sid, g_post, g_post_len, RILL_H2_FLAG_END_STREAM, NULL);
        g_open++;
    }
    static uint8_t buf[65536];
    bool ok = true;
    while (g_open > 0) {
        struct iovec iov[64];
        int n;
        while ((n = rill_h2_session_output(s, iov, 64)) > 0) {
            ssize_t w = writev(fd, iov, n);
            if (w <= 0) {
                ok = false;
                break;
            }
            rill_h2_session_output_sent(s, (size_t)w);
        }
        if (!ok || !rill_h2_session_want_read(s))
            break;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0 || rill_h2_session_recv(s, buf, (size_t)r) < 0) {
            ok = false;
            break;
        }
    }
    for (int i = 0; i < nreq; i++) {
        struct resp *r = &g_resp[i];
        printf("%s %d %zu %08x%s%s\n", r->path, r->status, r->bytes, r->hash, r->trailers[0] ? " trailers:" : "",
               r->trailers);
        if (!r->done || r->reset)
            ok = false;
    }
    printf("pushed %d\n", g_pushed);
    rill_h2_submit_goaway(s, RILL_H2_NO_ERROR, NULL, 0);
    struct iovec iov[8];
    int n = rill_h2_session_output(s, iov, 8);
    if (n > 0 && writev(fd, iov, n) < 0)
        ok = false;
    rill_h2_session_free(s);
    close(fd);
    free(g_post);
    return ok ? 0 : 1;
}
