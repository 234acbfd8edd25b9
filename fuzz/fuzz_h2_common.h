/* Shared body of the HTTP/2 session fuzzers: arbitrary bytes in, in pieces, with the application
 * side reacting (responses, data, resets) so more states are reached. Besides memory safety, a
 * differential check: the input fed whole and fed in pieces (a cut schedule from the first byte,
 * fuzz_split.h) must give the same events (header blocks, body bytes per stream, ends, resets,
 * settings, GOAWAY) and the same verdict. In those two runs output is drained only at the end and
 * time stands still, so nothing but the cuts differs; a third run drains and ticks as it goes. */
#ifndef FUZZ_H2_COMMON_H
#define FUZZ_H2_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_split.h"
#include "rill/h2.h"

static const uint8_t fz_body[4096];

/* What the session reported, folded into a hash; data_sid joins consecutive body chunks of one
 * stream, so only the cuts' own boundaries are invisible. */
struct fz_digest {
    uint64_t h;
    int32_t data_sid;
};

static void fz_mix(struct fz_digest *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 0x100000001b3ull;
}

static void fz_event(struct fz_digest *d, uint8_t what, int32_t sid, uint32_t code)
{
    d->data_sid = 0;
    fz_mix(d, &what, 1);
    fz_mix(d, &sid, sizeof sid);
    fz_mix(d, &code, sizeof code);
}

static void fz_mix_fields(struct fz_digest *d, const rill_header *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fz_mix(d, f[i].name, f[i].name_len);
        fz_mix(d, ":", 1);
        fz_mix(d, f[i].value, f[i].value_len);
        fz_mix(d, "\n", 1);
    }
}

static int fz_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    static const rill_header ok[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0},
                                     {(const uint8_t *)"server", 6, (const uint8_t *)"fuzz", 4, 0}};
    static const rill_header cont[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"103", 3, 0}};
    static const rill_header tr[] = {{(const uint8_t *)"x-t", 3, (const uint8_t *)"1", 1, 0}};
    struct fz_digest *d = user;
    fz_event(d, 'H', sid, (uint32_t)kind << 8 | flags);
    fz_mix_fields(d, f, n);
    if (kind != RILL_H2_HEADERS_REQUEST)
        return 0;
    switch (sid % 5) {
    case 0: rill_h2_submit_rst_stream(s, sid, RILL_H2_CANCEL); break;
    case 1:
        rill_h2_submit_response(s, sid, cont, 1, 0);
        rill_h2_submit_response(s, sid, ok, 2, 0);
        rill_h2_submit_data(s, sid, fz_body, (size_t)sid % sizeof fz_body, 0, NULL);
        rill_h2_submit_trailers(s, sid, tr, 1);
        break;
    case 2: {
        static const rill_header push[] = {{(const uint8_t *)":method", 7, (const uint8_t *)"GET", 3, 0},
                                           {(const uint8_t *)":scheme", 7, (const uint8_t *)"https", 5, 0},
                                           {(const uint8_t *)":path", 5, (const uint8_t *)"/p", 2, 0},
                                           {(const uint8_t *)":authority", 10, (const uint8_t *)"a", 1, 0}};
        int32_t pid = rill_h2_submit_push_promise(s, sid, push, 4, NULL);
        if (pid > 0)
            rill_h2_submit_response(s, pid, ok, 2, RILL_H2_FLAG_END_STREAM);
        rill_h2_submit_response(s, sid, ok, 2, RILL_H2_FLAG_END_STREAM);
        break;
    }
    default:
        rill_h2_submit_response(s, sid, ok, 2, 0);
        rill_h2_submit_data(s, sid, fz_body, sizeof fz_body, RILL_H2_FLAG_END_STREAM, NULL);
        break;
    }
    return 0;
}

static int fz_data(rill_h2_session *s, int32_t sid, const uint8_t *data, size_t n, void *user)
{
    struct fz_digest *d = user;
    if (d->data_sid != sid) {
        fz_event(d, 'D', sid, 0);
        d->data_sid = sid;
    }
    fz_mix(d, data, n);
    rill_h2_consume(s, sid, n);
    return 0;
}

static int fz_push(rill_h2_session *s, int32_t sid, int32_t promised, const rill_header *f,
                   size_t n, void *user)
{
    (void)s;
    fz_event(user, 'P', sid, (uint32_t)promised);
    fz_mix_fields(user, f, n);
    return 0;
}

static int fz_end(rill_h2_session *s, int32_t sid, void *user)
{
    (void)s;
    fz_event(user, 'E', sid, 0);
    return 0;
}

static int fz_reset(rill_h2_session *s, int32_t sid, uint32_t code, void *user)
{
    (void)s;
    fz_event(user, 'R', sid, code);
    return 0;
}

static int fz_closed(rill_h2_session *s, int32_t sid, uint32_t code, void *user)
{
    (void)s;
    fz_event(user, 'C', sid, code);
    return 0;
}

static int fz_settings(rill_h2_session *s, const rill_h2_settings *peer, void *user)
{
    (void)s;
    fz_event(user, 'S', 0, 0);
    fz_mix(user, peer, sizeof *peer);
    return 0;
}

static int fz_goaway(rill_h2_session *s, int32_t last, uint32_t code, const uint8_t *debug,
                     size_t len, void *user)
{
    (void)s;
    fz_event(user, 'G', last, code);
    fz_mix(user, debug, len);
    return 0;
}

/* One run over data: cut by cuts (NULL = whole); live = drain output and advance time after
 * every piece (else only at the end, with time standing still). Returns the digest. */
static uint64_t fz_feed(enum rill_h2_role role, const uint8_t *data, size_t size,
                        struct fuzz_cuts *cuts, bool live)
{
    static const rill_h2_callbacks cb = {.size = sizeof cb, .on_headers = fz_headers,
                                         .on_data = fz_data,
                                         .on_push_promise = fz_push,
                                         .on_end_stream = fz_end,
                                         .on_stream_reset = fz_reset,
                                         .on_stream_close = fz_closed,
                                         .on_settings = fz_settings,
                                         .on_goaway = fz_goaway};
    struct fz_digest d = {0xcbf29ce484222325ull, 0};
    rill_h2_options opt;
    rill_h2_options_init(&opt, role);
    opt.local.enable_connect_protocol = 1;
    rill_h2_session *s = rill_h2_session_new(role, &opt, &cb, &d);
    if (!s)
        abort();
    static uint8_t out[1 << 16];
    if (role == RILL_H2_CLIENT) {
        static const rill_header req[] = {{(const uint8_t *)":method", 7, (const uint8_t *)"POST", 4, 0},
                                          {(const uint8_t *)":scheme", 7, (const uint8_t *)"https", 5, 0},
                                          {(const uint8_t *)":path", 5, (const uint8_t *)"/", 1, 0},
                                          {(const uint8_t *)":authority", 10, (const uint8_t *)"a", 1, 0}};
        for (int i = 0; i < 4; i++) {
            int32_t id = rill_h2_submit_request(s, req, 4, i == 3 ? RILL_H2_FLAG_END_STREAM : 0, NULL);
            if (id > 0 && i < 3)
                rill_h2_submit_data(s, id, fz_body, 100, RILL_H2_FLAG_END_STREAM, NULL);
        }
    }
    uint64_t now = 0;
    int64_t rc = 0;
    for (size_t i = 0; i < size && rc >= 0;) {
        size_t n = cuts ? fuzz_cuts_next(cuts, size - i) : size - i;
        uint8_t *piece = malloc(n); /* its own block: ASan sees a read past the piece */
        memcpy(piece, data + i, n);
        rc = rill_h2_session_recv(s, piece, n);
        free(piece);
        if (rc >= 0 && (size_t)rc != n)
            abort(); /* recv consumes everything or fails */
        if (live) {
            rill_h2_session_send_copy(s, out, sizeof out);
            rill_h2_session_tick(s, now += 7);
        }
        i += n;
    }
    uint8_t failed = rc < 0;
    fz_mix(&d, &failed, 1);
    while (rill_h2_session_send_copy(s, out, sizeof out) > 0) {
    }
    rill_h2_session_trim(s);
    rill_h2_session_free(s);
    return d.h;
}

static void fz_run(enum rill_h2_role role, const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    unsigned sel = data[0];
    data++, size--;
    struct fuzz_cuts cuts;
    uint64_t whole = fz_feed(role, data, size, NULL, false);
    fuzz_cuts_init(&cuts, fuzz_cuts_class(sel) * 4, sel); /* frames are longer than h1 lines */
    if (fz_feed(role, data, size, &cuts, false) != whole)
        abort(); /* the cuts changed what the session reported */
    fuzz_cuts_init(&cuts, 1 + sel % 64, sel);
    (void)fz_feed(role, data, size, &cuts, true);
}

#endif
