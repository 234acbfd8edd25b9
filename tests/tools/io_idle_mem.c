/* io_idle_mem [N]: opens N idle cleartext connections to a loop on another thread and prints the
 * heap bytes and resident memory the loop spends per idle connection. A measuring tool, not a test:
 * "heap/conn" is what the runtime itself costs an idle connection (the protocol session comes on
 * top). */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill/io.h"

static sem_t opened;

static void on_open(rill_io_conn *conn, const char *alpn)
{
    (void)conn;
    (void)alpn;
    sem_post(&opened);
}

static const struct rill_io_conn_callbacks cb = {.size = sizeof cb, .on_open = on_open};

static void *run(void *arg)
{
    rill_io_loop_run(arg);
    return NULL;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    sem_init(&opened, 0, 0);
    rill_io_loop *loop;
    rill_io_loop_options opts = {.size = sizeof opts, .max_conns = (uint32_t)n + 10};
    struct rill_io_addr addr;
    rill_io_listener *l;
    if (rill_io_loop_new(&opts, &loop) != RILL_OK || rill_io_addr_parse("127.0.0.1:0", &addr, NULL, 0) != RILL_OK ||
        rill_io_listen(loop, &addr, NULL, &cb, NULL, &l) != RILL_OK) {
        fprintf(stderr, "io_idle_mem: setup failed\n");
        return 1;
    }
    addr = rill_io_listener_addr(l);
    pthread_t th;
    pthread_create(&th, NULL, run, loop);
    int *fds = calloc((size_t)n, sizeof *fds);
    /* Warm up: one connection, so one-off allocations are not counted. */
    int warm = socket(AF_INET, SOCK_STREAM, 0);
    connect(warm, (struct sockaddr *)&addr.ss, addr.len);
    sem_wait(&opened);
    size_t heap0 = mallinfo2().uordblks;
    long rss0 = rss_kib();
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr.ss, addr.len) != 0) {
            fprintf(stderr, "io_idle_mem: connect %d failed\n", i);
            return 1;
        }
        sem_wait(&opened);
    }
    size_t heap1 = mallinfo2().uordblks;
    long rss1 = rss_kib();
    printf("%d idle connections: heap %.1f bytes/conn, RSS %.2f KiB/conn (includes the client sockets' "
           "user-space side, which is nothing)\n",
           n, (double)(heap1 - heap0) / n, (double)(rss1 - rss0) / n);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(warm);
    rill_io_loop_stop(loop);
    pthread_join(th, NULL);
    rill_io_loop_free(loop);
    free(fds);
    return 0;
}
