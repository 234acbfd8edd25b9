/* The shared error convention: every code has its own description, all codes are negative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rill/common.h"

static void every_error_code_is_described_distinctly(void **state)
{
    (void)state;
    const char *seen[64] = {0};
    for (int code = RILL_OK; code >= RILL_ERR_CANCELLED; code--) {
        const char *text = rill_strerror(code);
        assert_non_null(text);
        assert_string_not_equal(text, "unknown error");
        for (int prev = 0; prev < -code; prev++)
            assert_string_not_equal(text, seen[prev]);
        seen[-code] = text;
    }
}

static void unknown_codes_say_so(void **state)
{
    (void)state;
    assert_string_equal(rill_strerror(1), "unknown error");
    assert_string_equal(rill_strerror(RILL_ERR_CANCELLED - 1), "unknown error");
}

static void version_matches_macros(void **state)
{
    (void)state;
    assert_string_equal(rill_version(), RILL_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_error_code_is_described_distinctly),
        cmocka_unit_test(unknown_codes_say_so),
        cmocka_unit_test(version_matches_macros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
