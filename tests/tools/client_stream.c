/* client_stream: one request through rill's client library (rill/client.h) for the integration
 * tests: a request body streamed from a file with back-pressure (rill_client_request_stream,
 * rill_client_stream_write, on_drain, rill_client_stream_end), and a download that can be paused.
 *
 * usage: client_stream URL [--h2] [--data FILE] [--piece N] [--buffer N] [--pause-ms MS]
 *                          [--trailer NAME=VALUE] [--method M] [--length] [--header NAME:VALUE]
 *   --h2         HTTP/2 by prior knowledge (http://)
 *   --data FILE  stream FILE as the body (POST unless --method), N bytes per write (default 65536)
 *   --buffer N   the client's stream_buffer
 *   --length     send a content-length field (the file's size) instead of an unknown length
 *   --pause-ms   pause the response at its head for MS milliseconds
 *   --header     one more request field (up to 8)
 * Prints "key value" lines: status, protocol, informational (one per 1xx), body_bytes,
 * body_sha256, drains, max_buffered, paused_data (on_data bytes while paused: must be 0),
 * wire_data_at_resume (DATA payload bytes the HTTP/2 connection had received when the pause
 * ended, read off the client's trace), trailers. Exit status 0 when the request ended without an
 * error (the reason on stderr otherwise), 2 for bad arguments. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "rill/client.h"

static struct {
    rill_io_loop *loop;
    rill_client_stream *st;
    int fd;
    size_t piece;
    bool ended, blocked;
    int drains;
    size_t max_buffered;
    uint32_t pause_ms;
    bool paused;
    rill_io_timer *timer;
    uint64_t paused_data, wire_data, wire_at_resume;
    int status;
    char protocol[16];
    uint64_t body_bytes;
    EVP_MD_CTX *sha;
    int err;
    const char *trailer;
} g;

static void pump(void)
{
    static uint8_t buf[1 << 20];
    while (!g.ended && !g.blocked) {
        ssize_t n = read(g.fd, buf, g.piece);
        if (n < 0) {
            perror("read");
            exit(1);
        }
        if (n == 0) {
            rill_header t[1];
            size_t nt = 0;
            const char *eq = g.trailer ? strchr(g.trailer, '=') : NULL;
            if (eq) {
                t[0] = (rill_header){(const uint8_t *)g.trailer, (size_t)(eq - g.trailer),
                                     (const uint8_t *)eq + 1, strlen(eq + 1), 0};
                nt = 1;
            }
            int rc = rill_client_stream_end(g.st, nt ? t : NULL, nt);
            if (rc < 0) {
                fprintf(stderr, "client_stream: end: %s\n", rill_strerror(rc));
                exit(1);
            }
            g.ended = true;
            return;
        }
        int rc = rill_client_stream_write(g.st, buf, (size_t)n);
        size_t b = rill_client_stream_buffered(g.st);
        if (b > g.max_buffered)
            g.max_buffered = b;
        if (rc == RILL_ERR_WOULD_BLOCK)
            g.blocked = true;
        else if (rc < 0) {
            fprintf(stderr, "client_stream: write: %s\n", rill_strerror(rc));
            exit(1);
        }
    }
}

static void on_drain(rill_client_stream *st, void *user)
{
    g.drains++;
    g.blocked = false;
    pump();
}

static void on_info(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    printf("informational %d", status);
    for (size_t i = 0; i < n; i++)
        printf(" %.*s=%.*s", (int)f[i].name_len, (const char *)f[i].name, (int)f[i].value_len,
               (const char *)f[i].value);
    printf("\n");
}

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                        void *user)
{
    g.status = status;
    if (g.pause_ms) {
        rill_client_stream_pause(st, true);
        g.paused = true;
        rill_io_timer_arm(g.timer, g.pause_ms);
    }
}

static void on_data(rill_client_stream *st, const uint8_t *d, size_t n, void *user)
{
    if (g.paused)
        g.paused_data += n;
    g.body_bytes += n;
    EVP_DigestUpdate(g.sha, d, n);
}

static void on_trailers(rill_client_stream *st, const rill_header *f, size_t n, void *user)
{
    for (size_t i = 0; i < n; i++)
        printf("trailer %.*s=%.*s\n", (int)f[i].name_len, (const char *)f[i].name,
               (int)f[i].value_len, (const char *)f[i].value);
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    g.err = err;
    const char *p = rill_client_stream_protocol(st);
    snprintf(g.protocol, sizeof g.protocol, "%s", p ? p : "-");
    if (err)
        fprintf(stderr, "client_stream: %s\n", why);
    rill_io_loop_stop(g.loop);
}

static void on_resume(rill_io_timer *t, void *arg)
{
    g.wire_at_resume = g.wire_data;
    g.paused = false;
    rill_client_stream_pause(g.st, false);
}

/* "recv DATA stream=1 length=16384 flags=0x00": what the connection received, paused or not. */
static void on_trace(rill_client *c, const char *line, void *user)
{
    const char *l = strstr(line, "length=");
    if (strncmp(line, "recv DATA ", 10) == 0 && l)
        g.wire_data += strtoull(l + 7, NULL, 10);
}

static const rill_client_callbacks callbacks = {
    .size = sizeof callbacks, .on_response = on_response, .on_data = on_data,
    .on_trailers = on_trailers, .on_end = on_end, .on_drain = on_drain,
    .on_informational = on_info};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: client_stream URL [--h2] [--data FILE] [--piece N] [--buffer N] "
                        "[--pause-ms MS] [--trailer NAME=VALUE] [--method M] [--length] "
                        "[--header NAME:VALUE]\n");
        return 2;
    }
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = argv[1];
    o.request_timeout_ms = 300000;
    const char *data = NULL, *method = NULL;
    rill_header extra[8];
    size_t nextra = 0;
    bool length = false;
    g.piece = 65536;
    g.fd = -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--h2"))
            o.h2_prior_knowledge = true;
        else if (!strcmp(a, "--length"))
            length = true;
        else if (!strcmp(a, "--data") && v)
            data = argv[++i];
        else if (!strcmp(a, "--header") && v && strchr(v, ':') && nextra < 8) {
            const char *colon = strchr(v, ':');
            const char *val = colon + 1 + (colon[1] == ' ');
            extra[nextra++] = (rill_header){(const uint8_t *)v, (size_t)(colon - v),
                                            (const uint8_t *)val, strlen(val), 0};
            i++;
        } else if (!strcmp(a, "--method") && v)
            method = argv[++i];
        else if (!strcmp(a, "--trailer") && v)
            g.trailer = argv[++i];
        else if (!strcmp(a, "--piece") && v)
            g.piece = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--buffer") && v)
            o.stream_buffer = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--pause-ms") && v)
            g.pause_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "client_stream: bad argument %s\n", a);
            return 2;
        }
    }
    if (!g.piece || g.piece > (1u << 20)) {
        fprintf(stderr, "client_stream: --piece must be 1..1048576\n");
        return 2;
    }
    if (rill_io_loop_new(NULL, &g.loop) < 0)
        return 1;
    char err[256];
    rill_client *c;
    if (rill_client_new(g.loop, &o, &c, err, sizeof err) < 0) {
        fprintf(stderr, "client_stream: %s\n", err);
        return 2;
    }
    rill_client_set_trace(c, on_trace, NULL);
    g.timer = rill_io_timer_new(g.loop, on_resume, NULL);
    g.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(g.sha, EVP_sha256(), NULL);
    int rc;
    if (data) {
        g.fd = open(data, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (g.fd < 0 || fstat(g.fd, &sb) < 0) {
            perror(data);
            return 2;
        }
        char len[24];
        snprintf(len, sizeof len, "%lld", (long long)sb.st_size);
        rill_header f[10] = {
            {(const uint8_t *)"content-type", 12, (const uint8_t *)"application/octet-stream", 24, 0},
            {(const uint8_t *)"content-length", 14, (const uint8_t *)len, strlen(len), 0}};
        size_t nf = length ? 2 : 1;
        for (size_t i = 0; i < nextra; i++)
            f[nf++] = extra[i];
        rc = rill_client_request_stream(c, method ? method : "POST", argv[1], f, nf, &callbacks,
                                        NULL, &g.st);
        if (rc == RILL_OK)
            pump();
    } else {
        rc = rill_client_request(c, method ? method : "GET", argv[1], extra, nextra, NULL, 0,
                                 &callbacks, NULL, &g.st);
    }
    if (rc < 0) {
        fprintf(stderr, "client_stream: request: %s\n", rill_strerror(rc));
        return 2;
    }
    rill_io_loop_run(g.loop);
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(g.sha, md, &mdlen);
    printf("status %d\nprotocol %s\nbody_bytes %llu\nbody_sha256 ", g.status, g.protocol,
           (unsigned long long)g.body_bytes);
    for (unsigned i = 0; i < mdlen; i++)
        printf("%02x", md[i]);
    printf("\ndrains %d\nmax_buffered %zu\npaused_data %llu\nwire_data_at_resume %llu\n", g.drains,
           g.max_buffered, (unsigned long long)g.paused_data, (unsigned long long)g.wire_at_resume);
    EVP_MD_CTX_free(g.sha);
    rill_io_timer_free(g.timer);
    rill_client_free(c);
    rill_io_loop_free(g.loop);
    if (g.fd >= 0)
        close(g.fd);
    return g.err ? 1 : 0;
}
