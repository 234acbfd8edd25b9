/* rill — shared definitions for every public header: export macro, error codes, version.
 *
 * Error convention: every fallible function returns int, 0 (RILL_OK) on success or a negative
 * RILL_ERR_* code. errno is never the error channel; where a system call fails, the I/O layer maps
 * it to RILL_ERR_IO (or a more specific code) and keeps the errno for logging only. */
#ifndef RILL_COMMON_H
#define RILL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RILL_BUILDING_LIBRARY) && defined(__GNUC__)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

#define RILL_VERSION_MAJOR 0
#define RILL_VERSION_MINOR 1
#define RILL_VERSION_PATCH 0
#define RILL_VERSION_STRING "0.1.0"

enum rill_error {
    RILL_OK = 0,
    RILL_ERR_NOMEM = -1,             /* an allocation failed */
    RILL_ERR_INVALID_ARG = -2,       /* the caller passed something the API forbids */
    RILL_ERR_PROTOCOL = -3,          /* the peer broke the protocol */
    RILL_ERR_COMPRESSION = -4,       /* HPACK state is unusable: HTTP/2 COMPRESSION_ERROR */
    RILL_ERR_HEADER_LIST_TOO_LARGE = -5, /* over a header-list limit; state still consistent */
    RILL_ERR_FLOW_CONTROL = -6,      /* a flow-control window was violated */
    RILL_ERR_FRAME_SIZE = -7,        /* a frame exceeds the negotiated size */
    RILL_ERR_STREAM_CLOSED = -8,     /* the stream is closed or was reset */
    RILL_ERR_STATE = -9,             /* the call is not valid in the object's current state */
    RILL_ERR_WOULD_BLOCK = -10,      /* nothing can be done now; retry when ready */
    RILL_ERR_BUFFER_TOO_SMALL = -11, /* the output buffer cannot hold the result */
    RILL_ERR_LIMIT = -12,            /* a configured resource limit was hit */
    RILL_ERR_IO = -13,               /* a system call failed */
    RILL_ERR_TLS = -14,              /* the TLS layer failed */
    RILL_ERR_EOF = -15,              /* the peer closed the connection */
    RILL_ERR_NOT_FOUND = -16,        /* a looked-up item does not exist */
    RILL_ERR_TIMEOUT = -17,          /* a deadline passed */
    RILL_ERR_UTF8 = -18,             /* text is not valid UTF-8 */
    RILL_ERR_TOO_BIG = -19,          /* a message exceeds its size limit */
    RILL_ERR_REFUSED = -20,          /* the peer or the policy refused the request */
    RILL_ERR_UNSUPPORTED = -21,      /* a feature the peer asked for is not supported */
    RILL_ERR_CANCELLED = -22,        /* the caller cancelled the operation */
};

/* One header field, the same type in every module (HPACK, HTTP/2, HTTP/1.1, the server): name and
 * value are spans (not NUL-terminated unless a function says so) of bytes the caller or the
 * producing module owns. */
typedef struct rill_header {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
    uint32_t flags; /* RILL_HEADER_* (HPACK indexing); 0 where it does not apply (HTTP/1.1) */
} rill_header;

/* rill_header.flags */
#define RILL_HEADER_NEVER_INDEX 0x01u /* sensitive: decoded from / encode as never-indexed */
#define RILL_HEADER_NO_INDEX 0x02u    /* encoder hint: literal without indexing */
/* The field is known valid for HTTP/2 (a lowercase token name, or ':' and one; a value without
 * NUL, CR or LF and without leading or trailing SP/HTAB): set by a sender that vouches for it, or
 * by the HPACK decoder for fields it has already checked (rill_hpack_decoder_mark_valid_fields);
 * the HTTP/2 engine then skips its per-byte check of the field. */
#define RILL_HEADER_VALID 0x04u

/* A static, human-readable description of a RILL_ERR_* code; never NULL. */
RILL_API const char *rill_strerror(int err);

/* The library's version string, e.g. "0.1.0"; static storage. */
RILL_API const char *rill_version(void);

#ifdef __cplusplus
}
#endif
#endif
