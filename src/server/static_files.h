/* Mapping request paths onto files below a document root, safely.
 *
 * The path is percent-decoded and its dot-segments resolved; anything that would leave the root
 * (a ".." above it, a symlink pointing outside) is refused, and so are hidden files (a segment
 * starting with '.', except /.well-known/). Files are opened with openat2(RESOLVE_BENEATH), so the
 * kernel enforces the root even against symlink races. */
#ifndef RILL_SERVER_STATIC_FILES_H
#define RILL_SERVER_STATIC_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RILL_STATIC_PATH_MAX 4096

typedef struct rill_static_root rill_static_root;

enum rill_static_status {
    RILL_STATIC_OK,
    RILL_STATIC_BAD_REQUEST,  /* 400: undecodable or escaping path */
    RILL_STATIC_FORBIDDEN,    /* 403: hidden file, escape by symlink, unreadable */
    RILL_STATIC_NOT_FOUND,    /* 404 */
    RILL_STATIC_REDIRECT_DIR, /* 301 to the same path with a trailing '/' */
};

struct rill_static_file {
    int fd;                     /* owned by the caller once RILL_STATIC_OK is returned: close it */
    uint64_t size;
    int64_t mtime_sec;
    long mtime_nsec;
    const char *content_type;   /* static storage */
    size_t content_type_len;
    const char *content_encoding; /* "br", "gzip" or NULL when the file is served as is */
    bool has_encoded_variants;  /* a .br or .gz sibling exists: answer with Vary: Accept-Encoding */
};

/* Opens dir as a document root. On failure returns NULL and sets *err to an errno value. */
rill_static_root *rill_static_root_open(const char *dir, int *err);
void rill_static_root_close(rill_static_root *root);

/* Resolves the request target (path with an optional ?query) and opens the file, preferring a
 * precompressed .br/.gz sibling the client accepts (accept_encoding may be NULL). */
enum rill_static_status rill_static_open(const rill_static_root *root, const char *target,
                                         size_t target_len, const char *accept_encoding,
                                         size_t accept_encoding_len, struct rill_static_file *out);

/* Percent-decodes target's path (stopping at '?' or '#'), resolves "." and "..", folds repeated
 * slashes, and writes the result relative to the root (no leading '/') into out. Sets
 * *trailing_slash when the path named a directory form. Returns RILL_STATIC_OK, or
 * RILL_STATIC_BAD_REQUEST / RILL_STATIC_FORBIDDEN. */
enum rill_static_status rill_static_normalize(const char *target, size_t len,
                                              char out[RILL_STATIC_PATH_MAX], bool *trailing_slash);

/* The Location of the directory redirect (RILL_STATIC_REDIRECT_DIR) for target below the mount
 * at prefix (without its trailing '/'; "" for the root): prefix, '/', the normalised path with
 * its bytes escaped again where a URI needs it, a trailing '/', then target's query as sent.
 * Built from the normalised path, so it always names a path on this server, never "//host" or
 * "/\host" (which browsers follow to another host). Returns a malloc'd string, or NULL when
 * target does not normalise or memory runs out. */
char *rill_static_redirect_location(const char *prefix, size_t prefix_len, const char *target,
                                    size_t target_len);

/* True when the Accept-Encoding value admits the coding (q > 0 for it or for "*"). */
bool rill_accept_encoding_allows(const char *value, size_t len, const char *coding);

#endif
