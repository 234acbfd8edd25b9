/* WebSocket UTF-8 handling (Autobahn category 6): the DFA against an independent reference
 * decoder, the classic valid/invalid vectors, text split at every byte across fragments, and
 * failure at the exact byte that makes the text invalid. */
#include "test_ws_util.h"

static rec R;
static uint8_t out[1 << 16];

static int setup(void **state)
{
    (void)state;
    rec_init(&R);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rec_free(&R);
    return 0;
}

/* Reference: decode code points the slow way (RFC 3629). Returns true when s is valid. */
static bool ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint32_t cp;
        size_t need;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F;
            need = 1;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F;
            need = 2;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07;
            need = 3;
        } else {
            return false;
        }
        if (i + need >= n)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min_for[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_for[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

static bool dfa_valid(const uint8_t *s, size_t n)
{
    uint32_t st = 0;
    return rill_ws_utf8_feed(&st, s, n) && st == 0;
}

/* Also with ASCII after it, so the whole-sequence fast path (needs 3 bytes ahead) is taken. */
static void check_both(const uint8_t *s, size_t n)
{
    uint8_t padded[8];
    memcpy(padded, s, n);
    memcpy(padded + n, "ab", 2);
    bool ref = ref_valid(s, n);
    assert_int_equal(dfa_valid(s, n), ref);
    assert_int_equal(dfa_valid(padded, n + 2), ref);
}

static void dfa_matches_reference_exhaustively(void **state)
{
    (void)state;
    uint8_t s[4];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        check_both(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            check_both(s, 2);
            if (a < 0xE0) /* longer sequences only start with E0..FF */
                continue;
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                check_both(s, 3);
                if (a < 0xF0 || (c & 0xC0) != 0x80 || (b & 0xC0) != 0x80)
                    continue;
                for (unsigned d = 0x70; d < 0xD0; d++) {
                    s[3] = (uint8_t)d;
                    check_both(s, 4);
                }
            }
        }
    }
}

static void dfa_on_random_text_with_ascii_runs(void **state)
{
    (void)state;
    uint8_t s[64];
    uint32_t seed = 12345;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = 1 + (iter % 40);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            uint8_t v = (uint8_t)(seed >> 16);
            s[i] = (seed >> 28) < 10 ? (uint8_t)(v & 0x7F) : v; /* mostly ASCII, word paths */
        }
        assert_int_equal(dfa_valid(s, n), ref_valid(s, n));
    }
}

static void classic_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } v[] = {
        {"", true},
        {"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", true},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true}, /* κόσμε */
        {"\xc2\x80", true},              /* U+0080 */
        {"\xdf\xbf", true},              /* U+07FF */
        {"\xe0\xa0\x80", true},          /* U+0800 */
        {"\xed\x9f\xbf", true},          /* U+D7FF */
        {"\xee\x80\x80", true},          /* U+E000 */
        {"\xef\xbf\xbf", true},          /* U+FFFF */
        {"\xf0\x90\x80\x80", true},      /* U+10000 */
        {"\xf4\x8f\xbf\xbf", true},      /* U+10FFFF */
        {"\xc0\x80", false},             /* overlong NUL */
        {"\xc1\xbf", false},             /* overlong */
        {"\xe0\x80\x80", false},         /* overlong */
        {"\xe0\x9f\xbf", false},         /* overlong U+07FF */
        {"\xf0\x80\x80\x80", false},     /* overlong */
        {"\xf0\x8f\xbf\xbf", false},     /* overlong U+FFFF */
        {"\xed\xa0\x80", false},         /* U+D800 */
        {"\xed\xbf\xbf", false},         /* U+DFFF */
        {"\xed\xa0\x80\xed\xb0\x80", false}, /* surrogate pair */
        {"\xf4\x90\x80\x80", false},     /* U+110000 */
        {"\xf5\x80\x80\x80", false},
        {"\xf8\x88\x80\x80\x80", false}, /* 5-byte form */
        {"\xfe", false},
        {"\xff", false},
        {"\x80", false},                 /* lone continuation */
        {"\xbf", false},
        {"\xc2", false},                 /* truncated */
        {"\xe1\x80", false},
        {"\xf1\x80\x80", false},
        {"\xc2\x41", false},             /* continuation missing */
        {"\xef\xbf\xbe", true},          /* U+FFFE is a valid scalar value */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const uint8_t *s = (const uint8_t *)v[i].s;
        size_t n = strlen(v[i].s);
        assert_int_equal(dfa_valid(s, n), v[i].ok);
        /* The codec agrees for text messages (1007) ... */
        uint8_t f[64];
        size_t fn = cframe(f, true, RILL_WS_OP_TEXT, s, n);
        assert_int_equal(server_fail_code(f, fn), v[i].ok ? 0 : 1007);
        /* ... and ignores the encoding of binary ones. */
        fn = cframe(f, true, RILL_WS_OP_BINARY, s, n);
        assert_int_equal(server_fail_code(f, fn), 0);
    }
}

static const char multi[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xe2\x82\xac "
                            "\xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf z";

static void valid_text_split_at_every_byte(void **state)
{
    (void)state;
    size_t n = sizeof multi - 1;
    for (int streaming = 0; streaming < 2; streaming++) {
        for (size_t cut = 0; cut <= n; cut++) {
            ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
            cfg.opt.streaming = streaming;
            rill_ws *ws = ws_setup_new(&cfg);
            uint8_t f[128];
            size_t fn = cframe(f, false, RILL_WS_OP_TEXT, multi, cut);
            fn += cframe(f + fn, true, RILL_WS_OP_CONTINUATION, multi + cut, n - cut);
            R.messages = 0;
            assert_int_equal(rill_ws_recv(ws, f, fn), 0);
            assert_int_equal(R.messages, 1);
            assert_int_equal(R.len, n);
            assert_memory_equal(R.data, multi, n);
            rill_ws_free(ws);
        }
    }
    /* One byte per fragment. */
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    uint8_t f[1024];
    size_t fn = 0;
    for (size_t i = 0; i < n; i++)
        fn += cframe(f + fn, i == n - 1, i ? RILL_WS_OP_CONTINUATION : RILL_WS_OP_TEXT, multi + i,
                     1);
    R.messages = 0;
    assert_int_equal(rill_ws_recv(ws, f, fn), 0);
    assert_int_equal(R.messages, 1);
    assert_memory_equal(R.data, multi, n);
    rill_ws_free(ws);
}

/* Fail fast: the error comes with the byte that breaks the text, not at the message's end. */
static void invalid_text_detected_at_the_breaking_byte(void **state)
{
    (void)state;
    /* κόσμε, then F4 90 (above U+10FFFF), then more valid text never needed. */
    static const char bad[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"
                              "edited";
    size_t n = sizeof bad - 1;
    for (int streaming = 0; streaming < 2; streaming++) {
        ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
        cfg.opt.streaming = streaming;
        rill_ws *ws = ws_setup_new(&cfg);
        uint8_t f[128];
        assert_int_equal(cframe(f, true, RILL_WS_OP_TEXT, bad, n), 6 + n);
        size_t hdr = 6;
        size_t breaking = hdr + 12; /* F4 is fine as a lead byte; 90 breaks it */
        for (size_t i = 0; i < breaking; i++)
            assert_int_equal(rill_ws_recv(ws, f + i, 1), 0);
        assert_int_equal(rill_ws_recv(ws, f + breaking, 1), RILL_ERR_UTF8);
        assert_int_equal(rill_ws_fail_code(ws), 1007);
        assert_int_equal(queued_close_code(ws), 1007);
        assert_int_equal(R.messages, 0);
        rill_ws_free(ws);
    }
    /* Across fragments: the second fragment's first byte is a stray continuation. */
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    uint8_t f[128];
    size_t fn = cframe(f, false, RILL_WS_OP_TEXT, "\xce\xba", 2);
    assert_int_equal(rill_ws_recv(ws, f, fn), 0);
    fn = cframe(f, false, RILL_WS_OP_CONTINUATION, "\xba" "abc", 4);
    assert_int_equal(rill_ws_recv(ws, f, 7), RILL_ERR_UTF8);
    rill_ws_free(ws);
    /* A message ending inside a sequence fails at its end. */
    ws = ws_make(RILL_WS_SERVER, &R);
    fn = cframe(f, false, RILL_WS_OP_TEXT, "ab\xe2\x82", 4);
    assert_int_equal(rill_ws_recv(ws, f, fn), 0);
    fn = cframe(f, true, RILL_WS_OP_CONTINUATION, "", 0);
    assert_int_equal(rill_ws_recv(ws, f, fn), RILL_ERR_UTF8);
    assert_int_equal(rill_ws_fail_code(ws), 1007);
    rill_ws_free(ws);
    (void)out;
}

static void feed_api_is_incremental(void **state)
{
    (void)state;
    size_t n = sizeof multi - 1;
    uint32_t st = 0;
    for (size_t i = 0; i < n; i++)
        assert_true(rill_ws_utf8_feed(&st, (const uint8_t *)multi + i, 1));
    assert_int_equal(st, 0);
    st = 0;
    assert_true(rill_ws_utf8_feed(&st, (const uint8_t *)"\xf0\x9d", 2));
    assert_int_not_equal(st, 0); /* incomplete */
    assert_false(rill_ws_utf8_feed(&st, (const uint8_t *)"A", 1));
    assert_false(rill_ws_utf8_feed(&st, (const uint8_t *)"A", 1)); /* stays rejected */
    st = 7; /* garbage state */
    assert_false(rill_ws_utf8_feed(&st, (const uint8_t *)"A", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dfa_matches_reference_exhaustively),
        cmocka_unit_test(dfa_on_random_text_with_ascii_runs),
        cmocka_unit_test(classic_vectors),
        cmocka_unit_test_setup_teardown(valid_text_split_at_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_text_detected_at_the_breaking_byte, setup,
                                        teardown),
        cmocka_unit_test(feed_api_is_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
