#include "server/access_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct writer {
    char *p, *end; /* end leaves room for the NUL */
};

static void put_raw(struct writer *w, const char *s, size_t n)
{
    size_t room = (size_t)(w->end - w->p);
    if (n > room)
        n = room;
    memcpy(w->p, s, n);
    w->p += n;
}

/* Escapes one field; reserve keeps space for what must follow on the line. */
static void put_escaped(struct writer *w, const char *s, size_t n, size_t reserve)
{
    static const char hex[] = "0123456789abcdef";
    if (!s || n == 0) {
        put_raw(w, "-", 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((size_t)(w->end - w->p) < reserve + 4)
            break;
        if (c == '"' || c == '\\') {
            *w->p++ = '\\';
            *w->p++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            *w->p++ = '\\';
            *w->p++ = 'x';
            *w->p++ = hex[c >> 4];
            *w->p++ = hex[c & 15];
        } else {
            *w->p++ = (char)c;
        }
    }
}

size_t rill_access_log_format(char *out, size_t cap, const struct rill_access_log_entry *e)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct writer w = {out, out + cap - 1};
    struct tm tm;
    gmtime_r(&e->when, &tm);
    char head[160];
    int n = snprintf(head, sizeof head, "%.64s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"",
                     e->remote_addr ? e->remote_addr : "-", tm.tm_mday, months[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    put_raw(&w, head, (size_t)n);
    /* the tail after the request line needs at most ~40 bytes plus the two quoted fields */
    char mid[64];
    if (e->raw_line) {
        put_escaped(&w, e->raw_line, e->raw_line_len, 160);
        n = snprintf(mid, sizeof mid, "\" %d %" PRIu64 " \"", e->status, e->body_bytes);
    } else {
        put_escaped(&w, e->method, e->method_len, 200);
        put_raw(&w, " ", 1);
        put_escaped(&w, e->target, e->target_len, 160);
        n = snprintf(mid, sizeof mid, " %.16s\" %d %" PRIu64 " \"",
                     e->protocol ? e->protocol : "-", e->status, e->body_bytes);
    }
    put_raw(&w, mid, (size_t)n);
    put_escaped(&w, e->referer, e->referer_len, 90);
    put_raw(&w, "\" \"", 3);
    put_escaped(&w, e->user_agent, e->user_agent_len, e->note ? 160 : 3);
    put_raw(&w, "\"", 1);
    if (e->note) {
        put_raw(&w, " \"", 2);
        put_escaped(&w, e->note, e->note_len, 3);
        put_raw(&w, "\"", 1);
    }
    put_raw(&w, "\n", 1);
    *w.p = '\0';
    return (size_t)(w.p - out);
}

void rill_access_log_write(int fd, const struct rill_access_log_entry *e)
{
    char line[2048];
    size_t n = rill_access_log_format(line, sizeof line, e);
    if (write(fd, line, n) < 0) {
        /* nowhere to report a failing log */
    }
}
