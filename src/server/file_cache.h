/* A per-thread cache of opened static files, so a hot file costs no filesystem calls: an entry
 * is trusted for FILE_CACHE_TTL_MS, then looked up again (changes show within that time, as with
 * nginx's open_file_cache). Small files are kept in memory; larger ones keep their descriptor
 * open, shared by the exchanges sending them (reference counted). Bounded in entries (LRU). */
#ifndef RILL_SERVER_FILE_CACHE_H
#define RILL_SERVER_FILE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "server/conditional.h"
#include "server/http_date.h"
#include "server/static_files.h"

#define FILE_CACHE_TTL_MS 1000
#define FILE_CACHE_MAX_ENTRIES 1024
#define FILE_CACHE_SMALL_FILE (64u * 1024)

struct file_entry {
    enum rill_static_status status;
    struct rill_static_file file; /* file.fd is -1 when content holds the whole file */
    uint8_t *content;
    char etag[RILL_ETAG_MAX];
    size_t etag_len;
    char last_modified[RILL_HTTP_DATE_LEN + 1];
    uint64_t serial; /* unique per entry in the process (never 0): names its 200 response's fields */
    /* cache bookkeeping */
    unsigned refs;
    bool evicted;
    uint64_t expires_ms;
    uint64_t hash;
    char *key;
    size_t key_len;
    struct file_entry *hnext, *lru_prev, *lru_next;
};

/* Looks up (or opens and caches) target under root for the given Accept-Encoding: target_len
 * bytes, the request path without its query (the request checks refused any fragment). The entry is
 * returned with a reference the caller gives back with file_entry_release(). NULL only when out
 * of memory. */
struct file_entry *file_cache_get(const rill_static_root *root, const char *target,
                                  size_t target_len, const char *accept_encoding, size_t ae_len,
                                  uint64_t now_ms);
void file_entry_release(struct file_entry *e);

/* Frees this thread's cache (entries still referenced are freed when released). */
void file_cache_clear(void);

#endif
