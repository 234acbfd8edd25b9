/* `rill get`'s pieces shared between its files: ordered output (get_output.c), redirect targets
 * (get_url.c), the progress bar (get_progress.c) and --stat timings (get_stat.c). Internal to
 * the CLI. */
#ifndef RILL_CLI_GET_H
#define RILL_CLI_GET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

/* ---- ordered output ------------------------------------------------------------------------ */

/* One destination (stdout, an -o file, the -D file) written by several transfers in their
 * order: the part whose turn it is writes through, later ones hold their bytes until then. */
struct get_sink {
    const char *path;        /* NULL: standard output */
    FILE *f;                 /* opened on the first write (or get_sink_open) */
    struct get_part **order; /* the parts writing here, in turn order; n of them */
    size_t n, cap, next;
    int err;                 /* errno of the first failed write or open; 0 */
    bool reported;           /* the caller said so */
    bool interactive;        /* a terminal: each part is flushed as it ends */
    char *buf;               /* the file's stdio buffer (SINK_BUFFER bytes), freed after fclose */
};

/* What one transfer writes to one sink. */
struct get_part {
    struct get_sink *sink;
    char *buf; /* held until its turn */
    size_t len, cap;
    bool done;
};

/* Adds p as the sink's next part in turn order; false when out of memory. */
bool get_sink_add(struct get_sink *s, struct get_part *p);
/* Opens a file sink (creating an empty file) if not yet open; false (s->err set) on failure. */
bool get_sink_open(struct get_sink *s);
/* Writes or holds len bytes; false when the sink cannot be written (s->err set; nothing more is
 * written to it). */
bool get_part_write(struct get_part *p, const void *data, size_t len);
/* The same for pieces that came together: one writev when they go straight to the file. */
bool get_part_writev(struct get_part *p, const struct iovec *pieces, int n);
/* p wrote all it will: the next parts in turn write what they held. Closes a file sink after its
 * last part; false when a write or the close failed (s->err set). */
bool get_part_done(struct get_part *p);
/* Frees what the sink and its parts hold; closes a file left open. */
void get_sink_free(struct get_sink *s);

/* ---- redirects ----------------------------------------------------------------------------- */

/* The absolute http(s) URL that Location value loc names relative to base (RFC 3986 section 5:
 * dot segments removed, the fragment dropped, spaces and bytes outside ASCII percent-encoded).
 * Returns a malloc'd string (the caller frees it), or NULL with a reason in why (another scheme,
 * a control character, out of memory). */
char *get_url_resolve(const char *base, const char *loc, char *why, size_t whylen);

/* ---- timings (--stat) ---------------------------------------------------------------------- */

/* Milliseconds on the monotonic clock since the first call. */
double get_now_ms(void);

/* When one request's steps happened, in get_now_ms milliseconds; a negative value: did not
 * happen (dns and connect: the request went on a connection opened before it started). */
struct get_stat {
    double start, dns, connect, first, end;
};

/* The --stat line of one request on stderr (format in `rill get --help`). */
void get_stat_print(const char *method, const char *url, int status, const char *proto,
                    uint64_t bytes, const struct get_stat *st);

/* ---- the progress bar ---------------------------------------------------------------------- */

struct get_progress {
    bool on;
    uint64_t got, total; /* body bytes to files so far; their Content-Lengths */
    bool unknown;        /* a response to a file has no Content-Length */
    unsigned responses;  /* responses going to files so far */
    bool shown;          /* a drawing is on the current line */
    double started, drawn;
};

/* Counts a response going to a file: its Content-Length, or -1 when it has none. */
void get_progress_expect(struct get_progress *pr, int64_t length);
/* len more bytes to a file; redraws at most ten times a second. */
void get_progress_data(struct get_progress *pr, size_t len);
/* Ends the line of a drawing, so that a message can follow on a line of its own. */
void get_progress_break(struct get_progress *pr);
/* The last drawing and its line end, when there was a response to a file. */
void get_progress_finish(struct get_progress *pr);

#endif
