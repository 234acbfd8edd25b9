/* The proxy's configuration file loader (src/proxy/proxy_config.c): a full file read into its
 * spec, and the same file cut at every byte, which must load or fail with one "FILE:LINE: ..."
 * line, never crash or leak (the ASan build runs this too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/proxy_spec.h"
#include "rill/common.h"

static const char full[] = "# every key once\n"
                           "listen: 127.0.0.1:8080\n"
                           "tls-listen: none\n"
                           "threads: 2\n"
                           "access-log: '-'\n"
                           "proxy:\n"
                           "  insecure: false\n"
                           "  timeout: {connect: 2s, first-byte: 1500ms, idle: 1m, half-close: 2m}\n"
                           "  forwarding:\n"
                           "    forwarded: off\n"
                           "  request-headers:\n"
                           "    set: {x-env: prod}\n"
                           "  health-check: {path: /healthz?full=1, interval: 500ms, fails: 4}\n"
                           "routes:\n"
                           "  - prefix: /api\n"
                           "    backends:\n"
                           "      - http://10.0.0.5:8080\n"
                           "      - h2c://[::1]:9000\n"
                           "    balance: least-connections\n"
                           "    health: {down-for: 250}\n"
                           "    timeout:\n"
                           "      first-byte: 5s\n"
                           "      half-close: 0\n"
                           "    request-headers:\n"
                           "      add: {X-Tag: a}\n"
                           "      remove: [x-debug]\n"
                           "    response-headers:\n"
                           "      remove: [server]\n"
                           "  - prefix: /\n"
                           "    backends: https://origin.example\n"
                           "    forwarding: {via: no, x-forwarded-host: false}\n"
                           "    health-check: none\n";

static char path[64];

static int write_file(const char *text, size_t len)
{
    strcpy(path, "/tmp/rill-proxy-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static void full_file_is_read(void **state)
{
    (void)state;
    assert_int_equal(write_file(full, strlen(full)), 0);
    struct proxy_spec *spec;
    char err[512] = "";
    int rc = proxy_config_load(path, &spec, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, RILL_OK);
    assert_string_equal(spec->serve.listen, "127.0.0.1:8080");
    assert_string_equal(spec->serve.tls_listen, "none");
    assert_int_equal(spec->serve.threads, 2);
    assert_string_equal(spec->serve.access_log, "-");
    assert_int_equal(spec->defaults.connect_ms, 2000);
    assert_int_equal(spec->defaults.first_byte_ms, 1500);
    assert_int_equal(spec->defaults.idle_ms, 60000);
    assert_int_equal(spec->defaults.half_close_ms, 120000);
    assert_false(spec->defaults.forwarded);
    assert_true(spec->defaults.given & SET_FORWARDED);
    assert_false(spec->defaults.given & SET_XFF);
    assert_int_equal(spec->defaults.request.nset, 1);
    assert_int_equal(spec->nroutes, 2);
    struct route_spec *api = &spec->routes[0], *root = &spec->routes[1];
    assert_string_equal(api->prefix, "/api");
    assert_int_equal(api->line, 15);
    assert_int_equal(api->nurls, 2);
    assert_string_equal(api->urls[1], "h2c://[::1]:9000");
    assert_int_equal(api->settings.balance, BALANCE_LEAST_CONNECTIONS);
    assert_int_equal(api->settings.down_ms, 250);
    assert_int_equal(api->settings.first_byte_ms, 5000);
    assert_true(api->settings.given & SET_HALF_CLOSE);
    assert_int_equal(api->settings.half_close_ms, 0); /* none: the tunnel may wait for ever */
    assert_false(api->settings.given & SET_CONNECT);
    assert_string_equal(api->settings.request.add[0].name, "x-tag"); /* names go lowercase */
    assert_string_equal(api->settings.request.add[0].value, "a");
    assert_string_equal(api->settings.request.remove[0].name, "x-debug");
    assert_string_equal(api->settings.response.remove[0].name, "server");
    assert_int_equal(root->nurls, 1);
    assert_false(root->settings.via);
    assert_false(root->settings.x_forwarded_host);
    /* health-check: the defaults for what is not given; none turns the inherited one off */
    assert_true(spec->defaults.given & SET_HEALTH_CHECK);
    assert_string_equal(spec->defaults.check.path, "/healthz?full=1");
    assert_int_equal(spec->defaults.check.interval_ms, 500);
    assert_int_equal(spec->defaults.check.timeout_ms, 1000);
    assert_int_equal(spec->defaults.check.fails, 4);
    assert_int_equal(spec->defaults.check.passes, 2);
    assert_false(api->settings.given & SET_HEALTH_CHECK);
    assert_true(root->settings.given & SET_HEALTH_CHECK);
    assert_null(root->settings.check.path);
    /* inheritance: a route takes what it does not set */
    route_settings_inherit(&api->settings, &spec->defaults);
    assert_int_equal(api->settings.connect_ms, 2000);
    assert_int_equal(api->settings.first_byte_ms, 5000);
    assert_ptr_equal(api->settings.check.path, spec->defaults.check.path); /* the spec's */
    assert_int_equal(api->settings.half_close_ms, 0);
    route_settings_inherit(&root->settings, &spec->defaults);
    assert_null(root->settings.check.path);
    assert_int_equal(root->settings.half_close_ms, 120000);
    api->settings.check.path = NULL; /* freed with the defaults */
    proxy_spec_free(spec);
}

/* Every prefix of the file: loads, or fails with "FILE:LINE: ..." on a line the cut reaches. */
static void file_cut_at_every_byte(void **state)
{
    (void)state;
    size_t len = strlen(full), ok = 0, bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        assert_int_equal(write_file(full, cut), 0);
        struct proxy_spec *spec = NULL;
        char err[512] = "";
        int rc = proxy_config_load(path, &spec, err, sizeof err);
        unlink(path);
        if (rc == RILL_OK) {
            assert_non_null(spec);
            proxy_spec_free(spec);
            ok++;
            continue;
        }
        bad++;
        assert_int_equal(rc, RILL_ERR_INVALID_ARG);
        assert_null(spec);
        size_t plen = strlen(path);
        assert_memory_equal(err, path, plen);
        assert_int_equal(err[plen], ':');
        char *end;
        long line = strtol(err + plen + 1, &end, 10);
        size_t lines = 1;
        for (size_t i = 0; i < cut; i++)
            lines += full[i] == '\n';
        assert_true(line >= 1 && (size_t)line <= lines + 1);
        assert_memory_equal(end, ": ", 2);
        assert_null(strchr(err, '\n'));
    }
    assert_true(ok > 0 && bad > 0);
}

static void missing_file_is_an_io_error(void **state)
{
    (void)state;
    struct proxy_spec *spec;
    char err[512] = "";
    assert_int_equal(proxy_config_load("/nonexistent/rill.yaml", &spec, err, sizeof err),
                     RILL_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/rill.yaml"));
}

/* The example in docs/PROXY.md is a file the loader takes. */
static void documented_example_loads(void **state)
{
    (void)state;
    const char *source = getenv("RILL_SOURCE");
    if (!source)
        skip();
    char doc[512];
    snprintf(doc, sizeof doc, "%s/docs/PROXY.md", source);
    FILE *f = fopen(doc, "rb");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *start = strstr(text, "```yaml\n");
    assert_non_null(start);
    start += 8;
    char *end = strstr(start, "```");
    assert_non_null(end);
    assert_int_equal(write_file(start, (size_t)(end - start)), 0);
    struct proxy_spec *spec;
    char err[512] = "";
    int rc = proxy_config_load(path, &spec, err, sizeof err);
    unlink(path);
    assert_string_equal(err, "");
    assert_int_equal(rc, RILL_OK);
    assert_int_equal(spec->nroutes, 2);
    assert_int_equal(spec->routes[0].nurls, 2);
    proxy_spec_free(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_file_is_read),
        cmocka_unit_test(file_cut_at_every_byte),
        cmocka_unit_test(missing_file_is_an_io_error),
        cmocka_unit_test(documented_example_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
