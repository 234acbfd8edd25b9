/* HTTP/2 floods against the sans-I/O server session: each shape must end in GOAWAY
 * ENHANCE_YOUR_CALM within a known number of frames (and so of bytes), whether its frames arrive
 * whole or cut at random points, while ordinary traffic at the same rates is never cut. The budgets
 * are those of rill_h2_options_init (docs/H2.md, "Flood limits"). */
#include "h2_test_util.h"

#define FRAME 16384u              /* SETTINGS_MAX_FRAME_SIZE: the largest frames a peer may send */
#define BLOCK_BOUND (128u * 1024u) /* the default wire bound of one header block */
#define RESET_BURST 1000

typedef void (*shape_fn)(tbuf *b, int i);

struct cut {
    int frames;   /* frames fed when the session failed (0: it never did) */
    size_t bytes; /* bytes fed by then */
};

/* Feeds frame after frame of a shape (each in random pieces with a nonzero seed, whole with 0),
 * draining our output between frames as a reading peer would, until recv fails or max_frames have
 * gone in. Leaves the last output in t->out. */
static struct cut run_shape(tsess *t, shape_fn shape, int max_frames, unsigned seed,
                            void (*after_frame)(tsess *t, int i))
{
    tbuf f = {0};
    struct cut c = {0, 0};
    for (int i = 0; i < max_frames; i++) {
        f.len = 0;
        shape(&f, i);
        for (size_t off = 0; off < f.len;) {
            size_t n = seed ? 1 + (size_t)rand_r(&seed) % (f.len - off) : f.len - off;
            int64_t rc = rill_h2_session_recv(t->s, f.p + off, n);
            off += n;
            c.bytes += n;
            if (rc < 0) {
                t->last_rc = rc;
                c.frames = i + 1;
                drain(t->s, &t->out);
                tb_free(&f);
                return c;
            }
        }
        if (after_frame)
            after_frame(t, i);
        drain(t->s, &t->out);
        if (rill_h2_session_error_code(t->s) >= 0) { /* failed outside recv */
            t->last_rc = RILL_ERR_LIMIT;
            c.frames = i + 1;
            break;
        }
    }
    tb_free(&f);
    return c;
}

/* Runs a shape on fresh sessions, whole and in random pieces: it must end with GOAWAY
 * ENHANCE_YOUR_CALM at exactly frame `at` every time. Returns the bytes of the whole-frame run. */
static size_t expect_cut(shape_fn shape, int at, void (*after_frame)(tsess *t, int i))
{
    size_t bytes = 0;
    for (unsigned seed = 0; seed < 4; seed++) {
        tsess t;
        tsess_start(&t, RILL_H2_SERVER, NULL);
        struct cut c = run_shape(&t, shape, at + 100, seed * 7919u, after_frame);
        if (c.frames != at) {
            const tframe *g = find_frame(&t.out, RILL_H2_GOAWAY, 0);
            fprintf(stderr, "seed %u: cut at frame %d, expected %d (GOAWAY: %.*s)\n", seed, c.frames, at,
                    g && g->len > 8 ? (int)g->len - 8 : 0, g ? (const char *)g->payload + 8 : "");
        }
        assert_int_equal(c.frames, at);
        assert_int_equal(t.last_rc, RILL_ERR_LIMIT);
        expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
        assert_false(rill_h2_session_want_read(t.s));
        if (seed == 0)
            bytes = c.bytes;
        tsess_free(&t);
    }
    return bytes;
}

/* ---- header blocks that never end ---- */

/* 16 KB of literal fields without indexing (x-flood: 100 x 'a'), as one stream of bytes. */
static void literal_fields(tbuf *blk, size_t n)
{
    static const uint8_t field[] = {0x00, 7, 'x', '-', 'f', 'l', 'o', 'o', 'd', 100};
    while (blk->len < n) {
        tb_put(blk, field, sizeof field);
        for (int k = 0; k < 100; k++)
            tb_byte(blk, 'a');
    }
    blk->len = n;
}

static void continuation_flood(tbuf *b, int i)
{
    tbuf blk = {0};
    literal_fields(&blk, FRAME);
    tf_frame(b, i == 0 ? RILL_H2_HEADERS : RILL_H2_CONTINUATION, 0, 1, blk.p, blk.len);
    tb_free(&blk);
}

static void continuation_flood_of_full_frames(void **state)
{
    (void)state;
    /* The block passes 128 KiB with its 9th frame: the connection ends there, not at the end of a
     * block that never comes. */
    size_t bytes = expect_cut(continuation_flood, BLOCK_BOUND / FRAME + 1, NULL);
    assert_true(bytes <= BLOCK_BOUND + 2 * (FRAME + 9));
}

static void empty_continuations(tbuf *b, int i)
{
    if (i == 0) {
        tbuf blk = {0};
        hp_block(&blk, GET_FIELDS, NULL);
        tf_frame(b, RILL_H2_HEADERS, 0, 1, blk.p, blk.len); /* no END_HEADERS: CONTINUATIONs follow */
        tb_free(&blk);
    } else
        tf_frame(b, RILL_H2_CONTINUATION, 0, 1, NULL, 0);
}

static void continuation_flood_of_empty_frames(void **state)
{
    (void)state;
    expect_cut(empty_continuations, 1 + 64 + 1, NULL); /* max_continuations 64 */
}

/* One 4 KB dynamic-table entry, then one-byte references to it: 16 KB decode to 64 MB. */
static void bomb_block(tbuf *blk, bool with_entry)
{
    if (with_entry) {
        tb_byte(blk, 0x40); /* literal with incremental indexing, new name */
        tb_byte(blk, 1);
        tb_byte(blk, 'x');
        hp_int7(blk, 4000);
        for (int k = 0; k < 4000; k++)
            tb_byte(blk, 'v');
    }
    while (blk->len < FRAME)
        tb_byte(blk, 0xbe); /* index 62: the newest dynamic entry */
}

static void hpack_bomb(tbuf *b, int i)
{
    tbuf blk = {0};
    bomb_block(&blk, i == 0);
    tf_frame(b, i == 0 ? RILL_H2_HEADERS : RILL_H2_CONTINUATION, 0, 1, blk.p, blk.len);
    tb_free(&blk);
}

static void hpack_bomb_in_continuations(void **state)
{
    (void)state;
    size_t bytes = expect_cut(hpack_bomb, BLOCK_BOUND / FRAME + 1, NULL);
    assert_true(bytes <= BLOCK_BOUND + 2 * (FRAME + 9));
}

/* The bomb sent as complete blocks, one request each: every one decodes past the list limit and
 * is refused with 431, each costing 1 + 64 (one per 256 bytes) from the reset budget of 1000. */
static void hpack_bomb_blocks(tbuf *b, int i)
{
    tbuf blk = {0};
    bomb_block(&blk, i == 0);
    tf_frame(b, RILL_H2_HEADERS, RILL_H2_FLAG_END_STREAM | 0x4, (uint32_t)(2 * i + 1), blk.p, blk.len);
    tb_free(&blk);
}

static void hpack_bomb_as_whole_blocks(void **state)
{
    (void)state;
    size_t bytes = expect_cut(hpack_bomb_blocks, RESET_BURST / (1 + FRAME / 256) + 1, NULL);
    assert_true(bytes < 300 * 1024);
}

/* Decoding a bomb block past the list limit must not copy the entry for every reference: a whole
 * 16 KB block of references (64 MB decoded) is refused with a 431 at once. */
static void hpack_bomb_block_is_refused_with_431(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    tbuf b = {0};
    hpack_bomb_blocks(&b, 0);
    assert_true(feed_drain(&t, &b) >= 0);
    const tframe *h = find_frame(&t.out, RILL_H2_HEADERS, 1);
    assert_non_null(h);
    expect_no_error(&t.out);
    assert_null(rec_find(&t.rec, EV_HEADERS, 1)); /* never reaches the application */
    tb_free(&b);
    tsess_free(&t);
}

/* ---- resets ---- */

static void rapid_reset(tbuf *b, int i)
{
    uint32_t sid = (uint32_t)(i / 2 * 2 + 1);
    if (i % 2 == 0)
        tf_get(b, sid, 0);
    else
        tf_rst(b, sid, RILL_H2_CANCEL);
}

static void rapid_reset_cve_2023_44487(void **state)
{
    (void)state;
    size_t bytes = expect_cut(rapid_reset, 2 * (RESET_BURST + 1), NULL);
    assert_true(bytes < 128 * 1024);
}

/* MadeYouReset (CVE-2025-8671): a request, then a frame that makes us reset its stream. */
static void data_after_end_stream(tbuf *b, int i)
{
    uint32_t sid = (uint32_t)(i / 2 * 2 + 1);
    if (i % 2 == 0)
        tf_get(b, sid, RILL_H2_FLAG_END_STREAM);
    else
        tf_data(b, sid, 0, "x", 1); /* half-closed (remote): STREAM_CLOSED */
}

static void window_overflow(tbuf *b, int i)
{
    uint32_t sid = (uint32_t)(i / 2 * 2 + 1);
    if (i % 2 == 0)
        tf_get(b, sid, 0);
    else
        tf_window_update(b, sid, 0x7fffffffu); /* FLOW_CONTROL_ERROR */
}

static void zero_window_update(tbuf *b, int i)
{
    uint32_t sid = (uint32_t)(i / 2 * 2 + 1);
    if (i % 2 == 0)
        tf_get(b, sid, 0);
    else
        tf_window_update(b, sid, 0); /* PROTOCOL_ERROR */
}

static void priority_wrong_length(tbuf *b, int i)
{
    uint32_t sid = (uint32_t)(i / 2 * 2 + 1);
    if (i % 2 == 0)
        tf_get(b, sid, 0);
    else
        tf_frame(b, RILL_H2_PRIORITY, 0, sid, "\0\0\0\0", 4); /* FRAME_SIZE_ERROR */
}

static void content_length_mismatch(tbuf *b, int i)
{
    uint32_t sid = (uint32_t)(i / 2 * 2 + 1);
    if (i % 2 == 0) {
        tbuf blk = {0};
        hp_block(&blk, ":method", "POST", ":scheme", "https", ":path", "/", ":authority", "example.com",
                 "content-length", "1", NULL);
        tf_headers_block(b, sid, 0x4 /* END_HEADERS */, &blk);
        tb_free(&blk);
    } else {
        tf_data(b, sid, RILL_H2_FLAG_END_STREAM, "xy", 2); /* PROTOCOL_ERROR */
    }
}

static void malformed_request(tbuf *b, int i)
{
    tbuf blk = {0};
    hp_block(&blk, GET_FIELDS, "X-Upper", "case", NULL); /* PROTOCOL_ERROR (section 8.2.1) */
    tf_headers_block(b, (uint32_t)(2 * i + 1), RILL_H2_FLAG_END_STREAM | 0x4, &blk);
    tb_free(&blk);
}

static void made_you_reset_cve_2025_8671(void **state)
{
    (void)state;
    expect_cut(data_after_end_stream, 2 * (RESET_BURST + 1), NULL);
    expect_cut(window_overflow, 2 * (RESET_BURST + 1), NULL);
    expect_cut(zero_window_update, 2 * (RESET_BURST + 1), NULL);
    expect_cut(priority_wrong_length, 2 * (RESET_BURST + 1), NULL);
    expect_cut(content_length_mismatch, 2 * (RESET_BURST + 1), NULL);
    size_t bytes = expect_cut(malformed_request, RESET_BURST + 1, NULL);
    assert_true(bytes < 128 * 1024);
}

/* The application answers nothing and resets every request: streams opened and reset without
 * useful work count whichever side resets them. */
static void one_request(tbuf *b, int i) { tf_get(b, (uint32_t)(2 * i + 1), RILL_H2_FLAG_END_STREAM); }
static void app_resets(tsess *t, int i)
{
    int rc = rill_h2_submit_rst_stream(t->s, 2 * i + 1, RILL_H2_CANCEL);
    assert_true(rc == 0 || (rc == RILL_ERR_LIMIT && i == RESET_BURST));
}

static void requests_reset_unanswered_by_the_application(void **state)
{
    (void)state;
    expect_cut(one_request, RESET_BURST + 1, app_resets);
}

/* What is not a flood: answered requests the peer then cancels cost nothing extra beyond their
 * resets, and the reset budget refills at 33 per second. */
static void answer_all(tsess *t, int i)
{
    rill_header st = {(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0};
    assert_int_equal(rill_h2_submit_response(t->s, 2 * i + 1, &st, 1, RILL_H2_FLAG_END_STREAM), 0);
}

static void reset_budget_refills_at_33_per_second(void **state)
{
    (void)state;
    tsess t;
    tsess_start(&t, RILL_H2_SERVER, NULL);
    /* Thousands of ordinary requests: nothing charged. */
    struct cut c = run_shape(&t, one_request, 3000, 0, answer_all);
    assert_int_equal(c.frames, 0);
    expect_no_error(&t.out);
    tbuf b = {0};
    int32_t sid = 6001;
    for (int i = 0; i < RESET_BURST; i++, sid += 2) {
        tf_get(&b, (uint32_t)sid, 0);
        tf_rst(&b, (uint32_t)sid, RILL_H2_CANCEL);
    }
    assert_true(feed_drain(&t, &b) >= 0);
    rill_h2_session_tick(&*t.s, 1000); /* +33 */
    for (int i = 0; i < 33; i++, sid += 2) {
        tf_get(&b, (uint32_t)sid, 0);
        tf_rst(&b, (uint32_t)sid, RILL_H2_CANCEL);
    }
    assert_true(feed_drain(&t, &b) >= 0);
    expect_no_error(&t.out);
    tf_get(&b, (uint32_t)sid, 0);
    tf_rst(&b, (uint32_t)sid, RILL_H2_CANCEL);
    assert_int_equal(feed_drain(&t, &b), RILL_ERR_LIMIT);
    expect_goaway(&t.out, RILL_H2_ENHANCE_YOUR_CALM);
    tb_free(&b);
    tsess_free(&t);
}

/* ---- a peer that does not read ---- */

static void no_ping_limit(rill_h2_options *o) { o->ping_rate.burst = 0; }

/* PINGs (unlimited here) whose ACKs nobody reads: above max_pending_output (256 KiB) the session
 * stops wanting input, and after the SETTINGS timeout (10 s) it gives up on the peer. */
static void unread_output_stops_reading_then_times_out(void **state)
{
    (void)state;
    for (int drains = 0; drains < 2; drains++) {
        tsess t;
        tsess_start(&t, RILL_H2_SERVER, no_ping_limit);
        tbuf b = {0};
        int pings = 0;
        while (rill_h2_session_want_read(t.s)) {
            tf_ping(&b, 0, "pingping");
            assert_true(feed(&t, &b) >= 0);
            b.len = 0;
            assert_true(++pings <= 256 * 1024 / 17 + 1);
        }
        assert_true(pings >= 256 * 1024 / 17 - 1);
        assert_true(rill_h2_session_next_deadline(t.s) <= 10000);
        rill_h2_session_tick(t.s, 9000);
        assert_true(rill_h2_session_want_write(t.s));
        if (drains) {
            /* The peer reads after all: reading resumes and the deadline goes. */
            uint8_t buf[65536];
            while (rill_h2_session_send_copy(t.s, buf, sizeof buf) > 0)
                ;
            assert_true(rill_h2_session_want_read(t.s));
            assert_int_equal(rill_h2_session_next_deadline(t.s), UINT64_MAX);
            rill_h2_session_tick(t.s, 60000);
            drain(t.s, &t.out);
            expect_no_error(&t.out);
        } else {
            rill_h2_session_tick(t.s, 10000);
            /* Everything queued, the GOAWAY last (more frames than tout holds). */
            tbuf all = {0};
            uint8_t buf[65536];
            size_t n;
            while ((n = rill_h2_session_send_copy(t.s, buf, sizeof buf)) > 0)
                tb_put(&all, buf, n);
            size_t i = 0, last = 0;
            while (i + 9 <= all.len) {
                last = i;
                i += 9 + ((size_t)all.p[i] << 16 | (size_t)all.p[i + 1] << 8 | all.p[i + 2]);
            }
            assert_int_equal(i, all.len);
            assert_int_equal(all.p[last + 3], RILL_H2_GOAWAY);
            assert_int_equal(get32(all.p + last + 9 + 4), RILL_H2_ENHANCE_YOUR_CALM);
            assert_false(rill_h2_session_want_read(t.s));
            tb_free(&all);
        }
        tb_free(&b);
        tsess_free(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(continuation_flood_of_full_frames),
        cmocka_unit_test(continuation_flood_of_empty_frames),
        cmocka_unit_test(hpack_bomb_in_continuations),
        cmocka_unit_test(hpack_bomb_as_whole_blocks),
        cmocka_unit_test(hpack_bomb_block_is_refused_with_431),
        cmocka_unit_test(rapid_reset_cve_2023_44487),
        cmocka_unit_test(made_you_reset_cve_2025_8671),
        cmocka_unit_test(requests_reset_unanswered_by_the_application),
        cmocka_unit_test(reset_budget_refills_at_33_per_second),
        cmocka_unit_test(unread_output_stops_reading_then_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
