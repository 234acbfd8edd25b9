/* Server utilities: access-log lines and the embedded demo site. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/access_log.h"
#include "server/demo_assets.h"

#define S(str) (str), strlen(str)

static void combined_log_line(void **state)
{
    (void)state;
    struct rill_access_log_entry e = {
        .remote_addr = "127.0.0.1", .when = 784111777, .method = S("GET"), .target = S("/x?y=1"),
        .protocol = "HTTP/2", .status = 200, .body_bytes = 5, .user_agent = S("curl/7.88.1"),
    };
    char line[512];
    size_t n = rill_access_log_format(line, sizeof line, &e);
    assert_string_equal(line, "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /x?y=1 HTTP/2\" "
                              "200 5 \"-\" \"curl/7.88.1\"\n");
    assert_int_equal(n, strlen(line));
}

static void hostile_fields_are_escaped(void **state)
{
    (void)state;
    struct rill_access_log_entry e = {
        .remote_addr = "::1", .when = 0, .method = S("CONNECT"), .target = S("/ws/echo"),
        .protocol = "HTTP/2", .status = 200, .referer = S("a\"b\\c"),
        .user_agent = S("evil\n127.0.0.1 - - fake\x01\xff"),
    };
    char line[512];
    rill_access_log_format(line, sizeof line, &e);
    assert_non_null(strstr(line, "\"CONNECT /ws/echo HTTP/2\""));
    assert_non_null(strstr(line, "\"a\\\"b\\\\c\""));
    assert_non_null(strstr(line, "evil\\x0a127.0.0.1 - - fake\\x01\\xff"));
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* exactly one line */
}

static void long_fields_are_truncated_not_overflowed(void **state)
{
    (void)state;
    char big[8192];
    memset(big, 'A', sizeof big);
    struct rill_access_log_entry e = {
        .remote_addr = "127.0.0.1", .method = S("GET"), .target = big, .target_len = sizeof big,
        .protocol = "HTTP/1.1", .status = 414, .user_agent = big, .user_agent_len = sizeof big,
    };
    char line[300];
    memset(line, 0x55, sizeof line);
    size_t n = rill_access_log_format(line, 256, &e);
    assert_true(n < 256);
    assert_int_equal(line[n], '\0');
    assert_int_equal(line[n - 1], '\n');
    assert_non_null(strstr(line, " 414 0 "));
    assert_int_equal((unsigned char)line[256], 0x55);
}

static void handler_note_is_a_last_quoted_field(void **state)
{
    (void)state;
    struct rill_access_log_entry e = {
        .remote_addr = "127.0.0.1", .when = 784111777, .method = S("GET"), .target = S("/api"),
        .protocol = "HTTP/1.1", .status = 502, .body_bytes = 3, .user_agent = S("curl/7.88.1"),
        .note = S("backend=http://10.0.0.5:8080 ttfb_ms=-"),
    };
    char line[512];
    rill_access_log_format(line, sizeof line, &e);
    assert_string_equal(line, "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /api HTTP/1.1\" "
                              "502 3 \"-\" \"curl/7.88.1\" \"backend=http://10.0.0.5:8080 ttfb_ms=-\"\n");
    /* escaped like the others, and cut rather than overflowing, the line still whole */
    char big[4096];
    memset(big, 'B', sizeof big);
    big[10] = '\n';
    big[11] = '"';
    e.note = big;
    e.note_len = sizeof big;
    e.user_agent = big;
    e.user_agent_len = sizeof big;
    size_t n = rill_access_log_format(line, 300, &e);
    assert_true(n < 300);
    assert_int_equal(line[n - 1], '\n');
    assert_ptr_equal(strchr(line, '\n'), line + n - 1);
    assert_non_null(strstr(line, "BBBBBBBBBB\\x0a\\\"BBB"));
}

static void demo_site_is_embedded(void **state)
{
    (void)state;
    const struct rill_demo_asset *a = rill_demo_asset_find(S("/"));
    assert_non_null(a);
    assert_string_equal(a->name, "index.html");
    assert_true(a->size > 100);
    assert_non_null(strstr((const char *)a->data, "{{PROTOCOL}}"));
    assert_ptr_equal(rill_demo_asset_find(S("/index.html?x")), a);
    assert_null(rill_demo_asset_find(S("/nope.html")));
    assert_null(rill_demo_asset_find(S("index.html")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(combined_log_line),
        cmocka_unit_test(hostile_fields_are_escaped),
        cmocka_unit_test(long_fields_are_truncated_not_overflowed),
        cmocka_unit_test(handler_note_is_a_last_quoted_field),
        cmocka_unit_test(demo_site_is_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
