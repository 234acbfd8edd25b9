/* HTTP/1.1 request parsing: valid shapes, splits, pipelining, chunked bodies, limits, and every
 * request-smuggling shape the parser promises to reject. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_h1_harness.h"

#define S(lit) lit, sizeof(lit) - 1

/* Parses one request given whole; returns the parser positioned after HEAD (caller frees). */
static rill_h1_parser *head_of(const char *req, size_t len, const rill_h1_head **head, size_t *used)
{
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    assert_non_null(p);
    rill_h1_event ev;
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)req, len, used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_HEAD);
    *head = ev.head;
    return p;
}

static bool span_is(const void *s, size_t n, const char *lit)
{
    return s && n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static void simple_get_yields_every_part(void **state)
{
    (void)state;
    const char req[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                       "User-Agent:  curl/8 \t\r\nAccept: */*\r\n\r\n";
    const rill_h1_head *h;
    size_t used;
    rill_h1_parser *p = head_of(S(req), &h, &used);
    assert_int_equal(used, sizeof req - 1);
    assert_true(span_is(h->method, h->method_len, "GET"));
    assert_true(span_is(h->target, h->target_len, "/index.html?q=1"));
    assert_int_equal(h->target_form, RILL_H1_TARGET_ORIGIN);
    assert_int_equal(h->version_minor, 1);
    assert_true(span_is(h->host, h->host_len, "example.com"));
    assert_int_equal(h->nfields, 3);
    assert_true(span_is(h->fields[1].name, h->fields[1].name_len, "User-Agent"));
    assert_true(span_is(h->fields[1].value, h->fields[1].value_len, "curl/8")); /* OWS trimmed */
    assert_int_equal(h->body, RILL_H1_BODY_NONE);
    assert_true(h->keep_alive);
    assert_false(h->expect_continue);
    rill_h1_event ev;
    assert_int_equal(rill_h1_parse(p, NULL, 0, &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_END);
    assert_int_equal(used, 0);
    assert_int_equal(rill_h1_parse(p, NULL, 0, &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_NONE);
    rill_h1_parser_free(p);
}

static const char *const valid_inputs[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /submit HTTP/1.1\r\nHost: a.example:8080\r\nContent-Length: 11\r\n"
    "Content-Type: text/plain\r\n\r\nhello world",
    "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=\"v\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
    "Checksum: abc\r\nX-Tail:  t \r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
    "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    "DELETE /d HTTP/1.0\r\n\r\n",
    "\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\n"
    "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
};

static void every_split_gives_the_same_transcript(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_inputs / sizeof *valid_inputs; i++) {
        const char *in = valid_inputs[i];
        size_t len = strlen(in);
        static struct transcript whole, piece;
        tr_run(RILL_H1_REQUEST, NULL, NULL, in, len, 0, true, &whole);
        assert_int_equal(whole.rc, 0);
        assert_int_equal(whole.consumed, len);
        assert_true(whole.heads >= 1);
        assert_int_equal(whole.heads, whole.ends);
        for (size_t step = 1; step <= len; step++) {
            tr_run(RILL_H1_REQUEST, NULL, NULL, in, len, step, true, &piece);
            if (strcmp(whole.text, piece.text) != 0)
                fail_msg("input %zu step %zu:\n%s\n%s", i, step, whole.text, piece.text);
            assert_int_equal(piece.rc, 0);
        }
    }
}

/* The request side of test_h1_response.c's one-pass check: Host and Expect are noted as the
 * field lines go by, whichever path takes them. */
#define INPUT(lit, e) {lit, sizeof(lit) - 1, e}
static void one_pass_fields_agree_with_the_careful_path(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        rill_h1_error err;
    } cases[] = {
        INPUT("GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: h2load nghttp2/1.52.0\r\n"
              "Accept: */*\r\nExpect: 100-continue\r\n\r\n"
              "POST /b HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\nexpect: x\r\n\r\nabc",
              RILL_H1_E_NONE),
        INPUT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", RILL_H1_E_MULTIPLE_HOST),
        INPUT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", RILL_H1_E_BAD_HOST),
        INPUT("GET / HTTP/1.1\r\nX: y\r\n\r\n", RILL_H1_E_MISSING_HOST),
        INPUT("GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n", RILL_H1_E_SPACE_BEFORE_COLON),
        INPUT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
              RILL_H1_E_LENGTH_AND_CHUNKED),
        INPUT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
              RILL_H1_E_BAD_TRANSFER_ENCODING),
        INPUT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1f" "b\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE),
    };
    static struct transcript whole;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr_same_at_every_cut(RILL_H1_REQUEST, NULL, NULL, cases[i].in, cases[i].len, &whole);
        if (whole.err != cases[i].err)
            fail_msg("case %zu: %s, want %s", i, rill_h1_error_text(whole.err),
                     rill_h1_error_text(cases[i].err));
        assert_int_equal(whole.rc != 0, cases[i].err != RILL_H1_E_NONE);
    }
}

/* Two-piece splits at every byte, where the parser's state machine is most exposed. */
static void chunked_with_trailers_split_at_every_byte(void **state)
{
    (void)state;
    const char *in = valid_inputs[2];
    size_t len = strlen(in);
    static struct transcript whole, split;
    tr_run(RILL_H1_REQUEST, NULL, NULL, in, len, 0, false, &whole);
    assert_non_null(strstr(whole.text, "B<helloabcdefghijklmnopqrstuvwxyz>"));
    assert_non_null(strstr(whole.text, "T[Checksum=abc;X-Tail=t;]E(POST)"));
    assert_int_equal(whole.trailers, 1);
    for (size_t cut = 0; cut <= len; cut++) {
        memset(&split, 0, sizeof split);
        rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
        tr_feed(p, in, cut, 0, &split);
        tr_feed(p, in + cut, len - cut, 0, &split);
        rill_h1_parser_free(p);
        if (strcmp(whole.text, split.text) != 0)
            fail_msg("cut %zu:\n%s\n%s", cut, whole.text, split.text);
    }
}

static void pipelined_requests_come_out_in_order(void **state)
{
    (void)state;
    static struct transcript t;
    const char *in = valid_inputs[3];
    tr_run(RILL_H1_REQUEST, NULL, NULL, in, strlen(in), 0, true, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.heads, 4);
    assert_int_equal(t.ends, 4);
    const char *a = strstr(t.text, "E(GET)");
    const char *b = strstr(t.text, "B<xyz>E(POST)");
    const char *c = strstr(t.text, "B<abc>E(PUT)");
    const char *d = strstr(t.text, "E(DELETE)");
    assert_true(a && b && c && d && a < b && b < c && c < d);
    /* HTTP/1.0 without keep-alive is not persistent, and needs no Host. */
    assert_non_null(strstr(t.text, "DELETE /d form=0 host= v1.0 body=0 cl=0 ka=0"));
}

static void head_is_reported_before_the_body_is_read(void **state)
{
    (void)state;
    const char req[] = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 4\r\n\r\nbody";
    const rill_h1_head *h;
    size_t used;
    rill_h1_parser *p = head_of(S(req), &h, &used);
    assert_int_equal(used, sizeof req - 1 - 4);
    assert_true(h->expect_continue);
    assert_false(h->expect_other);
    assert_int_equal(h->body, RILL_H1_BODY_LENGTH);
    assert_int_equal(h->content_length, 4);
    rill_h1_event ev;
    size_t more;
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)req + used, 4, &more, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_BODY);
    assert_ptr_equal(ev.data, (const uint8_t *)req + used); /* zero copy */
    assert_int_equal(ev.len, 4);
    assert_int_equal(rill_h1_parse(p, NULL, 0, &more, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_END);
    rill_h1_parser_free(p);

    const char old_client[] = "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
    p = head_of(old_client, sizeof old_client - 1, &h, &used);
    assert_false(h->expect_continue);
    rill_h1_parser_free(p);

    const char other[] = "GET / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n";
    p = head_of(S(other), &h, &used);
    assert_false(h->expect_continue);
    assert_true(h->expect_other);
    rill_h1_parser_free(p);
}

static void keep_alive_follows_version_and_connection(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        bool keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nConnection: Close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.9\r\nHost: h\r\n\r\n", true}, /* higher minor: 1.1 semantics */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const rill_h1_head *h;
        size_t used;
        rill_h1_parser *p = head_of(cases[i].req, strlen(cases[i].req), &h, &used);
        if (h->keep_alive != cases[i].keep_alive)
            fail_msg("case %zu: keep_alive %d", i, h->keep_alive);
        rill_h1_parser_free(p);
    }
}

static void duplicate_identical_lengths_count_once(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3 ,3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc",
    };
    for (size_t i = 0; i < 3; i++) {
        static struct transcript t;
        tr_run(RILL_H1_REQUEST, NULL, NULL, reqs[i], strlen(reqs[i]), 0, true, &t);
        assert_int_equal(t.rc, 0);
        assert_non_null(strstr(t.text, "body=1 cl=3"));
        assert_non_null(strstr(t.text, "B<abc>E(POST)"));
    }
}

static void target_forms_are_recognised(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        rill_h1_target_form form;
    } ok[] = {
        {"GET /p?x=1 HTTP/1.1", RILL_H1_TARGET_ORIGIN},
        {"GET https://example.com:8443/p HTTP/1.1", RILL_H1_TARGET_ABSOLUTE},
        {"CONNECT [::1]:443 HTTP/1.1", RILL_H1_TARGET_AUTHORITY},
        {"OPTIONS * HTTP/1.1", RILL_H1_TARGET_ASTERISK},
        {"OPTIONS /x HTTP/1.1", RILL_H1_TARGET_ORIGIN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char req[256];
        snprintf(req, sizeof req, "%s\r\nHost: h\r\n\r\n", ok[i].line);
        const rill_h1_head *h;
        size_t used;
        rill_h1_parser *p = head_of(req, strlen(req), &h, &used);
        assert_int_equal(h->target_form, ok[i].form);
        rill_h1_parser_free(p);
    }
}

/* Each shape must fail with exactly this reason, whole or byte by byte. */
static const struct bad {
    const char *in;
    rill_h1_error err;
} bad_requests[] = {
    /* framing conflicts */
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     RILL_H1_E_LENGTH_AND_CHUNKED},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     RILL_H1_E_LENGTH_AND_CHUNKED},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
     RILL_H1_E_CONFLICTING_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n", RILL_H1_E_CONFLICTING_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,\r\n\r\n", RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n",
     RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     RILL_H1_E_BAD_CONTENT_LENGTH},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     RILL_H1_E_UNKNOWN_CODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
     RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
     RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
     RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
     RILL_H1_E_BAD_TRANSFER_ENCODING},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", RILL_H1_E_BAD_TRANSFER_ENCODING},
    /* line syntax */
    {"GET / HTTP/1.1\nHost: h\r\n\r\n", RILL_H1_E_BARE_LF},
    {"GET / HTTP/1.1\r\nHost: h\n\r\n", RILL_H1_E_BARE_LF},
    {"GET / HTTP/1.1\r\nHost: h\r\n\n", RILL_H1_E_BARE_LF},
    {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", RILL_H1_E_BARE_CR},
    {"GET / HTTP/1.1\r\nX: a\rb\r\nHost: h\r\n\r\n", RILL_H1_E_BARE_CR},
    {"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BARE_CR},
    {"GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", RILL_H1_E_BARE_CR},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", RILL_H1_E_OBS_FOLD},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", RILL_H1_E_OBS_FOLD},
    {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", RILL_H1_E_OBS_FOLD},
    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", RILL_H1_E_SPACE_BEFORE_COLON},
    {"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", RILL_H1_E_SPACE_BEFORE_COLON},
    {"GET / HTTP/1.1\r\nHost: h\r\nX Y: z\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: h\r\n: z\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: h\r\nX(y): z\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: z\r\n\r\n", RILL_H1_E_BAD_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x0b\r\n\r\n", RILL_H1_E_BAD_FIELD_VALUE},
    /* request line */
    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_START_LINE},
    {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_START_LINE},
    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", RILL_H1_E_BAD_START_LINE},
    {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_START_LINE},
    {"GET /\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_START_LINE},
    {"GET\r\n\r\n", RILL_H1_E_BAD_START_LINE},
    {"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_METHOD},
    {"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_METHOD},
    {"GET / http/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_VERSION},
    {"GET / HTTP/1.10\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_VERSION},
    {"GET / HTTP/11\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_VERSION},
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", RILL_H1_E_VERSION_UNSUPPORTED},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", RILL_H1_E_VERSION_UNSUPPORTED},
    {"GET / HTTP/0.9\r\n\r\n", RILL_H1_E_VERSION_UNSUPPORTED},
    {"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    /* a fragment is never sent (RFC 9112 §3.2: no fragment in any target form) */
    {"GET /index.html#frag HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET /# HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET /a?q=1#f HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET http://h/a#f HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"CONNECT h#:443 HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET index.html HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"GET 1http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"CONNECT /path HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"CONNECT example.com:https HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    {"CONNECT http://example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", RILL_H1_E_BAD_TARGET},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", RILL_H1_E_MISSING_HOST},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", RILL_H1_E_MULTIPLE_HOST},
    {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", RILL_H1_E_MULTIPLE_HOST},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", RILL_H1_E_BAD_HOST},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", RILL_H1_E_BAD_HOST},
    {"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", RILL_H1_E_BAD_HOST},
};

static void smuggling_shapes_are_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_requests / sizeof *bad_requests; i++) {
        const char *in = bad_requests[i].in;
        size_t len = strlen(in);
        for (size_t step = 0; step <= 1; step++) {
            static struct transcript t;
            tr_run(RILL_H1_REQUEST, NULL, NULL, in, len, step, false, &t);
            if (t.err != bad_requests[i].err)
                fail_msg("case %zu (step %zu) '%s': got %d (%s), want %d", i, step, in, (int)t.err,
                         rill_h1_error_text(t.err), (int)bad_requests[i].err);
            assert_int_equal(t.rc, t.err == RILL_H1_E_UNKNOWN_CODING ||
                                           t.err == RILL_H1_E_VERSION_UNSUPPORTED
                                       ? RILL_ERR_UNSUPPORTED
                                       : RILL_ERR_PROTOCOL);
            assert_int_equal(t.heads, 0);
        }
    }
}

/* Chunk framing errors come after a valid head. */
static const struct bad bad_chunked_bodies[] = {
    {"z\r\n", RILL_H1_E_BAD_CHUNK_SIZE},
    {"\r\n", RILL_H1_E_BAD_CHUNK_SIZE},
    {"-1\r\n", RILL_H1_E_BAD_CHUNK_SIZE},
    {"0x5\r\n", RILL_H1_E_BAD_CHUNK_SIZE},
    {"5 \r\n", RILL_H1_E_BAD_CHUNK_SIZE},
    {"5\n", RILL_H1_E_BARE_LF},
    {"5\rx", RILL_H1_E_BARE_CR},
    {"10000000000000000\r\n", RILL_H1_E_CHUNK_TOO_BIG},
    {"3\r\nabcd\r\n", RILL_H1_E_BAD_CHUNK_END},
    {"3\r\nabc\n", RILL_H1_E_BAD_CHUNK_END},
    {"3\r\nabc\r\r", RILL_H1_E_BAD_CHUNK_END},
    {"3;a\x01\r\n", RILL_H1_E_BAD_CHUNK_EXT},
    {"3;a\nb\r\n", RILL_H1_E_BARE_LF},
    {"0\r\nT: a\nb\r\n\r\n", RILL_H1_E_BARE_LF},
    {"0\r\n folded\r\n\r\n", RILL_H1_E_OBS_FOLD},
};

static void bad_chunk_framing_is_rejected(void **state)
{
    (void)state;
    static char in[512];
    for (size_t i = 0; i < sizeof bad_chunked_bodies / sizeof *bad_chunked_bodies; i++) {
        int len = snprintf(in, sizeof in, "%s%s",
                           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                           bad_chunked_bodies[i].in);
        for (size_t step = 0; step <= 1; step++) {
            static struct transcript t;
            tr_run(RILL_H1_REQUEST, NULL, NULL, in, (size_t)len, step, false, &t);
            if (t.err != bad_chunked_bodies[i].err)
                fail_msg("case %zu (step %zu) '%s': got %s", i, step, bad_chunked_bodies[i].in,
                         rill_h1_error_text(t.err));
            assert_int_equal(t.rc, RILL_ERR_PROTOCOL);
            assert_int_equal(t.heads, 1);
            assert_int_equal(t.ends, 0);
        }
    }
}

static void nul_in_a_value_is_rejected(void **state)
{
    (void)state;
    const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    static struct transcript t;
    tr_run(RILL_H1_REQUEST, NULL, NULL, in, sizeof in - 1, 1, false, &t);
    assert_int_equal(t.err, RILL_H1_E_BAD_FIELD_VALUE);
    const char in2[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0: a\r\n\r\n";
    tr_run(RILL_H1_REQUEST, NULL, NULL, in2, sizeof in2 - 1, 0, false, &t);
    assert_int_equal(t.err, RILL_H1_E_BAD_FIELD_NAME);
    const char in3[] = "GET / HTTP/1.1\0\r\nHost: h\r\n\r\n";
    tr_run(RILL_H1_REQUEST, NULL, NULL, in3, sizeof in3 - 1, 0, false, &t);
    assert_int_equal(t.err, RILL_H1_E_BAD_VERSION);
    const char in4[] = "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n";
    tr_run(RILL_H1_REQUEST, NULL, NULL, in4, sizeof in4 - 1, 0, false, &t);
    assert_int_equal(t.err, RILL_H1_E_BAD_TARGET);
}

/* Values and targets are scanned 16 bytes at a time: put one bad byte at every offset of a long
 * value so both the vector blocks and the scalar tail see it. */
static void bad_bytes_are_found_at_every_offset(void **state)
{
    (void)state;
    static const uint8_t bad_value[] = {0x00, 0x01, 0x08, 0x0a, 0x0b, 0x0d, 0x1f, 0x7f};
    static const uint8_t good_value[] = {0x09, 0x20, 0x21, 0x7e, 0x80, 0xc3, 0xff};
    static char req[256];
    static struct transcript t;
    const char *head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    size_t hlen = strlen(head);
    for (size_t at = 1; at < 47; at++) { /* not 0 or 47: OWS at the ends is trimmed */
        for (size_t b = 0; b < sizeof bad_value + sizeof good_value; b++) {
            bool bad = b < sizeof bad_value;
            uint8_t c = bad ? bad_value[b] : good_value[b - sizeof bad_value];
            memcpy(req, head, hlen);
            memset(req + hlen, 'v', 48);
            req[hlen + at] = (char)c;
            memcpy(req + hlen + 48, "\r\n\r\n", 4);
            tr_run(RILL_H1_REQUEST, NULL, NULL, req, hlen + 52, 0, false, &t);
            if ((t.rc != 0) != bad)
                fail_msg("value byte 0x%02x at %zu: %s", c, at, rill_h1_error_text(t.err));
        }
    }
    for (size_t at = 1; at < 48; at++) {
        for (unsigned c = 0; c < 256; c++) {
            bool bad = c <= 0x20 || c >= 0x7f || c == '#';
            int n = snprintf(req, sizeof req, "GET /");
            memset(req + n, 'p', 48);
            req[n + at] = (char)c;
            static const char tail[] = " HTTP/1.1\r\nHost: h\r\n\r\n";
            memcpy(req + n + 48, tail, sizeof tail - 1);
            tr_run(RILL_H1_REQUEST, NULL, NULL, req, (size_t)n + 48 + sizeof tail - 1, 0, false, &t);
            if ((t.rc != 0) != bad)
                fail_msg("target byte 0x%02x at %zu: %s", c, at, rill_h1_error_text(t.err));
        }
    }
}

/* Checks the verdict on every prefix of in: PARTIAL before decide_at bytes, then want. */
static void classifies(const char *in, size_t decide_at, rill_h1_preface want)
{
    size_t len = strlen(in);
    for (size_t n = 0; n <= len; n++) {
        rill_h1_preface got = rill_h1_preface_classify((const uint8_t *)in, n);
        rill_h1_preface expect = n < decide_at ? RILL_H1_PREFACE_PARTIAL : want;
        if (got != expect)
            fail_msg("'%s' cut at %zu: verdict %d, want %d", in, n, (int)got, (int)expect);
    }
}

/* A cleartext port serving both versions: the HTTP/2 preface, an HTTP/1.x request (its first
 * line decides), or neither (RFC 9113 §3.4: GOAWAY). Decided as early as the bytes allow. */
static void first_bytes_pick_the_protocol(void **state)
{
    (void)state;
    classifies(RILL_H1_H2_PREFACE "\0\0\0\4", 24, RILL_H1_PREFACE_YES);
    classifies("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 16, RILL_H1_PREFACE_NO);
    classifies("GET / HTTP/1.0\n\n", 15, RILL_H1_PREFACE_NO);
    classifies("\r\n\r\nPOST /x HTTP/1.1\r\n", 22, RILL_H1_PREFACE_NO);
    classifies("PRI * HTTP/1.1\r\n", 16, RILL_H1_PREFACE_NO); /* an HTTP/1 request named PRI */
    /* requests HTTP/1.1 refuses itself, with a status: they stay HTTP/1 */
    classifies("INVALID / HTTP/1.1\r\n", 20, RILL_H1_PREFACE_NO);
    classifies("GET /a b HTTP/1.1\r\n", 19, RILL_H1_PREFACE_NO);
    classifies("GET / HTTP/2.0\r\n", 16, RILL_H1_PREFACE_NO); /* 505 */
    classifies("GET HTTP/1.1\r\n", 14, RILL_H1_PREFACE_NO);
    /* neither */
    classifies("INVALID CONNECTION PREFACE\r\n\r\n", 28, RILL_H1_PREFACE_INVALID);
    classifies("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 19, RILL_H1_PREFACE_INVALID);
    classifies("PRI * HTTP/2.0\r\n\r\nSM\r\n\rX", 24, RILL_H1_PREFACE_INVALID);
    classifies("PRI * HTTP/2.0\r\nX", 17, RILL_H1_PREFACE_INVALID);
    classifies("GET /\r\n", 7, RILL_H1_PREFACE_INVALID); /* HTTP/0.9 */
    classifies("GET / HTTP/1.1x\r\n", 17, RILL_H1_PREFACE_INVALID);
    classifies("GET / HTTP/1.1 \r\n", 17, RILL_H1_PREFACE_INVALID);
    classifies("GET\r\n", 4, RILL_H1_PREFACE_INVALID);
    classifies(" GET / HTTP/1.1\r\n", 1, RILL_H1_PREFACE_INVALID);
    classifies("GET\t/ HTTP/1.1\r\n", 4, RILL_H1_PREFACE_INVALID);
    classifies("\x16\x03\x01\x02\x00\x01", 1, RILL_H1_PREFACE_INVALID); /* TLS on the wrong port */
    classifies("\r\n\x01", 3, RILL_H1_PREFACE_INVALID);
    /* a long first line stays undecided until it ends */
    static char line[9000];
    memset(line, 'a', sizeof line);
    memcpy(line, "GET /", 5);
    memcpy(line + sizeof line - 12, " HTTP/1.1\r\n", 12);
    line[sizeof line - 1] = '\0';
    assert_int_equal(rill_h1_preface_classify((const uint8_t *)line, sizeof line - 2),
                     RILL_H1_PREFACE_PARTIAL);
    assert_int_equal(rill_h1_preface_classify((const uint8_t *)line, sizeof line - 1),
                     RILL_H1_PREFACE_NO);
}

static void errors_are_sticky(void **state)
{
    (void)state;
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    rill_h1_event ev;
    size_t used;
    const char bad[] = "GET / HTTP/1.1\r\nHost : h\r\n\r\n";
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)bad, sizeof bad - 1, &used, &ev),
                     RILL_ERR_PROTOCOL);
    const char good[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)good, sizeof good - 1, &used, &ev),
                     RILL_ERR_PROTOCOL);
    assert_int_equal(used, 0);
    assert_int_equal(rill_h1_parser_error(p), RILL_H1_E_SPACE_BEFORE_COLON);
    assert_int_equal(rill_h1_parse_eof(p, &ev), RILL_ERR_PROTOCOL);
    rill_h1_parser_reset(p);
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)good, sizeof good - 1, &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_HEAD);
    rill_h1_parser_free(p);
}

/* Builds "GET /aaaa... HTTP/1.1" whose request line (without CRLF) is exactly line_len long. */
static size_t long_line(char *out, size_t line_len)
{
    size_t path = line_len - strlen("GET  HTTP/1.1");
    size_t n = 0;
    memcpy(out, "GET /", 5);
    n = 5;
    memset(out + n, 'a', path - 1);
    n += path - 1;
    n += (size_t)sprintf(out + n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    return n;
}

/* The options' leading size (docs/ARCHITECTURE.md, "Public API conventions"): 0 or larger than
 * the library's struct is refused; an older, shorter struct gets the defaults for its tail. */
static void options_size_is_checked(void **state)
{
    (void)state;
    rill_h1_options opt;
    rill_h1_options_init(&opt);
    assert_int_equal(opt.size, sizeof opt);
    opt.size = 0;
    assert_null(rill_h1_parser_new(RILL_H1_REQUEST, &opt));
    opt.size = sizeof opt + 8;
    assert_null(rill_h1_parser_new(RILL_H1_REQUEST, &opt));
    opt.size = offsetof(rill_h1_options, max_body); /* an older caller: no max_body */
    opt.max_body = 1; /* beyond its size: ignored, the default (unlimited) applies */
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, &opt);
    assert_non_null(p);
    static const char req[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd";
    size_t used, off = 0;
    rill_h1_event ev;
    bool ended = false;
    while (!ended) {
        assert_int_equal(rill_h1_parse(p, (const uint8_t *)req + off, sizeof req - 1 - off, &used,
                                       &ev), RILL_OK);
        off += used;
        ended = ev.type == RILL_H1_EV_END;
        assert_true(ended || ev.type != RILL_H1_EV_NONE);
    }
    rill_h1_parser_free(p);
}

static void limits_give_distinguishable_errors(void **state)
{
    (void)state;
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_request_line = 100;
    lim.max_head_size = 300;
    lim.max_fields = 4;
    static char buf[4096];
    static struct transcript t;
    for (size_t step = 0; step <= 1; step++) {
        size_t n = long_line(buf, 100);
        tr_run(RILL_H1_REQUEST, &lim, NULL, buf, n, step, false, &t);
        assert_int_equal(t.rc, 0);
        assert_int_equal(t.heads, 1);
        n = long_line(buf, 101);
        tr_run(RILL_H1_REQUEST, &lim, NULL, buf, n, step, false, &t);
        assert_int_equal(t.err, RILL_H1_E_URI_TOO_LONG);
        assert_int_equal(t.rc, RILL_ERR_LIMIT);
        assert_int_equal(rill_h1_error_status(t.err), 414);

        /* Head size: exactly at the limit passes, one more byte fails with 431. */
        const char *prefix = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
        size_t fixed = strlen(prefix) + 4; /* value CRLF + final CRLF */
        size_t vlen = 300 - fixed;
        n = (size_t)sprintf(buf, "%s", prefix);
        memset(buf + n, 'v', vlen);
        n += vlen;
        n += (size_t)sprintf(buf + n, "\r\n\r\n");
        tr_run(RILL_H1_REQUEST, &lim, NULL, buf, n, step, false, &t);
        assert_int_equal(t.rc, 0);
        n = (size_t)sprintf(buf, "%s", prefix);
        memset(buf + n, 'v', vlen + 1);
        n += vlen + 1;
        n += (size_t)sprintf(buf + n, "\r\n\r\n");
        tr_run(RILL_H1_REQUEST, &lim, NULL, buf, n, step, false, &t);
        assert_int_equal(t.err, RILL_H1_E_HEAD_TOO_LARGE);
        assert_int_equal(rill_h1_error_status(t.err), 431);
        /* Even without a line end the parser stops once the head cannot fit. */
        tr_run(RILL_H1_REQUEST, &lim, NULL, buf, 301, step, false, &t);
        assert_int_equal(t.err, RILL_H1_E_HEAD_TOO_LARGE);

        const char four[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        tr_run(RILL_H1_REQUEST, &lim, NULL, four, sizeof four - 1, step, false, &t);
        assert_int_equal(t.rc, 0);
        const char five[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        tr_run(RILL_H1_REQUEST, &lim, NULL, five, sizeof five - 1, step, false, &t);
        assert_int_equal(t.err, RILL_H1_E_TOO_MANY_FIELDS);
        assert_int_equal(rill_h1_error_status(t.err), 431);
    }
}

static void chunk_extension_and_trailer_limits(void **state)
{
    (void)state;
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_chunk_ext = 8;
    lim.max_trailer_size = 20;
    lim.max_trailer_fields = 2;
    static struct transcript t;
    const char *head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    static char buf[512];
    struct {
        const char *body;
        rill_h1_error err;
    } cases[] = {
        {"1;abcdefg\r\nx\r\n0\r\n\r\n", RILL_H1_E_NONE}, /* 8 bytes of extension */
        {"1;abcdefgh\r\nx\r\n0\r\n\r\n", RILL_H1_E_CHUNK_EXT_TOO_LONG},
        {"1  ;abcde\r\nx\r\n0\r\n\r\n", RILL_H1_E_NONE},
        {"1   ;abcde\r\nx\r\n0\r\n\r\n", RILL_H1_E_CHUNK_EXT_TOO_LONG},
        {"1         ;\r\nx\r\n0\r\n\r\n", RILL_H1_E_CHUNK_EXT_TOO_LONG},
        {"1;\r\nx\r\n0\r\n\r\n", RILL_H1_E_NONE},
        {"0\r\nA: 1\r\nB: 2\r\n\r\n", RILL_H1_E_NONE},
        {"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", RILL_H1_E_TRAILERS_TOO_LARGE},
        {"0\r\nA: 123456789012345\r\n\r\n", RILL_H1_E_TRAILERS_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int n = snprintf(buf, sizeof buf, "%s%s", head, cases[i].body);
        for (size_t step = 0; step <= 1; step++) {
            tr_run(RILL_H1_REQUEST, &lim, NULL, buf, (size_t)n, step, false, &t);
            if (t.err != cases[i].err)
                fail_msg("case %zu step %zu: %s", i, step, rill_h1_error_text(t.err));
            if (t.err == RILL_H1_E_NONE)
                assert_int_equal(t.ends, 1);
        }
    }
}

static void body_limit_answers_413(void **state)
{
    (void)state;
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_body = 10;
    static struct transcript t;
    const char ok[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    tr_run(RILL_H1_REQUEST, &lim, NULL, ok, sizeof ok - 1, 0, false, &t);
    assert_int_equal(t.rc, 0);
    const char big[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
    tr_run(RILL_H1_REQUEST, &lim, NULL, big, sizeof big - 1, 0, false, &t);
    assert_int_equal(t.err, RILL_H1_E_BODY_TOO_LARGE);
    assert_int_equal(t.rc, RILL_ERR_TOO_BIG);
    assert_int_equal(rill_h1_error_status(t.err), 413);
    const char chunked[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n";
    tr_run(RILL_H1_REQUEST, &lim, NULL, chunked, sizeof chunked - 1, 1, false, &t);
    assert_int_equal(t.err, RILL_H1_E_BODY_TOO_LARGE);
    assert_non_null(strstr(t.text, "B<012345>")); /* the first chunk was within the limit */
}

static void eof_between_and_inside_messages(void **state)
{
    (void)state;
    static struct transcript t;
    const char whole[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n\r\n";
    tr_run(RILL_H1_REQUEST, NULL, NULL, whole, sizeof whole - 1, 0, true, &t);
    assert_int_equal(t.rc, 0);
    const char partial[] = "GET / HTTP/1.1\r\nHo";
    tr_run(RILL_H1_REQUEST, NULL, NULL, partial, sizeof partial - 1, 0, true, &t);
    assert_int_equal(t.err, RILL_H1_E_INCOMPLETE);
    const char body[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab";
    tr_run(RILL_H1_REQUEST, NULL, NULL, body, sizeof body - 1, 0, true, &t);
    assert_int_equal(t.err, RILL_H1_E_INCOMPLETE);
    assert_int_equal(t.rc, RILL_ERR_PROTOCOL);
    const char chunked[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n";
    tr_run(RILL_H1_REQUEST, NULL, NULL, chunked, sizeof chunked - 1, 0, true, &t);
    assert_int_equal(t.err, RILL_H1_E_INCOMPLETE);
    tr_run(RILL_H1_REQUEST, NULL, NULL, "", 0, 0, true, &t);
    assert_int_equal(t.rc, 0);
}

static void every_error_maps_to_an_http_status(void **state)
{
    (void)state;
    const char *seen[64] = {0};
    for (int e = RILL_H1_E_BAD_START_LINE; e <= RILL_H1_E_INCOMPLETE; e++) {
        int s = rill_h1_error_status((rill_h1_error)e);
        assert_true(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
        const char *text = rill_h1_error_text((rill_h1_error)e);
        for (int prev = 1; prev < e; prev++)
            assert_string_not_equal(text, seen[prev]);
        seen[e] = text;
    }
    assert_int_equal(rill_h1_error_status(RILL_H1_E_NONE), 0);
    assert_int_equal(rill_h1_error_status(RILL_H1_E_UNKNOWN_CODING), 501);
    assert_int_equal(rill_h1_error_status(RILL_H1_E_VERSION_UNSUPPORTED), 505);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    rill_h1_options lim;
    rill_h1_options_init(&lim);
    lim.max_fields = 0;
    assert_null(rill_h1_parser_new(RILL_H1_REQUEST, &lim));
    assert_null(rill_h1_parser_new((rill_h1_role)7, NULL));
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    rill_h1_event ev;
    size_t used;
    assert_int_equal(rill_h1_parse(p, NULL, 3, &used, &ev), RILL_ERR_INVALID_ARG);
    rill_h1_parser_free(p);
    rill_h1_parser_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_get_yields_every_part),
        cmocka_unit_test(every_split_gives_the_same_transcript),
        cmocka_unit_test(chunked_with_trailers_split_at_every_byte),
        cmocka_unit_test(one_pass_fields_agree_with_the_careful_path),
        cmocka_unit_test(pipelined_requests_come_out_in_order),
        cmocka_unit_test(head_is_reported_before_the_body_is_read),
        cmocka_unit_test(keep_alive_follows_version_and_connection),
        cmocka_unit_test(duplicate_identical_lengths_count_once),
        cmocka_unit_test(target_forms_are_recognised),
        cmocka_unit_test(smuggling_shapes_are_rejected),
        cmocka_unit_test(bad_chunk_framing_is_rejected),
        cmocka_unit_test(nul_in_a_value_is_rejected),
        cmocka_unit_test(bad_bytes_are_found_at_every_offset),
        cmocka_unit_test(first_bytes_pick_the_protocol),
        cmocka_unit_test(errors_are_sticky),
        cmocka_unit_test(limits_give_distinguishable_errors),
        cmocka_unit_test(chunk_extension_and_trailer_limits),
        cmocka_unit_test(body_limit_answers_413),
        cmocka_unit_test(eof_between_and_inside_messages),
        cmocka_unit_test(every_error_maps_to_an_http_status),
        cmocka_unit_test(bad_arguments_are_refused),
        cmocka_unit_test(options_size_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
