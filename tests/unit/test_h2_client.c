/* Client role: requests, responses (1xx, final, trailers), push (8.4), GOAWAY, extended CONNECT
 * negotiation, h2c upgrade (both roles). */
#include "h2_test_util.h"

static const rill_header get_req[] = {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"),
                                      F(":authority", "a.example")};

static void response(tsess *t, uint32_t sid, uint8_t flags, const char *first, ...)
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

static void client_request_and_response(void **state)
{
    (void)state;
    tsess t;
    tdec d = {0};
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    int32_t id = rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, (void *)0x55);
    assert_int_equal(id, 1);
    assert_ptr_equal(rill_h2_stream_user(t.s, 1), (void *)0x55);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 3);
    drain(t.s, &t.out);
    uint32_t sids[4];
    uint8_t types[4];
    char *texts[4];
    size_t n = tdec_all(&d, &t.out, sids, types, texts, 4);
    assert_int_equal(n, 2);
    assert_string_equal(texts[0], ":method: GET\n:scheme: https\n:path: /\n:authority: a.example\n");
    tdec_texts_free(texts, n);
    response(&t, 1, 0, ":status", "100", NULL);
    response(&t, 1, 0, ":status", "103", "link", "</s.css>", NULL);
    response(&t, 1, 0, ":status", "200", "content-length", "5", NULL);
    tbuf b = {0}, blk = {0};
    tf_data(&b, 1, 0, "hello", 5);
    hp_block(&blk, "grpc-status", "0", NULL);
    tf_headers_block(&b, 1, 0x5, &blk);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(rec_count(&t.rec, EV_HEADERS), 4);
    assert_int_equal(t.rec.ev[0].other, RILL_H2_HEADERS_INFORMATIONAL);
    assert_int_equal(t.rec.ev[1].other, RILL_H2_HEADERS_INFORMATIONAL);
    assert_int_equal(t.rec.ev[2].other, RILL_H2_HEADERS_RESPONSE);
    assert_int_equal(t.rec.ev[4].other, RILL_H2_HEADERS_TRAILERS);
    assert_int_equal(t.rec.close_code[1], RILL_H2_NO_ERROR);
    assert_int_equal(rill_h2_session_stream_count(t.s), 1);
    tb_free(&b);
    tb_free(&blk);
    tdec_free(&d);
    tsess_free(&t);
}

static void client_rejects_malformed_responses(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1 + 2 * i);
    drain(t.s, &t.out);
    response(&t, 1, 1, "x-a", "1", NULL); /* no :status */
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    response(&t, 3, 1, ":status", "100", NULL); /* 1xx with END_STREAM */
    expect_rst(&t.out, 3, RILL_H2_PROTOCOL_ERROR);
    response(&t, 5, 1, ":status", "200", ":path", "/", NULL); /* request pseudo-header */
    expect_rst(&t.out, 5, RILL_H2_PROTOCOL_ERROR);
    response(&t, 7, 1, ":status", "20x", NULL);
    expect_rst(&t.out, 7, RILL_H2_PROTOCOL_ERROR);
    /* DATA before any response */
    tbuf b = {0};
    tf_data(&b, 9, 0, "x", 1);
    feed_drain(&t, &b);
    expect_rst(&t.out, 9, RILL_H2_PROTOCOL_ERROR);
    /* 204 with a body */
    response(&t, 11, 0, ":status", "204", NULL);
    tf_data(&b, 11, 1, "x", 1);
    feed_drain(&t, &b);
    expect_rst(&t.out, 11, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void client_head_response_may_announce_length(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    rill_header head[] = {F(":method", "HEAD"), F(":scheme", "https"), F(":path", "/"), F(":authority", "a")};
    assert_int_equal(rill_h2_submit_request(t.s, head, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
    drain(t.s, &t.out);
    response(&t, 1, 1, ":status", "200", "content-length", "1000", NULL);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.close_code[1], RILL_H2_NO_ERROR);
    assert_non_null(rec_find(&t.rec, EV_END, 1));
    tsess_free(&t);
}

static void client_request_body_and_concurrency_limit(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    tbuf b = {0};
    tf_settings(&b, 1, RILL_H2_SETTINGS_MAX_CONCURRENT_STREAMS, 1u);
    feed_drain(&t, &b);
    rill_header post[] = {F(":method", "POST"), F(":scheme", "https"), F(":path", "/up"), F(":authority", "a")};
    assert_int_equal(rill_h2_submit_request(t.s, post, 4, 0, NULL), 1);
    assert_int_equal(rill_h2_submit_request(t.s, post, 4, 0, NULL), RILL_ERR_LIMIT);
    assert_int_equal(rill_h2_submit_data(t.s, 1, (const uint8_t *)"abc", 3, RILL_H2_FLAG_END_STREAM, NULL), 0);
    drain(t.s, &t.out);
    const tframe *d = find_frame(&t.out, RILL_H2_DATA, 1);
    assert_non_null(d);
    assert_int_equal(d->flags, 1);
    tb_free(&b);
    tsess_free(&t);
}

/* Before the server's SETTINGS a client opens at most 100 streams (the server's limit is not
 * known yet; sending more would be refused, and in numbers taken for a flood); SETTINGS without
 * a limit lift it, and one with a limit sets it. */
static void client_waits_for_settings_beyond_100_streams(void **state)
{
    (void)state;
    rill_h2_options o;
    rill_h2_options_init(&o, RILL_H2_CLIENT);
    rill_h2_session *s = rill_h2_session_new(RILL_H2_CLIENT, &o, NULL, NULL);
    assert_non_null(s);
    for (int i = 0; i < 100; i++)
        assert_true(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL) > 0);
    assert_int_equal(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), RILL_ERR_LIMIT);
    tbuf b = {0};
    tf_settings(&b, 0); /* no SETTINGS_MAX_CONCURRENT_STREAMS: unlimited */
    assert_true(rill_h2_session_recv(s, b.p, b.len) >= 0);
    for (int i = 0; i < 50; i++)
        assert_true(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL) > 0);
    tb_free(&b);
    rill_h2_session_free(s);

    s = rill_h2_session_new(RILL_H2_CLIENT, &o, NULL, NULL);
    for (int i = 0; i < 3; i++)
        assert_true(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL) > 0);
    tbuf c = {0};
    tf_settings(&c, 1, RILL_H2_SETTINGS_MAX_CONCURRENT_STREAMS, 4u);
    assert_true(rill_h2_session_recv(s, c.p, c.len) >= 0);
    assert_true(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL) > 0);
    assert_int_equal(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), RILL_ERR_LIMIT);
    tb_free(&c);
    rill_h2_session_free(s);
}

static void s8_4_push_received(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
    drain(t.s, &t.out);
    tbuf b = {0}, blk = {0}, fr = {0};
    tb_u32(&fr, 2);
    hp_block(&blk, ":method", "GET", ":scheme", "https", ":path", "/style.css", ":authority", "a.example", NULL);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 1, fr.p, fr.len);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    const tevent *e = rec_find(&t.rec, EV_PUSH, 1);
    assert_non_null(e);
    assert_int_equal(e->other, 2);
    assert_true(ev_has(e, ":path: /style.css"));
    /* the pushed response on stream 2 (reserved remote -> half-closed local) */
    response(&t, 2, 0, ":status", "200", NULL);
    tf_data(&b, 2, 1, "css", 3);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.body[2].len, 3);
    assert_int_equal(t.rec.close_code[2], RILL_H2_NO_ERROR);
    /* a promise can be refused */
    fr.len = 0;
    tb_u32(&fr, 4);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 1, fr.p, fr.len);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_submit_rst_stream(t.s, 4, RILL_H2_CANCEL), 0);
    drain(t.s, &t.out);
    expect_rst(&t.out, 4, RILL_H2_CANCEL);
    /* a promise arriving on a stream we already reset reserves the stream; we cancel it */
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 3);
    assert_int_equal(rill_h2_submit_rst_stream(t.s, 3, RILL_H2_CANCEL), 0);
    drain(t.s, &t.out);
    fr.len = 0;
    tb_u32(&fr, 6);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 3, fr.p, fr.len);
    assert_true(feed_drain(&t, &b) >= 0);
    assert_null(find_frame(&t.out, RILL_H2_GOAWAY, 0));
    const tframe *cancel = find_frame(&t.out, RILL_H2_RST_STREAM, 6);
    assert_non_null(cancel);
    assert_int_equal(get32(cancel->payload), RILL_H2_CANCEL);
    /* odd promised ids are a connection error */
    fr.len = 0;
    tb_u32(&fr, 5);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 1, fr.p, fr.len);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void no_push(rill_h2_options *o) { o->local.enable_push = 0; }

static void s8_4_push_disabled_is_connection_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, no_push);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
    drain(t.s, &t.out);
    tbuf b = {0}, blk = {0}, fr = {0};
    tb_u32(&fr, 2);
    hp_block(&blk, ":method", "GET", ":scheme", "https", ":path", "/x", ":authority", "a", NULL);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 1, fr.p, fr.len);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void s8_4_server_push_sending(void **state)
{
    (void)state;
    tsess t;
    tdec d = {0};
    tsess_start(&t, RILL_H2_SERVER, NULL); /* the test client left ENABLE_PUSH at 1 */
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    rill_header promised[] = {F(":method", "GET"), F(":scheme", "https"), F(":path", "/app.js"),
                              F(":authority", "a.example")};
    int32_t pid = rill_h2_submit_push_promise(t.s, 1, promised, 4, NULL);
    assert_int_equal(pid, 2);
    rill_header ok[] = {F(":status", "200")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 1, RILL_H2_FLAG_END_STREAM), 0);
    assert_int_equal(rill_h2_submit_response(t.s, 2, ok, 1, 0), 0);
    assert_int_equal(rill_h2_submit_data(t.s, 2, (const uint8_t *)"js", 2, RILL_H2_FLAG_END_STREAM, NULL), 0);
    drain(t.s, &t.out);
    const tframe *pp = find_frame(&t.out, RILL_H2_PUSH_PROMISE, 1);
    assert_non_null(pp);
    assert_int_equal(get32(pp->payload), 2);
    uint32_t sids[4];
    uint8_t types[4];
    char *texts[4];
    size_t n = tdec_all(&d, &t.out, sids, types, texts, 4);
    assert_int_equal(n, 3);
    assert_int_equal(types[0], RILL_H2_PUSH_PROMISE);
    assert_true(strstr(texts[0], ":path: /app.js") != NULL);
    assert_non_null(find_frame(&t.out, RILL_H2_DATA, 2));
    tdec_texts_free(texts, n);
    /* after the client disables push, no more promises */
    tf_settings(&b, 1, RILL_H2_SETTINGS_ENABLE_PUSH, 0u);
    tf_get(&b, 3, 0x1);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_submit_push_promise(t.s, 3, promised, 4, NULL), RILL_ERR_STATE);
    tb_free(&b);
    tdec_free(&d);
    tsess_free(&t);
}

static void s6_6_push_promise_to_server_is_protocol_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0}, fr = {0};
    tf_get(&b, 1, 0);
    tb_u32(&fr, 2);
    hp_block(&blk, ":method", "GET", NULL);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 1, fr.p, fr.len);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void s6_8_goaway_received_refuses_higher_streams(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    for (int i = 0; i < 3; i++)
        rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL);
    drain(t.s, &t.out);
    tbuf b = {0};
    uint8_t g[8] = {0, 0, 0, 3, 0, 0, 0, 0};
    tf_frame(&b, RILL_H2_GOAWAY, 0, 0, g, 8);
    feed_drain(&t, &b);
    const tevent *e = rec_find(&t.rec, EV_GOAWAY, 0);
    assert_non_null(e);
    assert_int_equal(e->other, 3);
    assert_int_equal(t.rec.close_code[5], RILL_H2_REFUSED_STREAM);
    assert_int_equal(rill_h2_session_stream_count(t.s), 2);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), RILL_ERR_STATE);
    response(&t, 1, 1, ":status", "200", NULL);
    response(&t, 3, 1, ":status", "200", NULL);
    assert_false(rill_h2_session_want_read(t.s));
    tb_free(&b);
    tsess_free(&t);
}

static void rfc8441_client_needs_server_setting(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    rill_header ws[] = {F(":method", "CONNECT"), F(":protocol", "websocket"), F(":scheme", "https"),
                        F(":path", "/chat"), F(":authority", "a.example")};
    assert_int_equal(rill_h2_submit_request(t.s, ws, 5, 0, NULL), RILL_ERR_UNSUPPORTED);
    tbuf b = {0};
    tf_settings(&b, 1, RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1u);
    feed_drain(&t, &b);
    int32_t id = rill_h2_submit_request(t.s, ws, 5, 0, NULL);
    assert_int_equal(id, 1);
    drain(t.s, &t.out);
    response(&t, 1, 0, ":status", "200", NULL);
    tf_data(&b, 1, 0, "tunnel", 6);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.body[1].len, 6);
    /* the server may not take the setting back */
    tf_settings(&b, 1, RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 0u);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void h2c_upgrade_server_side(void **state)
{
    (void)state;
    trec rec = {0};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, NULL, &rec_cbs, &rec);
    /* the client's HTTP2-Settings: initial window 1000 */
    const uint8_t settings[] = {0, 4, 0, 0, 0x03, 0xe8};
    rill_header req[] = {F(":method", "GET"), F(":path", "/"), F(":scheme", "http"), F(":authority", "a")};
    rill_header bad[] = {F(":method", "GET"), F(":path", "/"), F(":scheme", "http"), F("connection", "upgrade")};
    assert_int_equal(rill_h2_session_upgrade_server(s, settings, sizeof settings, bad, 4), RILL_ERR_INVALID_ARG);
    const uint8_t bad_settings[] = {0, 2, 0, 0, 0, 7};
    assert_int_equal(rill_h2_session_upgrade_server(s, bad_settings, sizeof bad_settings, req, 4),
                     RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_h2_session_upgrade_server(s, settings, sizeof settings, req, 4), 0);
    const tevent *e = rec_find(&rec, EV_HEADERS, 1);
    assert_non_null(e);
    assert_int_equal(e->other, RILL_H2_HEADERS_REQUEST);
    assert_true(ev_has(e, ":path: /"));
    assert_non_null(rec_find(&rec, EV_END, 1));
    assert_int_equal(rill_h2_session_peer_settings(s)->initial_window_size, 1000);
    assert_int_equal(rill_h2_session_send_window(s, 1), 1000);
    rill_header ok[] = {F(":status", "200")};
    assert_int_equal(rill_h2_submit_response(s, 1, ok, 1, RILL_H2_FLAG_END_STREAM), 0);
    tout o = {0};
    drain(s, &o);
    assert_int_equal(o.f[0].type, RILL_H2_SETTINGS);
    assert_non_null(find_frame(&o, RILL_H2_HEADERS, 1));
    /* the client preface still follows */
    tbuf b = {0};
    tb_put(&b, PREFACE, 24);
    tf_settings(&b, 0);
    tf_get(&b, 3, 1);
    assert_true(rill_h2_session_recv(s, b.p, b.len) >= 0);
    assert_non_null(rec_find(&rec, EV_HEADERS, 3));
    tb_free(&b);
    tb_free(&o.raw);
    rill_h2_session_free(s);
}

static void h2c_upgrade_client_side(void **state)
{
    (void)state;
    trec rec = {0};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_CLIENT, NULL, &rec_cbs, &rec);
    uint8_t payload[64];
    int n = rill_h2_session_settings_payload(s, payload, sizeof payload);
    assert_true(n > 0 && n % 6 == 0);
    assert_int_equal(rill_h2_session_upgrade_client(s, false, NULL), 0);
    tbuf b = {0}, blk = {0};
    tf_settings(&b, 0);
    hp_block(&blk, ":status", "200", NULL);
    tf_headers_block(&b, 1, 0x5, &blk);
    assert_true(rill_h2_session_recv(s, b.p, b.len) >= 0);
    const tevent *e = rec_find(&rec, EV_HEADERS, 1);
    assert_non_null(e);
    assert_int_equal(e->other, RILL_H2_HEADERS_RESPONSE);
    assert_int_equal(rill_h2_submit_request(s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 3);
    tb_free(&b);
    tb_free(&blk);
    rill_h2_session_free(s);
}

/* Section 5.1 from the client's side: frames on streams the server cannot use. */
static void client_s5_1_idle_and_closed_streams(void **state)
{
    (void)state;
    struct { uint8_t type; uint32_t sid; uint32_t code; } cases[] = {
        {RILL_H2_DATA, 2, RILL_H2_PROTOCOL_ERROR},          /* idle even stream */
        {RILL_H2_HEADERS, 2, RILL_H2_PROTOCOL_ERROR},       /* servers open streams only by push */
        {RILL_H2_HEADERS, 5, RILL_H2_PROTOCOL_ERROR},       /* our idle odd stream */
        {RILL_H2_RST_STREAM, 5, RILL_H2_PROTOCOL_ERROR},
        {RILL_H2_WINDOW_UPDATE, 4, RILL_H2_PROTOCOL_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsess t;
        tsess_start(&t, RILL_H2_CLIENT, NULL);
        assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
        drain(t.s, &t.out);
        tbuf b = {0}, blk = {0};
        hp_block(&blk, ":status", "200", NULL);
        if (cases[i].type == RILL_H2_HEADERS)
            tf_headers_block(&b, cases[i].sid, 0x5, &blk);
        else if (cases[i].type == RILL_H2_DATA)
            tf_data(&b, cases[i].sid, 0, "x", 1);
        else if (cases[i].type == RILL_H2_RST_STREAM)
            tf_rst(&b, cases[i].sid, RILL_H2_CANCEL);
        else
            tf_window_update(&b, cases[i].sid, 1);
        assert_true(feed_drain(&t, &b) < 0);
        expect_goaway(&t.out, cases[i].code);
        tb_free(&b);
        tb_free(&blk);
        tsess_free(&t);
    }
}

static void client_frames_after_reset_are_ignored(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
    assert_int_equal(rill_h2_submit_rst_stream(t.s, 1, RILL_H2_CANCEL), 0);
    drain(t.s, &t.out);
    expect_rst(&t.out, 1, RILL_H2_CANCEL);
    /* the server's response was already in flight */
    response(&t, 1, 0, ":status", "200", NULL);
    tbuf b = {0};
    tf_data(&b, 1, 1, "late", 4);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_null(rec_find(&t.rec, EV_HEADERS, 1));
    /* and the HPACK state stayed in step: a new stream still decodes */
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 3);
    response(&t, 3, 1, ":status", "204", NULL);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 3));
    tb_free(&b);
    tsess_free(&t);
}

static void client_response_content_length_checked(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
    drain(t.s, &t.out);
    response(&t, 1, 0, ":status", "200", "content-length", "10", NULL);
    tbuf b = {0};
    tf_data(&b, 1, 1, "short", 5);
    feed_drain(&t, &b);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    assert_int_equal(t.rec.close_code[1], RILL_H2_PROTOCOL_ERROR);
    assert_null(rec_find(&t.rec, EV_END, 1));
    tb_free(&b);
    tsess_free(&t);
}

static void few_streams(rill_h2_options *o) { o->local.max_concurrent_streams = 2; }

static void s8_4_promises_beyond_our_limit_are_refused(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, few_streams);
    assert_int_equal(rill_h2_submit_request(t.s, get_req, 4, RILL_H2_FLAG_END_STREAM, NULL), 1);
    drain(t.s, &t.out);
    tbuf b = {0}, blk = {0}, fr = {0};
    hp_block(&blk, ":method", "GET", ":scheme", "https", ":path", "/p", ":authority", "a", NULL);
    for (uint32_t pid = 2; pid <= 6; pid += 2) {
        fr.len = 0;
        tb_u32(&fr, pid);
        tb_put(&fr, blk.p, blk.len);
        tf_frame(&b, RILL_H2_PUSH_PROMISE, 0x4, 1, fr.p, fr.len);
    }
    feed_drain(&t, &b);
    assert_int_equal(rec_count(&t.rec, EV_PUSH), 2);
    const tframe *r = find_frame(&t.out, RILL_H2_RST_STREAM, 6);
    assert_non_null(r);
    assert_int_equal(get32(r->payload), RILL_H2_REFUSED_STREAM);
    /* DATA on a reserved (remote) stream is a connection error */
    tf_data(&b, 2, 0, "x", 1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void s5_1_reserved_local_rules(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    rill_header promised[] = {F(":method", "GET"), F(":scheme", "https"), F(":path", "/x"), F(":authority", "a")};
    assert_int_equal(rill_h2_submit_push_promise(t.s, 1, promised, 4, NULL), 2);
    drain(t.s, &t.out);
    /* WINDOW_UPDATE and PRIORITY are fine on a reserved (local) stream, and RST_STREAM cancels it */
    tf_window_update(&b, 2, 100);
    uint8_t p[5] = {0, 0, 0, 1, 1};
    tf_frame(&b, RILL_H2_PRIORITY, 0, 2, p, 5);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_send_window(t.s, 2), 65535 + 100);
    /* HEADERS from the client on it is a connection error */
    tf_get(&b, 2, 0x1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_request_and_response),
        cmocka_unit_test(client_rejects_malformed_responses),
        cmocka_unit_test(client_head_response_may_announce_length),
        cmocka_unit_test(client_request_body_and_concurrency_limit),
        cmocka_unit_test(client_waits_for_settings_beyond_100_streams),
        cmocka_unit_test(s8_4_push_received),
        cmocka_unit_test(s8_4_push_disabled_is_connection_error),
        cmocka_unit_test(s8_4_server_push_sending),
        cmocka_unit_test(s6_6_push_promise_to_server_is_protocol_error),
        cmocka_unit_test(s6_8_goaway_received_refuses_higher_streams),
        cmocka_unit_test(rfc8441_client_needs_server_setting),
        cmocka_unit_test(h2c_upgrade_server_side),
        cmocka_unit_test(h2c_upgrade_client_side),
        cmocka_unit_test(client_s5_1_idle_and_closed_streams),
        cmocka_unit_test(client_frames_after_reset_are_ignored),
        cmocka_unit_test(client_response_content_length_checked),
        cmocka_unit_test(s8_4_promises_beyond_our_limit_are_refused),
        cmocka_unit_test(s5_1_reserved_local_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
