/* The client's name resolution (c-ares on the loop): a name from a hosts file, localhost, and
 * every address of a name tried in turn. The hosts file is the test's own ($CARES_HOSTS, read
 * because the test sets client_dns_env_hosts), so no system file changes and no DNS server is
 * asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "client/client_dns.h"
#include "rill/client.h"
#include "test_io_util.h"

/* ---- a one-answer HTTP/1.1 server on 127.0.0.1 ------------------------------------------------ */

struct once {
    int lfd;
    uint16_t port;
    pthread_t thread;
};

static void *once_run(void *arg)
{
    struct once *s = arg;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return NULL;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    set_timeouts(fd, 10000);
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n")) {
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            send(fd, ok, sizeof ok - 1, MSG_NOSIGNAL);
            break;
        }
    }
    close(fd);
    return NULL;
}

static void once_start(struct once *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, once_run, s);
}

static void once_stop(struct once *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* Writes text to a fresh hosts file and points c-ares at it. */
static void use_hosts(const char *text)
{
    static char path[] = "/tmp/rill-hosts-XXXXXX";
    static int fd = -1;
    if (fd < 0)
        fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    setenv("CARES_HOSTS", path, 1);
    client_dns_env_hosts = true;
}

static int fetch(const char *host, uint16_t port, rill_client_result *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%u/", host, port);
    rill_client_options co;
    rill_client_options_init(&co);
    co.connect_timeout_ms = 5000;
    rill_client_fetch_options fo;
    rill_client_fetch_options_init(&fo);
    fo.client = &co;
    return rill_client_fetch(url, &fo, r);
}

/* ---- tests ------------------------------------------------------------------------------------- */

static void a_name_from_the_hosts_file(void **state)
{
    (void)state;
    use_hosts("127.0.0.1 rill-one.invalid\n");
    struct once s;
    once_start(&s);
    rill_client_result r;
    assert_int_equal(fetch("rill-one.invalid", s.port, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "ok");
    rill_client_result_free(&r);
    once_stop(&s);
}

static void localhost_resolves(void **state)
{
    (void)state;
    client_dns_env_hosts = false; /* the system's /etc/hosts */
    struct once s;
    once_start(&s);
    rill_client_result r;
    assert_int_equal(fetch("localhost", s.port, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    rill_client_result_free(&r);
    once_stop(&s);
}

/* ---- every address in turn --------------------------------------------------------------------- */

struct run {
    rill_io_loop *loop;
    int err;
    int status;
    char trace[4096];
};

static void on_trace(rill_client *c, const char *line, void *user)
{
    struct run *r = user;
    size_t n = strlen(r->trace);
    snprintf(r->trace + n, sizeof r->trace - n, "%s\n", line);
}

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n, void *user)
{
    ((struct run *)user)->status = status;
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct run *r = user;
    r->err = err;
    rill_io_loop_stop(r->loop);
}

static const rill_client_callbacks run_cb = {
    .size = sizeof run_cb, .on_response = on_response, .on_end = on_end};

static void get(const char *host, uint16_t port, struct run *r)
{
    memset(r, 0, sizeof *r);
    r->err = -1000;
    assert_int_equal(rill_io_loop_new(NULL, &r->loop), RILL_OK);
    char url[128];
    snprintf(url, sizeof url, "http://%s:%u/", host, port);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url;
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 20000; /* bounded even if something hangs */
    rill_client *c;
    assert_int_equal(rill_client_new(r->loop, &o, &c, NULL, 0), RILL_OK);
    rill_client_set_trace(c, on_trace, r);
    assert_int_equal(rill_client_request(c, "GET", "/", NULL, 0, NULL, 0, &run_cb, r, NULL), RILL_OK);
    rill_io_loop_run(r->loop);
    rill_client_free(c);
    rill_io_loop_free(r->loop);
}

/* Nothing listens on [::1]:port (the server is IPv4 only; without IPv6 the connect fails too):
 * the client goes on to 127.0.0.1, whichever order the resolver sorted them in. */
static void every_address_in_turn(void **state)
{
    (void)state;
    struct once s;
    once_start(&s);
    const char *orders[] = {"::1 rill-two.invalid\n127.0.0.1 rill-two.invalid\n",
                            "127.0.0.2 rill-two.invalid\n127.0.0.1 rill-two.invalid\n"};
    for (size_t i = 0; i < 2; i++) {
        use_hosts(orders[i]);
        if (i == 1) { /* the server takes one connection: a second one */
            once_stop(&s);
            once_start(&s);
        }
        struct run r;
        /* 127.0.0.2 is loopback too, but the server is bound to 127.0.0.1 only: refused. */
        get("rill-two.invalid", s.port, &r);
        assert_int_equal(r.err, RILL_OK);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.trace, "resolved to 2 addresses"));
        /* With IPv6 the resolver may sort ::1 first or (no IPv6 route) last; the IPv4 pair keeps
         * the file's order, so there the refused 127.0.0.2 must have come first. */
        if (i == 1)
            assert_non_null(strstr(r.trace, "(127.0.0.2:"));
        assert_true(i == 0 || strstr(r.trace, "trying the next address"));
    }
    once_stop(&s);
}

/* Every address refuses: one error at the end, the last address's. */
static void all_addresses_refuse(void **state)
{
    (void)state;
    /* A port nothing listens on: one we bound and closed. */
    struct once s;
    s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s.lfd, (struct sockaddr *)&a, &len);
    uint16_t port = ntohs(a.sin_port);
    close(s.lfd);
    use_hosts("127.0.0.2 rill-none.invalid\n127.0.0.3 rill-none.invalid\n");
    struct run r;
    get("rill-none.invalid", port, &r);
    assert_int_equal(r.err, RILL_ERR_IO);
    assert_non_null(strstr(r.trace, "(127.0.0.2:"));
    assert_null(strstr(r.trace, "(127.0.0.3:")); /* the last one ends the request, no retry */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_name_from_the_hosts_file),
        cmocka_unit_test(localhost_resolves),
        cmocka_unit_test(every_address_in_turn),
        cmocka_unit_test(all_addresses_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
