/* Access log lines in the combined log format:
 *   127.0.0.1 - - [23/Nov/2026:11:19:29 +0000] "GET /x HTTP/2" 200 5 "-" "curl/7.88.1"
 * and, when the handler left a note, one more quoted field:
 *   ... "curl/7.88.1" "backend=http://10.0.0.5:8080 ttfb_ms=12"
 * Request-controlled text is escaped (\" \\ and \xHH for control and non-ASCII bytes) so a client
 * cannot forge log lines. */
#ifndef RILL_SERVER_ACCESS_LOG_H
#define RILL_SERVER_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct rill_access_log_entry {
    const char *remote_addr; /* text form of the peer address */
    time_t when;
    const char *method;
    size_t method_len;
    const char *target; /* request target (path); for CONNECT without :path the authority */
    size_t target_len;
    const char *protocol; /* "HTTP/1.1", "HTTP/1.0", "HTTP/2" */
    /* A request refused before it was parsed: what arrived of its request line, logged in place
     * of method, target and protocol (NULL otherwise; empty shows as "-"). */
    const char *raw_line;
    size_t raw_line_len;
    int status;
    uint64_t body_bytes;
    const char *referer; /* NULL or the field value */
    size_t referer_len;
    const char *user_agent;
    size_t user_agent_len;
    /* The handler's note (rill_server_response_log_note), a last quoted field; NULL: none. */
    const char *note;
    size_t note_len;
};

/* Writes one line ending in '\n' into out (truncating long fields to fit, never overflowing);
 * returns the number of bytes written, excluding the terminating NUL. cap must be >= 256. */
size_t rill_access_log_format(char *out, size_t cap, const struct rill_access_log_entry *e);

/* Formats e and writes it to fd with one write(2): with O_APPEND, lines from worker threads
 * never interleave. A failing log is not reported (the request itself was answered). */
void rill_access_log_write(int fd, const struct rill_access_log_entry *e);

#endif
