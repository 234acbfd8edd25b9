/* A fork() in another thread while the server closes a connection (a CGI, system(), a
 * sanitizer's symbolizer): the child holds a copy of the socket, so closing it does not take it
 * out of epoll, and an event on it must not reach the freed connection. Found by
 * fuzz_server_conn; the sanitizer build (make test runs the unit tests under ASan) sees the
 * use-after-free, and every build sees the server stop answering if the loop dies. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rill/server.h"

static rill_server *srv;

static void *run_server(void *arg)
{
    (void)arg;
    char err[256];
    rill_server_run(srv, err, sizeof err);
    return NULL;
}

/* A request on a fresh adopted connection; returns the bytes of the answer (up to cap). */
static ssize_t ask(int *client, const char *request, char *answer, size_t cap)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(rill_server_adopt(srv, sv[1]), 0);
    assert_int_equal(write(sv[0], request, strlen(request)), (ssize_t)strlen(request));
    *client = sv[0];
    return read(sv[0], answer, cap);
}

static void closing_while_a_child_holds_the_socket(void **state)
{
    (void)state;
    rill_server_options o;
    rill_server_options_init(&o);
    o.listen = "127.0.0.1:0";
    o.tls_listen = NULL;
    o.threads = 1;
    char err[256];
    assert_int_equal(rill_server_new(&o, &srv, err, sizeof err), 0);
    assert_int_equal(rill_server_demo(srv), 0);
    assert_int_equal(rill_server_bind(srv, err, sizeof err), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_server, NULL), 0);

    int client;
    char answer[4096];
    ssize_t n = ask(&client, "GET /api/stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    answer, sizeof answer);
    assert_true(n > 12 && memcmp(answer, "HTTP/1.1 200", 12) == 0);

    pid_t child = fork(); /* inherits the server's end of the socket too */
    assert_true(child >= 0);
    if (child == 0) {
        usleep(500000);
        _exit(0);
    }
    /* The server lingers after its answer, discarding these bytes; past its limit it closes at
     * once, and our close afterwards is an event on the child's copy of its socket. */
    static char junk[64 * 1024];
    for (int i = 0; i < 8; i++)
        if (write(client, junk, sizeof junk) < 0)
            break;
    usleep(100000);
    close(client);
    usleep(100000);

    n = ask(&client, "GET /api/stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", answer,
            sizeof answer);
    assert_true(n > 12 && memcmp(answer, "HTTP/1.1 200", 12) == 0); /* still serving */
    close(client);
    waitpid(child, NULL, 0);
    rill_server_stop(srv);
    pthread_join(thread, NULL);
    rill_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closing_while_a_child_holds_the_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
