/* The response field API's checks (rill_server_response_add_header / _add_headers): what a handler
 * may set, what is refused, and that a refused batch adds nothing. A real server on its own thread,
 * asked over HTTP/1.1 on an adopted socket; the answer's head is read back whole. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rill/server.h"

static rill_server *srv;

static void *run_server(void *arg)
{
    (void)arg;
    char err[256];
    rill_server_run(srv, err, sizeof err);
    return NULL;
}

/* A one-worker server with handler on prefix, on its own thread; returns our end of a socket
 * pair whose other end the server adopted. */
static int start_with(const char *prefix, rill_server_handler_fn handler, pthread_t *thread)
{
    rill_server_options o;
    rill_server_options_init(&o);
    o.listen = "127.0.0.1:0";
    o.tls_listen = NULL;
    o.threads = 1;
    char err[256];
    assert_int_equal(rill_server_new(&o, &srv, err, sizeof err), 0);
    assert_int_equal(rill_server_route(srv, prefix, handler, NULL), 0);
    assert_int_equal(rill_server_bind(srv, err, sizeof err), 0);
    assert_int_equal(pthread_create(thread, NULL, run_server, NULL), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(rill_server_adopt(srv, sv[1]), 0);
    return sv[0];
}

static void stop_server(int fd, pthread_t thread)
{
    close(fd);
    rill_server_stop(srv);
    pthread_join(thread, NULL);
    rill_server_free(srv);
}

#define H(n, v) {(const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), sizeof(v) - 1, 0}

/* One field per case, added alone; the outcome of each goes into x-result as a digit (0 taken,
 * 1 refused), and the taken ones are in the head. */
static const rill_header cases[] = {
    H("x-plain", "value"),                                  /* taken */
    H("X-Upper", "Mixed Case"),                             /* taken, name lowercased */
    H("x-tab", "a\tb"),                                     /* taken: HTAB inside */
    H("x-obs", "caf\xc3\xa9"),                              /* taken: obs-text */
    H("x-long-ok", "0123456789abcdef0123456789abcdef0123"), /* taken: the 16-byte path */
    H("x-del", "a\x7f"),                                    /* refused: DEL */
    H("x-cr", "a\rb"),                                      /* refused */
    H("x-nul", "a\0b"),                                     /* refused: NUL inside, lengths given */
    H("x-lead", " a"),                                      /* refused: leading space */
    H("x-trail", "a\t"),                                    /* refused: trailing HTAB */
    H("x-long-bad", "0123456789abcdef0\n23456789"),         /* refused in the 16-byte path */
    H("x-long-tail", "0123456789abcdef012\x01"),            /* refused in the tail */
    H("connection", "close"),                               /* refused: connection-specific */
    H("Transfer-Encoding", "chunked"),                      /* refused */
    H("bad name", "x"),                                     /* refused: not a token */
    H("x-n\0ul", "x"),                                      /* refused */
    H("", "x"),                                             /* refused: empty name */
    H("TE", "trailers"),                                    /* refused: a request's field */
    H("content-length", "12a"),                             /* refused: not digits */
    H("Content-Length", ""),                                /* refused: no digits */
};
static const char expected[] = "00000111111111111111";

static void handler(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    char result[sizeof cases / sizeof cases[0] + 1];
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++)
        result[i] = rill_server_response_add_headers(res, &cases[i], 1) == RILL_OK ? '0' : '1';
    result[n] = '\0';
    /* a batch with one bad field adds none of its good ones */
    rill_header batch[] = {H("x-batch-a", "1"), H("x-batch-bad", "\r"), H("x-batch-b", "2")};
    int rc_bad = rill_server_response_add_headers(res, batch, 3);
    rill_header good[] = {H("x-batch-c", "3"), H("x-batch-d", "4")};
    int rc_good = rill_server_response_add_headers(res, good, 2);
    char codes[64];
    snprintf(codes, sizeof codes, "%s %d %d", result, rc_bad == RILL_ERR_INVALID_ARG, rc_good == RILL_OK);
    rill_server_response_add_header(res, "x-result", codes);
    rill_server_response_end(res, "ok", 2);
}

static void response_fields_checked_once_all_or_none(void **state)
{
    (void)state;
    pthread_t thread;
    int fd = start_with("/f", handler, &thread);
    const char *request = "GET /f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    char answer[8192];
    size_t len = 0;
    for (ssize_t r; len < sizeof answer - 1 && (r = read(fd, answer + len, sizeof answer - 1 - len)) > 0;)
        len += (size_t)r;
    answer[len] = '\0';

    char want[128];
    snprintf(want, sizeof want, "x-result: %s 1 1\r\n", expected);
    if (!strstr(answer, want))
        fail_msg("no \"%s\" in:\n%s", want, answer);
    assert_non_null(strstr(answer, "\r\nx-plain: value\r\n"));
    assert_non_null(strstr(answer, "\r\nx-upper: Mixed Case\r\n"));
    assert_non_null(strstr(answer, "\r\nx-tab: a\tb\r\n"));
    assert_non_null(strstr(answer, "\r\nx-obs: caf\xc3\xa9\r\n"));
    assert_non_null(strstr(answer, "\r\nx-long-ok: 0123456789abcdef0123456789abcdef0123\r\n"));
    assert_non_null(strstr(answer, "\r\nx-batch-c: 3\r\nx-batch-d: 4\r\n"));
    assert_null(strstr(answer, "x-batch-a"));
    assert_null(strstr(answer, "x-batch-b"));
    assert_null(strstr(answer, "x-del"));
    assert_null(strstr(answer, "x-long-bad"));
    stop_server(fd, thread);
}

/* Fields past the exchange's inline arena: 40 of ~200 bytes (overflow blocks from the worker's
 * pool, several per request) and, on odd requests, one of 6,000 (a block of its own). The value
 * of each depends on the request's number, so a block that kept a previous request's bytes or
 * went back to the pool too early shows. */
static void many_fields_handler(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)user;
    const char *q = rill_server_request_path(req);
    unsigned n = (unsigned)atoi(strchr(q, '=') + 1);
    char name[32], value[6001];
    for (unsigned i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "x-f%u", i);
        memset(value, 'a' + (char)((n + i) % 26), 200);
        snprintf(value + 200, 16, "-%u-%u", n, i);
        assert_int_equal(rill_server_response_add_header(res, name, value), RILL_OK);
    }
    if (n % 2) {
        memset(value, 'z', 6000);
        value[6000] = '\0';
        assert_int_equal(rill_server_response_add_header(res, "x-big", value), RILL_OK);
    }
    rill_server_response_end(res, "ok", 2);
}

static void fields_past_the_inline_arena_survive_reuse(void **state)
{
    (void)state;
    pthread_t thread;
    int fd = start_with("/m", many_fields_handler, &thread);
    static char answer[65536];
    for (unsigned n = 0; n < 6; n++) {
        char request[64];
        int len = snprintf(request, sizeof request, "GET /m?n=%u HTTP/1.1\r\nHost: a\r\n\r\n", n);
        for (int i = 0; i < len; i++) /* a byte per write: the head arrives in pieces */
            assert_int_equal(write(fd, request + i, 1), 1);
        size_t got = 0;
        while (!strstr(answer, "\r\n\r\nok")) {
            ssize_t r = read(fd, answer + got, sizeof answer - 1 - got);
            assert_true(r > 0);
            got += (size_t)r;
            answer[got] = '\0';
        }
        for (unsigned i = 0; i < 40; i++) {
            char want[256];
            int w = snprintf(want, sizeof want, "\r\nx-f%u: ", i);
            memset(want + w, 'a' + (char)((n + i) % 26), 200);
            snprintf(want + w + 200, 24, "-%u-%u\r\n", n, i);
            if (!strstr(answer, want))
                fail_msg("request %u: no x-f%u of its own in:\n%.300s", n, i, answer);
        }
        const char *big = strstr(answer, "\r\nx-big: ");
        if (n % 2) {
            assert_non_null(big);
            assert_int_equal(strspn(big + 9, "z"), 6000);
        } else {
            assert_null(big);
        }
        answer[0] = '\0';
    }
    stop_server(fd, thread);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(response_fields_checked_once_all_or_none),
        cmocka_unit_test(fields_past_the_inline_arena_survive_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
