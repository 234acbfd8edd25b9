/* Shared by fuzz_h1_request.c and fuzz_h1_response.c: runs the parser over an input whole, cut
 * where a schedule from an input byte says (fuzz_split.h), and (for short inputs) one byte at a
 * time, and aborts if the runs disagree (heads, fields, body bytes, trailers, error), so the
 * fuzzer checks split-independence as well as memory safety. */
#ifndef FUZZ_H1_RUN_H
#define FUZZ_H1_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_split.h"
#include "rill/h1.h"

struct digest {
    uint64_t h;
    int rc;
    rill_h1_error err;
    size_t heads;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 0x100000001b3ull;
}

static void mix_fields(struct digest *d, const rill_header *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mix(d, f[i].name, f[i].name_len);
        mix(d, ":", 1);
        mix(d, f[i].value, f[i].value_len);
        mix(d, "\n", 1);
    }
}

typedef void (*head_hook)(const rill_h1_head *head);

/* Feeds data in the pieces cuts gives (NULL = whole) and digests every event. */
static void run(rill_h1_role role, const char *method, const uint8_t *data, size_t len,
                struct fuzz_cuts *cuts, head_hook hook, struct digest *d)
{
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_head_size = 2048; /* small limits so the fuzzer reaches them */
    lim.max_request_line = 512;
    lim.max_fields = 16;
    lim.max_trailer_size = 256;
    lim.max_trailer_fields = 4;
    lim.max_chunk_ext = 32;
    lim.max_body = 1u << 20;
    rill_h1_parser *p = rill_h1_parser_new(role, &lim);
    if (!p)
        abort();
    if (method)
        rill_h1_set_request_method(p, method, strlen(method));
    memset(d, 0, sizeof *d);
    d->h = 0xcbf29ce484222325ull;
    size_t off = 0;
    bool upgraded = false;
    while (off < len && d->rc == 0 && !upgraded) {
        size_t n = cuts ? fuzz_cuts_next(cuts, len - off) : len - off;
        uint8_t *piece = malloc(n); /* own block: ASan sees any stray read */
        memcpy(piece, data + off, n);
        size_t at = 0;
        for (;;) {
            rill_h1_event ev;
            size_t used;
            int rc = rill_h1_parse(p, piece + at, n - at, &used, &ev);
            if (used > n - at)
                abort();
            at += used;
            if (rc) {
                d->rc = rc;
                break;
            }
            if (ev.type == RILL_H1_EV_NONE) {
                if (at != n)
                    abort(); /* NONE promises everything was absorbed */
                break;
            }
            if (ev.type == RILL_H1_EV_BODY) {
                if (ev.len == 0)
                    abort();
                mix(d, ev.data, ev.len); /* body bytes: split-independent stream */
                continue;
            }
            uint8_t type = (uint8_t)ev.type;
            mix(d, &type, 1);
            if (ev.type == RILL_H1_EV_HEAD) {
                const rill_h1_head *h = ev.head;
                d->heads++;
                if (h->method) {
                    mix(d, h->method, h->method_len);
                    mix(d, h->target, h->target_len);
                }
                mix(d, &h->status, sizeof h->status);
                mix(d, &h->body, sizeof h->body);
                mix(d, &h->content_length, sizeof h->content_length);
                mix(d, &h->keep_alive, sizeof h->keep_alive);
                mix_fields(d, h->fields, h->nfields);
                if (hook)
                    hook(h);
            } else if (ev.type == RILL_H1_EV_TRAILERS) {
                mix_fields(d, ev.fields, ev.nfields);
            } else if (ev.type == RILL_H1_EV_END) {
                mix(d, &ev.upgraded, sizeof ev.upgraded);
                if (ev.upgraded) {
                    upgraded = true; /* the rest is another protocol's */
                    break;
                }
            }
        }
        free(piece);
        off += n;
    }
    if (d->rc == 0 && !upgraded) {
        rill_h1_event ev;
        d->rc = rill_h1_parse_eof(p, &ev);
        uint8_t type = (uint8_t)ev.type;
        mix(d, &type, 1);
    }
    d->err = rill_h1_parser_error(p);
    if ((d->rc != 0) != (d->err != RILL_H1_E_NONE))
        abort(); /* every error has a reason, and only errors do */
    rill_h1_parser_free(p);
}

static bool same(const struct digest *a, const struct digest *b)
{
    return a->h == b->h && a->rc == b->rc && a->err == b->err && a->heads == b->heads;
}

/* cut_sel: the low 3 bits pick the largest piece (fuzz_cuts_class), all 8 seed the cuts. */
static void check_split_independence(rill_h1_role role, const char *method, const uint8_t *data,
                                     size_t len, unsigned cut_sel, head_hook hook)
{
    struct digest whole, split;
    struct fuzz_cuts cuts;
    run(role, method, data, len, NULL, hook, &whole);
    fuzz_cuts_init(&cuts, fuzz_cuts_class(cut_sel), cut_sel);
    run(role, method, data, len, &cuts, NULL, &split);
    if (!same(&whole, &split))
        abort();
    if (len <= 4096 && cuts.max != 1) { /* every byte boundary at once; cheap for short inputs */
        fuzz_cuts_init(&cuts, 1, 0);
        run(role, method, data, len, &cuts, NULL, &split);
        if (!same(&whole, &split))
            abort();
    }
}

#endif
