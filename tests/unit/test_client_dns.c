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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_name_from_the_hosts_file),
        cmocka_unit_test(localhost_resolves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
