/* Shared driver for the WebSocket codec fuzz targets: the first input bytes pick the codec's
 * configuration (streaming, permessage-deflate parameters, limits, in-place input, chunking),
 * the rest is fed as received bytes. Every message is echoed back through the send path, so the
 * receive and send sides run interleaved as in a real echo server. */
#ifndef FUZZ_WS_COMMON_H
#define FUZZ_WS_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"

typedef struct fuzz_ctx {
    rill_ws *ws;
    size_t delivered;
} fuzz_ctx;

static int fuzz_on_message(void *user, unsigned opcode, const uint8_t *data, size_t len,
                           unsigned flags)
{
    fuzz_ctx *c = user;
    c->delivered += len;
    if ((flags & (RILL_WS_FIRST | RILL_WS_FINAL)) == (RILL_WS_FIRST | RILL_WS_FINAL))
        (void)rill_ws_send(c->ws, opcode, data, len);
    else
        (void)rill_ws_send_fragment(c->ws, opcode, data, len, flags & RILL_WS_FINAL);
    return 0;
}

static int fuzz_on_ping(void *user, const uint8_t *data, size_t len)
{
    (void)user;
    (void)data;
    (void)len;
    return 0;
}

static int fuzz_key(void *user, uint8_t key[4])
{
    (void)user;
    memcpy(key, "\x12\x34\x56\x78", 4);
    return 0;
}

static void fuzz_ws_run(enum rill_ws_role role, const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    uint8_t opt = data[0], bits = data[1], chunk_sel = data[2];
    data += 3;
    size -= 3;
    rill_ws_pmd_params pmd = {0};
    pmd.server_no_context_takeover = bits & 0x01;
    pmd.client_no_context_takeover = bits & 0x02;
    pmd.server_max_window_bits = (bits & 0x04) ? (uint8_t)(8 + ((bits >> 3) & 7)) : 0;
    pmd.client_max_window_bits = (bits & 0x40) ? (uint8_t)(8 + ((bits >> 5) & 7)) : 0;
    fuzz_ctx ctx = {0};
    rill_ws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.streaming = opt & 0x01;
    cfg.no_auto_pong = opt & 0x02;
    cfg.pmd = (opt & 0x04) ? &pmd : NULL;
    cfg.max_message_size = (opt & 0x08) ? 4096 : 1u << 20;
    cfg.max_frame_size = (opt & 0x10) ? 7 : 0;
    cfg.compress_threshold = (opt & 0x20) ? 1 : 0;
    cfg.mask_key = fuzz_key;
    cfg.callbacks.on_message = fuzz_on_message;
    cfg.callbacks.on_ping = fuzz_on_ping;
    cfg.user = &ctx;
    rill_ws *ws = rill_ws_new(&cfg);
    if (!ws)
        return;
    ctx.ws = ws;
    bool inplace = opt & 0x40;
    uint8_t *copy = inplace ? malloc(size ? size : 1) : NULL;
    if (copy)
        memcpy(copy, data, size);
    size_t chunk = chunk_sel ? chunk_sel : size + 1;
    size_t off = 0;
    int rc = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        rc = inplace ? rill_ws_recv_inplace(ws, copy + off, n) : rill_ws_recv(ws, data + off, n);
        const uint8_t *out;
        size_t pending = rill_ws_output(ws, &out);
        if (pending) { /* touch every byte so ASan sees the whole output */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < pending; i++)
                sink ^= out[i];
            (void)sink;
            rill_ws_output_consume(ws, pending);
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
    if (opt & 0x80) {
        (void)rill_ws_close(ws, 1000, "bye", 3);
        (void)rill_ws_transport_closed(ws);
    }
    if (ctx.delivered > cfg.max_message_size * (size + 1))
        abort();
    free(copy);
    rill_ws_free(ws);
}

#endif
