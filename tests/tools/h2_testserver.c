/* A small poll() loopback HTTP/2 (prior knowledge, cleartext) server around a server-role rill
 * session, for interop tests with independent clients (python3-h2, nghttp). Not the real server.
 *
 * usage: h2_testserver [--window N] [--conn-window N] [--max-streams N] [--header-list N]
 * Prints "PORT <n>" on stdout once listening on 127.0.0.1. Routes (by :path):
 *   /echo            the request body back (after the request ends), content-length set
 *   /size/N          N bytes of a-z pattern, produced by a pull source
 *   /trailers        "data" then trailers x-trailer: yes
 *   /bigheaders/N    a response header x-big of N bytes
 *   /headers         the request's header fields as the body, "name: value\n" each
 *   /info            103 Early Hints then 200
 *   /push            pushes /pushed, then 200
 *   /shutdown        200, then a graceful GOAWAY
 *   anything else    404
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rill/h2.h"

#define MAX_CONN 64

struct req {
    char path[256];
    uint8_t *body;
    size_t len, cap;
    char *fields;
    size_t fields_len;
    size_t size_left;
    size_t produced;
    char *big; /* header value kept until the response is encoded */
};

struct conn {
    int fd;
    rill_h2_session *s;
};

static rill_h2_options g_opt;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void append(uint8_t **p, size_t *len, size_t *cap, const void *d, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n)
            c *= 2;
        *p = realloc(*p, c);
        *cap = c;
    }
    memcpy(*p + *len, d, n);
    *len += n;
}

#define HDR(n, v) {(const uint8_t *)(n), strlen(n), (const uint8_t *)(v), strlen(v), 0}

static int on_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    if (kind != RILL_H2_HEADERS_REQUEST)
        return 0;
    struct req *r = calloc(1, sizeof *r);
    size_t fcap = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].name_len == 5 && memcmp(f[i].name, ":path", 5) == 0) {
            size_t l = f[i].value_len < sizeof r->path - 1 ? f[i].value_len : sizeof r->path - 1;
            memcpy(r->path, f[i].value, l);
        }
        append((uint8_t **)&r->fields, &r->fields_len, &fcap, f[i].name, f[i].name_len);
        append((uint8_t **)&r->fields, &r->fields_len, &fcap, ": ", 2);
        append((uint8_t **)&r->fields, &r->fields_len, &fcap, f[i].value, f[i].value_len);
        append((uint8_t **)&r->fields, &r->fields_len, &fcap, "\n", 1);
    }
    rill_h2_stream_set_user(s, sid, r);
    return 0;
}

static int on_data(rill_h2_session *s, int32_t sid, const uint8_t *d, size_t n, void *user)
{
    struct req *r = rill_h2_stream_user(s, sid);
    if (r && strcmp(r->path, "/echo") == 0)
        append(&r->body, &r->len, &r->cap, d, n);
    rill_h2_consume(s, sid, n);
    return 0;
}

static int pattern_read(rill_h2_session *s, int32_t sid, uint8_t *buf, size_t max, bool *eof, void *user)
{
    struct req *r = user;
    size_t n = r->size_left < max ? r->size_left : max;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)('a' + (r->produced + i) % 26);
    r->produced += n;
    r->size_left -= n;
    *eof = r->size_left == 0;
    return (int)n;
}

static void released(rill_h2_session *s, int32_t sid, void *token, void *user)
{
    free(token); /* bodies handed over with submit_data are owned by the release */
}

static int on_end_stream(rill_h2_session *s, int32_t sid, void *user)
{
    struct req *r = rill_h2_stream_user(s, sid);
    if (!r)
        return 0;
    char clen[32];
    if (strcmp(r->path, "/echo") == 0) {
        snprintf(clen, sizeof clen, "%zu", r->len);
        rill_header h[] = {HDR(":status", "200"), HDR("content-length", clen)};
        rill_h2_submit_response(s, sid, h, 2, 0);
        rill_h2_submit_data(s, sid, r->body, r->len, RILL_H2_FLAG_END_STREAM, r->body);
        r->body = NULL;
    } else if (strncmp(r->path, "/size/", 6) == 0) {
        r->size_left = strtoull(r->path + 6, NULL, 10);
        snprintf(clen, sizeof clen, "%zu", r->size_left);
        rill_header h[] = {HDR(":status", "200"), HDR("content-length", clen)};
        if (r->size_left == 0) {
            rill_h2_submit_response(s, sid, h, 2, RILL_H2_FLAG_END_STREAM);
        } else {
            rill_h2_submit_response(s, sid, h, 2, 0);
            rill_h2_set_data_source(s, sid, pattern_read, r);
        }
    } else if (strcmp(r->path, "/trailers") == 0) {
        rill_header h[] = {HDR(":status", "200")};
        rill_header t[] = {HDR("x-trailer", "yes")};
        rill_h2_submit_response(s, sid, h, 1, 0);
        rill_h2_submit_data(s, sid, (const uint8_t *)"data", 4, 0, NULL);
        rill_h2_submit_trailers(s, sid, t, 1);
    } else if (strncmp(r->path, "/bigheaders/", 12) == 0) {
        size_t n = strtoull(r->path + 12, NULL, 10);
        r->big = malloc(n + 1);
        memset(r->big, 'h', n);
        r->big[n] = 0;
        rill_header h[] = {HDR(":status", "200"), HDR("x-big", r->big)};
        rill_h2_submit_response(s, sid, h, 2, RILL_H2_FLAG_END_STREAM);
    } else if (strcmp(r->path, "/headers") == 0) {
        snprintf(clen, sizeof clen, "%zu", r->fields_len);
        rill_header h[] = {HDR(":status", "200"), HDR("content-length", clen)};
        rill_h2_submit_response(s, sid, h, 2, 0);
        rill_h2_submit_data(s, sid, (const uint8_t *)r->fields, r->fields_len, RILL_H2_FLAG_END_STREAM, r->fields);
        r->fields = NULL;
    } else if (strcmp(r->path, "/info") == 0) {
        rill_header e[] = {HDR(":status", "103"), HDR("link", "</style.css>; rel=preload")};
        rill_header h[] = {HDR(":status", "200")};
        rill_h2_submit_response(s, sid, e, 2, 0);
        rill_h2_submit_response(s, sid, h, 1, RILL_H2_FLAG_END_STREAM);
    } else if (strcmp(r->path, "/push") == 0) {
        rill_header p[] = {HDR(":method", "GET"), HDR(":scheme", "http"), HDR(":path", "/pushed"),
                           HDR(":authority", "localhost")};
        int32_t pid = rill_h2_submit_push_promise(s, sid, p, 4, NULL);
        rill_header h[] = {HDR(":status", "200")};
        rill_h2_submit_response(s, sid, h, 1, 0);
        rill_h2_submit_data(s, sid, (const uint8_t *)"main", 4, RILL_H2_FLAG_END_STREAM, NULL);
        if (pid > 0) {
            rill_h2_submit_response(s, pid, h, 1, 0);
            rill_h2_submit_data(s, pid, (const uint8_t *)"pushed", 6, RILL_H2_FLAG_END_STREAM, NULL);
        }
    } else if (strcmp(r->path, "/shutdown") == 0) {
        rill_header h[] = {HDR(":status", "200")};
        rill_h2_submit_response(s, sid, h, 1, RILL_H2_FLAG_END_STREAM);
        rill_h2_submit_shutdown(s);
    } else {
        rill_header h[] = {HDR(":status", "404")};
        rill_h2_submit_response(s, sid, h, 1, RILL_H2_FLAG_END_STREAM);
    }
    return 0;
}

static int on_close(rill_h2_session *s, int32_t sid, uint32_t code, void *user)
{
    struct req *r = rill_h2_stream_user(s, sid);
    if (r) {
        free(r->body);
        free(r->fields);
        free(r->big);
        free(r);
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    rill_h2_session_free(c->s);
    close(c->fd);
    c->fd = -1;
    c->s = NULL;
}

/* Writes what the session has; false when the socket failed. */
static bool flush_out(struct conn *c)
{
    struct iovec iov[64];
    int n;
    while ((n = rill_h2_session_output(c->s, iov, 64)) > 0) {
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK;
        rill_h2_session_output_sent(c->s, (size_t)w);
    }
    return true;
}

int main(int argc, char **argv)
{
    rill_h2_options_init(&g_opt, RILL_H2_SERVER);
    g_opt.local.max_concurrent_streams = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        uint32_t v = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--window") == 0)
            g_opt.local.initial_window_size = v;
        else if (strcmp(argv[i], "--conn-window") == 0)
            g_opt.connection_window = v;
        else if (strcmp(argv[i], "--max-streams") == 0)
            g_opt.local.max_concurrent_streams = v;
        else if (strcmp(argv[i], "--header-list") == 0)
            g_opt.local.max_header_list_size = v;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0) {
        perror("listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);

    static const rill_h2_callbacks cb = {.size = sizeof cb, .on_headers = on_headers, .on_data = on_data, .on_end_stream = on_end_stream,
                            .on_stream_close = on_close, .on_data_released = released};
    struct conn conns[MAX_CONN];
    for (int i = 0; i < MAX_CONN; i++)
        conns[i].fd = -1;
    static uint8_t buf[65536];
    for (;;) {
        struct pollfd pfd[MAX_CONN + 1];
        int map[MAX_CONN + 1];
        int np = 0;
        pfd[np].fd = lfd;
        pfd[np].events = POLLIN;
        map[np++] = -1;
        for (int i = 0; i < MAX_CONN; i++) {
            struct conn *c = &conns[i];
            if (c->fd < 0)
                continue;
            bool rd = rill_h2_session_want_read(c->s), wr = rill_h2_session_want_write(c->s);
            if (!rd && !wr) {
                conn_close(c);
                continue;
            }
            pfd[np].fd = c->fd;
            pfd[np].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
            map[np++] = i;
        }
        if (poll(pfd, (nfds_t)np, 1000) < 0 && errno != EINTR)
            return 1;
        uint64_t t = now_ms();
        for (int k = 0; k < np; k++) {
            if (map[k] < 0) {
                if (!(pfd[k].revents & POLLIN))
                    continue;
                int fd = accept(lfd, NULL, NULL);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                int slot = -1;
                for (int i = 0; i < MAX_CONN && slot < 0; i++)
                    if (conns[i].fd < 0)
                        slot = i;
                if (slot < 0) {
                    close(fd);
                    continue;
                }
                g_opt.now_ms = t;
                conns[slot].fd = fd;
                conns[slot].s = rill_h2_session_new(RILL_H2_SERVER, &g_opt, &cb, NULL);
                continue;
            }
            struct conn *c = &conns[map[k]];
            if (c->fd < 0)
                continue;
            rill_h2_session_tick(c->s, t);
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    r = 0;
                else if (r <= 0) {
                    conn_close(c);
                    continue;
                }
                if (r > 0 && rill_h2_session_recv(c->s, buf, (size_t)r) < 0) {
                    flush_out(c);
                    conn_close(c);
                    continue;
                }
            }
            if (!flush_out(c))
                conn_close(c);
        }
    }
}
