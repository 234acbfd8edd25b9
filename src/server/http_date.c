#include "server/http_date.h"

#include <stdio.h>
#include <string.h>

static const char weekdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

size_t rill_http_date_format(time_t t, char out[RILL_HTTP_DATE_LEN + 1])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char wide[64]; /* room for any int the compiler imagines; real dates use 29 bytes */
    snprintf(wide, sizeof wide, "%s, %02d %s %04d %02d:%02d:%02d GMT", weekdays[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, wide, RILL_HTTP_DATE_LEN);
    out[RILL_HTTP_DATE_LEN] = '\0';
    return RILL_HTTP_DATE_LEN;
}

/* Reads exactly n digits. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (*(*p)++ - '0');
    }
    *out = v;
    return true;
}

static bool literal(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

static bool month(const char **p, const char *end, int *out)
{
    for (int m = 0; m < 12; m++)
        if (literal(p, end, months[m])) {
            *out = m;
            return true;
        }
    return false;
}

static bool clock_time(const char **p, const char *end, struct tm *tm)
{
    return digits(p, end, 2, &tm->tm_hour) && literal(p, end, ":") &&
           digits(p, end, 2, &tm->tm_min) && literal(p, end, ":") &&
           digits(p, end, 2, &tm->tm_sec);
}

static bool valid_fields(const struct tm *tm)
{
    return tm->tm_mday >= 1 && tm->tm_mday <= 31 && tm->tm_hour <= 23 && tm->tm_min <= 59 &&
           tm->tm_sec <= 60;
}

bool rill_http_date_parse(const char *s, size_t len, time_t *out)
{
    const char *p = s, *end = s + len;
    struct tm tm = {0};
    const char *comma = memchr(s, ',', len);
    int year = 0;
    if (comma && comma - s == 3) { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        p = comma + 1;
        if (!(literal(&p, end, " ") && digits(&p, end, 2, &tm.tm_mday) && literal(&p, end, " ") &&
              month(&p, end, &tm.tm_mon) && literal(&p, end, " ") && digits(&p, end, 4, &year) &&
              literal(&p, end, " ") && clock_time(&p, end, &tm) && literal(&p, end, " GMT")))
            return false;
    } else if (comma) { /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        p = comma + 1;
        if (!(literal(&p, end, " ") && digits(&p, end, 2, &tm.tm_mday) && literal(&p, end, "-") &&
              month(&p, end, &tm.tm_mon) && literal(&p, end, "-") && digits(&p, end, 2, &year) &&
              literal(&p, end, " ") && clock_time(&p, end, &tm) && literal(&p, end, " GMT")))
            return false;
        /* Two-digit years: RFC 9110 says interpret as within 50 years of now; 70-99 -> 19xx. */
        year += year >= 70 ? 1900 : 2000;
    } else { /* asctime: Sun Nov  6 08:49:37 1994 */
        if (len < 4)
            return false;
        p = s + 4;
        if (!month(&p, end, &tm.tm_mon) || !literal(&p, end, " "))
            return false;
        if (p < end && *p == ' ') {
            p++;
            if (!digits(&p, end, 1, &tm.tm_mday))
                return false;
        } else if (!digits(&p, end, 2, &tm.tm_mday)) {
            return false;
        }
        if (!(literal(&p, end, " ") && clock_time(&p, end, &tm) && literal(&p, end, " ") &&
              digits(&p, end, 4, &year)))
            return false;
    }
    if (p != end || !valid_fields(&tm))
        return false;
    tm.tm_year = year - 1900;
    *out = timegm(&tm);
    return true;
}
