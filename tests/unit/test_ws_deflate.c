/* permessage-deflate (RFC 7692; Autobahn categories 12/13): negotiation accept/decline matrix,
 * the RFC's worked examples, round trips with and without context takeover, window bits 8..15
 * (checked against a zlib inflater limited to exactly that window), the compression threshold
 * and the decompression-bomb cap. */
#include <zlib.h>

#include "test_ws_util.h"
#include "ws/ws_internal.h"

static rec R;
static uint8_t out[1 << 20], pay[1 << 20];

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

/* ---- negotiation ---- */

static int negotiate(const char *offer, const rill_ws_pmd_policy *pol, rill_ws_pmd_params *a,
                     char *resp)
{
    memset(a, 0xAA, sizeof *a);
    return rill_ws_pmd_server_negotiate(offer, strlen(offer), pol, a, resp, 160);
}

static void server_accepts_valid_offers(void **state)
{
    (void)state;
    static const struct {
        const char *offer;
        rill_ws_pmd_policy pol;
        const char *resp;
    } cases[] = {
        {"permessage-deflate", {0}, "permessage-deflate"},
        {"  permessage-deflate  ", {0}, "permessage-deflate"},
        {"PerMessage-Deflate", {0}, "permessage-deflate"},
        {"permessage-deflate; client_max_window_bits", {0}, "permessage-deflate"},
        {"permessage-deflate; client_max_window_bits", {.client_max_window_bits = 10},
         "permessage-deflate; client_max_window_bits=10"},
        {"permessage-deflate; client_max_window_bits=12", {.client_max_window_bits = 10},
         "permessage-deflate; client_max_window_bits=10"},
        {"permessage-deflate; client_max_window_bits=9", {.client_max_window_bits = 10},
         "permessage-deflate; client_max_window_bits=9"},
        {"permessage-deflate; client_max_window_bits=\"11\"", {0},
         "permessage-deflate; client_max_window_bits=11"},
        {"permessage-deflate", {.client_max_window_bits = 10}, "permessage-deflate"},
        {"permessage-deflate; server_max_window_bits=10", {0},
         "permessage-deflate; server_max_window_bits=10"},
        {"permessage-deflate; server_max_window_bits=8", {0},
         "permessage-deflate; server_max_window_bits=8"},
        {"permessage-deflate; server_max_window_bits=15", {.server_max_window_bits = 11},
         "permessage-deflate; server_max_window_bits=11"},
        {"permessage-deflate", {.server_max_window_bits = 12},
         "permessage-deflate; server_max_window_bits=12"},
        {"permessage-deflate;server_no_context_takeover;client_no_context_takeover", {0},
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        {"permessage-deflate", {.server_no_context_takeover = true},
         "permessage-deflate; server_no_context_takeover"},
        {"permessage-deflate", {.client_no_context_takeover = true},
         "permessage-deflate; client_no_context_takeover"},
        /* An invalid first offer falls back to the next one; other extensions are skipped. */
        {"x-webkit-deflate-frame, permessage-deflate; foo=1, "
         "permessage-deflate; client_no_context_takeover",
         {0}, "permessage-deflate; client_no_context_takeover"},
        {"permessage-deflate; server_max_window_bits=16, permessage-deflate", {0},
         "permessage-deflate"},
        {"permessage-deflate; server_no_context_takeover; server_max_window_bits=9; "
         "client_no_context_takeover; client_max_window_bits=15",
         {0},
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=9; client_max_window_bits=15"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char resp[160];
        rill_ws_pmd_params a;
        int rc = negotiate(cases[i].offer, &cases[i].pol, &a, resp);
        if (rc != 0)
            fail_msg("offer %zu refused: %s", i, cases[i].offer);
        assert_string_equal(resp, cases[i].resp);
        /* The agreed parameters are exactly what the response says (client's view). */
        rill_ws_pmd_params b;
        rill_ws_pmd_policy none = {0};
        assert_int_equal(rill_ws_pmd_client_accept(resp, strlen(resp), &none, &b), 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static void server_declines_invalid_offers(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=1O",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=\"1\\0\"",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; unknown_param",
        "permessage-deflate; a; b; c; d; e; f; g; h; i",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate;; client_max_window_bits",
        "permessage-deflate client_max_window_bits",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char resp[160];
        rill_ws_pmd_params a;
        if (negotiate(bad[i], NULL, &a, resp) != RILL_ERR_NOT_FOUND)
            fail_msg("offer accepted: %s", bad[i]);
    }
    char small[20];
    rill_ws_pmd_params a;
    const char *o = "permessage-deflate; server_no_context_takeover";
    assert_int_equal(rill_ws_pmd_server_negotiate(o, strlen(o), NULL, &a, small, sizeof small),
                     RILL_ERR_BUFFER_TOO_SMALL);
    rill_ws_pmd_policy bad_policy = {.server_max_window_bits = 16};
    assert_int_equal(rill_ws_pmd_server_negotiate(o, strlen(o), &bad_policy, &a, small, 160),
                     RILL_ERR_INVALID_ARG);
}

static void client_offer_and_response_checks(void **state)
{
    (void)state;
    char offer[160];
    rill_ws_pmd_policy pol = {0};
    assert_int_equal(rill_ws_pmd_client_offer(&pol, offer, sizeof offer), 0);
    assert_string_equal(offer, "permessage-deflate; client_max_window_bits");
    rill_ws_pmd_policy full = {true, true, 10, 12};
    assert_int_equal(rill_ws_pmd_client_offer(&full, offer, sizeof offer), 0);
    assert_string_equal(offer, "permessage-deflate; server_no_context_takeover; "
                               "client_no_context_takeover; server_max_window_bits=10; "
                               "client_max_window_bits=12");
    assert_int_equal(rill_ws_pmd_client_offer(&full, offer, 30), RILL_ERR_BUFFER_TOO_SMALL);

    rill_ws_pmd_params a;
    assert_int_equal(rill_ws_pmd_client_accept(NULL, 0, &pol, &a), RILL_ERR_NOT_FOUND);
    assert_int_equal(rill_ws_pmd_client_accept("", 0, &pol, &a), RILL_ERR_NOT_FOUND);
    static const struct {
        const char *resp;
        int pol; /* 0 = default policy, 1 = full */
        int rc;
    } cases[] = {
        {"permessage-deflate", 0, 0},
        {"permessage-deflate; client_max_window_bits=9", 0, 0},
        {"permessage-deflate; client_max_window_bits", 0, RILL_ERR_PROTOCOL},
        {"permessage-deflate, permessage-deflate", 0, RILL_ERR_PROTOCOL},
        {"x-other", 0, RILL_ERR_PROTOCOL},
        {"permessage-deflate; bogus", 0, RILL_ERR_PROTOCOL},
        {"permessage-deflate; server_max_window_bits=20", 0, RILL_ERR_PROTOCOL},
        {"permessage-deflate;", 0, RILL_ERR_PROTOCOL},
        /* Full policy: server_no_context_takeover and server_max_window_bits<=10 required. */
        {"permessage-deflate; server_no_context_takeover; server_max_window_bits=10", 1, 0},
        {"permessage-deflate; server_no_context_takeover; server_max_window_bits=9", 1, 0},
        {"permessage-deflate; server_max_window_bits=10", 1, RILL_ERR_PROTOCOL},
        {"permessage-deflate; server_no_context_takeover", 1, RILL_ERR_PROTOCOL},
        {"permessage-deflate; server_no_context_takeover; server_max_window_bits=11", 1,
         RILL_ERR_PROTOCOL},
        {"permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
         "client_max_window_bits=13",
         1, RILL_ERR_PROTOCOL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = rill_ws_pmd_client_accept(cases[i].resp, strlen(cases[i].resp),
                                           cases[i].pol ? &full : &pol, &a);
        if (rc != cases[i].rc)
            fail_msg("response %zu (%s): got %d", i, cases[i].resp, rc);
    }
    /* With the full policy, our own client_no_context_takeover and window stick. */
    const char *r = "permessage-deflate; server_no_context_takeover; server_max_window_bits=9";
    assert_int_equal(rill_ws_pmd_client_accept(r, strlen(r), &full, &a), 0);
    assert_true(a.client_no_context_takeover);
    assert_int_equal(a.client_max_window_bits, 12);
    assert_int_equal(a.server_max_window_bits, 9);
}

/* ---- data path ---- */

static rill_ws *pmd_codec(rill_ws_role role, const rill_ws_pmd_params *p, bool streaming,
                          size_t max_message)
{
    ws_setup cfg = ws_cfg(role, &R);
    cfg.opt.pmd = p;
    cfg.opt.streaming = streaming;
    cfg.opt.max_message_size = max_message;
    rill_ws *ws = ws_setup_new(&cfg);
    assert_non_null(ws);
    return ws;
}

static const rill_ws_pmd_params plain = {0};

static void rfc7692_examples(void **state)
{
    (void)state;
    static const uint8_t hello[] = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t frag[] = {0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t again[] = {0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00};
    static const uint8_t stored[] = {0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff,
                                     0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00};
    static const uint8_t bfinal[] = {0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    static const uint8_t two_blocks[] = {0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                         0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    const uint8_t *msgs[] = {hello, frag, again, stored, bfinal, again, two_blocks};
    const size_t lens[] = {sizeof hello, sizeof frag, sizeof again, sizeof stored,
                           sizeof bfinal, sizeof again, sizeof two_blocks};
    for (int streaming = 0; streaming < 2; streaming++) {
        rill_ws *cli = pmd_codec(RILL_WS_CLIENT, &plain, streaming, 0);
        R.messages = 0;
        for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
            /* "again" refers back to the previous message's window: context takeover, also
             * across a stream the sender ended with BFINAL. */
            assert_int_equal(rill_ws_recv(cli, msgs[i], lens[i]), 0);
            assert_int_equal(R.messages, (int)i + 1);
            assert_int_equal(R.len, 5);
            assert_memory_equal(R.data, "Hello", 5);
        }
        rill_ws_free(cli);
    }
    /* Our deflater produces the RFC's bytes, including the shared-window second message. */
    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.pmd = &plain;
    cfg.opt.compress_threshold = 1;
    rill_ws *srv = ws_setup_new(&cfg);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, "Hello", 5), 0);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, "Hello", 5), 0);
    size_t n = drain(srv, out, sizeof out);
    assert_int_equal(n, sizeof hello + sizeof again);
    assert_memory_equal(out, hello, sizeof hello);
    assert_memory_equal(out + sizeof hello, again, sizeof again);
    rill_ws_free(srv);
}

static size_t make_text(uint8_t *p, size_t n, unsigned seed)
{
    static const char *words[] = {"alpha ", "beta ", "gamma ", "delta ", "\xce\xba\xcf\x83 ",
                                  "epsilon ", "zeta ", "\xe2\x82\xac "};
    size_t len = 0;
    while (len + 16 < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 8];
        memcpy(p + len, w, strlen(w));
        len += strlen(w);
        if ((seed >> 8) % 7 == 0) /* some numbers for entropy */
            len += (size_t)sprintf((char *)p + len, "%u ", seed % 100000);
    }
    return len;
}

/* Sends msgs through tx and feeds rx; returns the summed wire payload of data frames and checks
 * the RSV1 bit of each message's first frame. */
static size_t pump(rill_ws *tx, rill_ws *rx, const uint8_t *m, size_t len, bool expect_rsv1)
{
    assert_int_equal(rill_ws_send(tx, RILL_WS_OP_TEXT, m, len), 0);
    size_t n = drain(tx, out, sizeof out);
    parsed p;
    static uint8_t tmp[1 << 20];
    size_t hlen = parse_frame(out, n, &p, tmp);
    assert_int_equal(hlen, n);
    assert_int_equal(p.rsv, expect_rsv1 ? 4 : 0);
    int before = R.messages;
    assert_int_equal(rill_ws_recv(rx, out, n), 0);
    assert_int_equal(R.messages, before + 1);
    assert_int_equal(R.len, len);
    assert_memory_equal(R.data, m, len);
    return p.len;
}

static void round_trip_context_takeover_matrix(void **state)
{
    (void)state;
    size_t len = make_text(pay, 20000, 7);
    for (int mode = 0; mode < 4; mode++) {
        rill_ws_pmd_params p = {0};
        p.server_no_context_takeover = mode & 1;
        p.client_no_context_takeover = mode & 2;
        for (int streaming = 0; streaming < 2; streaming++) {
            rill_ws *srv = pmd_codec(RILL_WS_SERVER, &p, streaming, 0);
            rill_ws *cli = pmd_codec(RILL_WS_CLIENT, &p, streaming, 0);
            size_t c1 = pump(cli, srv, pay, len, true);
            size_t c2 = pump(cli, srv, pay, len, true);
            size_t s1 = pump(srv, cli, pay, len, true);
            size_t s2 = pump(srv, cli, pay, len, true);
            assert_true(c1 < len / 2 && s1 < len / 2);
            /* With takeover the repeat is nearly free; without it costs the same again. */
            if (p.client_no_context_takeover)
                assert_int_equal(c2, c1);
            else
                assert_true(c2 < c1 / 4);
            if (p.server_no_context_takeover)
                assert_int_equal(s2, s1);
            else
                assert_true(s2 < s1 / 4);
            /* Small messages go uncompressed. */
            pump(cli, srv, (const uint8_t *)"tiny", 4, false);
            static uint8_t ascii[3000];
            for (size_t i = 0; i < sizeof ascii; i++)
                ascii[i] = (uint8_t)('a' + i % 26);
            pump(srv, cli, ascii, 63, false);
            pump(srv, cli, ascii, 64, true);
            /* Interleaved with uncompressed messages the streams stay in sync. */
            pump(cli, srv, ascii, 3000, true);
            pump(srv, cli, pay, len, true);
            rill_ws_free(srv);
            rill_ws_free(cli);
        }
    }
}

static void fragmented_compressed_messages(void **state)
{
    (void)state;
    size_t len = make_text(pay, 50000, 3);
    ws_setup cfg = ws_cfg(RILL_WS_CLIENT, &R);
    cfg.opt.pmd = &plain;
    cfg.opt.max_frame_size = 100; /* many continuation frames */
    rill_ws *cli = ws_setup_new(&cfg);
    rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, false, 0);
    assert_int_equal(rill_ws_send(cli, RILL_WS_OP_TEXT, pay, len), 0);
    /* Streamed sending, pieces cutting through UTF-8 sequences. */
    size_t off = 0;
    while (off < len) {
        size_t k = len - off < 777 ? len - off : 777;
        assert_int_equal(rill_ws_send_fragment(cli, RILL_WS_OP_TEXT, pay + off, k, off + k == len),
                         0);
        off += k;
    }
    size_t n = drain(cli, out, sizeof out);
    size_t frames = 0, pos = 0;
    parsed p;
    static uint8_t tmp[1 << 16];
    while (pos < n) {
        pos += parse_frame(out + pos, n - pos, &p, tmp);
        if (frames == 0)
            assert_int_equal(p.rsv, 4);
        else if (p.opcode == RILL_WS_OP_CONTINUATION)
            assert_int_equal(p.rsv, 0);
        frames++;
    }
    assert_true(frames > 20);
    R.messages = 0;
    for (size_t i = 0; i < n; i += 333) /* arbitrary input splits */
        assert_int_equal(rill_ws_recv(srv, out + i, n - i < 333 ? n - i : 333), 0);
    assert_int_equal(R.messages, 2);
    assert_int_equal(R.len, len);
    assert_memory_equal(R.data, pay, len);
    rill_ws_free(cli);
    rill_ws_free(srv);
}

static void window_bits_8_to_15(void **state)
{
    (void)state;
    /* Varied text over 64 KiB so a window wider than allowed would be used if it could. */
    size_t len = make_text(pay, 70000, 11);
    for (uint8_t bits = 8; bits <= 15; bits++) {
        rill_ws_pmd_params p = {0};
        p.server_max_window_bits = bits;
        p.client_max_window_bits = bits;
        rill_ws *srv = pmd_codec(RILL_WS_SERVER, &p, false, 0);
        rill_ws *cli = pmd_codec(RILL_WS_CLIENT, &p, false, 0);
        bool compresses = bits >= 9; /* see rill/ws.h: zlib has no raw 8-bit window */
        for (int round = 0; round < 2; round++) {
            pump(cli, srv, pay, len, compresses);
            assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, pay, len), 0);
            size_t n = drain(srv, out, sizeof out);
            parsed f;
            static uint8_t wire[1 << 20];
            assert_int_equal(parse_frame(out, n, &f, wire), n);
            assert_int_equal(f.rsv, compresses ? 4 : 0);
            if (compresses) {
                /* An inflater with exactly 2^bits of window decodes it: the limit held. */
                z_stream z;
                memset(&z, 0, sizeof z);
                assert_int_equal(inflateInit2(&z, -(int)bits), Z_OK);
                static uint8_t plainbuf[1 << 17];
                memcpy(wire + f.len, "\x00\x00\xff\xff", 4);
                z.next_in = wire;
                z.avail_in = (uInt)f.len + 4;
                z.next_out = plainbuf;
                z.avail_out = sizeof plainbuf;
                int zr = inflate(&z, Z_SYNC_FLUSH);
                assert_true(zr == Z_OK || zr == Z_BUF_ERROR);
                assert_int_equal(z.total_out, len);
                assert_memory_equal(plainbuf, pay, len);
                inflateEnd(&z);
                assert_true(f.len < len / 2);
            }
            assert_int_equal(rill_ws_recv(cli, out, n), 0);
            assert_memory_equal(R.data, pay, len);
            /* That check decoded only the first message with a fresh inflater; send the next
             * round with a fresh context so it stays meaningful. */
            rill_ws_free(srv);
            srv = pmd_codec(RILL_WS_SERVER, &p, false, 0);
            rill_ws_free(cli);
            cli = pmd_codec(RILL_WS_CLIENT, &p, false, 0);
        }
        rill_ws_free(srv);
        rill_ws_free(cli);
    }
}

static size_t bomb(uint8_t *dst, size_t zeros, const uint8_t *key)
{
    /* A compressed message of `zeros` zero bytes, as a single masked frame. */
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    static uint8_t zeros_buf[1 << 16];
    static uint8_t comp[1 << 20];
    size_t clen = 0;
    for (size_t done = 0; done < zeros; done += sizeof zeros_buf) {
        z.next_in = zeros_buf;
        z.avail_in = sizeof zeros_buf;
        do {
            z.next_out = comp + clen;
            z.avail_out = (uInt)(sizeof comp - clen);
            deflate(&z, done + sizeof zeros_buf >= zeros ? Z_SYNC_FLUSH : Z_NO_FLUSH);
            clen = sizeof comp - z.avail_out;
        } while (z.avail_in);
    }
    deflateEnd(&z);
    clen -= 4;
    return mkframe(dst, true, 4, RILL_WS_OP_BINARY, comp, clen, key);
}

static void decompression_bomb_capped(void **state)
{
    (void)state;
    static uint8_t frame[1 << 20];
    size_t n = bomb(frame, (size_t)200 << 20, test_key); /* 200 MiB of zeros, ~200 KiB */
    assert_true(n < (1u << 20));
    for (int streaming = 0; streaming < 2; streaming++) {
        rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, streaming, 1u << 20);
        R.messages = 0;
        R.total = 0;
        assert_int_equal(rill_ws_recv(srv, frame, n), RILL_ERR_TOO_BIG);
        assert_int_equal(rill_ws_fail_code(srv), 1009);
        assert_int_equal(queued_close_code(srv), 1009);
        assert_int_equal(R.messages, 0);
        assert_true(R.total <= (1u << 20) + WS_SCRATCH_HALF);
        assert_true(srv->msg.cap <= (1u << 20) + 1); /* never allocated past the cap */
        rill_ws_free(srv);
    }
    /* Just under the cap is fine. */
    n = bomb(frame, (size_t)1 << 20, test_key);
    rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, false, 1u << 20);
    assert_int_equal(rill_ws_recv(srv, frame, n), 0);
    assert_int_equal(R.len, 1u << 20);
    rill_ws_free(srv);
}

/* A compressed text frame whose payload inflates to `good` bytes of 'a', then `bad` (a byte that
 * is never UTF-8), then DEFLATE garbage (a block of the reserved type 3). */
static size_t text_then_garbage(uint8_t *dst, size_t good, bool bad)
{
    static uint8_t plainbuf[8192], comp[8192];
    memset(plainbuf, 'a', good);
    if (bad)
        plainbuf[good++] = 0xff;
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = plainbuf;
    z.avail_in = (uInt)good;
    z.next_out = comp;
    z.avail_out = sizeof comp;
    assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t clen = sizeof comp - z.avail_out;
    deflateEnd(&z);
    memcpy(comp + clen, "\xff\xff", 2);
    return mkframe(dst, true, 4, RILL_WS_OP_TEXT, comp, clen + 2, test_key);
}

/* The first violation in the inflated bytes decides, whatever the input's cuts: past the cap it is
 * 1009 even when bad UTF-8 or broken DEFLATE follows (zlib hands out output and its error in
 * one call when the input comes whole). */
static void first_violation_decides_in_any_pieces(void **state)
{
    (void)state;
    static const struct {
        size_t good;
        bool bad;
        unsigned code;
    } cases[] = {{5000, true, 1009}, {5000, false, 1009}, {4096, true, 1009},
                 {4095, true, 1007}, {100, true, 1007}, {100, false, 1007}};
    static uint8_t frame[16384];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = text_then_garbage(frame, cases[c].good, cases[c].bad);
        for (int streaming = 0; streaming < 2; streaming++) {
            for (size_t cut = 0; cut < n; cut++) { /* cut 0: whole */
                rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, streaming, 4096);
                int rc = 0;
                if (cut)
                    rc = rill_ws_recv(srv, frame, cut);
                if (rc == 0)
                    rc = rill_ws_recv(srv, frame + cut, n - cut);
                assert_true(rc < 0);
                if (rill_ws_fail_code(srv) != cases[c].code)
                    fail_msg("case %zu streaming %d cut %zu: %u", c, streaming, cut,
                             rill_ws_fail_code(srv));
                rill_ws_free(srv);
            }
        }
    }
}

/* A client that agreed to client_max_window_bits=10 but reaches 2,000 bytes back: zlib alone would
 * take it in one call and refuse it in pieces (it checks only against the output it holds); the
 * server inflates with the full window, so it is taken both ways, with the same message. */
static void reach_past_the_negotiated_window_same_in_pieces(void **state)
{
    (void)state;
    static uint8_t text[4000], comp[8192], frame[16384];
    for (size_t i = 0; i < 2000; i++)
        text[i] = (uint8_t)('a' + (i * 7919 % 26));
    memcpy(text + 2000, text, 2000); /* a match 2,000 back */
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = text;
    z.avail_in = sizeof text;
    z.next_out = comp;
    z.avail_out = sizeof comp;
    assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t clen = sizeof comp - z.avail_out - 4;
    deflateEnd(&z);
    assert_true(clen < 3000);
    size_t n = mkframe(frame, true, 4, RILL_WS_OP_TEXT, comp, clen, test_key);
    rill_ws_pmd_params p = {.client_max_window_bits = 10};
    for (int streaming = 0; streaming < 2; streaming++) {
        for (size_t piece = 1; piece <= n; piece = piece < 16 ? piece + 1 : piece < n ? n : n + 1) {
            rill_ws *srv = pmd_codec(RILL_WS_SERVER, &p, streaming, 0);
            R.messages = 0;
            R.total = 0;
            R.len = 0;
            for (size_t off = 0; off < n; off += piece)
                assert_int_equal(rill_ws_recv(srv, frame + off, off + piece <= n ? piece : n - off),
                                 0);
            assert_int_equal(R.messages, 1);
            assert_int_equal(R.total, sizeof text);
            if (!streaming)
                assert_memory_equal(R.data, text, sizeof text);
            rill_ws_free(srv);
        }
    }
}

static void compressed_protocol_errors(void **state)
{
    (void)state;
    uint8_t f[64];
    rec r;
    rec_init(&r);
    /* RSV1 on a continuation or control frame, or without negotiation. */
    struct bad_case {
        size_t n;
        const rill_ws_pmd_params *p;
        unsigned code;
    } cases[5];
    size_t k = 0;
    uint8_t frames[5][64];
    size_t n = mkframe(frames[k], false, 4, RILL_WS_OP_TEXT, "\xf2\x48", 2, test_key);
    n += mkframe(frames[k] + n, true, 4, RILL_WS_OP_CONTINUATION, "\xcd", 1, test_key);
    cases[k++] = (struct bad_case){n, &plain, 1002};
    n = mkframe(frames[k], true, 4, RILL_WS_OP_PING, "", 0, test_key);
    cases[k++] = (struct bad_case){n, &plain, 1002};
    n = mkframe(frames[k], true, 4, RILL_WS_OP_TEXT, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7, test_key);
    cases[k++] = (struct bad_case){n, NULL, 1002};
    /* Garbage that is not DEFLATE: 1007. */
    n = mkframe(frames[k], true, 4, RILL_WS_OP_BINARY, "\xff\xff\xff\xff", 4, test_key);
    cases[k++] = (struct bad_case){n, &plain, 1007};
    /* Decompresses to invalid UTF-8 text: 1007 (C0 80 stored). */
    n = mkframe(frames[k], true, 4, RILL_WS_OP_TEXT, "\x00\x02\x00\xfd\xff\xc0\x80", 7, test_key);
    cases[k++] = (struct bad_case){n, &plain, 1007};
    for (size_t i = 0; i < k; i++) {
        ws_setup cfg = ws_cfg(RILL_WS_SERVER, &r);
        cfg.opt.pmd = cases[i].p;
        rill_ws *ws = ws_setup_new(&cfg);
        assert_true(rill_ws_recv(ws, frames[i], cases[i].n) < 0);
        if (rill_ws_fail_code(ws) != cases[i].code)
            fail_msg("case %zu: code %u", i, rill_ws_fail_code(ws));
        rill_ws_free(ws);
    }
    (void)f;
    rec_free(&r);
}

static void full_negotiation_then_traffic(void **state)
{
    (void)state;
    rill_ws_pmd_policy cpol = {.client_no_context_takeover = true, .client_max_window_bits = 0};
    rill_ws_pmd_policy spol = {.client_max_window_bits = 10, .server_max_window_bits = 12};
    char offer[160], resp[160];
    rill_ws_pmd_params sa, ca;
    assert_int_equal(rill_ws_pmd_client_offer(&cpol, offer, sizeof offer), 0);
    assert_int_equal(rill_ws_pmd_server_negotiate(offer, strlen(offer), &spol, &sa, resp,
                                                  sizeof resp), 0);
    assert_string_equal(resp, "permessage-deflate; client_no_context_takeover; "
                              "server_max_window_bits=12; client_max_window_bits=10");
    assert_int_equal(rill_ws_pmd_client_accept(resp, strlen(resp), &cpol, &ca), 0);
    assert_memory_equal(&sa, &ca, sizeof sa);
    rill_ws *srv = pmd_codec(RILL_WS_SERVER, &sa, false, 0);
    rill_ws *cli = pmd_codec(RILL_WS_CLIENT, &ca, true, 0);
    size_t len = make_text(pay, 40000, 5);
    for (int i = 0; i < 3; i++) {
        pump(cli, srv, pay, len, true);
        pump(srv, cli, pay, len, true);
    }
    rill_ws_free(srv);
    rill_ws_free(cli);
}

/* In-place input, control frames between compressed fragments, and fail-fast on invalid UTF-8
 * produced by the inflater in streaming mode. */
static void compressed_inplace_interleaved_and_fail_fast(void **state)
{
    (void)state;
    static uint8_t f[256];
    /* "Hello" from RFC 7692 §7.2.3.1, split across two masked frames with a ping between. */
    size_t n = mkframe(f, false, 4, RILL_WS_OP_TEXT, "\xf2\x48\xcd", 3, test_key);
    n += mkframe(f + n, true, 0, RILL_WS_OP_PING, "p", 1, test_key);
    n += mkframe(f + n, true, 0, RILL_WS_OP_CONTINUATION, "\xc9\xc9\x07\x00", 4, test_key);
    for (int streaming = 0; streaming < 2; streaming++) {
        rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, streaming, 0);
        static uint8_t copy[256];
        memcpy(copy, f, n);
        R.messages = R.pings = 0;
        assert_int_equal(rill_ws_recv_inplace(srv, copy, n), 0);
        assert_int_equal(R.messages, 1);
        assert_int_equal(R.pings, 1);
        assert_int_equal(R.len, 5);
        assert_memory_equal(R.data, "Hello", 5);
        rill_ws_free(srv);
    }
    /* Stored block holding 40 valid bytes then C0: the error comes before the frame ends. */
    uint8_t raw[64];
    memset(raw, 'a', 40);
    raw[40] = 0xC0;
    raw[41] = 0x80;
    uint8_t blk[80] = {0x00, 42, 0x00, (uint8_t)~42, 0xff};
    memcpy(blk + 5, raw, 42);
    n = mkframe(f, true, 4, RILL_WS_OP_TEXT, blk, 47, test_key);
    rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, true, 0);
    R.messages = 0;
    R.pieces = 0;
    assert_int_equal(rill_ws_recv(srv, f, n - 1), RILL_ERR_UTF8);
    assert_int_equal(rill_ws_fail_code(srv), 1007);
    assert_int_equal(R.messages, 0);
    rill_ws_free(srv);
}

/* Incompressible data: without context takeover the original goes (RSV1 clear, fewer bytes);
 * with takeover it must stay compressed since later messages may refer to it. */
static void incompressible_messages(void **state)
{
    (void)state;
    uint32_t x = 99;
    for (size_t i = 0; i < 4000; i++) {
        x = x * 1664525u + 1013904223u;
        pay[i] = (uint8_t)(x >> 24);
    }
    rill_ws_pmd_params nctx = {.server_no_context_takeover = true};
    rill_ws *srv = pmd_codec(RILL_WS_SERVER, &nctx, false, 0);
    rill_ws *cli = pmd_codec(RILL_WS_CLIENT, &nctx, false, 0);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, pay, 4000), 0);
    size_t n = drain(srv, out, sizeof out);
    assert_int_equal(n, 4 + 4000);
    assert_int_equal(out[0] & 0x40, 0);
    assert_int_equal(rill_ws_recv(cli, out, n), 0);
    assert_memory_equal(R.data, pay, 4000);
    /* A compressible message afterwards is still compressed and decodes. */
    memset(pay + 5000, 'q', 3000);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, pay + 5000, 3000), 0);
    n = drain(srv, out, sizeof out);
    assert_int_equal(out[0] & 0x40, 0x40);
    assert_int_equal(rill_ws_recv(cli, out, n), 0);
    assert_int_equal(R.len, 3000);
    rill_ws_free(srv);
    rill_ws_free(cli);

    srv = pmd_codec(RILL_WS_SERVER, &plain, false, 0);
    cli = pmd_codec(RILL_WS_CLIENT, &plain, false, 0);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, pay, 4000), 0);
    n = drain(srv, out, sizeof out);
    assert_int_equal(out[0] & 0x40, 0x40);
    assert_int_equal(rill_ws_recv(cli, out, n), 0);
    assert_memory_equal(R.data, pay, 4000);
    rill_ws_free(srv);
    rill_ws_free(cli);
}

/* Empty pieces: an empty final fragment of a compressed streamed message, and a peer's RSV1
 * message with no payload bytes, leave both inflaters in step for the next messages. */
static void empty_compressed_pieces(void **state)
{
    (void)state;
    for (int streaming = 0; streaming < 2; streaming++) {
        ws_setup cfg = ws_cfg(RILL_WS_CLIENT, &R);
        cfg.opt.pmd = &plain;
        cfg.opt.compress_threshold = 1;
        rill_ws *cli = ws_setup_new(&cfg);
        rill_ws *srv = pmd_codec(RILL_WS_SERVER, &plain, streaming, 0);
        R.messages = 0;
        assert_int_equal(rill_ws_send_fragment(cli, RILL_WS_OP_TEXT, "Hello Hello", 11, false), 0);
        assert_int_equal(rill_ws_send_fragment(cli, 0, NULL, 0, false), 0);
        assert_int_equal(rill_ws_send_fragment(cli, 0, NULL, 0, true), 0);
        assert_int_equal(rill_ws_send(cli, RILL_WS_OP_TEXT, "Hello again", 11), 0);
        size_t n = drain(cli, out, sizeof out);
        assert_int_equal(rill_ws_recv(srv, out, n), 0);
        assert_int_equal(R.messages, 2);
        assert_int_equal(R.len, 11);
        assert_memory_equal(R.data, "Hello again", 11);
        rill_ws_free(srv);
        rill_ws_free(cli);

        /* BFINAL without context takeover: each message is a fresh stream. */
        static const uint8_t bf[] = {0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00,
                                     0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
        rill_ws_pmd_params nctx = {.server_no_context_takeover = true};
        cli = pmd_codec(RILL_WS_CLIENT, &nctx, streaming, 0);
        R.messages = 0;
        assert_int_equal(rill_ws_recv(cli, bf, sizeof bf), 0);
        assert_int_equal(R.messages, 2);
        assert_memory_equal(R.data, "Hello", 5);
        rill_ws_free(cli);

        /* From the RFC: an empty message, then "Hello" twice sharing the window. */
        static const uint8_t f[] = {0xc1, 0x00, 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                    0x00, 0xc1, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00};
        cli = pmd_codec(RILL_WS_CLIENT, &plain, streaming, 0);
        R.messages = 0;
        assert_int_equal(rill_ws_recv(cli, f, sizeof f), 0);
        assert_int_equal(R.messages, 4);
        assert_int_equal(R.len, 5);
        assert_memory_equal(R.data, "Hello", 5);
        rill_ws_free(cli);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_accepts_valid_offers),
        cmocka_unit_test(server_declines_invalid_offers),
        cmocka_unit_test(client_offer_and_response_checks),
        cmocka_unit_test_setup_teardown(rfc7692_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip_context_takeover_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(fragmented_compressed_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(window_bits_8_to_15, setup, teardown),
        cmocka_unit_test_setup_teardown(decompression_bomb_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(compressed_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(first_violation_decides_in_any_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(reach_past_the_negotiated_window_same_in_pieces, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(full_negotiation_then_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(compressed_inplace_interleaved_and_fail_fast, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(incompressible_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_compressed_pieces, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
