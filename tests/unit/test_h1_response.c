/* HTTP/1.1 response parsing (client side) and the serialiser, including round trips of what the
 * serialiser writes through the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_h1_harness.h"

#define FIELD(n, v) {(const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), sizeof(v) - 1, 0}

static void run_text(const char *method, const char *in, bool eof, struct transcript *t)
{
    tr_run(RILL_H1_RESPONSE, NULL, method, in, strlen(in), 0, eof, t);
}

static void check_all_splits(const char *method, const char *in, bool eof, struct transcript *whole)
{
    size_t len = strlen(in);
    static struct transcript piece;
    tr_run(RILL_H1_RESPONSE, NULL, method, in, len, 0, eof, whole);
    for (size_t step = 1; step <= len; step++) {
        tr_run(RILL_H1_RESPONSE, NULL, method, in, len, step, eof, &piece);
        if (strcmp(whole->text, piece.text) != 0 || whole->rc != piece.rc)
            fail_msg("step %zu:\n%s\n%s", step, whole->text, piece.text);
    }
}

static void content_length_response(void **state)
{
    (void)state;
    static struct transcript t;
    check_all_splits("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", false, &t);
    assert_int_equal(t.rc, 0);
    assert_string_equal(t.text, "H[200 OK v1.1 body=1 cl=5 ka=1 ec=0 eo=0 cu=0 up=0|"
                                "Content-Length=5;Server=x;]B<hello>E(200)");
}

static void chunked_response_with_trailers(void **state)
{
    (void)state;
    static struct transcript t;
    check_all_splits("GET",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
                     "Expires: never\r\n\r\n"
                     "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                     false, &t);
    assert_int_equal(t.rc, 0);
    assert_non_null(strstr(t.text, "B<Wikipedia in\r\n\r\nchunks.>T[Expires=never;]E(200)"));
    assert_non_null(strstr(t.text, "E(200)H[404 Not Found"));
    assert_int_equal(t.ends, 2);
}

static void read_until_close(void **state)
{
    (void)state;
    static struct transcript t;
    check_all_splits("GET", "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it\r\n", true, &t);
    assert_int_equal(t.rc, 0);
    assert_non_null(strstr(t.text, "body=3 cl=0 ka=0"));
    assert_non_null(strstr(t.text, "B<all of it\r\n>E(eof)"));
    /* max_body bounds a read-until-close body too. */
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_body = 4;
    tr_run(RILL_H1_RESPONSE, &lim, "GET", "HTTP/1.0 200 OK\r\n\r\n1234", 23, 1, true, &t);
    assert_int_equal(t.rc, 0);
    assert_non_null(strstr(t.text, "B<1234>E(eof)"));
    tr_run(RILL_H1_RESPONSE, &lim, "GET", "HTTP/1.0 200 OK\r\n\r\n12345", 24, 1, true, &t);
    assert_int_equal(t.err, RILL_H1_E_BODY_TOO_LARGE);
    assert_non_null(strstr(t.text, "B<1234>"));
    /* Without the EOF the message is simply not finished. */
    run_text("GET", "HTTP/1.1 200 OK\r\n\r\nabc", false, &t);
    assert_int_equal(t.ends, 0);
    /* EOF before a Content-Length body is complete is an error. */
    run_text("GET", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", true, &t);
    assert_int_equal(t.err, RILL_H1_E_INCOMPLETE);
}

static void bodiless_responses(void **state)
{
    (void)state;
    static struct transcript t;
    /* HEAD: Content-Length describes the GET body, none follows; the next response is parsed. */
    check_all_splits("HEAD",
                     "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
                     "HTTP/1.1 204 No Content\r\n\r\n"
                     "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
                     true, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.heads, 3);
    assert_int_equal(t.ends, 3);
    assert_null(strstr(t.text, "B<"));
    /* 204 and 304 have no body whatever the request method. */
    check_all_splits("GET",
                     "HTTP/1.1 204 No Content\r\n\r\n"
                     "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                     false, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.ends, 3);
    assert_non_null(strstr(t.text, "E(304)H[200"));
    assert_non_null(strstr(t.text, "B<ok>E(200)"));
}

static void interim_responses_precede_the_final_one(void **state)
{
    (void)state;
    static struct transcript t;
    check_all_splits("POST",
                     "HTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                     "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nid",
                     false, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.heads, 3);
    assert_non_null(strstr(t.text, "H[100 Continue"));
    assert_non_null(strstr(t.text, "E(100)H[103 Early Hints"));
    assert_non_null(strstr(t.text, "Link=</style.css>; rel=preload;]E(103)H[201 Created"));
    assert_non_null(strstr(t.text, "B<id>E(201)"));
}

static void switching_protocols_stops_the_parser(void **state)
{
    (void)state;
    const char in[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n\x81\x05hello";
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    rill_h1_event ev;
    size_t used, total = 0;
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)in, sizeof in - 1, &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_HEAD);
    assert_int_equal(ev.head->status, 101);
    assert_true(ev.head->upgrade);
    assert_true(ev.head->connection_upgrade);
    assert_false(ev.head->keep_alive);
    total += used;
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)in + total, sizeof in - 1 - total, &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_END);
    assert_true(ev.upgraded);
    assert_int_equal(used, 0);
    /* The WebSocket frame bytes are left for the new protocol. */
    assert_int_equal(sizeof in - 1 - total, 7);
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)in + total, 7, &used, &ev), RILL_ERR_STATE);
    assert_int_equal(used, 0);
    assert_int_equal(rill_h1_parse_eof(p, &ev), RILL_ERR_STATE);
    rill_h1_parser_free(p);

    /* A 2xx to CONNECT turns the connection into a tunnel the same way. */
    static struct transcript t;
    const char tunnel[] = "HTTP/1.1 200 Connection Established\r\n\r\nTLS...";
    tr_run(RILL_H1_RESPONSE, NULL, "CONNECT", tunnel, sizeof tunnel - 1, 0, false, &t);
    assert_int_equal(t.rc, 0);
    assert_non_null(strstr(t.text, "EU(200)"));
    assert_int_equal(t.consumed, sizeof tunnel - 1 - 6);
    /* ...but a 407 to CONNECT is an ordinary response. */
    const char refused[] = "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 1\r\n\r\nx";
    tr_run(RILL_H1_RESPONSE, NULL, "CONNECT", refused, sizeof refused - 1, 0, false, &t);
    assert_int_equal(t.rc, 0);
    assert_non_null(strstr(t.text, "B<x>E(407)"));
}

/* body_left, fed a byte at a time: what a Content-Length body still owes after each byte (the
 * client's hint for batched reads); 0 for a chunked body and between messages. */
static void body_left_counts_down(void **state)
{
    (void)state;
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    assert_int_equal(rill_h1_parser_body_left(p), 0);
    for (size_t i = 0; i < sizeof in - 1; i++) {
        size_t off = 0;
        while (off < 1) {
            size_t used = 0;
            rill_h1_event ev;
            assert_int_equal(rill_h1_parse(p, (const uint8_t *)in + i + off, 1 - off, &used, &ev), 0);
            off += used;
            if (ev.type == RILL_H1_EV_NONE)
                break;
        }
        size_t body_seen = i + 1 >= sizeof head - 1 ? i + 1 - (sizeof head - 1) : 0;
        uint64_t want = i + 1 < sizeof head - 1 ? 0 : body_seen < 10 ? 10 - body_seen : 0;
        if (rill_h1_parser_body_left(p) != want)
            fail_msg("after byte %zu: %llu left, not %llu", i, (unsigned long long)rill_h1_parser_body_left(p),
                     (unsigned long long)want);
    }
    rill_h1_parser_free(p);
}

static void status_line_variants(void **state)
{
    (void)state;
    static struct transcript t;
    static const struct {
        const char *in;
        rill_h1_error err;
    } cases[] = {
        {"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", RILL_H1_E_NONE},
        {"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", RILL_H1_E_NONE},
        {"HTTP/1.1 599 Whatever it is\r\nContent-Length: 0\r\n\r\n", RILL_H1_E_NONE},
        {"HTTP/1.1 600 No\r\n\r\n", RILL_H1_E_BAD_STATUS},
        {"HTTP/1.1 099 No\r\n\r\n", RILL_H1_E_BAD_STATUS},
        {"HTTP/1.1 20 OK\r\n\r\n", RILL_H1_E_BAD_STATUS},
        {"HTTP/1.1 2000 OK\r\n\r\n", RILL_H1_E_BAD_STATUS},
        {"HTTP/1.1 2x0 OK\r\n\r\n", RILL_H1_E_BAD_STATUS},
        {"HTTP/1.1  200 OK\r\n\r\n", RILL_H1_E_BAD_STATUS},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE},
        {"HTTP/1.1 200 O\rK\r\n\r\n", RILL_H1_E_BARE_CR},
        {"HTTP/1.1\r\n\r\n", RILL_H1_E_BAD_START_LINE},
        {"HTTP/2 200\r\n\r\n", RILL_H1_E_BAD_VERSION},
        {"HTTP/1.1x200 OK\r\n\r\n", RILL_H1_E_BAD_VERSION},
        {"HTTP/2.0 200 OK\r\n\r\n", RILL_H1_E_VERSION_UNSUPPORTED},
        {"ICY 200 OK\r\n\r\n", RILL_H1_E_BAD_VERSION},
        {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", RILL_H1_E_BARE_LF},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         RILL_H1_E_LENGTH_AND_CHUNKED},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         RILL_H1_E_CONFLICTING_LENGTH},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", RILL_H1_E_BAD_TRANSFER_ENCODING},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: br, chunked\r\n\r\n", RILL_H1_E_UNKNOWN_CODING},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", RILL_H1_E_BAD_TRANSFER_ENCODING},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         RILL_H1_E_LENGTH_AND_CHUNKED},
        {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", RILL_H1_E_OBS_FOLD},
        {"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", RILL_H1_E_SPACE_BEFORE_COLON},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (size_t step = 0; step <= 1; step++) {
            tr_run(RILL_H1_RESPONSE, NULL, "GET", cases[i].in, strlen(cases[i].in), step, false, &t);
            if (t.err != cases[i].err)
                fail_msg("case %zu step %zu: got %s", i, step, rill_h1_error_text(t.err));
            assert_int_equal(t.heads, cases[i].err == RILL_H1_E_NONE ? 1 : 0);
        }
    }
    /* Responses need no Host, and a Host is not policed there. */
    run_text("GET", "HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\n\r\n", false, &t);
    assert_int_equal(t.rc, 0);
}

static void response_keep_alive(void **state)
{
    (void)state;
    static struct transcript t;
    run_text("GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false,
             &t);
    assert_non_null(strstr(t.text, "ka=1"));
    run_text("GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, &t);
    assert_non_null(strstr(t.text, "ka=0"));
}

/* ---- serialiser ------------------------------------------------------------------------------ */

static void response_round_trip(void **state)
{
    (void)state;
    static uint8_t wire[1024];
    size_t len = 0, n;
    rill_header fields[] = {FIELD("Content-Type", "text/plain"),
                              FIELD("Transfer-Encoding", "chunked"), FIELD("X-Empty", "")};
    assert_int_equal(rill_h1_write_response_head(wire, sizeof wire, &n, 200, NULL, fields, 3), 0);
    len += n;
    const char *pieces[] = {"Hello, ", "chunked ", "world"};
    for (size_t i = 0; i < 3; i++) {
        size_t plen = strlen(pieces[i]);
        assert_int_equal(rill_h1_write_chunk_header(wire + len, sizeof wire - len, &n, plen), 0);
        len += n;
        memcpy(wire + len, pieces[i], plen);
        len += plen;
        memcpy(wire + len, RILL_H1_CHUNK_END, 2);
        len += 2;
    }
    rill_header trailers[] = {FIELD("Digest", "sha-256=abc")};
    assert_int_equal(rill_h1_write_last_chunk(wire + len, sizeof wire - len, &n, trailers, 1), 0);
    len += n;
    static struct transcript t;
    tr_run(RILL_H1_RESPONSE, NULL, "GET", (const char *)wire, len, 1, false, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.consumed, len);
    assert_string_equal(t.text, "H[200 OK v1.1 body=2 cl=0 ka=1 ec=0 eo=0 cu=0 up=0|"
                                "Content-Type=text/plain;Transfer-Encoding=chunked;X-Empty=;]"
                                "B<Hello, chunked world>T[Digest=sha-256=abc;]E(200)");
}

static void request_round_trip(void **state)
{
    (void)state;
    static uint8_t wire[512];
    size_t n;
    rill_header fields[] = {FIELD("Host", "example.com"), FIELD("Content-Length", "4")};
    assert_int_equal(rill_h1_write_request_head(wire, sizeof wire, &n, "PUT", 3, "/x?y=1", 6,
                                                fields, 2), 0);
    assert_int_equal(n, strlen("PUT /x?y=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\n"));
    assert_memory_equal(wire, "PUT /x?y=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\n", n);
    memcpy(wire + n, "data", 4);
    static struct transcript t;
    tr_run(RILL_H1_REQUEST, NULL, NULL, (const char *)wire, n + 4, 0, false, &t);
    assert_int_equal(t.rc, 0);
    assert_non_null(strstr(t.text, "H[PUT /x?y=1 form=0 host=example.com v1.1 body=1 cl=4"));
    assert_non_null(strstr(t.text, "B<data>E(PUT)"));
}

static void serialiser_refuses_injection(void **state)
{
    (void)state;
    uint8_t out[256];
    size_t n;
    rill_header crlf[] = {FIELD("X", "a\r\nSet-Cookie: evil")};
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 200, NULL, crlf, 1),
                     RILL_ERR_INVALID_ARG);
    rill_header lf[] = {FIELD("X", "a\nb")};
    assert_int_equal(rill_h1_write_last_chunk(out, sizeof out, &n, lf, 1), RILL_ERR_INVALID_ARG);
    rill_header nul[] = {{(const uint8_t *)"X", 1, (const uint8_t *)"a\0b", 3, 0}};
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 200, NULL, nul, 1),
                     RILL_ERR_INVALID_ARG);
    rill_header name[] = {FIELD("Bad Name", "v")};
    assert_int_equal(rill_h1_write_request_head(out, sizeof out, &n, "GET", 3, "/", 1, name, 1),
                     RILL_ERR_INVALID_ARG);
    rill_header empty[] = {FIELD("", "v")};
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 200, NULL, empty, 1),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 200, "OK\r\nX: y", NULL, 0),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h1_write_request_head(out, sizeof out, &n, "GET", 3, "/ HTTP/1.0", 10,
                                                NULL, 0), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h1_write_request_head(out, sizeof out, &n, "G T", 3, "/", 1, NULL, 0),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 99, NULL, NULL, 0),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 600, NULL, NULL, 0),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h1_write_chunk_header(out, sizeof out, &n, 0), RILL_ERR_INVALID_ARG);
}

/* A forbidden byte at every position of values of every length up to 48 (the scans go sixteen
 * bytes at a time with an overlapping last block): each is refused, by the serialiser and by the
 * parser; vouched-for names (RILL_HEADER_VALID) still get their values checked. */
static void value_bytes_checked_at_every_position(void **state)
{
    (void)state;
    static const char bad_bytes[] = {'\r', '\n', '\0', 0x01, 0x1f, 0x7f};
    for (size_t len = 1; len <= 48; len++)
        for (size_t at = 0; at < len; at++)
            for (size_t b = 0; b < sizeof bad_bytes; b++) {
                char v[48];
                memset(v, 'v', len);
                v[at] = bad_bytes[b];
                for (uint32_t flags = 0; flags <= RILL_HEADER_VALID; flags += RILL_HEADER_VALID) {
                    rill_header f[] = {{(const uint8_t *)"x-a", 3, (const uint8_t *)v, len, flags}};
                    uint8_t out[256];
                    size_t n;
                    if (rill_h1_write_response_head(out, sizeof out, &n, 200, NULL, f, 1) != RILL_ERR_INVALID_ARG)
                        fail_msg("byte 0x%02x at %zu of %zu was written", (unsigned)(uint8_t)bad_bytes[b], at, len);
                }
                if (bad_bytes[b] == '\r' || bad_bytes[b] == '\n')
                    continue; /* ends the line: another error */
                char head[128];
                int hl = snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: a\r\nX-A: ");
                memcpy(head + hl, v, len);
                memcpy(head + hl + len, "\r\n\r\n", 4);
                static struct transcript t;
                tr_run(RILL_H1_REQUEST, NULL, NULL, head, (size_t)hl + len + 4, 0, false, &t);
                if (t.rc >= 0)
                    fail_msg("parser took byte 0x%02x at %zu of %zu", (unsigned)(uint8_t)bad_bytes[b], at, len);
            }
    /* and good values of every length, tabs and obs-text inside, come out as they went in */
    for (size_t len = 0; len <= 48; len++) {
        char v[48];
        for (size_t i = 0; i < len; i++)
            v[i] = (char)(i % 3 == 1 && i + 1 < len ? '\t' : i % 5 == 2 ? 0xe9 : 'a' + (int)(i % 26));
        rill_header f[] = {{(const uint8_t *)"x-a", 3, (const uint8_t *)v, len, RILL_HEADER_VALID}};
        uint8_t out[256];
        size_t n;
        assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 200, NULL, f, 1), 0);
        assert_non_null(memmem(out, n, v, len));
    }
}

/* Field lines that arrive whole are scanned in one pass; anything unusual in them goes the
 * careful way. Both must agree on every input, valid or not, cut anywhere (tr_same_at_every_cut),
 * and each bad input must still be refused with its own error. */
#define INPUT(lit, e) {lit, sizeof(lit) - 1, e}
static void one_pass_fields_agree_with_the_careful_path(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        rill_h1_error err; /* what the whole input ends in (NONE: no error) */
    } cases[] = {
        INPUT("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 17:34:36 GMT\r\n"
              "Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
              "ETag: \"6b1183e5-5\"\r\nAccept-Ranges: bytes\r\n\r\nhello"
              "HTTP/1.1 204 No Content\r\nX-A:\r\nX-B:  \t \r\nX-C:\tv\t \r\n\r\n",
              RILL_H1_E_NONE),
        INPUT("HTTP/1.1 200 OK\r\nA: \x80\xff obs\r\nB: fifteen bytes!\r\nC: sixteen bytes!!\r\n"
              "D: seventeen bytes!\r\nContent-Length: 0\r\n\r\n",
              RILL_H1_E_NONE),
        INPUT("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", RILL_H1_E_SPACE_BEFORE_COLON),
        INPUT("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", RILL_H1_E_OBS_FOLD),
        INPUT("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", RILL_H1_E_BARE_CR),
        INPUT("HTTP/1.1 200 OK\r\nA: b\nB: c\r\n\r\n", RILL_H1_E_BARE_LF),
        INPUT("HTTP/1.1 200 OK\r\nA: b\x01c\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE),
        INPUT("HTTP/1.1 200 OK\r\nA: a long value with a DEL \x7f past sixteen\r\n\r\n",
              RILL_H1_E_BAD_FIELD_VALUE),
        INPUT("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE),
        INPUT("HTTP/1.1 200 OK\r\nA@b: c\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME),
        INPUT("HTTP/1.1 200 OK\r\n: c\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME),
        INPUT("HTTP/1.1 200 OK\r\nA\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME),
        INPUT("HTTP/1.1 200 OK\r\nA: b\r\n\rX\r\n", RILL_H1_E_BARE_CR),
        INPUT("HTTP/1.1 200 OK\r\nA: b\r\n\n", RILL_H1_E_BARE_LF),
        INPUT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
              RILL_H1_E_CONFLICTING_LENGTH),
        INPUT("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH),
        INPUT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
              RILL_H1_E_LENGTH_AND_CHUNKED),
        INPUT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
              RILL_H1_E_UNKNOWN_CODING),
        INPUT("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
              RILL_H1_E_TOO_MANY_FIELDS),
        INPUT("HTTP/1.1 200 OK\r\nA: 1\r\nB: a value that takes the head past its limit\r\n\r\n",
              RILL_H1_E_HEAD_TOO_LARGE),
    };
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_fields = 3;
    lim.max_head_size = 64;
    static struct transcript whole;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool small = cases[i].err == RILL_H1_E_TOO_MANY_FIELDS || cases[i].err == RILL_H1_E_HEAD_TOO_LARGE;
        tr_same_at_every_cut(RILL_H1_RESPONSE, small ? &lim : NULL, "GET", cases[i].in, cases[i].len,
                             &whole);
        if (whole.err != cases[i].err)
            fail_msg("case %zu: %s, want %s", i, rill_h1_error_text(whole.err),
                     rill_h1_error_text(cases[i].err));
        assert_int_equal(whole.rc != 0, cases[i].err != RILL_H1_E_NONE);
    }
}

static void small_buffers_are_reported(void **state)
{
    (void)state;
    uint8_t out[128];
    size_t full, n;
    rill_header fields[] = {FIELD("Content-Length", "0"), FIELD("Connection", "close")};
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &full, 431, NULL, fields, 2), 0);
    assert_memory_equal(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46);
    for (size_t cap = 0; cap < full; cap++)
        assert_int_equal(rill_h1_write_response_head(out, cap, &n, 431, NULL, fields, 2),
                         RILL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(rill_h1_write_response_head(out, full, &n, 431, NULL, fields, 2), 0);
    assert_int_equal(n, full);
    assert_int_equal(rill_h1_write_chunk_header(out, 4, &n, 0x1f), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "1f\r\n", 4);
    assert_int_equal(rill_h1_write_chunk_header(out, 3, &n, 0x1f), RILL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(rill_h1_write_chunk_header(out, sizeof out, &n, UINT64_MAX), 0);
    assert_int_equal(n, RILL_H1_CHUNK_HEADER_MAX);
    assert_memory_equal(out, "ffffffffffffffff\r\n", n);
    assert_int_equal(rill_h1_write_last_chunk(out, 4, &n, NULL, 0), RILL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(rill_h1_write_last_chunk(out, 5, &n, NULL, 0), 0);
    assert_memory_equal(out, "0\r\n\r\n", 5);
}

static void reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(rill_h1_reason_phrase(200), "OK");
    assert_string_equal(rill_h1_reason_phrase(101), "Switching Protocols");
    assert_string_equal(rill_h1_reason_phrase(413), "Content Too Large");
    assert_string_equal(rill_h1_reason_phrase(505), "HTTP Version Not Supported");
    assert_string_equal(rill_h1_reason_phrase(299), "");
    uint8_t out[64];
    size_t n;
    assert_int_equal(rill_h1_write_response_head(out, sizeof out, &n, 299, NULL, NULL, 0), 0);
    assert_memory_equal(out, "HTTP/1.1 299 \r\n\r\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_length_response),
        cmocka_unit_test(chunked_response_with_trailers),
        cmocka_unit_test(read_until_close),
        cmocka_unit_test(bodiless_responses),
        cmocka_unit_test(interim_responses_precede_the_final_one),
        cmocka_unit_test(switching_protocols_stops_the_parser),
        cmocka_unit_test(body_left_counts_down),
        cmocka_unit_test(status_line_variants),
        cmocka_unit_test(response_keep_alive),
        cmocka_unit_test(response_round_trip),
        cmocka_unit_test(request_round_trip),
        cmocka_unit_test(serialiser_refuses_injection),
        cmocka_unit_test(value_bytes_checked_at_every_position),
        cmocka_unit_test(small_buffers_are_reported),
        cmocka_unit_test(one_pass_fields_agree_with_the_careful_path),
        cmocka_unit_test(reason_phrases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
