/* WebSocket codec throughput (self only: no peer library here): MB/s of payload through
 * parse + unmask + UTF-8 validation on the server role, for several message shapes, with the
 * copying and the in-place receive paths; plus the send path and permessage-deflate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rill/ws.h"

static size_t sink;

static int on_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    (void)user;
    (void)opcode;
    (void)flags;
    sink += len + (len ? data[len - 1] : 0);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fixed_key(uint8_t key[4], void *user)
{
    (void)user;
    memcpy(key, "\x37\xfa\x21\x3d", 4);
    return 0;
}

/* Frames built by a client codec, so the stream is exactly what a peer would send. */
static uint8_t *build_stream(unsigned opcode, const uint8_t *msg, size_t msg_len, size_t count,
                             const rill_ws_pmd_params *pmd, size_t *out_len)
{
    rill_ws_options cfg;
    rill_ws_options_init(&cfg);
    cfg.pmd = pmd;
    static const rill_ws_callbacks cb = {.size = sizeof cb, .mask_key = fixed_key};
    rill_ws *c = rill_ws_new(RILL_WS_CLIENT, &cfg, &cb, NULL);
    size_t cap = (msg_len + 14) * count + 1024, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t i = 0; i < count; i++) {
        if (rill_ws_send(c, opcode, msg, msg_len) != 0) {
            fprintf(stderr, "bench: cannot build the stream\n");
            exit(1);
        }
        const uint8_t *p;
        size_t n = rill_ws_output(c, &p);
        memcpy(buf + len, p, n);
        len += n;
        rill_ws_output_sent(c, n);
    }
    rill_ws_free(c);
    *out_len = len;
    return buf;
}

static void run(const char *name, unsigned opcode, const uint8_t *msg, size_t msg_len,
                size_t count, const rill_ws_pmd_params *pmd, bool streaming)
{
    size_t stream_len;
    uint8_t *stream = build_stream(opcode, msg, msg_len, count, pmd, &stream_len);
    uint8_t *work = malloc(stream_len);
    for (int inplace = 0; inplace < 2; inplace++) {
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            rill_ws_options cfg;
            rill_ws_options_init(&cfg);
            cfg.pmd = pmd;
            cfg.streaming = streaming;
            static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = on_message};
            rill_ws *s = rill_ws_new(RILL_WS_SERVER, &cfg, &cb, NULL);
            memcpy(work, stream, stream_len);
            double t0 = now();
            for (size_t off = 0; off < stream_len; off += 65536) {
                size_t n = stream_len - off < 65536 ? stream_len - off : 65536;
                int rc = inplace ? rill_ws_recv_inplace(s, work + off, n)
                                 : rill_ws_recv(s, stream + off, n);
                if (rc) {
                    fprintf(stderr, "%s: recv failed %d\n", name, rc);
                    exit(1);
                }
            }
            double t = now() - t0;
            if (t < best)
                best = t;
            rill_ws_free(s);
        }
        printf("  recv %-28s %-8s %8.0f MB/s  %9.0f msg/s\n", name, inplace ? "inplace" : "copy",
               (double)(msg_len * count) / best / 1e6, (double)count / best);
    }
    free(work);
    free(stream);
}

static void run_send(const char *name, unsigned opcode, const uint8_t *msg, size_t msg_len,
                     size_t count, rill_ws_role role)
{
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        rill_ws *w = rill_ws_new(role, NULL, NULL, NULL);
        double t0 = now();
        for (size_t i = 0; i < count; i++) {
            rill_ws_send(w, opcode, msg, msg_len);
            const uint8_t *p;
            size_t n = rill_ws_output(w, &p);
            sink += n;
            rill_ws_output_sent(w, n);
        }
        double t = now() - t0;
        if (t < best)
            best = t;
        rill_ws_free(w);
    }
    printf("  send %-28s %-8s %8.0f MB/s  %9.0f msg/s\n", name,
           role == RILL_WS_CLIENT ? "masked" : "plain", (double)(msg_len * count) / best / 1e6,
           (double)count / best);
}

int main(void)
{
    size_t big = 64 * 1024;
    uint8_t *ascii = malloc(big), *bin = malloc(big), *multi = malloc(big);
    for (size_t i = 0; i < big; i++) {
        ascii[i] = (uint8_t)('a' + i % 26);
        bin[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    static const char greek[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 ";
    for (size_t i = 0; i + sizeof greek - 1 <= big; i += sizeof greek - 1)
        memcpy(multi + i, greek, sizeof greek - 1);
    size_t multi_len = big / (sizeof greek - 1) * (sizeof greek - 1);
    static const char han[] = "\xe6\xbc\xa2\xe5\xad\x97\xe3\x81\xaf\xe4\xb8\xad\xe5\x9b\xbd";
    uint8_t *cjk = malloc(big);
    for (size_t i = 0; i + sizeof han - 1 <= big; i += sizeof han - 1)
        memcpy(cjk + i, han, sizeof han - 1);
    size_t cjk_len = big / (sizeof han - 1) * (sizeof han - 1);

    printf("rill WebSocket codec (server role receives masked frames; hot cache, best of 5)\n");
    run("binary 64 KiB", RILL_WS_OP_BINARY, bin, big, 2000, NULL, false);
    run("text ASCII 64 KiB", RILL_WS_OP_TEXT, ascii, big, 2000, NULL, false);
    run("text Greek 64 KiB", RILL_WS_OP_TEXT, multi, multi_len, 2000, NULL, false);
    run("text CJK 64 KiB", RILL_WS_OP_TEXT, cjk, cjk_len, 2000, NULL, false);
    run("binary 64 KiB streaming", RILL_WS_OP_BINARY, bin, big, 2000, NULL, true);
    run("text ASCII 64 B", RILL_WS_OP_TEXT, ascii, 64, 1000000, NULL, false);
    run("binary 1 KiB", RILL_WS_OP_BINARY, bin, 1024, 100000, NULL, false);
    rill_ws_pmd_params pmd = {0};
    run("deflate text 64 KiB", RILL_WS_OP_TEXT, ascii, big, 2000, &pmd, false);
    run("deflate text Greek 1 KiB", RILL_WS_OP_TEXT, multi, 1020, 50000, &pmd, false);
    run_send("binary 64 KiB", RILL_WS_OP_BINARY, bin, big, 4000, RILL_WS_SERVER);
    run_send("binary 64 KiB", RILL_WS_OP_BINARY, bin, big, 4000, RILL_WS_CLIENT);
    run_send("text 64 B", RILL_WS_OP_TEXT, ascii, 64, 1000000, RILL_WS_SERVER);
    printf("(checksum %zu)\n", sink);
    free(ascii);
    free(bin);
    free(multi);
    free(cjk);
    return 0;
}
