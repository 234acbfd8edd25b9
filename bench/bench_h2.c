/* HTTP/2 server-session throughput: a pre-built client byte stream (preface, SETTINGS, then many
 * HEADERS + DATA requests) is fed to a server session in 16 KiB reads; every request is answered
 * with a header-only 200. Reports frames parsed per second and requests per second for rill and
 * for libnghttp2 (nghttp2_session_mem_recv / mem_send) on the same bytes. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rill/h2.h"
#include "rill/hpack.h"

#define REQUESTS 100000
#define READ_SIZE 16384

static uint8_t *g_in;
static size_t g_len, g_cap;
static size_t g_frames;

static void put(const void *p, size_t n)
{
    if (g_len + n > g_cap) {
        g_cap = g_cap ? g_cap * 2 : 1 << 20;
        while (g_cap < g_len + n)
            g_cap *= 2;
        g_in = realloc(g_in, g_cap);
    }
    memcpy(g_in + g_len, p, n);
    g_len += n;
}

static void frame(uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *p, size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    put(h, 9);
    put(p, len);
    g_frames++;
}

#define H(n, v) {(const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), strlen(v), 0}

static void build_input(void)
{
    put("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    const uint8_t settings[] = {0, 4, 0, 0x10, 0, 0}; /* 1 MiB stream windows */
    frame(0x4, 0, 0, settings, sizeof settings);
    const uint8_t wu[] = {0x3f, 0, 0, 0};
    frame(0x8, 0, 0, wu, 4);
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    uint8_t block[1024];
    static const uint8_t body[64] = {0};
    for (uint32_t i = 0; i < REQUESTS; i++) {
        char path[32];
        snprintf(path, sizeof path, "/api/item/%u", i % 100);
        rill_header f[] = {H(":method", "POST"),       H(":scheme", "https"),
                           H(":path", path),           H(":authority", "bench.example"),
                           H("user-agent", "bench/1.0"), H("accept", "*/*"),
                           H("content-type", "application/json"), H("content-length", "64")};
        size_t n = 0;
        if (rill_hpack_encode(enc, f, 8, block, sizeof block, &n) != 0)
            abort();
        uint32_t sid = 2 * i + 1;
        frame(0x1, 0x4, sid, block, n);
        frame(0x0, 0x1, sid, body, sizeof body);
    }
    rill_hpack_encoder_free(enc);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- rill ---- */

static size_t r_requests;

static int r_end(rill_h2_session *s, int32_t sid, void *user)
{
    static const rill_header ok[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0}};
    r_requests++;
    return rill_h2_submit_response(s, sid, ok, 1, RILL_H2_FLAG_END_STREAM);
}

static void drain_rill(rill_h2_session *s)
{
    struct iovec iov[64];
    int n;
    while ((n = rill_h2_session_output(s, iov, 64)) > 0) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        rill_h2_session_output_sent(s, total); /* as if writev wrote it all */
    }
}

static double run_rill(void)
{
    static const rill_h2_callbacks cb = {.size = sizeof cb, .on_end_stream = r_end};
    rill_h2_options opt;
    rill_h2_options_init(&opt, RILL_H2_SERVER);
    opt.auto_consume = true;
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, &opt, &cb, NULL);
    r_requests = 0;
    double t0 = now_s();
    for (size_t off = 0; off < g_len; off += READ_SIZE) {
        size_t n = g_len - off < READ_SIZE ? g_len - off : READ_SIZE;
        if (rill_h2_session_recv(s, g_in + off, n) < 0) {
            fprintf(stderr, "rill: connection error %lld\n", (long long)rill_h2_session_error_code(s));
            exit(1);
        }
        drain_rill(s);
    }
    double dt = now_s() - t0;
    if (r_requests != REQUESTS) {
        fprintf(stderr, "rill: %zu requests\n", r_requests);
        exit(1);
    }
    rill_h2_session_free(s);
    return dt;
}

/* ---- nghttp2 ---- */

static size_t n_requests;

static int n_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        static const nghttp2_nv ok[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
        n_requests++;
        nghttp2_submit_response(s, f->hd.stream_id, ok, 1, NULL);
    }
    return 0;
}

static double run_nghttp2(void)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, n_frame_recv);
    nghttp2_session *s;
    nghttp2_session_server_new(&s, cbs, NULL);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000} /* responses go out per read, not per request */,
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 262144}};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 2);
    n_requests = 0;
    double t0 = now_s();
    for (size_t off = 0; off < g_len; off += READ_SIZE) {
        size_t n = g_len - off < READ_SIZE ? g_len - off : READ_SIZE;
        if (nghttp2_session_mem_recv(s, g_in + off, n) < 0) {
            fprintf(stderr, "nghttp2: recv failed\n");
            exit(1);
        }
        const uint8_t *out;
        while (nghttp2_session_mem_send(s, &out) > 0) {
        }
    }
    double dt = now_s() - t0;
    if (n_requests != REQUESTS) {
        fprintf(stderr, "nghttp2: %zu requests, want_read %d\n", n_requests, nghttp2_session_want_read(s));
        exit(1);
    }
    nghttp2_session_del(s);
    nghttp2_session_callbacks_del(cbs);
    return dt;
}

int main(void)
{
    build_input();
    printf("input: %zu requests (HEADERS + 64-byte DATA each), %zu frames, %.1f MB\n", (size_t)REQUESTS,
           g_frames, (double)g_len / 1e6);
    double best_r = 1e9, best_n = 1e9;
    for (int round = 0; round < 5; round++) {
        double r = run_rill(), n = run_nghttp2();
        if (r < best_r)
            best_r = r;
        if (n < best_n)
            best_n = n;
    }
    printf("%-10s %14s %14s\n", "", "frames/s", "requests/s");
    printf("%-10s %14.0f %14.0f\n", "rill", (double)g_frames / best_r, REQUESTS / best_r);
    printf("%-10s %14.0f %14.0f\n", "nghttp2", (double)g_frames / best_n, REQUESTS / best_n);
    printf("rill/nghttp2: %.2fx\n", best_n / best_r);
    free(g_in);
    return 0;
}
