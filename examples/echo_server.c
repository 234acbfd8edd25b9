/* echo_server: a small server on rill's public API (rill/server.h), one handler per feature.
 *
 *   POST /echo      streams the request body back as it arrives, with the request's content-type;
 *                   back-pressure: when a write reports RILL_ERR_WOULD_BLOCK the request is paused
 *                   (the peer stops sending) until the response drains.
 *   GET  /trailers  a body followed by trailers (x-checksum: the sum of the body's bytes).
 *   GET  /hints     103 Early Hints with a link field, then the 200.
 *   GET  /push      pushes /pushed.txt (HTTP/2 peers that allow push), then answers.
 *   anything else   static files from --root, or the built-in demo site without it.
 *
 * usage: echo_server [--listen HOST:PORT|none] [--tls-listen HOST:PORT|none] [--root DIR]
 *                    [--state-dir DIR] [--threads N]
 * The TLS listener uses a self-signed certificate for localhost, created once in --state-dir.
 * SIGTERM/SIGINT stop it gracefully. Exit status: 0 after a clean stop, 1 on a run-time failure
 * (port in use...), 2 for bad flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/server.h"

/* ---- POST /echo ------------------------------------------------------------------------------- */

static void echo_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user)
{
    rill_server_response *res = user;
    /* Over the high-water mark the bytes were still taken: stop the peer until on_drain. */
    if (len > 0 && rill_server_response_write(res, data, len) == RILL_ERR_WOULD_BLOCK)
        rill_server_request_pause(req, true);
    if (end)
        rill_server_response_end(res, NULL, 0);
}

static void echo_drained(rill_server_response *res, void *user)
{
    (void)res;
    rill_server_request_pause(user, false); /* delivers what was held meanwhile, then more arrives */
}

static void echo(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)user;
    if (strcmp(rill_server_request_method(req), "POST") != 0) {
        rill_server_response_set_status(res, 405);
        rill_server_response_set_header(res, "allow", "POST");
        rill_server_response_end(res, "POST only\n", 10);
        return;
    }
    size_t len;
    const char *type = rill_server_request_header(req, "content-type", &len);
    char ctype[256] = "application/octet-stream";
    if (type && len < sizeof ctype) { /* header values are not NUL-terminated */
        memcpy(ctype, type, len);
        ctype[len] = '\0';
    }
    rill_server_response_set_header(res, "content-type", ctype);
    rill_server_response_on_drain(res, echo_drained, req);
    rill_server_request_on_body(req, echo_body, res); /* bytes that came early are delivered now */
}

/* ---- GET /trailers, /hints, /push ------------------------------------------------------------- */

static void trailers(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    static const char body[] = "a body, then trailers\n";
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof body - 1; i++)
        sum += (unsigned char)body[i];
    char checksum[16];
    snprintf(checksum, sizeof checksum, "%u", sum);
    rill_server_response_set_header(res, "content-type", "text/plain");
    rill_server_response_write(res, body, sizeof body - 1); /* no content-length: HTTP/1.1 goes chunked */
    rill_server_response_add_trailer(res, "x-checksum", checksum);
    rill_server_response_end(res, NULL, 0);
}

#define FIELD(n, v) {(const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), sizeof(v) - 1, 0}

static void hints(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    const rill_header link[] = {FIELD("link", "</style.css>; rel=preload; as=style")};
    rill_server_response_informational(res, 103, link, 1);
    rill_server_response_set_header(res, "content-type", "text/plain");
    rill_server_response_set_header(res, "link", "</style.css>; rel=preload; as=style");
    rill_server_response_end(res, "hinted\n", 7);
}

static void push(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    /* The promised request is served by the routes like any other (see pushed below). */
    bool pushed = rill_server_response_push(res, "/pushed.txt") == RILL_OK;
    rill_server_response_set_header(res, "content-type", "text/plain");
    const char *text = pushed ? "pushed /pushed.txt\n" : "push not possible here\n";
    rill_server_response_end(res, text, strlen(text));
}

static void pushed(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    rill_server_response_set_header(res, "content-type", "text/plain");
    rill_server_response_end(res, "pushed content\n", 15);
}

/* ---- command line ----------------------------------------------------------------------------- */

static int usage_error(const char *why, const char *what)
{
    fprintf(stderr, "echo_server: %s '%s'\n"
                    "usage: echo_server [--listen HOST:PORT|none] [--tls-listen HOST:PORT|none]\n"
                    "                   [--root DIR] [--state-dir DIR] [--threads N]\n",
            why, what);
    return 2;
}

int main(int argc, char **argv)
{
    rill_server_options o;
    rill_server_options_init(&o);
    const char *root = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *flag = argv[i], *v = argv[i + 1];
        if (!v)
            return usage_error("missing value for", flag);
        if (strcmp(flag, "--listen") == 0)
            o.listen = strcmp(v, "none") == 0 ? NULL : v;
        else if (strcmp(flag, "--tls-listen") == 0)
            o.tls_listen = strcmp(v, "none") == 0 ? NULL : v;
        else if (strcmp(flag, "--root") == 0)
            root = v;
        else if (strcmp(flag, "--state-dir") == 0)
            o.state_dir = v;
        else if (strcmp(flag, "--threads") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*end || n == 0 || n > 1024)
                return usage_error("bad thread count", v);
            o.threads = (unsigned)n;
        } else
            return usage_error("unknown option", flag);
    }

    char err[256] = "";
    rill_server *srv;
    if (rill_server_new(&o, &srv, err, sizeof err) < 0) /* copies the options */
        return usage_error("bad options:", err);
    rill_server_route(srv, "/echo", echo, NULL);
    rill_server_route(srv, "/trailers", trailers, NULL);
    rill_server_route(srv, "/hints", hints, NULL);
    rill_server_route(srv, "/push", push, NULL);
    rill_server_route(srv, "/pushed.txt", pushed, NULL);
    int rc = root ? rill_server_static(srv, "/", root, err, sizeof err) : rill_server_demo(srv);
    if (rc == RILL_OK)
        rc = rill_server_run(srv, err, sizeof err); /* returns after a graceful shutdown */
    if (rc < 0)
        fprintf(stderr, "echo_server: %s\n", err[0] ? err : rill_strerror(rc));
    rill_server_free(srv);
    return rc < 0 ? 1 : 0;
}
