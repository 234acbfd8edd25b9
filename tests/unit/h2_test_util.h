/* Test helpers for the HTTP/2 session: a frame builder for input, a parser for the session's output,
 * and a recorder of callbacks. Header-only; every test program includes it once. */
#ifndef H2_TEST_UTIL_H
#define H2_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/h2.h"
#include "rill/hpack.h"

#define TU static inline __attribute__((unused))

/* ---- growable byte buffer ---- */

typedef struct tbuf {
    uint8_t *p;
    size_t len, cap;
} tbuf;

TU void tb_put(tbuf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}
TU void tb_byte(tbuf *b, uint8_t v) { tb_put(b, &v, 1); }
TU void tb_u32(tbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    tb_put(b, x, 4);
}
TU void tb_free(tbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- frame builder ---- */

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

TU void tf_frame(tbuf *b, uint8_t type, uint8_t flags, uint32_t sid, const void *payload, size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    tb_put(b, h, 9);
    tb_put(b, payload, len);
}

/* SETTINGS with `n` (id, value) pairs given as varargs of unsigned. */
TU void tf_settings(tbuf *b, int n, ...)
{
    tbuf p = {0};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        unsigned id = va_arg(ap, unsigned), v = va_arg(ap, unsigned);
        tb_byte(&p, (uint8_t)(id >> 8));
        tb_byte(&p, (uint8_t)id);
        tb_u32(&p, v);
    }
    va_end(ap);
    tf_frame(b, RILL_H2_SETTINGS, 0, 0, p.p, p.len);
    tb_free(&p);
}
TU void tf_settings_ack(tbuf *b) { tf_frame(b, RILL_H2_SETTINGS, 1, 0, NULL, 0); }
TU void tf_window_update(tbuf *b, uint32_t sid, uint32_t inc)
{
    uint8_t p[4] = {(uint8_t)(inc >> 24), (uint8_t)(inc >> 16), (uint8_t)(inc >> 8), (uint8_t)inc};
    tf_frame(b, RILL_H2_WINDOW_UPDATE, 0, sid, p, 4);
}
TU void tf_rst(tbuf *b, uint32_t sid, uint32_t code)
{
    uint8_t p[4] = {(uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8), (uint8_t)code};
    tf_frame(b, RILL_H2_RST_STREAM, 0, sid, p, 4);
}
TU void tf_ping(tbuf *b, uint8_t flags, const char *opaque8)
{
    tf_frame(b, RILL_H2_PING, flags, 0, opaque8, 8);
}
TU void tf_data(tbuf *b, uint32_t sid, uint8_t flags, const char *data, size_t len)
{
    tf_frame(b, RILL_H2_DATA, flags, sid, data, len);
}

/* HPACK literal header field without indexing, new name (RFC 7541 6.2.2), 7-bit lengths only. */
TU void hp_lit(tbuf *blk, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    assert_true(nl < 127 && vl < 127);
    tb_byte(blk, 0x00);
    tb_byte(blk, (uint8_t)nl);
    tb_put(blk, name, nl);
    tb_byte(blk, (uint8_t)vl);
    tb_put(blk, value, vl);
}
/* Long values (any length): HPACK integer with a 7-bit prefix. */
TU void hp_int7(tbuf *blk, size_t v)
{
    if (v < 127) {
        tb_byte(blk, (uint8_t)v);
        return;
    }
    tb_byte(blk, 127);
    v -= 127;
    while (v >= 128) {
        tb_byte(blk, (uint8_t)(v % 128 + 128));
        v /= 128;
    }
    tb_byte(blk, (uint8_t)v);
}
TU void hp_lit_n(tbuf *blk, const char *name, const char *value, size_t vl)
{
    tb_byte(blk, 0x00);
    hp_int7(blk, strlen(name));
    tb_put(blk, name, strlen(name));
    hp_int7(blk, vl);
    tb_put(blk, value, vl);
}

/* A header block from "name", "value" pairs, NULL-terminated. */
TU void hp_block(tbuf *blk, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *n = first; n; n = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        hp_lit(blk, n, v);
    }
    va_end(ap);
}

TU void tf_headers_block(tbuf *b, uint32_t sid, uint8_t flags, const tbuf *blk)
{
    tf_frame(b, RILL_H2_HEADERS, flags, sid, blk->p, blk->len);
}

#define GET_FIELDS ":method", "GET", ":scheme", "https", ":path", "/", ":authority", "example.com"

/* HEADERS (END_HEADERS | extra flags) with a GET request. */
TU void tf_get(tbuf *b, uint32_t sid, uint8_t flags)
{
    tbuf blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_headers_block(b, sid, (uint8_t)(flags | 0x4), &blk);
    tb_free(&blk);
}

/* ---- output parser ---- */

typedef struct tframe {
    uint8_t type, flags;
    uint32_t sid;
    uint32_t len;
    uint8_t *payload; /* into the owning tout's buffer */
} tframe;

typedef struct tout {
    tbuf raw;
    tframe f[4096];
    size_t n;
    bool preface;
} tout;

/* Drains the session's whole output (skips the client preface) and splits it into frames. */
TU void drain(rill_h2_session *s, tout *o)
{
    tb_free(&o->raw);
    o->n = 0;
    o->preface = false;
    uint8_t buf[65536];
    size_t n;
    while ((n = rill_h2_session_send_copy(s, buf, sizeof buf)) > 0)
        tb_put(&o->raw, buf, n);
    size_t i = 0;
    if (o->raw.len >= 24 && memcmp(o->raw.p, PREFACE, 24) == 0) {
        o->preface = true;
        i = 24;
    }
    while (i + 9 <= o->raw.len && o->n < 4096) {
        const uint8_t *h = o->raw.p + i;
        tframe *f = &o->f[o->n++];
        f->len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
        f->type = h[3];
        f->flags = h[4];
        f->sid = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffffu;
        f->payload = o->raw.p + i + 9;
        assert_true(i + 9 + f->len <= o->raw.len);
        i += 9 + f->len;
    }
    assert_int_equal(i, o->raw.len);
}

TU uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The first frame of a type (and stream, unless sid is -1) or NULL. */
TU const tframe *find_frame(const tout *o, uint8_t type, int64_t sid)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->f[i].type == type && (sid < 0 || o->f[i].sid == (uint32_t)sid))
            return &o->f[i];
    return NULL;
}
TU size_t count_frames(const tout *o, uint8_t type)
{
    size_t c = 0;
    for (size_t i = 0; i < o->n; i++)
        c += o->f[i].type == type;
    return c;
}

/* Asserts a GOAWAY with this code; returns its last-stream-id. */
TU uint32_t expect_goaway(const tout *o, uint32_t code)
{
    const tframe *g = find_frame(o, RILL_H2_GOAWAY, 0);
    if (!g) {
        fprintf(stderr, "no GOAWAY (wanted %s)\n", rill_h2_error_name(code));
        fail();
    }
    assert_true(g->len >= 8);
    if (get32(g->payload + 4) != code)
        fprintf(stderr, "GOAWAY %s, wanted %s\n", rill_h2_error_name(get32(g->payload + 4)),
                rill_h2_error_name(code));
    assert_int_equal(get32(g->payload + 4), code);
    return get32(g->payload) & 0x7fffffffu;
}
TU void expect_rst(const tout *o, uint32_t sid, uint32_t code)
{
    const tframe *r = find_frame(o, RILL_H2_RST_STREAM, sid);
    if (!r) {
        fprintf(stderr, "no RST_STREAM on %u (wanted %s)\n", sid, rill_h2_error_name(code));
        fail();
    }
    assert_int_equal(r->len, 4);
    if (get32(r->payload) != code)
        fprintf(stderr, "RST_STREAM %s, wanted %s\n", rill_h2_error_name(get32(r->payload)),
                rill_h2_error_name(code));
    assert_int_equal(get32(r->payload), code);
    assert_null(find_frame(o, RILL_H2_GOAWAY, 0));
}
TU void expect_no_error(const tout *o)
{
    const tframe *g = find_frame(o, RILL_H2_GOAWAY, 0);
    if (g)
        fprintf(stderr, "unexpected GOAWAY %s: %.*s\n", rill_h2_error_name(get32(g->payload + 4)),
                (int)(g->len - 8), (const char *)g->payload + 8);
    assert_null(g);
    const tframe *r = find_frame(o, RILL_H2_RST_STREAM, -1);
    if (r)
        fprintf(stderr, "unexpected RST_STREAM %s on %u\n", rill_h2_error_name(get32(r->payload)), r->sid);
    assert_null(r);
}

/* ---- event recorder ---- */

enum ev_kind { EV_HEADERS, EV_PUSH, EV_DATA, EV_END, EV_RESET, EV_CLOSE, EV_SETTINGS, EV_PING_ACK, EV_GOAWAY, EV_RELEASED };

typedef struct tevent {
    enum ev_kind kind;
    int32_t sid;
    int32_t other;   /* promised id, headers kind, last stream id */
    uint32_t code;   /* close / goaway code, header flags */
    char text[2048]; /* "name: value\n"... for headers; data for DATA (truncated) */
    size_t len;
} tevent;

typedef struct trec {
    tevent ev[256];
    size_t n;
    tbuf body[64];    /* received bytes per stream id (< 64) */
    int close_code[64];
    bool consume;     /* call rill_h2_consume in on_data */
    int fail_on_headers;
} trec;

TU tevent *rec_add(trec *r, enum ev_kind k, int32_t sid)
{
    if (r->n == 256)
        return &r->ev[255];
    tevent *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->kind = k;
    e->sid = sid;
    return e;
}

TU void fields_text(tevent *e, const rill_header *f, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof e->text - 1; i++)
        o += (size_t)snprintf(e->text + o, sizeof e->text - o, "%.*s: %.*s\n", (int)f[i].name_len,
                              (const char *)f[i].name, (int)f[i].value_len, (const char *)f[i].value);
    e->len = o < sizeof e->text ? o : sizeof e->text - 1;
}

TU int rec_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind, const rill_header *f,
                   size_t n, uint32_t flags, void *user)
{
    trec *r = user;
    tevent *e = rec_add(r, EV_HEADERS, sid);
    e->other = kind;
    e->code = flags;
    fields_text(e, f, n);
    return r->fail_on_headers;
}
TU int rec_push(rill_h2_session *s, int32_t sid, int32_t pid, const rill_header *f, size_t n, void *user)
{
    tevent *e = rec_add(user, EV_PUSH, sid);
    e->other = pid;
    fields_text(e, f, n);
    return 0;
}
TU int rec_data(rill_h2_session *s, int32_t sid, const uint8_t *d, size_t n, void *user)
{
    trec *r = user;
    tevent *e = rec_add(r, EV_DATA, sid);
    e->len = n;
    if (sid >= 0 && sid < 64)
        tb_put(&r->body[sid], d, n);
    if (r->consume)
        rill_h2_consume(s, sid, n);
    return 0;
}
TU int rec_end(rill_h2_session *s, int32_t sid, void *user)
{
    rec_add(user, EV_END, sid);
    return 0;
}
TU int rec_reset(rill_h2_session *s, int32_t sid, uint32_t code, void *user)
{
    rec_add(user, EV_RESET, sid)->code = code;
    return 0;
}
TU int rec_close(rill_h2_session *s, int32_t sid, uint32_t code, void *user)
{
    trec *r = user;
    rec_add(r, EV_CLOSE, sid)->code = code;
    if (sid >= 0 && sid < 64)
        r->close_code[sid] = (int)code;
    return 0;
}
TU int rec_settings(rill_h2_session *s, const rill_h2_settings *p, void *user)
{
    rec_add(user, EV_SETTINGS, 0);
    return 0;
}
TU int rec_ping_ack(rill_h2_session *s, const uint8_t o[8], void *user)
{
    tevent *e = rec_add(user, EV_PING_ACK, 0);
    memcpy(e->text, o, 8);
    return 0;
}
TU int rec_goaway(rill_h2_session *s, int32_t last, uint32_t code, const uint8_t *d, size_t n, void *user)
{
    tevent *e = rec_add(user, EV_GOAWAY, 0);
    e->other = last;
    e->code = code;
    return 0;
}
TU void rec_released(rill_h2_session *s, int32_t sid, void *token, void *user)
{
    tevent *e = rec_add(user, EV_RELEASED, sid);
    e->other = (int32_t)(intptr_t)token;
}

/* Referenced by the sessions (not copied), so a static object. */
static __attribute__((unused)) const rill_h2_callbacks rec_cbs = {
    .size = sizeof rec_cbs,
    .on_headers = rec_headers,
    .on_push_promise = rec_push,
    .on_data = rec_data,
    .on_end_stream = rec_end,
    .on_stream_reset = rec_reset,
    .on_stream_close = rec_close,
    .on_settings = rec_settings,
    .on_ping_ack = rec_ping_ack,
    .on_goaway = rec_goaway,
    .on_data_released = rec_released,
};

TU const tevent *rec_find(const trec *r, enum ev_kind k, int32_t sid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->ev[i].kind == k && (sid < 0 || r->ev[i].sid == sid))
            return &r->ev[i];
    return NULL;
}
/* Whether an event's text holds needle. */
TU bool ev_has(const tevent *e, const char *needle)
{
    return e && memmem(e->text, e->len, needle, strlen(needle)) != NULL;
}
TU size_t rec_count(const trec *r, enum ev_kind k)
{
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++)
        c += r->ev[i].kind == k;
    return c;
}
TU void rec_free(trec *r)
{
    for (int i = 0; i < 64; i++)
        tb_free(&r->body[i]);
}

/* ---- a session under test ---- */

typedef struct tsess {
    rill_h2_session *s;
    rill_h2_profile *prof; /* shared-profile sessions, as servers make them */
    trec rec;
    tout out;
    rill_h2_options opt;
    int64_t last_rc;
} tsess;

TU int64_t feed(tsess *t, const tbuf *b)
{
    t->last_rc = rill_h2_session_recv(t->s, b->p, b->len);
    return t->last_rc;
}
/* Feeds, drains into t->out, clears the input buffer. */
TU int64_t feed_drain(tsess *t, tbuf *b)
{
    int64_t rc = feed(t, b);
    drain(t->s, &t->out);
    b->len = 0;
    return rc;
}

/* A server session that completed the preface exchange (client SETTINGS in, our SETTINGS acked).
 * Options may be tweaked in *opt beforehand by passing a non-NULL customiser. */
TU void tsess_start(tsess *t, enum rill_h2_role role, void (*custom)(rill_h2_options *))
{
    memset(t, 0, sizeof *t);
    rill_h2_options_init(&t->opt, role);
    t->opt.connection_window = 65535; /* tests reason about the protocol's default window */
    if (custom)
        custom(&t->opt);
    t->prof = rill_h2_profile_new(role, &t->opt);
    assert_non_null(t->prof);
    t->s = rill_h2_session_new_shared(t->prof, &rec_cbs, &t->rec, t->opt.now_ms);
    assert_non_null(t->s);
    drain(t->s, &t->out);
    assert_true(t->out.n >= 1);
    assert_int_equal(t->out.f[0].type, RILL_H2_SETTINGS);
    assert_int_equal(t->out.preface, role == RILL_H2_CLIENT);
    tbuf b = {0};
    if (role == RILL_H2_SERVER)
        tb_put(&b, PREFACE, 24);
    tf_settings(&b, 0);
    tf_settings_ack(&b);
    feed_drain(t, &b);
    assert_true(t->last_rc >= 0);
    /* Our answer: a SETTINGS ACK. */
    const tframe *ack = find_frame(&t->out, RILL_H2_SETTINGS, 0);
    assert_non_null(ack);
    assert_int_equal(ack->flags, 1);
    t->rec.n = 0;
    tb_free(&b);
}
TU void tsess_free(tsess *t)
{
    rill_h2_session_free(t->s);
    rill_h2_profile_free(t->prof); /* NULL for sessions made with their own options */
    tb_free(&t->out.raw);
    rec_free(&t->rec);
}

/* Decodes a HEADERS payload (END_HEADERS, no padding/priority) of our output into "n: v\n" text. */
typedef struct tdec {
    rill_hpack_decoder *d;
} tdec;
TU int tdec_cb(const rill_header *f, void *user)
{
    tbuf *b = user;
    tb_put(b, f->name, f->name_len);
    tb_put(b, ": ", 2);
    tb_put(b, f->value, f->value_len);
    tb_put(b, "\n", 1);
    return 0;
}
/* Returns a malloc'd NUL-terminated string. */
TU char *tdec_block(tdec *d, const uint8_t *p, size_t n)
{
    if (!d->d)
        d->d = rill_hpack_decoder_new(4096);
    tbuf b = {0};
    assert_int_equal(rill_hpack_decode_block(d->d, p, n, tdec_cb, &b), 0);
    tb_byte(&b, 0);
    return (char *)b.p;
}
/* Decodes every header block (HEADERS/PUSH_PROMISE + CONTINUATIONs) of o in order; fills sids[],
 * types[] and texts[] (malloc'd, caller frees with tdec_texts_free). Returns the count. */
TU size_t tdec_all(tdec *d, const tout *o, uint32_t *sids, uint8_t *types, char **texts, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n && n < max; i++) {
        const tframe *f = &o->f[i];
        if (f->type != RILL_H2_HEADERS && f->type != RILL_H2_PUSH_PROMISE)
            continue;
        tbuf blk = {0};
        const uint8_t *p = f->payload;
        size_t len = f->len;
        assert_false(f->flags & 0x8); /* we never pad */
        if (f->type == RILL_H2_PUSH_PROMISE) {
            p += 4;
            len -= 4;
        }
        tb_put(&blk, p, len);
        uint8_t flags = f->flags;
        while (!(flags & 0x4)) {
            assert_true(++i < o->n);
            assert_int_equal(o->f[i].type, RILL_H2_CONTINUATION);
            assert_int_equal(o->f[i].sid, f->sid);
            tb_put(&blk, o->f[i].payload, o->f[i].len);
            flags = o->f[i].flags;
        }
        sids[n] = f->sid;
        types[n] = f->type;
        texts[n] = tdec_block(d, blk.p, blk.len);
        n++;
        tb_free(&blk);
    }
    return n;
}
TU void tdec_texts_free(char **texts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
}

/* Field list helper: F("name", "value") */
#define F(n, v) {(const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), sizeof(v) - 1, 0}

TU void tdec_free(tdec *d)
{
    if (d->d)
        rill_hpack_decoder_free(d->d);
}

#endif
