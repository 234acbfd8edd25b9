/* RFC 9113 section 8 (HTTP semantics) and RFC 8441, server role: malformed requests become stream
 * PROTOCOL_ERRORs, well-formed ones reach the application; responses, 1xx, trailers, 431. */
#include "h2_test_util.h"

/* Feeds one request header block (END_HEADERS | flags) built from NULL-terminated pairs and
 * returns the session's output. */
static void send_request(tsess *t, uint32_t sid, uint8_t flags, const char *first, ...)
{
    tbuf blk = {0}, b = {0};
    va_list ap;
    va_start(ap, first);
    for (const char *n = first; n; n = va_arg(ap, const char *))
        hp_lit(&blk, n, va_arg(ap, const char *));
    va_end(ap);
    tf_headers_block(&b, sid, (uint8_t)(flags | 0x4), &blk);
    feed_drain(t, &b);
    tb_free(&blk);
    tb_free(&b);
}

static void malformed(uint8_t flags, const char *first, ...)
{
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf blk = {0}, b = {0};
    va_list ap;
    va_start(ap, first);
    for (const char *n = first; n; n = va_arg(ap, const char *))
        hp_lit(&blk, n, va_arg(ap, const char *));
    va_end(ap);
    tf_headers_block(&b, 1, (uint8_t)(flags | 0x4), &blk);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    assert_null(rec_find(&t.rec, EV_HEADERS, 1));
    /* the connection stays usable */
    tf_get(&b, 3, 0x1);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 3));
    tb_free(&blk);
    tb_free(&b);
    tsess_free(&t);
}

#define REQ ":method", "GET", ":scheme", "https", ":path", "/", ":authority", "a.example"

static void s8_2_field_names_and_values(void **state)
{
    (void)state;
    malformed(1, REQ, "X-Upper", "1", NULL);
    malformed(1, REQ, "bad name", "1", NULL);
    malformed(1, REQ, "bad:colon", "1", NULL);
    malformed(1, REQ, "x-a", "new\nline", NULL);
    malformed(1, REQ, "x-a", "carriage\rreturn", NULL);
    malformed(1, REQ, "x-a", " leading", NULL);
    malformed(1, REQ, "x-a", "trailing\t", NULL);
    malformed(1, REQ, "", "empty name", NULL);
    malformed(1, REQ, "x-\x01", "ctl", NULL);
}

static void s8_2_nul_in_value(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf blk = {0}, b = {0};
    hp_block(&blk, REQ, NULL);
    hp_lit_n(&blk, "x-a", "a\0b", 3);
    tf_headers_block(&b, 1, 0x5, &blk);
    feed_drain(&t, &b);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    tb_free(&blk);
    tb_free(&b);
    tsess_free(&t);
}

static void s8_2_2_connection_specific_fields(void **state)
{
    (void)state;
    malformed(1, REQ, "connection", "keep-alive", NULL);
    malformed(1, REQ, "keep-alive", "timeout=5", NULL);
    malformed(1, REQ, "proxy-connection", "close", NULL);
    malformed(1, REQ, "transfer-encoding", "chunked", NULL);
    malformed(1, REQ, "upgrade", "websocket", NULL);
    malformed(1, REQ, "te", "gzip", NULL);
}

static void s8_2_2_te_trailers_allowed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 1, REQ, "te", "trailers", NULL);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    tsess_free(&t);
}

static void s8_3_pseudo_header_rules(void **state)
{
    (void)state;
    /* missing required */
    malformed(1, ":scheme", "https", ":path", "/", NULL);
    malformed(1, ":method", "GET", ":path", "/", NULL);
    malformed(1, ":method", "GET", ":scheme", "https", NULL);
    /* empty :path */
    malformed(1, ":method", "GET", ":scheme", "https", ":path", "", NULL);
    /* http(s) path must be absolute or * for OPTIONS */
    malformed(1, ":method", "GET", ":scheme", "https", ":path", "x", NULL);
    malformed(1, ":method", "GET", ":scheme", "https", ":path", "*", NULL);
    /* duplicated */
    malformed(1, REQ, ":path", "/again", NULL);
    /* unknown and response-only */
    malformed(1, REQ, ":foo", "bar", NULL);
    malformed(1, REQ, ":status", "200", NULL);
    /* after a regular field */
    malformed(1, ":method", "GET", ":scheme", "https", "x-a", "1", ":path", "/", NULL);
    /* :protocol without the setting */
    malformed(1, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/chat",
              ":authority", "a.example", NULL);
}

static void s8_3_options_star_accepted(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 1, ":method", "OPTIONS", ":scheme", "https", ":path", "*", ":authority", "a", NULL);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    tsess_free(&t);
}

static void s8_3_1_host_must_agree_with_authority(void **state)
{
    (void)state;
    malformed(1, REQ, "host", "b.example", NULL);
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 1, REQ, "host", "a.example", NULL);
    send_request(&t, 3, 1, ":method", "GET", ":scheme", "https", ":path", "/", "host", "only.example", NULL);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 3));
    tsess_free(&t);
}

static void s8_1_1_content_length_must_match_data(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    /* more DATA than announced */
    send_request(&t, 1, 0, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "3", NULL);
    tf_data(&b, 1, 0, "abcd", 4);
    feed_drain(&t, &b);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    assert_int_equal(t.rec.body[1].len, 0); /* the excess never reached the app */
    /* less DATA than announced */
    send_request(&t, 3, 0, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "3", NULL);
    tf_data(&b, 3, 0x1, "ab", 2);
    feed_drain(&t, &b);
    expect_rst(&t.out, 3, RILL_H2_PROTOCOL_ERROR);
    assert_null(rec_find(&t.rec, EV_END, 3));
    /* split across frames, exact: fine */
    send_request(&t, 5, 0, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "5", NULL);
    tf_data(&b, 5, 0, "ab", 2);
    tf_data(&b, 5, 0x1, "cde", 3);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_END, 5));
    /* END_STREAM on the HEADERS with a non-zero content-length */
    send_request(&t, 7, 1, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "1", NULL);
    expect_rst(&t.out, 7, RILL_H2_PROTOCOL_ERROR);
    /* differing repeated values */
    send_request(&t, 9, 0, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "1",
                 "content-length", "2", NULL);
    expect_rst(&t.out, 9, RILL_H2_PROTOCOL_ERROR);
    send_request(&t, 11, 0, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "1x", NULL);
    expect_rst(&t.out, 11, RILL_H2_PROTOCOL_ERROR);
    /* padding does not count toward content-length */
    send_request(&t, 13, 0, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "2", NULL);
    uint8_t p[] = {3, 'h', 'i', 0, 0, 0};
    tf_frame(&b, RILL_H2_DATA, 0x9, 13, p, sizeof p);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_END, 13));
    tb_free(&b);
    tsess_free(&t);
}

static void s8_1_trailers(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    send_request(&t, 1, 0, ":method", "POST", ":scheme", "https", ":path", "/", NULL);
    tf_data(&b, 1, 0, "body", 4);
    hp_block(&blk, "x-checksum", "abc", NULL);
    tf_headers_block(&b, 1, 0x5, &blk);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    const tevent *e = &t.rec.ev[t.rec.n - 2];
    assert_int_equal(e->kind, EV_HEADERS);
    assert_int_equal(e->other, RILL_H2_HEADERS_TRAILERS);
    assert_true(ev_has(e, "x-checksum: abc"));
    assert_int_equal(t.rec.ev[t.rec.n - 1].kind, EV_END);
    /* trailers without END_STREAM are malformed */
    send_request(&t, 3, 0, ":method", "POST", ":scheme", "https", ":path", "/", NULL);
    tf_headers_block(&b, 3, 0x4, &blk);
    feed_drain(&t, &b);
    expect_rst(&t.out, 3, RILL_H2_PROTOCOL_ERROR);
    /* pseudo-headers in trailers are malformed */
    send_request(&t, 5, 0, ":method", "POST", ":scheme", "https", ":path", "/", NULL);
    blk.len = 0;
    hp_block(&blk, ":path", "/", NULL);
    tf_headers_block(&b, 5, 0x5, &blk);
    feed_drain(&t, &b);
    expect_rst(&t.out, 5, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

/* A field the sender vouches for (RILL_HEADER_VALID) is not checked again on submit; the same
 * field without the flag is refused (section 8.2.1: a CR in a value). */
static void vouched_fields_skip_the_per_byte_check(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 0, ":method", "GET", ":scheme", "https", ":path", "/", NULL);
    send_request(&t, 3, 0, ":method", "GET", ":scheme", "https", ":path", "/", NULL);
    rill_header bad[] = {F(":status", "200"), F("x-bad", "a\rb")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, bad, 2, RILL_H2_FLAG_END_STREAM),
                     RILL_ERR_INVALID_ARG);
    bad[1].flags = RILL_HEADER_VALID; /* the caller's word: the engine takes it */
    assert_int_equal(rill_h2_submit_response(t.s, 3, bad, 2, RILL_H2_FLAG_END_STREAM), 0);
    /* pseudo-header rules still apply to vouched fields */
    rill_header late[] = {F("x-a", "1"), F(":status", "200")};
    late[0].flags = late[1].flags = RILL_HEADER_VALID;
    assert_int_equal(rill_h2_submit_response(t.s, 1, late, 2, RILL_H2_FLAG_END_STREAM),
                     RILL_ERR_INVALID_ARG);
    tsess_free(&t);
}

/* Every rule a response's fields must keep (section 8.3.2 and 8.2.2), vouched for or not: each
 * bad list is refused and leaves the stream able to take a good response. */
static void response_field_rules(void **state)
{
    (void)state;
#define L(...) {__VA_ARGS__}
    static const struct {
        const char *fields[8]; /* name, value pairs, NULL-ended */
        bool ok;
    } cases[] = {
        {L(":status", "200", "content-length", "5", "x-a", "1", NULL), true},
        {L(":status", "204", "host", "a", NULL), true},
        {L(":status", "103", "link", "</a>", NULL), true},
        {L(":status", "200", "priority", "u=1", "te", "x", NULL), false},
        {L(":status", "200", "te", "trailers", NULL), false},
        {L(":status", "101", NULL), false},
        {L(":status", "099", NULL), false},
        {L(":status", "20", NULL), false},
        {L(":status", "2x0", NULL), false},
        {L(":status", "200", ":status", "200", NULL), false},
        {L(":status", "200", ":path", "/", NULL), false},
        {L("x-a", "1", ":status", "200", NULL), false},
        {L(":scheme", "https", NULL), false},
        {L("server", "x", NULL), false},
        {L(":status", "200", "connection", "close", NULL), false},
        {L(":status", "200", "keep-alive", "1", NULL), false},
        {L(":status", "200", "upgrade", "h2c", NULL), false},
        {L(":status", "200", "proxy-connection", "x", NULL), false},
        {L(":status", "200", "transfer-encoding", "chunked", NULL), false},
        {L(":status", "200", "content-length", "5x", NULL), false},
        {L(":status", "200", "content-length", "5", "content-length", "6", NULL), false},
        {L(":status", "200", "content-length", "5, 5", NULL), true},
        {L(":status", "200", "host", "a", "host", "b", NULL), false},
        {L(":status", "200", "Upper", "1", NULL), false},
    };
#undef L
    for (int vouched = 0; vouched < 2; vouched++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            tsess t;
            tsess_start(&t, RILL_H2_SERVER, NULL);
            send_request(&t, 1, 0, ":method", "GET", ":scheme", "https", ":path", "/", NULL);
            rill_header f[4];
            size_t n = 0;
            for (; cases[c].fields[2 * n]; n++) {
                const char *name = cases[c].fields[2 * n], *value = cases[c].fields[2 * n + 1];
                f[n] = (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value,
                                     strlen(value), vouched && strcmp(name, "Upper") ? RILL_HEADER_VALID : 0};
            }
            int rc = rill_h2_submit_response(t.s, 1, f, n, 0);
            if (cases[c].ok != (rc == 0))
                fail_msg("case %zu (vouched %d): rc %d", c, vouched, rc);
            if (rc != 0) {
                rill_header ok[] = {{(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0}};
                assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 1, RILL_H2_FLAG_END_STREAM), 0);
            }
            tsess_free(&t);
        }
}

/* An invalid field the peer puts in the dynamic table is refused when it arrives and every time a
 * later request refers to it by index; a valid one referred to by index passes (the decoder
 * checks entries once and marks their references). */
static void invalid_field_in_the_table_stays_refused(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    static const uint8_t bad[] = {0x40, 5, 'x', '-', 'b', 'a', 'd', 3, 'o', 'k', ' '};
    static const uint8_t good[] = {0x40, 5, 'x', '-', 'g', 'o', 'd', 2, 'o', 'k'};
    tb_put(&blk, good, sizeof good); /* dynamic index 63 after the next one */
    tb_put(&blk, bad, sizeof bad);   /* dynamic index 62: newest */
    tf_headers_block(&b, 1, 0x5, &blk);
    feed_drain(&t, &b);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    for (uint32_t sid = 3; sid <= 5; sid += 2) { /* the bad entry by reference, twice */
        blk.len = 0;
        hp_block(&blk, GET_FIELDS, NULL);
        tb_byte(&blk, 0x80 | 62);
        tf_headers_block(&b, sid, 0x5, &blk);
        feed_drain(&t, &b);
        expect_rst(&t.out, sid, RILL_H2_PROTOCOL_ERROR);
    }
    blk.len = 0; /* the good entry by reference */
    hp_block(&blk, GET_FIELDS, NULL);
    tb_byte(&blk, 0x80 | 63);
    tf_headers_block(&b, 7, 0x5, &blk);
    feed_drain(&t, &b);
    assert_null(find_frame(&t.out, RILL_H2_RST_STREAM, 7));
    const tevent *e = rec_find(&t.rec, EV_HEADERS, 7);
    assert_non_null(e);
    assert_true(ev_has(e, "x-god: ok"));
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s8_1_response_informational_final_trailers(void **state)
{
    (void)state;
    tsess t;
    tdec d = {0};
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 0, ":method", "POST", ":scheme", "https", ":path", "/", "expect", "100-continue", NULL);
    rill_header i100[] = {F(":status", "100")};
    rill_header i103[] = {F(":status", "103"), F("link", "</a.css>; rel=preload")};
    rill_header fin[] = {F(":status", "200"), F("content-type", "text/plain")};
    rill_header tr[] = {F("x-done", "yes")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, i100, 1, RILL_H2_FLAG_END_STREAM), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h2_submit_response(t.s, 1, i100, 1, 0), 0);
    assert_int_equal(rill_h2_submit_response(t.s, 1, i103, 2, 0), 0);
    /* no DATA before the final response */
    assert_int_equal(rill_h2_submit_data(t.s, 1, (const uint8_t *)"x", 1, 0, NULL), RILL_ERR_STATE);
    assert_int_equal(rill_h2_submit_response(t.s, 1, fin, 2, 0), 0);
    assert_int_equal(rill_h2_submit_response(t.s, 1, fin, 2, 0), RILL_ERR_STATE);
    assert_int_equal(rill_h2_submit_data(t.s, 1, (const uint8_t *)"hello", 5, 0, (void *)7), 0);
    assert_int_equal(rill_h2_submit_trailers(t.s, 1, tr, 1), 0);
    drain(t.s, &t.out);
    uint32_t sids[8];
    uint8_t types[8];
    char *texts[8];
    size_t n = tdec_all(&d, &t.out, sids, types, texts, 8);
    assert_int_equal(n, 4);
    assert_string_equal(texts[0], ":status: 100\n");
    assert_string_equal(texts[1], ":status: 103\nlink: </a.css>; rel=preload\n");
    assert_string_equal(texts[2], ":status: 200\ncontent-type: text/plain\n");
    assert_string_equal(texts[3], "x-done: yes\n");
    /* order on the wire: 100, 103, 200, DATA, trailers(END_STREAM) */
    size_t hi = 0;
    int order[8] = {0};
    for (size_t i = 0; i < t.out.n && hi < 8; i++)
        if (t.out.f[i].type == RILL_H2_HEADERS || t.out.f[i].type == RILL_H2_DATA)
            order[hi++] = t.out.f[i].type * 10 + (t.out.f[i].flags & 1);
    assert_int_equal(hi, 5);
    assert_int_equal(order[3], RILL_H2_DATA * 10);
    assert_int_equal(order[4], RILL_H2_HEADERS * 10 + 1);
    /* the buffer was released once written */
    const tevent *rel = rec_find(&t.rec, EV_RELEASED, 1);
    assert_non_null(rel);
    assert_int_equal(rel->other, 7);
    tdec_texts_free(texts, n);
    tdec_free(&d);
    tsess_free(&t);
}

static void s8_1_no_body_for_head_204_304(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 1, ":method", "HEAD", ":scheme", "https", ":path", "/", NULL);
    send_request(&t, 3, 1, REQ, NULL);
    rill_header ok[] = {F(":status", "200"), F("content-length", "42")};
    rill_header nc[] = {F(":status", "204")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 2, 0), 0);
    assert_int_equal(rill_h2_submit_response(t.s, 3, nc, 1, 0), 0);
    drain(t.s, &t.out);
    const tframe *h1 = find_frame(&t.out, RILL_H2_HEADERS, 1), *h3 = find_frame(&t.out, RILL_H2_HEADERS, 3);
    assert_non_null(h1);
    assert_non_null(h3);
    assert_true(h1->flags & 1); /* END_STREAM forced */
    assert_true(h3->flags & 1);
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    tsess_free(&t);
}

static void enable_connect(rill_h2_options *o) { o->local.enable_connect_protocol = 1; }

/* :path carries the same origin-form target as an HTTP/1.1 request line: visible ASCII, no '#'
 * (section 8.3.1; one rule for both, so a proxy never forwards what HTTP/1.1 would refuse). */
static void s8_3_1_path_characters(void **state)
{
    (void)state;
    static const char *const bad[] = {"/a b.txt", "/a\tb", "/a#frag", "/#", "/?q#f", "/a\x01",
                                      "/a\x7f", "/caf\xc3\xa9", "/\x80", "/a\x0bb",
                                      "/0123456789abcdef0123 x", "/0123456789abcdef#"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        malformed(1, ":method", "GET", ":scheme", "https", ":path", bad[i], ":authority", "a", NULL);
    /* the same rule for the path of an extended CONNECT */
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, enable_connect);
    send_request(&t, 1, 0, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https",
                 ":path", "/chat room", ":authority", "a.example", NULL);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    assert_null(rec_find(&t.rec, EV_HEADERS, 1));
    tsess_free(&t);
    /* every visible ASCII byte but '#' is fine, escaped or not */
    static const char *const good[] = {"/a%20b.txt", "/a?x=1&y=%7E;z", "/!$&'()*+,;=:@-._~",
                                       "/\"<>\\^`{|}", "//double//slash",
                                       "/0123456789abcdef0123?x"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        tsess_start(&t, RILL_H2_SERVER, NULL);
        send_request(&t, 1, 1, ":method", "GET", ":scheme", "https", ":path", good[i], ":authority",
                     "a", NULL);
        expect_no_error(&t.out);
        assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
        tsess_free(&t);
    }
}

static void rfc8441_extended_connect(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, enable_connect);
    send_request(&t, 1, 0, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path",
                 "/chat", ":authority", "a.example", "sec-websocket-version", "13", NULL);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    rill_header ok[] = {F(":status", "200")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 1, 0), 0);
    /* the tunnel carries bytes both ways with no content-length rules */
    tbuf b = {0};
    tf_data(&b, 1, 0, "frame1", 6);
    tf_data(&b, 1, 0, "frame2", 6);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.body[1].len, 12);
    assert_int_equal(rill_h2_submit_data(t.s, 1, (const uint8_t *)"pong", 4, 0, NULL), 0);
    drain(t.s, &t.out);
    assert_non_null(find_frame(&t.out, RILL_H2_DATA, 1));
    /* END_STREAM is the orderly close of one direction */
    tf_data(&b, 1, 0x1, "", 0);
    feed_drain(&t, &b);
    assert_non_null(rec_find(&t.rec, EV_END, 1));
    assert_int_equal(rill_h2_submit_data(t.s, 1, NULL, 0, RILL_H2_FLAG_END_STREAM, NULL), 0);
    drain(t.s, &t.out);
    assert_int_equal(t.rec.close_code[1], RILL_H2_NO_ERROR);
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    /* an abort is RST_STREAM(CANCEL) */
    send_request(&t, 3, 0, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path",
                 "/chat", ":authority", "a.example", NULL);
    assert_int_equal(rill_h2_submit_response(t.s, 3, ok, 1, 0), 0);
    tf_rst(&b, 3, RILL_H2_CANCEL);
    feed_drain(&t, &b);
    assert_int_equal(t.rec.close_code[3], RILL_H2_CANCEL);
    /* :protocol needs :scheme, :path and :authority */
    send_request(&t, 5, 0, ":method", "CONNECT", ":protocol", "websocket", ":authority", "a.example", NULL);
    expect_rst(&t.out, 5, RILL_H2_PROTOCOL_ERROR);
    /* :protocol with another method */
    send_request(&t, 7, 0, ":method", "GET", ":protocol", "websocket", ":scheme", "https", ":path", "/",
                 ":authority", "a.example", NULL);
    expect_rst(&t.out, 7, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s8_5_classic_connect(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 0, ":method", "CONNECT", ":authority", "db.example:5432", NULL);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    tsess_free(&t);
    malformed(0, ":method", "CONNECT", ":authority", "db.example:5432", ":path", "/", NULL);
    malformed(0, ":method", "CONNECT", ":authority", "db.example:5432", ":scheme", "https", NULL);
    malformed(0, ":method", "CONNECT", NULL);
}

static void small_header_list(rill_h2_options *o) { o->local.max_header_list_size = 200; }

static void s10_5_1_header_list_too_large_answers_431(void **state)
{
    (void)state;
    tsess t;
    tdec d = {0};
    tsess_start(&t, RILL_H2_SERVER, small_header_list);
    tbuf blk = {0}, b = {0};
    hp_block(&blk, REQ, NULL);
    static char big[300];
    memset(big, 'v', sizeof big);
    hp_lit_n(&blk, "x-big", big, sizeof big);
    tf_headers_block(&b, 1, 0x5, &blk);
    assert_true(feed_drain(&t, &b) >= 0);
    assert_null(find_frame(&t.out, RILL_H2_GOAWAY, 0));
    assert_null(rec_find(&t.rec, EV_HEADERS, 1));
    uint32_t sids[4];
    uint8_t types[4];
    char *texts[4];
    size_t n = tdec_all(&d, &t.out, sids, types, texts, 4);
    assert_int_equal(n, 1);
    assert_string_equal(texts[0], ":status: 431\n");
    assert_true(find_frame(&t.out, RILL_H2_HEADERS, 1)->flags & 1);
    tdec_texts_free(texts, n);
    /* the connection lives on */
    tf_get(&b, 3, 0x1);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 3));
    tb_free(&blk);
    tb_free(&b);
    tdec_free(&d);
    tsess_free(&t);
}

static void large_response_headers_span_continuations(void **state)
{
    (void)state;
    tsess t;
    tdec d = {0};
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 1, REQ, NULL);
    static char big[60000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + (i * 7) % 26);
    rill_header f[] = {F(":status", "200"), {(const uint8_t *)"x-big", 5, (const uint8_t *)big, sizeof big, 0}};
    assert_int_equal(rill_h2_submit_response(t.s, 1, f, 2, RILL_H2_FLAG_END_STREAM), 0);
    drain(t.s, &t.out);
    assert_true(count_frames(&t.out, RILL_H2_CONTINUATION) >= 2);
    for (size_t i = 0; i < t.out.n; i++)
        assert_true(t.out.f[i].len <= 16384);
    uint32_t sids[4];
    uint8_t types[4];
    char *texts[4];
    size_t n = tdec_all(&d, &t.out, sids, types, texts, 4);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(texts[0]), strlen(":status: 200\nx-big: \n") + sizeof big);
    assert_memory_equal(texts[0] + strlen(":status: 200\nx-big: "), big, sizeof big);
    tdec_texts_free(texts, n);
    tdec_free(&d);
    tsess_free(&t);
}

static void rfc9218_priority_header_parsed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    send_request(&t, 1, 1, REQ, "priority", "u=5, i", NULL);
    send_request(&t, 3, 1, REQ, "priority", "u=1", NULL);
    send_request(&t, 5, 1, REQ, NULL);
    rill_header ok[] = {F(":status", "200")};
    static char body[3][100];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rill_h2_submit_response(t.s, 1 + 2 * i, ok, 1, 0), 0);
        assert_int_equal(rill_h2_submit_data(t.s, 1 + 2 * i, (const uint8_t *)body[i], 100,
                                             RILL_H2_FLAG_END_STREAM, NULL), 0);
    }
    drain(t.s, &t.out);
    /* DATA order: urgency 1 (stream 3), default 3 (stream 5), then 5 (stream 1) */
    uint32_t order[3];
    size_t k = 0;
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA && k < 3)
            order[k++] = t.out.f[i].sid;
    assert_int_equal(k, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 5);
    assert_int_equal(order[2], 1);
    tsess_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s8_2_field_names_and_values),
        cmocka_unit_test(s8_2_nul_in_value),
        cmocka_unit_test(s8_2_2_connection_specific_fields),
        cmocka_unit_test(s8_2_2_te_trailers_allowed),
        cmocka_unit_test(s8_3_pseudo_header_rules),
        cmocka_unit_test(s8_3_options_star_accepted),
        cmocka_unit_test(s8_3_1_path_characters),
        cmocka_unit_test(s8_3_1_host_must_agree_with_authority),
        cmocka_unit_test(s8_1_1_content_length_must_match_data),
        cmocka_unit_test(s8_1_trailers),
        cmocka_unit_test(vouched_fields_skip_the_per_byte_check),
        cmocka_unit_test(response_field_rules),
        cmocka_unit_test(invalid_field_in_the_table_stays_refused),
        cmocka_unit_test(s8_1_response_informational_final_trailers),
        cmocka_unit_test(s8_1_no_body_for_head_204_304),
        cmocka_unit_test(rfc8441_extended_connect),
        cmocka_unit_test(s8_5_classic_connect),
        cmocka_unit_test(s10_5_1_header_list_too_large_answers_431),
        cmocka_unit_test(large_response_headers_span_continuations),
        cmocka_unit_test(rfc9218_priority_header_parsed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
