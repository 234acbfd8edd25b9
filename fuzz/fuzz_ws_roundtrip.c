/* Fuzz target (differential): messages cut from the input are sent by one codec and received by
 * its peer, both ways, under fuzzer-chosen permessage-deflate parameters, fragment sizes and
 * delivery modes; what arrives must equal what was sent. Catches compression-context, framing
 * and reassembly bugs that a crash-only target cannot see. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
    uint8_t *buf;
    size_t len;
    int messages;
    unsigned opcode;
} sink;

static int on_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    sink *s = user;
    if (flags & RILL_WS_FIRST)
        s->len = 0;
    memcpy(s->buf + s->len, data, len); /* buf holds the largest possible message */
    s->len += len;
    s->opcode = opcode;
    if (flags & RILL_WS_FINAL)
        s->messages++;
    return 0;
}

static int fixed_key(uint8_t key[4], void *user)
{
    (void)user;
    memcpy(key, "\xa5\x5a\x0f\xf0", 4);
    return 0;
}

/* Moves everything `from` has queued into `to`, in fuzzer-chosen slices. */
static void transfer(rill_ws *from, rill_ws *to, size_t slice)
{
    const uint8_t *p;
    size_t n;
    while ((n = rill_ws_output(from, &p)) > 0) {
        size_t k = n < slice ? n : slice;
        if (rill_ws_recv(to, p, k) != 0)
            abort();
        rill_ws_output_sent(from, k);
    }
}

static void one_way(rill_ws *tx, rill_ws *rx, sink *s, const uint8_t *m, size_t len, int pieces,
                    size_t slice)
{
    uint32_t st = 0;
    unsigned opcode =
        rill_ws_utf8_feed(&st, m, len) && st == 0 ? RILL_WS_OP_TEXT : RILL_WS_OP_BINARY;
    int before = s->messages;
    if (pieces == 2) { /* everything, then an empty final piece */
        if (rill_ws_send_fragment(tx, opcode, m, len, false) != 0 ||
            rill_ws_send_fragment(tx, opcode, NULL, 0, false) != 0 ||
            rill_ws_send_fragment(tx, opcode, NULL, 0, true) != 0)
            abort();
    } else if (pieces && len > 1) {
        size_t half = len / 2;
        /* Binary may be cut anywhere; so may text, its validity is per message. */
        if (rill_ws_send_fragment(tx, opcode, m, half, false) != 0 ||
            rill_ws_send_ping(tx, "x", 1) != 0 ||
            rill_ws_send_fragment(tx, opcode, m + half, len - half, true) != 0)
            abort();
    } else if (rill_ws_send(tx, opcode, m, len) != 0) {
        abort();
    }
    transfer(tx, rx, slice);
    transfer(rx, tx, slice); /* pongs */
    if (s->messages != before + 1 || s->len != len || s->opcode != opcode ||
        (len && memcmp(s->buf, m, len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t opt = data[0], bits = data[1], slice_sel = data[2], frame_sel = data[3];
    data += 4;
    size -= 4;
    rill_ws_pmd_params pmd = {0};
    pmd.server_no_context_takeover = bits & 0x01;
    pmd.client_no_context_takeover = bits & 0x02;
    pmd.server_max_window_bits = (bits & 0x04) ? (uint8_t)(8 + ((bits >> 3) & 7)) : 0;
    pmd.client_max_window_bits = (bits & 0x40) ? (uint8_t)(8 + ((bits >> 5) & 7)) : 0;
    sink ss = {malloc(size + 1), 0, 0, 0}, cs = {malloc(size + 1), 0, 0, 0};
    rill_ws_options cfg;
    rill_ws_options_init(&cfg);
    cfg.pmd = (opt & 0x01) ? &pmd : NULL;
    cfg.compress_threshold = (opt & 0x02) ? 1 : 0;
    cfg.max_frame_size = frame_sel ? frame_sel : 0;
    rill_ws_callbacks cb = {.size = sizeof cb, .on_message = on_message};
    cfg.streaming = opt & 0x04;
    rill_ws *srv = rill_ws_new(RILL_WS_SERVER, &cfg, &cb, &ss);
    cfg.streaming = opt & 0x08;
    cb.mask_key = fixed_key;
    rill_ws *cli = rill_ws_new(RILL_WS_CLIENT, &cfg, &cb, &cs);
    size_t slice = slice_sel ? slice_sel : SIZE_MAX;
    /* Messages are separated by the byte 0xFF in the input. */
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != 0xFF)
            continue;
        const uint8_t *m = data + start;
        size_t len = i - start;
        int pieces = (opt & 0x20) && (len % 3 == 0) ? 2 : (opt & 0x10) && (len & 1);
        one_way(cli, srv, &ss, m, len, pieces, slice);
        one_way(srv, cli, &cs, m, len, pieces, slice);
        start = i + 1;
    }
    if (rill_ws_close(cli, 1000, NULL, 0) != 0)
        abort();
    transfer(cli, srv, slice);
    transfer(srv, cli, slice);
    if (!rill_ws_is_done(srv) || !rill_ws_is_done(cli))
        abort();
    if (rill_ws_transport_closed(srv) != 1000)
        abort();
    rill_ws_free(srv);
    rill_ws_free(cli);
    free(ss.buf);
    free(cs.buf);
    return 0;
}
