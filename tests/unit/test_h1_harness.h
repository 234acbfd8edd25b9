/* Shared by the test_h1_*.c programs: runs a parser over an input split into pieces of a given
 * size and records every event as text, so different splits can be compared for equality.
 * Each piece is copied into its own heap block that is freed right after it was fed, so ASan
 * catches any head span that wrongly points into caller input. */
#ifndef TEST_H1_HARNESS_H
#define TEST_H1_HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/h1.h"

struct transcript {
    char text[65536];
    size_t len;
    int rc;             /* the first error returned, or 0 */
    rill_h1_error err;  /* rill_h1_parser_error after the run */
    int heads, ends, trailers;
    size_t consumed;    /* bytes consumed before the stop */
    bool last_was_body; /* merge consecutive BODY pieces */
};

static inline void tr_put(struct transcript *t, const char *s, size_t n)
{
    if (n > sizeof t->text - 1 - t->len)
        n = sizeof t->text - 1 - t->len;
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

static void tr_fmt(struct transcript *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void tr_fmt(struct transcript *t, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        tr_put(t, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static inline void tr_fields(struct transcript *t, const rill_header *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tr_put(t, (const char *)f[i].name, f[i].name_len);
        tr_put(t, "=", 1);
        tr_put(t, (const char *)f[i].value, f[i].value_len);
        tr_put(t, ";", 1);
    }
}

static inline void tr_head(struct transcript *t, const rill_h1_head *h)
{
    tr_put(t, "H[", 2);
    if (h->method) {
        tr_put(t, h->method, h->method_len);
        tr_put(t, " ", 1);
        tr_put(t, h->target, h->target_len);
        tr_fmt(t, " form=%d host=", (int)h->target_form);
        if (h->host)
            tr_put(t, h->host, h->host_len);
    } else {
        tr_fmt(t, "%d ", h->status);
        tr_put(t, h->reason, h->reason_len);
    }
    tr_fmt(t, " v1.%d body=%d cl=%llu ka=%d ec=%d eo=%d cu=%d up=%d|", h->version_minor,
           (int)h->body, (unsigned long long)h->content_length, h->keep_alive,
           h->expect_continue, h->expect_other, h->connection_upgrade, h->upgrade);
    tr_fields(t, h->fields, h->nfields);
    tr_put(t, "]", 1);
}

/* Feeds data to p in pieces of `step` bytes (0 = all at once). Stops at the first error. */
static inline void tr_feed(rill_h1_parser *p, const char *data, size_t len, size_t step,
                    struct transcript *t)
{
    size_t off = 0;
    if (step == 0)
        step = len ? len : 1;
    while (off < len && t->rc == 0) {
        size_t n = len - off < step ? len - off : step;
        uint8_t *piece = malloc(n);
        memcpy(piece, data + off, n);
        size_t at = 0;
        for (;;) {
            rill_h1_event ev;
            size_t used = 0;
            int rc = rill_h1_parse(p, piece + at, n - at, &used, &ev);
            at += used;
            t->consumed += used;
            if (rc != 0) {
                t->rc = rc;
                break;
            }
            if (ev.type == RILL_H1_EV_BODY) {
                if (!t->last_was_body)
                    tr_put(t, "B<", 2);
                else
                    t->len--, t->text[t->len] = '\0'; /* reopen the previous body piece */
                tr_put(t, (const char *)ev.data, ev.len);
                tr_put(t, ">", 1);
                t->last_was_body = true;
                continue;
            }
            if (ev.type == RILL_H1_EV_NONE) {
                if (at != n) { /* NONE must mean every byte was absorbed */
                    tr_put(t, "!LEFTOVER", 9);
                    t->rc = -999;
                }
                break;
            }
            t->last_was_body = false;
            if (ev.type == RILL_H1_EV_HEAD) {
                t->heads++;
                tr_head(t, ev.head);
            } else if (ev.type == RILL_H1_EV_TRAILERS) {
                t->trailers++;
                tr_put(t, "T[", 2);
                tr_fields(t, ev.fields, ev.nfields);
                tr_put(t, "]", 1);
            } else if (ev.type == RILL_H1_EV_END) {
                t->ends++;
                /* The head must still be readable at END (lifetime promise). */
                tr_fmt(t, "E%s(", ev.upgraded ? "U" : "");
                if (ev.head->method)
                    tr_put(t, ev.head->method, ev.head->method_len);
                else
                    tr_fmt(t, "%d", ev.head->status);
                tr_put(t, ")", 1);
                if (ev.upgraded)
                    break;
            }
        }
        free(piece);
        off += n;
        if (t->rc == RILL_ERR_STATE)
            break;
    }
    t->err = rill_h1_parser_error(p);
}

/* A whole run on a fresh parser; eof = also signal the end of the stream. */
static inline void tr_run(rill_h1_role role, const rill_h1_options *lim, const char *method,
                   const char *data, size_t len, size_t step, bool eof, struct transcript *t)
{
    memset(t, 0, sizeof *t);
    rill_h1_parser *p = rill_h1_parser_new(role, lim);
    if (method)
        rill_h1_set_request_method(p, method, strlen(method));
    tr_feed(p, data, len, step, t);
    if (eof && t->rc == 0) {
        rill_h1_event ev;
        int rc = rill_h1_parse_eof(p, &ev);
        if (rc != 0)
            t->rc = rc;
        else if (ev.type == RILL_H1_EV_END) {
            t->ends++;
            tr_put(t, "E(eof)", 6);
        }
        t->err = rill_h1_parser_error(p);
    }
    rill_h1_parser_free(p);
}

/* Runs data through a fresh parser whole, a byte at a time, and cut in two at every byte: each
 * run must give the whole run's events, error and consumed count. A head that arrives whole takes
 * the parser's one-pass path for its field lines; a byte at a time, the careful line-by-line
 * path; cuts mix the two. (A head past its size limit is refused once the limit is reached, so
 * how much of it was taken depends on the pieces: that count is not compared.) Returns the whole
 * run's transcript in *whole. */
static inline void tr_same_at_every_cut(rill_h1_role role, const rill_h1_options *lim,
                                        const char *method, const char *data, size_t len,
                                        struct transcript *whole)
{
    static struct transcript t;
    tr_run(role, lim, method, data, len, 0, false, whole);
    for (size_t cut = 0; cut <= len; cut++) {
        if (cut == 0) {
            tr_run(role, lim, method, data, len, 1, false, &t);
        } else {
            memset(&t, 0, sizeof t);
            rill_h1_parser *p = rill_h1_parser_new(role, lim);
            if (method)
                rill_h1_set_request_method(p, method, strlen(method));
            tr_feed(p, data, cut, 0, &t);
            if (t.rc == 0)
                tr_feed(p, data + cut, len - cut, 0, &t);
            t.err = rill_h1_parser_error(p);
            rill_h1_parser_free(p);
        }
        if (strcmp(whole->text, t.text) != 0 || whole->rc != t.rc || whole->err != t.err ||
            (whole->consumed != t.consumed && whole->err != RILL_H1_E_HEAD_TOO_LARGE)) {
            fprintf(stderr, "input %.*s\ncut %zu: rc %d/%d err %d/%d consumed %zu/%zu\n%s\n%s\n",
                    (int)len, data, cut, whole->rc, t.rc, (int)whole->err, (int)t.err,
                    whole->consumed, t.consumed, whole->text, t.text);
            abort();
        }
    }
}

#endif
