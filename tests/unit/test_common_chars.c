/* The shared byte helpers that replace per-byte loops on the request path, checked against their
 * plain definitions: every byte value at every position of short strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes_hash.h"
#include "common/http_chars.h"
#include "common/small_copy.h"

static void lower_copy_folds_ascii_only(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 24; len++)
        for (size_t at = 0; at < (len ? len : 1); at++)
            for (unsigned c = 0; c < 256; c++) {
                uint8_t src[24], dst[24 + 1], want[24];
                for (size_t i = 0; i < len; i++)
                    src[i] = (uint8_t)("Content-Type-X-Forwarded"[i]);
                if (len)
                    src[at] = (uint8_t)c;
                for (size_t i = 0; i < len; i++)
                    want[i] = src[i] >= 'A' && src[i] <= 'Z' ? (uint8_t)(src[i] + 32) : src[i];
                dst[len] = 0xaa;
                lower_copy(dst, src, len);
                assert_memory_equal(dst, want, len);
                assert_int_equal(dst[len], 0xaa); /* nothing written past the end */
            }
}

static void lower_eq_lit_matches_the_plain_comparison(void **state)
{
    (void)state;
    static const char lit[] = "content-type-x-forwarded"; /* lowercase, as its callers' */
    for (size_t len = 0; len <= 24; len++)
        for (size_t at = 0; at < (len ? len : 1); at++)
            for (unsigned c = 0; c < 256; c++) {
                uint8_t s[24];
                memcpy(s, "Content-Type-X-Forwarded", len);
                if (len)
                    s[at] = (uint8_t)c;
                bool want = true;
                for (size_t i = 0; i < len; i++) {
                    uint8_t low = s[i] >= 'A' && s[i] <= 'Z' ? (uint8_t)(s[i] + 32) : s[i];
                    want &= low == (uint8_t)lit[i];
                }
                assert_int_equal(lower_eq_lit(s, lit, len), want);
            }
}

static void value_ctl_span_finds_the_first_control(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 40; len++)
        for (size_t at = 0; at < len; at++)
            for (unsigned c = 0; c < 256; c++) {
                char v[40];
                memset(v, 'a', len);
                v[at] = (char)c;
                bool ctl = (c < 0x20 && c != '\t') || c == 0x7f;
                assert_int_equal(http_value_ctl_span(v, len), ctl ? at : len);
            }
}

static void bytes_hash_sees_every_byte(void **state)
{
    (void)state;
    for (size_t len = 1; len <= 24; len++) {
        uint8_t s[24];
        memset(s, 'x', len);
        uint32_t h = bytes_hash32(s, len, 1);
        for (size_t at = 0; at < len; at++) {
            s[at] = 'y';
            assert_true(bytes_hash32(s, len, 1) != h);
            s[at] = 'x';
        }
        assert_int_equal(bytes_hash32(s, len, 1), h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lower_copy_folds_ascii_only),
        cmocka_unit_test(lower_eq_lit_matches_the_plain_comparison),
        cmocka_unit_test(value_ctl_span_finds_the_first_control),
        cmocka_unit_test(bytes_hash_sees_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
