/* Shared driver for the WebSocket codec fuzz targets: the first input bytes pick the codec's
 * configuration (streaming, permessage-deflate parameters, limits, in-place input, cut schedule),
 * the rest is fed as received bytes. Every message is echoed back through the send path, so the
 * receive and send sides run interleaved as in a real echo server. Differential check: the bytes
 * fed whole and fed in pieces (fuzz_split.h) must give the same messages, pings, pongs, close and
 * failure code. */
#ifndef FUZZ_WS_COMMON_H
#define FUZZ_WS_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_split.h"
#include "rill/ws.h"

typedef struct fuzz_ctx {
    rill_ws *ws;
    size_t delivered;
    uint64_t h; /* the events, hashed; piece boundaries inside a message are not in it */
} fuzz_ctx;

static void fuzz_mix(fuzz_ctx *c, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        c->h = (c->h ^ b[i]) * 0x100000001b3ull;
}

static void fuzz_mark(fuzz_ctx *c, char what, unsigned value)
{
    fuzz_mix(c, &what, 1);
    fuzz_mix(c, &value, sizeof value);
}

static int fuzz_on_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    fuzz_ctx *c = user;
    c->delivered += len;
    if (flags & RILL_WS_FIRST)
        fuzz_mark(c, 'M', opcode);
    fuzz_mix(c, data, len);
    if (flags & RILL_WS_FINAL)
        fuzz_mark(c, 'F', opcode);
    if ((flags & (RILL_WS_FIRST | RILL_WS_FINAL)) == (RILL_WS_FIRST | RILL_WS_FINAL))
        (void)rill_ws_send(c->ws, opcode, data, len);
    else
        (void)rill_ws_send_fragment(c->ws, opcode, data, len, flags & RILL_WS_FINAL);
    return 0;
}

static int fuzz_on_ping(const uint8_t *data, size_t len, void *user)
{
    fuzz_mark(user, 'I', (unsigned)len);
    fuzz_mix(user, data, len);
    return 0;
}

static int fuzz_on_pong(const uint8_t *data, size_t len, void *user)
{
    fuzz_mark(user, 'O', (unsigned)len);
    fuzz_mix(user, data, len);
    return 0;
}

static int fuzz_on_close(unsigned code, const uint8_t *reason, size_t len, void *user)
{
    fuzz_mark(user, 'C', code);
    fuzz_mix(user, reason, len);
    return 0;
}

static int fuzz_key(uint8_t key[4], void *user)
{
    (void)user;
    memcpy(key, "\x12\x34\x56\x78", 4);
    return 0;
}

struct fuzz_ws_result {
    uint64_t h;
    bool failed;
    unsigned fail_code;
    enum rill_ws_state state;
};

/* One run over data, cut by cuts (NULL = whole). */
static struct fuzz_ws_result fuzz_ws_feed(rill_ws_role role, const rill_ws_options *cfg,
                                          bool inplace, bool close_at_end, const uint8_t *data,
                                          size_t size, struct fuzz_cuts *cuts)
{
    static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = fuzz_on_message,
                                         .on_ping = fuzz_on_ping, .on_pong = fuzz_on_pong,
                                         .on_close = fuzz_on_close, .mask_key = fuzz_key};
    fuzz_ctx ctx = {.h = 0xcbf29ce484222325ull};
    rill_ws *ws = rill_ws_new(role, cfg, &cb, &ctx);
    if (!ws)
        abort();
    ctx.ws = ws;
    uint8_t *copy = inplace ? malloc(size ? size : 1) : NULL; /* unmasked in place: a fresh copy */
    if (copy)
        memcpy(copy, data, size);
    size_t off = 0;
    int rc = 0;
    while (off < size) {
        size_t n = cuts ? fuzz_cuts_next(cuts, size - off) : size - off;
        rc = inplace ? rill_ws_recv_inplace(ws, copy + off, n) : rill_ws_recv(ws, data + off, n);
        const uint8_t *out;
        size_t pending = rill_ws_output(ws, &out);
        if (pending) { /* touch every byte so ASan sees the whole output */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < pending; i++)
                sink ^= out[i];
            (void)sink;
            rill_ws_output_sent(ws, pending);
        }
        if (rc < 0) {
            /* A failed codec refuses more input and names a close code, or stopped on state. */
            if (rill_ws_state(ws) != RILL_WS_FAILED)
                abort();
            if (rill_ws_recv(ws, data, size) != RILL_ERR_STATE)
                abort();
            break;
        }
        off += n;
    }
    struct fuzz_ws_result r = {ctx.h, rc < 0, rill_ws_fail_code(ws), rill_ws_state(ws)};
    if (close_at_end) {
        (void)rill_ws_close(ws, 1000, "bye", 3);
        (void)rill_ws_transport_closed(ws);
    }
    if (ctx.delivered > cfg->max_message_size * (size + 1))
        abort();
    free(copy);
    rill_ws_free(ws);
    return r;
}

static void fuzz_ws_run(rill_ws_role role, const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    uint8_t opt = data[0], bits = data[1], cut_sel = data[2];
    data += 3;
    size -= 3;
    rill_ws_pmd_params pmd = {0};
    pmd.server_no_context_takeover = bits & 0x01;
    pmd.client_no_context_takeover = bits & 0x02;
    pmd.server_max_window_bits = (bits & 0x04) ? (uint8_t)(8 + ((bits >> 3) & 7)) : 0;
    pmd.client_max_window_bits = (bits & 0x40) ? (uint8_t)(8 + ((bits >> 5) & 7)) : 0;
    rill_ws_options cfg;
    rill_ws_options_init(&cfg);
    cfg.streaming = opt & 0x01;
    cfg.no_auto_pong = opt & 0x02;
    cfg.pmd = (opt & 0x04) ? &pmd : NULL;
    cfg.max_message_size = (opt & 0x08) ? 4096 : 1u << 20;
    cfg.max_frame_size = (opt & 0x10) ? 7 : 0;
    cfg.compress_threshold = (opt & 0x20) ? 1 : 0;
    bool inplace = opt & 0x40, close_at_end = opt & 0x80;
    struct fuzz_ws_result whole = fuzz_ws_feed(role, &cfg, inplace, close_at_end, data, size, NULL);
    struct fuzz_cuts cuts;
    fuzz_cuts_init(&cuts, fuzz_cuts_class(cut_sel) * 2, cut_sel);
    struct fuzz_ws_result split = fuzz_ws_feed(role, &cfg, inplace, close_at_end, data, size, &cuts);
    if (whole.failed != split.failed || whole.fail_code != split.fail_code ||
        whole.state != split.state)
        abort(); /* the cuts changed the verdict */
    /* Streaming delivers a text message's pieces before its UTF-8 is proven bad, so after a
     * failure the pieces delivered depend on the cuts; otherwise every event must match. */
    if (!(cfg.streaming && whole.failed) && whole.h != split.h)
        abort();
}

#endif
