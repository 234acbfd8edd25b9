/* http_get: fetch a URL with rill's asynchronous client API (rill/client.h on a rill/io.h loop).
 *
 *   http_get [-k] [--h2c] URL [N]
 *
 * Fetches URL N times (default 1), all at once: in parallel streams over one HTTP/2 connection
 * (https:// when the server offers h2 by ALPN, or http:// with --h2c, HTTP/2 by prior
 * knowledge), or over HTTP/1.1 on the client's pool of keep-alive connections (up to
 * rill_client_options.max_connections, 6 by default). The bodies go to stdout in request order;
 * one line per response ("200 h2 1048576 bytes") and any error go to stderr.
 *   -k      https: do not verify the server's certificate
 *   --h2c   http: speak HTTP/2 at once
 * Exit status: 0 when every request got a whole response with a status below 400, 1 otherwise,
 * 2 for bad arguments.
 *
 * Who owns what:
 *   - the loop (rill_io_loop_new) is ours: we run it, and free it after everything on it;
 *   - the client (rill_client_new) is ours too: it copies its options (the URL string may go
 *     away after the call) and owns its connections; rill_client_free closes them;
 *   - each request (rill_client_stream) belongs to the client: it lives until its on_end callback
 *     returns and must not be touched afterwards. The request's method, target, fields and body
 *     are copied by rill_client_request;
 *   - what a callback receives (status fields, body bytes, error text) is only valid during the
 *     call: copy what you keep (here: the body, appended to a buffer of our own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/client.h"
#include "rill/io.h"

/* Our state for one request, handed to every callback as `user`. */
struct fetch {
    struct app *app;
    int status;        /* 0 until on_response */
    unsigned char *body; /* the body so far, malloc'ed by us */
    size_t len, cap;
    bool done, failed;
};

struct app {
    rill_io_loop *loop;
    struct fetch *fetches;
    size_t n, ended, written; /* requests, requests ended, bodies written to stdout */
    int exit_status;
};

static void on_response(rill_client_stream *st, int status, const rill_header *fields, size_t n,
                        void *user)
{
    (void)fields; /* fields[i].name / .value are not NUL-terminated: use name_len / value_len */
    (void)n;
    struct fetch *f = user;
    (void)st;
    f->status = status; /* the body follows in on_data, the end in on_end */
}

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    (void)st;
    struct fetch *f = user;
    if (f->failed)
        return;
    if (f->len + len > f->cap) { /* data is the client's buffer: copy it before returning */
        size_t cap = f->cap ? f->cap : 16384;
        while (cap < f->len + len)
            cap *= 2;
        unsigned char *p = realloc(f->body, cap);
        if (!p) {
            f->failed = true;
            rill_client_stream_cancel(st); /* on_end(RILL_ERR_CANCELLED) follows, later */
            return;
        }
        f->body = p;
        f->cap = cap;
    }
    memcpy(f->body + f->len, data, len);
    f->len += len;
}

/* Writes the bodies of the requests that ended, in request order, as far as the first one still
 * running: output in order although HTTP/2 streams may finish in any order. */
static void write_ready(struct app *a)
{
    while (a->written < a->n && a->fetches[a->written].done) {
        struct fetch *f = &a->fetches[a->written++];
        if (f->len && fwrite(f->body, 1, f->len, stdout) != f->len)
            a->exit_status = 1;
        free(f->body);
        f->body = NULL;
    }
}

/* Always called once per request, last: err 0 means the whole response arrived. After this returns
 * the client frees st. */
static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct fetch *f = user;
    struct app *a = f->app;
    if (err) {
        /* why is one line such as "cannot connect to 127.0.0.1:1: Connection refused" */
        fprintf(stderr, "http_get: %s\n", why ? why : rill_strerror(err));
        f->failed = true;
    } else {
        /* The protocol the request went over: "h2" or "http/1.1" (static storage). */
        const char *proto = rill_client_stream_protocol(st);
        fprintf(stderr, "%d %s %zu bytes\n", f->status, proto ? proto : "?", f->len);
    }
    if (f->failed || f->status >= 400) {
        a->exit_status = 1;
        f->len = 0; /* no body for a failure */
    }
    f->done = true;
    write_ready(a);
    if (++a->ended == a->n)
        rill_io_loop_stop(a->loop); /* rill_io_loop_run returns after this turn */
}

/* Only the members we set are called; the size tells the library which members we know. */
static const rill_client_callbacks callbacks = {
    .size = sizeof callbacks,
    .on_response = on_response,
    .on_data = on_data,
    .on_end = on_end,
};

int main(int argc, char **argv)
{
    bool insecure = false, h2c = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-k"))
            insecure = true;
        else if (!strcmp(argv[i], "--h2c"))
            h2c = true;
        else
            break;
    }
    if (i >= argc || argc - i > 2) {
        fprintf(stderr, "usage: http_get [-k] [--h2c] URL [N]\n");
        return 2;
    }
    const char *url = argv[i];
    long n = argc - i == 2 ? strtol(argv[i + 1], NULL, 10) : 1;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "http_get: N must be 1..100000\n");
        return 2;
    }

    struct app a = {.n = (size_t)n};
    if (rill_io_loop_new(NULL, &a.loop) < 0) { /* NULL: the loop's default options */
        fprintf(stderr, "http_get: cannot create the loop\n");
        return 1;
    }

    /* The client's options: init fills the defaults (and the struct's size), then we change what
     * we need. The URL gives the origin (scheme, host, port); its path is ignored here. */
    rill_client_options opt;
    rill_client_options_init(&opt);
    opt.url = url;
    opt.insecure = insecure;
    opt.h2_prior_knowledge = h2c;
    opt.request_timeout_ms = 60000;
    rill_client *client;
    char err[256];
    if (rill_client_new(a.loop, &opt, &client, err, sizeof err) < 0) {
        fprintf(stderr, "http_get: %s\n", err);
        rill_io_loop_free(a.loop);
        return 2;
    }

    a.fetches = calloc(a.n, sizeof *a.fetches);
    if (!a.fetches) {
        rill_client_free(client);
        rill_io_loop_free(a.loop);
        return 1;
    }
    /* Each request names the whole URL as its target (one of the client's origin); nothing is
     * sent yet: the connection is made on the loop, and every outcome, failures too, comes back
     * through the callbacks. */
    for (size_t k = 0; k < a.n; k++) {
        a.fetches[k].app = &a;
        int rc = rill_client_request(client, "GET", url, NULL, 0, NULL, 0, &callbacks,
                                     &a.fetches[k], NULL);
        if (rc < 0) { /* a bad target or out of memory: nothing will be called for this one */
            fprintf(stderr, "http_get: %s: %s\n", url, rill_strerror(rc));
            a.exit_status = 1;
            a.fetches[k].done = true;
            a.ended++;
        }
    }

    if (a.ended < a.n)
        rill_io_loop_run(a.loop); /* until the last on_end stops it */
    write_ready(&a);

    /* The client first (it closes its connections on the loop), then the loop. */
    rill_client_free(client);
    rill_io_loop_free(a.loop);
    for (size_t k = 0; k < a.n; k++)
        free(a.fetches[k].body);
    free(a.fetches);
    if (fflush(stdout) != 0)
        a.exit_status = 1;
    return a.exit_status;
}
