/* Protocol selection helpers: HTTP/2 preface detection, h2c and WebSocket upgrade recognition,
 * and the token-list / field lookup utilities they are built on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_h1_harness.h"

/* Parses a complete request head; the parser (returned through *pp) owns the head. */
static const rill_h1_head *parse_head(const char *req, rill_h1_parser **pp)
{
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    rill_h1_event ev;
    size_t used;
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)req, strlen(req), &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_HEAD);
    *pp = p;
    return ev.head;
}

static void preface_detection(void **state)
{
    (void)state;
    const char *pre = RILL_H1_H2_PREFACE;
    assert_int_equal(strlen(pre), RILL_H1_H2_PREFACE_LEN);
    for (size_t n = 0; n < RILL_H1_H2_PREFACE_LEN; n++)
        assert_int_equal(rill_h1_preface_check((const uint8_t *)pre, n), RILL_H1_PREFACE_PARTIAL);
    assert_int_equal(rill_h1_preface_check((const uint8_t *)pre, 24), RILL_H1_PREFACE_YES);
    uint8_t more[40];
    memcpy(more, pre, 24);
    memcpy(more + 24, "\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9); /* a SETTINGS frame follows */
    assert_int_equal(rill_h1_preface_check(more, 33), RILL_H1_PREFACE_YES);
    /* One wrong byte anywhere is a definite no, as soon as it is seen. */
    for (size_t i = 0; i < 24; i++) {
        memcpy(more, pre, 24);
        more[i] ^= 0x20;
        for (size_t n = i + 1; n <= 24; n++)
            assert_int_equal(rill_h1_preface_check(more, n), RILL_H1_PREFACE_NO);
        if (i > 0)
            assert_int_equal(rill_h1_preface_check(more, i), RILL_H1_PREFACE_PARTIAL);
    }
    assert_int_equal(rill_h1_preface_check((const uint8_t *)"GET / HTTP/1.1\r\n", 16),
                     RILL_H1_PREFACE_NO);
    assert_int_equal(rill_h1_preface_check((const uint8_t *)"P", 1), RILL_H1_PREFACE_PARTIAL);
    assert_int_equal(rill_h1_preface_check((const uint8_t *)"POST", 4), RILL_H1_PREFACE_NO);
    assert_int_equal(rill_h1_preface_check((const uint8_t *)"PRI * HTTP/1.1", 14),
                     RILL_H1_PREFACE_NO);
}

static const char h2c_request[] = "GET /index HTTP/1.1\r\nHost: server.example.com\r\n"
                                  "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                  "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";

static void h2c_upgrade_is_recognised(void **state)
{
    (void)state;
    rill_h1_parser *p;
    const rill_h1_head *h = parse_head(h2c_request, &p);
    assert_true(h->upgrade);
    assert_true(h->connection_upgrade);
    uint8_t settings[64];
    size_t n = 99;
    assert_int_equal(rill_h1_h2c_upgrade(h, settings, sizeof settings, &n), 1);
    static const uint8_t want[] = {0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(settings, want, sizeof want);
    assert_int_equal(rill_h1_h2c_upgrade(h, settings, 11, &n), RILL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(rill_h1_h2c_upgrade(h, settings, 12, &n), 1);
    rill_h1_parser_free(p);
}

static void h2c_variants(void **state)
{
    (void)state;
    static const struct {
        const char *extra; /* fields after Host */
        int want;
        size_t len;
    } cases[] = {
        {"Connection: upgrade\r\nConnection: http2-settings\r\nUpgrade: websocket, H2C\r\n"
         "HTTP2-Settings: AAMAAABkAAQAAP_-AAIAAAAA\r\n", 1, 18},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n", 1, 6},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAA==\r\n",
         0, 0}, /* 7 bytes: not whole settings */
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n", 0, 0},
        {"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n", 0, 0},
        {"Connection: HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2\r\nHTTP2-Settings: AAMAAABk\r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n"
         "HTTP2-Settings: AAMAAABk\r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAAB+\r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA AABk\r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABl\r\n", 1, 6},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk=\r\n", 0, 0},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP_-AAIAAAAB\r\n",
         1, 18},
        {"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP_\r\n",
         0, 0}, /* non-canonical trailing bits / 11 bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[512];
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", cases[i].extra);
        rill_h1_parser *p;
        const rill_h1_head *h = parse_head(req, &p);
        uint8_t settings[64];
        size_t n = 77;
        int r = rill_h1_h2c_upgrade(h, settings, sizeof settings, &n);
        if (r != cases[i].want)
            fail_msg("case %zu: got %d", i, r);
        assert_int_equal(n, cases[i].len);
        rill_h1_parser_free(p);
    }
    /* HTTP/1.0 cannot upgrade to h2c. */
    rill_h1_parser *p;
    const rill_h1_head *h =
        parse_head("GET / HTTP/1.0\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                   "HTTP2-Settings: AAMAAABk\r\n\r\n", &p);
    uint8_t settings[16];
    size_t n;
    assert_int_equal(rill_h1_h2c_upgrade(h, settings, sizeof settings, &n), 0);
    rill_h1_parser_free(p);
}

static const char ws_request[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                                 "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Origin: http://example.com\r\n"
                                 "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                 "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";

static void websocket_upgrade_is_recognised(void **state)
{
    (void)state;
    rill_h1_parser *p;
    const rill_h1_head *h = parse_head(ws_request, &p);
    rill_h1_ws_upgrade ws;
    assert_int_equal(rill_h1_websocket_upgrade(h, &ws), 1);
    assert_int_equal(ws.key_len, 24);
    assert_memory_equal(ws.key, "dGhlIHNhbXBsZSBub25jZQ==", 24);
    assert_int_equal(ws.protocols_len, strlen("chat, superchat"));
    assert_memory_equal(ws.protocols, "chat, superchat", ws.protocols_len);
    assert_memory_equal(ws.extensions, "permessage-deflate", ws.extensions_len);
    char accept[29];
    assert_int_equal(rill_h1_websocket_accept(ws.key, ws.key_len, accept), 0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
    rill_h1_parser_free(p);
}

static void websocket_variants(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n", 1},
        {"POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n", RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL}, /* 17 bytes */
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAB==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL}, /* non-canonical: stray bits after the 16th byte */
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAA-==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         RILL_ERR_PROTOCOL}, /* base64url alphabet is not the key's */
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n", RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n", RILL_ERR_PROTOCOL},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         RILL_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rill_h1_parser *p;
        const rill_h1_head *h = parse_head(cases[i].req, &p);
        rill_h1_ws_upgrade ws;
        int r = rill_h1_websocket_upgrade(h, &ws);
        if (r != cases[i].want)
            fail_msg("case %zu: got %d", i, r);
        if (r == 1) {
            assert_null(ws.protocols);
            assert_null(ws.extensions);
        }
        rill_h1_parser_free(p);
    }
    char out[29];
    assert_int_equal(rill_h1_websocket_accept("x", 65, out), RILL_ERR_INVALID_ARG);
}

static const rill_h1_head *parse_response(const char *resp, rill_h1_parser **pp)
{
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    rill_h1_event ev;
    size_t used;
    assert_int_equal(rill_h1_parse(p, (const uint8_t *)resp, strlen(resp), &used, &ev), 0);
    assert_int_equal(ev.type, RILL_H1_EV_HEAD);
    *pp = p;
    return ev.head;
}

static void websocket_client_checks_the_answer(void **state)
{
    (void)state;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    static const struct {
        const char *resp;
        bool ok;
    } cases[] = {
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", true},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n\r\n", true},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n", false},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", false},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", false},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", false},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rill_h1_parser *p;
        const rill_h1_head *h = parse_response(cases[i].resp, &p);
        if (rill_h1_websocket_response_ok(h, key, strlen(key)) != cases[i].ok)
            fail_msg("case %zu", i);
        rill_h1_parser_free(p);
    }
}

static void canned_responses_parse(void **state)
{
    (void)state;
    rill_h1_parser *p;
    const rill_h1_head *h = parse_response(RILL_H1_CONTINUE_RESPONSE, &p);
    assert_int_equal(h->status, 100);
    rill_h1_parser_free(p);
    h = parse_response(RILL_H1_H2C_SWITCHING_RESPONSE, &p);
    assert_int_equal(h->status, 101);
    assert_true(rill_h1_head_has_token(h, "upgrade", "h2c"));
    rill_h1_parser_free(p);
    /* Every error answer is a complete, closing response with the mapped status. */
    for (int e = RILL_H1_E_BAD_START_LINE; e <= RILL_H1_E_INCOMPLETE; e++) {
        uint8_t out[128];
        size_t n;
        assert_int_equal(rill_h1_write_error_response(out, sizeof out, &n, (rill_h1_error)e), 0);
        char text[129];
        memcpy(text, out, n);
        text[n] = '\0';
        h = parse_response(text, &p);
        assert_int_equal(h->status, rill_h1_error_status((rill_h1_error)e));
        assert_false(h->keep_alive);
        assert_int_equal(h->body, RILL_H1_BODY_NONE);
        assert_true(h->reason_len > 0);
        rill_h1_parser_free(p);
    }
    uint8_t out[8];
    size_t n;
    assert_int_equal(rill_h1_write_error_response(out, sizeof out, &n, RILL_H1_E_NONE),
                     RILL_ERR_INVALID_ARG);
}

static void connection_specific_fields_are_identified(void **state)
{
    (void)state;
    rill_h1_parser *p;
    const rill_h1_head *h = parse_head(
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings, X-Hop\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nKeep-Alive: 5\r\nX-Hop: 1\r\nTE: trailers\r\n"
        "Accept: */*\r\nProxy-Connection: x\r\nX-Hopper: 2\r\n\r\n", &p);
    static const char *const dropped[] = {"Connection", "Upgrade", "HTTP2-Settings", "Keep-Alive",
                                          "X-Hop", "Proxy-Connection"};
    static const char *const kept[] = {"Host", "TE", "Accept", "X-Hopper"};
    size_t ndropped = 0;
    for (size_t i = 0; i < h->nfields; i++) {
        const rill_header *f = &h->fields[i];
        bool is = rill_h1_is_connection_specific(h, f);
        bool want = false;
        for (size_t d = 0; d < sizeof dropped / sizeof *dropped; d++)
            want |= rill_h1_name_eq((const char *)f->name, f->name_len, dropped[d]);
        for (size_t k = 0; k < sizeof kept / sizeof *kept; k++)
            assert_false(want && rill_h1_name_eq((const char *)f->name, f->name_len, kept[k]));
        if (is != want)
            fail_msg("field %zu (%.*s)", i, (int)f->name_len, (const char *)f->name);
        ndropped += is;
    }
    assert_int_equal(ndropped, 6);
    rill_h1_parser_free(p);
    h = parse_head("GET / HTTP/1.1\r\nHost: h\r\nTE: gzip, trailers\r\n\r\n", &p);
    assert_true(rill_h1_is_connection_specific(h, &h->fields[1]));
    rill_h1_parser_free(p);
}

static void token_lists(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        const char *token;
        bool want;
    } cases[] = {
        {"close", "close", true},
        {"Close", "close", true},
        {" keep-alive ,\tCLOSE\t", "close", true},
        {",,close,,", "close", true},
        {"closed", "close", false},
        {"xclose", "close", false},
        {"close;x=1", "close", false},
        {"", "close", false},
        {",", "close", false},
        {"upgrade, http2-settings", "http2-settings", true},
        {"upgrade, http2-settings", "http2", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (rill_h1_list_has_token(cases[i].list, strlen(cases[i].list), cases[i].token) !=
            cases[i].want)
            fail_msg("case %zu", i);
    assert_true(rill_h1_name_eq("Content-LENGTH", 14, "content-length"));
    assert_false(rill_h1_name_eq("Content-Length", 14, "content-lengt"));
    assert_false(rill_h1_name_eq("Content-Lengtx", 14, "content-length"));
}

static void field_lookup_walks_every_occurrence(void **state)
{
    (void)state;
    rill_h1_parser *p;
    const rill_h1_head *h = parse_head("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX: 1\r\n"
                                       "accept: b\r\nACCEPT: c\r\n\r\n", &p);
    size_t pos = 0;
    const rill_header *f;
    char seen[4] = {0};
    int n = 0;
    while ((f = rill_h1_find_field(h->fields, h->nfields, "Accept", &pos)))
        seen[n++] = (char)f->value[0];
    assert_int_equal(n, 3);
    assert_memory_equal(seen, "abc", 3);
    assert_int_equal(pos, h->nfields);
    assert_null(rill_h1_find_field(h->fields, h->nfields, "Missing", NULL));
    assert_non_null(rill_h1_find_field(h->fields, h->nfields, "x", NULL));
    assert_true(rill_h1_head_has_token(h, "accept", "c"));
    assert_false(rill_h1_head_has_token(h, "accept", "d"));
    rill_h1_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(preface_detection),
        cmocka_unit_test(h2c_upgrade_is_recognised),
        cmocka_unit_test(h2c_variants),
        cmocka_unit_test(websocket_upgrade_is_recognised),
        cmocka_unit_test(websocket_variants),
        cmocka_unit_test(websocket_client_checks_the_answer),
        cmocka_unit_test(canned_responses_parse),
        cmocka_unit_test(connection_specific_fields_are_identified),
        cmocka_unit_test(token_lists),
        cmocka_unit_test(field_lookup_walks_every_occurrence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
