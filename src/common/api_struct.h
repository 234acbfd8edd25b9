/* Versioned public structs (docs/ARCHITECTURE.md, "Public API conventions"): every public options
 * and callbacks struct starts with `size_t size`, the sizeof the caller was compiled with. The
 * library refuses 0 (or anything too small to hold the size itself) and a size larger than its
 * own struct (a caller built against a newer library); a smaller size is an older caller, whose
 * missing tail is taken as the defaults (options) or NULL (callbacks). */
#ifndef RILL_API_STRUCT_H
#define RILL_API_STRUCT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "rill/common.h"

/* Whether a caller's struct whose leading size is `given` is acceptable to a library whose own
 * struct is `ours` bytes. */
static inline bool rill_struct_size_ok(size_t given, size_t ours)
{
    return given >= sizeof(size_t) && given <= ours;
}

/* Copies the caller's struct src (size checked first) over dst, which holds the library's defaults
 * and is `ours` bytes: the first src->size bytes come from the caller, the tail keeps the
 * defaults, and dst's size becomes ours. Returns RILL_OK or RILL_ERR_INVALID_ARG (dst unchanged). */
static inline int rill_struct_copy(void *dst, size_t ours, const void *src)
{
    size_t given;
    memcpy(&given, src, sizeof given);
    if (!rill_struct_size_ok(given, ours))
        return RILL_ERR_INVALID_ARG;
    memcpy(dst, src, given);
    memcpy(dst, &ours, sizeof ours);
    return RILL_OK;
}

/* Whether the caller's struct *p (of type `type`, with a checked size) holds `member`: false for
 * members added after the caller was built. */
#define RILL_STRUCT_HAS(p, type, member) \
    ((p)->size >= offsetof(type, member) + sizeof(((const type *)0)->member))

/* A callback member of a referenced (not copied) callbacks struct, NULL when the caller's struct
 * is older than the member. */
#define RILL_CB(p, type, member) (RILL_STRUCT_HAS(p, type, member) ? (p)->member : NULL)

#endif
