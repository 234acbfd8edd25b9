/* Range requests (RFC 9110 §14): one byte range out of a Range header field. */
#ifndef RILL_SERVER_RANGE_H
#define RILL_SERVER_RANGE_H

#include <stddef.h>
#include <stdint.h>

enum rill_range_result {
    RILL_RANGE_IGNORE,        /* absent, invalid, other unit, or not one span: send the whole 200 */
    RILL_RANGE_SATISFIABLE,   /* 206 with *out */
    RILL_RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes * / size */
};

struct rill_byte_range {
    uint64_t first;
    uint64_t length;
};

/* At most this many range-specs are looked at; more is treated as abuse and ignored. */
#define RILL_RANGE_MAX_SPECS 16

/* Evaluates a Range value against a representation of `size` bytes. Several ranges that merge
 * into one contiguous span are served as that span; otherwise the header is ignored (a server
 * may always ignore Range), which spares us multipart/byteranges. */
enum rill_range_result rill_range_parse(const char *value, size_t len, uint64_t size,
                                        struct rill_byte_range *out);

#endif
