/* WebSocket codec: framing, masking, opcodes, reserved bits, fragmentation, control frames,
 * the closing handshake, limits and the send path (Autobahn TestSuite categories 1-5, 7, 9). */
#include "test_ws_util.h"
#include "ws/ws_internal.h"

static rec R;
static uint8_t out[1 << 18], pay[1 << 18];

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

/* RFC 6455 §5.7 examples. */
static void rfc_single_frame_unmasked_text(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    rill_ws *ws = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_recv(ws, f, sizeof f), 0);
    assert_int_equal(R.messages, 1);
    assert_int_equal(R.opcode, RILL_WS_OP_TEXT);
    assert_memory_equal(R.data, "Hello", 5);
    assert_int_equal(R.len, 5);
    assert_int_equal(R.flags[0], RILL_WS_FIRST | RILL_WS_FINAL);
    rill_ws_free(ws);
}

static void rfc_single_frame_masked_text(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    assert_int_equal(rill_ws_recv(ws, f, sizeof f), 0);
    assert_int_equal(R.messages, 1);
    assert_memory_equal(R.data, "Hello", 5);
    rill_ws_free(ws);

    /* And our client produces exactly those bytes with that key. */
    ws = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_send(ws, RILL_WS_OP_TEXT, "Hello", 5), 0);
    assert_int_equal(drain(ws, out, sizeof out), sizeof f);
    assert_memory_equal(out, f, sizeof f);
    rill_ws_free(ws);
}

static void rfc_fragmented_unmasked_text(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    rill_ws *ws = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_recv(ws, f, 5), 0);
    assert_int_equal(R.messages, 0);
    assert_int_equal(rill_ws_recv(ws, f + 5, 4), 0);
    assert_int_equal(R.messages, 1);
    assert_int_equal(R.len, 5);
    assert_memory_equal(R.data, "Hello", 5);
    rill_ws_free(ws);
}

static void rfc_ping_gets_pong(void **state)
{
    (void)state;
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    rill_ws *ws = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_recv(ws, ping, sizeof ping), 0);
    assert_int_equal(R.pings, 1);
    assert_int_equal(drain(ws, out, sizeof out), sizeof pong);
    assert_memory_equal(out, pong, sizeof pong);
    rill_ws_free(ws);

    ws = ws_make(RILL_WS_SERVER, &R);
    assert_int_equal(rill_ws_recv(ws, pong, sizeof pong), 0);
    assert_int_equal(R.pongs, 1);
    assert_memory_equal(R.ctl, "Hello", 5);
    assert_int_equal(drain(ws, out, sizeof out), 0); /* a pong is not answered */
    rill_ws_free(ws);
}

static void rfc_256_and_64k_binary_headers(void **state)
{
    (void)state;
    static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    uint8_t hdr[RILL_WS_MAX_HEADER_SIZE];
    assert_int_equal(rill_ws_frame_header(hdr, RILL_WS_OP_BINARY, true, false, 256, NULL), 4);
    assert_memory_equal(hdr, h256, 4);
    assert_int_equal(rill_ws_frame_header(hdr, RILL_WS_OP_BINARY, true, false, 65536, NULL), 10);
    assert_memory_equal(hdr, h64k, 10);

    for (size_t i = 0; i < 65536; i++)
        pay[i] = (uint8_t)(i * 7);
    rill_ws *srv = ws_make(RILL_WS_SERVER, &R);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, pay, 256), 0);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, pay, 65536), 0);
    size_t n = drain(srv, out, sizeof out);
    assert_int_equal(n, 4 + 256 + 10 + 65536);
    assert_memory_equal(out, h256, 4);
    assert_memory_equal(out + 260, h64k, 10);

    rill_ws *cli = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_recv(cli, out, n), 0);
    assert_int_equal(R.messages, 2);
    assert_int_equal(R.len, 65536);
    assert_memory_equal(R.data, pay, 65536);
    rill_ws_free(srv);
    rill_ws_free(cli);
}

/* Every length class, both directions, and byte-at-a-time delivery. */
static void length_encodings_round_trip(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 100000};
    for (size_t i = 0; i < 200000; i++)
        pay[i] = (uint8_t)(i * 13 + 1);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int dir = 0; dir < 2; dir++) {
            rill_ws_role from = dir ? RILL_WS_SERVER : RILL_WS_CLIENT;
            rill_ws *tx = ws_make(from, &R);
            rill_ws *rx = ws_make(dir ? RILL_WS_CLIENT : RILL_WS_SERVER, &R);
            R.messages = 0;
            assert_int_equal(rill_ws_send(tx, RILL_WS_OP_BINARY, pay, lens[k]), 0);
            size_t n = drain(tx, out, sizeof out);
            size_t hdr = 2 + (lens[k] >= 126) * 2 + (lens[k] >= 65536) * 6 + (dir ? 0 : 4);
            assert_int_equal(n, hdr + lens[k]);
            if (lens[k] < 1000) {
                for (size_t b = 0; b < n; b++)
                    assert_int_equal(rill_ws_recv(rx, out + b, 1), 0);
            } else {
                assert_int_equal(rill_ws_recv(rx, out, n), 0);
            }
            assert_int_equal(R.messages, 1);
            assert_int_equal(R.len, lens[k]);
            assert_memory_equal(R.data, pay, lens[k]);
            rill_ws_free(tx);
            rill_ws_free(rx);
        }
    }
}

static void non_minimal_lengths_rejected(void **state)
{
    (void)state;
    static const uint8_t len16_small[] = {0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4};
    static const uint8_t len64_small[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4};
    static const uint8_t len64_top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    static const uint8_t len16_ok[] = {0x82, 0xFE, 0x00, 0x7E, 1, 2, 3, 4};
    assert_int_equal(server_fail_code(len16_small, sizeof len16_small), 1002);
    assert_int_equal(server_fail_code(len64_small, sizeof len64_small), 1002);
    assert_int_equal(server_fail_code(len64_top, sizeof len64_top), 1002);
    assert_int_equal(server_fail_code(len16_ok, sizeof len16_ok), 0);
}

static void masking_rules_per_role(void **state)
{
    (void)state;
    uint8_t f[32];
    size_t n = mkframe(f, true, 0, RILL_WS_OP_TEXT, "hi", 2, NULL);
    assert_int_equal(server_fail_code(f, n), 1002); /* clients must mask */

    rill_ws *cli = ws_make(RILL_WS_CLIENT, &R);
    n = cframe(f, true, RILL_WS_OP_TEXT, "hi", 2);
    assert_int_equal(rill_ws_recv(cli, f, n), RILL_ERR_PROTOCOL); /* servers must not */
    assert_int_equal(rill_ws_fail_code(cli), 1002);
    assert_int_equal(queued_close_code(cli), 1002);
    rill_ws_free(cli);

    /* Our own frames follow the same rules. */
    rill_ws *srv = ws_make(RILL_WS_SERVER, &R);
    cli = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, "x", 1), 0);
    assert_int_equal(rill_ws_send(cli, RILL_WS_OP_TEXT, "x", 1), 0);
    parsed p;
    n = drain(srv, out, sizeof out);
    parse_frame(out, n, &p, pay);
    assert_false(p.masked);
    n = drain(cli, out, sizeof out);
    parse_frame(out, n, &p, pay);
    assert_true(p.masked);
    assert_memory_equal(pay, "x", 1);
    rill_ws_free(srv);
    rill_ws_free(cli);
}

static void random_mask_keys_decode(void **state)
{
    (void)state;
    ws_setup cfg = ws_cfg(RILL_WS_CLIENT, &R);
    cfg.cb.mask_key = NULL; /* RAND_bytes */
    rill_ws *cli = ws_setup_new(&cfg);
    rill_ws *srv = ws_make(RILL_WS_SERVER, &R);
    uint8_t keys[100][4];
    for (int i = 0; i < 100; i++) {
        assert_int_equal(rill_ws_send(cli, RILL_WS_OP_TEXT, "abcdefghijk", 11), 0);
        size_t n = drain(cli, out, sizeof out);
        assert_int_equal(n, 2 + 4 + 11);
        memcpy(keys[i], out + 2, 4);
        assert_int_equal(rill_ws_recv(srv, out, n), 0);
        assert_memory_equal(R.data, "abcdefghijk", 11);
    }
    int distinct = 0;
    for (int i = 1; i < 100; i++)
        distinct += memcmp(keys[i], keys[i - 1], 4) != 0;
    assert_true(distinct > 95);
    rill_ws_free(cli);
    rill_ws_free(srv);
}

static void unmask_at_every_offset_and_alignment(void **state)
{
    (void)state;
    static const uint8_t key[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    uint8_t src[300], ref[300], work[320];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 31 + 7);
    for (size_t off = 0; off < 8; off++)
        for (size_t align = 0; align < 8; align++)
            for (size_t len = 0; len < 100; len += 7) {
                for (size_t i = 0; i < len; i++)
                    ref[i] = src[i] ^ key[(off + i) % 4];
                memcpy(work + align, src, len);
                rill_ws_mask(work + align, len, key, off);
                assert_memory_equal(work + align, ref, len);
            }
}

static void reserved_bits_rejected(void **state)
{
    (void)state;
    uint8_t f[32];
    for (unsigned rsv = 1; rsv < 8; rsv++) {
        size_t n = mkframe(f, true, rsv, RILL_WS_OP_TEXT, "hi", 2, test_key);
        assert_int_equal(server_fail_code(f, n), 1002);
        n = mkframe(f, true, rsv, RILL_WS_OP_PING, "hi", 2, test_key);
        assert_int_equal(server_fail_code(f, n), 1002);
    }
}

static void reserved_opcodes_rejected(void **state)
{
    (void)state;
    uint8_t f[32];
    static const unsigned bad[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = mkframe(f, true, 0, bad[i], "", 0, test_key);
        assert_int_equal(server_fail_code(f, n), 1002);
        n = mkframe(f, true, 0, bad[i], "payload", 7, test_key);
        assert_int_equal(server_fail_code(f, n), 1002);
    }
    /* Valid traffic before a bad opcode is delivered, the bad frame fails the connection. */
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    size_t n = cframe(f, true, RILL_WS_OP_TEXT, "ok", 2);
    n += mkframe(f + n, true, 0, 5, "", 0, test_key);
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_PROTOCOL);
    assert_int_equal(R.messages, 1);
    assert_int_equal(rill_ws_recv(ws, f, 2), RILL_ERR_STATE);
    rill_ws_free(ws);
}

static void control_frame_limits(void **state)
{
    (void)state;
    uint8_t f[300], big[126];
    memset(big, 'p', sizeof big);
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    size_t n = cframe(f, true, RILL_WS_OP_PING, big, 125);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.pings, 1);
    parsed p;
    n = drain(ws, out, sizeof out);
    assert_int_equal(parse_frame(out, n, &p, pay), n);
    assert_int_equal(p.opcode, RILL_WS_OP_PONG);
    assert_int_equal(p.len, 125);
    assert_memory_equal(pay, big, 125);
    rill_ws_free(ws);

    n = cframe(f, true, RILL_WS_OP_PING, big, 126);
    assert_int_equal(server_fail_code(f, n), 1002);
    n = cframe(f, true, RILL_WS_OP_PONG, big, 126);
    assert_int_equal(server_fail_code(f, n), 1002);
    n = cframe(f, true, RILL_WS_OP_CLOSE, big, 126);
    assert_int_equal(server_fail_code(f, n), 1002);
    n = cframe(f, false, RILL_WS_OP_PING, "frag", 4);
    assert_int_equal(server_fail_code(f, n), 1002);
    /* A fragmented ping's "continuation" is no better. */
    n = cframe(f, false, RILL_WS_OP_PING, "a", 1);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, "b", 1);
    assert_int_equal(server_fail_code(f, n), 1002);
}

static void fragmentation_rules(void **state)
{
    (void)state;
    uint8_t f[300];
    size_t n = cframe(f, true, RILL_WS_OP_CONTINUATION, "x", 1);
    assert_int_equal(server_fail_code(f, n), 1002);
    n = cframe(f, false, RILL_WS_OP_CONTINUATION, "x", 1);
    assert_int_equal(server_fail_code(f, n), 1002);
    n = cframe(f, false, RILL_WS_OP_TEXT, "a", 1);
    n += cframe(f + n, true, RILL_WS_OP_TEXT, "b", 1);
    assert_int_equal(server_fail_code(f, n), 1002);
    n = cframe(f, false, RILL_WS_OP_BINARY, "a", 1);
    n += cframe(f + n, false, RILL_WS_OP_BINARY, "b", 1);
    assert_int_equal(server_fail_code(f, n), 1002);

    /* Control frames between fragments are fine. */
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    n = cframe(f, false, RILL_WS_OP_TEXT, "frag", 4);
    n += cframe(f + n, true, RILL_WS_OP_PING, "p1", 2);
    n += cframe(f + n, false, RILL_WS_OP_CONTINUATION, "men", 3);
    n += cframe(f + n, true, RILL_WS_OP_PONG, "p2", 2);
    n += cframe(f + n, false, RILL_WS_OP_CONTINUATION, "", 0);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, "ted", 3);
    for (size_t i = 0; i < n; i++) /* byte by byte through the header buffer */
        assert_int_equal(rill_ws_recv(ws, f + i, 1), 0);
    assert_int_equal(R.messages, 1);
    assert_int_equal(R.len, 10);
    assert_memory_equal(R.data, "fragmented", 10);
    assert_int_equal(R.pings, 1);
    assert_int_equal(R.pongs, 1);
    /* The next message starts cleanly. */
    n = cframe(f, true, RILL_WS_OP_BINARY, "next", 4);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.messages, 2);
    assert_int_equal(R.opcode, RILL_WS_OP_BINARY);
    rill_ws_free(ws);
}

static void streaming_delivery(void **state)
{
    (void)state;
    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.streaming = true;
    rill_ws *ws = ws_setup_new(&cfg);
    uint8_t f[300];
    size_t n = cframe(f, false, RILL_WS_OP_BINARY, "abcdef", 6);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, "ghij", 4);
    n += cframe(f + n, false, RILL_WS_OP_TEXT, "xy", 2);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, "", 0);
    /* Split inside the first payload: two pieces for that frame. */
    assert_int_equal(rill_ws_recv(ws, f, 7), 0);
    assert_int_equal(rill_ws_recv(ws, f + 7, n - 7), 0);
    assert_int_equal(R.messages, 2);
    assert_int_equal(R.pieces, 5);
    assert_int_equal(R.flags[0], RILL_WS_FIRST);
    assert_int_equal(R.flags[1], 0);
    assert_int_equal(R.flags[2], RILL_WS_FINAL);
    assert_int_equal(R.flags[3], RILL_WS_FIRST);
    assert_int_equal(R.flags[4], RILL_WS_FINAL); /* the empty final frame */
    assert_int_equal(R.opcode, RILL_WS_OP_TEXT);
    assert_memory_equal(R.data, "xy", 2);
    assert_int_equal(R.total, 12);
    rill_ws_free(ws);
}

static void inplace_delivers_from_input(void **state)
{
    (void)state;
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    uint8_t f[300];
    size_t n = cframe(f, true, RILL_WS_OP_TEXT, "zero copy", 9);
    assert_int_equal(rill_ws_recv_inplace(ws, f, n), 0);
    assert_ptr_equal(R.last_ptr, f + 6);
    assert_memory_equal(f + 6, "zero copy", 9); /* unmasked in place */
    /* The const path copies. */
    n = cframe(f, true, RILL_WS_OP_TEXT, "copied", 6);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_true(R.last_ptr < f || R.last_ptr >= f + sizeof f);
    assert_memory_equal(R.data, "copied", 6);
    rill_ws_free(ws);
}

static unsigned close_reply(const uint8_t *payload, size_t len, unsigned *fail)
{
    uint8_t f[300];
    rec r;
    rec_init(&r);
    rill_ws *ws = ws_make(RILL_WS_SERVER, &r);
    size_t n = cframe(f, true, RILL_WS_OP_CLOSE, payload, len);
    int rc = rill_ws_recv(ws, f, n);
    *fail = rill_ws_fail_code(ws);
    unsigned reply = queued_close_code(ws);
    if (!*fail) {
        assert_int_equal(rc, 0);
        assert_int_equal(r.closes, 1);
        assert_int_equal(rill_ws_state(ws), RILL_WS_CLOSED);
        assert_true(rill_ws_is_done(ws));
    } else {
        assert_int_equal(r.closes, 0);
    }
    rill_ws_free(ws);
    rec_free(&r);
    return reply;
}

static void close_codes_validated(void **state)
{
    (void)state;
    for (unsigned code = 0; code < 5100; code++) {
        bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                     (code >= 3000 && code <= 4999);
        assert_int_equal(rill_ws_close_code_valid(code), valid);
    }
    static const unsigned samples[] = {0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007,
                                       1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015, 1016,
                                       1100, 2000, 2999, 3000, 3999, 4000, 4999, 5000, 65535};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint8_t p[2] = {(uint8_t)(samples[i] >> 8), (uint8_t)samples[i]};
        unsigned fail;
        unsigned reply = close_reply(p, 2, &fail);
        if (rill_ws_close_code_valid(samples[i])) {
            assert_int_equal(fail, 0);
            assert_int_equal(reply, samples[i]); /* echoed */
        } else {
            assert_int_equal(fail, 1002);
            assert_int_equal(reply, 1002);
        }
    }
}

static void close_payload_rules(void **state)
{
    (void)state;
    unsigned fail;
    assert_int_equal(close_reply((const uint8_t *)"", 0, &fail), 0); /* empty answered empty */
    assert_int_equal(fail, 0);
    assert_int_equal(close_reply((const uint8_t *)"\x03", 1, &fail), 1002);
    assert_int_equal(fail, 1002);
    assert_int_equal(close_reply((const uint8_t *)"\x03\xe8" "bye \xce\xba", 8, &fail), 1000);
    assert_int_equal(fail, 0);
    assert_int_equal(close_reply((const uint8_t *)"\x03\xe8" "bad \xce", 7, &fail), 1007);
    assert_int_equal(fail, 1007);
    assert_int_equal(close_reply((const uint8_t *)"\x03\xe8\xed\xa0\x80", 5, &fail), 1007);

    /* The reason reaches the application; 1005 stands for "no code". */
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    uint8_t f[64];
    size_t n = cframe(f, true, RILL_WS_OP_CLOSE, "\x0f\xa0going", 7);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.close_code, 4000);
    assert_string_equal(R.reason, "going");
    assert_int_equal(rill_ws_transport_closed(ws), 4000);
    rill_ws_free(ws);
    ws = ws_make(RILL_WS_SERVER, &R);
    n = cframe(f, true, RILL_WS_OP_CLOSE, "", 0);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.close_code, RILL_WS_CLOSE_NO_STATUS);
    assert_int_equal(rill_ws_transport_closed(ws), RILL_WS_CLOSE_NO_STATUS);
    rill_ws_free(ws);
}

static void close_state_machine(void **state)
{
    (void)state;
    uint8_t f[300];
    /* Peer closes first: we echo once, then ignore what follows and refuse to send. */
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    size_t n = cframe(f, true, RILL_WS_OP_CLOSE, "\x03\xe9", 2);
    n += cframe(f + n, true, RILL_WS_OP_TEXT, "late", 4);
    R.messages = 0;
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.messages, 0);
    assert_int_equal(queued_close_code(ws), 1001);
    assert_int_equal(rill_ws_state(ws), RILL_WS_CLOSED);
    assert_int_equal(rill_ws_send(ws, RILL_WS_OP_TEXT, "x", 1), RILL_ERR_STATE);
    assert_int_equal(rill_ws_send_ping(ws, "x", 1), RILL_ERR_STATE);
    assert_int_equal(rill_ws_close(ws, 1000, NULL, 0), RILL_ERR_STATE);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(drain(ws, out, sizeof out), 0);
    rill_ws_free(ws);

    /* We close first: no more data out, data in still delivered, no second Close. */
    ws = ws_make(RILL_WS_SERVER, &R);
    assert_int_equal(rill_ws_close(ws, 1000, "done", 4), 0);
    assert_int_equal(rill_ws_state(ws), RILL_WS_CLOSE_SENT);
    assert_false(rill_ws_is_done(ws));
    assert_int_equal(rill_ws_send(ws, RILL_WS_OP_BINARY, "x", 1), RILL_ERR_STATE);
    assert_int_equal(rill_ws_close(ws, 1000, NULL, 0), RILL_ERR_STATE);
    parsed p;
    n = drain(ws, out, sizeof out);
    assert_int_equal(parse_frame(out, n, &p, pay), n);
    assert_int_equal(p.opcode, RILL_WS_OP_CLOSE);
    assert_memory_equal(pay, "\x03\xe8" "done", 6);
    n = cframe(f, true, RILL_WS_OP_TEXT, "still", 5);
    n += cframe(f + n, true, RILL_WS_OP_PING, "p", 1);
    n += cframe(f + n, true, RILL_WS_OP_CLOSE, "\x03\xe8", 2);
    R.messages = 0;
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.messages, 1);
    assert_int_equal(drain(ws, out, sizeof out), 0); /* no pong, no second Close */
    assert_int_equal(rill_ws_state(ws), RILL_WS_CLOSED);
    assert_int_equal(rill_ws_transport_closed(ws), 1000);
    rill_ws_free(ws);

    /* Transport gone before any Close: 1006. */
    ws = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_transport_closed(ws), RILL_WS_CLOSE_ABNORMAL);
    assert_true(rill_ws_is_done(ws));
    rill_ws_free(ws);

    /* Sending-side validation of close codes and reasons. */
    ws = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_close(ws, 1005, NULL, 0), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_ws_close(ws, 1006, NULL, 0), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_ws_close(ws, 0, "r", 1), RILL_ERR_INVALID_ARG);
    char longr[124];
    memset(longr, 'a', sizeof longr);
    assert_int_equal(rill_ws_close(ws, 1000, longr, 124), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_ws_close(ws, 1000, "\xff", 1), RILL_ERR_UTF8);
    assert_int_equal(rill_ws_close(ws, 4999, longr, 123), 0);
    rill_ws_free(ws);
}

static void message_size_limit(void **state)
{
    (void)state;
    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.max_message_size = 1000;
    uint8_t f[4096];
    memset(pay, 'a', 2000);
    /* Exactly the limit passes. */
    rill_ws *ws = ws_setup_new(&cfg);
    size_t n = cframe(f, true, RILL_WS_OP_BINARY, pay, 1000);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.len, 1000);
    rill_ws_free(ws);
    /* One byte more fails at the header, before any payload arrives. */
    ws = ws_setup_new(&cfg);
    n = cframe(f, true, RILL_WS_OP_BINARY, pay, 1001);
    assert_int_equal(rill_ws_recv(ws, f, 8), RILL_ERR_TOO_BIG);
    assert_int_equal(rill_ws_fail_code(ws), 1009);
    assert_int_equal(queued_close_code(ws), 1009);
    rill_ws_free(ws);
    /* Fragments add up. */
    ws = ws_setup_new(&cfg);
    n = cframe(f, false, RILL_WS_OP_TEXT, pay, 600);
    n += cframe(f + n, false, RILL_WS_OP_CONTINUATION, pay, 400);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, pay, 1);
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_TOO_BIG);
    assert_int_equal(rill_ws_fail_code(ws), 1009);
    rill_ws_free(ws);
    /* Streaming mode has the same cap. */
    cfg.opt.streaming = true;
    ws = ws_setup_new(&cfg);
    n = cframe(f, false, RILL_WS_OP_BINARY, pay, 900);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, pay, 101);
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_TOO_BIG);
    rill_ws_free(ws);
    /* A large declared frame that trickles in costs only what arrived. */
    cfg.opt.streaming = false;
    cfg.opt.max_message_size = 1u << 24;
    ws = ws_setup_new(&cfg);
    static uint8_t big[(1u << 20) + 16];
    n = cframe(big, true, RILL_WS_OP_BINARY, big + 16, 1u << 20);
    assert_int_equal(rill_ws_recv(ws, big, 14 + 100), 0);
    assert_true(ws->msg.cap < 4096);
    assert_int_equal(rill_ws_recv(ws, big + 114, n - 114), 0);
    assert_int_equal(R.len, 1u << 20);
    assert_true(ws->msg.cap <= 1u << 24);
    rill_ws_free(ws);
    /* A huge declared length is refused without allocating it. */
    static const uint8_t huge[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                   1, 2, 3, 4};
    assert_int_equal(server_fail_code(huge, sizeof huge), 1009);
}

static void sending_fragments_and_queue(void **state)
{
    (void)state;
    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.max_frame_size = 4;
    rill_ws *srv = ws_setup_new(&cfg);
    rill_ws *cli = ws_make(RILL_WS_CLIENT, &R);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, "0123456789", 10), 0);
    size_t n = drain(srv, out, sizeof out);
    parsed p;
    size_t off = 0;
    static const unsigned ops[] = {RILL_WS_OP_TEXT, 0, 0};
    static const bool fins[] = {false, false, true};
    for (int i = 0; i < 3; i++) {
        off += parse_frame(out + off, n - off, &p, pay);
        assert_int_equal(p.opcode, ops[i]);
        assert_int_equal(p.fin, fins[i]);
        assert_int_equal(p.len, i < 2 ? 4 : 2);
    }
    assert_int_equal(off, n);
    assert_int_equal(rill_ws_recv(cli, out, n), 0);
    assert_memory_equal(R.data, "0123456789", 10);

    /* Streamed sending: continuation opcodes, control frames in between, UTF-8 across pieces. */
    assert_int_equal(rill_ws_send_fragment(srv, RILL_WS_OP_TEXT, "\xce", 1, false), 0);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, "no", 2), RILL_ERR_STATE);
    assert_int_equal(rill_ws_send_ping(srv, "p", 1), 0);
    assert_int_equal(rill_ws_send_fragment(srv, 0, "\xba", 1, true), 0);
    assert_int_equal(rill_ws_send_fragment(srv, RILL_WS_OP_TEXT, "\xce", 1, true), RILL_ERR_UTF8);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, "\xc0\x80", 2), RILL_ERR_UTF8);
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_PING, "x", 1), RILL_ERR_INVALID_ARG);
    assert_int_equal(rill_ws_send_ping(srv, pay, 126), RILL_ERR_INVALID_ARG);
    n = drain(srv, out, sizeof out);
    R.messages = 0;
    R.pongs = R.pings = 0;
    assert_int_equal(rill_ws_recv(cli, out, n), 0);
    assert_int_equal(R.messages, 1);
    assert_int_equal(R.pings, 1);
    assert_memory_equal(R.data, "\xce\xba", 2);

    /* Partial draining keeps order. */
    assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, "abcdefgh", 8), 0);
    const uint8_t *q;
    size_t pending = rill_ws_output(srv, &q);
    assert_int_equal(pending, 2 + 4 + 2 + 4);
    rill_ws_output_sent(srv, 3);
    assert_int_equal(rill_ws_output(srv, &q), pending - 3);
    assert_int_equal(drain(srv, out, sizeof out), pending - 3);
    assert_int_equal(rill_ws_output(srv, &q), 0);
    rill_ws_free(srv);
    rill_ws_free(cli);
}

static void pong_queue_is_bounded(void **state)
{
    (void)state;
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    uint8_t f[4096];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        char p[8];
        int len = snprintf(p, sizeof p, "p%d", i);
        n += cframe(f + n, true, RILL_WS_OP_PING, p, (size_t)len);
    }
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.pings, 100);
    parsed p;
    n = drain(ws, out, sizeof out);
    assert_int_equal(parse_frame(out, n, &p, pay), n); /* one pong, for the latest ping */
    assert_int_equal(p.opcode, RILL_WS_OP_PONG);
    assert_memory_equal(pay, "p99", 3);
    rill_ws_free(ws);

    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.no_auto_pong = true;
    ws = ws_setup_new(&cfg);
    n = cframe(f, true, RILL_WS_OP_PING, "x", 1);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(drain(ws, out, sizeof out), 0);
    assert_int_equal(rill_ws_send_pong(ws, "x", 1), 0);
    assert_int_equal(drain(ws, out, sizeof out), 3);
    rill_ws_free(ws);
}

static void zero_copy_header(void **state)
{
    (void)state;
    rill_ws *srv = ws_make(RILL_WS_SERVER, &R);
    rill_ws *cli = ws_make(RILL_WS_CLIENT, &R);
    uint8_t hdr[RILL_WS_MAX_HEADER_SIZE], key[4];
    size_t hlen;
    assert_int_equal(rill_ws_send_header(srv, RILL_WS_OP_BINARY, 300, hdr, &hlen, NULL), 0);
    assert_int_equal(hlen, 4);
    memcpy(out, hdr, hlen);
    memset(out + hlen, 'z', 300);
    assert_int_equal(rill_ws_recv(cli, out, hlen + 300), 0);
    assert_int_equal(R.len, 300);
    /* Queued output first: refused until drained. */
    assert_int_equal(rill_ws_send_ping(srv, "", 0), 0);
    assert_int_equal(rill_ws_send_header(srv, RILL_WS_OP_BINARY, 1, hdr, &hlen, NULL),
                     RILL_ERR_WOULD_BLOCK);
    drain(srv, out, sizeof out);
    assert_int_equal(rill_ws_send_header(srv, RILL_WS_OP_BINARY, 1, hdr, &hlen, NULL), 0);
    /* Client role: the caller masks with the returned key. */
    assert_int_equal(rill_ws_send_header(cli, RILL_WS_OP_TEXT, 5, hdr, &hlen, key), 0);
    assert_int_equal(hlen, 6);
    memcpy(out, hdr, hlen);
    memcpy(out + hlen, "Hello", 5);
    rill_ws_mask(out + hlen, 5, key, 0);
    assert_int_equal(rill_ws_recv(srv, out, hlen + 5), 0);
    assert_memory_equal(R.data, "Hello", 5);
    rill_ws_free(srv);
    rill_ws_free(cli);
}

static void callback_error_stops(void **state)
{
    (void)state;
    rill_ws *ws = ws_make(RILL_WS_SERVER, &R);
    uint8_t f[64];
    size_t n = cframe(f, true, RILL_WS_OP_TEXT, "a", 1);
    n += cframe(f + n, true, RILL_WS_OP_TEXT, "b", 1);
    R.fail_with = RILL_ERR_LIMIT;
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_LIMIT);
    assert_int_equal(R.messages, 1);
    assert_int_equal(rill_ws_state(ws), RILL_WS_FAILED);
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_STATE);
    R.fail_with = 0;
    rill_ws_free(ws);

    ws = ws_make(RILL_WS_SERVER, &R);
    assert_int_equal(rill_ws_send(ws, RILL_WS_OP_TEXT, "queued", 6), 0);
    rill_ws_abort(ws);
    assert_int_equal(drain(ws, out, sizeof out), 0);
    assert_true(rill_ws_is_done(ws));
    assert_int_equal(rill_ws_transport_closed(ws), RILL_WS_CLOSE_ABNORMAL);
    rill_ws_free(ws);
}

static int refuse_close(unsigned code, const uint8_t *reason, size_t len, void *user)
{
    (void)user;
    (void)code;
    (void)reason;
    (void)len;
    return RILL_ERR_REFUSED;
}

static void edge_paths(void **state)
{
    (void)state;
    uint8_t f[512];
    /* Streaming text ending inside a UTF-8 sequence fails at its FINAL piece. */
    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.streaming = true;
    rill_ws *ws = ws_setup_new(&cfg);
    size_t n = cframe(f, true, RILL_WS_OP_TEXT, "ok\xe2\x82", 4);
    R.pieces = R.messages = 0;
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_UTF8);
    assert_int_equal(rill_ws_fail_code(ws), 1007);
    assert_int_equal(R.messages, 0);
    rill_ws_free(ws);

    /* In-place input one byte at a time: headers straddle calls, payload unmasked in place. */
    ws = ws_make(RILL_WS_SERVER, &R);
    n = cframe(f, false, RILL_WS_OP_TEXT, "split ", 6);
    n += cframe(f + n, true, RILL_WS_OP_CONTINUATION, pay, 0);
    n += cframe(f + n, true, RILL_WS_OP_BINARY, "x", 1);
    memset(pay, 'y', 300);
    n += cframe(f + n, true, RILL_WS_OP_BINARY, pay, 300);
    R.messages = 0;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rill_ws_recv_inplace(ws, f + i, 1), 0);
    assert_int_equal(R.messages, 3);
    assert_int_equal(R.len, 300);
    assert_memory_equal(R.data, pay, 300);
    rill_ws_free(ws);

    /* A refusing on_close callback stops the codec without an echo. */
    cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.cb.on_close = refuse_close;
    ws = ws_setup_new(&cfg);
    n = cframe(f, true, RILL_WS_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(rill_ws_recv(ws, f, n), RILL_ERR_REFUSED);
    assert_int_equal(rill_ws_state(ws), RILL_WS_FAILED);
    assert_int_equal(drain(ws, out, sizeof out), 0);
    rill_ws_free(ws);

    /* Output drained in part, then more queued: order and content survive compaction. */
    rill_ws *srv = ws_make(RILL_WS_SERVER, &R);
    rill_ws *cli = ws_make(RILL_WS_CLIENT, &R);
    static uint8_t got[1 << 16];
    size_t got_len = 0;
    R.messages = 0;
    for (int i = 0; i < 200; i++) {
        char m[32];
        int len = snprintf(m, sizeof m, "message %d", i);
        assert_int_equal(rill_ws_send(srv, RILL_WS_OP_TEXT, m, (size_t)len), 0);
        got_len += rill_ws_output_copy(srv, got + got_len, 7); /* a slow transport */
    }
    got_len += drain(srv, got + got_len, sizeof got - got_len);
    assert_int_equal(rill_ws_recv(cli, got, got_len), 0);
    assert_int_equal(R.messages, 200);
    assert_memory_equal(R.data, "message 199", 11);
    rill_ws_free(srv);
    rill_ws_free(cli);
}

/* Leading sizes (docs/ARCHITECTURE.md, "Public API conventions"): 0 or larger than the library's
 * struct is refused; an older, shorter callbacks struct has no callbacks past its size. */
static void struct_sizes_are_checked(void **state)
{
    (void)state;
    ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
    cfg.opt.size = 0;
    assert_null(ws_setup_new(&cfg));
    cfg.opt.size = sizeof cfg.opt + 1;
    assert_null(ws_setup_new(&cfg));
    cfg.opt.size = sizeof cfg.opt;
    cfg.cb.size = 0;
    assert_null(ws_setup_new(&cfg));
    cfg.cb.size = sizeof cfg.cb + sizeof(void *);
    assert_null(ws_setup_new(&cfg));
    cfg.cb.size = offsetof(rill_ws_callbacks, on_ping); /* on_message only */
    rill_ws *ws = ws_setup_new(&cfg);
    assert_non_null(ws);
    uint8_t f[64];
    size_t n = cframe(f, true, RILL_WS_OP_PING, (const uint8_t *)"p", 1);
    n += cframe(f + n, true, RILL_WS_OP_TEXT, (const uint8_t *)"hi", 2);
    assert_int_equal(rill_ws_recv(ws, f, n), 0);
    assert_int_equal(R.pings, 0); /* past the caller's size: not called */
    assert_int_equal(R.messages, 1);
    rill_ws_free(ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(struct_sizes_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(rfc_single_frame_unmasked_text, setup, teardown),
        cmocka_unit_test_setup_teardown(rfc_single_frame_masked_text, setup, teardown),
        cmocka_unit_test_setup_teardown(rfc_fragmented_unmasked_text, setup, teardown),
        cmocka_unit_test_setup_teardown(rfc_ping_gets_pong, setup, teardown),
        cmocka_unit_test_setup_teardown(rfc_256_and_64k_binary_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(length_encodings_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(non_minimal_lengths_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(masking_rules_per_role, setup, teardown),
        cmocka_unit_test_setup_teardown(random_mask_keys_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(unmask_at_every_offset_and_alignment, setup, teardown),
        cmocka_unit_test_setup_teardown(reserved_bits_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(reserved_opcodes_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(control_frame_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(fragmentation_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(streaming_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(inplace_delivers_from_input, setup, teardown),
        cmocka_unit_test_setup_teardown(close_codes_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(close_payload_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(close_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(message_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(sending_fragments_and_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(pong_queue_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_copy_header, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_error_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(edge_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
