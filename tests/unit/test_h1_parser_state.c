/* What a caller may ask the HTTP/1.1 parser between reads: whether it is between messages (the
 * server frees an idle parser, so a half-read head must never look idle), and what arrived of the
 * request line (for logging a refused request). Every cut point of each input is tried. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rill/h1.h"

/* Feeds data[0..len) and drains events; returns the number of END events, or -1 on error. */
static int feed(rill_h1_parser *p, const char *data, size_t len)
{
    int ends = 0;
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        rill_h1_event ev;
        if (rill_h1_parse(p, (const uint8_t *)data + off, len - off, &used, &ev) < 0)
            return -1;
        off += used;
        if (ev.type == RILL_H1_EV_END)
            ends++;
        if (ev.type == RILL_H1_EV_NONE && off == len)
            return ends;
    }
}

static void idle_only_between_messages_at_every_cut(void **state)
{
    (void)state;
    static const char *inputs[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        const char *in = inputs[i];
        size_t len = strlen(in);
        for (size_t cut = 0; cut <= len; cut++) {
            rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
            assert_non_null(p);
            assert_true(rill_h1_parser_idle(p));
            int ends = feed(p, in, cut);
            assert_true(ends >= 0);
            /* idle exactly when nothing but empty lines, or a whole message, has been read */
            size_t skipped = strspn(in, "\r\n");
            bool idle_expected = cut <= skipped ? cut % 2 == 0 /* a lone CR begins a line */
                                                : ends == 1;
            assert_int_equal(rill_h1_parser_idle(p), idle_expected);
            assert_int_equal(feed(p, in + cut, len - cut) + ends, 1);
            assert_true(rill_h1_parser_idle(p));
            rill_h1_parser_free(p);
        }
    }
}

static void start_line_as_far_as_it_arrived(void **state)
{
    (void)state;
    static const char in[] = "GET /index.html HTTP/1.1\r\nHost: a\r\n";
    for (size_t cut = 0; cut < sizeof in - 1; cut++) {
        rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
        assert_int_equal(feed(p, in, cut), 0);
        size_t n = 0;
        const char *line = rill_h1_parser_start_line(p, &n);
        size_t want = cut < 24 ? cut : 24; /* the line is 24 bytes without its CRLF */
        assert_int_equal(n, want);
        assert_memory_equal(line, in, n);
        rill_h1_parser_free(p);
    }
}

static void start_line_of_a_refused_request(void **state)
{
    (void)state;
    static const struct {
        const char *in, *line;
    } cases[] = {
        {"BAD LINE\r\n\r\n", "BAD LINE"},
        {"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET /x HTTP/1.1"},
        {"\r\nGET /y HTTP/1.1\r\nBad Field\r\n\r\n", "GET /y HTTP/1.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
        assert_int_equal(feed(p, cases[i].in, strlen(cases[i].in)), -1);
        size_t n = 0;
        const char *line = rill_h1_parser_start_line(p, &n);
        assert_int_equal(n, strlen(cases[i].line));
        assert_memory_equal(line, cases[i].line, n);
        rill_h1_parser_free(p);
    }
}

static void start_line_empty_after_a_whole_message(void **state)
{
    (void)state;
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    assert_int_equal(feed(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27), 1);
    size_t n = 99;
    rill_h1_parser_start_line(p, &n);
    assert_int_equal(n, 0);
    rill_h1_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_only_between_messages_at_every_cut),
        cmocka_unit_test(start_line_as_far_as_it_arrived),
        cmocka_unit_test(start_line_of_a_refused_request),
        cmocka_unit_test(start_line_empty_after_a_whole_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
