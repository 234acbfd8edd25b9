#include "server/file_cache.h"

#include "common/bytes_hash.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUCKETS 2048 /* power of two, twice the entry cap */

struct file_cache {
    struct file_entry *buckets[BUCKETS];
    struct file_entry *lru_head, *lru_tail; /* head = most recently used */
    size_t count;
    bool last_known; /* last_ae..: the last Accept-Encoding value and its accepted_codings */
    char last_accepts;
    size_t last_ae_len;
    char last_ae[96];
};

static _Thread_local struct file_cache *cache;

static void entry_free(struct file_entry *e)
{
    if (e->file.fd >= 0)
        close(e->file.fd);
    free(e->content);
    free(e->key);
    free(e);
}

void file_entry_release(struct file_entry *e)
{
    if (e && --e->refs == 0 && e->evicted)
        entry_free(e);
}

static void lru_unlink(struct file_cache *c, struct file_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct file_cache *c, struct file_entry *e)
{
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void evict(struct file_cache *c, struct file_entry *e)
{
    struct file_entry **pp = &c->buckets[e->hash & (BUCKETS - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    e->evicted = true;
    if (e->refs == 0)
        entry_free(e);
}

static struct file_entry *load(const rill_static_root *root, const char *target, size_t target_len,
                               const char *ae, size_t ae_len)
{
    struct file_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    static uint64_t serials; /* shared by the workers' caches: a serial names one entry's fields */
    e->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
    e->file.fd = -1;
    e->status = rill_static_open(root, target, target_len, ae, ae_len, &e->file);
    if (e->status != RILL_STATIC_OK) {
        e->file.fd = -1;
        return e;
    }
    e->etag_len = rill_etag_for_file(e->file.size, e->file.mtime_sec, e->file.mtime_nsec, e->etag);
    rill_http_date_format((time_t)e->file.mtime_sec, e->last_modified);
    if (e->file.size <= FILE_CACHE_SMALL_FILE) {
        e->content = malloc(e->file.size ? e->file.size : 1);
        ssize_t got = e->content ? pread(e->file.fd, e->content, e->file.size, 0) : -1;
        if (got == (ssize_t)e->file.size) { /* whole file in memory: the descriptor can go */
            close(e->file.fd);
            e->file.fd = -1;
        } else {
            free(e->content);
            e->content = NULL;
        }
    }
    return e;
}

/* Which precompressed codings Accept-Encoding allows, as the key's last byte. A connection's
 * clients send the same value with every request: the last answer is kept. */
static char accepted_codings(struct file_cache *c, const char *ae, size_t ae_len)
{
    if (c->last_known && ae_len == c->last_ae_len && (ae_len == 0 || memcmp(ae, c->last_ae, ae_len) == 0))
        return c->last_accepts;
    char accepts = (char)('0' + (rill_accept_encoding_allows(ae, ae_len, "br") ? 1 : 0) +
                          (rill_accept_encoding_allows(ae, ae_len, "gzip") ? 2 : 0));
    if (ae_len <= sizeof c->last_ae) {
        if (ae_len)
            memcpy(c->last_ae, ae, ae_len);
        c->last_ae_len = ae_len;
        c->last_accepts = accepts;
        c->last_known = true;
    }
    return accepts;
}

struct file_entry *file_cache_get(const rill_static_root *root, const char *target,
                                  size_t target_len, const char *ae, size_t ae_len, uint64_t now_ms)
{
    if (!cache && !(cache = calloc(1, sizeof *cache)))
        return NULL;
    struct file_cache *c = cache;
    size_t path_len = target_len;
    /* The key: root, path, and which precompressed codings the client accepts. (An unseeded hash:
     * the table holds at most the entry cap, and only files that exist.) */
    char accepts = accepted_codings(c, ae, ae_len);
    uint64_t h = bytes_hash32((const uint8_t *)target, path_len,
                              ((uint64_t)(uintptr_t)root << 8 | (uint8_t)accepts) * 0x9e3779b97f4a7c15ull);
    struct file_entry *e = c->buckets[h & (BUCKETS - 1)];
    for (; e; e = e->hnext)
        if (e->hash == h && e->key_len == path_len + 1 + sizeof root &&
            memcmp(e->key, &root, sizeof root) == 0 &&
            memcmp(e->key + sizeof root, target, path_len) == 0 &&
            e->key[sizeof root + path_len] == accepts)
            break;
    if (e && now_ms < e->expires_ms) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        e->refs++;
        return e;
    }
    if (e)
        evict(c, e);
    e = load(root, target, path_len, ae, ae_len);
    if (!e)
        return NULL;
    e->key_len = path_len + 1 + sizeof root;
    e->key = malloc(e->key_len);
    if (!e->key) { /* serve it once, uncached */
        e->evicted = true;
        e->refs = 1;
        return e;
    }
    memcpy(e->key, &root, sizeof root);
    memcpy(e->key + sizeof root, target, path_len);
    e->key[sizeof root + path_len] = accepts;
    e->hash = h;
    e->expires_ms = now_ms + FILE_CACHE_TTL_MS;
    if (c->count >= FILE_CACHE_MAX_ENTRIES)
        evict(c, c->lru_tail);
    e->hnext = c->buckets[h & (BUCKETS - 1)];
    c->buckets[h & (BUCKETS - 1)] = e;
    lru_push_front(c, e);
    c->count++;
    e->refs = 1;
    return e;
}

void file_cache_clear(void)
{
    struct file_cache *c = cache;
    if (!c)
        return;
    while (c->lru_head)
        evict(c, c->lru_head);
    free(c);
    cache = NULL;
}
