/* `rill get URL...`: an HTTP client with curl's habits. URLs of one origin share one client (one
 * HTTP/2 connection, requests in parallel); bodies go to stdout in URL order, or to files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "rill/client.h"
#include "rill/h1.h"

static const char usage[] =
    "usage: rill get [options] URL...\n\n"
    "Fetch http:// and https:// URLs: HTTP/2 when the server offers it by ALPN (https), HTTP/1.1\n"
    "otherwise; several URLs of one origin share one connection (in parallel over HTTP/2).\n"
    "Bodies go to standard output in the order of the URLs.\n\n"
    "  -o, --output FILE         write the next URL's body to FILE\n"
    "  -O, --remote-name         write the next URL's body to a file named as its last path part\n"
    "  -H, --header 'NAME: VALUE'  add a request field ('NAME:' drops a default one)\n"
    "  -X, --request METHOD      use METHOD\n"
    "  -d, --data DATA           send DATA (or @FILE, line ends removed) as a form body, POST\n"
    "  --data-binary DATA        send DATA (or @FILE, as it is) as the body, POST\n"
    "  -I, --head                HEAD: print the response head only\n"
    "  -i, --include             print the response head before the body\n"
    "  -v, --verbose             print connections, HTTP/2 frames and fields on stderr\n"
    "  -s, --silent              print no error messages\n"
    "  -S, --show-error          print error messages even with -s\n"
    "  -f, --fail                no body for an HTTP status of 400 or more; exit 22\n"
    "  -k, --insecure            https: do not verify the server certificate\n"
    "  --cacert FILE             https: trust this CA certificate (PEM)\n"
    "  --http1.1                 use HTTP/1.1 only\n"
    "  --http2-prior-knowledge   http: speak HTTP/2 at once (h2c)\n"
    "  --connect-timeout SECONDS  give up connecting after this long\n"
    "  --max-time SECONDS        give up on each request after this long\n\n"
    "Exit status: 0 success, 2 bad usage, 6 host not resolved, 7 cannot connect, 8 bad\n"
    "HTTP/1.1 response, 16 HTTP/2 error, 22 HTTP status >= 400 with --fail, 23 cannot write the\n"
    "output, 26 cannot read a --data file, 28 timeout, 35 TLS failure (handshake, certificate),\n"
    "56 connection lost, 77 unusable --cacert file, 1 anything else. Several URLs: the first\n"
    "failure's status.\n";

/* curl options rill get does not have yet: refused by name, not as unknown. */
static const char *const unsupported[] = {
    "-L", "--location", "-u", "--user", "-F", "--form", "--compressed", "-x", "--proxy", "-C",
    "--continue-at", "-r", "--range", "-b", "--cookie", "-c", "--cookie-jar", "-e", "--referer",
    "-A", "--user-agent", "--http2", "--http3", "-T", "--upload-file", "-w", "--write-out",
    "--retry", "--resolve", "--unix-socket", "--limit-rate", "-Z", "--parallel", NULL};

enum { EXIT_OK = 0, EXIT_OTHER = 1, EXIT_RESOLVE = 6, EXIT_CONNECT = 7, EXIT_H1 = 8,
       EXIT_H2 = 16, EXIT_HTTP = 22, EXIT_WRITE = 23, EXIT_READ = 26, EXIT_TIMEOUT = 28,
       EXIT_TLS = 35, EXIT_LOST = 56, EXIT_CACERT = 77 };

struct get;

struct transfer {
    struct get *g;
    const char *url;
    const char *out_path; /* -o / -O, or NULL: stdout */
    FILE *out;            /* the file once opened */
    char *buf;            /* stdout output held while an earlier URL is still writing */
    size_t len, cap;
    bool done;
    bool failed_status; /* --fail and status >= 400: nothing more is written */
    int exit_code;
};

struct origin {
    char key[320];
    rill_client *client;
};

struct get {
    rill_io_loop *loop;
    struct transfer *t;
    size_t nt, next_out, remaining;
    struct origin *origins;
    size_t norigins;
    rill_header *fields;
    size_t nfields;
    const char *method;
    char *body;
    size_t body_len;
    bool head_only, include, verbose, silent, show_error, fail;
    int exit_code;
};

static void say(struct get *g, const char *fmt, const char *a, const char *b)
{
    if (g->silent && !g->show_error)
        return;
    fputs("rill get: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

/* ---- output, in URL order on stdout --------------------------------------------------------- */

static bool hold(struct transfer *t, const void *data, size_t len)
{
    if (t->len + len > t->cap) {
        size_t cap = t->cap ? t->cap : 65536;
        while (cap < t->len + len)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return false;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, data, len);
    t->len += len;
    return true;
}

static void emit(struct transfer *t, const void *data, size_t len)
{
    if (t->exit_code || !len)
        return;
    bool ok;
    if (t->out_path) {
        ok = fwrite(data, 1, len, t->out) == len;
    } else if (&t->g->t[t->g->next_out] == t) {
        ok = fwrite(data, 1, len, stdout) == len;
    } else {
        ok = hold(t, data, len);
    }
    if (!ok) {
        t->exit_code = EXIT_WRITE;
        say(t->g, "%s: cannot write the output: %s", t->url, strerror(errno));
    }
}

/* The URL whose turn it is on stdout is done: later ones write what they held, in order. */
static void advance_stdout(struct get *g)
{
    while (g->next_out < g->nt && g->t[g->next_out].done) {
        g->next_out++;
        if (g->next_out < g->nt) {
            struct transfer *t = &g->t[g->next_out];
            if (t->len && fwrite(t->buf, 1, t->len, stdout) != t->len && !t->exit_code)
                t->exit_code = EXIT_WRITE;
            free(t->buf);
            t->buf = NULL;
            t->len = t->cap = 0;
        }
    }
    fflush(stdout);
}

/* ---- the request's callbacks ---------------------------------------------------------------- */

static void print_head(struct transfer *t, rill_client_stream *st, int status,
                       const rill_header *f, size_t n)
{
    char line[128];
    bool h2 = strcmp(rill_client_stream_protocol(st), "h2") == 0;
    int len = h2 ? snprintf(line, sizeof line, "HTTP/2 %d \r\n", status)
                 : snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, rill_h1_reason_phrase(status));
    emit(t, line, (size_t)len);
    for (size_t i = 0; i < n; i++) {
        emit(t, f[i].name, f[i].name_len);
        emit(t, ": ", 2);
        emit(t, f[i].value, f[i].value_len);
        emit(t, "\r\n", 2);
    }
    emit(t, "\r\n", 2);
}

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                        void *user)
{
    struct transfer *t = user;
    struct get *g = t->g;
    if (g->verbose) {
        fprintf(stderr, "< %d (%s)\n", status, t->url);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "< %.*s: %.*s\n", (int)f[i].name_len, (const char *)f[i].name,
                    (int)f[i].value_len, (const char *)f[i].value);
    }
    if (g->fail && status >= 400) {
        t->failed_status = true;
        t->exit_code = EXIT_HTTP;
        char code[16];
        snprintf(code, sizeof code, "%d", status);
        say(g, "%s: the server answered %s", t->url, code);
        return;
    }
    if (t->out_path && !(t->out = fopen(t->out_path, "wb"))) {
        t->exit_code = EXIT_WRITE;
        say(g, "cannot write %s: %s", t->out_path, strerror(errno));
        return;
    }
    if (g->head_only || g->include)
        print_head(t, st, status, f, n);
}

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    struct transfer *t = user;
    if (!t->failed_status)
        emit(t, data, len);
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

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct transfer *t = user;
    struct get *g = t->g;
    if (err && !t->exit_code) {
        t->exit_code = exit_for(err, rill_client_stream_protocol(st));
        say(g, "%s: %s", t->url, why);
    }
    if (t->out && fclose(t->out) != 0 && !t->exit_code) {
        t->exit_code = EXIT_WRITE;
        say(g, "cannot write %s: %s", t->out_path, strerror(errno));
    }
    t->out = NULL;
    t->done = true;
    if (t->exit_code && !g->exit_code)
        g->exit_code = t->exit_code;
    advance_stdout(g);
    if (--g->remaining == 0) /* connections end politely (HTTP/2: GOAWAY), then run returns */
        rill_io_loop_shutdown(g->loop, 1000);
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

static void verbose_request(struct get *g, const char *url)
{
    fprintf(stderr, "> %s %s\n", g->method, url);
    for (size_t i = 0; i < g->nfields; i++)
        fprintf(stderr, "> %.*s: %.*s\n", (int)g->fields[i].name_len, (const char *)g->fields[i].name,
                (int)g->fields[i].value_len, (const char *)g->fields[i].value);
    if (g->body_len)
        fprintf(stderr, "> (%zu bytes of body)\n", g->body_len);
}

static void trace(rill_client *c, const char *line, void *user)
{
    fprintf(stderr, "* %s\n", line);
}

static int start(struct get *g, const rill_client_options *base)
{
    static const rill_client_callbacks cb = {
        .size = sizeof cb, .on_response = on_response, .on_data = on_data, .on_end = on_end};
    for (size_t i = 0; i < g->nt; i++) {
        struct transfer *t = &g->t[i];
        char key[320];
        origin_key(t->url, key, sizeof key);
        rill_client *client = NULL;
        for (size_t k = 0; k < g->norigins && !client; k++)
            if (strcmp(g->origins[k].key, key) == 0)
                client = g->origins[k].client;
        if (!client) {
            rill_client_options opt = *base;
            opt.url = t->url;
            char err[512] = "";
            int rc = rill_client_new(g->loop, &opt, &client, err, sizeof err);
            if (rc < 0) {
                say(g, "%s%s", err[0] ? err : rill_strerror(rc), "");
                return rc == RILL_ERR_TLS || rc == RILL_ERR_IO ? EXIT_CACERT : rc == RILL_ERR_INVALID_ARG ? RILL_EXIT_USAGE
                                                                                    : EXIT_OTHER;
            }
            if (g->verbose)
                rill_client_set_trace(client, trace, g);
            struct origin *o = &g->origins[g->norigins++];
            snprintf(o->key, sizeof o->key, "%s", key);
            o->client = client;
        }
        if (g->verbose)
            verbose_request(g, t->url);
        int rc = rill_client_request(client, g->method, t->url, g->fields, g->nfields, g->body,
                                     g->body_len, &cb, t, NULL);
        if (rc < 0) {
            say(g, "%s: %s", t->url, rc == RILL_ERR_INVALID_ARG ? "bad method, URL or header" : rill_strerror(rc));
            return rc == RILL_ERR_INVALID_ARG ? RILL_EXIT_USAGE : EXIT_OTHER;
        }
        g->remaining++;
    }
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

/* The body of -d / --data-binary: the text, or @FILE's bytes (without line ends for -d). */
static int add_data(struct get *g, const char *v, bool binary)
{
    char *data = NULL;
    size_t len = 0;
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
    return a[0] == '-' && a[1] && a[1] != '-' && a[2] && strspn(a + 1, "sSfIikv") == strlen(a + 1);
}

static const char *const needs_value[] = {"-o", "--output", "-H", "--header", "-X", "--request",
                                          "-d", "--data", "--data-binary", "--cacert",
                                          "--connect-timeout", "--max-time", NULL};

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
    g->t = calloc((size_t)argc, sizeof *g->t);
    g->fields = calloc((size_t)argc + 3, sizeof *g->fields);
    g->origins = calloc((size_t)argc, sizeof *g->origins);
    if (!out_for || !remote || !g->t || !g->fields || !g->origins) {
        free(out_for);
        free(remote);
        return EXIT_OTHER;
    }
    size_t nout = 0;
    bool form = false, any_data = false;
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
                rc = add_data(g, v, strcmp(a, "--data-binary") == 0);
            } else if (!strcmp(a, "--cacert")) {
                opt->ca_file = v;
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
        } else if (!strcmp(a, "--http1.1")) {
            opt->http1_only = true;
        } else if (!strcmp(a, "--http2-prior-knowledge")) {
            opt->h2_prior_knowledge = true;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_usage_error("get", "unknown option '%s'", a);
        } else if (strncasecmp(a, "http://", 7) && strncasecmp(a, "https://", 8)) {
            rc = cli_usage_error("get", "the URL must start with http:// or https://: %s", a);
        } else {
            g->t[g->nt] = (struct transfer){.g = g, .url = a};
            g->nt++;
        }
    }
    if (rc == EXIT_OK && g->nt == 0)
        rc = cli_usage_error("get", "an http:// or https:// URL is needed");
    if (rc == EXIT_OK && nout > g->nt)
        rc = cli_usage_error("get", "more -o/-O than URLs");
    if (rc == EXIT_OK && g->head_only && any_data)
        rc = cli_usage_error("get", "-I and -d/--data-binary do not go together");
    if (rc == EXIT_OK && opt->http1_only && opt->h2_prior_knowledge)
        rc = cli_usage_error("get", "--http1.1 and --http2-prior-knowledge do not go together");
    for (size_t i = 0; rc == EXIT_OK && i < nout; i++) {
        g->t[i].out_path = out_for[i];
        if (!out_for[i][0]) {
            if (!remote_name(g->t[i].url, remote[i], sizeof remote[i]))
                rc = cli_usage_error("get", "-O: no file name in %s", g->t[i].url);
            g->t[i].out_path = remote[i];
        }
    }
    if (rc == EXIT_OK) {
        for (size_t i = 0; i < ndefaults; i++)
            g->fields[g->nfields++] = defaults[i];
        if (form && !has_field(g, "content-type"))
            g->fields[g->nfields++] = (rill_header){(const uint8_t *)"content-type", 12,
                (const uint8_t *)"application/x-www-form-urlencoded", 33, 0};
        if (!g->method)
            g->method = g->head_only ? "HEAD" : any_data ? "POST" : "GET";
        rill_io_loop_options lo;
        rill_io_loop_options_init(&lo);
        lo.handshake_timeout_ms = opt->connect_timeout_ms + 1000; /* ours decides, not the loop's */
        if (rill_io_loop_new(&lo, &g->loop) < 0) {
            fprintf(stderr, "rill get: cannot create an event loop\n");
            rc = EXIT_OTHER;
        }
    }
    if (rc == EXIT_OK) {
        rc = start(g, opt);
        if (rc == EXIT_OK && g->remaining) /* a bad URL among them: none is fetched */
            rill_io_loop_run(g->loop);
        if (rc == EXIT_OK)
            rc = g->exit_code;
        for (size_t k = 0; k < g->norigins; k++)
            rill_client_free(g->origins[k].client);
        rill_io_loop_free(g->loop);
    }
    for (size_t i = 0; i < g->nt; i++) {
        if (g->t[i].out)
            fclose(g->t[i].out);
        free(g->t[i].buf);
    }
    fflush(stdout);
    free(out_for);
    free(remote);
    return rc < 0 ? 0 : rc;
}

int rill_cmd_get(int argc, char **argv)
{
    rill_client_options opt;
    rill_client_options_init(&opt);
    struct get g = {0};
    int rc = run(&g, &opt, argc, argv);
    free(g.t);
    free(g.fields);
    free(g.origins);
    free(g.body);
    return rc;
}
