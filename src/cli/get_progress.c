/* `rill get`'s progress bar: one line on a terminal's stderr, redrawn in place ('\r') while
 * bodies go to files; its caller turns it on only when stderr is a terminal and not with -s. */
#include <inttypes.h>
#include <stdio.h>

#include "cli/get.h"

/* n bytes as "812 B", "3.4 KiB", "1.0 MiB"... */
static void human(double n, char *out, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024 && u < 4) {
        n /= 1024;
        u++;
    }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", n, unit[u]);
}

void get_progress_expect(struct get_progress *pr, int64_t length)
{
    pr->responses++;
    if (length < 0)
        pr->unknown = true;
    else
        pr->total += (uint64_t)length;
}

static void draw(struct get_progress *pr, double now)
{
    char got[32], total[32], rate[32];
    double secs = (now - pr->started) / 1e3;
    human((double)pr->got, got, sizeof got);
    human(secs > 0 ? (double)pr->got / secs : 0, rate, sizeof rate);
    if (pr->unknown || !pr->total) {
        fprintf(stderr, "\r%s  %s/s   ", got, rate);
    } else {
        uint64_t pct = pr->got >= pr->total ? 100 : pr->got * 100 / pr->total;
        char bar[31];
        size_t fill = (size_t)(pct * 30 / 100);
        for (size_t i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        human((double)pr->total, total, sizeof total);
        fprintf(stderr, "\r%3" PRIu64 "%% [%s] %s / %s  %s/s   ", pct, bar, got, total, rate);
    }
    fflush(stderr);
    pr->drawn = now;
    pr->shown = true;
}

void get_progress_data(struct get_progress *pr, size_t len)
{
    if (!pr->on)
        return;
    pr->got += len;
    double now = get_now_ms();
    if (now - pr->drawn >= 100)
        draw(pr, now);
}

void get_progress_break(struct get_progress *pr)
{
    if (pr->shown)
        fputc('\n', stderr);
    pr->shown = false;
}

void get_progress_finish(struct get_progress *pr)
{
    if (!pr->on)
        return;
    if (pr->responses)
        draw(pr, get_now_ms());
    get_progress_break(pr);
    pr->on = false;
}
