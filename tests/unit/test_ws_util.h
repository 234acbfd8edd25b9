/* Shared helpers for the WebSocket codec tests: an event recorder, codec constructors and a frame
 * builder written independently of the library (so encoder bugs cannot hide decoder bugs). */
#ifndef TEST_WS_UTIL_H
#define TEST_WS_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rill/ws.h"

#define REC_CAP (1u << 20)

typedef struct rec {
    int messages;          /* completed messages */
    int pieces;            /* on_message calls */
    unsigned opcode;       /* of the last message */
    unsigned flags[64];    /* flags of the first 64 pieces */
    uint8_t *data;         /* the last message (pieces appended), REC_CAP bytes */
    size_t len;
    size_t total;          /* bytes over all messages */
    const uint8_t *last_ptr; /* data pointer of the last piece */
    int pings, pongs, closes;
    uint8_t ctl[125];
    size_t ctl_len;
    unsigned close_code;
    char reason[126];
    size_t reason_len;
    int fail_with;         /* a callback returns this when non-zero */
} rec;

static inline int rec_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    rec *r = user;
    if (r->pieces < 64)
        r->flags[r->pieces] = flags;
    r->pieces++;
    if (flags & RILL_WS_FIRST)
        r->len = 0;
    if (r->len + len <= REC_CAP && len)
        memcpy(r->data + r->len, data, len);
    r->len += len;
    r->total += len;
    r->opcode = opcode;
    r->last_ptr = data;
    if (flags & RILL_WS_FINAL)
        r->messages++;
    return r->fail_with;
}

static inline int rec_ping(const uint8_t *data, size_t len, void *user)
{
    rec *r = user;
    r->pings++;
    memcpy(r->ctl, data, len);
    r->ctl_len = len;
    return 0;
}

static inline int rec_pong(const uint8_t *data, size_t len, void *user)
{
    rec *r = user;
    r->pongs++;
    memcpy(r->ctl, data, len);
    r->ctl_len = len;
    return 0;
}

static inline int rec_close(unsigned code, const uint8_t *reason, size_t len, void *user)
{
    rec *r = user;
    r->closes++;
    r->close_code = code;
    memcpy(r->reason, reason, len);
    r->reason_len = len;
    r->reason[len] = 0;
    return 0;
}

static inline void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    r->data = malloc(REC_CAP);
    assert_non_null(r->data);
}

static inline void rec_free(rec *r)
{
    free(r->data);
    r->data = NULL;
}

/* The RFC 6455 §5.7 masking key, for reproducible client frames. */
static inline int fixed_key(uint8_t key[4], void *user)
{
    (void)user;
    static const uint8_t k[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(key, k, 4);
    return 0;
}

/* Everything rill_ws_new takes, for tests to adjust before making a codec. */
typedef struct ws_setup {
    rill_ws_role role;
    rill_ws_options opt;
    rill_ws_callbacks cb;
    void *user;
} ws_setup;

static inline ws_setup ws_cfg(rill_ws_role role, rec *r)
{
    ws_setup cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    rill_ws_options_init(&cfg.opt);
    cfg.cb.size = sizeof cfg.cb;
    cfg.cb.on_message = rec_message;
    cfg.cb.on_ping = rec_ping;
    cfg.cb.on_pong = rec_pong;
    cfg.cb.on_close = rec_close;
    cfg.user = r;
    if (role == RILL_WS_CLIENT)
        cfg.cb.mask_key = fixed_key;
    return cfg;
}

static inline rill_ws *ws_setup_new(const ws_setup *cfg)
{
    return rill_ws_new(cfg->role, &cfg->opt, &cfg->cb, cfg->user);
}

static inline rill_ws *ws_make(rill_ws_role role, rec *r)
{
    ws_setup cfg = ws_cfg(role, r);
    rill_ws *ws = ws_setup_new(&cfg);
    assert_non_null(ws);
    return ws;
}

/* A frame as a peer would send it; key NULL = unmasked. rsv is the 3-bit RSV field. */
static inline size_t mkframe(uint8_t *out, bool fin, unsigned rsv, unsigned opcode,
                             const void *payload, size_t len, const uint8_t *key)
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t m = key ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(m | len);
    } else if (len < 65536) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (key) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[n + i] = (uint8_t)(p[i] ^ (key ? key[i % 4] : 0));
    return n + len;
}

static const uint8_t test_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A client's frame (masked with test_key). */
static inline size_t cframe(uint8_t *out, bool fin, unsigned opcode, const void *p, size_t len)
{
    return mkframe(out, fin, 0, opcode, p, len, test_key);
}

/* Drain the codec's output into buf; returns the byte count. */
static inline size_t drain(rill_ws *ws, uint8_t *buf, size_t cap)
{
    size_t n = 0, k;
    while ((k = rill_ws_output_copy(ws, buf + n, cap - n)) > 0)
        n += k;
    return n;
}

/* Parse one frame of out[]: returns header+payload size; unmasks into payload (caller buffer). */
typedef struct parsed {
    bool fin;
    unsigned rsv;
    unsigned opcode;
    bool masked;
    size_t len;
    uint8_t *payload;
} parsed;

static inline size_t parse_frame(const uint8_t *in, size_t avail, parsed *f, uint8_t *payload)
{
    assert_true(avail >= 2);
    f->fin = in[0] & 0x80;
    f->rsv = (in[0] >> 4) & 7;
    f->opcode = in[0] & 0xF;
    f->masked = in[1] & 0x80;
    size_t n = 2;
    uint64_t len = in[1] & 0x7F;
    if (len == 126) {
        len = (uint64_t)in[2] << 8 | in[3];
        n = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | in[2 + i];
        n = 10;
    }
    const uint8_t *key = NULL;
    if (f->masked) {
        key = in + n;
        n += 4;
    }
    assert_true(avail >= n + len);
    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(in[n + i] ^ (key ? key[i % 4] : 0));
    f->len = (size_t)len;
    f->payload = payload;
    return n + (size_t)len;
}

/* The single Close frame a failed codec queued: returns its code (0 for an empty Close). */
static inline unsigned queued_close_code(rill_ws *ws)
{
    static uint8_t buf[4096], payload[4096];
    size_t n = drain(ws, buf, sizeof buf);
    size_t off = 0;
    parsed f = {0};
    while (off < n) {
        off += parse_frame(buf + off, n - off, &f, payload);
        if (f.opcode == RILL_WS_OP_CLOSE)
            return f.len >= 2 ? (unsigned)payload[0] << 8 | payload[1] : 0;
    }
    fail_msg("no close frame queued");
    return 0;
}

/* Feed bytes to a fresh server codec and return the close code it fails with. */
static inline unsigned server_fail_code(const uint8_t *bytes, size_t n)
{
    rec r;
    rec_init(&r);
    rill_ws *ws = ws_make(RILL_WS_SERVER, &r);
    int rc = rill_ws_recv(ws, bytes, n);
    unsigned code = rill_ws_fail_code(ws);
    if (code) {
        assert_true(rc < 0);
        assert_int_equal(rill_ws_state(ws), RILL_WS_FAILED);
        assert_int_equal(queued_close_code(ws), code);
    } else {
        assert_int_equal(rc, 0);
    }
    rill_ws_free(ws);
    rec_free(&r);
    return code;
}

#endif
