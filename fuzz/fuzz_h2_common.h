/* Shared body of the HTTP/2 session fuzzers: arbitrary bytes in, in pieces, with the application
 * side reacting (responses, data, resets) so more states are reached. */
#ifndef FUZZ_H2_COMMON_H
#define FUZZ_H2_COMMON_H

#include <stdint.h>
#include <string.h>

#include "rill/h2.h"

static const uint8_t fz_body[4096];

static int fz_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    static const rill_header ok[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0},
                                     {(const uint8_t *)"server", 6, (const uint8_t *)"fuzz", 4, 0}};
    static const rill_header cont[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"103", 3, 0}};
    static const rill_header tr[] = {{(const uint8_t *)"x-t", 3, (const uint8_t *)"1", 1, 0}};
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

static int fz_data(rill_h2_session *s, int32_t sid, const uint8_t *d, size_t n, void *user)
{
    rill_h2_consume(s, sid, n);
    return 0;
}

static void fz_run(enum rill_h2_role role, const uint8_t *data, size_t size)
{
    static const rill_h2_callbacks cb = {.on_headers = fz_headers, .on_data = fz_data};
    rill_h2_options opt;
    rill_h2_options_init(&opt, role);
    opt.local.enable_connect_protocol = 1;
    rill_h2_session *s = rill_h2_session_new(role, &cb, &opt, NULL);
    if (!s)
        return;
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
    /* The first byte picks the chunking, so frame-boundary handling gets exercised. */
    size_t step = size ? (size_t)data[0] % 64 + 1 : 1;
    uint64_t now = 0;
    for (size_t i = size ? 1 : 0; i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        if (rill_h2_session_recv(s, data + i, n) < 0)
            break;
        rill_h2_session_send_copy(s, out, sizeof out);
        rill_h2_session_tick(s, now += 7);
    }
    while (rill_h2_session_send_copy(s, out, sizeof out) > 0) {
    }
    rill_h2_session_trim(s);
    rill_h2_session_free(s);
}

#endif
