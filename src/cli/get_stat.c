/* `rill get --stat`: one line per request on stderr with when its steps happened. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli/get.h"

double get_now_ms(void)
{
    static struct timespec t0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (!t0.tv_sec && !t0.tv_nsec)
        t0 = ts;
    return (double)(ts.tv_sec - t0.tv_sec) * 1e3 + (double)(ts.tv_nsec - t0.tv_nsec) / 1e6;
}

static const char *ms(double v, char *buf, size_t cap)
{
    if (v < 0)
        return "-";
    snprintf(buf, cap, "%.3f", v);
    return buf;
}

void get_stat_print(const char *method, const char *url, int status, const char *proto,
                    uint64_t bytes, const struct get_stat *st)
{
    char a[32], b[32], c[32], d[32], e[32];
    fprintf(stderr, "stat: %s %s status=%d proto=%s bytes=%" PRIu64
            " start=%s dns=%s connect=%s first=%s end=%s\n",
            method, url, status, proto ? proto : "-", bytes, ms(st->start, a, sizeof a),
            ms(st->dns, b, sizeof b), ms(st->connect, c, sizeof c), ms(st->first, d, sizeof d),
            ms(st->end, e, sizeof e));
}
