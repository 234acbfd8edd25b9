/* RFC 9113 conformance, sections 3 to 6 (server role unless a test says otherwise): raw frames in,
 * the exact frame or error out. Groups follow h2spec's numbering. */
#include "h2_test_util.h"

/* ---- 3.4 / 3.5 HTTP/2 connection preface ---- */

static void s3_5_server_sends_settings_first(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tsess_free(&t);
}

static void s3_5_invalid_preface_is_protocol_error(void **state)
{
    (void)state;
    trec rec = {0};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, NULL, &rec_cbs, &rec);
    tout o = {0};
    drain(s, &o);
    const char bad[] = "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n";
    assert_int_equal(rill_h2_session_recv(s, (const uint8_t *)bad, 24), RILL_ERR_PROTOCOL);
    drain(s, &o);
    expect_goaway(&o, RILL_H2_PROTOCOL_ERROR);
    assert_false(rill_h2_session_want_read(s));
    rill_h2_session_free(s);
    tb_free(&o.raw);
}

static void s3_5_first_frame_must_be_settings(void **state)
{
    (void)state;
    trec rec = {0};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, NULL, &rec_cbs, &rec);
    tout o = {0};
    drain(s, &o);
    tbuf b = {0};
    tb_put(&b, PREFACE, 24);
    tf_ping(&b, 0, "12345678");
    assert_true(rill_h2_session_recv(s, b.p, b.len) < 0);
    drain(s, &o);
    expect_goaway(&o, RILL_H2_PROTOCOL_ERROR);
    rill_h2_session_free(s);
    tb_free(&o.raw);
    tb_free(&b);
}

static void s3_5_preface_split_byte_by_byte(void **state)
{
    (void)state;
    trec rec = {0};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, NULL, &rec_cbs, &rec);
    tbuf b = {0};
    tb_put(&b, PREFACE, 24);
    tf_settings(&b, 1, RILL_H2_SETTINGS_MAX_FRAME_SIZE, 20000u);
    tf_get(&b, 1, 0x1);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(rill_h2_session_recv(s, b.p + i, 1), 1);
    assert_int_equal(rill_h2_session_peer_settings(s)->max_frame_size, 20000);
    assert_non_null(rec_find(&rec, EV_HEADERS, 1));
    rill_h2_session_free(s);
    tb_free(&b);
}

static void s3_4_client_sends_preface_and_settings(void **state)
{
    (void)state;
    rill_h2_session *s = rill_h2_session_new(RILL_H2_CLIENT, NULL, NULL, NULL);
    tout o = {0};
    drain(s, &o);
    assert_true(o.preface);
    assert_int_equal(o.f[0].type, RILL_H2_SETTINGS);
    assert_int_equal(o.f[0].flags, 0);
    /* the default connection window of 1 MiB is announced at once */
    const tframe *wu = find_frame(&o, RILL_H2_WINDOW_UPDATE, 0);
    assert_non_null(wu);
    assert_int_equal(get32(wu->payload), 1024 * 1024 - 65535);
    rill_h2_session_free(s);
    tb_free(&o.raw);
}

/* SETTINGS ACK timeout: time enters through tick. */
static void s6_5_3_settings_ack_timeout(void **state)
{
    (void)state;
    rill_h2_options opt;
    rill_h2_options_init(&opt, RILL_H2_SERVER);
    opt.now_ms = 1000;
    opt.settings_timeout_ms = 5000;
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, &opt, NULL, NULL);
    assert_int_equal(rill_h2_session_next_deadline(s), 6000);
    tout o = {0};
    drain(s, &o);
    rill_h2_session_tick(s, 5999);
    drain(s, &o);
    assert_int_equal(o.n, 0);
    rill_h2_session_tick(s, 6000);
    drain(s, &o);
    expect_goaway(&o, RILL_H2_SETTINGS_TIMEOUT);
    rill_h2_session_free(s);
    tb_free(&o.raw);
}

static void s6_5_3_ack_clears_deadline(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    assert_int_equal(rill_h2_session_next_deadline(t.s), UINT64_MAX);
    tsess_free(&t);
}

/* ---- 4.1 frame format ---- */

static void s4_1_unknown_type_ignored(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_frame(&b, 0x77, 0xff, 0, "abc", 3);
    tf_frame(&b, 0x77, 0, 1, "", 0);
    tf_ping(&b, 0, "abcdefgh");
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    const tframe *ack = find_frame(&t.out, RILL_H2_PING, 0);
    assert_non_null(ack);
    assert_int_equal(ack->flags, 1);
    assert_memory_equal(ack->payload, "abcdefgh", 8);
    tb_free(&b);
    tsess_free(&t);
}

static void s4_1_unknown_flags_and_reserved_bit_ignored(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_ping(&b, 0xfe, "abcdefgh"); /* unknown flags, no ACK */
    tbuf blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_frame(&b, RILL_H2_HEADERS, 0x4 | 0x1 | 0x2 | 0x10 | 0x40, 0x80000001u, blk.p, blk.len);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_non_null(find_frame(&t.out, RILL_H2_PING, 0));
    const tevent *e = rec_find(&t.rec, EV_HEADERS, 1);
    assert_non_null(e);
    assert_int_equal(e->code, RILL_H2_FLAG_END_STREAM);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

/* ---- 4.2 frame size ---- */

static void s4_2_data_of_max_size_accepted(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    static char big[16384];
    tf_data(&b, 1, 0, big, sizeof big);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.body[1].len, 16384);
    tb_free(&b);
    tsess_free(&t);
}

static void s4_2_frame_over_max_frame_size(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    static char big[16385];
    tf_data(&b, 1, 0, big, sizeof big);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_FRAME_SIZE);
    expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s4_2_headers_over_max_frame_size(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    static char pad[16400];
    memset(pad, 'a', sizeof pad);
    hp_lit_n(&blk, "x-big", pad, sizeof pad);
    tf_headers_block(&b, 1, 0x5, &blk);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s4_2_larger_max_frame_size_applies_after_ack(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    uint16_t id = RILL_H2_SETTINGS_MAX_FRAME_SIZE;
    uint32_t v = 32768;
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v, 1), 0);
    drain(t.s, &t.out);
    tbuf b = {0};
    tf_settings_ack(&b);
    tf_get(&b, 1, 0);
    static char big[32768];
    tf_data(&b, 1, 0, big, sizeof big);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 4.3 header compression ---- */

static void s4_3_invalid_header_block_is_compression_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}; /* index overflow */
    tf_frame(&b, RILL_H2_HEADERS, 0x5, 1, bad, sizeof bad);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_COMPRESSION);
    expect_goaway(&t.out, RILL_H2_COMPRESSION_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s4_3_dynamic_table_kept_across_ignored_blocks(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    /* Stream 1 is reset by us (self-dependency) but its block adds "x-a: 1" to the table (0x40 =
     * literal with incremental indexing); stream 3 then refers to it by index 62. */
    tbuf blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tb_byte(&blk, 0x40);
    tb_byte(&blk, 3);
    tb_put(&blk, "x-a", 3);
    tb_byte(&blk, 1);
    tb_put(&blk, "1", 1);
    uint8_t prio[5] = {0, 0, 0, 1, 16};
    tbuf fr = {0};
    tb_put(&fr, prio, 5);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_HEADERS, 0x25, 1, fr.p, fr.len);
    blk.len = 0;
    hp_block(&blk, GET_FIELDS, NULL);
    tb_byte(&blk, 0x80 | 62);
    tf_headers_block(&b, 3, 0x5, &blk);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    const tevent *e = rec_find(&t.rec, EV_HEADERS, 3);
    assert_non_null(e);
    assert_true(ev_has(e, "x-a: 1\n"));
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void no_table(rill_h2_options *o) { o->local.header_table_size = 0; }

static void s4_3_lowered_table_size_needs_size_update(void **state)
{
    (void)state;
    /* After our SETTINGS_HEADER_TABLE_SIZE 0 is acknowledged, the first block must start with a
     * dynamic table size update (RFC 7541 section 4.2). */
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, no_table);
    tbuf b = {0}, blk = {0};
    tb_byte(&blk, 0x20); /* size update to 0 */
    hp_block(&blk, GET_FIELDS, NULL);
    tf_headers_block(&b, 1, 0x5, &blk);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    tsess_free(&t);
    tsess_start(&t, RILL_H2_SERVER, no_table);
    blk.len = 0;
    hp_block(&blk, GET_FIELDS, NULL);
    tf_headers_block(&b, 1, 0x5, &blk);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_COMPRESSION);
    expect_goaway(&t.out, RILL_H2_COMPRESSION_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s4_3_peer_table_size_zero_is_announced(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_settings(&b, 1, RILL_H2_SETTINGS_HEADER_TABLE_SIZE, 0u);
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200"), F("x-a", "b")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 2, RILL_H2_FLAG_END_STREAM), 0);
    drain(t.s, &t.out);
    const tframe *h = find_frame(&t.out, RILL_H2_HEADERS, 1);
    assert_non_null(h);
    /* a decoder that was told "0" (our ACK was sent) insists on the size update */
    rill_hpack_decoder *d = rill_hpack_decoder_new(4096);
    rill_hpack_decoder_set_max_table_size(d, 0);
    tbuf txt = {0};
    assert_int_equal(rill_hpack_decode_block(d, h->payload, h->len, tdec_cb, &txt), 0);
    assert_int_equal(h->payload[0] & 0xe0, 0x20);
    rill_hpack_decoder_free(d);
    tb_free(&txt);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 5.1 stream states ---- */

static void s5_1_idle_data_is_protocol_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_data(&b, 1, 0, "x", 1);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_PROTOCOL);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_idle_rst_stream_is_protocol_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_rst(&b, 1, RILL_H2_CANCEL);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_idle_window_update_is_protocol_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_window_update(&b, 1, 100);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_idle_continuation_is_protocol_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_frame(&b, RILL_H2_CONTINUATION, 0x4, 1, blk.p, blk.len);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s5_1_idle_priority_allowed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    uint8_t p[5] = {0, 0, 0, 3, 200};
    tf_frame(&b, RILL_H2_PRIORITY, 0, 5, p, 5);
    tf_get(&b, 1, 0x1); /* a lower id may still open: PRIORITY does not open stream 5 */
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_half_closed_remote_data_is_stream_closed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    tf_data(&b, 1, 0, "x", 1);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_STREAM_CLOSED);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_half_closed_remote_headers_is_stream_closed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    tf_get(&b, 1, 0x1);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_STREAM_CLOSED);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_half_closed_remote_allows_window_update_and_priority(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    tf_window_update(&b, 1, 1000);
    uint8_t p[5] = {0, 0, 0, 0, 10};
    tf_frame(&b, RILL_H2_PRIORITY, 0, 1, p, 5);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_send_window(t.s, 1), 65535 + 1000);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_closed_after_end_stream_data_is_stream_closed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    static const uint8_t n[] = ":status", v[] = "200";
    rill_header f = {n, 7, v, 3, 0};
    assert_int_equal(rill_h2_submit_response(t.s, 1, &f, 1, RILL_H2_FLAG_END_STREAM), 0);
    drain(t.s, &t.out);
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    assert_int_equal(t.rec.close_code[1], RILL_H2_NO_ERROR);
    tf_data(&b, 1, 0, "x", 1);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_PROTOCOL);
    expect_goaway(&t.out, RILL_H2_STREAM_CLOSED);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_closed_after_peer_rst_is_stream_closed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_rst(&b, 1, RILL_H2_CANCEL);
    tf_data(&b, 1, 0, "x", 1);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_STREAM_CLOSED);
    assert_int_equal(t.rec.close_code[1], RILL_H2_CANCEL);
    const tevent *reset = rec_find(&t.rec, EV_RESET, 1);
    assert_non_null(reset);
    assert_int_equal(reset->code, RILL_H2_CANCEL);
    assert_true(reset < rec_find(&t.rec, EV_CLOSE, 1));
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_frames_after_our_rst_are_ignored(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_submit_rst_stream(t.s, 1, RILL_H2_CANCEL), 0);
    drain(t.s, &t.out);
    expect_rst(&t.out, 1, RILL_H2_CANCEL);
    tf_data(&b, 1, 0, "hello", 5);
    tf_window_update(&b, 1, 10);
    tf_rst(&b, 1, RILL_H2_CANCEL);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    /* the ignored DATA still counted against (and went back to) the connection window */
    assert_int_equal(rill_h2_session_recv_window(t.s, 0), 65535 - 5);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_reserved_frames_from_client_rejected(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 2, 0x1); /* even stream id from a client */
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 5.1.1 stream identifiers ---- */

static void s5_1_1_even_stream_from_client(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 4, 0x1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_1_decreasing_stream_id(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 5, 0x1);
    tf_get(&b, 3, 0x1);
    assert_true(feed_drain(&t, &b) < 0);
    assert_int_equal(expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR), 5);
    tb_free(&b);
    tsess_free(&t);
}

static void s5_1_forgotten_closed_stream_is_not_a_new_one(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    /* stream 1 is reset by us, then 100 more streams come and go: 1 drops out of the memory */
    tf_get(&b, 1, 0);
    feed_drain(&t, &b);
    rill_h2_submit_rst_stream(t.s, 1, RILL_H2_CANCEL);
    for (uint32_t sid = 3; sid < 203; sid += 2) {
        tf_get(&b, sid, 0);
        tf_rst(&b, sid, RILL_H2_CANCEL);
    }
    feed_drain(&t, &b);
    /* late trailers for stream 1: a stream error, not a connection error */
    hp_block(&blk, "x-late", "1", NULL);
    tf_headers_block(&b, 1, 0x5, &blk);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_STREAM_CLOSED);
    /* an id that was skipped is still a connection error */
    tf_get(&b, 205, 0x1);
    tf_get(&b, 209, 0x1);
    tf_get(&b, 207, 0x1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

/* The record of used ids is a ring of 512: after it has wrapped, an id skipped is still told from
 * one used (the skipped id's slot held an id 1,024 lower, which was used). */
static void s5_1_skipped_id_after_the_record_wraps(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    for (uint32_t sid = 1; sid < 1200; sid += 2) {
        tf_get(&b, sid, 0);
        tf_rst(&b, sid, RILL_H2_CANCEL);
    }
    tf_get(&b, 1203, 0); /* 1201 skipped */
    tf_rst(&b, 1203, RILL_H2_CANCEL);
    assert_true(feed_drain(&t, &b) >= 0);
    /* 1199, used and reset: late trailers are a stream error */
    hp_block(&blk, "x-late", "1", NULL);
    tf_headers_block(&b, 1199, 0x5, &blk);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1199, RILL_H2_STREAM_CLOSED);
    /* 1201 was never opened: a new stream below the highest is a connection error */
    tf_get(&b, 1201, 0x1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

/* ---- 5.1.2 concurrency ---- */

static void limit_two(rill_h2_options *o) { o->local.max_concurrent_streams = 2; }

static void s5_1_2_refused_over_max_concurrent(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, limit_two);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_get(&b, 3, 0);
    tf_get(&b, 5, 0);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 5, RILL_H2_REFUSED_STREAM);
    assert_null(rec_find(&t.rec, EV_HEADERS, 5));
    assert_int_equal(rill_h2_session_stream_count(t.s), 2);
    /* after one closes, a new stream is accepted */
    tf_rst(&b, 1, RILL_H2_CANCEL);
    tf_get(&b, 7, 0);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 7));
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 5.3.1 dependencies ---- */

static void s5_3_1_headers_depending_on_itself(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0}, fr = {0};
    uint8_t prio[5] = {0, 0, 0, 1, 16};
    tb_put(&fr, prio, 5);
    hp_block(&blk, GET_FIELDS, NULL);
    tb_put(&fr, blk.p, blk.len);
    tf_frame(&b, RILL_H2_HEADERS, 0x25, 1, fr.p, fr.len);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void s5_3_1_priority_depending_on_itself(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    uint8_t p[5] = {0, 0, 0, 1, 10};
    tf_frame(&b, RILL_H2_PRIORITY, 0, 1, p, 5);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 5.4.1 connection error handling ---- */

static void s5_4_1_goaway_carries_last_stream_and_stops_reading(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    tf_get(&b, 3, 0x1);
    tf_ping(&b, 0, "1234567");
    b.len -= 9 + 8;
    tf_frame(&b, RILL_H2_PING, 0, 0, "1234567", 7); /* bad length */
    tf_get(&b, 5, 0x1);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_FRAME_SIZE);
    assert_int_equal(expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR), 3);
    assert_null(rec_find(&t.rec, EV_HEADERS, 5));
    assert_false(rill_h2_session_want_read(t.s));
    assert_int_equal(rill_h2_session_error_code(t.s), RILL_H2_FRAME_SIZE_ERROR);
    /* streams were closed with the connection error's code */
    assert_int_equal(t.rec.close_code[1], RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.1 DATA ---- */

static void s6_1_data_on_stream_0(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_data(&b, 0, 0, "x", 1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_1_padded_data_delivered_without_padding(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    uint8_t p[1 + 5 + 10] = {10, 'h', 'e', 'l', 'l', 'o'};
    tf_frame(&b, RILL_H2_DATA, 0x8 | 0x1, 1, p, sizeof p);
    /* split at every position to exercise the streaming parser */
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(rill_h2_session_recv(t.s, b.p + i, 1), 1);
    assert_int_equal(t.rec.body[1].len, 5);
    assert_memory_equal(t.rec.body[1].p, "hello", 5);
    assert_non_null(rec_find(&t.rec, EV_END, 1));
    tb_free(&b);
    tsess_free(&t);
}

static void s6_1_data_pad_length_too_large(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    uint8_t p[1 + 3] = {4, 'a', 'b', 'c'};
    tf_frame(&b, RILL_H2_DATA, 0x8, 1, p, sizeof p);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_PROTOCOL);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.2 HEADERS ---- */

static void s6_2_headers_on_stream_0(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 0, 0x1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_2_padded_headers_with_priority(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0}, fr = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tb_byte(&fr, 4);
    uint8_t prio[5] = {0x80, 0, 0, 0, 255};
    tb_put(&fr, prio, 5);
    tb_put(&fr, blk.p, blk.len);
    tb_put(&fr, "\0\0\0\0", 4);
    tf_frame(&b, RILL_H2_HEADERS, 0x8 | 0x20 | 0x4 | 0x1, 1, fr.p, fr.len);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 1));
    tb_free(&b);
    tb_free(&blk);
    tb_free(&fr);
    tsess_free(&t);
}

static void s6_2_headers_pad_too_large(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    uint8_t fr[3] = {5, 0x82, 0x84};
    tf_frame(&b, RILL_H2_HEADERS, 0x8 | 0x4, 1, fr, sizeof fr);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_2_headers_then_other_frame_before_continuation(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_headers_block(&b, 1, 0x1, &blk); /* no END_HEADERS */
    tf_data(&b, 1, 0, "x", 1);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s6_2_headers_then_unknown_frame_before_continuation(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_headers_block(&b, 1, 0x1, &blk);
    tf_frame(&b, 0x55, 0, 0, "", 0);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

/* ---- 6.3 PRIORITY ---- */

static void s6_3_priority_on_stream_0(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    uint8_t p[5] = {0, 0, 0, 1, 10};
    tf_frame(&b, RILL_H2_PRIORITY, 0, 0, p, 5);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_3_priority_bad_length_is_stream_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    uint8_t p[6] = {0, 0, 0, 3, 10, 0};
    tf_frame(&b, RILL_H2_PRIORITY, 0, 1, p, 6);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.4 RST_STREAM ---- */

static void s6_4_rst_on_stream_0(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_rst(&b, 0, RILL_H2_CANCEL);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_4_rst_bad_length(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_frame(&b, RILL_H2_RST_STREAM, 0, 1, "\0\0\0\0\0", 5);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.5 SETTINGS ---- */

static void s6_5_ack_with_payload(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_frame(&b, RILL_H2_SETTINGS, 1, 0, "\0\x01\0\0\0\0", 6);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_5_settings_on_stream(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_frame(&b, RILL_H2_SETTINGS, 0, 1, "", 0);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_5_settings_bad_length(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_frame(&b, RILL_H2_SETTINGS, 0, 0, "\0\x03\0\0", 4);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_5_unknown_setting_ignored_and_acked(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_settings(&b, 2, 0xabcdu, 77u, RILL_H2_SETTINGS_MAX_CONCURRENT_STREAMS, 7u);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    const tframe *ack = find_frame(&t.out, RILL_H2_SETTINGS, 0);
    assert_non_null(ack);
    assert_int_equal(ack->flags, 1);
    assert_int_equal(ack->len, 0);
    assert_int_equal(rill_h2_session_peer_settings(t.s)->max_concurrent_streams, 7);
    assert_non_null(rec_find(&t.rec, EV_SETTINGS, 0));
    tb_free(&b);
    tsess_free(&t);
}

static void expect_settings_error(unsigned id, unsigned v, uint32_t code, enum rill_h2_role role)
{
    tsess t;
    tsess_start(&t, role, NULL);
    tbuf b = {0};
    tf_settings(&b, 1, id, v);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, code);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_5_2_setting_values(void **state)
{
    (void)state;
    expect_settings_error(RILL_H2_SETTINGS_ENABLE_PUSH, 2, RILL_H2_PROTOCOL_ERROR, RILL_H2_SERVER);
    expect_settings_error(RILL_H2_SETTINGS_ENABLE_PUSH, 1, RILL_H2_PROTOCOL_ERROR, RILL_H2_CLIENT);
    expect_settings_error(RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 0x80000000u, RILL_H2_FLOW_CONTROL_ERROR,
                          RILL_H2_SERVER);
    expect_settings_error(RILL_H2_SETTINGS_MAX_FRAME_SIZE, 16383, RILL_H2_PROTOCOL_ERROR, RILL_H2_SERVER);
    expect_settings_error(RILL_H2_SETTINGS_MAX_FRAME_SIZE, 16777216u, RILL_H2_PROTOCOL_ERROR, RILL_H2_SERVER);
    expect_settings_error(RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 2, RILL_H2_PROTOCOL_ERROR, RILL_H2_CLIENT);
    expect_settings_error(RILL_H2_SETTINGS_NO_RFC7540_PRIORITIES, 2, RILL_H2_PROTOCOL_ERROR, RILL_H2_SERVER);
}

static void s6_5_settings_we_send_are_acknowledged_and_applied(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    /* What the server announced at start */
    rill_h2_session *s = t.s;
    const rill_h2_settings *l = rill_h2_session_local_settings(s);
    assert_int_equal(l->max_concurrent_streams, 100);
    assert_int_equal(l->no_rfc7540_priorities, 1);
    uint16_t id = RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE;
    uint32_t v = 1000;
    assert_int_equal(rill_h2_submit_settings(s, &id, &v, 1), 0);
    drain(s, &t.out);
    const tframe *f = find_frame(&t.out, RILL_H2_SETTINGS, 0);
    assert_non_null(f);
    assert_int_equal(f->len, 6);
    tbuf b = {0};
    tf_settings_ack(&b);
    tf_get(&b, 1, 0);
    static char body[1001];
    tf_data(&b, 1, 0, body, 1001); /* over the new window */
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_FLOW_CONTROL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* The initial SETTINGS frame announces every non-default value we use. */
static void s6_5_initial_settings_content(void **state)
{
    (void)state;
    rill_h2_options opt;
    rill_h2_options_init(&opt, RILL_H2_SERVER);
    opt.local.enable_connect_protocol = 1;
    rill_h2_session *s = rill_h2_session_new(RILL_H2_SERVER, &opt, NULL, NULL);
    tout o = {0};
    drain(s, &o);
    const tframe *f = &o.f[0];
    assert_int_equal(f->type, RILL_H2_SETTINGS);
    bool saw_connect = false, saw_prio = false, saw_push = false;
    for (uint32_t i = 0; i < f->len; i += 6) {
        unsigned id = (unsigned)(f->payload[i] << 8 | f->payload[i + 1]);
        uint32_t v = get32(f->payload + i + 2);
        if (id == RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL)
            saw_connect = v == 1;
        if (id == RILL_H2_SETTINGS_NO_RFC7540_PRIORITIES)
            saw_prio = v == 1;
        if (id == RILL_H2_SETTINGS_ENABLE_PUSH)
            saw_push = v == 0;
    }
    assert_true(saw_connect && saw_prio && saw_push);
    /* extended CONNECT can never be switched off again */
    uint16_t id = RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
    uint32_t v = 0;
    assert_int_equal(rill_h2_submit_settings(s, &id, &v, 1), RILL_ERR_INVALID_ARG);
    rill_h2_session_free(s);
    tb_free(&o.raw);
}

static void s6_5_3_last_value_of_a_setting_wins(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_settings(&b, 3, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 100u, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 0x7fffffffu,
                RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 500u);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_send_window(t.s, 1), 500);
    tb_free(&b);
    tsess_free(&t);
}

static void s3_4_client_requires_server_settings_first(void **state)
{
    (void)state;
    trec rec = {0};
    rill_h2_session *s = rill_h2_session_new(RILL_H2_CLIENT, NULL, &rec_cbs, &rec);
    tout o = {0};
    drain(s, &o);
    tbuf b = {0};
    tf_window_update(&b, 0, 100);
    assert_true(rill_h2_session_recv(s, b.p, b.len) < 0);
    drain(s, &o);
    expect_goaway(&o, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&o.raw);
    rill_h2_session_free(s);
}

static void s6_9_reserved_bit_of_increment_ignored(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_window_update(&b, 0, 0x80000000u | 10);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_send_window(t.s, 0), 65535 + 10);
    tb_free(&b);
    tsess_free(&t);
}

static void rfc9218_priority_update_to_client_is_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    tbuf b = {0};
    uint8_t pu[7] = {0, 0, 0, 1, 'u', '=', '1'};
    tf_frame(&b, RILL_H2_PRIORITY_UPDATE, 0, 0, pu, sizeof pu);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.7 PING ---- */

static void s6_7_ping_ack_and_errors(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_ping(&b, 1, "zzzzzzzz"); /* an unsolicited ACK is not answered */
    assert_true(feed_drain(&t, &b) >= 0);
    assert_int_equal(t.out.n, 0);
    assert_non_null(rec_find(&t.rec, EV_PING_ACK, 0));
    tf_frame(&b, RILL_H2_PING, 0, 1, "12345678", 8);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_7_submitted_ping_comes_back(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    assert_int_equal(rill_h2_submit_ping(t.s, (const uint8_t *)"opaque!!"), 0);
    drain(t.s, &t.out);
    const tframe *p = find_frame(&t.out, RILL_H2_PING, 0);
    assert_non_null(p);
    assert_int_equal(p->flags, 0);
    tbuf b = {0};
    tf_ping(&b, 1, "opaque!!");
    feed_drain(&t, &b);
    const tevent *e = rec_find(&t.rec, EV_PING_ACK, 0);
    assert_non_null(e);
    assert_memory_equal(e->text, "opaque!!", 8);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.8 GOAWAY ---- */

static void s6_8_goaway_on_stream(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_frame(&b, RILL_H2_GOAWAY, 0, 1, "\0\0\0\0\0\0\0\0", 8);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_8_graceful_shutdown_two_steps(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_submit_shutdown(t.s), 0);
    drain(t.s, &t.out);
    assert_int_equal(expect_goaway(&t.out, RILL_H2_NO_ERROR), 0x7fffffff);
    const tframe *ping = find_frame(&t.out, RILL_H2_PING, 0);
    assert_non_null(ping);
    char opaque[8];
    memcpy(opaque, ping->payload, 8);
    /* a request in flight still arrives and is served */
    tf_get(&b, 3, 0x1);
    tf_ping(&b, 1, opaque);
    assert_true(feed_drain(&t, &b) >= 0);
    assert_non_null(rec_find(&t.rec, EV_HEADERS, 3));
    assert_int_equal(expect_goaway(&t.out, RILL_H2_NO_ERROR), 3);
    /* later streams are ignored */
    tf_get(&b, 5, 0x1);
    feed_drain(&t, &b);
    assert_null(rec_find(&t.rec, EV_HEADERS, 5));
    static const uint8_t n[] = ":status", v[] = "204";
    rill_header f = {n, 7, v, 3, 0};
    assert_int_equal(rill_h2_submit_response(t.s, 1, &f, 1, 0), 0);
    assert_int_equal(rill_h2_submit_response(t.s, 3, &f, 1, 0), 0);
    drain(t.s, &t.out);
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    assert_false(rill_h2_session_want_read(t.s));
    assert_false(rill_h2_session_want_write(t.s));
    tb_free(&b);
    tsess_free(&t);
}

static void s6_8_streams_after_our_goaway_are_ignored(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_submit_goaway(t.s, RILL_H2_NO_ERROR, NULL, 0), 0);
    drain(t.s, &t.out);
    assert_int_equal(expect_goaway(&t.out, RILL_H2_NO_ERROR), 1);
    /* the client had already sent these: they are dropped quietly */
    tf_get(&b, 3, 0);
    tf_data(&b, 3, 0, "abc", 3);
    tf_window_update(&b, 3, 10);
    tf_rst(&b, 3, RILL_H2_CANCEL);
    tf_data(&b, 1, 0x1, "end", 3);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_null(rec_find(&t.rec, EV_HEADERS, 3));
    assert_non_null(rec_find(&t.rec, EV_END, 1));
    tb_free(&b);
    tsess_free(&t);
}

static void s6_8_shutdown_completes_without_ping_ack(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_submit_shutdown(t.s), 0);
    drain(t.s, &t.out);
    uint64_t when = rill_h2_session_next_deadline(t.s);
    assert_true(when != UINT64_MAX);
    rill_h2_session_tick(t.s, when);
    drain(t.s, &t.out);
    assert_int_equal(expect_goaway(&t.out, RILL_H2_NO_ERROR), 1);
    assert_int_equal(rill_h2_session_next_deadline(t.s), UINT64_MAX);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.9 WINDOW_UPDATE ---- */

static void s6_9_zero_increment_connection(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_window_update(&b, 0, 0);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_9_zero_increment_stream(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_window_update(&b, 1, 0);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_9_bad_length(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_frame(&b, RILL_H2_WINDOW_UPDATE, 0, 0, "\0\0\0\x01\0", 5);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FRAME_SIZE_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_9_1_connection_window_overflow(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_window_update(&b, 0, 0x7fffffffu);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FLOW_CONTROL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_9_1_stream_window_overflow(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_window_update(&b, 1, 0x7fffffffu);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_rst(&t.out, 1, RILL_H2_FLOW_CONTROL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_9_2_initial_window_change_applies_to_open_streams(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_send_window(t.s, 1), 65535);
    tf_settings(&b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 0u);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_send_window(t.s, 1), 0);
    /* the server cannot send DATA now */
    static const uint8_t n[] = ":status", v[] = "200";
    rill_header f = {n, 7, v, 3, 0};
    assert_int_equal(rill_h2_submit_response(t.s, 1, &f, 1, 0), 0);
    static const char body[] = "0123456789";
    assert_int_equal(rill_h2_submit_data(t.s, 1, (const uint8_t *)body, 10, RILL_H2_FLAG_END_STREAM, NULL), 0);
    drain(t.s, &t.out);
    assert_null(find_frame(&t.out, RILL_H2_DATA, 1));
    /* a window of 3 lets exactly 3 bytes go */
    tf_settings(&b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 3u);
    feed_drain(&t, &b);
    const tframe *d = find_frame(&t.out, RILL_H2_DATA, 1);
    assert_non_null(d);
    assert_int_equal(d->len, 3);
    assert_int_equal(d->flags, 0);
    /* a negative window: SETTINGS lowering it after use */
    tf_settings(&b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 1u);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_send_window(t.s, 1), -2);
    tf_window_update(&b, 1, 2);
    feed_drain(&t, &b);
    assert_null(find_frame(&t.out, RILL_H2_DATA, 1));
    tf_settings(&b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 100u);
    feed_drain(&t, &b);
    d = find_frame(&t.out, RILL_H2_DATA, 1);
    assert_non_null(d);
    assert_int_equal(d->len, 7);
    assert_int_equal(d->flags, 1);
    assert_memory_equal(d->payload, "3456789", 7);
    tb_free(&b);
    tsess_free(&t);
}

static void s6_9_2_initial_window_overflow(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    tf_window_update(&b, 1, 0x7fffffffu - 65535);
    tf_settings(&b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 65536u);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_FLOW_CONTROL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- 6.10 CONTINUATION ---- */

static void s6_10_header_block_across_continuations(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, "x-one", "1", "x-two", "2", NULL);
    size_t third = blk.len / 3;
    tf_frame(&b, RILL_H2_HEADERS, 0x1, 1, blk.p, third);
    tf_frame(&b, RILL_H2_CONTINUATION, 0, 1, blk.p + third, third);
    tf_frame(&b, RILL_H2_CONTINUATION, 0x4, 1, blk.p + 2 * third, blk.len - 2 * third);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    const tevent *e = rec_find(&t.rec, EV_HEADERS, 1);
    assert_non_null(e);
    assert_true(ev_has(e, "x-two: 2\n"));
    assert_int_equal(e->code, RILL_H2_FLAG_END_STREAM);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s6_10_continuation_on_other_stream(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_frame(&b, RILL_H2_HEADERS, 0x1, 1, blk.p, 4);
    tf_frame(&b, RILL_H2_CONTINUATION, 0x4, 3, blk.p + 4, blk.len - 4);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void s6_10_continuation_after_end_headers(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, "x-a", "b", NULL);
    tf_get(&b, 1, 0);
    tf_frame(&b, RILL_H2_CONTINUATION, 0x4, 1, blk.p, blk.len);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s3_5_server_sends_settings_first),
        cmocka_unit_test(s3_5_invalid_preface_is_protocol_error),
        cmocka_unit_test(s3_5_first_frame_must_be_settings),
        cmocka_unit_test(s3_5_preface_split_byte_by_byte),
        cmocka_unit_test(s3_4_client_sends_preface_and_settings),
        cmocka_unit_test(s6_5_3_settings_ack_timeout),
        cmocka_unit_test(s6_5_3_ack_clears_deadline),
        cmocka_unit_test(s4_1_unknown_type_ignored),
        cmocka_unit_test(s4_1_unknown_flags_and_reserved_bit_ignored),
        cmocka_unit_test(s4_2_data_of_max_size_accepted),
        cmocka_unit_test(s4_2_frame_over_max_frame_size),
        cmocka_unit_test(s4_2_headers_over_max_frame_size),
        cmocka_unit_test(s4_2_larger_max_frame_size_applies_after_ack),
        cmocka_unit_test(s4_3_invalid_header_block_is_compression_error),
        cmocka_unit_test(s4_3_dynamic_table_kept_across_ignored_blocks),
        cmocka_unit_test(s4_3_lowered_table_size_needs_size_update),
        cmocka_unit_test(s4_3_peer_table_size_zero_is_announced),
        cmocka_unit_test(s5_1_idle_data_is_protocol_error),
        cmocka_unit_test(s5_1_idle_rst_stream_is_protocol_error),
        cmocka_unit_test(s5_1_idle_window_update_is_protocol_error),
        cmocka_unit_test(s5_1_idle_continuation_is_protocol_error),
        cmocka_unit_test(s5_1_idle_priority_allowed),
        cmocka_unit_test(s5_1_half_closed_remote_data_is_stream_closed),
        cmocka_unit_test(s5_1_half_closed_remote_headers_is_stream_closed),
        cmocka_unit_test(s5_1_half_closed_remote_allows_window_update_and_priority),
        cmocka_unit_test(s5_1_closed_after_end_stream_data_is_stream_closed),
        cmocka_unit_test(s5_1_closed_after_peer_rst_is_stream_closed),
        cmocka_unit_test(s5_1_frames_after_our_rst_are_ignored),
        cmocka_unit_test(s5_1_reserved_frames_from_client_rejected),
        cmocka_unit_test(s5_1_1_even_stream_from_client),
        cmocka_unit_test(s5_1_1_decreasing_stream_id),
        cmocka_unit_test(s5_1_forgotten_closed_stream_is_not_a_new_one),
        cmocka_unit_test(s5_1_skipped_id_after_the_record_wraps),
        cmocka_unit_test(s5_1_2_refused_over_max_concurrent),
        cmocka_unit_test(s5_3_1_headers_depending_on_itself),
        cmocka_unit_test(s5_3_1_priority_depending_on_itself),
        cmocka_unit_test(s5_4_1_goaway_carries_last_stream_and_stops_reading),
        cmocka_unit_test(s6_1_data_on_stream_0),
        cmocka_unit_test(s6_1_padded_data_delivered_without_padding),
        cmocka_unit_test(s6_1_data_pad_length_too_large),
        cmocka_unit_test(s6_2_headers_on_stream_0),
        cmocka_unit_test(s6_2_padded_headers_with_priority),
        cmocka_unit_test(s6_2_headers_pad_too_large),
        cmocka_unit_test(s6_2_headers_then_other_frame_before_continuation),
        cmocka_unit_test(s6_2_headers_then_unknown_frame_before_continuation),
        cmocka_unit_test(s6_3_priority_on_stream_0),
        cmocka_unit_test(s6_3_priority_bad_length_is_stream_error),
        cmocka_unit_test(s6_4_rst_on_stream_0),
        cmocka_unit_test(s6_4_rst_bad_length),
        cmocka_unit_test(s6_5_ack_with_payload),
        cmocka_unit_test(s6_5_settings_on_stream),
        cmocka_unit_test(s6_5_settings_bad_length),
        cmocka_unit_test(s6_5_unknown_setting_ignored_and_acked),
        cmocka_unit_test(s6_5_2_setting_values),
        cmocka_unit_test(s6_5_settings_we_send_are_acknowledged_and_applied),
        cmocka_unit_test(s6_5_initial_settings_content),
        cmocka_unit_test(s6_5_3_last_value_of_a_setting_wins),
        cmocka_unit_test(s3_4_client_requires_server_settings_first),
        cmocka_unit_test(s6_9_reserved_bit_of_increment_ignored),
        cmocka_unit_test(rfc9218_priority_update_to_client_is_error),
        cmocka_unit_test(s6_7_ping_ack_and_errors),
        cmocka_unit_test(s6_7_submitted_ping_comes_back),
        cmocka_unit_test(s6_8_goaway_on_stream),
        cmocka_unit_test(s6_8_graceful_shutdown_two_steps),
        cmocka_unit_test(s6_8_streams_after_our_goaway_are_ignored),
        cmocka_unit_test(s6_8_shutdown_completes_without_ping_ack),
        cmocka_unit_test(s6_9_zero_increment_connection),
        cmocka_unit_test(s6_9_zero_increment_stream),
        cmocka_unit_test(s6_9_bad_length),
        cmocka_unit_test(s6_9_1_connection_window_overflow),
        cmocka_unit_test(s6_9_1_stream_window_overflow),
        cmocka_unit_test(s6_9_2_initial_window_change_applies_to_open_streams),
        cmocka_unit_test(s6_9_2_initial_window_overflow),
        cmocka_unit_test(s6_10_header_block_across_continuations),
        cmocka_unit_test(s6_10_continuation_on_other_stream),
        cmocka_unit_test(s6_10_continuation_after_end_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
