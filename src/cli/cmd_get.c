/* `rill get URL...`: an HTTP client with curl's habits. URLs of one origin share one client (one
 * HTTP/2 connection, requests in parallel); bodies go to stdout in URL order, or to files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/get.h"
#include "rill/client.h"
#include "rill/h1.h"

static const char usage[] =
    "usage: rill get [options] URL...\n\n"
    "Fetch http:// and https:// URLs: HTTP/2 when the server offers it by ALPN (https), HTTP/1.1\n"
    "otherwise; several URLs of one origin go at once: as parallel streams on one HTTP/2\n"
    "connection, or over up to --max-connections keep-alive HTTP/1.1 connections.\n"
    "Bodies go to standard output in the order of the URLs.\n\n"
    "  -o, --output FILE         write the next URL's body to FILE\n"
    "  -O, --remote-name         write the next URL's body to a file named as its last path part\n"
    "  -D, --dump-header FILE    write the response heads to FILE ('-': standard output)\n"
    "  -H, --header 'NAME: VALUE'  add a request field ('NAME:' drops a default one)\n"
    "  -X, --request METHOD      use METHOD\n"
    "  -d, --data DATA           send DATA (or @FILE, line ends removed) as a form body, POST\n"
    "  --data-binary DATA        send DATA (or @FILE, as it is, streamed) as the body, POST\n"
    "  -I, --head                HEAD: print the response head only\n"
    "  -i, --include             print the response head before the body\n"
    "  -L, --location            follow redirects (301, 302, 303, 307, 308)\n"
    "  --max-redirs N            follow at most N redirects (default 50; -1: no limit)\n"
    "  -n N                      fetch each URL N times, at once (one HTTP/2 connection, as many\n"
    "                            streams as the server allows, 100 before its SETTINGS; or the\n"
    "                            HTTP/1.1 keep-alive connections of --max-connections)\n"
    "  --max-connections N       HTTP/1.1: at most N connections per origin at once (default 6;\n"
    "                            1: one request after another on one keep-alive connection)\n"
    "  -v, --verbose             print connections, HTTP/2 frames and fields on stderr\n"
    "  -s, --silent              print no error messages and no progress bar\n"
    "  -S, --show-error          print error messages even with -s\n"
    "  -f, --fail                no body for an HTTP status of 400 or more; exit 22\n"
    "  -k, --insecure            https: do not verify the server certificate\n"
    "  --cacert FILE             https: trust this CA certificate (PEM)\n"
    "  --http1.1                 use HTTP/1.1 only\n"
    "  --http2                   HTTP/2 where possible: https by ALPN (the default); http:// by\n"
    "                            an h2c Upgrade on the first request (HTTP/1.1 if declined)\n"
    "  --http2-prior-knowledge   http: speak HTTP/2 at once (h2c)\n"
    "  --connect-timeout SECONDS  give up connecting after this long\n"
    "  --happy-eyeballs-timeout-ms MS  try the next address (IPv6 and IPv4 in turn) beside one\n"
    "                            that has not answered after MS (default 250; 0: one at a time)\n"
    "  --max-time SECONDS        give up on each request after this long\n"
    "  --stat                    print one line per request on stderr (also with -s):\n"
    "                            stat: METHOD URL status=S proto=P bytes=B start=T dns=T connect=T\n"
    "                            first=T end=T; each T in milliseconds since rill get started:\n"
    "                            the request made, the name resolved, its connection open (TCP\n"
    "                            and TLS; '-' when the request used an open one), the response\n"
    "                            head, its end; B counts body bytes\n\n"
    "A progress bar goes to stderr while bodies go to files (-o, -O), when stderr is a terminal\n"
    "(not with -s or -v).\n"
    "Exit status: 0 success, 2 bad usage, 6 host not resolved, 7 cannot connect, 8 bad\n"
    "HTTP/1.1 response, 16 HTTP/2 error, 22 HTTP status >= 400 with --fail, 23 cannot write the\n"
    "output, 26 cannot read a --data file, 28 timeout, 35 TLS failure (handshake, certificate),\n"
    "47 more redirects than --max-redirs, 56 connection lost, 77 unusable --cacert file, 1\n"
    "anything else. Several URLs: the first failure's status.\n";

/* curl options rill get does not have yet: refused by name, not as unknown. */
static const char *const unsupported[] = {
    "-u", "--user", "-F", "--form", "--compressed", "-x", "--proxy", "-C",
    "--continue-at", "-r", "--range", "-b", "--cookie", "-c", "--cookie-jar", "-e", "--referer",
    "-A", "--user-agent", "--http3", "-T", "--upload-file", "-w", "--write-out",
    "--retry", "--resolve", "--unix-socket", "--limit-rate", "-Z", "--parallel",
    "--location-trusted", NULL};

enum { EXIT_OK = 0, EXIT_OTHER = 1, EXIT_RESOLVE = 6, EXIT_CONNECT = 7, EXIT_H1 = 8,
       EXIT_H2 = 16, EXIT_HTTP = 22, EXIT_WRITE = 23, EXIT_READ = 26, EXIT_TIMEOUT = 28,
       EXIT_TLS = 35, EXIT_REDIRECTS = 47, EXIT_LOST = 56, EXIT_CACERT = 77 };

struct get;

/* The -n repeats of one URL: their failures are said once, with a count at the end. */
struct group {
    const char *url;
    bool said;
    size_t more; /* failures not said */
};

struct transfer {
    struct get *g;
    struct group *group;
    const char *url0;    /* as given */
    char *url;           /* the one being fetched (after redirects); owned */
    const char *method;  /* this request's (a redirect may turn it into GET) */
    bool send_body;      /* with the body of -d / --data-binary */
    int redirects;       /* followed so far */
    char *location;      /* the pending redirect's Location value, or NULL; owned */
    int status;
    const char *proto;
    uint64_t bytes;      /* body bytes of the current response */
    struct get_stat stat;
    struct get_part body; /* stdout or the -o file */
    struct get_part dump; /* the -D file, unless that is where the body goes */
    struct get_part *headp; /* where -D heads go: &body or &dump */
    bool skip_body;       /* a redirect's body, or --fail's */
    bool done;
    int exit_code;
    int body_fd;          /* --data-binary @FILE being streamed (opened per request), or -1 */
    rill_client_stream *upload; /* the request while its file body is being written */
};

/* When a connection opened, and when the name was resolved before it (get_now_ms). */
struct conn_times {
    double dns, connect;
};

struct origin {
    char key[320];
    rill_client *client;
    struct get *g;
    double dns;                /* when the name last resolved; -1 */
    struct conn_times *conns;  /* by connection number - 1 (rill_client_stream_connection) */
    size_t nconns;
};

struct get {
    rill_io_loop *loop;
    rill_client_options base;
    struct transfer *t;
    size_t nt, remaining;     /* transfers, and those not finished */
    size_t next_start, in_flight;
    bool starting;            /* inside start_more */
    struct group *groups;     /* one per URL given */
    size_t ngroups;
    struct origin **origins;
    size_t norigins, cap_origins;
    char *last_client_url;    /* client_for's last URL (a copy) and its client */
    rill_client *last_client;
    struct get_sink *sinks; /* [0] stdout, then one per -o/-O, then -D's file */
    size_t nsinks;
    struct get_sink *dump;  /* -D's sink, or NULL */
    rill_header *fields;
    size_t nfields;
    bool auto_content_type; /* the last field is -d's default content-type */
    const char *method;
    char *body;
    size_t body_len;
    char *body_path; /* --data-binary @FILE alone: streamed from the file, never read whole */
    bool head_only, include, verbose, silent, show_error, fail, follow, stat;
    int max_redirs; /* -1: no limit */
    struct get_progress progress;
    int exit_code;
};

static void say(struct get *g, const char *fmt, const char *a, const char *b)
{
    if (g->silent && !g->show_error)
        return;
    get_progress_break(&g->progress);
    fputs("rill get: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

/* A transfer's failure: said for the first of its URL's repeats, counted for the others. */
static void tsay(struct transfer *t, const char *fmt, const char *a, const char *b)
{
    if (t->group->said) {
        t->group->more++;
        return;
    }
    t->group->said = true;
    say(t->g, fmt, a, b);
}

/* ---- output -------------------------------------------------------------------------------- */

/* A sink that cannot be written: said once, and the transfer fails with 23. */
static void write_failed(struct transfer *t, struct get_sink *s)
{
    if (!t->exit_code)
        t->exit_code = EXIT_WRITE;
    if (s->reported)
        return;
    s->reported = true;
    if (s->path)
        say(t->g, "cannot write %s: %s", s->path, strerror(s->err));
    else
        say(t->g, "%s: cannot write the output: %s", t->url0, strerror(s->err));
}

static void emit(struct transfer *t, struct get_part *p, const void *data, size_t len)
{
    if (!get_part_write(p, data, len))
        write_failed(t, p->sink);
}

/* The head as curl writes it: "HTTP/2 200 " (curl 7's trailing space) or "HTTP/1.1 200 OK" (the
 * standard reason: the library does not keep the received one), "name: value" lines, CRLF ends,
 * an empty line. */
static void print_head(struct transfer *t, struct get_part *p, int status, const rill_header *f,
                       size_t n)
{
    char line[128];
    bool h2 = t->proto && strcmp(t->proto, "h2") == 0;
    int len = h2 ? snprintf(line, sizeof line, "HTTP/2 %d \r\n", status)
                 : snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, rill_h1_reason_phrase(status));
    emit(t, p, line, (size_t)len);
    for (size_t i = 0; i < n; i++) {
        emit(t, p, f[i].name, f[i].name_len);
        emit(t, p, ": ", 2);
        emit(t, p, f[i].value, f[i].value_len);
        emit(t, p, "\r\n", 2);
    }
    emit(t, p, "\r\n", 2);
}

/* ---- the request's callbacks ---------------------------------------------------------------- */

static const rill_header *field(const rill_header *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (rill_h1_name_eq((const char *)f[i].name, f[i].name_len, name))
            return &f[i];
    return NULL;
}

/* The Content-Length field's value, or -1 without a valid one (values are not NUL-terminated). */
static int64_t content_length(const rill_header *f, size_t n)
{
    const rill_header *cl = field(f, n, "content-length");
    if (!cl || !cl->value_len || cl->value_len > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < cl->value_len; i++) {
        if (cl->value[i] < '0' || cl->value[i] > '9')
            return -1;
        v = v * 10 + (cl->value[i] - '0');
    }
    return v;
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* -v: a head on stderr, "< " before each line. */
static void verbose_head(const struct transfer *t, int status, const rill_header *f, size_t n)
{
    if (!t->g->verbose)
        return;
    fprintf(stderr, "< %d (%s)\n", status, t->url);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "< %.*s: %.*s\n", (int)f[i].name_len, (const char *)f[i].name,
                (int)f[i].value_len, (const char *)f[i].value);
}

/* A 1xx head (100, 103 Early Hints): shown with -i and written with -D before the final one, as
 * curl does. */
static void on_informational(rill_client_stream *st, int status, const rill_header *f, size_t n,
                             void *user)
{
    struct transfer *t = user;
    struct get *g = t->g;
    t->proto = rill_client_stream_protocol(st);
    verbose_head(t, status, f, n);
    if (g->dump)
        print_head(t, t->headp, status, f, n);
    if (g->include || g->head_only)
        print_head(t, &t->body, status, f, n);
}

/* Trailer fields: after the body with -i, after the head in -D's file, as curl writes them. */
static void on_trailers(rill_client_stream *st, const rill_header *f, size_t n, void *user)
{
    (void)st;
    struct transfer *t = user;
    struct get *g = t->g;
    if (t->skip_body && !g->include)
        return;
    for (int k = 0; k < 2; k++) {
        struct get_part *p = k == 0 ? (g->dump ? t->headp : NULL) : (g->include ? &t->body : NULL);
        if (!p)
            continue;
        for (size_t i = 0; i < n; i++) {
            emit(t, p, f[i].name, f[i].name_len);
            emit(t, p, ": ", 2);
            emit(t, p, f[i].value, f[i].value_len);
            emit(t, p, "\r\n", 2);
        }
    }
}

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                        void *user)
{
    struct transfer *t = user;
    struct get *g = t->g;
    t->stat.first = get_now_ms();
    t->status = status;
    t->proto = rill_client_stream_protocol(st);
    verbose_head(t, status, f, n);
    if (g->dump)
        print_head(t, t->headp, status, f, n);
    const rill_header *loc = g->follow && is_redirect(status) ? field(f, n, "location") : NULL;
    if (loc) { /* its body is skipped; on_end follows it */
        t->skip_body = true;
        if (!(t->location = strndup((const char *)loc->value, loc->value_len)) && !t->exit_code)
            t->exit_code = EXIT_OTHER;
        if (g->head_only || g->include)
            print_head(t, &t->body, status, f, n);
        return;
    }
    if (g->fail && status >= 400) { /* the head is still shown with -i, as curl shows it */
        if (g->include)
            print_head(t, &t->body, status, f, n);
        t->skip_body = true;
        t->exit_code = EXIT_HTTP;
        char code[16];
        snprintf(code, sizeof code, "%d", status);
        tsay(t, "%s: the server answered %s", t->url, code);
        return;
    }
    if (t->body.sink->path) {
        if (!get_sink_open(t->body.sink)) { /* an empty body still makes its file */
            write_failed(t, t->body.sink);
            return;
        }
        if (g->progress.on) /* the length is looked up only for a bar that shows it */
            get_progress_expect(&g->progress, g->head_only ? 0 : content_length(f, n));
    }
    if (g->head_only || g->include)
        print_head(t, &t->body, status, f, n);
}

static void on_data_v(rill_client_stream *st, const struct iovec *pieces, int n, void *user)
{
    struct transfer *t = user;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += pieces[i].iov_len;
    t->bytes += total;
    if (t->skip_body)
        return;
    if (!get_part_writev(&t->body, pieces, n))
        write_failed(t, t->body.sink);
    if (t->body.sink->path)
        get_progress_data(&t->g->progress, total);
}

static int exit_for(int err, const char *proto)
{
    switch (err) {
    case RILL_ERR_NOT_FOUND: return EXIT_RESOLVE;
    case RILL_ERR_IO: return EXIT_CONNECT;
    case RILL_ERR_TLS: return EXIT_TLS;
    case RILL_ERR_TIMEOUT: return EXIT_TIMEOUT;
    case RILL_ERR_EOF: return EXIT_LOST;
    case RILL_ERR_PROTOCOL: return proto && strcmp(proto, "h2") == 0 ? EXIT_H2 : EXIT_H1;
    default: return EXIT_OTHER;
    }
}

static struct origin *origin_of(struct get *g, rill_client *c)
{
    for (size_t k = 0; k < g->norigins; k++)
        if (g->origins[k]->client == c)
            return g->origins[k];
    return NULL;
}

static int send_request(struct transfer *t);

/* The pending redirect of t: the next request, or why not (an exit code, said). */
static int follow(struct transfer *t)
{
    struct get *g = t->g;
    if (g->max_redirs >= 0 && t->redirects >= g->max_redirs) {
        char max[16];
        snprintf(max, sizeof max, "%d", g->max_redirs);
        tsay(t, "%s: Maximum (%s) redirects followed", t->url0, max);
        return EXIT_REDIRECTS;
    }
    char why[256];
    char *next = get_url_resolve(t->url, t->location, why, sizeof why);
    if (!next) {
        tsay(t, "%s: %s", t->url, why);
        return EXIT_OTHER;
    }
    /* As browsers and curl do: 303 asks for a GET; a POST answered 301 or 302 becomes a GET. */
    if ((t->status == 303 && strcmp(t->method, "HEAD") != 0) ||
        ((t->status == 301 || t->status == 302) && strcmp(t->method, "POST") == 0)) {
        t->method = "GET";
        t->send_body = false;
    }
    if (g->verbose)
        fprintf(stderr, "* %d: following the redirect to %s\n", t->status, next);
    free(t->url);
    t->url = next;
    free(t->location);
    t->location = NULL;
    t->redirects++;
    return send_request(t);
}

static void start_more(struct get *g);

static void finish(struct transfer *t)
{
    struct get *g = t->g;
    if (!get_part_done(&t->body))
        write_failed(t, t->body.sink);
    if (t->headp != &t->body && !get_part_done(t->headp))
        write_failed(t, t->headp->sink);
    t->done = true;
    if (t->exit_code && !g->exit_code)
        g->exit_code = t->exit_code;
    g->in_flight--;
    if (--g->remaining == 0) { /* connections end politely (HTTP/2: GOAWAY), then run returns */
        get_progress_finish(&g->progress);
        rill_io_loop_shutdown(g->loop, 1000);
    } else {
        start_more(g);
    }
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct transfer *t = user;
    struct get *g = t->g;
    t->upload = NULL;
    if (t->body_fd >= 0) { /* ended before all of the file went (an early answer, a failure) */
        close(t->body_fd);
        t->body_fd = -1;
    }
    t->stat.end = get_now_ms();
    struct origin *o = origin_of(g, rill_client_stream_client(st));
    unsigned id = rill_client_stream_connection(st);
    if (o && id && id <= o->nconns) { /* its connection's steps, if they happened for it */
        const struct conn_times *ct = &o->conns[id - 1];
        t->stat.dns = ct->dns >= t->stat.start ? ct->dns : -1;
        t->stat.connect = ct->connect >= t->stat.start ? ct->connect : -1;
    }
    if (g->stat) {
        get_progress_break(&g->progress);
        get_stat_print(t->method, t->url, t->status, rill_client_stream_protocol(st), t->bytes, &t->stat);
    }
    if (!err && t->location && !t->exit_code) {
        int rc = follow(t);
        if (rc == EXIT_OK)
            return;
        t->exit_code = rc;
    }
    if (err && !t->exit_code) {
        t->exit_code = exit_for(err, rill_client_stream_protocol(st));
        tsay(t, "%s: %s", t->url, why);
    }
    finish(t);
}

/* ---- starting the requests ------------------------------------------------------------------ */

/* scheme://authority, lowercased: URLs with the same key share a client. */
static void origin_key(const char *url, char *key, size_t cap)
{
    const char *rest = strstr(url, "://");
    size_t n = rest ? (size_t)(rest + 3 - url) + strcspn(rest + 3, "/?#") : strlen(url);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] + 32 : url[i]);
    key[n] = '\0';
}

static void verbose_request(struct get *g, struct transfer *t, const rill_header *f, size_t n,
                            size_t body_len)
{
    fprintf(stderr, "> %s %s\n", t->method, t->url);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "> %.*s: %.*s\n", (int)f[i].name_len, (const char *)f[i].name,
                (int)f[i].value_len, (const char *)f[i].value);
    if (body_len)
        fprintf(stderr, "> (%zu bytes of body)\n", body_len);
}

static void trace(rill_client *c, const char *line, void *user)
{
    struct origin *o = user;
    const char *num = strstr(line, "(connection #");
    if (strncmp(line, "connected to ", 13) == 0 && num) {
        unsigned long id = strtoul(num + 13, NULL, 10);
        if (id > o->nconns) { /* numbered in order: the array grows by one */
            struct conn_times *grown = realloc(o->conns, id * sizeof *grown);
            if (grown) {
                for (size_t i = o->nconns; i < id; i++)
                    grown[i] = (struct conn_times){-1, -1};
                o->conns = grown;
                o->nconns = id;
            }
        }
        if (id && id <= o->nconns)
            o->conns[id - 1] = (struct conn_times){o->dns, get_now_ms()};
    } else if (strstr(line, " resolved to ")) {
        o->dns = get_now_ms();
    }
    if (o->g->verbose)
        fprintf(stderr, "* %s\n", line);
}

/* The client for url's origin, made on first use; NULL with the exit code in *code (said, for
 * t when not NULL). */
static rill_client *client_for_origin(struct get *g, struct transfer *t, const char *url, int *code);

/* What to ask the client for: the URL's path and query when it has them plainly (the client then
 * need not parse the whole URL again for each of -n's repeats), else the URL itself. */
static const char *request_target(const char *url)
{
    const char *rest = strstr(url, "://");
    if (!rest || strchr(url, '#'))
        return url;
    const char *path = rest + 3 + strcspn(rest + 3, "/?#");
    return *path == '/' ? path : url;
}

static rill_client *client_for(struct get *g, struct transfer *t, const char *url, int *code)
{
    /* -n's repeats: the last answer, without a key */
    if (g->last_client_url && strcmp(g->last_client_url, url) == 0)
        return g->last_client;
    rill_client *c = client_for_origin(g, t, url, code);
    if (c) {
        free(g->last_client_url);
        g->last_client_url = strdup(url); /* NULL only means no shortcut next time */
        g->last_client = c;
    }
    return c;
}

static rill_client *client_for_origin(struct get *g, struct transfer *t, const char *url, int *code)
{
    char key[320];
    origin_key(url, key, sizeof key);
    for (size_t k = 0; k < g->norigins; k++)
        if (strcmp(g->origins[k]->key, key) == 0)
            return g->origins[k]->client;
    if (g->norigins == g->cap_origins) {
        size_t cap = g->cap_origins ? g->cap_origins * 2 : 4;
        struct origin **o = realloc(g->origins, cap * sizeof *o);
        if (!o) {
            *code = EXIT_OTHER;
            return NULL;
        }
        g->origins = o;
        g->cap_origins = cap;
    }
    struct origin *o = calloc(1, sizeof *o);
    if (!o) {
        *code = EXIT_OTHER;
        return NULL;
    }
    rill_client_options opt = g->base;
    opt.url = url;
    char err[512] = "";
    int rc = rill_client_new(g->loop, &opt, &o->client, err, sizeof err);
    if (rc < 0) {
        free(o);
        if (t)
            tsay(t, "%s%s", err[0] ? err : rill_strerror(rc), "");
        else
            say(g, "%s%s", err[0] ? err : rill_strerror(rc), "");
        *code = rc == RILL_ERR_TLS || rc == RILL_ERR_IO ? EXIT_CACERT
              : rc == RILL_ERR_INVALID_ARG ? RILL_EXIT_USAGE : EXIT_OTHER;
        return NULL;
    }
    snprintf(o->key, sizeof o->key, "%s", key);
    o->g = g;
    o->dns = -1;
    if (g->verbose || g->stat)
        rill_client_set_trace(o->client, trace, o);
    g->origins[g->norigins++] = o;
    return o->client;
}

/* Writes t's file body while the client takes it; the rest follows on_drain. */
static void pump_body(struct transfer *t)
{
    static uint8_t buf[65536];
    while (t->upload && t->body_fd >= 0) {
        ssize_t n = read(t->body_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && !t->exit_code) {
                t->exit_code = EXIT_READ;
                tsay(t, "%s: cannot read the body: %s", t->g->body_path, strerror(errno));
            }
            close(t->body_fd);
            t->body_fd = -1;
            rill_client_stream *up = t->upload;
            t->upload = NULL;
            if (n < 0)
                rill_client_stream_cancel(up);
            else
                rill_client_stream_end(up, NULL, 0); /* the length was declared: it must match */
            return;
        }
        int rc = rill_client_stream_write(t->upload, buf, (size_t)n);
        if (rc == RILL_ERR_WOULD_BLOCK)
            return; /* accepted; on_drain asks for more */
        if (rc < 0) { /* the request is ending (a response came first, or it failed) */
            close(t->body_fd);
            t->body_fd = -1;
            return;
        }
    }
}

static void on_drain(rill_client_stream *st, void *user)
{
    (void)st;
    pump_body(user);
}

/* Starts t's request for t->url; an exit code (said) when it cannot. */
static int send_request(struct transfer *t)
{
    static const rill_client_callbacks cb = {.size = sizeof cb, .on_response = on_response,
                                             .on_data_v = on_data_v, .on_end = on_end,
                                             .on_drain = on_drain, .on_trailers = on_trailers,
                                             .on_informational = on_informational};
    struct get *g = t->g;
    int code = EXIT_OTHER;
    rill_client *client = client_for(g, t, t->url, &code);
    if (!client) /* a bad URL is bad usage on the command line, not in a Location */
        return t->redirects && code == RILL_EXIT_USAGE ? EXIT_OTHER : code;
    /* Credentials stay with the origin they were given for (as curl without
     * --location-trusted); -d's content-type goes only with its body. */
    bool elsewhere = false;
    if (t->url != t->url0 && strcmp(t->url, t->url0) != 0) { /* a redirect: compare origins */
        char k0[320], k1[320];
        origin_key(t->url0, k0, sizeof k0);
        origin_key(t->url, k1, sizeof k1);
        elsewhere = strcmp(k0, k1) != 0;
    }
    rill_header *f = malloc((g->nfields + 1) * sizeof *f); /* + a file body's content-length */
    if (!f)
        return EXIT_OTHER;
    size_t n = 0;
    for (size_t i = 0; i < g->nfields; i++) {
        const rill_header *h = &g->fields[i];
        if (g->auto_content_type && !t->send_body && i == g->nfields - 1)
            continue;
        if (elsewhere && (rill_h1_name_eq((const char *)h->name, h->name_len, "authorization") ||
                          rill_h1_name_eq((const char *)h->name, h->name_len, "cookie")))
            continue;
        f[n++] = *h;
    }
    size_t blen = t->send_body ? g->body_len : 0;
    bool from_file = t->send_body && g->body_path;
    char clen[24];
    if (from_file) { /* opened again for each request: -n repeats, a 307's resend */
        struct stat sb;
        t->body_fd = open(g->body_path, O_RDONLY | O_CLOEXEC);
        if (t->body_fd < 0 || fstat(t->body_fd, &sb) < 0) {
            if (t->body_fd >= 0)
                close(t->body_fd);
            t->body_fd = -1;
            free(f);
            tsay(t, "%s: cannot read %s", t->url, g->body_path);
            return EXIT_READ;
        }
        blen = (size_t)sb.st_size;
        snprintf(clen, sizeof clen, "%lld", (long long)sb.st_size);
        bool has_length = false;
        for (size_t i = 0; i < n; i++)
            has_length |= rill_h1_name_eq((const char *)f[i].name, f[i].name_len, "content-length");
        if (!has_length) /* known, so not chunked: as curl sends a file */
            f[n++] = (rill_header){(const uint8_t *)"content-length", 14, (const uint8_t *)clen,
                                   strlen(clen), 0};
    }
    if (g->verbose)
        verbose_request(g, t, f, n, blen);
    t->status = 0;
    t->proto = NULL;
    t->bytes = 0;
    t->skip_body = false;
    t->stat = (struct get_stat){.start = get_now_ms(), .dns = -1, .connect = -1, .first = -1, .end = -1};
    int rc = from_file ? rill_client_request_stream(client, t->method, request_target(t->url), f, n,
                                                    &cb, t, &t->upload)
                       : rill_client_request(client, t->method, request_target(t->url), f, n,
                                             blen ? g->body : NULL, blen, &cb, t, NULL);
    free(f);
    if (rc == RILL_OK && from_file)
        pump_body(t);
    if (rc < 0 && t->body_fd >= 0) {
        close(t->body_fd);
        t->body_fd = -1;
    }
    if (rc < 0) {
        tsay(t, "%s: %s", t->url, rc == RILL_ERR_INVALID_ARG ? "bad method, URL or header" : rill_strerror(rc));
        return rc == RILL_ERR_INVALID_ARG && !t->redirects ? RILL_EXIT_USAGE : EXIT_OTHER;
    }
    return EXIT_OK;
}

/* At most this many requests handed to the client at once (it sends no more streams than the
 * server's SETTINGS allow, and 100 before they arrive; the rest wait in its queue): bounds the
 * memory -n 100000 takes. */
enum { MAX_IN_FLIGHT = 1000 };

/* Starts the next transfers, as many as MAX_IN_FLIGHT allows; one that cannot start fails. */
static void start_more(struct get *g)
{
    if (g->starting)
        return; /* finish() of a transfer that could not start, inside the loop below */
    g->starting = true;
    while (g->in_flight < MAX_IN_FLIGHT && g->next_start < g->nt) {
        struct transfer *t = &g->t[g->next_start++];
        g->in_flight++;
        int rc = send_request(t);
        if (rc != EXIT_OK) {
            t->exit_code = rc;
            finish(t);
        }
    }
    g->starting = false;
}

/* Checks every URL's origin and starts the first requests; an exit code (said) when one cannot
 * start: then none is fetched. */
static int start(struct get *g)
{
    for (size_t i = 0; i < g->ngroups; i++) {
        int rc = EXIT_OTHER;
        if (!client_for(g, NULL, g->groups[i].url, &rc))
            return rc;
    }
    g->remaining = g->nt;
    g->starting = true;
    while (g->in_flight < MAX_IN_FLIGHT && g->next_start < g->nt) {
        g->in_flight++;
        int rc = send_request(&g->t[g->next_start++]);
        if (rc != EXIT_OK)
            return rc;
    }
    g->starting = false;
    return EXIT_OK;
}

/* ---- arguments ------------------------------------------------------------------------------ */

/* Seconds (a decimal number) as milliseconds; false for anything else. */
static bool parse_seconds(const char *s, uint32_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 4000000)
        return false;
    *ms = (uint32_t)(v * 1000 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return true;
}

static int add_data(struct get *g, const char *v, bool binary);

/* --data-binary @FILE of a regular file, as the only body: streamed per request from the file
 * (curl's habit of reading it whole would hold a 100 GiB upload in memory). Another -d after it
 * joins the bodies, so the file is read then after all. */
static int add_body_file(struct get *g, const char *v)
{
    struct stat sb;
    if (!g->body_path && g->body_len == 0 && strcmp(v + 1, "-") != 0 && stat(v + 1, &sb) == 0 &&
        S_ISREG(sb.st_mode) && access(v + 1, R_OK) == 0) {
        if (!(g->body_path = strdup(v + 1)))
            return EXIT_OTHER;
        return EXIT_OK;
    }
    return add_data(g, v, true); /* which reads a file put off before, first */
}

/* The body of -d / --data-binary: the text, or @FILE's bytes (without line ends for -d). */
static int add_data(struct get *g, const char *v, bool binary)
{
    char *data = NULL;
    size_t len = 0;
    if (g->body_path) { /* joined with a streamed file: that one is read now */
        char first[4096];
        snprintf(first, sizeof first, "@%s", g->body_path);
        free(g->body_path);
        g->body_path = NULL;
        int rc = add_data(g, first, true);
        if (rc != EXIT_OK)
            return rc;
    }
    if (v[0] == '@') {
        FILE *f = strcmp(v + 1, "-") == 0 ? stdin : fopen(v + 1, "rb");
        if (!f) {
            fprintf(stderr, "rill get: cannot read %s: %s\n", v + 1, strerror(errno));
            return EXIT_READ;
        }
        size_t cap = 0;
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            char *d = realloc(data, cap = len + n);
            if (!d) {
                free(data);
                return EXIT_OTHER;
            }
            data = d;
            for (size_t i = 0; i < n; i++)
                if (binary || (chunk[i] != '\n' && chunk[i] != '\r'))
                    data[len++] = chunk[i];
        }
        bool bad = ferror(f);
        if (f != stdin)
            fclose(f);
        if (bad) {
            free(data);
            fprintf(stderr, "rill get: cannot read %s\n", v + 1);
            return EXIT_READ;
        }
    } else {
        len = strlen(v);
        data = malloc(len ? len : 1);
        if (!data)
            return EXIT_OTHER;
        memcpy(data, v, len);
    }
    /* Several -d are joined with '&', as forms are. */
    char *body = realloc(g->body, g->body_len + len + 1);
    if (!body) {
        free(data);
        return EXIT_OTHER;
    }
    if (g->body_len)
        body[g->body_len++] = '&';
    if (len)
        memcpy(body + g->body_len, data, len);
    g->body = body;
    g->body_len += len;
    free(data);
    return EXIT_OK;
}

static bool has_field(const struct get *g, const char *name)
{
    for (size_t i = 0; i < g->nfields; i++)
        if (rill_h1_name_eq((const char *)g->fields[i].name, g->fields[i].name_len, name))
            return true;
    return false;
}

/* "Name: value" adds a field (replacing a default one); "Name:" drops the default. */
static bool add_header(struct get *g, const char *h, rill_header *defaults, size_t *ndefaults)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    size_t nlen = (size_t)(colon - h);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    for (size_t i = 0; i < *ndefaults; i++) {
        if (defaults[i].name_len == nlen && strncasecmp((const char *)defaults[i].name, h, nlen) == 0) {
            defaults[i] = defaults[--*ndefaults];
            break;
        }
    }
    if (!*v)
        return true;
    g->fields[g->nfields++] = (rill_header){(const uint8_t *)h, nlen, (const uint8_t *)v, strlen(v), 0};
    return true;
}

/* -sS, -fsS...: flags without values may be given together. */
static bool bundle(const char *a)
{
    return a[0] == '-' && a[1] && a[1] != '-' && a[2] && strspn(a + 1, "sSfIikvL") == strlen(a + 1);
}

static const char *const needs_value[] = {"-o", "--output", "-H", "--header", "-X", "--request",
                                          "-d", "--data", "--data-binary", "--cacert",
                                          "--connect-timeout", "--max-time", "-D", "--dump-header",
                                          "--max-redirs", "-n", "--max-connections",
                                          "--happy-eyeballs-timeout-ms", NULL};

/* A whole decimal number in [lo, hi]; false for anything else. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool one_of(const char *a, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(a, *list) == 0)
            return true;
    return false;
}

static bool remote_name(const char *url, char *out, size_t cap)
{
    const char *rest = strstr(url, "://");
    rest = rest ? rest + 3 : url;
    size_t end = strcspn(rest, "?#");
    const char *slash = NULL;
    for (size_t i = 0; i < end; i++)
        if (rest[i] == '/')
            slash = rest + i;
    if (!slash || (size_t)(rest + end - slash - 1) == 0 || (size_t)(rest + end - slash) >= cap)
        return false;
    size_t n = (size_t)(rest + end - slash - 1);
    memcpy(out, slash + 1, n);
    out[n] = '\0';
    return strcmp(out, ".") && strcmp(out, "..");
}

/* Transfers (each URL -n times, in order) and where each writes: stdout, its -o file, -D's. */
static bool make_transfers(struct get *g, const char **urls, size_t nurls, long repeat,
                           const char *const *out_path, size_t nout, const char *dump_path,
                           bool any_data)
{
    g->nt = nurls * (size_t)repeat;
    g->nsinks = 1 + nout + (dump_path && strcmp(dump_path, "-") ? 1 : 0);
    g->t = calloc(g->nt, sizeof *g->t);
    g->sinks = calloc(g->nsinks, sizeof *g->sinks);
    g->groups = calloc(nurls, sizeof *g->groups);
    if (!g->t || !g->sinks || !g->groups)
        return false;
    g->ngroups = nurls;
    for (size_t i = 0; i < nurls; i++)
        g->groups[i].url = urls[i];
    for (size_t i = 0; i < nout; i++)
        g->sinks[1 + i].path = out_path[i];
    if (dump_path)
        g->dump = strcmp(dump_path, "-") ? &g->sinks[1 + nout] : &g->sinks[0];
    if (g->dump)
        g->dump->path = strcmp(dump_path, "-") ? dump_path : NULL;
    for (size_t i = 0; i < g->nt; i++) {
        struct transfer *t = &g->t[i];
        size_t u = i / (size_t)repeat;
        *t = (struct transfer){.g = g, .group = &g->groups[u], .url0 = urls[u], .method = g->method,
                               .send_body = any_data, .body_fd = -1};
        if (!(t->url = strdup(urls[u])))
            return false;
        struct get_sink *body = u < nout ? &g->sinks[1 + u] : &g->sinks[0];
        if (!get_sink_add(body, &t->body))
            return false;
        t->headp = &t->body;
        if (g->dump && g->dump != body) {
            if (!get_sink_add(g->dump, &t->dump))
                return false;
            t->headp = &t->dump;
        }
    }
    return true;
}

static int run(struct get *g, rill_client_options *opt, int argc, char **argv)
{
    char ua[32];
    snprintf(ua, sizeof ua, "rill/%s", rill_version());
    rill_header defaults[3] = {
        {(const uint8_t *)"user-agent", 10, (const uint8_t *)ua, strlen(ua), 0},
        {(const uint8_t *)"accept", 6, (const uint8_t *)"*/*", 3, 0},
    };
    size_t ndefaults = 2;
    const char **out_for = calloc((size_t)argc, sizeof *out_for); /* -o per URL, in order */
    char (*remote)[256] = calloc((size_t)argc, sizeof *remote);
    const char **urls = calloc((size_t)argc, sizeof *urls);
    g->fields = calloc((size_t)argc + 3, sizeof *g->fields);
    if (!out_for || !remote || !urls || !g->fields) {
        free(out_for);
        free(remote);
        free(urls);
        return EXIT_OTHER;
    }
    size_t nout = 0, nurls = 0;
    const char *dump_path = NULL;
    long repeat = 1;
    bool form = false, any_data = false, http2 = false;
    g->max_redirs = 50;
    int rc = EXIT_OK;
    for (int i = 1; i < argc && rc == EXIT_OK; i++) {
        const char *a = argv[i];
        if (bundle(a)) {
            for (const char *p = a + 1; *p; p++) {
                char one[3] = {'-', *p, '\0'};
                switch (*p) {
                case 's': g->silent = true; break;
                case 'S': g->show_error = true; break;
                case 'f': g->fail = true; break;
                case 'I': g->head_only = true; break;
                case 'i': g->include = true; break;
                case 'k': opt->insecure = true; break;
                case 'v': g->verbose = true; break;
                case 'L': g->follow = true; break;
                default: rc = cli_usage_error("get", "unknown option '%s'", one);
                }
            }
            continue;
        }
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            rc = -1;
        } else if (one_of(a, unsupported)) {
            rc = cli_usage_error("get", "%s is not yet supported", a);
        } else if (one_of(a, needs_value)) {
            if (i + 1 >= argc) {
                rc = cli_usage_error("get", "%s needs a value", a);
                break;
            }
            const char *v = argv[++i];
            long num;
            if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
                out_for[nout++] = v;
            } else if (!strcmp(a, "-H") || !strcmp(a, "--header")) {
                if (!add_header(g, v, defaults, &ndefaults))
                    rc = cli_usage_error("get", "a header is 'Name: value', not '%s'", v);
            } else if (!strcmp(a, "-X") || !strcmp(a, "--request")) {
                g->method = v;
            } else if (!strcmp(a, "-d") || !strcmp(a, "--data") || !strcmp(a, "--data-binary")) {
                form |= strcmp(a, "--data-binary") != 0;
                any_data = true;
                rc = strcmp(a, "--data-binary") == 0 && v[0] == '@' ? add_body_file(g, v)
                                                                    : add_data(g, v, strcmp(a, "--data-binary") == 0);
            } else if (!strcmp(a, "--cacert")) {
                opt->ca_file = v;
            } else if (!strcmp(a, "-D") || !strcmp(a, "--dump-header")) {
                if (!*v)
                    rc = cli_usage_error("get", "%s needs a file name (or - for stdout)", a);
                dump_path = v;
            } else if (!strcmp(a, "--max-redirs")) {
                if (!parse_int(v, -1, 1000000, &num))
                    rc = cli_usage_error("get", "--max-redirs takes a number (-1: no limit), not '%s'", v);
                g->max_redirs = (int)num;
            } else if (!strcmp(a, "--max-connections")) {
                if (!parse_int(v, 1, 1000, &num))
                    rc = cli_usage_error("get", "--max-connections takes a number from 1 to 1000, not '%s'", v);
                opt->max_connections = (unsigned)num;
            } else if (!strcmp(a, "--happy-eyeballs-timeout-ms")) {
                if (!parse_int(v, 0, 600000, &num))
                    rc = cli_usage_error("get",
                                         "--happy-eyeballs-timeout-ms takes milliseconds from 0 "
                                         "to 600000, not '%s'",
                                         v);
                opt->attempt_delay_ms = (uint32_t)num;
            } else if (!strcmp(a, "-n")) {
                if (!parse_int(v, 1, 100000, &num))
                    rc = cli_usage_error("get", "-n takes a number from 1 to 100000, not '%s'", v);
                repeat = num;
            } else {
                uint32_t ms;
                if (!parse_seconds(v, &ms))
                    rc = cli_usage_error("get", "%s takes a number of seconds, not '%s'", a, v);
                else if (!strcmp(a, "--max-time"))
                    opt->request_timeout_ms = ms;
                else
                    opt->connect_timeout_ms = ms;
            }
        } else if (!strcmp(a, "-O") || !strcmp(a, "--remote-name")) {
            out_for[nout++] = ""; /* named after its URL below */
        } else if (!strcmp(a, "-I") || !strcmp(a, "--head")) {
            g->head_only = true;
        } else if (!strcmp(a, "-i") || !strcmp(a, "--include")) {
            g->include = true;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            g->verbose = true;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--silent")) {
            g->silent = true;
        } else if (!strcmp(a, "-S") || !strcmp(a, "--show-error")) {
            g->show_error = true;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--fail")) {
            g->fail = true;
        } else if (!strcmp(a, "-k") || !strcmp(a, "--insecure")) {
            opt->insecure = true;
        } else if (!strcmp(a, "-L") || !strcmp(a, "--location")) {
            g->follow = true;
        } else if (!strcmp(a, "--stat")) {
            g->stat = true;
        } else if (!strcmp(a, "--http1.1")) {
            opt->http1_only = true;
        } else if (!strcmp(a, "--http2")) {
            http2 = true; /* https: ALPN h2 is the default; http://: the h2c Upgrade */
            opt->h2c_upgrade = true;
        } else if (!strcmp(a, "--http2-prior-knowledge")) {
            opt->h2_prior_knowledge = true;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_usage_error("get", "unknown option '%s'", a);
        } else if (strncasecmp(a, "http://", 7) && strncasecmp(a, "https://", 8)) {
            rc = cli_usage_error("get", "the URL must start with http:// or https://: %s", a);
        } else {
            urls[nurls++] = a;
        }
    }
    if (rc == EXIT_OK && nurls == 0)
        rc = cli_usage_error("get", "an http:// or https:// URL is needed");
    if (rc == EXIT_OK && nout > nurls)
        rc = cli_usage_error("get", "more -o/-O than URLs");
    if (rc == EXIT_OK && g->head_only && any_data)
        rc = cli_usage_error("get", "-I and -d/--data-binary do not go together");
    if (rc == EXIT_OK && opt->http1_only && opt->h2_prior_knowledge)
        rc = cli_usage_error("get", "--http1.1 and --http2-prior-knowledge do not go together");
    if (rc == EXIT_OK && opt->http1_only && http2)
        rc = cli_usage_error("get", "--http1.1 and --http2 do not go together");
    for (size_t i = 0; rc == EXIT_OK && i < nout; i++) {
        if (!out_for[i][0]) {
            if (!remote_name(urls[i], remote[i], sizeof remote[i]))
                rc = cli_usage_error("get", "-O: no file name in %s", urls[i]);
            out_for[i] = remote[i];
        }
    }
    if (rc == EXIT_OK) {
        for (size_t i = 0; i < ndefaults; i++)
            g->fields[g->nfields++] = defaults[i];
        if (form && !has_field(g, "content-type")) {
            g->fields[g->nfields++] = (rill_header){(const uint8_t *)"content-type", 12,
                (const uint8_t *)"application/x-www-form-urlencoded", 33, 0};
            g->auto_content_type = true;
        }
        if (!g->method)
            g->method = g->head_only ? "HEAD" : any_data ? "POST" : "GET";
        if (!make_transfers(g, urls, nurls, repeat, out_for, nout, dump_path, any_data)) {
            fprintf(stderr, "rill get: out of memory\n");
            rc = EXIT_OTHER;
        }
    }
    if (rc == EXIT_OK) {
        g->base = *opt;
        g->progress.on = nout > 0 && !g->silent && !g->verbose && isatty(STDERR_FILENO);
        g->progress.started = get_now_ms();
        g->progress.drawn = g->progress.started - 100;
        rill_io_loop_options lo;
        rill_io_loop_options_init(&lo);
        lo.handshake_timeout_ms = opt->connect_timeout_ms + 1000; /* ours decides, not the loop's */
        if (rill_io_loop_new(&lo, &g->loop) < 0) {
            fprintf(stderr, "rill get: cannot create an event loop\n");
            rc = EXIT_OTHER;
        }
    }
    if (rc == EXIT_OK) {
        rc = start(g);
        if (rc == EXIT_OK && g->remaining) /* a bad URL among them: none is fetched */
            rill_io_loop_run(g->loop);
        if (rc == EXIT_OK)
            rc = g->exit_code;
        for (size_t i = 0; rc != RILL_EXIT_USAGE && i < g->ngroups; i++) {
            char more[32];
            snprintf(more, sizeof more, "%zu", g->groups[i].more);
            if (g->groups[i].more)
                say(g, "%s: %s more of its requests failed", g->groups[i].url, more);
        }
        for (size_t k = 0; k < g->norigins; k++) {
            rill_client_free(g->origins[k]->client);
            free(g->origins[k]->conns);
            free(g->origins[k]);
        }
        rill_io_loop_free(g->loop);
    }
    for (size_t i = 0; g->sinks && i < g->nsinks; i++)
        get_sink_free(&g->sinks[i]);
    for (size_t i = 0; g->t && i < g->nt; i++) {
        free(g->t[i].url);
        free(g->t[i].location);
    }
    fflush(stdout);
    free(out_for);
    free(remote);
    free(urls);
    return rc < 0 ? 0 : rc;
}

int rill_cmd_get(int argc, char **argv)
{
    rill_client_options opt;
    rill_client_options_init(&opt);
    struct get g = {0};
    get_now_ms(); /* --stat's times count from here */
    int rc = run(&g, &opt, argc, argv);
    free(g.t);
    free(g.sinks);
    free(g.fields);
    free(g.origins);
    free(g.last_client_url);
    free(g.groups);
    free(g.body);
    free(g.body_path);
    return rc;
}
