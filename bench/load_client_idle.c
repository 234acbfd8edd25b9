/* Client memory per idle connection: N rill_clients, one per origin (127.0.0.1 ... 127.0.0.N on
 * one port, so one server answers them all), each makes one HTTP/2 (h2c) request; once every
 * answer is in and the connections have idled past their trim (the connection layer gives back
 * buffers 200 ms after the last activity), the process's RSS is read. Prints RSS before and after
 * and the difference per connection. Used by bench/client_bench.py.
 *
 * usage: load_client_idle PORT N PATH
 * LOAD_CLIENT_IDLE_HEAP=1 also prints malloc's bytes in use; LOAD_CLIENT_IDLE_PAUSE=1 waits 3 s at
 * the idle point (for a heap profiler's snapshot: vgdb detailed_snapshot under massif). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill/client.h"
#include "rill/io.h"

static int pending, failed;

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    (void)st, (void)user;
    if (err) {
        failed++;
        fprintf(stderr, "load_client_idle: %s\n", why);
    }
    pending--;
}

static void stop(rill_io_timer *t, void *loop)
{
    (void)t;
    rill_io_loop_stop(loop);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: load_client_idle PORT N PATH\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    if (port <= 0 || n <= 0 || n > 250) {
        fprintf(stderr, "load_client_idle: PORT > 0, 0 < N <= 250\n");
        return 2;
    }
    rill_io_loop *loop;
    if (rill_io_loop_new(NULL, &loop) < 0)
        return 1;
    rill_client **clients = calloc((size_t)n, sizeof *clients);
    static const rill_client_callbacks cb = {.size = sizeof cb, .on_end = on_end};
    rill_io_timer *t = rill_io_timer_new(loop, stop, loop);
    long before = rss_kib();
    for (int i = 0; i < n; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.%d:%d", i + 1, port);
        rill_client_options opt;
        rill_client_options_init(&opt);
        opt.url = url;
        opt.h2_prior_knowledge = true;
        if (rill_client_new(loop, &opt, &clients[i], NULL, 0) < 0 ||
            rill_client_request(clients[i], "GET", argv[3], NULL, 0, NULL, 0, &cb, NULL, NULL) < 0)
            return 1;
        pending++;
    }
    while (pending > 0) { /* every answer in */
        rill_io_timer_arm(t, 50);
        rill_io_loop_run(loop);
    }
    rill_io_timer_arm(t, 500); /* past the idle trim */
    rill_io_loop_run(loop);
    long held = rss_kib();
    if (getenv("LOAD_CLIENT_IDLE_PAUSE"))
        sleep(3); /* for a heap profiler's snapshot */
    if (getenv("LOAD_CLIENT_IDLE_HEAP")) {
        struct mallinfo2 m = mallinfo2();
        fprintf(stderr, "heap in use %zu (%zu per connection), mmapped %zu\n", m.uordblks, m.uordblks / (size_t)n, m.hblkhd);
    }
    malloc_trim(0); /* what the trimmed connections freed sits between live allocations */
    long after = rss_kib();
    printf("connections %d failed %d rss_before_kib %ld rss_idle_kib %ld per_connection_kib %.2f "
           "after_malloc_trim_kib %ld per_connection_trimmed_kib %.2f\n",
           n, failed, before, held, (double)(held - before) / n, after, (double)(after - before) / n);
    for (int i = 0; i < n; i++)
        rill_client_free(clients[i]);
    free(clients);
    rill_io_timer_free(t);
    rill_io_loop_free(loop);
    return failed ? 1 : 0;
}
