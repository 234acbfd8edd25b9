/* client_pool: many requests at once through one rill_client (rill/client.h), for the pool's
 * integration tests: N requests started together, in rounds with a pause between them (so a
 * server can close idle keep-alive connections), one of them cancelled after a while.
 *
 * usage: client_pool URL [--n N] [--rounds R] [--gap-ms MS] [--max C] [--method M] [--data STR]
 *                        [--cancel I --cancel-ms MS] [--idle-ms MS] [--stop-ms MS]
 *                        [--h2] [--http1] [--insecure]
 *   URL         the request target; "{i}" in it becomes the request's number (0, 1, ...)
 *   --n         requests per round (default 1), all started at once
 *   --rounds    rounds (default 1); each starts when the last one's requests all ended
 *   --gap-ms    the pause before each round after the first (default 0)
 *   --max       rill_client_options.max_connections (default: the client's)
 *   --method    default GET; --data sends STR as the body
 *   --cancel I  cancel request I of each round --cancel-ms after it was started
 *   --pause I   pause request I of each round at its response head; resume it once every other
 *               request of the round has ended (prints "resume I")
 *   --idle-ms   rill_client_options.idle_timeout_ms
 *   --stop-ms   stop after MS and free the client with its requests in flight (prints "stopped")
 *   --h2        h2c by prior knowledge; --http1: http1_only; --insecure: no certificate check
 * Prints one line per request as it ends:
 *   end ROUND I err=E status=S conn=C proto=P bytes=B body=FIRST_64_BYTES_HEX why=REASON
 * then "connections N" (rill_client_connections). Exit status 0 after every round, 2 for bad
 * arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/client.h"

#define MAX_N 256

struct req {
    int round, index;
    int status;
    size_t bytes;
    uint8_t head[64];
    rill_client_stream *st;
    bool ended;
};

static struct {
    rill_io_loop *loop;
    rill_client *client;
    rill_io_timer *gap_timer, *cancel_timer, *stop_timer;
    const char *url, *method, *data;
    int n, rounds, round, left;
    unsigned gap_ms, cancel_ms, stop_ms;
    int cancel, pause;
    bool paused;
    struct req reqs[MAX_N];
} g;

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                        void *user)
{
    struct req *r = user;
    r->status = status;
    if (r->index == g.pause && g.left > 1) { /* the others are still running */
        rill_client_stream_pause(st, true);
        g.paused = true;
    }
}

static void on_data(rill_client_stream *st, const uint8_t *data, size_t len, void *user)
{
    struct req *r = user;
    for (size_t i = 0; i < len && r->bytes + i < sizeof r->head; i++)
        r->head[r->bytes + i] = data[i];
    r->bytes += len;
}

static void start_round(void);

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct req *r = user;
    const char *proto = rill_client_stream_protocol(st);
    printf("end %d %d err=%d status=%d conn=%u proto=%s bytes=%zu body=", r->round, r->index, err,
           r->status, rill_client_stream_connection(st), proto ? proto : "-", r->bytes);
    for (size_t i = 0; i < r->bytes && i < sizeof r->head; i++)
        printf("%02x", r->head[i]);
    printf(" why=%s\n", why ? why : "-");
    fflush(stdout);
    r->ended = true;
    r->st = NULL;
    if (--g.left == 1 && g.paused) {
        g.paused = false;
        printf("resume %d\n", g.pause);
        fflush(stdout);
        rill_client_stream_pause(g.reqs[g.pause].st, false);
    }
    if (g.left == 0) {
        rill_io_timer_cancel(g.cancel_timer);
        if (++g.round < g.rounds)
            rill_io_timer_arm(g.gap_timer, g.gap_ms);
        else
            rill_io_loop_stop(g.loop);
    }
}

static const rill_client_callbacks callbacks = {
    .size = sizeof callbacks, .on_response = on_response, .on_data = on_data, .on_end = on_end};

/* URL with "{i}" replaced by i. */
static void target_for(int i, char *out, size_t cap)
{
    const char *mark = strstr(g.url, "{i}");
    if (!mark)
        snprintf(out, cap, "%s", g.url);
    else
        snprintf(out, cap, "%.*s%d%s", (int)(mark - g.url), g.url, i, mark + 3);
}

static void start_round(void)
{
    g.left = g.n;
    for (int i = 0; i < g.n; i++) {
        struct req *r = &g.reqs[i];
        memset(r, 0, sizeof *r);
        r->round = g.round;
        r->index = i;
        char target[2048];
        target_for(i, target, sizeof target);
        int rc = rill_client_request(g.client, g.method, target, NULL, 0, g.data,
                                     g.data ? strlen(g.data) : 0, &callbacks, r, &r->st);
        if (rc < 0) {
            fprintf(stderr, "request %d: %s\n", i, rill_strerror(rc));
            exit(1);
        }
    }
    if (g.cancel >= 0 && g.cancel < g.n)
        rill_io_timer_arm(g.cancel_timer, g.cancel_ms);
}

static void on_gap(rill_io_timer *t, void *arg)
{
    start_round();
}

static void on_stop(rill_io_timer *t, void *arg)
{
    printf("stopped\n");
    rill_io_loop_stop(g.loop);
}

static void on_cancel(rill_io_timer *t, void *arg)
{
    struct req *r = &g.reqs[g.cancel];
    if (!r->ended && r->st)
        rill_client_stream_cancel(r->st);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    rill_client_options o;
    rill_client_options_init(&o);
    g.url = argv[1];
    g.method = "GET";
    g.n = g.rounds = 1;
    g.cancel = g.pause = -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--h2")) {
            o.h2_prior_knowledge = true;
        } else if (!strcmp(a, "--http1")) {
            o.http1_only = true;
        } else if (!strcmp(a, "--insecure")) {
            o.insecure = true;
        } else if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        } else {
            i++;
            if (!strcmp(a, "--n"))
                g.n = atoi(v);
            else if (!strcmp(a, "--rounds"))
                g.rounds = atoi(v);
            else if (!strcmp(a, "--gap-ms"))
                g.gap_ms = (unsigned)atoi(v);
            else if (!strcmp(a, "--max"))
                o.max_connections = (unsigned)atoi(v);
            else if (!strcmp(a, "--method"))
                g.method = v;
            else if (!strcmp(a, "--data"))
                g.data = v;
            else if (!strcmp(a, "--cancel"))
                g.cancel = atoi(v);
            else if (!strcmp(a, "--cancel-ms"))
                g.cancel_ms = (unsigned)atoi(v);
            else if (!strcmp(a, "--pause"))
                g.pause = atoi(v);
            else if (!strcmp(a, "--idle-ms"))
                o.idle_timeout_ms = (unsigned)atoi(v);
            else if (!strcmp(a, "--stop-ms"))
                g.stop_ms = (unsigned)atoi(v);
            else {
                fprintf(stderr, "unknown option %s\n", a);
                return 2;
            }
        }
    }
    if (g.n < 1 || g.n > MAX_N || g.rounds < 1)
        return 2;
    o.url = g.url;
    char err[256];
    if (rill_io_loop_new(NULL, &g.loop) < 0 ||
        rill_client_new(g.loop, &o, &g.client, err, sizeof err) < 0) {
        fprintf(stderr, "cannot start: %s\n", err);
        return 2;
    }
    g.gap_timer = rill_io_timer_new(g.loop, on_gap, NULL);
    g.cancel_timer = rill_io_timer_new(g.loop, on_cancel, NULL);
    g.stop_timer = rill_io_timer_new(g.loop, on_stop, NULL);
    if (g.stop_ms)
        rill_io_timer_arm(g.stop_timer, g.stop_ms);
    start_round();
    rill_io_loop_run(g.loop);
    printf("connections %u\n", rill_client_connections(g.client));
    rill_client_free(g.client); /* with --stop-ms: requests in flight end without on_end */
    rill_io_timer_free(g.stop_timer);
    rill_io_timer_free(g.gap_timer);
    rill_io_timer_free(g.cancel_timer);
    rill_io_loop_free(g.loop);
    return 0;
}
