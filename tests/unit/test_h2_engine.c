/* Engine behaviour beyond single-frame rules: receive-window strategy and back-pressure, output
 * buffers and DATA sources, RFC 9218 scheduling, flood limits (section 10.5), memory figures. */
#include "h2_test_util.h"

static void small_windows(rill_h2_options *o)
{
    o->local.initial_window_size = 1000;
    o->connection_window = 65535;
}

static void window_update_after_half_consumed(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, small_windows);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    static char body[1000];
    tf_data(&b, 1, 0, body, 400);
    feed_drain(&t, &b);
    /* nothing consumed yet: no WINDOW_UPDATE, the peer is held back */
    assert_null(find_frame(&t.out, RILL_H2_WINDOW_UPDATE, -1));
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 600);
    assert_int_equal(rill_h2_consume(t.s, 1, 400), 0);
    drain(t.s, &t.out);
    assert_null(find_frame(&t.out, RILL_H2_WINDOW_UPDATE, 1)); /* under half */
    tf_data(&b, 1, 0, body, 200);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_consume(t.s, 1, 200), 0);
    drain(t.s, &t.out);
    const tframe *wu = find_frame(&t.out, RILL_H2_WINDOW_UPDATE, 1);
    assert_non_null(wu);
    assert_int_equal(get32(wu->payload), 600);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 1000);
    /* a slow reader: the peer exceeding the window is a FLOW_CONTROL_ERROR */
    tf_data(&b, 1, 0, body, 1000);
    tf_data(&b, 1, 0, body, 1);
    feed_drain(&t, &b);
    expect_rst(&t.out, 1, RILL_H2_FLOW_CONTROL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void connection_window_overrun_is_connection_error(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    static char body[16384];
    for (uint32_t sid = 1; sid <= 9; sid += 2) {
        tf_get(&b, sid, 0);
        if (sid < 9)
            tf_data(&b, sid, 0, body, 16384);
    }
    tf_data(&b, 9, 0, body, 4); /* 4*16384 + 4 > 65535 */
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_FLOW_CONTROL);
    expect_goaway(&t.out, RILL_H2_FLOW_CONTROL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

static void auto_consume(rill_h2_options *o)
{
    o->auto_consume = true;
    o->connection_window = 1 << 20;
}

static void auto_consume_and_large_connection_window(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, auto_consume);
    tbuf b = {0};
    static char body[16384];
    tf_get(&b, 1, 0);
    for (int i = 0; i < 40; i++) /* 640 KiB, more than 65535: only legal with the big window */
        tf_data(&b, 1, 0, body, sizeof body);
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.body[1].len, 40 * 16384);
    assert_true(count_frames(&t.out, RILL_H2_WINDOW_UPDATE) >= 2);
    tb_free(&b);
    tsess_free(&t);
}

static void unconsumed_bytes_return_to_connection_at_close(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    static char body[16384];
    tf_get(&b, 1, 0);
    tf_data(&b, 1, 0, body, 16384);
    tf_data(&b, 1, 0, body, 16384);
    tf_rst(&b, 1, RILL_H2_CANCEL);
    feed_drain(&t, &b);
    const tframe *wu = find_frame(&t.out, RILL_H2_WINDOW_UPDATE, 0);
    assert_non_null(wu);
    assert_int_equal(get32(wu->payload), 32768);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- output ---- */

static void referenced_buffers_released_after_write_or_reset(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    tf_get(&b, 3, 0x1);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t big[100000];
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 1, 0), 0);
    assert_int_equal(rill_h2_submit_data(t.s, 1, big, 1000, 0, (void *)1), 0);
    /* iovecs point into the caller's buffer: no copy */
    struct iovec iov[8];
    int n = rill_h2_session_output(t.s, iov, 8);
    bool found = false;
    for (int i = 0; i < n; i++)
        found |= iov[i].iov_base == (void *)big && iov[i].iov_len == 1000;
    assert_true(found);
    assert_null(rec_find(&t.rec, EV_RELEASED, 1)); /* not yet written */
    drain(t.s, &t.out);
    assert_non_null(rec_find(&t.rec, EV_RELEASED, 1));
    /* a buffer larger than the window stays queued; a reset releases it */
    assert_int_equal(rill_h2_submit_response(t.s, 3, ok, 1, 0), 0);
    assert_int_equal(rill_h2_submit_data(t.s, 3, big, sizeof big, RILL_H2_FLAG_END_STREAM, (void *)3), 0);
    drain(t.s, &t.out);
    assert_null(rec_find(&t.rec, EV_RELEASED, 3));
    size_t sent = 0;
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA && t.out.f[i].sid == 3)
            sent += t.out.f[i].len;
    assert_int_equal(sent, 65535 - 1000); /* the connection window limits it */
    tf_rst(&b, 3, RILL_H2_CANCEL);
    feed_drain(&t, &b);
    const tevent *e = rec_find(&t.rec, EV_RELEASED, 3);
    assert_non_null(e);
    assert_int_equal(e->other, 3);
    tb_free(&b);
    tsess_free(&t);
}

static void release_waits_for_partial_write(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t body[500];
    rill_h2_submit_response(t.s, 1, ok, 1, 0);
    rill_h2_submit_data(t.s, 1, body, sizeof body, RILL_H2_FLAG_END_STREAM, (void *)9);
    struct iovec iov[8];
    int n = rill_h2_session_output(t.s, iov, 8);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    /* the stream is closed already (END_STREAM queued), but the bytes are not written yet */
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    rill_h2_session_output_sent(t.s, total - 1);
    assert_null(rec_find(&t.rec, EV_RELEASED, 1));
    rill_h2_session_output_sent(t.s, 1);
    assert_non_null(rec_find(&t.rec, EV_RELEASED, 1));
    tb_free(&b);
    tsess_free(&t);
}

struct src {
    size_t left;
    bool block;
    int calls;
};

static int read_src(rill_h2_session *s, int32_t sid, uint8_t *buf, size_t max, bool *eof, void *user)
{
    struct src *r = user;
    r->calls++;
    if (r->block)
        return RILL_ERR_WOULD_BLOCK;
    if (r->left == 0) {
        *eof = true; /* the end comes as a separate, empty read */
        return 0;
    }
    size_t n = r->left < max ? r->left : max;
    if (n > 3000)
        n = 3000;
    memset(buf, 'z', n);
    r->left -= n;
    return (int)n;
}

static void pull_source_with_pause_and_trailers(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    rill_header tr[] = {F("x-sum", "1")};
    struct src r = {.left = 10000, .block = true};
    rill_h2_submit_response(t.s, 1, ok, 1, 0);
    assert_int_equal(rill_h2_set_data_source(t.s, 1, read_src, &r), 0);
    assert_int_equal(rill_h2_submit_trailers(t.s, 1, tr, 1), 0);
    drain(t.s, &t.out);
    assert_null(find_frame(&t.out, RILL_H2_DATA, 1));
    int calls = r.calls;
    drain(t.s, &t.out); /* paused: not asked again */
    assert_int_equal(r.calls, calls);
    r.block = false;
    assert_int_equal(rill_h2_resume_data(t.s, 1), 0);
    drain(t.s, &t.out);
    size_t got = 0;
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA) {
            got += t.out.f[i].len;
            assert_int_equal(t.out.f[i].flags, 0); /* trailers end the stream */
        }
    assert_int_equal(got, 10000);
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            assert_true(t.out.f[i].len > 0); /* no empty DATA before the trailers */
    assert_int_equal(t.out.f[t.out.n - 1].type, RILL_H2_HEADERS);
    assert_int_equal(t.out.f[t.out.n - 1].flags, 0x5);
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    tb_free(&b);
    tsess_free(&t);
}

static void incremental_streams_round_robin(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    tf_settings(&b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 100000u);
    tf_window_update(&b, 0, 1000000);
    for (uint32_t sid = 1; sid <= 5; sid += 2) {
        blk.len = 0;
        hp_block(&blk, GET_FIELDS, "priority", sid == 5 ? "u=3" : "u=3, i", NULL);
        tf_headers_block(&b, sid, 0x5, &blk);
    }
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t body[3][40000];
    for (uint32_t sid = 1; sid <= 5; sid += 2) {
        rill_h2_submit_response(t.s, (int32_t)sid, ok, 1, 0);
        rill_h2_submit_data(t.s, (int32_t)sid, body[sid / 2], 40000, RILL_H2_FLAG_END_STREAM, NULL);
    }
    drain(t.s, &t.out);
    /* non-incremental stream 5 first, all of it; then 1 and 3 alternate */
    uint32_t seq[32];
    size_t k = 0;
    for (size_t i = 0; i < t.out.n && k < 32; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            seq[k++] = t.out.f[i].sid;
    assert_true(k >= 9);
    assert_int_equal(seq[0], 5);
    assert_int_equal(seq[1], 5);
    assert_int_equal(seq[2], 5);
    assert_int_equal(seq[3], 1);
    assert_int_equal(seq[4], 3);
    assert_int_equal(seq[5], 1);
    assert_int_equal(seq[6], 3);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void priority_update_frame_reorders(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    tf_get(&b, 3, 0x1);
    uint8_t pu[4 + 3] = {0, 0, 0, 3, 'u', '=', '0'};
    tf_frame(&b, RILL_H2_PRIORITY_UPDATE, 0, 0, pu, sizeof pu);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t body[10];
    for (int32_t sid = 1; sid <= 3; sid += 2) {
        rill_h2_submit_response(t.s, sid, ok, 1, 0);
        rill_h2_submit_data(t.s, sid, body, 10, RILL_H2_FLAG_END_STREAM, NULL);
    }
    drain(t.s, &t.out);
    const tframe *first = NULL;
    for (size_t i = 0; i < t.out.n && !first; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            first = &t.out.f[i];
    assert_non_null(first);
    assert_int_equal(first->sid, 3);
    /* an update that arrives before its request is kept and applied when the stream opens */
    uint8_t early[4 + 3] = {0, 0, 0, 7, 'u', '=', '0'};
    tf_frame(&b, RILL_H2_PRIORITY_UPDATE, 0, 0, early, sizeof early);
    tf_get(&b, 5, 0x1);
    tf_get(&b, 7, 0x1);
    feed_drain(&t, &b);
    for (int32_t sid = 5; sid <= 7; sid += 2) {
        rill_h2_submit_response(t.s, sid, ok, 1, 0);
        rill_h2_submit_data(t.s, sid, body, 10, RILL_H2_FLAG_END_STREAM, NULL);
    }
    drain(t.s, &t.out);
    first = NULL;
    for (size_t i = 0; i < t.out.n && !first; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            first = &t.out.f[i];
    assert_non_null(first);
    assert_int_equal(first->sid, 7);
    /* on a stream other than 0: connection error */
    tf_frame(&b, RILL_H2_PRIORITY_UPDATE, 0, 1, pu, sizeof pu);
    assert_true(feed_drain(&t, &b) < 0);
    expect_goaway(&t.out, RILL_H2_PROTOCOL_ERROR);
    tb_free(&b);
    tsess_free(&t);
}

/* Non-incremental streams whose responses come in reverse order are still served in stream
 * order (a stream joins its queue before a later one, not only at the end). */
static void streams_served_in_id_order_whatever_the_submit_order(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    for (uint32_t sid = 1; sid <= 7; sid += 2)
        tf_get(&b, sid, 0x1);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t body[20000];
    static const int32_t order[] = {7, 3, 5, 1};
    for (int i = 0; i < 4; i++)
        rill_h2_submit_response(t.s, order[i], ok, 1, 0);
    for (int i = 0; i < 4; i++)
        rill_h2_submit_data(t.s, order[i], body, sizeof body, RILL_H2_FLAG_END_STREAM, NULL);
    drain(t.s, &t.out);
    /* 65535 of window: stream 1 whole (two frames), 3 whole, 5 the rest; 7 nothing yet */
    uint32_t seq[16];
    size_t k = 0;
    for (size_t i = 0; i < t.out.n && k < 16; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            seq[k++] = t.out.f[i].sid;
    assert_true(k >= 5);
    assert_int_equal(seq[0], 1);
    assert_int_equal(seq[1], 1);
    assert_int_equal(seq[2], 3);
    assert_int_equal(seq[3], 3);
    assert_int_equal(seq[4], 5);
    tf_window_update(&b, 0, 1000000);
    feed_drain(&t, &b);
    const tframe *last = NULL;
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            last = &t.out.f[i];
    assert_non_null(last);
    assert_int_equal(last->sid, 7);
    expect_no_error(&t.out);
    tb_free(&b);
    tsess_free(&t);
}

/* A client changing a stream's priority while its body waits for window moves the stream to its
 * new queue (its old queue must not keep it). */
static void client_priority_update_moves_a_queued_stream(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_CLIENT, NULL);
    rill_header req[] = {F(":method", "POST"), F(":scheme", "https"), F(":path", "/"),
                         F(":authority", "example.com")};
    static uint8_t body[100000];
    int32_t a = rill_h2_submit_request(t.s, req, 4, 0, NULL);
    int32_t c = rill_h2_submit_request(t.s, req, 4, 0, NULL);
    assert_int_equal(a, 1);
    assert_int_equal(c, 3);
    assert_int_equal(rill_h2_submit_data(t.s, a, body, sizeof body, RILL_H2_FLAG_END_STREAM, NULL), 0);
    assert_int_equal(rill_h2_submit_data(t.s, c, body, sizeof body, RILL_H2_FLAG_END_STREAM, NULL), 0);
    drain(t.s, &t.out); /* the connection window (65535) is spent on stream 1 */
    assert_int_equal(rill_h2_submit_priority_update(t.s, c, 0, false), 0);
    assert_int_equal(rill_h2_submit_priority_update(t.s, a, 6, false), 0);
    t.out.n = 0;
    tbuf b = {0};
    tf_window_update(&b, 0, 1000000);
    tf_window_update(&b, 1, 1000000);
    tf_window_update(&b, 3, 1000000);
    feed_drain(&t, &b);
    size_t sent[2] = {0, 0};
    int32_t first = 0;
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA) {
            if (!first)
                first = (int32_t)t.out.f[i].sid;
            sent[t.out.f[i].sid == 3] += t.out.f[i].len;
        }
    assert_int_equal(first, 3); /* urgency 0 now goes first */
    assert_int_equal(sent[1], sizeof body);
    assert_int_equal(sent[0], sizeof body - 65535);
    tb_free(&b);
    tsess_free(&t);
}

/* A PRIORITY_UPDATE for a stream not open yet survives an idle trim (the stream table that
 * holds it is otherwise given back). */
static void early_priority_update_survives_trim(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    uint8_t early[4 + 3] = {0, 0, 0, 3, 'u', '=', '0'};
    tf_frame(&b, RILL_H2_PRIORITY_UPDATE, 0, 0, early, sizeof early);
    feed_drain(&t, &b);
    rill_h2_session_trim(t.s);
    tf_get(&b, 1, 0x1);
    tf_get(&b, 3, 0x1);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t body[10];
    for (int32_t sid = 1; sid <= 3; sid += 2) {
        rill_h2_submit_response(t.s, sid, ok, 1, 0);
        rill_h2_submit_data(t.s, sid, body, 10, RILL_H2_FLAG_END_STREAM, NULL);
    }
    t.out.n = 0;
    drain(t.s, &t.out);
    const tframe *first = NULL;
    for (size_t i = 0; i < t.out.n && !first; i++)
        if (t.out.f[i].type == RILL_H2_DATA)
            first = &t.out.f[i];
    assert_non_null(first);
    assert_int_equal(first->sid, 3);
    tb_free(&b);
    tsess_free(&t);
}

/* Several SETTINGS in flight: each ACK applies the oldest (section 6.5.3), up to a limit. */
static void settings_in_flight_apply_in_order(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    uint16_t id = RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE;
    uint32_t v1 = 1000, v2 = 3000, v3 = 5000, v4 = 7000, v5 = 9000;
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v1, 1), 0);
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v2, 1), 0);
    assert_int_equal(rill_h2_session_local_settings(t.s)->initial_window_size, 3000);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    feed_drain(&t, &b);
    /* nothing acknowledged: the window of a new stream is what was in effect before */
    int64_t before = rill_h2_session_recv_window(t.s, 1);
    assert_true(before != 1000 && before != 3000);
    tf_settings_ack(&b);
    tf_get(&b, 3, 0);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 1000);
    assert_int_equal(rill_h2_session_recv_window(t.s, 3), 1000);
    tf_settings_ack(&b);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 3000);
    /* at most four unacknowledged */
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v3, 1), 0);
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v4, 1), 0);
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v5, 1), 0);
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v1, 1), 0);
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v2, 1), RILL_ERR_LIMIT);
    for (int i = 0; i < 4; i++)
        tf_settings_ack(&b);
    tf_get(&b, 5, 0);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_recv_window(t.s, 5), 1000);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 1000);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- floods (section 10.5) ---- */

static void flood_case(void (*build)(tbuf *b, int i), int count, const char *what)
{
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    for (int i = 0; i < count; i++)
        build(&b, i);
    int64_t rc = feed_drain(&t, &b);
    if (rc != RILL_ERR_LIMIT)
        fprintf(stderr, "%s: rc %lld\n", what, (long long)rc);
    assert_int_equal(rc, RILL_ERR_LIMIT);
    expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
    tb_free(&b);
    tsess_free(&t);
}
static void build_ping(tbuf *b, int i) { tf_ping(b, 0, "pingping"); }
static void build_settings(tbuf *b, int i) { tf_settings(b, 0); }
static void build_rapid_reset(tbuf *b, int i)
{
    tf_get(b, (uint32_t)(2 * i + 1), 0);
    tf_rst(b, (uint32_t)(2 * i + 1), RILL_H2_CANCEL);
}
static void build_refused(tbuf *b, int i) { tf_get(b, (uint32_t)(2 * i + 1), 0); }
static void build_empty_data(tbuf *b, int i)
{
    if (i == 0)
        tf_get(b, 1, 0);
    tf_data(b, 1, 0, "", 0);
}
static void build_tiny_wu(tbuf *b, int i)
{
    if (i == 0) { /* a stream whose window starts empty: each increment could send a tiny frame */
        tf_settings(b, 1, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE, 0u);
        tf_get(b, 1, 0);
    }
    tf_window_update(b, 1, 1);
}
static void build_priority(tbuf *b, int i)
{
    uint8_t p[5] = {0, 0, 0, 0, 1};
    tf_frame(b, RILL_H2_PRIORITY, 0, (uint32_t)(2 * i + 1), p, 5);
}

static void floods_end_in_enhance_your_calm(void **state)
{
    (void)state;
    flood_case(build_ping, 200, "PING");
    flood_case(build_settings, 200, "SETTINGS");
    flood_case(build_rapid_reset, 1100, "rapid reset");
    flood_case(build_refused, 1200, "refused streams");
    flood_case(build_empty_data, 1100, "empty DATA");
    flood_case(build_tiny_wu, 1100, "tiny WINDOW_UPDATE");
    flood_case(build_priority, 1100, "PRIORITY");
}

/* Tiny increments to a window of a full frame or more are credit given back, not a flood: a
 * gRPC client sends one per small message it reads (a stream of 1,000 was cut off by this). */
static void tiny_window_updates_to_a_large_window_are_fine(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0);
    for (int i = 0; i < 3000; i++) {
        tf_window_update(&b, 0, 37);
        tf_window_update(&b, 1, 37);
    }
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    tb_free(&b);
    tsess_free(&t);
}

static void flood_budget_refills_with_time(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 90; i++)
            tf_ping(&b, 0, "pingping");
        assert_true(feed_drain(&t, &b) >= 0);
        rill_h2_session_tick(t.s, (uint64_t)(round + 1) * 10000); /* +100 tokens */
    }
    expect_no_error(&t.out);
    tb_free(&b);
    tsess_free(&t);
}

static void slow_ping_rate(rill_h2_options *o) { o->ping_rate = (rill_h2_rate){5, 10}; }

/* The buckets share one refill clock: frames of another kind arriving every 30 ms must not eat a
 * slow bucket's fractions (10 PINGs/s over 300 ms is exactly 3 more, and no fourth). */
static void flood_fractions_survive_shared_clock(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, slow_ping_rate);
    tbuf b = {0};
    for (int i = 0; i < 5; i++)
        tf_ping(&b, 0, "pingping");
    assert_true(feed_drain(&t, &b) >= 0);
    for (int k = 1; k <= 10; k++) {
        rill_h2_session_tick(t.s, (uint64_t)k * 30);
        build_priority(&b, 100 + k); /* takes from its own bucket, refilling all */
        assert_true(feed_drain(&t, &b) >= 0);
    }
    for (int i = 0; i < 3; i++)
        tf_ping(&b, 0, "pingping");
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    tf_ping(&b, 0, "pingping");
    feed_drain(&t, &b);
    expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
    tb_free(&b);
    tsess_free(&t);
}

static void continuation_flood(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0}, blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    tf_frame(&b, RILL_H2_HEADERS, 0, 1, blk.p, blk.len);
    for (int i = 0; i < 100; i++)
        tf_frame(&b, RILL_H2_CONTINUATION, 0, 1, "", 0);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_LIMIT);
    expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

static void small_block_limit(rill_h2_options *o) { o->max_header_block = 20000; }

static void header_block_bytes_limit(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, small_block_limit);
    tbuf b = {0};
    static char junk[16000];
    tf_frame(&b, RILL_H2_HEADERS, 0, 1, junk, sizeof junk);
    tf_frame(&b, RILL_H2_CONTINUATION, 0, 1, junk, sizeof junk);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_LIMIT);
    expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
    tb_free(&b);
    tsess_free(&t);
}

static void small_output(rill_h2_options *o)
{
    o->max_pending_output = 1024;
    o->ping_rate.burst = 0; /* no rate limit: this test is about unread output */
}

static void peer_not_reading_stops_reads_then_fails(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, small_output);
    tbuf b = {0};
    for (int i = 0; i < 80; i++)
        tf_ping(&b, 0, "pingping");
    /* feed without draining: our PING ACKs pile up */
    rill_h2_session_recv(t.s, b.p, b.len);
    assert_false(rill_h2_session_want_read(t.s));
    b.len = 0;
    for (int i = 0; i < 80; i++)
        tf_ping(&b, 0, "pingping");
    assert_int_equal(rill_h2_session_recv(t.s, b.p, b.len), RILL_ERR_LIMIT);
    drain(t.s, &t.out);
    expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- memory ---- */

struct counting {
    size_t live, peak, calls;
};
static void *c_alloc(size_t n, void *ctx)
{
    struct counting *c = ctx;
    c->calls++;
    size_t *p = malloc(n + 16);
    p[0] = n;
    c->live += n;
    if (c->live > c->peak)
        c->peak = c->live;
    return (uint8_t *)p + 16;
}
static void *c_realloc(void *ptr, size_t n, void *ctx)
{
    struct counting *c = ctx;
    if (!ptr)
        return c_alloc(n, ctx);
    c->calls++;
    size_t *p = (size_t *)((uint8_t *)ptr - 16);
    c->live -= p[0];
    p = realloc(p, n + 16);
    p[0] = n;
    c->live += n;
    return (uint8_t *)p + 16;
}
static void c_free(void *ptr, void *ctx)
{
    struct counting *c = ctx;
    if (!ptr)
        return;
    size_t *p = (size_t *)((uint8_t *)ptr - 16);
    c->live -= p[0];
    free(p);
}

static struct counting g_count;
static rill_h2_allocator g_alloc = {c_alloc, c_realloc, c_free, &g_count};
static void counting_alloc(rill_h2_options *o) { o->allocator = &g_alloc; }

static void freeing_the_session_releases_buffers(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    tf_get(&b, 1, 0x1);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t big[200000];
    rill_h2_submit_response(t.s, 1, ok, 1, 0);
    rill_h2_submit_data(t.s, 1, big, sizeof big, 0, (void *)1);
    rill_h2_submit_data(t.s, 1, big, 10, RILL_H2_FLAG_END_STREAM, (void *)2);
    struct iovec iov[4];
    assert_true(rill_h2_session_output(t.s, iov, 4) > 0); /* some bytes referenced by the output */
    rill_h2_session_free(t.s);
    t.s = NULL;
    assert_int_equal(rec_count(&t.rec, EV_RELEASED), 2);
    tb_free(&b);
    tsess_free(&t); /* the session is gone already; this frees the rest and the profile */
}

static void trim_frees_idle_buffers(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    size_t before = rill_h2_session_memory(t.s);
    assert_true(before > 16384); /* the output chunk kept for reuse (no shared pool here) */
    rill_h2_session_trim(t.s);
    assert_true(rill_h2_session_memory(t.s) < 1024); /* the struct alone */
    tbuf b = {0};
    /* and the session still works afterwards */
    tf_get(&b, 1, 0x1);
    tf_ping(&b, 0, "afterwrd");
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_non_null(find_frame(&t.out, RILL_H2_PING, 0));
    tb_free(&b);
    tsess_free(&t);
}

/* A shared output pool: buffers are borrowed while output is in flight and all come back; the
 * header block scratch and the encoder's learning come back when the session is trimmed. */
struct test_pool {
    int gets, puts, out;
    size_t bytes_out; /* sizes given back must match the sizes handed out */
    size_t max_size;  /* the largest block handed out */
};
static struct test_pool g_pool;

static void *pool_get(size_t size, void *ctx)
{
    struct test_pool *p = ctx;
    p->gets++;
    p->out++;
    p->bytes_out += size;
    if (size > p->max_size)
        p->max_size = size;
    return malloc(size);
}

static void pool_put(void *buf, size_t size, void *ctx)
{
    struct test_pool *p = ctx;
    assert_true(p->bytes_out >= size);
    p->bytes_out -= size;
    p->puts++;
    p->out--;
    free(buf);
}

static const rill_h2_buffer_pool test_output_pool = {pool_get, pool_put, &g_pool};
static void with_output_pool(rill_h2_options *o) { o->output_pool = &test_output_pool; }

static void output_pool_buffers_return_when_drained(void **state)
{
    (void)state;
    memset(&g_pool, 0, sizeof g_pool);
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, with_output_pool);
    /* the preface exchange was written and consumed: nothing is borrowed any more */
    assert_true(g_pool.gets >= 1);
    assert_int_equal(g_pool.out, 0);
    assert_true(rill_h2_session_memory(t.s) < 2048);
    tbuf b = {0};
    tf_get(&b, 1, RILL_H2_FLAG_END_STREAM);
    feed_drain(&t, &b);
    rill_header ok[] = {F(":status", "200")};
    static uint8_t body[40000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 1, 0), 0);
    assert_int_equal(rill_h2_submit_data(t.s, 1, body, sizeof body, RILL_H2_FLAG_END_STREAM, NULL), 0);
    struct iovec iov[8];
    assert_true(rill_h2_session_output(t.s, iov, 8) > 0);
    assert_true(g_pool.out >= 1); /* borrowed while the frames wait to be written */
    drain(t.s, &t.out);
    /* what stays borrowed until the connection idles: the header block scratch and the encoder's
     * learning (both brief, so pooled too); the output buffers are back */
    assert_int_equal(g_pool.out, 2);
    rill_h2_session_trim(t.s);
    assert_int_equal(g_pool.out, 0);
    expect_no_error(&t.out);
    /* the body arrived intact across the borrowed buffers */
    tbuf got = {0};
    for (size_t i = 0; i < t.out.n; i++)
        if (t.out.f[i].type == RILL_H2_DATA && t.out.f[i].sid == 1)
            tb_put(&got, t.out.f[i].payload, t.out.f[i].len);
    assert_int_equal(got.len, sizeof body);
    assert_memory_equal(got.p, body, sizeof body);
    tb_free(&got);
    tb_free(&b);
    tsess_free(&t);
    assert_int_equal(g_pool.gets, g_pool.puts);
    assert_int_equal(g_pool.bytes_out, 0);
}

/* With a pool the header block scratch is one pool block: a request with more fields and bytes
 * than it holds moves them to the heap intact, the next requests still decode right, and every
 * block goes back to the pool on trim and at the end. */
static void pooled_header_scratch_grows_to_heap(void **state)
{
    (void)state;
    memset(&g_pool, 0, sizeof g_pool);
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, with_output_pool);
    char expect[2048] = "";
    size_t o = 0;
    tbuf blk = {0};
    hp_block(&blk, GET_FIELDS, NULL);
    o += (size_t)snprintf(expect + o, sizeof expect - o,
                          ":method: GET\n:scheme: https\n:path: /\n:authority: example.com\n");
    for (int i = 0; i < 20; i++) { /* 24 fields, ~1.7 KiB of names and values */
        char name[16], value[64];
        snprintf(name, sizeof name, "x-field-%02d", i);
        memset(value, 'a' + i, 60);
        value[60] = '\0';
        hp_lit(&blk, name, value);
        o += (size_t)snprintf(expect + o, sizeof expect - o, "%s: %s\n", name, value);
    }
    tbuf b = {0};
    tf_headers_block(&b, 1, 0x4 | RILL_H2_FLAG_END_STREAM, &blk);
    tf_get(&b, 3, RILL_H2_FLAG_END_STREAM); /* after the move: the heap arrays serve */
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    int seen = 0;
    for (size_t i = 0; i < t.rec.n; i++) {
        tevent *e = &t.rec.ev[i];
        if (e->kind != EV_HEADERS)
            continue;
        if (e->sid == 1)
            assert_string_equal(e->text, expect);
        else
            assert_string_equal(e->text, ":method: GET\n:scheme: https\n:path: /\n:authority: example.com\n");
        seen++;
    }
    assert_int_equal(seen, 2);
    rill_h2_session_trim(t.s);
    assert_int_equal(g_pool.out, 0);
    tbuf c = {0};
    tf_get(&c, 5, RILL_H2_FLAG_END_STREAM); /* a fresh scratch from the pool */
    feed_drain(&t, &c);
    expect_no_error(&t.out);
    assert_int_equal(t.rec.ev[t.rec.n - 1].sid, 5);
    tb_free(&c);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
    assert_int_equal(g_pool.gets, g_pool.puts);
    assert_int_equal(g_pool.bytes_out, 0);
}

/* With a shared pool the connection start borrows no full-size buffer: our SETTINGS and the ACK
 * of the peer's (same read, as a server sees them) fit in a small one. */
static void connection_start_borrows_no_pool_buffer(void **state)
{
    (void)state;
    memset(&g_pool, 0, sizeof g_pool);
    rill_h2_options opt;
    rill_h2_options_init(&opt, RILL_H2_SERVER);
    opt.output_pool = &test_output_pool;
    static trec rec;
    memset(&rec, 0, sizeof rec);
    rill_h2_profile *prof = rill_h2_profile_new(RILL_H2_SERVER, &opt);
    rill_h2_session *s = rill_h2_session_new_shared(prof, &rec_cbs, &rec, 0);
    assert_non_null(s);
    /* a session made from options alone carries its own copy of them; a shared one does not */
    rill_h2_session *alone = rill_h2_session_new(RILL_H2_SERVER, &opt, &rec_cbs, &rec);
    assert_true(rill_h2_session_memory(alone) > rill_h2_session_memory(s) + 64);
    rill_h2_session_free(alone);
    rec.n = 0;
    tbuf b = {0};
    tb_put(&b, PREFACE, 24);
    tf_settings(&b, 0);
    tf_settings_ack(&b);
    assert_int_equal(rill_h2_session_recv(s, b.p, b.len), (int64_t)b.len);
    static tout out;
    memset(&out, 0, sizeof out);
    drain(s, &out);
    expect_no_error(&out);
    int settings = 0, acks = 0;
    for (size_t i = 0; i < out.n; i++)
        if (out.f[i].type == RILL_H2_SETTINGS)
            *(out.f[i].flags & 1 ? &acks : &settings) += 1;
    assert_int_equal(settings, 1);
    assert_int_equal(acks, 1);
    assert_true(g_pool.gets >= 1);
    assert_true(g_pool.max_size < 1024);
    assert_int_equal(g_pool.out, 0);
    /* drained and acknowledged: the session holds nothing but itself */
    assert_true(rill_h2_session_memory(s) <= 376);
    rill_h2_session_free(s);
    rill_h2_profile_free(prof);
    tb_free(&b);
    tb_free(&out.raw);
    rec_free(&rec);
}

/* Before the peer acknowledges our first SETTINGS the protocol defaults hold, with no record of
 * them kept (an idle, unacknowledged session is its struct alone); a second SETTINGS sent then is
 * applied after the first, ACK by ACK. */
static void settings_second_before_first_ack(void **state)
{
    (void)state;
    tsess t;
    memset(&t, 0, sizeof t);
    rill_h2_options_init(&t.opt, RILL_H2_SERVER);
    t.opt.connection_window = 65535;
    t.opt.output_pool = &test_output_pool; /* drained output goes back: only the struct stays */
    memset(&g_pool, 0, sizeof g_pool);
    t.prof = rill_h2_profile_new(RILL_H2_SERVER, &t.opt);
    t.s = rill_h2_session_new_shared(t.prof, &rec_cbs, &t.rec, 0);
    assert_non_null(t.s);
    tbuf b = {0};
    tb_put(&b, PREFACE, 24);
    tf_settings(&b, 0); /* the peer's SETTINGS, but no ACK of ours yet */
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_true(rill_h2_session_memory(t.s) <= 376);
    assert_int_equal(rill_h2_session_local_settings(t.s)->initial_window_size, 256 * 1024);
    tf_get(&b, 1, 0);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), RILL_H2_DEFAULT_WINDOW);
    uint16_t id = RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE;
    uint32_t v = 1000;
    assert_int_equal(rill_h2_submit_settings(t.s, &id, &v, 1), 0);
    tf_settings_ack(&b); /* acknowledges the first: 256 KiB */
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 256 * 1024);
    tf_settings_ack(&b); /* the second: 1000 */
    tf_get(&b, 3, 0);
    feed_drain(&t, &b);
    expect_no_error(&t.out);
    assert_int_equal(rill_h2_session_recv_window(t.s, 1), 1000);
    assert_int_equal(rill_h2_session_recv_window(t.s, 3), 1000);
    tf_settings_ack(&b); /* one too many: nothing is outstanding */
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_recv_window(t.s, 3), 1000);
    tb_free(&b);
    tsess_free(&t);
}

/* A vectored source: several frames' payloads per call when the windows allow, frames never above
 * SETTINGS_MAX_FRAME_SIZE, the bytes intact and in order, END_STREAM on the last frame only. */
struct vsrc {
    const uint8_t *data;
    size_t len, off, max_frame;
    int calls, max_iov;
};

static int vread(rill_h2_session *s, int32_t id, const struct iovec *iov, int n, bool *eof, void *u)
{
    (void)s, (void)id;
    struct vsrc *v = u;
    v->calls++;
    if (n > v->max_iov)
        v->max_iov = n;
    size_t got = 0;
    for (int i = 0; i < n && v->off < v->len; i++) {
        assert_true(iov[i].iov_len <= v->max_frame);
        size_t take = v->len - v->off < iov[i].iov_len ? v->len - v->off : iov[i].iov_len;
        memcpy(iov[i].iov_base, v->data + v->off, take);
        v->off += take;
        got += take;
        if (take < iov[i].iov_len)
            break; /* a short fill ends the call, like preadv at end of file */
    }
    *eof = v->off == v->len;
    return (int)got;
}

static void big_windows(rill_h2_options *o)
{
    o->connection_window = 1 << 20;
}

/* peer_max_frame: 0 keeps the default 16384. full_len: the payload every frame but the last
 * must have when the windows are open (0: not checked). */
static void vectored_source_shaped(void (*custom)(rill_h2_options *), bool peer_big_window,
                                   uint32_t peer_max_frame, size_t full_len, int frames_per_call)
{
    memset(&g_pool, 0, sizeof g_pool);
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, custom);
    tbuf b = {0};
    if (peer_big_window && peer_max_frame) {
        tf_settings(&b, 2, 0x4u, 1u << 20, 0x5u, peer_max_frame);
        tf_window_update(&b, 0, (1u << 20));
    } else if (peer_big_window) { /* the peer allows more than 3 frames at once */
        tf_settings(&b, 1, 0x4u, 1u << 20);
        tf_window_update(&b, 0, (1u << 20));
    }
    uint32_t max_frame = peer_max_frame ? peer_max_frame : RILL_H2_MIN_FRAME_SIZE;
    tf_get(&b, 1, RILL_H2_FLAG_END_STREAM);
    feed_drain(&t, &b);
    static uint8_t body[200000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 131 + (i >> 9));
    struct vsrc v = {body, sizeof body, 0, max_frame, 0, 0};
    rill_header ok[] = {F(":status", "200")};
    assert_int_equal(rill_h2_submit_response(t.s, 1, ok, 1, 0), 0);
    assert_int_equal(rill_h2_set_data_source_v(t.s, 1, vread, &v), 0);
    tbuf got = {0};
    int data_frames = 0, ends = 0;
    for (int round = 0; round < 64 && got.len < sizeof body; round++) {
        drain(t.s, &t.out);
        for (size_t i = 0; i < t.out.n; i++) {
            const tframe *f = &t.out.f[i];
            if (f->type != RILL_H2_DATA || f->sid != 1)
                continue;
            assert_true(f->len <= max_frame);
            if (full_len && !(f->flags & 1))
                assert_int_equal(f->len, full_len);
            tb_put(&got, f->payload, f->len);
            data_frames++;
            ends += f->flags & 1;
        }
        if (!peer_big_window) { /* the default windows: give them back as a client would */
            tf_window_update(&b, 0, 65535);
            tf_window_update(&b, 1, 65535);
            feed(&t, &b);
            b.len = 0;
        }
    }
    expect_no_error(&t.out);
    assert_int_equal(got.len, sizeof body);
    assert_memory_equal(got.p, body, sizeof body);
    assert_int_equal(ends, 1);
    if (frames_per_call) {
        assert_int_equal(v.max_iov, frames_per_call);
    } else {
        assert_true(v.max_iov >= 2);         /* several frames per call */
        assert_true(v.calls < data_frames);  /* fewer calls than frames */
    }
    tb_free(&got);
    tb_free(&b);
    tsess_free(&t);
    assert_int_equal(g_pool.out, 0);
}

static void vectored_source(void (*custom)(rill_h2_options *), bool peer_big_window)
{
    vectored_source_shaped(custom, peer_big_window, 0, 0, 0);
}

/* With open windows one call fills one batch that fits a 64 KiB TCP segment (loopback's MSS is
 * 65483) exactly: four equal frames at the default size, not three full ones, nor four that
 * spill a scrap segment. A larger frame size gives fewer, larger frames; frames as large as the
 * batch go one at a time. */
static void vectored_batches_fit_one_segment(void **state)
{
    (void)state;
    vectored_source_shaped(big_windows, true, 0, 16361, 4);
    assert_true(4 * (9 + 16361) <= 65483);
    vectored_source_shaped(big_windows, true, 40000, 32731, 2);
    vectored_source_shaped(big_windows, true, 1u << 20, 0, 1);
}

static void vectored_source_fills_several_frames(void **state)
{
    (void)state;
    vectored_source(big_windows, true);
    vectored_source(with_output_pool, true);
    vectored_source(NULL, false);
}

static void memory_idle_and_per_stream(void **state)
{
    (void)state;
    memset(&g_count, 0, sizeof g_count);
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, counting_alloc);
    rill_h2_session_trim(t.s);
    size_t idle = rill_h2_session_memory(t.s);
    size_t profile = g_count.live - idle; /* the shared profile, counted once for all sessions */
    assert_true(profile > 0 && profile < 256);
    tbuf b = {0};
    for (uint32_t sid = 1; sid <= 199; sid += 2)
        tf_get(&b, sid, 0);
    feed_drain(&t, &b);
    assert_int_equal(rill_h2_session_stream_count(t.s), 100);
    rill_h2_session_trim(t.s);
    size_t with_streams = rill_h2_session_memory(t.s);
    size_t per_stream = (with_streams - idle) / 100;
    printf("h2 memory: idle session %zu bytes, per open stream %zu bytes (struct %zu); "
           "HPACK tables not counted\n", idle, per_stream, rill_h2_stream_size());
    /* An idle session is its struct alone (no buffers, tables or scratch): keep it that small. */
    assert_true(idle <= 376);
    assert_true(per_stream <= 512);
    /* streams go back to the free list and trim gives it back */
    for (uint32_t sid = 1; sid <= 199; sid += 2)
        tf_rst(&b, sid, RILL_H2_CANCEL);
    feed_drain(&t, &b);
    rill_h2_session_trim(t.s);
    assert_true(rill_h2_session_memory(t.s) <= idle + 32 * 8 + 64);
    tb_free(&b);
    tsess_free(&t);
    assert_int_equal(g_count.live, 0);
}

/* Steady state: requests with bodies and responses cost the session no allocation at all. */
static void no_allocation_per_request_in_steady_state(void **state)
{
    (void)state;
    memset(&g_count, 0, sizeof g_count);
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, counting_alloc);
    tbuf b = {0}, blk = {0};
    rill_header ok[] = {F(":status", "200"), F("content-type", "text/plain")};
    static const uint8_t body[100];
    size_t calls_after_warmup = 0;
    for (uint32_t i = 0; i < 200; i++) {
        uint32_t sid = 2 * i + 1;
        blk.len = 0;
        hp_block(&blk, ":method", "POST", ":scheme", "https", ":path", "/upload", ":authority", "a",
                 "content-length", "5", NULL);
        tf_headers_block(&b, sid, 0x4, &blk);
        tf_data(&b, sid, 0x1, "hello", 5);
        rill_h2_session_recv(t.s, b.p, b.len);
        b.len = 0;
        rill_h2_consume(t.s, (int32_t)sid, 5);
        assert_int_equal(rill_h2_submit_response(t.s, (int32_t)sid, ok, 2, 0), 0);
        assert_int_equal(rill_h2_submit_data(t.s, (int32_t)sid, body, sizeof body, RILL_H2_FLAG_END_STREAM, NULL), 0);
        struct iovec iov[16];
        int n;
        while ((n = rill_h2_session_output(t.s, iov, 16)) > 0) {
            size_t total = 0;
            for (int k = 0; k < n; k++)
                total += iov[k].iov_len;
            rill_h2_session_output_sent(t.s, total);
        }
        if (i == 9)
            calls_after_warmup = g_count.calls;
    }
    assert_int_equal(rill_h2_session_stream_count(t.s), 0);
    assert_int_equal(g_count.calls, calls_after_warmup);
    tb_free(&b);
    tb_free(&blk);
    tsess_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(window_update_after_half_consumed),
        cmocka_unit_test(connection_window_overrun_is_connection_error),
        cmocka_unit_test(auto_consume_and_large_connection_window),
        cmocka_unit_test(unconsumed_bytes_return_to_connection_at_close),
        cmocka_unit_test(referenced_buffers_released_after_write_or_reset),
        cmocka_unit_test(release_waits_for_partial_write),
        cmocka_unit_test(pull_source_with_pause_and_trailers),
        cmocka_unit_test(incremental_streams_round_robin),
        cmocka_unit_test(priority_update_frame_reorders),
        cmocka_unit_test(streams_served_in_id_order_whatever_the_submit_order),
        cmocka_unit_test(client_priority_update_moves_a_queued_stream),
        cmocka_unit_test(early_priority_update_survives_trim),
        cmocka_unit_test(settings_in_flight_apply_in_order),
        cmocka_unit_test(settings_second_before_first_ack),
        cmocka_unit_test(floods_end_in_enhance_your_calm),
        cmocka_unit_test(tiny_window_updates_to_a_large_window_are_fine),
    cmocka_unit_test(flood_budget_refills_with_time),
        cmocka_unit_test(flood_fractions_survive_shared_clock),
        cmocka_unit_test(continuation_flood),
        cmocka_unit_test(header_block_bytes_limit),
        cmocka_unit_test(peer_not_reading_stops_reads_then_fails),
        cmocka_unit_test(freeing_the_session_releases_buffers),
        cmocka_unit_test(trim_frees_idle_buffers),
        cmocka_unit_test(output_pool_buffers_return_when_drained),
        cmocka_unit_test(pooled_header_scratch_grows_to_heap),
        cmocka_unit_test(vectored_source_fills_several_frames),
        cmocka_unit_test(vectored_batches_fit_one_segment),
        cmocka_unit_test(connection_start_borrows_no_pool_buffer),
        cmocka_unit_test(memory_idle_and_per_stream),
        cmocka_unit_test(no_allocation_per_request_in_steady_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
