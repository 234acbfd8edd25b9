/* Fuzzes a whole server connection: the real rill_server (demo site, an echo route, a static root)
 * gets one end of a socketpair per input and the input is written into the other end in pieces,
 * each written only once the server has read the previous one (SIOCOUTQ of a unix socket drops to
 * 0 when the reader has consumed the bytes), so every piece is a separate read on the server side.
 * Then the write side is shut and the answer read until the server closes. Checks: no crash, leak
 * or UB; the server closes the connection and stays alive; the answer is well-formed (HTTP/1.1
 * responses parse and match the requests, HTTP/2 frames are whole with valid HPACK blocks, frames
 * after a WebSocket upgrade decode).
 *
 * Input: two control bytes, then the bytes the client sends. Control byte 0, low 3 bits: the
 * largest piece (fuzz_split.h); bits 3 and 4 both set: everything in one write; both bytes seed
 * the cut schedule.
 *
 * The server's 200 ms idle trim is out of reach here (no piece waits that long); the
 * integration tests cover a slow split. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_split.h"
#include "rill/h1.h"
#include "rill/hpack.h"
#include "rill/server.h"
#include "rill/ws.h"

#define PIECE_WAIT_US 3000      /* for the server to read a piece; it is usually ~20 us */
#define INPUT_BUDGET_US 400000  /* whole exchange, in case the server stops reading */
#define CLOSE_WAIT_US 1000000   /* for the server to close after our FIN; it takes ~0.1 ms */
#define GONE_WAIT_US 2000000    /* for a closed connection to leave the server's count */
#define ANSWER_CAP (1u << 20)   /* answer bytes kept for the checks */

static rill_server *server;
static pthread_t server_thread;
static atomic_bool server_ready, server_returned;
static char static_dir[64];

/* ---- the server -------------------------------------------------------------------------------- */

static void echo_body(rill_server_request *req, const uint8_t *data, size_t len, bool end, void *user)
{
    (void)user;
    if (len)
        rill_server_response_write(req, data, len);
    if (end)
        rill_server_response_end(req, "\n", 1);
}

/* Echoes the body back (a chunked answer over HTTP/1.1, written while the body still arrives). */
static void echo_handler(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)user;
    rill_server_response_set_header(res, "content-type", "application/octet-stream");
    rill_server_request_on_body(req, echo_body, NULL);
}

/* Answers at once and leaves any request body unread: the server has to discard it. */
static void early_handler(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    rill_server_response_add_trailer(res, "x-early", "1");
    rill_server_response_end(res, "early\n", 6);
}

static void *server_main(void *arg)
{
    (void)arg;
    char err[256] = "";
    /* Bound here, so only this thread blocks the signals the server watches. */
    if (rill_server_bind(server, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_server_conn: %s\n", err);
        abort();
    }
    atomic_store(&server_ready, true);
    if (rill_server_run(server, err, sizeof err) < 0)
        fprintf(stderr, "fuzz_server_conn: %s\n", err);
    atomic_store(&server_returned, true);
    return NULL;
}

static void write_file(const char *name, const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", static_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len)
        abort();
    fclose(f);
}

static void server_stop(void)
{
    rill_server_stop(server);
    pthread_join(server_thread, NULL);
    rill_server_free(server);
    server = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/a.txt", static_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/a.txt.gz", static_dir);
    unlink(path);
    rmdir(static_dir);
}

static void server_start(void)
{
    rill_server_options o;
    rill_server_options_init(&o);
    o.listen = "127.0.0.1:0"; /* required, never used: connections come through rill_server_adopt */
    o.tls_listen = NULL;
    o.threads = 1;
    o.shutdown_timeout_ms = 200;
    o.max_concurrent_streams = 8;
    char err[256];
    snprintf(static_dir, sizeof static_dir, "/tmp/rill-fuzz-XXXXXX");
    if (!mkdtemp(static_dir) || rill_server_new(&o, &server, err, sizeof err) < 0)
        abort();
    static const char text[] = "static file body, long enough for a range or two\n";
    write_file("a.txt", text, sizeof text - 1);
    write_file("a.txt.gz", "\x1f\x8b\x08\x00", 4);
    if (rill_server_demo(server) < 0 || rill_server_route(server, "/echo", echo_handler, NULL) < 0 ||
        rill_server_route(server, "/early", early_handler, NULL) < 0 ||
        rill_server_static(server, "/static", static_dir, err, sizeof err) < 0)
        abort();
    /* libcrypto (the WebSocket accept key) initialises itself on first use and leaks that thread's
     * error state if the first use is on a thread that later exits: use it here first. */
    char accept[RILL_WS_ACCEPT_LEN + 1];
    rill_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
    if (pthread_create(&server_thread, NULL, server_main, NULL) != 0)
        abort();
    while (!atomic_load(&server_ready))
        sched_yield();
    atexit(server_stop);
}

/* ---- the client end ---------------------------------------------------------------------------- */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct answer {
    uint8_t *data;
    size_t len;
    bool truncated; /* more than ANSWER_CAP: not checked */
    bool closed;    /* the server closed (EOF or reset) */
};

/* Reads what is there without waiting. */
static void drain(int fd, struct answer *a)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            size_t room = ANSWER_CAP - a->len;
            size_t keep = (size_t)n < room ? (size_t)n : room;
            memcpy(a->data + a->len, buf, keep);
            a->len += keep;
            if (keep < (size_t)n)
                a->truncated = true;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            a->closed = true;
        if (n == 0 || errno != EINTR)
            return;
    }
}

static size_t unread_by_server(int fd)
{
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) != 0)
        return 0;
    return (size_t)n;
}

/* Writes one piece (reading the answer meanwhile, so the server is never stuck on output), then
 * waits until the server has read it; *sent counts the bytes written. False when the budget ran
 * out or the server closed. */
static bool send_piece(int fd, const uint8_t *p, size_t n, uint64_t deadline, bool *stalled,
                       struct answer *a, size_t *sent)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            *sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return false; /* the server closed its end */
        drain(fd, a);
        if (now_us() > deadline)
            return false;
        struct pollfd pfd = {fd, POLLIN | POLLOUT, 0};
        poll(&pfd, 1, 1);
    }
    if (*stalled)
        return true;
    uint64_t until = now_us() + PIECE_WAIT_US;
    while (unread_by_server(fd) > 0) {
        drain(fd, a);
        if (a->closed)
            return false;
        if (now_us() > until) {
            *stalled = true; /* not reading (paused?): stop waiting for it on later pieces */
            return true;
        }
        sched_yield();
    }
    drain(fd, a);
    return true;
}

static void wait_for_close(int fd, struct answer *a)
{
    uint64_t until = now_us() + CLOSE_WAIT_US;
    while (!a->closed && now_us() < until) {
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, 1);
        drain(fd, a);
    }
}

/* A connection the client has closed must leave the server (no leaked session). */
static void wait_until_no_connections(void)
{
    uint64_t until = now_us() + GONE_WAIT_US;
    for (;;) {
        rill_server_stats st;
        rill_server_get_stats(server, &st);
        if (st.connections == 0 && st.streams == 0)
            return;
        if (now_us() > until) {
            fprintf(stderr, "fuzz_server_conn: %llu connections, %llu streams still open\n",
                    (unsigned long long)st.connections, (unsigned long long)st.streams);
            abort();
        }
        sched_yield();
    }
}

/* ---- checking the answer ----------------------------------------------------------------------- */

static int hpack_touch(const rill_header *h, void *user)
{
    unsigned *sum = user;
    for (size_t i = 0; i < h->name_len; i++)
        *sum += h->name[i];
    for (size_t i = 0; i < h->value_len; i++)
        *sum += h->value[i];
    return 0;
}

/* HTTP/2 from the server: SETTINGS first, frames whole (if the server closed), stream ids where
 * each type needs them, header blocks (HEADERS / PUSH_PROMISE + CONTINUATION) decodable. */
static void check_h2(const uint8_t *p, size_t len, bool closed)
{
    rill_hpack_decoder *dec = rill_hpack_decoder_new(1u << 24); /* the encoder follows our SETTINGS */
    if (!dec)
        abort();
    uint8_t *block = NULL;
    size_t block_len = 0;
    bool in_block = false, first = true;
    unsigned sum = 0;
    size_t off = 0;
    while (len - off >= 9) {
        const uint8_t *h = p + off;
        size_t flen = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        uint8_t type = h[3], flags = h[4];
        uint32_t sid = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) &
                       0x7fffffffu;
        if (len - off - 9 < flen)
            break;
        const uint8_t *pl = h + 9;
        if (first && (type != 4 || sid != 0 || (flags & 1) || flen % 6))
            abort(); /* the server preface is a SETTINGS frame */
        first = false;
        if (in_block != (type == 9))
            abort(); /* CONTINUATION follows a header block that is not finished, and only that */
        bool conn_level = type == 4 || type == 6 || type == 7;
        bool stream_level = type <= 3 || type == 5 || type == 9;
        if ((conn_level && sid != 0) || (stream_level && sid == 0))
            abort();
        if (type == 1 || type == 5 || type == 9) {
            size_t skip = 0, pad = 0;
            if (type != 9 && (flags & 0x8)) { /* PADDED */
                if (flen < 1)
                    abort();
                pad = pl[0];
                skip = 1;
            }
            if (type == 1 && (flags & 0x20))
                skip += 5; /* PRIORITY */
            if (type == 5)
                skip += 4; /* promised stream id */
            if (skip + pad > flen)
                abort();
            uint8_t *grown = realloc(block, block_len + flen - skip - pad + 1);
            if (!grown)
                abort();
            block = grown;
            memcpy(block + block_len, pl + skip, flen - skip - pad);
            block_len += flen - skip - pad;
            in_block = !(flags & 0x4); /* END_HEADERS */
            if (!in_block) {
                if (rill_hpack_decode_block(dec, block, block_len, hpack_touch, &sum) != RILL_OK)
                    abort();
                block_len = 0;
            }
        }
        off += 9 + flen;
    }
    if (closed && off != len)
        abort(); /* the server closed in the middle of a frame */
    free(block);
    rill_hpack_decoder_free(dec);
}

static int ws_message(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user)
{
    (void)user, (void)opcode, (void)data, (void)len, (void)flags;
    return 0;
}

static int ws_key(uint8_t key[4], void *user)
{
    (void)user;
    memset(key, 0x5a, 4);
    return 0;
}

/* WebSocket frames from the server after its 101: a client codec decodes them without failing. */
static void check_ws(const rill_h1_head *head, const uint8_t *p, size_t len)
{
    rill_ws_pmd_params agreed;
    bool pmd = false;
    for (size_t i = 0; i < head->nfields; i++) {
        const rill_header *f = &head->fields[i];
        if (f->name_len != 24 || strncasecmp((const char *)f->name, "sec-websocket-extensions", 24) != 0)
            continue;
        rill_ws_pmd_policy offered = {.client_no_context_takeover = true,
                                      .server_no_context_takeover = false};
        /* We did not make the offer (the input did); only an answer we can read is checked. */
        if (rill_ws_pmd_client_accept((const char *)f->value, f->value_len, &offered, &agreed) != RILL_OK)
            return;
        pmd = true;
    }
    rill_ws_options opt;
    rill_ws_options_init(&opt);
    opt.streaming = true;
    opt.no_auto_pong = true;
    opt.pmd = pmd ? &agreed : NULL;
    static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = ws_message,
                                         .mask_key = ws_key};
    rill_ws *ws = rill_ws_new(RILL_WS_CLIENT, &opt, &cb, NULL);
    if (!ws)
        abort();
    if (len && rill_ws_recv(ws, p, len) < 0) {
        fprintf(stderr, "fuzz_server_conn: the server's WebSocket frames fail (close code %u)\n",
                rill_ws_fail_code(ws));
        abort();
    }
    rill_ws_free(ws);
}

struct requests {
    char method[64][16]; /* the methods of the first requests, in order */
    size_t n;
    bool clean; /* whole requests only, no error, no upgrade */
};

/* What the server was sent, as its own parser reads it. */
static void parse_requests(const uint8_t *p, size_t len, struct requests *r)
{
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_head_size = 64 * 1024; /* the server's max_header_list_size */
    rill_h1_parser *parser = rill_h1_parser_new(RILL_H1_REQUEST, &lim);
    if (!parser)
        abort();
    memset(r, 0, sizeof *r);
    r->clean = true;
    size_t off = 0;
    bool between = true;
    for (;;) {
        rill_h1_event ev;
        size_t used;
        if (rill_h1_parse(parser, p + off, len - off, &used, &ev) != 0) {
            r->clean = false;
            break;
        }
        off += used;
        if (ev.type == RILL_H1_EV_NONE)
            break;
        if (ev.type == RILL_H1_EV_HEAD) {
            between = false;
            if (r->n < 64) {
                size_t m = ev.head->method_len < 15 ? ev.head->method_len : 15;
                memcpy(r->method[r->n], ev.head->method, m);
                r->method[r->n][m] = '\0';
            }
            r->n++;
            if (ev.head->upgrade || ev.head->expect_continue || ev.head->expect_other ||
                !ev.head->keep_alive)
                r->clean = false; /* answers that may end the exchange early */
        }
        if (ev.type == RILL_H1_EV_END) {
            between = true;
            if (ev.upgraded)
                r->clean = false;
        }
    }
    if (!between)
        r->clean = false;
    rill_h1_parser_free(parser);
}

static bool field_is(const rill_h1_head *h, const char *name, const char *value)
{
    return rill_h1_head_has_token(h, name, value);
}

/* HTTP/1.1 from the server: a sequence of responses, one final response per request (in order,
 * framed for its method), complete if the server closed; after a 101 the new protocol's bytes. */
static void check_h1(const uint8_t *input, size_t input_len, const uint8_t *p, size_t len,
                     bool closed)
{
    struct requests req;
    parse_requests(input, input_len, &req);
    rill_h1_parser *parser = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    if (!parser)
        abort();
    size_t finals = 0, off = 0;
    bool server_closes = false, between = true;
    if (req.n > 0)
        rill_h1_set_request_method(parser, req.method[0], strlen(req.method[0]));
    for (;;) {
        rill_h1_event ev;
        size_t used;
        if (rill_h1_parse(parser, p + off, len - off, &used, &ev) != 0) {
            fprintf(stderr, "fuzz_server_conn: bad response at answer byte %zu: %s\n", off,
                    rill_h1_error_text(rill_h1_parser_error(parser)));
            abort();
        }
        off += used;
        if (ev.type == RILL_H1_EV_NONE)
            break;
        if (ev.type == RILL_H1_EV_HEAD) {
            between = false;
            if (ev.head->status >= 200 || ev.head->status == 101)
                finals++;
            if (!ev.head->keep_alive || field_is(ev.head, "connection", "close"))
                server_closes = true;
            if (finals > req.n + 1)
                abort(); /* more answers than requests (one error answer aside) */
        }
        if (ev.type == RILL_H1_EV_END) {
            between = true;
            if (ev.upgraded) {
                if (ev.head->status != 101)
                    abort(); /* we never send CONNECT */
                if (field_is(ev.head, "upgrade", "h2c"))
                    check_h2(p + off, len - off, closed);
                else if (field_is(ev.head, "upgrade", "websocket"))
                    check_ws(ev.head, p + off, len - off);
                else
                    abort();
                rill_h1_parser_free(parser);
                return;
            }
            if (ev.head->status >= 200) { /* beyond the requests: the answer to a broken one */
                const char *next = finals < req.n && finals < 64 ? req.method[finals] : "GET";
                rill_h1_set_request_method(parser, next, strlen(next));
            }
        }
    }
    if (closed && !between) {
        rill_h1_event ev;
        /* Cut short: only acceptable when our side broke off in the middle of a request. */
        if (rill_h1_parse_eof(parser, &ev) != 0 && req.clean) {
            fprintf(stderr, "fuzz_server_conn: the server closed in the middle of a response\n");
            abort();
        }
    }
    if (closed && req.clean && !server_closes && finals != req.n) {
        fprintf(stderr, "fuzz_server_conn: %zu requests, %zu answers\n", req.n, finals);
        abort();
    }
    rill_h1_parser_free(parser);
}

/* ---- the target -------------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!server)
        server_start();
    if (atomic_load(&server_returned))
        abort(); /* the server died */
    struct fuzz_cuts cuts;
    fuzz_cuts_init(&cuts, fuzz_cuts_class(data[0]), (uint32_t)data[0] << 8 | data[1]);
    if ((data[0] & 0x18) == 0x18)
        cuts.max = SIZE_MAX; /* one in four: the whole input in one write */
    const uint8_t *input = data + 2;
    size_t len = size - 2;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (rill_server_adopt(server, sv[1]) != RILL_OK)
        abort();
    static uint8_t answer_buf[ANSWER_CAP];
    struct answer a = {.data = answer_buf};
    uint64_t deadline = now_us() + INPUT_BUDGET_US;
    bool stalled = false;
    size_t sent = 0;
    for (size_t off = 0; off < len;) {
        size_t n = cuts.max == SIZE_MAX ? len - off : fuzz_cuts_next(&cuts, len - off);
        if (!send_piece(sv[0], input + off, n, deadline, &stalled, &a, &sent))
            break;
        off += n;
    }
    shutdown(sv[0], SHUT_WR);
    wait_for_close(sv[0], &a);
    close(sv[0]);
    if (!a.closed) {
        fprintf(stderr, "fuzz_server_conn: the server kept the connection open after our FIN\n");
        abort();
    }
    wait_until_no_connections();

    if (getenv("FUZZ_SERVER_CONN_SHOW")) /* for reading what a seed does */
        fprintf(stderr, "---- %zu bytes in, %zu out:\n", len, a.len),
            fwrite(a.data, 1, a.len, stderr), fputc('\n', stderr);
    if (!a.truncated) {
        /* Only what the server got: the rest was cut off by the budget or by its close. */
        if (rill_h1_preface_check(input, sent) == RILL_H1_PREFACE_YES)
            check_h2(a.data, a.len, a.closed);
        else
            check_h1(input, sent, a.data, a.len, a.closed);
    }
    return 0;
}
