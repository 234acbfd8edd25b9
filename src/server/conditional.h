/* Validators and conditional requests (RFC 9110 §8.8, §13). */
#ifndef RILL_SERVER_CONDITIONAL_H
#define RILL_SERVER_CONDITIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct rill_span {
    const char *ptr; /* NULL when the field is absent */
    size_t len;
};

struct rill_validators {
    const char *etag; /* a strong entity-tag including its quotes, e.g. "\"5f3a-1c\"" */
    size_t etag_len;
    time_t last_modified;
};

struct rill_conditions {
    struct rill_span if_match, if_none_match, if_modified_since, if_unmodified_since, if_range;
    bool get_or_head;
};

enum rill_precondition {
    RILL_PRECONDITION_PROCEED,
    RILL_PRECONDITION_NOT_MODIFIED, /* 304 */
    RILL_PRECONDITION_FAILED,       /* 412 */
};

#define RILL_ETAG_MAX 48

/* A strong ETag for a file from its size and modification time (seconds and nanoseconds);
 * writes a NUL-terminated value into out, returns its length. */
size_t rill_etag_for_file(uint64_t size, int64_t mtime_sec, long mtime_nsec, char out[RILL_ETAG_MAX]);

/* Evaluates the preconditions in the order of RFC 9110 §13.2.2. */
enum rill_precondition rill_evaluate_preconditions(const struct rill_conditions *c,
                                                   const struct rill_validators *v);

/* If-Range (RFC 9110 §13.1.5): true when the Range may be honoured (field absent, or its
 * validator matches strongly). */
bool rill_if_range_allows(struct rill_span if_range, const struct rill_validators *v);

#endif
