/* HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out; IMF-fixdate, RFC 850 and asctime in. */
#ifndef RILL_SERVER_HTTP_DATE_H
#define RILL_SERVER_HTTP_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define RILL_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Writes the IMF-fixdate of t and a NUL into out; returns RILL_HTTP_DATE_LEN. */
size_t rill_http_date_format(time_t t, char out[RILL_HTTP_DATE_LEN + 1]);

/* Parses any of the three HTTP date forms; false when it is none of them. */
bool rill_http_date_parse(const char *s, size_t len, time_t *out);

#endif
