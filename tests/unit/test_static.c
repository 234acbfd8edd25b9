/* Static-file building blocks: path safety, MIME types, dates, ranges, conditional requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/conditional.h"
#include "server/http_date.h"
#include "server/mime.h"
#include "server/range.h"
#include "server/static_files.h"

#define S(str) (str), strlen(str)
#define SPAN(str) ((struct rill_span){(str), strlen(str)})

static void normalizes(const char *target, const char *want, bool want_slash)
{
    char out[RILL_STATIC_PATH_MAX];
    bool slash;
    assert_int_equal(rill_static_normalize(S(target), out, &slash), RILL_STATIC_OK);
    assert_string_equal(out, want);
    assert_int_equal(slash, want_slash);
}

static void refuses(const char *target, enum rill_static_status want)
{
    char out[RILL_STATIC_PATH_MAX];
    bool slash;
    assert_int_equal(rill_static_normalize(S(target), out, &slash), want);
}

static void path_normalization(void **state)
{
    (void)state;
    normalizes("/", "", true);
    normalizes("/a/b.txt", "a/b.txt", false);
    normalizes("/a//b/./c/", "a/b/c", true);
    normalizes("/a/b/../c?x=../../..", "a/c", false);
    normalizes("/a/%62%2Ec", "a/b.c", false);
    normalizes("/a/b/..", "a", false);
    normalizes("/.well-known/x", ".well-known/x", false);
    normalizes("/x#frag", "x", false);
    refuses("/..", RILL_STATIC_BAD_REQUEST);
    refuses("/a/../../etc/passwd", RILL_STATIC_BAD_REQUEST);
    refuses("/%2e%2e/etc/passwd", RILL_STATIC_BAD_REQUEST);
    refuses("/a/%00b", RILL_STATIC_BAD_REQUEST);
    refuses("/a%2", RILL_STATIC_BAD_REQUEST);
    refuses("/a%zz", RILL_STATIC_BAD_REQUEST);
    refuses("a/b", RILL_STATIC_BAD_REQUEST);
    refuses("/a\\..\\b", RILL_STATIC_BAD_REQUEST);
    refuses("/.git/config", RILL_STATIC_FORBIDDEN);
    refuses("/a/.env", RILL_STATIC_FORBIDDEN);
}

static char tmp_root[64];

static void write_file(const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int make_tree(void **state)
{
    (void)state;
    strcpy(tmp_root, "/tmp/rill-static-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    char path[256];
    snprintf(path, sizeof path, "%s/root", tmp_root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/root/dir", tmp_root);
    mkdir(path, 0755);
    write_file("root/index.html", "<h1>home</h1>");
    write_file("root/dir/index.html", "dir index");
    write_file("root/app.js", "console.log(1)");
    write_file("root/app.js.gz", "gzipped");
    write_file("root/app.js.br", "brotli");
    write_file("secret.txt", "outside the root");
    snprintf(path, sizeof path, "%s/root/escape", tmp_root);
    if (symlink("../secret.txt", path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/root/inside", tmp_root);
    if (symlink("app.js", path) != 0)
        return -1;
    return 0;
}

static int remove_tree(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

static enum rill_static_status open_target(const char *target, const char *ae, struct rill_static_file *f,
                                           char *content, size_t cap)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/root", tmp_root);
    int err = 0;
    rill_static_root *root = rill_static_root_open(dir, &err);
    assert_non_null(root);
    enum rill_static_status st = rill_static_open(root, S(target), ae, ae ? strlen(ae) : 0, f);
    if (st == RILL_STATIC_OK) {
        ssize_t n = read(f->fd, content, cap - 1);
        assert_true(n >= 0);
        content[n] = '\0';
        assert_int_equal((uint64_t)n, f->size);
        close(f->fd);
    }
    rill_static_root_close(root);
    return st;
}

static void files_below_the_root(void **state)
{
    (void)state;
    struct rill_static_file f;
    char body[256];
    assert_int_equal(open_target("/", NULL, &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "<h1>home</h1>");
    assert_string_equal(f.content_type, "text/html; charset=utf-8");
    assert_int_equal(open_target("/dir/", NULL, &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "dir index");
    assert_int_equal(open_target("/dir", NULL, &f, body, sizeof body), RILL_STATIC_REDIRECT_DIR);
    assert_int_equal(open_target("/missing", NULL, &f, body, sizeof body), RILL_STATIC_NOT_FOUND);
    assert_int_equal(open_target("/app.js/", NULL, &f, body, sizeof body), RILL_STATIC_NOT_FOUND);
    /* a symlink leading out of the root is refused by the kernel; one inside is fine */
    assert_int_equal(open_target("/escape", NULL, &f, body, sizeof body), RILL_STATIC_FORBIDDEN);
    assert_int_equal(open_target("/inside", NULL, &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "console.log(1)");
}

static void redirects_to(const char *prefix, const char *target, const char *want)
{
    char *loc = rill_static_redirect_location(S(prefix), S(target));
    if (!want) {
        assert_null(loc);
        return;
    }
    assert_non_null(loc);
    assert_string_equal(loc, want);
    free(loc);
}

/* The directory redirect adds a '/' to the normalised path: echoing the raw target would turn
 * "//host/.." into "//host/../", which a browser follows to another host. */
static void directory_redirect_stays_on_this_server(void **state)
{
    (void)state;
    struct rill_static_file f;
    char body[256];
    assert_int_equal(open_target("//evil.example/..", NULL, &f, body, sizeof body), RILL_STATIC_REDIRECT_DIR);
    assert_int_equal(open_target("//dir", NULL, &f, body, sizeof body), RILL_STATIC_REDIRECT_DIR);
    assert_int_equal(open_target("//dir//", NULL, &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "dir index");
    redirects_to("", "/dir", "/dir/");
    redirects_to("", "/dir?x=1&y=/", "/dir/?x=1&y=/");
    redirects_to("", "//evil.example/..", "/");
    redirects_to("", "//evil.example/..?q", "/?q");
    redirects_to("", "//sub", "/sub/");
    redirects_to("", "///sub//x", "/sub/x/");
    redirects_to("", "/%2F%2Fevil.example", "/evil.example/");
    redirects_to("", "/./", "/");
    redirects_to("", "/a%20b/%3Fc%23d%25", "/a%20b/%3Fc%23d%25/");
    redirects_to("", "/caf%C3%A9", "/caf%C3%A9/");
    redirects_to("", "/!$&'()*+,;=:@-._~", "/!$&'()*+,;=:@-._~/");
    redirects_to("/static", "//evil", "/static/evil/");
    redirects_to("/static", "/", "/static/");
    /* what the file lookup refuses has no location either */
    redirects_to("", "/\\evil.example", NULL);
    redirects_to("", "/%5Cevil.example", NULL);
    redirects_to("", "/..", NULL);
    redirects_to("", "evil.example", NULL);
}

static void precompressed_siblings(void **state)
{
    (void)state;
    struct rill_static_file f;
    char body[256];
    assert_int_equal(open_target("/app.js", "gzip, deflate, br", &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "brotli");
    assert_string_equal(f.content_encoding, "br");
    assert_string_equal(f.content_type, "text/javascript; charset=utf-8");
    assert_true(f.has_encoded_variants);
    assert_int_equal(open_target("/app.js", "gzip, br;q=0", &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "gzipped");
    assert_string_equal(f.content_encoding, "gzip");
    assert_int_equal(open_target("/app.js", NULL, &f, body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "console.log(1)");
    assert_null(f.content_encoding);
    assert_true(f.has_encoded_variants);
    assert_int_equal(open_target("/index.html", "br", &f, body, sizeof body), RILL_STATIC_OK);
    assert_false(f.has_encoded_variants);
}

static void accept_encoding_q_values(void **state)
{
    (void)state;
    assert_true(rill_accept_encoding_allows(S("gzip"), "gzip"));
    assert_true(rill_accept_encoding_allows(S("GZIP;q=0.5"), "gzip"));
    assert_false(rill_accept_encoding_allows(S("gzip;q=0"), "gzip"));
    assert_false(rill_accept_encoding_allows(S("gzip; q=0.000"), "gzip"));
    assert_true(rill_accept_encoding_allows(S("*"), "br"));
    assert_false(rill_accept_encoding_allows(S("*, br;q=0"), "br"));
    assert_false(rill_accept_encoding_allows(S("gzip, deflate"), "br"));
    assert_false(rill_accept_encoding_allows(NULL, 0, "br"));
}

static void mime_types(void **state)
{
    (void)state;
    assert_string_equal(rill_mime_type("a/b/c.CSS"), "text/css; charset=utf-8");
    assert_string_equal(rill_mime_type("x.woff2"), "font/woff2");
    assert_string_equal(rill_mime_type("x.tar.gz"), "application/gzip");
    assert_string_equal(rill_mime_type("noext"), "application/octet-stream");
    assert_string_equal(rill_mime_type("dir.d/noext"), "application/octet-stream");
    assert_string_equal(rill_mime_type("x."), "application/octet-stream");
}

static void http_dates(void **state)
{
    (void)state;
    time_t t;
    char buf[RILL_HTTP_DATE_LEN + 1];
    assert_true(rill_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), &t));
    assert_int_equal(t, 784111777);
    assert_true(rill_http_date_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), &t));
    assert_int_equal(t, 784111777);
    assert_true(rill_http_date_parse(S("Sun Nov  6 08:49:37 1994"), &t));
    assert_int_equal(t, 784111777);
    assert_int_equal(rill_http_date_format(784111777, buf), RILL_HTTP_DATE_LEN);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_false(rill_http_date_parse(S("Sun, 06 Nov 1994 08:49:37"), &t));
    assert_false(rill_http_date_parse(S("Sun, 06 Nov 1994 25:49:37 GMT"), &t));
    assert_false(rill_http_date_parse(S("yesterday"), &t));
    assert_false(rill_http_date_parse(S(""), &t));
}

static void range(const char *v, uint64_t size, enum rill_range_result want, uint64_t first, uint64_t len)
{
    struct rill_byte_range r = {0, 0};
    assert_int_equal(rill_range_parse(S(v), size, &r), want);
    if (want == RILL_RANGE_SATISFIABLE) {
        assert_int_equal(r.first, first);
        assert_int_equal(r.length, len);
    }
}

static void byte_ranges(void **state)
{
    (void)state;
    range("bytes=0-499", 10000, RILL_RANGE_SATISFIABLE, 0, 500);
    range("bytes=500-999", 10000, RILL_RANGE_SATISFIABLE, 500, 500);
    range("bytes=-500", 10000, RILL_RANGE_SATISFIABLE, 9500, 500);
    range("bytes=9500-", 10000, RILL_RANGE_SATISFIABLE, 9500, 500);
    range("bytes=0-0,-1", 1, RILL_RANGE_SATISFIABLE, 0, 1);
    range("bytes=0-99999", 100, RILL_RANGE_SATISFIABLE, 0, 100);
    range("bytes=-1000", 100, RILL_RANGE_SATISFIABLE, 0, 100);
    range("BYTES=0-9, 10-19", 100, RILL_RANGE_SATISFIABLE, 0, 20);
    range("bytes=5-9,0-4", 100, RILL_RANGE_SATISFIABLE, 0, 10);
    range("bytes=0-4,10-14", 100, RILL_RANGE_IGNORE, 0, 0); /* a gap: whole body */
    range("bytes=100-", 100, RILL_RANGE_UNSATISFIABLE, 0, 0);
    range("bytes=-0", 100, RILL_RANGE_UNSATISFIABLE, 0, 0);
    range("bytes=0-", 0, RILL_RANGE_UNSATISFIABLE, 0, 0);
    range("bytes=200-300, 100-", 100, RILL_RANGE_UNSATISFIABLE, 0, 0);
    range("bytes=200-300, 50-", 100, RILL_RANGE_SATISFIABLE, 50, 50);
    range("bytes=5-4", 100, RILL_RANGE_IGNORE, 0, 0);
    range("bytes=a-b", 100, RILL_RANGE_IGNORE, 0, 0);
    range("items=0-5", 100, RILL_RANGE_IGNORE, 0, 0);
    range("bytes=", 100, RILL_RANGE_IGNORE, 0, 0);
    range("bytes=0-1 x", 100, RILL_RANGE_IGNORE, 0, 0);
    range("bytes=99999999999999999999-", 100, RILL_RANGE_IGNORE, 0, 0);
    range("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,15-15,16-16",
          100, RILL_RANGE_IGNORE, 0, 0);
}

static void preconditions(void **state)
{
    (void)state;
    struct rill_validators v = {.etag = "\"abc\"", .etag_len = 5, .last_modified = 784111777};
    struct rill_conditions c = {.get_or_head = true};
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_PROCEED);
    c.if_none_match = SPAN("\"x\", W/\"abc\"");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_NOT_MODIFIED);
    c.if_none_match = SPAN("*");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_NOT_MODIFIED);
    c.get_or_head = false;
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_FAILED);
    c = (struct rill_conditions){.get_or_head = true};
    c.if_none_match = SPAN("\"other\"");
    /* If-None-Match present: If-Modified-Since is not looked at */
    c.if_modified_since = SPAN("Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_PROCEED);
    c.if_none_match = (struct rill_span){0};
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_NOT_MODIFIED);
    c.if_modified_since = SPAN("Sun, 06 Nov 1994 08:49:36 GMT");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_PROCEED);
    c.if_modified_since = SPAN("garbage");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_PROCEED);
    c = (struct rill_conditions){.get_or_head = true};
    c.if_match = SPAN("W/\"abc\""); /* If-Match compares strongly */
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_FAILED);
    c.if_match = SPAN("\"abc\"");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_PROCEED);
    c = (struct rill_conditions){.get_or_head = true};
    c.if_unmodified_since = SPAN("Sun, 06 Nov 1994 08:49:36 GMT");
    assert_int_equal(rill_evaluate_preconditions(&c, &v), RILL_PRECONDITION_FAILED);

    assert_true(rill_if_range_allows((struct rill_span){0}, &v));
    assert_true(rill_if_range_allows(SPAN("\"abc\""), &v));
    assert_false(rill_if_range_allows(SPAN("W/\"abc\""), &v));
    assert_false(rill_if_range_allows(SPAN("\"abd\""), &v));
    assert_true(rill_if_range_allows(SPAN("Sun, 06 Nov 1994 08:49:37 GMT"), &v));
    assert_false(rill_if_range_allows(SPAN("Sun, 06 Nov 1994 08:49:38 GMT"), &v));
}

static void etags_change_with_content(void **state)
{
    (void)state;
    char a[RILL_ETAG_MAX], b[RILL_ETAG_MAX], c[RILL_ETAG_MAX];
    rill_etag_for_file(100, 784111777, 5, a);
    rill_etag_for_file(101, 784111777, 5, b);
    rill_etag_for_file(100, 784111777, 6, c);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(a[0], '"');
    assert_int_equal(a[strlen(a) - 1], '"');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_normalization),
        cmocka_unit_test_setup_teardown(files_below_the_root, make_tree, remove_tree),
        cmocka_unit_test_setup_teardown(directory_redirect_stays_on_this_server, make_tree, remove_tree),
        cmocka_unit_test_setup_teardown(precompressed_siblings, make_tree, remove_tree),
        cmocka_unit_test(accept_encoding_q_values),
        cmocka_unit_test(mime_types),
        cmocka_unit_test(http_dates),
        cmocka_unit_test(byte_ranges),
        cmocka_unit_test(preconditions),
        cmocka_unit_test(etags_change_with_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
