/* HTTP/1.1 request-head parse rate of rill's parser (no peer: the h1 layer has no counterpart in
 * the linked libraries). Three shapes: a small curl-like GET, a browser-like GET with cookies
 * (~900 bytes), and 16 pipelined browser requests per feed. Prints requests/s and MB/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rill/h1.h"

static const char small_get[] = "GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\n"
                                "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

static const char browser_get[] =
    "GET /static/js/app.3f9a2c.js?v=1042 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"119\", \"Not?A_Brand\";v=\"24\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Safari/537.36\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Accept: */*\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Dest: script\r\n"
    "Referer: https://www.example.com/products/widgets?page=2&sort=price\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n"
    "Cookie: session=6f1c2b7e9a4d4f0e8b1c3d5e7f9a1b2c; theme=dark; consent=yes; "
    "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000\r\n"
    "If-None-Match: \"5f2a-19c8a3b4d2e\"\r\n"
    "If-Modified-Since: Tue, 14 Nov 2023 10:00:00 GMT\r\n\r\n";

/* CPU time of this process: the machine may be shared, and the loop is single-threaded. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses buf (holding `per_feed` requests) repeatedly for about `seconds`. */
static void bench(const char *name, const char *buf, size_t len, int per_feed, double seconds)
{
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    long requests = 0, rounds = 0;
    size_t fields = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < seconds) {
        for (int rep = 0; rep < 1000; rep++) {
            const uint8_t *d = (const uint8_t *)buf;
            size_t left = len;
            for (;;) {
                rill_h1_event ev;
                size_t used;
                if (rill_h1_parse(p, d, left, &used, &ev) != 0) {
                    fprintf(stderr, "%s: parse error %s\n", name,
                            rill_h1_error_text(rill_h1_parser_error(p)));
                    exit(1);
                }
                d += used;
                left -= used;
                if (ev.type == RILL_H1_EV_HEAD)
                    fields += ev.head->nfields;
                else if (ev.type == RILL_H1_EV_END)
                    requests++;
                else if (ev.type == RILL_H1_EV_NONE)
                    break;
            }
        }
        rounds += 1000;
        elapsed = now_s() - start;
    }
    if (requests != rounds * per_feed || fields == 0) {
        fprintf(stderr, "%s: %ld requests parsed, expected %ld\n", name, requests,
                rounds * per_feed);
        exit(1);
    }
    printf("  %-26s %6zu B/req  %10.0f req/s  %8.1f MB/s\n", name, len / (size_t)per_feed,
           (double)requests / elapsed, (double)rounds * (double)len / elapsed / 1e6);
    rill_h1_parser_free(p);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    printf("rill HTTP/1.1 request-head parsing (one core)\n");
    bench("small GET", small_get, sizeof small_get - 1, 1, seconds);
    bench("browser GET", browser_get, sizeof browser_get - 1, 1, seconds);
    enum { PIPELINE = 16 };
    size_t one = sizeof browser_get - 1;
    char *many = malloc(one * PIPELINE);
    for (int i = 0; i < PIPELINE; i++)
        memcpy(many + (size_t)i * one, browser_get, one);
    bench("16 pipelined browser GETs", many, one * PIPELINE, PIPELINE, seconds);
    free(many);
    return 0;
}
