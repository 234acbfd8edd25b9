/* WebSocket handshake helpers: accept key (RFC 6455 §1.3), key validation, version, sub-protocol
 * selection and the origin allow-list. */
#include "test_ws_util.h"

static void rfc_accept_example(void **state)
{
    (void)state;
    char acc[RILL_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(rill_ws_accept_key(key, strlen(key), acc), 0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_true(rill_ws_accept_matches(key, strlen(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28));
    assert_true(rill_ws_accept_matches(key, strlen(key), " s3pPLMBiTxaQ9kYGzzhZRbK+xOo= ", 30));
    assert_false(rill_ws_accept_matches(key, strlen(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=", 28));
    assert_false(rill_ws_accept_matches(key, strlen(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xO", 26));
    /* Surrounding whitespace of the header value does not change the key. */
    const char *padded = "  dGhlIHNhbXBsZSBub25jZQ==\t";
    assert_int_equal(rill_ws_accept_key(padded, strlen(padded), acc), 0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void key_validation(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",     /* short */
        "dGhlIHNhbXBsZSBub25jZQ===",   /* long */
        "dGhlIHNhbXBsZSBub25jZQ",      /* unpadded */
        "dGhlIHNhbXBsZSBub25jZR==",    /* non-zero padding bits */
        "dGhlIHNhbXBsZSBub25j*Q==",    /* not base64 */
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "dGhlIHNhbXBsZSBub2 5jZQ==",
        "c2FtcGxlIG5vbmNlIDE3Yno=",    /* 17 bytes */
        "c2FtcGxlIG5vbmNlIDE3",        /* 15 bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(rill_ws_key_valid(bad[i], strlen(bad[i])));
        char acc[RILL_WS_ACCEPT_LEN + 1];
        assert_int_equal(rill_ws_accept_key(bad[i], strlen(bad[i]), acc), RILL_ERR_INVALID_ARG);
    }
    const char *good = "c2FtcGxlIG5vbmNlIDE3Yg=="; /* "sample nonce 17b" */
    assert_true(rill_ws_key_valid(good, strlen(good)));
    assert_false(rill_ws_key_valid(NULL, 0));
    for (int i = 0; i < 50; i++) {
        char k1[RILL_WS_KEY_LEN + 1], k2[RILL_WS_KEY_LEN + 1];
        assert_int_equal(rill_ws_make_key(k1), 0);
        assert_int_equal(rill_ws_make_key(k2), 0);
        assert_int_equal(strlen(k1), 24);
        assert_true(rill_ws_key_valid(k1, 24));
        assert_string_not_equal(k1, k2);
    }
}

static void version_check(void **state)
{
    (void)state;
    assert_true(rill_ws_version_ok("13", 2));
    assert_true(rill_ws_version_ok(" 13 ", 4));
    assert_false(rill_ws_version_ok("8", 1));
    assert_false(rill_ws_version_ok("13, 8", 5));
    assert_false(rill_ws_version_ok("130", 3));
    assert_false(rill_ws_version_ok("", 0));
    assert_false(rill_ws_version_ok(NULL, 0));
    assert_string_equal(RILL_WS_VERSION_HEADER, "Sec-WebSocket-Version: 13");
}

static void subprotocol_selection(void **state)
{
    (void)state;
    const char *supported[] = {"superchat", "chat", "v2.json"};
    const char *o = "chat, superchat";
    /* The client's order of preference wins. */
    assert_int_equal(rill_ws_select_subprotocol(o, strlen(o), supported, 3), 1);
    o = "  v1.json ,v2.json,chat";
    assert_int_equal(rill_ws_select_subprotocol(o, strlen(o), supported, 3), 2);
    o = "Chat, mqtt";
    assert_int_equal(rill_ws_select_subprotocol(o, strlen(o), supported, 3), RILL_ERR_NOT_FOUND);
    o = ",,";
    assert_int_equal(rill_ws_select_subprotocol(o, strlen(o), supported, 3), RILL_ERR_NOT_FOUND);
    o = "cha";
    assert_int_equal(rill_ws_select_subprotocol(o, strlen(o), supported, 3), RILL_ERR_NOT_FOUND);
    o = "chat";
    assert_int_equal(rill_ws_select_subprotocol(o, strlen(o), supported, 0), RILL_ERR_NOT_FOUND);
    assert_int_equal(rill_ws_select_subprotocol(NULL, 0, supported, 3), RILL_ERR_NOT_FOUND);
}

static void origin_allow_list(void **state)
{
    (void)state;
    const char *allowed[] = {"https://example.com", "http://localhost:8080"};
    const char *o = "https://example.com";
    assert_true(rill_ws_origin_allowed(o, strlen(o), allowed, 2));
    o = "HTTPS://Example.COM";
    assert_true(rill_ws_origin_allowed(o, strlen(o), allowed, 2));
    o = "https://example.com.evil.net";
    assert_false(rill_ws_origin_allowed(o, strlen(o), allowed, 2));
    o = "https://example.co";
    assert_false(rill_ws_origin_allowed(o, strlen(o), allowed, 2));
    o = "http://example.com";
    assert_false(rill_ws_origin_allowed(o, strlen(o), allowed, 2));
    o = "null";
    assert_false(rill_ws_origin_allowed(o, strlen(o), allowed, 2));
    assert_false(rill_ws_origin_allowed(NULL, 0, allowed, 2));
    const char *any[] = {"https://example.com", "*"};
    assert_true(rill_ws_origin_allowed(o, strlen(o), any, 2));
    assert_true(rill_ws_origin_allowed(NULL, 0, any, 2));
    assert_false(rill_ws_origin_allowed(o, strlen(o), NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_accept_example),
        cmocka_unit_test(key_validation),
        cmocka_unit_test(version_check),
        cmocka_unit_test(subprotocol_selection),
        cmocka_unit_test(origin_allow_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
